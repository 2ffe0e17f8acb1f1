//! `deploy.toml`: one file that describes a deployment, overridable by environment variables
//! (`FLINK_EKS_<SECTION>_<KEY>`) and flags (`--set section.key=value`).
//!
//! Overrides are merged into the TOML document before it is read, so they pass through the same
//! checks as the file: an unknown key or an invalid value is rejected the same way, naming the
//! key, the rule, and where the value came from.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::Deserialize;

/// The prefix of environment variables that override configuration keys.
pub const ENV_PREFIX: &str = "FLINK_EKS_";

/// The largest parallelism Flink accepts: its largest max parallelism, 2^15.
const MAX_PARALLELISM: i64 = 32_768;

/// The configuration sections, as they appear in TOML and, upper-cased with `.` as `_`, in
/// environment variable names.
const SECTIONS: &[&str] = &[
    "resources.jobmanager",
    "resources.taskmanager",
    "job",
    "s3",
    "image",
    "irsa",
    "kubernetes",
    "flink",
    "state",
];

/// One deployment, as `deploy.toml` describes it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `[job]`: the FlinkDeployment and its script.
    pub job: Job,
    /// `[s3]`: where the script goes.
    pub s3: S3,
    /// `[image]`: the Flink image.
    pub image: Image,
    /// `[irsa]`: how the pods reach S3.
    pub irsa: Irsa,
    /// `[resources.jobmanager]` and `[resources.taskmanager]`.
    #[serde(default)]
    pub resources: Resources,
    /// `[kubernetes]`.
    #[serde(default)]
    pub kubernetes: Kubernetes,
    /// Extra `flinkConfiguration` entries, passed through as they are.
    #[serde(default)]
    pub flink: BTreeMap<String, String>,
    /// `[state]`: where a stateful job keeps checkpoints, savepoints and HA metadata.
    #[serde(default)]
    pub state: State,
    /// The folder relative paths in the file are resolved against.
    #[serde(skip)]
    pub base_dir: PathBuf,
}

/// `[job]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Job {
    /// The FlinkDeployment's name.
    pub name: String,
    /// Its namespace.
    #[serde(default = "default_namespace")]
    pub namespace: String,
    /// The local PyFlink script, relative to the configuration file.
    pub script: PathBuf,
    /// Arguments passed to the script.
    #[serde(default)]
    pub args: Vec<String>,
    /// The job's parallelism.
    #[serde(default = "one")]
    pub parallelism: i64,
    /// `stateless`, `savepoint` or `last-state`.
    #[serde(default = "default_upgrade_mode")]
    pub upgrade_mode: String,
    /// The Flink release, `MAJOR.MINOR.PATCH`.
    #[serde(default = "default_flink_version")]
    pub flink_version: String,
    /// The image of the initContainer that fetches the script (default a pinned AWS CLI v2
    /// on ECR Public; pin a tag: no tag or `latest` is pulled again at every start).
    pub fetch_image: Option<String>,
    /// The Python interpreter in the Flink image, for the JobManager (`-pyclientexec`) and
    /// the TaskManagers (`python.executable`). Default `/usr/bin/python3`.
    pub python: Option<String>,
    /// How long `submit` waits for RUNNING, in seconds.
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
    /// How long the operator may leave the FlinkDeployment without any status, in seconds,
    /// before the wait fails naming the likely causes (operator missing, namespace not
    /// watched, Flink version ignored).
    #[serde(default = "default_no_status")]
    pub no_status_secs: u64,
    /// How long a `status.error` the operator retries may stay, in seconds, before the wait
    /// fails on it (an error with a terminal state fails at once).
    #[serde(default = "default_status_error_grace")]
    pub status_error_grace_secs: u64,
}

/// `[state]`: used when `job.upgrade_mode` is `savepoint` or `last-state`; a stateless job
/// keeps no state, and its manifest and policy have none.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct State {
    /// `s3://BUCKET/PREFIX/`: checkpoints, savepoints and HA metadata go under it, and the
    /// job's role may read, write and list it. Default
    /// `s3://<s3.bucket>/flink-eks/<job.namespace>/<job.name>/state/`.
    pub prefix: Option<String>,
    /// How often the job checkpoints, as Flink writes durations (`60s`, `5min`, `500ms`).
    #[serde(default = "default_checkpoint_interval")]
    pub checkpoint_interval: String,
}

impl Default for State {
    fn default() -> Self {
        State {
            prefix: None,
            checkpoint_interval: default_checkpoint_interval(),
        }
    }
}

fn default_checkpoint_interval() -> String {
    "60s".to_owned()
}

/// `[s3]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3 {
    /// The bucket.
    pub bucket: String,
    /// The script's key.
    pub key: String,
    /// The bucket's region, for the S3 client; default the AWS configuration chain's.
    pub region: Option<String>,
    /// An S3-compatible endpoint (MinIO, an emulator) for the fetch container and Flink.
    pub endpoint: Option<String>,
}

/// `[image]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Image {
    /// Where the image is pushed, e.g. `123456789012.dkr.ecr.us-east-1.amazonaws.com/flink-s3`.
    pub repository: String,
    /// Defaults to the build context's digest.
    pub tag: Option<String>,
    /// Defaults to `flink:<flink_version>`.
    pub base: Option<String>,
    /// Install python3, pip and `apache-flink` in the image.
    #[serde(default = "yes")]
    pub pyflink: bool,
    /// Extra connector jars, relative to the configuration file.
    #[serde(default)]
    pub jars: Vec<PathBuf>,
    /// `missing` (default), `never` or `always`.
    #[serde(default = "default_pull")]
    pub pull: String,
    /// The platform the image is built for and the pods' nodes run, `os/arch[/variant]`
    /// (`linux/amd64`, the default, or `linux/arm64`, …).
    #[serde(default = "default_platform")]
    pub platform: String,
}

/// `[irsa]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Irsa {
    /// The EKS cluster's name.
    pub cluster: String,
    /// The EKS cluster's region, for IAM, STS and EKS; default the AWS configuration
    /// chain's (`AWS_REGION`, the profile's `region`), never the bucket's.
    pub region: Option<String>,
    /// The job's service account.
    #[serde(default = "default_service_account")]
    pub service_account: String,
    /// The IAM role's name.
    pub role_name: String,
    /// The IAM policy's name.
    pub policy_name: String,
    /// How the job's pods get AWS credentials.
    #[serde(default)]
    pub mode: IdentityMode,
    /// The Secret holding the access keys (`access-key-secret` mode).
    pub secret_name: Option<String>,
    /// The Secret's key holding the access key id.
    #[serde(default = "default_access_key_field")]
    pub access_key_field: String,
    /// The Secret's key holding the secret access key.
    #[serde(default = "default_secret_key_field")]
    pub secret_key_field: String,
    /// Also allow `s3:ListBucket` on the script's key, so a missing script reads as 404.
    #[serde(default = "yes")]
    pub list_bucket: bool,
    /// Take over a role that exists without our ownership tags.
    #[serde(default)]
    pub adopt: bool,
}

/// How the job's pods get AWS credentials (`[irsa] mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum IdentityMode {
    /// An IAM role for the service account, through the cluster's OIDC provider.
    #[default]
    Irsa,
    /// EKS Pod Identity.
    PodIdentity,
    /// Access keys from a Kubernetes Secret; no IAM role is made.
    AccessKeySecret,
}

/// `[resources]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resources {
    /// The JobManager's.
    #[serde(default)]
    pub jobmanager: Resource,
    /// The TaskManagers'.
    #[serde(default)]
    pub taskmanager: Resource,
}

/// CPU and memory of one component.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resource {
    /// CPU cores.
    #[serde(default = "one_cpu")]
    pub cpu: f64,
    /// Total process memory, e.g. `2048m`.
    #[serde(default = "default_memory")]
    pub memory: String,
}

impl Default for Resource {
    fn default() -> Self {
        Resource {
            cpu: one_cpu(),
            memory: default_memory(),
        }
    }
}

/// `[kubernetes]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Kubernetes {
    /// The kubeconfig context; defaults to the current one.
    pub context: Option<String>,
}

fn default_namespace() -> String {
    flink_eks_manifest::DEFAULT_NAMESPACE.to_owned()
}
fn default_upgrade_mode() -> String {
    "stateless".to_owned()
}
fn default_flink_version() -> String {
    "1.20.0".to_owned()
}
fn default_service_account() -> String {
    flink_eks_manifest::DEFAULT_SERVICE_ACCOUNT.to_owned()
}
fn default_access_key_field() -> String {
    "access-key".to_owned()
}
fn default_secret_key_field() -> String {
    "secret-key".to_owned()
}
fn default_pull() -> String {
    "missing".to_owned()
}
fn default_platform() -> String {
    flink_eks_image_builder::DEFAULT_PLATFORM.to_owned()
}
fn default_memory() -> String {
    flink_eks_manifest::Resources::default().memory
}
fn default_timeout() -> u64 {
    300
}
fn default_no_status() -> u64 {
    flink_eks_submit::WaitSettings::DEFAULT_NO_STATUS_WINDOW.as_secs()
}
fn default_status_error_grace() -> u64 {
    flink_eks_submit::WaitSettings::DEFAULT_ERROR_GRACE.as_secs()
}
fn one() -> i64 {
    1
}
fn one_cpu() -> f64 {
    flink_eks_manifest::Resources::default().cpu
}
fn yes() -> bool {
    true
}

/// Where an override came from, for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A `FLINK_EKS_<SECTION>_<KEY>` variable.
    Env(String),
    /// A `--set` flag.
    Flag,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Env(var) => write!(f, "environment variable {var}"),
            Origin::Flag => f.write_str("--set"),
        }
    }
}

/// One `section.key = value` override.
#[derive(Debug, Clone, PartialEq)]
pub struct Override {
    /// `section.key`.
    pub path: String,
    /// The value, read as TOML.
    pub value: toml::Value,
    /// Where it came from.
    pub origin: Origin,
}

impl Override {
    /// Parses a `--set section.key=value` flag. The value is read as TOML (`2`, `true`,
    /// `["a", "b"]`), and as a plain string when it is not valid TOML.
    pub fn from_flag(flag: &str) -> Result<Override> {
        let (path, raw) = flag.split_once('=').with_context(|| {
            format!("--set {flag:?}: expected section.key=value, e.g. --set job.parallelism=2")
        })?;
        Ok(Override {
            path: path.trim().to_owned(),
            value: parse_value(raw),
            origin: Origin::Flag,
        })
    }

    /// Reads `FLINK_EKS_<SECTION>_<KEY>` variables from the given environment. Variables with the
    /// prefix that name no section are left alone: they may belong to tests or other tools.
    pub fn from_env<I: IntoIterator<Item = (String, String)>>(vars: I) -> Vec<Override> {
        let mut overrides: Vec<Override> = vars
            .into_iter()
            .filter_map(|(var, raw)| {
                let rest = var.strip_prefix(ENV_PREFIX)?;
                let section = SECTIONS.iter().find(|s| {
                    let upper = s.to_uppercase().replace('.', "_");
                    rest.strip_prefix(&upper)
                        .is_some_and(|k| k.starts_with('_') && k.len() > 1)
                })?;
                let key = rest[section.len() + 1..].to_lowercase();
                let path = format!("{section}.{key}");
                Some(Override {
                    path,
                    value: parse_value(&raw),
                    origin: Origin::Env(var),
                })
            })
            .collect();
        overrides.sort_by(|a, b| a.path.cmp(&b.path));
        overrides
    }
}

fn parse_value(raw: &str) -> toml::Value {
    let doc = format!("v = {raw}");
    match toml::from_str::<toml::Table>(&doc) {
        Ok(mut table) => table
            .remove("v")
            .unwrap_or_else(|| toml::Value::String(raw.to_owned())),
        Err(_) => toml::Value::String(raw.to_owned()),
    }
}

impl Config {
    /// Reads, overrides and checks a configuration file. Nothing outside the file (and the
    /// files it names) is touched.
    pub fn load(path: &Path, overrides: &[Override]) -> Result<Config> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the configuration file {}", path.display()))?;
        let base_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Config::parse(&text, &path.display().to_string(), base_dir, overrides)
    }

    /// Reads a configuration from `text`; `source` names it in errors, `base_dir` resolves its relative paths.
    pub fn parse(
        text: &str,
        source: &str,
        base_dir: PathBuf,
        overrides: &[Override],
    ) -> Result<Config> {
        let mut doc: toml::Table =
            toml::from_str(text).map_err(|e| anyhow::anyhow!(toml_error(text, source, &e)))?;
        for o in overrides {
            set_path(&mut doc, &o.path, o.value.clone())
                .with_context(|| format!("{}: cannot set {}", o.origin, o.path))?;
        }
        let mut config: Config = serde_path_to_error::deserialize(doc).map_err(|e| {
            let key = e.path().to_string();
            let from = overrides
                .iter()
                .find(|o| o.path == key)
                .map(|o| format!(" (the value comes from {})", o.origin))
                .unwrap_or_default();
            let mut message = e.inner().message().trim().replace('\n', " ");
            if key == "job.parallelism" {
                message.push_str(&format!(
                    "; parallelism is a whole number from 1 to {MAX_PARALLELISM}"
                ));
            }
            match key.as_str() {
                "." | "" => anyhow::anyhow!("{source}: {message}{from}"),
                _ => anyhow::anyhow!("{source}: key {key}: {message}{from}"),
            }
        })?;
        config.base_dir = base_dir;
        config.check().map_err(|err| {
            let text = format!("{err:#}");
            match overrides
                .iter()
                .find(|o| text.starts_with(&format!("key {}:", o.path)))
            {
                Some(o) => err.context(format!(
                    "{source} is not a valid deployment (the value comes from {})",
                    o.origin
                )),
                None => err.context(format!("{source} is not a valid deployment")),
            }
        })?;
        config
            .state_storage()
            .map_err(|err| state_error(text, source, overrides, err))?;
        Ok(config)
    }

    /// What the configuration asks that works but should change, one line each: a Flink
    /// version the operator deprecates.
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        let deprecated = self
            .job
            .flink_version
            .parse::<flink_eks_manifest::FlinkRelease>()
            .is_ok_and(|r| {
                r.version().operator_support() == flink_eks_manifest::OperatorSupport::Deprecated
            });
        if deprecated {
            warnings.push(format!(
                "key job.flink_version: Flink {} is deprecated by the Flink Kubernetes Operator; use {} or later",
                self.job.flink_version,
                flink_eks_manifest::OLDEST_CURRENT_VERSION,
            ));
        }
        warnings
    }

    /// The state prefix: `[state] prefix`, or the default under the script's bucket,
    /// `s3://<bucket>/flink-eks/<namespace>/<job name>/state/`.
    pub fn state_prefix(&self) -> Result<flink_eks_manifest::S3Prefix> {
        match &self.state.prefix {
            Some(prefix) => flink_eks_manifest::S3Prefix::parse(prefix).context("key state.prefix"),
            None => flink_eks_manifest::S3Prefix::new(
                &self.s3.bucket,
                format!("flink-eks/{}/{}/state/", self.job.namespace, self.job.name),
            )
            .context("key state.prefix: the default prefix under s3.bucket"),
        }
    }

    /// Where the job keeps its state and how often it checkpoints, checked; `None` for a
    /// stateless job, whose manifest and policy have no state.
    pub fn state_storage(&self) -> Result<Option<flink_eks_manifest::StateStorage>> {
        let prefix = self.state_prefix()?;
        let checkpoint_interval =
            flink_eks_manifest::parse_flink_duration(&self.state.checkpoint_interval)
                .context("key state.checkpoint_interval")?;
        if prefix.bucket() == self.s3.bucket && prefix.contains_key(&self.s3.key) {
            bail!(
                "key state.prefix: {prefix} holds the script s3://{}/{}: the job could overwrite its own code; choose a prefix beside s3.key",
                self.s3.bucket,
                self.s3.key
            );
        }
        let stateful = self
            .job
            .upgrade_mode
            .parse::<flink_eks_manifest::UpgradeMode>()
            .is_ok_and(|m| m != flink_eks_manifest::UpgradeMode::Stateless);
        Ok(stateful.then_some(flink_eks_manifest::StateStorage {
            prefix,
            checkpoint_interval,
        }))
    }

    /// The script's path, resolved against the configuration file's folder.
    pub fn script_path(&self) -> PathBuf {
        self.base_dir.join(&self.job.script)
    }

    /// The connector jars' paths, resolved against the configuration file's folder.
    pub fn jar_paths(&self) -> Vec<PathBuf> {
        self.image
            .jars
            .iter()
            .map(|j| self.base_dir.join(j))
            .collect()
    }

    /// Checks each value against the rules of the system it is meant for, naming the key.
    fn check(&self) -> Result<()> {
        use flink_eks_manifest as m;
        let key = |k: &str| format!("key {k}");
        m::validate_job_name(&self.job.name).with_context(|| key("job.name"))?;
        m::validate_dns1123_label("namespace", &self.job.namespace)
            .with_context(|| key("job.namespace"))?;
        m::validate_bucket(&self.s3.bucket).with_context(|| key("s3.bucket"))?;
        m::validate_object_key(&self.s3.key).with_context(|| key("s3.key"))?;
        m::validate_dns1123_subdomain("service account", &self.irsa.service_account)
            .with_context(|| key("irsa.service_account"))?;
        if !(1..=MAX_PARALLELISM).contains(&self.job.parallelism) {
            bail!(
                "key job.parallelism: {} is not valid: parallelism is a whole number from 1 to {MAX_PARALLELISM} (Flink's largest max parallelism)",
                self.job.parallelism
            );
        }
        for (name, value) in [
            ("job.timeout_secs", self.job.timeout_secs),
            ("job.no_status_secs", self.job.no_status_secs),
            (
                "job.status_error_grace_secs",
                self.job.status_error_grace_secs,
            ),
        ] {
            if value == 0 {
                bail!("key {name}: 0 is not valid: give a number of seconds from 1");
            }
        }
        let release = self
            .job
            .flink_version
            .parse::<m::FlinkRelease>()
            .context("key job.flink_version")?;
        if release.version().operator_support() == m::OperatorSupport::Unsupported {
            bail!(
                "key job.flink_version: Flink {} is not run by the Flink Kubernetes Operator (it records a Warning Event UnsupportedFlinkVersion and writes no status): use Flink {} to {}",
                release.version(),
                m::OLDEST_OPERATOR_VERSION,
                m::FlinkVersion::ALL[m::FlinkVersion::ALL.len() - 1],
            );
        }
        flink_eks_image_builder::Repository::parse(&self.image.repository)
            .context("key image.repository")?;
        let script = self.script_path();
        if !script.is_file() {
            bail!(
                "key job.script: {} does not exist or is not a file (paths are relative to the configuration file)",
                script.display()
            );
        }
        let script_is_blank = std::fs::read(&script)
            .map(|bytes| bytes.iter().all(u8::is_ascii_whitespace))
            .with_context(|| format!("key job.script: cannot read {}", script.display()))?;
        if script_is_blank {
            bail!(
                "key job.script: {} is empty: there is no job to run; give the PyFlink script that builds the job",
                script.display()
            );
        }
        for (i, jar) in self.jar_paths().iter().enumerate() {
            if !jar.is_file() {
                bail!(
                    "key image.jars[{i}]: {} does not exist or is not a file",
                    jar.display()
                );
            }
        }
        // The values each crate accepts are the crate's to say.
        self.image
            .pull
            .parse::<flink_eks_image_builder::PullPolicy>()
            .context("key image.pull")?;
        flink_eks_image_builder::Platform::parse(&self.image.platform)
            .context("key image.platform")?;
        self.job
            .upgrade_mode
            .parse::<m::UpgradeMode>()
            .context("key job.upgrade_mode")?;
        for (key, region) in [
            ("s3.region", &self.s3.region),
            ("irsa.region", &self.irsa.region),
        ] {
            if let Some(region) = region {
                validate_region(region).with_context(|| format!("key {key}"))?;
            }
        }
        if self.irsa.mode == IdentityMode::AccessKeySecret && self.irsa.secret_name.is_none() {
            bail!(
                "key irsa.secret_name: the access-key-secret mode needs the name of the Secret that holds the keys"
            );
        }
        for (key, check) in [
            (
                "irsa.role_name",
                flink_eks_irsa::validate_role_name(&self.irsa.role_name),
            ),
            (
                "irsa.policy_name",
                flink_eks_irsa::validate_policy_name(&self.irsa.policy_name),
            ),
            (
                "irsa.cluster",
                flink_eks_irsa::validate_cluster_name(&self.irsa.cluster),
            ),
        ] {
            check.with_context(|| format!("key {key}"))?;
        }
        Ok(())
    }
}

/// A TOML syntax error on one line: `file:line:column: message`, naming the key the error is
/// about (a duplicate key's message does not say which one).
fn toml_error(text: &str, source: &str, err: &toml::de::Error) -> String {
    let message = err.message().trim().replace('\n', " ");
    let Some(span) = err.span() else {
        return format!("{source}: {message} (the file is not valid TOML)");
    };
    let (line, column) = line_column(text, span.start);
    let found = text.get(span.clone()).unwrap_or_default().trim();
    let key = found.trim_matches(|c| c == '"' || c == '\'' || c == '[' || c == ']');
    let about = if message.contains("key") && !key.is_empty() && !message.contains(key) {
        format!(" `{key}`")
    } else {
        String::new()
    };
    format!("{source}:{line}:{column}: {message}{about} (the file is not valid TOML)")
}

/// A `[state]` error on one line: `file:line:column: key state.…: …` when the value is in
/// the file, or naming the flag or variable it came from.
fn state_error(
    text: &str,
    source: &str,
    overrides: &[Override],
    err: anyhow::Error,
) -> anyhow::Error {
    #[derive(Deserialize)]
    struct File {
        state: Option<StateSpans>,
    }
    #[derive(Deserialize)]
    struct StateSpans {
        prefix: Option<toml::Spanned<toml::Value>>,
        checkpoint_interval: Option<toml::Spanned<toml::Value>>,
    }
    let message = format!("{err:#}");
    let key = if message.starts_with("key state.checkpoint_interval") {
        "state.checkpoint_interval"
    } else {
        "state.prefix"
    };
    if let Some(o) = overrides.iter().find(|o| o.path == key) {
        return anyhow::anyhow!("{source}: {message} (the value comes from {})", o.origin);
    }
    let spans = toml::from_str::<File>(text).ok().and_then(|f| f.state);
    let span = spans.and_then(|s| match key {
        "state.prefix" => s.prefix.map(|v| v.span()),
        _ => s.checkpoint_interval.map(|v| v.span()),
    });
    match span {
        Some(span) => {
            let (line, column) = line_column(text, span.start);
            anyhow::anyhow!("{source}:{line}:{column}: {message}")
        }
        None => anyhow::anyhow!("{source}: {message}"),
    }
}

/// The 1-based line and column (in characters) of a byte offset in `text`.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset.min(text.len())).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

/// Checks the form of an AWS region name: lowercase words and a number joined by `-`
/// (`us-east-1`, `ap-northeast-2`, `us-gov-west-1`).
fn validate_region(region: &str) -> Result<()> {
    let parts: Vec<&str> = region.split('-').collect();
    let well_formed = parts.len() >= 3
        && parts[..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
        && parts[parts.len() - 1]
            .parse::<u8>()
            .is_ok_and(|_| parts[parts.len() - 1].bytes().all(|b| b.is_ascii_digit()));
    if !well_formed {
        bail!(
            "{region:?} is not an AWS region name; expected one like us-east-1 or ap-northeast-2"
        );
    }
    Ok(())
}

/// Sets `a.b.c = value` in a TOML table, creating intermediate tables.
fn set_path(doc: &mut toml::Table, path: &str, value: toml::Value) -> Result<()> {
    let mut parts: Vec<&str> = path.split('.').collect();
    let Some(last) = parts.pop() else {
        bail!("empty key")
    };
    if last.is_empty() || parts.iter().any(|p| p.is_empty()) {
        bail!("{path:?} is not a key; expected section.key, e.g. job.parallelism");
    }
    let mut table = doc;
    for part in parts {
        let entry = table
            .entry(part.to_owned())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        table = entry
            .as_table_mut()
            .with_context(|| format!("{part} is a value, not a section"))?;
    }
    table.insert(last.to_owned(), value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = include_str!("../../../examples/deploy.toml");

    fn examples_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples")
    }

    fn parse(text: &str, overrides: &[Override]) -> Result<Config> {
        Config::parse(text, "deploy.toml", examples_dir(), overrides)
    }

    fn error(text: &str, overrides: &[Override]) -> String {
        format!("{:#}", parse(text, overrides).unwrap_err())
    }

    #[test]
    fn example_has_the_documented_values() {
        let c = parse(EXAMPLE, &[]).unwrap();
        assert_eq!(c.job.name, "python-example-s3");
        assert_eq!(c.job.namespace, "default");
        assert_eq!(c.s3.bucket, "flink-s3-test");
        assert_eq!(c.s3.key, "test/python_demo_s3.py");
        assert_eq!(c.irsa.service_account, "flink");
        assert_eq!(c.resources.jobmanager.memory, "2048m");
        assert_eq!(c.resources.jobmanager.cpu, 1.0);
        assert!(c.script_path().is_file());
    }

    #[test]
    fn unknown_keys_are_rejected_by_name() {
        let text = EXAMPLE.replace("[job]", "[job]\nparalelism = 2");
        let err = error(&text, &[]);
        assert!(err.contains("unknown field `paralelism`"), "{err}");
        let err = error(&format!("{EXAMPLE}\n[extra]\na = 1\n"), &[]);
        assert!(err.contains("unknown field `extra`"), "{err}");
    }

    #[test]
    fn invalid_values_name_the_key_and_the_rule() {
        let cases = [
            (
                "job.name",
                toml::Value::from("Python_Example"),
                "key job.name",
                "RFC 1123",
            ),
            (
                "s3.bucket",
                toml::Value::from("Flink_Bucket"),
                "key s3.bucket",
                "lowercase",
            ),
            (
                "s3.key",
                toml::Value::from("test/"),
                "key s3.key",
                "does not end with '/'",
            ),
            (
                "job.script",
                toml::Value::from("jobs/missing.py"),
                "key job.script",
                "does not exist",
            ),
            (
                "job.parallelism",
                toml::Value::from(0),
                "key job.parallelism",
                "from 1 to 32768",
            ),
            (
                "image.pull",
                toml::Value::from("sometimes"),
                "key image.pull",
                "missing, never or always",
            ),
            (
                "image.platform",
                toml::Value::from("linux/aarch64"),
                "key image.platform",
                "write linux/arm64",
            ),
            (
                "image.platform",
                toml::Value::from("darwin/arm64"),
                "key image.platform",
                "Flink's pods run on Linux nodes",
            ),
            (
                "job.upgrade_mode",
                toml::Value::from("blue-green"),
                "key job.upgrade_mode",
                "stateless, savepoint or last-state",
            ),
        ];
        for (path, value, key, rule) in cases {
            let o = Override {
                path: path.to_owned(),
                value,
                origin: Origin::Flag,
            };
            let err = error(EXAMPLE, &[o]);
            assert!(err.contains(key) && err.contains(rule), "{path}: {err}");
        }
    }

    #[test]
    fn toml_errors_give_file_line_column_and_the_key() {
        let text = EXAMPLE.replacen("[job]\n", "[job]\nname = \"again\"\n", 1);
        let line = text
            .lines()
            .position(|l| l.starts_with("name = "))
            .map(|i| i + 1)
            .unwrap();
        let duplicate = text
            .lines()
            .enumerate()
            .skip(line)
            .find(|(_, l)| l.starts_with("name = "))
            .map(|(i, _)| i + 1)
            .unwrap();
        let err = error(&text, &[]);
        assert!(
            err.starts_with(&format!("deploy.toml:{duplicate}:1: ")),
            "{err}"
        );
        assert!(
            err.contains("duplicate key") && err.contains("name"),
            "{err}"
        );
        assert!(!err.contains('\n'), "{err}");

        let err = error("[job]\nname = \"a\"\n[s3\n", &[]);
        assert!(err.starts_with("deploy.toml:3:"), "{err}");
        assert_eq!(line_column("ab\ncd", 4), (2, 2));
        assert_eq!(line_column("", 0), (1, 1));
    }

    #[test]
    fn state_is_used_by_stateful_jobs_only_and_defaults_under_the_bucket() {
        let stateless = parse(EXAMPLE, &[]).unwrap();
        assert_eq!(stateless.state_storage().unwrap(), None);
        let set = |k: &str, v: &str| Override::from_flag(&format!("{k}={v}")).unwrap();
        for mode in ["savepoint", "last-state"] {
            let c = parse(EXAMPLE, &[set("job.upgrade_mode", mode)]).unwrap();
            let state = c.state_storage().unwrap().unwrap();
            assert_eq!(
                state.prefix.to_string(),
                "s3://flink-s3-test/flink-eks/default/python-example-s3/state/"
            );
            assert_eq!(
                state.checkpoint_interval,
                std::time::Duration::from_secs(60)
            );
        }
        let c = parse(
            EXAMPLE,
            &[
                set("job.upgrade_mode", "savepoint"),
                set("state.prefix", "s3://flink-state/jobs/a"),
                set("state.checkpoint_interval", "5min"),
            ],
        )
        .unwrap();
        let state = c.state_storage().unwrap().unwrap();
        assert_eq!(state.prefix.to_string(), "s3://flink-state/jobs/a/");
        assert_eq!(
            state.checkpoint_interval,
            std::time::Duration::from_secs(300)
        );
        let stateful = std::fs::read_to_string(examples_dir().join("stateful.toml")).unwrap();
        let c = parse(&stateful, &[]).unwrap();
        assert!(
            c.state_storage().unwrap().is_some(),
            "examples/stateful.toml is stateful"
        );
    }

    #[test]
    fn state_errors_give_file_line_column_and_the_key() {
        let text = EXAMPLE.replace(
            "[state]\n",
            "[state]\nprefix = \"s3://Bad_Bucket/state/\"\n",
        );
        let line = text
            .lines()
            .position(|l| l.starts_with("prefix = "))
            .unwrap()
            + 1;
        let err = error(&text, &[]);
        assert!(
            err.starts_with(&format!("deploy.toml:{line}:10: key state.prefix: ")),
            "{err}"
        );
        assert!(err.contains("S3 bucket"), "{err}");
        assert!(!err.contains('\n'), "{err}");

        for (value, rule) in [
            ("s3://flink-s3-test", "not the whole bucket"),
            ("flink-s3-test/state/", "s3://BUCKET/FOLDER/"),
            ("s3://flink-s3-test/st*te/", "wildcards"),
            ("s3://flink-s3-test/test/", "holds the script"),
        ] {
            let text = EXAMPLE.replace("[state]\n", &format!("[state]\nprefix = \"{value}\"\n"));
            let err = error(&text, &[]);
            assert!(
                err.contains(&format!(":{line}:10: key state.prefix")),
                "{err}"
            );
            assert!(err.contains(rule), "{value}: {err}");
        }

        let text = EXAMPLE.replace(
            "checkpoint_interval = \"60s\"",
            "checkpoint_interval = \"60\"",
        );
        let err = error(&text, &[]);
        assert!(err.contains(":23: key state.checkpoint_interval"), "{err}");
        assert!(err.contains("60s or 5min"), "{err}");

        let flag = Override::from_flag("state.checkpoint_interval=1d").unwrap();
        let err = error(EXAMPLE, &[flag]);
        assert!(
            err.starts_with("deploy.toml: key state.checkpoint_interval"),
            "{err}"
        );
        assert!(err.contains("(the value comes from --set)"), "{err}");
    }

    #[test]
    fn parallelism_out_of_range_names_the_key_and_the_range() {
        for value in ["1000000000000", "1e12", "40000", "-1"] {
            let o = Override::from_flag(&format!("job.parallelism={value}")).unwrap();
            let err = error(EXAMPLE, &[o]);
            assert!(
                err.contains("key job.parallelism") && err.contains("from 1 to 32768"),
                "{value}: {err}"
            );
        }
    }

    #[test]
    fn a_version_the_operator_ignores_is_refused_and_a_deprecated_one_warns() {
        let load = |version: &str| {
            let o = Override::from_flag(&format!("job.flink_version={version}")).unwrap();
            parse(EXAMPLE, &[o])
        };
        let err = format!("{:#}", load("1.14.6").unwrap_err());
        assert!(
            err.contains("key job.flink_version")
                && err.contains("UnsupportedFlinkVersion")
                && err.contains("1.15 to 2.2"),
            "{err}"
        );
        let deprecated = load("1.17.2").unwrap();
        assert_eq!(
            deprecated.warnings().len(),
            1,
            "{:?}",
            deprecated.warnings()
        );
        assert!(deprecated.warnings()[0].contains("1.19 or later"));
        assert!(load("1.20.1").unwrap().warnings().is_empty());
    }

    #[test]
    fn flink_version_errors_name_the_key() {
        for value in ["1.20", "9.0.0", "latest"] {
            let o = Override::from_flag(&format!("job.flink_version={value}")).unwrap();
            let err = error(EXAMPLE, &[o]);
            assert!(
                err.contains("key job.flink_version") && !err.contains("[image]"),
                "{value}: {err}"
            );
        }
    }

    #[test]
    fn an_empty_script_is_refused() {
        let dir = std::env::temp_dir().join(format!("flink-eks-empty-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for (name, bytes) in [("empty.py", &b""[..]), ("blank.py", &b" \n\t\n"[..])] {
            std::fs::write(dir.join(name), bytes).unwrap();
            let o = Override::from_flag(&format!("job.script={name}")).unwrap();
            let err = format!(
                "{:#}",
                Config::parse(EXAMPLE, "deploy.toml", dir.clone(), &[o]).unwrap_err()
            );
            assert!(
                err.contains("key job.script") && err.contains("is empty"),
                "{err}"
            );
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn regions_are_checked_by_form_naming_the_key() {
        for key in ["s3.region", "irsa.region"] {
            for bad in [
                "",
                "US-EAST-1",
                "us-east",
                "useast1",
                "us-east-1 ",
                "us--1",
                "eu-west-x",
            ] {
                let o = Override::from_flag(&format!("{key}=\"{bad}\"")).unwrap();
                let err = error(EXAMPLE, &[o]);
                assert!(
                    err.contains(&format!("key {key}")) && err.contains("not an AWS region"),
                    "{key}={bad:?}: {err}"
                );
            }
            for good in ["us-east-1", "ap-northeast-2", "us-gov-west-1", "cn-north-1"] {
                let o = Override::from_flag(&format!("{key}={good}")).unwrap();
                parse(EXAMPLE, &[o]).unwrap();
            }
        }
        // The cluster's region is its own key: the bucket's does not stand in for it.
        let c = parse(EXAMPLE, &[]).unwrap();
        assert_eq!(c.s3.region.as_deref(), Some("ap-northeast-2"));
        assert_eq!(c.irsa.region, None);
    }

    #[test]
    fn wrong_types_are_rejected() {
        let o = Override::from_flag("job.parallelism=\"one\"").unwrap();
        let err = error(EXAMPLE, &[o]);
        assert!(
            err.contains("key job.parallelism")
                && err.contains("invalid type")
                && err.contains("--set"),
            "{err}"
        );
    }

    #[test]
    fn environment_overrides_map_to_keys() {
        let vars = [
            ("FLINK_EKS_JOB_UPGRADE_MODE", "savepoint"),
            ("FLINK_EKS_RESOURCES_TASKMANAGER_CPU", "2"),
            ("FLINK_EKS_IMAGE_TAG", "v1"),
            ("FLINK_EKS_TEST_REGISTRY", "127.0.0.1:5000"),
            ("HOME", "/root"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()));
        let o = Override::from_env(vars);
        let paths: Vec<_> = o.iter().map(|o| o.path.as_str()).collect();
        assert_eq!(
            paths,
            ["image.tag", "job.upgrade_mode", "resources.taskmanager.cpu"]
        );
        let c = parse(EXAMPLE, &o).unwrap();
        assert_eq!(c.job.upgrade_mode, "savepoint");
        assert_eq!(c.resources.taskmanager.cpu, 2.0);
        assert_eq!(c.image.tag.as_deref(), Some("v1"));
    }

    #[test]
    fn flags_parse_toml_values() {
        let o = Override::from_flag("job.args=[\"--rows\", \"10\"]").unwrap();
        assert_eq!(parse(EXAMPLE, &[o]).unwrap().job.args, ["--rows", "10"]);
        let o = Override::from_flag("image.tag=2024-01").unwrap();
        assert_eq!(
            parse(EXAMPLE, &[o]).unwrap().image.tag.as_deref(),
            Some("2024-01")
        );
        assert!(Override::from_flag("job.name").is_err());
    }
}

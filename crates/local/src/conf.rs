//! The Flink configuration of a local run: the runtime's own defaults (the PyPI package's
//! `conf/`, or the image's `/opt/flink/conf`), then the deployment's `flinkConfiguration`
//! minus what only means something on the cluster. No IO.

use std::collections::BTreeMap;

use flink_eks_manifest::{FlinkRelease, FlinkVersion};
use serde_json::Value;

use crate::Error;

/// Flink's configuration file from 1.19 on: standard YAML, nested or flat keys.
pub const CONFIG_YAML: &str = "config.yaml";
/// Flink's configuration file before 1.19 (`key: value` lines). Flink 1.19 and 1.20 still read
/// it first when a configuration directory holds it; 2.x reads only `config.yaml`.
pub const LEGACY_CONFIG_YAML: &str = "flink-conf.yaml";

/// `parallelism.default`: the operator sets it from the FlinkDeployment's `job.parallelism`.
pub const PARALLELISM_KEY: &str = "parallelism.default";
/// `python.executable`: the interpreter of Flink's Python workers.
pub const PYTHON_EXECUTABLE_KEY: &str = "python.executable";
/// `python.client.executable`: the interpreter that runs the script itself.
pub const PYTHON_CLIENT_EXECUTABLE_KEY: &str = "python.client.executable";

/// Why an entry of the deployment's configuration is left out of a local run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Dropped {
    /// `kubernetes.*`: native Kubernetes and operator settings (pod templates, service
    /// account, the operator's own options); there is no cluster.
    Kubernetes,
    /// `high-availability*`: Kubernetes HA elects leaders through the API server's ConfigMaps
    /// and writes to the deployment's HA storage, which a local run must not touch.
    HighAvailability,
    /// A checkpoint or savepoint directory (or its storage type) in S3: the deployment's own
    /// state, which a trial run must not write into.
    ClusterState,
    /// The S3 plugin's credentials provider: it names the pod's identity (a web identity token
    /// file, a container credentials endpoint), which does not exist here.
    PodCredentials,
    /// The image's interpreter path, replaced by the local one.
    ImageInterpreter,
}

impl Dropped {
    /// One line for the user.
    pub fn reason(self) -> &'static str {
        match self {
            Dropped::Kubernetes => "a Kubernetes setting; there is no cluster",
            Dropped::HighAvailability => {
                "Kubernetes HA needs the API server and the deployment's HA storage"
            }
            Dropped::ClusterState => {
                "the deployment's state in S3; a local run does not write into it"
            }
            Dropped::PodCredentials => "names the pod's identity, which does not exist here",
            Dropped::ImageInterpreter => "the image's interpreter; the local one runs the job",
        }
    }
}

/// Where the run happens, which decides what replaces the dropped entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Runtime {
    /// PyFlink from PyPI on this machine, with this interpreter.
    Local {
        /// The interpreter that runs the script and the Python workers.
        python: String,
    },
    /// The job's image, whose S3 plugin reads credentials from the environment.
    Image {
        /// The interpreter in the image.
        python: String,
    },
}

/// The configuration of a local run, and what was left out of the deployment's.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LocalConfiguration {
    /// Every entry, flat keys, sorted.
    pub entries: BTreeMap<String, Value>,
    /// The deployment's keys left out, with the reason.
    pub dropped: Vec<(String, Dropped)>,
}

/// Whether a key is one of the S3 plugin's spellings of `fs.s3a.<rest>`.
fn s3_plugin_key(key: &str, rest: &str) -> bool {
    let lower = key.to_ascii_lowercase();
    ["fs.s3a.", "s3a.", "s3."]
        .iter()
        .any(|prefix| lower.strip_prefix(prefix) == Some(rest))
}

fn is_s3_uri(value: &str) -> bool {
    let lower = value.trim().to_ascii_lowercase();
    ["s3://", "s3a://", "s3p://"]
        .iter()
        .any(|scheme| lower.starts_with(scheme))
}

const STATE_DIR_KEYS: &[&str] = &[
    "state.checkpoints.dir",
    "state.savepoints.dir",
    "execution.checkpointing.dir",
    "execution.checkpointing.savepoint-dir",
];

/// Why `key = value` of the deployment's configuration is left out, if it is.
pub fn dropped(key: &str, value: &str) -> Option<Dropped> {
    if key.starts_with("kubernetes.") {
        return Some(Dropped::Kubernetes);
    }
    if key.starts_with("high-availability") {
        return Some(Dropped::HighAvailability);
    }
    if STATE_DIR_KEYS.contains(&key) && is_s3_uri(value) {
        return Some(Dropped::ClusterState);
    }
    if s3_plugin_key(key, "aws.credentials.provider") {
        return Some(Dropped::PodCredentials);
    }
    if key == PYTHON_EXECUTABLE_KEY || key == PYTHON_CLIENT_EXECUTABLE_KEY {
        return Some(Dropped::ImageInterpreter);
    }
    None
}

/// The configuration of a local run: `base` (the runtime's own defaults, flat keys), then the
/// deployment's `flinkConfiguration` minus the entries [`dropped`] names, then what the run
/// sets itself: `parallelism.default` (as the operator sets it from `job.parallelism`), the
/// local interpreter, and in the image the S3 credentials provider that reads
/// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and `AWS_SESSION_TOKEN`.
pub fn local_configuration(
    base: BTreeMap<String, Value>,
    deployment: &BTreeMap<String, String>,
    parallelism: u32,
    runtime: &Runtime,
) -> LocalConfiguration {
    let mut entries = base;
    let mut left_out = Vec::new();
    for (key, value) in deployment {
        match dropped(key, value) {
            Some(reason) => left_out.push((key.clone(), reason)),
            None => {
                entries.insert(key.clone(), Value::String(value.clone()));
            }
        }
    }
    // Without its directory, `filesystem` checkpoint storage refuses to start; the JobManager's
    // heap, Flink's default, needs none.
    let checkpoints_dropped = left_out
        .iter()
        .any(|(k, _)| k == "state.checkpoints.dir" || k == "execution.checkpointing.dir");
    if checkpoints_dropped && entries.remove("state.checkpoint-storage").is_some() {
        left_out.push(("state.checkpoint-storage".to_owned(), Dropped::ClusterState));
    }
    entries.insert(
        PARALLELISM_KEY.to_owned(),
        Value::String(parallelism.to_string()),
    );
    let python = match runtime {
        Runtime::Local { python } | Runtime::Image { python } => python,
    };
    entries.insert(
        PYTHON_EXECUTABLE_KEY.to_owned(),
        Value::String(python.clone()),
    );
    entries.insert(
        PYTHON_CLIENT_EXECUTABLE_KEY.to_owned(),
        Value::String(python.clone()),
    );
    if let Runtime::Image { .. } = runtime {
        entries.insert(
            flink_eks_manifest::CREDENTIALS_PROVIDER_KEY.to_owned(),
            Value::String(flink_eks_manifest::ENVIRONMENT_CREDENTIALS_PROVIDER.to_owned()),
        );
    }
    LocalConfiguration {
        entries,
        dropped: left_out,
    }
}

/// The configuration file a Flink release reads from its configuration directory, given
/// whether that directory (the runtime's own `conf/`) holds the legacy file: 1.19 and 1.20
/// read `flink-conf.yaml` when it exists and `config.yaml` otherwise; older releases only the
/// legacy file, 2.x only `config.yaml`.
pub fn config_file_name(release: &FlinkRelease, has_legacy_file: bool) -> &'static str {
    let version = release.version();
    let reads_legacy =
        version < FlinkVersion::V1_19 || (version < FlinkVersion::V2_0 && has_legacy_file);
    if reads_legacy {
        LEGACY_CONFIG_YAML
    } else {
        CONFIG_YAML
    }
}

/// Parses a configuration file into flat keys: `config.yaml` as YAML (nested maps joined with
/// dots), `flink-conf.yaml` as Flink's legacy `key: value` lines.
pub fn parse_config(file_name: &str, text: &str) -> Result<BTreeMap<String, Value>, Error> {
    let mut flat = BTreeMap::new();
    if file_name == LEGACY_CONFIG_YAML {
        for line in text.lines() {
            let line = line.split('#').next().unwrap_or("").trim();
            if let Some((key, value)) = line.split_once(": ") {
                flat.insert(
                    key.trim().to_owned(),
                    Value::String(value.trim().to_owned()),
                );
            }
        }
        return Ok(flat);
    }
    if text.trim().is_empty() {
        return Ok(flat);
    }
    let value: Value = serde_saphyr::from_str(text).map_err(|err| Error::BaseConfig {
        file: file_name.to_owned(),
        reason: err.to_string(),
    })?;
    flatten("", value, &mut flat);
    Ok(flat)
}

fn flatten(prefix: &str, value: Value, out: &mut BTreeMap<String, Value>) {
    match value {
        Value::Object(map) => {
            for (key, value) in map {
                let key = match prefix {
                    "" => key,
                    _ => format!("{prefix}.{key}"),
                };
                flatten(&key, value, out);
            }
        }
        Value::Null => {}
        other if !prefix.is_empty() => {
            out.insert(prefix.to_owned(), other);
        }
        _ => {}
    }
}

/// Renders flat entries as the named file: `config.yaml` with each value a JSON scalar or
/// list (valid YAML, so quoting never changes a value); `flink-conf.yaml` as `key: value`
/// lines, lists joined with `;` as its parser splits them.
pub fn render_config(file_name: &str, entries: &BTreeMap<String, Value>) -> Result<String, Error> {
    let mut text = String::from("# Written by flink-eks for a local run.\n");
    for (key, value) in entries {
        if file_name == LEGACY_CONFIG_YAML {
            let value = match value {
                Value::String(s) => s.clone(),
                Value::Array(items) => items
                    .iter()
                    .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
                    .collect::<Vec<_>>()
                    .join(";"),
                other => other.to_string(),
            };
            if value.contains('\n') || key.contains(':') {
                return Err(Error::UnwritableEntry {
                    key: key.clone(),
                    file: file_name.to_owned(),
                });
            }
            text.push_str(&format!("{key}: {value}\n"));
        } else {
            let plain = !key.is_empty()
                && key
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '$'));
            let key = match plain {
                true => key.clone(),
                false => Value::String(key.clone()).to_string(),
            };
            text.push_str(&format!("{key}: {value}\n"));
        }
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment() -> BTreeMap<String, String> {
        [
            (
                "kubernetes.operator.job.upgrade.last-state-fallback.enabled",
                "true",
            ),
            ("high-availability.type", "kubernetes"),
            ("high-availability.storageDir", "s3://b/ha"),
            ("state.checkpoints.dir", "s3://b/checkpoints"),
            ("execution.checkpointing.dir", "s3://b/checkpoints"),
            ("state.savepoints.dir", "s3a://b/savepoints"),
            ("state.checkpoint-storage", "filesystem"),
            (
                "fs.s3a.aws.credentials.provider",
                "com.amazonaws.auth.WebIdentityTokenCredentialsProvider",
            ),
            ("python.executable", "/usr/bin/python3"),
            ("s3.endpoint", "http://127.0.0.1:9000"),
            ("execution.checkpointing.interval", "60 s"),
            ("taskmanager.numberOfTaskSlots", "2"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }

    fn local() -> Runtime {
        Runtime::Local {
            python: "/cache/pyflink-1.20.0/bin/python".into(),
        }
    }

    #[test]
    fn cluster_only_entries_are_left_out_with_their_reason() {
        let conf = local_configuration(BTreeMap::new(), &deployment(), 2, &local());
        let reason = |key: &str| conf.dropped.iter().find(|(k, _)| k == key).map(|(_, r)| *r);
        assert_eq!(
            reason("kubernetes.operator.job.upgrade.last-state-fallback.enabled"),
            Some(Dropped::Kubernetes)
        );
        assert_eq!(
            reason("high-availability.type"),
            Some(Dropped::HighAvailability)
        );
        assert_eq!(
            reason("high-availability.storageDir"),
            Some(Dropped::HighAvailability)
        );
        assert_eq!(reason("state.checkpoints.dir"), Some(Dropped::ClusterState));
        assert_eq!(
            reason("execution.checkpointing.dir"),
            Some(Dropped::ClusterState)
        );
        assert_eq!(reason("state.savepoints.dir"), Some(Dropped::ClusterState));
        assert_eq!(
            reason("state.checkpoint-storage"),
            Some(Dropped::ClusterState)
        );
        assert_eq!(
            reason("fs.s3a.aws.credentials.provider"),
            Some(Dropped::PodCredentials)
        );
        assert_eq!(reason("python.executable"), Some(Dropped::ImageInterpreter));
        // What the job itself depends on stays.
        assert_eq!(conf.entries["execution.checkpointing.interval"], "60 s");
        assert_eq!(conf.entries["taskmanager.numberOfTaskSlots"], "2");
        assert_eq!(conf.entries["s3.endpoint"], "http://127.0.0.1:9000");
        assert_eq!(conf.entries[PARALLELISM_KEY], "2");
        assert_eq!(
            conf.entries[PYTHON_EXECUTABLE_KEY],
            "/cache/pyflink-1.20.0/bin/python"
        );
        assert_eq!(
            conf.entries[PYTHON_CLIENT_EXECUTABLE_KEY],
            "/cache/pyflink-1.20.0/bin/python"
        );
        assert!(!conf.entries.contains_key("fs.s3a.aws.credentials.provider"));
        assert!(
            !conf
                .entries
                .keys()
                .any(|k| k.starts_with("high-availability"))
        );
    }

    #[test]
    fn local_state_directories_stay() {
        let deployment = BTreeMap::from([
            (
                "state.checkpoints.dir".to_owned(),
                "file:///tmp/checkpoints".to_owned(),
            ),
            (
                "state.checkpoint-storage".to_owned(),
                "filesystem".to_owned(),
            ),
        ]);
        let conf = local_configuration(BTreeMap::new(), &deployment, 1, &local());
        assert!(conf.dropped.is_empty(), "{:?}", conf.dropped);
        assert_eq!(
            conf.entries["state.checkpoints.dir"],
            "file:///tmp/checkpoints"
        );
        assert_eq!(conf.entries["state.checkpoint-storage"], "filesystem");
    }

    #[test]
    fn in_the_image_the_s3_plugin_reads_the_environment() {
        let runtime = Runtime::Image {
            python: "/usr/bin/python3".into(),
        };
        let conf = local_configuration(BTreeMap::new(), &deployment(), 1, &runtime);
        assert_eq!(
            conf.entries["fs.s3a.aws.credentials.provider"],
            "com.amazonaws.auth.EnvironmentVariableCredentialsProvider"
        );
        assert_eq!(conf.entries[PYTHON_EXECUTABLE_KEY], "/usr/bin/python3");
    }

    #[test]
    fn the_deployment_overrides_the_runtime_defaults() {
        let base = parse_config(
            CONFIG_YAML,
            "env:\n  java:\n    opts:\n      all: --add-opens=java.base/java.lang=ALL-UNNAMED\n\
             taskmanager:\n  numberOfTaskSlots: 1\n  memory:\n    process:\n      size: 1728m\n\
             pipeline:\n  jars: [a.jar, b.jar]\n",
        )
        .unwrap();
        assert_eq!(
            base["env.java.opts.all"],
            "--add-opens=java.base/java.lang=ALL-UNNAMED"
        );
        assert_eq!(base["taskmanager.memory.process.size"], "1728m");
        assert_eq!(base["taskmanager.numberOfTaskSlots"], 1);
        let conf = local_configuration(base, &deployment(), 1, &local());
        assert_eq!(conf.entries["taskmanager.numberOfTaskSlots"], "2");
        assert_eq!(
            conf.entries["env.java.opts.all"],
            "--add-opens=java.base/java.lang=ALL-UNNAMED"
        );
    }

    #[test]
    fn config_yaml_round_trips_through_flinks_own_format() {
        let mut entries = BTreeMap::new();
        entries.insert(
            "env.java.opts.all".to_owned(),
            Value::String("--add-opens=a=b: c".into()),
        );
        entries.insert("parallelism.default".to_owned(), Value::String("1".into()));
        entries.insert(
            "pipeline.jars".to_owned(),
            serde_json::json!(["file:///a.jar", "file:///b.jar"]),
        );
        entries.insert("weird key".to_owned(), Value::String("yes".into()));
        let text = render_config(CONFIG_YAML, &entries).unwrap();
        assert!(text.contains("parallelism.default: \"1\"\n"), "{text}");
        assert!(text.contains("\"weird key\": \"yes\"\n"), "{text}");
        assert_eq!(parse_config(CONFIG_YAML, &text).unwrap(), entries);

        let legacy = render_config(LEGACY_CONFIG_YAML, &entries).unwrap();
        assert!(
            legacy.contains("pipeline.jars: file:///a.jar;file:///b.jar\n"),
            "{legacy}"
        );
        assert!(
            legacy.contains("env.java.opts.all: --add-opens=a=b: c\n"),
            "{legacy}"
        );
        let parsed = parse_config(LEGACY_CONFIG_YAML, &legacy).unwrap();
        assert_eq!(parsed["parallelism.default"], "1");
    }

    #[test]
    fn a_value_the_legacy_format_cannot_hold_is_refused() {
        let entries = BTreeMap::from([("a.b".to_owned(), Value::String("x\ny".into()))]);
        let err = render_config(LEGACY_CONFIG_YAML, &entries).unwrap_err();
        assert!(err.to_string().contains("a.b"), "{err}");
    }

    #[test]
    fn each_release_reads_its_own_file() {
        let release = |v: &str| v.parse::<FlinkRelease>().unwrap();
        assert_eq!(
            config_file_name(&release("1.18.1"), false),
            LEGACY_CONFIG_YAML
        );
        assert_eq!(config_file_name(&release("1.19.0"), false), CONFIG_YAML);
        assert_eq!(
            config_file_name(&release("1.19.0"), true),
            LEGACY_CONFIG_YAML
        );
        assert_eq!(config_file_name(&release("1.20.0"), false), CONFIG_YAML);
        assert_eq!(config_file_name(&release("2.0.0"), true), CONFIG_YAML);
    }
}

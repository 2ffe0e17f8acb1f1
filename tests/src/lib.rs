//! Support for the workspace-level tests: where the workspace is, the endpoints of the
//! services that `cargo xtask test` starts, the `xtask` binary run as a user runs it, and the
//! counters that tell whether a run wrote anything: the AWS emulator's request recorder and
//! the registry's access log. `cargo xtask bench` counts its write columns with the same
//! recorder, [`AwsRequest`] and [`RegistryLog`], so that the tests and the bench agree on
//! what a write is.
//!
//! A test that needs a service calls [`service`] (or [`Services::from_env`]): when the
//! variable is missing it fails with a message saying how to start the services, so that a
//! missing service never reads as a pass.
//!
//! ```no_run
//! # async fn example() -> anyhow::Result<()> {
//! use flink_eks_tests::{AwsRecorder, RegistryLog, Services};
//!
//! let services = Services::from_env();
//! let recorder = AwsRecorder::new(&services.aws_endpoint);
//! let registry = RegistryLog::mark(&services.registry_log)?;
//! let recording = recorder.start().await?;
//! // ... run `cargo xtask deploy` ...
//! let aws_writes: Vec<_> = recording.stop().await?.into_iter().filter(|r| r.is_write()).collect();
//! let registry_writes = registry.writes_since("e2e/flink-s3")?;
//! assert!(aws_writes.is_empty() && registry_writes.is_empty());
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use base64::Engine as _;

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(".."))
}

/// The value of a service's environment variable, or a panic naming `cargo xtask test`.
pub fn service(var: &str) -> String {
    match std::env::var(var) {
        Ok(value) if !value.is_empty() => value,
        _ => panic!(
            "{var} is not set: this test talks to a real service. Run it through `cargo xtask test`, \
             which installs and starts the services (or `cargo xtask test --services-only` to start them \
             and print their environment)"
        ),
    }
}

/// A name unique to this process and call, for resources in shared services.
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    format!("{prefix}-{}-{n}-{:x}", std::process::id(), nanos % 0xfffff)
}

/// A Role someone else made (no flink-eks labels), granting `get` on configmaps: what the
/// tool must neither adopt nor delete.
pub fn someone_elses_role(namespace: &str, name: &str) -> k8s_openapi::api::rbac::v1::Role {
    use k8s_openapi::api::rbac::v1::{PolicyRule, Role};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    Role {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some(namespace.to_owned()),
            ..ObjectMeta::default()
        },
        rules: Some(vec![PolicyRule {
            api_groups: Some(vec![String::new()]),
            resources: Some(vec!["configmaps".into()]),
            verbs: vec!["get".into()],
            ..PolicyRule::default()
        }]),
    }
}

/// The services an end-to-end run talks to, from the variables `cargo xtask test` sets.
#[derive(Debug, Clone)]
pub struct Services {
    /// The AWS emulator (moto): `http://127.0.0.1:PORT`.
    pub aws_endpoint: String,
    /// The plain-HTTP registry: `127.0.0.1:PORT`.
    pub registry: String,
    /// The registry's log file, one access-log line per request.
    pub registry_log: PathBuf,
    /// The stand-in Flink image in the local Docker engine, to build `FROM`.
    pub base_image: String,
}

impl Services {
    /// Reads every variable; panics naming `cargo xtask test` when one is missing.
    pub fn from_env() -> Services {
        Services {
            aws_endpoint: service("FLINK_EKS_TEST_AWS_ENDPOINT"),
            registry: service("FLINK_EKS_TEST_REGISTRY"),
            registry_log: PathBuf::from(service("FLINK_EKS_TEST_REGISTRY_LOG")),
            base_image: service("FLINK_EKS_TEST_BASE_IMAGE"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The xtask binary

/// The environment variable that names the `xtask` binary to test, instead of the one
/// beside the test binaries.
pub const XTASK_ENV: &str = "FLINK_EKS_TEST_XTASK";

/// The `xtask` binary of this build, beside the test binaries (`target/debug/xtask`).
///
/// A test cannot build it (`cargo test` holds the build lock while tests run), so it must be
/// there already: `cargo xtask test` builds it before the tests run, and so does
/// `cargo build -p xtask`. A binary older than one of the sources it was built from (as cargo's
/// `xtask.d` lists them) is refused too, so that a test never passes on yesterday's code.
///
/// [`XTASK_ENV`] names another binary instead (a release build, or a copy that other builds
/// in a shared tree do not replace mid-run); that one is used as it is.
pub fn xtask_binary() -> Result<PathBuf> {
    if let Some(binary) = std::env::var_os(XTASK_ENV).filter(|v| !v.is_empty()) {
        let binary = PathBuf::from(binary);
        if !binary.is_file() {
            bail!("{XTASK_ENV}={} is not a file", binary.display());
        }
        return Ok(binary);
    }
    let exe = std::env::current_exe().context("cannot find the running test binary")?;
    // target/debug/deps/deploy-HASH -> target/debug/xtask
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .context("the test binary is not in target/<profile>/deps")?;
    let binary = profile_dir.join(format!("xtask{}", std::env::consts::EXE_SUFFIX));
    let built = std::fs::metadata(&binary)
        .and_then(|m| m.modified())
        .map_err(|_| {
            anyhow::anyhow!(
                "{} does not exist: build it with `cargo build -p xtask` (or run the tests through \
                 `cargo xtask test`, which builds it)",
                binary.display()
            )
        })?;
    let dep_info = std::fs::read_to_string(profile_dir.join("xtask.d")).unwrap_or_default();
    for source in dep_info_sources(&dep_info) {
        let modified = std::fs::metadata(&source).and_then(|m| m.modified());
        if modified.is_ok_and(|m| m > built) {
            bail!(
                "{} is older than {}: rebuild it with `cargo build -p xtask`",
                binary.display(),
                source.display()
            );
        }
    }
    Ok(binary)
}

/// The sources a cargo dep-info file (`target: a.rs b.rs ...`, spaces escaped as `\ `) lists
/// on its first line.
fn dep_info_sources(dep_info: &str) -> Vec<PathBuf> {
    let Some((_, sources)) = dep_info.lines().next().and_then(|l| l.split_once(": ")) else {
        return Vec::new();
    };
    let mut paths = Vec::new();
    let mut current = String::new();
    let mut chars = sources.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => current.extend(chars.next()),
            ' ' if current.is_empty() => {}
            ' ' => paths.push(PathBuf::from(std::mem::take(&mut current))),
            c => current.push(c),
        }
    }
    if !current.is_empty() {
        paths.push(PathBuf::from(current));
    }
    paths
}

/// How a run of `xtask` ended, with what it printed.
#[derive(Debug, Clone)]
pub struct XtaskRun {
    /// The command line, for messages.
    pub command: String,
    /// The exit code; `None` when a signal ended the process.
    pub code: Option<i32>,
    /// Everything printed on stdout (results: the JSON plan, the status).
    pub stdout: String,
    /// Everything printed on stderr (the plan table, progress, errors).
    pub stderr: String,
    /// How long the run took.
    pub elapsed: Duration,
}

impl XtaskRun {
    /// The stdout as JSON; the error names the command and shows what it printed.
    pub fn stdout_json(&self) -> Result<serde_json::Value> {
        serde_json::from_str(&self.stdout)
            .with_context(|| format!("the stdout of `{}` is not JSON\n{self}", self.command))
    }
}

/// The run as a failing assertion shows it: the command, the exit code and both outputs.
impl fmt::Display for XtaskRun {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let code = self
            .code
            .map_or_else(|| "killed by a signal".to_owned(), |c| c.to_string());
        writeln!(
            f,
            "`{}` exited with {code} after {:.1?}",
            self.command, self.elapsed
        )?;
        writeln!(f, "--- stdout\n{}", self.stdout.trim_end())?;
        write!(f, "--- stderr\n{}", self.stderr.trim_end())
    }
}

/// Environment variables the child keeps from the test's environment: what a shell gives
/// every command, and the Docker engine's address.
const INHERITED_ENV: &[&str] = &["PATH", "HOME", "TMPDIR", "DOCKER_HOST"];

/// The `xtask` binary with one configuration file and a controlled environment: only
/// [`INHERITED_ENV`] and the variables given, so that neither the developer's AWS profile,
/// kubeconfig and Docker credentials nor the test services' own variables leak into the run.
#[derive(Debug, Clone)]
pub struct Xtask {
    binary: PathBuf,
    config: PathBuf,
    env: Vec<(String, String)>,
}

impl Xtask {
    /// `xtask --config CONFIG` with `env`; fails when the binary is missing or stale.
    pub fn new(config: &Path, env: Vec<(String, String)>) -> Result<Xtask> {
        Ok(Xtask {
            binary: xtask_binary()?,
            config: config.to_path_buf(),
            env,
        })
    }

    /// The same with `key` set to `value` in its environment (replacing an inherited one).
    #[must_use]
    pub fn with_env(mut self, key: &str, value: impl Into<String>) -> Xtask {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_owned(), value.into()));
        self
    }

    /// Runs `xtask --config CONFIG ARGS...` from the configuration file's folder, to its end.
    pub async fn run(&self, args: &[&str]) -> Result<XtaskRun> {
        let command = self.command_line(args);
        let mut cmd = self.command(args);
        cmd.stdin(Stdio::null());
        let started = Instant::now();
        let output = cmd
            .output()
            .await
            .with_context(|| format!("cannot run {}", self.binary.display()))?;
        Ok(XtaskRun {
            command,
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            elapsed: started.elapsed(),
        })
    }

    /// Starts `xtask --config CONFIG ARGS...` with stdin and stderr piped, for a run that
    /// asks before it acts.
    pub fn spawn(&self, args: &[&str]) -> Result<PromptedRun> {
        let mut cmd = self.command(args);
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .with_context(|| format!("cannot run {}", self.binary.display()))?;
        let stderr = child.stderr.take().context("no stderr pipe")?;
        Ok(PromptedRun {
            command: self.command_line(args),
            child,
            stderr,
            printed: Vec::new(),
            started: Instant::now(),
        })
    }

    fn command_line(&self, args: &[&str]) -> String {
        format!(
            "cargo xtask --config {} {}",
            self.config.display(),
            args.join(" ")
        )
    }

    /// The command, with the controlled environment, from the configuration's folder.
    fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(&self.binary);
        cmd.arg("--config")
            .arg(&self.config)
            .args(args)
            .env_clear()
            .envs(
                INHERITED_ENV
                    .iter()
                    .filter_map(|k| std::env::var(k).ok().map(|v| (*k, v))),
            )
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .kill_on_drop(true);
        if let Some(dir) = self.config.parent() {
            cmd.current_dir(dir);
        }
        cmd
    }
}

/// A run of `xtask` that waits at a prompt (`deploy --confirm`): the test reads what it printed
/// so far, changes the world, then answers.
#[derive(Debug)]
pub struct PromptedRun {
    command: String,
    child: tokio::process::Child,
    stderr: tokio::process::ChildStderr,
    printed: Vec<u8>,
    started: Instant,
}

impl PromptedRun {
    /// Reads stderr until it holds `prompt`, for at most `timeout`; returns what was printed.
    pub async fn wait_for(&mut self, prompt: &str, timeout: Duration) -> Result<String> {
        use tokio::io::AsyncReadExt as _;
        let deadline = Instant::now() + timeout;
        let mut chunk = [0u8; 4096];
        loop {
            let text = String::from_utf8_lossy(&self.printed).into_owned();
            if text.contains(prompt) {
                return Ok(text);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            let read = tokio::time::timeout(left, self.stderr.read(&mut chunk))
                .await
                .map_err(|_| {
                    anyhow::anyhow!(
                        "`{}` did not print {prompt:?} within {timeout:?}\n{text}",
                        self.command
                    )
                })?
                .context("cannot read the run's stderr")?;
            if read == 0 {
                bail!(
                    "`{}` ended before printing {prompt:?}\n{text}",
                    self.command
                );
            }
            self.printed.extend_from_slice(&chunk[..read]);
        }
    }

    /// Sends SIGINT (what Ctrl-C sends) and waits for the end of the run.
    pub async fn interrupt(self) -> Result<XtaskRun> {
        let pid = self.child.id().context("the run has already ended")?;
        let sent = tokio::process::Command::new("kill")
            .args(["-INT", &pid.to_string()])
            .status()
            .await
            .context("cannot run kill")?;
        if !sent.success() {
            bail!("kill -INT {pid} failed: {sent}");
        }
        self.finish().await
    }

    /// Reads the rest of the run's standard error and waits for its end.
    async fn finish(mut self) -> Result<XtaskRun> {
        use tokio::io::AsyncReadExt as _;
        self.stderr.read_to_end(&mut self.printed).await?;
        let output = self.child.wait_with_output().await?;
        Ok(XtaskRun {
            command: self.command,
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&self.printed).into_owned(),
            elapsed: self.started.elapsed(),
        })
    }

    /// Types `answer` and a newline, closes stdin, and waits for the end of the run.
    pub async fn answer(mut self, answer: &str) -> Result<XtaskRun> {
        use tokio::io::AsyncWriteExt as _;
        let mut stdin = self.child.stdin.take().context("the run has no stdin")?;
        stdin.write_all(format!("{answer}\n").as_bytes()).await?;
        drop(stdin);
        self.finish().await
    }
}

// ---------------------------------------------------------------------------------------------
// The AWS emulator's recorder

/// moto's request recorder (`/moto-api/recorder/...`): every request the server receives,
/// between a start and a stop.
///
/// The recorder is one per server, so recordings are taken one at a time in this process
/// ([`AwsRecorder::start`] waits for the previous [`Recording`] to stop). Requests of other
/// processes using the same server are recorded too: tell them apart by
/// [`AwsRequest::access_key`].
#[derive(Debug, Clone)]
pub struct AwsRecorder {
    endpoint: String,
    http: reqwest::Client,
}

/// A recording in progress; [`Recording::stop`] ends it and returns what was recorded.
#[derive(Debug)]
pub struct Recording<'a> {
    recorder: &'a AwsRecorder,
    _exclusive: tokio::sync::MutexGuard<'static, ()>,
}

/// One recording at a time in this process.
static RECORDER_LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

impl AwsRecorder {
    /// The recorder of the moto server at `endpoint` (`http://127.0.0.1:PORT`).
    pub fn new(endpoint: &str) -> AwsRecorder {
        AwsRecorder {
            endpoint: endpoint.trim_end_matches('/').to_owned(),
            http: reqwest::Client::new(),
        }
    }

    /// Clears the recording and starts recording.
    pub async fn start(&self) -> Result<Recording<'_>> {
        let exclusive = RECORDER_LOCK.lock().await;
        self.call(reqwest::Method::POST, "reset-recording").await?;
        self.call(reqwest::Method::POST, "start-recording").await?;
        Ok(Recording {
            recorder: self,
            _exclusive: exclusive,
        })
    }

    async fn call(&self, method: reqwest::Method, action: &str) -> Result<String> {
        let url = format!("{}/moto-api/recorder/{action}", self.endpoint);
        let response = self
            .http
            .request(method, &url)
            .send()
            .await
            .with_context(|| format!("moto's recorder at {url} does not answer"))?;
        let status = response.status();
        let body = response
            .text()
            .await
            .with_context(|| format!("reading the answer of {url}"))?;
        if !status.is_success() {
            bail!("{url} answered {status}: {body}");
        }
        Ok(body)
    }
}

impl Recording<'_> {
    /// Stops recording and returns every request recorded, in order.
    pub async fn stop(self) -> Result<Vec<AwsRequest>> {
        self.recorder
            .call(reqwest::Method::POST, "stop-recording")
            .await?;
        let text = self
            .recorder
            .call(reqwest::Method::GET, "download-recording")
            .await?;
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(AwsRequest::parse)
            .collect()
    }
}

/// One request the AWS emulator recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsRequest {
    /// The HTTP method.
    pub method: String,
    /// The URL path and query.
    pub path: String,
    /// The signing service of the `Authorization` header (`iam`, `sts`, `eks`, `s3`).
    pub service: Option<String>,
    /// The access key id that signed the request.
    pub access_key: Option<String>,
    /// The `Action` of a query-protocol request (IAM, STS), from the body or the query.
    pub action: Option<String>,
}

impl AwsRequest {
    /// Parses one line of moto's `download-recording` (a JSON object with `method`, `url`,
    /// `headers`, `body` and `body_encoded`, the body base64 when encoded).
    pub fn parse(line: &str) -> Result<AwsRequest> {
        let record: serde_json::Value = serde_json::from_str(line)
            .with_context(|| format!("a recorded request is not JSON: {line}"))?;
        let text = |key: &str| record.get(key).and_then(|v| v.as_str()).unwrap_or_default();
        let url = text("url");
        let path = match url.find("://") {
            Some(scheme) => url[scheme + 3..]
                .find('/')
                .map_or("/", |p| &url[scheme + 3 + p..]),
            None => url,
        };
        let body = match record.get("body_encoded").and_then(|v| v.as_bool()) {
            Some(true) => base64::engine::general_purpose::STANDARD
                .decode(text("body"))
                .with_context(|| format!("a recorded body is not base64: {line}"))?,
            _ => text("body").as_bytes().to_vec(),
        };
        let authorization = record
            .get("headers")
            .and_then(|h| h.as_object())
            .and_then(|h| {
                h.iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case("authorization"))
                    .and_then(|(_, v)| v.as_str())
            });
        let (access_key, service) = authorization.map(credential_scope).unwrap_or_default();
        let query = path.split_once('?').map_or("", |(_, q)| q);
        let action = form_value(&String::from_utf8_lossy(&body), "Action")
            .or_else(|| form_value(query, "Action"))
            .filter(|a| !a.is_empty());
        Ok(AwsRequest {
            method: text("method").to_ascii_uppercase(),
            path: path.to_owned(),
            service,
            access_key,
            action,
        })
    }

    /// Whether the request changes anything.
    ///
    /// IAM and STS speak the query protocol: everything is a POST, and the `Action` tells
    /// (`Get*`, `List*` and `Describe*` read, `GetCallerIdentity` included). EKS is REST-JSON
    /// and S3 REST: `GET` and `HEAD` read, every other method writes. A request of an unknown
    /// service counts as a write unless it is a `GET` or `HEAD`.
    pub fn is_write(&self) -> bool {
        if let Some(action) = &self.action {
            return !["Get", "List", "Describe"]
                .iter()
                .any(|read| action.starts_with(read));
        }
        !matches!(self.method.as_str(), "GET" | "HEAD")
    }

    /// The AWS service the request was signed for, from its SigV4 credential scope; `None`
    /// for an unsigned request and for the emulator's own API (`/moto-api/...`), which are no
    /// AWS calls.
    pub fn aws_service(&self) -> Option<AwsService> {
        if self.path.starts_with("/moto-api") {
            return None;
        }
        Some(match self.service.as_deref()? {
            "iam" => AwsService::Iam,
            "sts" => AwsService::Sts,
            "s3" => AwsService::S3,
            "eks" => AwsService::Eks,
            other => AwsService::Other(other.to_owned()),
        })
    }
}

/// The AWS service of a request ([`AwsRequest::aws_service`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AwsService {
    /// IAM (query protocol).
    Iam,
    /// STS (query protocol).
    Sts,
    /// S3 (REST).
    S3,
    /// EKS (REST-JSON).
    Eks,
    /// Any other service, by its signing name (`sqs`).
    Other(String),
}

/// `iam CreateRole`, `s3 PUT /bucket/key`: the request as a test failure shows it.
impl fmt::Display for AwsRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let service = self.service.as_deref().unwrap_or("?");
        match &self.action {
            Some(action) => write!(f, "{service} {action}"),
            None => write!(f, "{service} {} {}", self.method, self.path),
        }
    }
}

/// The access key and the service of a SigV4 `Authorization` header:
/// `AWS4-HMAC-SHA256 Credential=KEY/DATE/REGION/SERVICE/aws4_request, ...`.
fn credential_scope(authorization: &str) -> (Option<String>, Option<String>) {
    let Some(start) = authorization.find("Credential=") else {
        return (None, None);
    };
    let scope = authorization[start + "Credential=".len()..]
        .split([',', ' '])
        .next()
        .unwrap_or_default();
    let parts: Vec<&str> = scope.split('/').collect();
    let key = parts
        .first()
        .filter(|k| !k.is_empty())
        .map(|k| k.to_string());
    let service = parts.get(3).map(|s| s.to_string());
    (key, service)
}

/// The first value of `name` in an `a=1&b=2` form or query string.
fn form_value(form: &str, name: &str) -> Option<String> {
    form.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        (key == name).then(|| value.to_owned())
    })
}

// ---------------------------------------------------------------------------------------------
// The registry's access log

/// The registry's log file from a point on: what was appended after [`RegistryLog::mark`].
#[derive(Debug, Clone)]
pub struct RegistryLog {
    path: PathBuf,
    offset: u64,
}

/// One request of the registry's access log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryRequest {
    /// The HTTP method.
    pub method: String,
    /// The request path, e.g. `/v2/e2e/flink-s3/manifests/sha256-...`.
    pub path: String,
    /// The response status.
    pub status: u16,
}

impl RegistryRequest {
    /// Parses an access-log line:
    /// `127.0.0.1 - - [27/Nov/2026:09:46:57 +0000] "HEAD /v2/... HTTP/1.1" 200 ...`.
    /// Other lines (the registry's own `time=... level=...` messages) give `None`.
    pub fn parse(line: &str) -> Option<RegistryRequest> {
        let (_, rest) = line.split_once("] \"")?;
        let (request, rest) = rest.split_once('"')?;
        let mut words = request.split(' ');
        let method = words.next()?;
        let path = words.next()?;
        let status = rest.split_whitespace().next()?.parse().ok()?;
        Some(RegistryRequest {
            method: method.to_owned(),
            path: path.to_owned(),
            status,
        })
    }

    /// Whether the request writes to the registry: `PUT`, `POST`, `PATCH` or `DELETE` on its
    /// API (`/v2/...`).
    pub fn is_write(&self) -> bool {
        matches!(self.method.as_str(), "PUT" | "POST" | "PATCH" | "DELETE")
            && self.path.starts_with("/v2/")
    }

    /// Whether the request is about `repository` (`e2e/flink-s3`): under `/v2/REPOSITORY/`.
    pub fn is_for(&self, repository: &str) -> bool {
        self.path
            .strip_prefix("/v2/")
            .and_then(|p| p.strip_prefix(repository))
            .is_some_and(|p| p.starts_with('/'))
    }
}

impl fmt::Display for RegistryRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.method, self.path, self.status)
    }
}

impl RegistryLog {
    /// Marks the log's current end.
    pub fn mark(path: &Path) -> Result<RegistryLog> {
        let offset = std::fs::metadata(path)
            .with_context(|| format!("cannot read the registry log {}", path.display()))?
            .len();
        Ok(RegistryLog {
            path: path.to_path_buf(),
            offset,
        })
    }

    /// Every request logged since the mark, whatever its repository.
    pub fn all_requests_since(&self) -> Result<Vec<RegistryRequest>> {
        use std::io::{Read, Seek, SeekFrom};
        let mut file = std::fs::File::open(&self.path)
            .with_context(|| format!("cannot open the registry log {}", self.path.display()))?;
        file.seek(SeekFrom::Start(self.offset))?;
        let mut appended = Vec::new();
        file.read_to_end(&mut appended)?;
        Ok(String::from_utf8_lossy(&appended)
            .lines()
            .filter_map(RegistryRequest::parse)
            .collect())
    }

    /// The requests for `repository` (the path after the registry host) logged since the mark.
    pub fn requests_since(&self, repository: &str) -> Result<Vec<RegistryRequest>> {
        Ok(self
            .all_requests_since()?
            .into_iter()
            .filter(|r| r.is_for(repository))
            .collect())
    }

    /// The writes for `repository` logged since the mark.
    pub fn writes_since(&self, repository: &str) -> Result<Vec<RegistryRequest>> {
        Ok(self
            .requests_since(repository)?
            .into_iter()
            .filter(RegistryRequest::is_write)
            .collect())
    }
}

/// Whether the registry at `registry` (`127.0.0.1:PORT`, plain HTTP, no auth) holds
/// `repository:tag`, as `HEAD /v2/REPOSITORY/manifests/TAG` answers.
pub async fn registry_has_tag(registry: &str, repository: &str, tag: &str) -> Result<bool> {
    let url = format!("http://{registry}/v2/{repository}/manifests/{tag}");
    let response = reqwest::Client::new()
        .head(&url)
        .header(
            reqwest::header::ACCEPT,
            "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, \
             application/vnd.docker.distribution.manifest.list.v2+json, \
             application/vnd.docker.distribution.manifest.v2+json",
        )
        .send()
        .await
        .with_context(|| format!("HEAD {url}"))?;
    match response.status().as_u16() {
        200 => Ok(true),
        404 => Ok(false),
        other => bail!("HEAD {url} answered {other}"),
    }
}

// ---------------------------------------------------------------------------------------------
// A deployment of its own, for runs that must be refused

/// The example script, copied into every [`Sandbox`].
const EXAMPLE_SCRIPT: &str = "examples/jobs/python_demo_s3.py";

/// A deployment in a folder of its own: a valid configuration (`deploy.toml`) naming
/// resources no other run uses, the example script beside it, a kubeconfig, an empty Docker
/// config, and an AWS access key of its own, so that what its runs send to the AWS emulator
/// is told apart by [`AwsRequest::access_key`]. Nothing is created in the services: a test
/// creates what its case needs. The folder is removed on drop.
#[derive(Debug)]
pub struct Sandbox {
    /// The folder.
    pub dir: PathBuf,
    /// `deploy.toml` in it.
    pub config: PathBuf,
    /// The script the configuration names (`job.py`).
    pub script: PathBuf,
    /// The job, role, policy and cluster name (one unique name for all of them).
    pub name: String,
    /// The bucket named by the configuration (not created).
    pub bucket: String,
    /// The image repository in the test registry.
    pub repository: String,
    /// The access key the runs sign with.
    pub access_key: String,
    services: Services,
}

impl Sandbox {
    /// Writes the folder for `services`, with a kubeconfig for the cluster `kubeconfig_yaml`
    /// describes (a stand-in's).
    pub fn new(services: &Services, kubeconfig_yaml: &str) -> Result<Sandbox> {
        let name = unique("bad").replace('_', "-");
        let dir = std::env::temp_dir().join(&name);
        std::fs::create_dir_all(dir.join("docker"))
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let script = dir.join("job.py");
        std::fs::copy(workspace_root().join(EXAMPLE_SCRIPT), &script)
            .context("cannot copy the example script")?;
        std::fs::write(dir.join("kubeconfig"), kubeconfig_yaml)?;
        let sandbox = Sandbox {
            config: dir.join("deploy.toml"),
            script,
            bucket: format!("{name}-bucket"),
            repository: format!("bad-input/{name}"),
            access_key: format!("AKIA{}", name.to_uppercase().replace('-', "")),
            name,
            dir,
            services: services.clone(),
        };
        sandbox.write_config(&sandbox.config_text())?;
        Ok(sandbox)
    }

    /// The valid configuration: `[job]` first, its `name` on line 2.
    pub fn config_text(&self) -> String {
        format!(
            r#"[job]
name = "{name}"
namespace = "default"
script = "job.py"
flink_version = "1.20.0"
timeout_secs = 60

[s3]
bucket = "{bucket}"
key = "jobs/job.py"
region = "us-east-1"

[image]
repository = "{registry}/{repository}"
base = "{base}"
pyflink = false
pull = "never"

[irsa]
cluster = "{name}"
role_name = "{name}"
policy_name = "{name}"
"#,
            name = self.name,
            bucket = self.bucket,
            registry = self.services.registry,
            repository = self.repository,
            base = self.services.base_image,
        )
    }

    /// Replaces `deploy.toml`.
    pub fn write_config(&self, text: &str) -> Result<()> {
        std::fs::write(&self.config, text)
            .with_context(|| format!("cannot write {}", self.config.display()))
    }

    /// The environment of a run: the sandbox's kubeconfig, Docker config and AWS key, the
    /// emulator's endpoint, and none of the developer's own AWS files.
    pub fn env(&self) -> Vec<(String, String)> {
        let mut env = self.env_without_aws_credentials();
        env.push(("AWS_ACCESS_KEY_ID".into(), self.access_key.clone()));
        env.push(("AWS_SECRET_ACCESS_KEY".into(), "bad-input-secret".into()));
        env
    }

    /// [`Sandbox::env`] with no AWS credentials at all.
    pub fn env_without_aws_credentials(&self) -> Vec<(String, String)> {
        let path = |name: &str| self.dir.join(name).display().to_string();
        [
            ("KUBECONFIG", path("kubeconfig")),
            ("DOCKER_CONFIG", path("docker")),
            ("AWS_ENDPOINT_URL", self.services.aws_endpoint.clone()),
            ("AWS_REGION", "us-east-1".to_owned()),
            ("AWS_CONFIG_FILE", path("no-aws-config")),
            ("AWS_SHARED_CREDENTIALS_FILE", path("no-aws-credentials")),
            ("AWS_EC2_METADATA_DISABLED", "true".to_owned()),
            ("FLINK_EKS_CACHE_DIR", path("cache")),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    /// `xtask --config deploy.toml` with [`Sandbox::env`] and `extra` variables.
    pub fn xtask(&self, extra: &[(&str, &str)]) -> Result<Xtask> {
        let mut env = self.env();
        env.extend(
            extra
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        Xtask::new(&self.config, env)
    }

    /// Runs `run` and counts what it sent: the AWS requests signed with the sandbox's key,
    /// the registry's log lines for its repository, and the Kubernetes writes `kube_writes`
    /// reports (a stand-in's counter, read before and after).
    pub async fn counted(
        &self,
        kube_writes: impl Fn() -> u64,
        run: impl std::future::Future<Output = Result<XtaskRun>>,
    ) -> Result<(XtaskRun, Writes)> {
        let registry = RegistryLog::mark(&self.services.registry_log)?;
        let recorder = AwsRecorder::new(&self.services.aws_endpoint);
        let recording = recorder.start().await?;
        let kube_before = kube_writes();
        let run = run.await;
        let kube = kube_writes() - kube_before;
        let recorded = recording.stop().await?;
        let run = run?;
        let writes = Writes {
            aws: recorded
                .into_iter()
                .filter(|r| r.access_key.as_deref() == Some(self.access_key.as_str()))
                .filter(AwsRequest::is_write)
                .collect(),
            kube,
            registry: registry
                .writes_since(&self.repository)?
                .into_iter()
                .collect(),
        };
        Ok((run, writes))
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The write requests of one run, where each would land.
#[derive(Debug, Clone)]
pub struct Writes {
    /// AWS requests that write, as moto's recorder saw them.
    pub aws: Vec<AwsRequest>,
    /// Kubernetes writes, as the stand-in counted them (refused ones included).
    pub kube: u64,
    /// Registry requests that write.
    pub registry: Vec<RegistryRequest>,
}

impl Writes {
    /// Not one write anywhere.
    pub fn is_none(&self) -> bool {
        self.aws.is_empty() && self.kube == 0 && self.registry.is_empty()
    }
}

impl fmt::Display for Writes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let aws: Vec<String> = self.aws.iter().map(ToString::to_string).collect();
        let registry: Vec<String> = self.registry.iter().map(ToString::to_string).collect();
        write!(
            f,
            "AWS writes: {aws:?}; Kubernetes writes: {}; registry writes: {registry:?}",
            self.kube
        )
    }
}

impl XtaskRun {
    /// The lines of stderr that report an error (`error: ...`).
    pub fn error_lines(&self) -> Vec<&str> {
        self.stderr
            .lines()
            .filter(|l| l.starts_with("error:"))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recorded(method: &str, url: &str, auth_service: &str, body: Option<&str>) -> AwsRequest {
        let headers = serde_json::json!({
            "Host": "127.0.0.1:5103",
            "Authorization": format!(
                "AWS4-HMAC-SHA256 Credential=ASIAE2E/20261127/us-east-1/{auth_service}/aws4_request, \
                 SignedHeaders=host, Signature=00"
            ),
        });
        let line = match body {
            Some(body) => serde_json::json!({"headers": headers, "method": method, "url": url,
                "body": base64::engine::general_purpose::STANDARD.encode(body), "body_encoded": true}),
            None => serde_json::json!({"headers": headers, "method": method, "url": url,
                "body": "", "body_encoded": false}),
        };
        AwsRequest::parse(&line.to_string()).unwrap()
    }

    #[test]
    fn query_protocol_requests_are_judged_by_their_action() {
        let read = recorded(
            "POST",
            "http://127.0.0.1:5103/",
            "sts",
            Some("Action=GetCallerIdentity&Version=2011-06-15"),
        );
        assert_eq!(read.action.as_deref(), Some("GetCallerIdentity"));
        assert_eq!(read.service.as_deref(), Some("sts"));
        assert_eq!(read.access_key.as_deref(), Some("ASIAE2E"));
        assert!(!read.is_write(), "{read}");
        for action in ["GetRole", "ListAttachedRolePolicies", "ListPolicyVersions"] {
            let r = recorded(
                "POST",
                "http://h/",
                "iam",
                Some(&format!("Action={action}&A=b")),
            );
            assert!(!r.is_write(), "{r}");
        }
        for action in [
            "CreateRole",
            "TagRole",
            "AttachRolePolicy",
            "CreatePolicyVersion",
            "DeletePolicy",
        ] {
            let r = recorded(
                "POST",
                "http://h/",
                "iam",
                Some(&format!("Version=2010-05-08&Action={action}")),
            );
            assert!(r.is_write(), "{r}");
            assert_eq!(r.to_string(), format!("iam {action}"));
        }
        // The action may come in the query string too.
        let r = recorded("GET", "http://h/?Action=DeleteRole&RoleName=x", "iam", None);
        assert!(r.is_write(), "{r}");
    }

    #[test]
    fn rest_requests_are_judged_by_their_method() {
        let cases = [
            ("GET", "/clusters/demo", "eks", false),
            ("POST", "/clusters", "eks", true),
            ("DELETE", "/clusters/demo", "eks", true),
            ("HEAD", "/bucket/test/job.py", "s3", false),
            ("GET", "/bucket/test/job.py", "s3", false),
            ("PUT", "/bucket/test/job.py", "s3", true),
            ("POST", "/bucket?delete", "s3", true),
            ("DELETE", "/bucket/test/job.py", "s3", true),
        ];
        for (method, path, service, write) in cases {
            let r = recorded(
                method,
                &format!("http://127.0.0.1:5103{path}"),
                service,
                None,
            );
            assert_eq!(r.path, path);
            assert_eq!(r.is_write(), write, "{r}");
        }
    }

    #[test]
    fn the_aws_service_comes_from_the_signing_scope() {
        let post = |url: &str, service: &str| recorded("POST", url, service, None);
        let cases = [
            (post("http://h/", "iam"), Some(AwsService::Iam)),
            (post("http://h/", "sts"), Some(AwsService::Sts)),
            (post("http://h/bucket?delete", "s3"), Some(AwsService::S3)),
            (
                post("http://h/clusters/c/pod-identity-associations", "eks"),
                Some(AwsService::Eks),
            ),
            (
                post("http://h/", "sqs"),
                Some(AwsService::Other("sqs".into())),
            ),
            // The emulator's own API is no AWS call, signed or not.
            (post("http://h/moto-api/reset", "s3"), None),
        ];
        for (request, service) in cases {
            assert_eq!(request.aws_service(), service, "{request}");
        }
        // An empty `Action` is no action: the method judges.
        let r = recorded("GET", "http://h/?Action=", "iam", None);
        assert_eq!(r.action, None);
        assert!(!r.is_write(), "{r}");
    }

    #[test]
    fn an_unsigned_request_has_no_key_and_is_judged_by_its_method() {
        let line = r#"{"headers": {"Host": "h"}, "method": "put", "url": "http://h/b/k", "body": "", "body_encoded": false}"#;
        let r = AwsRequest::parse(line).unwrap();
        assert_eq!(r.aws_service(), None);
        assert_eq!((r.access_key, r.service), (None, None));
        assert_eq!(r.method, "PUT");
        assert!(AwsRequest::parse("not json").is_err());
    }

    #[test]
    fn dep_info_lists_the_sources_with_escaped_spaces() {
        let info =
            "/t/debug/xtask: /w/xtask/src/main.rs /w/my\\ dir/lib.rs\n\n/w/xtask/src/main.rs:\n";
        assert_eq!(
            dep_info_sources(info),
            [
                PathBuf::from("/w/xtask/src/main.rs"),
                PathBuf::from("/w/my dir/lib.rs")
            ]
        );
        assert!(dep_info_sources("").is_empty());
    }

    #[test]
    fn registry_access_lines_parse_and_other_lines_do_not() {
        let line = r#"127.0.0.1 - - [27/Nov/2026:09:46:57 +0000] "HEAD /v2/e2e/flink-s3/manifests/sha256-28 HTTP/1.1" 200 161 "" "flink-eks-image-builder/0.1.0""#;
        let r = RegistryRequest::parse(line).unwrap();
        assert_eq!(r.method, "HEAD");
        assert_eq!(r.path, "/v2/e2e/flink-s3/manifests/sha256-28");
        assert_eq!(r.status, 200);
        assert!(!r.is_write());
        assert!(r.is_for("e2e/flink-s3"));
        assert!(
            !r.is_for("e2e/flink"),
            "a prefix of the name is another repository"
        );
        let put = r#"127.0.0.1 - - [27/Nov/2026:09:46:58 +0000] "PUT /v2/e2e/flink-s3/manifests/sha256-28 HTTP/1.1" 201 0 "" "docker""#;
        assert!(RegistryRequest::parse(put).unwrap().is_write());
        for upload in [
            r#"127.0.0.1 - - [27/Nov/2026:09:46:23 +0000] "POST /v2/bench/cli-0/blobs/uploads/ HTTP/1.1" 202 0 "" "docker/20.10.24""#,
            r#"127.0.0.1 - - [27/Nov/2026:09:46:23 +0000] "PATCH /v2/bench/cli-0/blobs/uploads/abc HTTP/1.1" 202 0 "" "docker/20.10.24""#,
        ] {
            assert!(
                RegistryRequest::parse(upload).unwrap().is_write(),
                "{upload}"
            );
        }
        let outside_the_api =
            r#"127.0.0.1 - - [27/Nov/2026:09:46:23 +0000] "PUT /debug/x HTTP/1.1" 404 0 "" "curl""#;
        assert!(!RegistryRequest::parse(outside_the_api).unwrap().is_write());
        let logrus = r#"time="2026-11-27T09:48:01Z" level=error msg="response completed with error" http.request.method=HEAD http.request.uri=/v2/e2e/flink-s3/manifests/x"#;
        assert_eq!(RegistryRequest::parse(logrus), None);
    }

    #[test]
    fn the_registry_log_is_read_from_the_mark() {
        let dir = std::env::temp_dir().join(unique("registry-log"));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("registry.log");
        let line = |method: &str, repo: &str| {
            format!(
                "127.0.0.1 - - [27/Nov/2026:09:46:57 +0000] \"{method} /v2/{repo}/blobs/uploads/ HTTP/1.1\" 202 0 \"\" \"docker\"\n"
            )
        };
        std::fs::write(&path, line("POST", "e2e/a")).unwrap();
        let mark = RegistryLog::mark(&path).unwrap();
        let mut more = line("POST", "e2e/a");
        more.push_str(&line("GET", "e2e/a"));
        more.push_str(&line("PATCH", "e2e/b"));
        std::fs::write(&path, format!("{}{more}", line("POST", "e2e/a"))).unwrap();
        let requests = mark.requests_since("e2e/a").unwrap();
        assert_eq!(requests.len(), 2, "{requests:?}");
        assert_eq!(mark.all_requests_since().unwrap().len(), 3);
        assert_eq!(mark.writes_since("e2e/a").unwrap().len(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

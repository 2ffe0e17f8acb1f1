//! The bench's environment: the services, the binaries both flows run, the one environment
//! their processes get, timed runs, and the windows in which write requests are counted.

use std::ffi::OsString;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use flink_eks_tests::{AwsRecorder, Recording, RegistryLog, XTASK_ENV};

use super::fixtures::{Deployment, deployment_name};
use super::proxy::{Proxies, Requests, url_via};
use super::writes::Writes;
use super::{BUCKET, CLUSTER, Flow, NAMESPACE, REGION};
use crate::testenv::{Services, which};

/// The services, and what both flows need to reach them.
pub(super) struct Stand {
    /// The bench's own folder in the services' run folder.
    pub(super) work: PathBuf,
    /// The environment of both flows' processes (and nothing else of the bench's).
    env: Vec<(String, String)>,
    recorder: AwsRecorder,
    /// The latency proxies the flows' processes talk to the services through.
    pub(super) proxies: Proxies,
    http: reqwest::Client,
    pub(super) kube_url: String,
    /// The registry as the flows reach it: through its proxy.
    pub(super) registry: String,
    registry_log: PathBuf,
    /// The deploy binary under test: a copy, see [`deploy_binary`].
    pub(super) xtask: PathBuf,
    pub(super) cli_flow: PathBuf,
    pub(super) bash: PathBuf,
    time: PathBuf,
    pub(super) aws: PathBuf,
    pub(super) kubectl: PathBuf,
}

/// Starts counting: moto's recorder from empty, the stand-in's counters, the registry log.
pub(super) struct Window<'a> {
    recording: Recording<'a>,
    kube_writes: u64,
    registry: RegistryLog,
    requests: Requests,
}

/// A finished process run by [`Stand::run_timed`].
pub(super) struct Timed {
    pub(super) seconds: f64,
    pub(super) peak_rss_kib: Option<u64>,
    /// stderr, each line with the time it was read (µs since the epoch).
    pub(super) lines: Vec<(i64, String)>,
    /// When the process was started (µs since the epoch).
    pub(super) started_us: i64,
}

/// Where the deploy binary remembers clusters between runs (its documented variable).
pub(super) const CACHE_DIR_ENV: &str = "FLINK_EKS_CACHE_DIR";

impl Stand {
    /// The flows reach moto, the registry and the stand-in through `proxies`; the bench's own
    /// requests (counting, the status changes) go to the services directly.
    pub(super) async fn new(root: &Path, services: &Services, kubectl: PathBuf) -> Result<Stand> {
        let work = services.dir.join("bench");
        std::fs::create_dir_all(work.join("docker-config"))?;
        std::fs::write(work.join("docker-config/config.json"), "{}\n")?;
        let moto = services.var("FLINK_EKS_TEST_AWS_ENDPOINT")?.to_owned();
        let kube_url = services.var("FLINK_EKS_TEST_KUBE_URL")?.to_owned();
        let registry = services.var("FLINK_EKS_TEST_REGISTRY")?.to_owned();
        let proxies = Proxies::start(&moto, &registry, &kube_url).await?;
        // The stand-in's kubeconfig, its server pointed at the proxy.
        let kubeconfig = work.join("kubeconfig");
        let given = services.var("FLINK_EKS_TEST_KUBECONFIG")?;
        let text =
            std::fs::read_to_string(given).with_context(|| format!("cannot read {given}"))?;
        if !text.contains(&kube_url) {
            bail!("{given} does not name the stand-in's URL {kube_url}");
        }
        std::fs::write(
            &kubeconfig,
            text.replace(&kube_url, &url_via(&kube_url, proxies.kubernetes.addr)),
        )?;
        let path = std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".to_owned());
        let home = std::env::var("HOME").unwrap_or_else(|_| "/root".to_owned());
        let mut env: Vec<(String, String)> = vec![
            ("PATH".into(), path),
            ("HOME".into(), home),
            ("LANG".into(), "C.UTF-8".into()),
            ("AWS_ACCESS_KEY_ID".into(), "testing".into()),
            ("AWS_SECRET_ACCESS_KEY".into(), "testing".into()),
            ("AWS_REGION".into(), REGION.into()),
            ("AWS_DEFAULT_REGION".into(), REGION.into()),
            ("AWS_ENDPOINT_URL".into(), url_via(&moto, proxies.aws.addr)),
            ("KUBECONFIG".into(), kubeconfig.display().to_string()),
        ];
        // No file of the user's: the same empty Docker, AWS and kubectl settings for both.
        for (key, path) in [
            ("DOCKER_CONFIG", work.join("docker-config")),
            ("KUBECACHEDIR", work.join("kube-cache")),
            (CACHE_DIR_ENV, work.join("flink-eks-cache")),
            ("AWS_CONFIG_FILE", work.join("aws-config")),
            ("AWS_SHARED_CREDENTIALS_FILE", work.join("aws-credentials")),
        ] {
            env.push((key.into(), path.display().to_string()));
        }
        Ok(Stand {
            env,
            recorder: AwsRecorder::new(&moto),
            http: reqwest::Client::new(),
            registry: url_via(&registry, proxies.registry.addr),
            proxies,
            kube_url,
            registry_log: services.var("FLINK_EKS_TEST_REGISTRY_LOG")?.into(),
            xtask: deploy_binary(root, &work)?,
            cli_flow: root.join("tests/devtools/cli-flow.sh"),
            bash: which("bash").context("bash is needed for the CLI flow")?,
            time: which("time").context("/usr/bin/time is needed: apt-get install time")?,
            aws: services.venv.join("bin/aws"),
            kubectl,
            work,
        })
    }

    /// A command with the flows' environment only.
    pub(super) fn command(&self, program: &Path) -> Command {
        let mut cmd = Command::new(program);
        cmd.env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .current_dir(&self.work)
            .stdin(Stdio::null());
        cmd
    }

    /// What exists before either flow runs, as on a user's account: the bucket, the EKS
    /// cluster with its IAM OIDC provider (eksctl's `associate-iam-oidc-provider`), the job's
    /// service accounts, and the image layers every run shares. Not timed, not counted.
    pub(super) fn setup(&self, runs: usize) -> Result<()> {
        eprintln!("[xtask bench] setting up the bucket, the cluster and the service accounts");
        let aws = |args: &[&str]| output(self.command(&self.aws).args(args), "aws");
        aws(&["s3api", "create-bucket", "--bucket", BUCKET])?;
        aws(&[
            "eks",
            "create-cluster",
            "--name",
            CLUSTER,
            "--role-arn",
            "arn:aws:iam::123456789012:role/eks-cluster-role",
            "--resources-vpc-config",
            "subnetIds=subnet-12345678",
        ])?;
        let issuer = aws(&[
            "eks",
            "describe-cluster",
            "--name",
            CLUSTER,
            "--query",
            "cluster.identity.oidc.issuer",
            "--output",
            "text",
        ])?;
        aws(&[
            "iam",
            "create-open-id-connect-provider",
            "--url",
            issuer.trim(),
            "--client-id-list",
            "sts.amazonaws.com",
        ])?;
        // The layers every run's image shares (the base's, the S3 plugin's) in the registry,
        // as a user's earlier pushes leave them: each flow's push then mounts them and uploads
        // only its own (otherwise whichever flow pushes first in a run uploads them).
        let warmup = Deployment::new(self, "bench-warmup".into(), "warmup", "warmup")?;
        warmup.render(self)?;
        output(
            self.command(&self.bash)
                .arg(&self.cli_flow)
                .arg("image")
                .envs(warmup.cli_env(self)?),
            "cli-flow.sh image (warm-up)",
        )?;
        // One YAML stream of JSON documents (kubectl's validation knows no `List` here).
        let stream: String = (0..runs)
            .flat_map(|i| [Flow::Tool, Flow::Cli].map(|f| deployment_name(f, i)))
            .map(|name| {
                let account = serde_json::json!({"apiVersion": "v1", "kind": "ServiceAccount",
                    "metadata": {"name": name, "namespace": NAMESPACE}});
                format!("---\n{account}\n")
            })
            .collect();
        let file = self.work.join("service-accounts.yaml");
        std::fs::write(&file, stream)?;
        output(
            self.command(&self.kubectl).args(["apply", "-f"]).arg(&file),
            "kubectl apply",
        )?;
        Ok(())
    }

    /// Removes the bench's image tags from the Docker engine (best effort): each run's
    /// registry has its own port, so they would pile up.
    pub(super) fn remove_images(&self) {
        let prefix = format!("{}/bench/", self.registry);
        let Ok(listed) = output(
            Command::new("docker").args(["image", "ls", "--format", "{{.Repository}}:{{.Tag}}"]),
            "docker image ls",
        ) else {
            return;
        };
        let ours: Vec<&str> = listed.lines().filter(|l| l.starts_with(&prefix)).collect();
        if !ours.is_empty() {
            let _ = output(Command::new("docker").arg("rmi").args(&ours), "docker rmi");
        }
    }

    /// Starts counting writes.
    pub(super) async fn open_window(&self) -> Result<Window<'_>> {
        let recording = self.recorder.start().await?;
        Ok(Window {
            recording,
            kube_writes: self.kube_writes().await?,
            registry: RegistryLog::mark(&self.registry_log)?,
            requests: self.proxies.mark(),
        })
    }

    /// The writes since `window` opened; the requests at the proxies, and when the first of
    /// them arrived (µs since the epoch).
    pub(super) async fn close_window(
        &self,
        window: Window<'_>,
    ) -> Result<(Writes, Requests, Option<i64>)> {
        let (requests, first) = self.proxies.since(window.requests);
        let mut writes = Writes::default();
        writes.add_aws(&window.recording.stop().await?);
        writes.kubernetes = self.kube_writes().await?.saturating_sub(window.kube_writes);
        writes.add_registry(&window.registry.all_requests_since()?);
        Ok((writes, requests, first))
    }

    /// The stand-in's count of write requests so far.
    async fn kube_writes(&self) -> Result<u64> {
        let stats = self.standin_json("stats").await?;
        stats["writes"]
            .as_u64()
            .context("the stand-in's /standin/stats has no `writes`")
    }

    /// `GET /standin/<what>` of the Kubernetes stand-in, as JSON.
    pub(super) async fn standin_json(&self, what: &str) -> Result<serde_json::Value> {
        let url = format!("{}/standin/{what}", self.kube_url);
        let response = self
            .http
            .get(&url)
            .send()
            .await
            .with_context(|| format!("GET {url}"))?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .with_context(|| format!("reading the response of GET {url}"))?;
        if !status.is_success() {
            bail!(
                "GET {url} answered {status}: {}",
                String::from_utf8_lossy(&body)
                    .chars()
                    .take(300)
                    .collect::<String>()
            );
        }
        serde_json::from_slice(&body).with_context(|| format!("GET {url}: the body is not JSON"))
    }

    /// Runs `program args` under `/usr/bin/time`, with stderr read line by line (each line
    /// stamped when read) into `log`. Fails, quoting the end of stderr, when it fails.
    pub(super) fn run_timed(
        &self,
        program: &Path,
        args: &[OsString],
        extra_env: &[(String, String)],
        log: &Path,
    ) -> Result<Timed> {
        let rss_file = log.with_extension("maxrss");
        let mut cmd = self.command(&self.time);
        cmd.arg("-f")
            .arg("%M")
            .arg("-o")
            .arg(&rss_file)
            .arg(program)
            .args(args)
            .envs(extra_env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let started = Instant::now();
        let started_us = unix_micros();
        let mut child = cmd
            .spawn()
            .with_context(|| format!("cannot run {}", program.display()))?;
        let stderr = child.stderr.take().context("the child's stderr")?;
        let reader = std::thread::spawn(move || {
            BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
                .map(|line| (unix_micros(), line))
                .collect::<Vec<_>>()
        });
        let status = child.wait()?;
        let seconds = started.elapsed().as_secs_f64();
        let lines = reader.join().unwrap_or_default();
        let text: String = lines.iter().map(|(_, l)| format!("{l}\n")).collect();
        std::fs::write(log, &text)?;
        if !status.success() {
            let tail: Vec<&str> = text.lines().rev().take(25).collect();
            bail!(
                "{} failed ({status}); its stderr ends with:\n{}\n(all of it: {})",
                program.display(),
                tail.into_iter().rev().collect::<Vec<_>>().join("\n"),
                log.display()
            );
        }
        let peak_rss_kib = std::fs::read_to_string(&rss_file)
            .ok()
            .and_then(|t| t.lines().last().and_then(|l| l.trim().parse().ok()));
        Ok(Timed {
            seconds,
            peak_rss_kib,
            lines,
            started_us,
        })
    }
}

/// The deploy binary to measure, copied into `work` so that every run measures the same build
/// even when the target directory's is rebuilt meanwhile: the one [`XTASK_ENV`] names, or else
/// `cargo build -p xtask`'s.
fn deploy_binary(root: &Path, work: &Path) -> Result<PathBuf> {
    let built = match std::env::var_os(XTASK_ENV).filter(|v| !v.is_empty()) {
        Some(binary) => PathBuf::from(binary),
        None => build_deploy_binary(root)?,
    };
    let copy = work.join("xtask");
    std::fs::copy(&built, &copy)
        .with_context(|| format!("cannot copy {} to {}", built.display(), copy.display()))?;
    Ok(copy)
}

/// `cargo build -p xtask --bin xtask`, and where cargo says the binary is.
fn build_deploy_binary(root: &Path) -> Result<PathBuf> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    eprintln!("[xtask bench] building the deploy binary (cargo build -p xtask)");
    let out = Command::new(cargo)
        .current_dir(root)
        .args([
            "build",
            "--quiet",
            "-p",
            "xtask",
            "--bin",
            "xtask",
            "--message-format=json-render-diagnostics",
        ])
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .context("cannot run cargo build -p xtask")?;
    if !out.status.success() {
        bail!("cargo build -p xtask failed ({})", out.status);
    }
    executable_of(&String::from_utf8_lossy(&out.stdout), "xtask")
        .context("cargo build -p xtask named no xtask executable")
}

/// The executable of binary target `name` among cargo's JSON messages.
fn executable_of(messages: &str, name: &str) -> Option<PathBuf> {
    messages
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == name)
        .find_map(|m| m["executable"].as_str().map(PathBuf::from))
}

/// Runs a setup command, returning its stdout; fails quoting its stderr.
pub(super) fn output(cmd: &mut Command, what: &str) -> Result<String> {
    let out = cmd
        .stderr(Stdio::piped())
        .stdout(Stdio::piped())
        .output()
        .with_context(|| format!("cannot run {what}"))?;
    if !out.status.success() {
        bail!(
            "{what} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

pub(super) fn unix_micros() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_executable_comes_from_the_binary_target_message() {
        let messages = [
            r#"{"reason":"compiler-artifact","target":{"name":"flink_eks_irsa","kind":["lib"]},"executable":null}"#,
            r#"{"reason":"compiler-artifact","target":{"name":"xtask","kind":["bin"]},"executable":"/t/debug/xtask"}"#,
            r#"{"reason":"build-finished","success":true}"#,
        ]
        .join("\n");
        assert_eq!(
            executable_of(&messages, "xtask"),
            Some(PathBuf::from("/t/debug/xtask"))
        );
        assert_eq!(executable_of(&messages, "flink_eks_irsa"), None);
        assert_eq!(executable_of("not json", "xtask"), None);
    }
}

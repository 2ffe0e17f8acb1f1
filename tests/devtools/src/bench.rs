//! `cargo xtask bench`: whole-process measurements against the same stand-ins as the tests
//! (dockerd, docker-registry, moto, kube-standin, started as `cargo xtask test` starts them),
//! written as a table into the README between its bench markers.
//!
//! - Deploys: a first deploy, a no-change redeploy and a script-only change, each by
//!   `cargo xtask deploy` and by `xtask/bench/cli-flow.sh` (the same steps with docker, the aws
//!   CLI and kubectl), alternating which goes first, each with fresh names per run.
//! - Write requests of each run, counted at the stand-ins (see [`writes`]).
//! - Watch latency: from the stand-in storing a status change to xtask printing it (see
//!   [`watch`]).
//! - Peak memory of the xtask process (`/usr/bin/time -f %M`).
//! - The image's no-change check in-process (`BuildContext::new` + `check_registry`) against
//!   `docker build` + `docker push` of the same context.
//! - Compile times of `cargo xtask` (see [`compile`]), unless `--no-compile`.
//!
//! Nothing here asserts a speed: targets are read from the table.

mod compile;
mod http;
mod report;
mod stats;
mod watch;
mod writes;

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use flink_eks_image_builder::{BuildContext, Credentials, RegistryState, check_registry};
use flink_eks_tests::{AwsRecorder, Recording, RegistryLog};

use crate::config::Config;
use crate::inputs::Inputs;
use crate::testenv::{BASE_IMAGE, Services, which};
use report::{Machine, Report, Row, format_mib, format_millis, format_seconds, format_summary};
use stats::{Summary, median_count};
use writes::Writes;

const CLUSTER: &str = "flink-eks-bench";
const BUCKET: &str = "flink-eks-bench";
const NAMESPACE: &str = "default";
const REGION: &str = "us-east-1";

/// The targets of issue 9, read from the table, never asserted.
const NO_CHANGE_RATIO_TARGET: f64 = 0.10;
const WATCH_LATENCY_TARGET_MS: f64 = 100.0;
const COLD_COMPILE_TARGET_S: f64 = 150.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Flow {
    Tool,
    Cli,
}

impl Flow {
    fn slug(self) -> &'static str {
        match self {
            Flow::Tool => "tool",
            Flow::Cli => "cli",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Flow::Tool => "flink-eks",
            Flow::Cli => "CLI flow",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Scenario {
    First,
    NoChange,
    ScriptChange,
    /// Issue 6: the image's no-change check alone.
    ImageCheck,
}

impl Scenario {
    fn label(self) -> &'static str {
        match self {
            Scenario::First => "first deploy",
            Scenario::NoChange => "no-change redeploy",
            Scenario::ScriptChange => "script-only change",
            Scenario::ImageCheck => "image no-change check",
        }
    }
}

/// One timed run.
#[derive(Debug, Clone)]
struct Sample {
    flow: Flow,
    scenario: Scenario,
    seconds: f64,
    peak_rss_kib: Option<u64>,
    writes: Writes,
    watch_ms: Vec<f64>,
}

pub(crate) async fn run(root: &Path, runs: usize, compile: bool) -> Result<()> {
    if runs == 0 {
        bail!("--runs must be at least 1");
    }
    let started = Instant::now();
    let kubectl = which("kubectl").context(
        "kubectl is needed for the CLI flow: install it (https://kubernetes.io/docs/tasks/tools/)",
    )?;
    let services = Services::start(root, "xtask bench", &[("time", "time")])?;
    let stand = Stand::new(root, &services, kubectl)?;
    let machine = machine(&stand)?;
    stand.setup(runs)?;

    let mut samples = Vec::new();
    let measured = async {
        deploys(&stand, runs, &mut samples).await?;
        image_checks(&stand, runs, &mut samples).await
    }
    .await;
    stand.remove_images();
    drop(services);
    measured?;

    let compile_times = if compile {
        Some(compile::measure(root, runs)?)
    } else {
        None
    };
    let mut command = format!("cargo xtask bench --runs {runs}");
    if !compile {
        command.push_str(" --no-compile");
    }
    let report = build_report(machine, command, runs, &samples, compile_times.as_ref());
    let block = report.to_markdown();
    println!("{block}");
    let readme = root.join("README.md");
    let text = std::fs::read_to_string(&readme)
        .with_context(|| format!("cannot read {}", readme.display()))?;
    std::fs::write(&readme, report::splice(&text, &block)?)
        .with_context(|| format!("cannot write {}", readme.display()))?;
    eprintln!(
        "[xtask bench] done in {:.0?}; the table is in {}",
        started.elapsed(),
        readme.display()
    );
    Ok(())
}

/// The services, and what both flows need to reach them.
struct Stand {
    /// The bench's own folder in the services' run folder.
    work: PathBuf,
    /// The environment of both flows' processes (and nothing else of the bench's).
    env: Vec<(String, String)>,
    recorder: AwsRecorder,
    kube_url: String,
    registry: String,
    registry_log: PathBuf,
    xtask: PathBuf,
    cli_flow: PathBuf,
    bash: PathBuf,
    time: PathBuf,
    aws: PathBuf,
    kubectl: PathBuf,
}

impl Stand {
    fn new(root: &Path, services: &Services, kubectl: PathBuf) -> Result<Stand> {
        let work = services.dir.join("bench");
        std::fs::create_dir_all(work.join("docker-config"))?;
        std::fs::write(work.join("docker-config/config.json"), "{}\n")?;
        let moto = services.var("FLINK_EKS_TEST_AWS_ENDPOINT")?.to_owned();
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
            ("AWS_ENDPOINT_URL".into(), moto.clone()),
            (
                "KUBECONFIG".into(),
                services.var("FLINK_EKS_TEST_KUBECONFIG")?.to_owned(),
            ),
        ];
        // No file of the user's: the same empty Docker, AWS and kubectl settings for both.
        for (key, path) in [
            ("DOCKER_CONFIG", work.join("docker-config")),
            ("KUBECACHEDIR", work.join("kube-cache")),
            ("AWS_CONFIG_FILE", work.join("aws-config")),
            ("AWS_SHARED_CREDENTIALS_FILE", work.join("aws-credentials")),
        ] {
            env.push((key.into(), path.display().to_string()));
        }
        Ok(Stand {
            env,
            recorder: AwsRecorder::new(&moto),
            kube_url: services.var("FLINK_EKS_TEST_KUBE_URL")?.to_owned(),
            registry: services.var("FLINK_EKS_TEST_REGISTRY")?.to_owned(),
            registry_log: services.var("FLINK_EKS_TEST_REGISTRY_LOG")?.into(),
            xtask: snapshot_of_this_binary(&work)?,
            cli_flow: root.join("xtask/bench/cli-flow.sh"),
            bash: which("bash").context("bash is needed for the CLI flow")?,
            time: which("time").context("/usr/bin/time is needed: apt-get install time")?,
            aws: services.venv.join("bin/aws"),
            kubectl,
            work,
        })
    }

    /// A command with the flows' environment only.
    fn command(&self, program: &Path) -> Command {
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
    fn setup(&self, runs: usize) -> Result<()> {
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
    fn remove_images(&self) {
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

    /// Starts counting: moto's recorder from empty, the stand-in's counters, the registry log.
    async fn open_window(&self) -> Result<Window<'_>> {
        let recording = self.recorder.start().await?;
        Ok(Window {
            recording,
            kube_writes: self.kube_writes()?,
            registry: RegistryLog::mark(&self.registry_log)?,
        })
    }

    /// The writes since `window` opened.
    async fn close_window(&self, window: Window<'_>) -> Result<Writes> {
        let mut writes = Writes::default();
        writes.add_aws(&window.recording.stop().await?);
        writes.kubernetes = self.kube_writes()?.saturating_sub(window.kube_writes);
        writes.add_registry(&window.registry.all_requests_since()?);
        Ok(writes)
    }

    fn kube_writes(&self) -> Result<u64> {
        let stats = http::get_json(&format!("{}/standin/stats", self.kube_url))?;
        stats["writes"]
            .as_u64()
            .context("the stand-in's /standin/stats has no `writes`")
    }

    /// Runs `program args` under `/usr/bin/time`, with stderr read line by line (each line
    /// stamped when read) into `log`. Fails, quoting the end of stderr, when it fails.
    fn run_timed(
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
        })
    }
}

/// A copy of the running binary, so that every run measures the same build even when the
/// target directory's is rebuilt meanwhile.
fn snapshot_of_this_binary(work: &Path) -> Result<PathBuf> {
    let copy = work.join("xtask");
    // `/proc/self/exe` still reads when the file was replaced since this process started.
    std::fs::copy("/proc/self/exe", &copy)
        .or_else(|_| std::fs::copy(std::env::current_exe()?, &copy))
        .context("cannot copy the xtask binary")?;
    Ok(copy)
}

struct Window<'a> {
    recording: Recording<'a>,
    kube_writes: u64,
    registry: RegistryLog,
}

struct Timed {
    seconds: f64,
    peak_rss_kib: Option<u64>,
    /// stderr, each line with the time it was read (µs since the epoch).
    lines: Vec<(i64, String)>,
}

fn unix_micros() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
        .unwrap_or_default()
}

fn deployment_name(flow: Flow, run: usize) -> String {
    format!("bench-{}-{run}", flow.slug())
}

/// One deployment's files: its `deploy.toml`, script and connector jar (unique per
/// deployment, so that each first deploy builds an image no earlier run has built).
struct Deployment {
    name: String,
    dir: PathBuf,
    /// Different jar seeds, different build contexts.
    jar_seed: String,
    script_version: u32,
}

impl Deployment {
    fn new(stand: &Stand, name: String, jar_seed: &str, repository: &str) -> Result<Deployment> {
        let dir = stand.work.join(&name);
        std::fs::create_dir_all(&dir)?;
        let deployment = Deployment {
            name,
            dir,
            jar_seed: jar_seed.to_owned(),
            script_version: 1,
        };
        let config = format!(
            r#"# Written by cargo xtask bench.
[job]
name = "{name}"
namespace = "{NAMESPACE}"
script = "job.py"
flink_version = "1.20.0"
timeout_secs = 300

[s3]
bucket = "{BUCKET}"
key = "{name}/job.py"
region = "{REGION}"

[image]
repository = "{registry}/bench/{repository}"
base = "{BASE_IMAGE}"
pyflink = false
jars = ["connector.jar"]

[irsa]
cluster = "{CLUSTER}"
service_account = "{name}"
role_name = "{name}-role"
policy_name = "{name}-policy"
"#,
            name = deployment.name,
            registry = stand.registry,
        );
        std::fs::write(deployment.config(), config)?;
        std::fs::write(
            deployment.dir.join("connector.jar"),
            format!("placeholder connector jar {}\n", deployment.jar_seed),
        )?;
        deployment.write_script()?;
        Ok(deployment)
    }

    fn config(&self) -> PathBuf {
        self.dir.join("deploy.toml")
    }

    fn artifacts(&self) -> PathBuf {
        self.dir.join("artifacts")
    }

    fn write_script(&self) -> Result<()> {
        let script = format!(
            "# PyFlink job of cargo xtask bench, version {}\nprint(\"hello from {}\")\n",
            self.script_version, self.name
        );
        Ok(std::fs::write(self.dir.join("job.py"), script)?)
    }

    /// The inputs xtask derives from the configuration (the image reference, the spec).
    fn inputs(&self) -> Result<Inputs> {
        Inputs::from_config(&Config::load(&self.config(), &[])?)
    }

    /// What the CLI flow sends, rendered by `cargo xtask deploy --dry-run` (untimed).
    fn render(&self, stand: &Stand) -> Result<()> {
        output(
            stand
                .command(&stand.xtask)
                .arg("--config")
                .arg(self.config())
                .args(["deploy", "--dry-run", "--out"])
                .arg(self.artifacts()),
            "xtask deploy --dry-run",
        )?;
        Ok(())
    }

    /// The CLI flow's inputs for this deployment.
    fn cli_env(&self, stand: &Stand) -> Result<Vec<(String, String)>> {
        let inputs = self.inputs()?;
        let path = |p: &Path| p.display().to_string();
        Ok(vec![
            ("ARTIFACTS".into(), path(&self.artifacts())),
            ("IMAGE".into(), inputs.image_ref.clone()),
            ("SCRIPT".into(), path(&self.dir.join("job.py"))),
            ("S3_URI".into(), inputs.script.location.to_string()),
            ("CLUSTER".into(), CLUSTER.into()),
            ("ROLE".into(), format!("{}-role", self.name)),
            ("POLICY".into(), format!("{}-policy", self.name)),
            ("NAMESPACE".into(), NAMESPACE.into()),
            ("SERVICE_ACCOUNT".into(), self.name.clone()),
            ("NAME".into(), self.name.clone()),
            ("AWS".into(), path(&stand.aws)),
            ("KUBECTL".into(), path(&stand.kubectl)),
        ])
    }
}

/// First deploy, no-change redeploy and script-only change, by each flow, `runs` times,
/// alternating which flow goes first.
async fn deploys(stand: &Stand, runs: usize, samples: &mut Vec<Sample>) -> Result<()> {
    for run in 0..runs {
        let order = if run % 2 == 0 {
            [Flow::Tool, Flow::Cli]
        } else {
            [Flow::Cli, Flow::Tool]
        };
        let mut deployments = BTreeMap::new();
        for flow in order {
            let name = deployment_name(flow, run);
            let repository = format!("{}-{run}", flow.slug());
            let deployment = Deployment::new(stand, name.clone(), &name, &repository)?;
            deployments.insert(flow, deployment);
        }
        for scenario in [Scenario::First, Scenario::NoChange, Scenario::ScriptChange] {
            for flow in order {
                let deployment = deployments
                    .get_mut(&flow)
                    .context("every flow has its deployment")?;
                if scenario == Scenario::ScriptChange {
                    deployment.script_version += 1;
                    deployment.write_script()?;
                }
                let sample = match flow {
                    Flow::Tool => tool_deploy(stand, deployment, scenario, run).await?,
                    Flow::Cli => {
                        if scenario != Scenario::NoChange {
                            deployment.render(stand)?;
                        }
                        cli_deploy(stand, deployment, scenario, run).await?
                    }
                };
                eprintln!(
                    "[xtask bench] run {}/{runs} {} {}: {} ({} writes{})",
                    run + 1,
                    flow.label(),
                    scenario.label(),
                    format_seconds(sample.seconds),
                    sample.writes.total(),
                    match sample.watch_ms.as_slice() {
                        [] => String::new(),
                        ms => format!(
                            "; watch latency {}",
                            ms.iter()
                                .map(|m| format_millis(*m))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    }
                );
                samples.push(sample);
            }
        }
    }
    Ok(())
}

async fn tool_deploy(
    stand: &Stand,
    deployment: &Deployment,
    scenario: Scenario,
    run: usize,
) -> Result<Sample> {
    let window = stand.open_window().await?;
    let log = deployment
        .dir
        .join(format!("tool-{}-{run}.log", scenario_slug(scenario)));
    let args: Vec<OsString> = vec![
        "--config".into(),
        deployment.config().into(),
        "deploy".into(),
    ];
    let timed = stand.run_timed(&stand.xtask, &args, &[], &log)?;
    let writes = stand.close_window(window).await?;
    let seen: Vec<(i64, watch::State)> = timed
        .lines
        .iter()
        .filter_map(|(at, line)| watch::parse_state_line(line).map(|s| (*at, s)))
        .collect();
    let answer = http::get_json(&format!("{}/standin/status-changes", stand.kube_url))?;
    let changes = watch::changes_of(&answer, NAMESPACE, &deployment.name);
    let (watch_ms, unmatched) = watch::latencies(&seen, &changes);
    if unmatched > 0 {
        eprintln!(
            "[xtask bench] warning: {unmatched} state(s) printed by xtask match no status change of the stand-in (see {})",
            log.display()
        );
    }
    Ok(Sample {
        flow: Flow::Tool,
        scenario,
        seconds: timed.seconds,
        peak_rss_kib: timed.peak_rss_kib,
        writes,
        watch_ms,
    })
}

async fn cli_deploy(
    stand: &Stand,
    deployment: &Deployment,
    scenario: Scenario,
    run: usize,
) -> Result<Sample> {
    let env = deployment.cli_env(stand)?;
    let window = stand.open_window().await?;
    let log = deployment
        .dir
        .join(format!("cli-{}-{run}.log", scenario_slug(scenario)));
    let args: Vec<OsString> = vec![stand.cli_flow.clone().into(), "all".into()];
    let timed = stand.run_timed(&stand.bash, &args, &env, &log)?;
    let writes = stand.close_window(window).await?;
    Ok(Sample {
        flow: Flow::Cli,
        scenario,
        seconds: timed.seconds,
        peak_rss_kib: timed.peak_rss_kib,
        writes,
        watch_ms: Vec::new(),
    })
}

fn scenario_slug(scenario: Scenario) -> &'static str {
    match scenario {
        Scenario::First => "first",
        Scenario::NoChange => "no-change",
        Scenario::ScriptChange => "script-change",
        Scenario::ImageCheck => "image-check",
    }
}

/// Issue 6: building the context and asking the registry (in-process, the library calls
/// `cargo xtask deploy` makes), against `docker build` + `docker push` of the same context by
/// the CLI flow's script, once each side's image is in the registry.
async fn image_checks(stand: &Stand, runs: usize, samples: &mut Vec<Sample>) -> Result<()> {
    let tool = Deployment::new(stand, "bench-check-tool".into(), "check", "check-tool")?;
    let cli = Deployment::new(stand, "bench-check-cli".into(), "check", "check-cli")?;
    let spec = tool.inputs()?.image;
    let cli_env = {
        cli.render(stand)?;
        cli.cli_env(stand)?
    };
    let digest = BuildContext::new(&spec)?.digest;
    if digest != cli.inputs()?.context.digest {
        bail!("the two sides of the image check do not build the same context");
    }
    // Each side's image in the registry first (untimed).
    eprintln!("[xtask bench] pushing the image check's images");
    output(
        stand
            .command(&stand.xtask)
            .arg("--config")
            .arg(tool.config())
            .arg("image"),
        "xtask image",
    )?;
    let cli_args: Vec<OsString> = vec![stand.cli_flow.clone().into(), "image".into()];
    stand.run_timed(
        &stand.bash,
        &cli_args,
        &cli_env,
        &cli.dir.join("cli-image-warmup.log"),
    )?;

    for run in 0..runs {
        let order = if run % 2 == 0 {
            [Flow::Tool, Flow::Cli]
        } else {
            [Flow::Cli, Flow::Tool]
        };
        for flow in order {
            let window = stand.open_window().await?;
            let (seconds, peak_rss_kib) = match flow {
                Flow::Tool => {
                    let started = Instant::now();
                    let context = BuildContext::new(&spec)?;
                    let plan = check_registry(&spec, &context, &Credentials::Anonymous).await?;
                    let seconds = started.elapsed().as_secs_f64();
                    if plan.registry != RegistryState::UpToDate {
                        bail!(
                            "the image check expected {} in the registry, and it is {:?}",
                            plan.image,
                            plan.registry
                        );
                    }
                    (seconds, None)
                }
                Flow::Cli => {
                    let log = cli.dir.join(format!("cli-image-check-{run}.log"));
                    let timed = stand.run_timed(&stand.bash, &cli_args, &cli_env, &log)?;
                    (timed.seconds, timed.peak_rss_kib)
                }
            };
            let writes = stand.close_window(window).await?;
            eprintln!(
                "[xtask bench] run {}/{runs} {} image no-change check: {} ({} writes)",
                run + 1,
                flow.label(),
                format_seconds(seconds),
                writes.total()
            );
            samples.push(Sample {
                flow,
                scenario: Scenario::ImageCheck,
                seconds,
                peak_rss_kib,
                writes,
                watch_ms: Vec::new(),
            });
        }
    }
    Ok(())
}

/// Runs a setup command, returning its stdout; fails quoting its stderr.
fn output(cmd: &mut Command, what: &str) -> Result<String> {
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

/// The machine line: cores, memory, CPU, rustc, date, and the CLI flow's tool versions.
fn machine(stand: &Stand) -> Result<Machine> {
    let first_line = |cmd: &mut Command| {
        cmd.output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| {
                let text = if o.stdout.is_empty() {
                    o.stderr
                } else {
                    o.stdout
                };
                String::from_utf8_lossy(&text)
                    .lines()
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_owned()
            })
            .unwrap_or_else(|| "unknown".to_owned())
    };
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned());
    let docker =
        first_line(Command::new("docker").args(["version", "--format", "{{.Client.Version}}"]));
    let kubectl = first_line(Command::new(&stand.kubectl).args(["version", "--client"]));
    let kubectl = kubectl.trim_start_matches("Client Version: ").to_owned();
    let aws = first_line(stand.command(&stand.aws).arg("--version"));
    let aws = aws
        .split_whitespace()
        .next()
        .unwrap_or("aws-cli")
        .to_owned();
    Ok(Machine {
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        memory_gib: report::meminfo_total_gib(
            &std::fs::read_to_string("/proc/meminfo").unwrap_or_default(),
        )
        .unwrap_or(0.0),
        cpu: report::cpu_model(&std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default())
            .unwrap_or_else(|| "unknown CPU".to_owned()),
        rustc: first_line(Command::new(rustc).arg("--version")),
        date: report::utc_date(unix_micros() / 1_000_000),
        tools: vec![
            format!("docker {docker}"),
            format!("kubectl {kubectl}"),
            aws.replace('/', " "),
        ],
    })
}

/// The table from the samples: pure.
fn build_report(
    machine: Machine,
    command: String,
    runs: usize,
    samples: &[Sample],
    compile: Option<&compile::CompileTimes>,
) -> Report {
    let of = |flow: Flow, scenario: Scenario| -> Vec<&Sample> {
        samples
            .iter()
            .filter(|s| s.flow == flow && s.scenario == scenario)
            .collect()
    };
    let seconds =
        |list: &[&Sample]| Summary::of(&list.iter().map(|s| s.seconds).collect::<Vec<_>>());
    let mut rows = Vec::new();
    let mut notes = Vec::new();
    let mut writes = Vec::new();
    for scenario in [
        Scenario::First,
        Scenario::NoChange,
        Scenario::ScriptChange,
        Scenario::ImageCheck,
    ] {
        let tool = of(Flow::Tool, scenario);
        let cli = of(Flow::Cli, scenario);
        let (Some(t), Some(c)) = (seconds(&tool), seconds(&cli)) else {
            continue;
        };
        let ratio = t.median / c.median;
        let tool_writes = tool.iter().map(|s| s.writes.total()).max().unwrap_or(0);
        let (measurement, target, met) = match scenario {
            Scenario::NoChange => {
                let met = ratio <= NO_CHANGE_RATIO_TARGET && tool_writes == 0;
                if ratio > NO_CHANGE_RATIO_TARGET {
                    notes.push(format!(
                        "**Missed: no-change redeploy.** {} against the CLI flow's {} is {:.3} of it, \
                         {:.1}× the target of {NO_CHANGE_RATIO_TARGET:.2} ({} over {}). Why: {}",
                        format_seconds(t.median),
                        format_seconds(c.median),
                        ratio,
                        ratio / NO_CHANGE_RATIO_TARGET,
                        format_seconds(t.median - NO_CHANGE_RATIO_TARGET * c.median),
                        format_seconds(NO_CHANGE_RATIO_TARGET * c.median),
                        no_change_why(&tool)
                    ));
                }
                if tool_writes > 0 {
                    notes.push(format!(
                        "**Missed: zero writes on a no-change redeploy.** flink-eks made up to {tool_writes} \
                         write request(s) (see the writes table for where)."
                    ));
                }
                (
                    scenario.label().to_owned(),
                    format!("≤ {NO_CHANGE_RATIO_TARGET:.2} of the CLI flow, 0 writes"),
                    Some(met),
                )
            }
            Scenario::ImageCheck => (
                "image no-change check (issue 6): `BuildContext::new` + `check_registry` in-process; \
                 `docker build` + `docker push` of the same context"
                    .to_owned(),
                String::new(),
                None,
            ),
            _ => (scenario.label().to_owned(), String::new(), None),
        };
        rows.push(Row {
            measurement,
            tool: format_summary(&t, format_seconds),
            cli: format_summary(&c, format_seconds),
            ratio: Some(ratio),
            target,
            met,
        });
        for (flow, list) in [(Flow::Tool, &tool), (Flow::Cli, &cli)] {
            writes.push((
                format!("{}, {}", flow.label(), scenario.label()),
                median_writes(list),
            ));
        }
    }

    let watch_ms: Vec<f64> = samples
        .iter()
        .flat_map(|s| s.watch_ms.iter().copied())
        .collect();
    match Summary::of(&watch_ms) {
        Some(w) => {
            let met = w.max <= WATCH_LATENCY_TARGET_MS;
            if !met {
                notes.push(format!(
                    "**Missed: watch latency.** The slowest of {} status changes reached xtask after {}, \
                     {} over the target (median {}). The stand-in sends each change as it stores it; \
                     the delay is the client's (kube-rs watcher, then the line printed) or a busy machine.",
                    w.n,
                    format_millis(w.max),
                    format_millis(w.max - WATCH_LATENCY_TARGET_MS),
                    format_millis(w.median)
                ));
            }
            rows.push(Row {
                measurement: format!(
                    "watch latency: status stored by the stand-in → state printed by xtask ({} changes)",
                    w.n
                ),
                tool: format_summary(&w, format_millis),
                cli: String::new(),
                ratio: None,
                target: format!("≤ {WATCH_LATENCY_TARGET_MS:.0} ms"),
                met: Some(met),
            });
        }
        None => notes.push(
            "Watch latency: no status change was seen through a watch (every state came from the \
             initial list)."
                .to_owned(),
        ),
    }

    let rss = |flow: Flow| {
        let kib: Vec<f64> = samples
            .iter()
            .filter(|s| s.flow == flow && s.scenario == Scenario::First)
            .filter_map(|s| s.peak_rss_kib.map(|k| k as f64))
            .collect();
        Summary::of(&kib)
    };
    if let Some(tool) = rss(Flow::Tool) {
        rows.push(Row {
            measurement: "peak memory (first deploy): the xtask process; for the CLI flow, its largest process"
                .to_owned(),
            tool: format_summary(&tool, format_mib),
            cli: rss(Flow::Cli).map_or_else(String::new, |c| format_summary(&c, format_mib)),
            ratio: None,
            target: String::new(),
            met: None,
        });
    }

    match compile {
        Some(times) => {
            let met = times.cold <= COLD_COMPILE_TARGET_S;
            if !met {
                notes.push(format!(
                    "**Missed: cold compile.** {} against the target of {}: {} ({:.0} %) over. Why: {}",
                    format_seconds(times.cold),
                    format_seconds(COLD_COMPILE_TARGET_S),
                    format_seconds(times.cold - COLD_COMPILE_TARGET_S),
                    (times.cold / COLD_COMPILE_TARGET_S - 1.0) * 100.0,
                    cold_compile_why(times, machine.cores)
                ));
            }
            rows.push(Row {
                measurement: "cold debug compile of `cargo xtask` (fresh target directory, crates downloaded)"
                    .to_owned(),
                tool: format_seconds(times.cold),
                cli: String::new(),
                ratio: None,
                target: format!("≤ {} on 2 cores", format_seconds(COLD_COMPILE_TARGET_S)),
                met: Some(met),
            });
            for (label, values) in [
                (
                    "incremental compile after an edit (`touch xtask/src/main.rs`)",
                    &times.incremental,
                ),
                (
                    "`cargo xtask --version` with nothing to rebuild",
                    &times.up_to_date,
                ),
            ] {
                if let Some(s) = Summary::of(values) {
                    rows.push(Row {
                        measurement: label.to_owned(),
                        tool: format_summary(&s, format_seconds),
                        cli: String::new(),
                        ratio: None,
                        target: String::new(),
                        met: None,
                    });
                }
            }
        }
        None => rows.push(Row {
            measurement: "compile times of `cargo xtask`".to_owned(),
            tool: "not measured in this run (`--no-compile`)".to_owned(),
            cli: String::new(),
            ratio: None,
            target: format!(
                "cold ≤ {} on 2 cores",
                format_seconds(COLD_COMPILE_TARGET_S)
            ),
            met: None,
        }),
    }

    Report {
        machine,
        command,
        runs,
        rows,
        writes,
        notes,
    }
}

/// Median writes per service over the runs.
fn median_writes(samples: &[&Sample]) -> Writes {
    let median = |f: fn(&Writes) -> u64| {
        median_count(&samples.iter().map(|s| f(&s.writes)).collect::<Vec<_>>()).unwrap_or(0)
    };
    Writes {
        iam: median(|w| w.iam),
        s3: median(|w| w.s3),
        eks: median(|w| w.eks),
        registry: median(|w| w.registry),
        kubernetes: median(|w| w.kubernetes),
        other_aws: median(|w| w.other_aws),
        aws_reads: median(|w| w.aws_reads),
    }
}

/// Where a cold build's time went, from its timing report, and how busy the machine was.
fn cold_compile_why(times: &compile::CompileTimes, cores: usize) -> String {
    let total: f64 = times.cold_crates.iter().map(|(_, t)| t).sum();
    let mut why = if total > 0.0 {
        let own: f64 = times
            .cold_crates
            .iter()
            .filter(|(name, _)| compile::is_workspace_crate(name))
            .map(|(_, t)| t)
            .sum();
        let slowest: Vec<String> = times
            .cold_crates
            .iter()
            .take(6)
            .map(|(name, t)| format!("{name} {}", format_seconds(*t)))
            .collect();
        format!(
            "the dependencies take {:.0} % of the {} of compile time summed over {} crates, the \
             workspace's own crates {:.0} %; the slowest: {}",
            (1.0 - own / total) * 100.0,
            format_seconds(total),
            times.cold_crates.len(),
            own / total * 100.0,
            slowest.join(", ")
        )
    } else {
        "the dependency set (see `cargo build -p xtask --timings`)".to_owned()
    };
    if let Some(load) = times.cold_load {
        why.push_str(&format!(
            ". The 5-minute load average was {load:.1} on {cores} cores when it ended (the build \
             alone makes about {cores}): {}",
            if load > cores as f64 * 1.25 {
                "other work competed for the cores, so a quiet machine does better"
            } else {
                "the machine was otherwise quiet"
            }
        ));
    }
    why.push('.');
    why
}

/// What a no-change redeploy of flink-eks spends its time on, from what it asked.
fn no_change_why(samples: &[&Sample]) -> String {
    let reads = median_writes(samples).aws_reads;
    format!(
        "a no-change redeploy is still a whole process: it starts, loads the AWS and Kubernetes \
         configuration, reads every resource (the registry's manifest, {reads} AWS read requests for \
         the IAM policy, role and OIDC provider, the cluster and the script's object, the \
         FlinkDeployment) and watches the FlinkDeployment until it is confirmed STABLE."
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(flow: Flow, scenario: Scenario, seconds: f64, writes: u64) -> Sample {
        Sample {
            flow,
            scenario,
            seconds,
            peak_rss_kib: Some(40_960),
            writes: Writes {
                kubernetes: writes,
                ..Writes::default()
            },
            watch_ms: if flow == Flow::Tool && scenario == Scenario::First {
                vec![1.0, 3.0]
            } else {
                Vec::new()
            },
        }
    }

    fn machine() -> Machine {
        Machine {
            cores: 2,
            memory_gib: 24.0,
            cpu: "cpu".into(),
            rustc: "rustc".into(),
            date: "2026-11-27".into(),
            tools: Vec::new(),
        }
    }

    #[test]
    fn the_report_compares_medians_and_reads_the_targets() {
        let samples = [
            sample(Flow::Tool, Scenario::First, 3.0, 3),
            sample(Flow::Cli, Scenario::First, 12.0, 2),
            sample(Flow::Tool, Scenario::NoChange, 0.5, 0),
            sample(Flow::Cli, Scenario::NoChange, 10.0, 2),
            sample(Flow::Tool, Scenario::NoChange, 0.7, 0),
            sample(Flow::Cli, Scenario::NoChange, 8.0, 2),
        ];
        let compile = compile::CompileTimes {
            cold: 160.0,
            cold_crates: vec![
                ("aws-lc-sys".into(), 60.0),
                ("kube-client".into(), 30.0),
                ("xtask".into(), 10.0),
            ],
            cold_load: Some(3.5),
            incremental: vec![10.0, 12.0],
            up_to_date: vec![0.2],
        };
        let report = build_report(machine(), "cmd".into(), 2, &samples, Some(&compile));
        let row = |prefix: &str| {
            report
                .rows
                .iter()
                .find(|r| r.measurement.starts_with(prefix))
        };
        let first = row("first deploy");
        assert_eq!(first.map(|r| r.ratio), Some(Some(0.25)));
        let no_change = row("no-change redeploy");
        assert_eq!(
            no_change.map(|r| r.tool.as_str()),
            Some("600 ms [500 ms–700 ms]")
        );
        assert_eq!(no_change.and_then(|r| r.ratio), Some(0.6 / 9.0));
        assert_eq!(no_change.and_then(|r| r.met), Some(true));
        let watch = row("watch latency");
        assert_eq!(
            watch.map(|r| r.tool.as_str()),
            Some("2.0 ms [1.0 ms–3.0 ms]")
        );
        assert_eq!(watch.and_then(|r| r.met), Some(true));
        assert_eq!(row("cold debug compile").and_then(|r| r.met), Some(false));
        assert_eq!(report.notes.len(), 1, "{:?}", report.notes);
        assert!(
            report.notes[0].contains("10.0 s (7 %) over"),
            "{}",
            report.notes[0]
        );
        assert!(
            report.notes[0].contains(
                "the dependencies take 90 % of the 100.0 s of compile time summed over 3 crates, \
                 the workspace's own crates 10 %; the slowest: aws-lc-sys 60.0 s, kube-client 30.0 s, xtask 10.0 s. \
                 The 5-minute load average was 3.5 on 2 cores"
            ),
            "{}",
            report.notes[0]
        );
        assert!(
            report.notes[0].contains("other work competed"),
            "{}",
            report.notes[0]
        );
        assert_eq!(
            report
                .writes
                .iter()
                .map(|(f, w)| (f.as_str(), w.kubernetes))
                .collect::<Vec<_>>(),
            [
                ("flink-eks, first deploy", 3),
                ("CLI flow, first deploy", 2),
                ("flink-eks, no-change redeploy", 0),
                ("CLI flow, no-change redeploy", 2),
            ]
        );
    }

    #[test]
    fn a_slow_no_change_redeploy_or_a_write_misses_the_target_and_says_why() {
        let samples = [
            sample(Flow::Tool, Scenario::NoChange, 2.0, 1),
            sample(Flow::Cli, Scenario::NoChange, 10.0, 2),
        ];
        let report = build_report(machine(), "cmd".into(), 1, &samples, None);
        let no_change = report
            .rows
            .iter()
            .find(|r| r.measurement == "no-change redeploy");
        assert_eq!(no_change.and_then(|r| r.met), Some(false));
        assert!(
            report.notes.iter().any(|n| n.contains("2.0× the target")),
            "{:?}",
            report.notes
        );
        assert!(
            report.notes.iter().any(|n| n.contains("up to 1 write")),
            "{:?}",
            report.notes
        );
        assert!(
            report.rows.iter().any(|r| r.tool.contains("--no-compile")),
            "{:?}",
            report.rows
        );
    }
}

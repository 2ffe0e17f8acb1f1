//! `cargo xtask bench`: whole-process measurements against the same stand-ins as the tests
//! (dockerd, docker-registry, moto, kube-standin, started as `cargo xtask test` starts them),
//! written as a table into the README between its bench markers.
//!
//! - Deploys: a first deploy, a no-change redeploy and a script-only change, each by the
//!   deploy binary (`xtask deploy`) and by `tests/devtools/cli-flow.sh` (the same steps with
//!   docker, the aws CLI and kubectl), alternating which goes first, each with fresh names per
//!   run.
//! - Write requests of each run, counted at the stand-ins (see [`writes`]).
//! - Latency: every request of both flows to moto, the registry and the Kubernetes stand-in
//!   passes a proxy of the bench's (see [`proxy`]) that counts it and, with `--rtt MS`, delays
//!   it by MS: the deploys then run once more at that round trip, and the table shows each
//!   scenario's requests, its depth in round trips (the wall-time difference over the RTT),
//!   and the time from the process's start to its first request.
//! - Watch latency: from the stand-in storing a status change to xtask printing it (see
//!   [`watch`]).
//! - Peak memory of the xtask process (`/usr/bin/time -f %M`).
//! - The image's no-change check in-process (`BuildContext::new` + the image plan) against
//!   `docker build` + `docker push` of the same context.
//! - Compile times of `cargo xtask` (see [`compile`]), unless `--no-compile`.
//!
//! Nothing here asserts a speed: targets are read from the table.
//!
//! The parts: [`stand`] (the services and the flows' environment, timed runs, write
//! counting), [`fixtures`] (one deployment's files), [`runner`] (the scenarios), [`machine`]
//! (what the table says about the machine), [`tabulate`] (samples to rows and notes) and
//! [`report`] (the Markdown).

mod compile;
mod fixtures;
mod machine;
mod proxy;
mod report;
mod runner;
mod stand;
mod stats;
mod tabulate;
mod watch;
mod writes;

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::testenv::{Services, which};
use proxy::Requests;
use stand::Stand;
use writes::Writes;

/// The EKS cluster both flows deploy to (created in moto by [`Stand::setup`]).
const CLUSTER: &str = "flink-eks-bench";
/// The bucket both flows upload to.
const BUCKET: &str = "flink-eks-bench";
const NAMESPACE: &str = "default";
const REGION: &str = "us-east-1";

/// Who does the deploy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Flow {
    /// The deploy binary, `xtask deploy`.
    Tool,
    /// `cli-flow.sh`: docker, the aws CLI and kubectl.
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

/// What is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Scenario {
    First,
    NoChange,
    /// The no-change redeploy by a deploy binary with nothing remembered of the cluster (an
    /// empty cache folder): a machine deploying to it for the first time, a fresh CI runner.
    NoChangeForgotten,
    ScriptChange,
    /// The image's no-change check alone.
    ImageCheck,
}

impl Scenario {
    fn label(self) -> &'static str {
        match self {
            Scenario::First => "first deploy",
            Scenario::NoChange => "no-change redeploy",
            Scenario::NoChangeForgotten => "no-change redeploy, cluster not remembered",
            Scenario::ScriptChange => "script-only change",
            Scenario::ImageCheck => "image no-change check",
        }
    }

    fn slug(self) -> &'static str {
        match self {
            Scenario::First => "first",
            Scenario::NoChange => "no-change",
            Scenario::NoChangeForgotten => "no-change-forgotten",
            Scenario::ScriptChange => "script-change",
            Scenario::ImageCheck => "image-check",
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
    /// The round trip the proxies added to each request, in ms.
    rtt_ms: u64,
    /// Requests counted at the proxies.
    requests: Requests,
    /// From the process's start to its first request's arrival at a proxy.
    first_request_ms: Option<f64>,
    /// The waves of requests seen at the proxies, when a round trip was added.
    waves: Option<usize>,
}

/// Measures, `runs` times each (the deploys also at `rtt` ms, when given), then writes the
/// table into the README.
pub(crate) async fn run(root: &Path, runs: usize, compile: bool, rtt: Option<u64>) -> Result<()> {
    if runs == 0 {
        bail!("--runs must be at least 1");
    }
    let started = Instant::now();
    let kubectl = which("kubectl").context(
        "kubectl is needed for the CLI flow: install it (https://kubernetes.io/docs/tasks/tools/)",
    )?;
    let services = Services::start(root, "xtask bench", &[("time", "time")])?;
    let stand = Stand::new(root, &services, kubectl).await?;
    let machine = machine::probe(&stand);
    let rtts: Vec<u64> = std::iter::once(0).chain(rtt.filter(|&ms| ms > 0)).collect();
    stand.setup(runs * rtts.len())?;

    let mut samples = Vec::new();
    let measured = async {
        for (phase, &ms) in rtts.iter().enumerate() {
            stand.proxies.set_delay(Duration::from_millis(ms));
            runner::deploys(&stand, phase * runs, runs, ms, &mut samples).await?;
        }
        stand.proxies.set_delay(Duration::ZERO);
        runner::image_checks(&stand, runs, &mut samples).await
    }
    .await;
    stand.remove_images();
    drop(services);
    measured?;

    let cargo_start = compile::cargo_start(root, runs);
    let compile_times = if compile {
        Some(compile::measure(root, runs)?)
    } else {
        None
    };
    let mut command = format!("cargo xtask bench --runs {runs}");
    if !compile {
        command.push_str(" --no-compile");
    }
    if let Some(ms) = rtt {
        command.push_str(&format!(" --rtt {ms}"));
    }
    let report = tabulate::report(
        machine,
        command,
        runs,
        &samples,
        compile_times.as_ref(),
        &cargo_start,
    );
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

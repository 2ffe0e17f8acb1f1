//! The scenarios: each flow's deploys, and the image's no-change check, run `runs` times with
//! the flows alternating which goes first, each run's writes counted.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use flink_eks_image_builder::{BuildContext, Credentials, RegistryState};

use super::fixtures::{Deployment, deployment_name};
use super::report::{format_millis, format_seconds};
use super::stand::CACHE_DIR_ENV;
use super::stand::{Stand, output};
use super::{Flow, NAMESPACE, Sample, Scenario, proxy, watch};

/// Which flow goes first in run `run`.
fn order(run: usize) -> [Flow; 2] {
    if run.is_multiple_of(2) {
        [Flow::Tool, Flow::Cli]
    } else {
        [Flow::Cli, Flow::Tool]
    }
}

/// First deploy, no-change redeploy and script-only change, by each flow, `runs` times, as
/// runs `first..first + runs` (each its own deployments), with `rtt_ms` added to each request.
pub(super) async fn deploys(
    stand: &Stand,
    first: usize,
    runs: usize,
    rtt_ms: u64,
    samples: &mut Vec<Sample>,
) -> Result<()> {
    for run in first..first + runs {
        let order = order(run);
        let mut deployments = BTreeMap::new();
        for flow in order {
            let name = deployment_name(flow, run);
            let repository = format!("{}-{run}", flow.slug());
            let deployment = Deployment::new(stand, name.clone(), &name, &repository)?;
            deployments.insert(flow, deployment);
        }
        for scenario in [
            Scenario::First,
            Scenario::NoChange,
            Scenario::NoChangeForgotten,
            Scenario::ScriptChange,
        ] {
            for flow in order {
                if flow == Flow::Cli && scenario == Scenario::NoChangeForgotten {
                    // The CLI flow remembers nothing of its own between runs.
                    continue;
                }
                let deployment = deployments
                    .get_mut(&flow)
                    .context("every flow has its deployment")?;
                if scenario == Scenario::ScriptChange {
                    deployment.script_version += 1;
                    deployment.write_script()?;
                }
                let sample = match flow {
                    Flow::Tool => tool_deploy(stand, deployment, scenario, run, rtt_ms).await?,
                    Flow::Cli => {
                        if scenario != Scenario::NoChange {
                            deployment.render(stand)?;
                        }
                        cli_deploy(stand, deployment, scenario, run, rtt_ms).await?
                    }
                };
                eprintln!(
                    "[xtask bench] run {}/{runs} at {rtt_ms} ms {} {}: {} ({} requests, {} writes{})",
                    run - first + 1,
                    flow.label(),
                    scenario.label(),
                    format_seconds(sample.seconds),
                    sample.requests.total(),
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

/// `xtask --config … deploy`, timed, with the watch latency of each state it printed.
async fn tool_deploy(
    stand: &Stand,
    deployment: &Deployment,
    scenario: Scenario,
    run: usize,
    rtt_ms: u64,
) -> Result<Sample> {
    let window = stand.open_window().await?;
    let log = deployment
        .dir
        .join(format!("tool-{}-{run}.log", scenario.slug()));
    let args: Vec<OsString> = vec![
        "--config".into(),
        deployment.config().into(),
        "deploy".into(),
    ];
    // Nothing remembered: a cache folder of this run's own, empty.
    let env = match scenario {
        Scenario::NoChangeForgotten => {
            let empty = deployment.dir.join(format!("empty-cache-{run}"));
            vec![(CACHE_DIR_ENV.to_owned(), empty.display().to_string())]
        }
        _ => Vec::new(),
    };
    stand.proxies.take_log();
    let timed = stand.run_timed(&stand.xtask, &args, &env, &log)?;
    let (writes, requests, first) = stand.close_window(window).await?;
    let arrivals = stand.proxies.take_log();
    write_request_log(&log.with_extension("requests"), timed.started_us, &arrivals)?;
    let seen: Vec<(i64, watch::State)> = timed
        .lines
        .iter()
        .filter_map(|(at, line)| watch::parse_state_line(line).map(|s| (*at, s)))
        .collect();
    let answer = stand.standin_json("status-changes").await?;
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
        rtt_ms,
        requests,
        first_request_ms: first_request_ms(timed.started_us, first),
        waves: waves_of(&arrivals, rtt_ms),
    })
}

/// `cli-flow.sh all`, timed.
async fn cli_deploy(
    stand: &Stand,
    deployment: &Deployment,
    scenario: Scenario,
    run: usize,
    rtt_ms: u64,
) -> Result<Sample> {
    let env = deployment.cli_env(stand)?;
    let window = stand.open_window().await?;
    let log = deployment
        .dir
        .join(format!("cli-{}-{run}.log", scenario.slug()));
    let args: Vec<OsString> = vec![stand.cli_flow.clone().into(), "all".into()];
    stand.proxies.take_log();
    let timed = stand.run_timed(&stand.bash, &args, &env, &log)?;
    let (writes, requests, first) = stand.close_window(window).await?;
    let arrivals = stand.proxies.take_log();
    write_request_log(&log.with_extension("requests"), timed.started_us, &arrivals)?;
    Ok(Sample {
        flow: Flow::Cli,
        scenario,
        seconds: timed.seconds,
        peak_rss_kib: timed.peak_rss_kib,
        writes,
        watch_ms: Vec::new(),
        rtt_ms,
        requests,
        first_request_ms: first_request_ms(timed.started_us, first),
        waves: waves_of(&arrivals, rtt_ms),
    })
}

/// Building the context and asking the registry (in-process, the library calls the deploy
/// binary makes), against `docker build` + `docker push` of the same context by the CLI flow's
/// script, once each side's image is in the registry.
pub(super) async fn image_checks(
    stand: &Stand,
    runs: usize,
    samples: &mut Vec<Sample>,
) -> Result<()> {
    let tool = Deployment::new(stand, "bench-check-tool".into(), "check", "check-tool")?;
    let cli = Deployment::new(stand, "bench-check-cli".into(), "check", "check-cli")?;
    let spec = tool.image_spec()?;
    cli.render(stand)?;
    let cli_env = cli.cli_env(stand)?;
    let digest = BuildContext::new(&spec)?.digest;
    let rendered = cli.rendered_digest()?;
    if digest != rendered {
        bail!(
            "the two sides of the image check do not build the same context: {digest} in-process, \
             {rendered} rendered by xtask deploy --dry-run"
        );
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
        for flow in order(run) {
            let window = stand.open_window().await?;
            let (seconds, peak_rss_kib) = match flow {
                Flow::Tool => {
                    let started = Instant::now();
                    let context = BuildContext::new(&spec)?;
                    let plan =
                        flink_eks_image_builder::plan(&spec, &context, &Credentials::Anonymous)
                            .await?;
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
            let (writes, requests, _) = stand.close_window(window).await?;
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
                rtt_ms: 0,
                requests,
                first_request_ms: None,
                waves: None,
            });
        }
    }
    Ok(())
}

/// Each request of a run: ms since the process started, the service, what it asks; for
/// reading which request waited on which.
fn write_request_log(
    path: &std::path::Path,
    started_us: i64,
    requests: &[(i64, &str, String)],
) -> Result<()> {
    let text: String = requests
        .iter()
        .map(|(at, service, what)| {
            format!(
                "{:8.1} ms  {service:<10}  {what}\n",
                (at - started_us) as f64 / 1000.0
            )
        })
        .collect();
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

/// The waves of a run's requests (see [`proxy::waves`]), when a round trip was added.
fn waves_of(arrivals: &[(i64, &str, String)], rtt_ms: u64) -> Option<usize> {
    let at: Vec<i64> = arrivals.iter().map(|(at, _, _)| *at).collect();
    (rtt_ms > 0).then(|| proxy::waves(&at, rtt_ms))
}

/// From a process's start to its first request, in ms.
fn first_request_ms(started_us: i64, first_us: Option<i64>) -> Option<f64> {
    first_us.map(|at| (at - started_us) as f64 / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flows_take_turns_going_first() {
        assert_eq!(order(0), [Flow::Tool, Flow::Cli]);
        assert_eq!(order(1), [Flow::Cli, Flow::Tool]);
        assert_eq!(order(4), [Flow::Tool, Flow::Cli]);
    }
}

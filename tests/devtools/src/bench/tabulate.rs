//! From the samples to the report: one row per measurement with its median, range and ratio,
//! the targets read (never asserted), a note saying why and by how much for each one missed,
//! and the median writes of each flow and scenario. Pure: no IO.

use super::compile::{self, CompileTimes};
use super::proxy::Requests;
use super::report::{
    Latency, LatencyRow, Machine, Report, Row, format_mib, format_millis, format_seconds,
    format_summary,
};
use super::stats::{Summary, median_count};
use super::writes::Writes;
use super::{Flow, Sample, Scenario};

/// A no-change redeploy should take at most this share of the CLI flow's time.
const NO_CHANGE_RATIO_TARGET: f64 = 0.10;
/// The slowest status change should reach xtask's output within this.
const WATCH_LATENCY_TARGET_MS: f64 = 100.0;
/// A no-change redeploy's critical path, in round trips.
const NO_CHANGE_DEPTH_TARGET: f64 = 3.0;
/// A no-change redeploy's requests.
const NO_CHANGE_REQUESTS_TARGET: u64 = 10;
/// What the RTT may add to a no-change redeploy's binary wall time.
const NO_CHANGE_RTT_COST_TARGET_MS: f64 = 150.0;
/// A cold debug build of `cargo xtask` on 2 cores.
const COLD_COMPILE_TARGET_S: f64 = 150.0;

/// The scenarios compared flow against flow, in the table's order.
const COMPARED: [Scenario; 4] = [
    Scenario::First,
    Scenario::NoChange,
    Scenario::ScriptChange,
    Scenario::ImageCheck,
];

/// The report of `samples` (and of the compile times, when measured).
pub(super) fn report(
    machine: Machine,
    command: String,
    runs: usize,
    samples: &[Sample],
    compile: Option<&CompileTimes>,
    cargo_start: &[f64],
) -> Report {
    let mut parts = Parts::default();
    for scenario in COMPARED {
        parts.compare(samples, scenario);
    }
    parts.watch_latency(samples);
    parts.peak_memory(samples);
    match compile {
        Some(times) => parts.compile_times(times, machine.cores),
        None => parts.rows.push(Row {
            target: format!(
                "cold ≤ {} on 2 cores",
                format_seconds(COLD_COMPILE_TARGET_S)
            ),
            ..row(
                "compile times of `cargo xtask`",
                "not measured in this run (`--no-compile`)".to_owned(),
            )
        }),
    }
    let latency = parts.latency(samples, cargo_start);
    Report {
        machine,
        command,
        runs,
        rows: parts.rows,
        writes: parts.writes,
        latency,
        notes: parts.notes,
    }
}

/// The report's rows, notes and writes table, as they are filled in.
#[derive(Default)]
struct Parts {
    rows: Vec<Row>,
    notes: Vec<String>,
    writes: Vec<(String, Writes)>,
}

impl Parts {
    /// One scenario, flink-eks against the CLI flow: the row, the writes of each, and for the
    /// no-change redeploy its targets.
    fn compare(&mut self, samples: &[Sample], scenario: Scenario) {
        let tool = of(samples, Flow::Tool, scenario);
        let cli = of(samples, Flow::Cli, scenario);
        let (Some(t), Some(c)) = (seconds(&tool), seconds(&cli)) else {
            return;
        };
        let ratio = t.median / c.median;
        let (measurement, target, met) = match scenario {
            Scenario::NoChange => {
                let (target, met) = self.no_change_targets(&tool, &t, &c);
                (scenario.label().to_owned(), target, Some(met))
            }
            Scenario::ImageCheck => (
                "image no-change check: `BuildContext::new` + the image plan in-process; \
                 `docker build` + `docker push` of the same context"
                    .to_owned(),
                String::new(),
                None,
            ),
            _ => (scenario.label().to_owned(), String::new(), None),
        };
        self.rows.push(Row {
            measurement,
            tool: format_summary(&t, format_seconds),
            cli: format_summary(&c, format_seconds),
            ratio: Some(ratio),
            target,
            met,
        });
        for (flow, list) in [(Flow::Tool, &tool), (Flow::Cli, &cli)] {
            self.writes.push((
                format!("{}, {}", flow.label(), scenario.label()),
                median_writes(list),
            ));
        }
    }

    /// The no-change redeploy's targets (a share of the CLI flow's time, and no write): the
    /// target column, whether both were met, and a note for each one missed.
    fn no_change_targets(&mut self, tool: &[&Sample], t: &Summary, c: &Summary) -> (String, bool) {
        let ratio = t.median / c.median;
        let tool_writes = tool.iter().map(|s| s.writes.total()).max().unwrap_or(0);
        if ratio > NO_CHANGE_RATIO_TARGET {
            self.notes.push(format!(
                "**Missed: no-change redeploy.** {} against the CLI flow's {} is {:.3} of it, \
                 {:.1}× the target of {NO_CHANGE_RATIO_TARGET:.2} ({} over {}). Why: {}",
                format_seconds(t.median),
                format_seconds(c.median),
                ratio,
                ratio / NO_CHANGE_RATIO_TARGET,
                format_seconds(t.median - NO_CHANGE_RATIO_TARGET * c.median),
                format_seconds(NO_CHANGE_RATIO_TARGET * c.median),
                no_change_why(tool)
            ));
        }
        if tool_writes > 0 {
            self.notes.push(format!(
                "**Missed: zero writes on a no-change redeploy.** flink-eks made up to {tool_writes} \
                 write request(s) (see the writes table for where)."
            ));
        }
        (
            format!("≤ {NO_CHANGE_RATIO_TARGET:.2} of the CLI flow, 0 writes"),
            ratio <= NO_CHANGE_RATIO_TARGET && tool_writes == 0,
        )
    }

    /// From the stand-in storing a status change to xtask printing it, over every change seen.
    fn watch_latency(&mut self, samples: &[Sample]) {
        let watch_ms: Vec<f64> = samples
            .iter()
            .flat_map(|s| s.watch_ms.iter().copied())
            .collect();
        let Some(w) = Summary::of(&watch_ms) else {
            self.notes.push(
                "Watch latency: no status change was seen through a watch (every state came from \
                 the initial list)."
                    .to_owned(),
            );
            return;
        };
        let met = w.max <= WATCH_LATENCY_TARGET_MS;
        if !met {
            self.notes.push(format!(
                "**Missed: watch latency.** The slowest of {} status changes reached xtask after {}, \
                 {} over the target (median {}). The stand-in sends each change as it stores it; \
                 the delay is the client's (kube-rs watcher, then the line printed) or a busy machine.",
                w.n,
                format_millis(w.max),
                format_millis(w.max - WATCH_LATENCY_TARGET_MS),
                format_millis(w.median)
            ));
        }
        self.rows.push(Row {
            target: format!("≤ {WATCH_LATENCY_TARGET_MS:.0} ms"),
            met: Some(met),
            ..row(
                &format!(
                    "watch latency: status stored by the stand-in → state printed by xtask ({} changes)",
                    w.n
                ),
                format_summary(&w, format_millis),
            )
        });
    }

    /// Peak memory of the first deploys.
    fn peak_memory(&mut self, samples: &[Sample]) {
        let rss = |flow: Flow| {
            let kib: Vec<f64> = samples
                .iter()
                .filter(|s| s.flow == flow && s.scenario == Scenario::First)
                .filter_map(|s| s.peak_rss_kib.map(|k| k as f64))
                .collect();
            Summary::of(&kib)
        };
        let Some(tool) = rss(Flow::Tool) else {
            return;
        };
        self.rows.push(Row {
            cli: rss(Flow::Cli).map_or_else(String::new, |c| format_summary(&c, format_mib)),
            ..row(
                "peak memory (first deploy): the xtask process; for the CLI flow, its largest process",
                format_summary(&tool, format_mib),
            )
        });
    }

    /// Cold, incremental and up-to-date compile times, the cold one against its target.
    fn compile_times(&mut self, times: &CompileTimes, cores: usize) {
        let met = times.cold <= COLD_COMPILE_TARGET_S;
        if !met {
            self.notes.push(format!(
                "**Missed: cold compile.** {} against the target of {}: {} ({:.0} %) over. Why: {}",
                format_seconds(times.cold),
                format_seconds(COLD_COMPILE_TARGET_S),
                format_seconds(times.cold - COLD_COMPILE_TARGET_S),
                (times.cold / COLD_COMPILE_TARGET_S - 1.0) * 100.0,
                cold_compile_why(times, cores)
            ));
        }
        self.rows.push(Row {
            target: format!("≤ {} on 2 cores", format_seconds(COLD_COMPILE_TARGET_S)),
            met: Some(met),
            ..row(
                "cold debug compile of `cargo xtask` (fresh target directory, crates downloaded)",
                format_seconds(times.cold),
            )
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
                self.rows
                    .push(row(label, format_summary(&s, format_seconds)));
            }
        }
    }
}

impl Parts {
    /// Requests, depth and wall times at 0 ms and at the RTT, per flow and scenario, and the
    /// no-change redeploy's goals; `None` when no deploy was measured.
    fn latency(&mut self, samples: &[Sample], cargo_start: &[f64]) -> Option<Latency> {
        let rtt_ms = samples.iter().map(|s| s.rtt_ms).max().filter(|&ms| ms > 0);
        let cargo = Summary::of(cargo_start).map(|s| s.median);
        let wall = |flow: Flow, scenario: Scenario, ms: u64| {
            let values: Vec<f64> = samples
                .iter()
                .filter(|s| s.flow == flow && s.scenario == scenario && s.rtt_ms == ms)
                .map(|s| s.seconds)
                .collect();
            Summary::of(&values).map(|s| s.median)
        };
        let mut rows = Vec::new();
        let mut goals = Vec::new();
        for scenario in [
            Scenario::First,
            Scenario::NoChange,
            Scenario::NoChangeForgotten,
            Scenario::ScriptChange,
        ] {
            for flow in [Flow::Tool, Flow::Cli] {
                let at_0: Vec<&Sample> = of(samples, flow, scenario);
                let Some(w0) = wall(flow, scenario, 0) else {
                    continue;
                };
                let w_rtt = rtt_ms.and_then(|ms| wall(flow, scenario, ms));
                let waves = median_count(
                    &samples
                        .iter()
                        .filter(|s| s.flow == flow && s.scenario == scenario)
                        .filter_map(|s| s.waves.map(|w| w as u64))
                        .collect::<Vec<_>>(),
                );
                let depth = rtt_ms
                    .zip(w_rtt)
                    .map(|(ms, w)| (w - w0) * 1000.0 / ms as f64);
                let requests = median_requests(&at_0);
                let first = Summary::of(
                    &at_0
                        .iter()
                        .filter_map(|s| s.first_request_ms)
                        .collect::<Vec<_>>(),
                )
                .map(|s| s.median);
                let label = match flow {
                    Flow::Tool => format!("flink-eks binary alone, {}", scenario.label()),
                    Flow::Cli => format!("CLI flow, {}", scenario.label()),
                };
                rows.push(LatencyRow {
                    label,
                    requests: format!(
                        "{} ({} / {} / {})",
                        requests.total(),
                        requests.aws,
                        requests.registry,
                        requests.kubernetes
                    ),
                    depth: match (depth, waves) {
                        (Some(d), Some(w)) => format!("{d:.1}; {w} waves"),
                        (Some(d), None) => format!("{d:.1}"),
                        _ => String::new(),
                    },
                    wall_0: format_seconds(w0),
                    wall_rtt: w_rtt.map_or_else(String::new, format_seconds),
                    first_request: first.map_or_else(String::new, format_millis),
                });
                if flow == Flow::Tool
                    && let Some(c) = cargo
                {
                    rows.push(LatencyRow {
                        label: format!("flink-eks through `cargo xtask`, {}", scenario.label()),
                        requests: String::new(),
                        depth: String::new(),
                        wall_0: format_seconds(w0 + c),
                        wall_rtt: w_rtt.map_or_else(String::new, |w| format_seconds(w + c)),
                        first_request: String::new(),
                    });
                }
                if flow == Flow::Tool && scenario == Scenario::NoChange {
                    goals.push(Row {
                        target: format!("≤ {NO_CHANGE_REQUESTS_TARGET}"),
                        met: Some(requests.total() <= NO_CHANGE_REQUESTS_TARGET),
                        ..row("requests", requests.total().to_string())
                    });
                    if let (Some(d), Some(w), Some(ms)) = (depth, w_rtt, rtt_ms) {
                        goals.push(Row {
                            target: format!("≤ {NO_CHANGE_DEPTH_TARGET:.0}"),
                            met: Some(d <= NO_CHANGE_DEPTH_TARGET),
                            ..row("depth in round trips", format!("{d:.1}"))
                        });
                        let added = (w - w0) * 1000.0;
                        goals.push(Row {
                            target: format!("≤ {NO_CHANGE_RTT_COST_TARGET_MS:.0} ms"),
                            met: Some(added <= NO_CHANGE_RTT_COST_TARGET_MS),
                            ..row(
                                &format!("binary's wall time at {ms} ms − at 0 ms"),
                                format_millis(added),
                            )
                        });
                    }
                }
            }
        }
        if let Some(c) = cargo {
            for ms in std::iter::once(0).chain(rtt_ms) {
                let tool = wall(Flow::Tool, Scenario::NoChange, ms);
                let cli = wall(Flow::Cli, Scenario::NoChange, ms);
                if let (Some(t), Some(cli)) = (tool, cli) {
                    let share = (t + c) / cli;
                    goals.push(Row {
                        target: format!("≤ {NO_CHANGE_RATIO_TARGET:.2}"),
                        met: Some(share <= NO_CHANGE_RATIO_TARGET),
                        ..row(
                            &format!("through `cargo xtask` over the CLI flow's time, at {ms} ms"),
                            format!("{share:.3}"),
                        )
                    });
                }
            }
        } else {
            self.notes.push(
                "`cargo xtask` could not be run to measure its start (the tree did not build at \
                 the end of the bench): the \"through `cargo xtask`\" rows are missing."
                    .to_owned(),
            );
        }
        if rows.is_empty() {
            return None;
        }
        Some(Latency {
            rtt_ms,
            rows,
            goals,
        })
    }
}

/// The median requests of each service over `samples`.
fn median_requests(samples: &[&Sample]) -> Requests {
    let median = |f: fn(&Requests) -> u64| {
        median_count(&samples.iter().map(|s| f(&s.requests)).collect::<Vec<_>>()).unwrap_or(0)
    };
    Requests {
        aws: median(|r| r.aws),
        registry: median(|r| r.registry),
        kubernetes: median(|r| r.kubernetes),
    }
}

/// A row of flink-eks alone: no CLI flow, no ratio, no target.
fn row(measurement: &str, tool: String) -> Row {
    Row {
        measurement: measurement.to_owned(),
        tool,
        cli: String::new(),
        ratio: None,
        target: String::new(),
        met: None,
    }
}

/// The samples of one flow and scenario, at 0 ms of added latency.
fn of(samples: &[Sample], flow: Flow, scenario: Scenario) -> Vec<&Sample> {
    samples
        .iter()
        .filter(|s| s.flow == flow && s.scenario == scenario && s.rtt_ms == 0)
        .collect()
}

/// Their wall times.
fn seconds(samples: &[&Sample]) -> Option<Summary> {
    Summary::of(&samples.iter().map(|s| s.seconds).collect::<Vec<_>>())
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
fn cold_compile_why(times: &CompileTimes, cores: usize) -> String {
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
            rtt_ms: 0,
            requests: Requests {
                aws: 4,
                registry: 1,
                kubernetes: 3,
            },
            first_request_ms: Some(30.0),
            waves: None,
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
        let compile = CompileTimes {
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
        let report = report(machine(), "cmd".into(), 2, &samples, Some(&compile), &[0.3]);
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
        assert_eq!(
            row("incremental compile").map(|r| r.tool.as_str()),
            Some("11.0 s [10.0 s–12.0 s]")
        );
        assert_eq!(
            row("peak memory").map(|r| (r.tool.as_str(), r.cli.as_str())),
            Some(("40 MiB", "40 MiB"))
        );
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
        let report = report(machine(), "cmd".into(), 1, &samples, None, &[0.3]);
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

    #[test]
    fn without_a_watched_change_the_report_says_so_and_has_no_watch_row() {
        let samples = [
            sample(Flow::Tool, Scenario::NoChange, 0.5, 0),
            sample(Flow::Cli, Scenario::NoChange, 10.0, 2),
        ];
        let report = report(machine(), "cmd".into(), 1, &samples, None, &[0.3]);
        assert!(
            !report
                .rows
                .iter()
                .any(|r| r.measurement.starts_with("watch latency")),
            "{:?}",
            report.rows
        );
        assert!(
            report
                .notes
                .iter()
                .any(|n| n.starts_with("Watch latency: no status change")),
            "{:?}",
            report.notes
        );
    }

    /// At 0 ms and at 40 ms: the depth is the wall-time difference over the RTT, the cargo
    /// rows add cargo's start, and the no-change goals are read from them.
    #[test]
    fn the_latency_table_reads_depth_from_the_two_wall_times() {
        let at = |flow, scenario, seconds, rtt_ms| Sample {
            rtt_ms,
            waves: (rtt_ms > 0).then_some(4),
            ..sample(flow, scenario, seconds, 0)
        };
        let samples = [
            at(Flow::Tool, Scenario::NoChange, 0.2, 0),
            at(Flow::Tool, Scenario::NoChange, 0.4, 40),
            at(Flow::Cli, Scenario::NoChange, 5.0, 0),
            at(Flow::Cli, Scenario::NoChange, 6.0, 40),
        ];
        let report = report(machine(), "cmd".into(), 1, &samples, None, &[0.3]);
        let latency = report.latency.clone().expect("a latency table");
        assert_eq!(latency.rtt_ms, Some(40));
        let labels: Vec<&str> = latency.rows.iter().map(|r| r.label.as_str()).collect();
        assert_eq!(
            labels,
            [
                "flink-eks binary alone, no-change redeploy",
                "flink-eks through `cargo xtask`, no-change redeploy",
                "CLI flow, no-change redeploy"
            ]
        );
        let tool = &latency.rows[0];
        assert_eq!(tool.requests, "8 (4 / 1 / 3)");
        assert_eq!(tool.depth, "5.0; 4 waves");
        assert_eq!(
            (tool.wall_0.as_str(), tool.wall_rtt.as_str()),
            ("200 ms", "400 ms")
        );
        assert_eq!(tool.first_request, "30 ms");
        let cargo = &latency.rows[1];
        assert_eq!(
            (cargo.wall_0.as_str(), cargo.wall_rtt.as_str()),
            ("500 ms", "700 ms")
        );
        assert_eq!(latency.rows[2].depth, "25.0; 4 waves");
        let goals: Vec<(&str, &str, Option<bool>)> = latency
            .goals
            .iter()
            .map(|g| (g.measurement.as_str(), g.tool.as_str(), g.met))
            .collect();
        assert_eq!(
            goals,
            [
                ("requests", "8", Some(true)),
                ("depth in round trips", "5.0", Some(false)),
                (
                    "binary's wall time at 40 ms − at 0 ms",
                    "200 ms",
                    Some(false)
                ),
                (
                    "through `cargo xtask` over the CLI flow's time, at 0 ms",
                    "0.100",
                    Some(true)
                ),
                (
                    "through `cargo xtask` over the CLI flow's time, at 40 ms",
                    "0.117",
                    Some(false)
                ),
            ]
        );
        let markdown = report.to_markdown();
        assert!(
            markdown.contains("| depth (round trips): wall time; waves |"),
            "{markdown}"
        );
        assert!(markdown.contains("holds it back 40 ms"), "{markdown}");
    }
}

//! The README table: the machine, the measurements against their targets, the writes, and
//! what missed its target; spliced between the README's bench markers.

use std::fmt::Write as _;

use anyhow::{Result, bail};

use super::stats::Summary;
use super::writes::Writes;

pub(crate) const START_MARKER: &str = "<!-- bench:start -->";
pub(crate) const END_MARKER: &str = "<!-- bench:end -->";

/// What the numbers were measured on.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Machine {
    pub(crate) cores: usize,
    pub(crate) memory_gib: f64,
    pub(crate) cpu: String,
    pub(crate) rustc: String,
    /// `YYYY-MM-DD`, UTC.
    pub(crate) date: String,
    /// The versions of the CLIs of the CLI flow.
    pub(crate) tools: Vec<String>,
}

/// One line of the main table.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Row {
    pub(crate) measurement: String,
    pub(crate) tool: String,
    pub(crate) cli: String,
    /// flink-eks over the CLI flow.
    pub(crate) ratio: Option<f64>,
    pub(crate) target: String,
    pub(crate) met: Option<bool>,
}

/// One line of the latency table: one flow (or way of running it) and scenario.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LatencyRow {
    pub(crate) label: String,
    /// `total (AWS / registry / Kubernetes)`, or empty.
    pub(crate) requests: String,
    /// Round trips on the critical path, or empty.
    pub(crate) depth: String,
    pub(crate) wall_0: String,
    pub(crate) wall_rtt: String,
    /// From the process's start to its first request, or empty.
    pub(crate) first_request: String,
}

/// Requests, depth and wall times at 0 ms and at the RTT the proxies added.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Latency {
    /// The round trip added to each request in the second set of runs; `None` when the bench
    /// ran at 0 ms only.
    pub(crate) rtt_ms: Option<u64>,
    pub(crate) rows: Vec<LatencyRow>,
    /// The no-change redeploy's goals: measurement, value, target, met.
    pub(crate) goals: Vec<Row>,
}

/// Everything the README shows.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Report {
    pub(crate) machine: Machine,
    /// The command that produced it.
    pub(crate) command: String,
    pub(crate) runs: usize,
    pub(crate) rows: Vec<Row>,
    /// Median writes per run, by flow and scenario.
    pub(crate) writes: Vec<(String, Writes)>,
    /// Requests and round trips, when the deploys were measured through the proxies.
    pub(crate) latency: Option<Latency>,
    /// Why a target was missed, and by how much; other caveats.
    pub(crate) notes: Vec<String>,
}

impl Report {
    pub(crate) fn to_markdown(&self) -> String {
        let m = &self.machine;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "Measured by `{}` on {}: {} cores ({}), {:.1} GiB memory, {}; {}.",
            self.command,
            m.date,
            m.cores,
            m.cpu,
            m.memory_gib,
            m.rustc,
            m.tools.join(", ")
        );
        let _ = writeln!(
            out,
            "Whole-process wall times against the test stand-ins (dockerd, docker-registry, moto, \
             kube-standin), flink-eks and the CLI flow (`tests/devtools/cli-flow.sh`) alternating; \
             median [min–max] of {} runs.",
            self.runs
        );
        out.push('\n');
        out.push_str("| measurement | flink-eks | CLI flow | ratio | target | met? |\n");
        out.push_str("|---|---|---|---|---|---|\n");
        for row in &self.rows {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} |",
                row.measurement,
                dash(&row.tool),
                dash(&row.cli),
                row.ratio.map_or_else(|| "–".to_owned(), format_ratio),
                dash(&row.target),
                match row.met {
                    Some(true) => "yes",
                    Some(false) => "**no**",
                    None => "–",
                }
            );
        }
        out.push('\n');
        out.push_str("Write requests counted at the stand-ins (median per run):\n\n");
        out.push_str("| flow | IAM | S3 | EKS | registry | Kubernetes |\n");
        out.push_str("|---|---|---|---|---|---|\n");
        for (flow, w) in &self.writes {
            let _ = writeln!(
                out,
                "| {flow} | {} | {} | {} | {} | {} |",
                w.iam, w.s3, w.eks, w.registry, w.kubernetes
            );
        }
        if let Some(latency) = &self.latency {
            latency.write_markdown(&mut out);
        }
        if !self.notes.is_empty() {
            out.push('\n');
            for note in &self.notes {
                let _ = writeln!(out, "- {note}");
            }
        }
        out
    }
}

impl Latency {
    fn write_markdown(&self, out: &mut String) {
        let rtt = self.rtt_ms.map_or_else(
            || "(not measured: no `--rtt`)".to_owned(),
            |ms| format!("{ms} ms"),
        );
        out.push('\n');
        let _ = writeln!(
            out,
            "Requests and round trips: every request of either flow to moto, the registry and the \
             Kubernetes stand-in passes a proxy of the bench's (on loopback) that counts it and, \
             in a second set of runs, holds it back {rtt} before forwarding it, as a network \
             would. Depth is the critical path in round trips: (wall time at {rtt} − at 0 ms) / \
             {rtt}; and the waves of requests seen at the proxies in the {rtt} runs (a request \
             arriving ¾ of a round trip after its wave's first starts the next): the wall-time \
             figure falls short when the 0 ms run is busy on the CPU, since the CPU's work \
             overlaps the waits at {rtt}. \"Binary alone\" times the deploy binary's process; \"through `cargo xtask`\" \
             adds cargo's own start, measured apart as the median of `cargo xtask --version`. \
             Requests are the median of the 0 ms runs; first request: from the process's start to \
             its first request reaching a proxy (0 ms runs). Median of each set. The deploy \
             binary keeps its cache folder (`FLINK_EKS_CACHE_DIR`) between the runs, as on a \
             laptop; \"cluster not remembered\" is the same no-change redeploy with an empty one, \
             as on a machine that never deployed to the cluster (a fresh CI runner). The CLI \
             flow's figures vary by seconds from run to run (each `aws` command starts a Python \
             interpreter), so its depth from wall times is rough, and can come out below zero; \
             its waves are not.",
        );
        out.push('\n');
        let _ = writeln!(
            out,
            "| flow, scenario | requests: all (AWS / registry / Kubernetes) | depth (round trips): wall time; waves | wall time at 0 ms | wall time at {rtt} | first request |"
        );
        out.push_str("|---|---|---|---|---|---|\n");
        for row in &self.rows {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} |",
                row.label,
                dash(&row.requests),
                dash(&row.depth),
                dash(&row.wall_0),
                dash(&row.wall_rtt),
                dash(&row.first_request)
            );
        }
        if !self.goals.is_empty() {
            out.push('\n');
            out.push_str("Goals of the no-change redeploy (read, not asserted):\n\n");
            out.push_str("| goal | measured | target | met? |\n|---|---|---|---|\n");
            for goal in &self.goals {
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} |",
                    goal.measurement,
                    dash(&goal.tool),
                    dash(&goal.target),
                    match goal.met {
                        Some(true) => "yes",
                        Some(false) => "**no**",
                        None => "–",
                    }
                );
            }
        }
    }
}

fn dash(text: &str) -> &str {
    if text.is_empty() { "–" } else { text }
}

fn format_ratio(ratio: f64) -> String {
    if ratio < 0.1 {
        format!("{ratio:.3}")
    } else {
        format!("{ratio:.2}")
    }
}

/// A duration in seconds, in the unit that reads best.
pub(crate) fn format_seconds(seconds: f64) -> String {
    if seconds < 1.0 {
        format!("{:.0} ms", seconds * 1000.0)
    } else if seconds < 10.0 {
        format!("{seconds:.2} s")
    } else if seconds < 120.0 {
        format!("{seconds:.1} s")
    } else {
        let whole = seconds.round() as u64;
        format!("{} min {} s", whole / 60, whole % 60)
    }
}

/// `median [min–max]` in `unit` (`min–max` left out when they read the same).
pub(crate) fn format_summary(s: &Summary, unit: impl Fn(f64) -> String) -> String {
    let (median, min, max) = (unit(s.median), unit(s.min), unit(s.max));
    if min == max {
        median
    } else {
        format!("{median} [{min}–{max}]")
    }
}

pub(crate) fn format_millis(ms: f64) -> String {
    if ms < 10.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{ms:.0} ms")
    }
}

pub(crate) fn format_mib(kib: f64) -> String {
    format!("{:.0} MiB", kib / 1024.0)
}

/// Replaces what is between the bench markers of `readme` with `block`, or, when the README
/// has no markers yet, appends a "Benchmarks" section with them.
pub(crate) fn splice(readme: &str, block: &str) -> Result<String> {
    let block = block.trim_end();
    match (readme.find(START_MARKER), readme.find(END_MARKER)) {
        (Some(start), Some(end)) if start < end => {
            let before = &readme[..start + START_MARKER.len()];
            let after = &readme[end..];
            Ok(format!("{before}\n{block}\n{after}"))
        }
        (None, None) => {
            let mut out = readme.trim_end().to_owned();
            out.push_str(&format!(
                "\n\n## Benchmarks\n\n{START_MARKER}\n{block}\n{END_MARKER}\n"
            ));
            Ok(out)
        }
        _ => bail!(
            "README.md has one bench marker without the other (or in the wrong order): it needs \
             `{START_MARKER}` and then `{END_MARKER}`, or neither"
        ),
    }
}

/// `MemTotal` of `/proc/meminfo`, in GiB.
pub(crate) fn meminfo_total_gib(meminfo: &str) -> Option<f64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / (1024.0 * 1024.0))
}

/// The first `model name` of `/proc/cpuinfo`.
pub(crate) fn cpu_model(cpuinfo: &str) -> Option<String> {
    cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.split_whitespace().collect::<Vec<_>>().join(" "))
}

/// The UTC date of a Unix time, as `YYYY-MM-DD` (the civil-from-days algorithm).
pub(crate) fn utc_date(unix_seconds: i64) -> String {
    let days = unix_seconds.div_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> Report {
        Report {
            machine: Machine {
                cores: 2,
                memory_gib: 23.47,
                cpu: "Test CPU @ 2.0GHz".into(),
                rustc: "rustc 1.91.0".into(),
                date: "2026-11-27".into(),
                tools: vec!["docker 20.10.24".into(), "aws-cli 1.46.3".into()],
            },
            command: "cargo xtask bench --runs 3".into(),
            runs: 3,
            rows: vec![
                Row {
                    measurement: "no-change redeploy".into(),
                    tool: "412 ms [398 ms–450 ms]".into(),
                    cli: "9.80 s".into(),
                    ratio: Some(0.042),
                    target: "≤ 0.10 of the CLI flow, 0 writes".into(),
                    met: Some(true),
                },
                Row {
                    measurement: "cold compile".into(),
                    tool: "2 min 41 s".into(),
                    cli: String::new(),
                    ratio: None,
                    target: "≤ 2.5 min".into(),
                    met: Some(false),
                },
            ],
            writes: vec![("flink-eks, no-change redeploy".into(), Writes::default())],
            latency: None,
            notes: vec!["cold compile: 11 s over the target".into()],
        }
    }

    #[test]
    fn the_table_renders_rows_writes_and_notes() {
        let text = report().to_markdown();
        assert!(text.starts_with(
            "Measured by `cargo xtask bench --runs 3` on 2026-11-27: 2 cores (Test CPU @ 2.0GHz), 23.5 GiB memory, rustc 1.91.0; docker 20.10.24, aws-cli 1.46.3.\n"
        ), "{text}");
        assert!(text.contains(
            "| no-change redeploy | 412 ms [398 ms–450 ms] | 9.80 s | 0.042 | ≤ 0.10 of the CLI flow, 0 writes | yes |\n"
        ), "{text}");
        assert!(
            text.contains("| cold compile | 2 min 41 s | – | – | ≤ 2.5 min | **no** |\n"),
            "{text}"
        );
        assert!(
            text.contains("| flink-eks, no-change redeploy | 0 | 0 | 0 | 0 | 0 |\n"),
            "{text}"
        );
        assert!(
            text.ends_with("- cold compile: 11 s over the target\n"),
            "{text}"
        );
    }

    #[test]
    fn splicing_replaces_only_between_the_markers() {
        let readme = "# x\n\n## Benchmarks\n\n<!-- bench:start -->\nold table\n<!-- bench:end -->\n\n## After\nkept\n";
        let out = splice(readme, "new table\n").ok();
        assert_eq!(
            out.as_deref(),
            Some(
                "# x\n\n## Benchmarks\n\n<!-- bench:start -->\nnew table\n<!-- bench:end -->\n\n## After\nkept\n"
            )
        );
        // Splicing again with the same block changes nothing.
        assert_eq!(splice(out.as_deref().unwrap_or(""), "new table").ok(), out);
    }

    #[test]
    fn splicing_adds_the_section_when_missing_and_refuses_half_markers() {
        let out = splice("# x\n\ntext\n", "table").ok();
        assert_eq!(
            out.as_deref(),
            Some(
                "# x\n\ntext\n\n## Benchmarks\n\n<!-- bench:start -->\ntable\n<!-- bench:end -->\n"
            )
        );
        assert!(splice("a\n<!-- bench:start -->\nb\n", "t").is_err());
        assert!(splice("<!-- bench:end -->\n<!-- bench:start -->\n", "t").is_err());
    }

    #[test]
    fn units() {
        assert_eq!(format_seconds(0.4123), "412 ms");
        assert_eq!(format_seconds(3.456), "3.46 s");
        assert_eq!(format_seconds(14.24), "14.2 s");
        assert_eq!(format_seconds(161.0), "2 min 41 s");
        assert_eq!(format_millis(2.345), "2.3 ms");
        assert_eq!(format_millis(45.6), "46 ms");
        assert_eq!(format_mib(40960.0), "40 MiB");
        let s = Summary {
            median: 1.5,
            min: 1.0,
            max: 2.0,
            n: 3,
        };
        assert_eq!(format_summary(&s, format_seconds), "1.50 s [1.00 s–2.00 s]");
        let one = Summary {
            median: 1.5,
            min: 1.5,
            max: 1.5,
            n: 1,
        };
        assert_eq!(format_summary(&one, format_seconds), "1.50 s");
        let same = Summary {
            median: 51_000.0,
            min: 50_900.0,
            max: 51_100.0,
            n: 2,
        };
        assert_eq!(format_summary(&same, format_mib), "50 MiB");
    }

    #[test]
    fn machine_facts_parse() {
        let meminfo = "MemTotal:       24606404 kB\nMemFree:        1000 kB\n";
        let gib = meminfo_total_gib(meminfo).unwrap_or_default();
        assert!((gib - 23.466).abs() < 0.01, "{gib}");
        let cpuinfo = "processor\t: 0\nmodel name\t: AMD EPYC   7B13\nprocessor\t: 1\nmodel name\t: AMD EPYC 7B13\n";
        assert_eq!(cpu_model(cpuinfo).as_deref(), Some("AMD EPYC 7B13"));
        assert_eq!(utc_date(0), "1970-01-01");
        assert_eq!(utc_date(951_782_400), "2000-02-29");
        assert_eq!(utc_date(1_795_737_600), "2026-11-27");
        assert_eq!(utc_date(1_795_737_599), "2026-11-26");
    }
}

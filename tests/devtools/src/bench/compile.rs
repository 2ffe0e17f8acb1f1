//! Compile times of `cargo xtask`: cold (a fresh target directory: what a new user pays
//! once, with the crates already downloaded), incremental (after touching `xtask/src/main.rs`:
//! what every edit costs), and `cargo xtask --version` with nothing to rebuild (cargo's
//! up-to-date check and the binary's start, paid by every `cargo xtask` command).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Instant, SystemTime};

use anyhow::{Context, Result, bail};

/// Seconds per measurement.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CompileTimes {
    pub(crate) cold: f64,
    /// The cold build's compile time per crate (build scripts included), slowest first, from
    /// `cargo build --timings`.
    pub(crate) cold_crates: Vec<(String, f64)>,
    /// The 5-minute load average when the cold build ended: how busy the machine was
    /// (the build alone keeps every core busy).
    pub(crate) cold_load: Option<f64>,
    pub(crate) incremental: Vec<f64>,
    pub(crate) up_to_date: Vec<f64>,
}

pub(crate) fn measure(root: &Path, runs: usize) -> Result<CompileTimes> {
    let cold_dir = root.join("target/bench-cold");
    if cold_dir.exists() {
        std::fs::remove_dir_all(&cold_dir)
            .with_context(|| format!("cannot remove {}", cold_dir.display()))?;
    }
    eprintln!(
        "[xtask bench] cold debug build of xtask into {} (minutes)",
        cold_dir.display()
    );
    let cold = cargo_build(root, Some(&cold_dir));
    let cold_load = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|t| t.split_whitespace().nth(1).and_then(|l| l.parse().ok()));
    let cold_crates = std::fs::read_to_string(cold_dir.join("cargo-timings/cargo-timing.html"))
        .map(|html| crate_times(&html))
        .unwrap_or_default();
    // A cold target directory is ~2.5 GB: give the space back whatever happened.
    let _ = std::fs::remove_dir_all(&cold_dir);
    let cold = cold?;

    // Bring the shared target directory up to date first, so that the timed builds compile
    // xtask alone and not what others changed.
    cargo_build(root, None)?;
    let main_rs = root.join("xtask/src/main.rs");
    let mut incremental = Vec::new();
    let mut up_to_date = Vec::new();
    for run in 1..=runs {
        eprintln!("[xtask bench] incremental build {run}/{runs}");
        std::fs::File::options()
            .write(true)
            .open(&main_rs)
            .and_then(|f| f.set_modified(SystemTime::now()))
            .with_context(|| format!("cannot touch {}", main_rs.display()))?;
        incremental.push(cargo_build(root, None)?);
        up_to_date.push(cargo_xtask_version(root)?);
    }
    Ok(CompileTimes {
        cold,
        cold_crates,
        cold_load,
        incremental,
        up_to_date,
    })
}

/// What `cargo xtask` adds before the deploy binary starts: `cargo xtask --version`, `runs`
/// times after one untimed call (which builds xtask if the tree changed), in seconds. Empty
/// when cargo cannot build it now (the table then says it was not measured).
pub(crate) fn cargo_start(root: &Path, runs: usize) -> Vec<f64> {
    eprintln!("[xtask bench] cargo xtask --version, {runs} times");
    if let Err(err) = cargo_xtask_version(root) {
        eprintln!("[xtask bench] warning: {err:#}; cargo's start is not measured");
        return Vec::new();
    }
    (0..runs)
        .map_while(|_| cargo_xtask_version(root).ok())
        .collect()
}

/// `cargo xtask --version` (the alias: `cargo run --quiet --package xtask -- --version`), in
/// seconds.
fn cargo_xtask_version(root: &Path) -> Result<f64> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let started = Instant::now();
    let status = Command::new(cargo)
        .current_dir(root)
        .args(["xtask", "--version"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .status()
        .context("cannot run cargo xtask --version")?;
    let seconds = started.elapsed().as_secs_f64();
    if !status.success() {
        bail!("cargo xtask --version failed ({status})");
    }
    Ok(seconds)
}

/// `cargo build -p xtask`, in seconds.
fn cargo_build(root: &Path, target_dir: Option<&Path>) -> Result<f64> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(root)
        .args(["build", "--quiet", "-p", "xtask"])
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    if let Some(dir) = target_dir {
        // `--timings` writes each crate's compile time into the target directory.
        cmd.env("CARGO_TARGET_DIR", dir).arg("--timings");
    }
    let started = Instant::now();
    let status = cmd.status().context("cannot run cargo build -p xtask")?;
    let seconds = started.elapsed().as_secs_f64();
    if !status.success() {
        bail!("cargo build -p xtask failed ({status})");
    }
    Ok(seconds)
}

/// Compile time per crate, slowest first, from the `UNIT_DATA` of cargo's timing report
/// (a crate's units, its build script's compile and run included, added up).
pub(crate) fn crate_times(html: &str) -> Vec<(String, f64)> {
    let Some(start) = html.find("const UNIT_DATA = ") else {
        return Vec::new();
    };
    let data = &html[start + "const UNIT_DATA = ".len()..];
    let Some(end) = data.find("];") else {
        return Vec::new();
    };
    let Ok(units) = serde_json::from_str::<Vec<serde_json::Value>>(&data[..=end]) else {
        return Vec::new();
    };
    let mut by_crate: std::collections::BTreeMap<String, f64> = std::collections::BTreeMap::new();
    for unit in &units {
        if let (Some(name), Some(duration)) = (unit["name"].as_str(), unit["duration"].as_f64()) {
            *by_crate.entry(name.to_owned()).or_default() += duration;
        }
    }
    let mut times: Vec<(String, f64)> = by_crate.into_iter().collect();
    times.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    times
}

/// Whether a crate is one of the workspace's own.
pub(crate) fn is_workspace_crate(name: &str) -> bool {
    name == "xtask" || name.starts_with("flink-eks-")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crate_times_add_up_units_and_sort() {
        let html = r#"<script>
DURATION = 300;
const UNIT_DATA = [
  {"i": 0, "name": "aws-lc-sys", "version": "0.1", "mode": "run-custom-build", "duration": 50.5},
  {"i": 1, "name": "aws-lc-sys", "version": "0.1", "mode": "todo", "duration": 10.0},
  {"i": 2, "name": "xtask", "version": "0.1.0", "mode": "todo", "duration": 20.0},
  {"i": 3, "name": "serde", "version": "1", "mode": "todo", "duration": 4.25}
];
const CONCURRENCY_DATA = [];
</script>"#;
        assert_eq!(
            crate_times(html),
            [
                ("aws-lc-sys".to_owned(), 60.5),
                ("xtask".to_owned(), 20.0),
                ("serde".to_owned(), 4.25)
            ]
        );
        assert!(crate_times("<html>no data</html>").is_empty());
        assert!(is_workspace_crate("flink-eks-irsa") && is_workspace_crate("xtask"));
        assert!(!is_workspace_crate("kube"));
    }
}

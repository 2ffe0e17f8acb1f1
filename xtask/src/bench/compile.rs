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
        incremental,
        up_to_date,
    })
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
        cmd.env("CARGO_TARGET_DIR", dir);
    }
    let started = Instant::now();
    let status = cmd.status().context("cannot run cargo build -p xtask")?;
    let seconds = started.elapsed().as_secs_f64();
    if !status.success() {
        bail!("cargo build -p xtask failed ({status})");
    }
    Ok(seconds)
}

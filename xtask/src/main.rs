//! `cargo xtask`: take a PyFlink script to a running job on the Flink Kubernetes Operator.
//!
//! One module per subcommand; the library crates do the work, this binary orders it, prints
//! the plan and the progress, and turns failures into exit codes.

mod config;
mod testenv;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};

use crate::config::{Config, Override};

#[derive(Debug, Parser)]
#[command(name = "cargo xtask", about, version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Options every deployment command shares.
#[derive(Debug, Clone, Args)]
struct Common {
    /// The deployment's configuration file.
    #[arg(long, short = 'c', env = "FLINK_EKS_CONFIG", default_value = "deploy.toml", global = true)]
    config: PathBuf,
    /// Override a configuration key, e.g. `--set job.parallelism=2` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE", global = true)]
    set: Vec<String>,
    /// The kubeconfig context to use instead of the current one.
    #[arg(long, global = true)]
    context: Option<String>,
    /// Print only errors and the final result.
    #[arg(long, short, global = true)]
    quiet: bool,
    /// More detail (repeat for more); `RUST_LOG` takes precedence.
    #[arg(long, short, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Every step in order (image, irsa, upload, manifest, submit), with the plan printed first.
    Deploy {
        #[command(flatten)]
        common: Common,
        /// Compute the plan and render every artifact, with no side effects.
        #[arg(long)]
        dry_run: bool,
        /// Where the rendered artifacts go.
        #[arg(long, default_value = "target/flink-eks")]
        out: PathBuf,
    },
    /// Run the workspace's tests against real services, which this command installs and starts.
    Test {
        /// Start the services, print their environment, and wait, instead of running the tests.
        #[arg(long)]
        services_only: bool,
        /// Passed on to `cargo test` (a test name filter, `-p PACKAGE`, `-- --nocapture`).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        cargo_args: Vec<String>,
    },
}

/// How a run ended, by class, so that pipelines can tell them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    /// The configuration or a flag is invalid; nothing was touched.
    BadInput = 2,
    /// Credentials are missing or refused (AWS, registry, cluster).
    Auth = 3,
    /// A remote service failed or refused a request.
    Remote = 4,
    /// The job was deployed and failed, or did not start in time.
    JobFailed = 5,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Failure::BadInput => "bad input",
            Failure::Auth => "authentication",
            Failure::Remote => "remote failure",
            Failure::JobFailed => "job failed",
        })
    }
}

impl std::error::Error for Failure {}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            let class = err
                .downcast_ref::<Failure>()
                .or_else(|| err.chain().find_map(|e| e.downcast_ref::<Failure>()))
                .copied();
            eprintln!("error: {err:#}");
            ExitCode::from(class.map_or(1, |c| c as u8))
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    let root = workspace_root();
    match cli.command {
        Command::Deploy { common, dry_run, out } => {
            let config = load_config(&common)?;
            if !dry_run {
                anyhow::bail!("only `cargo xtask deploy --dry-run` is available in this build");
            }
            let _ = (config, out, root);
            Ok(())
        }
        Command::Test { services_only, cargo_args } => {
            testenv::run(&root, testenv::TestArgs { cargo_args, services_only })
        }
    }
}

fn load_config(common: &Common) -> Result<Config> {
    let mut overrides = Override::from_env(std::env::vars());
    for flag in &common.set {
        overrides.push(Override::from_flag(flag).context(Failure::BadInput)?);
    }
    Config::load(&common.config, &overrides).context(Failure::BadInput)
}

/// The workspace root: `cargo xtask` runs from anywhere inside it.
fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

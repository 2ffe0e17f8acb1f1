//! `cargo xtask`: take a PyFlink script to a running job on the Flink Kubernetes Operator.
//!
//! One module per concern; the library crates do the work, this binary reads the
//! configuration, orders the steps, prints the plan and the progress, and turns failures into
//! exit codes by class.

mod bench;
mod clients;
mod cluster;
mod config;
mod deploy;
mod inputs;
mod plan;
mod steps;
mod testenv;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::config::{Config, Override};
use crate::deploy::{DeployOptions, Remote};
use crate::inputs::Inputs;
use crate::plan::Step;

#[derive(Debug, Parser)]
#[command(name = "cargo xtask", about, version, propagate_version = true)]
struct Cli {
    #[command(flatten)]
    common: Common,
    #[command(subcommand)]
    command: Command,
}

/// Options every command shares.
#[derive(Debug, Clone, Args)]
struct Common {
    /// The deployment's configuration file.
    #[arg(
        long,
        short = 'c',
        env = "FLINK_EKS_CONFIG",
        default_value = "deploy.toml",
        global = true
    )]
    config: PathBuf,
    /// Override a configuration key, e.g. `--set job.parallelism=2` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE", global = true)]
    set: Vec<String>,
    /// The kubeconfig context to use instead of the current one.
    #[arg(long, global = true)]
    context: Option<String>,
    /// Print only errors and results.
    #[arg(long, short, global = true)]
    quiet: bool,
    /// More detail (`-v` info, `-vv` debug); `RUST_LOG` takes precedence.
    #[arg(long, short, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
}

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub(crate) enum Output {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Every step (image, irsa and upload together, then manifest, then submit), plan first.
    Deploy {
        /// Compute the plan and render every artifact, with no side effects.
        #[arg(long)]
        dry_run: bool,
        /// Where a dry run writes the rendered artifacts.
        #[arg(long, default_value = "target/flink-eks")]
        out: PathBuf,
        /// Steps to leave out (repeatable, or comma-separated).
        #[arg(long, value_enum, value_delimiter = ',')]
        skip: Vec<Step>,
        /// The plan as a table on stderr, or as JSON on stdout.
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
    /// Build the Flink image and push it, unless the registry already holds it.
    Image,
    /// Give the job's service account its IAM role (or check it with `--verify`).
    Irsa {
        /// Only run the three checks (trust policy, attached policy, annotation).
        #[arg(long)]
        verify: bool,
    },
    /// Upload the script to S3, unless the object already carries its SHA-256.
    Upload,
    /// Print the FlinkDeployment YAML, ready for `kubectl apply -f -`.
    Manifest,
    /// Apply the FlinkDeployment and watch it to RUNNING.
    Submit,
    /// The deployment's state and whether the cluster runs the local script.
    Status {
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
    /// The JobManager's log.
    Logs {
        /// Keep printing new lines.
        #[arg(long, short)]
        follow: bool,
        /// Start with the last N lines.
        #[arg(long)]
        tail: Option<i64>,
    },
    /// Delete the FlinkDeployment and wait until it is gone.
    Delete,
    /// Remove what the tool created: the FlinkDeployment, then the IAM role, policy and
    /// annotation that carry its tags, and the script on request. Nothing else.
    Teardown {
        /// Also delete the script from S3.
        #[arg(long)]
        delete_script: bool,
    },
    /// Run the workspace's tests against real services, which this command installs and starts.
    Test {
        /// Start the services, print their environment, and wait, instead of running the tests.
        #[arg(long)]
        services_only: bool,
        /// Passed on to `cargo test` (`-p PACKAGE`, a test name filter, `-- --nocapture`).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        cargo_args: Vec<String>,
    },
    /// Measure deploys against the CLI flow, compile times and memory; write the README table.
    Bench {
        /// How many runs per measurement.
        #[arg(long, default_value_t = 5)]
        runs: usize,
        /// Skip the compile-time measurements (the cold build takes minutes).
        #[arg(long)]
        no_compile: bool,
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

/// Gives a crate's error its failure class, from what the crate says it is.
pub(crate) fn classify(err: impl Into<anyhow::Error>) -> anyhow::Error {
    use flink_eks_image_builder::Error as Image;
    use flink_eks_irsa::Error as Irsa;
    use flink_eks_submit::{SubmitError as Submit, UploadError as Upload};
    let err = err.into();
    let class = if let Some(e) = err.downcast_ref::<Irsa>() {
        match e {
            Irsa::NoCredentials { .. } | Irsa::AccessDenied { .. } => Failure::Auth,
            Irsa::InvalidInput(_)
            | Irsa::NoRegion
            | Irsa::UnsupportedRegion(_)
            | Irsa::ClusterNotFound { .. }
            | Irsa::RoleNotOurs { .. }
            | Irsa::PolicyNotOurs { .. } => Failure::BadInput,
            _ => Failure::Remote,
        }
    } else if let Some(e) = err.downcast_ref::<Image>() {
        match e {
            Image::RegistryUnauthorized { .. }
            | Image::CredentialHelper { .. }
            | Image::CredentialEnv { .. } => Failure::Auth,
            Image::InvalidSpec { .. }
            | Image::ReadConnectorJar { .. }
            | Image::DockerConfig { .. } => Failure::BadInput,
            _ => Failure::Remote,
        }
    } else if let Some(e) = err.downcast_ref::<Submit>() {
        match e {
            Submit::Failed(_) | Submit::Timeout(_) => Failure::JobFailed,
            Submit::Forbidden { .. } => Failure::Auth,
            Submit::NamespaceNotFound { .. } | Submit::Invalid { .. } | Submit::MissingName => {
                Failure::BadInput
            }
            _ => Failure::Remote,
        }
    } else if let Some(e) = err.downcast_ref::<Upload>() {
        match e {
            Upload::AccessDenied { .. } => Failure::Auth,
            Upload::NoSuchBucket { .. } => Failure::BadInput,
            _ => Failure::Remote,
        }
    } else {
        return err;
    };
    err.context(class)
}

/// Progress lines on stderr: one per step with its elapsed time; nothing with `--quiet`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Reporter {
    pub(crate) quiet: bool,
}

impl Reporter {
    pub(crate) fn line(&self, text: &str) {
        if !self.quiet {
            eprintln!("{text}");
        }
    }

    pub(crate) fn step(&self, step: Step, text: &str, elapsed: Option<Duration>) {
        match elapsed {
            Some(elapsed) => self.line(&format!(
                "[{step:<8}] {text} ({:.1}s)",
                elapsed.as_secs_f64()
            )),
            None => self.line(&format!("[{step:<8}] {text}")),
        }
    }
}

/// Prints irsa's progress: each change, each wait for IAM's eventual consistency, warnings.
pub(crate) fn irsa_progress(report: &Reporter, progress: flink_eks_irsa::Progress<'_>) {
    use flink_eks_irsa::Progress;
    match progress {
        Progress::Started(row) => report.step(
            Step::Irsa,
            &format!("{} {} {}", row.action, row.kind, row.name),
            None,
        ),
        Progress::Finished(_) => {}
        Progress::Waiting {
            what,
            attempt,
            attempts,
            delay,
        } => report.step(
            Step::Irsa,
            &format!(
                "waiting for IAM to show {what} (attempt {attempt}/{attempts}, next in {delay:.1?})"
            ),
            None,
        ),
        Progress::Warning(text) => eprintln!("warning: {text}"),
        _ => {}
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(&cli.common);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
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

/// Diagnostics through `tracing`, for `-v` and `RUST_LOG`. What a user needs by default (the
/// plan, progress, warnings) is printed by the commands themselves, so the default shows only
/// errors.
fn init_tracing(common: &Common) {
    use std::io::IsTerminal;
    use tracing_subscriber::EnvFilter;
    let default = match common.verbose {
        0 => "error",
        1 => "info",
        _ => "debug",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .init();
}

async fn run(cli: Cli) -> Result<()> {
    let root = workspace_root();
    let common = cli.common;
    let report = Reporter {
        quiet: common.quiet,
    };
    match cli.command {
        Command::Test {
            services_only,
            cargo_args,
        } => {
            return testenv::run(
                &root,
                testenv::TestArgs {
                    cargo_args,
                    services_only,
                },
            );
        }
        Command::Bench { runs, no_compile } => {
            return bench::run(&root, runs, !no_compile).await;
        }
        _ => {}
    }
    let config = load_config(&common)?;
    let context = common.context.as_deref();
    match cli.command {
        Command::Deploy {
            dry_run,
            out,
            skip,
            output,
        } => {
            let options = DeployOptions {
                dry_run,
                out,
                skip,
                output,
                context: common.context.clone(),
            };
            deploy::deploy(&config, &options, &report).await
        }
        Command::Manifest => {
            let inputs = Inputs::from_config(&config).context(Failure::BadInput)?;
            print!("{}", flink_eks_manifest::to_yaml(&inputs.deployment()?)?);
            Ok(())
        }
        Command::Image => steps::image(&config, &report).await,
        Command::Irsa { verify } => {
            let (inputs, remote) = connect(&config, context).await?;
            steps::irsa(&remote, &inputs, verify, &report).await
        }
        Command::Upload => {
            let (inputs, remote) = connect(&config, context).await?;
            steps::upload(&remote, &inputs, &report).await
        }
        Command::Submit => {
            let (inputs, remote) = connect(&config, context).await?;
            cluster::submit(&remote, &inputs.deployment()?, &inputs, &report).await
        }
        Command::Status { output } => {
            let (inputs, remote) = connect(&config, context).await?;
            cluster::status(&remote, &inputs, output).await
        }
        Command::Logs { follow, tail } => {
            let (inputs, remote) = connect(&config, context).await?;
            cluster::logs(&remote, &inputs, follow, tail).await
        }
        Command::Delete => {
            let (inputs, remote) = connect(&config, context).await?;
            cluster::delete(&remote, &inputs, &report).await
        }
        Command::Teardown { delete_script } => {
            let (inputs, remote) = connect(&config, context).await?;
            steps::teardown(&remote, &inputs, delete_script, &report).await
        }
        Command::Test { .. } | Command::Bench { .. } => Ok(()),
    }
}

async fn connect(config: &Config, context: Option<&str>) -> Result<(Inputs, Remote)> {
    let inputs = Inputs::from_config(config).context(Failure::BadInput)?;
    let remote = Remote::connect(config, context).await?;
    Ok((inputs, remote))
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

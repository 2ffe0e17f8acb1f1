//! `cargo xtask`: take a PyFlink script to a running job on the Flink Kubernetes Operator.
//!
//! The command line over `flink-eks-deploy`: it parses flags, prints the plan and the
//! progress the pipeline reports, and turns failures into exit codes by class. `test` and
//! `bench` are the project's dev tooling, a separate binary (`flink-eks-devtools`) that this
//! one only starts, so the deploy binary carries none of it.

mod render;
mod render_doctor;
mod render_image;
mod run_local;

use std::io::BufRead as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};
use flink_eks_deploy::{
    Config, DeployPlan, Event, Failure, Inputs, Override, Remote, Step, failure_of,
};
use flink_eks_plan::Progress as _;
use futures::StreamExt as _;

use crate::render::Renderer;

/// The exit code of `deploy --plan` when the plan has operations to carry out.
const EXIT_CHANGES_PENDING: u8 = 7;

/// The exit code after SIGINT (Ctrl-C): 128 + the signal's number, as shells report it.
const EXIT_INTERRUPTED: u8 = 130;

/// What a run has carried out so far, for the message printed when it is interrupted.
static PROGRESS: std::sync::Mutex<RunProgress> = std::sync::Mutex::new(RunProgress {
    executing: false,
    finished: Vec::new(),
});

struct RunProgress {
    /// Whether the plan's execution (the first write) has begun.
    executing: bool,
    /// The steps that finished their writes, in order.
    finished: Vec<Step>,
}

fn record(update: impl FnOnce(&mut RunProgress)) {
    if let Ok(mut progress) = PROGRESS.lock() {
        update(&mut progress);
    }
}

/// One line after SIGINT: what was completed, and that running the command again continues
/// from there (the plan is read again from what exists, so nothing is done twice).
fn interrupted_message() -> String {
    let (executing, finished) = PROGRESS
        .lock()
        .map(|p| (p.executing, p.finished.clone()))
        .unwrap_or_default();
    let done = if !executing {
        "interrupted before anything was written".to_owned()
    } else if finished.is_empty() {
        "interrupted: no step had finished (a step in progress may be partly done)".to_owned()
    } else {
        let names: Vec<&str> = finished.iter().map(|s| s.name()).collect();
        format!(
            "interrupted: steps finished: {} (a step in progress may be partly done)",
            names.join(", ")
        )
    };
    format!(
        "{done}; run the same command again: it plans from what exists and continues from there"
    )
}

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
enum Output {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Every step along the step graph (image, rbac, upload and manifest together, then
    /// irsa, then submit), the plan first.
    Deploy {
        /// Compute the plan and render every artifact, reading and writing nothing remote.
        #[arg(long, conflicts_with_all = ["plan", "confirm"])]
        dry_run: bool,
        /// Read the remote state, print the live plan, and write nothing. Exits 0 when
        /// nothing is pending and 7 when operations are.
        #[arg(long, conflicts_with = "confirm")]
        plan: bool,
        /// Print the plan and carry it out only once `yes` is typed on standard input.
        #[arg(long)]
        confirm: bool,
        /// Where a dry run writes the rendered artifacts.
        #[arg(long, default_value = "target/flink-eks")]
        out: PathBuf,
        /// Steps to leave out (repeatable, or comma-separated).
        #[arg(long, value_parser = parse_step, value_delimiter = ',')]
        skip: Vec<Step>,
        /// The plan as a table on stderr, or as JSON on stdout.
        #[arg(long, value_enum, default_value_t)]
        output: Output,
        /// Take over an IAM role, policy or service account another owner or deployment holds
        /// (the same as `[irsa] adopt = true`).
        #[arg(long)]
        adopt: bool,
        /// Start the job from this savepoint (`job.initialSavepointPath`): the operator uses
        /// it for a job without state of its own (a first deployment, or after `delete`).
        #[arg(long, value_name = "PATH")]
        from_savepoint: Option<String>,
        /// With --from-savepoint: let the job start though the savepoint holds state that no
        /// operator of the new job claims.
        #[arg(long, requires = "from_savepoint")]
        allow_non_restored_state: bool,
    },
    /// Take a savepoint of the running job, wait for it, and print its path.
    Savepoint {
        /// The path as a line, or the savepoint as JSON on stdout.
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
    /// Stop the job (`job.state: suspended`; with a savepoint in savepoint mode) and wait
    /// until the operator reports it suspended.
    Suspend,
    /// Start a suspended job again (`job.state: running`) and wait until it runs.
    Resume,
    /// Build the Flink image and push it, unless the registry already holds it.
    Image,
    /// Give the job's service account its IAM role (or check it with `--verify`).
    Irsa {
        /// Only run the checks (OIDC provider, trust policy, attached and permission
        /// policies, annotation or association).
        #[arg(long)]
        verify: bool,
        /// Take over an IAM role, policy or service account another owner or deployment holds
        /// (the same as `[irsa] adopt = true`).
        #[arg(long, conflicts_with = "verify")]
        adopt: bool,
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
    /// Check, reading only, every precondition of a running job: the cluster, the CRD, the
    /// service account and its role, its pods, the IAM documents, the script in S3, the
    /// image in the registry, the nodes' architecture. Exits non-zero when one fails.
    Doctor {
        /// One line per check, or the report as JSON on stdout.
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
    /// Delete the FlinkDeployment and wait until it is gone.
    Delete,
    /// Remove what the tool created: the FlinkDeployment, then the IAM role, policy and
    /// annotation that carry its tags, and the script and the job's state on request. Nothing
    /// else.
    Teardown {
        /// Also delete the script from S3.
        #[arg(long)]
        delete_script: bool,
        /// Take a final savepoint of the running job first (nothing is deleted if it fails).
        #[arg(long)]
        savepoint: bool,
        /// Also delete every object under the job's `[state]` prefix (its checkpoints and
        /// savepoints) once the FlinkDeployment is gone; not with --savepoint.
        #[arg(long)]
        delete_state: bool,
    },
    /// Run the job on this machine first: the same script, arguments, PyFlink version and
    /// flinkConfiguration (minus the cluster's keys), in a local mini-cluster.
    Run {
        /// Run locally (the only mode; the cluster is `deploy`).
        #[arg(long, required = true)]
        local: bool,
        /// An interpreter that has apache-flink, instead of the cached virtual environment.
        #[arg(long, value_name = "PATH", conflicts_with = "image")]
        python: Option<PathBuf>,
        /// Stop an unbounded job after this many seconds (and exit 0 if it had not failed).
        #[arg(long, value_name = "SECS", default_value_t = 30)]
        duration: u64,
        /// Run inside the job's image with Docker: it has Flink's S3 plugin; the local AWS
        /// credentials reach the job as environment variables.
        #[arg(long)]
        image: bool,
        /// The virtual environments (one per Flink release, about 700 MB each) and run files.
        #[arg(long, default_value = "target/flink-eks/local")]
        cache_dir: PathBuf,
    },
    /// Run the workspace's tests against real services, which this command installs and starts
    /// (the `flink-eks-devtools` binary).
    Test {
        /// Passed on to `flink-eks-devtools test`: `--services-only`, then what `cargo test`
        /// takes (`-p PACKAGE`, a test name filter, `-- --nocapture`).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Measure deploys against the CLI flow, compile times and memory; write the README table
    /// (the `flink-eks-devtools` binary).
    Bench {
        /// Passed on to `flink-eks-devtools bench` (`--runs N`, `--no-compile`, …).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

impl Command {
    /// Whether the command may write: an interruption then says what was completed.
    fn writes(&self) -> bool {
        match self {
            Command::Deploy { dry_run, plan, .. } => !dry_run && !plan,
            Command::Image
            | Command::Irsa { verify: false, .. }
            | Command::Upload
            | Command::Submit
            | Command::Delete
            | Command::Savepoint { .. }
            | Command::Suspend
            | Command::Resume
            | Command::Teardown { .. } => true,
            _ => false,
        }
    }
}

fn parse_step(name: &str) -> Result<Step, String> {
    Step::from_name(name).ok_or_else(|| {
        let names: Vec<&str> = Step::ALL.iter().map(|s| s.name()).collect();
        format!("{name:?} is not a step: use {}", names.join(", "))
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(&cli.common);
    if let Command::Test { args } | Command::Bench { args } = &cli.command {
        let sub = if matches!(cli.command, Command::Test { .. }) {
            "test"
        } else {
            "bench"
        };
        return devtools(sub, args);
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let writes = cli.command.writes();
    let outcome = runtime.block_on(async {
        tokio::select! {
            result = run(cli) => Some(result),
            _ = tokio::signal::ctrl_c() => None,
        }
    });
    let Some(result) = outcome else {
        if writes {
            eprintln!("{}", interrupted_message());
        }
        // The prompt's read of standard input may still be blocked; it is not waited for.
        runtime.shutdown_background();
        return ExitCode::from(EXIT_INTERRUPTED);
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            eprintln!("error: {err:#}");
            tracing::debug!("{err:?}");
            ExitCode::from(failure_of(&err).map_or(1, Failure::exit_code))
        }
    }
}

/// Runs the dev tooling's own binary, which is not part of this one.
fn devtools(sub: &str, args: &[String]) -> ExitCode {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let status = std::process::Command::new(cargo)
        .args([
            "run",
            "--quiet",
            "--package",
            "flink-eks-devtools",
            "--",
            sub,
        ])
        .args(args)
        .status();
    match status {
        Ok(status) => ExitCode::from(status.code().map_or(1, |c| u8::try_from(c).unwrap_or(1))),
        Err(err) => {
            eprintln!("error: cannot run cargo for flink-eks-devtools: {err}");
            ExitCode::FAILURE
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

/// Runs a command; the exit code on success.
async fn run(cli: Cli) -> Result<u8> {
    let common = cli.common;
    let render = Renderer::new(common.quiet);
    let adopt = matches!(
        cli.command,
        Command::Deploy { adopt: true, .. } | Command::Irsa { adopt: true, .. }
    );
    let config = load_config(&common, adopt)?;
    for warning in config.warnings() {
        render.event(&Event::Warning(warning));
    }
    let inputs = Inputs::from_config(&config).context(Failure::BadInput)?;
    let context = common.context.as_deref();
    let connect = |cluster: bool| Remote::connect(&config, context, cluster);
    match cli.command {
        Command::Deploy {
            dry_run: true,
            out,
            skip,
            output,
            ..
        } => {
            let plan = flink_eks_deploy::dry_plan(&inputs, &skip)?;
            flink_eks_deploy::write_artifacts(&inputs, config.irsa.region.as_deref(), &out)?;
            print_plan(&plan, output);
            render.line(&format!("artifacts written to {}", out.display()));
            Ok(0)
        }
        Command::Deploy {
            plan: plan_only,
            confirm,
            skip,
            output,
            from_savepoint,
            allow_non_restored_state,
            ..
        } => {
            let inputs = inputs.starting_from(from_savepoint, allow_non_restored_state)?;
            let remote = connect(true).await?;
            let plan = flink_eks_deploy::plan(&remote, &inputs, &skip).await?;
            print_plan(&plan, output);
            if let Some(refusal) = plan.refusal() {
                return Err(refusal);
            }
            if plan_only {
                return Ok(if plan.is_noop() {
                    0
                } else {
                    EXIT_CHANGES_PENDING
                });
            }
            if confirm && !plan.is_noop() && !confirmed(plan.pending()).await? {
                bail!("not confirmed: nothing was written");
            }
            if plan.is_noop() {
                render.line("nothing to change: nothing will be written");
            }
            execute(&remote, &inputs, plan, &render).await?;
            Ok(0)
        }
        Command::Manifest => {
            print!("{}", flink_eks_manifest::to_yaml(&inputs.deployment()?)?);
            Ok(0)
        }
        Command::Image => {
            let remote = connect(false).await?;
            single_step(&remote, &inputs, &[Step::Image], &render).await?;
            println!("{}", inputs.image_ref);
            Ok(0)
        }
        Command::Irsa { verify: true, .. } => {
            let remote = connect(true).await?;
            let checks = flink_eks_deploy::verify_irsa(&remote, &inputs).await?;
            print!("{checks}");
            if !checks.is_ok() {
                let names: Vec<String> = checks.mismatches().map(|c| c.kind.to_string()).collect();
                return Err(anyhow::anyhow!("verification failed: {}", names.join(", "))
                    .context(Failure::Remote));
            }
            Ok(0)
        }
        Command::Irsa { verify: false, .. } => {
            let remote = connect(true).await?;
            single_step(&remote, &inputs, &[Step::Irsa], &render).await
        }
        Command::Upload => {
            let remote = connect(false).await?;
            single_step(&remote, &inputs, &[Step::Upload], &render).await
        }
        Command::Submit => {
            let remote = connect(true).await?;
            single_step(&remote, &inputs, &[Step::Manifest, Step::Submit], &render).await
        }
        Command::Status { output } => {
            let remote = connect(true).await?;
            let view = flink_eks_deploy::status(&remote, &inputs).await?;
            let state = flink_eks_deploy::state_info(&remote, &inputs).await?;
            match output {
                Output::Text => {
                    print!("{view}");
                    print!("{}", render::state_lines(&state));
                }
                Output::Json => {
                    let mut json = serde_json::to_value(&view)?;
                    if let Some(object) = json.as_object_mut() {
                        object.insert("snapshots".to_owned(), serde_json::to_value(&state)?);
                    }
                    println!("{}", serde_json::to_string_pretty(&json)?);
                }
            }
            Ok(0)
        }
        Command::Logs { follow, tail } => {
            let remote = connect(true).await?;
            let mut stream = flink_eks_deploy::logs(&remote, &inputs, follow, tail).await?;
            while let Some(line) = stream.next().await {
                println!("{}", line.map_err(flink_eks_deploy::classify)?);
            }
            Ok(0)
        }
        Command::Doctor { output } => {
            let remote = connect(true).await?;
            let report = flink_eks_deploy::doctor::doctor(&remote, &inputs).await?;
            Ok(render_doctor::print(&report, output))
        }
        Command::Delete => {
            let remote = connect(true).await?;
            let deletion = flink_eks_deploy::delete(&remote, &inputs).await?;
            render.step_line(
                Step::Submit,
                &format!(
                    "FlinkDeployment {}/{} {}",
                    inputs.namespace,
                    inputs.name,
                    match deletion {
                        flink_eks_submit::Deletion::Deleted => "deleted",
                        _ => "not found: nothing to delete",
                    }
                ),
            );
            Ok(0)
        }
        Command::Teardown {
            delete_script,
            savepoint,
            delete_state,
        } => {
            let options = flink_eks_deploy::TeardownOptions {
                delete_script,
                final_savepoint: savepoint,
                delete_state,
            };
            // Refused before connecting: nothing is read or touched.
            options.check()?;
            let remote = connect(true).await?;
            flink_eks_deploy::teardown(&remote, &inputs, options, &render).await?;
            Ok(0)
        }
        Command::Savepoint { output } => {
            let remote = connect(true).await?;
            let taken = flink_eks_deploy::savepoint(&remote, &inputs).await?;
            match output {
                Output::Text => println!("{}", taken.path),
                Output::Json => println!("{}", serde_json::to_string_pretty(&taken)?),
            }
            Ok(0)
        }
        Command::Suspend => {
            let remote = connect(true).await?;
            let taken = flink_eks_deploy::suspend(&remote, &inputs).await?;
            let how = taken.map_or_else(
                || "without a savepoint".to_owned(),
                |path| format!("with savepoint {path}"),
            );
            render.step_line(
                Step::Submit,
                &format!(
                    "FlinkDeployment {}/{} suspended {how}",
                    inputs.namespace, inputs.name
                ),
            );
            Ok(0)
        }
        Command::Resume => {
            let remote = connect(true).await?;
            let restored = flink_eks_deploy::resume(&remote, &inputs, &render).await?;
            let from = restored.map_or_else(
                || "without a savepoint".to_owned(),
                |path| format!("restored from savepoint {path}"),
            );
            render.step_line(
                Step::Submit,
                &format!(
                    "FlinkDeployment {}/{} RUNNING, {from}",
                    inputs.namespace, inputs.name
                ),
            );
            Ok(0)
        }
        Command::Run {
            local: _,
            python,
            duration,
            image,
            cache_dir,
        } => {
            let options = flink_eks_deploy::LocalOptions {
                python,
                duration: std::time::Duration::from_secs(duration),
                image,
                cache_dir,
            };
            run_local::run(&config, &inputs, &options, common.quiet).await
        }
        Command::Test { .. } | Command::Bench { .. } => Ok(0),
    }
}

/// One step (or a few), planned and carried out as `deploy` would, the rest left out.
async fn single_step(
    remote: &Remote,
    inputs: &Inputs,
    only: &[Step],
    render: &Renderer,
) -> Result<u8> {
    let skip: Vec<Step> = Step::ALL
        .into_iter()
        .filter(|s| !only.contains(s))
        .collect();
    let plan = flink_eks_deploy::plan(remote, inputs, &skip).await?;
    if !render.quiet {
        eprint!("{plan}");
    }
    execute(remote, inputs, plan, render).await?;
    Ok(0)
}

/// Carries out the plan, noting which steps finished for the message after an interruption.
async fn execute(
    remote: &Remote,
    inputs: &Inputs,
    plan: DeployPlan,
    render: &Renderer,
) -> Result<()> {
    use flink_eks_plan::Progress as _;
    record(|p| p.executing = true);
    let progress = |event: &flink_eks_deploy::Event| {
        if let flink_eks_deploy::Event::StepFinished { step, .. } = event {
            record(|p| p.finished.push(*step));
        }
        render.event(event);
    };
    flink_eks_deploy::execute(remote, inputs, plan, &progress).await
}

fn print_plan(plan: &DeployPlan, output: Output) {
    match output {
        Output::Text => eprint!("{plan}"),
        Output::Json => println!("{}", plan.to_json()),
    }
}

/// Asks on stderr, reads a line on stdin: `yes` carries the plan out. The read runs off the
/// async threads, so that Ctrl-C at the prompt is still seen.
async fn confirmed(pending: usize) -> Result<bool> {
    eprint!("Carry out these {pending} operations? Only 'yes' is accepted: ");
    let answer = tokio::task::spawn_blocking(|| {
        let mut answer = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut answer)
            .map(|_| answer)
    })
    .await
    .context("the prompt's reader stopped")?
    .context("cannot read the answer from standard input")?;
    Ok(answer.trim() == "yes")
}

fn load_config(common: &Common, adopt: bool) -> Result<Config> {
    let mut overrides = Override::from_env(std::env::vars());
    for flag in &common.set {
        overrides.push(Override::from_flag(flag).context(Failure::BadInput)?);
    }
    if adopt {
        overrides.push(Override::from_flag("irsa.adopt=true").context(Failure::BadInput)?);
    }
    Config::load(&common.config, &overrides).context(Failure::BadInput)
}

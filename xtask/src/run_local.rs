//! `cargo xtask run --local`: the job on this machine, its output as it comes, and one line
//! saying how it ended.

use std::io::Write as _;

use anyhow::Result;
use flink_eks_deploy::{Config, Inputs, LocalOptions};
use flink_eks_local::{Event, Stream};

/// Runs the job, printing its standard output on stdout and everything else on stderr.
pub(crate) async fn run(
    config: &Config,
    inputs: &Inputs,
    options: &LocalOptions,
    quiet: bool,
) -> Result<u8> {
    let progress = |event: &Event| render(event, quiet);
    let outcome = flink_eks_deploy::run_local(config, inputs, options, &progress).await?;
    let seconds = outcome.elapsed.as_secs_f64();
    let lines = outcome.stdout_lines;
    if outcome.stopped {
        eprintln!(
            "ran {seconds:.0} s without error (stopped after --duration); {lines} lines printed on stdout"
        );
    } else {
        eprintln!("finished in {seconds:.1} s without error; {lines} lines printed on stdout");
    }
    Ok(0)
}

fn render(event: &Event, quiet: bool) {
    match event {
        Event::Output {
            stream: Stream::Stdout,
            line,
        } => {
            let mut stdout = std::io::stdout().lock();
            let _ = writeln!(stdout, "{line}");
            let _ = stdout.flush();
        }
        Event::Output {
            stream: Stream::Stderr,
            line,
        } => eprintln!("{line}"),
        _ if quiet => {}
        Event::Java { version } => eprintln!("[local] java: {version}"),
        Event::Installing { venv, requirement } => eprintln!(
            "[local] installing {requirement} into {} (once per Flink release: about 500 MB to download, 700 MB on disk)",
            venv.display()
        ),
        Event::Reusing { venv } => eprintln!("[local] using {}", venv.display()),
        Event::PyFlink { python, version } => {
            eprintln!("[local] PyFlink {version} ({})", python.display())
        }
        Event::VersionMismatch { found, wanted } => eprintln!(
            "warning: the interpreter has PyFlink {found}; the deployment runs Flink {wanted}"
        ),
        Event::Dropped { key, reason } => eprintln!("[local] left out {key}: {reason}"),
        Event::Started { command } => eprintln!("[local] running {command}"),
        Event::Credentials { variables } => eprintln!(
            "[local] AWS credentials passed to the container as {}",
            variables.join(", ")
        ),
        Event::NoCredentials { reason } => {
            eprintln!(
                "warning: no AWS credentials for the container ({reason}); the job runs without them"
            )
        }
        _ => {}
    }
}

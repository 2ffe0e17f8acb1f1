//! `flink-eks-devtools`: the project's own tooling, kept out of the deploy binary.
//!
//! `cargo xtask test` and `cargo xtask bench` forward here (`cargo run --package
//! flink-eks-devtools -- test …`), so that the binary users deploy with carries neither the
//! test environment nor the benchmark, nor the test-helper crate they use.
//!
//! - `test` ([`testenv`]): installs what the tests need, starts the real services they talk
//!   to, runs every test of the workspace against them, and stops what it started.
//! - `bench` ([`bench`]): starts the same services and measures the deploy binary, as a whole
//!   process, against the manual CLI flow; writes the README's table.

mod bench;
mod crds;
mod testenv;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "flink-eks-devtools", about, version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
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
        /// Also run the deploys with this many milliseconds added to every request to AWS,
        /// the registry and Kubernetes (a proxy of the bench's in front of each).
        #[arg(long, value_name = "MS")]
        rtt: Option<u64>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let root = flink_eks_tests::workspace_root();
    let result = match cli.command {
        Command::Test {
            services_only,
            cargo_args,
        } => testenv::run(
            &root,
            testenv::TestArgs {
                cargo_args,
                services_only,
            },
        ),
        Command::Bench {
            runs,
            no_compile,
            rtt,
        } => tokio::runtime::Runtime::new()
            .map_err(anyhow::Error::from)
            .and_then(|runtime| runtime.block_on(bench::run(&root, runs, !no_compile, rtt))),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn test_args(argv: &[&str]) -> Option<(bool, Vec<String>)> {
        match Cli::try_parse_from(argv).ok()?.command {
            Command::Test {
                services_only,
                cargo_args,
            } => Some((services_only, cargo_args)),
            Command::Bench { .. } => None,
        }
    }

    #[test]
    fn test_takes_the_flags_of_cargo_xtask_test() {
        assert_eq!(
            test_args(&[
                "devtools",
                "test",
                "-p",
                "flink-eks-irsa",
                "--",
                "--nocapture"
            ]),
            Some((
                false,
                ["-p", "flink-eks-irsa", "--", "--nocapture"]
                    .map(String::from)
                    .to_vec()
            ))
        );
        assert_eq!(
            test_args(&["devtools", "test", "--services-only"]),
            Some((true, Vec::new()))
        );
    }

    /// `cargo xtask test` forwards `test [--services-only] -- ARGS…`: after the `--`, every
    /// argument reaches `cargo test` as it was given, a second `--` and flag-like ones included.
    #[test]
    fn forwarded_arguments_after_a_separator_arrive_unchanged() {
        let given = ["--services-only", "-p", "x", "--", "--nocapture"];
        let mut argv = vec!["devtools", "test", "--services-only", "--"];
        argv.extend(given);
        assert_eq!(
            test_args(&argv),
            Some((true, given.map(String::from).to_vec()))
        );
    }

    #[test]
    fn bench_takes_runs_and_no_compile() {
        let cli = Cli::try_parse_from(["devtools", "bench", "--runs", "3", "--no-compile"]);
        assert!(matches!(
            cli.map(|c| c.command),
            Ok(Command::Bench {
                runs: 3,
                no_compile: true,
                rtt: None
            })
        ));
        let cli = Cli::try_parse_from(["devtools", "bench"]);
        assert!(matches!(
            cli.map(|c| c.command),
            Ok(Command::Bench {
                runs: 5,
                no_compile: false,
                rtt: None
            })
        ));
        let cli = Cli::try_parse_from(["devtools", "bench", "--rtt", "40"]);
        assert!(matches!(
            cli.map(|c| c.command),
            Ok(Command::Bench { rtt: Some(40), .. })
        ));
    }
}

//! The `ensure` example run as a process, the way a user runs a tool: credentials from the
//! environment, the whole stdout and stderr searched for the password, and the exit code and
//! single error line without a daemon.

mod common;

use std::path::PathBuf;
use std::process::{Command, Output};

use common::{service, unique};

/// `target/debug/examples/ensure`, which `cargo test` builds with the tests.
fn example() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(|deps| deps.parent()).unwrap();
    let path = profile_dir.join("examples").join("ensure");
    assert!(
        path.exists(),
        "{} is missing: run the whole package's tests (cargo test -p flink-eks-image-builder, or `cargo xtask test`), which build the examples",
        path.display()
    );
    path
}

fn run(args: &[&str], env: &[(&str, &str)]) -> (Output, String, String) {
    let config_dir = tempfile::tempdir().unwrap();
    let mut command = Command::new(example());
    command
        .args(args)
        .env_remove("FLINK_EKS_REGISTRY_USERNAME")
        .env_remove("FLINK_EKS_REGISTRY_PASSWORD")
        // An empty Docker config: only what the test gives counts.
        .env("DOCKER_CONFIG", config_dir.path());
    for (key, value) in env {
        command.env(key, value);
    }
    let output = command.output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    eprintln!("--- stdout\n{stdout}--- stderr\n{stderr}---");
    (output, stdout, stderr)
}

#[test]
fn pushes_with_credentials_from_the_environment_and_prints_no_secret() {
    let registry = service("FLINK_EKS_TEST_AUTH_REGISTRY");
    let user = service("FLINK_EKS_TEST_AUTH_REGISTRY_USER");
    let password = service("FLINK_EKS_TEST_AUTH_REGISTRY_PASSWORD");
    let jar_dir = tempfile::tempdir().unwrap();
    let jar = jar_dir.path().join("env-connector.jar");
    std::fs::write(&jar, unique("PK env jar")).unwrap();
    let repository = format!("{registry}/flink-eks-it/env");
    let base = service("FLINK_EKS_TEST_BASE_IMAGE");
    let args = [
        repository.as_str(),
        base.as_str(),
        "--jar",
        jar.to_str().unwrap(),
    ];
    let env = [
        ("FLINK_EKS_REGISTRY_USERNAME", user.as_str()),
        ("FLINK_EKS_REGISTRY_PASSWORD", password.as_str()),
        ("RUST_LOG", "trace"),
    ];

    // The secret as sent: plain, and in a Basic header.
    let basic = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    };
    let leaks = |text: &str| text.contains(&password) || text.contains(&basic);

    // With every log on (bollard, reqwest, hyper, the AWS SDK at trace level).
    let (output, stdout, stderr) = run(&args, &env);
    assert!(output.status.success());
    assert!(
        stdout.starts_with(&format!("{repository}:sha256-")),
        "{stdout}"
    );
    assert!(
        stderr.contains("Step 1/") && stderr.contains("pushed "),
        "{stderr}"
    );
    assert!(stderr.contains("TRACE"), "the logs were on");
    assert!(!leaks(&stdout) && !leaks(&stderr));

    let (output, stdout_again, stderr) = run(&args, &env);
    assert!(output.status.success());
    assert_eq!(stdout_again, stdout);
    assert!(
        stderr.contains("is already in the registry: nothing to build or push"),
        "{stderr}"
    );
    assert!(stderr.contains("plan: no change image "), "{stderr}");
    assert!(!stderr.contains("Step 1/"), "{stderr}");
    assert!(!leaks(&stderr));
}

#[test]
fn without_a_daemon_one_line_says_how_to_start_one_and_the_exit_code_is_not_zero() {
    let registry = service("FLINK_EKS_TEST_REGISTRY");
    let repository = format!("{registry}/flink-eks-it/nodaemon");
    let (output, stdout, stderr) = run(
        &[repository.as_str()],
        &[("DOCKER_HOST", "unix:///nonexistent/flink-eks/docker.sock")],
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(stdout.is_empty());
    // The plan, read from the registry with no daemon, then the error on one line.
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{stderr}");
    assert!(
        lines[0].starts_with(&format!("plan: create image {repository}:sha256-")),
        "{stderr}"
    );
    assert!(
        lines[1]
            .starts_with("error: no Docker daemon at unix:///nonexistent/flink-eks/docker.sock"),
        "{stderr}"
    );
    assert!(lines[1].contains("start one"), "{stderr}");
}

#[test]
fn half_set_environment_credentials_are_named() {
    let (output, _, stderr) = run(
        &["127.0.0.1:1/flink-eks-it/half"],
        &[("FLINK_EKS_REGISTRY_USERNAME", "someone")],
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr.contains("FLINK_EKS_REGISTRY_PASSWORD"), "{stderr}");
    assert!(stderr.contains("set both or neither"), "{stderr}");
}

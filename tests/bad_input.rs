//! Bad input, run as a user runs it: the real `xtask` binary against the AWS emulator, the
//! registry and the Kubernetes stand-in. Each case must exit with its code, name its key on
//! one `error:` line, and write nothing. The cases are the table in `tests/README.md`.

use std::time::Duration;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_s3::config::{Credentials, SharedCredentialsProvider};
use flink_eks_tests::{Sandbox, Services, XtaskRun};

const README: &str = include_str!("README.md");

/// One row of the table: how the valid configuration is changed, and what must come out.
#[derive(Debug)]
struct Case {
    input: String,
    exit: i32,
    names: Vec<String>,
}

/// The rows between the table's markers in the README.
fn cases() -> Vec<Case> {
    let table = README
        .split("<!-- bad-input-cases: begin -->")
        .nth(1)
        .and_then(|rest| rest.split("<!-- bad-input-cases: end -->").next())
        .expect("tests/README.md has the bad-input table between its markers");
    let ticked = |cell: &str| -> Vec<String> {
        cell.split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_owned)
            .collect()
    };
    table
        .lines()
        .filter(|l| l.starts_with("| `"))
        .map(|line| {
            let cells: Vec<&str> = line.trim_matches('|').split(" | ").collect();
            assert_eq!(cells.len(), 3, "a row has Input, Exit, Names: {line}");
            Case {
                input: cells[0].trim().trim_matches('`').to_owned(),
                exit: cells[1].trim().parse().expect("the exit code is a number"),
                names: ticked(cells[2]),
            }
        })
        .collect()
}

#[test]
fn the_table_is_counted_and_every_row_is_read() {
    let cases = cases();
    let count = format!("\n{} cases.\n", cases.len());
    assert!(
        README.contains(&count),
        "tests/README.md states the table's count ({} rows)",
        cases.len()
    );
    assert!(cases.len() >= 20, "{cases:#?}");
    for case in &cases {
        assert!(!case.names.is_empty(), "{case:?} names nothing");
    }
}

/// What a refused run must show: its code, every name, one error line with the class at
/// most once and no Debug output.
fn assert_refused(run: &XtaskRun, exit: i32, names: &[String], what: &str) {
    assert_eq!(run.code, Some(exit), "{what}: exit code\n{run}");
    let errors = run.error_lines();
    assert_eq!(errors.len(), 1, "{what}: one error line\n{run}");
    // The error, with the lines a blocked plan lists under it.
    let line = run
        .stderr
        .split_once(errors[0])
        .map(|(_, rest)| format!("{}{rest}", errors[0]))
        .unwrap_or_default();
    let line = line.as_str();
    for name in names {
        assert!(
            line.contains(name.as_str()),
            "{what}: names {name:?}\n{run}"
        );
    }
    for class in ["bad input", "authentication", "remote failure"] {
        assert!(
            line.matches(class).count() <= 1,
            "{what}: the class {class:?} is attached once\n{run}"
        );
    }
    for debug in [
        "DispatchFailure(",
        "ConnectorError",
        "Status {",
        "Error {",
        "Some(",
    ] {
        assert!(
            !line.contains(debug),
            "{what}: no Debug output ({debug})\n{run}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_input_exits_naming_its_key_and_writes_nothing() {
    let services = Services::from_env();
    let standin = standin(kube_standin::Config::default()).await;
    let sandbox = Sandbox::new(&services, &standin.kubeconfig_yaml()).unwrap();
    let valid = sandbox.config_text();
    let script = std::fs::read(&sandbox.script).unwrap();
    let mut failures = Vec::new();
    for case in cases() {
        let mut text = valid.clone();
        let mut args = vec!["deploy".to_owned()];
        let mut env = Vec::new();
        std::fs::write(&sandbox.script, &script).unwrap();
        if let Some(flag) = case.input.strip_prefix("--set ") {
            args.extend(["--set".to_owned(), flag.to_owned()]);
        } else if let Some(var) = case.input.strip_prefix("env ") {
            let (k, v) = var.split_once('=').expect("env K=V");
            env.push((k.to_owned(), v.to_owned()));
        } else if let Some(line) = case.input.strip_prefix("after [job]: ") {
            text = text.replacen("[job]\n", &format!("[job]\n{line}\n"), 1);
        } else if let Some(more) = case.input.strip_prefix("append: ") {
            text.push_str(&format!("{more}\n"));
        } else if let Some(content) = case.input.strip_prefix("script:") {
            let content = content.strip_prefix(' ').unwrap_or(content);
            std::fs::write(&sandbox.script, content.replace("\\n", "\n")).unwrap();
        } else {
            panic!("tests/README.md: unknown input form {:?}", case.input);
        }
        sandbox.write_config(&text).unwrap();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let xtask = sandbox.xtask(&env).unwrap();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (run, writes) = sandbox
            .counted(|| standin.stats().writes, xtask.run(&args))
            .await
            .unwrap();
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            assert_refused(&run, case.exit, &case.names, &case.input);
            assert!(writes.is_none(), "{}: wrote {writes}\n{run}", case.input);
        }));
        if outcome.is_err() {
            failures.push(case.input.clone());
        }
    }
    assert!(failures.is_empty(), "cases that failed: {failures:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_cause_gives_one_exit_code_from_every_command() {
    let services = Services::from_env();
    let standin = standin(kube_standin::Config::default()).await;
    let sandbox = Sandbox::new(&services, &standin.kubeconfig_yaml()).unwrap();
    let kube_writes = || standin.stats().writes;

    // The cluster named by irsa.cluster does not exist in the region.
    for args in [&["deploy"][..], &["irsa"], &["irsa", "--verify"]] {
        let xtask = sandbox.xtask(&[]).unwrap();
        let (run, writes) = sandbox.counted(kube_writes, xtask.run(args)).await.unwrap();
        let names = [sandbox.name.clone(), "not found".to_owned()];
        assert_refused(&run, 2, &names, &format!("unknown cluster, {args:?}"));
        assert!(writes.is_none(), "{args:?}: {writes}\n{run}");
    }

    // No AWS credentials anywhere.
    for args in [&["deploy"][..], &["irsa"], &["upload"]] {
        let xtask =
            flink_eks_tests::Xtask::new(&sandbox.config, sandbox.env_without_aws_credentials())
                .unwrap();
        let (run, writes) = sandbox.counted(kube_writes, xtask.run(args)).await.unwrap();
        let names = ["credentials".to_owned()];
        assert_refused(&run, 3, &names, &format!("no credentials, {args:?}"));
        assert!(writes.is_none(), "{args:?}: {writes}\n{run}");
    }

    // Nothing answers at the AWS endpoint.
    for args in [&["deploy"][..], &["irsa"], &["upload"]] {
        let xtask = sandbox
            .xtask(&[("AWS_ENDPOINT_URL", "http://127.0.0.1:9")])
            .unwrap();
        let (run, writes) = sandbox.counted(kube_writes, xtask.run(args)).await.unwrap();
        let names = ["cannot reach the".to_owned()];
        assert_refused(&run, 4, &names, &format!("unreachable AWS, {args:?}"));
        assert!(writes.is_none(), "{args:?}: {writes}\n{run}");
    }

    // The bucket does not exist: the upload is refused whichever command makes it.
    for args in [&["upload"][..], &["deploy", "--skip", "image,irsa"]] {
        let xtask = sandbox.xtask(&[]).unwrap();
        let (run, writes) = sandbox.counted(kube_writes, xtask.run(args)).await.unwrap();
        let names = [sandbox.bucket.clone()];
        assert_refused(&run, 2, &names, &format!("missing bucket, {args:?}"));
        assert!(writes.aws.is_empty(), "{args:?}: {writes}\n{run}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_namespace_gives_one_exit_code_from_every_command() {
    let services = Services::from_env();
    let standin = standin(kube_standin::Config::default()).await;
    let sandbox = Sandbox::new(&services, &standin.kubeconfig_yaml()).unwrap();
    let aws = Aws::new(&services);
    aws.create_cluster_and_bucket(&sandbox).await;
    // A whole deploy creates a missing namespace in its rbac step (tests/rbac.rs); without
    // that step, nothing creates it.
    for args in [
        &["deploy", "--skip", "image,rbac"][..],
        &["irsa"],
        &["submit"],
    ] {
        let mut args = args.to_vec();
        args.extend(["--set", "job.namespace=no-such-namespace"]);
        let xtask = sandbox.xtask(&[]).unwrap();
        let (run, writes) = sandbox
            .counted(|| standin.stats().writes, xtask.run(&args))
            .await
            .unwrap();
        let names = ["no-such-namespace".to_owned()];
        assert_refused(&run, 2, &names, &format!("missing namespace, {args:?}"));
        assert!(writes.is_none(), "{args:?}: {writes}\n{run}");
    }
    aws.delete_cluster_and_bucket(&sandbox).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_at_the_prompt_exits_130_having_written_nothing() {
    let services = Services::from_env();
    let standin = standin(kube_standin::Config::default()).await;
    let sandbox = Sandbox::new(&services, &standin.kubeconfig_yaml()).unwrap();
    let aws = Aws::new(&services);
    aws.create_cluster_and_bucket(&sandbox).await;

    let xtask = sandbox.xtask(&[]).unwrap();
    let (run, writes) = sandbox
        .counted(|| standin.stats().writes, async {
            let mut run = xtask.spawn(&["deploy", "--confirm", "--skip", "image"])?;
            run.wait_for("Only 'yes' is accepted", Duration::from_secs(60))
                .await?;
            run.interrupt().await
        })
        .await
        .unwrap();
    assert_eq!(run.code, Some(130), "{run}");
    assert!(
        run.stderr
            .contains("interrupted before anything was written")
            && run.stderr.contains("run the same command again"),
        "{run}"
    );
    assert!(writes.is_none(), "{writes}\n{run}");
    aws.delete_cluster_and_bucket(&sandbox).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_while_waiting_for_the_operator_names_the_finished_steps() {
    let services = Services::from_env();
    // An operator this slow keeps the submit step waiting until the test interrupts it.
    let standin = standin(kube_standin::Config {
        transition_delay: Duration::from_secs(120),
        ..kube_standin::Config::default()
    })
    .await;
    let sandbox = Sandbox::new(&services, &standin.kubeconfig_yaml()).unwrap();
    let aws = Aws::new(&services);
    aws.create_cluster_and_bucket(&sandbox).await;

    let xtask = sandbox.xtask(&[]).unwrap();
    let mut run = xtask.spawn(&["deploy", "--skip", "image"]).unwrap();
    let printed = run
        .wait_for("[submit", Duration::from_secs(120))
        .await
        .unwrap();
    let run = run.interrupt().await.unwrap();
    assert_eq!(run.code, Some(130), "{printed}\n{run}");
    let line = run
        .stderr
        .lines()
        .find(|l| l.starts_with("interrupted"))
        .unwrap_or_else(|| panic!("an 'interrupted' line\n{run}"));
    assert!(
        line.contains("steps finished: ")
            && line.contains("irsa")
            && line.contains("upload")
            && !line.contains("submit")
            && line.contains("run the same command again"),
        "{run}"
    );
    aws.delete_cluster_and_bucket(&sandbox).await;
}

async fn standin(config: kube_standin::Config) -> kube_standin::StandIn {
    kube_standin::StandIn::start(config)
        .await
        .expect("the Kubernetes stand-in starts (is the CRD there? see FLINK_EKS_CRD)")
}

/// The test's own AWS clients, signing with a key of their own (not the sandbox's).
struct Aws {
    eks: aws_sdk_eks::Client,
    s3: aws_sdk_s3::Client,
}

impl Aws {
    fn new(services: &Services) -> Aws {
        let config = SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .endpoint_url(&services.aws_endpoint)
            .region(Region::new("us-east-1"))
            .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
                "AKIABADINPUTCHECKS",
                "bad-input-checks",
                None,
                None,
                "bad-input-test",
            )))
            .build();
        Aws {
            eks: aws_sdk_eks::Client::new(&config),
            s3: aws_sdk_s3::Client::from_conf(
                aws_sdk_s3::config::Builder::from(&config)
                    .force_path_style(true)
                    .build(),
            ),
        }
    }

    async fn create_cluster_and_bucket(&self, sandbox: &Sandbox) {
        self.eks
            .create_cluster()
            .name(&sandbox.name)
            .role_arn("arn:aws:iam::123456789012:role/eks-cluster")
            .resources_vpc_config(
                aws_sdk_eks::types::VpcConfigRequest::builder()
                    .subnet_ids("subnet-12345678")
                    .build(),
            )
            .send()
            .await
            .expect("moto creates the EKS cluster");
        self.s3
            .create_bucket()
            .bucket(&sandbox.bucket)
            .send()
            .await
            .expect("moto creates the bucket");
    }

    async fn delete_cluster_and_bucket(&self, sandbox: &Sandbox) {
        let objects = self
            .s3
            .list_objects_v2()
            .bucket(&sandbox.bucket)
            .send()
            .await
            .expect("ListObjectsV2");
        for object in objects.contents() {
            if let Some(key) = object.key() {
                let _ = self
                    .s3
                    .delete_object()
                    .bucket(&sandbox.bucket)
                    .key(key)
                    .send()
                    .await;
            }
        }
        let _ = self.s3.delete_bucket().bucket(&sandbox.bucket).send().await;
        let _ = self.eks.delete_cluster().name(&sandbox.name).send().await;
    }
}

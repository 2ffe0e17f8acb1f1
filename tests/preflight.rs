//! Preflight: every precondition the plan can know is checked in the plan, before any step
//! writes. Each case runs the real `cargo xtask deploy` against the real services and the
//! Kubernetes stand-in, and checks what a user sees (the exit code, the resource and the fix
//! named) and that nothing was written: no write at moto's recorder, the stand-in's counters
//! or the registry's log.

use std::path::PathBuf;

use k8s_openapi::api::core::v1::ServiceAccount;
use kube::api::{Api, Patch, PatchParams};

mod world;
use world::{NAMESPACE, ROLE_ARN_ANNOTATION, SERVICE_ACCOUNT, World};

/// A configuration of `world` with `from` replaced by `to` (which must occur).
fn config_with(world: &World, file: &str, from: &str, to: &str) -> PathBuf {
    let path = world.write_config(file, &world.names.job);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        text.contains(from),
        "{from:?} is not in the configuration:\n{text}"
    );
    std::fs::write(&path, text.replace(from, to)).unwrap();
    path
}

/// The plan's row for `kind`, which must be blocked.
fn blocked_row<'a>(plan: &'a serde_json::Value, kind: &str) -> &'a serde_json::Value {
    plan["rows"]
        .as_array()
        .expect("the plan has rows")
        .iter()
        .find(|r| r["kind"] == kind && r["action"] == "blocked")
        .unwrap_or_else(|| panic!("no blocked {kind} row in the plan: {plan:#}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_bucket_blocks_the_plan_and_nothing_is_written() {
    let world = World::start().await;
    let missing = format!("{}-missing", world.names.bucket);
    let config = config_with(
        &world,
        "deploy-no-bucket.toml",
        &format!("bucket = \"{}\"", world.names.bucket),
        &format!("bucket = \"{missing}\""),
    );
    let xtask = world.xtask(&config);

    let (run, writes) = world
        .counted(xtask.run(&["deploy", "--output", "json"]))
        .await;
    assert_eq!(run.code, Some(2), "a missing bucket is bad input\n{run}");
    assert!(
        run.stderr
            .contains(&format!("bucket {missing} does not exist"))
            && run.stderr.contains("s3.bucket")
            && run.stderr.contains("nothing was written"),
        "the error names the bucket and the fix\n{run}"
    );
    let plan = run.stdout_json().unwrap();
    let row = blocked_row(&plan, "s3-bucket");
    assert_eq!(row["name"], missing.as_str(), "{row:#}");
    assert!(
        row["fix"].as_str().unwrap().contains("aws s3 mb"),
        "{row:#}"
    );
    writes.assert_none("a deploy to a missing bucket");
    assert!(world.account_roles().await.is_empty());

    // `--plan` shows the same row and refuses the same way.
    let (run, writes) = world.counted(xtask.run(&["deploy", "--plan"])).await;
    assert_eq!(run.code, Some(2), "{run}");
    assert!(run.stderr.contains("blocked"), "{run}");
    writes.assert_none("deploy --plan");
    world.clean_up().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_namespace_blocks_the_plan_and_nothing_is_written() {
    let world = World::start().await;
    let namespace = format!("{}-ns", world.names.job);
    let config = config_with(
        &world,
        "deploy-no-namespace.toml",
        &format!("namespace = \"{NAMESPACE}\""),
        &format!("namespace = \"{namespace}\""),
    );
    let xtask = world.xtask(&config);

    // A whole deploy creates the namespace in its rbac step (tests/rbac.rs); without that
    // step, nothing creates it.
    let (run, writes) = world
        .counted(xtask.run(&["deploy", "--skip", "rbac", "--output", "json"]))
        .await;
    assert_eq!(run.code, Some(2), "a missing namespace is bad input\n{run}");
    assert!(
        run.stderr
            .contains(&format!("kubectl create namespace {namespace}"))
            && run.stderr.contains("job.namespace"),
        "the error names the namespace and the fix\n{run}"
    );
    assert_eq!(
        run.stderr.matches("kubectl create namespace").count(),
        1,
        "irsa and submit both find it; it is reported once\n{run}"
    );
    let plan = run.stdout_json().unwrap();
    assert_eq!(blocked_row(&plan, "namespace")["name"], namespace.as_str());
    writes.assert_none("a deploy into a missing namespace");

    // The single step finds it too.
    let (run, writes) = world.counted(xtask.run(&["irsa"])).await;
    assert_eq!(run.code, Some(2), "{run}");
    assert!(run.stderr.contains("job.namespace"), "{run}");
    writes.assert_none("irsa into a missing namespace");
    assert!(world.account_roles().await.is_empty());
    world.clean_up().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_docker_daemon_blocks_a_plan_that_builds_and_nothing_is_written() {
    let world = World::start().await;
    let socket = world.dir.path().join("nobody-serves-this.sock");
    // A socket file left by a daemon that is gone: connecting is refused.
    drop(std::os::unix::net::UnixListener::bind(&socket).unwrap());
    let xtask = world
        .xtask(&world.dir.path().join("deploy.toml"))
        .with_env("DOCKER_HOST", format!("unix://{}", socket.display()));

    let (run, writes) = world
        .counted(xtask.run(&["deploy", "--output", "json"]))
        .await;
    assert_eq!(run.code, Some(2), "no daemon for an image to build\n{run}");
    assert!(
        run.stderr.contains(&socket.display().to_string()) && run.stderr.contains("DOCKER_HOST"),
        "the error names the daemon's address and the fix\n{run}"
    );
    let plan = run.stdout_json().unwrap();
    blocked_row(&plan, "docker-daemon");
    let image = plan["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["kind"] == "image")
        .expect("the image row");
    assert_eq!(image["action"], "create", "the registry lacks it: {plan:#}");
    writes.assert_none("a deploy without a Docker daemon");
    assert!(world.account_roles().await.is_empty());
    assert_eq!(world.s3_object().await, None);
    world.clean_up().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_account_of_another_deployment_is_refused_unless_adopt() {
    let world = World::start().await;
    // Deployment A annotated the shared service account with its role.
    let other_role = format!("{}-a-role", world.names.job);
    let other_arn = format!("arn:aws:iam::{}:role/{other_role}", world.aws.account);
    let accounts: Api<ServiceAccount> = Api::namespaced(world.kube.clone(), NAMESPACE);
    accounts
        .patch(
            SERVICE_ACCOUNT,
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({
                "metadata": {"annotations": {ROLE_ARN_ANNOTATION: other_arn}}
            })),
        )
        .await
        .expect("annotate the service account as deployment A did");

    let (run, writes) = world
        .counted(world.xtask.run(&["deploy", "--output", "json"]))
        .await;
    assert_eq!(run.code, Some(2), "taking it over is refused\n{run}");
    assert!(
        run.stderr.contains(&other_role)
            && run.stderr.contains("--adopt")
            && run.stderr.contains("irsa.service_account"),
        "the error names the other role and the fixes\n{run}"
    );
    let plan = run.stdout_json().unwrap();
    let row = blocked_row(&plan, "service-account");
    assert_eq!(
        row["name"],
        format!("{NAMESPACE}/{SERVICE_ACCOUNT}").as_str()
    );
    writes.assert_none("a deploy refused a taken service account");
    assert_eq!(
        world.role_annotation().await.as_deref(),
        Some(other_arn.as_str())
    );

    // With --adopt it goes through, and the account points at this deployment's role.
    let run = world.xtask.run(&["deploy", "--adopt"]).await.unwrap();
    assert_eq!(run.code, Some(0), "deploy --adopt succeeds\n{run}");
    let ours = format!(
        "arn:aws:iam::{}:role/{}",
        world.aws.account, world.names.role
    );
    assert_eq!(
        world.role_annotation().await.as_deref(),
        Some(ours.as_str())
    );

    // Deployment A's verify explains that the annotation now names another role.
    let a = config_with(
        &world,
        "deploy-a.toml",
        &format!("role_name = \"{}\"", world.names.role),
        &format!("role_name = \"{other_role}\""),
    );
    let run = world.xtask(&a).run(&["irsa", "--verify"]).await.unwrap();
    assert_ne!(run.code, Some(0), "{run}");
    assert!(
        run.stdout
            .contains(&format!("another role, {}", world.names.role)),
        "verify of A names the role the account points at now\n{run}"
    );
    world.clean_up().await;
}

//! What `cargo xtask deploy` does when the Flink Kubernetes Operator says no, run as a user
//! runs it against the real Docker engine, the registry, moto and the Kubernetes stand-in
//! (which installs the operator's Helm chart objects at start: its Deployment 1.15.0 in
//! `default` and the ConfigMap `flink-operator-config`):
//! - an operator that does not watch the namespace blocks the plan: exit 2, nothing written,
//!   the operator and the namespace named;
//! - an operator that is gone (no Deployment, no ConfigMap) leaves the FlinkDeployment
//!   without a status: the no-status window fails the wait naming the likely causes;
//! - a Flink version the operator ignores is refused before anything is touched;
//! - a reconcile error the operator retries is shown as a warning and the deploy succeeds.

use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use serde_json::json;

mod world;
use world::{NAMESPACE, World};

/// Where the stand-in installs the operator, as the chart does with `--namespace default`.
const OPERATOR_NAMESPACE: &str = "default";
const OPERATOR: &str = "flink-kubernetes-operator";
const OPERATOR_CONFIG: &str = "flink-operator-config";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_namespace_the_operator_does_not_watch_blocks_the_plan_and_writes_nothing() {
    let world = World::start().await;
    // `helm upgrade --set 'watchNamespaces={flink-jobs}'`, as the chart renders it.
    let maps: Api<ConfigMap> = Api::namespaced(world.kube.clone(), OPERATOR_NAMESPACE);
    let config = "kubernetes.operator.reconcile.interval: 15 s\n\
                  kubernetes.operator.watched.namespaces: flink-jobs\n";
    maps.patch(
        OPERATOR_CONFIG,
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"config.yaml": config, "flink-conf.yaml": config}})),
    )
    .await
    .expect("the test changes the operator's ConfigMap");

    let started = Instant::now();
    let (run, writes) = world
        .counted(world.xtask.run(&["deploy", "--output", "json"]))
        .await;
    assert_eq!(run.code, Some(2), "a blocked plan exits 2\n{run}");
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "it fails within a minute"
    );
    writes.assert_none("a deploy the operator's namespaces block");
    assert!(world.flink_deployment().await.is_none());
    let operator = format!("{OPERATOR_NAMESPACE}/{OPERATOR}");
    assert!(
        run.stderr.contains(&operator)
            && run.stderr.contains(&format!("not {NAMESPACE}"))
            && run.stderr.contains("flink-jobs")
            && run.stderr.contains("watchNamespaces"),
        "the error names the operator, the watched list, the namespace and the fix\n{run}"
    );
    let plan = run.stdout_json().expect("the plan is printed as JSON");
    let blocked = plan["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["kind"] == "flink-operator" && r["action"] == "blocked")
        .unwrap_or_else(|| panic!("a blocked flink-operator row: {plan:#}"));
    assert_eq!(blocked["name"], operator.as_str(), "{blocked:#}");
    world.clean_up().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_operator_the_no_status_window_fails_naming_the_likely_causes() {
    let world = World::start().await;
    // The operator uninstalled except its CRD (`helm uninstall` keeps CRDs): nothing writes
    // a status, and there is no ConfigMap to read the watched namespaces from.
    let deployments: Api<Deployment> = Api::namespaced(world.kube.clone(), OPERATOR_NAMESPACE);
    deployments
        .delete(OPERATOR, &DeleteParams::default())
        .await
        .expect("the test deletes the operator's Deployment");
    let maps: Api<ConfigMap> = Api::namespaced(world.kube.clone(), OPERATOR_NAMESPACE);
    maps.delete(OPERATOR_CONFIG, &DeleteParams::default())
        .await
        .expect("the test deletes the operator's ConfigMap");

    let started = Instant::now();
    let run = world
        .xtask
        .run(&[
            "deploy",
            "--set",
            "job.no_status_secs=5",
            "--output",
            "json",
        ])
        .await
        .unwrap();
    let waited = started.elapsed();
    assert_eq!(run.code, Some(5), "a job that never started exits 5\n{run}");
    assert!(
        waited < Duration::from_secs(100),
        "the window, not the 120 s timeout, ended the wait ({waited:?})\n{run}"
    );
    assert!(
        run.stderr
            .contains("got no status from the Flink Kubernetes Operator within"),
        "{run}"
    );
    for cause in [
        "the operator is not installed or not running (the plan found no Deployment labelled app.kubernetes.io/name=flink-kubernetes-operator)",
        &format!(
            "the operator does not watch namespace {NAMESPACE} (unknown: no operator Deployment found)"
        ),
        "the operator does not support the Flink version (spec.flinkVersion v1_20",
    ] {
        assert!(
            run.stderr.contains(cause),
            "the message names: {cause}\n{run}"
        );
    }
    // The plan said so before writing, as a warning, not a blocker.
    let plan = run.stdout_json().expect("the plan is printed as JSON");
    let operator = plan["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["kind"] == "flink-operator")
        .unwrap_or_else(|| panic!("a flink-operator row: {plan:#}"));
    assert_eq!(operator["action"], "checked", "{operator:#}");
    assert!(
        operator["detail"]
            .as_str()
            .is_some_and(|d| d.contains("no operator Deployment") && d.contains("warning")),
        "{operator:#}"
    );
    assert!(
        world.flink_deployment().await.is_some(),
        "the apply was made"
    );
    world.clean_up().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flink_version_the_operator_ignores_exits_2_and_writes_nothing() {
    let world = World::start().await;
    let (run, writes) = world
        .counted(
            world
                .xtask
                .run(&["deploy", "--set", "job.flink_version=\"1.14.0\""]),
        )
        .await;
    assert_eq!(run.code, Some(2), "{run}");
    assert!(
        run.stderr.contains("job.flink_version") && run.stderr.contains("UnsupportedFlinkVersion"),
        "the error names the key and what the operator would do\n{run}"
    );
    writes.assert_none("a deploy of Flink 1.14");
    assert!(world.flink_deployment().await.is_none());
    assert!(world.account_roles().await.is_empty());
    assert_eq!(world.s3_object().await, None);
    world.clean_up().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transient_reconcile_error_is_shown_and_does_not_fail_the_deploy() {
    let world = World::start().await;
    // The operator fails two reconciles (status.error and a Warning Event each time) and
    // clears the error once the job is healthy, as `clearErrorsIfDeploymentIsHealthy` does.
    let message = "org.apache.flink.kubernetes.operator.exception.ReconciliationException: \
                   java.net.SocketTimeoutException: timeout";
    world.standin.set_fault(
        NAMESPACE,
        &world.names.job,
        kube_standin::Fault::TransientError {
            message: message.to_owned(),
            reconciles: 2,
        },
    );
    let run = world.xtask.run(&["deploy"]).await.unwrap();
    assert_eq!(
        run.code,
        Some(0),
        "a retried error is not a failure: the deploy waits it out\n{run}"
    );
    assert!(
        run.stderr.contains("SocketTimeoutException") && run.stderr.contains("warning"),
        "the operator's error is shown as a warning while it retries\n{run}"
    );
    assert!(
        run.stderr.contains("RUNNING") && run.stderr.contains("STABLE"),
        "{run}"
    );
    let deployment = world.flink_deployment().await.expect("deployed");
    assert!(
        deployment.data["status"]
            .get("error")
            .is_none_or(|e| e.is_null()),
        "the operator cleared status.error: {:#}",
        deployment.data["status"]
    );
    world.clean_up().await;
}

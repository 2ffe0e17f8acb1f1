//! The cluster's nodes and the scheduler: pods go only to nodes matching their
//! `nodeSelector`; otherwise they stay Pending with the scheduler's message.

mod common;

use common::*;
use k8s_openapi::api::core::v1::{Event, Node, Pod};
use kube::api::{Api, ListParams};
use kube_standin::{Config, StandIn};
use serde_json::json;

async fn start_with(config: Config) -> StandIn {
    match StandIn::start(config).await {
        Ok(s) => s,
        Err(e) => panic!("the stand-in did not start: {e:#}"),
    }
}

fn on_arm64(name: &str) -> serde_json::Value {
    let mut manifest = flink_deployment(name);
    manifest["spec"]["podTemplate"] = json!({"spec": {"nodeSelector": {"kubernetes.io/arch": "arm64", "kubernetes.io/os": "linux"}}});
    manifest
}

async fn jobmanager(client: &kube::Client, app: &str) -> Pod {
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    pods.list(&ListParams::default().labels(&format!("app={app},component=jobmanager")))
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .items
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("no JobManager pod for {app}"))
}

#[tokio::test]
async fn a_pod_for_another_architecture_stays_pending_with_the_schedulers_message() {
    let standin = start().await;
    let client = client(&standin).await;
    let nodes: Api<Node> = Api::all(client.clone());
    let listed = nodes
        .list(&ListParams::default())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let arches: Vec<String> = listed
        .items
        .iter()
        .filter_map(|n| {
            n.metadata
                .labels
                .as_ref()?
                .get("kubernetes.io/arch")
                .cloned()
        })
        .collect();
    assert_eq!(
        arches,
        vec!["amd64", "amd64"],
        "two linux/amd64 nodes by default"
    );

    let flink = flink_api(&client);
    apply(&flink, &on_arm64("arm-job"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let expected = "0/2 nodes are available: 2 node(s) didn't match Pod's node affinity/selector. preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling.";
    let events: Api<Event> = Api::namespaced(client.clone(), "default");
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let failed = loop {
        let found = events
            .list(&ListParams::default().fields("reason=FailedScheduling,involvedObject.kind=Pod"))
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .items;
        if let Some(event) = found.into_iter().next() {
            break event;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no FailedScheduling event"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!(failed.type_.as_deref(), Some("Warning"));
    assert_eq!(failed.message.as_deref(), Some(expected));
    assert_eq!(
        failed.source.as_ref().and_then(|s| s.component.as_deref()),
        Some("default-scheduler")
    );
    let pod = jobmanager(&client, "arm-job").await;
    let status = pod.status.unwrap_or_default();
    assert_eq!(status.phase.as_deref(), Some("Pending"));
    let scheduled = status
        .conditions
        .unwrap_or_default()
        .into_iter()
        .find(|c| c.type_ == "PodScheduled")
        .unwrap_or_else(|| panic!("no PodScheduled condition"));
    assert_eq!(
        (
            scheduled.status.as_str(),
            scheduled.reason.as_deref(),
            scheduled.message.as_deref()
        ),
        ("False", Some("Unschedulable"), Some(expected))
    );
    assert!(pod.spec.and_then(|s| s.node_name).is_none());
    let object = flink.get("arm-job").await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        status_of(&object, &["jobManagerDeploymentStatus"]).as_deref(),
        Some("DEPLOYING")
    );
    assert_eq!(
        status_of(&object, &["jobStatus", "state"]).as_deref(),
        Some("RECONCILING")
    );
}

#[tokio::test]
async fn a_pod_runs_on_a_node_of_its_platform() {
    let standin = start_with(Config {
        nodes: vec!["linux/amd64".into(), "linux/arm64".into()],
        ..Config::default()
    })
    .await;
    let client = client(&standin).await;
    let flink = flink_api(&client);
    apply(&flink, &on_arm64("arm-job"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    wait_for(&flink, "arm-job", "STABLE", |o| {
        status_of(o, &["lifecycleState"]).as_deref() == Some("STABLE")
    })
    .await;
    let node_name = jobmanager(&client, "arm-job")
        .await
        .spec
        .and_then(|s| s.node_name)
        .unwrap_or_else(|| panic!("not bound to a node"));
    let nodes: Api<Node> = Api::all(client.clone());
    let node = nodes
        .get(&node_name)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        node.metadata
            .labels
            .unwrap_or_default()
            .get("kubernetes.io/arch")
            .map(String::as_str),
        Some("arm64")
    );
}

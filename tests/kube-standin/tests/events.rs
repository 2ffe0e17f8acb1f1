//! The operator's Events as the real one records them, read through kube-rs with the field
//! selectors the real server supports; the unsupported-version Event with no status; a
//! transient reconcile error that clears.

mod common;

use std::time::Duration;

use common::*;
use k8s_openapi::api::core::v1::Event;
use kube::api::{Api, ListParams};
use kube_standin::Fault;
use serde_json::json;

async fn events_of(client: &kube::Client, name: &str) -> Vec<Event> {
    let events: Api<Event> = Api::namespaced(client.clone(), "default");
    let selector = format!("involvedObject.name={name},involvedObject.kind=FlinkDeployment");
    events
        .list(&ListParams::default().fields(&selector))
        .await
        .unwrap_or_else(|e| panic!("events not listed: {e}"))
        .items
}

fn reasons(events: &[Event]) -> Vec<String> {
    events.iter().filter_map(|e| e.reason.clone()).collect()
}

#[tokio::test]
async fn the_operator_records_events_selectable_by_involved_object() {
    let standin = start().await;
    let client = client(&standin).await;
    let flink = flink_api(&client);
    apply(&flink, &flink_deployment("evented"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let stable = wait_for(&flink, "evented", "STABLE", |o| {
        status_of(o, &["lifecycleState"]).as_deref() == Some("STABLE")
    })
    .await;
    let uid = stable.metadata.uid.clone().unwrap_or_default();
    apply(&flink, &flink_deployment("other"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    let events = events_of(&client, "evented").await;
    let seen = reasons(&events);
    assert!(seen.contains(&"Submit".to_owned()), "{seen:?}");
    assert!(seen.contains(&"JobStatusChanged".to_owned()), "{seen:?}");
    let submit = events
        .iter()
        .find(|e| e.reason.as_deref() == Some("Submit"))
        .unwrap_or_else(|| panic!("no Submit"));
    let involved = &submit.involved_object;
    assert_eq!(involved.kind.as_deref(), Some("FlinkDeployment"));
    assert_eq!(
        involved.api_version.as_deref(),
        Some("flink.apache.org/v1beta1")
    );
    assert_eq!(involved.uid.as_deref(), Some(uid.as_str()));
    assert_eq!(submit.type_.as_deref(), Some("Normal"));
    assert_eq!(submit.count, Some(1));
    assert_eq!(
        submit.source.as_ref().and_then(|s| s.component.as_deref()),
        Some("JobManagerDeployment")
    );
    let name = submit.metadata.name.clone().unwrap_or_default();
    assert!(name.starts_with("JobManagerDeployment."), "{name}");
    assert!(
        events
            .iter()
            .all(|e| e.involved_object.name.as_deref() == Some("evented")),
        "the selector keeps other deployments' events out"
    );

    // A spec change: SpecChanged.
    let mut changed = flink_deployment("evented");
    changed["spec"]["job"]["parallelism"] = json!(2);
    apply(&flink, &changed)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    wait_for(&flink, "evented", "STABLE at generation 2", |o| {
        status_of(o, &["observedGeneration"]).as_deref() == Some("2")
            && status_of(o, &["lifecycleState"]).as_deref() == Some("STABLE")
    })
    .await;
    assert!(reasons(&events_of(&client, "evented").await).contains(&"SpecChanged".to_owned()));

    // Selectors by uid, type and reason; an unknown field is refused as the real server does.
    let api: Api<Event> = Api::namespaced(client.clone(), "default");
    let by_uid = api
        .list(&ListParams::default().fields(&format!(
            "involvedObject.uid={uid},type=Normal,reason=Submit"
        )))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(by_uid.items.len(), 1);
    let refused = api_error(
        api.list(&ListParams::default().fields("involvedObject.color=red"))
            .await,
    );
    assert_eq!(refused.code, 400);
    assert_eq!(
        refused.message,
        "field label not supported: involvedObject.color"
    );
}

#[tokio::test]
async fn flink_1_14_gets_an_unsupported_version_warning_and_no_status() {
    let standin = start().await;
    let client = client(&standin).await;
    let flink = flink_api(&client);
    let mut manifest = flink_deployment("old-flink");
    manifest["spec"]["flinkVersion"] = json!("v1_14");
    apply(&flink, &manifest)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let warning = loop {
        let events = events_of(&client, "old-flink").await;
        if let Some(e) = events
            .into_iter()
            .find(|e| e.reason.as_deref() == Some("UnsupportedFlinkVersion"))
        {
            break e;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no UnsupportedFlinkVersion event"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(warning.type_.as_deref(), Some("Warning"));
    assert_eq!(
        warning.message.as_deref(),
        Some("Flink version v1_14 is not supported by this operator version")
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let object = flink
        .get("old-flink")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        object.data.get("status").is_none(),
        "no status at all: {:?}",
        object.data
    );
    assert!(object.metadata.finalizers.is_none(), "not even a finalizer");
}

#[tokio::test]
async fn a_transient_reconcile_error_shows_in_status_and_clears_when_healthy() {
    let standin = start().await;
    let client = client(&standin).await;
    standin.set_fault(
        "default",
        "flaky",
        Fault::TransientError {
            message: "Failed to connect to the JobManager REST endpoint".into(),
            reconciles: 2,
        },
    );
    let flink = flink_api(&client);
    apply(&flink, &flink_deployment("flaky"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let stable = wait_for(&flink, "flaky", "STABLE", |o| {
        status_of(o, &["lifecycleState"]).as_deref() == Some("STABLE")
    })
    .await;
    assert_eq!(
        status_of(&stable, &["jobStatus", "state"]).as_deref(),
        Some("RUNNING")
    );
    assert_eq!(status_of(&stable, &["error"]), None, "cleared once healthy");
    let errors: Vec<String> = standin
        .status_changes()
        .iter()
        .filter(|c| c.name == "flaky")
        .filter_map(|c| {
            c.status
                .get("error")
                .and_then(|e| e.as_str())
                .map(str::to_owned)
        })
        .collect();
    let first = errors
        .first()
        .unwrap_or_else(|| panic!("status.error was never written"));
    let parsed: serde_json::Value = serde_json::from_str(first).unwrap_or_default();
    assert_eq!(
        parsed["type"],
        "org.apache.flink.kubernetes.operator.exception.ReconciliationException"
    );
    assert!(
        parsed["message"]
            .as_str()
            .is_some_and(|m| m.contains("Failed to connect to the JobManager REST endpoint")),
        "{parsed}"
    );
    let warning = events_of(&client, "flaky")
        .await
        .into_iter()
        .find(|e| e.reason.as_deref() == Some("Error"))
        .unwrap_or_else(|| panic!("no Warning Error event"));
    assert_eq!(warning.type_.as_deref(), Some("Warning"));
    assert_eq!(warning.count, Some(2), "one event, counted per reconcile");
}

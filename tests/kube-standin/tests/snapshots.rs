//! The operator's state handling as the stand-in plays it: FlinkStateSnapshot resources
//! (validated against the real CRD), savepoint upgrades, suspend and resume,
//! `initialSavepointPath`.

mod common;

use common::*;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, ListParams, PostParams};
use kube_standin::Fault;
use serde_json::{Value, json};

const SAVEPOINT_DIR: &str = "s3://state-bucket/state/demo/savepoints";

fn snapshot_api(client: &kube::Client) -> Api<DynamicObject> {
    let resource = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("flink.apache.org", "v1beta1", "FlinkStateSnapshot"),
        "flinkstatesnapshots",
    );
    Api::namespaced_with(client.clone(), "default", &resource)
}

fn stateful(name: &str) -> Value {
    let mut manifest = flink_deployment(name);
    manifest["spec"]["flinkConfiguration"]["state.savepoints.dir"] = json!(SAVEPOINT_DIR);
    manifest["spec"]["flinkConfiguration"]["state.checkpoints.dir"] =
        json!("s3://state-bucket/state/demo/checkpoints");
    manifest["spec"]["job"]["upgradeMode"] = json!("savepoint");
    manifest
}

fn snapshot(name: &str, job: &str, spec_extra: Value) -> DynamicObject {
    let mut spec = json!({"jobReference": {"kind": "FlinkDeployment", "name": job}, "savepoint": {"disposeOnDelete": false}, "backoffLimit": 0});
    if let (Value::Object(spec), Value::Object(extra)) = (&mut spec, spec_extra) {
        spec.extend(extra);
    }
    serde_json::from_value(json!({
        "apiVersion": "flink.apache.org/v1beta1", "kind": "FlinkStateSnapshot",
        "metadata": {"name": name, "namespace": "default"}, "spec": spec,
    }))
    .unwrap()
}

fn stable_at(generation: i64) -> impl Fn(&DynamicObject) -> bool {
    move |o| {
        status_of(o, &["lifecycleState"]).as_deref() == Some("STABLE")
            && status_of(o, &["jobStatus", "state"]).as_deref() == Some("RUNNING")
            && status_of(o, &["observedGeneration"]) == Some(generation.to_string())
    }
}

#[tokio::test]
async fn a_snapshot_completes_under_the_savepoint_dir_or_fails_with_the_error() {
    let standin = start().await;
    let client = client(&standin).await;
    let (fds, snaps) = (flink_api(&client), snapshot_api(&client));
    apply(&fds, &stateful("sp")).await.unwrap();
    wait_for(&fds, "sp", "stable", stable_at(1)).await;

    snaps
        .create(&PostParams::default(), &snapshot("sp-1", "sp", json!({})))
        .await
        .unwrap();
    let done = wait_for(&snaps, "sp-1", "completed", |o| {
        status_of(o, &["state"]).as_deref() == Some("COMPLETED")
    })
    .await;
    let path = status_of(&done, &["path"]).unwrap();
    assert!(
        path.starts_with(&format!("{SAVEPOINT_DIR}/savepoint-")),
        "{path}"
    );
    let labels = done.metadata.labels.clone().unwrap_or_default();
    assert_eq!(
        labels.get("snapshot.type").map(String::as_str),
        Some("SAVEPOINT")
    );
    assert_eq!(
        labels.get("snapshot.trigger-type").map(String::as_str),
        Some("MANUAL")
    );
    assert_eq!(
        labels.get("job-reference.name").map(String::as_str),
        Some("sp")
    );

    // The real CRD's enum.
    let bad = snapshot("sp-bad", "sp", json!({"savepoint": {"formatType": "ZIP"}}));
    let status = api_error(snaps.create(&PostParams::default(), &bad).await);
    assert_eq!(status.code, 422, "{status:?}");

    standin.set_fault(
        "default",
        "sp",
        Fault::SavepointFailure {
            message: "disk quota exceeded".into(),
        },
    );
    snaps
        .create(&PostParams::default(), &snapshot("sp-2", "sp", json!({})))
        .await
        .unwrap();
    let failed = wait_for(&snaps, "sp-2", "failed", |o| {
        status_of(o, &["state"]).as_deref() == Some("FAILED")
    })
    .await;
    assert_eq!(
        status_of(&failed, &["error"]).as_deref(),
        Some("disk quota exceeded")
    );
    assert_eq!(status_of(&failed, &["failures"]).as_deref(), Some("1"));
}

#[tokio::test]
async fn upgrades_suspends_and_resumes_carry_the_savepoint() {
    let standin = start().await;
    let client = client(&standin).await;
    let (fds, snaps) = (flink_api(&client), snapshot_api(&client));
    let mut manifest = stateful("up");
    apply(&fds, &manifest).await.unwrap();
    wait_for(&fds, "up", "stable", stable_at(1)).await;

    // A spec change in savepoint mode: stop with a savepoint, restore from it.
    manifest["spec"]["job"]["args"] = json!(["-py", "/opt/flink/usrlib/word_count.py", "--v2"]);
    apply(&fds, &manifest).await.unwrap();
    let upgraded = wait_for(&fds, "up", "stable at 2", stable_at(2)).await;
    let path =
        status_of(&upgraded, &["jobStatus", "upgradeSavepointPath"]).expect("upgradeSavepointPath");
    assert!(path.starts_with(SAVEPOINT_DIR), "{path}");
    assert!(
        jobmanager_log(&client, "up")
            .await
            .contains(&format!("from savepoint {path}"))
    );
    let upgrade_snapshots = snaps
        .list(&ListParams::default().labels("snapshot.trigger-type=UPGRADE,job-reference.name=up"))
        .await
        .unwrap();
    assert_eq!(upgrade_snapshots.items.len(), 1);
    assert!(
        upgrade_snapshots.items[0]
            .metadata
            .owner_references
            .is_none()
    );

    // Suspend: savepoint, cluster gone.
    manifest["spec"]["job"]["state"] = json!("suspended");
    apply(&fds, &manifest).await.unwrap();
    let suspended = wait_for(&fds, "up", "suspended", |o| {
        status_of(o, &["lifecycleState"]).as_deref() == Some("SUSPENDED")
    })
    .await;
    assert_eq!(
        status_of(&suspended, &["jobStatus", "state"]).as_deref(),
        Some("FINISHED")
    );
    assert_eq!(
        status_of(&suspended, &["jobManagerDeploymentStatus"]).as_deref(),
        Some("MISSING")
    );
    let suspend_path = status_of(&suspended, &["jobStatus", "upgradeSavepointPath"]).unwrap();
    assert_ne!(suspend_path, path);
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    assert!(
        pods.list(&ListParams::default().labels("app=up"))
            .await
            .unwrap()
            .items
            .is_empty()
    );

    // Resume: from the suspend's savepoint.
    manifest["spec"]["job"]["state"] = json!("running");
    apply(&fds, &manifest).await.unwrap();
    wait_for(&fds, "up", "stable at 4", stable_at(4)).await;
    assert!(
        jobmanager_log(&client, "up")
            .await
            .contains(&format!("from savepoint {suspend_path}"))
    );

    // A failed upgrade savepoint: status.error names it, the job runs on.
    standin.set_fault(
        "default",
        "up",
        Fault::SavepointFailure {
            message: "disk quota exceeded".into(),
        },
    );
    manifest["spec"]["job"]["args"] = json!(["-py", "/opt/flink/usrlib/word_count.py", "--v3"]);
    apply(&fds, &manifest).await.unwrap();
    let refused = wait_for(&fds, "up", "in error", |o| {
        status_of(o, &["error"]).is_some()
    })
    .await;
    assert!(
        status_of(&refused, &["error"])
            .unwrap()
            .contains("disk quota exceeded")
    );
    assert_eq!(
        status_of(&refused, &["jobStatus", "state"]).as_deref(),
        Some("RUNNING")
    );
    assert_eq!(
        status_of(&refused, &["observedGeneration"]).as_deref(),
        Some("4")
    );
}

#[tokio::test]
async fn a_first_deployment_starts_from_its_initial_savepoint() {
    let standin = start().await;
    let client = client(&standin).await;
    let fds = flink_api(&client);
    let mut manifest = stateful("from");
    manifest["spec"]["job"]["initialSavepointPath"] =
        json!("s3://state-bucket/elsewhere/savepoint-abc");
    manifest["spec"]["job"]["allowNonRestoredState"] = json!(true);
    apply(&fds, &manifest).await.unwrap();
    let running = wait_for(&fds, "from", "stable", stable_at(1)).await;
    assert_eq!(
        status_of(&running, &["jobStatus", "upgradeSavepointPath"]).as_deref(),
        Some("s3://state-bucket/elsewhere/savepoint-abc")
    );
    let log = jobmanager_log(&client, "from").await;
    assert!(
        log.contains(
            "from savepoint s3://state-bucket/elsewhere/savepoint-abc (allowing non restored state)"
        ),
        "{log}"
    );
}

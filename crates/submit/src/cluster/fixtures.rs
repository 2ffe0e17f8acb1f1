//! What the unit tests of the cluster modules share: a [`Submitter`] over kube-rs's own mock
//! pattern (`tower_test::mock::pair` + `kube::Client::new`), the objects a real API server
//! returns, and a plan as [`Submitter::plan`] makes it.

#![cfg(test)]

use http::{Request, Response};
use kube::client::Body;
use serde_json::{Value, json};

use super::decide::{compared_values, differences};
use super::*;

pub(super) type Handle = tower_test::mock::Handle<Request<Body>, Response<Body>>;

pub(super) fn mock() -> (Submitter, Handle) {
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    (
        Submitter::new(kube::Client::new(service, "default")),
        handle,
    )
}

pub(super) fn object(rv: u32, generation: i64, status: Value) -> Value {
    json!({
        "apiVersion": "flink.apache.org/v1beta1",
        "kind": "FlinkDeployment",
        "metadata": {"name": "job", "namespace": "default", "uid": "u-1",
                     "generation": generation, "resourceVersion": rv.to_string()},
        "spec": {"image": "flink:1.20"},
        "status": status
    })
}

pub(super) fn status(lifecycle: &str, job: &str, jm: &str, observed: i64) -> Value {
    json!({"lifecycleState": lifecycle, "jobStatus": {"state": job},
           "jobManagerDeploymentStatus": jm, "observedGeneration": observed})
}

/// A plan as [`Submitter::plan`] makes it, against the live object `job` at
/// resourceVersion 7, generation 2, with `state` (none: absent); an update changes the
/// image from `flink:1.20` to `flink:1.21`.
pub(super) fn plan_of(action: Action, state: Option<Value>) -> ApplyPlan {
    let live = state
        .map(|status| serde_json::from_value::<FlinkDeployment>(object(7, 2, status)).unwrap());
    let mut desired: FlinkDeployment = serde_json::from_value(object(1, 1, Value::Null)).unwrap();
    desired.metadata.resource_version = None;
    desired.metadata.uid = None;
    desired.metadata.generation = None;
    if action == Action::Update {
        desired.spec.image = Some("flink:1.21".into());
    }
    let differences = live
        .as_ref()
        .map(|l| differences(&desired, l))
        .unwrap_or_default();
    assert_eq!(differences.is_empty(), action != Action::Update);
    ApplyPlan {
        namespace: "default".into(),
        name: "job".into(),
        action,
        resource_version: live
            .as_ref()
            .and_then(|l| l.metadata.resource_version.clone()),
        uid: live.as_ref().and_then(|l| l.metadata.uid.clone()),
        live_generation: live.as_ref().and_then(|l| l.metadata.generation),
        live_state: live.as_ref().map(ObservedState::of),
        differences,
        compared: live
            .as_ref()
            .map(|l| compared_values(&desired, l))
            .unwrap_or_default(),
        namespace_missing: false,
        unreadable: None,
        operator: None,
        object: desired,
    }
}

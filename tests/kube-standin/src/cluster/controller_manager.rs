//! The parts of kube-controller-manager the stand-in needs: the ReplicaSet controller's
//! creation of the JobManager pod from its Deployment's template (the stand-in has no
//! ReplicaSets: the pod is owned by the Deployment directly), its `FailedCreate` when the
//! pod's service account does not exist, and the Deployment controller's `status`
//! (replicas, `Available`, `ReplicaFailure`), as `kubectl get deploy` and
//! `kubectl logs deploy/<name>` read them.

use serde_json::{Value, json};

use super::flink_cluster::ClusterSpec;
use super::kubelet::{PodState, set_pod_state};
use super::{Stop, emit_event, owner_reference, put};
use crate::Shared;
use crate::apply::Part;
use crate::logs::ContainerRun;
use crate::meta;
use crate::patch::merge_patch;
use crate::resources::{DEPLOYMENTS, PODS, SERVICE_ACCOUNTS};

/// Creates the JobManager pod from the Deployment's template, as the ReplicaSet controller
/// would; `None` when its service account does not exist.
pub(super) fn create_jobmanager_pod(
    shared: &Shared,
    fd: &Value,
    deployment: &Value,
    cluster: &ClusterSpec,
) -> Result<Option<Value>, Stop> {
    let (ns, name) = (meta::namespace(fd), meta::name(fd));
    if shared
        .api
        .get(&SERVICE_ACCOUNTS, ns, &cluster.service_account)
        .is_err()
    {
        let message = format!(
            "pods \"{name}-{}-\" is forbidden: error looking up service account {ns}/{}: serviceaccount \"{}\" not found",
            cluster.template_hash, cluster.service_account, cluster.service_account
        );
        put_deployment_status(
            shared,
            ns,
            name,
            json!({
                "replicas": 0, "unavailableReplicas": 1, "observedGeneration": meta::generation(deployment),
                "conditions": [{"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate", "message": message}],
            }),
        )?;
        emit_event(shared, deployment, "Warning", "FailedCreate", &message);
        return Ok(None);
    }
    let pod_name = format!(
        "{name}-{}-{}",
        cluster.template_hash,
        meta::random_suffix(5)
    );
    let template = meta::get_path(deployment, &["spec", "template"])
        .cloned()
        .unwrap_or_else(|| json!({}));
    let mut labels = template["metadata"]["labels"].clone();
    merge_patch(
        &mut labels,
        &json!({"pod-template-hash": cluster.template_hash}),
    );
    let owner = owner_reference("apps/v1", "Deployment", name, meta::uid(deployment));
    let pod = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": pod_name, "namespace": ns, "labels": labels,
                     "annotations": template["metadata"]["annotations"].clone(), "ownerReferences": [owner]},
        "spec": template["spec"].clone(),
    });
    put(
        shared,
        &PODS,
        ns,
        &pod_name,
        Part::Main,
        "kube-controller-manager",
        pod,
    )?;
    let pod = shared.api.get(&PODS, ns, &pod_name)?;
    for init in meta::container_names(&pod, "initContainers") {
        shared
            .logs
            .set_run(ns, &pod_name, &init, ContainerRun::Running);
    }
    let waiting = if meta::container_names(&pod, "initContainers").is_empty() {
        "ContainerCreating"
    } else {
        "PodInitializing"
    };
    for container in meta::container_names(&pod, "containers") {
        shared.logs.set_run(
            ns,
            &pod_name,
            &container,
            ContainerRun::Waiting(waiting.into()),
        );
    }
    set_pod_state(shared, &pod, PodState::Initializing)?;
    Ok(Some((*pod).clone()))
}

pub(super) fn set_deployment_status(
    shared: &Shared,
    ns: &str,
    name: &str,
    available: bool,
) -> Result<(), Stop> {
    let deployment = shared.api.get(&DEPLOYMENTS, ns, name)?;
    let ready = i64::from(available);
    let now = meta::now_rfc3339();
    put_deployment_status(
        shared,
        ns,
        name,
        json!({
            "observedGeneration": meta::generation(&deployment),
            "replicas": 1,
            "updatedReplicas": 1,
            "readyReplicas": ready,
            "availableReplicas": ready,
            "unavailableReplicas": 1 - ready,
            "conditions": [
                {"type": "Available", "status": if available { "True" } else { "False" }, "reason": if available { "MinimumReplicasAvailable" } else { "MinimumReplicasUnavailable" }, "lastUpdateTime": now, "lastTransitionTime": now},
                {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable", "lastUpdateTime": now, "lastTransitionTime": now},
            ],
        }),
    )
}

/// Writes a Deployment's `status`, as the kube-controller-manager does.
fn put_deployment_status(shared: &Shared, ns: &str, name: &str, status: Value) -> Result<(), Stop> {
    put(
        shared,
        &DEPLOYMENTS,
        ns,
        name,
        Part::Status,
        "kube-controller-manager",
        json!({ "status": status }),
    )
}

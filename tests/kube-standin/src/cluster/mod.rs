//! The cluster's moving parts besides the API server, each in a module named after the real
//! component it plays:
//!
//! - [`flink_operator`]: the Flink Kubernetes Operator, reconciling FlinkDeployments (the
//!   status sequence, its errors, cleanup on deletion), with [`flink_cluster`]: what Flink's
//!   native Kubernetes mode creates for a deployment and what its processes log;
//! - [`controller_manager`]: the Deployment and ReplicaSet controllers of
//!   kube-controller-manager;
//! - [`kubelet`]: pod phases, container states, which containers run (for their logs);
//! - [`pod_identity_webhook`]: the EKS pod identity webhook's mutation of pods;
//! - [`snapshots`]: the FlinkStateSnapshot controller, and the savepoints of upgrades,
//!   suspends and manual triggers.
//!
//! [`run`] drives them from the store as a controller's informer does: on every change it
//! lists FlinkDeployments and starts a reconcile for each new generation, or a cleanup for
//! each deletion, cancelling the one in flight; then the garbage collector sweeps.

mod controller_manager;
mod flink_cluster;
mod flink_operator;
mod job_access;
mod kubelet;
mod pod_identity_webhook;
pub(crate) mod scheduler;
mod snapshots;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::task::JoinHandle;

use crate::Shared;
use crate::api::DeleteOptions;
use crate::apply::Part;
use crate::chart;
use crate::error::ApiError;
use crate::meta;
use crate::patch::merge_patch;
use crate::resources::{EVENTS, FLINK_DEPLOYMENTS, FLINK_STATE_SNAPSHOTS};
use flink_operator::{MANAGER, Target, cleanup, log_outcome, reconcile};

/// The main container of Flink pods.
const MAIN_CONTAINER: &str = "flink-main-container";

/// The operator's reconcile or cleanup in flight for one FlinkDeployment, and what it is for.
struct Task {
    uid: String,
    generation: i64,
    deleting: bool,
    handle: JoinHandle<()>,
}

/// Runs the cluster's controllers until the stand-in shuts down.
pub(crate) async fn run(shared: Arc<Shared>) {
    let mut changes = shared.api.store.subscribe();
    let mut tasks: HashMap<(String, String), Task> = HashMap::new();
    let mut snapshot_tasks: HashMap<(String, String), (String, JoinHandle<()>)> = HashMap::new();
    loop {
        reconcile_snapshots(&shared, &mut snapshot_tasks);
        let deployments = shared.api.store.tx().list(&FLINK_DEPLOYMENTS, None);
        let mut seen = HashSet::new();
        let operator_namespace = shared.config.operator_namespace.as_str();
        let running = chart::operator_running(&shared.api, operator_namespace);
        for fd in deployments {
            let key = (meta::namespace(&fd).to_owned(), meta::name(&fd).to_owned());
            seen.insert(key.clone());
            // No operator, or one that does not watch the namespace: nothing acts on the
            // resource, not even its deletion. The watched namespaces are read from the
            // operator's ConfigMap on every pass.
            if !running || !chart::operator_watches(&shared.api, operator_namespace, &key.0) {
                continue;
            }
            let (uid, generation, deleting) = (
                meta::uid(&fd).to_owned(),
                meta::generation(&fd),
                meta::is_deleting(&fd),
            );
            if tasks.get(&key).is_some_and(|t| {
                t.uid == uid && t.generation == generation && t.deleting == deleting
            }) {
                continue;
            }
            if let Some(old) = tasks.remove(&key) {
                old.handle.abort();
            }
            let target = Target {
                namespace: key.0.clone(),
                name: key.1.clone(),
                uid: uid.clone(),
                generation,
            };
            let unsupported = unsupported_flink_version(&fd);
            let shared = Arc::clone(&shared);
            let handle = if let Some(version) = unsupported.filter(|_| !deleting) {
                // `ValidatorUtils.validateSupportedVersion`: a Warning Event, no status at all.
                emit_event(
                    &shared,
                    &fd,
                    "Warning",
                    "UnsupportedFlinkVersion",
                    &format!("Flink version {version} is not supported by this operator version"),
                );
                tokio::spawn(async {})
            } else if deleting {
                tokio::spawn(async move {
                    log_outcome(&target.clone(), cleanup(&shared, &target).await)
                })
            } else {
                tokio::spawn(async move {
                    log_outcome(&target.clone(), reconcile(&shared, &target).await)
                })
            };
            tasks.insert(
                key,
                Task {
                    uid,
                    generation,
                    deleting,
                    handle,
                },
            );
        }
        tasks.retain(|key, task| {
            let keep = seen.contains(key);
            if !keep {
                task.handle.abort();
            }
            keep
        });
        shared.api.collect_garbage();
        kubelet::forget_logs_of_deleted_pods(&shared);
        tokio::select! {
            changed = changes.changed() => if changed.is_err() { break },
            () = shared.shutdown.cancelled() => break,
        }
    }
    for task in tasks.into_values() {
        task.handle.abort();
    }
    for (_, handle) in snapshot_tasks.into_values() {
        handle.abort();
    }
}

/// Starts the snapshot controller's work on each FlinkStateSnapshot it has not seen (by
/// uid); forgets the deleted ones.
fn reconcile_snapshots(
    shared: &Arc<Shared>,
    tasks: &mut HashMap<(String, String), (String, JoinHandle<()>)>,
) {
    let snapshots = shared.api.store.tx().list(&FLINK_STATE_SNAPSHOTS, None);
    let mut seen = HashSet::new();
    for snapshot in snapshots {
        let key = (
            meta::namespace(&snapshot).to_owned(),
            meta::name(&snapshot).to_owned(),
        );
        let uid = meta::uid(&snapshot).to_owned();
        seen.insert(key.clone());
        if tasks.get(&key).is_some_and(|(known, _)| *known == uid) {
            continue;
        }
        if let Some((_, old)) = tasks.remove(&key) {
            old.abort();
        }
        let (shared, (ns, name), id) = (Arc::clone(shared), key.clone(), uid.clone());
        let handle = tokio::spawn(async move {
            match snapshots::reconcile_snapshot(&shared, &ns, &name, &id).await {
                Ok(()) | Err(Stop::Superseded) => {}
                Err(Stop::Api(e)) if e.code == 404 => {}
                Err(Stop::Api(e)) => {
                    tracing::warn!(%ns, %name, "snapshot controller stopped: {}", e.message)
                }
            }
        });
        tasks.insert(key, (uid, handle));
    }
    tasks.retain(|key, (_, handle)| {
        let keep = seen.contains(key);
        if !keep {
            handle.abort();
        }
        keep
    });
}

/// Why a task stopped early.
#[derive(Debug)]
enum Stop {
    /// A newer generation or a deletion took over.
    Superseded,
    /// A write failed.
    Api(ApiError),
}

impl From<ApiError> for Stop {
    fn from(e: ApiError) -> Stop {
        Stop::Api(e)
    }
}

fn owner_reference(api_version: &str, kind: &str, name: &str, uid: &str) -> Value {
    json!({"apiVersion": api_version, "kind": kind, "name": name, "uid": uid, "controller": true, "blockOwnerDeletion": true})
}

/// The `spec.flinkVersion` the operator refuses to reconcile (`FlinkVersion.isSupported`:
/// v1_15 and newer), if it is one of those.
fn unsupported_flink_version(fd: &Value) -> Option<&str> {
    meta::get_path(fd, &["spec", "flinkVersion"])
        .and_then(Value::as_str)
        .filter(|v| matches!(*v, "v1_13" | "v1_14"))
}

/// The operator's `EventRecorder.Component` that records an event of this reason.
fn event_component(reason: &str) -> &'static str {
    match reason {
        "Submit"
        | "SpecChanged"
        | "Suspended"
        | "Rollback"
        | "RecoverDeployment"
        | "RestartUnhealthyJob"
        | "FailedCreate"
        | "CrashLoopBackOff"
        | "ImagePullBackOff"
        | "ErrImagePull"
        | "Error" => "JobManagerDeployment",
        "JobStatusChanged" | "JobException" => "Job",
        "SavepointError" | "CheckpointError" | "SnapshotError" | "SnapshotAbandoned" => "Snapshot",
        _ => "Operator",
    }
}

/// Java's `String.hashCode` (over UTF-16 code units, wrapping), which the operator's event
/// names are made from.
fn java_hash(text: &str) -> i32 {
    text.encode_utf16().fold(0i32, |h, unit| {
        h.wrapping_mul(31).wrapping_add(i32::from(unit))
    })
}

/// The operator's event name (`EventUtils.generateEventName`): `<Component>.<hash of reason,
/// message, type, kind, name and uid>`, so that the same event again updates one object.
fn operator_event_name(involved: &Value, event_type: &str, reason: &str, message: &str) -> String {
    let kind = involved.get("kind").and_then(Value::as_str).unwrap_or("");
    let key = format!(
        "{reason}{message}{event_type}{kind}{}{}",
        meta::name(involved),
        meta::uid(involved)
    );
    format!(
        "{}.{}",
        event_component(reason),
        java_hash(&key) & 0x7FFF_FFFF
    )
}

/// Records a core/v1 Event about an object. About a FlinkDeployment, as the operator's
/// `EventUtils.createOrUpdateEvent` does: one Event per reason, message and type, whose
/// `count` and `lastTimestamp` grow when it recurs, `source.component` the operator's
/// component, `reportingComponent` empty. About a pod, as the kubelet does.
fn emit_event(shared: &Shared, involved: &Value, event_type: &str, reason: &str, message: &str) {
    let namespace = meta::namespace(involved).to_owned();
    let kind = involved.get("kind").and_then(Value::as_str).unwrap_or("");
    let (name, source, reporting) = if reason == "FailedScheduling" {
        (
            format!("{}.{}", meta::name(involved), meta::random_suffix(16)),
            json!({"component": "default-scheduler"}),
            "default-scheduler",
        )
    } else if kind == "Pod" {
        (
            format!("{}.{}", meta::name(involved), meta::random_suffix(16)),
            json!({"component": "kubelet", "host": meta::get_path(involved, &["spec", "nodeName"]).cloned().unwrap_or(json!(""))}),
            "kubelet",
        )
    } else {
        (
            operator_event_name(involved, event_type, reason, message),
            json!({"component": event_component(reason)}),
            "",
        )
    };
    let now = meta::now_rfc3339();
    let event = json!({
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": name, "namespace": namespace},
        "involvedObject": {
            "apiVersion": involved.get("apiVersion").cloned().unwrap_or(Value::Null),
            "kind": kind,
            "name": meta::name(involved),
            "namespace": namespace,
            "uid": meta::uid(involved),
            "resourceVersion": meta::meta_str(involved, "resourceVersion").unwrap_or(""),
        },
        "reason": reason,
        "message": message,
        "type": event_type,
        "source": source,
        "reportingComponent": reporting,
        "reportingInstance": "",
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
    });
    if let Err(e) = shared
        .api
        .upsert(&EVENTS, &namespace, &name, Part::Main, MANAGER, |live| {
            let Some(live) = live else {
                return Some(event);
            };
            let mut again = live.clone();
            let count = live.get("count").and_then(Value::as_i64).unwrap_or(1);
            again["count"] = json!(count + 1);
            again["lastTimestamp"] = json!(now);
            again["message"] = json!(message);
            Some(again)
        })
    {
        tracing::debug!("event not recorded: {}", e.message);
    }
}

/// Writes an object as the stand-in's controllers do: the given top-level fields replace the
/// stored ones, except `metadata`, which is merged.
fn put(
    shared: &Shared,
    res: &'static crate::resources::ResourceDef,
    namespace: &str,
    name: &str,
    part: Part,
    manager: &str,
    object: Value,
) -> Result<(), Stop> {
    shared
        .api
        .upsert(res, namespace, name, part, manager, |live| {
            let mut new = live.cloned().unwrap_or_else(|| json!({}));
            if let Value::Object(fields) = object {
                for (key, value) in fields {
                    if key == "metadata" {
                        let mut metadata =
                            new.get("metadata").cloned().unwrap_or_else(|| json!({}));
                        merge_patch(&mut metadata, &value);
                        new["metadata"] = metadata;
                    } else {
                        new[key.as_str()] = value;
                    }
                }
            }
            Some(new)
        })
        .map(|_| ())
        .map_err(Stop::from)
}

fn delete_quietly(
    shared: &Shared,
    res: &'static crate::resources::ResourceDef,
    namespace: &str,
    name: &str,
) {
    match shared
        .api
        .delete(res, namespace, name, &DeleteOptions::default())
    {
        Ok(_) => shared.logs.remove_pod(namespace, name),
        Err(e) if e.code == 404 => {}
        Err(e) => tracing::debug!(
            "delete of {} {namespace}/{name} failed: {}",
            res.plural,
            e.message
        ),
    }
}

async fn pause(delay: Duration) {
    tokio::time::sleep(delay).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_names_hash_like_java() {
        assert_eq!(java_hash("hello"), 99_162_322);
        assert_eq!(java_hash(""), 0);
        let fd = json!({"kind": "FlinkDeployment", "metadata": {"name": "job", "uid": "u"}});
        let name = operator_event_name(&fd, "Normal", "Submit", "Starting deployment");
        assert!(name.starts_with("JobManagerDeployment."), "{name}");
        assert_eq!(
            name,
            operator_event_name(&fd, "Normal", "Submit", "Starting deployment"),
            "the same event has the same name"
        );
        assert_ne!(
            name,
            operator_event_name(&fd, "Warning", "Submit", "Starting deployment")
        );
        assert!(operator_event_name(&fd, "Normal", "JobStatusChanged", "x").starts_with("Job."));
    }

    #[test]
    fn flink_1_13_and_1_14_are_unsupported() {
        let fd = |v: &str| json!({"spec": {"flinkVersion": v}});
        assert_eq!(unsupported_flink_version(&fd("v1_14")), Some("v1_14"));
        assert_eq!(unsupported_flink_version(&fd("v1_13")), Some("v1_13"));
        assert_eq!(unsupported_flink_version(&fd("v1_15")), None);
        assert_eq!(unsupported_flink_version(&fd("v1_20")), None);
    }
}

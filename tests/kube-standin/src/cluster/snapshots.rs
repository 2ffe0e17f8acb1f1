//! The operator's state handling, as its source at `release-1.15.0` does it:
//!
//! - the FlinkStateSnapshot controller: a snapshot goes `TRIGGER_PENDING` → `IN_PROGRESS` →
//!   `COMPLETED` with `status.path`, or, on a failure, back to `TRIGGER_PENDING` until its
//!   `spec.backoffLimit` is spent (`-1`, the default, retries for ever) and then `FAILED`
//!   with `status.error` and `status.failures`; a snapshot with `savepoint.alreadyExists`
//!   completes at once with its given path. The controller labels each snapshot
//!   (`snapshot.type`, `snapshot.trigger-type`, `snapshot.state`, `job-reference.kind`,
//!   `job-reference.name`); the operator sets no ownerReference on them;
//! - before a FlinkDeployment's new generation is deployed ([`before_deploy`]): the upgrade
//!   or suspend of a running job in `savepoint` mode stops it with a savepoint, recorded as
//!   `status.jobStatus.upgradeSavepointPath` and an `UPGRADE` snapshot resource
//!   (`<name>-savepoint-upgrade-<millis>`); `job.state: suspended` deletes the cluster
//!   (lifecycle `SUSPENDED`, job `FINISHED`, JobManager `MISSING`); back to `running`, the
//!   job restores from `upgradeSavepointPath`; a first deployment restores from
//!   `job.initialSavepointPath`; a change of `job.savepointTriggerNonce` alone triggers a
//!   `MANUAL` savepoint resource and no upgrade;
//! - without the FlinkStateSnapshot CRD (`FlinkStateSnapshotUtils.isSnapshotResourceEnabled`
//!   is false when the operator finds no CRD; the stand-in asks on every pass, as an operator
//!   started without it), the legacy way: a manual trigger writes
//!   `status.jobStatus.savepointInfo` (`triggerId`, `triggerTimestamp`, `triggerType`,
//!   `formatType`), and the completed savepoint becomes `savepointInfo.lastSavepoint` (with
//!   the spec's `triggerNonce` for a manual one) and joins `savepointHistory`; an upgrade
//!   savepoint is recorded there too, with no resource.
//!
//! A savepoint's path is `<savepoint dir>/savepoint-<job id prefix>-<random>`, the dir from
//! the deployment's `execution.checkpointing.savepoint-dir` (Flink 2) or
//! `state.savepoints.dir` (Flink 1).

use serde_json::{Value, json};

use super::flink_cluster::flink_log_line;
use super::flink_operator::{MANAGER, Target, last_reconciled_spec, now_millis, write_status};
use super::{MAIN_CONTAINER, Stop, delete_quietly, emit_event, pause, put};
use crate::Shared;
use crate::apply::Part;
use crate::faults::Fault;
use crate::meta;
use crate::patch::merge_patch;
use crate::resources::{
    CUSTOM_RESOURCE_DEFINITIONS, DEPLOYMENTS, FLINK_DEPLOYMENTS, FLINK_STATE_SNAPSHOTS, PODS,
};

/// The savepoint directory keys, Flink 2's first.
const SAVEPOINT_DIR_KEYS: [&str; 2] = [
    "execution.checkpointing.savepoint-dir",
    "state.savepoints.dir",
];

/// The checkpoint directory keys, Flink 2's first.
const CHECKPOINT_DIR_KEYS: [&str; 2] = ["execution.checkpointing.dir", "state.checkpoints.dir"];

/// The label the operator reads a snapshot's trigger type from.
const TRIGGER_TYPE_LABEL: &str = "snapshot.trigger-type";

fn flink_config<'a>(spec: &'a Value, keys: &[&str]) -> Option<&'a str> {
    keys.iter().find_map(|key| {
        spec.get("flinkConfiguration")
            .and_then(|c| c.get(*key))
            .and_then(Value::as_str)
            .filter(|v| !v.is_empty())
    })
}

/// The deployment's savepoint directory, if its configuration names one.
pub(super) fn savepoint_dir(spec: &Value) -> Option<&str> {
    flink_config(spec, &SAVEPOINT_DIR_KEYS)
}

/// A new savepoint's path under `dir`, as Flink names it.
pub(super) fn savepoint_path(dir: &str, job_id: &str) -> String {
    let prefix: String = job_id.chars().take(6).collect();
    format!(
        "{}/savepoint-{prefix}-{}",
        dir.trim_end_matches('/'),
        &meta::random_suffix(12)
    )
}

/// The spec of the last reconciled generation, parsed from the status.
fn last_spec(fd: &Value) -> Option<Value> {
    let text = meta::get_path(
        fd,
        &["status", "reconciliationStatus", "lastReconciledSpec"],
    )?
    .as_str()?;
    serde_json::from_str::<Value>(text)
        .ok()?
        .get("spec")
        .cloned()
}

fn job_field<'a>(spec: &'a Value, field: &str) -> Option<&'a Value> {
    spec.get("job").and_then(|j| j.get(field))
}

fn job_text<'a>(spec: &'a Value, field: &str, default: &'a str) -> &'a str {
    job_field(spec, field)
        .and_then(Value::as_str)
        .unwrap_or(default)
}

/// The spec without the fields a savepoint trigger changes.
fn without_trigger(spec: &Value) -> Value {
    let mut spec = spec.clone();
    if let Some(job) = spec.get_mut("job").and_then(Value::as_object_mut) {
        job.remove("savepointTriggerNonce");
    }
    spec
}

/// What to do after [`before_deploy`].
pub(super) enum Next {
    /// Deploy the new generation, restoring from the savepoint if one is given.
    Deploy { restore: Option<Restore> },
    /// Nothing more for this generation (suspended, triggered, or failed with `status.error`).
    Done,
}

/// The savepoint a job starts from.
#[derive(Clone, Debug)]
pub(super) struct Restore {
    pub(super) path: String,
    pub(super) allow_non_restored_state: bool,
}

/// The JobManager's log lines for a job that restores from `restore`.
pub(super) fn restore_log(restore: &Restore, name: &str, job_id: &str) -> Vec<String> {
    let coordinator = "org.apache.flink.runtime.checkpoint.CheckpointCoordinator";
    vec![
        flink_log_line(
            coordinator,
            &format!(
                "Starting job {job_id} from savepoint {} ({})",
                restore.path,
                if restore.allow_non_restored_state {
                    "allowing non restored state"
                } else {
                    ""
                }
            ),
        ),
        flink_log_line(
            coordinator,
            &format!(
                "Restoring job {job_id} ({name}) from Savepoint 1 @ 0 for {job_id} located at {}.",
                restore.path
            ),
        ),
    ]
}

/// The operator's work on a new generation before the cluster is (re)deployed: the savepoint
/// of an upgrade or suspend, the suspend itself, a resume's or first deployment's restore
/// path, a manual savepoint trigger.
pub(super) async fn before_deploy(
    shared: &Shared,
    target: &Target,
    fd: &Value,
    delay: std::time::Duration,
) -> Result<Next, Stop> {
    let spec = fd.get("spec").cloned().unwrap_or_else(|| json!({}));
    let last = last_spec(fd);
    let status = fd.get("status").cloned().unwrap_or(Value::Null);
    let running = meta::get_path(&status, &["jobStatus", "state"]).and_then(Value::as_str)
        == Some("RUNNING")
        && status
            .get("jobManagerDeploymentStatus")
            .and_then(Value::as_str)
            == Some("READY");
    let mode = job_text(&spec, "upgradeMode", "stateless");
    let suspend = job_text(&spec, "state", "running") == "suspended";
    let Some(last) = last else {
        let restore = job_field(&spec, "initialSavepointPath")
            .and_then(Value::as_str)
            .filter(|p| !p.is_empty())
            .map(|path| Restore {
                path: path.to_owned(),
                allow_non_restored_state: job_field(&spec, "allowNonRestoredState")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
            });
        if let Some(restore) = &restore {
            write_status(
                shared,
                target,
                json!({"jobStatus": {"upgradeSavepointPath": restore.path}}),
            )?;
        }
        return Ok(Next::Deploy { restore });
    };
    if running && without_trigger(&spec) == without_trigger(&last) {
        if snapshot_resources_enabled(shared) {
            trigger_manual_savepoint(shared, target, fd, &spec)?;
        } else {
            legacy_manual_savepoint(shared, target, fd, &spec, delay).await?;
        }
        return Ok(Next::Done);
    }
    let was_suspended = job_text(&last, "state", "running") == "suspended";
    let mut restore = None;
    if running {
        if mode == "savepoint" {
            let path = match take_upgrade_savepoint(shared, target, fd, &spec, delay).await? {
                Ok(path) => path,
                Err(message) => {
                    fail_upgrade_savepoint(shared, target, fd, &message)?;
                    return Ok(Next::Done);
                }
            };
            restore = Some(Restore {
                path,
                allow_non_restored_state: false,
            });
        }
    } else if was_suspended && mode != "stateless" {
        restore = meta::get_path(&status, &["jobStatus", "upgradeSavepointPath"])
            .and_then(Value::as_str)
            .map(|path| Restore {
                path: path.to_owned(),
                allow_non_restored_state: false,
            });
    }
    if suspend {
        suspend_job(shared, target, fd, &spec).await?;
        return Ok(Next::Done);
    }
    Ok(Next::Deploy { restore })
}

/// Stops the job with a savepoint: its path, or the savepoint's failure.
async fn take_upgrade_savepoint(
    shared: &Shared,
    target: &Target,
    fd: &Value,
    spec: &Value,
    delay: std::time::Duration,
) -> Result<Result<String, String>, Stop> {
    let (ns, name) = (target.namespace.as_str(), target.name.as_str());
    let job_id = meta::get_path(fd, &["status", "jobStatus", "jobId"])
        .and_then(Value::as_str)
        .unwrap_or("00000000000000000000000000000000")
        .to_owned();
    let jm_pods = jobmanager_pods(shared, ns, name);
    let log = |message: &str| {
        for pod in &jm_pods {
            shared.logs.append(
                ns,
                pod,
                MAIN_CONTAINER,
                &[flink_log_line(
                    "org.apache.flink.runtime.jobmaster.JobMaster",
                    message,
                )],
            );
        }
    };
    log(&format!("Triggering stop-with-savepoint for job {job_id}."));
    pause(delay).await;
    if let Some(message) = savepoint_failure(shared, ns, name, fd) {
        log(&format!("Savepoint for job {job_id} failed: {message}"));
        return Ok(Err(message));
    }
    let Some(dir) = savepoint_dir(spec) else {
        return Ok(Err(format!(
            "Job could not be upgraded with savepoint while config key[{}] is not set",
            SAVEPOINT_DIR_KEYS[0]
        )));
    };
    let path = savepoint_path(dir, &job_id);
    log(&format!(
        "Savepoint stored in {path}. Now cancelling {job_id}."
    ));
    if snapshot_resources_enabled(shared) {
        put_savepoint_snapshot(shared, ns, name, "UPGRADE", Some(&path), true)?;
    } else {
        let savepoint = legacy_savepoint(&path, now_millis(), "UPGRADE", None);
        write_status(
            shared,
            target,
            json!({"jobStatus": {"savepointInfo": last_savepoint_info(fd, savepoint)}}),
        )?;
    }
    write_status(
        shared,
        target,
        json!({"jobStatus": {"upgradeSavepointPath": path}}),
    )?;
    Ok(Ok(path))
}

/// The scripted savepoint failure for a deployment, if any.
fn savepoint_failure(shared: &Shared, ns: &str, name: &str, fd: &Value) -> Option<String> {
    shared
        .faults
        .for_deployment(ns, name, Some(fd))
        .into_iter()
        .find_map(|f| match f {
            Fault::SavepointFailure { message } => Some(message),
            _ => None,
        })
}

/// An upgrade whose savepoint failed: the job keeps running its last spec; `status.error`
/// and a `SavepointError` Event say why.
fn fail_upgrade_savepoint(
    shared: &Shared,
    target: &Target,
    fd: &Value,
    message: &str,
) -> Result<(), Stop> {
    let error = json!({
        "type": "org.apache.flink.util.FlinkException",
        "message": format!("Failed to stop the job with savepoint: {message}"),
        "throwableList": [{"type": "java.util.concurrent.CompletionException", "message": message}],
    });
    write_status(shared, target, json!({"error": error.to_string()}))?;
    emit_event(shared, fd, "Warning", "SavepointError", message);
    Ok(())
}

/// `job.state: suspended`: the cluster goes away, the status says `SUSPENDED`.
async fn suspend_job(
    shared: &Shared,
    target: &Target,
    fd: &Value,
    spec: &Value,
) -> Result<(), Stop> {
    let (ns, name) = (target.namespace.as_str(), target.name.as_str());
    emit_event(
        shared,
        fd,
        "Normal",
        "Suspended",
        "Suspending existing deployment.",
    );
    delete_cluster(shared, ns, name);
    let reconciled = last_reconciled_spec(spec, target.generation, false);
    write_status(
        shared,
        target,
        json!({
            "lifecycleState": "SUSPENDED",
            "observedGeneration": target.generation,
            "jobManagerDeploymentStatus": "MISSING",
            "jobStatus": {"state": "FINISHED", "updateTime": now_millis().to_string()},
            "reconciliationStatus": {
                "state": "DEPLOYED",
                "lastReconciledSpec": reconciled,
                "lastStableSpec": reconciled,
                "reconciliationTimestamp": now_millis(),
            },
            "error": null,
        }),
    )
}

/// The JobManager Deployment and every pod of the cluster.
fn delete_cluster(shared: &Shared, ns: &str, name: &str) {
    delete_quietly(shared, &DEPLOYMENTS, ns, name);
    let pods = shared.api.store.tx().list(&PODS, Some(ns));
    for pod in pods.iter().filter(|p| {
        meta::label(p, "app") == Some(name)
            && meta::label(p, "type") == Some("flink-native-kubernetes")
    }) {
        delete_quietly(shared, &PODS, ns, meta::name(pod));
    }
}

fn jobmanager_pods(shared: &Shared, ns: &str, name: &str) -> Vec<String> {
    shared
        .api
        .store
        .tx()
        .list(&PODS, Some(ns))
        .iter()
        .filter(|p| {
            meta::label(p, "app") == Some(name) && meta::label(p, "component") == Some("jobmanager")
        })
        .map(|p| meta::name(p).to_owned())
        .collect()
}

/// Whether the operator makes FlinkStateSnapshot resources: only while their CRD is
/// installed.
fn snapshot_resources_enabled(shared: &Shared) -> bool {
    shared
        .api
        .get(
            &CUSTOM_RESOURCE_DEFINITIONS,
            "",
            &format!(
                "{}.{}",
                FLINK_STATE_SNAPSHOTS.plural, FLINK_STATE_SNAPSHOTS.group
            ),
        )
        .is_ok()
}

/// A completed savepoint as `savepointInfo` records it (`Savepoint`: `timeStamp` is the
/// trigger's time; `triggerNonce` only for a manual one).
fn legacy_savepoint(path: &str, at: i64, trigger: &str, nonce: Option<i64>) -> Value {
    let mut savepoint = json!({
        "timeStamp": at, "location": path, "triggerType": trigger, "formatType": "CANONICAL",
    });
    if let Some(nonce) = nonce {
        savepoint["triggerNonce"] = json!(nonce);
    }
    savepoint
}

/// `savepointInfo` after `SavepointInfo.updateLastSavepoint`: the savepoint is the last one
/// and joins the history, and the trigger fields are reset.
fn last_savepoint_info(fd: &Value, savepoint: Value) -> Value {
    let mut history = meta::get_path(
        fd,
        &["status", "jobStatus", "savepointInfo", "savepointHistory"],
    )
    .and_then(Value::as_array)
    .cloned()
    .unwrap_or_default();
    history.push(savepoint.clone());
    json!({
        "lastSavepoint": savepoint, "savepointHistory": history,
        "triggerId": null, "triggerTimestamp": null, "triggerType": null, "formatType": null,
    })
}

/// A new `savepointTriggerNonce` alone, without snapshot resources: the trigger recorded in
/// `savepointInfo`, then the savepoint as its `lastSavepoint` with the nonce, and the new
/// spec recorded as reconciled; the job keeps running. A failing savepoint is a
/// `SavepointError` Event and a reset trigger.
async fn legacy_manual_savepoint(
    shared: &Shared,
    target: &Target,
    fd: &Value,
    spec: &Value,
    delay: std::time::Duration,
) -> Result<(), Stop> {
    let (ns, name) = (target.namespace.as_str(), target.name.as_str());
    let nonce = job_field(spec, "savepointTriggerNonce").and_then(Value::as_i64);
    let at = now_millis();
    write_status(
        shared,
        target,
        json!({"jobStatus": {"savepointInfo": {
            "triggerId": meta::random_suffix(32), "triggerTimestamp": at,
            "triggerType": "MANUAL", "formatType": "CANONICAL",
        }}}),
    )?;
    pause(delay).await;
    let job_id = meta::get_path(fd, &["status", "jobStatus", "jobId"])
        .and_then(Value::as_str)
        .unwrap_or("");
    let outcome = match savepoint_failure(shared, ns, name, fd) {
        Some(message) => Err(message),
        None => savepoint_dir(spec)
            .map(|dir| savepoint_path(dir, job_id))
            .ok_or_else(|| format!("{} is not set", SAVEPOINT_DIR_KEYS[1])),
    };
    let reconciled = last_reconciled_spec(spec, target.generation, false);
    let mut status = json!({
        "observedGeneration": target.generation,
        "reconciliationStatus": {"lastReconciledSpec": reconciled, "reconciliationTimestamp": now_millis()},
    });
    if meta::get_path(fd, &["status", "lifecycleState"]).and_then(Value::as_str) == Some("STABLE") {
        status["reconciliationStatus"]["lastStableSpec"] = json!(reconciled);
    }
    match outcome {
        Ok(path) => {
            let savepoint = legacy_savepoint(&path, at, "MANUAL", nonce);
            status["jobStatus"] = json!({"savepointInfo": last_savepoint_info(fd, savepoint)});
        }
        Err(message) => {
            emit_event(shared, fd, "Warning", "SavepointError", &message);
            status["jobStatus"] = json!({"savepointInfo": {
                "triggerId": null, "triggerTimestamp": null, "triggerType": null, "formatType": null,
            }});
        }
    }
    write_status(shared, target, status)
}

/// The operator's FlinkStateSnapshot `<name>-savepoint-<trigger>-<millis>` for a savepoint of
/// FlinkDeployment `name`, labelled with its trigger type (`UPGRADE`, `MANUAL`); `path` is
/// the savepoint (`already_exists`: taken before the resource) or the directory to take it in.
fn put_savepoint_snapshot(
    shared: &Shared,
    ns: &str,
    name: &str,
    trigger: &str,
    path: Option<&str>,
    already_exists: bool,
) -> Result<(), Stop> {
    let snapshot = format!(
        "{name}-savepoint-{}-{}",
        trigger.to_lowercase(),
        now_millis()
    );
    put(
        shared,
        &FLINK_STATE_SNAPSHOTS,
        ns,
        &snapshot,
        Part::Main,
        MANAGER,
        json!({
            "metadata": {"name": snapshot, "namespace": ns, "labels": {TRIGGER_TYPE_LABEL: trigger}},
            "spec": {
                "jobReference": {"kind": "FlinkDeployment", "name": name},
                "savepoint": {"path": path, "formatType": "CANONICAL", "disposeOnDelete": true, "alreadyExists": already_exists},
            },
        }),
    )
}

/// A new `savepointTriggerNonce` alone: a `MANUAL` snapshot resource for the job's savepoint
/// dir, and the new spec recorded as reconciled; the job keeps running.
fn trigger_manual_savepoint(
    shared: &Shared,
    target: &Target,
    fd: &Value,
    spec: &Value,
) -> Result<(), Stop> {
    let (ns, name) = (target.namespace.as_str(), target.name.as_str());
    put_savepoint_snapshot(shared, ns, name, "MANUAL", savepoint_dir(spec), false)?;
    let reconciled = last_reconciled_spec(spec, target.generation, false);
    let stable =
        meta::get_path(fd, &["status", "lifecycleState"]).and_then(Value::as_str) == Some("STABLE");
    let mut status = json!({
        "observedGeneration": target.generation,
        "reconciliationStatus": {"lastReconciledSpec": reconciled, "reconciliationTimestamp": now_millis()},
    });
    if stable {
        status["reconciliationStatus"]["lastStableSpec"] = json!(reconciled);
    }
    write_status(shared, target, status)
}

/// The snapshot's outcome when it is taken now: its path, or the error.
fn take_snapshot(shared: &Shared, snapshot: &Value) -> Result<String, String> {
    let ns = meta::namespace(snapshot);
    let Some(job) =
        meta::get_path(snapshot, &["spec", "jobReference", "name"]).and_then(Value::as_str)
    else {
        return Err("Snapshot has no job reference".to_owned());
    };
    let fd = shared.api.get(&FLINK_DEPLOYMENTS, ns, job).map_err(|_| {
        format!(
            "Secondary resource FlinkDeployment {ns}/{job} for snapshot {} was not found",
            meta::name(snapshot)
        )
    })?;
    let state = meta::get_path(&fd, &["status", "jobStatus", "state"]).and_then(Value::as_str);
    if state != Some("RUNNING") {
        return Err(format!(
            "Job for FlinkStateSnapshot {ns}/{} is not running (state {})",
            meta::name(snapshot),
            state.unwrap_or("unknown")
        ));
    }
    if let Some(message) = savepoint_failure(shared, ns, job, &fd) {
        return Err(message);
    }
    let spec = fd.get("spec").cloned().unwrap_or(Value::Null);
    let job_id = meta::get_path(&fd, &["status", "jobStatus", "jobId"])
        .and_then(Value::as_str)
        .unwrap_or("");
    if snapshot
        .get("spec")
        .and_then(|s| s.get("checkpoint"))
        .is_some()
    {
        let dir = flink_config(&spec, &CHECKPOINT_DIR_KEYS)
            .ok_or_else(|| format!("Checkpoint directory {} is not set", CHECKPOINT_DIR_KEYS[0]))?;
        return Ok(format!(
            "{}/{job_id}/chk-{}",
            dir.trim_end_matches('/'),
            now_millis() % 1000 + 1
        ));
    }
    let dir = meta::get_path(snapshot, &["spec", "savepoint", "path"])
        .and_then(Value::as_str)
        .or_else(|| savepoint_dir(&spec))
        .ok_or_else(|| {
            format!(
                "Either the savepoint path in the spec or configuration {} in the Flink resource has to be supplied",
                SAVEPOINT_DIR_KEYS[0]
            )
        })?;
    Ok(savepoint_path(dir, job_id))
}

/// The labels the controller keeps on a snapshot.
fn snapshot_labels(snapshot: &Value, state: &str) -> Value {
    let kind = if snapshot
        .get("spec")
        .and_then(|s| s.get("checkpoint"))
        .is_some()
    {
        "CHECKPOINT"
    } else {
        "SAVEPOINT"
    };
    json!({
        "snapshot.type": kind,
        TRIGGER_TYPE_LABEL: meta::label(snapshot, TRIGGER_TYPE_LABEL).unwrap_or("MANUAL"),
        "snapshot.state": state,
        "job-reference.kind": meta::get_path(snapshot, &["spec", "jobReference", "kind"]).and_then(Value::as_str).unwrap_or("FlinkDeployment"),
        "job-reference.name": meta::get_path(snapshot, &["spec", "jobReference", "name"]).and_then(Value::as_str).unwrap_or(""),
    })
}

/// Writes a snapshot's status (merged) and its labels, if it is still the same object.
fn write_snapshot(
    shared: &Shared,
    ns: &str,
    name: &str,
    uid: &str,
    status: Value,
) -> Result<(), Stop> {
    let state = status
        .get("state")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let mut gone = false;
    shared.api.upsert(
        &FLINK_STATE_SNAPSHOTS,
        ns,
        name,
        Part::Status,
        MANAGER,
        |live| {
            let Some(live) = live.filter(|l| meta::uid(l) == uid && !meta::is_deleting(l)) else {
                gone = true;
                return None;
            };
            let mut new = live.clone();
            merge_patch(&mut new, &json!({"status": status}));
            Some(new)
        },
    )?;
    if gone {
        return Err(Stop::Superseded);
    }
    shared.api.upsert(
        &FLINK_STATE_SNAPSHOTS,
        ns,
        name,
        Part::Main,
        MANAGER,
        |live| {
            let live = live.filter(|l| meta::uid(l) == uid)?;
            let mut new = live.clone();
            merge_patch(
                &mut new,
                &json!({"metadata": {"labels": snapshot_labels(live, &state)}}),
            );
            Some(new)
        },
    )?;
    Ok(())
}

/// The FlinkStateSnapshot controller's work on one snapshot, until it is `COMPLETED` or
/// `FAILED`.
pub(super) async fn reconcile_snapshot(
    shared: &Shared,
    ns: &str,
    name: &str,
    uid: &str,
) -> Result<(), Stop> {
    let delay = shared.config.transition_delay;
    loop {
        let snapshot = shared.api.get(&FLINK_STATE_SNAPSHOTS, ns, name)?;
        if meta::uid(&snapshot) != uid || meta::is_deleting(&snapshot) {
            return Ok(());
        }
        let status = snapshot.get("status").cloned().unwrap_or(Value::Null);
        let state = status.get("state").and_then(Value::as_str);
        if matches!(state, Some("COMPLETED" | "FAILED" | "ABANDONED")) {
            return Ok(());
        }
        if meta::get_path(&snapshot, &["spec", "savepoint", "alreadyExists"])
            .and_then(Value::as_bool)
            == Some(true)
        {
            let path = meta::get_path(&snapshot, &["spec", "savepoint", "path"]).cloned();
            let now = meta::now_rfc3339();
            let status = match path {
                Some(Value::String(path)) => {
                    json!({"state": "COMPLETED", "path": path, "triggerTimestamp": now, "resultTimestamp": now, "failures": 0})
                }
                _ => {
                    json!({"state": "FAILED", "error": "Snapshot path must be given when alreadyExists is true", "resultTimestamp": now, "failures": 1})
                }
            };
            return write_snapshot(shared, ns, name, uid, status);
        }
        if state.is_none() {
            write_snapshot(
                shared,
                ns,
                name,
                uid,
                json!({"state": "TRIGGER_PENDING", "failures": 0}),
            )?;
        }
        pause(delay).await;
        let failures = status.get("failures").and_then(Value::as_i64).unwrap_or(0);
        match take_snapshot(shared, &snapshot) {
            Ok(path) => {
                let trigger_id = meta::random_suffix(32);
                write_snapshot(
                    shared,
                    ns,
                    name,
                    uid,
                    json!({"state": "IN_PROGRESS", "triggerId": trigger_id, "triggerTimestamp": meta::now_rfc3339()}),
                )?;
                pause(delay).await;
                return write_snapshot(
                    shared,
                    ns,
                    name,
                    uid,
                    json!({"state": "COMPLETED", "path": path, "resultTimestamp": meta::now_rfc3339(), "error": null}),
                );
            }
            Err(message) => {
                let failures = failures + 1;
                let limit = meta::get_path(&snapshot, &["spec", "backoffLimit"])
                    .and_then(Value::as_i64)
                    .unwrap_or(-1);
                emit_event(shared, &snapshot, "Warning", "SavepointError", &message);
                let state = if limit >= 0 && failures > limit {
                    "FAILED"
                } else {
                    "TRIGGER_PENDING"
                };
                write_snapshot(
                    shared,
                    ns,
                    name,
                    uid,
                    json!({"state": state, "error": message, "failures": failures, "resultTimestamp": meta::now_rfc3339()}),
                )?;
                if state == "FAILED" {
                    return Ok(());
                }
                pause(delay).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn savepoint_dir_is_flink_2s_key_or_flink_1s() {
        let spec = json!({"flinkConfiguration": {"state.savepoints.dir": "s3://b/state/sp"}});
        assert_eq!(savepoint_dir(&spec), Some("s3://b/state/sp"));
        let spec = json!({"flinkConfiguration": {"execution.checkpointing.savepoint-dir": "s3://b/x", "state.savepoints.dir": "s3://b/y"}});
        assert_eq!(savepoint_dir(&spec), Some("s3://b/x"));
        assert_eq!(savepoint_dir(&json!({})), None);
    }

    #[test]
    fn a_savepoint_path_is_under_its_dir() {
        let path = savepoint_path("s3://b/state/sp/", "abcdef0123");
        assert!(
            path.starts_with("s3://b/state/sp/savepoint-abcdef-"),
            "{path}"
        );
        assert_eq!(path.len(), "s3://b/state/sp/savepoint-abcdef-".len() + 12);
    }

    #[test]
    fn a_nonce_alone_is_not_an_upgrade() {
        let a = json!({"job": {"jarURI": "x", "savepointTriggerNonce": 1}});
        let b = json!({"job": {"jarURI": "x", "savepointTriggerNonce": 2}});
        let c = json!({"job": {"jarURI": "y", "savepointTriggerNonce": 2}});
        assert_eq!(without_trigger(&a), without_trigger(&b));
        assert_ne!(without_trigger(&a), without_trigger(&c));
    }

    #[test]
    fn a_legacy_savepoint_becomes_the_last_and_joins_the_history_and_the_trigger_resets() {
        let fd = json!({"status": {"jobStatus": {"savepointInfo": {
            "triggerId": "t", "triggerType": "MANUAL",
            "savepointHistory": [{"location": "s3://b/sp/savepoint-old"}],
        }}}});
        let savepoint = legacy_savepoint("s3://b/sp/savepoint-new", 7, "MANUAL", Some(3));
        assert_eq!(savepoint["triggerNonce"], 3);
        let info = last_savepoint_info(&fd, savepoint);
        assert_eq!(info["lastSavepoint"]["location"], "s3://b/sp/savepoint-new");
        assert_eq!(info["lastSavepoint"]["timeStamp"], 7);
        assert_eq!(info["savepointHistory"].as_array().unwrap().len(), 2);
        assert!(info["triggerId"].is_null() && info["triggerType"].is_null());
        let upgrade = legacy_savepoint("s3://b/sp/savepoint-u", 8, "UPGRADE", None);
        assert!(upgrade.get("triggerNonce").is_none());
    }

    #[test]
    fn labels_name_the_type_trigger_state_and_job() {
        let snapshot = json!({"metadata": {"labels": {TRIGGER_TYPE_LABEL: "UPGRADE"}}, "spec": {"jobReference": {"kind": "FlinkDeployment", "name": "job"}, "savepoint": {}}});
        let labels = snapshot_labels(&snapshot, "COMPLETED");
        assert_eq!(labels["snapshot.type"], "SAVEPOINT");
        assert_eq!(labels[TRIGGER_TYPE_LABEL], "UPGRADE");
        assert_eq!(labels["snapshot.state"], "COMPLETED");
        assert_eq!(labels["job-reference.name"], "job");
    }
}

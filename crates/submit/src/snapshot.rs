//! Savepoints, suspend and resume of a FlinkDeployment's job, and what the operator knows of
//! its state: the calls in [`Submitter`]'s methods here, the decisions in pure functions.
//!
//! A savepoint is a FlinkStateSnapshot resource when the operator serves that CRD (operator
//! 1.10 and later): created with `backoffLimit: 0`, since the operator's default (`-1`)
//! retries a failing savepoint for ever; it goes `TRIGGER_PENDING` → `IN_PROGRESS` →
//! `COMPLETED` with `status.path`, or `FAILED` with `status.error`. Without the CRD, a new
//! `job.savepointTriggerNonce` asks for one and `status.jobStatus.savepointInfo` records it.
//!
//! Suspend and resume apply `job.state` alone, under a field manager of their own
//! ([`JOB_STATE_MANAGER`]), so the deploy's own apply neither owns nor compares it; the
//! savepoint trigger has its own manager too ([`SAVEPOINT_TRIGGER_MANAGER`]): an apply
//! removes the fields its manager applied before and leaves out now.

use std::time::{Duration, Instant};

use flink_eks_manifest::FlinkDeployment;
use flink_eks_plan::Progress;
use kube::api::{Api, ApiResource, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use serde::Serialize;
use serde_json::{Value, json};

use crate::cluster::{Submitter, WatchEvent, read_deployment};
use crate::error::{Error, Result, from_kube};
use crate::operator::FLINK_API_VERSION;

/// The field manager of `job.state` (suspend and resume).
pub const JOB_STATE_MANAGER: &str = "flink-eks-job-state";

/// The field manager of `job.savepointTriggerNonce`.
pub const SAVEPOINT_TRIGGER_MANAGER: &str = "flink-eks-savepoint";

/// The operator's label naming the FlinkDeployment a snapshot belongs to.
pub const JOB_REFERENCE_LABEL: &str = "job-reference.name";

/// How often a wait reads the object again.
const POLL: Duration = Duration::from_millis(200);

/// How a savepoint was asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SavepointTrigger {
    /// A FlinkStateSnapshot resource.
    Snapshot,
    /// `job.savepointTriggerNonce`.
    Nonce,
}

/// A completed savepoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Savepoint {
    /// Namespace of the FlinkDeployment.
    pub namespace: String,
    /// Name of the FlinkDeployment.
    pub deployment: String,
    /// Where the savepoint is (`s3://…/savepoint-…`).
    pub path: String,
    /// How it was asked for.
    pub trigger: SavepointTrigger,
    /// The FlinkStateSnapshot resource, when it was one.
    pub snapshot: Option<String>,
}

/// Where a snapshot is, as its status says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SnapshotProgress {
    /// Not done yet: the state (`TRIGGER_PENDING`, `IN_PROGRESS`, or none yet).
    Pending(Option<String>),
    /// `COMPLETED` at this path.
    Completed(String),
    /// `FAILED` or `ABANDONED`, with the operator's error.
    Failed(String),
}

/// Reads a FlinkStateSnapshot's `status`.
pub fn snapshot_progress(status: Option<&Value>) -> SnapshotProgress {
    let text = |key: &str| {
        status
            .and_then(|s| s.get(key))
            .and_then(Value::as_str)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    match text("state").as_deref() {
        Some("COMPLETED") => match text("path") {
            Some(path) => SnapshotProgress::Completed(path),
            None => SnapshotProgress::Failed("the snapshot completed without a path".to_owned()),
        },
        Some(state @ ("FAILED" | "ABANDONED")) => SnapshotProgress::Failed(
            text("error").unwrap_or_else(|| format!("the snapshot is {state}")),
        ),
        other => SnapshotProgress::Pending(other.map(str::to_owned)),
    }
}

/// One savepoint or checkpoint the operator knows of.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SnapshotRecord {
    /// Where it is, when the operator records it (a checkpoint in the deployment's status
    /// has no path).
    pub path: Option<String>,
    /// When it completed, as the operator wrote it (RFC 3339, or milliseconds since the
    /// epoch from the deployment's status).
    pub at: Option<String>,
    /// What triggered it: `MANUAL`, `PERIODIC`, `UPGRADE`.
    pub trigger: Option<String>,
    /// The FlinkStateSnapshot resource, or `status` when it is from the deployment's status.
    pub source: String,
}

/// The last savepoint and checkpoint the operator knows of for one FlinkDeployment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct StateInfo {
    /// The newest completed savepoint.
    pub last_savepoint: Option<SnapshotRecord>,
    /// The newest completed checkpoint.
    pub last_checkpoint: Option<SnapshotRecord>,
    /// `status.jobStatus.upgradeSavepointPath`: the savepoint the running job started from
    /// (after an upgrade or resume in savepoint mode, or `initialSavepointPath`).
    pub upgrade_savepoint_path: Option<String>,
}

impl StateInfo {
    /// Whether the operator knows of any state of this job.
    pub fn has_state(&self) -> bool {
        self.last_savepoint.is_some()
            || self.last_checkpoint.is_some()
            || self.upgrade_savepoint_path.is_some()
    }
}

fn str_at<'a>(value: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter()
        .try_fold(value, |v, key| v.get(*key))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// The last savepoint and checkpoint from a FlinkDeployment's `status` and its
/// FlinkStateSnapshot resources (whole objects): the newest completed resource of each type,
/// else what the status's `savepointInfo` / `checkpointInfo` record.
pub fn state_info(status: &Value, snapshots: &[Value]) -> StateInfo {
    let newest = |kind: &str| {
        snapshots
            .iter()
            .filter(|s| {
                let is_checkpoint = s
                    .get("spec")
                    .and_then(|spec| spec.get("checkpoint"))
                    .is_some();
                is_checkpoint == (kind == "CHECKPOINT")
            })
            .filter_map(|s| match snapshot_progress(s.get("status")) {
                SnapshotProgress::Completed(path) => Some(SnapshotRecord {
                    path: Some(path),
                    at: str_at(s, &["status", "resultTimestamp"]).map(str::to_owned),
                    trigger: str_at(s, &["metadata", "labels", "snapshot.trigger-type"])
                        .map(str::to_owned),
                    source: str_at(s, &["metadata", "name"]).unwrap_or("").to_owned(),
                }),
                _ => None,
            })
            // Timestamps have seconds; the operator's names end in milliseconds.
            .max_by(|a, b| (&a.at, &a.source).cmp(&(&b.at, &b.source)))
    };
    let from_status = |info: &str, last: &str, path_key: &str| {
        let last = status.get("jobStatus")?.get(info)?.get(last)?;
        Some(SnapshotRecord {
            path: last
                .get(path_key)
                .and_then(Value::as_str)
                .map(str::to_owned),
            at: last.get("timeStamp").map(|t| match t {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            }),
            trigger: last
                .get("triggerType")
                .and_then(Value::as_str)
                .map(str::to_owned),
            source: "status".to_owned(),
        })
    };
    StateInfo {
        last_savepoint: newest("SAVEPOINT")
            .or_else(|| from_status("savepointInfo", "lastSavepoint", "location")),
        last_checkpoint: newest("CHECKPOINT")
            .or_else(|| from_status("checkpointInfo", "lastCheckpoint", "location")),
        upgrade_savepoint_path: str_at(status, &["jobStatus", "upgradeSavepointPath"])
            .map(str::to_owned),
    }
}

/// The savepoint a `savepointTriggerNonce` asked for, once the status records it:
/// `savepointInfo.lastSavepoint` with that nonce.
pub fn nonce_savepoint(status: &Value, nonce: i64) -> Option<String> {
    let last = status
        .get("jobStatus")?
        .get("savepointInfo")?
        .get("lastSavepoint")?;
    (last.get("triggerNonce").and_then(Value::as_i64) == Some(nonce))
        .then(|| {
            last.get("location")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .flatten()
}

/// Whether a FlinkDeployment reached `job.state: suspended` at `generation`: `Some(Ok)` when
/// the operator reports it `SUSPENDED`, `Some(Err)` with the operator's error when one
/// appeared that was not there before (`baseline`), `None` to keep waiting.
pub fn suspend_outcome(
    object: &Value,
    generation: i64,
    baseline: Option<&str>,
) -> Option<std::result::Result<(), String>> {
    let status = object.get("status")?;
    let observed = status.get("observedGeneration").and_then(Value::as_i64);
    if observed.is_some_and(|g| g >= generation)
        && str_at(status, &["lifecycleState"]) == Some("SUSPENDED")
    {
        return Some(Ok(()));
    }
    let error = str_at(status, &["error"]);
    match error {
        Some(error) if Some(error) != baseline => {
            Some(Err(crate::status::parse_operator_error(error)
                .map_or_else(|| error.to_owned(), |e| e.to_string())))
        }
        _ => None,
    }
}

/// Whether the job runs: `jobStatus.state` is `RUNNING`.
pub fn job_running(object: &Value) -> bool {
    str_at(object, &["status", "jobStatus", "state"]) == Some("RUNNING")
}

/// How the operator carries the job's state over an update of `deployment`: "upgrade with
/// savepoint" or "upgrade with last state"; `None` for a stateless job.
pub fn upgrade_with(deployment: &FlinkDeployment) -> Option<&'static str> {
    let mode = deployment.spec.job.as_ref()?.upgrade_mode?;
    match mode {
        flink_eks_manifest::UpgradeMode::Savepoint => Some("upgrade with savepoint"),
        flink_eks_manifest::UpgradeMode::LastState => Some("upgrade with last state"),
        flink_eks_manifest::UpgradeMode::Stateless => None,
    }
}

fn snapshot_resource() -> ApiResource {
    ApiResource {
        group: "flink.apache.org".to_owned(),
        version: "v1beta1".to_owned(),
        api_version: FLINK_API_VERSION.to_owned(),
        kind: "FlinkStateSnapshot".to_owned(),
        plural: "flinkstatesnapshots".to_owned(),
    }
}

fn deployment_resource() -> ApiResource {
    ApiResource::erase::<FlinkDeployment>(&())
}

impl Submitter {
    fn snapshots(&self, namespace: &str) -> Api<DynamicObject> {
        Api::namespaced_with(self.client().clone(), namespace, &snapshot_resource())
    }

    fn deployments_dynamic(&self, namespace: &str) -> Api<DynamicObject> {
        Api::namespaced_with(self.client().clone(), namespace, &deployment_resource())
    }

    /// Whether the operator serves FlinkStateSnapshot (`flink.apache.org/v1beta1`
    /// `flinkstatesnapshots` in discovery).
    pub async fn serves_snapshots(&self) -> Result<bool> {
        match self
            .client()
            .list_api_group_resources(FLINK_API_VERSION)
            .await
        {
            Ok(list) => Ok(list
                .resources
                .iter()
                .any(|r| r.name == "flinkstatesnapshots")),
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(false),
            Err(e) => Err(from_kube("discover flink.apache.org/v1beta1".to_owned(), e)),
        }
    }

    /// The FlinkDeployment as JSON, with every status field the operator writes.
    async fn deployment_json(&self, namespace: &str, name: &str) -> Result<Value> {
        let object = read_deployment(&self.deployments_dynamic(namespace), namespace, name).await?;
        serde_json::to_value(object).map_err(|e| Error::Kube {
            action: format!("read FlinkDeployment {namespace}/{name}"),
            message: e.to_string(),
        })
    }

    /// The last savepoint and checkpoint the operator knows of for one FlinkDeployment.
    pub async fn state_info(&self, namespace: &str, name: &str) -> Result<StateInfo> {
        let object = self.deployment_json(namespace, name).await?;
        let snapshots = if self.serves_snapshots().await? {
            let list = self
                .snapshots(namespace)
                .list(&ListParams::default().labels(&format!("{JOB_REFERENCE_LABEL}={name}")))
                .await
                .map_err(|e| {
                    from_kube(format!("list FlinkStateSnapshots of {namespace}/{name}"), e)
                })?;
            list.items
                .into_iter()
                .filter_map(|o| serde_json::to_value(o).ok())
                .collect()
        } else {
            Vec::new()
        };
        Ok(state_info(
            object.get("status").unwrap_or(&Value::Null),
            &snapshots,
        ))
    }

    /// Takes a savepoint of the running job and waits for it: through a FlinkStateSnapshot
    /// when the operator serves them, else `job.savepointTriggerNonce`.
    pub async fn savepoint(
        &self,
        namespace: &str,
        name: &str,
        timeout: Duration,
    ) -> Result<Savepoint> {
        let object = self.deployment_json(namespace, name).await?;
        if !job_running(&object) {
            return Err(Error::Precondition {
                reason: format!(
                    "the job of FlinkDeployment {namespace}/{name} is not running (state {})",
                    str_at(&object, &["status", "jobStatus", "state"]).unwrap_or("unknown")
                ),
                fix: "deploy or resume it first (cargo xtask deploy, cargo xtask resume)"
                    .to_owned(),
            });
        }
        let started = Instant::now();
        if self.serves_snapshots().await? {
            let millis = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis());
            let snapshot = format!("{name}-savepoint-{millis}");
            let body = json!({
                "apiVersion": FLINK_API_VERSION,
                "kind": "FlinkStateSnapshot",
                "metadata": {"name": snapshot, "namespace": namespace,
                    "labels": {flink_eks_manifest::MANAGED_BY_LABEL.0: flink_eks_manifest::MANAGED_BY_LABEL.1}},
                "spec": {
                    "jobReference": {"kind": "FlinkDeployment", "name": name},
                    "savepoint": {"formatType": "CANONICAL", "disposeOnDelete": false},
                    "backoffLimit": 0,
                },
            });
            let object: DynamicObject = serde_json::from_value(body).map_err(|e| Error::Kube {
                action: format!("build FlinkStateSnapshot {namespace}/{snapshot}"),
                message: e.to_string(),
            })?;
            let action = format!("create FlinkStateSnapshot {namespace}/{snapshot}");
            self.snapshots(namespace)
                .create(&PostParams::default(), &object)
                .await
                .map_err(|e| from_kube(action, e))?;
            loop {
                let live = self
                    .snapshots(namespace)
                    .get(&snapshot)
                    .await
                    .map_err(|e| {
                        from_kube(format!("read FlinkStateSnapshot {namespace}/{snapshot}"), e)
                    })?;
                let status = live.data.get("status");
                match snapshot_progress(status) {
                    SnapshotProgress::Completed(path) => {
                        return Ok(Savepoint {
                            namespace: namespace.to_owned(),
                            deployment: name.to_owned(),
                            path,
                            trigger: SavepointTrigger::Snapshot,
                            snapshot: Some(snapshot),
                        });
                    }
                    SnapshotProgress::Failed(error) => {
                        return Err(Error::SavepointFailed {
                            namespace: namespace.to_owned(),
                            name: name.to_owned(),
                            by: format!("FlinkStateSnapshot {snapshot}"),
                            error,
                        });
                    }
                    SnapshotProgress::Pending(state) => {
                        if started.elapsed() > timeout {
                            return Err(Error::StateTimeout {
                                what: format!(
                                    "savepoint FlinkStateSnapshot {namespace}/{snapshot}"
                                ),
                                waited: started.elapsed(),
                                last: state.unwrap_or_else(|| "no status".to_owned()),
                            });
                        }
                    }
                }
                tokio::time::sleep(POLL).await;
            }
        }
        let nonce = object
            .get("spec")
            .and_then(|s| s.get("job"))
            .and_then(|j| j.get("savepointTriggerNonce"))
            .and_then(Value::as_i64)
            .unwrap_or(0)
            + 1;
        self.apply_job_field(
            namespace,
            name,
            SAVEPOINT_TRIGGER_MANAGER,
            json!({"savepointTriggerNonce": nonce}),
        )
        .await?;
        loop {
            let object = self.deployment_json(namespace, name).await?;
            let status = object.get("status").unwrap_or(&Value::Null);
            if let Some(path) = nonce_savepoint(status, nonce) {
                return Ok(Savepoint {
                    namespace: namespace.to_owned(),
                    deployment: name.to_owned(),
                    path,
                    trigger: SavepointTrigger::Nonce,
                    snapshot: None,
                });
            }
            if started.elapsed() > timeout {
                return Err(Error::StateTimeout {
                    what: format!(
                        "savepoint of FlinkDeployment {namespace}/{name} (savepointTriggerNonce {nonce})"
                    ),
                    waited: started.elapsed(),
                    last: str_at(status, &["error"])
                        .unwrap_or("no savepoint recorded")
                        .to_owned(),
                });
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Server-side applies `job.<fields>` alone as `manager`; answers the new generation.
    async fn apply_job_field(
        &self,
        namespace: &str,
        name: &str,
        manager: &str,
        job: Value,
    ) -> Result<i64> {
        let patch = json!({
            "apiVersion": FLINK_API_VERSION,
            "kind": "FlinkDeployment",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"job": job},
        });
        let action = format!("apply spec.job of FlinkDeployment {namespace}/{name}");
        let applied = self
            .deployments_dynamic(namespace)
            .patch(name, &PatchParams::apply(manager), &Patch::Apply(&patch))
            .await
            .map_err(|e| match e {
                kube::Error::Api(status) if status.code == 404 => Error::NotFound {
                    namespace: namespace.to_owned(),
                    name: name.to_owned(),
                },
                other => from_kube(action, other),
            })?;
        Ok(applied.metadata.generation.unwrap_or(0))
    }

    /// Suspends the job (`job.state: suspended`; in `savepoint` mode the operator stops it
    /// with a savepoint) and waits until the operator reports it `SUSPENDED`. Answers the
    /// savepoint the operator recorded, if any.
    pub async fn suspend(
        &self,
        namespace: &str,
        name: &str,
        timeout: Duration,
    ) -> Result<Option<String>> {
        let before = self.deployment_json(namespace, name).await?;
        let baseline = str_at(&before, &["status", "error"]).map(str::to_owned);
        let generation = self
            .apply_job_field(
                namespace,
                name,
                JOB_STATE_MANAGER,
                json!({"state": "suspended"}),
            )
            .await?;
        let started = Instant::now();
        loop {
            let object = self.deployment_json(namespace, name).await?;
            match suspend_outcome(&object, generation, baseline.as_deref()) {
                Some(Ok(())) => {
                    return Ok(
                        str_at(&object, &["status", "jobStatus", "upgradeSavepointPath"])
                            .map(str::to_owned),
                    );
                }
                Some(Err(error)) => {
                    return Err(Error::SavepointFailed {
                        namespace: namespace.to_owned(),
                        name: name.to_owned(),
                        by: "suspend".to_owned(),
                        error,
                    });
                }
                None if started.elapsed() > timeout => {
                    return Err(Error::StateTimeout {
                        what: format!("suspend of FlinkDeployment {namespace}/{name}"),
                        waited: started.elapsed(),
                        last: str_at(&object, &["status", "lifecycleState"])
                            .unwrap_or("no status")
                            .to_owned(),
                    });
                }
                None => tokio::time::sleep(POLL).await,
            }
        }
    }

    /// Resumes a suspended job (`job.state: running`) and waits until it runs and is stable.
    /// Answers the savepoint it restored from, if any.
    pub async fn resume(
        &self,
        namespace: &str,
        name: &str,
        timeout: Duration,
        progress: &dyn Progress<WatchEvent>,
    ) -> Result<Option<String>> {
        let generation = self
            .apply_job_field(
                namespace,
                name,
                JOB_STATE_MANAGER,
                json!({"state": "running"}),
            )
            .await?;
        self.wait_until_running(namespace, name, generation, timeout, progress)
            .await?;
        let object = self.deployment_json(namespace, name).await?;
        Ok(str_at(&object, &["status", "jobStatus", "upgradeSavepointPath"]).map(str::to_owned))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_update_says_how_state_is_carried() {
        use flink_eks_manifest::{PyFlinkJob, S3Location, UpgradeMode};
        let mut job = PyFlinkJob::new(
            "job",
            S3Location::new("bucket", "job.py").unwrap(),
            "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
            "image:1",
            "1.20.0",
        );
        assert_eq!(upgrade_with(&job.build().unwrap()), None);
        job.upgrade_mode = UpgradeMode::Savepoint;
        job.savepoints_dir = Some("s3://bucket/sp".to_owned());
        job.checkpoints_dir = Some("s3://bucket/cp".to_owned());
        assert_eq!(
            upgrade_with(&job.build().unwrap()),
            Some("upgrade with savepoint")
        );
    }

    #[test]
    fn a_snapshot_is_pending_until_completed_or_failed() {
        assert_eq!(snapshot_progress(None), SnapshotProgress::Pending(None));
        assert_eq!(
            snapshot_progress(Some(&json!({"state": "IN_PROGRESS"}))),
            SnapshotProgress::Pending(Some("IN_PROGRESS".to_owned()))
        );
        assert_eq!(
            snapshot_progress(Some(
                &json!({"state": "COMPLETED", "path": "s3://b/sp/savepoint-1"})
            )),
            SnapshotProgress::Completed("s3://b/sp/savepoint-1".to_owned())
        );
        assert_eq!(
            snapshot_progress(Some(
                &json!({"state": "FAILED", "error": "disk full", "failures": 1})
            )),
            SnapshotProgress::Failed("disk full".to_owned())
        );
        assert_eq!(
            snapshot_progress(Some(&json!({"state": "ABANDONED"}))),
            SnapshotProgress::Failed("the snapshot is ABANDONED".to_owned())
        );
    }

    #[test]
    fn the_newest_completed_resource_wins_over_the_status() {
        let snap = |name: &str, at: &str, state: &str, checkpoint: bool| {
            let mut spec = json!({"jobReference": {"name": "job"}});
            spec[if checkpoint {
                "checkpoint"
            } else {
                "savepoint"
            }] = json!({});
            json!({"metadata": {"name": name, "labels": {"snapshot.trigger-type": "MANUAL"}}, "spec": spec,
                "status": {"state": state, "path": format!("s3://b/{name}"), "resultTimestamp": at}})
        };
        let snapshots = [
            snap("a", "2026-01-01T00:00:01Z", "COMPLETED", false),
            snap("b", "2026-01-01T00:00:03Z", "COMPLETED", false),
            snap("c", "2026-01-01T00:00:04Z", "FAILED", false),
            snap("d", "2026-01-01T00:00:02Z", "COMPLETED", true),
        ];
        let status = json!({"jobStatus": {"upgradeSavepointPath": "s3://b/u",
            "savepointInfo": {"lastSavepoint": {"location": "s3://b/old", "timeStamp": 1}}}});
        let info = state_info(&status, &snapshots);
        assert_eq!(
            info.last_savepoint.unwrap().path.as_deref(),
            Some("s3://b/b")
        );
        assert_eq!(info.last_checkpoint.unwrap().source, "d");
        assert_eq!(info.upgrade_savepoint_path.as_deref(), Some("s3://b/u"));

        let info = state_info(&status, &[]);
        let last = info.last_savepoint.unwrap();
        assert_eq!(
            (last.path.as_deref(), last.source.as_str()),
            (Some("s3://b/old"), "status")
        );
        assert!(info.last_checkpoint.is_none());
        assert!(!state_info(&json!({}), &[]).has_state());
    }

    #[test]
    fn a_nonce_savepoint_is_the_one_with_that_nonce() {
        let status = json!({"jobStatus": {"savepointInfo": {"lastSavepoint": {"location": "s3://b/sp", "triggerNonce": 4}}}});
        assert_eq!(nonce_savepoint(&status, 4).as_deref(), Some("s3://b/sp"));
        assert_eq!(nonce_savepoint(&status, 5), None);
    }

    #[test]
    fn suspended_at_the_generation_or_a_new_error() {
        let object = |observed: i64, lifecycle: &str, error: Option<&str>| json!({"status": {"observedGeneration": observed, "lifecycleState": lifecycle, "error": error}});
        assert_eq!(
            suspend_outcome(&object(3, "SUSPENDED", None), 3, None),
            Some(Ok(()))
        );
        assert_eq!(suspend_outcome(&object(2, "STABLE", None), 3, None), None);
        let failed = r#"{"type":"org.apache.flink.util.FlinkException","message":"Failed to stop the job with savepoint: disk full"}"#;
        let outcome = suspend_outcome(&object(2, "STABLE", Some(failed)), 3, None);
        assert!(
            matches!(&outcome, Some(Err(e)) if e.contains("disk full")),
            "{outcome:?}"
        );
        // An error that was there before the suspend is not the suspend's.
        assert_eq!(
            suspend_outcome(&object(2, "STABLE", Some(failed)), 3, Some(failed)),
            None
        );
    }
}

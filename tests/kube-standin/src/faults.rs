//! Scripted faults, request counters, and the log of the operator's status writes.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Mutex, MutexGuard};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::meta;

/// The annotation on a FlinkDeployment that scripts a fault for it (a [`Fault`] as JSON, or
/// an array of them), for users of the stand-in's binary that cannot call
/// [`StandIn::set_fault`](crate::StandIn::set_fault).
pub const FAULT_ANNOTATION: &str = "standin.flink-eks.io/fault";

/// The annotation on a FlinkDeployment whose lines the job "prints" once it runs: they appear
/// in the JobManager log as a PyFlink job's output does (one line per line of the value).
pub const JOB_OUTPUT_ANNOTATION: &str = "standin.flink-eks.io/job-output";

/// A fault to script for a FlinkDeployment. Faults apply to the generations reconciled after
/// they are set, until [`StandIn::clear_faults`](crate::StandIn::clear_faults).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Fault {
    /// The JobManager pod's image cannot be pulled: the pod stays in `ImagePullBackOff`,
    /// `jobManagerDeploymentStatus` becomes `ERROR` and `status.error` says why.
    ImagePullFailure,
    /// The fetch initContainer exits 1 with `message` in its log; the pod goes to
    /// `Init:CrashLoopBackOff` and `jobManagerDeploymentStatus` becomes `ERROR`.
    InitContainerFailure {
        /// What the init container prints before failing (e.g. a checksum mismatch).
        message: String,
    },
    /// The job reaches `RUNNING`, then fails: `jobStatus.state` and `lifecycleState` become
    /// `FAILED`, `status.error` holds the error as JSON, the JobManager log the exception.
    JobFailed {
        /// The exception message.
        message: String,
    },
    /// Every watch on flinkdeployments (in the deployment's namespace) is cut after this many
    /// events: the connection is closed without the end of the chunked body.
    DropWatchAfter {
        /// Events delivered before the cut.
        events: u32,
    },
    /// Every savepoint of this deployment fails with `message`: a FlinkStateSnapshot goes to
    /// `FAILED` (once its `backoffLimit` is spent) with `status.error` the message; an upgrade
    /// or suspend in `savepoint` mode stops with `status.error` naming it and the job keeps
    /// running its last spec.
    SavepointFailure {
        /// The savepoint's failure, as Flink reports it.
        message: String,
    },
    /// The operator's reconcile throws `message` this many times (one per status step):
    /// `status.error` holds it as the operator's JSON (type `ReconciliationException`) and a
    /// Warning Event `Error` is recorded (its `count` growing) while the job keeps
    /// progressing; once the deployment is healthy (STABLE), `status.error` is cleared.
    TransientError {
        /// The exception's message.
        message: String,
        /// How many reconciles fail.
        reconciles: u32,
    },
    /// The delay between the operator's status steps for this deployment.
    SlowTransitions {
        /// Milliseconds between steps.
        millis: u64,
    },
}

/// Counters since the stand-in started.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// Every POST, PUT, PATCH and DELETE on a resource, whether or not it changed anything:
    /// a no-op server-side apply counts, and so does a refused one (what a client sent, as
    /// an audit log's request count).
    pub writes: u64,
    /// The writes that changed the store (a new resourceVersion).
    pub effective_writes: u64,
    /// The writes answered with an error `Status` (a stale `resourceVersion`, a field
    /// manager conflict, an object that exists, an invalid object, ...): they changed nothing.
    #[serde(default)]
    pub refused_writes: u64,
    /// Writes by `"<resource>[/<subresource>]:<METHOD>"`, e.g. `"flinkdeployments:PATCH"`.
    pub by_resource: BTreeMap<String, u64>,
    /// Watch requests.
    pub watches: u64,
}

/// How many status changes [`Registry`] keeps (the oldest are forgotten first).
const STATUS_CHANGES_KEPT: usize = 4096;

/// A change the stand-in's operator made to a FlinkDeployment's status, with the time it was
/// stored: what a watcher of the deployment should see next, and since when. Served by
/// `GET /standin/status-changes` (oldest first) so that a client's watch latency can be
/// measured from outside the process.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StatusChange {
    /// The FlinkDeployment's namespace.
    pub namespace: String,
    /// The FlinkDeployment's name.
    pub name: String,
    /// `metadata.generation` of the object as stored.
    pub generation: i64,
    /// `metadata.resourceVersion` of the object as stored.
    pub resource_version: String,
    /// When the write was stored, in microseconds since the Unix epoch, by the stand-in's
    /// clock: taken just before the store commits it (and wakes the watches), so that no
    /// watcher can see the change before this time.
    pub at_unix_micros: i64,
    /// The whole `status` as stored.
    pub status: Value,
}

/// Faults by deployment, the stats, and the recent status changes.
#[derive(Debug, Default)]
pub(crate) struct Registry {
    faults: Mutex<BTreeMap<(String, String), Vec<Fault>>>,
    stats: Mutex<Stats>,
    status_changes: Mutex<VecDeque<StatusChange>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Registry {
    /// Sets a fault, replacing one of the same kind for that deployment.
    pub(crate) fn set(&self, namespace: &str, name: &str, fault: Fault) {
        let mut faults = lock(&self.faults);
        let list = faults
            .entry((namespace.to_owned(), name.to_owned()))
            .or_default();
        list.retain(|f| std::mem::discriminant(f) != std::mem::discriminant(&fault));
        list.push(fault);
    }

    /// Clears every fault.
    pub(crate) fn clear(&self) {
        lock(&self.faults).clear();
    }

    /// The faults for a deployment: those set through the API, then its annotation's.
    pub(crate) fn for_deployment(
        &self,
        namespace: &str,
        name: &str,
        object: Option<&Value>,
    ) -> Vec<Fault> {
        let mut faults = lock(&self.faults)
            .get(&(namespace.to_owned(), name.to_owned()))
            .cloned()
            .unwrap_or_default();
        if let Some(text) = object.and_then(|o| meta::annotation(o, FAULT_ANNOTATION)) {
            match serde_json::from_str::<Value>(text) {
                Ok(Value::Array(items)) => {
                    faults.extend(
                        items
                            .into_iter()
                            .filter_map(|v| serde_json::from_value(v).ok()),
                    );
                }
                Ok(value) => faults.extend(serde_json::from_value::<Fault>(value).ok()),
                Err(e) => {
                    tracing::warn!(%namespace, %name, "ignoring unparsable {FAULT_ANNOTATION} annotation: {e}")
                }
            }
        }
        faults
    }

    /// The smallest `DropWatchAfter` among the faults of deployments in `namespace` (or
    /// anywhere, for a watch across namespaces).
    pub(crate) fn drop_watch_after<'a>(
        &self,
        namespace: Option<&str>,
        deployments: impl Iterator<Item = &'a Value>,
    ) -> Option<u32> {
        let from_api: Vec<u32> = lock(&self.faults)
            .iter()
            .filter(|((ns, _), _)| namespace.is_none_or(|n| n == ns))
            .flat_map(|(_, faults)| faults.iter())
            .filter_map(|f| match f {
                Fault::DropWatchAfter { events } => Some(*events),
                _ => None,
            })
            .collect();
        let from_annotations: Vec<u32> = deployments
            .filter(|d| namespace.is_none_or(|n| n == meta::namespace(d)))
            .flat_map(|d| self.for_deployment("", "", Some(d)))
            .filter_map(|f| match f {
                Fault::DropWatchAfter { events } => Some(events),
                _ => None,
            })
            .collect();
        from_api.into_iter().chain(from_annotations).min()
    }

    /// Counts a write: `Some(changed)` when it was answered with success, `None` when it
    /// was refused.
    pub(crate) fn count_write(&self, key: String, outcome: Option<bool>) {
        let mut stats = lock(&self.stats);
        stats.writes += 1;
        match outcome {
            Some(true) => stats.effective_writes += 1,
            Some(false) => {}
            None => stats.refused_writes += 1,
        }
        *stats.by_resource.entry(key).or_default() += 1;
    }

    /// Counts a watch.
    pub(crate) fn count_watch(&self) {
        lock(&self.stats).watches += 1;
    }

    /// A copy of the counters.
    pub(crate) fn stats(&self) -> Stats {
        lock(&self.stats).clone()
    }

    /// Records a status write of the operator: `object` is the FlinkDeployment as stored,
    /// `at_unix_micros` the time taken just before the store committed it.
    pub(crate) fn record_status_change(&self, object: &Value, at_unix_micros: i64) {
        let change = StatusChange {
            namespace: meta::namespace(object).to_owned(),
            name: meta::name(object).to_owned(),
            generation: meta::generation(object),
            resource_version: meta::meta_str(object, "resourceVersion")
                .unwrap_or_default()
                .to_owned(),
            at_unix_micros,
            status: object.get("status").cloned().unwrap_or(Value::Null),
        };
        let mut changes = lock(&self.status_changes);
        if changes.len() == STATUS_CHANGES_KEPT {
            changes.pop_front();
        }
        changes.push_back(change);
    }

    /// The recorded status changes, oldest first.
    pub(crate) fn status_changes(&self) -> Vec<StatusChange> {
        lock(&self.status_changes).iter().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn faults_serialize_with_a_kebab_case_kind() {
        let text = serde_json::to_string(&Fault::DropWatchAfter { events: 3 }).unwrap_or_default();
        assert_eq!(text, r#"{"kind":"drop-watch-after","events":3}"#);
        let parsed: Result<Fault, _> = serde_json::from_str(r#"{"kind":"image-pull-failure"}"#);
        assert_eq!(parsed.ok(), Some(Fault::ImagePullFailure));
    }

    #[test]
    fn faults_come_from_the_registry_and_the_annotation() {
        let registry = Registry::default();
        registry.set("ns", "a", Fault::SlowTransitions { millis: 1 });
        registry.set("ns", "a", Fault::SlowTransitions { millis: 2 });
        let annotated = json!({"metadata": {"namespace": "ns", "annotations": {
            FAULT_ANNOTATION: r#"{"kind":"job-failed","message":"boom"}"#}}});
        let faults = registry.for_deployment("ns", "a", Some(&annotated));
        assert_eq!(
            faults,
            [
                Fault::SlowTransitions { millis: 2 },
                Fault::JobFailed {
                    message: "boom".into()
                }
            ]
        );
        registry.set("ns", "b", Fault::DropWatchAfter { events: 5 });
        assert_eq!(
            registry.drop_watch_after(Some("ns"), std::iter::empty()),
            Some(5)
        );
        assert_eq!(
            registry.drop_watch_after(Some("other"), std::iter::empty()),
            None
        );
        registry.clear();
        assert!(registry.for_deployment("ns", "a", None).is_empty());
    }

    #[test]
    fn status_changes_are_kept_in_order_with_their_time() {
        let registry = Registry::default();
        for (at, state) in [(10, "CREATED"), (20, "DEPLOYED"), (30, "STABLE")] {
            registry.record_status_change(
                &json!({
                    "metadata": {"namespace": "ns", "name": "job", "generation": 2, "resourceVersion": state.len().to_string()},
                    "status": {"lifecycleState": state},
                }),
                at,
            );
        }
        let changes = registry.status_changes();
        let states: Vec<&str> = changes
            .iter()
            .map(|c| c.status["lifecycleState"].as_str().unwrap_or_default())
            .collect();
        assert_eq!(states, ["CREATED", "DEPLOYED", "STABLE"]);
        assert!(
            changes
                .iter()
                .all(|c| c.namespace == "ns" && c.name == "job" && c.generation == 2)
        );
        assert_eq!(changes[1].resource_version, "8");
        let times: Vec<i64> = changes.iter().map(|c| c.at_unix_micros).collect();
        assert_eq!(times, [10, 20, 30]);
    }
}

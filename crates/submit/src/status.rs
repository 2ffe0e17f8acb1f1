//! What the operator's status of a FlinkDeployment means: pure functions, no IO.
//!
//! The rules are the operator's own (Flink Kubernetes Operator 1.15):
//! - running and stable: `lifecycleState` STABLE, `jobStatus.state` RUNNING,
//!   `jobManagerDeploymentStatus` READY, and `observedGeneration` equal to
//!   `metadata.generation` (so a STABLE left over from the previous spec does not count);
//! - failed: `lifecycleState` FAILED or ROLLED_BACK, `jobStatus.state` FAILED, or
//!   `jobManagerDeploymentStatus` ERROR, for the current generation (with `status.error` as
//!   the message when there is one);
//! - anything else: still progressing. `status.error` alone is not a failure: the operator
//!   writes it on every reconcile error it retries and clears it once the deployment is
//!   healthy (`AbstractFlinkDeploymentObserver.clearErrorsIfDeploymentIsHealthy`); a wait
//!   fails on it only when it persists past a grace period ([`WaitSettings`]).

use std::fmt;
use std::time::{Duration, Instant};

use flink_eks_manifest::{
    FlinkDeployment, JobManagerDeploymentStatus, JobState, LifecycleState, ReconciliationState,
    SCRIPT_SHA256_ANNOTATION,
};
use serde::{Deserialize, Serialize};

/// Where a FlinkDeployment stands, read from its status alone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "phase", rename_all = "kebab-case")]
pub enum Phase {
    /// The operator has not brought the current generation to a running job yet.
    Progressing {
        /// What is still missing, in words (`waiting for the operator to observe generation 2`).
        waiting_for: String,
    },
    /// The job runs and the deployment is stable, for the current generation.
    Running,
    /// The job ran to its end (a bounded job) with the deployment stable.
    Finished,
    /// The operator reports a failure for the current generation.
    Failed {
        /// The operator's error, parsed from `status.error`, or made from the state that failed.
        error: OperatorError,
    },
}

impl Phase {
    /// Whether the phase is an end state ([`Phase::Running`], [`Phase::Finished`] or
    /// [`Phase::Failed`]).
    pub fn is_settled(&self) -> bool {
        !matches!(self, Phase::Progressing { .. })
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Phase::Progressing { waiting_for } => write!(f, "progressing ({waiting_for})"),
            Phase::Running => f.write_str("running"),
            Phase::Finished => f.write_str("finished"),
            Phase::Failed { error } => write!(f, "failed: {error}"),
        }
    }
}

/// The operator's error about a FlinkDeployment: `status.error`, which the operator writes
/// as JSON (`{"type": ..., "message": ..., "additionalMetadata": {...}, "throwableList": [...]}`),
/// or a failed state when it wrote no error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperatorError {
    /// The Java exception class, when known (`...exception.DeploymentFailedException`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_type: Option<String>,
    /// The message, as the operator gives it.
    pub message: String,
    /// The Kubernetes reason the operator attached (`ImagePullBackOff`, `CrashLoopBackOff`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The chain of causes, outermost first, as `Type: message`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub causes: Vec<String>,
}

impl fmt::Display for OperatorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(error_type) = &self.error_type {
            write!(f, "{}: ", short_type(error_type))?;
        }
        f.write_str(&self.message)?;
        if let Some(reason) = &self.reason {
            write!(f, " ({reason})")?;
        }
        for cause in &self.causes {
            write!(f, "; caused by {cause}")?;
        }
        Ok(())
    }
}

/// The last segment of a Java class name.
fn short_type(java_class: &str) -> &str {
    java_class.rsplit('.').next().unwrap_or(java_class)
}

/// The shape the operator serializes its exceptions in (`FlinkResourceException`).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ResourceException {
    #[serde(rename = "type")]
    error_type: Option<String>,
    message: Option<String>,
    #[serde(default)]
    additional_metadata: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(default)]
    throwable_list: Vec<ResourceException>,
}

/// Parses `status.error`: the operator's JSON when it is that, the text itself otherwise
/// (the operator falls back to plain text when it cannot serialize an exception).
/// `None` for an absent or blank error.
pub fn parse_operator_error(error: &str) -> Option<OperatorError> {
    let text = error.trim();
    if text.is_empty() || text == "null" {
        return None;
    }
    let Ok(parsed) = serde_json::from_str::<ResourceException>(text) else {
        return Some(OperatorError {
            error_type: None,
            message: text.to_owned(),
            reason: None,
            causes: Vec::new(),
        });
    };
    let describe = |e: &ResourceException| match (&e.error_type, &e.message) {
        (Some(t), Some(m)) => format!("{}: {m}", short_type(t)),
        (Some(t), None) => short_type(t).to_owned(),
        (None, Some(m)) => m.clone(),
        (None, None) => String::new(),
    };
    let mut causes: Vec<String> = parsed
        .throwable_list
        .iter()
        .map(describe)
        .filter(|c| !c.is_empty())
        .collect();
    // The operator's messages often repeat the cause's `Type: message` verbatim.
    let message = parsed
        .message
        .clone()
        .unwrap_or_else(|| match causes.last() {
            Some(last) => last.clone(),
            None => "the operator reported an error without a message".to_owned(),
        });
    causes.retain(|c| !message.contains(c.as_str()));
    let reason = parsed
        .additional_metadata
        .as_ref()
        .and_then(|m| m.get("reason"))
        .and_then(serde_json::Value::as_str)
        .map(str::to_owned);
    Some(OperatorError {
        error_type: parsed.error_type,
        message,
        reason,
        causes,
    })
}

/// The status values that matter while waiting, as one comparable snapshot: what is shown
/// each time it changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObservedState {
    /// `metadata.generation`: the spec version the cluster holds.
    pub generation: Option<i64>,
    /// The generation the operator last reconciled.
    pub observed_generation: Option<i64>,
    /// `status.lifecycleState`.
    pub lifecycle_state: Option<LifecycleState>,
    /// `status.jobStatus.state`.
    pub job_state: Option<JobState>,
    /// `status.jobManagerDeploymentStatus`.
    pub job_manager: Option<JobManagerDeploymentStatus>,
    /// `status.reconciliationStatus.state`.
    pub reconciliation: Option<ReconciliationState>,
    /// The operator's error, parsed, when it reports one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<OperatorError>,
}

impl ObservedState {
    /// The snapshot of `deployment`'s metadata and status.
    pub fn of(deployment: &FlinkDeployment) -> Self {
        let status = deployment.status.as_ref();
        ObservedState {
            generation: deployment.metadata.generation,
            observed_generation: observed_generation(deployment),
            lifecycle_state: status.and_then(|s| s.lifecycle_state.clone()),
            job_state: status
                .and_then(|s| s.job_status.as_ref())
                .and_then(|j| j.state.clone()),
            job_manager: status.and_then(|s| s.job_manager_deployment_status.clone()),
            reconciliation: status
                .and_then(|s| s.reconciliation_status.as_ref())
                .and_then(|r| r.state.clone()),
            error: status
                .and_then(|s| s.error.as_deref())
                .and_then(parse_operator_error),
        }
    }

    /// Whether the operator wrote any status at all.
    pub fn has_status(&self) -> bool {
        self.observed_generation.is_some()
            || self.lifecycle_state.is_some()
            || self.job_state.is_some()
            || self.job_manager.is_some()
            || self.reconciliation.is_some()
            || self.error.is_some()
    }

    /// Whether the operator has reconciled the generation the cluster holds.
    pub fn is_current(&self) -> bool {
        self.generation.is_some() && self.observed_generation == self.generation
    }
}

impl fmt::Display for ObservedState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let or_none = |v: Option<String>| v.unwrap_or_else(|| "-".to_owned());
        write!(
            f,
            "lifecycle {}, job {}, JobManager {}, reconciliation {}",
            or_none(self.lifecycle_state.as_ref().map(ToString::to_string)),
            or_none(self.job_state.as_ref().map(ToString::to_string)),
            or_none(self.job_manager.as_ref().map(ToString::to_string)),
            or_none(self.reconciliation.as_ref().map(ToString::to_string)),
        )?;
        write!(
            f,
            " (generation {}, observed {})",
            or_none(self.generation.map(|g| g.to_string())),
            or_none(self.observed_generation.map(|g| g.to_string())),
        )?;
        if let Some(error) = &self.error {
            write!(f, "; error: {error}")?;
        }
        Ok(())
    }
}

/// The generation the operator last reconciled: `status.observedGeneration`, or, from an
/// operator that does not write it, the generation recorded in
/// `status.reconciliationStatus.lastReconciledSpec` (`resource_metadata.metadata.generation`).
pub fn observed_generation(deployment: &FlinkDeployment) -> Option<i64> {
    let status = deployment.status.as_ref()?;
    if let Some(generation) = status.observed_generation {
        return Some(generation);
    }
    let spec = status
        .reconciliation_status
        .as_ref()?
        .last_reconciled_spec
        .as_deref()?;
    let value: serde_json::Value = serde_json::from_str(spec).ok()?;
    value
        .pointer("/resource_metadata/metadata/generation")
        .and_then(serde_json::Value::as_i64)
}

/// Interprets `deployment`'s status against its own `metadata.generation`.
pub fn interpret(deployment: &FlinkDeployment) -> Phase {
    interpret_state(&ObservedState::of(deployment))
}

/// Interprets a snapshot (see [`interpret`]).
pub fn interpret_state(state: &ObservedState) -> Phase {
    let Some(generation) = state.generation else {
        return Phase::Progressing {
            waiting_for: "the API server to assign a generation".into(),
        };
    };
    if !state.is_current() {
        return Phase::Progressing {
            waiting_for: format!("the operator to reconcile generation {generation}"),
        };
    }
    if let Some(error) = failure(state) {
        return Phase::Failed { error };
    }
    let stable = state.lifecycle_state == Some(LifecycleState::Stable);
    let ready = state.job_manager == Some(JobManagerDeploymentStatus::Ready);
    match &state.job_state {
        Some(JobState::Running) if stable && ready => Phase::Running,
        Some(JobState::Finished) if stable => Phase::Finished,
        _ => {
            if let Some(error) = &state.error {
                return Phase::Progressing {
                    waiting_for: format!("the operator to retry after: {error}"),
                };
            }
            let mut missing = Vec::new();
            if !stable {
                missing.push("lifecycle STABLE");
            }
            if state.job_state != Some(JobState::Running) {
                missing.push("job RUNNING");
            }
            if !ready {
                missing.push("JobManager READY");
            }
            Phase::Progressing {
                waiting_for: missing.join(", "),
            }
        }
    }
}

/// The failure a current-generation snapshot shows, if any: a terminal state, with the
/// operator's error as its message when it wrote one.
fn failure(state: &ObservedState) -> Option<OperatorError> {
    let from_state = |message: String| {
        state.error.clone().unwrap_or(OperatorError {
            error_type: None,
            message,
            reason: None,
            causes: Vec::new(),
        })
    };
    if state.lifecycle_state == Some(LifecycleState::Failed) {
        return Some(from_state("the operator set lifecycleState FAILED".into()));
    }
    if state.lifecycle_state == Some(LifecycleState::RolledBack) {
        return Some(from_state(
            "the operator rolled the deployment back to its last stable spec".into(),
        ));
    }
    if state.job_state == Some(JobState::Failed) {
        return Some(from_state("the Flink job is FAILED".into()));
    }
    if state.job_manager == Some(JobManagerDeploymentStatus::Error) {
        return Some(from_state("the JobManager deployment is in ERROR".into()));
    }
    None
}

/// How long a wait gives the operator before it concludes something is wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaitSettings {
    /// A FlinkDeployment with no status at all after this long fails: the operator is not
    /// installed, does not watch the namespace, or ignores the Flink version.
    pub no_status_window: Duration,
    /// A `status.error` still there after this long, without a terminal state, fails.
    pub error_grace: Duration,
}

impl WaitSettings {
    /// The default no-status window: 30 s. A watching operator writes a status within one
    /// reconcile (seconds); the window leaves room for a busy operator.
    pub const DEFAULT_NO_STATUS_WINDOW: Duration = Duration::from_secs(30);

    /// The default grace for `status.error`: 120 s, the first six retries of the operator's
    /// default backoff (`kubernetes.operator.retry.initial.interval` 5 s, `.interval.multiplier`
    /// 1.5: retries at 5, 12.5, 23.8, 40.6, 65.9 and 103.9 s). An error that survives them is
    /// not going away by itself.
    pub const DEFAULT_ERROR_GRACE: Duration = Duration::from_secs(120);
}

impl Default for WaitSettings {
    fn default() -> Self {
        WaitSettings {
            no_status_window: Self::DEFAULT_NO_STATUS_WINDOW,
            error_grace: Self::DEFAULT_ERROR_GRACE,
        }
    }
}

/// Why a wait stopped before its timeout, with no terminal state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Stall {
    /// The operator wrote no status within the window.
    NoStatus,
    /// `status.error` stayed past the grace period.
    ErrorPersisted(OperatorError),
}

/// Follows successive snapshots while waiting for one generation, and decides when the
/// wait is over. Time is given to it, so it does no IO and is tested without a clock.
#[derive(Debug, Clone)]
pub(crate) struct WaitTracker {
    generation: i64,
    settings: WaitSettings,
    started: Instant,
    saw_status: bool,
    error_since: Option<(OperatorError, Instant)>,
    last: Option<ObservedState>,
    history: std::collections::VecDeque<ObservedState>,
}

/// How many distinct states a wait remembers for its report.
pub(crate) const HISTORY_LEN: usize = 12;

impl WaitTracker {
    #[cfg(test)]
    pub(crate) fn new(generation: i64) -> Self {
        Self::with_settings(generation, WaitSettings::default(), Instant::now())
    }

    pub(crate) fn with_settings(generation: i64, settings: WaitSettings, started: Instant) -> Self {
        WaitTracker {
            generation,
            settings,
            started,
            saw_status: false,
            error_since: None,
            last: None,
            history: Default::default(),
        }
    }

    /// Records `state` (now); returns whether it differs from the previous one, and the phase.
    #[cfg(test)]
    pub(crate) fn observe(&mut self, state: ObservedState) -> (bool, Phase) {
        self.observe_at(state, Instant::now())
    }

    /// Records `state` seen at `now`.
    pub(crate) fn observe_at(&mut self, state: ObservedState, now: Instant) -> (bool, Phase) {
        self.saw_status |= state.has_status();
        match (&state.error, &self.error_since) {
            (None, _) => self.error_since = None,
            (Some(error), Some((since_error, _))) if since_error == error => {}
            (Some(error), _) => self.error_since = Some((error.clone(), now)),
        }
        let changed = self.last.as_ref() != Some(&state);
        if changed {
            if self.history.len() == HISTORY_LEN {
                self.history.pop_front();
            }
            self.history.push_back(state.clone());
        }
        let phase = if state.generation.is_some_and(|g| g < self.generation) {
            Phase::Progressing {
                waiting_for: format!("generation {} to reach the API server", self.generation),
            }
        } else {
            interpret_state(&state)
        };
        self.last = Some(state);
        (changed, phase)
    }

    /// Whether the wait must stop at `now` without a terminal state: no status within the
    /// window, or an error past its grace.
    pub(crate) fn stalled(&self, now: Instant) -> Option<Stall> {
        if !self.saw_status && now.duration_since(self.started) >= self.settings.no_status_window {
            return Some(Stall::NoStatus);
        }
        match &self.error_since {
            Some((error, since)) if now.duration_since(*since) >= self.settings.error_grace => {
                Some(Stall::ErrorPersisted(error.clone()))
            }
            _ => None,
        }
    }

    /// The next instant at which [`WaitTracker::stalled`] may change its answer.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        let window = (!self.saw_status).then(|| self.started + self.settings.no_status_window);
        let grace = self
            .error_since
            .as_ref()
            .map(|(_, since)| *since + self.settings.error_grace);
        match (window, grace) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Whether any status was seen.
    #[cfg(test)]
    pub(crate) fn saw_status(&self) -> bool {
        self.saw_status
    }

    /// The distinct states seen, oldest first (at most [`HISTORY_LEN`]).
    pub(crate) fn history(&self) -> Vec<ObservedState> {
        self.history.iter().cloned().collect()
    }
}

/// Whether the script running in the cluster is the local one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ScriptSync {
    /// The deployed checksum equals the local one.
    UpToDate,
    /// They differ: the local script was changed since the last deploy.
    Differs,
    /// One of the two is unknown (no local script given, or no annotation deployed).
    Unknown,
}

/// Everything `status` shows about one FlinkDeployment, in one serializable view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusView {
    /// Namespace of the FlinkDeployment.
    pub namespace: String,
    /// Name of the FlinkDeployment.
    pub name: String,
    /// The phase the status shows (flattened: `"phase": "running"`, with its details beside it).
    #[serde(flatten)]
    pub phase: Phase,
    /// The status values, with the generations.
    pub state: ObservedState,
    /// The Flink image in the spec.
    pub image: Option<String>,
    /// The script checksum the deployed spec carries ([`SCRIPT_SHA256_ANNOTATION`]).
    pub deployed_sha256: Option<String>,
    /// The checksum of the local script, when one was given.
    pub local_sha256: Option<String>,
    /// Whether those two agree.
    pub script: ScriptSync,
    /// Flink's job id, once the job was submitted.
    pub job_id: Option<String>,
}

impl StatusView {
    /// The view of `deployment`, with the local script's checksum when known.
    pub fn of(deployment: &FlinkDeployment, local_sha256: Option<&str>) -> Self {
        let deployed_sha256 = deployed_script_sha256(deployment);
        let script = match (deployed_sha256.as_deref(), local_sha256) {
            (Some(deployed), Some(local)) if deployed.eq_ignore_ascii_case(local) => {
                ScriptSync::UpToDate
            }
            (Some(_), Some(_)) => ScriptSync::Differs,
            _ => ScriptSync::Unknown,
        };
        StatusView {
            namespace: deployment.metadata.namespace.clone().unwrap_or_default(),
            name: deployment.metadata.name.clone().unwrap_or_default(),
            phase: interpret(deployment),
            state: ObservedState::of(deployment),
            image: deployment.spec.image.clone(),
            deployed_sha256,
            local_sha256: local_sha256.map(str::to_owned),
            script,
            job_id: deployment
                .status
                .as_ref()
                .and_then(|s| s.job_status.as_ref())
                .and_then(|j| j.job_id.clone()),
        }
    }
}

impl fmt::Display for StatusView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let dash = |v: Option<&str>| v.unwrap_or("-").to_owned();
        let state = &self.state;
        writeln!(
            f,
            "FlinkDeployment {}/{}: {}",
            self.namespace, self.name, self.phase
        )?;
        writeln!(
            f,
            "  lifecycle:      {}",
            dash(state.lifecycle_state.as_ref().map(LifecycleState::as_str))
        )?;
        writeln!(
            f,
            "  job:            {}",
            dash(state.job_state.as_ref().map(JobState::as_str))
        )?;
        writeln!(
            f,
            "  JobManager:     {}",
            dash(
                state
                    .job_manager
                    .as_ref()
                    .map(JobManagerDeploymentStatus::as_str)
            )
        )?;
        writeln!(
            f,
            "  generation:     {} (operator observed {})",
            dash(state.generation.map(|g| g.to_string()).as_deref()),
            dash(state.observed_generation.map(|g| g.to_string()).as_deref()),
        )?;
        writeln!(f, "  image:          {}", dash(self.image.as_deref()))?;
        writeln!(
            f,
            "  script sha256:  {} (deployed)",
            dash(self.deployed_sha256.as_deref())
        )?;
        if let Some(local) = &self.local_sha256 {
            let verdict = match self.script {
                ScriptSync::UpToDate => "same as deployed",
                ScriptSync::Differs => "differs: submit to deploy it",
                ScriptSync::Unknown => "deployed checksum unknown",
            };
            writeln!(f, "                  {local} (local, {verdict})")?;
        }
        if let Some(error) = &state.error {
            writeln!(f, "  error:          {error}")?;
        }
        Ok(())
    }
}

/// The script checksum a FlinkDeployment carries: its pod template's
/// [`SCRIPT_SHA256_ANNOTATION`] (what the pods run), else the resource's own.
pub fn deployed_script_sha256(deployment: &FlinkDeployment) -> Option<String> {
    let from_pod_template = deployment
        .spec
        .pod_template
        .as_ref()
        .and_then(|t| t.metadata.as_ref())
        .and_then(|m| m.annotations.as_ref())
        .and_then(|a| a.get(SCRIPT_SHA256_ANNOTATION));
    let from_resource = deployment
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(SCRIPT_SHA256_ANNOTATION));
    from_pod_template.or(from_resource).cloned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A FlinkDeployment as the API server returns it, with `status` as given.
    fn deployment(generation: i64, status: serde_json::Value) -> FlinkDeployment {
        let mut object = json!({
            "apiVersion": "flink.apache.org/v1beta1",
            "kind": "FlinkDeployment",
            "metadata": {
                "name": "python-example-s3",
                "namespace": "default",
                "generation": generation,
                "resourceVersion": "4711",
                "annotations": {SCRIPT_SHA256_ANNOTATION: "aa".repeat(32)}
            },
            "spec": {
                "image": "hiha2/flink-s3:latest",
                "flinkVersion": "v1_20",
                "podTemplate": {"metadata": {"annotations": {SCRIPT_SHA256_ANNOTATION: "bb".repeat(32)}}},
                "job": {"jarURI": "local:///opt/flink/opt/flink-python-1.20.0.jar", "upgradeMode": "stateless"}
            }
        });
        if !status.is_null() {
            object["status"] = status;
        }
        serde_json::from_value(object).unwrap()
    }

    fn last_reconciled(generation: i64) -> String {
        json!({
            "spec": {"image": "hiha2/flink-s3:latest"},
            "resource_metadata": {
                "apiVersion": "flink.apache.org/v1beta1",
                "metadata": {"generation": generation},
                "firstDeployment": generation == 1
            }
        })
        .to_string()
    }

    /// The status the operator writes once the job runs (operator 1.15, native mode).
    fn stable_running(observed: i64) -> serde_json::Value {
        json!({
            "clusterInfo": {"flink-revision": "b1fbd9a @ 2024-07-25T10:10:10+02:00", "flink-version": "1.20.0",
                            "total-cpu": "2.0", "total-memory": "4294967296"},
            "jobManagerDeploymentStatus": "READY",
            "jobStatus": {
                "checkpointInfo": {"lastPeriodicCheckpointTimestamp": 0},
                "jobId": "e1d2f4a0b5c6d7e8f9a0b1c2d3e4f5a6",
                "jobName": "python-example-s3",
                "savepointInfo": {"lastPeriodicSavepointTimestamp": 0, "savepointHistory": []},
                "startTime": "1732700000000",
                "state": "RUNNING",
                "updateTime": "1732700012345"
            },
            "lifecycleState": "STABLE",
            "observedGeneration": observed,
            "reconciliationStatus": {
                "lastReconciledSpec": last_reconciled(observed),
                "lastStableSpec": last_reconciled(observed),
                "reconciliationTimestamp": 1732700000000i64,
                "state": "DEPLOYED"
            },
            "taskManager": {"labelSelector": "component=taskmanager,app=python-example-s3", "replicas": 1}
        })
    }

    const IMAGE_PULL_ERROR: &str = r#"{"type":"org.apache.flink.kubernetes.operator.exception.DeploymentFailedException","message":"Back-off pulling image \"hiha2/flink-s3:typo\"","additionalMetadata":{"reason":"ImagePullBackOff"},"throwableList":[]}"#;

    const JOB_FAILED_ERROR: &str = r#"{"type":"org.apache.flink.kubernetes.operator.exception.ReconciliationException","message":"org.apache.flink.runtime.JobException: Recovery is suppressed by NoRestartBackoffTimeStrategy","additionalMetadata":{},"throwableList":[{"type":"org.apache.flink.runtime.JobException","message":"Recovery is suppressed by NoRestartBackoffTimeStrategy","additionalMetadata":{}},{"type":"org.apache.flink.api.python.shaded.py4j.Py4JException","message":"ZeroDivisionError: division by zero","additionalMetadata":{}}]}"#;

    #[test]
    fn no_status_yet_is_progressing() {
        let phase = interpret(&deployment(1, serde_json::Value::Null));
        assert!(matches!(phase, Phase::Progressing { .. }), "{phase:?}");
        assert!(
            phase.to_string().contains("reconcile generation 1"),
            "{phase}"
        );
    }

    #[test]
    fn first_deployment_in_progress() {
        let d = deployment(
            1,
            json!({
                "jobManagerDeploymentStatus": "DEPLOYING",
                "jobStatus": {"state": "RECONCILING", "jobName": "python-example-s3"},
                "lifecycleState": "DEPLOYED",
                "observedGeneration": 1,
                "reconciliationStatus": {"state": "DEPLOYED", "lastReconciledSpec": last_reconciled(1)}
            }),
        );
        let Phase::Progressing { waiting_for } = interpret(&d) else {
            panic!("{:?}", interpret(&d))
        };
        assert_eq!(
            waiting_for,
            "lifecycle STABLE, job RUNNING, JobManager READY"
        );
    }

    #[test]
    fn stable_and_running_for_the_current_generation_is_running() {
        let d = deployment(3, stable_running(3));
        assert_eq!(interpret(&d), Phase::Running);
        assert!(interpret(&d).is_settled());
    }

    #[test]
    fn an_old_stable_is_not_the_new_generation_running() {
        // Just after a changed spec: the status still describes generation 2.
        let d = deployment(3, stable_running(2));
        let phase = interpret(&d);
        assert!(matches!(phase, Phase::Progressing { .. }), "{phase:?}");
        assert!(!phase.is_settled());
    }

    #[test]
    fn generation_falls_back_to_the_last_reconciled_spec() {
        let mut status = stable_running(2);
        status.as_object_mut().unwrap().remove("observedGeneration");
        let d = deployment(2, status);
        assert_eq!(observed_generation(&d), Some(2));
        assert_eq!(interpret(&d), Phase::Running);
        let mut old = stable_running(1);
        old.as_object_mut().unwrap().remove("observedGeneration");
        assert!(matches!(
            interpret(&deployment(2, old)),
            Phase::Progressing { .. }
        ));
    }

    #[test]
    fn job_manager_error_with_the_operator_message() {
        let d = deployment(
            1,
            json!({
                "jobManagerDeploymentStatus": "ERROR",
                "jobStatus": {"state": "RECONCILING"},
                "lifecycleState": "DEPLOYED",
                "observedGeneration": 1,
                "reconciliationStatus": {"state": "DEPLOYED", "lastReconciledSpec": last_reconciled(1)},
                "error": IMAGE_PULL_ERROR
            }),
        );
        let Phase::Failed { error } = interpret(&d) else {
            panic!("{:?}", interpret(&d))
        };
        assert_eq!(
            error.error_type.as_deref(),
            Some("org.apache.flink.kubernetes.operator.exception.DeploymentFailedException")
        );
        assert_eq!(
            error.message,
            "Back-off pulling image \"hiha2/flink-s3:typo\""
        );
        assert_eq!(error.reason.as_deref(), Some("ImagePullBackOff"));
        assert_eq!(
            error.to_string(),
            "DeploymentFailedException: Back-off pulling image \"hiha2/flink-s3:typo\" (ImagePullBackOff)"
        );
    }

    #[test]
    fn job_failed_with_its_causes() {
        let d = deployment(
            2,
            json!({
                "jobManagerDeploymentStatus": "READY",
                "jobStatus": {"state": "FAILED", "jobId": "e1d2f4a0b5c6d7e8f9a0b1c2d3e4f5a6"},
                "lifecycleState": "FAILED",
                "observedGeneration": 2,
                "reconciliationStatus": {"state": "DEPLOYED", "lastReconciledSpec": last_reconciled(2)},
                "error": JOB_FAILED_ERROR
            }),
        );
        let Phase::Failed { error } = interpret(&d) else {
            panic!("{:?}", interpret(&d))
        };
        assert!(error.message.contains("Recovery is suppressed"), "{error}");
        // The first cause repeats the message; the Python error is kept.
        assert_eq!(
            error.causes,
            vec!["Py4JException: ZeroDivisionError: division by zero"]
        );
        assert!(
            error
                .to_string()
                .contains("caused by Py4JException: ZeroDivisionError"),
            "{error}"
        );
    }

    #[test]
    fn failed_states_without_an_error_text_still_fail() {
        for (lifecycle, job, jm, expected) in [
            (
                "FAILED",
                "RECONCILING",
                "DEPLOYING",
                "lifecycleState FAILED",
            ),
            ("DEPLOYED", "FAILED", "READY", "job is FAILED"),
            (
                "DEPLOYED",
                "RECONCILING",
                "ERROR",
                "JobManager deployment is in ERROR",
            ),
            (
                "ROLLED_BACK",
                "RUNNING",
                "READY",
                "rolled the deployment back",
            ),
        ] {
            let d = deployment(
                1,
                json!({"lifecycleState": lifecycle, "jobStatus": {"state": job},
                       "jobManagerDeploymentStatus": jm, "observedGeneration": 1}),
            );
            let Phase::Failed { error } = interpret(&d) else {
                panic!("{lifecycle}: {:?}", interpret(&d))
            };
            assert!(
                error.message.contains(expected),
                "{lifecycle}/{job}/{jm}: {error}"
            );
        }
    }

    #[test]
    fn an_error_of_an_older_generation_is_not_this_generations_failure() {
        let d = deployment(
            3,
            json!({"lifecycleState": "FAILED", "jobStatus": {"state": "FAILED"},
                   "jobManagerDeploymentStatus": "READY", "observedGeneration": 2, "error": JOB_FAILED_ERROR}),
        );
        assert!(matches!(interpret(&d), Phase::Progressing { .. }));
    }

    #[test]
    fn a_finished_bounded_job_is_settled() {
        let mut status = stable_running(1);
        status["jobStatus"]["state"] = json!("FINISHED");
        assert_eq!(interpret(&deployment(1, status)), Phase::Finished);
    }

    #[test]
    fn unknown_values_from_a_newer_operator_keep_waiting() {
        let mut status = stable_running(1);
        status["lifecycleState"] = json!("HIBERNATING");
        let phase = interpret(&deployment(1, status));
        assert!(matches!(phase, Phase::Progressing { .. }), "{phase:?}");
    }

    #[test]
    fn operator_errors_parse_json_and_plain_text() {
        assert_eq!(parse_operator_error(""), None);
        assert_eq!(parse_operator_error("  "), None);
        let plain = parse_operator_error("java.lang.IllegalStateException: boom").unwrap();
        assert_eq!(plain.message, "java.lang.IllegalStateException: boom");
        assert_eq!(plain.error_type, None);
        let no_message = parse_operator_error(
            r#"{"type":"org.apache.flink.kubernetes.operator.exception.ReconciliationException","throwableList":[{"type":"java.net.UnknownHostException","message":"flink-rest"}]}"#,
        )
        .unwrap();
        assert_eq!(no_message.message, "UnknownHostException: flink-rest");
        assert!(no_message.causes.is_empty());
        // Validation errors are plain messages in the operator's JSON, without a type.
        let validation =
            parse_operator_error(r#"{"message":"Job parallelism must be larger than 0"}"#).unwrap();
        assert_eq!(
            validation.to_string(),
            "Job parallelism must be larger than 0"
        );
    }

    #[test]
    fn observed_state_reads_as_one_line() {
        let state = ObservedState::of(&deployment(3, stable_running(2)));
        assert_eq!(
            state.to_string(),
            "lifecycle STABLE, job RUNNING, JobManager READY, reconciliation DEPLOYED (generation 3, observed 2)"
        );
        assert!(!state.is_current());
    }

    #[test]
    fn progress_waits_past_the_old_stable_for_the_new_generation() {
        let mut progress = WaitTracker::new(2);
        let (changed, phase) =
            progress.observe(ObservedState::of(&deployment(2, stable_running(1))));
        assert!(changed);
        assert!(matches!(phase, Phase::Progressing { .. }));
        // The same state again is no change.
        let (changed, _) = progress.observe(ObservedState::of(&deployment(2, stable_running(1))));
        assert!(!changed);
        let upgrading = json!({"lifecycleState": "UPGRADING", "jobStatus": {"state": "RECONCILING"},
                               "jobManagerDeploymentStatus": "DEPLOYING", "observedGeneration": 2,
                               "reconciliationStatus": {"state": "UPGRADING"}});
        let (changed, phase) = progress.observe(ObservedState::of(&deployment(2, upgrading)));
        assert!(changed);
        assert!(matches!(phase, Phase::Progressing { .. }));
        let (_, phase) = progress.observe(ObservedState::of(&deployment(2, stable_running(2))));
        assert_eq!(phase, Phase::Running);
        assert_eq!(progress.history().len(), 3);
    }

    #[test]
    fn progress_ignores_an_object_older_than_the_generation_waited_for() {
        let mut progress = WaitTracker::new(5);
        let (_, phase) = progress.observe(ObservedState::of(&deployment(4, stable_running(4))));
        assert!(matches!(phase, Phase::Progressing { .. }), "{phase:?}");
    }

    #[test]
    fn an_error_the_operator_retries_is_shown_not_failed_and_fails_only_past_its_grace() {
        let t0 = Instant::now();
        let settings = WaitSettings {
            no_status_window: Duration::from_secs(30),
            error_grace: Duration::from_secs(120),
        };
        let mut progress = WaitTracker::with_settings(2, settings, t0);
        let (_, phase) =
            progress.observe_at(ObservedState::of(&deployment(2, stable_running(1))), t0);
        assert!(matches!(phase, Phase::Progressing { .. }));
        let mut retried = stable_running(2);
        retried["lifecycleState"] = json!("DEPLOYED");
        retried["jobStatus"]["state"] = json!("RECONCILING");
        retried["error"] = json!(
            r#"{"type":"org.apache.flink.kubernetes.operator.exception.ReconciliationException","message":"java.net.SocketTimeoutException: timeout"}"#
        );
        let at = |s: u64| t0 + Duration::from_secs(s);
        let (_, phase) =
            progress.observe_at(ObservedState::of(&deployment(2, retried.clone())), at(10));
        let Phase::Progressing { waiting_for } = &phase else {
            panic!("{phase:?}")
        };
        assert!(
            waiting_for.contains("retry after") && waiting_for.contains("SocketTimeoutException"),
            "{waiting_for}"
        );
        assert_eq!(progress.stalled(at(100)), None);
        assert_eq!(progress.next_deadline(), Some(at(130)));
        // The same error again does not restart the grace; past it, the wait fails on it.
        progress.observe_at(ObservedState::of(&deployment(2, retried.clone())), at(60));
        let Some(Stall::ErrorPersisted(error)) = progress.stalled(at(130)) else {
            panic!("{:?}", progress.stalled(at(130)))
        };
        assert!(error.message.contains("SocketTimeoutException"), "{error}");
        // Cleared in time: no failure, and then RUNNING.
        let mut cleared = WaitTracker::with_settings(2, settings, t0);
        cleared.observe_at(ObservedState::of(&deployment(2, retried)), at(10));
        let (_, phase) =
            cleared.observe_at(ObservedState::of(&deployment(2, stable_running(2))), at(20));
        assert_eq!(phase, Phase::Running);
        assert_eq!(cleared.stalled(at(500)), None);
        assert_eq!(cleared.next_deadline(), None);
    }

    #[test]
    fn no_status_within_the_window_stalls_and_any_status_ends_the_window() {
        let t0 = Instant::now();
        let settings = WaitSettings {
            no_status_window: Duration::from_secs(30),
            error_grace: Duration::from_secs(120),
        };
        let mut progress = WaitTracker::with_settings(1, settings, t0);
        let (_, phase) = progress.observe_at(
            ObservedState::of(&deployment(1, serde_json::Value::Null)),
            t0,
        );
        assert!(matches!(phase, Phase::Progressing { .. }));
        assert_eq!(progress.next_deadline(), Some(t0 + Duration::from_secs(30)));
        assert_eq!(progress.stalled(t0 + Duration::from_secs(29)), None);
        assert_eq!(
            progress.stalled(t0 + Duration::from_secs(30)),
            Some(Stall::NoStatus)
        );
        assert!(!progress.saw_status());
        let mut seen = WaitTracker::with_settings(1, settings, t0);
        seen.observe_at(
            ObservedState::of(&deployment(1, json!({"lifecycleState": "CREATED"}))),
            t0 + Duration::from_secs(3),
        );
        assert_eq!(seen.stalled(t0 + Duration::from_secs(300)), None);
    }

    #[test]
    fn an_error_with_a_terminal_state_fails_at_once() {
        let failed = json!({"lifecycleState": "FAILED", "jobStatus": {"state": "FAILED"},
                            "observedGeneration": 2, "error": JOB_FAILED_ERROR});
        let mut progress = WaitTracker::new(2);
        let (_, phase) = progress.observe(ObservedState::of(&deployment(2, failed)));
        let Phase::Failed { error } = phase else {
            panic!("{phase:?}")
        };
        assert!(error.message.contains("Recovery is suppressed"), "{error}");
    }

    #[test]
    fn progress_keeps_waiting_while_an_old_failure_is_all_there_is() {
        let old_failure = json!({"lifecycleState": "FAILED", "jobStatus": {"state": "FAILED"},
                                 "observedGeneration": 1, "error": JOB_FAILED_ERROR});
        let mut progress = WaitTracker::new(2);
        let (_, phase) = progress.observe(ObservedState::of(&deployment(2, old_failure)));
        assert!(matches!(phase, Phase::Progressing { .. }), "{phase:?}");
    }

    #[test]
    fn progress_history_is_bounded() {
        let mut progress = WaitTracker::new(1);
        for g in 0..(HISTORY_LEN as i64 + 5) {
            progress.observe(ObservedState::of(&deployment(
                1,
                json!({"observedGeneration": -g}),
            )));
        }
        let history = progress.history();
        assert_eq!(history.len(), HISTORY_LEN);
        assert_eq!(
            history.last().unwrap().observed_generation,
            Some(-(HISTORY_LEN as i64 + 4))
        );
    }

    #[test]
    fn status_view_compares_the_deployed_checksum_with_the_local_one() {
        let d = deployment(1, stable_running(1));
        let deployed = "bb".repeat(32);
        assert_eq!(
            deployed_script_sha256(&d).as_deref(),
            Some(deployed.as_str())
        );
        let same = StatusView::of(&d, Some(&deployed));
        assert_eq!(same.script, ScriptSync::UpToDate);
        assert_eq!(same.phase, Phase::Running);
        assert_eq!(same.image.as_deref(), Some("hiha2/flink-s3:latest"));
        assert_eq!(
            same.job_id.as_deref(),
            Some("e1d2f4a0b5c6d7e8f9a0b1c2d3e4f5a6")
        );
        assert_eq!(
            StatusView::of(&d, Some(&"cc".repeat(32))).script,
            ScriptSync::Differs
        );
        assert_eq!(StatusView::of(&d, None).script, ScriptSync::Unknown);

        let json = serde_json::to_value(&same).unwrap();
        assert_eq!(json["phase"], "running", "{json:#}");
        let back: StatusView = serde_json::from_value(json).unwrap();
        assert_eq!(back, same);

        let text = same.to_string();
        assert!(
            text.starts_with("FlinkDeployment default/python-example-s3: running"),
            "{text}"
        );
        assert!(text.contains("lifecycle:      STABLE"), "{text}");
        assert!(text.contains("(local, same as deployed)"), "{text}");

        let json = serde_json::to_value(&same).unwrap();
        assert_eq!(json["phase"], "running");
        assert_eq!(json["state"]["lifecycle_state"], "STABLE");
        assert_eq!(json["script"], "up-to-date");
        assert_eq!(json["deployed_sha256"], deployed);
    }
}

//! The FlinkDeployment custom resource (`flink.apache.org/v1beta1`), typed after the CRD the
//! Flink Kubernetes Operator 1.15 installs.
//!
//! The spec types carry the fields this crate renders plus the few others a reader of a live
//! object meets; fields they do not name are ignored when reading. The status types model
//! what the operator reports; every enum-like status value keeps unknown values in an
//! `Other(String)` variant, so a newer operator never breaks deserialization.

use std::collections::BTreeMap;
use std::fmt;

use k8s_openapi::api::core::v1::PodTemplateSpec;
use kube::CustomResource;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::FlinkVersion;

/// The desired state of a FlinkDeployment: the `spec` of the resource.
#[derive(CustomResource, Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[kube(
    group = "flink.apache.org",
    version = "v1beta1",
    kind = "FlinkDeployment",
    plural = "flinkdeployments",
    singular = "flinkdeployment",
    shortname = "flinkdep",
    namespaced,
    status = "FlinkDeploymentStatus",
    derive = "PartialEq",
    schema = "disabled",
    doc = "A Flink cluster and its job, managed by the Flink Kubernetes Operator.",
    printcolumn = r#"{"name":"Job Status","type":"string","description":"Last observed state of the job.","jsonPath":".status.jobStatus.state","priority":0}"#,
    printcolumn = r#"{"name":"Lifecycle State","type":"string","description":"Lifecycle state of the Flink resource (including being rolled back, failed etc.).","jsonPath":".status.lifecycleState","priority":0}"#,
    scale(
        spec_replicas_path = ".spec.taskManager.replicas",
        status_replicas_path = ".status.taskManager.replicas",
        label_selector_path = ".status.taskManager.labelSelector"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct FlinkDeploymentSpec {
    /// The Flink image.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Kubernetes image pull policy of the Flink image.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_pull_policy: Option<String>,
    /// The Flink minor line the image runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flink_version: Option<FlinkVersion>,
    /// Flink configuration entries, sorted by key.
    ///
    /// When read back, scalar values other than strings become their text and nested maps
    /// are flattened with dotted keys, as Flink itself reads them.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "deserialize_flink_configuration"
    )]
    pub flink_configuration: Option<BTreeMap<String, String>>,
    /// Kubernetes service account the JobManager and TaskManager pods run as.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_account: Option<String>,
    /// Pod template for both JobManager and TaskManager pods.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod_template: Option<PodTemplateSpec>,
    /// JobManager resources, replicas and pod template.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job_manager: Option<JobManagerSpec>,
    /// TaskManager resources, replicas and pod template.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task_manager: Option<TaskManagerSpec>,
    /// The job; absent for a session cluster.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job: Option<JobSpec>,
    /// Changing this number restarts the cluster with no other spec change.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restart_nonce: Option<i64>,
    /// Log configuration files (`log4j-console.properties` ...) by file name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_configuration: Option<BTreeMap<String, String>>,
    /// Deployment mode: `native` (default) or `standalone`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
}

/// `spec.jobManager`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobManagerSpec {
    /// CPU and memory of each JobManager pod.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource: Option<Resource>,
    /// Number of JobManager replicas (more than 1 needs HA).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    /// Pod template merged over `spec.podTemplate` for JobManager pods.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod_template: Option<PodTemplateSpec>,
}

/// `spec.taskManager`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskManagerSpec {
    /// CPU and memory of each TaskManager pod.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource: Option<Resource>,
    /// Number of TaskManager replicas; derived from parallelism when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    /// Pod template merged over `spec.podTemplate` for TaskManager pods.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod_template: Option<PodTemplateSpec>,
}

/// `resource` of a JobManager or TaskManager: what the operator turns into Flink's process
/// memory and Kubernetes requests.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Resource {
    /// CPU cores.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu: Option<f64>,
    /// Total process memory (`2048m`, `2Gi`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<String>,
    /// Ephemeral storage (a Kubernetes quantity).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ephemeral_storage: Option<String>,
}

/// `spec.job`: the job an application cluster runs.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobSpec {
    /// URI of the job jar (`local:///...`).
    #[serde(rename = "jarURI", skip_serializing_if = "Option::is_none")]
    pub jar_uri: Option<String>,
    /// Main class of the job.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entry_class: Option<String>,
    /// Program arguments.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub args: Option<Vec<String>>,
    /// Default parallelism of the job.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parallelism: Option<i32>,
    /// Desired state of the job.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<DesiredJobState>,
    /// How state is carried over an upgrade.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upgrade_mode: Option<UpgradeMode>,
    /// Savepoint to start the job from on first deployment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub initial_savepoint_path: Option<String>,
    /// Whether a savepoint with state for removed operators may be restored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_non_restored_state: Option<bool>,
    /// Changing this number triggers a savepoint.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub savepoint_trigger_nonce: Option<i64>,
    /// Changing this number triggers a checkpoint.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checkpoint_trigger_nonce: Option<i64>,
    /// Changing this number redeploys from `initialSavepointPath`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub savepoint_redeploy_nonce: Option<i64>,
    /// Changing this number resets the autoscaler.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub autoscaler_reset_nonce: Option<i64>,
}

/// How the operator carries job state over an upgrade (`job.upgradeMode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum UpgradeMode {
    /// Cancel the job and start it again with empty state.
    #[default]
    #[serde(rename = "stateless")]
    Stateless,
    /// Stop with a savepoint and start from it; needs savepoint and checkpoint directories.
    #[serde(rename = "savepoint")]
    Savepoint,
    /// Restart from the last checkpoint kept by HA; needs a checkpoint directory and
    /// Kubernetes HA.
    #[serde(rename = "last-state")]
    LastState,
}

impl UpgradeMode {
    /// Every mode the CRD accepts.
    pub const ALL: [UpgradeMode; 3] = [
        UpgradeMode::Stateless,
        UpgradeMode::Savepoint,
        UpgradeMode::LastState,
    ];

    /// The value the CRD uses: `stateless`, `savepoint`, `last-state`.
    pub fn as_crd_value(self) -> &'static str {
        match self {
            UpgradeMode::Stateless => "stateless",
            UpgradeMode::Savepoint => "savepoint",
            UpgradeMode::LastState => "last-state",
        }
    }
}

impl fmt::Display for UpgradeMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_crd_value())
    }
}

/// Parses the CRD's spelling (`stateless`, `savepoint`, `last-state`; `last_state` too).
impl std::str::FromStr for UpgradeMode {
    type Err = crate::Error;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        match value {
            "stateless" => Ok(UpgradeMode::Stateless),
            "savepoint" => Ok(UpgradeMode::Savepoint),
            "last-state" | "last_state" => Ok(UpgradeMode::LastState),
            other => Err(crate::Error::UnknownUpgradeMode {
                value: other.to_owned(),
            }),
        }
    }
}

/// The desired state of the job (`job.state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DesiredJobState {
    /// The job runs.
    #[serde(rename = "running")]
    Running,
    /// The job is suspended (its cluster removed, state kept as the upgrade mode says).
    #[serde(rename = "suspended")]
    Suspended,
}

/// Defines an enum of the operator's status strings with an `Other` fallback, serialized as
/// the plain string.
macro_rules! status_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident { $( $(#[$vmeta:meta])* $variant:ident => $text:literal, )* }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )*
            /// A value this crate does not know (from a newer operator), kept as it came.
            Other(String),
        }

        impl $name {
            /// The value as the operator writes it.
            pub fn as_str(&self) -> &str {
                match self {
                    $( $name::$variant => $text, )*
                    $name::Other(text) => text,
                }
            }
        }

        impl From<&str> for $name {
            fn from(text: &str) -> Self {
                match text {
                    $( $text => $name::$variant, )*
                    other => $name::Other(other.to_owned()),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                Ok($name::from(text.as_str()))
            }
        }
    };
}

status_enum! {
    /// `status.lifecycleState`: where the resource is in its life, as `kubectl get` shows it.
    pub enum LifecycleState {
        /// Just created, not yet deployed.
        Created => "CREATED",
        /// Suspended by `job.state: suspended`.
        Suspended => "SUSPENDED",
        /// A spec change is being applied.
        Upgrading => "UPGRADING",
        /// Deployed, not yet known to be stable.
        Deployed => "DEPLOYED",
        /// Deployed and stable: the goal.
        Stable => "STABLE",
        /// Rolled back to the last stable spec.
        RolledBack => "ROLLED_BACK",
        /// Rolling back to the last stable spec.
        RollingBack => "ROLLING_BACK",
        /// Failed.
        Failed => "FAILED",
        /// Being deleted.
        Deleting => "DELETING",
        /// Deleted.
        Deleted => "DELETED",
    }
}

status_enum! {
    /// `status.jobManagerDeploymentStatus`: the JobManager Deployment as the operator sees it.
    pub enum JobManagerDeploymentStatus {
        /// The JobManager is up and its REST endpoint answers.
        Ready => "READY",
        /// Deployed, not ready yet.
        DeployedNotReady => "DEPLOYED_NOT_READY",
        /// Being deployed.
        Deploying => "DEPLOYING",
        /// No JobManager Deployment exists.
        Missing => "MISSING",
        /// The deployment failed; terminal until the spec changes.
        Error => "ERROR",
    }
}

status_enum! {
    /// `status.jobStatus.state`: Flink's own job status.
    pub enum JobState {
        /// The job is being initialized.
        Initializing => "INITIALIZING",
        /// The job is created, no task has started.
        Created => "CREATED",
        /// The job runs: the goal.
        Running => "RUNNING",
        /// The job is failing.
        Failing => "FAILING",
        /// The job failed.
        Failed => "FAILED",
        /// The job is being cancelled.
        Cancelling => "CANCELLING",
        /// The job was cancelled.
        Canceled => "CANCELED",
        /// The job finished (a bounded job ran to its end).
        Finished => "FINISHED",
        /// The job is restarting.
        Restarting => "RESTARTING",
        /// The job is suspended.
        Suspended => "SUSPENDED",
        /// The job is being reconciled after a JobManager failover.
        Reconciling => "RECONCILING",
    }
}

status_enum! {
    /// `status.reconciliationStatus.state`: how far the last spec has been applied.
    pub enum ReconciliationState {
        /// The last spec is deployed.
        Deployed => "DEPLOYED",
        /// The last spec is being applied.
        Upgrading => "UPGRADING",
        /// Rolling back to the last stable spec.
        RollingBack => "ROLLING_BACK",
        /// Rolled back to the last stable spec.
        RolledBack => "ROLLED_BACK",
    }
}

/// What the operator reports about a FlinkDeployment: the `status` of the resource.
///
/// Running and stable means `lifecycle_state == Stable`, job state `Running`, JobManager
/// `Ready` and `observed_generation` equal to `metadata.generation`. Failure shows as
/// `lifecycle_state == Failed`, job state `Failed`, JobManager `Error`, or a non-empty `error`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FlinkDeploymentStatus {
    /// Where the resource is in its life.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lifecycle_state: Option<LifecycleState>,
    /// The job, as Flink reports it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job_status: Option<JobStatus>,
    /// The JobManager Deployment, as the operator sees it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job_manager_deployment_status: Option<JobManagerDeploymentStatus>,
    /// How far the last spec has been applied.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reconciliation_status: Option<ReconciliationStatus>,
    /// The `metadata.generation` the operator last acted on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The last error: a JSON string with `type` and `message`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Facts about the running cluster (Flink version, revision, total resources).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster_info: Option<BTreeMap<String, String>>,
    /// TaskManager replicas and their label selector (the scale subresource).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task_manager: Option<TaskManagerInfo>,
    /// Kubernetes-style conditions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Vec<StatusCondition>>,
}

/// `status.jobStatus`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobStatus {
    /// Flink's job status.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<JobState>,
    /// Flink's job id (32 hex digits).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job_id: Option<String>,
    /// The job's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job_name: Option<String>,
    /// Start time, milliseconds since the epoch, as a string.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_time: Option<String>,
    /// Time of the last update, milliseconds since the epoch, as a string.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub update_time: Option<String>,
    /// Savepoint taken for the last upgrade.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upgrade_savepoint_path: Option<String>,
    /// Savepoint history and triggers, as the operator writes them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub savepoint_info: Option<serde_json::Value>,
    /// Checkpoint triggers, as the operator writes them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checkpoint_info: Option<serde_json::Value>,
}

/// `status.reconciliationStatus`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReconciliationStatus {
    /// How far the last spec has been applied.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<ReconciliationState>,
    /// The last spec the operator reconciled, as JSON text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_reconciled_spec: Option<String>,
    /// The last spec that was stable, as JSON text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_stable_spec: Option<String>,
    /// When the operator last reconciled, milliseconds since the epoch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reconciliation_timestamp: Option<i64>,
}

/// `status.taskManager`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskManagerInfo {
    /// Label selector of the TaskManager pods.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label_selector: Option<String>,
    /// Number of TaskManager pods.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
}

/// One entry of `status.conditions`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusCondition {
    /// Condition type, e.g. `Running`.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_: Option<String>,
    /// `True`, `False` or `Unknown`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Machine-readable reason.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Human-readable message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// When the condition last changed (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<String>,
    /// The generation the condition was computed for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

/// Reads `flinkConfiguration` leniently: the CRD preserves any JSON there, so a live object
/// may carry numbers, booleans or nested maps written by other tools.
fn deserialize_flink_configuration<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<BTreeMap<String, String>>, D::Error> {
    let Some(value) = Option::<serde_json::Value>::deserialize(deserializer)? else {
        return Ok(None);
    };
    let serde_json::Value::Object(map) = value else {
        return Err(serde::de::Error::custom("flinkConfiguration is not a map"));
    };
    let mut flat = BTreeMap::new();
    flatten_into(&mut flat, None, map);
    Ok(Some(flat))
}

fn flatten_into(
    flat: &mut BTreeMap<String, String>,
    prefix: Option<&str>,
    map: serde_json::Map<String, serde_json::Value>,
) {
    for (key, value) in map {
        let key = match prefix {
            Some(prefix) => format!("{prefix}.{key}"),
            None => key,
        };
        match value {
            serde_json::Value::Null => {}
            serde_json::Value::String(text) => {
                flat.insert(key, text);
            }
            serde_json::Value::Object(inner) => flatten_into(flat, Some(&key), inner),
            other => {
                flat.insert(key, other.to_string());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::Resource as _;

    #[test]
    fn resource_identity_matches_the_crd() {
        assert_eq!(FlinkDeployment::group(&()), "flink.apache.org");
        assert_eq!(FlinkDeployment::version(&()), "v1beta1");
        assert_eq!(FlinkDeployment::kind(&()), "FlinkDeployment");
        assert_eq!(FlinkDeployment::plural(&()), "flinkdeployments");
        assert_eq!(
            FlinkDeployment::api_version(&()),
            "flink.apache.org/v1beta1"
        );
    }

    #[test]
    fn status_reads_what_the_operator_writes_including_unknown_fields() {
        let status: FlinkDeploymentStatus = serde_json::from_value(serde_json::json!({
            "lifecycleState": "STABLE",
            "jobManagerDeploymentStatus": "READY",
            "observedGeneration": 3,
            "error": null,
            "jobStatus": {
                "state": "RUNNING",
                "jobId": "a1b2c3d4e5f60718293a4b5c6d7e8f90",
                "jobName": "python-example-s3",
                "startTime": "1700000000000",
                "updateTime": "1700000001000",
                "savepointInfo": {"savepointHistory": [], "lastPeriodicSavepointTimestamp": 0},
                "checkpointInfo": {"lastPeriodicCheckpointTimestamp": 0},
                "someFutureField": true
            },
            "reconciliationStatus": {
                "state": "DEPLOYED",
                "reconciliationTimestamp": 1700000000000i64,
                "lastReconciledSpec": "{\"spec\":{}}"
            },
            "clusterInfo": {"flink-version": "1.20.0"},
            "taskManager": {"labelSelector": "component=taskmanager,app=python-example-s3", "replicas": 1},
            "conditions": [{"type": "Running", "status": "True", "reason": "JobRunning"}],
            "aFieldFromANewerOperator": {"x": 1}
        }))
        .unwrap();
        assert_eq!(status.lifecycle_state, Some(LifecycleState::Stable));
        assert_eq!(
            status.job_manager_deployment_status,
            Some(JobManagerDeploymentStatus::Ready)
        );
        let job = status.job_status.as_ref().unwrap();
        assert_eq!(job.state, Some(JobState::Running));
        assert_eq!(job.job_name.as_deref(), Some("python-example-s3"));
        assert_eq!(
            status.reconciliation_status.as_ref().unwrap().state,
            Some(ReconciliationState::Deployed)
        );
        assert_eq!(status.observed_generation, Some(3));
        assert_eq!(status.error, None);
    }

    #[test]
    fn unknown_status_values_are_kept() {
        let state: LifecycleState = serde_json::from_str("\"HIBERNATING\"").unwrap();
        assert_eq!(state, LifecycleState::Other("HIBERNATING".into()));
        assert_eq!(serde_json::to_string(&state).unwrap(), "\"HIBERNATING\"");
        let known: JobManagerDeploymentStatus =
            serde_json::from_str("\"DEPLOYED_NOT_READY\"").unwrap();
        assert_eq!(known, JobManagerDeploymentStatus::DeployedNotReady);
        assert_eq!(known.to_string(), "DEPLOYED_NOT_READY");
    }

    #[test]
    fn flink_configuration_is_read_leniently() {
        let spec: FlinkDeploymentSpec = serde_json::from_value(serde_json::json!({
            "flinkConfiguration": {
                "taskmanager.numberOfTaskSlots": 2,
                "s3.path.style.access": true,
                "state": {"checkpoints": {"dir": "s3://b/c"}},
                "pipeline.name": "job",
                "dropped": null
            },
            "job": {"upgradeMode": "last-state", "state": "running"}
        }))
        .unwrap();
        let conf = spec.flink_configuration.unwrap();
        assert_eq!(conf["taskmanager.numberOfTaskSlots"], "2");
        assert_eq!(conf["s3.path.style.access"], "true");
        assert_eq!(conf["state.checkpoints.dir"], "s3://b/c");
        assert_eq!(conf["pipeline.name"], "job");
        assert!(!conf.contains_key("dropped"));
        let job = spec.job.unwrap();
        assert_eq!(job.upgrade_mode, Some(UpgradeMode::LastState));
        assert_eq!(job.state, Some(DesiredJobState::Running));
    }

    #[test]
    fn upgrade_modes_use_the_crd_spelling() {
        for mode in UpgradeMode::ALL {
            let json = serde_json::to_string(&mode).unwrap();
            assert_eq!(json, format!("\"{}\"", mode.as_crd_value()));
            assert_eq!(mode.as_crd_value().parse::<UpgradeMode>().unwrap(), mode);
        }
        let err = "latest".parse::<UpgradeMode>().unwrap_err();
        assert!(
            err.to_string()
                .contains("stateless, savepoint or last-state"),
            "{err}"
        );
    }
}

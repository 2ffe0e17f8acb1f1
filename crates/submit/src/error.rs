//! What can go wrong between the cluster and us, in terms a user can act on.

use std::fmt;
use std::time::Duration;

use crate::status::{ObservedState, OperatorError};

/// Why a cluster-facing step (apply, wait, logs, status, delete) did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// The FlinkDeployment's namespace does not exist in the cluster.
    #[error(
        "namespace {namespace:?} does not exist; create it (kubectl create namespace {namespace}) \
         or set another namespace"
    )]
    NamespaceNotFound {
        /// The missing namespace.
        namespace: String,
    },
    /// The cluster does not know the FlinkDeployment resource: the operator's CRD is missing.
    #[error(
        "the cluster has no FlinkDeployment resource (flinkdeployments.flink.apache.org/v1beta1); \
         install the Flink Kubernetes Operator first: {message}"
    )]
    CrdNotInstalled {
        /// The API server's words.
        message: String,
    },
    /// The FlinkDeployment to act on does not exist.
    #[error("FlinkDeployment {namespace}/{name} does not exist; submit it first")]
    NotFound {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
    },
    /// The FlinkDeployment given to apply has no `metadata.name`.
    #[error("the FlinkDeployment to apply has no metadata.name; build it with PyFlinkJob")]
    MissingName,
    /// The API server rejected the object (schema validation, a field it refuses).
    #[error("the API server rejected FlinkDeployment {namespace}/{name}: {message}")]
    Invalid {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
        /// The API server's words (which field, which rule).
        message: String,
    },
    /// The credentials may not do what was asked.
    #[error(
        "not allowed to {action}: {message}; the identity needs RBAC permission for it \
         (kubectl auth can-i)"
    )]
    Forbidden {
        /// What was attempted (`apply FlinkDeployment default/job`).
        action: String,
        /// The API server's words.
        message: String,
    },
    /// Any other failure talking to the API server.
    #[error("failed to {action}: {source}")]
    Kube {
        /// What was attempted (`watch FlinkDeployment default/job`).
        action: String,
        /// The client's error.
        #[source]
        source: kube::Error,
    },
    /// The operator reports the deployment failed: its error and the JobManager's log tail.
    #[error("{0}")]
    Failed(Box<Failure>),
    /// The deployment was neither running nor failed when the time was up.
    #[error("{0}")]
    Timeout(Box<WaitTimeout>),
    /// The FlinkDeployment was deleted while waiting for it.
    #[error("FlinkDeployment {namespace}/{name} was deleted while waiting for it to run")]
    DeletedWhileWaiting {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
    },
    /// No JobManager pod exists for the FlinkDeployment (yet).
    #[error(
        "no JobManager pod for FlinkDeployment {namespace}/{name} (labels app={name},component=jobmanager); \
         the operator may not have created it yet: check `status`"
    )]
    NoJobManagerPod {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
    },
    /// Reading a log stream failed midway.
    #[error("reading the log of pod {namespace}/{pod} failed: {source}")]
    LogStream {
        /// The pod's namespace.
        namespace: String,
        /// The pod.
        pod: String,
        /// The read error.
        #[source]
        source: std::io::Error,
    },
    /// The FlinkDeployment was still there when the time for its deletion was up.
    #[error(
        "FlinkDeployment {namespace}/{name} still exists {waited:?} after its deletion was requested; \
         the operator's finalizer may be stuck: check the operator's log"
    )]
    DeleteTimeout {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
        /// How long we waited.
        waited: Duration,
    },
}

/// A failed deployment, with what a user needs to fix it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Failure {
    /// Namespace of the FlinkDeployment.
    pub namespace: String,
    /// Name of the FlinkDeployment.
    pub name: String,
    /// The operator's error.
    pub error: OperatorError,
    /// The status when the failure was seen.
    pub state: ObservedState,
    /// The JobManager pod the logs come from, when one exists.
    pub pod: Option<String>,
    /// Why containers of that pod are not running (`flink-main-container: ImagePullBackOff ...`).
    pub pod_problems: Vec<String>,
    /// The last lines of the JobManager's `flink-main-container` log (or why there is none).
    pub job_manager_log: Vec<String>,
    /// The failed initContainer and the last lines of its log, when an initContainer failed
    /// (the fetch of the script from S3).
    pub init_container_log: Option<(String, Vec<String>)>,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "FlinkDeployment {}/{} failed: {}",
            self.namespace, self.name, self.error
        )?;
        write!(f, "\n  last state: {}", self.state)?;
        for problem in &self.pod_problems {
            write!(
                f,
                "\n  pod {}: {problem}",
                self.pod.as_deref().unwrap_or("?")
            )?;
        }
        if let Some((container, lines)) = &self.init_container_log {
            write!(f, "\n  last lines of initContainer {container}:")?;
            for line in lines {
                write!(f, "\n    {line}")?;
            }
        }
        match &self.pod {
            Some(pod) => write!(f, "\n  last lines of the JobManager log ({pod}):")?,
            None => write!(f, "\n  JobManager log:")?,
        }
        for line in &self.job_manager_log {
            write!(f, "\n    {line}")?;
        }
        Ok(())
    }
}

/// A wait that ran out of time, with the states seen.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct WaitTimeout {
    /// Namespace of the FlinkDeployment.
    pub namespace: String,
    /// Name of the FlinkDeployment.
    pub name: String,
    /// The generation waited for.
    pub generation: i64,
    /// How long we waited.
    pub waited: Duration,
    /// The last distinct states seen, oldest first (empty when the watch never delivered one).
    pub last_states: Vec<ObservedState>,
    /// The last error of the watch, when it had trouble.
    pub last_watch_error: Option<String>,
}

impl fmt::Display for WaitTimeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "FlinkDeployment {}/{} generation {} was not running and stable after {:?}; \
             raise the timeout if it is still progressing, or check its status and JobManager log",
            self.namespace, self.name, self.generation, self.waited
        )?;
        if self.last_states.is_empty() {
            write!(f, "\n  no state was seen")?;
        } else {
            write!(f, "\n  last states seen (oldest first):")?;
            for state in &self.last_states {
                write!(f, "\n    {state}")?;
            }
        }
        if let Some(error) = &self.last_watch_error {
            write!(f, "\n  last watch error: {error}")?;
        }
        Ok(())
    }
}

/// Maps a client error to a [`SubmitError`], naming what was attempted.
pub(crate) fn from_kube(action: String, err: kube::Error) -> SubmitError {
    match err {
        kube::Error::Api(status) if status.is_forbidden() => SubmitError::Forbidden {
            action,
            message: status.message,
        },
        other => SubmitError::Kube {
            action,
            source: other,
        },
    }
}

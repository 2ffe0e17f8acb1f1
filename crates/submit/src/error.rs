//! What can go wrong in S3 and in the cluster, in terms a user can act on.

use std::fmt;
use std::time::Duration;

use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use flink_eks_manifest::S3Location;
use flink_eks_plan::{Classify, FailureClass, Stale};

use crate::status::{ObservedState, OperatorError};

/// A `Result` whose error is this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why an upload, an apply, a wait, a log read, a status or a delete did not succeed.
///
/// Each message is one line; [`Error::Failed`] and [`Error::Timeout`] carry a longer report
/// ([`DeploymentFailure`], [`WaitTimeout`]) whose `Display` has the log tails and the states.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A guarded write found its resource changed since it was planned: nothing was written.
    #[error(transparent)]
    Stale(#[from] Stale),
    /// An upload plan was applied with other bytes than it was made for.
    #[error(
        "the upload plan for {location} was made for a script with sha256 {planned}, not for \
         this one (sha256 {given}); plan again with these bytes"
    )]
    PlanMismatch {
        /// The script location.
        location: String,
        /// The SHA-256 the plan was made for.
        planned: String,
        /// The SHA-256 of the bytes given to apply.
        given: String,
    },
    /// The bucket does not exist (or is not visible to these credentials).
    #[error(
        "S3 bucket {bucket:?} does not exist; create it (aws s3 mb s3://{bucket}) or set another bucket"
    )]
    NoSuchBucket {
        /// The bucket named in the script location.
        bucket: String,
    },
    /// A precondition the plan found unmet (the bucket is missing or in another region);
    /// nothing was sent.
    #[error("{reason}: {fix}")]
    Precondition {
        /// What is wrong.
        reason: String,
        /// What to do.
        fix: String,
    },
    /// S3 refused the request for these credentials.
    #[error(
        "access to {location} was denied ({operation}): {message}; the identity needs {}",
        s3_permissions(operation)
    )]
    S3AccessDenied {
        /// The object (`s3://BUCKET/KEY`) or prefix (`s3://BUCKET/PREFIX/`).
        location: String,
        /// The S3 operation that was refused.
        operation: &'static str,
        /// S3's code and message.
        message: String,
    },
    /// No usable AWS credentials were found, or S3 did not accept them as an identity.
    #[error(
        "S3 {operation} on {location}: no usable AWS credentials ({detail}); set AWS_PROFILE \
         (and run `aws sso login` for SSO profiles), or run `aws configure`"
    )]
    NoCredentials {
        /// The object (`s3://BUCKET/KEY`) or prefix (`s3://BUCKET/PREFIX/`).
        location: String,
        /// The S3 operation that could not be signed or was refused.
        operation: &'static str,
        /// What the SDK or S3 said.
        detail: String,
    },
    /// Any other failure of an S3 call (network, endpoint, credentials, server error).
    #[error("S3 {operation} on {location} failed: {message}")]
    S3 {
        /// The object (`s3://BUCKET/KEY`) or prefix (`s3://BUCKET/PREFIX/`).
        location: String,
        /// The S3 operation that failed.
        operation: &'static str,
        /// S3's code and message, or the client's chain of causes.
        message: String,
    },
    /// `DeleteObjects` answered (`200 OK`) naming objects under a state prefix it did not
    /// delete; the others are gone.
    #[error(
        "{failed} of {} objects under {prefix} were not deleted: {summary}; the identity needs \
         s3:DeleteObject on {prefix}*; run the deletion again to retry them",
        deleted + failed
    )]
    ObjectsNotDeleted {
        /// The prefix, as `s3://BUCKET/PREFIX/`.
        prefix: String,
        /// How many objects were deleted.
        deleted: usize,
        /// How many were not.
        failed: usize,
        /// Whether S3 refused every one of them as `AccessDenied`.
        access_denied: bool,
        /// The first keys not deleted, with S3's codes and messages.
        summary: String,
    },
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
    /// The FlinkDeployment given to plan has no `metadata.name`.
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
    /// The Kubernetes credentials may not do what was asked.
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
    #[error("failed to {action}: {message}")]
    Kube {
        /// What was attempted (`watch FlinkDeployment default/job`).
        action: String,
        /// The API server's code, reason and message, or the client's chain of causes.
        message: String,
    },
    /// The operator reports the deployment failed; the report carries its error and the log tails.
    #[error("{}", .0.summary())]
    Failed(Box<DeploymentFailure>),
    /// The deployment was neither running nor failed when the time was up.
    #[error("{}", .0.summary())]
    Timeout(Box<WaitTimeout>),
    /// The operator wrote no status within the no-status window.
    #[error("{}", .0.summary())]
    NoStatus(Box<NoStatus>),
    /// A savepoint failed: the operator's error.
    #[error("the savepoint of FlinkDeployment {namespace}/{name} ({by}) failed: {error}")]
    SavepointFailed {
        /// Namespace of the FlinkDeployment.
        namespace: String,
        /// Name of the FlinkDeployment.
        name: String,
        /// What asked for it: a FlinkStateSnapshot, a suspend, an upgrade.
        by: String,
        /// The operator's error.
        error: String,
    },
    /// A savepoint, suspend or resume did not finish in time.
    #[error("{what} did not finish within {}s (last: {last})", waited.as_secs())]
    StateTimeout {
        /// What was waited for.
        what: String,
        /// How long.
        waited: Duration,
        /// The last state seen.
        last: String,
    },
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

impl Classify for Error {
    fn class(&self) -> FailureClass {
        match self {
            Error::Stale(_) => FailureClass::Stale,
            Error::SavepointFailed { .. } | Error::StateTimeout { .. } => FailureClass::JobFailed,
            Error::Failed(_) | Error::Timeout(_) | Error::NoStatus(_) => FailureClass::JobFailed,
            Error::ObjectsNotDeleted {
                access_denied: true,
                ..
            }
            | Error::S3AccessDenied { .. }
            | Error::NoCredentials { .. }
            | Error::Forbidden { .. } => FailureClass::Auth,
            Error::PlanMismatch { .. }
            | Error::NoSuchBucket { .. }
            | Error::Precondition { .. }
            | Error::NamespaceNotFound { .. }
            | Error::Invalid { .. }
            | Error::MissingName => FailureClass::BadInput,
            _ => FailureClass::Remote,
        }
    }
}

/// The permissions an S3 operation of this crate needs.
fn s3_permissions(operation: &str) -> &'static str {
    match operation {
        "DeleteObject" => {
            "s3:GetObject and s3:DeleteObject on that object and s3:ListBucket on the bucket"
        }
        "ListObjectsV2" | "DeleteObjects" => {
            "s3:ListBucket on the bucket and s3:DeleteObject on the objects under the prefix"
        }
        _ => "s3:GetObject and s3:PutObject on that object and s3:ListBucket on the bucket",
    }
}

/// A failed deployment, with what a user needs to fix it. Its `Display` is the whole report
/// (several lines: the operator's error, the pod's problems, the log tails).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct DeploymentFailure {
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
    /// Why this is a failure when no terminal state says so: a terminal Event's reason, or an
    /// error that outlived its grace period.
    pub why: Option<String>,
    /// The Events about the FlinkDeployment since the apply, oldest first.
    pub events: Vec<String>,
}

impl DeploymentFailure {
    /// One line: the operator's error and the pod's problems.
    pub fn summary(&self) -> String {
        let mut line = format!(
            "FlinkDeployment {}/{} failed: {}",
            self.namespace, self.name, self.error
        );
        if let Some(why) = &self.why {
            line.push_str(" (");
            line.push_str(why);
            line.push(')');
        }
        for problem in &self.pod_problems {
            line.push_str("; ");
            line.push_str(problem);
        }
        line
    }
}

impl fmt::Display for DeploymentFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "FlinkDeployment {}/{} failed: {}",
            self.namespace, self.name, self.error
        )?;
        if let Some(why) = &self.why {
            write!(f, " ({why})")?;
        }
        write!(f, "\n  last state: {}", self.state)?;
        write_events(f, &self.events)?;
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

/// A wait that ran out of time, with the states seen. Its `Display` is the whole report
/// (several lines: every state seen, the watch's last error).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
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
    /// The last Events about the FlinkDeployment since the apply, oldest first.
    pub events: Vec<String>,
    /// The JobManager pod's containers, when there is a pod.
    pub pod: Option<PodReport>,
}

impl WaitTimeout {
    /// One line: what was waited for, for how long, the last state seen and the fix.
    pub fn summary(&self) -> String {
        let last = match self.last_states.last() {
            Some(state) => format!("last state seen: {state}"),
            None => "no state was seen".to_owned(),
        };
        format!(
            "FlinkDeployment {}/{} generation {} was not running and stable after {:?} ({last}); \
             raise the timeout if it is still progressing, or check its status and JobManager log",
            self.namespace, self.name, self.generation, self.waited
        )
    }
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
        write_events(f, &self.events)?;
        if let Some(pod) = &self.pod {
            write!(f, "\n{pod}")?;
        }
        Ok(())
    }
}

/// The Events lines of a report.
fn write_events(f: &mut fmt::Formatter<'_>, events: &[String]) -> fmt::Result {
    if events.is_empty() {
        return Ok(());
    }
    write!(f, "\n  last Events (oldest first):")?;
    for event in events {
        write!(f, "\n    {event}")?;
    }
    Ok(())
}

/// The JobManager pod as a report shows it: each container's state, init containers first,
/// and the fetch initContainer's log tail.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct PodReport {
    /// The pod's name.
    pub pod: String,
    /// The pod's phase.
    pub phase: Option<String>,
    /// One line per container: `initContainer fetch-pyflink-script: waiting (CrashLoopBackOff:
    /// ...); last terminated with exit code 1: <message>`.
    pub containers: Vec<String>,
    /// The last lines of the fetch initContainer's log (or why there are none).
    pub fetch_log: Vec<String>,
}

impl fmt::Display for PodReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "  JobManager pod {} ({}):",
            self.pod,
            self.phase.as_deref().unwrap_or("phase unknown")
        )?;
        for container in &self.containers {
            write!(f, "\n    {container}")?;
        }
        write!(
            f,
            "\n  last lines of initContainer {}:",
            flink_eks_manifest::FETCH_CONTAINER
        )?;
        for line in &self.fetch_log {
            write!(f, "\n    {line}")?;
        }
        Ok(())
    }
}

/// A FlinkDeployment the operator wrote no status for within the window: what the plan read
/// about each likely cause.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct NoStatus {
    /// Namespace of the FlinkDeployment.
    pub namespace: String,
    /// Name of the FlinkDeployment.
    pub name: String,
    /// How long we waited.
    pub waited: Duration,
    /// `spec.flinkVersion` of the FlinkDeployment (`v1_20`).
    pub flink_version: Option<String>,
    /// What the plan read about the operator, when it read it.
    pub operator: Option<crate::operator::OperatorFacts>,
    /// The Events about the FlinkDeployment since the apply, oldest first.
    pub events: Vec<String>,
}

impl NoStatus {
    /// The likely causes, each with what the plan read about it.
    pub fn causes(&self) -> Vec<String> {
        use crate::operator::{Fact, OPERATOR_SELECTOR};
        let facts = self.operator.as_ref();
        let installed = match facts.map(|f| (&f.crd_served, &f.deployment)) {
            None => "not checked".to_owned(),
            Some((Fact::Known(false), _)) => "the FlinkDeployment CRD is not served".to_owned(),
            Some((_, Fact::Known(Some(d)))) => format!(
                "the plan found its Deployment {d}, version {}",
                d.version.as_deref().unwrap_or("unknown")
            ),
            Some((_, Fact::Known(None))) => {
                format!("the plan found no Deployment labelled {OPERATOR_SELECTOR}")
            }
            Some((_, Fact::Unknown(why))) => format!("unknown: {why}"),
        };
        let watched = match facts.map(|f| &f.watched) {
            None => "not checked".to_owned(),
            Some(Fact::Known(w)) => format!("the plan read that it watches {w}"),
            Some(Fact::Unknown(why)) => format!("unknown: {why}"),
        };
        let version = format!(
            "spec.flinkVersion {}; the operator records an UnsupportedFlinkVersion Event for a version it ignores{}",
            self.flink_version.as_deref().unwrap_or("unset"),
            if self
                .events
                .iter()
                .any(|e| e.contains("UnsupportedFlinkVersion"))
            {
                ""
            } else {
                ", and none was seen"
            }
        );
        vec![
            format!("the operator is not installed or not running ({installed})"),
            format!(
                "the operator does not watch namespace {} ({watched})",
                self.namespace
            ),
            format!("the operator does not support the Flink version ({version})"),
        ]
    }

    /// One line: what happened, the likely causes and the fix.
    pub fn summary(&self) -> String {
        format!(
            "FlinkDeployment {}/{} got no status from the Flink Kubernetes Operator within {:?}; likely causes: {}; check the operator (kubectl get deploy -A -l {}) and its log",
            self.namespace,
            self.name,
            self.waited,
            self.causes().join("; "),
            crate::operator::OPERATOR_SELECTOR
        )
    }
}

impl fmt::Display for NoStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "FlinkDeployment {}/{} got no status from the Flink Kubernetes Operator within {:?}; likely causes:",
            self.namespace, self.name, self.waited
        )?;
        for cause in self.causes() {
            write!(f, "\n  - {cause}")?;
        }
        write_events(f, &self.events)
    }
}

/// The words of a client error: `code reason: message` for an API server answer, the chain of
/// causes otherwise.
pub(crate) fn kube_message(err: &kube::Error) -> String {
    match err {
        kube::Error::Api(status) => {
            let mut words = status.code.to_string();
            if !status.reason.is_empty() {
                words.push(' ');
                words.push_str(&status.reason);
            }
            if !status.message.is_empty() {
                words.push_str(": ");
                words.push_str(&status.message);
            }
            words
        }
        other => flink_eks_plan::one_line_chain(other),
    }
}

/// Maps a client error to an [`Error`], naming what was attempted.
pub(crate) fn from_kube(action: String, err: kube::Error) -> Error {
    match err {
        kube::Error::Api(status) if status.is_forbidden() => Error::Forbidden {
            action,
            message: status.message,
        },
        other => Error::Kube {
            action,
            message: kube_message(&other),
        },
    }
}

/// The HTTP status of a failed S3 call, when a response came back.
pub(crate) fn status_of<E>(err: &SdkError<E>) -> Option<u16> {
    err.raw_response().map(|r| r.status().as_u16())
}

/// The error code S3 answered with, when it answered with one.
pub(crate) fn s3_code<E: ProvideErrorMetadata>(err: &SdkError<E>) -> Option<&str> {
    err.as_service_error().and_then(ProvideErrorMetadata::code)
}

/// S3's code and message (`PreconditionFailed: At least one of the pre-conditions ...`), the
/// HTTP status when it sent no body (a HEAD), or the client's chain of causes.
pub(crate) fn s3_message<E>(err: &SdkError<E>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let Some(service) = err.as_service_error() else {
        return match err {
            SdkError::DispatchFailure(_) => format!(
                "cannot reach the S3 endpoint: {}",
                flink_eks_plan::one_line_chain(err)
            ),
            _ => flink_eks_plan::one_line_chain(err),
        };
    };
    match (service.code(), service.message(), status_of(err)) {
        (Some(code), Some(message), _) => format!("{code}: {message}"),
        (Some(code), None, _) => code.to_owned(),
        (None, Some(message), _) => message.to_owned(),
        (None, None, Some(status)) => format!("HTTP {status}"),
        (None, None, None) => flink_eks_plan::one_line_chain(err),
    }
}

/// What is wrong with the credentials, when the call failed for want of usable ones: S3
/// refused the key (`InvalidAccessKeyId`, `SignatureDoesNotMatch`, `ExpiredToken`), or the
/// SDK found none to sign with (its error types are private, so their text is the only way
/// to tell).
fn credentials_problem<E>(err: &SdkError<E>) -> Option<String>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    if let Some(code @ ("InvalidAccessKeyId" | "SignatureDoesNotMatch" | "ExpiredToken")) =
        s3_code(err)
    {
        return Some(s3_message(err).replace(code, &format!("S3 answered {code}")));
    }
    if err.as_service_error().is_some() {
        return None;
    }
    let full = aws_smithy_types::error::display::DisplayErrorContext(err).to_string();
    let markers = [
        "no identity resolver",
        "CredentialsNotLoaded",
        "the credential provider",
    ];
    markers
        .iter()
        .any(|m| full.contains(m))
        .then(|| flink_eks_plan::one_line_chain(err))
}

/// Maps a failed S3 call on `location` to an [`Error`].
pub(crate) fn from_s3<E>(location: &S3Location, operation: &'static str, err: &SdkError<E>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    from_s3_at(location.bucket(), &location.to_string(), operation, err)
}

/// [`from_s3`] for a call on `name` (an object, or a prefix `s3://BUCKET/PREFIX/`) in
/// `bucket`.
pub(crate) fn from_s3_at<E>(
    bucket: &str,
    name: &str,
    operation: &'static str,
    err: &SdkError<E>,
) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let code = s3_code(err);
    if let Some(detail) = credentials_problem(err) {
        return Error::NoCredentials {
            location: name.to_owned(),
            operation,
            detail,
        };
    }
    if code == Some("NoSuchBucket") {
        return Error::NoSuchBucket {
            bucket: bucket.to_owned(),
        };
    }
    if status_of(err) == Some(403) || code == Some("AccessDenied") {
        return Error::S3AccessDenied {
            location: name.to_owned(),
            operation,
            message: s3_message(err),
        };
    }
    Error::S3 {
        location: name.to_owned(),
        operation,
        message: s3_message(err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_api_server_answer_reads_as_code_reason_and_message() {
        let status =
            kube::core::Status::failure("the object has been modified", "Conflict").with_code(409);
        let err = from_kube(
            "apply FlinkDeployment default/job".into(),
            kube::Error::Api(Box::new(status)),
        );
        assert_eq!(
            err.to_string(),
            "failed to apply FlinkDeployment default/job: 409 Conflict: the object has been modified"
        );
    }

    #[test]
    fn every_message_is_one_line_without_a_trailing_period() {
        let failure = DeploymentFailure {
            namespace: "default".into(),
            name: "job".into(),
            error: OperatorError {
                error_type: None,
                message: "the Flink job is FAILED".into(),
                reason: None,
                causes: Vec::new(),
            },
            state: ObservedState {
                generation: Some(1),
                observed_generation: Some(1),
                lifecycle_state: None,
                job_state: None,
                job_manager: None,
                reconciliation: None,
                error: None,
            },
            pod: Some("job-1".into()),
            pod_problems: vec!["container flink-main-container exited with code 1 (Error)".into()],
            job_manager_log: vec!["line 1".into(), "line 2".into()],
            init_container_log: None,
            why: None,
            events: Vec::new(),
        };
        let timeout = WaitTimeout {
            namespace: "default".into(),
            name: "job".into(),
            generation: 1,
            waited: Duration::from_secs(2),
            last_states: vec![failure.state.clone()],
            last_watch_error: Some("connection reset".into()),
            events: vec!["Warning Error: boom".into()],
            pod: None,
        };
        for err in [
            Error::Failed(Box::new(failure.clone())),
            Error::Timeout(Box::new(timeout.clone())),
            Error::S3 {
                location: "s3://b/k".into(),
                operation: "PutObject",
                message: "InternalError: try again".into(),
            },
        ] {
            let text = err.to_string();
            assert!(!text.contains('\n'), "{text}");
            assert!(!text.ends_with('.'), "{text}");
        }
        assert!(
            failure
                .to_string()
                .contains("last lines of the JobManager log (job-1):\n    line 1")
        );
        assert!(
            timeout
                .to_string()
                .contains("last states seen (oldest first):")
        );
    }

    #[test]
    fn the_classes_follow_what_the_user_must_do() {
        let stale = Stale::of(
            &flink_eks_plan::Operation::new(
                "s3-object",
                "s3://b/k",
                flink_eks_plan::Action::Update,
            ),
            "another ETag",
        );
        assert_eq!(Error::from(stale).class(), FailureClass::Stale);
        assert_eq!(
            Error::NoSuchBucket { bucket: "b".into() }.class(),
            FailureClass::BadInput
        );
        assert_eq!(
            Error::Forbidden {
                action: "a".into(),
                message: "m".into()
            }
            .class(),
            FailureClass::Auth
        );
    }
}

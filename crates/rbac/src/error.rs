//! What can go wrong, with what to do about it.

use flink_eks_manifest::InvalidName;

/// Errors of [`crate::Rbac`]. Each message names the resource and, where there is one, the
/// next thing to try.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The namespace or service account breaks Kubernetes' name rules; nothing was sent.
    #[error("{0}")]
    InvalidInput(#[from] InvalidName),

    /// The plan holds an unmet precondition; it is not applied and nothing was written.
    #[error("{0}; nothing was written")]
    Blocked(crate::plan::Blocker),

    /// The API server refused the caller (403).
    #[error(
        "the API server refused to {operation} {resource}: {message}; the deploying identity \
         needs that permission in the namespace (kubectl auth can-i {verb} {what} -n {namespace})"
    )]
    Forbidden {
        /// What was attempted (`create role`).
        operation: String,
        /// `namespace/name`.
        resource: String,
        /// The API server's message.
        message: String,
        /// The verb, for `kubectl auth can-i`.
        verb: &'static str,
        /// The resource type, for `kubectl auth can-i`.
        what: &'static str,
        /// The namespace.
        namespace: String,
    },

    /// Another Kubernetes call failed.
    #[error("Kubernetes {operation} of {resource} failed: {message}; check the kubeconfig context")]
    Kube {
        /// What was attempted.
        operation: String,
        /// `namespace/name`.
        resource: String,
        /// The API server's code, reason and message (or the client's error).
        message: String,
        /// The client's error.
        #[source]
        source: Box<kube::Error>,
    },

    /// A guarded write found its resource changed since the plan was made; nothing was
    /// written to it.
    #[error(transparent)]
    Stale(#[from] flink_eks_plan::Stale),
}

/// A specialised `Result` for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

pub(crate) fn kube_error(
    operation: impl Into<String>,
    resource: &str,
    source: kube::Error,
) -> Error {
    let message = match &source {
        kube::Error::Api(status) => {
            format!("{} {}: {}", status.code, status.reason, status.message)
        }
        other => flink_eks_plan::one_line_chain(other),
    };
    Error::Kube {
        operation: operation.into(),
        resource: resource.to_owned(),
        message,
        source: Box::new(source),
    }
}

impl flink_eks_plan::Classify for Error {
    fn class(&self) -> flink_eks_plan::FailureClass {
        use flink_eks_plan::FailureClass;
        match self {
            Error::InvalidInput(_) => FailureClass::BadInput,
            Error::Blocked(blocker) if blocker.is_auth() => FailureClass::Auth,
            Error::Blocked(_) => FailureClass::BadInput,
            Error::Forbidden { .. } => FailureClass::Auth,
            Error::Stale(_) => FailureClass::Stale,
            Error::Kube { .. } => FailureClass::Remote,
        }
    }
}

//! What can go wrong, with what to do about it.

use std::time::Duration;

use aws_credential_types::provider::error::CredentialsError;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use flink_eks_manifest::InvalidName;

use crate::documents::{DocumentError, UnsupportedRegion};

/// Errors of [`crate::Irsa`]. Each message names the input or resource and, where there
/// is one, the next thing to try.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A name in the spec breaks the rules of IAM, EKS, S3 or Kubernetes; nothing was sent.
    #[error("{0}")]
    InvalidInput(#[from] InvalidName),

    /// The AWS configuration names no region.
    #[error(
        "no AWS region is configured: set AWS_REGION, or `region` in the profile of ~/.aws/config"
    )]
    NoRegion,

    /// The region is in a partition this crate does not address.
    #[error(transparent)]
    UnsupportedRegion(#[from] UnsupportedRegion),

    /// No AWS credentials could be found or loaded.
    #[error(
        "no AWS credentials: {detail}; set AWS_PROFILE (and run `aws sso login` for SSO profiles), \
         or run `aws configure`"
    )]
    NoCredentials {
        /// What the credential provider chain said.
        detail: String,
    },

    /// DescribeCluster found no cluster of that name in the region.
    #[error(
        "EKS cluster {cluster:?} was not found in region {region}: check the name with \
         `aws eks list-clusters --region {region}`, or set the region of the cluster"
    )]
    ClusterNotFound {
        /// The cluster name as given.
        cluster: String,
        /// The region searched.
        region: String,
    },

    /// The cluster reports no OIDC issuer, so IAM roles for service accounts cannot work.
    #[error(
        "EKS cluster {cluster:?} has no OIDC issuer (identity.oidc.issuer is empty): \
         IRSA needs one; use EKS Pod Identity instead, or recreate the cluster on a current platform version"
    )]
    NoOidcIssuer {
        /// The cluster name.
        cluster: String,
    },

    /// A role of that name exists and flink-eks did not create it for this service account.
    #[error(
        "IAM role {role:?} exists but was not created by flink-eks for {namespace}/{service_account} \
         on cluster {cluster:?} (tags found: {tags}); it is left untouched: choose another role name, \
         or pass the adopt flag to take it over"
    )]
    RoleNotOurs {
        /// The role name.
        role: String,
        /// The cluster of the spec.
        cluster: String,
        /// The namespace of the spec.
        namespace: String,
        /// The service account of the spec.
        service_account: String,
        /// The tags the role carries, as `key=value` pairs.
        tags: String,
    },

    /// A policy of that name exists and flink-eks did not create it for this service account.
    #[error(
        "IAM policy {policy_arn} exists but was not created by flink-eks for this service account \
         (tags found: {tags}); it is left untouched: choose another policy name, or pass the adopt flag \
         to take it over"
    )]
    PolicyNotOurs {
        /// The policy ARN.
        policy_arn: String,
        /// The tags the policy carries, as `key=value` pairs.
        tags: String,
    },

    /// The plan holds an unmet precondition; it is not applied and nothing was written.
    #[error("{0}; nothing was written")]
    Blocked(crate::plan::Blocker),

    /// The caller is not allowed to make a call.
    #[error(
        "AWS refused {operation} on {resource}: {message}; the caller needs IAM permission for \
         {operation} (run `aws sts get-caller-identity` to see who the caller is)"
    )]
    AccessDenied {
        /// The API operation, e.g. `iam:CreateRole`.
        operation: &'static str,
        /// The resource the call was about.
        resource: String,
        /// AWS's own message.
        message: String,
    },

    /// An AWS call failed for another reason.
    #[error("AWS {operation} on {resource} failed: {message}")]
    Aws {
        /// The API operation, e.g. `iam:CreateRole`.
        operation: &'static str,
        /// The resource the call was about.
        resource: String,
        /// The service's error code and message (or, when no answer came, the cause).
        message: String,
    },

    /// A Kubernetes call failed.
    #[error(
        "Kubernetes {operation} of {resource} failed: {message}; check the kubeconfig context and that the namespace exists"
    )]
    Kube {
        /// What was attempted (`get`, `apply`, `patch`).
        operation: &'static str,
        /// `namespace/name` of the service account.
        resource: String,
        /// The API server's code, reason and message (or the client's error).
        message: String,
        /// The client's error.
        #[source]
        source: Box<kube::Error>,
    },

    /// A guarded write found its resource changed since the plan was made; nothing was
    /// written to that resource.
    #[error(transparent)]
    Stale(#[from] flink_eks_plan::Stale),

    /// IAM returned a policy document that is not valid policy JSON.
    #[error("{what}: {source}")]
    Document {
        /// Which document (`trust policy of role R`, `policy P version v3`).
        what: String,
        /// The parse error.
        #[source]
        source: DocumentError,
    },

    /// IAM did not show a change within the bounded wait.
    #[error(
        "IAM did not show {what} after waiting {waited:?}: IAM is eventually consistent, \
         run the same command again in a minute"
    )]
    NotVisible {
        /// What was waited for.
        what: String,
        /// How long.
        waited: Duration,
    },
}

/// A specialised `Result` for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Maps an SDK error to [`Error`], recognising missing credentials and denied access.
pub(crate) fn aws_error<E, R>(operation: &'static str, resource: &str, err: SdkError<E, R>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    let message = match &err {
        SdkError::ServiceError(service) => service_message(service.err()),
        _ => sdk_failure(operation, &err),
    };
    if let SdkError::DispatchFailure(failure) = &err {
        if let Some(detail) = failure
            .as_connector_error()
            .and_then(|c| credentials_problem(c))
        {
            return Error::NoCredentials { detail };
        }
        // Raised by the SDK when no credentials provider is configured at all; the error
        // type is private to aws-smithy-runtime, so its text is the only way to tell.
        if DisplayErrorContext(&err)
            .to_string()
            .contains("no identity resolver")
        {
            return Error::NoCredentials {
                detail: "no credentials provider is configured".to_owned(),
            };
        }
    }
    if let SdkError::ServiceError(service) = &err {
        let code = service.err().code().unwrap_or_default();
        if code.contains("AccessDenied") || code == "UnauthorizedOperation" {
            return Error::AccessDenied {
                operation,
                resource: resource.to_owned(),
                message: service.err().message().unwrap_or(code).to_owned(),
            };
        }
        if code == "InvalidClientTokenId"
            || code == "ExpiredToken"
            || code == "SignatureDoesNotMatch"
        {
            return Error::NoCredentials {
                detail: format!("{operation} answered {code}: {message}"),
            };
        }
    }
    Error::Aws {
        operation,
        resource: resource.to_owned(),
        message,
    }
}

/// Why an SDK call got no answer from the service, on one line and without the SDK's Debug
/// form: `cannot reach the AWS IAM endpoint: <cause>` for a connection that failed.
fn sdk_failure<E, R>(operation: &str, err: &SdkError<E, R>) -> String
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let service = operation
        .split_once(':')
        .map_or(operation, |(service, _)| service)
        .to_uppercase();
    match err {
        SdkError::DispatchFailure(failure) => match failure.as_connector_error() {
            Some(cause) => format!(
                "cannot reach the AWS {service} endpoint: {}",
                flink_eks_plan::one_line_chain(cause)
            ),
            None => format!(
                "cannot reach the AWS {service} endpoint: {}",
                flink_eks_plan::one_line_chain(err)
            ),
        },
        SdkError::TimeoutError(_) => {
            format!(
                "the AWS {service} endpoint did not answer in time: {}",
                flink_eks_plan::one_line_chain(err)
            )
        }
        _ => flink_eks_plan::one_line_chain(err),
    }
}

/// `Code: message` of a service's error, one line.
fn service_message(err: &impl ProvideErrorMetadata) -> String {
    let code = err.code().unwrap_or("Unknown");
    match err.message() {
        Some(message) => format!("{code}: {}", message.trim().replace('\n', " ")),
        None => code.to_owned(),
    }
}

/// The service's error code of an SDK error, if the service answered.
pub(crate) fn error_code<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> Option<&str> {
    match err {
        SdkError::ServiceError(service) => service.err().code(),
        _ => None,
    }
}

/// The message of a credentials error in the chain of causes, if there is one.
fn credentials_problem(err: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut current = Some(err);
    while let Some(e) = current {
        if e.downcast_ref::<CredentialsError>().is_some() {
            return Some(flink_eks_plan::one_line_chain(e));
        }
        current = e.source();
    }
    None
}

/// Whether an SDK error is IAM's or EKS's "no such thing".
pub(crate) fn is_not_found<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> bool {
    match err {
        SdkError::ServiceError(service) => matches!(
            service.err().code(),
            Some("NoSuchEntity" | "NoSuchEntityException" | "ResourceNotFoundException")
        ),
        _ => false,
    }
}

pub(crate) fn kube_error(operation: &'static str, resource: &str, source: kube::Error) -> Error {
    let message = match &source {
        kube::Error::Api(status) => {
            format!("{} {}: {}", status.code, status.reason, status.message)
        }
        other => flink_eks_plan::one_line_chain(other),
    };
    Error::Kube {
        operation,
        resource: resource.to_owned(),
        message,
        source: Box::new(source),
    }
}

/// The HTTP status of a Kubernetes API error, if the server answered.
pub(crate) fn kube_status(err: &kube::Error) -> Option<u16> {
    match err {
        kube::Error::Api(status) => Some(status.code),
        _ => None,
    }
}

impl flink_eks_plan::Classify for Error {
    fn class(&self) -> flink_eks_plan::FailureClass {
        use flink_eks_plan::FailureClass;
        match self {
            Error::NoCredentials { .. } | Error::AccessDenied { .. } => FailureClass::Auth,
            Error::InvalidInput(_)
            | Error::NoRegion
            | Error::UnsupportedRegion(_)
            | Error::ClusterNotFound { .. }
            | Error::RoleNotOurs { .. }
            | Error::PolicyNotOurs { .. }
            | Error::Blocked(_) => FailureClass::BadInput,
            Error::Stale(_) => FailureClass::Stale,
            _ => FailureClass::Remote,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_smithy_runtime_api::client::result::ConnectorError;

    #[test]
    fn a_connection_failure_reads_as_cannot_reach_without_the_sdk_debug_form() {
        let refused =
            std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "tcp connect error");
        let err: SdkError<aws_sdk_iam::operation::get_role::GetRoleError, _> =
            SdkError::<_, aws_smithy_runtime_api::http::Response>::dispatch_failure(
                ConnectorError::io(Box::new(refused)),
            );
        let text = aws_error("iam:GetRole", "role r", err).to_string();
        assert!(
            text.contains("cannot reach the AWS IAM endpoint")
                && text.contains("tcp connect error"),
            "{text}"
        );
        for debug in ["DispatchFailure", "ConnectorError", "{", "Some("] {
            assert!(!text.contains(debug), "{text}");
        }
        assert!(!text.contains('\n'), "{text}");
    }
}

//! IAM for a Flink job on EKS in one idempotent call: a least-privilege S3 read policy, a
//! role whose trust policy admits exactly one Kubernetes service account, the policy
//! attached, and the service account annotated with the role (IAM roles for service
//! accounts), or an EKS Pod Identity association instead.
//!
//! It replaces the eleven manual commands of the write-up this project started from
//! (`create-policy`, `eksctl`, the trust JSON, `create-role`, `attach`, `annotate`, three
//! checks) and fixes what the write-up got wrong: `s3:GetObject` is granted on the object
//! (`arn:aws:s3:::BUCKET/KEY`), never on the bare bucket ARN; the role is created once and
//! corrected afterwards instead of being created twice; IAM's eventual consistency is
//! waited for; a policy's five-version limit is respected.
//!
//! The crate has two halves:
//! - [`documents`] and [`IrsaSpec`]: the policy documents as typed data, compared by
//!   meaning, rendered as JSON. Pure, no IO.
//! - [`Irsa`]: the calls to STS, EKS, IAM and Kubernetes. [`Irsa::plan`] only reads;
//!   [`Irsa::apply`] writes only what differs (a second run makes no write call);
//!   [`Irsa::verify`] runs the write-up's checks; [`Irsa::teardown`] removes only what
//!   carries flink-eks's tags.
//!
//! ```no_run
//! use flink_eks_irsa::{IdentityMode, Irsa, IrsaSpec, S3Grant, no_progress};
//! use flink_eks_manifest::S3Location;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let aws = aws_config::load_from_env().await;
//! let kube = kube::Client::try_default().await?;
//! let irsa = Irsa::new(&aws, kube);
//! let spec = IrsaSpec {
//!     cluster: "flink-demo".into(),
//!     namespace: "default".into(),
//!     service_account: "flink".into(),
//!     role_name: "flink-s3-reader".into(),
//!     policy_name: "flink-s3-read-script".into(),
//!     grant: S3Grant::Object(S3Location::parse("s3://flink-s3-test/test/python_demo_s3.py")?),
//!     list_bucket: true,
//!     mode: IdentityMode::Irsa,
//!     adopt: false,
//! };
//! print!("{}", irsa.plan(&spec).await?);
//! let report = irsa.apply(&spec, &no_progress).await?;
//! print!("{report}");
//! let checks = irsa.verify(&spec).await?;
//! print!("{checks}");
//! assert!(checks.is_ok());
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs)]

mod client;
pub mod documents;
mod error;
mod plan;
mod report;
mod spec;

pub use client::{Irsa, WaitPolicy};
pub use error::{Error, Result};
pub use plan::{
    Action, CLUSTER_TAG_KEY, FIELD_MANAGER, MANAGED_BY_KEY, MANAGED_BY_VALUE, NAMESPACE_TAG_KEY,
    Plan, PlanRow, ROLE_ARN_ANNOTATION, ResourceKind, SERVICE_ACCOUNT_TAG_KEY, is_ours,
    ownership_tags, resources,
};
pub use report::{
    ApplyReport, Check, CheckKind, Outcome, Progress, TeardownReport, TeardownRow, VerifyReport,
    no_progress,
};
pub use spec::{
    IdentityMode, IrsaSpec, S3Grant, render_permission_policy, render_trust_policy,
    validate_cluster_name, validate_policy_name, validate_role_name,
};

/// The README's example, compiled as a doctest so that it stays true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

//! IAM for a Flink job on EKS, planned as data and applied as planned: a least-privilege S3
//! read policy, a role whose trust policy admits exactly one Kubernetes service account, the
//! policy attached, and the service account annotated with the role (IAM roles for service
//! accounts), or an EKS Pod Identity association instead.
//!
//! It replaces the eleven manual commands of the usual procedure (`create-policy`,
//! `eksctl`, the trust JSON, `create-role`, `attach`, `annotate`, three checks) and avoids
//! what that procedure commonly gets wrong: `s3:GetObject` is granted on the object
//! (`arn:aws:s3:::BUCKET/KEY`), never on the bare bucket ARN; the role is created once and
//! corrected afterwards instead of being created twice; IAM's eventual consistency is
//! waited for; a policy's five-version limit is respected.
//!
//! The crate is split by concern:
//! - [`documents`] and [`IrsaSpec`]: the policy documents as typed data, compared by
//!   meaning, rendered as JSON. Pure, no IO.
//! - the decisions (is it ours, same document, which operation, does a check pass, what may
//!   teardown remove): pure functions of what was read.
//! - [`Irsa`]: the calls to STS, EKS, IAM and Kubernetes. [`Irsa::plan`] reads once
//!   (concurrently) and returns a [`Plan`] of typed operations ([`Op`]), printable as
//!   [`flink_eks_plan::Operation`]s; [`Irsa::apply`] performs exactly those, guarded where
//!   the service offers a precondition, and a plan of "no change" only makes no call at all;
//!   [`Irsa::verify`] checks what was made; [`Irsa::teardown_plan`] and
//!   [`Irsa::apply_teardown`] remove only what carries flink-eks's tags.
//!
//! ```no_run
//! use flink_eks_irsa::{Event, IdentityMode, Irsa, IrsaSpec, S3Grant};
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
//!     state: None,
//! };
//! let plan = irsa.plan(&spec).await?;
//! for operation in plan.operations() {
//!     println!("{operation}");
//! }
//! let report = irsa.apply(&plan, &|event: &Event| eprintln!("{event:?}")).await?;
//! print!("{report}");
//! let checks = irsa.verify(&spec).await?;
//! print!("{checks}");
//! assert!(checks.is_ok());
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs)]

mod client;
mod cluster;
mod decide;
pub mod documents;
mod error;
pub mod evaluate;
mod plan;
mod pods;
mod read;
mod report;
mod spec;
mod write;

pub use client::{Irsa, WaitPolicy};
pub use cluster::ClusterIdentity;
pub use decide::{
    CLUSTER_TAG_KEY, DOCUMENT_TAG_KEY, MANAGED_BY_KEY, MANAGED_BY_VALUE, NAMESPACE_TAG_KEY,
    ROLE_ARN_ANNOTATION, SERVICE_ACCOUNT_TAG_KEY, is_ours, ownership_tags,
};
pub use error::{Error, Result};
pub use flink_eks_plan::{Action, Operation, Stale};
pub use plan::{Blocker, NewPolicyVersion, Op, Plan, TeardownOp, TeardownPlan, kind, resources};
pub use pods::{AccountPods, ROLE_ARN_ENV, StalePod, WEB_IDENTITY_TOKEN_ENV, stale_pods};
pub use report::{
    ApplyReport, Check, CheckKind, Event, Outcome, TeardownReport, TeardownRow, VerifyReport,
};
pub use spec::{
    IdentityMode, IrsaSpec, S3Grant, render_permission_policy, render_trust_policy,
    validate_cluster_name, validate_policy_name, validate_role_name,
};

/// The README's example, compiled as a doctest so that it stays true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

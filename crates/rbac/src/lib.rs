//! The Kubernetes RBAC a Flink job's service account needs, planned as data and applied as
//! planned.
//!
//! In native mode the JobManager creates the TaskManager pods and the HA ConfigMaps through
//! the Kubernetes API, as the FlinkDeployment's `spec.serviceAccount`. The operator's Helm
//! chart grants that only to its account `flink` in the namespaces it watches; any other
//! account or namespace leaves the job restarting with `pods is forbidden`. This crate gives
//! the account the chart's job rules ([`JOB_RULES`]) through a Role and RoleBinding named
//! `flink-eks-<service account>`, labelled as flink-eks's, creating the namespace when it is
//! missing, and skipping both when SubjectAccessReviews say the account may already do
//! everything the rules grant.
//!
//! - [`RbacSpec`]: the namespace and service account, and the objects they imply (pure).
//! - the decisions (is it ours, is it as wanted, what the reviews say, what teardown may
//!   remove) are pure functions of what was read; [`judge`] is public, for checks of
//!   their own (`cargo xtask doctor`).
//! - [`Rbac`]: the calls. [`Rbac::plan`] reads once and returns a [`Plan`] of typed
//!   operations ([`Op`]), printable as [`flink_eks_plan::Operation`]s; [`Rbac::apply`]
//!   performs exactly those, guarded by `resourceVersion` and `uid`; [`Rbac::review`] asks
//!   the SubjectAccessReviews alone; [`Rbac::teardown_plan`] and [`Rbac::apply_teardown`]
//!   remove only the Role and RoleBinding flink-eks made.
//! - [`Rbac::review_caller`]: what the deploying identity itself may write (any step's
//!   [`Write`]s, with the API server's escalation rule for the job's Role and RoleBinding),
//!   judged by [`CallerReview::refusals`] before anything is written.
//!
//! ```no_run
//! use flink_eks_rbac::{Rbac, RbacSpec};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let rbac = Rbac::new(kube::Client::try_default().await?);
//! let spec = RbacSpec::new("streaming", "flink-runner");
//! let plan = rbac.plan(&spec).await?;
//! print!("{plan}"); // "create role streaming/flink-eks-flink-runner (…)"
//! rbac.apply(&plan, &flink_eks_plan::Silent).await?;
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs)]

mod caller;
mod client;
mod decide;
mod error;
mod plan;
mod spec;

pub use caller::{CallerReview, Refusal, Write};
pub use client::{Event, Rbac, Reading};
pub use decide::{Access, describe_attributes, is_ours, judge};
pub use error::{Error, Result};
pub use plan::{Blocker, Guard, Op, Plan, TeardownOp, TeardownPlan, kind, resources};
pub use spec::{
    JOB_RULES, JobRule, MANAGED_BY_KEY, MANAGED_BY_VALUE, RbacSpec, SERVICE_ACCOUNT_KEY,
    describe_rules,
};

/// The README's example, compiled as a doctest so that it stays true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

//! Takes a PyFlink script to a running job on the Flink Kubernetes Operator: uploads the
//! script to S3 with its SHA-256, server-side applies the FlinkDeployment that
//! [`flink_eks_manifest`] renders, and watches what the operator does with it.
//!
//! Each write is planned first, as data, and then performed exactly as planned:
//!
//! - [`Uploader::plan`] reads the object once (one `HeadObject`, no GET of the body) and
//!   returns an [`UploadPlan`]: no change when the object already carries the script's
//!   SHA-256, create, or update. [`Uploader::apply`] performs it: no call for no change, a
//!   `PutObject` with `If-None-Match: *` for a create, with `If-Match` on the planned `ETag`
//!   for an update.
//! - [`Submitter::plan`] reads the live FlinkDeployment once and returns an [`ApplyPlan`]
//!   (what it saw: `resourceVersion`, uid, generation, status). [`Submitter::apply`]
//!   performs it: no call for no change, a server-side apply as
//!   [`flink_eks_manifest::FIELD_MANAGER`] otherwise, an update carrying the planned
//!   `resourceVersion` and uid (sent again after an operator's status write only when what
//!   the plan compared is unchanged). The script's checksum sits
//!   in the pod template's annotation, so a changed script is a new generation.
//! - A write whose precondition no longer holds fails with [`Error::Stale`] and writes
//!   nothing. Each plan prints as a [`flink_eks_plan::Operation`].
//! - [`Submitter::wait_until_running`] watches (a Kubernetes watch, resumed when dropped)
//!   until the operator reports the new generation running and stable, or failed, and
//!   reports each [`WatchEvent`] to a [`flink_eks_plan::Progress`]; a failure carries the
//!   operator's error and the log tail of the JobManager (and of the fetch initContainer
//!   when that is what failed).
//! - [`Submitter::logs`], [`Submitter::status`], [`Submitter::delete`],
//!   [`Uploader::delete`] and [`Uploader::delete_prefix`] (every object under a job's state
//!   prefix, for a teardown asked to remove its state) are day-two work.
//! - [`interpret`] and [`StatusView`] are the pure reading of a status, without IO.
//!
//! # Example
//!
//! ```no_run
//! use std::time::Duration;
//!
//! use flink_eks_manifest::{PyFlinkJob, S3Location};
//! use flink_eks_submit::{Submitter, Uploader, WatchEvent, s3_client};
//! use futures::StreamExt as _;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let script = std::fs::read("python_demo_s3.py")?;
//! let location = S3Location::new("flink-s3-test", "test/python_demo_s3.py")?;
//!
//! let uploader = Uploader::new(s3_client(&aws_config::load_from_env().await));
//! let upload = uploader.plan(&location, &script).await?;
//! println!("{}", upload.operation()); // "create s3-object s3://flink-s3-test/test/python_demo_s3.py (…)"
//! let uploaded = uploader.apply(&upload, &script).await?;
//!
//! let job = PyFlinkJob::new("python-example-s3", location, &uploaded.sha256, "hiha2/flink-s3:latest", "1.20.0");
//! let submitter = Submitter::new(kube::Client::try_default().await?);
//! let plan = submitter.plan(&job.build()?).await?;
//! println!("{}", plan.operation());
//! let applied = submitter.apply(&plan).await?;
//! if !plan.already_running() {
//!     let show = |event: &WatchEvent| println!("{event}");
//!     let running = submitter
//!         .wait_until_running(&applied.namespace, &applied.name, applied.generation, Duration::from_secs(300), &show)
//!         .await?;
//!     println!("running: {}", running.state);
//! }
//!
//! let mut log = submitter.logs(&applied.namespace, &applied.name, false, Some(20)).await?;
//! while let Some(line) = log.next().await {
//!     println!("{}", line?);
//! }
//! # Ok(())
//! # }
//! ```
#![warn(missing_docs)]

mod cluster;
mod error;
pub mod operator;
mod prefix;
mod remove;
mod snapshot;
mod status;
mod upload;

pub use cluster::{
    Applied, ApplyPlan, DEFAULT_LOG_TAIL_LINES, DEPLOYMENT_KIND, Deletion, LogStream, Running,
    Submitter, TERMINAL_EVENT_REASONS, WaitOptions, WatchEvent,
};
pub use error::{DeploymentFailure, Error, NoStatus, PodReport, Result, WaitTimeout};
pub use operator::{OperatorCheck, OperatorFacts};
pub use prefix::{MAX_KEYS_PER_DELETE, PrefixRemoval};
pub use remove::Removal;
pub use snapshot::{
    JOB_REFERENCE_LABEL, JOB_STATE_MANAGER, SAVEPOINT_TRIGGER_MANAGER, Savepoint, SavepointTrigger,
    SnapshotProgress, SnapshotRecord, StateInfo, job_running, nonce_savepoint, snapshot_progress,
    state_info, suspend_outcome, upgrade_with,
};
pub use status::{
    ObservedState, OperatorError, Phase, ScriptSync, StatusView, WaitSettings,
    deployed_script_sha256, interpret, interpret_state, observed_generation, parse_operator_error,
};
pub use upload::{
    BucketCheck, OBJECT_KIND, SHA256_METADATA_KEY, UploadOutcome, UploadPlan, Uploader, s3_client,
    sha256_hex,
};

/// The README's example, compiled as a doctest so that it stays true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

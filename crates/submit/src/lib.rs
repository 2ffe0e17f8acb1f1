//! Takes a PyFlink script to a running job on the Flink Kubernetes Operator: uploads the
//! script to S3 with its SHA-256, server-side applies the FlinkDeployment that
//! [`flink_eks_manifest`] renders, and watches what the operator does with it.
//!
//! - [`Uploader`] puts the script at `s3://BUCKET/KEY` with S3's own SHA-256 checksum and a
//!   `sha256` metadata entry, and skips the write when the object already carries that
//!   checksum (one `HeadObject`, no GET). [`plan_upload`] answers what it would do.
//! - [`Submitter::apply`] server-side applies as field manager [`FIELD_MANAGER`]; the
//!   script's checksum sits in the pod template's annotation, so a changed script is a new
//!   generation and an unchanged one is no change at all. [`Submitter::plan_apply`] reads
//!   and compares without writing.
//! - [`Submitter::wait_until_running`] watches (a Kubernetes watch, resumed when dropped)
//!   until the operator reports the new generation running and stable, or failed, and
//!   reports each state change; a failure carries the operator's error and the log tail of
//!   the JobManager (and of the fetch initContainer when that is what failed).
//! - [`Submitter::logs`], [`Submitter::status`] and [`Submitter::delete`] are day-two work.
//! - [`interpret`] and [`StatusView`] are the pure reading of a status, without IO.
//!
//! # Example
//!
//! ```no_run
//! use std::time::Duration;
//!
//! use flink_eks_manifest::{PyFlinkJob, S3Location};
//! use flink_eks_submit::{Submitter, Uploader, s3_client};
//! use futures::StreamExt as _;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let script = std::fs::read("python_demo_s3.py")?;
//! let location = S3Location::new("flink-s3-test", "test/python_demo_s3.py")?;
//!
//! let aws = aws_config::load_from_env().await;
//! let uploaded = Uploader::new(s3_client(&aws)).upload(&location, &script).await?;
//! println!("{location}: {}", uploaded.action);
//!
//! let job = PyFlinkJob::new("python-example-s3", location, &uploaded.sha256, "hiha2/flink-s3:latest", "1.20.0");
//! let submitter = Submitter::new(kube::Client::try_default().await?);
//! let applied = submitter.apply(&job.build()?).await?;
//! let running = submitter
//!     .wait_until_running(&applied.namespace, &applied.name, applied.generation, Duration::from_secs(300), |state| {
//!         println!("{state}")
//!     })
//!     .await?;
//! println!("running: {}", running.state);
//!
//! let mut log = submitter.logs(&applied.namespace, &applied.name, false, Some(20)).await?;
//! while let Some(line) = log.next().await {
//!     println!("{}", line?);
//! }
//! # Ok(())
//! # }
//! ```
#![warn(missing_docs)]

mod change;
mod cluster;
mod error;
mod remove;
mod status;
mod upload;

pub use change::Change;
pub use cluster::{
    Applied, ApplyPlan, DEFAULT_LOG_TAIL_LINES, Deletion, FIELD_MANAGER, LogStream, Running,
    Submitter,
};
pub use error::{Failure, SubmitError, WaitTimeout};
pub use remove::Removal;
pub use status::{
    ObservedState, OperatorError, Phase, ScriptSync, StatusView, deployed_script_sha256, interpret,
    interpret_state, observed_generation, parse_operator_error,
};
pub use upload::{
    SHA256_METADATA_KEY, UploadError, UploadOutcome, UploadPlan, Uploader, plan_upload, s3_client,
    sha256_hex,
};

/// What [`Submitter::plan_apply`] answers, as a free function over a client.
pub async fn plan_apply(
    client: &kube::Client,
    deployment: &flink_eks_manifest::FlinkDeployment,
) -> Result<Change, SubmitError> {
    Submitter::new(client.clone()).plan_apply(deployment).await
}

//! `run --local`: the deployment's job on this machine, from the same configuration, before
//! anything reaches the cluster (crate `flink-eks-local`).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use flink_eks_local::{ImageJob, LocalJob, Outcome, Python, RunOptions};
use flink_eks_manifest::FlinkRelease;
use flink_eks_plan::Progress;

use crate::{Config, Failure, Inputs};

/// How `run --local` runs the job.
#[derive(Debug, Clone)]
pub struct LocalOptions {
    /// An interpreter that has `apache-flink`, instead of the cached virtual environment.
    pub python: Option<PathBuf>,
    /// An unbounded job is stopped after this long.
    pub duration: Duration,
    /// Run inside the job's image with Docker rather than with PyFlink from PyPI.
    pub image: bool,
    /// The cache of virtual environments (one per Flink release) and the run's own files.
    pub cache_dir: PathBuf,
}

/// The job as the FlinkDeployment would run it: its script, arguments, Flink release,
/// parallelism and `flinkConfiguration` (rendered by the same builder as the manifest).
pub fn local_job(config: &Config, inputs: &Inputs) -> Result<LocalJob> {
    let deployment = inputs.deployment()?;
    let release: FlinkRelease = config
        .job
        .flink_version
        .parse()
        .context("key job.flink_version")
        .context(Failure::BadInput)?;
    Ok(LocalJob {
        script: config.script_path(),
        args: inputs.job.args.clone(),
        release,
        flink_configuration: deployment.spec.flink_configuration.unwrap_or_default(),
        parallelism: inputs.job.parallelism,
    })
}

/// Runs the deployment's job on this machine: in a local mini-cluster with PyFlink from PyPI,
/// or with `options.image` inside the job's image (`inputs.image_ref`), which has the S3
/// plugin. A failed job is an error of class [`Failure::JobFailed`].
pub async fn run_local(
    config: &Config,
    inputs: &Inputs,
    options: &LocalOptions,
    progress: &dyn Progress<flink_eks_local::Event>,
) -> Result<Outcome> {
    let job = local_job(config, inputs)?;
    let run = RunOptions {
        duration: options.duration,
        work_dir: options.cache_dir.join(format!("run-{}", inputs.name)),
    };
    let outcome = if options.image {
        let image = ImageJob {
            image: inputs.image_ref.clone(),
            python: inputs.job.python_executable.clone(),
            region: config.s3.region.clone(),
        };
        flink_eks_local::run_in_image(&job, &image, &run, progress).await?
    } else {
        let python = match &options.python {
            Some(path) => Python::Interpreter(path.clone()),
            None => Python::Cached {
                cache_dir: options.cache_dir.clone(),
            },
        };
        flink_eks_local::run_local(&job, &python, &run, progress).await?
    };
    Ok(outcome)
}

//! The steps run alone: `cargo xtask image`, `irsa [--verify]`, `upload`, and `teardown`.

use std::time::Instant;

use anyhow::{Context, Result, bail};
use flink_eks_image_builder::{ImageBuilder, NoProgress, Outcome, ProgressSink, StderrProgress};

use crate::config::Config;
use crate::deploy::Remote;
use crate::inputs::Inputs;
use crate::plan::Step;
use crate::{Failure, Reporter, classify};

/// Builds and pushes the image, unless the registry already holds it. Needs no cluster.
pub(crate) async fn image(config: &Config, report: &Reporter) -> Result<()> {
    let inputs = Inputs::from_config(config).context(Failure::BadInput)?;
    let aws = crate::clients::aws(config).await;
    let started = Instant::now();
    let outcome = ensure_image(&inputs, &aws, report)
        .await
        .context("step image failed")?;
    let what = if outcome.pushed {
        "built and pushed"
    } else {
        "already in the registry: nothing built or pushed"
    };
    report.step(
        Step::Image,
        &format!("{} {what}", outcome.image),
        Some(started.elapsed()),
    );
    println!("{}", outcome.image);
    Ok(())
}

/// The image-builder's `ensure` with the user's registry credentials and progress on stderr.
pub(crate) async fn ensure_image(
    inputs: &Inputs,
    aws: &aws_config::SdkConfig,
    report: &Reporter,
) -> Result<Outcome> {
    let credentials = crate::clients::registry_credentials(&inputs.image, aws)
        .await
        .map_err(classify)?;
    let builder = ImageBuilder::connect().await.map_err(classify)?;
    let mut progress: Box<dyn ProgressSink> = if report.quiet {
        Box::new(NoProgress)
    } else {
        Box::new(StderrProgress::new())
    };
    builder
        .ensure(&inputs.image, &credentials, progress.as_mut())
        .await
        .map_err(classify)
}

/// Makes the IAM role, policy and annotation match the configuration, or with `verify` runs
/// the write-up's three checks and fails on any mismatch.
pub(crate) async fn irsa(
    remote: &Remote,
    inputs: &Inputs,
    verify: bool,
    report: &Reporter,
) -> Result<()> {
    let Some(spec) = &inputs.irsa else {
        bail!("irsa.mode is access-key-secret: there is no IAM role to manage");
    };
    let irsa = remote.irsa();
    if verify {
        let checks = irsa.verify(spec).await.map_err(classify)?;
        print!("{checks}");
        if !checks.is_ok() {
            let names: Vec<String> = checks.mismatches().map(|c| c.kind.to_string()).collect();
            return Err(anyhow::anyhow!("verification failed: {}", names.join(", "))
                .context(Failure::Remote));
        }
        return Ok(());
    }
    let started = Instant::now();
    let applied = irsa
        .apply(spec, &|p| crate::irsa_progress(report, p))
        .await
        .map_err(classify)
        .context("step irsa failed")?;
    print!("{}", applied.plan);
    let what = if applied.changed() {
        "in place"
    } else {
        "no change"
    };
    report.step(
        Step::Irsa,
        &format!("role {} {what}", applied.role_arn()),
        Some(started.elapsed()),
    );
    Ok(())
}

/// Uploads the script, unless S3 already holds it with the same SHA-256.
pub(crate) async fn upload(remote: &Remote, inputs: &Inputs, report: &Reporter) -> Result<()> {
    let started = Instant::now();
    let outcome = remote
        .uploader()
        .upload(&inputs.script.location, &inputs.script.bytes)
        .await
        .map_err(classify)
        .context("step upload failed")?;
    report.step(
        Step::Upload,
        &format!(
            "{} {} (sha256 {})",
            outcome.location, outcome.action, outcome.sha256
        ),
        Some(started.elapsed()),
    );
    Ok(())
}

/// Removes what the tool created, in reverse order: the FlinkDeployment (so no pod still uses
/// the role), then what irsa tagged as its own, then the script on request.
///
/// The script is deleted only when S3 holds the upload the cluster ran (the checksum on the
/// FlinkDeployment, read before deleting it) or, with no deployment left, the local script:
/// an object someone replaced since is kept.
pub(crate) async fn teardown(
    remote: &Remote,
    inputs: &Inputs,
    delete_script: bool,
    report: &Reporter,
) -> Result<()> {
    let deployed_sha256 = match remote
        .submitter()
        .status(&inputs.namespace, &inputs.name, None)
        .await
    {
        Ok(view) => view.deployed_sha256,
        Err(flink_eks_submit::SubmitError::NotFound { .. }) => None,
        Err(err) => return Err(classify(err)),
    };
    crate::cluster::delete(remote, inputs, report).await?;

    if let Some(spec) = &inputs.irsa {
        let torn = remote.irsa().teardown(spec).await.map_err(classify)?;
        for row in &torn.rows {
            report.step(Step::Irsa, &row.to_string(), None);
        }
    }
    if delete_script {
        let started = Instant::now();
        let removal = remote
            .uploader()
            .delete(
                &inputs.script.location,
                deployed_sha256.as_deref().unwrap_or(&inputs.script.sha256),
            )
            .await
            .map_err(classify)
            .with_context(|| format!("delete the script {}", inputs.script.location))?;
        report.step(
            Step::Upload,
            &format!("{} {removal}", inputs.script.location),
            Some(started.elapsed()),
        );
    } else {
        report.line(&format!(
            "the script stays at {} (pass --delete-script to remove it)",
            inputs.script.location
        ));
    }
    Ok(())
}

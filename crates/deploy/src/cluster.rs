//! The commands that talk to the cluster's workloads: `submit`, `status`, `logs`, `delete`.
//! The work is the submit crate's; this module prints it.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use flink_eks_manifest::FlinkDeployment;
use flink_eks_submit::{ApplyPlan, Deletion};
use futures::StreamExt;

use crate::deploy::Remote;
use crate::inputs::Inputs;
use crate::plan::Step;
use crate::{Output, Reporter, classify};

/// Applies the FlinkDeployment (unless the cluster already has it as rendered) and watches it
/// until the operator runs it, printing each state as it happens and the JobManager's last
/// log lines at the end.
pub(crate) async fn submit(
    remote: &Remote,
    deployment: &FlinkDeployment,
    inputs: &Inputs,
    report: &Reporter,
) -> Result<()> {
    let submitter = remote.submitter();
    let started = Instant::now();
    let planned = submitter.plan_apply(deployment).await.map_err(classify)?;
    let generation = if planned == ApplyPlan::NoChange {
        // Nothing to write: wait on the generation the cluster already has.
        let live = submitter
            .status(&inputs.namespace, &inputs.name, None)
            .await
            .map_err(classify)?;
        report.step(Step::Submit, "FlinkDeployment unchanged", None);
        live.state.generation.unwrap_or_default()
    } else {
        let applied = submitter.apply(deployment).await.map_err(classify)?;
        report.step(
            Step::Submit,
            &format!(
                "FlinkDeployment {} (generation {})",
                applied.action, applied.generation
            ),
            Some(started.elapsed()),
        );
        applied.generation
    };
    let running = submitter
        .wait_until_running(
            &inputs.namespace,
            &inputs.name,
            generation,
            inputs.timeout,
            |state| {
                report.line(&format!("  {state} ({:.1?})", started.elapsed()));
            },
        )
        .await
        .map_err(classify)?;
    let what = if running.finished {
        "finished"
    } else {
        "RUNNING and STABLE"
    };
    report.step(
        Step::Submit,
        &format!("{}/{} {what}", inputs.namespace, inputs.name),
        Some(started.elapsed()),
    );
    print_log_tail(remote, inputs, report).await;
    Ok(())
}

async fn print_log_tail(remote: &Remote, inputs: &Inputs, report: &Reporter) {
    if report.quiet {
        return;
    }
    let lines = async {
        let mut stream = remote
            .submitter()
            .logs(&inputs.namespace, &inputs.name, false, Some(20))
            .await?;
        let mut lines = Vec::new();
        while let Some(line) = stream.next().await {
            lines.push(line?);
        }
        Ok::<_, flink_eks_submit::SubmitError>((stream.pod, lines))
    };
    match lines.await {
        Ok((pod, lines)) => {
            report.line(&format!(
                "JobManager log ({pod}, last {} lines):",
                lines.len()
            ));
            for line in lines {
                report.line(&format!("  {line}"));
            }
        }
        Err(err) => report.line(&format!("(no JobManager log: {err})")),
    }
}

/// Lifecycle, job and JobManager states, the image, and the script deployed against the local one.
pub(crate) async fn status(remote: &Remote, inputs: &Inputs, output: Output) -> Result<()> {
    let view = remote
        .submitter()
        .status(&inputs.namespace, &inputs.name, Some(&inputs.script.sha256))
        .await
        .map_err(classify)?;
    match output {
        Output::Text => print!("{view}"),
        Output::Json => println!("{}", serde_json::to_string_pretty(&view)?),
    }
    Ok(())
}

/// The JobManager's log, optionally followed.
pub(crate) async fn logs(
    remote: &Remote,
    inputs: &Inputs,
    follow: bool,
    tail: Option<i64>,
) -> Result<()> {
    let mut stream = remote
        .submitter()
        .logs(&inputs.namespace, &inputs.name, follow, tail)
        .await
        .map_err(classify)?;
    while let Some(line) = stream.next().await {
        println!("{}", line.map_err(classify)?);
    }
    Ok(())
}

/// Deletes the FlinkDeployment and waits until it is gone.
pub(crate) async fn delete(remote: &Remote, inputs: &Inputs, report: &Reporter) -> Result<()> {
    let started = Instant::now();
    let deletion = remote
        .submitter()
        .delete(&inputs.namespace, &inputs.name, Duration::from_secs(300))
        .await
        .map_err(classify)
        .with_context(|| {
            format!(
                "delete FlinkDeployment {}/{}",
                inputs.namespace, inputs.name
            )
        })?;
    let what = match deletion {
        Deletion::Deleted => "deleted",
        Deletion::NotFound => "not found: nothing to delete",
    };
    report.step(
        Step::Submit,
        &format!(
            "FlinkDeployment {}/{} {what}",
            inputs.namespace, inputs.name
        ),
        Some(started.elapsed()),
    );
    Ok(())
}

//! The commands besides `deploy`: the submit step's apply and watch, and the day-two work
//! (`status`, `logs`, `delete`, `irsa --verify`, `teardown`). Each is its crate's work; this
//! module strings the calls together and reports.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use flink_eks_plan::{Action, Progress};
use flink_eks_submit::{ApplyPlan, Deletion, LogStream, StatusView};
use futures::StreamExt;

use crate::clients::Remote;
use crate::error::{Failure, classify};
use crate::event::Event;
use crate::graph::Step;
use crate::inputs::Inputs;

/// Applies the planned FlinkDeployment and watches it until the operator runs it. A
/// deployment planned as unchanged and already RUNNING and STABLE at its generation is left
/// alone without a call.
pub(crate) async fn submit(
    remote: &Remote,
    inputs: &Inputs,
    plan: &ApplyPlan,
    progress: &dyn Progress<Event>,
) -> Result<String> {
    let note = |text: String| {
        progress.event(&Event::Note {
            step: Step::Submit,
            text,
        })
    };
    if plan.operation().action == Action::NoChange && plan.already_running() {
        note(format!(
            "FlinkDeployment {}/{} unchanged, RUNNING and STABLE",
            inputs.namespace, inputs.name
        ));
        return Ok(String::new());
    }
    let submitter = remote.submitter()?;
    let started = Instant::now();
    progress.event(&Event::StepStarted(Step::Submit));
    let applied = submitter.apply(plan).await?;
    note(format!(
        "FlinkDeployment {} (generation {})",
        plan.operation().action,
        applied.generation
    ));
    let options = flink_eks_submit::WaitOptions::new(inputs.timeout)
        .settings(inputs.wait)
        .operator(plan.operator().map(|check| check.facts.clone()));
    let running = submitter
        .wait_until_running_with(
            &inputs.namespace,
            &inputs.name,
            applied.generation,
            &options,
            &|event: &flink_eks_submit::WatchEvent| {
                progress.event(&Event::Watch {
                    event: event.clone(),
                    elapsed: started.elapsed(),
                })
            },
        )
        .await?;
    if let Ok((pod, lines)) = log_tail(remote, inputs, 20).await {
        progress.event(&Event::LogTail { pod, lines });
    }
    if inputs.is_stateful()
        && plan.operation().action == Action::Update
        && let Ok(info) = submitter.state_info(&inputs.namespace, &inputs.name).await
        && let Some(path) = info.upgrade_savepoint_path
    {
        note(format!("restored from savepoint {path}"));
    }
    let what = if running.finished {
        "finished"
    } else {
        "RUNNING and STABLE"
    };
    Ok(format!("{}/{} {what}", inputs.namespace, inputs.name))
}

async fn log_tail(remote: &Remote, inputs: &Inputs, lines: i64) -> Result<(String, Vec<String>)> {
    let mut stream = remote
        .submitter()?
        .logs(&inputs.namespace, &inputs.name, false, Some(lines))
        .await?;
    let mut tail = Vec::new();
    while let Some(line) = stream.next().await {
        tail.push(line?);
    }
    Ok((stream.pod.clone(), tail))
}

/// Lifecycle, job and JobManager states, the image, and the deployed script against the
/// local one.
pub async fn status(remote: &Remote, inputs: &Inputs) -> Result<StatusView> {
    remote
        .submitter()?
        .status(&inputs.namespace, &inputs.name, Some(&inputs.script.sha256))
        .await
        .map_err(classify)
}

/// The JobManager's log, optionally followed.
pub async fn logs(
    remote: &Remote,
    inputs: &Inputs,
    follow: bool,
    tail: Option<i64>,
) -> Result<LogStream> {
    remote
        .submitter()?
        .logs(&inputs.namespace, &inputs.name, follow, tail)
        .await
        .map_err(classify)
}

/// Deletes the FlinkDeployment and waits until it is gone.
pub async fn delete(remote: &Remote, inputs: &Inputs) -> Result<Deletion> {
    remote
        .submitter()?
        .delete(&inputs.namespace, &inputs.name, Duration::from_secs(300))
        .await
        .map_err(classify)
        .with_context(|| {
            format!(
                "delete FlinkDeployment {}/{}",
                inputs.namespace, inputs.name
            )
        })
}

/// irsa's checks: the OIDC provider, the trust policy, the attached and permission policies,
/// the annotation (or association). Fails naming every mismatch.
pub async fn verify_irsa(remote: &Remote, inputs: &Inputs) -> Result<flink_eks_irsa::VerifyReport> {
    let Some(spec) = &inputs.irsa else {
        return Err(
            anyhow!("irsa.mode is access-key-secret: there is no IAM role to verify")
                .context(Failure::BadInput),
        );
    };
    remote.irsa()?.verify(spec).await.map_err(classify)
}

/// Removes what the tool created, in reverse order: the FlinkDeployment (so no pod still uses
/// the role), then what irsa tagged as its own, then the Role and RoleBinding rbac labelled
/// as its own (never the namespace), then the script and the job's state on request.
///
/// The script is deleted only when S3 holds the upload the cluster ran (the checksum on the
/// FlinkDeployment, read before deleting it) or, with no deployment left, the local script:
/// an object someone replaced since is kept.
///
/// With `final_savepoint`, a savepoint of the running job comes first (its failure deletes
/// nothing); without it, a stateful job with no savepoint from the last hour gets a warning.
/// The savepoints and checkpoints under the state prefix are kept unless `delete_state`
/// asks for them to go: then, once the FlinkDeployment is gone (the operator removes it only
/// after its JobManager, so no job can still write a checkpoint), every object under the
/// prefix is deleted, except the script. Both together are refused before anything is
/// touched: the final savepoint would be deleted at once.
pub async fn teardown(
    remote: &Remote,
    inputs: &Inputs,
    options: TeardownOptions,
    progress: &dyn Progress<Event>,
) -> Result<()> {
    let note = |step: Step, text: String| progress.event(&Event::Note { step, text });
    options.check()?;
    let TeardownOptions {
        delete_script,
        final_savepoint,
        delete_state,
    } = options;
    crate::state::before_teardown(remote, inputs, final_savepoint, progress).await?;
    let submitter = remote.submitter()?;
    let deployed_sha256 = match submitter
        .status(&inputs.namespace, &inputs.name, None)
        .await
    {
        Ok(view) => view.deployed_sha256,
        Err(flink_eks_submit::Error::NotFound { .. }) => None,
        Err(err) => return Err(classify(err)),
    };
    let deletion = delete(remote, inputs).await?;
    note(
        Step::Submit,
        format!(
            "FlinkDeployment {}/{} {}",
            inputs.namespace,
            inputs.name,
            match deletion {
                Deletion::Deleted => "deleted",
                Deletion::NotFound => "not found: nothing to delete",
            }
        ),
    );

    if let Some(spec) = &inputs.irsa {
        let torn = remote.irsa()?.teardown(spec).await.map_err(classify)?;
        for row in &torn.rows {
            note(Step::Irsa, row.to_string());
        }
    }
    // The Role and RoleBinding last: nothing runs as the account once the deployment is gone.
    let rbac = remote.rbac()?;
    let plan = rbac.teardown_plan(&inputs.rbac).await.map_err(classify)?;
    rbac.apply_teardown(&plan, &flink_eks_plan::Silent)
        .await
        .map_err(classify)?;
    for operation in plan.operations() {
        note(Step::Rbac, operation.to_string());
    }
    if delete_script {
        let removal = remote
            .uploader()
            .delete(
                &inputs.script.location,
                deployed_sha256.as_deref().unwrap_or(&inputs.script.sha256),
            )
            .await
            .map_err(classify)
            .with_context(|| format!("delete the script {}", inputs.script.location))?;
        note(
            Step::Upload,
            format!("{} {removal}", inputs.script.location),
        );
    } else {
        note(
            Step::Upload,
            format!(
                "the script stays at {} (pass --delete-script to remove it)",
                inputs.script.location
            ),
        );
    }
    match (&inputs.job.state, delete_state) {
        (Some(state), true) => {
            let script = &inputs.script.location;
            let keep = (script.bucket() == state.prefix.bucket()).then(|| script.key());
            let removal = remote
                .uploader()
                .delete_prefix(&state.prefix, keep)
                .await
                .map_err(classify)
                .with_context(|| format!("delete the state under {}", state.prefix))?;
            note(Step::Upload, format!("state: {removal}"));
        }
        (Some(state), false) => note(
            Step::Upload,
            format!(
                "the state stays under {} (pass --delete-state to remove its checkpoints and savepoints)",
                state.prefix
            ),
        ),
        (None, true) => note(
            Step::Upload,
            "the job is stateless: it has no state prefix, nothing to delete".to_owned(),
        ),
        (None, false) => {}
    }
    Ok(())
}

/// What [`teardown`] removes besides what the tool created, and what it does first.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TeardownOptions {
    /// Delete the script from S3 (`--delete-script`).
    pub delete_script: bool,
    /// Take a final savepoint of the running job first (`--savepoint`).
    pub final_savepoint: bool,
    /// Delete every object under the job's state prefix once the job is gone
    /// (`--delete-state`).
    pub delete_state: bool,
}

impl TeardownOptions {
    /// Refuses what contradicts itself: a final savepoint that the state's deletion would
    /// remove at once.
    pub fn check(&self) -> Result<()> {
        if self.final_savepoint && self.delete_state {
            return Err(anyhow!(
                "--savepoint and --delete-state together: the final savepoint would be written under the state prefix and deleted at once; pass --savepoint to keep the state, or --delete-state alone to remove it"
            )
            .context(Failure::BadInput));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_final_savepoint_and_the_state_deleted_together_are_bad_input() {
        let both = TeardownOptions {
            final_savepoint: true,
            delete_state: true,
            ..TeardownOptions::default()
        };
        let err = both.check().unwrap_err();
        assert_eq!(crate::failure_of(&err), Some(Failure::BadInput));
        let line = format!("{err:#}");
        assert!(
            line.contains("--savepoint") && line.contains("--delete-state"),
            "{line}"
        );
        for alone in [
            TeardownOptions {
                final_savepoint: true,
                delete_script: true,
                ..TeardownOptions::default()
            },
            TeardownOptions {
                delete_state: true,
                delete_script: true,
                ..TeardownOptions::default()
            },
        ] {
            alone.check().unwrap();
        }
    }
}

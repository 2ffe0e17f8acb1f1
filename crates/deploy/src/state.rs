//! The job's state: `savepoint`, `suspend`, `resume`, what the operator knows of the last
//! savepoint and checkpoint, a deploy that starts from a savepoint, and what teardown says
//! about state. Each call is submit's; this module strings them together and reports.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use flink_eks_manifest::UpgradeMode;
use flink_eks_plan::Progress;
use flink_eks_submit::{Savepoint, StateInfo};

use crate::clients::Remote;
use crate::error::{Failure, classify};
use crate::event::Event;
use crate::graph::Step;
use crate::inputs::Inputs;

/// How old the last savepoint may be before teardown warns that the job's state would be
/// left without a recent one.
pub const RECENT_SAVEPOINT: Duration = Duration::from_secs(3600);

impl Inputs {
    /// The job starts from `path` (`job.initialSavepointPath`), allowing state no operator
    /// claims when `allow_non_restored_state`. The operator reads it only for a job without
    /// state of its own (a first deployment, or after a delete).
    pub fn starting_from(
        mut self,
        path: Option<String>,
        allow_non_restored_state: bool,
    ) -> Result<Inputs> {
        if let Some(path) = &path {
            check_savepoint_path(path).context(Failure::BadInput)?;
        } else if allow_non_restored_state {
            return Err(anyhow::anyhow!(
                "--allow-non-restored-state needs --from-savepoint PATH: it only applies to a job started from a savepoint"
            )
            .context(Failure::BadInput));
        }
        self.job.initial_savepoint_path = path;
        self.job.allow_non_restored_state = allow_non_restored_state;
        Ok(self)
    }

    /// Whether the job carries state over upgrades (`savepoint` or `last-state`).
    pub fn is_stateful(&self) -> bool {
        self.job.upgrade_mode != UpgradeMode::Stateless
    }
}

/// A savepoint path the operator can hand to Flink: a URI with a scheme (`s3://…`).
fn check_savepoint_path(path: &str) -> Result<()> {
    let Some((scheme, rest)) = path.split_once("://") else {
        bail!(
            "--from-savepoint {path:?} is not a URI: give the savepoint's full path, e.g. s3://bucket/state/savepoints/savepoint-1a2b3c-0123456789ab"
        );
    };
    if scheme.is_empty() || rest.trim_matches('/').is_empty() {
        bail!(
            "--from-savepoint {path:?} names no savepoint: give its full path, e.g. s3://bucket/state/savepoints/savepoint-1a2b3c-0123456789ab"
        );
    }
    Ok(())
}

/// Takes a savepoint of the running job and waits for it.
pub async fn savepoint(remote: &Remote, inputs: &Inputs) -> Result<Savepoint> {
    remote
        .submitter()?
        .savepoint(&inputs.namespace, &inputs.name, inputs.timeout)
        .await
        .map_err(classify)
}

/// Suspends the job (with a savepoint in `savepoint` mode) and waits until it is; answers
/// the savepoint the operator took.
pub async fn suspend(remote: &Remote, inputs: &Inputs) -> Result<Option<String>> {
    remote
        .submitter()?
        .suspend(&inputs.namespace, &inputs.name, inputs.timeout)
        .await
        .map_err(classify)
}

/// Resumes a suspended job and waits until it runs; answers the savepoint it restored from.
pub async fn resume(
    remote: &Remote,
    inputs: &Inputs,
    progress: &dyn Progress<Event>,
) -> Result<Option<String>> {
    let started = std::time::Instant::now();
    remote
        .submitter()?
        .resume(
            &inputs.namespace,
            &inputs.name,
            inputs.timeout,
            &|event: &flink_eks_submit::WatchEvent| {
                progress.event(&Event::Watch {
                    event: event.clone(),
                    elapsed: started.elapsed(),
                })
            },
        )
        .await
        .map_err(classify)
}

/// The last savepoint and checkpoint the operator knows of.
pub async fn state_info(remote: &Remote, inputs: &Inputs) -> Result<StateInfo> {
    remote
        .submitter()?
        .state_info(&inputs.namespace, &inputs.name)
        .await
        .map_err(classify)
}

/// Whether `info`'s last savepoint is older than [`RECENT_SAVEPOINT`] at `now_millis`, or
/// missing: the job's state would be lost with the deployment.
pub fn lacks_recent_savepoint(info: &StateInfo, now_millis: i64) -> bool {
    let Some(at) = info.last_savepoint.as_ref().and_then(|s| s.at.as_deref()) else {
        return true;
    };
    let taken = at.parse::<i64>().ok().or_else(|| {
        at.parse::<k8s_openapi::jiff::Timestamp>()
            .ok()
            .map(|t| t.as_millisecond())
    });
    taken.is_none_or(|t| {
        now_millis.saturating_sub(t)
            > i64::try_from(RECENT_SAVEPOINT.as_millis()).unwrap_or(i64::MAX)
    })
}

/// Before teardown deletes a stateful job: a final savepoint when asked, else a warning when
/// the job has no recent one. A job that is not running is left as it is.
pub(crate) async fn before_teardown(
    remote: &Remote,
    inputs: &Inputs,
    final_savepoint: bool,
    progress: &dyn Progress<Event>,
) -> Result<()> {
    let submitter = remote.submitter()?;
    let info = match submitter.state_info(&inputs.namespace, &inputs.name).await {
        Ok(info) => info,
        Err(flink_eks_submit::Error::NotFound { .. }) => return Ok(()),
        Err(err) => return Err(classify(err)),
    };
    if final_savepoint {
        let taken = savepoint(remote, inputs)
            .await
            .context("the final savepoint before teardown (nothing was deleted)")?;
        progress.event(&Event::Note {
            step: Step::Submit,
            text: format!("final savepoint {}", taken.path),
        });
        return Ok(());
    }
    if inputs.is_stateful()
        && lacks_recent_savepoint(&info, k8s_openapi::jiff::Timestamp::now().as_millisecond())
    {
        progress.event(&Event::Warning(format!(
            "FlinkDeployment {}/{} is {} and has no savepoint from the last hour: its state goes with it (run `cargo xtask savepoint` first, or teardown --savepoint)",
            inputs.namespace,
            inputs.name,
            inputs.job.upgrade_mode.as_crd_value()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use flink_eks_submit::SnapshotRecord;

    fn with_savepoint(at: &str) -> StateInfo {
        StateInfo {
            last_savepoint: Some(SnapshotRecord {
                path: Some("s3://b/sp".to_owned()),
                at: Some(at.to_owned()),
                trigger: None,
                source: "x".to_owned(),
            }),
            ..StateInfo::default()
        }
    }

    #[test]
    fn a_savepoint_from_the_last_hour_is_recent() {
        let now = "2026-01-01T12:00:00Z"
            .parse::<k8s_openapi::jiff::Timestamp>()
            .unwrap()
            .as_millisecond();
        assert!(lacks_recent_savepoint(&StateInfo::default(), now));
        assert!(!lacks_recent_savepoint(
            &with_savepoint("2026-01-01T11:30:00Z"),
            now
        ));
        assert!(lacks_recent_savepoint(
            &with_savepoint("2026-01-01T10:00:00Z"),
            now
        ));
        assert!(!lacks_recent_savepoint(
            &with_savepoint(&(now - 1000).to_string()),
            now
        ));
        assert!(lacks_recent_savepoint(&with_savepoint("yesterday"), now));
    }

    #[test]
    fn a_savepoint_path_is_a_uri() {
        assert!(check_savepoint_path("s3://bucket/state/savepoints/savepoint-1").is_ok());
        for bad in ["", "savepoint-1", "s3://", "://x"] {
            let err = check_savepoint_path(bad).unwrap_err().to_string();
            assert!(err.contains("--from-savepoint"), "{err}");
        }
    }
}

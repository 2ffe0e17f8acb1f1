//! Everything that talks to the Kubernetes API: the types it returns, the [`Submitter`] and
//! its status read. Its work is split by concern: `decide` holds the pure decisions of the
//! apply (no IO, unit-tested), `apply` the plan and its apply, `watch` the wait until running,
//! `pods` the JobManager pod and its logs, `delete` the deletion.

use flink_eks_manifest::FlinkDeployment;
use flink_eks_plan::{Action, Operation};
use futures::Stream;
use futures::stream::BoxStream;
use kube::api::Api;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, Result, from_kube};
use crate::operator::{OperatorBlocker, OperatorCheck};
use crate::status::{ObservedState, OperatorError, Phase, StatusView, interpret_state};

mod apply;
mod decide;
mod delete;
#[cfg(test)]
mod fixtures;
mod pods;
mod watch;

pub use watch::{TERMINAL_EVENT_REASONS, WaitOptions};

/// How many log lines a failure report carries by default, per container.
pub const DEFAULT_LOG_TAIL_LINES: i64 = 40;

/// The kind of the apply's [`Operation`].
pub const DEPLOYMENT_KIND: &str = "flink-deployment";

/// What applying one FlinkDeployment will do, found with one GET of the live object and no
/// write: made by [`Submitter::plan`], performed exactly by [`Submitter::apply`].
///
/// It keeps what the GET saw (`resourceVersion`, uid, generation, status, the values of the
/// fields it compared), so that a caller can tell without another read whether an unchanged
/// deployment already runs ([`ApplyPlan::already_running`]), and the apply can tell whether
/// what the plan rested on is still so.
#[derive(Debug, Clone)]
pub struct ApplyPlan {
    object: FlinkDeployment,
    namespace: String,
    name: String,
    action: Action,
    resource_version: Option<String>,
    uid: Option<String>,
    live_generation: Option<i64>,
    live_state: Option<ObservedState>,
    differences: Vec<String>,
    /// The live value of each field compared (`None`: absent), as the plan saw it.
    compared: Vec<(Vec<String>, Option<Value>)>,
    /// Whether the namespace was found missing (read only when the FlinkDeployment was).
    namespace_missing: bool,
    /// The API server's words when the caller may not read the FlinkDeployment: the plan is
    /// then made as a create, and refused.
    unreadable: Option<String>,
    /// What was read about the operator beside the plan ([`ApplyPlan::with_operator`]).
    operator: Option<OperatorCheck>,
}

impl ApplyPlan {
    /// The object that is applied (namespace set, server-assigned metadata cleared).
    pub fn deployment(&self) -> &FlinkDeployment {
        &self.object
    }

    /// Namespace of the FlinkDeployment.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// Name of the FlinkDeployment.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// What applying the plan does: [`Action::Create`], [`Action::Update`] or
    /// [`Action::NoChange`].
    pub fn action(&self) -> Action {
        self.action
    }

    /// `metadata.resourceVersion` of the live object when planned (`None` when absent): an
    /// update is sent with it, so the API server refuses it if the object changed since.
    pub fn resource_version(&self) -> Option<&str> {
        self.resource_version.as_deref()
    }

    /// `metadata.uid` of the live object when planned (`None` when absent): an update is sent
    /// with it, so the API server refuses it if the object was deleted since (an apply that
    /// would create the object ignores `resourceVersion`, not `uid`).
    pub fn uid(&self) -> Option<&str> {
        self.uid.as_deref()
    }

    /// The API server's refusal when the caller may not read the FlinkDeployment: what it
    /// holds is unknown, so the plan (made as a create) only says so, and
    /// [`Submitter::apply`] refuses it with [`Error::Forbidden`] before any call. A caller
    /// that also asks what the identity may write can then name every missing permission
    /// at once.
    pub fn unreadable(&self) -> Option<&str> {
        self.unreadable.as_deref()
    }

    /// Whether the plan found the namespace missing: a create there cannot succeed, and
    /// [`Submitter::apply`] refuses it with [`Error::NamespaceNotFound`] before any call.
    pub fn namespace_missing(&self) -> bool {
        self.namespace_missing
    }

    /// The plan with its namespace created by an earlier step (the deploy pipeline's rbac
    /// step, which plans the namespace's creation): the create is planned into it instead
    /// of refused. The create itself is unchanged, still guarded as planned.
    #[must_use]
    pub fn with_namespace_created_first(mut self) -> Self {
        self.namespace_missing = false;
        self
    }

    /// Adds what was read about the operator in the same wave ([`Submitter::check_operator`]):
    /// its blockers refuse the plan unless the deployment already runs unchanged, and the
    /// wait names its facts when no status comes.
    #[must_use]
    pub fn with_operator(mut self, check: OperatorCheck) -> Self {
        self.operator = Some(check);
        self
    }

    /// What was read about the operator, when it was.
    pub fn operator(&self) -> Option<&OperatorCheck> {
        self.operator.as_ref()
    }

    /// The operator's blockers that hold for this plan: none when the deployment already runs
    /// unchanged (nothing is written or waited for).
    pub fn operator_blockers(&self) -> &[OperatorBlocker] {
        match &self.operator {
            Some(check) if !self.already_running() => &check.blockers,
            _ => &[],
        }
    }

    /// `metadata.generation` of the live object when planned.
    pub fn live_generation(&self) -> Option<i64> {
        self.live_generation
    }

    /// The live object's status when planned.
    pub fn live_state(&self) -> Option<&ObservedState> {
        self.live_state.as_ref()
    }

    /// The fields applying changes, as dotted paths (`spec.image`,
    /// `metadata.annotations.deploy.flink-eks.io/script-sha256`); a field this tool set
    /// before and no longer sets is listed with `(removed)`. Empty unless an update.
    pub fn differences(&self) -> &[String] {
        &self.differences
    }

    /// Whether the plan changes nothing and the live object already runs its generation,
    /// stable: then there is nothing to wait for.
    pub fn already_running(&self) -> bool {
        self.action == Action::NoChange
            && self
                .live_state
                .as_ref()
                .is_some_and(|state| interpret_state(state) == Phase::Running)
    }

    /// The printable operation: kind `flink-deployment`, name `namespace/name`, observed the
    /// `resourceVersion`.
    pub fn operation(&self) -> Operation {
        let detail = match self.action {
            Action::Create if self.unreadable.is_some() => {
                "not read: the deploying identity may not read it".to_owned()
            }
            Action::Create => String::new(),
            Action::NoChange if self.already_running() => format!(
                "running and stable at generation {}",
                self.live_generation.unwrap_or_default()
            ),
            Action::NoChange => String::new(),
            _ => {
                let mut shown: Vec<&str> = self
                    .differences
                    .iter()
                    .take(3)
                    .map(String::as_str)
                    .collect();
                let more = self.differences.len().saturating_sub(shown.len());
                let tail = format!("and {more} more");
                if more > 0 {
                    shown.push(&tail);
                }
                let changes = shown.join(", ");
                match crate::snapshot::upgrade_with(&self.object) {
                    Some(how) => format!("{how}: {changes}"),
                    None => changes,
                }
            }
        };
        let operation = Operation::new(
            DEPLOYMENT_KIND,
            format!("{}/{}", self.namespace, self.name),
            self.action,
        )
        .detail(detail);
        match &self.resource_version {
            Some(version) => operation.observed(format!("resourceVersion {version}")),
            None => operation,
        }
    }
}

/// What [`Submitter::apply`] did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Applied {
    /// Namespace of the FlinkDeployment.
    pub namespace: String,
    /// Name of the FlinkDeployment.
    pub name: String,
    /// `metadata.generation` after the apply (the live one for no change): the generation
    /// to wait for.
    pub generation: i64,
    /// What was done: [`Action::NoChange`] means no call was made.
    pub action: Action,
}

/// What [`Submitter::wait_until_running`] reports while it watches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum WatchEvent {
    /// The FlinkDeployment's state changed: the state now (the first one seen counts as a change).
    State(ObservedState),
    /// The watch was cut off or refused; it is resumed from the last version seen (listed
    /// again when that version is too old).
    Resumed {
        /// Why it stopped, in the client's words.
        reason: String,
    },
    /// A Warning Event about the FlinkDeployment (`involvedObject`), as the operator recorded it.
    Warning {
        /// The Event's reason (`UnsupportedFlinkVersion`, `ValidationError`, `Error`, …).
        reason: String,
        /// Its message.
        message: String,
        /// How many times the operator recorded it.
        count: i32,
    },
    /// The operator wrote `status.error` and retries: shown, not a failure by itself.
    Retrying {
        /// The operator's error.
        error: OperatorError,
    },
}

impl std::fmt::Display for WatchEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WatchEvent::State(state) => write!(f, "{state}"),
            WatchEvent::Resumed { reason } => write!(f, "watch interrupted ({reason}), resuming"),
            WatchEvent::Warning {
                reason,
                message,
                count,
            } => {
                write!(f, "warning: Event {reason}: {message}")?;
                if *count > 1 {
                    write!(f, " (x{count})")?;
                }
                Ok(())
            }
            WatchEvent::Retrying { error } => {
                write!(
                    f,
                    "warning: the operator reports an error and retries: {error}"
                )
            }
        }
    }
}

/// A FlinkDeployment that reached its goal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Running {
    /// Namespace of the FlinkDeployment.
    pub namespace: String,
    /// Name of the FlinkDeployment.
    pub name: String,
    /// The generation that runs.
    pub generation: i64,
    /// The final state.
    pub state: ObservedState,
    /// `true` when the job did not stay running but finished (a bounded job).
    pub finished: bool,
    /// The distinct states seen on the way, oldest first.
    pub history: Vec<ObservedState>,
}

/// What [`Submitter::delete`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Deletion {
    /// The FlinkDeployment existed and is now gone.
    Deleted,
    /// There was no FlinkDeployment of that name: nothing was done.
    NotFound,
}

/// The JobManager's log, line by line (see [`Submitter::logs`]).
pub struct LogStream {
    /// The pod the lines come from.
    pub pod: String,
    lines: BoxStream<'static, Result<String>>,
}

impl std::fmt::Debug for LogStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogStream")
            .field("pod", &self.pod)
            .finish_non_exhaustive()
    }
}

impl Stream for LogStream {
    type Item = Result<String>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        self.lines.as_mut().poll_next(cx)
    }
}

/// Applies FlinkDeployments and follows what the operator does with them.
#[derive(Clone)]
pub struct Submitter {
    client: kube::Client,
    log_tail_lines: i64,
}

impl std::fmt::Debug for Submitter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Submitter")
            .field("default_namespace", &self.client.default_namespace())
            .field("log_tail_lines", &self.log_tail_lines)
            .finish()
    }
}

impl Submitter {
    /// A submitter talking to the cluster of `client`.
    pub fn new(client: kube::Client) -> Self {
        Submitter {
            client,
            log_tail_lines: DEFAULT_LOG_TAIL_LINES,
        }
    }

    /// Sets how many log lines per container a failure report carries.
    pub fn with_log_tail_lines(mut self, lines: i64) -> Self {
        self.log_tail_lines = lines.max(1);
        self
    }

    /// The client this submitter uses.
    pub fn client(&self) -> &kube::Client {
        &self.client
    }

    fn api(&self, namespace: &str) -> Api<FlinkDeployment> {
        Api::namespaced(self.client.clone(), namespace)
    }

    /// The namespace and name of `deployment` (the client's default namespace when unset).
    fn identity<'a>(&'a self, deployment: &'a FlinkDeployment) -> Result<(&'a str, &'a str)> {
        let name = deployment
            .metadata
            .name
            .as_deref()
            .ok_or(Error::MissingName)?;
        let namespace = deployment
            .metadata
            .namespace
            .as_deref()
            .unwrap_or_else(|| self.client.default_namespace());
        Ok((namespace, name))
    }

    /// Lifecycle, job and JobManager states, image and script checksum (deployed against
    /// `local_sha256`) of one FlinkDeployment.
    pub async fn status(
        &self,
        namespace: &str,
        name: &str,
        local_sha256: Option<&str>,
    ) -> Result<StatusView> {
        let deployment = read_deployment(&self.api(namespace), namespace, name).await?;
        Ok(StatusView::of(&deployment, local_sha256))
    }
}

/// Reads one FlinkDeployment through `api`, typed or dynamic; an absent one is
/// [`Error::NotFound`].
pub(crate) async fn read_deployment<K>(api: &Api<K>, namespace: &str, name: &str) -> Result<K>
where
    K: Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    api.get_opt(name)
        .await
        .map_err(|e| from_kube(format!("read FlinkDeployment {namespace}/{name}"), e))?
        .ok_or_else(|| Error::NotFound {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        })
}

#[cfg(test)]
mod tests {

    use super::*;
    use crate::cluster::fixtures::*;
    use flink_eks_plan::Silent;
    use std::time::Duration;

    #[test]
    fn the_plan_tells_whether_an_unchanged_deployment_already_runs() {
        let running = plan_of(
            Action::NoChange,
            Some(status("STABLE", "RUNNING", "READY", 2)),
        );
        assert!(running.already_running());
        let op = running.operation();
        assert_eq!(
            (op.kind, op.name.as_str()),
            ("flink-deployment", "default/job")
        );
        assert_eq!(op.observed.as_deref(), Some("resourceVersion 7"));
        assert_eq!(op.detail, "running and stable at generation 2");
        // The operator has not reconciled generation 2 yet: still something to wait for.
        assert!(
            !plan_of(
                Action::NoChange,
                Some(status("STABLE", "RUNNING", "READY", 1))
            )
            .already_running()
        );
        assert!(
            !plan_of(
                Action::NoChange,
                Some(status("DEPLOYED", "RECONCILING", "DEPLOYING", 2))
            )
            .already_running()
        );
        let update = plan_of(
            Action::Update,
            Some(status("STABLE", "RUNNING", "READY", 2)),
        );
        assert!(!update.already_running());
        assert_eq!(
            update.operation().to_string(),
            "update flink-deployment default/job (spec.image)"
        );
        let create = plan_of(Action::Create, None);
        assert_eq!(create.operation().observed, None);
    }

    #[tokio::test]
    async fn the_futures_can_run_on_any_worker_thread() {
        fn send<T: Send>(_: &T) {}
        let (submitter, _handle) = mock();
        let plan = plan_of(Action::NoChange, None);
        send(&submitter.plan(plan.deployment()));
        send(&submitter.apply(&plan));
        send(&submitter.wait_until_running("default", "job", 1, Duration::from_secs(1), &Silent));
        send(&submitter.delete("default", "job", Duration::from_secs(1)));
    }
}

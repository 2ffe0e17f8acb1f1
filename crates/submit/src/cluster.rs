//! Everything that talks to the Kubernetes API: apply, watch, logs, status, delete.

use std::time::{Duration, Instant};

use std::collections::BTreeSet;

use flink_eks_manifest::{
    FETCH_CONTAINER, FIELD_MANAGER, FlinkDeployment, FlinkDeploymentSpec, MAIN_CONTAINER,
};
use flink_eks_plan::{Action, Operation, Progress, Stale};
use futures::stream::BoxStream;
use futures::{AsyncBufReadExt as _, Stream, StreamExt as _, TryStreamExt as _};
use k8s_openapi::api::core::v1::{ContainerStatus, Namespace, Pod};
use kube::api::{Api, DeleteParams, ListParams, LogParams, Patch, PatchParams};
use kube::runtime::WatchStreamExt as _;
use kube::runtime::watcher;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{DeploymentFailure, Error, Result, WaitTimeout, from_kube, kube_message};
use crate::status::{
    ObservedState, OperatorError, Phase, StatusView, WaitTracker, interpret_state,
};

/// How many log lines a failure report carries by default, per container.
pub const DEFAULT_LOG_TAIL_LINES: i64 = 40;

/// The kind of the apply's [`Operation`].
const OPERATION_KIND: &str = "flink-deployment";

/// How many times [`Submitter::apply`] sends an update at most: once with the planned
/// resourceVersion, and again only after a 409 whose cause left the plan's basis unchanged
/// (the operator's status writes).
const MAX_UPDATE_ATTEMPTS: usize = 3;

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

    /// Whether the plan found the namespace missing: a create there cannot succeed, and
    /// [`Submitter::apply`] refuses it with [`Error::NamespaceNotFound`] before any call.
    pub fn namespace_missing(&self) -> bool {
        self.namespace_missing
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
                shown.join(", ")
            }
        };
        let operation = Operation::new(
            OPERATION_KIND,
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
}

impl std::fmt::Display for WatchEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WatchEvent::State(state) => write!(f, "{state}"),
            WatchEvent::Resumed { reason } => write!(f, "watch interrupted ({reason}), resuming"),
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

    /// What applying `deployment` will do, from one GET of the live object (no write): create
    /// when there is none, no change when the live object holds every field this tool sets
    /// with the value it sets and nothing this tool set before is left out, update otherwise.
    ///
    /// Only the fields applied are compared (read through the same type, so `1` against
    /// `1.0` is no change): a field another manager sets, such as a label or a
    /// `flinkConfiguration` entry of its own, does not make an update. The stand-in and some
    /// clusters' admission chains do not support `dryRun`; a GET works everywhere.
    pub async fn plan(&self, deployment: &FlinkDeployment) -> Result<ApplyPlan> {
        // Boxed: the objects it holds across awaits are large, and callers' stacks are not.
        Box::pin(self.plan_boxed(deployment)).await
    }

    async fn plan_boxed(&self, deployment: &FlinkDeployment) -> Result<ApplyPlan> {
        let (namespace, name) = self.identity(deployment)?;
        let (namespace, name) = (namespace.to_owned(), name.to_owned());
        let live = Box::pin(self.api(&namespace).get_opt(&name))
            .await
            .map_err(|e| from_kube(format!("read FlinkDeployment {namespace}/{name}"), e))?;
        let mut object = deployment.clone();
        object.metadata.namespace = Some(namespace.clone());
        object.metadata.managed_fields = None;
        object.metadata.resource_version = None;
        object.metadata.generation = None;
        object.metadata.uid = None;
        object.metadata.creation_timestamp = None;
        object.status = None;
        let Some(live) = live else {
            let namespace_missing = !self.namespace_exists(&namespace).await?;
            return Ok(ApplyPlan {
                object,
                namespace,
                name,
                action: Action::Create,
                resource_version: None,
                uid: None,
                live_generation: None,
                live_state: None,
                differences: Vec::new(),
                compared: Vec::new(),
                namespace_missing,
            });
        };
        let differences = differences(&object, &live);
        let compared = compared_values(&object, &live);
        Ok(ApplyPlan {
            object,
            namespace,
            name,
            action: if differences.is_empty() {
                Action::NoChange
            } else {
                Action::Update
            },
            resource_version: live.metadata.resource_version.clone(),
            uid: live.metadata.uid.clone(),
            live_generation: live.metadata.generation,
            live_state: Some(ObservedState::of(&live)),
            differences,
            compared,
            namespace_missing: false,
        })
    }

    /// Whether the namespace exists: one GET, sent only when the FlinkDeployment was not
    /// found. A caller not allowed to read namespaces (`403`) is told it exists: only the
    /// API server's answer to the apply can tell then.
    async fn namespace_exists(&self, namespace: &str) -> Result<bool> {
        let api: Api<Namespace> = Api::all(self.client.clone());
        match api.get_opt(namespace).await {
            Ok(found) => Ok(found.is_some()),
            Err(kube::Error::Api(status)) if status.is_forbidden() => Ok(true),
            Err(e) => Err(from_kube(format!("read namespace {namespace}"), e)),
        }
    }

    /// Performs `plan` exactly, as field manager [`FIELD_MANAGER`]:
    /// - no change: no call; the live generation is returned;
    /// - update: server-side apply with `force` (taking the fields it sets from other
    ///   managers), `metadata.resourceVersion` and `metadata.uid` set to the planned ones, so
    ///   that an object changed since the plan is refused (`409 Conflict`), and so is one
    ///   deleted since (without the uid, an apply to a deleted object would create it again);
    /// - create: server-side apply without `force`, so that an object created since by
    ///   another writer with other values in these fields is refused (`409 Conflict`).
    ///
    /// The operator writes `status` continually, and each of its writes gives the object a
    /// new resourceVersion, though nothing the plan rested on changed. So an update refused
    /// for its resourceVersion reads the object once and is sent again with the new
    /// resourceVersion (three sends in all at most) only when the object has the planned uid
    /// and generation, every field the plan compared (the spec, labels and annotations this
    /// tool applies) holds the value it held when planned, and the comparison finds exactly
    /// the planned differences. This is not a re-decision: the
    /// plan's decision is kept only when what it rested on is unchanged; anything else is
    /// [`Error::Stale`], naming what changed (`generation 3 when planned, 4 now`, or the
    /// field with both values).
    ///
    /// A refused precondition is [`Error::Stale`], and nothing is written. An unchanged spec
    /// keeps its generation, so the operator does nothing.
    pub async fn apply(&self, plan: &ApplyPlan) -> Result<Applied> {
        // Boxed: the objects it holds across awaits are large, and callers' stacks are not.
        Box::pin(self.apply_boxed(plan)).await
    }

    async fn apply_boxed(&self, plan: &ApplyPlan) -> Result<Applied> {
        let (namespace, name) = (plan.namespace.as_str(), plan.name.as_str());
        if plan.namespace_missing {
            return Err(Error::NamespaceNotFound {
                namespace: namespace.to_owned(),
            });
        }
        let applied = |generation: Option<i64>| Applied {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            generation: generation.unwrap_or_default(),
            action: plan.action,
        };
        let params = PatchParams::apply(FIELD_MANAGER);
        let (mut object, params) = match plan.action {
            Action::Create => (plan.object.clone(), params),
            Action::Update => {
                let mut object = plan.object.clone();
                object.metadata.resource_version = plan.resource_version.clone();
                object.metadata.uid = plan.uid.clone();
                (object, params.force())
            }
            _ => {
                tracing::info!(%namespace, %name, "FlinkDeployment unchanged, not applied");
                return Ok(applied(plan.live_generation));
            }
        };
        let api = self.api(namespace);
        let mut attempt = 1;
        let after = loop {
            let err = match Box::pin(api.patch(name, &params, &Patch::Apply(&object))).await {
                Ok(after) => break after,
                Err(err) => err,
            };
            if plan.action != Action::Update
                || attempt == MAX_UPDATE_ATTEMPTS
                || !refused_for_resource_version(&err)
            {
                return Err(apply_error(plan, err));
            }
            let live = Box::pin(api.get_opt(name))
                .await
                .map_err(|e| from_kube(format!("read FlinkDeployment {namespace}/{name}"), e))?;
            let Some(live) = live else {
                return Err(Error::Stale(Stale::of(&plan.operation(), "no object")));
            };
            if let Some(Changed { planned, found }) = changed_since_planned(plan, &live) {
                let operation = plan.operation().observed(planned);
                return Err(Error::Stale(Stale::of(&operation, found)));
            }
            tracing::info!(
                %namespace, %name,
                planned = ?plan.resource_version, now = ?live.metadata.resource_version,
                "FlinkDeployment changed only outside what the plan compared: applying again"
            );
            object.metadata.resource_version = live.metadata.resource_version;
            attempt += 1;
        };
        let generation = after.metadata.generation;
        tracing::info!(%namespace, %name, ?generation, action = %plan.action, attempt, "FlinkDeployment applied");
        Ok(applied(generation))
    }

    /// Watches the FlinkDeployment until the operator runs `generation` (or a later one)
    /// stably, or reports a failure, or `timeout` passes.
    ///
    /// `progress` receives each new distinct state as it happens ([`WatchEvent::State`]),
    /// and each interruption of the watch ([`WatchEvent::Resumed`]). A watch the server
    /// drops is resumed from the last resourceVersion seen (re-listed when that is too old,
    /// HTTP 410). On failure the error carries the operator's message and the last lines of
    /// the JobManager's log, and of the initContainer's when that is what failed.
    pub async fn wait_until_running(
        &self,
        namespace: &str,
        name: &str,
        generation: i64,
        timeout: Duration,
        progress: &dyn Progress<WatchEvent>,
    ) -> Result<Running> {
        let started = Instant::now();
        let mut tracker = WaitTracker::new(generation);
        let mut last_watch_error: Option<String> = None;
        let mut seen = false;
        let watch = async {
            let mut events =
                Box::pin(watcher::watch_object(self.api(namespace), name).default_backoff());
            while let Some(event) = events.next().await {
                let deployment = match event {
                    Ok(Some(deployment)) => deployment,
                    Ok(None) if seen => {
                        return Err(Error::DeletedWhileWaiting {
                            namespace: namespace.to_owned(),
                            name: name.to_owned(),
                        });
                    }
                    Ok(None) => {
                        return Err(Error::NotFound {
                            namespace: namespace.to_owned(),
                            name: name.to_owned(),
                        });
                    }
                    Err(err) => {
                        tracing::debug!(%namespace, %name, error = %err, "watch interrupted, resuming");
                        if let watcher::Error::WatchStartFailed(kube::Error::Api(status))
                        | watcher::Error::InitialListFailed(kube::Error::Api(status)) = &err
                            && status.is_forbidden()
                        {
                            return Err(Error::Forbidden {
                                action: format!("watch FlinkDeployment {namespace}/{name}"),
                                message: status.message.clone(),
                            });
                        }
                        let reason = watch_error(&err);
                        progress.event(&WatchEvent::Resumed {
                            reason: reason.clone(),
                        });
                        last_watch_error = Some(reason);
                        continue;
                    }
                };
                seen = true;
                let state = ObservedState::of(&deployment);
                let (changed, phase) = tracker.observe(state.clone());
                if changed {
                    tracing::info!(%namespace, %name, %state, "FlinkDeployment state");
                    progress.event(&WatchEvent::State(state.clone()));
                }
                match phase {
                    Phase::Progressing { .. } => {}
                    Phase::Running | Phase::Finished => {
                        return Ok(Running {
                            namespace: namespace.to_owned(),
                            name: name.to_owned(),
                            generation: state.generation.unwrap_or(generation),
                            finished: phase == Phase::Finished,
                            state,
                            history: tracker.history(),
                        });
                    }
                    Phase::Failed { error } => {
                        let failure = Box::pin(self.diagnose(namespace, name, error, state)).await;
                        return Err(Error::Failed(Box::new(failure)));
                    }
                }
            }
            // The watcher restarts itself; its stream does not end.
            Err(Error::NotFound {
                namespace: namespace.to_owned(),
                name: name.to_owned(),
            })
        };
        match tokio::time::timeout(timeout, Box::pin(watch)).await {
            Ok(result) => result,
            Err(_elapsed) => Err(Error::Timeout(Box::new(WaitTimeout {
                namespace: namespace.to_owned(),
                name: name.to_owned(),
                generation,
                waited: started.elapsed(),
                last_states: tracker.history(),
                last_watch_error,
            }))),
        }
    }

    /// What went wrong, from the operator's error and the JobManager pod.
    async fn diagnose(
        &self,
        namespace: &str,
        name: &str,
        error: OperatorError,
        state: ObservedState,
    ) -> DeploymentFailure {
        let mut failure = DeploymentFailure {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            error,
            state,
            pod: None,
            pod_problems: Vec::new(),
            job_manager_log: Vec::new(),
            init_container_log: None,
        };
        let pod = match self.job_manager_pod(namespace, name).await {
            Ok(pod) => pod,
            Err(err) => {
                failure.job_manager_log = vec![format!("(no log: {err})")];
                return failure;
            }
        };
        let pod_name = pod.metadata.name.clone().unwrap_or_default();
        let status = pod.status.as_ref();
        let init_statuses = status
            .and_then(|s| s.init_container_statuses.as_deref())
            .unwrap_or_default();
        let main_statuses = status
            .and_then(|s| s.container_statuses.as_deref())
            .unwrap_or_default();
        failure.pod_problems = init_statuses
            .iter()
            .chain(main_statuses)
            .filter_map(container_problem)
            .collect();
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
        if let Some(init) = init_statuses.iter().find(|s| container_failed(s)) {
            let lines = self.log_tail(&pods, &pod_name, &init.name).await;
            if init.name == FETCH_CONTAINER {
                failure.pod_problems.push(format!(
                    "initContainer {FETCH_CONTAINER} could not fetch the script from S3: check the \
                     bucket, the key and the service account's IAM role (its log follows)"
                ));
            }
            failure.init_container_log = Some((init.name.clone(), lines));
        }
        failure.job_manager_log = self.log_tail(&pods, &pod_name, MAIN_CONTAINER).await;
        failure.pod = Some(pod_name);
        failure
    }

    /// The last lines of a container's log, from its previous run when the current one has
    /// none (a container in a restart loop); a line saying why when there is no log.
    async fn log_tail(&self, pods: &Api<Pod>, pod: &str, container: &str) -> Vec<String> {
        let mut params = LogParams {
            container: Some(container.to_owned()),
            tail_lines: Some(self.log_tail_lines),
            ..LogParams::default()
        };
        let current = pods.logs(pod, &params).await;
        if let Ok(text) = &current
            && !text.trim().is_empty()
        {
            return text.lines().map(str::to_owned).collect();
        }
        params.previous = true;
        if let Ok(text) = pods.logs(pod, &params).await
            && !text.trim().is_empty()
        {
            return text.lines().map(str::to_owned).collect();
        }
        match current {
            Ok(_) => vec![format!("(container {container} has written no log)")],
            Err(kube::Error::Api(status)) => vec![format!("(no log: {})", status.message)],
            Err(err) => vec![format!("(no log: {err})")],
        }
    }

    /// The newest JobManager pod of the FlinkDeployment (labels `app=<name>,component=jobmanager`).
    pub async fn job_manager_pod(&self, namespace: &str, name: &str) -> Result<Pod> {
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
        let selector = format!("app={name},component=jobmanager");
        let list = pods
            .list(&ListParams::default().labels(&selector))
            .await
            .map_err(|e| from_kube(format!("list pods {selector} in {namespace}"), e))?;
        list.items
            .into_iter()
            .max_by_key(|p| {
                (
                    p.metadata.deletion_timestamp.is_none(),
                    p.metadata.creation_timestamp.clone(),
                    p.metadata.name.clone(),
                )
            })
            .ok_or_else(|| Error::NoJobManagerPod {
                namespace: namespace.to_owned(),
                name: name.to_owned(),
            })
    }

    /// The JobManager's log (container `flink-main-container`), line by line: the last
    /// `tail_lines` lines (all when `None`), then, with `follow`, new lines as they come.
    pub async fn logs(
        &self,
        namespace: &str,
        name: &str,
        follow: bool,
        tail_lines: Option<i64>,
    ) -> Result<LogStream> {
        let pod = self.job_manager_pod(namespace, name).await?;
        let pod_name = pod.metadata.name.unwrap_or_default();
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
        let params = LogParams {
            container: Some(MAIN_CONTAINER.to_owned()),
            follow,
            tail_lines,
            ..LogParams::default()
        };
        let reader = pods
            .log_stream(&pod_name, &params)
            .await
            .map_err(|e| from_kube(format!("read the log of pod {namespace}/{pod_name}"), e))?;
        let (ns, pod) = (namespace.to_owned(), pod_name.clone());
        let lines = reader
            .lines()
            .map_err(move |source| Error::LogStream {
                namespace: ns.clone(),
                pod: pod.clone(),
                source,
            })
            .boxed();
        Ok(LogStream {
            pod: pod_name,
            lines,
        })
    }

    /// Lifecycle, job and JobManager states, image and script checksum (deployed against
    /// `local_sha256`) of one FlinkDeployment.
    pub async fn status(
        &self,
        namespace: &str,
        name: &str,
        local_sha256: Option<&str>,
    ) -> Result<StatusView> {
        let deployment = self
            .api(namespace)
            .get_opt(name)
            .await
            .map_err(|e| from_kube(format!("read FlinkDeployment {namespace}/{name}"), e))?
            .ok_or_else(|| Error::NotFound {
                namespace: namespace.to_owned(),
                name: name.to_owned(),
            })?;
        Ok(StatusView::of(&deployment, local_sha256))
    }

    /// Deletes the FlinkDeployment and watches until it is gone (the operator's finalizer
    /// removes the cluster first), for at most `timeout`.
    pub async fn delete(&self, namespace: &str, name: &str, timeout: Duration) -> Result<Deletion> {
        let api = self.api(namespace);
        let action = || format!("delete FlinkDeployment {namespace}/{name}");
        // Read first: deleting what is already gone sends no write at all.
        let live = Box::pin(api.get_opt(name))
            .await
            .map_err(|e| from_kube(format!("read FlinkDeployment {namespace}/{name}"), e))?;
        if live.is_none() {
            return Ok(Deletion::NotFound);
        }
        let deleted = match Box::pin(api.delete(name, &DeleteParams::background())).await {
            Ok(deleted) => deleted,
            Err(kube::Error::Api(status)) if status.is_not_found() => {
                return Ok(Deletion::NotFound);
            }
            Err(err) => return Err(from_kube(action(), err)),
        };
        let Some(uid) = deleted.left().and_then(|d| d.metadata.uid) else {
            return Ok(Deletion::Deleted);
        };
        let gone = async {
            let mut events = Box::pin(watcher::watch_object(api.clone(), name).default_backoff());
            while let Some(event) = events.next().await {
                match event {
                    Ok(Some(d)) if d.metadata.uid.as_deref() == Some(uid.as_str()) => {}
                    Ok(_) => return,
                    Err(err) => {
                        tracing::debug!(%namespace, %name, error = %err, "watch interrupted, resuming")
                    }
                }
            }
        };
        tokio::time::timeout(timeout, Box::pin(gone))
            .await
            .map_err(|_| Error::DeleteTimeout {
                namespace: namespace.to_owned(),
                name: name.to_owned(),
                waited: timeout,
            })?;
        tracing::info!(%namespace, %name, "FlinkDeployment deleted");
        Ok(Deletion::Deleted)
    }
}

/// Why a watch stopped, in one line without Debug output.
fn watch_error(err: &watcher::Error) -> String {
    match err {
        watcher::Error::InitialListFailed(e) => format!("list failed: {}", kube_message(e)),
        watcher::Error::WatchStartFailed(e) => format!("watch refused: {}", kube_message(e)),
        watcher::Error::WatchFailed(e) => format!("watch failed: {}", kube_message(e)),
        watcher::Error::WatchError(status) => format!(
            "the API server ended the watch: {} {}: {}",
            status.code, status.reason, status.message
        ),
        other => other.to_string(),
    }
}

/// The leaf paths of a JSON value: a scalar, a list (applied and compared whole, as the CRD's
/// lists are atomic) or an empty map; `null` is no field.
fn leaves(value: &Value, prefix: &mut Vec<String>, out: &mut Vec<(Vec<String>, Value)>) {
    match value {
        Value::Null => {}
        Value::Object(map) if !map.is_empty() => {
            for (key, child) in map {
                prefix.push(key.clone());
                leaves(child, prefix, out);
                prefix.pop();
            }
        }
        _ if prefix.is_empty() => {}
        other => out.push((prefix.clone(), other.clone())),
    }
}

/// The part of a FlinkDeployment that this tool applies and compares: spec, labels and
/// annotations, the spec read through the typed model (so `1` and `1.0` compare equal).
fn applied_part(deployment: &FlinkDeployment) -> Value {
    let spec = serde_json::to_value(&deployment.spec)
        .ok()
        .and_then(|v| serde_json::from_value::<FlinkDeploymentSpec>(v).ok())
        .and_then(|spec| serde_json::to_value(spec).ok())
        .unwrap_or(Value::Null);
    serde_json::json!({
        "metadata": {
            "labels": deployment.metadata.labels,
            "annotations": deployment.metadata.annotations,
        },
        "spec": spec,
    })
}

/// The leaf paths [`FIELD_MANAGER`]'s last apply set, from the live object's
/// `metadata.managedFields` (`FieldsV1`: `{"f:spec":{"f:image":{}}}`); `None` when the server
/// keeps no such entry.
fn owned_by_us(live: &FlinkDeployment) -> Option<BTreeSet<Vec<String>>> {
    fn read(tree: &Value, prefix: &mut Vec<String>, out: &mut BTreeSet<Vec<String>>) {
        let Some(map) = tree.as_object() else { return };
        let children: Vec<(&String, &Value)> =
            map.iter().filter(|(k, _)| k.starts_with("f:")).collect();
        if (children.is_empty() || map.contains_key(".")) && !prefix.is_empty() {
            out.insert(prefix.clone());
        }
        for (key, child) in children {
            prefix.push(key.trim_start_matches("f:").to_owned());
            read(child, prefix, out);
            prefix.pop();
        }
    }
    let entry = live
        .metadata
        .managed_fields
        .as_ref()?
        .iter()
        .find(|entry| {
            entry.manager.as_deref() == Some(FIELD_MANAGER)
                && entry.operation.as_deref() == Some("Apply")
                && entry.subresource.as_deref().unwrap_or_default().is_empty()
        })?;
    let mut owned = BTreeSet::new();
    read(&entry.fields_v1.as_ref()?.0, &mut Vec::new(), &mut owned);
    Some(owned)
}

/// What applying `desired` changes in `live`, as dotted paths; empty when nothing.
///
/// Only the fields `desired` sets are compared with the live object's values for them, so a
/// field set by another manager is no difference. A field this tool applied before (its
/// `managedFields` entry) that `desired` no longer sets is one: the apply removes it.
pub(crate) fn differences(desired: &FlinkDeployment, live: &FlinkDeployment) -> Vec<String> {
    let (want, have) = (applied_part(desired), applied_part(live));
    let mut wanted = Vec::new();
    leaves(&want, &mut Vec::new(), &mut wanted);
    let at = |path: &[String]| path.iter().try_fold(&have, |node, key| node.get(key));
    let mut changed: Vec<String> = wanted
        .iter()
        .filter(|(path, value)| match (value, at(path)) {
            // An empty map asks only for the map.
            (Value::Object(_), Some(live)) => !live.is_object(),
            (value, live) => live != Some(value),
        })
        .map(|(path, _)| path.join("."))
        .collect();
    for path in no_longer_set(&wanted, live) {
        changed.push(format!("{} (removed)", path.join(".")));
    }
    changed
}

/// The fields of the applied part that [`FIELD_MANAGER`]'s last apply set (from `live`'s
/// `managedFields`) and that `wanted` no longer sets: the apply removes them.
fn no_longer_set(wanted: &[(Vec<String>, Value)], live: &FlinkDeployment) -> Vec<Vec<String>> {
    let applied_parts: [&[&str]; 3] = [
        &["spec"],
        &["metadata", "labels"],
        &["metadata", "annotations"],
    ];
    owned_by_us(live)
        .unwrap_or_default()
        .into_iter()
        .filter(|path| {
            let in_part = applied_parts.iter().any(|part| {
                path.len() > part.len() && path.iter().zip(part.iter()).all(|(a, b)| a == b)
            });
            let still_set = wanted
                .iter()
                .any(|(w, _)| w.starts_with(path) || path.starts_with(w));
            in_part && !still_set
        })
        .collect()
}

/// The live value at each field `desired` sets, and at each field [`FIELD_MANAGER`] set
/// before that `desired` no longer sets: the values [`differences`] compares. A field asked as an
/// empty map is recorded as an empty map when the live one is a map (its entries are not
/// compared).
fn compared_values(
    desired: &FlinkDeployment,
    live: &FlinkDeployment,
) -> Vec<(Vec<String>, Option<Value>)> {
    let (want, have) = (applied_part(desired), applied_part(live));
    let mut wanted = Vec::new();
    leaves(&want, &mut Vec::new(), &mut wanted);
    let at = |path: &[String]| path.iter().try_fold(&have, |node, key| node.get(key));
    let mut compared: Vec<(Vec<String>, Option<Value>)> = wanted
        .iter()
        .map(|(path, value)| {
            let live = match (value, at(path)) {
                (Value::Object(_), Some(live)) if live.is_object() => Some(serde_json::json!({})),
                (_, live) => live.cloned(),
            };
            (path.clone(), live)
        })
        .collect();
    for path in no_longer_set(&wanted, live) {
        let live = at(&path).cloned();
        compared.push((path, live));
    }
    compared
}

/// What changed since the plan, in the words of [`Stale`]: the state planned on and the
/// state found.
#[derive(Debug, PartialEq, Eq)]
struct Changed {
    planned: String,
    found: String,
}

/// Whether `live` is still what `plan` rested on: the same object (uid), every field compared
/// holding the value it held, the same differences, the same generation (a spec field this
/// tool does not set, changed by another writer, shows there). `None` when so; otherwise the
/// first change found.
fn changed_since_planned(plan: &ApplyPlan, live: &FlinkDeployment) -> Option<Changed> {
    fn shown(value: Option<&Value>) -> String {
        const LONGEST: usize = 80;
        let Some(value) = value else {
            return "absent".to_owned();
        };
        let text = value.to_string();
        match text.char_indices().nth(LONGEST) {
            Some((cut, _)) => format!("{}…", &text[..cut]),
            None => text,
        }
    }
    if live.metadata.uid != plan.uid {
        return Some(Changed {
            planned: format!("uid {}", plan.uid.as_deref().unwrap_or("none")),
            found: format!(
                "another object, uid {}",
                live.metadata.uid.as_deref().unwrap_or("none")
            ),
        });
    }
    let now = compared_values(&plan.object, live);
    for (path, planned) in &plan.compared {
        let found = now
            .iter()
            .find(|(p, _)| p == path)
            .and_then(|(_, v)| v.as_ref());
        if planned.as_ref() != found {
            let path = path.join(".");
            return Some(Changed {
                planned: format!("{path} {}", shown(planned.as_ref())),
                found: format!("{path} {}", shown(found)),
            });
        }
    }
    let differences = differences(&plan.object, live);
    if differences != plan.differences {
        return Some(Changed {
            planned: format!("differences {}", plan.differences.join(", ")),
            found: format!("differences {}", differences.join(", ")),
        });
    }
    if live.metadata.generation != plan.live_generation {
        let generation = |g: Option<i64>| g.map_or_else(|| "none".to_owned(), |g| g.to_string());
        return Some(Changed {
            planned: format!("generation {}", generation(plan.live_generation)),
            found: format!("generation {}", generation(live.metadata.generation)),
        });
    }
    None
}

/// Whether an apply was refused only for its `metadata.resourceVersion`: a 409 that is
/// neither a field manager conflict nor a uid that names no object.
fn refused_for_resource_version(err: &kube::Error) -> bool {
    let kube::Error::Api(status) = err else {
        return false;
    };
    let field_conflict = status
        .details
        .as_ref()
        .is_some_and(|d| d.causes.iter().any(|c| c.reason == "FieldManagerConflict"))
        || status.message.starts_with("Apply failed with");
    status.code == 409 && !field_conflict && !is_uid_mismatch(status)
}

/// Whether a 409 says the body's `metadata.uid` names no object (or another one): the object
/// was deleted since the plan.
fn is_uid_mismatch(status: &kube::core::Status) -> bool {
    status.message.contains("uid mismatch") || status.message.contains("Precondition failed: UID")
}

/// Maps an error of the apply: 409 is a refused precondition (stale plan), 404 a missing
/// namespace or CRD (or, for an update, an object deleted since the plan), 422 a rejection.
fn apply_error(plan: &ApplyPlan, err: kube::Error) -> Error {
    let (namespace, name) = (plan.namespace.as_str(), plan.name.as_str());
    if let kube::Error::Api(status) = &err {
        if status.code == 409 {
            let found = match plan.action {
                Action::Create => {
                    format!("an object created by another writer ({})", status.message)
                }
                _ if is_uid_mismatch(status) => "no object".to_owned(),
                _ => "a newer resourceVersion".to_owned(),
            };
            return Error::Stale(Stale::of(&plan.operation(), found));
        }
        if status.is_not_found() {
            let about_namespace = status
                .details
                .as_ref()
                .is_some_and(|d| d.kind == "namespaces" && d.name == namespace)
                || status
                    .message
                    .contains(&format!("namespaces \"{namespace}\" not found"));
            if about_namespace {
                return Error::NamespaceNotFound {
                    namespace: namespace.to_owned(),
                };
            }
            if plan.action == Action::Update
                && status.details.as_ref().is_some_and(|d| d.name == name)
            {
                return Error::Stale(Stale::of(&plan.operation(), "no object"));
            }
            return Error::CrdNotInstalled {
                message: status.message.clone(),
            };
        }
        if status.code == 422 || status.is_invalid() {
            return Error::Invalid {
                namespace: namespace.to_owned(),
                name: name.to_owned(),
                message: status.message.clone(),
            };
        }
    }
    from_kube(format!("apply FlinkDeployment {namespace}/{name}"), err)
}

/// Whether a container ended badly, now or in its last run, or is in a restart loop.
fn container_failed(status: &ContainerStatus) -> bool {
    let failed_exit = |s: Option<&k8s_openapi::api::core::v1::ContainerState>| {
        s.and_then(|s| s.terminated.as_ref())
            .is_some_and(|t| t.exit_code != 0)
    };
    let crash_loop = status
        .state
        .as_ref()
        .and_then(|s| s.waiting.as_ref())
        .and_then(|w| w.reason.as_deref())
        == Some("CrashLoopBackOff");
    failed_exit(status.state.as_ref()) || failed_exit(status.last_state.as_ref()) || crash_loop
}

/// A line about a container that is not running as it should, if it is not.
fn container_problem(status: &ContainerStatus) -> Option<String> {
    let name = &status.name;
    let state = status.state.as_ref()?;
    if let Some(waiting) = &state.waiting {
        let reason = waiting.reason.as_deref().unwrap_or("waiting");
        if matches!(reason, "PodInitializing" | "ContainerCreating") {
            return None;
        }
        let message = waiting
            .message
            .as_deref()
            .map(|m| format!(": {m}"))
            .unwrap_or_default();
        return Some(format!("container {name} is waiting: {reason}{message}"));
    }
    if let Some(terminated) = &state.terminated
        && terminated.exit_code != 0
    {
        let reason = terminated.reason.as_deref().unwrap_or("Error");
        return Some(format!(
            "container {name} exited with code {} ({reason})",
            terminated.exit_code
        ));
    }
    let last = status
        .last_state
        .as_ref()
        .and_then(|s| s.terminated.as_ref());
    if let Some(last) = last
        && last.exit_code != 0
    {
        return Some(format!(
            "container {name} last exited with code {}",
            last.exit_code
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    //! The watch's handling of what the API server sends, with kube-rs's own mock pattern
    //! (`tower_test::mock::pair` + `kube::Client::new`): the request sequence is asserted
    //! and each response is what a real API server sends.

    use super::*;
    use flink_eks_plan::Silent;
    use http::{Request, Response};
    use kube::client::Body;
    use serde_json::{Value, json};

    type Handle = tower_test::mock::Handle<Request<Body>, Response<Body>>;

    fn mock() -> (Submitter, Handle) {
        let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        (
            Submitter::new(kube::Client::new(service, "default")),
            handle,
        )
    }

    fn object(rv: u32, generation: i64, status: Value) -> Value {
        json!({
            "apiVersion": "flink.apache.org/v1beta1",
            "kind": "FlinkDeployment",
            "metadata": {"name": "job", "namespace": "default", "uid": "u-1",
                         "generation": generation, "resourceVersion": rv.to_string()},
            "spec": {"image": "flink:1.20"},
            "status": status
        })
    }

    fn status(lifecycle: &str, job: &str, jm: &str, observed: i64) -> Value {
        json!({"lifecycleState": lifecycle, "jobStatus": {"state": job},
               "jobManagerDeploymentStatus": jm, "observedGeneration": observed})
    }

    fn list(rv: u32, items: Vec<Value>) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "apiVersion": "flink.apache.org/v1beta1", "kind": "FlinkDeploymentList",
            "metadata": {"resourceVersion": rv.to_string()}, "items": items
        }))
        .unwrap()
    }

    fn events(events: Vec<Value>) -> Vec<u8> {
        events
            .iter()
            .flat_map(|e| format!("{e}\n").into_bytes())
            .collect()
    }

    /// Answers the next request after checking its URI; returns the URI.
    async fn answer(handle: &mut Handle, expect: &[&str], body: Vec<u8>) -> String {
        let (request, send) = handle
            .next_request()
            .await
            .expect("the client made the request");
        let uri = request.uri().to_string();
        for part in expect {
            assert!(uri.contains(part), "{uri} lacks {part}");
        }
        send.send_response(Response::new(Body::from(body)));
        uri
    }

    const LIST: &[&str] = &[
        "/apis/flink.apache.org/v1beta1/namespaces/default/flinkdeployments?",
        "fieldSelector=metadata.name%3Djob",
    ];

    /// Answers the list of the deployment with the one object `job` at version `rv`.
    async fn answer_list(handle: &mut Handle, rv: u32, generation: i64, status: Value) -> String {
        answer(handle, LIST, list(rv, vec![object(rv, generation, status)])).await
    }

    #[tokio::test]
    async fn a_watch_cut_off_is_resumed_from_the_last_resource_version_and_410_relists() {
        let (submitter, mut handle) = mock();
        let server = tokio::spawn(async move {
            // The list: the new generation 2, the status still the old STABLE.
            answer_list(&mut handle, 10, 2, status("STABLE", "RUNNING", "READY", 1)).await;
            // The watch from the list's version delivers one change, then the server cuts it.
            let watch = answer(
                &mut handle,
                &["watch=true", "resourceVersion=10"],
                events(vec![json!({"type": "MODIFIED", "object": object(11, 2, status("UPGRADING", "RECONCILING", "DEPLOYING", 2))})]),
            )
            .await;
            assert!(
                watch.contains("fieldSelector=metadata.name%3Djob"),
                "{watch}"
            );
            // Resumed from the last version seen, not re-listed; this time the version is gone.
            answer(
                &mut handle,
                &["watch=true", "resourceVersion=11"],
                events(vec![json!({"type": "ERROR", "object": {"kind": "Status", "apiVersion": "v1",
                    "status": "Failure", "message": "too old resource version: 11 (15)", "reason": "Expired", "code": 410}})]),
            )
            .await;
            // 410: a fresh list, which shows the job running.
            let relist =
                answer_list(&mut handle, 15, 2, status("STABLE", "RUNNING", "READY", 2)).await;
            assert!(!relist.contains("watch=true"), "{relist}");
            handle
        });

        let events = std::sync::Mutex::new(Vec::new());
        let record = |e: &WatchEvent| events.lock().unwrap().push(e.clone());
        let running = submitter
            .wait_until_running("default", "job", 2, Duration::from_secs(30), &record)
            .await
            .unwrap();
        let events = events.into_inner().unwrap();
        let seen: Vec<ObservedState> = events
            .iter()
            .filter_map(|e| match e {
                WatchEvent::State(s) => Some(s.clone()),
                _ => None,
            })
            .collect();
        let resumed: Vec<&WatchEvent> = events
            .iter()
            .filter(|e| matches!(e, WatchEvent::Resumed { .. }))
            .collect();
        assert_eq!(resumed.len(), 1, "the 410 was reported once: {events:#?}");
        let WatchEvent::Resumed { reason } = resumed[0] else {
            unreachable!()
        };
        assert!(
            reason.contains("410") && !reason.contains("Status {"),
            "{reason}"
        );
        assert_eq!(running.generation, 2);
        assert!(!running.finished);
        let lifecycles: Vec<_> = seen
            .iter()
            .map(|s| s.lifecycle_state.as_ref().map(|l| l.as_str().to_owned()))
            .collect();
        assert_eq!(
            lifecycles,
            [
                Some("STABLE".into()),
                Some("UPGRADING".into()),
                Some("STABLE".into())
            ]
        );
        assert_eq!(
            seen[0].observed_generation,
            Some(1),
            "the old STABLE was shown but not taken"
        );
        assert_eq!(running.history, seen);
        tokio::time::timeout(Duration::from_secs(5), server)
            .await
            .unwrap()
            .unwrap();
    }

    #[tokio::test]
    async fn a_missing_deployment_ends_the_wait_at_once() {
        let (submitter, mut handle) = mock();
        let server = tokio::spawn(async move {
            answer(&mut handle, LIST, list(3, vec![])).await;
            handle
        });
        let err = submitter
            .wait_until_running("default", "job", 1, Duration::from_secs(30), &Silent)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
        assert!(
            err.to_string().contains("default/job does not exist"),
            "{err}"
        );
        server.await.unwrap();
    }

    #[tokio::test]
    async fn a_timeout_lists_the_last_states_seen() {
        let (submitter, mut handle) = mock();
        let server = tokio::spawn(async move {
            answer_list(
                &mut handle,
                5,
                1,
                status("DEPLOYED", "RECONCILING", "DEPLOYING", 1),
            )
            .await;
            // A watch the server keeps open and silent.
            let _open_watch = handle.next_request().await.expect("watch");
            std::future::pending::<()>().await;
        });
        let err = submitter
            .wait_until_running("default", "job", 1, Duration::from_millis(300), &Silent)
            .await
            .unwrap_err();
        let Error::Timeout(timeout) = &err else {
            panic!("{err:?}")
        };
        assert_eq!(timeout.last_states.len(), 1);
        let message = err.to_string();
        assert!(
            message.contains("default/job generation 1 was not running and stable after"),
            "{message}"
        );
        assert!(
            message.contains("lifecycle DEPLOYED, job RECONCILING, JobManager DEPLOYING"),
            "{message}"
        );
        assert!(message.contains("raise the timeout"), "{message}");
        server.abort();
    }

    #[test]
    fn live_object_comparison_ignores_representation_and_foreign_fields() {
        let desired: FlinkDeployment = serde_json::from_value(json!({
            "apiVersion": "flink.apache.org/v1beta1", "kind": "FlinkDeployment",
            "metadata": {"name": "job", "labels": {"app.kubernetes.io/managed-by": "flink-eks"},
                         "annotations": {"deploy.flink-eks.io/script-sha256": "aa"}},
            "spec": {"image": "flink:1.20", "jobManager": {"resource": {"cpu": 1, "memory": "2048m"}},
                     "flinkConfiguration": {"taskmanager.numberOfTaskSlots": "2"}}
        }))
        .unwrap();
        let mut live = desired.clone();
        live.metadata.generation = Some(4);
        live.metadata
            .annotations
            .as_mut()
            .unwrap()
            .insert("kubectl.kubernetes.io/x".into(), "y".into());
        live.spec
            .job_manager
            .as_mut()
            .unwrap()
            .resource
            .as_mut()
            .unwrap()
            .cpu = Some(1.0);
        assert_eq!(differences(&desired, &live), Vec::<String>::new());

        let mut changed_script = live.clone();
        changed_script
            .metadata
            .annotations
            .as_mut()
            .unwrap()
            .insert("deploy.flink-eks.io/script-sha256".into(), "bb".into());
        assert_eq!(
            differences(&desired, &changed_script),
            ["metadata.annotations.deploy.flink-eks.io/script-sha256"]
        );
        let mut changed_spec = live.clone();
        changed_spec.spec.image = Some("flink:1.19".into());
        assert_eq!(differences(&desired, &changed_spec), ["spec.image"]);
        let mut dropped_label = live;
        dropped_label.metadata.labels = None;
        assert_eq!(
            differences(&desired, &dropped_label),
            ["metadata.labels.app.kubernetes.io/managed-by"]
        );
    }

    /// A live object as the API server returns it after our apply, with `managedFields`.
    fn live_with_fields(spec: Value, ours: Value) -> FlinkDeployment {
        serde_json::from_value(json!({
            "apiVersion": "flink.apache.org/v1beta1", "kind": "FlinkDeployment",
            "metadata": {"name": "job", "namespace": "default", "resourceVersion": "7", "generation": 2,
                         "managedFields": [
                             {"manager": FIELD_MANAGER, "operation": "Apply", "apiVersion": "flink.apache.org/v1beta1",
                              "fieldsType": "FieldsV1", "fieldsV1": ours},
                             {"manager": "kubectl", "operation": "Update", "apiVersion": "flink.apache.org/v1beta1",
                              "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:flinkConfiguration": {"f:metrics.reporters": {}}}}}
                         ]},
            "spec": spec
        }))
        .unwrap()
    }

    #[test]
    fn a_field_another_manager_set_is_no_change_and_one_we_dropped_is_an_update() {
        let desired: FlinkDeployment = serde_json::from_value(json!({
            "apiVersion": "flink.apache.org/v1beta1", "kind": "FlinkDeployment",
            "metadata": {"name": "job"},
            "spec": {"image": "flink:1.20", "flinkConfiguration": {"taskmanager.numberOfTaskSlots": "2"}}
        }))
        .unwrap();
        let ours = json!({"f:spec": {"f:image": {}, "f:flinkConfiguration": {"f:taskmanager.numberOfTaskSlots": {}}}});
        // kubectl added a configuration entry of its own: comparing the whole spec would call
        // this an update on every run.
        let live = live_with_fields(
            json!({"image": "flink:1.20", "flinkConfiguration": {
                "taskmanager.numberOfTaskSlots": "2", "metrics.reporters": "prom"}}),
            ours,
        );
        assert_eq!(differences(&desired, &live), Vec::<String>::new());

        // Our last apply also set the parallelism; this one does not: the apply removes it.
        let ours_before = json!({"f:spec": {"f:image": {}, "f:flinkConfiguration": {
            "f:taskmanager.numberOfTaskSlots": {}, "f:parallelism.default": {}}}});
        let live = live_with_fields(
            json!({"image": "flink:1.20", "flinkConfiguration": {
                "taskmanager.numberOfTaskSlots": "2", "parallelism.default": "4"}}),
            ours_before,
        );
        assert_eq!(
            differences(&desired, &live),
            ["spec.flinkConfiguration.parallelism.default (removed)"]
        );
    }

    /// A plan as [`Submitter::plan`] makes it, against the live object `job` at
    /// resourceVersion 7, generation 2, with `state` (none: absent); an update changes the
    /// image from `flink:1.20` to `flink:1.21`.
    fn plan_of(action: Action, state: Option<Value>) -> ApplyPlan {
        let live = state
            .map(|status| serde_json::from_value::<FlinkDeployment>(object(7, 2, status)).unwrap());
        let mut desired: FlinkDeployment =
            serde_json::from_value(object(1, 1, Value::Null)).unwrap();
        desired.metadata.resource_version = None;
        desired.metadata.uid = None;
        desired.metadata.generation = None;
        if action == Action::Update {
            desired.spec.image = Some("flink:1.21".into());
        }
        let differences = live
            .as_ref()
            .map(|l| differences(&desired, l))
            .unwrap_or_default();
        assert_eq!(differences.is_empty(), action != Action::Update);
        ApplyPlan {
            namespace: "default".into(),
            name: "job".into(),
            action,
            resource_version: live
                .as_ref()
                .and_then(|l| l.metadata.resource_version.clone()),
            uid: live.as_ref().and_then(|l| l.metadata.uid.clone()),
            live_generation: live.as_ref().and_then(|l| l.metadata.generation),
            live_state: live.as_ref().map(ObservedState::of),
            differences,
            compared: live
                .as_ref()
                .map(|l| compared_values(&desired, l))
                .unwrap_or_default(),
            namespace_missing: false,
            object: desired,
        }
    }

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
    async fn a_no_change_plan_applies_without_a_request() {
        let (submitter, mut handle) = mock();
        let plan = plan_of(
            Action::NoChange,
            Some(status("STABLE", "RUNNING", "READY", 2)),
        );
        let applied = tokio::time::timeout(Duration::from_secs(5), submitter.apply(&plan))
            .await
            .expect("no request, so no answer to wait for")
            .unwrap();
        assert_eq!((applied.generation, applied.action), (2, Action::NoChange));
        drop(submitter);
        assert!(handle.next_request().await.is_none(), "no request was made");
    }

    /// Answers the next request, which must use `method`, with `code` and `answer`; the
    /// request's query and JSON body (`null` when none).
    async fn respond(
        handle: &mut Handle,
        method: http::Method,
        code: u16,
        answer: Value,
    ) -> (String, Value) {
        let (request, send) = handle.next_request().await.expect("a request");
        assert_eq!(request.method(), method, "{}", request.uri());
        let uri = request.uri().to_string();
        let body = request.into_body().collect_bytes().await.unwrap();
        let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
        send.send_response(
            Response::builder()
                .status(code)
                .body(Body::from(serde_json::to_vec(&answer).unwrap()))
                .unwrap(),
        );
        (uri, body)
    }

    fn conflict(message: &str) -> Value {
        json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
            "message": format!("Operation cannot be fulfilled on flinkdeployments.flink.apache.org \"job\": {message}"),
            "reason": "Conflict", "code": 409,
            "details": {"name": "job", "group": "flink.apache.org", "kind": "flinkdeployments"}})
    }

    const MODIFIED: &str = "the object has been modified; please apply your changes to the latest version and try again";

    #[tokio::test]
    async fn an_update_carries_the_planned_resource_version_and_uid_and_a_new_generation_is_stale()
    {
        let (submitter, mut handle) = mock();
        let plan = plan_of(
            Action::Update,
            Some(status("STABLE", "RUNNING", "READY", 2)),
        );
        let server = tokio::spawn(async move {
            let (uri, body) =
                respond(&mut handle, http::Method::PATCH, 409, conflict(MODIFIED)).await;
            assert!(
                uri.contains("fieldManager=flink-eks") && uri.contains("force=true"),
                "{uri}"
            );
            assert_eq!(body["metadata"]["resourceVersion"], "7", "{body}");
            assert_eq!(body["metadata"]["uid"], "u-1", "{body}");
            // Someone changed a spec field this tool does not set: generation 3.
            let mut live = object(8, 3, status("STABLE", "RUNNING", "READY", 2));
            live["spec"]["flinkConfiguration"] = json!({"metrics.reporters": "prom"});
            respond(&mut handle, http::Method::GET, 200, live).await;
            handle
        });
        let err = submitter.apply(&plan).await.unwrap_err();
        let Error::Stale(stale) = &err else {
            panic!("{err:?}")
        };
        assert_eq!(
            (stale.planned.as_str(), stale.found.as_str()),
            ("generation 2", "generation 3")
        );
        assert_eq!(stale.name, "default/job");
        assert!(err.to_string().contains("plan again"), "{err}");
        let mut handle = server.await.unwrap();
        drop(submitter);
        assert!(handle.next_request().await.is_none(), "nothing sent again");
    }

    #[tokio::test]
    async fn an_update_refused_for_a_status_write_only_is_sent_again_with_the_new_version() {
        let (submitter, mut handle) = mock();
        let plan = plan_of(
            Action::Update,
            Some(status("STABLE", "RUNNING", "READY", 2)),
        );
        let server = tokio::spawn(async move {
            respond(&mut handle, http::Method::PATCH, 409, conflict(MODIFIED)).await;
            // The operator wrote its status: a new resourceVersion, nothing else.
            let live = object(8, 2, status("STABLE", "RUNNING", "READY", 2));
            respond(&mut handle, http::Method::GET, 200, live).await;
            let mut after = object(9, 3, status("STABLE", "RUNNING", "READY", 2));
            after["spec"]["image"] = json!("flink:1.21");
            let (_, body) = respond(&mut handle, http::Method::PATCH, 200, after).await;
            assert_eq!(body["metadata"]["resourceVersion"], "8", "{body}");
            assert_eq!(body["metadata"]["uid"], "u-1", "{body}");
            assert_eq!(body["spec"]["image"], "flink:1.21", "{body}");
            handle
        });
        let applied = submitter.apply(&plan).await.unwrap();
        assert_eq!((applied.action, applied.generation), (Action::Update, 3));
        let mut handle = server.await.unwrap();
        drop(submitter);
        assert!(handle.next_request().await.is_none(), "no further request");
    }

    #[tokio::test]
    async fn an_update_refused_on_every_attempt_is_stale_after_three_sends() {
        let (submitter, mut handle) = mock();
        let plan = plan_of(
            Action::Update,
            Some(status("STABLE", "RUNNING", "READY", 2)),
        );
        let server = tokio::spawn(async move {
            for rv in [8, 9] {
                respond(&mut handle, http::Method::PATCH, 409, conflict(MODIFIED)).await;
                let live = object(rv, 2, status("STABLE", "RUNNING", "READY", 2));
                respond(&mut handle, http::Method::GET, 200, live).await;
            }
            let (_, body) =
                respond(&mut handle, http::Method::PATCH, 409, conflict(MODIFIED)).await;
            assert_eq!(body["metadata"]["resourceVersion"], "9", "{body}");
            handle
        });
        let err = submitter.apply(&plan).await.unwrap_err();
        assert!(matches!(err, Error::Stale(_)), "{err:?}");
        let mut handle = server.await.unwrap();
        drop(submitter);
        assert!(handle.next_request().await.is_none(), "three sends in all");
    }

    #[tokio::test]
    async fn an_update_whose_uid_names_no_object_is_stale_without_a_read() {
        let (submitter, mut handle) = mock();
        let plan = plan_of(
            Action::Update,
            Some(status("STABLE", "RUNNING", "READY", 2)),
        );
        let server = tokio::spawn(async move {
            let deleted = conflict(
                "uid mismatch: the provided object specified uid u-1, and no existing object was found",
            );
            respond(&mut handle, http::Method::PATCH, 409, deleted).await;
            handle
        });
        let err = submitter.apply(&plan).await.unwrap_err();
        let Error::Stale(stale) = &err else {
            panic!("{err:?}")
        };
        assert_eq!(
            (stale.planned.as_str(), stale.found.as_str()),
            ("resourceVersion 7", "no object")
        );
        let mut handle = server.await.unwrap();
        drop(submitter);
        assert!(handle.next_request().await.is_none(), "no read, no resend");
    }

    #[test]
    fn a_compared_field_changed_since_the_plan_is_named_with_both_values() {
        let plan = plan_of(
            Action::Update,
            Some(status("STABLE", "RUNNING", "READY", 2)),
        );
        let live = |f: &dyn Fn(&mut Value)| {
            let mut live = object(8, 2, status("STABLE", "RUNNING", "READY", 2));
            f(&mut live);
            serde_json::from_value::<FlinkDeployment>(live).unwrap()
        };
        // Only the status and resourceVersion moved: unchanged.
        assert_eq!(changed_since_planned(&plan, &live(&|_| {})), None);
        // A label another manager added is not a field the plan compared.
        let labelled = live(&|l| l["metadata"]["labels"] = json!({"team": "data"}));
        assert_eq!(changed_since_planned(&plan, &labelled), None);
        // A field the plan compared, changed without a new generation.
        let changed = live(&|l| l["spec"]["image"] = json!("flink:1.19"));
        assert_eq!(
            changed_since_planned(&plan, &changed),
            Some(Changed {
                planned: "spec.image \"flink:1.20\"".into(),
                found: "spec.image \"flink:1.19\"".into(),
            })
        );
        // Deleted and created again: another uid.
        let recreated = live(&|l| l["metadata"]["uid"] = json!("u-2"));
        assert_eq!(
            changed_since_planned(&plan, &recreated),
            Some(Changed {
                planned: "uid u-1".into(),
                found: "another object, uid u-2".into(),
            })
        );
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

//! Everything that talks to the Kubernetes API: apply, watch, logs, status, delete.

use std::time::{Duration, Instant};

use flink_eks_manifest::{FETCH_CONTAINER, FlinkDeployment, FlinkDeploymentSpec, MAIN_CONTAINER};
use futures::stream::BoxStream;
use futures::{AsyncBufReadExt as _, Stream, StreamExt as _, TryStreamExt as _};
use k8s_openapi::api::core::v1::{ContainerStatus, Pod};
use kube::api::{Api, DeleteParams, ListParams, LogParams, Patch, PatchParams};
use kube::runtime::WatchStreamExt as _;
use kube::runtime::watcher;
use serde::{Deserialize, Serialize};

use crate::change::Change;
use crate::error::{Failure, SubmitError, WaitTimeout, from_kube};
use crate::status::{ObservedState, OperatorError, Phase, Progress, StatusView};

/// The field manager of every server-side apply this crate makes.
pub const FIELD_MANAGER: &str = "flink-eks";

/// How many log lines a failure report carries by default, per container.
pub const DEFAULT_LOG_TAIL_LINES: i64 = 40;

/// What applying a FlinkDeployment would do, found by reading the live object (no write):
/// [`Change::Update`] when the live spec, labels or annotations differ.
pub type ApplyPlan = Change;

/// What [`Submitter::apply`] did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Applied {
    /// Namespace of the FlinkDeployment.
    pub namespace: String,
    /// Name of the FlinkDeployment.
    pub name: String,
    /// `metadata.generation` after the apply: the generation to wait for.
    pub generation: i64,
    /// `metadata.generation` before the apply; `None` when it was created.
    pub previous_generation: Option<i64>,
    /// Whether the spec changed (created, or a new generation): the operator will act on it.
    pub changed: bool,
    /// What the apply did to the object (an update can touch only labels or annotations).
    pub action: Change,
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
    lines: BoxStream<'static, Result<String, SubmitError>>,
}

impl std::fmt::Debug for LogStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogStream")
            .field("pod", &self.pod)
            .finish_non_exhaustive()
    }
}

impl Stream for LogStream {
    type Item = Result<String, SubmitError>;

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
    fn identity<'a>(
        &'a self,
        deployment: &'a FlinkDeployment,
    ) -> Result<(&'a str, &'a str), SubmitError> {
        let name = deployment
            .metadata
            .name
            .as_deref()
            .ok_or(SubmitError::MissingName)?;
        let namespace = deployment
            .metadata
            .namespace
            .as_deref()
            .unwrap_or_else(|| self.client.default_namespace());
        Ok((namespace, name))
    }

    /// What [`Submitter::apply`] would do: reads the live object and compares it (no write).
    pub async fn plan_apply(&self, deployment: &FlinkDeployment) -> Result<Change, SubmitError> {
        let (namespace, name) = self.identity(deployment)?;
        let live = self
            .api(namespace)
            .get_opt(name)
            .await
            .map_err(|e| from_kube(format!("read FlinkDeployment {namespace}/{name}"), e))?;
        Ok(match live {
            None => Change::Create,
            Some(live) if matches_live(deployment, &live) => Change::NoChange,
            Some(_) => Change::Update,
        })
    }

    /// Server-side applies `deployment` as field manager [`FIELD_MANAGER`] (forcing
    /// ownership of the fields it sets): creates it or updates it. An unchanged spec keeps
    /// its generation, so the operator does nothing.
    pub async fn apply(&self, deployment: &FlinkDeployment) -> Result<Applied, SubmitError> {
        // Boxed: the objects it holds across awaits are large, and callers' stacks are not.
        Box::pin(self.apply_boxed(deployment)).await
    }

    async fn apply_boxed(&self, deployment: &FlinkDeployment) -> Result<Applied, SubmitError> {
        let (namespace, name) = self.identity(deployment)?;
        let api = self.api(namespace);
        let before = Box::pin(api.get_opt(name))
            .await
            .map_err(|e| from_kube(format!("read FlinkDeployment {namespace}/{name}"), e))?;

        let mut object = deployment.clone();
        object.metadata.namespace = Some(namespace.to_owned());
        object.metadata.managed_fields = None;
        object.metadata.resource_version = None;
        object.metadata.generation = None;
        object.metadata.uid = None;
        object.metadata.creation_timestamp = None;
        object.status = None;
        let params = PatchParams::apply(FIELD_MANAGER).force();
        let after = Box::pin(api.patch(name, &params, &Patch::Apply(&object)))
            .await
            .map_err(|e| apply_error(namespace, name, e))?;

        let generation = after.metadata.generation.unwrap_or_default();
        let previous_generation = before.as_ref().and_then(|b| b.metadata.generation);
        // By content, not resourceVersion: the operator's status writes move that.
        let action = match &before {
            None => Change::Create,
            Some(before) if same_content(before, &after) => Change::NoChange,
            Some(_) => Change::Update,
        };
        let changed = previous_generation != Some(generation);
        tracing::info!(%namespace, %name, generation, ?previous_generation, %action, "FlinkDeployment applied");
        Ok(Applied {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            generation,
            previous_generation,
            changed,
            action,
        })
    }

    /// Watches the FlinkDeployment until the operator runs `generation` (or a later one)
    /// stably, or reports a failure, or `timeout` passes.
    ///
    /// `on_change` is called with each new distinct state, as it happens. A watch the server
    /// drops is resumed from the last resourceVersion seen (re-listed when that is too old,
    /// HTTP 410). On failure the error carries the operator's message and the last lines of
    /// the JobManager's log, and of the initContainer's when that is what failed.
    pub async fn wait_until_running(
        &self,
        namespace: &str,
        name: &str,
        generation: i64,
        timeout: Duration,
        mut on_change: impl FnMut(&ObservedState),
    ) -> Result<Running, SubmitError> {
        let started = Instant::now();
        let mut progress = Progress::new(generation);
        let mut last_watch_error: Option<String> = None;
        let mut seen = false;
        let watch = async {
            let mut events =
                Box::pin(watcher::watch_object(self.api(namespace), name).default_backoff());
            while let Some(event) = events.next().await {
                let deployment = match event {
                    Ok(Some(deployment)) => deployment,
                    Ok(None) if seen => {
                        return Err(SubmitError::DeletedWhileWaiting {
                            namespace: namespace.to_owned(),
                            name: name.to_owned(),
                        });
                    }
                    Ok(None) => {
                        return Err(SubmitError::NotFound {
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
                            return Err(SubmitError::Forbidden {
                                action: format!("watch FlinkDeployment {namespace}/{name}"),
                                message: status.message.clone(),
                            });
                        }
                        last_watch_error = Some(err.to_string());
                        continue;
                    }
                };
                seen = true;
                let state = ObservedState::of(&deployment);
                let (changed, phase) = progress.observe(state.clone());
                if changed {
                    tracing::info!(%namespace, %name, %state, "FlinkDeployment state");
                    on_change(&state);
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
                            history: progress.history(),
                        });
                    }
                    Phase::Failed { error } => {
                        let failure = Box::pin(self.diagnose(namespace, name, error, state)).await;
                        return Err(SubmitError::Failed(Box::new(failure)));
                    }
                }
            }
            // The watcher restarts itself; its stream does not end.
            Err(SubmitError::NotFound {
                namespace: namespace.to_owned(),
                name: name.to_owned(),
            })
        };
        match tokio::time::timeout(timeout, Box::pin(watch)).await {
            Ok(result) => result,
            Err(_elapsed) => Err(SubmitError::Timeout(Box::new(WaitTimeout {
                namespace: namespace.to_owned(),
                name: name.to_owned(),
                generation,
                waited: started.elapsed(),
                last_states: progress.history(),
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
    ) -> Failure {
        let mut failure = Failure {
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
    pub async fn job_manager_pod(&self, namespace: &str, name: &str) -> Result<Pod, SubmitError> {
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
            .ok_or_else(|| SubmitError::NoJobManagerPod {
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
    ) -> Result<LogStream, SubmitError> {
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
            .map_err(move |source| SubmitError::LogStream {
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
    ) -> Result<StatusView, SubmitError> {
        let deployment = self
            .api(namespace)
            .get_opt(name)
            .await
            .map_err(|e| from_kube(format!("read FlinkDeployment {namespace}/{name}"), e))?
            .ok_or_else(|| SubmitError::NotFound {
                namespace: namespace.to_owned(),
                name: name.to_owned(),
            })?;
        Ok(StatusView::of(&deployment, local_sha256))
    }

    /// Deletes the FlinkDeployment and watches until it is gone (the operator's finalizer
    /// removes the cluster first), for at most `timeout`.
    pub async fn delete(
        &self,
        namespace: &str,
        name: &str,
        timeout: Duration,
    ) -> Result<Deletion, SubmitError> {
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
            .map_err(|_| SubmitError::DeleteTimeout {
                namespace: namespace.to_owned(),
                name: name.to_owned(),
                waited: timeout,
            })?;
        tracing::info!(%namespace, %name, "FlinkDeployment deleted");
        Ok(Deletion::Deleted)
    }
}

/// What applying `desired` would do to `live`: nothing when the live spec equals the
/// desired one (both read through the same type, so representation differences such as
/// `1` against `1.0` do not count) and the live object carries the desired labels and
/// annotations.
pub(crate) fn matches_live(desired: &FlinkDeployment, live: &FlinkDeployment) -> bool {
    let normalized: Option<FlinkDeploymentSpec> = serde_json::to_value(&desired.spec)
        .ok()
        .and_then(|v| serde_json::from_value(v).ok());
    let spec_same = normalized.as_ref() == Some(&live.spec);
    let subset = |want: &Option<std::collections::BTreeMap<String, String>>,
                  have: &Option<std::collections::BTreeMap<String, String>>| {
        want.iter()
            .flatten()
            .all(|(k, v)| have.as_ref().and_then(|h| h.get(k)) == Some(v))
    };
    spec_same
        && subset(&desired.metadata.labels, &live.metadata.labels)
        && subset(&desired.metadata.annotations, &live.metadata.annotations)
}

/// Whether the apply left spec, labels and annotations as they were.
fn same_content(before: &FlinkDeployment, after: &FlinkDeployment) -> bool {
    before.spec == after.spec
        && before.metadata.labels == after.metadata.labels
        && before.metadata.annotations == after.metadata.annotations
}

/// Maps an error of the apply: 404 is a missing namespace (or a missing CRD), 422 a rejection.
fn apply_error(namespace: &str, name: &str, err: kube::Error) -> SubmitError {
    if let kube::Error::Api(status) = &err {
        if status.is_not_found() {
            let about_namespace = status
                .details
                .as_ref()
                .is_some_and(|d| d.kind == "namespaces" && d.name == namespace)
                || status
                    .message
                    .contains(&format!("namespaces \"{namespace}\" not found"));
            if about_namespace {
                return SubmitError::NamespaceNotFound {
                    namespace: namespace.to_owned(),
                };
            }
            return SubmitError::CrdNotInstalled {
                message: status.message.clone(),
            };
        }
        if status.code == 422 || status.is_invalid() {
            return SubmitError::Invalid {
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

        let mut seen = Vec::new();
        let running = submitter
            .wait_until_running("default", "job", 2, Duration::from_secs(30), |s| {
                seen.push(s.clone())
            })
            .await
            .unwrap();
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
            .wait_until_running("default", "job", 1, Duration::from_secs(30), |_| {})
            .await
            .unwrap_err();
        assert!(matches!(err, SubmitError::NotFound { .. }), "{err:?}");
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
            .wait_until_running("default", "job", 1, Duration::from_millis(300), |_| {})
            .await
            .unwrap_err();
        let SubmitError::Timeout(timeout) = &err else {
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
    fn live_object_comparison_ignores_representation_and_foreign_metadata() {
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
        assert!(matches_live(&desired, &live));

        let mut changed_script = live.clone();
        changed_script
            .metadata
            .annotations
            .as_mut()
            .unwrap()
            .insert("deploy.flink-eks.io/script-sha256".into(), "bb".into());
        assert!(!matches_live(&desired, &changed_script));
        let mut changed_spec = live.clone();
        changed_spec.spec.image = Some("flink:1.19".into());
        assert!(!matches_live(&desired, &changed_spec));
        let mut dropped_label = live;
        dropped_label.metadata.labels = None;
        assert!(!matches_live(&desired, &dropped_label));
    }
}

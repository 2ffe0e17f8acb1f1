//! The JobManager pod: its log, and what its containers say when a deployment fails.

use flink_eks_manifest::{FETCH_CONTAINER, MAIN_CONTAINER};
use futures::{AsyncBufReadExt as _, StreamExt as _, TryStreamExt as _};
use k8s_openapi::api::core::v1::{ContainerStatus, Pod};
use kube::api::{Api, ListParams, LogParams};

use crate::error::{DeploymentFailure, Error, PodReport, Result, from_kube};
use crate::status::{ObservedState, OperatorError};

use super::{LogStream, Submitter};

impl Submitter {
    /// What went wrong, from the operator's error and the JobManager pod.
    pub(super) async fn diagnose(
        &self,
        namespace: &str,
        name: &str,
        error: OperatorError,
        state: ObservedState,
        why: Option<String>,
        events: Vec<String>,
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
            why,
            events,
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

    /// The JobManager pod's containers as a timeout report shows them (init containers
    /// first: state, waiting reason, last termination message) and the fetch initContainer's
    /// log tail; `None` when there is no JobManager pod or it cannot be read.
    pub(super) async fn pod_report(&self, namespace: &str, name: &str) -> Option<PodReport> {
        let pod = self.job_manager_pod(namespace, name).await.ok()?;
        let pod_name = pod.metadata.name.clone().unwrap_or_default();
        let status = pod.status.as_ref();
        let init = status
            .and_then(|s| s.init_container_statuses.as_deref())
            .unwrap_or_default();
        let main = status
            .and_then(|s| s.container_statuses.as_deref())
            .unwrap_or_default();
        let mut containers: Vec<String> = init
            .iter()
            .map(|c| format!("initContainer {}", container_state(c)))
            .chain(
                main.iter()
                    .map(|c| format!("container {}", container_state(c))),
            )
            .collect();
        if containers.is_empty() {
            containers.push("(no container has a status yet)".to_owned());
        }
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
        let fetch_log = self.log_tail(&pods, &pod_name, FETCH_CONTAINER).await;
        Some(PodReport {
            pod: pod_name,
            phase: status.and_then(|s| s.phase.clone()),
            containers,
            fetch_log,
        })
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

/// One container's state in a line: `name: waiting (Reason: message)`, `name: running`,
/// `name: terminated with exit code 1 (Error): message`, and its last termination.
fn container_state(status: &ContainerStatus) -> String {
    let terminated = |t: &k8s_openapi::api::core::v1::ContainerStateTerminated| {
        let mut text = format!(
            "terminated with exit code {} ({})",
            t.exit_code,
            t.reason.as_deref().unwrap_or("no reason")
        );
        if let Some(message) = t
            .message
            .as_deref()
            .map(str::trim)
            .filter(|m| !m.is_empty())
        {
            text.push_str(": ");
            text.push_str(message);
        }
        text
    };
    let state = status.state.as_ref();
    let now = if let Some(waiting) = state.and_then(|s| s.waiting.as_ref()) {
        let reason = waiting.reason.as_deref().unwrap_or("no reason");
        match waiting.message.as_deref().filter(|m| !m.is_empty()) {
            Some(message) => format!("waiting ({reason}: {message})"),
            None => format!("waiting ({reason})"),
        }
    } else if state.and_then(|s| s.running.as_ref()).is_some() {
        "running".to_owned()
    } else if let Some(t) = state.and_then(|s| s.terminated.as_ref()) {
        terminated(t)
    } else {
        "no state".to_owned()
    };
    let mut line = format!("{}: {now}", status.name);
    if status.restart_count > 0 {
        line.push_str(&format!(", {} restarts", status.restart_count));
    }
    if let Some(last) = status
        .last_state
        .as_ref()
        .and_then(|s| s.terminated.as_ref())
    {
        line.push_str("; last ");
        line.push_str(&terminated(last));
    }
    line
}

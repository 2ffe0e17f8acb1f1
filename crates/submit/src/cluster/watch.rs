//! The watch of one FlinkDeployment until the operator runs it, fails it, or time runs out:
//! its status and, in the same loop, the Events the operator records about it.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use flink_eks_manifest::{FIELD_MANAGER, FlinkDeployment};
use flink_eks_plan::Progress;
use futures::StreamExt as _;
use k8s_openapi::api::core::v1::Event as KubeEvent;
use kube::api::Api;
use kube::runtime::WatchStreamExt as _;
use kube::runtime::watcher;

use crate::error::{Error, NoStatus, Result, WaitTimeout, kube_message};
use crate::operator::OperatorFacts;
use crate::status::{ObservedState, OperatorError, Phase, Stall, WaitSettings, WaitTracker};

use super::{Running, Submitter, WatchEvent};

/// The Event reasons after which the operator does nothing more until the spec changes:
/// `UnsupportedFlinkVersion` (the controller records it and returns without a status,
/// `ValidatorUtils.validateSupportedVersion`) and `ValidationError` (the spec is refused and
/// the last reconciled one kept, `ReconciliationUtils.applyValidationErrorAndResetSpec`).
/// Every other Warning (`Error`, `Missing`, `SavepointError`, …) comes with a retry.
pub const TERMINAL_EVENT_REASONS: &[&str] = &["UnsupportedFlinkVersion", "ValidationError"];

/// How many Events a report keeps.
const EVENTS_KEPT: usize = 10;

/// What [`Submitter::wait_until_running_with`] waits with.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct WaitOptions {
    /// How long to wait in all.
    pub timeout: Duration,
    /// The no-status window and the grace of `status.error`.
    pub settings: WaitSettings,
    /// What the plan read about the operator, named when no status comes.
    pub operator: Option<OperatorFacts>,
}

impl WaitOptions {
    /// Waits at most `timeout`, with the default [`WaitSettings`].
    pub fn new(timeout: Duration) -> Self {
        WaitOptions {
            timeout,
            settings: WaitSettings::default(),
            operator: None,
        }
    }

    /// Sets the no-status window and the error grace.
    #[must_use]
    pub fn settings(mut self, settings: WaitSettings) -> Self {
        self.settings = settings;
        self
    }

    /// Sets what the plan read about the operator.
    #[must_use]
    pub fn operator(mut self, facts: Option<OperatorFacts>) -> Self {
        self.operator = facts;
        self
    }
}

/// The Events about the watched FlinkDeployment since its last apply.
#[derive(Debug, Default)]
struct EventLog {
    /// The FlinkDeployment's uid and the time of its last apply, once its object is seen.
    anchor: Option<(Option<String>, Option<k8s_openapi::jiff::Timestamp>)>,
    /// Events that came before the object: judged once it is seen.
    pending: Vec<KubeEvent>,
    /// The count last reported per Event name.
    counts: HashMap<String, i32>,
    /// The Events kept for a report, as lines.
    recent: VecDeque<String>,
}

/// A Warning that ends the wait.
struct Terminal {
    reason: String,
    message: String,
}

impl EventLog {
    /// Sets the FlinkDeployment the Events must be about, and judges those that waited.
    fn anchor(
        &mut self,
        deployment: &FlinkDeployment,
        progress: &dyn Progress<WatchEvent>,
    ) -> Option<Terminal> {
        if self.anchor.is_some() {
            return None;
        }
        self.anchor = Some((deployment.metadata.uid.clone(), applied_at(deployment)));
        let pending = std::mem::take(&mut self.pending);
        pending
            .into_iter()
            .find_map(|event| self.take(event, progress))
    }

    /// Records one Event: a Warning new since the last apply is reported, a terminal one is
    /// returned.
    fn take(&mut self, event: KubeEvent, progress: &dyn Progress<WatchEvent>) -> Option<Terminal> {
        let Some((uid, since)) = &self.anchor else {
            self.pending.push(event);
            return None;
        };
        if let (Some(uid), Some(about)) = (uid, event.involved_object.uid.as_deref())
            && uid != about
        {
            return None;
        }
        let at = event_time(&event);
        if let (Some(since), Some(at)) = (since, at)
            && at < *since
        {
            return None;
        }
        let name = event.metadata.name.clone().unwrap_or_default();
        let count = event.count.unwrap_or(1);
        if self.counts.get(&name) == Some(&count) {
            return None;
        }
        self.counts.insert(name, count);
        let kind = event.type_.clone().unwrap_or_else(|| "Normal".to_owned());
        let reason = event.reason.clone().unwrap_or_default();
        let message = event.message.clone().unwrap_or_default();
        if self.recent.len() == EVENTS_KEPT {
            self.recent.pop_front();
        }
        let when = at.map(|t| format!("{t} ")).unwrap_or_default();
        self.recent
            .push_back(format!("{when}{kind} {reason}: {message}"));
        if kind != "Warning" {
            return None;
        }
        progress.event(&WatchEvent::Warning {
            reason: reason.clone(),
            message: message.clone(),
            count,
        });
        TERMINAL_EVENT_REASONS
            .contains(&reason.as_str())
            .then_some(Terminal { reason, message })
    }

    fn lines(&self) -> Vec<String> {
        self.recent.iter().cloned().collect()
    }
}

/// When this tool last applied the object (its managed-fields entry, the API server's clock),
/// else when the object was created.
fn applied_at(deployment: &FlinkDeployment) -> Option<k8s_openapi::jiff::Timestamp> {
    let applied = deployment
        .metadata
        .managed_fields
        .as_deref()
        .unwrap_or_default()
        .iter()
        .filter(|m| m.manager.as_deref() == Some(FIELD_MANAGER))
        .filter_map(|m| m.time.as_ref().map(|t| t.0))
        .max();
    applied.or_else(|| deployment.metadata.creation_timestamp.as_ref().map(|t| t.0))
}

/// When an Event last happened: `lastTimestamp`, `eventTime`, `firstTimestamp`, or its creation.
fn event_time(event: &KubeEvent) -> Option<k8s_openapi::jiff::Timestamp> {
    event
        .last_timestamp
        .as_ref()
        .map(|t| t.0)
        .or_else(|| event.event_time.as_ref().map(|t| t.0))
        .or_else(|| event.first_timestamp.as_ref().map(|t| t.0))
        .or_else(|| event.metadata.creation_timestamp.as_ref().map(|t| t.0))
}

impl Submitter {
    /// Watches the FlinkDeployment until the operator runs `generation` (or a later one)
    /// stably, or reports a failure, or `timeout` passes, with the default [`WaitSettings`]
    /// (see [`Submitter::wait_until_running_with`]).
    pub async fn wait_until_running(
        &self,
        namespace: &str,
        name: &str,
        generation: i64,
        timeout: Duration,
        progress: &dyn Progress<WatchEvent>,
    ) -> Result<Running> {
        let options = WaitOptions::new(timeout);
        self.wait_until_running_with(namespace, name, generation, &options, progress)
            .await
    }

    /// Watches the FlinkDeployment and its Events until the operator runs `generation` (or a
    /// later one) stably, or it fails, or `options.timeout` passes.
    ///
    /// `progress` receives each new distinct state ([`WatchEvent::State`]), each Warning Event
    /// recorded about the object since its last apply ([`WatchEvent::Warning`]), each new
    /// `status.error` the operator retries ([`WatchEvent::Retrying`]), and each interruption
    /// of the watch ([`WatchEvent::Resumed`]). A watch the server drops is resumed from the
    /// last resourceVersion seen (re-listed when that is too old, HTTP 410).
    ///
    /// It fails early with [`Error::Failed`] on a terminal state, a terminal Event
    /// ([`TERMINAL_EVENT_REASONS`]) or a `status.error` that outlives its grace, with
    /// [`Error::NoStatus`] when the operator writes no status within the window, and with
    /// [`Error::Timeout`] (the last states, Events and the JobManager pod's containers) when
    /// time runs out.
    pub async fn wait_until_running_with(
        &self,
        namespace: &str,
        name: &str,
        generation: i64,
        options: &WaitOptions,
        progress: &dyn Progress<WatchEvent>,
    ) -> Result<Running> {
        let started = Instant::now();
        let mut tracker = WaitTracker::with_settings(generation, options.settings, started);
        let mut log = EventLog::default();
        let mut last_watch_error: Option<String> = None;
        let mut flink_version: Option<String> = None;
        let watch = async {
            let mut objects =
                Box::pin(watcher::watch_object(self.api(namespace), name).default_backoff());
            let events_api: Api<KubeEvent> = Api::namespaced(self.client.clone(), namespace);
            let selector =
                format!("involvedObject.name={name},involvedObject.kind=FlinkDeployment");
            let mut events = Some(Box::pin(
                watcher::watcher(events_api, watcher::Config::default().fields(&selector))
                    .default_backoff()
                    .applied_objects(),
            ));
            let mut seen = false;
            let mut last_error: Option<OperatorError> = None;
            loop {
                let deadline = tracker.next_deadline();
                let stall = async {
                    match deadline {
                        Some(at) => tokio::time::sleep_until(at.into()).await,
                        None => std::future::pending().await,
                    }
                };
                let next_event = async {
                    match events.as_mut() {
                        Some(stream) => stream.next().await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    event = objects.next() => {
                        let Some(event) = event else {
                            // The watcher restarts itself; its stream does not end.
                            return Err(Error::NotFound { namespace: namespace.to_owned(), name: name.to_owned() });
                        };
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
                                progress.event(&WatchEvent::Resumed { reason: reason.clone() });
                                last_watch_error = Some(reason);
                                continue;
                            }
                        };
                        seen = true;
                        flink_version = deployment
                            .spec
                            .flink_version
                            .as_ref()
                            .and_then(|v| serde_json::to_value(v).ok())
                            .and_then(|v| v.as_str().map(str::to_owned));
                        if let Some(terminal) = log.anchor(&deployment, progress) {
                            let state = ObservedState::of(&deployment);
                            return Err(self.terminal_event(namespace, name, terminal, state, &log).await);
                        }
                        let state = ObservedState::of(&deployment);
                        let (changed, phase) = tracker.observe_at(state.clone(), Instant::now());
                        if changed {
                            tracing::info!(%namespace, %name, %state, "FlinkDeployment state");
                            progress.event(&WatchEvent::State(state.clone()));
                        }
                        if let Some(error) = &state.error
                            && state.error != last_error
                            && !matches!(phase, Phase::Failed { .. })
                        {
                            progress.event(&WatchEvent::Retrying { error: error.clone() });
                        }
                        last_error = state.error.clone();
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
                                let failure = Box::pin(self.diagnose(namespace, name, error, state, None, log.lines())).await;
                                return Err(Error::Failed(Box::new(failure)));
                            }
                        }
                    }
                    event = next_event => {
                        match event {
                            Some(Ok(event)) => {
                                if let Some(terminal) = log.take(event, progress) {
                                    let state = tracker.history().last().cloned().unwrap_or_else(|| ObservedState::of(&FlinkDeployment::new(name, Default::default())));
                                    return Err(self.terminal_event(namespace, name, terminal, state, &log).await);
                                }
                            }
                            Some(Err(err)) => {
                                // Events are what the operator says besides the status; a
                                // caller who may not read them still gets the status watch.
                                tracing::debug!(%namespace, %name, error = %err, "Events not watched");
                                if let watcher::Error::WatchStartFailed(kube::Error::Api(status))
                                | watcher::Error::InitialListFailed(kube::Error::Api(status)) = &err
                                    && status.is_forbidden()
                                {
                                    events = None;
                                }
                            }
                            None => events = None,
                        }
                    }
                    () = stall => {
                        match tracker.stalled(Instant::now()) {
                            Some(Stall::NoStatus) => {
                                return Err(Error::NoStatus(Box::new(NoStatus {
                                    namespace: namespace.to_owned(),
                                    name: name.to_owned(),
                                    waited: started.elapsed(),
                                    flink_version: flink_version.clone(),
                                    operator: options.operator.clone(),
                                    events: log.lines(),
                                })));
                            }
                            Some(Stall::ErrorPersisted(error)) => {
                                let state = tracker.history().last().cloned().unwrap_or_else(|| ObservedState::of(&FlinkDeployment::new(name, Default::default())));
                                let why = format!(
                                    "the operator kept this error for {:?} while retrying",
                                    options.settings.error_grace
                                );
                                let failure = Box::pin(self.diagnose(namespace, name, error, state, Some(why), log.lines())).await;
                                return Err(Error::Failed(Box::new(failure)));
                            }
                            None => {}
                        }
                    }
                }
            }
        };
        let outcome = tokio::time::timeout(options.timeout, Box::pin(watch)).await;
        match outcome {
            Ok(result) => result,
            Err(_elapsed) => {
                let pod =
                    tokio::time::timeout(Duration::from_secs(15), self.pod_report(namespace, name))
                        .await
                        .ok()
                        .flatten();
                Err(Error::Timeout(Box::new(WaitTimeout {
                    namespace: namespace.to_owned(),
                    name: name.to_owned(),
                    generation,
                    waited: started.elapsed(),
                    last_states: tracker.history(),
                    last_watch_error,
                    events: log.lines(),
                    pod,
                })))
            }
        }
    }

    /// The failure of a terminal Event, with the pod's diagnosis.
    async fn terminal_event(
        &self,
        namespace: &str,
        name: &str,
        terminal: Terminal,
        state: ObservedState,
        log: &EventLog,
    ) -> Error {
        let error = OperatorError {
            error_type: None,
            message: terminal.message,
            reason: Some(terminal.reason.clone()),
            causes: Vec::new(),
        };
        let why = format!(
            "the operator recorded a {} Event: it acts again only when the spec changes",
            terminal.reason
        );
        let failure =
            Box::pin(self.diagnose(namespace, name, error, state, Some(why), log.lines())).await;
        Error::Failed(Box::new(failure))
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

#[cfg(test)]
mod tests {
    //! The watch's handling of what the API server sends, with kube-rs's own mock pattern
    //! (`tower_test::mock::pair` + `kube::Client::new`): the request sequence is asserted
    //! and each response is what a real API server sends.

    use super::*;
    use crate::cluster::fixtures::*;
    use flink_eks_plan::Silent;
    use http::Response;
    use kube::client::Body;
    use serde_json::{Value, json};

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

    /// Answers the next request for the FlinkDeployment after checking its URI; returns the
    /// URI. The Events of the same loop are answered on the way: their list is empty, their
    /// watch is refused (the client retries it after a backoff).
    async fn answer(handle: &mut Handle, expect: &[&str], body: Vec<u8>) -> String {
        let (request, send) = loop {
            let (request, send) = handle
                .next_request()
                .await
                .expect("the client made the request");
            let uri = request.uri().to_string();
            if !uri.starts_with("/api/v1/namespaces/default/events?") {
                break (request, send);
            }
            assert!(
                uri.contains("involvedObject.name%3Djob")
                    && uri.contains("involvedObject.kind%3DFlinkDeployment"),
                "{uri}"
            );
            if !uri.contains("watch=true") {
                send.send_response(Response::new(Body::from(
                    serde_json::to_vec(&json!({"apiVersion": "v1", "kind": "EventList",
                        "metadata": {"resourceVersion": "1"}, "items": []}))
                    .unwrap(),
                )));
            }
        };
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
            let mut open = Vec::new();
            // The watch stays open and silent; at the timeout, the JobManager pods are listed
            // (there is none yet).
            while let Some((request, send)) = handle.next_request().await {
                let uri = request.uri().to_string();
                if uri.starts_with("/api/v1/namespaces/default/pods?") {
                    assert!(
                        uri.contains("labelSelector=app%3Djob%2Ccomponent%3Djobmanager"),
                        "{uri}"
                    );
                    send.send_response(Response::new(Body::from(
                        serde_json::to_vec(&json!({"apiVersion": "v1", "kind": "PodList",
                            "metadata": {"resourceVersion": "9"}, "items": []}))
                        .unwrap(),
                    )));
                } else {
                    open.push(send);
                }
            }
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
}

//! The watch of one FlinkDeployment until the operator runs it, fails it, or time runs out.

use std::time::{Duration, Instant};

use flink_eks_plan::Progress;
use futures::StreamExt as _;
use kube::runtime::WatchStreamExt as _;
use kube::runtime::watcher;

use crate::error::{Error, Result, WaitTimeout, kube_message};
use crate::status::{ObservedState, Phase, WaitTracker};

use super::{Running, Submitter, WatchEvent};

impl Submitter {
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
}

//! The kubelet's part for the pods the operator runs: pod phases, conditions and container
//! states as `kubectl get pods` and the operator read them (`PodInitializing`,
//! `ErrImagePull`/`ImagePullBackOff`, `Init:CrashLoopBackOff`, `Running`), what the fetch
//! init container prints (the AWS CLI's `download: SRC to DST`), and forgetting the logs of
//! deleted pods. Pods created by clients have no kubelet: they stay `Pending`.

use std::collections::HashSet;

use serde_json::{Map, Value, json};

use super::{MAIN_CONTAINER, Stop, put};
use crate::Shared;
use crate::apply::Part;
use crate::meta;
use crate::resources::PODS;

pub(super) fn forget_logs_of_deleted_pods(shared: &Shared) {
    let existing: HashSet<(String, String)> = shared
        .api
        .store
        .tx()
        .list(&PODS, None)
        .iter()
        .map(|p| (meta::namespace(p).to_owned(), meta::name(p).to_owned()))
        .collect();
    for (namespace, pod) in shared.logs.pods() {
        if !existing.contains(&(namespace.clone(), pod.clone())) {
            shared.logs.remove_pod(&namespace, &pod);
        }
    }
}

pub(super) fn find_container<'a>(pod: &'a Value, list: &str, name: &str) -> Option<&'a Value> {
    meta::get_path(pod, &["spec", list])
        .and_then(Value::as_array)
        .and_then(|c| {
            c.iter()
                .find(|c| c.get("name").and_then(Value::as_str) == Some(name))
        })
}

/// What a fetch init container prints: `download: SRC to DST` for a `cp SRC DST` command
/// (the AWS CLI's output), nothing for anything else.
pub(super) fn fetch_log(container: Option<&Value>) -> Vec<String> {
    let words: Vec<String> = container
        .map(|c| {
            ["command", "args"]
                .iter()
                .filter_map(|k| c.get(*k).and_then(Value::as_array))
                .flatten()
                .filter_map(Value::as_str)
                .flat_map(|s| s.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
                .collect()
        })
        .unwrap_or_default();
    let Some(cp) = words.iter().position(|w| w == "cp") else {
        return Vec::new();
    };
    let operands: Vec<&String> = words[cp + 1..]
        .iter()
        .filter(|w| !w.starts_with('-'))
        .take(2)
        .collect();
    match operands.as_slice() {
        [source, destination] => vec![format!(
            "download: {} to {}",
            source.trim_matches(|c| c == '"' || c == '\'' || c == ';'),
            destination.trim_matches(|c| c == '"' || c == '\'' || c == ';' || c == '&')
        )],
        _ => Vec::new(),
    }
}

/// The pod states the kubelet reports.
pub(super) enum PodState<'a> {
    /// Init containers running (or the main container being created).
    Initializing,
    /// An init container exited 1; with `backoff`, it is waiting in CrashLoopBackOff.
    InitFailed {
        container: &'a str,
        message: &'a str,
        backoff: bool,
    },
    /// The main container's image cannot be pulled.
    ImagePull { backoff: bool, message: &'a str },
    /// The main container runs.
    Running { ready: bool },
    /// The main container exited 1 (`message`) `restarts` times; with `backoff` it waits in
    /// CrashLoopBackOff, else it runs again.
    Crashed {
        restarts: i64,
        message: &'a str,
        backoff: bool,
    },
}

pub(super) fn set_pod_state(shared: &Shared, pod: &Value, state: PodState<'_>) -> Result<(), Stop> {
    let now = meta::now_rfc3339();
    let inits = meta::container_names(pod, "initContainers");
    let mains = meta::container_names(pod, "containers");
    let image_of = |list: &str, name: &str| {
        find_container(pod, list, name)
            .and_then(|c| c.get("image"))
            .cloned()
            .unwrap_or(Value::Null)
    };
    let init_status = |name: &str, state: Value, restarts: i64, last: Value| json!({"name": name, "image": image_of("initContainers", name), "ready": false, "restartCount": restarts, "state": state, "lastState": last});
    let main_status = |name: &str, state: Value, ready: bool| json!({"name": name, "image": image_of("containers", name), "ready": ready, "started": state.get("running").is_some(), "restartCount": 0, "state": state, "lastState": {}});
    let completed = json!({"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": now, "finishedAt": now}});
    // Every initContainer ran to completion: the pod's containers have started.
    let inits_completed = || -> Vec<Value> {
        inits
            .iter()
            .map(|n| init_status(n, completed.clone(), 0, json!({})))
            .collect()
    };
    let (phase, initialized, ready, init_statuses, main_statuses) = match state {
        PodState::Initializing => {
            let main_state = json!({"waiting": {"reason": if inits.is_empty() { "ContainerCreating" } else { "PodInitializing" }}});
            (
                "Pending",
                inits.is_empty(),
                false,
                inits
                    .iter()
                    .map(|n| init_status(n, json!({"running": {"startedAt": now}}), 0, json!({})))
                    .collect::<Vec<_>>(),
                mains
                    .iter()
                    .map(|n| main_status(n, main_state.clone(), false))
                    .collect::<Vec<_>>(),
            )
        }
        PodState::InitFailed {
            container,
            message,
            backoff,
        } => {
            let failed = json!({"terminated": {"exitCode": 1, "reason": "Error", "message": message, "startedAt": now, "finishedAt": now}});
            let init_statuses = inits
                .iter()
                .map(|n| {
                    if n != container {
                        init_status(n, json!({"waiting": {"reason": "PodInitializing"}}), 0, json!({}))
                    } else if backoff {
                        let waiting = json!({"waiting": {"reason": "CrashLoopBackOff", "message": format!("back-off 10s restarting failed container={container} pod={}", meta::name(pod))}});
                        init_status(n, waiting, 1, failed.clone())
                    } else {
                        init_status(n, failed.clone(), 0, json!({}))
                    }
                })
                .collect();
            let main_state = json!({"waiting": {"reason": "PodInitializing"}});
            (
                "Pending",
                false,
                false,
                init_statuses,
                mains
                    .iter()
                    .map(|n| main_status(n, main_state.clone(), false))
                    .collect(),
            )
        }
        PodState::ImagePull { backoff, message } => {
            let reason = if backoff {
                "ImagePullBackOff"
            } else {
                "ErrImagePull"
            };
            let waiting = json!({"waiting": {"reason": reason, "message": message}});
            (
                "Pending",
                true,
                false,
                inits_completed(),
                mains
                    .iter()
                    .map(|n| {
                        if n == MAIN_CONTAINER {
                            main_status(n, waiting.clone(), false)
                        } else {
                            main_status(n, json!({"running": {"startedAt": now}}), true)
                        }
                    })
                    .collect(),
            )
        }
        PodState::Crashed {
            restarts,
            message,
            backoff,
        } => {
            let last = json!({"terminated": {"exitCode": 1, "reason": "Error", "message": message, "startedAt": now, "finishedAt": now}});
            let state = if backoff {
                json!({"waiting": {"reason": "CrashLoopBackOff", "message": format!("back-off 10s restarting failed container={MAIN_CONTAINER} pod={}", meta::name(pod))}})
            } else {
                json!({"running": {"startedAt": now}})
            };
            (
                "Running",
                true,
                false,
                inits_completed(),
                mains
                    .iter()
                    .map(|n| {
                        let mut status =
                            main_status(n, json!({"running": {"startedAt": now}}), false);
                        if n == MAIN_CONTAINER {
                            status["state"] = state.clone();
                            status["started"] = json!(!backoff);
                            status["restartCount"] = json!(restarts);
                            status["lastState"] = last.clone();
                        }
                        status
                    })
                    .collect(),
            )
        }
        PodState::Running { ready } => (
            "Running",
            true,
            ready,
            inits_completed(),
            mains
                .iter()
                .map(|n| main_status(n, json!({"running": {"startedAt": now}}), ready))
                .collect(),
        ),
    };
    let condition = |kind: &str, value: bool| json!({"type": kind, "status": if value { "True" } else { "False" }, "lastTransitionTime": now});
    let mut status = json!({
        "phase": phase,
        "conditions": [condition("PodScheduled", true), condition("Initialized", initialized), condition("ContainersReady", ready), condition("Ready", ready)],
        "hostIP": "10.0.0.10",
        "podIP": "10.244.0.20",
        "startTime": meta::meta_str(pod, "creationTimestamp").unwrap_or(&now),
        "qosClass": "Guaranteed",
        "containerStatuses": main_statuses,
    });
    if !init_statuses.is_empty() {
        status["initContainerStatuses"] = Value::Array(init_statuses);
    }
    let (ns, name) = (meta::namespace(pod).to_owned(), meta::name(pod).to_owned());
    let mut map = Map::new();
    map.insert("status".into(), status);
    put(
        shared,
        &PODS,
        &ns,
        &name,
        Part::Status,
        "kubelet",
        Value::Object(map),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fetch_log_names_source_and_destination() {
        let container = json!({"name": "fetch", "command": ["aws", "s3", "cp"], "args": ["s3://bucket/jobs/job.py", "/opt/flink/usrlib/job.py"]});
        assert_eq!(
            fetch_log(Some(&container)),
            ["download: s3://bucket/jobs/job.py to /opt/flink/usrlib/job.py"]
        );
        let shell = json!({"command": ["sh", "-c", "aws s3 cp s3://b/k.py /opt/flink/usrlib/k.py && sha256sum -c"]});
        assert_eq!(
            fetch_log(Some(&shell)),
            ["download: s3://b/k.py to /opt/flink/usrlib/k.py"]
        );
        assert!(fetch_log(Some(&json!({"command": ["true"]}))).is_empty());
    }
}

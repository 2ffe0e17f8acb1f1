//! The stand-in through kube-rs, as the product uses it: server-side apply, watches (with
//! resume and 410), the operator's status sequence, pod logs, validation against the real
//! CRD, faults.

mod common;

use std::collections::BTreeSet;

use common::*;
use futures::{AsyncBufReadExt, StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Event as CoreEvent, Pod, ServiceAccount};
use kube::api::{
    Api, DeleteParams, ListParams, LogParams, Patch, PatchParams, PostParams, WatchEvent,
    WatchParams,
};
use kube::runtime::watcher;
use kube_standin::Fault;
use serde_json::json;

#[tokio::test]
async fn apply_then_watch_sees_the_operator_sequence_then_the_pod_log_streams() {
    let standin = start().await;
    let client = client(&standin).await;
    let fds = flink_api(&client);
    let mut watch = watcher(
        fds.clone(),
        watcher::Config::default().fields("metadata.name=word-count"),
    )
    .boxed();

    let applied = apply(&fds, &flink_deployment("word-count"))
        .await
        .unwrap_or_else(|e| panic!("apply: {e}"));
    assert_eq!(applied.metadata.generation, Some(1));
    assert!(applied.metadata.uid.is_some() && applied.metadata.creation_timestamp.is_some());

    let mut lifecycle = Vec::new();
    let mut job_states = Vec::new();
    let mut jm_states = Vec::new();
    let stable = tokio::time::timeout(PATIENCE, async {
        while let Some(event) = watch
            .try_next()
            .await
            .unwrap_or_else(|e| panic!("watch: {e}"))
        {
            let (watcher::Event::Apply(fd) | watcher::Event::InitApply(fd)) = event else {
                continue;
            };
            let push = |list: &mut Vec<String>, value: Option<String>| {
                if let Some(v) = value.filter(|v| list.last() != Some(v)) {
                    list.push(v);
                }
            };
            push(&mut lifecycle, status_of(&fd, &["lifecycleState"]));
            push(&mut job_states, status_of(&fd, &["jobStatus", "state"]));
            push(
                &mut jm_states,
                status_of(&fd, &["jobManagerDeploymentStatus"]),
            );
            if status_of(&fd, &["lifecycleState"]).as_deref() == Some("STABLE") {
                return fd;
            }
        }
        panic!("the watch ended before STABLE");
    })
    .await
    .unwrap_or_else(|_| panic!("not STABLE in time; lifecycle so far: {lifecycle:?}"));

    assert_eq!(lifecycle, ["CREATED", "DEPLOYED", "STABLE"]);
    assert_eq!(job_states, ["RECONCILING", "CREATED", "RUNNING"]);
    assert_eq!(jm_states, ["DEPLOYING", "DEPLOYED_NOT_READY", "READY"]);
    assert_eq!(
        status_of(&stable, &["observedGeneration"]).as_deref(),
        Some("1")
    );
    assert_eq!(
        status_of(&stable, &["reconciliationStatus", "state"]).as_deref(),
        Some("DEPLOYED")
    );
    assert!(status_of(&stable, &["jobStatus", "jobId"]).is_some_and(|id| id.len() == 32));
    assert!(status_of(&stable, &["jobStatus", "startTime"]).is_some());
    assert!(
        status_of(&stable, &["reconciliationStatus", "lastReconciledSpec"])
            .is_some_and(|s| s.contains("word_count.py"))
    );

    // The JobManager Deployment and pod the operator created.
    let deployments: Api<Deployment> = Api::default_namespaced(client.clone());
    let deployment = deployments
        .get("word-count")
        .await
        .unwrap_or_else(|e| panic!("deployment: {e}"));
    assert_eq!(deployment.status.and_then(|s| s.ready_replicas), Some(1));
    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    let selector = "app=word-count,component=jobmanager,type=flink-native-kubernetes";
    let jm = pods
        .list(&ListParams::default().labels(selector))
        .await
        .unwrap_or_else(|e| panic!("pods: {e}"));
    assert_eq!(jm.items.len(), 1);
    let jm_pod = &jm.items[0];
    let jm_name = jm_pod.metadata.name.clone().unwrap_or_default();
    let spec = jm_pod.spec.clone().unwrap_or_default();
    assert_eq!(spec.containers[0].name, "flink-main-container");
    assert_eq!(
        spec.init_containers.unwrap_or_default()[0].name,
        "fetch-script"
    );
    assert_eq!(spec.service_account_name.as_deref(), Some("flink"));
    let tm = pods
        .list(&ListParams::default().labels("app=word-count,component=taskmanager"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(tm.items.len(), 1);

    // The init container's log shows the fetch; the main one the job's arguments.
    let init_log = pods
        .logs(
            &jm_name,
            &LogParams {
                container: Some("fetch-script".into()),
                ..LogParams::default()
            },
        )
        .await
        .unwrap_or_else(|e| panic!("init log: {e}"));
    assert_eq!(
        init_log.trim(),
        "download: s3://jobs-bucket/jobs/word_count.py to /opt/flink/usrlib/word_count.py"
    );

    let params = LogParams {
        container: Some("flink-main-container".into()),
        follow: true,
        ..LogParams::default()
    };
    let mut lines = pods
        .log_stream(&jm_name, &params)
        .await
        .unwrap_or_else(|e| panic!("log stream: {e}"))
        .lines();
    let mut seen = Vec::new();
    tokio::time::timeout(PATIENCE, async {
        while let Some(line) = lines
            .try_next()
            .await
            .unwrap_or_else(|e| panic!("log line: {e}"))
        {
            let done = line.contains("switched from state CREATED to RUNNING");
            seen.push(line);
            if done {
                return;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no RUNNING line in {seen:?}"));
    assert!(
        seen.iter().any(
            |l| l.contains("org.apache.flink.client.python.PythonDriver")
                && l.contains("-py, /opt/flink/usrlib/word_count.py")
        ),
        "{seen:?}"
    );

    // Following ends when the pod goes away: delete the FlinkDeployment.
    fds.delete("word-count", &DeleteParams::default())
        .await
        .unwrap_or_else(|e| panic!("delete: {e}"));
    let rest = tokio::time::timeout(PATIENCE, lines.try_collect::<Vec<String>>()).await;
    assert!(rest.is_ok(), "the follow stream did not end with the pod");
    tokio::time::timeout(PATIENCE, async {
        while fds.get_opt("word-count").await.ok().flatten().is_some() {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("the FlinkDeployment was never deleted (finalizer not released)"));
    let left = pods
        .list(&ListParams::default().labels("app=word-count"))
        .await
        .map(|l| l.items.len())
        .unwrap_or(99);
    assert_eq!(left, 0, "pods survive their FlinkDeployment");
    assert!(
        deployments
            .get_opt("word-count")
            .await
            .ok()
            .flatten()
            .is_none()
    );
}

#[tokio::test]
async fn a_watch_dropped_mid_stream_resumes_from_the_last_version_without_gaps() {
    let standin = start().await;
    let client = client(&standin).await;
    let fds = flink_api(&client);
    standin.set_fault("default", "resumed", Fault::DropWatchAfter { events: 2 });
    let applied = apply(&fds, &flink_deployment("resumed"))
        .await
        .unwrap_or_else(|e| panic!("apply: {e}"));
    let mut version = applied
        .metadata
        .resource_version
        .clone()
        .unwrap_or_default();

    let mut versions = Vec::new();
    let mut drops = 0;
    let mut lifecycle = BTreeSet::new();
    let params = WatchParams::default().fields("metadata.name=resumed");
    tokio::time::timeout(PATIENCE, async {
        'outer: loop {
            let mut stream = fds
                .watch(&params, &version)
                .await
                .unwrap_or_else(|e| panic!("watch: {e}"))
                .boxed();
            loop {
                match stream.next().await {
                    Some(Ok(WatchEvent::Modified(fd) | WatchEvent::Added(fd))) => {
                        version = fd.metadata.resource_version.clone().unwrap_or_default();
                        versions.push(version.parse::<u64>().unwrap_or(0));
                        lifecycle.extend(status_of(&fd, &["lifecycleState"]));
                        if status_of(&fd, &["lifecycleState"]).as_deref() == Some("STABLE") {
                            break 'outer;
                        }
                    }
                    Some(Ok(other)) => panic!("unexpected watch event {other:?}"),
                    // The scripted drop: an aborted body, or the end of the stream.
                    Some(Err(_)) | None => {
                        drops += 1;
                        continue 'outer;
                    }
                }
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("never STABLE; saw {lifecycle:?} after {drops} drops"));
    assert!(
        drops >= 2,
        "expected the fault to cut the watch, saw {drops} drops"
    );
    assert!(
        versions.windows(2).all(|w| w[0] < w[1]),
        "duplicate or out-of-order versions: {versions:?}"
    );
    assert!(
        lifecycle.contains("DEPLOYED") && lifecycle.contains("STABLE"),
        "{lifecycle:?}"
    );
    assert!(standin.stats().watches >= 3);

    // A version older than the event log keeps is answered with 410 Gone, as a watch ERROR.
    standin.clear_faults();
    standin.compact();
    let mut stream = fds
        .watch(&params, "1")
        .await
        .unwrap_or_else(|e| panic!("watch: {e}"))
        .boxed();
    match stream.next().await {
        Some(Ok(WatchEvent::Error(status))) => assert_eq!(status.code, 410, "{status:?}"),
        other => panic!("expected a 410 ERROR event, got {other:?}"),
    }
    // kube-runtime's watcher recovers from it by listing again.
    let mut recovered = watcher(fds.clone(), watcher::Config::default()).boxed();
    let first = tokio::time::timeout(PATIENCE, recovered.try_next()).await;
    assert!(
        matches!(first, Ok(Ok(Some(watcher::Event::Init)))),
        "{first:?}"
    );
}

#[tokio::test]
async fn the_crd_schema_rejects_what_a_real_api_server_rejects() {
    let standin = start().await;
    let client = client(&standin).await;
    let fds = flink_api(&client);

    let mut bad_version = flink_deployment("bad-version");
    bad_version["spec"]["flinkVersion"] = json!("v1_99");
    let status = api_error(apply(&fds, &bad_version).await);
    assert_eq!((status.code, status.reason.as_str()), (422, "Invalid"));
    assert!(
        status
            .message
            .contains("spec.flinkVersion: Unsupported value: \"v1_99\""),
        "{}",
        status.message
    );

    let mut bad_parallelism = flink_deployment("bad-parallelism");
    bad_parallelism["spec"]["job"]["parallelism"] = json!("one");
    let status = api_error(
        fds.create(
            &PostParams::default(),
            &serde_json::from_value(bad_parallelism).unwrap_or_else(|e| panic!("{e}")),
        )
        .await,
    );
    assert_eq!(status.code, 422);
    assert!(
        status.message.contains("spec.job.parallelism"),
        "{}",
        status.message
    );
    assert!(
        status.message.contains("must be of type integer"),
        "{}",
        status.message
    );

    // Nothing was stored.
    assert!(fds.get_opt("bad-version").await.ok().flatten().is_none());
    assert!(
        fds.get_opt("bad-parallelism")
            .await
            .ok()
            .flatten()
            .is_none()
    );

    // Unknown fields: rejected with fieldValidation=Strict, pruned otherwise.
    let mut unknown = flink_deployment("unknown-field");
    unknown["spec"]["jobManger"] = json!({"replicas": 1});
    let strict = PatchParams {
        field_validation: Some(kube::api::ValidationDirective::Strict),
        ..PatchParams::apply("flink-eks")
    };
    let status = api_error(
        fds.patch("unknown-field", &strict, &Patch::Apply(&unknown))
            .await,
    );
    assert_eq!(status.code, 400);
    assert!(
        status
            .message
            .contains(".spec.jobManger: field not declared in schema"),
        "{}",
        status.message
    );
    let pruned = apply(&fds, &unknown)
        .await
        .unwrap_or_else(|e| panic!("apply: {e}"));
    assert!(
        pruned.data["spec"].get("jobManger").is_none(),
        "unknown field kept: {:?}",
        pruned.data["spec"]
    );

    // The status of a FlinkDeployment is the operator's: a user's apply cannot set it.
    let mut with_status = flink_deployment("no-status");
    with_status["status"] = json!({"lifecycleState": "STABLE"});
    let created = apply(&fds, &with_status)
        .await
        .unwrap_or_else(|e| panic!("apply: {e}"));
    assert_ne!(
        status_of(&created, &["lifecycleState"]).as_deref(),
        Some("STABLE")
    );

    // A name that is no DNS subdomain.
    let status = api_error(apply(&fds, &flink_deployment("Bad_Name")).await);
    assert_eq!(status.code, 422);
    assert!(
        status
            .message
            .contains("metadata.name: Invalid value: \"Bad_Name\""),
        "{}",
        status.message
    );
}

#[tokio::test]
async fn an_identical_apply_changes_nothing_and_a_spec_change_redeploys() {
    let standin = start().await;
    let client = client(&standin).await;
    let fds = flink_api(&client);
    let manifest = flink_deployment("idempotent");
    apply(&fds, &manifest)
        .await
        .unwrap_or_else(|e| panic!("apply: {e}"));
    let stable = wait_for(&fds, "idempotent", "STABLE", |fd| {
        status_of(fd, &["lifecycleState"]).as_deref() == Some("STABLE")
    })
    .await;
    let before = standin.stats();

    let again = apply(&fds, &manifest)
        .await
        .unwrap_or_else(|e| panic!("apply: {e}"));
    assert_eq!(again.metadata.generation, Some(1));
    assert_eq!(
        again.metadata.resource_version, stable.metadata.resource_version,
        "a no-op apply wrote"
    );
    let after = standin.stats();
    assert_eq!(after.writes, before.writes + 1);
    assert_eq!(after.effective_writes, before.effective_writes);
    assert_eq!(after.by_resource.get("flinkdeployments:PATCH"), Some(&2));

    // Annotations and labels are metadata: no new generation.
    let annotate = Patch::Merge(json!({"metadata": {"annotations": {"note": "hello"}}}));
    let annotated = fds
        .patch("idempotent", &PatchParams::default(), &annotate)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(annotated.metadata.generation, Some(1));

    // A spec change is a new generation, which the operator deploys anew.
    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    let jm_selector = ListParams::default().labels("app=idempotent,component=jobmanager");
    let old_pod = pods
        .list(&jm_selector)
        .await
        .map(|l| l.items[0].metadata.name.clone())
        .unwrap_or_else(|e| panic!("{e}"));
    let mut changed = manifest.clone();
    changed["spec"]["restartNonce"] = json!(1);
    let upgraded = apply(&fds, &changed)
        .await
        .unwrap_or_else(|e| panic!("apply: {e}"));
    assert_eq!(upgraded.metadata.generation, Some(2));
    let restable = wait_for(&fds, "idempotent", "STABLE at generation 2", |fd| {
        status_of(fd, &["observedGeneration"]).as_deref() == Some("2")
            && status_of(fd, &["lifecycleState"]).as_deref() == Some("STABLE")
    })
    .await;
    assert!(
        status_of(&restable, &["reconciliationStatus", "lastReconciledSpec"])
            .is_some_and(|s| s.contains("\"restartNonce\":1"))
    );
    let new_pods = pods
        .list(&jm_selector)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(new_pods.items.len(), 1);
    assert_ne!(
        new_pods.items[0].metadata.name, old_pod,
        "the JobManager pod was not recreated"
    );

    // The annotation, owned by another field manager, survives the apply.
    assert_eq!(
        restable
            .metadata
            .annotations
            .and_then(|a| a.get("note").cloned())
            .as_deref(),
        Some("hello")
    );
    // The operator's finalizer is there, owned by the operator.
    assert_eq!(
        restable.metadata.finalizers,
        Some(vec![
            "flinkdeployments.flink.apache.org/finalizer".to_owned()
        ])
    );
}

#[tokio::test]
async fn apply_conflicts_between_managers_answer_409_unless_forced() {
    let standin = start().await;
    let client = client(&standin).await;
    let fds = flink_api(&client);
    let manifest = flink_deployment("contested");
    apply(&fds, &manifest)
        .await
        .unwrap_or_else(|e| panic!("apply: {e}"));
    let mut other = manifest.clone();
    other["spec"]["image"] = json!("someone-else:2");
    let status = api_error(
        fds.patch(
            "contested",
            &PatchParams::apply("other-tool"),
            &Patch::Apply(&other),
        )
        .await,
    );
    assert_eq!((status.code, status.reason.as_str()), (409, "Conflict"));
    assert!(
        status.message.contains("conflict with \"flink-eks\"")
            && status.message.contains(".spec.image"),
        "{}",
        status.message
    );
    let forced = fds
        .patch(
            "contested",
            &PatchParams::apply("other-tool").force(),
            &Patch::Apply(&other),
        )
        .await;
    assert_eq!(
        forced.map(|f| f.data["spec"]["image"].clone()).ok(),
        Some(json!("someone-else:2"))
    );

    // Other errors keep their real codes.
    let status = api_error(fds.get("missing").await);
    assert_eq!((status.code, status.reason.as_str()), (404, "NotFound"));
    assert_eq!(
        status.message,
        "flinkdeployments.flink.apache.org \"missing\" not found"
    );
    let existing =
        serde_json::from_value(flink_deployment("contested")).unwrap_or_else(|e| panic!("{e}"));
    let status = api_error(fds.create(&PostParams::default(), &existing).await);
    assert_eq!(
        (status.code, status.reason.as_str()),
        (409, "AlreadyExists")
    );
}

#[tokio::test]
async fn scripted_faults_show_up_as_the_operator_reports_them() {
    let standin = start().await;
    let client = client(&standin).await;
    let fds = flink_api(&client);
    let pods: Api<Pod> = Api::default_namespaced(client.clone());

    standin.set_fault("default", "no-image", Fault::ImagePullFailure);
    standin.set_fault(
        "default",
        "bad-script",
        Fault::InitContainerFailure {
            message: "checksum mismatch for word_count.py".into(),
        },
    );
    standin.set_fault(
        "default",
        "crashing",
        Fault::JobFailed {
            message: "ZeroDivisionError: division by zero".into(),
        },
    );
    for name in ["no-image", "bad-script", "crashing"] {
        apply(&fds, &flink_deployment(name))
            .await
            .unwrap_or_else(|e| panic!("apply {name}: {e}"));
    }
    let mut missing_sa = flink_deployment("missing-sa");
    missing_sa["spec"]["serviceAccount"] = json!("nobody");
    apply(&fds, &missing_sa)
        .await
        .unwrap_or_else(|e| panic!("apply: {e}"));

    let error_of = |fd: &kube::api::DynamicObject| {
        status_of(fd, &["error"])
            .map(|e| serde_json::from_str::<serde_json::Value>(&e).unwrap_or_default())
    };
    let jm_error = |fd: &kube::api::DynamicObject| {
        status_of(fd, &["jobManagerDeploymentStatus"]).as_deref() == Some("ERROR")
    };

    let fd = wait_for(&fds, "no-image", "ERROR", jm_error).await;
    let error = error_of(&fd).unwrap_or_default();
    assert_eq!(error["additionalMetadata"]["reason"], "ImagePullBackOff");
    assert!(
        error["type"]
            .as_str()
            .is_some_and(|t| t.ends_with("DeploymentFailedException"))
    );
    let pod = &pods
        .list(&ListParams::default().labels("app=no-image,component=jobmanager"))
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .items[0];
    let waiting = pod
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|c| c[0].state.as_ref())
        .and_then(|s| s.waiting.as_ref());
    assert_eq!(
        waiting.and_then(|w| w.reason.as_deref()),
        Some("ImagePullBackOff")
    );
    let log = pods
        .logs(
            pod.metadata.name.as_deref().unwrap_or(""),
            &LogParams::default(),
        )
        .await;
    let status = api_error(log);
    assert_eq!(status.code, 400);
    assert!(
        status
            .message
            .contains("is waiting to start: trying and failing to pull image"),
        "{}",
        status.message
    );

    let fd = wait_for(&fds, "bad-script", "ERROR", jm_error).await;
    assert_eq!(
        error_of(&fd).unwrap_or_default()["additionalMetadata"]["reason"],
        "CrashLoopBackOff"
    );
    let pod = &pods
        .list(&ListParams::default().labels("app=bad-script,component=jobmanager"))
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .items[0];
    let init_log = pods
        .logs(
            pod.metadata.name.as_deref().unwrap_or(""),
            &LogParams {
                container: Some("fetch-script".into()),
                ..LogParams::default()
            },
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(init_log.trim(), "checksum mismatch for word_count.py");

    let fd = wait_for(&fds, "crashing", "FAILED", |fd| {
        status_of(fd, &["lifecycleState"]).as_deref() == Some("FAILED")
    })
    .await;
    assert_eq!(
        status_of(&fd, &["jobStatus", "state"]).as_deref(),
        Some("FAILED")
    );
    assert_eq!(
        error_of(&fd).unwrap_or_default()["message"],
        "ZeroDivisionError: division by zero"
    );

    let fd = wait_for(&fds, "missing-sa", "ERROR", jm_error).await;
    let error = error_of(&fd).unwrap_or_default();
    assert_eq!(error["additionalMetadata"]["reason"], "FailedCreate");
    assert!(
        error["message"]
            .as_str()
            .is_some_and(|m| m.contains("serviceaccount \"nobody\" not found")),
        "{error}"
    );

    // The operator's events are there, as `kubectl describe` would show them.
    let events: Api<CoreEvent> = Api::default_namespaced(client.clone());
    let about = events
        .list(&ListParams::default().fields("involvedObject.name=crashing"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        about
            .items
            .iter()
            .any(|e| e.reason.as_deref() == Some("JobStatusChanged")),
        "{:?}",
        about.items
    );
}

#[tokio::test]
async fn pods_created_after_the_role_annotation_get_irsa_credentials() {
    let standin = start().await;
    let client = client(&standin).await;
    let fds = flink_api(&client);
    let accounts: Api<ServiceAccount> = Api::default_namespaced(client.clone());
    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    let env_of = |pod: &Pod| -> Vec<String> {
        pod.spec
            .as_ref()
            .map(|s| {
                s.containers[0]
                    .env
                    .clone()
                    .unwrap_or_default()
                    .into_iter()
                    .map(|e| e.name)
                    .collect()
            })
            .unwrap_or_default()
    };

    apply(&fds, &flink_deployment("before"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    wait_for(&fds, "before", "STABLE", |fd| {
        status_of(fd, &["lifecycleState"]).as_deref() == Some("STABLE")
    })
    .await;
    let annotate = Patch::Merge(
        json!({"metadata": {"annotations": {"eks.amazonaws.com/role-arn": "arn:aws:iam::123456789012:role/flink"}}}),
    );
    accounts
        .patch("flink", &PatchParams::default(), &annotate)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    apply(&fds, &flink_deployment("after"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    wait_for(&fds, "after", "STABLE", |fd| {
        status_of(fd, &["lifecycleState"]).as_deref() == Some("STABLE")
    })
    .await;

    let jm = |app: &str| ListParams::default().labels(&format!("app={app},component=jobmanager"));
    let before = pods
        .list(&jm("before"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let after = pods
        .list(&jm("after"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!env_of(&before.items[0]).contains(&"AWS_ROLE_ARN".to_owned()));
    assert!(env_of(&after.items[0]).contains(&"AWS_WEB_IDENTITY_TOKEN_FILE".to_owned()));
}

#[tokio::test]
async fn lists_page_and_filter_like_the_real_server() {
    let standin = start().await;
    let client = client(&standin).await;
    let accounts: Api<ServiceAccount> = Api::default_namespaced(client.clone());
    for i in 0..5 {
        let sa = serde_json::from_value(json!({"metadata": {"name": format!("sa-{i}"), "labels": {"parity": if i % 2 == 0 { "even" } else { "odd" }}}}))
            .unwrap_or_else(|e| panic!("{e}"));
        accounts
            .create(&PostParams::default(), &sa)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let even = accounts
        .list(&ListParams::default().labels("parity=even"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(even.items.len(), 3);
    let first = accounts
        .list(&ListParams::default().labels("parity").limit(2))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(first.items.len(), 2);
    let token = first.metadata.continue_.clone().unwrap_or_default();
    // A change between pages does not show up: the pages are a consistent snapshot.
    accounts
        .delete("sa-4", &DeleteParams::default())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let rest = accounts
        .list(
            &ListParams::default()
                .labels("parity")
                .limit(10)
                .continue_token(&token),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let names: Vec<String> = first
        .items
        .iter()
        .chain(rest.items.iter())
        .filter_map(|s| s.metadata.name.clone())
        .collect();
    assert_eq!(names, ["sa-0", "sa-1", "sa-2", "sa-3", "sa-4"]);
    standin.compact();
    let status = api_error(
        accounts
            .list(&ListParams::default().limit(1).continue_token(&token))
            .await,
    );
    assert_eq!(status.code, 410);
    // Namespaces hold their default service account; objects cannot go into a missing one.
    let missing: Api<ServiceAccount> = Api::namespaced(client.clone(), "nowhere");
    let sa = serde_json::from_value(json!({"metadata": {"name": "x"}}))
        .unwrap_or_else(|e| panic!("{e}"));
    let status = api_error(missing.create(&PostParams::default(), &sa).await);
    assert_eq!(
        (status.code, status.message.as_str()),
        (404, "namespaces \"nowhere\" not found")
    );
}

//! The watch against the in-process Kubernetes stand-in with the operator's part played by
//! the test, write by write, as the real operator makes them (status through the `status`
//! subresource, core/v1 Events about the FlinkDeployment): a `status.error` it retries and
//! clears does not fail the wait, a terminal Event does at once, and the plan reads the
//! operator the stand-in installs.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use flink_eks_manifest::{FlinkDeployment, PyFlinkJob, S3Location};
use flink_eks_submit::operator::{Fact, Watched};
use flink_eks_submit::{Error, Submitter, WaitOptions, WaitSettings, WatchEvent};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Event;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube_standin::{Config, StandIn};
use serde_json::json;

const NAME: &str = "operator-said";

/// A stand-in whose operator is gone (its Deployment deleted), so the test writes what the
/// operator would; and the FlinkDeployment applied.
async fn applied(standin: &StandIn) -> (Submitter, i64, String) {
    let client = standin.client().await.expect("a client for the stand-in");
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default");
    deployments
        .delete("flink-kubernetes-operator", &DeleteParams::default())
        .await
        .expect("the chart's operator Deployment is there to delete");
    let submitter = Submitter::new(client);
    let location = S3Location::new("bucket", "jobs/job.py").unwrap();
    let job = PyFlinkJob::new(
        NAME,
        location,
        "ab".repeat(32),
        "registry.example/flink:1",
        "1.20.0",
    );
    let plan = submitter.plan(&job.build().unwrap()).await.unwrap();
    let applied = submitter.apply(&plan).await.unwrap();
    let api: Api<FlinkDeployment> = Api::namespaced(submitter.client().clone(), "default");
    let uid = api.get(NAME).await.unwrap().metadata.uid.unwrap();
    (submitter, applied.generation, uid)
}

async fn set_status(submitter: &Submitter, status: serde_json::Value) {
    let api: Api<FlinkDeployment> = Api::namespaced(submitter.client().clone(), "default");
    api.patch_status(
        NAME,
        &PatchParams::default(),
        &Patch::Merge(json!({"status": status})),
    )
    .await
    .expect("the test writes the operator's status");
}

#[tokio::test]
async fn a_status_error_the_operator_retries_and_clears_is_shown_and_the_wait_succeeds() {
    let standin = StandIn::start(Config::default()).await.unwrap();
    let (submitter, generation, _) = applied(&standin).await;
    let operator = submitter.clone();
    let play = tokio::spawn(async move {
        let error = r#"{"type":"org.apache.flink.kubernetes.operator.exception.ReconciliationException","message":"java.net.SocketTimeoutException: timeout"}"#;
        set_status(&operator, json!({"lifecycleState": "DEPLOYED", "jobManagerDeploymentStatus": "DEPLOYING",
            "jobStatus": {"state": "RECONCILING"}, "observedGeneration": generation, "error": error})).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        set_status(
            &operator,
            json!({"lifecycleState": "STABLE", "jobManagerDeploymentStatus": "READY",
            "jobStatus": {"state": "RUNNING"}, "observedGeneration": generation, "error": null}),
        )
        .await;
    });
    let seen = Mutex::new(Vec::new());
    let record = |e: &WatchEvent| seen.lock().unwrap().push(e.clone());
    let options = WaitOptions::new(Duration::from_secs(30)).settings(WaitSettings {
        no_status_window: Duration::from_secs(10),
        error_grace: Duration::from_secs(10),
    });
    let running = submitter
        .wait_until_running_with("default", NAME, generation, &options, &record)
        .await
        .expect("a transient error does not fail the wait");
    play.await.unwrap();
    assert!(!running.finished);
    let seen = seen.into_inner().unwrap();
    let retrying: Vec<String> = seen
        .iter()
        .filter(|e| matches!(e, WatchEvent::Retrying { .. }))
        .map(ToString::to_string)
        .collect();
    assert_eq!(retrying.len(), 1, "{seen:#?}");
    assert!(
        retrying[0].contains("warning: the operator reports an error and retries")
            && retrying[0].contains("SocketTimeoutException"),
        "{retrying:?}"
    );
}

#[tokio::test]
async fn an_unsupported_flink_version_event_fails_the_wait_at_once_with_its_message() {
    let standin = StandIn::start(Config::default()).await.unwrap();
    let (submitter, generation, uid) = applied(&standin).await;
    let events: Api<Event> = Api::namespaced(submitter.client().clone(), "default");
    let now = k8s_openapi::jiff::Timestamp::now();
    let message = "Flink version v1_20 is not supported by this operator version";
    let event: Event = serde_json::from_value(json!({
        "metadata": {"name": "operator-said.1234567", "namespace": "default"},
        "involvedObject": {"apiVersion": "flink.apache.org/v1beta1", "kind": "FlinkDeployment",
            "name": NAME, "namespace": "default", "uid": uid},
        "type": "Warning", "reason": "UnsupportedFlinkVersion", "message": message,
        "source": {"component": "Operator"}, "count": 1,
        "firstTimestamp": now.to_string(), "lastTimestamp": now.to_string(),
    }))
    .unwrap();
    events.create(&PostParams::default(), &event).await.unwrap();

    let started = Instant::now();
    let seen = Mutex::new(Vec::new());
    let record = |e: &WatchEvent| seen.lock().unwrap().push(e.clone());
    let err = submitter
        .wait_until_running_with(
            "default",
            NAME,
            generation,
            &WaitOptions::new(Duration::from_secs(60)),
            &record,
        )
        .await
        .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    let Error::Failed(failure) = &err else {
        panic!("{err:?}")
    };
    let line = err.to_string();
    assert!(
        line.contains(message)
            && line.contains("UnsupportedFlinkVersion")
            && line.contains("spec changes"),
        "{line}"
    );
    assert_eq!(failure.events.len(), 1, "{failure:#?}");
    let warnings = seen.into_inner().unwrap();
    assert!(
        warnings
            .iter()
            .any(|e| matches!(e, WatchEvent::Warning { reason, .. } if reason == "UnsupportedFlinkVersion")),
        "{warnings:#?}"
    );
}

#[tokio::test]
async fn no_status_within_the_window_names_what_the_plan_read() {
    let standin = StandIn::start(Config::default()).await.unwrap();
    let (submitter, generation, _) = applied(&standin).await;
    let facts = submitter.operator_facts().await;
    assert_eq!(facts.crd_served, Fact::Known(true));
    assert_eq!(facts.deployment, Fact::Known(None), "the test deleted it");
    let options = WaitOptions::new(Duration::from_secs(60))
        .settings(WaitSettings {
            no_status_window: Duration::from_secs(2),
            error_grace: Duration::from_secs(60),
        })
        .operator(Some(facts));
    let err = submitter
        .wait_until_running_with(
            "default",
            NAME,
            generation,
            &options,
            &flink_eks_plan::Silent,
        )
        .await
        .unwrap_err();
    let Error::NoStatus(report) = &err else {
        panic!("{err:?}")
    };
    assert!(report.waited < Duration::from_secs(10), "{report:?}");
    let line = err.to_string();
    assert!(
        line.contains("got no status") && line.contains("the plan found no Deployment labelled"),
        "{line}"
    );
    assert!(line.contains("spec.flinkVersion v1_20"), "{line}");
}

#[tokio::test]
async fn the_chart_installed_operator_is_read_with_its_version_and_namespaces() {
    let standin = StandIn::start(Config::default()).await.unwrap();
    let submitter = Submitter::new(standin.client().await.unwrap());
    let check = submitter.check_operator("default").await;
    assert_eq!(check.facts.watched, Fact::Known(Watched::All), "{check:?}");
    assert!(check.blockers.is_empty(), "{check:?}");
    assert_eq!(
        check.facts.summary(),
        "operator 1.15.0 in default, watches all namespaces"
    );
}

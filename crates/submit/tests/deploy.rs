//! Submit end to end: the script in S3 (moto), the FlinkDeployment applied to the Kubernetes
//! stand-in, which validates it against the real CRD and plays the operator.

mod common;

use std::time::Duration;

use flink_eks_manifest::{
    FETCH_CONTAINER, FlinkDeployment, JobState, LifecycleState, PyFlinkJob, S3Location,
};
use flink_eks_submit::{
    Change, Deletion, ObservedState, Phase, ScriptSync, SubmitError, Submitter, Uploader,
    sha256_hex,
};
use futures::StreamExt as _;
use kube_standin::{Config, Fault, JOB_OUTPUT_ANNOTATION, StandIn};

const SCRIPT_V1: &[u8] = b"from pyflink.table import TableEnvironment\nprint('hello from v1')\n";
const SCRIPT_V2: &[u8] = b"from pyflink.table import TableEnvironment\nprint('hello from v2')\n";
const IMAGE: &str = "registry.example/flink-s3:1.20.0";
const WAIT: Duration = Duration::from_secs(60);

struct Env {
    standin: StandIn,
    submitter: Submitter,
    s3: aws_sdk_s3::Client,
    uploader: Uploader,
    location: S3Location,
}

impl Env {
    async fn start(prefix: &str) -> Env {
        let s3 = common::s3().await;
        let bucket = common::versioned_bucket(&s3, prefix).await;
        let standin = StandIn::start(Config::default())
            .await
            .expect("start the Kubernetes stand-in (is the FlinkDeployment CRD there?)");
        let client = standin.client().await.expect("a client for the stand-in");
        Env {
            standin,
            submitter: Submitter::new(client),
            uploader: Uploader::new(s3.clone()),
            s3,
            location: S3Location::new(bucket, "jobs/python_demo_s3.py").unwrap(),
        }
    }

    /// The FlinkDeployment the manifest crate renders for this script checksum.
    fn deployment(&self, name: &str, sha256: &str) -> FlinkDeployment {
        let mut deployment = PyFlinkJob::new(name, self.location.clone(), sha256, IMAGE, "1.20.0")
            .build()
            .expect("render the FlinkDeployment");
        // What the stand-in's job prints once it runs, as a PyFlink job's output.
        deployment
            .metadata
            .annotations
            .get_or_insert_default()
            .insert(JOB_OUTPUT_ANNOTATION.into(), "hello from the job".into());
        deployment
    }

    /// Upload, apply and wait, as `cargo xtask submit` does; the states seen on the way.
    async fn submit(
        &self,
        name: &str,
        script: &[u8],
    ) -> (
        Change,
        flink_eks_submit::Applied,
        Result<flink_eks_submit::Running, SubmitError>,
        Vec<ObservedState>,
    ) {
        let uploaded = self
            .uploader
            .upload(&self.location, script)
            .await
            .expect("upload");
        let applied = self
            .submitter
            .apply(&self.deployment(name, &uploaded.sha256))
            .await
            .expect("apply");
        let mut seen = Vec::new();
        let result = self
            .submitter
            .wait_until_running("default", name, applied.generation, WAIT, |s| {
                seen.push(s.clone())
            })
            .await;
        (uploaded.action, applied, result, seen)
    }

    async fn log_lines(&self, name: &str) -> Vec<String> {
        let stream = self
            .submitter
            .logs("default", name, false, None)
            .await
            .expect("open the log");
        stream.map(|l| l.expect("read a log line")).collect().await
    }
}

fn is_stable_running(state: &ObservedState) -> bool {
    state.lifecycle_state == Some(LifecycleState::Stable)
        && state.job_state == Some(JobState::Running)
        && state.is_current()
}

#[tokio::test]
async fn a_first_submit_reaches_stable_and_running_and_shows_the_job_log() {
    let env = Env::start("first-submit").await;
    let (upload, applied, result, seen) = env.submit("python-example-s3", SCRIPT_V1).await;
    assert_eq!(upload, Change::Create);
    assert_eq!(applied.action, Change::Create);
    assert!(applied.changed);
    assert_eq!((applied.generation, applied.previous_generation), (1, None));

    let running = result.expect("the job runs");
    assert_eq!(running.generation, 1);
    assert!(is_stable_running(&running.state), "{}", running.state);
    // Each change was reported as it happened, ending with the running state.
    assert!(seen.len() >= 3, "states seen: {seen:#?}");
    assert_eq!(seen.last(), Some(&running.state));
    assert!(
        seen.windows(2).all(|w| w[0] != w[1]),
        "only changes are reported"
    );

    let lines = env.log_lines("python-example-s3").await;
    let text = lines.join("\n");
    assert!(
        text.contains("org.apache.flink.client.python.PythonDriver"),
        "{text}"
    );
    assert!(
        text.contains("/opt/flink/usrlib/python_demo_s3.py"),
        "{text}"
    );
    assert!(text.contains("hello from the job"), "{text}");

    let status = env
        .submitter
        .status("default", "python-example-s3", Some(&sha256_hex(SCRIPT_V1)))
        .await
        .unwrap();
    assert_eq!(status.phase, Phase::Running);
    assert_eq!(status.script, ScriptSync::UpToDate);
    assert_eq!(status.image.as_deref(), Some(IMAGE));
    assert_eq!(
        status.deployed_sha256.as_deref(),
        Some(sha256_hex(SCRIPT_V1).as_str())
    );
    let changed = env
        .submitter
        .status("default", "python-example-s3", Some(&sha256_hex(SCRIPT_V2)))
        .await
        .unwrap();
    assert_eq!(changed.script, ScriptSync::Differs);
}

#[tokio::test]
async fn a_resubmit_of_the_same_script_writes_nothing_and_keeps_the_generation() {
    let env = Env::start("resubmit-same").await;
    let (_, first, result, _) = env.submit("job-same", SCRIPT_V1).await;
    result.expect("the first submit runs");
    let writes_before = env.standin.stats();

    let sha = sha256_hex(SCRIPT_V1);
    let deployment = env.deployment("job-same", &sha);
    assert_eq!(
        env.uploader.plan(&env.location, SCRIPT_V1).await.unwrap(),
        Change::NoChange
    );
    assert_eq!(
        env.submitter.plan_apply(&deployment).await.unwrap(),
        Change::NoChange
    );
    let (upload, applied, result, _) = env.submit("job-same", SCRIPT_V1).await;
    assert_eq!(upload, Change::NoChange);
    assert_eq!(
        common::versions(&env.s3, env.location.bucket(), env.location.key()).await,
        1
    );
    assert_eq!(applied.generation, first.generation);
    assert!(!applied.changed);
    assert_eq!(applied.action, Change::NoChange);
    let running = result.expect("still running");
    assert_eq!(running.generation, first.generation);
    let writes_after = env.standin.stats();
    assert_eq!(
        writes_after.effective_writes, writes_before.effective_writes,
        "the no-op apply changed no object"
    );
}

#[tokio::test]
async fn a_changed_script_is_uploaded_and_the_wait_is_for_the_new_generation() {
    let env = Env::start("resubmit-changed").await;
    let (_, first, result, _) = env.submit("job-changed", SCRIPT_V1).await;
    result.expect("the first submit runs");
    env.standin.set_fault(
        "default",
        "job-changed",
        Fault::SlowTransitions { millis: 200 },
    );

    let sha2 = sha256_hex(SCRIPT_V2);
    assert_eq!(
        env.uploader.plan(&env.location, SCRIPT_V2).await.unwrap(),
        Change::Update
    );
    assert_eq!(
        env.submitter
            .plan_apply(&env.deployment("job-changed", &sha2))
            .await
            .unwrap(),
        Change::Update
    );
    // The watch for the next generation starts while the old one is still STABLE and
    // RUNNING, before the new spec reaches the API server: that must not end the wait.
    let next = first.generation + 1;
    let mut seen = Vec::new();
    let first_state_seen = tokio::sync::Notify::new();
    let wait = env
        .submitter
        .wait_until_running("default", "job-changed", next, WAIT, |s| {
            seen.push(s.clone());
            first_state_seen.notify_one();
        });
    let resubmit = async {
        first_state_seen.notified().await;
        let uploaded = env
            .uploader
            .upload(&env.location, SCRIPT_V2)
            .await
            .expect("upload");
        let applied = env
            .submitter
            .apply(&env.deployment("job-changed", &uploaded.sha256))
            .await
            .expect("apply");
        (uploaded, applied)
    };
    let (result, (uploaded, applied)) = tokio::join!(wait, resubmit);
    assert_eq!(uploaded.action, Change::Update);
    assert_eq!(
        common::body(&env.s3, env.location.bucket(), env.location.key()).await,
        SCRIPT_V2
    );
    assert_eq!(applied.generation, next);
    assert!(applied.changed);

    let running = result.expect("the new generation runs");
    assert_eq!(running.generation, next);
    assert_eq!(running.state.observed_generation, Some(next));
    let old = &seen[0];
    assert!(
        is_stable_running(old),
        "the wait began on the old STABLE: {seen:#?}"
    );
    assert_eq!(old.generation, Some(first.generation));
    assert!(
        seen.iter()
            .any(|s| s.lifecycle_state == Some(LifecycleState::Upgrading)),
        "the upgrade was watched: {seen:#?}"
    );

    let status = env
        .submitter
        .status("default", "job-changed", Some(&sha2))
        .await
        .unwrap();
    assert_eq!(status.deployed_sha256.as_deref(), Some(sha2.as_str()));
    assert_eq!(status.script, ScriptSync::UpToDate);
}

#[tokio::test]
async fn a_failed_job_ends_with_the_operator_error_and_the_log_tail() {
    let env = Env::start("job-failed").await;
    env.standin.set_fault(
        "default",
        "job-fails",
        Fault::JobFailed {
            message: "ZeroDivisionError: division by zero".into(),
        },
    );
    let (_, _, result, _) = env.submit("job-fails", SCRIPT_V1).await;
    let err = result.expect_err("the job fails");
    let SubmitError::Failed(failure) = &err else {
        panic!("{err:?}")
    };
    assert!(
        failure
            .error
            .message
            .contains("ZeroDivisionError: division by zero"),
        "{failure:#?}"
    );
    assert!(failure.pod.is_some());
    let log = failure.job_manager_log.join("\n");
    assert!(
        log.contains("switched from state RUNNING to FAILED"),
        "{log}"
    );
    assert!(failure.init_container_log.is_none());

    let message = err.to_string();
    assert!(
        message.contains("FlinkDeployment default/job-fails failed"),
        "{message}"
    );
    assert!(message.contains("ZeroDivisionError"), "{message}");
    assert!(
        message.contains("last lines of the JobManager log"),
        "{message}"
    );
}

#[tokio::test]
async fn a_failed_script_fetch_shows_the_init_container_log() {
    let env = Env::start("fetch-failed").await;
    env.standin.set_fault(
        "default",
        "fetch-fails",
        Fault::InitContainerFailure {
            message: "fatal error: An error occurred (403) when calling the HeadObject operation: Forbidden".into(),
        },
    );
    let (_, _, result, _) = env.submit("fetch-fails", SCRIPT_V1).await;
    let err = result.expect_err("the fetch fails");
    let SubmitError::Failed(failure) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(
        failure.error.reason.as_deref(),
        Some("CrashLoopBackOff"),
        "{failure:#?}"
    );
    let (container, lines) = failure
        .init_container_log
        .as_ref()
        .expect("the initContainer's log");
    assert_eq!(container, FETCH_CONTAINER);
    assert!(
        lines.join("\n").contains("HeadObject operation: Forbidden"),
        "{lines:?}"
    );
    let message = err.to_string();
    assert!(
        message.contains("could not fetch the script from S3"),
        "{message}"
    );
    assert!(
        message.contains(&format!("last lines of initContainer {FETCH_CONTAINER}")),
        "{message}"
    );
}

#[tokio::test]
async fn an_image_that_cannot_be_pulled_is_named() {
    let env = Env::start("image-pull").await;
    env.standin
        .set_fault("default", "no-image", Fault::ImagePullFailure);
    let (_, _, result, _) = env.submit("no-image", SCRIPT_V1).await;
    let err = result.expect_err("the image cannot be pulled");
    let SubmitError::Failed(failure) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(failure.error.reason.as_deref(), Some("ImagePullBackOff"));
    assert!(failure.error.message.contains(IMAGE), "{failure:#?}");
    assert!(
        failure
            .pod_problems
            .iter()
            .any(|p| p.contains("ImagePullBackOff")),
        "{:?}",
        failure.pod_problems
    );
    // The main container never started: the report says so instead of a log.
    assert!(
        failure
            .job_manager_log
            .iter()
            .any(|l| l.starts_with("(no log")),
        "{:?}",
        failure.job_manager_log
    );
}

#[tokio::test]
async fn a_dropped_watch_is_resumed() {
    let env = Env::start("watch-dropped").await;
    env.standin
        .set_fault("default", "job-drop", Fault::DropWatchAfter { events: 1 });
    env.standin.set_fault(
        "default",
        "job-drop",
        Fault::SlowTransitions { millis: 150 },
    );
    let (_, _, result, seen) = env.submit("job-drop", SCRIPT_V1).await;
    let running = result.expect("the job runs despite the cut watches");
    assert!(is_stable_running(&running.state));
    assert!(seen.len() >= 3, "{seen:#?}");
    let watches = env.standin.stats().watches;
    assert!(
        watches >= 2,
        "the watch was resumed: {watches} watch requests"
    );
}

#[tokio::test]
async fn a_watch_resumed_after_compaction_relists() {
    let env = Env::start("watch-compacted").await;
    env.standin.set_fault(
        "default",
        "job-compact",
        Fault::DropWatchAfter { events: 1 },
    );
    env.standin.set_fault(
        "default",
        "job-compact",
        Fault::SlowTransitions { millis: 150 },
    );
    let uploaded = env.uploader.upload(&env.location, SCRIPT_V1).await.unwrap();
    let applied = env
        .submitter
        .apply(&env.deployment("job-compact", &uploaded.sha256))
        .await
        .unwrap();
    let standin = &env.standin;
    // Each change compacts the event log, so each resumed watch gets 410 Gone and re-lists.
    let running = env
        .submitter
        .wait_until_running("default", "job-compact", applied.generation, WAIT, |_| {
            standin.compact()
        })
        .await
        .expect("the job runs despite 410 Gone");
    assert!(is_stable_running(&running.state));
}

#[tokio::test]
async fn a_timeout_names_the_last_states_seen() {
    let env = Env::start("timeout").await;
    env.standin.set_fault(
        "default",
        "job-slow",
        Fault::SlowTransitions { millis: 120_000 },
    );
    let uploaded = env.uploader.upload(&env.location, SCRIPT_V1).await.unwrap();
    let applied = env
        .submitter
        .apply(&env.deployment("job-slow", &uploaded.sha256))
        .await
        .unwrap();
    let err = env
        .submitter
        .wait_until_running(
            "default",
            "job-slow",
            applied.generation,
            Duration::from_secs(2),
            |_| {},
        )
        .await
        .expect_err("too slow");
    let SubmitError::Timeout(timeout) = &err else {
        panic!("{err:?}")
    };
    assert!(!timeout.last_states.is_empty());
    let message = err.to_string();
    assert!(
        message.contains("default/job-slow generation 1 was not running and stable after"),
        "{message}"
    );
    assert!(message.contains("last states seen"), "{message}");
    assert!(message.contains("JobManager DEPLOYING"), "{message}");
}

#[tokio::test]
async fn a_missing_namespace_is_a_clear_error() {
    let env = Env::start("no-namespace").await;
    let mut job = PyFlinkJob::new(
        "job",
        env.location.clone(),
        sha256_hex(SCRIPT_V1),
        IMAGE,
        "1.20.0",
    );
    job.namespace = "flink-jobs".into();
    let err = env
        .submitter
        .apply(&job.build().unwrap())
        .await
        .unwrap_err();
    assert!(
        matches!(err, SubmitError::NamespaceNotFound { .. }),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains("kubectl create namespace flink-jobs"),
        "{err}"
    );
    assert_eq!(
        env.standin.stats().effective_writes,
        0,
        "nothing was created"
    );
}

#[tokio::test]
async fn logs_follow_new_lines_until_the_pod_goes() {
    let env = Env::start("logs-follow").await;
    env.standin.set_fault(
        "default",
        "job-follow",
        Fault::SlowTransitions { millis: 300 },
    );
    let uploaded = env.uploader.upload(&env.location, SCRIPT_V1).await.unwrap();
    env.submitter
        .apply(&env.deployment("job-follow", &uploaded.sha256))
        .await
        .unwrap();

    // Open the log as soon as the JobManager container has started.
    let mut stream = tokio::time::timeout(WAIT, async {
        loop {
            if let Ok(stream) = env
                .submitter
                .logs("default", "job-follow", true, None)
                .await
            {
                return stream;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the JobManager log opens");
    assert!(stream.pod.starts_with("job-follow-"), "{}", stream.pod);
    let running_line = tokio::time::timeout(WAIT, async {
        while let Some(line) = stream.next().await {
            let line = line.expect("read a line");
            if line.contains("switched from state CREATED to RUNNING") {
                return line;
            }
        }
        panic!("the log ended before the job ran");
    })
    .await
    .expect("the job's RUNNING line arrives");
    assert!(running_line.contains("job-follow"));

    assert_eq!(
        env.submitter
            .delete("default", "job-follow", WAIT)
            .await
            .unwrap(),
        Deletion::Deleted
    );
    let rest = tokio::time::timeout(WAIT, stream.count()).await;
    assert!(
        rest.is_ok(),
        "the followed log ends when the pod is deleted"
    );
}

#[tokio::test]
async fn delete_waits_until_the_deployment_is_gone() {
    let env = Env::start("delete").await;
    let (_, _, result, _) = env.submit("job-delete", SCRIPT_V1).await;
    result.expect("runs");
    assert_eq!(
        env.submitter
            .delete("default", "job-delete", WAIT)
            .await
            .unwrap(),
        Deletion::Deleted
    );

    let err = env
        .submitter
        .status("default", "job-delete", None)
        .await
        .unwrap_err();
    assert!(matches!(err, SubmitError::NotFound { .. }), "{err:?}");
    let pods = env
        .submitter
        .job_manager_pod("default", "job-delete")
        .await
        .unwrap_err();
    assert!(
        matches!(pods, SubmitError::NoJobManagerPod { .. }),
        "{pods:?}"
    );
    assert_eq!(
        env.submitter
            .delete("default", "job-delete", WAIT)
            .await
            .unwrap(),
        Deletion::NotFound
    );
}

//! Submit end to end: the script in S3 (moto), the FlinkDeployment applied to the Kubernetes
//! stand-in, which validates it against the real CRD and plays the operator.

mod common;

use std::sync::Mutex;
use std::time::Duration;

use flink_eks_manifest::{
    FETCH_CONTAINER, FlinkDeployment, JobState, LifecycleState, PyFlinkJob, S3Location,
};
use flink_eks_plan::{Action, Silent};
use flink_eks_submit::{
    Applied, ApplyPlan, Deletion, Error, ObservedState, Phase, Running, ScriptSync, Submitter,
    Uploader, WatchEvent, sha256_hex,
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

    /// Upload and apply, each planned and then applied, as a deploy does.
    async fn upload_and_apply(&self, name: &str, script: &[u8]) -> (Action, ApplyPlan, Applied) {
        let uploaded = common::upload(&self.uploader, &self.location, script)
            .await
            .expect("upload");
        let plan = self
            .submitter
            .plan(&self.deployment(name, &uploaded.sha256))
            .await
            .expect("plan the apply");
        let applied = self.submitter.apply(&plan).await.expect("apply");
        (uploaded.action, plan, applied)
    }

    /// Upload, apply and wait, as `cargo xtask submit` does; the states seen on the way.
    async fn submit(
        &self,
        name: &str,
        script: &[u8],
    ) -> (
        Action,
        ApplyPlan,
        Applied,
        Result<Running, Error>,
        Vec<ObservedState>,
    ) {
        let (upload, plan, applied) = self.upload_and_apply(name, script).await;
        let (result, seen) = self.wait(name, applied.generation, WAIT).await;
        (upload, plan, applied, result, seen)
    }

    /// Waits for `generation` of `name`; the states seen on the way.
    async fn wait(
        &self,
        name: &str,
        generation: i64,
        timeout: Duration,
    ) -> (Result<Running, Error>, Vec<ObservedState>) {
        let seen = Mutex::new(Vec::new());
        let record = |event: &WatchEvent| {
            if let WatchEvent::State(state) = event {
                seen.lock().unwrap().push(state.clone());
            }
        };
        let result = self
            .submitter
            .wait_until_running("default", name, generation, timeout, &record)
            .await;
        (result, seen.into_inner().unwrap())
    }

    /// Submits `name` with [`SCRIPT_V1`] until it runs, then uploads [`SCRIPT_V2`] and plans
    /// its apply without applying it: an update, planned, that a writer can race. Returns what
    /// the first submit applied and the plan.
    async fn running_then_planned_update(&self, name: &str) -> (Applied, ApplyPlan) {
        let (_, _, first, result, _) = self.submit(name, SCRIPT_V1).await;
        result.expect("the first submit runs");
        let uploaded = common::upload(&self.uploader, &self.location, SCRIPT_V2)
            .await
            .unwrap();
        let plan = self
            .submitter
            .plan(&self.deployment(name, &uploaded.sha256))
            .await
            .unwrap();
        assert_eq!(plan.action(), Action::Update);
        (first, plan)
    }

    /// The live FlinkDeployment, as `kubectl get` shows it.
    async fn live(&self, name: &str) -> FlinkDeployment {
        kube::Api::<FlinkDeployment>::namespaced(self.submitter.client().clone(), "default")
            .get(name)
            .await
            .expect("read the FlinkDeployment")
    }

    /// Another writer (`kubectl apply --server-side --force-conflicts`) sets the image.
    async fn apply_image_as_someone_else(&self, name: &str, image: &str) {
        let patch = serde_json::json!({
            "apiVersion": "flink.apache.org/v1beta1", "kind": "FlinkDeployment",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"image": image}
        });
        kube::Api::<FlinkDeployment>::namespaced(self.submitter.client().clone(), "default")
            .patch(
                name,
                &kube::api::PatchParams::apply("someone-else").force(),
                &kube::api::Patch::Apply(&patch),
            )
            .await
            .expect("the other writer's apply");
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
    let (upload, plan, applied, result, seen) = env.submit("python-example-s3", SCRIPT_V1).await;
    assert_eq!(upload, Action::Create);
    assert_eq!(plan.action(), Action::Create);
    assert_eq!(applied.action, Action::Create);
    assert_eq!((applied.generation, plan.live_generation()), (1, None));
    let operation = plan.operation();
    assert_eq!(operation.kind, "flink-deployment");
    assert_eq!(operation.name, "default/python-example-s3");
    assert_eq!(operation.observed, None);

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
    let (_, _, first, result, _) = env.submit("job-same", SCRIPT_V1).await;
    result.expect("the first submit runs");

    let sha = sha256_hex(SCRIPT_V1);
    let deployment = env.deployment("job-same", &sha);
    let upload = env.uploader.plan(&env.location, SCRIPT_V1).await.unwrap();
    assert_eq!(upload.action(), Action::NoChange);
    let plan = env.submitter.plan(&deployment).await.unwrap();
    assert_eq!(plan.action(), Action::NoChange);
    assert_eq!(plan.live_generation(), Some(first.generation));
    assert!(plan.already_running(), "{:?}", plan.live_state());
    let live = env.live("job-same").await;
    assert_eq!(
        plan.operation().observed,
        Some(format!(
            "resourceVersion {}",
            live.metadata.resource_version.unwrap()
        ))
    );

    // Applying a no-change plan sends nothing at all: no request, not even a no-op apply.
    let writes_before = env.standin.stats();
    let uploaded = env.uploader.apply(&upload, SCRIPT_V1).await.unwrap();
    let applied = env.submitter.apply(&plan).await.unwrap();
    assert_eq!(uploaded.action, Action::NoChange);
    assert_eq!(
        common::versions(&env.s3, env.location.bucket(), env.location.key()).await,
        1
    );
    assert_eq!(applied.generation, first.generation);
    assert_eq!(applied.action, Action::NoChange);
    let writes_after = env.standin.stats();
    assert_eq!(
        (writes_after.writes, writes_after.effective_writes),
        (writes_before.writes, writes_before.effective_writes),
        "the no-change apply sent no write"
    );

    let (result, _) = env.wait("job-same", applied.generation, WAIT).await;
    let running = result.expect("still running");
    assert_eq!(running.generation, first.generation);
}

#[tokio::test]
async fn a_deployment_changed_between_plan_and_apply_is_stale_and_kept() {
    let env = Env::start("stale-update").await;
    let (first, plan) = env.running_then_planned_update("job-stale").await;
    // Someone else applies another spec in between: a new resourceVersion.
    env.apply_image_as_someone_else("job-stale", "registry.example/other:1")
        .await;

    let err = env.submitter.apply(&plan).await.unwrap_err();
    let Error::Stale(stale) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(stale.kind, "flink-deployment");
    assert_eq!(stale.name, "default/job-stale");
    // Named by the field that changed, with both values.
    assert_eq!(
        (stale.planned.as_str(), stale.found.as_str()),
        (
            format!("spec.image \"{IMAGE}\"").as_str(),
            "spec.image \"registry.example/other:1\""
        )
    );
    // Left as the other writer left it: their image, the old script, the same generation + 1.
    let live = env.live("job-stale").await;
    assert_eq!(live.spec.image.as_deref(), Some("registry.example/other:1"));
    assert_eq!(
        flink_eks_submit::deployed_script_sha256(&live),
        Some(sha256_hex(SCRIPT_V1))
    );
    assert_eq!(live.metadata.generation, Some(first.generation + 1));
}

#[tokio::test]
async fn a_deployment_deleted_between_plan_and_apply_is_stale_and_not_recreated() {
    let env = Env::start("stale-deleted").await;
    let (_, plan) = env.running_then_planned_update("job-deleted").await;
    assert_eq!(
        plan.uid(),
        env.live("job-deleted").await.metadata.uid.as_deref()
    );
    // Someone deletes it in between (and the operator's finalizer lets it go).
    let deletion = env
        .submitter
        .delete("default", "job-deleted", WAIT)
        .await
        .unwrap();
    assert_eq!(deletion, Deletion::Deleted);

    let before = env.standin.stats();
    let err = env.submitter.apply(&plan).await.unwrap_err();
    let Error::Stale(stale) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(stale.name, "default/job-deleted");
    assert!(err.to_string().contains("plan again"), "{err}");
    let after = env.standin.stats();
    assert_eq!(
        after.effective_writes, before.effective_writes,
        "nothing was stored"
    );
    let gone = kube::Api::<FlinkDeployment>::namespaced(env.submitter.client().clone(), "default")
        .get_opt("job-deleted")
        .await
        .unwrap();
    assert!(gone.is_none(), "not re-created: {gone:?}");
}

#[tokio::test]
async fn an_operator_status_write_between_plan_and_apply_does_not_make_the_plan_stale() {
    let env = Env::start("status-write").await;
    let (first, plan) = env.running_then_planned_update("job-status").await;
    // The operator writes the status subresource, as it does on every observation: a new
    // resourceVersion, the same generation, nothing we compared changed.
    let update_time = "1700000000000";
    kube::Api::<FlinkDeployment>::namespaced(env.submitter.client().clone(), "default")
        .patch_status(
            "job-status",
            &kube::api::PatchParams {
                field_manager: Some("flink-kubernetes-operator".into()),
                ..Default::default()
            },
            &kube::api::Patch::Merge(
                serde_json::json!({"status": {"jobStatus": {"updateTime": update_time}}}),
            ),
        )
        .await
        .expect("the operator's status write");
    let live = env.live("job-status").await;
    assert_ne!(
        live.metadata.resource_version.as_deref(),
        plan.resource_version()
    );
    assert_eq!(live.metadata.generation, plan.live_generation());

    let before = env.standin.stats();
    let applied = env.submitter.apply(&plan).await.expect("the apply");
    let after = env.standin.stats();
    assert_eq!(applied.action, Action::Update);
    assert_eq!(applied.generation, first.generation + 1);
    assert_eq!(
        (
            after.effective_writes - before.effective_writes,
            after.refused_writes - before.refused_writes
        ),
        (1, 1),
        "one send refused for its resourceVersion, then exactly one effective write: {after:?}"
    );
    let live = env.live("job-status").await;
    assert_eq!(
        flink_eks_submit::deployed_script_sha256(&live),
        Some(sha256_hex(SCRIPT_V2))
    );
    let (result, _) = env.wait("job-status", applied.generation, WAIT).await;
    assert_eq!(
        result.expect("the new generation runs").generation,
        applied.generation
    );
}

#[tokio::test]
async fn a_deployment_created_by_someone_else_after_the_plan_is_stale_and_kept() {
    let env = Env::start("stale-create").await;
    let uploaded = common::upload(&env.uploader, &env.location, SCRIPT_V1)
        .await
        .unwrap();
    let deployment = env.deployment("job-raced", &uploaded.sha256);
    let plan = env.submitter.plan(&deployment).await.unwrap();
    assert_eq!(plan.action(), Action::Create);
    // Someone else creates it first, with another image.
    let mut theirs = deployment.clone();
    theirs.spec.image = Some("registry.example/other:1".into());
    kube::Api::<FlinkDeployment>::namespaced(env.submitter.client().clone(), "default")
        .patch(
            "job-raced",
            &kube::api::PatchParams::apply("someone-else"),
            &kube::api::Patch::Apply(&theirs),
        )
        .await
        .expect("the other writer's create");

    let err = env.submitter.apply(&plan).await.unwrap_err();
    assert!(matches!(err, Error::Stale(_)), "{err:?}");
    assert_eq!(
        env.live("job-raced").await.spec.image.as_deref(),
        Some("registry.example/other:1")
    );
}

#[tokio::test]
async fn a_changed_script_is_uploaded_and_the_wait_is_for_the_new_generation() {
    let env = Env::start("resubmit-changed").await;
    let (_, _, first, result, _) = env.submit("job-changed", SCRIPT_V1).await;
    result.expect("the first submit runs");
    env.standin.set_fault(
        "default",
        "job-changed",
        Fault::SlowTransitions { millis: 200 },
    );

    let sha2 = sha256_hex(SCRIPT_V2);
    assert_eq!(
        env.uploader
            .plan(&env.location, SCRIPT_V2)
            .await
            .unwrap()
            .action(),
        Action::Update
    );
    let plan = env
        .submitter
        .plan(&env.deployment("job-changed", &sha2))
        .await
        .unwrap();
    assert_eq!(plan.action(), Action::Update);
    assert!(!plan.already_running());
    // The watch for the next generation starts while the old one is still STABLE and
    // RUNNING, before the new spec reaches the API server: that must not end the wait.
    let next = first.generation + 1;
    let seen = Mutex::new(Vec::new());
    let first_state_seen = tokio::sync::Notify::new();
    let record = |event: &WatchEvent| {
        if let WatchEvent::State(state) = event {
            seen.lock().unwrap().push(state.clone());
            first_state_seen.notify_one();
        }
    };
    let wait = env
        .submitter
        .wait_until_running("default", "job-changed", next, WAIT, &record);
    let resubmit = async {
        first_state_seen.notified().await;
        env.upload_and_apply("job-changed", SCRIPT_V2).await
    };
    let (result, (uploaded, _, applied)) = tokio::join!(wait, resubmit);
    let seen = seen.into_inner().unwrap();
    assert_eq!(uploaded, Action::Update);
    assert_eq!(
        common::body(&env.s3, env.location.bucket(), env.location.key()).await,
        SCRIPT_V2
    );
    assert_eq!(applied.generation, next);
    assert_eq!(applied.action, Action::Update);

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
    let (_, _, _, result, _) = env.submit("job-fails", SCRIPT_V1).await;
    let err = result.expect_err("the job fails");
    let Error::Failed(failure) = &err else {
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
    assert!(!message.contains('\n'), "one line: {message}");
    let report = failure.to_string();
    assert!(
        report.contains("last lines of the JobManager log"),
        "{report}"
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
    let (_, _, _, result, _) = env.submit("fetch-fails", SCRIPT_V1).await;
    let err = result.expect_err("the fetch fails");
    let Error::Failed(failure) = &err else {
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
    let report = failure.to_string();
    assert!(
        report.contains(&format!("last lines of initContainer {FETCH_CONTAINER}")),
        "{report}"
    );
}

#[tokio::test]
async fn an_image_that_cannot_be_pulled_is_named() {
    let env = Env::start("image-pull").await;
    env.standin
        .set_fault("default", "no-image", Fault::ImagePullFailure);
    let (_, _, _, result, _) = env.submit("no-image", SCRIPT_V1).await;
    let err = result.expect_err("the image cannot be pulled");
    let Error::Failed(failure) = &err else {
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
    let (_, _, _, result, seen) = env.submit("job-drop", SCRIPT_V1).await;
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
    let (_, _, applied) = env.upload_and_apply("job-compact", SCRIPT_V1).await;
    let standin = &env.standin;
    let compact = |_: &WatchEvent| standin.compact();
    // Each change compacts the event log, so each resumed watch gets 410 Gone and re-lists.
    let running = env
        .submitter
        .wait_until_running("default", "job-compact", applied.generation, WAIT, &compact)
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
    let (_, _, applied) = env.upload_and_apply("job-slow", SCRIPT_V1).await;
    let err = env
        .submitter
        .wait_until_running(
            "default",
            "job-slow",
            applied.generation,
            Duration::from_secs(2),
            &Silent,
        )
        .await
        .expect_err("too slow");
    let Error::Timeout(timeout) = &err else {
        panic!("{err:?}")
    };
    assert!(!timeout.last_states.is_empty());
    let message = err.to_string();
    assert!(
        message.contains("default/job-slow generation 1 was not running and stable after"),
        "{message}"
    );
    assert!(message.contains("JobManager DEPLOYING"), "{message}");
    let report = timeout.to_string();
    assert!(report.contains("last states seen"), "{report}");
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
    let plan = env.submitter.plan(&job.build().unwrap()).await.unwrap();
    assert_eq!(plan.action(), Action::Create);
    let err = env.submitter.apply(&plan).await.unwrap_err();
    assert!(matches!(err, Error::NamespaceNotFound { .. }), "{err:?}");
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
async fn a_deployment_the_caller_may_not_read_is_planned_as_unreadable_and_never_applied() {
    let env = Env::start("unreadable").await;
    // A user bound to nothing: the API server refuses the FlinkDeployment's GET.
    let mut config = kube::Config::new(env.standin.url().parse().unwrap());
    config.auth_info.impersonate = Some("nobody".into());
    let nobody = Submitter::new(kube::Client::try_from(config).unwrap());
    let deployment = env.deployment("job", &sha256_hex(SCRIPT_V1));
    let plan = nobody
        .plan(&deployment)
        .await
        .expect("a plan, not an error");
    let refused = plan.unreadable().expect("the refusal is kept").to_owned();
    assert!(
        refused.contains("\"nobody\" cannot get resource \"flinkdeployments\""),
        "{refused}"
    );
    assert_eq!(plan.action(), Action::Create);
    assert!(
        plan.operation().detail.contains("may not read it"),
        "{:?}",
        plan.operation()
    );
    let writes = env.standin.stats().effective_writes;
    let err = nobody.apply(&plan).await.unwrap_err();
    assert!(matches!(err, Error::Forbidden { .. }), "{err:?}");
    assert!(err.to_string().contains("kubectl auth can-i"), "{err}");
    assert_eq!(
        env.standin.stats().effective_writes,
        writes,
        "nothing was sent"
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
    env.upload_and_apply("job-follow", SCRIPT_V1).await;

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
    let (_, _, _, result, _) = env.submit("job-delete", SCRIPT_V1).await;
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
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
    let pods = env
        .submitter
        .job_manager_pod("default", "job-delete")
        .await
        .unwrap_err();
    assert!(matches!(pods, Error::NoJobManagerPod { .. }), "{pods:?}");
    assert_eq!(
        env.submitter
            .delete("default", "job-delete", WAIT)
            .await
            .unwrap(),
        Deletion::NotFound
    );
}

//! Savepoint, suspend and resume against the Kubernetes stand-in, which serves the operator's
//! FlinkStateSnapshot CRD and plays its state handling.

use std::time::Duration;

use flink_eks_manifest::{PyFlinkJob, S3Location, UpgradeMode};
use flink_eks_plan::Silent;
use flink_eks_submit::{Error, SavepointTrigger, Submitter};
use kube_standin::{Config, Fault, StandIn};

const WAIT: Duration = Duration::from_secs(60);
const SHA: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
const SAVEPOINTS: &str = "s3://state-bucket/state/job/savepoints";

async fn running(name: &str) -> (StandIn, Submitter) {
    let standin = StandIn::start(Config::default())
        .await
        .expect("start the Kubernetes stand-in (are the operator's CRDs there?)");
    let submitter = Submitter::new(standin.client().await.expect("a client for the stand-in"));
    let mut job = PyFlinkJob::new(
        name,
        S3Location::new("jobs-bucket", "jobs/job.py").unwrap(),
        SHA,
        "registry.example/flink-s3:1.20.0",
        "1.20.0",
    );
    job.upgrade_mode = UpgradeMode::Savepoint;
    job.savepoints_dir = Some(SAVEPOINTS.to_owned());
    job.checkpoints_dir = Some("s3://state-bucket/state/job/checkpoints".to_owned());
    let plan = submitter.plan(&job.build().unwrap()).await.expect("plan");
    let applied = submitter.apply(&plan).await.expect("apply");
    submitter
        .wait_until_running("default", name, applied.generation, WAIT, &Silent)
        .await
        .expect("the job runs");
    (standin, submitter)
}

#[tokio::test]
async fn a_savepoint_is_a_snapshot_resource_with_a_path_under_the_savepoint_dir() {
    let (standin, submitter) = running("sp").await;
    assert!(submitter.serves_snapshots().await.unwrap());
    let savepoint = submitter
        .savepoint("default", "sp", WAIT)
        .await
        .expect("savepoint");
    assert_eq!(savepoint.trigger, SavepointTrigger::Snapshot);
    assert!(
        savepoint
            .path
            .starts_with(&format!("{SAVEPOINTS}/savepoint-")),
        "{savepoint:?}"
    );
    let info = submitter.state_info("default", "sp").await.unwrap();
    assert_eq!(info.last_savepoint.unwrap().path, Some(savepoint.path));

    standin.set_fault(
        "default",
        "sp",
        Fault::SavepointFailure {
            message: "disk quota exceeded".into(),
        },
    );
    let err = submitter
        .savepoint("default", "sp", WAIT)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::SavepointFailed { .. }), "{err}");
    assert!(err.to_string().contains("disk quota exceeded"), "{err}");
}

#[tokio::test]
async fn suspend_then_resume_restores_from_the_suspend_savepoint() {
    let (standin, submitter) = running("sr").await;
    let taken = submitter
        .suspend("default", "sr", WAIT)
        .await
        .expect("suspend");
    let taken = taken.expect("a savepoint in savepoint mode");
    assert!(taken.starts_with(SAVEPOINTS), "{taken}");
    let status = submitter.status("default", "sr", None).await.unwrap();
    assert!(status.to_string().contains("SUSPENDED"), "{status}");
    let restored = submitter
        .resume("default", "sr", WAIT, &Silent)
        .await
        .expect("resume");
    assert_eq!(restored.as_deref(), Some(taken.as_str()));

    // A suspend whose savepoint fails names the operator's error, not a timeout.
    standin.set_fault(
        "default",
        "sr",
        Fault::SavepointFailure {
            message: "disk quota exceeded".into(),
        },
    );
    let err = submitter.suspend("default", "sr", WAIT).await.unwrap_err();
    assert!(err.to_string().contains("disk quota exceeded"), "{err}");
}

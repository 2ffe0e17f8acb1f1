//! A stateful job end to end, through the real `xtask` binary, against the real Docker engine,
//! the registry, moto and the Kubernetes stand-in (which serves the operator's
//! FlinkStateSnapshot CRD and plays its savepoints, upgrades, suspend and resume).
//!
//! One sequence, each step starting from what the previous one left:
//! 1. the first deploy (`upgrade_mode = "savepoint"`, a `[state]` prefix) reaches RUNNING;
//! 2. `savepoint` prints a path under the prefix (and `--output json` the same savepoint);
//! 3. a changed script is planned as "upgrade with savepoint" and the deploy names the
//!    savepoint the job restored from;
//! 4. `suspend` then `resume` return to RUNNING, restored from the suspend's savepoint;
//! 5. a no-change rerun writes nothing;
//! 6. an upgrade whose savepoint fails exits 5 with the operator's error, not a timeout;
//! 7. `teardown --savepoint` takes a final savepoint, and leaves the objects under the state
//!    prefix alone;
//! 8. `deploy --from-savepoint` starts a new job from the path (the JobManager's log names it);
//! 9. `teardown --savepoint --delete-state` exits 2 and touches nothing;
//! 10. `teardown --delete-state` deletes exactly the objects under the prefix (not one just
//!     outside it, not the script) and says how many.
//!
//! And, on a cluster without the FlinkStateSnapshot CRD, `savepoint` through
//! `job.savepointTriggerNonce`.

use aws_sdk_s3::primitives::ByteStream;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, ListParams, PostParams};
use kube_standin::Fault;

mod world;
use world::{NAMESPACE, World};

/// The stateful configuration for this world: the world's own, in savepoint mode, with a
/// state prefix in the world's bucket.
fn stateful_config(world: &World) -> (std::path::PathBuf, String) {
    let base = world.write_config("base.toml", &world.names.job);
    let text = std::fs::read_to_string(&base).unwrap();
    let prefix = format!("s3://{}/state/{}/", world.names.bucket, world.names.job);
    let text = text.replacen(
        "[job]\n",
        // The operator retries a failed stop-with-savepoint: the tool fails once its error
        // outlives the grace, kept short here.
        "[job]\nupgrade_mode = \"savepoint\"\nstatus_error_grace_secs = 3\n",
        1,
    ) + &format!("\n[state]\nprefix = \"{prefix}\"\ncheckpoint_interval = \"30s\"\n");
    let path = world.dir.path().join("stateful.toml");
    std::fs::write(&path, text).unwrap();
    (path, prefix)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn savepoint_upgrade_suspend_resume_and_start_from_a_savepoint() {
    let world = World::start().await;
    let (config, prefix) = stateful_config(&world);
    let xtask = world.xtask(&config);

    // 1. The first deploy.
    let run = xtask.run(&["deploy"]).await.unwrap();
    assert_eq!(run.code, Some(0), "the first deploy succeeds\n{run}");
    assert!(run.stderr.contains("RUNNING"), "{run}");

    // 2. A savepoint under the prefix, as a line and as JSON.
    let run = xtask.run(&["savepoint"]).await.unwrap();
    assert_eq!(run.code, Some(0), "{run}");
    let path = run.stdout.trim().to_owned();
    assert!(
        path.starts_with(&prefix),
        "the savepoint {path:?} is under {prefix}\n{run}"
    );
    let run = xtask.run(&["savepoint", "--output", "json"]).await.unwrap();
    assert_eq!(run.code, Some(0), "{run}");
    let json = run.stdout_json().unwrap();
    assert!(
        json["path"].as_str().unwrap().starts_with(&prefix),
        "{json}"
    );
    assert_eq!(json["trigger"], "snapshot", "{json}");
    let run = xtask.run(&["status"]).await.unwrap();
    assert!(
        run.stdout.contains(&format!(
            "last savepoint: {}",
            json["path"].as_str().unwrap()
        )),
        "status shows the last savepoint\n{run}"
    );

    // 3. A changed script upgrades through a savepoint, and the tool names it.
    world.change_script(b"# changed by the stateful test\n");
    let run = xtask.run(&["deploy"]).await.unwrap();
    assert_eq!(run.code, Some(0), "{run}");
    assert!(
        run.stderr.contains("upgrade with savepoint"),
        "the plan says how state is carried\n{run}"
    );
    let restored = run
        .stderr
        .lines()
        .find_map(|l| l.split("restored from savepoint ").nth(1))
        .unwrap_or_else(|| panic!("the deploy names the savepoint it restored from\n{run}"))
        .trim()
        .to_owned();
    assert!(restored.starts_with(&prefix), "{restored}");

    // 4. Suspend, then resume from the suspend's savepoint.
    let run = xtask.run(&["suspend"]).await.unwrap();
    assert_eq!(run.code, Some(0), "{run}");
    let suspend_path = run
        .stderr
        .split("with savepoint ")
        .nth(1)
        .unwrap_or_else(|| panic!("suspend names its savepoint\n{run}"))
        .trim()
        .to_owned();
    let status = world.status().await;
    assert_eq!(
        status["state"]["lifecycle_state"], "SUSPENDED",
        "{status:#}"
    );
    assert_eq!(status["state"]["job_manager"], "MISSING", "{status:#}");
    assert_eq!(
        status["snapshots"]["upgrade_savepoint_path"],
        suspend_path.as_str(),
        "{status:#}"
    );
    let run = xtask.run(&["resume"]).await.unwrap();
    assert_eq!(run.code, Some(0), "{run}");
    assert!(
        run.stderr
            .contains(&format!("restored from savepoint {suspend_path}")),
        "{run}"
    );
    let status = world.status().await;
    assert_eq!(status["state"]["job_state"], "RUNNING", "{status:#}");
    assert_eq!(status["state"]["lifecycle_state"], "STABLE", "{status:#}");

    // 5. Nothing changed: nothing written.
    let (run, writes) = world.counted(xtask.run(&["deploy"])).await;
    assert_eq!(run.code, Some(0), "{run}");
    writes.assert_none("a no-change deploy of the stateful job");

    // 6. An upgrade whose savepoint fails: exit 5 with the operator's error.
    world.standin.set_fault(
        NAMESPACE,
        &world.names.job,
        Fault::SavepointFailure {
            message: "Savepoint coordinator failed: disk quota exceeded".into(),
        },
    );
    world.change_script(b"# changed again\n");
    let run = xtask.run(&["deploy"]).await.unwrap();
    assert_eq!(
        run.code,
        Some(5),
        "a failed upgrade savepoint is a job failure\n{run}"
    );
    assert!(run.stderr.contains("disk quota exceeded"), "{run}");
    assert!(
        !run.stderr.contains("did not finish within"),
        "not a timeout\n{run}"
    );
    world.standin.clear_faults();

    // 7. Teardown leaves the state prefix alone.
    let state_key = format!(
        "state/{}/savepoints/savepoint-kept/_metadata",
        world.names.job
    );
    world
        .aws
        .s3
        .put_object()
        .bucket(&world.names.bucket)
        .key(&state_key)
        .body(ByteStream::from_static(b"state"))
        .send()
        .await
        .unwrap();
    let run = xtask
        .run(&["teardown", "--delete-script", "--savepoint"])
        .await
        .unwrap();
    assert_eq!(run.code, Some(0), "{run}");
    assert!(
        run.stderr.contains(&format!("final savepoint {prefix}")),
        "teardown --savepoint names the final savepoint\n{run}"
    );
    let kept = world
        .aws
        .s3
        .head_object()
        .bucket(&world.names.bucket)
        .key(&state_key)
        .send()
        .await;
    assert!(kept.is_ok(), "teardown keeps {state_key}");

    // 8. A new job from a given savepoint.
    let run = xtask
        .run(&[
            "deploy",
            "--from-savepoint",
            &path,
            "--allow-non-restored-state",
        ])
        .await
        .unwrap();
    assert_eq!(run.code, Some(0), "{run}");
    let run = xtask.run(&["logs", "--tail", "400"]).await.unwrap();
    assert!(
        run.stdout.contains(&format!("from savepoint {path}")),
        "the JobManager's log names the savepoint\n{run}"
    );

    // The stand-in's operator writes nothing to S3: the job's state is put there by hand,
    // beside an object just outside the prefix (a longer folder name with the same start)
    // and the script.
    let job = &world.names.job;
    let under = [
        format!("state/{job}/checkpoints/chk-7/_metadata"),
        format!("state/{job}/ha/{job}/blob/job-graph"),
    ];
    let beside = format!("state/{job}-beside/checkpoints/chk-1/_metadata");
    for key in under.iter().chain([&beside]) {
        world
            .aws
            .s3
            .put_object()
            .bucket(&world.names.bucket)
            .key(key)
            .body(ByteStream::from_static(b"state"))
            .send()
            .await
            .unwrap();
    }
    let mut expected = vec![
        state_key.clone(),
        under[0].clone(),
        under[1].clone(),
        beside.clone(),
        world.names.key.clone(),
    ];
    expected.sort();
    assert_eq!(keys(&world).await, expected, "the bucket before teardown");

    // 9. A final savepoint that the state's deletion would remove at once: refused before
    // anything is touched.
    let run = xtask
        .run(&["teardown", "--savepoint", "--delete-state"])
        .await
        .unwrap();
    assert_eq!(run.code, Some(2), "{run}");
    assert!(
        run.stderr.contains("--savepoint") && run.stderr.contains("--delete-state"),
        "the refusal names both flags\n{run}"
    );
    assert!(
        world.flink_deployment().await.is_some(),
        "the job is left as it was\n{run}"
    );
    assert_eq!(keys(&world).await, expected, "nothing deleted\n{run}");

    // 10. teardown --delete-state: exactly the objects under the prefix go, and it says how
    // many and where.
    let run = xtask.run(&["teardown", "--delete-state"]).await.unwrap();
    assert_eq!(run.code, Some(0), "{run}");
    assert!(
        run.stderr
            .contains(&format!("deleted 3 objects under {prefix}")),
        "teardown names the count and the prefix\n{run}"
    );
    assert!(world.flink_deployment().await.is_none(), "{run}");
    let mut left = vec![beside.clone(), world.names.key.clone()];
    left.sort();
    assert_eq!(
        keys(&world).await,
        left,
        "only the object beside the prefix and the script stay\n{run}"
    );
    // The object beside the prefix is the test's own: the world's clean-up removes the
    // script and an empty bucket.
    world
        .aws
        .s3
        .delete_object()
        .bucket(&world.names.bucket)
        .key(&beside)
        .send()
        .await
        .unwrap();
    world.clean_up().await;
}

/// Every key in the world's bucket, as `aws s3 ls --recursive` lists them, sorted.
async fn keys(world: &World) -> Vec<String> {
    let mut keys = Vec::new();
    let mut token = None;
    loop {
        let page = world
            .aws
            .s3
            .list_objects_v2()
            .bucket(&world.names.bucket)
            .set_continuation_token(token.take())
            .send()
            .await
            .expect("aws s3 ls");
        keys.extend(
            page.contents()
                .iter()
                .filter_map(|o| o.key().map(str::to_owned)),
        );
        match page.next_continuation_token() {
            Some(next) => token = Some(next.to_owned()),
            None => break,
        }
    }
    keys.sort();
    keys
}

/// The FlinkStateSnapshots in the world's namespace, as `kubectl get flinkstatesnapshots`
/// lists them.
async fn snapshots(world: &World) -> Vec<String> {
    let resource = ApiResource {
        group: "flink.apache.org".into(),
        version: "v1beta1".into(),
        api_version: "flink.apache.org/v1beta1".into(),
        kind: "FlinkStateSnapshot".into(),
        plural: "flinkstatesnapshots".into(),
    };
    let api: Api<DynamicObject> = Api::namespaced_with(world.kube.clone(), NAMESPACE, &resource);
    api.list(&ListParams::default())
        .await
        .expect("kubectl get flinkstatesnapshots")
        .items
        .into_iter()
        .filter_map(|o| o.metadata.name)
        .collect()
}

/// An operator without the FlinkStateSnapshot CRD (`helm upgrade` installs no new CRDs, or
/// someone deleted it) keeps savepoints in the FlinkDeployment's status: `savepoint` asks
/// through `job.savepointTriggerNonce`, prints the path under the state prefix, and no
/// FlinkStateSnapshot is made.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn savepoint_without_the_snapshot_crd_goes_through_the_trigger_nonce() {
    let world = World::start().await;
    let (config, prefix) = stateful_config(&world);
    let xtask = world.xtask(&config);
    let run = xtask.run(&["deploy"]).await.unwrap();
    assert_eq!(run.code, Some(0), "the first deploy succeeds\n{run}");
    assert!(
        snapshots(&world).await.is_empty(),
        "a first deploy takes none"
    );

    let crds: Api<CustomResourceDefinition> = Api::all(world.kube.clone());
    let name = "flinkstatesnapshots.flink.apache.org";
    let mut crd = crds.get(name).await.expect("kubectl get crd");
    crds.delete(name, &DeleteParams::default())
        .await
        .expect("kubectl delete crd flinkstatesnapshots.flink.apache.org");

    let run = xtask.run(&["savepoint"]).await.unwrap();
    assert_eq!(run.code, Some(0), "{run}");
    let first = run.stdout.trim().to_owned();
    assert!(
        first.starts_with(&prefix),
        "the savepoint {first:?} is under {prefix}\n{run}"
    );
    let run = xtask.run(&["savepoint", "--output", "json"]).await.unwrap();
    assert_eq!(run.code, Some(0), "{run}");
    let json = run.stdout_json().unwrap();
    assert_eq!(json["trigger"], "nonce", "{json}");
    let second = json["path"].as_str().unwrap().to_owned();
    assert!(second.starts_with(&prefix) && second != first, "{json}");

    // The operator recorded both in the FlinkDeployment's status, the last with the nonce
    // the tool set.
    let fd = world.flink_deployment().await.expect("the FlinkDeployment");
    assert_eq!(fd.data["spec"]["job"]["savepointTriggerNonce"], 2, "{fd:?}");
    let info = &fd.data["status"]["jobStatus"]["savepointInfo"];
    assert_eq!(
        info["lastSavepoint"]["location"],
        second.as_str(),
        "{info:#}"
    );
    assert_eq!(info["lastSavepoint"]["triggerNonce"], 2, "{info:#}");
    assert_eq!(info["lastSavepoint"]["triggerType"], "MANUAL", "{info:#}");
    let history: Vec<&str> = info["savepointHistory"]
        .as_array()
        .expect("a savepoint history")
        .iter()
        .filter_map(|s| s["location"].as_str())
        .collect();
    assert_eq!(history, [first.as_str(), second.as_str()], "{info:#}");
    let run = xtask.run(&["status"]).await.unwrap();
    assert!(
        run.stdout.contains(&format!("last savepoint: {second}")),
        "status shows the last savepoint from the status\n{run}"
    );

    // With the CRD back, the API lists what exists: no FlinkStateSnapshot was made.
    crd.metadata.resource_version = None;
    crd.metadata.uid = None;
    crd.metadata.managed_fields = None;
    crd.metadata.creation_timestamp = None;
    crd.metadata.generation = None;
    crd.status = None;
    crds.create(&PostParams::default(), &crd)
        .await
        .expect("kubectl create -f the CRD");
    assert_eq!(snapshots(&world).await, Vec::<String>::new());

    let run = xtask.run(&["teardown", "--delete-script"]).await.unwrap();
    assert_eq!(run.code, Some(0), "{run}");
    world.clean_up().await;
}

//! The whole `cargo xtask deploy`, run as a user runs it, against the real Docker engine, the
//! registry, the AWS emulator (moto) and the Kubernetes stand-in.
//!
//! One sequence, each step starting from what the previous one left:
//! 1. the first deploy builds, pushes, creates the IAM role and policy, uploads the script and
//!    brings the job to RUNNING;
//! 2. a second deploy plans "no-change" on every row and writes nothing, counted where the
//!    writes would land: moto's request recorder, the stand-in's counters, the registry's log;
//! 3. a changed script redeploys (new object, new generation) without rebuilding the image;
//! 4. `teardown --delete-script` leaves nothing behind, and a second teardown changes nothing.
//!
//! Besides, a bad configuration exits 2 naming the key, and writes nothing.
//!
//! Every run has an AWS account of its own in moto (entered through `sts:AssumeRole`, as
//! moto's multi-account support has it): the account starts empty, so "nothing left behind"
//! can be checked account-wide, and the `xtask` process signs with an access key of its own,
//! so its requests are told apart from the checks' and from other tests using the server.

use std::collections::BTreeMap;
use std::time::Instant;

use aws_config::Region;
use aws_sdk_iam::error::{ProvideErrorMetadata, SdkError};
use flink_eks_tests::registry_has_tag;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use serde_json::Value;
use sha2::Digest as _;

mod world;
use world::{NAMESPACE, SERVICE_ACCOUNT, World};

/// The tags that mark what flink-eks created, as `aws iam list-role-tags` shows them.
const MANAGED_BY: (&str, &str) = ("flink-eks.io/managed-by", "flink-eks");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_then_no_change_then_changed_script_then_teardown() {
    let started = Instant::now();
    let world = World::start().await;
    let mut timings = Vec::new();

    let t = Instant::now();
    first_deploy_reaches_running(&world).await;
    timings.push(("1 first deploy", t.elapsed()));

    let t = Instant::now();
    second_deploy_changes_nothing(&world).await;
    timings.push(("2 no-change deploy", t.elapsed()));

    let t = Instant::now();
    let script = world.change_script(b"# changed by the end-to-end test\n");
    plan_reports_a_changed_script_without_writing(&world).await;
    changed_script_redeploys_without_a_new_image(&world, &script).await;
    timings.push(("3 changed script", t.elapsed()));

    let t = Instant::now();
    a_stale_plan_fails_and_changes_nothing(&world).await;
    timings.push(("4 stale plan", t.elapsed()));

    let t = Instant::now();
    teardown_leaves_nothing_behind(&world).await;
    timings.push(("5 teardown twice", t.elapsed()));

    world.clean_up().await;
    for (step, elapsed) in timings {
        eprintln!("[e2e] {step}: {elapsed:.1?}");
    }
    eprintln!("[e2e] total: {:.1?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_configuration_exits_2_naming_the_key_and_writes_nothing() {
    let world = World::start().await;
    let config = world.write_config("deploy-bad.toml", "python_example_s3");
    let xtask = world.xtask(&config);

    let (run, writes) = world.counted(xtask.run(&["deploy"])).await;
    assert_eq!(run.code, Some(2), "bad input exits 2\n{run}");
    assert!(
        run.stderr.contains("job.name") && run.stderr.contains("python_example_s3"),
        "the error names the key and the value\n{run}"
    );
    writes.assert_none("a deploy refused for bad input");
    assert!(world.flink_deployment().await.is_none());
    assert!(world.account_roles().await.is_empty());
    assert_eq!(world.s3_object().await, None);
    world.clean_up().await;
}

/// The bucket in one region, the cluster in another, and the AWS configuration chain in a
/// third: S3 goes to the bucket's region (`[s3] region`), IAM, STS and EKS to the cluster's
/// (`[irsa] region`), so the deploy finds both and the role trusts the cluster's own issuer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bucket_and_a_cluster_in_different_regions_deploy() {
    const BUCKET_REGION: &str = "ap-northeast-2";
    const CLUSTER_REGION: &str = "eu-west-1";
    let world = World::start().await;
    let n = &world.names;
    let bucket = format!("{}-apne2", n.bucket);
    let cluster = format!("{}-euw1", n.cluster);
    let s3 = aws_sdk_s3::Client::from_conf(
        world
            .aws
            .s3
            .config()
            .to_builder()
            .region(Region::new(BUCKET_REGION))
            .build(),
    );
    let eks = aws_sdk_eks::Client::from_conf(
        world
            .aws
            .eks
            .config()
            .to_builder()
            .region(Region::new(CLUSTER_REGION))
            .build(),
    );
    s3.create_bucket()
        .bucket(&bucket)
        .create_bucket_configuration(
            aws_sdk_s3::types::CreateBucketConfiguration::builder()
                .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::from(
                    BUCKET_REGION,
                ))
                .build(),
        )
        .send()
        .await
        .expect("moto creates the bucket in its region");
    world::create_cluster(&eks, &cluster, &world.aws.account).await;
    // The chain (AWS_REGION) says us-east-1, where neither is.
    let text = std::fs::read_to_string(world.write_config("deploy-regions.toml", &n.job))
        .unwrap()
        .replace(
            &format!("bucket = \"{}\"", n.bucket),
            &format!("bucket = \"{bucket}\""),
        )
        .replace(
            "region = \"us-east-1\"",
            &format!("region = \"{BUCKET_REGION}\""),
        )
        .replace(
            &format!("cluster = \"{}\"", n.cluster),
            &format!("cluster = \"{cluster}\"\nregion = \"{CLUSTER_REGION}\""),
        );
    let config = world.dir.path().join("deploy-regions.toml");
    std::fs::write(&config, &text).unwrap();
    let xtask = world.xtask(&config);

    let run = xtask.run(&["deploy"]).await.expect("run");
    assert_eq!(run.code, Some(0), "the deploy succeeds\n{text}\n{run}");
    assert!(run.stderr.contains("RUNNING"), "{run}");
    let object = s3
        .get_object()
        .bucket(&bucket)
        .key(&n.key)
        .send()
        .await
        .expect("the script is in the bucket of the other region");
    let bytes = object.body.collect().await.unwrap().into_bytes();
    assert_eq!(bytes.as_ref(), world.script_bytes().as_slice());
    let role = world
        .aws
        .iam
        .get_role()
        .role_name(&n.role)
        .send()
        .await
        .expect("the role exists");
    let trust = percent_decode(
        role.role
            .and_then(|r| r.assume_role_policy_document)
            .unwrap_or_default(),
    );
    assert!(
        trust.contains(&format!("oidc.eks.{CLUSTER_REGION}.amazonaws.com")),
        "the role trusts the issuer of the cluster in {CLUSTER_REGION}: {trust}"
    );

    let run = xtask
        .run(&["teardown", "--delete-script"])
        .await
        .expect("run");
    assert_eq!(run.code, Some(0), "teardown succeeds\n{run}");
    assert!(world.account_roles().await.is_empty(), "{run}");
    s3.delete_bucket()
        .bucket(&bucket)
        .send()
        .await
        .expect("the bucket is empty after teardown --delete-script");
    eks.delete_cluster()
        .name(&cluster)
        .send()
        .await
        .expect("DeleteCluster");
    world.clean_up().await;
}

/// IAM returns policy documents percent-encoded.
fn percent_decode(text: String) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

// ---------------------------------------------------------------------------------------------
// The scenarios

async fn first_deploy_reaches_running(world: &World) {
    let (run, writes) = world
        .counted(world.xtask.run(&["deploy", "--output", "json"]))
        .await;
    assert_eq!(run.code, Some(0), "the first deploy succeeds\n{run}");
    assert!(
        run.stderr.contains("RUNNING") && run.stderr.contains("STABLE"),
        "the deploy reports the job RUNNING and STABLE\n{run}"
    );
    // The counters see writes when there are some: their zeros below mean something.
    assert!(!writes.aws_writes().is_empty(), "{writes}");
    assert!(writes.kube_writes() > 0, "{writes}");
    assert!(!writes.registry_writes().is_empty(), "{writes}");

    // The plan names each operation by kind and name, and what ran is what it listed: one
    // write call per planned create or update, counted where it lands.
    let plan = run.stdout_json().unwrap();
    let rows = plan["rows"].as_array().expect("the plan has rows");
    for row in rows {
        assert!(
            row["kind"].as_str().is_some_and(|k| !k.is_empty())
                && row["name"].as_str().is_some_and(|n| !n.is_empty()),
            "every row has a kind and a name: {row:#}"
        );
    }
    let planned = |kinds: &[&str]| {
        rows.iter()
            .filter(|r| kinds.contains(&r["kind"].as_str().unwrap_or_default()))
            .filter(|r| matches!(r["action"].as_str(), Some("create" | "update")))
            .count()
    };
    assert_eq!(
        writes.aws_writes().len(),
        planned(&[
            "oidc-provider",
            "iam-policy",
            "iam-role",
            "iam-policy-attachment",
            "pod-identity-association",
            "s3-object",
        ]),
        "one AWS write per planned AWS operation\n{plan:#}\n{writes}"
    );
    assert_eq!(
        writes.kube_writes(),
        u64::try_from(planned(&[
            "namespace",
            "role",
            "role-binding",
            "service-account",
            "flink-deployment"
        ]))
        .unwrap(),
        "one Kubernetes write per planned Kubernetes operation\n{plan:#}\n{writes}"
    );
    // Before a change, the plan reads where the JobManager's pods can run: the image's
    // platform on a schedulable node (the stand-in's nodes are linux/amd64).
    let nodes = rows
        .iter()
        .find(|r| r["kind"] == "nodes")
        .unwrap_or_else(|| panic!("the plan checks the nodes\n{plan:#}"));
    assert_eq!(nodes["action"], "checked", "{nodes:#}");
    assert_eq!(
        nodes["name"], "kubernetes.io/arch=amd64,kubernetes.io/os=linux",
        "{nodes:#}"
    );
    assert!(
        nodes["detail"]
            .as_str()
            .is_some_and(|d| d.contains("schedulable nodes") && !d.contains("warning")),
        "{nodes:#}"
    );
    let tag_writes = writes
        .registry_writes()
        .iter()
        .filter(|r| r.method == "PUT" && r.path.contains("/manifests/"))
        .count();
    assert_eq!(
        tag_writes,
        planned(&["image"]),
        "one tag written per planned image (its layers are the push's own requests)\n{writes}"
    );

    let local_sha256 = sha256_hex(&world.script_bytes());
    let status = world.status().await;
    assert_eq!(status["phase"], "running", "{status:#}");
    assert_eq!(status["state"]["job_state"], "RUNNING", "{status:#}");
    assert_eq!(status["script"], "up-to-date", "{status:#}");
    assert_eq!(
        status["deployed_sha256"],
        local_sha256.as_str(),
        "{status:#}"
    );

    let deployment = world
        .flink_deployment()
        .await
        .expect("the FlinkDeployment exists");
    assert_eq!(deployment.metadata.generation, Some(1));

    // IAM: the role, tagged as ours, and the service account pointing at it.
    let role = world
        .aws
        .iam
        .get_role()
        .role_name(&world.names.role)
        .send()
        .await
        .expect("the role exists")
        .role
        .expect("GetRole answers a role");
    let tags: BTreeMap<&str, &str> = role.tags().iter().map(|t| (t.key(), t.value())).collect();
    assert_eq!(tags.get(MANAGED_BY.0), Some(&MANAGED_BY.1), "{tags:?}");
    for (key, value) in [
        ("flink-eks.io/cluster", world.names.cluster.as_str()),
        ("flink-eks.io/namespace", NAMESPACE),
        ("flink-eks.io/service-account", SERVICE_ACCOUNT),
    ] {
        assert_eq!(tags.get(key), Some(&value), "{tags:?}");
    }
    assert_eq!(
        world.role_annotation().await.as_deref(),
        Some(role.arn()),
        "the service account names the role"
    );

    // S3: the script, byte for byte.
    assert_eq!(
        world.s3_object().await.as_deref(),
        Some(&world.script_bytes()[..])
    );

    // The registry: the image the FlinkDeployment runs.
    let image = status["image"].as_str().expect("status names the image");
    let (repository, tag) = image_parts(image, &world.services.registry);
    assert_eq!(repository, world.names.repository);
    assert!(
        registry_has_tag(&world.services.registry, &repository, &tag)
            .await
            .unwrap(),
        "the registry holds {image}"
    );
}

async fn second_deploy_changes_nothing(world: &World) {
    let (run, writes) = world
        .counted(world.xtask.run(&["deploy", "--output", "json"]))
        .await;
    assert_eq!(run.code, Some(0), "the second deploy succeeds\n{run}");
    let plan = run.stdout_json().unwrap();
    let actions = plan_actions(&plan);
    assert!(
        actions.len() >= 4
            && actions.iter().all(|(step, action)| match step.as_str() {
                "manifest" => action == "render",
                _ => action == "no-change",
            }),
        "every row of the plan is \"no change\" (the manifest is rendered locally): {actions:#?}"
    );
    assert_eq!(plan["pending"], 0, "{plan:#}");
    assert!(
        run.stderr.contains("RUNNING") && run.stderr.contains("STABLE"),
        "{run}"
    );
    // The run did read everywhere (so the counters were on), and wrote nowhere. Neither STS
    // nor EKS is asked: the first deploy remembered the cluster's ARN (which names the
    // account) and its issuer.
    let asked = |writes: &world::Writes, service: &str| {
        writes
            .aws
            .iter()
            .any(|r| r.service.as_deref() == Some(service))
    };
    for service in ["iam", "s3"] {
        assert!(
            asked(&writes, service),
            "moto recorded no {service} request of the run: {writes}"
        );
    }
    for service in ["eks", "sts"] {
        assert!(
            !asked(&writes, service),
            "the run asked {service}: {writes}"
        );
    }
    assert!(
        !writes.registry.is_empty(),
        "the registry logged no request of the run: {writes}"
    );
    writes.assert_none("a deploy with nothing changed");

    // A remembered identity that is no longer EKS's (as after the cluster was made again under
    // its name): the plan it gives would change the role, so EKS is asked before anything is
    // written; the deploy still changes nothing, and the cache holds EKS's answer again.
    let clusters = world.dir.path().join("cache/clusters");
    let file = std::fs::read_dir(&clusters)
        .unwrap_or_else(|e| {
            panic!(
                "the first deploy remembered no cluster in {}: {e}",
                clusters.display()
            )
        })
        .map(|entry| entry.unwrap().path())
        .find(|path| path.extension().is_some_and(|e| e == "json"))
        .expect("one remembered cluster");
    let remembered: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    let issuer = remembered["identity"]["issuer"].clone();
    assert!(
        issuer.as_str().is_some_and(|i| i.starts_with("https://")),
        "{remembered:#}"
    );
    let mut stale = remembered.clone();
    stale["identity"]["issuer"] = "https://oidc.eks.us-east-1.amazonaws.com/id/0LDC1USTER".into();
    std::fs::write(&file, serde_json::to_vec(&stale).unwrap()).unwrap();
    let (run, writes) = world
        .counted(world.xtask.run(&["deploy", "--output", "json"]))
        .await;
    assert_eq!(run.code, Some(0), "{run}");
    assert_eq!(run.stdout_json().unwrap()["pending"], 0, "{run}");
    assert!(asked(&writes, "eks"), "EKS was not asked: {writes}");
    writes.assert_none("a deploy with a stale remembered cluster");
    let now: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(now["identity"]["issuer"], issuer, "{now:#}");

    // The live plan alone says the same, exits 0, and writes nothing.
    let (run, writes) = world
        .counted(world.xtask.run(&["deploy", "--plan", "--output", "json"]))
        .await;
    assert_eq!(run.code, Some(0), "nothing pending: exit 0\n{run}");
    assert_eq!(run.stdout_json().unwrap()["pending"], 0, "{run}");
    writes.assert_none("deploy --plan with nothing pending");
}

/// `deploy --plan` after a script change: the pending operations, exit 7, no write.
async fn plan_reports_a_changed_script_without_writing(world: &World) {
    let (run, writes) = world
        .counted(world.xtask.run(&["deploy", "--plan", "--output", "json"]))
        .await;
    assert_eq!(run.code, Some(7), "operations pending: exit 7\n{run}");
    let plan = run.stdout_json().unwrap();
    let pending: Vec<(String, String)> = plan_actions(&plan)
        .into_iter()
        .filter(|(_, action)| action == "update" || action == "create")
        .collect();
    assert_eq!(
        pending,
        [
            ("upload".to_owned(), "update".to_owned()),
            ("submit".to_owned(), "update".to_owned())
        ],
        "{plan:#}"
    );
    assert_eq!(plan["pending"], 2, "{plan:#}");
    writes.assert_none("deploy --plan with operations pending");
}

/// A plan that goes stale between printing and carrying out (someone replaces the script's
/// object while `deploy --confirm` waits for its answer) fails on that write, names the
/// object, and changes nothing; the next deploy plans again and converges.
async fn a_stale_plan_fails_and_changes_nothing(world: &World) {
    let script = world.change_script(b"# changed again by the end-to-end test\n");
    let generation = world
        .flink_deployment()
        .await
        .and_then(|d| d.metadata.generation);

    let mut run = world.xtask.spawn(&["deploy", "--confirm"]).unwrap();
    let printed = run
        .wait_for(
            "Only 'yes' is accepted",
            std::time::Duration::from_secs(120),
        )
        .await
        .unwrap();
    assert!(printed.contains("s3-object"), "{printed}");
    // Someone else's upload lands between the plan and its write.
    let theirs = b"print('someone else')\n".to_vec();
    world
        .aws
        .s3
        .put_object()
        .bucket(&world.names.bucket)
        .key(&world.names.key)
        .body(theirs.clone().into())
        .send()
        .await
        .unwrap();
    let (run, writes) = world.counted(run.answer("yes")).await;
    assert_eq!(run.code, Some(6), "a stale plan exits 6\n{run}");
    assert!(
        run.stderr.contains("changed since it was planned")
            && run.stderr.contains(&world.names.key)
            && run.stderr.contains("plan again"),
        "{run}"
    );
    assert_eq!(
        world.s3_object().await.as_deref(),
        Some(&theirs[..]),
        "the other writer's object is kept"
    );
    assert_eq!(
        world
            .flink_deployment()
            .await
            .and_then(|d| d.metadata.generation),
        generation,
        "submit did not run: it waits for the upload"
    );
    // The one write sent is the guarded PUT, which S3 refused (the object above is still
    // theirs); nothing else was written anywhere.
    let object = format!("/{}/{}", world.names.bucket, world.names.key);
    let sent: Vec<(&str, &str)> = writes
        .aws_writes()
        .iter()
        .map(|r| {
            (
                r.method.as_str(),
                r.path.split_once('?').map_or(r.path.as_str(), |(p, _)| p),
            )
        })
        .collect();
    assert_eq!(sent, [("PUT", object.as_str())], "{writes}");
    assert_eq!(writes.kube_writes(), 0, "{writes}");
    assert!(writes.registry_writes().is_empty(), "{writes}");

    let run = world.xtask.run(&["deploy"]).await.unwrap();
    assert_eq!(run.code, Some(0), "the next deploy converges\n{run}");
    assert_eq!(world.s3_object().await.as_deref(), Some(&script[..]));
}

async fn changed_script_redeploys_without_a_new_image(world: &World, script: &[u8]) {
    let new_sha256 = sha256_hex(script);

    let (run, writes) = world
        .counted(world.xtask.run(&["deploy", "--output", "json"]))
        .await;
    assert_eq!(run.code, Some(0), "the redeploy succeeds\n{run}");
    let actions = plan_actions(&run.stdout_json().unwrap());
    let action_of = |step: &str| -> Vec<&str> {
        actions
            .iter()
            .filter(|(s, _)| s == step)
            .map(|(_, a)| a.as_str())
            .collect()
    };
    assert_eq!(action_of("image"), ["no-change"], "{actions:#?}");
    assert!(
        action_of("irsa").iter().all(|a| *a == "no-change"),
        "{actions:#?}"
    );
    assert_eq!(action_of("upload"), ["update"], "{actions:#?}");
    // The FlinkDeployment's update, and what is checked before it (read, not written): the
    // operator, the nodes.
    assert_eq!(
        action_of("submit"),
        ["update", "checked", "checked"],
        "{actions:#?}"
    );
    assert!(
        !run.stderr.lines().any(|l| l.starts_with("[image"))
            && !run.stderr.contains("Successfully built"),
        "the image step did not run\n{run}"
    );

    // S3 holds the new script; the FlinkDeployment is a new generation, running.
    assert_eq!(world.s3_object().await.as_deref(), Some(script));
    assert_eq!(
        world.s3_sha256_metadata().await.as_deref(),
        Some(new_sha256.as_str())
    );
    let deployment = world.flink_deployment().await.expect("the FlinkDeployment");
    assert_eq!(deployment.metadata.generation, Some(2));
    let status = &deployment.data["status"];
    assert_eq!(status["observedGeneration"], 2, "{status:#}");
    assert_eq!(status["jobStatus"]["state"], "RUNNING", "{status:#}");
    assert_eq!(status["lifecycleState"], "STABLE", "{status:#}");
    assert_eq!(world.status().await["deployed_sha256"], new_sha256.as_str());

    // Exactly the new object in AWS, the FlinkDeployment in the cluster, nothing in the registry.
    let aws: Vec<(Option<&str>, &str, &str)> = writes
        .aws_writes()
        .iter()
        .map(|r| {
            let path = r.path.split_once('?').map_or(r.path.as_str(), |(p, _)| p);
            (r.service.as_deref(), r.method.as_str(), path)
        })
        .collect();
    let object = format!("/{}/{}", world.names.bucket, world.names.key);
    assert_eq!(aws, [(Some("s3"), "PUT", object.as_str())], "{writes}");
    assert!(
        writes
            .kube_by_resource()
            .keys()
            .all(|k| k.starts_with("flinkdeployments:")),
        "{writes}"
    );
    assert!(
        writes.registry_writes().is_empty(),
        "no image rebuilt or pushed: {writes}"
    );
}

async fn teardown_leaves_nothing_behind(world: &World) {
    let run = world
        .xtask
        .run(&["teardown", "--delete-script"])
        .await
        .unwrap();
    assert_eq!(run.code, Some(0), "teardown succeeds\n{run}");

    // The cluster: no FlinkDeployment, nothing the operator made for it, no annotation.
    assert!(world.flink_deployment().await.is_none(), "{run}");
    let of_the_job = ListParams::default().labels(&format!("app={}", world.names.job));
    let pods: Api<Pod> = Api::namespaced(world.kube.clone(), NAMESPACE);
    assert!(pods.list(&of_the_job).await.unwrap().items.is_empty());
    let deployments: Api<Deployment> = Api::namespaced(world.kube.clone(), NAMESPACE);
    assert!(
        deployments
            .list(&of_the_job)
            .await
            .unwrap()
            .items
            .is_empty()
    );
    assert_eq!(world.role_annotation().await, None, "{run}");

    // IAM: no role, no policy, in the whole account.
    let role = world
        .aws
        .iam
        .get_role()
        .role_name(&world.names.role)
        .send()
        .await;
    assert!(is_no_such_entity(&role), "GetRole after teardown: {role:?}");
    let policy_arn = format!(
        "arn:aws:iam::{}:policy/{}",
        world.aws.account, world.names.policy
    );
    let policy = world
        .aws
        .iam
        .get_policy()
        .policy_arn(&policy_arn)
        .send()
        .await;
    assert!(
        is_no_such_entity(&policy),
        "GetPolicy after teardown: {policy:?}"
    );
    assert!(world.account_roles().await.is_empty(), "{run}");
    assert!(world.account_policies().await.is_empty(), "{run}");

    // S3: the script is gone.
    assert_eq!(world.s3_object().await, None, "{run}");

    // Again: nothing left to do, nothing written.
    let (again, writes) = world
        .counted(world.xtask.run(&["teardown", "--delete-script"]))
        .await;
    assert_eq!(again.code, Some(0), "a second teardown succeeds\n{again}");
    // Everything is gone already: it reads, finds nothing, and sends no write at all.
    writes.assert_none("a second teardown");
}

// ---------------------------------------------------------------------------------------------
// The world the scenarios run in

// ---------------------------------------------------------------------------------------------
// Reading what xtask printed

/// The (step, action) of every row of a JSON plan.
fn plan_actions(plan: &Value) -> Vec<(String, String)> {
    plan["rows"]
        .as_array()
        .unwrap_or_else(|| panic!("the plan has no rows: {plan:#}"))
        .iter()
        .map(|row| {
            (
                row["step"].as_str().unwrap_or_default().to_owned(),
                row["action"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// `127.0.0.1:5101/e2e/flink-s3:sha256-abc` -> (`e2e/flink-s3`, `sha256-abc`).
fn image_parts(image: &str, registry: &str) -> (String, String) {
    let path = image
        .strip_prefix(registry)
        .and_then(|p| p.strip_prefix('/'))
        .unwrap_or_else(|| panic!("{image} is not in the registry {registry}"));
    let (repository, tag) = path
        .rsplit_once(':')
        .unwrap_or_else(|| panic!("{image} has no tag"));
    (repository.to_owned(), tag.to_owned())
}

/// Whether IAM answered `NoSuchEntity`, as `aws iam get-role` does for a role that is gone.
fn is_no_such_entity<T, E: ProvideErrorMetadata, R>(result: &Result<T, SdkError<E, R>>) -> bool {
    result
        .as_ref()
        .is_err_and(|e| e.code() == Some("NoSuchEntity"))
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(bytes))
}

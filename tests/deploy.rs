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
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Instant;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_iam::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::config::Credentials;
use flink_eks_tests::{
    AwsRecorder, AwsRequest, RegistryLog, RegistryRequest, Services, Xtask, XtaskRun,
    registry_has_tag, unique,
};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Pod, ServiceAccount};
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, ListParams};
use serde_json::Value;
use sha2::Digest as _;

const NAMESPACE: &str = "default";
/// The service account the operator's Helm chart creates, and the stand-in has from the start.
const SERVICE_ACCOUNT: &str = "flink";
const ROLE_ARN_ANNOTATION: &str = "eks.amazonaws.com/role-arn";
/// The tags that mark what flink-eks created, as `aws iam list-role-tags` shows them.
const MANAGED_BY: (&str, &str) = ("flink-eks.io/managed-by", "flink-eks");
const EXAMPLE_SCRIPT: &str = "examples/jobs/python_demo_s3.py";

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
        u64::try_from(planned(&["service-account", "flink-deployment"])).unwrap(),
        "one Kubernetes write per planned Kubernetes operation\n{plan:#}\n{writes}"
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
    // The run did read everywhere (so the counters were on), and wrote nowhere.
    for service in ["sts", "iam", "eks", "s3"] {
        assert!(
            writes
                .aws
                .iter()
                .any(|r| r.service.as_deref() == Some(service)),
            "moto recorded no {service} request of the run: {writes}"
        );
    }
    assert!(
        !writes.registry.is_empty(),
        "the registry logged no request of the run: {writes}"
    );
    writes.assert_none("a deploy with nothing changed");

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
    assert_eq!(action_of("submit"), ["update"], "{actions:#?}");
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

/// The unique names of one run.
struct Names {
    job: String,
    cluster: String,
    bucket: String,
    key: String,
    role: String,
    policy: String,
    /// The image repository's path in the registry, e.g. `e2e-123-0-abc/flink-s3`.
    repository: String,
}

impl Names {
    fn new() -> Names {
        let id = unique("e2e");
        Names {
            job: id.clone(),
            cluster: format!("{id}-cluster"),
            bucket: format!("{id}-bucket"),
            key: "jobs/python_demo_s3.py".to_owned(),
            role: format!("{id}-role"),
            policy: format!("{id}-policy"),
            repository: format!("{id}/flink-s3"),
        }
    }
}

/// A moto account of its own, with clients for the test's checks.
struct Account {
    /// The 12-digit account id.
    account: String,
    /// The credentials the `xtask` process signs with, and only it.
    xtask_credentials: Credentials,
    iam: aws_sdk_iam::Client,
    s3: aws_sdk_s3::Client,
    eks: aws_sdk_eks::Client,
}

impl Account {
    /// Enters a new, empty account through `sts:AssumeRole`: moto files the returned access
    /// keys under the account of the role's ARN.
    async fn fresh(endpoint: &str) -> Account {
        let account = fresh_account_id();
        let base = sdk_config(
            endpoint,
            Credentials::new("testing", "testing", None, None, "e2e-bootstrap"),
        );
        let sts = aws_sdk_sts::Client::new(&base);
        let assume = |session: &'static str| {
            let sts = sts.clone();
            let role = format!("arn:aws:iam::{account}:role/e2e-operator");
            async move {
                let out = sts
                    .assume_role()
                    .role_arn(role)
                    .role_session_name(session)
                    .send()
                    .await
                    .expect("moto's STS AssumeRole into a fresh account");
                let c = out.credentials.expect("AssumeRole returns credentials");
                Credentials::new(
                    c.access_key_id,
                    c.secret_access_key,
                    Some(c.session_token),
                    None,
                    session,
                )
            }
        };
        let checks = assume("e2e-checks").await;
        let xtask_credentials = assume("e2e-xtask").await;
        let config = sdk_config(endpoint, checks);
        let s3 = aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&config)
                .force_path_style(true)
                .build(),
        );
        Account {
            account,
            iam: aws_sdk_iam::Client::new(&config),
            eks: aws_sdk_eks::Client::new(&config),
            s3,
            xtask_credentials,
        }
    }
}

fn sdk_config(endpoint: &str, credentials: Credentials) -> SdkConfig {
    SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(aws_sdk_s3::config::SharedCredentialsProvider::new(
            credentials,
        ))
        .build()
}

/// A 12-digit account id no earlier run (nor the other test of this process) used.
fn fresh_account_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or_default();
    let mix = nanos
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(u64::from(std::process::id()) << 32)
        .wrapping_add(NEXT.fetch_add(1, Ordering::Relaxed));
    (100_000_000_000 + mix % 800_000_000_000).to_string()
}

/// Everything one sequence of runs shares.
struct World {
    services: Services,
    names: Names,
    aws: Account,
    standin: kube_standin::StandIn,
    kube: kube::Client,
    /// The folder of the configuration, the script copy and the kubeconfig.
    dir: tempfile::TempDir,
    /// The script the configuration names (a copy of the example, so it can be changed).
    script: PathBuf,
    /// `xtask` with the configuration `deploy.toml` of [`World::dir`].
    xtask: Xtask,
    recorder: AwsRecorder,
}

impl World {
    /// The services, a fresh AWS account with the EKS cluster and the bucket a user has
    /// before the first deploy, a stand-in cluster with the operator's `flink` account, and
    /// the configuration.
    async fn start() -> World {
        let services = Services::from_env();
        let names = Names::new();
        let aws = Account::fresh(&services.aws_endpoint).await;
        aws.eks
            .create_cluster()
            .name(&names.cluster)
            .role_arn(format!("arn:aws:iam::{}:role/eks-cluster", aws.account))
            .resources_vpc_config(
                aws_sdk_eks::types::VpcConfigRequest::builder()
                    .subnet_ids("subnet-12345678")
                    .build(),
            )
            .send()
            .await
            .expect("moto creates the EKS cluster");
        aws.s3
            .create_bucket()
            .bucket(&names.bucket)
            .send()
            .await
            .expect("moto creates the bucket");

        let standin = kube_standin::StandIn::start(kube_standin::Config::default())
            .await
            .expect("the Kubernetes stand-in starts (is the CRD there? see FLINK_EKS_CRD)");
        let kube = standin.client().await.expect("a client for the stand-in");

        let dir = tempfile::tempdir().expect("a temporary folder");
        let script = dir.path().join("python_demo_s3.py");
        std::fs::copy(
            flink_eks_tests::workspace_root().join(EXAMPLE_SCRIPT),
            &script,
        )
        .expect("copy the example script");
        std::fs::write(dir.path().join("kubeconfig"), standin.kubeconfig_yaml()).unwrap();
        std::fs::create_dir(dir.path().join("docker")).unwrap();

        let config = write_config(dir.path(), &services, &names, "deploy.toml", &names.job);
        let xtask = xtask_for(dir.path(), &services, &aws, &config);
        World {
            recorder: AwsRecorder::new(&services.aws_endpoint),
            services,
            names,
            aws,
            standin,
            kube,
            script,
            xtask,
            dir,
        }
    }

    /// Writes another configuration for this world, with job name `job`.
    fn write_config(&self, file: &str, job: &str) -> PathBuf {
        write_config(self.dir.path(), &self.services, &self.names, file, job)
    }

    /// `xtask` with another configuration file.
    fn xtask(&self, config: &Path) -> Xtask {
        xtask_for(self.dir.path(), &self.services, &self.aws, config)
    }

    /// Runs `run` and counts what it wrote at the stand-ins: the requests moto recorded with
    /// the xtask's access key, the stand-in's write counters, the registry's log lines for
    /// this run's repository.
    async fn counted(
        &self,
        run: impl Future<Output = anyhow::Result<XtaskRun>>,
    ) -> (XtaskRun, Writes) {
        let registry = RegistryLog::mark(&self.services.registry_log).unwrap();
        let recording = self.recorder.start().await.unwrap();
        let kube_before = self.standin.stats();
        let run = run.await.unwrap();
        let kube_after = self.standin.stats();
        let recorded = recording.stop().await.unwrap();
        let key = self.aws.xtask_credentials.access_key_id();
        let writes = Writes {
            aws: recorded
                .into_iter()
                .filter(|r| r.access_key.as_deref() == Some(key))
                .collect(),
            kube_before,
            kube_after,
            registry: registry.requests_since(&self.names.repository).unwrap(),
        };
        (run, writes)
    }

    /// Appends `line` to the local script; returns its new bytes.
    fn change_script(&self, line: &[u8]) -> Vec<u8> {
        let mut script = self.script_bytes();
        script.extend_from_slice(line);
        std::fs::write(&self.script, &script).unwrap();
        script
    }

    fn script_bytes(&self) -> Vec<u8> {
        std::fs::read(&self.script).unwrap()
    }

    /// `cargo xtask status --output json`.
    async fn status(&self) -> Value {
        let run = self
            .xtask
            .run(&["status", "--output", "json"])
            .await
            .unwrap();
        assert_eq!(run.code, Some(0), "{run}");
        run.stdout_json().unwrap()
    }

    /// The FlinkDeployment, as `kubectl get flinkdeployment NAME -o json` shows it.
    async fn flink_deployment(&self) -> Option<DynamicObject> {
        let resource = ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("flink.apache.org", "v1beta1", "FlinkDeployment"),
            "flinkdeployments",
        );
        let api: Api<DynamicObject> = Api::namespaced_with(self.kube.clone(), NAMESPACE, &resource);
        api.get_opt(&self.names.job).await.unwrap()
    }

    /// The service account's `eks.amazonaws.com/role-arn` annotation.
    async fn role_annotation(&self) -> Option<String> {
        let accounts: Api<ServiceAccount> = Api::namespaced(self.kube.clone(), NAMESPACE);
        let account = accounts
            .get(SERVICE_ACCOUNT)
            .await
            .expect("the operator's service account is still there");
        account
            .metadata
            .annotations
            .and_then(|mut a| a.remove(ROLE_ARN_ANNOTATION))
    }

    /// The script object's bytes, or `None` when there is no object.
    async fn s3_object(&self) -> Option<Vec<u8>> {
        let got = self
            .aws
            .s3
            .get_object()
            .bucket(&self.names.bucket)
            .key(&self.names.key)
            .send()
            .await;
        match got {
            Ok(out) => Some(out.body.collect().await.unwrap().into_bytes().to_vec()),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_no_such_key()) => None,
            Err(e) => panic!("GetObject: {e:?}"),
        }
    }

    /// The `sha256` metadata of the script object, as `aws s3api head-object` shows it.
    async fn s3_sha256_metadata(&self) -> Option<String> {
        let head = self
            .aws
            .s3
            .head_object()
            .bucket(&self.names.bucket)
            .key(&self.names.key)
            .send()
            .await
            .expect("HeadObject");
        head.metadata().and_then(|m| m.get("sha256")).cloned()
    }

    /// Every role of the account.
    async fn account_roles(&self) -> Vec<String> {
        let out = self.aws.iam.list_roles().send().await.expect("ListRoles");
        out.roles()
            .iter()
            .map(|r| r.role_name().to_owned())
            .collect()
    }

    /// Every customer-managed policy of the account.
    async fn account_policies(&self) -> Vec<String> {
        let out = self
            .aws
            .iam
            .list_policies()
            .scope(aws_sdk_iam::types::PolicyScopeType::Local)
            .send()
            .await
            .expect("ListPolicies");
        out.policies()
            .iter()
            .filter_map(|p| p.policy_name().map(str::to_owned))
            .collect()
    }

    /// Removes what the test itself made for the run, and what teardown leaves on purpose:
    /// the bucket, the EKS cluster, and the image tags of this run in the local Docker engine
    /// (their layers stay, shared with the build cache).
    async fn clean_up(&self) {
        let docker = bollard::Docker::connect_with_local_defaults().expect("the Docker engine");
        let images = docker
            .list_images(None::<bollard::query_parameters::ListImagesOptions>)
            .await
            .expect("list the local images");
        let ours = format!("{}/{}:", self.services.registry, self.names.repository);
        for tag in images.iter().flat_map(|i| &i.repo_tags) {
            if tag.starts_with(&ours) {
                docker
                    .remove_image(
                        tag,
                        None::<bollard::query_parameters::RemoveImageOptions>,
                        None,
                    )
                    .await
                    .unwrap_or_else(|e| panic!("untag {tag}: {e}"));
            }
        }
        let _ = self
            .aws
            .s3
            .delete_object()
            .bucket(&self.names.bucket)
            .key(&self.names.key)
            .send()
            .await;
        self.aws
            .s3
            .delete_bucket()
            .bucket(&self.names.bucket)
            .send()
            .await
            .expect("DeleteBucket");
        self.aws
            .eks
            .delete_cluster()
            .name(&self.names.cluster)
            .send()
            .await
            .expect("DeleteCluster");
    }
}

/// Writes a configuration for the run into `dir` with job name `job`, and returns its path.
fn write_config(dir: &Path, services: &Services, n: &Names, file: &str, job: &str) -> PathBuf {
    let text = format!(
        r#"[job]
name = "{job}"
namespace = "{NAMESPACE}"
script = "python_demo_s3.py"
flink_version = "1.20.0"
timeout_secs = 120

[s3]
bucket = "{bucket}"
key = "{key}"
region = "us-east-1"

[image]
repository = "{registry}/{repository}"
base = "{base}"
pyflink = false
pull = "never"

[irsa]
cluster = "{cluster}"
service_account = "{SERVICE_ACCOUNT}"
role_name = "{role}"
policy_name = "{policy}"
"#,
        bucket = n.bucket,
        key = n.key,
        registry = services.registry,
        repository = n.repository,
        base = services.base_image,
        cluster = n.cluster,
        role = n.role,
        policy = n.policy,
    );
    let path = dir.join(file);
    std::fs::write(&path, text).unwrap();
    path
}

/// `xtask --config CONFIG` with this world's cluster, AWS account and an empty Docker
/// config, and nothing of the developer's own.
fn xtask_for(dir: &Path, services: &Services, aws: &Account, config: &Path) -> Xtask {
    let c = &aws.xtask_credentials;
    let mut env = vec![
        ("KUBECONFIG", dir.join("kubeconfig").display().to_string()),
        ("DOCKER_CONFIG", dir.join("docker").display().to_string()),
        ("AWS_ENDPOINT_URL", services.aws_endpoint.clone()),
        ("AWS_REGION", "us-east-1".to_owned()),
        ("AWS_ACCESS_KEY_ID", c.access_key_id().to_owned()),
        ("AWS_SECRET_ACCESS_KEY", c.secret_access_key().to_owned()),
        (
            "AWS_CONFIG_FILE",
            dir.join("no-aws-config").display().to_string(),
        ),
        (
            "AWS_SHARED_CREDENTIALS_FILE",
            dir.join("no-aws-credentials").display().to_string(),
        ),
        ("AWS_EC2_METADATA_DISABLED", "true".to_owned()),
    ];
    if let Some(token) = c.session_token() {
        env.push(("AWS_SESSION_TOKEN", token.to_owned()));
    }
    let env = env.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
    Xtask::new(config, env).unwrap_or_else(|e| panic!("{e:#}"))
}

/// What one run wrote, where.
struct Writes {
    /// The requests moto recorded with the xtask's access key, reads included.
    aws: Vec<AwsRequest>,
    kube_before: kube_standin::Stats,
    kube_after: kube_standin::Stats,
    /// The registry's log lines for this run's repository, reads included.
    registry: Vec<RegistryRequest>,
}

impl Writes {
    fn aws_writes(&self) -> Vec<&AwsRequest> {
        self.aws.iter().filter(|r| r.is_write()).collect()
    }

    fn kube_writes(&self) -> u64 {
        self.kube_after.writes - self.kube_before.writes
    }

    /// The stand-in's writes that changed an object (a request answered 404 changes nothing).
    fn kube_effective_writes(&self) -> u64 {
        self.kube_after.effective_writes - self.kube_before.effective_writes
    }

    fn kube_by_resource(&self) -> BTreeMap<String, u64> {
        self.kube_after
            .by_resource
            .iter()
            .map(|(k, after)| {
                let before = self.kube_before.by_resource.get(k).copied().unwrap_or(0);
                (k.clone(), after - before)
            })
            .filter(|(_, n)| *n > 0)
            .collect()
    }

    fn registry_writes(&self) -> Vec<&RegistryRequest> {
        self.registry.iter().filter(|r| r.is_write()).collect()
    }

    /// Not one write request anywhere.
    fn assert_none(&self, what: &str) {
        assert!(
            self.aws_writes().is_empty()
                && self.kube_writes() == 0
                && self.registry_writes().is_empty(),
            "{what} wrote something:\n{self}"
        );
    }
}

impl std::fmt::Display for Writes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let aws: Vec<String> = self.aws_writes().iter().map(ToString::to_string).collect();
        let registry: Vec<String> = self
            .registry_writes()
            .iter()
            .map(ToString::to_string)
            .collect();
        writeln!(f, "AWS: {} requests, writes: {aws:?}", self.aws.len())?;
        writeln!(
            f,
            "Kubernetes: {} writes ({} effective): {:?}",
            self.kube_writes(),
            self.kube_effective_writes(),
            self.kube_by_resource()
        )?;
        write!(
            f,
            "registry: {} requests, writes: {registry:?}",
            self.registry.len()
        )
    }
}

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

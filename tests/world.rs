//! The world the end-to-end tests run in: the real services, a fresh moto account with the
//! EKS cluster and the bucket, a Kubernetes stand-in with the operator's `flink` account, the
//! configuration, and the counting of what a run wrote where (moto's recorder, the stand-in's
//! counters, the registry's log). Shared by `deploy.rs` and `preflight.rs`; each uses a part.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_s3::config::Credentials;
use flink_eks_tests::{
    AwsRecorder, AwsRequest, RegistryLog, RegistryRequest, Services, Xtask, XtaskRun, unique,
};
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind};
use serde_json::Value;

pub(crate) const NAMESPACE: &str = "default";
/// The service account the operator's Helm chart creates, and the stand-in has from the start.
pub(crate) const SERVICE_ACCOUNT: &str = "flink";
pub(crate) const ROLE_ARN_ANNOTATION: &str = "eks.amazonaws.com/role-arn";
pub(crate) const EXAMPLE_SCRIPT: &str = "examples/jobs/python_demo_s3.py";

/// The unique names of one run.
pub(crate) struct Names {
    pub(crate) job: String,
    pub(crate) cluster: String,
    pub(crate) bucket: String,
    pub(crate) key: String,
    pub(crate) role: String,
    pub(crate) policy: String,
    /// The image repository's path in the registry, e.g. `e2e-123-0-abc/flink-s3`.
    pub(crate) repository: String,
}

impl Names {
    pub(crate) fn new() -> Names {
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

/// Creates the EKS cluster `name` in `account`, in the client's region: moto answers it with
/// an OIDC issuer, as EKS does.
pub(crate) async fn create_cluster(eks: &aws_sdk_eks::Client, name: &str, account: &str) {
    eks.create_cluster()
        .name(name)
        .role_arn(format!("arn:aws:iam::{account}:role/eks-cluster"))
        .resources_vpc_config(
            aws_sdk_eks::types::VpcConfigRequest::builder()
                .subnet_ids("subnet-12345678")
                .build(),
        )
        .send()
        .await
        .unwrap_or_else(|e| panic!("moto creates the EKS cluster {name}: {e}"));
}

/// A moto account of its own, with clients for the test's checks.
pub(crate) struct Account {
    /// The 12-digit account id.
    pub(crate) account: String,
    /// The credentials the `xtask` process signs with, and only it.
    pub(crate) xtask_credentials: Credentials,
    pub(crate) iam: aws_sdk_iam::Client,
    pub(crate) s3: aws_sdk_s3::Client,
    pub(crate) eks: aws_sdk_eks::Client,
}

impl Account {
    /// Enters a new, empty account through `sts:AssumeRole`: moto files the returned access
    /// keys under the account of the role's ARN.
    pub(crate) async fn fresh(endpoint: &str) -> Account {
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

pub(crate) fn sdk_config(endpoint: &str, credentials: Credentials) -> SdkConfig {
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
pub(crate) fn fresh_account_id() -> String {
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
pub(crate) struct World {
    pub(crate) services: Services,
    pub(crate) names: Names,
    pub(crate) aws: Account,
    pub(crate) standin: kube_standin::StandIn,
    pub(crate) kube: kube::Client,
    /// The folder of the configuration, the script copy and the kubeconfig.
    pub(crate) dir: tempfile::TempDir,
    /// The script the configuration names (a copy of the example, so it can be changed).
    pub(crate) script: PathBuf,
    /// `xtask` with the configuration `deploy.toml` of [`World::dir`].
    pub(crate) xtask: Xtask,
    pub(crate) recorder: AwsRecorder,
}

impl World {
    /// The services, a fresh AWS account with the EKS cluster and the bucket a user has
    /// before the first deploy, a stand-in cluster with the operator's `flink` account, and
    /// the configuration.
    pub(crate) async fn start() -> World {
        let services = Services::from_env();
        let names = Names::new();
        let aws = Account::fresh(&services.aws_endpoint).await;
        create_cluster(&aws.eks, &names.cluster, &aws.account).await;
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
    pub(crate) fn write_config(&self, file: &str, job: &str) -> PathBuf {
        write_config(self.dir.path(), &self.services, &self.names, file, job)
    }

    /// `xtask` with another configuration file.
    pub(crate) fn xtask(&self, config: &Path) -> Xtask {
        xtask_for(self.dir.path(), &self.services, &self.aws, config)
    }

    /// Runs `run` and counts what it wrote at the stand-ins: the requests moto recorded with
    /// the xtask's access key, the stand-in's write counters, the registry's log lines for
    /// this run's repository.
    pub(crate) async fn counted(
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
    pub(crate) fn change_script(&self, line: &[u8]) -> Vec<u8> {
        let mut script = self.script_bytes();
        script.extend_from_slice(line);
        std::fs::write(&self.script, &script).unwrap();
        script
    }

    pub(crate) fn script_bytes(&self) -> Vec<u8> {
        std::fs::read(&self.script).unwrap()
    }

    /// `cargo xtask status --output json`.
    pub(crate) async fn status(&self) -> Value {
        let run = self
            .xtask
            .run(&["status", "--output", "json"])
            .await
            .unwrap();
        assert_eq!(run.code, Some(0), "{run}");
        run.stdout_json().unwrap()
    }

    /// The FlinkDeployment, as `kubectl get flinkdeployment NAME -o json` shows it.
    pub(crate) async fn flink_deployment(&self) -> Option<DynamicObject> {
        let resource = ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("flink.apache.org", "v1beta1", "FlinkDeployment"),
            "flinkdeployments",
        );
        let api: Api<DynamicObject> = Api::namespaced_with(self.kube.clone(), NAMESPACE, &resource);
        api.get_opt(&self.names.job).await.unwrap()
    }

    /// The service account's `eks.amazonaws.com/role-arn` annotation.
    pub(crate) async fn role_annotation(&self) -> Option<String> {
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
    pub(crate) async fn s3_object(&self) -> Option<Vec<u8>> {
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
    pub(crate) async fn s3_sha256_metadata(&self) -> Option<String> {
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
    pub(crate) async fn account_roles(&self) -> Vec<String> {
        let out = self.aws.iam.list_roles().send().await.expect("ListRoles");
        out.roles()
            .iter()
            .map(|r| r.role_name().to_owned())
            .collect()
    }

    /// Every customer-managed policy of the account.
    pub(crate) async fn account_policies(&self) -> Vec<String> {
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
    pub(crate) async fn clean_up(&self) {
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
pub(crate) fn write_config(
    dir: &Path,
    services: &Services,
    n: &Names,
    file: &str,
    job: &str,
) -> PathBuf {
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
pub(crate) fn xtask_for(dir: &Path, services: &Services, aws: &Account, config: &Path) -> Xtask {
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
        (
            "FLINK_EKS_CACHE_DIR",
            dir.join("cache").display().to_string(),
        ),
    ];
    if let Some(token) = c.session_token() {
        env.push(("AWS_SESSION_TOKEN", token.to_owned()));
    }
    let env = env.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
    Xtask::new(config, env).unwrap_or_else(|e| panic!("{e:#}"))
}

/// What one run wrote, where.
pub(crate) struct Writes {
    /// The requests moto recorded with the xtask's access key, reads included.
    pub(crate) aws: Vec<AwsRequest>,
    pub(crate) kube_before: kube_standin::Stats,
    pub(crate) kube_after: kube_standin::Stats,
    /// The registry's log lines for this run's repository, reads included.
    pub(crate) registry: Vec<RegistryRequest>,
}

impl Writes {
    pub(crate) fn aws_writes(&self) -> Vec<&AwsRequest> {
        self.aws.iter().filter(|r| r.is_write()).collect()
    }

    pub(crate) fn kube_writes(&self) -> u64 {
        self.kube_after.writes - self.kube_before.writes
    }

    /// The stand-in's writes that changed an object (a request answered 404 changes nothing).
    pub(crate) fn kube_effective_writes(&self) -> u64 {
        self.kube_after.effective_writes - self.kube_before.effective_writes
    }

    pub(crate) fn kube_by_resource(&self) -> BTreeMap<String, u64> {
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

    pub(crate) fn registry_writes(&self) -> Vec<&RegistryRequest> {
        self.registry.iter().filter(|r| r.is_write()).collect()
    }

    /// Not one write request anywhere.
    pub(crate) fn assert_none(&self, what: &str) {
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

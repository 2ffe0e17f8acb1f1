//! Shared by the integration tests: the moto endpoint, clients that count write calls,
//! unique names, and an EKS cluster created through the EKS API.

#![allow(dead_code, unreachable_pub)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_iam::config::{Credentials, SharedCredentialsProvider};
use aws_sdk_iam::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeSerializationInterceptorContextRef, BeforeTransmitInterceptorContextMut,
};
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use flink_eks_irsa::documents::PolicyDocument;
use flink_eks_irsa::{
    ApplyReport, Error, IdentityMode, Irsa, IrsaSpec, Outcome, S3Grant, TeardownReport,
};
use flink_eks_manifest::S3Location;

pub const ENDPOINT_VAR: &str = "FLINK_EKS_TEST_AWS_ENDPOINT";

/// The moto server's URL; fails the test (never skips it) when it is not set.
pub fn endpoint() -> String {
    flink_eks_tests::service(ENDPOINT_VAR)
}

/// An AWS configuration for moto: region us-east-1, static test credentials.
pub fn sdk_config() -> SdkConfig {
    SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint())
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
            "testing",
            "testing",
            None,
            None,
            "flink-eks-tests",
        )))
        .build()
}

/// The same, without any credentials provider.
pub fn sdk_config_without_credentials() -> SdkConfig {
    SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint())
        .build()
}

/// Records the name of every AWS operation the clients send.
#[derive(Debug, Clone, Default)]
pub struct CallLog {
    calls: Arc<Mutex<Vec<String>>>,
}

impl CallLog {
    /// `Service:Operation` of every call so far.
    pub fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }

    /// The calls that are not reads (Get*, List*, Describe*).
    pub fn writes(&self) -> Vec<String> {
        self.calls()
            .into_iter()
            .filter(|c| {
                let op = c.split(':').nth(1).unwrap_or_default();
                !(op.starts_with("Get") || op.starts_with("List") || op.starts_with("Describe"))
            })
            .collect()
    }

    pub fn clear(&self) {
        self.calls.lock().unwrap().clear();
    }
}

impl Intercept for CallLog {
    fn name(&self) -> &'static str {
        "CallLog"
    }

    // Not `read_before_execution`: client interceptors see that before the operation's
    // metadata is in the config bag.
    fn read_before_serialization(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let name = cfg
            .load::<Metadata>()
            .map(|m| format!("{}:{}", m.service(), m.name()))
            .unwrap_or_else(|| "unknown:unknown".to_owned());
        self.calls.lock().unwrap().push(name);
        Ok(())
    }
}

/// Puts every request into one moto account (moto's server mode reads the account from the
/// `x-moto-account-id` header), so that each test has an IAM of its own: moto gives every
/// EKS cluster the same OIDC issuer, and the provider for it is per account.
#[derive(Debug, Clone)]
pub struct MotoAccount(pub String);

impl Intercept for MotoAccount {
    fn name(&self) -> &'static str {
        "MotoAccount"
    }

    fn modify_before_signing(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        context
            .request_mut()
            .headers_mut()
            .insert("x-moto-account-id", self.0.clone());
        Ok(())
    }
}

/// A fresh 12-digit account id.
pub fn unique_account() -> String {
    format!("{:012}", 100_000_000_000 + fresh() % 900_000_000_000)
}

/// IAM, STS and EKS clients for `config` in moto account `account`; when `log` is given,
/// every call is recorded in it.
pub fn clients(
    config: &SdkConfig,
    account: &str,
    log: Option<&CallLog>,
) -> (
    aws_sdk_iam::Client,
    aws_sdk_sts::Client,
    aws_sdk_eks::Client,
) {
    let header = MotoAccount(account.to_owned());
    let mut iam = aws_sdk_iam::config::Builder::from(config).interceptor(header.clone());
    let mut sts = aws_sdk_sts::config::Builder::from(config).interceptor(header.clone());
    let mut eks = aws_sdk_eks::config::Builder::from(config).interceptor(header);
    if let Some(log) = log {
        iam = iam.interceptor(log.clone());
        sts = sts.interceptor(log.clone());
        eks = eks.interceptor(log.clone());
    }
    (
        aws_sdk_iam::Client::from_conf(iam.build()),
        aws_sdk_sts::Client::from_conf(sts.build()),
        aws_sdk_eks::Client::from_conf(eks.build()),
    )
}

/// A name no other test (or earlier run against the same moto) uses.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", base36(fresh()))
}

/// A number no other call of this process, nor of an earlier run, is likely to get: the
/// clock, the process id and a counter, mixed.
fn fresh() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    (nanos ^ (u64::from(std::process::id()) << 32))
        .wrapping_add(n.wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

fn base36(mut n: u64) -> String {
    const DIGITS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    while n > 0 {
        out.push(DIGITS[(n % 36) as usize]);
        n /= 36;
    }
    out.reverse();
    String::from_utf8(out).unwrap()
}

/// A spec with unique role and policy names for `cluster`.
pub fn spec(cluster: &str, service_account: &str, key: &str) -> IrsaSpec {
    let id = unique("it");
    IrsaSpec {
        cluster: cluster.to_owned(),
        namespace: "default".to_owned(),
        service_account: service_account.to_owned(),
        role_name: format!("flink-role-{id}"),
        policy_name: format!("flink-policy-{id}"),
        grant: S3Grant::Object(S3Location::new("flink-s3-test", key).unwrap()),
        list_bucket: true,
        mode: IdentityMode::Irsa,
        adopt: false,
        state: None,
    }
}

/// Everything one test needs: a moto account of its own, a stand-in, counted clients, an
/// `Irsa`, and uncounted clients to look at (or tamper with) what exists, as a user with the
/// AWS CLI would.
pub struct World {
    pub account: String,
    pub standin: kube_standin::StandIn,
    pub kube: kube::Client,
    pub irsa: Irsa,
    pub log: CallLog,
    pub iam: aws_sdk_iam::Client,
    pub eks: aws_sdk_eks::Client,
    pub config: SdkConfig,
}

impl World {
    pub async fn start() -> World {
        let config = sdk_config();
        let account = unique_account();
        let standin = kube_standin::StandIn::start(kube_standin::Config::default())
            .await
            .expect("the Kubernetes stand-in starts");
        let kube = standin.client().await.unwrap();
        let log = CallLog::default();
        let (iam, sts, eks) = clients(&config, &account, Some(&log));
        let irsa = Irsa::from_clients(iam, sts, eks, kube.clone());
        let (iam, _, eks) = clients(&config, &account, None);
        World {
            account,
            standin,
            kube,
            irsa,
            log,
            iam,
            eks,
            config,
        }
    }

    /// `arn:aws:iam::ACCOUNT:` + `rest`.
    pub fn arn(&self, rest: &str) -> String {
        format!("arn:aws:iam::{}:{rest}", self.account)
    }

    /// A world with a fresh EKS cluster in moto; returns the cluster's name too.
    pub async fn with_cluster() -> (World, String) {
        let world = World::start().await;
        let cluster = unique("flink");
        world.create_cluster(&cluster).await;
        (world, cluster)
    }

    /// Creates an EKS cluster in moto through the EKS API and returns its OIDC issuer.
    pub async fn create_cluster(&self, name: &str) -> String {
        let created = self
            .eks
            .create_cluster()
            .name(name)
            .role_arn(self.arn("role/eks-cluster-role"))
            .resources_vpc_config(
                aws_sdk_eks::types::VpcConfigRequest::builder()
                    .subnet_ids("subnet-12345678")
                    .build(),
            )
            .send()
            .await
            .expect("moto creates the EKS cluster");
        let issuer = created
            .cluster()
            .and_then(|c| c.identity())
            .and_then(|i| i.oidc())
            .and_then(|o| o.issuer())
            .expect("moto gives the cluster an OIDC issuer")
            .to_owned();
        assert!(issuer.starts_with("https://"), "{issuer}");
        issuer
    }

    pub fn standin_writes(&self) -> u64 {
        self.standin.stats().writes
    }

    /// The role as IAM returns it.
    pub async fn role(&self, name: &str) -> aws_sdk_iam::types::Role {
        let out = self.iam.get_role().role_name(name).send().await.unwrap();
        out.role().expect("GetRole returns the role").clone()
    }

    /// The role's trust policy, parsed.
    pub async fn trust_policy(&self, role_name: &str) -> PolicyDocument {
        let role = self.role(role_name).await;
        let document = role
            .assume_role_policy_document()
            .expect("the role has a trust policy");
        PolicyDocument::parse_iam(document).unwrap()
    }

    pub async fn role_exists(&self, name: &str) -> bool {
        let read = self.iam.get_role().role_name(name).send().await;
        found(&format!("GetRole {name}"), read)
    }

    pub async fn policy_exists(&self, arn: &str) -> bool {
        let read = self.iam.get_policy().policy_arn(arn).send().await;
        found(&format!("GetPolicy {arn}"), read)
    }

    /// Another writer points the role annotation of service account `default/name` at
    /// `role_arn` (a merge patch, as `kubectl annotate` sends).
    pub async fn annotate_role_as_someone_else(&self, name: &str, role_arn: &str) {
        let api: kube::Api<k8s_openapi::api::core::v1::ServiceAccount> =
            kube::Api::namespaced(self.kube.clone(), "default");
        let annotation = serde_json::json!({
            "metadata": {"annotations": {flink_eks_irsa::ROLE_ARN_ANNOTATION: role_arn}}
        });
        api.patch(
            name,
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(annotation),
        )
        .await
        .expect("the other writer's annotation");
    }

    pub async fn annotations(
        &self,
        namespace: &str,
        name: &str,
    ) -> Option<std::collections::BTreeMap<String, String>> {
        let api: kube::Api<k8s_openapi::api::core::v1::ServiceAccount> =
            kube::Api::namespaced(self.kube.clone(), namespace);
        api.get_opt(name)
            .await
            .unwrap()
            .map(|sa| sa.metadata.annotations.unwrap_or_default())
    }
}

/// Whether an IAM read found its entity: `false` on `NoSuchEntity`; any other error fails
/// the test, naming the `call`.
fn found<T, E: ProvideErrorMetadata + std::fmt::Debug, R: std::fmt::Debug>(
    call: &str,
    read: Result<T, SdkError<E, R>>,
) -> bool {
    match read {
        Ok(_) => true,
        Err(SdkError::ServiceError(e)) if e.err().code() == Some("NoSuchEntity") => false,
        Err(e) => panic!("{call}: {e:?}"),
    }
}

/// Plans and applies `spec` at once, with no progress: what a second run of a user does.
pub async fn apply(irsa: &Irsa, spec: &IrsaSpec) -> Result<ApplyReport, Error> {
    let plan = irsa.plan(spec).await?;
    irsa.apply(&plan, &flink_eks_plan::Silent).await
}

/// What teardown reported for the resource of `kind`.
pub fn outcome(teardown: &TeardownReport, kind: &str) -> Outcome {
    teardown
        .outcome(kind)
        .unwrap_or_else(|| panic!("no {kind} row in {teardown}"))
}

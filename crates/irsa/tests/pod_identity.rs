//! EKS Pod Identity mode. IAM and STS go to the moto server; moto has no EKS Pod Identity,
//! so the EKS calls are answered from responses recorded in `tests/recorded/` (written from
//! the EKS API Reference) by aws-smithy's `StaticReplayClient`, and the requests the crate
//! sends are checked one by one.

mod common;

use aws_smithy_http_client::test_util::{ReplayEvent, StaticReplayClient};
use aws_smithy_types::body::SdkBody;
use common::{CallLog, World, clients, spec, unique};
use flink_eks_irsa::{
    Action, CheckKind, IdentityMode, Irsa, IrsaSpec, Outcome, ResourceKind, no_progress,
};

const EKS: &str = "https://eks.us-east-1.amazonaws.com";

struct Recorded<'a> {
    spec: &'a IrsaSpec,
    account: &'a str,
    role_arn: String,
}

impl Recorded<'_> {
    fn body(&self, file: &str) -> String {
        let path = format!("{}/tests/recorded/{file}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{path}: {e}"))
            .replace("{{CLUSTER}}", &self.spec.cluster)
            .replace("{{ACCOUNT}}", self.account)
            .replace("{{ROLE_ARN}}", &self.role_arn)
            .replace("{{NAMESPACE}}", &self.spec.namespace)
            .replace("{{SERVICE_ACCOUNT}}", &self.spec.service_account)
    }

    /// One exchange: the request we expect (method and path, for the failure message) and
    /// the recorded response.
    fn event(&self, method: &str, path: &str, file: &str) -> ReplayEvent {
        let request = http::Request::builder()
            .method(method)
            .uri(format!("{EKS}{path}"))
            .body(SdkBody::empty())
            .unwrap();
        let response = http::Response::builder()
            .status(200)
            .header("content-type", "application/json")
            .body(SdkBody::from(self.body(file)))
            .unwrap();
        ReplayEvent::new(request, response)
    }
}

/// An `Irsa` whose IAM and STS calls go to moto (counted in `log`) and whose EKS calls are
/// answered by `replay`.
fn irsa(world: &World, log: &CallLog, replay: &StaticReplayClient) -> Irsa {
    let (iam, sts, _) = clients(&world.config, &world.account, Some(log));
    let eks = aws_sdk_eks::Client::from_conf(
        aws_sdk_eks::config::Builder::from(&world.config)
            .endpoint_url(EKS)
            .http_client(replay.clone())
            .interceptor(log.clone())
            .build(),
    );
    Irsa::from_clients(iam, sts, eks, world.kube.clone())
}

/// Method and path-and-query of every request the replay client received.
fn sent(replay: &StaticReplayClient) -> Vec<String> {
    replay
        .actual_requests()
        .map(|r| {
            let uri: http::Uri = r.uri().parse().unwrap();
            format!("{} {}", r.method(), uri.path_and_query().unwrap())
        })
        .collect()
}

#[tokio::test]
async fn pod_identity_creates_role_and_association_then_changes_nothing_then_tears_down() {
    let world = World::start().await;
    let mut spec = spec(&unique("flink"), "flink", "test/job.py");
    spec.mode = IdentityMode::PodIdentity;
    let recorded = Recorded {
        spec: &spec,
        account: &world.account,
        role_arn: world.arn(&format!("role/{}", spec.role_name)),
    };
    let cluster_path = format!("/clusters/{}", spec.cluster);
    let list_path =
        format!("{cluster_path}/pod-identity-associations?namespace=default&serviceAccount=flink");
    let association_path = format!("{cluster_path}/pod-identity-associations/a-0123456789abcdefg");
    let kube_writes = world.standin_writes();

    // First run: role, policy and attachment in moto; the association through EKS.
    let log = CallLog::default();
    let replay = StaticReplayClient::new(vec![
        recorded.event("GET", &cluster_path, "describe-cluster.json"),
        recorded.event(
            "GET",
            &list_path,
            "list-pod-identity-associations-empty.json",
        ),
        recorded.event(
            "POST",
            &format!("{cluster_path}/pod-identity-associations"),
            "pod-identity-association.json",
        ),
    ]);
    let report = irsa(&world, &log, &replay)
        .apply(&spec, &no_progress)
        .await
        .unwrap();
    let rows: Vec<_> = report
        .plan
        .rows
        .iter()
        .map(|r| (r.kind, r.action))
        .collect();
    assert_eq!(
        rows,
        [
            (ResourceKind::Policy, Action::Create),
            (ResourceKind::Role, Action::Create),
            (ResourceKind::Attachment, Action::Create),
            (ResourceKind::PodIdentityAssociation, Action::Create),
        ],
        "no OIDC provider and no annotation in Pod Identity mode"
    );
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.contains("eks-pod-identity-agent")),
        "{report}"
    );
    assert_eq!(
        sent(&replay),
        [
            format!("GET {cluster_path}"),
            format!("GET {list_path}"),
            format!("POST {cluster_path}/pod-identity-associations"),
        ]
    );
    let create = replay.actual_requests().nth(2).unwrap();
    let body: serde_json::Value = serde_json::from_slice(create.body().bytes().unwrap()).unwrap();
    assert_eq!(body["namespace"], "default");
    assert_eq!(body["serviceAccount"], "flink");
    assert_eq!(body["roleArn"], report.plan.role_arn.as_str());
    assert_eq!(body["tags"]["flink-eks.io/managed-by"], "flink-eks");
    assert!(
        body["clientRequestToken"].is_string(),
        "the call is idempotent: {body}"
    );

    let trust = world.trust_policy(&spec.role_name).await;
    let trust = serde_json::to_value(trust).unwrap();
    assert_eq!(
        trust["Statement"][0]["Principal"]["Service"],
        "pods.eks.amazonaws.com"
    );
    assert_eq!(
        trust["Statement"][0]["Action"],
        serde_json::json!(["sts:AssumeRole", "sts:TagSession"])
    );

    // Second run: reads only.
    let log = CallLog::default();
    let replay = StaticReplayClient::new(vec![
        recorded.event("GET", &cluster_path, "describe-cluster.json"),
        recorded.event("GET", &list_path, "list-pod-identity-associations-one.json"),
        recorded.event("GET", &association_path, "pod-identity-association.json"),
    ]);
    let again = irsa(&world, &log, &replay)
        .apply(&spec, &no_progress)
        .await
        .unwrap();
    assert!(!again.changed(), "{again}");
    assert_eq!(log.writes(), Vec::<String>::new());
    assert_eq!(sent(&replay).len(), 3);

    // Verify: trust, attachment, permission policy, association.
    let replay = StaticReplayClient::new(vec![
        recorded.event("GET", &cluster_path, "describe-cluster.json"),
        recorded.event("GET", &list_path, "list-pod-identity-associations-one.json"),
        recorded.event("GET", &association_path, "pod-identity-association.json"),
    ]);
    let verify = irsa(&world, &log, &replay).verify(&spec).await.unwrap();
    assert!(verify.is_ok(), "{verify}");
    let kinds: Vec<_> = verify.checks.iter().map(|c| c.kind).collect();
    assert_eq!(
        kinds,
        [
            CheckKind::TrustPolicy,
            CheckKind::AttachedPolicies,
            CheckKind::PermissionPolicy,
            CheckKind::PodIdentityAssociation
        ]
    );

    // Teardown: the association, the role and the policy go.
    let replay = StaticReplayClient::new(vec![
        recorded.event("GET", &cluster_path, "describe-cluster.json"),
        recorded.event("GET", &list_path, "list-pod-identity-associations-one.json"),
        recorded.event("GET", &association_path, "pod-identity-association.json"),
        recorded.event("DELETE", &association_path, "pod-identity-association.json"),
    ]);
    let teardown = irsa(&world, &log, &replay).teardown(&spec).await.unwrap();
    let outcomes: Vec<_> = teardown.rows.iter().map(|r| (r.kind, r.outcome)).collect();
    assert_eq!(
        outcomes,
        [
            (ResourceKind::PodIdentityAssociation, Outcome::Removed),
            (ResourceKind::Attachment, Outcome::Removed),
            (ResourceKind::Role, Outcome::Removed),
            (ResourceKind::Policy, Outcome::Removed),
        ],
        "{teardown}"
    );
    assert_eq!(
        sent(&replay).last().unwrap(),
        &format!("DELETE {association_path}")
    );
    assert!(!world.role_exists(&spec.role_name).await);
    assert_eq!(
        world.standin_writes(),
        kube_writes,
        "Pod Identity mode writes nothing to Kubernetes"
    );
}

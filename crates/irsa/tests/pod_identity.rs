//! EKS Pod Identity mode. IAM and STS go to the moto server; moto has no EKS Pod Identity,
//! so the EKS calls are answered from responses recorded in `tests/recorded/` (written from
//! the EKS API Reference) by a client that routes each request by method and path (the crate
//! reads concurrently, so the order of its EKS reads is not fixed), and the requests the
//! crate sends are checked.

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use aws_smithy_http_client::test_util::infallible_client_fn;
use aws_smithy_types::body::SdkBody;
use common::{CallLog, World, clients, spec, unique};
use flink_eks_irsa::{Action, CheckKind, IdentityMode, Irsa, IrsaSpec, Outcome, kind};
use flink_eks_plan::Silent;

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

    /// An EKS that answers `METHOD path-and-query` from the recorded files in `routes`, and
    /// 404 to anything else.
    fn eks(&self, routes: &[(String, &str)]) -> Routed {
        let routes: BTreeMap<String, String> = routes
            .iter()
            .map(|(request, file)| (request.clone(), self.body(file)))
            .collect();
        Routed {
            routes: Arc::new(routes),
            sent: Arc::default(),
        }
    }
}

/// A request as received: `METHOD path-and-query`, and its body.
type Sent = (String, Vec<u8>);

/// The EKS stand-in of one run: what it answers, and what it was sent.
#[derive(Clone)]
struct Routed {
    routes: Arc<BTreeMap<String, String>>,
    /// `METHOD path-and-query` and the body of every request, in the order received.
    sent: Arc<Mutex<Vec<Sent>>>,
}

impl Routed {
    fn sent(&self) -> Vec<String> {
        self.sent
            .lock()
            .unwrap()
            .iter()
            .map(|(r, _)| r.clone())
            .collect()
    }

    fn body_of(&self, request: &str) -> serde_json::Value {
        let sent = self.sent.lock().unwrap();
        let (_, body) = sent
            .iter()
            .find(|(r, _)| r == request)
            .unwrap_or_else(|| panic!("{request} was not sent"));
        serde_json::from_slice(body).unwrap()
    }
}

/// An `Irsa` whose IAM and STS calls go to moto (counted in `log`) and whose EKS calls are
/// answered by `eks`.
fn irsa(world: &World, log: &CallLog, eks: &Routed) -> Irsa {
    let (iam, sts, _) = clients(&world.config, &world.account, Some(log));
    let routed = eks.clone();
    let http = infallible_client_fn(move |request: http::Request<SdkBody>| {
        let key = format!(
            "{} {}",
            request.method(),
            request.uri().path_and_query().unwrap()
        );
        let body = request.body().bytes().unwrap_or_default().to_vec();
        routed.sent.lock().unwrap().push((key.clone(), body));
        match routed.routes.get(&key) {
            Some(answer) => http::Response::builder()
                .status(200)
                .header("content-type", "application/json")
                .body(SdkBody::from(answer.clone()))
                .unwrap(),
            None => http::Response::builder()
                .status(404)
                .header("x-amzn-errortype", "NotFoundException")
                .body(SdkBody::from(format!(
                    r#"{{"message":"no recorded answer to {key}"}}"#
                )))
                .unwrap(),
        }
    });
    let eks = aws_sdk_eks::Client::from_conf(
        aws_sdk_eks::config::Builder::from(&world.config)
            .endpoint_url(EKS)
            .http_client(http)
            .interceptor(log.clone())
            .build(),
    );
    Irsa::from_clients(iam, sts, eks, world.kube.clone())
}

fn sorted(mut requests: Vec<String>) -> Vec<String> {
    requests.sort();
    requests
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

    let describe = (format!("GET {cluster_path}"), "describe-cluster.json");
    let list_one = (
        format!("GET {list_path}"),
        "list-pod-identity-associations-one.json",
    );
    let describe_association = (
        format!("GET {association_path}"),
        "pod-identity-association.json",
    );
    let create_path = format!("POST {cluster_path}/pod-identity-associations");

    // First run: role, policy and attachment in moto; the association through EKS.
    let log = CallLog::default();
    let eks = recorded.eks(&[
        describe.clone(),
        (
            format!("GET {list_path}"),
            "list-pod-identity-associations-empty.json",
        ),
        (create_path.clone(), "pod-identity-association.json"),
    ]);
    let first = irsa(&world, &log, &eks);
    let plan = first.plan(&spec).await.unwrap();
    let report = first.apply(&plan, &Silent).await.unwrap();
    let rows: Vec<_> = report
        .operations
        .iter()
        .map(|op| (op.kind, op.action))
        .collect();
    assert_eq!(
        rows,
        [
            (kind::POLICY, Action::Create),
            (kind::ROLE, Action::Create),
            (kind::POLICY_ATTACHMENT, Action::Create),
            (kind::POD_IDENTITY_ASSOCIATION, Action::Create),
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
    let sent = eks.sent();
    assert_eq!(
        sorted(sent[..2].to_vec()),
        sorted(vec![describe.0.clone(), format!("GET {list_path}")]),
        "plan reads the cluster and the association at once"
    );
    assert_eq!(
        &sent[2..],
        std::slice::from_ref(&create_path),
        "apply creates the association"
    );
    let body = eks.body_of(&create_path);
    assert_eq!(body["namespace"], "default");
    assert_eq!(body["serviceAccount"], "flink");
    assert_eq!(body["roleArn"], report.role_arn.as_str());
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
    // Only sessions Pod Identity tags with this namespace and service account may assume it.
    assert_eq!(
        trust["Statement"][0]["Condition"],
        serde_json::json!({"StringEquals": {
            "aws:RequestTag/kubernetes-namespace": "default",
            "aws:RequestTag/kubernetes-service-account": "flink"
        }}),
        "{trust}"
    );

    // Second run: reads only, and applying the no-change plan makes no call.
    let log = CallLog::default();
    let eks = recorded.eks(&[
        describe.clone(),
        list_one.clone(),
        describe_association.clone(),
    ]);
    let second = irsa(&world, &log, &eks);
    let plan = second.plan(&spec).await.unwrap();
    assert!(plan.is_noop(), "{plan}");
    assert_eq!(eks.sent().len(), 3);
    log.clear();
    let again = second.apply(&plan, &Silent).await.unwrap();
    assert!(!again.changed(), "{again}");
    assert_eq!(log.calls(), Vec::<String>::new());
    assert_eq!(eks.sent().len(), 3, "apply sent nothing to EKS");

    // Verify: trust, attachment, permission policy, association.
    let eks = recorded.eks(&[
        describe.clone(),
        list_one.clone(),
        describe_association.clone(),
    ]);
    let verify = irsa(&world, &log, &eks).verify(&spec).await.unwrap();
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
    let eks = recorded.eks(&[
        describe,
        list_one,
        describe_association,
        (
            format!("DELETE {association_path}"),
            "pod-identity-association.json",
        ),
    ]);
    let teardown = irsa(&world, &log, &eks).teardown(&spec).await.unwrap();
    let outcomes: Vec<_> = teardown
        .rows
        .iter()
        .map(|r| (r.operation.kind, r.outcome))
        .collect();
    assert_eq!(
        outcomes,
        [
            (kind::POD_IDENTITY_ASSOCIATION, Outcome::Removed),
            (kind::POLICY_ATTACHMENT, Outcome::Removed),
            (kind::ROLE, Outcome::Removed),
            (kind::POLICY, Outcome::Removed),
        ],
        "{teardown}"
    );
    assert_eq!(
        eks.sent().last().unwrap(),
        &format!("DELETE {association_path}")
    );
    assert!(!world.role_exists(&spec.role_name).await);
    assert_eq!(
        world.standin_writes(),
        kube_writes,
        "Pod Identity mode writes nothing to Kubernetes"
    );
}

//! A stateful job's policy in IAM (moto): exactly the statements of least privilege on the
//! state prefix, checked statement by statement and by what they grant; a rerun changes
//! nothing; switching between stateless and stateful makes a new policy version each way; a
//! policy widened by hand is rewritten, and the plan names what goes.

mod common;

use common::{World, apply, spec};
use flink_eks_irsa::documents::PolicyDocument;
use flink_eks_irsa::evaluate::{Decision, Request, evaluate};
use flink_eks_irsa::{Action, IrsaSpec, kind};
use flink_eks_manifest::S3Prefix;
use serde_json::json;

/// The policy's default version as IAM holds it, and its id.
async fn default_version(world: &World, policy_arn: &str) -> (String, PolicyDocument) {
    let policy = world
        .iam
        .get_policy()
        .policy_arn(policy_arn)
        .send()
        .await
        .unwrap();
    let id = policy
        .policy()
        .and_then(|p| p.default_version_id())
        .expect("a default version")
        .to_owned();
    let version = world
        .iam
        .get_policy_version()
        .policy_arn(policy_arn)
        .version_id(&id)
        .send()
        .await
        .unwrap();
    let text = version
        .policy_version()
        .and_then(|v| v.document())
        .expect("a document");
    (id, PolicyDocument::parse_iam(text).expect("policy JSON"))
}

fn stateful(spec: &IrsaSpec, prefix: &str) -> IrsaSpec {
    IrsaSpec {
        state: Some(S3Prefix::parse(prefix).unwrap()),
        ..spec.clone()
    }
}

const STATE: &str = "s3://flink-s3-test/flink-eks/default/job/state/";

#[tokio::test]
async fn the_state_policy_in_iam_holds_exactly_its_statements_and_a_rerun_changes_nothing() {
    let (world, cluster) = World::with_cluster().await;
    let spec = stateful(&spec(&cluster, "flink-state", "jobs/job.py"), STATE);
    let report = apply(&world.irsa, &spec).await.unwrap();

    let (_, document) = default_version(&world, &report.policy_arn).await;
    let statements: Vec<serde_json::Value> = document
        .statement
        .items()
        .iter()
        .map(|s| serde_json::to_value(s).unwrap())
        .collect();
    let expected = [
        json!({
            "Sid": "ReadFlinkJobScript",
            "Effect": "Allow",
            "Action": "s3:GetObject",
            "Resource": "arn:aws:s3:::flink-s3-test/jobs/job.py"
        }),
        json!({
            "Sid": "ListFlinkJobScriptPrefix",
            "Effect": "Allow",
            "Action": "s3:ListBucket",
            "Resource": "arn:aws:s3:::flink-s3-test",
            "Condition": {"StringLike": {"s3:prefix": "jobs/job.py"}}
        }),
        json!({
            "Sid": "FlinkStateObjects",
            "Effect": "Allow",
            "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"],
            "Resource": "arn:aws:s3:::flink-s3-test/flink-eks/default/job/state/*"
        }),
        json!({
            "Sid": "FlinkStateList",
            "Effect": "Allow",
            "Action": "s3:ListBucket",
            "Resource": "arn:aws:s3:::flink-s3-test",
            "Condition": {"StringLike": {"s3:prefix": "flink-eks/default/job/state/*"}}
        }),
    ];
    assert_eq!(statements.len(), expected.len(), "{statements:#?}");
    for (found, wanted) in statements.iter().zip(&expected) {
        assert_eq!(found, wanted, "statement {}", wanted["Sid"]);
    }
    assert_eq!(document.version.as_deref(), Some("2012-10-17"));

    // What the stored policy grants, judged by the evaluator.
    let object = |key: &str| format!("arn:aws:s3:::flink-s3-test/{key}");
    let state_key = object("flink-eks/default/job/state/checkpoints/0/chk-1/_metadata");
    for action in [
        "s3:GetObject",
        "s3:PutObject",
        "s3:DeleteObject",
        "s3:AbortMultipartUpload",
    ] {
        let request = Request::new(action, &state_key);
        assert_eq!(
            evaluate(&document, &request),
            Decision::Allow,
            "{request:?}"
        );
    }
    let list = Request::new("s3:ListBucket", "arn:aws:s3:::flink-s3-test")
        .with("s3:prefix", "flink-eks/default/job/state/savepoints/");
    assert_eq!(evaluate(&document, &list), Decision::Allow);
    for request in [
        Request::new("s3:PutObject", object("flink-eks/default/other/state/x")),
        Request::new("s3:PutObject", object("jobs/job.py")),
        Request::new(
            "s3:GetObject",
            "arn:aws:s3:::another-bucket/flink-eks/default/job/state/x",
        ),
        Request::new("s3:ListBucket", "arn:aws:s3:::flink-s3-test"),
        Request::new("s3:ListBucket", "arn:aws:s3:::flink-s3-test").with("s3:prefix", "flink-eks/"),
    ] {
        assert_eq!(
            evaluate(&document, &request),
            Decision::ImplicitDeny,
            "{request:?}"
        );
    }

    // A rerun: nothing to do, nothing sent.
    world.log.clear();
    let again = world.irsa.plan(&spec).await.unwrap();
    assert!(again.is_noop(), "{again}");
    world
        .irsa
        .apply(&again, &flink_eks_plan::Silent)
        .await
        .unwrap();
    assert_eq!(world.log.writes(), Vec::<String>::new());
    assert!(world.irsa.verify(&spec).await.unwrap().is_ok());
}

#[tokio::test]
async fn stateless_to_savepoint_and_back_are_new_versions_and_a_widened_policy_is_rewritten() {
    let (world, cluster) = World::with_cluster().await;
    let stateless = spec(&cluster, "flink-switch", "jobs/job.py");
    let first = apply(&world.irsa, &stateless).await.unwrap();
    let arn = first.policy_arn.clone();
    let policy_row = |plan: &flink_eks_irsa::Plan| {
        plan.operations()
            .into_iter()
            .find(|op| op.kind == kind::POLICY)
            .expect("a policy row")
    };

    // stateless -> savepoint: a new version that adds the state statements.
    let with_state = stateful(&stateless, STATE);
    let plan = world.irsa.plan(&with_state).await.unwrap();
    let row = policy_row(&plan);
    assert_eq!(row.action, Action::Update, "{plan}");
    assert!(row.detail.contains("adds: Allow s3:abortmultipartupload,s3:deleteobject,s3:getobject,s3:putobject on arn:aws:s3:::flink-s3-test/flink-eks/default/job/state/*"), "{row}");
    assert!(!row.detail.contains("removes:"), "{row}");
    world.log.clear();
    world
        .irsa
        .apply(&plan, &flink_eks_plan::Silent)
        .await
        .unwrap();
    assert!(
        world
            .log
            .writes()
            .iter()
            .any(|w| w.ends_with(":CreatePolicyVersion"))
    );
    let (id, document) = default_version(&world, &arn).await;
    assert_eq!(id, "v2");
    assert_eq!(document.statement.items().len(), 4);
    assert!(world.irsa.verify(&with_state).await.unwrap().is_ok());

    // A person widens the policy by hand; the next apply puts it back and says what goes.
    let mut widened = serde_json::to_value(&document).unwrap();
    widened["Statement"].as_array_mut().unwrap().push(
        json!({"Effect": "Allow", "Action": "s3:*", "Resource": "arn:aws:s3:::flink-s3-test/*"}),
    );
    world
        .iam
        .create_policy_version()
        .policy_arn(&arn)
        .policy_document(widened.to_string())
        .set_as_default(true)
        .send()
        .await
        .unwrap();
    let plan = world.irsa.plan(&with_state).await.unwrap();
    let row = policy_row(&plan);
    assert_eq!(row.action, Action::Update, "{plan}");
    assert!(
        row.detail
            .contains("removes: Allow s3:* on arn:aws:s3:::flink-s3-test/*"),
        "{row}"
    );
    world
        .irsa
        .apply(&plan, &flink_eks_plan::Silent)
        .await
        .unwrap();
    let (id, document) = default_version(&world, &arn).await;
    assert_eq!(id, "v4");
    assert!(
        document.same_meaning(
            with_state
                .permission_policy(flink_eks_irsa::documents::Partition::Aws)
                .document()
        )
    );

    // savepoint -> stateless: the state statements go, in a new version.
    let plan = world.irsa.plan(&stateless).await.unwrap();
    let row = policy_row(&plan);
    assert!(
        row.detail
            .contains("removes: Allow s3:abortmultipartupload"),
        "{row}"
    );
    world
        .irsa
        .apply(&plan, &flink_eks_plan::Silent)
        .await
        .unwrap();
    let (id, document) = default_version(&world, &arn).await;
    assert_eq!(id, "v5");
    assert_eq!(document.statement.items().len(), 2);
    let put = Request::new(
        "s3:PutObject",
        "arn:aws:s3:::flink-s3-test/flink-eks/default/job/state/x",
    );
    assert_eq!(evaluate(&document, &put), Decision::ImplicitDeny);
    assert!(world.irsa.plan(&stateless).await.unwrap().is_noop());
}

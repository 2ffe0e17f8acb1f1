//! One plan, executed as printed: apply makes exactly the writes the plan lists, a plan of
//! "no change" only makes no call at all, and a plan that the world moved away from fails
//! with `Stale` without writing to the resource that changed.

mod common;

use common::{World, spec};
use flink_eks_irsa::{Action, Error, Event, Op, Plan, ROLE_ARN_ANNOTATION, S3Grant, kind};
use flink_eks_manifest::S3Location;
use flink_eks_plan::{Operation, Silent, Stale};
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::api::{Api, DeleteParams};

/// The AWS call each planned write of a fresh account makes.
fn aws_call(kind: &str) -> Option<&'static str> {
    match kind {
        kind::OIDC_PROVIDER => Some("IAM:CreateOpenIDConnectProvider"),
        kind::POLICY => Some("IAM:CreatePolicy"),
        kind::ROLE => Some("IAM:CreateRole"),
        kind::POLICY_ATTACHMENT => Some("IAM:AttachRolePolicy"),
        _ => None,
    }
}

#[tokio::test]
async fn a_fresh_account_gets_exactly_the_planned_creates_and_a_second_plan_makes_no_call() {
    let (world, cluster) = World::with_cluster().await;
    let spec = spec(&cluster, "flink-fresh", "jobs/fresh.py");

    let plan = world.irsa.plan(&spec).await.unwrap();
    let operations = plan.operations();
    let kinds: Vec<_> = operations.iter().map(|op| (op.kind, op.action)).collect();
    assert_eq!(
        kinds,
        [
            (kind::OIDC_PROVIDER, Action::Create),
            (kind::POLICY, Action::Create),
            (kind::ROLE, Action::Create),
            (kind::POLICY_ATTACHMENT, Action::Create),
            (kind::SERVICE_ACCOUNT, Action::Create),
        ],
        "{plan}"
    );
    assert_eq!(world.log.writes(), Vec::<String>::new(), "planning wrote");

    world.log.clear();
    let kube_writes = world.standin_writes();
    let report = world.irsa.apply(&plan, &Silent).await.unwrap();
    assert_eq!(
        report.operations, operations,
        "the report is the plan as performed"
    );
    let expected: Vec<String> = operations
        .iter()
        .filter_map(|op| aws_call(op.kind))
        .map(str::to_owned)
        .collect();
    assert_eq!(
        world.log.writes(),
        expected,
        "one AWS write per planned AWS operation"
    );
    assert_eq!(
        world.standin_writes() - kube_writes,
        1,
        "one Kubernetes write: the service account's create"
    );
    let annotations = world.annotations("default", "flink-fresh").await.unwrap();
    assert_eq!(annotations.get(ROLE_ARN_ANNOTATION), Some(&report.role_arn));

    let second = world.irsa.plan(&spec).await.unwrap();
    assert!(second.is_noop(), "{second}");
    assert!(
        second
            .operations()
            .iter()
            .all(|op| op.action == Action::NoChange),
        "{second}"
    );
    assert_eq!(
        second.operations().len(),
        5,
        "no-change resources are listed too"
    );
    world.log.clear();
    let kube_writes = world.standin_writes();
    let events = std::sync::Mutex::new(Vec::new());
    let again = world
        .irsa
        .apply(&second, &|e: &Event| events.lock().unwrap().push(e.clone()))
        .await
        .unwrap();
    assert!(!again.changed(), "{again}");
    assert_eq!(
        world.log.calls(),
        Vec::<String>::new(),
        "no AWS call at all"
    );
    assert_eq!(world.standin_writes(), kube_writes, "no Kubernetes write");
    assert!(events.lock().unwrap().is_empty(), "nothing to report");
    assert!(again.iam_wait.is_zero());
}

#[tokio::test]
async fn a_policy_whose_default_version_moved_since_the_plan_is_stale_and_left_alone() {
    let (world, cluster) = World::with_cluster().await;
    let mut spec = spec(&cluster, "flink", "jobs/v1.py");
    let first = common::apply(&world.irsa, &spec).await.unwrap();

    spec.grant = S3Grant::Object(S3Location::new("flink-s3-test", "jobs/v2.py").unwrap());
    let plan = world.irsa.plan(&spec).await.unwrap();
    let policy = plan.operations()[1].clone();
    assert_eq!((policy.kind, policy.action), (kind::POLICY, Action::Update));
    assert_eq!(policy.observed.as_deref(), Some("default version v1"));

    // Someone else makes a new default version between plan and apply.
    let theirs = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::flink-s3-test/theirs.py"}]}"#;
    world
        .iam
        .create_policy_version()
        .policy_arn(&first.policy_arn)
        .policy_document(theirs)
        .set_as_default(true)
        .send()
        .await
        .unwrap();

    world.log.clear();
    let err = world.irsa.apply(&plan, &Silent).await.unwrap_err();
    let message = err.to_string();
    let Error::Stale(stale) = &err else {
        panic!("expected Stale, got {message}");
    };
    assert_eq!(stale.kind, kind::POLICY);
    assert_eq!(stale.planned, "default version v1");
    assert_eq!(stale.found, "default version v2");
    assert!(message.contains("plan again"), "{message}");
    assert_eq!(
        world.log.writes(),
        Vec::<String>::new(),
        "nothing written to the policy (nor to anything after it)"
    );
    let versions = world
        .iam
        .list_policy_versions()
        .policy_arn(&first.policy_arn)
        .send()
        .await
        .unwrap();
    assert_eq!(versions.versions().len(), 2, "v1 and theirs, no third");

    // Planning again sees their version and replaces it.
    let replanned = world.irsa.plan(&spec).await.unwrap();
    assert_eq!(
        replanned.operations()[1].observed.as_deref(),
        Some("default version v2")
    );
    world.irsa.apply(&replanned, &Silent).await.unwrap();
    assert!(world.irsa.verify(&spec).await.unwrap().is_ok());
}

#[tokio::test]
async fn a_role_created_by_someone_else_after_the_plan_is_stale_and_left_alone() {
    let (world, cluster) = World::with_cluster().await;
    let spec = spec(&cluster, "flink", "test/job.py");
    let plan = world.irsa.plan(&spec).await.unwrap();
    assert!(
        plan.ops
            .iter()
            .any(|op| matches!(op, Op::CreateRole { .. }))
    );

    let foreign_trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    world
        .iam
        .create_role()
        .role_name(&spec.role_name)
        .assume_role_policy_document(foreign_trust)
        .send()
        .await
        .unwrap();

    world.log.clear();
    let kube_writes = world.standin_writes();
    let err = world.irsa.apply(&plan, &Silent).await.unwrap_err();
    let Error::Stale(stale) = &err else {
        panic!("expected Stale, got {err}");
    };
    assert_eq!((stale.kind, stale.planned.as_str()), (kind::ROLE, "absent"));
    let writes = world.log.writes();
    assert_eq!(
        writes,
        [
            "IAM:CreateOpenIDConnectProvider",
            "IAM:CreatePolicy",
            "IAM:CreateRole"
        ],
        "the refused create is the last call: no tag, no trust update, no attachment"
    );
    let role = world.role(&spec.role_name).await;
    assert!(role.tags().is_empty(), "their role is not tagged");
    assert!(
        world.trust_policy(&spec.role_name).await.same_meaning(
            &flink_eks_irsa::documents::PolicyDocument::parse_iam(foreign_trust).unwrap()
        ),
        "their trust policy is kept"
    );
    assert_eq!(
        world.standin_writes(),
        kube_writes,
        "the annotation was not written"
    );
}

/// A fresh world with a cluster and the plan for service account `default/name`, whose last
/// operation, returned too, is the service account's, with `action`.
async fn plan_with_account(name: &str, action: Action) -> (World, Plan, Operation) {
    let (world, cluster) = World::with_cluster().await;
    let spec = spec(&cluster, name, "test/job.py");
    let plan = world.irsa.plan(&spec).await.unwrap();
    let account = plan.operations().pop().unwrap();
    assert_eq!(
        (account.kind, account.action),
        (kind::SERVICE_ACCOUNT, action)
    );
    (world, plan, account)
}

/// Applies `plan`, which must be refused as stale on the service account: the error and its
/// [`Stale`].
async fn apply_refused_as_stale_account(world: &World, plan: &Plan) -> (Error, Stale) {
    let err = world.irsa.apply(plan, &Silent).await.unwrap_err();
    let Error::Stale(stale) = &err else {
        panic!("expected Stale, got {err}");
    };
    assert_eq!(stale.kind, kind::SERVICE_ACCOUNT);
    let stale = stale.clone();
    (err, stale)
}

#[tokio::test]
async fn a_service_account_changed_since_the_plan_is_stale_and_keeps_its_annotation() {
    let (world, plan, account) = plan_with_account("flink", Action::Update).await;
    assert!(
        account
            .observed
            .as_deref()
            .unwrap()
            .starts_with("resourceVersion ")
    );

    // Someone annotates the account with their own role between plan and apply.
    let theirs = format!("arn:aws:iam::{}:role/theirs", world.account);
    world.annotate_role_as_someone_else("flink", &theirs).await;

    apply_refused_as_stale_account(&world, &plan).await;
    assert_eq!(
        world.annotations("default", "flink").await.unwrap()[ROLE_ARN_ANNOTATION],
        theirs,
        "their annotation is kept"
    );
}

#[tokio::test]
async fn a_service_account_deleted_since_the_plan_is_stale_and_not_recreated() {
    let (world, plan, _) = plan_with_account("flink", Action::Update).await;

    // Someone deletes the account between plan and apply.
    let accounts: Api<ServiceAccount> = Api::namespaced(world.kube.clone(), "default");
    accounts
        .delete("flink", &DeleteParams::default())
        .await
        .unwrap();

    let (err, stale) = apply_refused_as_stale_account(&world, &plan).await;
    assert_eq!(stale.found, "no account");
    assert!(err.to_string().contains("plan again"), "{err}");
    assert_eq!(
        world.annotations("default", "flink").await,
        None,
        "the deleted account was not re-created"
    );
}

#[tokio::test]
async fn a_service_account_created_since_the_plan_is_stale_and_left_as_created() {
    let (world, plan, _) = plan_with_account("flink-raced", Action::Create).await;

    // Someone creates the account between plan and apply.
    let accounts: Api<ServiceAccount> = Api::namespaced(world.kube.clone(), "default");
    let theirs: ServiceAccount = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "ServiceAccount",
        "metadata": {"name": "flink-raced", "annotations": {"owner": "someone-else"}},
    }))
    .unwrap();
    accounts
        .create(&kube::api::PostParams::default(), &theirs)
        .await
        .unwrap();

    apply_refused_as_stale_account(&world, &plan).await;
    let annotations = world.annotations("default", "flink-raced").await.unwrap();
    assert_eq!(
        annotations.get("owner").map(String::as_str),
        Some("someone-else")
    );
    assert!(
        !annotations.contains_key(ROLE_ARN_ANNOTATION),
        "{annotations:?}"
    );
}

/// The AWS reads a plan made, sorted.
fn reads(world: &World) -> Vec<String> {
    let mut calls = world.log.calls();
    calls.sort();
    calls
}

#[tokio::test]
async fn a_no_change_plan_reads_no_caller_identity_and_no_policy_document() {
    let (world, cluster) = World::with_cluster().await;
    let spec = spec(&cluster, "flink-reads", "jobs/reads.py");

    // First deploy: the account comes from the cluster's ARN, not from STS.
    let plan = world.irsa.plan(&spec).await.unwrap();
    assert!(
        !reads(&world).contains(&"STS:GetCallerIdentity".to_owned()),
        "{:?}",
        reads(&world)
    );
    assert!(plan.role_arn.contains(&world.account), "{}", plan.role_arn);
    let report = world.irsa.apply(&plan, &Silent).await.unwrap();
    let policy = world
        .iam
        .get_policy()
        .policy_arn(&report.policy_arn)
        .send()
        .await
        .unwrap();
    let tag = policy
        .policy()
        .unwrap()
        .tags()
        .iter()
        .find(|t| t.key() == flink_eks_irsa::DOCUMENT_TAG_KEY)
        .map(|t| t.value().to_owned());
    assert!(
        tag.as_deref().is_some_and(|v| v.starts_with("v1 sha256:")),
        "{tag:?}"
    );

    // No change: five reads in two waves, none of them the caller, the policy's document or
    // its versions.
    world.log.clear();
    let second = world.irsa.plan(&spec).await.unwrap();
    assert!(second.is_noop(), "{second}");
    assert_eq!(
        reads(&world),
        [
            "EKS:DescribeCluster",
            "IAM:GetOpenIDConnectProvider",
            "IAM:GetPolicy",
            "IAM:GetRole",
            "IAM:ListAttachedRolePolicies",
        ],
        "{second}"
    );
    // verify still reads the document as IAM has it.
    world.log.clear();
    assert!(world.irsa.verify(&spec).await.unwrap().is_ok());
    assert!(reads(&world).contains(&"IAM:GetPolicyVersion".to_owned()));
}

#[tokio::test]
async fn a_remembered_cluster_spares_describe_cluster_and_a_stale_one_never_misleads_the_plan() {
    let (world, cluster) = World::with_cluster().await;
    let spec = spec(&cluster, "flink-known", "jobs/known.py");
    let first = world.irsa.plan(&spec).await.unwrap();
    let identity = first.cluster.clone().expect("the plan gives EKS's answer");
    assert_eq!(
        (identity.name.as_str(), identity.region.as_str()),
        (cluster.as_str(), "us-east-1")
    );
    assert!(identity.arn.contains(&world.account), "{identity:?}");
    world.irsa.apply(&first, &Silent).await.unwrap();

    // Remembered and right: no EKS and no STS call, the same no-change plan.
    let remembering = world.irsa.clone().with_known_cluster(identity.clone());
    world.log.clear();
    let plan = remembering.plan(&spec).await.unwrap();
    assert!(plan.is_noop(), "{plan}");
    assert_eq!(plan.cluster, None, "nothing new to remember");
    assert_eq!(
        reads(&world),
        [
            "IAM:GetOpenIDConnectProvider",
            "IAM:GetPolicy",
            "IAM:GetRole",
            "IAM:ListAttachedRolePolicies",
        ],
        "{plan}"
    );

    // Remembered, and something changed (the policy detached by hand): EKS is asked before
    // the plan is given, and the plan is the one made without memory.
    world
        .iam
        .detach_role_policy()
        .role_name(&spec.role_name)
        .policy_arn(&first.policy_arn)
        .send()
        .await
        .unwrap();
    world.log.clear();
    let plan = remembering.plan(&spec).await.unwrap();
    assert!(reads(&world).contains(&"EKS:DescribeCluster".to_owned()));
    assert_eq!(plan.cluster.as_ref(), Some(&identity));
    assert_eq!(
        plan.operations(),
        world.irsa.plan(&spec).await.unwrap().operations()
    );
    world.irsa.apply(&plan, &Silent).await.unwrap();

    // Remembered but stale (the cluster made again under its name has another issuer): the
    // plan made from it would create a provider; EKS is asked, and the plan is EKS's: no change.
    let stale = flink_eks_irsa::ClusterIdentity {
        issuer: Some("https://oidc.eks.us-east-1.amazonaws.com/id/0LDC1USTER".into()),
        ..identity.clone()
    };
    world.log.clear();
    let plan = world
        .irsa
        .clone()
        .with_known_cluster(stale)
        .plan(&spec)
        .await
        .unwrap();
    assert!(plan.is_noop(), "{plan}");
    assert_eq!(
        plan.cluster.as_ref(),
        Some(&identity),
        "the identity to remember now"
    );
    assert_eq!(
        world
            .log
            .calls()
            .iter()
            .filter(|c| *c == "EKS:DescribeCluster")
            .count(),
        1
    );
    assert_eq!(world.log.writes(), Vec::<String>::new());

    // Verify never trusts memory.
    world.log.clear();
    assert!(remembering.verify(&spec).await.unwrap().is_ok());
    assert!(reads(&world).contains(&"EKS:DescribeCluster".to_owned()));
}

#[tokio::test]
async fn a_default_version_set_by_hand_is_read_not_trusted_by_the_tag() {
    let (world, cluster) = World::with_cluster().await;
    let mut spec = spec(&cluster, "flink", "jobs/v1.py");
    let first = common::apply(&world.irsa, &spec).await.unwrap();

    // A changed grant: a new version v2, tagged as the one holding the new document.
    spec.grant = S3Grant::Object(S3Location::new("flink-s3-test", "jobs/v2.py").unwrap());
    common::apply(&world.irsa, &spec).await.unwrap();
    world.log.clear();
    assert!(world.irsa.plan(&spec).await.unwrap().is_noop());
    assert!(!reads(&world).contains(&"IAM:GetPolicyVersion".to_owned()));

    // Someone rolls the policy back to v1 (an older document): the tag names v2, so the
    // document is read, and the plan puts the wanted one back.
    world
        .iam
        .set_default_policy_version()
        .policy_arn(&first.policy_arn)
        .version_id("v1")
        .send()
        .await
        .unwrap();
    world.log.clear();
    let plan = world.irsa.plan(&spec).await.unwrap();
    assert!(reads(&world).contains(&"IAM:GetPolicyVersion".to_owned()));
    let policy = plan.operations()[1].clone();
    assert_eq!((policy.kind, policy.action), (kind::POLICY, Action::Update));
    assert_eq!(policy.observed.as_deref(), Some("default version v1"));
    world.irsa.apply(&plan, &Silent).await.unwrap();
    assert!(world.irsa.verify(&spec).await.unwrap().is_ok());

    // Someone makes a version of the same meaning the default: read, the same, no change.
    let same = world
        .iam
        .get_policy_version()
        .policy_arn(&first.policy_arn)
        .version_id("v3")
        .send()
        .await
        .unwrap();
    let document = same.policy_version().and_then(|v| v.document()).unwrap();
    let document = percent_encoding::percent_decode_str(document)
        .decode_utf8()
        .unwrap()
        .into_owned();
    world
        .iam
        .create_policy_version()
        .policy_arn(&first.policy_arn)
        .policy_document(document)
        .set_as_default(true)
        .send()
        .await
        .unwrap();
    world.log.clear();
    let plan = world.irsa.plan(&spec).await.unwrap();
    assert!(reads(&world).contains(&"IAM:GetPolicyVersion".to_owned()));
    assert!(plan.is_noop(), "{plan}");
}

//! IRSA end to end against the moto server (IAM, STS, EKS) and the Kubernetes stand-in.

mod common;

use std::collections::BTreeMap;

use common::{World, apply, outcome, spec, unique};
use flink_eks_irsa::documents::PolicyDocument;
use flink_eks_irsa::{
    Action, ApplyReport, CheckKind, Error, Event, MANAGED_BY_KEY, Outcome, ROLE_ARN_ANNOTATION,
    S3Grant, kind,
};
use flink_eks_manifest::S3Location;
use k8s_openapi::api::core::v1::{Pod, ServiceAccount};
use kube::api::{Api, Patch, PatchParams};

fn actions(report: &ApplyReport) -> BTreeMap<&'static str, Action> {
    report
        .operations
        .iter()
        .map(|op| (op.kind, op.action))
        .collect()
}

#[tokio::test]
async fn first_run_creates_everything_and_second_run_writes_nothing() {
    let world = World::start().await;
    let cluster = unique("flink");
    let issuer = world.create_cluster(&cluster).await;
    // The Helm chart's `flink` account exists already; someone else annotated it too.
    let accounts: Api<ServiceAccount> = Api::namespaced(world.kube.clone(), "default");
    accounts
        .patch(
            "flink",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"metadata": {"annotations": {"team": "data"}}})),
        )
        .await
        .unwrap();
    let spec = spec(&cluster, "flink", "test/python_demo_s3.py");

    let plan = world.irsa.plan(&spec).await.unwrap();
    assert!(
        world.log.writes().is_empty(),
        "plan wrote: {:?}",
        world.log.writes()
    );
    for op in plan.operations() {
        let expected = if op.kind == kind::SERVICE_ACCOUNT {
            Action::Update
        } else {
            Action::Create
        };
        assert_eq!(op.action, expected, "{plan}");
    }

    let events = std::sync::Mutex::new(Vec::new());
    let report = world
        .irsa
        .apply(&plan, &|e: &Event| events.lock().unwrap().push(e.clone()))
        .await
        .unwrap();
    assert!(report.changed());
    assert_eq!(
        actions(&report),
        BTreeMap::from([
            (kind::OIDC_PROVIDER, Action::Create),
            (kind::POLICY, Action::Create),
            (kind::ROLE, Action::Create),
            (kind::POLICY_ATTACHMENT, Action::Create),
            (kind::SERVICE_ACCOUNT, Action::Update),
        ])
    );
    assert!(
        report.warnings.is_empty(),
        "no pod runs as the account yet, so none needs recreating: {report}"
    );
    let started = events
        .lock()
        .unwrap()
        .iter()
        .filter(|e| matches!(e, Event::Started(_)))
        .count();
    assert_eq!(started, 5, "one Started event per planned write");
    let writes = world.log.writes();
    for op in [
        "CreateOpenIDConnectProvider",
        "CreatePolicy",
        "CreateRole",
        "AttachRolePolicy",
    ] {
        assert!(
            writes.iter().any(|w| w.ends_with(&format!(":{op}"))),
            "{op} missing from {writes:?}"
        );
    }

    // What a user would look at with the AWS CLI and kubectl.
    let host_path = issuer.trim_start_matches("https://");
    let provider = world
        .iam
        .get_open_id_connect_provider()
        .open_id_connect_provider_arn(world.arn(&format!("oidc-provider/{host_path}")))
        .send()
        .await
        .unwrap();
    assert_eq!(provider.client_id_list(), ["sts.amazonaws.com"]);
    let role = world.role(&spec.role_name).await;
    let trust = PolicyDocument::parse_iam(role.assume_role_policy_document().unwrap()).unwrap();
    let trust_json = serde_json::to_value(&trust).unwrap();
    assert_eq!(
        trust_json["Statement"][0]["Condition"]["StringEquals"][format!("{host_path}:sub")],
        "system:serviceaccount:default:flink"
    );
    assert!(
        role.tags()
            .iter()
            .any(|t| t.key() == MANAGED_BY_KEY && t.value() == "flink-eks")
    );
    let attached = world
        .iam
        .list_attached_role_policies()
        .role_name(&spec.role_name)
        .send()
        .await
        .unwrap();
    assert_eq!(
        attached.attached_policies()[0].policy_arn(),
        Some(report.policy_arn.as_str())
    );
    let version = world
        .iam
        .get_policy_version()
        .policy_arn(&report.policy_arn)
        .version_id("v1")
        .send()
        .await
        .unwrap();
    let document = version.policy_version().unwrap().document().unwrap();
    assert!(
        document.contains("arn:aws:s3:::flink-s3-test/test/python_demo_s3.py"),
        "{document}"
    );
    let annotations = world.annotations("default", "flink").await.unwrap();
    assert_eq!(annotations.get(ROLE_ARN_ANNOTATION), Some(&report.role_arn));
    assert_eq!(
        annotations.get("team").map(String::as_str),
        Some("data"),
        "other annotations are kept"
    );
    let labels = accounts
        .get("flink")
        .await
        .unwrap()
        .metadata
        .labels
        .unwrap_or_default();
    assert_eq!(
        labels
            .get("app.kubernetes.io/managed-by")
            .map(String::as_str),
        Some("Helm")
    );

    let verify = world.irsa.verify(&spec).await.unwrap();
    assert!(verify.is_ok(), "{verify}");
    assert_eq!(verify.checks.len(), 5);

    // Second run: reads only, in AWS and in Kubernetes.
    world.log.clear();
    let kube_writes = world.standin_writes();
    let again = apply(&world.irsa, &spec).await.unwrap();
    assert!(!again.changed(), "{again}");
    assert!(again.to_string().starts_with("no change"), "{again}");
    assert_eq!(world.log.writes(), Vec::<String>::new());
    assert!(!world.log.calls().is_empty(), "the second run did read");
    assert_eq!(
        world.standin_writes(),
        kube_writes,
        "no Kubernetes write on the second run"
    );
    assert!(world.irsa.plan(&spec).await.unwrap().is_noop());
}

#[tokio::test]
async fn a_missing_service_account_is_created_with_the_annotation() {
    let (world, cluster) = World::with_cluster().await;
    let spec = spec(&cluster, "flink-jobs", "jobs/a.py");
    assert!(world.annotations("default", "flink-jobs").await.is_none());
    let report = apply(&world.irsa, &spec).await.unwrap();
    assert_eq!(actions(&report)[kind::SERVICE_ACCOUNT], Action::Create);
    let annotations = world.annotations("default", "flink-jobs").await.unwrap();
    assert_eq!(annotations.get(ROLE_ARN_ANNOTATION), Some(&report.role_arn));
    assert!(world.irsa.verify(&spec).await.unwrap().is_ok());
}

#[tokio::test]
async fn pods_started_before_the_annotation_are_named_for_recreation() {
    let (world, cluster) = World::with_cluster().await;
    let spec = spec(&cluster, "flink-early", "jobs/a.py");
    let pods: Api<Pod> = Api::namespaced(world.kube.clone(), "default");
    let pod: Pod = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "early-jobmanager"},
        "spec": {"serviceAccountName": "flink-early", "containers": [{"name": "c", "image": "flink"}]},
    }))
    .unwrap();
    pods.create(&Default::default(), &pod).await.unwrap();

    let report = apply(&world.irsa, &spec).await.unwrap();
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.contains("recreated") && w.contains("early-jobmanager")),
        "{report}"
    );
}

#[tokio::test]
async fn a_changed_grant_makes_a_new_policy_version_and_a_sixth_change_prunes_the_oldest() {
    let (world, cluster) = World::with_cluster().await;
    let mut spec = spec(&cluster, "flink", "jobs/v1.py");
    let first = apply(&world.irsa, &spec).await.unwrap();
    let policy_arn = first.policy_arn.clone();

    for n in 2..=7 {
        spec.grant =
            S3Grant::Object(S3Location::new("flink-s3-test", format!("jobs/v{n}.py")).unwrap());
        world.log.clear();
        let report = apply(&world.irsa, &spec).await.unwrap();
        let rows = actions(&report);
        assert_eq!(rows[kind::POLICY], Action::Update, "change {n}: {report}");
        assert_eq!(rows[kind::ROLE], Action::NoChange);
        let writes = world.log.writes();
        assert!(
            writes.iter().any(|w| w.ends_with(":CreatePolicyVersion")),
            "{writes:?}"
        );
        // IAM keeps 5 versions: from the sixth version on, the oldest goes first.
        assert_eq!(
            writes.iter().any(|w| w.ends_with(":DeletePolicyVersion")),
            n >= 6,
            "change {n}: {writes:?}"
        );
        let versions = world
            .iam
            .list_policy_versions()
            .policy_arn(&policy_arn)
            .send()
            .await
            .unwrap();
        assert_eq!(versions.versions().len(), n.min(5));
        let verify = world.irsa.verify(&spec).await.unwrap();
        assert!(verify.is_ok(), "change {n}: {verify}");
    }
    let versions = world
        .iam
        .list_policy_versions()
        .policy_arn(&policy_arn)
        .send()
        .await
        .unwrap();
    let mut ids: Vec<_> = versions
        .versions()
        .iter()
        .filter_map(|v| v.version_id())
        .collect();
    ids.sort();
    assert_eq!(ids, ["v3", "v4", "v5", "v6", "v7"]);

    // A prefix grant is a change of meaning too.
    spec.grant = S3Grant::prefix("flink-s3-test", "jobs/").unwrap();
    let report = apply(&world.irsa, &spec).await.unwrap();
    assert_eq!(actions(&report)[kind::POLICY], Action::Update);
    assert!(world.irsa.verify(&spec).await.unwrap().is_ok());
}

#[tokio::test]
async fn a_role_created_by_someone_else_is_left_untouched_without_adopt() {
    let (world, cluster) = World::with_cluster().await;
    let mut spec = spec(&cluster, "flink", "test/job.py");
    let foreign_trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    world
        .iam
        .create_role()
        .role_name(&spec.role_name)
        .assume_role_policy_document(foreign_trust)
        .tags(
            aws_sdk_iam::types::Tag::builder()
                .key("team")
                .value("platform")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let kube_writes = world.standin_writes();

    let err = apply(&world.irsa, &spec).await.unwrap_err();
    assert!(matches!(err, Error::RoleNotOurs { .. }), "{err}");
    let message = err.to_string();
    assert!(
        message.contains(&spec.role_name) && message.contains("adopt"),
        "{message}"
    );
    assert_eq!(
        world.log.writes(),
        Vec::<String>::new(),
        "nothing was written"
    );
    assert_eq!(world.standin_writes(), kube_writes);
    let trust = world.trust_policy(&spec.role_name).await;
    assert!(
        trust.same_meaning(&PolicyDocument::parse_iam(foreign_trust).unwrap()),
        "trust untouched"
    );
    assert!(
        !world
            .policy_exists(&world.arn(&format!("policy/{}", spec.policy_name)))
            .await
    );
    assert!(!world.irsa.verify(&spec).await.unwrap().is_ok());

    // With the adopt flag the role is tagged as ours and its trust corrected.
    spec.adopt = true;
    let report = apply(&world.irsa, &spec).await.unwrap();
    let role_row = report
        .operations
        .iter()
        .find(|op| op.kind == kind::ROLE)
        .unwrap();
    assert_eq!(role_row.action, Action::Update);
    assert!(role_row.detail.contains("adopt"), "{role_row}");
    let role = world
        .iam
        .get_role()
        .role_name(&spec.role_name)
        .send()
        .await
        .unwrap();
    assert!(
        role.role()
            .unwrap()
            .tags()
            .iter()
            .any(|t| t.key() == MANAGED_BY_KEY)
    );
    assert!(world.irsa.verify(&spec).await.unwrap().is_ok());
}

#[tokio::test]
async fn a_drifted_trust_policy_is_reported_and_corrected() {
    let (world, cluster) = World::with_cluster().await;
    let spec = spec(&cluster, "flink", "test/job.py");
    apply(&world.irsa, &spec).await.unwrap();

    // Someone widens the trust to every service account of the namespace.
    let role = world.role(&spec.role_name).await;
    let trust = role.assume_role_policy_document().unwrap();
    let widened = percent_decode(trust).replace(
        "system:serviceaccount:default:flink",
        "system:serviceaccount:default:*",
    );
    world
        .iam
        .update_assume_role_policy()
        .role_name(&spec.role_name)
        .policy_document(widened)
        .send()
        .await
        .unwrap();

    let verify = world.irsa.verify(&spec).await.unwrap();
    assert!(!verify.is_ok());
    let mismatches: Vec<_> = verify.mismatches().map(|c| c.kind).collect();
    assert_eq!(mismatches, [CheckKind::TrustPolicy]);
    assert!(
        verify.to_string().contains("MISMATCH trust policy"),
        "{verify}"
    );

    world.log.clear();
    let report = apply(&world.irsa, &spec).await.unwrap();
    let rows = actions(&report);
    assert_eq!(rows[kind::ROLE], Action::Update);
    assert_eq!(rows[kind::POLICY], Action::NoChange);
    assert!(
        world
            .log
            .writes()
            .iter()
            .any(|w| w.ends_with(":UpdateAssumeRolePolicy"))
    );
    assert!(world.irsa.verify(&spec).await.unwrap().is_ok());
}

#[tokio::test]
async fn teardown_removes_what_it_created_and_a_second_teardown_is_a_no_op() {
    let (world, cluster) = World::with_cluster().await;
    let mut spec = spec(&cluster, "flink", "jobs/v1.py");
    apply(&world.irsa, &spec).await.unwrap();
    spec.grant = S3Grant::Object(S3Location::new("flink-s3-test", "jobs/v2.py").unwrap());
    let report = apply(&world.irsa, &spec).await.unwrap(); // a second policy version
    let policy_arn = report.policy_arn.clone();

    let teardown = world.irsa.teardown(&spec).await.unwrap();
    assert!(teardown.changed(), "{teardown}");
    assert_eq!(outcome(&teardown, kind::ROLE), Outcome::Removed);
    assert_eq!(outcome(&teardown, kind::POLICY), Outcome::Removed);
    assert_eq!(outcome(&teardown, kind::SERVICE_ACCOUNT), Outcome::Removed);
    assert_eq!(
        outcome(&teardown, kind::OIDC_PROVIDER),
        Outcome::LeftAlone,
        "{teardown}"
    );
    assert!(!world.role_exists(&spec.role_name).await);
    assert!(!world.policy_exists(&policy_arn).await);
    let annotations = world
        .annotations("default", "flink")
        .await
        .expect("the service account is kept");
    assert!(
        !annotations.contains_key(ROLE_ARN_ANNOTATION),
        "{annotations:?}"
    );

    world.log.clear();
    let kube_writes = world.standin_writes();
    let again = world.irsa.teardown(&spec).await.unwrap();
    assert!(!again.changed(), "{again}");
    assert_eq!(world.log.writes(), Vec::<String>::new());
    assert_eq!(world.standin_writes(), kube_writes);
}

#[tokio::test]
async fn teardown_leaves_alone_what_flink_eks_did_not_create() {
    let (world, cluster) = World::with_cluster().await;
    let spec = spec(&cluster, "flink", "test/job.py");
    let report = apply(&world.irsa, &spec).await.unwrap();

    // Someone points the annotation at their own role, and a foreign role and policy
    // carry the names of a second spec.
    let theirs = world.arn("role/someone-elses-role");
    let theirs = theirs.as_str();
    world.annotate_role_as_someone_else("flink", theirs).await;
    let teardown = world.irsa.teardown(&spec).await.unwrap();
    let sa_row = teardown
        .rows
        .iter()
        .find(|r| r.operation.kind == kind::SERVICE_ACCOUNT)
        .unwrap();
    assert_eq!(sa_row.outcome, Outcome::LeftAlone, "{teardown}");
    assert!(sa_row.operation.detail.contains(theirs), "{sa_row}");
    assert_eq!(
        world.annotations("default", "flink").await.unwrap()[ROLE_ARN_ANNOTATION],
        theirs
    );
    assert!(
        !world.role_exists(&spec.role_name).await,
        "our role still goes"
    );
    assert!(!world.policy_exists(&report.policy_arn).await);

    let foreign = common::spec(&cluster, "flink", "test/job.py");
    world
        .iam
        .create_role()
        .role_name(&foreign.role_name)
        .assume_role_policy_document(r#"{"Version":"2012-10-17","Statement":[]}"#)
        .send()
        .await
        .unwrap();
    let created = world
        .iam
        .create_policy()
        .policy_name(&foreign.policy_name)
        .policy_document(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:ListAllMyBuckets","Resource":"*"}]}"#)
        .send()
        .await
        .unwrap();
    let foreign_policy = created.policy().unwrap().arn().unwrap().to_owned();
    world.log.clear();
    let teardown = world.irsa.teardown(&foreign).await.unwrap();
    assert!(!teardown.changed(), "{teardown}");
    assert_eq!(outcome(&teardown, kind::ROLE), Outcome::LeftAlone);
    assert_eq!(outcome(&teardown, kind::POLICY), Outcome::LeftAlone);
    assert_eq!(world.log.writes(), Vec::<String>::new());
    assert!(world.role_exists(&foreign.role_name).await);
    assert!(world.policy_exists(&foreign_policy).await);
}

fn percent_decode(text: &str) -> String {
    percent_encoding::percent_decode_str(text)
        .decode_utf8_lossy()
        .into_owned()
}

//! The crate against the Kubernetes stand-in, started in-process with the operator's chart
//! installed (its `flink` account and Role in `default`) and RBAC enforced: plans, applies
//! counted at the stand-in, guards, adoption, teardown, and a caller that may not create
//! SubjectAccessReviews.

use flink_eks_plan::{Action, Silent};
use flink_eks_rbac::{Access, Error, Rbac, RbacSpec, kind};
use flink_eks_tests::someone_elses_role;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use kube_standin::{Config, StandIn};

async fn start() -> (StandIn, kube::Client) {
    let standin = StandIn::start(Config::default())
        .await
        .expect("start the Kubernetes stand-in");
    let client = standin.client().await.expect("client");
    (standin, client)
}

fn namespace_name(prefix: &str) -> String {
    flink_eks_tests::unique(prefix)
}

async fn create_namespace(client: &kube::Client, name: &str) {
    let api: Api<Namespace> = Api::all(client.clone());
    let namespace = Namespace {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    };
    api.create(&PostParams::default(), &namespace)
        .await
        .expect("create namespace");
}

fn actions(plan: &flink_eks_rbac::Plan) -> Vec<(&'static str, Action)> {
    plan.operations()
        .iter()
        .map(|op| (op.kind, op.action))
        .collect()
}

#[tokio::test]
async fn a_fresh_namespace_gets_namespace_role_and_binding_and_a_second_plan_writes_nothing() {
    let (standin, client) = start().await;
    let rbac = Rbac::new(client.clone());
    let spec = RbacSpec::new(namespace_name("streaming"), "flink-runner");

    let plan = rbac.plan(&spec).await.expect("plan");
    assert_eq!(
        actions(&plan),
        [
            (kind::NAMESPACE, Action::Create),
            (kind::ROLE, Action::Create),
            (kind::ROLE_BINDING, Action::Create)
        ]
    );
    assert!(plan.creates_namespace());
    let before = standin.stats().writes;
    let done = rbac.apply(&plan, &Silent).await.expect("apply");
    assert_eq!(done.len(), 3);
    assert_eq!(
        standin.stats().writes - before,
        3,
        "one write per planned create"
    );

    let roles: Api<Role> = Api::namespaced(client.clone(), &spec.namespace);
    let role = roles
        .get(&spec.object_name())
        .await
        .expect("the Role exists");
    assert_eq!(
        role.rules,
        spec.role().rules,
        "exactly the chart's job rules"
    );
    assert_eq!(
        rbac.review(&spec).await.expect("review"),
        Access::Allowed,
        "the API server now allows the account every verb"
    );

    let again = rbac.plan(&spec).await.expect("second plan");
    assert!(!again.writes(), "{again}");
    let before = standin.stats().writes;
    rbac.apply(&again, &Silent).await.expect("no-op apply");
    assert_eq!(
        standin.stats().writes,
        before,
        "a no-change plan sends no write"
    );
}

#[tokio::test]
async fn the_charts_flink_account_needs_no_role_and_the_plan_says_why() {
    let (standin, client) = start().await;
    let rbac = Rbac::new(client);
    let spec = RbacSpec::new("default", "flink");
    let plan = rbac.plan(&spec).await.expect("plan");
    assert!(!plan.writes(), "{plan}");
    let role = &plan.operations()[1];
    assert!(
        role.detail
            .contains("not needed: SubjectAccessReviews allow system:serviceaccount:default:flink"),
        "{role}"
    );
    let before = standin.stats().writes;
    rbac.apply(&plan, &Silent).await.expect("apply");
    assert_eq!(standin.stats().writes, before);
}

#[tokio::test]
async fn a_same_named_role_not_ours_blocks_with_nothing_written_until_adopted() {
    let (standin, client) = start().await;
    let rbac = Rbac::new(client.clone());
    let spec = RbacSpec::new(namespace_name("team"), "flink-runner");
    create_namespace(&client, &spec.namespace).await;
    let roles: Api<Role> = Api::namespaced(client.clone(), &spec.namespace);
    roles
        .create(
            &PostParams::default(),
            &someone_elses_role(&spec.namespace, &spec.object_name()),
        )
        .await
        .expect("someone's Role");

    let plan = rbac.plan(&spec).await.expect("plan");
    assert_eq!(plan.blockers.len(), 1, "{plan}");
    let text = plan.blockers[0].to_string();
    assert!(
        text.contains(&format!("role {} exists", spec.qualified_name()))
            && text.contains("--adopt"),
        "{text}"
    );
    let before = standin.stats().writes;
    let err = rbac.apply(&plan, &Silent).await.expect_err("blocked");
    assert!(matches!(err, Error::Blocked(_)), "{err}");
    assert_eq!(standin.stats().writes, before, "nothing written");

    let adopting = RbacSpec {
        adopt: true,
        ..spec.clone()
    };
    let plan = rbac.plan(&adopting).await.expect("plan to adopt");
    assert_eq!(plan.operations()[1].action, Action::Update, "{plan}");
    rbac.apply(&plan, &Silent).await.expect("adopt");
    let role = roles.get(&spec.object_name()).await.unwrap();
    assert!(flink_eks_rbac::is_ours(&role.metadata, &spec));
    assert_eq!(role.rules, spec.role().rules);
}

#[tokio::test]
async fn a_role_changed_between_plan_and_apply_is_stale_and_kept() {
    let (_standin, client) = start().await;
    let rbac = Rbac::new(client.clone());
    let spec = RbacSpec::new(namespace_name("drift"), "flink-runner");
    rbac.apply(&rbac.plan(&spec).await.unwrap(), &Silent)
        .await
        .expect("first apply");
    let roles: Api<Role> = Api::namespaced(client.clone(), &spec.namespace);
    let narrowed = serde_json::json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
        "metadata": {"name": spec.object_name()},
        "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}],
    });
    let by_hand = PatchParams::apply("by-hand").force();
    roles
        .patch(&spec.object_name(), &by_hand, &Patch::Apply(&narrowed))
        .await
        .expect("someone narrows the rules");
    let plan = rbac.plan(&spec).await.unwrap();
    assert_eq!(plan.operations()[1].action, Action::Update, "{plan}");

    let changed = serde_json::json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
        "metadata": {"name": spec.object_name(), "annotations": {"note": "changed"}},
    });
    roles
        .patch(
            &spec.object_name(),
            &PatchParams::apply("someone-else"),
            &Patch::Apply(&changed),
        )
        .await
        .expect("another change after the plan");
    let err = rbac.apply(&plan, &Silent).await.expect_err("stale");
    assert!(matches!(err, Error::Stale(_)), "{err}");
    assert!(err.to_string().contains("plan again"), "{err}");
    let role = roles.get(&spec.object_name()).await.unwrap();
    assert_eq!(
        role.rules.unwrap()[0].verbs,
        ["get"],
        "nothing was written to it"
    );
}

#[tokio::test]
async fn teardown_removes_only_the_role_and_binding_it_made() {
    let (_standin, client) = start().await;
    let rbac = Rbac::new(client.clone());
    let spec = RbacSpec::new(namespace_name("gone"), "flink-runner");
    rbac.apply(&rbac.plan(&spec).await.unwrap(), &Silent)
        .await
        .unwrap();
    let roles: Api<Role> = Api::namespaced(client.clone(), &spec.namespace);
    let bindings: Api<RoleBinding> = Api::namespaced(client.clone(), &spec.namespace);
    roles
        .create(
            &PostParams::default(),
            &someone_elses_role(&spec.namespace, "someone-else"),
        )
        .await
        .unwrap();

    let plan = rbac.teardown_plan(&spec).await.expect("teardown plan");
    let deletes: Vec<_> = plan
        .operations()
        .into_iter()
        .filter(|op| op.action == Action::Delete)
        .map(|op| op.kind)
        .collect();
    assert_eq!(deletes, [kind::ROLE_BINDING, kind::ROLE]);
    rbac.apply_teardown(&plan, &Silent).await.expect("teardown");
    assert!(roles.get_opt(&spec.object_name()).await.unwrap().is_none());
    assert!(
        bindings
            .get_opt(&spec.object_name())
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        roles.get_opt("someone-else").await.unwrap().is_some(),
        "a Role of someone else survives"
    );
    let namespaces: Api<Namespace> = Api::all(client.clone());
    assert!(
        namespaces.get_opt(&spec.namespace).await.unwrap().is_some(),
        "the namespace stays"
    );
    let again = rbac.teardown_plan(&spec).await.unwrap();
    assert!(
        again.operations().iter().all(|op| !op.action.writes()),
        "{again}"
    );
}

/// A user bound in `namespace` to a Role of `rules` (made by the admin), and a client acting
/// as that user.
async fn user_with_rules(
    standin: &kube_standin::StandIn,
    admin: &kube::Client,
    namespace: &str,
    user: &str,
    rules: Vec<PolicyRule>,
) -> kube::Client {
    let roles: Api<Role> = Api::namespaced(admin.clone(), namespace);
    let mut role = someone_elses_role(namespace, user);
    role.rules = Some(rules);
    roles.create(&PostParams::default(), &role).await.unwrap();
    let bindings: Api<RoleBinding> = Api::namespaced(admin.clone(), namespace);
    let binding = RoleBinding {
        metadata: ObjectMeta {
            name: Some(user.into()),
            namespace: Some(namespace.into()),
            ..ObjectMeta::default()
        },
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".into(),
            kind: "Role".into(),
            name: user.into(),
        },
        subjects: Some(vec![Subject {
            kind: "User".into(),
            name: user.into(),
            api_group: Some("rbac.authorization.k8s.io".into()),
            namespace: None,
        }]),
    };
    bindings
        .create(&PostParams::default(), &binding)
        .await
        .unwrap();
    let mut config = kube::Config::new(standin.url().parse().unwrap());
    config.auth_info.impersonate = Some(user.into());
    config.auth_info.impersonate_groups = Some(vec!["system:authenticated".into()]);
    kube::Client::try_from(config).unwrap()
}

fn rule(groups: &[&str], resources: &[&str], verbs: &[&str]) -> PolicyRule {
    let strings = |s: &[&str]| s.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    PolicyRule {
        api_groups: Some(strings(groups)),
        resources: Some(strings(resources)),
        verbs: strings(verbs),
        ..PolicyRule::default()
    }
}

#[tokio::test]
async fn a_namespace_admin_gets_the_reviews_answered_and_a_caller_who_may_not_review_a_warning() {
    let (standin, admin) = start().await;
    let namespace = namespace_name("admins");
    create_namespace(&admin, &namespace).await;
    // Everything in the namespace, nothing cluster-wide: the reviews are namespaced
    // (LocalSubjectAccessReviews), so they are answered.
    let alice = user_with_rules(
        &standin,
        &admin,
        &namespace,
        "alice",
        vec![rule(&["*"], &["*"], &["*"])],
    )
    .await;
    let rbac = Rbac::new(alice);
    let spec = RbacSpec::new(namespace.clone(), "flink-runner");
    let plan = rbac.plan(&spec).await.expect("plan as alice");
    assert!(
        plan.blockers.is_empty() && plan.warnings.is_empty(),
        "{plan} {:?}",
        plan.warnings
    );
    assert_eq!(plan.operations()[1].action, Action::Create, "{plan}");
    rbac.apply(&plan, &Silent)
        .await
        .expect("alice creates the Role");

    // Roles and bindings, but no reviews: a warning, and the Role planned to be sure.
    let bob = user_with_rules(
        &standin,
        &admin,
        &namespace,
        "bob",
        vec![rule(
            &["rbac.authorization.k8s.io"],
            &["roles", "rolebindings"],
            &["*"],
        )],
    )
    .await;
    let spec = RbacSpec::new(namespace.clone(), "flink-other");
    let plan = Rbac::new(bob).plan(&spec).await.expect("plan as bob");
    assert_eq!(plan.operations()[1].action, Action::Create, "{plan}");
    assert!(
        plan.warnings
            .iter()
            .any(|w| w.contains("may not create LocalSubjectAccessReviews")),
        "{:?}",
        plan.warnings
    );
}

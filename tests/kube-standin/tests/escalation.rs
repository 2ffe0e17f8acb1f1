//! A namespace-scoped user (bound the built-in `admin` or `edit` ClusterRole in its namespace,
//! as a platform team binds one) is refused what the real API server refuses it: Roles and
//! bindings granting more than it holds, roles and bindings at all under `edit`, and
//! FlinkDeployments under either. Through kube-rs with a kubeconfig whose user has `as:`.

mod common;

use common::*;
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, ServiceAccount};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube_standin::StandIn;
use serde_json::{Value, json};

const NS: &str = "streaming";

fn from_json<T: serde::de::DeserializeOwned>(value: Value) -> T {
    serde_json::from_value(value).unwrap_or_else(|e| panic!("bad test object: {e}"))
}

fn role(name: &str, rules: Value) -> Role {
    from_json(
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
        "metadata": {"name": name, "namespace": NS}, "rules": rules}),
    )
}

fn binding(name: &str, kind: &str, role: &str, user: &str) -> RoleBinding {
    from_json(
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": name, "namespace": NS},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": role},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}]}),
    )
}

/// The chart's job rules: what the job's service account needs.
fn job_rules() -> Value {
    let verbs = json!([
        "get", "list", "watch", "create", "update", "patch", "delete"
    ]);
    json!([
        {"apiGroups": [""], "resources": ["pods", "configmaps"], "verbs": verbs},
        {"apiGroups": ["apps"], "resources": ["deployments", "deployments/finalizers"], "verbs": verbs},
    ])
}

/// A client acting as `user` through a kubeconfig whose user has `as:` and `as-groups:`.
async fn client_as(standin: &StandIn, user: &str, groups: &[&str]) -> kube::Client {
    let yaml = standin.kubeconfig_yaml_as(user, groups);
    let kubeconfig = kube::config::Kubeconfig::from_yaml(&yaml)
        .unwrap_or_else(|e| panic!("the kubeconfig does not parse: {e}"));
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .unwrap_or_else(|e| panic!("the kubeconfig is not usable: {e}"));
    kube::Client::try_from(config).unwrap_or_else(|e| panic!("no client: {e}"))
}

/// A cluster with namespace `streaming` where `jane` (group `platform`) is bound `admin`
/// and `eddie` `edit`.
async fn namespace_users() -> (StandIn, kube::Client) {
    let standin = start().await;
    let admin = client(&standin).await;
    let namespaces: Api<Namespace> = Api::all(admin.clone());
    let ns: Namespace = from_json(json!({"metadata": {"name": NS}}));
    namespaces
        .create(&PostParams::default(), &ns)
        .await
        .unwrap_or_else(|e| panic!("namespace: {e}"));
    let bindings: Api<RoleBinding> = Api::namespaced(admin.clone(), NS);
    for (name, role, user) in [
        ("jane-admin", "admin", "jane"),
        ("eddie-edit", "edit", "eddie"),
    ] {
        bindings
            .create(
                &PostParams::default(),
                &binding(name, "ClusterRole", role, user),
            )
            .await
            .unwrap_or_else(|e| panic!("the platform team's binding {name}: {e}"));
    }
    (standin, admin)
}

async fn may(client: &kube::Client, verb: &str, group: &str, resource: &str) -> bool {
    let reviews: Api<SelfSubjectAccessReview> = Api::all(client.clone());
    let review = SelfSubjectAccessReview {
        spec: SelfSubjectAccessReviewSpec {
            resource_attributes: Some(ResourceAttributes {
                namespace: Some(NS.into()),
                verb: Some(verb.into()),
                group: Some(group.into()),
                resource: Some(resource.into()),
                ..ResourceAttributes::default()
            }),
            ..SelfSubjectAccessReviewSpec::default()
        },
        ..SelfSubjectAccessReview::default()
    };
    let answered = reviews
        .create(&PostParams::default(), &review)
        .await
        .unwrap_or_else(|e| panic!("the self review was refused: {e}"));
    answered.status.is_some_and(|s| s.allowed)
}

fn flink_in_streaming(client: &kube::Client) -> Api<DynamicObject> {
    Api::namespaced_with(client.clone(), NS, &flink_resource())
}

fn flink_deployment_in_streaming() -> DynamicObject {
    let mut object = flink_deployment("word-count");
    object["metadata"]["namespace"] = json!(NS);
    from_json(object)
}

#[tokio::test]
async fn a_namespace_admin_grants_only_what_it_holds_unless_it_may_escalate_or_bind() {
    let (standin, admin) = namespace_users().await;
    let jane = client_as(&standin, "jane", &["platform"]).await;

    // Self reviews answer as jane: admin's rules in streaming, nothing elsewhere.
    for (verb, group, resource) in [
        ("create", "", "serviceaccounts"),
        ("create", "", "pods"),
        ("create", "", "configmaps"),
        ("create", "apps", "deployments"),
        ("create", "rbac.authorization.k8s.io", "roles"),
        ("create", "rbac.authorization.k8s.io", "rolebindings"),
    ] {
        assert!(
            may(&jane, verb, group, resource).await,
            "admin may {verb} {resource}"
        );
    }
    assert!(!may(&jane, "update", "apps", "deployments/finalizers").await);
    assert!(!may(&jane, "create", "flink.apache.org", "flinkdeployments").await);

    let accounts: Api<ServiceAccount> = Api::namespaced(jane.clone(), NS);
    let account: ServiceAccount = from_json(json!({"metadata": {"name": "runner"}}));
    accounts
        .create(&PostParams::default(), &account)
        .await
        .unwrap_or_else(|e| panic!("admin may create service accounts: {e}"));
    let maps: Api<ConfigMap> = Api::namespaced(jane.clone(), NS);
    let map: ConfigMap = from_json(json!({"metadata": {"name": "settings"}}));
    maps.create(&PostParams::default(), &map)
        .await
        .unwrap_or_else(|e| panic!("admin may create configmaps: {e}"));

    // A Role within admin's rules is stored; the chart's job rules are not: admin has no
    // deployments/finalizers.
    let roles: Api<Role> = Api::namespaced(jane.clone(), NS);
    let pods_rules = json!([{"apiGroups": [""], "resources": ["pods", "configmaps"],
        "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"]}]);
    roles
        .create(&PostParams::default(), &role("pods", pods_rules))
        .await
        .unwrap_or_else(|e| panic!("a Role within admin's rules: {e}"));
    let before = standin.stats();
    let refused = api_error(
        roles
            .create(&PostParams::default(), &role("flink-job", job_rules()))
            .await,
    );
    let expected = "roles.rbac.authorization.k8s.io \"flink-job\" is forbidden: user \"jane\" \
        (groups=[\"platform\" \"system:authenticated\"]) is attempting to grant RBAC permissions \
        not currently held:\n{APIGroups:[\"apps\"], Resources:[\"deployments/finalizers\"], \
        Verbs:[\"get\" \"list\" \"watch\" \"create\" \"update\" \"patch\" \"delete\"]}";
    assert_eq!(
        (
            refused.code,
            refused.reason.as_str(),
            refused.message.as_str()
        ),
        (403, "Forbidden", expected)
    );
    let details = refused
        .details
        .map(|d| (d.name, d.group, d.kind))
        .unwrap_or_default();
    assert_eq!(
        (details.0.as_str(), details.1.as_str(), details.2.as_str()),
        ("flink-job", "rbac.authorization.k8s.io", "roles")
    );
    // A server-side apply is refused alike, and nothing was stored.
    let applied = api_error(
        roles
            .patch(
                "flink-job",
                &PatchParams::apply("jane"),
                &Patch::Apply(&role("flink-job", job_rules())),
            )
            .await,
    );
    assert_eq!((applied.code, applied.message.as_str()), (403, expected));
    let after = standin.stats();
    assert_eq!(
        (
            after.effective_writes - before.effective_writes,
            after.refused_writes - before.refused_writes
        ),
        (0, 2)
    );

    // A RoleBinding to a role jane holds is stored; to one it does not hold, refused.
    let bindings: Api<RoleBinding> = Api::namespaced(jane.clone(), NS);
    bindings
        .create(
            &PostParams::default(),
            &binding("runner-pods", "Role", "pods", "runner"),
        )
        .await
        .unwrap_or_else(|e| panic!("a binding to a role jane holds: {e}"));
    let admin_roles: Api<Role> = Api::namespaced(admin.clone(), NS);
    admin_roles
        .create(&PostParams::default(), &role("flink-job", job_rules()))
        .await
        .unwrap_or_else(|e| panic!("the cluster admin may create any Role: {e}"));
    let refused = api_error(
        bindings
            .create(
                &PostParams::default(),
                &binding("runner-job", "Role", "flink-job", "runner"),
            )
            .await,
    );
    assert_eq!(refused.code, 403);
    assert!(
        refused.message.starts_with(
            "rolebindings.rbac.authorization.k8s.io \"runner-job\" is forbidden: user \"jane\""
        ) && refused
            .message
            .contains("Resources:[\"deployments/finalizers\"]"),
        "{}",
        refused.message
    );
    let missing = api_error(
        bindings
            .create(
                &PostParams::default(),
                &binding("runner-gone", "Role", "gone", "runner"),
            )
            .await,
    );
    assert_eq!(
        (missing.code, missing.message.as_str()),
        (404, "roles.rbac.authorization.k8s.io \"gone\" not found")
    );

    // Granted `escalate` and `bind` on roles in streaming, jane may do both.
    let grants: Value = json!([{"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles"],
        "verbs": ["escalate", "bind"]}]);
    admin_roles
        .create(&PostParams::default(), &role("grant-roles", grants))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    Api::<RoleBinding>::namespaced(admin.clone(), NS)
        .create(
            &PostParams::default(),
            &binding("jane-grants", "Role", "grant-roles", "jane"),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    roles
        .patch(
            "jane-job",
            &PatchParams::apply("jane"),
            &Patch::Apply(&role("jane-job", job_rules())),
        )
        .await
        .unwrap_or_else(|e| panic!("with escalate, a Role beyond jane's rules: {e}"));
    bindings
        .create(
            &PostParams::default(),
            &binding("runner-job", "Role", "flink-job", "runner"),
        )
        .await
        .unwrap_or_else(|e| panic!("with bind, a binding to a role beyond jane's rules: {e}"));

    // No FlinkDeployments: neither admin nor any role the chart aggregates grants them.
    let refused = api_error(
        flink_in_streaming(&jane)
            .create(&PostParams::default(), &flink_deployment_in_streaming())
            .await,
    );
    assert_eq!(
        (refused.code, refused.message.as_str()),
        (
            403,
            "flinkdeployments.flink.apache.org is forbidden: User \"jane\" cannot create resource \"flinkdeployments\" in API group \"flink.apache.org\" in the namespace \"streaming\""
        )
    );
}

#[tokio::test]
async fn a_namespace_editor_may_write_workloads_but_no_roles_and_no_flinkdeployments() {
    let (standin, _admin) = namespace_users().await;
    let eddie = client_as(&standin, "eddie", &[]).await;
    assert!(may(&eddie, "create", "", "configmaps").await);
    assert!(!may(&eddie, "create", "rbac.authorization.k8s.io", "roles").await);
    let maps: Api<ConfigMap> = Api::namespaced(eddie.clone(), NS);
    let map: ConfigMap = from_json(json!({"metadata": {"name": "settings"}}));
    maps.create(&PostParams::default(), &map)
        .await
        .unwrap_or_else(|e| panic!("edit may create configmaps: {e}"));
    let roles: Api<Role> = Api::namespaced(eddie.clone(), NS);
    let tiny = json!([{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}]);
    let refused = api_error(
        roles
            .create(&PostParams::default(), &role("tiny", tiny))
            .await,
    );
    assert_eq!(
        (refused.code, refused.message.as_str()),
        (
            403,
            "roles.rbac.authorization.k8s.io is forbidden: User \"eddie\" cannot create resource \"roles\" in API group \"rbac.authorization.k8s.io\" in the namespace \"streaming\""
        )
    );
    let refused = api_error(
        flink_in_streaming(&eddie)
            .create(&PostParams::default(), &flink_deployment_in_streaming())
            .await,
    );
    assert_eq!(refused.code, 403, "{refused:?}");
}

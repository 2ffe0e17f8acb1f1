//! The job's RBAC through the real `cargo xtask deploy`, against the Kubernetes stand-in with
//! the operator's chart installed (its `flink` account and Role in `default`) and RBAC
//! enforced: a JobManager whose account may not create pods never gets its TaskManagers.
//!
//! - a first deploy into a fresh namespace `streaming` with its own account `flink-runner`
//!   creates the namespace, the Role and the RoleBinding, and reaches RUNNING; a second deploy
//!   writes nothing; teardown removes that Role and RoleBinding and nothing else;
//! - the chart's `flink` account in `default` needs no Role, and the plan says why;
//! - a Role of the tool's name that the tool did not make blocks the deploy (exit 2) with
//!   nothing written;
//! - a deploying user bound only to the built-in `admin` ClusterRole in its namespace is told
//!   at once, before anything is written (exit 3), everything the API server would refuse
//!   it (reading FlinkDeployments too); once a cluster admin grants what the plan named, the
//!   same user's deploy runs.

use std::path::PathBuf;

use flink_eks_tests::someone_elses_role;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, PostParams};
use serde_json::Value;

mod world;
use world::World;

const NAMESPACE: &str = "streaming";
const ACCOUNT: &str = "flink-runner";
/// The Role and RoleBinding the tool names after the account.
const OBJECT: &str = "flink-eks-flink-runner";

/// A configuration of this world for `streaming` and `flink-runner`.
fn streaming_config(world: &World, file: &str) -> PathBuf {
    let path = world.write_config(file, &world.names.job);
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace(
            "namespace = \"default\"",
            &format!("namespace = \"{NAMESPACE}\""),
        )
        .replace(
            "service_account = \"flink\"",
            &format!("service_account = \"{ACCOUNT}\""),
        );
    assert!(
        text.contains(NAMESPACE) && text.contains(ACCOUNT),
        "the configuration names the namespace and the account:\n{text}"
    );
    std::fs::write(&path, text).unwrap();
    path
}

fn rows_of<'a>(plan: &'a Value, kind: &str) -> Vec<&'a Value> {
    plan["rows"]
        .as_array()
        .expect("the plan has rows")
        .iter()
        .filter(|r| r["kind"] == kind)
        .collect()
}

fn action_of(plan: &Value, kind: &str) -> String {
    let rows = rows_of(plan, kind);
    assert_eq!(rows.len(), 1, "one {kind} row\n{plan:#}");
    rows[0]["action"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_namespace_with_its_own_account_runs_and_teardown_removes_only_its_rbac() {
    let world = World::start().await;
    let config = streaming_config(&world, "deploy-streaming.toml");
    let xtask = world.xtask(&config);
    let namespaces: Api<Namespace> = Api::all(world.kube.clone());
    assert!(
        namespaces.get_opt(NAMESPACE).await.unwrap().is_none(),
        "the namespace is new"
    );

    let (run, writes) = world
        .counted(xtask.run(&["deploy", "--output", "json"]))
        .await;
    assert_eq!(run.code, Some(0), "the first deploy succeeds\n{run}");
    assert!(
        run.stderr.contains("RUNNING") && run.stderr.contains("STABLE"),
        "the job runs, its TaskManagers created by its own account\n{run}"
    );
    let plan = run.stdout_json().unwrap();
    for kind in ["namespace", "role", "role-binding", "service-account"] {
        assert_eq!(action_of(&plan, kind), "create", "{kind}\n{plan:#}");
    }
    let role_row = rows_of(&plan, "role")[0];
    assert_eq!(role_row["name"], format!("{NAMESPACE}/{OBJECT}"));
    assert_eq!(role_row["step"], "rbac");
    let planned = [
        "namespace",
        "role",
        "role-binding",
        "service-account",
        "flink-deployment",
    ]
    .iter()
    .flat_map(|kind| rows_of(&plan, kind))
    .filter(|r| matches!(r["action"].as_str(), Some("create" | "update")))
    .count();
    assert_eq!(
        writes.kube_writes(),
        u64::try_from(planned).unwrap(),
        "one Kubernetes write per planned Kubernetes operation\n{plan:#}\n{writes}"
    );

    let roles: Api<Role> = Api::namespaced(world.kube.clone(), NAMESPACE);
    let bindings: Api<RoleBinding> = Api::namespaced(world.kube.clone(), NAMESPACE);
    let role = roles.get(OBJECT).await.expect("the Role exists");
    let labels = role.metadata.labels.clone().unwrap_or_default();
    assert_eq!(labels["flink-eks.io/managed-by"], "flink-eks", "{labels:?}");
    let rules = role.rules.unwrap_or_default();
    assert_eq!(rules.len(), 2, "the chart's two job rules: {rules:?}");
    assert_eq!(
        rules[0].resources.as_deref().unwrap_or_default(),
        ["pods", "configmaps"]
    );
    let binding = bindings.get(OBJECT).await.expect("the RoleBinding exists");
    let subject = &binding.subjects.unwrap_or_default()[0];
    assert_eq!(
        (subject.kind.as_str(), subject.name.as_str()),
        ("ServiceAccount", ACCOUNT)
    );

    let (run, writes) = world
        .counted(xtask.run(&["deploy", "--output", "json"]))
        .await;
    assert_eq!(run.code, Some(0), "the second deploy succeeds\n{run}");
    let plan = run.stdout_json().unwrap();
    for kind in ["namespace", "role", "role-binding"] {
        assert_eq!(action_of(&plan, kind), "no-change", "{kind}\n{plan:#}");
    }
    writes.assert_none("a second deploy with nothing changed");

    roles
        .create(
            &PostParams::default(),
            &someone_elses_role(NAMESPACE, "team-reader"),
        )
        .await
        .expect("someone else's Role");
    let run = xtask
        .run(&["teardown", "--delete-script"])
        .await
        .expect("run");
    assert_eq!(run.code, Some(0), "teardown succeeds\n{run}");
    assert!(
        roles.get_opt(OBJECT).await.unwrap().is_none(),
        "the Role is gone\n{run}"
    );
    assert!(
        bindings.get_opt(OBJECT).await.unwrap().is_none(),
        "the RoleBinding is gone\n{run}"
    );
    assert!(
        roles.get_opt("team-reader").await.unwrap().is_some(),
        "someone else's Role survives\n{run}"
    );
    assert!(
        namespaces.get_opt(NAMESPACE).await.unwrap().is_some(),
        "the namespace stays, and teardown says so\n{run}"
    );
    assert!(
        run.stderr.contains("kubectl delete namespace streaming"),
        "{run}"
    );
    world.clean_up().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_charts_flink_account_in_default_needs_no_role_and_the_plan_says_why() {
    let world = World::start().await;
    let (run, writes) = world
        .counted(world.xtask.run(&["deploy", "--plan", "--output", "json"]))
        .await;
    assert_eq!(run.code, Some(7), "a plan with operations pending\n{run}");
    let plan = run.stdout_json().unwrap();
    for kind in ["namespace", "role", "role-binding"] {
        assert_eq!(action_of(&plan, kind), "no-change", "{kind}\n{plan:#}");
    }
    let detail = rows_of(&plan, "role")[0]["detail"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        detail.contains("not needed") && detail.contains("system:serviceaccount:default:flink"),
        "{detail}"
    );
    writes.assert_none("a plan");
    let roles: Api<Role> = Api::namespaced(world.kube.clone(), "default");
    assert!(roles.get_opt("flink-eks-flink").await.unwrap().is_none());
    world.clean_up().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_same_named_role_not_owned_blocks_with_exit_2_and_writes_nothing() {
    let world = World::start().await;
    create_namespace(&world).await;
    let roles: Api<Role> = Api::namespaced(world.kube.clone(), NAMESPACE);
    roles
        .create(
            &PostParams::default(),
            &someone_elses_role(NAMESPACE, OBJECT),
        )
        .await
        .unwrap();
    let config = streaming_config(&world, "deploy-foreign.toml");

    let (run, writes) = world.counted(world.xtask(&config).run(&["deploy"])).await;
    assert_eq!(run.code, Some(2), "a blocked plan is bad input\n{run}");
    assert!(
        run.stderr.contains(&format!(
            "role {NAMESPACE}/{OBJECT} exists and was not made by flink-eks"
        )) && run.stderr.contains("--adopt"),
        "the error names the Role and the fix\n{run}"
    );
    writes.assert_none("a deploy blocked by someone else's Role");
    let role = roles.get(OBJECT).await.unwrap();
    assert_eq!(
        role.rules.unwrap_or_default()[0].verbs,
        ["get"],
        "the Role is untouched"
    );
    assert!(world.account_roles().await.is_empty(), "no IAM role made");
    world.clean_up().await;
}

/// Creates the namespace `streaming`, as the cluster's admin.
async fn create_namespace(world: &World) {
    let namespaces: Api<Namespace> = Api::all(world.kube.clone());
    namespaces
        .create(
            &PostParams::default(),
            &Namespace {
                metadata: ObjectMeta {
                    name: Some(NAMESPACE.to_owned()),
                    ..ObjectMeta::default()
                },
                ..Namespace::default()
            },
        )
        .await
        .expect("the cluster admin creates the namespace");
}

/// The deploying user of the namespace-scoped tests: not in `system:masters`.
const USER: &str = "dana";

/// A kubeconfig of this world whose user acts as `user` (`as:`, sent as `Impersonate-User`).
fn kubeconfig_as(world: &World, user: &str) -> PathBuf {
    let path = world.dir.path().join(format!("kubeconfig-{user}"));
    std::fs::write(&path, world.standin.kubeconfig_yaml_as(user, &[])).unwrap();
    path
}

/// A RoleBinding in `namespace` of `role` (`Role` or `ClusterRole`) to the user `user`.
fn binding(namespace: &str, name: &str, kind: &str, role: &str, user: &str) -> RoleBinding {
    RoleBinding {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some(namespace.to_owned()),
            ..ObjectMeta::default()
        },
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".to_owned(),
            kind: kind.to_owned(),
            name: role.to_owned(),
        },
        subjects: Some(vec![Subject {
            api_group: Some("rbac.authorization.k8s.io".to_owned()),
            kind: "User".to_owned(),
            name: user.to_owned(),
            namespace: None,
        }]),
    }
}

fn rule(group: &str, resources: &[&str], verbs: &[&str]) -> PolicyRule {
    PolicyRule {
        api_groups: Some(vec![group.to_owned()]),
        resources: Some(resources.iter().map(|r| (*r).to_owned()).collect()),
        verbs: verbs.iter().map(|v| (*v).to_owned()).collect(),
        ..PolicyRule::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_namespace_admin_is_told_what_it_may_not_write_before_anything_is_written() {
    let world = World::start().await;
    create_namespace(&world).await;
    let bindings: Api<RoleBinding> = Api::namespaced(world.kube.clone(), NAMESPACE);
    bindings
        .create(
            &PostParams::default(),
            &binding(NAMESPACE, "dana-admin", "ClusterRole", "admin", USER),
        )
        .await
        .expect("the cluster admin makes dana the namespace's admin");
    let config = streaming_config(&world, "deploy-dana.toml");
    let xtask = world.xtask(&config).with_env(
        "KUBECONFIG",
        kubeconfig_as(&world, USER).display().to_string(),
    );

    // The namespace's admin may create the account, but may not read or write
    // FlinkDeployments (no built-in role grants them), nor create a Role granting what it
    // does not hold itself (apps deployments/finalizers), nor a binding to it. All of it is
    // said at once, before anything is written.
    let roles: Api<Role> = Api::namespaced(world.kube.clone(), NAMESPACE);
    let role_of = |name: &str, rules: Vec<PolicyRule>| Role {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some(NAMESPACE.to_owned()),
            ..ObjectMeta::default()
        },
        rules: Some(rules),
    };
    let (run, writes) = world
        .counted(xtask.run(&["deploy", "--output", "json"]))
        .await;
    assert_eq!(run.code, Some(3), "refused permissions: exit 3\n{run}");
    writes.assert_none("a deploy its user may not make");
    let plan = run.stdout_json().unwrap();
    let refused: Vec<(String, String, String)> = rows_of(&plan, "permission")
        .iter()
        .map(|r| {
            assert_eq!(r["action"], "blocked", "{r:#}");
            let text = |k: &str| r[k].as_str().unwrap_or_default().to_owned();
            (
                text("step"),
                text("name"),
                format!("{} {}", text("detail"), text("fix")),
            )
        })
        .collect();
    let find = |step: &str, name: &str| {
        refused
            .iter()
            .find(|(s, n, _)| s == step && n == name)
            .unwrap_or_else(|| panic!("no {step} row {name:?} in {refused:#?}\n{run}"))
            .2
            .clone()
    };
    let role = find("rbac", "create roles");
    assert!(
        role.contains("deployments/finalizers") && role.contains("`escalate`"),
        "{role}"
    );
    let bind = find("rbac", "create rolebindings");
    assert!(bind.contains("`bind`"), "{bind}");
    let read = find("submit", "get flinkdeployments");
    assert!(read.contains("may not read FlinkDeployment"), "{read}");
    let deployment = find("submit", "create flinkdeployments");
    assert!(deployment.contains("no built-in role"), "{deployment}");
    assert_eq!(
        refused
            .iter()
            .filter(|(step, _, _)| step == "submit")
            .count(),
        2,
        "the read, and one row for the apply refused as patch and create: {refused:#?}"
    );
    assert!(
        !refused
            .iter()
            .any(|(_, name, _)| name.contains("serviceaccounts")),
        "the namespace's admin may create the account: {refused:#?}"
    );
    assert!(
        run.stderr.contains("nothing was written")
            && run.stderr.contains("permission create flinkdeployments"),
        "the error names each refused write\n{run}"
    );

    // A cluster admin grants what the plan named: escalate and bind on roles, and the
    // FlinkDeployments. The same user's deploy now runs.
    roles
        .create(
            &PostParams::default(),
            &role_of(
                "flink-deployer",
                vec![
                    rule(
                        "rbac.authorization.k8s.io",
                        &["roles"],
                        &["escalate", "bind"],
                    ),
                    rule(
                        "flink.apache.org",
                        &["flinkdeployments"],
                        &[
                            "get", "list", "watch", "create", "patch", "update", "delete",
                        ],
                    ),
                ],
            ),
        )
        .await
        .expect("the cluster admin's Role");
    bindings
        .create(
            &PostParams::default(),
            &binding(NAMESPACE, "dana-deployer", "Role", "flink-deployer", USER),
        )
        .await
        .expect("bound to dana");
    let (run, _) = world
        .counted(xtask.run(&["deploy", "--output", "json"]))
        .await;
    assert_eq!(run.code, Some(0), "granted, dana's deploy runs\n{run}");
    assert!(run.stderr.contains("RUNNING"), "{run}");
    let plan = run.stdout_json().unwrap();
    assert!(rows_of(&plan, "permission").is_empty(), "{plan:#}");
    assert_eq!(action_of(&plan, "role"), "create", "{plan:#}");
    world.clean_up().await;
}

//! The stand-in says "no" where a cluster with the operator's Helm chart does, through
//! kube-rs: access reviews answered from RBAC, a JobManager whose service account may not
//! create pods, and namespaces the operator does not watch.

mod common;

use std::time::Duration;

use common::*;
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use k8s_openapi::api::core::v1::{ConfigMap, Pod, ServiceAccount};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube_standin::{Config, StandIn};
use serde_json::json;

async fn start_with(config: Config) -> StandIn {
    match StandIn::start(config).await {
        Ok(s) => s,
        Err(e) => panic!("the stand-in did not start: {e:#}"),
    }
}

fn review(user: &str, namespace: &str, verb: &str, resource: &str) -> SubjectAccessReview {
    SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: Some(user.to_owned()),
            resource_attributes: Some(ResourceAttributes {
                namespace: Some(namespace.to_owned()),
                verb: Some(verb.to_owned()),
                resource: Some(resource.to_owned()),
                ..ResourceAttributes::default()
            }),
            ..SubjectAccessReviewSpec::default()
        },
        ..SubjectAccessReview::default()
    }
}

async fn grant_job_rules(client: &kube::Client, namespace: &str, account: &str) {
    let roles: Api<Role> = Api::namespaced(client.clone(), namespace);
    let bindings: Api<RoleBinding> = Api::namespaced(client.clone(), namespace);
    let role = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
    "metadata": {"name": "flink-job", "namespace": namespace},
    "rules": [
        {"apiGroups": [""], "resources": ["pods", "configmaps"],
            "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"]},
        {"apiGroups": ["apps"], "resources": ["deployments", "deployments/finalizers"],
            "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"]},
    ]});
    let binding = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": "flink-job", "namespace": namespace},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "flink-job"},
        "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": namespace}]});
    let params = PatchParams::apply("test").force();
    if let Err(e) = roles
        .patch("flink-job", &params, &Patch::Apply(&role))
        .await
    {
        panic!("the Role was not applied: {e}");
    }
    if let Err(e) = bindings
        .patch("flink-job", &params, &Patch::Apply(&binding))
        .await
    {
        panic!("the RoleBinding was not applied: {e}");
    }
}

#[tokio::test]
async fn subject_access_reviews_answer_from_the_charts_rbac_and_are_not_writes() {
    let standin = start().await;
    let client = client(&standin).await;
    let reviews: Api<SubjectAccessReview> = Api::all(client.clone());
    let before = standin.stats();
    let flink = "system:serviceaccount:default:flink";
    let answered = reviews
        .create(
            &PostParams::default(),
            &review(flink, "default", "create", "pods"),
        )
        .await
        .unwrap_or_else(|e| panic!("review refused: {e}"));
    let status = answered.status.unwrap_or_default();
    assert!(status.allowed);
    assert_eq!(
        status.reason.as_deref(),
        Some(
            "RBAC: allowed by RoleBinding \"flink-role-binding/default\" of Role \"flink\" to ServiceAccount \"flink/default\""
        )
    );
    for (user, namespace, verb, resource) in [
        (flink, "kube-system", "create", "pods"),
        (flink, "default", "get", "secrets"),
        (
            "system:serviceaccount:default:flink-runner",
            "default",
            "create",
            "pods",
        ),
    ] {
        let answered = reviews
            .create(
                &PostParams::default(),
                &review(user, namespace, verb, resource),
            )
            .await
            .unwrap_or_else(|e| panic!("review refused: {e}"));
        assert!(
            !answered.status.unwrap_or_default().allowed,
            "{user} may not {verb} {resource} in {namespace}"
        );
    }
    let after = standin.stats();
    assert_eq!(after.writes, before.writes, "reviews are not writes");
}

#[tokio::test]
async fn a_job_account_without_rbac_restarts_until_a_role_grants_it() {
    let standin = start().await;
    let client = client(&standin).await;
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), "default");
    let account =
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "flink-runner"}});
    accounts
        .create(
            &PostParams::default(),
            &serde_json::from_value(account).unwrap_or_default(),
        )
        .await
        .unwrap_or_else(|e| panic!("no service account: {e}"));
    let flink = flink_api(&client);
    let mut manifest = flink_deployment("runner-job");
    manifest["spec"]["serviceAccount"] = json!("flink-runner");
    apply(&flink, &manifest)
        .await
        .unwrap_or_else(|e| panic!("apply failed: {e}"));

    // The JobManager cannot create its TaskManagers: it restarts, the deployment goes to
    // ERROR once the container waits in CrashLoopBackOff, the resource stays DEPLOYED.
    let stuck = wait_for(&flink, "runner-job", "in CrashLoopBackOff", |o| {
        status_of(o, &["jobManagerDeploymentStatus"]).as_deref() == Some("ERROR")
    })
    .await;
    assert_eq!(
        status_of(&stuck, &["lifecycleState"]).as_deref(),
        Some("DEPLOYED")
    );
    assert_eq!(
        status_of(&stuck, &["jobStatus", "state"]).as_deref(),
        Some("RECONCILING")
    );
    let error = status_of(&stuck, &["error"]).unwrap_or_default();
    assert!(error.contains("CrashLoopBackOff"), "{error}");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let jobmanagers = pods
        .list(&ListParams::default().labels("app=runner-job,component=jobmanager"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let jm = jobmanagers
        .items
        .first()
        .unwrap_or_else(|| panic!("no JobManager pod"));
    let restarts = jm
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.name == "flink-main-container"))
        .map(|c| c.restart_count)
        .unwrap_or_default();
    assert!(restarts >= 1, "the JobManager restarted: {restarts}");
    let log = jobmanager_log(&client, "runner-job").await;
    assert!(
        log.contains(
            "pods is forbidden: User \"system:serviceaccount:default:flink-runner\" cannot watch resource \"pods\" in API group \"\" in the namespace \"default\""
        ),
        "{log}"
    );
    let no_taskmanagers = pods
        .list(&ListParams::default().labels("app=runner-job,component=taskmanager"))
        .await
        .map(|l| l.items.len())
        .unwrap_or_default();
    assert_eq!(no_taskmanagers, 0);

    // Once a Role grants the chart's job rules, the next attempt runs the job.
    grant_job_rules(&client, "default", "flink-runner").await;
    let running = wait_for(&flink, "runner-job", "RUNNING and STABLE", |o| {
        status_of(o, &["lifecycleState"]).as_deref() == Some("STABLE")
    })
    .await;
    assert_eq!(
        status_of(&running, &["jobStatus", "state"]).as_deref(),
        Some("RUNNING")
    );
    assert_eq!(
        status_of(&running, &["jobManagerDeploymentStatus"]).as_deref(),
        Some("READY")
    );
    assert_eq!(
        status_of(&running, &["error"]),
        None,
        "the error is cleared"
    );
}

#[tokio::test]
async fn kubernetes_ha_needs_configmaps_too() {
    let standin = start().await;
    let client = client(&standin).await;
    let roles: Api<Role> = Api::namespaced(client.clone(), "default");
    // The chart's Role without configmaps.
    let role = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
        "metadata": {"name": "flink", "namespace": "default"},
        "rules": [{"apiGroups": [""], "resources": ["pods"],
            "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"]}]});
    roles
        .patch(
            "flink",
            &PatchParams::apply("test").force(),
            &Patch::Apply(&role),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let flink = flink_api(&client);
    let mut manifest = flink_deployment("ha-job");
    manifest["spec"]["flinkConfiguration"]["high-availability.type"] = json!("kubernetes");
    manifest["spec"]["flinkConfiguration"]["high-availability.storageDir"] = json!("s3://b/ha");
    apply(&flink, &manifest)
        .await
        .unwrap_or_else(|e| panic!("apply failed: {e}"));
    wait_for(&flink, "ha-job", "ERROR after refused calls", |o| {
        status_of(o, &["jobManagerDeploymentStatus"]).as_deref() == Some("ERROR")
    })
    .await;
    let log = jobmanager_log(&client, "ha-job").await;
    assert!(
        log.contains("configmaps is forbidden: User \"system:serviceaccount:default:flink\" cannot create resource \"configmaps\""),
        "{log}"
    );
}

#[tokio::test]
async fn the_operator_acts_only_in_the_namespaces_its_configmap_lists() {
    let standin = start_with(Config {
        watched_namespaces: vec!["streaming".into()],
        ..Config::default()
    })
    .await;
    let client = client(&standin).await;
    // The chart made the job account, Role and binding in the watched namespace only.
    let streaming_roles: Api<Role> = Api::namespaced(client.clone(), "streaming");
    assert!(streaming_roles.get("flink").await.is_ok());
    let default_roles: Api<Role> = Api::namespaced(client.clone(), "default");
    assert!(default_roles.get("flink").await.is_err());
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let config = config_maps
        .get("flink-operator-config")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let file = config
        .data
        .as_ref()
        .and_then(|d| d.get("config.yaml"))
        .cloned()
        .unwrap_or_default();
    assert!(
        file.contains("kubernetes.operator.watched.namespaces: streaming\n"),
        "{file}"
    );

    let watched = kube::Api::namespaced_with(client.clone(), "streaming", &flink_resource());
    let mut manifest = flink_deployment("watched");
    manifest["metadata"]["namespace"] = json!("streaming");
    apply(&watched, &manifest)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    wait_for(&watched, "watched", "STABLE", |o| {
        status_of(o, &["lifecycleState"]).as_deref() == Some("STABLE")
    })
    .await;

    let unwatched = flink_api(&client);
    apply(&unwatched, &flink_deployment("unwatched"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let ignored = unwatched
        .get("unwatched")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        ignored.data.get("status").is_none(),
        "no status at all: {:?}",
        ignored.data
    );

    // A `helm upgrade` that adds the namespace: the operator picks it up.
    let mut data = config.data.clone().unwrap_or_default();
    let widened = file.replace(
        "kubernetes.operator.watched.namespaces: streaming",
        "kubernetes.operator.watched.namespaces: streaming,default",
    );
    data.insert("config.yaml".into(), widened);
    let patch = json!({"data": data});
    config_maps
        .patch(
            "flink-operator-config",
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    wait_for(&unwatched, "unwatched", "reconciled", |o| {
        o.data.get("status").is_some()
    })
    .await;
}

#[tokio::test]
async fn without_the_chart_the_crd_is_not_served_and_nothing_reconciles() {
    let standin = start_with(Config {
        operator_installed: false,
        ..Config::default()
    })
    .await;
    let client = client(&standin).await;
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), "default");
    assert!(
        accounts.get("flink").await.is_err(),
        "no chart, no job account"
    );
    let flink = flink_api(&client);
    let refused = api_error(apply(&flink, &flink_deployment("orphan")).await);
    assert_eq!(refused.code, 404, "{refused:?}");
    let groups = client
        .list_api_groups()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        groups.groups.iter().all(|g| g.name != "flink.apache.org"),
        "discovery has no flink.apache.org"
    );

    // The CRD alone (no operator Deployment): the resource is served, nothing reconciles it.
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let text =
        std::fs::read_to_string(Config::default().crd_path).unwrap_or_else(|e| panic!("{e}"));
    let crd: CustomResourceDefinition =
        serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("the CRD is not YAML: {e}"));
    crds.create(&PostParams::default(), &crd)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    apply(&flink, &flink_deployment("orphan"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let orphan = flink.get("orphan").await.unwrap_or_else(|e| panic!("{e}"));
    assert!(orphan.data.get("status").is_none());
}

#[tokio::test]
async fn an_operator_scaled_to_zero_reconciles_nothing() {
    let standin = start().await;
    let client = client(&standin).await;
    let deployments: Api<k8s_openapi::api::apps::v1::Deployment> =
        Api::namespaced(client.clone(), "default");
    deployments
        .patch(
            "flink-kubernetes-operator",
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"replicas": 0}})),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let flink = flink_api(&client);
    apply(&flink, &flink_deployment("unattended"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let object = flink
        .get("unattended")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(object.data.get("status").is_none());
    deployments
        .patch(
            "flink-kubernetes-operator",
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"replicas": 1}})),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    wait_for(
        &flink,
        "unattended",
        "reconciled once the operator runs",
        |o| o.data.get("status").is_some(),
    )
    .await;
}

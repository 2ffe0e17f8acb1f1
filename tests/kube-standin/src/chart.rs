//! What a new cluster holds before any test writes: the built-in RBAC a real API server
//! bootstraps, and what `helm install flink-kubernetes-operator` (chart 1.15.0, default
//! values) creates: the CRDs, the operator's Deployment and service account, its ClusterRole
//! and binding, the ConfigMap `flink-operator-config`, and in each watched namespace (or the
//! operator's own when none is listed) the job service account `flink` with the Role `flink`
//! and the RoleBinding `flink-role-binding` (`templates/flink/*.yaml`).

use std::path::Path;

use serde_json::{Value, json};

use crate::api::{ApiServer, WriteOptions};
use crate::error::ApiError;
use crate::rbac::{AUTHENTICATED, MASTERS, chart_job_rules};
use crate::resources::{
    CLUSTER_ROLE_BINDINGS, CLUSTER_ROLES, CONFIG_MAPS, CUSTOM_RESOURCE_DEFINITIONS, DEPLOYMENTS,
    NAMESPACES, READ_WRITE_VERBS, ROLE_BINDINGS, ROLES, ResourceDef, SERVICE_ACCOUNTS,
};

/// The operator's Deployment (the chart's name) and its main container.
pub(crate) const OPERATOR_NAME: &str = "flink-kubernetes-operator";
/// The operator's version, as its image tag and labels carry it.
pub(crate) const OPERATOR_VERSION: &str = "1.15.0";
/// The operator's configuration ConfigMap.
pub(crate) const OPERATOR_CONFIG: &str = "flink-operator-config";
/// The configuration key that lists the watched namespaces (comma-separated; none = all).
pub(crate) const WATCHED_NAMESPACES_KEY: &str = "kubernetes.operator.watched.namespaces";
/// The job service account, Role and RoleBinding names of the chart's default values.
pub(crate) const JOB_SERVICE_ACCOUNT: &str = "flink";
const JOB_ROLE: &str = "flink";
const JOB_ROLE_BINDING: &str = "flink-role-binding";

/// The chart's labels (`flink-operator.labels`).
fn labels() -> Value {
    json!({
        "app.kubernetes.io/name": OPERATOR_NAME,
        "app.kubernetes.io/version": OPERATOR_VERSION,
        "app.kubernetes.io/managed-by": "Helm",
        "helm.sh/chart": format!("{OPERATOR_NAME}-{OPERATOR_VERSION}"),
    })
}

fn keep() -> Value {
    json!({"helm.sh/resource-policy": "keep"})
}

const READ: [&str; 3] = ["get", "list", "watch"];
const WRITE: [&str; 5] = ["create", "delete", "deletecollection", "patch", "update"];
const READ_WRITE: [&str; 8] = READ_WRITE_VERBS;

fn rule(group: &str, resources: &[&str], verbs: &[&str]) -> Value {
    json!({"apiGroups": [group], "resources": resources, "verbs": verbs})
}

/// The rules of `system:aggregate-to-view`, `-edit` and `-admin`, as the bootstrap policy
/// (kubernetes/kubernetes `plugin/pkg/auth/authorizer/rbac/bootstrappolicy/policy.go`, its
/// rendered `testdata/cluster-roles.yaml` of a current release) states them for the groups
/// a namespace user meets: core, apps, autoscaling, batch, extensions, policy,
/// networking.k8s.io, discovery.k8s.io, coordination.k8s.io, authorization.k8s.io and (admin
/// only) rbac.authorization.k8s.io. Verified there: `deployments/finalizers` is in none of
/// them, `edit` writes `events` and `leases`, `endpoints` is only read.
fn aggregate_to(role: &str) -> Vec<Value> {
    match role {
        "view" => vec![
            rule(
                "",
                &[
                    "configmaps",
                    "endpoints",
                    "persistentvolumeclaims",
                    "persistentvolumeclaims/status",
                    "pods",
                    "replicationcontrollers",
                    "replicationcontrollers/scale",
                    "serviceaccounts",
                    "services",
                    "services/status",
                ],
                &READ,
            ),
            rule(
                "",
                &[
                    "bindings",
                    "events",
                    "limitranges",
                    "namespaces/status",
                    "pods/log",
                    "pods/status",
                    "replicationcontrollers/status",
                    "resourcequotas",
                    "resourcequotas/status",
                ],
                &READ,
            ),
            rule("", &["namespaces"], &READ),
            rule("discovery.k8s.io", &["endpointslices"], &READ),
            rule(
                "apps",
                &[
                    "controllerrevisions",
                    "daemonsets",
                    "daemonsets/status",
                    "deployments",
                    "deployments/scale",
                    "deployments/status",
                    "replicasets",
                    "replicasets/scale",
                    "replicasets/status",
                    "statefulsets",
                    "statefulsets/scale",
                    "statefulsets/status",
                ],
                &READ,
            ),
            rule(
                "autoscaling",
                &[
                    "horizontalpodautoscalers",
                    "horizontalpodautoscalers/status",
                ],
                &READ,
            ),
            rule(
                "batch",
                &["cronjobs", "cronjobs/status", "jobs", "jobs/status"],
                &READ,
            ),
            rule(
                "extensions",
                &[
                    "daemonsets",
                    "daemonsets/status",
                    "deployments",
                    "deployments/scale",
                    "deployments/status",
                    "ingresses",
                    "ingresses/status",
                    "networkpolicies",
                    "replicasets",
                    "replicasets/scale",
                    "replicasets/status",
                    "replicationcontrollers/scale",
                ],
                &READ,
            ),
            rule(
                "policy",
                &["poddisruptionbudgets", "poddisruptionbudgets/status"],
                &READ,
            ),
            rule(
                "networking.k8s.io",
                &["ingresses", "ingresses/status", "networkpolicies"],
                &READ,
            ),
        ],
        "edit" => vec![
            rule(
                "",
                &[
                    "pods/attach",
                    "pods/exec",
                    "pods/portforward",
                    "pods/proxy",
                    "secrets",
                    "services/proxy",
                ],
                &READ,
            ),
            rule("", &["serviceaccounts"], &["impersonate"]),
            rule(
                "",
                &[
                    "pods",
                    "pods/attach",
                    "pods/exec",
                    "pods/portforward",
                    "pods/proxy",
                ],
                &WRITE,
            ),
            rule("", &["pods/eviction"], &["create"]),
            rule(
                "",
                &[
                    "configmaps",
                    "events",
                    "persistentvolumeclaims",
                    "replicationcontrollers",
                    "replicationcontrollers/scale",
                    "secrets",
                    "serviceaccounts",
                    "services",
                    "services/proxy",
                ],
                &WRITE,
            ),
            rule("", &["serviceaccounts/token"], &["create"]),
            rule(
                "apps",
                &[
                    "daemonsets",
                    "deployments",
                    "deployments/rollback",
                    "deployments/scale",
                    "replicasets",
                    "replicasets/scale",
                    "statefulsets",
                    "statefulsets/scale",
                ],
                &WRITE,
            ),
            rule("autoscaling", &["horizontalpodautoscalers"], &WRITE),
            rule("batch", &["cronjobs", "jobs"], &WRITE),
            rule(
                "extensions",
                &[
                    "daemonsets",
                    "deployments",
                    "deployments/rollback",
                    "deployments/scale",
                    "ingresses",
                    "networkpolicies",
                    "replicasets",
                    "replicasets/scale",
                    "replicationcontrollers/scale",
                ],
                &WRITE,
            ),
            rule("policy", &["poddisruptionbudgets"], &WRITE),
            rule(
                "networking.k8s.io",
                &["ingresses", "networkpolicies"],
                &WRITE,
            ),
            rule("coordination.k8s.io", &["leases"], &READ_WRITE),
        ],
        "admin" => vec![
            rule(
                "authorization.k8s.io",
                &["localsubjectaccessreviews"],
                &["create"],
            ),
            rule(
                "rbac.authorization.k8s.io",
                &["rolebindings", "roles"],
                &READ_WRITE,
            ),
        ],
        _ => vec![],
    }
}

/// The rules of the aggregated ClusterRole `role` (`admin`, `edit`, `view`) as the
/// aggregation controller fills them in: the rules of every ClusterRole carrying its
/// `rbac.authorization.k8s.io/aggregate-to-<role>` label, those roles taken by name, each
/// rule once. `edit` is labelled to aggregate into `admin` and `view` into `edit`, so admin
/// holds edit's and edit holds view's. The operator's chart (release 1.15.0,
/// `helm/flink-kubernetes-operator/templates/`) ships no ClusterRole with such a label, so
/// none of them grants `flinkdeployments`.
fn aggregated_rules(role: &str) -> Vec<Value> {
    let sources: Vec<Vec<Value>> = match role {
        // "edit" sorts before "system:aggregate-to-admin".
        "admin" => vec![aggregated_rules("edit"), aggregate_to("admin")],
        // "system:aggregate-to-edit" sorts before "view".
        "edit" => vec![aggregate_to("edit"), aggregated_rules("view")],
        "view" => vec![aggregate_to("view")],
        _ => vec![],
    };
    let mut rules: Vec<Value> = Vec::new();
    for rule in sources.into_iter().flatten() {
        if !rules.contains(&rule) {
            rules.push(rule);
        }
    }
    rules
}

/// The built-in ClusterRoles and bindings every cluster has that the stand-in's requests
/// meet: `cluster-admin` for `system:masters`; `system:basic-user`, through which every
/// authenticated user may ask what it may do (`kubectl auth can-i`); and the user-facing
/// roles a platform team binds in a namespace, `admin`, `edit` and `view` (with their
/// `aggregationRule` and the aggregated rules already filled in) and the
/// `system:aggregate-to-*` roles they gather.
fn bootstrap_rbac() -> Vec<(&'static ResourceDef, Value)> {
    let bootstrap = json!({"kubernetes.io/bootstrapping": "rbac-defaults"});
    let role = |name: &str, rules: Value| {
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": name, "labels": bootstrap,
                "annotations": {"rbac.authorization.kubernetes.io/autoupdate": "true"}},
            "rules": rules})
    };
    let aggregated = |name: &str, aggregates_into: Option<&str>| {
        let mut object = role(name, json!(aggregated_rules(name)));
        object["aggregationRule"] = json!({"clusterRoleSelectors": [
            {"matchLabels": {format!("rbac.authorization.k8s.io/aggregate-to-{name}"): "true"}}]});
        if let Some(into) = aggregates_into {
            object["metadata"]["labels"]
                [format!("rbac.authorization.k8s.io/aggregate-to-{into}")] = json!("true");
        }
        object
    };
    let gathered = |name: &str| {
        let mut object = role(
            &format!("system:aggregate-to-{name}"),
            json!(aggregate_to(name)),
        );
        object["metadata"]["labels"][format!("rbac.authorization.k8s.io/aggregate-to-{name}")] =
            json!("true");
        object
    };
    let binding = |name: &str, group: &str| {
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
            "metadata": {"name": name, "labels": bootstrap,
                "annotations": {"rbac.authorization.kubernetes.io/autoupdate": "true"}},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": group}]})
    };
    vec![
        (
            &CLUSTER_ROLES,
            role(
                "cluster-admin",
                json!([{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
                    {"nonResourceURLs": ["*"], "verbs": ["*"]}]),
            ),
        ),
        (&CLUSTER_ROLE_BINDINGS, binding("cluster-admin", MASTERS)),
        (
            &CLUSTER_ROLES,
            role(
                "system:basic-user",
                json!([{"apiGroups": ["authorization.k8s.io"],
                    "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
                    "verbs": ["create"]}]),
            ),
        ),
        (
            &CLUSTER_ROLE_BINDINGS,
            binding("system:basic-user", AUTHENTICATED),
        ),
        (&CLUSTER_ROLES, aggregated("admin", None)),
        (&CLUSTER_ROLES, aggregated("edit", Some("admin"))),
        (&CLUSTER_ROLES, aggregated("view", Some("edit"))),
        (&CLUSTER_ROLES, gathered("admin")),
        (&CLUSTER_ROLES, gathered("edit")),
        (&CLUSTER_ROLES, gathered("view")),
    ]
}

/// The operator's configuration file as the chart renders it (`conf/flink-conf.yaml` with the
/// values' overrides appended, then the watched namespaces and the health probe).
pub(crate) fn operator_config_file(watched: &[String]) -> String {
    let mut text = String::from(
        "# Flink Kubernetes Operator defaults (conf/flink-conf.yaml)\n\
         taskmanager.numberOfTaskSlots: 1\n\
         parallelism.default: 1\n\
         # Flink Config Overrides\n\
         kubernetes.operator.metrics.reporter.slf4j.factory.class: org.apache.flink.metrics.slf4j.Slf4jReporterFactory\n\
         kubernetes.operator.metrics.reporter.slf4j.interval: 5 MINUTE\n\
         \n\
         kubernetes.operator.reconcile.interval: 15 s\n\
         kubernetes.operator.observer.progress-check.interval: 5 s\n",
    );
    if !watched.is_empty() {
        text.push_str(&format!(
            "{WATCHED_NAMESPACES_KEY}: {}\n",
            watched.join(",")
        ));
    }
    text.push_str(
        "kubernetes.operator.health.probe.enabled: true\n\
         kubernetes.operator.health.probe.port: 8085\n",
    );
    text
}

/// The watched namespaces a configuration file lists; empty means all namespaces.
pub(crate) fn watched_namespaces(config_file: &str) -> Vec<String> {
    config_file
        .lines()
        .filter_map(|line| {
            let (key, value) = line.split_once(':')?;
            (key.trim() == WATCHED_NAMESPACES_KEY).then_some(value)
        })
        .next_back()
        .map(|value| {
            value
                .split(',')
                .map(|ns| ns.trim().trim_matches(|c| c == '"' || c == '\'').to_owned())
                .filter(|ns| !ns.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

/// The watched namespaces of the operator's ConfigMap (`config.yaml`, else `flink-conf.yaml`);
/// `None` when the ConfigMap is missing (the operator then runs on its defaults: all).
pub(crate) fn watched_namespaces_of(config_map: &Value) -> Vec<String> {
    let data = config_map.get("data");
    let file = ["config.yaml", "flink-conf.yaml"]
        .iter()
        .find_map(|key| data.and_then(|d| d.get(*key)).and_then(Value::as_str));
    file.map(watched_namespaces).unwrap_or_default()
}

/// Whether the operator watches `namespace`, by its ConfigMap as stored now.
pub(crate) fn operator_watches(api: &ApiServer, operator_namespace: &str, namespace: &str) -> bool {
    let Ok(config) = api.get(&CONFIG_MAPS, operator_namespace, OPERATOR_CONFIG) else {
        return true;
    };
    let watched = watched_namespaces_of(&config);
    watched.is_empty() || watched.iter().any(|w| w == namespace)
}

/// Whether the operator runs: its Deployment exists with at least one replica wanted.
pub(crate) fn operator_running(api: &ApiServer, operator_namespace: &str) -> bool {
    api.get(&DEPLOYMENTS, operator_namespace, OPERATOR_NAME)
        .is_ok_and(|d| {
            d.pointer("/spec/replicas")
                .and_then(Value::as_i64)
                .is_none_or(|r| r > 0)
        })
}

fn operator_deployment(namespace: &str) -> Value {
    let image = format!("ghcr.io/apache/flink-kubernetes-operator:{OPERATOR_VERSION}");
    let selector = json!({"app.kubernetes.io/name": OPERATOR_NAME});
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": OPERATOR_NAME, "namespace": namespace, "labels": labels(),
            "annotations": {"meta.helm.sh/release-name": OPERATOR_NAME, "meta.helm.sh/release-namespace": namespace}},
        "spec": {
            "replicas": 1,
            "strategy": {"type": "Recreate"},
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {"labels": selector, "annotations": {"kubectl.kubernetes.io/default-container": OPERATOR_NAME}},
                "spec": {
                    "securityContext": {"runAsUser": 9999, "runAsGroup": 9999},
                    "serviceAccountName": "flink-operator",
                    "containers": [
                        {"name": OPERATOR_NAME, "image": image, "imagePullPolicy": "IfNotPresent",
                            "command": ["/docker-entrypoint.sh", "operator"],
                            "ports": [{"containerPort": 8085, "name": "health-port", "protocol": "TCP"}],
                            "env": [{"name": "OPERATOR_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
                                {"name": "OPERATOR_NAME", "value": OPERATOR_NAME},
                                {"name": "FLINK_CONF_DIR", "value": "/opt/flink/conf"}],
                            "volumeMounts": [{"name": "flink-operator-config-volume", "mountPath": "/opt/flink/conf"}]},
                        {"name": "flink-webhook", "image": image, "imagePullPolicy": "IfNotPresent",
                            "command": ["/docker-entrypoint.sh", "webhook"]},
                    ],
                    "volumes": [{"name": "flink-operator-config-volume", "configMap": {"name": OPERATOR_CONFIG}}],
                },
            },
        },
    })
}

fn operator_deployment_status() -> Value {
    let now = crate::meta::now_rfc3339();
    json!({
        "observedGeneration": 1, "replicas": 1, "updatedReplicas": 1, "readyReplicas": 1, "availableReplicas": 1,
        "conditions": [
            {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable",
                "message": "Deployment has minimum availability.", "lastTransitionTime": now, "lastUpdateTime": now},
            {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable",
                "message": format!("ReplicaSet \"{OPERATOR_NAME}-5d4f8c7b9d\" has successfully progressed."),
                "lastTransitionTime": now, "lastUpdateTime": now},
        ],
    })
}

/// A CRD as the API server stores it once established.
fn crd_object(path: &Path) -> Result<Value, ApiError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ApiError::internal(format!("cannot read the CRD {}: {e}", path.display())))?;
    let mut crd: Value = serde_saphyr::from_str(&text)
        .map_err(|e| ApiError::internal(format!("the CRD {} is not YAML: {e}", path.display())))?;
    let names = crd.pointer("/spec/names").cloned().unwrap_or(Value::Null);
    let stored: Vec<Value> = crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .map(|vs| {
            vs.iter()
                .filter(|v| v.get("storage") == Some(&Value::Bool(true)))
                .filter_map(|v| v.get("name").cloned())
                .collect()
        })
        .unwrap_or_default();
    let now = crate::meta::now_rfc3339();
    crd["status"] = json!({
        "acceptedNames": names,
        "storedVersions": stored,
        "conditions": [
            {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts", "message": "no conflicts found", "lastTransitionTime": now},
            {"type": "Established", "status": "True", "reason": "InitialNamesAccepted", "message": "the initial names have been accepted", "lastTransitionTime": now},
        ],
    });
    Ok(crd)
}

/// What the chart installs.
#[derive(Clone, Debug)]
pub(crate) struct Install<'a> {
    /// The release namespace.
    pub(crate) namespace: &'a str,
    /// `watchNamespaces`.
    pub(crate) watched: &'a [String],
    /// The CRD files (`crds/` of the chart).
    pub(crate) crds: &'a [&'a Path],
}

/// Creates the bootstrap RBAC; then, with `install`, what the chart creates.
pub(crate) fn populate(api: &ApiServer, install: Option<&Install<'_>>) -> Result<(), ApiError> {
    let apiserver = WriteOptions::internal("kube-apiserver");
    for (res, object) in bootstrap_rbac() {
        api.create(res, "", object, &apiserver)?;
    }
    let Some(install) = install else {
        return Ok(());
    };
    let helm = WriteOptions::internal("helm");
    for crd in install.crds {
        api.create(&CUSTOM_RESOURCE_DEFINITIONS, "", crd_object(crd)?, &helm)?;
    }
    let ns = install.namespace;
    let job_namespaces: Vec<&str> = if install.watched.is_empty() {
        vec![ns]
    } else {
        install.watched.iter().map(String::as_str).collect()
    };
    for namespace in std::iter::once(ns).chain(job_namespaces.iter().copied()) {
        if api.get(&NAMESPACES, "", namespace).is_err() {
            api.create(
                &NAMESPACES,
                "",
                json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}),
                &apiserver,
            )?;
        }
    }
    let create = |res: &'static ResourceDef, namespace: &str, object: Value| {
        api.create(res, namespace, object, &helm).map(|_| ())
    };
    create(
        &SERVICE_ACCOUNTS,
        ns,
        json!({"apiVersion": "v1", "kind": "ServiceAccount",
            "metadata": {"name": "flink-operator", "namespace": ns, "labels": labels()}}),
    )?;
    create(
        &CLUSTER_ROLES,
        "",
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": "flink-operator", "labels": labels()},
        "rules": [
            {"apiGroups": [""], "resources": ["pods", "services", "events", "configmaps", "secrets"],
                "verbs": ["get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"]},
            {"apiGroups": ["apps"], "resources": ["deployments", "deployments/finalizers", "replicasets"],
                "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"]},
            {"apiGroups": ["flink.apache.org"],
                "resources": ["flinkdeployments", "flinkdeployments/finalizers", "flinksessionjobs",
                    "flinksessionjobs/finalizers", "flinkstatesnapshots", "flinkstatesnapshots/finalizers"],
                "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"]},
            {"apiGroups": ["flink.apache.org"],
                "resources": ["flinkdeployments/status", "flinksessionjobs/status", "flinkstatesnapshots/status"],
                "verbs": ["get", "update", "patch"]},
            {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
                "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"]},
        ]}),
    )?;
    create(
        &CLUSTER_ROLE_BINDINGS,
        "",
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
            "metadata": {"name": "flink-operator-role-binding", "labels": labels()},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "flink-operator"},
            "subjects": [{"kind": "ServiceAccount", "name": "flink-operator", "namespace": ns}]}),
    )?;
    let config = operator_config_file(install.watched);
    create(
        &CONFIG_MAPS,
        ns,
        json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": OPERATOR_CONFIG, "namespace": ns, "labels": labels()},
        "data": {
            "config.yaml": config,
            "flink-conf.yaml": config,
            "log4j-operator.properties": "# Flink Operator Logging Overrides\n",
            "log4j-console.properties": "# Flink Deployment Logging Overrides\n",
        }}),
    )?;
    let deployment = api.create(&DEPLOYMENTS, ns, operator_deployment(ns), &helm)?;
    let mut with_status = (*deployment.object).clone();
    with_status["status"] = operator_deployment_status();
    api.replace(
        &DEPLOYMENTS,
        ns,
        OPERATOR_NAME,
        crate::apply::Part::Status,
        with_status,
        &WriteOptions::internal("kube-controller-manager"),
    )?;
    for namespace in job_namespaces {
        create(
            &SERVICE_ACCOUNTS,
            namespace,
            json!({"apiVersion": "v1", "kind": "ServiceAccount",
                "metadata": {"name": JOB_SERVICE_ACCOUNT, "namespace": namespace, "labels": labels(), "annotations": keep()}}),
        )?;
        create(
            &ROLES,
            namespace,
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                "metadata": {"name": JOB_ROLE, "namespace": namespace, "labels": labels(), "annotations": keep()},
                "rules": chart_job_rules()}),
        )?;
        create(
            &ROLE_BINDINGS,
            namespace,
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                "metadata": {"name": JOB_ROLE_BINDING, "namespace": namespace, "labels": labels(), "annotations": keep()},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": JOB_ROLE},
                "subjects": [{"kind": "ServiceAccount", "name": JOB_SERVICE_ACCOUNT, "namespace": namespace}]}),
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_file_lists_watched_namespaces_as_the_chart_renders_them() {
        let all = operator_config_file(&[]);
        assert!(!all.contains(WATCHED_NAMESPACES_KEY));
        assert!(watched_namespaces(&all).is_empty());
        let two = operator_config_file(&["a".into(), "b".into()]);
        assert!(two.contains("kubernetes.operator.watched.namespaces: a,b\n"));
        assert_eq!(watched_namespaces(&two), vec!["a", "b"]);
        assert_eq!(
            watched_namespaces("kubernetes.operator.watched.namespaces: \"x\" , y\n"),
            vec!["x", "y"]
        );
        let cm = json!({"data": {"flink-conf.yaml": "kubernetes.operator.watched.namespaces: z"}});
        assert_eq!(watched_namespaces_of(&cm), vec!["z"]);
    }
}

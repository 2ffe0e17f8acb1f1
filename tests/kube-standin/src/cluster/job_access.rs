//! What Flink's JobManager asks the Kubernetes API as the job's service account
//! (`spec.serviceAccount`) in native mode, through the same authorizer as every request: with
//! Kubernetes HA it creates its leader ConfigMaps; its resource manager watches and creates
//! the TaskManager pods. A refusal is what the JobManager's fabric8 client logs before the
//! process exits.

use serde_json::Value;

use super::flink_cluster::flink_log_line;
use crate::api::ApiServer;
use crate::meta;
use crate::rbac::{self, Attributes, Policy, UserInfo};

/// Whether the FlinkDeployment's configuration turns on Kubernetes HA.
pub(super) fn kubernetes_ha(fd: &Value) -> bool {
    let config = meta::get_path(fd, &["spec", "flinkConfiguration"]);
    let value = |key: &str| config.and_then(|c| c.get(key)).and_then(Value::as_str);
    value("high-availability.type") == Some("kubernetes")
        || value("high-availability") == Some("kubernetes")
        || value("high-availability").is_some_and(|v| v.ends_with("KubernetesHaServicesFactory"))
}

/// The first call the JobManager makes that RBAC refuses: its attributes, the HTTP method and
/// path the client used, and the refusal's message.
#[derive(Debug)]
pub(super) struct Denied {
    pub(super) method: &'static str,
    pub(super) path: String,
    pub(super) message: String,
}

/// The JobManager's calls in the order it makes them; the first one refused, if any.
pub(super) fn first_denied(
    api: &ApiServer,
    namespace: &str,
    service_account: &str,
    ha: bool,
) -> Option<Denied> {
    let policy = Policy::read(&api.store);
    let user = UserInfo::service_account(namespace, service_account);
    let mut calls = Vec::new();
    if ha {
        calls.push(("create", "configmaps", "POST", "configmaps".to_owned()));
    }
    calls.push((
        "watch",
        "pods",
        "GET",
        "pods?labelSelector=type%3Dflink-native-kubernetes&watch=true".to_owned(),
    ));
    calls.push(("create", "pods", "POST", "pods".to_owned()));
    calls
        .into_iter()
        .find_map(|(verb, resource, method, path)| {
            let attrs = Attributes {
                user: user.clone(),
                verb: verb.to_owned(),
                api_group: String::new(),
                resource: resource.to_owned(),
                subresource: String::new(),
                namespace: namespace.to_owned(),
                name: String::new(),
            };
            let decision = policy.authorize(&attrs);
            (!decision.allowed).then(|| Denied {
                method,
                path: format!("https://10.100.0.1/api/v1/namespaces/{namespace}/{path}"),
                message: rbac::forbidden(&attrs, &decision.reason).message,
            })
        })
}

/// What the JobManager logs when the call is refused, then exits: the fabric8 client's
/// exception inside the entrypoint's fatal error.
pub(super) fn denied_log(denied: &Denied) -> Vec<String> {
    vec![
        flink_log_line(
            "org.apache.flink.runtime.entrypoint.ClusterEntrypoint",
            "Fatal error occurred in the cluster entrypoint.",
        ),
        format!(
            "io.fabric8.kubernetes.client.KubernetesClientException: Failure executing: {} at: {}. Message: Forbidden!Configured service account doesn't have access. Service account may have been revoked. {}.",
            denied.method, denied.path, denied.message
        ),
        flink_log_line(
            "org.apache.flink.runtime.entrypoint.ClusterEntrypoint",
            "Terminating cluster entrypoint process KubernetesApplicationClusterEntrypoint with exit code 1.",
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn kubernetes_ha_is_read_from_the_flink_configuration() {
        let fd = |config: Value| json!({"spec": {"flinkConfiguration": config}});
        assert!(kubernetes_ha(&fd(
            json!({"high-availability.type": "kubernetes"})
        )));
        assert!(kubernetes_ha(&fd(
            json!({"high-availability": "org.apache.flink.kubernetes.highavailability.KubernetesHaServicesFactory"})
        )));
        assert!(!kubernetes_ha(&fd(
            json!({"high-availability.type": "NONE"})
        )));
        assert!(!kubernetes_ha(&json!({"spec": {}})));
    }

    #[test]
    fn the_log_carries_the_api_servers_sentence() {
        let denied = Denied {
            method: "POST",
            path: "https://10.100.0.1/api/v1/namespaces/ns/pods".into(),
            message: "pods is forbidden: User \"system:serviceaccount:ns:sa\" cannot create resource \"pods\" in API group \"\" in the namespace \"ns\"".into(),
        };
        let log = denied_log(&denied).join("\n");
        assert!(log.contains("Failure executing: POST at: https://10.100.0.1/api/v1/namespaces/ns/pods. Message: Forbidden!"));
        assert!(log.contains("pods is forbidden: User \"system:serviceaccount:ns:sa\" cannot create resource \"pods\""));
    }
}

//! `Table` responses (`Accept: application/json;as=Table;g=meta.k8s.io;v=v1`), which
//! `kubectl get` asks for: server-side columns per resource, and for FlinkDeployments the
//! CRD's `additionalPrinterColumns`.

use std::sync::Arc;

use serde_json::{Value, json};

use crate::meta;
use crate::resources::{self, ResourceDef};
use crate::schema::CrdSchema;

/// Whether an `Accept` header asks for a Table.
pub(crate) fn wanted(accept: &str) -> bool {
    accept
        .split(',')
        .next()
        .is_some_and(|first| first.contains("as=Table"))
}

fn column(name: &str, column_type: &str, format: &str, description: &str, priority: i64) -> Value {
    json!({"name": name, "type": column_type, "format": format, "description": description, "priority": priority})
}

fn name_column() -> Value {
    column(
        "Name",
        "string",
        "name",
        "Name must be unique within a namespace. Is required when creating resources.",
        0,
    )
}

fn age_column() -> Value {
    column(
        "Age",
        "date",
        "",
        "CreationTimestamp is a timestamp representing the server time when this object was created.",
        0,
    )
}

/// Builds a Table of `objects`. `include_object` is the `includeObject` parameter:
/// `None`, `Metadata` (the default) or `Object`.
pub(crate) fn build(
    res: &ResourceDef,
    objects: &[Arc<Value>],
    resource_version: u64,
    schema: &CrdSchema,
    include_object: Option<&str>,
) -> Value {
    let mut columns = Vec::new();
    let rows: Vec<Value> = objects
        .iter()
        .map(|object| {
            let age = Value::String(meta::age(
                meta::meta_str(object, "creationTimestamp").unwrap_or(""),
            ));
            let name = Value::String(meta::name(object).to_owned());
            let cells = cells(res, object, schema, name, age);
            let mut row = json!({"cells": cells});
            let embedded = match include_object {
                Some("None") => None,
                Some("Object") => Some((**object).clone()),
                _ => Some(json!({
                    "kind": "PartialObjectMetadata",
                    "apiVersion": "meta.k8s.io/v1",
                    "metadata": object.get("metadata").cloned().unwrap_or_else(|| json!({})),
                })),
            };
            if let (Some(embedded), Value::Object(map)) = (embedded, &mut row) {
                map.insert("object".into(), embedded);
            }
            row
        })
        .collect();
    columns.extend(column_definitions(res, schema));
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": resource_version.to_string()},
        "columnDefinitions": columns,
        "rows": rows,
    })
}

fn column_definitions(res: &ResourceDef, schema: &CrdSchema) -> Vec<Value> {
    let string = |name: &str, description: &str| column(name, "string", "", description, 0);
    let integer = |name: &str, description: &str| column(name, "integer", "", description, 0);
    if res == &resources::FLINK_DEPLOYMENTS {
        let mut columns = vec![name_column()];
        columns.extend(schema.printer_columns().iter().map(|c| {
            column(
                &c.name,
                &c.column_type,
                &c.format,
                &c.description,
                c.priority,
            )
        }));
        columns.push(age_column());
        return columns;
    }
    if res == &resources::PODS {
        return vec![
            name_column(),
            string(
                "Ready",
                "The aggregate readiness state of this pod for accepting traffic.",
            ),
            string(
                "Status",
                "The aggregate status of the containers in this pod.",
            ),
            string(
                "Restarts",
                "The number of times the containers in this pod have been restarted.",
            ),
            age_column(),
        ];
    }
    if res == &resources::DEPLOYMENTS {
        return vec![
            name_column(),
            string("Ready", "Number of the pod with ready state"),
            integer(
                "Up-to-date",
                "Total number of non-terminated pods targeted by this deployment that have the desired template spec.",
            ),
            integer(
                "Available",
                "Total number of available pods (ready for at least minReadySeconds) targeted by this deployment.",
            ),
            age_column(),
        ];
    }
    if res == &resources::SERVICE_ACCOUNTS {
        return vec![
            name_column(),
            integer(
                "Secrets",
                "Secrets is a list of the secrets in the same namespace.",
            ),
            age_column(),
        ];
    }
    if res == &resources::NAMESPACES {
        return vec![
            name_column(),
            string("Status", "The status of the namespace"),
            age_column(),
        ];
    }
    if res == &resources::EVENTS {
        return vec![
            string("Last Seen", "Time when this Event was last observed."),
            string("Type", "Type of this event (Normal, Warning)."),
            string(
                "Reason",
                "This should be a short, machine understandable string.",
            ),
            string("Object", "The object that this event is about."),
            string(
                "Message",
                "A human-readable description of the status of this operation.",
            ),
        ];
    }
    if res == &resources::SERVICES {
        return vec![
            name_column(),
            string("Type", "type determines how the Service is exposed."),
            string("Cluster-IP", "clusterIP is the IP address of the service."),
            string("External-IP", "externalIPs is a list of IP addresses."),
            string(
                "Port(s)",
                "The list of ports that are exposed by this service.",
            ),
            age_column(),
        ];
    }
    if res == &resources::NODES {
        return vec![
            name_column(),
            string("Status", "The status of the node"),
            string("Roles", "The roles of the node"),
            age_column(),
            string("Version", "Kubelet Version reported by the node."),
        ];
    }
    if res == &resources::CONFIG_MAPS {
        return vec![
            name_column(),
            integer("Data", "Data contains the configuration data."),
            age_column(),
        ];
    }
    vec![name_column(), age_column()]
}

fn cells(
    res: &ResourceDef,
    object: &Value,
    schema: &CrdSchema,
    name: Value,
    age: Value,
) -> Vec<Value> {
    let at = |path: &[&str]| meta::get_path(object, path).cloned().unwrap_or(Value::Null);
    if res == &resources::FLINK_DEPLOYMENTS {
        let mut cells = vec![name];
        cells.extend(schema.printer_columns().iter().map(|c| c.cell(object)));
        cells.push(age);
        return cells;
    }
    if res == &resources::PODS {
        let (ready, total, restarts) = container_counts(object);
        return vec![
            name,
            json!(format!("{ready}/{total}")),
            json!(pod_status(object)),
            json!(restarts.to_string()),
            age,
        ];
    }
    if res == &resources::DEPLOYMENTS {
        let desired = at(&["spec", "replicas"]).as_i64().unwrap_or(1);
        let ready = at(&["status", "readyReplicas"]).as_i64().unwrap_or(0);
        let updated = at(&["status", "updatedReplicas"]).as_i64().unwrap_or(0);
        let available = at(&["status", "availableReplicas"]).as_i64().unwrap_or(0);
        return vec![
            name,
            json!(format!("{ready}/{desired}")),
            json!(updated),
            json!(available),
            age,
        ];
    }
    if res == &resources::SERVICE_ACCOUNTS {
        let secrets = at(&["secrets"]).as_array().map_or(0, Vec::len);
        return vec![name, json!(secrets), age];
    }
    if res == &resources::NAMESPACES {
        return vec![name, at(&["status", "phase"]), age];
    }
    if res == &resources::EVENTS {
        let last = at(&["lastTimestamp"]);
        let last_seen = last
            .as_str()
            .map(meta::age)
            .unwrap_or_else(|| "<unknown>".into());
        let object_ref = format!(
            "{}/{}",
            at(&["involvedObject", "kind"])
                .as_str()
                .unwrap_or("")
                .to_lowercase(),
            at(&["involvedObject", "name"]).as_str().unwrap_or("")
        );
        return vec![
            json!(last_seen),
            at(&["type"]),
            at(&["reason"]),
            json!(object_ref),
            at(&["message"]),
        ];
    }
    if res == &resources::SERVICES {
        let ports: Vec<String> = at(&["spec", "ports"])
            .as_array()
            .map(|ports| {
                ports
                    .iter()
                    .map(|p| format!("{}/{}", p["port"], p["protocol"].as_str().unwrap_or("TCP")))
                    .collect()
            })
            .unwrap_or_default();
        return vec![
            name,
            at(&["spec", "type"]),
            at(&["spec", "clusterIP"]),
            json!("<none>"),
            json!(ports.join(",")),
            age,
        ];
    }
    if res == &resources::NODES {
        let ready = at(&["status", "conditions"]).as_array().is_some_and(|cs| {
            cs.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        });
        let mut status = if ready { "Ready" } else { "NotReady" }.to_owned();
        if at(&["spec", "unschedulable"]) == json!(true) {
            status.push_str(",SchedulingDisabled");
        }
        return vec![
            name,
            json!(status),
            json!("<none>"),
            age,
            at(&["status", "nodeInfo", "kubeletVersion"]),
        ];
    }
    if res == &resources::CONFIG_MAPS {
        let data = at(&["data"]).as_object().map_or(0, serde_json::Map::len);
        return vec![name, json!(data), age];
    }
    vec![name, age]
}

fn container_counts(pod: &Value) -> (usize, usize, i64) {
    let statuses = meta::get_path(pod, &["status", "containerStatuses"]).and_then(Value::as_array);
    let total = meta::get_path(pod, &["spec", "containers"])
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    let ready = statuses.map_or(0, |s| {
        s.iter().filter(|c| c["ready"] == json!(true)).count()
    });
    let restarts = statuses.map_or(0, |s| {
        s.iter().filter_map(|c| c["restartCount"].as_i64()).sum()
    });
    (ready, total, restarts)
}

/// The STATUS column of `kubectl get pods`: the phase, or why a container is not running.
pub(crate) fn pod_status(pod: &Value) -> String {
    let inits = meta::get_path(pod, &["status", "initContainerStatuses"]).and_then(Value::as_array);
    if let Some(inits) = inits {
        let total = inits.len();
        for (i, status) in inits.iter().enumerate() {
            if let Some(reason) = status["state"]["waiting"]["reason"]
                .as_str()
                .filter(|r| *r != "PodInitializing")
            {
                return format!("Init:{reason}");
            }
            if status["state"]["terminated"]["exitCode"]
                .as_i64()
                .is_some_and(|c| c != 0)
            {
                return "Init:Error".into();
            }
            if status["state"].get("terminated").is_none() {
                return format!("Init:{i}/{total}");
            }
        }
    }
    let containers =
        meta::get_path(pod, &["status", "containerStatuses"]).and_then(Value::as_array);
    if let Some(containers) = containers {
        for status in containers {
            if let Some(reason) = status["state"]["waiting"]["reason"].as_str() {
                return reason.to_owned();
            }
        }
    }
    meta::get_path(pod, &["status", "phase"])
        .and_then(Value::as_str)
        .unwrap_or("Pending")
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubectl_get_accept_headers_ask_for_tables() {
        assert!(wanted(
            "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"
        ));
        assert!(!wanted("application/json"));
        assert!(!wanted("application/json, application/json;as=Table"));
    }

    #[test]
    fn pod_status_reads_like_kubectl() {
        let pulling = json!({"status": {"phase": "Pending", "containerStatuses": [{"state": {"waiting": {"reason": "ImagePullBackOff"}}}]}});
        assert_eq!(pod_status(&pulling), "ImagePullBackOff");
        let init = json!({"status": {"phase": "Pending", "initContainerStatuses": [{"state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}});
        assert_eq!(pod_status(&init), "Init:CrashLoopBackOff");
        let running = json!({"status": {"phase": "Running", "initContainerStatuses": [{"state": {"terminated": {"exitCode": 0}}}],
            "containerStatuses": [{"state": {"running": {}}}]}});
        assert_eq!(pod_status(&running), "Running");
    }
}

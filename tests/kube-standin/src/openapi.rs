//! A minimal OpenAPI v3 document set, enough for kubectl.
//!
//! kubectl (with `--validate=strict`, its default) asks `/openapi/v3` whether the server
//! supports the `fieldValidation` query parameter for the kind it sends: it looks for the
//! PATCH operation tagged with the kind's `x-kubernetes-group-version-kind` and a
//! `fieldValidation` query parameter. When found, it leaves validation to the server (which
//! here validates FlinkDeployments against the CRD). Without any OpenAPI, kubectl refuses
//! to apply ("failed to download openapi"). The documents carry no schemas: `kubectl
//! explain` and client-side validation do not work, and `/openapi/v2` is not served.

use serde_json::{Map, Value, json};

use crate::resources::{self, GROUPS, ResourceDef};

/// The path of a group-version's document: `api/v1`, `apis/apps/v1`.
fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

fn group_versions() -> Vec<(&'static str, &'static str)> {
    std::iter::once(("", "v1"))
        .chain(GROUPS.iter().copied())
        .collect()
}

/// `GET /openapi/v3`: the index of group-version documents.
pub(crate) fn index() -> Value {
    let paths: Map<String, Value> = group_versions()
        .into_iter()
        .map(|(group, version)| {
            let path = gv_path(group, version);
            let url = format!("/openapi/v3/{path}?hash=kube-standin-1");
            (path, json!({"serverRelativeURL": url}))
        })
        .collect();
    json!({"paths": paths})
}

fn query(name: &str) -> Value {
    json!({"name": name, "in": "query", "schema": {"type": "string", "uniqueItems": true}})
}

fn operation(res: &ResourceDef, action: &str, with_write_params: bool) -> Value {
    let mut parameters = vec![];
    if with_write_params {
        parameters.extend(["dryRun", "fieldManager", "fieldValidation"].map(query));
    }
    if action == "patch" {
        parameters.push(json!({"name": "force", "in": "query", "schema": {"type": "boolean", "uniqueItems": true}}));
    }
    json!({
        "operationId": format!("{action}{}", res.kind),
        "parameters": parameters,
        "responses": {"200": {"description": "OK"}},
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": {"group": res.group, "version": res.version, "kind": res.kind},
    })
}

/// `GET /openapi/v3/{api/v1 | apis/{group}/{version}}`, if served.
pub(crate) fn group_version(path: &str) -> Option<Value> {
    let (group, version) = group_versions()
        .into_iter()
        .find(|(g, v)| gv_path(g, v) == path)?;
    let mut paths = Map::new();
    for res in resources::in_group_version(group, version) {
        let prefix = format!("/{}", gv_path(group, version));
        let collection = if res.namespaced {
            format!("{prefix}/namespaces/{{namespace}}/{}", res.plural)
        } else {
            format!("{prefix}/{}", res.plural)
        };
        paths.insert(
            collection.clone(),
            json!({"get": operation(res, "list", false), "post": operation(res, "post", true)}),
        );
        paths.insert(
            format!("{collection}/{{name}}"),
            json!({
                "get": operation(res, "get", false),
                "put": operation(res, "put", true),
                "patch": operation(res, "patch", true),
                "delete": operation(res, "delete", false),
            }),
        );
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.33.0"},
        "paths": paths,
        "components": {"schemas": {}},
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_patch_operation_declares_field_validation() {
        let doc = group_version("apis/flink.apache.org/v1beta1").unwrap_or_default();
        let patch = &doc["paths"]["/apis/flink.apache.org/v1beta1/namespaces/{namespace}/flinkdeployments/{name}"]
            ["patch"];
        assert_eq!(
            patch["x-kubernetes-group-version-kind"]["kind"],
            "FlinkDeployment"
        );
        let names: Vec<&str> = patch["parameters"]
            .as_array()
            .map(|p| p.iter().filter_map(|p| p["name"].as_str()).collect())
            .unwrap_or_default();
        assert!(names.contains(&"fieldValidation"));
        assert!(
            index()["paths"]["api/v1"]["serverRelativeURL"]
                .as_str()
                .is_some_and(|u| u.starts_with("/openapi/v3/api/v1"))
        );
        assert!(group_version("apis/batch/v1").is_none());
    }
}

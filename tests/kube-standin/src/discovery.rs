//! Discovery documents: `/version`, `/api`, `/api/v1`, `/apis`, `/apis/{group}` and
//! `/apis/{group}/{version}`, in the legacy (unaggregated) format. Clients asking for
//! aggregated discovery (`as=APIGroupDiscoveryList`) also accept this format and fall back
//! to it, as they do with servers older than 1.26.

use serde_json::{Value, json};

use crate::resources::{self, GROUPS, ResourceDef};

/// The Kubernetes version the stand-in claims to be.
pub(crate) const KUBERNETES_VERSION: (&str, &str) = ("1", "33");

/// `GET /version`.
pub(crate) fn version() -> Value {
    let (major, minor) = KUBERNETES_VERSION;
    json!({
        "major": major,
        "minor": minor,
        "gitVersion": format!("v{major}.{minor}.0"),
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2025-01-01T00:00:00Z",
        "goVersion": "go1.24.0",
        "compiler": "gc",
        "platform": "linux/amd64",
    })
}

/// `GET /api`.
pub(crate) fn api_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    })
}

fn group(name: &str, version: &str) -> Value {
    let gv = json!({"groupVersion": format!("{name}/{version}"), "version": version});
    json!({"name": name, "versions": [gv.clone()], "preferredVersion": gv})
}

/// `GET /apis`.
pub(crate) fn api_group_list() -> Value {
    let groups: Vec<Value> = GROUPS
        .iter()
        .map(|(name, version)| group(name, version))
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `GET /apis/{group}`, if the group is served.
pub(crate) fn api_group(name: &str) -> Option<Value> {
    let (name, version) = GROUPS.iter().find(|(g, _)| *g == name)?;
    let mut doc = group(name, version);
    if let Value::Object(map) = &mut doc {
        map.insert("kind".into(), json!("APIGroup"));
        map.insert("apiVersion".into(), json!("v1"));
    }
    Some(doc)
}

fn resource_entry(res: &ResourceDef) -> Value {
    let mut entry = json!({
        "name": res.plural,
        "singularName": res.singular,
        "namespaced": res.namespaced,
        "kind": res.kind,
        "verbs": res.verbs(),
    });
    if let Value::Object(map) = &mut entry {
        if !res.short_names.is_empty() {
            map.insert("shortNames".into(), json!(res.short_names));
        }
        if !res.categories.is_empty() {
            map.insert("categories".into(), json!(res.categories));
        }
        if res.group.is_empty() {
            map.insert("storageVersionHash".into(), json!(""));
        }
    }
    entry
}

/// `GET /api/v1` or `GET /apis/{group}/{version}`, if served.
pub(crate) fn api_resource_list(group: &str, version: &str) -> Option<Value> {
    let mut entries = Vec::new();
    for res in resources::in_group_version(group, version) {
        entries.push(resource_entry(res));
        if res.status_subresource {
            entries.push(json!({
                "name": format!("{}/status", res.plural), "singularName": "", "namespaced": res.namespaced,
                "kind": res.kind, "verbs": ["get", "patch", "update"],
            }));
        }
        if res.log_subresource {
            entries.push(json!({
                "name": format!("{}/log", res.plural), "singularName": "", "namespaced": res.namespaced,
                "kind": res.kind, "verbs": ["get"],
            }));
        }
    }
    if entries.is_empty() {
        return None;
    }
    let group_version = if group.is_empty() {
        version.to_owned()
    } else {
        format!("{group}/{version}")
    };
    Some(
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": entries}),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discovery_lists_every_served_resource() {
        let core = api_resource_list("", "v1").unwrap_or_default();
        let names: Vec<&str> = core["resources"]
            .as_array()
            .map(|r| r.iter().filter_map(|e| e["name"].as_str()).collect())
            .unwrap_or_default();
        for expected in [
            "namespaces",
            "serviceaccounts",
            "pods",
            "pods/log",
            "events",
        ] {
            assert!(
                names.contains(&expected),
                "{expected} missing from {names:?}"
            );
        }
        let flink = api_resource_list("flink.apache.org", "v1beta1").unwrap_or_default();
        assert_eq!(flink["resources"][0]["shortNames"], json!(["flinkdep"]));
        assert_eq!(flink["resources"][1]["name"], "flinkdeployments/status");
        assert!(api_resource_list("batch", "v1").is_none());
        assert!(api_group("apps").is_some());
        assert_eq!(api_group_list()["groups"].as_array().map(Vec::len), Some(5));
        assert!(api_group("rbac.authorization.k8s.io").is_some());
        let authz = api_resource_list("authorization.k8s.io", "v1").unwrap_or_default();
        assert_eq!(authz["resources"][0]["verbs"], json!(["create"]));
    }
}

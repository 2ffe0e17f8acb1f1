//! The pure decisions of the apply: what differs between the fields applied and the live
//! object, whether what a plan rested on changed since, and what a refused apply means. No IO:
//! [`Submitter::plan`](super::Submitter::plan) and [`Submitter::apply`](super::Submitter::apply) read and write, then call these.

use std::collections::BTreeSet;

use flink_eks_manifest::{FIELD_MANAGER, FlinkDeployment, FlinkDeploymentSpec};
use flink_eks_plan::{Action, Stale};
use serde_json::Value;

use crate::error::{Error, from_kube};

use super::ApplyPlan;

/// The leaf paths of a JSON value: a scalar, a list (applied and compared whole, as the CRD's
/// lists are atomic) or an empty map; `null` is no field.
fn leaves(value: &Value, prefix: &mut Vec<String>, out: &mut Vec<(Vec<String>, Value)>) {
    match value {
        Value::Null => {}
        Value::Object(map) if !map.is_empty() => {
            for (key, child) in map {
                prefix.push(key.clone());
                leaves(child, prefix, out);
                prefix.pop();
            }
        }
        _ if prefix.is_empty() => {}
        other => out.push((prefix.clone(), other.clone())),
    }
}

/// The part of a FlinkDeployment that this tool applies and compares: spec, labels and
/// annotations, the spec read through the typed model (so `1` and `1.0` compare equal).
fn applied_part(deployment: &FlinkDeployment) -> Value {
    let spec = serde_json::to_value(&deployment.spec)
        .ok()
        .and_then(|v| serde_json::from_value::<FlinkDeploymentSpec>(v).ok())
        .and_then(|spec| serde_json::to_value(spec).ok())
        .unwrap_or(Value::Null);
    serde_json::json!({
        "metadata": {
            "labels": deployment.metadata.labels,
            "annotations": deployment.metadata.annotations,
        },
        "spec": spec,
    })
}

/// The leaf paths [`FIELD_MANAGER`]'s last apply set, from the live object's
/// `metadata.managedFields` (`FieldsV1`: `{"f:spec":{"f:image":{}}}`); `None` when the server
/// keeps no such entry.
fn owned_by_us(live: &FlinkDeployment) -> Option<BTreeSet<Vec<String>>> {
    fn read(tree: &Value, prefix: &mut Vec<String>, out: &mut BTreeSet<Vec<String>>) {
        let Some(map) = tree.as_object() else { return };
        let children: Vec<(&String, &Value)> =
            map.iter().filter(|(k, _)| k.starts_with("f:")).collect();
        if (children.is_empty() || map.contains_key(".")) && !prefix.is_empty() {
            out.insert(prefix.clone());
        }
        for (key, child) in children {
            prefix.push(key.trim_start_matches("f:").to_owned());
            read(child, prefix, out);
            prefix.pop();
        }
    }
    let entry = live
        .metadata
        .managed_fields
        .as_ref()?
        .iter()
        .find(|entry| {
            entry.manager.as_deref() == Some(FIELD_MANAGER)
                && entry.operation.as_deref() == Some("Apply")
                && entry.subresource.as_deref().unwrap_or_default().is_empty()
        })?;
    let mut owned = BTreeSet::new();
    read(&entry.fields_v1.as_ref()?.0, &mut Vec::new(), &mut owned);
    Some(owned)
}

/// What applying `desired` changes in `live`, as dotted paths; empty when nothing.
///
/// Only the fields `desired` sets are compared with the live object's values for them, so a
/// field set by another manager is no difference. A field this tool applied before (its
/// `managedFields` entry) that `desired` no longer sets is one: the apply removes it.
pub(super) fn differences(desired: &FlinkDeployment, live: &FlinkDeployment) -> Vec<String> {
    let (want, have) = (applied_part(desired), applied_part(live));
    let mut wanted = Vec::new();
    leaves(&want, &mut Vec::new(), &mut wanted);
    let at = |path: &[String]| path.iter().try_fold(&have, |node, key| node.get(key));
    let mut changed: Vec<String> = wanted
        .iter()
        .filter(|(path, value)| match (value, at(path)) {
            // An empty map asks only for the map.
            (Value::Object(_), Some(live)) => !live.is_object(),
            (value, live) => live != Some(value),
        })
        .map(|(path, _)| path.join("."))
        .collect();
    for path in no_longer_set(&wanted, live) {
        changed.push(format!("{} (removed)", path.join(".")));
    }
    changed
}

/// The fields of the applied part that [`FIELD_MANAGER`]'s last apply set (from `live`'s
/// `managedFields`) and that `wanted` no longer sets: the apply removes them.
fn no_longer_set(wanted: &[(Vec<String>, Value)], live: &FlinkDeployment) -> Vec<Vec<String>> {
    let applied_parts: [&[&str]; 3] = [
        &["spec"],
        &["metadata", "labels"],
        &["metadata", "annotations"],
    ];
    owned_by_us(live)
        .unwrap_or_default()
        .into_iter()
        .filter(|path| {
            let in_part = applied_parts.iter().any(|part| {
                path.len() > part.len() && path.iter().zip(part.iter()).all(|(a, b)| a == b)
            });
            let still_set = wanted
                .iter()
                .any(|(w, _)| w.starts_with(path) || path.starts_with(w));
            in_part && !still_set
        })
        .collect()
}

/// The live value at each field `desired` sets, and at each field [`FIELD_MANAGER`] set
/// before that `desired` no longer sets: the values [`differences`] compares. A field asked as an
/// empty map is recorded as an empty map when the live one is a map (its entries are not
/// compared).
pub(super) fn compared_values(
    desired: &FlinkDeployment,
    live: &FlinkDeployment,
) -> Vec<(Vec<String>, Option<Value>)> {
    let (want, have) = (applied_part(desired), applied_part(live));
    let mut wanted = Vec::new();
    leaves(&want, &mut Vec::new(), &mut wanted);
    let at = |path: &[String]| path.iter().try_fold(&have, |node, key| node.get(key));
    let mut compared: Vec<(Vec<String>, Option<Value>)> = wanted
        .iter()
        .map(|(path, value)| {
            let live = match (value, at(path)) {
                (Value::Object(_), Some(live)) if live.is_object() => Some(serde_json::json!({})),
                (_, live) => live.cloned(),
            };
            (path.clone(), live)
        })
        .collect();
    for path in no_longer_set(&wanted, live) {
        let live = at(&path).cloned();
        compared.push((path, live));
    }
    compared
}

/// What changed since the plan, in the words of [`Stale`]: the state planned on and the
/// state found.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Changed {
    pub(super) planned: String,
    pub(super) found: String,
}

/// Whether `live` is still what `plan` rested on: the same object (uid), every field compared
/// holding the value it held, the same differences, the same generation (a spec field this
/// tool does not set, changed by another writer, shows there). `None` when so; otherwise the
/// first change found.
pub(super) fn changed_since_planned(plan: &ApplyPlan, live: &FlinkDeployment) -> Option<Changed> {
    fn shown(value: Option<&Value>) -> String {
        const LONGEST: usize = 80;
        let Some(value) = value else {
            return "absent".to_owned();
        };
        let text = value.to_string();
        match text.char_indices().nth(LONGEST) {
            Some((cut, _)) => format!("{}…", &text[..cut]),
            None => text,
        }
    }
    if live.metadata.uid != plan.uid {
        return Some(Changed {
            planned: format!("uid {}", plan.uid.as_deref().unwrap_or("none")),
            found: format!(
                "another object, uid {}",
                live.metadata.uid.as_deref().unwrap_or("none")
            ),
        });
    }
    let now = compared_values(&plan.object, live);
    for (path, planned) in &plan.compared {
        let found = now
            .iter()
            .find(|(p, _)| p == path)
            .and_then(|(_, v)| v.as_ref());
        if planned.as_ref() != found {
            let path = path.join(".");
            return Some(Changed {
                planned: format!("{path} {}", shown(planned.as_ref())),
                found: format!("{path} {}", shown(found)),
            });
        }
    }
    let differences = differences(&plan.object, live);
    if differences != plan.differences {
        return Some(Changed {
            planned: format!("differences {}", plan.differences.join(", ")),
            found: format!("differences {}", differences.join(", ")),
        });
    }
    if live.metadata.generation != plan.live_generation {
        let generation = |g: Option<i64>| g.map_or_else(|| "none".to_owned(), |g| g.to_string());
        return Some(Changed {
            planned: format!("generation {}", generation(plan.live_generation)),
            found: format!("generation {}", generation(live.metadata.generation)),
        });
    }
    None
}

/// Whether an apply was refused only for its `metadata.resourceVersion`: a 409 that is
/// neither a field manager conflict nor a uid that names no object.
pub(super) fn refused_for_resource_version(err: &kube::Error) -> bool {
    let kube::Error::Api(status) = err else {
        return false;
    };
    let field_conflict = status
        .details
        .as_ref()
        .is_some_and(|d| d.causes.iter().any(|c| c.reason == "FieldManagerConflict"))
        || status.message.starts_with("Apply failed with");
    status.code == 409 && !field_conflict && !is_uid_mismatch(status)
}

/// Whether a 409 says the body's `metadata.uid` names no object (or another one): the object
/// was deleted since the plan.
fn is_uid_mismatch(status: &kube::core::Status) -> bool {
    status.message.contains("uid mismatch") || status.message.contains("Precondition failed: UID")
}

/// Maps an error of the apply: 409 is a refused precondition (stale plan), 404 a missing
/// namespace or CRD (or, for an update, an object deleted since the plan), 422 a rejection.
pub(super) fn apply_error(plan: &ApplyPlan, err: kube::Error) -> Error {
    let (namespace, name) = (plan.namespace.as_str(), plan.name.as_str());
    if let kube::Error::Api(status) = &err {
        if status.code == 409 {
            let found = match plan.action {
                Action::Create => {
                    format!("an object created by another writer ({})", status.message)
                }
                _ if is_uid_mismatch(status) => "no object".to_owned(),
                _ => "a newer resourceVersion".to_owned(),
            };
            return Error::Stale(Stale::of(&plan.operation(), found));
        }
        if status.is_not_found() {
            let about_namespace = status
                .details
                .as_ref()
                .is_some_and(|d| d.kind == "namespaces" && d.name == namespace)
                || status
                    .message
                    .contains(&format!("namespaces \"{namespace}\" not found"));
            if about_namespace {
                return Error::NamespaceNotFound {
                    namespace: namespace.to_owned(),
                };
            }
            if plan.action == Action::Update
                && status.details.as_ref().is_some_and(|d| d.name == name)
            {
                return Error::Stale(Stale::of(&plan.operation(), "no object"));
            }
            return Error::CrdNotInstalled {
                message: status.message.clone(),
            };
        }
        if status.code == 422 || status.is_invalid() {
            return Error::Invalid {
                namespace: namespace.to_owned(),
                name: name.to_owned(),
                message: status.message.clone(),
            };
        }
    }
    from_kube(format!("apply FlinkDeployment {namespace}/{name}"), err)
}

#[cfg(test)]
mod tests {

    use super::*;
    use crate::cluster::fixtures::*;
    use serde_json::{Value, json};

    #[test]
    fn live_object_comparison_ignores_representation_and_foreign_fields() {
        let desired: FlinkDeployment = serde_json::from_value(json!({
            "apiVersion": "flink.apache.org/v1beta1", "kind": "FlinkDeployment",
            "metadata": {"name": "job", "labels": {"app.kubernetes.io/managed-by": "flink-eks"},
                         "annotations": {"deploy.flink-eks.io/script-sha256": "aa"}},
            "spec": {"image": "flink:1.20", "jobManager": {"resource": {"cpu": 1, "memory": "2048m"}},
                     "flinkConfiguration": {"taskmanager.numberOfTaskSlots": "2"}}
        }))
        .unwrap();
        let mut live = desired.clone();
        live.metadata.generation = Some(4);
        live.metadata
            .annotations
            .as_mut()
            .unwrap()
            .insert("kubectl.kubernetes.io/x".into(), "y".into());
        live.spec
            .job_manager
            .as_mut()
            .unwrap()
            .resource
            .as_mut()
            .unwrap()
            .cpu = Some(1.0);
        assert_eq!(differences(&desired, &live), Vec::<String>::new());

        let mut changed_script = live.clone();
        changed_script
            .metadata
            .annotations
            .as_mut()
            .unwrap()
            .insert("deploy.flink-eks.io/script-sha256".into(), "bb".into());
        assert_eq!(
            differences(&desired, &changed_script),
            ["metadata.annotations.deploy.flink-eks.io/script-sha256"]
        );
        let mut changed_spec = live.clone();
        changed_spec.spec.image = Some("flink:1.19".into());
        assert_eq!(differences(&desired, &changed_spec), ["spec.image"]);
        let mut dropped_label = live;
        dropped_label.metadata.labels = None;
        assert_eq!(
            differences(&desired, &dropped_label),
            ["metadata.labels.app.kubernetes.io/managed-by"]
        );
    }

    /// A live object as the API server returns it after our apply, with `managedFields`.
    fn live_with_fields(spec: Value, ours: Value) -> FlinkDeployment {
        serde_json::from_value(json!({
            "apiVersion": "flink.apache.org/v1beta1", "kind": "FlinkDeployment",
            "metadata": {"name": "job", "namespace": "default", "resourceVersion": "7", "generation": 2,
                         "managedFields": [
                             {"manager": FIELD_MANAGER, "operation": "Apply", "apiVersion": "flink.apache.org/v1beta1",
                              "fieldsType": "FieldsV1", "fieldsV1": ours},
                             {"manager": "kubectl", "operation": "Update", "apiVersion": "flink.apache.org/v1beta1",
                              "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:flinkConfiguration": {"f:metrics.reporters": {}}}}}
                         ]},
            "spec": spec
        }))
        .unwrap()
    }

    #[test]
    fn a_field_another_manager_set_is_no_change_and_one_we_dropped_is_an_update() {
        let desired: FlinkDeployment = serde_json::from_value(json!({
            "apiVersion": "flink.apache.org/v1beta1", "kind": "FlinkDeployment",
            "metadata": {"name": "job"},
            "spec": {"image": "flink:1.20", "flinkConfiguration": {"taskmanager.numberOfTaskSlots": "2"}}
        }))
        .unwrap();
        let ours = json!({"f:spec": {"f:image": {}, "f:flinkConfiguration": {"f:taskmanager.numberOfTaskSlots": {}}}});
        // kubectl added a configuration entry of its own: comparing the whole spec would call
        // this an update on every run.
        let live = live_with_fields(
            json!({"image": "flink:1.20", "flinkConfiguration": {
                "taskmanager.numberOfTaskSlots": "2", "metrics.reporters": "prom"}}),
            ours,
        );
        assert_eq!(differences(&desired, &live), Vec::<String>::new());

        // Our last apply also set the parallelism; this one does not: the apply removes it.
        let ours_before = json!({"f:spec": {"f:image": {}, "f:flinkConfiguration": {
            "f:taskmanager.numberOfTaskSlots": {}, "f:parallelism.default": {}}}});
        let live = live_with_fields(
            json!({"image": "flink:1.20", "flinkConfiguration": {
                "taskmanager.numberOfTaskSlots": "2", "parallelism.default": "4"}}),
            ours_before,
        );
        assert_eq!(
            differences(&desired, &live),
            ["spec.flinkConfiguration.parallelism.default (removed)"]
        );
    }

    #[test]
    fn a_compared_field_changed_since_the_plan_is_named_with_both_values() {
        let plan = plan_of(
            Action::Update,
            Some(status("STABLE", "RUNNING", "READY", 2)),
        );
        let live = |f: &dyn Fn(&mut Value)| {
            let mut live = object(8, 2, status("STABLE", "RUNNING", "READY", 2));
            f(&mut live);
            serde_json::from_value::<FlinkDeployment>(live).unwrap()
        };
        // Only the status and resourceVersion moved: unchanged.
        assert_eq!(changed_since_planned(&plan, &live(&|_| {})), None);
        // A label another manager added is not a field the plan compared.
        let labelled = live(&|l| l["metadata"]["labels"] = json!({"team": "data"}));
        assert_eq!(changed_since_planned(&plan, &labelled), None);
        // A field the plan compared, changed without a new generation.
        let changed = live(&|l| l["spec"]["image"] = json!("flink:1.19"));
        assert_eq!(
            changed_since_planned(&plan, &changed),
            Some(Changed {
                planned: "spec.image \"flink:1.20\"".into(),
                found: "spec.image \"flink:1.19\"".into(),
            })
        );
        // Deleted and created again: another uid.
        let recreated = live(&|l| l["metadata"]["uid"] = json!("u-2"));
        assert_eq!(
            changed_since_planned(&plan, &recreated),
            Some(Changed {
                planned: "uid u-1".into(),
                found: "another object, uid u-2".into(),
            })
        );
    }
}

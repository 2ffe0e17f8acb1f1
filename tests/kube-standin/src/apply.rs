//! Server-side apply and field ownership (`metadata.managedFields`).
//!
//! Approximation of the real structured-merge-diff: a field set is the set of *leaf paths*
//! of an object, where a leaf is a scalar, a list (every list is atomic: owned and replaced
//! whole, where the real server merges `listType=map` lists such as `containers` by key) or
//! an empty map. Maps merge key by key, so labels, annotations and `flinkConfiguration`
//! entries are owned one by one, as on a real server.
//!
//! Apply, for manager M with applied object A:
//! 1. Conflicts: a path A sets to a value different from the live one, owned by another
//!    manager (any operation), is a conflict: 409 unless `force`, which takes ownership.
//! 2. Paths M applied before but no longer sends are removed, unless another manager owns them.
//! 3. A is merged into the live object (A's values win), and M's Apply entry becomes A's paths.
//!
//! Other writes (create, update, patch) give their manager an `Update` entry for the paths
//! they changed, and take those paths away from every other manager, as the real server does.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

use crate::meta;
use crate::resources::ResourceDef;

/// A path of object keys from the root.
pub(crate) type FieldPath = Vec<String>;

/// Which part of an object a write addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Part {
    /// The main resource: everything but `status` when the resource has a status subresource.
    Main,
    /// The `status` subresource: `status` only.
    Status,
}

impl Part {
    fn subresource(self) -> Option<&'static str> {
        match self {
            Part::Main => None,
            Part::Status => Some("status"),
        }
    }
}

/// One entry of `metadata.managedFields`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ManagedEntry {
    /// Field manager name.
    pub(crate) manager: String,
    /// `Apply` or `Update`.
    pub(crate) operation: String,
    /// API version the fields were written in.
    pub(crate) api_version: String,
    /// When the entry last changed.
    pub(crate) time: String,
    /// `status` for the status subresource.
    pub(crate) subresource: Option<String>,
    /// The owned leaf paths.
    pub(crate) fields: BTreeSet<FieldPath>,
}

impl ManagedEntry {
    fn same_owner(&self, manager: &str, operation: &str, part: Part) -> bool {
        self.manager == manager
            && self.operation == operation
            && self.subresource.as_deref() == part.subresource()
    }

    /// The entry as conflict messages name it: `"kubectl" using v1`, with ` at <time>` for
    /// an Update (the real server's `printManager`).
    fn printed(&self) -> String {
        let mut printed = format!("\"{}\" using {}", self.manager, self.api_version);
        if self.operation == "Update" && !self.time.is_empty() {
            printed.push_str(" at ");
            printed.push_str(&self.time);
        }
        printed
    }

    fn to_json(&self) -> Value {
        let mut entry = json!({
            "manager": self.manager,
            "operation": self.operation,
            "apiVersion": self.api_version,
            "time": self.time,
            "fieldsType": "FieldsV1",
            "fieldsV1": fields_v1(&self.fields),
        });
        if let (Some(sub), Value::Object(map)) = (&self.subresource, &mut entry) {
            map.insert("subresource".into(), Value::String(sub.clone()));
        }
        entry
    }

    fn from_json(value: &Value) -> Option<ManagedEntry> {
        let text = |k: &str| value.get(k).and_then(Value::as_str).map(str::to_owned);
        let mut fields = BTreeSet::new();
        if let Some(tree) = value.get("fieldsV1") {
            read_fields_v1(tree, &mut Vec::new(), &mut fields);
        }
        Some(ManagedEntry {
            manager: text("manager")?,
            operation: text("operation").unwrap_or_else(|| "Update".into()),
            api_version: text("apiVersion").unwrap_or_default(),
            time: text("time").unwrap_or_default(),
            subresource: text("subresource"),
            fields,
        })
    }
}

/// Renders a set of leaf paths as the `FieldsV1` tree: `{"f:spec":{"f:image":{}}}`.
fn fields_v1(fields: &BTreeSet<FieldPath>) -> Value {
    let mut root = Map::new();
    for path in fields {
        let mut node = &mut root;
        for (i, key) in path.iter().enumerate() {
            let child =
                meta::ensure_object(node.entry(format!("f:{key}")).or_insert_with(|| json!({})));
            let is_last = i + 1 == path.len();
            if is_last && !child.is_empty() {
                child.insert(".".into(), json!({}));
            }
            if !is_last && child.is_empty() && fields.contains(&path[..=i].to_vec()) {
                child.insert(".".into(), json!({}));
            }
            node = child;
        }
    }
    Value::Object(root)
}

fn read_fields_v1(tree: &Value, prefix: &mut FieldPath, out: &mut BTreeSet<FieldPath>) {
    let Some(map) = tree.as_object() else { return };
    let children: Vec<(&String, &Value)> =
        map.iter().filter(|(k, _)| k.starts_with("f:")).collect();
    if (children.is_empty() || map.contains_key(".")) && !prefix.is_empty() {
        out.insert(prefix.clone());
    }
    for (key, child) in children {
        prefix.push(key.trim_start_matches("f:").to_owned());
        read_fields_v1(child, prefix, out);
        prefix.pop();
    }
}

/// The managed-fields entries of an object.
pub(crate) fn read_managed(object: &Value) -> Vec<ManagedEntry> {
    meta::metadata(object)
        .and_then(|m| m.get("managedFields"))
        .and_then(Value::as_array)
        .map(|entries| entries.iter().filter_map(ManagedEntry::from_json).collect())
        .unwrap_or_default()
}

/// Writes the entries back into the object (removing the field when there are none).
pub(crate) fn write_managed(object: &mut Value, entries: &[ManagedEntry]) {
    let metadata = meta::metadata_mut(object);
    let entries: Vec<Value> = entries
        .iter()
        .filter(|e| !e.fields.is_empty())
        .map(ManagedEntry::to_json)
        .collect();
    if entries.is_empty() {
        metadata.remove("managedFields");
    } else {
        metadata.insert("managedFields".into(), Value::Array(entries));
    }
}

/// The part of an object whose fields are owned: no `apiVersion`/`kind`, only the metadata
/// fields users set (labels, annotations, finalizers, ownerReferences), and either
/// everything but `status` (main resource) or only `status`.
pub(crate) fn owned_part(object: &Value, res: &ResourceDef, part: Part) -> Value {
    let mut out = Map::new();
    let Some(map) = object.as_object() else {
        return Value::Object(out);
    };
    for (key, value) in map {
        match (key.as_str(), part) {
            ("apiVersion" | "kind", _) => {}
            ("metadata", Part::Main) => {
                let mut kept = Map::new();
                for field in ["labels", "annotations", "finalizers", "ownerReferences"] {
                    if let Some(v) = value.get(field) {
                        kept.insert(field.into(), v.clone());
                    }
                }
                if !kept.is_empty() {
                    out.insert(key.clone(), Value::Object(kept));
                }
            }
            ("status", Part::Status) => {
                out.insert(key.clone(), value.clone());
            }
            ("status", Part::Main) if !res.status_subresource => {
                out.insert(key.clone(), value.clone());
            }
            ("metadata" | "status", _) => {}
            (_, Part::Main) => {
                out.insert(key.clone(), value.clone());
            }
            (_, Part::Status) => {}
        }
    }
    Value::Object(out)
}

/// The leaf paths of a value.
pub(crate) fn leaves(value: &Value) -> BTreeSet<FieldPath> {
    let mut out = BTreeSet::new();
    collect_leaves(value, &mut Vec::new(), &mut out);
    out
}

fn collect_leaves(value: &Value, prefix: &mut FieldPath, out: &mut BTreeSet<FieldPath>) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (key, child) in map {
                prefix.push(key.clone());
                collect_leaves(child, prefix, out);
                prefix.pop();
            }
        }
        _ if prefix.is_empty() => {}
        _ => {
            out.insert(prefix.clone());
        }
    }
}

fn get_at<'a>(value: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(value, |v, key| v.get(key.as_str()))
}

/// Removes the value at `path`, then any map left empty by it below the top level.
fn remove_at(node: &mut Value, path: &[String]) {
    remove_below(node, path, 0);
}

fn remove_below(node: &mut Value, path: &[String], depth: usize) {
    let Some((first, rest)) = path.split_first() else {
        return;
    };
    let Value::Object(map) = node else { return };
    if rest.is_empty() {
        map.remove(first);
        return;
    }
    if let Some(child) = map.get_mut(first) {
        remove_below(child, rest, depth + 1);
        if depth > 0 && child.as_object().is_some_and(Map::is_empty) {
            map.remove(first);
        }
    }
}

/// Merges `applied` into `target`: maps key by key, anything else replaced.
fn deep_merge(target: &mut Value, applied: &Value) {
    match (target, applied) {
        (Value::Object(target), Value::Object(applied)) => {
            for (key, value) in applied {
                match target.get_mut(key) {
                    Some(existing) if existing.is_object() && value.is_object() => {
                        deep_merge(existing, value)
                    }
                    _ => {
                        target.insert(key.clone(), value.clone());
                    }
                }
            }
        }
        (target, applied) => *target = applied.clone(),
    }
}

fn overlaps(a: &[String], b: &[String]) -> bool {
    a.starts_with(b) || b.starts_with(a)
}

/// Renders a path as the conflict messages do: `.spec.image`.
fn dotted(path: &[String]) -> String {
    path.iter().map(|k| format!(".{k}")).collect()
}

/// An apply that conflicts with other managers: `(manager, field)` each, the manager as the
/// real server prints it (`"kubectl" using v1`, and ` at <time>` for an Update).
#[derive(Debug)]
pub(crate) struct Conflicts(pub(crate) Vec<(String, String)>);

/// Server-side apply of `applied` (already stripped of fields the part does not own) by
/// `manager` onto `live` (`None` to create). Returns the new object, with managed fields.
pub(crate) fn apply(
    live: Option<&Value>,
    applied: &Value,
    res: &ResourceDef,
    manager: &str,
    force: bool,
    now: &str,
) -> Result<Value, Conflicts> {
    let applied_owned = owned_part(applied, res, Part::Main);
    let new_fields = leaves(&applied_owned);
    let mut managed = live.map(read_managed).unwrap_or_default();
    let mut result = live.cloned().unwrap_or_else(|| json!({}));
    let api_version = applied
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();

    if let Some(live) = live {
        let changed: Vec<&FieldPath> = new_fields
            .iter()
            .filter(|p| get_at(live, p) != get_at(&applied_owned, p))
            .collect();
        let mut conflicts = Vec::new();
        for entry in managed
            .iter_mut()
            .filter(|e| !e.same_owner(manager, "Apply", Part::Main))
        {
            if entry.subresource.is_some() {
                continue;
            }
            for path in &changed {
                let owned: Vec<FieldPath> = entry
                    .fields
                    .iter()
                    .filter(|f| overlaps(f, path))
                    .cloned()
                    .collect();
                if owned.is_empty() {
                    continue;
                }
                if force {
                    for f in owned {
                        entry.fields.remove(&f);
                    }
                } else {
                    conflicts.push((entry.printed(), dotted(path)));
                }
            }
        }
        if !conflicts.is_empty() {
            return Err(Conflicts(conflicts));
        }
    }

    let old_entry = managed
        .iter()
        .position(|e| e.same_owner(manager, "Apply", Part::Main));
    let old_fields = old_entry
        .map(|i| managed[i].fields.clone())
        .unwrap_or_default();
    for path in old_fields.difference(&new_fields) {
        let owned_elsewhere = managed
            .iter()
            .filter(|e| !e.same_owner(manager, "Apply", Part::Main) && e.subresource.is_none())
            .any(|e| e.fields.iter().any(|f| overlaps(f, path)));
        if !owned_elsewhere {
            remove_at(&mut result, path);
        }
    }
    let before_merge_content = strip_managed(&result);
    deep_merge(&mut result, applied);

    let content_changed = live.is_none_or(|live| strip_managed(live) != strip_managed(&result))
        || before_merge_content != strip_managed(&result);
    match old_entry {
        Some(i) => {
            let entry = &mut managed[i];
            if entry.fields != new_fields || content_changed || entry.api_version != api_version {
                entry.fields = new_fields;
                entry.time = now.to_owned();
                entry.api_version = api_version;
            }
        }
        None => managed.push(ManagedEntry {
            manager: manager.to_owned(),
            operation: "Apply".into(),
            api_version,
            time: now.to_owned(),
            subresource: None,
            fields: new_fields,
        }),
    }
    write_managed(&mut result, &managed);
    Ok(result)
}

/// Records an `Update` by `manager` that turned `old` into `new` (in place on `new`'s
/// managed fields): the changed paths become the manager's and leave every other manager.
pub(crate) fn record_update(
    old: Option<&Value>,
    new: &mut Value,
    res: &ResourceDef,
    part: Part,
    manager: &str,
    now: &str,
) {
    let empty = json!({});
    let old_owned = owned_part(old.unwrap_or(&empty), res, part);
    let new_owned = owned_part(new, res, part);
    let old_leaves = leaves(&old_owned);
    let new_leaves = leaves(&new_owned);
    let changed: BTreeSet<FieldPath> = new_leaves
        .iter()
        .filter(|p| get_at(&old_owned, p) != get_at(&new_owned, p))
        .cloned()
        .collect();
    let removed: BTreeSet<FieldPath> = old_leaves.difference(&new_leaves).cloned().collect();
    if changed.is_empty() && removed.is_empty() {
        return;
    }
    let mut managed = old.map(read_managed).unwrap_or_default();
    for entry in &mut managed {
        entry.fields.retain(|f| {
            !removed.iter().any(|r| overlaps(f, r))
                && (entry.manager == manager && entry.operation == "Update"
                    || !changed.iter().any(|c| overlaps(f, c)))
        });
    }
    let api_version = new
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    match managed
        .iter_mut()
        .find(|e| e.same_owner(manager, "Update", part))
    {
        Some(entry) => {
            entry.fields.extend(changed);
            entry.time = now.to_owned();
            entry.api_version = api_version;
        }
        None => managed.push(ManagedEntry {
            manager: manager.to_owned(),
            operation: "Update".into(),
            api_version,
            time: now.to_owned(),
            subresource: part.subresource().map(str::to_owned),
            fields: changed,
        }),
    }
    write_managed(new, &managed);
}

/// The object without `metadata.managedFields`, for comparing content.
pub(crate) fn strip_managed(object: &Value) -> Value {
    let mut copy = object.clone();
    if let Some(Value::Object(metadata)) = copy.get_mut("metadata") {
        metadata.remove("managedFields");
    }
    copy
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::{CONFIG_MAPS, FLINK_DEPLOYMENTS};

    fn fd(image: &str, extra: Value) -> Value {
        let mut obj = json!({
            "apiVersion": "flink.apache.org/v1beta1",
            "kind": "FlinkDeployment",
            "metadata": {"name": "job", "namespace": "default", "labels": {"team": "a"}},
            "spec": {"image": image, "job": {"args": ["-py", "a.py"]}},
        });
        deep_merge(&mut obj, &extra);
        obj
    }

    /// `manager` applies the FlinkDeployment of `image` over `live` at time `now`.
    fn apply_image(
        live: Option<&Value>,
        image: &str,
        manager: &str,
        force: bool,
        now: &str,
    ) -> Result<Value, Conflicts> {
        apply(
            live,
            &fd(image, json!({})),
            &FLINK_DEPLOYMENTS,
            manager,
            force,
            now,
        )
    }

    fn paths(entry: &ManagedEntry) -> Vec<String> {
        entry.fields.iter().map(|p| dotted(p)).collect()
    }

    #[test]
    fn first_apply_creates_and_owns_every_leaf() {
        let created = apply_image(None, "img:1", "tool", false, "t1").unwrap();
        let managed = read_managed(&created);
        assert_eq!(managed.len(), 1);
        assert_eq!(managed[0].operation, "Apply");
        assert_eq!(
            paths(&managed[0]),
            [".metadata.labels.team", ".spec.image", ".spec.job.args"]
        );
        assert_eq!(created["spec"]["image"], "img:1");
    }

    #[test]
    fn an_identical_apply_changes_nothing_not_even_the_time() {
        let first = apply_image(None, "img:1", "tool", false, "t1").unwrap();
        let second = apply_image(Some(&first), "img:1", "tool", false, "t2").unwrap();
        assert_eq!(first, second);
    }

    #[test]
    fn fields_no_longer_applied_are_removed_unless_someone_else_owns_them() {
        let with_nonce = fd(
            "img:1",
            json!({"spec": {"restartNonce": 3}, "metadata": {"labels": {"x": "1"}}}),
        );
        let first = apply(None, &with_nonce, &FLINK_DEPLOYMENTS, "tool", false, "t1").unwrap();
        // Someone else annotates; the annotation must survive the tool's next apply.
        let mut annotated = first.clone();
        crate::patch::merge_patch(
            &mut annotated,
            &json!({"metadata": {"annotations": {"note": "hi"}}}),
        );
        record_update(
            Some(&first),
            &mut annotated,
            &FLINK_DEPLOYMENTS,
            Part::Main,
            "kubectl-annotate",
            "t2",
        );
        let second = apply_image(Some(&annotated), "img:1", "tool", false, "t3").unwrap();
        assert!(second["spec"].get("restartNonce").is_none());
        assert!(second["metadata"]["labels"].get("x").is_none());
        assert_eq!(second["metadata"]["labels"]["team"], "a");
        assert_eq!(second["metadata"]["annotations"]["note"], "hi");
    }

    #[test]
    fn a_changed_field_owned_by_another_manager_conflicts_unless_forced() {
        let first = apply_image(None, "img:1", "tool", false, "t1").unwrap();
        let conflict = apply_image(Some(&first), "img:2", "other", false, "t2");
        let Err(Conflicts(conflicts)) = conflict else {
            panic!("expected a conflict")
        };
        assert_eq!(
            conflicts,
            [(
                "\"tool\" using flink.apache.org/v1beta1".to_owned(),
                ".spec.image".to_owned()
            )]
        );
        // The same value is no conflict: both then own it.
        assert!(apply_image(Some(&first), "img:1", "other", false, "t2").is_ok());
        let forced = apply_image(Some(&first), "img:2", "other", true, "t2").unwrap();
        assert_eq!(forced["spec"]["image"], "img:2");
        let tool = read_managed(&forced)
            .into_iter()
            .find(|e| e.manager == "tool")
            .map(|e| paths(&e))
            .unwrap_or_default();
        assert!(!tool.contains(&".spec.image".to_owned()), "{tool:?}");
    }

    #[test]
    fn updates_take_the_fields_they_change() {
        let old = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1"}});
        let mut created = old.clone();
        record_update(
            None,
            &mut created,
            &CONFIG_MAPS,
            Part::Main,
            "creator",
            "t1",
        );
        let mut changed = created.clone();
        changed["data"]["b"] = json!("2");
        record_update(
            Some(&created),
            &mut changed,
            &CONFIG_MAPS,
            Part::Main,
            "editor",
            "t2",
        );
        let managed = read_managed(&changed);
        let by = |m: &str| {
            managed
                .iter()
                .find(|e| e.manager == m)
                .map(paths)
                .unwrap_or_default()
        };
        assert_eq!(by("creator"), [".data.a"]);
        assert_eq!(by("editor"), [".data.b"]);
    }

    #[test]
    fn fields_v1_round_trips() {
        let set: BTreeSet<FieldPath> = [
            vec!["spec".into(), "image".into()],
            vec!["metadata".into(), "labels".into(), "a".into()],
        ]
        .into_iter()
        .collect();
        let tree = fields_v1(&set);
        assert_eq!(
            tree,
            json!({"f:spec": {"f:image": {}}, "f:metadata": {"f:labels": {"f:a": {}}}})
        );
        let mut back = BTreeSet::new();
        read_fields_v1(&tree, &mut Vec::new(), &mut back);
        assert_eq!(back, set);
    }
}

//! Patches other than server-side apply: JSON merge patch (RFC 7386), JSON patch (RFC 6902),
//! and strategic merge patch (approximated as a merge patch).

use serde_json::{Map, Value};

use crate::error::ApiError;

/// The patch types of the `Content-Type` header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PatchKind {
    /// `application/merge-patch+json`.
    Merge,
    /// `application/strategic-merge-patch+json`: applied as a merge patch (lists are replaced,
    /// not merged by key; `$patch` directives are not understood).
    Strategic,
    /// `application/json-patch+json`.
    Json,
    /// `application/apply-patch+yaml`: server-side apply.
    Apply,
}

impl PatchKind {
    /// The patch kind of a `Content-Type` value.
    pub(crate) fn from_content_type(content_type: &str) -> Result<PatchKind, ApiError> {
        let essence = content_type.split(';').next().unwrap_or("").trim();
        match essence {
            "application/merge-patch+json" => Ok(PatchKind::Merge),
            "application/strategic-merge-patch+json" => Ok(PatchKind::Strategic),
            "application/json-patch+json" => Ok(PatchKind::Json),
            "application/apply-patch+yaml" | "application/apply-patch+cbor" => Ok(PatchKind::Apply),
            other => Err(ApiError::unsupported_media_type(other)),
        }
    }
}

/// Applies a JSON merge patch (RFC 7386) to `target`.
pub(crate) fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    if let Value::Object(target) = target {
        for (key, value) in patch {
            if value.is_null() {
                target.remove(key);
            } else {
                merge_patch(target.entry(key.clone()).or_insert(Value::Null), value);
            }
        }
    }
}

/// Applies a JSON patch (RFC 6902) to `target`.
pub(crate) fn json_patch(target: &mut Value, patch: &Value) -> Result<(), ApiError> {
    let ops = patch
        .as_array()
        .ok_or_else(|| ApiError::bad_request("json patch must be an array of operations"))?;
    for op in ops {
        let kind = op.get("op").and_then(Value::as_str).unwrap_or("");
        let path = op.get("path").and_then(Value::as_str).unwrap_or("");
        let invalid = |what: &str| {
            ApiError::unsupported_json_patch(format!("{what} (op {kind:?}, path {path:?})"))
        };
        match kind {
            "add" => {
                let value = op
                    .get("value")
                    .cloned()
                    .ok_or_else(|| invalid("missing value"))?;
                add(target, path, value).ok_or_else(|| invalid("cannot add"))?;
            }
            "remove" => {
                remove(target, path).ok_or_else(|| invalid("nothing to remove"))?;
            }
            "replace" => {
                let value = op
                    .get("value")
                    .cloned()
                    .ok_or_else(|| invalid("missing value"))?;
                remove(target, path).ok_or_else(|| invalid("nothing to replace"))?;
                add(target, path, value).ok_or_else(|| invalid("cannot replace"))?;
            }
            "move" | "copy" => {
                let from = op
                    .get("from")
                    .and_then(Value::as_str)
                    .ok_or_else(|| invalid("missing from"))?;
                let value = if kind == "move" {
                    remove(target, from)
                } else {
                    target.pointer(from).cloned()
                }
                .ok_or_else(|| invalid("nothing at from"))?;
                add(target, path, value).ok_or_else(|| invalid("cannot add"))?;
            }
            "test" => {
                let expected = op.get("value").unwrap_or(&Value::Null);
                if target.pointer(path) != Some(expected) {
                    return Err(invalid("test failed"));
                }
            }
            _ => return Err(invalid("unknown operation")),
        }
    }
    Ok(())
}

fn split_pointer(path: &str) -> Option<(&str, String)> {
    let (parent, last) = path.rsplit_once('/')?;
    Some((parent, last.replace("~1", "/").replace("~0", "~")))
}

fn add(target: &mut Value, path: &str, value: Value) -> Option<()> {
    if path.is_empty() {
        *target = value;
        return Some(());
    }
    let (parent, last) = split_pointer(path)?;
    match target.pointer_mut(parent)? {
        Value::Object(map) => {
            map.insert(last, value);
        }
        Value::Array(items) => {
            let index = if last == "-" {
                items.len()
            } else {
                last.parse().ok()?
            };
            if index > items.len() {
                return None;
            }
            items.insert(index, value);
        }
        _ => return None,
    }
    Some(())
}

fn remove(target: &mut Value, path: &str) -> Option<Value> {
    let (parent, last) = split_pointer(path)?;
    match target.pointer_mut(parent)? {
        Value::Object(map) => map.remove(&last),
        Value::Array(items) => {
            let index: usize = last.parse().ok()?;
            (index < items.len()).then(|| items.remove(index))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_patch_follows_rfc_7386() {
        let mut doc = json!({"a": "b", "c": {"d": "e", "f": "g"}, "l": [1, 2]});
        merge_patch(&mut doc, &json!({"a": "z", "c": {"f": null}, "l": [3]}));
        assert_eq!(doc, json!({"a": "z", "c": {"d": "e"}, "l": [3]}));
    }

    #[test]
    fn json_patch_adds_replaces_and_removes() {
        let mut doc = json!({"metadata": {"labels": {"a": "1"}}, "list": [1]});
        let patch = json!([
            {"op": "add", "path": "/metadata/labels/b", "value": "2"},
            {"op": "replace", "path": "/metadata/labels/a", "value": "x"},
            {"op": "add", "path": "/list/-", "value": 2},
            {"op": "remove", "path": "/list/0"},
            {"op": "test", "path": "/list/0", "value": 2},
        ]);
        assert!(json_patch(&mut doc, &patch).is_ok());
        assert_eq!(
            doc,
            json!({"metadata": {"labels": {"a": "x", "b": "2"}}, "list": [2]})
        );
        assert!(json_patch(&mut doc, &json!([{"op": "remove", "path": "/nope"}])).is_err());
    }

    #[test]
    fn content_types_select_the_patch_kind() {
        assert_eq!(
            PatchKind::from_content_type("application/apply-patch+yaml; charset=utf-8").ok(),
            Some(PatchKind::Apply)
        );
        assert!(PatchKind::from_content_type("text/plain").is_err());
    }
}

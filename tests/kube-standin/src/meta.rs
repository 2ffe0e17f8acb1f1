//! Small helpers over objects held as JSON: metadata access, timestamps, uids.

use serde_json::{Map, Value};

/// The current time as Kubernetes writes `metav1.Time`: RFC 3339 in UTC, whole seconds.
pub(crate) fn now_rfc3339() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// The current time as Kubernetes writes `metav1.MicroTime`.
pub(crate) fn now_micro_rfc3339() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string()
}

/// A new random uid, as the API server assigns to `metadata.uid`.
pub(crate) fn new_uid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// `n` lowercase alphanumerics, as Kubernetes uses in generated names (`generateName`, pod suffixes).
pub(crate) fn random_suffix(n: usize) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut out = String::with_capacity(n);
    while out.len() < n {
        for byte in uuid::Uuid::new_v4().as_bytes() {
            if out.len() == n {
                break;
            }
            out.push(char::from(ALPHABET[usize::from(*byte) % ALPHABET.len()]));
        }
    }
    out
}

/// `object.metadata`, if present and an object.
pub(crate) fn metadata(object: &Value) -> Option<&Map<String, Value>> {
    object.get("metadata").and_then(Value::as_object)
}

/// `object.metadata`, created if missing (and replaced if not an object).
pub(crate) fn metadata_mut(object: &mut Value) -> &mut Map<String, Value> {
    let root = ensure_object(object);
    let meta = root
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    ensure_object(meta)
}

/// Makes `value` an object (replacing anything else) and returns its map.
pub(crate) fn ensure_object(value: &mut Value) -> &mut Map<String, Value> {
    if !value.is_object() {
        *value = Value::Object(Map::new());
    }
    match value {
        Value::Object(map) => map,
        // Just made an object above.
        _ => unreachable!("value was just made an object"),
    }
}

/// A string field of `metadata`.
pub(crate) fn meta_str<'a>(object: &'a Value, field: &str) -> Option<&'a str> {
    metadata(object)
        .and_then(|m| m.get(field))
        .and_then(Value::as_str)
}

/// `metadata.name`, or "" when missing.
pub(crate) fn name(object: &Value) -> &str {
    meta_str(object, "name").unwrap_or("")
}

/// `metadata.namespace`, or "" when missing.
pub(crate) fn namespace(object: &Value) -> &str {
    meta_str(object, "namespace").unwrap_or("")
}

/// `metadata.uid`, or "" when missing.
pub(crate) fn uid(object: &Value) -> &str {
    meta_str(object, "uid").unwrap_or("")
}

/// `metadata.generation`, or 0 when missing.
pub(crate) fn generation(object: &Value) -> i64 {
    metadata(object)
        .and_then(|m| m.get("generation"))
        .and_then(Value::as_i64)
        .unwrap_or(0)
}

/// One label's value.
pub(crate) fn label<'a>(object: &'a Value, key: &str) -> Option<&'a str> {
    metadata(object)
        .and_then(|m| m.get("labels"))
        .and_then(|l| l.get(key))
        .and_then(Value::as_str)
}

/// One annotation's value.
pub(crate) fn annotation<'a>(object: &'a Value, key: &str) -> Option<&'a str> {
    metadata(object)
        .and_then(|m| m.get("annotations"))
        .and_then(|a| a.get(key))
        .and_then(Value::as_str)
}

/// `metadata.finalizers` as strings.
pub(crate) fn finalizers(object: &Value) -> Vec<String> {
    metadata(object)
        .and_then(|m| m.get("finalizers"))
        .and_then(Value::as_array)
        .map(|f| {
            f.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// Whether `metadata.deletionTimestamp` is set.
pub(crate) fn is_deleting(object: &Value) -> bool {
    metadata(object).is_some_and(|m| m.contains_key("deletionTimestamp"))
}

/// The value at a dotted path (`status.jobStatus.state`), if every step is an object key.
pub(crate) fn get_path<'a>(object: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(object, |v, key| v.get(*key))
}

/// The names of a pod's containers of `list` (`containers` or `initContainers`).
pub(crate) fn container_names(pod: &Value, list: &str) -> Vec<String> {
    get_path(pod, &["spec", list])
        .and_then(Value::as_array)
        .map(|c| {
            c.iter()
                .filter_map(|c| c.get("name").and_then(Value::as_str))
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// The JSON type name of a value, as Kubernetes validation messages name it.
pub(crate) fn json_type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Parses an RFC 3339 timestamp and tells its age, rendered as kubectl does (`5s`, `3m2s`, `4h`, `2d`).
pub(crate) fn age(timestamp: &str) -> String {
    let Ok(then) = timestamp.parse::<jiff::Timestamp>() else {
        return "<unknown>".to_owned();
    };
    let seconds = jiff::Timestamp::now()
        .as_second()
        .saturating_sub(then.as_second())
        .max(0);
    human_duration(seconds)
}

/// kubectl's `HumanDuration` for a number of seconds.
pub(crate) fn human_duration(seconds: i64) -> String {
    match seconds {
        s if s < 120 => format!("{s}s"),
        s if s < 600 => format!("{}m{}s", s / 60, s % 60),
        s if s < 3 * 3600 => format!("{}m", s / 60),
        s if s < 8 * 3600 => format!("{}h{}m", s / 3600, (s % 3600) / 60),
        s if s < 48 * 3600 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn timestamps_have_the_kubernetes_shape() {
        let now = now_rfc3339();
        assert_eq!(now.len(), 20, "{now}");
        assert!(now.ends_with('Z'));
        assert_eq!(age(&now), "0s");
        assert_eq!(human_duration(150), "2m30s");
        assert_eq!(human_duration(3 * 86400), "3d");
    }

    #[test]
    fn suffixes_are_dns_safe() {
        let s = random_suffix(5);
        assert_eq!(s.len(), 5);
        assert!(
            s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        );
    }

    #[test]
    fn metadata_helpers_read_what_is_there() {
        let obj = json!({"metadata": {"name": "a", "labels": {"app": "x"}, "generation": 3}});
        assert_eq!(name(&obj), "a");
        assert_eq!(namespace(&obj), "");
        assert_eq!(generation(&obj), 3);
        assert_eq!(label(&obj, "app"), Some("x"));
        assert_eq!(json_type_name(&json!(1)), "integer");
        assert_eq!(json_type_name(&json!("one")), "string");
    }
}

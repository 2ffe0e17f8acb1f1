//! Label selectors (`app=x,tier!=db,env in (a,b),!legacy`) and field selectors
//! (`metadata.name=x`), parsed and matched as the API server does.

use serde_json::Value;

use crate::error::ApiError;
use crate::meta;
use crate::resources::ResourceDef;

/// One requirement of a label selector.
#[derive(Clone, Debug, PartialEq)]
enum LabelRequirement {
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

/// A parsed label selector; the empty selector matches everything.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct LabelSelector {
    requirements: Vec<LabelRequirement>,
}

impl LabelSelector {
    /// Parses the `labelSelector` query parameter.
    pub(crate) fn parse(text: &str) -> Result<LabelSelector, ApiError> {
        let mut requirements = Vec::new();
        for term in split_terms(text) {
            let term = term.trim();
            if term.is_empty() {
                continue;
            }
            requirements.push(parse_requirement(term).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "unable to parse requirement: invalid label selector term {term:?}"
                ))
            })?);
        }
        Ok(LabelSelector { requirements })
    }

    /// Whether the object's labels satisfy every requirement.
    pub(crate) fn matches(&self, object: &Value) -> bool {
        self.requirements.iter().all(|r| match r {
            LabelRequirement::Equals(k, v) => meta::label(object, k) == Some(v.as_str()),
            LabelRequirement::NotEquals(k, v) => meta::label(object, k) != Some(v.as_str()),
            LabelRequirement::In(k, vs) => {
                meta::label(object, k).is_some_and(|l| vs.iter().any(|v| v == l))
            }
            LabelRequirement::NotIn(k, vs) => {
                meta::label(object, k).is_none_or(|l| vs.iter().all(|v| v != l))
            }
            LabelRequirement::Exists(k) => meta::label(object, k).is_some(),
            LabelRequirement::NotExists(k) => meta::label(object, k).is_none(),
        })
    }
}

/// Splits on commas that are not inside parentheses.
fn split_terms(text: &str) -> Vec<&str> {
    let mut terms = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                terms.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    terms.push(&text[start..]);
    terms
}

fn parse_requirement(term: &str) -> Option<LabelRequirement> {
    if let Some(key) = term.strip_prefix('!') {
        return valid_key(key.trim()).then(|| LabelRequirement::NotExists(key.trim().to_owned()));
    }
    if let Some((k, v)) = term.split_once("!=") {
        return pair(k, v).map(|(k, v)| LabelRequirement::NotEquals(k, v));
    }
    if let Some((k, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
        return pair(k, v).map(|(k, v)| LabelRequirement::Equals(k, v));
    }
    for (op, negate) in [(" notin ", true), (" in ", false)] {
        if let Some((k, set)) = term.split_once(op) {
            let set = set.trim().strip_prefix('(')?.strip_suffix(')')?;
            let values: Vec<String> = set
                .split(',')
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
                .collect();
            let key = k.trim().to_owned();
            if !valid_key(&key) {
                return None;
            }
            return Some(if negate {
                LabelRequirement::NotIn(key, values)
            } else {
                LabelRequirement::In(key, values)
            });
        }
    }
    valid_key(term).then(|| LabelRequirement::Exists(term.to_owned()))
}

fn pair(k: &str, v: &str) -> Option<(String, String)> {
    let (k, v) = (k.trim(), v.trim());
    valid_key(k).then(|| (k.to_owned(), v.to_owned()))
}

fn valid_key(key: &str) -> bool {
    !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'))
}

/// One requirement of a field selector: a dotted path equal (or not) to a value.
#[derive(Clone, Debug, PartialEq)]
struct FieldRequirement {
    path: Vec<String>,
    value: String,
    negate: bool,
}

/// A parsed field selector.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct FieldSelector {
    requirements: Vec<FieldRequirement>,
}

impl FieldSelector {
    /// Parses the `fieldSelector` query parameter; [`FieldSelector::check`] then refuses the
    /// fields the resource cannot be selected by.
    pub(crate) fn parse(text: &str) -> Result<FieldSelector, ApiError> {
        let mut requirements = Vec::new();
        for term in text.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            let (path, value, negate) = if let Some((p, v)) = term.split_once("!=") {
                (p, v, true)
            } else if let Some((p, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
                (p, v, false)
            } else {
                return Err(ApiError::bad_request(format!(
                    "invalid selector: '{text}'; can't understand '{term}'"
                )));
            };
            requirements.push(FieldRequirement {
                path: path.trim().split('.').map(str::to_owned).collect(),
                value: value.trim().to_owned(),
                negate,
            });
        }
        Ok(FieldSelector { requirements })
    }

    /// Refuses a field the resource cannot be selected by, as the real server does: built-in
    /// kinds with `field label not supported: <field>`, custom resources naming the fields
    /// they have.
    pub(crate) fn check(&self, res: &ResourceDef) -> Result<(), ApiError> {
        let supported = selectable_fields(res);
        for requirement in &self.requirements {
            let field = requirement.path.join(".");
            if supported.contains(&field.as_str()) {
                continue;
            }
            let message = if res.custom {
                let names: Vec<String> = supported.iter().map(|f| format!("{f:?}")).collect();
                format!(
                    "{field:?} is not a known field selector: only {}",
                    names.join(", ")
                )
            } else {
                format!("field label not supported: {field}")
            };
            return Err(ApiError::bad_request(message));
        }
        Ok(())
    }

    /// Whether the object satisfies every requirement; a missing field counts as "".
    pub(crate) fn matches(&self, object: &Value) -> bool {
        self.requirements.iter().all(|r| {
            let mut path: Vec<&str> = r.path.iter().map(String::as_str).collect();
            // An event's `source` field is its source's component.
            if path == ["source"] {
                path.push("component");
            }
            let actual = match meta::get_path(object, &path) {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Null) | None => String::new(),
                Some(other) => other.to_string(),
            };
            (actual == r.value) != r.negate
        })
    }
}

/// The fields the real API server can select each resource by (its `GetAttrs` and field
/// label conversions).
pub(crate) fn selectable_fields(res: &ResourceDef) -> &'static [&'static str] {
    match (res.group, res.plural) {
        ("", "pods") => &[
            "metadata.name",
            "metadata.namespace",
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "spec.hostNetwork",
            "status.phase",
            "status.podIP",
            "status.podIPs",
            "status.nominatedNodeName",
        ],
        ("", "events") => &[
            "metadata.name",
            "metadata.namespace",
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "reportingComponent",
            "source",
            "type",
        ],
        ("", "namespaces") => &["metadata.name", "status.phase"],
        ("", "nodes") => &["metadata.name", "spec.unschedulable"],
        _ if res.namespaced => &["metadata.name", "metadata.namespace"],
        _ => &["metadata.name"],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(labels: Value) -> Value {
        json!({"metadata": {"name": "p", "namespace": "ns", "labels": labels}})
    }

    #[test]
    fn label_selectors_match_like_kubernetes() {
        let jm = pod(json!({"app": "job", "component": "jobmanager"}));
        let tm = pod(json!({"app": "job", "component": "taskmanager"}));
        let parse =
            |s: &str| LabelSelector::parse(s).unwrap_or_else(|e| panic!("{s}: {}", e.message));
        assert!(parse("").matches(&jm));
        assert!(parse("app=job,component=jobmanager").matches(&jm));
        assert!(!parse("app=job,component=jobmanager").matches(&tm));
        assert!(parse("component!=jobmanager").matches(&tm));
        assert!(parse("component in (jobmanager, x)").matches(&jm));
        assert!(!parse("component notin (jobmanager)").matches(&jm));
        assert!(parse("app,!missing").matches(&jm));
        assert!(parse("app==job").matches(&tm));
        assert!(LabelSelector::parse("a b").is_err());
    }

    #[test]
    fn field_selectors_name_only_the_fields_the_resource_has() {
        use crate::resources::{EVENTS, FLINK_DEPLOYMENTS, PODS};
        let parse = |s: &str| FieldSelector::parse(s).unwrap_or_default();
        assert!(
            parse("involvedObject.name=x,type=Warning,reason=Submit")
                .check(&EVENTS)
                .is_ok()
        );
        assert_eq!(
            parse("involvedObject.nonsense=x")
                .check(&EVENTS)
                .err()
                .map(|e| (e.code, e.message)),
            Some((
                400,
                "field label not supported: involvedObject.nonsense".to_owned()
            ))
        );
        assert!(parse("status.phase=Running").check(&PODS).is_ok());
        assert_eq!(
            parse("spec.job.state=running").check(&FLINK_DEPLOYMENTS).err().map(|e| e.message),
            Some(
                "\"spec.job.state\" is not a known field selector: only \"metadata.name\", \"metadata.namespace\""
                    .to_owned()
            )
        );
        let event = json!({"source": {"component": "Operator"}, "type": "Warning"});
        assert!(parse("source=Operator,type=Warning").matches(&event));
    }

    #[test]
    fn field_selectors_read_dotted_paths() {
        let p = pod(json!({}));
        let parse = |s: &str| FieldSelector::parse(s).unwrap_or_default();
        assert!(parse("metadata.name=p").matches(&p));
        assert!(parse("metadata.name=p,metadata.namespace==ns").matches(&p));
        assert!(!parse("metadata.name!=p").matches(&p));
        assert!(FieldSelector::parse("nonsense").is_err());
    }
}

//! The FlinkDeployment CRD's `openAPIV3Schema`, applied as a real API server applies a
//! structural schema: prune unknown fields (or report them), drop non-nullable nulls, apply
//! defaults, then validate. Validation is done by the `jsonschema` crate on a JSON Schema
//! (draft 4, which OpenAPI v3.0 schemas follow) derived from the CRD's schema, with the
//! Kubernetes extensions translated: `x-kubernetes-int-or-string` becomes
//! `type: [integer, string]`, `nullable` adds `null`, `x-kubernetes-preserve-unknown-fields`
//! only turns pruning off.

use std::path::Path;

use anyhow::{Context as _, bail};
use jsonschema::error::{TypeKind, ValidationErrorKind};
use serde_json::{Map, Value, json};

use crate::error::{FieldError, FieldErrorKind};
use crate::meta;
use crate::resources::{FLINK_DEPLOYMENTS, ResourceDef};

/// One of the CRD's `additionalPrinterColumns`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct PrinterColumn {
    /// Column header.
    pub(crate) name: String,
    /// OpenAPI type of the cells (`string`, `integer`, `date`...).
    pub(crate) column_type: String,
    /// OpenAPI format, often empty.
    pub(crate) format: String,
    /// Column description.
    pub(crate) description: String,
    /// 0 shows by default, more only with `-o wide`.
    pub(crate) priority: i64,
    /// The field shown, as a simple JSONPath (`.status.jobStatus.state`).
    pub(crate) json_path: String,
}

impl PrinterColumn {
    /// The column's cell for an object: the value at its JSONPath, or null.
    pub(crate) fn cell(&self, object: &Value) -> Value {
        let path: Vec<&str> = self.json_path.trim_start_matches('.').split('.').collect();
        match meta::get_path(object, &path) {
            Some(Value::String(s)) if self.column_type == "date" => Value::String(meta::age(s)),
            Some(value) => value.clone(),
            None => Value::Null,
        }
    }
}

/// The FlinkDeployment CRD, ready to prune, default and validate objects.
pub(crate) struct CrdSchema {
    structural: Value,
    validator: jsonschema::Validator,
    printer_columns: Vec<PrinterColumn>,
}

impl std::fmt::Debug for CrdSchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CrdSchema")
            .field("printer_columns", &self.printer_columns)
            .finish_non_exhaustive()
    }
}

/// How unknown fields are handled: the `fieldValidation` query parameter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FieldValidation {
    /// Drop unknown fields silently.
    Ignore,
    /// Drop unknown fields and say so in `Warning` headers (the server's default).
    Warn,
    /// Reject the request (kubectl's default).
    Strict,
}

impl FieldValidation {
    /// Parses the query parameter; absent means `Warn`, as on a real server.
    pub(crate) fn parse(value: Option<&str>) -> Result<FieldValidation, String> {
        match value {
            None | Some("") | Some("Warn") => Ok(FieldValidation::Warn),
            Some("Ignore") => Ok(FieldValidation::Ignore),
            Some("Strict") => Ok(FieldValidation::Strict),
            Some(other) => Err(format!(
                "fieldValidation parameter unsupported: {other:?}; supported values: Ignore, Strict, Warn"
            )),
        }
    }
}

impl CrdSchema {
    /// Reads the FlinkDeployment CRD YAML at `path`.
    pub(crate) fn load(path: &Path) -> anyhow::Result<CrdSchema> {
        CrdSchema::load_for(path, &FLINK_DEPLOYMENTS, crate::CRD_ENV)
    }

    /// Reads the CRD YAML at `path`, which must define `res`; `env` is the variable that
    /// names another path.
    pub(crate) fn load_for(path: &Path, res: &ResourceDef, env: &str) -> anyhow::Result<CrdSchema> {
        let kind = res.kind;
        let text = std::fs::read_to_string(path).with_context(|| {
            format!(
                "cannot read the {kind} CRD at {} (set {env} to its path)",
                path.display()
            )
        })?;
        let crd: Value = serde_saphyr::from_str(&text)
            .with_context(|| format!("the {kind} CRD at {} is not valid YAML", path.display()))?;
        CrdSchema::from_crd_for(&crd, res)
            .with_context(|| format!("unusable {kind} CRD at {}", path.display()))
    }

    /// Builds the FlinkDeployment schema from a parsed CRD.
    #[cfg(test)]
    pub(crate) fn from_crd(crd: &Value) -> anyhow::Result<CrdSchema> {
        CrdSchema::from_crd_for(crd, &FLINK_DEPLOYMENTS)
    }

    /// Builds the schema from a parsed CRD, checking it defines `res`.
    pub(crate) fn from_crd_for(crd: &Value, res: &ResourceDef) -> anyhow::Result<CrdSchema> {
        let spec = crd.get("spec").context("the CRD has no spec")?;
        let group = spec.get("group").and_then(Value::as_str).unwrap_or("");
        let plural = meta::get_path(spec, &["names", "plural"])
            .and_then(Value::as_str)
            .unwrap_or("");
        let kind = meta::get_path(spec, &["names", "kind"])
            .and_then(Value::as_str)
            .unwrap_or("");
        if (group, plural, kind) != (res.group, res.plural, res.kind) {
            bail!(
                "the CRD defines {kind} ({plural}.{group}), not {} ({})",
                res.kind,
                res.group_resource()
            );
        }
        let versions = spec
            .get("versions")
            .and_then(Value::as_array)
            .context("the CRD has no versions")?;
        let version = versions
            .iter()
            .find(|v| v.get("name").and_then(Value::as_str) == Some(res.version))
            .with_context(|| format!("the CRD does not define version {}", res.version))?;
        let structural = meta::get_path(version, &["schema", "openAPIV3Schema"])
            .cloned()
            .context("the CRD's v1beta1 version has no schema.openAPIV3Schema")?;
        let json_schema = to_json_schema(&structural);
        let validator = jsonschema::options()
            .with_draft(jsonschema::Draft::Draft4)
            .should_validate_formats(false)
            .build(&json_schema)
            .map_err(|e| anyhow::anyhow!("the CRD's schema does not compile: {e}"))?;
        let printer_columns = version
            .get("additionalPrinterColumns")
            .and_then(Value::as_array)
            .map(|columns| columns.iter().map(printer_column).collect())
            .unwrap_or_default();
        Ok(CrdSchema {
            structural,
            validator,
            printer_columns,
        })
    }

    /// The CRD's printer columns, for Table responses.
    pub(crate) fn printer_columns(&self) -> &[PrinterColumn] {
        &self.printer_columns
    }

    /// Removes the fields the schema does not declare; returns their paths
    /// (`spec.foo`, `spec.podTemplate.spec.containers[0].bogus`). `apiVersion`, `kind` and
    /// `metadata` at the root are always kept. Also drops nulls of non-nullable fields.
    pub(crate) fn prune(&self, object: &mut Value) -> Vec<String> {
        let mut unknown = Vec::new();
        let Value::Object(root) = object else {
            return unknown;
        };
        let kept: Vec<(String, Value)> = ["apiVersion", "kind", "metadata"]
            .iter()
            .filter_map(|k| root.remove(*k).map(|v| ((*k).to_owned(), v)))
            .collect();
        prune_node(&self.structural, object, "", &mut unknown);
        if let Value::Object(root) = object {
            root.extend(kept);
        }
        // Sorted, so that reports do not depend on serde_json's map order (its
        // `preserve_order` feature is on in some builds of the workspace and off in others).
        unknown.sort();
        unknown
    }

    /// Fills in the schema's `default`s for missing fields.
    pub(crate) fn apply_defaults(&self, object: &mut Value) {
        default_node(&self.structural, object);
    }

    /// Validates an object (after pruning); empty when it is valid.
    pub(crate) fn validate(&self, object: &Value) -> Vec<FieldError> {
        self.validator
            .iter_errors(object)
            .map(|error| {
                let field = field_path(object, error.instance_path().iter());
                let instance = error.instance().clone().into_owned();
                let kind = match error.kind() {
                    ValidationErrorKind::Type { kind } => {
                        let expected = match kind {
                            TypeKind::Single(t) => t.to_string(),
                            TypeKind::Multiple(set) => set
                                .iter()
                                .map(|t| t.to_string())
                                .collect::<Vec<_>>()
                                .join(","),
                        };
                        let actual = meta::json_type_name(&instance).to_owned();
                        FieldErrorKind::TypeInvalid {
                            detail: format!(
                                "{field} in body must be of type {expected}: \"{actual}\""
                            ),
                            actual,
                        }
                    }
                    ValidationErrorKind::Enum { options } => FieldErrorKind::NotSupported {
                        value: instance,
                        supported: options.as_array().cloned().unwrap_or_default(),
                    },
                    ValidationErrorKind::Required { property } => {
                        let property = property.as_str().unwrap_or("").to_owned();
                        return FieldError {
                            field: if field.is_empty() {
                                property
                            } else {
                                format!("{field}.{property}")
                            },
                            kind: FieldErrorKind::Required,
                        };
                    }
                    _ => FieldErrorKind::Invalid {
                        value: instance,
                        detail: error.to_string(),
                    },
                };
                FieldError { field, kind }
            })
            .collect()
    }
}

fn printer_column(column: &Value) -> PrinterColumn {
    let text = |k: &str| {
        column
            .get(k)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned()
    };
    PrinterColumn {
        name: text("name"),
        column_type: text("type"),
        format: text("format"),
        description: text("description"),
        priority: column.get("priority").and_then(Value::as_i64).unwrap_or(0),
        json_path: text("jsonPath"),
    }
}

/// Renders an instance location as Kubernetes field paths do: `spec.containers[0].name`.
fn field_path<'a>(
    object: &Value,
    segments: impl Iterator<Item = jsonschema::paths::LocationSegment<'a>>,
) -> String {
    let mut out = String::new();
    let mut node = Some(object);
    for segment in segments {
        let key = segment.to_string();
        match node {
            Some(Value::Array(items)) => {
                out.push_str(&format!("[{key}]"));
                node = key.parse::<usize>().ok().and_then(|i| items.get(i));
            }
            _ => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(&key);
                node = node.and_then(|n| n.get(&key));
            }
        }
    }
    out
}

fn is_true(schema: &Value, key: &str) -> bool {
    schema.get(key).and_then(Value::as_bool) == Some(true)
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

fn prune_node(schema: &Value, value: &mut Value, path: &str, unknown: &mut Vec<String>) {
    if is_true(schema, "x-kubernetes-int-or-string") {
        return;
    }
    match value {
        Value::Object(map) => {
            let properties = schema.get("properties").and_then(Value::as_object);
            let additional = schema.get("additionalProperties").filter(|a| a.is_object());
            let preserve = is_true(schema, "x-kubernetes-preserve-unknown-fields")
                || schema.get("additionalProperties").and_then(Value::as_bool) == Some(true);
            let keys: Vec<String> = map.keys().cloned().collect();
            for key in keys {
                let child_schema = properties.and_then(|p| p.get(&key)).or(additional);
                let child_path = join(path, &key);
                match child_schema {
                    Some(child_schema) => {
                        if map.get(&key).is_some_and(Value::is_null)
                            && !is_true(child_schema, "nullable")
                        {
                            map.remove(&key);
                        } else if let Some(child) = map.get_mut(&key) {
                            prune_node(child_schema, child, &child_path, unknown);
                        }
                    }
                    None if preserve => {}
                    None => {
                        map.remove(&key);
                        unknown.push(child_path);
                    }
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items").filter(|i| i.is_object()) {
                for (i, item) in items.iter_mut().enumerate() {
                    prune_node(item_schema, item, &format!("{path}[{i}]"), unknown);
                }
            }
        }
        _ => {}
    }
}

fn default_node(schema: &Value, value: &mut Value) {
    match value {
        Value::Object(map) => {
            if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
                for (key, child_schema) in properties {
                    if let (false, Some(default)) =
                        (map.contains_key(key), child_schema.get("default"))
                    {
                        map.insert(key.clone(), default.clone());
                    }
                    if let Some(child) = map.get_mut(key) {
                        default_node(child_schema, child);
                    }
                }
            }
            if let Some(additional) = schema.get("additionalProperties").filter(|a| a.is_object()) {
                for child in map.values_mut() {
                    default_node(additional, child);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for item in items {
                    default_node(item_schema, item);
                }
            }
        }
        _ => {}
    }
}

/// Translates a structural schema into a draft-4 JSON Schema.
fn to_json_schema(schema: &Value) -> Value {
    let Some(map) = schema.as_object() else {
        return schema.clone();
    };
    let nullable = is_true(schema, "nullable");
    if is_true(schema, "x-kubernetes-int-or-string") {
        let mut types = vec![json!("integer"), json!("string")];
        if nullable {
            types.push(json!("null"));
        }
        return json!({"type": types});
    }
    let mut out = Map::new();
    for (key, value) in map {
        let translated = match key.as_str() {
            "properties" => Value::Object(
                value
                    .as_object()
                    .map(|props| {
                        props
                            .iter()
                            .map(|(k, v)| (k.clone(), to_json_schema(v)))
                            .collect()
                    })
                    .unwrap_or_default(),
            ),
            "items" | "not" => to_json_schema(value),
            "additionalProperties" if value.is_object() => to_json_schema(value),
            "anyOf" | "allOf" | "oneOf" => Value::Array(
                value
                    .as_array()
                    .map(|v| v.iter().map(to_json_schema).collect())
                    .unwrap_or_default(),
            ),
            "type" if nullable => json!([value, "null"]),
            "enum" if nullable => {
                let mut values = value.as_array().cloned().unwrap_or_default();
                values.push(Value::Null);
                Value::Array(values)
            }
            "type"
            | "enum"
            | "required"
            | "minimum"
            | "maximum"
            | "exclusiveMinimum"
            | "exclusiveMaximum"
            | "minLength"
            | "maxLength"
            | "pattern"
            | "minItems"
            | "maxItems"
            | "uniqueItems"
            | "multipleOf"
            | "minProperties"
            | "maxProperties"
            | "additionalProperties" => value.clone(),
            // description, format, default, example, x-kubernetes-* : no validation meaning here.
            _ => continue,
        };
        out.insert(key.clone(), translated);
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crd() -> CrdSchema {
        let schema = json!({
            "type": "object",
            "properties": {
                "spec": {
                    "type": "object",
                    "properties": {
                        "flinkVersion": {"type": "string", "enum": ["v1_19", "v1_20"]},
                        "flinkConfiguration": {"x-kubernetes-preserve-unknown-fields": true},
                        "job": {"type": "object", "properties": {
                            "parallelism": {"type": "integer"},
                            "upgradeMode": {"type": "string", "default": "stateless"},
                        }},
                        "port": {"anyOf": [{"type": "integer"}, {"type": "string"}], "x-kubernetes-int-or-string": true},
                        "containers": {"type": "array", "items": {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}}},
                        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                    }
                },
                "status": {"type": "object", "properties": {"state": {"type": "string"}}},
            }
        });
        let crd = json!({"spec": {
            "group": "flink.apache.org",
            "names": {"plural": "flinkdeployments", "kind": "FlinkDeployment"},
            "versions": [{"name": "v1beta1", "schema": {"openAPIV3Schema": schema},
                "additionalPrinterColumns": [{"name": "State", "type": "string", "jsonPath": ".status.state"}]}],
        }});
        match CrdSchema::from_crd(&crd) {
            Ok(s) => s,
            Err(e) => panic!("{e:#}"),
        }
    }

    #[test]
    fn unknown_fields_are_pruned_and_reported() {
        let schema = crd();
        let mut obj = json!({
            "apiVersion": "flink.apache.org/v1beta1", "kind": "FlinkDeployment", "metadata": {"name": "x"},
            "bogus": 1,
            "spec": {"flinkVersion": "v1_20", "extra": true, "flinkConfiguration": {"a.b": "1", "nested": {"x": 1}},
                     "containers": [{"name": "c", "junk": 1}], "labels": {"a": "b"}, "job": null},
        });
        let unknown = schema.prune(&mut obj);
        assert_eq!(unknown, ["bogus", "spec.containers[0].junk", "spec.extra"]);
        assert_eq!(obj["spec"]["flinkConfiguration"]["nested"]["x"], 1);
        assert!(
            obj["spec"].get("job").is_none(),
            "non-nullable null dropped"
        );
        assert_eq!(obj["metadata"]["name"], "x");
    }

    #[test]
    fn errors_name_the_field_as_kubernetes_does() {
        let schema = crd();
        let obj = json!({"spec": {"flinkVersion": "v9_9", "job": {"parallelism": "one"}, "containers": [{}], "port": true}});
        let mut messages: Vec<String> = schema
            .validate(&obj)
            .iter()
            .map(FieldError::message)
            .collect();
        messages.sort();
        assert_eq!(
            messages,
            [
                "spec.containers[0].name: Required value",
                "spec.flinkVersion: Unsupported value: \"v9_9\": supported values: \"v1_19\", \"v1_20\"",
                "spec.job.parallelism: Invalid value: \"string\": spec.job.parallelism in body must be of type integer: \"string\"",
                "spec.port: Invalid value: \"boolean\": spec.port in body must be of type integer,string: \"boolean\"",
            ]
        );
        assert!(
            schema
                .validate(&json!({"spec": {"port": "8081"}}))
                .is_empty()
        );
        assert!(schema.validate(&json!({"spec": {"port": 8081}})).is_empty());
    }

    #[test]
    fn defaults_fill_missing_fields() {
        let schema = crd();
        let mut obj = json!({"spec": {"job": {}}});
        schema.apply_defaults(&mut obj);
        assert_eq!(obj["spec"]["job"]["upgradeMode"], "stateless");
    }

    #[test]
    fn printer_columns_read_their_paths() {
        let schema = crd();
        let columns = schema.printer_columns();
        assert_eq!(columns.len(), 1);
        assert_eq!(
            columns[0].cell(&json!({"status": {"state": "RUNNING"}})),
            json!("RUNNING")
        );
        assert_eq!(columns[0].cell(&json!({})), Value::Null);
    }

    #[test]
    fn the_real_crd_loads() {
        let path = crate::Config::default().crd_path;
        let schema = match CrdSchema::load(&path) {
            Ok(s) => s,
            Err(e) => panic!("{e:#}"),
        };
        let names: Vec<&str> = schema
            .printer_columns()
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        assert_eq!(names, ["Job Status", "Lifecycle State"]);
    }
}

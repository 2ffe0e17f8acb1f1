//! Errors as the Kubernetes API reports them: `Status` objects with the real codes and reasons.

use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::resources::ResourceDef;

/// One invalid field, rendered the way `k8s.io/apimachinery/pkg/util/validation/field` does.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct FieldError {
    /// Dotted path of the field, e.g. `spec.job.parallelism` or `spec.containers[0].name`.
    pub(crate) field: String,
    /// What is wrong with it.
    pub(crate) kind: FieldErrorKind,
}

/// The kinds of field errors the stand-in reports (a subset of `field.ErrorType`).
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum FieldErrorKind {
    /// `FieldValueRequired`: a required field is missing.
    Required,
    /// `FieldValueTypeInvalid`: the value has the wrong JSON type.
    TypeInvalid {
        /// The JSON type the value has ("string", "integer", ...).
        actual: String,
        /// The sentence explaining the expected type.
        detail: String,
    },
    /// `FieldValueNotSupported`: the value is not one of an enum's values.
    NotSupported {
        /// The rejected value.
        value: Value,
        /// The values the schema allows.
        supported: Vec<Value>,
    },
    /// `FieldValueInvalid`: any other invalid value.
    Invalid {
        /// The rejected value.
        value: Value,
        /// Why it is rejected.
        detail: String,
    },
}

impl FieldError {
    /// The `reason` of the error's `StatusCause`.
    pub(crate) fn reason(&self) -> &'static str {
        match self.kind {
            FieldErrorKind::Required => "FieldValueRequired",
            FieldErrorKind::TypeInvalid { .. } => "FieldValueTypeInvalid",
            FieldErrorKind::NotSupported { .. } => "FieldValueNotSupported",
            FieldErrorKind::Invalid { .. } => "FieldValueInvalid",
        }
    }

    /// The message without the field name, as in a `StatusCause`.
    pub(crate) fn cause_message(&self) -> String {
        match &self.kind {
            FieldErrorKind::Required => "Required value".to_owned(),
            FieldErrorKind::TypeInvalid { actual, detail } => {
                format!("Invalid value: {}: {detail}", quote(actual))
            }
            FieldErrorKind::NotSupported { value, supported } => {
                let supported: Vec<String> = supported.iter().map(render_value).collect();
                format!(
                    "Unsupported value: {}: supported values: {}",
                    render_value(value),
                    supported.join(", ")
                )
            }
            FieldErrorKind::Invalid { value, detail } => {
                format!("Invalid value: {}: {detail}", render_value(value))
            }
        }
    }

    /// The full message: `<field>: <cause message>`.
    pub(crate) fn message(&self) -> String {
        format!("{}: {}", self.field, self.cause_message())
    }
}

/// Renders a value the way Kubernetes field errors do: strings quoted, everything else as JSON.
fn render_value(value: &Value) -> String {
    match value {
        Value::String(s) => quote(s),
        other => other.to_string(),
    }
}

fn quote(s: &str) -> String {
    Value::String(s.to_owned()).to_string()
}

/// A failed request, answered as a `Status` object.
#[derive(Clone, Debug)]
pub(crate) struct ApiError {
    /// HTTP status code, repeated in `Status.code`.
    pub(crate) code: u16,
    /// `Status.reason` (`NotFound`, `AlreadyExists`, `Conflict`, `Invalid`, ...).
    pub(crate) reason: &'static str,
    /// `Status.message`.
    pub(crate) message: String,
    /// `Status.details`, when the real server sends them.
    pub(crate) details: Option<Value>,
}

impl ApiError {
    fn new(code: u16, reason: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            reason,
            message: message.into(),
            details: None,
        }
    }

    fn with_details(mut self, res: &ResourceDef, name: &str) -> ApiError {
        self.details = Some(json!({"name": name, "group": res.group, "kind": res.plural}));
        self
    }

    /// 404 for an object that does not exist.
    pub(crate) fn not_found(res: &ResourceDef, name: &str) -> ApiError {
        ApiError::new(
            404,
            "NotFound",
            format!("{} \"{name}\" not found", res.group_resource()),
        )
        .with_details(res, name)
    }

    /// 404 for a path the server does not serve.
    pub(crate) fn path_not_found() -> ApiError {
        ApiError::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )
    }

    /// 404 for a namespace that does not exist, when creating an object in it.
    pub(crate) fn namespace_not_found(namespace: &str) -> ApiError {
        ApiError::new(
            404,
            "NotFound",
            format!("namespaces \"{namespace}\" not found"),
        )
        .with_details(&crate::resources::NAMESPACES, namespace)
    }

    /// 409 for a create of an object that exists.
    pub(crate) fn already_exists(res: &ResourceDef, name: &str) -> ApiError {
        ApiError::new(
            409,
            "AlreadyExists",
            format!("{} \"{name}\" already exists", res.group_resource()),
        )
        .with_details(res, name)
    }

    /// 409 for a write based on a stale `resourceVersion`.
    pub(crate) fn stale(res: &ResourceDef, name: &str) -> ApiError {
        ApiError::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; \
                 please apply your changes to the latest version and try again",
                res.group_resource()
            ),
        )
        .with_details(res, name)
    }

    /// 409 for a server-side apply that conflicts with other field managers. Each conflict
    /// is `(manager, field)`: the manager as the real server prints it (`"kubectl" using v1`,
    /// with ` at <time>` for an Update), the field as `.spec.image`.
    pub(crate) fn apply_conflict(
        res: &ResourceDef,
        name: &str,
        conflicts: &[(String, String)],
    ) -> ApiError {
        let message = match conflicts {
            [(manager, field)] => {
                format!("Apply failed with 1 conflict: conflict with {manager}: {field}")
            }
            _ => {
                let mut managers: Vec<&str> = conflicts.iter().map(|(m, _)| m.as_str()).collect();
                managers.sort_unstable();
                managers.dedup();
                let mut lines = Vec::new();
                for manager in managers {
                    lines.push(format!("conflicts with {manager}:"));
                    lines.extend(
                        conflicts
                            .iter()
                            .filter(|(m, _)| m == manager)
                            .map(|(_, field)| format!("- {field}")),
                    );
                }
                format!(
                    "Apply failed with {} conflicts: {}",
                    conflicts.len(),
                    lines.join("\n")
                )
            }
        };
        let causes: Vec<Value> = conflicts
            .iter()
            .map(|(manager, field)| {
                json!({"reason": "FieldManagerConflict", "message": format!("conflict with {manager}"), "field": field})
            })
            .collect();
        let mut err = ApiError::new(409, "Conflict", message).with_details(res, name);
        if let Some(Value::Object(details)) = err.details.as_mut() {
            details.insert("causes".into(), Value::Array(causes));
        }
        err
    }

    /// 409 for a server-side apply that would create an object but names a `metadata.uid`:
    /// the object it was meant for no longer exists.
    pub(crate) fn uid_mismatch_on_create(res: &ResourceDef, name: &str, uid: &str) -> ApiError {
        ApiError::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} \"{name}\": uid mismatch: the provided object \
                 specified uid {uid}, and no existing object was found",
                res.group_resource()
            ),
        )
        .with_details(res, name)
    }

    /// 409 for a precondition (`uid` or `resourceVersion` of a delete, the `uid` of an
    /// update's body) that the stored object does not meet, worded as the storage layer's
    /// error the real server wraps: `what` is `UID` or `ResourceVersion`.
    pub(crate) fn precondition_failed(
        res: &ResourceDef,
        namespace: &str,
        name: &str,
        what: &str,
        expected: &str,
        actual: &str,
    ) -> ApiError {
        ApiError::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} \"{name}\": StorageError: invalid object, Code: 4, \
                 Key: {}, ResourceVersion: 0, AdditionalErrorMsg: Precondition failed: {what} in \
                 precondition: {expected}, {what} in object meta: {actual}",
                res.group_resource(),
                res.storage_key(namespace, name)
            ),
        )
        .with_details(res, name)
    }

    /// 422 with the field errors of an object that fails validation.
    pub(crate) fn invalid(res: &ResourceDef, name: &str, errors: &[FieldError]) -> ApiError {
        let messages: Vec<String> = errors.iter().map(FieldError::message).collect();
        let joined = if messages.len() == 1 {
            messages.join("")
        } else {
            format!("[{}]", messages.join(", "))
        };
        let causes: Vec<Value> = errors
            .iter()
            .map(|e| json!({"reason": e.reason(), "message": e.cause_message(), "field": e.field}))
            .collect();
        ApiError {
            code: 422,
            reason: "Invalid",
            message: format!("{} \"{name}\" is invalid: {joined}", res.qualified_kind()),
            details: Some(
                json!({"name": name, "group": res.group, "kind": res.kind, "causes": causes}),
            ),
        }
    }

    /// 400 for a malformed request.
    pub(crate) fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(400, "BadRequest", message)
    }

    /// 405 for a verb the resource does not support.
    pub(crate) fn method_not_allowed(message: impl Into<String>) -> ApiError {
        ApiError::new(405, "MethodNotAllowed", message)
    }

    /// 415 for a patch type the server does not understand.
    pub(crate) fn unsupported_media_type(content_type: &str) -> ApiError {
        ApiError::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json (got {content_type:?})"
            ),
        )
    }

    /// 422 for a JSON patch that cannot be applied.
    pub(crate) fn unsupported_json_patch(message: impl Into<String>) -> ApiError {
        ApiError::new(
            422,
            "Invalid",
            format!(
                "the server rejected our request due to an error in our request: {}",
                message.into()
            ),
        )
    }

    /// 415 for a body in a serialization the stand-in does not read (protobuf, CBOR).
    pub(crate) fn unsupported_body(content_type: &str) -> ApiError {
        ApiError::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml (got {content_type:?})"
            ),
        )
    }

    /// 410 for a `resourceVersion` or `continue` token older than the event log keeps.
    pub(crate) fn gone(message: impl Into<String>) -> ApiError {
        ApiError::new(410, "Expired", message)
    }

    /// 504 for a `resourceVersion` newer than the server has seen.
    pub(crate) fn too_large_resource_version(requested: u64, current: u64) -> ApiError {
        let mut err = ApiError::new(
            504,
            "Timeout",
            format!("Too large resource version: {requested}, current: {current}"),
        );
        err.details = Some(
            json!({"causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}], "retryAfterSeconds": 1}),
        );
        err
    }

    /// 403 for a request the authorizer denies (`message` is the whole sentence, see
    /// `rbac::forbidden`).
    pub(crate) fn forbidden(message: String, details: Value) -> ApiError {
        ApiError {
            code: 403,
            reason: "Forbidden",
            message,
            details: Some(details),
        }
    }

    /// 422 for an access review without attributes.
    pub(crate) fn invalid_review(cause: &str) -> ApiError {
        ApiError::new(
            422,
            "Invalid",
            format!("SubjectAccessReview.authorization.k8s.io \"\" is invalid: {cause}"),
        )
    }

    /// 500 for a failure inside the stand-in itself.
    pub(crate) fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(500, "InternalError", message)
    }

    /// The `Status` object of this error.
    pub(crate) fn to_status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let (Some(details), Value::Object(map)) = (&self.details, &mut status) {
            map.insert("details".into(), details.clone());
        }
        status
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = http::StatusCode::from_u16(self.code)
            .unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
        (code, axum::Json(self.to_status())).into_response()
    }
}

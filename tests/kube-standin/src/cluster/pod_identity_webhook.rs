//! The EKS pod identity webhook (`amazon-eks-pod-identity-webhook`), as its README describes
//! the mutation: a pod whose service account carries `eks.amazonaws.com/role-arn` gets
//! `AWS_ROLE_ARN`, `AWS_WEB_IDENTITY_TOKEN_FILE` and `AWS_STS_REGIONAL_ENDPOINTS` in every
//! container and init container, and the projected service account token (audience
//! `sts.amazonaws.com`) mounted at `/var/run/secrets/eks.amazonaws.com/serviceaccount`. The
//! mutation happens when the pod spec is made: a pod made before the annotation has none.

use serde_json::{Value, json};

use crate::Shared;
use crate::meta;
use crate::resources::SERVICE_ACCOUNTS;

/// The annotation that gives a pod IRSA credentials when its service account has it.
const ROLE_ARN_ANNOTATION: &str = "eks.amazonaws.com/role-arn";

/// What the EKS pod identity webhook does to a pod whose service account carries
/// `eks.amazonaws.com/role-arn`: environment, projected token volume, mounts.
pub(super) fn inject_irsa(shared: &Shared, ns: &str, service_account: &str, spec: &mut Value) {
    let Ok(sa) = shared.api.get(&SERVICE_ACCOUNTS, ns, service_account) else {
        return;
    };
    let Some(role_arn) = meta::annotation(&sa, ROLE_ARN_ANNOTATION) else {
        return;
    };
    let env = [
        json!({"name": "AWS_STS_REGIONAL_ENDPOINTS", "value": "regional"}),
        json!({"name": "AWS_ROLE_ARN", "value": role_arn}),
        json!({"name": "AWS_WEB_IDENTITY_TOKEN_FILE", "value": "/var/run/secrets/eks.amazonaws.com/serviceaccount/token"}),
    ];
    let mount = json!({"name": "aws-iam-token", "mountPath": "/var/run/secrets/eks.amazonaws.com/serviceaccount", "readOnly": true});
    for list in ["containers", "initContainers"] {
        if let Some(Value::Array(containers)) = spec.get_mut(list) {
            for container in containers {
                let mut container_env = container
                    .get("env")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                container_env.extend(env.iter().cloned());
                container["env"] = Value::Array(container_env);
                let mut mounts = container
                    .get("volumeMounts")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                mounts.push(mount.clone());
                container["volumeMounts"] = Value::Array(mounts);
            }
        }
    }
    let mut volumes = spec
        .get("volumes")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    volumes.push(
        json!({"name": "aws-iam-token", "projected": {"sources": [{"serviceAccountToken": {
        "audience": "sts.amazonaws.com", "expirationSeconds": 86400, "path": "token"}}]}}),
    );
    spec["volumes"] = Value::Array(volumes);
}

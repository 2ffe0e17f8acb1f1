//! Pods that run as the service account without its role: the EKS pod identity webhook
//! gives a pod the role of its service account's `eks.amazonaws.com/role-arn` annotation
//! (`AWS_ROLE_ARN` and `AWS_WEB_IDENTITY_TOKEN_FILE` in every container) when the pod is
//! created, never afterwards. A pod created before the annotation, or before it named the
//! current role, keeps what it got then until it is recreated.

use k8s_openapi::api::core::v1::{Pod, ServiceAccount};
use kube::api::{Api, ListParams};
use serde::Serialize;

use crate::Irsa;
use crate::decide::ROLE_ARN_ANNOTATION;
use crate::error::{Result, kube_error};
use crate::spec::IrsaSpec;

/// The environment variable the webhook sets to the role's ARN.
pub const ROLE_ARN_ENV: &str = "AWS_ROLE_ARN";

/// The environment variable the webhook sets to the projected token's path.
pub const WEB_IDENTITY_TOKEN_ENV: &str = "AWS_WEB_IDENTITY_TOKEN_FILE";

/// A pod of the service account that does not carry the role its annotation names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StalePod {
    /// The pod's name.
    pub name: String,
    /// When it was created (`metadata.creationTimestamp`, RFC 3339), when known.
    pub created: Option<String>,
    /// The role its containers were given (`AWS_ROLE_ARN`), `None` when they have no web
    /// identity at all.
    pub role_arn: Option<String>,
}

/// What the service account and its pods say, read together by [`Irsa::pods_of_account`].
#[derive(Debug, Clone, Default)]
pub struct AccountPods {
    /// The service account's `eks.amazonaws.com/role-arn`, `None` when it is missing or has
    /// no annotation.
    pub annotation: Option<String>,
    /// The pods that run as the service account now.
    pub pods: Vec<Pod>,
}

/// The pods of `read` that were not given the role its annotation names: a container without
/// `AWS_WEB_IDENTITY_TOKEN_FILE`, or with an `AWS_ROLE_ARN` naming another role. None when the
/// account has no annotation (no pod can have the role then). Pure.
pub fn stale_pods(read: &AccountPods) -> Vec<StalePod> {
    let Some(annotation) = read.annotation.as_deref() else {
        return Vec::new();
    };
    read.pods
        .iter()
        .filter_map(|pod| {
            let spec = pod.spec.as_ref()?;
            let containers = spec
                .containers
                .iter()
                .chain(spec.init_containers.iter().flatten());
            let mut role = None;
            let mut stale = false;
            for container in containers {
                let env = container.env.as_deref().unwrap_or_default();
                let value = |name: &str| {
                    env.iter()
                        .find(|e| e.name == name)
                        .and_then(|e| e.value.clone())
                };
                let container_role = value(ROLE_ARN_ENV);
                if value(WEB_IDENTITY_TOKEN_ENV).is_none()
                    || container_role.as_deref() != Some(annotation)
                {
                    stale = true;
                }
                role = role.or(container_role);
            }
            stale.then(|| StalePod {
                name: pod.metadata.name.clone().unwrap_or_default(),
                created: pod
                    .metadata
                    .creation_timestamp
                    .as_ref()
                    .map(|t| t.0.to_string()),
                role_arn: role,
            })
        })
        .collect()
}

impl Irsa {
    /// Reads the spec's service account and the pods that run as it, together. Makes no
    /// write; [`stale_pods`] decides which of them lack the role.
    pub async fn pods_of_account(&self, spec: &IrsaSpec) -> Result<AccountPods> {
        let accounts: Api<ServiceAccount> = Api::namespaced(self.kube.clone(), &spec.namespace);
        let pods: Api<Pod> = Api::namespaced(self.kube.clone(), &spec.namespace);
        let selector = format!("spec.serviceAccountName={}", spec.service_account);
        let params = ListParams::default().fields(&selector);
        let (account, pods) =
            tokio::join!(accounts.get_opt(&spec.service_account), pods.list(&params),);
        let account = account.map_err(|e| kube_error("get", &spec.account_name(), e))?;
        let pods = pods
            .map_err(|e| kube_error("list pods", &format!("{}/{selector}", spec.namespace), e))?;
        Ok(AccountPods {
            annotation: account
                .and_then(|a| a.metadata.annotations)
                .and_then(|mut a| a.remove(ROLE_ARN_ANNOTATION)),
            pods: pods.items,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{Container, EnvVar, PodSpec};
    use kube::api::ObjectMeta;

    const ROLE: &str = "arn:aws:iam::123456789012:role/flink-s3-reader";

    fn pod(name: &str, role: Option<&str>) -> Pod {
        let env = role.map(|role| {
            vec![
                EnvVar {
                    name: ROLE_ARN_ENV.into(),
                    value: Some(role.into()),
                    ..EnvVar::default()
                },
                EnvVar {
                    name: WEB_IDENTITY_TOKEN_ENV.into(),
                    value: Some("/var/run/secrets/eks.amazonaws.com/serviceaccount/token".into()),
                    ..EnvVar::default()
                },
            ]
        });
        Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..ObjectMeta::default()
            },
            spec: Some(PodSpec {
                containers: vec![Container {
                    name: "flink-main-container".into(),
                    env,
                    ..Container::default()
                }],
                ..PodSpec::default()
            }),
            ..Pod::default()
        }
    }

    #[test]
    fn a_pod_made_before_the_annotation_or_for_another_role_is_stale_and_one_made_after_is_not() {
        let read = AccountPods {
            annotation: Some(ROLE.into()),
            pods: vec![
                pod("before", None),
                pod("after", Some(ROLE)),
                pod("other", Some("arn:aws:iam::123456789012:role/old")),
            ],
        };
        let stale = stale_pods(&read);
        let names: Vec<&str> = stale.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["before", "other"]);
        assert_eq!(stale[0].role_arn, None);
        assert_eq!(
            stale[1].role_arn.as_deref(),
            Some("arn:aws:iam::123456789012:role/old")
        );
    }

    #[test]
    fn without_an_annotation_no_pod_is_judged() {
        let read = AccountPods {
            annotation: None,
            pods: vec![pod("p", None)],
        };
        assert!(stale_pods(&read).is_empty());
    }
}

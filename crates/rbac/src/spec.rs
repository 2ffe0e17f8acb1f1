//! What the user asks for, and the RBAC objects it implies: pure data, no IO.

use std::collections::BTreeMap;

use flink_eks_manifest::{InvalidName, validate_dns1123_label, validate_dns1123_subdomain};
use k8s_openapi::api::authorization::v1::ResourceAttributes;
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

/// Label key that marks what flink-eks created, with value [`MANAGED_BY_VALUE`]: the key and
/// value flink-eks-irsa tags its IAM role and policy with.
pub const MANAGED_BY_KEY: &str = "flink-eks.io/managed-by";
/// Value of [`MANAGED_BY_KEY`].
pub const MANAGED_BY_VALUE: &str = "flink-eks";
/// Label key naming the service account a Role or RoleBinding was made for (the key
/// flink-eks-irsa tags with).
pub const SERVICE_ACCOUNT_KEY: &str = "flink-eks.io/service-account";

/// One rule of the job's Role: an API group, its resources, and the verbs on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobRule {
    /// The API group (`""` is core).
    pub api_group: &'static str,
    /// The resources.
    pub resources: &'static [&'static str],
    /// The verbs.
    pub verbs: &'static [&'static str],
}

const VERBS: &[&str] = &[
    "get", "list", "watch", "create", "update", "patch", "delete",
];

/// What Flink's native mode does as the job's service account: the JobManager creates the
/// TaskManager pods and the HA ConfigMaps, owned by its Deployment. These are the job rules
/// of the Apache Flink Kubernetes Operator's Helm chart (`flink-operator.jobRbacRules` in
/// `templates/rbac/_helpers.tpl`, release 1.15.0), rule for rule.
pub const JOB_RULES: [JobRule; 2] = [
    JobRule {
        api_group: "",
        resources: &["pods", "configmaps"],
        verbs: VERBS,
    },
    JobRule {
        api_group: "apps",
        resources: &["deployments", "deployments/finalizers"],
        verbs: VERBS,
    },
];

/// Whose permissions, where: the job's namespace and service account.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RbacSpec {
    /// The job's namespace; created when missing.
    pub namespace: String,
    /// The service account the FlinkDeployment runs as (`spec.serviceAccount`).
    pub service_account: String,
    /// Take over a Role or RoleBinding of the same name that flink-eks did not create.
    pub adopt: bool,
}

impl RbacSpec {
    /// A spec for `service_account` in `namespace`, without adopting.
    pub fn new(namespace: impl Into<String>, service_account: impl Into<String>) -> RbacSpec {
        RbacSpec {
            namespace: namespace.into(),
            service_account: service_account.into(),
            adopt: false,
        }
    }

    /// Checks the names by Kubernetes' rules.
    pub fn validate(&self) -> Result<(), InvalidName> {
        validate_dns1123_label("namespace", &self.namespace)?;
        validate_dns1123_subdomain("service account", &self.service_account)
    }

    /// The name of the Role and of the RoleBinding: `flink-eks-<service account>`.
    pub fn object_name(&self) -> String {
        format!("flink-eks-{}", self.service_account)
    }

    /// `namespace/flink-eks-<service account>`, as plans name the Role and RoleBinding.
    pub fn qualified_name(&self) -> String {
        format!("{}/{}", self.namespace, self.object_name())
    }

    /// The user the API server sees when the job's pods call it:
    /// `system:serviceaccount:<namespace>:<service account>`.
    pub fn user(&self) -> String {
        format!(
            "system:serviceaccount:{}:{}",
            self.namespace, self.service_account
        )
    }

    /// The groups every service account token carries: `system:serviceaccounts`,
    /// `system:serviceaccounts:<namespace>`, `system:authenticated`.
    pub fn groups(&self) -> Vec<String> {
        vec![
            "system:serviceaccounts".to_owned(),
            format!("system:serviceaccounts:{}", self.namespace),
            "system:authenticated".to_owned(),
        ]
    }

    /// The labels that mark the Role and RoleBinding as flink-eks's, for this account.
    pub fn labels(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            (MANAGED_BY_KEY.to_owned(), MANAGED_BY_VALUE.to_owned()),
            (SERVICE_ACCOUNT_KEY.to_owned(), self.service_account.clone()),
        ])
    }

    /// The Role: exactly [`JOB_RULES`], labelled as flink-eks's.
    pub fn role(&self) -> Role {
        Role {
            metadata: self.metadata(),
            rules: Some(
                JOB_RULES
                    .iter()
                    .map(|rule| PolicyRule {
                        api_groups: Some(vec![rule.api_group.to_owned()]),
                        resources: Some(rule.resources.iter().map(|r| (*r).to_owned()).collect()),
                        verbs: rule.verbs.iter().map(|v| (*v).to_owned()).collect(),
                        ..PolicyRule::default()
                    })
                    .collect(),
            ),
        }
    }

    /// The RoleBinding of [`RbacSpec::role`] to the service account.
    pub fn role_binding(&self) -> RoleBinding {
        RoleBinding {
            metadata: self.metadata(),
            role_ref: self.role_ref(),
            subjects: Some(vec![self.subject()]),
        }
    }

    pub(crate) fn role_ref(&self) -> RoleRef {
        RoleRef {
            api_group: "rbac.authorization.k8s.io".to_owned(),
            kind: "Role".to_owned(),
            name: self.object_name(),
        }
    }

    pub(crate) fn subject(&self) -> Subject {
        Subject {
            kind: "ServiceAccount".to_owned(),
            name: self.service_account.clone(),
            namespace: Some(self.namespace.clone()),
            api_group: None,
        }
    }

    fn metadata(&self) -> ObjectMeta {
        ObjectMeta {
            name: Some(self.object_name()),
            namespace: Some(self.namespace.clone()),
            labels: Some(self.labels()),
            ..ObjectMeta::default()
        }
    }

    /// One SubjectAccessReview's attributes per resource and verb of [`JOB_RULES`], in the
    /// job's namespace.
    pub fn review_attributes(&self) -> Vec<ResourceAttributes> {
        JOB_RULES
            .iter()
            .flat_map(|rule| {
                rule.resources.iter().flat_map(move |resource| {
                    let (resource, subresource) = match resource.split_once('/') {
                        Some((r, s)) => (r, Some(s.to_owned())),
                        None => (*resource, None),
                    };
                    rule.verbs.iter().map(move |verb| ResourceAttributes {
                        namespace: Some(self.namespace.clone()),
                        group: Some(rule.api_group.to_owned()),
                        resource: Some(resource.to_owned()),
                        subresource: subresource.clone(),
                        verb: Some((*verb).to_owned()),
                        ..ResourceAttributes::default()
                    })
                })
            })
            .collect()
    }
}

/// The rules as one line, for plans: `pods, configmaps: get, list, …; apps/deployments, …`.
pub fn describe_rules() -> String {
    JOB_RULES
        .iter()
        .map(|rule| {
            let resources: Vec<String> = rule
                .resources
                .iter()
                .map(|r| {
                    if rule.api_group.is_empty() {
                        (*r).to_owned()
                    } else {
                        format!("{}/{r}", rule.api_group)
                    }
                })
                .collect();
            format!("{}: {}", resources.join(", "), rule.verbs.join(","))
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> RbacSpec {
        RbacSpec::new("streaming", "flink-runner")
    }

    #[test]
    fn the_role_holds_the_chart_job_rules_exactly() {
        let role = spec().role();
        let rules = role.rules.unwrap();
        assert_eq!(rules.len(), 2);
        assert_eq!(rules[0].api_groups.as_deref(), Some(&[String::new()][..]));
        assert_eq!(
            rules[0].resources.as_deref().unwrap(),
            ["pods", "configmaps"]
        );
        assert_eq!(rules[1].api_groups.as_deref().unwrap(), ["apps"]);
        assert_eq!(
            rules[1].resources.as_deref().unwrap(),
            ["deployments", "deployments/finalizers"]
        );
        for rule in &rules {
            assert_eq!(
                rule.verbs,
                [
                    "get", "list", "watch", "create", "update", "patch", "delete"
                ]
            );
        }
        assert_eq!(
            role.metadata.name.as_deref(),
            Some("flink-eks-flink-runner")
        );
        assert_eq!(role.metadata.labels.unwrap()[MANAGED_BY_KEY], "flink-eks");
    }

    #[test]
    fn the_binding_names_the_role_and_the_account() {
        let binding = spec().role_binding();
        assert_eq!(binding.role_ref.kind, "Role");
        assert_eq!(binding.role_ref.name, "flink-eks-flink-runner");
        let subjects = binding.subjects.unwrap();
        assert_eq!(subjects.len(), 1);
        assert_eq!(subjects[0].kind, "ServiceAccount");
        assert_eq!(subjects[0].name, "flink-runner");
        assert_eq!(subjects[0].namespace.as_deref(), Some("streaming"));
    }

    #[test]
    fn one_review_per_resource_and_verb_with_subresources_split() {
        let reviews = spec().review_attributes();
        assert_eq!(reviews.len(), 4 * 7);
        let finalizers = reviews
            .iter()
            .find(|r| r.subresource.as_deref() == Some("finalizers"))
            .unwrap();
        assert_eq!(finalizers.resource.as_deref(), Some("deployments"));
        assert_eq!(finalizers.group.as_deref(), Some("apps"));
        assert!(
            reviews
                .iter()
                .all(|r| r.namespace.as_deref() == Some("streaming"))
        );
        assert_eq!(
            spec().user(),
            "system:serviceaccount:streaming:flink-runner"
        );
        assert_eq!(spec().groups()[1], "system:serviceaccounts:streaming");
    }

    #[test]
    fn names_are_checked() {
        assert!(RbacSpec::new("Streaming", "flink").validate().is_err());
        assert!(
            RbacSpec::new("streaming", "flink_runner")
                .validate()
                .is_err()
        );
        assert!(spec().validate().is_ok());
    }
}

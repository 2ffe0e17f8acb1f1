//! The plan: what exists compared with what the spec asks for, one row per resource.
//! Computing it is pure ([`plan_rows`] takes what was read); [`crate::Irsa::plan`] does the
//! reading.

use std::fmt;

use serde::Serialize;

use crate::documents::{PolicyDocument, STS_AUDIENCE};
use crate::error::{Error, Result};
use crate::spec::{IdentityMode, IrsaSpec};

/// Tag key that marks what flink-eks created, with value [`MANAGED_BY_VALUE`].
pub const MANAGED_BY_KEY: &str = "flink-eks.io/managed-by";
/// Value of [`MANAGED_BY_KEY`].
pub const MANAGED_BY_VALUE: &str = "flink-eks";
/// Tag key naming the EKS cluster a role or policy was made for.
pub const CLUSTER_TAG_KEY: &str = "flink-eks.io/cluster";
/// Tag key naming the namespace of the service account a role or policy was made for.
pub const NAMESPACE_TAG_KEY: &str = "flink-eks.io/namespace";
/// Tag key naming the service account a role or policy was made for.
pub const SERVICE_ACCOUNT_TAG_KEY: &str = "flink-eks.io/service-account";
/// The service account annotation that the EKS Pod Identity Webhook reads.
pub const ROLE_ARN_ANNOTATION: &str = "eks.amazonaws.com/role-arn";
/// The field manager of server-side apply.
pub const FIELD_MANAGER: &str = "flink-eks";

/// The tags that prove a role or policy was created by flink-eks for this spec.
pub fn ownership_tags(spec: &IrsaSpec) -> Vec<(String, String)> {
    vec![
        (MANAGED_BY_KEY.to_owned(), MANAGED_BY_VALUE.to_owned()),
        (CLUSTER_TAG_KEY.to_owned(), spec.cluster.clone()),
        (NAMESPACE_TAG_KEY.to_owned(), spec.namespace.clone()),
        (
            SERVICE_ACCOUNT_TAG_KEY.to_owned(),
            spec.service_account.clone(),
        ),
    ]
}

/// The resources [`crate::Irsa::apply`] manages for `spec`, in the order it handles them, named
/// without anything read from AWS (a dry run lists them). The OIDC provider, known only by its
/// issuer once EKS is asked, is named by its cluster.
pub fn resources(spec: &IrsaSpec) -> Vec<(ResourceKind, String)> {
    let mut resources = Vec::new();
    if spec.mode == IdentityMode::Irsa {
        resources.push((
            ResourceKind::OidcProvider,
            format!("of cluster {}", spec.cluster),
        ));
    }
    resources.push((ResourceKind::Policy, spec.policy_name.clone()));
    resources.push((ResourceKind::Role, spec.role_name.clone()));
    resources.push((ResourceKind::Attachment, attachment_name(spec)));
    resources.push(match spec.mode {
        IdentityMode::Irsa => (ResourceKind::ServiceAccount, spec.account_name()),
        IdentityMode::PodIdentity => (
            ResourceKind::PodIdentityAssociation,
            spec.association_name(),
        ),
    });
    resources
}

/// The attachment of the policy to the role, as plans and reports name it.
pub(crate) fn attachment_name(spec: &IrsaSpec) -> String {
    format!("{} -> {}", spec.policy_name, spec.role_name)
}

/// Whether `tags` carry every ownership tag of `spec` with the same value.
pub fn is_ours(tags: &[(String, String)], spec: &IrsaSpec) -> bool {
    ownership_tags(spec)
        .iter()
        .all(|wanted| tags.contains(wanted))
}

pub(crate) fn tags_text(tags: &[(String, String)]) -> String {
    if tags.is_empty() {
        return "none".to_owned();
    }
    tags.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The kind of resource a row is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ResourceKind {
    /// The IAM OpenID Connect identity provider for the cluster's issuer.
    OidcProvider,
    /// The customer-managed permission policy.
    Policy,
    /// The IAM role.
    Role,
    /// The policy's attachment to the role.
    Attachment,
    /// The Kubernetes service account and its `eks.amazonaws.com/role-arn` annotation.
    ServiceAccount,
    /// The EKS Pod Identity association of the service account.
    PodIdentityAssociation,
}

impl fmt::Display for ResourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ResourceKind::OidcProvider => "OIDC provider",
            ResourceKind::Policy => "policy",
            ResourceKind::Role => "role",
            ResourceKind::Attachment => "attachment",
            ResourceKind::ServiceAccount => "service account",
            ResourceKind::PodIdentityAssociation => "pod identity association",
        })
    }
}

/// What happens to a resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// It does not exist and is created.
    Create,
    /// It exists and is changed.
    Update,
    /// It exists as asked: no call is made.
    NoChange,
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Action::Create => "create",
            Action::Update => "update",
            Action::NoChange => "no change",
        })
    }
}

/// One resource of the plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlanRow {
    /// What kind of resource.
    pub kind: ResourceKind,
    /// Its name or ARN.
    pub name: String,
    /// What happens to it.
    pub action: Action,
    /// Why, in a few words.
    pub detail: String,
}

impl fmt::Display for PlanRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_row(f, 9, self.action, self.kind, &self.name, &self.detail)
    }
}

/// Writes one row of a plan or teardown, `verb kind name (detail)`, the verb padded to
/// `width` so that the rows line up; no parentheses when there is no detail.
pub(crate) fn write_row(
    f: &mut fmt::Formatter<'_>,
    width: usize,
    verb: impl fmt::Display,
    kind: ResourceKind,
    name: &str,
    detail: &str,
) -> fmt::Result {
    write!(f, "{:<width$} {kind} {name}", verb.to_string())?;
    if !detail.is_empty() {
        write!(f, " ({detail})")?;
    }
    Ok(())
}

/// The plan: what [`crate::Irsa::apply`] would do, computed from reads only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    /// The AWS account (from STS).
    pub account: String,
    /// The role's ARN.
    pub role_arn: String,
    /// The policy's ARN.
    pub policy_arn: String,
    /// The cluster's OIDC issuer URL (IRSA mode only).
    pub issuer: Option<String>,
    /// One row per resource, in the order apply handles them.
    pub rows: Vec<PlanRow>,
}

impl Plan {
    /// Whether applying would change nothing.
    pub fn is_noop(&self) -> bool {
        self.rows.iter().all(|row| row.action == Action::NoChange)
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for row in &self.rows {
            writeln!(f, "{row}")?;
        }
        Ok(())
    }
}

/// What was read of the OIDC provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ProviderSeen {
    Missing,
    Present { client_ids: Vec<String> },
}

/// What was read of the policy.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum PolicySeen {
    Missing,
    Present {
        tags: Vec<(String, String)>,
        default_version: String,
        /// `None` when the default version is not readable policy JSON.
        document: Option<Box<PolicyDocument>>,
    },
}

/// What was read of the role.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum RoleSeen {
    Missing,
    Present {
        tags: Vec<(String, String)>,
        /// `None` when the trust policy is not readable policy JSON.
        trust: Option<Box<PolicyDocument>>,
        attached: Vec<String>,
    },
}

/// What was read of the service account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AccountSeen {
    Missing,
    Present { role_arn_annotation: Option<String> },
}

/// What was read of the pod identity association.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AssociationSeen {
    Missing,
    Present { id: String, role_arn: String },
}

/// Everything read before planning.
#[derive(Debug, Clone)]
pub(crate) struct Seen {
    pub(crate) account: String,
    pub(crate) role_arn: String,
    pub(crate) policy_arn: String,
    pub(crate) provider_arn: Option<String>,
    pub(crate) issuer: Option<String>,
    pub(crate) provider: Option<ProviderSeen>,
    pub(crate) policy: PolicySeen,
    pub(crate) role: RoleSeen,
    /// IRSA mode.
    pub(crate) service_account: Option<AccountSeen>,
    /// Pod Identity mode.
    pub(crate) association: Option<AssociationSeen>,
}

/// The documents the spec asks for, in the account and partition at hand.
#[derive(Debug, Clone)]
pub(crate) struct Desired {
    pub(crate) permission: PolicyDocument,
    pub(crate) trust: PolicyDocument,
}

/// Compares what was read with what is wanted. Refuses (before any write) to touch a
/// role or policy that flink-eks did not create for this spec, unless `spec.adopt`.
pub(crate) fn plan_rows(spec: &IrsaSpec, seen: &Seen, desired: &Desired) -> Result<Vec<PlanRow>> {
    let mut rows = Vec::new();
    let row = |kind, name: &str, action, detail: &str| PlanRow {
        kind,
        name: name.to_owned(),
        action,
        detail: detail.to_owned(),
    };

    if let (Some(provider), Some(arn)) = (&seen.provider, &seen.provider_arn) {
        rows.push(match provider {
            ProviderSeen::Missing => row(
                ResourceKind::OidcProvider,
                arn,
                Action::Create,
                "client id sts.amazonaws.com; IAM verifies the EKS issuer through its trusted CAs",
            ),
            ProviderSeen::Present { client_ids }
                if !client_ids.iter().any(|c| c == STS_AUDIENCE) =>
            {
                row(
                    ResourceKind::OidcProvider,
                    arn,
                    Action::Update,
                    "add client id sts.amazonaws.com",
                )
            }
            ProviderSeen::Present { .. } => {
                row(ResourceKind::OidcProvider, arn, Action::NoChange, "")
            }
        });
    }

    rows.push(match &seen.policy {
        PolicySeen::Missing => row(ResourceKind::Policy, &seen.policy_arn, Action::Create, "tagged as flink-eks"),
        PolicySeen::Present { tags, default_version, document } => {
            let ours = is_ours(tags, spec);
            if !ours && !spec.adopt {
                return Err(Error::PolicyNotOurs { policy_arn: seen.policy_arn.clone(), tags: tags_text(tags) });
            }
            let same = document.as_ref().is_some_and(|d| d.same_meaning(&desired.permission));
            match (ours, same) {
                (true, true) => row(ResourceKind::Policy, &seen.policy_arn, Action::NoChange, ""),
                (true, false) => row(
                    ResourceKind::Policy,
                    &seen.policy_arn,
                    Action::Update,
                    &format!("document differs from {default_version}: new default version"),
                ),
                (false, true) => row(ResourceKind::Policy, &seen.policy_arn, Action::Update, "adopt: tag as flink-eks"),
                (false, false) => row(
                    ResourceKind::Policy,
                    &seen.policy_arn,
                    Action::Update,
                    &format!("adopt: tag as flink-eks; document differs from {default_version}: new default version"),
                ),
            }
        }
    });

    let attached = match &seen.role {
        RoleSeen::Missing => {
            rows.push(row(
                ResourceKind::Role,
                &spec.role_name,
                Action::Create,
                "with trust policy, tagged as flink-eks",
            ));
            false
        }
        RoleSeen::Present {
            tags,
            trust,
            attached,
        } => {
            let ours = is_ours(tags, spec);
            if !ours && !spec.adopt {
                return Err(Error::RoleNotOurs {
                    role: spec.role_name.clone(),
                    cluster: spec.cluster.clone(),
                    namespace: spec.namespace.clone(),
                    service_account: spec.service_account.clone(),
                    tags: tags_text(tags),
                });
            }
            let same = trust
                .as_ref()
                .is_some_and(|t| t.same_meaning(&desired.trust));
            let detail = match (ours, same) {
                (true, true) => None,
                (true, false) => Some("trust policy drifted: corrected"),
                (false, true) => Some("adopt: tag as flink-eks"),
                (false, false) => Some("adopt: tag as flink-eks; trust policy corrected"),
            };
            rows.push(match detail {
                None => row(ResourceKind::Role, &spec.role_name, Action::NoChange, ""),
                Some(detail) => row(ResourceKind::Role, &spec.role_name, Action::Update, detail),
            });
            attached.contains(&seen.policy_arn)
        }
    };
    let attachment = attachment_name(spec);
    rows.push(if attached {
        row(ResourceKind::Attachment, &attachment, Action::NoChange, "")
    } else {
        row(ResourceKind::Attachment, &attachment, Action::Create, "")
    });

    let account_name = spec.account_name();
    match spec.mode {
        IdentityMode::Irsa => rows.push(match &seen.service_account {
            None | Some(AccountSeen::Missing) => row(
                ResourceKind::ServiceAccount,
                &account_name,
                Action::Create,
                &format!("with {ROLE_ARN_ANNOTATION}={}", seen.role_arn),
            ),
            Some(AccountSeen::Present {
                role_arn_annotation: Some(arn),
            }) if *arn == seen.role_arn => row(
                ResourceKind::ServiceAccount,
                &account_name,
                Action::NoChange,
                "",
            ),
            Some(AccountSeen::Present {
                role_arn_annotation,
            }) => row(
                ResourceKind::ServiceAccount,
                &account_name,
                Action::Update,
                &match role_arn_annotation {
                    Some(old) => format!("{ROLE_ARN_ANNOTATION}: {old} -> {}", seen.role_arn),
                    None => format!("annotate {ROLE_ARN_ANNOTATION}={}", seen.role_arn),
                },
            ),
        }),
        IdentityMode::PodIdentity => {
            let name = format!("{} {account_name}", spec.cluster);
            rows.push(match &seen.association {
                None | Some(AssociationSeen::Missing) => row(
                    ResourceKind::PodIdentityAssociation,
                    &name,
                    Action::Create,
                    &format!("role {}", seen.role_arn),
                ),
                Some(AssociationSeen::Present { role_arn, .. }) if *role_arn == seen.role_arn => {
                    row(
                        ResourceKind::PodIdentityAssociation,
                        &name,
                        Action::NoChange,
                        "",
                    )
                }
                Some(AssociationSeen::Present { role_arn, .. }) => row(
                    ResourceKind::PodIdentityAssociation,
                    &name,
                    Action::Update,
                    &format!("role {role_arn} -> {}", seen.role_arn),
                ),
            });
        }
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::documents::{OidcIssuer, Partition};
    use crate::spec::S3Grant;
    use flink_eks_manifest::S3Location;

    fn spec() -> IrsaSpec {
        IrsaSpec {
            cluster: "demo".into(),
            namespace: "default".into(),
            service_account: "flink".into(),
            role_name: "flink-s3-reader".into(),
            policy_name: "flink-s3-read".into(),
            grant: S3Grant::Object(S3Location::parse("s3://flink-s3-test/test/job.py").unwrap()),
            list_bucket: false,
            mode: IdentityMode::Irsa,
            adopt: false,
        }
    }

    #[test]
    fn resources_are_the_rows_of_a_first_plan_in_order() {
        let spec = spec();
        let rows = plan_rows(&spec, &nothing(&spec), &desired(&spec)).unwrap();
        let listed: Vec<ResourceKind> =
            resources(&spec).into_iter().map(|(kind, _)| kind).collect();
        let planned: Vec<ResourceKind> = rows.iter().map(|row| row.kind).collect();
        assert_eq!(listed, planned);
        let names: Vec<String> = resources(&spec).into_iter().map(|(_, name)| name).collect();
        assert_eq!(
            names,
            [
                "of cluster demo",
                "flink-s3-read",
                "flink-s3-reader",
                "flink-s3-read -> flink-s3-reader",
                "default/flink"
            ]
        );

        let pod_identity = IrsaSpec {
            mode: IdentityMode::PodIdentity,
            ..spec
        };
        let kinds: Vec<ResourceKind> = resources(&pod_identity)
            .into_iter()
            .map(|(kind, _)| kind)
            .collect();
        assert_eq!(
            kinds,
            [
                ResourceKind::Policy,
                ResourceKind::Role,
                ResourceKind::Attachment,
                ResourceKind::PodIdentityAssociation
            ]
        );
    }

    fn desired(spec: &IrsaSpec) -> Desired {
        let issuer = OidcIssuer::parse("https://oidc.eks.us-east-1.amazonaws.com/id/X").unwrap();
        Desired {
            permission: spec.permission_policy(Partition::Aws).document().clone(),
            trust: spec
                .trust_policy(Partition::Aws, "123456789012", &issuer)
                .document()
                .clone(),
        }
    }

    fn nothing(spec: &IrsaSpec) -> Seen {
        Seen {
            account: "123456789012".into(),
            role_arn: spec.role_arn(Partition::Aws, "123456789012"),
            policy_arn: spec.policy_arn(Partition::Aws, "123456789012"),
            provider_arn: Some(
                "arn:aws:iam::123456789012:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/X"
                    .into(),
            ),
            issuer: Some("https://oidc.eks.us-east-1.amazonaws.com/id/X".into()),
            provider: Some(ProviderSeen::Missing),
            policy: PolicySeen::Missing,
            role: RoleSeen::Missing,
            service_account: Some(AccountSeen::Missing),
            association: None,
        }
    }

    fn everything(spec: &IrsaSpec) -> Seen {
        let d = desired(spec);
        let mut seen = nothing(spec);
        seen.provider = Some(ProviderSeen::Present {
            client_ids: vec![STS_AUDIENCE.into()],
        });
        seen.policy = PolicySeen::Present {
            tags: ownership_tags(spec),
            default_version: "v1".into(),
            document: Some(Box::new(d.permission)),
        };
        seen.role = RoleSeen::Present {
            tags: ownership_tags(spec),
            trust: Some(Box::new(d.trust)),
            attached: vec![seen.policy_arn.clone()],
        };
        seen.service_account = Some(AccountSeen::Present {
            role_arn_annotation: Some(seen.role_arn.clone()),
        });
        seen
    }

    fn actions(rows: &[PlanRow]) -> Vec<(ResourceKind, Action)> {
        rows.iter().map(|r| (r.kind, r.action)).collect()
    }

    #[test]
    fn empty_account_creates_everything_in_order() {
        let s = spec();
        let rows = plan_rows(&s, &nothing(&s), &desired(&s)).unwrap();
        assert_eq!(
            actions(&rows),
            vec![
                (ResourceKind::OidcProvider, Action::Create),
                (ResourceKind::Policy, Action::Create),
                (ResourceKind::Role, Action::Create),
                (ResourceKind::Attachment, Action::Create),
                (ResourceKind::ServiceAccount, Action::Create),
            ]
        );
    }

    #[test]
    fn matching_state_plans_nothing() {
        let s = spec();
        let rows = plan_rows(&s, &everything(&s), &desired(&s)).unwrap();
        assert!(
            rows.iter().all(|r| r.action == Action::NoChange),
            "{rows:?}"
        );
    }

    #[test]
    fn drift_is_planned_as_updates() {
        let s = spec();
        let mut seen = everything(&s);
        seen.provider = Some(ProviderSeen::Present {
            client_ids: vec!["other".into()],
        });
        if let PolicySeen::Present { document, .. } = &mut seen.policy {
            let mut other = s.clone();
            other.grant =
                S3Grant::Object(S3Location::parse("s3://flink-s3-test/other.py").unwrap());
            *document = Some(Box::new(
                other.permission_policy(Partition::Aws).document().clone(),
            ));
        }
        if let RoleSeen::Present {
            trust, attached, ..
        } = &mut seen.role
        {
            *trust = None; // unreadable counts as drifted
            attached.clear();
        }
        seen.service_account = Some(AccountSeen::Present {
            role_arn_annotation: Some("arn:aws:iam::1:role/old".into()),
        });
        let rows = plan_rows(&s, &seen, &desired(&s)).unwrap();
        assert_eq!(
            actions(&rows),
            vec![
                (ResourceKind::OidcProvider, Action::Update),
                (ResourceKind::Policy, Action::Update),
                (ResourceKind::Role, Action::Update),
                (ResourceKind::Attachment, Action::Create),
                (ResourceKind::ServiceAccount, Action::Update),
            ]
        );
        assert!(
            rows[4].detail.contains("arn:aws:iam::1:role/old ->"),
            "{}",
            rows[4]
        );
    }

    #[test]
    fn foreign_role_is_refused_without_adopt() {
        let mut s = spec();
        let mut seen = everything(&s);
        seen.role = RoleSeen::Present {
            tags: vec![("team".into(), "data".into())],
            trust: None,
            attached: vec![],
        };
        let err = plan_rows(&s, &seen, &desired(&s)).unwrap_err();
        assert!(matches!(err, Error::RoleNotOurs { .. }), "{err}");
        assert!(
            err.to_string().contains("team=data") && err.to_string().contains("adopt"),
            "{err}"
        );

        s.adopt = true;
        let rows = plan_rows(&s, &seen, &desired(&s)).unwrap();
        assert_eq!(rows[2].action, Action::Update);
        assert!(rows[2].detail.contains("adopt"), "{}", rows[2]);
    }

    #[test]
    fn role_made_for_another_service_account_is_not_ours() {
        let s = spec();
        let mut other = s.clone();
        other.service_account = "spark".into();
        let mut seen = everything(&s);
        seen.role = RoleSeen::Present {
            tags: ownership_tags(&other),
            trust: None,
            attached: vec![],
        };
        assert!(matches!(
            plan_rows(&s, &seen, &desired(&s)),
            Err(Error::RoleNotOurs { .. })
        ));
    }

    #[test]
    fn foreign_policy_is_refused_without_adopt() {
        let s = spec();
        let mut seen = everything(&s);
        seen.policy = PolicySeen::Present {
            tags: vec![],
            default_version: "v1".into(),
            document: None,
        };
        let err = plan_rows(&s, &seen, &desired(&s)).unwrap_err();
        assert!(matches!(err, Error::PolicyNotOurs { .. }), "{err}");
        assert!(err.to_string().contains("tags found: none"), "{err}");
    }

    #[test]
    fn pod_identity_plans_an_association_and_no_provider() {
        let mut s = spec();
        s.mode = IdentityMode::PodIdentity;
        let mut seen = nothing(&s);
        seen.provider = None;
        seen.provider_arn = None;
        seen.service_account = None;
        seen.association = Some(AssociationSeen::Missing);
        let rows = plan_rows(&s, &seen, &desired(&s)).unwrap();
        assert_eq!(
            actions(&rows),
            vec![
                (ResourceKind::Policy, Action::Create),
                (ResourceKind::Role, Action::Create),
                (ResourceKind::Attachment, Action::Create),
                (ResourceKind::PodIdentityAssociation, Action::Create),
            ]
        );
        seen.association = Some(AssociationSeen::Present {
            id: "a-1".into(),
            role_arn: seen.role_arn.clone(),
        });
        assert_eq!(
            plan_rows(&s, &seen, &desired(&s)).unwrap()[3].action,
            Action::NoChange
        );
    }

    #[test]
    fn plan_prints_one_line_per_row() {
        let s = spec();
        let seen = nothing(&s);
        let plan = Plan {
            account: seen.account.clone(),
            role_arn: seen.role_arn.clone(),
            policy_arn: seen.policy_arn.clone(),
            issuer: seen.issuer.clone(),
            rows: plan_rows(&s, &seen, &desired(&s)).unwrap(),
        };
        let text = plan.to_string();
        assert_eq!(text.lines().count(), 5);
        assert!(text.contains("create    role flink-s3-reader"), "{text}");
        assert!(!plan.is_noop());
        let json = serde_json::to_value(&plan).unwrap();
        assert_eq!(json["rows"][0]["kind"], "oidc-provider");
        assert_eq!(json["rows"][0]["action"], "create");
    }
}

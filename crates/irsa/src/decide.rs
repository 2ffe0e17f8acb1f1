//! Every decision, as pure functions of what was read: is this role or policy ours, is this
//! document the same, which operation does each resource need, does a check pass, what may
//! teardown remove. No IO: [`crate::Irsa::plan`], [`crate::Irsa::verify`] and
//! [`crate::Irsa::teardown_plan`] read, then call these.

use crate::cluster::ClusterIdentity;
use crate::documents::{Partition, PolicyDocument, STS_AUDIENCE, statement_changes};
use crate::error::{Error, Result};
use crate::plan::{
    Blocker, NewPolicyVersion, Op, Plan, TeardownOp, attachment_name, kind, role_name,
};
use crate::report::{Check, CheckKind};
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

/// Largest number of versions IAM keeps of a managed policy.
pub(crate) const MAX_POLICY_VERSIONS: usize = 5;

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

/// Whether `tags` carry every ownership tag of `spec` with the same value.
pub fn is_ours(tags: &[(String, String)], spec: &IrsaSpec) -> bool {
    ownership_tags(spec)
        .iter()
        .all(|wanted| tags.contains(wanted))
}

/// Tags as `key=value, …`, or `none`.
pub(crate) fn tags_text(tags: &[(String, String)]) -> String {
    if tags.is_empty() {
        return "none".to_owned();
    }
    tags.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whether a document read from IAM (`None`: unreadable) means what `wanted` means.
pub(crate) fn same_document(found: Option<&PolicyDocument>, wanted: &PolicyDocument) -> bool {
    found.is_some_and(|d| d.same_meaning(wanted))
}

/// Tag key on the permission policy naming the version flink-eks made and its document:
/// `v3 sha256:<hex>`, the version id and the [`PolicyDocument::digest`] of the document that
/// version holds. An IAM policy version is immutable, and a new one is numbered after every
/// version the policy has had, so while the policy's default version is the one named, its
/// document is the one named: the plan of a policy whose default version and tag agree with
/// the wanted document needs no `iam:GetPolicyVersion`. Only someone who changes the default
/// version and rewrites this tag to match can mislead it; the ownership tags are trusted the
/// same way. It is written only with a version flink-eks creates (or finds holding the wanted
/// document when adopting the policy), never by a run that changes nothing.
pub const DOCUMENT_TAG_KEY: &str = "flink-eks.io/document";

/// The value of [`DOCUMENT_TAG_KEY`] for version `version_id` holding `document`.
pub(crate) fn document_tag_value(version_id: &str, document: &PolicyDocument) -> String {
    format!("{version_id} sha256:{}", document.digest())
}

/// Whether the policy's `tags` say that its default version, `default_version`, holds a
/// document meaning `wanted`. Any other default version (someone made one, or set an older
/// one as default), a missing tag or another digest: not known, and the document is read.
pub(crate) fn document_known(
    tags: &[(String, String)],
    default_version: &str,
    wanted: &PolicyDocument,
) -> bool {
    let expected = document_tag_value(default_version, wanted);
    tags.iter()
        .any(|(key, value)| key == DOCUMENT_TAG_KEY && *value == expected)
}

/// The account id of an ARN (`arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE`), when it is
/// one (12 digits).
pub(crate) fn arn_account(arn: &str) -> Option<&str> {
    let mut fields = arn.splitn(6, ':');
    let account = match (fields.next(), fields.nth(3), fields.next()) {
        (Some("arn"), Some(account), Some(_)) => account,
        _ => return None,
    };
    (account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit())).then_some(account)
}

/// The caller's account from the ARNs the first reads returned (the cluster's from
/// `eks:DescribeCluster`, the role's from `iam:GetRole`): both name a resource the caller's
/// own account holds (EKS and IAM resolve a name in the caller's account), so its account is
/// the caller's. `None` when neither is there to read: then `sts:GetCallerIdentity` is asked.
pub(crate) fn account_from_arns(arns: &[Option<&str>]) -> Option<String> {
    arns.iter()
        .flatten()
        .find_map(|arn| arn_account(arn))
        .map(str::to_owned)
}

/// What was read of the OIDC provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ProviderSeen {
    Missing,
    Present { client_ids: Vec<String> },
}

/// One version of the policy, as `ListPolicyVersions` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct VersionSeen {
    pub(crate) id: String,
    pub(crate) is_default: bool,
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
        versions: Vec<VersionSeen>,
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
        /// Inline policies (read for teardown only).
        inline: Vec<String>,
    },
}

/// What was read of the service account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AccountSeen {
    Missing,
    /// The account is missing because its namespace is.
    NamespaceMissing,
    Present {
        role_arn_annotation: Option<String>,
        resource_version: String,
        /// `metadata.uid`: which account it was, so that an apply does not re-create one
        /// deleted since.
        uid: String,
    },
}

/// What was read of the pod identity association.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AssociationSeen {
    Missing,
    Present { id: String, role_arn: String },
}

/// Everything read before deciding.
#[derive(Debug, Clone)]
pub(crate) struct Seen {
    pub(crate) account: String,
    pub(crate) partition: Partition,
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
    /// Pods running as the service account now (read for apply only).
    pub(crate) pods: Vec<String>,
    /// Roles, users and groups the policy is attached to (read for teardown only).
    pub(crate) policy_users: Vec<String>,
    /// The cluster's identity as EKS returned it in this read; none when it was known.
    pub(crate) cluster_read: Option<ClusterIdentity>,
    /// Whether the account and issuer came from a remembered identity, not from EKS.
    pub(crate) cluster_known: bool,
}

/// The documents the spec asks for, in the account and partition at hand.
#[derive(Debug, Clone)]
pub(crate) struct Desired {
    pub(crate) permission: PolicyDocument,
    pub(crate) trust: PolicyDocument,
}

/// The plan that makes what was read match what is wanted: its operations and blockers.
pub(crate) fn plan(spec: &IrsaSpec, seen: Seen, desired: &Desired) -> Result<Plan> {
    let ops = plan_ops(spec, &seen, desired)?;
    let blockers = blockers(spec, &seen);
    Ok(Plan {
        blockers,
        spec: spec.clone(),
        account: seen.account,
        partition: seen.partition,
        role_arn: seen.role_arn,
        policy_arn: seen.policy_arn,
        issuer: seen.issuer,
        ops,
        cluster: seen.cluster_read,
    })
}

/// The operations that make what was read match what is wanted, in the order apply performs
/// them. Refuses (before any write) to touch a role or policy that flink-eks did not create
/// for this spec, unless `spec.adopt`.
pub(crate) fn plan_ops(spec: &IrsaSpec, seen: &Seen, desired: &Desired) -> Result<Vec<Op>> {
    let mut ops = Vec::new();
    if let (Some(provider), Some(arn), Some(url)) =
        (&seen.provider, &seen.provider_arn, &seen.issuer)
    {
        ops.push(match provider {
            ProviderSeen::Missing => Op::CreateOidcProvider {
                arn: arn.clone(),
                url: url.clone(),
            },
            ProviderSeen::Present { client_ids }
                if !client_ids.iter().any(|c| c == STS_AUDIENCE) =>
            {
                Op::AddOidcClientId { arn: arn.clone() }
            }
            ProviderSeen::Present { .. } => Op::keep(kind::OIDC_PROVIDER, arn),
        });
    }
    ops.push(policy_op(spec, seen, desired)?);
    ops.push(role_op(spec, seen, desired)?);

    let attached = matches!(&seen.role, RoleSeen::Present { attached, .. } if attached.contains(&seen.policy_arn));
    ops.push(if attached {
        Op::keep(kind::POLICY_ATTACHMENT, attachment_name(spec))
    } else {
        Op::AttachPolicy {
            role: spec.role_name.clone(),
            policy_arn: seen.policy_arn.clone(),
        }
    });

    match spec.mode {
        IdentityMode::Irsa => ops.push(account_op(spec, seen)),
        IdentityMode::PodIdentity => ops.push(match &seen.association {
            Some(AssociationSeen::Present { role_arn, .. }) if *role_arn == seen.role_arn => {
                Op::keep(kind::POD_IDENTITY_ASSOCIATION, spec.association_name())
            }
            Some(AssociationSeen::Present { id, role_arn }) => Op::UpdateAssociation {
                id: id.clone(),
                role_arn: seen.role_arn.clone(),
                previous_role_arn: role_arn.clone(),
            },
            None | Some(AssociationSeen::Missing) => Op::CreateAssociation {
                role_arn: seen.role_arn.clone(),
            },
        }),
    }
    Ok(ops)
}

fn policy_op(spec: &IrsaSpec, seen: &Seen, desired: &Desired) -> Result<Op> {
    let arn = &seen.policy_arn;
    let PolicySeen::Present {
        tags,
        default_version,
        document,
        versions,
    } = &seen.policy
    else {
        return Ok(Op::CreatePolicy {
            arn: arn.clone(),
            document: desired.permission.clone(),
        });
    };
    let ours = is_ours(tags, spec);
    if !ours && !spec.adopt {
        return Err(Error::PolicyNotOurs {
            policy_arn: arn.clone(),
            tags: tags_text(tags),
        });
    }
    let same = same_document(document.as_deref(), &desired.permission);
    if ours && same {
        return Ok(
            Op::keep(kind::POLICY, arn).observed(format!("default version {default_version}"))
        );
    }
    // Adopting a policy whose default version already holds the wanted document: the tags
    // written with the ownership tags name that version, so later plans need not read it.
    let document_tag =
        (same && !ours).then(|| document_tag_value(default_version, &desired.permission));
    let version = (!same).then(|| {
        let (removed, added) = statement_changes(document.as_deref(), &desired.permission);
        NewPolicyVersion {
            default_version: default_version.clone(),
            delete_first: oldest_to_delete(versions),
            document: desired.permission.clone(),
            removed,
            added,
        }
    });
    Ok(Op::UpdatePolicy {
        arn: arn.clone(),
        tag: !ours,
        version,
        document_tag,
    })
}

/// The version to delete before a new one can be added: the oldest non-default one, when IAM
/// already keeps its maximum of five.
pub(crate) fn oldest_to_delete(versions: &[VersionSeen]) -> Option<String> {
    if versions.len() < MAX_POLICY_VERSIONS {
        return None;
    }
    versions
        .iter()
        .filter(|v| !v.is_default)
        .min_by_key(|v| version_number(&v.id))
        .map(|v| v.id.clone())
}

/// `v7` -> 7; an unexpected id sorts last, so it is never chosen as the oldest.
fn version_number(id: &str) -> u64 {
    id.strip_prefix('v')
        .and_then(|n| n.parse().ok())
        .unwrap_or(u64::MAX)
}

fn role_op(spec: &IrsaSpec, seen: &Seen, desired: &Desired) -> Result<Op> {
    let RoleSeen::Present { tags, trust, .. } = &seen.role else {
        return Ok(Op::CreateRole {
            name: spec.role_name.clone(),
            trust: desired.trust.clone(),
        });
    };
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
    let same = same_document(trust.as_deref(), &desired.trust);
    if ours && same {
        return Ok(Op::keep(kind::ROLE, &spec.role_name));
    }
    Ok(Op::UpdateRole {
        name: spec.role_name.clone(),
        tag: !ours,
        trust: (!same).then(|| desired.trust.clone()),
    })
}

/// The preconditions the plan finds unmet, before any write: the service account's
/// namespace is missing, or the account's role annotation names another role than this
/// deployment's (another deployment's account, which re-pointing would take away from it),
/// unless `spec.adopt`.
pub(crate) fn blockers(spec: &IrsaSpec, seen: &Seen) -> Vec<Blocker> {
    match &seen.service_account {
        Some(AccountSeen::NamespaceMissing) => vec![Blocker::NamespaceMissing {
            namespace: spec.namespace.clone(),
        }],
        Some(AccountSeen::Present {
            role_arn_annotation: Some(other),
            ..
        }) if *other != seen.role_arn && !spec.adopt => vec![Blocker::AccountTaken {
            account: spec.account_name(),
            other_role: other.clone(),
            role: seen.role_arn.clone(),
        }],
        _ => Vec::new(),
    }
}

fn account_op(spec: &IrsaSpec, seen: &Seen) -> Op {
    let (previous, resource_version, uid) = match &seen.service_account {
        None | Some(AccountSeen::Missing | AccountSeen::NamespaceMissing) => (None, None, None),
        Some(AccountSeen::Present {
            role_arn_annotation,
            resource_version,
            uid,
        }) => {
            if role_arn_annotation.as_deref() == Some(seen.role_arn.as_str()) {
                return Op::keep(kind::SERVICE_ACCOUNT, spec.account_name())
                    .observed(format!("resourceVersion {resource_version}"));
            }
            (
                role_arn_annotation.clone(),
                Some(resource_version.clone()),
                Some(uid.clone()),
            )
        }
    };
    Op::AnnotateServiceAccount {
        role_arn: seen.role_arn.clone(),
        previous,
        resource_version,
        uid,
        pods: seen.pods.clone(),
    }
}

/// The warning apply gives when it annotates a service account that pods already run as.
pub(crate) fn pods_warning(spec: &IrsaSpec, pods: &[String]) -> Option<String> {
    if pods.is_empty() {
        return None;
    }
    Some(format!(
        "pods of service account {} started before it was annotated have no web identity token: \
         delete them (or redeploy the FlinkDeployment) so they are recreated with the role: {}",
        spec.account_name(),
        pods.join(", ")
    ))
}

/// The warning apply gives when it creates or changes a pod identity association.
pub(crate) fn association_warning(spec: &IrsaSpec) -> String {
    format!(
        "pods of service account {} started before the pod identity association get no \
         credentials: recreate them; the cluster needs the eks-pod-identity-agent add-on",
        spec.account_name()
    )
}

/// A policy document as a check shows what it found: its JSON, or a word that IAM returned
/// one that does not parse.
fn document_text(document: Option<&PolicyDocument>) -> String {
    document.map_or_else(
        || "an unreadable document".to_owned(),
        PolicyDocument::to_json,
    )
}

/// The checks of a manual IRSA setup (trust policy, attached policy, annotation) and two more, from what was read. A missing or different resource
/// is a failed check.
pub(crate) fn checks(spec: &IrsaSpec, seen: &Seen, desired: &Desired) -> Vec<Check> {
    let mut checks = Vec::new();
    if let (Some(provider), Some(arn)) = (&seen.provider, &seen.provider_arn) {
        let (ok, found) = match provider {
            ProviderSeen::Missing => (false, format!("no provider {arn}")),
            ProviderSeen::Present { client_ids } => (
                client_ids.iter().any(|c| c == STS_AUDIENCE),
                format!("client ids {client_ids:?}"),
            ),
        };
        checks.push(Check {
            kind: CheckKind::OidcProvider,
            ok,
            expected: format!("{arn} with client id {STS_AUDIENCE}"),
            found,
        });
    }
    let expected_trust = desired.trust.to_json();
    checks.push(match &seen.role {
        RoleSeen::Missing => Check {
            kind: CheckKind::TrustPolicy,
            ok: false,
            expected: expected_trust,
            found: format!("no role {}", spec.role_name),
        },
        RoleSeen::Present { trust, .. } => Check {
            kind: CheckKind::TrustPolicy,
            ok: same_document(trust.as_deref(), &desired.trust),
            expected: expected_trust,
            found: document_text(trust.as_deref()),
        },
    });
    let attached = match &seen.role {
        RoleSeen::Missing => &[][..],
        RoleSeen::Present { attached, .. } => &attached[..],
    };
    checks.push(Check {
        kind: CheckKind::AttachedPolicies,
        ok: attached.contains(&seen.policy_arn),
        expected: format!("{} attached to role {}", seen.policy_arn, spec.role_name),
        found: if attached.is_empty() {
            "no attached policy".to_owned()
        } else {
            attached.join(", ")
        },
    });
    let expected_permission = desired.permission.to_json();
    checks.push(match &seen.policy {
        PolicySeen::Missing => Check {
            kind: CheckKind::PermissionPolicy,
            ok: false,
            expected: expected_permission,
            found: format!("no policy {}", seen.policy_arn),
        },
        PolicySeen::Present {
            document,
            default_version,
            ..
        } => Check {
            kind: CheckKind::PermissionPolicy,
            ok: same_document(document.as_deref(), &desired.permission),
            expected: expected_permission,
            found: format!("{default_version}: {}", document_text(document.as_deref())),
        },
    });
    match spec.mode {
        IdentityMode::Irsa => {
            let found = match &seen.service_account {
                None | Some(AccountSeen::Missing | AccountSeen::NamespaceMissing) => None,
                Some(AccountSeen::Present {
                    role_arn_annotation,
                    ..
                }) => Some(role_arn_annotation.clone()),
            };
            checks.push(Check {
                kind: CheckKind::Annotation,
                ok: found
                    .as_ref()
                    .is_some_and(|a| a.as_deref() == Some(seen.role_arn.as_str())),
                expected: format!("{ROLE_ARN_ANNOTATION}={}", seen.role_arn),
                found: match found {
                    None => format!("no service account {}", spec.account_name()),
                    Some(None) => format!("no {ROLE_ARN_ANNOTATION} annotation"),
                    Some(Some(value)) if value != seen.role_arn => format!(
                        "{ROLE_ARN_ANNOTATION}={value}: the service account points at another \
                         role, {}, so pods running as it get that role's permissions, not this \
                         deployment's; another deployment sharing the service account re-pointed it",
                        role_name(&value)
                    ),
                    Some(Some(value)) => format!("{ROLE_ARN_ANNOTATION}={value}"),
                },
            });
        }
        IdentityMode::PodIdentity => {
            let (ok, found) = match &seen.association {
                None | Some(AssociationSeen::Missing) => (false, "no association".to_owned()),
                Some(AssociationSeen::Present { id, role_arn }) => (
                    *role_arn == seen.role_arn,
                    format!("{id} with role {role_arn}"),
                ),
            };
            checks.push(Check {
                kind: CheckKind::PodIdentityAssociation,
                ok,
                expected: format!(
                    "{} on cluster {} with role {}",
                    spec.account_name(),
                    spec.cluster,
                    seen.role_arn
                ),
                found,
            });
        }
    }
    checks
}

/// What teardown removes and what it leaves, in the order it goes: the annotation (only
/// while it still names our role) or the association, the role's attachments and inline
/// policies and the role (only ours), the policy (only ours, and only when nothing else uses
/// it), and the OIDC provider, which is always left (every IRSA role of the cluster uses it).
pub(crate) fn teardown_ops(spec: &IrsaSpec, seen: &Seen) -> Vec<TeardownOp> {
    let mut ops = Vec::new();
    let role_ours_or_gone = match &seen.role {
        RoleSeen::Missing => true,
        RoleSeen::Present { tags, .. } => is_ours(tags, spec),
    };
    match spec.mode {
        IdentityMode::Irsa => {
            let name = spec.account_name();
            ops.push(match &seen.service_account {
                None | Some(AccountSeen::Missing | AccountSeen::NamespaceMissing) => {
                    TeardownOp::absent(kind::SERVICE_ACCOUNT, name, "no service account")
                }
                Some(AccountSeen::Present {
                    role_arn_annotation: None,
                    ..
                }) => TeardownOp::absent(
                    kind::SERVICE_ACCOUNT,
                    name,
                    format!("no {ROLE_ARN_ANNOTATION} annotation"),
                ),
                Some(AccountSeen::Present {
                    role_arn_annotation: Some(value),
                    ..
                }) if *value != seen.role_arn || !role_ours_or_gone => TeardownOp::left_alone(
                    kind::SERVICE_ACCOUNT,
                    name,
                    format!("{ROLE_ARN_ANNOTATION} names {value}, not a role flink-eks created"),
                ),
                Some(AccountSeen::Present {
                    resource_version, ..
                }) => TeardownOp::RemoveAnnotation {
                    resource_version: resource_version.clone(),
                },
            });
        }
        IdentityMode::PodIdentity => {
            let name = spec.association_name();
            ops.push(match &seen.association {
                None | Some(AssociationSeen::Missing) => {
                    TeardownOp::absent(kind::POD_IDENTITY_ASSOCIATION, name, "")
                }
                Some(AssociationSeen::Present { id, role_arn })
                    if *role_arn == seen.role_arn && role_ours_or_gone =>
                {
                    TeardownOp::DeleteAssociation { id: id.clone() }
                }
                Some(AssociationSeen::Present { role_arn, .. }) => TeardownOp::left_alone(
                    kind::POD_IDENTITY_ASSOCIATION,
                    name,
                    format!("it maps to role {role_arn}, not to a role flink-eks created"),
                ),
            });
        }
    }

    match &seen.role {
        RoleSeen::Missing => ops.push(TeardownOp::absent(kind::ROLE, &spec.role_name, "")),
        RoleSeen::Present { tags, .. } if !is_ours(tags, spec) => ops.push(TeardownOp::left_alone(
            kind::ROLE,
            &spec.role_name,
            not_ours_detail(tags),
        )),
        RoleSeen::Present {
            attached, inline, ..
        } => {
            for arn in attached {
                ops.push(TeardownOp::Detach {
                    policy_arn: arn.clone(),
                    ours: *arn == seen.policy_arn,
                });
            }
            ops.push(TeardownOp::DeleteRole {
                inline: inline.clone(),
            });
        }
    }

    match &seen.policy {
        PolicySeen::Missing => ops.push(TeardownOp::absent(kind::POLICY, &seen.policy_arn, "")),
        PolicySeen::Present { tags, .. } if !is_ours(tags, spec) => ops.push(
            TeardownOp::left_alone(kind::POLICY, &seen.policy_arn, not_ours_detail(tags)),
        ),
        PolicySeen::Present { versions, .. } => {
            // The attachment to our own role goes first; anything else keeps the policy.
            let role_goes =
                matches!(&seen.role, RoleSeen::Present { tags, .. } if is_ours(tags, spec));
            let others: Vec<&String> = seen
                .policy_users
                .iter()
                .filter(|u| !(role_goes && **u == format!("role {}", spec.role_name)))
                .collect();
            if others.is_empty() {
                ops.push(TeardownOp::DeletePolicy {
                    arn: seen.policy_arn.clone(),
                    versions: versions
                        .iter()
                        .filter(|v| !v.is_default)
                        .map(|v| v.id.clone())
                        .collect(),
                });
            } else {
                let users: Vec<&str> = others.iter().map(|u| u.as_str()).collect();
                ops.push(TeardownOp::left_alone(
                    kind::POLICY,
                    &seen.policy_arn,
                    format!("still attached to {}", users.join(", ")),
                ));
            }
        }
    }

    if let (Some(provider), Some(arn)) = (&seen.provider, &seen.provider_arn) {
        ops.push(match provider {
            ProviderSeen::Missing => TeardownOp::absent(kind::OIDC_PROVIDER, arn, ""),
            ProviderSeen::Present { .. } => TeardownOp::left_alone(
                kind::OIDC_PROVIDER,
                arn,
                "shared by every IRSA role of the cluster; delete it with the cluster",
            ),
        });
    }
    ops
}

/// Why teardown leaves a role or policy alone that carries other tags than ours.
fn not_ours_detail(tags: &[(String, String)]) -> String {
    format!(
        "not created by flink-eks for this service account (tags: {})",
        tags_text(tags)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::documents::OidcIssuer;
    use crate::plan::{Plan, resources};
    use crate::spec::S3Grant;
    use flink_eks_manifest::S3Location;
    use flink_eks_plan::Action;

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
            state: None,
        }
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
            partition: Partition::Aws,
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
            pods: Vec::new(),
            policy_users: Vec::new(),
            cluster_read: None,
            cluster_known: false,
        }
    }

    fn versions(ids: &[&str], default: &str) -> Vec<VersionSeen> {
        ids.iter()
            .map(|id| VersionSeen {
                id: (*id).to_owned(),
                is_default: *id == default,
            })
            .collect()
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
            versions: versions(&["v1"], "v1"),
        };
        seen.role = RoleSeen::Present {
            tags: ownership_tags(spec),
            trust: Some(Box::new(d.trust)),
            attached: vec![seen.policy_arn.clone()],
            inline: Vec::new(),
        };
        seen.service_account = Some(AccountSeen::Present {
            role_arn_annotation: Some(seen.role_arn.clone()),
            resource_version: "7".into(),
            uid: "uid-7".into(),
        });
        seen
    }

    fn plan(spec: &IrsaSpec, seen: &Seen) -> Plan {
        super::plan(spec, seen.clone(), &desired(spec)).unwrap()
    }

    #[test]
    fn an_account_annotated_with_another_role_blocks_the_plan_unless_adopt() {
        let mut s = spec();
        let mut seen = everything(&s);
        let theirs = "arn:aws:iam::123456789012:role/job-a-role".to_owned();
        seen.service_account = Some(AccountSeen::Present {
            role_arn_annotation: Some(theirs.clone()),
            resource_version: "9".into(),
            uid: "uid-9".into(),
        });
        let blocked = plan(&s, &seen);
        let [Blocker::AccountTaken { other_role, .. }] = &blocked.blockers[..] else {
            panic!("{:?}", blocked.blockers)
        };
        assert_eq!(other_role, &theirs);
        let blocker = &blocked.blockers[0];
        assert_eq!(blocker.kind(), "service-account");
        assert!(
            blocker.reason().contains("names role job-a-role"),
            "{blocker}"
        );
        assert!(blocker.fix().contains("--adopt"), "{blocker}");

        // Adopt re-points it, as an update naming both roles.
        s.adopt = true;
        let adopted = plan(&s, &seen);
        assert!(adopted.blockers.is_empty(), "{:?}", adopted.blockers);
        let account = adopted.operations().pop().unwrap();
        assert_eq!(account.action, Action::Update);
        assert!(account.detail.contains(&theirs), "{account}");

        // Ours, or not annotated: free.
        s.adopt = false;
        for annotation in [Some(seen.role_arn.clone()), None] {
            seen.service_account = Some(AccountSeen::Present {
                role_arn_annotation: annotation,
                resource_version: "9".into(),
                uid: "uid-9".into(),
            });
            assert!(blockers(&s, &seen).is_empty());
        }
    }

    #[test]
    fn a_missing_namespace_blocks_the_plan_naming_it_and_the_fix() {
        let s = spec();
        let mut seen = nothing(&s);
        seen.service_account = Some(AccountSeen::NamespaceMissing);
        let found = blockers(&s, &seen);
        assert_eq!(
            found,
            [Blocker::NamespaceMissing {
                namespace: s.namespace.clone()
            }]
        );
        assert_eq!(
            found[0].fix(),
            format!(
                "create it (kubectl create namespace {0}) or set job.namespace",
                s.namespace
            )
        );
        // The plan still says what it would do: create the account.
        let account = plan(&s, &seen).operations().pop().unwrap();
        assert_eq!(account.action, Action::Create);
        // Told that an earlier step creates the namespace, it is not blocked, and creates
        // the account all the same.
        let after = plan(&s, &seen).with_namespace_created_first();
        assert!(after.blockers.is_empty(), "{:?}", after.blockers);
        assert_eq!(after.operations().pop().unwrap().action, Action::Create);
        assert_eq!(after.ops, plan(&s, &seen).ops, "nothing else changes");
    }

    #[test]
    fn verify_explains_an_annotation_pointing_at_another_role() {
        let s = spec();
        let mut seen = everything(&s);
        seen.service_account = Some(AccountSeen::Present {
            role_arn_annotation: Some("arn:aws:iam::123456789012:role/job-b-role".into()),
            resource_version: "9".into(),
            uid: "uid-9".into(),
        });
        let annotation = checks(&s, &seen, &desired(&s))
            .into_iter()
            .find(|c| c.kind == CheckKind::Annotation)
            .unwrap();
        assert!(!annotation.ok);
        assert!(
            annotation.found.contains("another role, job-b-role")
                && annotation.found.contains("another deployment"),
            "{}",
            annotation.found
        );
    }

    fn actions(plan: &Plan) -> Vec<(&'static str, Action)> {
        plan.operations()
            .into_iter()
            .map(|o| (o.kind, o.action))
            .collect()
    }

    #[test]
    fn resources_are_the_operations_of_a_first_plan_in_order() {
        let spec = spec();
        let first = plan(&spec, &nothing(&spec));
        let listed: Vec<&str> = resources(&spec).into_iter().map(|(k, _)| k).collect();
        let planned: Vec<&str> = first.operations().iter().map(|o| o.kind).collect();
        assert_eq!(listed, planned);
        assert_eq!(
            listed,
            [
                "oidc-provider",
                "iam-policy",
                "iam-role",
                "iam-policy-attachment",
                "service-account"
            ]
        );
        let names: Vec<String> = resources(&spec).into_iter().map(|(_, n)| n).collect();
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
        let kinds: Vec<&str> = resources(&pod_identity)
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(
            kinds,
            [
                "iam-policy",
                "iam-role",
                "iam-policy-attachment",
                "pod-identity-association"
            ]
        );
    }

    #[test]
    fn empty_account_creates_everything_in_order_with_the_documents() {
        let s = spec();
        let p = plan(&s, &nothing(&s));
        assert_eq!(
            actions(&p),
            [
                (kind::OIDC_PROVIDER, Action::Create),
                (kind::POLICY, Action::Create),
                (kind::ROLE, Action::Create),
                (kind::POLICY_ATTACHMENT, Action::Create),
                (kind::SERVICE_ACCOUNT, Action::Create),
            ]
        );
        let d = desired(&s);
        assert!(
            matches!(&p.ops[1], Op::CreatePolicy { document, .. } if *document == d.permission)
        );
        assert!(matches!(&p.ops[2], Op::CreateRole { trust, .. } if *trust == d.trust));
        assert!(matches!(
            &p.ops[4],
            Op::AnnotateServiceAccount {
                resource_version: None,
                uid: None,
                ..
            }
        ));
        assert!(!p.is_noop());
        let text = p.to_string();
        assert_eq!(text.lines().count(), 5);
        assert!(text.contains("create iam-role flink-s3-reader"), "{text}");
    }

    #[test]
    fn matching_state_plans_nothing_and_says_what_it_saw() {
        let s = spec();
        let p = plan(&s, &everything(&s));
        assert!(p.is_noop(), "{p}");
        let operations = p.operations();
        assert!(operations.iter().all(|o| o.action == Action::NoChange));
        assert_eq!(operations.len(), 5);
        assert_eq!(
            operations[1].observed.as_deref(),
            Some("default version v1")
        );
        assert_eq!(operations[4].observed.as_deref(), Some("resourceVersion 7"));
    }

    #[test]
    fn drift_is_planned_as_updates_guarded_by_what_was_seen() {
        let s = spec();
        let mut seen = everything(&s);
        seen.provider = Some(ProviderSeen::Present {
            client_ids: vec!["other".into()],
        });
        if let PolicySeen::Present {
            document,
            default_version,
            ..
        } = &mut seen.policy
        {
            let mut other = s.clone();
            other.grant =
                S3Grant::Object(S3Location::parse("s3://flink-s3-test/other.py").unwrap());
            *document = Some(Box::new(
                other.permission_policy(Partition::Aws).document().clone(),
            ));
            *default_version = "v3".into();
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
            resource_version: "42".into(),
            uid: "uid-42".into(),
        });
        seen.pods = vec!["early".into()];
        let p = plan(&s, &seen);
        assert_eq!(
            actions(&p),
            [
                (kind::OIDC_PROVIDER, Action::Update),
                (kind::POLICY, Action::Update),
                (kind::ROLE, Action::Update),
                (kind::POLICY_ATTACHMENT, Action::Create),
                (kind::SERVICE_ACCOUNT, Action::Update),
            ]
        );
        let operations = p.operations();
        assert_eq!(
            operations[1].observed.as_deref(),
            Some("default version v3")
        );
        assert_eq!(
            operations[4].observed.as_deref(),
            Some("resourceVersion 42")
        );
        assert!(
            operations[4].detail.contains("arn:aws:iam::1:role/old ->"),
            "{}",
            operations[4]
        );
        assert!(matches!(
            &p.ops[1],
            Op::UpdatePolicy { tag: false, version: Some(NewPolicyVersion { default_version, delete_first: None, .. }), .. }
                if default_version == "v3"
        ));
        assert!(matches!(
            &p.ops[4],
            Op::AnnotateServiceAccount { resource_version: Some(rv), uid: Some(uid), pods, .. }
                if rv == "42" && uid == "uid-42" && pods == &["early"]
        ));
        assert!(
            pods_warning(&s, &["early".into()])
                .unwrap()
                .contains("recreated")
        );
        assert_eq!(pods_warning(&s, &[]), None);
    }

    #[test]
    fn a_policy_widened_by_hand_is_rewritten_and_the_row_says_what_goes() {
        let mut s = spec();
        s.state = Some(
            flink_eks_manifest::S3Prefix::parse("s3://flink-s3-test/flink-eks/default/job/state/")
                .unwrap(),
        );
        let wanted = s.permission_policy(Partition::Aws).document().clone();
        let mut widened = serde_json::to_value(&wanted).unwrap();
        widened["Statement"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({"Effect": "Allow", "Action": "s3:*", "Resource": "arn:aws:s3:::flink-s3-test/*"}));
        let mut seen = everything(&s);
        if let PolicySeen::Present { document, .. } = &mut seen.policy {
            *document = Some(Box::new(serde_json::from_value(widened).unwrap()));
        }
        let p = plan(&s, &seen);
        let row = &p.operations()[1];
        assert_eq!(
            (row.kind, row.action),
            (kind::POLICY, Action::Update),
            "{row}"
        );
        assert!(
            row.detail
                .contains("removes: Allow s3:* on arn:aws:s3:::flink-s3-test/*"),
            "{row}"
        );
        assert!(!row.detail.contains("adds:"), "{row}");

        // The same policy without state: stateless again removes the state statements.
        let mut stateless = everything(&spec());
        if let PolicySeen::Present { document, .. } = &mut stateless.policy {
            *document = Some(Box::new(wanted));
        }
        let row = plan(&spec(), &stateless).operations()[1].clone();
        assert!(row.detail.contains("removes: Allow s3:abortmultipartupload,s3:deleteobject,s3:getobject,s3:putobject on arn:aws:s3:::flink-s3-test/flink-eks/default/job/state/*"), "{row}");
    }

    #[test]
    fn a_full_policy_deletes_its_oldest_non_default_version_first() {
        assert_eq!(
            oldest_to_delete(&versions(&["v1", "v2", "v3", "v4"], "v4")),
            None
        );
        assert_eq!(
            oldest_to_delete(&versions(&["v3", "v10", "v4", "v5", "v6"], "v3")).as_deref(),
            Some("v4"),
            "numeric order, and never the default"
        );
        assert_eq!(
            oldest_to_delete(&versions(&["v2", "v9", "v10", "weird", "v11"], "v11")).as_deref(),
            Some("v2")
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
            inline: vec![],
        };
        let err = plan_ops(&s, &seen, &desired(&s)).unwrap_err();
        assert!(matches!(err, Error::RoleNotOurs { .. }), "{err}");
        assert!(
            err.to_string().contains("team=data") && err.to_string().contains("adopt"),
            "{err}"
        );
        s.adopt = true;
        let p = plan(&s, &seen);
        let role = &p.operations()[2];
        assert_eq!(role.action, Action::Update);
        assert!(role.detail.contains("adopt"), "{role}");
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
            inline: vec![],
        };
        assert!(matches!(
            plan_ops(&s, &seen, &desired(&s)),
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
            versions: versions(&["v1"], "v1"),
        };
        let err = plan_ops(&s, &seen, &desired(&s)).unwrap_err();
        assert!(matches!(err, Error::PolicyNotOurs { .. }), "{err}");
        assert!(err.to_string().contains("tags found: none"), "{err}");
    }

    #[test]
    fn the_account_comes_from_the_cluster_or_role_arn_and_sts_only_without_either() {
        let cluster = "arn:aws:eks:us-east-1:123456789012:cluster/demo";
        let role = "arn:aws-cn:iam::210987654321:role/path/flink-s3-reader";
        assert_eq!(arn_account(cluster), Some("123456789012"));
        assert_eq!(arn_account(role), Some("210987654321"));
        // The first ARN that names an account wins; a missing one is skipped.
        assert_eq!(
            account_from_arns(&[None, Some(role)]).as_deref(),
            Some("210987654321")
        );
        assert_eq!(
            account_from_arns(&[Some(cluster), Some(role)]).as_deref(),
            Some("123456789012")
        );
        // Nothing usable (first deploy's missing role and a response without an ARN, or
        // something that is not an account): STS is asked.
        for arn in [
            "",
            "arn:aws:iam::aws:policy/ReadOnlyAccess",
            "arn:aws:s3:::bucket/key",
            "arn:aws:iam::12345678901:role/r",
            "arn:aws:iam::1234567890123:role/r",
            "arn:aws:iam::12345678901x:role/r",
            "not-an-arn:aws:iam::123456789012:role/r",
            "arn:aws:iam::123456789012",
        ] {
            assert_eq!(arn_account(arn), None, "{arn}");
            assert_eq!(account_from_arns(&[Some(arn), None]), None, "{arn}");
        }
        assert_eq!(account_from_arns(&[None, None]), None);
    }

    #[test]
    fn the_document_tag_names_the_default_version_and_what_it_holds() {
        let s = spec();
        let wanted = desired(&s).permission;
        let value = document_tag_value("v3", &wanted);
        assert_eq!(value, format!("v3 sha256:{}", wanted.digest()));
        // IAM's tag value limit and characters: 256, letters, digits, space and _.:/=+-@.
        assert!(value.len() <= 256, "{value}");
        assert!(
            value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || " _.:/=+-@".contains(c)),
            "{value}"
        );
        let mut tags = ownership_tags(&s);
        tags.push((DOCUMENT_TAG_KEY.to_owned(), value));
        assert!(document_known(&tags, "v3", &wanted));
        // Another default version (someone made one, or set an older one as default).
        assert!(!document_known(&tags, "v4", &wanted));
        assert!(!document_known(&tags, "v2", &wanted));
        // Another document wanted (a changed grant, a state prefix added).
        let mut other = s.clone();
        other.grant = S3Grant::Object(S3Location::parse("s3://flink-s3-test/v2.py").unwrap());
        assert!(!document_known(&tags, "v3", &desired(&other).permission));
        // No tag (a policy made before the tag, or by hand), or the value under another key.
        assert!(!document_known(&ownership_tags(&s), "v3", &wanted));
        let elsewhere = vec![(MANAGED_BY_KEY.to_owned(), document_tag_value("v3", &wanted))];
        assert!(!document_known(&elsewhere, "v3", &wanted));
    }

    #[test]
    fn adopting_a_policy_that_holds_the_wanted_document_tags_its_version() {
        let mut s = spec();
        s.adopt = true;
        let mut seen = everything(&s);
        seen.policy = PolicySeen::Present {
            tags: vec![],
            default_version: "v2".into(),
            document: Some(Box::new(desired(&s).permission)),
            versions: versions(&["v1", "v2"], "v2"),
        };
        let ops = plan_ops(&s, &seen, &desired(&s)).unwrap();
        let Op::UpdatePolicy {
            tag: true,
            version: None,
            document_tag: Some(value),
            ..
        } = &ops[1]
        else {
            panic!("{ops:?}")
        };
        assert_eq!(*value, document_tag_value("v2", &desired(&s).permission));

        // Its document differs: the tag is made from the new version IAM numbers, not here.
        seen.policy = PolicySeen::Present {
            tags: vec![],
            default_version: "v2".into(),
            document: None,
            versions: versions(&["v1", "v2"], "v2"),
        };
        let ops = plan_ops(&s, &seen, &desired(&s)).unwrap();
        assert!(
            matches!(
                &ops[1],
                Op::UpdatePolicy {
                    tag: true,
                    version: Some(_),
                    document_tag: None,
                    ..
                }
            ),
            "{ops:?}"
        );

        // Ours with the same document: nothing, and no tag written (a run that changes
        // nothing writes nothing, even when the document tag is missing).
        let ops = plan_ops(&spec(), &everything(&spec()), &desired(&spec())).unwrap();
        assert!(!ops[1].writes(), "{ops:?}");
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
        assert_eq!(
            actions(&plan(&s, &seen)),
            [
                (kind::POLICY, Action::Create),
                (kind::ROLE, Action::Create),
                (kind::POLICY_ATTACHMENT, Action::Create),
                (kind::POD_IDENTITY_ASSOCIATION, Action::Create),
            ]
        );
        seen.association = Some(AssociationSeen::Present {
            id: "a-1".into(),
            role_arn: seen.role_arn.clone(),
        });
        assert_eq!(actions(&plan(&s, &seen))[3].1, Action::NoChange);
        seen.association = Some(AssociationSeen::Present {
            id: "a-1".into(),
            role_arn: "arn:aws:iam::1:role/other".into(),
        });
        let p = plan(&s, &seen);
        assert!(matches!(&p.ops[3], Op::UpdateAssociation { id, .. } if id == "a-1"));
    }

    #[test]
    fn checks_pass_on_matching_state_and_name_each_mismatch() {
        let s = spec();
        let good = checks(&s, &everything(&s), &desired(&s));
        assert_eq!(good.len(), 5);
        assert!(good.iter().all(|c| c.ok), "{good:?}");
        let bad = checks(&s, &nothing(&s), &desired(&s));
        assert!(bad.iter().all(|c| !c.ok), "{bad:?}");
        assert!(bad[1].found.contains("no role flink-s3-reader"));
    }

    #[test]
    fn teardown_removes_only_ours_and_never_the_provider() {
        let s = spec();
        let mut seen = everything(&s);
        seen.policy_users = vec![format!("role {}", s.role_name)];
        if let PolicySeen::Present { versions: v, .. } = &mut seen.policy {
            *v = versions(&["v1", "v2"], "v2");
        }
        let ops = teardown_ops(&s, &seen);
        assert!(
            matches!(&ops[0], TeardownOp::RemoveAnnotation { resource_version } if resource_version == "7")
        );
        assert!(matches!(&ops[1], TeardownOp::Detach { ours: true, .. }));
        assert!(matches!(&ops[2], TeardownOp::DeleteRole { .. }));
        assert!(
            matches!(&ops[3], TeardownOp::DeletePolicy { versions, .. } if versions == &["v1"])
        );
        assert!(matches!(
            &ops[4],
            TeardownOp::Keep {
                kind: "oidc-provider",
                absent: false,
                ..
            }
        ));

        // An annotation naming someone else's role, a policy someone else uses, a foreign role.
        seen.service_account = Some(AccountSeen::Present {
            role_arn_annotation: Some("arn:aws:iam::1:role/theirs".into()),
            resource_version: "8".into(),
            uid: "uid-8".into(),
        });
        seen.policy_users.push("user alice".into());
        let ops = teardown_ops(&s, &seen);
        assert!(
            matches!(&ops[0], TeardownOp::Keep { absent: false, detail, .. } if detail.contains("role/theirs"))
        );
        assert!(matches!(ops.last(), Some(TeardownOp::Keep { .. })));
        assert!(ops.iter().any(|op| matches!(op, TeardownOp::Keep { kind: "iam-policy", detail, .. } if detail.contains("user alice"))));

        seen.role = RoleSeen::Present {
            tags: vec![],
            trust: None,
            attached: vec![seen.policy_arn.clone()],
            inline: vec![],
        };
        let ops = teardown_ops(&s, &seen);
        assert!(!ops.iter().any(|op| matches!(
            op,
            TeardownOp::Detach { .. } | TeardownOp::DeleteRole { .. }
        )));

        let gone = teardown_ops(&s, &nothing(&s));
        assert!(gone.iter().all(|op| !op.writes()), "{gone:?}");
    }
}

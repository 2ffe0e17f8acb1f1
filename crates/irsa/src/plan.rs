//! The plan as data: typed operations, each with what it saw when planned and what it will
//! do, and their printable form ([`flink_eks_plan::Operation`]). [`crate::Irsa::apply`]
//! performs exactly these operations.

use std::fmt;

use flink_eks_plan::{Action, Operation};

use crate::cluster::ClusterIdentity;
use crate::decide::ROLE_ARN_ANNOTATION;
use crate::documents::{Partition, PolicyDocument, STS_AUDIENCE};
use crate::spec::{IdentityMode, IrsaSpec};

/// The kinds of resource, as [`Operation::kind`] and [`resources`] name them.
pub mod kind {
    /// The IAM OpenID Connect identity provider for the cluster's issuer.
    pub const OIDC_PROVIDER: &str = "oidc-provider";
    /// The customer-managed permission policy.
    pub const POLICY: &str = "iam-policy";
    /// The IAM role.
    pub const ROLE: &str = "iam-role";
    /// The policy's attachment to the role.
    pub const POLICY_ATTACHMENT: &str = "iam-policy-attachment";
    /// The Kubernetes service account and its `eks.amazonaws.com/role-arn` annotation.
    pub const SERVICE_ACCOUNT: &str = "service-account";
    /// The EKS Pod Identity association of the service account.
    pub const POD_IDENTITY_ASSOCIATION: &str = "pod-identity-association";
}

/// The resources [`crate::Irsa::apply`] manages for `spec`, as `(kind, name)` in the order it
/// handles them, named without anything read from AWS (a dry run lists them). The OIDC
/// provider, known only by its issuer once EKS is asked, is named by its cluster.
pub fn resources(spec: &IrsaSpec) -> Vec<(&'static str, String)> {
    let mut resources = Vec::new();
    if spec.mode == IdentityMode::Irsa {
        resources.push((kind::OIDC_PROVIDER, format!("of cluster {}", spec.cluster)));
    }
    resources.push((kind::POLICY, spec.policy_name.clone()));
    resources.push((kind::ROLE, spec.role_name.clone()));
    resources.push((kind::POLICY_ATTACHMENT, attachment_name(spec)));
    resources.push(match spec.mode {
        IdentityMode::Irsa => (kind::SERVICE_ACCOUNT, spec.account_name()),
        IdentityMode::PodIdentity => (kind::POD_IDENTITY_ASSOCIATION, spec.association_name()),
    });
    resources
}

/// The attachment of the policy to the role, as plans and reports name it.
pub(crate) fn attachment_name(spec: &IrsaSpec) -> String {
    format!("{} -> {}", spec.policy_name, spec.role_name)
}

/// A new default version of the permission policy.
#[derive(Debug, Clone, PartialEq)]
pub struct NewPolicyVersion {
    /// The default version id seen when planning; the write is refused if it changed.
    pub default_version: String,
    /// The oldest non-default version, deleted first because IAM already keeps five.
    pub delete_first: Option<String>,
    /// The document of the new version.
    pub document: PolicyDocument,
    /// The statements of the default version that the new one drops (a grant widened by
    /// hand, a state prefix no longer used), one line each.
    pub removed: Vec<String>,
    /// The statements the new version adds, one line each.
    pub added: Vec<String>,
}

/// A precondition [`crate::Irsa::plan`] found unmet. A plan with one is printed but not
/// applied: [`crate::Irsa::apply`] refuses it before any write ([`crate::Error::Blocked`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Blocker {
    /// The service account's namespace does not exist.
    NamespaceMissing {
        /// The namespace.
        namespace: String,
    },
    /// The service account's `eks.amazonaws.com/role-arn` annotation names another role:
    /// re-pointing it would take the account away from the deployment that role serves.
    AccountTaken {
        /// `namespace/name` of the service account.
        account: String,
        /// The role the annotation names.
        other_role: String,
        /// This deployment's role.
        role: String,
    },
}

impl Blocker {
    /// The kind of the resource it is about, as [`Operation::kind`] names kinds.
    pub fn kind(&self) -> &'static str {
        match self {
            Blocker::NamespaceMissing { .. } => "namespace",
            Blocker::AccountTaken { .. } => kind::SERVICE_ACCOUNT,
        }
    }

    /// The resource's name.
    pub fn name(&self) -> &str {
        match self {
            Blocker::NamespaceMissing { namespace } => namespace,
            Blocker::AccountTaken { account, .. } => account,
        }
    }

    /// What is wrong, in one line.
    pub fn reason(&self) -> String {
        match self {
            Blocker::NamespaceMissing { namespace } => {
                format!("namespace {namespace} does not exist")
            }
            Blocker::AccountTaken {
                account,
                other_role,
                ..
            } => format!(
                "service account {account} belongs to another deployment: its {ROLE_ARN_ANNOTATION} \
                 names role {} ({other_role})",
                role_name(other_role)
            ),
        }
    }

    /// What to do about it.
    pub fn fix(&self) -> String {
        match self {
            Blocker::NamespaceMissing { namespace } => {
                format!("create it (kubectl create namespace {namespace}) or set job.namespace")
            }
            Blocker::AccountTaken { other_role, .. } => format!(
                "give this deployment its own service account (irsa.service_account), or pass \
                 --adopt (irsa.adopt = true) to re-point it from {} to this deployment's role, \
                 which takes the role away from the pods of the other deployment",
                role_name(other_role)
            ),
        }
    }
}

impl fmt::Display for Blocker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.reason(), self.fix())
    }
}

/// The role name of a role ARN (`arn:aws:iam::1:role/path/name` -> `name`); the input when it
/// is not a role ARN.
pub(crate) fn role_name(arn: &str) -> &str {
    match arn.split_once(":role/") {
        Some((_, path)) => path.rsplit('/').next().unwrap_or(path),
        None => arn,
    }
}

/// One planned operation, with the data its write needs. The spec (names, tags) is in the
/// [`Plan`] that holds it.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Op {
    /// The resource is as asked: applying sends nothing.
    Keep {
        /// The kind of resource (see [`kind`]).
        kind: &'static str,
        /// Its name.
        name: String,
        /// What was read (a resourceVersion, a default version), for the printed plan.
        observed: Option<String>,
    },
    /// `iam:CreateOpenIDConnectProvider` for the cluster's issuer, client id
    /// `sts.amazonaws.com`, no thumbprint.
    CreateOidcProvider {
        /// The provider's ARN.
        arn: String,
        /// The issuer URL.
        url: String,
    },
    /// `iam:AddClientIDToOpenIDConnectProvider` with `sts.amazonaws.com`.
    AddOidcClientId {
        /// The provider's ARN.
        arn: String,
    },
    /// `iam:CreatePolicy`, tagged as ours.
    CreatePolicy {
        /// The ARN it will have.
        arn: String,
        /// Its document.
        document: PolicyDocument,
    },
    /// Tag the policy as ours (adopt) and/or give it a new default version.
    UpdatePolicy {
        /// The policy's ARN.
        arn: String,
        /// Tag it as ours (`adopt`).
        tag: bool,
        /// The new default version, when the document differs.
        version: Option<NewPolicyVersion>,
        /// When adopting a policy whose default version already holds the wanted document:
        /// the value of [`crate::DOCUMENT_TAG_KEY`] naming that version, written with the
        /// ownership tags. (A new version's tag is made from the id IAM gives it.)
        document_tag: Option<String>,
    },
    /// `iam:CreateRole` with the trust policy, tagged as ours.
    CreateRole {
        /// The role's name.
        name: String,
        /// Its trust policy.
        trust: PolicyDocument,
    },
    /// Tag the role as ours (adopt) and/or replace its trust policy.
    UpdateRole {
        /// The role's name.
        name: String,
        /// Tag it as ours (`adopt`).
        tag: bool,
        /// The trust policy, when it differs.
        trust: Option<PolicyDocument>,
    },
    /// `iam:AttachRolePolicy`.
    AttachPolicy {
        /// The role's name.
        role: String,
        /// The policy's ARN.
        policy_arn: String,
    },
    /// Server-side apply of the `eks.amazonaws.com/role-arn` annotation, guarded by the
    /// resourceVersion and uid seen; or a create when the account was missing.
    AnnotateServiceAccount {
        /// The role's ARN, the annotation's value.
        role_arn: String,
        /// The annotation's value when planned.
        previous: Option<String>,
        /// `metadata.resourceVersion` when planned; `None`: the account is created.
        resource_version: Option<String>,
        /// `metadata.uid` when planned, sent with the apply: an apply that would create the
        /// object ignores `resourceVersion`, so only the uid keeps an account deleted since
        /// the plan from being re-created. `None`: the account is created.
        uid: Option<String>,
        /// Pods that ran as the account when planned: they lack the token and must be
        /// recreated.
        pods: Vec<String>,
    },
    /// `eks:CreatePodIdentityAssociation`.
    CreateAssociation {
        /// The role's ARN.
        role_arn: String,
    },
    /// `eks:UpdatePodIdentityAssociation` to our role.
    UpdateAssociation {
        /// The association's id.
        id: String,
        /// The role's ARN.
        role_arn: String,
        /// The role it maps to when planned.
        previous_role_arn: String,
    },
}

impl Op {
    pub(crate) fn keep(kind: &'static str, name: impl Into<String>) -> Op {
        Op::Keep {
            kind,
            name: name.into(),
            observed: None,
        }
    }

    /// Records what a no-change operation saw.
    pub(crate) fn observed(self, seen: String) -> Op {
        match self {
            Op::Keep { kind, name, .. } => Op::Keep {
                kind,
                name,
                observed: Some(seen),
            },
            other => other,
        }
    }

    /// Its printable form.
    pub fn operation(&self, spec: &IrsaSpec) -> Operation {
        match self {
            Op::Keep {
                kind,
                name,
                observed,
            } => {
                let op = Operation::new(kind, name, Action::NoChange);
                match observed {
                    Some(seen) => op.observed(seen),
                    None => op,
                }
            }
            Op::CreateOidcProvider { arn, .. } => {
                Operation::new(kind::OIDC_PROVIDER, arn, Action::Create).detail(format!(
                    "client id {STS_AUDIENCE}; IAM verifies the EKS issuer through its trusted CAs"
                ))
            }
            Op::AddOidcClientId { arn } => Operation::new(kind::OIDC_PROVIDER, arn, Action::Update)
                .detail(format!("add client id {STS_AUDIENCE}")),
            Op::CreatePolicy { arn, .. } => {
                Operation::new(kind::POLICY, arn, Action::Create).detail("tagged as flink-eks")
            }
            Op::UpdatePolicy {
                arn, tag, version, ..
            } => {
                let mut parts = Vec::new();
                if *tag {
                    parts.push("adopt: tag as flink-eks".to_owned());
                }
                let op = Operation::new(kind::POLICY, arn, Action::Update);
                let op = match version {
                    Some(v) => {
                        parts.push(format!(
                            "document differs from {}: new default version",
                            v.default_version
                        ));
                        if !v.removed.is_empty() {
                            parts.push(format!("removes: {}", v.removed.join(" | ")));
                        }
                        if !v.added.is_empty() {
                            parts.push(format!("adds: {}", v.added.join(" | ")));
                        }
                        if let Some(oldest) = &v.delete_first {
                            parts.push(format!("{oldest} deleted first (IAM keeps 5 versions)"));
                        }
                        op.observed(format!("default version {}", v.default_version))
                    }
                    None => op,
                };
                op.detail(parts.join("; "))
            }
            Op::CreateRole { name, .. } => Operation::new(kind::ROLE, name, Action::Create)
                .detail("with trust policy, tagged as flink-eks"),
            Op::UpdateRole { name, tag, trust } => {
                let detail = match (tag, trust.is_some()) {
                    (true, true) => "adopt: tag as flink-eks; trust policy corrected",
                    (true, false) => "adopt: tag as flink-eks",
                    _ => "trust policy drifted: corrected",
                };
                Operation::new(kind::ROLE, name, Action::Update).detail(detail)
            }
            Op::AttachPolicy { .. } => Operation::new(
                kind::POLICY_ATTACHMENT,
                attachment_name(spec),
                Action::Create,
            ),
            Op::AnnotateServiceAccount {
                role_arn,
                previous,
                resource_version,
                ..
            } => {
                let name = spec.account_name();
                match (resource_version, previous) {
                    (None, _) => Operation::new(kind::SERVICE_ACCOUNT, name, Action::Create)
                        .detail(format!("with {ROLE_ARN_ANNOTATION}={role_arn}")),
                    (Some(rv), Some(old)) => {
                        Operation::new(kind::SERVICE_ACCOUNT, name, Action::Update)
                            .observed(format!("resourceVersion {rv}"))
                            .detail(format!("{ROLE_ARN_ANNOTATION}: {old} -> {role_arn}"))
                    }
                    (Some(rv), None) => Operation::new(kind::SERVICE_ACCOUNT, name, Action::Update)
                        .observed(format!("resourceVersion {rv}"))
                        .detail(format!("annotate {ROLE_ARN_ANNOTATION}={role_arn}")),
                }
            }
            Op::CreateAssociation { role_arn } => Operation::new(
                kind::POD_IDENTITY_ASSOCIATION,
                spec.association_name(),
                Action::Create,
            )
            .detail(format!("role {role_arn}")),
            Op::UpdateAssociation {
                id,
                role_arn,
                previous_role_arn,
            } => Operation::new(
                kind::POD_IDENTITY_ASSOCIATION,
                spec.association_name(),
                Action::Update,
            )
            .observed(format!("association {id}"))
            .detail(format!("role {previous_role_arn} -> {role_arn}")),
        }
    }

    /// Whether performing it sends a write.
    pub fn writes(&self) -> bool {
        !matches!(self, Op::Keep { .. })
    }

    /// Whether IAM must show the role with its policy before pods are given the role.
    pub(crate) fn needs_iam_visible(&self) -> bool {
        matches!(
            self,
            Op::CreateRole { .. } | Op::UpdateRole { .. } | Op::AttachPolicy { .. }
        )
    }

    /// Whether it hands the role to pods (annotation or association).
    pub(crate) fn hands_role_to_pods(&self) -> bool {
        matches!(
            self,
            Op::AnnotateServiceAccount { .. }
                | Op::CreateAssociation { .. }
                | Op::UpdateAssociation { .. }
        )
    }
}

/// What [`crate::Irsa::apply`] will do, computed from one round of reads. Self-contained:
/// applying it needs no spec and reads nothing to decide.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The spec it was planned for.
    pub spec: IrsaSpec,
    /// The AWS account: the one the cluster's or role's ARN names, else STS's caller.
    pub account: String,
    /// The partition of the region.
    pub partition: Partition,
    /// The role's ARN.
    pub role_arn: String,
    /// The policy's ARN.
    pub policy_arn: String,
    /// The cluster's OIDC issuer URL (IRSA mode only).
    pub issuer: Option<String>,
    /// The operations, in the order apply performs them; one per resource.
    pub ops: Vec<Op>,
    /// The preconditions found unmet: while there is one, apply refuses the plan.
    pub blockers: Vec<Blocker>,
    /// The cluster's identity as EKS returned it while planning, for a caller that keeps it
    /// for its next plan ([`crate::Irsa::with_known_cluster`]); none when the identity given
    /// was used and not asked for again.
    pub cluster: Option<ClusterIdentity>,
}

impl Plan {
    /// Whether applying would change nothing (and so sends no call at all).
    pub fn is_noop(&self) -> bool {
        !self.ops.iter().any(Op::writes)
    }

    /// The plan with the service account's namespace created by an earlier step (the
    /// deploy pipeline's rbac step, when it plans the namespace's creation): a missing
    /// namespace no longer blocks it, and the account is created as planned. Nothing else
    /// changes.
    #[must_use]
    pub fn with_namespace_created_first(mut self) -> Plan {
        self.blockers
            .retain(|b| !matches!(b, Blocker::NamespaceMissing { .. }));
        self
    }

    /// The role's ARN.
    pub fn role_arn(&self) -> &str {
        &self.role_arn
    }

    /// The operations in printable form, one per resource, in the order apply handles them
    /// (also the resources with no change).
    pub fn operations(&self) -> Vec<Operation> {
        self.ops.iter().map(|op| op.operation(&self.spec)).collect()
    }
}

impl fmt::Display for Plan {
    /// One line per operation.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_lines(f, self.operations())
    }
}

/// One operation of a teardown.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TeardownOp {
    /// Nothing is removed: the resource is absent, or not ours to remove.
    Keep {
        /// The kind of resource (see [`kind`]).
        kind: &'static str,
        /// Its name.
        name: String,
        /// `false`: it exists and is left alone; `true`: it is absent.
        absent: bool,
        /// Why, in a few words.
        detail: String,
    },
    /// Remove the annotation, guarded by the resourceVersion seen.
    RemoveAnnotation {
        /// `metadata.resourceVersion` when planned.
        resource_version: String,
    },
    /// `eks:DeletePodIdentityAssociation`.
    DeleteAssociation {
        /// The association's id.
        id: String,
    },
    /// `iam:DetachRolePolicy` from our role.
    Detach {
        /// The attached policy.
        policy_arn: String,
        /// Whether it is the spec's policy (otherwise it is detached only so that the role
        /// can be deleted, and the policy itself is kept).
        ours: bool,
    },
    /// Delete the role's inline policies, then the role.
    DeleteRole {
        /// Its inline policies when planned.
        inline: Vec<String>,
    },
    /// Delete the policy's non-default versions, then the policy.
    DeletePolicy {
        /// The policy's ARN.
        arn: String,
        /// Its non-default versions when planned.
        versions: Vec<String>,
    },
}

impl TeardownOp {
    pub(crate) fn absent(
        kind: &'static str,
        name: impl Into<String>,
        detail: impl Into<String>,
    ) -> TeardownOp {
        TeardownOp::Keep {
            kind,
            name: name.into(),
            absent: true,
            detail: detail.into(),
        }
    }

    pub(crate) fn left_alone(
        kind: &'static str,
        name: impl Into<String>,
        detail: impl Into<String>,
    ) -> TeardownOp {
        TeardownOp::Keep {
            kind,
            name: name.into(),
            absent: false,
            detail: detail.into(),
        }
    }

    /// Its printable form: action `Delete`, or `NoChange` with the reason.
    pub fn operation(&self, spec: &IrsaSpec) -> Operation {
        match self {
            TeardownOp::Keep {
                kind,
                name,
                detail,
                absent,
            } => {
                let detail = match (*absent, detail.is_empty()) {
                    (true, true) => "absent".to_owned(),
                    (true, false) => format!("absent: {detail}"),
                    (false, _) => format!("left alone: {detail}"),
                };
                Operation::new(kind, name, Action::NoChange).detail(detail)
            }
            TeardownOp::RemoveAnnotation { resource_version } => {
                Operation::new(kind::SERVICE_ACCOUNT, spec.account_name(), Action::Delete)
                    .observed(format!("resourceVersion {resource_version}"))
                    .detail(format!(
                        "{ROLE_ARN_ANNOTATION} removed; the service account itself is kept"
                    ))
            }
            TeardownOp::DeleteAssociation { id } => Operation::new(
                kind::POD_IDENTITY_ASSOCIATION,
                spec.association_name(),
                Action::Delete,
            )
            .detail(id.clone()),
            TeardownOp::Detach { policy_arn, ours } => {
                if *ours {
                    Operation::new(
                        kind::POLICY_ATTACHMENT,
                        attachment_name(spec),
                        Action::Delete,
                    )
                    .detail("detached")
                } else {
                    Operation::new(
                        kind::POLICY_ATTACHMENT,
                        format!("{policy_arn} -> {}", spec.role_name),
                        Action::Delete,
                    )
                    .detail("detached so that the role can be deleted; that policy itself is kept")
                }
            }
            TeardownOp::DeleteRole { inline } => {
                let op = Operation::new(kind::ROLE, &spec.role_name, Action::Delete);
                if inline.is_empty() {
                    op
                } else {
                    op.detail(format!("with its inline policies {}", inline.join(", ")))
                }
            }
            TeardownOp::DeletePolicy { arn, versions } => {
                let op = Operation::new(kind::POLICY, arn, Action::Delete);
                if versions.is_empty() {
                    op
                } else {
                    op.detail(format!(
                        "non-default versions {} first",
                        versions.join(", ")
                    ))
                }
            }
        }
    }

    /// Whether performing it sends a write.
    pub fn writes(&self) -> bool {
        !matches!(self, TeardownOp::Keep { .. })
    }
}

/// What [`crate::Irsa::apply_teardown`] will remove and leave, computed from one round of
/// reads.
#[derive(Debug, Clone, PartialEq)]
pub struct TeardownPlan {
    /// The spec it was planned for.
    pub spec: IrsaSpec,
    /// The operations, in the order they are performed.
    pub ops: Vec<TeardownOp>,
}

impl TeardownPlan {
    /// Whether nothing would be removed.
    pub fn is_noop(&self) -> bool {
        !self.ops.iter().any(TeardownOp::writes)
    }

    /// The operations in printable form.
    pub fn operations(&self) -> Vec<Operation> {
        self.ops.iter().map(|op| op.operation(&self.spec)).collect()
    }
}

impl fmt::Display for TeardownPlan {
    /// One line per operation.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_lines(f, self.operations())
    }
}

/// Writes one line per operation.
fn write_lines(f: &mut fmt::Formatter<'_>, operations: Vec<Operation>) -> fmt::Result {
    for op in operations {
        writeln!(f, "{op}")?;
    }
    Ok(())
}

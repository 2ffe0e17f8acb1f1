//! The plan as data: typed operations with what they saw and what they will do, and their
//! printable form ([`flink_eks_plan::Operation`]). [`crate::Rbac::apply`] performs exactly
//! these operations.

use std::fmt;

use flink_eks_plan::{Action, Operation};

use crate::spec::{RbacSpec, describe_rules};

/// The kinds of resource, as [`Operation::kind`] names them.
pub mod kind {
    /// The job's namespace.
    pub const NAMESPACE: &str = "namespace";
    /// The Role holding the job's rules.
    pub const ROLE: &str = "role";
    /// The RoleBinding of the Role to the job's service account.
    pub const ROLE_BINDING: &str = "role-binding";
}

/// The resources [`crate::Rbac::apply`] manages for `spec`, as operations named without
/// reading anything (a dry run lists them), with what the Role grants to whom.
pub fn resources(spec: &RbacSpec) -> Vec<Operation> {
    vec![
        Operation::new(kind::NAMESPACE, &spec.namespace, Action::Create)
            .detail("created when missing"),
        Operation::new(kind::ROLE, spec.qualified_name(), Action::Create).detail(describe_rules()),
        Operation::new(kind::ROLE_BINDING, spec.qualified_name(), Action::Create).detail(format!(
            "role {} to {}",
            spec.object_name(),
            spec.user()
        )),
    ]
}

/// A precondition [`crate::Rbac::plan`] found unmet. A plan with one is printed but not
/// applied: [`crate::Rbac::apply`] refuses it before any write.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Blocker {
    /// A Role or RoleBinding of the tool's name exists and flink-eks did not make it for
    /// this service account.
    NotOurs {
        /// [`kind::ROLE`] or [`kind::ROLE_BINDING`].
        kind: &'static str,
        /// `namespace/name`.
        name: String,
        /// Its labels, as `key=value` pairs (or `none`).
        labels: String,
    },
    /// Our RoleBinding binds another role; `roleRef` cannot be changed in place.
    RoleRefDiffers {
        /// `namespace/name` of the RoleBinding.
        name: String,
        /// The role it binds, `Kind/name`.
        found: String,
    },
    /// The caller may not read Roles or RoleBindings in the namespace.
    Forbidden {
        /// [`kind::ROLE`] or [`kind::ROLE_BINDING`].
        kind: &'static str,
        /// `namespace/name`.
        name: String,
        /// The API server's message.
        message: String,
    },
}

impl Blocker {
    /// The kind of resource it is about.
    pub fn kind(&self) -> &'static str {
        match self {
            Blocker::NotOurs { kind, .. } | Blocker::Forbidden { kind, .. } => kind,
            Blocker::RoleRefDiffers { .. } => kind::ROLE_BINDING,
        }
    }

    /// The resource's name.
    pub fn name(&self) -> &str {
        match self {
            Blocker::NotOurs { name, .. }
            | Blocker::RoleRefDiffers { name, .. }
            | Blocker::Forbidden { name, .. } => name,
        }
    }

    /// Whether the caller's credentials lack a permission (rather than the input being
    /// wrong).
    pub fn is_auth(&self) -> bool {
        matches!(self, Blocker::Forbidden { .. })
    }

    /// What is wrong, in one line.
    pub fn reason(&self) -> String {
        match self {
            Blocker::NotOurs { kind, name, labels } => format!(
                "{kind} {name} exists and was not made by flink-eks for this service account \
                 (labels: {labels}); it is left untouched"
            ),
            Blocker::RoleRefDiffers { name, found } => format!(
                "role-binding {name} binds {found}, not the job's Role, and a RoleBinding's \
                 roleRef cannot be changed"
            ),
            Blocker::Forbidden {
                kind,
                name,
                message,
            } => format!("the caller may not read {kind} {name}: {message}"),
        }
    }

    /// What to do about it.
    pub fn fix(&self) -> String {
        match self {
            Blocker::NotOurs { kind, name, .. } => {
                let (namespace, object) = name.split_once('/').unwrap_or(("", name));
                let kubectl = if *kind == kind::ROLE {
                    "role"
                } else {
                    "rolebinding"
                };
                format!(
                    "use another service account (irsa.service_account), delete it \
                     (kubectl -n {namespace} delete {kubectl} {object}), or pass --adopt \
                     (irsa.adopt = true) to take it over"
                )
            }
            Blocker::RoleRefDiffers { name, .. } => {
                let (namespace, object) = name.split_once('/').unwrap_or(("", name));
                format!(
                    "delete it (kubectl -n {namespace} delete rolebinding {object}) and deploy again"
                )
            }
            Blocker::Forbidden { .. } => "grant the deploying identity get, create, patch and \
                 delete on roles and rolebindings in the namespace (for example the `admin` \
                 ClusterRole through a RoleBinding), or skip the step with --skip rbac when \
                 the service account is already allowed"
                .to_owned(),
        }
    }
}

impl fmt::Display for Blocker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.reason(), self.fix())
    }
}

/// The state a write to an existing object is guarded by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Guard {
    /// `metadata.resourceVersion` when planned.
    pub resource_version: String,
    /// `metadata.uid` when planned.
    pub uid: String,
}

/// One planned operation.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Op {
    /// Nothing is sent.
    Keep {
        /// The kind of resource (see [`kind`]).
        kind: &'static str,
        /// Its name.
        name: String,
        /// What was read, for the printed plan.
        observed: Option<String>,
        /// Why nothing is needed.
        detail: String,
    },
    /// `POST` the namespace, labelled as flink-eks's.
    CreateNamespace {
        /// The namespace.
        name: String,
    },
    /// `POST` the Role (409 AlreadyExists: someone created it since the plan).
    CreateRole {
        /// Why it is needed.
        why: String,
    },
    /// Server-side apply of the Role with the planned resourceVersion and uid.
    UpdateRole {
        /// What the write is guarded by.
        guard: Guard,
        /// What differs.
        why: String,
    },
    /// `POST` the RoleBinding.
    CreateBinding {
        /// Why it is needed.
        why: String,
    },
    /// Server-side apply of the RoleBinding with the planned resourceVersion and uid.
    UpdateBinding {
        /// What the write is guarded by.
        guard: Guard,
        /// What differs.
        why: String,
    },
}

impl Op {
    /// Its printable form.
    pub fn operation(&self, spec: &RbacSpec) -> Operation {
        let guarded = |op: Operation, guard: &Guard| {
            op.observed(format!("resourceVersion {}", guard.resource_version))
        };
        match self {
            Op::Keep {
                kind,
                name,
                observed,
                detail,
            } => {
                let op = Operation::new(kind, name, Action::NoChange).detail(detail);
                match observed {
                    Some(seen) => op.observed(seen),
                    None => op,
                }
            }
            Op::CreateNamespace { name } => Operation::new(kind::NAMESPACE, name, Action::Create)
                .detail(format!("labelled {}", crate::spec::MANAGED_BY_KEY)),
            Op::CreateRole { why } => {
                Operation::new(kind::ROLE, spec.qualified_name(), Action::Create)
                    .detail(format!("{why}; {}", describe_rules()))
            }
            Op::UpdateRole { guard, why } => guarded(
                Operation::new(kind::ROLE, spec.qualified_name(), Action::Update).detail(why),
                guard,
            ),
            Op::CreateBinding { why } => {
                Operation::new(kind::ROLE_BINDING, spec.qualified_name(), Action::Create)
                    .detail(format!("{why}; to {}", spec.user()))
            }
            Op::UpdateBinding { guard, why } => guarded(
                Operation::new(kind::ROLE_BINDING, spec.qualified_name(), Action::Update)
                    .detail(why),
                guard,
            ),
        }
    }

    /// Whether performing it sends a write.
    pub fn writes(&self) -> bool {
        !matches!(self, Op::Keep { .. })
    }
}

/// What [`crate::Rbac::apply`] will do, computed from one round of reads.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The spec it was planned for.
    pub spec: RbacSpec,
    /// The operations, in the order they are performed: namespace, Role, RoleBinding.
    pub ops: Vec<Op>,
    /// Unmet preconditions; a plan with one is not applied.
    pub blockers: Vec<Blocker>,
    /// What the user should know though the plan goes on (a SubjectAccessReview the
    /// caller may not create).
    pub warnings: Vec<String>,
}

impl Plan {
    /// The operations in their printable form.
    pub fn operations(&self) -> Vec<Operation> {
        self.ops.iter().map(|op| op.operation(&self.spec)).collect()
    }

    /// Whether applying it writes anything.
    pub fn writes(&self) -> bool {
        self.ops.iter().any(Op::writes)
    }

    /// Whether it creates the namespace: the steps that put objects into the namespace plan
    /// their creates around it instead of blocking on it.
    pub fn creates_namespace(&self) -> bool {
        self.ops
            .iter()
            .any(|op| matches!(op, Op::CreateNamespace { .. }))
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for op in self.operations() {
            writeln!(f, "{op}")?;
        }
        for blocker in &self.blockers {
            writeln!(f, "blocked: {blocker}")?;
        }
        Ok(())
    }
}

/// One teardown operation.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TeardownOp {
    /// Delete it, with the planned uid and resourceVersion as preconditions.
    Delete {
        /// [`kind::ROLE`] or [`kind::ROLE_BINDING`].
        kind: &'static str,
        /// What the delete is guarded by.
        guard: Guard,
    },
    /// Leave it, and say why.
    Leave {
        /// The kind of resource.
        kind: &'static str,
        /// `namespace/name`, or the namespace.
        name: String,
        /// Why it stays.
        reason: String,
    },
}

/// What [`crate::Rbac::apply_teardown`] will remove: the Role and RoleBinding flink-eks made
/// for the service account, nothing else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TeardownPlan {
    /// The spec it was planned for.
    pub spec: RbacSpec,
    /// RoleBinding first, then Role, then what stays.
    pub ops: Vec<TeardownOp>,
}

impl TeardownPlan {
    /// The operations in their printable form.
    pub fn operations(&self) -> Vec<Operation> {
        self.ops
            .iter()
            .map(|op| match op {
                TeardownOp::Delete { kind, guard } => {
                    Operation::new(kind, self.spec.qualified_name(), Action::Delete)
                        .observed(format!("resourceVersion {}", guard.resource_version))
                        .detail("made by flink-eks for this service account")
                }
                TeardownOp::Leave { kind, name, reason } => {
                    Operation::new(kind, name, Action::NoChange).detail(reason)
                }
            })
            .collect()
    }
}

impl fmt::Display for TeardownPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for op in self.operations() {
            writeln!(f, "{op}")?;
        }
        Ok(())
    }
}

//! Every decision, as pure functions of what was read: is it ours, is it as wanted, which
//! operation, what the reviews say, what teardown may remove. No IO.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::authorization::v1::ResourceAttributes;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::plan::{Blocker, Guard, Op, TeardownOp, kind};
use crate::spec::{MANAGED_BY_KEY, MANAGED_BY_VALUE, RbacSpec, SERVICE_ACCOUNT_KEY};

/// What SubjectAccessReviews say the job's service account may do with the job's rules.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Access {
    /// Every verb on every resource of the rules is allowed.
    Allowed,
    /// These are not allowed, as `verb resource` (`create pods`, `update apps/deployments`).
    Missing(Vec<String>),
    /// The reviews could not be made (the caller may not create SubjectAccessReviews).
    Unknown(String),
    /// Not reviewed: a job already runs, unchanged and stable, as the account (named here),
    /// which it could not without every grant it needs.
    InUse(String),
}

impl Access {
    /// Whether every verb is allowed.
    pub fn is_allowed(&self) -> bool {
        matches!(self, Access::Allowed | Access::InUse(_))
    }
}

/// What the reviews of [`RbacSpec::review_attributes`] answered, in the same order:
/// `allowed` for each. Pure: the judgement `cargo xtask doctor` and the plan share.
pub fn judge(reviews: &[(ResourceAttributes, bool)]) -> Access {
    let missing: Vec<String> = reviews
        .iter()
        .filter(|(_, allowed)| !allowed)
        .map(|(attributes, _)| describe_attributes(attributes))
        .collect();
    if missing.is_empty() {
        Access::Allowed
    } else {
        Access::Missing(missing)
    }
}

/// `verb group/resource/subresource` of a review, as `kubectl auth can-i` reads.
pub fn describe_attributes(attributes: &ResourceAttributes) -> String {
    let mut resource = attributes.resource.clone().unwrap_or_default();
    if let Some(group) = attributes.group.as_deref().filter(|g| !g.is_empty()) {
        resource = format!("{group}/{resource}");
    }
    if let Some(sub) = attributes.subresource.as_deref().filter(|s| !s.is_empty()) {
        resource = format!("{resource}/{sub}");
    }
    format!(
        "{} {resource}",
        attributes.verb.as_deref().unwrap_or_default()
    )
}

/// Everything [`plan_ops`] decides from.
#[derive(Debug, Clone, Default)]
pub(crate) struct Seen {
    /// `None` when the namespace is missing.
    pub(crate) namespace: Option<Namespace>,
    pub(crate) role: Option<Role>,
    pub(crate) binding: Option<RoleBinding>,
    /// `None` when not reviewed (our Role or RoleBinding exists, or the namespace is new).
    pub(crate) access: Option<Access>,
    /// The kinds the caller may not read, with the API server's message: read as missing,
    /// and a blocker when the plan would write them.
    pub(crate) forbidden: Vec<(&'static str, String)>,
}

/// Whether the object carries flink-eks's labels for this service account.
pub fn is_ours(metadata: &ObjectMeta, spec: &RbacSpec) -> bool {
    let labels = metadata.labels.as_ref();
    let label = |key: &str| labels.and_then(|l| l.get(key)).map(String::as_str);
    label(MANAGED_BY_KEY) == Some(MANAGED_BY_VALUE)
        && label(SERVICE_ACCOUNT_KEY) == Some(spec.service_account.as_str())
}

/// Whether what was read shows the namespace exists: a Role or RoleBinding of that name was
/// found in it (namespaced objects exist only in an existing namespace), whoever made it.
pub(crate) fn namespace_shown(seen: &Seen) -> bool {
    seen.role.is_some() || seen.binding.is_some()
}

/// Whether the reviews must be asked: only when neither our Role nor our RoleBinding
/// exists (they would make the answer "allowed") and the namespace exists (a new one holds
/// no grant).
pub(crate) fn needs_review(spec: &RbacSpec, seen: &Seen) -> bool {
    seen.namespace.is_some()
        && !seen
            .role
            .as_ref()
            .is_some_and(|r| is_ours(&r.metadata, spec))
        && !seen
            .binding
            .as_ref()
            .is_some_and(|b| is_ours(&b.metadata, spec))
}

fn labels_text(metadata: &ObjectMeta) -> String {
    match &metadata.labels {
        Some(labels) if !labels.is_empty() => labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(","),
        _ => "none".to_owned(),
    }
}

fn guard_of(metadata: &ObjectMeta) -> Guard {
    Guard {
        resource_version: metadata.resource_version.clone().unwrap_or_default(),
        uid: metadata.uid.clone().unwrap_or_default(),
    }
}

/// Rules as a set of `(group, resource, verb, resourceNames)` grants, so that order and
/// grouping do not matter; non-resource URLs are kept apart by their own entries.
fn grants(rules: &[PolicyRule]) -> BTreeSet<(String, String, String, Vec<String>)> {
    let mut set = BTreeSet::new();
    for rule in rules {
        let mut names = rule.resource_names.clone().unwrap_or_default();
        names.sort();
        for url in rule.non_resource_urls.iter().flatten() {
            for verb in &rule.verbs {
                set.insert(("url".to_owned(), url.clone(), verb.clone(), Vec::new()));
            }
        }
        for group in rule.api_groups.iter().flatten() {
            for resource in rule.resources.iter().flatten() {
                for verb in &rule.verbs {
                    set.insert((group.clone(), resource.clone(), verb.clone(), names.clone()));
                }
            }
        }
    }
    set
}

/// Whether a Role holds exactly the job's rules (compared by meaning).
pub(crate) fn same_rules(role: &Role, spec: &RbacSpec) -> bool {
    let want = spec.role().rules.unwrap_or_default();
    grants(role.rules.as_deref().unwrap_or_default()) == grants(&want)
}

fn same_subjects(binding: &RoleBinding, spec: &RbacSpec) -> bool {
    let want = spec.subject();
    match binding.subjects.as_deref() {
        Some([only]) => {
            only.kind == want.kind
                && only.name == want.name
                && only.namespace == want.namespace
                && only.api_group.as_deref().unwrap_or_default().is_empty()
        }
        _ => false,
    }
}

fn same_role_ref(binding: &RoleBinding, spec: &RbacSpec) -> bool {
    binding.role_ref == spec.role_ref()
}

fn access_why(access: Option<&Access>) -> String {
    match access {
        None => "the job's rules for a new namespace".to_owned(),
        Some(Access::Allowed) => "allowed already".to_owned(),
        Some(Access::Missing(missing)) => {
            let shown: Vec<&str> = missing.iter().take(3).map(String::as_str).collect();
            let more = missing.len().saturating_sub(shown.len());
            let more = if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            };
            format!("the account may not {}{more}", shown.join(", "))
        }
        Some(Access::Unknown(_)) => {
            "not known whether the account is allowed (no SubjectAccessReview)".to_owned()
        }
        Some(Access::InUse(job)) => format!("{job} runs as the account"),
    }
}

/// The operations that make the namespace, Role and RoleBinding match `spec`, and the
/// preconditions found unmet. Never plans a write to a Role or RoleBinding flink-eks did not
/// make for this account, unless `spec.adopt`.
pub(crate) fn plan_ops(spec: &RbacSpec, seen: &Seen) -> (Vec<Op>, Vec<Blocker>) {
    let (mut ops, mut blockers) = plan_writes(spec, seen);
    for (kind, message) in &seen.forbidden {
        let writes = ops
            .iter()
            .any(|op| op.writes() && op.operation(spec).kind == *kind);
        if writes {
            ops.retain(|op| op.operation(spec).kind != *kind);
            blockers.push(Blocker::Forbidden {
                kind,
                name: spec.qualified_name(),
                message: message.clone(),
            });
        }
    }
    (ops, blockers)
}

fn plan_writes(spec: &RbacSpec, seen: &Seen) -> (Vec<Op>, Vec<Blocker>) {
    let mut ops = Vec::new();
    let mut blockers = Vec::new();
    let name = spec.qualified_name();
    ops.push(match &seen.namespace {
        None => Op::CreateNamespace {
            name: spec.namespace.clone(),
        },
        Some(namespace) => Op::Keep {
            kind: kind::NAMESPACE,
            name: spec.namespace.clone(),
            observed: None,
            detail: if is_ours_namespace(&namespace.metadata) {
                "made by flink-eks".to_owned()
            } else {
                String::new()
            },
        },
    });
    let role_ours = seen
        .role
        .as_ref()
        .is_some_and(|r| is_ours(&r.metadata, spec));
    let binding_ours = seen
        .binding
        .as_ref()
        .is_some_and(|b| is_ours(&b.metadata, spec));
    if !role_ours && !binding_ours && seen.access.as_ref().is_some_and(Access::is_allowed) {
        let detail = match &seen.access {
            Some(Access::InUse(job)) => format!(
                "not needed: {job} runs unchanged as {}, so its grants suffice",
                spec.user()
            ),
            _ => format!(
                "not needed: SubjectAccessReviews allow {} every verb of the job's rules",
                spec.user()
            ),
        };
        for kind in [kind::ROLE, kind::ROLE_BINDING] {
            ops.push(Op::Keep {
                kind,
                name: name.clone(),
                observed: None,
                detail: detail.clone(),
            });
        }
        return (ops, blockers);
    }
    let why = access_why(seen.access.as_ref());

    match &seen.role {
        None => ops.push(Op::CreateRole { why: why.clone() }),
        Some(role) => {
            let ours = is_ours(&role.metadata, spec);
            let same = same_rules(role, spec);
            if !ours && !spec.adopt {
                blockers.push(Blocker::NotOurs {
                    kind: kind::ROLE,
                    name: name.clone(),
                    labels: labels_text(&role.metadata),
                });
            } else if ours && same {
                ops.push(keep(kind::ROLE, &name, &role.metadata));
            } else {
                let why = match (ours, same) {
                    (false, true) => "adopt: label as flink-eks",
                    (false, false) => "adopt: label as flink-eks; rules set to the job's",
                    _ => "rules drifted: set to the job's",
                };
                ops.push(Op::UpdateRole {
                    guard: guard_of(&role.metadata),
                    why: why.to_owned(),
                });
            }
        }
    }

    match &seen.binding {
        None => ops.push(Op::CreateBinding { why }),
        Some(binding) => {
            let ours = is_ours(&binding.metadata, spec);
            if !ours && !spec.adopt {
                blockers.push(Blocker::NotOurs {
                    kind: kind::ROLE_BINDING,
                    name: name.clone(),
                    labels: labels_text(&binding.metadata),
                });
            } else if !same_role_ref(binding, spec) {
                blockers.push(Blocker::RoleRefDiffers {
                    name: name.clone(),
                    found: format!("{}/{}", binding.role_ref.kind, binding.role_ref.name),
                });
            } else if ours && same_subjects(binding, spec) {
                ops.push(keep(kind::ROLE_BINDING, &name, &binding.metadata));
            } else {
                let why = match (ours, same_subjects(binding, spec)) {
                    (false, true) => "adopt: label as flink-eks".to_owned(),
                    (false, false) => {
                        format!("adopt: label as flink-eks; subjects set to {}", spec.user())
                    }
                    _ => format!("subjects drifted: set to {}", spec.user()),
                };
                ops.push(Op::UpdateBinding {
                    guard: guard_of(&binding.metadata),
                    why,
                });
            }
        }
    }
    (ops, blockers)
}

fn keep(kind: &'static str, name: &str, metadata: &ObjectMeta) -> Op {
    Op::Keep {
        kind,
        name: name.to_owned(),
        observed: metadata
            .resource_version
            .as_ref()
            .map(|rv| format!("resourceVersion {rv}")),
        detail: String::new(),
    }
}

fn is_ours_namespace(metadata: &ObjectMeta) -> bool {
    metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(MANAGED_BY_KEY))
        .is_some_and(|v| v == MANAGED_BY_VALUE)
}

/// The labels of a namespace flink-eks creates.
pub(crate) fn namespace_labels() -> BTreeMap<String, String> {
    BTreeMap::from([(MANAGED_BY_KEY.to_owned(), MANAGED_BY_VALUE.to_owned())])
}

/// What teardown removes: the RoleBinding and Role flink-eks made for this account, each
/// guarded by what was read; everything else stays, with the reason. The namespace always
/// stays: deleting it would delete everything in it.
pub(crate) fn teardown_ops(
    spec: &RbacSpec,
    namespace: Option<&Namespace>,
    role: Option<&Role>,
    binding: Option<&RoleBinding>,
) -> Vec<TeardownOp> {
    let name = spec.qualified_name();
    let mut ops = Vec::new();
    for (kind, metadata) in [
        (kind::ROLE_BINDING, binding.map(|b| &b.metadata)),
        (kind::ROLE, role.map(|r| &r.metadata)),
    ] {
        ops.push(match metadata {
            None => TeardownOp::Leave {
                kind,
                name: name.clone(),
                reason: "not found: nothing to delete".to_owned(),
            },
            Some(metadata) if is_ours(metadata, spec) => TeardownOp::Delete {
                kind,
                guard: guard_of(metadata),
            },
            Some(metadata) => TeardownOp::Leave {
                kind,
                name: name.clone(),
                reason: format!(
                    "not made by flink-eks for this service account (labels: {}): kept",
                    labels_text(metadata)
                ),
            },
        });
    }
    if let Some(namespace) = namespace.filter(|n| is_ours_namespace(&n.metadata)) {
        let _ = namespace;
        ops.push(TeardownOp::Leave {
            kind: kind::NAMESPACE,
            name: spec.namespace.clone(),
            reason: format!(
                "made by flink-eks, kept: deleting a namespace deletes everything in it \
                 (kubectl delete namespace {} when it holds nothing else)",
                spec.namespace
            ),
        });
    }
    ops
}

#[cfg(test)]
mod tests {
    use super::*;
    use flink_eks_plan::Action;

    fn spec() -> RbacSpec {
        RbacSpec::new("streaming", "flink-runner")
    }

    fn with_meta<T>(
        mut object: T,
        meta: impl Fn(&mut ObjectMeta),
        get: fn(&mut T) -> &mut ObjectMeta,
    ) -> T {
        let m = get(&mut object);
        m.resource_version = Some("7".into());
        m.uid = Some("u-1".into());
        meta(m);
        object
    }

    fn our_role() -> Role {
        with_meta(spec().role(), |_| {}, |r| &mut r.metadata)
    }

    fn our_binding() -> RoleBinding {
        with_meta(spec().role_binding(), |_| {}, |b| &mut b.metadata)
    }

    fn foreign<T>(object: T, get: fn(&mut T) -> &mut ObjectMeta) -> T {
        with_meta(
            object,
            |m| {
                m.labels = Some(BTreeMap::from([(
                    "app.kubernetes.io/managed-by".into(),
                    "Helm".into(),
                )]))
            },
            get,
        )
    }

    fn existing_namespace() -> Option<Namespace> {
        Some(Namespace::default())
    }

    fn actions(spec: &RbacSpec, ops: &[Op]) -> Vec<(&'static str, Action)> {
        ops.iter()
            .map(|op| {
                let op = op.operation(spec);
                (op.kind, op.action)
            })
            .collect()
    }

    #[test]
    fn a_fresh_namespace_gets_namespace_role_and_binding_created() {
        let seen = Seen::default();
        assert!(
            !needs_review(&spec(), &seen),
            "a new namespace holds no grant"
        );
        let (ops, blockers) = plan_ops(&spec(), &seen);
        assert!(blockers.is_empty());
        assert_eq!(
            actions(&spec(), &ops),
            [
                (kind::NAMESPACE, Action::Create),
                (kind::ROLE, Action::Create),
                (kind::ROLE_BINDING, Action::Create)
            ]
        );
        let role = ops[1].operation(&spec());
        assert!(
            role.detail
                .contains("pods, configmaps: get,list,watch,create,update,patch,delete"),
            "{role}"
        );
    }

    #[test]
    fn an_account_the_reviews_allow_needs_no_role_and_the_plan_says_why() {
        let seen = Seen {
            namespace: existing_namespace(),
            access: Some(Access::Allowed),
            ..Seen::default()
        };
        assert!(needs_review(&spec(), &seen));
        let (ops, blockers) = plan_ops(&spec(), &seen);
        assert!(blockers.is_empty());
        assert!(ops.iter().all(|op| !op.writes()));
        let role = ops[1].operation(&spec());
        assert!(role.detail.contains("not needed: SubjectAccessReviews allow system:serviceaccount:streaming:flink-runner"), "{role}");
    }

    #[test]
    fn a_job_running_unchanged_as_the_account_needs_no_role_and_no_review() {
        let seen = Seen {
            namespace: existing_namespace(),
            access: Some(Access::InUse("FlinkDeployment streaming/wordcount".into())),
            ..Seen::default()
        };
        let (ops, blockers) = plan_ops(&spec(), &seen);
        assert!(blockers.is_empty());
        assert!(ops.iter().all(|op| !op.writes()));
        let role = ops[1].operation(&spec());
        assert!(
            role.detail.contains(
                "not needed: FlinkDeployment streaming/wordcount runs unchanged as \
                 system:serviceaccount:streaming:flink-runner"
            ),
            "{role}"
        );
    }

    #[test]
    fn a_partial_grant_creates_the_role_naming_what_is_missing() {
        let seen = Seen {
            namespace: existing_namespace(),
            access: Some(Access::Missing(vec![
                "create pods".into(),
                "delete pods".into(),
            ])),
            ..Seen::default()
        };
        let (ops, _) = plan_ops(&spec(), &seen);
        let role = ops[1].operation(&spec());
        assert_eq!(role.action, Action::Create);
        assert!(
            role.detail.contains("may not create pods, delete pods"),
            "{role}"
        );
    }

    #[test]
    fn a_refused_review_still_creates_the_role() {
        let seen = Seen {
            namespace: existing_namespace(),
            access: Some(Access::Unknown("403".into())),
            ..Seen::default()
        };
        let (ops, _) = plan_ops(&spec(), &seen);
        assert_eq!(ops[1].operation(&spec()).action, Action::Create);
    }

    #[test]
    fn our_objects_as_wanted_are_kept_with_their_resource_version() {
        let seen = Seen {
            namespace: existing_namespace(),
            role: Some(our_role()),
            binding: Some(our_binding()),
            ..Seen::default()
        };
        assert!(
            !needs_review(&spec(), &seen),
            "our Role would make the review say yes"
        );
        let (ops, blockers) = plan_ops(&spec(), &seen);
        assert!(blockers.is_empty());
        assert!(ops.iter().all(|op| !op.writes()), "{ops:?}");
        assert_eq!(
            ops[1].operation(&spec()).observed.as_deref(),
            Some("resourceVersion 7")
        );
    }

    #[test]
    fn rules_compare_by_meaning_and_drift_is_an_update() {
        let mut reordered = our_role();
        let rules = reordered.rules.as_mut().unwrap();
        rules.reverse();
        rules[0].verbs.reverse();
        assert!(same_rules(&reordered, &spec()));
        let mut widened = our_role();
        widened.rules.as_mut().unwrap()[0]
            .verbs
            .push("deletecollection".into());
        assert!(!same_rules(&widened, &spec()));
        let seen = Seen {
            namespace: existing_namespace(),
            role: Some(widened),
            binding: Some(our_binding()),
            ..Seen::default()
        };
        let (ops, _) = plan_ops(&spec(), &seen);
        assert_eq!(
            ops[1],
            Op::UpdateRole {
                guard: Guard {
                    resource_version: "7".into(),
                    uid: "u-1".into()
                },
                why: "rules drifted: set to the job's".into()
            }
        );
    }

    #[test]
    fn a_foreign_role_blocks_unless_adopted() {
        let seen = Seen {
            namespace: existing_namespace(),
            role: Some(foreign(spec().role(), |r| &mut r.metadata)),
            access: Some(Access::Missing(vec!["create pods".into()])),
            ..Seen::default()
        };
        let (ops, blockers) = plan_ops(&spec(), &seen);
        assert_eq!(blockers.len(), 1);
        assert!(ops.iter().all(|op| !matches!(op, Op::UpdateRole { .. })));
        let text = blockers[0].to_string();
        assert!(
            text.contains(
                "role streaming/flink-eks-flink-runner exists and was not made by flink-eks"
            ) && text.contains("app.kubernetes.io/managed-by=Helm")
                && text.contains("--adopt"),
            "{text}"
        );
        assert!(!blockers[0].is_auth());
        let adopting = RbacSpec {
            adopt: true,
            ..spec()
        };
        let (ops, blockers) = plan_ops(&adopting, &seen);
        assert!(blockers.is_empty());
        assert!(
            matches!(&ops[1], Op::UpdateRole { why, .. } if why == "adopt: label as flink-eks")
        );
    }

    #[test]
    fn a_foreign_role_is_no_obstacle_when_the_account_is_allowed() {
        let seen = Seen {
            namespace: existing_namespace(),
            role: Some(foreign(spec().role(), |r| &mut r.metadata)),
            access: Some(Access::Allowed),
            ..Seen::default()
        };
        let (ops, blockers) = plan_ops(&spec(), &seen);
        assert!(blockers.is_empty());
        assert!(ops.iter().all(|op| !op.writes()));
    }

    #[test]
    fn a_binding_of_another_role_blocks_since_role_ref_is_immutable() {
        let mut binding = our_binding();
        binding.role_ref.name = "other".into();
        let seen = Seen {
            namespace: existing_namespace(),
            role: Some(our_role()),
            binding: Some(binding),
            ..Seen::default()
        };
        let (_, blockers) = plan_ops(&spec(), &seen);
        assert!(
            matches!(&blockers[..], [Blocker::RoleRefDiffers { found, .. }] if found == "Role/other")
        );
    }

    #[test]
    fn roles_the_caller_may_not_read_block_only_when_written() {
        let forbidden = vec![(kind::ROLE, "roles is forbidden".to_owned())];
        let seen = Seen {
            namespace: existing_namespace(),
            access: Some(Access::Unknown("403".into())),
            forbidden: forbidden.clone(),
            ..Seen::default()
        };
        let (ops, blockers) = plan_ops(&spec(), &seen);
        assert!(matches!(&blockers[..], [b] if b.is_auth() && b.kind() == kind::ROLE));
        assert!(ops.iter().all(|op| !matches!(op, Op::CreateRole { .. })));
        let allowed = Seen {
            access: Some(Access::Allowed),
            ..seen
        };
        let (_, blockers) = plan_ops(&spec(), &allowed);
        assert!(blockers.is_empty(), "nothing to write, nothing blocked");
    }

    #[test]
    fn reviews_are_judged_and_the_missing_named() {
        let reviews = spec().review_attributes();
        let all: Vec<_> = reviews.iter().cloned().map(|r| (r, true)).collect();
        assert_eq!(judge(&all), Access::Allowed);
        let some: Vec<_> = reviews
            .iter()
            .cloned()
            .map(|r| {
                let allowed = r.verb.as_deref() != Some("create");
                (r, allowed)
            })
            .collect();
        let Access::Missing(missing) = judge(&some) else {
            panic!("not missing")
        };
        assert_eq!(
            missing,
            [
                "create pods",
                "create configmaps",
                "create apps/deployments",
                "create apps/deployments/finalizers"
            ]
        );
    }

    #[test]
    fn teardown_removes_only_ours_binding_first_and_keeps_the_namespace() {
        let mut ns = Namespace::default();
        ns.metadata.labels = Some(namespace_labels());
        let ops = teardown_ops(&spec(), Some(&ns), Some(&our_role()), Some(&our_binding()));
        assert!(matches!(
            ops[0],
            TeardownOp::Delete {
                kind: kind::ROLE_BINDING,
                ..
            }
        ));
        assert!(matches!(
            ops[1],
            TeardownOp::Delete {
                kind: kind::ROLE,
                ..
            }
        ));
        assert!(matches!(
            &ops[2],
            TeardownOp::Leave {
                kind: kind::NAMESPACE,
                ..
            }
        ));
        let foreign_role = foreign(spec().role(), |r| &mut r.metadata);
        let ops = teardown_ops(&spec(), None, Some(&foreign_role), None);
        assert_eq!(ops.len(), 2);
        assert!(
            ops.iter().all(|op| matches!(op, TeardownOp::Leave { .. })),
            "{ops:?}"
        );
    }
}

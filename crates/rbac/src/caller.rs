//! What the deploying identity itself may do. Before a deploy writes to the cluster, the API
//! server is asked, with one SelfSubjectAccessReview per write (all at once), whether the
//! kubeconfig's user may make each: a user bound to the built-in `edit` ClusterRole in its
//! namespace, say, may create a service account but not a Role, and nobody but a cluster
//! admin may create FlinkDeployments until a role grants them (the operator's chart adds them
//! to no built-in role). Asked first, a refusal blocks the plan before anything is written,
//! instead of failing halfway through.
//!
//! A Role or RoleBinding meets one more rule of the API server's (its escalation check): a
//! user may create or change a Role only while holding every permission the Role grants, or
//! with the verb `escalate` on it; a RoleBinding only while holding every permission of the
//! Role it binds, or with `bind` on it. The namespace `admin` ClusterRole, for one, does not
//! hold `apps` `deployments/finalizers`, which the job's Role grants. So with each write of
//! the job's Role or RoleBinding, `escalate` or `bind` is asked too, and when that is refused,
//! whether the user holds each of the Role's rules.
//!
//! The reviews are data ([`CallerReview`]); which writes a plan makes, and what the answers
//! mean for them ([`CallerReview::refusals`]), are pure.

use std::collections::BTreeMap;
use std::fmt;

use futures::future::join_all;
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use kube::api::{Api, PostParams};

use crate::client::{Rbac, Reading};
use crate::decide::{Access, describe_attributes};
use crate::error::{Result, kube_error};
use crate::plan::{Op, Plan};
use crate::spec::RbacSpec;

/// The API group of Roles and RoleBindings.
const RBAC_GROUP: &str = "rbac.authorization.k8s.io";

/// One write a plan sends to the cluster, as the API server authorizes it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Write {
    /// `create`, `patch` (also server-side apply), `update`, `escalate`, `bind`.
    pub verb: &'static str,
    /// The API group, `""` for core.
    pub group: &'static str,
    /// The plural resource.
    pub resource: &'static str,
    /// The namespace; `None` at the cluster's scope.
    pub namespace: Option<String>,
    /// The object written to, when the request names one (not for a POST).
    pub name: Option<String>,
}

impl Write {
    /// `verb` on `resource` of `group`, at the cluster's scope and naming no object.
    pub fn new(verb: &'static str, group: &'static str, resource: &'static str) -> Write {
        Write {
            verb,
            group,
            resource,
            namespace: None,
            name: None,
        }
    }

    /// The same write in `namespace`.
    #[must_use]
    pub fn in_namespace(mut self, namespace: impl Into<String>) -> Write {
        self.namespace = Some(namespace.into());
        self
    }

    /// The same write to the object `name`.
    #[must_use]
    pub fn named(mut self, name: impl Into<String>) -> Write {
        self.name = Some(name.into());
        self
    }

    /// A server-side apply that may create the object: the API server authorizes the `patch`
    /// of the object and, when it does not exist yet, its `create` too.
    pub fn apply_creating(
        group: &'static str,
        resource: &'static str,
        namespace: &str,
        name: &str,
    ) -> [Write; 2] {
        [
            Write::new("patch", group, resource)
                .in_namespace(namespace)
                .named(name),
            Write::new("create", group, resource).in_namespace(namespace),
        ]
    }

    /// What to ask a cluster admin for when the API server refuses this write (or read).
    pub fn fix(&self) -> String {
        fix_of(self)
    }

    fn attributes(&self) -> ResourceAttributes {
        ResourceAttributes {
            namespace: self.namespace.clone(),
            verb: Some(self.verb.to_owned()),
            group: Some(self.group.to_owned()),
            resource: Some(self.resource.to_owned()),
            name: self.name.clone(),
            ..ResourceAttributes::default()
        }
    }

    /// What the API server's escalation check adds to this write: `escalate` on the Role
    /// for a write of a Role, `bind` on the Role a RoleBinding binds (`role`).
    fn escalation(&self, role: &str) -> Option<Write> {
        let verb = match (self.group, self.resource) {
            (RBAC_GROUP, "roles") => "escalate",
            (RBAC_GROUP, "rolebindings") => "bind",
            _ => return None,
        };
        let write = Write::new(verb, RBAC_GROUP, "roles").named(role);
        Some(match &self.namespace {
            Some(namespace) => write.in_namespace(namespace.clone()),
            None => write,
        })
    }
}

impl fmt::Display for Write {
    /// `create roles in namespace streaming`, `patch flink.apache.org/flinkdeployments job in
    /// namespace streaming`, `create namespaces`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ", self.verb)?;
        if !self.group.is_empty() {
            write!(f, "{}/", self.group)?;
        }
        write!(f, "{}", self.resource)?;
        if let Some(name) = &self.name {
            write!(f, " {name}")?;
        }
        if let Some(namespace) = &self.namespace {
            write!(f, " in namespace {namespace}")?;
        }
        Ok(())
    }
}

/// A planned write the API server would refuse the deploying identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The write.
    pub write: Write,
    /// Why, in one line.
    pub reason: String,
    /// What to do about it.
    pub fix: String,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}; fix: {}", self.reason, self.fix)
    }
}

/// What the API server answered about the deploying identity's writes.
#[derive(Debug, Clone, PartialEq)]
pub struct CallerReview {
    /// Each write asked about (with the escalation verbs), and whether it is allowed.
    answers: BTreeMap<Write, bool>,
    /// For a Role or RoleBinding write whose `escalate` or `bind` was refused: whether the
    /// identity holds each of the job's rules, as [`RbacSpec::review_attributes`] lists them.
    held: Option<Vec<(ResourceAttributes, bool)>>,
    /// The job's Role, whose rules the escalation check is about.
    spec: RbacSpec,
    /// Why nothing could be asked (the identity may not create SelfSubjectAccessReviews).
    unknown: Option<String>,
}

impl CallerReview {
    /// The answers, as the reviews gave them: `answers` for the writes and their escalation
    /// verbs, `held` for the job's rules when asked. Pure.
    pub fn from_answers(
        spec: &RbacSpec,
        answers: impl IntoIterator<Item = (Write, bool)>,
        held: Option<Vec<(ResourceAttributes, bool)>>,
    ) -> CallerReview {
        CallerReview {
            answers: answers.into_iter().collect(),
            held,
            spec: spec.clone(),
            unknown: None,
        }
    }

    /// Why the identity's permissions could not be asked, if they could not: then no write
    /// is refused here, and the API server still refuses what it refuses at write time.
    pub fn unknown(&self) -> Option<&str> {
        self.unknown.as_deref()
    }

    /// The writes of `planned` the API server would refuse, each with the fix: a write not
    /// allowed, or a Role or RoleBinding write whose escalation check fails. A write that
    /// was not asked about is not refused. Pure.
    pub fn refusals(&self, planned: &[Write]) -> Vec<Refusal> {
        let role = self.spec.object_name();
        let mut refusals = Vec::new();
        for write in planned {
            if self.answers.get(write) == Some(&false) {
                refusals.push(Refusal {
                    write: write.clone(),
                    reason: format!("the deploying identity may not {write}"),
                    fix: fix_of(write),
                });
                continue;
            }
            let Some(escalation) = write.escalation(&role) else {
                continue;
            };
            if self.answers.get(&escalation) != Some(&false) {
                continue;
            }
            let Some(held) = &self.held else {
                continue;
            };
            let missing = not_held(held);
            if missing.is_empty() {
                continue;
            }
            refusals.push(Refusal {
                write: write.clone(),
                reason: format!(
                    "the deploying identity may {write} only while holding every permission the \
                     job's Role {} grants (the API server refuses to let anyone grant what they \
                     do not hold), and it does not hold: {}",
                    self.spec.qualified_name(),
                    missing
                ),
                fix: format!(
                    "ask a cluster admin to grant you those, or `{}` on roles in namespace {}, \
                     or to run this deploy once (the Role and RoleBinding are then in place, \
                     and later deploys leave them be)",
                    escalation.verb, self.spec.namespace
                ),
            });
        }
        refusals
    }
}

/// The rules not held, a resource at a time: `apps/deployments/finalizers (get, list, …)`;
/// empty when every one is held.
fn not_held(held: &[(ResourceAttributes, bool)]) -> String {
    let mut by_resource: Vec<(String, Vec<String>)> = Vec::new();
    for (attributes, _) in held.iter().filter(|(_, allowed)| !allowed) {
        let described = describe_attributes(attributes);
        let (verb, resource) = described.split_once(' ').unwrap_or(("", &described));
        match by_resource.iter_mut().find(|(r, _)| r == resource) {
            Some((_, verbs)) => verbs.push(verb.to_owned()),
            None => by_resource.push((resource.to_owned(), vec![verb.to_owned()])),
        }
    }
    by_resource
        .iter()
        .map(|(resource, verbs)| format!("{resource} ({})", verbs.join(", ")))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What to do about a write refused outright.
fn fix_of(write: &Write) -> String {
    let namespace = write.namespace.as_deref().unwrap_or_default();
    match (write.group, write.resource) {
        ("", "namespaces") => format!(
            "ask a cluster admin to create it (kubectl create namespace {}), or set job.namespace \
             to one you may deploy to",
            write.name.as_deref().unwrap_or(namespace)
        ),
        (RBAC_GROUP, _) => format!(
            "ask a cluster admin to bind you the `admin` ClusterRole in namespace {namespace} \
             (kubectl -n {namespace} create rolebinding ... --clusterrole=admin --user=...), \
             or to run this deploy once (later deploys leave the Role and RoleBinding be)"
        ),
        ("flink.apache.org", _) => format!(
            "ask a cluster admin for get, create and patch on flinkdeployments.flink.apache.org \
             in namespace {namespace}: the operator's chart adds them to no built-in role, so a \
             Role with them must be bound to you"
        ),
        _ => format!(
            "ask a cluster admin for {} on {} in namespace {namespace} (the `edit` ClusterRole \
             has it)",
            write.verb, write.resource
        ),
    }
}

impl Plan {
    /// The writes this plan sends to the cluster, as the API server authorizes them: `create`
    /// for a POST, `patch` for a server-side apply of an existing object. Pure.
    pub fn cluster_writes(&self) -> Vec<Write> {
        let namespace = &self.spec.namespace;
        let name = self.spec.object_name();
        self.ops
            .iter()
            .filter_map(|op| match op {
                Op::Keep { .. } => None,
                Op::CreateNamespace { name } => {
                    Some(Write::new("create", "", "namespaces").named(name.clone()))
                }
                Op::CreateRole { .. } => {
                    Some(Write::new("create", RBAC_GROUP, "roles").in_namespace(namespace))
                }
                Op::UpdateRole { .. } => Some(
                    Write::new("patch", RBAC_GROUP, "roles")
                        .in_namespace(namespace)
                        .named(name.clone()),
                ),
                Op::CreateBinding { .. } => {
                    Some(Write::new("create", RBAC_GROUP, "rolebindings").in_namespace(namespace))
                }
                Op::UpdateBinding { .. } => Some(
                    Write::new("patch", RBAC_GROUP, "rolebindings")
                        .in_namespace(namespace)
                        .named(name.clone()),
                ),
            })
            .collect()
    }
}

impl Reading {
    /// The writes the plan may make, whatever the job's service account turns out to be
    /// allowed: those of the plan as if the account held no grant. They are asked about
    /// beside the account's own reviews, before the plan is known; the plan's own
    /// [`Plan::cluster_writes`] are a subset. `namespace_exists` is what another read showed,
    /// when this reading does not know (unknown: taken as existing). Pure.
    pub fn possible_cluster_writes(&self, namespace_exists: Option<bool>) -> Vec<Write> {
        let mut reading = self.clone();
        if reading.needs_namespace() {
            reading = reading.with_namespace(namespace_exists.unwrap_or(true));
        }
        reading
            .plan(Some(Access::Missing(Vec::new())))
            .cluster_writes()
    }
}

impl Rbac {
    /// Asks the API server, with SelfSubjectAccessReviews sent all at once, whether the
    /// deploying identity may make each of `writes`; with a write of the job's Role or
    /// RoleBinding (`spec`), also `escalate` or `bind` on it, and, when that is refused, in
    /// a second round, whether the identity holds each of the Role's rules. An identity not
    /// allowed to create SelfSubjectAccessReviews gets a review that refuses nothing
    /// ([`CallerReview::unknown`] says why).
    pub async fn review_caller(&self, writes: &[Write], spec: &RbacSpec) -> Result<CallerReview> {
        spec.validate()?;
        let role = spec.object_name();
        let mut asked: Vec<Write> = writes.to_vec();
        asked.extend(writes.iter().filter_map(|w| w.escalation(&role)));
        asked.sort();
        asked.dedup();
        let answers = match self
            .self_reviews(asked.iter().map(Write::attributes))
            .await?
        {
            Ok(allowed) => asked.into_iter().zip(allowed).collect::<Vec<_>>(),
            Err(why) => return Ok(unknown(spec, why)),
        };
        let escalation_refused = answers
            .iter()
            .any(|(w, allowed)| !allowed && matches!(w.verb, "escalate" | "bind"));
        let held = match escalation_refused {
            false => None,
            true => {
                let attributes = spec.review_attributes();
                match self.self_reviews(attributes.iter().cloned()).await? {
                    Ok(allowed) => Some(attributes.into_iter().zip(allowed).collect()),
                    Err(why) => return Ok(unknown(spec, why)),
                }
            }
        };
        Ok(CallerReview::from_answers(spec, answers, held))
    }

    /// One SelfSubjectAccessReview per attributes, all at once: whether each is allowed, in
    /// order; `Err(why)` when the identity may not create them.
    async fn self_reviews(
        &self,
        attributes: impl Iterator<Item = ResourceAttributes>,
    ) -> Result<std::result::Result<Vec<bool>, String>> {
        let api: Api<SelfSubjectAccessReview> = Api::all(self.client.clone());
        let reviews = attributes.map(|attributes| {
            let api = api.clone();
            let review = SelfSubjectAccessReview {
                spec: SelfSubjectAccessReviewSpec {
                    resource_attributes: Some(attributes),
                    ..SelfSubjectAccessReviewSpec::default()
                },
                ..SelfSubjectAccessReview::default()
            };
            async move { api.create(&PostParams::default(), &review).await }
        });
        let mut allowed = Vec::new();
        for answer in join_all(reviews).await {
            match answer {
                Ok(review) => allowed.push(review.status.is_some_and(|s| s.allowed)),
                Err(kube::Error::Api(status)) if status.code == 403 => {
                    return Ok(Err(
                        "the deploying identity may not create SelfSubjectAccessReviews".to_owned(),
                    ));
                }
                Err(e) => {
                    return Err(kube_error(
                        "create selfsubjectaccessreview",
                        "the deploying identity",
                        e,
                    ));
                }
            }
        }
        Ok(Ok(allowed))
    }
}

fn unknown(spec: &RbacSpec, why: String) -> CallerReview {
    CallerReview {
        unknown: Some(why),
        ..CallerReview::from_answers(spec, [], None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> RbacSpec {
        RbacSpec::new("streaming", "flink-runner")
    }

    fn role_create() -> Write {
        Write::new("create", RBAC_GROUP, "roles").in_namespace("streaming")
    }

    fn binding_create() -> Write {
        Write::new("create", RBAC_GROUP, "rolebindings").in_namespace("streaming")
    }

    fn escalate() -> Write {
        role_create().escalation(&spec().object_name()).unwrap()
    }

    fn bind() -> Write {
        binding_create().escalation(&spec().object_name()).unwrap()
    }

    fn all_held(except: &[&str]) -> Vec<(ResourceAttributes, bool)> {
        spec()
            .review_attributes()
            .into_iter()
            .map(|a| {
                let held = !except.contains(&describe_attributes(&a).as_str());
                (a, held)
            })
            .collect()
    }

    #[test]
    fn writes_read_as_kubectl_auth_can_i_would_ask_them() {
        assert_eq!(
            role_create().to_string(),
            "create rbac.authorization.k8s.io/roles in namespace streaming"
        );
        let [patch, create] =
            Write::apply_creating("flink.apache.org", "flinkdeployments", "streaming", "job");
        assert_eq!(
            patch.to_string(),
            "patch flink.apache.org/flinkdeployments job in namespace streaming"
        );
        assert_eq!(
            create.to_string(),
            "create flink.apache.org/flinkdeployments in namespace streaming"
        );
        assert_eq!(
            Write::new("create", "", "namespaces")
                .named("streaming")
                .to_string(),
            "create namespaces streaming"
        );
        assert_eq!(
            escalate().to_string(),
            "escalate rbac.authorization.k8s.io/roles flink-eks-flink-runner in namespace streaming"
        );
        assert_eq!(bind().verb, "bind");
        assert_eq!(
            Write::new("create", "", "serviceaccounts")
                .in_namespace("streaming")
                .escalation("x"),
            None
        );
    }

    #[test]
    fn a_refused_write_is_named_with_its_fix_and_an_allowed_or_unasked_one_is_not() {
        let sa = Write::new("create", "", "serviceaccounts").in_namespace("streaming");
        let [fd_patch, fd_create] =
            Write::apply_creating("flink.apache.org", "flinkdeployments", "streaming", "job");
        let review = CallerReview::from_answers(
            &spec(),
            [
                (sa.clone(), true),
                (fd_patch.clone(), false),
                (fd_create.clone(), false),
            ],
            None,
        );
        let unasked = Write::new("create", "", "configmaps").in_namespace("streaming");
        let refusals = review.refusals(&[sa, fd_patch, fd_create, unasked]);
        assert_eq!(refusals.len(), 2, "{refusals:?}");
        assert_eq!(
            refusals[0].reason,
            "the deploying identity may not patch flink.apache.org/flinkdeployments job in \
             namespace streaming"
        );
        assert!(
            refusals[0].fix.contains("no built-in role"),
            "{}",
            refusals[0].fix
        );
    }

    #[test]
    fn a_role_may_be_written_with_escalate_or_by_one_who_holds_every_rule() {
        let planned = [role_create(), binding_create()];
        // `escalate` and `bind` allowed (a cluster admin): nothing more is asked.
        let admin = CallerReview::from_answers(
            &spec(),
            [
                (role_create(), true),
                (binding_create(), true),
                (escalate(), true),
                (bind(), true),
            ],
            None,
        );
        assert_eq!(admin.refusals(&planned), []);

        // Refused, but every rule is held: allowed.
        let answers = [
            (role_create(), true),
            (binding_create(), true),
            (escalate(), false),
            (bind(), false),
        ];
        let holder = CallerReview::from_answers(&spec(), answers.clone(), Some(all_held(&[])));
        assert_eq!(holder.refusals(&planned), []);

        // A namespace admin: no escalate, and no deployments/finalizers.
        let missing = [
            "create apps/deployments/finalizers",
            "update apps/deployments/finalizers",
        ];
        let namespace_admin =
            CallerReview::from_answers(&spec(), answers, Some(all_held(&missing)));
        let refusals = namespace_admin.refusals(&planned);
        assert_eq!(refusals.len(), 2, "{refusals:?}");
        assert!(
            refusals[0]
                .reason
                .ends_with("does not hold: apps/deployments/finalizers (create, update)"),
            "{}",
            refusals[0].reason
        );
        assert!(
            refusals[0].fix.contains("`escalate`"),
            "{}",
            refusals[0].fix
        );
        assert!(refusals[1].fix.contains("`bind`"), "{}", refusals[1].fix);
    }

    #[test]
    fn the_plans_writes_are_the_verbs_its_requests_are_authorized_as() {
        use crate::plan::{Guard, Op};
        let guard = Guard {
            resource_version: "7".into(),
            uid: "u".into(),
        };
        let plan = Plan {
            spec: spec(),
            ops: vec![
                Op::CreateNamespace {
                    name: "streaming".into(),
                },
                Op::UpdateRole {
                    guard: guard.clone(),
                    why: "rules differ".into(),
                },
                Op::CreateBinding { why: "new".into() },
            ],
            blockers: Vec::new(),
            warnings: Vec::new(),
        };
        assert_eq!(
            plan.cluster_writes()
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
            [
                "create namespaces streaming",
                "patch rbac.authorization.k8s.io/roles flink-eks-flink-runner in namespace streaming",
                "create rbac.authorization.k8s.io/rolebindings in namespace streaming",
            ]
        );
    }
}

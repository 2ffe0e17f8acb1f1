//! The calls to the API server: read once, write exactly the plan.

use futures::future::{join_all, try_join, try_join3};
use k8s_openapi::api::authorization::v1::{LocalSubjectAccessReview, SubjectAccessReviewSpec};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use serde::Serialize;
use serde::de::DeserializeOwned;

use flink_eks_manifest::FIELD_MANAGER;
use flink_eks_plan::{Operation, Progress, Stale};

use crate::decide::{self, Access, Seen};
use crate::error::{Error, Result, kube_error};
use crate::plan::{Guard, Op, Plan, TeardownOp, TeardownPlan, kind};
use crate::spec::RbacSpec;

/// What [`Rbac::apply`] and [`Rbac::apply_teardown`] report while they work.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A planned write was made.
    Done(Operation),
    /// Something the user should know, though the work goes on.
    Warning(String),
}

impl std::fmt::Display for Event {
    /// The operation (`create role streaming/flink-eks-flink-runner (…)`), or the warning.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Event::Done(operation) => write!(f, "{operation}"),
            Event::Warning(text) => write!(f, "warning: {text}"),
        }
    }
}

/// The job's RBAC in one cluster.
#[derive(Clone)]
pub struct Rbac {
    pub(crate) client: kube::Client,
}

impl std::fmt::Debug for Rbac {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rbac").finish_non_exhaustive()
    }
}

/// What [`Rbac::read`] found: the Role and the RoleBinding, and whether the namespace exists
/// once that is known, before any SubjectAccessReview.
#[derive(Debug, Clone)]
pub struct Reading {
    spec: RbacSpec,
    seen: Seen,
    /// Whether `seen.namespace` says if the namespace exists: shown by a found Role or
    /// RoleBinding, read ([`Rbac::read_namespace`]) or told ([`Reading::with_namespace`]).
    namespace_known: bool,
}

impl Reading {
    /// What the Role's and RoleBinding's GETs found: the namespace is known to exist when
    /// either was found, unknown otherwise. Pure.
    fn of_objects(spec: RbacSpec, seen: Seen) -> Reading {
        let reading = Reading {
            spec,
            seen,
            namespace_known: false,
        };
        match decide::namespace_shown(&reading.seen) {
            true => reading.with_namespace(true),
            false => reading,
        }
    }

    /// Whether the namespace's existence is still unknown: neither the Role nor the
    /// RoleBinding was found (a namespaced object proves its namespace), and nothing else
    /// told. [`Reading::needs_review`] and [`Reading::plan`] need it known.
    pub fn needs_namespace(&self) -> bool {
        !self.namespace_known
    }

    /// The reading, told whether the namespace exists by another read (a ServiceAccount or
    /// FlinkDeployment found in it, or another GET of it). What the reading already knows
    /// stays. Pure.
    #[must_use]
    pub fn with_namespace(mut self, exists: bool) -> Reading {
        if !self.namespace_known {
            self.seen.namespace = exists.then(Namespace::default);
            self.namespace_known = true;
        }
        self
    }

    /// Whether the plan depends on what the account may already do: neither object is
    /// flink-eks's and the namespace exists (a new namespace holds no grant; our own objects
    /// are compared instead).
    pub fn needs_review(&self) -> bool {
        debug_assert!(self.namespace_known, "the namespace is read or told first");
        decide::needs_review(&self.spec, &self.seen)
    }

    /// The plan, given what the account may do: [`Rbac::review`]'s answer, or
    /// [`Access::InUse`] when the caller knows the job already runs as the account, or `None`
    /// when no review was needed. Pure. The namespace must be known
    /// ([`Reading::needs_namespace`] false): unknown, it is planned as created, a create the
    /// API server refuses (409, [`Error::Stale`]) when the namespace exists.
    pub fn plan(mut self, access: Option<Access>) -> Plan {
        debug_assert!(self.namespace_known, "the namespace is read or told first");
        let mut warnings = Vec::new();
        if let Some(Access::Unknown(reason)) = &access {
            warnings.push(format!(
                "cannot ask whether {} may already run Flink's TaskManagers ({reason}): \
                 the Role {} is planned to be sure",
                self.spec.user(),
                self.spec.qualified_name()
            ));
        }
        self.seen.access = access;
        let (ops, blockers) = decide::plan_ops(&self.spec, &self.seen);
        Plan {
            spec: self.spec,
            ops,
            blockers,
            warnings,
        }
    }
}

fn status_code(err: &kube::Error) -> Option<u16> {
    match err {
        kube::Error::Api(status) => Some(status.code),
        _ => None,
    }
}

impl Rbac {
    /// Works through `client`.
    pub fn new(client: kube::Client) -> Rbac {
        Rbac { client }
    }

    /// Reads the Role and the RoleBinding (at once), the namespace only when neither was
    /// found, and, only when neither object is flink-eks's and the namespace exists, asks the
    /// API server with SubjectAccessReviews whether the account may already do what the rules
    /// grant. Returns what [`Rbac::apply`] will do. Writes nothing.
    ///
    /// [`Rbac::read`], [`Rbac::read_namespace`] and [`Reading::plan`] are the same in steps,
    /// for a caller that knows more: whether the namespace exists (it found other objects in
    /// it), or that the job already runs as the account (no review needed).
    pub async fn plan(&self, spec: &RbacSpec) -> Result<Plan> {
        let reading = self.read(spec).await?;
        let reading = self.read_namespace(reading).await?;
        let access = match reading.needs_review() {
            true => Some(self.review(spec).await?),
            false => None,
        };
        Ok(reading.plan(access))
    }

    /// Reads the Role and the RoleBinding, at once; a found one shows the namespace exists.
    /// Whether it does is otherwise left unknown ([`Reading::needs_namespace`]): for
    /// [`Rbac::read_namespace`], or for a caller that knows from its own reads
    /// ([`Reading::with_namespace`]). Writes nothing.
    pub async fn read(&self, spec: &RbacSpec) -> Result<Reading> {
        spec.validate()?;
        let name = spec.object_name();
        let qualified = spec.qualified_name();
        let roles: Api<Role> = Api::namespaced(self.client.clone(), &spec.namespace);
        let bindings: Api<RoleBinding> = Api::namespaced(self.client.clone(), &spec.namespace);
        let mut forbidden = Vec::new();
        let (role, binding) = try_join(
            read_or_forbidden(&roles, &name, "get role", &qualified),
            read_or_forbidden(&bindings, &name, "get rolebinding", &qualified),
        )
        .await?;
        let (role, role_forbidden) = role;
        let (binding, binding_forbidden) = binding;
        if let Some(message) = role_forbidden {
            forbidden.push((kind::ROLE, message));
        }
        if let Some(message) = binding_forbidden {
            forbidden.push((kind::ROLE_BINDING, message));
        }
        let seen = Seen {
            namespace: None,
            role,
            binding,
            access: None,
            forbidden,
        };
        Ok(Reading::of_objects(spec.clone(), seen))
    }

    /// GETs the namespace when the reading does not know yet whether it exists
    /// ([`Reading::needs_namespace`]); otherwise sends nothing. A namespace the caller may not
    /// read (403) is taken as existing, since this caller could not create it either.
    pub async fn read_namespace(&self, mut reading: Reading) -> Result<Reading> {
        if !reading.needs_namespace() {
            return Ok(reading);
        }
        let namespace = &reading.spec.namespace;
        let namespaces: Api<Namespace> = Api::all(self.client.clone());
        reading.seen.namespace = match namespaces.get_opt(namespace).await {
            Ok(found) => found,
            Err(e) if status_code(&e) == Some(403) => Some(Namespace::default()),
            Err(e) => return Err(kube_error("get namespace", namespace, e)),
        };
        reading.namespace_known = true;
        Ok(reading)
    }

    /// Asks the API server, with one LocalSubjectAccessReview per resource and verb of the
    /// job's rules (all at once, in the job's namespace), whether the job's service account may
    /// do each. A namespaced review, not a cluster-wide SubjectAccessReview: the namespace's
    /// `admin` ClusterRole may create those, so a namespace admin gets the answer too. A
    /// caller not allowed to create them gets [`Access::Unknown`].
    ///
    /// Every verb is asked because a partial grant (pods readable but not creatable) is the
    /// failure this guards against, and no subset of verbs implies the others.
    pub async fn review(&self, spec: &RbacSpec) -> Result<Access> {
        spec.validate()?;
        let api: Api<LocalSubjectAccessReview> =
            Api::namespaced(self.client.clone(), &spec.namespace);
        let reviews = spec.review_attributes().into_iter().map(|attributes| {
            let api = api.clone();
            let review = LocalSubjectAccessReview {
                metadata: ObjectMeta {
                    namespace: Some(spec.namespace.clone()),
                    ..ObjectMeta::default()
                },
                spec: SubjectAccessReviewSpec {
                    user: Some(spec.user()),
                    groups: Some(spec.groups()),
                    resource_attributes: Some(attributes.clone()),
                    ..SubjectAccessReviewSpec::default()
                },
                status: None,
            };
            async move {
                let answer = api.create(&PostParams::default(), &review).await;
                (attributes, answer)
            }
        });
        let mut answers = Vec::new();
        for (attributes, answer) in join_all(reviews).await {
            match answer {
                Ok(review) => {
                    let allowed = review.status.is_some_and(|s| s.allowed);
                    answers.push((attributes, allowed));
                }
                Err(e) if status_code(&e) == Some(403) => {
                    return Ok(Access::Unknown(format!(
                        "the caller may not create LocalSubjectAccessReviews in namespace {}",
                        spec.namespace
                    )));
                }
                Err(e) => {
                    return Err(kube_error(
                        "create localsubjectaccessreview",
                        &spec.user(),
                        e,
                    ));
                }
            }
        }
        Ok(decide::judge(&answers))
    }

    /// Performs exactly the plan's writes, in order (namespace, Role, RoleBinding), each
    /// guarded: a create is refused when the object exists (409 AlreadyExists), an update
    /// carries the planned `resourceVersion` and `uid` (409 Conflict). Either refusal is
    /// [`Error::Stale`]. A plan of "no change" makes no call; a blocked plan is refused
    /// before any call. Returns the operations performed.
    pub async fn apply(
        &self,
        plan: &Plan,
        progress: &dyn Progress<Event>,
    ) -> Result<Vec<Operation>> {
        if let Some(blocker) = plan.blockers.first() {
            return Err(Error::Blocked(blocker.clone()));
        }
        for warning in &plan.warnings {
            progress.event(&Event::Warning(warning.clone()));
        }
        let spec = &plan.spec;
        let mut done = Vec::new();
        for op in plan.ops.iter().filter(|op| op.writes()) {
            let operation = op.operation(spec);
            self.perform(spec, op, &operation).await?;
            progress.event(&Event::Done(operation.clone()));
            done.push(operation);
        }
        Ok(done)
    }

    async fn perform(&self, spec: &RbacSpec, op: &Op, operation: &Operation) -> Result<()> {
        let roles: Api<Role> = Api::namespaced(self.client.clone(), &spec.namespace);
        let bindings: Api<RoleBinding> = Api::namespaced(self.client.clone(), &spec.namespace);
        match op {
            Op::Keep { .. } => Ok(()),
            Op::CreateNamespace { name } => {
                let api: Api<Namespace> = Api::all(self.client.clone());
                let namespace = Namespace {
                    metadata: ObjectMeta {
                        name: Some(name.clone()),
                        labels: Some(decide::namespace_labels()),
                        ..ObjectMeta::default()
                    },
                    ..Namespace::default()
                };
                create(&api, &namespace, operation, spec, ("create", "namespaces")).await
            }
            Op::CreateRole { .. } => {
                create(&roles, &spec.role(), operation, spec, ("create", "roles")).await
            }
            Op::UpdateRole { guard, .. } => {
                let mut role = serde_json::to_value(spec.role()).unwrap_or_default();
                role["apiVersion"] = "rbac.authorization.k8s.io/v1".into();
                role["kind"] = "Role".into();
                apply_guarded(&roles, spec, role, guard, operation, "roles").await
            }
            Op::CreateBinding { .. } => {
                create(
                    &bindings,
                    &spec.role_binding(),
                    operation,
                    spec,
                    ("create", "rolebindings"),
                )
                .await
            }
            Op::UpdateBinding { guard, .. } => {
                let mut binding = serde_json::to_value(spec.role_binding()).unwrap_or_default();
                binding["apiVersion"] = "rbac.authorization.k8s.io/v1".into();
                binding["kind"] = "RoleBinding".into();
                apply_guarded(&bindings, spec, binding, guard, operation, "rolebindings").await
            }
        }
    }

    /// Reads the namespace, the Role and the RoleBinding, and plans to delete the RoleBinding
    /// and Role that flink-eks made for this service account; anything else stays, with
    /// the reason. The namespace always stays. Writes nothing.
    pub async fn teardown_plan(&self, spec: &RbacSpec) -> Result<TeardownPlan> {
        spec.validate()?;
        let name = spec.object_name();
        let qualified = spec.qualified_name();
        let namespaces: Api<Namespace> = Api::all(self.client.clone());
        let roles: Api<Role> = Api::namespaced(self.client.clone(), &spec.namespace);
        let bindings: Api<RoleBinding> = Api::namespaced(self.client.clone(), &spec.namespace);
        let (namespace, role, binding) = try_join3(
            async {
                match namespaces.get_opt(&spec.namespace).await {
                    Ok(found) => Ok(found),
                    Err(e) if status_code(&e) == Some(403) => Ok(None),
                    Err(e) => Err(kube_error("get namespace", &spec.namespace, e)),
                }
            },
            async {
                roles
                    .get_opt(&name)
                    .await
                    .map_err(|e| read_error(e, "get", "roles", spec, &qualified))
            },
            async {
                bindings
                    .get_opt(&name)
                    .await
                    .map_err(|e| read_error(e, "get", "rolebindings", spec, &qualified))
            },
        )
        .await?;
        Ok(TeardownPlan {
            spec: spec.clone(),
            ops: decide::teardown_ops(spec, namespace.as_ref(), role.as_ref(), binding.as_ref()),
        })
    }

    /// Performs exactly the teardown plan's deletions, each with the planned `uid` and
    /// `resourceVersion` as preconditions (409: [`Error::Stale`]; already gone: nothing to
    /// do). Returns the plan's operations.
    pub async fn apply_teardown(
        &self,
        plan: &TeardownPlan,
        progress: &dyn Progress<Event>,
    ) -> Result<Vec<Operation>> {
        let spec = &plan.spec;
        let name = spec.object_name();
        let operations = plan.operations();
        for (op, operation) in plan.ops.iter().zip(&operations) {
            let TeardownOp::Delete { kind: what, guard } = op else {
                continue;
            };
            let params = DeleteParams {
                preconditions: Some(Preconditions {
                    resource_version: Some(guard.resource_version.clone()),
                    uid: Some(guard.uid.clone()),
                }),
                ..DeleteParams::default()
            };
            let result = if *what == kind::ROLE {
                let api: Api<Role> = Api::namespaced(self.client.clone(), &spec.namespace);
                api.delete(&name, &params).await.map(|_| ())
            } else {
                let api: Api<RoleBinding> = Api::namespaced(self.client.clone(), &spec.namespace);
                api.delete(&name, &params).await.map(|_| ())
            };
            let plural = if *what == kind::ROLE {
                "roles"
            } else {
                "rolebindings"
            };
            match result {
                Ok(()) => {}
                Err(e) if status_code(&e) == Some(404) => {}
                Err(e) if status_code(&e) == Some(409) => {
                    return Err(Stale::of(operation, "another resourceVersion or uid").into());
                }
                Err(e) => return Err(write_error(e, "delete", plural, spec, &operation.name)),
            }
            progress.event(&Event::Done(operation.clone()));
        }
        Ok(operations)
    }
}

async fn read_or_forbidden<K>(
    api: &Api<K>,
    name: &str,
    what: &'static str,
    resource: &str,
) -> Result<(Option<K>, Option<String>)>
where
    K: kube::Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    match api.get_opt(name).await {
        Ok(found) => Ok((found, None)),
        Err(kube::Error::Api(status)) if status.code == 403 => Ok((None, Some(status.message))),
        Err(e) => Err(kube_error(what, resource, e)),
    }
}

fn read_error(
    e: kube::Error,
    verb: &'static str,
    plural: &'static str,
    spec: &RbacSpec,
    resource: &str,
) -> Error {
    write_error(e, verb, plural, spec, resource)
}

fn write_error(
    e: kube::Error,
    verb: &'static str,
    plural: &'static str,
    spec: &RbacSpec,
    resource: &str,
) -> Error {
    match e {
        kube::Error::Api(status) if status.code == 403 => Error::Forbidden {
            operation: format!("{verb} {plural}"),
            resource: resource.to_owned(),
            message: status.message,
            verb,
            what: plural,
            namespace: spec.namespace.clone(),
        },
        e => kube_error(format!("{verb} {plural}"), resource, e),
    }
}

async fn create<K>(
    api: &Api<K>,
    object: &K,
    operation: &Operation,
    spec: &RbacSpec,
    (verb, plural): (&'static str, &'static str),
) -> Result<()>
where
    K: kube::Resource + Clone + DeserializeOwned + Serialize + std::fmt::Debug,
{
    let params = PostParams {
        field_manager: Some(FIELD_MANAGER.to_owned()),
        ..PostParams::default()
    };
    match api.create(&params, object).await {
        Ok(_) => Ok(()),
        Err(e) if status_code(&e) == Some(409) => Err(Stale::of(operation, "it exists").into()),
        Err(e) => Err(write_error(e, verb, plural, spec, &operation.name)),
    }
}

/// Server-side apply as [`FIELD_MANAGER`], forced (the fields it sets are its own), with the
/// planned `resourceVersion` and `uid`: the API server answers 409 when the object changed
/// or was replaced since the plan.
async fn apply_guarded<K>(
    api: &Api<K>,
    spec: &RbacSpec,
    mut object: serde_json::Value,
    guard: &Guard,
    operation: &Operation,
    plural: &'static str,
) -> Result<()>
where
    K: kube::Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    object["metadata"]["resourceVersion"] = guard.resource_version.clone().into();
    object["metadata"]["uid"] = guard.uid.clone().into();
    match api
        .patch(
            &spec.object_name(),
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&object),
        )
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if status_code(&e) == Some(409) => {
            Err(Stale::of(operation, "another resourceVersion or uid").into())
        }
        Err(e) => Err(write_error(e, "patch", plural, spec, &operation.name)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Op;

    fn spec() -> RbacSpec {
        RbacSpec::new("streaming", "flink-runner")
    }

    fn found(role: Option<Role>, binding: Option<RoleBinding>) -> Reading {
        Reading::of_objects(
            spec(),
            Seen {
                role,
                binding,
                ..Seen::default()
            },
        )
    }

    fn creates_namespace(plan: &Plan) -> bool {
        plan.ops
            .iter()
            .any(|op| matches!(op, Op::CreateNamespace { .. }))
    }

    #[test]
    fn a_found_role_or_binding_shows_the_namespace_exists_without_reading_it() {
        for reading in [
            found(Some(spec().role()), None),
            found(None, Some(spec().role_binding())),
        ] {
            assert!(!reading.needs_namespace(), "{reading:?}");
            // Another read cannot unsay what the objects show.
            let plan = reading.with_namespace(false).plan(None);
            assert!(!creates_namespace(&plan), "{:?}", plan.ops);
        }
    }

    #[test]
    fn a_foreign_role_shows_the_namespace_and_still_needs_the_reviews() {
        let mut role = spec().role();
        role.metadata.labels = None;
        let reading = found(Some(role), None);
        assert!(!reading.needs_namespace());
        assert!(reading.needs_review());
    }

    #[test]
    fn nothing_found_leaves_the_namespace_to_be_read_or_told() {
        let reading = found(None, None);
        assert!(reading.needs_namespace());

        let exists = reading.clone().with_namespace(true);
        assert!(!exists.needs_namespace());
        assert!(
            exists.needs_review(),
            "an existing namespace may hold grants"
        );
        assert!(!creates_namespace(&exists.plan(Some(Access::Allowed))));

        let missing = reading.with_namespace(false);
        assert!(!missing.needs_namespace());
        assert!(!missing.needs_review(), "a new namespace holds no grant");
        assert!(creates_namespace(&missing.plan(None)));
    }
}

//! The writes: each planned operation performed exactly as planned, guarded where the
//! service offers a precondition. Nothing here reads to decide; the only reads are the
//! guards themselves and the bounded wait for IAM's eventual consistency.

use std::time::Duration;

use aws_sdk_iam::types::Tag;
use flink_eks_manifest::FIELD_MANAGER;
use flink_eks_plan::{Operation, Progress, Stale};
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::api::{Api, Patch, PatchParams, PostParams};

use crate::Irsa;
use crate::client::retry;
use crate::decide::{
    CLUSTER_TAG_KEY, DOCUMENT_TAG_KEY, MANAGED_BY_KEY, MANAGED_BY_VALUE, ROLE_ARN_ANNOTATION,
    association_warning, document_tag_value, ownership_tags, pods_warning,
};
use crate::documents::STS_AUDIENCE;
use crate::error::{Error, Result, aws_error, error_code, is_not_found, kube_error, kube_status};
use crate::plan::{NewPolicyVersion, Op, Plan, TeardownOp, TeardownPlan};
use crate::report::{ApplyReport, Event, Outcome, TeardownReport, TeardownRow};
use crate::spec::IrsaSpec;

impl Irsa {
    /// Performs exactly the plan's operations that write, in order, and nothing else: a plan
    /// of "no change" only makes no call at all. A write whose precondition no longer holds
    /// (the policy's default version moved, the role, policy, provider or association was
    /// created meanwhile, the service account changed) fails with [`Error::Stale`] and
    /// writes nothing to that resource. Before the role reaches pods (annotation or
    /// association), and after the last IAM write, waits (bounded) until IAM shows the role
    /// with its policy; [`ApplyReport::iam_wait`] says how long.
    pub async fn apply(&self, plan: &Plan, progress: &dyn Progress<Event>) -> Result<ApplyReport> {
        if let Some(blocker) = plan.blockers.first() {
            return Err(Error::Blocked(blocker.clone()));
        }
        let spec = &plan.spec;
        let mut warnings = Vec::new();
        let mut iam_wait = Duration::ZERO;
        let mut role_written = false;
        for op in plan.ops.iter().filter(|op| op.writes()) {
            if op.hands_role_to_pods() && role_written {
                iam_wait += self.wait_until_visible(plan, progress).await?;
                role_written = false;
            }
            let operation = op.operation(spec);
            progress.event(&Event::Started(operation.clone()));
            tracing::info!(kind = operation.kind, name = %operation.name, action = %operation.action, "{}", operation.detail);
            iam_wait += self.perform(plan, op, &operation, progress).await?;
            role_written |= op.needs_iam_visible();
            let warning = match op {
                Op::AnnotateServiceAccount { pods, .. } => pods_warning(spec, pods),
                Op::CreateAssociation { .. } | Op::UpdateAssociation { .. } => {
                    Some(association_warning(spec))
                }
                _ => None,
            };
            if let Some(warning) = warning {
                tracing::warn!("{warning}");
                progress.event(&Event::Warning(warning.clone()));
                warnings.push(warning);
            }
            progress.event(&Event::Finished(operation));
        }
        if role_written {
            iam_wait += self.wait_until_visible(plan, progress).await?;
        }
        Ok(ApplyReport {
            operations: plan.operations(),
            role_arn: plan.role_arn.clone(),
            policy_arn: plan.policy_arn.clone(),
            warnings,
            iam_wait,
        })
    }

    /// One operation; returns the time spent waiting for IAM.
    async fn perform(
        &self,
        plan: &Plan,
        op: &Op,
        operation: &Operation,
        progress: &dyn Progress<Event>,
    ) -> Result<Duration> {
        let spec = &plan.spec;
        match op {
            Op::Keep { .. } => {}
            Op::CreateOidcProvider { url, .. } => {
                // No thumbprint: IAM fetches it itself when the list is omitted, and for EKS
                // issuers (served with certificates from a CA in IAM's trusted library) IAM
                // does not use thumbprints to validate at all. See the crate README.
                self.iam
                    .create_open_id_connect_provider()
                    .url(url)
                    .client_id_list(STS_AUDIENCE)
                    .tags(iam_tag(MANAGED_BY_KEY, MANAGED_BY_VALUE)?)
                    .tags(iam_tag(CLUSTER_TAG_KEY, &spec.cluster)?)
                    .send()
                    .await
                    .map_err(|e| {
                        stale_or_aws(
                            operation,
                            "iam:CreateOpenIDConnectProvider",
                            url,
                            e,
                            CREATED_MEANWHILE,
                        )
                    })?;
            }
            Op::AddOidcClientId { arn } => {
                self.iam
                    .add_client_id_to_open_id_connect_provider()
                    .open_id_connect_provider_arn(arn)
                    .client_id(STS_AUDIENCE)
                    .send()
                    .await
                    .map_err(|e| aws_error("iam:AddClientIDToOpenIDConnectProvider", arn, e))?;
            }
            Op::CreatePolicy { document, .. } => {
                self.iam
                    .create_policy()
                    .policy_name(&spec.policy_name)
                    .policy_document(document.to_json())
                    .description(iam_description(spec, "read the Flink job's script for"))
                    .set_tags(Some(policy_iam_tags(
                        spec,
                        // IAM names a new policy's first version v1.
                        Some(document_tag_value("v1", document)),
                    )?))
                    .send()
                    .await
                    .map_err(|e| {
                        stale_or_aws(
                            operation,
                            "iam:CreatePolicy",
                            &spec.policy_name,
                            e,
                            CREATED_MEANWHILE,
                        )
                    })?;
            }
            Op::UpdatePolicy {
                arn,
                tag,
                version,
                document_tag,
            } => {
                // The tag naming the default version's document goes with the ownership tags
                // (adopt) in one call: after the new version when there is one, since its id
                // is IAM's to give.
                let document_tag = match version {
                    Some(version) => {
                        self.check_default_version(arn, version, operation).await?;
                        let id = self.new_default_version(arn, version, operation).await?;
                        id.map(|id| document_tag_value(&id, &version.document))
                    }
                    None => document_tag.clone(),
                };
                let tags = match tag {
                    true => policy_iam_tags(spec, document_tag)?,
                    false => document_tag
                        .map(|value| iam_tag(DOCUMENT_TAG_KEY, &value))
                        .transpose()?
                        .into_iter()
                        .collect(),
                };
                if !tags.is_empty() {
                    self.iam
                        .tag_policy()
                        .policy_arn(arn)
                        .set_tags(Some(tags))
                        .send()
                        .await
                        .map_err(|e| aws_error("iam:TagPolicy", arn, e))?;
                }
            }
            Op::CreateRole { name, trust } => {
                self.iam
                    .create_role()
                    .role_name(name)
                    .assume_role_policy_document(trust.to_json())
                    .description(iam_description(spec, "Flink jobs of"))
                    .set_tags(Some(ownership_iam_tags(spec)?))
                    .send()
                    .await
                    .map_err(|e| {
                        stale_or_aws(operation, "iam:CreateRole", name, e, CREATED_MEANWHILE)
                    })?;
            }
            Op::UpdateRole { name, tag, trust } => {
                // IAM offers no precondition on a role: the tags and the trust policy are
                // written as planned.
                if *tag {
                    self.iam
                        .tag_role()
                        .role_name(name)
                        .set_tags(Some(ownership_iam_tags(spec)?))
                        .send()
                        .await
                        .map_err(|e| aws_error("iam:TagRole", name, e))?;
                }
                if let Some(trust) = trust {
                    self.iam
                        .update_assume_role_policy()
                        .role_name(name)
                        .policy_document(trust.to_json())
                        .send()
                        .await
                        .map_err(|e| aws_error("iam:UpdateAssumeRolePolicy", name, e))?;
                }
            }
            Op::AttachPolicy { role, policy_arn } => {
                let what = format!(
                    "role {role} and policy {} (to attach them)",
                    spec.policy_name
                );
                // A role or policy created a moment ago may not be found yet.
                let ((), waited) = retry(self.wait, &what, progress, || async {
                    match self
                        .iam
                        .attach_role_policy()
                        .role_name(role)
                        .policy_arn(policy_arn)
                        .send()
                        .await
                    {
                        Ok(_) => Ok(Some(())),
                        Err(e) if is_not_found(&e) => Ok(None),
                        Err(e) => Err(aws_error("iam:AttachRolePolicy", role, e)),
                    }
                })
                .await?;
                return Ok(waited);
            }
            Op::AnnotateServiceAccount {
                role_arn,
                resource_version,
                uid,
                ..
            } => {
                let guard = resource_version.as_deref().map(|rv| (rv, uid.as_deref()));
                self.annotate(spec, role_arn, guard, operation).await?;
            }
            Op::CreateAssociation { role_arn } => {
                let mut create = self
                    .eks
                    .create_pod_identity_association()
                    .cluster_name(&spec.cluster)
                    .namespace(&spec.namespace)
                    .service_account(&spec.service_account)
                    .role_arn(role_arn);
                for (key, value) in ownership_tags(spec) {
                    create = create.tags(key, value);
                }
                create.send().await.map_err(|e| {
                    if error_code(&e) == Some("ResourceInUseException") {
                        Error::Stale(Stale::of(operation, "an association exists"))
                    } else {
                        aws_error(
                            "eks:CreatePodIdentityAssociation",
                            &spec.association_name(),
                            e,
                        )
                    }
                })?;
            }
            Op::UpdateAssociation { id, role_arn, .. } => {
                // EKS offers no precondition on an association: the role is set as planned.
                self.eks
                    .update_pod_identity_association()
                    .cluster_name(&spec.cluster)
                    .association_id(id)
                    .role_arn(role_arn)
                    .send()
                    .await
                    .map_err(|e| {
                        aws_error(
                            "eks:UpdatePodIdentityAssociation",
                            &spec.association_name(),
                            e,
                        )
                    })?;
            }
        }
        Ok(Duration::ZERO)
    }

    /// The guard of a new policy version. IAM has no conditional write (no `If-Match` on
    /// `CreatePolicyVersion`), so the default version id is read right before the write and
    /// compared with the one the plan saw; the window between the two is as small as a
    /// round trip.
    async fn check_default_version(
        &self,
        arn: &str,
        version: &NewPolicyVersion,
        operation: &Operation,
    ) -> Result<()> {
        let now = self.default_version_now(arn).await?;
        if now.as_deref() == Some(version.default_version.as_str()) {
            return Ok(());
        }
        let found = match now {
            Some(id) => format!("default version {id}"),
            None => "no policy".to_owned(),
        };
        Err(Error::Stale(Stale::of(operation, found)))
    }

    /// Deletes the oldest version when planned, then creates the new default version;
    /// returns its id (`None` when IAM's answer names none).
    async fn new_default_version(
        &self,
        arn: &str,
        version: &NewPolicyVersion,
        operation: &Operation,
    ) -> Result<Option<String>> {
        if let Some(oldest) = &version.delete_first {
            tracing::info!(policy = %arn, version = %oldest, "IAM keeps 5 versions: deleting the oldest");
            self.iam
                .delete_policy_version()
                .policy_arn(arn)
                .version_id(oldest)
                .send()
                .await
                .map_err(|e| {
                    if is_not_found(&e) {
                        Error::Stale(Stale::of(operation, format!("no version {oldest}")))
                    } else {
                        aws_error("iam:DeletePolicyVersion", arn, e)
                    }
                })?;
        }
        let created = self
            .iam
            .create_policy_version()
            .policy_arn(arn)
            .policy_document(version.document.to_json())
            .set_as_default(true)
            .send()
            .await
            .map_err(|e| aws_error("iam:CreatePolicyVersion", arn, e))?;
        Ok(created
            .policy_version()
            .and_then(|v| v.version_id())
            .map(str::to_owned))
    }

    /// Sets the annotation. An existing account (`planned`: its resourceVersion and uid when
    /// planned): server-side apply of only the annotation (other annotations, labels and
    /// fields stay with their managers), carrying the planned `metadata.resourceVersion` and
    /// `metadata.uid`, which the API server checks: 409 Conflict when the account changed, and
    /// when it was deleted (an apply that would create the object ignores the
    /// resourceVersion, not the uid). A missing one: created with POST (409 AlreadyExists when
    /// someone created it meanwhile).
    async fn annotate(
        &self,
        spec: &IrsaSpec,
        role_arn: &str,
        planned: Option<(&str, Option<&str>)>,
        operation: &Operation,
    ) -> Result<()> {
        let api: Api<ServiceAccount> = Api::namespaced(self.kube.clone(), &spec.namespace);
        let name = spec.account_name();
        let stale = |e: kube::Error, what: &'static str, found: &str| match &e {
            kube::Error::Api(status) if status.code == 409 => {
                let found = if status.message.contains("uid mismatch") {
                    "no account"
                } else {
                    found
                };
                Error::Stale(Stale::of(operation, found))
            }
            _ => kube_error(what, &name, e),
        };
        let object = serde_json::json!({
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {
                "name": spec.service_account,
                "namespace": spec.namespace,
                "annotations": { ROLE_ARN_ANNOTATION: role_arn },
            },
        });
        match planned {
            Some((rv, uid)) => {
                let mut patch = object;
                patch["metadata"]["resourceVersion"] = rv.into();
                if let Some(uid) = uid {
                    patch["metadata"]["uid"] = uid.into();
                }
                api.patch(
                    &spec.service_account,
                    &PatchParams::apply(FIELD_MANAGER).force(),
                    &Patch::Apply(&patch),
                )
                .await
                .map_err(|e| stale(e, "server-side apply", "another resourceVersion"))?;
            }
            None => {
                let account: ServiceAccount = serde_json::from_value(object)
                    .map_err(|e| kube_error("create", &name, kube::Error::SerdeError(e)))?;
                let params = PostParams {
                    field_manager: Some(FIELD_MANAGER.to_owned()),
                    ..PostParams::default()
                };
                api.create(&params, &account)
                    .await
                    .map_err(|e| stale(e, "create", "it exists"))?;
            }
        }
        Ok(())
    }

    /// Performs exactly the teardown plan's deletions, in order. A deletion whose resource
    /// changed since it was planned (the service account's resourceVersion, a role or policy
    /// gone or given another attachment) fails with [`Error::Stale`].
    pub async fn apply_teardown(
        &self,
        plan: &TeardownPlan,
        progress: &dyn Progress<Event>,
    ) -> Result<TeardownReport> {
        let spec = &plan.spec;
        let mut rows = Vec::new();
        for op in &plan.ops {
            let operation = op.operation(spec);
            let outcome = match op {
                TeardownOp::Keep { absent: true, .. } => Outcome::Absent,
                TeardownOp::Keep { .. } => Outcome::LeftAlone,
                _ => {
                    progress.event(&Event::Started(operation.clone()));
                    self.remove(spec, op, &operation).await?;
                    progress.event(&Event::Finished(operation.clone()));
                    Outcome::Removed
                }
            };
            tracing::info!(kind = operation.kind, name = %operation.name, outcome = %outcome, "{}", operation.detail);
            rows.push(TeardownRow { operation, outcome });
        }
        Ok(TeardownReport { rows })
    }

    async fn remove(&self, spec: &IrsaSpec, op: &TeardownOp, operation: &Operation) -> Result<()> {
        match op {
            TeardownOp::Keep { .. } => {}
            TeardownOp::RemoveAnnotation { resource_version } => {
                let api: Api<ServiceAccount> = Api::namespaced(self.kube.clone(), &spec.namespace);
                // The resourceVersion makes the patch fail if the account changed since it
                // was planned, so an annotation that someone else just rewrote is kept.
                let patch = serde_json::json!({
                    "metadata": {
                        "resourceVersion": resource_version,
                        "annotations": { ROLE_ARN_ANNOTATION: null },
                    },
                });
                api.patch(
                    &spec.service_account,
                    &PatchParams::default(),
                    &Patch::Merge(&patch),
                )
                .await
                .map_err(|e| match kube_status(&e) {
                    Some(409 | 404) => {
                        Error::Stale(Stale::of(operation, "another resourceVersion"))
                    }
                    _ => kube_error("patch", &spec.account_name(), e),
                })?;
            }
            TeardownOp::DeleteAssociation { id } => {
                self.eks
                    .delete_pod_identity_association()
                    .cluster_name(&spec.cluster)
                    .association_id(id)
                    .send()
                    .await
                    .map_err(|e| {
                        if is_not_found(&e) {
                            Error::Stale(Stale::of(operation, "it is gone"))
                        } else {
                            aws_error(
                                "eks:DeletePodIdentityAssociation",
                                &spec.association_name(),
                                e,
                            )
                        }
                    })?;
            }
            TeardownOp::Detach { policy_arn, .. } => {
                self.iam
                    .detach_role_policy()
                    .role_name(&spec.role_name)
                    .policy_arn(policy_arn)
                    .send()
                    .await
                    .map_err(|e| {
                        stale_or_aws(operation, "iam:DetachRolePolicy", &spec.role_name, e, GONE)
                    })?;
            }
            TeardownOp::DeleteRole { inline } => {
                for name in inline {
                    self.iam
                        .delete_role_policy()
                        .role_name(&spec.role_name)
                        .policy_name(name)
                        .send()
                        .await
                        .map_err(|e| {
                            stale_or_aws(
                                operation,
                                "iam:DeleteRolePolicy",
                                &spec.role_name,
                                e,
                                GONE,
                            )
                        })?;
                }
                self.iam
                    .delete_role()
                    .role_name(&spec.role_name)
                    .send()
                    .await
                    .map_err(|e| {
                        stale_or_aws(operation, "iam:DeleteRole", &spec.role_name, e, GONE)
                    })?;
            }
            TeardownOp::DeletePolicy { arn, versions } => {
                for id in versions {
                    self.iam
                        .delete_policy_version()
                        .policy_arn(arn)
                        .version_id(id)
                        .send()
                        .await
                        .map_err(|e| {
                            stale_or_aws(operation, "iam:DeletePolicyVersion", arn, e, GONE)
                        })?;
                }
                self.iam
                    .delete_policy()
                    .policy_arn(arn)
                    .send()
                    .await
                    .map_err(|e| stale_or_aws(operation, "iam:DeletePolicy", arn, e, GONE))?;
            }
        }
        Ok(())
    }
}

/// The IAM error codes that mean a delete's plan is stale, with what each says was found: the
/// resource gone, or something attached to it since it was planned.
const GONE: &[(&str, &str)] = &[
    ("NoSuchEntity", "it is gone"),
    ("DeleteConflict", "something else is attached to it now"),
];

/// The IAM error code that means a create's plan is stale: someone created the resource since
/// the plan saw it absent.
const CREATED_MEANWHILE: &[(&str, &str)] = &[("EntityAlreadyExists", "it exists")];

/// A guarded write's error: an IAM error code listed in `stale` (with what it says was found)
/// means the plan is stale; any other error is the service's.
fn stale_or_aws<E, R>(
    operation: &Operation,
    call: &'static str,
    resource: &str,
    err: aws_smithy_runtime_api::client::result::SdkError<E, R>,
    stale: &[(&str, &'static str)],
) -> Error
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata
        + std::error::Error
        + Send
        + Sync
        + 'static,
    R: std::fmt::Debug,
{
    let found = error_code(&err).and_then(|code| stale.iter().find(|(c, _)| *c == code));
    match found {
        Some((_, found)) => Error::Stale(Stale::of(operation, *found)),
        None => aws_error(call, resource, err),
    }
}

fn iam_tag(key: &str, value: &str) -> Result<Tag> {
    Tag::builder()
        .key(key)
        .value(value)
        .build()
        .map_err(|e| Error::Aws {
            operation: "iam:Tag",
            resource: key.to_owned(),
            message: e.to_string(),
        })
}

fn ownership_iam_tags(spec: &IrsaSpec) -> Result<Vec<Tag>> {
    ownership_tags(spec)
        .iter()
        .map(|(k, v)| iam_tag(k, v))
        .collect()
}

/// The ownership tags, and the tag naming the default version's document when given.
fn policy_iam_tags(spec: &IrsaSpec, document_tag: Option<String>) -> Result<Vec<Tag>> {
    let mut tags = ownership_iam_tags(spec)?;
    if let Some(value) = document_tag {
        tags.push(iam_tag(DOCUMENT_TAG_KEY, &value)?);
    }
    Ok(tags)
}

/// The description IAM shows for a role or policy flink-eks creates: `what` the service
/// account on the cluster.
fn iam_description(spec: &IrsaSpec, what: &str) -> String {
    format!(
        "flink-eks: {what} {} on EKS cluster {}",
        spec.account_name(),
        spec.cluster
    )
}

//! The effects: read what AWS and Kubernetes hold, and make it match the spec.

use std::future::Future;
use std::time::Duration;

use aws_config::SdkConfig;
use aws_sdk_iam::types::Tag;
use k8s_openapi::api::core::v1::{Pod, ServiceAccount};
use kube::api::{Api, ListParams, Patch, PatchParams};

use crate::documents::{OidcIssuer, Partition, PolicyDocument, STS_AUDIENCE};
use crate::error::{Error, Result, aws_error, is_not_found, kube_error};
use crate::plan::{
    AccountSeen, Action, AssociationSeen, CLUSTER_TAG_KEY, Desired, FIELD_MANAGER, MANAGED_BY_KEY,
    MANAGED_BY_VALUE, Plan, PlanRow, PolicySeen, ProviderSeen, ROLE_ARN_ANNOTATION, ResourceKind,
    RoleSeen, Seen, is_ours, ownership_tags, plan_rows,
};
use crate::report::{
    ApplyReport, Check, CheckKind, Outcome, Progress, TeardownReport, TeardownRow, VerifyReport,
};
use crate::spec::{IdentityMode, IrsaSpec};

/// How long to wait for IAM's eventual consistency: `attempts` looks, the first at once,
/// then pauses doubling from `first_delay` up to `max_delay`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitPolicy {
    /// How many looks at most (at least 1).
    pub attempts: u32,
    /// The pause after the first look.
    pub first_delay: Duration,
    /// The longest pause.
    pub max_delay: Duration,
}

impl Default for WaitPolicy {
    /// 8 looks over about 30 seconds (0.5, 1, 2, 4, 8, 8, 8 s between them).
    fn default() -> Self {
        WaitPolicy {
            attempts: 8,
            first_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(8),
        }
    }
}

/// Largest number of versions IAM keeps of a managed policy.
const MAX_POLICY_VERSIONS: usize = 5;

/// The clients that make AWS and Kubernetes match an [`IrsaSpec`].
#[derive(Clone)]
pub struct Irsa {
    iam: aws_sdk_iam::Client,
    sts: aws_sdk_sts::Client,
    eks: aws_sdk_eks::Client,
    kube: kube::Client,
    wait: WaitPolicy,
}

impl std::fmt::Debug for Irsa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Irsa")
            .field(
                "region",
                &self.sts.config().region().map(|r| r.as_ref().to_owned()),
            )
            .field("wait", &self.wait)
            .finish_non_exhaustive()
    }
}

/// Who the caller is and where: read once per operation.
struct Context {
    account: String,
    partition: Partition,
    region: String,
}

impl Irsa {
    /// IAM, STS and EKS clients from one AWS configuration, and a Kubernetes client.
    pub fn new(config: &SdkConfig, kube: kube::Client) -> Irsa {
        Irsa::from_clients(
            aws_sdk_iam::Client::new(config),
            aws_sdk_sts::Client::new(config),
            aws_sdk_eks::Client::new(config),
            kube,
        )
    }

    /// Clients configured separately (for example with an interceptor, or with EKS
    /// pointed elsewhere). The region and credentials are those of the STS client.
    pub fn from_clients(
        iam: aws_sdk_iam::Client,
        sts: aws_sdk_sts::Client,
        eks: aws_sdk_eks::Client,
        kube: kube::Client,
    ) -> Irsa {
        Irsa {
            iam,
            sts,
            eks,
            kube,
            wait: WaitPolicy::default(),
        }
    }

    /// Replaces the bound on waiting for IAM's eventual consistency.
    pub fn with_wait(mut self, wait: WaitPolicy) -> Irsa {
        self.wait = wait;
        self
    }

    /// Reads everything and computes what [`Irsa::apply`] would do. Makes no write.
    pub async fn plan(&self, spec: &IrsaSpec) -> Result<Plan> {
        let (seen, desired) = self.observe(spec).await?;
        let rows = plan_rows(spec, &seen, &desired)?;
        Ok(plan_of(&seen, rows))
    }

    /// Makes AWS and Kubernetes match the spec: OIDC provider, policy, role, attachment,
    /// annotation (or pod identity association). A second run makes no write call.
    /// Refuses, before any write, to modify a role or policy that flink-eks did not create
    /// for this service account unless `spec.adopt`.
    pub async fn apply(
        &self,
        spec: &IrsaSpec,
        progress: &(dyn Fn(Progress<'_>) + Send + Sync),
    ) -> Result<ApplyReport> {
        let (seen, desired) = self.observe(spec).await?;
        let rows = plan_rows(spec, &seen, &desired)?;
        let mut warnings = Vec::new();
        let mut role_written = false;
        for row in &rows {
            if row.action == Action::NoChange {
                continue;
            }
            let for_pods = matches!(
                row.kind,
                ResourceKind::ServiceAccount | ResourceKind::PodIdentityAssociation
            );
            if for_pods && role_written {
                // Hand the role to pods only once IAM shows it with its policy.
                self.wait_until_visible(spec, &seen.policy_arn, progress)
                    .await?;
                role_written = false;
            }
            progress(Progress::Started(row));
            tracing::info!(kind = %row.kind, name = %row.name, action = %row.action, "{}", row.detail);
            match row.kind {
                ResourceKind::OidcProvider => self.ensure_provider(spec, &seen, row.action).await?,
                ResourceKind::Policy => self.ensure_policy(spec, &seen, &desired).await?,
                ResourceKind::Role => {
                    self.ensure_role(spec, &seen, &desired).await?;
                    role_written = true;
                }
                ResourceKind::Attachment => {
                    self.attach(spec, &seen, progress).await?;
                    role_written = true;
                }
                ResourceKind::ServiceAccount => {
                    self.annotate(spec, &seen.role_arn).await?;
                    // Only pods that exist now lack the web identity token; pods created
                    // from here on get it, so a first deploy has nothing to warn about.
                    let stale = self.pods_of(spec).await?;
                    if !stale.is_empty() {
                        let warning = format!(
                            "pods of service account {}/{} started before it was annotated have no web identity \
                             token: delete them (or redeploy the FlinkDeployment) so they are recreated with the role: {}",
                            spec.namespace,
                            spec.service_account,
                            stale.join(", ")
                        );
                        emit_warning(progress, &warning);
                        warnings.push(warning);
                    }
                }
                ResourceKind::PodIdentityAssociation => {
                    self.ensure_association(spec, &seen).await?;
                    let warning = format!(
                        "pods of service account {}/{} started before the pod identity association get no \
                         credentials: recreate them; the cluster needs the eks-pod-identity-agent add-on",
                        spec.namespace, spec.service_account
                    );
                    emit_warning(progress, &warning);
                    warnings.push(warning);
                }
            }
            progress(Progress::Finished(row));
        }
        if role_written {
            self.wait_until_visible(spec, &seen.policy_arn, progress)
                .await?;
        }
        Ok(ApplyReport {
            plan: plan_of(&seen, rows),
            warnings,
        })
    }

    /// The write-up's checks as one report. A missing or different resource is a failed
    /// check, not an error; errors are for calls that could not be made.
    pub async fn verify(&self, spec: &IrsaSpec) -> Result<VerifyReport> {
        let (seen, desired) = self.observe(spec).await?;
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
                ok: trust
                    .as_ref()
                    .is_some_and(|t| t.same_meaning(&desired.trust)),
                expected: expected_trust,
                found: document_text(trust.as_deref()),
            },
        });
        let attached = match &seen.role {
            RoleSeen::Missing => Vec::new(),
            RoleSeen::Present { attached, .. } => attached.clone(),
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
                ok: document
                    .as_ref()
                    .is_some_and(|d| d.same_meaning(&desired.permission)),
                expected: expected_permission,
                found: format!("{default_version}: {}", document_text(document.as_deref())),
            },
        });
        match spec.mode {
            IdentityMode::Irsa => {
                let found = match &seen.service_account {
                    None | Some(AccountSeen::Missing) => None,
                    Some(AccountSeen::Present {
                        role_arn_annotation,
                    }) => Some(role_arn_annotation.clone()),
                };
                checks.push(Check {
                    kind: CheckKind::Annotation,
                    ok: found
                        .as_ref()
                        .is_some_and(|a| a.as_deref() == Some(seen.role_arn.as_str())),
                    expected: format!("{ROLE_ARN_ANNOTATION}={}", seen.role_arn),
                    found: match found {
                        None => format!(
                            "no service account {}/{}",
                            spec.namespace, spec.service_account
                        ),
                        Some(None) => format!("no {ROLE_ARN_ANNOTATION} annotation"),
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
                        "{}/{} on cluster {} with role {}",
                        spec.namespace, spec.service_account, spec.cluster, seen.role_arn
                    ),
                    found,
                });
            }
        }
        Ok(VerifyReport { checks })
    }

    /// Removes what flink-eks created for this spec: the annotation (only while it still
    /// names our role) or the pod identity association, the role (after detaching its
    /// policies), and the policy (after deleting its non-default versions). Leaves alone,
    /// and says so, anything without our tags, a policy still attached elsewhere, and the
    /// cluster's OIDC provider (shared by every IRSA role of the cluster).
    pub async fn teardown(&self, spec: &IrsaSpec) -> Result<TeardownReport> {
        spec.validate()?;
        let ctx = self.context().await?;
        // An unknown cluster is an error before anything is removed.
        let issuer = match self.describe_cluster(spec, &ctx).await {
            Ok(issuer) => Some(issuer),
            Err(Error::NoOidcIssuer { .. }) if spec.mode == IdentityMode::PodIdentity => None,
            Err(e) => return Err(e),
        };
        let role_arn = spec.role_arn(ctx.partition, &ctx.account);
        let policy_arn = spec.policy_arn(ctx.partition, &ctx.account);
        let role = self.read_role(spec).await?;
        let policy = self.read_policy(&policy_arn).await?;
        let role_ours_or_gone = match &role {
            RoleSeen::Missing => true,
            RoleSeen::Present { tags, .. } => is_ours(tags, spec),
        };
        let mut rows = Vec::new();
        let row = |kind, name: &str, outcome, detail: &str| TeardownRow {
            kind,
            name: name.to_owned(),
            outcome,
            detail: detail.to_owned(),
        };

        match spec.mode {
            IdentityMode::Irsa => rows.push(
                self.remove_annotation(spec, &role_arn, role_ours_or_gone)
                    .await?,
            ),
            IdentityMode::PodIdentity => {
                let name = spec.association_name();
                rows.push(match self.read_association(spec).await? {
                    AssociationSeen::Missing => row(
                        ResourceKind::PodIdentityAssociation,
                        &name,
                        Outcome::Absent,
                        "",
                    ),
                    AssociationSeen::Present {
                        id,
                        role_arn: theirs,
                    } if theirs == role_arn && role_ours_or_gone => {
                        self.eks
                            .delete_pod_identity_association()
                            .cluster_name(&spec.cluster)
                            .association_id(&id)
                            .send()
                            .await
                            .map_err(|e| aws_error("eks:DeletePodIdentityAssociation", &name, e))?;
                        row(
                            ResourceKind::PodIdentityAssociation,
                            &name,
                            Outcome::Removed,
                            &id,
                        )
                    }
                    AssociationSeen::Present {
                        role_arn: theirs, ..
                    } => row(
                        ResourceKind::PodIdentityAssociation,
                        &name,
                        Outcome::LeftAlone,
                        &format!("it maps to role {theirs}, not to a role flink-eks created"),
                    ),
                });
            }
        }

        let attachment = crate::plan::attachment_name(spec);
        match &role {
            RoleSeen::Missing => {
                rows.push(row(
                    ResourceKind::Role,
                    &spec.role_name,
                    Outcome::Absent,
                    "",
                ));
            }
            RoleSeen::Present { tags, .. } if !is_ours(tags, spec) => {
                rows.push(row(
                    ResourceKind::Role,
                    &spec.role_name,
                    Outcome::LeftAlone,
                    &not_ours_detail(tags),
                ));
            }
            RoleSeen::Present { attached, .. } => {
                for arn in attached {
                    self.iam
                        .detach_role_policy()
                        .role_name(&spec.role_name)
                        .policy_arn(arn)
                        .send()
                        .await
                        .map_err(|e| aws_error("iam:DetachRolePolicy", &spec.role_name, e))?;
                    rows.push(if *arn == policy_arn {
                        row(
                            ResourceKind::Attachment,
                            &attachment,
                            Outcome::Removed,
                            "detached",
                        )
                    } else {
                        row(
                            ResourceKind::Attachment,
                            &format!("{arn} -> {}", spec.role_name),
                            Outcome::Removed,
                            "detached so that the role can be deleted; that policy itself is kept",
                        )
                    });
                }
                let inline = self
                    .iam
                    .list_role_policies()
                    .role_name(&spec.role_name)
                    .into_paginator()
                    .items()
                    .send()
                    .collect::<Result<Vec<_>, _>>()
                    .await
                    .map_err(|e| aws_error("iam:ListRolePolicies", &spec.role_name, e))?;
                for name in &inline {
                    self.iam
                        .delete_role_policy()
                        .role_name(&spec.role_name)
                        .policy_name(name)
                        .send()
                        .await
                        .map_err(|e| aws_error("iam:DeleteRolePolicy", &spec.role_name, e))?;
                }
                self.iam
                    .delete_role()
                    .role_name(&spec.role_name)
                    .send()
                    .await
                    .map_err(|e| aws_error("iam:DeleteRole", &spec.role_name, e))?;
                let detail = if inline.is_empty() {
                    String::new()
                } else {
                    format!("with its inline policies {}", inline.join(", "))
                };
                rows.push(row(
                    ResourceKind::Role,
                    &spec.role_name,
                    Outcome::Removed,
                    &detail,
                ));
            }
        }

        match &policy {
            PolicySeen::Missing => {
                rows.push(row(ResourceKind::Policy, &policy_arn, Outcome::Absent, ""))
            }
            PolicySeen::Present { tags, .. } if !is_ours(tags, spec) => rows.push(row(
                ResourceKind::Policy,
                &policy_arn,
                Outcome::LeftAlone,
                &not_ours_detail(tags),
            )),
            PolicySeen::Present { .. } => {
                let users = self.policy_users(&policy_arn).await?;
                if users.is_empty() {
                    self.delete_policy(&policy_arn).await?;
                    rows.push(row(ResourceKind::Policy, &policy_arn, Outcome::Removed, ""));
                } else {
                    rows.push(row(
                        ResourceKind::Policy,
                        &policy_arn,
                        Outcome::LeftAlone,
                        &format!("still attached to {}", users.join(", ")),
                    ));
                }
            }
        }

        if let (IdentityMode::Irsa, Some(issuer)) = (spec.mode, &issuer) {
            let provider_arn = issuer.provider_arn(ctx.partition, &ctx.account);
            rows.push(match self.read_provider(&provider_arn).await? {
                ProviderSeen::Missing => row(
                    ResourceKind::OidcProvider,
                    &provider_arn,
                    Outcome::Absent,
                    "",
                ),
                ProviderSeen::Present { .. } => row(
                    ResourceKind::OidcProvider,
                    &provider_arn,
                    Outcome::LeftAlone,
                    "shared by every IRSA role of the cluster; delete it with the cluster",
                ),
            });
        }
        for r in &rows {
            tracing::info!(kind = %r.kind, name = %r.name, outcome = %r.outcome, "{}", r.detail);
        }
        Ok(TeardownReport { rows })
    }

    // ----- reading -----

    async fn context(&self) -> Result<Context> {
        let config = self.sts.config();
        let region = config
            .region()
            .map(|r| r.as_ref().to_owned())
            .ok_or(Error::NoRegion)?;
        let partition = Partition::from_region(&region)?;
        let identity = self
            .sts
            .get_caller_identity()
            .send()
            .await
            .map_err(|e| aws_error("sts:GetCallerIdentity", "the caller", e))?;
        let account = identity.account().unwrap_or_default().to_owned();
        Ok(Context {
            account,
            partition,
            region,
        })
    }

    async fn describe_cluster(&self, spec: &IrsaSpec, ctx: &Context) -> Result<OidcIssuer> {
        let out = self
            .eks
            .describe_cluster()
            .name(&spec.cluster)
            .send()
            .await
            .map_err(|e| {
                if is_not_found(&e) {
                    Error::ClusterNotFound {
                        cluster: spec.cluster.clone(),
                        region: ctx.region.clone(),
                    }
                } else {
                    aws_error("eks:DescribeCluster", &spec.cluster, e)
                }
            })?;
        let issuer = out
            .cluster()
            .and_then(|c| c.identity())
            .and_then(|i| i.oidc())
            .and_then(|o| o.issuer())
            .filter(|i| !i.is_empty())
            .ok_or_else(|| Error::NoOidcIssuer {
                cluster: spec.cluster.clone(),
            })?;
        Ok(OidcIssuer::parse(issuer)?)
    }

    async fn observe(&self, spec: &IrsaSpec) -> Result<(Seen, Desired)> {
        spec.validate()?;
        let ctx = self.context().await?;
        let issuer = self.describe_cluster(spec, &ctx).await;
        // Pod Identity needs the cluster, not its issuer.
        let issuer = match (spec.mode, issuer) {
            (_, Err(Error::NoOidcIssuer { .. })) if spec.mode == IdentityMode::PodIdentity => None,
            (_, Err(e)) => return Err(e),
            (IdentityMode::Irsa, Ok(issuer)) => Some(issuer),
            (IdentityMode::PodIdentity, Ok(_)) => None,
        };
        let role_arn = spec.role_arn(ctx.partition, &ctx.account);
        let policy_arn = spec.policy_arn(ctx.partition, &ctx.account);
        let provider_arn = issuer
            .as_ref()
            .map(|i| i.provider_arn(ctx.partition, &ctx.account));
        let provider = match &provider_arn {
            Some(arn) => Some(self.read_provider(arn).await?),
            None => None,
        };
        let trust = match &issuer {
            Some(issuer) => spec.trust_policy(ctx.partition, &ctx.account, issuer),
            None => crate::documents::TrustPolicy::pod_identity(),
        };
        let desired = Desired {
            permission: spec.permission_policy(ctx.partition).document().clone(),
            trust: trust.document().clone(),
        };
        let policy = self.read_policy(&policy_arn).await?;
        let role = self.read_role(spec).await?;
        let (service_account, association) = match spec.mode {
            IdentityMode::Irsa => (Some(self.read_service_account(spec).await?), None),
            IdentityMode::PodIdentity => (None, Some(self.read_association(spec).await?)),
        };
        let seen = Seen {
            account: ctx.account,
            role_arn,
            policy_arn,
            provider_arn,
            issuer: issuer.map(|i| i.url()),
            provider,
            policy,
            role,
            service_account,
            association,
        };
        Ok((seen, desired))
    }

    async fn read_provider(&self, arn: &str) -> Result<ProviderSeen> {
        match self
            .iam
            .get_open_id_connect_provider()
            .open_id_connect_provider_arn(arn)
            .send()
            .await
        {
            Ok(out) => Ok(ProviderSeen::Present {
                client_ids: out.client_id_list().to_vec(),
            }),
            Err(e) if is_not_found(&e) => Ok(ProviderSeen::Missing),
            Err(e) => Err(aws_error("iam:GetOpenIDConnectProvider", arn, e)),
        }
    }

    async fn read_policy(&self, arn: &str) -> Result<PolicySeen> {
        let policy = match self.iam.get_policy().policy_arn(arn).send().await {
            Ok(out) => out.policy,
            Err(e) if is_not_found(&e) => return Ok(PolicySeen::Missing),
            Err(e) => return Err(aws_error("iam:GetPolicy", arn, e)),
        };
        let Some(policy) = policy else {
            return Ok(PolicySeen::Missing);
        };
        let tags = tag_pairs(policy.tags());
        let default_version = policy.default_version_id().unwrap_or("v1").to_owned();
        let version = self
            .iam
            .get_policy_version()
            .policy_arn(arn)
            .version_id(&default_version)
            .send()
            .await
            .map_err(|e| aws_error("iam:GetPolicyVersion", arn, e))?;
        let document = version
            .policy_version()
            .and_then(|v| v.document())
            .and_then(|d| PolicyDocument::parse_iam(d).ok())
            .map(Box::new);
        Ok(PolicySeen::Present {
            tags,
            default_version,
            document,
        })
    }

    async fn read_role(&self, spec: &IrsaSpec) -> Result<RoleSeen> {
        let role = match self.iam.get_role().role_name(&spec.role_name).send().await {
            Ok(out) => out.role,
            Err(e) if is_not_found(&e) => return Ok(RoleSeen::Missing),
            Err(e) => return Err(aws_error("iam:GetRole", &spec.role_name, e)),
        };
        let Some(role) = role else {
            return Ok(RoleSeen::Missing);
        };
        let trust = role
            .assume_role_policy_document()
            .and_then(|d| PolicyDocument::parse_iam(d).ok())
            .map(Box::new);
        let attached = self.attached_policies(&spec.role_name).await?;
        Ok(RoleSeen::Present {
            tags: tag_pairs(role.tags()),
            trust,
            attached,
        })
    }

    async fn attached_policies(&self, role: &str) -> Result<Vec<String>> {
        let attached = self
            .iam
            .list_attached_role_policies()
            .role_name(role)
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .map_err(|e| aws_error("iam:ListAttachedRolePolicies", role, e))?;
        Ok(attached
            .iter()
            .filter_map(|p| p.policy_arn().map(str::to_owned))
            .collect())
    }

    async fn read_service_account(&self, spec: &IrsaSpec) -> Result<AccountSeen> {
        let api: Api<ServiceAccount> = Api::namespaced(self.kube.clone(), &spec.namespace);
        let name = spec.account_name();
        let account = api
            .get_opt(&spec.service_account)
            .await
            .map_err(|e| kube_error("get", &name, e))?;
        Ok(match account {
            None => AccountSeen::Missing,
            Some(account) => AccountSeen::Present {
                role_arn_annotation: account
                    .metadata
                    .annotations
                    .and_then(|a| a.get(ROLE_ARN_ANNOTATION).cloned()),
            },
        })
    }

    async fn read_association(&self, spec: &IrsaSpec) -> Result<AssociationSeen> {
        let name = spec.association_name();
        let list = self
            .eks
            .list_pod_identity_associations()
            .cluster_name(&spec.cluster)
            .namespace(&spec.namespace)
            .service_account(&spec.service_account)
            .send()
            .await
            .map_err(|e| aws_error("eks:ListPodIdentityAssociations", &name, e))?;
        let Some(id) = list.associations().iter().find_map(|a| a.association_id()) else {
            return Ok(AssociationSeen::Missing);
        };
        let described = self
            .eks
            .describe_pod_identity_association()
            .cluster_name(&spec.cluster)
            .association_id(id)
            .send()
            .await
            .map_err(|e| aws_error("eks:DescribePodIdentityAssociation", &name, e))?;
        let role_arn = described
            .association()
            .and_then(|a| a.role_arn())
            .unwrap_or_default()
            .to_owned();
        Ok(AssociationSeen::Present {
            id: id.to_owned(),
            role_arn,
        })
    }

    async fn policy_users(&self, arn: &str) -> Result<Vec<String>> {
        let mut users = Vec::new();
        let mut pages = self
            .iam
            .list_entities_for_policy()
            .policy_arn(arn)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| aws_error("iam:ListEntitiesForPolicy", arn, e))?;
            users.extend(
                page.policy_roles()
                    .iter()
                    .filter_map(|r| r.role_name())
                    .map(|n| format!("role {n}")),
            );
            users.extend(
                page.policy_users()
                    .iter()
                    .filter_map(|u| u.user_name())
                    .map(|n| format!("user {n}")),
            );
            users.extend(
                page.policy_groups()
                    .iter()
                    .filter_map(|g| g.group_name())
                    .map(|n| format!("group {n}")),
            );
        }
        Ok(users)
    }

    // ----- writing -----

    async fn ensure_provider(&self, spec: &IrsaSpec, seen: &Seen, action: Action) -> Result<()> {
        let (Some(arn), Some(url)) = (&seen.provider_arn, &seen.issuer) else {
            return Ok(());
        };
        if action == Action::Update {
            self.iam
                .add_client_id_to_open_id_connect_provider()
                .open_id_connect_provider_arn(arn)
                .client_id(STS_AUDIENCE)
                .send()
                .await
                .map_err(|e| aws_error("iam:AddClientIDToOpenIDConnectProvider", arn, e))?;
            return Ok(());
        }
        // No thumbprint: IAM fetches it itself when the list is omitted, and for EKS
        // issuers (served with certificates from a CA in IAM's trusted library) IAM does not
        // use thumbprints to validate at all. See the crate README.
        let created = self
            .iam
            .create_open_id_connect_provider()
            .url(url)
            .client_id_list(STS_AUDIENCE)
            .tags(iam_tag(MANAGED_BY_KEY, MANAGED_BY_VALUE)?)
            .tags(iam_tag(CLUSTER_TAG_KEY, &spec.cluster)?)
            .send()
            .await;
        match created {
            Ok(_) => Ok(()),
            // Created since it was read (another run, eksctl): one per issuer is all we need.
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_entity_already_exists_exception()) =>
            {
                tracing::info!(provider = %arn, "the OIDC provider was created meanwhile by someone else");
                Ok(())
            }
            Err(e) => Err(aws_error("iam:CreateOpenIDConnectProvider", url, e)),
        }
    }

    async fn ensure_policy(&self, spec: &IrsaSpec, seen: &Seen, desired: &Desired) -> Result<()> {
        let arn = &seen.policy_arn;
        let (tags, document) = match &seen.policy {
            PolicySeen::Missing => {
                self.iam
                    .create_policy()
                    .policy_name(&spec.policy_name)
                    .policy_document(desired.permission.to_json())
                    .description(iam_description(spec, "read the Flink job's script for"))
                    .set_tags(Some(ownership_iam_tags(spec)?))
                    .send()
                    .await
                    .map_err(|e| aws_error("iam:CreatePolicy", &spec.policy_name, e))?;
                return Ok(());
            }
            PolicySeen::Present { tags, document, .. } => (tags, document),
        };
        if !is_ours(tags, spec) {
            self.iam
                .tag_policy()
                .policy_arn(arn)
                .set_tags(Some(ownership_iam_tags(spec)?))
                .send()
                .await
                .map_err(|e| aws_error("iam:TagPolicy", arn, e))?;
        }
        if document
            .as_ref()
            .is_some_and(|d| d.same_meaning(&desired.permission))
        {
            return Ok(());
        }
        let versions = self
            .iam
            .list_policy_versions()
            .policy_arn(arn)
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .map_err(|e| aws_error("iam:ListPolicyVersions", arn, e))?;
        if versions.len() >= MAX_POLICY_VERSIONS {
            let oldest = versions
                .iter()
                .filter(|v| !v.is_default_version())
                .filter_map(|v| v.version_id())
                .min_by_key(|id| version_number(id));
            if let Some(oldest) = oldest {
                tracing::info!(policy = %arn, version = %oldest, "IAM keeps 5 versions: deleting the oldest");
                self.iam
                    .delete_policy_version()
                    .policy_arn(arn)
                    .version_id(oldest)
                    .send()
                    .await
                    .map_err(|e| aws_error("iam:DeletePolicyVersion", arn, e))?;
            }
        }
        self.iam
            .create_policy_version()
            .policy_arn(arn)
            .policy_document(desired.permission.to_json())
            .set_as_default(true)
            .send()
            .await
            .map_err(|e| aws_error("iam:CreatePolicyVersion", arn, e))?;
        Ok(())
    }

    async fn ensure_role(&self, spec: &IrsaSpec, seen: &Seen, desired: &Desired) -> Result<()> {
        let name = &spec.role_name;
        let (tags, trust) = match &seen.role {
            RoleSeen::Missing => {
                self.iam
                    .create_role()
                    .role_name(name)
                    .assume_role_policy_document(desired.trust.to_json())
                    .description(iam_description(spec, "Flink jobs of"))
                    .set_tags(Some(ownership_iam_tags(spec)?))
                    .send()
                    .await
                    .map_err(|e| aws_error("iam:CreateRole", name, e))?;
                return Ok(());
            }
            RoleSeen::Present { tags, trust, .. } => (tags, trust),
        };
        if !is_ours(tags, spec) {
            self.iam
                .tag_role()
                .role_name(name)
                .set_tags(Some(ownership_iam_tags(spec)?))
                .send()
                .await
                .map_err(|e| aws_error("iam:TagRole", name, e))?;
        }
        if !trust
            .as_ref()
            .is_some_and(|t| t.same_meaning(&desired.trust))
        {
            self.iam
                .update_assume_role_policy()
                .role_name(name)
                .policy_document(desired.trust.to_json())
                .send()
                .await
                .map_err(|e| aws_error("iam:UpdateAssumeRolePolicy", name, e))?;
        }
        Ok(())
    }

    async fn attach(
        &self,
        spec: &IrsaSpec,
        seen: &Seen,
        progress: &(dyn Fn(Progress<'_>) + Send + Sync),
    ) -> Result<()> {
        let what = format!(
            "role {} and policy {} (to attach them)",
            spec.role_name, spec.policy_name
        );
        // A role or policy created a moment ago may not be found yet.
        self.with_backoff(&what, progress, || async {
            match self
                .iam
                .attach_role_policy()
                .role_name(&spec.role_name)
                .policy_arn(&seen.policy_arn)
                .send()
                .await
            {
                Ok(_) => Ok(Some(())),
                Err(e) if is_not_found(&e) => Ok(None),
                Err(e) => Err(aws_error("iam:AttachRolePolicy", &spec.role_name, e)),
            }
        })
        .await
    }

    async fn wait_until_visible(
        &self,
        spec: &IrsaSpec,
        policy_arn: &str,
        progress: &(dyn Fn(Progress<'_>) + Send + Sync),
    ) -> Result<()> {
        let what = format!(
            "role {} with policy {} attached",
            spec.role_name, spec.policy_name
        );
        self.with_backoff(&what, progress, || async {
            match self.read_role(spec).await? {
                RoleSeen::Present { attached, .. } if attached.iter().any(|a| a == policy_arn) => {
                    Ok(Some(()))
                }
                _ => Ok(None),
            }
        })
        .await
    }

    async fn with_backoff<T, F, Fut>(
        &self,
        what: &str,
        progress: &(dyn Fn(Progress<'_>) + Send + Sync),
        attempt: F,
    ) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<Option<T>>>,
    {
        retry(self.wait, what, progress, attempt).await
    }

    async fn annotate(&self, spec: &IrsaSpec, role_arn: &str) -> Result<()> {
        let api: Api<ServiceAccount> = Api::namespaced(self.kube.clone(), &spec.namespace);
        let name = spec.account_name();
        // Server-side apply of only the annotation: other annotations, labels and fields
        // belong to their own managers and stay as they are.
        let patch = serde_json::json!({
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {
                "name": spec.service_account,
                "namespace": spec.namespace,
                "annotations": { ROLE_ARN_ANNOTATION: role_arn },
            },
        });
        api.patch(
            &spec.service_account,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&patch),
        )
        .await
        .map_err(|e| kube_error("server-side apply", &name, e))?;
        Ok(())
    }

    /// The names of the pods that run as the spec's service account now.
    async fn pods_of(&self, spec: &IrsaSpec) -> Result<Vec<String>> {
        let api: Api<Pod> = Api::namespaced(self.kube.clone(), &spec.namespace);
        let selector = format!("spec.serviceAccountName={}", spec.service_account);
        let pods = api
            .list(&ListParams::default().fields(&selector))
            .await
            .map_err(|e| kube_error("list pods", &format!("{}/{selector}", spec.namespace), e))?;
        Ok(pods
            .items
            .into_iter()
            .filter_map(|p| p.metadata.name)
            .collect())
    }

    async fn remove_annotation(
        &self,
        spec: &IrsaSpec,
        role_arn: &str,
        role_ours_or_gone: bool,
    ) -> Result<TeardownRow> {
        let api: Api<ServiceAccount> = Api::namespaced(self.kube.clone(), &spec.namespace);
        let name = spec.account_name();
        let row = |outcome, detail: String| TeardownRow {
            kind: ResourceKind::ServiceAccount,
            name: name.clone(),
            outcome,
            detail,
        };
        let account = api
            .get_opt(&spec.service_account)
            .await
            .map_err(|e| kube_error("get", &name, e))?;
        let Some(account) = account else {
            return Ok(row(Outcome::Absent, "no service account".to_owned()));
        };
        let annotation = account
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(ROLE_ARN_ANNOTATION));
        match annotation {
            None => Ok(row(
                Outcome::Absent,
                format!("no {ROLE_ARN_ANNOTATION} annotation"),
            )),
            Some(value) if value != role_arn || !role_ours_or_gone => Ok(row(
                Outcome::LeftAlone,
                format!("{ROLE_ARN_ANNOTATION} names {value}, not a role flink-eks created"),
            )),
            Some(_) => {
                // The resourceVersion makes the patch fail if the account changed since it
                // was read, so an annotation that someone else just rewrote is not removed.
                let patch = serde_json::json!({
                    "metadata": {
                        "resourceVersion": account.metadata.resource_version,
                        "annotations": { ROLE_ARN_ANNOTATION: null },
                    },
                });
                api.patch(
                    &spec.service_account,
                    &PatchParams::default(),
                    &Patch::Merge(&patch),
                )
                .await
                .map_err(|e| kube_error("patch", &name, e))?;
                Ok(row(
                    Outcome::Removed,
                    format!("{ROLE_ARN_ANNOTATION} removed; the service account itself is kept"),
                ))
            }
        }
    }

    async fn ensure_association(&self, spec: &IrsaSpec, seen: &Seen) -> Result<()> {
        let name = spec.association_name();
        match &seen.association {
            Some(AssociationSeen::Present { id, .. }) => {
                self.eks
                    .update_pod_identity_association()
                    .cluster_name(&spec.cluster)
                    .association_id(id)
                    .role_arn(&seen.role_arn)
                    .send()
                    .await
                    .map_err(|e| aws_error("eks:UpdatePodIdentityAssociation", &name, e))?;
            }
            None | Some(AssociationSeen::Missing) => {
                let mut create = self
                    .eks
                    .create_pod_identity_association()
                    .cluster_name(&spec.cluster)
                    .namespace(&spec.namespace)
                    .service_account(&spec.service_account)
                    .role_arn(&seen.role_arn);
                for (key, value) in ownership_tags(spec) {
                    create = create.tags(key, value);
                }
                create
                    .send()
                    .await
                    .map_err(|e| aws_error("eks:CreatePodIdentityAssociation", &name, e))?;
            }
        }
        Ok(())
    }

    async fn delete_policy(&self, arn: &str) -> Result<()> {
        let versions = self
            .iam
            .list_policy_versions()
            .policy_arn(arn)
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .map_err(|e| aws_error("iam:ListPolicyVersions", arn, e))?;
        for version in versions.iter().filter(|v| !v.is_default_version()) {
            if let Some(id) = version.version_id() {
                self.iam
                    .delete_policy_version()
                    .policy_arn(arn)
                    .version_id(id)
                    .send()
                    .await
                    .map_err(|e| aws_error("iam:DeletePolicyVersion", arn, e))?;
            }
        }
        self.iam
            .delete_policy()
            .policy_arn(arn)
            .send()
            .await
            .map_err(|e| aws_error("iam:DeletePolicy", arn, e))?;
        Ok(())
    }
}

/// Calls `attempt` until it gives `Some`, at most `wait.attempts` times, pausing with
/// doubling delays between attempts and reporting each pause.
async fn retry<T, F, Fut>(
    wait: WaitPolicy,
    what: &str,
    progress: &(dyn Fn(Progress<'_>) + Send + Sync),
    mut attempt: F,
) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>>>,
{
    let attempts = wait.attempts.max(1);
    let mut delay = wait.first_delay;
    let mut waited = Duration::ZERO;
    for n in 1..=attempts {
        if let Some(value) = attempt().await? {
            return Ok(value);
        }
        if n == attempts {
            break;
        }
        progress(Progress::Waiting {
            what,
            attempt: n,
            attempts,
            delay,
        });
        tracing::info!(
            attempt = n,
            attempts,
            ?delay,
            "IAM does not show {what} yet (eventual consistency)"
        );
        tokio::time::sleep(delay).await;
        waited += delay;
        delay = (delay * 2).min(wait.max_delay);
    }
    Err(Error::NotVisible {
        what: what.to_owned(),
        waited,
    })
}

fn emit_warning(progress: &(dyn Fn(Progress<'_>) + Send + Sync), warning: &str) {
    tracing::warn!("{warning}");
    progress(Progress::Warning(warning));
}

fn plan_of(seen: &Seen, rows: Vec<PlanRow>) -> Plan {
    Plan {
        account: seen.account.clone(),
        role_arn: seen.role_arn.clone(),
        policy_arn: seen.policy_arn.clone(),
        issuer: seen.issuer.clone(),
        rows,
    }
}

fn tag_pairs(tags: &[Tag]) -> Vec<(String, String)> {
    tags.iter()
        .map(|t| (t.key().to_owned(), t.value().to_owned()))
        .collect()
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

/// The description IAM shows for a role or policy flink-eks creates: `what` the service
/// account on the cluster.
fn iam_description(spec: &IrsaSpec, what: &str) -> String {
    format!(
        "flink-eks: {what} {} on EKS cluster {}",
        spec.account_name(),
        spec.cluster
    )
}

/// Why teardown leaves a role or policy alone that carries other tags than ours.
fn not_ours_detail(tags: &[(String, String)]) -> String {
    format!(
        "not created by flink-eks for this service account (tags: {})",
        crate::plan::tags_text(tags)
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

fn ownership_iam_tags(spec: &IrsaSpec) -> Result<Vec<Tag>> {
    ownership_tags(spec)
        .iter()
        .map(|(k, v)| iam_tag(k, v))
        .collect()
}

/// `v7` -> 7; an unexpected id sorts last, so it is never chosen as the oldest.
fn version_number(id: &str) -> u64 {
    id.strip_prefix('v')
        .and_then(|n| n.parse().ok())
        .unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::sync::Mutex;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn wait(attempts: u32) -> WaitPolicy {
        WaitPolicy {
            attempts,
            first_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(3),
        }
    }

    #[tokio::test]
    async fn retry_waits_with_doubling_capped_delays_until_visible() {
        let calls = AtomicU32::new(0);
        let pauses = Mutex::new(Vec::new());
        let progress = |p: Progress<'_>| {
            if let Progress::Waiting {
                attempt,
                attempts,
                delay,
                what,
            } = p
            {
                assert_eq!((attempts, what), (8, "role r"));
                pauses.lock().unwrap().push((attempt, delay.as_millis()));
            }
        };
        let value = retry(wait(8), "role r", &progress, || async {
            let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
            Ok((n == 4).then_some(n))
        })
        .await
        .unwrap();
        assert_eq!(value, 4);
        assert_eq!(*pauses.lock().unwrap(), [(1, 1), (2, 2), (3, 3)]);
    }

    #[tokio::test]
    async fn retry_is_bounded_and_says_what_it_waited_for() {
        let calls = AtomicU32::new(0);
        let err = retry(
            wait(3),
            "role r with policy p attached",
            &crate::no_progress,
            || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Ok(None::<()>)
            },
        )
        .await
        .unwrap_err();
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        let message = err.to_string();
        assert!(matches!(err, Error::NotVisible { .. }), "{message}");
        assert!(
            message.contains("role r with policy p attached") && message.contains("3ms"),
            "{message}"
        );
        assert!(message.contains("eventually consistent"), "{message}");
    }

    #[tokio::test]
    async fn retry_stops_at_the_first_error() {
        let calls = AtomicU32::new(0);
        let err = retry(wait(5), "x", &crate::no_progress, || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err::<Option<()>, _>(Error::NoRegion)
        })
        .await
        .unwrap_err();
        assert!(matches!(err, Error::NoRegion));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn version_ids_sort_numerically() {
        let mut ids = vec!["v10", "v9", "v2", "weird"];
        ids.sort_by_key(|id| version_number(id));
        assert_eq!(ids, vec!["v2", "v9", "v10", "weird"]);
    }
}

//! The reads: what STS, EKS, IAM and Kubernetes hold, gathered in as few concurrent waves as
//! the dependencies allow. Nothing here decides; [`crate::decide`] does.

use aws_sdk_iam::types::Tag;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use k8s_openapi::api::core::v1::{Namespace, Pod, ServiceAccount};
use kube::api::{Api, ListParams};

use crate::Irsa;
use crate::cluster::ClusterIdentity;
use crate::decide::{
    AccountSeen, AssociationSeen, Desired, PolicySeen, ProviderSeen, ROLE_ARN_ANNOTATION, RoleSeen,
    Seen, VersionSeen, account_from_arns, document_known, same_document,
};
use crate::documents::{OidcIssuer, Partition, PolicyDocument, TrustPolicy};
use crate::error::{Error, Result, aws_error, is_not_found, kube_error};
use crate::spec::{IdentityMode, IrsaSpec};

/// What a listing of the things a role or policy holds (`call` on `owner`) returned, each item
/// read by `each` (an item it cannot read is left out); none when `owner` does not exist.
fn owned_or_none<T, U, E, R>(
    listed: std::result::Result<Vec<T>, SdkError<E, R>>,
    call: &'static str,
    owner: &str,
    each: impl FnMut(&T) -> Option<U>,
) -> Result<Vec<U>>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    match listed {
        Ok(items) => Ok(items.iter().filter_map(each).collect()),
        Err(e) if is_not_found(&e) => Ok(Vec::new()),
        Err(e) => Err(aws_error(call, owner, e)),
    }
}

/// Which extra reads a caller needs beyond the state every decision uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Purpose {
    /// Also the pods of the service account (apply warns about them).
    Apply,
    /// Nothing extra.
    Verify,
    /// Also the role's inline policies and who else uses the policy.
    Teardown,
}

impl Irsa {
    /// Reads everything `purpose` needs, in two waves: (1) the cluster, the role with its
    /// attachments, the service account or the association's id; (2) what needs the account
    /// or the issuer: the policy (then, when needed, its default version's document; for
    /// teardown, its versions and users), the OIDC provider, the association's role, and the
    /// pods of a service account whose annotation will change.
    ///
    /// With the cluster `known` (its identity remembered from an earlier run), EKS is not
    /// asked and the policy and the OIDC provider join the first wave: both need only the
    /// account and the issuer, which the identity holds.
    ///
    /// The account is the one the cluster's and the role's ARNs name, so STS is asked only
    /// when neither answer carries one. What only a change needs is not read when nothing
    /// changes: the pods (apply warns about them only when it re-annotates the account), the
    /// default version's document when the policy's tags say which document it holds (see
    /// [`crate::DOCUMENT_TAG_KEY`]), and the policy's versions (only a new version may need
    /// the oldest deleted first).
    pub(crate) async fn observe(
        &self,
        spec: &IrsaSpec,
        purpose: Purpose,
        known: Option<&ClusterIdentity>,
    ) -> Result<(Seen, Desired)> {
        spec.validate()?;
        let (region, partition) = self.region()?;
        let irsa = spec.mode == IdentityMode::Irsa;
        let known = known.and_then(|k| k.facts_for(&spec.cluster, &region));
        let known_used = known.is_some();
        let permission = spec.permission_policy(partition);
        let early = async {
            match &known {
                Some((account, issuer)) => self
                    .read_policy_and_provider(spec, purpose, partition, account, issuer.as_ref())
                    .await
                    .map(Some),
                None => Ok(None),
            }
        };
        let (cluster, role, service_account, association_id, early) = tokio::try_join!(
            async {
                match &known {
                    Some(_) => Ok(None),
                    None => self.describe_cluster(spec, &region).await.map(Some),
                }
            },
            self.role_and_arn(&spec.role_name, purpose == Purpose::Teardown),
            async {
                match irsa {
                    true => self.read_service_account(spec).await.map(Some),
                    false => Ok(None),
                }
            },
            async {
                match irsa {
                    false => self.find_association(spec).await.map(Some),
                    true => Ok(None),
                }
            },
            early,
        )?;
        let (role, role_arn_read) = role;
        let (account, issuer) = match (known, &cluster) {
            (Some(facts), _) => facts,
            (None, cluster) => {
                let cluster_arn = cluster.as_ref().and_then(|c| c.1.as_deref());
                let account = match account_from_arns(&[cluster_arn, role_arn_read.as_deref()]) {
                    Some(account) => account,
                    None => self.account().await?,
                };
                (account, cluster.as_ref().and_then(|c| c.0.clone()))
            }
        };
        // Pod Identity needs the cluster, not its issuer.
        let issuer = match (spec.mode, issuer) {
            (IdentityMode::Irsa, None) => {
                return Err(Error::NoOidcIssuer {
                    cluster: spec.cluster.clone(),
                });
            }
            (IdentityMode::Irsa, issuer) => issuer,
            (IdentityMode::PodIdentity, _) => None,
        };
        let cluster_read = cluster.and_then(|(issuer, arn)| {
            Some(ClusterIdentity {
                name: spec.cluster.clone(),
                region: region.clone(),
                arn: arn?,
                issuer: issuer.map(|i| i.url()),
            })
        });

        let role_arn = spec.role_arn(partition, &account);
        let policy_arn = spec.policy_arn(partition, &account);
        let provider_arn = issuer.as_ref().map(|i| i.provider_arn(partition, &account));
        let reannotated = !matches!(
            &service_account,
            Some(AccountSeen::Present { role_arn_annotation: Some(arn), .. }) if *arn == role_arn
        );
        let (policy_and_provider, association, policy_users, pods) = tokio::try_join!(
            async {
                match early {
                    Some(read) => Ok(read),
                    None => {
                        self.read_policy_and_provider(
                            spec,
                            purpose,
                            partition,
                            &account,
                            issuer.as_ref(),
                        )
                        .await
                    }
                }
            },
            async {
                match &association_id {
                    Some(Some(id)) => self.read_association(spec, id).await.map(Some),
                    Some(None) => Ok(Some(AssociationSeen::Missing)),
                    None => Ok(None),
                }
            },
            async {
                match purpose {
                    Purpose::Teardown => self.policy_users(&policy_arn).await,
                    _ => Ok(Vec::new()),
                }
            },
            async {
                match irsa && purpose == Purpose::Apply && reannotated {
                    true => self.pods_of(spec).await,
                    false => Ok(Vec::new()),
                }
            },
        )?;
        let (policy, provider) = policy_and_provider;

        let trust = match &issuer {
            Some(issuer) => spec.trust_policy(partition, &account, issuer),
            None => TrustPolicy::pod_identity(&spec.namespace, &spec.service_account),
        };
        let desired = Desired {
            permission: permission.document().clone(),
            trust: trust.document().clone(),
        };
        let seen = Seen {
            account,
            partition,
            role_arn,
            policy_arn,
            provider_arn,
            issuer: issuer.map(|i| i.url()),
            provider,
            policy,
            role,
            service_account,
            association,
            pods,
            policy_users,
            cluster_read,
            cluster_known: known_used,
        };
        Ok((seen, desired))
    }

    /// The policy and (with an issuer) the OIDC provider, read together: both need only the
    /// account and the issuer.
    async fn read_policy_and_provider(
        &self,
        spec: &IrsaSpec,
        purpose: Purpose,
        partition: Partition,
        account: &str,
        issuer: Option<&OidcIssuer>,
    ) -> Result<(PolicySeen, Option<ProviderSeen>)> {
        let permission = spec.permission_policy(partition);
        let policy_arn = spec.policy_arn(partition, account);
        tokio::try_join!(
            self.read_policy(&policy_arn, purpose, permission.document()),
            async {
                match issuer {
                    Some(issuer) => self
                        .read_provider(&issuer.provider_arn(partition, account))
                        .await
                        .map(Some),
                    None => Ok(None),
                }
            },
        )
    }

    /// The configured region and its partition: no call.
    fn region(&self) -> Result<(String, Partition)> {
        let region = self
            .sts
            .config()
            .region()
            .map(|r| r.as_ref().to_owned())
            .ok_or(Error::NoRegion)?;
        let partition = Partition::from_region(&region)?;
        Ok((region, partition))
    }

    async fn account(&self) -> Result<String> {
        let identity = self
            .sts
            .get_caller_identity()
            .send()
            .await
            .map_err(|e| aws_error("sts:GetCallerIdentity", "the caller", e))?;
        Ok(identity.account().unwrap_or_default().to_owned())
    }

    /// The cluster's identity as EKS returns it now (an ARN it does not give is empty).
    pub(crate) async fn cluster_identity(&self, spec: &IrsaSpec) -> Result<ClusterIdentity> {
        let (region, _) = self.region()?;
        let (issuer, arn) = self.describe_cluster(spec, &region).await?;
        Ok(ClusterIdentity {
            name: spec.cluster.clone(),
            region,
            arn: arn.unwrap_or_default(),
            issuer: issuer.map(|i| i.url()),
        })
    }

    /// The cluster's OIDC issuer (`None` when it has none) and its ARN.
    async fn describe_cluster(
        &self,
        spec: &IrsaSpec,
        region: &str,
    ) -> Result<(Option<OidcIssuer>, Option<String>)> {
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
                        region: region.to_owned(),
                    }
                } else {
                    aws_error("eks:DescribeCluster", &spec.cluster, e)
                }
            })?;
        let arn = out.cluster().and_then(|c| c.arn()).map(str::to_owned);
        let issuer = out
            .cluster()
            .and_then(|c| c.identity())
            .and_then(|i| i.oidc())
            .and_then(|o| o.issuer())
            .filter(|i| !i.is_empty());
        let issuer = match issuer {
            Some(issuer) => Some(OidcIssuer::parse(issuer)?),
            None => None,
        };
        Ok((issuer, arn))
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

    /// The policy, and what `purpose` needs of it besides: for apply, the default version's
    /// document unless the policy's tags say it is `wanted`, and the versions only when it is
    /// not (a new version will be made); for verify, the document as IAM has it; for
    /// teardown, the versions (read with the policy) and no document.
    async fn read_policy(
        &self,
        arn: &str,
        purpose: Purpose,
        wanted: &PolicyDocument,
    ) -> Result<PolicySeen> {
        let (policy, versions) = tokio::try_join!(
            async {
                match self.iam.get_policy().policy_arn(arn).send().await {
                    Ok(out) => Ok(out.policy),
                    Err(e) if is_not_found(&e) => Ok(None),
                    Err(e) => Err(aws_error("iam:GetPolicy", arn, e)),
                }
            },
            async {
                match purpose {
                    Purpose::Teardown => self.policy_versions(arn).await.map(Some),
                    Purpose::Apply | Purpose::Verify => Ok(None),
                }
            },
        )?;
        let Some(policy) = policy else {
            return Ok(PolicySeen::Missing);
        };
        let tags = tag_pairs(policy.tags());
        let default_version = policy.default_version_id().unwrap_or("v1").to_owned();
        let document = match purpose {
            Purpose::Teardown => None,
            Purpose::Apply if document_known(&tags, &default_version, wanted) => {
                Some(Box::new(wanted.clone()))
            }
            Purpose::Apply | Purpose::Verify => self.policy_document(arn, &default_version).await?,
        };
        let versions = match (versions, purpose) {
            (Some(versions), _) => versions,
            (None, Purpose::Apply) if !same_document(document.as_deref(), wanted) => {
                self.policy_versions(arn).await?
            }
            (None, _) => Vec::new(),
        };
        Ok(PolicySeen::Present {
            tags,
            default_version,
            document,
            versions,
        })
    }

    /// The document of the policy's version `version_id`; `None` when it is not readable
    /// policy JSON.
    async fn policy_document(
        &self,
        arn: &str,
        version_id: &str,
    ) -> Result<Option<Box<PolicyDocument>>> {
        let version = self
            .iam
            .get_policy_version()
            .policy_arn(arn)
            .version_id(version_id)
            .send()
            .await
            .map_err(|e| aws_error("iam:GetPolicyVersion", arn, e))?;
        Ok(version
            .policy_version()
            .and_then(|v| v.document())
            .and_then(|d| PolicyDocument::parse_iam(d).ok())
            .map(Box::new))
    }

    /// The policy's versions; none when the policy does not exist.
    async fn policy_versions(&self, arn: &str) -> Result<Vec<VersionSeen>> {
        let listed = self
            .iam
            .list_policy_versions()
            .policy_arn(arn)
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await;
        owned_or_none(listed, "iam:ListPolicyVersions", arn, |v| {
            Some(VersionSeen {
                id: v.version_id()?.to_owned(),
                is_default: v.is_default_version(),
            })
        })
    }

    /// The role, its attached policies and (for teardown) its inline policies, read at once.
    pub(crate) async fn read_role(&self, name: &str, inline: bool) -> Result<RoleSeen> {
        Ok(self.role_and_arn(name, inline).await?.0)
    }

    /// [`Irsa::read_role`], and the role's ARN when it exists.
    async fn role_and_arn(&self, name: &str, inline: bool) -> Result<(RoleSeen, Option<String>)> {
        let (role, attached, inline) = tokio::try_join!(
            async {
                match self.iam.get_role().role_name(name).send().await {
                    Ok(out) => Ok(out.role),
                    Err(e) if is_not_found(&e) => Ok(None),
                    Err(e) => Err(aws_error("iam:GetRole", name, e)),
                }
            },
            self.attached_policies(name),
            async {
                match inline {
                    true => self.inline_policies(name).await,
                    false => Ok(Vec::new()),
                }
            },
        )?;
        let Some(role) = role else {
            return Ok((RoleSeen::Missing, None));
        };
        let trust = role
            .assume_role_policy_document()
            .and_then(|d| PolicyDocument::parse_iam(d).ok())
            .map(Box::new);
        let seen = RoleSeen::Present {
            tags: tag_pairs(role.tags()),
            trust,
            attached,
            inline,
        };
        Ok((seen, Some(role.arn().to_owned())))
    }

    /// The ARNs of the role's attached policies; none when the role does not exist.
    async fn attached_policies(&self, role: &str) -> Result<Vec<String>> {
        let attached = self
            .iam
            .list_attached_role_policies()
            .role_name(role)
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await;
        owned_or_none(attached, "iam:ListAttachedRolePolicies", role, |p| {
            p.policy_arn().map(str::to_owned)
        })
    }

    async fn inline_policies(&self, role: &str) -> Result<Vec<String>> {
        let inline = self
            .iam
            .list_role_policies()
            .role_name(role)
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await;
        owned_or_none(inline, "iam:ListRolePolicies", role, |name| {
            Some(name.clone())
        })
    }

    async fn read_service_account(&self, spec: &IrsaSpec) -> Result<AccountSeen> {
        let api: Api<ServiceAccount> = Api::namespaced(self.kube.clone(), &spec.namespace);
        let account = api
            .get_opt(&spec.service_account)
            .await
            .map_err(|e| kube_error("get", &spec.account_name(), e))?;
        Ok(match account {
            None if !self.namespace_exists(&spec.namespace).await? => AccountSeen::NamespaceMissing,
            None => AccountSeen::Missing,
            Some(account) => AccountSeen::Present {
                resource_version: account.metadata.resource_version.unwrap_or_default(),
                uid: account.metadata.uid.unwrap_or_default(),
                role_arn_annotation: account
                    .metadata
                    .annotations
                    .and_then(|a| a.get(ROLE_ARN_ANNOTATION).cloned()),
            },
        })
    }

    /// Whether the namespace exists: one GET, sent only when the service account was not
    /// found. A caller not allowed to read namespaces (`403`) is told it exists.
    async fn namespace_exists(&self, namespace: &str) -> Result<bool> {
        let api: Api<Namespace> = Api::all(self.kube.clone());
        match api.get_opt(namespace).await {
            Ok(found) => Ok(found.is_some()),
            Err(kube::Error::Api(status)) if status.code == 403 => Ok(true),
            Err(e) => Err(kube_error("get namespace", namespace, e)),
        }
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

    /// The id of the service account's pod identity association, if there is one.
    async fn find_association(&self, spec: &IrsaSpec) -> Result<Option<String>> {
        let list = self
            .eks
            .list_pod_identity_associations()
            .cluster_name(&spec.cluster)
            .namespace(&spec.namespace)
            .service_account(&spec.service_account)
            .send()
            .await
            .map_err(|e| {
                aws_error(
                    "eks:ListPodIdentityAssociations",
                    &spec.association_name(),
                    e,
                )
            })?;
        Ok(list
            .associations()
            .iter()
            .find_map(|a| a.association_id())
            .map(str::to_owned))
    }

    async fn read_association(&self, spec: &IrsaSpec, id: &str) -> Result<AssociationSeen> {
        let described = self
            .eks
            .describe_pod_identity_association()
            .cluster_name(&spec.cluster)
            .association_id(id)
            .send()
            .await
            .map_err(|e| {
                aws_error(
                    "eks:DescribePodIdentityAssociation",
                    &spec.association_name(),
                    e,
                )
            })?;
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

    /// Who the policy is attached to (`role R`, `user U`, `group G`); none when the policy
    /// does not exist.
    async fn policy_users(&self, arn: &str) -> Result<Vec<String>> {
        let mut users = Vec::new();
        let mut pages = self
            .iam
            .list_entities_for_policy()
            .policy_arn(arn)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = match page {
                Ok(page) => page,
                Err(e) if is_not_found(&e) => return Ok(Vec::new()),
                Err(e) => return Err(aws_error("iam:ListEntitiesForPolicy", arn, e)),
            };
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

    /// The policy's default version id now: the guard of a new policy version.
    pub(crate) async fn default_version_now(&self, arn: &str) -> Result<Option<String>> {
        match self.iam.get_policy().policy_arn(arn).send().await {
            Ok(out) => Ok(out
                .policy()
                .and_then(|p| p.default_version_id())
                .map(str::to_owned)),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(aws_error("iam:GetPolicy", arn, e)),
        }
    }
}

fn tag_pairs(tags: &[Tag]) -> Vec<(String, String)> {
    tags.iter()
        .map(|t| (t.key().to_owned(), t.value().to_owned()))
        .collect()
}

//! `doctor`: the preconditions of a running job, checked from the configuration `deploy`
//! reads, without writing anything.
//!
//! Every read happens in one concurrent wave (the cluster's version, the FlinkDeployment API,
//! the nodes, irsa's verify, the service account's pods, the script's object, the registry).
//! What each answer means is decided by pure functions below, most of them the owning
//! crate's own: irsa judges the documents and the pods ([`flink_eks_irsa::Irsa::verify`],
//! [`flink_eks_irsa::stale_pods`]), submit the object ([`flink_eks_submit::UploadPlan`]),
//! image-builder the registry ([`flink_eks_image_builder::ImagePlan`]), manifest the pods'
//! node selector.

use std::collections::BTreeMap;
use std::fmt;

use anyhow::Result;
use flink_eks_irsa::{CheckKind, IdentityMode, StalePod, VerifyReport};
use flink_eks_plan::Action;
use flink_eks_submit::operator::{CRD_KIND, FLINK_API_VERSION, Fact, OperatorCheck};
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, ListParams};
use serde::Serialize;

use crate::clients::Remote;
use crate::error::{Failure, failure_of};
use crate::inputs::Inputs;

/// Which check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum CheckName {
    /// The Kubernetes API server answers.
    Cluster,
    /// The API server serves `flinkdeployments.flink.apache.org/v1beta1`.
    Crd,
    /// The operator's Deployment is found and watches the job's namespace.
    Operator,
    /// The service account exists and carries the role annotation (IRSA), or the pod identity
    /// association maps it to the role (Pod Identity).
    ServiceAccount,
    /// LocalSubjectAccessReviews say the service account may do what Flink's native mode does:
    /// the operator chart's job rules (pods, configmaps, deployments) in the namespace.
    Rbac,
    /// No pod running as the service account was made before it was given the role.
    Pods,
    /// The IAM OIDC provider of the cluster's issuer exists (IRSA).
    OidcProvider,
    /// The role's trust policy admits exactly the job's service account.
    TrustPolicy,
    /// The policy attached to the role grants `s3:GetObject` on the script.
    PermissionPolicy,
    /// The S3 object carries the local script's SHA-256.
    Script,
    /// The registry holds the image built from these inputs.
    Image,
    /// A schedulable node matches the pods' `kubernetes.io/arch` (and OS) selector.
    Nodes,
}

impl CheckName {
    /// The check's stable name, as JSON shows it.
    pub fn key(self) -> &'static str {
        match self {
            CheckName::Cluster => "cluster",
            CheckName::Crd => "crd",
            CheckName::Operator => "operator",
            CheckName::ServiceAccount => "service-account",
            CheckName::Rbac => "rbac",
            CheckName::Pods => "pods",
            CheckName::OidcProvider => "oidc-provider",
            CheckName::TrustPolicy => "trust-policy",
            CheckName::PermissionPolicy => "permission-policy",
            CheckName::Script => "script",
            CheckName::Image => "image",
            CheckName::Nodes => "nodes",
        }
    }

    /// Whether the check reads the cluster (and so cannot be made when it does not answer).
    fn reads_cluster(self) -> bool {
        matches!(
            self,
            CheckName::Crd
                | CheckName::Operator
                | CheckName::ServiceAccount
                | CheckName::Rbac
                | CheckName::Pods
                | CheckName::Nodes
        )
    }
}

impl fmt::Display for CheckName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CheckName::Cluster => "cluster reachable",
            CheckName::Crd => "FlinkDeployment CRD served",
            CheckName::Operator => "operator watches the namespace",
            CheckName::ServiceAccount => "service account carries the role",
            CheckName::Rbac => "service account may create pods and configmaps",
            CheckName::Pods => "no pods predate the role",
            CheckName::OidcProvider => "OIDC provider of the cluster's issuer",
            CheckName::TrustPolicy => "role trusts exactly this service account",
            CheckName::PermissionPolicy => "attached policy grants s3:GetObject on the script",
            CheckName::Script => "S3 object is the local script",
            CheckName::Image => "registry holds the image",
            CheckName::Nodes => "nodes of the image's platform",
        })
    }
}

/// What a check found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum Outcome {
    /// The precondition holds.
    Pass,
    /// It does not, or it could not be read.
    Fail {
        /// What is wrong, in one line.
        why: String,
        /// What to do about it.
        fix: String,
        /// The failure class: bad input (a precondition found unmet), authentication or a
        /// remote failure (the read could not be made).
        #[serde(skip)]
        class: Failure,
    },
    /// Not checked, and why (another check's failure, or the configuration rules it out).
    Skipped {
        /// Why it was not checked.
        why: String,
    },
}

/// One check of [`Report`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// Which check.
    pub name: CheckName,
    /// What it found.
    #[serde(flatten)]
    pub outcome: Outcome,
    /// What was read, for a passed check (a version, a digest, a count), else empty.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

impl Check {
    fn pass(name: CheckName, detail: impl Into<String>) -> Check {
        Check {
            name,
            outcome: Outcome::Pass,
            detail: detail.into(),
        }
    }

    fn fail(name: CheckName, why: impl Into<String>, fix: impl Into<String>) -> Check {
        Check {
            name,
            outcome: Outcome::Fail {
                why: why.into(),
                fix: fix.into(),
                class: Failure::BadInput,
            },
            detail: String::new(),
        }
    }

    fn skipped(name: CheckName, why: impl Into<String>) -> Check {
        Check {
            name,
            outcome: Outcome::Skipped { why: why.into() },
            detail: String::new(),
        }
    }

    /// A read that could not be made: its error on one line, classed (authentication or a
    /// remote failure), with `fix`.
    fn unread(name: CheckName, err: anyhow::Error, fix: impl Into<String>) -> Check {
        let class = failure_of(&err).unwrap_or(Failure::Remote);
        let why = format!("{err:#}");
        Check {
            name,
            outcome: Outcome::Fail {
                why,
                fix: fix.into(),
                class,
            },
            detail: String::new(),
        }
    }

    /// Whether the check failed.
    pub fn failed(&self) -> bool {
        matches!(self.outcome, Outcome::Fail { .. })
    }
}

impl fmt::Display for Check {
    /// `✓ name (detail)`, `✗ name — why; fix`, or `- name — skipped: why`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.outcome {
            Outcome::Pass if self.detail.is_empty() => write!(f, "✓ {}", self.name),
            Outcome::Pass => write!(f, "✓ {} ({})", self.name, self.detail),
            Outcome::Fail { why, fix, .. } => write!(f, "✗ {} — {why}; {fix}", self.name),
            Outcome::Skipped { why } => write!(f, "- {} — skipped: {why}", self.name),
        }
    }
}

/// Every check, in a fixed order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// The checks, in order.
    pub checks: Vec<Check>,
}

impl Report {
    /// Whether no check failed.
    pub fn is_ok(&self) -> bool {
        !self.checks.iter().any(Check::failed)
    }

    /// The class of the first failed check: its number is `cargo xtask doctor`'s exit code.
    pub fn failure(&self) -> Option<Failure> {
        self.checks.iter().find_map(|c| match &c.outcome {
            Outcome::Fail { class, .. } => Some(*class),
            _ => None,
        })
    }

    /// The check of `name`.
    pub fn check(&self, name: CheckName) -> Option<&Check> {
        self.checks.iter().find(|c| c.name == name)
    }

    /// The report as JSON: `{"ok": …, "checks": [{"name", "status", "why", "fix", "detail"}]}`.
    pub fn to_json(&self) -> String {
        let value = serde_json::json!({"ok": self.is_ok(), "checks": self.checks});
        serde_json::to_string_pretty(&value).unwrap_or_default()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for check in &self.checks {
            writeln!(f, "{check}")?;
        }
        Ok(())
    }
}

/// What the one wave of reads returned; each read's error is kept for its check.
struct Reads {
    version: Result<String>,
    operator: Result<OperatorCheck>,
    nodes: Result<Vec<Node>>,
    verify: Option<Result<VerifyReport>>,
    access: Result<flink_eks_rbac::Access>,
    pods: Option<Result<Vec<StalePod>>>,
    script: Result<flink_eks_submit::UploadPlan>,
    image: Result<flink_eks_image_builder::ImagePlan>,
}

/// Runs every check: one concurrent wave of reads, then the pure decisions. Makes no write.
/// A read that fails is that check's failure, not an error of the whole report.
pub async fn doctor(remote: &Remote, inputs: &Inputs) -> Result<Report> {
    let kube = remote
        .kube
        .clone()
        .ok_or_else(|| anyhow::anyhow!("doctor needs the cluster: connect with a kubeconfig"))?;
    let irsa = inputs
        .irsa
        .as_ref()
        .filter(|s| s.mode == IdentityMode::Irsa);
    let version = async {
        let info = kube.apiserver_version().await?;
        Ok::<_, anyhow::Error>(info.git_version)
    };
    let operator = async {
        let submitter = remote.submitter()?;
        Ok::<_, anyhow::Error>(submitter.check_operator(&inputs.namespace).await)
    };
    let nodes = async {
        let api: Api<Node> = Api::all(kube.clone());
        Ok::<_, anyhow::Error>(api.list(&ListParams::default()).await?.items)
    };
    let verify = async {
        let spec = inputs.irsa.as_ref()?;
        let verified = async { Ok::<_, anyhow::Error>(remote.irsa()?.verify(spec).await?) };
        Some(verified.await)
    };
    let access = async {
        let spec = flink_eks_rbac::RbacSpec::new(&inputs.namespace, &inputs.job.service_account);
        let rbac = flink_eks_rbac::Rbac::new(kube.clone());
        Ok::<_, anyhow::Error>(rbac.review(&spec).await?)
    };
    let pods = async {
        let spec = irsa?;
        let read = async {
            let read = remote.irsa()?.pods_of_account(spec).await?;
            Ok::<_, anyhow::Error>(flink_eks_irsa::stale_pods(&read))
        };
        Some(read.await)
    };
    let script = async {
        Ok::<_, anyhow::Error>(
            remote
                .uploader()
                .plan(&inputs.script.location, &inputs.script.bytes)
                .await?,
        )
    };
    let image = async {
        let credentials = remote.registry_credentials(&inputs.image).await?;
        Ok::<_, anyhow::Error>(
            flink_eks_image_builder::plan(&inputs.image, &inputs.context, &credentials).await?,
        )
    };
    let (version, operator, nodes, verify, access, pods, script, image) = tokio::join!(
        version, operator, nodes, verify, access, pods, script, image
    );
    let reads = Reads {
        version,
        operator,
        nodes,
        verify,
        access,
        pods,
        script,
        image,
    };
    Ok(decide(inputs, reads))
}

/// Every check from what was read. Pure.
fn decide(inputs: &Inputs, reads: Reads) -> Report {
    let mut checks = vec![cluster_check(reads.version)];
    match reads.operator {
        Ok(operator) => checks.extend(operator_checks(&operator)),
        Err(err) => {
            checks.push(Check::unread(
                CheckName::Crd,
                err,
                "check the kubeconfig and the cluster",
            ));
            checks.push(Check::skipped(
                CheckName::Operator,
                "the CRD could not be read",
            ));
        }
    }
    let mode = inputs.irsa.as_ref().map(|s| s.mode);
    checks.extend(identity_checks(mode, reads.verify));
    let account = format!("{}/{}", inputs.namespace, inputs.job.service_account);
    checks.insert(
        4,
        match reads.access {
            Ok(access) => rbac_check(&account, &access),
            Err(err) => Check::unread(
                CheckName::Rbac,
                err,
                "allow the caller to create LocalSubjectAccessReviews in the namespace (the \
                 `admin` ClusterRole may)",
            ),
        },
    );
    checks.push(match reads.pods {
        None => Check::skipped(CheckName::Pods, not_irsa(mode)),
        Some(Ok(stale)) => pods_check(&stale),
        Some(Err(err)) => Check::unread(
            CheckName::Pods,
            err,
            "allow the caller to list pods in the namespace",
        ),
    });
    checks.push(match reads.script {
        Ok(plan) => script_check(&plan),
        Err(err) => Check::unread(
            CheckName::Script,
            err,
            "check the AWS credentials and s3.bucket",
        ),
    });
    checks.push(match reads.image {
        Ok(plan) => image_check(&plan),
        Err(err) => Check::unread(
            CheckName::Image,
            err,
            "check image.repository and the registry credentials (docker login)",
        ),
    });
    let selector = node_selector(inputs);
    checks.push(match reads.nodes {
        Ok(nodes) => nodes_check(&selector, &nodes, &inputs.image.platform),
        Err(err) => Check::unread(
            CheckName::Nodes,
            err,
            "allow the caller to list nodes (kubectl auth can-i list nodes)",
        ),
    });
    // With the cluster silent, its checks say so once, on the cluster's line.
    if checks[0].failed() {
        for check in &mut checks[1..] {
            if check.name.reads_cluster() && check.outcome != Outcome::Pass {
                *check = Check::skipped(check.name, "the cluster did not answer");
            }
        }
    }
    Report { checks }
}

/// Why an IRSA check does not apply to `mode` (`None`: access keys from a Secret).
fn not_irsa(mode: Option<IdentityMode>) -> String {
    match mode {
        None => "irsa.mode is access-key-secret: no IAM role".to_owned(),
        Some(_) => "irsa.mode is pod-identity: pods get the role from the association".to_owned(),
    }
}

fn cluster_check(version: Result<String>) -> Check {
    match version {
        Ok(version) => Check::pass(CheckName::Cluster, format!("Kubernetes {version}")),
        Err(err) => Check::unread(
            CheckName::Cluster,
            err,
            "check KUBECONFIG and the context (--context), or run `aws eks update-kubeconfig --name CLUSTER`",
        ),
    }
}

/// submit's decision about the operator, as two lines: the CRD, and the operator watching
/// the namespace. A fact submit could not read is a skipped line with its reason.
fn operator_checks(operator: &OperatorCheck) -> Vec<Check> {
    let blocker = |kind: &str| operator.blockers.iter().find(|b| b.kind == kind);
    let crd = match (&operator.facts.crd_served, blocker(CRD_KIND)) {
        (_, Some(b)) => Check::fail(CheckName::Crd, b.reason.clone(), b.fix.clone()),
        (Fact::Known(true), None) => Check::pass(CheckName::Crd, FLINK_API_VERSION),
        (Fact::Unknown(why), None) => Check::skipped(CheckName::Crd, why.clone()),
        (Fact::Known(false), None) => Check::fail(
            CheckName::Crd,
            format!("the API server does not serve {FLINK_API_VERSION}"),
            flink_eks_submit::operator::INSTALL_OPERATOR,
        ),
    };
    let watching = match blocker(flink_eks_submit::operator::OPERATOR_KIND) {
        Some(b) => Check::fail(CheckName::Operator, b.reason.clone(), b.fix.clone()),
        None => match (&operator.facts.deployment, &operator.facts.watched) {
            (Fact::Known(Some(_)), Fact::Known(_)) => {
                Check::pass(CheckName::Operator, operator.facts.summary())
            }
            _ if crd.failed() => Check::skipped(CheckName::Operator, "the CRD is not served"),
            // Deploy only warns (the operator may run under other labels); doctor names it.
            (Fact::Known(None), _) => Check::fail(
                CheckName::Operator,
                format!(
                    "no operator Deployment labelled {} in any namespace: nothing reconciles a \
                     FlinkDeployment",
                    flink_eks_submit::operator::OPERATOR_SELECTOR
                ),
                flink_eks_submit::operator::INSTALL_OPERATOR,
            ),
            _ => Check::skipped(
                CheckName::Operator,
                operator
                    .warnings
                    .first()
                    .cloned()
                    .unwrap_or_else(|| operator.facts.summary()),
            ),
        },
    };
    vec![crd, watching]
}

/// irsa's verify, one line per doctor check: the annotation or association, the OIDC
/// provider, the trust policy, and the permission policy with its attachment.
fn identity_checks(mode: Option<IdentityMode>, verify: Option<Result<VerifyReport>>) -> Vec<Check> {
    let names = [
        CheckName::ServiceAccount,
        CheckName::OidcProvider,
        CheckName::TrustPolicy,
        CheckName::PermissionPolicy,
    ];
    let Some(verify) = verify else {
        return names
            .into_iter()
            .map(|n| Check::skipped(n, not_irsa(mode)))
            .collect();
    };
    let report = match verify {
        Ok(report) => report,
        Err(err) => {
            let line = Check::unread(
                CheckName::ServiceAccount,
                err,
                "check the AWS credentials, [irsa] cluster and region, and the kubeconfig",
            );
            let mut checks = vec![line];
            checks.extend(names[1..].iter().map(|n| {
                Check::skipped(
                    *n,
                    "irsa could not be read (see the service account's line)",
                )
            }));
            return checks;
        }
    };
    let irsa_fix = "run `cargo xtask irsa` (or `cargo xtask deploy`)";
    let of = |kinds: &[CheckKind]| -> Vec<&flink_eks_irsa::Check> {
        report
            .checks
            .iter()
            .filter(|c| kinds.contains(&c.kind))
            .collect()
    };
    let judge =
        |name: CheckName, kinds: &[CheckKind], fix: &dyn Fn(&flink_eks_irsa::Check) -> String| {
            let found = of(kinds);
            if found.is_empty() {
                return Check::skipped(name, not_irsa(mode));
            }
            match found.iter().find(|c| !c.ok) {
                None => Check::pass(name, found[0].found.clone()),
                Some(bad) => Check::fail(
                    name,
                    format!("expected {}, found {}", bad.expected, bad.found),
                    fix(bad),
                ),
            }
        };
    vec![
        judge(
            CheckName::ServiceAccount,
            &[CheckKind::Annotation, CheckKind::PodIdentityAssociation],
            &|bad| {
                if bad.found.contains("points at another role") {
                    format!("{irsa_fix} with --adopt to point it at this deployment's role")
                } else {
                    irsa_fix.to_owned()
                }
            },
        ),
        judge(CheckName::OidcProvider, &[CheckKind::OidcProvider], &|_| {
            format!("{irsa_fix}, which creates the provider for the cluster's issuer")
        }),
        judge(CheckName::TrustPolicy, &[CheckKind::TrustPolicy], &|_| {
            format!("{irsa_fix}, which corrects the trust policy")
        }),
        judge(
            CheckName::PermissionPolicy,
            &[CheckKind::AttachedPolicies, CheckKind::PermissionPolicy],
            &|_| format!("{irsa_fix}, which writes the policy's document and attaches it"),
        ),
    ]
}

fn rbac_check(account: &str, access: &flink_eks_rbac::Access) -> Check {
    match access {
        flink_eks_rbac::Access::Allowed => Check::pass(CheckName::Rbac, "the job rules"),
        flink_eks_rbac::Access::Missing(missing) => Check::fail(
            CheckName::Rbac,
            format!(
                "service account {account} may not {}: its JobManager cannot start TaskManagers",
                missing.join(", ")
            ),
            "run `cargo xtask deploy`, which gives it a Role and RoleBinding with the job rules",
        ),
        flink_eks_rbac::Access::Unknown(why) => Check::skipped(CheckName::Rbac, why.clone()),
        _ => Check::skipped(CheckName::Rbac, "the review's answer is not understood"),
    }
}

fn pods_check(stale: &[StalePod]) -> Check {
    if stale.is_empty() {
        return Check::pass(CheckName::Pods, "");
    }
    let names: Vec<String> = stale
        .iter()
        .map(|p| match (&p.created, &p.role_arn) {
            (Some(at), None) => format!("{} (created {at}, no web identity)", p.name),
            (_, Some(role)) => format!("{} (role {role})", p.name),
            (None, None) => format!("{} (no web identity)", p.name),
        })
        .collect();
    Check::fail(
        CheckName::Pods,
        format!(
            "pods started before the service account named its role: {}",
            names.join(", ")
        ),
        "delete them (kubectl delete pod …) or redeploy, so they are recreated with the role",
    )
}

fn script_check(plan: &flink_eks_submit::UploadPlan) -> Check {
    let location = plan.location();
    if let Some((why, fix)) = plan.bucket().problem(location.bucket()) {
        return Check::fail(CheckName::Script, why, fix);
    }
    let short = |sha: &str| sha.chars().take(12).collect::<String>();
    match (plan.action(), plan.found_sha256()) {
        (Action::NoChange, _) => Check::pass(
            CheckName::Script,
            format!("sha256 {}", short(plan.sha256())),
        ),
        (Action::Create, _) => Check::fail(
            CheckName::Script,
            format!("no object at {location}"),
            "run `cargo xtask upload` (or `cargo xtask deploy`)",
        ),
        (_, found) => Check::fail(
            CheckName::Script,
            format!(
                "{location} carries sha256 {}, the local script has {}",
                found.map_or_else(|| "none".to_owned(), short),
                short(plan.sha256())
            ),
            "run `cargo xtask upload` (or `cargo xtask deploy`) to send the local script",
        ),
    }
}

fn image_check(plan: &flink_eks_image_builder::ImagePlan) -> Check {
    match plan.action() {
        Action::NoChange => Check::pass(CheckName::Image, plan.image.clone()),
        Action::Create => Check::fail(
            CheckName::Image,
            format!("the registry has no {}", plan.image),
            "run `cargo xtask image` (or `cargo xtask deploy`) to build and push it",
        ),
        _ => Check::fail(
            CheckName::Image,
            format!("{} holds another build than these inputs", plan.image),
            "run `cargo xtask image` (or `cargo xtask deploy`) to build and push it",
        ),
    }
}

/// Whether a node takes pods: not cordoned, and not tainted `NoSchedule` or `NoExecute`
/// (the job's pods tolerate none).
fn schedulable(node: &Node) -> bool {
    let Some(spec) = &node.spec else {
        return true;
    };
    if spec.unschedulable == Some(true) {
        return false;
    }
    !spec
        .taints
        .iter()
        .flatten()
        .any(|t| t.effect == "NoSchedule" || t.effect == "NoExecute")
}

/// The `nodeSelector` of the JobManager's pod template, as manifest renders it (the image's
/// platform).
pub(crate) fn node_selector(inputs: &Inputs) -> BTreeMap<String, String> {
    inputs
        .deployment()
        .ok()
        .and_then(|d| d.spec.job_manager?.pod_template?.spec?.node_selector)
        .unwrap_or_default()
}

/// Whether a schedulable node matches `selector`; when none does, what was found and the fix.
pub(crate) fn nodes_check(
    selector: &BTreeMap<String, String>,
    nodes: &[Node],
    platform: &str,
) -> Check {
    let schedulable: Vec<&Node> = nodes.iter().filter(|n| schedulable(n)).collect();
    let matches = |node: &&&Node| {
        let labels = node.metadata.labels.as_ref();
        selector
            .iter()
            .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
    };
    let matching = schedulable.iter().filter(matches).count();
    if matching > 0 {
        return Check::pass(
            CheckName::Nodes,
            format!("{matching} of {} schedulable nodes", schedulable.len()),
        );
    }
    let arch = flink_eks_manifest::ARCH_NODE_LABEL;
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for node in &schedulable {
        let value = node
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(arch))
            .map_or("no label", String::as_str);
        *counts.entry(value.to_owned()).or_default() += 1;
    }
    let found = if counts.is_empty() {
        "no schedulable node".to_owned()
    } else {
        counts
            .iter()
            .map(|(arch, n)| format!("{n} × {arch}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let wanted = selector.get(arch).map_or("?", String::as_str);
    let other = counts.keys().find(|a| *a != "no label");
    let fix = match other {
        Some(other) => format!(
            "add {wanted} nodes, or set image.platform to linux/{other} (the image is built for {platform})"
        ),
        None => format!("add schedulable {wanted} nodes to the cluster"),
    };
    Check::fail(
        CheckName::Nodes,
        format!("no schedulable node has {arch}={wanted} (found: {found})"),
        fix,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{NodeSpec, Taint};
    use kube::api::ObjectMeta;

    fn node(arch: &str, unschedulable: bool) -> Node {
        Node {
            metadata: ObjectMeta {
                name: Some(format!("node-{arch}")),
                labels: Some(BTreeMap::from([
                    ("kubernetes.io/arch".to_owned(), arch.to_owned()),
                    ("kubernetes.io/os".to_owned(), "linux".to_owned()),
                ])),
                ..ObjectMeta::default()
            },
            spec: Some(NodeSpec {
                unschedulable: Some(unschedulable),
                ..NodeSpec::default()
            }),
            ..Node::default()
        }
    }

    fn amd64() -> BTreeMap<String, String> {
        BTreeMap::from([
            ("kubernetes.io/arch".to_owned(), "amd64".to_owned()),
            ("kubernetes.io/os".to_owned(), "linux".to_owned()),
        ])
    }

    #[test]
    fn nodes_pass_when_one_schedulable_node_matches_the_selector() {
        let check = nodes_check(
            &amd64(),
            &[node("arm64", false), node("amd64", false)],
            "linux/amd64",
        );
        assert_eq!(check.outcome, Outcome::Pass);
        assert_eq!(check.detail, "1 of 2 schedulable nodes");
    }

    #[test]
    fn nodes_of_another_arch_fail_naming_what_was_found_and_the_platform_to_set() {
        let check = nodes_check(
            &amd64(),
            &[node("arm64", false), node("amd64", true)],
            "linux/amd64",
        );
        let text = check.to_string();
        assert!(check.failed(), "{text}");
        assert!(
            text.contains("kubernetes.io/arch=amd64 (found: 1 × arm64)"),
            "{text}"
        );
        assert!(text.contains("set image.platform to linux/arm64"), "{text}");
    }

    #[test]
    fn a_tainted_node_takes_no_pods() {
        let mut tainted = node("amd64", false);
        tainted.spec.as_mut().unwrap().taints = Some(vec![Taint {
            effect: "NoSchedule".into(),
            key: "dedicated".into(),
            ..Taint::default()
        }]);
        assert!(nodes_check(&amd64(), &[tainted], "linux/amd64").failed());
        let none = nodes_check(&amd64(), &[], "linux/amd64");
        assert!(none.to_string().contains("no schedulable node"), "{none}");
    }

    #[test]
    fn the_operators_blockers_become_the_crd_and_operator_lines() {
        use flink_eks_submit::operator::{OperatorDeployment, OperatorFacts, Watched, check};
        let facts = |crd: bool, watched: Watched| OperatorFacts {
            crd_served: Fact::Known(crd),
            deployment: Fact::Known(Some(OperatorDeployment {
                namespace: "flink-operator".into(),
                name: "flink-kubernetes-operator".into(),
                version: Some("1.15.0".into()),
                replicas: 1,
            })),
            watched: Fact::Known(watched),
        };
        let green = operator_checks(&check(facts(true, Watched::All), "default"));
        assert!(
            green.iter().all(|c| c.outcome == Outcome::Pass),
            "{green:?}"
        );
        let other = operator_checks(&check(
            facts(true, Watched::Only(vec!["other".into()])),
            "default",
        ));
        let text = other[1].to_string();
        assert!(
            text.starts_with("✗ operator watches the namespace — "),
            "{text}"
        );
        assert!(text.contains("watchNamespaces"), "{text}");
        let absent = operator_checks(&check(facts(false, Watched::All), "default"));
        assert!(
            absent[0].failed() && absent[0].to_string().contains("helm install"),
            "{absent:?}"
        );
        let mut stopped = facts(true, Watched::All);
        if let Fact::Known(Some(d)) = &mut stopped.deployment {
            d.replicas = 0;
        }
        let stopped = operator_checks(&check(stopped, "default"));
        assert!(stopped[0].outcome == Outcome::Pass, "{stopped:?}");
        let text = stopped[1].to_string();
        assert!(text.contains("scaled to 0 replicas"), "{text}");
        assert!(text.contains("kubectl scale deployment"), "{text}");
        let mut missing = facts(true, Watched::All);
        missing.deployment = Fact::Known(None);
        missing.watched = Fact::Unknown("no operator Deployment found".into());
        let missing = operator_checks(&check(missing, "default"));
        let text = missing[1].to_string();
        assert!(
            text.starts_with("✗ operator watches the namespace — no operator Deployment labelled app.kubernetes.io/name=flink-kubernetes-operator"),
            "{text}"
        );
        assert!(text.contains("helm install"), "{text}");
    }

    #[test]
    fn missing_rules_fail_naming_the_account_and_each_verb_and_an_unknown_answer_skips() {
        let missing =
            flink_eks_rbac::Access::Missing(vec!["create pods".into(), "create configmaps".into()]);
        let text = rbac_check("streaming/runner", &missing).to_string();
        assert!(
            text.starts_with("✗ service account may create pods and configmaps — service account streaming/runner may not create pods, create configmaps"),
            "{text}"
        );
        assert!(text.contains("Role and RoleBinding"), "{text}");
        assert_eq!(
            rbac_check("a/b", &flink_eks_rbac::Access::Allowed).outcome,
            Outcome::Pass
        );
        let unknown = flink_eks_rbac::Access::Unknown(
            "the caller may not create LocalSubjectAccessReviews in namespace a".into(),
        );
        assert!(matches!(
            rbac_check("a/b", &unknown).outcome,
            Outcome::Skipped { .. }
        ));
    }

    #[test]
    fn stale_pods_fail_naming_each_pod_and_the_fix() {
        assert_eq!(pods_check(&[]).outcome, Outcome::Pass);
        let check = pods_check(&[StalePod {
            name: "job-jm-1".into(),
            created: Some("2026-01-01T00:00:00Z".into()),
            role_arn: None,
        }]);
        let text = check.to_string();
        assert!(
            text.contains("job-jm-1 (created 2026-01-01T00:00:00Z, no web identity)"),
            "{text}"
        );
        assert!(text.contains("delete them"), "{text}");
    }

    #[test]
    fn the_exit_class_is_the_first_failures_and_a_report_with_skips_only_is_ok() {
        let report = Report {
            checks: vec![
                Check::pass(CheckName::Cluster, "v1.30"),
                Check::skipped(CheckName::Pods, "pod-identity"),
                Check::unread(
                    CheckName::Image,
                    anyhow::anyhow!("boom").context(Failure::Auth),
                    "log in",
                ),
                Check::fail(CheckName::Nodes, "no node", "add one"),
            ],
        };
        assert!(!report.is_ok());
        assert_eq!(report.failure(), Some(Failure::Auth));
        let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
        assert_eq!(json["ok"], false);
        assert_eq!(json["checks"][0]["name"], "cluster");
        assert_eq!(json["checks"][0]["status"], "pass");
        assert_eq!(json["checks"][1]["status"], "skipped");
        assert_eq!(json["checks"][3]["status"], "fail");
        assert_eq!(json["checks"][3]["fix"], "add one");
        let ok = Report {
            checks: vec![Check::skipped(CheckName::Pods, "x")],
        };
        assert!(ok.is_ok() && ok.failure().is_none());
    }

    #[test]
    fn irsa_mismatches_become_the_doctor_line_with_irsas_expected_and_found() {
        let report = VerifyReport {
            checks: vec![
                flink_eks_irsa::Check {
                    kind: CheckKind::TrustPolicy,
                    ok: false,
                    expected: "{trust A}".into(),
                    found: "{trust B}".into(),
                },
                flink_eks_irsa::Check {
                    kind: CheckKind::AttachedPolicies,
                    ok: true,
                    expected: "p".into(),
                    found: "p".into(),
                },
                flink_eks_irsa::Check {
                    kind: CheckKind::PermissionPolicy,
                    ok: false,
                    expected: "{grant k}".into(),
                    found: "v2: {grant other}".into(),
                },
                flink_eks_irsa::Check {
                    kind: CheckKind::Annotation,
                    ok: true,
                    expected: "a".into(),
                    found: "eks.amazonaws.com/role-arn=arn".into(),
                },
            ],
        };
        let checks = identity_checks(Some(IdentityMode::Irsa), Some(Ok(report)));
        let line = |n: CheckName| checks.iter().find(|c| c.name == n).unwrap().to_string();
        assert_eq!(
            line(CheckName::ServiceAccount),
            "✓ service account carries the role (eks.amazonaws.com/role-arn=arn)"
        );
        assert!(line(CheckName::TrustPolicy).contains("expected {trust A}, found {trust B}"));
        assert!(line(CheckName::PermissionPolicy).contains("found v2: {grant other}"));
        assert!(line(CheckName::OidcProvider).starts_with("- "));
    }
}

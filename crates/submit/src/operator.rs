//! The Flink Kubernetes Operator as the cluster shows it, read before anything is written:
//! whether the FlinkDeployment CRD is served, which operator runs (its Deployment, found by
//! the Helm chart's labels) and which namespaces it watches (its ConfigMap
//! `flink-operator-config`). [`check`] decides, without IO, what blocks a deploy and what only
//! deserves a warning; [`Submitter::operator_facts`] reads the facts.
//!
//! The chart (operator 1.15) labels its Deployment `app.kubernetes.io/name=flink-kubernetes-operator`
//! and `app.kubernetes.io/version=<appVersion>`, and renders `watchNamespaces` into the
//! ConfigMap's `config.yaml` and `flink-conf.yaml` as `kubernetes.operator.watched.namespaces`
//! (a comma-separated list; absent, empty or `JOSDK_ALL_NAMESPACES` means every namespace).
//! A FlinkDeployment in a namespace the operator does not watch never gets a status.

use std::fmt;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams};
use serde::Serialize;

use crate::cluster::Submitter;
use crate::error::kube_message;

/// The operator's API group, as its CRDs serve FlinkDeployment and FlinkStateSnapshot.
pub const FLINK_API_GROUP: &str = "flink.apache.org";

/// The operator's API group and version.
pub const FLINK_API_VERSION: &str = "flink.apache.org/v1beta1";

/// The kind of the blocker for a FlinkDeployment CRD the cluster does not serve.
pub const CRD_KIND: &str = "flink-deployment-crd";

/// The label selector of the operator's Deployment, as the Helm chart sets it.
pub const OPERATOR_SELECTOR: &str = "app.kubernetes.io/name=flink-kubernetes-operator";

/// The label holding the operator's version (the chart's `appVersion`).
pub const OPERATOR_VERSION_LABEL: &str = "app.kubernetes.io/version";

/// The operator's configuration ConfigMap, in the operator's namespace.
pub const OPERATOR_CONFIG_MAP: &str = "flink-operator-config";

/// The configuration key listing the namespaces the operator watches.
pub const WATCHED_NAMESPACES_KEY: &str = "kubernetes.operator.watched.namespaces";

/// The value the operator reads as "every namespace" (`Constants.WATCH_ALL_NAMESPACES`).
const WATCH_ALL_NAMESPACES: &str = "JOSDK_ALL_NAMESPACES";

/// The kind of the plan's operator row and blockers.
pub const OPERATOR_KIND: &str = "flink-operator";

/// How to install the operator with its Helm chart.
pub const INSTALL_OPERATOR: &str = "install the Flink Kubernetes Operator: helm repo add \
     flink-operator-repo https://downloads.apache.org/flink/flink-kubernetes-operator-1.15.0/ && \
     helm install flink-kubernetes-operator flink-operator-repo/flink-kubernetes-operator \
     --namespace flink-operator --create-namespace (it needs cert-manager for its webhook, or \
     --set webhook.create=false)";

/// A fact the plan read, or why it could not read it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", content = "value", rename_all = "kebab-case")]
pub enum Fact<T> {
    /// What the cluster answered.
    Known(T),
    /// The cluster did not say (refused, 403, or no such object): why, in words.
    Unknown(String),
}

impl<T> Fact<T> {
    /// The value, when known.
    pub fn known(&self) -> Option<&T> {
        match self {
            Fact::Known(value) => Some(value),
            Fact::Unknown(_) => None,
        }
    }
}

/// The operator's Deployment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OperatorDeployment {
    /// Its namespace (the chart's release namespace, where its ConfigMap is).
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// The operator's version: the chart's version label, else the image tag (not `latest`).
    pub version: Option<String>,
    /// The replicas its spec asks for (`kubectl scale --replicas`): at 0 no operator runs and
    /// nothing reconciles a FlinkDeployment.
    pub replicas: i32,
}

impl fmt::Display for OperatorDeployment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// The namespaces the operator watches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "watches", content = "namespaces", rename_all = "kebab-case")]
pub enum Watched {
    /// Every namespace.
    All,
    /// Only these.
    Only(Vec<String>),
}

impl Watched {
    /// Whether a FlinkDeployment in `namespace` is reconciled.
    pub fn includes(&self, namespace: &str) -> bool {
        match self {
            Watched::All => true,
            Watched::Only(list) => list.iter().any(|n| n == namespace),
        }
    }
}

impl fmt::Display for Watched {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Watched::All => f.write_str("all namespaces"),
            Watched::Only(list) => write!(f, "only {}", list.join(", ")),
        }
    }
}

/// What the plan read about the operator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OperatorFacts {
    /// Whether the API server serves `flinkdeployments.flink.apache.org/v1beta1`.
    pub crd_served: Fact<bool>,
    /// The operator's Deployment (`Known(None)`: listed, none found).
    pub deployment: Fact<Option<OperatorDeployment>>,
    /// The namespaces it watches, from its ConfigMap.
    pub watched: Fact<Watched>,
}

impl OperatorFacts {
    /// One line: `operator 1.15.0 in flink-operator, watches all namespaces`.
    pub fn summary(&self) -> String {
        let operator = match &self.deployment {
            Fact::Known(Some(d)) => format!(
                "operator {} in {}",
                d.version.as_deref().unwrap_or("(version unknown)"),
                d.namespace
            ),
            Fact::Known(None) => format!("no operator Deployment ({OPERATOR_SELECTOR})"),
            Fact::Unknown(why) => format!("operator unknown ({why})"),
        };
        let watched = match &self.watched {
            Fact::Known(watched) => format!("watches {watched}"),
            Fact::Unknown(why) => format!("watched namespaces unknown ({why})"),
        };
        let crd = match &self.crd_served {
            Fact::Known(true) => String::new(),
            Fact::Known(false) => "FlinkDeployment CRD not served; ".to_owned(),
            Fact::Unknown(why) => format!("FlinkDeployment CRD unknown ({why}); "),
        };
        format!("{crd}{operator}, {watched}")
    }
}

/// A precondition about the operator found unmet: the deploy must not write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OperatorBlocker {
    /// `flink-deployment-crd` or `flink-operator`.
    pub kind: &'static str,
    /// The CRD's name, or the operator's `namespace/name`.
    pub name: String,
    /// What is wrong.
    pub reason: String,
    /// What to do.
    pub fix: String,
}

/// The decision about the operator for a FlinkDeployment in one namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OperatorCheck {
    /// The FlinkDeployment's namespace.
    pub namespace: String,
    /// What was read.
    pub facts: OperatorFacts,
    /// What blocks a deploy that writes.
    pub blockers: Vec<OperatorBlocker>,
    /// What could not be read or looks wrong without being sure: shown, not blocking.
    pub warnings: Vec<String>,
}

/// Decides from the facts what blocks a deploy into `namespace`: a CRD that is not served
/// (the operator is not installed), a namespace the operator does not watch. A fact that
/// could not be read is a warning, never a blocker.
pub fn check(facts: OperatorFacts, namespace: &str) -> OperatorCheck {
    let mut blockers = Vec::new();
    let mut warnings = Vec::new();
    match &facts.crd_served {
        Fact::Known(true) => {}
        Fact::Known(false) => blockers.push(OperatorBlocker {
            kind: CRD_KIND,
            name: "flinkdeployments.flink.apache.org".to_owned(),
            reason: format!(
                "the cluster does not serve FlinkDeployment ({FLINK_API_VERSION}): the Flink \
                 Kubernetes Operator is not installed"
            ),
            fix: INSTALL_OPERATOR.to_owned(),
        }),
        Fact::Unknown(why) => warnings.push(format!(
            "cannot tell whether the cluster serves FlinkDeployment: {why}"
        )),
    }
    let operator = facts.deployment.known().cloned().flatten();
    match (&facts.deployment, &facts.watched) {
        (Fact::Known(None), _) if facts.crd_served == Fact::Known(true) => warnings.push(format!(
            "no operator Deployment labelled {OPERATOR_SELECTOR} was found in any namespace; \
             if the operator runs under other labels, the deploy goes on, else {INSTALL_OPERATOR}"
        )),
        (Fact::Unknown(why), _) => warnings.push(format!(
            "cannot find the operator's Deployment ({why}): whether it watches namespace \
             {namespace} is not checked"
        )),
        (Fact::Known(Some(d)), Fact::Unknown(why)) => warnings.push(format!(
            "cannot read the operator's ConfigMap {}/{OPERATOR_CONFIG_MAP} ({why}): whether it \
             watches namespace {namespace} is not checked",
            d.namespace
        )),
        _ => {}
    }
    if let Some(operator) = operator.as_ref().filter(|d| d.replicas == 0) {
        blockers.push(OperatorBlocker {
            kind: OPERATOR_KIND,
            name: operator.to_string(),
            reason: format!(
                "the Flink Kubernetes Operator's Deployment {operator} is scaled to 0 replicas: \
                 nothing reconciles a FlinkDeployment, which would never get a status"
            ),
            fix: format!(
                "kubectl scale deployment {} -n {} --replicas=1",
                operator.name, operator.namespace
            ),
        });
    }
    if let (Some(operator), Fact::Known(Watched::Only(list))) = (&operator, &facts.watched)
        && !list.iter().any(|n| n == namespace)
    {
        let mut wanted = list.clone();
        wanted.push(namespace.to_owned());
        blockers.push(OperatorBlocker {
            kind: OPERATOR_KIND,
            name: operator.to_string(),
            reason: format!(
                "the Flink Kubernetes Operator {operator} watches only namespaces {}, not \
                 {namespace}: a FlinkDeployment there would never get a status",
                list.join(", ")
            ),
            fix: format!(
                "add {namespace} to the chart's watchNamespaces (helm upgrade <release> \
                 flink-operator-repo/flink-kubernetes-operator -n {} --reuse-values --set \
                 'watchNamespaces={{{}}}'), or set job.namespace to one of {}",
                operator.namespace,
                wanted.join(","),
                list.join(", ")
            ),
        });
    }
    OperatorCheck {
        namespace: namespace.to_owned(),
        facts,
        blockers,
        warnings,
    }
}

/// The namespaces a Flink configuration file (`config.yaml` or `flink-conf.yaml`, flat
/// `key: value` lines) makes the operator watch: the last line setting
/// [`WATCHED_NAMESPACES_KEY`] wins, as when Flink reads it; absent, empty or
/// `JOSDK_ALL_NAMESPACES` means all. A YAML flow list (`[a, b]`) is read too.
pub fn watched_namespaces(config: &str) -> Watched {
    let value = config
        .lines()
        .filter_map(|line| {
            let line = line.trim();
            let rest = line.strip_prefix(WATCHED_NAMESPACES_KEY)?;
            rest.trim_start().strip_prefix(':').map(str::trim)
        })
        .next_back();
    let Some(value) = value else {
        return Watched::All;
    };
    let value = value.split(" #").next().unwrap_or_default().trim();
    let value = value
        .strip_prefix('[')
        .and_then(|v| v.strip_suffix(']'))
        .unwrap_or(value);
    let list: Vec<String> = value
        .split(',')
        .map(|n| n.trim().trim_matches(|c| c == '"' || c == '\'').to_owned())
        .filter(|n| !n.is_empty())
        .collect();
    if list.is_empty() || list.iter().any(|n| n == WATCH_ALL_NAMESPACES) {
        Watched::All
    } else {
        Watched::Only(list)
    }
}

/// The operator's version from its Deployment: the chart's version label, else the tag of
/// its image when it is not `latest`.
fn version_of(deployment: &Deployment) -> Option<String> {
    if let Some(version) = deployment
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(OPERATOR_VERSION_LABEL))
        .filter(|v| !v.is_empty())
    {
        return Some(version.clone());
    }
    let containers = &deployment.spec.as_ref()?.template.spec.as_ref()?.containers;
    let image = containers
        .iter()
        .find(|c| c.name == "flink-kubernetes-operator")
        .or(containers.first())?
        .image
        .as_deref()?;
    let image = image.split('@').next().unwrap_or(image);
    let (_, tag) = image.rsplit_once(':')?;
    (!tag.contains('/') && tag != "latest").then(|| tag.to_owned())
}

/// Why a read gave no answer, in a few words.
fn unknown(what: &str, err: &kube::Error) -> String {
    match err {
        kube::Error::Api(status) if status.is_forbidden() => {
            format!("not allowed to {what}")
        }
        other => format!("cannot {what}: {}", kube_message(other)),
    }
}

impl Submitter {
    /// Reads what the cluster shows of the operator: the CRD's discovery, the operator's
    /// Deployment across namespaces (by [`OPERATOR_SELECTOR`]), then its ConfigMap. A read
    /// the credentials may not make gives [`Fact::Unknown`]; nothing here fails.
    pub async fn operator_facts(&self) -> OperatorFacts {
        let crd = async {
            match self
                .client()
                .list_api_group_resources(FLINK_API_VERSION)
                .await
            {
                Ok(list) => {
                    Fact::Known(list.resources.iter().any(|r| r.name == "flinkdeployments"))
                }
                Err(kube::Error::Api(status)) if status.code == 404 => Fact::Known(false),
                Err(err) => Fact::Unknown(unknown("read the API group flink.apache.org", &err)),
            }
        };
        let operator = async {
            let deployments: Api<Deployment> = Api::all(self.client().clone());
            let found = match deployments
                .list(&ListParams::default().labels(OPERATOR_SELECTOR))
                .await
            {
                Ok(list) => list.items,
                Err(err) => {
                    let why = unknown("list Deployments in all namespaces", &err);
                    return (Fact::Unknown(why.clone()), Fact::Unknown(why));
                }
            };
            let Some(deployment) = found
                .iter()
                .max_by_key(|d| d.status.as_ref().and_then(|s| s.ready_replicas))
            else {
                return (
                    Fact::Known(None),
                    Fact::Unknown("no operator Deployment found".to_owned()),
                );
            };
            let operator = OperatorDeployment {
                namespace: deployment.metadata.namespace.clone().unwrap_or_default(),
                name: deployment.metadata.name.clone().unwrap_or_default(),
                version: version_of(deployment),
                // The API server defaults an absent `spec.replicas` to 1.
                replicas: deployment
                    .spec
                    .as_ref()
                    .and_then(|s| s.replicas)
                    .unwrap_or(1),
            };
            let maps: Api<ConfigMap> = Api::namespaced(self.client().clone(), &operator.namespace);
            let watched = match maps.get_opt(OPERATOR_CONFIG_MAP).await {
                Ok(Some(map)) => {
                    let data = map.data.unwrap_or_default();
                    match data
                        .get("config.yaml")
                        .or_else(|| data.get("flink-conf.yaml"))
                    {
                        Some(text) => Fact::Known(watched_namespaces(text)),
                        None => Fact::Unknown(format!(
                            "{}/{OPERATOR_CONFIG_MAP} has neither config.yaml nor flink-conf.yaml",
                            operator.namespace
                        )),
                    }
                }
                Ok(None) => Fact::Unknown(format!(
                    "no ConfigMap {}/{OPERATOR_CONFIG_MAP}",
                    operator.namespace
                )),
                Err(err) => Fact::Unknown(unknown(
                    &format!(
                        "read ConfigMap {}/{OPERATOR_CONFIG_MAP}",
                        operator.namespace
                    ),
                    &err,
                )),
            };
            (Fact::Known(Some(operator)), watched)
        };
        let (crd_served, (deployment, watched)) = tokio::join!(crd, operator);
        OperatorFacts {
            crd_served,
            deployment,
            watched,
        }
    }

    /// [`Submitter::operator_facts`], decided for a FlinkDeployment in `namespace` ([`check`]).
    pub async fn check_operator(&self, namespace: &str) -> OperatorCheck {
        check(self.operator_facts().await, namespace)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn operator() -> Fact<Option<OperatorDeployment>> {
        Fact::Known(Some(OperatorDeployment {
            namespace: "flink-operator".into(),
            name: "flink-kubernetes-operator".into(),
            version: Some("1.15.0".into()),
            replicas: 1,
        }))
    }

    fn facts(crd: Fact<bool>, watched: Fact<Watched>) -> OperatorFacts {
        OperatorFacts {
            crd_served: crd,
            deployment: operator(),
            watched,
        }
    }

    #[test]
    fn an_operator_watching_all_namespaces_blocks_nothing_and_reads_as_one_line() {
        let all = check(
            facts(Fact::Known(true), Fact::Known(Watched::All)),
            "streaming",
        );
        assert!(
            all.blockers.is_empty() && all.warnings.is_empty(),
            "{all:?}"
        );
        assert_eq!(
            all.facts.summary(),
            "operator 1.15.0 in flink-operator, watches all namespaces"
        );
    }

    #[test]
    fn a_crd_not_served_blocks_with_the_helm_install() {
        let missing = check(
            OperatorFacts {
                crd_served: Fact::Known(false),
                deployment: Fact::Known(None),
                watched: Fact::Unknown("no operator Deployment found".into()),
            },
            "default",
        );
        assert_eq!(missing.blockers.len(), 1, "{missing:?}");
        assert_eq!(missing.blockers[0].kind, "flink-deployment-crd");
        assert!(missing.blockers[0].reason.contains("not installed"));
        assert!(
            missing.blockers[0]
                .fix
                .contains("helm install flink-kubernetes-operator")
        );
    }

    #[test]
    fn a_namespace_not_watched_blocks_naming_the_operator_the_list_and_the_fix() {
        let watched = Watched::Only(vec!["flink".into(), "team-a".into()]);
        let outside = check(facts(Fact::Known(true), Fact::Known(watched)), "streaming");
        assert_eq!(outside.blockers.len(), 1, "{outside:?}");
        let blocker = &outside.blockers[0];
        assert_eq!(blocker.kind, OPERATOR_KIND);
        assert_eq!(blocker.name, "flink-operator/flink-kubernetes-operator");
        assert!(
            blocker
                .reason
                .contains("watches only namespaces flink, team-a, not streaming"),
            "{}",
            blocker.reason
        );
        assert!(
            blocker
                .fix
                .contains("watchNamespaces={flink,team-a,streaming}"),
            "{}",
            blocker.fix
        );
        assert!(blocker.fix.contains("helm upgrade") && blocker.fix.contains("-n flink-operator"));
        let inside = check(
            facts(
                Fact::Known(true),
                Fact::Known(Watched::Only(vec!["streaming".into()])),
            ),
            "streaming",
        );
        assert!(inside.blockers.is_empty());
    }

    #[test]
    fn an_operator_scaled_to_zero_blocks_naming_the_deployment_and_the_scale_command() {
        let mut facts = facts(Fact::Known(true), Fact::Known(Watched::All));
        if let Fact::Known(Some(d)) = &mut facts.deployment {
            d.replicas = 0;
        }
        let stopped = check(facts, "default");
        assert_eq!(stopped.blockers.len(), 1, "{stopped:?}");
        let blocker = &stopped.blockers[0];
        assert_eq!(blocker.kind, OPERATOR_KIND);
        assert!(
            blocker
                .reason
                .contains("flink-operator/flink-kubernetes-operator is scaled to 0 replicas"),
            "{}",
            blocker.reason
        );
        assert_eq!(
            blocker.fix,
            "kubectl scale deployment flink-kubernetes-operator -n flink-operator --replicas=1"
        );
    }

    #[test]
    fn unreadable_facts_are_warnings_not_blockers() {
        let unknown = check(
            OperatorFacts {
                crd_served: Fact::Unknown("not allowed to read the API group".into()),
                deployment: Fact::Unknown("not allowed to list Deployments".into()),
                watched: Fact::Unknown("not allowed to list Deployments".into()),
            },
            "default",
        );
        assert!(unknown.blockers.is_empty());
        assert_eq!(unknown.warnings.len(), 2, "{:?}", unknown.warnings);
        let config = check_config_unreadable();
        assert!(config.blockers.is_empty());
        assert!(config.warnings[0].contains("flink-operator/flink-operator-config"));
        assert!(unknown.facts.summary().contains("operator unknown"));
    }

    fn check_config_unreadable() -> OperatorCheck {
        check(
            facts(
                Fact::Known(true),
                Fact::Unknown("not allowed to read it".into()),
            ),
            "default",
        )
    }

    #[test]
    fn watched_namespaces_are_read_as_the_operator_reads_its_configuration() {
        assert_eq!(
            watched_namespaces("kubernetes.operator.reconcile.interval: 15 s\n"),
            Watched::All
        );
        assert_eq!(
            watched_namespaces("a: b\n    kubernetes.operator.watched.namespaces: flink, team-a\n"),
            Watched::Only(vec!["flink".into(), "team-a".into()])
        );
        // The chart appends the Helm value after the defaults: the last line wins.
        assert_eq!(
            watched_namespaces(
                "kubernetes.operator.watched.namespaces: old\nkubernetes.operator.watched.namespaces: \"new\"\n"
            ),
            Watched::Only(vec!["new".into()])
        );
        assert_eq!(
            watched_namespaces("kubernetes.operator.watched.namespaces: JOSDK_ALL_NAMESPACES"),
            Watched::All
        );
        assert_eq!(
            watched_namespaces("kubernetes.operator.watched.namespaces:"),
            Watched::All
        );
        assert_eq!(
            watched_namespaces("kubernetes.operator.watched.namespaces: [a, b]"),
            Watched::Only(vec!["a".into(), "b".into()])
        );
    }

    #[test]
    fn the_version_is_the_chart_label_else_a_pinned_image_tag() {
        let mut deployment: Deployment = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "op", "labels": {"app.kubernetes.io/version": "1.15.0"}},
            "spec": {"selector": {}, "template": {"spec": {"containers": [
                {"name": "flink-kubernetes-operator", "image": "ghcr.io/apache/flink-kubernetes-operator:1.14.0"}
            ]}}}
        }))
        .unwrap();
        assert_eq!(version_of(&deployment).as_deref(), Some("1.15.0"));
        deployment.metadata.labels = None;
        assert_eq!(version_of(&deployment).as_deref(), Some("1.14.0"));
        deployment
            .spec
            .as_mut()
            .unwrap()
            .template
            .spec
            .as_mut()
            .unwrap()
            .containers[0]
            .image = Some("registry:5000/flink-kubernetes-operator:latest".into());
        assert_eq!(version_of(&deployment), None);
    }
}

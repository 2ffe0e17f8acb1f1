//! A Kubernetes API server stand-in for tests: an HTTP server on loopback that speaks the
//! Kubernetes API for what the flink-eks tools use, validates FlinkDeployments against the
//! Flink Kubernetes Operator's real CRD, and plays the operator's part.
//!
//! It serves core/v1 namespaces, serviceaccounts, pods (with `log`, following included),
//! events, services, configmaps and nodes, apps/v1 deployments, flink.apache.org/v1beta1
//! flinkdeployments (with `status`), RBAC (enforced, impersonation included) and access
//! reviews, and starts with what the operator's Helm chart installs, with the real API's
//! semantics: resourceVersion,
//! generation, uid, watches resumable from a revision (410 Gone when too old), label and
//! field selectors, JSON merge patch, server-side apply with field ownership, finalizers,
//! owner references, `Status` errors with the real codes, discovery and `Table` responses
//! for kubectl. Both kube-rs and `kubectl` work against it.
//!
//! ```no_run
//! use k8s_openapi::api::core::v1::Pod;
//! use kube::api::{Api, ListParams};
//! use kube_standin::{Config, Fault, StandIn};
//!
//! # async fn example() -> anyhow::Result<()> {
//! let standin = StandIn::start(Config::default()).await?;
//! let client = standin.client().await?;
//! standin.set_fault("default", "my-job", Fault::JobFailed { message: "boom".into() });
//! let pods: Api<Pod> = Api::default_namespaced(client);
//! let jobmanagers = pods.list(&ListParams::default().labels("component=jobmanager")).await?;
//! println!("{} JobManager pods; kubeconfig:\n{}", jobmanagers.items.len(), standin.kubeconfig_yaml());
//! # Ok(())
//! # }
//! ```
//!
//! The differences from a real API server are listed in the crate's README.
#![warn(missing_docs)]

mod api;
mod apply;
mod chart;
mod cluster;
mod discovery;
mod error;
mod escalation;
mod faults;
mod kubeconfig;
mod logs;
mod meta;
mod openapi;
mod patch;
mod protobuf;
mod rbac;
mod resources;
mod schema;
mod selector;
mod server;
mod store;
mod table;
mod watch;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::serve::ListenerExt as _;
use tokio_util::sync::CancellationToken;

pub use faults::{FAULT_ANNOTATION, Fault, JOB_OUTPUT_ANNOTATION, Stats, StatusChange};

/// The environment variable that overrides where the FlinkDeployment CRD is read from.
pub const CRD_ENV: &str = "FLINK_EKS_CRD";

/// The CRD's path when [`CRD_ENV`] is unset: `shared/crds/` beside the workspace.
const DEFAULT_CRD_PATH: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/crds/flinkdeployments.flink.apache.org-v1.yml"
);

/// The environment variable that overrides where the FlinkStateSnapshot CRD is read from.
pub const SNAPSHOT_CRD_ENV: &str = "FLINK_EKS_SNAPSHOT_CRD";

/// The snapshot CRD's path when [`SNAPSHOT_CRD_ENV`] is unset.
const DEFAULT_SNAPSHOT_CRD_PATH: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/crds/flinkstatesnapshots.flink.apache.org-v1.yml"
);

/// How to start a stand-in.
#[derive(Clone, Debug)]
pub struct Config {
    /// The FlinkDeployment CRD YAML. Default: `$FLINK_EKS_CRD`, else the copy in
    /// `shared/crds/` beside the workspace.
    pub crd_path: PathBuf,
    /// The FlinkStateSnapshot CRD YAML. Default: `$FLINK_EKS_SNAPSHOT_CRD`, else the copy in
    /// `shared/crds/` beside the workspace.
    pub snapshot_crd_path: PathBuf,
    /// The delay between the operator's status steps. Default: 50 ms.
    pub transition_delay: Duration,
    /// Whether the cluster starts with what `helm install flink-kubernetes-operator` creates
    /// (the CRDs, the operator's Deployment and ConfigMap, the job service account `flink`
    /// with its Role and RoleBinding). Default: true. Without it the operator never acts.
    pub operator_installed: bool,
    /// The namespace the operator is installed into. Default: `default`, as in the
    /// operator's quickstart.
    pub operator_namespace: String,
    /// The operator's `watchNamespaces` (rendered into `kubernetes.operator.watched.namespaces`
    /// of `flink-operator-config`); empty watches all namespaces. Default: empty.
    pub watched_namespaces: Vec<String>,
    /// The platforms (`os/arch`) of the cluster's nodes, one node each, labelled
    /// `kubernetes.io/os` and `kubernetes.io/arch`. Default: two `linux/amd64` nodes.
    pub nodes: Vec<String>,
}

impl Default for Config {
    fn default() -> Config {
        let crd_path = std::env::var_os(CRD_ENV)
            .filter(|p| !p.is_empty())
            .map_or_else(|| PathBuf::from(DEFAULT_CRD_PATH), PathBuf::from);
        let snapshot_crd_path = std::env::var_os(SNAPSHOT_CRD_ENV)
            .filter(|p| !p.is_empty())
            .map_or_else(|| PathBuf::from(DEFAULT_SNAPSHOT_CRD_PATH), PathBuf::from);
        Config {
            crd_path,
            snapshot_crd_path,
            transition_delay: Duration::from_millis(50),
            operator_installed: true,
            operator_namespace: "default".to_owned(),
            watched_namespaces: Vec::new(),
            nodes: cluster::scheduler::default_platforms(),
        }
    }
}

/// What the server, the operator and the watches share.
#[derive(Debug)]
pub(crate) struct Shared {
    api: Arc<api::ApiServer>,
    logs: logs::LogStore,
    faults: faults::Registry,
    config: Config,
    shutdown: CancellationToken,
    /// `127.0.0.1:PORT`.
    address: String,
}

/// A running stand-in. Dropping it stops the server, its watches and log streams, and the
/// operator.
#[derive(Debug)]
pub struct StandIn {
    shared: Arc<Shared>,
    addr: SocketAddr,
}

impl StandIn {
    /// Starts a stand-in on `127.0.0.1` on an ephemeral port, on the current Tokio runtime.
    pub async fn start(config: Config) -> anyhow::Result<StandIn> {
        StandIn::start_on(config, 0).await
    }

    /// Starts a stand-in on `127.0.0.1:port` (0 for an ephemeral port).
    pub async fn start_on(config: Config, port: u16) -> anyhow::Result<StandIn> {
        let schema = schema::CrdSchema::load(&config.crd_path)?;
        let snapshot_schema = schema::CrdSchema::load_for(
            &config.snapshot_crd_path,
            &resources::FLINK_STATE_SNAPSHOTS,
            SNAPSHOT_CRD_ENV,
        )?;
        let api =
            api::ApiServer::new(schema, snapshot_schema, store::DEFAULT_EVENT_LOG_CAPACITY)
                .map_err(|e| anyhow::anyhow!("cannot set up the initial objects: {}", e.message))?;
        let crds = [
            config.crd_path.as_path(),
            config.snapshot_crd_path.as_path(),
        ];
        let install = chart::Install {
            namespace: &config.operator_namespace,
            watched: &config.watched_namespaces,
            crds: &crds,
        };
        chart::populate(&api, config.operator_installed.then_some(&install))
            .map_err(|e| anyhow::anyhow!("cannot install the operator's chart: {}", e.message))?;
        cluster::scheduler::create_nodes(&api, &config.nodes)
            .map_err(|e| anyhow::anyhow!("cannot register the nodes: {}", e.message))?;
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, port))
            .await
            .with_context(|| format!("cannot listen on 127.0.0.1:{port}"))?;
        let addr = listener
            .local_addr()
            .context("cannot read the listening address")?;
        let shutdown = CancellationToken::new();
        let shared = Arc::new(Shared {
            api: Arc::new(api),
            logs: logs::LogStore::default(),
            faults: faults::Registry::default(),
            config,
            shutdown: shutdown.clone(),
            address: addr.to_string(),
        });
        let app = server::router(Arc::clone(&shared));
        let stop = shutdown.clone();
        // TCP_NODELAY, as the real API server (Go) has on every connection: without it, the
        // first event of a watch waits for the client's delayed ACK of the response head
        // (Nagle), some 40 ms that a real cluster does not add.
        let listener = listener.tap_io(|tcp| {
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!("cannot set TCP_NODELAY: {e}");
            }
        });
        tokio::spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(stop.cancelled_owned());
            if let Err(e) = serve.await {
                tracing::error!("kube-standin server failed: {e}");
            }
        });
        tokio::spawn(cluster::run(Arc::clone(&shared)));
        tracing::info!("kube-standin listening on http://{addr}");
        Ok(StandIn { shared, addr })
    }

    /// The server's URL: `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A kubeconfig for the server: context `kube-standin`, namespace `default`, no credentials.
    pub fn kubeconfig_yaml(&self) -> String {
        kubeconfig::render(&self.url())
    }

    /// The same kubeconfig acting as `user` in `groups` (its user's `as` and `as-groups`), for
    /// a test that plays a user without `system:masters`: kube-rs and kubectl send
    /// `Impersonate-User` and `Impersonate-Group`, and every request, access reviews
    /// included, is authorized as that user, whose writes of Roles and bindings meet the
    /// escalation checks. A user in no group is in `system:authenticated` only.
    ///
    /// ```rust,no_run
    /// # async fn example(standin: kube_standin::StandIn) -> anyhow::Result<()> {
    /// let yaml = standin.kubeconfig_yaml_as("jane", &["platform"]);
    /// let kubeconfig = kube::config::Kubeconfig::from_yaml(&yaml)?;
    /// let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await?;
    /// let jane = kube::Client::try_from(config)?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn kubeconfig_yaml_as(&self, user: &str, groups: &[&str]) -> String {
        kubeconfig::render_as(&self.url(), user, groups)
    }

    /// A kube-rs client for the server, default namespace `default`.
    pub async fn client(&self) -> anyhow::Result<kube::Client> {
        let uri: http::Uri = self
            .url()
            .parse()
            .context("the stand-in's URL is not a URI")?;
        let config = kube::Config::new(uri);
        kube::Client::try_from(config).context("cannot build a kube client for the stand-in")
    }

    /// Scripts a fault for the FlinkDeployment `namespace/name`: it applies to the
    /// generations reconciled from now on (and, for [`Fault::DropWatchAfter`], to watches
    /// started from now on), until [`StandIn::clear_faults`].
    pub fn set_fault(&self, namespace: &str, name: &str, fault: Fault) {
        self.shared.faults.set(namespace, name, fault);
    }

    /// Removes every scripted fault (annotations on FlinkDeployments still apply).
    pub fn clear_faults(&self) {
        self.shared.faults.clear();
    }

    /// The request counters since the start.
    pub fn stats(&self) -> Stats {
        self.shared.faults.stats()
    }

    /// The operator's recent status writes to FlinkDeployments, oldest first, each with the
    /// time it was stored (also served as JSON by `GET /standin/status-changes`).
    pub fn status_changes(&self) -> Vec<StatusChange> {
        self.shared.faults.status_changes()
    }

    /// Forgets the watch event log, as an etcd compaction does: watches and consistent lists
    /// from any earlier resourceVersion then get 410 Gone.
    pub fn compact(&self) {
        self.shared.api.store.compact();
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        self.shared.shutdown.cancel();
    }
}

/// The README's example, compiled as a doctest so that it stays true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

//! `kube-standin`: the stand-in as a process, for end-to-end tests of binaries.
//!
//! Binds 127.0.0.1, writes the kubeconfig, prints `listening on http://127.0.0.1:PORT` on
//! stdout, and runs until killed (SIGTERM or Ctrl-C).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use kube_standin::{Config, StandIn};

/// A Kubernetes API server stand-in playing the Flink Kubernetes Operator.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Port on 127.0.0.1; 0 picks a free one.
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Where to write the kubeconfig for clients.
    #[arg(long)]
    kubeconfig: PathBuf,
    /// The FlinkDeployment CRD YAML (default: $FLINK_EKS_CRD, else the workspace's shared copy).
    #[arg(long)]
    crd: Option<PathBuf>,
    /// Milliseconds between the operator's status steps.
    #[arg(long, default_value_t = 50)]
    transition_delay_ms: u64,
    /// Start without the operator's Helm chart (no CRD objects, operator, ConfigMap or job
    /// service account): FlinkDeployments then get no status.
    #[arg(long)]
    no_operator: bool,
    /// The namespace the operator's chart is installed into.
    #[arg(long, default_value = "default")]
    operator_namespace: String,
    /// A namespace the operator watches (repeat, or comma-separated); none: all namespaces.
    #[arg(long = "watch-namespace", value_delimiter = ',')]
    watch_namespaces: Vec<String>,
    /// A node's platform, `os/arch` (repeat, or comma-separated, one node each; default: two
    /// linux/amd64 nodes).
    #[arg(long = "node", value_delimiter = ',')]
    nodes: Vec<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let mut config = Config::default();
    if let Some(crd) = args.crd {
        config.crd_path = crd;
    }
    config.transition_delay = Duration::from_millis(args.transition_delay_ms);
    config.operator_installed = !args.no_operator;
    config.operator_namespace = args.operator_namespace;
    config.watched_namespaces = args.watch_namespaces;
    if !args.nodes.is_empty() {
        config.nodes = args.nodes;
    }
    let standin = StandIn::start_on(config, args.port).await?;
    std::fs::write(&args.kubeconfig, standin.kubeconfig_yaml()).with_context(|| {
        format!(
            "cannot write the kubeconfig to {}",
            args.kubeconfig.display()
        )
    })?;
    println!("listening on {}", standin.url());
    wait_for_termination().await?;
    drop(standin);
    Ok(())
}

async fn wait_for_termination() -> anyhow::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("cannot listen for SIGTERM")?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => result.context("cannot listen for Ctrl-C"),
        _ = term.recv() => Ok(()),
    }
}

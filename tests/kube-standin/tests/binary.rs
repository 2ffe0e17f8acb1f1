//! The stand-in as a process, as `cargo xtask test` starts it: the kubeconfig it writes, the
//! line it prints, and the `/standin/...` endpoints for faults and stats.

use std::process::Stdio;

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, ListParams};
use tokio::io::{AsyncBufReadExt, BufReader};

async fn request(client: &kube::Client, method: &str, path: &str, body: &str) -> String {
    let request = http::Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/json")
        .body(body.as_bytes().to_vec())
        .unwrap_or_else(|e| panic!("{e}"));
    client
        .request_text(request)
        .await
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
}

#[tokio::test]
async fn the_binary_writes_its_kubeconfig_and_serves_faults_and_stats() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let kubeconfig = dir.path().join("kubeconfig");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_kube-standin"))
        .args(["--port", "0", "--transition-delay-ms", "10", "--kubeconfig"])
        .arg(&kubeconfig)
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start kube-standin: {e}"));
    let stdout = child.stdout.take().unwrap_or_else(|| panic!("no stdout"));
    let mut lines = BufReader::new(stdout).lines();
    let first = tokio::time::timeout(std::time::Duration::from_secs(20), lines.next_line()).await;
    let first = match first {
        Ok(Ok(Some(line))) => line,
        other => panic!("kube-standin printed no first line: {other:?}"),
    };
    let url = first
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {first:?}"));
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");

    let config = kube::config::Kubeconfig::read_from(&kubeconfig).unwrap_or_else(|e| panic!("{e}"));
    let config =
        kube::Config::from_custom_kubeconfig(config, &kube::config::KubeConfigOptions::default())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.cluster_url.to_string().trim_end_matches('/'), url);
    assert_eq!(config.default_namespace, "default");
    let client = kube::Client::try_from(config).unwrap_or_else(|e| panic!("{e}"));
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let names: Vec<String> = namespaces
        .list(&ListParams::default())
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .items
        .into_iter()
        .filter_map(|n| n.metadata.name)
        .collect();
    assert!(names.contains(&"default".to_owned()), "{names:?}");

    request(
        &client,
        "PUT",
        "/standin/faults/default/job",
        r#"{"kind":"slow-transitions","millis":5}"#,
    )
    .await;
    request(&client, "DELETE", "/standin/faults", "").await;
    let stats: kube_standin::Stats =
        serde_json::from_str(&request(&client, "GET", "/standin/stats", "").await)
            .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(stats.writes, 0);

    child.kill().await.unwrap_or_else(|e| panic!("{e}"));
}

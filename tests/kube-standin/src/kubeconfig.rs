//! The kubeconfig file clients use to reach the stand-in.

/// The name of the cluster, user and context in the kubeconfig.
pub(crate) const CONTEXT: &str = "kube-standin";

/// A kubeconfig pointing at `url` (plain HTTP, no credentials), namespace `default`.
pub(crate) fn render(url: &str) -> String {
    format!(
        "apiVersion: v1
kind: Config
clusters:
- name: {CONTEXT}
  cluster:
    server: {url}
users:
- name: {CONTEXT}
  user: {{}}
contexts:
- name: {CONTEXT}
  context:
    cluster: {CONTEXT}
    user: {CONTEXT}
    namespace: default
current-context: {CONTEXT}
preferences: {{}}
"
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn kube_rs_reads_the_kubeconfig() {
        let yaml = super::render("http://127.0.0.1:1234");
        let config = kube::config::Kubeconfig::from_yaml(&yaml);
        let config = match config {
            Ok(c) => c,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(config.current_context.as_deref(), Some("kube-standin"));
        assert_eq!(
            config.clusters[0]
                .cluster
                .as_ref()
                .and_then(|c| c.server.as_deref()),
            Some("http://127.0.0.1:1234")
        );
    }
}

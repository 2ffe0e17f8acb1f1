//! The kubeconfig file clients use to reach the stand-in.

/// The name of the cluster, user and context in the kubeconfig.
pub(crate) const CONTEXT: &str = "kube-standin";

/// A kubeconfig pointing at `url` (plain HTTP, no credentials), namespace `default`.
pub(crate) fn render(url: &str) -> String {
    render_user(url, "{}")
}

/// The same kubeconfig whose user acts as `user` in `groups` (the kubeconfig's `as` and
/// `as-groups`): kube-rs and kubectl then send `Impersonate-User` and `Impersonate-Group`
/// with every request, and the stand-in answers as that user would be answered.
pub(crate) fn render_as(url: &str, user: &str, groups: &[&str]) -> String {
    let quote = |s: &str| serde_json::Value::String(s.to_owned()).to_string();
    let mut fields = vec![format!("as: {}", quote(user))];
    if !groups.is_empty() {
        let groups: Vec<String> = groups.iter().map(|g| quote(g)).collect();
        fields.push(format!("as-groups: [{}]", groups.join(", ")));
    }
    render_user(url, &format!("{{{}}}", fields.join(", ")))
}

fn render_user(url: &str, user: &str) -> String {
    format!(
        "apiVersion: v1
kind: Config
clusters:
- name: {CONTEXT}
  cluster:
    server: {url}
users:
- name: {CONTEXT}
  user: {user}
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

    #[test]
    fn a_kubeconfig_as_a_user_names_it_and_its_groups() {
        let yaml = super::render_as("http://127.0.0.1:1234", "jane", &["platform", "ops"]);
        let config = match kube::config::Kubeconfig::from_yaml(&yaml) {
            Ok(c) => c,
            Err(e) => panic!("{e}"),
        };
        let user = config.auth_infos[0].auth_info.clone().unwrap_or_default();
        assert_eq!(user.impersonate.as_deref(), Some("jane"));
        assert_eq!(
            user.impersonate_groups,
            Some(vec!["platform".to_owned(), "ops".to_owned()])
        );
    }
}

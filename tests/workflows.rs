//! The GitHub workflows are part of the product: actionlint (with shellcheck on the `run:`
//! scripts) must find nothing, and each workflow must do what the README promises.

use std::process::Command;

use flink_eks_tests::{service, workspace_root};

fn workflow(name: &str) -> String {
    let path = workspace_root().join(".github/workflows").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

#[test]
fn actionlint_finds_nothing() {
    let actionlint = service("FLINK_EKS_TEST_ACTIONLINT");
    let root = workspace_root();
    let mut files: Vec<_> = std::fs::read_dir(root.join(".github/workflows"))
        .expect("the workflows folder")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "yml" || e == "yaml"))
        .collect();
    files.sort();
    assert_eq!(
        files.len(),
        3,
        "expected ci.yml, deploy.yml and e2e.yml: {files:?}"
    );
    let out = Command::new(&actionlint)
        .current_dir(&root)
        .args(["-no-color", "-oneline"])
        .args(&files)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {actionlint}: {e}"));
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "actionlint found problems:\n{report}{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn ci_lints_and_runs_the_test_command() {
    let ci = workflow("ci.yml");
    assert!(
        ci.contains("cargo fmt --all --check"),
        "ci.yml checks formatting"
    );
    assert!(
        ci.contains("cargo clippy --workspace --all-targets -- -D warnings"),
        "ci.yml: clippy with warnings as errors"
    );
    assert!(ci.contains("xtask test"), "ci.yml runs cargo xtask test");
}

#[test]
fn deploy_uses_oidc_credentials_and_the_cluster_kubeconfig() {
    let deploy = workflow("deploy.yml");
    assert!(
        deploy.contains("id-token: write"),
        "deploy.yml asks GitHub for an OIDC token"
    );
    assert!(
        deploy.contains("aws-actions/configure-aws-credentials"),
        "deploy.yml exchanges it for AWS credentials"
    );
    assert!(
        deploy.contains("role-to-assume: ${{ vars.AWS_ROLE_ARN }}"),
        "the role comes from a repository variable"
    );
    assert!(
        deploy.contains("aws eks update-kubeconfig"),
        "deploy.yml writes the kubeconfig"
    );
    assert!(
        deploy.contains("cargo xtask deploy --config"),
        "deploy.yml runs the deploy"
    );
    assert!(
        !deploy.contains("AWS_SECRET_ACCESS_KEY"),
        "no static keys in the deploy pipeline"
    );
    // A pull request gets the live plan, read only, as its job summary; nothing is applied.
    let plan_job = deploy
        .split("\n  deploy:\n")
        .next()
        .expect("deploy.yml has jobs");
    assert!(
        deploy.contains("pull_request:"),
        "deploy.yml runs on pull requests"
    );
    assert!(
        plan_job.contains("cargo xtask deploy --plan")
            && plan_job.contains("GITHUB_STEP_SUMMARY")
            && plan_job.contains("github.event_name == 'pull_request'"),
        "the pull request job shows the live plan as the job summary"
    );
    assert!(
        !plan_job.contains("cargo xtask deploy --config"),
        "the pull request job applies nothing"
    );
}

#[test]
fn e2e_runs_the_operator_on_kind_with_minio_and_access_keys() {
    let e2e = workflow("e2e.yml");
    for needle in [
        "helm/kind-action",
        "flink-kubernetes-operator",
        "kind load docker-image",
        "minio",
        "cargo xtask deploy --config .github/e2e/deploy.toml",
    ] {
        assert!(e2e.contains(needle), "e2e.yml lacks {needle:?}");
    }
    let config = std::fs::read_to_string(workspace_root().join(".github/e2e/deploy.toml"))
        .expect("e2e deploy.toml");
    assert!(
        config.contains("mode = \"access-key-secret\""),
        "the e2e deployment uses the access-key Secret"
    );
}

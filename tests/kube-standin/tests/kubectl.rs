//! The stand-in through the real `kubectl`, a second client independent of kube-rs:
//! `apply --server-side`, `get` with the CRD's printer columns, `logs deploy/...`,
//! `annotate`, and the CRD's rejections as kubectl prints them.
//!
//! kubectl must be installed (it is on the developers' machines and CI's); set `KUBECTL`
//! to use another binary than the one on `PATH`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use common::*;
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::api::Api;
use kube_standin::StandIn;

/// A kubectl bound to one stand-in through a temporary kubeconfig and discovery cache.
struct Kubectl {
    binary: PathBuf,
    dir: tempfile::TempDir,
}

impl Kubectl {
    fn new(standin: &StandIn) -> Kubectl {
        let binary = find_kubectl();
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("no temp dir: {e}"));
        std::fs::write(dir.path().join("kubeconfig"), standin.kubeconfig_yaml())
            .unwrap_or_else(|e| panic!("{e}"));
        Kubectl { binary, dir }
    }

    fn file(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, contents).unwrap_or_else(|e| panic!("cannot write {name}: {e}"));
        path
    }

    fn command(&self, args: &[&str]) -> tokio::process::Command {
        let kubeconfig = self.dir.path().join("kubeconfig");
        let cache = self.dir.path().join("cache");
        let mut command = tokio::process::Command::new(&self.binary);
        command
            .arg(format!("--kubeconfig={}", kubeconfig.display()))
            .arg(format!("--cache-dir={}", cache.display()))
            .args(args)
            .env("KUBECONFIG", &kubeconfig)
            .env("HOME", self.dir.path())
            .kill_on_drop(true);
        command
    }

    /// Starts kubectl with its stdout piped, for commands that keep running (`logs -f`).
    fn spawn(&self, args: &[&str]) -> tokio::process::Child {
        self.command(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("kubectl {args:?} did not start: {e}"))
    }

    async fn run(&self, args: &[&str]) -> Output {
        let run = self.command(args).output();
        match tokio::time::timeout(PATIENCE, run).await {
            Ok(Ok(output)) => output,
            Ok(Err(e)) => panic!("kubectl {args:?} did not run: {e}"),
            Err(_) => panic!("kubectl {args:?} did not finish in time"),
        }
    }

    /// Runs kubectl and returns its stdout, failing the test when it fails.
    async fn ok(&self, args: &[&str]) -> String {
        let output = self.run(args).await;
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success(),
            "kubectl {args:?} failed ({}):\n{stdout}\n{stderr}",
            output.status
        );
        stdout
    }

    /// Runs kubectl expecting a failure and returns its stderr.
    async fn fails(&self, args: &[&str]) -> String {
        let output = self.run(args).await;
        assert!(
            !output.status.success(),
            "kubectl {args:?} succeeded: {}",
            String::from_utf8_lossy(&output.stdout)
        );
        String::from_utf8_lossy(&output.stderr).into_owned()
    }
}

fn find_kubectl() -> PathBuf {
    if let Some(path) = std::env::var_os("KUBECTL").filter(|p| !p.is_empty()) {
        return PathBuf::from(path);
    }
    let found = std::env::var_os("PATH").map(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("kubectl"))
            .find(|p| is_executable(p))
    });
    match found.flatten() {
        Some(path) => path,
        None => panic!(
            "kubectl is not installed (not on PATH, KUBECTL unset): these tests run the real kubectl against the \
             stand-in; install kubectl (it is on the developers' and CI's machines) or set KUBECTL to its path"
        ),
    }
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn yaml(manifest: &serde_json::Value) -> String {
    // JSON is YAML; kubectl reads either.
    serde_json::to_string_pretty(manifest).unwrap_or_default()
}

#[tokio::test]
async fn kubectl_applies_gets_follows_logs_and_annotates() {
    let standin = start().await;
    let kubectl = Kubectl::new(&standin);
    let manifest = kubectl.file("word-count.yaml", &yaml(&flink_deployment("word-count")));
    let manifest = manifest.to_string_lossy().into_owned();

    let out = kubectl
        .ok(&["apply", "--server-side", "-f", &manifest])
        .await;
    assert_eq!(
        out.trim(),
        "flinkdeployment.flink.apache.org/word-count serverside-applied"
    );

    // `kubectl get` prints the CRD's printer columns until the job is running and stable.
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let table = loop {
        let table = kubectl.ok(&["get", "flinkdeployments"]).await;
        if table.contains("STABLE") || tokio::time::Instant::now() > deadline {
            break table;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let lines: Vec<Vec<&str>> = table
        .lines()
        .map(|l| {
            l.split("  ")
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .collect()
        })
        .collect();
    assert_eq!(
        lines[0],
        ["NAME", "JOB STATUS", "LIFECYCLE STATE", "AGE"],
        "{table}"
    );
    assert_eq!(
        &lines[1][..3],
        ["word-count", "RUNNING", "STABLE"],
        "{table}"
    );
    let short = kubectl
        .ok(&[
            "get",
            "flinkdep",
            "word-count",
            "-o",
            "jsonpath={.status.jobManagerDeploymentStatus}",
        ])
        .await;
    assert_eq!(short, "READY");

    // The JobManager's log through the Deployment, as a user checks it after a deploy.
    let log = kubectl.ok(&["logs", "deploy/word-count"]).await;
    assert!(
        log.contains("Program Arguments: -py /opt/flink/usrlib/word_count.py"),
        "{log}"
    );
    assert!(
        log.contains("switched from state CREATED to RUNNING"),
        "{log}"
    );
    let fetch = kubectl
        .ok(&["logs", "deploy/word-count", "-c", "fetch-script"])
        .await;
    assert_eq!(
        fetch.trim(),
        "download: s3://jobs-bucket/jobs/word_count.py to /opt/flink/usrlib/word_count.py"
    );

    // A second identical apply changes nothing.
    kubectl
        .ok(&["apply", "--server-side", "-f", &manifest])
        .await;
    let generation = kubectl
        .ok(&[
            "get",
            "flinkdeployment",
            "word-count",
            "-o",
            "jsonpath={.metadata.generation}",
        ])
        .await;
    assert_eq!(generation, "1");

    // Annotating the service account, read back through kube-rs.
    let role = "eks.amazonaws.com/role-arn=arn:aws:iam::123456789012:role/flink-s3";
    let out = kubectl
        .ok(&["annotate", "serviceaccount", "flink", role])
        .await;
    assert_eq!(out.trim(), "serviceaccount/flink annotated");
    let refused = kubectl
        .fails(&[
            "annotate",
            "serviceaccount",
            "flink",
            "eks.amazonaws.com/role-arn=other",
        ])
        .await;
    assert!(refused.contains("--overwrite is false"), "{refused}");
    let accounts: Api<ServiceAccount> = Api::default_namespaced(client(&standin).await);
    let sa = accounts
        .get("flink")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let annotation = sa
        .metadata
        .annotations
        .and_then(|a| a.get("eks.amazonaws.com/role-arn").cloned());
    assert_eq!(
        annotation.as_deref(),
        Some("arn:aws:iam::123456789012:role/flink-s3")
    );

    // Following the log ends when the deployment is deleted (kubectl waits for the finalizer).
    let mut follow = kubectl.spawn(&["logs", "-f", "deploy/word-count"]);
    let stdout = follow.stdout.take().unwrap_or_else(|| panic!("no stdout"));
    let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(stdout));
    let running = tokio::time::timeout(PATIENCE, async {
        while let Ok(Some(line)) = lines.next_line().await {
            if line.contains("switched from state CREATED to RUNNING") {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(
        running.ok(),
        Some(true),
        "kubectl logs -f did not show the job running"
    );
    let deleted = kubectl.ok(&["delete", "-f", &manifest]).await;
    assert!(deleted.contains("\"word-count\" deleted"), "{deleted}");
    let ended = tokio::time::timeout(PATIENCE, follow.wait()).await;
    assert!(
        matches!(ended, Ok(Ok(status)) if status.success()),
        "kubectl logs -f did not end with the pod: {ended:?}"
    );
    // The operator's own Deployment (the Helm chart's, in `default`) stays.
    let left = kubectl
        .ok(&["get", "pods,deployments,flinkdeployments", "-o", "name"])
        .await;
    assert_eq!(
        left.trim(),
        "deployment.apps/flink-kubernetes-operator",
        "left behind: {left}"
    );
}

#[tokio::test]
async fn kubectl_prints_the_crd_rejections() {
    let standin = start().await;
    let kubectl = Kubectl::new(&standin);
    let mut bad = flink_deployment("bad");
    bad["spec"]["flinkVersion"] = serde_json::json!("v1_99");
    bad["spec"]["job"]["parallelism"] = serde_json::json!("one");
    let bad = kubectl.file("bad.yaml", &yaml(&bad));
    let err = kubectl
        .fails(&["apply", "--server-side", "-f", &bad.to_string_lossy()])
        .await;
    assert!(
        err.contains("The FlinkDeployment \"bad\" is invalid"),
        "{err}"
    );
    assert!(
        err.contains("spec.flinkVersion: Unsupported value: \"v1_99\""),
        "{err}"
    );
    assert!(
        err.contains("spec.job.parallelism: Invalid value: \"string\""),
        "{err}"
    );

    let mut unknown = flink_deployment("unknown");
    unknown["spec"]["jobManger"] = serde_json::json!({"replicas": 1});
    let unknown = kubectl.file("unknown.yaml", &yaml(&unknown));
    let err = kubectl
        .fails(&["apply", "--server-side", "-f", &unknown.to_string_lossy()])
        .await;
    assert!(
        err.contains(".spec.jobManger: field not declared in schema"),
        "{err}"
    );
    let err = kubectl
        .fails(&["create", "-f", &unknown.to_string_lossy()])
        .await;
    assert!(
        err.contains("strict decoding error: unknown field \"spec.jobManger\""),
        "{err}"
    );

    let none = kubectl.ok(&["get", "flinkdeployments"]).await;
    let err_none = kubectl.run(&["get", "flinkdeployments"]).await;
    assert!(none.is_empty(), "{none}");
    assert!(
        String::from_utf8_lossy(&err_none.stderr)
            .contains("No resources found in default namespace.")
    );
}

#[tokio::test]
async fn kubectl_server_side_apply_stops_at_conflicts_stale_versions_and_existing_objects() {
    let standin = start().await;
    let kubectl = Kubectl::new(&standin);
    let fds = flink_api(&client(&standin).await);
    let planned = apply(&fds, &flink_deployment("shared"))
        .await
        .unwrap_or_else(|e| panic!("apply: {e}"));

    // Another manager's field, without --force-conflicts: refused, with kubectl's advice.
    let mut changed = flink_deployment("shared");
    changed["spec"]["image"] = serde_json::json!("registry.example/flink-s3:2");
    let file = kubectl.file("shared.yaml", &yaml(&changed));
    let file = file.to_string_lossy().into_owned();
    let err = kubectl
        .fails(&["apply", "--server-side", "-f", &file])
        .await;
    assert!(
        err.contains(
            "Apply failed with 1 conflict: conflict with \"flink-eks\" using flink.apache.org/v1beta1: .spec.image"
        ) && err.contains("--force-conflicts"),
        "{err}"
    );
    let image = [
        "get",
        "flinkdeployment",
        "shared",
        "-o",
        "jsonpath={.spec.image}",
    ];
    assert_eq!(kubectl.ok(&image).await, "registry.example/flink-s3:1.20");
    let out = kubectl
        .ok(&["apply", "--server-side", "--force-conflicts", "-f", &file])
        .await;
    assert_eq!(
        out.trim(),
        "flinkdeployment.flink.apache.org/shared serverside-applied"
    );
    assert_eq!(kubectl.ok(&image).await, "registry.example/flink-s3:2");

    // A manifest carrying the resourceVersion it was read at, since changed: refused.
    let mut stale = changed.clone();
    stale["spec"]["image"] = serde_json::json!("registry.example/flink-s3:3");
    stale["metadata"]["resourceVersion"] = serde_json::json!(planned.metadata.resource_version);
    let stale = kubectl.file("stale.yaml", &yaml(&stale));
    let err = kubectl
        .fails(&[
            "apply",
            "--server-side",
            "--force-conflicts",
            "-f",
            &stale.to_string_lossy(),
        ])
        .await;
    assert!(
        err.contains(
            "Operation cannot be fulfilled on flinkdeployments.flink.apache.org \"shared\": the object has been modified"
        ),
        "{err}"
    );
    assert_eq!(kubectl.ok(&image).await, "registry.example/flink-s3:2");

    // The service account the operator's chart made: its labels belong to helm.
    let account = serde_json::json!({
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": "flink", "namespace": "default", "labels": {
            "app.kubernetes.io/managed-by": "flink-eks",
        }},
    });
    let account = kubectl.file("flink-sa.yaml", &yaml(&account));
    let account = account.to_string_lossy().into_owned();
    let err = kubectl
        .fails(&["apply", "--server-side", "-f", &account])
        .await;
    assert!(
        err.contains("Apply failed with 1 conflict: conflict with \"helm\" using v1 at ")
            && err.contains(": .metadata.labels.app.kubernetes.io/managed-by"),
        "{err}"
    );
    let err = kubectl.fails(&["create", "-f", &account]).await;
    assert!(
        err.contains("(AlreadyExists)") && err.contains("serviceaccounts \"flink\" already exists"),
        "{err}"
    );
    let managed_by = kubectl
        .ok(&[
            "get",
            "serviceaccount",
            "flink",
            "-o",
            "jsonpath={.metadata.labels.app\\.kubernetes\\.io/managed-by}",
        ])
        .await;
    assert_eq!(managed_by, "Helm");
}

#[tokio::test]
async fn kubectl_auth_can_i_and_impersonation_answer_from_rbac() {
    let standin = start().await;
    let kubectl = Kubectl::new(&standin);
    let flink = "system:serviceaccount:default:flink";
    let runner = "system:serviceaccount:default:flink-runner";

    // The chart's job account may create pods and configmaps in its namespace; others may not.
    let yes = kubectl
        .ok(&["auth", "can-i", "create", "pods", "--as", flink])
        .await;
    assert_eq!(yes.trim(), "yes");
    let no = kubectl
        .run(&["auth", "can-i", "create", "pods", "--as", runner])
        .await;
    assert_eq!(String::from_utf8_lossy(&no.stdout).trim(), "no");
    assert!(!no.status.success(), "can-i answers no with exit code 1");
    let no_secrets = kubectl
        .run(&["auth", "can-i", "get", "secrets", "--as", flink])
        .await;
    assert_eq!(String::from_utf8_lossy(&no_secrets.stdout).trim(), "no");
    let elsewhere = kubectl
        .run(&[
            "auth",
            "can-i",
            "create",
            "pods",
            "-n",
            "kube-system",
            "--as",
            flink,
        ])
        .await;
    assert_eq!(String::from_utf8_lossy(&elsewhere.stdout).trim(), "no");

    // A request as the account is refused with the API server's sentence.
    let refused = kubectl.fails(&["get", "pods", "--as", runner]).await;
    assert!(
        refused.contains(
            "pods is forbidden: User \"system:serviceaccount:default:flink-runner\" cannot list resource \"pods\" in API group \"\" in the namespace \"default\""
        ),
        "{refused}"
    );
    let before = standin.stats();

    // A Role and RoleBinding grant it.
    let rbac = kubectl.file(
        "rbac.yaml",
        &format!(
            "{}\n---\n{}\n",
            yaml(&serde_json::json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                "metadata": {"name": "runner", "namespace": "default"},
                "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "create"]}]})),
            yaml(&serde_json::json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                "metadata": {"name": "runner", "namespace": "default"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "runner"},
                "subjects": [{"kind": "ServiceAccount", "name": "flink-runner", "namespace": "default"}]})),
        ),
    );
    kubectl
        .ok(&["apply", "--server-side", "-f", &rbac.to_string_lossy()])
        .await;
    let granted = kubectl
        .ok(&["auth", "can-i", "create", "pods", "--as", runner])
        .await;
    assert_eq!(granted.trim(), "yes");
    kubectl.ok(&["get", "pods", "--as", runner]).await;
    let listed = kubectl
        .ok(&["get", "roles,rolebindings", "-o", "name"])
        .await;
    for expected in [
        "role.rbac.authorization.k8s.io/flink",
        "role.rbac.authorization.k8s.io/runner",
        "rolebinding.rbac.authorization.k8s.io/flink-role-binding",
        "rolebinding.rbac.authorization.k8s.io/runner",
    ] {
        assert!(listed.contains(expected), "{expected} missing: {listed}");
    }
    // Access reviews change nothing, so they are not counted as writes.
    let after = standin.stats();
    assert_eq!(
        after.writes - before.writes,
        2,
        "only the Role and RoleBinding were written: {after:?}"
    );
}

#[tokio::test]
async fn kubectl_as_a_namespace_admin_is_refused_roles_beyond_its_rules() {
    let standin = start().await;
    let kubectl = Kubectl::new(&standin);
    let setup = kubectl.file(
        "platform.yaml",
        &format!(
            "{}\n---\n{}\n---\n{}\n",
            yaml(&serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "streaming"}})),
            yaml(&serde_json::json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                "metadata": {"name": "jane-admin", "namespace": "streaming"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "admin"},
                "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "jane"}]})),
            yaml(&serde_json::json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                "metadata": {"name": "eddie-edit", "namespace": "streaming"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "edit"},
                "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "eddie"}]})),
        ),
    );
    kubectl
        .ok(&["apply", "--server-side", "-f", &setup.to_string_lossy()])
        .await;
    let can_i = |user: &'static str, what: &'static str| {
        let kubectl = &kubectl;
        async move {
            let out = kubectl
                .run(&[
                    "auth",
                    "can-i",
                    "create",
                    what,
                    "-n",
                    "streaming",
                    "--as",
                    user,
                ])
                .await;
            String::from_utf8_lossy(&out.stdout).trim().to_owned()
        }
    };
    assert_eq!(can_i("jane", "roles").await, "yes");
    assert_eq!(can_i("eddie", "roles").await, "no");
    assert_eq!(can_i("jane", "flinkdeployments").await, "no");

    let role =
        |name: &str, group: &str, resource: &str, verbs: &[&str]| {
            kubectl.file(
            &format!("{name}.yaml"),
            &yaml(&serde_json::json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                "metadata": {"name": name, "namespace": "streaming"},
                "rules": [{"apiGroups": [group], "resources": [resource], "verbs": verbs}]})),
        )
        };
    let pods = role("pods", "", "pods", &["get", "list", "create"]);
    kubectl
        .ok(&[
            "apply",
            "--server-side",
            "--as",
            "jane",
            "-f",
            &pods.to_string_lossy(),
        ])
        .await;
    let finalizers = role("finalizers", "apps", "deployments/finalizers", &["update"]);
    let refused = kubectl
        .fails(&[
            "apply",
            "--server-side",
            "--as",
            "jane",
            "-f",
            &finalizers.to_string_lossy(),
        ])
        .await;
    assert!(
        refused.contains(
            "roles.rbac.authorization.k8s.io \"finalizers\" is forbidden: user \"jane\" (groups=[\"system:authenticated\"]) is attempting to grant RBAC permissions not currently held:\n{APIGroups:[\"apps\"], Resources:[\"deployments/finalizers\"], Verbs:[\"update\"]}"
        ),
        "{refused}"
    );
    // An apply is a patch: edit has no verb on roles at all.
    let refused = kubectl
        .fails(&[
            "apply",
            "--server-side",
            "--as",
            "eddie",
            "-f",
            &pods.to_string_lossy(),
        ])
        .await;
    assert!(
        refused.contains(
            "User \"eddie\" cannot patch resource \"roles\" in API group \"rbac.authorization.k8s.io\" in the namespace \"streaming\""
        ),
        "{refused}"
    );
}

#[tokio::test]
async fn kubectl_sees_the_operator_as_its_helm_chart_installs_it() {
    let standin = start().await;
    let kubectl = Kubectl::new(&standin);
    let image = kubectl
        .ok(&[
            "get",
            "deployment",
            "flink-kubernetes-operator",
            "-o",
            "jsonpath={.spec.template.spec.containers[0].image} {.status.readyReplicas} {.metadata.labels.app\\.kubernetes\\.io/version}",
        ])
        .await;
    assert_eq!(
        image.trim(),
        "ghcr.io/apache/flink-kubernetes-operator:1.15.0 1 1.15.0"
    );
    let config = kubectl
        .ok(&[
            "get",
            "configmap",
            "flink-operator-config",
            "-o",
            "jsonpath={.data.config\\.yaml}",
        ])
        .await;
    assert!(
        config.contains("kubernetes.operator.reconcile.interval"),
        "{config}"
    );
    assert!(
        !config.contains("kubernetes.operator.watched.namespaces"),
        "no watched namespaces: all of them: {config}"
    );
    let crd = kubectl
        .ok(&[
            "get",
            "crd",
            "flinkdeployments.flink.apache.org",
            "-o",
            "jsonpath={.spec.group} {.status.conditions[?(@.type==\"Established\")].status}",
        ])
        .await;
    assert_eq!(crd.trim(), "flink.apache.org True");
    let account = kubectl
        .ok(&[
            "get",
            "serviceaccount",
            "flink",
            "-o",
            "jsonpath={.metadata.labels.app\\.kubernetes\\.io/managed-by}",
        ])
        .await;
    assert_eq!(account.trim(), "Helm");
}

#[tokio::test]
async fn kubectl_gets_events_by_field_selector() {
    let standin = start().await;
    let kubectl = Kubectl::new(&standin);
    let client = client(&standin).await;
    let flink = flink_api(&client);
    for name in ["first", "second"] {
        apply(&flink, &flink_deployment(name))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }
    wait_for(&flink, "first", "STABLE", |o| {
        status_of(o, &["lifecycleState"]).as_deref() == Some("STABLE")
    })
    .await;
    let events = kubectl
        .ok(&[
            "get",
            "events",
            "--field-selector",
            "involvedObject.name=first,involvedObject.kind=FlinkDeployment",
            "-o",
            "jsonpath={range .items[*]}{.reason} {.involvedObject.name}{\"\\n\"}{end}",
        ])
        .await;
    assert!(events.contains("Submit first"), "{events}");
    assert!(events.contains("JobStatusChanged first"), "{events}");
    assert!(!events.contains("second"), "{events}");
    let refused = kubectl
        .fails(&["get", "events", "--field-selector", "spec.nonsense=x"])
        .await;
    assert!(
        refused.contains("field label not supported: spec.nonsense"),
        "{refused}"
    );
}

#[tokio::test]
async fn kubectl_lists_nodes_with_their_architecture() {
    let standin = start().await;
    let kubectl = Kubectl::new(&standin);
    let nodes = kubectl
        .ok(&["get", "nodes", "-L", "kubernetes.io/arch", "--no-headers"])
        .await;
    let lines: Vec<&str> = nodes.lines().collect();
    assert_eq!(lines.len(), 2, "{nodes}");
    assert!(
        lines
            .iter()
            .all(|l| l.contains(" Ready ") && l.trim_end().ends_with("amd64")),
        "{nodes}"
    );
}

//! `cargo xtask doctor`, run as a user runs it, against the real services of `deploy.rs`.
//!
//! After a deploy every check passes; then each case breaks exactly one precondition through
//! the service's own API (as a person or another tool would), runs `doctor`, checks the named
//! `✗` line, its fix, the exit code and that doctor wrote nothing, and puts it back.

use aws_sdk_iam::types::PolicyScopeType;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Node, Pod, ServiceAccount};
use k8s_openapi::api::rbac::v1::RoleBinding;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

mod world;
use world::{NAMESPACE, ROLE_ARN_ANNOTATION, SERVICE_ACCOUNT, World};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_passes_after_a_deploy_and_names_each_broken_precondition() {
    let world = World::start().await;
    register_a_node(&world).await;
    let deploy = world.xtask.run(&["deploy"]).await.unwrap();
    assert_eq!(deploy.code, Some(0), "the deploy succeeds\n{deploy}");

    all_green(&world).await;
    annotation_removed(&world).await;
    pod_older_than_the_annotation(&world).await;
    trust_for_another_account(&world).await;
    policy_on_another_key(&world).await;
    script_with_other_bytes(&world).await;
    image_missing_from_the_registry(&world).await;
    nodes_of_another_arch(&world).await;
    rbac_missing(&world).await;
    namespace_not_watched(&world).await;
    operator_scaled_to_zero(&world).await;
    operator_absent(&world).await;
    crd_absent(&world).await;
    cluster_unreachable(&world).await;
    all_green(&world).await;

    world.clean_up().await;
}

/// Runs `doctor` (JSON too), asserts it wrote nothing, and returns the text run and the JSON.
async fn doctor(
    world: &World,
    xtask: &flink_eks_tests::Xtask,
) -> (flink_eks_tests::XtaskRun, Value) {
    let (run, writes) = world.counted(xtask.run(&["doctor"])).await;
    writes.assert_none("doctor");
    let json = xtask.run(&["doctor", "--output", "json"]).await.unwrap();
    assert_eq!(json.code, run.code, "text and JSON exit alike\n{json}");
    (run, json.stdout_json().unwrap())
}

/// The one failed check of the JSON report, asserting every other check passed or was
/// skipped.
fn only_failure<'a>(report: &'a Value, name: &str) -> &'a Value {
    let checks = report["checks"]
        .as_array()
        .expect("the report lists its checks");
    let failed: Vec<&Value> = checks.iter().filter(|c| c["status"] == "fail").collect();
    assert_eq!(failed.len(), 1, "exactly one check fails: {report:#}");
    assert_eq!(failed[0]["name"], name, "{report:#}");
    assert_eq!(report["ok"], false);
    failed[0]
}

/// Asserts the text line of the failed check `title`: `✗ title — …` naming `why` and `fix`.
fn failed_line(run: &flink_eks_tests::XtaskRun, title: &str, why: &str, fix: &str) {
    let line = run
        .stdout
        .lines()
        .find(|l| l.starts_with(&format!("✗ {title} — ")))
        .unwrap_or_else(|| panic!("a ✗ line for {title:?}\n{run}"));
    assert!(line.contains(why), "the line says {why:?}: {line}");
    assert!(line.contains(fix), "the line says the fix {fix:?}: {line}");
    assert_eq!(
        run.stdout.lines().filter(|l| l.starts_with('✗')).count(),
        1,
        "one ✗ line\n{run}"
    );
}

/// Runs `doctor` with one precondition broken: it exits 2 (an unmet precondition), the check
/// `name` is the only one failing, and its `✗ title — …` line names `why` and `fix`. Returns
/// the failed check of the JSON report.
async fn fails_only(
    world: &World,
    xtask: &flink_eks_tests::Xtask,
    name: &str,
    title: &str,
    why: &str,
    fix: &str,
) -> Value {
    let (run, report) = doctor(world, xtask).await;
    assert_eq!(run.code, Some(2), "an unmet precondition exits 2\n{run}");
    let failed = only_failure(&report, name).clone();
    failed_line(&run, title, why, fix);
    failed
}

async fn all_green(world: &World) {
    let (run, report) = doctor(world, &world.xtask).await;
    assert_eq!(
        run.code,
        Some(0),
        "every check passes after a deploy\n{run}"
    );
    assert_eq!(report["ok"], true, "{report:#}");
    for name in [
        "cluster",
        "crd",
        "operator",
        "service-account",
        "pods",
        "oidc-provider",
        "trust-policy",
        "permission-policy",
        "script",
        "image",
        "nodes",
    ] {
        let check = report["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("a check {name}: {report:#}"));
        assert_eq!(check["status"], "pass", "{check:#}");
    }
    assert!(!run.stdout.contains('✗'), "{run}");
}

fn accounts(world: &World) -> Api<ServiceAccount> {
    Api::namespaced(world.kube.clone(), NAMESPACE)
}

/// Sets (`Some`) or removes (`None`) the role annotation, as `kubectl annotate` does.
async fn annotate(world: &World, value: Option<&str>) {
    let patch = json!({"metadata": {"annotations": {ROLE_ARN_ANNOTATION: value}}});
    accounts(world)
        .patch(
            SERVICE_ACCOUNT,
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
        .expect("kubectl annotate");
}

async fn annotation_removed(world: &World) {
    let role = world.role_annotation().await.expect("deploy annotated");
    annotate(world, None).await;
    let failed = fails_only(
        world,
        &world.xtask,
        "service-account",
        "service account carries the role",
        "no eks.amazonaws.com/role-arn annotation",
        "run `cargo xtask irsa`",
    )
    .await;
    assert!(
        failed["fix"].as_str().unwrap().contains("cargo xtask irsa"),
        "{failed:#}"
    );
    annotate(world, Some(&role)).await;
}

/// A pod made while the service account had no annotation keeps no web identity once the
/// annotation is back: the pod identity webhook mutates pods only when they are created.
async fn pod_older_than_the_annotation(world: &World) {
    let role = world.role_annotation().await.expect("deploy annotated");
    annotate(world, None).await;
    let pods: Api<Pod> = Api::namespaced(world.kube.clone(), NAMESPACE);
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "made-before-the-annotation"},
        "spec": {
            "serviceAccountName": SERVICE_ACCOUNT,
            "containers": [{"name": "main", "image": world.services.base_image}],
        },
    }))
    .unwrap();
    pods.create(&PostParams::default(), &pod)
        .await
        .expect("kubectl run");
    annotate(world, Some(&role)).await;

    fails_only(
        world,
        &world.xtask,
        "pods",
        "no pods predate the role",
        "made-before-the-annotation (created ",
        "delete them",
    )
    .await;
    pods.delete(
        "made-before-the-annotation",
        &DeleteParams::default().grace_period(0),
    )
    .await
    .expect("kubectl delete pod");
    for _ in 0..100 {
        if pods
            .get_opt("made-before-the-annotation")
            .await
            .unwrap()
            .is_none()
        {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the pod is not gone");
}

/// The role's trust policy as IAM returns it (URL-encoded), decoded.
async fn trust_policy(world: &World) -> String {
    let role = world
        .aws
        .iam
        .get_role()
        .role_name(&world.names.role)
        .send()
        .await
        .expect("GetRole");
    let encoded = role.role.unwrap().assume_role_policy_document.unwrap();
    percent_encoding::percent_decode_str(&encoded)
        .decode_utf8()
        .expect("a UTF-8 trust policy")
        .into_owned()
}

async fn set_trust(world: &World, document: &str) {
    world
        .aws
        .iam
        .update_assume_role_policy()
        .role_name(&world.names.role)
        .policy_document(document)
        .send()
        .await
        .expect("UpdateAssumeRolePolicy");
}

async fn trust_for_another_account(world: &World) {
    let original = trust_policy(world).await;
    let subject = format!("system:serviceaccount:{NAMESPACE}:{SERVICE_ACCOUNT}");
    assert!(original.contains(&subject), "{original}");
    let other = original.replace(
        &subject,
        &format!("system:serviceaccount:{NAMESPACE}:other"),
    );
    set_trust(world, &other).await;

    fails_only(
        world,
        &world.xtask,
        "trust-policy",
        "role trusts exactly this service account",
        &format!("system:serviceaccount:{NAMESPACE}:other"),
        "corrects the trust policy",
    )
    .await;
    set_trust(world, &original).await;
}

async fn policy_on_another_key(world: &World) {
    let policies = world
        .aws
        .iam
        .list_policies()
        .scope(PolicyScopeType::Local)
        .send()
        .await
        .expect("ListPolicies");
    let policy = policies
        .policies()
        .iter()
        .find(|p| p.policy_name() == Some(world.names.policy.as_str()))
        .expect("deploy created the policy");
    let arn = policy.arn().unwrap().to_owned();
    let first = policy.default_version_id().unwrap().to_owned();
    let other_key = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::{}/jobs/another.py"}}]}}"#,
        world.names.bucket
    );
    let created = world
        .aws
        .iam
        .create_policy_version()
        .policy_arn(&arn)
        .policy_document(other_key)
        .set_as_default(true)
        .send()
        .await
        .expect("CreatePolicyVersion");
    let version = created.policy_version.unwrap().version_id.unwrap();

    fails_only(
        world,
        &world.xtask,
        "permission-policy",
        "attached policy grants s3:GetObject on the script",
        "jobs/another.py",
        "cargo xtask irsa",
    )
    .await;

    let iam = &world.aws.iam;
    iam.set_default_policy_version()
        .policy_arn(&arn)
        .version_id(first)
        .send()
        .await
        .expect("SetDefaultPolicyVersion");
    iam.delete_policy_version()
        .policy_arn(&arn)
        .version_id(version)
        .send()
        .await
        .expect("DeletePolicyVersion");
}

async fn script_with_other_bytes(world: &World) {
    let s3 = &world.aws.s3;
    s3.put_object()
        .bucket(&world.names.bucket)
        .key(&world.names.key)
        .body(b"print('someone else')\n".to_vec().into())
        .send()
        .await
        .expect("PutObject");

    fails_only(
        world,
        &world.xtask,
        "script",
        "S3 object is the local script",
        "carries sha256 none, the local script has ",
        "cargo xtask upload",
    )
    .await;
    let upload = world.xtask.run(&["upload"]).await.unwrap();
    assert_eq!(upload.code, Some(0), "{upload}");
}

async fn image_missing_from_the_registry(world: &World) {
    let repository = format!(
        "{}/{}-never-pushed",
        world.services.registry, world.names.repository
    );
    let xtask = world
        .xtask
        .clone()
        .with_env("FLINK_EKS_IMAGE_REPOSITORY", repository.clone());
    fails_only(
        world,
        &xtask,
        "image",
        "registry holds the image",
        &format!("the registry has no {repository}:"),
        "cargo xtask image",
    )
    .await;
}

/// A kubeconfig whose server does not answer: the cluster's line fails with a remote
/// failure (4), and the checks that need the cluster say they were skipped.
async fn cluster_unreachable(world: &World) {
    let kubeconfig = world.dir.path().join("kubeconfig-dead");
    std::fs::write(
        &kubeconfig,
        "apiVersion: v1\nkind: Config\ncurrent-context: dead\nclusters:\n- name: dead\n  cluster:\n    server: http://127.0.0.1:9\ncontexts:\n- name: dead\n  context:\n    cluster: dead\n    user: dead\nusers:\n- name: dead\n  user: {}\n",
    )
    .unwrap();
    let xtask = world
        .xtask
        .clone()
        .with_env("KUBECONFIG", kubeconfig.display().to_string());
    let run = xtask.run(&["doctor"]).await.unwrap();
    assert_eq!(
        run.code,
        Some(4),
        "a cluster that does not answer is a remote failure\n{run}"
    );
    let line = run
        .stdout
        .lines()
        .find(|l| l.starts_with("✗ cluster reachable — "))
        .unwrap_or_else(|| panic!("a ✗ line for the cluster\n{run}"));
    assert!(line.contains("KUBECONFIG"), "{line}");
    assert!(
        run.stdout
            .contains("- FlinkDeployment CRD served — skipped: the cluster did not answer"),
        "{run}"
    );
}

/// An amd64 node, as a kubelet registers itself, when the cluster has none.
async fn register_a_node(world: &World) {
    let nodes: Api<Node> = Api::all(world.kube.clone());
    if !nodes
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .is_empty()
    {
        return;
    }
    let node: Node = serde_json::from_value(json!({
        "metadata": {"name": "doctor-node-1", "labels": {
            "kubernetes.io/arch": "amd64", "kubernetes.io/os": "linux"}},
    }))
    .unwrap();
    nodes
        .create(&PostParams::default(), &node)
        .await
        .expect("register a node");
}

/// Sets `kubernetes.io/arch` on every node, as `kubectl label --overwrite` does; returns
/// each node's previous value.
async fn label_nodes(
    world: &World,
    arch: Option<&str>,
    before: &[(String, String)],
) -> Vec<(String, String)> {
    let nodes: Api<Node> = Api::all(world.kube.clone());
    let mut previous = Vec::new();
    for node in nodes.list(&Default::default()).await.unwrap().items {
        let name = node.metadata.name.clone().unwrap();
        let old = node
            .metadata
            .labels
            .and_then(|mut l| l.remove("kubernetes.io/arch"))
            .unwrap_or_default();
        let value = match arch {
            Some(arch) => arch.to_owned(),
            None => before
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, a)| a.clone())
                .unwrap_or(old.clone()),
        };
        let patch = json!({"metadata": {"labels": {"kubernetes.io/arch": value}}});
        nodes
            .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .expect("kubectl label node");
        previous.push((name, old));
    }
    previous
}

async fn nodes_of_another_arch(world: &World) {
    let before = label_nodes(world, Some("arm64"), &[]).await;
    fails_only(
        world,
        &world.xtask,
        "nodes",
        "nodes of the image's platform",
        "no schedulable node has kubernetes.io/arch=amd64 (found: ",
        "set image.platform to linux/arm64",
    )
    .await;
    label_nodes(world, None, &before).await;
}

/// The RoleBindings that give the job's service account its rules, deleted as
/// `kubectl delete rolebinding` does, then put back.
async fn rbac_missing(world: &World) {
    let bindings: Api<RoleBinding> = Api::namespaced(world.kube.clone(), NAMESPACE);
    let ours: Vec<RoleBinding> = bindings
        .list(&Default::default())
        .await
        .expect("kubectl get rolebindings")
        .items
        .into_iter()
        .filter(|b| {
            b.subjects
                .iter()
                .flatten()
                .any(|s| s.kind == "ServiceAccount" && s.name == SERVICE_ACCOUNT)
        })
        .collect();
    assert!(!ours.is_empty(), "the service account is bound to a Role");
    for binding in &ours {
        bindings
            .delete(
                binding.metadata.name.as_deref().unwrap(),
                &DeleteParams::default(),
            )
            .await
            .expect("kubectl delete rolebinding");
    }

    fails_only(
        world,
        &world.xtask,
        "rbac",
        "service account may create pods and configmaps",
        &format!("service account {NAMESPACE}/{SERVICE_ACCOUNT} may not "),
        "Role and RoleBinding",
    )
    .await;
    for mut binding in ours {
        recreatable(&mut binding.metadata);
        bindings
            .create(&PostParams::default(), &binding)
            .await
            .expect("kubectl create rolebinding");
    }
}

/// The operator's Deployment, found as `kubectl get deploy -A -l
/// app.kubernetes.io/name=flink-kubernetes-operator` finds it.
async fn operator_deployment(world: &World) -> Deployment {
    let all: Api<Deployment> = Api::all(world.kube.clone());
    let mut found = all
        .list(&ListParams::default().labels("app.kubernetes.io/name=flink-kubernetes-operator"))
        .await
        .expect("kubectl get deploy -A -l app.kubernetes.io/name=flink-kubernetes-operator")
        .items;
    assert_eq!(found.len(), 1, "the chart installed one operator");
    found.remove(0)
}

/// An object as `kubectl get -o yaml` then `kubectl create -f` would re-create it: without
/// what the server set.
fn recreatable(meta: &mut kube::api::ObjectMeta) {
    meta.resource_version = None;
    meta.uid = None;
    meta.managed_fields = None;
    meta.creation_timestamp = None;
    meta.generation = None;
}

/// The operator's ConfigMap edited to watch another namespace only, as `helm upgrade --set
/// watchNamespaces={other-team}` renders it (the key appended to both files); the operator
/// reads it on every pass.
async fn namespace_not_watched(world: &World) {
    let operator = operator_deployment(world).await;
    let namespace = operator.metadata.namespace.clone().unwrap();
    let maps: Api<ConfigMap> = Api::namespaced(world.kube.clone(), &namespace);
    let original = maps
        .get("flink-operator-config")
        .await
        .expect("kubectl get configmap flink-operator-config");
    let data = original.data.clone().unwrap_or_default();
    let mut edited = serde_json::Map::new();
    for file in ["config.yaml", "flink-conf.yaml"] {
        let text = data.get(file).cloned().unwrap_or_default();
        edited.insert(
            file.to_owned(),
            json!(format!(
                "{text}kubernetes.operator.watched.namespaces: other-team\n"
            )),
        );
    }
    let set = |data: Value| {
        let maps = maps.clone();
        async move {
            maps.patch(
                "flink-operator-config",
                &PatchParams::default(),
                &Patch::Merge(&json!({"data": data})),
            )
            .await
            .expect("kubectl edit configmap flink-operator-config");
        }
    };
    set(Value::Object(edited)).await;

    fails_only(
        world,
        &world.xtask,
        "operator",
        "operator watches the namespace",
        &format!("watches only namespaces other-team, not {NAMESPACE}"),
        &format!("watchNamespaces={{other-team,{NAMESPACE}}}"),
    )
    .await;
    set(serde_json::to_value(&data).unwrap()).await;
}

/// `kubectl scale deployment flink-kubernetes-operator --replicas=0`: the operator stops,
/// and nothing reconciles a FlinkDeployment.
async fn operator_scaled_to_zero(world: &World) {
    let operator = operator_deployment(world).await;
    let (name, namespace) = (
        operator.metadata.name.clone().unwrap(),
        operator.metadata.namespace.clone().unwrap(),
    );
    let api: Api<Deployment> = Api::namespaced(world.kube.clone(), &namespace);
    let scale = |replicas: i32| {
        let (api, name) = (api.clone(), name.clone());
        async move {
            api.patch(
                &name,
                &PatchParams::default(),
                &Patch::Merge(&json!({"spec": {"replicas": replicas}})),
            )
            .await
            .expect("kubectl scale deployment");
        }
    };
    scale(0).await;

    fails_only(
        world,
        &world.xtask,
        "operator",
        "operator watches the namespace",
        &format!("{namespace}/{name} is scaled to 0 replicas"),
        &format!("kubectl scale deployment {name} -n {namespace} --replicas=1"),
    )
    .await;
    scale(1).await;
}

/// `kubectl delete deployment flink-kubernetes-operator` (`helm uninstall` keeps the CRDs):
/// no operator is found.
async fn operator_absent(world: &World) {
    let mut operator = operator_deployment(world).await;
    let namespace = operator.metadata.namespace.clone().unwrap();
    let api: Api<Deployment> = Api::namespaced(world.kube.clone(), &namespace);
    api.delete(
        operator.metadata.name.as_deref().unwrap(),
        &DeleteParams::default(),
    )
    .await
    .expect("kubectl delete deployment");

    fails_only(
        world,
        &world.xtask,
        "operator",
        "operator watches the namespace",
        "no operator Deployment labelled app.kubernetes.io/name=flink-kubernetes-operator",
        "helm install flink-kubernetes-operator",
    )
    .await;
    recreatable(&mut operator.metadata);
    operator.status = None;
    api.create(&PostParams::default(), &operator)
        .await
        .expect("kubectl create deployment");
}

/// `kubectl delete crd flinkdeployments.flink.apache.org`: the API server stops serving
/// FlinkDeployment. (A real API server also deletes every FlinkDeployment with it; the
/// stand-in keeps them stored, unserved, and serves them again once the CRD is back.)
async fn crd_absent(world: &World) {
    let crds: Api<CustomResourceDefinition> = Api::all(world.kube.clone());
    let name = "flinkdeployments.flink.apache.org";
    let mut crd = crds.get(name).await.expect("kubectl get crd");
    crds.delete(name, &DeleteParams::default())
        .await
        .expect("kubectl delete crd");

    fails_only(
        world,
        &world.xtask,
        "crd",
        "FlinkDeployment CRD served",
        "does not serve FlinkDeployment (flink.apache.org/v1beta1)",
        "helm install flink-kubernetes-operator",
    )
    .await;
    recreatable(&mut crd.metadata);
    crd.status = None;
    crds.create(&PostParams::default(), &crd)
        .await
        .expect("kubectl create -f the CRD");
}

//! The README's main command, `cargo xtask deploy --dry-run --config examples/deploy.toml`, run
//! as a user would on a machine with no AWS account, no cluster and no Docker engine: it prints
//! the plan and writes every artifact, and each artifact says what the deploy would send.

use flink_eks_manifest::{
    ARCH_NODE_LABEL, DEFAULT_FETCH_IMAGE, FETCH_CONTAINER, OS_NODE_LABEL, SCRIPT_SHA256_ANNOTATION,
    from_yaml,
};
use flink_eks_tests::{Xtask, workspace_root};
use sha2::{Digest, Sha256};

#[tokio::test]
async fn the_example_dry_run_needs_nothing_and_renders_every_artifact() {
    let root = workspace_root();
    let out = tempfile::tempdir().expect("temp dir");
    let home = tempfile::tempdir().expect("temp home");
    // Nothing to reach: no Docker socket, no kubeconfig, no AWS configuration or credentials.
    let env = vec![
        ("HOME".to_owned(), home.path().display().to_string()),
        (
            "DOCKER_HOST".to_owned(),
            "unix:///nonexistent/docker.sock".to_owned(),
        ),
        (
            "KUBECONFIG".to_owned(),
            "/nonexistent/kubeconfig".to_owned(),
        ),
    ];
    let xtask = Xtask::new(&root.join("examples/deploy.toml"), env).expect("the xtask binary");
    let out_dir = out.path().display().to_string();
    let run = xtask
        .run(&["deploy", "--dry-run", "--out", &out_dir])
        .await
        .expect("run");
    assert_eq!(run.code, Some(0), "{run}");
    for step in ["image", "rbac", "irsa", "upload", "submit"] {
        assert!(
            run.stderr.lines().any(|l| l.trim_start().starts_with(step)),
            "no {step} row\n{run}"
        );
    }
    assert!(run.stderr.contains("not checked"), "{run}");
    // The image row names the platform the image is built for (the example's linux/amd64).
    let image_row = run
        .stderr
        .lines()
        .find(|l| l.trim_start().starts_with("image"))
        .unwrap_or_default();
    assert!(image_row.contains("linux/amd64"), "{image_row}\n{run}");

    let read = |name: &str| {
        std::fs::read_to_string(out.path().join(name))
            .unwrap_or_else(|e| panic!("{name}: {e}\n{run}"))
    };
    // The job's Role, as `kubectl apply -f` takes it: the chart's job rules.
    let role: serde_json::Value = serde_json::from_str(&read("role.json")).expect("role JSON");
    assert_eq!(role["kind"], "Role", "{role:#}");
    assert_eq!(
        role["rules"][0]["resources"],
        serde_json::json!(["pods", "configmaps"]),
        "{role:#}"
    );
    let binding: serde_json::Value =
        serde_json::from_str(&read("rolebinding.json")).expect("rolebinding JSON");
    assert_eq!(
        binding["subjects"][0]["kind"], "ServiceAccount",
        "{binding:#}"
    );
    let dockerfile = read("Dockerfile");
    assert!(
        dockerfile.contains("/opt/flink/plugins/s3-fs-hadoop/"),
        "{dockerfile}"
    );
    assert!(
        dockerfile.contains("\nFROM --platform=linux/amd64 flink:1.20.0\n"),
        "the base is pulled for the platform: {dockerfile}"
    );
    let digest = read("build-context.digest");
    assert!(
        digest.trim().starts_with("sha256:") && digest.trim().len() == 71,
        "{digest}"
    );
    assert!(out.path().join("build-context.tar.gz").is_file());

    let policy: serde_json::Value =
        serde_json::from_str(&read("iam-policy.json")).expect("policy JSON");
    let resources: Vec<&str> = policy["Statement"]
        .as_array()
        .expect("statements")
        .iter()
        .filter(|s| s["Action"] == "s3:GetObject")
        .filter_map(|s| s["Resource"].as_str())
        .collect();
    assert_eq!(
        resources,
        ["arn:aws:s3:::flink-s3-test/test/python_demo_s3.py"],
        "GetObject on the object, not the bucket"
    );
    let trust = read("trust-policy.json");
    assert!(
        trust.contains("system:serviceaccount:default:flink"),
        "{trust}"
    );
    assert!(trust.contains("sts:AssumeRoleWithWebIdentity"), "{trust}");

    let deployment = from_yaml(&read("flinkdeployment.yaml")).expect("a FlinkDeployment");
    let script =
        std::fs::read(root.join("examples/jobs/python_demo_s3.py")).expect("example script");
    let sha = hex::encode(Sha256::digest(&script));
    let annotations = deployment.metadata.annotations.expect("annotations");
    assert_eq!(annotations.get(SCRIPT_SHA256_ANNOTATION), Some(&sha));
    // Both kinds of Flink pod land only on nodes that can run the image.
    let amd64 = std::collections::BTreeMap::from([
        (ARCH_NODE_LABEL.to_owned(), "amd64".to_owned()),
        (OS_NODE_LABEL.to_owned(), "linux".to_owned()),
    ]);
    let job_manager = deployment.spec.job_manager.as_ref().expect("jobManager");
    let task_manager = deployment.spec.task_manager.as_ref().expect("taskManager");
    for (pods, template) in [
        ("JobManager", job_manager.pod_template.as_ref()),
        ("TaskManager", task_manager.pod_template.as_ref()),
    ] {
        let selector = template
            .and_then(|t| t.spec.as_ref())
            .and_then(|s| s.node_selector.as_ref());
        assert_eq!(selector, Some(&amd64), "{pods} pod template");
    }
    // The script is fetched by a pinned AWS CLI, pulled once per node, not `:latest` from
    // Docker Hub on every start.
    let fetch = job_manager
        .pod_template
        .as_ref()
        .and_then(|t| t.spec.as_ref())
        .and_then(|s| s.init_containers.as_ref())
        .and_then(|c| c.iter().find(|c| c.name == FETCH_CONTAINER))
        .expect("the JobManager fetches the script in an initContainer");
    assert_eq!(fetch.image.as_deref(), Some(DEFAULT_FETCH_IMAGE));
    assert!(
        DEFAULT_FETCH_IMAGE.starts_with("public.ecr.aws/aws-cli/aws-cli:")
            && !DEFAULT_FETCH_IMAGE.ends_with(":latest"),
        "{DEFAULT_FETCH_IMAGE}"
    );
    assert_eq!(fetch.image_pull_policy.as_deref(), Some("IfNotPresent"));
    // One interpreter for the client (PythonDriver's -pyclientexec) and the TaskManagers.
    let args = deployment
        .spec
        .job
        .as_ref()
        .and_then(|j| j.args.clone())
        .unwrap_or_default();
    let pyclientexec = args
        .iter()
        .position(|a| a == "-pyclientexec")
        .and_then(|i| args.get(i + 1));
    assert_eq!(
        pyclientexec.map(String::as_str),
        Some("/usr/bin/python3"),
        "{args:?}"
    );
    let configuration = deployment
        .spec
        .flink_configuration
        .clone()
        .unwrap_or_default();
    assert_eq!(
        configuration.get("python.executable").map(String::as_str),
        Some("/usr/bin/python3")
    );
    let manifest_row = run
        .stderr
        .lines()
        .find(|l| l.trim_start().starts_with("manifest"))
        .unwrap_or_default();
    assert!(
        manifest_row.contains("/usr/bin/python3") && manifest_row.contains(DEFAULT_FETCH_IMAGE),
        "the plan shows the interpreter and the fetch image: {manifest_row}"
    );
    let image = deployment.spec.image.expect("image");
    assert!(
        image.ends_with(&format!(":{}", digest.trim().replace(':', "-"))),
        "the tag is the context digest: {image}"
    );
}

/// The dry run of `examples/stateful.toml` and of the stateless example, side by side: the
/// stateful job's manifest puts checkpoints and savepoints under its `[state]` prefix and its
/// policy grants exactly that prefix; the stateless job has neither.
#[tokio::test]
async fn the_stateful_example_keeps_its_state_under_its_prefix_and_the_stateless_one_has_none() {
    let root = workspace_root();
    let home = tempfile::tempdir().expect("temp home");
    let env = vec![
        ("HOME".to_owned(), home.path().display().to_string()),
        (
            "DOCKER_HOST".to_owned(),
            "unix:///nonexistent/docker.sock".to_owned(),
        ),
        (
            "KUBECONFIG".to_owned(),
            "/nonexistent/kubeconfig".to_owned(),
        ),
    ];
    let render = |config: &'static str| {
        let env = env.clone();
        let root = root.clone();
        async move {
            let out = tempfile::tempdir().expect("temp dir");
            let xtask = Xtask::new(&root.join(config), env).expect("the xtask binary");
            let out_dir = out.path().display().to_string();
            let run = xtask
                .run(&["deploy", "--dry-run", "--out", &out_dir])
                .await
                .expect("run");
            assert_eq!(run.code, Some(0), "{config}: {run}");
            let read = |name: &str| {
                std::fs::read_to_string(out.path().join(name))
                    .unwrap_or_else(|e| panic!("{config} {name}: {e}\n{run}"))
            };
            let policy: serde_json::Value =
                serde_json::from_str(&read("iam-policy.json")).expect("policy JSON");
            let deployment = from_yaml(&read("flinkdeployment.yaml")).expect("a FlinkDeployment");
            (policy, deployment)
        }
    };

    let (policy, deployment) = render("examples/stateful.toml").await;
    let state = "s3://flink-s3-test/flink-eks/default/stateful-example/state";
    let conf = deployment
        .spec
        .flink_configuration
        .clone()
        .unwrap_or_default();
    for (key, value) in [
        ("state.checkpoints.dir", format!("{state}/checkpoints")),
        (
            "execution.checkpointing.dir",
            format!("{state}/checkpoints"),
        ),
        ("state.savepoints.dir", format!("{state}/savepoints")),
        (
            "execution.checkpointing.savepoint-dir",
            format!("{state}/savepoints"),
        ),
        ("execution.checkpointing.interval", "30s".to_owned()),
    ] {
        assert_eq!(conf.get(key), Some(&value), "{key}: {conf:?}");
    }
    assert!(
        !conf.contains_key("high-availability.type"),
        "savepoint mode needs no HA"
    );
    let statements = policy["Statement"].as_array().expect("statements");
    let state_objects = statements
        .iter()
        .find(|s| s["Sid"] == "FlinkStateObjects")
        .expect("a statement on the state's objects");
    assert_eq!(
        state_objects["Resource"],
        "arn:aws:s3:::flink-s3-test/flink-eks/default/stateful-example/state/*"
    );
    assert_eq!(
        state_objects["Action"],
        serde_json::json!([
            "s3:GetObject",
            "s3:PutObject",
            "s3:DeleteObject",
            "s3:AbortMultipartUpload"
        ])
    );
    let state_list = statements
        .iter()
        .find(|s| s["Sid"] == "FlinkStateList")
        .expect("a ListBucket statement for the state");
    assert_eq!(
        state_list["Condition"]["StringLike"]["s3:prefix"],
        "flink-eks/default/stateful-example/state/*"
    );

    // The stateless example: no state keys, and a policy that writes nothing.
    let (policy, deployment) = render("examples/deploy.toml").await;
    let conf = deployment.spec.flink_configuration.unwrap_or_default();
    assert!(
        conf.keys().all(|k| !k.contains("checkpoint")
            && !k.contains("savepoint")
            && !k.starts_with("high-availability")),
        "{conf:?}"
    );
    let policy_text = policy.to_string();
    for absent in ["s3:PutObject", "s3:DeleteObject", "FlinkState"] {
        assert!(!policy_text.contains(absent), "{absent}: {policy_text}");
    }
}

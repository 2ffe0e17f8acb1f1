//! Every FlinkDeployment the builder renders must be accepted by the real CRD of the Flink
//! Kubernetes Operator, and must not carry a field the API server would silently prune.
//!
//! The CRD is read from `FLINK_EKS_CRD`, or by default from
//! `../shared/crds/flinkdeployments.flink.apache.org-v1.yml` beside the workspace root.
//! A missing CRD fails these tests.

use std::collections::BTreeMap;
use std::path::PathBuf;

use flink_eks_manifest::{
    Credentials, Error, FlinkRelease, FlinkVersion, PyFlinkJob, S3Location, UpgradeMode, to_yaml,
};
use serde_json::Value;

const SHA: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

fn crd_path() -> PathBuf {
    match std::env::var_os("FLINK_EKS_CRD") {
        Some(path) => PathBuf::from(path),
        None => PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/crds/flinkdeployments.flink.apache.org-v1.yml"
        )),
    }
}

/// The `openAPIV3Schema` of the CRD's `v1beta1` version.
fn crd_schema() -> Value {
    let path = crd_path();
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read the FlinkDeployment CRD at {} ({e}): set FLINK_EKS_CRD to its path, \
             or run the tests with `cargo xtask test`, which provides it",
            path.display()
        )
    });
    let crd: Value = serde_saphyr::from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not valid YAML: {e}", path.display()));
    assert_eq!(
        crd["spec"]["names"]["kind"],
        "FlinkDeployment",
        "{} is not the FlinkDeployment CRD",
        path.display()
    );
    let version = crd["spec"]["versions"]
        .as_array()
        .and_then(|versions| versions.iter().find(|v| v["name"] == "v1beta1"))
        .unwrap_or_else(|| panic!("{} has no v1beta1 version", path.display()));
    version["schema"]["openAPIV3Schema"].clone()
}

/// Walks a rendered object beside the schema and reports every field the structural schema
/// does not declare (the API server would prune it) and every null.
fn undeclared_fields(value: &Value, schema: &Value, path: &str, problems: &mut Vec<String>) {
    if schema.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true)) {
        return;
    }
    match value {
        Value::Null => problems.push(format!("{path} is null")),
        Value::Object(map) => {
            let properties = schema.get("properties").and_then(Value::as_object);
            let additional = schema.get("additionalProperties");
            for (key, child) in map {
                let child_path = format!("{path}.{key}");
                match (properties.and_then(|p| p.get(key)), additional) {
                    (Some(child_schema), _) => {
                        undeclared_fields(child, child_schema, &child_path, problems)
                    }
                    (None, Some(Value::Bool(true))) => {}
                    (None, Some(child_schema @ Value::Object(_))) => {
                        undeclared_fields(child, child_schema, &child_path, problems)
                    }
                    (None, _) => {
                        problems.push(format!("{child_path} is not declared by the CRD schema"))
                    }
                }
            }
        }
        Value::Array(items) => match schema.get("items") {
            Some(item_schema) => {
                for (index, item) in items.iter().enumerate() {
                    undeclared_fields(item, item_schema, &format!("{path}[{index}]"), problems);
                }
            }
            None => problems.push(format!(
                "{path} is an array the CRD schema gives no items for"
            )),
        },
        Value::Bool(_) | Value::Number(_) | Value::String(_) => {}
    }
}

/// Problems the API server would have with one rendered object: schema violations, and
/// fields it would prune. The object is read back from its YAML, as `kubectl` would send it.
fn problems_with(
    job: &PyFlinkJob,
    schema: &Value,
    validator: &jsonschema::Validator,
) -> Vec<String> {
    let yaml = to_yaml(
        &job.build()
            .unwrap_or_else(|e| panic!("{}: {e}", describe(job))),
    )
    .unwrap();
    let object: Value = serde_saphyr::from_str(&yaml).unwrap();
    let mut problems: Vec<String> = validator
        .iter_errors(&object)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect();

    let Value::Object(root) = &object else {
        return vec!["the rendered document is not a map".to_owned()];
    };
    for (key, value) in root {
        match key.as_str() {
            // The API server handles these itself; the schema does not declare them.
            "apiVersion" | "kind" => {}
            "metadata" => {
                for field in value.as_object().into_iter().flat_map(|m| m.keys()) {
                    if !["name", "namespace", "labels", "annotations"].contains(&field.as_str()) {
                        problems.push(format!("metadata.{field} is not something a manifest sets"));
                    }
                }
            }
            _ => match schema["properties"].get(key) {
                Some(child_schema) => undeclared_fields(value, child_schema, key, &mut problems),
                None => problems.push(format!("{key} is not declared by the CRD schema")),
            },
        }
    }
    problems
}

fn describe(job: &PyFlinkJob) -> String {
    format!(
        "Flink {} / {} / {} / {} argument(s)",
        job.flink_version,
        job.upgrade_mode,
        job.credentials.mode_name(),
        job.args.len()
    )
}

fn validator(schema: &Value) -> jsonschema::Validator {
    jsonschema::draft4::new(schema)
        .unwrap_or_else(|e| panic!("the CRD schema does not compile: {e}"))
}

/// A release of each minor line; for Pod Identity, the first patch whose S3 plugin supports it.
fn release_for(version: FlinkVersion, credentials: &Credentials) -> String {
    let (major, minor) = version.major_minor();
    let patch = match (credentials, version) {
        (Credentials::PodIdentity, FlinkVersion::V1_19) => 2,
        (Credentials::PodIdentity, FlinkVersion::V1_20) => 1,
        _ => 0,
    };
    format!("{major}.{minor}.{patch}")
}

fn credential_modes() -> [Credentials; 3] {
    [
        Credentials::Irsa,
        Credentials::PodIdentity,
        Credentials::AccessKeySecret {
            secret_name: "flink-s3-keys".into(),
            access_key_field: "access-key-id".into(),
            secret_key_field: "secret-access-key".into(),
        },
    ]
}

fn job(version: &str, mode: UpgradeMode, credentials: Credentials, args: &[&str]) -> PyFlinkJob {
    let script = S3Location::new("flink-s3-test", "test/python_demo_s3.py").unwrap();
    let mut job = PyFlinkJob::new(
        "python-example-s3",
        script,
        SHA,
        "hiha2/flink-s3:latest",
        version,
    );
    job.upgrade_mode = mode;
    job.credentials = credentials;
    job.args = args.iter().map(|a| a.to_string()).collect();
    if mode != UpgradeMode::Stateless {
        job.checkpoints_dir = Some("s3://flink-s3-test/flink/checkpoints".into());
        job.savepoints_dir = Some("s3://flink-s3-test/flink/savepoints".into());
    }
    if mode == UpgradeMode::LastState {
        job.ha_storage_dir = Some("s3://flink-s3-test/flink/ha".into());
    }
    job
}

#[test]
fn every_variant_is_accepted_by_the_real_crd_and_declares_every_field() {
    let schema = crd_schema();
    let validator = validator(&schema);
    let mut checked = 0;
    let mut failures = Vec::new();
    for version in FlinkVersion::ALL {
        for mode in UpgradeMode::ALL {
            for credentials in credential_modes() {
                for args in [
                    &[][..],
                    &["--input", "s3://flink-s3-test/in", "123", "true"][..],
                ] {
                    let release = release_for(version, &credentials);
                    let job = job(&release, mode, credentials.clone(), args);
                    let supported = release
                        .parse::<FlinkRelease>()
                        .unwrap()
                        .supports_pod_identity();
                    if credentials == Credentials::PodIdentity && !supported {
                        let err = job.build().unwrap_err();
                        assert!(matches!(err, Error::PodIdentityUnsupported { .. }), "{err}");
                        continue;
                    }
                    let problems = problems_with(&job, &schema, &validator);
                    if !problems.is_empty() {
                        failures.push(format!("{}:\n  {}", describe(&job), problems.join("\n  ")));
                    }
                    checked += 1;
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {checked} variants are not accepted:\n{}",
        failures.len(),
        failures.join("\n")
    );
    // 11 versions x 3 modes x 2 argument lists x (IRSA + Secret) + Pod Identity on 1.19 .. 2.2.
    assert_eq!(checked, 11 * 3 * 2 * 2 + 5 * 3 * 2);
}

#[test]
fn the_optional_parts_are_accepted_too() {
    let schema = crd_schema();
    let validator = validator(&schema);
    let mut job = job(
        "1.20.0",
        UpgradeMode::LastState,
        credential_modes()[2].clone(),
        &["x"],
    );
    job.s3_endpoint = Some("http://127.0.0.1:9000".into());
    job.fetch_image = "registry.example.com/tools/aws-cli:2".into();
    job.python_executable = "/usr/local/bin/python3".into();
    job.platform = "linux/arm64".into();
    job.parallelism = 4;
    job.job_manager.cpu = 0.5;
    job.task_manager.memory = "4Gi".into();
    job.flink_configuration = BTreeMap::from([
        ("taskmanager.numberOfTaskSlots".into(), "2".into()),
        ("s3.connection.maximum".into(), "64".into()),
    ]);
    let problems = problems_with(&job, &schema, &validator);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_checks_catch_what_the_api_server_would_refuse_or_prune() {
    let schema = crd_schema();
    let validator = validator(&schema);
    let deployment = job("1.20.0", UpgradeMode::Stateless, Credentials::Irsa, &[])
        .build()
        .unwrap();
    let mut object: Value = serde_json::to_value(&deployment).unwrap();

    object["spec"]["flinkVersion"] = "v9_9".into();
    object["spec"]["job"]["upgradeMode"] = "latest".into();
    let errors: Vec<String> = validator
        .iter_errors(&object)
        .map(|e| e.instance_path().to_string())
        .collect();
    assert!(
        errors.contains(&"/spec/flinkVersion".to_owned()),
        "{errors:?}"
    );
    assert!(
        errors.contains(&"/spec/job/upgradeMode".to_owned()),
        "{errors:?}"
    );

    object["spec"]["job"]["pythonScript"] = "x".into();
    object["spec"]["podTemplate"]["spec"]["containers"][0]["bogus"] = true.into();
    object["spec"]["jobManager"]["resource"]["memory"] = Value::Null;
    let mut problems = Vec::new();
    undeclared_fields(
        &object["spec"],
        &schema["properties"]["spec"],
        "spec",
        &mut problems,
    );
    problems.sort();
    assert_eq!(
        problems,
        [
            "spec.job.pythonScript is not declared by the CRD schema",
            "spec.jobManager.resource.memory is null",
            "spec.podTemplate.spec.containers[0].bogus is not declared by the CRD schema",
        ]
    );
}

#[test]
fn the_crd_accepts_exactly_the_flink_versions_and_upgrade_modes_the_types_know() {
    let schema = crd_schema();
    let spec = &schema["properties"]["spec"]["properties"];
    let versions: Vec<&str> = spec["flinkVersion"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let ours: Vec<&str> = FlinkVersion::ALL.iter().map(|v| v.as_crd_value()).collect();
    assert_eq!(versions, ours);
    let mut modes: Vec<&str> = spec["job"]["properties"]["upgradeMode"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let mut our_modes: Vec<&str> = UpgradeMode::ALL.iter().map(|m| m.as_crd_value()).collect();
    modes.sort();
    our_modes.sort();
    assert_eq!(modes, our_modes);
}

#[test]
fn the_types_name_the_resource_as_the_crd_does() {
    use kube::CustomResourceExt;
    let path = crd_path();
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {} ({e})", path.display()));
    let real: Value = serde_saphyr::from_str(&text).unwrap();
    let ours = serde_json::to_value(flink_eks_manifest::FlinkDeployment::crd()).unwrap();
    assert_eq!(ours["metadata"]["name"], real["metadata"]["name"]);
    for field in ["group", "scope"] {
        assert_eq!(ours["spec"][field], real["spec"][field], "{field}");
    }
    for field in ["kind", "plural", "singular", "shortNames"] {
        assert_eq!(
            ours["spec"]["names"][field], real["spec"]["names"][field],
            "{field}"
        );
    }
    let (ours, real) = (&ours["spec"]["versions"][0], &real["spec"]["versions"][0]);
    for field in ["name", "additionalPrinterColumns", "subresources"] {
        assert_eq!(ours[field], real[field], "{field}");
    }
}

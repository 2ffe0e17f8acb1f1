//! Helpers shared by the stand-in's integration tests.
#![allow(dead_code, unreachable_pub)]

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{
    Api, ApiResource, DynamicObject, GroupVersionKind, ListParams, LogParams, Patch, PatchParams,
};
use kube_standin::{Config, StandIn};
use serde_json::{Value, json};

/// How long any wait in these tests may take before the test fails (never asserted as speed).
pub const PATIENCE: Duration = Duration::from_secs(20);

pub async fn start() -> StandIn {
    match StandIn::start(Config::default()).await {
        Ok(s) => s,
        Err(e) => panic!("the stand-in did not start: {e:#}"),
    }
}

pub async fn client(standin: &StandIn) -> kube::Client {
    match standin.client().await {
        Ok(c) => c,
        Err(e) => panic!("no client: {e:#}"),
    }
}

pub fn flink_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("flink.apache.org", "v1beta1", "FlinkDeployment"),
        "flinkdeployments",
    )
}

pub fn flink_api(client: &kube::Client) -> Api<DynamicObject> {
    Api::namespaced_with(client.clone(), "default", &flink_resource())
}

/// A FlinkDeployment as the product writes one: a PyFlink job whose script an init
/// container fetches from S3 into an emptyDir.
pub fn flink_deployment(name: &str) -> Value {
    json!({
        "apiVersion": "flink.apache.org/v1beta1",
        "kind": "FlinkDeployment",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "image": "registry.example/flink-s3:1.20",
            "flinkVersion": "v1_20",
            "serviceAccount": "flink",
            "flinkConfiguration": {"taskmanager.numberOfTaskSlots": "1"},
            "jobManager": {
                "resource": {"memory": "2048m", "cpu": 1},
                "podTemplate": {"spec": {
                    "initContainers": [{
                        "name": "fetch-script",
                        "image": "amazon/aws-cli:2.17.0",
                        "args": ["s3", "cp", "s3://jobs-bucket/jobs/word_count.py", "/opt/flink/usrlib/word_count.py"],
                        "volumeMounts": [{"name": "usrlib", "mountPath": "/opt/flink/usrlib"}],
                    }],
                    "containers": [{"name": "flink-main-container", "volumeMounts": [{"name": "usrlib", "mountPath": "/opt/flink/usrlib"}]}],
                    "volumes": [{"name": "usrlib", "emptyDir": {}}],
                }},
            },
            "taskManager": {"resource": {"memory": "2048m", "cpu": 1}},
            "job": {
                "jarURI": "local:///opt/flink/opt/flink-python-1.20.0.jar",
                "entryClass": "org.apache.flink.client.python.PythonDriver",
                "args": ["-py", "/opt/flink/usrlib/word_count.py"],
                "parallelism": 1,
                "upgradeMode": "stateless",
            },
        },
    })
}

pub async fn apply(
    api: &Api<DynamicObject>,
    manifest: &Value,
) -> Result<DynamicObject, kube::Error> {
    let name = manifest["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    api.patch(
        &name,
        &PatchParams::apply("flink-eks").force(),
        &Patch::Apply(manifest),
    )
    .await
}

pub fn status_of(object: &DynamicObject, path: &[&str]) -> Option<String> {
    let mut value = object.data.get("status")?;
    for key in path {
        value = value.get(*key)?;
    }
    match value {
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// Polls `get` until `done` holds, failing the test after [`PATIENCE`].
pub async fn wait_for(
    api: &Api<DynamicObject>,
    name: &str,
    what: &str,
    done: impl Fn(&DynamicObject) -> bool,
) -> DynamicObject {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        if let Ok(object) = api.get(name).await {
            if done(&object) {
                return object;
            }
            if tokio::time::Instant::now() > deadline {
                panic!(
                    "{name} never became {what}; last status: {:?}",
                    object.data.get("status")
                );
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The log of the main container of FlinkDeployment `name`'s JobManager pod in `default`.
pub async fn jobmanager_log(client: &kube::Client, name: &str) -> String {
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let list = pods
        .list(&ListParams::default().labels(&format!("app={name},component=jobmanager")))
        .await
        .unwrap_or_else(|e| panic!("list the JobManager pods: {e}"));
    let pod = list.items.first().expect("a JobManager pod");
    let params = LogParams {
        container: Some("flink-main-container".to_owned()),
        ..LogParams::default()
    };
    pods.logs(pod.metadata.name.as_deref().unwrap(), &params)
        .await
        .unwrap_or_else(|e| panic!("no log: {e}"))
}

pub fn api_error(result: Result<impl std::fmt::Debug, kube::Error>) -> kube::core::Status {
    match result {
        Err(kube::Error::Api(status)) => *status,
        other => panic!("expected an API error, got {other:?}"),
    }
}

//! Shared helpers of the integration tests: the services `cargo xtask test` starts.

#![allow(dead_code, unreachable_pub, async_fn_in_trait)]

use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use flink_eks_image_builder::{
    BuildContext, ConnectorJar, Credentials, ImageBuilder, ImageSpec, Outcome, ProgressEvent,
};

/// The value of a test service variable; fails (never skips) when it is missing.
pub fn service(name: &str) -> String {
    flink_eks_tests::service(name)
}

/// A name no other test run has used, for repositories and jar contents.
pub fn unique(label: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{label}-{}-{nanos}", std::process::id())
}

/// A spec on the stand-in base, pushed to `registry`, made unique by a connector jar whose
/// bytes no earlier run used.
pub fn unique_spec(registry: &str, label: &str) -> ImageSpec {
    let name = unique(label);
    ImageSpec::new("1.20.0", format!("{registry}/flink-eks-it/{label}"))
        .with_base(service("FLINK_EKS_TEST_BASE_IMAGE"))
        .with_connector_jar(ConnectorJar::new(
            "it-connector.jar",
            format!("PK fake jar {name}").into_bytes(),
        ))
}

/// Collects every event, and can be cloned to read them after a call.
#[derive(Clone, Default)]
pub struct Recorder(pub Arc<Mutex<Vec<ProgressEvent>>>);

impl flink_eks_plan::Progress<ProgressEvent> for Recorder {
    fn event(&self, event: &ProgressEvent) {
        eprintln!("{event:?}");
        self.0.lock().unwrap().push(event.clone());
    }
}

impl Recorder {
    pub fn events(&self) -> Vec<ProgressEvent> {
        self.0.lock().unwrap().clone()
    }

    /// Every event as text (Debug), to search for leaked secrets.
    pub fn text(&self) -> String {
        format!("{:?}", self.events())
    }
}

/// Plan, then apply that plan: what a deploy does for the image.
pub trait PlanAndApply {
    /// Packs the context, plans against the registry, and applies the plan.
    async fn plan_and_apply(
        &self,
        spec: &ImageSpec,
        credentials: &Credentials,
        progress: &Recorder,
    ) -> flink_eks_image_builder::Result<Outcome>;
}

impl PlanAndApply for ImageBuilder {
    async fn plan_and_apply(
        &self,
        spec: &ImageSpec,
        credentials: &Credentials,
        progress: &Recorder,
    ) -> flink_eks_image_builder::Result<Outcome> {
        let context = BuildContext::new(spec)?;
        let plan = flink_eks_image_builder::plan(spec, &context, credentials).await?;
        self.apply(&plan, spec, &context, credentials, progress)
            .await
    }
}

/// The registry's request log from `offset` on.
pub struct RegistryLog {
    path: String,
    offset: u64,
}

impl RegistryLog {
    /// Starts reading `variable`'s log file at its current end.
    pub fn from_now(variable: &str) -> Self {
        let path = service(variable);
        let offset = std::fs::metadata(&path)
            .unwrap_or_else(|e| panic!("registry log {path}: {e}"))
            .len();
        Self { path, offset }
    }

    /// The access-log request lines (`"METHOD /v2/... HTTP/1.1" status`) added since, that
    /// concern `repository_path`.
    pub fn requests_for(&self, repository_path: &str) -> Vec<String> {
        let bytes = std::fs::read(&self.path).unwrap();
        let new = String::from_utf8_lossy(&bytes[self.offset as usize..]).into_owned();
        let needle = format!(" /v2/{repository_path}/");
        new.lines()
            .filter(|line| !line.contains("response completed") && line.contains(&needle))
            .filter_map(|line| line.split('"').nth(1).map(str::to_owned))
            .collect()
    }
}

/// Runs `cmd` in a new container of `image`; returns the exit code and the output.
pub async fn run_in_image(docker: &bollard::Docker, image: &str, cmd: &[&str]) -> (i64, String) {
    use bollard::models::ContainerCreateBody;
    use bollard::query_parameters::{LogsOptions, RemoveContainerOptions, WaitContainerOptions};
    use futures::StreamExt as _;

    let body = ContainerCreateBody {
        image: Some(image.to_owned()),
        cmd: Some(cmd.iter().map(|s| s.to_string()).collect()),
        ..Default::default()
    };
    let id = docker
        .create_container(None, body)
        .await
        .unwrap_or_else(|e| panic!("create a container of {image}: {e}"))
        .id;
    docker.start_container(&id, None).await.unwrap();
    let mut exit = 0;
    let mut wait = docker.wait_container(&id, None::<WaitContainerOptions>);
    while let Some(item) = wait.next().await {
        match item {
            Ok(response) => exit = response.status_code,
            Err(bollard::errors::Error::DockerContainerWaitError { code, .. }) => exit = code,
            Err(e) => panic!("wait for {id}: {e}"),
        }
    }
    let mut output = String::new();
    let options = LogsOptions {
        stdout: true,
        stderr: true,
        tail: "all".into(),
        ..Default::default()
    };
    let mut logs = docker.logs(&id, Some(options));
    while let Some(chunk) = logs.next().await {
        output.push_str(&chunk.unwrap().to_string());
    }
    docker
        .remove_container(
            &id,
            Some(RemoveContainerOptions {
                force: true,
                ..Default::default()
            }),
        )
        .await
        .unwrap();
    (exit, output)
}

/// Removes a local image (no error when it is absent). Its parents stay: tests running at
/// the same time build on the same cached steps.
pub async fn remove_local_image(docker: &bollard::Docker, image: &str) {
    use bollard::query_parameters::RemoveImageOptions;
    match docker
        .remove_image(
            image,
            Some(RemoveImageOptions {
                force: true,
                noprune: true,
                ..Default::default()
            }),
            None,
        )
        .await
    {
        Ok(_) => {}
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => {}
        Err(e) => panic!("remove {image}: {e}"),
    }
}

/// Whether the local daemon has `image`.
pub async fn local_image_exists(docker: &bollard::Docker, image: &str) -> bool {
    match docker.inspect_image(image).await {
        Ok(_) => true,
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => false,
        Err(e) => panic!("inspect {image}: {e}"),
    }
}

/// Pulls `image` from its registry into the local daemon.
pub async fn pull(
    docker: &bollard::Docker,
    image: &str,
    auth: Option<bollard::auth::DockerCredentials>,
) {
    use bollard::query_parameters::CreateImageOptions;
    use futures::StreamExt as _;
    let (name, tag) = image.rsplit_once(':').unwrap();
    let options = CreateImageOptions {
        from_image: Some(name.to_owned()),
        tag: Some(tag.to_owned()),
        ..Default::default()
    };
    let mut stream = docker.create_image(Some(options), None, auth);
    while let Some(item) = stream.next().await {
        item.unwrap_or_else(|e| panic!("pull {image}: {e}"));
    }
}

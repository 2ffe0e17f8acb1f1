//! The image's platform, against the real Docker daemon and registry that `cargo xtask test`
//! starts: an arm64 build FROM the stand-in base loaded as arm64
//! (`FLINK_EKS_TEST_BASE_IMAGE_ARM64`).
//!
//! The stand-in's busybox is an amd64 binary and this machine has no binfmt emulation, so
//! these builds are the product's Dockerfile without PyFlink: `COPY` steps only, no `RUN`.

mod common;

use common::{
    PlanAndApply, Recorder, local_image_exists, remove_local_image, service, unique, unique_spec,
};
use flink_eks_image_builder::{
    BuildContext, ConnectorJar, Credentials, Error, ImageBuilder, ImageSpec, PullPolicy, plan,
};
use flink_eks_plan::Action;

/// A builder whose daemon has answered (making one alone sends nothing).
async fn builder() -> ImageBuilder {
    let builder = ImageBuilder::connect().await.unwrap();
    if let Err(e) = builder.docker().await {
        panic!("{e} (the Docker daemon is one of the services `cargo xtask test` starts)")
    }
    builder
}

/// A spec for `linux/arm64` FROM the arm64 stand-in base, unique by its connector jar.
fn arm64_spec(registry: &str, label: &str) -> ImageSpec {
    ImageSpec::new("1.20.0", format!("{registry}/flink-eks-it/{label}"))
        .with_base(service("FLINK_EKS_TEST_BASE_IMAGE_ARM64"))
        .with_platform("linux/arm64")
        .with_connector_jar(ConnectorJar::new(
            "it-connector.jar",
            format!("PK fake jar {}", unique(label)).into_bytes(),
        ))
}

/// The JSON body of a registry request that must succeed.
async fn get_json(request: reqwest::RequestBuilder) -> serde_json::Value {
    let body = request
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .bytes()
        .await
        .unwrap();
    serde_json::from_slice(&body).unwrap()
}

/// `(os, architecture)` of the image config the registry holds under `repository:tag`.
async fn registry_platform(registry: &str, path: &str, tag: &str) -> (String, String) {
    let http = reqwest::Client::new();
    let manifest = get_json(
        http.get(format!("http://{registry}/v2/{path}/manifests/{tag}"))
            .header(
                "Accept",
                "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json",
            ),
    )
    .await;
    let config_digest = manifest["config"]["digest"]
        .as_str()
        .unwrap_or_else(|| panic!("a single-platform manifest with a config: {manifest}"));
    let config =
        get_json(http.get(format!("http://{registry}/v2/{path}/blobs/{config_digest}"))).await;
    let field = |name: &str| config[name].as_str().unwrap_or_default().to_owned();
    (field("os"), field("architecture"))
}

#[tokio::test]
async fn an_arm64_build_is_arm64_in_the_daemon_and_in_the_registry() {
    let registry = service("FLINK_EKS_TEST_REGISTRY");
    let spec = arm64_spec(&registry, "arm64");
    let context = BuildContext::new(&spec).unwrap();
    assert!(
        context.dockerfile.contains("FROM --platform=linux/arm64 "),
        "{}",
        context.dockerfile
    );
    assert!(
        !context.dockerfile.lines().any(|l| l.starts_with("RUN ")),
        "without emulation an arm64 RUN cannot execute here: {}",
        context.dockerfile
    );
    // The same inputs for amd64 are another build, under another digest tag.
    let amd64 = BuildContext::new(&spec.clone().with_platform("linux/amd64")).unwrap();
    assert_ne!(amd64.digest, context.digest);
    assert_ne!(amd64.default_tag(), context.default_tag());

    let planned = plan(&spec, &context, &Credentials::Anonymous)
        .await
        .unwrap();
    let operation = planned.operation();
    assert_eq!(operation.action, Action::Create);
    assert_eq!(operation.detail, "build and push for linux/arm64");

    let builder = builder().await;
    let outcome = builder
        .apply(
            &planned,
            &spec,
            &context,
            &Credentials::Anonymous,
            &Recorder::default(),
        )
        .await
        .unwrap();
    assert!(outcome.built && outcome.pushed, "{outcome:?}");

    // What a user checks: `docker image inspect` and the image config the registry serves.
    let docker = builder.docker().await.unwrap();
    let inspect = docker.inspect_image(&outcome.image).await.unwrap();
    assert_eq!(
        (inspect.os.as_deref(), inspect.architecture.as_deref()),
        (Some("linux"), Some("arm64"))
    );
    let path = spec.parsed_repository().unwrap().path().to_owned();
    assert_eq!(
        registry_platform(&registry, &path, &planned.tag).await,
        ("linux".to_owned(), "arm64".to_owned())
    );
    remove_local_image(docker, &outcome.image).await;
}

#[tokio::test]
async fn a_base_of_another_platform_is_refused_with_pull_policy_never() {
    let registry = service("FLINK_EKS_TEST_REGISTRY");
    // The amd64 stand-in base, for an arm64 image.
    let spec = unique_spec(&registry, "wrongbase")
        .with_platform("linux/arm64")
        .with_pull_policy(PullPolicy::Never);
    let builder = builder().await;
    let err = builder
        .plan_and_apply(&spec, &Credentials::Anonymous, &Recorder::default())
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::BaseImageWrongPlatform { .. }),
        "{err:?}"
    );
    let shown = err.to_string();
    assert!(
        shown.contains(&spec.base)
            && shown.contains("is for linux/amd64, not linux/arm64")
            && shown.contains("docker pull --platform linux/arm64"),
        "{shown}"
    );
    let context = BuildContext::new(&spec).unwrap();
    let image = format!("{}:{}", spec.repository, context.default_tag());
    assert!(
        !local_image_exists(builder.docker().await.unwrap(), &image).await,
        "nothing was built"
    );
}

//! The plan against the real registry, and applying it, with no Docker daemon: the images
//! are put in the registry through the Distribution API (a config blob carrying the context
//! label, no layers), so that only the plan's reads decide.

mod common;

use common::{Recorder, RegistryLog, service, unique};
use flink_eks_image_builder::{
    BuildContext, CONTEXT_DIGEST_LABEL, Credentials, Error, ImageBuilder, ImageSpec, ProgressEvent,
    RegistryState, plan,
};
use flink_eks_plan::Action;
use sha2::Digest as _;

/// Puts an image with no layers under `repository:tag` in the registry at `registry`, its
/// config labelled with `context_digest` (no label with `None`). Returns the manifest digest
/// the registry reports.
async fn put_image(registry: &str, path: &str, tag: &str, context_digest: Option<&str>) -> String {
    let http = reqwest::Client::new();
    let labels = match context_digest {
        Some(digest) => serde_json::json!({ CONTEXT_DIGEST_LABEL: digest }),
        None => serde_json::json!({}),
    };
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": { "Labels": labels },
        "rootfs": { "type": "layers", "diff_ids": [] },
    }))
    .unwrap();
    let config_digest = format!("sha256:{}", hex::encode(sha2::Sha256::digest(&config)));
    let started = http
        .post(format!("http://{registry}/v2/{path}/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    assert_eq!(started.status(), 202, "start a blob upload");
    let location = started.headers()["location"].to_str().unwrap().to_owned();
    let location = if location.starts_with("http") {
        location
    } else {
        format!("http://{registry}{location}")
    };
    let separator = if location.contains('?') { '&' } else { '?' };
    let uploaded = http
        .put(format!("{location}{separator}digest={config_digest}"))
        .header("content-type", "application/octet-stream")
        .body(config.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(uploaded.status(), 201, "upload the config blob");
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {
            "mediaType": "application/vnd.docker.container.image.v1+json",
            "size": config.len(),
            "digest": config_digest,
        },
        "layers": [],
    });
    let put = http
        .put(format!("http://{registry}/v2/{path}/manifests/{tag}"))
        .header(
            "content-type",
            "application/vnd.docker.distribution.manifest.v2+json",
        )
        .body(serde_json::to_vec(&manifest).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 201, "put the manifest");
    put.headers()["docker-content-digest"]
        .to_str()
        .unwrap()
        .to_owned()
}

/// A spec for a fresh repository of the test registry, and its repository path.
fn fresh_spec(label: &str) -> (ImageSpec, String, String) {
    let registry = service("FLINK_EKS_TEST_REGISTRY");
    let path = format!("flink-eks-it/{}", unique(label));
    let spec = ImageSpec::new("1.20.0", format!("{registry}/{path}"));
    (spec, registry, path)
}

/// A builder whose daemon socket does not exist: any call to the daemon would fail.
async fn builder_without_daemon(dir: &tempfile::TempDir) -> ImageBuilder {
    let socket = dir.path().join("no-daemon.sock");
    ImageBuilder::connect_with(&format!("unix://{}", socket.display()))
        .await
        .unwrap()
}

#[tokio::test]
async fn an_absent_tag_is_a_create() {
    let (spec, _, _) = fresh_spec("absent");
    let context = BuildContext::new(&spec).unwrap();
    let plan = plan(&spec, &context, &Credentials::Anonymous)
        .await
        .unwrap();
    assert_eq!(plan.registry, RegistryState::Absent);
    let op = plan.operation();
    assert_eq!(op.action, Action::Create);
    assert_eq!(op.kind, "image");
    assert_eq!(
        op.name,
        format!("{}:sha256-{}", spec.repository, context.digest_hex())
    );
    assert_eq!(op.detail, "build and push for linux/amd64");
    assert!(plan.writes());
}

#[tokio::test]
async fn a_no_change_plan_applied_sends_the_registry_nothing_and_needs_no_daemon() {
    let (spec, registry, path) = fresh_spec("nochange");
    let context = BuildContext::new(&spec).unwrap();
    let manifest = put_image(
        &registry,
        &path,
        &context.default_tag(),
        Some(&context.digest),
    )
    .await;

    let planning = RegistryLog::from_now("FLINK_EKS_TEST_REGISTRY_LOG");
    let plan = plan(&spec, &context, &Credentials::Anonymous)
        .await
        .unwrap();
    assert_eq!(plan.operation().action, Action::NoChange);
    assert_eq!(
        plan.operation().detail,
        "the registry holds this build for linux/amd64"
    );
    assert_eq!(plan.manifest_digest.as_deref(), Some(manifest.as_str()));
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let requests = planning.requests_for(&path);
    assert_eq!(requests.len(), 1, "one HEAD: {requests:?}");
    assert!(requests[0].starts_with("HEAD ") && requests[0].contains("/manifests/sha256-"));

    let applying = RegistryLog::from_now("FLINK_EKS_TEST_REGISTRY_LOG");
    let dir = tempfile::tempdir().unwrap();
    let recorder = Recorder::default();
    let outcome = builder_without_daemon(&dir)
        .await
        .apply(&plan, &spec, &context, &Credentials::Anonymous, &recorder)
        .await
        .unwrap();
    assert!(!outcome.built && !outcome.pushed, "{outcome:?}");
    assert_eq!(outcome.manifest_digest.as_deref(), Some(manifest.as_str()));
    assert_eq!(
        recorder.events(),
        [ProgressEvent::UpToDate {
            image: plan.image.clone()
        }]
    );
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(applying.requests_for(&path), Vec::<String>::new());
}

#[tokio::test]
async fn a_user_tag_is_compared_by_its_label_and_an_update_shows_what_it_held() {
    let (spec, registry, path) = fresh_spec("usertag");
    let spec = spec.with_tag("latest");
    let context = BuildContext::new(&spec).unwrap();

    let same = put_image(&registry, &path, "latest", Some(&context.digest)).await;
    let plan_same = plan(&spec, &context, &Credentials::Anonymous)
        .await
        .unwrap();
    assert_eq!(plan_same.operation().action, Action::NoChange);
    assert_eq!(plan_same.manifest_digest.as_deref(), Some(same.as_str()));

    let old = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    put_image(&registry, &path, "latest", Some(old)).await;
    let update = plan(&spec, &context, &Credentials::Anonymous)
        .await
        .unwrap()
        .operation();
    assert_eq!(update.action, Action::Update);
    assert_eq!(update.name, format!("{}:latest", spec.repository));
    assert_eq!(update.observed.as_deref(), Some(&*format!("context {old}")));
    assert_eq!(
        update.detail,
        "the tag holds another build: build and push for linux/amd64"
    );

    let unlabelled = put_image(&registry, &path, "latest", None).await;
    let update = plan(&spec, &context, &Credentials::Anonymous)
        .await
        .unwrap()
        .operation();
    assert_eq!(update.action, Action::Update);
    assert_eq!(
        update.observed.as_deref(),
        Some(&*format!("manifest {unlabelled}"))
    );
}

#[tokio::test]
async fn a_plan_applied_with_another_context_is_refused_and_sends_nothing() {
    let (spec, _, path) = fresh_spec("otherctx");
    let context = BuildContext::new(&spec).unwrap();
    let plan = plan(&spec, &context, &Credentials::Anonymous)
        .await
        .unwrap();
    assert!(plan.writes());

    let changed = spec.clone().with_pyflink(true);
    let changed_context = BuildContext::new(&changed).unwrap();
    let log = RegistryLog::from_now("FLINK_EKS_TEST_REGISTRY_LOG");
    let dir = tempfile::tempdir().unwrap();
    let recorder = Recorder::default();
    let err = builder_without_daemon(&dir)
        .await
        .apply(
            &plan,
            &changed,
            &changed_context,
            &Credentials::Anonymous,
            &recorder,
        )
        .await
        .unwrap_err();
    // Refused before the daemon is asked: not DockerUnavailable.
    assert!(matches!(err, Error::PlanForOtherContext { .. }), "{err:?}");
    assert!(recorder.events().is_empty());
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(log.requests_for(&path), Vec::<String>::new());
}

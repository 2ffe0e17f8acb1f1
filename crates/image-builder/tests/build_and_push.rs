//! Build and push against the real Docker daemon and registries that `cargo xtask test`
//! starts (FLINK_EKS_TEST_REGISTRY, FLINK_EKS_TEST_BASE_IMAGE, ...).

mod common;

use common::{
    PlanAndApply, Recorder, RegistryLog, local_image_exists, pull, remove_local_image,
    run_in_image, service, unique_spec,
};
use flink_eks_image_builder::{
    BuildContext, ConnectorJar, Credentials, Error, ImageBuilder, ProgressEvent, RegistryState,
    plan,
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

#[tokio::test]
async fn built_image_has_the_s3_plugin_in_its_own_folder_and_runs_as_flink() {
    let registry = service("FLINK_EKS_TEST_REGISTRY");
    let spec = unique_spec(&registry, "plugin");
    let builder = builder().await;
    let recorder = Recorder::default();

    let outcome = builder
        .plan_and_apply(&spec, &Credentials::Anonymous, &recorder.clone())
        .await
        .unwrap();
    assert!(outcome.built && outcome.pushed, "{outcome:?}");
    let context = BuildContext::new(&spec).unwrap();
    assert_eq!(outcome.context_digest, context.digest);
    assert_eq!(
        outcome.image,
        format!("{}:sha256-{}", spec.repository, context.digest_hex())
    );
    assert!(
        outcome
            .manifest_digest
            .as_deref()
            .is_some_and(|d| d.starts_with("sha256:"))
    );
    let events = recorder.events();
    assert!(
        events.iter().any(
            |e| matches!(e, ProgressEvent::BuildStep { step } if step.contains("COPY --from="))
        )
    );
    assert!(events.iter().any(|e| matches!(
        e,
        ProgressEvent::LayerDone {
            already_existed: false,
            ..
        }
    )));

    // What a user checks: pull the pushed image back and look inside.
    let docker = builder.docker().await.unwrap();
    remove_local_image(docker, &outcome.image).await;
    pull(docker, &outcome.image, None).await;
    let (code, output) = run_in_image(
        docker,
        &outcome.image,
        &[
            "ls",
            "-ln",
            "/opt/flink/plugins/s3-fs-hadoop/flink-s3-fs-hadoop-1.20.0.jar",
            "/opt/flink/lib/it-connector.jar",
        ],
    )
    .await;
    assert_eq!(code, 0, "{output}");
    for line in output.lines().filter(|l| !l.trim().is_empty()) {
        // Owned by flink (uid 9999 in the stand-in base).
        assert!(line.contains(" 9999 "), "not owned by flink: {line}");
    }
    let (_, id) = run_in_image(docker, &outcome.image, &["id", "-un"]).await;
    assert_eq!(id.trim(), "flink");
    let inspect = docker.inspect_image(&outcome.image).await.unwrap();
    let labels = inspect.config.and_then(|c| c.labels).unwrap_or_default();
    assert_eq!(
        labels.get(flink_eks_image_builder::CONTEXT_DIGEST_LABEL),
        Some(&context.digest)
    );
    remove_local_image(docker, &outcome.image).await;
}

#[tokio::test]
async fn second_run_with_the_same_inputs_builds_nothing_and_uploads_no_blob() {
    let registry = service("FLINK_EKS_TEST_REGISTRY");
    let spec = unique_spec(&registry, "rerun");
    let builder = builder().await;
    let first = builder
        .plan_and_apply(&spec, &Credentials::Anonymous, &Recorder::default())
        .await
        .unwrap();
    assert!(first.built && first.pushed);
    // Without the local image, a build would have to recreate it: its absence afterwards
    // shows no build ran.
    remove_local_image(builder.docker().await.unwrap(), &first.image).await;

    let path = spec.parsed_repository().unwrap().path().to_owned();
    let context = BuildContext::new(&spec).unwrap();
    let planning = RegistryLog::from_now("FLINK_EKS_TEST_REGISTRY_LOG");
    let plan = plan(&spec, &context, &Credentials::Anonymous)
        .await
        .unwrap();
    assert_eq!(plan.operation().action, Action::NoChange);
    assert_eq!(plan.image, first.image);
    assert_eq!(plan.manifest_digest, first.manifest_digest);

    // The plan asked with the manifest HEAD and nothing else for this repository.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let requests = planning.requests_for(&path);
    assert!(!requests.is_empty(), "the plan must ask the registry");
    for request in &requests {
        assert!(
            request.starts_with("HEAD ") && request.contains("/manifests/"),
            "{requests:?}"
        );
    }

    // Applying the no-change plan sends the registry nothing at all.
    let applying = RegistryLog::from_now("FLINK_EKS_TEST_REGISTRY_LOG");
    let recorder = Recorder::default();
    let second = builder
        .apply(&plan, &spec, &context, &Credentials::Anonymous, &recorder)
        .await
        .unwrap();
    assert_eq!(second.image, first.image);
    assert!(!second.built && !second.pushed, "{second:?}");
    assert_eq!(
        recorder.events(),
        [ProgressEvent::UpToDate {
            image: first.image.clone()
        }],
        "it says so, and nothing else happens"
    );
    assert!(!local_image_exists(builder.docker().await.unwrap(), &first.image).await);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(applying.requests_for(&path), Vec::<String>::new());
}

#[tokio::test]
async fn a_plan_for_another_context_is_refused_and_nothing_is_built_or_pushed() {
    let registry = service("FLINK_EKS_TEST_REGISTRY");
    let spec = unique_spec(&registry, "otherctx");
    let context = BuildContext::new(&spec).unwrap();
    let planned = plan(&spec, &context, &Credentials::Anonymous)
        .await
        .unwrap();
    assert_eq!(planned.operation().action, Action::Create);

    let mut changed = spec.clone();
    changed.connector_jars[0]
        .bytes
        .extend_from_slice(b" changed after planning");
    let changed_context = BuildContext::new(&changed).unwrap();
    let log = RegistryLog::from_now("FLINK_EKS_TEST_REGISTRY_LOG");
    let recorder = Recorder::default();
    let builder = builder().await;
    let err = builder
        .apply(
            &planned,
            &changed,
            &changed_context,
            &Credentials::Anonymous,
            &recorder,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::PlanForOtherContext { .. }), "{err:?}");
    let shown = err.to_string();
    eprintln!("{shown}");
    assert!(
        shown.contains(&context.digest) && shown.contains(&changed_context.digest),
        "{shown}"
    );
    assert!(recorder.events().is_empty(), "{:?}", recorder.events());
    for image in [
        &planned.image,
        &format!("{}:{}", changed.repository, changed_context.default_tag()),
    ] {
        assert!(
            !local_image_exists(builder.docker().await.unwrap(), image).await,
            "{image}"
        );
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let path = spec.parsed_repository().unwrap().path().to_owned();
    assert_eq!(log.requests_for(&path), Vec::<String>::new());
}

#[tokio::test]
async fn a_changed_connector_jar_gives_a_new_digest_and_a_new_push() {
    let registry = service("FLINK_EKS_TEST_REGISTRY");
    let spec = unique_spec(&registry, "changed");
    let builder = builder().await;
    let first = builder
        .plan_and_apply(&spec, &Credentials::Anonymous, &Recorder::default())
        .await
        .unwrap();

    let mut changed = spec.clone();
    changed.connector_jars[0] = ConnectorJar::new(
        "it-connector.jar",
        common::unique("PK another build").into_bytes(),
    );
    let log = RegistryLog::from_now("FLINK_EKS_TEST_REGISTRY_LOG");
    let second = builder
        .plan_and_apply(&changed, &Credentials::Anonymous, &Recorder::default())
        .await
        .unwrap();
    assert_ne!(second.context_digest, first.context_digest);
    assert_ne!(second.image, first.image);
    assert!(second.built && second.pushed);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let path = spec.parsed_repository().unwrap().path().to_owned();
    let requests = log.requests_for(&path);
    assert!(
        requests
            .iter()
            .any(|r| r.starts_with("PUT ") && r.contains("/blobs/uploads/")),
        "a new layer is uploaded: {requests:?}"
    );
    assert!(
        requests
            .iter()
            .any(|r| r.starts_with("PUT ") && r.contains("/manifests/"))
    );
    remove_local_image(builder.docker().await.unwrap(), &first.image).await;
    remove_local_image(builder.docker().await.unwrap(), &second.image).await;
}

#[tokio::test]
async fn a_changed_flink_version_gives_a_new_digest_and_a_new_push() {
    let registry = service("FLINK_EKS_TEST_REGISTRY");
    let builder = builder().await;
    // A stand-in base for another release: the same files, named for 1.19.1.
    let base_119 = "flink-eks-test/flink-base-it:1.19.1";
    let dockerfile = format!(
        "FROM {}\nRUN cp /opt/flink/opt/flink-s3-fs-hadoop-1.20.0.jar /opt/flink/opt/flink-s3-fs-hadoop-1.19.1.jar\n",
        service("FLINK_EKS_TEST_BASE_IMAGE")
    );
    build_plain(builder.docker().await.unwrap(), &dockerfile, base_119).await;

    let spec_120 = unique_spec(&registry, "version");
    let mut spec_119 = spec_120.clone();
    spec_119.flink_version = "1.19.1".into();
    spec_119.base = base_119.into();

    let first = builder
        .plan_and_apply(&spec_120, &Credentials::Anonymous, &Recorder::default())
        .await
        .unwrap();
    let plan = plan(
        &spec_119,
        &BuildContext::new(&spec_119).unwrap(),
        &Credentials::Anonymous,
    )
    .await
    .unwrap();
    assert_eq!(plan.registry, RegistryState::Absent);
    assert_eq!(plan.operation().action, Action::Create);
    assert_ne!(plan.context_digest, first.context_digest);
    let second = builder
        .plan_and_apply(&spec_119, &Credentials::Anonymous, &Recorder::default())
        .await
        .unwrap();
    assert!(second.built && second.pushed);
    let (code, output) = run_in_image(
        builder.docker().await.unwrap(),
        &second.image,
        &[
            "ls",
            "/opt/flink/plugins/s3-fs-hadoop/flink-s3-fs-hadoop-1.19.1.jar",
        ],
    )
    .await;
    assert_eq!(code, 0, "{output}");
    remove_local_image(builder.docker().await.unwrap(), &first.image).await;
    remove_local_image(builder.docker().await.unwrap(), &second.image).await;
}

/// Builds a one-file context with bollard, for test fixtures.
async fn build_plain(docker: &bollard::Docker, dockerfile: &str, tag: &str) {
    use futures::StreamExt as _;
    let mut tar = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_ustar();
    header.set_size(dockerfile.len() as u64);
    header.set_mode(0o644);
    tar.append_data(&mut header, "Dockerfile", dockerfile.as_bytes())
        .unwrap();
    let body = tar.into_inner().unwrap();
    let options = bollard::query_parameters::BuildImageOptions {
        t: Some(tag.to_owned()),
        rm: true,
        ..Default::default()
    };
    let mut stream = docker.build_image(options, None, Some(bollard::body_full(body.into())));
    while let Some(item) = stream.next().await {
        item.unwrap_or_else(|e| panic!("build fixture {tag}: {e}"));
    }
}

#[tokio::test]
async fn a_failing_run_reports_the_step_and_the_command_error() {
    // PyFlink on a base without apt-get or pip: a real way for a RUN to fail.
    let registry = service("FLINK_EKS_TEST_REGISTRY");
    let spec = unique_spec(&registry, "failing").with_pyflink(true);
    let builder = builder().await;
    let err = builder
        .plan_and_apply(&spec, &Credentials::Anonymous, &Recorder::default())
        .await
        .unwrap_err();
    let Error::BuildStepFailed {
        step,
        message,
        output,
    } = &err
    else {
        panic!("expected BuildStepFailed, got {err:?}");
    };
    assert!(
        step.starts_with("Step ") && step.contains("RUN set -eux; apt-get update"),
        "{step}"
    );
    assert!(
        message.contains("returned a non-zero code: 127"),
        "{message}"
    );
    assert!(output.contains("apt-get: not found"), "{output}");
    let shown = err.to_string();
    eprintln!("{shown}");
    assert!(
        shown.contains("apt-get: not found") && shown.contains(step.as_str()),
        "{shown}"
    );
    assert!(!shown.contains('\u{1b}'), "no ANSI codes: {shown:?}");
}

#[tokio::test]
async fn a_user_tag_is_compared_by_its_context_digest_label() {
    let registry = service("FLINK_EKS_TEST_REGISTRY");
    let tag = common::unique("tag").replace('-', "_");
    let spec = unique_spec(&registry, "usertag").with_tag(tag.clone());
    let builder = builder().await;
    let first = builder
        .plan_and_apply(&spec, &Credentials::Anonymous, &Recorder::default())
        .await
        .unwrap();
    assert_eq!(first.image, format!("{}:{tag}", spec.repository));
    assert!(first.pushed);

    let again = builder
        .plan_and_apply(&spec, &Credentials::Anonymous, &Recorder::default())
        .await
        .unwrap();
    assert!(
        !again.built && !again.pushed,
        "same content under the same tag"
    );

    let mut changed = spec.clone();
    changed.connector_jars[0]
        .bytes
        .extend_from_slice(b" changed");
    let update = plan(
        &changed,
        &BuildContext::new(&changed).unwrap(),
        &Credentials::Anonymous,
    )
    .await
    .unwrap()
    .operation();
    assert_eq!(update.action, Action::Update);
    assert_eq!(update.name, first.image);
    assert_eq!(
        update.observed,
        Some(format!("context {}", first.context_digest)),
        "the plan shows what the tag held"
    );
    let recorder = Recorder::default();
    let third = builder
        .plan_and_apply(&changed, &Credentials::Anonymous, &recorder.clone())
        .await
        .unwrap();
    assert!(
        third.built && third.pushed,
        "other content under the same tag is replaced"
    );
    assert!(recorder.events().iter().any(|e| matches!(
        e,
        ProgressEvent::TagHoldsOtherContent { remote_digest: Some(d), .. } if *d == first.context_digest
    )));
    remove_local_image(builder.docker().await.unwrap(), &third.image).await;
}

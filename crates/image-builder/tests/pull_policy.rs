//! The base image's pull policy, against the real daemon and registry.

mod common;

use common::{
    PlanAndApply, Recorder, local_image_exists, remove_local_image, service, unique, unique_spec,
};
use flink_eks_image_builder::{
    Credentials, DEFAULT_PLATFORM, Error, ImageBuilder, ProgressEvent, PullPolicy,
};
use futures::StreamExt as _;

/// A builder whose daemon has answered (making one alone sends nothing).
async fn builder() -> ImageBuilder {
    let builder = ImageBuilder::connect().await.unwrap();
    if let Err(e) = builder.docker().await {
        panic!("{e} (the Docker daemon is one of the services `cargo xtask test` starts)")
    }
    builder
}

/// Puts the stand-in base in the registry under a fresh tag and removes it locally.
async fn base_in_registry_only(builder: &ImageBuilder, registry: &str) -> String {
    let docker = builder.docker().await.unwrap();
    let repo = format!("{registry}/flink-eks-it/base");
    let tag = unique("base");
    docker
        .tag_image(
            &service("FLINK_EKS_TEST_BASE_IMAGE"),
            Some(bollard::query_parameters::TagImageOptions {
                repo: Some(repo.clone()),
                tag: Some(tag.clone()),
            }),
        )
        .await
        .unwrap();
    let mut push = docker.push_image(
        &repo,
        Some(bollard::query_parameters::PushImageOptions {
            tag: Some(tag.clone()),
            platform: None,
        }),
        None,
    );
    while let Some(item) = push.next().await {
        item.unwrap();
    }
    let base = format!("{repo}:{tag}");
    remove_local_image(docker, &base).await;
    assert!(!local_image_exists(docker, &base).await);
    base
}

#[tokio::test]
async fn never_fails_on_a_missing_base_without_pulling() {
    let registry = service("FLINK_EKS_TEST_REGISTRY");
    let builder = builder().await;
    let base = base_in_registry_only(&builder, &registry).await;
    let spec = unique_spec(&registry, "never")
        .with_base(base.clone())
        .with_pull_policy(PullPolicy::Never);
    let err = builder
        .plan_and_apply(&spec, &Credentials::Anonymous, &Recorder::default())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::BaseImageMissing { .. }), "{err:?}");
    let shown = err.to_string();
    eprintln!("{shown}");
    assert!(shown.contains(&base) && shown.contains("never"), "{shown}");
    assert!(
        !local_image_exists(builder.docker().await.unwrap(), &base).await,
        "nothing was pulled"
    );
}

#[tokio::test]
async fn if_missing_pulls_once_then_uses_the_local_base() {
    let registry = service("FLINK_EKS_TEST_REGISTRY");
    let builder = builder().await;
    let base = base_in_registry_only(&builder, &registry).await;
    let recorder = Recorder::default();
    builder
        .ensure_base(
            &base,
            PullPolicy::IfMissing,
            DEFAULT_PLATFORM,
            &recorder.clone(),
        )
        .await
        .unwrap();
    assert!(local_image_exists(builder.docker().await.unwrap(), &base).await);
    assert_eq!(
        recorder.events().first(),
        Some(&ProgressEvent::PullingBase {
            image: base.clone()
        })
    );

    let recorder = Recorder::default();
    let spec = unique_spec(&registry, "ifmissing").with_base(base.clone());
    let outcome = builder
        .plan_and_apply(&spec, &Credentials::Anonymous, &recorder.clone())
        .await
        .unwrap();
    assert!(outcome.built);
    assert!(
        recorder
            .events()
            .contains(&ProgressEvent::BaseImagePresent {
                image: base.clone()
            })
    );
    assert!(
        !recorder
            .events()
            .iter()
            .any(|e| matches!(e, ProgressEvent::PullingBase { .. }))
    );
    remove_local_image(builder.docker().await.unwrap(), &outcome.image).await;
}

#[tokio::test]
async fn always_pulls_even_when_the_base_is_present() {
    let registry = service("FLINK_EKS_TEST_REGISTRY");
    let builder = builder().await;
    let base = base_in_registry_only(&builder, &registry).await;
    builder
        .ensure_base(
            &base,
            PullPolicy::IfMissing,
            DEFAULT_PLATFORM,
            &Recorder::default(),
        )
        .await
        .unwrap();
    let recorder = Recorder::default();
    let spec = unique_spec(&registry, "always")
        .with_base(base.clone())
        .with_pull_policy(PullPolicy::Always);
    let outcome = builder
        .plan_and_apply(&spec, &Credentials::Anonymous, &recorder.clone())
        .await
        .unwrap();
    assert!(outcome.built && outcome.pushed);
    assert!(recorder.events().contains(&ProgressEvent::PullingBase {
        image: base.clone()
    }));
    remove_local_image(builder.docker().await.unwrap(), &outcome.image).await;
}

#[tokio::test]
async fn a_base_that_cannot_be_pulled_is_named() {
    let registry = service("FLINK_EKS_TEST_REGISTRY");
    let missing = format!("{registry}/flink-eks-it/no-such-base:{}", unique("x"));
    let err = builder()
        .await
        .ensure_base(
            &missing,
            PullPolicy::IfMissing,
            DEFAULT_PLATFORM,
            &Recorder::default(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::PullFailed { .. }), "{err:?}");
    assert!(err.to_string().contains(&missing), "{err}");
}

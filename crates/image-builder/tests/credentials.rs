//! Credentials against the real registries: htpasswd auth with and without credentials,
//! credentials from a Docker config file and from a credential helper, and ECR tokens from
//! the AWS emulator. The password never shows in any output.

mod common;

use common::{PlanAndApply, Recorder, remove_local_image, service, unique_spec};
use flink_eks_image_builder::{
    CredentialResolver, CredentialSource, Credentials, DockerConfig, Error, ImageBuilder,
    ProgressEvent,
};

fn auth_registry() -> (String, String, String) {
    (
        service("FLINK_EKS_TEST_AUTH_REGISTRY"),
        service("FLINK_EKS_TEST_AUTH_REGISTRY_USER"),
        service("FLINK_EKS_TEST_AUTH_REGISTRY_PASSWORD"),
    )
}

/// A builder whose daemon has answered (making one alone sends nothing).
async fn builder() -> ImageBuilder {
    let builder = ImageBuilder::connect().await.unwrap();
    if let Err(e) = builder.docker().await {
        panic!("{e} (the Docker daemon is one of the services `cargo xtask test` starts)")
    }
    builder
}

/// A fresh image pushed to `registry` with `credentials` is pushed; the local copy is
/// removed afterwards.
async fn assert_pushes_with(registry: &str, name: &str, credentials: &Credentials) {
    let spec = unique_spec(registry, name);
    let builder = builder().await;
    let outcome = builder
        .plan_and_apply(&spec, credentials, &Recorder::default())
        .await
        .unwrap();
    assert!(outcome.pushed);
    remove_local_image(builder.docker().await.unwrap(), &outcome.image).await;
}

#[tokio::test]
async fn push_to_an_htpasswd_registry_works_with_credentials_and_never_shows_the_password() {
    let (registry, user, password) = auth_registry();
    let spec = unique_spec(&registry, "auth");
    let credentials = Credentials::password(&user, &password);
    let builder = builder().await;
    let recorder = Recorder::default();
    let outcome = builder
        .plan_and_apply(&spec, &credentials, &recorder.clone())
        .await
        .unwrap();
    assert!(outcome.built && outcome.pushed, "{outcome:?}");

    // The same inputs again: the authenticated HEAD finds the image.
    let again = builder
        .plan_and_apply(&spec, &credentials, &recorder.clone())
        .await
        .unwrap();
    assert!(!again.built && !again.pushed);

    let everything = format!(
        "{} {outcome:?} {again:?} {credentials:?} {builder:?}",
        recorder.text()
    );
    assert!(
        !everything.contains(&password),
        "the password leaked: {everything}"
    );
    remove_local_image(builder.docker().await.unwrap(), &outcome.image).await;
}

#[tokio::test]
async fn without_credentials_the_push_fails_clearly_before_any_build() {
    let (registry, _, _) = auth_registry();
    let spec = unique_spec(&registry, "noauth");
    let recorder = Recorder::default();
    // The plan is refused by the registry: no daemon is needed to find out.
    let err = ImageBuilder::connect()
        .await
        .unwrap()
        .plan_and_apply(&spec, &Credentials::Anonymous, &recorder.clone())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::RegistryUnauthorized { .. }), "{err:?}");
    let shown = err.to_string();
    eprintln!("{shown}");
    assert!(shown.contains(&registry), "{shown}");
    assert!(shown.contains("none were found"), "{shown}");
    assert!(
        shown.contains(&format!("docker login {registry}")),
        "{shown}"
    );
    assert!(
        !recorder
            .events()
            .iter()
            .any(|e| matches!(e, ProgressEvent::BuildStep { .. })),
        "nothing is built when the registry refuses"
    );
}

#[tokio::test]
async fn a_wrong_password_is_refused_and_not_shown() {
    let (registry, user, password) = auth_registry();
    let wrong = format!("{password}-wrong");
    let spec = unique_spec(&registry, "wrongpw");
    let err = ImageBuilder::connect()
        .await
        .unwrap()
        .plan_and_apply(
            &spec,
            &Credentials::password(&user, &wrong),
            &Recorder::default(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::RegistryUnauthorized { .. }), "{err:?}");
    let shown = format!("{err} {err:?}");
    eprintln!("{shown}");
    assert!(shown.contains("credentials from the caller"), "{shown}");
    assert!(
        !shown.contains(&wrong) && !shown.contains(&password),
        "{shown}"
    );
}

#[tokio::test]
async fn credentials_come_from_the_docker_config_auths() {
    let (registry, user, password) = auth_registry();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.json");
    let auth = base64_encode(&format!("{user}:{password}"));
    std::fs::write(
        &path,
        format!(r#"{{"auths": {{"http://{registry}": {{"auth": "{auth}"}}}}}}"#),
    )
    .unwrap();
    let config = DockerConfig::load(&path).unwrap().unwrap();
    let credentials = CredentialResolver::new()
        .with_docker_config(config)
        .resolve(&registry)
        .await
        .unwrap();
    assert_eq!(
        credentials.source(),
        Some(&CredentialSource::DockerConfig(path.clone()))
    );
    assert_pushes_with(&registry, "configauth", &credentials).await;
}

#[tokio::test]
async fn credentials_come_from_a_credential_helper() {
    let (registry, user, password) = auth_registry();
    let dir = tempfile::tempdir().unwrap();
    // A helper speaking the docker-credential protocol: the server on stdin, JSON out.
    let helper = dir.path().join("docker-credential-flinkeks");
    std::fs::write(
        &helper,
        format!(
            "#!/bin/sh\nread server\nif [ \"$server\" = \"{registry}\" ]; then\n  printf '{{\"ServerURL\":\"%s\",\"Username\":\"{user}\",\"Secret\":\"{password}\"}}' \"$server\"\nelse\n  echo 'credentials not found in native keychain'\n  exit 1\nfi\n"
        ),
    )
    .unwrap();
    make_executable(&helper);
    let config = DockerConfig::parse(
        &format!(r#"{{"credHelpers": {{"{registry}": "flinkeks"}}, "credsStore": "flinkeks"}}"#),
        &dir.path().join("config.json"),
    )
    .unwrap();
    let resolver = CredentialResolver::new()
        .with_docker_config(config)
        .with_helper_dir(dir.path());
    let credentials = resolver.resolve(&registry).await.unwrap();
    assert_eq!(
        credentials.source(),
        Some(&CredentialSource::CredentialHelper("flinkeks".into()))
    );
    // The store has nothing for another registry: anonymous, not an error.
    assert_eq!(
        resolver.resolve("127.0.0.1:9").await.unwrap(),
        Credentials::Anonymous
    );

    assert_pushes_with(&registry, "helper", &credentials).await;
}

#[tokio::test]
async fn a_missing_or_failing_helper_is_named_with_its_own_error() {
    let dir = tempfile::tempdir().unwrap();
    let helper = dir.path().join("docker-credential-broken");
    std::fs::write(
        &helper,
        "#!/bin/sh\necho 'keychain is locked' >&2\nexit 3\n",
    )
    .unwrap();
    make_executable(&helper);
    let config = DockerConfig::parse(
        r#"{"credHelpers": {"r.example.com": "broken", "s.example.com": "absent"}}"#,
        &dir.path().join("config.json"),
    )
    .unwrap();
    let resolver = CredentialResolver::new()
        .with_docker_config(config)
        .with_helper_dir(dir.path());
    let err = resolver
        .resolve("r.example.com")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("docker-credential-broken") && err.contains("keychain is locked"),
        "{err}"
    );
    let err = resolver
        .resolve("s.example.com")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("docker-credential-absent is not installed"),
        "{err}"
    );
}

#[tokio::test]
async fn ecr_repositories_get_a_token_from_get_authorization_token() {
    let endpoint = service("FLINK_EKS_TEST_AWS_ENDPOINT");
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_ecr::config::Credentials::new(
            "testing", "testing", None, None, "test",
        ))
        .load()
        .await;
    let credentials = CredentialResolver::new()
        .with_aws_config(sdk)
        .resolve("123456789012.dkr.ecr.us-east-1.amazonaws.com")
        .await
        .unwrap();
    let Credentials::Password {
        username,
        password,
        source,
    } = &credentials
    else {
        panic!("expected a password, got {credentials:?}");
    };
    assert_eq!(username, "AWS");
    assert_eq!(source, &CredentialSource::Ecr);
    assert!(!password.expose().is_empty());
    assert!(!format!("{credentials:?}").contains(password.expose()));
}

fn base64_encode(text: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(text)
}

fn make_executable(path: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

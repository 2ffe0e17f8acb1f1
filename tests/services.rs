//! The services `cargo xtask test` starts are the real ones, and they answer: a Docker engine
//! that builds FROM the stand-in Flink base image, a registry that takes the push, and an AWS
//! emulator that speaks STS over the real wire protocol.

use std::io::Write;

use bollard::Docker;
use bollard::query_parameters::{BuildImageOptionsBuilder, PushImageOptionsBuilder};
use flink_eks_tests::{service, unique};
use futures::StreamExt;

fn context_with(dockerfile: &str) -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_path("Dockerfile").expect("path");
    header.set_size(dockerfile.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    tar.append(&header, dockerfile.as_bytes()).expect("append");
    let tar = tar.into_inner().expect("tar");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).expect("gzip");
    gz.finish().expect("gzip")
}

#[tokio::test]
async fn docker_builds_from_the_base_image_and_the_registry_takes_the_push() {
    let base = service("FLINK_EKS_TEST_BASE_IMAGE");
    let registry = service("FLINK_EKS_TEST_REGISTRY");
    let docker = Docker::connect_with_local_defaults()
        .expect("connect")
        .negotiate_version()
        .await
        .expect("no Docker engine answers: run the tests through `cargo xtask test`");

    let repo = format!("{registry}/smoke/{}", unique("trivial"));
    let dockerfile =
        format!("FROM {base}\nRUN echo built-by-the-smoke-test > /opt/flink/usrlib/marker\n");
    let options = BuildImageOptionsBuilder::default()
        .t(&format!("{repo}:1"))
        .rm(true)
        .build();
    let mut build = docker.build_image(
        options,
        None,
        Some(bollard::body_full(context_with(&dockerfile).into())),
    );
    while let Some(item) = build.next().await {
        item.expect("the build of a trivial image FROM the stand-in base failed");
    }

    let options = PushImageOptionsBuilder::default().tag("1").build();
    let mut push = docker.push_image(&repo, Some(options), None);
    while let Some(item) = push.next().await {
        item.expect("the push to the test registry failed");
    }

    // The registry itself, not the local daemon, must now hold the tag.
    let path = repo
        .split_once('/')
        .map(|(_, p)| p)
        .expect("repository path");
    let tags = http_get(&registry, &format!("/v2/{path}/tags/list")).await;
    assert!(
        tags.contains("\"1\""),
        "the registry does not list the pushed tag: {tags}"
    );
}

#[tokio::test]
async fn moto_answers_sts_get_caller_identity() {
    let endpoint = service("FLINK_EKS_TEST_AWS_ENDPOINT");
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_sts::config::Credentials::new(
            "testing", "testing", None, None, "test",
        ))
        .load()
        .await;
    let identity = aws_sdk_sts::Client::new(&config)
        .get_caller_identity()
        .send()
        .await
        .expect("STS GetCallerIdentity on the AWS emulator failed");
    let account = identity.account().expect("an account id");
    assert_eq!(account.len(), 12, "account id {account:?}");
    assert!(
        identity
            .arn()
            .is_some_and(|arn| arn.starts_with("arn:aws:")),
        "{identity:?}"
    );
}

/// A plain HTTP/1.0 GET over loopback, enough for the registry's JSON API.
async fn http_get(host: &str, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(host)
        .await
        .expect("connect to the registry");
    let request = format!("GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut reply = String::new();
    stream.read_to_string(&mut reply).await.expect("read");
    reply
}

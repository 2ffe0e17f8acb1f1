//! Without a Docker daemon: one clear line saying how to start one, at the first operation
//! that needs the daemon (making an `ImageBuilder` sends nothing).

use flink_eks_image_builder::{Error, ImageBuilder};

/// A builder pointed at a socket file left behind by a daemon that is gone (nobody listens);
/// the directory holding it, which must outlive the builder's use.
async fn builder_on_a_dead_socket() -> (tempfile::TempDir, ImageBuilder) {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("stale-docker.sock");
    drop(std::os::unix::net::UnixListener::bind(&socket).unwrap());
    let builder = ImageBuilder::connect_with(socket.to_str().unwrap())
        .await
        .unwrap();
    (dir, builder)
}

#[tokio::test]
async fn a_missing_socket_gives_one_line_saying_how_to_start_a_daemon() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("no-such-docker.sock");
    let address = format!("unix://{}", socket.display());
    let builder = ImageBuilder::connect_with(&address)
        .await
        .expect("making a builder sends nothing");
    let err = builder.docker().await.unwrap_err();
    assert!(matches!(err, Error::DockerUnavailable { .. }), "{err:?}");
    let shown = err.to_string();
    eprintln!("{shown}");
    assert_eq!(shown.lines().count(), 1, "{shown}");
    assert!(
        shown.starts_with(&format!("no Docker daemon at {address}")),
        "{shown}"
    );
    assert!(shown.contains("does not exist"), "{shown}");
    assert!(
        shown.contains("start one") && shown.contains("DOCKER_HOST"),
        "{shown}"
    );
}

#[tokio::test]
async fn a_socket_nobody_listens_on_gives_the_same_clear_error() {
    let (_dir, builder) = builder_on_a_dead_socket().await;
    let err = builder.docker().await.unwrap_err();
    assert!(matches!(err, Error::DockerUnavailable { .. }), "{err:?}");
    let shown = err.to_string();
    eprintln!("{shown}");
    assert_eq!(shown.lines().count(), 1, "{shown}");
    assert!(shown.contains("start one"), "{shown}");
}

#[tokio::test]
async fn an_unsupported_docker_host_is_named() {
    let err = ImageBuilder::connect_with("ssh://builder@host")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("ssh://builder@host") && err.contains("unix://"),
        "{err}"
    );
}

#[tokio::test]
async fn preflight_without_a_daemon_is_the_same_one_line_error() {
    let (_dir, builder) = builder_on_a_dead_socket().await;
    let err = builder.preflight().await.unwrap_err();
    assert!(matches!(err, Error::DockerUnavailable { .. }), "{err:?}");
    assert_eq!(err.to_string().lines().count(), 1, "{err}");
    assert!(err.to_string().contains("DOCKER_HOST"), "{err}");
}

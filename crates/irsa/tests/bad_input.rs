//! Bad input: a clear error naming the input, and nothing created.

mod common;

use common::{CallLog, World, apply, clients, sdk_config_without_credentials, spec, unique};
use flink_eks_irsa::{Error, Irsa};

#[tokio::test]
async fn invalid_role_names_are_refused_before_any_call() {
    let world = World::start().await;
    let kube_writes = world.standin_writes();
    let cluster = unique("flink");
    for (role_name, rule) in [
        ("r".repeat(65), "1 to 64"),
        ("flink role".to_owned(), "letters, digits"),
    ] {
        let mut spec = spec(&cluster, "flink", "test/job.py");
        spec.role_name = role_name.clone();
        let err = apply(&world.irsa, &spec).await.unwrap_err();
        let message = err.to_string();
        assert!(matches!(err, Error::InvalidInput(_)), "{message}");
        assert!(
            message.contains("IAM role name") && message.contains(&role_name),
            "{message}"
        );
        assert!(message.contains(rule), "{message}");
        assert!(world.irsa.plan(&spec).await.is_err());
        assert!(world.irsa.teardown(&spec).await.is_err());
        assert!(world.irsa.verify(&spec).await.is_err());
    }
    assert_eq!(
        world.log.calls(),
        Vec::<String>::new(),
        "no AWS call at all"
    );
    assert_eq!(world.standin_writes(), kube_writes);
}

#[tokio::test]
async fn an_unknown_cluster_is_named_and_nothing_is_created() {
    let world = World::start().await;
    let kube_writes = world.standin_writes();
    let spec = spec(&unique("no-such-cluster"), "flink", "test/job.py");
    let err = apply(&world.irsa, &spec).await.unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, Error::ClusterNotFound { .. }), "{message}");
    assert!(
        message.contains(&spec.cluster) && message.contains("us-east-1"),
        "{message}"
    );
    assert!(message.contains("aws eks list-clusters"), "{message}");
    assert!(matches!(
        world.irsa.teardown(&spec).await,
        Err(Error::ClusterNotFound { .. })
    ));
    assert_eq!(world.log.writes(), Vec::<String>::new());
    assert_eq!(world.standin_writes(), kube_writes);
    assert!(!world.role_exists(&spec.role_name).await);
}

#[tokio::test]
async fn no_credentials_is_a_clear_error_and_nothing_is_created() {
    let (world, cluster) = World::with_cluster().await;
    let spec = spec(&cluster, "flink", "test/job.py");
    let log = CallLog::default();
    let (iam, sts, eks) = clients(
        &sdk_config_without_credentials(),
        &world.account,
        Some(&log),
    );
    let irsa = Irsa::from_clients(iam, sts, eks, world.kube.clone());
    let kube_writes = world.standin_writes();

    let err = apply(&irsa, &spec).await.unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, Error::NoCredentials { .. }), "{message}");
    assert!(
        message.contains("AWS_PROFILE") && message.contains("aws configure"),
        "{message}"
    );
    assert!(matches!(
        irsa.verify(&spec).await,
        Err(Error::NoCredentials { .. })
    ));
    // The first wave of reads was attempted (none left the machine); nothing was written.
    assert!(
        log.calls().contains(&"EKS:DescribeCluster".to_owned()),
        "{:?}",
        log.calls()
    );
    assert_eq!(log.writes(), Vec::<String>::new());
    assert_eq!(world.standin_writes(), kube_writes);
    assert!(!world.role_exists(&spec.role_name).await);

    // A profile that does not exist (a mistyped AWS_PROFILE): the provider's own reason is
    // passed on, with the hint.
    let profile = aws_config::profile::ProfileFileCredentialsProvider::builder()
        .profile_name("flink-eks-tests-no-such-profile")
        .build();
    let config = aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(common::endpoint())
        .credentials_provider(aws_sdk_iam::config::SharedCredentialsProvider::new(profile))
        .build();
    let irsa = Irsa::new(&config, world.kube.clone());
    let err = irsa.plan(&spec).await.unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, Error::NoCredentials { .. }), "{message}");
    assert!(
        message.contains("credential provider") && message.contains("AWS_PROFILE"),
        "{message}"
    );
}

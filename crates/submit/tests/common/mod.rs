//! Shared set-up of the integration tests: the services they run against.
#![allow(dead_code, unreachable_pub)]

use std::sync::atomic::{AtomicU32, Ordering};

/// The moto server's endpoint, from `FLINK_EKS_TEST_AWS_ENDPOINT`; fails the test when unset.
pub fn aws_endpoint() -> String {
    flink_eks_tests::service("FLINK_EKS_TEST_AWS_ENDPOINT")
}

/// An S3 client for the moto server, as the product builds one (path-style for a custom endpoint).
pub async fn s3() -> aws_sdk_s3::Client {
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(aws_endpoint())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            "testing",
            "testing",
            None,
            None,
            "flink-eks-submit-tests",
        ))
        .load()
        .await;
    flink_eks_submit::s3_client(&config)
}

/// A bucket name no other test (of this process or of an earlier run) uses.
pub fn unique_bucket(prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    format!(
        "{prefix}-{}-{nanos}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Creates a versioned bucket: every write to it leaves a version, so tests count writes.
pub async fn versioned_bucket(s3: &aws_sdk_s3::Client, prefix: &str) -> String {
    let bucket = unique_bucket(prefix);
    s3.create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .expect("create bucket in moto");
    s3.put_bucket_versioning()
        .bucket(&bucket)
        .versioning_configuration(
            aws_sdk_s3::types::VersioningConfiguration::builder()
                .status(aws_sdk_s3::types::BucketVersioningStatus::Enabled)
                .build(),
        )
        .send()
        .await
        .expect("enable versioning in moto");
    bucket
}

/// A first version of a PyFlink script.
pub const SCRIPT_V1: &[u8] = b"from pyflink.table import TableEnvironment\nprint('v1')\n";
/// The same script, changed.
pub const SCRIPT_V2: &[u8] = b"from pyflink.table import TableEnvironment\nprint('v2')\n";

/// The versions and delete markers the versioned bucket holds for `key`.
async fn object_versions(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
) -> aws_sdk_s3::operation::list_object_versions::ListObjectVersionsOutput {
    s3.list_object_versions()
        .bucket(bucket)
        .prefix(key)
        .send()
        .await
        .expect("list object versions in moto")
}

/// How many versions of `key` the bucket holds: the number of writes made to it.
pub async fn versions(s3: &aws_sdk_s3::Client, bucket: &str, key: &str) -> usize {
    let out = object_versions(s3, bucket, key).await;
    out.versions()
        .iter()
        .filter(|v| v.key() == Some(key))
        .count()
}

/// How many delete markers the versioned bucket holds for `key`: the deletes made.
pub async fn delete_markers(s3: &aws_sdk_s3::Client, bucket: &str, key: &str) -> usize {
    let out = object_versions(s3, bucket, key).await;
    out.delete_markers()
        .iter()
        .filter(|m| m.key() == Some(key))
        .count()
}

/// Puts `body` at `key` the way `aws s3 cp` does: no checksum, no `sha256` metadata.
pub async fn put_by_hand(s3: &aws_sdk_s3::Client, bucket: &str, key: &str, body: &[u8]) {
    s3.put_object()
        .bucket(bucket)
        .key(key)
        .body(body.to_vec().into())
        .send()
        .await
        .expect("put object in moto");
}

/// The object's current body.
pub async fn body(s3: &aws_sdk_s3::Client, bucket: &str, key: &str) -> Vec<u8> {
    let out = s3
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .expect("get object");
    out.body
        .collect()
        .await
        .expect("read object body")
        .into_bytes()
        .to_vec()
}

/// Plans and applies the upload of `script` to `location`, as a deploy does.
pub async fn upload(
    uploader: &flink_eks_submit::Uploader,
    location: &flink_eks_manifest::S3Location,
    script: &[u8],
) -> flink_eks_submit::Result<flink_eks_submit::UploadOutcome> {
    let plan = uploader.plan(location, script).await?;
    uploader.apply(&plan, script).await
}

//! The script upload against a real S3 wire protocol (moto).

mod common;

use common::{SCRIPT_V1, SCRIPT_V2};
use flink_eks_manifest::S3Location;
use flink_eks_submit::{Change, UploadError, Uploader, plan_upload, sha256_hex};

#[tokio::test]
async fn first_upload_creates_and_a_second_one_writes_nothing() {
    let s3 = common::s3().await;
    let bucket = common::versioned_bucket(&s3, "upload-same").await;
    let location = S3Location::new(&bucket, "jobs/python_demo_s3.py").unwrap();
    let uploader = Uploader::new(s3.clone());

    let first = uploader.upload(&location, SCRIPT_V1).await.unwrap();
    assert_eq!(first.action, Change::Create);
    assert_eq!(first.sha256, sha256_hex(SCRIPT_V1));
    assert_eq!(
        first.location,
        format!("s3://{bucket}/jobs/python_demo_s3.py")
    );
    assert_eq!(common::body(&s3, &bucket, location.key()).await, SCRIPT_V1);

    // The object carries the checksum where a user would look for it.
    let head = s3
        .head_object()
        .bucket(&bucket)
        .key(location.key())
        .checksum_mode(aws_sdk_s3::types::ChecksumMode::Enabled)
        .send()
        .await
        .unwrap();
    let meta = head.metadata().and_then(|m| m.get("sha256")).cloned();
    assert_eq!(meta.as_deref(), Some(sha256_hex(SCRIPT_V1).as_str()));
    let expected = {
        use base64::Engine as _;
        use sha2::Digest as _;
        base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(SCRIPT_V1))
    };
    assert_eq!(
        head.checksum_sha256(),
        Some(expected.as_str()),
        "S3's own SHA-256 checksum"
    );

    let again = uploader.upload(&location, SCRIPT_V1).await.unwrap();
    assert_eq!(again.action, Change::NoChange);
    assert_eq!(again.sha256, first.sha256);
    assert_eq!(
        common::versions(&s3, &bucket, location.key()).await,
        1,
        "no second write"
    );
}

#[tokio::test]
async fn a_changed_script_is_uploaded_again() {
    let s3 = common::s3().await;
    let bucket = common::versioned_bucket(&s3, "upload-changed").await;
    let location = S3Location::new(&bucket, "jobs/job.py").unwrap();
    let uploader = Uploader::new(s3.clone());

    uploader.upload(&location, SCRIPT_V1).await.unwrap();
    let second = uploader.upload(&location, SCRIPT_V2).await.unwrap();
    assert_eq!(second.action, Change::Update);
    assert_eq!(second.sha256, sha256_hex(SCRIPT_V2));
    assert_eq!(common::body(&s3, &bucket, location.key()).await, SCRIPT_V2);
    assert_eq!(common::versions(&s3, &bucket, location.key()).await, 2);
}

#[tokio::test]
async fn an_object_put_by_someone_else_without_checksum_is_replaced() {
    let s3 = common::s3().await;
    let bucket = common::versioned_bucket(&s3, "upload-foreign").await;
    let location = S3Location::new(&bucket, "job.py").unwrap();
    common::put_by_hand(&s3, &bucket, "job.py", SCRIPT_V1).await;

    let outcome = Uploader::new(s3.clone())
        .upload(&location, SCRIPT_V1)
        .await
        .unwrap();
    assert_eq!(outcome.action, Change::Update);
    assert_eq!(common::versions(&s3, &bucket, "job.py").await, 2);
    let again = Uploader::new(s3.clone())
        .upload(&location, SCRIPT_V1)
        .await
        .unwrap();
    assert_eq!(again.action, Change::NoChange);
}

#[tokio::test]
async fn plan_upload_reads_only() {
    let s3 = common::s3().await;
    let bucket = common::versioned_bucket(&s3, "upload-plan").await;
    let location = S3Location::new(&bucket, "jobs/job.py").unwrap();

    assert_eq!(
        plan_upload(&s3, &location, SCRIPT_V1).await.unwrap(),
        Change::Create
    );
    assert_eq!(common::versions(&s3, &bucket, location.key()).await, 0);

    Uploader::new(s3.clone())
        .upload(&location, SCRIPT_V1)
        .await
        .unwrap();
    assert_eq!(
        plan_upload(&s3, &location, SCRIPT_V1).await.unwrap(),
        Change::NoChange
    );
    assert_eq!(
        plan_upload(&s3, &location, SCRIPT_V2).await.unwrap(),
        Change::Update
    );
    assert_eq!(common::versions(&s3, &bucket, location.key()).await, 1);
    assert_eq!(common::body(&s3, &bucket, location.key()).await, SCRIPT_V1);
}

#[tokio::test]
async fn a_missing_bucket_is_named_with_the_fix() {
    let s3 = common::s3().await;
    let bucket = common::unique_bucket("never-created");
    let location = S3Location::new(&bucket, "job.py").unwrap();

    let err = Uploader::new(s3)
        .upload(&location, SCRIPT_V1)
        .await
        .unwrap_err();
    assert!(matches!(err, UploadError::NoSuchBucket { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains(&bucket) && message.contains("create it"),
        "{message}"
    );
}

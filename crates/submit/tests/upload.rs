//! The script upload against a real S3 wire protocol (moto), which honours `If-Match` and
//! `If-None-Match: *` on `PutObject` as S3 does.

mod common;

use common::{SCRIPT_V1, SCRIPT_V2};
use flink_eks_manifest::S3Location;
use flink_eks_plan::Action;
use flink_eks_submit::{Error, Uploader, sha256_hex};
use flink_eks_tests::AwsRecorder;

/// The script nobody planned for: what another writer puts meanwhile.
const SCRIPT_OTHER: &[u8] = b"print('someone else')\n";

#[tokio::test]
async fn first_upload_creates_and_a_second_one_writes_nothing() {
    let s3 = common::s3().await;
    let bucket = common::versioned_bucket(&s3, "upload-same").await;
    let location = S3Location::new(&bucket, "jobs/python_demo_s3.py").unwrap();
    let uploader = Uploader::new(s3.clone());

    let first = common::upload(&uploader, &location, SCRIPT_V1)
        .await
        .unwrap();
    assert_eq!(first.action, Action::Create);
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
    assert_eq!(first.etag.as_deref(), head.e_tag(), "the new object's ETag");

    let again = common::upload(&uploader, &location, SCRIPT_V1)
        .await
        .unwrap();
    assert_eq!(again.action, Action::NoChange);
    assert_eq!(again.sha256, first.sha256);
    assert_eq!(
        common::versions(&s3, &bucket, location.key()).await,
        1,
        "no second write"
    );
}

#[tokio::test]
async fn a_no_change_plan_applies_without_any_request() {
    let s3 = common::s3().await;
    let bucket = common::versioned_bucket(&s3, "upload-no-call").await;
    let location = S3Location::new(&bucket, "jobs/job.py").unwrap();
    let uploader = Uploader::new(s3.clone());
    common::upload(&uploader, &location, SCRIPT_V1)
        .await
        .unwrap();
    let plan = uploader.plan(&location, SCRIPT_V1).await.unwrap();
    assert_eq!(plan.action(), Action::NoChange);

    let recorder = AwsRecorder::new(&common::aws_endpoint());
    let recording = recorder.start().await.expect("moto's recorder starts");
    let outcome = uploader.apply(&plan, SCRIPT_V1).await.unwrap();
    // A read of our own, so that an empty recording cannot pass for a silent apply.
    s3.head_object()
        .bucket(&bucket)
        .key(location.key())
        .send()
        .await
        .unwrap();
    let requests = recording.stop().await.expect("moto's recording");
    let ours: Vec<_> = requests
        .iter()
        .filter(|r| r.path.starts_with(&format!("/{bucket}")))
        .collect();
    assert_eq!(outcome.action, Action::NoChange);
    assert_eq!(
        ours.iter().map(|r| r.method.as_str()).collect::<Vec<_>>(),
        ["HEAD"],
        "only the test's own HeadObject reached S3: {ours:#?}"
    );
    assert_eq!(outcome.etag.as_deref(), plan.etag());
}

#[tokio::test]
async fn a_changed_script_is_uploaded_again() {
    let s3 = common::s3().await;
    let bucket = common::versioned_bucket(&s3, "upload-changed").await;
    let location = S3Location::new(&bucket, "jobs/job.py").unwrap();
    let uploader = Uploader::new(s3.clone());

    common::upload(&uploader, &location, SCRIPT_V1)
        .await
        .unwrap();
    let second = common::upload(&uploader, &location, SCRIPT_V2)
        .await
        .unwrap();
    assert_eq!(second.action, Action::Update);
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
    let uploader = Uploader::new(s3.clone());

    let outcome = common::upload(&uploader, &location, SCRIPT_V1)
        .await
        .unwrap();
    assert_eq!(outcome.action, Action::Update);
    assert_eq!(common::versions(&s3, &bucket, "job.py").await, 2);
    let again = common::upload(&uploader, &location, SCRIPT_V1)
        .await
        .unwrap();
    assert_eq!(again.action, Action::NoChange);
}

#[tokio::test]
async fn plan_reads_only_and_names_what_it_saw() {
    let s3 = common::s3().await;
    let bucket = common::versioned_bucket(&s3, "upload-plan").await;
    let location = S3Location::new(&bucket, "jobs/job.py").unwrap();
    let uploader = Uploader::new(s3.clone());

    let create = uploader.plan(&location, SCRIPT_V1).await.unwrap();
    assert_eq!(create.action(), Action::Create);
    assert_eq!(create.etag(), None);
    assert_eq!(common::versions(&s3, &bucket, location.key()).await, 0);

    let uploaded = common::upload(&uploader, &location, SCRIPT_V1)
        .await
        .unwrap();
    let same = uploader.plan(&location, SCRIPT_V1).await.unwrap();
    assert_eq!(same.action(), Action::NoChange);
    let update = uploader.plan(&location, SCRIPT_V2).await.unwrap();
    assert_eq!(update.action(), Action::Update);
    assert_eq!(update.found_sha256(), Some(sha256_hex(SCRIPT_V1).as_str()));
    let operation = update.operation();
    assert_eq!(operation.kind, "s3-object");
    assert_eq!(operation.name, format!("s3://{bucket}/jobs/job.py"));
    assert_eq!(
        operation.observed,
        Some(format!("ETag {}", uploaded.etag.unwrap()))
    );
    assert_eq!(common::versions(&s3, &bucket, location.key()).await, 1);
    assert_eq!(common::body(&s3, &bucket, location.key()).await, SCRIPT_V1);
}

#[tokio::test]
async fn an_object_replaced_between_plan_and_apply_is_stale_and_kept() {
    let s3 = common::s3().await;
    let bucket = common::versioned_bucket(&s3, "upload-stale").await;
    let location = S3Location::new(&bucket, "jobs/job.py").unwrap();
    let uploader = Uploader::new(s3.clone());
    common::upload(&uploader, &location, SCRIPT_V1)
        .await
        .unwrap();

    let plan = uploader.plan(&location, SCRIPT_V2).await.unwrap();
    assert_eq!(plan.action(), Action::Update);
    common::put_by_hand(&s3, &bucket, location.key(), SCRIPT_OTHER).await;

    let err = uploader.apply(&plan, SCRIPT_V2).await.unwrap_err();
    let Error::Stale(stale) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(stale.kind, "s3-object");
    assert_eq!(stale.planned, format!("ETag {}", plan.etag().unwrap()));
    assert!(err.to_string().contains("plan again"), "{err}");
    assert_eq!(
        common::body(&s3, &bucket, location.key()).await,
        SCRIPT_OTHER,
        "the other writer's object is left as it was"
    );
    assert_eq!(common::versions(&s3, &bucket, location.key()).await, 2);
}

#[tokio::test]
async fn an_object_created_between_plan_and_apply_is_stale_and_kept() {
    let s3 = common::s3().await;
    let bucket = common::versioned_bucket(&s3, "upload-stale-create").await;
    let location = S3Location::new(&bucket, "jobs/job.py").unwrap();
    let uploader = Uploader::new(s3.clone());

    let plan = uploader.plan(&location, SCRIPT_V1).await.unwrap();
    assert_eq!(plan.action(), Action::Create);
    common::put_by_hand(&s3, &bucket, location.key(), SCRIPT_OTHER).await;

    let err = uploader.apply(&plan, SCRIPT_V1).await.unwrap_err();
    let Error::Stale(stale) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(stale.planned, "absent");
    assert_eq!(
        common::body(&s3, &bucket, location.key()).await,
        SCRIPT_OTHER
    );
    assert_eq!(common::versions(&s3, &bucket, location.key()).await, 1);
}

#[tokio::test]
async fn a_plan_applied_to_other_bytes_writes_nothing() {
    let s3 = common::s3().await;
    let bucket = common::versioned_bucket(&s3, "upload-mismatch").await;
    let location = S3Location::new(&bucket, "jobs/job.py").unwrap();
    let uploader = Uploader::new(s3.clone());

    let plan = uploader.plan(&location, SCRIPT_V1).await.unwrap();
    let err = uploader.apply(&plan, SCRIPT_V2).await.unwrap_err();
    assert!(matches!(err, Error::PlanMismatch { .. }), "{err:?}");
    assert_eq!(common::versions(&s3, &bucket, location.key()).await, 0);
}

#[tokio::test]
async fn a_missing_bucket_is_named_with_the_fix() {
    let s3 = common::s3().await;
    let bucket = common::unique_bucket("never-created");
    let location = S3Location::new(&bucket, "job.py").unwrap();

    let err = common::upload(&Uploader::new(s3), &location, SCRIPT_V1)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NoSuchBucket { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains(&bucket) && message.contains("create it"),
        "{message}"
    );
}

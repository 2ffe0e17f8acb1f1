//! Teardown's removal of the script against a real S3 wire protocol (moto): only the object
//! that carries the deployed script's checksum is deleted.

mod common;

use common::{SCRIPT_V1, SCRIPT_V2, delete_markers};
use flink_eks_manifest::S3Location;
use flink_eks_submit::{Removal, Uploader, sha256_hex};

/// Whether `key` exists, as `aws s3api head-object` tells.
async fn exists(s3: &aws_sdk_s3::Client, bucket: &str, key: &str) -> bool {
    match s3.head_object().bucket(bucket).key(key).send().await {
        Ok(_) => true,
        Err(err) if err.raw_response().map(|r| r.status().as_u16()) == Some(404) => false,
        Err(err) => panic!("HeadObject {bucket}/{key}: {err:?}"),
    }
}

#[tokio::test]
async fn the_uploaded_script_is_deleted_and_a_second_delete_finds_nothing() {
    let s3 = common::s3().await;
    let bucket = common::versioned_bucket(&s3, "remove-ours").await;
    let location = S3Location::new(&bucket, "jobs/python_demo_s3.py").unwrap();
    let uploader = Uploader::new(s3.clone());
    common::upload(&uploader, &location, SCRIPT_V1)
        .await
        .unwrap();

    let removal = uploader
        .delete(&location, &sha256_hex(SCRIPT_V1))
        .await
        .unwrap();
    assert_eq!(removal, Removal::Deleted);
    assert!(!exists(&s3, &bucket, location.key()).await);

    let again = uploader
        .delete(&location, &sha256_hex(SCRIPT_V1))
        .await
        .unwrap();
    assert_eq!(again, Removal::NotFound);
    assert_eq!(
        delete_markers(&s3, &bucket, location.key()).await,
        1,
        "the second delete wrote nothing"
    );
}

#[tokio::test]
async fn an_object_replaced_by_another_script_is_kept() {
    let s3 = common::s3().await;
    let bucket = common::versioned_bucket(&s3, "remove-replaced").await;
    let location = S3Location::new(&bucket, "jobs/job.py").unwrap();
    let uploader = Uploader::new(s3.clone());
    common::upload(&uploader, &location, SCRIPT_V1)
        .await
        .unwrap();
    // Someone else deploys another script to the same key.
    common::upload(&uploader, &location, SCRIPT_V2)
        .await
        .unwrap();

    let removal = uploader
        .delete(&location, &sha256_hex(SCRIPT_V1))
        .await
        .unwrap();
    assert_eq!(
        removal,
        Removal::KeptChanged {
            found: Some(sha256_hex(SCRIPT_V2))
        }
    );
    assert_eq!(common::body(&s3, &bucket, location.key()).await, SCRIPT_V2);
    assert_eq!(delete_markers(&s3, &bucket, location.key()).await, 0);
    assert!(
        removal.to_string().contains(&sha256_hex(SCRIPT_V2)),
        "{removal}"
    );
}

#[tokio::test]
async fn an_object_without_a_checksum_is_kept() {
    let s3 = common::s3().await;
    let bucket = common::versioned_bucket(&s3, "remove-foreign").await;
    let location = S3Location::new(&bucket, "job.py").unwrap();
    // The same bytes, put by hand (`aws s3 cp`): nothing proves it is the deployed script.
    common::put_by_hand(&s3, &bucket, "job.py", SCRIPT_V1).await;

    let removal = Uploader::new(s3.clone())
        .delete(&location, &sha256_hex(SCRIPT_V1))
        .await
        .unwrap();
    assert_eq!(removal, Removal::KeptChanged { found: None });
    assert_eq!(common::body(&s3, &bucket, "job.py").await, SCRIPT_V1);
    assert_eq!(delete_markers(&s3, &bucket, "job.py").await, 0);
}

#[tokio::test]
async fn a_missing_bucket_has_nothing_to_delete() {
    let s3 = common::s3().await;
    let bucket = common::unique_bucket("remove-no-bucket");
    let location = S3Location::new(&bucket, "job.py").unwrap();

    let removal = Uploader::new(s3)
        .delete(&location, &sha256_hex(SCRIPT_V1))
        .await
        .unwrap();
    assert_eq!(removal, Removal::NotFound);
}

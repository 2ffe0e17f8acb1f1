//! The script's upload to S3, skipped when the object already carries the script's SHA-256.
//!
//! The checksum is stored twice on the object, in the same `PutObject`:
//! - as S3's own checksum (`x-amz-checksum-sha256`, base64), which S3 verifies on receipt
//!   and returns on `HeadObject` with `ChecksumMode::Enabled`;
//! - as user metadata `sha256` (hex), which every S3 implementation keeps and returns,
//!   including emulators that accept the checksum header but do not return it (moto 5).
//!
//! When the HEAD answer carries S3's checksum, that one decides (S3 computed it from the
//! bytes it stores); otherwise the metadata does. An object with neither is re-uploaded.
//!
//! The write is conditional on what the plan saw: `If-None-Match: *` where there was no
//! object, `If-Match` on the planned `ETag` where there was one.

use aws_sdk_s3::error::SdkError;
use aws_sdk_s3::operation::head_bucket::HeadBucketError;
use aws_sdk_s3::operation::head_object::{HeadObjectError, HeadObjectOutput};
use aws_sdk_s3::operation::put_object::PutObjectError;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ChecksumAlgorithm, ChecksumMode};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use flink_eks_manifest::S3Location;
use flink_eks_plan::{Action, Operation, Stale};
use sha2::{Digest as _, Sha256};

use crate::error::{Error, Result, from_s3, s3_code, s3_message, status_of};

/// Key of the user metadata entry (`x-amz-meta-sha256`) that holds the script's hex SHA-256.
pub const SHA256_METADATA_KEY: &str = "sha256";

/// The lowercase hex SHA-256 of `bytes`: the form the script checksum takes in metadata,
/// in the FlinkDeployment's annotation and in status output.
///
/// ```
/// assert_eq!(
///     flink_eks_submit::sha256_hex(b""),
///     "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
/// );
/// ```
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// An S3 client for `config`, with path-style addressing when the configuration names a
/// custom endpoint (an emulator or a VPC endpoint by IP answers only path-style requests).
pub fn s3_client(config: &aws_config::SdkConfig) -> aws_sdk_s3::Client {
    let mut builder = aws_sdk_s3::config::Builder::from(config);
    if config.endpoint_url().is_some() {
        builder = builder.force_path_style(true);
    }
    aws_sdk_s3::Client::from_conf(builder.build())
}

/// What `HeadBucket` said about the bucket, read alongside the object: a missing bucket, or
/// one in another region than the client's, is known before anything is written.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BucketCheck {
    /// The bucket answered, in the client's region (or S3 did not say which region).
    Reachable,
    /// The caller may not ask (`403`): the bucket's existence is unknown, the upload is tried.
    NotAsked,
    /// No bucket of that name (`404 NoSuchBucket`).
    Missing,
    /// The bucket lives in another region than the one the client signs for.
    OtherRegion {
        /// The region S3 named (`x-amz-bucket-region`).
        bucket: String,
        /// The region of the client.
        client: String,
    },
}

impl BucketCheck {
    /// Why the upload cannot happen, and the fix, when the bucket rules it out.
    pub fn problem(&self, bucket: &str) -> Option<(String, String)> {
        match self {
            BucketCheck::Reachable | BucketCheck::NotAsked => None,
            BucketCheck::Missing => Some((
                format!("bucket {bucket} does not exist"),
                format!(
                    "create it (aws s3 mb s3://{bucket}) or set s3.bucket to a bucket that exists"
                ),
            )),
            BucketCheck::OtherRegion { bucket: at, client } => Some((
                format!("bucket {bucket} is in region {at}, the S3 client is in {client}"),
                format!("set s3.region (or AWS_REGION) to {at}"),
            )),
        }
    }
}

/// What an upload of one script to one location will do, found with one `HeadObject` and
/// one `HeadBucket`, sent together, and no write: made by [`Uploader::plan`], performed
/// exactly by [`Uploader::apply`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadPlan {
    location: S3Location,
    sha256: String,
    action: Action,
    etag: Option<String>,
    found_sha256: Option<String>,
    bucket: BucketCheck,
}

impl UploadPlan {
    /// Where the script goes.
    pub fn location(&self) -> &S3Location {
        &self.location
    }

    /// The lowercase hex SHA-256 of the script the plan was made for.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    /// What applying the plan does: [`Action::Create`], [`Action::Update`] or
    /// [`Action::NoChange`].
    pub fn action(&self) -> Action {
        self.action
    }

    /// The `ETag` of the object seen when planning (`None` when there was no object): an
    /// update is sent with `If-Match` on it.
    pub fn etag(&self) -> Option<&str> {
        self.etag.as_deref()
    }

    /// The SHA-256 the object carried when planning, when it carried one.
    pub fn found_sha256(&self) -> Option<&str> {
        self.found_sha256.as_deref()
    }

    /// What `HeadBucket` said about the bucket when planning.
    pub fn bucket(&self) -> &BucketCheck {
        &self.bucket
    }

    /// The printable operation: kind `s3-object`, name `s3://bucket/key`, observed the `ETag`.
    pub fn operation(&self) -> Operation {
        let short = |sha: &str| sha.chars().take(12).collect::<String>();
        let detail = match (self.action, self.found_sha256.as_deref()) {
            (Action::Create, _) => format!("sha256 {}", short(&self.sha256)),
            (Action::NoChange, _) => format!("already carries sha256 {}", short(&self.sha256)),
            (_, Some(found)) => format!("sha256 {} to {}", short(found), short(&self.sha256)),
            (_, None) => format!("carries no sha256; sha256 {}", short(&self.sha256)),
        };
        let operation =
            Operation::new(OBJECT_KIND, self.location.to_string(), self.action).detail(detail);
        match &self.etag {
            Some(etag) => operation.observed(format!("ETag {etag}")),
            None => operation,
        }
    }
}

/// The kind of the upload's [`Operation`].
pub const OBJECT_KIND: &str = "s3-object";

/// What [`Uploader::apply`] did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct UploadOutcome {
    /// Where the script is, as `s3://bucket/key`.
    pub location: String,
    /// The script's lowercase hex SHA-256, now carried by the object.
    pub sha256: String,
    /// What was done: [`Action::NoChange`] means no call was made.
    pub action: Action,
    /// The object's `ETag`: the new one after a write, the planned one otherwise.
    pub etag: Option<String>,
}

/// Uploads scripts to S3 with their SHA-256, and only when it changed.
#[derive(Debug, Clone)]
pub struct Uploader {
    pub(crate) s3: aws_sdk_s3::Client,
}

impl Uploader {
    /// An uploader using `s3` (see [`s3_client`] for emulators and custom endpoints).
    pub fn new(s3: aws_sdk_s3::Client) -> Self {
        Uploader { s3 }
    }

    /// What uploading `script` to `location` will do, from one `HeadObject` with
    /// `ChecksumMode::Enabled` (no write, no GET of the body): no change when the object
    /// already carries the script's SHA-256, create when there is no object, update otherwise.
    ///
    /// S3 returns the checksum of a KMS-encrypted object only to callers allowed `kms:Decrypt`;
    /// when that `HeadObject` is refused, a second one without checksum mode reads the metadata.
    ///
    /// When the object does not answer (absent, refused, redirected to another region), a
    /// `HeadBucket` checks that the bucket exists and is in the client's region
    /// ([`UploadPlan::bucket`]); when it is not, the plan is a create that [`Uploader::apply`]
    /// refuses. An object that answers needs no second request: a no-change plan is one
    /// `HeadObject`.
    pub async fn plan(&self, location: &S3Location, script: &[u8]) -> Result<UploadPlan> {
        let sha256 = sha256_hex(script);
        let object = async {
            let mut head = head_object(&self.s3, location, Some(ChecksumMode::Enabled)).await;
            if matches!(&head, Err(err) if status_of(err) == Some(403)) {
                tracing::debug!(%location, "HeadObject with checksum mode refused, reading the metadata only");
                head = head_object(&self.s3, location, None).await;
            }
            head
        };
        let head = object.await;
        // An object that answered from this region's endpoint proves its bucket exists here;
        // only an object that did not answer leaves the bucket in question.
        let bucket = match &head {
            Ok(Some(_)) => BucketCheck::Reachable,
            _ => self
                .check_bucket(location.bucket())
                .await
                .map_err(|err| from_s3(location, "HeadBucket", &err))?,
        };
        if bucket.problem(location.bucket()).is_some() {
            return Ok(UploadPlan {
                location: location.clone(),
                sha256,
                action: Action::Create,
                etag: None,
                found_sha256: None,
                bucket,
            });
        }
        let head = head.map_err(|err| from_s3(location, "HeadObject", &err))?;
        let (action, etag, found_sha256) = match head {
            None => (Action::Create, None, None),
            Some(head) => {
                let found = carried_sha256(&head);
                let action = if found.as_deref() == Some(sha256.as_str()) {
                    Action::NoChange
                } else {
                    Action::Update
                };
                (action, head.e_tag().map(str::to_owned), found)
            }
        };
        Ok(UploadPlan {
            location: location.clone(),
            sha256,
            action,
            etag,
            found_sha256,
            bucket,
        })
    }

    /// One `HeadBucket`: whether the bucket exists, and in which region.
    async fn check_bucket(
        &self,
        bucket: &str,
    ) -> std::result::Result<BucketCheck, SdkError<HeadBucketError>> {
        let client = self.s3.config().region().map(|r| r.as_ref().to_owned());
        let answer = self.s3.head_bucket().bucket(bucket).send().await;
        let region = match &answer {
            Ok(out) => out.bucket_region().map(str::to_owned),
            Err(err) => err
                .raw_response()
                .and_then(|r| r.headers().get("x-amz-bucket-region"))
                .map(str::to_owned),
        };
        match (
            bucket_check(answer.as_ref().err().map(status_of), region, client),
            answer,
        ) {
            (Some(check), _) => Ok(check),
            (None, Err(err)) => Err(err),
            (None, Ok(_)) => Ok(BucketCheck::Reachable),
        }
    }

    /// Performs `plan` with `script`, the bytes it was made for: no call for no change; a
    /// `PutObject` with `If-None-Match: *` for a create and with `If-Match: <planned ETag>`
    /// for an update, carrying the SHA-256 as S3's checksum and as `sha256` metadata.
    ///
    /// An object that appeared, changed or went away since the plan fails the precondition
    /// (`412 PreconditionFailed`, `409 ConditionalRequestConflict`, or `404` for an update):
    /// that is [`Error::Stale`], and nothing is written. Bytes other than the planned ones
    /// are [`Error::PlanMismatch`], before any call.
    pub async fn apply(&self, plan: &UploadPlan, script: &[u8]) -> Result<UploadOutcome> {
        let sha256 = sha256_hex(script);
        let location = &plan.location;
        if plan.bucket == BucketCheck::Missing {
            return Err(Error::NoSuchBucket {
                bucket: location.bucket().to_owned(),
            });
        }
        if let Some((reason, fix)) = plan.bucket.problem(location.bucket()) {
            return Err(Error::Precondition { reason, fix });
        }
        if sha256 != plan.sha256 {
            return Err(Error::PlanMismatch {
                location: location.to_string(),
                planned: plan.sha256.clone(),
                given: sha256,
            });
        }
        let outcome = |etag: Option<String>| UploadOutcome {
            location: location.to_string(),
            sha256: sha256.clone(),
            action: plan.action,
            etag,
        };
        let request = self
            .s3
            .put_object()
            .bucket(location.bucket())
            .key(location.key())
            .body(ByteStream::from(script.to_vec()))
            .content_type(content_type(location))
            .checksum_algorithm(ChecksumAlgorithm::Sha256)
            .checksum_sha256(BASE64.encode(Sha256::digest(script)))
            .metadata(SHA256_METADATA_KEY, &sha256);
        // S3 (since 2024) and moto 5 refuse a conditional write whose condition no longer holds.
        let request = match (plan.action, &plan.etag) {
            (Action::NoChange, _) => {
                tracing::info!(%location, %sha256, "script unchanged in S3, not uploaded");
                return Ok(outcome(plan.etag.clone()));
            }
            (Action::Create, _) => request.if_none_match("*"),
            (_, Some(etag)) => request.if_match(etag),
            // An object without an ETag offers nothing to guard on.
            (_, None) => request,
        };
        match request.send().await {
            Ok(put) => {
                tracing::info!(%location, %sha256, action = %plan.action, "script uploaded");
                Ok(outcome(put.e_tag().map(str::to_owned)))
            }
            Err(err) => Err(put_error(plan, &err)),
        }
    }
}

/// The error of a conditional `PutObject`: a failed condition is [`Error::Stale`].
fn put_error(plan: &UploadPlan, err: &SdkError<PutObjectError>) -> Error {
    let code = s3_code(err);
    let status = status_of(err);
    let failed_condition = matches!(
        code,
        Some("PreconditionFailed" | "ConditionalRequestConflict")
    ) || matches!(status, Some(409 | 412));
    let gone = plan.action == Action::Update
        && (code == Some("NoSuchKey") || (status == Some(404) && code != Some("NoSuchBucket")));
    if failed_condition || gone {
        let found = match (plan.action, gone) {
            (_, true) => "no object".to_owned(),
            (Action::Create, _) => format!("an object ({})", s3_message(err)),
            _ => format!("another ETag ({})", s3_message(err)),
        };
        return Error::Stale(Stale::of(&plan.operation(), found));
    }
    from_s3(&plan.location, "PutObject", err)
}

/// One `HeadObject` of `location` with checksum `mode`: `None` when there is no object.
pub(crate) async fn head_object(
    s3: &aws_sdk_s3::Client,
    location: &S3Location,
    mode: Option<ChecksumMode>,
) -> Result<Option<HeadObjectOutput>, SdkError<HeadObjectError>> {
    let head = s3
        .head_object()
        .bucket(location.bucket())
        .key(location.key())
        .set_checksum_mode(mode)
        .send()
        .await;
    match head {
        Ok(head) => Ok(Some(head)),
        Err(err) if is_not_found(&err) => Ok(None),
        Err(err) => Err(err),
    }
}

/// The lowercase hex SHA-256 an object carries: S3's full-object checksum when returned (S3
/// computed it from the bytes it stores; a composite one of a multipart upload, `...-N`, is
/// not a hash of the bytes), else the `sha256` metadata.
pub(crate) fn carried_sha256(head: &HeadObjectOutput) -> Option<String> {
    let from_s3 = head
        .checksum_sha256()
        .filter(|c| !c.contains('-'))
        .and_then(|c| BASE64.decode(c).ok())
        .map(hex::encode);
    from_s3.or_else(|| {
        head.metadata()
            .and_then(|m| m.get(SHA256_METADATA_KEY))
            .map(|v| v.trim().to_ascii_lowercase())
    })
}

fn content_type(location: &S3Location) -> &'static str {
    if location.key().ends_with(".py") {
        "text/x-python"
    } else {
        "application/octet-stream"
    }
}

/// The bucket check from `HeadBucket`'s status (`None`: it answered 2xx), the region S3 named
/// and the client's; `None` for an error that says nothing about the bucket.
fn bucket_check(
    status: Option<Option<u16>>,
    region: Option<String>,
    client: Option<String>,
) -> Option<BucketCheck> {
    let other_region = match (region, client) {
        (Some(bucket), Some(client)) if bucket != client => {
            Some(BucketCheck::OtherRegion { bucket, client })
        }
        _ => None,
    };
    match status {
        None => Some(other_region.unwrap_or(BucketCheck::Reachable)),
        Some(Some(404)) => Some(BucketCheck::Missing),
        Some(Some(301 | 400)) if other_region.is_some() => other_region,
        Some(Some(403)) => Some(other_region.unwrap_or(BucketCheck::NotAsked)),
        Some(_) => None,
    }
}

fn is_not_found(err: &SdkError<HeadObjectError>) -> bool {
    err.as_service_error()
        .is_some_and(HeadObjectError::is_not_found)
        || status_of(err) == Some(404)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCRIPT: &[u8] = b"print('hello from pyflink')\n";

    fn head(s3_checksum: Option<&str>, metadata: Option<&str>) -> HeadObjectOutput {
        let mut builder =
            HeadObjectOutput::builder().set_checksum_sha256(s3_checksum.map(str::to_owned));
        if let Some(meta) = metadata {
            builder = builder.metadata(SHA256_METADATA_KEY, meta);
        }
        builder.build()
    }

    fn same(head: &HeadObjectOutput) -> bool {
        carried_sha256(head) == Some(sha256_hex(SCRIPT))
    }

    #[test]
    fn sha256_hex_is_lowercase_hex_of_the_digest() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn s3_checksum_decides_when_present() {
        let good = BASE64.encode(Sha256::digest(SCRIPT));
        let other_hex = sha256_hex(b"other");
        assert!(same(&head(Some(&good), None)));
        // S3 computed its checksum from the stored bytes: stale metadata does not win.
        assert!(same(&head(Some(&good), Some(&other_hex))));
        let stale = BASE64.encode(Sha256::digest(b"other"));
        assert!(!same(&head(Some(&stale), Some(&sha256_hex(SCRIPT)))));
    }

    #[test]
    fn metadata_decides_when_s3_returns_no_full_object_checksum() {
        let hex = sha256_hex(SCRIPT);
        assert!(same(&head(None, Some(&hex))));
        assert!(same(&head(Some("abc=-3"), Some(&hex.to_uppercase()))));
        assert!(!same(&head(None, Some(&sha256_hex(b"x")))));
    }

    #[test]
    fn an_object_without_checksum_is_rewritten() {
        assert_eq!(carried_sha256(&head(None, None)), None);
        assert!(!same(&head(None, None)));
    }

    fn plan(action: Action, etag: Option<&str>, found: Option<&str>) -> UploadPlan {
        UploadPlan {
            location: S3Location::new("bucket", "jobs/job.py").unwrap(),
            sha256: sha256_hex(SCRIPT),
            action,
            etag: etag.map(str::to_owned),
            found_sha256: found.map(str::to_owned),
            bucket: BucketCheck::Reachable,
        }
    }

    #[test]
    fn a_missing_bucket_or_one_in_another_region_blocks_the_upload() {
        let us = || Some("us-east-1".to_owned());
        assert_eq!(bucket_check(None, us(), us()), Some(BucketCheck::Reachable));
        assert_eq!(
            bucket_check(Some(Some(404)), None, us()),
            Some(BucketCheck::Missing)
        );
        let moved = bucket_check(Some(Some(301)), Some("eu-west-1".into()), us()).unwrap();
        let (reason, fix) = moved.problem("b").unwrap();
        assert_eq!(
            reason,
            "bucket b is in region eu-west-1, the S3 client is in us-east-1"
        );
        assert_eq!(fix, "set s3.region (or AWS_REGION) to eu-west-1");
        let (reason, fix) = BucketCheck::Missing.problem("b").unwrap();
        assert!(reason.contains("bucket b does not exist"), "{reason}");
        assert!(fix.contains("s3.bucket"), "{fix}");
        // Not allowed to ask: not known to be missing, so the upload is tried.
        assert_eq!(
            bucket_check(Some(Some(403)), None, us()),
            Some(BucketCheck::NotAsked)
        );
        assert_eq!(BucketCheck::NotAsked.problem("b"), None);
        assert_eq!(bucket_check(Some(Some(500)), None, us()), None);
    }

    /// An uploader whose endpoint nothing answers: a call it made would fail with a dispatch
    /// error, so a test that gets another error knows no call was made.
    fn unreachable_uploader() -> Uploader {
        let config = aws_sdk_s3::Config::builder()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .region(aws_sdk_s3::config::Region::new("us-east-1"))
            .endpoint_url("http://127.0.0.1:9")
            .build();
        Uploader::new(aws_sdk_s3::Client::from_conf(config))
    }

    #[tokio::test]
    async fn a_plan_blocked_by_its_bucket_is_refused_before_any_call() {
        let uploader = unreachable_uploader();
        let mut blocked = plan(Action::Create, None, None);
        blocked.bucket = BucketCheck::Missing;
        let err = uploader.apply(&blocked, SCRIPT).await.unwrap_err();
        assert!(matches!(err, Error::NoSuchBucket { .. }), "{err:?}");
        assert!(
            err.to_string().contains("\"bucket\" does not exist"),
            "{err}"
        );
        blocked.bucket = BucketCheck::OtherRegion {
            bucket: "eu-west-1".into(),
            client: "us-east-1".into(),
        };
        let err = uploader.apply(&blocked, SCRIPT).await.unwrap_err();
        assert!(matches!(err, Error::Precondition { .. }), "{err:?}");
        assert!(err.to_string().contains("set s3.region"), "{err}");
    }

    #[test]
    fn the_operation_names_the_object_and_the_etag_it_rests_on() {
        let update = plan(Action::Update, Some("\"e1\""), Some(&sha256_hex(b"old"))).operation();
        assert_eq!(update.kind, "s3-object");
        assert_eq!(update.name, "s3://bucket/jobs/job.py");
        assert_eq!(update.action, Action::Update);
        assert_eq!(update.observed.as_deref(), Some("ETag \"e1\""));
        assert_eq!(
            update.detail,
            format!(
                "sha256 {} to {}",
                &sha256_hex(b"old")[..12],
                &sha256_hex(SCRIPT)[..12]
            )
        );
        let create = plan(Action::Create, None, None).operation();
        assert_eq!(create.observed, None);
        assert_eq!(
            create.to_string(),
            format!(
                "create s3-object s3://bucket/jobs/job.py (sha256 {})",
                &sha256_hex(SCRIPT)[..12]
            )
        );
    }

    #[tokio::test]
    async fn a_plan_applied_to_other_bytes_is_refused_before_any_call() {
        let uploader = unreachable_uploader();
        let err = uploader
            .apply(&plan(Action::Create, None, None), b"other bytes")
            .await
            .unwrap_err();
        let Error::PlanMismatch { planned, given, .. } = &err else {
            panic!("{err:?}")
        };
        assert_eq!(planned, &sha256_hex(SCRIPT));
        assert_eq!(given, &sha256_hex(b"other bytes"));
        assert!(err.to_string().contains("plan again"), "{err}");

        // No change: no call at all, so the unreachable endpoint does not matter.
        let outcome = uploader
            .apply(
                &plan(Action::NoChange, Some("\"e1\""), Some(&sha256_hex(SCRIPT))),
                SCRIPT,
            )
            .await
            .unwrap();
        assert_eq!(outcome.action, Action::NoChange);
        assert_eq!(outcome.etag.as_deref(), Some("\"e1\""));
    }
}

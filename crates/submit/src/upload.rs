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

use aws_sdk_s3::error::SdkError;
use aws_sdk_s3::operation::head_object::{HeadObjectError, HeadObjectOutput};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ChecksumAlgorithm, ChecksumMode};
use aws_smithy_types::error::display::DisplayErrorContext;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use flink_eks_manifest::S3Location;
use sha2::{Digest as _, Sha256};

use crate::change::Change;

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

/// What an upload of the script would do, found with one `HeadObject` and no write:
/// [`Change::NoChange`] when the object already carries the script's SHA-256.
pub type UploadPlan = Change;

/// What [`Uploader::upload`] did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct UploadOutcome {
    /// Where the script is, as `s3://bucket/key`.
    pub location: String,
    /// The script's lowercase hex SHA-256, now carried by the object.
    pub sha256: String,
    /// What was done: [`Change::NoChange`] means no write was made.
    pub action: Change,
}

/// Why the script could not be checked or uploaded.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    /// The bucket does not exist (or is not visible to these credentials).
    #[error(
        "S3 bucket {bucket:?} does not exist; create it (aws s3 mb s3://{bucket}) or set another bucket"
    )]
    NoSuchBucket {
        /// The bucket named in the script location.
        bucket: String,
    },
    /// S3 refused the request for these credentials.
    #[error(
        "access to {location} was denied ({operation}); the identity needs s3:GetObject and \
         s3:PutObject on that object and s3:ListBucket on the bucket: {detail}"
    )]
    AccessDenied {
        /// The script location.
        location: String,
        /// The S3 operation that was refused.
        operation: &'static str,
        /// S3's own words.
        detail: String,
    },
    /// Any other failure of an S3 call (network, endpoint, credentials, server error).
    #[error("S3 {operation} on {location} failed: {detail}")]
    S3 {
        /// The script location.
        location: String,
        /// The S3 operation that failed.
        operation: &'static str,
        /// The error with its whole chain of causes.
        detail: String,
    },
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

    /// What [`Uploader::upload`] would do, from one `HeadObject` (no write).
    pub async fn plan(&self, location: &S3Location, script: &[u8]) -> Result<Change, UploadError> {
        plan_upload(&self.s3, location, script).await
    }

    /// Puts `script` at `location` with its SHA-256 (S3 checksum and `sha256` metadata),
    /// unless the object there already carries that SHA-256.
    pub async fn upload(
        &self,
        location: &S3Location,
        script: &[u8],
    ) -> Result<UploadOutcome, UploadError> {
        let sha256 = sha256_hex(script);
        let action = plan_upload(&self.s3, location, script).await?;
        if action == Change::NoChange {
            tracing::info!(%location, %sha256, "script unchanged in S3, not uploaded");
            return Ok(UploadOutcome {
                location: location.to_string(),
                sha256,
                action,
            });
        }
        let checksum_base64 = BASE64.encode(Sha256::digest(script));
        self.s3
            .put_object()
            .bucket(location.bucket())
            .key(location.key())
            .body(ByteStream::from(script.to_vec()))
            .content_type(content_type(location))
            .checksum_algorithm(ChecksumAlgorithm::Sha256)
            .checksum_sha256(checksum_base64)
            .metadata(SHA256_METADATA_KEY, &sha256)
            .send()
            .await
            .map_err(|err| {
                let code = err.as_service_error().and_then(|e| {
                    aws_smithy_types::error::metadata::ProvideErrorMetadata::code(e)
                        .map(str::to_owned)
                });
                classify(
                    location,
                    "PutObject",
                    code.as_deref(),
                    status_of(&err),
                    &err,
                )
            })?;
        tracing::info!(%location, %sha256, %action, "script uploaded");
        Ok(UploadOutcome {
            location: location.to_string(),
            sha256,
            action,
        })
    }
}

/// What an upload of `script` to `location` would do, from one `HeadObject` with
/// `ChecksumMode::Enabled` (no write, no GET of the body).
///
/// S3 returns the checksum of a KMS-encrypted object only to callers allowed `kms:Decrypt`;
/// when that `HeadObject` is refused, a second one without checksum mode reads the metadata.
pub async fn plan_upload(
    s3: &aws_sdk_s3::Client,
    location: &S3Location,
    script: &[u8],
) -> Result<Change, UploadError> {
    let mut head = head_object(s3, location, Some(ChecksumMode::Enabled)).await;
    if matches!(&head, Err(err) if status_of(err) == Some(403)) {
        tracing::debug!(%location, "HeadObject with checksum mode refused, reading the metadata only");
        head = head_object(s3, location, None).await;
    }
    match head.map_err(|err| head_error(location, &err))? {
        Some(head) => Ok(compare(&RemoteChecksums::from_head(&head), script)),
        None => Ok(Change::Create),
    }
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

/// The error a failed `HeadObject` of `location` is reported as.
pub(crate) fn head_error(location: &S3Location, err: &SdkError<HeadObjectError>) -> UploadError {
    classify(location, "HeadObject", None, status_of(err), err)
}

/// The SHA-256 an object carries, as far as a `HeadObject` answer tells.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct RemoteChecksums {
    /// S3's full-object SHA-256 checksum, base64, when returned.
    s3_sha256_base64: Option<String>,
    /// The `sha256` user metadata, hex, when present.
    metadata_sha256_hex: Option<String>,
}

impl RemoteChecksums {
    fn from_head(head: &HeadObjectOutput) -> Self {
        RemoteChecksums {
            s3_sha256_base64: head.checksum_sha256().map(str::to_owned),
            metadata_sha256_hex: head
                .metadata()
                .and_then(|m| m.get(SHA256_METADATA_KEY))
                .map(|v| v.trim().to_ascii_lowercase()),
        }
    }
}

/// Pure decision: does the object already carry `script`'s SHA-256?
///
/// S3's own checksum decides when it is a full-object one (a composite checksum of a
/// multipart upload ends in `-N` and is not a hash of the bytes); otherwise the metadata.
fn compare(remote: &RemoteChecksums, script: &[u8]) -> Change {
    let digest = Sha256::digest(script);
    let full_object = remote
        .s3_sha256_base64
        .as_deref()
        .filter(|c| !c.contains('-'));
    let same = match (full_object, remote.metadata_sha256_hex.as_deref()) {
        (Some(s3), _) => s3 == BASE64.encode(digest),
        (None, Some(meta)) => meta == hex::encode(digest),
        (None, None) => false,
    };
    if same {
        Change::NoChange
    } else {
        Change::Update
    }
}

fn content_type(location: &S3Location) -> &'static str {
    if location.key().ends_with(".py") {
        "text/x-python"
    } else {
        "application/octet-stream"
    }
}

fn is_not_found(err: &SdkError<HeadObjectError>) -> bool {
    err.as_service_error()
        .is_some_and(HeadObjectError::is_not_found)
        || status_of(err) == Some(404)
}

pub(crate) fn status_of<E>(err: &SdkError<E>) -> Option<u16> {
    err.raw_response().map(|r| r.status().as_u16())
}

pub(crate) fn classify<E: std::error::Error + 'static>(
    location: &S3Location,
    operation: &'static str,
    code: Option<&str>,
    status: Option<u16>,
    err: &SdkError<E>,
) -> UploadError {
    let detail = DisplayErrorContext(err).to_string();
    if code == Some("NoSuchBucket") {
        return UploadError::NoSuchBucket {
            bucket: location.bucket().to_owned(),
        };
    }
    if status == Some(403) || code == Some("AccessDenied") {
        return UploadError::AccessDenied {
            location: location.to_string(),
            operation,
            detail,
        };
    }
    UploadError::S3 {
        location: location.to_string(),
        operation,
        detail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCRIPT: &[u8] = b"print('hello from pyflink')\n";

    fn remote(s3: Option<&str>, meta: Option<&str>) -> RemoteChecksums {
        RemoteChecksums {
            s3_sha256_base64: s3.map(str::to_owned),
            metadata_sha256_hex: meta.map(str::to_owned),
        }
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
        assert_eq!(
            compare(&remote(Some(&good), None), SCRIPT),
            Change::NoChange
        );
        // S3 computed its checksum from the stored bytes: stale metadata does not win.
        assert_eq!(
            compare(&remote(Some(&good), Some(&other_hex)), SCRIPT),
            Change::NoChange
        );
        let stale = BASE64.encode(Sha256::digest(b"other"));
        assert_eq!(
            compare(&remote(Some(&stale), Some(&sha256_hex(SCRIPT))), SCRIPT),
            Change::Update
        );
    }

    #[test]
    fn metadata_decides_when_s3_returns_no_full_object_checksum() {
        let hex = sha256_hex(SCRIPT);
        assert_eq!(compare(&remote(None, Some(&hex)), SCRIPT), Change::NoChange);
        assert_eq!(
            compare(&remote(Some("abc=-3"), Some(&hex)), SCRIPT),
            Change::NoChange
        );
        assert_eq!(
            compare(&remote(None, Some(&sha256_hex(b"x"))), SCRIPT),
            Change::Update
        );
    }

    #[test]
    fn an_object_without_checksum_is_rewritten() {
        assert_eq!(compare(&remote(None, None), SCRIPT), Change::Update);
    }
}

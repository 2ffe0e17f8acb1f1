//! Removal of the script from S3, for teardown: only an object that still carries the
//! deployed script's SHA-256 is deleted, so that a file someone else put at the same key is
//! never lost.
//!
//! The object's checksum is read the way [`Uploader::apply`] writes it (S3's own full-object
//! SHA-256 when `HeadObject` returns it, else the `sha256` metadata), and the `DeleteObject`
//! carries the `ETag` of that `HeadObject` as `If-Match`: an object replaced between the two
//! calls is not deleted.

use std::fmt;

use aws_sdk_s3::operation::head_object::HeadObjectOutput;
use aws_sdk_s3::types::ChecksumMode;
use flink_eks_manifest::S3Location;

use crate::error::{Result, from_s3, status_of};
use crate::upload::{Uploader, carried_sha256, head_object};

/// How often [`Uploader::delete`] reads and deletes again when the object changes between
/// its `HeadObject` and its `DeleteObject`.
const ATTEMPTS: usize = 3;

/// What [`Uploader::delete`] did with the object.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum Removal {
    /// The object carried the expected SHA-256 and was deleted.
    Deleted,
    /// There was no object at the location: nothing to delete.
    NotFound,
    /// The object carries another SHA-256, or none: it is not the script that was deployed,
    /// so it was kept.
    KeptChanged {
        /// The lowercase hex SHA-256 the object carries, when it carries one.
        found: Option<String>,
    },
}

impl fmt::Display for Removal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Removal::Deleted => f.write_str("deleted"),
            Removal::NotFound => f.write_str("not found: nothing to delete"),
            Removal::KeptChanged { found: Some(found) } => write!(
                f,
                "kept: the object carries sha256 {found}, not the deployed script's (it was \
                 replaced since; delete it by hand if it is no longer needed)"
            ),
            Removal::KeptChanged { found: None } => f.write_str(
                "kept: the object carries no sha256, so it cannot be shown to be the deployed \
                 script (delete it by hand if it is no longer needed)",
            ),
        }
    }
}

impl Uploader {
    /// Deletes the object at `location` if it carries `expected_sha256` (lowercase or
    /// uppercase hex, as [`crate::sha256_hex`] gives it); keeps it, and says so, when it
    /// carries another checksum or none.
    ///
    /// One `HeadObject`, then a `DeleteObject` with `If-Match` on the `ETag` just read. When
    /// the object changed in between (`412 Precondition Failed`), it is read and judged again,
    /// a few times at most.
    pub async fn delete(&self, location: &S3Location, expected_sha256: &str) -> Result<Removal> {
        let expected = expected_sha256.trim().to_ascii_lowercase();
        let mut found = None;
        for _ in 0..ATTEMPTS {
            let Some(head) = self.head(location).await? else {
                return Ok(Removal::NotFound);
            };
            found = carried_sha256(&head);
            if found.as_deref() != Some(expected.as_str()) {
                return Ok(Removal::KeptChanged { found });
            }
            let mut request = self
                .s3
                .delete_object()
                .bucket(location.bucket())
                .key(location.key());
            if let Some(etag) = head.e_tag() {
                request = request.if_match(etag);
            }
            match request.send().await {
                Ok(_) => {
                    tracing::info!(%location, sha256 = %expected, "script deleted from S3");
                    return Ok(Removal::Deleted);
                }
                Err(err) if status_of(&err) == Some(412) => {
                    tracing::info!(%location, "the object changed while being deleted; reading it again");
                }
                Err(err) if status_of(&err) == Some(404) => return Ok(Removal::NotFound),
                Err(err) => return Err(from_s3(location, "DeleteObject", &err)),
            }
        }
        Ok(Removal::KeptChanged { found })
    }

    /// The object's `HeadObject` answer with checksums, or `None` when there is no object.
    async fn head(&self, location: &S3Location) -> Result<Option<HeadObjectOutput>> {
        head_object(&self.s3, location, Some(ChecksumMode::Enabled))
            .await
            .map_err(|err| from_s3(location, "HeadObject", &err))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_outcome_reads_as_what_happened() {
        assert_eq!(Removal::Deleted.to_string(), "deleted");
        assert_eq!(
            Removal::NotFound.to_string(),
            "not found: nothing to delete"
        );
        let kept = Removal::KeptChanged {
            found: Some("abc".into()),
        }
        .to_string();
        assert!(
            kept.starts_with("kept:") && kept.contains("sha256 abc"),
            "{kept}"
        );
        let kept = Removal::KeptChanged { found: None }.to_string();
        assert!(
            kept.starts_with("kept:") && kept.contains("no sha256"),
            "{kept}"
        );
    }
}

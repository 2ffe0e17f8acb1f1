//! Deletion of a job's state from S3 (its checkpoints, savepoints and HA files), for a
//! teardown that is asked to: every object under one prefix, and nothing else.
//!
//! The keys are listed first (`ListObjectsV2` with the prefix, every page), then deleted with
//! `DeleteObjects` in batches of at most [`MAX_KEYS_PER_DELETE`] (the API's limit), in quiet
//! mode, so that each answer names only the keys it did not delete. S3 answers `200 OK` even
//! when some keys of a batch failed (each with its own code, `AccessDenied` among them), so
//! every answer's errors are read and reported, never taken for success.
//!
//! What is deleted is checked before the first call: the prefix must name a folder inside the
//! bucket (not empty, not `/`, ending with `/`, so `state/job/` never takes `state/job-2/`
//! with it), a listed key outside the prefix is never deleted, and the key given to keep
//! (the script's) is left alone even when it lies under the prefix.

use std::fmt;

use aws_sdk_s3::types::{Delete, ObjectIdentifier};
use flink_eks_manifest::S3Prefix;

use crate::error::{Error, Result, from_s3_at};
use crate::upload::Uploader;

/// The most keys one `DeleteObjects` request may name.
pub const MAX_KEYS_PER_DELETE: usize = 1000;

/// How many failed keys an error names before it only counts the rest.
const NAMED_FAILURES: usize = 3;

/// What [`Uploader::delete_prefix`] removed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct PrefixRemoval {
    /// The prefix, as `s3://BUCKET/PREFIX/`.
    pub prefix: String,
    /// How many objects were deleted.
    pub deleted: usize,
    /// Keys under the prefix that were asked to be kept and were (the script's), as
    /// `s3://BUCKET/KEY`.
    pub kept: Vec<String>,
}

impl fmt::Display for PrefixRemoval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.deleted {
            0 => write!(f, "no objects under {}: nothing to delete", self.prefix)?,
            1 => write!(f, "deleted 1 object under {}", self.prefix)?,
            n => write!(f, "deleted {n} objects under {}", self.prefix)?,
        }
        for kept in &self.kept {
            write!(f, "; kept {kept}")?;
        }
        Ok(())
    }
}

/// One key a `DeleteObjects` answer says it did not delete, with S3's code and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KeyFailure {
    pub(crate) key: String,
    pub(crate) code: String,
    pub(crate) message: String,
}

impl Uploader {
    /// Deletes every object under `prefix` except `keep` (a key in the same bucket, such as
    /// the script's), and answers how many it deleted.
    ///
    /// `ListObjectsV2` with the prefix, page by page, then `DeleteObjects` (quiet) in batches
    /// of at most [`MAX_KEYS_PER_DELETE`] keys. A prefix that does not end with `/`, or that
    /// names the whole bucket, is refused before any call ([`Error::Precondition`]). Keys an
    /// answer says were not deleted fail the whole call with [`Error::ObjectsNotDeleted`]
    /// (naming the first few, with S3's codes) after every batch has been tried.
    ///
    /// In a bucket with versioning, a delete leaves a delete marker and keeps the earlier
    /// versions, as S3 does for every delete without a version id.
    pub async fn delete_prefix(
        &self,
        prefix: &S3Prefix,
        keep: Option<&str>,
    ) -> Result<PrefixRemoval> {
        let (bucket, folder) = (prefix.bucket(), prefix.prefix());
        check_prefix(bucket, folder)?;
        let name = prefix.to_string();
        let mut listed = Vec::new();
        let mut token = None;
        loop {
            let page = self
                .s3
                .list_objects_v2()
                .bucket(bucket)
                .prefix(folder)
                .set_continuation_token(token.take())
                .send()
                .await
                .map_err(|err| from_s3_at(bucket, &name, "ListObjectsV2", &err))?;
            listed.extend(
                page.contents()
                    .iter()
                    .filter_map(|o| o.key().map(str::to_owned)),
            );
            match page.next_continuation_token() {
                Some(next) if page.is_truncated() == Some(true) => token = Some(next.to_owned()),
                _ => break,
            }
        }
        let (doomed, kept) = keys_to_delete(folder, listed, keep);
        let mut failures = Vec::new();
        for batch in doomed.chunks(MAX_KEYS_PER_DELETE) {
            let objects = batch
                .iter()
                .map(|key| ObjectIdentifier::builder().key(key).build())
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(|err| request_error(&name, &err))?;
            let delete = Delete::builder()
                .set_objects(Some(objects))
                .quiet(true)
                .build()
                .map_err(|err| request_error(&name, &err))?;
            let answer = self
                .s3
                .delete_objects()
                .bucket(bucket)
                .delete(delete)
                .send()
                .await
                .map_err(|err| from_s3_at(bucket, &name, "DeleteObjects", &err))?;
            failures.extend(answer.errors().iter().map(|e| KeyFailure {
                key: e.key().unwrap_or("(no key)").to_owned(),
                code: e.code().unwrap_or("(no code)").to_owned(),
                message: e.message().unwrap_or_default().to_owned(),
            }));
        }
        let deleted = doomed.len() - failures.len().min(doomed.len());
        if !failures.is_empty() {
            return Err(Error::ObjectsNotDeleted {
                prefix: name,
                deleted,
                failed: failures.len(),
                access_denied: failures.iter().all(|f| f.code == "AccessDenied"),
                summary: summarize(&failures),
            });
        }
        tracing::info!(prefix = %name, deleted, "state prefix emptied");
        Ok(PrefixRemoval {
            prefix: name,
            deleted,
            kept: kept
                .iter()
                .map(|key| format!("s3://{bucket}/{key}"))
                .collect(),
        })
    }
}

/// Refuses a prefix that could take more than one folder's objects with it: empty or `/`
/// (the whole bucket), or without the closing `/` (`state/job` also matches `state/job-2/`).
pub(crate) fn check_prefix(bucket: &str, prefix: &str) -> Result<()> {
    let refuse = |reason: String| {
        Err(Error::Precondition {
            reason,
            fix: format!("name a folder inside the bucket, ending with '/': s3://{bucket}/FOLDER/"),
        })
    };
    if prefix.trim_matches('/').is_empty() {
        return refuse(format!(
            "s3://{bucket}/{prefix} is the whole bucket, not a state prefix: nothing was deleted"
        ));
    }
    if !prefix.ends_with('/') {
        return refuse(format!(
            "s3://{bucket}/{prefix} does not end with '/': it would also match keys beside the folder; nothing was deleted"
        ));
    }
    Ok(())
}

/// The listed keys to delete (under `prefix`, not `keep`), and the keys under the prefix
/// kept because they are `keep`. A key outside the prefix is in neither.
pub(crate) fn keys_to_delete(
    prefix: &str,
    listed: impl IntoIterator<Item = String>,
    keep: Option<&str>,
) -> (Vec<String>, Vec<String>) {
    listed
        .into_iter()
        .filter(|key| key.starts_with(prefix))
        .partition(|key| Some(key.as_str()) != keep)
}

/// One line naming the first few keys not deleted, with S3's code and message, and how many
/// more there were.
pub(crate) fn summarize(failures: &[KeyFailure]) -> String {
    let mut line = failures
        .iter()
        .take(NAMED_FAILURES)
        .map(|f| {
            if f.message.is_empty() {
                format!("{} ({})", f.key, f.code)
            } else {
                format!("{} ({}: {})", f.key, f.code, f.message)
            }
        })
        .collect::<Vec<_>>()
        .join(", ");
    if failures.len() > NAMED_FAILURES {
        line.push_str(&format!(" and {} more", failures.len() - NAMED_FAILURES));
    }
    line
}

/// A request the SDK refused to build (it names the missing field).
fn request_error(prefix: &str, err: &dyn std::error::Error) -> Error {
    Error::S3 {
        location: prefix.to_owned(),
        operation: "DeleteObjects",
        message: err.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prefix_is_a_folder_inside_the_bucket() {
        check_prefix("b", "state/job/").unwrap();
        check_prefix("b", "a/").unwrap();
        for whole in ["", "/", "//"] {
            let err = check_prefix("b", whole).unwrap_err();
            assert!(matches!(err, Error::Precondition { .. }), "{err:?}");
            assert!(err.to_string().contains("whole bucket"), "{err}");
        }
        let err = check_prefix("b", "state/job").unwrap_err().to_string();
        assert!(err.contains("does not end with '/'"), "{err}");
        assert!(err.contains("s3://b/FOLDER/"), "{err}");
        assert!(err.contains("nothing was deleted"), "{err}");
    }

    #[test]
    fn only_keys_under_the_prefix_and_never_the_kept_one() {
        let listed = [
            "state/job/checkpoints/1/_metadata",
            "state/job/savepoints/sp-1/_metadata",
            "state/job/script.py",
            "state/job-2/checkpoints/1/_metadata",
            "state/job",
            "jobs/script.py",
        ]
        .map(str::to_owned);
        let (doomed, kept) = keys_to_delete("state/job/", listed, Some("state/job/script.py"));
        assert_eq!(
            doomed,
            [
                "state/job/checkpoints/1/_metadata",
                "state/job/savepoints/sp-1/_metadata"
            ]
        );
        assert_eq!(kept, ["state/job/script.py"]);
        let (doomed, kept) = keys_to_delete("state/job/", Vec::new(), None);
        assert!(doomed.is_empty() && kept.is_empty());
    }

    #[test]
    fn batches_hold_at_most_a_thousand_keys() {
        let keys: Vec<String> = (0..2_500).map(|i| format!("state/{i}")).collect();
        let sizes: Vec<usize> = keys.chunks(MAX_KEYS_PER_DELETE).map(<[_]>::len).collect();
        assert_eq!(sizes, [1000, 1000, 500]);
        assert_eq!(keys[..1000].chunks(MAX_KEYS_PER_DELETE).count(), 1);
    }

    #[test]
    fn failures_name_the_first_keys_with_their_codes_and_count_the_rest() {
        let failure = |key: &str, code: &str, message: &str| KeyFailure {
            key: key.into(),
            code: code.into(),
            message: message.into(),
        };
        assert_eq!(
            summarize(&[failure("state/a", "AccessDenied", "Access Denied")]),
            "state/a (AccessDenied: Access Denied)"
        );
        let many: Vec<KeyFailure> = (0..5)
            .map(|i| failure(&format!("state/{i}"), "InternalError", ""))
            .collect();
        assert_eq!(
            summarize(&many),
            "state/0 (InternalError), state/1 (InternalError), state/2 (InternalError) and 2 more"
        );
        let err = Error::ObjectsNotDeleted {
            prefix: "s3://b/state/".into(),
            deleted: 3,
            failed: 1,
            access_denied: true,
            summary: summarize(&many[..1]),
        };
        let line = err.to_string();
        assert!(!line.contains('\n'), "{line}");
        assert!(
            line.starts_with(
                "1 of 4 objects under s3://b/state/ were not deleted: state/0 (InternalError)"
            ),
            "{line}"
        );
        assert!(line.contains("s3:DeleteObject"), "{line}");
        assert_eq!(
            flink_eks_plan::Classify::class(&err),
            flink_eks_plan::FailureClass::Auth
        );
    }

    #[test]
    fn the_removal_says_how_many_and_where() {
        let removal = |deleted, kept: &[&str]| PrefixRemoval {
            prefix: "s3://b/state/".into(),
            deleted,
            kept: kept.iter().map(|k| (*k).to_owned()).collect(),
        };
        assert_eq!(
            removal(0, &[]).to_string(),
            "no objects under s3://b/state/: nothing to delete"
        );
        assert_eq!(
            removal(1, &[]).to_string(),
            "deleted 1 object under s3://b/state/"
        );
        assert_eq!(
            removal(4, &["s3://b/state/job.py"]).to_string(),
            "deleted 4 objects under s3://b/state/; kept s3://b/state/job.py"
        );
    }
}

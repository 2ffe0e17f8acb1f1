//! placeholder
#![warn(missing_docs)]

mod upload;

pub use upload::{
    SHA256_METADATA_KEY, UploadError, UploadOutcome, UploadPlan, Uploader, plan_upload, s3_client,
    sha256_hex,
};

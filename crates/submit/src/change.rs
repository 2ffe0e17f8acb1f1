//! What a step of a deploy does to one object, for the upload and the apply alike.

use std::fmt;

use serde::{Deserialize, Serialize};

/// What writing one object does, or would do: planned from reads alone, then reported by the
/// write itself. [`crate::UploadPlan`] (the script in S3) and [`crate::ApplyPlan`] (the
/// FlinkDeployment) are this type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Change {
    /// There is no such object: it is, or would be, created.
    Create,
    /// The object is there with other content (another checksum, spec, labels or
    /// annotations, or a checksum that cannot be compared): it is, or would be, overwritten.
    Update,
    /// The object already has this content: nothing is written.
    NoChange,
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Change::Create => "create",
            Change::Update => "update",
            Change::NoChange => "no change",
        })
    }
}

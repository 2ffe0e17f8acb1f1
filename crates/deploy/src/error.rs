//! Failure classes: every error of a run belongs to one, so that a pipeline can tell a bad
//! input from a refused credential, a failed service, a plan gone stale, or a failed job.
//! The crates classify their own errors ([`flink_eks_plan::Classify`]); this module finds the
//! class in an error's chain.

use std::error::Error as StdError;
use std::fmt;

use flink_eks_plan::{Classify, FailureClass};

/// A failure class, attached to an error as context; its number is the exit code of
/// `cargo xtask`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Failure {
    /// The configuration or a flag is invalid; nothing was touched.
    BadInput = 2,
    /// Credentials are missing or refused (AWS, registry, cluster).
    Auth = 3,
    /// A remote service failed or refused a request.
    Remote = 4,
    /// The job was deployed and failed, or did not start in time.
    JobFailed = 5,
    /// A resource changed between the plan and its write; that write was not made.
    Stale = 6,
}

impl Failure {
    /// The process exit code of this class.
    pub fn exit_code(self) -> u8 {
        self as u8
    }
}

impl From<FailureClass> for Failure {
    fn from(class: FailureClass) -> Failure {
        match class {
            FailureClass::BadInput => Failure::BadInput,
            FailureClass::Auth => Failure::Auth,
            FailureClass::Stale => Failure::Stale,
            FailureClass::JobFailed => Failure::JobFailed,
            _ => Failure::Remote,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Failure::BadInput => "bad input",
            Failure::Auth => "authentication",
            Failure::Remote => "remote failure",
            Failure::JobFailed => "job failed",
            Failure::Stale => "changed since planned",
        })
    }
}

impl StdError for Failure {}

/// The class a crate gives one error of the chain, if it is a crate's error.
fn crate_class(err: &(dyn StdError + 'static)) -> Option<FailureClass> {
    if let Some(e) = err.downcast_ref::<flink_eks_irsa::Error>() {
        return Some(e.class());
    }
    if let Some(e) = err.downcast_ref::<flink_eks_image_builder::Error>() {
        return Some(e.class());
    }
    if let Some(e) = err.downcast_ref::<flink_eks_submit::Error>() {
        return Some(e.class());
    }
    if let Some(e) = err.downcast_ref::<flink_eks_manifest::Error>() {
        return Some(e.class());
    }
    if let Some(e) = err.downcast_ref::<flink_eks_local::Error>() {
        return Some(e.class());
    }
    if let Some(e) = err.downcast_ref::<flink_eks_plan::Stale>() {
        return Some(e.class());
    }
    None
}

/// The failure class of an error: the first [`Failure`] attached to its chain, or else the
/// class its crate gives it.
pub fn failure_of(err: &anyhow::Error) -> Option<Failure> {
    // `downcast_ref` sees a `Failure` attached as context at any depth; `chain()` does not.
    err.downcast_ref::<Failure>()
        .copied()
        .or_else(|| err.chain().find_map(crate_class).map(Failure::from))
}

/// Attaches the class its crate gives an error, so that it reads in the message too.
pub fn classify(err: impl Into<anyhow::Error>) -> anyhow::Error {
    let err = err.into();
    if err.downcast_ref::<Failure>().is_some() {
        return err;
    }
    match err.chain().find_map(crate_class) {
        Some(class) => err.context(Failure::from(class)),
        None => err,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context as _;

    #[test]
    fn a_failure_attached_as_context_is_found_under_more_context() {
        let err = anyhow::anyhow!("key job.name: not valid")
            .context(Failure::BadInput)
            .context("deploy.toml");
        assert_eq!(failure_of(&err), Some(Failure::BadInput));
    }

    #[test]
    fn a_class_is_attached_once_however_often_an_error_is_classified() {
        let err: anyhow::Error =
            flink_eks_submit::Error::NoSuchBucket { bucket: "b".into() }.into();
        let err = classify(classify(err).context("step upload failed"));
        let text = format!("{:#}", classify(err));
        assert_eq!(text.matches("bad input").count(), 1, "{text}");
    }

    #[test]
    fn a_crate_error_is_classed_by_its_crate_and_stale_has_its_own_code() {
        let op =
            flink_eks_plan::Operation::new("s3-object", "s3://b/k", flink_eks_plan::Action::Update);
        let stale: anyhow::Error = flink_eks_plan::Stale::of(&op, "ETag \"b\"").into();
        let err = classify(stale.context("step upload failed"));
        assert_eq!(failure_of(&err), Some(Failure::Stale));
        assert_eq!(Failure::Stale.exit_code(), 6);
        let plain = Err::<(), _>(std::io::Error::other("boom"))
            .context("x")
            .unwrap_err();
        assert_eq!(failure_of(&plain), None);
    }
}

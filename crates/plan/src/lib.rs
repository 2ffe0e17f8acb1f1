//! The vocabulary that the flink-eks crates plan and report in.
//!
//! A crate that changes remote state splits the work in two: `plan`, which reads what exists
//! and returns typed operations, and `apply(plan)`, which performs exactly those operations
//! and nothing else. Each crate keeps its own typed plan (what an IAM policy update needs is
//! not what an S3 upload needs); this crate is what they have in common, so that a program
//! prints, counts and orders any of them the same way:
//!
//! - [`Operation`]: the printable face of one planned operation.
//! - [`Stale`]: a guarded write found the resource changed since it was planned.
//! - [`Progress`]: how a crate reports events while it works; the program renders them.
//!
//! ```
//! use flink_eks_plan::{Action, Operation};
//!
//! let ops = [
//!     Operation::new("iam-policy", "flink-job-s3", Action::NoChange),
//!     Operation::new("iam-role", "flink-job", Action::Create).detail("trust for default/flink"),
//! ];
//! let writes = ops.iter().filter(|op| op.action.writes()).count();
//! assert_eq!(writes, 1);
//! ```

#![warn(missing_docs)]

use std::fmt;

use serde::Serialize;

/// What an operation does to its resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Action {
    /// The resource does not exist and is created.
    Create,
    /// The resource exists and is changed.
    Update,
    /// The resource exists and is removed.
    Delete,
    /// The resource is as asked: nothing is sent.
    NoChange,
}

impl Action {
    /// Whether performing the operation sends a write.
    pub fn writes(self) -> bool {
        !matches!(self, Action::NoChange)
    }

    /// The word printed for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Update => "update",
            Action::Delete => "delete",
            Action::NoChange => "no change",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// One planned operation on one resource, as printed and serialised.
///
/// `kind` is a stable kebab-case word (`iam-role`, `s3-object`, `flink-deployment`, …) that a
/// program can match on; `name` is what a person would type to find the resource (an ARN, a
/// `namespace/name`, an `s3://` URL, an image reference).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Operation {
    /// The kind of resource.
    pub kind: &'static str,
    /// The resource's name.
    pub name: String,
    /// What happens to it.
    pub action: Action,
    /// What was read when planning that the write is guarded by (`resourceVersion 42`,
    /// `ETag "…"`, `default version v3`); `None` when the resource was absent or the service
    /// offers no guard.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observed: Option<String>,
    /// Why, in a few words.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

impl Operation {
    /// An operation with no observed state and no detail.
    pub fn new(kind: &'static str, name: impl Into<String>, action: Action) -> Operation {
        Operation {
            kind,
            name: name.into(),
            action,
            observed: None,
            detail: String::new(),
        }
    }

    /// Records the state the write is guarded by.
    #[must_use]
    pub fn observed(mut self, observed: impl Into<String>) -> Operation {
        self.observed = Some(observed.into());
        self
    }

    /// Says why, in a few words.
    #[must_use]
    pub fn detail(mut self, detail: impl Into<String>) -> Operation {
        self.detail = detail.into();
        self
    }
}

impl fmt::Display for Operation {
    /// `action kind name (detail)`, no parentheses when there is no detail.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.action, self.kind, self.name)?;
        if !self.detail.is_empty() {
            write!(f, " ({})", self.detail)?;
        }
        Ok(())
    }
}

/// A guarded write found its resource changed since it was planned. Nothing was written to
/// that resource; reading the state again and planning again is the fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{kind} {name} changed since it was planned ({planned} when planned, {found} now): nothing was written to it; plan again"
)]
#[non_exhaustive]
pub struct Stale {
    /// The kind of resource, as in [`Operation::kind`].
    pub kind: &'static str,
    /// The resource's name.
    pub name: String,
    /// The state the plan rested on.
    pub planned: String,
    /// What the service holds now, as far as it said.
    pub found: String,
}

impl Stale {
    /// The error for `op`, which was planned on `op.observed` and now finds `found`.
    pub fn of(op: &Operation, found: impl Into<String>) -> Stale {
        Stale {
            kind: op.kind,
            name: op.name.clone(),
            planned: op.observed.clone().unwrap_or_else(|| "absent".to_owned()),
            found: found.into(),
        }
    }
}

/// What kind of failure an error is, so that a program can pick an exit code, a hint or a
/// retry without knowing every crate's error variants. Each crate classifies its own errors
/// through [`Classify`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum FailureClass {
    /// The input is invalid; nothing was sent.
    BadInput,
    /// Credentials are missing or refused.
    Auth,
    /// A remote service failed or refused the request.
    Remote,
    /// A guarded write found its resource changed since it was planned ([`Stale`]).
    Stale,
    /// The job was deployed and failed, or did not start in time.
    JobFailed,
}

/// Errors that know their [`FailureClass`].
pub trait Classify {
    /// The class of this error.
    fn class(&self) -> FailureClass;
}

impl Classify for Stale {
    fn class(&self) -> FailureClass {
        FailureClass::Stale
    }
}

/// An error and its causes on one line, `error: cause: cause`, a cause whose words the line
/// already holds left out and runs of white space folded: how the crates print a failure of
/// a client library (an SDK's dispatch failure, an I/O error) without its Debug form.
pub fn one_line_chain(err: &dyn std::error::Error) -> String {
    let mut line = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        source = cause.source();
    }
    line.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Receives a crate's progress events, in order, while it works. A library reports; the
/// program decides how to show it (a progress bar, a log line, nothing).
///
/// Every `Fn(&E) + Send + Sync` closure is a `Progress<E>`; [`Silent`] discards everything.
/// The receiver is shared (`&self`), so concurrent work can report to one renderer.
pub trait Progress<E: ?Sized>: Send + Sync {
    /// Called once per event.
    fn event(&self, event: &E);
}

impl<E: ?Sized, F> Progress<E> for F
where
    F: Fn(&E) + Send + Sync,
{
    fn event(&self, event: &E) {
        self(event);
    }
}

/// Discards every event.
#[derive(Debug, Clone, Copy, Default)]
pub struct Silent;

impl<E: ?Sized> Progress<E> for Silent {
    fn event(&self, _event: &E) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_no_change_writes_nothing() {
        for action in [Action::Create, Action::Update, Action::Delete] {
            assert!(action.writes(), "{action}");
        }
        assert!(!Action::NoChange.writes());
    }

    #[test]
    fn operation_serialises_kind_name_action_and_guard() {
        let op = Operation::new("flink-deployment", "default/job", Action::Update)
            .observed("resourceVersion 42");
        let json = serde_json::to_value(&op).unwrap();
        assert_eq!(json["kind"], "flink-deployment");
        assert_eq!(json["name"], "default/job");
        assert_eq!(json["action"], "update");
        assert_eq!(json["observed"], "resourceVersion 42");
        assert!(json.get("detail").is_none(), "{json}");
        let none = serde_json::to_value(Operation::new("image", "r:t", Action::NoChange)).unwrap();
        assert_eq!(none["action"], "no-change");
    }

    #[test]
    fn stale_names_the_resource_both_states_and_the_fix() {
        let op = Operation::new("s3-object", "s3://b/k", Action::Update).observed("ETag \"a\"");
        let text = Stale::of(&op, "ETag \"b\"").to_string();
        assert_eq!(
            text,
            "s3-object s3://b/k changed since it was planned (ETag \"a\" when planned, ETag \"b\" now): nothing was written to it; plan again"
        );
        let absent = Operation::new("iam-role", "r", Action::Create);
        assert!(
            Stale::of(&absent, "it exists")
                .to_string()
                .contains("absent when planned")
        );
    }

    #[test]
    fn a_chain_is_one_line_without_repeats() {
        #[derive(Debug, thiserror::Error)]
        #[error("dispatch failure")]
        struct Outer(#[source] Inner);
        #[derive(Debug, thiserror::Error)]
        #[error("connection refused\n  (os error 111)")]
        struct Inner;
        assert_eq!(
            one_line_chain(&Outer(Inner)),
            "dispatch failure: connection refused (os error 111)"
        );
        #[derive(Debug, thiserror::Error)]
        #[error("cannot reach S3: connection refused\n  (os error 111)")]
        struct Repeats(#[source] Inner);
        assert_eq!(
            one_line_chain(&Repeats(Inner)),
            "cannot reach S3: connection refused (os error 111)"
        );
    }

    #[test]
    fn closures_and_silent_are_progress() {
        let seen = std::sync::Mutex::new(Vec::new());
        let progress = |e: &u32| seen.lock().unwrap().push(*e);
        fn report(p: &dyn Progress<u32>) {
            p.event(&1);
            p.event(&2);
        }
        report(&progress);
        report(&Silent);
        assert_eq!(*seen.lock().unwrap(), [1, 2]);
    }
}

/// The README's example, compiled as a doctest so that it stays true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

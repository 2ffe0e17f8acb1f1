//! What apply, verify and teardown report back.

use std::fmt;
use std::time::Duration;

use serde::Serialize;

use flink_eks_plan::{Action, Operation};

/// What [`crate::Irsa::apply`] and [`crate::Irsa::apply_teardown`] report while they work,
/// for a progress bar or log lines. The same events are also emitted through `tracing`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// An operation that writes is about to be performed.
    Started(Operation),
    /// It was performed.
    Finished(Operation),
    /// IAM does not show a change yet (eventual consistency); the next look comes after
    /// `delay`.
    Waiting {
        /// What is awaited.
        what: String,
        /// The attempt that just failed, from 1.
        attempt: u32,
        /// How many attempts are made at most.
        attempts: u32,
        /// The pause before the next attempt.
        delay: Duration,
    },
    /// Something the user should know (pods to recreate).
    Warning(String),
}

/// What [`crate::Irsa::apply`] did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApplyReport {
    /// The plan's operations, as performed: those whose action writes were done.
    pub operations: Vec<Operation>,
    /// The role's ARN.
    pub role_arn: String,
    /// The policy's ARN.
    pub policy_arn: String,
    /// Warnings for the user, e.g. that pods started before the annotation must be recreated.
    pub warnings: Vec<String>,
    /// How long apply waited for IAM's eventual consistency.
    pub iam_wait: Duration,
}

impl ApplyReport {
    /// Whether anything was created or changed.
    pub fn changed(&self) -> bool {
        self.operations.iter().any(|op| op.action.writes())
    }

    /// The role's ARN.
    pub fn role_arn(&self) -> &str {
        &self.role_arn
    }

    /// The action performed on the resource of `kind`, if the plan had one.
    pub fn action(&self, kind: &str) -> Option<Action> {
        self.operations
            .iter()
            .find(|op| op.kind == kind)
            .map(|op| op.action)
    }
}

impl fmt::Display for ApplyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.changed() {
            writeln!(f, "no change: role {} is as asked", self.role_arn)?;
        }
        for op in self.operations.iter().filter(|op| op.action.writes()) {
            writeln!(f, "{op}")?;
        }
        if !self.iam_wait.is_zero() {
            writeln!(f, "waited {:?} for IAM to show the changes", self.iam_wait)?;
        }
        for warning in &self.warnings {
            writeln!(f, "warning: {warning}")?;
        }
        Ok(())
    }
}

/// Which check of [`VerifyReport`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CheckKind {
    /// The IAM OIDC provider exists with client id `sts.amazonaws.com` (IRSA).
    OidcProvider,
    /// The role exists and its trust policy means what the spec asks (the first manual check).
    TrustPolicy,
    /// The policy is attached to the role (the second manual check).
    AttachedPolicies,
    /// The policy's default version grants what the spec asks.
    PermissionPolicy,
    /// The service account carries `eks.amazonaws.com/role-arn` with the role's ARN
    /// (the third manual check, IRSA).
    Annotation,
    /// The pod identity association maps the service account to the role (Pod Identity).
    PodIdentityAssociation,
}

impl fmt::Display for CheckKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CheckKind::OidcProvider => "OIDC provider",
            CheckKind::TrustPolicy => "trust policy",
            CheckKind::AttachedPolicies => "attached policies",
            CheckKind::PermissionPolicy => "permission policy",
            CheckKind::Annotation => "service account annotation",
            CheckKind::PodIdentityAssociation => "pod identity association",
        })
    }
}

/// One check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// Which check.
    pub kind: CheckKind,
    /// Whether it passed.
    pub ok: bool,
    /// What was expected.
    pub expected: String,
    /// What was found.
    pub found: String,
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.ok {
            write!(f, "ok       {}: {}", self.kind, self.found)
        } else {
            write!(
                f,
                "MISMATCH {}: expected {}, found {}",
                self.kind, self.expected, self.found
            )
        }
    }
}

/// The three manual checks (trust policy, attached policies, annotation) and two
/// more (OIDC provider or pod identity association, permission policy), as one report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    /// The checks, in order.
    pub checks: Vec<Check>,
}

impl VerifyReport {
    /// Whether every check passed.
    pub fn is_ok(&self) -> bool {
        self.checks.iter().all(|c| c.ok)
    }

    /// The checks that failed.
    pub fn mismatches(&self) -> impl Iterator<Item = &Check> {
        self.checks.iter().filter(|c| !c.ok)
    }
}

impl fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for check in &self.checks {
            writeln!(f, "{check}")?;
        }
        Ok(())
    }
}

/// What teardown did with one resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// It carried flink-eks's mark and was removed.
    Removed,
    /// It did not exist.
    Absent,
    /// It exists and was not touched (see the row's detail).
    LeftAlone,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Outcome::Removed => "removed",
            Outcome::Absent => "absent",
            Outcome::LeftAlone => "left alone",
        })
    }
}

/// One resource of a teardown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TeardownRow {
    /// What was done, in the shared printable form.
    pub operation: Operation,
    /// What happened to it.
    pub outcome: Outcome,
}

impl fmt::Display for TeardownRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let op = &self.operation;
        write!(
            f,
            "{:<10} {} {}",
            self.outcome.to_string(),
            op.kind,
            op.name
        )?;
        if !op.detail.is_empty() {
            write!(f, " ({})", op.detail)?;
        }
        Ok(())
    }
}

/// What [`crate::Irsa::teardown`] did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TeardownReport {
    /// One row per resource.
    pub rows: Vec<TeardownRow>,
}

impl TeardownReport {
    /// Whether anything was removed.
    pub fn changed(&self) -> bool {
        self.rows.iter().any(|r| r.outcome == Outcome::Removed)
    }

    /// What happened to the first resource of `kind`.
    pub fn outcome(&self, kind: &str) -> Option<Outcome> {
        self.rows
            .iter()
            .find(|r| r.operation.kind == kind)
            .map(|r| r.outcome)
    }
}

impl fmt::Display for TeardownReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for row in &self.rows {
            writeln!(f, "{row}")?;
        }
        Ok(())
    }
}

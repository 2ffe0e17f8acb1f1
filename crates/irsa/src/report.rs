//! What apply, verify and teardown report back.

use std::fmt;
use std::time::Duration;

use serde::Serialize;

use crate::plan::{Action, Plan, PlanRow, ResourceKind, write_row};

/// Progress of [`crate::Irsa::apply`], for a progress bar or log lines. The same events
/// are also emitted through `tracing` at INFO (WARN for warnings).
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum Progress<'a> {
    /// A change is about to be made.
    Started(&'a PlanRow),
    /// A change was made.
    Finished(&'a PlanRow),
    /// IAM does not show a change yet; the next look comes after `delay`.
    Waiting {
        /// What is awaited.
        what: &'a str,
        /// The attempt that just failed, from 1.
        attempt: u32,
        /// How many attempts are made at most.
        attempts: u32,
        /// The pause before the next attempt.
        delay: Duration,
    },
    /// Something the user should know (pods to recreate, an annotation replaced).
    Warning(&'a str),
}

/// A progress callback that ignores every event.
pub fn no_progress(_: Progress<'_>) {}

/// What [`crate::Irsa::apply`] did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApplyReport {
    /// The plan, as carried out: rows with `Create` or `Update` were done.
    pub plan: Plan,
    /// Warnings for the user, e.g. that pods started before the annotation must be recreated.
    pub warnings: Vec<String>,
}

impl ApplyReport {
    /// Whether anything was created or changed.
    pub fn changed(&self) -> bool {
        !self.plan.is_noop()
    }

    /// The role's ARN.
    pub fn role_arn(&self) -> &str {
        &self.plan.role_arn
    }
}

impl fmt::Display for ApplyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.changed() {
            writeln!(f, "no change: role {} is as asked", self.plan.role_arn)?;
        }
        for row in self
            .plan
            .rows
            .iter()
            .filter(|r| r.action != Action::NoChange)
        {
            writeln!(f, "{row}")?;
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
    /// The role exists and its trust policy means what the spec asks (write-up check 1).
    TrustPolicy,
    /// The policy is attached to the role (write-up check 2).
    AttachedPolicies,
    /// The policy's default version grants what the spec asks.
    PermissionPolicy,
    /// The service account carries `eks.amazonaws.com/role-arn` with the role's ARN
    /// (write-up check 3, IRSA).
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

/// The write-up's three checks (trust policy, attached policies, annotation) and two
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
    /// What kind of resource.
    pub kind: ResourceKind,
    /// Its name or ARN.
    pub name: String,
    /// What happened to it.
    pub outcome: Outcome,
    /// Why, in a few words.
    pub detail: String,
}

impl fmt::Display for TeardownRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_row(f, 10, self.outcome, self.kind, &self.name, &self.detail)
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
}

impl fmt::Display for TeardownReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for row in &self.rows {
            writeln!(f, "{row}")?;
        }
        Ok(())
    }
}

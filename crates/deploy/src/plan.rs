//! The deploy plan: for each step, the resources it owns and what would happen to each,
//! computed before any effect and printed as a table or as JSON.
//!
//! The rows come from the crates' own plans (image-builder's registry check, irsa's plan,
//! submit's upload and apply plans); this module only gathers and prints them.

use std::fmt::{self, Write as _};

use serde::Serialize;

/// A step of `cargo xtask deploy`, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Step {
    /// Build and push the Flink image.
    Image,
    /// IAM policy, role and service account annotation.
    Irsa,
    /// The script to S3.
    Upload,
    /// Render the FlinkDeployment.
    Manifest,
    /// Apply it and watch it to RUNNING.
    Submit,
}

impl Step {
    pub(crate) const ALL: [Step; 5] = [
        Step::Image,
        Step::Irsa,
        Step::Upload,
        Step::Manifest,
        Step::Submit,
    ];

    /// The steps that must finish before this one starts. Image, irsa and upload depend on
    /// nothing and run concurrently.
    pub(crate) fn waits_for(self) -> &'static [Step] {
        match self {
            Step::Image | Step::Irsa | Step::Upload | Step::Manifest => &[],
            Step::Submit => &[Step::Image, Step::Irsa, Step::Upload, Step::Manifest],
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Step::Image => "image",
            Step::Irsa => "irsa",
            Step::Upload => "upload",
            Step::Manifest => "manifest",
            Step::Submit => "submit",
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

/// What happens to one resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub(crate) enum Action {
    #[serde(rename = "create")]
    Create,
    #[serde(rename = "update")]
    Update,
    #[serde(rename = "no change")]
    NoChange,
    /// A dry run does not ask the remote side.
    #[serde(rename = "not checked")]
    NotChecked,
    /// The user skipped the step.
    #[serde(rename = "skipped")]
    Skipped,
}

impl From<flink_eks_irsa::Action> for Action {
    fn from(action: flink_eks_irsa::Action) -> Action {
        match action {
            flink_eks_irsa::Action::Create => Action::Create,
            flink_eks_irsa::Action::Update => Action::Update,
            flink_eks_irsa::Action::NoChange => Action::NoChange,
        }
    }
}

impl From<flink_eks_submit::Change> for Action {
    fn from(action: flink_eks_submit::Change) -> Action {
        match action {
            flink_eks_submit::Change::Create => Action::Create,
            flink_eks_submit::Change::Update => Action::Update,
            flink_eks_submit::Change::NoChange => Action::NoChange,
        }
    }
}

impl Action {
    fn as_str(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Update => "update",
            Action::NoChange => "no change",
            Action::NotChecked => "not checked",
            Action::Skipped => "skipped",
        }
    }

    /// Whether carrying out this row writes anything.
    pub(crate) fn writes(self) -> bool {
        matches!(self, Action::Create | Action::Update)
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One resource of the plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Row {
    pub(crate) step: Step,
    pub(crate) resource: String,
    pub(crate) action: Action,
    pub(crate) detail: String,
}

impl Row {
    pub(crate) fn new(
        step: Step,
        resource: impl Into<String>,
        action: Action,
        detail: impl Into<String>,
    ) -> Row {
        Row {
            step,
            resource: resource.into(),
            action,
            detail: detail.into(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
struct StepOrder {
    step: Step,
    waits_for: &'static [Step],
}

/// The whole plan.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Plan {
    pub(crate) deployment: String,
    pub(crate) dry_run: bool,
    steps: Vec<StepOrder>,
    pub(crate) rows: Vec<Row>,
}

impl Plan {
    pub(crate) fn new(deployment: String, dry_run: bool, rows: Vec<Row>) -> Plan {
        let steps = Step::ALL
            .iter()
            .map(|&step| StepOrder {
                step,
                waits_for: step.waits_for(),
            })
            .collect();
        Plan {
            deployment,
            dry_run,
            steps,
            rows,
        }
    }

    /// The action of the step's rows taken together: the strongest one.
    pub(crate) fn step_writes(&self, step: Step) -> bool {
        self.rows
            .iter()
            .any(|r| r.step == step && r.action.writes())
    }

    /// Whether carrying out the plan writes nothing at all.
    pub(crate) fn is_noop(&self) -> bool {
        self.rows.iter().all(|r| !r.action.writes())
    }

    pub(crate) fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let note = if self.dry_run {
            " (dry run: the remote state is not read, nothing is changed)"
        } else {
            ""
        };
        writeln!(f, "Plan for {}{note}", self.deployment)?;
        writeln!(
            f,
            "  order: image, irsa and upload together; then manifest; then submit"
        )?;
        let headers = ["STEP", "WAITS FOR", "RESOURCE", "ACTION", "DETAIL"];
        let cells: Vec<[String; 5]> = self
            .rows
            .iter()
            .map(|r| {
                let waits = r
                    .step
                    .waits_for()
                    .iter()
                    .map(|s| s.name())
                    .collect::<Vec<_>>()
                    .join(",");
                [
                    r.step.to_string(),
                    if waits.is_empty() {
                        "-".to_owned()
                    } else {
                        waits
                    },
                    r.resource.clone(),
                    r.action.to_string(),
                    r.detail.clone(),
                ]
            })
            .collect();
        let mut widths = headers.map(str::len);
        for row in &cells {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let line = |cells: [&str; 5]| {
            let mut out = String::from(" ");
            for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
                if i == 4 {
                    let _ = write!(out, " {cell}");
                } else {
                    let _ = write!(out, " {cell:<w$}");
                }
            }
            out.trim_end().to_owned()
        };
        writeln!(f, "{}", line(headers))?;
        for row in &cells {
            writeln!(f, "{}", line([&row[0], &row[1], &row[2], &row[3], &row[4]]))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(actions: &[Action]) -> Plan {
        let rows = actions
            .iter()
            .zip(Step::ALL)
            .map(|(&a, s)| Row::new(s, format!("{s}-resource"), a, ""))
            .collect();
        Plan::new("default/job".into(), false, rows)
    }

    #[test]
    fn submit_waits_for_every_other_step_and_the_rest_for_nothing() {
        assert_eq!(
            Step::Submit.waits_for(),
            [Step::Image, Step::Irsa, Step::Upload, Step::Manifest]
        );
        for step in [Step::Image, Step::Irsa, Step::Upload] {
            assert!(step.waits_for().is_empty(), "{step}");
        }
    }

    #[test]
    fn noop_only_when_no_row_writes() {
        assert!(plan(&[Action::NoChange, Action::NoChange, Action::Skipped]).is_noop());
        assert!(!plan(&[Action::NoChange, Action::Update]).is_noop());
        assert!(!plan(&[Action::Create]).is_noop());
    }

    #[test]
    fn table_aligns_columns_and_json_names_actions() {
        let p = plan(&[Action::Create, Action::NoChange]);
        let text = p.to_string();
        let lines: Vec<&str> = text.lines().collect();
        let header = lines
            .iter()
            .find(|l| l.contains("RESOURCE"))
            .expect("header");
        let row = lines
            .iter()
            .find(|l| l.contains("image-resource"))
            .expect("row");
        assert_eq!(
            header.find("RESOURCE"),
            row.find("image-resource"),
            "{text}"
        );
        assert_eq!(header.find("ACTION"), row.find("create"), "{text}");
        let json: serde_json::Value = serde_json::from_str(&p.to_json()).unwrap();
        assert_eq!(json["rows"][1]["action"], "no change");
        assert_eq!(json["steps"][4]["waits_for"][0], "image");
    }
}

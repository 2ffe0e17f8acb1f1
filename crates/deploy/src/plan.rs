//! The deploy plan: every step with the steps it waits for and the typed plan its crate made,
//! and one printable row per operation. What is printed is read from the same typed plans that
//! [`crate::execute`] carries out, so a row can only say what will run.

use std::fmt::{self, Write as _};

use flink_eks_image_builder::{Credentials as RegistryCredentials, ImagePlan};
use flink_eks_manifest::FlinkDeployment;
use flink_eks_plan::{Action, FailureClass, Operation};
use flink_eks_submit::operator::FLINK_API_GROUP;
use flink_eks_submit::{ApplyPlan, UploadPlan};
use serde::Serialize;

use crate::error::Failure;
use crate::graph::{self, Step};

/// A precondition the plan found unmet, read in the same wave as everything else: the plan
/// is printed with it as a blocking row, and [`crate::execute`] refuses the plan, so nothing
/// is written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Blocker {
    /// The kind of resource (`s3-bucket`, `namespace`, `service-account`, `docker-daemon`,
    /// `registry`).
    pub kind: &'static str,
    /// The resource's name.
    pub name: String,
    /// What is wrong, in one line.
    pub reason: String,
    /// What to do about it.
    pub fix: String,
    /// Bad input (exit 2) or refused credentials (exit 3).
    pub class: FailureClass,
}

impl Blocker {
    /// A blocker of class bad input.
    pub fn bad_input(
        kind: &'static str,
        name: impl Into<String>,
        reason: impl Into<String>,
        fix: impl Into<String>,
    ) -> Blocker {
        Blocker {
            kind,
            name: name.into(),
            reason: reason.into(),
            fix: fix.into(),
            class: FailureClass::BadInput,
        }
    }
}

impl fmt::Display for Blocker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}; fix: {}", self.reason, self.fix)
    }
}

/// The preconditions a crate's typed plan found unmet: a missing bucket or one in another
/// region (upload), a missing namespace or a service account another deployment's role
/// annotation points at (irsa), a missing namespace (submit).
fn blockers_of(work: &Work) -> Vec<Blocker> {
    match work {
        Work::Upload(plan) => {
            let bucket = plan.location().bucket();
            plan.bucket()
                .problem(bucket)
                .map(|(reason, fix)| Blocker::bad_input("s3-bucket", bucket, reason, fix))
                .into_iter()
                .collect()
        }
        Work::Irsa(plan) => plan
            .blockers
            .iter()
            .map(|b| Blocker::bad_input(b.kind(), b.name(), b.reason(), b.fix()))
            .collect(),
        Work::Rbac(plan) => plan
            .blockers
            .iter()
            .map(|b| Blocker {
                class: if b.is_auth() {
                    FailureClass::Auth
                } else {
                    FailureClass::BadInput
                },
                ..Blocker::bad_input(b.kind(), b.name(), b.reason(), b.fix())
            })
            .collect(),
        Work::Submit(plan) => {
            let namespace = plan.namespace();
            let missing = plan.namespace_missing().then(|| {
                Blocker::bad_input(
                    "namespace",
                    namespace,
                    format!("namespace {namespace} does not exist"),
                    format!(
                        "create it (kubectl create namespace {namespace}) or set job.namespace"
                    ),
                )
            });
            let unreadable = plan.unreadable().map(|message| Blocker {
                class: FailureClass::Auth,
                ..Blocker::bad_input(
                    "permission",
                    "get flinkdeployments",
                    format!(
                        "the deploying identity may not read FlinkDeployment {namespace}/{}: \
                         {message}",
                        plan.name()
                    ),
                    flink_eks_rbac::Write::new("get", FLINK_API_GROUP, "flinkdeployments")
                        .in_namespace(namespace)
                        .fix(),
                )
            });
            missing
                .into_iter()
                .chain(unreadable)
                .chain(
                    plan.operator_blockers()
                        .iter()
                        .map(|b| Blocker::bad_input(b.kind, &b.name, &b.reason, &b.fix)),
                )
                .collect()
        }
        _ => Vec::new(),
    }
}

/// The kind of the manifest step's row: rendered locally, sent nowhere by that step.
pub const MANIFEST_KIND: &str = "flink-deployment-manifest";

/// What a step will do: its crate's typed plan, or why it has none.
#[derive(Debug)]
#[non_exhaustive]
pub enum Work {
    /// The user left the step out (`--skip`): the resources it would manage, not read.
    Skipped(Vec<Operation>),
    /// A dry run: the resources the step manages, not read.
    NotRead(Vec<Operation>),
    /// The pods use access keys from a Secret: there is no IAM role to manage.
    NoIam,
    /// The registry check and, when it lacks the image, the build and push.
    Image {
        /// image-builder's plan.
        plan: Box<ImagePlan>,
        /// The credentials the registry was asked with, and the push will use. Never printed
        /// or serialised.
        credentials: RegistryCredentials,
    },
    /// irsa's plan: policy, role, attachment, and the service account's identity.
    Irsa(Box<flink_eks_irsa::Plan>),
    /// rbac's plan: the namespace, and the Role and RoleBinding of the job's service account.
    Rbac(Box<flink_eks_rbac::Plan>),
    /// The script's upload.
    Upload(Box<UploadPlan>),
    /// The FlinkDeployment, rendered from the inputs (no remote effect).
    Manifest(Box<FlinkDeployment>),
    /// The server-side apply of the FlinkDeployment, and the watch that follows.
    Submit(Box<ApplyPlan>),
}

/// How a row is carried out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", untagged)]
pub enum RowAction {
    /// A planned operation.
    Planned(Action),
    /// Computed locally; nothing is sent.
    Local(LocalAction),
}

/// A row that sends nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LocalAction {
    /// Rendered from the inputs.
    Render,
    /// A dry run does not read the remote state.
    NotChecked,
    /// Left out by `--skip`, or not needed in this mode.
    Skipped,
    /// A precondition is unmet: the plan is refused and nothing is written.
    Blocked,
    /// Read to check a precondition (the operator, the nodes); nothing is written to it.
    Checked,
}

impl RowAction {
    /// Whether carrying out the row writes anything.
    pub fn writes(self) -> bool {
        matches!(self, RowAction::Planned(action) if action.writes())
    }

    fn as_str(self) -> &'static str {
        match self {
            RowAction::Planned(action) => action.as_str(),
            RowAction::Local(LocalAction::Render) => "render",
            RowAction::Local(LocalAction::NotChecked) => "not checked",
            RowAction::Local(LocalAction::Skipped) => "skipped",
            RowAction::Local(LocalAction::Blocked) => "blocked",
            RowAction::Local(LocalAction::Checked) => "checked",
        }
    }
}

impl fmt::Display for RowAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// One printed row: a step's operation on one resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Row {
    /// The step it belongs to.
    pub step: Step,
    /// The kind of resource (`iam-role`, `s3-object`, …).
    pub kind: &'static str,
    /// The resource's name.
    pub name: String,
    /// What happens to it.
    pub action: RowAction,
    /// The state the write is guarded by, as read when planning.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observed: Option<String>,
    /// Why, in a few words.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub detail: String,
    /// For a blocked row: what to do about it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Row {
    fn of(step: Step, op: Operation, action: RowAction) -> Row {
        Row {
            step,
            kind: op.kind,
            name: op.name,
            action,
            observed: op.observed,
            detail: op.detail,
            fix: None,
        }
    }

    fn blocked(step: Step, blocker: &Blocker) -> Row {
        Row {
            step,
            kind: blocker.kind,
            name: blocker.name.clone(),
            action: RowAction::Local(LocalAction::Blocked),
            observed: None,
            detail: blocker.reason.clone(),
            fix: Some(blocker.fix.clone()),
        }
    }
}

/// One step of the plan.
#[derive(Debug)]
pub struct StepPlan {
    /// Which step.
    pub step: Step,
    /// What it will do.
    pub work: Work,
    /// The preconditions found unmet: its crate's plan's, and those read beside it (the
    /// Docker daemon of a plan that builds, the registry's credentials).
    pub blockers: Vec<Blocker>,
    /// What was read beside the crate's plan to check a precondition that does not block it
    /// (the nodes the pods can run on), as rows with the action "checked".
    pub checks: Vec<Row>,
}

impl StepPlan {
    /// The step with `work`, and the blockers its crate's plan holds.
    pub fn new(step: Step, work: Work) -> StepPlan {
        let blockers = blockers_of(&work);
        StepPlan {
            step,
            work,
            blockers,
            checks: Vec::new(),
        }
    }

    /// Adds a row of what was read beside the crate's plan (the action "checked").
    #[must_use]
    pub fn checked(
        mut self,
        kind: &'static str,
        name: impl Into<String>,
        detail: impl Into<String>,
    ) -> StepPlan {
        self.checks.push(Row {
            step: self.step,
            kind,
            name: name.into(),
            action: RowAction::Local(LocalAction::Checked),
            observed: None,
            detail: detail.into(),
            fix: None,
        });
        self
    }

    /// Adds a blocker found beside the crate's plan.
    #[must_use]
    pub fn blocked_by(mut self, blocker: Blocker) -> StepPlan {
        self.blockers.push(blocker);
        self
    }

    /// The step's rows, in the order its crate carries them out.
    pub fn rows(&self) -> Vec<Row> {
        let step = self.step;
        let local = |ops: &[Operation], action: LocalAction| -> Vec<Row> {
            ops.iter()
                .map(|op| Row::of(step, op.clone(), RowAction::Local(action)))
                .collect()
        };
        let planned = |op: Operation| {
            let action = RowAction::Planned(op.action);
            Row::of(step, op, action)
        };
        let mut rows = match &self.work {
            Work::Skipped(ops) => local(ops, LocalAction::Skipped),
            Work::NotRead(ops) => local(ops, LocalAction::NotChecked),
            Work::NoIam => vec![Row {
                step,
                kind: "iam-role",
                name: "none".to_owned(),
                action: RowAction::Local(LocalAction::Skipped),
                observed: None,
                detail: "access keys from a Secret: no IAM role".to_owned(),
                fix: None,
            }],
            Work::Image { plan, .. } => vec![planned(plan.operation())],
            Work::Irsa(plan) => plan.operations().into_iter().map(planned).collect(),
            Work::Rbac(plan) => plan.operations().into_iter().map(planned).collect(),
            Work::Upload(plan) => vec![planned(plan.operation())],
            Work::Manifest(deployment) => vec![Row {
                step,
                kind: MANIFEST_KIND,
                name: manifest_name(deployment),
                action: RowAction::Local(LocalAction::Render),
                observed: None,
                detail: manifest_detail(deployment),
                fix: None,
            }],
            Work::Submit(plan) => {
                let mut rows = vec![planned(plan.operation())];
                rows.extend(plan.operator().map(|check| operator_row(step, check)));
                rows
            }
        };
        rows.extend(self.checks.iter().cloned());
        rows.extend(self.blockers.iter().map(|b| Row::blocked(step, b)));
        rows
    }

    /// Whether carrying out the step writes anything.
    pub fn writes(&self) -> bool {
        self.rows().iter().any(|r| r.action.writes())
    }
}

/// The row of what the plan read about the operator: its facts in one line, and the
/// warnings about what it could not read.
fn operator_row(step: Step, check: &flink_eks_submit::OperatorCheck) -> Row {
    use flink_eks_submit::operator::{Fact, OPERATOR_KIND};
    let name = match &check.facts.deployment {
        Fact::Known(Some(operator)) => operator.to_string(),
        _ => "-".to_owned(),
    };
    let mut detail = check.facts.summary();
    for warning in &check.warnings {
        let _ = write!(detail, "; warning: {warning}");
    }
    Row {
        step,
        kind: OPERATOR_KIND,
        name,
        action: RowAction::Local(LocalAction::Checked),
        observed: None,
        detail,
        fix: None,
    }
}

fn manifest_name(deployment: &FlinkDeployment) -> String {
    format!(
        "{}/{}",
        deployment.metadata.namespace.as_deref().unwrap_or_default(),
        deployment.metadata.name.as_deref().unwrap_or_default()
    )
}

/// What the rendered resource runs that the image alone does not say: the Python interpreter
/// (`-pyclientexec`, also `python.executable`) and the fetch image with its pull policy.
fn manifest_detail(deployment: &FlinkDeployment) -> String {
    let spec = &deployment.spec;
    let python = spec
        .job
        .as_ref()
        .and_then(|j| j.args.as_ref())
        .and_then(|args| {
            let at = args.iter().position(|a| a == "-pyclientexec")?;
            args.get(at + 1)
        });
    let fetch = spec
        .job_manager
        .as_ref()
        .and_then(|jm| jm.pod_template.as_ref())
        .and_then(|t| t.spec.as_ref())
        .and_then(|p| p.init_containers.as_ref())
        .and_then(|c| c.first());
    let mut parts = Vec::new();
    if let Some(python) = python {
        parts.push(format!("python {python}"));
    }
    if let Some(fetch) = fetch {
        parts.push(format!(
            "fetch image {} (pull {})",
            fetch.image.as_deref().unwrap_or_default(),
            fetch.image_pull_policy.as_deref().unwrap_or("default")
        ));
    }
    parts.join("; ")
}

/// The whole plan: each step of [`graph::GRAPH`] with its work.
#[derive(Debug)]
pub struct DeployPlan {
    /// `namespace/name` of the FlinkDeployment.
    pub deployment: String,
    /// Whether the remote state was read (a live plan) or not (a dry run).
    pub live: bool,
    /// One entry per step, in the graph's order.
    pub steps: Vec<StepPlan>,
}

impl DeployPlan {
    /// The plan of one step.
    pub fn step(&self, step: Step) -> Option<&StepPlan> {
        self.steps.iter().find(|s| s.step == step)
    }

    /// Every row, step by step.
    pub fn rows(&self) -> Vec<Row> {
        self.steps.iter().flat_map(StepPlan::rows).collect()
    }

    /// How many operations write: creates, updates and deletes.
    pub fn pending(&self) -> usize {
        self.rows().iter().filter(|r| r.action.writes()).count()
    }

    /// Whether carrying out the plan writes nothing at all.
    pub fn is_noop(&self) -> bool {
        self.pending() == 0
    }

    /// Every unmet precondition, once each (irsa and submit both find a missing namespace).
    pub fn blockers(&self) -> Vec<&Blocker> {
        let mut found: Vec<&Blocker> = Vec::new();
        for blocker in self.steps.iter().flat_map(|s| &s.blockers) {
            if !found
                .iter()
                .any(|b| b.kind == blocker.kind && b.name == blocker.name)
            {
                found.push(blocker);
            }
        }
        found
    }

    /// Why the plan must not be carried out, when a precondition is unmet: one line per
    /// blocker with its fix, classed auth (exit 3) when a credential was refused, bad input
    /// (exit 2) otherwise. Nothing has been written then.
    pub fn refusal(&self) -> Option<anyhow::Error> {
        let blockers = self.blockers();
        if blockers.is_empty() {
            return None;
        }
        let class = if blockers.iter().any(|b| b.class == FailureClass::Auth) {
            Failure::Auth
        } else {
            Failure::BadInput
        };
        let lines: Vec<String> = blockers
            .iter()
            .map(|b| format!("  {} {}: {b}", b.kind, b.name))
            .collect();
        Some(
            anyhow::anyhow!(
                "the plan is blocked, so nothing was written:\n{}",
                lines.join("\n")
            )
            .context(class),
        )
    }

    /// The plan as pretty JSON: the deployment, the step graph, and every row.
    pub fn to_json(&self) -> String {
        #[derive(Serialize)]
        struct StepJson {
            step: Step,
            waits_for: &'static [Step],
        }
        #[derive(Serialize)]
        struct PlanJson {
            deployment: String,
            live: bool,
            pending: usize,
            blocked: usize,
            steps: Vec<StepJson>,
            rows: Vec<Row>,
        }
        let json = PlanJson {
            deployment: self.deployment.clone(),
            live: self.live,
            pending: self.pending(),
            blocked: self.blockers().len(),
            steps: self
                .steps
                .iter()
                .map(|s| StepJson {
                    step: s.step,
                    waits_for: s.step.waits_for(),
                })
                .collect(),
            rows: self.rows(),
        };
        serde_json::to_string_pretty(&json).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }
}

impl fmt::Display for DeployPlan {
    /// The plan as a table: one row per operation, with the steps each step waits for.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let note = if self.live {
            ""
        } else {
            " (dry run: the remote state is not read, nothing is changed)"
        };
        writeln!(f, "Plan for {}{note}", self.deployment)?;
        writeln!(f, "  order: {}", graph::describe_order())?;
        let headers = ["STEP", "WAITS FOR", "KIND", "NAME", "ACTION", "DETAIL"];
        let cells: Vec<[String; 6]> = self
            .rows()
            .into_iter()
            .map(|r| {
                let waits: Vec<&str> = r.step.waits_for().iter().map(|s| s.name()).collect();
                let mut detail = r.detail.clone();
                if let Some(fix) = &r.fix {
                    let _ = write!(detail, "; fix: {fix}");
                }
                if let Some(observed) = &r.observed {
                    if !detail.is_empty() {
                        detail.push_str("; ");
                    }
                    let _ = write!(detail, "planned on {observed}");
                }
                [
                    r.step.to_string(),
                    if waits.is_empty() {
                        "-".to_owned()
                    } else {
                        waits.join(",")
                    },
                    r.kind.to_owned(),
                    r.name,
                    r.action.to_string(),
                    detail,
                ]
            })
            .collect();
        let mut widths = headers.map(str::len);
        for row in &cells {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let line = |cells: [&str; 6]| {
            let mut out = String::from(" ");
            for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
                if i == cells.len() - 1 {
                    let _ = write!(out, " {cell}");
                } else {
                    let _ = write!(out, " {cell:<w$}");
                }
            }
            out.trim_end().to_owned()
        };
        writeln!(f, "{}", line(headers))?;
        for row in &cells {
            writeln!(
                f,
                "{}",
                line([&row[0], &row[1], &row[2], &row[3], &row[4], &row[5]])
            )?;
        }
        let pending = self.pending();
        let blocked = self.blockers().len();
        if blocked > 0 {
            writeln!(
                f,
                "  blocked: {blocked} precondition{} unmet; nothing will be written",
                if blocked == 1 { "" } else { "s" }
            )?;
        } else if self.live {
            match pending {
                0 => writeln!(f, "  nothing to change")?,
                1 => writeln!(f, "  1 operation to carry out")?,
                n => writeln!(f, "  {n} operations to carry out")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(works: Vec<(Step, Vec<Operation>)>) -> DeployPlan {
        DeployPlan {
            deployment: "default/job".into(),
            live: true,
            steps: works
                .into_iter()
                .map(|(step, ops)| StepPlan::new(step, Work::NotRead(ops)))
                .collect(),
        }
    }

    #[test]
    fn local_rows_never_write() {
        let p = plan(vec![(
            Step::Image,
            vec![Operation::new("image", "r:t", Action::Create)],
        )]);
        assert!(p.is_noop(), "a row that is not read is not carried out");
        assert_eq!(p.rows()[0].action.to_string(), "not checked");
    }

    #[test]
    fn table_aligns_columns_and_states_the_order_from_the_graph() {
        let p = plan(vec![
            (
                Step::Irsa,
                vec![Operation::new("iam-role", "flink-job", Action::Create)],
            ),
            (
                Step::Submit,
                vec![Operation::new(
                    "flink-deployment",
                    "default/job",
                    Action::Update,
                )],
            ),
        ]);
        let text = p.to_string();
        assert!(
            text.contains(
                "order: image, rbac, upload and manifest together; then irsa; then submit"
            ),
            "{text}"
        );
        let lines: Vec<&str> = text.lines().collect();
        let header = lines.iter().find(|l| l.contains("KIND")).expect("header");
        let row = lines.iter().find(|l| l.contains("flink-job")).expect("row");
        assert_eq!(header.find("NAME"), row.find("flink-job"), "{text}");
        assert_eq!(header.find("KIND"), row.find("iam-role"), "{text}");
        let submit = lines
            .iter()
            .find(|l| l.trim_start().starts_with("submit"))
            .expect("row");
        assert!(submit.contains("image,rbac,irsa,upload,manifest"), "{text}");
    }

    #[test]
    fn a_blocker_is_a_blocked_row_with_its_fix_and_the_plan_is_refused_as_bad_input() {
        let mut p = plan(vec![(
            Step::Upload,
            vec![Operation::new("s3-object", "s3://b/k", Action::Create)],
        )]);
        assert!(p.refusal().is_none(), "no blocker, no refusal");
        let bucket = Blocker::bad_input(
            "s3-bucket",
            "b",
            "bucket b does not exist",
            "create it (aws s3 mb s3://b) or set s3.bucket to a bucket that exists",
        );
        p.steps[0] = StepPlan::new(Step::Upload, Work::NotRead(vec![])).blocked_by(bucket);
        let rows = p.rows();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].action.to_string(), "blocked");
        assert!(!rows[0].action.writes());
        let text = p.to_string();
        assert!(
            text.contains("bucket b does not exist; fix: create it (aws s3 mb s3://b)"),
            "{text}"
        );
        assert!(text.contains("blocked: 1 precondition unmet"), "{text}");
        let json: serde_json::Value = serde_json::from_str(&p.to_json()).unwrap();
        assert_eq!(json["blocked"], 1);
        assert_eq!(json["rows"][0]["action"], "blocked");
        assert_eq!(json["rows"][0]["kind"], "s3-bucket");
        assert!(
            json["rows"][0]["fix"]
                .as_str()
                .unwrap()
                .contains("s3.bucket")
        );
        let refusal = p.refusal().expect("refused");
        assert_eq!(crate::failure_of(&refusal), Some(Failure::BadInput));
        let message = format!("{refusal:#}");
        assert!(
            message.contains("nothing was written") && message.contains("s3-bucket b"),
            "{message}"
        );
    }

    #[test]
    fn a_refused_credential_blocks_as_auth_and_a_namespace_found_twice_counts_once() {
        let namespace = || {
            Blocker::bad_input(
                "namespace",
                "team-a",
                "namespace team-a does not exist",
                "create it (kubectl create namespace team-a) or set job.namespace",
            )
        };
        let mut p = plan(vec![]);
        p.steps = vec![
            StepPlan::new(Step::Irsa, Work::NotRead(vec![])).blocked_by(namespace()),
            StepPlan::new(Step::Submit, Work::NotRead(vec![])).blocked_by(namespace()),
        ];
        assert_eq!(p.blockers().len(), 1);
        let refusal = format!("{:#}", p.refusal().unwrap());
        assert_eq!(
            refusal.matches("kubectl create namespace team-a").count(),
            1
        );

        p.steps.push(
            StepPlan::new(Step::Image, Work::NotRead(vec![])).blocked_by(Blocker {
                kind: "registry",
                name: "registry.example".into(),
                reason: "the registry refused the credentials".into(),
                fix: "docker login registry.example".into(),
                class: FailureClass::Auth,
            }),
        );
        let refusal = p.refusal().unwrap();
        assert_eq!(crate::failure_of(&refusal), Some(Failure::Auth));
        assert_eq!(Failure::Auth.exit_code(), 3);
    }

    #[test]
    fn json_lists_each_row_with_kind_name_and_action_and_the_graph() {
        let p = plan(vec![(
            Step::Upload,
            vec![Operation::new("s3-object", "s3://b/k", Action::Update).observed("ETag \"x\"")],
        )]);
        let json: serde_json::Value = serde_json::from_str(&p.to_json()).unwrap();
        assert_eq!(json["rows"][0]["kind"], "s3-object");
        assert_eq!(json["rows"][0]["name"], "s3://b/k");
        assert_eq!(json["rows"][0]["action"], "not-checked");
        assert_eq!(json["rows"][0]["observed"], "ETag \"x\"");
        assert_eq!(json["steps"][0]["step"], "upload");
        assert_eq!(json["pending"], 0);
    }
}

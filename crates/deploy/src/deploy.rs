//! `cargo xtask deploy`: the plan, computed from reads only and printed first, then the
//! steps in order — image, irsa and upload concurrently, then manifest, then submit.
//!
//! Every decision about a resource is its crate's: the registry check and the build are
//! image-builder's, the IAM documents and calls irsa's, the upload and the watch submit's.

use std::future::Future;
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result, anyhow};
use aws_config::SdkConfig;
use flink_eks_image_builder::{RegistryState, check_registry};
use flink_eks_irsa::Irsa;
use flink_eks_irsa::documents::{OidcIssuer, Partition};
use flink_eks_submit::{Submitter, Uploader, s3_client};

use crate::config::Config;
use crate::inputs::{Inputs, write_artifact};
use crate::plan::{Action, Plan, Row, Step};
use crate::{Failure, Output, Reporter, classify};

/// The options of `cargo xtask deploy`.
#[derive(Debug, Clone)]
pub(crate) struct DeployOptions {
    pub(crate) dry_run: bool,
    pub(crate) out: std::path::PathBuf,
    pub(crate) skip: Vec<Step>,
    pub(crate) output: Output,
    pub(crate) context: Option<String>,
}

/// The connections a real run needs.
pub(crate) struct Remote {
    pub(crate) aws: SdkConfig,
    pub(crate) kube: kube::Client,
}

impl Remote {
    pub(crate) async fn connect(config: &Config, context: Option<&str>) -> Result<Remote> {
        let aws = crate::clients::aws(config).await;
        let kube = crate::clients::kube(config, context).await?;
        Ok(Remote { aws, kube })
    }

    pub(crate) fn irsa(&self) -> Irsa {
        Irsa::new(&self.aws, self.kube.clone())
    }

    pub(crate) fn uploader(&self) -> Uploader {
        Uploader::new(s3_client(&self.aws))
    }

    pub(crate) fn submitter(&self) -> Submitter {
        Submitter::new(self.kube.clone())
    }
}

pub(crate) async fn deploy(
    config: &Config,
    options: &DeployOptions,
    report: &Reporter,
) -> Result<()> {
    let inputs = Inputs::from_config(config).context(Failure::BadInput)?;
    if options.dry_run {
        let plan = dry_plan(&inputs, &options.skip);
        write_artifacts(&inputs, config, &options.out)?;
        print_plan(&plan, options.output);
        report.line(&format!("artifacts written to {}", options.out.display()));
        return Ok(());
    }

    let remote = Remote::connect(config, options.context.as_deref()).await?;
    let plan = live_plan(&remote, &inputs, &options.skip).await?;
    print_plan(&plan, options.output);
    if plan.is_noop() {
        report.line("no change on every row: nothing will be written");
    }
    execute(&remote, &inputs, &plan, report).await
}

fn print_plan(plan: &Plan, output: Output) {
    match output {
        Output::Text => eprint!("{plan}"),
        Output::Json => println!("{}", plan.to_json()),
    }
}

/// The plan of a dry run: every row, none checked against the remote side.
fn dry_plan(inputs: &Inputs, skip: &[Step]) -> Plan {
    let action = |step: Step| {
        if skip.contains(&step) {
            Action::Skipped
        } else {
            Action::NotChecked
        }
    };
    let mut rows = vec![Row::new(
        Step::Image,
        &inputs.image_ref,
        action(Step::Image),
        format!("context {}", inputs.context.digest),
    )];
    match &inputs.irsa {
        Some(spec) => rows.extend(flink_eks_irsa::resources(spec).into_iter().map(
            |(kind, name)| Row::new(Step::Irsa, format!("{kind} {name}"), action(Step::Irsa), ""),
        )),
        None => rows.push(Row::new(
            Step::Irsa,
            "none",
            Action::Skipped,
            "access keys from a Secret: no IAM role",
        )),
    }
    rows.push(upload_row(inputs, action(Step::Upload)));
    rows.push(submit_row(inputs, action(Step::Submit)));
    Plan::new(format!("{}/{}", inputs.namespace, inputs.name), true, rows)
}

fn upload_row(inputs: &Inputs, action: Action) -> Row {
    Row::new(
        Step::Upload,
        inputs.script.location.to_string(),
        action,
        format!("sha256 {}", &inputs.script.sha256[..12]),
    )
}

fn submit_row(inputs: &Inputs, action: Action) -> Row {
    Row::new(
        Step::Submit,
        format!("FlinkDeployment {}/{}", inputs.namespace, inputs.name),
        action,
        "",
    )
}

/// Writes what a deploy would send: the Dockerfile, the build context and its digest, the IAM
/// documents (with placeholders for the account and the cluster's issuer), the FlinkDeployment.
fn write_artifacts(inputs: &Inputs, config: &Config, out: &Path) -> Result<()> {
    write_artifact(
        out,
        "Dockerfile",
        flink_eks_image_builder::render_dockerfile(&inputs.image).as_bytes(),
    )?;
    write_artifact(out, "build-context.tar.gz", &inputs.context.tar_gz)?;
    write_artifact(
        out,
        "build-context.digest",
        format!("{}\n", inputs.context.digest).as_bytes(),
    )?;
    if let Some(spec) = &inputs.irsa {
        let region = config.s3.region.as_deref().unwrap_or("us-east-1");
        let partition = Partition::from_region(region).context("key s3.region")?;
        let issuer = OidcIssuer::parse(&format!(
            "oidc.eks.{region}.amazonaws.com/id/CLUSTER_OIDC_ID"
        ))?;
        let policy = spec.permission_policy(partition).to_pretty_json();
        let trust = spec
            .trust_policy(partition, "ACCOUNT_ID", &issuer)
            .to_pretty_json();
        write_artifact(out, "iam-policy.json", format!("{policy}\n").as_bytes())?;
        write_artifact(out, "trust-policy.json", format!("{trust}\n").as_bytes())?;
    }
    let yaml = flink_eks_manifest::to_yaml(&inputs.deployment()?)?;
    write_artifact(out, "flinkdeployment.yaml", yaml.as_bytes())
}

/// The plan of a real run: each crate reads what exists, concurrently, and writes nothing.
pub(crate) async fn live_plan(remote: &Remote, inputs: &Inputs, skip: &[Step]) -> Result<Plan> {
    let skipped = |step: Step| skip.contains(&step);
    let image = async {
        if skipped(Step::Image) {
            return Ok(vec![Row::new(
                Step::Image,
                &inputs.image_ref,
                Action::Skipped,
                "",
            )]);
        }
        let credentials = crate::clients::registry_credentials(&inputs.image, &remote.aws).await?;
        let plan = check_registry(&inputs.image, &inputs.context, &credentials)
            .await
            .context("image: cannot ask the registry")?;
        let (action, detail) = match plan.registry {
            RegistryState::UpToDate => {
                (Action::NoChange, "the registry holds this build".to_owned())
            }
            RegistryState::Absent => (Action::Create, "build and push".to_owned()),
            RegistryState::OtherContent { .. } => {
                (Action::Update, "the tag holds another build".to_owned())
            }
        };
        Ok::<_, anyhow::Error>(vec![Row::new(Step::Image, plan.image, action, detail)])
    };
    let irsa = async {
        let Some(spec) = &inputs.irsa else {
            return Ok(vec![Row::new(
                Step::Irsa,
                "none",
                Action::Skipped,
                "access keys from a Secret: no IAM role",
            )]);
        };
        if skipped(Step::Irsa) {
            return Ok(vec![Row::new(
                Step::Irsa,
                format!("role {}", spec.role_name),
                Action::Skipped,
                "",
            )]);
        }
        let plan = remote
            .irsa()
            .plan(spec)
            .await
            .context("irsa: cannot read the IAM state")?;
        Ok::<_, anyhow::Error>(
            plan.rows
                .into_iter()
                .map(|r| {
                    Row::new(
                        Step::Irsa,
                        format!("{} {}", r.kind, r.name),
                        r.action.into(),
                        r.detail,
                    )
                })
                .collect(),
        )
    };
    let upload = async {
        if skipped(Step::Upload) {
            return Ok(upload_row(inputs, Action::Skipped));
        }
        let action = remote
            .uploader()
            .plan(&inputs.script.location, &inputs.script.bytes)
            .await
            .context("upload: cannot read the script's object")?;
        Ok::<_, anyhow::Error>(upload_row(inputs, action.into()))
    };
    let submit = async {
        if skipped(Step::Submit) {
            return Ok(submit_row(inputs, Action::Skipped));
        }
        let action = remote
            .submitter()
            .plan_apply(&inputs.deployment()?)
            .await
            .context("submit: cannot read the FlinkDeployment")?;
        Ok::<_, anyhow::Error>(submit_row(inputs, action.into()))
    };
    let (image, irsa, upload, submit) = tokio::join!(image, irsa, upload, submit);
    let mut rows = image.map_err(classify)?;
    rows.extend(irsa.map_err(classify)?);
    rows.push(upload.map_err(classify)?);
    rows.push(submit.map_err(classify)?);
    Ok(Plan::new(
        format!("{}/{}", inputs.namespace, inputs.name),
        false,
        rows,
    ))
}

/// Carries out the plan: the independent steps together, then apply and watch.
async fn execute(remote: &Remote, inputs: &Inputs, plan: &Plan, report: &Reporter) -> Result<()> {
    let image = timed(report, Step::Image, plan.step_writes(Step::Image), async {
        let outcome = crate::steps::ensure_image(inputs, &remote.aws, report).await?;
        Ok(format!(
            "{} {}",
            outcome.image,
            if outcome.pushed {
                "built and pushed"
            } else {
                "already in the registry"
            }
        ))
    });
    let irsa = timed(report, Step::Irsa, plan.step_writes(Step::Irsa), async {
        let spec = inputs
            .irsa
            .as_ref()
            .ok_or_else(|| anyhow!("no IRSA spec"))?;
        let applied = remote
            .irsa()
            .apply(spec, &|p| crate::irsa_progress(report, p))
            .await?;
        Ok(format!("role {}", applied.role_arn()))
    });
    let upload = timed(
        report,
        Step::Upload,
        plan.step_writes(Step::Upload),
        async {
            let outcome = remote
                .uploader()
                .upload(&inputs.script.location, &inputs.script.bytes)
                .await?;
            Ok(format!("{} ({})", outcome.location, outcome.action))
        },
    );
    let (image, irsa, upload) = tokio::join!(image, irsa, upload);
    // Every branch has finished (none was cut off mid-call); report the first failure.
    for (step, result) in [
        (Step::Image, image),
        (Step::Irsa, irsa),
        (Step::Upload, upload),
    ] {
        result
            .map_err(classify)
            .with_context(|| step_failed(step))?;
    }

    let deployment = inputs.deployment().context(Failure::BadInput)?;
    report.step(Step::Manifest, "rendered", None);
    if plan
        .rows
        .iter()
        .any(|r| r.step == Step::Submit && r.action == Action::Skipped)
    {
        return Ok(());
    }
    crate::cluster::submit(remote, &deployment, inputs, report)
        .await
        .with_context(|| step_failed(Step::Submit))
}

fn step_failed(step: Step) -> String {
    let hint = match step {
        Step::Image => {
            "fix the build or the registry credentials, then run `cargo xtask deploy` again"
        }
        Step::Irsa => {
            "check the AWS credentials and permissions, then run `cargo xtask deploy` again (it repairs partial state)"
        }
        Step::Upload => {
            "check the bucket and the AWS credentials, then run `cargo xtask deploy` again"
        }
        Step::Manifest => "fix the configuration",
        Step::Submit => {
            "see the operator's error and the log above; `cargo xtask status` and `cargo xtask logs` show more"
        }
    };
    format!("step {step} failed ({hint})")
}

/// Runs a step when the plan has a write for it, printing one line with its elapsed time.
async fn timed(
    report: &Reporter,
    step: Step,
    writes: bool,
    work: impl Future<Output = Result<String>>,
) -> Result<()> {
    if !writes {
        return Ok(());
    }
    let started = Instant::now();
    report.step(step, "started", None);
    let summary = work.await?;
    report.step(step, &summary, Some(started.elapsed()));
    Ok(())
}

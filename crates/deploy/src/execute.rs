//! Planning and carrying out a deploy.
//!
//! [`plan`] asks every service what exists, all at once, and gathers each crate's typed plan;
//! [`execute`] then runs the steps wave by wave along [`crate::graph::GRAPH`], handing each
//! crate back the plan it made: no step reads again or decides again, and a step whose
//! operations are all "no change" sends nothing.

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};
use flink_eks_image_builder::ImageBuilder;
use flink_eks_irsa::documents::Partition;
use flink_eks_plan::{Action, FailureClass, Operation, Progress};
use flink_eks_rbac::{CallerReview, Write};
use flink_eks_submit::operator::FLINK_API_GROUP;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, ListParams};

use crate::clients::Remote;
use crate::error::{Failure, classify};
use crate::event::Event;
use crate::graph::{self, Step};
use crate::inputs::{Inputs, write_artifact};
use crate::plan::{Blocker, DeployPlan, StepPlan, Work};

/// The operations each step would carry out, named without reading anything.
fn unread_operations(inputs: &Inputs, step: Step) -> Vec<Operation> {
    match step {
        Step::Image => vec![
            Operation::new(
                flink_eks_image_builder::OPERATION_KIND,
                &inputs.image_ref,
                Action::Create,
            )
            .detail(format!(
                "context {} for {}",
                inputs.context.digest, inputs.context.platform
            )),
        ],
        Step::Rbac => flink_eks_rbac::resources(&inputs.rbac),
        Step::Irsa => inputs
            .irsa
            .as_ref()
            .map(|spec| {
                flink_eks_irsa::resources(spec)
                    .into_iter()
                    .map(|(kind, name)| Operation::new(kind, name, Action::Create))
                    .collect()
            })
            .unwrap_or_default(),
        Step::Upload => vec![
            Operation::new(
                flink_eks_submit::OBJECT_KIND,
                inputs.script.location.to_string(),
                Action::Create,
            )
            .detail(format!("sha256 {}", &inputs.script.sha256[..12])),
        ],
        Step::Manifest => vec![Operation::new(
            crate::plan::MANIFEST_KIND,
            deployment_name(inputs),
            Action::Create,
        )],
        Step::Submit => vec![Operation::new(
            flink_eks_submit::DEPLOYMENT_KIND,
            deployment_name(inputs),
            Action::Create,
        )],
    }
}

fn deployment_name(inputs: &Inputs) -> String {
    format!("{}/{}", inputs.namespace, inputs.name)
}

/// The plan of a dry run: every step's resources, none read; the manifest rendered.
pub fn dry_plan(inputs: &Inputs, skip: &[Step]) -> Result<DeployPlan> {
    let steps = Step::ALL
        .into_iter()
        .map(|step| {
            let work = if skip.contains(&step) {
                Work::Skipped(unread_operations(inputs, step))
            } else if step == Step::Irsa && inputs.irsa.is_none() {
                Work::NoIam
            } else if step == Step::Manifest {
                Work::Manifest(Box::new(inputs.deployment()?))
            } else {
                Work::NotRead(unread_operations(inputs, step))
            };
            Ok(StepPlan::new(step, work))
        })
        .collect::<Result<_>>()?;
    Ok(DeployPlan {
        deployment: deployment_name(inputs),
        live: false,
        steps,
    })
}

/// The image step's plan: the registry's answer, and, at the same time, whether the Docker
/// daemon answers, which matters only when the registry lacks the image (a plan that builds
/// nothing needs no daemon, and does not wait for one). Refused credentials are a blocker of
/// class auth.
async fn image_plan(remote: &Remote, inputs: &Inputs) -> Result<StepPlan> {
    use flink_eks_plan::{Classify as _, FailureClass};
    use futures::future::{Either, select};

    let registry = async {
        let credentials = remote.registry_credentials(&inputs.image).await?;
        let plan = flink_eks_image_builder::plan(&inputs.image, &inputs.context, &credentials)
            .await
            .context("image: cannot ask the registry")?;
        Ok::<_, anyhow::Error>((plan, credentials))
    };
    let daemon = async { ImageBuilder::connect().await?.preflight().await };
    let (registry, daemon) = match select(Box::pin(registry), Box::pin(daemon)).await {
        Either::Left((registry, daemon)) => {
            let builds = matches!(&registry, Ok((plan, _)) if plan.operation().action.writes());
            (registry, if builds { Some(daemon.await) } else { None })
        }
        Either::Right((daemon, registry)) => (registry.await, Some(daemon)),
    };
    let (plan, credentials) = match registry {
        Ok(found) => found,
        Err(err) => {
            let auth = err.chain().any(|e| {
                e.downcast_ref::<flink_eks_image_builder::Error>()
                    .is_some_and(|e| e.class() == FailureClass::Auth)
            });
            if !auth {
                return Err(err);
            }
            let registry = inputs
                .image
                .parsed_repository()
                .map(|r| r.registry().to_owned())
                .unwrap_or_else(|_| inputs.image_ref.clone());
            let blocker = Blocker {
                kind: "registry",
                fix: format!(
                    "log in (docker login {registry}), or set FLINK_EKS_REGISTRY_USERNAME and \
                     FLINK_EKS_REGISTRY_PASSWORD"
                ),
                name: registry,
                reason: format!("{err:#}"),
                class: FailureClass::Auth,
            };
            let work = Work::NotRead(unread_operations(inputs, Step::Image));
            return Ok(StepPlan::new(Step::Image, work).blocked_by(blocker));
        }
    };
    let step = StepPlan::new(
        Step::Image,
        Work::Image {
            plan: Box::new(plan),
            credentials,
        },
    );
    Ok(match daemon {
        Some(Err(err)) => step.blocked_by(daemon_blocker(&err)),
        _ => step,
    })
}

/// The blocker of a plan that builds while no usable Docker daemon answers.
fn daemon_blocker(err: &flink_eks_image_builder::Error) -> Blocker {
    match err {
        flink_eks_image_builder::Error::DockerUnavailable {
            address,
            reason,
            hint,
        } => Blocker::bad_input(
            "docker-daemon",
            address.clone(),
            format!(
                "the registry lacks the image, and no Docker daemon at {address} can build it: {reason}"
            ),
            hint.to_string(),
        ),
        other => Blocker::bad_input(
            "docker-daemon",
            "DOCKER_HOST",
            other.to_string(),
            "start the Docker daemon, or set DOCKER_HOST to one that answers",
        ),
    }
}

/// Reads what exists, every service at once, and returns each crate's plan, with the
/// preconditions found unmet as blockers. Writes nothing.
pub async fn plan(remote: &Remote, inputs: &Inputs, skip: &[Step]) -> Result<DeployPlan> {
    let skipped = |step: Step| skip.contains(&step);
    let image = async {
        if skipped(Step::Image) {
            return Ok(StepPlan::new(
                Step::Image,
                Work::Skipped(unread_operations(inputs, Step::Image)),
            ));
        }
        image_plan(remote, inputs).await
    };
    let rbac = async {
        if skipped(Step::Rbac) {
            return Ok(None);
        }
        let reading = remote
            .rbac()?
            .read(&inputs.rbac)
            .await
            .context("rbac: cannot read the namespace's RBAC")?;
        Ok::<_, anyhow::Error>(Some(reading))
    };
    let irsa = async {
        let Some(spec) = &inputs.irsa else {
            return Ok(Work::NoIam);
        };
        if skipped(Step::Irsa) {
            return Ok(Work::Skipped(unread_operations(inputs, Step::Irsa)));
        }
        let plan = remote
            .irsa_remembering(&spec.cluster)?
            .plan(spec)
            .await
            .context("irsa: cannot read the IAM state")?;
        remote.remember_cluster(&plan);
        Ok::<_, anyhow::Error>(Work::Irsa(Box::new(plan)))
    };
    let upload = async {
        if skipped(Step::Upload) {
            return Ok(Work::Skipped(unread_operations(inputs, Step::Upload)));
        }
        let plan = remote
            .uploader()
            .plan(&inputs.script.location, &inputs.script.bytes)
            .await
            .context("upload: cannot read the script's object")?;
        Ok::<_, anyhow::Error>(Work::Upload(Box::new(plan)))
    };
    let submit = async {
        if skipped(Step::Submit) {
            return Ok(Work::Skipped(unread_operations(inputs, Step::Submit)));
        }
        let deployment = inputs.deployment()?;
        let plan = remote
            .submitter()?
            .plan(&deployment)
            .await
            .context("submit: cannot read the FlinkDeployment")?;
        Ok::<_, anyhow::Error>(Work::Submit(Box::new(plan)))
    };
    let manifest = if skipped(Step::Manifest) {
        Work::Skipped(unread_operations(inputs, Step::Manifest))
    } else {
        Work::Manifest(Box::new(inputs.deployment().context(Failure::BadInput)?))
    };
    let (image, rbac, irsa, upload, submit) = tokio::join!(image, rbac, irsa, upload, submit);
    let (rbac, irsa, submit) = (
        rbac.map_err(classify)?,
        irsa.map_err(classify)?,
        submit.map_err(classify)?,
    );
    let (rbac, submit, nodes, caller) = checks_of_a_change(remote, inputs, rbac, &irsa, submit)
        .await
        .map_err(classify)?;
    let refused = match &caller {
        Some(review) => refused_writes(review, &rbac, &irsa, &submit),
        None => Vec::new(),
    };
    let (irsa, submit) = namespace_created_first(&rbac, irsa, submit);
    let mut works = vec![image.map_err(classify)?];
    for (step, work) in [
        (Step::Rbac, Ok(rbac)),
        (Step::Irsa, Ok(irsa)),
        (Step::Upload, upload),
        (Step::Submit, Ok(submit)),
    ] {
        let mut step_plan = StepPlan::new(step, work.map_err(classify)?);
        if let (Step::Submit, Some(nodes)) = (step, &nodes) {
            step_plan = nodes_row(step_plan, inputs, nodes);
        }
        for (_, blocker) in refused.iter().filter(|(s, _)| *s == step) {
            step_plan = step_plan.blocked_by(blocker.clone());
        }
        works.push(step_plan);
    }
    works.push(StepPlan::new(Step::Manifest, manifest));
    let steps = Step::ALL
        .into_iter()
        .filter_map(|step| {
            let i = works.iter().position(|s| s.step == step)?;
            Some(works.swap_remove(i))
        })
        .collect();
    Ok(DeployPlan {
        deployment: deployment_name(inputs),
        live: true,
        steps,
    })
}

/// The second wave, of what only a change needs: the operator's facts (is its CRD served,
/// does it watch the namespace?), the SubjectAccessReviews of the job's service account, and
/// the nodes the pods can run on. They are read when the FlinkDeployment will be written or
/// waited for. A job that already runs unchanged and stable at its generation needs none of
/// them: the operator reconciled it, its account had every grant the JobManager used, and its
/// pods found nodes (the rows say so). A no-change redeploy thus stays one wave deep.
///
/// Whether the namespace exists, which rbac's plan needs, comes from submit's read (rbac
/// reads its Role and RoleBinding only); rbac GETs it here only when submit did not read.
///
/// In the same wave, when any step will write to the cluster: what the deploying identity
/// may write ([`flink_eks_rbac::Rbac::review_caller`]), asked of every write the steps may
/// make (rbac's as if the job's account held no grant, since its own reviews are asked at
/// the same time), and judged once the plans are known ([`refused_writes`]).
async fn checks_of_a_change(
    remote: &Remote,
    inputs: &Inputs,
    rbac: Option<flink_eks_rbac::Reading>,
    irsa: &Work,
    submit: Work,
) -> Result<(Work, Work, Option<Result<Vec<Node>>>, Option<CallerReview>)> {
    let mut may_write: Vec<Write> = steps_writes(irsa, &submit)
        .into_iter()
        .map(|(_, write)| write)
        .collect();
    if let Some(reading) = &rbac {
        may_write.extend(reading.possible_cluster_writes(namespace_shown(&submit)));
    }
    let caller = async {
        if may_write.is_empty() {
            return Ok::<_, anyhow::Error>(None);
        }
        let review = remote
            .rbac()?
            .review_caller(&may_write, &inputs.rbac)
            .await
            .context("cannot ask what the deploying identity may write")?;
        if let Some(why) = review.unknown() {
            tracing::warn!("{why}: the plan cannot say whether the cluster will accept its writes");
        }
        Ok(Some(review))
    };
    let running = match &submit {
        Work::Submit(plan) if plan.already_running() => Some(format!(
            "FlinkDeployment {}/{}",
            plan.namespace(),
            plan.name()
        )),
        _ => None,
    };
    let operator = async {
        match (&submit, &running) {
            (Work::Submit(_), None) => Ok::<_, anyhow::Error>(Some(
                remote.submitter()?.check_operator(&inputs.namespace).await,
            )),
            _ => Ok(None),
        }
    };
    let access = async {
        let Some(reading) = rbac else {
            return Ok::<_, anyhow::Error>((None, None));
        };
        let reading = match (reading.needs_namespace(), namespace_shown(&submit)) {
            (true, Some(exists)) => reading.with_namespace(exists),
            (true, None) => remote
                .rbac()?
                .read_namespace(reading)
                .await
                .context("rbac: cannot read the namespace")?,
            (false, _) => reading,
        };
        let access = match &running {
            None if reading.needs_review() => Some(
                remote
                    .rbac()?
                    .review(&inputs.rbac)
                    .await
                    .context("rbac: cannot ask what the job's service account may do")?,
            ),
            Some(job) if reading.needs_review() => Some(flink_eks_rbac::Access::InUse(job.clone())),
            _ => None,
        };
        Ok((Some(reading), access))
    };
    let nodes = async {
        match (&submit, &running, &remote.kube) {
            (Work::Submit(_), None, Some(kube)) => {
                let api: Api<Node> = Api::all(kube.clone());
                let listed = api.list(&ListParams::default()).await;
                Some(listed.map(|list| list.items).map_err(anyhow::Error::from))
            }
            _ => None,
        }
    };
    let (operator, access, nodes, caller) = tokio::join!(operator, access, nodes, caller);
    let (operator, (rbac, access), caller) = (operator?, access?, caller?);
    let rbac = match rbac {
        Some(reading) => Work::Rbac(Box::new(reading.plan(access))),
        None => Work::Skipped(unread_operations(inputs, Step::Rbac)),
    };
    let submit = match (submit, operator) {
        (Work::Submit(plan), Some(check)) => Work::Submit(Box::new(plan.with_operator(check))),
        (submit, _) => submit,
    };
    Ok((rbac, submit, nodes, caller))
}

/// The cluster writes of irsa's and submit's plans, each with its step, as the API server
/// authorizes them: the service account's create (a POST) or annotation (a server-side
/// apply: `patch`), the FlinkDeployment's server-side apply (`patch`, and `create` too when
/// it does not exist yet).
fn steps_writes(irsa: &Work, submit: &Work) -> Vec<(Step, Write)> {
    let mut writes = Vec::new();
    if let Work::Irsa(plan) = irsa {
        let spec = &plan.spec;
        for op in &plan.ops {
            if let flink_eks_irsa::Op::AnnotateServiceAccount {
                resource_version, ..
            } = op
            {
                let write = match resource_version {
                    None => Write::new("create", "", "serviceaccounts"),
                    Some(_) => Write::new("patch", "", "serviceaccounts")
                        .named(spec.service_account.clone()),
                };
                writes.push((Step::Irsa, write.in_namespace(spec.namespace.clone())));
            }
        }
    }
    if let Work::Submit(plan) = submit {
        let (group, resource) = (FLINK_API_GROUP, "flinkdeployments");
        match plan.action() {
            Action::Create => writes.extend(
                Write::apply_creating(group, resource, plan.namespace(), plan.name())
                    .map(|w| (Step::Submit, w)),
            ),
            Action::Update => writes.push((
                Step::Submit,
                Write::new("patch", group, resource)
                    .in_namespace(plan.namespace())
                    .named(plan.name()),
            )),
            _ => {}
        }
    }
    writes
}

/// The planned cluster writes the deploying identity may not make, as blockers of the steps
/// that would make them (class authentication: exit 3).
fn refused_writes(
    review: &CallerReview,
    rbac: &Work,
    irsa: &Work,
    submit: &Work,
) -> Vec<(Step, Blocker)> {
    let mut planned = steps_writes(irsa, submit);
    if let Work::Rbac(plan) = rbac {
        planned.extend(plan.cluster_writes().into_iter().map(|w| (Step::Rbac, w)));
    }
    let refusals: Vec<(Step, flink_eks_rbac::Refusal)> = planned
        .into_iter()
        .flat_map(|(step, write)| {
            review
                .refusals(std::slice::from_ref(&write))
                .into_iter()
                .map(move |refusal| (step, refusal))
        })
        .collect();
    // A server-side apply that creates is refused as a `patch` and as a `create`: one row,
    // the create's, says it (its fix asks for both).
    let creation_refused = |w: &Write| {
        refusals.iter().any(|(_, r)| {
            r.write.verb == "create"
                && (r.write.group, r.write.resource, &r.write.namespace)
                    == (w.group, w.resource, &w.namespace)
        })
    };
    refusals
        .iter()
        .filter(|(_, r)| !(r.write.verb == "patch" && creation_refused(&r.write)))
        .map(|(step, refusal)| {
            let name = format!("{} {}", refusal.write.verb, refusal.write.resource);
            let blocker = Blocker::bad_input("permission", name, &refusal.reason, &refusal.fix);
            (
                *step,
                Blocker {
                    class: FailureClass::Auth,
                    ..blocker
                },
            )
        })
        .collect()
}

/// Whether submit's read settled that the namespace exists: it found the FlinkDeployment
/// there, or, not finding it, GET the namespace (a 403 taken as existing, as rbac takes it).
/// `None` when submit did not read (skipped): rbac then reads the namespace itself.
fn namespace_shown(submit: &Work) -> Option<bool> {
    match submit {
        Work::Submit(plan) => Some(!plan.namespace_missing()),
        _ => None,
    }
}

/// The row of the nodes the JobManager's pods can run on (their `nodeSelector` names the
/// image's platform): a warning, not a blocker, when none matches, since a cluster
/// autoscaler may add such nodes once the pods ask for them.
fn nodes_row(step_plan: StepPlan, inputs: &Inputs, nodes: &Result<Vec<Node>>) -> StepPlan {
    let selector = crate::doctor::node_selector(inputs);
    let name = selector
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    let detail = match nodes {
        Ok(nodes) => {
            let check = crate::doctor::nodes_check(&selector, nodes, &inputs.image.platform);
            match check.outcome {
                crate::doctor::Outcome::Fail { why, fix, .. } => {
                    format!(
                        "warning: {why}; the pods stay Pending unless an autoscaler adds one; fix: {fix}"
                    )
                }
                _ => check.detail,
            }
        }
        Err(err) => format!("not read ({err:#}); the pods' platform is not checked"),
    };
    step_plan.checked(NODES_KIND, name, detail)
}

/// The kind of the row of the nodes the pods can run on.
pub(crate) const NODES_KIND: &str = "nodes";

/// When rbac plans the namespace's creation, irsa (whose service account goes into it) and
/// submit (whose FlinkDeployment does) plan their creates into it rather than block on it:
/// rbac's apply runs first, along the graph.
fn namespace_created_first(rbac: &Work, irsa: Work, submit: Work) -> (Work, Work) {
    let Work::Rbac(plan) = rbac else {
        return (irsa, submit);
    };
    if !plan.creates_namespace() {
        return (irsa, submit);
    }
    let irsa = match irsa {
        Work::Irsa(plan) => Work::Irsa(Box::new(plan.with_namespace_created_first())),
        other => other,
    };
    let submit = match submit {
        Work::Submit(plan) => Work::Submit(Box::new(plan.with_namespace_created_first())),
        other => other,
    };
    (irsa, submit)
}

/// Carries out the plan, wave by wave along the step graph: each step hands its crate the
/// plan the crate made. A step with nothing to write sends nothing. A plan with an unmet
/// precondition is refused whole ([`DeployPlan::refusal`]): nothing is written.
pub async fn execute(
    remote: &Remote,
    inputs: &Inputs,
    plan: DeployPlan,
    progress: &dyn Progress<Event>,
) -> Result<()> {
    if let Some(refusal) = plan.refusal() {
        return Err(refusal);
    }
    let mut steps = plan.steps;
    for wave in graph::waves() {
        let runs = wave.iter().filter_map(|step| {
            let i = steps.iter().position(|s| s.step == *step)?;
            let step_plan = steps.swap_remove(i);
            Some(run_step(remote, inputs, step_plan, progress))
        });
        // Every step of the wave finishes (none is cut off mid-call); the first failure is
        // reported, and no later wave starts.
        for result in futures::future::join_all(runs).await {
            result?;
        }
    }
    Ok(())
}

async fn run_step(
    remote: &Remote,
    inputs: &Inputs,
    step_plan: StepPlan,
    progress: &dyn Progress<Event>,
) -> Result<()> {
    let step = step_plan.step;
    if !step_plan.writes() && !matches!(step_plan.work, Work::Submit(_)) {
        return Ok(());
    }
    let started = Instant::now();
    let result = async {
        match step_plan.work {
            Work::Image { plan, credentials } => {
                progress.event(&Event::StepStarted(step));
                let builder = ImageBuilder::connect().await?;
                let outcome = builder
                    .apply(
                        &plan,
                        &inputs.image,
                        &inputs.context,
                        &credentials,
                        &|e: &flink_eks_image_builder::ProgressEvent| {
                            progress.event(&Event::Image(e.clone()))
                        },
                    )
                    .await?;
                Ok::<_, anyhow::Error>(format!("{} built and pushed", outcome.image))
            }
            Work::Irsa(plan) => {
                progress.event(&Event::StepStarted(step));
                let applied = remote
                    .irsa()?
                    .apply(&plan, &|e: &flink_eks_irsa::Event| {
                        progress.event(&Event::Irsa(e.clone()))
                    })
                    .await?;
                Ok(format!("role {}", applied.role_arn()))
            }
            Work::Rbac(plan) => {
                progress.event(&Event::StepStarted(step));
                let done = remote
                    .rbac()?
                    .apply(&plan, &|e: &flink_eks_rbac::Event| {
                        progress.event(&rbac_event(e))
                    })
                    .await?;
                Ok(done
                    .iter()
                    .map(|op| format!("{} {} {}", op.action, op.kind, op.name))
                    .collect::<Vec<_>>()
                    .join(", "))
            }
            Work::Upload(plan) => {
                progress.event(&Event::StepStarted(step));
                let outcome = remote.uploader().apply(&plan, &inputs.script.bytes).await?;
                Ok(format!("{} ({})", outcome.location, outcome.action))
            }
            Work::Submit(plan) => crate::commands::submit(remote, inputs, &plan, progress).await,
            Work::Manifest(_) | Work::Skipped(_) | Work::NotRead(_) | Work::NoIam => {
                Ok(String::new())
            }
        }
    }
    .await;
    let summary = result
        .map_err(classify)
        .with_context(|| step_failed(step))?;
    if !summary.is_empty() {
        progress.event(&Event::StepFinished {
            step,
            summary,
            elapsed: started.elapsed(),
        });
    }
    Ok(())
}

/// rbac's events as the pipeline's: a write as a line of the step, a warning as a warning.
pub(crate) fn rbac_event(event: &flink_eks_rbac::Event) -> Event {
    match event {
        flink_eks_rbac::Event::Warning(text) => Event::Warning(text.clone()),
        other => Event::Note {
            step: Step::Rbac,
            text: other.to_string(),
        },
    }
}

fn step_failed(step: Step) -> String {
    let hint = match step {
        Step::Image => {
            "fix the build or the registry credentials, then run `cargo xtask deploy` again"
        }
        Step::Rbac => {
            "check that the deploying identity may create roles and rolebindings in the namespace, then run `cargo xtask deploy` again"
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

/// Writes what a deploy would send: the Dockerfile, the build context and its digest, the IAM
/// documents (with placeholders for the account and the cluster's issuer, in `region`, the
/// cluster's: `[irsa] region`, else `us-east-1`), the job's Role and RoleBinding (which the
/// rbac step creates unless the account is already allowed), the FlinkDeployment.
pub fn write_artifacts(inputs: &Inputs, region: Option<&str>, out: &Path) -> Result<()> {
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
        let region = region.unwrap_or("us-east-1");
        let partition = Partition::from_region(region).context("key irsa.region")?;
        let issuer = format!("https://oidc.eks.{region}.amazonaws.com/id/CLUSTER_OIDC_ID");
        let policy = flink_eks_irsa::render_permission_policy(spec, partition)?;
        let trust = flink_eks_irsa::render_trust_policy(spec, partition, "ACCOUNT_ID", &issuer)?;
        write_artifact(out, "iam-policy.json", format!("{policy}\n").as_bytes())?;
        write_artifact(out, "trust-policy.json", format!("{trust}\n").as_bytes())?;
    }
    for (name, object) in [
        (
            "role.json",
            serde_json::to_string_pretty(&inputs.rbac.role())?,
        ),
        (
            "rolebinding.json",
            serde_json::to_string_pretty(&inputs.rbac.role_binding())?,
        ),
    ] {
        write_artifact(out, name, format!("{object}\n").as_bytes())?;
    }
    let yaml = flink_eks_manifest::to_yaml(&inputs.deployment()?)?;
    write_artifact(out, "flinkdeployment.yaml", yaml.as_bytes())
}

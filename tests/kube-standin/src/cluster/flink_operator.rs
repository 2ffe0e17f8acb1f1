//! The Flink Kubernetes Operator's part: for each new generation of a FlinkDeployment it
//! walks the status through the operator's sequence (values from the CRD's README, see
//! `crds/README.md`), one step per transition delay, deploying the cluster on the way, or
//! stops at the failure a fault scripts, with the operator's `status.error` and Events; on
//! deletion it removes the cluster and then its finalizer.
//!
//! | step | reconciliationStatus | lifecycleState | jobManagerDeploymentStatus | jobStatus.state |
//! |------|----------------------|----------------|----------------------------|-----------------|
//! | A    | UPGRADING            | CREATED / UPGRADING | DEPLOYING             | RECONCILING     |
//! | B    | DEPLOYED (+ lastReconciledSpec, observedGeneration) | DEPLOYED | DEPLOYED_NOT_READY | CREATED |
//! | C    | DEPLOYED             | DEPLOYED       | READY                      | RUNNING         |
//! | D    | DEPLOYED (+ lastStableSpec) | STABLE  | READY                      | RUNNING         |

use std::time::Duration;

use serde_json::{Value, json};

use super::controller_manager::{create_jobmanager_pod, set_deployment_status};
use super::flink_cluster::{
    ClusterSpec, create_taskmanager_pod, deploy_cluster_objects, flink_log_line,
    jobmanager_startup_log, remove_old_pods,
};
use super::job_access;
use super::kubelet::{PodState, fetch_log, find_container, set_pod_state};
use super::scheduler;
use super::snapshots::{self, Next, Restore, restore_log};
use super::{MAIN_CONTAINER, Stop, delete_quietly, emit_event, pause, put};
use crate::Shared;
use crate::apply::Part;
use crate::faults::Fault;
use crate::logs::ContainerRun;
use crate::meta;
use crate::patch::merge_patch;
use crate::resources::{DEPLOYMENTS, FLINK_DEPLOYMENTS, PODS};

/// The operator's field manager.
pub(super) const MANAGER: &str = "flink-kubernetes-operator";

/// The finalizer the operator puts on every FlinkDeployment.
pub(crate) const FINALIZER: &str = "flinkdeployments.flink.apache.org/finalizer";

/// The FlinkDeployment generation a task works on.
#[derive(Clone, Debug)]
pub(super) struct Target {
    pub(super) namespace: String,
    pub(super) name: String,
    pub(super) uid: String,
    pub(super) generation: i64,
}

pub(super) fn log_outcome(target: &Target, outcome: Result<(), Stop>) {
    match outcome {
        Ok(()) | Err(Stop::Superseded) => {}
        // The deployment went away under the operator (deleted before it got its finalizer).
        Err(Stop::Api(e)) if e.code == 404 => {}
        Err(Stop::Api(e)) => tracing::warn!(
            namespace = %target.namespace, name = %target.name, code = e.code,
            "operator stopped: {}", e.message
        ),
    }
}

pub(super) fn now_millis() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

/// Writes `patch` into the FlinkDeployment's status if it is still at the target generation.
pub(super) fn write_status(shared: &Shared, target: &Target, patch: Value) -> Result<(), Stop> {
    let mut superseded = false;
    // Before the commit, which wakes the watches: no watcher sees the change earlier.
    let at = jiff::Timestamp::now().as_microsecond();
    let outcome = shared.api.upsert(
        &FLINK_DEPLOYMENTS,
        &target.namespace,
        &target.name,
        Part::Status,
        MANAGER,
        |live| {
            let current = live.filter(|l| {
                meta::uid(l) == target.uid
                    && meta::generation(l) == target.generation
                    && !meta::is_deleting(l)
            });
            let Some(live) = current else {
                superseded = true;
                return None;
            };
            let mut new = live.clone();
            merge_patch(&mut new, &json!({"status": patch}));
            Some(new)
        },
    )?;
    if let Some(outcome) = outcome.filter(|o| o.changed) {
        shared.faults.record_status_change(&outcome.object, at);
    }
    if superseded {
        Err(Stop::Superseded)
    } else {
        Ok(())
    }
}

/// Reconciles one generation: the whole status sequence, or the scripted failure.
pub(super) async fn reconcile(shared: &Shared, target: &Target) -> Result<(), Stop> {
    let mut run = Reconcile::start(shared, target)?;
    match snapshots::before_deploy(shared, target, &run.fd, run.delay).await? {
        Next::Deploy { restore } => run.restore = restore,
        Next::Done => return Ok(()),
    }
    let mut failing = run.transient_errors();
    let Some(deployed) = run.deploy().await? else {
        return Ok(());
    };
    run.await_scheduling(&deployed.jm_pod).await?;
    run.fail_reconcile(&mut failing)?;
    pause(run.delay).await;
    let Some(job_id) = run.start_jobmanager(&deployed.jm_pod).await? else {
        return Ok(());
    };
    run.fail_reconcile(&mut failing)?;
    pause(run.delay).await;
    run.run_job(&deployed, &job_id)?;
    run.fail_reconcile(&mut failing)?;
    pause(run.delay).await;
    while failing.as_ref().is_some_and(|(_, left)| *left > 0) {
        run.fail_reconcile(&mut failing)?;
        pause(run.delay).await;
    }
    run.settle(&deployed.jm_pod, &job_id)
}

/// What every step of one generation's reconcile reads. A step answers `Ok(None)` when it
/// ended the reconcile with a failure reported in the status.
struct Reconcile<'a> {
    shared: &'a Shared,
    target: &'a Target,
    /// The FlinkDeployment as the reconcile found it.
    fd: Value,
    cluster: ClusterSpec,
    /// The delay between steps.
    delay: Duration,
    /// No spec was reconciled before: `Submit` and `CREATED` rather than `SpecChanged` and
    /// `UPGRADING`.
    first_deployment: bool,
    /// The savepoint the job starts from.
    restore: Option<Restore>,
}

/// The JobManager's Deployment and pod, once step A made them.
struct Deployed {
    deployment: Value,
    jm_pod: Value,
}

impl<'a> Reconcile<'a> {
    /// Reads the generation to reconcile, unless a newer one or a deletion took over.
    fn start(shared: &'a Shared, target: &'a Target) -> Result<Reconcile<'a>, Stop> {
        let fd = shared
            .api
            .get(&FLINK_DEPLOYMENTS, &target.namespace, &target.name)?;
        if meta::uid(&fd) != target.uid || meta::generation(&fd) != target.generation {
            return Err(Stop::Superseded);
        }
        let cluster = ClusterSpec::new(shared, &fd, target);
        let first_deployment = meta::get_path(
            &fd,
            &["status", "reconciliationStatus", "lastReconciledSpec"],
        )
        .is_none();
        Ok(Reconcile {
            shared,
            target,
            delay: cluster.delay(shared),
            fd: (*fd).clone(),
            cluster,
            first_deployment,
            restore: None,
        })
    }

    fn names(&self) -> (&'a str, &'a str) {
        (self.target.namespace.as_str(), self.target.name.as_str())
    }

    /// Step A: the operator sees the new spec and starts deploying it: finalizer, status
    /// `UPGRADING`/`DEPLOYING`, the cluster's objects, the JobManager pod (or `FailedCreate`).
    async fn deploy(&self) -> Result<Option<Deployed>, Stop> {
        let (shared, target, fd) = (self.shared, self.target, &self.fd);
        let (ns, name) = self.names();
        if !meta::finalizers(fd).iter().any(|f| f == FINALIZER) {
            shared
                .api
                .upsert(&FLINK_DEPLOYMENTS, ns, name, Part::Main, MANAGER, |live| {
                    let mut new = live
                        .filter(|l| meta::uid(l) == target.uid && !meta::is_deleting(l))?
                        .clone();
                    let mut finalizers = meta::finalizers(&new);
                    finalizers.push(FINALIZER.to_owned());
                    meta::metadata_mut(&mut new).insert("finalizers".into(), json!(finalizers));
                    Some(new)
                })?;
        }
        let (reason, message) = if self.first_deployment {
            ("Submit", "Starting deployment")
        } else {
            (
                "SpecChanged",
                "Detected spec change, starting reconciliation.",
            )
        };
        emit_event(shared, fd, "Normal", reason, message);
        write_status(
            shared,
            target,
            json!({
                "lifecycleState": if self.first_deployment { "CREATED" } else { "UPGRADING" },
                "reconciliationStatus": {"state": "UPGRADING", "reconciliationTimestamp": now_millis()},
                "jobManagerDeploymentStatus": "DEPLOYING",
                "jobStatus": {"state": "RECONCILING", "jobName": name, "jobId": null, "startTime": null, "updateTime": now_millis().to_string()},
                "error": null,
            }),
        )?;
        remove_old_pods(shared, ns, name, &self.cluster.template_hash);
        deploy_cluster_objects(shared, fd, &self.cluster)?;
        let deployment = (*shared.api.get(&DEPLOYMENTS, ns, name)?).clone();
        let Some(jm_pod) = create_jobmanager_pod(shared, fd, &deployment, &self.cluster)? else {
            // The pod could not be created (its service account is missing): FailedCreate.
            pause(self.delay).await;
            let account = &self.cluster.service_account;
            self.fail_deployment(
                "FailedCreate",
                &format!(
                    "pods \"{name}-{}-\" is forbidden: error looking up service account {ns}/{account}: serviceaccount \"{account}\" not found",
                    self.cluster.template_hash
                ),
                self.first_deployment,
            )?;
            return Ok(None);
        };
        Ok(Some(Deployed { deployment, jm_pod }))
    }

    /// Step B: the init containers ran (or one failed); the JobManager container starts (or
    /// its image cannot be pulled); status `DEPLOYED_NOT_READY`, job `CREATED`. Answers the
    /// job's id.
    async fn start_jobmanager(&self, jm_pod: &Value) -> Result<Option<String>, Stop> {
        let shared = self.shared;
        let (ns, name) = self.names();
        if let Some(Fault::InitContainerFailure { message }) = self
            .cluster
            .fault(|f| matches!(f, Fault::InitContainerFailure { .. }))
        {
            self.fail_init_container(jm_pod, message).await?;
            return Ok(None);
        }
        for init in &meta::container_names(jm_pod, "initContainers") {
            let init_spec = find_container(jm_pod, "initContainers", init);
            shared
                .logs
                .append(ns, meta::name(jm_pod), init, &fetch_log(init_spec));
            shared
                .logs
                .set_run(ns, meta::name(jm_pod), init, ContainerRun::Terminated);
        }
        if self
            .cluster
            .fault(|f| matches!(f, Fault::ImagePullFailure))
            .is_some()
        {
            self.fail_image_pull(jm_pod).await?;
            return Ok(None);
        }
        shared.logs.append(
            ns,
            meta::name(jm_pod),
            MAIN_CONTAINER,
            &jobmanager_startup_log(&self.cluster, name),
        );
        shared.logs.set_run(
            ns,
            meta::name(jm_pod),
            MAIN_CONTAINER,
            ContainerRun::Running,
        );
        self.await_job_access(jm_pod).await?;
        set_pod_state(shared, jm_pod, PodState::Running { ready: false })?;
        set_deployment_status(shared, ns, name, false)?;
        let job_id = uuid::Uuid::new_v4().simple().to_string();
        let mut status = self.deployed_status();
        merge_patch(
            &mut status,
            &json!({
                "jobManagerDeploymentStatus": "DEPLOYED_NOT_READY",
                "jobStatus": {"state": "CREATED", "jobName": name, "jobId": job_id, "updateTime": now_millis().to_string()},
            }),
        );
        write_status(shared, self.target, status)?;
        emit_event(
            shared,
            &self.fd,
            "Normal",
            "JobStatusChanged",
            "Job status changed from RECONCILING to CREATED",
        );
        Ok(Some(job_id))
    }

    /// The JobManager's calls as the job's service account (HA ConfigMaps, the TaskManager
    /// pods' watch and creation), through RBAC. While one is refused, the JobManager logs the
    /// refusal and exits, and the kubelet restarts it: the operator reports the deployment
    /// `DEPLOYING` (job `RECONCILING`), then, once the container waits in CrashLoopBackOff,
    /// `ERROR`; the resource stays `DEPLOYED`. The attempt after RBAC allows the calls goes on.
    async fn await_job_access(&self, jm_pod: &Value) -> Result<(), Stop> {
        let shared = self.shared;
        let (ns, name) = self.names();
        let ha = job_access::kubernetes_ha(&self.fd);
        let mut restarts = 0;
        while let Some(denied) =
            job_access::first_denied(&shared.api, ns, &self.cluster.service_account, ha)
        {
            let live = shared.api.get(&FLINK_DEPLOYMENTS, ns, name)?;
            if meta::uid(&live) != self.target.uid
                || meta::generation(&live) != self.target.generation
                || meta::is_deleting(&live)
            {
                return Err(Stop::Superseded);
            }
            shared.logs.append(
                ns,
                meta::name(jm_pod),
                MAIN_CONTAINER,
                &job_access::denied_log(&denied),
            );
            restarts += 1;
            let crashed = |backoff| PodState::Crashed {
                restarts,
                message: "Error",
                backoff,
            };
            set_pod_state(shared, jm_pod, crashed(true))?;
            if restarts == 1 {
                let mut status = self.deployed_status();
                merge_patch(
                    &mut status,
                    &json!({
                        "jobManagerDeploymentStatus": "DEPLOYING",
                        "jobStatus": {"state": "RECONCILING", "jobName": name, "updateTime": now_millis().to_string()},
                    }),
                );
                write_status(shared, self.target, status)?;
            } else if restarts == 2 {
                let message = format!(
                    "back-off 10s restarting failed container={MAIN_CONTAINER} pod={}",
                    meta::name(jm_pod)
                );
                self.fail_deployment("CrashLoopBackOff", &message, self.first_deployment)?;
            }
            pause(self.delay * 2).await;
            shared.logs.append(
                ns,
                meta::name(jm_pod),
                MAIN_CONTAINER,
                &jobmanager_startup_log(&self.cluster, name),
            );
            set_pod_state(shared, jm_pod, crashed(false))?;
            pause(self.delay).await;
        }
        Ok(())
    }

    /// kube-scheduler's part for the JobManager pod: it is bound to a node matching its
    /// `nodeSelector`; while none does, it stays Pending (`Unschedulable`, a
    /// `FailedScheduling` Event) and the deployment `DEPLOYING`, as the operator sees it.
    async fn await_scheduling(&self, jm_pod: &Value) -> Result<(), Stop> {
        let shared = self.shared;
        let (ns, name) = self.names();
        let mut reported = false;
        loop {
            let nodes = scheduler::nodes(&shared.api);
            let pod = shared.api.get(&PODS, ns, meta::name(jm_pod))?;
            match scheduler::choose_node(&nodes, &pod) {
                Ok(node) => {
                    let mut spec = pod.get("spec").cloned().unwrap_or_else(|| json!({}));
                    spec["nodeName"] = json!(node);
                    put(
                        shared,
                        &PODS,
                        ns,
                        meta::name(jm_pod),
                        Part::Main,
                        "default-scheduler",
                        json!({"spec": spec}),
                    )?;
                    return Ok(());
                }
                Err(message) => {
                    if !reported {
                        let now = meta::now_rfc3339();
                        put(
                            shared,
                            &PODS,
                            ns,
                            meta::name(jm_pod),
                            Part::Status,
                            "default-scheduler",
                            json!({"status": {"phase": "Pending", "qosClass": "Guaranteed", "conditions": [
                                {"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                                    "message": message, "lastTransitionTime": now}]}}),
                        )?;
                        emit_event(shared, &pod, "Warning", "FailedScheduling", &message);
                        reported = true;
                    }
                }
            }
            pause(self.delay * 4).await;
            let live = shared.api.get(&FLINK_DEPLOYMENTS, ns, name)?;
            if meta::uid(&live) != self.target.uid
                || meta::generation(&live) != self.target.generation
                || meta::is_deleting(&live)
            {
                return Err(Stop::Superseded);
            }
        }
    }

    /// The scripted transient reconcile error: its message and how many reconciles it fails.
    fn transient_errors(&self) -> Option<(String, u32)> {
        match self
            .cluster
            .fault(|f| matches!(f, Fault::TransientError { .. }))
        {
            Some(Fault::TransientError {
                message,
                reconciles,
            }) => Some((message.clone(), *reconciles)),
            _ => None,
        }
    }

    /// One reconcile that throws, as the controller reports it: `status.error` the
    /// `ReconciliationException` as JSON (`ReconciliationUtils.updateForReconciliationError`)
    /// and a Warning Event `Error`; the status otherwise stays as it is.
    fn fail_reconcile(&self, failing: &mut Option<(String, u32)>) -> Result<(), Stop> {
        let Some((message, left)) = failing.as_mut().filter(|(_, left)| *left > 0) else {
            return Ok(());
        };
        *left -= 1;
        let error = json!({
            "type": "org.apache.flink.kubernetes.operator.exception.ReconciliationException",
            "message": format!("java.lang.RuntimeException: {message}"),
            "additionalMetadata": {},
            "throwableList": [{"type": "java.lang.RuntimeException", "message": message, "additionalMetadata": {}}],
        });
        write_status(
            self.shared,
            self.target,
            json!({"error": error.to_string()}),
        )?;
        emit_event(self.shared, &self.fd, "Warning", "Error", message);
        Ok(())
    }

    /// The status of a generation deployed: `DEPLOYED`, with `lastReconciledSpec` and
    /// `observedGeneration`.
    fn deployed_status(&self) -> Value {
        json!({
            "lifecycleState": "DEPLOYED",
            "observedGeneration": self.target.generation,
            "reconciliationStatus": {
                "state": "DEPLOYED",
                "lastReconciledSpec": last_reconciled_spec(&self.cluster.spec, self.target.generation, self.first_deployment),
                "reconciliationTimestamp": now_millis(),
            },
            "clusterInfo": {"flink-version": self.cluster.flink_version, "total-cpu": "2.0", "total-memory": "4294967296"},
        })
    }

    /// The scripted init container failure: it exits 1 with `message`, then waits in
    /// `CrashLoopBackOff`; the deployment goes to `ERROR`.
    async fn fail_init_container(&self, jm_pod: &Value, message: &str) -> Result<(), Stop> {
        let shared = self.shared;
        let (ns, _) = self.names();
        let failing = meta::container_names(jm_pod, "initContainers")
            .first()
            .cloned()
            .unwrap_or_else(|| "init".to_owned());
        let lines: Vec<&str> = message.lines().collect();
        shared.logs.append(ns, meta::name(jm_pod), &failing, &lines);
        shared
            .logs
            .set_run(ns, meta::name(jm_pod), &failing, ContainerRun::Terminated);
        set_pod_state(
            shared,
            jm_pod,
            PodState::InitFailed {
                container: &failing,
                message,
                backoff: false,
            },
        )?;
        pause(self.delay).await;
        set_pod_state(
            shared,
            jm_pod,
            PodState::InitFailed {
                container: &failing,
                message,
                backoff: true,
            },
        )?;
        let error = format!(
            "back-off 10s restarting failed container={failing} pod={}",
            meta::name(jm_pod)
        );
        self.fail_deployment("CrashLoopBackOff", &error, self.first_deployment)
    }

    /// The scripted image pull failure: `ErrImagePull`, then `ImagePullBackOff`; the
    /// deployment goes to `ERROR`.
    async fn fail_image_pull(&self, jm_pod: &Value) -> Result<(), Stop> {
        let (shared, image) = (self.shared, &self.cluster.image);
        let (ns, _) = self.names();
        let pull_error = format!("failed to pull and unpack image \"{image}\": not found");
        set_pod_state(
            shared,
            jm_pod,
            PodState::ImagePull {
                backoff: false,
                message: &pull_error,
            },
        )?;
        shared.logs.set_run(
            ns,
            meta::name(jm_pod),
            MAIN_CONTAINER,
            ContainerRun::Waiting("ErrImagePull".into()),
        );
        let mut status = self.deployed_status();
        merge_patch(
            &mut status,
            &json!({"jobManagerDeploymentStatus": "DEPLOYING"}),
        );
        write_status(shared, self.target, status)?;
        emit_event(
            shared,
            jm_pod,
            "Warning",
            "Failed",
            &format!("Failed to pull image \"{image}\": {pull_error}"),
        );
        pause(self.delay).await;
        let backoff = format!("Back-off pulling image \"{image}\"");
        set_pod_state(
            shared,
            jm_pod,
            PodState::ImagePull {
                backoff: true,
                message: &backoff,
            },
        )?;
        shared.logs.set_run(
            ns,
            meta::name(jm_pod),
            MAIN_CONTAINER,
            ContainerRun::Waiting("ImagePullBackOff".into()),
        );
        self.fail_deployment("ImagePullBackOff", &backoff, false)
    }

    /// Step C: the JobManager is ready, the job runs, a TaskManager registers: status
    /// `READY`, job `RUNNING`.
    fn run_job(&self, deployed: &Deployed, job_id: &str) -> Result<(), Stop> {
        let shared = self.shared;
        let (ns, name) = self.names();
        let jm_pod = &deployed.jm_pod;
        set_pod_state(shared, jm_pod, PodState::Running { ready: true })?;
        set_deployment_status(shared, ns, name, true)?;
        create_taskmanager_pod(shared, &self.fd, &deployed.deployment, &self.cluster)?;
        let mut lines: Vec<String> = self
            .restore
            .iter()
            .flat_map(|r| restore_log(r, name, job_id))
            .collect();
        lines.extend([
            flink_log_line(
                "org.apache.flink.runtime.resourcemanager.slotmanager.FineGrainedSlotManager",
                &format!(
                    "Registering task executor {name}-taskmanager-1-1 under resource id {name}-taskmanager-1-1 to the slot manager."
                ),
            ),
            flink_log_line(
                "org.apache.flink.runtime.executiongraph.ExecutionGraph",
                &format!("Job {name} ({job_id}) switched from state CREATED to RUNNING."),
            ),
        ]);
        lines.extend(
            self.cluster
                .job_output
                .iter()
                .map(|l| flink_log_line("org.apache.flink.client.python.PythonDriver", l)),
        );
        shared
            .logs
            .append(ns, meta::name(jm_pod), MAIN_CONTAINER, &lines);
        let start = now_millis().to_string();
        write_status(
            shared,
            self.target,
            json!({
                "jobManagerDeploymentStatus": "READY",
                "jobStatus": {"state": "RUNNING", "startTime": start, "updateTime": start},
                "taskManager": {"labelSelector": format!("component=taskmanager,app={name}"), "replicas": 1},
            }),
        )?;
        emit_event(
            shared,
            &self.fd,
            "Normal",
            "JobStatusChanged",
            "Job status changed from CREATED to RUNNING",
        );
        Ok(())
    }

    /// Step D: `STABLE` with `lastStableSpec`, or the scripted job failure.
    fn settle(&self, jm_pod: &Value, job_id: &str) -> Result<(), Stop> {
        if let Some(Fault::JobFailed { message }) =
            self.cluster.fault(|f| matches!(f, Fault::JobFailed { .. }))
        {
            return self.fail_job(jm_pod, job_id, message);
        }
        let stable = last_reconciled_spec(
            &self.cluster.spec,
            self.target.generation,
            self.first_deployment,
        );
        write_status(
            self.shared,
            self.target,
            // The observer clears the errors of a healthy deployment
            // (`clearErrorsIfDeploymentIsHealthy`).
            json!({
                "lifecycleState": "STABLE",
                "reconciliationStatus": {"lastStableSpec": stable},
                "error": null,
            }),
        )
    }

    /// The scripted job failure: the exception in the JobManager log, job and lifecycle
    /// `FAILED`, `status.error` the exception as JSON.
    fn fail_job(&self, jm_pod: &Value, job_id: &str, message: &str) -> Result<(), Stop> {
        let shared = self.shared;
        let (ns, name) = self.names();
        shared.logs.append(
            ns,
            meta::name(jm_pod),
            MAIN_CONTAINER,
            &[
                flink_log_line(
                    "org.apache.flink.runtime.executiongraph.ExecutionGraph",
                    &format!("Job {name} ({job_id}) switched from state RUNNING to FAILED."),
                ),
                format!("org.apache.flink.runtime.JobException: {message}"),
            ],
        );
        let error = json!({"type": "org.apache.flink.runtime.JobException", "message": message, "throwableList": []});
        write_status(
            shared,
            self.target,
            json!({
                "lifecycleState": "FAILED",
                "jobStatus": {"state": "FAILED", "updateTime": now_millis().to_string()},
                "error": error.to_string(),
            }),
        )?;
        emit_event(
            shared,
            &self.fd,
            "Warning",
            "JobStatusChanged",
            "Job status changed from RUNNING to FAILED",
        );
        Ok(())
    }

    /// Ends a reconcile with the JobManager deployment in ERROR, as the operator's
    /// `DeploymentFailedException` does.
    fn fail_deployment(
        &self,
        reason: &str,
        message: &str,
        first_deployment: bool,
    ) -> Result<(), Stop> {
        let target = self.target;
        let error = json!({
            "type": "org.apache.flink.kubernetes.operator.exception.DeploymentFailedException",
            "message": message,
            "additionalMetadata": {"reason": reason},
            "throwableList": [],
        });
        write_status(
            self.shared,
            target,
            json!({
                "lifecycleState": "DEPLOYED",
                "observedGeneration": target.generation,
                "reconciliationStatus": {
                    "state": "DEPLOYED",
                    "lastReconciledSpec": last_reconciled_spec(&self.cluster.spec, target.generation, first_deployment),
                    "reconciliationTimestamp": now_millis(),
                },
                "jobManagerDeploymentStatus": "ERROR",
                "error": error.to_string(),
            }),
        )?;
        emit_event(self.shared, &self.fd, "Warning", reason, message);
        Ok(())
    }
}

/// The operator's `lastReconciledSpec`: the spec plus resource metadata, as a JSON string.
pub(super) fn last_reconciled_spec(
    spec: &Value,
    generation: i64,
    first_deployment: bool,
) -> String {
    json!({
        "spec": spec,
        "resource_metadata": {
            "apiVersion": "flink.apache.org/v1beta1",
            "metadata": {"generation": generation},
            "firstDeployment": first_deployment,
        },
    })
    .to_string()
}

/// The operator's cleanup of a deleted FlinkDeployment: delete the cluster, then release
/// the finalizer so the deletion completes.
pub(super) async fn cleanup(shared: &Shared, target: &Target) -> Result<(), Stop> {
    let (ns, name) = (target.namespace.as_str(), target.name.as_str());
    let fd = shared.api.get(&FLINK_DEPLOYMENTS, ns, name)?;
    emit_event(
        shared,
        &fd,
        "Normal",
        "Cleanup",
        "Cleaning up FlinkDeployment",
    );
    let delay = shared
        .faults
        .for_deployment(ns, name, Some(&fd))
        .iter()
        .find_map(|f| match f {
            Fault::SlowTransitions { millis } => Some(Duration::from_millis(*millis)),
            _ => None,
        })
        .unwrap_or(shared.config.transition_delay);
    pause(delay).await;
    delete_quietly(shared, &DEPLOYMENTS, ns, name);
    let leftovers = shared.api.store.tx().list(&PODS, Some(ns));
    for pod in leftovers.iter().filter(|p| {
        meta::label(p, "app") == Some(name)
            && meta::label(p, "type") == Some("flink-native-kubernetes")
    }) {
        delete_quietly(shared, &PODS, ns, meta::name(pod));
    }
    shared
        .api
        .upsert(&FLINK_DEPLOYMENTS, ns, name, Part::Main, MANAGER, |live| {
            let mut new = live.filter(|l| meta::uid(l) == target.uid)?.clone();
            let finalizers: Vec<String> = meta::finalizers(&new)
                .into_iter()
                .filter(|f| f != FINALIZER)
                .collect();
            meta::metadata_mut(&mut new).insert("finalizers".into(), json!(finalizers));
            Some(new)
        })?;
    Ok(())
}

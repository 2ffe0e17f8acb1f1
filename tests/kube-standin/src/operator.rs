//! The Flink Kubernetes Operator's part (and the bits of the controller manager, kubelet and
//! EKS pod identity webhook it relies on), driven by the store like a real controller: on
//! every change it lists FlinkDeployments and starts a reconcile for each new generation,
//! or a cleanup for each deletion, cancelling the one in flight.
//!
//! A reconcile walks the status through the operator's sequence (values from the CRD's
//! README), one step per transition delay:
//!
//! | step | reconciliationStatus | lifecycleState | jobManagerDeploymentStatus | jobStatus.state |
//! |------|----------------------|----------------|----------------------------|-----------------|
//! | A    | UPGRADING            | CREATED / UPGRADING | DEPLOYING             | RECONCILING     |
//! | B    | DEPLOYED (+ lastReconciledSpec, observedGeneration) | DEPLOYED | DEPLOYED_NOT_READY | CREATED |
//! | C    | DEPLOYED             | DEPLOYED       | READY                      | RUNNING         |
//! | D    | DEPLOYED (+ lastStableSpec) | STABLE  | READY                      | RUNNING         |
//!
//! Alongside, it creates the JobManager Deployment `<name>`, the REST Service `<name>-rest`,
//! the ConfigMap `flink-config-<name>`, the JobManager pod `<name>-<hash>-<suffix>` and the
//! TaskManager pod `<name>-taskmanager-1-1`, moves their status as a kubelet would, and
//! writes their container logs.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value, json};
use tokio::task::JoinHandle;

use crate::Shared;
use crate::api::DeleteOptions;
use crate::apply::Part;
use crate::error::ApiError;
use crate::faults::{Fault, JOB_OUTPUT_ANNOTATION};
use crate::logs::ContainerRun;
use crate::meta;
use crate::patch::merge_patch;
use crate::resources::{
    CONFIG_MAPS, DEPLOYMENTS, EVENTS, FLINK_DEPLOYMENTS, PODS, SERVICE_ACCOUNTS, SERVICES,
};

/// The operator's field manager.
const MANAGER: &str = "flink-kubernetes-operator";
/// The finalizer the operator puts on every FlinkDeployment.
pub(crate) const FINALIZER: &str = "flinkdeployments.flink.apache.org/finalizer";
/// The main container of Flink pods.
const MAIN_CONTAINER: &str = "flink-main-container";
/// The annotation that gives a pod IRSA credentials when its service account has it.
const ROLE_ARN_ANNOTATION: &str = "eks.amazonaws.com/role-arn";

struct Task {
    uid: String,
    generation: i64,
    deleting: bool,
    handle: JoinHandle<()>,
}

/// Runs the operator until the stand-in shuts down.
pub(crate) async fn run(shared: Arc<Shared>) {
    let mut changes = shared.api.store.subscribe();
    let mut tasks: HashMap<(String, String), Task> = HashMap::new();
    loop {
        let deployments = shared.api.store.tx().list(&FLINK_DEPLOYMENTS, None);
        let mut seen = HashSet::new();
        for fd in deployments {
            let key = (meta::namespace(&fd).to_owned(), meta::name(&fd).to_owned());
            seen.insert(key.clone());
            let (uid, generation, deleting) = (
                meta::uid(&fd).to_owned(),
                meta::generation(&fd),
                meta::is_deleting(&fd),
            );
            if tasks.get(&key).is_some_and(|t| {
                t.uid == uid && t.generation == generation && t.deleting == deleting
            }) {
                continue;
            }
            if let Some(old) = tasks.remove(&key) {
                old.handle.abort();
            }
            let target = Target {
                namespace: key.0.clone(),
                name: key.1.clone(),
                uid: uid.clone(),
                generation,
            };
            let shared = Arc::clone(&shared);
            let handle = if deleting {
                tokio::spawn(async move {
                    log_outcome(&target.clone(), cleanup(&shared, &target).await)
                })
            } else {
                tokio::spawn(async move {
                    log_outcome(&target.clone(), reconcile(&shared, &target).await)
                })
            };
            tasks.insert(
                key,
                Task {
                    uid,
                    generation,
                    deleting,
                    handle,
                },
            );
        }
        tasks.retain(|key, task| {
            let keep = seen.contains(key);
            if !keep {
                task.handle.abort();
            }
            keep
        });
        shared.api.collect_garbage();
        forget_logs_of_deleted_pods(&shared);
        tokio::select! {
            changed = changes.changed() => if changed.is_err() { break },
            () = shared.shutdown.cancelled() => break,
        }
    }
    for task in tasks.into_values() {
        task.handle.abort();
    }
}

fn forget_logs_of_deleted_pods(shared: &Shared) {
    let existing: HashSet<(String, String)> = shared
        .api
        .store
        .tx()
        .list(&PODS, None)
        .iter()
        .map(|p| (meta::namespace(p).to_owned(), meta::name(p).to_owned()))
        .collect();
    for (namespace, pod) in shared.logs.pods() {
        if !existing.contains(&(namespace.clone(), pod.clone())) {
            shared.logs.remove_pod(&namespace, &pod);
        }
    }
}

/// The FlinkDeployment generation a task works on.
#[derive(Clone, Debug)]
struct Target {
    namespace: String,
    name: String,
    uid: String,
    generation: i64,
}

/// Why a task stopped early.
#[derive(Debug)]
enum Stop {
    /// A newer generation or a deletion took over.
    Superseded,
    /// A write failed.
    Api(ApiError),
}

impl From<ApiError> for Stop {
    fn from(e: ApiError) -> Stop {
        Stop::Api(e)
    }
}

fn log_outcome(target: &Target, outcome: Result<(), Stop>) {
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

/// What the operator derives from a FlinkDeployment's spec.
struct Plan {
    spec: Value,
    image: String,
    image_pull_policy: String,
    service_account: String,
    flink_version: String,
    entry_class: String,
    jar_uri: String,
    args: Vec<String>,
    parallelism: i64,
    template_hash: String,
    jm_template: Value,
    tm_template: Value,
    jm_resources: Value,
    tm_resources: Value,
    job_output: Vec<String>,
    faults: Vec<Fault>,
}

impl Plan {
    fn new(shared: &Shared, fd: &Value, target: &Target) -> Plan {
        let spec = fd.get("spec").cloned().unwrap_or_else(|| json!({}));
        let text = |path: &[&str], default: &str| {
            meta::get_path(&spec, path)
                .and_then(Value::as_str)
                .unwrap_or(default)
                .to_owned()
        };
        let base_template = spec.get("podTemplate").cloned().unwrap_or(Value::Null);
        let jm_template = merge_templates(
            &base_template,
            meta::get_path(&spec, &["jobManager", "podTemplate"]),
        );
        let tm_template = merge_templates(
            &base_template,
            meta::get_path(&spec, &["taskManager", "podTemplate"]),
        );
        let flink_version = text(&["flinkVersion"], "v1_20")
            .trim_start_matches('v')
            .replace('_', ".");
        Plan {
            image: text(&["image"], "flink:latest"),
            image_pull_policy: text(&["imagePullPolicy"], "IfNotPresent"),
            service_account: text(&["serviceAccount"], "default"),
            entry_class: text(
                &["job", "entryClass"],
                "org.apache.flink.client.python.PythonDriver",
            ),
            jar_uri: text(&["job", "jarURI"], ""),
            args: meta::get_path(&spec, &["job", "args"])
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
                        .collect()
                })
                .unwrap_or_default(),
            parallelism: meta::get_path(&spec, &["job", "parallelism"])
                .and_then(Value::as_i64)
                .unwrap_or(1),
            template_hash: short_hash(&spec.to_string()),
            jm_resources: resources(meta::get_path(&spec, &["jobManager", "resource"])),
            tm_resources: resources(meta::get_path(&spec, &["taskManager", "resource"])),
            jm_template,
            tm_template,
            job_output: meta::annotation(fd, JOB_OUTPUT_ANNOTATION)
                .map(|o| o.lines().map(str::to_owned).collect())
                .unwrap_or_default(),
            faults: shared
                .faults
                .for_deployment(&target.namespace, &target.name, Some(fd)),
            flink_version,
            spec,
        }
    }

    fn delay(&self, shared: &Shared) -> Duration {
        self.faults
            .iter()
            .find_map(|f| match f {
                Fault::SlowTransitions { millis } => Some(Duration::from_millis(*millis)),
                _ => None,
            })
            .unwrap_or(shared.config.transition_delay)
    }

    fn fault(&self, wanted: fn(&Fault) -> bool) -> Option<&Fault> {
        self.faults.iter().find(|f| wanted(f))
    }
}

/// Merges a role's pod template over the common one, containers and volumes by name.
fn merge_templates(base: &Value, role: Option<&Value>) -> Value {
    let Some(role) = role.filter(|r| r.is_object()) else {
        return base.clone();
    };
    if !base.is_object() {
        return role.clone();
    }
    let mut merged = base.clone();
    for list in ["containers", "initContainers", "volumes"] {
        let base_items = meta::get_path(base, &["spec", list])
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let role_items = meta::get_path(role, &["spec", list])
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let mut items = base_items;
        for item in role_items {
            match items.iter_mut().find(|i| i.get("name") == item.get("name")) {
                Some(existing) => merge_patch(existing, &item),
                None => items.push(item),
            }
        }
        if !items.is_empty() {
            merged["spec"][list] = Value::Array(items);
        }
    }
    let mut role_rest = role.clone();
    if let Some(Value::Object(spec)) = role_rest.get_mut("spec") {
        for list in ["containers", "initContainers", "volumes"] {
            spec.remove(list);
        }
    }
    merge_patch(&mut merged, &role_rest);
    merged
}

/// Kubernetes resources from the operator's `resource: {cpu, memory}` (Flink memory sizes
/// such as `2048m` or `2g` become mebibytes).
fn resources(resource: Option<&Value>) -> Value {
    let cpu = resource
        .and_then(|r| r.get("cpu"))
        .and_then(Value::as_f64)
        .unwrap_or(1.0);
    let memory = resource
        .and_then(|r| r.get("memory"))
        .and_then(Value::as_str)
        .and_then(flink_memory_mebibytes)
        .unwrap_or(1024);
    let cpu = if cpu.fract() == 0.0 {
        format!("{cpu:.0}")
    } else {
        cpu.to_string()
    };
    let quantity = json!({"cpu": cpu, "memory": format!("{memory}Mi")});
    json!({"limits": quantity, "requests": quantity})
}

fn flink_memory_mebibytes(text: &str) -> Option<u64> {
    let text = text.trim().to_ascii_lowercase();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().ok()?;
    let bytes = match unit.trim() {
        "" | "b" | "bytes" => number,
        "k" | "kb" | "kibibytes" => number << 10,
        "m" | "mb" | "mebibytes" => number << 20,
        "g" | "gb" | "gibibytes" => number << 30,
        "t" | "tb" | "tebibytes" => number << 40,
        _ => return None,
    };
    Some(bytes >> 20)
}

/// A stable 10-character hash in the alphabet Kubernetes uses for pod-template hashes.
fn short_hash(text: &str) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in text.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    (0..10)
        .map(|i| {
            let index = (hash >> (i * 6)) % ALPHABET.len() as u64;
            char::from(ALPHABET[usize::try_from(index).unwrap_or(0)])
        })
        .collect()
}

fn now_millis() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

fn flink_log_line(logger: &str, message: &str) -> String {
    let now = jiff::Timestamp::now().strftime("%Y-%m-%d %H:%M:%S,%3f");
    format!("{now} INFO  {logger} [] - {message}")
}

fn owner_reference(api_version: &str, kind: &str, name: &str, uid: &str) -> Value {
    json!({"apiVersion": api_version, "kind": kind, "name": name, "uid": uid, "controller": true, "blockOwnerDeletion": true})
}

/// Writes `patch` into the FlinkDeployment's status if it is still at the target generation.
fn write_status(shared: &Shared, target: &Target, patch: Value) -> Result<(), Stop> {
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

/// Records a core/v1 Event about an object.
fn emit_event(shared: &Shared, involved: &Value, event_type: &str, reason: &str, message: &str) {
    let namespace = meta::namespace(involved).to_owned();
    let name = format!("{}.{}", meta::name(involved), meta::random_suffix(16));
    let now = meta::now_rfc3339();
    let event = json!({
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": name, "namespace": namespace},
        "involvedObject": {
            "apiVersion": involved.get("apiVersion").cloned().unwrap_or(Value::Null),
            "kind": involved.get("kind").cloned().unwrap_or(Value::Null),
            "name": meta::name(involved),
            "namespace": namespace,
            "uid": meta::uid(involved),
            "resourceVersion": meta::meta_str(involved, "resourceVersion").unwrap_or(""),
        },
        "reason": reason,
        "message": message,
        "type": event_type,
        "source": {"component": "flink-kubernetes-operator"},
        "reportingComponent": "flink-kubernetes-operator",
        "reportingInstance": "kube-standin",
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
    });
    if let Err(e) = shared
        .api
        .upsert(&EVENTS, &namespace, &name, Part::Main, MANAGER, |_| {
            Some(event)
        })
    {
        tracing::debug!("event not recorded: {}", e.message);
    }
}

/// Writes an object as the stand-in's controllers do: the given top-level fields replace the
/// stored ones, except `metadata`, which is merged.
fn put(
    shared: &Shared,
    res: &'static crate::resources::ResourceDef,
    namespace: &str,
    name: &str,
    part: Part,
    manager: &str,
    object: Value,
) -> Result<(), Stop> {
    shared
        .api
        .upsert(res, namespace, name, part, manager, |live| {
            let mut new = live.cloned().unwrap_or_else(|| json!({}));
            if let Value::Object(fields) = object {
                for (key, value) in fields {
                    if key == "metadata" {
                        let mut metadata =
                            new.get("metadata").cloned().unwrap_or_else(|| json!({}));
                        merge_patch(&mut metadata, &value);
                        new["metadata"] = metadata;
                    } else {
                        new[key.as_str()] = value;
                    }
                }
            }
            Some(new)
        })
        .map(|_| ())
        .map_err(Stop::from)
}

fn delete_quietly(
    shared: &Shared,
    res: &'static crate::resources::ResourceDef,
    namespace: &str,
    name: &str,
) {
    match shared
        .api
        .delete(res, namespace, name, &DeleteOptions::default())
    {
        Ok(_) => shared.logs.remove_pod(namespace, name),
        Err(e) if e.code == 404 => {}
        Err(e) => tracing::debug!(
            "delete of {} {namespace}/{name} failed: {}",
            res.plural,
            e.message
        ),
    }
}

async fn pause(delay: Duration) {
    tokio::time::sleep(delay).await;
}

/// Reconciles one generation: the whole status sequence, or the scripted failure.
async fn reconcile(shared: &Shared, target: &Target) -> Result<(), Stop> {
    let fd = shared
        .api
        .get(&FLINK_DEPLOYMENTS, &target.namespace, &target.name)?;
    if meta::uid(&fd) != target.uid || meta::generation(&fd) != target.generation {
        return Err(Stop::Superseded);
    }
    let plan = Plan::new(shared, &fd, target);
    let delay = plan.delay(shared);
    let (ns, name) = (target.namespace.as_str(), target.name.as_str());
    let first_deployment = meta::get_path(
        &fd,
        &["status", "reconciliationStatus", "lastReconciledSpec"],
    )
    .is_none();

    // Step A: the operator sees the new spec and starts deploying it.
    if !meta::finalizers(&fd).iter().any(|f| f == FINALIZER) {
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
    let (reason, message) = if first_deployment {
        ("Submit", "Starting deployment")
    } else {
        (
            "SpecChanged",
            "Detected spec change, starting reconciliation.",
        )
    };
    emit_event(shared, &fd, "Normal", reason, message);
    write_status(
        shared,
        target,
        json!({
            "lifecycleState": if first_deployment { "CREATED" } else { "UPGRADING" },
            "reconciliationStatus": {"state": "UPGRADING", "reconciliationTimestamp": now_millis()},
            "jobManagerDeploymentStatus": "DEPLOYING",
            "jobStatus": {"state": "RECONCILING", "jobName": name, "jobId": null, "startTime": null, "updateTime": now_millis().to_string()},
            "error": null,
        }),
    )?;
    remove_old_pods(shared, ns, name, &plan.template_hash);
    deploy_cluster_objects(shared, &fd, &plan)?;
    let deployment = shared.api.get(&DEPLOYMENTS, ns, name)?;
    let Some(jm_pod) = create_jobmanager_pod(shared, &fd, &deployment, &plan)? else {
        // The pod could not be created (its service account is missing): FailedCreate.
        pause(delay).await;
        return fail_deployment(
            shared,
            target,
            &fd,
            "FailedCreate",
            &format!(
                "pods \"{name}-{}-\" is forbidden: error looking up service account {ns}/{}: serviceaccount \"{}\" not found",
                plan.template_hash, plan.service_account, plan.service_account
            ),
            first_deployment,
            &plan,
        );
    };
    pause(delay).await;

    // Step B: init containers ran; the JobManager container starts (or not).
    let init_names = meta::container_names(&jm_pod, "initContainers");
    if let Some(Fault::InitContainerFailure { message }) =
        plan.fault(|f| matches!(f, Fault::InitContainerFailure { .. }))
    {
        let failing = init_names
            .first()
            .cloned()
            .unwrap_or_else(|| "init".to_owned());
        let lines: Vec<&str> = message.lines().collect();
        shared
            .logs
            .append(ns, meta::name(&jm_pod), &failing, &lines);
        shared
            .logs
            .set_run(ns, meta::name(&jm_pod), &failing, ContainerRun::Terminated);
        set_pod_state(
            shared,
            &jm_pod,
            PodState::InitFailed {
                container: &failing,
                message,
                backoff: false,
            },
        )?;
        pause(delay).await;
        set_pod_state(
            shared,
            &jm_pod,
            PodState::InitFailed {
                container: &failing,
                message,
                backoff: true,
            },
        )?;
        let error = format!(
            "back-off 10s restarting failed container={failing} pod={}",
            meta::name(&jm_pod)
        );
        return fail_deployment(
            shared,
            target,
            &fd,
            "CrashLoopBackOff",
            &error,
            first_deployment,
            &plan,
        );
    }
    for init in &init_names {
        let init_spec = find_container(&jm_pod, "initContainers", init);
        shared
            .logs
            .append(ns, meta::name(&jm_pod), init, &fetch_log(init_spec));
        shared
            .logs
            .set_run(ns, meta::name(&jm_pod), init, ContainerRun::Terminated);
    }
    let deployed_status = json!({
        "lifecycleState": "DEPLOYED",
        "observedGeneration": target.generation,
        "reconciliationStatus": {
            "state": "DEPLOYED",
            "lastReconciledSpec": last_reconciled_spec(&plan.spec, target.generation, first_deployment),
            "reconciliationTimestamp": now_millis(),
        },
        "clusterInfo": {"flink-version": plan.flink_version, "total-cpu": "2.0", "total-memory": "4294967296"},
    });
    if plan
        .fault(|f| matches!(f, Fault::ImagePullFailure))
        .is_some()
    {
        let pull_error = format!(
            "failed to pull and unpack image \"{}\": not found",
            plan.image
        );
        set_pod_state(
            shared,
            &jm_pod,
            PodState::ImagePull {
                backoff: false,
                message: &pull_error,
            },
        )?;
        shared.logs.set_run(
            ns,
            meta::name(&jm_pod),
            MAIN_CONTAINER,
            ContainerRun::Waiting("ErrImagePull".into()),
        );
        let mut status = deployed_status.clone();
        merge_patch(
            &mut status,
            &json!({"jobManagerDeploymentStatus": "DEPLOYING"}),
        );
        write_status(shared, target, status)?;
        emit_event(
            shared,
            &jm_pod,
            "Warning",
            "Failed",
            &format!("Failed to pull image \"{}\": {pull_error}", plan.image),
        );
        pause(delay).await;
        let backoff = format!("Back-off pulling image \"{}\"", plan.image);
        set_pod_state(
            shared,
            &jm_pod,
            PodState::ImagePull {
                backoff: true,
                message: &backoff,
            },
        )?;
        shared.logs.set_run(
            ns,
            meta::name(&jm_pod),
            MAIN_CONTAINER,
            ContainerRun::Waiting("ImagePullBackOff".into()),
        );
        return fail_deployment(
            shared,
            target,
            &fd,
            "ImagePullBackOff",
            &backoff,
            false,
            &plan,
        );
    }
    shared.logs.append(
        ns,
        meta::name(&jm_pod),
        MAIN_CONTAINER,
        &jobmanager_startup_log(&plan, name),
    );
    shared.logs.set_run(
        ns,
        meta::name(&jm_pod),
        MAIN_CONTAINER,
        ContainerRun::Running,
    );
    set_pod_state(shared, &jm_pod, PodState::Running { ready: false })?;
    set_deployment_status(shared, ns, name, false)?;
    let job_id = uuid::Uuid::new_v4().simple().to_string();
    let mut status = deployed_status;
    merge_patch(
        &mut status,
        &json!({
            "jobManagerDeploymentStatus": "DEPLOYED_NOT_READY",
            "jobStatus": {"state": "CREATED", "jobName": name, "jobId": job_id, "updateTime": now_millis().to_string()},
        }),
    );
    write_status(shared, target, status)?;
    emit_event(
        shared,
        &fd,
        "Normal",
        "JobStatusChanged",
        "Job status changed from RECONCILING to CREATED",
    );
    pause(delay).await;

    // Step C: the JobManager is ready, the job runs, a TaskManager registers.
    set_pod_state(shared, &jm_pod, PodState::Running { ready: true })?;
    set_deployment_status(shared, ns, name, true)?;
    create_taskmanager_pod(shared, &fd, &deployment, &plan)?;
    let mut lines = vec![
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
    ];
    lines.extend(
        plan.job_output
            .iter()
            .map(|l| flink_log_line("org.apache.flink.client.python.PythonDriver", l)),
    );
    shared
        .logs
        .append(ns, meta::name(&jm_pod), MAIN_CONTAINER, &lines);
    let start = now_millis().to_string();
    write_status(
        shared,
        target,
        json!({
            "jobManagerDeploymentStatus": "READY",
            "jobStatus": {"state": "RUNNING", "startTime": start, "updateTime": start},
            "taskManager": {"labelSelector": format!("component=taskmanager,app={name}"), "replicas": 1},
        }),
    )?;
    emit_event(
        shared,
        &fd,
        "Normal",
        "JobStatusChanged",
        "Job status changed from CREATED to RUNNING",
    );
    pause(delay).await;

    // Step D: stable, or the scripted job failure.
    if let Some(Fault::JobFailed { message }) = plan.fault(|f| matches!(f, Fault::JobFailed { .. }))
    {
        shared.logs.append(
            ns,
            meta::name(&jm_pod),
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
            target,
            json!({
                "lifecycleState": "FAILED",
                "jobStatus": {"state": "FAILED", "updateTime": now_millis().to_string()},
                "error": error.to_string(),
            }),
        )?;
        emit_event(
            shared,
            &fd,
            "Warning",
            "JobStatusChanged",
            "Job status changed from RUNNING to FAILED",
        );
        return Ok(());
    }
    let stable = last_reconciled_spec(&plan.spec, target.generation, first_deployment);
    write_status(
        shared,
        target,
        json!({
            "lifecycleState": "STABLE",
            "reconciliationStatus": {"lastStableSpec": stable},
        }),
    )?;
    Ok(())
}

/// Ends a reconcile with the JobManager deployment in ERROR, as the operator's
/// `DeploymentFailedException` does.
fn fail_deployment(
    shared: &Shared,
    target: &Target,
    fd: &Value,
    reason: &str,
    message: &str,
    first_deployment: bool,
    plan: &Plan,
) -> Result<(), Stop> {
    let error = json!({
        "type": "org.apache.flink.kubernetes.operator.exception.DeploymentFailedException",
        "message": message,
        "additionalMetadata": {"reason": reason},
        "throwableList": [],
    });
    write_status(
        shared,
        target,
        json!({
            "lifecycleState": "DEPLOYED",
            "observedGeneration": target.generation,
            "reconciliationStatus": {
                "state": "DEPLOYED",
                "lastReconciledSpec": last_reconciled_spec(&plan.spec, target.generation, first_deployment),
                "reconciliationTimestamp": now_millis(),
            },
            "jobManagerDeploymentStatus": "ERROR",
            "error": error.to_string(),
        }),
    )?;
    emit_event(shared, fd, "Warning", reason, message);
    Ok(())
}

/// The operator's `lastReconciledSpec`: the spec plus resource metadata, as a JSON string.
fn last_reconciled_spec(spec: &Value, generation: i64, first_deployment: bool) -> String {
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

fn remove_old_pods(shared: &Shared, ns: &str, name: &str, hash: &str) {
    let pods = shared.api.store.tx().list(&PODS, Some(ns));
    for pod in pods.iter().filter(|p| {
        meta::label(p, "app") == Some(name)
            && meta::label(p, "type") == Some("flink-native-kubernetes")
    }) {
        let current_jm = meta::label(pod, "component") == Some("jobmanager")
            && meta::label(pod, "pod-template-hash") == Some(hash);
        if !current_jm {
            delete_quietly(shared, &PODS, ns, meta::name(pod));
        }
    }
}

fn flink_labels(name: &str, component: &str) -> Value {
    json!({"app": name, "component": component, "type": "flink-native-kubernetes"})
}

/// The ConfigMap, REST Service and JobManager Deployment of a native-mode cluster.
fn deploy_cluster_objects(shared: &Shared, fd: &Value, plan: &Plan) -> Result<(), Stop> {
    let (ns, name) = (meta::namespace(fd), meta::name(fd));
    let fd_owner = owner_reference(
        "flink.apache.org/v1beta1",
        "FlinkDeployment",
        name,
        meta::uid(fd),
    );
    let selector = flink_labels(name, "jobmanager");
    let pod_spec = jobmanager_pod_spec(shared, ns, name, plan);
    let mut template_labels = selector.clone();
    if let Some(extra) = meta::get_path(&plan.jm_template, &["metadata", "labels"]) {
        merge_patch(&mut template_labels, extra);
    }
    let template_annotations = meta::get_path(&plan.jm_template, &["metadata", "annotations"])
        .cloned()
        .unwrap_or_else(|| json!({}));
    put(
        shared,
        &DEPLOYMENTS,
        ns,
        name,
        Part::Main,
        MANAGER,
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name, "namespace": ns, "labels": selector, "ownerReferences": [fd_owner]},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": selector},
                "strategy": {"type": "Recreate"},
                "template": {"metadata": {"labels": template_labels, "annotations": template_annotations}, "spec": pod_spec},
            },
        }),
    )?;
    let deployment = shared.api.get(&DEPLOYMENTS, ns, name)?;
    let jm_owner = owner_reference("apps/v1", "Deployment", name, meta::uid(&deployment));
    put(
        shared,
        &SERVICES,
        ns,
        &format!("{name}-rest"),
        Part::Main,
        MANAGER,
        json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": format!("{name}-rest"), "namespace": ns, "labels": {"app": name, "type": "flink-native-kubernetes"}, "ownerReferences": [jm_owner]},
            "spec": {
                "type": "ClusterIP",
                "clusterIP": "10.96.0.10",
                "selector": selector,
                "ports": [{"name": "rest", "port": 8081, "protocol": "TCP", "targetPort": 8081}],
            },
        }),
    )?;
    let config: Vec<String> = meta::get_path(&plan.spec, &["flinkConfiguration"])
        .map(|c| flatten_config(c, ""))
        .unwrap_or_default();
    put(
        shared,
        &CONFIG_MAPS,
        ns,
        &format!("flink-config-{name}"),
        Part::Main,
        MANAGER,
        json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": format!("flink-config-{name}"), "namespace": ns, "labels": {"app": name, "type": "flink-native-kubernetes"}, "ownerReferences": [owner_reference("apps/v1", "Deployment", name, meta::uid(&deployment))]},
            "data": {"config.yaml": config.join("\n")},
        }),
    )?;
    Ok(())
}

fn flatten_config(value: &Value, prefix: &str) -> Vec<String> {
    match value {
        Value::Object(map) => map
            .iter()
            .flat_map(|(k, v)| {
                flatten_config(
                    v,
                    &if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    },
                )
            })
            .collect(),
        Value::String(s) => vec![format!("{prefix}: {s}")],
        other => vec![format!("{prefix}: {other}")],
    }
}

/// The JobManager pod spec: the template's, with the main container completed the way the
/// operator does, plus the IRSA mutation when the service account has a role.
fn jobmanager_pod_spec(shared: &Shared, ns: &str, name: &str, plan: &Plan) -> Value {
    pod_spec(
        shared,
        ns,
        name,
        plan,
        &plan.jm_template,
        &plan.jm_resources,
        "kubernetes-jobmanager.sh kubernetes-application",
    )
}

fn pod_spec(
    shared: &Shared,
    ns: &str,
    name: &str,
    plan: &Plan,
    template: &Value,
    resources: &Value,
    command: &str,
) -> Value {
    let mut spec = template
        .get("spec")
        .cloned()
        .filter(Value::is_object)
        .unwrap_or_else(|| json!({}));
    let mut containers = spec
        .get("containers")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let main_index = match containers
        .iter()
        .position(|c| c.get("name").and_then(Value::as_str) == Some(MAIN_CONTAINER))
    {
        Some(i) => i,
        None => {
            containers.insert(0, json!({"name": MAIN_CONTAINER}));
            0
        }
    };
    let main = &mut containers[main_index];
    main["image"] = json!(plan.image);
    main["imagePullPolicy"] = json!(plan.image_pull_policy);
    main["args"] = json!(["bash", "-c", command]);
    main["resources"] = resources.clone();
    main["ports"] = json!([{"containerPort": 8081, "name": "rest", "protocol": "TCP"}, {"containerPort": 6123, "name": "jobmanager-rpc", "protocol": "TCP"}]);
    let mut mounts = main
        .get("volumeMounts")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    mounts.push(json!({"name": "flink-config-volume", "mountPath": "/opt/flink/conf"}));
    main["volumeMounts"] = Value::Array(mounts);
    spec["containers"] = Value::Array(containers);
    let mut volumes = spec
        .get("volumes")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    volumes.push(json!({"name": "flink-config-volume", "configMap": {"name": format!("flink-config-{name}")}}));
    spec["volumes"] = Value::Array(volumes);
    spec["serviceAccountName"] = json!(plan.service_account);
    spec["serviceAccount"] = json!(plan.service_account);
    spec["restartPolicy"] = json!("Always");
    spec["nodeName"] = json!("kube-standin-node");
    inject_irsa(shared, ns, &plan.service_account, &mut spec);
    spec
}

/// What the EKS pod identity webhook does to a pod whose service account carries
/// `eks.amazonaws.com/role-arn`: environment, projected token volume, mounts.
fn inject_irsa(shared: &Shared, ns: &str, service_account: &str, spec: &mut Value) {
    let Ok(sa) = shared.api.get(&SERVICE_ACCOUNTS, ns, service_account) else {
        return;
    };
    let Some(role_arn) = meta::annotation(&sa, ROLE_ARN_ANNOTATION) else {
        return;
    };
    let env = [
        json!({"name": "AWS_STS_REGIONAL_ENDPOINTS", "value": "regional"}),
        json!({"name": "AWS_ROLE_ARN", "value": role_arn}),
        json!({"name": "AWS_WEB_IDENTITY_TOKEN_FILE", "value": "/var/run/secrets/eks.amazonaws.com/serviceaccount/token"}),
    ];
    let mount = json!({"name": "aws-iam-token", "mountPath": "/var/run/secrets/eks.amazonaws.com/serviceaccount", "readOnly": true});
    for list in ["containers", "initContainers"] {
        if let Some(Value::Array(containers)) = spec.get_mut(list) {
            for container in containers {
                let mut container_env = container
                    .get("env")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                container_env.extend(env.iter().cloned());
                container["env"] = Value::Array(container_env);
                let mut mounts = container
                    .get("volumeMounts")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                mounts.push(mount.clone());
                container["volumeMounts"] = Value::Array(mounts);
            }
        }
    }
    let mut volumes = spec
        .get("volumes")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    volumes.push(
        json!({"name": "aws-iam-token", "projected": {"sources": [{"serviceAccountToken": {
        "audience": "sts.amazonaws.com", "expirationSeconds": 86400, "path": "token"}}]}}),
    );
    spec["volumes"] = Value::Array(volumes);
}

/// Creates the JobManager pod from the Deployment's template, as the ReplicaSet controller
/// would; `None` when its service account does not exist.
fn create_jobmanager_pod(
    shared: &Shared,
    fd: &Value,
    deployment: &Value,
    plan: &Plan,
) -> Result<Option<Value>, Stop> {
    let (ns, name) = (meta::namespace(fd), meta::name(fd));
    if shared
        .api
        .get(&SERVICE_ACCOUNTS, ns, &plan.service_account)
        .is_err()
    {
        let message = format!(
            "pods \"{name}-{}-\" is forbidden: error looking up service account {ns}/{}: serviceaccount \"{}\" not found",
            plan.template_hash, plan.service_account, plan.service_account
        );
        put_deployment_status(
            shared,
            ns,
            name,
            json!({
                "replicas": 0, "unavailableReplicas": 1, "observedGeneration": meta::generation(deployment),
                "conditions": [{"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate", "message": message}],
            }),
        )?;
        emit_event(shared, deployment, "Warning", "FailedCreate", &message);
        return Ok(None);
    }
    let pod_name = format!("{name}-{}-{}", plan.template_hash, meta::random_suffix(5));
    let template = meta::get_path(deployment, &["spec", "template"])
        .cloned()
        .unwrap_or_else(|| json!({}));
    let mut labels = template["metadata"]["labels"].clone();
    merge_patch(
        &mut labels,
        &json!({"pod-template-hash": plan.template_hash}),
    );
    let owner = owner_reference("apps/v1", "Deployment", name, meta::uid(deployment));
    let pod = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": pod_name, "namespace": ns, "labels": labels,
                     "annotations": template["metadata"]["annotations"].clone(), "ownerReferences": [owner]},
        "spec": template["spec"].clone(),
    });
    put(
        shared,
        &PODS,
        ns,
        &pod_name,
        Part::Main,
        "kube-controller-manager",
        pod,
    )?;
    let pod = shared.api.get(&PODS, ns, &pod_name)?;
    for init in meta::container_names(&pod, "initContainers") {
        shared
            .logs
            .set_run(ns, &pod_name, &init, ContainerRun::Running);
    }
    let waiting = if meta::container_names(&pod, "initContainers").is_empty() {
        "ContainerCreating"
    } else {
        "PodInitializing"
    };
    for container in meta::container_names(&pod, "containers") {
        shared.logs.set_run(
            ns,
            &pod_name,
            &container,
            ContainerRun::Waiting(waiting.into()),
        );
    }
    set_pod_state(shared, &pod, PodState::Initializing)?;
    Ok(Some((*pod).clone()))
}

fn create_taskmanager_pod(
    shared: &Shared,
    fd: &Value,
    deployment: &Value,
    plan: &Plan,
) -> Result<(), Stop> {
    let (ns, name) = (meta::namespace(fd), meta::name(fd));
    let pod_name = format!("{name}-taskmanager-1-1");
    let spec = pod_spec(
        shared,
        ns,
        name,
        plan,
        &plan.tm_template,
        &plan.tm_resources,
        "kubernetes-taskmanager.sh",
    );
    let owner = owner_reference("apps/v1", "Deployment", name, meta::uid(deployment));
    put(
        shared,
        &PODS,
        ns,
        &pod_name,
        Part::Main,
        MANAGER,
        json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": pod_name, "namespace": ns, "labels": flink_labels(name, "taskmanager"), "ownerReferences": [owner]},
            "spec": spec,
        }),
    )?;
    let pod = shared.api.get(&PODS, ns, &pod_name)?;
    for init in meta::container_names(&pod, "initContainers") {
        shared
            .logs
            .set_run(ns, &pod_name, &init, ContainerRun::Terminated);
    }
    shared.logs.append(
        ns,
        &pod_name,
        MAIN_CONTAINER,
        &[
            flink_log_line(
                "org.apache.flink.runtime.taskexecutor.TaskManagerRunner",
                "Starting TaskManager",
            ),
            flink_log_line(
                "org.apache.flink.runtime.taskexecutor.TaskExecutor",
                "Successful registration at resource manager",
            ),
        ],
    );
    shared
        .logs
        .set_run(ns, &pod_name, MAIN_CONTAINER, ContainerRun::Running);
    set_pod_state(shared, &pod, PodState::Running { ready: true })?;
    Ok(())
}

fn find_container<'a>(pod: &'a Value, list: &str, name: &str) -> Option<&'a Value> {
    meta::get_path(pod, &["spec", list])
        .and_then(Value::as_array)
        .and_then(|c| {
            c.iter()
                .find(|c| c.get("name").and_then(Value::as_str) == Some(name))
        })
}

/// What a fetch init container prints: `download: SRC to DST` for a `cp SRC DST` command
/// (the AWS CLI's output), nothing for anything else.
fn fetch_log(container: Option<&Value>) -> Vec<String> {
    let words: Vec<String> = container
        .map(|c| {
            ["command", "args"]
                .iter()
                .filter_map(|k| c.get(*k).and_then(Value::as_array))
                .flatten()
                .filter_map(Value::as_str)
                .flat_map(|s| s.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
                .collect()
        })
        .unwrap_or_default();
    let Some(cp) = words.iter().position(|w| w == "cp") else {
        return Vec::new();
    };
    let operands: Vec<&String> = words[cp + 1..]
        .iter()
        .filter(|w| !w.starts_with('-'))
        .take(2)
        .collect();
    match operands.as_slice() {
        [source, destination] => vec![format!(
            "download: {} to {}",
            source.trim_matches(|c| c == '"' || c == '\'' || c == ';'),
            destination.trim_matches(|c| c == '"' || c == '\'' || c == ';' || c == '&')
        )],
        _ => Vec::new(),
    }
}

fn jobmanager_startup_log(plan: &Plan, name: &str) -> Vec<String> {
    let entrypoint = "org.apache.flink.runtime.entrypoint.ClusterEntrypoint";
    let mut lines = vec![
        flink_log_line(
            entrypoint,
            "--------------------------------------------------------------------------------",
        ),
        flink_log_line(
            entrypoint,
            &format!(
                " Starting KubernetesApplicationClusterEntrypoint (Version: {}, Scala: 2.12)",
                plan.flink_version
            ),
        ),
        flink_log_line(
            entrypoint,
            &format!(" Program Arguments: {}", plan.args.join(" ")),
        ),
        flink_log_line(
            entrypoint,
            "--------------------------------------------------------------------------------",
        ),
        flink_log_line(
            "org.apache.flink.configuration.GlobalConfiguration",
            &format!("Loading configuration property: kubernetes.cluster-id, {name}"),
        ),
    ];
    if !plan.jar_uri.is_empty() {
        lines.push(flink_log_line(
            "org.apache.flink.configuration.GlobalConfiguration",
            &format!(
                "Loading configuration property: pipeline.jars, {}",
                plan.jar_uri
            ),
        ));
    }
    lines.push(flink_log_line(
        "org.apache.flink.client.deployment.application.ApplicationDispatcherBootstrap",
        &format!(
            "Submitting application with entry class {} and arguments [{}] (parallelism {})",
            plan.entry_class,
            plan.args.join(", "),
            plan.parallelism
        ),
    ));
    lines
}

/// The pod states the kubelet reports.
enum PodState<'a> {
    /// Init containers running (or the main container being created).
    Initializing,
    /// An init container exited 1; with `backoff`, it is waiting in CrashLoopBackOff.
    InitFailed {
        container: &'a str,
        message: &'a str,
        backoff: bool,
    },
    /// The main container's image cannot be pulled.
    ImagePull { backoff: bool, message: &'a str },
    /// The main container runs.
    Running { ready: bool },
}

fn set_pod_state(shared: &Shared, pod: &Value, state: PodState<'_>) -> Result<(), Stop> {
    let now = meta::now_rfc3339();
    let inits = meta::container_names(pod, "initContainers");
    let mains = meta::container_names(pod, "containers");
    let image_of = |list: &str, name: &str| {
        find_container(pod, list, name)
            .and_then(|c| c.get("image"))
            .cloned()
            .unwrap_or(Value::Null)
    };
    let init_status = |name: &str, state: Value, restarts: i64, last: Value| json!({"name": name, "image": image_of("initContainers", name), "ready": false, "restartCount": restarts, "state": state, "lastState": last});
    let main_status = |name: &str, state: Value, ready: bool| json!({"name": name, "image": image_of("containers", name), "ready": ready, "started": state.get("running").is_some(), "restartCount": 0, "state": state, "lastState": {}});
    let completed = json!({"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": now, "finishedAt": now}});
    let (phase, initialized, ready, init_statuses, main_statuses) = match state {
        PodState::Initializing => {
            let main_state = json!({"waiting": {"reason": if inits.is_empty() { "ContainerCreating" } else { "PodInitializing" }}});
            (
                "Pending",
                inits.is_empty(),
                false,
                inits
                    .iter()
                    .map(|n| init_status(n, json!({"running": {"startedAt": now}}), 0, json!({})))
                    .collect::<Vec<_>>(),
                mains
                    .iter()
                    .map(|n| main_status(n, main_state.clone(), false))
                    .collect::<Vec<_>>(),
            )
        }
        PodState::InitFailed {
            container,
            message,
            backoff,
        } => {
            let failed = json!({"terminated": {"exitCode": 1, "reason": "Error", "message": message, "startedAt": now, "finishedAt": now}});
            let init_statuses = inits
                .iter()
                .map(|n| {
                    if n != container {
                        init_status(n, json!({"waiting": {"reason": "PodInitializing"}}), 0, json!({}))
                    } else if backoff {
                        let waiting = json!({"waiting": {"reason": "CrashLoopBackOff", "message": format!("back-off 10s restarting failed container={container} pod={}", meta::name(pod))}});
                        init_status(n, waiting, 1, failed.clone())
                    } else {
                        init_status(n, failed.clone(), 0, json!({}))
                    }
                })
                .collect();
            let main_state = json!({"waiting": {"reason": "PodInitializing"}});
            (
                "Pending",
                false,
                false,
                init_statuses,
                mains
                    .iter()
                    .map(|n| main_status(n, main_state.clone(), false))
                    .collect(),
            )
        }
        PodState::ImagePull { backoff, message } => {
            let reason = if backoff {
                "ImagePullBackOff"
            } else {
                "ErrImagePull"
            };
            let waiting = json!({"waiting": {"reason": reason, "message": message}});
            (
                "Pending",
                true,
                false,
                inits
                    .iter()
                    .map(|n| init_status(n, completed.clone(), 0, json!({})))
                    .collect(),
                mains
                    .iter()
                    .map(|n| {
                        if n == MAIN_CONTAINER {
                            main_status(n, waiting.clone(), false)
                        } else {
                            main_status(n, json!({"running": {"startedAt": now}}), true)
                        }
                    })
                    .collect(),
            )
        }
        PodState::Running { ready } => (
            "Running",
            true,
            ready,
            inits
                .iter()
                .map(|n| init_status(n, completed.clone(), 0, json!({})))
                .collect(),
            mains
                .iter()
                .map(|n| main_status(n, json!({"running": {"startedAt": now}}), ready))
                .collect(),
        ),
    };
    let condition = |kind: &str, value: bool| json!({"type": kind, "status": if value { "True" } else { "False" }, "lastTransitionTime": now});
    let mut status = json!({
        "phase": phase,
        "conditions": [condition("PodScheduled", true), condition("Initialized", initialized), condition("ContainersReady", ready), condition("Ready", ready)],
        "hostIP": "10.0.0.10",
        "podIP": "10.244.0.20",
        "startTime": meta::meta_str(pod, "creationTimestamp").unwrap_or(&now),
        "qosClass": "Guaranteed",
        "containerStatuses": main_statuses,
    });
    if !init_statuses.is_empty() {
        status["initContainerStatuses"] = Value::Array(init_statuses);
    }
    let (ns, name) = (meta::namespace(pod).to_owned(), meta::name(pod).to_owned());
    let mut map = Map::new();
    map.insert("status".into(), status);
    put(
        shared,
        &PODS,
        &ns,
        &name,
        Part::Status,
        "kubelet",
        Value::Object(map),
    )
}

fn set_deployment_status(
    shared: &Shared,
    ns: &str,
    name: &str,
    available: bool,
) -> Result<(), Stop> {
    let deployment = shared.api.get(&DEPLOYMENTS, ns, name)?;
    let ready = i64::from(available);
    let now = meta::now_rfc3339();
    put_deployment_status(
        shared,
        ns,
        name,
        json!({
            "observedGeneration": meta::generation(&deployment),
            "replicas": 1,
            "updatedReplicas": 1,
            "readyReplicas": ready,
            "availableReplicas": ready,
            "unavailableReplicas": 1 - ready,
            "conditions": [
                {"type": "Available", "status": if available { "True" } else { "False" }, "reason": if available { "MinimumReplicasAvailable" } else { "MinimumReplicasUnavailable" }, "lastUpdateTime": now, "lastTransitionTime": now},
                {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable", "lastUpdateTime": now, "lastTransitionTime": now},
            ],
        }),
    )
}

/// Writes a Deployment's `status`, as the kube-controller-manager does.
fn put_deployment_status(shared: &Shared, ns: &str, name: &str, status: Value) -> Result<(), Stop> {
    put(
        shared,
        &DEPLOYMENTS,
        ns,
        name,
        Part::Status,
        "kube-controller-manager",
        json!({ "status": status }),
    )
}

/// The operator's cleanup of a deleted FlinkDeployment: delete the cluster, then release
/// the finalizer so the deletion completes.
async fn cleanup(shared: &Shared, target: &Target) -> Result<(), Stop> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flink_memory_sizes_become_mebibytes() {
        assert_eq!(flink_memory_mebibytes("2048m"), Some(2048));
        assert_eq!(flink_memory_mebibytes("2g"), Some(2048));
        assert_eq!(flink_memory_mebibytes("1024 mb"), Some(1024));
        assert_eq!(flink_memory_mebibytes("lots"), None);
        assert_eq!(
            resources(Some(&json!({"cpu": 1.0, "memory": "2048m"})))["limits"],
            json!({"cpu": "1", "memory": "2048Mi"})
        );
    }

    #[test]
    fn the_fetch_log_names_source_and_destination() {
        let container = json!({"name": "fetch", "command": ["aws", "s3", "cp"], "args": ["s3://bucket/jobs/job.py", "/opt/flink/usrlib/job.py"]});
        assert_eq!(
            fetch_log(Some(&container)),
            ["download: s3://bucket/jobs/job.py to /opt/flink/usrlib/job.py"]
        );
        let shell = json!({"command": ["sh", "-c", "aws s3 cp s3://b/k.py /opt/flink/usrlib/k.py && sha256sum -c"]});
        assert_eq!(
            fetch_log(Some(&shell)),
            ["download: s3://b/k.py to /opt/flink/usrlib/k.py"]
        );
        assert!(fetch_log(Some(&json!({"command": ["true"]}))).is_empty());
    }

    #[test]
    fn role_templates_merge_over_the_common_one_by_container_name() {
        let base = json!({"spec": {"containers": [{"name": "flink-main-container", "env": [{"name": "A"}]}]}});
        let role = json!({"metadata": {"labels": {"x": "y"}}, "spec": {
            "containers": [{"name": "flink-main-container", "volumeMounts": [{"name": "usrlib"}]}],
            "initContainers": [{"name": "fetch"}]}});
        let merged = merge_templates(&base, Some(&role));
        assert_eq!(merged["spec"]["containers"][0]["env"][0]["name"], "A");
        assert_eq!(
            merged["spec"]["containers"][0]["volumeMounts"][0]["name"],
            "usrlib"
        );
        assert_eq!(merged["spec"]["initContainers"][0]["name"], "fetch");
        assert_eq!(merged["metadata"]["labels"]["x"], "y");
    }

    #[test]
    fn hashes_are_stable_and_dns_safe() {
        assert_eq!(short_hash("a"), short_hash("a"));
        assert_ne!(short_hash("a"), short_hash("b"));
        assert_eq!(short_hash("a").len(), 10);
    }
}

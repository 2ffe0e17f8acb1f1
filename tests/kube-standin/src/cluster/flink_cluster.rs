//! What Flink's native Kubernetes mode creates for a FlinkDeployment, as the operator's
//! deployment of it does (Flink's `KubernetesClusterDescriptor` and resource manager): the
//! ConfigMap `flink-config-<name>`, the REST Service `<name>-rest`, the JobManager Deployment
//! `<name>` from the merged pod templates, the TaskManager pod `<name>-taskmanager-1-1`; and
//! what the JobManager and TaskManager processes print to their logs.

use std::time::Duration;

use serde_json::{Value, json};

use super::flink_operator::{MANAGER, Target};
use super::kubelet::{PodState, set_pod_state};
use super::pod_identity_webhook::inject_irsa;
use super::scheduler;
use super::{MAIN_CONTAINER, Stop, delete_quietly, owner_reference, put};
use crate::Shared;
use crate::apply::Part;
use crate::faults::{Fault, JOB_OUTPUT_ANNOTATION};
use crate::logs::ContainerRun;
use crate::meta;
use crate::patch::merge_patch;
use crate::resources::{CONFIG_MAPS, DEPLOYMENTS, PODS, SERVICES};

/// What the operator derives from a FlinkDeployment's spec.
pub(super) struct ClusterSpec {
    pub(super) spec: Value,
    pub(super) image: String,
    image_pull_policy: String,
    pub(super) service_account: String,
    pub(super) flink_version: String,
    entry_class: String,
    jar_uri: String,
    args: Vec<String>,
    parallelism: i64,
    pub(super) template_hash: String,
    jm_template: Value,
    tm_template: Value,
    jm_resources: Value,
    tm_resources: Value,
    pub(super) job_output: Vec<String>,
    faults: Vec<Fault>,
}

impl ClusterSpec {
    pub(super) fn new(shared: &Shared, fd: &Value, target: &Target) -> ClusterSpec {
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
        ClusterSpec {
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

    pub(super) fn delay(&self, shared: &Shared) -> Duration {
        self.faults
            .iter()
            .find_map(|f| match f {
                Fault::SlowTransitions { millis } => Some(Duration::from_millis(*millis)),
                _ => None,
            })
            .unwrap_or(shared.config.transition_delay)
    }

    pub(super) fn fault(&self, wanted: fn(&Fault) -> bool) -> Option<&Fault> {
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

pub(super) fn flink_log_line(logger: &str, message: &str) -> String {
    let now = jiff::Timestamp::now().strftime("%Y-%m-%d %H:%M:%S,%3f");
    format!("{now} INFO  {logger} [] - {message}")
}

pub(super) fn remove_old_pods(shared: &Shared, ns: &str, name: &str, hash: &str) {
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
pub(super) fn deploy_cluster_objects(
    shared: &Shared,
    fd: &Value,
    cluster: &ClusterSpec,
) -> Result<(), Stop> {
    let (ns, name) = (meta::namespace(fd), meta::name(fd));
    let fd_owner = owner_reference(
        "flink.apache.org/v1beta1",
        "FlinkDeployment",
        name,
        meta::uid(fd),
    );
    let selector = flink_labels(name, "jobmanager");
    let pod_spec = jobmanager_pod_spec(shared, ns, name, cluster);
    let mut template_labels = selector.clone();
    if let Some(extra) = meta::get_path(&cluster.jm_template, &["metadata", "labels"]) {
        merge_patch(&mut template_labels, extra);
    }
    let template_annotations = meta::get_path(&cluster.jm_template, &["metadata", "annotations"])
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
    let config: Vec<String> = meta::get_path(&cluster.spec, &["flinkConfiguration"])
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
fn jobmanager_pod_spec(shared: &Shared, ns: &str, name: &str, cluster: &ClusterSpec) -> Value {
    pod_spec(
        shared,
        ns,
        name,
        cluster,
        &cluster.jm_template,
        &cluster.jm_resources,
        "kubernetes-jobmanager.sh kubernetes-application",
    )
}

fn pod_spec(
    shared: &Shared,
    ns: &str,
    name: &str,
    cluster: &ClusterSpec,
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
    main["image"] = json!(cluster.image);
    main["imagePullPolicy"] = json!(cluster.image_pull_policy);
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
    spec["serviceAccountName"] = json!(cluster.service_account);
    spec["serviceAccount"] = json!(cluster.service_account);
    spec["restartPolicy"] = json!("Always");
    inject_irsa(shared, ns, &cluster.service_account, &mut spec);
    spec
}

pub(super) fn create_taskmanager_pod(
    shared: &Shared,
    fd: &Value,
    deployment: &Value,
    cluster: &ClusterSpec,
) -> Result<(), Stop> {
    let (ns, name) = (meta::namespace(fd), meta::name(fd));
    let pod_name = format!("{name}-taskmanager-1-1");
    let mut spec = pod_spec(
        shared,
        ns,
        name,
        cluster,
        &cluster.tm_template,
        &cluster.tm_resources,
        "kubernetes-taskmanager.sh",
    );
    let nodes = scheduler::nodes(&shared.api);
    if let Ok(node) = scheduler::choose_node(&nodes, &json!({"spec": spec})) {
        spec["nodeName"] = json!(node);
    }
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

pub(super) fn jobmanager_startup_log(cluster: &ClusterSpec, name: &str) -> Vec<String> {
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
                cluster.flink_version
            ),
        ),
        flink_log_line(
            entrypoint,
            &format!(" Program Arguments: {}", cluster.args.join(" ")),
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
    if !cluster.jar_uri.is_empty() {
        lines.push(flink_log_line(
            "org.apache.flink.configuration.GlobalConfiguration",
            &format!(
                "Loading configuration property: pipeline.jars, {}",
                cluster.jar_uri
            ),
        ));
    }
    lines.push(flink_log_line(
        "org.apache.flink.client.deployment.application.ApplicationDispatcherBootstrap",
        &format!(
            "Submitting application with entry class {} and arguments [{}] (parallelism {})",
            cluster.entry_class,
            cluster.args.join(", "),
            cluster.parallelism
        ),
    ));
    lines
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

//! The cluster's nodes and kube-scheduler's part: a pod goes to a Ready, schedulable node whose
//! labels match its `nodeSelector`; when none does it stays Pending with the scheduler's
//! `Unschedulable` condition and a `FailedScheduling` Warning Event.

use serde_json::{Value, json};

use crate::api::{ApiServer, WriteOptions};
use crate::error::ApiError;
use crate::meta;
use crate::resources::NODES;

/// The default nodes' platforms: two `linux/amd64` nodes.
pub(crate) fn default_platforms() -> Vec<String> {
    vec!["linux/amd64".to_owned(), "linux/amd64".to_owned()]
}

/// A node as an EKS managed node group registers it, for a platform `os/arch`.
pub(crate) fn node(index: usize, platform: &str) -> Value {
    let (os, arch) = platform.split_once('/').unwrap_or(("linux", platform));
    let name = format!(
        "ip-10-0-{}-{}.eu-west-1.compute.internal",
        index / 250,
        10 + index % 250
    );
    let instance_type = if arch == "arm64" {
        "m6g.xlarge"
    } else {
        "m5.xlarge"
    };
    let now = meta::now_rfc3339();
    let condition = |kind: &str, status: &str, reason: &str, message: &str| {
        json!({"type": kind, "status": status, "reason": reason, "message": message,
            "lastHeartbeatTime": now, "lastTransitionTime": now})
    };
    json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {
                "kubernetes.io/arch": arch,
                "kubernetes.io/os": os,
                "beta.kubernetes.io/arch": arch,
                "beta.kubernetes.io/os": os,
                "kubernetes.io/hostname": name,
                "node.kubernetes.io/instance-type": instance_type,
                "topology.kubernetes.io/region": "eu-west-1",
                "eks.amazonaws.com/nodegroup": "default",
            },
        },
        "spec": {"providerID": format!("aws:///eu-west-1a/i-0{index:016x}")},
        "status": {
            "conditions": [
                condition("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
                condition("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
                condition("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
                condition("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
            ],
            "addresses": [{"type": "InternalIP", "address": format!("10.0.{}.{}", index / 250, 10 + index % 250)},
                {"type": "Hostname", "address": name}],
            "capacity": {"cpu": "4", "memory": "16005876Ki", "pods": "58"},
            "allocatable": {"cpu": "3920m", "memory": "15316724Ki", "pods": "58"},
            "nodeInfo": {"architecture": arch, "operatingSystem": os, "osImage": "Amazon Linux 2023",
                "kubeletVersion": "v1.33.0-eks-802817d", "kubeProxyVersion": "v1.33.0-eks-802817d",
                "containerRuntimeVersion": "containerd://1.7.27", "kernelVersion": "6.1.132-147.221.amzn2023.x86_64"},
        },
    })
}

/// Registers the nodes of the given platforms.
pub(crate) fn create_nodes(api: &ApiServer, platforms: &[String]) -> Result<(), ApiError> {
    let kubelet = WriteOptions::internal("kubelet");
    for (index, platform) in platforms.iter().enumerate() {
        api.create(&NODES, "", node(index, platform), &kubelet)?;
    }
    Ok(())
}

/// Every registered node, as the scheduler's informer sees them.
pub(crate) fn nodes(api: &ApiServer) -> Vec<Value> {
    api.store
        .tx()
        .list(&NODES, None)
        .iter()
        .map(|n| (**n).clone())
        .collect()
}

fn is_ready(node: &Value) -> bool {
    meta::get_path(node, &["status", "conditions"])
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
}

/// The node the scheduler puts the pod on, or the scheduler's message when none fits
/// (`0/2 nodes are available: 2 node(s) didn't match Pod's node affinity/selector. ...`).
pub(crate) fn choose_node(nodes: &[Value], pod: &Value) -> Result<String, String> {
    if nodes.is_empty() {
        return Err("no nodes available to schedule pods".to_owned());
    }
    let selector = meta::get_path(pod, &["spec", "nodeSelector"]).and_then(Value::as_object);
    let (mut unschedulable, mut not_ready, mut mismatched) = (0, 0, 0);
    for node in nodes {
        if node.pointer("/spec/unschedulable") == Some(&Value::Bool(true)) {
            unschedulable += 1;
        } else if !is_ready(node) {
            not_ready += 1;
        } else if selector
            .is_some_and(|s| s.iter().any(|(k, v)| meta::label(node, k) != v.as_str()))
        {
            mismatched += 1;
        } else {
            return Ok(meta::name(node).to_owned());
        }
    }
    let total = nodes.len();
    let mut reasons = Vec::new();
    if mismatched > 0 {
        reasons.push(format!(
            "{mismatched} node(s) didn't match Pod's node affinity/selector"
        ));
    }
    if not_ready > 0 {
        reasons.push(format!(
            "{not_ready} node(s) had untolerated taint {{node.kubernetes.io/not-ready: }}"
        ));
    }
    if unschedulable > 0 {
        reasons.push(format!("{unschedulable} node(s) were unschedulable"));
    }
    Err(format!(
        "0/{total} nodes are available: {}. preemption: 0/{total} nodes are available: {total} Preemption is not helpful for scheduling.",
        reasons.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(selector: Value) -> Value {
        json!({"spec": {"nodeSelector": selector}})
    }

    #[test]
    fn pods_go_to_nodes_matching_their_selector() {
        let nodes = vec![node(0, "linux/amd64"), node(1, "linux/arm64")];
        assert_eq!(
            choose_node(&nodes, &pod(json!({"kubernetes.io/arch": "arm64"}))),
            Ok(meta::name(&nodes[1]).to_owned())
        );
        assert_eq!(
            choose_node(&nodes, &json!({"spec": {}})),
            Ok(meta::name(&nodes[0]).to_owned())
        );
        let amd = vec![node(0, "linux/amd64"), node(1, "linux/amd64")];
        assert_eq!(
            choose_node(&amd, &pod(json!({"kubernetes.io/arch": "arm64", "kubernetes.io/os": "linux"}))),
            Err("0/2 nodes are available: 2 node(s) didn't match Pod's node affinity/selector. preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling.".to_owned())
        );
        let mut cordoned = node(0, "linux/arm64");
        cordoned["spec"]["unschedulable"] = json!(true);
        let message = choose_node(
            &[cordoned, node(1, "linux/amd64")],
            &pod(json!({"kubernetes.io/arch": "arm64"})),
        );
        assert_eq!(
            message,
            Err("0/2 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, 1 node(s) were unschedulable. preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling.".to_owned())
        );
        assert!(choose_node(&[], &json!({})).is_err());
    }

    #[test]
    fn nodes_carry_their_platform() {
        let arm = node(3, "linux/arm64");
        assert_eq!(meta::label(&arm, "kubernetes.io/arch"), Some("arm64"));
        assert_eq!(meta::label(&arm, "kubernetes.io/os"), Some("linux"));
        assert_eq!(arm["status"]["nodeInfo"]["architecture"], "arm64");
        assert!(is_ready(&arm));
    }
}

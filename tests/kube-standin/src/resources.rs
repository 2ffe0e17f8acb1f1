//! The resources the stand-in serves, with what discovery says about each.

/// One resource type (a group/version/resource), as discovery describes it.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct ResourceDef {
    /// API group; empty for the core group.
    pub(crate) group: &'static str,
    /// API version within the group.
    pub(crate) version: &'static str,
    /// Plural resource name, as in URLs.
    pub(crate) plural: &'static str,
    /// Singular name, for discovery.
    pub(crate) singular: &'static str,
    /// Kind of the objects.
    pub(crate) kind: &'static str,
    /// Whether objects live in a namespace.
    pub(crate) namespaced: bool,
    /// Short names kubectl accepts (`po`, `deploy`, `flinkdep`).
    pub(crate) short_names: &'static [&'static str],
    /// Categories (`all`).
    pub(crate) categories: &'static [&'static str],
    /// Whether the resource has a `status` subresource: writes to the main resource keep
    /// the stored status, writes to `/status` change nothing else.
    pub(crate) status_subresource: bool,
    /// Whether the resource has the `log` subresource (pods).
    pub(crate) log_subresource: bool,
    /// Whether objects carry `metadata.generation`, bumped when anything but metadata and
    /// status changes.
    pub(crate) has_generation: bool,
    /// Whether objects are validated against the operator's CRD of their kind.
    pub(crate) custom: bool,
}

impl ResourceDef {
    /// `v1` for the core group, `group/version` otherwise.
    pub(crate) fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_owned()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `pods`, `deployments.apps`: the resource as error messages name it.
    pub(crate) fn group_resource(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_owned()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// The object's key in etcd, as storage errors name it: `/registry/pods/default/x`;
    /// custom resources under their group, `/registry/flink.apache.org/flinkdeployments/...`.
    pub(crate) fn storage_key(&self, namespace: &str, name: &str) -> String {
        let resource = match (self.custom, self.plural) {
            (true, plural) => format!("{}/{plural}", self.group),
            (false, "services") => "services/specs".to_owned(),
            (false, plural) => plural.to_owned(),
        };
        if self.namespaced {
            format!("/registry/{resource}/{namespace}/{name}")
        } else {
            format!("/registry/{resource}/{name}")
        }
    }

    /// Whether this is an access review (create only, answered, never stored).
    pub(crate) fn is_review(&self) -> bool {
        self.group == AUTHORIZATION_GROUP
    }

    /// `Pod`, `FlinkDeployment.flink.apache.org`: the kind as validation errors name it.
    pub(crate) fn qualified_kind(&self) -> String {
        if self.group.is_empty() {
            self.kind.to_owned()
        } else {
            format!("{}.{}", self.kind, self.group)
        }
    }

    /// The verbs discovery lists for the resource.
    pub(crate) fn verbs(&self) -> &'static [&'static str] {
        if self.is_review() {
            return &["create"];
        }
        &READ_WRITE_VERBS
    }
}

/// Every verb of a stored resource, as discovery lists them (sorted).
pub(crate) const READ_WRITE_VERBS: [&str; 8] = [
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

/// core/v1 namespaces (cluster-scoped).
pub(crate) static NAMESPACES: ResourceDef = ResourceDef {
    group: "",
    version: "v1",
    plural: "namespaces",
    singular: "namespace",
    kind: "Namespace",
    namespaced: false,
    short_names: &["ns"],
    categories: &[],
    status_subresource: true,
    log_subresource: false,
    has_generation: false,
    custom: false,
};

/// core/v1 serviceaccounts.
pub(crate) static SERVICE_ACCOUNTS: ResourceDef = ResourceDef {
    group: "",
    version: "v1",
    plural: "serviceaccounts",
    singular: "serviceaccount",
    kind: "ServiceAccount",
    namespaced: true,
    short_names: &["sa"],
    categories: &[],
    status_subresource: false,
    log_subresource: false,
    has_generation: false,
    custom: false,
};

/// core/v1 pods, with `status` and `log`.
pub(crate) static PODS: ResourceDef = ResourceDef {
    group: "",
    version: "v1",
    plural: "pods",
    singular: "pod",
    kind: "Pod",
    namespaced: true,
    short_names: &["po"],
    categories: &["all"],
    status_subresource: true,
    log_subresource: true,
    has_generation: false,
    custom: false,
};

/// core/v1 events.
pub(crate) static EVENTS: ResourceDef = ResourceDef {
    group: "",
    version: "v1",
    plural: "events",
    singular: "event",
    kind: "Event",
    namespaced: true,
    short_names: &["ev"],
    categories: &[],
    status_subresource: false,
    log_subresource: false,
    has_generation: false,
    custom: false,
};

/// core/v1 services (the operator creates `<name>-rest`).
pub(crate) static SERVICES: ResourceDef = ResourceDef {
    group: "",
    version: "v1",
    plural: "services",
    singular: "service",
    kind: "Service",
    namespaced: true,
    short_names: &["svc"],
    categories: &["all"],
    status_subresource: true,
    log_subresource: false,
    has_generation: false,
    custom: false,
};

/// core/v1 configmaps (the operator creates `flink-config-<name>`).
pub(crate) static CONFIG_MAPS: ResourceDef = ResourceDef {
    group: "",
    version: "v1",
    plural: "configmaps",
    singular: "configmap",
    kind: "ConfigMap",
    namespaced: true,
    short_names: &["cm"],
    categories: &[],
    status_subresource: false,
    log_subresource: false,
    has_generation: false,
    custom: false,
};

/// apps/v1 deployments.
pub(crate) static DEPLOYMENTS: ResourceDef = ResourceDef {
    group: "apps",
    version: "v1",
    plural: "deployments",
    singular: "deployment",
    kind: "Deployment",
    namespaced: true,
    short_names: &["deploy"],
    categories: &["all"],
    status_subresource: true,
    log_subresource: false,
    has_generation: true,
    custom: false,
};

/// flink.apache.org/v1beta1 flinkdeployments, validated against the operator's CRD.
pub(crate) static FLINK_DEPLOYMENTS: ResourceDef = ResourceDef {
    group: "flink.apache.org",
    version: "v1beta1",
    plural: "flinkdeployments",
    singular: "flinkdeployment",
    kind: "FlinkDeployment",
    namespaced: true,
    short_names: &["flinkdep"],
    categories: &[],
    status_subresource: true,
    log_subresource: false,
    has_generation: true,
    custom: true,
};

/// flink.apache.org/v1beta1 flinkstatesnapshots (operator 1.10+), validated against the
/// operator's FlinkStateSnapshot CRD.
pub(crate) static FLINK_STATE_SNAPSHOTS: ResourceDef = ResourceDef {
    group: "flink.apache.org",
    version: "v1beta1",
    plural: "flinkstatesnapshots",
    singular: "flinkstatesnapshot",
    kind: "FlinkStateSnapshot",
    namespaced: true,
    short_names: &["flinksnp"],
    categories: &[],
    status_subresource: true,
    log_subresource: false,
    has_generation: true,
    custom: true,
};

/// core/v1 nodes (cluster-scoped), with `status`.
pub(crate) static NODES: ResourceDef = ResourceDef {
    group: "",
    version: "v1",
    plural: "nodes",
    singular: "node",
    kind: "Node",
    namespaced: false,
    short_names: &["no"],
    categories: &[],
    status_subresource: true,
    log_subresource: false,
    has_generation: false,
    custom: false,
};

/// The RBAC API group.
pub(crate) const RBAC_GROUP: &str = "rbac.authorization.k8s.io";
/// The access reviews' API group.
pub(crate) const AUTHORIZATION_GROUP: &str = "authorization.k8s.io";

/// A `group`/v1 resource with none of the extras: no short names, categories,
/// subresources or generation.
const fn plain_v1(
    group: &'static str,
    plural: &'static str,
    singular: &'static str,
    kind: &'static str,
    namespaced: bool,
) -> ResourceDef {
    ResourceDef {
        group,
        version: "v1",
        plural,
        singular,
        kind,
        namespaced,
        short_names: &[],
        categories: &[],
        status_subresource: false,
        log_subresource: false,
        has_generation: false,
        custom: false,
    }
}

/// An rbac.authorization.k8s.io/v1 resource.
const fn rbac(
    plural: &'static str,
    singular: &'static str,
    kind: &'static str,
    namespaced: bool,
) -> ResourceDef {
    plain_v1(RBAC_GROUP, plural, singular, kind, namespaced)
}

/// rbac.authorization.k8s.io/v1 roles.
pub(crate) static ROLES: ResourceDef = rbac("roles", "role", "Role", true);
/// rbac.authorization.k8s.io/v1 rolebindings.
pub(crate) static ROLE_BINDINGS: ResourceDef =
    rbac("rolebindings", "rolebinding", "RoleBinding", true);
/// rbac.authorization.k8s.io/v1 clusterroles.
pub(crate) static CLUSTER_ROLES: ResourceDef =
    rbac("clusterroles", "clusterrole", "ClusterRole", false);
/// rbac.authorization.k8s.io/v1 clusterrolebindings.
pub(crate) static CLUSTER_ROLE_BINDINGS: ResourceDef = rbac(
    "clusterrolebindings",
    "clusterrolebinding",
    "ClusterRoleBinding",
    false,
);

/// An authorization.k8s.io/v1 access review: create only, never stored.
const fn review(plural: &'static str, kind: &'static str, namespaced: bool) -> ResourceDef {
    plain_v1(AUTHORIZATION_GROUP, plural, "", kind, namespaced)
}

/// authorization.k8s.io/v1 subjectaccessreviews.
pub(crate) static SUBJECT_ACCESS_REVIEWS: ResourceDef =
    review("subjectaccessreviews", "SubjectAccessReview", false);
/// authorization.k8s.io/v1 selfsubjectaccessreviews (what `kubectl auth can-i` sends).
pub(crate) static SELF_SUBJECT_ACCESS_REVIEWS: ResourceDef =
    review("selfsubjectaccessreviews", "SelfSubjectAccessReview", false);
/// authorization.k8s.io/v1 localsubjectaccessreviews.
pub(crate) static LOCAL_SUBJECT_ACCESS_REVIEWS: ResourceDef = review(
    "localsubjectaccessreviews",
    "LocalSubjectAccessReview",
    true,
);

/// apiextensions.k8s.io/v1 customresourcedefinitions: the operator's CRDs as its Helm chart
/// installs them.
pub(crate) static CUSTOM_RESOURCE_DEFINITIONS: ResourceDef = ResourceDef {
    group: "apiextensions.k8s.io",
    version: "v1",
    plural: "customresourcedefinitions",
    singular: "customresourcedefinition",
    kind: "CustomResourceDefinition",
    namespaced: false,
    short_names: &["crd", "crds"],
    categories: &["api-extensions"],
    status_subresource: true,
    log_subresource: false,
    has_generation: true,
    custom: false,
};

/// Every resource served, in discovery order.
pub(crate) static ALL: &[&ResourceDef] = &[
    &NAMESPACES,
    &SERVICE_ACCOUNTS,
    &PODS,
    &EVENTS,
    &SERVICES,
    &CONFIG_MAPS,
    &NODES,
    &DEPLOYMENTS,
    &FLINK_DEPLOYMENTS,
    &FLINK_STATE_SNAPSHOTS,
    &ROLES,
    &ROLE_BINDINGS,
    &CLUSTER_ROLES,
    &CLUSTER_ROLE_BINDINGS,
    &SUBJECT_ACCESS_REVIEWS,
    &SELF_SUBJECT_ACCESS_REVIEWS,
    &LOCAL_SUBJECT_ACCESS_REVIEWS,
    &CUSTOM_RESOURCE_DEFINITIONS,
];

/// The API groups served, as `(group, version)`; the core group is served under `/api`.
pub(crate) static GROUPS: &[(&str, &str)] = &[
    ("apps", "v1"),
    ("flink.apache.org", "v1beta1"),
    (RBAC_GROUP, "v1"),
    (AUTHORIZATION_GROUP, "v1"),
    ("apiextensions.k8s.io", "v1"),
];

/// Finds a served resource by group, version and plural name.
pub(crate) fn find(group: &str, version: &str, plural: &str) -> Option<&'static ResourceDef> {
    ALL.iter()
        .copied()
        .find(|r| r.group == group && r.version == version && r.plural == plural)
}

/// The resources of one group/version.
pub(crate) fn in_group_version(
    group: &str,
    version: &str,
) -> impl Iterator<Item = &'static ResourceDef> {
    let group = group.to_owned();
    let version = version.to_owned();
    ALL.iter()
        .copied()
        .filter(move |r| r.group == group && r.version == version)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_render_like_the_real_server() {
        assert_eq!(PODS.api_version(), "v1");
        assert_eq!(DEPLOYMENTS.api_version(), "apps/v1");
        assert_eq!(
            FLINK_DEPLOYMENTS.group_resource(),
            "flinkdeployments.flink.apache.org"
        );
        assert_eq!(
            FLINK_DEPLOYMENTS.qualified_kind(),
            "FlinkDeployment.flink.apache.org"
        );
        assert_eq!(PODS.qualified_kind(), "Pod");
        assert!(find("flink.apache.org", "v1beta1", "flinkdeployments").is_some());
        assert!(find("", "v1", "flinkdeployments").is_none());
    }
}

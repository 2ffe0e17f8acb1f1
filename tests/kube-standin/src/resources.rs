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
    /// Whether objects are validated against the FlinkDeployment CRD's schema.
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
        &[
            "create",
            "delete",
            "deletecollection",
            "get",
            "list",
            "patch",
            "update",
            "watch",
        ]
    }
}

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

/// Every resource served, in discovery order.
pub(crate) static ALL: [&ResourceDef; 8] = [
    &NAMESPACES,
    &SERVICE_ACCOUNTS,
    &PODS,
    &EVENTS,
    &SERVICES,
    &CONFIG_MAPS,
    &DEPLOYMENTS,
    &FLINK_DEPLOYMENTS,
];

/// The API groups served, as `(group, version)`; the core group is served under `/api`.
pub(crate) static GROUPS: [(&str, &str); 2] = [("apps", "v1"), ("flink.apache.org", "v1beta1")];

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

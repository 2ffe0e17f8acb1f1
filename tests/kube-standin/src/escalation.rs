//! The RBAC storage's escalation checks: what the API server refuses when a user who is not
//! in `system:masters` writes a Role, ClusterRole, RoleBinding or ClusterRoleBinding. Pure:
//! the caller passes the policy, the user and the objects.
//!
//! As the real server does it (verified in kubernetes/kubernetes `pkg/registry/rbac`:
//! `escalation_check.go`, `role/policybased/storage.go`, `clusterrole/policybased/storage.go`,
//! `rolebinding/policybased/storage.go`, `clusterrolebinding/policybased/storage.go`,
//! `validation/rule.go`, `validation/policy_comparator.go`, `validation/policy_compact.go`):
//! - The checks sit in the storage, after authorization, on create and on update; a patch and
//!   a server-side apply are updates (an apply that creates is an update of an empty object),
//!   so all four verbs meet them, on the object as it would be stored.
//! - Members of `system:masters` pass (`EscalationAllowed`).
//! - An update that changes only what the garbage collector needs (owner references,
//!   finalizers, the deletion timestamp) passes (`IsOnlyMutatingGCFields`).
//! - A Role or ClusterRole passes when the user may `escalate` that resource (authorized
//!   with the request's namespace and name, so a create names none), or already holds every
//!   rule it grants (`ConfirmNoEscalation`) in the request's namespace ("" for a ClusterRole:
//!   only ClusterRoleBindings count). A ClusterRole with an `aggregationRule` (or losing one)
//!   also needs every permission: `must have cluster-admin privileges to use the
//!   aggregationRule`.
//! - A RoleBinding or ClusterRoleBinding passes when the user may `bind` the referenced role
//!   (resource `roles` or `clusterroles`, its name, in the binding's namespace), else when it
//!   holds every rule of the referenced role; when that role does not exist the write fails
//!   with the role's 404 (`roles.rbac.authorization.k8s.io "x" not found`), since the
//!   resolver cannot read its rules (with `bind`, the role is never read and the binding is
//!   stored).
//! - "Holds" is the rule comparator's cover: every (group, resource, verb, name) atom and
//!   every (URL, verb) atom of the new rules is covered by one rule the user holds, `*` in
//!   verbs, groups and resources, `*/<subresource>`, a rule without `resourceNames` covering
//!   any name, a URL ending in `*` covering its prefix. The refusal is 403 Forbidden on the
//!   written object: `roles.rbac.authorization.k8s.io "<name>" is forbidden: user "<user>"
//!   (groups=["g" "system:authenticated"]) is attempting to grant RBAC permissions not
//!   currently held:` and then one line per missing rule, the atoms compacted per (group,
//!   resource, name) with their verbs in order, each line as `{APIGroups:["apps"],
//!   Resources:["deployments/finalizers"], Verbs:["get" "list"]}`, sorted; errors met
//!   while gathering the user's rules (a binding to a missing role) follow as `; resolution
//!   errors: [...]`. `details` name the object, the group and the plural resource.

use serde_json::{Value, json};

use crate::error::ApiError;
use crate::meta;
use crate::rbac::{Attributes, MASTERS, Policy, UserInfo, role_ref};
use crate::resources::{CLUSTER_ROLE_BINDINGS, CLUSTER_ROLES, ROLE_BINDINGS, ROLES, ResourceDef};

/// The RBAC API group.
const RBAC_GROUP: &str = "rbac.authorization.k8s.io";

/// A write of an RBAC object, as the storage sees it.
#[derive(Clone, Debug)]
pub(crate) struct RbacWrite<'a> {
    /// Who writes.
    pub(crate) user: &'a UserInfo,
    /// `roles`, `clusterroles`, `rolebindings` or `clusterrolebindings` (others pass).
    pub(crate) resource: &'static ResourceDef,
    /// The request's namespace ("" for the cluster-scoped kinds).
    pub(crate) namespace: &'a str,
    /// The name in the request's path: "" for a create.
    pub(crate) request_name: &'a str,
    /// The stored object an update replaces; `None` for a create.
    pub(crate) live: Option<&'a Value>,
    /// The object as it would be stored.
    pub(crate) new: &'a Value,
}

/// Whether the write may proceed; the real server's refusal when not.
pub(crate) fn check(policy: &Policy, write: &RbacWrite<'_>) -> Result<(), ApiError> {
    let is_role = write.resource == &ROLES || write.resource == &CLUSTER_ROLES;
    let is_binding = write.resource == &ROLE_BINDINGS || write.resource == &CLUSTER_ROLE_BINDINGS;
    if !(is_role || is_binding) || write.user.groups.iter().any(|g| g == MASTERS) {
        return Ok(());
    }
    if let Some(live) = write.live
        && only_gc_fields_change(live, write.new)
    {
        return Ok(());
    }
    if is_role {
        check_role(policy, write)
    } else {
        check_binding(policy, write)
    }
}

fn check_role(policy: &Policy, write: &RbacWrite<'_>) -> Result<(), ApiError> {
    let escalate = Attributes {
        user: write.user.clone(),
        verb: "escalate".into(),
        api_group: RBAC_GROUP.into(),
        resource: write.resource.plural.into(),
        subresource: String::new(),
        namespace: write.namespace.into(),
        name: write.request_name.into(),
    };
    if policy.authorize(&escalate).allowed {
        return Ok(());
    }
    let rules = rules_of(write.new);
    confirm_no_escalation(policy, write, &rules)?;
    let aggregates = |o: Option<&Value>| {
        o.and_then(|o| o.pointer("/aggregationRule/clusterRoleSelectors"))
            .and_then(Value::as_array)
            .is_some_and(|s| !s.is_empty())
    };
    if write.resource == &CLUSTER_ROLES && (aggregates(Some(write.new)) || aggregates(write.live)) {
        let everything = [
            json!({"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}),
            json!({"nonResourceURLs": ["*"], "verbs": ["*"]}),
        ];
        if confirm_no_escalation(policy, write, &everything).is_err() {
            return Err(forbidden(
                write,
                "must have cluster-admin privileges to use the aggregationRule",
            ));
        }
    }
    Ok(())
}

fn check_binding(policy: &Policy, write: &RbacWrite<'_>) -> Result<(), ApiError> {
    let (kind, name) = (role_ref(write.new, "kind"), role_ref(write.new, "name"));
    let role_resource = match kind {
        "Role" => &ROLES,
        "ClusterRole" => &CLUSTER_ROLES,
        other => {
            return Err(ApiError::internal(format!(
                "unsupported role reference kind: \"{other}\""
            )));
        }
    };
    let bind = Attributes {
        user: write.user.clone(),
        verb: "bind".into(),
        api_group: role_ref(write.new, "apiGroup").into(),
        resource: role_resource.plural.into(),
        subresource: String::new(),
        namespace: write.namespace.into(),
        name: name.into(),
    };
    if policy.authorize(&bind).allowed {
        return Ok(());
    }
    let role = match kind {
        "Role" => policy.role(write.namespace, name),
        _ => policy.cluster_role(name),
    };
    let role = role.ok_or_else(|| ApiError::not_found(role_resource, name))?;
    confirm_no_escalation(policy, write, &rules_of(role))
}

/// A role's `rules`.
fn rules_of(role: &Value) -> Vec<Value> {
    role.get("rules")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

/// The 403 on the written object with `message` as its cause.
fn forbidden(write: &RbacWrite<'_>, message: &str) -> ApiError {
    let name = meta::name(write.new);
    let resource = format!("{}.{RBAC_GROUP}", write.resource.plural);
    let full = if name.is_empty() {
        format!("{resource} is forbidden: {message}")
    } else {
        format!("{resource} \"{name}\" is forbidden: {message}")
    };
    ApiError::forbidden(
        full,
        json!({"name": name, "group": RBAC_GROUP, "kind": write.resource.plural}),
    )
}

/// `ConfirmNoEscalation`: every atom of `rules` is covered by a rule the user holds in the
/// request's namespace.
fn confirm_no_escalation(
    policy: &Policy,
    write: &RbacWrite<'_>,
    rules: &[Value],
) -> Result<(), ApiError> {
    let (held, errors) = policy.rules_for(write.user, write.namespace);
    let missing: Vec<Atom> = rules
        .iter()
        .flat_map(breakdown)
        .filter(|atom| !held.iter().any(|rule| covers(rule, atom)))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let mut lines: Vec<String> = compact(&missing).iter().map(Atom::describe).collect();
    lines.sort();
    lines.dedup();
    let mut message = format!(
        "user \"{}\" (groups={}) is attempting to grant RBAC permissions not currently held:\n{}",
        write.user.name,
        go_quoted(&write.user.groups),
        lines.join("\n")
    );
    if !errors.is_empty() {
        let aggregate = if errors.len() == 1 {
            errors[0].clone()
        } else {
            format!("[{}]", errors.join(", "))
        };
        message.push_str(&format!("; resolution errors: [{aggregate}]"));
    }
    Err(forbidden(write, &message))
}

/// One permission: a verb on one group's resource (and name), or on one URL; after
/// compaction, several verbs.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Atom {
    group: Option<String>,
    resource: Option<String>,
    name: Option<String>,
    url: Option<String>,
    verbs: Vec<String>,
}

impl Atom {
    /// `rbacv1helpers.CompactString`: the non-empty fields, Go-quoted.
    fn describe(&self) -> String {
        let mut parts = Vec::new();
        let one = |v: &Option<String>| v.iter().cloned().collect::<Vec<_>>();
        if self.group.is_some() {
            parts.push(format!("APIGroups:{}", go_quoted(&one(&self.group))));
        }
        if self.resource.is_some() {
            parts.push(format!("Resources:{}", go_quoted(&one(&self.resource))));
        }
        if self.url.is_some() {
            parts.push(format!("NonResourceURLs:{}", go_quoted(&one(&self.url))));
        }
        if self.name.is_some() {
            parts.push(format!("ResourceNames:{}", go_quoted(&one(&self.name))));
        }
        if !self.verbs.is_empty() {
            parts.push(format!("Verbs:{}", go_quoted(&self.verbs)));
        }
        format!("{{{}}}", parts.join(", "))
    }
}

/// Go's `%q` of a string slice: `["a" "b"]`.
fn go_quoted(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| format!("{s:?}")).collect();
    format!("[{}]", quoted.join(" "))
}

fn strings(rule: &Value, key: &str) -> Vec<String> {
    rule.get(key)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// `BreakdownRule`: group × resource × verb (× name), then URL × verb.
fn breakdown(rule: &Value) -> Vec<Atom> {
    let (groups, resources, verbs, names, urls) = (
        strings(rule, "apiGroups"),
        strings(rule, "resources"),
        strings(rule, "verbs"),
        strings(rule, "resourceNames"),
        strings(rule, "nonResourceURLs"),
    );
    let mut atoms = Vec::new();
    for group in &groups {
        for resource in &resources {
            for verb in &verbs {
                let atom = |name: Option<&String>| Atom {
                    group: Some(group.clone()),
                    resource: Some(resource.clone()),
                    name: name.cloned(),
                    url: None,
                    verbs: vec![verb.clone()],
                };
                if names.is_empty() {
                    atoms.push(atom(None));
                } else {
                    atoms.extend(names.iter().map(|n| atom(Some(n))));
                }
            }
        }
    }
    for url in &urls {
        for verb in &verbs {
            atoms.push(Atom {
                group: None,
                resource: None,
                name: None,
                url: Some(url.clone()),
                verbs: vec![verb.clone()],
            });
        }
    }
    atoms
}

/// `ruleCovers` for one atom.
fn covers(owner: &Value, atom: &Atom) -> bool {
    let has = |key: &str, value: &str| strings(owner, key).iter().any(|v| v == value);
    let verb_ok = has("verbs", "*") || atom.verbs.iter().all(|v| has("verbs", v));
    let group_ok = match &atom.group {
        Some(group) => has("apiGroups", "*") || has("apiGroups", group),
        None => true,
    };
    let resource_ok = match &atom.resource {
        Some(resource) => {
            has("resources", "*")
                || has("resources", resource)
                || resource
                    .split_once('/')
                    .is_some_and(|(_, sub)| has("resources", &format!("*/{sub}")))
        }
        None => true,
    };
    let url_ok = match &atom.url {
        Some(url) => strings(owner, "nonResourceURLs").iter().any(|o| {
            o == url
                || o.strip_suffix('*')
                    .is_some_and(|prefix| url.starts_with(prefix.trim_end_matches('*')))
        }),
        None => true,
    };
    let owner_names = strings(owner, "resourceNames");
    let name_ok = match &atom.name {
        None => owner_names.is_empty(),
        Some(name) => owner_names.is_empty() || owner_names.contains(name),
    };
    verb_ok && group_ok && resource_ok && url_ok && name_ok
}

/// `CompactRules`: resource atoms of the same group, resource and name merged, verbs in the
/// order met; URL atoms as they are.
fn compact(atoms: &[Atom]) -> Vec<Atom> {
    let mut merged: Vec<Atom> = Vec::new();
    for atom in atoms {
        let same = merged.iter_mut().find(|m| {
            atom.url.is_none()
                && m.url.is_none()
                && m.group == atom.group
                && m.resource == atom.resource
                && m.name == atom.name
        });
        match same {
            Some(m) => {
                for verb in &atom.verbs {
                    if !m.verbs.contains(verb) {
                        m.verbs.push(verb.clone());
                    }
                }
            }
            None => merged.push(atom.clone()),
        }
    }
    merged
}

/// `IsOnlyMutatingGCFields`: the new object equals the stored one once owner references,
/// finalizers and the deletion fields are taken from the stored one (and what the server
/// records itself is ignored).
fn only_gc_fields_change(live: &Value, new: &Value) -> bool {
    let strip = |o: &Value| {
        let mut o = o.clone();
        if let Some(Value::Object(m)) = o.get_mut("metadata") {
            for key in [
                "ownerReferences",
                "finalizers",
                "selfLink",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "managedFields",
                "resourceVersion",
                "generation",
            ] {
                m.remove(key);
            }
        }
        o
    };
    strip(live) == strip(new)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding(ns: &str, name: &str, kind: &str, role: &str, user: &str) -> Value {
        json!({"metadata": {"name": name, "namespace": ns},
            "roleRef": {"apiGroup": RBAC_GROUP, "kind": kind, "name": role},
            "subjects": [{"kind": "User", "name": user}]})
    }

    fn role(ns: &str, name: &str, rules: Value) -> Value {
        json!({"metadata": {"name": name, "namespace": ns}, "rules": rules})
    }

    fn cluster_role(name: &str, rules: Value) -> Value {
        json!({"metadata": {"name": name}, "rules": rules})
    }

    /// jane may manage pods and configmaps and roles in `streaming`.
    fn policy() -> Policy {
        Policy {
            cluster_roles: vec![cluster_role(
                "pods-admin",
                json!([
                    {"apiGroups": [""], "resources": ["pods", "configmaps"], "verbs": ["*"]},
                    {"apiGroups": [RBAC_GROUP], "resources": ["roles", "rolebindings"], "verbs": ["create", "update", "patch"]},
                ]),
            )],
            role_bindings: vec![binding(
                "streaming",
                "jane-admin",
                "ClusterRole",
                "pods-admin",
                "jane",
            )],
            ..Policy::default()
        }
    }

    fn jane() -> UserInfo {
        UserInfo::impersonated("jane", &["platform".into()])
    }

    fn write<'a>(
        user: &'a UserInfo,
        resource: &'static ResourceDef,
        new: &'a Value,
    ) -> RbacWrite<'a> {
        RbacWrite {
            user,
            resource,
            namespace: "streaming",
            request_name: "",
            live: None,
            new,
        }
    }

    #[test]
    fn a_role_within_the_users_rules_passes_and_one_beyond_is_refused_naming_the_rule() {
        let user = jane();
        let within = role(
            "streaming",
            "r",
            json!([{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "create"]}]),
        );
        assert!(check(&policy(), &write(&user, &ROLES, &within)).is_ok());
        let beyond = role(
            "streaming",
            "r",
            json!([{"apiGroups": ["apps"], "resources": ["deployments", "deployments/finalizers"], "verbs": ["get", "update"]},
                {"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]),
        );
        let refused = check(&policy(), &write(&user, &ROLES, &beyond)).err();
        let refused = refused.map(|e| (e.code, e.message)).unwrap_or_default();
        assert_eq!(refused.0, 403);
        assert_eq!(
            refused.1,
            "roles.rbac.authorization.k8s.io \"r\" is forbidden: user \"jane\" (groups=[\"platform\" \"system:authenticated\"]) is attempting to grant RBAC permissions not currently held:\n\
             {APIGroups:[\"apps\"], Resources:[\"deployments\"], Verbs:[\"get\" \"update\"]}\n\
             {APIGroups:[\"apps\"], Resources:[\"deployments/finalizers\"], Verbs:[\"get\" \"update\"]}"
        );
        // Elsewhere jane holds nothing.
        let mut elsewhere = write(&user, &ROLES, &within);
        elsewhere.namespace = "other";
        assert!(check(&policy(), &elsewhere).is_err());
        // Masters pass.
        let admin = UserInfo::admin();
        assert!(check(&policy(), &write(&admin, &ROLES, &beyond)).is_ok());
    }

    #[test]
    fn escalate_and_bind_let_a_user_grant_what_it_does_not_hold() {
        let user = jane();
        let beyond = role(
            "streaming",
            "r",
            json!([{"apiGroups": ["apps"], "resources": ["deployments/finalizers"], "verbs": ["update"]}]),
        );
        let mut policy = policy();
        policy.roles.push(beyond.clone());
        let to_beyond = binding("streaming", "b", "Role", "r", "someone");
        let refused = check(&policy, &write(&user, &ROLE_BINDINGS, &to_beyond)).err();
        assert_eq!(
            refused.map(|e| e.message).unwrap_or_default(),
            "rolebindings.rbac.authorization.k8s.io \"b\" is forbidden: user \"jane\" (groups=[\"platform\" \"system:authenticated\"]) is attempting to grant RBAC permissions not currently held:\n\
             {APIGroups:[\"apps\"], Resources:[\"deployments/finalizers\"], Verbs:[\"update\"]}"
        );
        let within = role(
            "streaming",
            "pods",
            json!([{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]),
        );
        policy.roles.push(within);
        let to_within = binding("streaming", "b", "Role", "pods", "someone");
        assert!(check(&policy, &write(&user, &ROLE_BINDINGS, &to_within)).is_ok());
        let to_missing = binding("streaming", "b", "Role", "gone", "someone");
        let missing = check(&policy, &write(&user, &ROLE_BINDINGS, &to_missing)).err();
        assert_eq!(
            missing.map(|e| (e.code, e.message)).unwrap_or_default(),
            (
                404,
                "roles.rbac.authorization.k8s.io \"gone\" not found".into()
            )
        );
        policy.role_bindings.push(binding(
            "streaming",
            "jane-grants",
            "ClusterRole",
            "granter",
            "jane",
        ));
        policy.cluster_roles.push(cluster_role(
            "granter",
            json!([{"apiGroups": [RBAC_GROUP], "resources": ["roles"], "verbs": ["bind", "escalate"]}]),
        ));
        assert!(check(&policy, &write(&user, &ROLES, &beyond)).is_ok());
        assert!(check(&policy, &write(&user, &ROLE_BINDINGS, &to_beyond)).is_ok());
        // `bind` skips reading the role: a binding to a missing one is stored.
        assert!(check(&policy, &write(&user, &ROLE_BINDINGS, &to_missing)).is_ok());
    }

    #[test]
    fn covering_follows_the_rule_comparator() {
        let atom = |group: &str, resource: &str, name: Option<&str>, verb: &str| Atom {
            group: Some(group.into()),
            resource: Some(resource.into()),
            name: name.map(str::to_owned),
            url: None,
            verbs: vec![verb.into()],
        };
        let any_status = json!({"apiGroups": ["*"], "resources": ["*/status"], "verbs": ["get"]});
        assert!(covers(
            &any_status,
            &atom("apps", "deployments/status", None, "get")
        ));
        assert!(!covers(
            &any_status,
            &atom("apps", "deployments", None, "get")
        ));
        let named = json!({"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["a"], "verbs": ["get"]});
        assert!(covers(&named, &atom("", "configmaps", Some("a"), "get")));
        assert!(!covers(&named, &atom("", "configmaps", None, "get")));
        let urls = json!({"nonResourceURLs": ["/api/*"], "verbs": ["get"]});
        let url = |u: &str| Atom {
            group: None,
            resource: None,
            name: None,
            url: Some(u.into()),
            verbs: vec!["get".into()],
        };
        assert!(covers(&urls, &url("/api/v1")));
        assert!(!covers(&urls, &url("/apis")));
        assert_eq!(
            url("/healthz").describe(),
            "{NonResourceURLs:[\"/healthz\"], Verbs:[\"get\"]}"
        );
    }

    #[test]
    fn an_aggregation_rule_needs_every_permission_and_gc_only_updates_pass() {
        let user = jane();
        let mut policy = policy();
        policy.cluster_role_bindings.push(binding(
            "",
            "jane-cr",
            "ClusterRole",
            "pods-admin",
            "jane",
        ));
        let aggregating = json!({"metadata": {"name": "agg"}, "rules": [],
            "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"x": "true"}}]}});
        let mut w = write(&user, &CLUSTER_ROLES, &aggregating);
        w.namespace = "";
        assert_eq!(
            check(&policy, &w)
                .err()
                .map(|e| e.message)
                .unwrap_or_default(),
            "clusterroles.rbac.authorization.k8s.io \"agg\" is forbidden: must have cluster-admin privileges to use the aggregationRule"
        );
        let live = role(
            "streaming",
            "r",
            json!([{"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["update"]}]),
        );
        let mut finalized = live.clone();
        finalized["metadata"]["finalizers"] = json!(["example.com/x"]);
        let mut update = write(&user, &ROLES, &finalized);
        update.live = Some(&live);
        assert!(check(&policy, &update).is_ok());
    }
}

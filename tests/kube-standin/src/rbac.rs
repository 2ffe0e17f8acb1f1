//! RBAC authorization as the API server's RBAC authorizer decides it: a request's attributes
//! (user, groups, verb, API group, resource, subresource, namespace, name) against the
//! Roles, ClusterRoles, RoleBindings and ClusterRoleBindings in the store. Pure: the caller
//! passes the objects, the answer is data.
//!
//! Rules match as `k8s.io/kubernetes/pkg/apis/rbac/v1` does: `*` in verbs, apiGroups and
//! resources; `pods/log` and `*/log` for subresources; `resourceNames` only for requests that
//! name an object. A RoleBinding grants a Role of its namespace or a ClusterRole within its
//! namespace; a ClusterRoleBinding grants a ClusterRole everywhere. Subjects are
//! ServiceAccounts (namespace defaulting to the binding's), Users and Groups. Members of
//! `system:masters` are allowed everything, as the real server's privileged-group authorizer
//! allows them before RBAC is asked. Only [`Policy::read`] and [`Policy::read_in`] touch the
//! store.

use serde_json::{Value, json};

use crate::error::ApiError;
use crate::meta;
use crate::resources::{CLUSTER_ROLE_BINDINGS, CLUSTER_ROLES, ROLE_BINDINGS, ROLES, ResourceDef};
use crate::store::{Store, Tx};

/// The group whose members may do anything (the kubeconfig's user is one).
pub(crate) const MASTERS: &str = "system:masters";
/// The group every authenticated user is in.
pub(crate) const AUTHENTICATED: &str = "system:authenticated";
/// The user the stand-in's kubeconfig (no credentials) is treated as.
pub(crate) const ADMIN_USER: &str = "kubernetes-admin";

/// Who makes a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct UserInfo {
    /// `system:serviceaccount:<ns>:<name>` for a service account.
    pub(crate) name: String,
    /// Its groups.
    pub(crate) groups: Vec<String>,
}

impl UserInfo {
    /// The kubeconfig's user: in `system:masters`, so allowed everything.
    pub(crate) fn admin() -> UserInfo {
        UserInfo {
            name: ADMIN_USER.to_owned(),
            groups: vec![MASTERS.to_owned(), AUTHENTICATED.to_owned()],
        }
    }

    /// A service account as its token authenticates it: the user
    /// `system:serviceaccount:<ns>:<name>` in `system:serviceaccounts`,
    /// `system:serviceaccounts:<ns>` and `system:authenticated`.
    pub(crate) fn service_account(namespace: &str, name: &str) -> UserInfo {
        UserInfo {
            name: format!("system:serviceaccount:{namespace}:{name}"),
            groups: vec![
                "system:serviceaccounts".to_owned(),
                format!("system:serviceaccounts:{namespace}"),
                AUTHENTICATED.to_owned(),
            ],
        }
    }

    /// The user an `Impersonate-User` header (with any `Impersonate-Group` headers) asks for,
    /// as the impersonation filter builds it: a service account's user name without explicit
    /// groups gets the service account's groups; every user but `system:anonymous` is in
    /// `system:authenticated`.
    pub(crate) fn impersonated(user: &str, groups: &[String]) -> UserInfo {
        if groups.is_empty()
            && let Some((ns, name)) = split_service_account(user)
        {
            return UserInfo::service_account(ns, name);
        }
        let mut groups = groups.to_vec();
        if user != "system:anonymous" && !groups.iter().any(|g| g == AUTHENTICATED) {
            groups.push(AUTHENTICATED.to_owned());
        }
        UserInfo {
            name: user.to_owned(),
            groups,
        }
    }
}

/// `system:serviceaccount:<ns>:<name>` → `(ns, name)`.
fn split_service_account(user: &str) -> Option<(&str, &str)> {
    let rest = user.strip_prefix("system:serviceaccount:")?;
    let (ns, name) = rest.split_once(':')?;
    (!ns.is_empty() && !name.is_empty() && !name.contains(':')).then_some((ns, name))
}

/// What a resource request asks to do, as the authorizer sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Attributes {
    /// Who asks.
    pub(crate) user: UserInfo,
    /// `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`, `deletecollection`.
    pub(crate) verb: String,
    /// The API group, "" for core.
    pub(crate) api_group: String,
    /// The plural resource.
    pub(crate) resource: String,
    /// `status`, `log`, or "".
    pub(crate) subresource: String,
    /// "" at the cluster scope.
    pub(crate) namespace: String,
    /// "" when the request names no object (list, create).
    pub(crate) name: String,
}

/// The authorizer's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Decision {
    /// Whether the request may proceed.
    pub(crate) allowed: bool,
    /// Why: the binding that allowed it, or the errors met while looking (a binding to a
    /// missing role), as the RBAC authorizer words them; "" when denied without errors.
    pub(crate) reason: String,
}

/// The RBAC objects of the cluster, as read from the store.
#[derive(Clone, Debug, Default)]
pub(crate) struct Policy {
    /// rbac.authorization.k8s.io/v1 Roles.
    pub(crate) roles: Vec<Value>,
    /// ClusterRoles.
    pub(crate) cluster_roles: Vec<Value>,
    /// RoleBindings.
    pub(crate) role_bindings: Vec<Value>,
    /// ClusterRoleBindings.
    pub(crate) cluster_role_bindings: Vec<Value>,
}

impl Policy {
    /// The RBAC objects in the store now.
    pub(crate) fn read(store: &Store) -> Policy {
        Policy::read_in(&store.tx())
    }

    /// The RBAC objects as a transaction sees them (for a check inside a write).
    pub(crate) fn read_in(tx: &Tx<'_>) -> Policy {
        let all = |res: &'static ResourceDef| -> Vec<Value> {
            tx.list(res, None).iter().map(|o| (**o).clone()).collect()
        };
        Policy {
            roles: all(&ROLES),
            cluster_roles: all(&CLUSTER_ROLES),
            role_bindings: all(&ROLE_BINDINGS),
            cluster_role_bindings: all(&CLUSTER_ROLE_BINDINGS),
        }
    }

    /// Decides a request.
    pub(crate) fn authorize(&self, attrs: &Attributes) -> Decision {
        if attrs.user.groups.iter().any(|g| g == MASTERS) {
            return Decision {
                allowed: true,
                reason: String::new(),
            };
        }
        let mut errors = Vec::new();
        for binding in &self.cluster_role_bindings {
            let Some(subject) = matching_subject(binding, "", &attrs.user) else {
                continue;
            };
            let role_name = meta::get_path(binding, &["roleRef", "name"])
                .and_then(Value::as_str)
                .unwrap_or("");
            match self.cluster_role(role_name) {
                Some(role) if rules_allow(role, attrs) => {
                    return Decision {
                        allowed: true,
                        reason: format!(
                            "RBAC: allowed by ClusterRoleBinding \"{}\" of ClusterRole \"{role_name}\" to {subject}",
                            meta::name(binding)
                        ),
                    };
                }
                Some(_) => {}
                None => errors.push(format!(
                    "clusterrole.rbac.authorization.k8s.io \"{role_name}\" not found"
                )),
            }
        }
        if !attrs.namespace.is_empty() {
            for binding in self
                .role_bindings
                .iter()
                .filter(|b| meta::namespace(b) == attrs.namespace)
            {
                let Some(subject) = matching_subject(binding, &attrs.namespace, &attrs.user) else {
                    continue;
                };
                let kind = meta::get_path(binding, &["roleRef", "kind"])
                    .and_then(Value::as_str)
                    .unwrap_or("");
                let role_name = meta::get_path(binding, &["roleRef", "name"])
                    .and_then(Value::as_str)
                    .unwrap_or("");
                let role = match kind {
                    "ClusterRole" => self.cluster_role(role_name),
                    _ => self.roles.iter().find(|r| {
                        meta::namespace(r) == attrs.namespace && meta::name(r) == role_name
                    }),
                };
                match role {
                    Some(role) if rules_allow(role, attrs) => {
                        return Decision {
                            allowed: true,
                            reason: format!(
                                "RBAC: allowed by RoleBinding \"{}/{}\" of {kind} \"{role_name}\" to {subject}",
                                meta::name(binding),
                                attrs.namespace
                            ),
                        };
                    }
                    Some(_) => {}
                    None => errors.push(format!(
                        "{}.rbac.authorization.k8s.io \"{role_name}\" not found",
                        kind.to_ascii_lowercase()
                    )),
                }
            }
        }
        let reason = if errors.is_empty() {
            String::new()
        } else {
            format!("RBAC: [{}]", errors.join(", "))
        };
        Decision {
            allowed: false,
            reason,
        }
    }

    /// A ClusterRole by name.
    pub(crate) fn cluster_role(&self, name: &str) -> Option<&Value> {
        self.cluster_roles.iter().find(|r| meta::name(r) == name)
    }

    /// A Role by namespace and name.
    pub(crate) fn role(&self, namespace: &str, name: &str) -> Option<&Value> {
        self.roles
            .iter()
            .find(|r| meta::namespace(r) == namespace && meta::name(r) == name)
    }

    /// Every rule `user` holds in `namespace` ("": at the cluster scope only), as the rule
    /// resolver's `RulesFor` gathers them: the ClusterRoles of the ClusterRoleBindings naming
    /// the user, then the roles of the namespace's RoleBindings naming it. Bindings to a
    /// missing role add an error instead, worded as the registry-backed getters the
    /// escalation check's resolver uses word it (`clusterroles.rbac.authorization.k8s.io "x"
    /// not found`; the authorizer's informer-backed listers say `clusterrole`). Membership in `system:masters` is not a rule: callers check it first.
    pub(crate) fn rules_for(&self, user: &UserInfo, namespace: &str) -> (Vec<Value>, Vec<String>) {
        let mut rules = Vec::new();
        let mut errors = Vec::new();
        let mut add = |role: Option<&Value>, kind: &str, name: &str| match role {
            Some(role) => rules.extend(
                role.get("rules")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .cloned(),
            ),
            None => errors.push(format!(
                "{}s.rbac.authorization.k8s.io \"{name}\" not found",
                kind.to_ascii_lowercase()
            )),
        };
        for binding in &self.cluster_role_bindings {
            if matching_subject(binding, "", user).is_some() {
                let name = role_ref(binding, "name");
                add(self.cluster_role(name), "ClusterRole", name);
            }
        }
        if !namespace.is_empty() {
            for binding in self
                .role_bindings
                .iter()
                .filter(|b| meta::namespace(b) == namespace)
            {
                if matching_subject(binding, namespace, user).is_none() {
                    continue;
                }
                let (kind, name) = (role_ref(binding, "kind"), role_ref(binding, "name"));
                let role = match kind {
                    "ClusterRole" => self.cluster_role(name),
                    _ => self.role(namespace, name),
                };
                add(role, kind, name);
            }
        }
        (rules, errors)
    }
}

/// A binding's `roleRef.<key>`, "" when missing.
pub(crate) fn role_ref<'a>(binding: &'a Value, key: &str) -> &'a str {
    meta::get_path(binding, &["roleRef", key])
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// The binding's subject that the user is, described as the RBAC authorizer does
/// (`ServiceAccount "ns/name"`, `User "x"`, `Group "g"`).
fn matching_subject(binding: &Value, binding_namespace: &str, user: &UserInfo) -> Option<String> {
    let subjects = binding.get("subjects")?.as_array()?;
    subjects.iter().find_map(|s| {
        let kind = s.get("kind").and_then(Value::as_str).unwrap_or("");
        let name = s.get("name").and_then(Value::as_str).unwrap_or("");
        match kind {
            "ServiceAccount" => {
                let ns = s
                    .get("namespace")
                    .and_then(Value::as_str)
                    .filter(|n| !n.is_empty())
                    .unwrap_or(binding_namespace);
                (!ns.is_empty() && user.name == format!("system:serviceaccount:{ns}:{name}"))
                    .then(|| format!("ServiceAccount \"{name}/{ns}\""))
            }
            "User" => (user.name == name).then(|| format!("User \"{name}\"")),
            "Group" => user
                .groups
                .iter()
                .any(|g| g == name)
                .then(|| format!("Group \"{name}\"")),
            _ => None,
        }
    })
}

/// Whether any of the role's rules allows the request.
fn rules_allow(role: &Value, attrs: &Attributes) -> bool {
    let Some(rules) = role.get("rules").and_then(Value::as_array) else {
        return false;
    };
    rules.iter().any(|rule| rule_allows(rule, attrs))
}

fn strings<'a>(rule: &'a Value, key: &str) -> Vec<&'a str> {
    rule.get(key)
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// One PolicyRule against the request, as `rbacv1helpers.RuleAllows`.
pub(crate) fn rule_allows(rule: &Value, attrs: &Attributes) -> bool {
    let verbs = strings(rule, "verbs");
    let groups = strings(rule, "apiGroups");
    let resources = strings(rule, "resources");
    let names = strings(rule, "resourceNames");
    let verb_ok = verbs.iter().any(|v| *v == "*" || *v == attrs.verb);
    let group_ok = groups.iter().any(|g| *g == "*" || *g == attrs.api_group);
    let combined = if attrs.subresource.is_empty() {
        attrs.resource.clone()
    } else {
        format!("{}/{}", attrs.resource, attrs.subresource)
    };
    let resource_ok = resources.iter().any(|r| {
        *r == "*"
            || *r == combined
            || (!attrs.subresource.is_empty()
                && r.strip_prefix("*/") == Some(attrs.subresource.as_str()))
    });
    let name_ok = names.is_empty() || names.iter().any(|n| *n == attrs.name);
    verb_ok && group_ok && resource_ok && name_ok
}

/// The 403 a denied request gets, worded as the API server's authorization filter words it:
/// `pods is forbidden: User "system:serviceaccount:ns:sa" cannot create resource "pods" in
/// API group "" in the namespace "ns"` (with `"<name>"` after the resource when the request
/// names an object, and the RBAC reason appended when there is one).
pub(crate) fn forbidden(attrs: &Attributes, reason: &str) -> ApiError {
    let mut message = forbidden_message(attrs);
    if !reason.is_empty() {
        message = format!("{message}: {reason}");
    }
    let group_resource = if attrs.api_group.is_empty() {
        attrs.resource.clone()
    } else {
        format!("{}.{}", attrs.resource, attrs.api_group)
    };
    let full = if attrs.name.is_empty() {
        format!("{group_resource} is forbidden: {message}")
    } else {
        format!(
            "{group_resource} \"{}\" is forbidden: {message}",
            attrs.name
        )
    };
    ApiError::forbidden(
        full,
        json!({"name": attrs.name, "group": attrs.api_group, "kind": attrs.resource}),
    )
}

/// `User "u" cannot <verb> resource "<resource[/sub]>" in API group "<g>" in the namespace
/// "<ns>"` (or `at the cluster scope`).
pub(crate) fn forbidden_message(attrs: &Attributes) -> String {
    let mut resource = attrs.resource.clone();
    if !attrs.subresource.is_empty() {
        resource = format!("{resource}/{}", attrs.subresource);
    }
    let scope = if attrs.namespace.is_empty() {
        "at the cluster scope".to_owned()
    } else {
        format!("in the namespace \"{}\"", attrs.namespace)
    };
    format!(
        "User \"{}\" cannot {} resource \"{resource}\" in API group \"{}\" {scope}",
        attrs.user.name, attrs.verb, attrs.api_group
    )
}

/// The answer to a SubjectAccessReview (or SelfSubjectAccessReview, LocalSubjectAccessReview)
/// body: the request echoed with `status` (`allowed`, `reason`, and `denied: false` is left
/// out as the real server leaves it out). `user` is the subject: the reviewed spec's for a
/// SubjectAccessReview, the requester's for a self review.
pub(crate) fn review(policy: &Policy, mut body: Value, user: UserInfo) -> Result<Value, ApiError> {
    let attrs = body
        .get("spec")
        .and_then(|s| s.get("resourceAttributes"))
        .cloned();
    let Some(resource) = attrs else {
        if body.pointer("/spec/nonResourceAttributes").is_some() {
            // Discovery paths are open to every authenticated user.
            body["status"] = json!({"allowed": true});
            return Ok(body);
        }
        return Err(ApiError::invalid_review(
            "spec.resourceAttributes: Invalid value: \"null\": exactly one of nonResourceAttributes or resourceAttributes must be specified",
        ));
    };
    let text = |key: &str| {
        resource
            .get(key)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned()
    };
    let attrs = Attributes {
        user,
        verb: text("verb"),
        api_group: text("group"),
        resource: text("resource"),
        subresource: text("subresource"),
        namespace: text("namespace"),
        name: text("name"),
    };
    let decision = policy.authorize(&attrs);
    let mut status = json!({"allowed": decision.allowed});
    if !decision.reason.is_empty() {
        status["reason"] = json!(decision.reason);
    }
    body["status"] = status;
    if body.pointer("/metadata/creationTimestamp").is_none() {
        meta::ensure_object(&mut body);
        body["metadata"]["creationTimestamp"] = Value::Null;
    }
    Ok(body)
}

/// The subject a SubjectAccessReview names: `spec.user` and `spec.groups`.
pub(crate) fn review_subject(body: &Value) -> UserInfo {
    let user = body
        .pointer("/spec/user")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let groups = body
        .pointer("/spec/groups")
        .and_then(Value::as_array)
        .map(|g| {
            g.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    UserInfo { name: user, groups }
}

/// The job rules of the operator's Helm chart (`flink-operator.jobRbacRules`): what the
/// `flink` Role grants the job's service account.
pub(crate) fn chart_job_rules() -> Value {
    let verbs = json!([
        "get", "list", "watch", "create", "update", "patch", "delete"
    ]);
    json!([
        {"apiGroups": [""], "resources": ["pods", "configmaps"], "verbs": verbs},
        {"apiGroups": ["apps"], "resources": ["deployments", "deployments/finalizers"], "verbs": verbs},
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(user: UserInfo, verb: &str, group: &str, resource: &str, ns: &str) -> Attributes {
        Attributes {
            user,
            verb: verb.into(),
            api_group: group.into(),
            resource: resource.into(),
            subresource: String::new(),
            namespace: ns.into(),
            name: String::new(),
        }
    }

    fn role(kind: &str, ns: &str, name: &str, rules: Value) -> Value {
        json!({"kind": kind, "metadata": {"name": name, "namespace": ns}, "rules": rules})
    }

    fn binding(ns: &str, name: &str, role_kind: &str, role: &str, subjects: Value) -> Value {
        json!({"metadata": {"name": name, "namespace": ns},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role},
            "subjects": subjects})
    }

    fn chart_policy() -> Policy {
        Policy {
            roles: vec![role("Role", "default", "flink", chart_job_rules())],
            role_bindings: vec![binding(
                "default",
                "flink-role-binding",
                "Role",
                "flink",
                json!([{"kind": "ServiceAccount", "name": "flink", "namespace": "default"}]),
            )],
            ..Policy::default()
        }
    }

    #[test]
    fn the_charts_account_may_create_pods_only_in_its_namespace() {
        let policy = chart_policy();
        let flink = UserInfo::service_account("default", "flink");
        let decision = policy.authorize(&attrs(flink.clone(), "create", "", "pods", "default"));
        assert!(decision.allowed);
        assert_eq!(
            decision.reason,
            "RBAC: allowed by RoleBinding \"flink-role-binding/default\" of Role \"flink\" to ServiceAccount \"flink/default\""
        );
        assert!(
            policy
                .authorize(&attrs(flink.clone(), "create", "", "configmaps", "default"))
                .allowed
        );
        assert!(
            policy
                .authorize(&attrs(
                    flink.clone(),
                    "create",
                    "apps",
                    "deployments",
                    "default"
                ))
                .allowed
        );
        // Not secrets, not pods in another namespace, not deployments in the core group.
        assert!(
            !policy
                .authorize(&attrs(flink.clone(), "get", "", "secrets", "default"))
                .allowed
        );
        assert!(
            !policy
                .authorize(&attrs(flink.clone(), "create", "", "pods", "streaming"))
                .allowed
        );
        assert!(
            !policy
                .authorize(&attrs(flink, "create", "", "deployments", "default"))
                .allowed
        );
        let other = UserInfo::service_account("default", "flink-runner");
        let denied = attrs(other, "create", "", "pods", "default");
        assert!(!policy.authorize(&denied).allowed);
        assert_eq!(
            forbidden(&denied, "").message,
            "pods is forbidden: User \"system:serviceaccount:default:flink-runner\" cannot create resource \"pods\" in API group \"\" in the namespace \"default\""
        );
    }

    #[test]
    fn wildcards_subresources_and_resource_names_match_like_rbac() {
        let user = UserInfo::impersonated("jane", &[]);
        let rule = json!({"apiGroups": ["*"], "resources": ["*"], "verbs": ["get"]});
        assert!(rule_allows(
            &rule,
            &attrs(user.clone(), "get", "apps", "deployments", "x")
        ));
        assert!(!rule_allows(
            &rule,
            &attrs(user.clone(), "list", "apps", "deployments", "x")
        ));
        let mut log = attrs(user.clone(), "get", "", "pods", "x");
        log.subresource = "log".into();
        let pods_only = json!({"apiGroups": [""], "resources": ["pods"], "verbs": ["*"]});
        assert!(!rule_allows(&pods_only, &log));
        let pods_log = json!({"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]});
        assert!(rule_allows(&pods_log, &log));
        let any_log = json!({"apiGroups": [""], "resources": ["*/log"], "verbs": ["get"]});
        assert!(rule_allows(&any_log, &log));
        let named = json!({"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["a"], "verbs": ["get", "list"]});
        let mut get_a = attrs(user.clone(), "get", "", "configmaps", "x");
        get_a.name = "a".into();
        assert!(rule_allows(&named, &get_a));
        get_a.name = "b".into();
        assert!(!rule_allows(&named, &get_a));
        // A list names no object, so a rule limited to names does not allow it.
        assert!(!rule_allows(
            &named,
            &attrs(user, "list", "", "configmaps", "x")
        ));
    }

    #[test]
    fn bindings_grant_cluster_roles_and_groups() {
        let view = role(
            "ClusterRole",
            "",
            "view",
            json!([{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}]),
        );
        let policy = Policy {
            cluster_roles: vec![view],
            role_bindings: vec![binding(
                "streaming",
                "all-sa",
                "ClusterRole",
                "view",
                json!([{"kind": "Group", "name": "system:serviceaccounts:streaming"}]),
            )],
            cluster_role_bindings: vec![binding(
                "",
                "everyone",
                "ClusterRole",
                "view",
                json!([{"kind": "User", "name": "jane"}]),
            )],
            ..Policy::default()
        };
        let sa = UserInfo::service_account("streaming", "runner");
        assert!(
            policy
                .authorize(&attrs(sa.clone(), "list", "", "pods", "streaming"))
                .allowed
        );
        assert!(
            !policy
                .authorize(&attrs(sa, "list", "", "pods", "other"))
                .allowed
        );
        let jane = UserInfo::impersonated("jane", &[]);
        let everywhere = policy.authorize(&attrs(jane.clone(), "list", "", "pods", ""));
        assert!(everywhere.allowed);
        assert_eq!(
            everywhere.reason,
            "RBAC: allowed by ClusterRoleBinding \"everyone\" of ClusterRole \"view\" to User \"jane\""
        );
        let denied = attrs(jane, "list", "", "nodes", "");
        assert!(!policy.authorize(&denied).allowed);
        assert_eq!(
            forbidden_message(&denied),
            "User \"jane\" cannot list resource \"nodes\" in API group \"\" at the cluster scope"
        );
        assert!(
            Policy::default()
                .authorize(&attrs(UserInfo::admin(), "delete", "", "nodes", ""))
                .allowed
        );
    }

    #[test]
    fn a_binding_to_a_missing_role_is_named_in_the_reason() {
        let policy = Policy {
            role_bindings: vec![binding(
                "ns",
                "b",
                "Role",
                "gone",
                json!([{"kind": "ServiceAccount", "name": "sa"}]),
            )],
            ..Policy::default()
        };
        let a = attrs(
            UserInfo::service_account("ns", "sa"),
            "get",
            "",
            "pods",
            "ns",
        );
        let decision = policy.authorize(&a);
        assert!(!decision.allowed);
        assert_eq!(
            decision.reason,
            "RBAC: [role.rbac.authorization.k8s.io \"gone\" not found]"
        );
        let mut named = a;
        named.name = "p".into();
        assert_eq!(
            forbidden(&named, &decision.reason).message,
            "pods \"p\" is forbidden: User \"system:serviceaccount:ns:sa\" cannot get resource \"pods\" in API group \"\" in the namespace \"ns\": RBAC: [role.rbac.authorization.k8s.io \"gone\" not found]"
        );
    }

    #[test]
    fn impersonation_builds_the_users_groups() {
        let sa = UserInfo::impersonated("system:serviceaccount:ns:sa", &[]);
        assert_eq!(sa, UserInfo::service_account("ns", "sa"));
        let with_groups = UserInfo::impersonated("system:serviceaccount:ns:sa", &["g".into()]);
        assert_eq!(with_groups.groups, vec!["g", AUTHENTICATED]);
        assert_eq!(
            UserInfo::impersonated("system:anonymous", &[]).groups,
            Vec::<String>::new()
        );
    }

    #[test]
    fn reviews_answer_with_status() {
        let policy = chart_policy();
        let body = json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
            "spec": {"user": "system:serviceaccount:default:flink", "groups": ["system:serviceaccounts"],
                "resourceAttributes": {"namespace": "default", "verb": "create", "resource": "pods"}}});
        let subject = review_subject(&body);
        let answered = review(&policy, body, subject).unwrap_or_default();
        assert_eq!(answered["status"]["allowed"], true);
        let body = json!({"spec": {"resourceAttributes": {"namespace": "streaming", "verb": "create", "resource": "pods"}}});
        let answered = review(
            &policy,
            body,
            UserInfo::service_account("streaming", "flink"),
        )
        .unwrap_or_default();
        assert_eq!(answered["status"], json!({"allowed": false}));
        assert!(review(&policy, json!({"spec": {}}), UserInfo::admin()).is_err());
    }
}

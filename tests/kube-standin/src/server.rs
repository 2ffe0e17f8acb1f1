//! HTTP: routing of Kubernetes API paths to the API semantics, content negotiation
//! (JSON, YAML bodies, Table responses), watches and log streams, plus the stand-in's own
//! `/standin/...` endpoints for faults, stats and the operator's status changes.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, put};
use serde_json::{Value, json};

use crate::Shared;
use crate::api::{DeleteOptions, ListOptions, RequestUser, WriteOptions, WriteOutcome};
use crate::apply::Part;
use crate::discovery;
use crate::error::ApiError;
use crate::faults::Fault;
use crate::logs::{self, ContainerRun, LogOptions};
use crate::meta;
use crate::openapi;
use crate::patch::PatchKind;
use crate::protobuf;
use crate::rbac::{self, Attributes, Policy, UserInfo};
use crate::resources::{self, FLINK_DEPLOYMENTS, PODS, ResourceDef};
use crate::schema::FieldValidation;
use crate::selector::{FieldSelector, LabelSelector};
use crate::table;
use crate::watch::{self, WatchRequest};

/// The largest request body accepted (the real server's limit is 3 MiB).
const MAX_BODY: usize = 3 * 1024 * 1024;

/// The router of the whole server.
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/standin/stats", get(stats))
        .route("/standin/status-changes", get(status_changes))
        .route("/standin/faults", delete(clear_faults))
        .route("/standin/faults/{namespace}/{name}", put(set_fault))
        .fallback(dispatch)
        .with_state(shared)
}

async fn stats(State(shared): State<Arc<Shared>>) -> Response {
    axum::Json(shared.faults.stats()).into_response()
}

async fn status_changes(State(shared): State<Arc<Shared>>) -> Response {
    axum::Json(shared.faults.status_changes()).into_response()
}

async fn clear_faults(State(shared): State<Arc<Shared>>) -> Response {
    shared.faults.clear();
    StatusCode::NO_CONTENT.into_response()
}

async fn set_fault(
    State(shared): State<Arc<Shared>>,
    Path((namespace, name)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Response {
    match serde_json::from_slice::<Fault>(&body) {
        Ok(fault) => {
            shared.faults.set(&namespace, &name, fault);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => ApiError::bad_request(format!("the body is not a Fault: {e}")).into_response(),
    }
}

/// One API request, decomposed.
struct Request {
    method: Method,
    headers: HeaderMap,
    query: HashMap<String, String>,
    body: Body,
}

impl Request {
    fn param(&self, key: &str) -> Option<&str> {
        self.query.get(key).map(String::as_str)
    }

    fn flag(&self, key: &str) -> bool {
        matches!(self.param(key), Some("true" | "1"))
    }

    fn header(&self, name: header::HeaderName) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

/// Where a resource path points.
#[derive(Debug)]
struct Target {
    res: &'static ResourceDef,
    namespace: Option<String>,
    name: Option<String>,
    subresource: Option<String>,
}

async fn dispatch(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let query: HashMap<String, String> = Query::try_from_uri(&uri).map(|q| q.0).unwrap_or_default();
    let path = uri.path().trim_end_matches('/').to_owned();
    tracing::debug!(%method, %uri, "request");
    let request = Request {
        method,
        headers,
        query,
        body,
    };
    match path.as_str() {
        "/version" => return json_response(StatusCode::OK, &discovery::version(), &[]),
        "/healthz" | "/livez" | "/readyz" => return (StatusCode::OK, "ok").into_response(),
        "/api" => {
            let address = shared.address.clone();
            return json_response(StatusCode::OK, &discovery::api_versions(&address), &[]);
        }
        "/apis" => {
            let mut doc = discovery::api_group_list();
            if let Some(groups) = doc.get_mut("groups").and_then(Value::as_array_mut) {
                groups.retain(|g| {
                    g.get("name")
                        .and_then(Value::as_str)
                        .is_none_or(|name| group_served(&shared, name))
                });
            }
            return json_response(StatusCode::OK, &doc, &[]);
        }
        _ => {}
    }
    // A minimal OpenAPI v3 (see `openapi`); no OpenAPI v2.
    if path == "/openapi/v3" {
        return json_response(StatusCode::OK, &openapi::index(), &[]);
    }
    if let Some(gv) = path.strip_prefix("/openapi/v3/") {
        return match openapi::group_version(gv) {
            Some(doc) => json_response(StatusCode::OK, &doc, &[]),
            None => ApiError::path_not_found().into_response(),
        };
    }
    if path.starts_with("/openapi") {
        return ApiError::path_not_found().into_response();
    }
    match route(&shared, &path, request).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

async fn route(shared: &Arc<Shared>, path: &str, request: Request) -> Result<Response, ApiError> {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let (group, version, rest) = match segments.as_slice() {
        ["api", "v1", rest @ ..] => ("", "v1", rest),
        ["apis", group] => {
            let doc = discovery::api_group(group)
                .filter(|_| group_served(shared, group))
                .ok_or_else(ApiError::path_not_found)?;
            return Ok(json_response(StatusCode::OK, &doc, &[]));
        }
        ["apis", group, version, rest @ ..] => (*group, *version, rest),
        _ => return Err(ApiError::path_not_found()),
    };
    if rest.is_empty() {
        let mut doc = discovery::api_resource_list(group, version)
            .filter(|_| group_served(shared, group))
            .ok_or_else(ApiError::path_not_found)?;
        if let Some(entries) = doc.get_mut("resources").and_then(Value::as_array_mut) {
            entries.retain(|e| {
                let plural = e
                    .get("name")
                    .and_then(Value::as_str)
                    .and_then(|n| n.split('/').next())
                    .unwrap_or("");
                resources::find(group, version, plural).is_none_or(|r| crd_installed(shared, r))
            });
        }
        return Ok(json_response(StatusCode::OK, &doc, &[]));
    }
    let target = parse_target(group, version, rest)
        .filter(|t| crd_installed(shared, t.res))
        .ok_or_else(ApiError::path_not_found)?;
    serve(shared, target, request).await
}

/// Whether a custom resource's CRD is installed (`<plural>.<group>` among the
/// customresourcedefinitions): without it the API server serves no such resource.
fn crd_installed(shared: &Shared, res: &ResourceDef) -> bool {
    !res.custom
        || shared
            .api
            .get(
                &resources::CUSTOM_RESOURCE_DEFINITIONS,
                "",
                &format!("{}.{}", res.plural, res.group),
            )
            .is_ok()
}

/// Whether discovery lists an API group: a group of custom resources only while one of its
/// CRDs is installed.
fn group_served(shared: &Shared, group: &str) -> bool {
    let mut in_group = resources::ALL
        .iter()
        .filter(|r| r.group == group)
        .peekable();
    in_group.peek().is_none() || in_group.any(|r| crd_installed(shared, r))
}

fn parse_target(group: &str, version: &str, rest: &[&str]) -> Option<Target> {
    let owned = |s: Option<&&str>| s.map(|s| (*s).to_owned());
    if let ["namespaces", namespace, plural, tail @ ..] = rest
        && let Some(res) = resources::find(group, version, plural).filter(|r| r.namespaced)
    {
        if tail.len() > 2 {
            return None;
        }
        return Some(Target {
            res,
            namespace: Some((*namespace).to_owned()),
            name: owned(tail.first()),
            subresource: owned(tail.get(1)),
        });
    }
    let (plural, tail) = rest.split_first()?;
    let res = resources::find(group, version, plural)?;
    if tail.len() > 2 || (res.namespaced && !tail.is_empty()) {
        return None;
    }
    Some(Target {
        res,
        namespace: None,
        name: owned(tail.first()),
        subresource: owned(tail.get(1)),
    })
}

async fn serve(
    shared: &Arc<Shared>,
    target: Target,
    request: Request,
) -> Result<Response, ApiError> {
    let Target {
        res,
        namespace,
        name,
        subresource,
    } = target;
    let ns = namespace.as_deref().unwrap_or("");
    let user = requesting_user(&request)?;
    if res.is_review() {
        return review(shared, res, ns, name.as_deref(), user, request).await;
    }
    let content_type = request.header(header::CONTENT_TYPE);
    if content_type.contains("protobuf") || content_type.contains("cbor") {
        return Err(ApiError::unsupported_body(content_type));
    }
    let is_write = matches!(
        request.method,
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    );
    if let Err(denied) = authorize(
        shared,
        res,
        ns,
        name.as_deref(),
        subresource.as_deref(),
        &request,
        user.clone(),
    ) {
        if is_write {
            shared
                .faults
                .count_write(format!("{}:{}", res.plural, request.method), None);
        }
        return Err(denied);
    }
    let part = match subresource.as_deref() {
        None => Part::Main,
        Some("status") if res.status_subresource => Part::Status,
        Some("log") if res.log_subresource && request.method == Method::GET => {
            let name = name.as_deref().ok_or_else(ApiError::path_not_found)?;
            return serve_log(shared, ns, name, &request);
        }
        Some(_) => return Err(ApiError::path_not_found()),
    };
    let result = match (&request.method, name.as_deref()) {
        (&Method::GET, None) if request.flag("watch") => {
            return start_watch(shared, res, namespace, &request);
        }
        (&Method::GET, None) => list(shared, res, namespace.as_deref(), &request),
        (&Method::GET, Some(name)) => {
            let object = shared.api.get(res, ns, name)?;
            if table::wanted(request.header(header::ACCEPT)) {
                let rv = shared.api.store.current_rv();
                let doc = table::build(
                    res,
                    &[object],
                    rv,
                    shared.api.schema_of(res),
                    request.param("includeObject"),
                );
                return Ok(json_response(StatusCode::OK, &doc, &[]));
            }
            Ok((json_response(StatusCode::OK, &object, &[]), false))
        }
        (&Method::POST, None) if part == Part::Main => {
            let options = write_options(&request, &user, None)?;
            let body = read_body(request.body).await?;
            shared.api.create(res, ns, body, &options).map(written)
        }
        (&Method::PUT, Some(name)) => {
            let options = write_options(&request, &user, Some(name))?;
            let body = read_body(request.body).await?;
            shared
                .api
                .replace(res, ns, name, part, body, &options)
                .map(written)
        }
        (&Method::PATCH, Some(name)) => {
            let kind = PatchKind::from_content_type(request.header(header::CONTENT_TYPE))?;
            let options = write_options(&request, &user, Some(name))?;
            if kind != PatchKind::Apply && request.param("force").is_some() {
                return Err(ApiError::bad_request(
                    "force flag is only valid for apply patches",
                ));
            }
            let body = read_body(request.body).await?;
            shared
                .api
                .patch(res, ns, name, part, kind, body, &options)
                .map(written)
        }
        (&Method::DELETE, Some(name)) if part == Part::Main => {
            let options = delete_options(&request.query, read_optional_body(request.body).await?);
            shared.api.delete(res, ns, name, &options).map(written)
        }
        (&Method::DELETE, None) if part == Part::Main => {
            delete_collection(shared, res, namespace.as_deref(), &request)
        }
        _ => Err(ApiError::method_not_allowed(format!(
            "the server does not allow this method on the requested resource ({} {})",
            request.method,
            res.group_resource()
        ))),
    };
    if is_write {
        let key = match &subresource {
            Some(sub) => format!("{}/{sub}:{}", res.plural, request.method),
            None => format!("{}:{}", res.plural, request.method),
        };
        let outcome = result.as_ref().ok().map(|(_, changed)| *changed);
        shared.faults.count_write(key, outcome);
    }
    result.map(|(response, _)| response)
}

/// Who a request is from: the kubeconfig's user (cluster-admin), or the user its
/// `Impersonate-User` and `Impersonate-Group` headers name (the kubeconfig's user may
/// impersonate anyone).
fn requesting_user(request: &Request) -> Result<UserInfo, ApiError> {
    let groups: Vec<String> = request
        .headers
        .get_all("impersonate-group")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(str::to_owned)
        .collect();
    match request
        .headers
        .get("impersonate-user")
        .and_then(|v| v.to_str().ok())
    {
        Some(user) if !user.is_empty() => Ok(UserInfo::impersonated(user, &groups)),
        _ if !groups.is_empty() => Err(ApiError::forbidden(
            format!(
                "requested [{}] without impersonating a user",
                groups
                    .iter()
                    .map(|g| format!("{{Group  {g}    }}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
            json!({}),
        )),
        _ => Ok(UserInfo::admin()),
    }
}

/// The verb a request is authorized as: `get`, `list`, `watch`, `create`, `update`, `patch`,
/// `delete` or `deletecollection`.
fn verb(request: &Request, named: bool) -> &'static str {
    match (&request.method, named) {
        (&Method::GET, true) => "get",
        (&Method::GET, false) if request.flag("watch") => "watch",
        (&Method::GET, false) => "list",
        (&Method::POST, _) => "create",
        (&Method::PUT, _) => "update",
        (&Method::PATCH, _) => "patch",
        (&Method::DELETE, true) => "delete",
        (&Method::DELETE, false) => "deletecollection",
        _ => "get",
    }
}

/// Asks RBAC whether `user` may make this request; the 403 the real server answers if not.
/// A patch of an object that does not exist creates it, so it needs `create` too.
fn authorize(
    shared: &Shared,
    res: &'static ResourceDef,
    namespace: &str,
    name: Option<&str>,
    subresource: Option<&str>,
    request: &Request,
    user: UserInfo,
) -> Result<(), ApiError> {
    let mut attrs = Attributes {
        user,
        verb: verb(request, name.is_some()).to_owned(),
        api_group: res.group.to_owned(),
        resource: res.plural.to_owned(),
        subresource: subresource.unwrap_or("").to_owned(),
        namespace: namespace.to_owned(),
        name: name.unwrap_or("").to_owned(),
    };
    if res == &resources::NAMESPACES && name.is_some() {
        // A namespace's own requests are in its namespace, as the real server's request info
        // puts them.
        attrs.namespace = name.unwrap_or("").to_owned();
    }
    let policy = Policy::read(&shared.api.store);
    let decision = policy.authorize(&attrs);
    if !decision.allowed {
        return Err(rbac::forbidden(&attrs, &decision.reason));
    }
    if attrs.verb == "patch"
        && let Some(name) = name
        && shared.api.get(res, namespace, name).is_err()
    {
        attrs.verb = "create".to_owned();
        let decision = policy.authorize(&attrs);
        if !decision.allowed {
            return Err(rbac::forbidden(&attrs, &decision.reason));
        }
    }
    Ok(())
}

/// `POST` of an access review: authorized itself (every authenticated user may create a
/// SelfSubjectAccessReview through `system:basic-user`), answered, never stored and not
/// counted as a write, since it changes nothing.
async fn review(
    shared: &Arc<Shared>,
    res: &'static ResourceDef,
    namespace: &str,
    name: Option<&str>,
    user: UserInfo,
    request: Request,
) -> Result<Response, ApiError> {
    if request.method != Method::POST || name.is_some() {
        return Err(ApiError::method_not_allowed(format!(
            "the server does not allow this method on the requested resource ({} {})",
            request.method,
            res.group_resource()
        )));
    }
    authorize(shared, res, namespace, None, None, &request, user.clone())?;
    let content_type = request.header(header::CONTENT_TYPE).to_owned();
    let mut body = if content_type.contains("protobuf") {
        let bytes = to_bytes(request.body, MAX_BODY)
            .await
            .map_err(|e| ApiError::bad_request(format!("cannot read the request body: {e}")))?;
        protobuf::decode_review(&bytes, res.kind)?
    } else if content_type.contains("cbor") {
        return Err(ApiError::unsupported_body(&content_type));
    } else {
        read_body(request.body).await?
    };
    if res == &resources::LOCAL_SUBJECT_ACCESS_REVIEWS {
        let asked = body
            .pointer("/spec/resourceAttributes/namespace")
            .and_then(Value::as_str)
            .unwrap_or("");
        if asked.is_empty() {
            body["spec"]["resourceAttributes"]["namespace"] = json!(namespace);
        } else if asked != namespace {
            return Err(ApiError::bad_request(format!(
                "spec.resourceAttributes.namespace must match namespace: {namespace}"
            )));
        }
    }
    let subject = if res == &resources::SELF_SUBJECT_ACCESS_REVIEWS {
        user
    } else {
        rbac::review_subject(&body)
    };
    let policy = Policy::read(&shared.api.store);
    let answered = rbac::review(&policy, body, subject)?;
    Ok(json_response(StatusCode::CREATED, &answered, &[]))
}

/// A write's response, with whether it changed anything (for the stats).
type Written = (Response, bool);

fn written(outcome: WriteOutcome) -> Written {
    let status = if outcome.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    (
        json_response(status, &outcome.object, &outcome.warnings),
        outcome.changed,
    )
}

fn list(
    shared: &Shared,
    res: &'static ResourceDef,
    namespace: Option<&str>,
    request: &Request,
) -> Result<Written, ApiError> {
    let options = list_options(res, request)?;
    let page = shared.api.list(res, namespace, &options)?;
    if table::wanted(request.header(header::ACCEPT)) {
        let doc = table::build(
            res,
            &page.items,
            page.resource_version,
            shared.api.schema_of(res),
            request.param("includeObject"),
        );
        return Ok((json_response(StatusCode::OK, &doc, &[]), false));
    }
    let mut metadata = json!({"resourceVersion": page.resource_version.to_string()});
    if let Some(token) = page.continue_token {
        metadata["continue"] = json!(token);
        metadata["remainingItemCount"] = json!(page.remaining);
    }
    let items: Vec<&Value> = page.items.iter().map(|o| &**o).collect();
    let doc = json!({
        "apiVersion": res.api_version(),
        "kind": format!("{}List", res.kind),
        "metadata": metadata,
        "items": items,
    });
    Ok((json_response(StatusCode::OK, &doc, &[]), false))
}

fn delete_collection(
    shared: &Shared,
    res: &'static ResourceDef,
    namespace: Option<&str>,
    request: &Request,
) -> Result<Written, ApiError> {
    let options = list_options(res, request)?;
    let page = shared.api.list(res, namespace, &options)?;
    let delete = delete_options(&request.query, None);
    let mut deleted = Vec::new();
    for object in &page.items {
        match shared
            .api
            .delete(res, meta::namespace(object), meta::name(object), &delete)
        {
            Ok(outcome) => deleted.push((*outcome.object).clone()),
            Err(e) if e.code == 404 => {}
            Err(e) => return Err(e),
        }
    }
    let changed = !deleted.is_empty();
    let doc = json!({
        "apiVersion": res.api_version(),
        "kind": format!("{}List", res.kind),
        "metadata": {"resourceVersion": shared.api.store.current_rv().to_string()},
        "items": deleted,
    });
    Ok((json_response(StatusCode::OK, &doc, &[]), changed))
}

fn start_watch(
    shared: &Arc<Shared>,
    res: &'static ResourceDef,
    namespace: Option<String>,
    request: &Request,
) -> Result<Response, ApiError> {
    let resource_version = match request.param("resourceVersion") {
        None | Some("") | Some("0") => None,
        Some(text) => Some(
            text.parse::<u64>()
                .map_err(|_| ApiError::bad_request(format!("invalid resource version {text:?}")))?,
        ),
    };
    let timeout = match request.param("timeoutSeconds") {
        Some(text) => Some(Duration::from_secs(text.parse().map_err(|_| {
            ApiError::bad_request(format!("invalid timeoutSeconds {text:?}"))
        })?)),
        None => None,
    };
    let drop_after = if res == &FLINK_DEPLOYMENTS {
        let deployments = shared
            .api
            .store
            .tx()
            .list(&FLINK_DEPLOYMENTS, namespace.as_deref());
        shared
            .faults
            .drop_watch_after(namespace.as_deref(), deployments.iter().map(|d| &**d))
    } else {
        None
    };
    let watch_request = WatchRequest {
        res,
        namespace,
        labels: LabelSelector::parse(request.param("labelSelector").unwrap_or(""))?,
        fields: field_selector(res, request)?,
        resource_version,
        timeout,
        send_initial_events: request.flag("sendInitialEvents"),
        drop_after,
        render: table_render(shared, res, request),
    };
    shared.faults.count_watch();
    let stream = watch::start(
        Arc::clone(&shared.api),
        watch_request,
        shared.shutdown.clone(),
    );
    let mut response = Response::new(Body::from_stream(stream));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(response)
}

/// For `kubectl get -w`: each watched object as a one-row Table.
fn table_render(
    shared: &Arc<Shared>,
    res: &'static ResourceDef,
    request: &Request,
) -> Option<watch::Render> {
    if !table::wanted(request.header(header::ACCEPT)) {
        return None;
    }
    let shared = Arc::clone(shared);
    let include_object = request.param("includeObject").map(str::to_owned);
    Some(Box::new(move |object: &Value| {
        let rv = meta::meta_str(object, "resourceVersion")
            .and_then(|rv| rv.parse().ok())
            .unwrap_or(0);
        table::build(
            res,
            &[Arc::new(object.clone())],
            rv,
            shared.api.schema_of(res),
            include_object.as_deref(),
        )
    }))
}

fn serve_log(
    shared: &Arc<Shared>,
    namespace: &str,
    name: &str,
    request: &Request,
) -> Result<Response, ApiError> {
    let pod = shared.api.get(&PODS, namespace, name)?;
    let containers = meta::container_names(&pod, "containers");
    let inits = meta::container_names(&pod, "initContainers");
    let container = match request.param("container").filter(|c| !c.is_empty()) {
        Some(c) => c.to_owned(),
        None if containers.len() == 1 => containers[0].clone(),
        None => {
            return Err(ApiError::bad_request(format!(
                "a container name must be specified for pod {name}, choose one of: [{}] or one of the init containers: [{}]",
                containers.join(" "),
                inits.join(" ")
            )));
        }
    };
    if !containers.contains(&container) && !inits.contains(&container) {
        return Err(ApiError::bad_request(format!(
            "container {container} is not valid for pod {name}"
        )));
    }
    if request.flag("previous") {
        return Err(ApiError::bad_request(format!(
            "previous terminated container \"{container}\" in pod \"{name}\" not found"
        )));
    }
    let log = shared.logs.get(namespace, name, &container);
    let waiting = match log.as_ref().map(|l| (l.run(), l.len())) {
        None => Some("ContainerCreating".to_owned()),
        Some((ContainerRun::Waiting(reason), 0)) => Some(reason),
        Some(_) => None,
    };
    if let Some(reason) = waiting {
        let detail = match reason.as_str() {
            "ImagePullBackOff" | "ErrImagePull" => "trying and failing to pull image".to_owned(),
            other => other.to_owned(),
        };
        return Err(ApiError::bad_request(format!(
            "container \"{container}\" in pod \"{name}\" is waiting to start: {detail}"
        )));
    }
    let Some(log) = log else {
        return Err(ApiError::internal("log vanished"));
    };
    let parse = |key: &str| -> Result<Option<usize>, ApiError> {
        request
            .param(key)
            .map(|v| {
                v.parse::<usize>()
                    .map_err(|_| ApiError::bad_request(format!("invalid {key} {v:?}")))
            })
            .transpose()
    };
    let options = LogOptions {
        follow: request.flag("follow"),
        tail_lines: parse("tailLines")?,
        timestamps: request.flag("timestamps"),
        limit_bytes: parse("limitBytes")?,
    };
    let stream = logs::stream(log, options, shared.shutdown.clone());
    let mut response = Response::new(Body::from_stream(stream));
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    Ok(response)
}

/// The `fieldSelector` parameter, refused when it names a field the resource has none of.
fn field_selector(res: &ResourceDef, request: &Request) -> Result<FieldSelector, ApiError> {
    let selector = FieldSelector::parse(request.param("fieldSelector").unwrap_or(""))?;
    selector.check(res)?;
    Ok(selector)
}

fn list_options(res: &ResourceDef, request: &Request) -> Result<ListOptions, ApiError> {
    let limit = match request.param("limit") {
        Some(text) => Some(
            text.parse()
                .map_err(|_| ApiError::bad_request(format!("invalid limit {text:?}")))?,
        ),
        None => None,
    };
    Ok(ListOptions {
        labels: LabelSelector::parse(request.param("labelSelector").unwrap_or(""))?,
        fields: field_selector(res, request)?,
        resource_version: request.param("resourceVersion").map(str::to_owned),
        resource_version_match: request.param("resourceVersionMatch").map(str::to_owned),
        limit,
        continue_token: request.param("continue").map(str::to_owned),
    })
}

fn write_options(
    request: &Request,
    user: &UserInfo,
    name: Option<&str>,
) -> Result<WriteOptions, ApiError> {
    let validation =
        FieldValidation::parse(request.param("fieldValidation")).map_err(ApiError::bad_request)?;
    let manager = match request.param("fieldManager") {
        Some(m) => m.to_owned(),
        // The real server derives the manager from the User-Agent's program name.
        None => request
            .header(header::USER_AGENT)
            .split('/')
            .next()
            .filter(|s| !s.is_empty())
            .unwrap_or("unknown")
            .chars()
            .take(128)
            .collect(),
    };
    Ok(WriteOptions {
        manager,
        validation,
        dry_run: request.param("dryRun") == Some("All"),
        force: request.flag("force"),
        requester: Some(RequestUser {
            user: user.clone(),
            name: name.unwrap_or("").to_owned(),
        }),
    })
}

fn delete_options(query: &HashMap<String, String>, body: Option<Value>) -> DeleteOptions {
    let body = body.unwrap_or(Value::Null);
    let propagation = query
        .get("propagationPolicy")
        .map(String::as_str)
        .or_else(|| body.get("propagationPolicy").and_then(Value::as_str));
    let dry_run = query.get("dryRun").map(String::as_str) == Some("All")
        || body
            .get("dryRun")
            .and_then(Value::as_array)
            .is_some_and(|d| d.iter().any(|v| v == "All"));
    DeleteOptions {
        uid: meta::get_path(&body, &["preconditions", "uid"])
            .and_then(Value::as_str)
            .map(str::to_owned),
        resource_version: meta::get_path(&body, &["preconditions", "resourceVersion"])
            .and_then(Value::as_str)
            .map(str::to_owned),
        orphan: propagation == Some("Orphan")
            || body.get("orphanDependents") == Some(&Value::Bool(true)),
        dry_run,
    }
}

async fn read_body(body: Body) -> Result<Value, ApiError> {
    read_optional_body(body)
        .await?
        .ok_or_else(|| ApiError::bad_request("the request has no body"))
}

/// Reads a JSON or YAML body; `None` when it is empty.
async fn read_optional_body(body: Body) -> Result<Option<Value>, ApiError> {
    let bytes = to_bytes(body, MAX_BODY)
        .await
        .map_err(|e| ApiError::bad_request(format!("cannot read the request body: {e}")))?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    if let Ok(value) = serde_json::from_slice::<Value>(&bytes) {
        return Ok(Some(value));
    }
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| ApiError::bad_request("the request body is not UTF-8"))?;
    serde_saphyr::from_str::<Value>(text)
        .map(Some)
        .map_err(|e| {
            ApiError::bad_request(format!("the request body is neither JSON nor YAML: {e}"))
        })
}

fn json_response(status: StatusCode, body: &Value, warnings: &[String]) -> Response {
    let mut response = (status, axum::Json(body)).into_response();
    for warning in warnings {
        let text = format!("299 - {}", Value::String(warning.clone()));
        if let Ok(value) = HeaderValue::from_str(&text) {
            response.headers_mut().append(header::WARNING, value);
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_resolve_like_the_real_server() {
        let t = parse_target("", "v1", &["namespaces", "default", "pods", "p", "log"]);
        let t = t.map(|t| (t.res.plural, t.namespace, t.name, t.subresource));
        assert_eq!(
            t,
            Some((
                "pods",
                Some("default".into()),
                Some("p".into()),
                Some("log".into())
            ))
        );
        let ns = parse_target("", "v1", &["namespaces", "default"]).map(|t| (t.res.plural, t.name));
        assert_eq!(ns, Some(("namespaces", Some("default".into()))));
        let status = parse_target("", "v1", &["namespaces", "x", "status"])
            .map(|t| (t.res.plural, t.subresource));
        assert_eq!(status, Some(("namespaces", Some("status".into()))));
        let all =
            parse_target("flink.apache.org", "v1beta1", &["flinkdeployments"]).map(|t| t.namespace);
        assert_eq!(all, Some(None));
        assert!(parse_target("", "v1", &["pods", "p"]).is_none());
        assert!(parse_target("", "v1", &["widgets"]).is_none());
    }
}

//! The plan (one read of the live FlinkDeployment) and its apply (a guarded server-side apply).

use flink_eks_manifest::{FIELD_MANAGER, FlinkDeployment};
use flink_eks_plan::{Action, Stale};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, Patch, PatchParams};

use crate::error::{Error, Result, from_kube};
use crate::status::ObservedState;

use super::decide::{
    Changed, apply_error, changed_since_planned, compared_values, differences,
    refused_for_resource_version,
};
use super::{Applied, ApplyPlan, Submitter};

/// How many times [`Submitter::apply`] sends an update at most: once with the planned
/// resourceVersion, and again only after a 409 whose cause left the plan's basis unchanged
/// (the operator's status writes).
const MAX_UPDATE_ATTEMPTS: usize = 3;

impl Submitter {
    /// What applying `deployment` will do, from one GET of the live object (no write): create
    /// when there is none, no change when the live object holds every field this tool sets
    /// with the value it sets and nothing this tool set before is left out, update otherwise.
    ///
    /// Only the fields applied are compared (read through the same type, so `1` against
    /// `1.0` is no change): a field another manager sets, such as a label or a
    /// `flinkConfiguration` entry of its own, does not make an update. The stand-in and some
    /// clusters' admission chains do not support `dryRun`; a GET works everywhere.
    pub async fn plan(&self, deployment: &FlinkDeployment) -> Result<ApplyPlan> {
        // Boxed: the objects it holds across awaits are large, and callers' stacks are not.
        Box::pin(self.plan_boxed(deployment)).await
    }

    async fn plan_boxed(&self, deployment: &FlinkDeployment) -> Result<ApplyPlan> {
        let (namespace, name) = self.identity(deployment)?;
        let (namespace, name) = (namespace.to_owned(), name.to_owned());
        let (live, unreadable) = match Box::pin(self.api(&namespace).get_opt(&name)).await {
            Ok(live) => (live, None),
            Err(kube::Error::Api(status)) if status.is_forbidden() => (None, Some(status.message)),
            Err(e) => {
                return Err(from_kube(
                    format!("read FlinkDeployment {namespace}/{name}"),
                    e,
                ));
            }
        };
        let mut object = deployment.clone();
        object.metadata.namespace = Some(namespace.clone());
        object.metadata.managed_fields = None;
        object.metadata.resource_version = None;
        object.metadata.generation = None;
        object.metadata.uid = None;
        object.metadata.creation_timestamp = None;
        object.status = None;
        let Some(live) = live else {
            // Not readable: the namespace is not asked about either, since the plan is
            // refused anyway.
            let namespace_missing =
                unreadable.is_none() && !self.namespace_exists(&namespace).await?;
            return Ok(ApplyPlan {
                object,
                namespace,
                name,
                action: Action::Create,
                resource_version: None,
                uid: None,
                live_generation: None,
                live_state: None,
                differences: Vec::new(),
                compared: Vec::new(),
                namespace_missing,
                unreadable,
                operator: None,
            });
        };
        let differences = differences(&object, &live);
        let compared = compared_values(&object, &live);
        Ok(ApplyPlan {
            object,
            namespace,
            name,
            action: if differences.is_empty() {
                Action::NoChange
            } else {
                Action::Update
            },
            resource_version: live.metadata.resource_version.clone(),
            uid: live.metadata.uid.clone(),
            live_generation: live.metadata.generation,
            live_state: Some(ObservedState::of(&live)),
            differences,
            compared,
            namespace_missing: false,
            unreadable: None,
            operator: None,
        })
    }

    /// Whether the namespace exists: one GET, sent only when the FlinkDeployment was not
    /// found. A caller not allowed to read namespaces (`403`) is told it exists: only the
    /// API server's answer to the apply can tell then.
    async fn namespace_exists(&self, namespace: &str) -> Result<bool> {
        let api: Api<Namespace> = Api::all(self.client.clone());
        match api.get_opt(namespace).await {
            Ok(found) => Ok(found.is_some()),
            Err(kube::Error::Api(status)) if status.is_forbidden() => Ok(true),
            Err(e) => Err(from_kube(format!("read namespace {namespace}"), e)),
        }
    }

    /// Performs `plan` exactly, as field manager [`FIELD_MANAGER`]:
    /// - no change: no call; the live generation is returned;
    /// - update: server-side apply with `force` (taking the fields it sets from other
    ///   managers), `metadata.resourceVersion` and `metadata.uid` set to the planned ones, so
    ///   that an object changed since the plan is refused (`409 Conflict`), and so is one
    ///   deleted since (without the uid, an apply to a deleted object would create it again);
    /// - create: server-side apply without `force`, so that an object created since by
    ///   another writer with other values in these fields is refused (`409 Conflict`).
    ///
    /// The operator writes `status` continually, and each of its writes gives the object a
    /// new resourceVersion, though nothing the plan rested on changed. So an update refused
    /// for its resourceVersion reads the object once and is sent again with the new
    /// resourceVersion (three sends in all at most) only when the object has the planned uid
    /// and generation, every field the plan compared (the spec, labels and annotations this
    /// tool applies) holds the value it held when planned, and the comparison finds exactly
    /// the planned differences. This is not a re-decision: the
    /// plan's decision is kept only when what it rested on is unchanged; anything else is
    /// [`Error::Stale`], naming what changed (`generation 3 when planned, 4 now`, or the
    /// field with both values).
    ///
    /// A refused precondition is [`Error::Stale`], and nothing is written. An unchanged spec
    /// keeps its generation, so the operator does nothing.
    pub async fn apply(&self, plan: &ApplyPlan) -> Result<Applied> {
        // Boxed: the objects it holds across awaits are large, and callers' stacks are not.
        Box::pin(self.apply_boxed(plan)).await
    }

    async fn apply_boxed(&self, plan: &ApplyPlan) -> Result<Applied> {
        let (namespace, name) = (plan.namespace.as_str(), plan.name.as_str());
        if plan.namespace_missing {
            return Err(Error::NamespaceNotFound {
                namespace: namespace.to_owned(),
            });
        }
        if let Some(message) = &plan.unreadable {
            return Err(Error::Forbidden {
                action: format!("read FlinkDeployment {namespace}/{name}"),
                message: message.clone(),
            });
        }
        let applied = |generation: Option<i64>| Applied {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            generation: generation.unwrap_or_default(),
            action: plan.action,
        };
        let params = PatchParams::apply(FIELD_MANAGER);
        let (mut object, params) = match plan.action {
            Action::Create => (plan.object.clone(), params),
            Action::Update => {
                let mut object = plan.object.clone();
                object.metadata.resource_version = plan.resource_version.clone();
                object.metadata.uid = plan.uid.clone();
                (object, params.force())
            }
            _ => {
                tracing::info!(%namespace, %name, "FlinkDeployment unchanged, not applied");
                return Ok(applied(plan.live_generation));
            }
        };
        let api = self.api(namespace);
        let mut attempt = 1;
        let after = loop {
            let err = match Box::pin(api.patch(name, &params, &Patch::Apply(&object))).await {
                Ok(after) => break after,
                Err(err) => err,
            };
            if plan.action != Action::Update
                || attempt == MAX_UPDATE_ATTEMPTS
                || !refused_for_resource_version(&err)
            {
                return Err(apply_error(plan, err));
            }
            let live = Box::pin(api.get_opt(name))
                .await
                .map_err(|e| from_kube(format!("read FlinkDeployment {namespace}/{name}"), e))?;
            let Some(live) = live else {
                return Err(Error::Stale(Stale::of(&plan.operation(), "no object")));
            };
            if let Some(Changed { planned, found }) = changed_since_planned(plan, &live) {
                let operation = plan.operation().observed(planned);
                return Err(Error::Stale(Stale::of(&operation, found)));
            }
            tracing::info!(
                %namespace, %name,
                planned = ?plan.resource_version, now = ?live.metadata.resource_version,
                "FlinkDeployment changed only outside what the plan compared: applying again"
            );
            object.metadata.resource_version = live.metadata.resource_version;
            attempt += 1;
        };
        let generation = after.metadata.generation;
        tracing::info!(%namespace, %name, ?generation, action = %plan.action, attempt, "FlinkDeployment applied");
        Ok(applied(generation))
    }
}

#[cfg(test)]
mod tests {
    //! The apply's requests and what it makes of the API server's answers, against a mock
    //! that answers as a real API server does.

    use super::*;
    use crate::cluster::fixtures::*;
    use http::Response;
    use kube::client::Body;
    use serde_json::{Value, json};
    use std::time::Duration;

    #[tokio::test]
    async fn a_no_change_plan_applies_without_a_request() {
        let (submitter, mut handle) = mock();
        let plan = plan_of(
            Action::NoChange,
            Some(status("STABLE", "RUNNING", "READY", 2)),
        );
        let applied = tokio::time::timeout(Duration::from_secs(5), submitter.apply(&plan))
            .await
            .expect("no request, so no answer to wait for")
            .unwrap();
        assert_eq!((applied.generation, applied.action), (2, Action::NoChange));
        drop(submitter);
        assert!(handle.next_request().await.is_none(), "no request was made");
    }

    /// Answers the next request, which must use `method`, with `code` and `answer`; the
    /// request's query and JSON body (`null` when none).
    async fn respond(
        handle: &mut Handle,
        method: http::Method,
        code: u16,
        answer: Value,
    ) -> (String, Value) {
        let (request, send) = handle.next_request().await.expect("a request");
        assert_eq!(request.method(), method, "{}", request.uri());
        let uri = request.uri().to_string();
        let body = request.into_body().collect_bytes().await.unwrap();
        let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
        send.send_response(
            Response::builder()
                .status(code)
                .body(Body::from(serde_json::to_vec(&answer).unwrap()))
                .unwrap(),
        );
        (uri, body)
    }

    fn conflict(message: &str) -> Value {
        json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
            "message": format!("Operation cannot be fulfilled on flinkdeployments.flink.apache.org \"job\": {message}"),
            "reason": "Conflict", "code": 409,
            "details": {"name": "job", "group": "flink.apache.org", "kind": "flinkdeployments"}})
    }

    /// The update the tests below apply: `flink:1.20` to `flink:1.21` on a running job.
    fn running_update() -> ApplyPlan {
        plan_of(
            Action::Update,
            Some(status("STABLE", "RUNNING", "READY", 2)),
        )
    }

    /// Applies `plan`, which must be refused as [`Error::Stale`]: the error and its [`Stale`].
    async fn apply_refused_as_stale(submitter: &Submitter, plan: &ApplyPlan) -> (Error, Stale) {
        let err = submitter.apply(plan).await.unwrap_err();
        let Error::Stale(stale) = &err else {
            panic!("{err:?}")
        };
        let stale = stale.clone();
        (err, stale)
    }

    /// Waits for `server` to have answered all it expected, then asserts that the client
    /// sends nothing more.
    async fn assert_no_further_request(
        server: tokio::task::JoinHandle<Handle>,
        submitter: Submitter,
        why: &str,
    ) {
        let mut handle = server.await.unwrap();
        drop(submitter);
        assert!(handle.next_request().await.is_none(), "{why}");
    }

    const MODIFIED: &str = "the object has been modified; please apply your changes to the latest version and try again";

    #[tokio::test]
    async fn an_update_carries_the_planned_resource_version_and_uid_and_a_new_generation_is_stale()
    {
        let (submitter, mut handle) = mock();
        let plan = running_update();
        let server = tokio::spawn(async move {
            let (uri, body) =
                respond(&mut handle, http::Method::PATCH, 409, conflict(MODIFIED)).await;
            assert!(
                uri.contains("fieldManager=flink-eks") && uri.contains("force=true"),
                "{uri}"
            );
            assert_eq!(body["metadata"]["resourceVersion"], "7", "{body}");
            assert_eq!(body["metadata"]["uid"], "u-1", "{body}");
            // Someone changed a spec field this tool does not set: generation 3.
            let mut live = object(8, 3, status("STABLE", "RUNNING", "READY", 2));
            live["spec"]["flinkConfiguration"] = json!({"metrics.reporters": "prom"});
            respond(&mut handle, http::Method::GET, 200, live).await;
            handle
        });
        let (err, stale) = apply_refused_as_stale(&submitter, &plan).await;
        assert_eq!(
            (stale.planned.as_str(), stale.found.as_str()),
            ("generation 2", "generation 3")
        );
        assert_eq!(stale.name, "default/job");
        assert!(err.to_string().contains("plan again"), "{err}");
        assert_no_further_request(server, submitter, "nothing sent again").await;
    }

    #[tokio::test]
    async fn an_update_refused_for_a_status_write_only_is_sent_again_with_the_new_version() {
        let (submitter, mut handle) = mock();
        let plan = running_update();
        let server = tokio::spawn(async move {
            respond(&mut handle, http::Method::PATCH, 409, conflict(MODIFIED)).await;
            // The operator wrote its status: a new resourceVersion, nothing else.
            let live = object(8, 2, status("STABLE", "RUNNING", "READY", 2));
            respond(&mut handle, http::Method::GET, 200, live).await;
            let mut after = object(9, 3, status("STABLE", "RUNNING", "READY", 2));
            after["spec"]["image"] = json!("flink:1.21");
            let (_, body) = respond(&mut handle, http::Method::PATCH, 200, after).await;
            assert_eq!(body["metadata"]["resourceVersion"], "8", "{body}");
            assert_eq!(body["metadata"]["uid"], "u-1", "{body}");
            assert_eq!(body["spec"]["image"], "flink:1.21", "{body}");
            handle
        });
        let applied = submitter.apply(&plan).await.unwrap();
        assert_eq!((applied.action, applied.generation), (Action::Update, 3));
        assert_no_further_request(server, submitter, "no further request").await;
    }

    #[tokio::test]
    async fn an_update_refused_on_every_attempt_is_stale_after_three_sends() {
        let (submitter, mut handle) = mock();
        let plan = running_update();
        let server = tokio::spawn(async move {
            for rv in [8, 9] {
                respond(&mut handle, http::Method::PATCH, 409, conflict(MODIFIED)).await;
                let live = object(rv, 2, status("STABLE", "RUNNING", "READY", 2));
                respond(&mut handle, http::Method::GET, 200, live).await;
            }
            let (_, body) =
                respond(&mut handle, http::Method::PATCH, 409, conflict(MODIFIED)).await;
            assert_eq!(body["metadata"]["resourceVersion"], "9", "{body}");
            handle
        });
        let err = submitter.apply(&plan).await.unwrap_err();
        assert!(matches!(err, Error::Stale(_)), "{err:?}");
        assert_no_further_request(server, submitter, "three sends in all").await;
    }

    #[tokio::test]
    async fn an_update_whose_uid_names_no_object_is_stale_without_a_read() {
        let (submitter, mut handle) = mock();
        let plan = running_update();
        let server = tokio::spawn(async move {
            let deleted = conflict(
                "uid mismatch: the provided object specified uid u-1, and no existing object was found",
            );
            respond(&mut handle, http::Method::PATCH, 409, deleted).await;
            handle
        });
        let (_, stale) = apply_refused_as_stale(&submitter, &plan).await;
        assert_eq!(
            (stale.planned.as_str(), stale.found.as_str()),
            ("resourceVersion 7", "no object")
        );
        assert_no_further_request(server, submitter, "no read, no resend").await;
    }
}

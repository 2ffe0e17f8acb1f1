//! The refusals a plan's guarded writes rely on, through kube-rs, for both kinds the product
//! writes (its FlinkDeployment and the job's service account): a stale `resourceVersion`,
//! a field another manager owns, an object that already exists, an object deleted since it
//! was read. Each refusal is the real API server's answer and stores nothing.

mod common;

use common::*;
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use kube_standin::StandIn;
use serde_json::{Value, json};

/// The annotation the tests change.
const REVISION: &str = "example.com/revision";

/// One kind of object the product writes.
struct Kind {
    api: Api<DynamicObject>,
    /// `<resource>[.<group>]`, as the API server's messages name it.
    resource: &'static str,
    /// The object's `apiVersion`.
    api_version: &'static str,
    manifest: fn(&str) -> Value,
    /// Whether the stand-in's operator writes to it after an apply (FlinkDeployments).
    reconciled: bool,
}

fn service_account(name: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": name, "namespace": "default", "annotations": {
            "eks.amazonaws.com/role-arn": "arn:aws:iam::123456789012:role/flink-s3",
        }},
    })
}

fn kinds(client: &kube::Client) -> [Kind; 2] {
    [
        Kind {
            api: flink_api(client),
            resource: "flinkdeployments.flink.apache.org",
            api_version: "flink.apache.org/v1beta1",
            manifest: flink_deployment,
            reconciled: true,
        },
        Kind {
            api: Api::namespaced_with(
                client.clone(),
                "default",
                &ApiResource::erase::<ServiceAccount>(&()),
            ),
            resource: "serviceaccounts",
            api_version: "v1",
            manifest: service_account,
            reconciled: false,
        },
    ]
}

impl Kind {
    /// The kind's manifest for `name` with the annotation [`REVISION`] at `revision`.
    fn at_revision(&self, name: &str, revision: &str) -> Value {
        let mut manifest = (self.manifest)(name);
        manifest["metadata"]["annotations"][REVISION] = json!(revision);
        manifest
    }

    /// Server-side apply of `manifest` by `manager`.
    async fn apply(
        &self,
        manager: &str,
        manifest: &Value,
        force: bool,
    ) -> Result<DynamicObject, kube::Error> {
        let name = manifest["metadata"]["name"].as_str().unwrap_or_default();
        let mut params = PatchParams::apply(manager);
        params.force = force;
        self.api.patch(name, &params, &Patch::Apply(manifest)).await
    }

    /// Creates `name` at revision 1 by `flink-eks`, and waits for the operator to be done
    /// with it, so that nothing but the test writes to it afterwards.
    async fn created(&self, name: &str) -> DynamicObject {
        let created = self
            .apply("flink-eks", &self.at_revision(name, "1"), false)
            .await
            .unwrap_or_else(|e| panic!("cannot create {} {name}: {e}", self.resource));
        if !self.reconciled {
            return created;
        }
        wait_for(&self.api, name, "STABLE", |o| {
            status_of(o, &["lifecycleState"]).as_deref() == Some("STABLE")
        })
        .await
    }

    async fn stored_revision(&self, name: &str) -> Option<String> {
        let stored = self
            .api
            .get(name)
            .await
            .unwrap_or_else(|e| panic!("cannot read {} {name}: {e}", self.resource));
        revision(&stored)
    }
}

fn revision(object: &DynamicObject) -> Option<String> {
    object
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(REVISION).cloned())
}

fn resource_version(object: &DynamicObject) -> String {
    object.metadata.resource_version.clone().unwrap_or_default()
}

fn stale_message(resource: &str, name: &str) -> String {
    format!(
        "Operation cannot be fulfilled on {resource} \"{name}\": the object has been modified; \
         please apply your changes to the latest version and try again"
    )
}

/// Runs `write`, expecting the API server to refuse it, and checks that it stored nothing.
async fn refused<T: std::fmt::Debug>(
    standin: &StandIn,
    write: impl std::future::Future<Output = Result<T, kube::Error>>,
) -> kube::core::Status {
    let before = standin.stats();
    let status = api_error(write.await);
    let after = standin.stats();
    assert_eq!(
        after.effective_writes, before.effective_writes,
        "a refused write changed the store: {status:?}"
    );
    assert_eq!(after.refused_writes, before.refused_writes + 1);
    status
}

#[tokio::test]
async fn writes_from_a_stale_resource_version_are_refused_and_store_nothing() {
    let standin = start().await;
    let client = client(&standin).await;
    for kind in kinds(&client) {
        let name = "stale";
        let planned = kind.created(name).await;
        let planned_version = resource_version(&planned);
        // Someone else writes after the plan read the object.
        let moved = kind
            .api
            .patch(
                name,
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {"labels": {"touched": "yes"}}})),
            )
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let mut guarded = kind.at_revision(name, "2");
        guarded["metadata"]["resourceVersion"] = json!(planned_version);
        let expected = stale_message(kind.resource, name);

        let apply = refused(&standin, kind.apply("flink-eks", &guarded, false)).await;
        let merge = refused(
            &standin,
            kind.api.patch(
                name,
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {
                    "resourceVersion": planned_version,
                    "annotations": {REVISION: "2"},
                }})),
            ),
        )
        .await;
        let mut replacement = planned.clone();
        replacement
            .metadata
            .annotations
            .get_or_insert_default()
            .insert(REVISION.to_owned(), "2".to_owned());
        let update = refused(
            &standin,
            kind.api.replace(name, &PostParams::default(), &replacement),
        )
        .await;
        for (write, status) in [("apply", apply), ("merge patch", merge), ("update", update)] {
            assert_eq!(
                (status.code, status.reason.as_str(), status.message.as_str()),
                (409, "Conflict", expected.as_str()),
                "{write} of {}",
                kind.resource
            );
        }
        assert_eq!(kind.stored_revision(name).await.as_deref(), Some("1"));

        // From the current version, the same apply goes through.
        guarded["metadata"]["resourceVersion"] = json!(resource_version(&moved));
        let applied = kind
            .apply("flink-eks", &guarded, false)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(revision(&applied).as_deref(), Some("2"));
    }
}

#[tokio::test]
async fn apply_without_force_refuses_a_field_another_manager_owns() {
    let standin = start().await;
    let client = client(&standin).await;
    for kind in kinds(&client) {
        let name = "contested";
        kind.created(name).await;
        let theirs = kind.at_revision(name, "2");
        let status = refused(&standin, kind.apply("other-tool", &theirs, false)).await;
        let field = format!(".metadata.annotations.{REVISION}");
        assert_eq!(
            (status.code, status.reason.as_str(), status.message.as_str()),
            (
                409,
                "Conflict",
                format!(
                    "Apply failed with 1 conflict: conflict with \"flink-eks\" using {}: {field}",
                    kind.api_version
                )
                .as_str()
            ),
        );
        let causes: Vec<(String, String, String)> = status
            .details
            .map(|d| d.causes)
            .unwrap_or_default()
            .into_iter()
            .map(|c| (c.reason, c.message, c.field))
            .collect();
        assert_eq!(
            causes,
            [(
                "FieldManagerConflict".to_owned(),
                format!("conflict with \"flink-eks\" using {}", kind.api_version),
                field.clone()
            )]
        );
        assert_eq!(kind.stored_revision(name).await.as_deref(), Some("1"));

        // Forced, the value changes and so does its owner.
        let forced = kind
            .apply("other-tool", &theirs, true)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(revision(&forced).as_deref(), Some("2"));
        let owners: Vec<String> = forced
            .metadata
            .managed_fields
            .unwrap_or_default()
            .into_iter()
            .filter(|entry| {
                entry.fields_v1.as_ref().is_some_and(|f| {
                    f.0["f:metadata"]["f:annotations"]
                        .get(format!("f:{REVISION}"))
                        .is_some()
                })
            })
            .filter_map(|entry| entry.manager)
            .collect();
        assert_eq!(owners, ["other-tool"], "{}", kind.resource);
    }
}

#[tokio::test]
async fn an_update_owned_field_conflicts_too_naming_when_it_was_written() {
    let standin = start().await;
    let accounts = &kinds(&client(&standin).await)[1];
    accounts.created("annotated").await;
    // `kubectl annotate --overwrite` is an Update by its own manager.
    accounts
        .api
        .patch(
            "annotated",
            &PatchParams {
                field_manager: Some("kubectl-annotate".into()),
                ..PatchParams::default()
            },
            &Patch::Merge(json!({"metadata": {"annotations": {REVISION: "by-hand"}}})),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let status = refused(
        &standin,
        accounts.apply("flink-eks", &accounts.at_revision("annotated", "3"), false),
    )
    .await;
    assert_eq!(status.code, 409);
    assert!(
        status.message.starts_with(
            "Apply failed with 1 conflict: conflict with \"kubectl-annotate\" using v1 at "
        ) && status
            .message
            .ends_with(&format!("Z: .metadata.annotations.{REVISION}")),
        "{}",
        status.message
    );
    assert_eq!(
        accounts.stored_revision("annotated").await.as_deref(),
        Some("by-hand")
    );
}

#[tokio::test]
async fn creating_an_object_that_exists_is_refused() {
    let standin = start().await;
    let client = client(&standin).await;
    for kind in kinds(&client) {
        let name = "twice";
        kind.created(name).await;
        let again: DynamicObject =
            serde_json::from_value(kind.at_revision(name, "2")).unwrap_or_else(|e| panic!("{e}"));
        let status = refused(&standin, kind.api.create(&PostParams::default(), &again)).await;
        assert_eq!(
            (status.code, status.reason.as_str(), status.message.as_str()),
            (
                409,
                "AlreadyExists",
                format!("{} \"{name}\" already exists", kind.resource).as_str()
            )
        );
        assert_eq!(kind.stored_revision(name).await.as_deref(), Some("1"));
    }
}

#[tokio::test]
async fn only_a_uid_guards_an_apply_against_a_deletion_since_the_plan() {
    let standin = start().await;
    let client = client(&standin).await;
    let accounts = &kinds(&client)[1];
    let planned = accounts.created("recreated").await;
    let uid = planned.metadata.uid.clone().unwrap_or_default();
    accounts
        .api
        .delete("recreated", &DeleteParams::default())
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    // With the planned uid, the apply is refused: the object it was planned on is gone.
    let mut guarded = accounts.at_revision("recreated", "2");
    guarded["metadata"]["uid"] = json!(uid);
    guarded["metadata"]["resourceVersion"] = json!(resource_version(&planned));
    let status = refused(&standin, accounts.apply("flink-eks", &guarded, false)).await;
    assert_eq!(
        (status.code, status.reason.as_str(), status.message.as_str()),
        (
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on serviceaccounts \"recreated\": uid mismatch: \
                 the provided object specified uid {uid}, and no existing object was found"
            )
            .as_str()
        )
    );
    assert_eq!(
        api_error(accounts.api.get("recreated").await).code,
        404,
        "the refused apply created the object"
    );

    // A resourceVersion alone does not: a real API server creates the object anew.
    guarded["metadata"].as_object_mut().map(|m| m.remove("uid"));
    let created = accounts
        .apply("flink-eks", &guarded, false)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_ne!(created.metadata.uid.as_deref(), Some(uid.as_str()));

    // A uid that names another object is refused on an update too.
    let mut other = accounts.at_revision("recreated", "3");
    other["metadata"]["uid"] = json!(uid);
    let status = refused(&standin, accounts.apply("flink-eks", &other, false)).await;
    assert_eq!(
        (status.code, status.reason.as_str()),
        (422, "Invalid"),
        "{}",
        status.message
    );
    assert_eq!(
        status.message,
        format!(
            "ServiceAccount \"recreated\" is invalid: metadata.uid: Invalid value: \"{uid}\": field is immutable"
        )
    );
    // An update (PUT) holds its body's uid as a precondition.
    let mut replacement = created.clone();
    replacement.metadata.uid = Some(uid.clone());
    let status = refused(
        &standin,
        accounts
            .api
            .replace("recreated", &PostParams::default(), &replacement),
    )
    .await;
    assert_eq!((status.code, status.reason.as_str()), (409, "Conflict"));
    assert_eq!(
        status.message,
        format!(
            "Operation cannot be fulfilled on serviceaccounts \"recreated\": StorageError: invalid object, Code: 4, \
             Key: /registry/serviceaccounts/default/recreated, ResourceVersion: 0, AdditionalErrorMsg: \
             Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
            created.metadata.uid.as_deref().unwrap_or_default()
        )
    );
    assert_eq!(
        accounts.stored_revision("recreated").await.as_deref(),
        Some("2")
    );
}

#[tokio::test]
async fn a_delete_with_stale_preconditions_is_refused() {
    let standin = start().await;
    let client = client(&standin).await;
    let accounts = &kinds(&client)[1];
    let planned = accounts.created("doomed").await;
    let moved = accounts
        .apply("flink-eks", &accounts.at_revision("doomed", "2"), false)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let stale = DeleteParams {
        preconditions: Some(kube::api::Preconditions {
            resource_version: planned.metadata.resource_version.clone(),
            uid: None,
        }),
        ..DeleteParams::default()
    };
    let status = refused(&standin, accounts.api.delete("doomed", &stale)).await;
    assert_eq!((status.code, status.reason.as_str()), (409, "Conflict"));
    assert_eq!(
        status.message,
        format!(
            "Operation cannot be fulfilled on serviceaccounts \"doomed\": StorageError: invalid object, Code: 4, \
             Key: /registry/serviceaccounts/default/doomed, ResourceVersion: 0, AdditionalErrorMsg: \
             Precondition failed: ResourceVersion in precondition: {}, ResourceVersion in object meta: {}",
            resource_version(&planned),
            resource_version(&moved)
        )
    );
    assert_eq!(
        accounts.stored_revision("doomed").await.as_deref(),
        Some("2")
    );
}

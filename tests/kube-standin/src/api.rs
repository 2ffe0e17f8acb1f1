//! The API server's semantics, independent of HTTP: create, get, list, update, patch,
//! server-side apply, delete, with the real rules for metadata (uid, resourceVersion,
//! generation, creationTimestamp), status subresources, finalizers, owner references,
//! field ownership and, for FlinkDeployments, the CRD's schema.

use std::sync::Arc;

use base64::Engine as _;
use serde_json::{Map, Value, json};

use crate::apply::{self, Part};
use crate::error::{ApiError, FieldError, FieldErrorKind};
use crate::escalation::{self, RbacWrite};
use crate::meta;
use crate::patch::{self, PatchKind};
use crate::rbac::{Policy, UserInfo};
use crate::resources::{self, FLINK_STATE_SNAPSHOTS, NAMESPACES, ResourceDef, SERVICE_ACCOUNTS};
use crate::schema::{CrdSchema, FieldValidation};
use crate::selector::{FieldSelector, LabelSelector};
use crate::store::{ObjKey, Store, TooOld, Tx};

/// Options of a write, from its query parameters.
#[derive(Clone, Debug)]
pub(crate) struct WriteOptions {
    /// `fieldManager` (or the one derived from the User-Agent).
    pub(crate) manager: String,
    /// `fieldValidation`.
    pub(crate) validation: FieldValidation,
    /// `dryRun=All`: do everything but store the result.
    pub(crate) dry_run: bool,
    /// `force=true` (server-side apply only).
    pub(crate) force: bool,
    /// Who writes, for the RBAC storage's escalation checks: `None` for the stand-in's own
    /// writes (the API server's loopback, the controllers), which are privileged.
    pub(crate) requester: Option<RequestUser>,
}

/// The user of a client's write and the name its path addresses ("" for a create).
#[derive(Clone, Debug)]
pub(crate) struct RequestUser {
    /// The authenticated (or impersonated) user.
    pub(crate) user: UserInfo,
    /// The object name in the request's path.
    pub(crate) name: String,
}

impl WriteOptions {
    /// Options for the stand-in's own writes (the operator, the kubelet).
    pub(crate) fn internal(manager: &str) -> WriteOptions {
        WriteOptions {
            manager: manager.to_owned(),
            validation: FieldValidation::Ignore,
            dry_run: false,
            force: true,
            requester: None,
        }
    }
}

/// What a write did.
#[derive(Clone, Debug)]
pub(crate) struct WriteOutcome {
    /// The object as stored (or as it would be, for a dry run).
    pub(crate) object: Arc<Value>,
    /// Whether the write created the object (201 instead of 200).
    pub(crate) created: bool,
    /// Whether anything changed (a new resourceVersion).
    pub(crate) changed: bool,
    /// Warnings for the `Warning` response header (pruned unknown fields).
    pub(crate) warnings: Vec<String>,
}

/// Options of a list, from its query parameters.
#[derive(Clone, Debug, Default)]
pub(crate) struct ListOptions {
    /// `labelSelector`.
    pub(crate) labels: LabelSelector,
    /// `fieldSelector`.
    pub(crate) fields: FieldSelector,
    /// `resourceVersion`.
    pub(crate) resource_version: Option<String>,
    /// `resourceVersionMatch`.
    pub(crate) resource_version_match: Option<String>,
    /// `limit`.
    pub(crate) limit: Option<usize>,
    /// `continue`.
    pub(crate) continue_token: Option<String>,
}

/// A page of a list.
#[derive(Debug)]
pub(crate) struct ListPage {
    /// The matching objects, by namespace and name.
    pub(crate) items: Vec<Arc<Value>>,
    /// The revision the list reflects.
    pub(crate) resource_version: u64,
    /// The token for the next page, when `limit` cut the list.
    pub(crate) continue_token: Option<String>,
    /// How many matching objects the next pages hold.
    pub(crate) remaining: usize,
}

/// Options of a delete, from its query parameters and `DeleteOptions` body.
#[derive(Clone, Debug, Default)]
pub(crate) struct DeleteOptions {
    /// `preconditions.uid`.
    pub(crate) uid: Option<String>,
    /// `preconditions.resourceVersion`.
    pub(crate) resource_version: Option<String>,
    /// `propagationPolicy=Orphan` keeps dependents.
    pub(crate) orphan: bool,
    /// `dryRun=All`.
    pub(crate) dry_run: bool,
}

/// The API server state and its rules.
#[derive(Debug)]
pub(crate) struct ApiServer {
    /// Every object.
    pub(crate) store: Store,
    /// The FlinkDeployment CRD.
    pub(crate) schema: CrdSchema,
    /// The FlinkStateSnapshot CRD.
    pub(crate) snapshot_schema: CrdSchema,
}

impl ApiServer {
    /// A server with the namespaces a new cluster has: `default`, `kube-system`,
    /// `kube-public`, `kube-node-lease`, each with a `default` service account (what the
    /// operator's Helm chart adds is `chart::populate`'s).
    pub(crate) fn new(
        schema: CrdSchema,
        snapshot_schema: CrdSchema,
        event_log_capacity: usize,
    ) -> Result<ApiServer, ApiError> {
        let server = ApiServer {
            store: Store::new(event_log_capacity),
            schema,
            snapshot_schema,
        };
        let opts = WriteOptions::internal("kube-apiserver");
        for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            server.create(
                &NAMESPACES,
                "",
                json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
                &opts,
            )?;
        }
        Ok(server)
    }

    /// One object.
    pub(crate) fn get(
        &self,
        res: &'static ResourceDef,
        namespace: &str,
        name: &str,
    ) -> Result<Arc<Value>, ApiError> {
        self.store
            .tx()
            .get(&ObjKey::new(res, namespace, name))
            .ok_or_else(|| ApiError::not_found(res, name))
    }

    /// A list, with selectors, consistent reads at a revision, and pagination.
    pub(crate) fn list(
        &self,
        res: &'static ResourceDef,
        namespace: Option<&str>,
        opts: &ListOptions,
    ) -> Result<ListPage, ApiError> {
        let tx = self.store.tx();
        let current = tx.rv();
        let mut start_after: Option<(String, String)> = None;
        let (at, objects) = if let Some(token) =
            opts.continue_token.as_deref().filter(|t| !t.is_empty())
        {
            let (rv, ns, name) = decode_continue(token)?;
            start_after = Some((ns, name));
            let objects = tx.list_at(res, namespace, rv).map_err(|_| {
                ApiError::gone(
                    "The provided continue parameter is too old to display a consistent list result. \
                     You can start a new list without the continue parameter.",
                )
            })?;
            (rv, objects)
        } else {
            let requested = parse_rv(opts.resource_version.as_deref())?;
            match (requested, opts.resource_version_match.as_deref()) {
                (Some(rv), Some("Exact")) => {
                    let objects = tx
                        .list_at(res, namespace, rv)
                        .map_err(|TooOld { oldest }| {
                            ApiError::gone(format!("too old resource version: {rv} ({oldest})"))
                        })?;
                    (rv, objects)
                }
                (Some(rv), _) if rv > current => {
                    return Err(ApiError::too_large_resource_version(rv, current));
                }
                _ => (current, tx.list(res, namespace)),
            }
        };
        drop(tx);
        let mut matching = objects
            .into_iter()
            .filter(|o| opts.labels.matches(o) && opts.fields.matches(o))
            .filter(|o| {
                start_after.as_ref().is_none_or(|(ns, name)| {
                    (meta::namespace(o), meta::name(o)) > (ns.as_str(), name.as_str())
                })
            })
            .collect::<Vec<_>>();
        let mut continue_token = None;
        let mut remaining = 0;
        if let Some(limit) = opts.limit.filter(|l| *l > 0 && *l < matching.len()) {
            remaining = matching.len() - limit;
            matching.truncate(limit);
            if let Some(last) = matching.last() {
                continue_token = Some(encode_continue(at, meta::namespace(last), meta::name(last)));
            }
        }
        Ok(ListPage {
            items: matching,
            resource_version: at,
            continue_token,
            remaining,
        })
    }

    /// POST: creates an object.
    pub(crate) fn create(
        &self,
        res: &'static ResourceDef,
        namespace: &str,
        mut body: Value,
        opts: &WriteOptions,
    ) -> Result<WriteOutcome, ApiError> {
        check_type(res, &body)?;
        let metadata = meta::metadata_mut(&mut body);
        if metadata
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .is_empty()
            && let Some(prefix) = metadata.get("generateName").and_then(Value::as_str)
        {
            let name = format!("{prefix}{}", meta::random_suffix(5));
            metadata.insert("name".into(), Value::String(name));
        }
        check_namespace(res, namespace, &body)?;
        let name = meta::name(&body).to_owned();
        let mut tx = self.store.tx();
        if res.namespaced && tx.get(&ObjKey::new(&NAMESPACES, "", namespace)).is_none() {
            return Err(ApiError::namespace_not_found(namespace));
        }
        if tx.get(&ObjKey::new(res, namespace, &name)).is_some() {
            return Err(ApiError::already_exists(res, &name));
        }
        let warnings = self.prune(res, &mut body, opts.validation, Strictness::Decode)?;
        let outcome = self.commit(
            &mut tx,
            res,
            namespace,
            None,
            body,
            Part::Main,
            opts,
            Op::Update,
        )?;
        Ok(WriteOutcome {
            warnings,
            ..outcome
        })
    }

    /// PUT: replaces an object (or its status).
    pub(crate) fn replace(
        &self,
        res: &'static ResourceDef,
        namespace: &str,
        name: &str,
        part: Part,
        mut body: Value,
        opts: &WriteOptions,
    ) -> Result<WriteOutcome, ApiError> {
        check_type(res, &body)?;
        check_name(name, &body)?;
        check_namespace(res, namespace, &body)?;
        let mut tx = self.store.tx();
        let live = tx
            .get(&ObjKey::new(res, namespace, name))
            .ok_or_else(|| ApiError::not_found(res, name))?;
        // The body's uid is a precondition of an update, checked before anything else.
        check_uid_precondition(
            res,
            namespace,
            name,
            &live,
            meta::meta_str(&body, "uid").filter(|uid| !uid.is_empty()),
        )?;
        match meta::meta_str(&body, "resourceVersion") {
            None | Some("") => {
                return Err(ApiError::invalid(
                    res,
                    name,
                    &[FieldError {
                        field: "metadata.resourceVersion".into(),
                        kind: FieldErrorKind::Invalid {
                            value: json!(0),
                            detail: "must be specified for an update".into(),
                        },
                    }],
                ));
            }
            Some(rv) if Some(rv) != meta::meta_str(&live, "resourceVersion") => {
                return Err(ApiError::stale(res, name));
            }
            Some(_) => {}
        }
        let warnings = self.prune(res, &mut body, opts.validation, Strictness::Decode)?;
        let outcome = self.commit(
            &mut tx,
            res,
            namespace,
            Some(&live),
            body,
            part,
            opts,
            Op::Update,
        )?;
        Ok(WriteOutcome {
            warnings,
            ..outcome
        })
    }

    /// PATCH: merge, strategic, JSON patch, or server-side apply (which creates when missing).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn patch(
        &self,
        res: &'static ResourceDef,
        namespace: &str,
        name: &str,
        part: Part,
        kind: PatchKind,
        body: Value,
        opts: &WriteOptions,
    ) -> Result<WriteOutcome, ApiError> {
        let mut tx = self.store.tx();
        let key = ObjKey::new(res, namespace, name);
        let live = tx.get(&key);
        if kind == PatchKind::Apply {
            return self.server_side_apply(
                &mut tx,
                res,
                namespace,
                name,
                part,
                live.as_deref(),
                body,
                opts,
            );
        }
        let live = live.ok_or_else(|| ApiError::not_found(res, name))?;
        let mut patched = (*live).clone();
        match kind {
            PatchKind::Merge | PatchKind::Strategic => patch::merge_patch(&mut patched, &body),
            PatchKind::Json => patch::json_patch(&mut patched, &body)?,
            PatchKind::Apply => {}
        }
        check_type(res, &patched)?;
        check_name(name, &patched)?;
        check_resource_version(
            res,
            name,
            &live,
            meta::meta_str(&patched, "resourceVersion"),
        )?;
        check_uid_unchanged(res, name, &live, meta::meta_str(&patched, "uid"))?;
        let warnings = self.prune(res, &mut patched, opts.validation, Strictness::Patch(&body))?;
        let outcome = self.commit(
            &mut tx,
            res,
            namespace,
            Some(&live),
            patched,
            part,
            opts,
            Op::Update,
        )?;
        Ok(WriteOutcome {
            warnings,
            ..outcome
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn server_side_apply(
        &self,
        tx: &mut Tx<'_>,
        res: &'static ResourceDef,
        namespace: &str,
        name: &str,
        part: Part,
        live: Option<&Value>,
        mut applied: Value,
        opts: &WriteOptions,
    ) -> Result<WriteOutcome, ApiError> {
        if !applied.is_object() {
            return Err(ApiError::bad_request(
                "the applied configuration must be an object",
            ));
        }
        let (api_version, kind) = (
            applied
                .get("apiVersion")
                .and_then(Value::as_str)
                .unwrap_or(""),
            applied.get("kind").and_then(Value::as_str).unwrap_or(""),
        );
        if api_version.is_empty() || kind.is_empty() {
            return Err(ApiError::bad_request(
                "invalid object type: apiVersion and kind must be set in a server-side apply",
            ));
        }
        check_type(res, &applied)?;
        check_name(name, &applied)?;
        check_namespace(res, namespace, &applied)?;
        if opts.manager.is_empty() {
            return Err(ApiError::bad_request(
                "PATCH with apply requires a fieldManager query parameter",
            ));
        }
        let body_rv = meta::meta_str(&applied, "resourceVersion").map(str::to_owned);
        let body_uid = meta::meta_str(&applied, "uid").map(str::to_owned);
        // An apply that creates ignores the body's resourceVersion (the storage layer clears
        // it), but not its uid: the object that uid named is gone.
        if live.is_none()
            && let Some(uid) = body_uid.as_deref().filter(|uid| !uid.is_empty())
        {
            return Err(ApiError::uid_mismatch_on_create(res, name, uid));
        }
        if live.is_none()
            && res.namespaced
            && tx.get(&ObjKey::new(&NAMESPACES, "", namespace)).is_none()
        {
            return Err(ApiError::namespace_not_found(namespace));
        }
        // Only what the addressed part owns is applied.
        if let Value::Object(map) = &mut applied {
            match part {
                Part::Main if res.status_subresource => {
                    map.remove("status");
                }
                Part::Status => map.retain(|k, _| {
                    matches!(k.as_str(), "apiVersion" | "kind" | "metadata" | "status")
                }),
                Part::Main => {}
            }
            if let Some(Value::Object(metadata)) = map.get_mut("metadata") {
                metadata.retain(|k, _| {
                    matches!(
                        k.as_str(),
                        "name"
                            | "namespace"
                            | "labels"
                            | "annotations"
                            | "finalizers"
                            | "ownerReferences"
                    )
                });
            }
        }
        let warnings = self.prune(res, &mut applied, opts.validation, Strictness::Apply)?;
        let merged = match part {
            Part::Main => apply::apply(
                live,
                &applied,
                res,
                &opts.manager,
                opts.force,
                &meta::now_rfc3339(),
            )
            .map_err(|conflicts| ApiError::apply_conflict(res, name, &conflicts.0))?,
            Part::Status => {
                let live = live.ok_or_else(|| ApiError::not_found(res, name))?;
                let mut merged = live.clone();
                patch::merge_patch(
                    &mut merged,
                    &json!({"status": applied.get("status").cloned().unwrap_or(Value::Null)}),
                );
                merged
            }
        };
        // As on the real server, field conflicts are found before the stored object's
        // resourceVersion is compared, and the uid is checked last.
        if let Some(live) = live {
            check_resource_version(res, name, live, body_rv.as_deref())?;
            check_uid_unchanged(res, name, live, body_uid.as_deref())?;
        }
        let op = if part == Part::Main {
            Op::Apply
        } else {
            Op::Update
        };
        let outcome = self.commit(tx, res, namespace, live, merged, part, opts, op)?;
        Ok(WriteOutcome {
            warnings,
            ..outcome
        })
    }

    /// DELETE: removes an object, or marks it for deletion while finalizers remain.
    pub(crate) fn delete(
        &self,
        res: &'static ResourceDef,
        namespace: &str,
        name: &str,
        opts: &DeleteOptions,
    ) -> Result<WriteOutcome, ApiError> {
        let mut tx = self.store.tx();
        let key = ObjKey::new(res, namespace, name);
        let live = tx.get(&key).ok_or_else(|| ApiError::not_found(res, name))?;
        check_uid_precondition(res, namespace, name, &live, opts.uid.as_deref())?;
        let live_rv = meta::meta_str(&live, "resourceVersion").unwrap_or_default();
        if let Some(rv) = opts.resource_version.as_deref()
            && rv != live_rv
        {
            return Err(ApiError::precondition_failed(
                res,
                namespace,
                name,
                "ResourceVersion",
                rv,
                live_rv,
            ));
        }
        let has_finalizers = !meta::finalizers(&live).is_empty() || res == &NAMESPACES;
        if opts.dry_run {
            return Ok(WriteOutcome {
                object: live,
                created: false,
                changed: false,
                warnings: vec![],
            });
        }
        if has_finalizers {
            if meta::is_deleting(&live) {
                return Ok(WriteOutcome {
                    object: live,
                    created: false,
                    changed: false,
                    warnings: vec![],
                });
            }
            let mut marked = (*live).clone();
            let metadata = meta::metadata_mut(&mut marked);
            metadata.insert(
                "deletionTimestamp".into(),
                Value::String(meta::now_rfc3339()),
            );
            metadata.insert("deletionGracePeriodSeconds".into(), json!(0));
            if res == &NAMESPACES {
                marked["status"] = json!({"phase": "Terminating"});
                let object = tx.put(key, marked);
                // Namespace controller: delete everything in it, then the namespace.
                self.delete_namespace_contents(&mut tx, name);
                tx.remove(&ObjKey::new(&NAMESPACES, "", name));
                return Ok(WriteOutcome {
                    object,
                    created: false,
                    changed: true,
                    warnings: vec![],
                });
            }
            let object = tx.put(key, marked);
            return Ok(WriteOutcome {
                object,
                created: false,
                changed: true,
                warnings: vec![],
            });
        }
        let object = remove_cascading(&mut tx, &key, opts.orphan).unwrap_or(live);
        Ok(WriteOutcome {
            object,
            created: false,
            changed: true,
            warnings: vec![],
        })
    }

    /// The garbage collector's sweep: removes objects whose owners are all gone (an owner
    /// deleted while a dependent was being created, for instance).
    pub(crate) fn collect_garbage(&self) {
        let mut tx = self.store.tx();
        let keys = tx.keys();
        let objects: Vec<(ObjKey, Arc<Value>)> = keys
            .into_iter()
            .filter_map(|k| tx.get(&k).map(|o| (k, o)))
            .collect();
        let uids: std::collections::HashSet<&str> =
            objects.iter().map(|(_, o)| meta::uid(o)).collect();
        let orphans: Vec<ObjKey> = objects
            .iter()
            .filter(|(_, o)| {
                let owners: Vec<&str> = meta::metadata(o)
                    .and_then(|m| m.get("ownerReferences"))
                    .and_then(Value::as_array)
                    .map(|refs| {
                        refs.iter()
                            .filter_map(|r| r.get("uid").and_then(Value::as_str))
                            .collect()
                    })
                    .unwrap_or_default();
                !owners.is_empty() && owners.iter().all(|uid| !uids.contains(uid))
            })
            .map(|(k, _)| k.clone())
            .collect();
        for key in orphans {
            remove_cascading(&mut tx, &key, false);
        }
    }

    fn delete_namespace_contents(&self, tx: &mut Tx<'_>, namespace: &str) {
        for key in tx.keys() {
            if key.res.namespaced && key.namespace == namespace {
                tx.remove(&key);
            }
        }
    }

    /// Changes an object through `change` (given the live object, or `None`), as the
    /// stand-in's own controllers do. Returning `None` from `change` leaves it alone.
    pub(crate) fn upsert(
        &self,
        res: &'static ResourceDef,
        namespace: &str,
        name: &str,
        part: Part,
        manager: &str,
        change: impl FnOnce(Option<&Value>) -> Option<Value>,
    ) -> Result<Option<WriteOutcome>, ApiError> {
        let mut tx = self.store.tx();
        let live = tx.get(&ObjKey::new(res, namespace, name));
        let Some(new) = change(live.as_deref()) else {
            return Ok(None);
        };
        let opts = WriteOptions::internal(manager);
        if live.is_none()
            && res.namespaced
            && tx.get(&ObjKey::new(&NAMESPACES, "", namespace)).is_none()
        {
            return Err(ApiError::namespace_not_found(namespace));
        }
        self.commit(
            &mut tx,
            res,
            namespace,
            live.as_deref(),
            new,
            part,
            &opts,
            Op::Update,
        )
        .map(Some)
    }

    /// The CRD schema of a custom resource (the FlinkDeployment's for any other).
    pub(crate) fn schema_of(&self, res: &ResourceDef) -> &CrdSchema {
        if res == &FLINK_STATE_SNAPSHOTS {
            &self.snapshot_schema
        } else {
            &self.schema
        }
    }

    /// Prunes unknown fields of custom resources as `fieldValidation` says.
    fn prune(
        &self,
        res: &'static ResourceDef,
        object: &mut Value,
        validation: FieldValidation,
        strictness: Strictness<'_>,
    ) -> Result<Vec<String>, ApiError> {
        if !res.custom {
            return Ok(Vec::new());
        }
        let unknown = self.schema_of(res).prune(object);
        if unknown.is_empty() || validation == FieldValidation::Ignore {
            return Ok(Vec::new());
        }
        if validation == FieldValidation::Strict {
            let name = meta::name(object);
            return Err(strict_error(res, name, &unknown, strictness));
        }
        Ok(unknown
            .iter()
            .map(|f| format!("unknown field \"{f}\""))
            .collect())
    }

    /// The common end of every write: status subresource rules, system metadata, schema
    /// validation, generation, field ownership, no-op detection, finalizers, storage.
    #[allow(clippy::too_many_arguments)]
    fn commit(
        &self,
        tx: &mut Tx<'_>,
        res: &'static ResourceDef,
        namespace: &str,
        live: Option<&Value>,
        mut new: Value,
        part: Part,
        opts: &WriteOptions,
        op: Op,
    ) -> Result<WriteOutcome, ApiError> {
        let name = match live {
            Some(live) => meta::name(live).to_owned(),
            None => meta::name(&new).to_owned(),
        };
        // Status subresource: the main resource keeps the stored status; `/status` changes
        // nothing but status.
        if res.status_subresource {
            match (part, live) {
                (Part::Main, Some(live)) => set_or_remove(&mut new, "status", live.get("status")),
                (Part::Main, None) if res.custom => set_or_remove(&mut new, "status", None),
                (Part::Status, Some(live)) => {
                    let status = new.get("status").cloned();
                    new = live.clone();
                    set_or_remove(&mut new, "status", status.as_ref());
                }
                (Part::Main | Part::Status, None) => {}
            }
        }
        if let Value::Object(map) = &mut new {
            map.insert("apiVersion".into(), Value::String(res.api_version()));
            map.insert("kind".into(), Value::String(res.kind.to_owned()));
        }
        let now = meta::now_rfc3339();
        system_metadata(res, namespace, live, &mut new, &now);
        if part == Part::Main
            && let Some(requester) = &opts.requester
        {
            // The RBAC storage's escalation checks, before validation as on the real server.
            escalation::check(
                &Policy::read_in(tx),
                &RbacWrite {
                    user: &requester.user,
                    resource: res,
                    namespace,
                    request_name: &requester.name,
                    live,
                    new: &new,
                },
            )?;
        }
        if part == Part::Main {
            let errors = validate_metadata(res, &new);
            if !errors.is_empty() {
                return Err(ApiError::invalid(res, &name, &errors));
            }
        }
        if res.custom {
            self.schema_of(res).apply_defaults(&mut new);
            let errors = self.schema_of(res).validate(&strip_for_validation(&new));
            if !errors.is_empty() {
                return Err(ApiError::invalid(res, &name, &errors));
            }
        }
        if res.has_generation {
            let generation = match live {
                None => 1,
                Some(live) if spec_part(live) != spec_part(&new) => meta::generation(live) + 1,
                Some(live) => meta::generation(live),
            };
            meta::metadata_mut(&mut new).insert("generation".into(), json!(generation));
        }
        if op == Op::Update {
            // Field ownership is the server's to record, whatever the body says.
            let owned = live.and_then(|l| meta::metadata(l)?.get("managedFields").cloned());
            match owned {
                Some(owned) => {
                    meta::metadata_mut(&mut new).insert("managedFields".into(), owned);
                }
                None => {
                    meta::metadata_mut(&mut new).remove("managedFields");
                }
            }
            apply::record_update(live, &mut new, res, part, &opts.manager, &now);
        }
        if let Some(live) = live
            && *live == new
        {
            return Ok(WriteOutcome {
                object: Arc::new(live.clone()),
                created: false,
                changed: false,
                warnings: vec![],
            });
        }
        if opts.dry_run {
            return Ok(WriteOutcome {
                object: Arc::new(new),
                created: live.is_none(),
                changed: false,
                warnings: vec![],
            });
        }
        let key = ObjKey::new(res, namespace, &name);
        if meta::is_deleting(&new) && meta::finalizers(&new).is_empty() {
            // The last finalizer is gone: the deletion completes.
            let object = tx.put(key.clone(), new);
            let object = remove_cascading(tx, &key, false).unwrap_or(object);
            return Ok(WriteOutcome {
                object,
                created: false,
                changed: true,
                warnings: vec![],
            });
        }
        let created = live.is_none();
        let object = tx.put(key, new);
        if created && res == &NAMESPACES {
            let sa = json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default", "namespace": name}});
            let mut sa_obj = sa;
            system_metadata(&SERVICE_ACCOUNTS, &name, None, &mut sa_obj, &now);
            tx.put(ObjKey::new(&SERVICE_ACCOUNTS, &name, "default"), sa_obj);
        }
        Ok(WriteOutcome {
            object,
            created,
            changed: true,
            warnings: vec![],
        })
    }
}

/// Which kind of write reached `commit`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    /// Server-side apply: field ownership already computed.
    Apply,
    /// Any other write.
    Update,
}

/// Where an unknown field was found, for the wording of the strict error.
#[derive(Clone, Copy, Debug)]
enum Strictness<'a> {
    /// Decoding a create or update body: 400.
    Decode,
    /// A merge or JSON patch: 422 naming the patch.
    Patch(&'a Value),
    /// A server-side apply: 400, as the real typed-patch error.
    Apply,
}

fn strict_error(
    res: &ResourceDef,
    name: &str,
    unknown: &[String],
    strictness: Strictness<'_>,
) -> ApiError {
    let fields: Vec<String> = unknown
        .iter()
        .map(|f| format!("unknown field \"{f}\""))
        .collect();
    let fields = fields.join(", ");
    match strictness {
        Strictness::Decode => ApiError::bad_request(format!(
            "{} in version \"{}\" cannot be handled as a {}: strict decoding error: {fields}",
            res.kind, res.version, res.kind
        )),
        Strictness::Patch(patch) => ApiError::invalid(
            res,
            name,
            &[FieldError {
                field: "patch".into(),
                kind: FieldErrorKind::Invalid {
                    value: Value::String(patch.to_string()),
                    detail: format!("strict decoding error: {fields}"),
                },
            }],
        ),
        Strictness::Apply => {
            let declared: Vec<String> = unknown
                .iter()
                .map(|f| format!(".{f}: field not declared in schema"))
                .collect();
            ApiError::bad_request(format!(
                "failed to create typed patch object ({}, Kind={}): {}",
                res.api_version(),
                res.kind,
                declared.join(", ")
            ))
        }
    }
}

fn set_or_remove(object: &mut Value, key: &str, value: Option<&Value>) {
    if let Value::Object(map) = object {
        match value {
            Some(v) => {
                map.insert(key.to_owned(), v.clone());
            }
            None => {
                map.remove(key);
            }
        }
    }
}

/// Everything but metadata and status: what a generation counts.
fn spec_part(object: &Value) -> Value {
    let mut copy = object.clone();
    if let Value::Object(map) = &mut copy {
        map.remove("metadata");
        map.remove("status");
    }
    copy
}

/// The object as the CRD schema sees it: metadata is validated by the server, not the schema.
fn strip_for_validation(object: &Value) -> Value {
    let mut copy = object.clone();
    if let Value::Object(map) = &mut copy {
        map.remove("metadata");
        map.remove("apiVersion");
        map.remove("kind");
    }
    copy
}

/// Sets what the server owns in metadata: uid, creationTimestamp, namespace; keeps what the
/// client cannot change; drops what the client cannot set.
fn system_metadata(
    res: &ResourceDef,
    namespace: &str,
    live: Option<&Value>,
    new: &mut Value,
    now: &str,
) {
    let metadata = meta::metadata_mut(new);
    if res.namespaced {
        metadata.insert("namespace".into(), Value::String(namespace.to_owned()));
    } else {
        metadata.remove("namespace");
    }
    metadata.remove("resourceVersion");
    match live.and_then(meta::metadata) {
        Some(live_meta) => {
            for field in [
                "uid",
                "creationTimestamp",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "generation",
                "resourceVersion",
            ] {
                match live_meta.get(field) {
                    Some(v) => metadata.insert(field.into(), v.clone()),
                    None => metadata.remove(field),
                };
            }
        }
        None => {
            metadata.insert("uid".into(), Value::String(meta::new_uid()));
            metadata.insert("creationTimestamp".into(), Value::String(now.to_owned()));
            for field in [
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "generation",
            ] {
                metadata.remove(field);
            }
        }
    }
    if let Some(Value::Object(labels)) = metadata.get("labels")
        && labels.is_empty()
    {
        metadata.remove("labels");
    }
    if res == &NAMESPACES {
        let name = Value::String(
            metadata
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned(),
        );
        let labels = metadata
            .entry("labels")
            .or_insert_with(|| Value::Object(Map::new()));
        meta::ensure_object(labels).insert("kubernetes.io/metadata.name".into(), name);
        if live.is_none() {
            new["spec"] = json!({"finalizers": ["kubernetes"]});
            new["status"] = json!({"phase": "Active"});
        }
    }
    if res == &resources::PODS && live.is_none() && new.get("status").is_none() {
        new["status"] = json!({"phase": "Pending", "qosClass": "BestEffort"});
    }
}

/// The server's own checks of metadata: a valid name.
fn validate_metadata(res: &ResourceDef, object: &Value) -> Vec<FieldError> {
    let name = meta::name(object);
    if name.is_empty() {
        return vec![FieldError {
            field: "metadata.name".into(),
            kind: FieldErrorKind::Required,
        }];
    }
    let (ok, rule) = if res == &NAMESPACES {
        (is_dns1123_label(name), DNS1123_LABEL_RULE)
    } else if res == &resources::EVENTS {
        // core/v1 Event names are not checked (`legacyValidateEvent`): the operator's are
        // `JobManagerDeployment.<hash>`.
        (true, "")
    } else if res.group == resources::RBAC_GROUP {
        // RBAC names are path segments (`system:basic-user` is valid).
        let bad = match name {
            "." | ".." => Some(format!("may not be '{name}'")),
            _ if name.contains('/') => Some("may not contain '/'".to_owned()),
            _ if name.contains('%') => Some("may not contain '%'".to_owned()),
            _ => None,
        };
        match bad {
            None => (true, ""),
            Some(detail) => {
                return vec![FieldError {
                    field: "metadata.name".into(),
                    kind: FieldErrorKind::Invalid {
                        value: Value::String(name.to_owned()),
                        detail,
                    },
                }];
            }
        }
    } else {
        (is_dns1123_subdomain(name), DNS1123_SUBDOMAIN_RULE)
    };
    if ok {
        return Vec::new();
    }
    vec![FieldError {
        field: "metadata.name".into(),
        kind: FieldErrorKind::Invalid {
            value: Value::String(name.to_owned()),
            detail: rule.to_owned(),
        },
    }]
}

const DNS1123_LABEL_RULE: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', \
     and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is \
     '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const DNS1123_SUBDOMAIN_RULE: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, \
     '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation \
     is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";

fn is_dns1123_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

fn is_dns1123_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_dns1123_label)
}

/// Checks `apiVersion` and `kind` of a body against the resource of the URL (when set).
fn check_type(res: &ResourceDef, body: &Value) -> Result<(), ApiError> {
    if !body.is_object() {
        return Err(ApiError::bad_request(
            "the body of the request must be a JSON or YAML object",
        ));
    }
    if let Some(api_version) = body.get("apiVersion").and_then(Value::as_str)
        && api_version != res.api_version()
    {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({api_version}) does not match the expected API version ({})",
            res.api_version()
        )));
    }
    if let Some(kind) = body.get("kind").and_then(Value::as_str)
        && kind != res.kind
    {
        return Err(ApiError::bad_request(format!(
            "{} in version \"{}\" cannot be handled as a {}: the kind in the data ({kind}) does not match",
            res.kind, res.version, res.kind
        )));
    }
    Ok(())
}

/// A write whose body carries a `resourceVersion` other than the stored one is based on a
/// stale read: 409, nothing stored. Without one, the write is unconditional.
fn check_resource_version(
    res: &ResourceDef,
    name: &str,
    live: &Value,
    body_rv: Option<&str>,
) -> Result<(), ApiError> {
    match body_rv.filter(|rv| !rv.is_empty()) {
        Some(rv) if Some(rv) != meta::meta_str(live, "resourceVersion") => {
            Err(ApiError::stale(res, name))
        }
        _ => Ok(()),
    }
}

/// The `uid` precondition of an update's body or a delete's options: when given, it must be
/// the stored object's, or the write is refused with 409 (the storage layer's "Precondition
/// failed: UID").
fn check_uid_precondition(
    res: &ResourceDef,
    namespace: &str,
    name: &str,
    live: &Value,
    wanted: Option<&str>,
) -> Result<(), ApiError> {
    match wanted {
        Some(uid) if uid != meta::uid(live) => Err(ApiError::precondition_failed(
            res,
            namespace,
            name,
            "UID",
            uid,
            meta::uid(live),
        )),
        _ => Ok(()),
    }
}

/// `metadata.uid` is immutable: a patch or apply that sets another one is invalid.
fn check_uid_unchanged(
    res: &ResourceDef,
    name: &str,
    live: &Value,
    body_uid: Option<&str>,
) -> Result<(), ApiError> {
    match body_uid.filter(|uid| !uid.is_empty()) {
        Some(uid) if uid != meta::uid(live) => Err(ApiError::invalid(
            res,
            name,
            &[FieldError {
                field: "metadata.uid".into(),
                kind: FieldErrorKind::Invalid {
                    value: Value::String(uid.to_owned()),
                    detail: "field is immutable".into(),
                },
            }],
        )),
        _ => Ok(()),
    }
}

fn check_name(name: &str, body: &Value) -> Result<(), ApiError> {
    let body_name = meta::name(body);
    if !body_name.is_empty() && body_name != name {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({body_name}) does not match the name on the URL ({name})"
        )));
    }
    Ok(())
}

fn check_namespace(res: &ResourceDef, namespace: &str, body: &Value) -> Result<(), ApiError> {
    let body_ns = meta::namespace(body);
    if res.namespaced && !body_ns.is_empty() && body_ns != namespace {
        return Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        ));
    }
    Ok(())
}

/// Removes an object and (unless `orphan`) every object it owns, as the garbage collector
/// would, recursively.
fn remove_cascading(tx: &mut Tx<'_>, key: &ObjKey, orphan: bool) -> Option<Arc<Value>> {
    let removed = tx.remove(key)?;
    if orphan {
        return Some(removed);
    }
    let uid = meta::uid(&removed).to_owned();
    let dependents: Vec<ObjKey> = tx
        .keys()
        .into_iter()
        .filter(|k| {
            tx.get(k).is_some_and(|o| {
                meta::metadata(&o)
                    .and_then(|m| m.get("ownerReferences"))
                    .and_then(Value::as_array)
                    .is_some_and(|refs| {
                        refs.iter()
                            .any(|r| r.get("uid").and_then(Value::as_str) == Some(uid.as_str()))
                    })
            })
        })
        .collect();
    for dependent in dependents {
        remove_cascading(tx, &dependent, false);
    }
    Some(removed)
}

fn parse_rv(rv: Option<&str>) -> Result<Option<u64>, ApiError> {
    match rv {
        None | Some("") | Some("0") => Ok(None),
        Some(text) => text.parse().map(Some).map_err(|_| {
            ApiError::bad_request(format!(
                "invalid resource version {text:?}: must be a number"
            ))
        }),
    }
}

fn encode_continue(rv: u64, namespace: &str, name: &str) -> String {
    let token = json!({"rv": rv, "start": [namespace, name]});
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(token.to_string())
}

fn decode_continue(token: &str) -> Result<(u64, String, String), ApiError> {
    let invalid = || ApiError::bad_request(format!("continue key is not valid: {token:?}"));
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| invalid())?;
    let value: Value = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
    let rv = value
        .get("rv")
        .and_then(Value::as_u64)
        .ok_or_else(invalid)?;
    let ns = value
        .pointer("/start/0")
        .and_then(Value::as_str)
        .ok_or_else(invalid)?;
    let name = value
        .pointer("/start/1")
        .and_then(Value::as_str)
        .ok_or_else(invalid)?;
    Ok((rv, ns.to_owned(), name.to_owned()))
}

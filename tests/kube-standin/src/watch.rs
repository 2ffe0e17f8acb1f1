//! Watches: a stream of JSON lines (`{"type":"ADDED","object":{...}}`) read from the store's
//! event log, resumable from any revision the log still holds; older revisions get an
//! `ERROR` event carrying a 410 `Status`, as a real server sends them.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::Stream;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::api::ApiServer;
use crate::error::ApiError;
use crate::resources::ResourceDef;
use crate::selector::{FieldSelector, LabelSelector};
use crate::store::{EventKind, TooOld};

/// What a watch asks for.
pub(crate) struct WatchRequest {
    /// The watched resource.
    pub(crate) res: &'static ResourceDef,
    /// One namespace, or all.
    pub(crate) namespace: Option<String>,
    /// `labelSelector`.
    pub(crate) labels: LabelSelector,
    /// `fieldSelector`.
    pub(crate) fields: FieldSelector,
    /// `resourceVersion`: resume after this revision; `None` (or "0") starts with the
    /// current objects as ADDED events.
    pub(crate) resource_version: Option<u64>,
    /// `timeoutSeconds`: the server ends the watch after this long.
    pub(crate) timeout: Option<Duration>,
    /// `sendInitialEvents=true`: ADDED for every current object, then a BOOKMARK marking
    /// their end, then changes.
    pub(crate) send_initial_events: bool,
    /// A scripted fault: cut the connection (an aborted body) after this many events.
    pub(crate) drop_after: Option<u32>,
    /// Renders each object sent (as a one-row Table, for `kubectl get -w`).
    pub(crate) render: Option<Render>,
}

/// Turns a stored object into what a watch event carries.
pub(crate) type Render = Box<dyn Fn(&Value) -> Value + Send + Sync>;

impl std::fmt::Debug for WatchRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WatchRequest")
            .field("res", &self.res.plural)
            .field("namespace", &self.namespace)
            .field("resource_version", &self.resource_version)
            .finish_non_exhaustive()
    }
}

/// Starts a watch; the stream ends when the watch times out, the client goes away, the
/// server shuts down, or (with `drop_after`) fails mid-stream.
pub(crate) fn start(
    api: Arc<ApiServer>,
    request: WatchRequest,
    shutdown: CancellationToken,
) -> impl Stream<Item = Result<Bytes, io::Error>> + Send + 'static {
    let (sender, mut receiver) = mpsc::channel(64);
    tokio::spawn(run(api, request, sender, shutdown));
    futures::stream::poll_fn(move |cx| receiver.poll_recv(cx))
}

type Sender = mpsc::Sender<Result<Bytes, io::Error>>;

fn line(event_type: &str, object: &Value) -> Bytes {
    let mut text = json!({"type": event_type, "object": object}).to_string();
    text.push('\n');
    Bytes::from(text)
}

fn object_line(request: &WatchRequest, event_type: &str, object: &Value) -> Bytes {
    match &request.render {
        Some(render) => line(event_type, &render(object)),
        None => line(event_type, object),
    }
}

async fn run(
    api: Arc<ApiServer>,
    request: WatchRequest,
    sender: Sender,
    shutdown: CancellationToken,
) {
    // Subscribe before reading, so no change between the read and the wait is missed.
    let mut changes = api.store.subscribe();
    let deadline = request.timeout.map(|t| tokio::time::Instant::now() + t);
    let mut sent: u32 = 0;
    let namespace = request.namespace.as_deref();
    let matches = |object: &Value| request.labels.matches(object) && request.fields.matches(object);

    let mut cursor = match request.resource_version {
        Some(rv) if !request.send_initial_events => rv,
        _ => {
            let (rv, objects) = {
                let tx = api.store.tx();
                (tx.rv(), tx.list(request.res, namespace))
            };
            for object in objects.iter().filter(|o| matches(o)) {
                if !send(
                    &sender,
                    line("ADDED", object),
                    &mut sent,
                    request.drop_after,
                )
                .await
                {
                    return;
                }
            }
            if request.send_initial_events {
                let bookmark = json!({
                    "apiVersion": request.res.api_version(),
                    "kind": request.res.kind,
                    "metadata": {"resourceVersion": rv.to_string(), "annotations": {"k8s.io/initial-events-end": "true"}},
                });
                if sender.send(Ok(line("BOOKMARK", &bookmark))).await.is_err() {
                    return;
                }
            }
            rv
        }
    };

    loop {
        let events = match api.store.events_after(cursor) {
            Ok(events) => events,
            Err(TooOld { oldest }) => {
                let status =
                    ApiError::gone(format!("too old resource version: {cursor} ({oldest})"))
                        .to_status();
                let _ = sender.send(Ok(line("ERROR", &status))).await;
                return;
            }
        };
        for event in events {
            cursor = event.rv;
            if event.key.res != request.res || namespace.is_some_and(|ns| ns != event.key.namespace)
            {
                continue;
            }
            let now_matches = matches(&event.object);
            let was_matching = event.previous.as_deref().is_some_and(matches);
            let event_type = match event.kind {
                EventKind::Added if now_matches => "ADDED",
                EventKind::Modified if now_matches && was_matching => "MODIFIED",
                EventKind::Modified if now_matches => "ADDED",
                EventKind::Modified if was_matching => "DELETED",
                EventKind::Deleted if was_matching || now_matches => "DELETED",
                _ => continue,
            };
            if !send(
                &sender,
                object_line(&request, event_type, &event.object),
                &mut sent,
                request.drop_after,
            )
            .await
            {
                return;
            }
        }
        let timeout = async {
            match deadline {
                Some(deadline) => tokio::time::sleep_until(deadline).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            changed = changes.changed() => if changed.is_err() { return },
            () = timeout => return,
            () = shutdown.cancelled() => return,
            () = sender.closed() => return,
        }
    }
}

/// Sends one event; false when the watch must end (client gone, or the scripted drop).
async fn send(sender: &Sender, bytes: Bytes, sent: &mut u32, drop_after: Option<u32>) -> bool {
    if drop_after.is_some_and(|limit| *sent >= limit) {
        let _ = sender
            .send(Err(io::Error::new(
                io::ErrorKind::ConnectionReset,
                "kube-standin: watch dropped by a scripted fault",
            )))
            .await;
        return false;
    }
    *sent += 1;
    sender.send(Ok(bytes)).await.is_ok()
}

//! Deleting a FlinkDeployment and watching until it is gone.

use std::time::Duration;

use futures::StreamExt as _;
use kube::api::DeleteParams;
use kube::runtime::WatchStreamExt as _;
use kube::runtime::watcher;

use crate::error::{Error, Result, from_kube};

use super::{Deletion, Submitter};

impl Submitter {
    /// Deletes the FlinkDeployment and watches until it is gone (the operator's finalizer
    /// removes the cluster first), for at most `timeout`.
    pub async fn delete(&self, namespace: &str, name: &str, timeout: Duration) -> Result<Deletion> {
        let api = self.api(namespace);
        let action = || format!("delete FlinkDeployment {namespace}/{name}");
        // Read first: deleting what is already gone sends no write at all.
        let live = Box::pin(api.get_opt(name))
            .await
            .map_err(|e| from_kube(format!("read FlinkDeployment {namespace}/{name}"), e))?;
        if live.is_none() {
            return Ok(Deletion::NotFound);
        }
        let deleted = match Box::pin(api.delete(name, &DeleteParams::background())).await {
            Ok(deleted) => deleted,
            Err(kube::Error::Api(status)) if status.is_not_found() => {
                return Ok(Deletion::NotFound);
            }
            Err(err) => return Err(from_kube(action(), err)),
        };
        let Some(uid) = deleted.left().and_then(|d| d.metadata.uid) else {
            return Ok(Deletion::Deleted);
        };
        let gone = async {
            let mut events = Box::pin(watcher::watch_object(api.clone(), name).default_backoff());
            while let Some(event) = events.next().await {
                match event {
                    Ok(Some(d)) if d.metadata.uid.as_deref() == Some(uid.as_str()) => {}
                    Ok(_) => return,
                    Err(err) => {
                        tracing::debug!(%namespace, %name, error = %err, "watch interrupted, resuming")
                    }
                }
            }
        };
        tokio::time::timeout(timeout, Box::pin(gone))
            .await
            .map_err(|_| Error::DeleteTimeout {
                namespace: namespace.to_owned(),
                name: name.to_owned(),
                waited: timeout,
            })?;
        tracing::info!(%namespace, %name, "FlinkDeployment deleted");
        Ok(Deletion::Deleted)
    }
}

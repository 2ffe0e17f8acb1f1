//! The object store: every object of every resource, one global `resourceVersion` counter,
//! and a bounded event log that watches and consistent lists read from.
//!
//! Like etcd behind a real API server, every write gets the next revision and produces exactly
//! one event; a revision older than the oldest event kept is "compacted" and answered with
//! 410 Gone. Objects are held as JSON (`serde_json::Value`), shared behind `Arc`.

use std::cmp::Ordering;
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::Value;
use tokio::sync::watch;

use crate::meta;
use crate::resources::ResourceDef;

/// How many events the log keeps by default (older revisions answer 410 Gone).
pub(crate) const DEFAULT_EVENT_LOG_CAPACITY: usize = 1000;

/// Identifies one object: its resource, namespace ("" when cluster-scoped) and name.
#[derive(Clone, Debug)]
pub(crate) struct ObjKey {
    /// The object's resource.
    pub(crate) res: &'static ResourceDef,
    /// Namespace, or "" for cluster-scoped objects.
    pub(crate) namespace: String,
    /// `metadata.name`.
    pub(crate) name: String,
}

impl ObjKey {
    /// A key from its parts.
    pub(crate) fn new(res: &'static ResourceDef, namespace: &str, name: &str) -> ObjKey {
        ObjKey {
            res,
            namespace: if res.namespaced {
                namespace.to_owned()
            } else {
                String::new()
            },
            name: name.to_owned(),
        }
    }

    fn sort_key(&self) -> (&str, &str, &str, &str) {
        (self.res.group, self.res.plural, &self.namespace, &self.name)
    }
}

impl PartialEq for ObjKey {
    fn eq(&self, other: &Self) -> bool {
        self.sort_key() == other.sort_key()
    }
}
impl Eq for ObjKey {}
impl PartialOrd for ObjKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for ObjKey {
    fn cmp(&self, other: &Self) -> Ordering {
        self.sort_key().cmp(&other.sort_key())
    }
}

/// What happened to an object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum EventKind {
    /// Created.
    Added,
    /// Changed.
    Modified,
    /// Removed.
    Deleted,
}

/// One change, as kept in the event log.
#[derive(Debug)]
pub(crate) struct Event {
    /// The revision this change created.
    pub(crate) rv: u64,
    /// What happened.
    pub(crate) kind: EventKind,
    /// Which object.
    pub(crate) key: ObjKey,
    /// The object after the change (for `Deleted`: the last state, with the deletion's revision).
    pub(crate) object: Arc<Value>,
    /// The object before the change (`None` for `Added`).
    pub(crate) previous: Option<Arc<Value>>,
}

/// A revision older than the event log keeps.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TooOld {
    /// The oldest revision that can still be resumed from.
    pub(crate) oldest: u64,
}

/// The store. Cheap to share behind an `Arc`; every method takes a short lock.
#[derive(Debug)]
pub(crate) struct Store {
    inner: Mutex<Inner>,
    changed: watch::Sender<u64>,
}

#[derive(Debug)]
struct Inner {
    rv: u64,
    objects: BTreeMap<ObjKey, Arc<Value>>,
    log: VecDeque<Arc<Event>>,
    capacity: usize,
    /// Every revision up to and including this one has left the log.
    compacted: u64,
}

impl Store {
    /// An empty store keeping the last `capacity` events.
    pub(crate) fn new(capacity: usize) -> Store {
        let (changed, _) = watch::channel(0);
        Store {
            inner: Mutex::new(Inner {
                rv: 0,
                objects: BTreeMap::new(),
                log: VecDeque::new(),
                capacity: capacity.max(1),
                compacted: 0,
            }),
            changed,
        }
    }

    fn guard(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves consistent data behind (every write is one
        // insert plus one push), so a poisoned lock is still usable.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Starts a transaction: reads and writes under one lock, watchers woken when it ends.
    pub(crate) fn tx(&self) -> Tx<'_> {
        Tx {
            inner: self.guard(),
            changed: &self.changed,
            dirty: false,
        }
    }

    /// The latest revision.
    pub(crate) fn current_rv(&self) -> u64 {
        self.guard().rv
    }

    /// A receiver that sees the latest revision change after every transaction that wrote.
    pub(crate) fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// The events after revision `rv`, oldest first.
    pub(crate) fn events_after(&self, rv: u64) -> Result<Vec<Arc<Event>>, TooOld> {
        let inner = self.guard();
        if rv < inner.compacted {
            return Err(TooOld {
                oldest: inner.compacted + 1,
            });
        }
        let skip = inner.log.partition_point(|e| e.rv <= rv);
        Ok(inner.log.iter().skip(skip).cloned().collect())
    }

    /// Forgets the whole event log, as an etcd compaction does: every earlier revision
    /// then answers 410 Gone to watches and consistent lists.
    pub(crate) fn compact(&self) {
        let mut inner = self.guard();
        inner.log.clear();
        inner.compacted = inner.rv;
    }
}

/// A transaction on the store (a held lock). Watchers are woken when it is dropped.
pub(crate) struct Tx<'a> {
    inner: MutexGuard<'a, Inner>,
    changed: &'a watch::Sender<u64>,
    dirty: bool,
}

impl Tx<'_> {
    /// The latest revision.
    pub(crate) fn rv(&self) -> u64 {
        self.inner.rv
    }

    /// One object.
    pub(crate) fn get(&self, key: &ObjKey) -> Option<Arc<Value>> {
        self.inner.objects.get(key).cloned()
    }

    /// The objects of a resource, in one namespace or (with `None`) all of them, by name.
    pub(crate) fn list(
        &self,
        res: &'static ResourceDef,
        namespace: Option<&str>,
    ) -> Vec<Arc<Value>> {
        self.inner
            .objects
            .iter()
            .filter(|(k, _)| k.res == res && namespace.is_none_or(|ns| k.namespace == ns))
            .map(|(_, v)| Arc::clone(v))
            .collect()
    }

    /// The objects of a resource as they were at revision `rv`, rebuilt by undoing the newer
    /// events; `TooOld` when the log no longer reaches back that far.
    pub(crate) fn list_at(
        &self,
        res: &'static ResourceDef,
        namespace: Option<&str>,
        rv: u64,
    ) -> Result<Vec<Arc<Value>>, TooOld> {
        if rv >= self.inner.rv {
            return Ok(self.list(res, namespace));
        }
        if rv < self.inner.compacted {
            return Err(TooOld {
                oldest: self.inner.compacted + 1,
            });
        }
        let matches = |k: &ObjKey| k.res == res && namespace.is_none_or(|ns| k.namespace == ns);
        let mut objects: BTreeMap<ObjKey, Arc<Value>> = self
            .inner
            .objects
            .iter()
            .filter(|(k, _)| matches(k))
            .map(|(k, v)| (k.clone(), Arc::clone(v)))
            .collect();
        for event in self.inner.log.iter().rev().take_while(|e| e.rv > rv) {
            if !matches(&event.key) {
                continue;
            }
            match &event.previous {
                Some(previous) => objects.insert(event.key.clone(), Arc::clone(previous)),
                None => objects.remove(&event.key),
            };
        }
        Ok(objects.into_values().collect())
    }

    /// Every key in the store (for cascading deletes).
    pub(crate) fn keys(&self) -> Vec<ObjKey> {
        self.inner.objects.keys().cloned().collect()
    }

    /// Stores `object` under `key` with the next revision as its `resourceVersion`.
    pub(crate) fn put(&mut self, key: ObjKey, mut object: Value) -> Arc<Value> {
        let rv = self.next_rv();
        meta::metadata_mut(&mut object)
            .insert("resourceVersion".into(), Value::String(rv.to_string()));
        let object = Arc::new(object);
        let previous = self.inner.objects.insert(key.clone(), Arc::clone(&object));
        let kind = if previous.is_some() {
            EventKind::Modified
        } else {
            EventKind::Added
        };
        self.record(Event {
            rv,
            kind,
            key,
            object: Arc::clone(&object),
            previous,
        });
        object
    }

    /// Removes an object; its last state gets the deletion's revision, as in the DELETED event.
    pub(crate) fn remove(&mut self, key: &ObjKey) -> Option<Arc<Value>> {
        let previous = self.inner.objects.remove(key)?;
        let rv = self.next_rv();
        let mut last = (*previous).clone();
        meta::metadata_mut(&mut last)
            .insert("resourceVersion".into(), Value::String(rv.to_string()));
        let last = Arc::new(last);
        self.record(Event {
            rv,
            kind: EventKind::Deleted,
            key: key.clone(),
            object: Arc::clone(&last),
            previous: Some(previous),
        });
        Some(last)
    }

    fn next_rv(&mut self) -> u64 {
        self.inner.rv += 1;
        self.dirty = true;
        self.inner.rv
    }

    fn record(&mut self, event: Event) {
        let inner = &mut *self.inner;
        inner.log.push_back(Arc::new(event));
        while inner.log.len() > inner.capacity {
            if let Some(dropped) = inner.log.pop_front() {
                inner.compacted = dropped.rv;
            }
        }
    }
}

impl Drop for Tx<'_> {
    fn drop(&mut self) {
        if self.dirty {
            self.changed.send_replace(self.inner.rv);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::{CONFIG_MAPS, PODS};
    use serde_json::json;

    fn cm(name: &str, data: &str) -> Value {
        json!({"metadata": {"name": name, "namespace": "default"}, "data": {"k": data}})
    }

    #[test]
    fn every_write_gets_the_next_revision_and_one_event() {
        let store = Store::new(10);
        let key = ObjKey::new(&CONFIG_MAPS, "default", "a");
        let first = store.tx().put(key.clone(), cm("a", "1"));
        assert_eq!(meta::meta_str(&first, "resourceVersion"), Some("1"));
        store.tx().put(key.clone(), cm("a", "2"));
        let gone = store.tx().remove(&key);
        assert_eq!(
            gone.as_deref()
                .and_then(|o| meta::meta_str(o, "resourceVersion")),
            Some("3")
        );
        let kinds: Vec<EventKind> = store
            .events_after(0)
            .unwrap_or_default()
            .iter()
            .map(|e| e.kind)
            .collect();
        assert_eq!(
            kinds,
            [EventKind::Added, EventKind::Modified, EventKind::Deleted]
        );
        assert_eq!(store.events_after(2).map(|e| e.len()).unwrap_or(0), 1);
    }

    #[test]
    fn lists_at_an_old_revision_undo_newer_events() {
        let store = Store::new(10);
        let a = ObjKey::new(&CONFIG_MAPS, "default", "a");
        let b = ObjKey::new(&CONFIG_MAPS, "default", "b");
        store.tx().put(a.clone(), cm("a", "1")); // rv 1
        store.tx().put(b.clone(), cm("b", "1")); // rv 2
        store.tx().put(a.clone(), cm("a", "2")); // rv 3
        store.tx().remove(&b); // rv 4
        let tx = store.tx();
        let at2 = tx
            .list_at(&CONFIG_MAPS, Some("default"), 2)
            .unwrap_or_default();
        let data: Vec<&str> = at2.iter().filter_map(|o| o["data"]["k"].as_str()).collect();
        assert_eq!(data, ["1", "1"]);
        assert_eq!(
            tx.list_at(&CONFIG_MAPS, None, 4)
                .map(|l| l.len())
                .unwrap_or(9),
            1
        );
        assert!(tx.list_at(&PODS, None, 1).is_ok_and(|l| l.is_empty()));
    }

    #[test]
    fn revisions_older_than_the_log_are_too_old() {
        let store = Store::new(2);
        let key = ObjKey::new(&CONFIG_MAPS, "default", "a");
        for i in 0..5 {
            store.tx().put(key.clone(), cm("a", &i.to_string()));
        }
        assert!(store.events_after(2).is_err());
        assert_eq!(store.events_after(3).map(|e| e.len()).unwrap_or(0), 2);
        store.compact();
        assert!(store.events_after(4).is_err());
        assert!(store.events_after(5).is_ok_and(|e| e.is_empty()));
    }
}

//! Container logs: lines the stand-in's kubelet and operator write, served by
//! `GET .../pods/{name}/log` with `container`, `follow`, `tailLines`, `timestamps`,
//! `limitBytes`, the way the kubelet serves them through the API server.

use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use futures::Stream;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

/// Where a container is in its life, which decides what reading its log gives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ContainerRun {
    /// Not started (`PodInitializing`, `ContainerCreating`, `ImagePullBackOff`...): no log yet.
    Waiting(String),
    /// Running: following its log waits for more lines.
    Running,
    /// Exited: following its log ends after the last line.
    Terminated,
}

#[derive(Debug)]
struct LogState {
    lines: Vec<(String, String)>,
    run: ContainerRun,
}

/// The log of one container.
#[derive(Debug)]
pub(crate) struct ContainerLog {
    state: Mutex<LogState>,
    changed: watch::Sender<u64>,
}

impl ContainerLog {
    fn lock(&self) -> MutexGuard<'_, LogState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The container's state.
    pub(crate) fn run(&self) -> ContainerRun {
        self.lock().run.clone()
    }

    /// How many lines it has written.
    pub(crate) fn len(&self) -> usize {
        self.lock().lines.len()
    }

    fn bump(&self) {
        self.changed.send_modify(|n| *n += 1);
    }
}

type LogKey = (String, String, String);

/// Every container log, by namespace, pod and container.
#[derive(Debug, Default)]
pub(crate) struct LogStore {
    logs: Mutex<HashMap<LogKey, Arc<ContainerLog>>>,
}

/// What a log request asks for.
#[derive(Clone, Debug, Default)]
pub(crate) struct LogOptions {
    /// `follow=true`: keep the stream open for new lines while the container runs.
    pub(crate) follow: bool,
    /// `tailLines`: only the last N lines.
    pub(crate) tail_lines: Option<usize>,
    /// `timestamps=true`: prefix each line with its RFC 3339 timestamp.
    pub(crate) timestamps: bool,
    /// `limitBytes`: stop after this many bytes.
    pub(crate) limit_bytes: Option<usize>,
}

impl LogStore {
    fn map(&self) -> MutexGuard<'_, HashMap<LogKey, Arc<ContainerLog>>> {
        self.logs.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn entry(&self, namespace: &str, pod: &str, container: &str) -> Arc<ContainerLog> {
        let key = (namespace.to_owned(), pod.to_owned(), container.to_owned());
        Arc::clone(self.map().entry(key).or_insert_with(|| {
            Arc::new(ContainerLog {
                state: Mutex::new(LogState {
                    lines: Vec::new(),
                    run: ContainerRun::Waiting("ContainerCreating".into()),
                }),
                changed: watch::channel(0).0,
            })
        }))
    }

    /// The log of one container, if it was ever set up.
    pub(crate) fn get(
        &self,
        namespace: &str,
        pod: &str,
        container: &str,
    ) -> Option<Arc<ContainerLog>> {
        self.map()
            .get(&(namespace.to_owned(), pod.to_owned(), container.to_owned()))
            .cloned()
    }

    /// Sets a container's state.
    pub(crate) fn set_run(&self, namespace: &str, pod: &str, container: &str, run: ContainerRun) {
        let log = self.entry(namespace, pod, container);
        log.lock().run = run;
        log.bump();
    }

    /// Appends lines to a container's log.
    pub(crate) fn append<S: AsRef<str>>(
        &self,
        namespace: &str,
        pod: &str,
        container: &str,
        lines: &[S],
    ) {
        let log = self.entry(namespace, pod, container);
        {
            let mut state = log.lock();
            for line in lines {
                state
                    .lines
                    .push((crate::meta::now_micro_rfc3339(), line.as_ref().to_owned()));
            }
        }
        log.bump();
    }

    /// Forgets the logs of a deleted pod; followers see its containers end.
    pub(crate) fn remove_pod(&self, namespace: &str, pod: &str) {
        let removed: Vec<Arc<ContainerLog>> = {
            let mut map = self.map();
            let keys: Vec<LogKey> = map
                .keys()
                .filter(|(ns, p, _)| ns == namespace && p == pod)
                .cloned()
                .collect();
            keys.iter().filter_map(|k| map.remove(k)).collect()
        };
        for log in removed {
            log.lock().run = ContainerRun::Terminated;
            log.bump();
        }
    }

    /// Pods that have logs, for cleaning up after deleted pods.
    pub(crate) fn pods(&self) -> Vec<(String, String)> {
        let mut pods: Vec<(String, String)> = self
            .map()
            .keys()
            .map(|(ns, p, _)| (ns.clone(), p.clone()))
            .collect();
        pods.sort();
        pods.dedup();
        pods
    }
}

fn render(line: &(String, String), timestamps: bool) -> String {
    if timestamps {
        format!("{} {}\n", line.0, line.1)
    } else {
        format!("{}\n", line.1)
    }
}

/// Streams a container's log as the options say.
pub(crate) fn stream(
    log: Arc<ContainerLog>,
    options: LogOptions,
    shutdown: CancellationToken,
) -> impl Stream<Item = Result<Bytes, io::Error>> + Send + 'static {
    let (sender, mut receiver) = mpsc::channel(64);
    tokio::spawn(async move {
        let mut changes = log.changed.subscribe();
        let mut budget = options.limit_bytes.unwrap_or(usize::MAX);
        let mut next = {
            let state = log.lock();
            options
                .tail_lines
                .map_or(0, |n| state.lines.len().saturating_sub(n))
        };
        loop {
            let (chunk, ended) = {
                let state = log.lock();
                let chunk: Vec<String> = state.lines[next.min(state.lines.len())..]
                    .iter()
                    .map(|l| render(l, options.timestamps))
                    .collect();
                next = state.lines.len();
                (chunk, state.run != ContainerRun::Running)
            };
            for text in chunk {
                let mut cut = text.len().min(budget);
                while !text.is_char_boundary(cut) {
                    cut -= 1;
                }
                let bytes = &text[..cut];
                budget -= bytes.len();
                if sender
                    .send(Ok(Bytes::from(bytes.to_owned())))
                    .await
                    .is_err()
                    || budget == 0
                {
                    return;
                }
            }
            if !options.follow || ended {
                return;
            }
            tokio::select! {
                changed = changes.changed() => if changed.is_err() { return },
                () = shutdown.cancelled() => return,
                () = sender.closed() => return,
            }
        }
    });
    futures::stream::poll_fn(move |cx| receiver.poll_recv(cx))
}

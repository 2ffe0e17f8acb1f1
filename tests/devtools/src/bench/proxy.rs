//! Latency in front of a service: a TCP proxy on loopback that holds back the first bytes of
//! every request by a set delay, and counts the requests.
//!
//! A request is the first client→server chunk of a connection, or the first one after the
//! server last sent something: on an HTTP/1.1 keep-alive connection each request counts and
//! waits, not only the connection's first. Responses pass at once, so each request costs one
//! delay: the delay is the round trip the bench adds. A body sent in several chunks, or a
//! streamed response (a watch), is one request.
//!
//! Bounded: it listens on 127.0.0.1 only, forwards only to a loopback address, serves at most
//! [`MAX_CONNECTIONS`] connections at a time, and stops (listener and every connection) when
//! the [`Proxy`] is dropped.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::{JoinHandle, JoinSet};

use super::stand::unix_micros;

/// Connections served at once; more wait in the listener's backlog.
const MAX_CONNECTIONS: usize = 256;
/// The size of each direction's buffer.
const BUFFER: usize = 64 * 1024;
/// Requests remembered (arrival and first line) until [`Proxy::take_log`]; later ones are
/// counted only.
const LOG_LIMIT: usize = 10_000;

/// Requests counted at the proxies, by service.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Requests {
    /// Every AWS service (moto).
    pub(crate) aws: u64,
    pub(crate) registry: u64,
    pub(crate) kubernetes: u64,
}

impl Requests {
    pub(crate) fn total(&self) -> u64 {
        self.aws + self.registry + self.kubernetes
    }
}

/// One proxy per service the flows talk to.
pub(super) struct Proxies {
    pub(super) aws: Proxy,
    pub(super) registry: Proxy,
    pub(super) kubernetes: Proxy,
}

impl Proxies {
    /// Starts a proxy in front of moto, the registry and the Kubernetes stand-in.
    pub(super) async fn start(moto: &str, registry: &str, kube: &str) -> Result<Proxies> {
        Ok(Proxies {
            aws: Proxy::for_url(moto).await?,
            registry: Proxy::for_url(registry).await?,
            kubernetes: Proxy::for_url(kube).await?,
        })
    }

    fn all(&self) -> [&Proxy; 3] {
        [&self.aws, &self.registry, &self.kubernetes]
    }

    /// Every request waits `delay` from now on.
    pub(super) fn set_delay(&self, delay: Duration) {
        self.all().iter().for_each(|p| p.set_delay(delay));
    }

    /// The counts so far; and the first request's arrival is forgotten.
    pub(super) fn mark(&self) -> Requests {
        self.all().iter().for_each(|p| p.reset_first());
        self.counts()
    }

    pub(super) fn counts(&self) -> Requests {
        Requests {
            aws: self.aws.requests(),
            registry: self.registry.requests(),
            kubernetes: self.kubernetes.requests(),
        }
    }

    /// Every request since the last call, in arrival order: µs since the epoch, the service,
    /// what it asks.
    pub(super) fn take_log(&self) -> Vec<(i64, &'static str, String)> {
        let mut all: Vec<(i64, &'static str, String)> = Vec::new();
        for (service, proxy) in ["aws", "registry", "kubernetes"]
            .into_iter()
            .zip(self.all())
        {
            all.extend(
                proxy
                    .take_log()
                    .into_iter()
                    .map(|(at, what)| (at, service, what)),
            );
        }
        all.sort_by_key(|(at, _, _)| *at);
        all
    }

    /// The requests since `mark`, and when the first of them arrived (µs since the epoch).
    pub(super) fn since(&self, mark: Requests) -> (Requests, Option<i64>) {
        let now = self.counts();
        let first = self.all().iter().filter_map(|p| p.first_request_us()).min();
        (
            Requests {
                aws: now.aws - mark.aws,
                registry: now.registry - mark.registry,
                kubernetes: now.kubernetes - mark.kubernetes,
            },
            first,
        )
    }
}

/// What the proxy's connections share.
#[derive(Debug, Default)]
struct Shared {
    delay_ms: AtomicU64,
    requests: AtomicU64,
    /// The arrival (µs since the epoch) of the first request since [`Proxy::reset_first`]; 0
    /// when none arrived.
    first_request_us: AtomicI64,
    /// Each request's arrival (µs since the epoch) and what it asks, since the last take.
    log: std::sync::Mutex<Vec<(i64, String)>>,
}

/// One running proxy; dropping it stops it.
pub(super) struct Proxy {
    /// Where clients connect: `127.0.0.1:<port>`.
    pub(super) addr: SocketAddr,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl Proxy {
    /// Starts a proxy to `upstream`, which must be a loopback address.
    pub(super) async fn start(upstream: SocketAddr) -> Result<Proxy> {
        if !upstream.ip().is_loopback() {
            bail!("the bench's proxy forwards to loopback only, not to {upstream}");
        }
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .context("cannot listen on 127.0.0.1")?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::default());
        let task = tokio::spawn(serve(listener, upstream, Arc::clone(&shared)));
        Ok(Proxy { addr, shared, task })
    }

    /// Starts a proxy to the `host:port` of `url` (`http://127.0.0.1:5000`, `127.0.0.1:5000`).
    pub(super) async fn for_url(url: &str) -> Result<Proxy> {
        let upstream = host_port(url)
            .parse::<SocketAddr>()
            .with_context(|| format!("the bench proxies only numeric loopback addresses: {url}"))?;
        Proxy::start(upstream).await
    }

    /// From now on, each request waits `delay` before it is forwarded.
    pub(super) fn set_delay(&self, delay: Duration) {
        let ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        self.shared.delay_ms.store(ms, Ordering::Relaxed);
    }

    /// Requests seen since the proxy started.
    pub(super) fn requests(&self) -> u64 {
        self.shared.requests.load(Ordering::Relaxed)
    }

    /// Forgets the first request's arrival, so that [`Proxy::first_request_us`] reports the
    /// next one.
    pub(super) fn reset_first(&self) {
        self.shared.first_request_us.store(0, Ordering::Relaxed);
    }

    /// The requests since the last call: arrival (µs since the epoch) and what each asks.
    pub(super) fn take_log(&self) -> Vec<(i64, String)> {
        self.shared
            .log
            .lock()
            .map(|mut log| std::mem::take(&mut *log))
            .unwrap_or_default()
    }

    /// The arrival (µs since the epoch) of the first request since [`Proxy::reset_first`].
    pub(super) fn first_request_us(&self) -> Option<i64> {
        match self.shared.first_request_us.load(Ordering::Relaxed) {
            0 => None,
            at => Some(at),
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        // The listener's task owns every connection's task: aborting it stops them all.
        self.task.abort();
    }
}

/// `host:port` of a URL or of a bare address.
fn host_port(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    rest.split('/').next().unwrap_or(rest)
}

/// The waves of requests in `arrivals_us` (sorted, µs) when each request waits `rtt_ms`: a
/// request arriving at least ¾ of the RTT after the current wave's first starts the next
/// wave, since one that waited on an answer arrives a whole RTT later. Under a large enough
/// RTT, the number of round trips on the run's critical path, measured where the requests
/// arrive rather than from wall times.
pub(crate) fn waves(arrivals_us: &[i64], rtt_ms: u64) -> usize {
    let gap = i64::try_from(rtt_ms)
        .unwrap_or(i64::MAX)
        .saturating_mul(750);
    let mut count = 0;
    let mut wave_start: Option<i64> = None;
    for &at in arrivals_us {
        if wave_start.is_none_or(|start| at - start >= gap) {
            count += 1;
            wave_start = Some(at);
        }
    }
    count
}

/// What a request asks, from its first bytes: the request line, and an AWS query API's
/// `Action` when the first bytes hold it.
fn request_line(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(4096)]);
    let line = text.lines().next().unwrap_or_default();
    let line = line.strip_suffix(" HTTP/1.1").unwrap_or(line);
    let mut out: String = line.chars().take(160).collect();
    if let Some(at) = text.find("Action=") {
        let action: String = text[at..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '=')
            .collect();
        out.push(' ');
        out.push_str(&action);
    }
    out
}

/// `url` with its `host:port` replaced by `addr`.
pub(super) fn url_via(url: &str, addr: SocketAddr) -> String {
    url.replacen(host_port(url), &addr.to_string(), 1)
}

async fn serve(listener: TcpListener, upstream: SocketAddr, shared: Arc<Shared>) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut connections = JoinSet::new();
    loop {
        let Ok(permit) = Arc::clone(&slots).acquire_owned().await else {
            return;
        };
        let Ok((client, _)) = listener.accept().await else {
            continue;
        };
        let shared = Arc::clone(&shared);
        connections.spawn(async move {
            let _permit = permit;
            if let Ok(server) = TcpStream::connect(upstream).await {
                relay(client, server, &shared).await;
            }
        });
        // Reap the finished ones so that the set stays as small as the open connections.
        while connections.try_join_next().is_some() {}
    }
}

/// Copies both ways until either side closes; each request waits the delay first.
async fn relay(client: TcpStream, server: TcpStream, shared: &Shared) {
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    // True until the client's next bytes start a request: at first, and whenever the server
    // has answered since the client last sent.
    let at_request = AtomicBool::new(true);
    let upstream = async {
        let mut buf = vec![0u8; BUFFER];
        loop {
            let n = match client_read.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if at_request.swap(false, Ordering::AcqRel) {
                let now = unix_micros();
                shared.requests.fetch_add(1, Ordering::Relaxed);
                let _ = shared.first_request_us.compare_exchange(
                    0,
                    now,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                );
                if let Ok(mut log) = shared.log.lock()
                    && log.len() < LOG_LIMIT
                {
                    log.push((now, request_line(&buf[..n])));
                }
                let delay = shared.delay_ms.load(Ordering::Relaxed);
                if delay > 0 {
                    tokio::time::sleep(Duration::from_millis(delay)).await;
                }
            }
            if server_write.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
        let _ = server_write.shutdown().await;
    };
    let downstream = async {
        let mut buf = vec![0u8; BUFFER];
        loop {
            let n = match server_read.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            at_request.store(true, Ordering::Release);
            if client_write.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
        let _ = client_write.shutdown().await;
    };
    tokio::join!(upstream, downstream);
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    #[test]
    fn urls_are_pointed_at_the_proxy() {
        let addr: SocketAddr = "127.0.0.1:4000".parse().unwrap();
        assert_eq!(host_port("http://127.0.0.1:5000/x"), "127.0.0.1:5000");
        assert_eq!(host_port("127.0.0.1:5000"), "127.0.0.1:5000");
        assert_eq!(
            url_via("http://127.0.0.1:5000/x", addr),
            "http://127.0.0.1:4000/x"
        );
        assert_eq!(url_via("127.0.0.1:5000", addr), "127.0.0.1:4000");
    }

    #[test]
    fn waves_start_when_a_request_comes_a_round_trip_later() {
        assert_eq!(waves(&[], 40), 0);
        // Three at once, one 40 ms later, two more 41 and 45 ms after that.
        let arrivals = [0, 1_000, 9_000, 40_500, 81_500, 85_000];
        assert_eq!(waves(&arrivals, 40), 3);
        assert_eq!(waves(&arrivals, 200), 1);
    }

    #[test]
    fn a_request_is_named_by_its_line_and_action() {
        assert_eq!(
            request_line(b"POST / HTTP/1.1\r\nhost: x\r\n\r\nAction=GetRole&RoleName=r"),
            "POST / Action=GetRole"
        );
        assert_eq!(
            request_line(b"GET /api/v1/namespaces/default HTTP/1.1\r\n\r\n"),
            "GET /api/v1/namespaces/default"
        );
    }

    #[tokio::test]
    async fn only_loopback_is_proxied() {
        let err = Proxy::start("10.0.0.1:80".parse().unwrap()).await.err();
        assert!(err.is_some_and(|e| e.to_string().contains("loopback only")));
    }

    /// An echo server behind the proxy: two requests on one connection are both counted and
    /// both delayed; the second chunk of one request is neither.
    #[tokio::test]
    async fn each_request_on_a_kept_alive_connection_waits_and_counts() {
        let echo = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
        let upstream = echo.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut conn, _) = echo.accept().await.unwrap();
            let mut buf = [0u8; 64];
            loop {
                match conn.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if buf[..n].ends_with(b"\n") {
                            conn.write_all(b"ok\n").await.unwrap();
                        }
                    }
                }
            }
        });
        let proxy = Proxy::start(upstream).await.unwrap();
        proxy.set_delay(Duration::from_millis(60));
        let mut conn = TcpStream::connect(proxy.addr).await.unwrap();
        let mut answer = [0u8; 3];
        let started = Instant::now();
        for _ in 0..2 {
            conn.write_all(b"part one, ").await.unwrap();
            tokio::time::sleep(Duration::from_millis(5)).await;
            conn.write_all(b"part two\n").await.unwrap();
            conn.read_exact(&mut answer).await.unwrap();
            assert_eq!(&answer, b"ok\n");
        }
        let elapsed = started.elapsed();
        assert_eq!(proxy.requests(), 2);
        let log = proxy.take_log();
        assert_eq!(log.len(), 2, "{log:?}");
        assert!(log[1].0 - log[0].0 >= 60_000, "{log:?}");
        assert!(
            elapsed >= Duration::from_millis(120),
            "two requests took {elapsed:?}, less than two delays"
        );
        assert!(
            elapsed < Duration::from_millis(220),
            "two requests took {elapsed:?}: a request's second chunk was delayed too"
        );
        assert!(proxy.first_request_us().is_some());
        proxy.reset_first();
        assert_eq!(proxy.first_request_us(), None);
    }
}

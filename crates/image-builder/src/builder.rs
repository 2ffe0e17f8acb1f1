//! The effects: the Docker daemon (pull, build, push) and the registry check.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use base64::Engine as _;
use bollard::Docker;
use bollard::query_parameters::{BuildImageOptions, CreateImageOptions};
use futures::StreamExt as _;
use serde::{Deserialize, Serialize};

use crate::context::{BuildContext, CONTEXT_DIGEST_LABEL};
use crate::credentials::{CredentialResolver, Credentials, error_chain};
use crate::error::{DOCKER_HINT, Error, Result};
use crate::plan::{ImagePlan, RegistryState, check_registry_with_client};
use crate::progress::{LineAssembler, ProgressEvent, ProgressSink};
use crate::reference::{Repository, split_reference};
use crate::registry::{RegistryClient, credentials_hint};
use crate::spec::{ImageSpec, PullPolicy};

/// The daemon address used when `DOCKER_HOST` is not set.
pub const DEFAULT_DOCKER_HOST: &str = "unix:///var/run/docker.sock";

/// How many output lines of a failing step are kept for the error.
const FAILED_STEP_OUTPUT_LINES: usize = 30;

/// The result of [`ImageBuilder::ensure`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Outcome {
    /// `repository:tag`, the reference to run.
    pub image: String,
    /// The build context's digest.
    pub context_digest: String,
    /// Whether an image was built (false when the registry already held it).
    pub built: bool,
    /// Whether the image was pushed.
    pub pushed: bool,
    /// The manifest digest the registry reported for the push.
    pub manifest_digest: Option<String>,
}

/// Where the Docker daemon listens.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Endpoint {
    /// A unix socket path.
    Unix(String),
    /// `http://host:port`.
    Tcp(String),
}

impl Endpoint {
    fn parse(host: &str) -> Result<Self> {
        if let Some(path) = host.strip_prefix("unix://") {
            return Ok(Self::Unix(path.to_owned()));
        }
        if host.starts_with('/') {
            return Ok(Self::Unix(host.to_owned()));
        }
        if let Some(rest) = host
            .strip_prefix("tcp://")
            .or_else(|| host.strip_prefix("http://"))
        {
            return Ok(Self::Tcp(format!("http://{}", rest.trim_end_matches('/'))));
        }
        Err(Error::DockerUnavailable {
            address: host.to_owned(),
            reason: "only unix:// sockets and plain tcp:// addresses are supported".into(),
            hint: DOCKER_HINT,
        })
    }

    fn display(&self) -> String {
        match self {
            Self::Unix(path) => format!("unix://{path}"),
            Self::Tcp(url) => url.clone(),
        }
    }
}

/// A connection to a Docker daemon, and everything done through it.
pub struct ImageBuilder {
    docker: Docker,
    endpoint: Endpoint,
    /// HTTP client for the push stream (see [`ImageBuilder::push`]).
    engine_http: reqwest::Client,
    api_prefix: String,
    /// Registries (`host[:port]`) spoken to in plain HTTP besides loopback ones.
    plain_http_registries: Vec<String>,
}

impl std::fmt::Debug for ImageBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImageBuilder")
            .field("endpoint", &self.endpoint.display())
            .field("api", &self.api_prefix)
            .field("plain_http_registries", &self.plain_http_registries)
            .finish_non_exhaustive()
    }
}

impl ImageBuilder {
    /// Connects to the daemon at `DOCKER_HOST`, or at [`DEFAULT_DOCKER_HOST`], and agrees
    /// on an API version with it.
    pub async fn connect() -> Result<Self> {
        let host = std::env::var("DOCKER_HOST")
            .ok()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| DEFAULT_DOCKER_HOST.to_owned());
        Self::connect_with(&host).await
    }

    /// Connects to the daemon at `host`: `unix:///path/docker.sock`, a socket path, or
    /// `tcp://host:port` (no TLS).
    pub async fn connect_with(host: &str) -> Result<Self> {
        let endpoint = Endpoint::parse(host)?;
        let unavailable = |reason: String| Error::DockerUnavailable {
            address: endpoint.display(),
            reason,
            hint: DOCKER_HINT,
        };
        let connected = match &endpoint {
            Endpoint::Unix(path) => {
                if !std::path::Path::new(path).exists() {
                    return Err(unavailable("the socket does not exist".into()));
                }
                Docker::connect_with_unix(path, 600, bollard::API_DEFAULT_VERSION)
            }
            Endpoint::Tcp(url) => Docker::connect_with_http(url, 600, bollard::API_DEFAULT_VERSION),
        };
        let docker = connected.map_err(|err| unavailable(error_chain(&err)))?;
        let docker = tokio::time::timeout(Duration::from_secs(15), docker.negotiate_version())
            .await
            .map_err(|_| unavailable("no answer within 15 s".into()))?
            .map_err(|err| unavailable(error_chain(&err)))?;
        let version = docker.client_version();
        let api_prefix = format!("/v{}.{}", version.major_version, version.minor_version);
        let mut http = reqwest::Client::builder().connect_timeout(Duration::from_secs(10));
        if let Endpoint::Unix(path) = &endpoint {
            http = http.unix_socket(path.as_str());
        }
        let engine_http = http.build().map_err(|err| {
            unavailable(format!(
                "cannot set up the HTTP client: {}",
                error_chain(&err)
            ))
        })?;
        Ok(Self {
            docker,
            endpoint,
            engine_http,
            api_prefix,
            plain_http_registries: Vec::new(),
        })
    }

    /// Speaks plain HTTP to `registry` (`host[:port]`) when checking it, as for a registry
    /// listed under the daemon's `insecure-registries`. Loopback registries always are.
    pub fn with_plain_http_registry(mut self, registry: impl Into<String>) -> Self {
        self.plain_http_registries.push(registry.into());
        self
    }

    async fn check(
        &self,
        spec: &ImageSpec,
        context: &BuildContext,
        credentials: &Credentials,
    ) -> Result<ImagePlan> {
        let repository = spec.parsed_repository()?;
        let plain_http = repository.is_loopback()
            || self
                .plain_http_registries
                .iter()
                .any(|r| r == repository.registry());
        let client = RegistryClient::with_scheme(&repository, credentials.clone(), plain_http)?;
        check_registry_with_client(&client, spec, context).await
    }

    /// The bollard client, for callers that need more of the Engine API.
    pub fn docker(&self) -> &Docker {
        &self.docker
    }

    /// Packs the context and asks the registry whether the image is already there
    /// (see [`check_registry`](crate::check_registry)). Builds nothing.
    pub async fn plan(&self, spec: &ImageSpec, credentials: &Credentials) -> Result<ImagePlan> {
        let context = BuildContext::new(spec)?;
        self.check(spec, &context, credentials).await
    }

    /// Makes sure the registry holds the image for `spec`: when it already does, nothing is
    /// built or pushed; otherwise the base image is made available (per its pull policy), the
    /// image is built from the in-memory context and pushed with `credentials`.
    pub async fn ensure(
        &self,
        spec: &ImageSpec,
        credentials: &Credentials,
        progress: &mut dyn ProgressSink,
    ) -> Result<Outcome> {
        let context = BuildContext::new(spec)?;
        progress.event(&ProgressEvent::ContextReady {
            digest: context.digest.clone(),
            bytes: context.tar_gz.len(),
        });
        let image = format!(
            "{}:{}",
            spec.repository,
            crate::plan::image_tag(spec, &context)
        );
        progress.event(&ProgressEvent::CheckingRegistry {
            image: image.clone(),
        });
        let plan = self.check(spec, &context, credentials).await?;
        match &plan.registry {
            RegistryState::UpToDate => {
                progress.event(&ProgressEvent::UpToDate {
                    image: plan.image.clone(),
                });
                return Ok(Outcome {
                    image: plan.image,
                    context_digest: context.digest,
                    built: false,
                    pushed: false,
                    manifest_digest: None,
                });
            }
            RegistryState::OtherContent { remote_digest } => {
                progress.event(&ProgressEvent::TagHoldsOtherContent {
                    image: plan.image.clone(),
                    remote_digest: remote_digest.clone(),
                });
            }
            RegistryState::Absent => {}
        }
        self.ensure_base(&spec.base, spec.pull_policy, progress)
            .await?;
        self.build(&context, &plan.image, progress).await?;
        let manifest_digest = self.push(spec, &plan.tag, credentials, progress).await?;
        Ok(Outcome {
            image: plan.image,
            context_digest: context.digest,
            built: true,
            pushed: true,
            manifest_digest,
        })
    }

    /// Makes the base image available in the daemon according to `policy`.
    pub async fn ensure_base(
        &self,
        base: &str,
        policy: PullPolicy,
        progress: &mut dyn ProgressSink,
    ) -> Result<()> {
        let present = match self.docker.inspect_image(base).await {
            Ok(_) => true,
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => false,
            Err(source) => {
                return Err(Error::Docker {
                    action: format!("inspect of base image {base}"),
                    source,
                });
            }
        };
        match (policy, present) {
            (PullPolicy::Never, false) => Err(Error::BaseImageMissing {
                image: base.to_owned(),
            }),
            (PullPolicy::Never | PullPolicy::IfMissing, true) => {
                progress.event(&ProgressEvent::BaseImagePresent {
                    image: base.to_owned(),
                });
                Ok(())
            }
            (PullPolicy::IfMissing, false) | (PullPolicy::Always, _) => {
                self.pull(base, progress).await
            }
        }
    }

    async fn pull(&self, base: &str, progress: &mut dyn ProgressSink) -> Result<()> {
        progress.event(&ProgressEvent::PullingBase {
            image: base.to_owned(),
        });
        let (name, tag) = split_reference(base);
        let registry = Repository::parse(name)
            .map(|r| r.registry().to_owned())
            .unwrap_or_else(|_| crate::reference::DOCKER_HUB.to_owned());
        let credentials = CredentialResolver::from_environment()?
            .resolve_without_explicit(&registry)
            .await?;
        let server = Repository::parse(name)
            .map(|r| r.config_key().to_owned())
            .unwrap_or_default();
        let options = CreateImageOptions {
            from_image: Some(name.to_owned()),
            tag: Some(tag.to_owned()),
            ..Default::default()
        };
        let auth = (!credentials.is_anonymous()).then(|| credentials.to_docker(&server));
        let mut stream = self.docker.create_image(Some(options), None, auth);
        let mut last_status = String::new();
        while let Some(item) = stream.next().await {
            match item {
                Ok(info) => {
                    if let Some(status) = info.status {
                        // Per-layer download ticks are too many for a line each.
                        if info.progress_detail.and_then(|p| p.total).is_none()
                            && status != last_status
                        {
                            let line = match info.id {
                                Some(id) => format!("{id}: {status}"),
                                None => status.clone(),
                            };
                            progress.event(&ProgressEvent::PullStatus { line });
                        }
                        last_status = status;
                    }
                }
                Err(err) => {
                    return Err(Error::PullFailed {
                        image: base.to_owned(),
                        message: stream_message(&err),
                    });
                }
            }
        }
        Ok(())
    }

    /// Builds `context` into the local image `image` (`repository:tag`), labelled with the
    /// context digest. Returns the image ID.
    pub async fn build(
        &self,
        context: &BuildContext,
        image: &str,
        progress: &mut dyn ProgressSink,
    ) -> Result<String> {
        let labels = HashMap::from([(CONTEXT_DIGEST_LABEL.to_owned(), context.digest.clone())]);
        let options = BuildImageOptions {
            t: Some(image.to_owned()),
            rm: true,
            forcerm: true,
            labels: Some(labels),
            ..Default::default()
        };
        let body = bollard::body_full(bytes::Bytes::from(context.tar_gz.clone()));
        let mut stream = self.docker.build_image(options, None, Some(body));
        let mut lines = LineAssembler::default();
        let mut step: Option<String> = None;
        let mut step_output: VecDeque<String> = VecDeque::new();
        let mut image_id: Option<String> = None;

        while let Some(item) = stream.next().await {
            let info = match item {
                Ok(info) => info,
                Err(err) => {
                    if let Some(line) = lines.finish() {
                        record_line(&line, &mut step, &mut step_output, progress);
                    }
                    let message = stream_message(&err);
                    return Err(match step {
                        Some(step) => Error::BuildStepFailed {
                            step,
                            message,
                            output: step_output.into_iter().collect::<Vec<_>>().join("\n"),
                        },
                        None => Error::BuildFailed { message },
                    });
                }
            };
            if let Some(aux) = info.aux.and_then(|aux| aux.id) {
                image_id = Some(aux);
            }
            if let Some(text) = info.stream {
                for line in lines.push(&text) {
                    record_line(&line, &mut step, &mut step_output, progress);
                }
            }
            if let Some(status) = info.status {
                progress.event(&ProgressEvent::BuildOutput {
                    line: crate::progress::clean_line(&status),
                });
            }
        }
        if let Some(line) = lines.finish() {
            record_line(&line, &mut step, &mut step_output, progress);
        }
        let id = match image_id {
            Some(id) => id,
            None => self
                .docker
                .inspect_image(image)
                .await
                .map_err(|err| Error::BuildFailed {
                    message: format!("the build ended without an image ({})", error_chain(&err)),
                })?
                .id
                .unwrap_or_default(),
        };
        progress.event(&ProgressEvent::Built {
            image: image.to_owned(),
            id: id.clone(),
        });
        Ok(id)
    }

    /// Pushes the local image `<repository>:<tag>` with `credentials`. Returns the manifest
    /// digest the registry stored.
    ///
    /// This is the Engine API's `POST /images/{name}/push`, read as a raw JSON stream rather
    /// than through bollard's `push_image`: bollard 0.21 types push items without their `id`,
    /// and the layer id is what tells the layers' progress apart.
    pub async fn push(
        &self,
        spec: &ImageSpec,
        tag: &str,
        credentials: &Credentials,
        progress: &mut dyn ProgressSink,
    ) -> Result<Option<String>> {
        let repository = spec.parsed_repository()?;
        let image = format!("{}:{tag}", repository.as_str());
        progress.event(&ProgressEvent::PushStarted {
            image: image.clone(),
        });
        let auth = credentials.to_docker(repository.config_key());
        let auth_json = serde_json::to_vec(&auth).map_err(|err| Error::PushFailed {
            image: image.clone(),
            message: format!("cannot encode the credentials: {err}"),
        })?;
        let auth_header = base64::engine::general_purpose::URL_SAFE.encode(auth_json);
        let base = match &self.endpoint {
            Endpoint::Unix(_) => "http://docker".to_owned(),
            Endpoint::Tcp(url) => url.clone(),
        };
        let url = format!(
            "{base}{}/images/{}/push?tag={tag}",
            self.api_prefix,
            repository.as_str()
        );
        let mut header = reqwest::header::HeaderValue::from_str(&auth_header).map_err(|_| {
            Error::PushFailed {
                image: image.clone(),
                message: "the credentials cannot be sent in a header".into(),
            }
        })?;
        header.set_sensitive(true);
        let engine_error = |err: reqwest::Error| Error::DockerUnavailable {
            address: self.endpoint.display(),
            reason: error_chain(&err),
            hint: DOCKER_HINT,
        };
        let mut response = self
            .engine_http
            .post(&url)
            .header("X-Registry-Auth", header)
            .header("Content-Type", "application/json")
            .send()
            .await
            .map_err(engine_error)?;
        if !response.status().is_success() {
            let status = response.status();
            let body = response.text().await.unwrap_or_default();
            let message = serde_json::from_str::<EngineMessage>(&body)
                .map(|m| m.message)
                .unwrap_or(body);
            return Err(Error::PushFailed {
                image,
                message: format!("{status}: {}", message.trim()),
            });
        }
        let mut pending = Vec::new();
        let mut digest = None;
        let mut outcome: Result<()> = Ok(());
        while let Some(chunk) = response.chunk().await.map_err(engine_error)? {
            pending.extend_from_slice(&chunk);
            while let Some(newline) = pending.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = pending.drain(..=newline).collect();
                if outcome.is_ok() {
                    outcome = handle_push_line(&line, &image, &repository, &mut digest, progress);
                }
            }
        }
        if outcome.is_ok() && !pending.is_empty() {
            outcome = handle_push_line(&pending, &image, &repository, &mut digest, progress);
        }
        outcome?;
        progress.event(&ProgressEvent::Pushed {
            image,
            manifest_digest: digest.clone(),
        });
        Ok(digest)
    }
}

#[derive(Deserialize)]
struct EngineMessage {
    message: String,
}

#[derive(Deserialize)]
struct PushLine {
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default, rename = "progressDetail")]
    progress_detail: Option<PushProgressDetail>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default, rename = "errorDetail")]
    error_detail: Option<EngineErrorDetail>,
    #[serde(default)]
    aux: Option<PushAux>,
}

#[derive(Deserialize)]
struct PushProgressDetail {
    #[serde(default)]
    current: Option<u64>,
    #[serde(default)]
    total: Option<u64>,
}

#[derive(Deserialize)]
struct EngineErrorDetail {
    #[serde(default)]
    message: Option<String>,
}

#[derive(Deserialize)]
struct PushAux {
    #[serde(default, rename = "Digest")]
    digest: Option<String>,
}

fn handle_push_line(
    line: &[u8],
    image: &str,
    repository: &Repository,
    digest: &mut Option<String>,
    progress: &mut dyn ProgressSink,
) -> Result<()> {
    if line.iter().all(u8::is_ascii_whitespace) {
        return Ok(());
    }
    let item: PushLine = serde_json::from_slice(line).map_err(|err| Error::PushFailed {
        image: image.to_owned(),
        message: format!("the daemon sent an unreadable push item: {err}"),
    })?;
    if let Some(message) = item.error_detail.and_then(|d| d.message).or(item.error) {
        return Err(push_error(image, repository, message));
    }
    if let Some(found) = item.aux.and_then(|aux| aux.digest) {
        *digest = Some(found);
    }
    let (Some(status), Some(layer)) = (item.status, item.id) else {
        return Ok(());
    };
    match status.as_str() {
        "Preparing" => progress.event(&ProgressEvent::LayerPreparing { layer }),
        "Pushing" => {
            if let Some(detail) = item.progress_detail {
                progress.event(&ProgressEvent::LayerProgress {
                    layer,
                    current: detail.current.unwrap_or(0),
                    total: detail.total.unwrap_or(0),
                });
            }
        }
        "Pushed" => progress.event(&ProgressEvent::LayerDone {
            layer,
            already_existed: false,
        }),
        "Layer already exists" => progress.event(&ProgressEvent::LayerDone {
            layer,
            already_existed: true,
        }),
        other if other.starts_with("Mounted from") => progress.event(&ProgressEvent::LayerDone {
            layer,
            already_existed: true,
        }),
        _ => {}
    }
    Ok(())
}

/// Sorts a push error: refused credentials get their own variant and hint.
fn push_error(image: &str, repository: &Repository, message: String) -> Error {
    let lower = message.to_lowercase();
    let refused = [
        "unauthorized",
        "authentication required",
        "no basic auth credentials",
        "denied",
        "authorization failed",
    ];
    if refused.iter().any(|needle| lower.contains(needle)) {
        Error::RegistryUnauthorized {
            registry: repository.registry().to_owned(),
            repository: repository.path().to_owned(),
            reason: message,
            hint: credentials_hint(repository.registry()),
        }
    } else {
        Error::PushFailed {
            image: image.to_owned(),
            message,
        }
    }
}

/// Adds one build output line: a new step, or output of the current one.
fn record_line(
    line: &str,
    step: &mut Option<String>,
    output: &mut VecDeque<String>,
    progress: &mut dyn ProgressSink,
) {
    if line.is_empty() {
        return;
    }
    if line.starts_with("Step ") && line.contains(" : ") {
        *step = Some(line.to_owned());
        output.clear();
        progress.event(&ProgressEvent::BuildStep {
            step: line.to_owned(),
        });
        return;
    }
    progress.event(&ProgressEvent::BuildOutput {
        line: line.to_owned(),
    });
    // The builder's own bookkeeping lines say nothing about why a step failed.
    if line.starts_with(" ---> ") || line.starts_with("Removing intermediate container") {
        return;
    }
    if output.len() == FAILED_STEP_OUTPUT_LINES {
        output.pop_front();
    }
    output.push_back(line.to_owned());
}

/// The daemon's own words from a stream error.
fn stream_message(err: &bollard::errors::Error) -> String {
    match err {
        bollard::errors::Error::DockerStreamError { error } => crate::progress::clean_line(error),
        bollard::errors::Error::DockerResponseServerError { message, .. } => message.clone(),
        other => error_chain(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_from_docker_host() {
        assert_eq!(
            Endpoint::parse("unix:///var/run/docker.sock").unwrap(),
            Endpoint::Unix("/var/run/docker.sock".into())
        );
        assert_eq!(
            Endpoint::parse("/run/user/1000/docker.sock").unwrap(),
            Endpoint::Unix("/run/user/1000/docker.sock".into())
        );
        assert_eq!(
            Endpoint::parse("tcp://127.0.0.1:2375").unwrap(),
            Endpoint::Tcp("http://127.0.0.1:2375".into())
        );
        let err = Endpoint::parse("ssh://me@host").unwrap_err().to_string();
        assert!(
            err.contains("ssh://me@host") && err.contains("unix://"),
            "{err}"
        );
    }

    #[test]
    fn a_step_and_its_output_are_tracked() {
        let mut step = None;
        let mut output = VecDeque::new();
        let mut events = Vec::new();
        let mut sink = |e: &ProgressEvent| events.push(e.clone());
        for line in [
            "Step 1/2 : FROM base",
            " ---> 93d45a025922",
            "Step 2/2 : RUN pip3 install x",
            " ---> Running in 5f11cf1479b1",
            "/bin/sh: pip3: not found",
        ] {
            record_line(line, &mut step, &mut output, &mut sink);
        }
        assert_eq!(step.as_deref(), Some("Step 2/2 : RUN pip3 install x"));
        assert_eq!(output, ["/bin/sh: pip3: not found"]);
        assert_eq!(
            events
                .iter()
                .filter(|e| matches!(e, ProgressEvent::BuildStep { .. }))
                .count(),
            2
        );
    }

    #[test]
    fn push_items_become_layer_events_and_errors() {
        let repo = Repository::parse("127.0.0.1:5000/x").unwrap();
        let mut digest = None;
        let mut events = Vec::new();
        let mut sink = |e: &ProgressEvent| events.push(e.clone());
        for line in [
            r#"{"status":"The push refers to repository [127.0.0.1:5000/x]"}"#,
            r#"{"status":"Preparing","progressDetail":{},"id":"2fc02e3ff845"}"#,
            r#"{"status":"Pushing","progressDetail":{"current":512,"total":3},"id":"2fc02e3ff845"}"#,
            r#"{"status":"Pushed","progressDetail":{},"id":"2fc02e3ff845"}"#,
            r#"{"status":"Layer already exists","progressDetail":{},"id":"bfb23a6493d8"}"#,
            r#"{"progressDetail":{},"aux":{"Tag":"1","Digest":"sha256:e3c9","Size":735}}"#,
        ] {
            handle_push_line(
                line.as_bytes(),
                "127.0.0.1:5000/x:1",
                &repo,
                &mut digest,
                &mut sink,
            )
            .unwrap();
        }
        let mut sink = crate::NoProgress;
        assert_eq!(digest.as_deref(), Some("sha256:e3c9"));
        assert_eq!(
            events,
            [
                ProgressEvent::LayerPreparing {
                    layer: "2fc02e3ff845".into()
                },
                ProgressEvent::LayerProgress {
                    layer: "2fc02e3ff845".into(),
                    current: 512,
                    total: 3
                },
                ProgressEvent::LayerDone {
                    layer: "2fc02e3ff845".into(),
                    already_existed: false
                },
                ProgressEvent::LayerDone {
                    layer: "bfb23a6493d8".into(),
                    already_existed: true
                },
            ]
        );
        let err = handle_push_line(
            br#"{"errorDetail":{"message":"unauthorized: authentication required"},"error":"unauthorized: authentication required"}"#,
            "127.0.0.1:5000/x:1",
            &repo,
            &mut digest,
            &mut sink,
        )
        .unwrap_err();
        assert!(matches!(err, Error::RegistryUnauthorized { .. }), "{err}");
        assert!(
            err.to_string().contains("docker login 127.0.0.1:5000"),
            "{err}"
        );
        let err = handle_push_line(
            br#"{"error":"blob upload unknown"}"#,
            "127.0.0.1:5000/x:1",
            &repo,
            &mut digest,
            &mut sink,
        )
        .unwrap_err();
        assert!(matches!(err, Error::PushFailed { .. }), "{err}");
    }
}

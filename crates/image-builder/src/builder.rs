//! The effects: the Docker daemon (pull, build, push) and the registry check.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use base64::Engine as _;
use bollard::Docker;
use bollard::query_parameters::{BuildImageOptions, CreateImageOptions};
use flink_eks_plan::Progress;
use futures::StreamExt as _;
use serde::{Deserialize, Serialize};
use tokio::sync::OnceCell;

use crate::context::{BuildContext, CONTEXT_DIGEST_LABEL};
use crate::credentials::{CredentialResolver, Credentials};
use crate::error::{DOCKER_HINT, Error, Result};
use crate::plan::{ImagePlan, RegistryState};
use crate::platform::Platform;
use crate::progress::{LineAssembler, ProgressEvent};
use crate::reference::{Repository, split_reference};
use crate::registry::credentials_hint;
use crate::spec::{ImageSpec, PullPolicy};

/// The daemon address used when `DOCKER_HOST` is not set.
pub const DEFAULT_DOCKER_HOST: &str = "unix:///var/run/docker.sock";

/// How many output lines of a failing step are kept for the error.
const FAILED_STEP_OUTPUT_LINES: usize = 30;

/// What [`ImageBuilder::apply`] did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Outcome {
    /// `repository:tag`, the reference to run.
    pub image: String,
    /// The build context's digest.
    pub context_digest: String,
    /// Whether an image was built (false when the plan found it in the registry).
    pub built: bool,
    /// Whether the image was pushed.
    pub pushed: bool,
    /// The manifest digest the registry reported for the push, or the one the plan saw when
    /// nothing was pushed.
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

/// What [`ImageBuilder::preflight`] found out about the daemon.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DaemonInfo {
    /// The OS it builds for (`linux`).
    pub os: String,
    /// Its own architecture (`amd64`, `arm64`): images of another one are built through
    /// emulation.
    pub architecture: String,
    /// The engine's version.
    pub version: String,
}

/// A Docker daemon, and everything done through it: applying an [`ImagePlan`], or the
/// single steps (base image, build, push).
///
/// Making one does not contact the daemon: the first operation that needs it connects and
/// agrees on an API version (once). So applying a plan with nothing to do works, and makes
/// no call, on a machine without Docker.
pub struct ImageBuilder {
    endpoint: Endpoint,
    /// HTTP client for the push stream (see [`ImageBuilder::push`]).
    engine_http: reqwest::Client,
    connection: OnceCell<Connection>,
}

/// The daemon, once it has answered.
struct Connection {
    docker: Docker,
    /// `/v<major>.<minor>`, the API version agreed on.
    api_prefix: String,
}

impl std::fmt::Debug for ImageBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImageBuilder")
            .field("endpoint", &self.endpoint.display())
            .field("api", &self.connection.get().map(|c| c.api_prefix.as_str()))
            .finish_non_exhaustive()
    }
}

impl ImageBuilder {
    /// A builder for the daemon at `DOCKER_HOST`, or at [`DEFAULT_DOCKER_HOST`]. Sends
    /// nothing yet (see [`ImageBuilder`]); fails only on a `DOCKER_HOST` of an unsupported
    /// form.
    pub async fn connect() -> Result<Self> {
        let host = std::env::var("DOCKER_HOST")
            .ok()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| DEFAULT_DOCKER_HOST.to_owned());
        Self::connect_with(&host).await
    }

    /// A builder for the daemon at `host`: `unix:///path/docker.sock`, a socket path, or
    /// `tcp://host:port` (no TLS). Sends nothing yet.
    pub async fn connect_with(host: &str) -> Result<Self> {
        let endpoint = Endpoint::parse(host)?;
        // The Engine API is spoken over a unix socket or plain TCP: the client trusts no root
        // certificate, so building it reads none of the system's.
        let mut http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .tls_certs_only(std::iter::empty());
        if let Endpoint::Unix(path) = &endpoint {
            http = http.unix_socket(path.as_str());
        }
        let engine_http = http.build().map_err(|err| Error::DockerUnavailable {
            address: endpoint.display(),
            reason: format!(
                "cannot set up the HTTP client: {}",
                flink_eks_plan::one_line_chain(&err)
            ),
            hint: DOCKER_HINT,
        })?;
        Ok(Self {
            endpoint,
            engine_http,
            connection: OnceCell::new(),
        })
    }

    /// The bollard client, for callers that need more of the Engine API. The first call
    /// connects to the daemon; it fails with [`Error::DockerUnavailable`] when none answers.
    pub async fn docker(&self) -> Result<&Docker> {
        Ok(&self.connection().await?.docker)
    }

    /// Whether the daemon answers and builds Linux images: the check a plan that builds
    /// makes before anything is written (the first call connects and agrees on an API
    /// version; then `GET /version`). Builds nothing, and leaves the connection open for
    /// [`ImageBuilder::apply`]. Fails with [`Error::DockerUnavailable`] when no daemon
    /// answers or it is not a Linux daemon.
    pub async fn preflight(&self) -> Result<DaemonInfo> {
        let docker = self.docker().await?;
        let unavailable = |reason: String| Error::DockerUnavailable {
            address: self.endpoint.display(),
            reason,
            hint: DOCKER_HINT,
        };
        let version = docker
            .version()
            .await
            .map_err(|err| unavailable(flink_eks_plan::one_line_chain(&err)))?;
        let info = DaemonInfo {
            os: version.os.unwrap_or_default(),
            architecture: version.arch.unwrap_or_default(),
            version: version.version.unwrap_or_default(),
        };
        if !info.os.is_empty() && info.os != "linux" {
            return Err(unavailable(format!(
                "it builds {} images, and the Flink image is a Linux image",
                info.os
            )));
        }
        Ok(info)
    }

    async fn connection(&self) -> Result<&Connection> {
        self.connection
            .get_or_try_init(|| Self::open(&self.endpoint))
            .await
    }

    async fn open(endpoint: &Endpoint) -> Result<Connection> {
        let unavailable = |reason: String| Error::DockerUnavailable {
            address: endpoint.display(),
            reason,
            hint: DOCKER_HINT,
        };
        let connected = match endpoint {
            Endpoint::Unix(path) => {
                if !std::path::Path::new(path).exists() {
                    return Err(unavailable("the socket does not exist".into()));
                }
                Docker::connect_with_unix(path, 600, bollard::API_DEFAULT_VERSION)
            }
            Endpoint::Tcp(url) => Docker::connect_with_http(url, 600, bollard::API_DEFAULT_VERSION),
        };
        let docker = connected.map_err(|err| unavailable(flink_eks_plan::one_line_chain(&err)))?;
        let docker = tokio::time::timeout(Duration::from_secs(15), docker.negotiate_version())
            .await
            .map_err(|_| unavailable("no answer within 15 s".into()))?
            .map_err(|err| unavailable(flink_eks_plan::one_line_chain(&err)))?;
        let version = docker.client_version();
        let api_prefix = format!("/v{}.{}", version.major_version, version.minor_version);
        Ok(Connection { docker, api_prefix })
    }

    /// Performs `plan`, made by [`plan`](crate::plan()) for `spec` and `context`, and
    /// nothing else.
    ///
    /// - [`Action::NoChange`](flink_eks_plan::Action::NoChange): returns at once, with no
    ///   call to the daemon or the registry.
    /// - Create or Update: makes the base image available (per the spec's pull policy),
    ///   builds the image from `context` and pushes it with `credentials`, without asking
    ///   the registry again.
    ///
    /// A plan made for another build context, or another image reference, is refused before
    /// anything is done ([`Error::PlanForOtherContext`], [`Error::PlanForOtherImage`]).
    ///
    /// The push is not guarded: the registry API has no conditional tag write (no
    /// `If-Match` on a manifest PUT), so a tag moved by someone else between plan and apply
    /// is overwritten. With the default tag this is harmless: the tag is the context's
    /// digest, so whatever holds it is this same build and a repeated push is idempotent.
    pub async fn apply(
        &self,
        plan: &ImagePlan,
        spec: &ImageSpec,
        context: &BuildContext,
        credentials: &Credentials,
        progress: &dyn Progress<ProgressEvent>,
    ) -> Result<Outcome> {
        if plan.context_digest != context.digest {
            return Err(Error::PlanForOtherContext {
                image: plan.image.clone(),
                planned: plan.context_digest.clone(),
                given: context.digest.clone(),
            });
        }
        let image = format!(
            "{}:{}",
            spec.parsed_repository()?.as_str(),
            crate::plan::image_tag(spec, context)
        );
        if plan.image != image {
            return Err(Error::PlanForOtherImage {
                planned: plan.image.clone(),
                given: image,
            });
        }
        match &plan.registry {
            RegistryState::UpToDate => {
                progress.event(&ProgressEvent::UpToDate {
                    image: plan.image.clone(),
                });
                return Ok(Outcome {
                    image: plan.image.clone(),
                    context_digest: plan.context_digest.clone(),
                    built: false,
                    pushed: false,
                    manifest_digest: plan.manifest_digest.clone(),
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
        progress.event(&ProgressEvent::ContextReady {
            digest: context.digest.clone(),
            bytes: context.tar_gz.len(),
        });
        self.ensure_base(&spec.base, spec.pull_policy, &context.platform, progress)
            .await?;
        self.build(context, &plan.image, progress).await?;
        // An engine may reuse a cached image of another platform: nothing of the wrong
        // platform is pushed.
        let built = self.local_platform(&plan.image).await?;
        if !matches_platform(&context.platform, built.as_ref()) {
            return Err(Error::BuiltWrongPlatform {
                image: plan.image.clone(),
                base: spec.base.clone(),
                found: describe(built.as_ref()),
                wanted: context.platform.clone(),
            });
        }
        let manifest_digest = self.push(spec, &plan.tag, credentials, progress).await?;
        Ok(Outcome {
            image: plan.image.clone(),
            context_digest: plan.context_digest.clone(),
            built: true,
            pushed: true,
            manifest_digest,
        })
    }

    /// Makes the base image available in the daemon for `platform` (`os/arch[/variant]`)
    /// according to `policy`. A local image of another platform counts as missing: with
    /// [`PullPolicy::IfMissing`] the base is pulled for `platform`; with
    /// [`PullPolicy::Never`] it fails with [`Error::BaseImageWrongPlatform`]. A pull that
    /// still leaves another platform (the registry has no image for `platform` under that
    /// tag) fails the same way.
    pub async fn ensure_base(
        &self,
        base: &str,
        policy: PullPolicy,
        platform: &str,
        progress: &dyn Progress<ProgressEvent>,
    ) -> Result<()> {
        Platform::parse(platform)?;
        let local = self.local_platform(base).await?;
        let wrong_platform =
            |found: Option<&LocalPlatform>, hint: String| Error::BaseImageWrongPlatform {
                image: base.to_owned(),
                found: describe(found),
                wanted: platform.to_owned(),
                hint,
            };
        let usable = local
            .as_ref()
            .is_some_and(|found| matches_platform(platform, Some(found)));
        match (policy, &local) {
            (PullPolicy::Never, None) => {
                return Err(Error::BaseImageMissing {
                    image: base.to_owned(),
                });
            }
            (PullPolicy::Never, Some(found)) if !usable => {
                return Err(wrong_platform(
                    Some(found),
                    format!(
                        "the pull policy is `never`; pull it for this platform first (docker pull --platform {platform} {base}) or use pull policy `if-missing`"
                    ),
                ));
            }
            (PullPolicy::Never | PullPolicy::IfMissing, Some(_)) if usable => {
                progress.event(&ProgressEvent::BaseImagePresent {
                    image: base.to_owned(),
                });
                return Ok(());
            }
            // Missing, or for another platform, and pulling is allowed; or `always`.
            _ => {}
        }
        self.pull(base, platform, progress).await?;
        let pulled = self.local_platform(base).await?;
        if !matches_platform(platform, pulled.as_ref()) {
            return Err(wrong_platform(
                pulled.as_ref(),
                format!(
                    "its registry has no {platform} image under this reference; choose a base built for {platform} ([image] base) or build for the base's platform ([image] platform)"
                ),
            ));
        }
        Ok(())
    }

    /// The platform of the local image `reference`, or `None` when the daemon lacks it.
    async fn local_platform(&self, reference: &str) -> Result<Option<LocalPlatform>> {
        match self.docker().await?.inspect_image(reference).await {
            Ok(image) => Ok(Some(LocalPlatform {
                os: image.os.unwrap_or_default(),
                architecture: image.architecture.unwrap_or_default(),
                variant: image.variant.filter(|v| !v.is_empty()),
            })),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(None),
            Err(source) => Err(Error::Docker {
                action: format!("inspect of image {reference}"),
                source,
            }),
        }
    }

    async fn pull(
        &self,
        base: &str,
        platform: &str,
        progress: &dyn Progress<ProgressEvent>,
    ) -> Result<()> {
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
            platform: platform.to_owned(),
            ..Default::default()
        };
        let auth = (!credentials.is_anonymous()).then(|| credentials.to_docker(&server));
        let mut stream = self.docker().await?.create_image(Some(options), None, auth);
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
    /// context digest, asking the engine for the context's platform. Returns the image ID.
    pub async fn build(
        &self,
        context: &BuildContext,
        image: &str,
        progress: &dyn Progress<ProgressEvent>,
    ) -> Result<String> {
        let labels = HashMap::from([(CONTEXT_DIGEST_LABEL.to_owned(), context.digest.clone())]);
        let options = BuildImageOptions {
            t: Some(image.to_owned()),
            rm: true,
            forcerm: true,
            labels: Some(labels),
            platform: context.platform.clone(),
            ..Default::default()
        };
        let body = bollard::body_full(bytes::Bytes::from(context.tar_gz.clone()));
        let docker = self.docker().await?;
        let mut stream = docker.build_image(options, None, Some(body));
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
            None => docker
                .inspect_image(image)
                .await
                .map_err(|err| Error::BuildFailed {
                    message: format!(
                        "the build ended without an image ({})",
                        flink_eks_plan::one_line_chain(&err)
                    ),
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
        progress: &dyn Progress<ProgressEvent>,
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
            self.connection().await?.api_prefix,
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
            reason: flink_eks_plan::one_line_chain(&err),
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

/// The platform a local image is for, as `docker image inspect` reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct LocalPlatform {
    os: String,
    architecture: String,
    variant: Option<String>,
}

/// Whether `found` runs on `platform` (a platform the spec's validation accepted).
fn matches_platform(platform: &str, found: Option<&LocalPlatform>) -> bool {
    let (Ok(wanted), Some(found)) = (Platform::parse(platform), found) else {
        return false;
    };
    wanted.matches(&found.os, &found.architecture, found.variant.as_deref())
}

/// `os/arch[/variant]` of a local image, or `no image` when there is none.
fn describe(found: Option<&LocalPlatform>) -> String {
    match found {
        None => "no image".to_owned(),
        Some(LocalPlatform {
            os,
            architecture,
            variant: Some(variant),
        }) => format!("{os}/{architecture}/{variant}"),
        Some(LocalPlatform {
            os, architecture, ..
        }) => format!("{os}/{architecture}"),
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
    progress: &dyn Progress<ProgressEvent>,
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
    progress: &dyn Progress<ProgressEvent>,
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
        other => flink_eks_plan::one_line_chain(other),
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
        let events = std::sync::Mutex::new(Vec::new());
        let sink = |e: &ProgressEvent| events.lock().unwrap().push(e.clone());
        for line in [
            "Step 1/2 : FROM base",
            " ---> 93d45a025922",
            "Step 2/2 : RUN pip3 install x",
            " ---> Running in 5f11cf1479b1",
            "/bin/sh: pip3: not found",
        ] {
            record_line(line, &mut step, &mut output, &sink);
        }
        assert_eq!(step.as_deref(), Some("Step 2/2 : RUN pip3 install x"));
        assert_eq!(output, ["/bin/sh: pip3: not found"]);
        assert_eq!(
            events
                .lock()
                .unwrap()
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
        let events = std::sync::Mutex::new(Vec::new());
        let sink = |e: &ProgressEvent| events.lock().unwrap().push(e.clone());
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
                &sink,
            )
            .unwrap();
        }
        let sink = flink_eks_plan::Silent;
        assert_eq!(digest.as_deref(), Some("sha256:e3c9"));
        assert_eq!(
            *events.lock().unwrap(),
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
            &sink,
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
            &sink,
        )
        .unwrap_err();
        assert!(matches!(err, Error::PushFailed { .. }), "{err}");
    }
}

#[cfg(test)]
mod apply_tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::plan::test_plan;

    /// A "registry" on loopback that counts the connections made to it and answers none.
    async fn counting_registry() -> (String, Arc<AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let count = Arc::new(AtomicUsize::new(0));
        let seen = count.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                seen.fetch_add(1, Ordering::SeqCst);
                drop(socket);
            }
        });
        (address, count)
    }

    /// A builder whose daemon socket does not exist: any daemon call fails.
    async fn builder_without_daemon(dir: &tempfile::TempDir) -> ImageBuilder {
        let socket = dir.path().join("no-daemon.sock");
        ImageBuilder::connect_with(&format!("unix://{}", socket.display()))
            .await
            .expect("making a builder sends nothing")
    }

    #[tokio::test]
    async fn a_no_change_plan_calls_neither_the_daemon_nor_the_registry() {
        let (registry, connections) = counting_registry().await;
        let spec = ImageSpec::new("1.20.0", format!("{registry}/flink-s3"));
        let context = BuildContext::new(&spec).unwrap();
        let plan = test_plan(&spec, &context, RegistryState::UpToDate);
        let dir = tempfile::tempdir().unwrap();
        let builder = builder_without_daemon(&dir).await;
        let events = std::sync::Mutex::new(Vec::new());
        let progress = |e: &ProgressEvent| events.lock().unwrap().push(e.clone());
        let credentials = Credentials::password("u", "p");

        let outcome = builder
            .apply(&plan, &spec, &context, &credentials, &progress)
            .await
            .expect("nothing to do needs no daemon");

        assert!(!outcome.built && !outcome.pushed, "{outcome:?}");
        assert_eq!(outcome.image, plan.image);
        assert_eq!(
            *events.lock().unwrap(),
            [ProgressEvent::UpToDate {
                image: plan.image.clone()
            }]
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(connections.load(Ordering::SeqCst), 0, "no registry request");
    }

    #[tokio::test]
    async fn a_plan_for_another_context_is_refused_before_any_work() {
        let (registry, connections) = counting_registry().await;
        let spec = ImageSpec::new("1.20.0", format!("{registry}/flink-s3"));
        let planned = BuildContext::new(&spec).unwrap();
        let plan = test_plan(&spec, &planned, RegistryState::Absent);
        let changed = spec.clone().with_pyflink(true);
        let context = BuildContext::new(&changed).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let builder = builder_without_daemon(&dir).await;
        let events = std::sync::Mutex::new(Vec::new());
        let progress = |e: &ProgressEvent| events.lock().unwrap().push(e.clone());

        let err = builder
            .apply(
                &plan,
                &changed,
                &context,
                &Credentials::Anonymous,
                &progress,
            )
            .await
            .unwrap_err();

        // Not DockerUnavailable: the daemon was never asked.
        assert!(matches!(err, Error::PlanForOtherContext { .. }), "{err:?}");
        let shown = err.to_string();
        assert!(
            shown.contains(&planned.digest)
                && shown.contains(&context.digest)
                && shown.contains("plan again"),
            "{shown}"
        );
        assert_eq!(shown.lines().count(), 1, "{shown}");
        assert!(events.lock().unwrap().is_empty());
        assert_eq!(connections.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn a_plan_for_another_repository_is_refused() {
        let spec = ImageSpec::new("1.20.0", "127.0.0.1:5000/flink-s3");
        let context = BuildContext::new(&spec).unwrap();
        let plan = test_plan(&spec, &context, RegistryState::Absent);
        let elsewhere = ImageSpec::new("1.20.0", "127.0.0.1:5000/other");
        let dir = tempfile::tempdir().unwrap();
        let err = builder_without_daemon(&dir)
            .await
            .apply(
                &plan,
                &elsewhere,
                &context,
                &Credentials::Anonymous,
                &flink_eks_plan::Silent,
            )
            .await
            .unwrap_err();
        assert!(matches!(err, Error::PlanForOtherImage { .. }), "{err:?}");
        assert!(
            err.to_string().contains("127.0.0.1:5000/other:sha256-"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn a_plan_that_writes_needs_the_daemon_and_says_so() {
        let spec = ImageSpec::new("1.20.0", "127.0.0.1:5000/flink-s3");
        let context = BuildContext::new(&spec).unwrap();
        let plan = test_plan(&spec, &context, RegistryState::Absent);
        let dir = tempfile::tempdir().unwrap();
        let err = builder_without_daemon(&dir)
            .await
            .apply(
                &plan,
                &spec,
                &context,
                &Credentials::Anonymous,
                &flink_eks_plan::Silent,
            )
            .await
            .unwrap_err();
        assert!(matches!(err, Error::DockerUnavailable { .. }), "{err:?}");
    }
}

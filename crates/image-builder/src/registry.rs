//! Asking the registry (not the local daemon) whether an image is already there.
//!
//! The Distribution API over HTTPS, or plain HTTP for registries on this machine (as the
//! Docker daemon does by default). Authentication: anonymous first; on a 401 the
//! `WWW-Authenticate` challenge decides between Basic and the Bearer token flow
//! (Docker Hub, ECR, GHCR).

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use base64::Engine as _;
use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderValue, WWW_AUTHENTICATE};
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use tokio::sync::Mutex;

use crate::credentials::Credentials;
use crate::error::{Error, Result};
use crate::reference::Repository;

/// Every manifest type a registry may hold for one tag.
const MANIFEST_ACCEPT: &str = "application/vnd.docker.distribution.manifest.v2+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.oci.image.manifest.v1+json, \
application/vnd.oci.image.index.v1+json";

/// The hint given when a registry refuses access.
pub(crate) fn credentials_hint(registry: &str) -> String {
    format!(
        "log in with `docker login {registry}` (Docker config, credsStore, credHelpers), or set {} and {}",
        crate::credentials::USERNAME_ENV,
        crate::credentials::PASSWORD_ENV
    )
}

/// A client for one repository of one registry.
pub struct RegistryClient {
    http: reqwest::Client,
    repository: Repository,
    base_url: String,
    credentials: Credentials,
    /// The Authorization header that last worked, reused for the next requests.
    authorization: Mutex<Option<HeaderValue>>,
}

impl std::fmt::Debug for RegistryClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryClient")
            .field("base_url", &self.base_url)
            .field("repository", &self.repository.path())
            .field("credentials", &self.credentials)
            .finish_non_exhaustive()
    }
}

/// The TLS configuration of every [`RegistryClient`] of the process, made on first use: it
/// trusts the system's root certificates, read once per process by [`crate::roots`], so no
/// client parses them again. A failure to make it is kept too: it would fail the same way.
fn shared_tls() -> std::result::Result<rustls::ClientConfig, String> {
    static TLS: OnceLock<std::result::Result<rustls::ClientConfig, String>> = OnceLock::new();
    TLS.get_or_init(|| {
        let mut roots = rustls::RootCertStore::empty();
        roots.add_parsable_certificates(crate::roots::system_root_certificates().iter().cloned());
        let provider = rustls::crypto::CryptoProvider::get_default()
            .cloned()
            .unwrap_or_else(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider()));
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|err| flink_eks_plan::one_line_chain(&err))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(config)
    })
    .clone()
}

/// An HTTP client for one [`RegistryClient`], with the process's TLS configuration and a
/// connection pool of its own: a pooled connection is driven by a task of the async runtime
/// that opened it, so a pool shared by the clients of two runtimes (a program may run more
/// than one, a test binary does) would lose a request in flight when one of them ends.
fn http_client() -> std::result::Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(60))
        .user_agent(concat!(
            "flink-eks-image-builder/",
            env!("CARGO_PKG_VERSION")
        ))
        .tls_backend_preconfigured(shared_tls()?)
        .build()
        .map_err(|err| flink_eks_plan::one_line_chain(&err))
}

impl RegistryClient {
    /// A client for `repository`, speaking plain HTTP to loopback registries and HTTPS to
    /// every other.
    pub fn new(repository: &Repository, credentials: Credentials) -> Result<Self> {
        let plain_http = repository.is_loopback();
        Self::with_scheme(repository, credentials, plain_http)
    }

    /// A client choosing plain HTTP (`true`) or HTTPS (`false`) explicitly, for registries
    /// the Docker daemon lists under `insecure-registries`.
    pub fn with_scheme(
        repository: &Repository,
        credentials: Credentials,
        plain_http: bool,
    ) -> Result<Self> {
        let http = http_client().map_err(|message| Error::Registry {
            registry: repository.registry().to_owned(),
            message: format!("cannot set up an HTTP client: {message}"),
        })?;
        let scheme = if plain_http { "http" } else { "https" };
        Ok(Self {
            http,
            base_url: format!("{scheme}://{}", repository.api_host()),
            repository: repository.clone(),
            credentials,
            authorization: Mutex::new(None),
        })
    }

    /// HEAD `/v2/<name>/manifests/<tag>`: is there an image under this tag?
    pub async fn manifest_exists(&self, tag: &str) -> Result<bool> {
        Ok(self.head_manifest(tag).await?.is_some())
    }

    /// HEAD `/v2/<name>/manifests/<tag>`: `None` when the tag is absent, otherwise the
    /// manifest digest the registry reports (`Docker-Content-Digest`), if it does.
    pub(crate) async fn head_manifest(&self, tag: &str) -> Result<Option<Option<String>>> {
        let url = self.url(&format!("manifests/{tag}"));
        let response = self.send(Method::HEAD, &url, MANIFEST_ACCEPT).await?;
        match response.status() {
            StatusCode::OK => Ok(Some(content_digest(&response))),
            StatusCode::NOT_FOUND => Ok(None),
            status => Err(self.unexpected(status, &url)),
        }
    }

    /// The value of `label` in the image config under `tag` (`Ok(None)` when the tag or the
    /// label does not exist). For an image index, the `linux/amd64` image (or the first).
    pub async fn image_label(&self, tag: &str, label: &str) -> Result<Option<String>> {
        Ok(self
            .remote_image(tag, label)
            .await?
            .and_then(|remote| remote.label))
    }

    /// What the registry holds under `tag`: `None` when the tag is absent; otherwise its
    /// manifest digest and the value of `label` in the image config (for an image index,
    /// the `linux/amd64` image's, or the first's).
    pub(crate) async fn remote_image(&self, tag: &str, label: &str) -> Result<Option<RemoteImage>> {
        let Some((manifest, manifest_digest)) = self
            .get_json::<Manifest>(&format!("manifests/{tag}"))
            .await?
        else {
            return Ok(None);
        };
        let found = |label: Option<String>| {
            Ok(Some(RemoteImage {
                manifest_digest: Some(manifest_digest.clone()),
                label,
            }))
        };
        let manifest = match (manifest.config, manifest.manifests) {
            (Some(config), _) => Manifest {
                config: Some(config),
                manifests: None,
            },
            (None, Some(list)) => {
                let chosen = list
                    .iter()
                    .find(|m| {
                        m.platform
                            .as_ref()
                            .is_some_and(|p| p.os == "linux" && p.architecture == "amd64")
                    })
                    .or_else(|| list.first());
                let Some(chosen) = chosen else {
                    return found(None);
                };
                match self
                    .get_json::<Manifest>(&format!("manifests/{}", chosen.digest))
                    .await?
                {
                    Some((inner, _)) => inner,
                    None => return found(None),
                }
            }
            (None, None) => return found(None),
        };
        let Some(config) = manifest.config else {
            return found(None);
        };
        let Some((blob, _)) = self
            .get_json::<ImageConfig>(&format!("blobs/{}", config.digest))
            .await?
        else {
            return found(None);
        };
        found(
            blob.config
                .and_then(|c| c.labels)
                .and_then(|mut labels| labels.remove(label)),
        )
    }

    fn url(&self, rest: &str) -> String {
        format!("{}/v2/{}/{rest}", self.base_url, self.repository.path())
    }

    fn unexpected(&self, status: StatusCode, url: &str) -> Error {
        Error::Registry {
            registry: self.repository.registry().to_owned(),
            message: format!("unexpected answer {status} to {url}"),
        }
    }

    /// GETs `rest` as JSON; with it, the digest of what was read (`Docker-Content-Digest`,
    /// or the SHA-256 of the body, which is what that header holds).
    async fn get_json<T: for<'de> Deserialize<'de>>(
        &self,
        rest: &str,
    ) -> Result<Option<(T, String)>> {
        let url = self.url(rest);
        let response = self.send(Method::GET, &url, MANIFEST_ACCEPT).await?;
        match response.status() {
            StatusCode::OK => {}
            StatusCode::NOT_FOUND => return Ok(None),
            status => return Err(self.unexpected(status, &url)),
        }
        let reported = content_digest(&response);
        let bytes = response
            .bytes()
            .await
            .map_err(|err| self.http_error(&url, &err))?;
        let digest = reported.unwrap_or_else(|| {
            use sha2::Digest as _;
            format!("sha256:{}", hex::encode(sha2::Sha256::digest(&bytes)))
        });
        serde_json::from_slice(&bytes)
            .map(|value| Some((value, digest)))
            .map_err(|err| Error::Registry {
                registry: self.repository.registry().to_owned(),
                message: format!("{url} is not the JSON expected: {err}"),
            })
    }

    fn http_error(&self, url: &str, err: &reqwest::Error) -> Error {
        Error::Registry {
            registry: self.repository.registry().to_owned(),
            message: format!(
                "cannot reach {url}: {}",
                flink_eks_plan::one_line_chain(err)
            ),
        }
    }

    fn unauthorized(&self, reason: String) -> Error {
        Error::RegistryUnauthorized {
            registry: self.repository.registry().to_owned(),
            repository: self.repository.path().to_owned(),
            reason,
            hint: credentials_hint(self.repository.registry()),
        }
    }

    /// Sends a request, answering an authentication challenge once.
    async fn send(&self, method: Method, url: &str, accept: &str) -> Result<reqwest::Response> {
        let cached = self.authorization.lock().await.clone();
        let first = self
            .request(method.clone(), url, accept, cached.clone())
            .await?;
        if first.status() != StatusCode::UNAUTHORIZED {
            return Ok(first);
        }
        let challenge = first
            .headers()
            .get(WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .map(Challenge::parse)
            .unwrap_or(Challenge::Basic);
        let authorization = self.authorize(&challenge).await?;
        let second = self
            .request(method, url, accept, Some(authorization.clone()))
            .await?;
        match second.status() {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Err(self.unauthorized(format!(
                "{} with {}",
                second.status(),
                self.credentials
                    .source()
                    .map_or("no credentials".to_owned(), |s| format!(
                        "credentials from {s}"
                    ))
            ))),
            _ => {
                *self.authorization.lock().await = Some(authorization);
                Ok(second)
            }
        }
    }

    async fn request(
        &self,
        method: Method,
        url: &str,
        accept: &str,
        authorization: Option<HeaderValue>,
    ) -> Result<reqwest::Response> {
        let mut request = self.http.request(method, url).header(ACCEPT, accept);
        if let Some(authorization) = authorization {
            request = request.header(AUTHORIZATION, authorization);
        }
        request
            .send()
            .await
            .map_err(|err| self.http_error(url, &err))
    }

    /// The Authorization header answering `challenge`.
    async fn authorize(&self, challenge: &Challenge) -> Result<HeaderValue> {
        match challenge {
            Challenge::Basic => match &self.credentials {
                Credentials::Password {
                    username, password, ..
                } => sensitive_header(&format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD
                        .encode(format!("{username}:{}", password.expose()))
                )),
                Credentials::IdentityToken { .. } => Err(self.unauthorized(
                    "the registry asks for a password and only an identity token was found".into(),
                )),
                _ => Err(self
                    .unauthorized("the registry asks for credentials and none were found".into())),
            },
            Challenge::Bearer {
                realm,
                service,
                scope,
            } => {
                let scope = scope
                    .clone()
                    .unwrap_or_else(|| format!("repository:{}:pull", self.repository.path()));
                let token = self.fetch_token(realm, service.as_deref(), &scope).await?;
                sensitive_header(&format!("Bearer {token}"))
            }
        }
    }

    async fn fetch_token(&self, realm: &str, service: Option<&str>, scope: &str) -> Result<String> {
        let mut url = reqwest::Url::parse(realm).map_err(|err| Error::Registry {
            registry: self.repository.registry().to_owned(),
            message: format!("the token realm `{realm}` is not a URL: {err}"),
        })?;
        let response = match &self.credentials {
            Credentials::IdentityToken { token, .. } => {
                // OAuth2 refresh-token grant, as `docker login` tokens are meant to be used.
                let mut form: Vec<(&str, String)> = vec![
                    ("grant_type", "refresh_token".to_owned()),
                    ("refresh_token", token.expose().to_owned()),
                    ("client_id", "flink-eks".to_owned()),
                    ("scope", scope.to_owned()),
                ];
                if let Some(service) = service {
                    form.push(("service", service.to_owned()));
                }
                self.http
                    .post(url.clone())
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(url::encode_form(&form))
                    .send()
                    .await
            }
            other => {
                {
                    let mut pairs = url.query_pairs_mut();
                    if let Some(service) = service {
                        pairs.append_pair("service", service);
                    }
                    pairs.append_pair("scope", scope);
                }
                let mut request = self.http.get(url.clone());
                if let Credentials::Password {
                    username, password, ..
                } = other
                {
                    request = request.basic_auth(username, Some(password.expose()));
                }
                request.send().await
            }
        }
        .map_err(|err| self.http_error(url.as_str(), &err))?;
        let status = response.status();
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Err(self.unauthorized(format!(
                "the token service {} refused {} ({status})",
                url.origin().ascii_serialization(),
                self.credentials
                    .source()
                    .map_or("anonymous access".to_owned(), |s| format!(
                        "credentials from {s}"
                    ))
            )));
        }
        if !status.is_success() {
            return Err(self.unexpected(status, url.as_str()));
        }
        #[derive(Deserialize)]
        struct TokenAnswer {
            #[serde(default)]
            token: Option<String>,
            #[serde(default)]
            access_token: Option<String>,
        }
        let body = response
            .bytes()
            .await
            .map_err(|err| self.http_error(url.as_str(), &err))?;
        let answer: TokenAnswer = serde_json::from_slice(&body).map_err(|err| Error::Registry {
            registry: self.repository.registry().to_owned(),
            message: format!("the token service did not answer with a token: {err}"),
        })?;
        answer
            .token
            .or(answer.access_token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| Error::Registry {
                registry: self.repository.registry().to_owned(),
                message: "the token service answered without a token".into(),
            })
    }
}

/// What the registry holds under a tag.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RemoteImage {
    /// The manifest's digest, `sha256:<hex>`.
    pub(crate) manifest_digest: Option<String>,
    /// The value of the label asked for, if the image has it.
    pub(crate) label: Option<String>,
}

/// The `Docker-Content-Digest` header, if the registry sent one.
fn content_digest(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get("docker-content-digest")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

fn sensitive_header(value: &str) -> Result<HeaderValue> {
    let mut header = HeaderValue::from_str(value).map_err(|_| Error::Registry {
        registry: String::new(),
        message: "the credentials hold characters that cannot go in an HTTP header".into(),
    })?;
    header.set_sensitive(true);
    Ok(header)
}

/// Form encoding without pulling in reqwest's `form` feature.
mod url {
    use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

    const FORM: &AsciiSet = &NON_ALPHANUMERIC
        .remove(b'*')
        .remove(b'-')
        .remove(b'.')
        .remove(b'_');

    pub(super) fn encode_form(pairs: &[(&str, String)]) -> String {
        pairs
            .iter()
            .map(|(k, v)| {
                format!(
                    "{}={}",
                    utf8_percent_encode(k, FORM),
                    utf8_percent_encode(v, FORM)
                )
            })
            .collect::<Vec<_>>()
            .join("&")
    }
}

/// A parsed `WWW-Authenticate` header.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Challenge {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
}

impl Challenge {
    fn parse(header: &str) -> Self {
        let header = header.trim();
        let Some((scheme, params)) = header.split_once(' ') else {
            return Self::Basic;
        };
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Self::Basic;
        }
        let params = parse_auth_params(params);
        let get = |name: &str| {
            params
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
        };
        match get("realm") {
            Some(realm) => Self::Bearer {
                realm,
                service: get("service"),
                scope: get("scope"),
            },
            None => Self::Basic,
        }
    }
}

/// `k1="v1",k2=v2` with quoted values that may hold commas.
fn parse_auth_params(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if key.is_empty() {
            break;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => {
                        if let Some(escaped) = chars.next() {
                            value.push(escaped);
                        }
                    }
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            while let Some(c) = chars.peek() {
                if *c == ',' {
                    break;
                }
                value.push(*c);
                chars.next();
            }
        }
        out.push((key.trim().to_owned(), value.trim().to_owned()));
    }
    out
}

#[derive(Deserialize)]
struct Manifest {
    #[serde(default)]
    config: Option<Descriptor>,
    #[serde(default)]
    manifests: Option<Vec<Descriptor>>,
}

#[derive(Deserialize)]
struct Descriptor {
    digest: String,
    #[serde(default)]
    platform: Option<Platform>,
}

#[derive(Deserialize)]
struct Platform {
    #[serde(default)]
    os: String,
    #[serde(default)]
    architecture: String,
}

#[derive(Deserialize)]
struct ImageConfig {
    #[serde(default)]
    config: Option<ContainerConfig>,
}

#[derive(Deserialize)]
struct ContainerConfig {
    #[serde(default, rename = "Labels")]
    labels: Option<std::collections::HashMap<String, String>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bearer_challenges_with_commas_in_quotes() {
        let challenge = Challenge::parse(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/flink:pull,push""#,
        );
        assert_eq!(
            challenge,
            Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
                scope: Some("repository:library/flink:pull,push".into()),
            }
        );
    }

    #[test]
    fn parses_ecr_and_basic_challenges() {
        assert_eq!(
            Challenge::parse(
                r#"Basic realm="https://123456789012.dkr.ecr.us-east-1.amazonaws.com/",service="ecr.amazonaws.com""#
            ),
            Challenge::Basic
        );
        assert_eq!(
            Challenge::parse(r#"Basic realm="flink-eks-test""#),
            Challenge::Basic
        );
        assert_eq!(
            Challenge::parse("Bearer realm=https://ghcr.io/token, service=ghcr.io"),
            Challenge::Bearer {
                realm: "https://ghcr.io/token".into(),
                service: Some("ghcr.io".into()),
                scope: None,
            }
        );
        assert_eq!(Challenge::parse("Bearer"), Challenge::Basic);
    }

    #[test]
    fn form_encoding_escapes_reserved_characters() {
        assert_eq!(
            url::encode_form(&[
                ("scope", "repository:a/b:pull".into()),
                ("k", "x y&z".into())
            ]),
            "scope=repository%3Aa%2Fb%3Apull&k=x%20y%26z"
        );
    }

    /// A registry on loopback that answers every request `404`, 200 ms after it came, on
    /// kept-alive connections; returns its `host:port`.
    fn slow_keep_alive_registry() -> String {
        use std::io::{BufRead as _, BufReader, Write as _};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap().to_string();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    let mut writer = stream;
                    let mut line = String::new();
                    loop {
                        line.clear();
                        match reader.read_line(&mut line) {
                            Ok(0) | Err(_) => return,
                            Ok(_) if line == "\r\n" => {
                                std::thread::sleep(Duration::from_millis(200));
                                let answer = "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n";
                                if writer.write_all(answer.as_bytes()).is_err() {
                                    return;
                                }
                            }
                            Ok(_) => {}
                        }
                    }
                });
            }
        });
        address
    }

    #[test]
    fn a_request_survives_the_end_of_another_runtime_that_used_the_same_registry() {
        // A program (or a test binary) may run several Tokio runtimes. A pooled connection
        // is driven by a task of the runtime that opened it: shared with a client of another
        // runtime, a request on it dies when the first runtime ends.
        let repository = Repository::parse(&format!("{}/x", slow_keep_alive_registry())).unwrap();
        let (ended_tx, ended_rx) = tokio::sync::oneshot::channel::<()>();
        let (asked_tx, asked_rx) = std::sync::mpsc::channel::<()>();
        let first = {
            let repository = repository.clone();
            std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                let client = RegistryClient::new(&repository, Credentials::Anonymous).unwrap();
                let answer = runtime.block_on(client.head_manifest("v1"));
                assert!(matches!(answer, Ok(None)), "{answer:?}");
                asked_tx.send(()).unwrap();
                // Running, its connection kept (and driving whatever request is on it), until
                // the second request is on its way; then it ends.
                let _ = runtime.block_on(ended_rx);
                drop(runtime);
            })
        };
        asked_rx.recv().unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let client = RegistryClient::new(&repository, Credentials::Anonymous).unwrap();
        let answer = runtime.block_on(async {
            let request = client.head_manifest("v2");
            let end_the_first = async {
                tokio::time::sleep(Duration::from_millis(50)).await;
                let _ = ended_tx.send(());
                std::future::pending::<()>().await
            };
            tokio::select! {
                answer = request => answer,
                () = end_the_first => unreachable!(),
            }
        });
        first.join().unwrap();
        assert!(matches!(answer, Ok(None)), "{answer:?}");
    }

    #[test]
    fn debug_redacts_the_credentials() {
        let repo = Repository::parse("127.0.0.1:5000/x").unwrap();
        let client = RegistryClient::new(&repo, Credentials::password("u", "very-secret")).unwrap();
        let shown = format!("{client:?}");
        assert!(!shown.contains("very-secret"), "{shown}");
        assert!(shown.contains("http://127.0.0.1:5000"), "{shown}");
    }
}

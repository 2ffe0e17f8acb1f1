//! Registry credentials, from where users keep them. Secrets never reach Debug or Display.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use serde::Deserialize;

use crate::error::{Error, Result};

/// Environment variable with a registry user name, used with [`PASSWORD_ENV`].
pub const USERNAME_ENV: &str = "FLINK_EKS_REGISTRY_USERNAME";
/// Environment variable with a registry password or token, used with [`USERNAME_ENV`].
pub const PASSWORD_ENV: &str = "FLINK_EKS_REGISTRY_PASSWORD";

/// How long a credential helper may take.
const HELPER_TIMEOUT: Duration = Duration::from_secs(60);

/// A secret string (password, token). Its Debug and Display print `<redacted>`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(secret: impl Into<String>) -> Self {
        Self(secret.into())
    }

    /// The secret itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Where a set of credentials was found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CredentialSource {
    /// Given by the program.
    Explicit,
    /// The [`USERNAME_ENV`] and [`PASSWORD_ENV`] environment variables.
    Environment,
    /// An `auths` entry of this Docker config file.
    DockerConfig(PathBuf),
    /// `docker-credential-<name>` (from `credHelpers` or `credsStore`).
    CredentialHelper(String),
    /// Amazon ECR's GetAuthorizationToken.
    Ecr,
}

impl fmt::Display for CredentialSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Explicit => f.write_str("the caller"),
            Self::Environment => write!(f, "{USERNAME_ENV}/{PASSWORD_ENV}"),
            Self::DockerConfig(path) => write!(f, "auths in {}", path.display()),
            Self::CredentialHelper(name) => write!(f, "docker-credential-{name}"),
            Self::Ecr => f.write_str("ECR GetAuthorizationToken"),
        }
    }
}

/// Credentials for one registry.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Credentials {
    /// No credentials: the registry is asked anonymously.
    #[default]
    Anonymous,
    /// A user name and password (or access token used as one).
    Password {
        /// The user name (`AWS` for ECR).
        username: String,
        /// The password or token.
        password: Secret,
        /// Where they were found.
        source: CredentialSource,
    },
    /// An OAuth2 refresh token from `docker login` (`identitytoken` in the config file, or a
    /// helper answering with user name `<token>`).
    IdentityToken {
        /// The token.
        token: Secret,
        /// Where it was found.
        source: CredentialSource,
    },
}

impl Credentials {
    /// A user name and password given by the program.
    pub fn password(username: impl Into<String>, password: impl Into<String>) -> Self {
        Self::Password {
            username: username.into(),
            password: Secret::new(password),
            source: CredentialSource::Explicit,
        }
    }

    /// Finds credentials for `registry` (`host[:port]`, or `docker.io`) the way
    /// [`CredentialResolver::from_environment`] does.
    pub async fn resolve(registry: &str) -> Result<Self> {
        CredentialResolver::from_environment()?
            .resolve(registry)
            .await
    }

    /// Whether these are anonymous.
    pub fn is_anonymous(&self) -> bool {
        matches!(self, Self::Anonymous)
    }

    /// Where these were found (`None` when anonymous).
    pub fn source(&self) -> Option<&CredentialSource> {
        match self {
            Self::Anonymous => None,
            Self::Password { source, .. } | Self::IdentityToken { source, .. } => Some(source),
        }
    }

    /// The credentials in the form the Docker Engine API takes them.
    pub(crate) fn to_docker(&self, server_address: &str) -> bollard::auth::DockerCredentials {
        let mut out = bollard::auth::DockerCredentials {
            serveraddress: Some(server_address.to_owned()),
            ..Default::default()
        };
        match self {
            Self::Anonymous => {}
            Self::Password {
                username, password, ..
            } => {
                out.username = Some(username.clone());
                out.password = Some(password.expose().to_owned());
            }
            Self::IdentityToken { token, .. } => {
                out.identitytoken = Some(token.expose().to_owned());
            }
        }
        out
    }
}

/// The parts of a Docker config file (`config.json`) that hold credentials.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct DockerConfig {
    /// `auths`: per registry, `auth` (base64 of `user:password`) or `identitytoken`.
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
    /// `credsStore`: the helper used for every registry without a `credHelpers` entry.
    #[serde(default, rename = "credsStore")]
    creds_store: Option<String>,
    /// `credHelpers`: per registry, the helper to ask.
    #[serde(default, rename = "credHelpers")]
    cred_helpers: BTreeMap<String, String>,
    /// The file it came from, for messages.
    #[serde(skip)]
    path: PathBuf,
}

#[derive(Clone, Default, Deserialize)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default, rename = "identitytoken")]
    identity_token: Option<String>,
}

impl fmt::Debug for AuthEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthEntry")
            .field("auth", &self.auth.as_ref().map(|_| "<redacted>"))
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field(
                "identity_token",
                &self.identity_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

impl DockerConfig {
    /// Where Docker keeps its config: `$DOCKER_CONFIG/config.json`, else
    /// `$HOME/.docker/config.json`.
    pub fn default_path() -> Option<PathBuf> {
        if let Some(dir) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
            return Some(PathBuf::from(dir).join("config.json"));
        }
        std::env::var_os("HOME")
            .filter(|h| !h.is_empty())
            .map(|home| PathBuf::from(home).join(".docker").join("config.json"))
    }

    /// Reads a config file; a missing file is `Ok(None)`.
    pub fn load(path: &Path) -> Result<Option<Self>> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(err) => {
                return Err(Error::DockerConfig {
                    path: path.to_owned(),
                    message: err.to_string(),
                });
            }
        };
        Self::parse(&text, path).map(Some)
    }

    /// Parses config JSON; `path` is only used in messages.
    pub fn parse(json: &str, path: &Path) -> Result<Self> {
        let mut config: Self = serde_json::from_str(json).map_err(|err| Error::DockerConfig {
            path: path.to_owned(),
            // serde_json's message names line and column, never the content.
            message: format!("not valid JSON: {err}"),
        })?;
        config.path = path.to_owned();
        Ok(config)
    }

    /// The helper configured for `registry`, from `credHelpers`.
    fn helper_for(&self, registry: &str) -> Option<&str> {
        self.cred_helpers
            .iter()
            .find(|(key, _)| same_registry(key, registry))
            .map(|(_, helper)| helper.as_str())
    }

    fn auth_for(&self, registry: &str) -> Result<Option<Credentials>> {
        let Some((key, entry)) = self
            .auths
            .iter()
            .find(|(key, _)| same_registry(key, registry))
        else {
            return Ok(None);
        };
        let source = CredentialSource::DockerConfig(self.path.clone());
        if let Some(token) = entry.identity_token.as_deref().filter(|t| !t.is_empty()) {
            return Ok(Some(Credentials::IdentityToken {
                token: Secret::new(token),
                source,
            }));
        }
        if let Some(auth) = entry.auth.as_deref().filter(|a| !a.is_empty()) {
            let bad = || Error::DockerConfig {
                path: self.path.clone(),
                message: format!(
                    "auths.\"{key}\".auth is not base64 of user:password; run docker login {registry} again"
                ),
            };
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(auth.trim())
                .map_err(|_| bad())?;
            let decoded = String::from_utf8(decoded).map_err(|_| bad())?;
            let (username, password) = decoded.split_once(':').ok_or_else(bad)?;
            return Ok(Some(Credentials::Password {
                username: username.to_owned(),
                password: Secret::new(password),
                source,
            }));
        }
        if let (Some(username), Some(password)) = (&entry.username, &entry.password) {
            return Ok(Some(Credentials::Password {
                username: username.clone(),
                password: Secret::new(password.clone()),
                source,
            }));
        }
        Ok(None)
    }
}

/// Whether a Docker config key (`host`, `https://host`, `https://host/v1/`) names `registry`.
fn same_registry(key: &str, registry: &str) -> bool {
    normalize_registry(key) == normalize_registry(registry)
}

fn normalize_registry(name: &str) -> &str {
    let name = name
        .strip_prefix("https://")
        .or_else(|| name.strip_prefix("http://"))
        .unwrap_or(name);
    let host = name.split('/').next().unwrap_or(name);
    match host {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => "docker.io",
        other => other,
    }
}

/// If `registry` is an Amazon ECR registry (`<account>.dkr.ecr.<region>.amazonaws.com`),
/// its region.
///
/// ```
/// use flink_eks_image_builder::ecr_region;
/// assert_eq!(ecr_region("123456789012.dkr.ecr.eu-west-1.amazonaws.com"), Some("eu-west-1"));
/// assert_eq!(ecr_region("ghcr.io"), None);
/// ```
pub fn ecr_region(registry: &str) -> Option<&str> {
    let parts: Vec<&str> = registry.split('.').collect();
    match parts.as_slice() {
        [
            account,
            "dkr",
            "ecr" | "ecr-fips",
            region,
            "amazonaws",
            "com",
            rest @ ..,
        ] if account.len() == 12
            && account.bytes().all(|b| b.is_ascii_digit())
            && (rest.is_empty() || rest == ["cn"]) =>
        {
            Some(region)
        }
        _ => None,
    }
}

/// Finds credentials for a registry, in this order:
/// 1. explicit credentials ([`CredentialResolver::with_credentials`]) or the
///    [`USERNAME_ENV`]/[`PASSWORD_ENV`] environment variables;
/// 2. the Docker config's `credHelpers` entry for the registry;
/// 3. for an ECR registry, a token from GetAuthorizationToken (AWS credentials and config
///    from the usual chain); if that fails, the steps below, and the ECR error if they
///    find nothing;
/// 4. the Docker config's `credsStore`;
/// 5. the Docker config's `auths` entry;
/// 6. anonymous.
///
/// Explicit and environment credentials are meant for the registry pushed to: use
/// [`CredentialResolver::resolve_without_explicit`] for others (the base image's).
#[derive(Clone, Debug, Default)]
pub struct CredentialResolver {
    explicit: Option<Credentials>,
    docker_config: Option<DockerConfig>,
    helper_dir: Option<PathBuf>,
    aws: Option<aws_config::SdkConfig>,
}

impl CredentialResolver {
    /// A resolver that knows nothing: every registry is anonymous (except ECR, through the
    /// default AWS chain).
    pub fn new() -> Self {
        Self::default()
    }

    /// The user's setup: [`USERNAME_ENV`]/[`PASSWORD_ENV`] if set, and the Docker config file
    /// at [`DockerConfig::default_path`] if it exists.
    pub fn from_environment() -> Result<Self> {
        let mut resolver = Self::new();
        let username = std::env::var(USERNAME_ENV).ok().filter(|v| !v.is_empty());
        let password = std::env::var(PASSWORD_ENV).ok().filter(|v| !v.is_empty());
        match (username, password) {
            (Some(username), Some(password)) => {
                resolver.explicit = Some(Credentials::Password {
                    username,
                    password: Secret::new(password),
                    source: CredentialSource::Environment,
                });
            }
            (Some(_), None) => {
                return Err(Error::CredentialEnv {
                    name: PASSWORD_ENV,
                    message: format!(
                        "{USERNAME_ENV} is set but {PASSWORD_ENV} is not; set both or neither"
                    ),
                });
            }
            (None, Some(_)) => {
                return Err(Error::CredentialEnv {
                    name: USERNAME_ENV,
                    message: format!(
                        "{PASSWORD_ENV} is set but {USERNAME_ENV} is not; set both or neither"
                    ),
                });
            }
            (None, None) => {}
        }
        if let Some(path) = DockerConfig::default_path() {
            resolver.docker_config = DockerConfig::load(&path)?;
        }
        Ok(resolver)
    }

    /// Uses these credentials for the registry pushed to, before anything else.
    pub fn with_credentials(mut self, credentials: Credentials) -> Self {
        self.explicit = Some(credentials);
        self
    }

    /// Uses this Docker config instead of the default file.
    pub fn with_docker_config(mut self, config: DockerConfig) -> Self {
        self.docker_config = Some(config);
        self
    }

    /// Looks for `docker-credential-*` programs in `dir` instead of on `PATH`.
    pub fn with_helper_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.helper_dir = Some(dir.into());
        self
    }

    /// Uses this AWS configuration for ECR (its region is replaced by the registry's).
    pub fn with_aws_config(mut self, config: aws_config::SdkConfig) -> Self {
        self.aws = Some(config);
        self
    }

    /// Credentials for the registry pushed to (`host[:port]` or `docker.io`).
    pub async fn resolve(&self, registry: &str) -> Result<Credentials> {
        if let Some(explicit) = &self.explicit {
            return Ok(explicit.clone());
        }
        self.resolve_without_explicit(registry).await
    }

    /// Credentials for another registry (a base image's): steps 2 to 6 only.
    pub async fn resolve_without_explicit(&self, registry: &str) -> Result<Credentials> {
        let config = self.docker_config.as_ref();
        let server = server_url(registry);
        if let Some(helper) = config.and_then(|c| c.helper_for(registry))
            && let Some(found) = self.run_helper(helper, &server).await?
        {
            return Ok(found);
        }
        let mut ecr_error = None;
        if let Some(region) = ecr_region(registry) {
            match self.ecr_token(registry, region).await {
                Ok(credentials) => return Ok(credentials),
                Err(err) => {
                    tracing::debug!(registry, "ECR token failed, trying the Docker config");
                    ecr_error = Some(err);
                }
            }
        }
        if let Some(store) = config.and_then(|c| c.creds_store.as_deref())
            && !store.is_empty()
            && let Some(found) = self.run_helper(store, &server).await?
        {
            return Ok(found);
        }
        if let Some(found) = config.map(|c| c.auth_for(registry)).transpose()?.flatten() {
            return Ok(found);
        }
        match ecr_error {
            Some(err) => Err(err),
            None => Ok(Credentials::Anonymous),
        }
    }

    /// Runs `docker-credential-<helper> get` with `server` on stdin.
    async fn run_helper(&self, helper: &str, server: &str) -> Result<Option<Credentials>> {
        use tokio::io::AsyncWriteExt as _;

        let program = format!("docker-credential-{helper}");
        let program_path = match &self.helper_dir {
            Some(dir) => dir.join(&program),
            None => PathBuf::from(&program),
        };
        let helper_error = |message: String| Error::CredentialHelper {
            helper: helper.to_owned(),
            registry: server.to_owned(),
            message,
        };
        let mut child = tokio::process::Command::new(&program_path)
            .arg("get")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|err| {
                if err.kind() == std::io::ErrorKind::NotFound {
                    helper_error(format!(
                        "{program} is not installed (not found on PATH); install it or remove it from the Docker config"
                    ))
                } else {
                    helper_error(format!("cannot start {program}: {err}"))
                }
            })?;
        if let Some(mut stdin) = child.stdin.take() {
            // A helper that exits without reading closes the pipe: its exit status says why.
            match stdin.write_all(server.as_bytes()).await {
                Err(err) if err.kind() != std::io::ErrorKind::BrokenPipe => {
                    return Err(helper_error(format!("cannot write to {program}: {err}")));
                }
                _ => {}
            }
        }
        let output = tokio::time::timeout(HELPER_TIMEOUT, child.wait_with_output())
            .await
            .map_err(|_| helper_error(format!("{program} did not answer within 60 s")))?
            .map_err(|err| helper_error(format!("{program} failed: {err}")))?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        if !output.status.success() {
            // The helpers' protocol: this text on stdout means "no entry", which is not an error.
            if stdout.contains("credentials not found") {
                return Ok(None);
            }
            let stderr = String::from_utf8_lossy(&output.stderr);
            let said = if stderr.trim().is_empty() {
                stdout.trim().to_owned()
            } else {
                stderr.trim().to_owned()
            };
            return Err(helper_error(format!(
                "{program} get exited with {}: {}",
                output.status,
                crate::error::one_line(&said)
            )));
        }
        #[derive(Deserialize)]
        struct HelperAnswer {
            #[serde(rename = "Username", default)]
            username: String,
            #[serde(rename = "Secret", default)]
            secret: String,
        }
        let answer: HelperAnswer = serde_json::from_str(stdout.trim()).map_err(|err| {
            helper_error(format!(
                "{program} get did not print credentials JSON ({err})"
            ))
        })?;
        if answer.secret.is_empty() {
            return Ok(None);
        }
        let source = CredentialSource::CredentialHelper(helper.to_owned());
        Ok(Some(if answer.username == "<token>" {
            Credentials::IdentityToken {
                token: Secret::new(answer.secret),
                source,
            }
        } else {
            Credentials::Password {
                username: answer.username,
                password: Secret::new(answer.secret),
                source,
            }
        }))
    }

    async fn ecr_token(&self, registry: &str, region: &str) -> Result<Credentials> {
        let region = aws_config::Region::new(region.to_owned());
        let sdk = match &self.aws {
            Some(config) => config.clone(),
            None => {
                aws_config::defaults(aws_config::BehaviorVersion::latest())
                    .region(region.clone())
                    .load()
                    .await
            }
        };
        let config = aws_sdk_ecr::config::Builder::from(&sdk)
            .region(region)
            .build();
        let client = aws_sdk_ecr::Client::from_conf(config);
        let ecr_error = |message: String| Error::Ecr {
            registry: registry.to_owned(),
            message,
        };
        let answer = client
            .get_authorization_token()
            .send()
            .await
            .map_err(|err| ecr_error(sdk_message(&err)))?;
        let token = answer
            .authorization_data()
            .first()
            .and_then(|data| data.authorization_token())
            .ok_or_else(|| ecr_error("the answer holds no authorization token".into()))?;
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(token)
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .ok_or_else(|| ecr_error("the authorization token is not base64 text".into()))?;
        let (username, password) = decoded
            .split_once(':')
            .ok_or_else(|| ecr_error("the authorization token is not user:password".into()))?;
        Ok(Credentials::Password {
            username: username.to_owned(),
            password: Secret::new(password),
            source: CredentialSource::Ecr,
        })
    }
}

/// The server URL helpers and the config file know a registry by.
fn server_url(registry: &str) -> String {
    if normalize_registry(registry) == "docker.io" {
        "https://index.docker.io/v1/".to_owned()
    } else {
        registry.to_owned()
    }
}

/// An AWS SDK error as the service said it (`code: message`), else its causes, on one line.
fn sdk_message<E, R>(err: &aws_sdk_ecr::error::SdkError<E, R>) -> String
where
    E: aws_sdk_ecr::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match err.as_service_error() {
        Some(service) => {
            let code = service.code().unwrap_or("error");
            match service.message() {
                Some(message) => crate::error::one_line(&format!("{code}: {message}")),
                None => code.to_owned(),
            }
        }
        None => flink_eks_plan::one_line_chain(err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = r#"{
        "auths": {
            "https://index.docker.io/v1/": {"auth": "aHViOmh1Yi1wYXNz"},
            "127.0.0.1:5000": {"auth": "bG9jYWw6bG9jYWwtcGFzcw=="},
            "tokens.example.com": {"identitytoken": "refresh-me"}
        },
        "credHelpers": {"ghcr.io": "gh"},
        "unrelated": {"x": 1}
    }"#;

    fn config() -> DockerConfig {
        DockerConfig::parse(CONFIG, Path::new("config.json")).unwrap()
    }

    #[test]
    fn secrets_never_show_in_debug_or_display() {
        let creds = Credentials::password("user", "hunter2-secret");
        let shown = format!("{creds:?} {}", Secret::new("hunter2-secret"));
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("user"), "{shown}");
        let shown = format!("{:?}", config());
        for secret in ["aHViOmh1Yi1wYXNz", "refresh-me", "local-pass"] {
            assert!(!shown.contains(secret), "{shown}");
        }
    }

    #[test]
    fn auths_entries_are_decoded_and_matched_by_host() {
        let config = config();
        let Some(Credentials::Password {
            username, password, ..
        }) = config.auth_for("127.0.0.1:5000").unwrap()
        else {
            panic!("no credentials");
        };
        assert_eq!(
            (username.as_str(), password.expose()),
            ("local", "local-pass")
        );

        let Some(Credentials::Password { username, .. }) = config.auth_for("docker.io").unwrap()
        else {
            panic!("no hub credentials");
        };
        assert_eq!(username, "hub");
        assert!(matches!(
            config.auth_for("tokens.example.com").unwrap(),
            Some(Credentials::IdentityToken { .. })
        ));
        assert_eq!(config.auth_for("127.0.0.1:5001").unwrap(), None);
        assert_eq!(config.helper_for("ghcr.io"), Some("gh"));
        assert_eq!(config.helper_for("https://ghcr.io"), Some("gh"));
    }

    #[test]
    fn a_broken_auth_entry_names_the_file_and_the_fix() {
        let config = DockerConfig::parse(
            r#"{"auths": {"r.example.com": {"auth": "not base64!"}}}"#,
            Path::new("/home/u/.docker/config.json"),
        )
        .unwrap();
        let err = config.auth_for("r.example.com").unwrap_err().to_string();
        assert!(err.contains("config.json"), "{err}");
        assert!(err.contains("docker login r.example.com"), "{err}");
        assert!(!err.contains("not base64!"), "{err}");

        let err = DockerConfig::parse("{", Path::new("c.json"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("c.json") && err.contains("not valid JSON"),
            "{err}"
        );
    }

    #[test]
    fn ecr_hosts_are_recognised() {
        assert_eq!(
            ecr_region("123456789012.dkr.ecr.us-east-1.amazonaws.com"),
            Some("us-east-1")
        );
        assert_eq!(
            ecr_region("123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn"),
            Some("cn-north-1")
        );
        assert_eq!(
            ecr_region("123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com"),
            Some("us-gov-west-1")
        );
        assert_eq!(ecr_region("12345.dkr.ecr.us-east-1.amazonaws.com"), None);
        assert_eq!(ecr_region("public.ecr.aws"), None);
        assert_eq!(ecr_region("127.0.0.1:5000"), None);
    }

    #[test]
    fn docker_hub_has_its_historic_server_url() {
        assert_eq!(server_url("docker.io"), "https://index.docker.io/v1/");
        assert_eq!(server_url("ghcr.io"), "ghcr.io");
        assert!(same_registry("https://index.docker.io/v1/", "docker.io"));
        assert!(same_registry("http://127.0.0.1:5000/", "127.0.0.1:5000"));
        assert!(!same_registry("127.0.0.1:5000", "127.0.0.1:50001"));
    }

    #[tokio::test]
    async fn explicit_credentials_come_first_and_only_for_the_push_target() {
        let resolver = CredentialResolver::new()
            .with_docker_config(config())
            .with_credentials(Credentials::password("me", "pw"));
        assert_eq!(
            resolver.resolve("127.0.0.1:5000").await.unwrap(),
            Credentials::password("me", "pw")
        );
        let Credentials::Password { username, .. } = resolver
            .resolve_without_explicit("127.0.0.1:5000")
            .await
            .unwrap()
        else {
            panic!("expected the config's entry");
        };
        assert_eq!(username, "local");
        assert_eq!(
            resolver
                .resolve_without_explicit("127.0.0.1:9")
                .await
                .unwrap(),
            Credentials::Anonymous
        );
    }
}

//! The one error type of this crate.

/// Everything that can go wrong while rendering, building, checking or pushing the image.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An [`ImageSpec`](crate::ImageSpec) field holds a value that cannot make a valid image.
    #[error("invalid {field} `{value}`: {reason}")]
    InvalidSpec {
        /// The field, as the user knows it (for example `flink_version`).
        field: &'static str,
        /// The value given.
        value: String,
        /// What is wrong and what to write instead.
        reason: String,
    },

    /// A connector jar could not be read from disk.
    #[error("cannot read connector jar {path}: {source}")]
    ReadConnectorJar {
        /// The path given.
        path: std::path::PathBuf,
        /// The IO error.
        source: std::io::Error,
    },

    /// No Docker daemon answers at the address in use.
    #[error("no Docker daemon at {address}: {reason}; {hint}")]
    DockerUnavailable {
        /// The socket or URL tried (`DOCKER_HOST` or the default socket).
        address: String,
        /// What the connection attempt said.
        reason: String,
        /// How to get a daemon running.
        hint: &'static str,
    },

    /// The Docker daemon answered with an error outside a build or push stream.
    #[error("docker {action} failed: {source}")]
    Docker {
        /// What was asked of the daemon.
        action: String,
        /// bollard's error.
        source: bollard::errors::Error,
    },

    /// The base image is not in the local daemon and the pull policy forbids pulling it.
    #[error(
        "base image {image} is not in the local Docker daemon and the pull policy is `never`; load it first (docker load / docker pull {image}) or use pull policy `if-missing`"
    )]
    BaseImageMissing {
        /// The base image reference.
        image: String,
    },

    /// Pulling the base image failed.
    #[error("cannot pull base image {image}: {message}")]
    PullFailed {
        /// The base image reference.
        image: String,
        /// The daemon's message.
        message: String,
    },

    /// A Dockerfile step failed during the build.
    #[error("build step {step} failed: {message}{}", output_suffix(.output))]
    BuildStepFailed {
        /// The step as the builder names it, for example `Step 3/5 : RUN pip3 install ...`.
        step: String,
        /// The daemon's error message (for a RUN: the command and its exit code).
        message: String,
        /// The last lines the step printed before failing (the command's own error text).
        output: String,
    },

    /// The build failed before any step ran, or the daemon's stream ended without an image.
    #[error("image build failed: {message}")]
    BuildFailed {
        /// The daemon's message.
        message: String,
    },

    /// The registry refused the credentials, or asked for credentials and none were found.
    #[error("registry {registry} refused access to {repository}: {reason}; {hint}")]
    RegistryUnauthorized {
        /// The registry host.
        registry: String,
        /// The repository path in that registry.
        repository: String,
        /// What the registry answered.
        reason: String,
        /// Where credentials are looked for.
        hint: String,
    },

    /// A registry request failed (network, unexpected status, malformed answer).
    #[error("registry {registry}: {message}")]
    Registry {
        /// The registry host.
        registry: String,
        /// What went wrong.
        message: String,
    },

    /// The push stream reported an error.
    #[error("push of {image} failed: {message}")]
    PushFailed {
        /// The image reference pushed.
        image: String,
        /// The daemon's message.
        message: String,
    },

    /// The Docker config file exists but cannot be read or parsed.
    #[error("docker config {path}: {message}")]
    DockerConfig {
        /// The config file.
        path: std::path::PathBuf,
        /// What is wrong with it.
        message: String,
    },

    /// A docker credential helper failed.
    #[error("credential helper docker-credential-{helper} failed for {registry}: {message}")]
    CredentialHelper {
        /// The helper's name (the part after `docker-credential-`).
        helper: String,
        /// The registry asked for.
        registry: String,
        /// What went wrong (the helper's own error text; it never holds the secret).
        message: String,
    },

    /// An environment variable holding credentials is set but unusable.
    #[error("environment variable {name}: {message}")]
    CredentialEnv {
        /// The variable.
        name: &'static str,
        /// What is wrong.
        message: String,
    },

    /// Amazon ECR did not hand out an authorization token.
    #[error(
        "cannot get an ECR token for {registry}: {message}; check the AWS credentials and region (aws sts get-caller-identity) and the ecr:GetAuthorizationToken permission"
    )]
    Ecr {
        /// The ECR registry host.
        registry: String,
        /// The SDK's error, with its cause.
        message: String,
    },
}

fn output_suffix(output: &str) -> String {
    if output.is_empty() {
        String::new()
    } else {
        format!("\n{output}")
    }
}

/// The hint given when no Docker daemon answers.
pub(crate) const DOCKER_HINT: &str = "start one (sudo systemctl start docker, or run dockerd in the background) or point DOCKER_HOST at a running daemon";

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

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
    #[error("docker {action} failed: {}", docker_message(.source))]
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

    /// The base image in the local daemon is for another platform than the one the image is
    /// built for.
    #[error("base image {image} is for {found}, not {wanted}: {hint}")]
    BaseImageWrongPlatform {
        /// The base image reference.
        image: String,
        /// The platform the local image is for, `os/arch[/variant]`.
        found: String,
        /// The platform the image is built for.
        wanted: String,
        /// What to do.
        hint: String,
    },

    /// The build produced an image for another platform than the one asked for; it was not
    /// pushed.
    #[error(
        "the build of {image} produced a {found} image, not {wanted}; nothing was pushed: check that the base image {base} is for {wanted} (docker image inspect {base})"
    )]
    BuiltWrongPlatform {
        /// The image built.
        image: String,
        /// The base image it was built from.
        base: String,
        /// The platform the built image is for.
        found: String,
        /// The platform asked for.
        wanted: String,
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

    /// The plan given to apply was made for another build context, so it says nothing about
    /// this one.
    #[error(
        "the plan for {image} was made for build context {planned}, not for {given}: plan again with this context"
    )]
    PlanForOtherContext {
        /// The image the plan was made for.
        image: String,
        /// The context digest the plan was made for.
        planned: String,
        /// The digest of the context given to apply.
        given: String,
    },

    /// The plan given to apply was made for another image reference (repository or tag).
    #[error("the plan was made for {planned}, not for {given}: plan again for this image")]
    PlanForOtherImage {
        /// The image the plan was made for.
        planned: String,
        /// The image the spec given to apply names.
        given: String,
    },

    /// Amazon ECR did not hand out an authorization token.
    #[error(
        "cannot get an ECR token for {registry}: {message}; check the AWS credentials and region (aws sts get-caller-identity) and the ecr:GetAuthorizationToken permission"
    )]
    Ecr {
        /// The ECR registry host.
        registry: String,
        /// The service's code and message, or why the SDK got no answer.
        message: String,
    },
}

/// How many of a failed step's last output lines its message shows (the error keeps more).
const SHOWN_OUTPUT_LINES: usize = 5;

/// The step's last output lines, on the error's one line.
fn output_suffix(output: &str) -> String {
    let lines: Vec<&str> = output.lines().filter(|l| !l.trim().is_empty()).collect();
    if lines.is_empty() {
        return String::new();
    }
    let shown = &lines[lines.len().saturating_sub(SHOWN_OUTPUT_LINES)..];
    format!(" (its last output: {})", one_line(&shown.join(" | ")))
}

/// The daemon's own message for an Engine API error, else the error and its causes.
fn docker_message(err: &bollard::errors::Error) -> String {
    match err {
        bollard::errors::Error::DockerResponseServerError {
            status_code,
            message,
        } => format!("{status_code} {}", one_line(message)),
        other => flink_eks_plan::one_line_chain(other),
    }
}

/// `text` on one line: line breaks and runs of whitespace become one space.
pub(crate) fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The hint given when no Docker daemon answers.
pub(crate) const DOCKER_HINT: &str = "start one (sudo systemctl start docker, or run dockerd in the background) or point DOCKER_HOST at a running daemon";

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl flink_eks_plan::Classify for Error {
    fn class(&self) -> flink_eks_plan::FailureClass {
        use flink_eks_plan::FailureClass;
        match self {
            Error::RegistryUnauthorized { .. }
            | Error::CredentialHelper { .. }
            | Error::CredentialEnv { .. } => FailureClass::Auth,
            Error::InvalidSpec { .. }
            | Error::ReadConnectorJar { .. }
            | Error::DockerConfig { .. }
            | Error::PlanForOtherContext { .. }
            | Error::PlanForOtherImage { .. }
            | Error::BaseImageWrongPlatform { .. } => FailureClass::BadInput,
            _ => FailureClass::Remote,
        }
    }
}

//! Builds and pushes the Flink image that can read S3, through the Docker Engine API
//! (bollard), with no `docker` CLI.
//!
//! The image is described by an [`ImageSpec`]: the base (`flink:<version>` by default), the
//! Flink version, the repository to push to, and optionally PyFlink and connector jars. From
//! it come, with no IO:
//! - the Dockerfile ([`render_dockerfile`]), from the template in this crate's `templates/`:
//!   the `flink-s3-fs-hadoop` plugin copied from `opt/` into its own `plugins/s3-fs-hadoop/`
//!   folder, PyFlink if asked, connector jars in `/opt/flink/lib/`, `USER flink` at the end;
//! - the build context ([`BuildContext`]): a tar.gz made in memory, deterministic (sorted
//!   entries, fixed times, owners and modes), and its content digest.
//!
//! The tag defaults to that digest (`sha256-<hex>`). [`ImageBuilder::ensure`] first asks the
//! *registry* (a manifest HEAD, see [`check_registry`]) whether it already holds the image;
//! if so, nothing is built or pushed. Otherwise it makes the base image available (per the
//! [`PullPolicy`]), builds, and pushes, reporting [`ProgressEvent`]s to a [`ProgressSink`]
//! ([`StderrProgress`] renders them, with a bar per layer while pushing).
//!
//! Credentials ([`Credentials`], found by [`CredentialResolver`]) come from explicit values
//! or `FLINK_EKS_REGISTRY_USERNAME`/`FLINK_EKS_REGISTRY_PASSWORD`, the Docker config file
//! (`auths`, `credsStore`, `credHelpers`), or Amazon ECR's GetAuthorizationToken for ECR
//! repositories. They never appear in Debug output, logs or errors.
//!
//! ```no_run
//! use flink_eks_image_builder::{Credentials, ImageBuilder, ImageSpec, StderrProgress};
//!
//! # async fn run() -> flink_eks_image_builder::Result<()> {
//! let spec = ImageSpec::new("1.20.0", "123456789012.dkr.ecr.us-east-1.amazonaws.com/flink-s3")
//!     .with_pyflink(true);
//! let credentials = Credentials::resolve("123456789012.dkr.ecr.us-east-1.amazonaws.com").await?;
//! let builder = ImageBuilder::connect().await?;
//! let outcome = builder.ensure(&spec, &credentials, &mut StderrProgress::new()).await?;
//! println!("{} (built: {}, pushed: {})", outcome.image, outcome.built, outcome.pushed);
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

mod builder;
mod context;
mod credentials;
mod dockerfile;
mod error;
mod plan;
mod progress;
mod reference;
mod registry;
mod spec;

pub use builder::{DEFAULT_DOCKER_HOST, ImageBuilder, Outcome};
pub use context::{BuildContext, CONTEXT_DIGEST_LABEL, FIXED_MTIME};
pub use credentials::{
    CredentialResolver, CredentialSource, Credentials, DockerConfig, PASSWORD_ENV, Secret,
    USERNAME_ENV, ecr_region,
};
pub use dockerfile::{DOCKERFILE_TEMPLATE, render_dockerfile};
pub use error::{Error, Result};
pub use plan::{ImagePlan, RegistryState, check_registry, check_registry_with_client, image_tag};
pub use progress::{NoProgress, ProgressEvent, ProgressSink, StderrProgress};
pub use reference::{DOCKER_HUB, Repository};
pub use registry::RegistryClient;
pub use spec::{ConnectorJar, ImageSpec, PullPolicy};

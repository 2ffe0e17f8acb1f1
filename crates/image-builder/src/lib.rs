//! Builds and pushes the Flink image that can read S3, through the Docker Engine API
//! (bollard), with no `docker` CLI.
//!
//! The image is described by an [`ImageSpec`]: the base (`flink:<version>` by default), the
//! Flink version, the repository to push to, the platform (`linux/amd64` by default), and
//! optionally PyFlink and connector jars. From
//! it come, with no IO:
//! - the Dockerfile ([`render_dockerfile`]), from the template in this crate's `templates/`:
//!   the `flink-s3-fs-hadoop` plugin copied from `opt/` into its own `plugins/s3-fs-hadoop/`
//!   folder, PyFlink if asked, connector jars in `/opt/flink/lib/`, `USER flink` at the end;
//! - the build context ([`BuildContext`]): a tar.gz made in memory, deterministic (sorted
//!   entries, fixed times, owners and modes), and its content digest.
//!
//! The tag defaults to that digest (`sha256-<hex>`). The work is split in two:
//! - [`plan()`] reads the *registry* once (a manifest HEAD for the digest tag; the manifest
//!   and image config for a tag of yours) and returns an [`ImagePlan`]: create (the tag is
//!   absent), update (the tag holds another build), or no change. [`ImagePlan::operation`]
//!   is its printable form ([`flink_eks_plan::Operation`]).
//! - [`ImageBuilder::apply`] performs exactly that plan: for a no-change plan it returns at
//!   once and calls neither the daemon nor the registry; otherwise it makes the base image
//!   available (per the [`PullPolicy`]), builds, and pushes, reporting [`ProgressEvent`]s to a
//!   [`flink_eks_plan::Progress`] (any closure; the program renders them).
//!
//! Credentials ([`Credentials`], found by [`CredentialResolver`]) come from explicit values
//! or `FLINK_EKS_REGISTRY_USERNAME`/`FLINK_EKS_REGISTRY_PASSWORD`, the Docker config file
//! (`auths`, `credsStore`, `credHelpers`), or Amazon ECR's GetAuthorizationToken for ECR
//! repositories. They never appear in Debug output, logs or errors.
//!
//! ```no_run
//! use flink_eks_image_builder::{BuildContext, Credentials, ImageBuilder, ImageSpec, ProgressEvent};
//!
//! # async fn run() -> flink_eks_image_builder::Result<()> {
//! let spec = ImageSpec::new("1.20.0", "123456789012.dkr.ecr.us-east-1.amazonaws.com/flink-s3")
//!     .with_pyflink(true);
//! let context = BuildContext::new(&spec)?;
//! let credentials = Credentials::resolve("123456789012.dkr.ecr.us-east-1.amazonaws.com").await?;
//! let plan = flink_eks_image_builder::plan(&spec, &context, &credentials).await?;
//! println!("{}", plan.operation());
//! let builder = ImageBuilder::connect().await?; // sends nothing until a plan needs the daemon
//! let progress = |event: &ProgressEvent| eprintln!("{event:?}");
//! let outcome = builder.apply(&plan, &spec, &context, &credentials, &progress).await?;
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
mod platform;
mod progress;
mod reference;
mod registry;
mod roots;
mod spec;

pub use builder::{DEFAULT_DOCKER_HOST, DaemonInfo, ImageBuilder, Outcome};
pub use context::{BuildContext, CONTEXT_DIGEST_LABEL, FIXED_MTIME};
pub use credentials::{
    CredentialResolver, CredentialSource, Credentials, DockerConfig, PASSWORD_ENV, Secret,
    USERNAME_ENV, ecr_region,
};
pub use dockerfile::{DOCKERFILE_TEMPLATE, render_dockerfile};
pub use error::{Error, Result};
pub use plan::{ImagePlan, OPERATION_KIND, RegistryState, image_tag, plan, plan_with_client};
pub use platform::{DEFAULT_PLATFORM, Platform};
pub use progress::ProgressEvent;
pub use reference::{DOCKER_HUB, Repository};
pub use registry::RegistryClient;
pub use roots::system_root_certificates_pem;
pub use spec::{ConnectorJar, ImageSpec, PullPolicy};

/// The README's example, compiled as a doctest so that it stays true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

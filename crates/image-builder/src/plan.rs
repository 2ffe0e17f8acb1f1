//! The no-change check: does the registry already hold the image for these inputs?
//! Talks to the registry only, never to the Docker daemon.

use serde::Serialize;

use crate::context::{BuildContext, CONTEXT_DIGEST_LABEL};
use crate::credentials::Credentials;
use crate::error::Result;
use crate::registry::RegistryClient;
use crate::spec::ImageSpec;

/// Where the image stands in the registry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum RegistryState {
    /// Nothing under the tag: build and push.
    Absent,
    /// The image made from these exact inputs is there: nothing to do.
    UpToDate,
    /// The (user-chosen) tag holds an image made from other inputs: build and push over it.
    OtherContent {
        /// The context digest label of the remote image, if it has one.
        remote_digest: Option<String>,
    },
}

/// What [`ImageBuilder::ensure`](crate::ImageBuilder::ensure) will do, computed without
/// building anything.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ImagePlan {
    /// `repository:tag`, the reference pushed and to put in the FlinkDeployment.
    pub image: String,
    /// The repository.
    pub repository: String,
    /// The tag (the user's, or `sha256-<hex>` of the context).
    pub tag: String,
    /// The build context's digest, `sha256:<hex>`.
    pub context_digest: String,
    /// Whether the tag is derived from the context digest (then a manifest HEAD is the whole
    /// check); otherwise the remote image's [`CONTEXT_DIGEST_LABEL`] is compared.
    pub tag_from_digest: bool,
    /// What the registry holds.
    pub registry: RegistryState,
}

impl ImagePlan {
    /// Whether the registry already holds this image (nothing to build or push).
    pub fn present_in_registry(&self) -> bool {
        self.registry == RegistryState::UpToDate
    }
}

/// The tag the image gets: the spec's, or the context's digest tag.
pub fn image_tag(spec: &ImageSpec, context: &BuildContext) -> String {
    spec.tag.clone().unwrap_or_else(|| context.default_tag())
}

/// Asks the registry whether it holds the image for `context`.
///
/// With the digest tag (no tag in the spec), this is one HEAD on
/// `/v2/<name>/manifests/sha256-<hex>`: the tag names the content. With a tag of the user's
/// (`latest`), a HEAD cannot tell whether the content is the same, so the manifest and the
/// image config are fetched and the [`CONTEXT_DIGEST_LABEL`] compared.
///
/// ```no_run
/// # async fn run() -> flink_eks_image_builder::Result<()> {
/// use flink_eks_image_builder::{BuildContext, Credentials, ImageSpec, check_registry};
/// let spec = ImageSpec::new("1.20.0", "127.0.0.1:5000/flink-s3");
/// let context = BuildContext::new(&spec)?;
/// let plan = check_registry(&spec, &context, &Credentials::Anonymous).await?;
/// println!("{}: present = {}", plan.image, plan.present_in_registry());
/// # Ok(()) }
/// ```
pub async fn check_registry(
    spec: &ImageSpec,
    context: &BuildContext,
    credentials: &Credentials,
) -> Result<ImagePlan> {
    let repository = spec.parsed_repository()?;
    let client = RegistryClient::new(&repository, credentials.clone())?;
    check_registry_with_client(&client, spec, context).await
}

/// [`check_registry`] through a client of your making, for example one speaking plain HTTP
/// to a registry the Docker daemon lists under `insecure-registries`
/// ([`RegistryClient::with_scheme`]). The client must be for the spec's repository.
pub async fn check_registry_with_client(
    client: &RegistryClient,
    spec: &ImageSpec,
    context: &BuildContext,
) -> Result<ImagePlan> {
    let repository = spec.parsed_repository()?;
    let tag = image_tag(spec, context);
    let tag_from_digest = spec.tag.is_none();
    let registry = if tag_from_digest {
        if client.manifest_exists(&tag).await? {
            RegistryState::UpToDate
        } else {
            RegistryState::Absent
        }
    } else if client.manifest_exists(&tag).await? {
        match client.image_label(&tag, CONTEXT_DIGEST_LABEL).await? {
            Some(remote) if remote == context.digest => RegistryState::UpToDate,
            remote_digest => RegistryState::OtherContent { remote_digest },
        }
    } else {
        RegistryState::Absent
    };
    Ok(ImagePlan {
        image: format!("{}:{tag}", repository.as_str()),
        repository: repository.as_str().to_owned(),
        tag,
        context_digest: context.digest.clone(),
        tag_from_digest,
        registry,
    })
}

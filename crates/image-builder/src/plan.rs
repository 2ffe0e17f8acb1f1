//! The plan: what the registry holds under the image's tag, read once, and what applying the
//! plan will therefore do. Talks to the registry only, never to the Docker daemon.

use flink_eks_plan::{Action, Operation};
use serde::Serialize;

use crate::context::{BuildContext, CONTEXT_DIGEST_LABEL};
use crate::credentials::Credentials;
use crate::error::Result;
use crate::registry::RegistryClient;
use crate::spec::ImageSpec;

/// The [`Operation::kind`] of the image.
pub const OPERATION_KIND: &str = "image";

/// What the registry held under the tag when the plan was made.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
#[non_exhaustive]
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

/// What [`ImageBuilder::apply`](crate::ImageBuilder::apply) will do, made by [`plan`] from
/// one read of the registry.
///
/// The plan is data: applying it builds and pushes when it says so, and otherwise makes no
/// call at all.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ImagePlan {
    /// `repository:tag`, the reference pushed and to put in the FlinkDeployment.
    pub image: String,
    /// The repository.
    pub repository: String,
    /// The tag (the user's, or `sha256-<hex>` of the context).
    pub tag: String,
    /// The build context's digest, `sha256:<hex>`: the plan applies to this context only.
    pub context_digest: String,
    /// The platform the image is (or will be) built for, `os/arch[/variant]`; part of the
    /// context, so a build for another platform has another digest.
    pub platform: String,
    /// Whether the tag is derived from the context digest (then a manifest HEAD is the whole
    /// check); otherwise the remote image's [`CONTEXT_DIGEST_LABEL`] is compared.
    pub tag_from_digest: bool,
    /// What the registry holds.
    pub registry: RegistryState,
    /// The manifest digest the registry reported for the tag, when it holds one.
    pub manifest_digest: Option<String>,
}

impl ImagePlan {
    /// [`Action::Create`] when the tag is absent, [`Action::Update`] when it holds another
    /// build, [`Action::NoChange`] when the registry holds this build.
    pub fn action(&self) -> Action {
        match self.registry {
            RegistryState::Absent => Action::Create,
            RegistryState::OtherContent { .. } => Action::Update,
            RegistryState::UpToDate => Action::NoChange,
        }
    }

    /// Whether applying the plan builds and pushes (and so needs a Docker daemon).
    pub fn writes(&self) -> bool {
        self.action().writes()
    }

    /// The plan in the shared printable form: kind `image`, name `repository:tag`; the
    /// detail names the platform.
    ///
    /// For an update, `observed` is what the tag held: the remote image's context digest, or
    /// its manifest digest when it carries no context label.
    pub fn operation(&self) -> Operation {
        let operation = Operation::new(OPERATION_KIND, self.image.clone(), self.action());
        match &self.registry {
            RegistryState::Absent => {
                operation.detail(format!("build and push for {}", self.platform))
            }
            RegistryState::UpToDate => operation.detail(format!(
                "the registry holds this build for {}",
                self.platform
            )),
            RegistryState::OtherContent { remote_digest } => {
                let observed = match (remote_digest, &self.manifest_digest) {
                    (Some(context), _) => Some(format!("context {context}")),
                    (None, Some(manifest)) => Some(format!("manifest {manifest}")),
                    (None, None) => None,
                };
                let operation = operation.detail(format!(
                    "the tag holds another build: build and push for {}",
                    self.platform
                ));
                match observed {
                    Some(observed) => operation.observed(observed),
                    None => operation,
                }
            }
        }
    }
}

/// The tag the image gets: the spec's, or the context's digest tag.
pub fn image_tag(spec: &ImageSpec, context: &BuildContext) -> String {
    spec.tag.clone().unwrap_or_else(|| context.default_tag())
}

/// Reads what the registry holds for `context` and returns the plan.
///
/// With the digest tag (no tag in the spec), this is one HEAD on
/// `/v2/<name>/manifests/sha256-<hex>`: the tag names the content. With a tag of the user's
/// (`latest`), a HEAD cannot tell whether the content is the same, so the manifest and the
/// image config are fetched and the [`CONTEXT_DIGEST_LABEL`] compared.
///
/// ```no_run
/// # async fn run() -> flink_eks_image_builder::Result<()> {
/// use flink_eks_image_builder::{BuildContext, Credentials, ImageSpec, plan};
/// let spec = ImageSpec::new("1.20.0", "127.0.0.1:5000/flink-s3");
/// let context = BuildContext::new(&spec)?;
/// let plan = plan(&spec, &context, &Credentials::Anonymous).await?;
/// println!("{}", plan.operation());
/// # Ok(()) }
/// ```
pub async fn plan(
    spec: &ImageSpec,
    context: &BuildContext,
    credentials: &Credentials,
) -> Result<ImagePlan> {
    let repository = spec.parsed_repository()?;
    let client = RegistryClient::new(&repository, credentials.clone())?;
    plan_with_client(&client, spec, context).await
}

/// [`plan`] through a client of your making, for example one speaking plain HTTP to a
/// registry the Docker daemon lists under `insecure-registries`
/// ([`RegistryClient::with_scheme`]). The client must be for the spec's repository.
pub async fn plan_with_client(
    client: &RegistryClient,
    spec: &ImageSpec,
    context: &BuildContext,
) -> Result<ImagePlan> {
    let repository = spec.parsed_repository()?;
    let tag = image_tag(spec, context);
    let tag_from_digest = spec.tag.is_none();
    let (registry, manifest_digest) = if tag_from_digest {
        match client.head_manifest(&tag).await? {
            Some(digest) => (RegistryState::UpToDate, digest),
            None => (RegistryState::Absent, None),
        }
    } else {
        match client.remote_image(&tag, CONTEXT_DIGEST_LABEL).await? {
            None => (RegistryState::Absent, None),
            Some(remote) if remote.label.as_deref() == Some(context.digest.as_str()) => {
                (RegistryState::UpToDate, remote.manifest_digest)
            }
            Some(remote) => (
                RegistryState::OtherContent {
                    remote_digest: remote.label,
                },
                remote.manifest_digest,
            ),
        }
    };
    Ok(ImagePlan {
        image: format!("{}:{tag}", repository.as_str()),
        repository: repository.as_str().to_owned(),
        tag,
        context_digest: context.digest.clone(),
        platform: spec.platform.clone(),
        tag_from_digest,
        registry,
        manifest_digest,
    })
}

/// The plan [`plan`] makes when the registry answers `registry`, for unit tests.
#[cfg(test)]
pub(crate) fn test_plan(
    spec: &ImageSpec,
    context: &BuildContext,
    registry: RegistryState,
) -> ImagePlan {
    let tag = image_tag(spec, context);
    let repository = spec
        .parsed_repository()
        .expect("test specs name valid repositories");
    ImagePlan {
        image: format!("{}:{tag}", repository.as_str()),
        repository: repository.as_str().to_owned(),
        tag,
        context_digest: context.digest.clone(),
        platform: spec.platform.clone(),
        tag_from_digest: spec.tag.is_none(),
        registry,
        manifest_digest: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan_in(registry: RegistryState, manifest: Option<&str>) -> ImagePlan {
        let spec = ImageSpec::new("1.20.0", "127.0.0.1:5000/flink-s3").with_tag("latest");
        let context = BuildContext::new(&spec).unwrap();
        ImagePlan {
            manifest_digest: manifest.map(str::to_owned),
            ..test_plan(&spec, &context, registry)
        }
    }

    #[test]
    fn each_registry_state_is_one_printed_operation() {
        let create = plan_in(RegistryState::Absent, None).operation();
        assert_eq!(create.kind, "image");
        assert_eq!(create.name, "127.0.0.1:5000/flink-s3:latest");
        assert_eq!(create.action, Action::Create);
        assert_eq!(create.observed, None);
        assert_eq!(
            create.to_string(),
            "create image 127.0.0.1:5000/flink-s3:latest (build and push for linux/amd64)"
        );

        let same = plan_in(RegistryState::UpToDate, Some("sha256:aa"));
        assert!(!same.writes());
        assert_eq!(
            same.operation().to_string(),
            "no change image 127.0.0.1:5000/flink-s3:latest (the registry holds this build for linux/amd64)"
        );
    }

    #[test]
    fn an_update_shows_what_the_tag_held() {
        let labelled = plan_in(
            RegistryState::OtherContent {
                remote_digest: Some("sha256:old".into()),
            },
            Some("sha256:m"),
        );
        assert!(labelled.writes());
        let op = labelled.operation();
        assert_eq!(op.action, Action::Update);
        assert_eq!(op.observed.as_deref(), Some("context sha256:old"));
        assert_eq!(
            op.detail,
            "the tag holds another build: build and push for linux/amd64"
        );

        let unlabelled = plan_in(
            RegistryState::OtherContent {
                remote_digest: None,
            },
            Some("sha256:m"),
        );
        assert_eq!(
            unlabelled.operation().observed.as_deref(),
            Some("manifest sha256:m")
        );
    }
}

//! Connections, from where users keep their settings: the kubeconfig (`KUBECONFIG`, the
//! current context or `--context`), the AWS default chain (`AWS_PROFILE`, environment, SSO,
//! instance role; `AWS_ENDPOINT_URL` for emulators), and the Docker config for registries.

use anyhow::{Context, Result};
use aws_config::{BehaviorVersion, Region, SdkConfig};
use flink_eks_image_builder::{CredentialResolver, Credentials as RegistryCredentials, ImageSpec};

use crate::Failure;
use crate::config::Config;

/// The AWS configuration: the default chain, with the region of `[s3] region` when the
/// environment names none.
pub(crate) async fn aws(config: &Config) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    let region_from_env = std::env::var_os("AWS_REGION").is_some()
        || std::env::var_os("AWS_DEFAULT_REGION").is_some();
    if let (false, Some(region)) = (region_from_env, &config.s3.region) {
        loader = loader.region(Region::new(region.clone()));
    }
    loader.load().await
}

/// A Kubernetes client for the kubeconfig's current context, or the one named by `--context`
/// (or `[kubernetes] context`).
pub(crate) async fn kube(config: &Config, context: Option<&str>) -> Result<kube::Client> {
    let context = context
        .map(str::to_owned)
        .or_else(|| config.kubernetes.context.clone());
    let options = kube::config::KubeConfigOptions {
        context: context.clone(),
        ..Default::default()
    };
    let kube_config = match kube::Config::from_kubeconfig(&options).await {
        Ok(c) => c,
        Err(err) if context.is_none() => kube::Config::infer()
            .await
            .map_err(|_| err)
            .context("no usable kubeconfig: set KUBECONFIG, or run `aws eks update-kubeconfig --name CLUSTER`")
            .context(Failure::Auth)?,
        Err(err) => {
            return Err(err)
                .with_context(|| format!("kubeconfig context {:?} cannot be used", context.unwrap_or_default()))
                .context(Failure::BadInput);
        }
    };
    kube::Client::try_from(kube_config).context("cannot create the Kubernetes client")
}

/// Push credentials for the image's registry: `FLINK_EKS_REGISTRY_USERNAME`/`_PASSWORD`, the
/// Docker config (`auths`, `credsStore`, `credHelpers`), or an ECR token.
pub(crate) async fn registry_credentials(
    spec: &ImageSpec,
    aws: &SdkConfig,
) -> Result<RegistryCredentials> {
    let repository = spec.parsed_repository()?;
    let resolver = CredentialResolver::from_environment()
        .context("registry credentials")?
        .with_aws_config(aws.clone());
    resolver
        .resolve(repository.registry())
        .await
        .with_context(|| {
            format!(
                "no usable credentials for registry {}",
                repository.registry()
            )
        })
}

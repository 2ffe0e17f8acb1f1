//! Connections, from where users keep their settings: the kubeconfig (`KUBECONFIG`, the
//! current context or `--context`), the AWS default chain (`AWS_PROFILE`, environment, SSO,
//! instance role; `AWS_ENDPOINT_URL` for emulators), and the Docker config for registries.
//!
//! Two regions: the cluster's (`[irsa] region`) for IAM, STS and EKS, and the bucket's
//! (`[s3] region`) for S3. Each, when not configured, is the AWS configuration chain's
//! (`AWS_REGION`, the profile's `region`), so a bucket and a cluster in different regions
//! each get the endpoint that knows them.

use anyhow::{Context, Result};
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
use flink_eks_image_builder::{CredentialResolver, Credentials as RegistryCredentials, ImageSpec};

use flink_eks_irsa::Irsa;
use flink_eks_submit::{Submitter, Uploader, s3_client};

use crate::cache::{ClusterCache, ClusterKey, cache_dir};
use crate::config::Config;
use crate::error::Failure;

/// The AWS configuration of the cluster's side (IAM, STS, EKS): the default chain, in
/// `[irsa] region` when it is set.
///
/// With one HTTP client for every AWS SDK client of the process (IAM, STS, EKS, S3, ECR, the
/// credential providers): left unset, each SDK client builds its own, each with its own TLS
/// configuration (the system's root certificates parsed into a trust store) and connection
/// pool. Shared, the trust store is built once and connections are pooled per endpoint. Its
/// roots are the ones the registry client trusts, read once per process by image-builder
/// (`system_root_certificates_pem`), so the SDK reads none of the system's files itself.
async fn aws(config: &Config) -> SdkConfig {
    let roots = tls::TrustStore::empty()
        .with_native_roots(false)
        .with_pem_certificate(flink_eks_image_builder::system_root_certificates_pem());
    let mut http = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc));
    // Building a TLS context only stores the trust store; should it ever refuse, the SDK reads
    // the system's roots itself, as it does by default.
    if let Ok(context) = tls::TlsContext::builder().with_trust_store(roots).build() {
        http = http.tls_context(context);
    }
    let http = http.build_https();
    let mut loader = aws_config::defaults(BehaviorVersion::latest()).http_client(http);
    if let Some(region) = &config.irsa.region {
        loader = loader.region(Region::new(region.clone()));
    }
    loader.load().await
}

/// The same configuration in the bucket's region, `[s3] region`, when it is set.
fn aws_for_bucket(cluster_side: &SdkConfig, config: &Config) -> SdkConfig {
    match &config.s3.region {
        Some(region) => cluster_side
            .to_builder()
            .region(Region::new(region.clone()))
            .build(),
        None => cluster_side.clone(),
    }
}

/// A Kubernetes client for the kubeconfig's current context, or the one named by `--context`
/// (or `[kubernetes] context`), and the API server's URL.
async fn kube(config: &Config, context: Option<&str>) -> Result<(kube::Client, String)> {
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
    let mut kube_config = kube_config;
    if kube_config.cluster_url.scheme_str() == Some("http") && kube_config.root_cert.is_none() {
        // A plain-HTTP API server is never verified, yet without a CA the client would still
        // build a verifier from the system's root certificates (tens of ms before the first
        // request). An empty trust store stands in for it; it is never consulted.
        kube_config.root_cert = Some(Vec::new());
    }
    let api_server = kube_config.cluster_url.to_string();
    let client =
        kube::Client::try_from(kube_config).context("cannot create the Kubernetes client")?;
    Ok((client, api_server))
}

/// Push credentials for the image's registry: `FLINK_EKS_REGISTRY_USERNAME`/`_PASSWORD`, the
/// Docker config (`auths`, `credsStore`, `credHelpers`), or an ECR token.
async fn registry_credentials(spec: &ImageSpec, aws: &SdkConfig) -> Result<RegistryCredentials> {
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

/// The connections a run needs: AWS always, the cluster only for the steps that talk to it.
#[derive(Clone)]
pub struct Remote {
    /// The AWS configuration in the cluster's region (IAM, STS, EKS, ECR's credentials).
    pub aws: SdkConfig,
    /// The AWS configuration in the bucket's region (S3).
    pub s3: SdkConfig,
    /// The Kubernetes client, when the run needs the cluster.
    pub kube: Option<kube::Client>,
    /// The API server the Kubernetes client talks to.
    api_server: Option<String>,
    /// Where cluster identities are remembered between runs; none without a cache folder.
    cache: Option<ClusterCache>,
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Remote")
            .field("region", &self.aws.region())
            .field("bucket_region", &self.s3.region())
            .field("cluster", &self.kube.is_some())
            .finish()
    }
}

impl Remote {
    /// Connects to AWS, and to the cluster when `cluster` is true (a kubeconfig is needed
    /// then, and only then).
    pub async fn connect(config: &Config, context: Option<&str>, cluster: bool) -> Result<Remote> {
        let aws = aws(config).await;
        let s3 = aws_for_bucket(&aws, config);
        let region = |c: &SdkConfig| c.region().map_or("none".to_owned(), ToString::to_string);
        tracing::info!(
            "AWS regions: IAM, STS and EKS in {}; S3 in {}",
            region(&aws),
            region(&s3)
        );
        let (kube, api_server) = match cluster {
            true => {
                let (client, api_server) = kube(config, context).await?;
                (Some(client), Some(api_server))
            }
            false => (None, None),
        };
        let cache = cache_dir(|name| std::env::var(name).ok()).map(ClusterCache::new);
        Ok(Remote {
            aws,
            s3,
            kube,
            api_server,
            cache,
        })
    }

    /// What picks `cluster` from this machine, when the run talks to a cluster.
    fn cluster_key(&self, cluster: &str) -> Option<ClusterKey> {
        Some(ClusterKey {
            region: self.aws.region()?.to_string(),
            cluster: cluster.to_owned(),
            api_server: self.api_server.clone()?,
            aws_endpoint: self.aws.endpoint_url().map(str::to_owned),
        })
    }

    /// irsa's clients, with the identity of `cluster` remembered by an earlier run, if any:
    /// for a plan, which then need not ask EKS first.
    pub fn irsa_remembering(&self, cluster: &str) -> Result<Irsa> {
        let irsa = self.irsa()?;
        let remembered = self
            .cache
            .as_ref()
            .zip(self.cluster_key(cluster))
            .and_then(|(cache, key)| cache.load(&key));
        Ok(match remembered {
            Some(identity) => irsa.with_known_cluster(identity),
            None => irsa,
        })
    }

    /// Remembers the cluster's identity that an irsa plan read from EKS, for the next run.
    pub fn remember_cluster(&self, plan: &flink_eks_irsa::Plan) {
        let Some(identity) = &plan.cluster else {
            return;
        };
        if let (Some(cache), Some(key)) = (&self.cache, self.cluster_key(&identity.name)) {
            cache.store(&key, identity);
        }
    }

    fn kube(&self) -> Result<kube::Client> {
        self.kube
            .clone()
            .context("this command was started without a Kubernetes client")
    }

    /// irsa's clients.
    pub fn irsa(&self) -> Result<Irsa> {
        Ok(Irsa::new(&self.aws, self.kube()?))
    }

    /// rbac's client.
    pub fn rbac(&self) -> Result<flink_eks_rbac::Rbac> {
        Ok(flink_eks_rbac::Rbac::new(self.kube()?))
    }

    /// submit's S3 uploader.
    pub fn uploader(&self) -> Uploader {
        Uploader::new(s3_client(&self.s3))
    }

    /// submit's cluster client.
    pub fn submitter(&self) -> Result<Submitter> {
        Ok(Submitter::new(self.kube()?))
    }

    /// Push credentials for the image's registry.
    pub async fn registry_credentials(&self, spec: &ImageSpec) -> Result<RegistryCredentials> {
        registry_credentials(spec, &self.aws).await
    }
}

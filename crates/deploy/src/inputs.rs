//! From the configuration to each crate's own input: the image spec, the IRSA spec, the script
//! and the job description. This is a translation, not a second set of rules: every check
//! belongs to the crate that owns the input, and runs here only so that bad input is refused
//! before anything is touched.

use std::path::Path;

use anyhow::{Context, Result};
use flink_eks_image_builder::{BuildContext, ConnectorJar, ImageSpec, PullPolicy, image_tag};
use flink_eks_irsa::{IdentityMode, IrsaSpec, S3Grant};
use flink_eks_manifest::{
    Credentials, FlinkDeployment, PyFlinkJob, Resources, S3Location, StateStorage, UpgradeMode,
};
use flink_eks_submit::sha256_hex;

use crate::config::{self, Config};

/// The script, read once.
#[derive(Debug, Clone)]
pub struct Script {
    /// Its bytes.
    pub bytes: Vec<u8>,
    /// Their SHA-256, lower-case hex.
    pub sha256: String,
    /// Where it goes in S3.
    pub location: S3Location,
}

/// Everything a deployment needs, derived from the configuration and the files it names.
#[derive(Debug, Clone)]
pub struct Inputs {
    /// The job's namespace.
    pub namespace: String,
    /// The FlinkDeployment's name.
    pub name: String,
    /// The script.
    pub script: Script,
    /// What the image is built from.
    pub image: ImageSpec,
    /// `repository:tag`: known before anything is built, since the tag is the context's digest
    /// (or the user's).
    pub image_ref: String,
    /// The image's build context, made in memory.
    pub context: BuildContext,
    /// `None` when the pods use access keys from a Secret, so that no IAM role is involved.
    pub irsa: Option<IrsaSpec>,
    /// The job's namespace and service account, for the Role and RoleBinding it needs.
    pub rbac: flink_eks_rbac::RbacSpec,
    /// The job description the FlinkDeployment is rendered from.
    pub job: PyFlinkJob,
    /// How long to wait for RUNNING.
    pub timeout: std::time::Duration,
    /// The no-status window and the grace of `status.error` while waiting.
    pub wait: flink_eks_submit::WaitSettings,
}

impl Inputs {
    /// Reads the script and the connector jars and builds every crate's input, checking each
    /// with the rules of the crate that owns it.
    pub fn from_config(config: &Config) -> Result<Inputs> {
        let script_path = config.script_path();
        let bytes = std::fs::read(&script_path)
            .with_context(|| format!("key job.script: cannot read {}", script_path.display()))?;
        let location = S3Location::new(&config.s3.bucket, &config.s3.key)
            .context("keys s3.bucket and s3.key")?;
        let script = Script {
            sha256: sha256_hex(&bytes),
            bytes,
            location,
        };

        let image = image_spec(config)?;
        let context = BuildContext::new(&image).context("section [image]")?;
        let image_ref = format!("{}:{}", image.repository, image_tag(&image, &context));

        let state = config.state_storage()?;
        let irsa = irsa_spec(config, &script.location, state.as_ref())?;
        let rbac = rbac_spec(config)?;
        let mut job = job(config, &script, &image_ref)?;
        job.state = state;
        // Build once now: every manifest rule runs before the first effect.
        job.build()
            .context("the FlinkDeployment cannot be rendered")?;

        Ok(Inputs {
            namespace: config.job.namespace.clone(),
            name: config.job.name.clone(),
            script,
            image,
            image_ref,
            context,
            irsa,
            rbac,
            job,
            timeout: std::time::Duration::from_secs(config.job.timeout_secs),
            wait: flink_eks_submit::WaitSettings {
                no_status_window: std::time::Duration::from_secs(config.job.no_status_secs),
                error_grace: std::time::Duration::from_secs(config.job.status_error_grace_secs),
            },
        })
    }

    /// The FlinkDeployment, rendered for the image and script of these inputs.
    pub fn deployment(&self) -> Result<FlinkDeployment> {
        Ok(self.job.build()?)
    }
}

fn image_spec(config: &Config) -> Result<ImageSpec> {
    let mut spec = ImageSpec::new(&config.job.flink_version, &config.image.repository);
    if let Some(base) = &config.image.base {
        spec.base = base.clone();
    }
    spec.tag = config.image.tag.clone();
    spec.pyflink = config.image.pyflink;
    spec.pull_policy = config
        .image
        .pull
        .parse::<PullPolicy>()
        .context("key image.pull")?;
    spec.platform = config.image.platform.clone();
    spec.connector_jars = config
        .jar_paths()
        .iter()
        .map(ConnectorJar::from_path)
        .collect::<Result<_, _>>()
        .context("key image.jars")?;
    spec.validate().context("section [image]")?;
    Ok(spec)
}

fn irsa_spec(
    config: &Config,
    script: &S3Location,
    state: Option<&StateStorage>,
) -> Result<Option<IrsaSpec>> {
    let mode = match config.irsa.mode {
        config::IdentityMode::Irsa => IdentityMode::Irsa,
        config::IdentityMode::PodIdentity => IdentityMode::PodIdentity,
        config::IdentityMode::AccessKeySecret => return Ok(None),
    };
    let spec = IrsaSpec {
        cluster: config.irsa.cluster.clone(),
        namespace: config.job.namespace.clone(),
        service_account: config.irsa.service_account.clone(),
        role_name: config.irsa.role_name.clone(),
        policy_name: config.irsa.policy_name.clone(),
        grant: S3Grant::Object(script.clone()),
        list_bucket: config.irsa.list_bucket,
        mode,
        adopt: config.irsa.adopt,
        state: state.map(|s| s.prefix.clone()),
    };
    spec.validate().context("section [irsa]")?;
    Ok(Some(spec))
}

/// The namespace and service account of the job; `[irsa] adopt` (`--adopt`) also adopts a
/// Role or RoleBinding of the tool's name that it did not make.
fn rbac_spec(config: &Config) -> Result<flink_eks_rbac::RbacSpec> {
    let spec = flink_eks_rbac::RbacSpec {
        namespace: config.job.namespace.clone(),
        service_account: config.irsa.service_account.clone(),
        adopt: config.irsa.adopt,
    };
    spec.validate()
        .context("keys job.namespace and irsa.service_account")?;
    Ok(spec)
}

fn job(config: &Config, script: &Script, image_ref: &str) -> Result<PyFlinkJob> {
    let mut job = PyFlinkJob::new(
        &config.job.name,
        script.location.clone(),
        &script.sha256,
        image_ref,
        &config.job.flink_version,
    );
    job.namespace = config.job.namespace.clone();
    job.platform = config.image.platform.clone();
    job.service_account = config.irsa.service_account.clone();
    job.args = config.job.args.clone();
    job.parallelism = u32::try_from(config.job.parallelism).context("key job.parallelism")?;
    job.upgrade_mode = config
        .job
        .upgrade_mode
        .parse::<UpgradeMode>()
        .context("key job.upgrade_mode")?;
    job.job_manager = resources(&config.resources.jobmanager);
    job.task_manager = resources(&config.resources.taskmanager);
    job.s3_endpoint = config.s3.endpoint.clone();
    if let Some(image) = &config.job.fetch_image {
        job.fetch_image = image.clone();
    }
    if let Some(python) = &config.job.python {
        job.python_executable = python.clone();
    }
    job.credentials = match config.irsa.mode {
        config::IdentityMode::Irsa => Credentials::Irsa,
        config::IdentityMode::PodIdentity => Credentials::PodIdentity,
        config::IdentityMode::AccessKeySecret => Credentials::AccessKeySecret {
            secret_name: config.irsa.secret_name.clone().context(
                "key irsa.secret_name: the access-key-secret mode needs the name of the Secret",
            )?,
            access_key_field: config.irsa.access_key_field.clone(),
            secret_key_field: config.irsa.secret_key_field.clone(),
        },
    };
    job.flink_configuration = config.flink.clone();
    Ok(job)
}

fn resources(r: &config::Resource) -> Resources {
    Resources {
        cpu: r.cpu,
        memory: r.memory.clone(),
    }
}

/// Writes `bytes` to `dir/name`, creating `dir`.
pub fn write_artifact(dir: &Path, name: &str, bytes: &[u8]) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let path = dir.join(name);
    std::fs::write(&path, bytes).with_context(|| format!("cannot write {}", path.display()))
}

//! From a PyFlink job description to a FlinkDeployment.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Container, EmptyDirVolumeSource, EnvVar, EnvVarSource, PodSpec, PodTemplateSpec,
    SecretKeySelector, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::config::{self, CREDENTIALS_PROVIDER_KEY, Derived};
use crate::resources::Component;
use crate::{
    Error, FlinkDeployment, FlinkDeploymentSpec, FlinkRelease, JobManagerSpec, JobSpec, Resource,
    Resources, S3Location, StateStorage, TaskManagerSpec, UpgradeMode, validate_dns1123_label,
    validate_dns1123_subdomain, validate_job_name,
};

/// Annotation carrying the SHA-256 of the job's script, on the FlinkDeployment and on its pod
/// template. A changed script changes the spec, so the operator upgrades the job; an
/// unchanged script renders the same bytes.
pub const SCRIPT_SHA256_ANNOTATION: &str = "deploy.flink-eks.io/script-sha256";

/// Label marking every FlinkDeployment this crate renders, so that tools can find (and
/// remove) exactly what they created.
pub const MANAGED_BY_LABEL: (&str, &str) = ("app.kubernetes.io/managed-by", "flink-eks");

/// The namespace a job goes to when none is named.
pub const DEFAULT_NAMESPACE: &str = "default";

/// The service account a job runs as when none is named: the one the operator's Helm chart
/// gives the rights Flink's native mode needs.
pub const DEFAULT_SERVICE_ACCOUNT: &str = "flink";

/// The server-side apply field manager of every object flink-eks writes to a cluster.
pub const FIELD_MANAGER: &str = "flink-eks";

/// The platform a job's image is built for when none is named.
pub const DEFAULT_PLATFORM: &str = "linux/amd64";

/// The node label of the CPU architecture (the kubelet sets it from the node's `GOARCH`).
pub const ARCH_NODE_LABEL: &str = "kubernetes.io/arch";

/// The node label of the operating system.
pub const OS_NODE_LABEL: &str = "kubernetes.io/os";

/// The architectures Kubernetes nodes report in [`ARCH_NODE_LABEL`] that Docker builds for.
const NODE_ARCHITECTURES: &[&str] = &[
    "amd64", "arm64", "arm", "ppc64le", "s390x", "riscv64", "386",
];

/// Where the script lives inside the pods: an `emptyDir` mounted in `flink-main-container`.
pub const USRLIB_DIR: &str = "/opt/flink/usrlib";

/// The image of the initContainer that fetches the script: the AWS CLI v2 from Amazon ECR
/// Public (no Docker Hub rate limit), pinned to a release, so every JobManager start runs the
/// same CLI and the kubelet pulls it once per node. EKS Pod Identity needs aws-cli 2.15.0 or
/// newer.
pub const DEFAULT_FETCH_IMAGE: &str = "public.ecr.aws/aws-cli/aws-cli:2.27.26";

/// The Python interpreter of the official PyFlink images (`apt-get install python3`).
pub const DEFAULT_PYTHON_EXECUTABLE: &str = "/usr/bin/python3";

/// The Flink setting naming the interpreter that runs Python functions on the TaskManagers.
pub const PYTHON_EXECUTABLE_KEY: &str = "python.executable";

/// Flink's entry class for Python jobs.
pub const PYTHON_DRIVER_CLASS: &str = "org.apache.flink.client.python.PythonDriver";

/// Name of Flink's main container, which pod templates must use to reach it.
pub const MAIN_CONTAINER: &str = "flink-main-container";

/// Name of the initContainer that fetches the script.
pub const FETCH_CONTAINER: &str = "fetch-pyflink-script";

const SCRIPT_VOLUME: &str = "pyflink-script";

/// Flink's upper bound on parallelism (its maximum `pipeline.max-parallelism`).
const MAX_PARALLELISM: i32 = 32768;

/// Credential provider of the Hadoop S3 plugin for IRSA (AWS SDK for Java v1, which the S3
/// plugin of every Flink release from 1.13 to 2.2 bundles).
pub const IRSA_CREDENTIALS_PROVIDER: &str =
    "com.amazonaws.auth.WebIdentityTokenCredentialsProvider";

/// Credential provider for EKS Pod Identity: it reads `AWS_CONTAINER_CREDENTIALS_FULL_URI`
/// and `AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE`, which the Pod Identity webhook injects.
pub const POD_IDENTITY_CREDENTIALS_PROVIDER: &str =
    "com.amazonaws.auth.EC2ContainerCredentialsProviderWrapper";

/// Credential provider for access keys in `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY`.
pub const ENVIRONMENT_CREDENTIALS_PROVIDER: &str =
    "com.amazonaws.auth.EnvironmentVariableCredentialsProvider";

/// The shell script the fetch initContainer runs. It is the same for every job: the inputs
/// arrive as environment variables, quoted where they are used, so nothing a user writes is
/// ever parsed by the shell. A checksum mismatch fails the container, and so the pod.
pub const FETCH_SCRIPT: &str = r#"set -eu
if [ -n "${S3_ENDPOINT_URL:-}" ]; then
  aws s3 cp --no-progress --endpoint-url "$S3_ENDPOINT_URL" "$SCRIPT_S3_URI" "$SCRIPT_PATH"
else
  aws s3 cp --no-progress "$SCRIPT_S3_URI" "$SCRIPT_PATH"
fi
if ! echo "$SCRIPT_SHA256  $SCRIPT_PATH" | sha256sum -c -; then
  echo "$SCRIPT_S3_URI does not have the SHA-256 the deploy tool computed ($SCRIPT_SHA256): it changed after upload; deploy again" >&2
  exit 1
fi
"#;

/// How the pods authenticate to S3, both the fetch initContainer and Flink itself.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Credentials {
    /// IAM Roles for Service Accounts: the service account's `eks.amazonaws.com/role-arn`
    /// annotation gives the pods a web-identity token; Flink reads it through
    /// `WebIdentityTokenCredentialsProvider` (the Hadoop plugin's default chain has no
    /// web-identity provider and would fall back to the node's role).
    #[default]
    Irsa,
    /// EKS Pod Identity: an association of the service account with a role; Flink reads it
    /// through `EC2ContainerCredentialsProviderWrapper` (needs Flink 1.19.2, 1.20.1, 2.0.0 or
    /// later).
    PodIdentity,
    /// Static access keys from a Kubernetes Secret, passed to the initContainer and to
    /// Flink's main container as `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` through
    /// `secretKeyRef`; Flink reads them through `EnvironmentVariableCredentialsProvider`.
    /// The keys themselves never appear in the manifest.
    AccessKeySecret {
        /// Name of the Secret, in the job's namespace.
        secret_name: String,
        /// Key of the access key id inside the Secret.
        access_key_field: String,
        /// Key of the secret access key inside the Secret.
        secret_key_field: String,
    },
}

impl Credentials {
    /// The credential mode's name as a user writes it: `irsa`, `pod-identity`,
    /// `access-key-secret`.
    pub fn mode_name(&self) -> &'static str {
        match self {
            Credentials::Irsa => "irsa",
            Credentials::PodIdentity => "pod-identity",
            Credentials::AccessKeySecret { .. } => "access-key-secret",
        }
    }

    /// The `fs.s3a.aws.credentials.provider` value of this mode.
    pub fn credentials_provider(&self) -> &'static str {
        match self {
            Credentials::Irsa => IRSA_CREDENTIALS_PROVIDER,
            Credentials::PodIdentity => POD_IDENTITY_CREDENTIALS_PROVIDER,
            Credentials::AccessKeySecret { .. } => ENVIRONMENT_CREDENTIALS_PROVIDER,
        }
    }

    fn validate(&self) -> Result<(), Error> {
        if let Credentials::AccessKeySecret {
            secret_name,
            access_key_field,
            secret_key_field,
        } = self
        {
            validate_dns1123_subdomain("Secret name", secret_name)?;
            validate_secret_key("access key field", access_key_field)?;
            validate_secret_key("secret key field", secret_key_field)?;
        }
        Ok(())
    }

    /// `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` from the Secret, or nothing.
    fn secret_env(&self) -> Vec<EnvVar> {
        let Credentials::AccessKeySecret {
            secret_name,
            access_key_field,
            secret_key_field,
        } = self
        else {
            return Vec::new();
        };
        let from_secret = |name: &str, key: &str| EnvVar {
            name: name.to_owned(),
            value_from: Some(EnvVarSource {
                secret_key_ref: Some(SecretKeySelector {
                    name: secret_name.clone(),
                    key: key.to_owned(),
                    optional: Some(false),
                }),
                ..EnvVarSource::default()
            }),
            ..EnvVar::default()
        };
        vec![
            from_secret("AWS_ACCESS_KEY_ID", access_key_field),
            from_secret("AWS_SECRET_ACCESS_KEY", secret_key_field),
        ]
    }
}

/// A PyFlink job whose script lives in S3: everything needed to render its FlinkDeployment.
///
/// [`PyFlinkJob::new`] takes what has no sensible default and fills the rest as the
/// usual manual setup does (namespace `default`, service account `flink`, 1 CPU and
/// `2048m` each, parallelism 1, stateless); change the public fields to taste, then call [`PyFlinkJob::build`].
/// Every input is checked by `build`, which names the offending field in its error.
#[derive(Debug, Clone, PartialEq)]
pub struct PyFlinkJob {
    /// Name of the FlinkDeployment (and of the Flink cluster): an RFC 1123 label that starts
    /// with a letter, at most 45 characters.
    pub name: String,
    /// Namespace of the FlinkDeployment. Default `default`.
    pub namespace: String,
    /// The script in S3.
    pub script: S3Location,
    /// SHA-256 of the script, 64 lowercase hex digits: checked by the fetch initContainer and
    /// carried by the [`SCRIPT_SHA256_ANNOTATION`].
    pub script_sha256: String,
    /// The Flink image (with the S3 plugin and PyFlink installed).
    pub image: String,
    /// The Flink release the image runs, `MAJOR.MINOR.PATCH` (e.g. `1.20.0`).
    pub flink_version: String,
    /// The platform the image is built for, `linux/<arch>[/<variant>]` as Docker names it:
    /// the JobManager and TaskManager pods select nodes labelled `kubernetes.io/arch=<arch>`
    /// and `kubernetes.io/os=linux`, so they never land on nodes that cannot run the image.
    /// Default [`DEFAULT_PLATFORM`].
    pub platform: String,
    /// Service account of the Flink pods. Default `flink`, the operator's own.
    pub service_account: String,
    /// JobManager CPU and memory. Default 1 CPU, `2048m`.
    pub job_manager: Resources,
    /// TaskManager CPU and memory. Default 1 CPU, `2048m`.
    pub task_manager: Resources,
    /// Default parallelism of the job, 1 to 32768. Default 1.
    pub parallelism: u32,
    /// How state is carried over an upgrade. Default stateless.
    pub upgrade_mode: UpgradeMode,
    /// Checkpoint directory (`state.checkpoints.dir`): required by savepoint and last-state,
    /// unless `flink_configuration` sets it.
    pub checkpoints_dir: Option<String>,
    /// Savepoint directory (`state.savepoints.dir`): required by savepoint, unless
    /// `flink_configuration` sets it.
    pub savepoints_dir: Option<String>,
    /// HA storage directory: turns on Kubernetes HA, which last-state requires (unless
    /// `flink_configuration` turns HA on itself).
    pub ha_storage_dir: Option<String>,
    /// Where state lives in S3, and the checkpoint interval: gives the checkpoint and
    /// savepoint directories, `execution.checkpointing.interval`, and for last-state
    /// Kubernetes HA with its storage directory, all under one prefix. A directory field set
    /// above wins over the one derived from the prefix. Default none.
    pub state: Option<StateStorage>,
    /// The savepoint a new job starts from (`job.initialSavepointPath`). The operator reads it
    /// only when it deploys a job without state of its own (a first deployment, or one
    /// whose last savepoint it lost); an upgrade carries the job's own state. Default none.
    pub initial_savepoint_path: Option<String>,
    /// Lets the job start from a savepoint holding state that no operator of the new job
    /// claims (`job.allowNonRestoredState`). Default false (not rendered).
    pub allow_non_restored_state: bool,
    /// How the pods authenticate to S3. Default IRSA.
    pub credentials: Credentials,
    /// An S3-compatible endpoint (MinIO, an emulator) for both the fetch and Flink; Flink
    /// then uses path-style access. Default none (AWS S3).
    pub s3_endpoint: Option<String>,
    /// Image of the fetch initContainer; it needs `/bin/sh`, `aws` and `sha256sum`.
    /// Default [`DEFAULT_FETCH_IMAGE`]. Its pull policy follows its reference
    /// ([`image_pull_policy`]): a tag other than `latest`, or a digest, is pulled once per
    /// node; no tag or `latest` is pulled at every start.
    pub fetch_image: String,
    /// Python interpreter inside the Flink image: the JobManager runs the script with it
    /// (`-pyclientexec`) and the TaskManagers run Python functions with it
    /// (`python.executable`). Default [`DEFAULT_PYTHON_EXECUTABLE`].
    pub python_executable: String,
    /// The script's own arguments, placed after Flink's options.
    pub args: Vec<String>,
    /// Extra Flink configuration. Entries for settings the builder derives from the fields
    /// above must agree with them; S3 keys in any spelling are refused.
    pub flink_configuration: BTreeMap<String, String>,
}

impl PyFlinkJob {
    /// A job description with the usual defaults for everything but its name, script,
    /// checksum, image and Flink release.
    pub fn new(
        name: impl Into<String>,
        script: S3Location,
        script_sha256: impl Into<String>,
        image: impl Into<String>,
        flink_version: impl Into<String>,
    ) -> Self {
        PyFlinkJob {
            name: name.into(),
            namespace: DEFAULT_NAMESPACE.to_owned(),
            script,
            script_sha256: script_sha256.into(),
            image: image.into(),
            flink_version: flink_version.into(),
            platform: DEFAULT_PLATFORM.to_owned(),
            service_account: DEFAULT_SERVICE_ACCOUNT.to_owned(),
            job_manager: Resources::default(),
            task_manager: Resources::default(),
            parallelism: 1,
            upgrade_mode: UpgradeMode::Stateless,
            checkpoints_dir: None,
            savepoints_dir: None,
            ha_storage_dir: None,
            state: None,
            initial_savepoint_path: None,
            allow_non_restored_state: false,
            credentials: Credentials::Irsa,
            s3_endpoint: None,
            fetch_image: DEFAULT_FETCH_IMAGE.to_owned(),
            python_executable: DEFAULT_PYTHON_EXECUTABLE.to_owned(),
            args: Vec::new(),
            flink_configuration: BTreeMap::new(),
        }
    }

    /// The path of the script inside the pods: `/opt/flink/usrlib/<file name>`.
    pub fn script_path(&self) -> String {
        format!("{USRLIB_DIR}/{}", self.script.file_name())
    }

    /// Checks every input and builds the FlinkDeployment. No IO.
    pub fn build(&self) -> Result<FlinkDeployment, Error> {
        let (release, parallelism) = self.validate()?;
        let node_selector = node_selector(&self.platform)?;
        let flink_configuration = config::merge(
            self.derived_configuration(&release),
            &self.flink_configuration,
        )?;
        let annotations = BTreeMap::from([(
            SCRIPT_SHA256_ANNOTATION.to_owned(),
            self.script_sha256.clone(),
        )]);

        let spec = FlinkDeploymentSpec {
            image: Some(self.image.clone()),
            flink_version: Some(release.version()),
            flink_configuration: Some(flink_configuration),
            service_account: Some(self.service_account.clone()),
            pod_template: Some(self.pod_template(annotations.clone())),
            job_manager: Some(JobManagerSpec {
                resource: Some(resource(&self.job_manager)),
                pod_template: Some(selecting_nodes(
                    self.job_manager_pod_template(),
                    &node_selector,
                )),
                ..JobManagerSpec::default()
            }),
            task_manager: Some(TaskManagerSpec {
                resource: Some(resource(&self.task_manager)),
                pod_template: Some(selecting_nodes(PodTemplateSpec::default(), &node_selector)),
                ..TaskManagerSpec::default()
            }),
            job: Some(JobSpec {
                jar_uri: Some(release.python_jar_uri()),
                entry_class: Some(PYTHON_DRIVER_CLASS.to_owned()),
                args: Some(self.job_args()),
                parallelism: Some(parallelism),
                upgrade_mode: Some(self.upgrade_mode),
                initial_savepoint_path: self.initial_savepoint_path.clone(),
                allow_non_restored_state: self.allow_non_restored_state.then_some(true),
                ..JobSpec::default()
            }),
            ..FlinkDeploymentSpec::default()
        };
        let mut deployment = FlinkDeployment::new(&self.name, spec);
        deployment.metadata.namespace = Some(self.namespace.clone());
        deployment.metadata.annotations = Some(annotations);
        deployment.metadata.labels = Some(BTreeMap::from([(
            MANAGED_BY_LABEL.0.to_owned(),
            MANAGED_BY_LABEL.1.to_owned(),
        )]));
        Ok(deployment)
    }

    /// Builds the FlinkDeployment and renders it as YAML.
    pub fn render(&self) -> Result<String, Error> {
        crate::to_yaml(&self.build()?)
    }

    fn validate(&self) -> Result<(FlinkRelease, i32), Error> {
        validate_job_name(&self.name)?;
        validate_dns1123_label("namespace", &self.namespace)?;
        validate_dns1123_subdomain("service account", &self.service_account)?;
        validate_script_file_name(self.script.file_name())?;
        validate_sha256(&self.script_sha256)?;
        validate_image("Flink image", &self.image)?;
        validate_image("fetch image", &self.fetch_image)?;
        let release: FlinkRelease = self.flink_version.parse()?;
        self.job_manager.validate(Component::JobManager)?;
        self.task_manager.validate(Component::TaskManager)?;
        let parallelism = i32::try_from(self.parallelism)
            .ok()
            .filter(|p| (1..=MAX_PARALLELISM).contains(p))
            .ok_or(Error::InvalidParallelism {
                value: self.parallelism,
            })?;
        if !self.python_executable.starts_with('/')
            || self
                .python_executable
                .chars()
                .any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(Error::InvalidPythonExecutable {
                value: self.python_executable.clone(),
            });
        }
        if let Some(index) = self.args.iter().position(|a| a.contains('\0')) {
            return Err(Error::InvalidArgument { index });
        }
        self.credentials.validate()?;
        if self.credentials == Credentials::PodIdentity && !release.supports_pod_identity() {
            return Err(Error::PodIdentityUnsupported {
                release: release.to_string(),
            });
        }
        if let Some(endpoint) = &self.s3_endpoint {
            validate_endpoint(endpoint)?;
        }
        for (field, dir) in [
            ("checkpoint directory", &self.checkpoints_dir),
            ("savepoint directory", &self.savepoints_dir),
            ("HA storage directory", &self.ha_storage_dir),
        ] {
            if let Some(dir) = dir {
                validate_directory(field, dir)?;
            }
        }
        if let Some(state) = &self.state {
            state.validate()?;
        }
        self.validate_upgrade_mode_needs()?;
        Ok((release, parallelism))
    }

    /// The directories the operator demands of each upgrade mode.
    fn validate_upgrade_mode_needs(&self) -> Result<(), Error> {
        let mode = self.upgrade_mode.as_crd_value();
        let user = &self.flink_configuration;
        let has_checkpoints = self.checkpoints_dir_in_effect().is_some()
            || config::user_sets(user, "state.checkpoints.dir");
        let has_savepoints = self.savepoints_dir_in_effect().is_some()
            || config::user_sets(user, "state.savepoints.dir");
        let has_ha = self.ha_storage_dir_in_effect().is_some() || config::user_enables_ha(user);
        let missing_checkpoints = Error::MissingDirectory {
            upgrade_mode: mode,
            what: "a checkpoint directory",
            config_key: "state.checkpoints.dir",
            example: "checkpoints",
        };
        match self.upgrade_mode {
            UpgradeMode::Stateless => Ok(()),
            UpgradeMode::Savepoint if !has_savepoints => Err(Error::MissingDirectory {
                upgrade_mode: mode,
                what: "a savepoint directory",
                config_key: "state.savepoints.dir",
                example: "savepoints",
            }),
            UpgradeMode::Savepoint | UpgradeMode::LastState if !has_checkpoints => {
                Err(missing_checkpoints)
            }
            UpgradeMode::LastState if !has_ha => Err(Error::MissingDirectory {
                upgrade_mode: mode,
                what: "Kubernetes HA and its storage directory",
                config_key: "high-availability.storageDir",
                example: "ha",
            }),
            UpgradeMode::Savepoint | UpgradeMode::LastState => Ok(()),
        }
    }

    /// The configuration entries that follow from the typed inputs.
    fn derived_configuration(&self, release: &FlinkRelease) -> Vec<Derived> {
        let mut derived = vec![
            Derived {
                key: CREDENTIALS_PROVIDER_KEY,
                value: self.credentials.credentials_provider().to_owned(),
                field: "credentials",
            },
            Derived {
                key: PYTHON_EXECUTABLE_KEY,
                value: self.python_executable.clone(),
                field: "Python executable",
            },
        ];
        if let Some(endpoint) = &self.s3_endpoint {
            derived.push(Derived {
                key: "s3.endpoint",
                value: endpoint.clone(),
                field: "S3 endpoint",
            });
            derived.push(Derived {
                key: "s3.path.style.access",
                value: "true".to_owned(),
                field: "S3 endpoint",
            });
        }
        if let Some(dir) = &self.checkpoints_dir_in_effect() {
            for key in config::checkpoint_dir_keys(release) {
                derived.push(Derived {
                    key,
                    value: dir.clone(),
                    field: "checkpoint directory",
                });
            }
        }
        if let Some(dir) = &self.savepoints_dir_in_effect() {
            for key in config::savepoint_dir_keys(release) {
                derived.push(Derived {
                    key,
                    value: dir.clone(),
                    field: "savepoint directory",
                });
            }
        }
        if let Some(state) = &self.state {
            derived.push(Derived {
                key: config::CHECKPOINT_INTERVAL_KEY,
                value: state.checkpoint_interval_value(),
                field: "checkpoint interval",
            });
        }
        if let Some(dir) = &self.ha_storage_dir_in_effect() {
            let (key, value) = config::kubernetes_ha_entry(release);
            derived.push(Derived {
                key,
                value: value.to_owned(),
                field: "HA storage directory",
            });
            derived.push(Derived {
                key: "high-availability.storageDir",
                value: dir.clone(),
                field: "HA storage directory",
            });
        }
        derived
    }

    /// The checkpoint directory: the field, or the one under the state prefix.
    fn checkpoints_dir_in_effect(&self) -> Option<String> {
        self.checkpoints_dir
            .clone()
            .or_else(|| self.state.as_ref().map(StateStorage::checkpoints_dir))
    }

    /// The savepoint directory: the field, or the one under the state prefix.
    fn savepoints_dir_in_effect(&self) -> Option<String> {
        self.savepoints_dir
            .clone()
            .or_else(|| self.state.as_ref().map(StateStorage::savepoints_dir))
    }

    /// The HA storage directory: the field, or for last-state the one under the state
    /// prefix (the other modes need no HA).
    fn ha_storage_dir_in_effect(&self) -> Option<String> {
        let from_state = || {
            let state = self.state.as_ref()?;
            (self.upgrade_mode == UpgradeMode::LastState).then(|| state.ha_storage_dir())
        };
        self.ha_storage_dir.clone().or_else(from_state)
    }

    /// `-pyclientexec <python> -py <script>` then the user's arguments: the operator's Python
    /// example requires Flink's options first.
    fn job_args(&self) -> Vec<String> {
        let mut args = vec![
            "-pyclientexec".to_owned(),
            self.python_executable.clone(),
            "-py".to_owned(),
            self.script_path(),
        ];
        args.extend(self.args.iter().cloned());
        args
    }

    /// The pod template of every Flink pod: the checksum annotation, the script volume
    /// mounted in the main container, and the access keys where they come from a Secret.
    fn pod_template(&self, annotations: BTreeMap<String, String>) -> PodTemplateSpec {
        let secret_env = self.credentials.secret_env();
        PodTemplateSpec {
            metadata: Some(ObjectMeta {
                annotations: Some(annotations),
                ..ObjectMeta::default()
            }),
            spec: Some(PodSpec {
                containers: vec![Container {
                    name: MAIN_CONTAINER.to_owned(),
                    env: (!secret_env.is_empty()).then_some(secret_env),
                    volume_mounts: Some(vec![script_mount()]),
                    ..Container::default()
                }],
                volumes: Some(vec![Volume {
                    name: SCRIPT_VOLUME.to_owned(),
                    empty_dir: Some(EmptyDirVolumeSource::default()),
                    ..Volume::default()
                }]),
                ..PodSpec::default()
            }),
        }
    }

    /// The JobManager's own template: the initContainer that fetches and checks the script.
    /// TaskManagers need no copy: the JobManager runs the script to build the job graph, and
    /// Python functions defined in it reach the TaskManagers pickled inside that graph.
    fn job_manager_pod_template(&self) -> PodTemplateSpec {
        let plain = |name: &str, value: String| EnvVar {
            name: name.to_owned(),
            value: Some(value),
            ..EnvVar::default()
        };
        let mut env = vec![
            plain("SCRIPT_S3_URI", self.script.to_string()),
            plain("SCRIPT_PATH", self.script_path()),
            plain("SCRIPT_SHA256", self.script_sha256.clone()),
        ];
        if let Some(endpoint) = &self.s3_endpoint {
            env.push(plain("S3_ENDPOINT_URL", endpoint.clone()));
        }
        env.extend(self.credentials.secret_env());
        PodTemplateSpec {
            metadata: None,
            spec: Some(PodSpec {
                init_containers: Some(vec![Container {
                    name: FETCH_CONTAINER.to_owned(),
                    image: Some(self.fetch_image.clone()),
                    image_pull_policy: Some(image_pull_policy(&self.fetch_image).to_owned()),
                    command: Some(vec![
                        "/bin/sh".to_owned(),
                        "-c".to_owned(),
                        FETCH_SCRIPT.to_owned(),
                    ]),
                    env: Some(env),
                    volume_mounts: Some(vec![script_mount()]),
                    ..Container::default()
                }]),
                ..PodSpec::default()
            }),
        }
    }
}

/// The pull policy the kubelet gives an image reference when none is set: `Always` for no
/// tag or the tag `latest` (which can move), `IfNotPresent` for any other tag or a digest.
/// Written out, so the rendered manifest says what the node will do.
pub fn image_pull_policy(reference: &str) -> &'static str {
    if reference.contains('@') {
        return "IfNotPresent";
    }
    let last_segment = reference.rsplit('/').next().unwrap_or(reference);
    match last_segment.split_once(':') {
        Some((_, tag)) if tag != "latest" => "IfNotPresent",
        _ => "Always",
    }
}

/// The node selector of a platform `linux/<arch>[/<variant>]`: the architecture and OS node
/// labels. Nodes carry no variant label, so the variant selects nothing.
fn node_selector(platform: &str) -> Result<BTreeMap<String, String>, Error> {
    let invalid = || Error::InvalidPlatform {
        value: platform.to_owned(),
    };
    let mut parts = platform.split('/');
    let (Some("linux"), Some(arch), variant, None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(invalid());
    };
    let variant_ok = variant.is_none_or(|v| {
        !v.is_empty()
            && v.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.')
    });
    if !NODE_ARCHITECTURES.contains(&arch) || !variant_ok {
        return Err(invalid());
    }
    Ok(BTreeMap::from([
        (ARCH_NODE_LABEL.to_owned(), arch.to_owned()),
        (OS_NODE_LABEL.to_owned(), "linux".to_owned()),
    ]))
}

/// `template` with `node_selector` in its pod spec.
fn selecting_nodes(
    mut template: PodTemplateSpec,
    node_selector: &BTreeMap<String, String>,
) -> PodTemplateSpec {
    template
        .spec
        .get_or_insert_with(PodSpec::default)
        .node_selector = Some(node_selector.clone());
    template
}

fn script_mount() -> VolumeMount {
    VolumeMount {
        name: SCRIPT_VOLUME.to_owned(),
        mount_path: USRLIB_DIR.to_owned(),
        ..VolumeMount::default()
    }
}

fn resource(resources: &Resources) -> Resource {
    Resource {
        cpu: Some(resources.cpu),
        memory: Some(resources.memory.clone()),
        ephemeral_storage: None,
    }
}

fn validate_sha256(value: &str) -> Result<(), Error> {
    let valid = value.len() == 64
        && value
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if !valid {
        return Err(Error::InvalidSha256 {
            value: value.to_owned(),
        });
    }
    Ok(())
}

fn validate_script_file_name(file_name: &str) -> Result<(), Error> {
    let stem = file_name.strip_suffix(".py").unwrap_or_default();
    let valid = !stem.is_empty()
        && !file_name.starts_with('.')
        && !file_name.starts_with('-')
        && file_name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if !valid {
        return Err(Error::InvalidScriptFileName {
            file_name: file_name.to_owned(),
        });
    }
    Ok(())
}

fn validate_image(field: &'static str, value: &str) -> Result<(), Error> {
    if value.is_empty() || value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(Error::InvalidImage {
            field,
            value: value.to_owned(),
        });
    }
    Ok(())
}

fn validate_endpoint(value: &str) -> Result<(), Error> {
    let rest = value
        .strip_prefix("http://")
        .or_else(|| value.strip_prefix("https://"))
        .unwrap_or_default();
    if rest.is_empty() || value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(Error::InvalidEndpoint {
            value: value.to_owned(),
        });
    }
    Ok(())
}

fn validate_directory(field: &'static str, value: &str) -> Result<(), Error> {
    let has_scheme = value.split_once("://").is_some_and(|(scheme, path)| {
        !scheme.is_empty()
            && !path.is_empty()
            && scheme
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'-' || b == b'.')
    });
    if !has_scheme || value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(Error::InvalidDirectory {
            field,
            value: value.to_owned(),
        });
    }
    Ok(())
}

fn validate_secret_key(field: &'static str, value: &str) -> Result<(), Error> {
    let valid = !value.is_empty()
        && value.len() <= 253
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if !valid {
        return Err(Error::InvalidSecretKey {
            field,
            value: value.to_owned(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{FlinkVersion, from_yaml, to_yaml};

    const SHA: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

    #[test]
    fn a_job_from_a_savepoint_names_it_and_allows_unclaimed_state_only_when_asked() {
        let plain = example_job().build().unwrap();
        let job = plain.spec.job.as_ref().unwrap();
        assert_eq!(job.initial_savepoint_path, None);
        assert_eq!(job.allow_non_restored_state, None);
        let from = PyFlinkJob {
            initial_savepoint_path: Some("s3://bucket/state/savepoints/savepoint-1".to_owned()),
            allow_non_restored_state: true,
            ..example_job()
        };
        let yaml = from.render().unwrap();
        assert!(
            yaml.contains("initialSavepointPath: s3://bucket/state/savepoints/savepoint-1"),
            "{yaml}"
        );
        assert!(yaml.contains("allowNonRestoredState: true"), "{yaml}");
    }

    /// The example job: python-example-s3 in default, s3://flink-s3-test/test/python_demo_s3.py,
    /// service account flink, JobManager 2048m and 1 CPU.
    fn example_job() -> PyFlinkJob {
        let script = S3Location::new("flink-s3-test", "test/python_demo_s3.py").unwrap();
        PyFlinkJob::new(
            "python-example-s3",
            script,
            SHA,
            "hiha2/flink-s3:latest",
            "1.20.0",
        )
    }

    fn env_value<'a>(container: &'a Container, name: &str) -> Option<&'a str> {
        container
            .env
            .as_ref()?
            .iter()
            .find(|e| e.name == name)?
            .value
            .as_deref()
    }

    fn init_container(deployment: &FlinkDeployment) -> &Container {
        let jm = deployment.spec.job_manager.as_ref().unwrap();
        let spec = jm.pod_template.as_ref().unwrap().spec.as_ref().unwrap();
        let init = spec.init_containers.as_ref().unwrap();
        assert_eq!(init.len(), 1);
        &init[0]
    }

    fn main_container(deployment: &FlinkDeployment) -> &Container {
        let spec = deployment
            .spec
            .pod_template
            .as_ref()
            .unwrap()
            .spec
            .as_ref()
            .unwrap();
        assert_eq!(spec.containers.len(), 1);
        &spec.containers[0]
    }

    fn configuration(deployment: &FlinkDeployment) -> &BTreeMap<String, String> {
        deployment.spec.flink_configuration.as_ref().unwrap()
    }

    #[test]
    fn the_example_job_has_every_field() {
        let deployment = example_job().build().unwrap();
        let meta = &deployment.metadata;
        let json = serde_json::to_value(&deployment).unwrap();
        assert_eq!(json["apiVersion"], "flink.apache.org/v1beta1");
        assert_eq!(json["kind"], "FlinkDeployment");
        assert_eq!(json.get("status"), None, "a rendered object has no status");
        assert_eq!(meta.name.as_deref(), Some("python-example-s3"));
        assert_eq!(meta.namespace.as_deref(), Some("default"));
        assert_eq!(
            meta.annotations.as_ref().unwrap()[SCRIPT_SHA256_ANNOTATION],
            SHA
        );
        assert_eq!(
            meta.labels.as_ref().unwrap()["app.kubernetes.io/managed-by"],
            "flink-eks"
        );

        let spec = &deployment.spec;
        assert_eq!(spec.image.as_deref(), Some("hiha2/flink-s3:latest"));
        assert_eq!(spec.flink_version, Some(FlinkVersion::V1_20));
        assert_eq!(spec.service_account.as_deref(), Some("flink"));
        let jm = spec
            .job_manager
            .as_ref()
            .unwrap()
            .resource
            .as_ref()
            .unwrap();
        assert_eq!((jm.cpu, jm.memory.as_deref()), (Some(1.0), Some("2048m")));
        let tm = spec
            .task_manager
            .as_ref()
            .unwrap()
            .resource
            .as_ref()
            .unwrap();
        assert_eq!((tm.cpu, tm.memory.as_deref()), (Some(1.0), Some("2048m")));
        // The TaskManagers' own template only selects nodes: they need no copy of the script.
        let tm_pod = spec.task_manager.as_ref().unwrap().pod_template.as_ref();
        let tm_pod = tm_pod.and_then(|t| t.spec.as_ref()).unwrap();
        assert_eq!(
            (tm_pod.init_containers.as_ref(), tm_pod.containers.len()),
            (None, 0)
        );
        assert!(tm_pod.node_selector.is_some());

        let job = spec.job.as_ref().unwrap();
        assert_eq!(
            job.jar_uri.as_deref(),
            Some("local:///opt/flink/opt/flink-python-1.20.0.jar")
        );
        assert_eq!(
            job.entry_class.as_deref(),
            Some("org.apache.flink.client.python.PythonDriver")
        );
        assert_eq!(
            job.args.as_deref().unwrap(),
            [
                "-pyclientexec",
                "/usr/bin/python3",
                "-py",
                "/opt/flink/usrlib/python_demo_s3.py"
            ]
        );
        assert_eq!(job.parallelism, Some(1));
        assert_eq!(job.upgrade_mode, Some(UpgradeMode::Stateless));

        assert_eq!(
            configuration(&deployment),
            &BTreeMap::from([
                (
                    "fs.s3a.aws.credentials.provider".to_owned(),
                    "com.amazonaws.auth.WebIdentityTokenCredentialsProvider".to_owned()
                ),
                (
                    "python.executable".to_owned(),
                    "/usr/bin/python3".to_owned()
                ),
            ])
        );

        // Every pod: the checksum annotation, the emptyDir mounted in the main container.
        let template = spec.pod_template.as_ref().unwrap();
        let annotations = template
            .metadata
            .as_ref()
            .unwrap()
            .annotations
            .as_ref()
            .unwrap();
        assert_eq!(annotations[SCRIPT_SHA256_ANNOTATION], SHA);
        let pod = template.spec.as_ref().unwrap();
        let volumes = pod.volumes.as_ref().unwrap();
        assert_eq!(volumes.len(), 1);
        assert_eq!(volumes[0].empty_dir, Some(EmptyDirVolumeSource::default()));
        let main = main_container(&deployment);
        assert_eq!(main.name, "flink-main-container");
        let mounts = main.volume_mounts.as_ref().unwrap();
        assert_eq!(
            (mounts[0].name.as_str(), mounts[0].mount_path.as_str()),
            (volumes[0].name.as_str(), "/opt/flink/usrlib")
        );
        assert_eq!(main.env, None, "IRSA needs no environment of ours");

        // The JobManager: an initContainer fetching and checking the script.
        let init = init_container(&deployment);
        assert_eq!(init.image.as_deref(), Some(DEFAULT_FETCH_IMAGE));
        assert_eq!(init.image_pull_policy.as_deref(), Some("IfNotPresent"));
        assert_eq!(
            init.command.as_deref().unwrap(),
            ["/bin/sh", "-c", FETCH_SCRIPT]
        );
        assert_eq!(
            env_value(init, "SCRIPT_S3_URI"),
            Some("s3://flink-s3-test/test/python_demo_s3.py")
        );
        assert_eq!(
            env_value(init, "SCRIPT_PATH"),
            Some("/opt/flink/usrlib/python_demo_s3.py")
        );
        assert_eq!(env_value(init, "SCRIPT_SHA256"), Some(SHA));
        assert_eq!(env_value(init, "S3_ENDPOINT_URL"), None);
        assert_eq!(init.volume_mounts.as_ref().unwrap(), mounts);
    }

    #[test]
    fn the_fetch_script_checks_the_checksum_and_interpolates_nothing() {
        assert!(
            FETCH_SCRIPT.contains(r#"aws s3 cp --no-progress "$SCRIPT_S3_URI" "$SCRIPT_PATH""#)
        );
        assert!(FETCH_SCRIPT.contains(r#"echo "$SCRIPT_SHA256  $SCRIPT_PATH" | sha256sum -c -"#));
        assert!(FETCH_SCRIPT.contains("exit 1"));
        // The script is a constant: inputs reach it only through the environment.
        let mut job = example_job();
        job.script = S3Location::new("other-bucket", "jobs/it's \"quoted\" $(x).py").unwrap();
        let err = job.build().unwrap_err();
        assert!(matches!(err, Error::InvalidScriptFileName { .. }), "{err}");
    }

    #[test]
    fn user_arguments_follow_flinks_options() {
        let mut job = example_job();
        job.args = vec![
            "--input".into(),
            "s3://flink-s3-test/in".into(),
            "-py".into(),
        ];
        job.python_executable = "/usr/local/bin/python3".into();
        let args = job.build().unwrap().spec.job.unwrap().args.unwrap();
        assert_eq!(
            args,
            [
                "-pyclientexec",
                "/usr/local/bin/python3",
                "-py",
                "/opt/flink/usrlib/python_demo_s3.py",
                "--input",
                "s3://flink-s3-test/in",
                "-py"
            ]
        );
    }

    /// Inputs whose YAML form is easy to get wrong: strings that look like numbers,
    /// booleans, nulls, comments or YAML syntax.
    fn tricky_job() -> PyFlinkJob {
        let mut job = example_job();
        job.script_sha256 = "1".repeat(64);
        job.args = [
            "123", "true", "null", "yes", "~", "- x", "a: b", "#c", "0x1F", "1e3", "", " lead",
        ]
        .map(String::from)
        .to_vec();
        job.flink_configuration = BTreeMap::from([
            ("taskmanager.numberOfTaskSlots".into(), "2".into()),
            ("pipeline.object-reuse".into(), "true".into()),
            ("env.java.opts.all".into(), "-Dx=\"y\" -Dz='w'".into()),
            ("pipeline.name".into(), "multi\nline".into()),
        ]);
        job.s3_endpoint = Some("http://127.0.0.1:9000".into());
        job
    }

    #[test]
    fn a_long_image_reference_stays_on_one_line() {
        let mut job = example_job();
        job.image = format!(
            "123456789012.dkr.ecr.ap-northeast-2.amazonaws.com/flink-s3:sha256-{}",
            "ab".repeat(32)
        );
        let yaml = job.render().unwrap();
        assert!(
            yaml.contains(&format!("\n  image: {}\n", job.image)),
            "{yaml}"
        );
    }

    #[test]
    fn yaml_round_trips_through_the_type() {
        let mut irsa_savepoint = tricky_job();
        irsa_savepoint.upgrade_mode = UpgradeMode::Savepoint;
        irsa_savepoint.checkpoints_dir = Some("s3://flink-s3-test/checkpoints".into());
        irsa_savepoint.savepoints_dir = Some("s3://flink-s3-test/savepoints".into());
        let mut secret = example_job();
        secret.credentials = Credentials::AccessKeySecret {
            secret_name: "s3-keys".into(),
            access_key_field: "access-key".into(),
            secret_key_field: "secret-key".into(),
        };
        for job in [example_job(), tricky_job(), irsa_savepoint, secret] {
            let deployment = job.build().unwrap();
            let yaml = to_yaml(&deployment).unwrap();
            let read = from_yaml(&yaml).unwrap();
            assert_eq!(read, deployment, "{yaml}");
            assert_eq!(to_yaml(&read).unwrap(), yaml);
        }
    }

    #[test]
    fn values_that_look_like_other_types_stay_strings_in_yaml() {
        let yaml = tricky_job().render().unwrap();
        let value: serde_json::Value = serde_saphyr::from_str(&yaml).unwrap();
        let conf = &value["spec"]["flinkConfiguration"];
        assert_eq!(conf["taskmanager.numberOfTaskSlots"], "2");
        assert_eq!(conf["pipeline.object-reuse"], "true");
        assert_eq!(conf["s3.path.style.access"], "true");
        assert_eq!(
            value["metadata"]["annotations"][SCRIPT_SHA256_ANNOTATION],
            "1".repeat(64)
        );
        let args: Vec<&str> = value["spec"]["job"]["args"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                a.as_str()
                    .unwrap_or_else(|| panic!("argument {a} is not a string"))
            })
            .collect();
        assert_eq!(
            &args[4..],
            [
                "123", "true", "null", "yes", "~", "- x", "a: b", "#c", "0x1F", "1e3", "", " lead"
            ]
        );
    }

    #[test]
    fn the_same_input_renders_the_same_bytes() {
        let first = tricky_job().render().unwrap();
        let second = tricky_job().clone().render().unwrap();
        assert_eq!(first, second);

        let mut changed = tricky_job();
        changed.script_sha256 = "2".repeat(64);
        let third = changed.render().unwrap();
        assert_ne!(first, third);
        assert_eq!(first.replace(&"1".repeat(64), &"2".repeat(64)), third);
        // The checksum reaches both the resource and the pod template, and the fetch.
        assert_eq!(third.matches(&"2".repeat(64)).count(), 3);
    }

    #[test]
    fn stateful_upgrade_modes_ask_for_their_directories() {
        let mut job = example_job();
        job.upgrade_mode = UpgradeMode::Savepoint;
        let err = job.build().unwrap_err();
        assert!(
            matches!(
                err,
                Error::MissingDirectory {
                    config_key: "state.savepoints.dir",
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("upgrade mode savepoint"), "{err}");
        job.savepoints_dir = Some("s3://flink-s3-test/savepoints".into());
        let err = job.build().unwrap_err();
        assert!(
            matches!(
                err,
                Error::MissingDirectory {
                    config_key: "state.checkpoints.dir",
                    ..
                }
            ),
            "{err}"
        );
        job.checkpoints_dir = Some("s3://flink-s3-test/checkpoints".into());
        let deployment = job.build().unwrap();
        let conf = configuration(&deployment);
        assert_eq!(
            conf["state.savepoints.dir"],
            "s3://flink-s3-test/savepoints"
        );
        assert_eq!(
            conf["execution.checkpointing.savepoint-dir"],
            "s3://flink-s3-test/savepoints"
        );
        assert_eq!(
            conf["state.checkpoints.dir"],
            "s3://flink-s3-test/checkpoints"
        );
        assert_eq!(
            conf["execution.checkpointing.dir"],
            "s3://flink-s3-test/checkpoints"
        );
        assert_eq!(
            deployment.spec.job.unwrap().upgrade_mode,
            Some(UpgradeMode::Savepoint)
        );

        // Flink 1.18 knows only the old names.
        job.flink_version = "1.18.1".into();
        let conf = job.build().unwrap().spec.flink_configuration.unwrap();
        assert!(conf.contains_key("state.savepoints.dir"));
        assert!(!conf.contains_key("execution.checkpointing.savepoint-dir"));

        // last-state: a checkpoint directory and Kubernetes HA.
        let mut job = example_job();
        job.upgrade_mode = UpgradeMode::LastState;
        job.checkpoints_dir = Some("s3://flink-s3-test/checkpoints".into());
        let err = job.build().unwrap_err();
        assert!(
            matches!(
                err,
                Error::MissingDirectory {
                    config_key: "high-availability.storageDir",
                    ..
                }
            ),
            "{err}"
        );
        job.ha_storage_dir = Some("s3://flink-s3-test/ha".into());
        let conf = job.build().unwrap().spec.flink_configuration.unwrap();
        assert_eq!(conf["high-availability.type"], "kubernetes");
        assert_eq!(
            conf["high-availability.storageDir"],
            "s3://flink-s3-test/ha"
        );

        // ... or the user's own configuration.
        let mut job = example_job();
        job.upgrade_mode = UpgradeMode::LastState;
        job.flink_configuration = BTreeMap::from([
            ("execution.checkpointing.dir".into(), "s3://b/c".into()),
            ("high-availability.type".into(), "kubernetes".into()),
            ("high-availability.storageDir".into(), "s3://b/ha".into()),
        ]);
        job.build().unwrap();
    }

    fn stateful_job(mode: UpgradeMode, flink_version: &str) -> PyFlinkJob {
        let mut job = example_job();
        job.flink_version = flink_version.into();
        job.upgrade_mode = mode;
        job.state = Some(StateStorage::new(
            crate::S3Prefix::parse("s3://flink-s3-test/flink-eks/default/python-example-s3/state/")
                .unwrap(),
        ));
        job
    }

    /// The entries a job's state adds to the configuration of a stateless job's.
    fn state_entries(job: &PyFlinkJob) -> BTreeMap<String, String> {
        let stateless = configuration(&example_job().build().unwrap()).clone();
        configuration(&job.build().unwrap())
            .iter()
            .filter(|(k, _)| !stateless.contains_key(*k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    #[test]
    fn the_state_prefix_gives_each_flink_version_its_own_keys() {
        const STATE: &str = "s3://flink-s3-test/flink-eks/default/python-example-s3/state";
        let entries = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.replace("STATE", STATE)))
                .collect()
        };
        // savepoint: checkpoints, savepoints and the interval; no HA.
        let cases = [
            (
                "1.18.1",
                entries(&[
                    ("state.checkpoints.dir", "STATE/checkpoints"),
                    ("state.savepoints.dir", "STATE/savepoints"),
                    ("execution.checkpointing.interval", "60s"),
                ]),
            ),
            (
                "1.20.0",
                entries(&[
                    ("state.checkpoints.dir", "STATE/checkpoints"),
                    ("execution.checkpointing.dir", "STATE/checkpoints"),
                    ("state.savepoints.dir", "STATE/savepoints"),
                    ("execution.checkpointing.savepoint-dir", "STATE/savepoints"),
                    ("execution.checkpointing.interval", "60s"),
                ]),
            ),
            (
                "2.1.0",
                entries(&[
                    ("execution.checkpointing.dir", "STATE/checkpoints"),
                    ("execution.checkpointing.savepoint-dir", "STATE/savepoints"),
                    ("execution.checkpointing.interval", "60s"),
                ]),
            ),
        ];
        for (version, expected) in cases {
            let job = stateful_job(UpgradeMode::Savepoint, version);
            assert_eq!(state_entries(&job), expected, "Flink {version}");
        }

        // last-state adds Kubernetes HA under the prefix, spelled as each release reads it.
        for (version, ha_key, ha_value) in [
            (
                "1.15.4",
                "high-availability",
                "org.apache.flink.kubernetes.highavailability.KubernetesHaServicesFactory",
            ),
            ("1.16.3", "high-availability.type", "kubernetes"),
            ("1.20.0", "high-availability.type", "kubernetes"),
            ("2.0.0", "high-availability.type", "kubernetes"),
        ] {
            let mut job = stateful_job(UpgradeMode::LastState, version);
            job.state.as_mut().unwrap().checkpoint_interval = std::time::Duration::from_secs(30);
            let found = state_entries(&job);
            assert_eq!(found[ha_key], ha_value, "Flink {version}");
            assert_eq!(
                found["high-availability.storageDir"],
                format!("{STATE}/ha"),
                "Flink {version}"
            );
            assert_eq!(found["execution.checkpointing.interval"], "30s");
            // The checkpoint and savepoint keys (one or two names each), the interval, HA.
            let names = config::checkpoint_dir_keys(&version.parse().unwrap()).len();
            assert_eq!(found.len(), 2 * names + 3, "Flink {version}: {found:?}");
        }
    }

    #[test]
    fn a_stateless_job_without_state_renders_as_before_and_state_is_checked() {
        // No state: not a single state key.
        let conf = configuration(&example_job().build().unwrap()).clone();
        assert!(
            conf.keys().all(|k| !k.contains("checkpoint")
                && !k.contains("savepoint")
                && !k.starts_with("high-availability")),
            "{conf:?}"
        );
        // A directory set explicitly wins over the prefix.
        let mut job = stateful_job(UpgradeMode::Savepoint, "1.20.0");
        job.savepoints_dir = Some("s3://other-bucket/savepoints".into());
        assert_eq!(
            configuration(&job.build().unwrap())["state.savepoints.dir"],
            "s3://other-bucket/savepoints"
        );
        // The interval is checked, and the user's own entry must agree with it.
        let mut job = stateful_job(UpgradeMode::Savepoint, "1.20.0");
        job.state.as_mut().unwrap().checkpoint_interval = std::time::Duration::from_millis(5);
        let err = job.build().unwrap_err();
        assert!(
            matches!(err, Error::InvalidCheckpointInterval { .. }),
            "{err}"
        );
        let mut job = stateful_job(UpgradeMode::Savepoint, "1.20.0");
        job.flink_configuration =
            BTreeMap::from([("execution.checkpointing.interval".into(), "10s".into())]);
        let err = job.build().unwrap_err();
        assert!(
            matches!(
                err,
                Error::ConfigConflict {
                    field: "checkpoint interval",
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn credential_modes() {
        let mut job = example_job();
        job.flink_version = "1.20.1".into();
        job.credentials = Credentials::PodIdentity;
        let deployment = job.build().unwrap();
        assert_eq!(
            configuration(&deployment)[CREDENTIALS_PROVIDER_KEY],
            "com.amazonaws.auth.EC2ContainerCredentialsProviderWrapper"
        );

        job.flink_version = "1.20.0".into();
        let err = job.build().unwrap_err();
        assert!(matches!(err, Error::PodIdentityUnsupported { .. }), "{err}");
        assert!(err.to_string().contains("1.20.1"), "{err}");

        job.credentials = Credentials::AccessKeySecret {
            secret_name: "s3-keys".into(),
            access_key_field: "access-key".into(),
            secret_key_field: "secret-key".into(),
        };
        let deployment = job.build().unwrap();
        assert_eq!(
            configuration(&deployment)[CREDENTIALS_PROVIDER_KEY],
            "com.amazonaws.auth.EnvironmentVariableCredentialsProvider"
        );
        for container in [init_container(&deployment), main_container(&deployment)] {
            let env = container.env.as_ref().unwrap();
            for (name, key) in [
                ("AWS_ACCESS_KEY_ID", "access-key"),
                ("AWS_SECRET_ACCESS_KEY", "secret-key"),
            ] {
                let var = env.iter().find(|e| e.name == name).unwrap();
                assert_eq!(var.value, None, "{name} must come from the Secret");
                let secret = var
                    .value_from
                    .as_ref()
                    .unwrap()
                    .secret_key_ref
                    .as_ref()
                    .unwrap();
                assert_eq!(
                    (secret.name.as_str(), secret.key.as_str()),
                    ("s3-keys", key)
                );
            }
        }

        job.credentials = Credentials::AccessKeySecret {
            secret_name: "S3_Keys".into(),
            access_key_field: "access-key".into(),
            secret_key_field: "secret-key".into(),
        };
        let err = job.build().unwrap_err();
        assert!(err.to_string().starts_with("Secret name"), "{err}");
        job.credentials = Credentials::AccessKeySecret {
            secret_name: "s3-keys".into(),
            access_key_field: "access key".into(),
            secret_key_field: "secret-key".into(),
        };
        let err = job.build().unwrap_err();
        assert!(
            matches!(
                err,
                Error::InvalidSecretKey {
                    field: "access key field",
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn the_fetch_image_is_pinned_and_pulled_once_per_node() {
        let deployment = example_job().build().unwrap();
        let fetch = init_container(&deployment);
        let image = fetch.image.as_deref().unwrap();
        let version = image
            .strip_prefix("public.ecr.aws/aws-cli/aws-cli:")
            .unwrap_or_else(|| panic!("{image} is not the AWS CLI from ECR Public"));
        let numbers: Vec<u32> = version.split('.').map(|n| n.parse().unwrap()).collect();
        assert!(
            numbers.len() == 3 && numbers[0] == 2 && numbers[1] >= 15,
            "{image}: Pod Identity needs aws-cli 2.15.0 or newer"
        );
        assert_eq!(fetch.image_pull_policy.as_deref(), Some("IfNotPresent"));

        // Another image gets the policy the kubelet would give it, written out.
        for (reference, policy) in [
            ("amazon/aws-cli", "Always"),
            ("amazon/aws-cli:latest", "Always"),
            ("registry.example.com:5000/tools/aws-cli", "Always"),
            (
                "registry.example.com:5000/tools/aws-cli:2.17.0",
                "IfNotPresent",
            ),
            (
                "amazon/aws-cli@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                "IfNotPresent",
            ),
        ] {
            let mut job = example_job();
            job.fetch_image = reference.to_owned();
            let deployment = job.build().unwrap();
            let fetch = init_container(&deployment);
            assert_eq!(fetch.image.as_deref(), Some(reference));
            assert_eq!(
                fetch.image_pull_policy.as_deref(),
                Some(policy),
                "{reference}"
            );
        }
    }

    #[test]
    fn the_python_interpreter_reaches_the_client_and_the_task_managers() {
        let deployment = example_job().build().unwrap();
        let args = deployment.spec.job.as_ref().unwrap().args.clone().unwrap();
        assert_eq!(args[..2], ["-pyclientexec", "/usr/bin/python3"]);
        assert_eq!(
            configuration(&deployment)[PYTHON_EXECUTABLE_KEY],
            "/usr/bin/python3"
        );

        let mut job = example_job();
        job.python_executable = "/opt/venv/bin/python".into();
        let deployment = job.build().unwrap();
        let args = deployment.spec.job.as_ref().unwrap().args.clone().unwrap();
        assert_eq!(args[..2], ["-pyclientexec", "/opt/venv/bin/python"]);
        assert_eq!(
            configuration(&deployment)["python.executable"],
            "/opt/venv/bin/python"
        );

        // The user's own entry must agree with it.
        job.flink_configuration =
            BTreeMap::from([("python.executable".into(), "/usr/bin/python".into())]);
        let err = job.build().unwrap_err();
        assert!(
            matches!(
                err,
                Error::ConfigConflict {
                    field: "Python executable",
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn an_s3_compatible_endpoint_reaches_the_fetch_and_flink() {
        let mut job = example_job();
        job.s3_endpoint = Some("http://minio.storage:9000".into());
        let deployment = job.build().unwrap();
        let conf = configuration(&deployment);
        assert_eq!(conf["s3.endpoint"], "http://minio.storage:9000");
        assert_eq!(conf["s3.path.style.access"], "true");
        assert_eq!(
            env_value(init_container(&deployment), "S3_ENDPOINT_URL"),
            Some("http://minio.storage:9000")
        );
        assert!(FETCH_SCRIPT.contains(r#"--endpoint-url "$S3_ENDPOINT_URL""#));

        for bad in ["minio:9000", "ftp://minio", "http://", "http://minio 9000"] {
            job.s3_endpoint = Some(bad.into());
            let err = job.build().unwrap_err();
            assert!(matches!(err, Error::InvalidEndpoint { .. }), "{bad}: {err}");
        }
    }

    #[test]
    fn user_configuration_passes_through_but_cannot_contradict_or_hold_keys() {
        let mut job = example_job();
        job.flink_configuration =
            BTreeMap::from([("taskmanager.numberOfTaskSlots".into(), "2".into())]);
        let deployment = job.build().unwrap();
        assert_eq!(
            configuration(&deployment)["taskmanager.numberOfTaskSlots"],
            "2"
        );

        job.flink_configuration =
            BTreeMap::from([("s3.access-key".into(), "AKIAIOSFODNN7EXAMPLE".into())]);
        let err = job.build().unwrap_err();
        assert!(matches!(err, Error::InlineCredential { .. }), "{err}");
        assert!(err.to_string().contains("access-key-secret"), "{err}");
        assert!(
            !err.to_string().contains("AKIA"),
            "the error must not repeat the key: {err}"
        );

        job.flink_configuration = BTreeMap::from([(
            "fs.s3a.aws.credentials.provider".into(),
            "com.amazonaws.auth.InstanceProfileCredentialsProvider".into(),
        )]);
        let err = job.build().unwrap_err();
        assert!(
            matches!(
                err,
                Error::ConfigConflict {
                    field: "credentials",
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn bad_input_is_a_typed_error_naming_the_field() {
        fn error_of(change: impl FnOnce(&mut PyFlinkJob)) -> Error {
            let mut job = example_job();
            change(&mut job);
            job.build().unwrap_err()
        }
        let cases: Vec<(Error, &str)> = vec![
            (error_of(|j| j.name = "Python_Example".into()), "job name"),
            (error_of(|j| j.name = "a".repeat(46)), "job name"),
            (error_of(|j| j.namespace = "Default".into()), "namespace"),
            (
                error_of(|j| j.service_account = "flink sa".into()),
                "service account",
            ),
            (
                error_of(|j| j.flink_version = "1.12.0".into()),
                "Flink version",
            ),
            (
                error_of(|j| j.flink_version = "2.3.0".into()),
                "Flink version",
            ),
            (
                error_of(|j| j.flink_version = "1.20".into()),
                "Flink version",
            ),
            (error_of(|j| j.parallelism = 0), "parallelism"),
            (error_of(|j| j.parallelism = 40_000), "parallelism"),
            (
                error_of(|j| j.job_manager.memory = "2048x".into()),
                "JobManager memory",
            ),
            (
                error_of(|j| j.task_manager.memory = "".into()),
                "TaskManager memory",
            ),
            (error_of(|j| j.job_manager.cpu = 0.0), "JobManager cpu"),
            (error_of(|j| j.task_manager.cpu = -1.0), "TaskManager cpu"),
            (
                error_of(|j| j.script_sha256 = "ABC".into()),
                "script SHA-256",
            ),
            (
                error_of(|j| j.script_sha256 = SHA.to_uppercase()),
                "script SHA-256",
            ),
            (error_of(|j| j.image = "".into()), "Flink image"),
            (
                error_of(|j| j.fetch_image = "amazon/aws cli".into()),
                "fetch image",
            ),
            (
                error_of(|j| j.checkpoints_dir = Some("/local/dir".into())),
                "checkpoint directory",
            ),
            (
                error_of(|j| j.python_executable = "python3".into()),
                "Python executable",
            ),
            (error_of(|j| j.args = vec!["a\0b".into()]), "job argument 0"),
            (
                error_of(|j| j.script = S3Location::new("flink-s3-test", "test/job.txt").unwrap()),
                "script file name",
            ),
        ];
        for (err, field) in cases {
            assert!(
                err.to_string().starts_with(field),
                "expected an error naming {field:?}, got: {err}"
            );
        }

        // The script's location is checked when it is built, with the same error type.
        let location_errors: Vec<Error> = vec![
            S3Location::new("", "test/a.py").unwrap_err().into(),
            S3Location::new("flink-s3-test", "").unwrap_err().into(),
            S3Location::new("flink-s3-test", "test/")
                .unwrap_err()
                .into(),
        ];
        for err in location_errors {
            assert!(matches!(err, Error::InvalidName(_)), "{err}");
            assert!(err.to_string().starts_with("S3"), "{err}");
        }
    }

    fn node_selectors(deployment: &FlinkDeployment) -> [Option<&BTreeMap<String, String>>; 2] {
        let jm = deployment
            .spec
            .job_manager
            .as_ref()
            .unwrap()
            .pod_template
            .as_ref();
        let tm = deployment
            .spec
            .task_manager
            .as_ref()
            .unwrap()
            .pod_template
            .as_ref();
        [jm, tm].map(|t| t?.spec.as_ref()?.node_selector.as_ref())
    }

    #[test]
    fn both_pod_templates_select_nodes_of_the_image_platform() {
        let default = example_job().build().unwrap();
        let amd64 = BTreeMap::from([
            ("kubernetes.io/arch".to_owned(), "amd64".to_owned()),
            ("kubernetes.io/os".to_owned(), "linux".to_owned()),
        ]);
        assert_eq!(node_selectors(&default), [Some(&amd64), Some(&amd64)]);
        // The JobManager's template keeps its fetch initContainer.
        assert_eq!(init_container(&default).name, FETCH_CONTAINER);

        for (platform, arch) in [
            ("linux/arm64", "arm64"),
            ("linux/arm64/v8", "arm64"),
            ("linux/arm/v7", "arm"),
        ] {
            let deployment = PyFlinkJob {
                platform: platform.to_owned(),
                ..example_job()
            }
            .build()
            .unwrap();
            for selector in node_selectors(&deployment) {
                assert_eq!(selector.unwrap()["kubernetes.io/arch"], arch, "{platform}");
                assert_eq!(selector.unwrap()["kubernetes.io/os"], "linux", "{platform}");
            }
        }
    }

    #[test]
    fn a_platform_that_no_node_reports_is_refused() {
        for platform in [
            "amd64",
            "windows/amd64",
            "linux/x86_64",
            "linux/arm64/V8",
            "linux/arm64/v8/x",
            "linux/",
            "",
        ] {
            let err = PyFlinkJob {
                platform: platform.to_owned(),
                ..example_job()
            }
            .build()
            .unwrap_err();
            assert_eq!(
                err,
                Error::InvalidPlatform {
                    value: platform.to_owned()
                }
            );
            let shown = err.to_string();
            assert!(shown.contains("linux/amd64 or linux/arm64"), "{shown}");
        }
    }
}

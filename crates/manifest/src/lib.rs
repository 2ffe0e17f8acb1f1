//! The FlinkDeployment resource of the Apache Flink Kubernetes Operator, for PyFlink jobs
//! whose script lives in S3: its Rust type, a builder from a job description, and YAML.
//!
//! This crate does no IO and depends on no AWS or HTTP client: it validates inputs and
//! renders objects, nothing else. A project that only wants the YAML can use it alone.
//!
//! The rendered FlinkDeployment runs the script with Flink's `PythonDriver`. The JobManager
//! pod gets an initContainer that copies the script from S3 into an `emptyDir` mounted at
//! `/opt/flink/usrlib` and checks its SHA-256 before Flink starts; the checksum also sits in
//! the [`SCRIPT_SHA256_ANNOTATION`] of the resource and its pod template, so a changed script
//! changes the spec and the operator upgrades the job.
//!
//! # Example
//!
//! The example job, `python-example-s3`:
//!
//! ```
//! use flink_eks_manifest::{FlinkVersion, PyFlinkJob, S3Location, UpgradeMode, to_yaml};
//!
//! let script = S3Location::new("flink-s3-test", "test/python_demo_s3.py")?;
//! let sha256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
//! let job = PyFlinkJob::new("python-example-s3", script, sha256, "hiha2/flink-s3:latest", "1.20.0");
//! assert_eq!(job.namespace, "default");
//! assert_eq!(job.service_account, "flink");
//! assert_eq!(job.job_manager.memory, "2048m");
//! assert_eq!(job.upgrade_mode, UpgradeMode::Stateless);
//!
//! let deployment = job.build()?;
//! assert_eq!(deployment.spec.flink_version, Some(FlinkVersion::V1_20));
//! let yaml = to_yaml(&deployment)?;
//! assert!(yaml.contains("flinkVersion: v1_20"));
//! assert!(yaml.contains("fs.s3a.aws.credentials.provider: com.amazonaws.auth.WebIdentityTokenCredentialsProvider"));
//! assert!(yaml.contains("/opt/flink/usrlib/python_demo_s3.py"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Decisions
//!
//! - **TaskManagers get no copy of the script.** In application mode the JobManager runs
//!   the script (`PythonDriver` puts the `-py` file on its own `PYTHONPATH` only); Python
//!   functions defined in it are pickled into the job graph and shipped to the
//!   TaskManagers, which never import the file. Other local modules would have to be shipped
//!   with `-pyfs`/`python.files`; a single script needs nothing.
//! - **Credentials.** [`Credentials::Irsa`] sets `fs.s3a.aws.credentials.provider` to
//!   `com.amazonaws.auth.WebIdentityTokenCredentialsProvider`: the Hadoop S3 plugin's default
//!   chain has no web-identity provider. Every Flink release the CRD accepts (1.13 to 2.2)
//!   bundles Hadoop 3.x with the AWS SDK for Java v1 in `flink-s3-fs-hadoop` (the move to
//!   Hadoop 3.4 and SDK v2, FLINK-30975, is not in any of them), so the v1 class names apply
//!   to 2.x too. [`Credentials::PodIdentity`] uses
//!   `com.amazonaws.auth.EC2ContainerCredentialsProviderWrapper`, which reads
//!   `AWS_CONTAINER_CREDENTIALS_FULL_URI` and the authorization token file; that needs SDK
//!   1.12.746+, bundled from Flink 1.19.2, 1.20.1 and 2.0.0 on, so older releases are an
//!   error. [`Credentials::AccessKeySecret`] passes the keys from a Kubernetes Secret as
//!   `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY` (`secretKeyRef`) to the initContainer and
//!   to Flink's main container, and sets `com.amazonaws.auth.EnvironmentVariableCredentialsProvider`;
//!   keys never appear in the manifest, and `s3.access-key`/`s3.secret-key` (any spelling) in
//!   the user's configuration are refused.
//! - **User configuration.** The user's `flinkConfiguration` entries pass through unchanged,
//!   except that an entry for a setting the builder derives from a typed field (credential
//!   provider, S3 endpoint, state and HA directories) must agree with it: a different value
//!   is a [`Error::ConfigConflict`] naming the field to change instead.
//! - **Upgrade modes.** `savepoint` needs a checkpoint and a savepoint directory,
//!   `last-state` a checkpoint directory and Kubernetes HA, exactly as the operator's
//!   validator demands; either the typed fields or the user's configuration can give them.
//! - **The jar.** `job.jarURI` names the image's flink-python jar, but for `PythonDriver`
//!   jobs Flink does not load it from there (the operator's example calls it a placeholder).
#![warn(missing_docs)]

mod config;
mod crd;
mod error;
mod job;
mod names;
mod resources;
mod state;
mod version;
mod yaml;

pub use config::{CHECKPOINT_INTERVAL_KEY, CREDENTIALS_PROVIDER_KEY};
pub use crd::{
    DesiredJobState, FlinkDeployment, FlinkDeploymentSpec, FlinkDeploymentStatus,
    JobManagerDeploymentStatus, JobManagerSpec, JobSpec, JobState, JobStatus, LifecycleState,
    ReconciliationState, ReconciliationStatus, Resource, StatusCondition, TaskManagerInfo,
    TaskManagerSpec, UpgradeMode,
};
pub use error::Error;
pub use job::{
    ARCH_NODE_LABEL, Credentials, DEFAULT_FETCH_IMAGE, DEFAULT_NAMESPACE, DEFAULT_PLATFORM,
    DEFAULT_PYTHON_EXECUTABLE, DEFAULT_SERVICE_ACCOUNT, ENVIRONMENT_CREDENTIALS_PROVIDER,
    FETCH_CONTAINER, FETCH_SCRIPT, FIELD_MANAGER, IRSA_CREDENTIALS_PROVIDER, MAIN_CONTAINER,
    MANAGED_BY_LABEL, OS_NODE_LABEL, POD_IDENTITY_CREDENTIALS_PROVIDER, PYTHON_DRIVER_CLASS,
    PYTHON_EXECUTABLE_KEY, PyFlinkJob, SCRIPT_SHA256_ANNOTATION, USRLIB_DIR, image_pull_policy,
};
pub use names::{
    InvalidName, MAX_JOB_NAME_LEN, S3Location, S3Prefix, validate_bucket, validate_dns1123_label,
    validate_dns1123_subdomain, validate_job_name, validate_object_key,
};
pub use resources::Resources;
pub use state::{
    CHECKPOINTS_FOLDER, DEFAULT_CHECKPOINT_INTERVAL, HA_FOLDER, SAVEPOINTS_FOLDER, StateStorage,
    parse_flink_duration,
};
pub use version::{
    FlinkRelease, FlinkVersion, OLDEST_CURRENT_VERSION, OLDEST_OPERATOR_VERSION, OperatorSupport,
};
pub use yaml::{from_yaml, to_yaml};

/// The README's example, compiled as a doctest so that it stays true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

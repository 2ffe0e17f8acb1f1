//! What can be wrong with a job description, each case naming the input and the fix.

use crate::InvalidName;

/// Why a FlinkDeployment could not be built, rendered or read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A name or S3 location breaks the rules of Kubernetes or S3.
    #[error(transparent)]
    InvalidName(#[from] InvalidName),

    /// The Flink version is not one the operator's CRD accepts (1.13 to 2.2).
    #[error(
        "Flink version {value:?} is not supported: the operator's CRD accepts Flink 1.13 to 2.2 \
         (v1_13 ... v2_2); write the release as MAJOR.MINOR.PATCH, e.g. 1.20.0"
    )]
    UnknownFlinkVersion {
        /// The rejected version.
        value: String,
    },

    /// The Flink version lacks the patch number, which names the jars inside the image.
    #[error(
        "Flink version {value:?} needs its patch number (e.g. {value}.0): it names the \
         flink-python jar inside the image"
    )]
    FlinkVersionWithoutPatch {
        /// The rejected version.
        value: String,
    },

    /// The upgrade mode is not one the CRD accepts.
    #[error("upgrade mode {value:?} is not valid: use stateless, savepoint or last-state")]
    UnknownUpgradeMode {
        /// The rejected mode.
        value: String,
    },

    /// Parallelism 0, or above Flink's limit of 32768.
    #[error("parallelism {value} is not valid: give 1 to 32768 (Flink's maximum)")]
    InvalidParallelism {
        /// The rejected parallelism.
        value: u32,
    },

    /// A memory size is neither Flink memory syntax (`2048m`, `2g`) nor a Kubernetes quantity
    /// with a binary suffix (`1024Mi`, `2Gi`).
    #[error(
        "{field} {value:?} is not a memory size: write a positive whole number with a unit, \
         in Flink syntax (2048m, 2g, 1024k, 2048mb) or as a Kubernetes quantity (1024Mi, 2Gi)"
    )]
    InvalidMemory {
        /// Which memory (`JobManager memory`, `TaskManager memory`).
        field: &'static str,
        /// The rejected value.
        value: String,
    },

    /// A CPU amount is zero, negative or not a number.
    #[error("{field} {value} is not valid: CPU must be a number greater than 0, e.g. 1 or 0.5")]
    InvalidCpu {
        /// Which CPU amount (`JobManager cpu`, `TaskManager cpu`).
        field: &'static str,
        /// The rejected value.
        value: f64,
    },

    /// The script checksum is not 64 lowercase hexadecimal digits.
    #[error(
        "script SHA-256 {value:?} is not valid: give the 64 lowercase hex digits of the \
         script's SHA-256 (as `sha256sum` prints them)"
    )]
    InvalidSha256 {
        /// The rejected checksum.
        value: String,
    },

    /// The script's file name (the last segment of its S3 key) is not a Python file name
    /// that is safe in a path and a `sha256sum` line.
    #[error(
        "script file name {file_name:?} is not valid: the S3 key must end in a file name made \
         of letters, digits, '_', '-' and '.', ending in .py (e.g. test/python_demo_s3.py)"
    )]
    InvalidScriptFileName {
        /// The rejected file name.
        file_name: String,
    },

    /// An upgrade mode that carries state lacks a directory it needs.
    #[error(
        "upgrade mode {upgrade_mode} needs {what} ({config_key}): set it in the job description \
         (e.g. s3://my-bucket/flink/{example}) or choose upgrade mode stateless"
    )]
    MissingDirectory {
        /// The upgrade mode, as the CRD spells it.
        upgrade_mode: &'static str,
        /// What is missing, in words.
        what: &'static str,
        /// The Flink configuration key that carries it.
        config_key: &'static str,
        /// The last segment of an example path.
        example: &'static str,
    },

    /// A state or HA directory is not a URI with a scheme.
    #[error(
        "{field} {value:?} is not valid: give a URI with a scheme and no spaces, e.g. \
         s3://my-bucket/flink/checkpoints"
    )]
    InvalidDirectory {
        /// Which directory.
        field: &'static str,
        /// The rejected value.
        value: String,
    },

    /// A Flink configuration entry would put an S3 credential into the manifest.
    #[error(
        "flinkConfiguration key {key:?} would write an S3 credential into the manifest: keep \
         access keys in a Kubernetes Secret and use the access-key-secret credential mode \
         (Credentials::AccessKeySecret), or use IRSA"
    )]
    InlineCredential {
        /// The rejected key.
        key: String,
    },

    /// A Flink configuration entry disagrees with a setting the builder derives from a typed
    /// input.
    #[error(
        "flinkConfiguration key {key:?} = {user_value:?} conflicts with {ours_key} = \
         {ours_value:?}, which comes from the job's {field}: change {field} instead, or remove \
         the key"
    )]
    ConfigConflict {
        /// The user's key.
        key: String,
        /// The user's value.
        user_value: String,
        /// The key the builder sets.
        ours_key: &'static str,
        /// The value the builder sets.
        ours_value: String,
        /// The typed input the builder's value comes from.
        field: &'static str,
    },

    /// A Flink configuration key is empty or has whitespace or control characters.
    #[error(
        "flinkConfiguration key {key:?} is not valid: a key is non-empty and has no whitespace \
         or control characters"
    )]
    InvalidConfigKey {
        /// The rejected key.
        key: String,
    },

    /// A Flink configuration value has control characters other than tab and newline.
    #[error("flinkConfiguration value of {key:?} has control characters: remove them")]
    InvalidConfigValue {
        /// The key whose value is rejected.
        key: String,
    },

    /// The S3 endpoint is not an http(s) URL.
    #[error(
        "S3 endpoint {value:?} is not valid: give an http:// or https:// URL without spaces, \
         e.g. http://minio.storage:9000"
    )]
    InvalidEndpoint {
        /// The rejected endpoint.
        value: String,
    },

    /// An image reference is empty or has whitespace or control characters.
    #[error(
        "{field} {value:?} is not valid: give an image reference such as \
         registry.example.com/team/flink:1.20.0, without spaces"
    )]
    InvalidImage {
        /// Which image (`Flink image`, `fetch image`).
        field: &'static str,
        /// The rejected value.
        value: String,
    },

    /// A key inside a Kubernetes Secret has characters a Secret key cannot have.
    #[error(
        "{field} {value:?} is not valid: a Secret key has 1 to 253 characters, letters, digits, \
         '-', '_' and '.'"
    )]
    InvalidSecretKey {
        /// Which key (`access key field`, `secret key field`).
        field: &'static str,
        /// The rejected value.
        value: String,
    },

    /// The Python interpreter path is not an absolute path.
    #[error(
        "Python executable {value:?} is not valid: give the absolute path of python3 inside \
         the image, e.g. /usr/bin/python3"
    )]
    InvalidPythonExecutable {
        /// The rejected path.
        value: String,
    },

    /// A user argument has a NUL character, which no process argument can hold.
    #[error("job argument {index} has a NUL character: remove it")]
    InvalidArgument {
        /// Position of the argument among the user's arguments, from 0.
        index: usize,
    },

    /// EKS Pod Identity was chosen with a Flink release whose S3 plugin cannot use it.
    #[error(
        "Flink {release} cannot read EKS Pod Identity credentials: its S3 plugin bundles an AWS \
         SDK older than 1.12.746; use Flink 1.19.2, 1.20.1, 2.0.0 or later, or IRSA"
    )]
    PodIdentityUnsupported {
        /// The Flink release, e.g. `1.20.0`.
        release: String,
    },

    /// The platform is not `linux/<arch>[/<variant>]` with an architecture Kubernetes nodes
    /// report.
    #[error(
        "platform {value:?} is not valid: write linux/<arch>[/<variant>] as Docker names \
         platforms, e.g. linux/amd64 or linux/arm64 (the pods select nodes labelled \
         kubernetes.io/arch=<arch>)"
    )]
    InvalidPlatform {
        /// The rejected platform.
        value: String,
    },

    /// A checkpoint interval that is not a duration Flink accepts, or shorter than 10 ms.
    #[error(
        "checkpoint interval {value:?} is not valid: write a whole number and a unit (ms, s, \
         min, h) of at least 10ms, e.g. 60s or 5min"
    )]
    InvalidCheckpointInterval {
        /// The rejected interval.
        value: String,
    },

    /// Rendering the FlinkDeployment as YAML failed.
    #[error("could not render the FlinkDeployment as YAML: {message}")]
    RenderYaml {
        /// What the YAML serializer said.
        message: String,
    },

    /// Reading a FlinkDeployment from YAML failed.
    #[error("could not read a FlinkDeployment from YAML: {message}")]
    ParseYaml {
        /// What the YAML parser said.
        message: String,
    },
}

impl flink_eks_plan::Classify for Error {
    /// Every manifest error is about the job description: bad input, found before any call.
    fn class(&self) -> flink_eks_plan::FailureClass {
        flink_eks_plan::FailureClass::BadInput
    }
}

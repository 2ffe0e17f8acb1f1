//! The one error type of this crate.

use flink_eks_plan::{Classify, FailureClass};

/// What can go wrong before or during a local run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No Java runtime: PyFlink starts a JVM.
    #[error(
        "{reason}: PyFlink runs its mini-cluster in a JVM; install Java 11 or 17 (apt-get install openjdk-17-jre-headless, or brew install openjdk@17) or point JAVA_HOME at one"
    )]
    JavaMissing {
        /// What was tried.
        reason: String,
    },
    /// No interpreter to create the virtual environment with.
    #[error(
        "cannot run {python} to create the PyFlink environment ({reason}): install python3 (with its venv module) or name an interpreter that has apache-flink with --python"
    )]
    PythonMissing {
        /// The interpreter.
        python: String,
        /// The OS error.
        reason: String,
    },
    /// `python -m venv` or `pip install` failed.
    #[error(
        "{command} failed ({status}; its output is above): PyFlink publishes wheels for a few Python versions only (1.20: 3.8 to 3.11); install apache-flink=={version} into an interpreter yourself and name it with --python"
    )]
    Install {
        /// The command.
        command: String,
        /// Its exit status.
        status: String,
        /// The PyFlink version.
        version: String,
    },
    /// The named interpreter has no PyFlink.
    #[error(
        "{python} cannot import pyflink ({reason}): install it with `{python} -m pip install apache-flink=={version}`, or leave out --python to use the cached environment"
    )]
    NoPyFlink {
        /// The interpreter.
        python: String,
        /// What it said.
        reason: String,
        /// The job's Flink version.
        version: String,
    },
    /// A runtime's configuration file cannot be read.
    #[error("the runtime's {file} cannot be read: {reason}")]
    BaseConfig {
        /// The file.
        file: String,
        /// The parser's message.
        reason: String,
    },
    /// An entry that Flink's legacy configuration format cannot hold.
    #[error(
        "key flink.\"{key}\": its value has a line break, which {file} (this Flink release's configuration file) cannot hold"
    )]
    UnwritableEntry {
        /// The key.
        key: String,
        /// The configuration file.
        file: String,
    },
    /// A file or process of the run failed.
    #[error("{what}: {reason}")]
    Io {
        /// What was being done.
        what: String,
        /// The OS error.
        reason: String,
    },
    /// The Docker engine failed or refused a request.
    #[error("Docker: {what}: {reason}")]
    Docker {
        /// What was being done.
        what: String,
        /// The engine's answer.
        reason: String,
    },
    /// The image is not in the local Docker engine.
    #[error(
        "the image {image} is not in the local Docker engine: build it with `cargo xtask image` or pull it with `docker pull {image}`"
    )]
    ImageMissing {
        /// The image reference.
        image: String,
    },
    /// The job exited non-zero.
    #[error("the job failed (exit {code}){}{}", summary.as_ref().map(|s| format!(": {s}")).unwrap_or_default(), if *s3_plugin_missing { "\nthe job reads or writes s3://, and PyPI's apache-flink has no S3 file system plugin: run it in the job's image with --image (it has the plugin), or point it at a local file" } else { "" })]
    JobFailed {
        /// The exit code (or the signal, negative).
        code: i32,
        /// The exception, the traceback's last frames, the Java root cause.
        summary: Option<String>,
        /// Whether the failure is Flink's "no file system for scheme 's3'".
        s3_plugin_missing: bool,
    },
}

impl Classify for Error {
    fn class(&self) -> FailureClass {
        match self {
            Error::JavaMissing { .. }
            | Error::PythonMissing { .. }
            | Error::NoPyFlink { .. }
            | Error::UnwritableEntry { .. }
            | Error::ImageMissing { .. } => FailureClass::BadInput,
            Error::Install { .. } | Error::Docker { .. } => FailureClass::Remote,
            Error::JobFailed { .. } => FailureClass::JobFailed,
            Error::BaseConfig { .. } | Error::Io { .. } => FailureClass::Remote,
        }
    }
}

pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let what = what.into();
    move |err| Error::Io {
        what,
        reason: err.to_string(),
    }
}

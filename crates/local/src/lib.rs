//! Run a PyFlink script on this machine the way the Flink Kubernetes Operator would run it:
//! the same PyFlink version, the same arguments, the deployment's own `flinkConfiguration`
//! (minus what only means something on a cluster), in a local mini-cluster, in seconds.
//!
//! [`run_local`] uses PyFlink from PyPI in a virtual environment cached per Flink release (or
//! an interpreter you name), checks Java, writes a configuration directory of its own
//! (`FLINK_CONF_DIR`) and runs the script as the operator's JobManager does, through Flink's
//! command line (`flink run --target local -py`, so the whole configuration applies), with its
//! interpreter first on `PATH`, streaming its output as [`Event`]s. An unbounded job is stopped [`RunOptions::duration`] after Flink reports it submitted; a failed
//! one is an [`Error::JobFailed`] naming the exception and the traceback's last frames.
//! [`run_in_image`] runs the same script inside the job's image with Docker, where Flink's S3
//! plugin is installed, with the local AWS credentials in its environment.
//!
//! The pure parts are public too: [`local_configuration`] (which keys are left out and why),
//! [`config_file_name`], [`render_config`], [`venv_dir`], [`failure_summary`],
//! [`s3_plugin_missing`].
//!
//! ```
//! use std::collections::BTreeMap;
//! use flink_eks_local::{Dropped, Runtime, local_configuration};
//!
//! let deployment = BTreeMap::from([
//!     ("high-availability.type".to_owned(), "kubernetes".to_owned()),
//!     ("state.checkpoints.dir".to_owned(), "s3://flink-s3-test/checkpoints".to_owned()),
//!     ("execution.checkpointing.interval".to_owned(), "30 s".to_owned()),
//! ]);
//! let runtime = Runtime::Local { python: "/venv/bin/python".to_owned() };
//! let conf = local_configuration(BTreeMap::new(), &deployment, 1, &runtime);
//! assert_eq!(conf.entries["execution.checkpointing.interval"], "30 s");
//! assert_eq!(conf.entries["parallelism.default"], "1");
//! assert!(conf.dropped.contains(&("state.checkpoints.dir".to_owned(), Dropped::ClusterState)));
//! ```

#![warn(missing_docs)]

mod conf;
mod env;
mod error;
mod image;
mod output;
mod run;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use flink_eks_manifest::FlinkRelease;
use flink_eks_plan::Progress;

pub use conf::{
    CONFIG_YAML, Dropped, LEGACY_CONFIG_YAML, LocalConfiguration, PARALLELISM_KEY,
    PYTHON_CLIENT_EXECUTABLE_KEY, PYTHON_EXECUTABLE_KEY, Runtime, config_file_name, dropped,
    local_configuration, parse_config, render_config,
};
pub use env::{STAMP_FILE, path_with, requirement, venv_dir, venv_python};
pub use error::Error;
pub use image::{CONF_MOUNT, ImageJob, run_in_image};
pub use output::{SUMMARY_FRAMES, failure_summary, s3_plugin_missing};
pub use run::{check_java, ensure_venv, run_local};

/// The job as the cluster would run it.
#[derive(Debug, Clone)]
pub struct LocalJob {
    /// The script on this machine.
    pub script: PathBuf,
    /// The job's arguments, after the script.
    pub args: Vec<String>,
    /// The job's Flink release: PyFlink's version.
    pub release: FlinkRelease,
    /// The deployment's `flinkConfiguration`, as the FlinkDeployment carries it.
    pub flink_configuration: BTreeMap<String, String>,
    /// The job's parallelism (`parallelism.default`, as the operator sets it).
    pub parallelism: u32,
}

/// Which Python runs the job locally.
#[derive(Debug, Clone)]
pub enum Python {
    /// A virtual environment per Flink release under this folder, created on first use.
    Cached {
        /// The cache folder.
        cache_dir: PathBuf,
    },
    /// An interpreter that already has `apache-flink`.
    Interpreter(PathBuf),
}

/// How long, and where the run writes its files.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// An unbounded job is stopped this long after Flink reports it submitted (a bounded one
    /// usually ends sooner).
    pub duration: Duration,
    /// The run's own folder: its configuration directory is `<work_dir>/conf`.
    pub work_dir: PathBuf,
}

/// Which output stream a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// Standard output: what `print()` sinks write.
    Stdout,
    /// Standard error.
    Stderr,
}

/// What a run reports as it goes.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Event {
    /// The Java runtime found (`java -version`'s first line).
    Java {
        /// Its version line.
        version: String,
    },
    /// The virtual environment is being created and `apache-flink` installed (once per
    /// release).
    Installing {
        /// The environment.
        venv: PathBuf,
        /// `apache-flink==<release>`.
        requirement: String,
    },
    /// The cached virtual environment is reused.
    Reusing {
        /// The environment.
        venv: PathBuf,
    },
    /// The interpreter and the PyFlink version it imports.
    PyFlink {
        /// The interpreter.
        python: PathBuf,
        /// PyFlink's version.
        version: String,
    },
    /// The interpreter's PyFlink is not the job's release.
    VersionMismatch {
        /// What the interpreter has.
        found: String,
        /// What the deployment runs.
        wanted: String,
    },
    /// A key of the deployment's configuration left out of the local run.
    Dropped {
        /// The key.
        key: String,
        /// Why.
        reason: &'static str,
    },
    /// The job started (the command, without any credential).
    Started {
        /// What runs.
        command: String,
    },
    /// No AWS credentials were found for the image: the job runs without them.
    NoCredentials {
        /// Why.
        reason: String,
    },
    /// AWS credentials are passed to the container (their values are never shown).
    Credentials {
        /// The environment variables that carry them.
        variables: Vec<String>,
    },
    /// One line of the job's output (or of the installation's).
    Output {
        /// Which stream.
        stream: Stream,
        /// The line.
        line: String,
    },
}

/// How a run ended without error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    /// How long the job ran: since Flink reported it submitted, when it did.
    pub elapsed: Duration,
    /// Lines on standard output: the records of `print()` sinks and the script's own prints.
    pub stdout_lines: u64,
    /// Whether the job was stopped after the duration (an unbounded job), rather than ending.
    pub stopped: bool,
}

/// The line Flink's command line prints once the job is submitted: a run's duration counts
/// from there, so that the JVM's start does not eat into it.
pub(crate) const SUBMITTED: &str = "Job has been submitted with JobID";

/// How long a job may take to be submitted (the JVM's and the mini-cluster's start) before
/// its duration starts anyway.
pub(crate) const STARTUP_LIMIT: Duration = Duration::from_secs(120);

/// When a run is stopped: `duration` after the job's submission (or after the start, for a
/// launcher that does not report it).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock {
    started: std::time::Instant,
    submitted: Option<std::time::Instant>,
    ended: Option<std::time::Instant>,
    from_submission: bool,
    duration: Duration,
}

impl Clock {
    pub(crate) fn from_submission(duration: Duration) -> Clock {
        Clock {
            started: std::time::Instant::now(),
            submitted: None,
            ended: None,
            from_submission: true,
            duration,
        }
    }

    pub(crate) fn from_start(duration: Duration) -> Clock {
        Clock {
            from_submission: false,
            ..Clock::from_submission(duration)
        }
    }

    /// Notes the submission line.
    pub(crate) fn saw(&mut self, line: &str) {
        if self.from_submission && self.submitted.is_none() && line.contains(SUBMITTED) {
            self.submitted = Some(std::time::Instant::now());
        }
    }

    pub(crate) fn deadline(&self) -> std::time::Instant {
        match (self.from_submission, self.submitted) {
            (true, Some(submitted)) => submitted + self.duration,
            (true, None) => self.started + STARTUP_LIMIT + self.duration,
            (false, _) => self.started + self.duration,
        }
    }

    /// Notes the end of the run (the output's end, or the deadline): what follows is the
    /// shutdown.
    pub(crate) fn end(&mut self) {
        self.ended.get_or_insert_with(std::time::Instant::now);
    }

    /// How long the job ran: since its submission when that was seen, until its end.
    pub(crate) fn ran(&self) -> Duration {
        let end = self.ended.unwrap_or_else(std::time::Instant::now);
        end.saturating_duration_since(self.submitted.unwrap_or(self.started))
    }
}

/// The output kept for the failure summary: everything up to a bound, then the end.
#[derive(Debug, Default)]
pub(crate) struct OutputLog {
    stdout_lines: u64,
    lines: std::collections::VecDeque<String>,
}

impl OutputLog {
    /// The lines kept: tracebacks sit at the end, but a user function's traceback comes a
    /// few hundred lines before the client's.
    const KEPT: usize = 5000;

    pub(crate) fn push(&mut self, stream: Stream, line: &str) {
        if stream == Stream::Stdout {
            self.stdout_lines += 1;
        }
        if self.lines.len() == Self::KEPT {
            self.lines.pop_front();
        }
        self.lines.push_back(line.to_owned());
    }

    pub(crate) fn outcome(&self, clock: &Clock, stopped: bool) -> Outcome {
        Outcome {
            elapsed: clock.ran(),
            stdout_lines: self.stdout_lines,
            stopped,
        }
    }

    pub(crate) fn failure(&self, code: i32) -> Error {
        let text: Vec<&str> = self.lines.iter().map(String::as_str).collect();
        let text = text.join("\n");
        Error::JobFailed {
            code,
            summary: failure_summary(&text),
            s3_plugin_missing: s3_plugin_missing(&text),
        }
    }
}

/// Writes the run's configuration directory: the runtime's own `conf/` files (logging
/// settings, its defaults) copied, then its configuration file rewritten with
/// [`local_configuration`]. Reports each key left out.
pub(crate) fn write_conf_dir(
    job: &LocalJob,
    runtime: &Runtime,
    base_dir: &Path,
    conf_dir: &Path,
    progress: &dyn Progress<Event>,
) -> Result<(), Error> {
    use crate::error::io;
    if conf_dir.exists() {
        std::fs::remove_dir_all(conf_dir)
            .map_err(io(format!("cannot clear {}", conf_dir.display())))?;
    }
    std::fs::create_dir_all(conf_dir)
        .map_err(io(format!("cannot create {}", conf_dir.display())))?;
    if let Ok(entries) = std::fs::read_dir(base_dir) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_file()) {
                let to = conf_dir.join(entry.file_name());
                std::fs::copy(entry.path(), &to)
                    .map_err(io(format!("cannot copy {}", entry.path().display())))?;
            }
        }
    }
    let file = config_file_name(&job.release, conf_dir.join(LEGACY_CONFIG_YAML).exists());
    let base = match std::fs::read_to_string(conf_dir.join(file)) {
        Ok(text) => parse_config(file, &text)?,
        Err(_) => BTreeMap::new(),
    };
    let conf = local_configuration(base, &job.flink_configuration, job.parallelism, runtime);
    for (key, reason) in &conf.dropped {
        progress.event(&Event::Dropped {
            key: key.clone(),
            reason: reason.reason(),
        });
    }
    let path = conf_dir.join(file);
    std::fs::write(&path, render_config(file, &conf.entries)?)
        .map_err(io(format!("cannot write {}", path.display())))
}

/// The README's example, compiled as a doctest so that it stays true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

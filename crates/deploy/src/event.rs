//! What the pipeline reports while it works. The library reports; the program renders
//! (`cargo xtask` prints lines and progress bars on stderr).

use std::time::Duration;

use crate::graph::Step;

/// One thing that happened, in order. Received through `&dyn Progress<Event>`.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Event {
    /// A step with operations to carry out started.
    StepStarted(Step),
    /// A step finished.
    StepFinished {
        /// Which step.
        step: Step,
        /// What it did, in a few words.
        summary: String,
        /// How long it took.
        elapsed: Duration,
    },
    /// A line about a step.
    Note {
        /// Which step.
        step: Step,
        /// The line.
        text: String,
    },
    /// Something the user should act on, though the run goes on.
    Warning(String),
    /// The image build and push.
    Image(flink_eks_image_builder::ProgressEvent),
    /// The IAM and service account changes, and the waits for IAM to show them.
    Irsa(flink_eks_irsa::Event),
    /// The FlinkDeployment's states while it is watched.
    Watch {
        /// The watch's event.
        event: flink_eks_submit::WatchEvent,
        /// Since the submit step started.
        elapsed: Duration,
    },
    /// The JobManager's last log lines after a watch.
    LogTail {
        /// The pod the lines come from.
        pod: String,
        /// The lines.
        lines: Vec<String>,
    },
}

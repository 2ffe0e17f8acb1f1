//! What `cargo xtask` shows of the pipeline's events: one line per step with its elapsed
//! time, the operations as they start, warnings, the watched states, and the image build's
//! progress bars. Nothing but errors and results with `--quiet`.

use std::time::Duration;

use flink_eks_deploy::{Event, Step};
use flink_eks_plan::Progress;

use crate::render_image::ImageProgress;

/// Renders [`Event`]s on stderr.
pub(crate) struct Renderer {
    pub(crate) quiet: bool,
    image: Option<ImageProgress>,
}

impl Renderer {
    pub(crate) fn new(quiet: bool) -> Renderer {
        Renderer {
            quiet,
            image: (!quiet).then(ImageProgress::new),
        }
    }

    pub(crate) fn line(&self, text: &str) {
        if !self.quiet {
            eprintln!("{text}");
        }
    }

    pub(crate) fn step_line(&self, step: Step, text: &str) {
        self.line(&format!("[{step:<8}] {text}"));
    }

    fn step_done(&self, step: Step, text: &str, elapsed: Duration) {
        self.line(&format!(
            "[{step:<8}] {text} ({:.1}s)",
            elapsed.as_secs_f64()
        ));
    }
}

impl Progress<Event> for Renderer {
    fn event(&self, event: &Event) {
        match event {
            Event::StepStarted(step) => self.step_line(*step, "started"),
            Event::StepFinished {
                step,
                summary,
                elapsed,
            } => self.step_done(*step, summary, *elapsed),
            Event::Note { step, text } => self.step_line(*step, text),
            // Warnings are shown even with --quiet: they ask the user to act.
            Event::Warning(text) => eprintln!("warning: {text}"),
            Event::Image(event) => {
                if let Some(image) = &self.image {
                    image.event(event);
                }
            }
            Event::Irsa(event) => self.irsa(event),
            // The operator's warnings are shown even with --quiet, as other warnings are.
            Event::Watch {
                event:
                    event @ (flink_eks_submit::WatchEvent::Warning { .. }
                    | flink_eks_submit::WatchEvent::Retrying { .. }),
                elapsed,
            } => eprintln!("  {event} ({elapsed:.1?})"),
            Event::Watch { event, elapsed } => self.line(&format!("  {event} ({elapsed:.1?})")),
            Event::LogTail { pod, lines } => {
                self.line(&format!(
                    "JobManager log ({pod}, last {} lines):",
                    lines.len()
                ));
                for line in lines {
                    self.line(&format!("  {line}"));
                }
            }
            _ => {}
        }
    }
}

impl Renderer {
    fn irsa(&self, event: &flink_eks_irsa::Event) {
        use flink_eks_irsa::Event;
        match event {
            Event::Started(op) => self.step_line(Step::Irsa, &op.to_string()),
            Event::Waiting {
                what,
                attempt,
                delay,
                ..
            } => self.step_line(
                Step::Irsa,
                &format!(
                    "waiting for IAM to show {what} (attempt {attempt}, next look in {delay:.1?})"
                ),
            ),
            Event::Warning(text) => eprintln!("warning: {text}"),
            _ => {}
        }
    }
}

/// The last savepoint and checkpoint the operator knows of, as lines under `status`.
pub(crate) fn state_lines(state: &flink_eks_submit::StateInfo) -> String {
    let record = |r: Option<&flink_eks_submit::SnapshotRecord>| match r {
        None => "none the operator knows of".to_owned(),
        Some(r) => {
            let mut line = r
                .path
                .clone()
                .unwrap_or_else(|| "(no path recorded)".to_owned());
            let about: Vec<&str> = [r.trigger.as_deref(), r.at.as_deref()]
                .into_iter()
                .flatten()
                .collect();
            if !about.is_empty() {
                line.push_str(&format!(" ({})", about.join(", ")));
            }
            line
        }
    };
    let mut text = format!(
        "  last savepoint: {}\n  last checkpoint: {}\n",
        record(state.last_savepoint.as_ref()),
        record(state.last_checkpoint.as_ref())
    );
    if let Some(path) = &state.upgrade_savepoint_path {
        text.push_str(&format!("  started from:   {path}\n"));
    }
    text
}

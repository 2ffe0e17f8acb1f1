//! Typed progress events. They reach the caller through a
//! [`flink_eks_plan::Progress<ProgressEvent>`]; rendering them is the program's job.

use serde::Serialize;

/// One thing that happened while applying an [`ImagePlan`](crate::ImagePlan), in order.
///
/// Reported through `&dyn flink_eks_plan::Progress<ProgressEvent>`: any
/// `Fn(&ProgressEvent) + Send + Sync` closure, or [`flink_eks_plan::Silent`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ProgressEvent {
    /// The build starts from this context.
    ContextReady {
        /// `sha256:<hex>` of the context.
        digest: String,
        /// Size of the tar.gz.
        bytes: usize,
    },
    /// The plan found this image in the registry: nothing is built or pushed.
    UpToDate {
        /// `repository:tag`.
        image: String,
    },
    /// The (user-chosen) tag exists in the registry but holds other content; it is replaced.
    TagHoldsOtherContent {
        /// `repository:tag`.
        image: String,
        /// The context digest recorded on the remote image, if any.
        remote_digest: Option<String>,
    },
    /// The base image is already in the local daemon.
    BaseImagePresent {
        /// The base image reference.
        image: String,
    },
    /// Pulling the base image.
    PullingBase {
        /// The base image reference.
        image: String,
    },
    /// A status line of the base image pull.
    PullStatus {
        /// The line, for example `Pull complete`.
        line: String,
    },
    /// The builder started a Dockerfile step.
    BuildStep {
        /// For example `Step 3/5 : COPY ...`.
        step: String,
    },
    /// A line of output of the current step (ANSI codes removed).
    BuildOutput {
        /// The line.
        line: String,
    },
    /// The image is built and tagged.
    Built {
        /// `repository:tag`.
        image: String,
        /// The local image ID.
        id: String,
    },
    /// Pushing starts.
    PushStarted {
        /// `repository:tag`.
        image: String,
    },
    /// A layer is queued for upload.
    LayerPreparing {
        /// The layer's short ID.
        layer: String,
    },
    /// Bytes of a layer uploaded so far.
    LayerProgress {
        /// The layer's short ID.
        layer: String,
        /// Bytes sent.
        current: u64,
        /// Bytes in all (the daemon's estimate; `current` may pass it).
        total: u64,
    },
    /// A layer is in the registry.
    LayerDone {
        /// The layer's short ID.
        layer: String,
        /// `true` when the registry already had it and nothing was uploaded.
        already_existed: bool,
    },
    /// The image is pushed.
    Pushed {
        /// `repository:tag`.
        image: String,
        /// The manifest digest the registry stored, when the daemon reports it.
        manifest_digest: Option<String>,
    },
}

/// Turns the builder's `stream` fragments into whole lines without ANSI escape codes.
#[derive(Debug, Default)]
pub(crate) struct LineAssembler {
    pending: String,
}

impl LineAssembler {
    /// Adds a fragment; returns the lines it completed.
    pub(crate) fn push(&mut self, fragment: &str) -> Vec<String> {
        self.pending.push_str(fragment);
        let mut lines = Vec::new();
        while let Some(newline) = self.pending.find('\n') {
            let line: String = self.pending.drain(..=newline).collect();
            lines.push(clean_line(&line));
        }
        lines
    }

    /// The unfinished last line, if any.
    pub(crate) fn finish(&mut self) -> Option<String> {
        let rest = std::mem::take(&mut self.pending);
        let line = clean_line(&rest);
        (!line.is_empty()).then_some(line)
    }
}

/// Removes ANSI escape sequences, carriage-return overwrites and trailing whitespace.
pub(crate) fn clean_line(line: &str) -> String {
    let stripped = strip_ansi(line);
    // With `\r`, a terminal shows only what follows the last one.
    let visible = stripped
        .trim_end_matches(['\n', '\r'])
        .rsplit('\r')
        .next()
        .unwrap_or_default();
    visible.trim_end().to_owned()
}

/// Removes ANSI escape sequences (CSI `ESC [ ... final`, OSC `ESC ] ... BEL/ST`, and
/// two-character escapes).
pub(crate) fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\u{1b}' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('[') => {
                // Parameters and intermediates, then one final byte in @..~.
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
            Some(']') => {
                while let Some(c) = chars.next() {
                    if c == '\u{7}' {
                        break;
                    }
                    if c == '\u{1b}' && chars.peek() == Some(&'\\') {
                        chars.next();
                        break;
                    }
                }
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fragments_become_lines() {
        let mut lines = LineAssembler::default();
        assert!(lines.push("Step 1/2 : FROM base").is_empty());
        assert_eq!(lines.push("\n"), ["Step 1/2 : FROM base"]);
        assert_eq!(
            lines.push(" ---> abc\nStep 2/2 : RUN x\n ---> Run"),
            [" ---> abc", "Step 2/2 : RUN x"]
        );
        assert_eq!(lines.finish().as_deref(), Some(" ---> Run"));
        assert_eq!(lines.finish(), None);
    }

    #[test]
    fn ansi_codes_and_carriage_returns_are_removed() {
        assert_eq!(
            clean_line("\u{1b}[1;31merror:\u{1b}[0m pip not found\r\n"),
            "error: pip not found"
        );
        assert_eq!(clean_line("10%\r50%\r100% done"), "100% done");
        assert_eq!(strip_ansi("\u{1b}]0;title\u{7}text"), "text");
        assert_eq!(strip_ansi("\u{1b}[?25lhidden cursor"), "hidden cursor");
        assert_eq!(strip_ansi("plain"), "plain");
    }

    #[test]
    fn closures_report_events_and_events_serialize_with_their_name() {
        let seen = std::sync::Mutex::new(Vec::new());
        let closure = |event: &ProgressEvent| seen.lock().unwrap().push(event.clone());
        let progress: &dyn flink_eks_plan::Progress<ProgressEvent> = &closure;
        progress.event(&ProgressEvent::UpToDate {
            image: "r:t".into(),
        });
        let seen = seen.into_inner().unwrap();
        assert_eq!(seen.len(), 1);
        let json = serde_json::to_string(&seen[0]).unwrap();
        assert_eq!(json, r#"{"event":"up_to_date","image":"r:t"}"#);
    }
}

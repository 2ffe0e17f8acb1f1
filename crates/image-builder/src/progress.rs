//! Typed progress events, the trait that receives them, and a default stderr renderer.

use std::collections::HashMap;
use std::io::IsTerminal as _;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

/// One thing that happened while making the image, in order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ProgressEvent {
    /// The build context is packed.
    ContextReady {
        /// `sha256:<hex>` of the context.
        digest: String,
        /// Size of the tar.gz.
        bytes: usize,
    },
    /// Asking the registry whether the image is already there.
    CheckingRegistry {
        /// `repository:tag`.
        image: String,
    },
    /// The registry already holds this image: nothing is built or pushed.
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

/// Receives progress events. Implemented for every `FnMut(&ProgressEvent) + Send` closure.
pub trait ProgressSink: Send {
    /// Called once per event, in order.
    fn event(&mut self, event: &ProgressEvent);
}

impl<F> ProgressSink for F
where
    F: FnMut(&ProgressEvent) + Send,
{
    fn event(&mut self, event: &ProgressEvent) {
        self(event);
    }
}

/// Discards every event.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoProgress;

impl ProgressSink for NoProgress {
    fn event(&mut self, _event: &ProgressEvent) {}
}

/// Renders events on stderr: a line per step and per notable event, and on a terminal a bar
/// per layer while pushing (one line per layer when stderr is not a terminal).
pub struct StderrProgress {
    multi: Option<MultiProgress>,
    bars: HashMap<String, ProgressBar>,
}

impl std::fmt::Debug for StderrProgress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StderrProgress")
            .field("terminal", &self.multi.is_some())
            .finish_non_exhaustive()
    }
}

impl Default for StderrProgress {
    fn default() -> Self {
        Self::new()
    }
}

impl StderrProgress {
    /// A renderer that draws bars when stderr is a terminal.
    pub fn new() -> Self {
        let multi = std::io::stderr()
            .is_terminal()
            .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
        Self {
            multi,
            bars: HashMap::new(),
        }
    }

    fn line(&self, text: &str) {
        match &self.multi {
            // Bars are cleared while the line is written, so long (wrapping) lines are safe.
            Some(multi) => multi.suspend(|| eprintln!("{text}")),
            None => eprintln!("{text}"),
        }
    }

    fn bar(&mut self, layer: &str) -> Option<&ProgressBar> {
        let multi = self.multi.as_ref()?;
        let bar = self.bars.entry(layer.to_owned()).or_insert_with(|| {
            let bar = multi.add(ProgressBar::new(0));
            bar.set_style(
                ProgressStyle::with_template(
                    "  {prefix} [{bar:30}] {bytes}/{total_bytes} {wide_msg}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            bar.set_prefix(layer.to_owned());
            bar.set_message("waiting");
            bar
        });
        Some(bar)
    }
}

impl ProgressSink for StderrProgress {
    fn event(&mut self, event: &ProgressEvent) {
        match event {
            ProgressEvent::ContextReady { digest, bytes } => {
                self.line(&format!("build context {digest} ({bytes} bytes)"));
            }
            ProgressEvent::CheckingRegistry { image } => {
                self.line(&format!("checking the registry for {image}"));
            }
            ProgressEvent::UpToDate { image } => self.line(&format!(
                "{image} is already in the registry: nothing to build or push"
            )),
            ProgressEvent::TagHoldsOtherContent {
                image,
                remote_digest,
            } => self.line(&format!(
                "{image} exists in the registry with other content ({}): rebuilding",
                remote_digest
                    .as_deref()
                    .unwrap_or("no context digest label")
            )),
            ProgressEvent::BaseImagePresent { image } => {
                self.line(&format!("base image {image} is present locally"));
            }
            ProgressEvent::PullingBase { image } => {
                self.line(&format!("pulling base image {image}"))
            }
            ProgressEvent::PullStatus { line } => self.line(&format!("  {line}")),
            ProgressEvent::BuildStep { step } => self.line(step),
            ProgressEvent::BuildOutput { line } => self.line(&format!("  {line}")),
            ProgressEvent::Built { image, id } => self.line(&format!("built {image} ({id})")),
            ProgressEvent::PushStarted { image } => self.line(&format!("pushing {image}")),
            ProgressEvent::LayerPreparing { layer } => {
                if self.bar(layer).is_none() {
                    self.line(&format!("  layer {layer}: preparing"));
                }
            }
            ProgressEvent::LayerProgress {
                layer,
                current,
                total,
            } => {
                if let Some(bar) = self.bar(layer) {
                    bar.set_length((*total).max(*current));
                    bar.set_position(*current);
                    bar.set_message("pushing");
                }
            }
            ProgressEvent::LayerDone {
                layer,
                already_existed,
            } => {
                let what = if *already_existed {
                    "already in the registry"
                } else {
                    "pushed"
                };
                // A finished layer becomes a plain line: bars only live while bytes move.
                let size = match self.bars.remove(layer) {
                    Some(bar) => {
                        let size = bar.length().filter(|len| *len > 0 && !*already_existed);
                        bar.finish_and_clear();
                        if let Some(multi) = &self.multi {
                            multi.remove(&bar);
                        }
                        size
                    }
                    None => None,
                };
                match size {
                    Some(bytes) => self.line(&format!(
                        "  layer {layer}: {what} ({})",
                        indicatif::HumanBytes(bytes)
                    )),
                    None => self.line(&format!("  layer {layer}: {what}")),
                }
            }
            ProgressEvent::Pushed {
                image,
                manifest_digest,
            } => {
                for (_, bar) in self.bars.drain() {
                    bar.finish();
                }
                match manifest_digest {
                    Some(digest) => self.line(&format!("pushed {image} ({digest})")),
                    None => self.line(&format!("pushed {image}")),
                }
            }
        }
    }
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
    fn closures_are_sinks_and_events_serialize_with_their_name() {
        let mut seen = Vec::new();
        {
            let mut sink = |event: &ProgressEvent| seen.push(event.clone());
            sink.event(&ProgressEvent::UpToDate {
                image: "r:t".into(),
            });
        }
        assert_eq!(seen.len(), 1);
        let json = serde_json::to_string(&seen[0]).unwrap();
        assert_eq!(json, r#"{"event":"up_to_date","image":"r:t"}"#);
    }
}

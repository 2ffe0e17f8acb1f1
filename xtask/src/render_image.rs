//! Draws the image step's progress on stderr: a line per step and per notable event, and on
//! a terminal a bar per layer while pushing (one line per layer when stderr is not one).

use std::collections::HashMap;
use std::io::IsTerminal as _;
use std::sync::Mutex;

use flink_eks_image_builder::ProgressEvent;
use flink_eks_plan::Progress;
use indicatif::{HumanBytes, MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Renders [`ProgressEvent`]s on stderr. Shared (`&self`) like every [`Progress`]: the bars
/// live behind a mutex.
pub(crate) struct ImageProgress {
    /// Present when stderr is a terminal: bars are drawn there.
    multi: Option<MultiProgress>,
    /// The bar of each layer being pushed.
    bars: Mutex<HashMap<String, ProgressBar>>,
}

impl std::fmt::Debug for ImageProgress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImageProgress")
            .field("terminal", &self.multi.is_some())
            .finish_non_exhaustive()
    }
}

impl Default for ImageProgress {
    fn default() -> Self {
        Self::new()
    }
}

impl ImageProgress {
    /// A renderer that draws bars when stderr is a terminal.
    pub(crate) fn new() -> Self {
        let multi = std::io::stderr()
            .is_terminal()
            .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
        Self {
            multi,
            bars: Mutex::new(HashMap::new()),
        }
    }

    fn line(&self, text: &str) {
        match &self.multi {
            // Bars are cleared while the line is written, so long (wrapping) lines are safe.
            Some(multi) => multi.suspend(|| eprintln!("{text}")),
            None => eprintln!("{text}"),
        }
    }

    fn bars(&self) -> std::sync::MutexGuard<'_, HashMap<String, ProgressBar>> {
        // A renderer that panicked mid-event still holds usable bars.
        self.bars
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The bar of `layer`, made on first use; `None` when stderr is not a terminal.
    fn bar(&self, layer: &str) -> Option<ProgressBar> {
        let multi = self.multi.as_ref()?;
        let mut bars = self.bars();
        let bar = bars.entry(layer.to_owned()).or_insert_with(|| {
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
        Some(bar.clone())
    }

    /// Ends the bar of a finished layer; returns its size when bytes were sent.
    fn finish_layer(&self, layer: &str, already_existed: bool) -> Option<u64> {
        let bar = self.bars().remove(layer)?;
        let size = bar.length().filter(|len| *len > 0 && !already_existed);
        bar.finish_and_clear();
        if let Some(multi) = &self.multi {
            multi.remove(&bar);
        }
        size
    }
}

impl Progress<ProgressEvent> for ImageProgress {
    fn event(&self, event: &ProgressEvent) {
        match event {
            ProgressEvent::ContextReady { digest, bytes } => {
                self.line(&format!("build context {digest} ({bytes} bytes)"));
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
                self.line(&format!("pulling base image {image}"));
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
                match self.finish_layer(layer, *already_existed) {
                    Some(bytes) => {
                        self.line(&format!("  layer {layer}: {what} ({})", HumanBytes(bytes)));
                    }
                    None => self.line(&format!("  layer {layer}: {what}")),
                }
            }
            ProgressEvent::Pushed {
                image,
                manifest_digest,
            } => {
                for (_, bar) in self.bars().drain() {
                    bar.finish();
                }
                match manifest_digest {
                    Some(digest) => self.line(&format!("pushed {image} ({digest})")),
                    None => self.line(&format!("pushed {image}")),
                }
            }
            // Events added to the crate later are shown by their name until drawn here.
            other => self.line(&format!("{other:?}")),
        }
    }
}

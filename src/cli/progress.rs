//! Renders the engine's pull/push progress events: one indicatif bar per
//! layer on a terminal, plain lines (one per status change) otherwise.

use std::collections::HashMap;
use std::io::IsTerminal;

use bollard_stubs::models::CreateImageInfo;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::ui;

/// A line with a status and no bar: `ID: Waiting`, `TAG: Pulling from X`.
fn status_style() -> ProgressStyle {
    ProgressStyle::with_template("{prefix:.bold}: {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
}

/// A line with a status and a bar of bytes.
fn bar_style() -> ProgressStyle {
    ProgressStyle::with_template(
        "{prefix:.bold}: {msg:<18} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ")
}

/// Draws progress for one pull or push.
pub struct Progress {
    quiet: bool,
    multi: Option<MultiProgress>,
    bars: HashMap<String, ProgressBar>,
    last: HashMap<String, String>,
}

impl Progress {
    pub fn new(quiet: bool) -> Self {
        let multi = (!quiet && std::io::stderr().is_terminal())
            .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
        Self {
            quiet,
            multi,
            bars: HashMap::new(),
            last: HashMap::new(),
        }
    }

    /// Shows one event.
    pub fn event(&mut self, e: &CreateImageInfo) {
        if self.quiet {
            return;
        }
        let status = e.status.clone().unwrap_or_default();
        let Some(id) = e.id.clone().filter(|i| !i.is_empty()) else {
            if !status.is_empty() {
                self.line(&status);
            }
            return;
        };
        let (current, total) = e
            .progress_detail
            .as_ref()
            .map(|d| (d.current.unwrap_or(0), d.total.unwrap_or(0)))
            .unwrap_or((0, 0));
        if let Some(multi) = &self.multi {
            let bar = self.bars.entry(id.clone()).or_insert_with(|| {
                let bar = multi.add(ProgressBar::new(0));
                bar.set_style(status_style());
                bar.set_prefix(id.clone());
                bar
            });
            let done =
                status == "Pull complete" || status.ends_with("exists") || status == "Pushed";
            if total > 0 && !done {
                if bar.length() == Some(0) {
                    bar.set_style(bar_style());
                }
                bar.set_length(u64::try_from(total).unwrap_or(0));
                bar.set_position(u64::try_from(current).unwrap_or(0));
            }
            bar.set_message(status.clone());
            if done {
                // As `docker pull` leaves it: `ID: Pull complete`.
                bar.set_style(status_style());
                bar.finish();
            }
        } else if self.last.get(&id) != Some(&status) {
            self.last.insert(id.clone(), status.clone());
            ui::info(&format!("{id}: {status}"));
        }
    }

    /// A line without an ID. Before any bar it goes above them; after bars
    /// (the summary: `Digest:`, `Status:`) the bars are left as they are
    /// and it goes below them, with what follows.
    fn line(&mut self, text: &str) {
        match &self.multi {
            Some(m) if self.bars.is_empty() => {
                let _ = m.println(text);
            }
            Some(_) => {
                self.finish();
                self.multi = None;
                self.bars.clear();
                ui::info(text);
            }
            None => ui::info(text),
        }
    }

    /// Clears the bars.
    pub fn finish(&mut self) {
        for bar in self.bars.values() {
            bar.finish();
        }
    }
}

//! Renders the engine's pull/push progress events: one indicatif bar per
//! layer on a terminal, plain lines (one per status change) otherwise.

use std::collections::HashMap;
use std::io::IsTerminal;

use bollard_stubs::models::CreateImageInfo;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::ui;

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
                let style = ProgressStyle::with_template(
                    "{prefix:.bold} {msg:<18} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> ");
                bar.set_style(style);
                bar.set_prefix(id.clone());
                bar
            });
            if total > 0 {
                bar.set_length(u64::try_from(total).unwrap_or(0));
                bar.set_position(u64::try_from(current).unwrap_or(0));
            }
            bar.set_message(status.clone());
            if status.contains("complete") || status.contains("exists") || status == "Pushed" {
                bar.finish();
            }
        } else if self.last.get(&id) != Some(&status) {
            self.last.insert(id.clone(), status.clone());
            ui::info(&format!("{id}: {status}"));
        }
    }

    fn line(&self, text: &str) {
        match &self.multi {
            Some(m) => {
                let _ = m.println(text);
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

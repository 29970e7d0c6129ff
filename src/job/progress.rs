//! Progress: counters every stage of a job adds to, and the bar people watch on stderr.
//!
//! The bar is hidden with `--quiet`, with JSON logs (a log shipper is reading) and when stderr
//! is not a terminal (indicatif draws nothing there).

use std::sync::atomic::{AtomicU64, Ordering};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::api::StatsSnapshot;

/// How a command talks to people.
#[derive(Debug, Clone, Copy, Default)]
pub struct Ui {
    /// Only errors on stderr: no bar, no summary.
    pub quiet: bool,
    /// Logs are JSON lines: no bar; the summary becomes one structured event.
    pub json_logs: bool,
}

impl Ui {
    pub const QUIET: Ui = Ui {
        quiet: true,
        json_logs: false,
    };

    /// Whether people read stderr (a summary in prose is for them).
    pub fn for_people(self) -> bool {
        !self.quiet && !self.json_logs
    }
}

/// Counters shared by the stages of every location, and the bar.
pub struct Progress {
    /// Records done (contacts for export; input rows for load and tag).
    pub done: AtomicU64,
    pub pages: AtomicU64,
    /// Contacts deleted between being listed and being fetched or written.
    pub deleted: AtomicU64,
    /// Records a mapping filter left out.
    pub filtered: AtomicU64,
    pub bar: ProgressBar,
}

impl Progress {
    /// `unit` names what the bar counts ("contacts", "rows").
    pub fn new(ui: Ui, unit: &str) -> Progress {
        let bar = if ui.for_people() {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            let template = format!(
                "{{spinner}} {{elapsed_precise}} [{{bar:30}}] {{pos}}/{{len}} {unit} {{per_sec}} eta {{eta}} {{msg}}"
            );
            bar.set_style(
                ProgressStyle::with_template(&template)
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
            );
            bar
        } else {
            ProgressBar::hidden()
        };
        Progress {
            done: AtomicU64::new(0),
            pages: AtomicU64::new(0),
            deleted: AtomicU64::new(0),
            filtered: AtomicU64::new(0),
            bar,
        }
    }

    /// Raise the bar's length to `total` when a listing announces more than it knew.
    pub fn grow_to(&self, total: u64) {
        if self.bar.length().is_none_or(|l| l < total) {
            self.bar.set_length(total);
        }
    }

    /// Count `n` records done, and show what they cost so far.
    pub fn advance(&self, n: u64, cost: &StatsSnapshot) {
        self.done.fetch_add(n, Ordering::Relaxed);
        self.bar.inc(n);
        self.bar.set_message(format!(
            "{} pages, {} requests, {} retries, {} 429s",
            self.pages.load(Ordering::Relaxed),
            cost.requests,
            cost.retries,
            cost.throttled
        ));
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

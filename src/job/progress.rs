//! Progress: counters every stage of a job adds to, and the bar people watch on stderr.
//!
//! The bar is drawn only for a person at a terminal (not with `--quiet`, nor with JSON logs),
//! and its clock and rate move between updates. Where no bar is drawn (stderr not a terminal: a
//! cron log; or JSON logs) a progress line is logged every `--progress-every` seconds instead,
//! so a long run shows it is alive.

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
    /// Without a bar, a progress line every this many seconds (0: none).
    pub progress_every_s: u64,
}

impl Ui {
    pub const QUIET: Ui = Ui {
        quiet: true,
        json_logs: false,
        progress_every_s: 0,
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
    /// The task that logs progress lines where no bar is drawn.
    ticker: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(t) = self.ticker.take() {
            t.abort();
        }
    }
}

impl Progress {
    /// `unit` names what the bar counts ("contacts", "rows").
    pub fn new(ui: Ui, unit: &str) -> Progress {
        use std::io::IsTerminal;
        let terminal = std::io::stderr().is_terminal();
        let drawn = ui.for_people() && terminal;
        let bar = if drawn {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            // The clock, rate and spinner move between the job's updates.
            bar.enable_steady_tick(std::time::Duration::from_millis(250));
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
        let every = ui.progress_every_s;
        let ticker = (!drawn && !ui.quiet && every > 0)
            .then(|| tokio::runtime::Handle::try_current().ok())
            .flatten()
            .map(|rt| rt.spawn(log_progress(bar.clone(), unit.to_string(), every)));
        Progress {
            done: AtomicU64::new(0),
            pages: AtomicU64::new(0),
            deleted: AtomicU64::new(0),
            filtered: AtomicU64::new(0),
            bar,
            ticker,
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

    /// Whether anyone sees the progress (a bar, or progress lines): else a total is not
    /// worth reading the inputs for.
    pub fn is_seen(&self) -> bool {
        !self.bar.is_hidden() || self.ticker.is_some()
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// Every `every` seconds, one line: how many of how many, and the rate since the last line.
/// The bar is hidden but still counts; it is finished when the job ends.
async fn log_progress(bar: ProgressBar, unit: String, every: u64) {
    let period = std::time::Duration::from_secs(every);
    let mut last = bar.position();
    loop {
        tokio::time::sleep(period).await;
        if bar.is_finished() {
            return;
        }
        let done = bar.position();
        let rate = (done - last.min(done)) as f64 / period.as_secs_f64();
        last = done;
        match bar.length() {
            Some(total) => tracing::info!(
                done,
                total,
                rate_per_s = rate,
                "Progress: {done} of {total} {unit}, {rate:.1}/s."
            ),
            None => tracing::info!(
                done,
                rate_per_s = rate,
                "Progress: {done} {unit}, {rate:.1}/s."
            ),
        }
    }
}

//! The per-location fan-out: one task per location, at most `concurrency` at once, Ctrl-C,
//! and which failures stop the rest.
//!
//! GHL budgets requests and grants access per location, so a location's own trouble (its daily
//! budget, access revoked, the app uninstalled, answers that kept failing) is recorded as that
//! location's outcome and leaves the others running. Anything else (a bad agency token, the
//! disk) sets the shared `cancelled` flag, which every stage checks before new work, and locations
//! not started yet never start. The first Ctrl-C stops new work and keeps what was committed; a
//! second quits on the spot (resume copes with a hard stop).

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::sync::Semaphore;

use crate::exit::JobError;
use crate::job::signal;

/// How one location's task ended.
#[derive(Debug)]
pub enum Outcome {
    Finished,
    /// Its own failure, named by location.
    Failed(JobError),
    /// Stopped or never started because the whole run stopped.
    Stopped,
    /// Its failure stopped the whole run (the run's error says what it was).
    StoppedRun,
}

/// Every location's outcome, in list order, and what stopped the whole run, if anything did.
#[derive(Debug)]
pub struct FanOut {
    pub outcomes: Vec<(String, Outcome)>,
    /// A failure that is not one location's own (its location named), or Ctrl-C.
    pub stop: Option<JobError>,
}

impl FanOut {
    /// The run's error: what stopped it, else the failed locations together.
    pub fn into_result(self) -> crate::exit::Result<()> {
        if let Some(stop) = self.stop {
            return Err(stop);
        }
        let total = self.outcomes.len();
        let failed: Vec<(String, JobError)> = self
            .outcomes
            .into_iter()
            .filter_map(|(l, o)| match o {
                Outcome::Failed(e) => Some((l, e)),
                _ => None,
            })
            .collect();
        match failed.len() {
            0 => Ok(()),
            // A run of one location: its own error, without "1 of 1 failed".
            1 if total == 1 => {
                let (location, e) = failed.into_iter().next().expect("one failure");
                Err(e.in_location(&location))
            }
            _ => Err(JobError::Locations { failed, total }),
        }
    }
}

/// Runs `task(location, index)` for every location, `concurrency` at a time in list order, and
/// returns every outcome once all have ended.
pub async fn for_each_location<F, Fut>(
    locations: &[String],
    concurrency: usize,
    cancelled: &Arc<AtomicBool>,
    quiet: bool,
    task: F,
) -> FanOut
where
    F: Fn(String, usize) -> Fut,
    Fut: Future<Output = crate::exit::Result<()>> + Send + 'static,
{
    // Permits are handed out first come, first served: locations start in list order.
    let permits = Arc::new(Semaphore::new(concurrency.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    for (index, location) in locations.iter().enumerate() {
        let run = task(location.clone(), index);
        let (permits, cancelled) = (permits.clone(), cancelled.clone());
        tasks.spawn(async move {
            let Ok(_permit) = permits.acquire_owned().await else {
                return (index, Err(JobError::Interrupted));
            };
            if cancelled.load(Ordering::Relaxed) {
                return (index, Err(JobError::Interrupted));
            }
            (index, run.await)
        });
    }
    let mut outcomes: Vec<Option<Outcome>> = locations.iter().map(|_| None).collect();
    let mut stop: Option<JobError> = None;
    loop {
        tokio::select! {
            next = tasks.join_next() => {
                let Some(joined) = next else { break };
                let (index, result) = match joined {
                    Ok(r) => r,
                    Err(e) => {
                        cancelled.store(true, Ordering::Relaxed);
                        permits.close();
                        stop.get_or_insert(JobError::usage(format!("a pipeline task failed: {e}")));
                        continue;
                    }
                };
                let others = locations.len() > 1;
                outcomes[index] = Some(settle(&locations[index], others, result, &mut stop, cancelled, &permits));
            }
            () = signal::stop_signal(), if stop.is_none() => {
                cancelled.store(true, Ordering::Relaxed);
                permits.close();
                stop = Some(JobError::Interrupted);
                if !quiet {
                    eprintln!("Stopping ({}): committed work is kept; press Ctrl-C again to quit at once (a rerun resumes either way).", signal::received_name());
                }
                tokio::spawn(async {
                    if tokio::signal::ctrl_c().await.is_ok() {
                        std::process::exit(signal::interrupted_exit_code());
                    }
                });
            }
        }
    }
    FanOut {
        outcomes: locations
            .iter()
            .cloned()
            .zip(outcomes.into_iter().map(|o| o.unwrap_or(Outcome::Stopped)))
            .collect(),
        stop,
    }
}

/// One location's result as an outcome; a failure that is not its own stops the run.
fn settle(
    location: &str,
    others: bool,
    result: crate::exit::Result<()>,
    stop: &mut Option<JobError>,
    cancelled: &AtomicBool,
    permits: &Semaphore,
) -> Outcome {
    let e = match result {
        Ok(()) => return Outcome::Finished,
        Err(e) if matches!(e.root(), JobError::Interrupted) => return Outcome::Stopped,
        Err(e) => e,
    };
    if e.is_location_specific() {
        if others {
            tracing::warn!(location, error = %e, "A location failed; the others go on.");
        }
        return Outcome::Failed(e);
    }
    cancelled.store(true, Ordering::Relaxed);
    permits.close();
    // The first failure is the run's error, printed once by `main`.
    match stop {
        None => {
            *stop = Some(e.in_location(location));
            Outcome::StoppedRun
        }
        Some(_) => {
            tracing::warn!(location, error = %e, "Another location stopped too.");
            Outcome::Stopped
        }
    }
}

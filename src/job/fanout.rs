//! The per-location fan-out: one task per location, Ctrl-C, and which failures stop the rest.
//!
//! GHL budgets requests and grants access per location, so a location's own trouble (its daily
//! budget, no access to it) is reported and leaves the others running. Anything else (a bad
//! token, the disk) sets the shared `cancelled` flag, which every stage checks before new work.
//! The first Ctrl-C stops new work and keeps what was committed; a second quits on the spot
//! (resume copes with a hard stop).

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::exit::{self, JobError, Result};

/// Runs `task(location, index)` for every location concurrently, and returns the first error
/// (with its location named) once every task has ended. Later failures are logged, once each.
pub async fn for_each_location<F, Fut>(
    locations: &[String],
    cancelled: &Arc<AtomicBool>,
    quiet: bool,
    task: F,
) -> Result<()>
where
    F: Fn(String, usize) -> Fut,
    Fut: Future<Output = Result<()>> + Send + 'static,
{
    let mut tasks = tokio::task::JoinSet::new();
    for (index, location) in locations.iter().enumerate() {
        let run = task(location.clone(), index);
        let location = location.clone();
        tasks.spawn(async move { (location, run.await) });
    }
    let mut failure: Option<JobError> = None;
    loop {
        tokio::select! {
            next = tasks.join_next() => {
                let Some(joined) = next else { break };
                let error = match joined {
                    Ok((_, Ok(()))) => continue,
                    Ok((location, Err(e))) => {
                        if !e.is_location_specific() {
                            cancelled.store(true, Ordering::Relaxed);
                        }
                        e.in_location(&location)
                    }
                    Err(e) => {
                        cancelled.store(true, Ordering::Relaxed);
                        JobError::usage(format!("a pipeline task failed: {e}"))
                    }
                };
                // The first failure is the run's error, printed once by `main`; the stops it
                // causes elsewhere (interruptions) say nothing new.
                match &failure {
                    None => failure = Some(error),
                    Some(_) if matches!(error.root(), JobError::Interrupted) => {}
                    Some(_) => tracing::warn!(error = %error, "Another location stopped too."),
                }
            }
            _ = tokio::signal::ctrl_c(), if failure.is_none() => {
                cancelled.store(true, Ordering::Relaxed);
                failure = Some(JobError::Interrupted);
                if !quiet {
                    eprintln!("Stopping: committed work is kept; press Ctrl-C again to quit at once (a rerun resumes either way).");
                }
                tokio::spawn(async {
                    if tokio::signal::ctrl_c().await.is_ok() {
                        std::process::exit(exit::INTERRUPTED);
                    }
                });
            }
        }
    }
    failure.map_or(Ok(()), Err)
}

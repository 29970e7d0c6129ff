//! [`Run`]: what the locations' pipelines of one export share. Its own file, so that the
//! stages (fetch, write, phases, location) take it from a leaf rather than from `export`'s
//! `mod.rs`, which imports them.

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, MutexGuard};

use super::incremental::RunIncr;
use super::output::OutputDir;
use super::plan::ExportPlan;
use crate::api::Client;
use crate::job::Progress;
use crate::state::StateDb;

/// Everything the locations' pipelines share, fixed for the run.
pub(crate) struct Run {
    pub(super) key: String,
    pub(super) client: Client,
    pub(super) plan: ExportPlan,
    pub(super) out: OutputDir,
    /// Bulk task search until a 401 says the token lacks `locations/tasks.readonly`.
    pub(super) bulk_tasks: AtomicBool,
    pub(super) progress: Progress,
    /// Set on Ctrl-C or a fatal error of any location; every stage checks it before new work,
    /// so a stop does not wait for a page's remaining requests.
    pub(super) cancelled: Arc<AtomicBool>,
    /// Writers commit chunks from their threads; the lock is held for one transaction.
    pub(super) db: Mutex<StateDb>,
    /// `--incremental`: the run and what it counts.
    pub(super) incr: Option<RunIncr>,
}

impl Run {
    pub(super) fn db(&self) -> MutexGuard<'_, StateDb> {
        self.db.lock().unwrap_or_else(|e| e.into_inner())
    }
}

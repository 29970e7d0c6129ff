//! `ghl-etl listen`: GHL's webhooks into the export's dataset between nightly runs, verified,
//! durable, each event once, with rules that turn events into actions.
//!
//! - [`verify`]: the two signature schemes over the raw body; PEM keys; GHL's published key.
//! - [`server`]: the HTTP side (axum): limits, status codes, `/healthz`.
//! - [`journal`]: group commit into the state database; an event is on disk before its 200.
//! - [`dataset`]: stored events → Parquet and NDJSON part files, batch by batch, exactly once.
//! - [`rules`]: the rules file (checked at file:line:col) and its conditions and templates.
//! - [`actions`]: rule actions sent at most once per event through the rate-limited client.
//!
//! Why GHL's delivery shapes this: GHL retries a delivery only after a 429, so anything that
//! keeps an event from being stored is answered 429, never 5xx; it promises no order and may
//! send an event twice, so events are stored by `webhookId` and the nightly export stays the
//! truth (an event lost before it reached us is found there).

pub mod actions;
pub mod dataset;
pub mod journal;
pub mod rules;
pub mod server;
pub mod verify;

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use crate::api::Client;
use crate::exit::{JobError, Result};
use crate::job::{Connection, ConnectionPlan};
use crate::sink::{OutTarget, Store};
use crate::state::StateDb;

pub use dataset::Cadence;
pub use server::Limits;

/// Everything `listen` needs, resolved from flags and the environment.
pub struct ListenPlan {
    pub host: String,
    pub port: u16,
    pub path: String,
    pub out: OutTarget,
    pub state: PathBuf,
    pub rules: Option<rules::Rules>,
    pub keys: verify::Keys,
    pub limits: Limits,
    pub cadence: Cadence,
    /// How to reach the API, for rule actions and custom-field names; `None`: no credentials
    /// were given (then there can be no rules).
    pub connection: Option<ConnectionPlan>,
    /// Print the address bound here (a file), for scripts that start the listener on port 0.
    pub port_file: Option<PathBuf>,
}

/// What a listener did, for its last words.
#[derive(Debug, Default)]
pub struct ListenSummary {
    pub stored: u64,
    pub duplicates: u64,
    pub refused: u64,
    pub in_dataset: i64,
    pub actions: Vec<(String, i64)>,
}

/// Serve until a stop signal; then stop taking events (429), finish the requests in flight,
/// write what is stored into the dataset and settle the actions that can be.
pub async fn run(plan: ListenPlan) -> Result<ListenSummary> {
    let _state_lock = crate::lease::lock_state(&plan.state, "listen").await?;
    let store = Store::open(&plan.out)?;
    // The lease covers the events table only: the nightly export writes the rest of the
    // dataset meanwhile.
    let events = plan.out.join(dataset::EVENTS_DIR);
    if let OutTarget::Dir(dir) = &events {
        std::fs::create_dir_all(dir).map_err(|e| JobError::io("create", dir, e))?;
    }
    let lease = crate::lease::OutputLease::acquire(&Store::open(&events)?, "listen").await?;
    let connection = match &plan.connection {
        Some(c) => Some(Connection::open(c, true).await?),
        None => None,
    };
    let client = connection.as_ref().map(|c| c.client.clone());
    let rules = plan.rules.clone().map(Arc::new);
    let (journal, writer) = journal::Journal::start(StateDb::open(&plan.state)?, rules.clone());
    let shared = Arc::new(server::Shared {
        journal: journal.clone(),
        keys: plan.keys.clone(),
        limits: plan.limits.clone(),
        counters: server::Counters::default(),
    });
    let listener = tokio::net::TcpListener::bind((plan.host.as_str(), plan.port))
        .await
        .map_err(|e| {
            JobError::usage(format!("cannot listen on {}:{}: {e}", plan.host, plan.port))
        })?;
    let addr = listener
        .local_addr()
        .map_err(|e| JobError::Internal(e.to_string()))?;
    announce(&plan, addr)?;
    let stop = tokio::sync::watch::channel(false);
    let background = tokio::spawn(background(
        StateDb::open(&plan.state)?,
        store.clone(),
        plan.cadence.clone(),
        rules.clone(),
        client.clone(),
        stop.1.clone(),
    ));
    let app = server::router(shared.clone(), &plan.path);
    let journal_for_stop = journal.clone();
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            crate::job::signal::stop_signal().await;
            tracing::info!("Stopping: new events are answered 429 (GHL sends them again); finishing the requests under way.");
            journal_for_stop.close();
        })
        .await
        .map_err(|e| JobError::Internal(format!("the listener failed: {e}")))?;
    let _ = stop.0.send(true);
    // The background task's connection and custom-field names serve the last round too.
    let (mut db, mut names) = match background.await {
        Ok(kept) => kept,
        Err(_) => (
            StateDb::open(&plan.state)?,
            dataset::FieldNames::new(client.clone()),
        ),
    };
    journal.stop().await;
    let _ = tokio::task::spawn_blocking(move || writer.join()).await;
    // The last events into the dataset; the actions that can be settled now.
    let in_now = dataset::flush(&mut db, &store, &plan.cadence, &mut names, true).await;
    if let (Some(r), Some(c)) = (&rules, &client) {
        if let Err(e) = actions::run_open(&mut db, r, c).await {
            tracing::warn!(error = %e, "Rule actions left for the next start.");
        }
    }
    lease.release().await;
    if let Some(c) = connection {
        c.close().await;
    }
    in_now?;
    summary(&db, &shared)
}

impl std::fmt::Display for ListenSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Listener stopped: {} events stored, {} repeats answered without storing, {} refused; {} in the dataset.",
            self.stored, self.duplicates, self.refused, self.in_dataset
        )?;
        if !self.actions.is_empty() {
            let parts: Vec<String> = self
                .actions
                .iter()
                .map(|(s, n)| format!("{n} {s}"))
                .collect();
            write!(f, " Rule actions: {}.", parts.join(", "))?;
        }
        Ok(())
    }
}

fn summary(db: &StateDb, shared: &server::Shared) -> Result<ListenSummary> {
    let c = &shared.counters;
    let n = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    Ok(ListenSummary {
        stored: n(&c.stored),
        duplicates: n(&c.duplicates),
        refused: n(&c.unsigned) + n(&c.stale) + n(&c.too_large) + n(&c.too_slow) + n(&c.malformed),
        in_dataset: db.event_counts()?.1,
        actions: db.action_counts()?,
    })
}

/// Say where the listener is (stderr, and `--port-file` for scripts).
fn announce(plan: &ListenPlan, addr: std::net::SocketAddr) -> Result<()> {
    let url = format!("http://{addr}{}", plan.path);
    eprintln!("Listening for GHL webhooks at {url} (health: http://{addr}/healthz)");
    eprintln!("Events go to {}", plan.out.identity());
    if let Some(f) = &plan.port_file {
        std::fs::write(f, addr.port().to_string()).map_err(|e| JobError::io("write", f, e))?;
    }
    Ok(())
}

/// Every half second: due batches into the dataset, open actions settled. A failure (an
/// object store out of reach, the API refusing) is logged and tried again: the events are safe
/// in the state database meanwhile. Answers its connection and the field names it learnt, for
/// the last round after it.
async fn background(
    mut db: StateDb,
    store: Store,
    cadence: Cadence,
    rules: Option<Arc<rules::Rules>>,
    client: Option<Client>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> (StateDb, dataset::FieldNames) {
    let mut names = dataset::FieldNames::new(client.clone());
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return (db, names),
        }
        if let Err(e) = dataset::flush(&mut db, &store, &cadence, &mut names, false).await {
            tracing::warn!(error = %e, "Could not write events into the dataset yet; trying again.");
        }
        if let (Some(r), Some(c)) = (&rules, &client) {
            if let Err(e) = actions::run_open(&mut db, r, c).await {
                tracing::warn!(error = %e, "Could not settle rule actions yet; trying again.");
            }
        }
    }
}

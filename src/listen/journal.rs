//! Group commit: requests hand their event to one writer thread, which stores every event
//! waiting in one SQLite transaction (one fsync for all of them) and then answers each. A 200
//! goes out only after that answer, so an acknowledged event is on disk.
//!
//! The queue is bounded: when it is full, or the writer failed (disk full, a broken database),
//! or the listener is shutting down, [`Journal::append`] refuses at once and the request is
//! answered 429, which GHL retries, rather than held in memory.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use super::rules::Rules;
use crate::state::{NewEvent, StateDb};

/// Events waiting for the writer at most; more are refused (429).
pub const QUEUE: usize = 4_096;
/// Events stored in one transaction at most.
const GROUP: usize = 1_024;

/// Why an event was not stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unavailable {
    Busy,
    ShuttingDown,
    /// The database refused (the message says why); logged once per failed group.
    Failed(String),
}

struct Append {
    event: NewEvent,
    done: oneshot::Sender<Result<bool, Unavailable>>,
}

enum Msg {
    Append(Append),
    /// Store what is queued, then end the writer.
    Stop,
}

#[derive(Clone)]
pub struct Journal {
    tx: mpsc::Sender<Msg>,
    closing: Arc<AtomicBool>,
}

impl Journal {
    /// Start the writer on its own thread; it ends after [`Journal::stop`] (or when every
    /// [`Journal`] is dropped).
    pub fn start(
        mut db: StateDb,
        rules: Option<Arc<Rules>>,
    ) -> (Journal, std::thread::JoinHandle<()>) {
        let (tx, mut rx) = mpsc::channel::<Msg>(QUEUE + 1);
        let writer = std::thread::Builder::new()
            .name("listen-journal".into())
            .spawn(move || {
                let mut group = Vec::with_capacity(GROUP);
                let mut stopping = false;
                while !stopping {
                    match rx.blocking_recv() {
                        Some(Msg::Append(a)) => group.push(a),
                        Some(Msg::Stop) => stopping = true,
                        None => return,
                    }
                    // Everything queued behind it joins the group (after a stop: all of it).
                    while stopping || group.len() < GROUP {
                        match rx.try_recv() {
                            Ok(Msg::Append(a)) => group.push(a),
                            Ok(Msg::Stop) => stopping = true,
                            Err(_) => break,
                        }
                        if group.len() >= GROUP {
                            store(&mut db, rules.as_deref(), &mut group);
                        }
                    }
                    store(&mut db, rules.as_deref(), &mut group);
                }
            })
            .expect("the journal thread starts");
        let journal = Journal {
            tx,
            closing: Arc::new(AtomicBool::new(false)),
        };
        (journal, writer)
    }

    /// Store `event` durably: `Ok(true)` if new, `Ok(false)` if its webhookId was stored before.
    pub async fn append(&self, event: NewEvent) -> Result<bool, Unavailable> {
        if self.closing.load(Ordering::Relaxed) {
            return Err(Unavailable::ShuttingDown);
        }
        let (done, answer) = oneshot::channel();
        self.tx
            .try_send(Msg::Append(Append { event, done }))
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => Unavailable::Busy,
                mpsc::error::TrySendError::Closed(_) => Unavailable::ShuttingDown,
            })?;
        answer.await.unwrap_or(Err(Unavailable::ShuttingDown))
    }

    /// From now on every new event is refused (429); those queued are still stored.
    pub fn close(&self) {
        self.closing.store(true, Ordering::Relaxed);
    }

    /// Close, and end the writer once what is queued is stored.
    pub async fn stop(&self) {
        self.close();
        let _ = self.tx.send(Msg::Stop).await;
    }
}

fn store(db: &mut StateDb, rules: Option<&Rules>, group: &mut Vec<Append>) {
    if group.is_empty() {
        return;
    }
    let events: Vec<NewEvent> = group.iter().map(|a| a.event.clone()).collect();
    let plan = |e: &NewEvent| match rules {
        Some(r) => {
            let payload: serde_json::Value =
                serde_json::from_slice(&e.body).unwrap_or(serde_json::Value::Null);
            r.plan(&e.event_type, &payload)
        }
        None => Vec::new(),
    };
    let result = db.append_events(&events, plan);
    if let Err(e) = &result {
        tracing::error!(error = %e, events = group.len(), "Could not store webhook events; answered 429 so GHL sends them again.");
    }
    for (i, a) in group.drain(..).enumerate() {
        let answer = match &result {
            Ok(fresh) => Ok(fresh[i]),
            Err(e) => Err(Unavailable::Failed(e.to_string())),
        };
        let _ = a.done.send(answer);
    }
}

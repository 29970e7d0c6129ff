//! Holding requests at the gate: requests to chosen routes wait, admitted but unanswered,
//! until the test that holds them lets them go. This is how a test acts between two requests
//! of a client it does not control (a spawned binary) without timing assumptions: wait until
//! a held request has arrived, change the data through the API, release.
//!
//! A hold is not tied to a client or token: it holds whatever reaches its routes. Only one
//! hold is active at a time; [`super::gate`] asks [`Holds::enter`] before running a handler.

use super::SandboxState;
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::watch;

/// The active hold, if any, as the gate sees it.
#[derive(Debug, Default)]
pub(super) struct Holds {
    active: Mutex<Option<Active>>,
}

#[derive(Debug)]
struct Active {
    /// `"GET /contacts/{contactId}/notes"`: method and route template, as in
    /// [`Stats::by_route`](super::Stats).
    routes: Vec<String>,
    /// Turns true once, when the [`Hold`] is released or dropped; waiting requests watch it.
    released: watch::Receiver<bool>,
    /// How many requests have been held so far; the [`Hold`] watches it.
    arrived: watch::Sender<u64>,
}

impl Holds {
    /// If `route` is held, counts the request as arrived and returns what it must wait on.
    pub(super) fn enter(&self, route: &str) -> Option<watch::Receiver<bool>> {
        let active = self.active.lock().unwrap_or_else(PoisonError::into_inner);
        let a = active.as_ref()?;
        if *a.released.borrow() || !a.routes.iter().any(|r| r == route) {
            return None;
        }
        a.arrived.send_modify(|n| *n += 1);
        Some(a.released.clone())
    }

    fn set(&self, a: Option<Active>) {
        *self.active.lock().unwrap_or_else(PoisonError::into_inner) = a;
    }

    /// Ends the hold whose release channel `released` belongs to, unless another replaced it.
    fn end(&self, released: &watch::Receiver<bool>) {
        let mut active = self.active.lock().unwrap_or_else(PoisonError::into_inner);
        if active
            .as_ref()
            .is_some_and(|a| a.released.same_channel(released))
        {
            *active = None;
        }
    }
}

/// Waits until the hold is released (a closed channel counts as released).
pub(super) async fn wait(mut released: watch::Receiver<bool>) {
    let _ = released.wait_for(|r| *r).await;
}

/// Requests to some routes wait at the gate while this lives; see the module documentation.
/// Dropping it releases them, as [`Hold::release`] does.
#[derive(Debug)]
pub struct Hold {
    state: Arc<SandboxState>,
    released: watch::Sender<bool>,
    arrived: watch::Receiver<u64>,
}

impl Hold {
    /// Holds every later request to `routes` (`"GET /contacts/{contactId}/notes"`), replacing
    /// any hold already active.
    pub(super) fn new(state: Arc<SandboxState>, routes: &[&str]) -> Hold {
        let (released, released_rx) = watch::channel(false);
        let (arrived_tx, arrived) = watch::channel(0);
        state.holds.set(Some(Active {
            routes: routes.iter().map(|r| r.to_string()).collect(),
            released: released_rx,
            arrived: arrived_tx,
        }));
        Hold {
            state,
            released,
            arrived,
        }
    }

    /// Resolves once at least `n` requests have been held since the hold began (or at once if
    /// another hold replaced this one).
    pub async fn arrived(&self, n: u64) {
        let mut arrived = self.arrived.clone();
        let _ = arrived.wait_for(|c| *c >= n).await;
    }

    /// How many requests have been held so far.
    pub fn count(&self) -> u64 {
        *self.arrived.borrow()
    }

    /// Lets every held request go on, and stops holding new ones.
    pub fn release(self) {}
}

impl Drop for Hold {
    fn drop(&mut self) {
        self.state.holds.end(&self.released.subscribe());
        self.released.send_replace(true);
    }
}

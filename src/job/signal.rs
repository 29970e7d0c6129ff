//! The signals that stop a job: Ctrl-C (SIGINT), SIGTERM (`docker stop`, a Kubernetes
//! eviction, systemd) and SIGHUP (a closed terminal). Every job treats them alike: it stops
//! starting work, finishes or records what is in flight, writes its summary, and exits with
//! 128 + the signal's number (130 for Ctrl-C, 143 for SIGTERM). Because the handlers are
//! installed, the signals also work when the binary runs as PID 1 in a container, where an
//! unhandled SIGTERM is ignored.

use std::sync::atomic::{AtomicI32, Ordering};

/// The number of the signal that stopped the run, 0 before any.
static RECEIVED: AtomicI32 = AtomicI32::new(0);

const SIGINT: i32 = 2;
#[cfg(unix)]
const SIGHUP: i32 = 1;
#[cfg(unix)]
const SIGTERM: i32 = 15;

/// Wait for the first stop signal and remember which it was.
pub async fn stop_signal() {
    let signo = wait().await;
    let _ = RECEIVED.compare_exchange(0, signo, Ordering::Relaxed, Ordering::Relaxed);
}

async fn wait() -> i32 {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let term = signal(SignalKind::terminate());
        let hup = signal(SignalKind::hangup());
        if let (Ok(mut term), Ok(mut hup)) = (term, hup) {
            return tokio::select! {
                _ = tokio::signal::ctrl_c() => SIGINT,
                _ = term.recv() => SIGTERM,
                _ = hup.recv() => SIGHUP,
            };
        }
    }
    if tokio::signal::ctrl_c().await.is_err() {
        std::future::pending::<()>().await;
    }
    SIGINT
}

/// The exit code of a run a signal stopped: 128 + its number (130 when none was seen, as
/// for a job that stopped on its own interruption).
pub fn interrupted_exit_code() -> i32 {
    match RECEIVED.load(Ordering::Relaxed) {
        0 => 128 + SIGINT,
        n => 128 + n,
    }
}

/// A word for the signal, for messages.
pub fn received_name() -> &'static str {
    match RECEIVED.load(Ordering::Relaxed) {
        #[cfg(unix)]
        SIGTERM => "SIGTERM",
        #[cfg(unix)]
        SIGHUP => "SIGHUP",
        _ => "Ctrl-C",
    }
}

//! The one exactly-once primitive: a write whose answer may be lost, made at most once, and
//! once if it can be — contact creates without a matching key, task and note creates, workflow
//! and campaign enrolments. None of these has an idempotency key in GHL's API.
//!
//! The transactional-outbox shape: the intent is recorded (`sending`, with the record's
//! fingerprint) before the request, and the outcome after. When the outcome is unknown (no
//! answer, a 5xx, an answer that is not the JSON promised, or a row a killed run left
//! `sending`), the target is looked at before anything is sent again: what the lost write made
//! settles the row. Where the target cannot be asked (an enrolment), the row is reported
//! instead of resent. A 4xx or a 429 never acted: such a row fails, or, when the error stops
//! the job (a spent daily budget), its intent is withdrawn so that the rerun sends it as new.

use std::time::Duration;

use super::rows::{row_failure, Ledger, Row};
use crate::api;
use crate::exit::Result;
use crate::state::RowRecord;

/// Attempts at a write whose outcome stays unknown before its rows are reported failed; they
/// wait 100 ms, 200 ms, 400 ms, ... between them (the client retries these writes only on 429).
pub const ATTEMPTS: u32 = 6;

/// How far before sending a lost write the look for it starts: the API's clock may be behind
/// this machine's.
const CLOCK_SKEW_MS: i64 = 5 * 60 * 1000;

/// A search index can take seconds to show a new record: look at once, then after 1, 2, 4 s.
pub const INDEX_LAG_MS: &[u64] = &[0, 1_000, 2_000, 4_000];
/// A direct read (a contact's own tasks or notes) shows a record at once.
pub const DIRECT_MS: &[u64] = &[0];

/// Why a row whose write cannot be looked for is not sent again.
pub const LOST_ANSWER: &str = "sent by an earlier attempt whose answer was lost: it may have acted, so it was not sent again; check it in GHL";

/// One non-idempotent write, as its caller knows it. (Its futures run on the job's own task,
/// never spawned, so they need not be `Send`.)
#[allow(async_fn_in_trait)]
pub trait Write {
    /// Send it once; answers the id of what it made (the contact's id for an enrolment).
    async fn send(&self) -> std::result::Result<String, api::Error>;

    /// What a lost send made, among what appeared since `since_ms` (epoch ms); `None` if it
    /// made nothing that can be seen.
    async fn look(&self, since_ms: i64) -> Result<Option<String>>;

    /// The delays at which to look (ms); empty when the target cannot be asked at all.
    fn look_again_ms(&self) -> &'static [u64];
}

/// Make `write` once for `rows` (rows that share it: the same contact named twice), keyed
/// `key` for people and `fingerprint` in the target. `made` builds a row's record from the id
/// the write made. Every record is durable when this returns; `Err` only for what stops the
/// job.
pub async fn exactly_once<W: Write>(
    ledger: &Ledger,
    rows: &[&Row],
    key: &str,
    fingerprint: Option<&str>,
    write: &W,
    made: impl Fn(&Row, &str) -> RowRecord,
) -> Result<Vec<RowRecord>> {
    let stamp = |mut r: RowRecord| {
        r.fingerprint = fingerprint.map(str::to_string);
        r
    };
    let settle = |records: Vec<RowRecord>| -> Result<Vec<RowRecord>> {
        let records: Vec<RowRecord> = records.into_iter().map(stamp).collect();
        ledger.record_all(&records)?;
        Ok(records)
    };
    let made_all = |id: &str| settle(rows.iter().map(|r| made(r, id)).collect());
    let fail_all = |why: &str| settle(rows.iter().map(|r| r.failed(key, why)).collect());
    if let Some(sending) = rows.iter().find(|r| r.was_sending()) {
        // Recorded made, with what it made, but not settled (a follow-up such as a contact's
        // tags was still to come): nothing to look for.
        let made_id = sending.prior.as_ref().and_then(|p| p.target_id.clone());
        if let Some(id) = made_id.filter(|id| !id.is_empty()) {
            return made_all(&id);
        }
        if write.look_again_ms().is_empty() {
            return fail_all(LOST_ANSWER);
        }
        let at =
            ledger
                .db()
                .row_recorded_ms(ledger.key(), sending.table, &sending.file, sending.row)?;
        let since = at.unwrap_or_else(now_ms) - CLOCK_SKEW_MS;
        if let Some(id) = look_again(write, since).await? {
            return made_all(&id);
        }
    }
    let mut last = String::new();
    for attempt in 0..ATTEMPTS {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(100 << attempt.min(5))).await;
        }
        let intents: Vec<RowRecord> = rows
            .iter()
            .map(|r| stamp(r.record(crate::state::RowStatus::Sending, key)))
            .collect();
        ledger.record_all(&intents)?;
        let sent_at = now_ms();
        match write.send().await {
            Ok(id) => return made_all(&id),
            Err(e) if !e.outcome_unknown() => {
                if e.stops_the_job() {
                    withdraw(ledger, rows)?;
                }
                let why = row_failure(e)?;
                return fail_all(&why);
            }
            Err(e) => {
                last = row_failure(e)?;
                if write.look_again_ms().is_empty() {
                    return fail_all(&format!("{LOST_ANSWER} ({last})"));
                }
                if let Some(id) = look_again(write, sent_at - CLOCK_SKEW_MS).await? {
                    return made_all(&id);
                }
            }
        }
    }
    fail_all(&format!(
        "not made after {ATTEMPTS} attempts whose answers were lost (last: {last})"
    ))
}

/// The intents of rows whose request was refused before it could act, taken back: rows a
/// killed run left `sending` stay so (the rerun looks for them again), the others are
/// forgotten (the rerun sends them as new).
fn withdraw(ledger: &Ledger, rows: &[&Row]) -> Result<()> {
    let mut restore = Vec::new();
    for r in rows {
        match &r.prior {
            Some(p) if r.was_sending() => restore.push(p.clone()),
            _ => ledger.forget(r)?,
        }
    }
    ledger.record_all(&restore)
}

async fn look_again<W: Write>(write: &W, since_ms: i64) -> Result<Option<String>> {
    for &wait in write.look_again_ms() {
        if wait > 0 {
            tokio::time::sleep(Duration::from_millis(wait)).await;
        }
        if let Some(id) = write.look(since_ms).await? {
            return Ok(Some(id));
        }
    }
    Ok(None)
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

#[cfg(test)]
mod tests {
    use std::cell::{Cell, RefCell};

    use super::*;
    use crate::api::ErrorKind;
    use crate::state::RowStatus;

    /// A write whose answers are scripted, and a target that shows what it made.
    struct Scripted {
        answers: RefCell<Vec<std::result::Result<String, ErrorKind>>>,
        /// What the target shows after a send that acted (the id), if anything.
        shown: RefCell<Option<String>>,
        /// Sends that acted, whatever they answered.
        acted: Cell<u32>,
        /// Whether a send acts before its answer is lost.
        acts_when_lost: bool,
        lags: &'static [u64],
    }

    impl Scripted {
        fn new(answers: Vec<std::result::Result<&str, ErrorKind>>, lags: &'static [u64]) -> Self {
            Scripted {
                answers: RefCell::new(
                    answers
                        .into_iter()
                        .rev()
                        .map(|a| a.map(str::to_string))
                        .collect(),
                ),
                shown: RefCell::new(None),
                acted: Cell::new(0),
                acts_when_lost: true,
                lags,
            }
        }
    }

    impl Write for Scripted {
        async fn send(&self) -> std::result::Result<String, api::Error> {
            let answer = self.answers.borrow_mut().pop().expect("no more answers");
            let acted = match &answer {
                Ok(_) => true,
                Err(kind) => {
                    self.acts_when_lost
                        && api::Error::new(kind.clone(), "POST", "/x").outcome_unknown()
                }
            };
            if acted {
                self.acted.set(self.acted.get() + 1);
                self.shown
                    .replace(Some(format!("made-{}", self.acted.get())));
            }
            answer.map_err(|k| api::Error::new(k, "POST", "/x"))
        }

        async fn look(&self, _since_ms: i64) -> Result<Option<String>> {
            Ok(self.shown.borrow().clone())
        }

        fn look_again_ms(&self) -> &'static [u64] {
            self.lags
        }
    }

    fn ledger(dir: &tempfile::TempDir) -> Ledger {
        Ledger::open(&dir.path().join("s.sqlite"), "j", "test", false).unwrap()
    }

    fn row(n: u64) -> Row {
        Row {
            table: "notes",
            file: "in.csv".into(),
            row: n,
            fields: Default::default(),
            prior: None,
        }
    }

    fn made(r: &Row, id: &str) -> RowRecord {
        r.done(RowStatus::Created, "k", id)
    }

    #[tokio::test]
    async fn a_lost_answer_is_found_not_resent() {
        let dir = tempfile::tempdir().unwrap();
        let l = ledger(&dir);
        let w = Scripted::new(vec![Err(ErrorKind::Server), Ok("never")], DIRECT_MS);
        let r = row(1);
        let got = exactly_once(&l, &[&r], "k", Some("fp"), &w, made)
            .await
            .unwrap();
        assert_eq!(w.acted.get(), 1, "sent once");
        assert_eq!(got[0].target_id.as_deref(), Some("made-1"));
        assert_eq!(got[0].fingerprint.as_deref(), Some("fp"));
        let stored = l.db().row("j", "notes", "in.csv", 1).unwrap().unwrap();
        assert_eq!(stored.status, RowStatus::Created);
    }

    #[tokio::test]
    async fn a_failure_that_made_nothing_is_sent_again() {
        let dir = tempfile::tempdir().unwrap();
        let l = ledger(&dir);
        let mut w = Scripted::new(vec![Err(ErrorKind::Server), Ok("n2")], DIRECT_MS);
        w.acts_when_lost = false;
        let r = row(1);
        let got = exactly_once(&l, &[&r], "k", None, &w, made).await.unwrap();
        assert_eq!(got[0].target_id.as_deref(), Some("n2"));
    }

    #[tokio::test]
    async fn what_cannot_be_looked_for_is_never_sent_twice() {
        let dir = tempfile::tempdir().unwrap();
        let l = ledger(&dir);
        let w = Scripted::new(vec![Err(ErrorKind::Transport), Ok("x")], &[]);
        let (a, b) = (row(1), row(2));
        let got = exactly_once(&l, &[&a, &b], "c1", None, &w, made)
            .await
            .unwrap();
        assert_eq!(w.acted.get(), 1);
        assert!(got.iter().all(|r| r.status == RowStatus::Failed));
        assert!(got[0].detail.as_deref().unwrap().starts_with(LOST_ANSWER));
        // A killed run's row left `sending` is reported, not sent.
        let mut c = row(3);
        c.prior = Some(c.record(RowStatus::Sending, "c1"));
        let w = Scripted::new(vec![], &[]);
        let got = exactly_once(&l, &[&c], "c1", None, &w, made).await.unwrap();
        assert_eq!(got[0].detail.as_deref(), Some(LOST_ANSWER));
    }

    #[tokio::test]
    async fn a_row_left_sending_is_looked_for_first() {
        let dir = tempfile::tempdir().unwrap();
        let l = ledger(&dir);
        let mut r = row(1);
        r.prior = Some(r.record(RowStatus::Sending, "k"));
        l.record(r.prior.as_ref().unwrap()).unwrap();
        let w = Scripted::new(vec![], DIRECT_MS);
        w.shown.replace(Some("earlier".into()));
        let got = exactly_once(&l, &[&r], "k", None, &w, made).await.unwrap();
        assert_eq!(got[0].target_id.as_deref(), Some("earlier"));
        assert_eq!(w.acted.get(), 0);
    }

    #[tokio::test]
    async fn a_spent_budget_stops_and_withdraws_the_intent() {
        let dir = tempfile::tempdir().unwrap();
        let l = ledger(&dir);
        let budget = ErrorKind::DailyBudgetExhausted {
            resets_in: Duration::from_secs(9),
        };
        let w = Scripted::new(vec![Err(budget)], DIRECT_MS);
        let r = row(1);
        let got = exactly_once(&l, &[&r], "k", None, &w, made).await;
        assert!(got.is_err());
        assert_eq!(l.db().row("j", "notes", "in.csv", 1).unwrap(), None);
        let refused = Scripted::new(vec![Err(ErrorKind::Unprocessable)], DIRECT_MS);
        let got = exactly_once(&l, &[&r], "k", None, &refused, made)
            .await
            .unwrap();
        assert_eq!(got[0].status, RowStatus::Failed);
    }
}

//! What `listen` keeps: every webhook once, by its `webhookId`, in arrival order; the batches
//! the dataset writes them in; the rule actions they call for.
//!
//! An event is acknowledged only after [`StateDb::append_events`] committed it (WAL and
//! `synchronous=FULL`: one fsync for the whole group). A batch's range is recorded before its
//! files are written and marked committed after, so a killed listener rewrites exactly the same
//! files. An action is recorded with its event (planned), marked `sending` before its request
//! and settled after, so it is sent at most once.

use rusqlite::{params, OptionalExtension};

use super::{Result, StateDb};

/// An event as received: its raw bytes and what the listener read from them.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub webhook_id: String,
    pub event_type: String,
    /// `""` when the payload names none.
    pub location: String,
    pub received_ms: i64,
    pub body: Vec<u8>,
}

/// An event as stored, with its arrival number.
#[derive(Debug, Clone)]
pub struct StoredEvent {
    pub seq: i64,
    pub webhook_id: String,
    pub event_type: String,
    pub location: String,
    pub received_ms: i64,
    pub body: Vec<u8>,
}

/// A range of events written to the dataset together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventBatch {
    pub batch: i64,
    pub first_seq: i64,
    pub last_seq: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActionStatus {
    Planned,
    /// Its request may have gone out; the outcome is not known.
    Sending,
    Done,
    Failed,
}

impl ActionStatus {
    fn as_str(self) -> &'static str {
        match self {
            ActionStatus::Planned => "planned",
            ActionStatus::Sending => "sending",
            ActionStatus::Done => "done",
            ActionStatus::Failed => "failed",
        }
    }

    fn parse(s: &str) -> ActionStatus {
        match s {
            "sending" => ActionStatus::Sending,
            "done" => ActionStatus::Done,
            "failed" => ActionStatus::Failed,
            _ => ActionStatus::Planned,
        }
    }
}

/// One action a rule calls for on one event.
#[derive(Debug, Clone)]
pub struct ActionRow {
    pub webhook_id: String,
    pub rule: String,
    pub action: i64,
    pub status: ActionStatus,
    pub started_ms: Option<i64>,
}

/// An event read by `SELECT seq, webhook_id, event_type, location, received_ms, body`.
fn stored_event(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredEvent> {
    Ok(StoredEvent {
        seq: r.get(0)?,
        webhook_id: r.get(1)?,
        event_type: r.get(2)?,
        location: r.get(3)?,
        received_ms: r.get(4)?,
        body: r.get(5)?,
    })
}

impl StateDb {
    /// Store events in one transaction: each new `webhookId` once, with the rule actions
    /// `plan` calls for. Answers, per event, whether it was new (a repeat stores nothing).
    pub fn append_events(
        &mut self,
        events: &[NewEvent],
        plan: impl Fn(&NewEvent) -> Vec<(String, i64)>,
    ) -> Result<Vec<bool>> {
        let path = self.path.clone();
        let wrap = |source| super::StateError::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(wrap)?;
        let mut fresh = Vec::with_capacity(events.len());
        {
            let mut insert = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO events
                     (webhook_id, event_type, location, received_ms, body)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                )
                .map_err(wrap)?;
            let mut action = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO rule_actions (webhook_id, rule, action, status)
                     VALUES (?1, ?2, ?3, 'planned')",
                )
                .map_err(wrap)?;
            for e in events {
                let n = insert
                    .execute(params![
                        e.webhook_id,
                        e.event_type,
                        e.location,
                        e.received_ms,
                        e.body
                    ])
                    .map_err(wrap)?;
                if n == 1 {
                    for (rule, i) in plan(e) {
                        action
                            .execute(params![e.webhook_id, rule, i])
                            .map_err(wrap)?;
                    }
                }
                fresh.push(n == 1);
            }
        }
        tx.commit().map_err(wrap)?;
        Ok(fresh)
    }

    /// The batch cut but not committed (by this run or a killed one), if any.
    pub fn next_open_batch(&self) -> Result<Option<EventBatch>> {
        let open = self.conn.query_row(
            "SELECT batch, first_seq, last_seq FROM event_batches WHERE committed = 0
             ORDER BY batch LIMIT 1",
            [],
            |r| {
                Ok(EventBatch {
                    batch: r.get(0)?,
                    first_seq: r.get(1)?,
                    last_seq: r.get(2)?,
                })
            },
        );
        self.sql(open.optional())
    }

    /// The batch written but not committed by an earlier run, else a new one of up to `max`
    /// events not in any batch yet (`None`: nothing waits).
    pub fn next_event_batch(&mut self, max: i64) -> Result<Option<EventBatch>> {
        if let Some(b) = self.next_open_batch()? {
            return Ok(Some(b));
        }
        let after: i64 = {
            let r = self.conn.query_row(
                "SELECT COALESCE(MAX(last_seq), 0) FROM event_batches",
                [],
                |r| r.get(0),
            );
            self.sql(r)?
        };
        let last: Option<i64> = {
            let r = self.conn.query_row(
                "SELECT MAX(seq) FROM (SELECT seq FROM events WHERE seq > ?1 ORDER BY seq LIMIT ?2)",
                params![after, max],
                |r| r.get(0),
            );
            self.sql(r)?
        };
        let Some(last) = last else { return Ok(None) };
        let r = self.conn.execute(
            "INSERT INTO event_batches (first_seq, last_seq) VALUES (?1, ?2)",
            params![after + 1, last],
        );
        self.sql(r)?;
        Ok(Some(EventBatch {
            batch: self.conn.last_insert_rowid(),
            first_seq: after + 1,
            last_seq: last,
        }))
    }

    /// The locations `batch`'s events name, each once.
    pub fn batch_locations(&self, batch: &EventBatch) -> Result<Vec<String>> {
        let mut stmt = self
            .sql(self.conn.prepare_cached(
                "SELECT DISTINCT location FROM events WHERE seq BETWEEN ?1 AND ?2",
            ))?;
        let rows = stmt.query_map(params![batch.first_seq, batch.last_seq], |r| r.get(0));
        let rows = self.sql(rows)?;
        let mut out = Vec::new();
        for r in rows {
            out.push(self.sql(r)?);
        }
        Ok(out)
    }

    /// Events not in a batch yet: how many, and when the oldest arrived.
    pub fn unbatched_events(&self) -> Result<(i64, Option<i64>)> {
        let r = self.conn.query_row(
            "SELECT COUNT(*), MIN(received_ms) FROM events
             WHERE seq > (SELECT COALESCE(MAX(last_seq), 0) FROM event_batches)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        );
        self.sql(r)
    }

    /// The events of `batch`, in arrival order.
    pub fn for_each_event(
        &self,
        batch: &EventBatch,
        mut f: impl FnMut(StoredEvent) -> std::io::Result<()>,
    ) -> Result<std::io::Result<()>> {
        let mut stmt = self.sql(self.conn.prepare_cached(
            "SELECT seq, webhook_id, event_type, location, received_ms, body FROM events
             WHERE seq BETWEEN ?1 AND ?2 ORDER BY seq",
        ))?;
        let mut rows = self.sql(stmt.query(params![batch.first_seq, batch.last_seq]))?;
        while let Some(r) = self.sql(rows.next())? {
            if let Err(e) = f(self.sql(stored_event(r))?) {
                return Ok(Err(e));
            }
        }
        Ok(Ok(()))
    }

    /// Mark `batch` committed, and drop the bodies of its events that no action still needs:
    /// the dataset holds them now, and a repeat is known by its webhookId alone, so the state
    /// database keeps about a hundred bytes an event instead of the whole body.
    pub fn commit_event_batch(&mut self, batch: &EventBatch) -> Result<()> {
        let r = self.conn.execute(
            "UPDATE event_batches SET committed = 1 WHERE batch = ?1",
            [batch.batch],
        );
        self.sql(r)?;
        let r = self.conn.execute(
            "UPDATE events SET body = x'' WHERE seq BETWEEN ?1 AND ?2 AND NOT EXISTS (
                 SELECT 1 FROM rule_actions a WHERE a.webhook_id = events.webhook_id
                 AND a.status IN ('planned', 'sending'))",
            params![batch.first_seq, batch.last_seq],
        );
        self.sql(r).map(|_| ())
    }

    /// Drop the body of one event once its actions are settled, if the dataset holds it.
    pub fn release_event_body(&mut self, webhook_id: &str) -> Result<()> {
        let r = self.conn.execute(
            "UPDATE events SET body = x'' WHERE webhook_id = ?1
             AND seq <= (SELECT COALESCE(MAX(last_seq), 0) FROM event_batches WHERE committed = 1)
             AND NOT EXISTS (SELECT 1 FROM event_batches b WHERE b.committed = 0
                             AND events.seq BETWEEN b.first_seq AND b.last_seq)
             AND NOT EXISTS (SELECT 1 FROM rule_actions a WHERE a.webhook_id = events.webhook_id
                             AND a.status IN ('planned', 'sending'))",
            [webhook_id],
        );
        self.sql(r).map(|_| ())
    }

    /// How many events are stored, and how many of them are in committed batches.
    pub fn event_counts(&self) -> Result<(i64, i64)> {
        let r = self.conn.query_row(
            "SELECT (SELECT COUNT(*) FROM events),
                    (SELECT COALESCE(SUM(last_seq - first_seq + 1), 0)
                     FROM event_batches WHERE committed = 1)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        );
        self.sql(r)
    }

    /// One event by its id (the body the actions read).
    pub fn event(&self, webhook_id: &str) -> Result<Option<StoredEvent>> {
        let r = self
            .conn
            .query_row(
                "SELECT seq, webhook_id, event_type, location, received_ms, body FROM events
                 WHERE webhook_id = ?1",
                [webhook_id],
                stored_event,
            )
            .optional();
        self.sql(r)
    }

    /// Up to `max` actions not settled yet (planned, or left `sending`), oldest event first.
    pub fn open_actions(&self, max: i64) -> Result<Vec<ActionRow>> {
        let mut stmt = self.sql(self.conn.prepare_cached(
            "SELECT a.webhook_id, a.rule, a.action, a.status, a.started_ms
             FROM rule_actions a JOIN events e ON e.webhook_id = a.webhook_id
             WHERE a.status IN ('planned', 'sending') ORDER BY e.seq, a.rule, a.action LIMIT ?1",
        ))?;
        let rows = stmt.query_map([max], |r| {
            Ok(ActionRow {
                webhook_id: r.get(0)?,
                rule: r.get(1)?,
                action: r.get(2)?,
                status: ActionStatus::parse(&r.get::<_, String>(3)?),
                started_ms: r.get(4)?,
            })
        });
        let rows = self.sql(rows)?;
        let mut out = Vec::new();
        for r in rows {
            out.push(self.sql(r)?);
        }
        Ok(out)
    }

    /// Record an action's status (`started_ms` with `Sending`), durably, before or after its
    /// request.
    pub fn set_action(
        &mut self,
        a: &ActionRow,
        status: ActionStatus,
        started_ms: Option<i64>,
        detail: Option<&str>,
    ) -> Result<()> {
        let r = self.conn.execute(
            "UPDATE rule_actions SET status = ?4, started_ms = COALESCE(?5, started_ms), detail = ?6
             WHERE webhook_id = ?1 AND rule = ?2 AND action = ?3",
            params![a.webhook_id, a.rule, a.action, status.as_str(), started_ms, detail],
        );
        self.sql(r).map(|_| ())
    }

    /// Actions by status, for the summary and the tests.
    pub fn action_counts(&self) -> Result<Vec<(String, i64)>> {
        let mut stmt = self.sql(self.conn.prepare(
            "SELECT status, COUNT(*) FROM rule_actions GROUP BY status ORDER BY status",
        ))?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)));
        let rows = self.sql(rows)?;
        let mut out = Vec::new();
        for r in rows {
            out.push(self.sql(r)?);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: &str) -> NewEvent {
        NewEvent {
            webhook_id: id.into(),
            event_type: "ContactCreate".into(),
            location: "L".into(),
            received_ms: 1,
            body: format!(r#"{{"webhookId":"{id}"}}"#).into_bytes(),
        }
    }

    #[test]
    fn each_webhook_id_is_stored_once_with_its_actions_and_batched_once() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = StateDb::open(&dir.path().join("s.sqlite")).unwrap();
        let plan = |_: &NewEvent| vec![("r".to_string(), 0)];
        let fresh = db
            .append_events(&[event("a"), event("b"), event("a")], plan)
            .unwrap();
        assert_eq!(fresh, [true, true, false]);
        assert_eq!(db.append_events(&[event("b")], plan).unwrap(), [false]);
        assert_eq!(db.open_actions(10).unwrap().len(), 2);
        let b = db.next_event_batch(10).unwrap().unwrap();
        assert_eq!((b.first_seq, b.last_seq), (1, 2));
        // Not committed: the same batch again.
        assert_eq!(db.next_event_batch(10).unwrap(), Some(b));
        let mut seen = Vec::new();
        db.for_each_event(&b, |e| {
            seen.push(e.webhook_id);
            Ok(())
        })
        .unwrap()
        .unwrap();
        assert_eq!(seen, ["a", "b"]);
        db.commit_event_batch(&b).unwrap();
        assert_eq!(db.next_event_batch(10).unwrap(), None);
        // Their actions are open: the bodies stay until they are settled.
        assert!(!db.event("a").unwrap().unwrap().body.is_empty());
        let a = db.open_actions(10).unwrap().remove(0);
        db.set_action(&a, ActionStatus::Done, None, None).unwrap();
        db.release_event_body("a").unwrap();
        assert!(db.event("a").unwrap().unwrap().body.is_empty());
        assert!(!db.event("b").unwrap().unwrap().body.is_empty());
        db.append_events(&[event("c")], plan).unwrap();
        assert_eq!(db.unbatched_events().unwrap().0, 1);
        let c = db.next_event_batch(10).unwrap().unwrap();
        assert_eq!((c.first_seq, c.last_seq), (3, 3));
        assert_eq!(db.event_counts().unwrap(), (3, 2));
    }
}

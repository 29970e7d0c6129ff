//! The load job: input files → mapping (`direction = "load"`) → writes into one GHL location,
//! contacts first, then their tasks and notes, each input row exactly once.
//!
//! - `plan`: what the load does ([`LoadPlan`]), and its identity.
//! - `body`: a mapped row → request keys, body fields, custom fields, tags.
//! - `fields`: the target's custom fields, resolved by name or created.
//! - `rows`: one input row through the mapping to its writer; the row's account.
//! - `contacts`: upsert / create / update / delete of one contact row.
//! - `children`: task and note creates, exactly once.
//! - `tags`: the chunk's tags through the bulk endpoint, grouped to few requests.
//! - `verify`: `--verify`: written contacts read back, fields that did not stick reported.
//!
//! Every input row ends in the state database as one [`RowRecord`](crate::state::RowRecord), so a rerun skips what was
//! settled, and the reports (`succeeded.csv`, `failed.csv`) are written from those records: one
//! line per input row, also across resumed runs.

mod body;
mod carry;
mod children;
mod contacts;
mod done;
mod fields;
mod plan;
mod precheck;
mod rows;
mod tags;
mod verify;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

pub use plan::{EmptyCells, LoadPlan, Mode, TagsMode};

use crate::api::Client;
use crate::exit::{JobError, Result};
use crate::job::rows::{
    self as runner, Fresh, Input, Ledger, Ran, Row, RowJob, Settled, Source, Totals,
};
use crate::job::{planned_requests_line, Connection, ConnectionPlan, Cost, Progress, Ui};
use crate::lease;
use crate::mapping::TableMapping;
use crate::table::TableKind;
use fields::TargetFields;

/// Input rows handed to the writers at a time: the unit of concurrency and of tag batching.
const CHUNK_ROWS: usize = 500;

/// Rows under way per request in flight (`--concurrency`): a row waiting for its retry's
/// backoff, or for a lost create to show up in the index, holds no request slot, and the
/// other rows keep the pipe full (5% faults idled 40% of it when rows and slots were one).
const ROWS_PER_SLOT: usize = 4;

/// What a load did.
#[derive(Debug, Default)]
pub struct LoadSummary {
    /// Every row accounted for (this run's and earlier runs'), by outcome.
    pub totals: Totals,
    pub failed: u64,
    pub requests: u64,
    pub retries: u64,
    pub throttled: u64,
    pub elapsed_s: f64,
    pub dry_run: bool,
    /// Requests the writes would cost (dry run).
    pub planned_requests: u64,
    pub fields_created: Vec<String>,
    /// Dry run: rows that carry a value, per target field.
    pub values: std::collections::BTreeMap<String, u64>,
    /// Contacts this run created with neither email nor phone, and no `--external-id`: a
    /// rerun without this state database would create them again.
    pub keyless_created: u64,
}

/// Everything the row writers share, fixed for the run.
pub(crate) struct Load {
    ledger: Ledger,
    client: Client,
    plan: LoadPlan,
    fields: TargetFields,
    /// The mapping of each input table.
    mappings: Vec<(TableKind, Arc<TableMapping>)>,
    /// Contacts looked up by email or phone (`email:x`, `phone:y`) → target id.
    lookups: Mutex<std::collections::HashMap<String, Option<String>>>,
    /// Requests a dry run would send.
    planned: AtomicU64,
    /// The custom fields `custom_fields = "all"` carries.
    carried: Option<carry::Carried>,
    /// Dry run: rows that carry a value, per target field.
    values: Mutex<std::collections::BTreeMap<String, u64>>,
    /// One lock per target contact (its task and note creates take turns, see `children`),
    /// and per email and phone key (upserts that could match one contact take turns).
    turns: Mutex<std::collections::HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// When this run began, as the state database stamps rows (see `children::already_there`).
    run_started: String,
    /// See [`LoadSummary::keyless_created`].
    keyless_created: AtomicU64,
    /// Dry run: the emails and phones (as `children::lookup` keys them) of the
    /// contacts this load would write, so their tasks and notes count as would-write.
    dry_contacts: Mutex<std::collections::HashSet<String>>,
}

impl Load {
    /// The lock a contact's creates take turns with.
    fn contact_turn(&self, contact: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut turns = self.turns.lock().unwrap_or_else(|e| e.into_inner());
        turns.entry(contact.to_string()).or_default().clone()
    }

    /// The turns of every contact an upsert with this email and phone could match, taken in
    /// key order (so two rows never wait on each other crosswise). Two upserts that could
    /// match the same contact must not run at once: the API looks for the duplicate and then
    /// creates, so both could create, and a retried one would then pick either.
    async fn match_turns(
        &self,
        email: Option<&str>,
        phone: Option<&str>,
    ) -> Vec<tokio::sync::OwnedMutexGuard<()>> {
        use crate::api::matching::key_of;
        let mut keys: Vec<String> = [
            email.and_then(|e| key_of(Some(e), None).ok()),
            phone.and_then(|p| key_of(None, Some(p)).ok()),
        ]
        .into_iter()
        .flatten()
        .collect();
        keys.sort();
        keys.dedup();
        let mut held = Vec::with_capacity(keys.len());
        for k in keys {
            held.push(self.contact_turn(&k).lock_owned().await);
        }
        held
    }

    /// Dry run: count the fields this row carries a value for.
    fn count_values(&self, table: &str, body: &body::Body) {
        let mut values = self.values.lock().unwrap_or_else(|e| e.into_inner());
        let custom = body.custom.iter().map(|(n, _)| n.as_str());
        let carried = body.carried.iter().filter(|(_, v)| v.is_some());
        let names = body
            .fields
            .keys()
            .map(String::as_str)
            .chain(body.tags.iter().filter(|t| !t.is_empty()).map(|_| "tags"))
            .map(str::to_string)
            .chain(
                custom
                    .chain(carried.map(|(n, _)| n.as_str()))
                    .map(|n| format!("customFields.{n:?}")),
            );
        *values.entry(table.to_string()).or_default() += 1;
        for name in names {
            *values.entry(format!("{table}\t{name}")).or_default() += 1;
        }
    }

    /// Dry run: remember a contact this load would write.
    fn would_write(&self, email: Option<&str>, phone: Option<&str>) {
        let mut set = self.dry_contacts.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(e) = email {
            set.insert(format!("email:{}", e.to_lowercase()));
        }
        if let Some(p) = phone {
            set.insert(format!("phone:{p}"));
        }
    }

    /// Dry run: whether a contact with this key (`email:…`, `phone:…`) would be
    /// written by this load's contact rows.
    fn would_be_written(&self, key: &str) -> bool {
        self.plan.dry_run
            && self
                .dry_contacts
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .contains(key)
    }

    fn mapping(&self, table: &str) -> Arc<TableMapping> {
        self.mappings
            .iter()
            .find(|(t, _)| t.name() == table)
            .map(|(_, m)| m.clone())
            .expect("rows come only from the inputs whose mapping was checked at the start")
    }
}

impl RowJob for Load {
    async fn rows(&self, rows: Vec<Row>) -> Settled {
        let Some(table) = rows.first().map(|r| r.table) else {
            return Settled::default();
        };
        let mapping = self.mapping(table);
        let under_way = self.plan.concurrency * ROWS_PER_SLOT;
        let (mut done, stop) = runner::each_concurrently(&self.ledger, rows, under_way, |row| {
            rows::load_row(self, &mapping, row)
        })
        .await;
        // Every row of the chunk is done. Other chunks may still be under way: a turn goes
        // only when no row holds or waits for it (the map's is then its one reference), so
        // the map stays as small as the rows under way.
        self.turns
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|_, turn| Arc::strong_count(turn) > 1);
        if stop.is_none() && table == "contacts" && self.plan.tags == TagsMode::Add {
            if let Err(e) = tags::add_chunk_tags(self, &mut done).await {
                return Settled::stopped(done.into_iter().map(|d| d.record).collect(), e);
            }
        }
        Settled {
            records: done.into_iter().map(|d| d.record).collect(),
            stop,
        }
    }
}

/// `ghl-etl load`: connect, run, close the embedded sandbox if any.
pub async fn load(conn: &ConnectionPlan, plan: &LoadPlan, ui: Ui) -> Result<LoadSummary> {
    let connection = Connection::open(conn, ui.quiet).await?;
    let mut plan = plan.clone();
    plan.location = connection.location_or_default(&plan.location)?;
    let result = run(&connection.client, &conn.server_identity(), plan, ui).await;
    connection.close().await;
    result
}

/// Run a load to completion (or its first fatal error).
pub async fn run(client: &Client, server: &str, plan: LoadPlan, ui: Ui) -> Result<LoadSummary> {
    let started = Instant::now();
    client.cap_in_flight(plan.concurrency);
    let key = plan.job_key(server);
    let description = format!("load -> {}", plan.location);
    let _state_lock = lease::lock_state(&plan.state, "load").await?;
    let _location_lock = match plan.dry_run {
        true => None,
        false => lease::lock_location_writes(server, &plan.location, "load").await?,
    };
    let fresh = if plan.restart {
        Fresh::Always
    } else {
        Fresh::Never
    };
    let ledger = Ledger::open_fresh(&plan.state, &key, &description, plan.dry_run, fresh)?;
    let inputs = inputs(&plan)?;
    let checked = precheck::check_inputs(&plan, &inputs).await?;
    let fields =
        TargetFields::resolve(client, &plan, &checked.absent, checked.carried.as_ref()).await?;
    let load = Load {
        ledger,
        client: client.clone(),
        fields,
        mappings: inputs.iter().map(|(t, m, _)| (*t, m.clone())).collect(),
        lookups: Mutex::new(Default::default()),
        planned: AtomicU64::new(0),
        carried: checked.carried,
        values: Mutex::new(Default::default()),
        turns: Mutex::new(Default::default()),
        run_started: crate::state::stamp(),
        keyless_created: AtomicU64::new(0),
        dry_contacts: Mutex::new(Default::default()),
        plan,
    };
    let progress = Progress::new(ui, "rows");
    let source = Source::Files(inputs.into_iter().map(|(_, _, i)| i).collect());
    let report_dir = load.plan.report_dir.clone();
    let ran = runner::run(
        &load.ledger,
        &load,
        source,
        &progress,
        &report_dir,
        ui,
        client,
    )
    .await?;
    let stats = client.stats();
    let summary = LoadSummary {
        failed: ran.totals.failed,
        totals: ran.totals.clone(),
        requests: stats.requests,
        retries: stats.retries,
        throttled: stats.throttled,
        elapsed_s: started.elapsed().as_secs_f64(),
        dry_run: load.plan.dry_run,
        planned_requests: load.planned.load(Ordering::Relaxed),
        fields_created: load.fields.created.clone(),
        values: std::mem::take(&mut *load.values.lock().unwrap_or_else(|e| e.into_inner())),
        keyless_created: load.keyless_created.load(Ordering::Relaxed),
    };
    if ran.was_finished && ran.totals.resumed == ran.totals.rows && !ui.quiet {
        eprintln!("This load had finished: every row was settled by an earlier run.");
    }
    print_summary(&summary, &ran, &load.plan, ui, client);
    Ok(summary)
}

/// The load's inputs, contacts first, each with its table's mapping: a file without a section
/// in the mapping is refused before any request.
fn inputs(plan: &LoadPlan) -> Result<Vec<(TableKind, Arc<TableMapping>, Input)>> {
    let files = [
        (TableKind::Contacts, &plan.contacts),
        (TableKind::Tasks, &plan.tasks),
        (TableKind::Notes, &plan.notes),
    ];
    let mut inputs = Vec::new();
    for (table, path) in files {
        let Some(path) = path else { continue };
        let Some(mapping) = plan.mapping.mapping.table(table) else {
            return Err(JobError::usage(format!(
                "the mapping {} has no [{table}] section for --{table}",
                plan.mapping.path.display()
            )));
        };
        let input = Input {
            table: table.name(),
            path: path.clone(),
            format: plan.input_format,
            wanted: mapping
                .source_columns()
                .into_iter()
                .map(str::to_string)
                .collect(),
            chunk_rows: CHUNK_ROWS,
            // Tasks and notes need their contacts' ids: they start when the contacts are
            // done, and run together.
            stage: u8::from(table != TableKind::Contacts),
        };
        inputs.push((table, Arc::new(mapping.clone()), input));
    }
    Ok(inputs)
}

/// The dry run's count of rows that carry a value, per target field: a field read from a
/// column that is empty in most rows stands out before anything is written.
fn print_values(values: &std::collections::BTreeMap<String, u64>) {
    if values.is_empty() {
        return;
    }
    eprintln!("Rows with a value, per target field:");
    let width = values.keys().map(|k| k.chars().count()).max().unwrap_or(0);
    for (key, n) in values {
        match key.split_once('\t') {
            None => eprintln!("  {key} ({n} rows mapped)"),
            Some((_, field)) => eprintln!("    {field:<width$}  {n:>9}"),
        }
    }
}

fn print_summary(s: &LoadSummary, ran: &Ran, plan: &LoadPlan, ui: Ui, client: &Client) {
    let t = &s.totals;
    if ui.json_logs && !ui.quiet {
        tracing::info!(
            rows = t.rows,
            created = t.created,
            updated = t.updated,
            deleted = t.deleted,
            unchanged = t.unchanged,
            failed = t.failed,
            requests = s.requests,
            "Load finished."
        );
    }
    if !ui.for_people() {
        return;
    }
    let rate = client.rate(&plan.location);
    if s.dry_run {
        eprintln!("Dry run: nothing was written. {} input rows:", t.rows);
        eprintln!(
            "  would write   {:>9} (created or updated)",
            t.created + t.updated
        );
        eprintln!("  would delete  {:>9}", t.deleted);
        eprintln!("  would fail    {:>9}", t.failed);
        if t.tables.len() > 1 {
            for (table, c) in &t.tables {
                eprintln!(
                    "    {table:<11} {:>9} rows: {} would write, {} would fail",
                    c.rows,
                    c.created + c.updated,
                    c.failed
                );
            }
        }
        eprintln!("{}", planned_requests_line(s.planned_requests, rate));
        if s.keyless_created > 0 {
            eprintln!(
                "  note: {} contacts have neither email nor phone: nothing can match them, so each would be created anew, and again by a rerun without this state database. Pass --external-id NAME to make them findable.",
                s.keyless_created
            );
        }
        print_values(&s.values);
        return;
    }
    eprintln!("Load finished in {:.1} s.", s.elapsed_s);
    let fixed = match t.fixed {
        0 => String::new(),
        n => format!(" + {n} fixed later (through a fed-back failed.csv)"),
    };
    eprintln!(
        "  rows          {:>9} = {} created + {} updated + {} deleted + {} unchanged + {} failed{fixed}",
        t.rows, t.created, t.updated, t.deleted, t.unchanged, t.failed
    );
    // With several inputs, each table on its own: a file loaded as contacts and as notes is
    // two counts, not one.
    if t.tables.len() > 1 {
        for (table, c) in &t.tables {
            eprintln!(
                "    {table:<11} {:>9} = {} created + {} updated + {} deleted + {} unchanged + {} failed",
                c.rows, c.created, c.updated, c.deleted, c.unchanged, c.failed
            );
        }
    }
    if !s.fields_created.is_empty() {
        eprintln!("  custom fields created: {}", s.fields_created.join(", "));
    }
    if s.keyless_created > 0 {
        eprintln!(
            "  note: {} contacts were created with neither email nor phone; the state database is what keeps a rerun from creating them again. Pass --external-id NAME to make such contacts findable without it.",
            s.keyless_created
        );
    }
    let cost = Cost {
        requests: s.requests,
        retries: s.retries,
        throttled: s.throttled,
        elapsed_s: s.elapsed_s,
        peak_rss_mb: crate::job::peak_rss_mb(),
    };
    runner::print_tail(ran, &cost, rate);
}

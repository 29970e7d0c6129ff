//! The tag job: a list of contacts (by id, email or phone, or every contact a search matches)
//! and the tags to add or remove on each, applied in few requests. `ghl-etl bulk` runs the
//! same job with another [`Action`]: workflows, campaigns, followers, business, delete.
//!
//! - `plan`: what the job does ([`TagPlan`], [`Action`]) and its identity.
//! - `lookup`: emails and phones → contact ids, per key or by one scan of the location,
//!   whichever costs fewer requests.
//! - `rows`: one input row → its contact and its changes, or why it cannot be used.
//! - `search`: `--where`: the contacts of a search, page by page, instead of a file.
//! - `work`: a resolved row and its work, and how a settled row reads (shared by the steps).
//! - `batch`: tags in the fewest requests across the whole file: parts of tag sets grouped,
//!   groups sent through `POST /contacts/bulk/tags/update/{add|remove}` when full, every
//!   per-contact answer read.
//! - `business`: the business of many contacts through `POST /contacts/bulk/business`.
//! - `each`: the actions without a bulk endpoint, one request per contact.
//!
//! The run itself (state, chunks, settled rows, reports, signals, the stop policy) is the
//! row-job runner's, [`crate::job::rows`].
//!
//! Adding or removing a tag twice changes nothing, so a rerun is safe; it also skips the rows
//! the state database says are settled, and the reports keep one line per input row.

mod batch;
mod business;
mod each;
mod lookup;
mod plan;
mod rows;
mod search;
mod work;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

pub use plan::{Action, Contacts, KeyColumns, Lookup, TagPlan};

use crate::api::Client;
use crate::exit::{JobError, Result};
use crate::job::rows::{
    self as runner, Fresh, Input, Ledger, Ran, Row, RowJob, Settled, Source, Totals,
};
use crate::job::{planned_requests_line, Connection, ConnectionPlan, Cost, Progress, Ui};
use crate::lease;
use batch::{Batcher, Grouping};
use work::Resolved;

/// Input rows handed over at a time: the unit of look-ups in flight and of recording.
const CHUNK_ROWS: usize = 1_000;

/// What a tag run did.
#[derive(Debug, Default)]
pub struct TagSummary {
    /// Every row accounted for (this run's and earlier runs'), by outcome.
    pub totals: Totals,
    pub failed: u64,
    pub requests: u64,
    pub retries: u64,
    pub throttled: u64,
    pub elapsed_s: f64,
    pub dry_run: bool,
    /// Dry run: contacts that would gain or lose tags (or get the action).
    pub would_change: u64,
    /// Dry run: tag → (rows that would add it, rows that would remove it).
    pub would_tag: BTreeMap<String, (u64, u64)>,
    pub planned_requests: u64,
    /// How emails and phones were looked up, and why (empty when none were).
    pub lookup: String,
    /// How tag sets were grouped into requests, and why.
    pub grouping: String,
    /// Distinct contacts the settled rows reached (rows may name one contact twice).
    pub contacts: u64,
}

/// Dry run: the contacts with work, and tag → (rows adding it, rows removing it).
type Would = (
    std::collections::HashSet<String>,
    BTreeMap<String, (u64, u64)>,
);

/// What the row workers share.
pub(crate) struct Tagging {
    ledger: Ledger,
    client: Client,
    plan: TagPlan,
    resolver: lookup::Resolver,
    /// Tags: the groups filled across the whole file (the runner hands chunks one at a time).
    batcher: tokio::sync::Mutex<Batcher>,
    /// Dry run: the write requests of the actions other than tags.
    planned: AtomicU64,
    /// Dry run: the contacts with work, and tag → (rows adding it, rows removing it).
    would: Mutex<Would>,
}

impl RowJob for Tagging {
    async fn rows(&self, rows: Vec<Row>) -> Settled {
        let concurrency = self.plan.concurrency;
        let (mut resolved, stop) =
            runner::each_concurrently(&self.ledger, rows, concurrency, |r| rows::resolve(self, r))
                .await;
        // Look-ups finish in any order; a contact the file names twice changes in file order.
        resolved.sort_by_key(|r| r.row.row);
        if let Some(stop) = stop {
            let settled = resolved.into_iter().filter(|r| r.work.is_none());
            return Settled::stopped(settled.map(|r| r.record).collect(), stop);
        }
        if self.ledger.dry_run() {
            self.count_would(&resolved);
        }
        match &self.plan.action {
            Action::Tags => {
                let mut records = Vec::new();
                let mut batcher = self.batcher.lock().await;
                let to = (&self.client, self.plan.location.as_str());
                let sent = batcher.add(to, &self.ledger, resolved, &mut records).await;
                Settled {
                    records,
                    stop: sent.err(),
                }
            }
            Action::Business { id } => {
                business::apply_business(self, resolved, id.as_deref()).await
            }
            _ => each::apply_each(self, resolved).await,
        }
    }

    async fn flush(&self) -> Settled {
        let mut records = Vec::new();
        let mut batcher = self.batcher.lock().await;
        let sent = batcher
            .flush(&self.client, &self.plan.location, &mut records)
            .await;
        Settled {
            records,
            stop: sent.err(),
        }
    }
}

impl Tagging {
    fn count_would(&self, resolved: &[Resolved]) {
        let mut would = self.would.lock().unwrap_or_else(|e| e.into_inner());
        for w in resolved.iter().filter_map(|r| r.work.as_ref()) {
            would.0.insert(w.contact.clone());
            for tag in &w.add {
                would.1.entry(tag.clone()).or_default().0 += 1;
            }
            for tag in &w.remove {
                would.1.entry(tag.clone()).or_default().1 += 1;
            }
        }
    }
}

/// `ghl-etl tag`: connect, run, close the embedded sandbox if any.
pub async fn tag(conn: &ConnectionPlan, plan: &TagPlan, ui: Ui) -> Result<TagSummary> {
    let connection = Connection::open(conn, ui.quiet).await?;
    let mut plan = plan.clone();
    plan.location = connection.location_or_default(&plan.location)?;
    let result = run(&connection.client, &conn.server_identity(), plan, ui).await;
    connection.close().await;
    result
}

pub async fn run(client: &Client, server: &str, mut plan: TagPlan, ui: Ui) -> Result<TagSummary> {
    let started = Instant::now();
    if let Contacts::File { path, format } = &plan.contacts {
        let (keys, add, remove) = columns_in(path, *format, &plan)?;
        (plan.keys, plan.add_column, plan.remove_column) = (keys, add, remove);
    }
    let key = plan.job_key(server);
    let description = format!("{} -> {}", plan.action.verb(), plan.location);
    let command = match plan.action {
        Action::Tags => "tag",
        _ => "bulk",
    };
    let _state_lock = lease::lock_state(&plan.state, command).await?;
    let _location_lock = match plan.dry_run {
        true => None,
        false => lease::lock_location_writes(server, &plan.location, command).await?,
    };
    let fresh = match (&plan.contacts, plan.restart) {
        (_, true) => Fresh::Always,
        (Contacts::Where(_), false) => Fresh::IfFinished,
        _ => Fresh::Never,
    };
    let ledger = Ledger::open_fresh(&plan.state, &key, &description, plan.dry_run, fresh)?;
    let resolver = match &plan.contacts {
        Contacts::File { path, format } => {
            let input = (path.as_path(), *format);
            lookup::Resolver::prepare(client, &plan.location, input, &plan.keys, plan.lookup)
                .await?
        }
        Contacts::Where(_) => lookup::Resolver::none(),
    };
    let (add, remove, grouping) = grouping(&plan).await?;
    let t = Tagging {
        ledger,
        client: client.clone(),
        resolver,
        batcher: tokio::sync::Mutex::new(Batcher::new(add, remove, plan.dry_run)),
        planned: AtomicU64::new(0),
        would: Mutex::default(),
        plan,
    };
    let progress = Progress::new(ui, "rows");
    let source = match t.plan.contacts.clone() {
        Contacts::File { path, format } => {
            let k = &t.plan.keys;
            Source::Files(vec![Input {
                table: "tags",
                path,
                format,
                wanted: vec![k.id.clone(), k.email.clone(), k.phone.clone()],
                chunk_rows: CHUNK_ROWS,
                stage: 0,
            }])
        }
        Contacts::Where(filters) => Source::Listed(search::listed(&t, filters, &progress)?),
    };
    let report_dir = t.plan.report_dir.clone();
    let ran = runner::run(&t.ledger, &t, source, &progress, &report_dir, ui, client).await?;
    let stats = client.stats();
    let (would_contacts, would_tag) =
        std::mem::take(&mut *t.would.lock().unwrap_or_else(|e| e.into_inner()));
    let would_change = would_contacts.len() as u64;
    let tag_requests = t.batcher.lock().await.requests;
    let summary = TagSummary {
        failed: ran.totals.failed,
        totals: ran.totals.clone(),
        requests: stats.requests,
        retries: stats.retries,
        throttled: stats.throttled,
        elapsed_s: started.elapsed().as_secs_f64(),
        dry_run: t.plan.dry_run,
        would_change,
        would_tag,
        planned_requests: t.planned.load(Ordering::Relaxed) + tag_requests,
        lookup: t.resolver.reason.clone(),
        grouping: if t.plan.uses_tags() {
            grouping
        } else {
            String::new()
        },
        contacts: match t.plan.dry_run {
            true => 0,
            false => t.ledger.db().distinct_targets(t.ledger.key())?,
        },
    };
    print_summary(&summary, &ran, &t.plan, ui, client);
    Ok(summary)
}

/// How the run's tag sets are split into requests: from one read of the file's tag sets, the
/// cheapest of whole sets, per tag or blocks of tags ([`Grouping::plan`]); a search's rows all
/// carry the flags' sets, sent whole.
async fn grouping(plan: &TagPlan) -> Result<(Grouping, Grouping, String)> {
    let Contacts::File { path, format } = &plan.contacts else {
        let name = Grouping::by_set().name;
        return Ok((Grouping::by_set(), Grouping::by_set(), name));
    };
    if !plan.uses_tags() {
        return Ok((Grouping::by_set(), Grouping::by_set(), String::new()));
    }
    let (adds, removes) = batch::file_sets(plan, path, *format).await?;
    let (add, add_requests) = Grouping::plan(&adds);
    let (remove, remove_requests) = Grouping::plan(&removes);
    let said = format!(
        "additions {}, removals {}: about {} requests planned",
        add.name,
        remove.name,
        add_requests + remove_requests
    );
    Ok((add, remove, said))
}

fn print_summary(s: &TagSummary, ran: &Ran, plan: &TagPlan, ui: Ui, client: &Client) {
    let t = &s.totals;
    if ui.json_logs && !ui.quiet {
        tracing::info!(
            rows = t.rows,
            changed = t.changed(),
            unchanged = t.unchanged,
            failed = t.failed,
            requests = s.requests,
            "Finished."
        );
    }
    if !ui.for_people() {
        return;
    }
    let rate = client.rate(&plan.location);
    if s.dry_run {
        eprintln!("Dry run: nothing was written. {} input rows:", t.rows);
        eprintln!(
            "  would change  {:>9} contacts ({})",
            s.would_change,
            plan.action.verb()
        );
        for (tag, (gain, lose)) in &s.would_tag {
            let what = match (gain, lose) {
                (g, 0) => format!("+{g}"),
                (0, l) => format!("-{l}"),
                (g, l) => format!("+{g} -{l}"),
            };
            eprintln!("    {what:>11}  {tag}");
        }
        eprintln!("  would fail    {:>9}", t.failed);
        eprintln!(
            "{} (reads already spent: {})",
            planned_requests_line(s.planned_requests, rate),
            s.requests
        );
        print_ways(s);
        return;
    }
    eprintln!("Finished in {:.1} s.", s.elapsed_s);
    // Removals said as removals: a run that only takes tags off untags.
    let verb = match plan.action {
        Action::Tags if plan.add.is_empty() && !plan.remove.is_empty() => "untagged",
        _ => plan.action.verb(),
    };
    eprintln!(
        "  rows          {:>9} = {} {verb} + {} unchanged + {} failed",
        t.rows,
        t.changed(),
        t.unchanged,
        t.failed
    );
    if s.contacts != t.rows - t.failed {
        eprintln!(
            "  contacts      {:>9} distinct (some rows name the same contact)",
            s.contacts
        );
    }
    print_ways(s);
    let cost = Cost {
        requests: s.requests,
        retries: s.retries,
        throttled: s.throttled,
        elapsed_s: s.elapsed_s,
        peak_rss_mb: crate::job::peak_rss_mb(),
    };
    runner::print_tail(ran, &cost, rate);
}

/// How contacts were looked up and tags grouped.
fn print_ways(s: &TagSummary) {
    if !s.lookup.is_empty() {
        eprintln!("  look-ups      {}", s.lookup);
    }
    if !s.grouping.is_empty() {
        eprintln!("  tag requests  {}", s.grouping);
    }
}

/// The key and tag columns as the file spells them: a header that differs from
/// `--email-column` (or the id, phone, add or remove column) only in case, spaces, `_` or `-`
/// is taken for it (`Email` for `email`, `Add Tags` for `add_tags`), and said; two headers that
/// both fit are refused, naming them.
fn columns_in(
    path: &std::path::Path,
    format: Option<crate::input::InputFormat>,
    plan: &TagPlan,
) -> Result<(KeyColumns, String, String)> {
    let keys = &plan.keys;
    let reader = crate::input::open(path, format, &crate::input::InputOptions::default())?;
    let Some(headers) = reader.columns().map(<[String]>::to_vec) else {
        return Ok((
            keys.clone(),
            plan.add_column.clone(),
            plan.remove_column.clone(),
        ));
    };
    let fit = |wanted: &str, flag: &str| -> Result<String> {
        if headers.iter().any(|h| h == wanted) {
            return Ok(wanted.to_string());
        }
        let norm = |s: &str| s.trim().to_lowercase().replace([' ', '_', '-'], "");
        let close: Vec<&String> = headers.iter().filter(|h| norm(h) == norm(wanted)).collect();
        match close.as_slice() {
            [] => Ok(wanted.to_string()),
            [one] => {
                tracing::info!("Reading the column `{one}` as {flag} {wanted}.");
                Ok(one.to_string())
            }
            many => Err(JobError::usage(format!(
                "{}: the columns {} all fit {flag} {wanted}; name the one to read with {flag}",
                path.display(),
                many.iter()
                    .map(|h| format!("`{h}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        }
    };
    let keys = KeyColumns {
        id: fit(&keys.id, "--id-column")?,
        email: fit(&keys.email, "--email-column")?,
        phone: fit(&keys.phone, "--phone-column")?,
    };
    let add = fit(&plan.add_column, "--add-column")?;
    let remove = fit(&plan.remove_column, "--remove-column")?;
    Ok((keys, add, remove))
}

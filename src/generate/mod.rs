//! `arq generate`: writes a complete, internally consistent warehouse in the contract.
//!
//! Customers are simulated one at a time ([`sim`]) and streamed into Parquet
//! ([`sink`]), so memory stays bounded. Customers are cut into fixed shards of
//! [`SHARD_CUSTOMERS`]; each shard writes its own `part-NNNNN.parquet` in every table
//! and partition, and shards run on all cores. Because every customer draws from its own
//! random stream and shard boundaries do not depend on the machine, the same seed gives
//! byte-identical files everywhere.
//!
//! The warehouse is written to a temporary folder beside `--out` and renamed into place
//! at the end: a failed or interrupted run leaves nothing half-written.

pub mod rng;
pub mod sim;
pub mod sink;

use std::io::IsTerminal;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use chrono::{Datelike, NaiveDate};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use arq_udfs::dates;

use crate::contract::{self, SNAPSHOT_COLUMN};
use crate::error::{ArqError, Result};
use crate::output::staging::{StagingDir, is_empty_dir};
use sim::{History, SEGMENTS, World};
use sink::ParquetSink;

/// Customers per shard (one Parquet file per table and partition each).
pub const SHARD_CUSTOMERS: u64 = 250_000;

/// The most customers a warehouse can have: memory stays bounded by one shard per core
/// plus the team (one collector per 350 customers: 30 MB at this size).
pub const MAX_CUSTOMERS: u64 = 100_000_000;

/// The most monthly snapshots (50 years).
pub const MAX_MONTHS: u32 = 600;

/// What to generate.
#[derive(Debug, Clone)]
pub struct GenerateOptions {
    /// Number of customers.
    pub customers: u64,
    /// Number of monthly snapshots.
    pub months: u32,
    /// Random seed.
    pub seed: u64,
    /// The last snapshot date; must be the last day of a month.
    pub end: NaiveDate,
    /// Replace an existing, non-empty output folder.
    pub force: bool,
    /// Show a progress bar (only drawn when stderr is a terminal).
    pub progress: bool,
}

/// What was written.
#[derive(Debug, Clone, Default)]
pub struct GenerateSummary {
    pub customers: u64,
    pub invoices: u64,
    pub payments: u64,
    pub activities: u64,
    pub write_offs: u64,
    /// Open items in the last snapshot.
    pub open_items_latest: u64,
    /// Open items across all snapshots.
    pub open_items_total: u64,
    pub collectors: u64,
    pub snapshots: Vec<NaiveDate>,
    pub seconds: f64,
}

impl GenerateSummary {
    /// All rows written.
    pub fn rows(&self) -> u64 {
        self.invoices
            + self.payments
            + self.activities
            + self.write_offs
            + self.open_items_total
            + self.customers * self.snapshots.len() as u64
            + self.collectors
    }
}

/// The default last snapshot: fixed, so that a seed always means the same warehouse.
pub fn default_end() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 10, 31).expect("valid date")
}

/// Month-end snapshot dates: the `months` months ending with `end`'s month.
pub fn snapshot_dates(end: NaiveDate, months: u32) -> Result<Vec<NaiveDate>> {
    if !(1..=MAX_MONTHS).contains(&months) {
        return Err(ArqError::Usage(format!(
            "--months {months} is out of range: from 1 to {MAX_MONTHS}"
        )));
    }
    if end.succ_opt().is_none_or(|d| d.day() != 1) {
        return Err(ArqError::Usage(format!(
            "--end {end} is not the last day of a month (snapshots are taken at month end)"
        )));
    }
    let first_of_month = end.with_day(1).expect("day 1 exists");
    (0..months)
        .rev()
        .map(|back| {
            first_of_month
                .checked_sub_months(chrono::Months::new(back))
                .and_then(|m| m.checked_add_months(chrono::Months::new(1)))
                .and_then(|m| m.pred_opt())
                .ok_or_else(|| ArqError::Usage(format!("--months {months} reaches before year 1")))
        })
        .collect()
}

/// Writes a warehouse to `out` (atomically: to a temporary folder, then renamed).
pub fn generate(out: &Path, options: &GenerateOptions) -> Result<GenerateSummary> {
    let started = Instant::now();
    if !(1..=MAX_CUSTOMERS).contains(&options.customers) {
        return Err(ArqError::Usage(format!(
            "--customers {} is out of range: from 1 to {MAX_CUSTOMERS}",
            options.customers
        )));
    }
    let snapshots = snapshot_dates(options.end, options.months)?;
    if out.exists() && !is_empty_dir(out)? && !options.force {
        return Err(ArqError::Input(format!(
            "{} exists and is not empty; pass --force to replace it",
            out.display()
        )));
    }
    let staging = StagingDir::new(out)?;

    let (world, team) = world(options, &snapshots)?;
    write_collectors(staging.path(), &team)?;
    let mut summary = write_shards(staging.path(), &world, options)?;
    summary.collectors = team.len() as u64;
    summary.snapshots = snapshots;

    staging.commit(options.force)?;
    summary.seconds = started.elapsed().as_secs_f64();
    Ok(summary)
}

/// The simulated world (history start, snapshots, collectors by segment) and the team.
fn world(
    options: &GenerateOptions,
    snapshots: &[NaiveDate],
) -> Result<(World, Vec<sim::Collector>)> {
    let history_start = snapshots[0]
        .with_day(1)
        .and_then(|d| d.checked_sub_months(chrono::Months::new(6)))
        .ok_or_else(|| ArqError::Usage(format!("--end {} is out of range", options.end)))?;
    let team = sim::collectors(options.seed, options.customers);
    let mut collectors_by_segment: [Vec<String>; 4] = Default::default();
    for c in team.iter().filter(|c| c.role == "collector") {
        for s in &c.segments {
            let i = SEGMENTS.iter().position(|x| x == s).expect("known segment");
            collectors_by_segment[i].push(c.id.clone());
        }
    }
    let world = World {
        seed: options.seed,
        history_start: dates::to_days(history_start),
        snapshots: snapshots.iter().copied().map(dates::to_days).collect(),
        collectors_by_segment,
    };
    Ok((world, team))
}

/// A progress bar over the customers, on a terminal only.
fn progress_bar(options: &GenerateOptions) -> ProgressBar {
    if !(options.progress && std::io::stderr().is_terminal()) {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(
        Some(options.customers),
        ProgressDrawTarget::stderr_with_hz(4),
    );
    if let Ok(style) = ProgressStyle::with_template(
        "generating {bar:40} {human_pos}/{human_len} customers ({per_sec}, eta {eta})",
    ) {
        bar.set_style(style);
    }
    bar
}

/// Simulates and writes every shard into `root`, one thread per core; the totals.
fn write_shards(root: &Path, world: &World, options: &GenerateOptions) -> Result<GenerateSummary> {
    let progress = progress_bar(options);
    let shards = options.customers.div_ceil(SHARD_CUSTOMERS);
    let next_shard = AtomicU64::new(0);
    let totals = Mutex::new(GenerateSummary::default());
    let failure: Mutex<Option<ArqError>> = Mutex::new(None);
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(shards as usize);
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    if failure.lock().map(|f| f.is_some()).unwrap_or(true) {
                        break;
                    }
                    let shard = next_shard.fetch_add(1, Ordering::Relaxed);
                    if shard >= shards {
                        break;
                    }
                    let first = shard * SHARD_CUSTOMERS;
                    let last = (first + SHARD_CUSTOMERS).min(options.customers);
                    match write_shard(root, world, shard, first..last, &progress) {
                        Ok(counts) => {
                            if let Ok(mut t) = totals.lock() {
                                t.add(&counts);
                            }
                        }
                        Err(e) => {
                            if let Ok(mut f) = failure.lock() {
                                f.get_or_insert(e);
                            }
                        }
                    }
                }
            });
        }
    });
    progress.finish_and_clear();
    if let Some(e) = failure.into_inner().ok().flatten() {
        return Err(e);
    }
    Ok(totals.into_inner().unwrap_or_default())
}

impl GenerateSummary {
    fn add(&mut self, other: &GenerateSummary) {
        self.customers += other.customers;
        self.invoices += other.invoices;
        self.payments += other.payments;
        self.activities += other.activities;
        self.write_offs += other.write_offs;
        self.open_items_latest += other.open_items_latest;
        self.open_items_total += other.open_items_total;
    }
}

fn write_collectors(root: &Path, team: &[sim::Collector]) -> Result<()> {
    let mut sink = ParquetSink::create(
        &root.join("collectors/part-00000.parquet"),
        contract::collectors_schema(),
    )?;
    for c in team {
        sink.str(&c.id)
            .str(&c.name)
            .str(c.role)
            .int(c.daily_capacity)
            .str_list(&c.segments);
        sink.end_row()?;
    }
    sink.finish()
}

/// The sinks of one shard: one file per table, and per snapshot for snapshot tables.
struct ShardSinks {
    customers: Vec<ParquetSink>,
    open_items: Vec<ParquetSink>,
    invoices: ParquetSink,
    payments: ParquetSink,
    activities: ParquetSink,
    write_offs: ParquetSink,
}

impl ShardSinks {
    fn create(root: &Path, world: &World, shard: u64) -> Result<Self> {
        let file = format!("part-{shard:05}.parquet");
        let snapshot_sinks =
            |table: &str, schema: fn() -> datafusion::arrow::datatypes::SchemaRef| {
                world
                    .snapshots
                    .iter()
                    .map(|&day| {
                        let date = dates::text(day);
                        let dir = root.join(table).join(format!("{SNAPSHOT_COLUMN}={date}"));
                        ParquetSink::create(&dir.join(&file), schema())
                    })
                    .collect::<Result<Vec<_>>>()
            };
        Ok(ShardSinks {
            customers: snapshot_sinks("customers", contract::customers_schema)?,
            open_items: snapshot_sinks("open_items", contract::open_items_schema)?,
            invoices: ParquetSink::create(
                &root.join("invoices").join(&file),
                contract::invoices_schema(),
            )?,
            payments: ParquetSink::create(
                &root.join("payments").join(&file),
                contract::payments_schema(),
            )?,
            activities: ParquetSink::create(
                &root.join("activities").join(&file),
                contract::activities_schema(),
            )?,
            write_offs: ParquetSink::create(
                &root.join("write_offs").join(&file),
                contract::write_offs_schema(),
            )?,
        })
    }

    fn finish(self) -> Result<()> {
        for sink in self.customers.into_iter().chain(self.open_items) {
            sink.finish()?;
        }
        self.invoices.finish()?;
        self.payments.finish()?;
        self.activities.finish()?;
        self.write_offs.finish()
    }
}

/// Simulates customers `range` and writes them into shard `shard`'s files.
fn write_shard(
    root: &Path,
    world: &World,
    shard: u64,
    range: std::ops::Range<u64>,
    progress: &ProgressBar,
) -> Result<GenerateSummary> {
    let mut sinks = ShardSinks::create(root, world, shard)?;
    let mut counts = GenerateSummary::default();
    let mut history = History::default();
    let mut id = String::with_capacity(32);
    // Invoice ids of the current customer, formatted once and reused in every snapshot.
    let mut invoice_ids: Vec<String> = Vec::new();
    for index in range {
        sim::simulate(world, index, &mut history);
        counts.customers += 1;
        let digits = &history.customer.id[1..];
        // Reuse the strings (and their capacity) of earlier customers.
        if invoice_ids.len() < history.invoices.len() {
            invoice_ids.resize_with(history.invoices.len(), String::new);
        }
        for (slot, inv) in invoice_ids.iter_mut().zip(&history.invoices) {
            set_id(slot, format_args!("INV-{digits}-{:04}", inv.seq));
        }

        let contact = sim::Contact::of(world.seed, index, &history.customer);
        write_snapshot_rows(
            &mut sinks,
            world,
            &history,
            &contact,
            &invoice_ids,
            &mut counts,
        )?;
        write_invoice_rows(&mut sinks, &history, &invoice_ids, &mut id, &mut counts)?;
        write_activity_rows(&mut sinks, &history, &invoice_ids, &mut id, &mut counts)?;
        progress.inc(1);
    }
    sinks.finish()?;
    Ok(counts)
}

/// One customer's rows in every snapshot of `customers` and `open_items`.
fn write_snapshot_rows(
    sinks: &mut ShardSinks,
    world: &World,
    history: &History,
    contact: &sim::Contact,
    invoice_ids: &[String],
    counts: &mut GenerateSummary,
) -> Result<()> {
    let c = &history.customer;
    let currency = c.currency();
    // Invoice `seq` is the seq-th invoice of the customer (1-based).
    let invoice_id = |seq: u32| invoice_ids[seq as usize - 1].as_str();
    let last_snapshot = world.snapshots.len() - 1;
    for (s, &day) in world.snapshots.iter().enumerate() {
        if c.since > day {
            continue;
        }
        sinks.customers[s]
            .str(&c.id)
            .str(&c.name)
            .str(SEGMENTS[c.segment])
            .str(sim::REGIONS[c.region].0)
            .str(currency)
            .money(c.credit_limit_on(day))
            .int(c.terms)
            .opt_str(c.collector_id.as_deref())
            .date(c.since)
            .boolean(c.high_profile)
            .boolean(c.fraud_suspected_on(day))
            .str(&contact.name)
            .str(&contact.phone)
            .str(&contact.email)
            .opt_date(contact.last_review_on(day));
        sinks.customers[s].end_row()?;
        for inv in &history.invoices {
            if inv.invoice_date > day {
                break;
            }
            if inv.closed <= day {
                continue;
            }
            let open = inv.open_on(day);
            if open <= 0 {
                continue;
            }
            let promise = inv.promise_on(day);
            sinks.open_items[s]
                .str(invoice_id(inv.seq))
                .str(&c.id)
                .date(inv.invoice_date)
                .date(inv.due_date)
                .str(currency)
                .money(inv.amount)
                .money(open)
                .boolean(inv.disputed_on(day))
                .opt_date(promise.map(|p| p.0))
                .opt_money(promise.map(|p| p.1));
            sinks.open_items[s].end_row()?;
            counts.open_items_total += 1;
            if s == last_snapshot {
                counts.open_items_latest += 1;
            }
        }
    }

    Ok(())
}

/// One customer's invoices, payments and write-offs.
fn write_invoice_rows(
    sinks: &mut ShardSinks,
    history: &History,
    invoice_ids: &[String],
    id: &mut String,
    counts: &mut GenerateSummary,
) -> Result<()> {
    let c = &history.customer;
    let currency = c.currency();
    // Invoice `seq` is the seq-th invoice of the customer (1-based).
    let invoice_id = |seq: u32| invoice_ids[seq as usize - 1].as_str();
    let digits = &c.id[1..];
    for inv in &history.invoices {
        let invoice = invoice_id(inv.seq);
        sinks
            .invoices
            .str(invoice)
            .str(&c.id)
            .date(inv.invoice_date)
            .date(inv.due_date)
            .str(currency)
            .money(inv.amount);
        sinks.invoices.end_row()?;
        counts.invoices += 1;
        for (n, &(date, amount)) in inv.payments.iter().enumerate() {
            set_id(id, format_args!("PAY-{digits}-{:04}-{}", inv.seq, n + 1));
            sinks
                .payments
                .str(id)
                .str(invoice)
                .str(&c.id)
                .date(date)
                .money(amount);
            sinks.payments.end_row()?;
            counts.payments += 1;
        }
        if let Some((date, amount, reason)) = inv.write_off {
            set_id(id, format_args!("WO-{digits}-{:04}", inv.seq));
            sinks
                .write_offs
                .str(id)
                .str(invoice)
                .str(&c.id)
                .date(date)
                .money(amount)
                .str(reason);
            sinks.write_offs.end_row()?;
            counts.write_offs += 1;
        }
    }

    Ok(())
}

/// One customer's activities.
fn write_activity_rows(
    sinks: &mut ShardSinks,
    history: &History,
    invoice_ids: &[String],
    id: &mut String,
    counts: &mut GenerateSummary,
) -> Result<()> {
    let c = &history.customer;
    // Invoice `seq` is the seq-th invoice of the customer (1-based).
    let invoice_id = |seq: u32| invoice_ids[seq as usize - 1].as_str();
    let digits = &c.id[1..];
    for (n, a) in history.activities.iter().enumerate() {
        set_id(id, format_args!("ACT-{digits}-{:05}", n + 1));
        let collector = if a.by_collector {
            c.collector_id.as_deref()
        } else {
            None
        };
        sinks
            .activities
            .str(id)
            .str(&c.id)
            .opt_str(Some(invoice_id(a.invoice_seq)))
            .date(a.date)
            .str(a.kind)
            .opt_str(collector)
            .opt_str(Some(a.outcome))
            .opt_date(a.promise.map(|p| p.0))
            .opt_money(a.promise.map(|p| p.1));
        sinks.activities.end_row()?;
        counts.activities += 1;
    }
    Ok(())
}

/// Formats an identifier into a reused buffer.
fn set_id(buffer: &mut String, args: std::fmt::Arguments<'_>) {
    use std::fmt::Write;
    buffer.clear();
    let _ = buffer.write_fmt(args);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshots_are_month_ends() {
        let end = NaiveDate::from_ymd_opt(2024, 3, 31).unwrap();
        let dates: Vec<String> = snapshot_dates(end, 3)
            .unwrap()
            .iter()
            .map(|d| d.to_string())
            .collect();
        assert_eq!(dates, ["2024-01-31", "2024-02-29", "2024-03-31"]);
        assert!(snapshot_dates(NaiveDate::from_ymd_opt(2024, 3, 30).unwrap(), 3).is_err());
        assert!(snapshot_dates(end, 0).is_err());
    }
}

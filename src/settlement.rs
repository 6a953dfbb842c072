//! The invoice settlement table: the day each invoice was paid in full, kept by the
//! nightly job between nights so that the features stop settling every invoice of 18
//! months against every payment each night (issue 17; `arq settle` builds it alone).
//!
//! **Where.** Beside the outputs, in `OUT/_settlement/` (the warehouse stays read-only to
//! arq): `state.json`, the parts of the settled table (`settled-GENERATION.parquet`, one
//! per update that settled invoices, each sorted by customer and invoice) and the open
//! invoices (`open-GENERATION.parquet`, rewritten by each update), the payments and
//! invoices by month (below) and each customer's greatest invoice id. `state.json` is written
//! last (atomically) and names the files that make the table, so an update that fails
//! half-way leaves the previous table whole; files it does not name are removed by the
//! next update. A session sees the settled rows as [`SETTLEMENT_TABLE`] (`customer_id,
//! invoice_id, due_date, amount, paid_date, currency`), and those with the open ones as
//! [`PAID_TABLE`] (every invoice's currency, amount and paid day, NULL while open: what
//! `promise_kept_rate` judges a promise from, beside the payments of its window).
//!
//! **The rule** (the features' since issue 5, DOMAIN.md §4): an invoice is paid in full
//! when its payments add up to its amount; the day is its last payment's date. What is
//! kept per open invoice — the sum of its payments, the date of its last payment, the sum
//! paid that day, the smallest payment — merges exactly with any later payments, in any
//! order: a late-recorded, back-dated payment counts on its own date (it may settle the
//! invoice on the date of its last payment, which is then the day). The table gives the
//! feature query's days for every snapshot (a settled invoice counts at `t` when `paid_date
//! <= t`) as long as no invoice was paid in full before its last payment day; the contract
//! says payments apply to open invoices, so that is what the table checks, with the
//! other cases where settling once would not give the query's days:
//! - a payment after the invoice was paid in full (or on an invoice paid in full by an
//!   earlier file), a negative payment, an invoice id twice for one customer, a payment
//!   recorded under another customer than its invoice's.
//!
//! When one is found, the table says so (`state.json`'s `unusable`, the nightly summary)
//! and the nights settle from the payments again, as before, until a rebuild finds the
//! warehouse clean. Invoice ids are the contract's key: the same id for two customers is
//! not looked for.
//!
//! **The payments by month** ([`PAYMENTS_TABLE`]): every payment's customer, date,
//! amount and invoice id, with its invoice's currency, in one file per update and payment
//! month (`payments-GENERATION-YYYY-MM.parquet`), so that the report's month (its cash
//! collected, its promises' windows) reads those months' files instead of every payment
//! joined to every invoice. Each update
//! writes the payments of the files it reads; a payment's currency is its invoice's, found
//! among the invoices new in the update or still open (the open rows keep their currency).
//! A payment whose invoice is not known then — it has not arrived, or was paid in full
//! already — is noted (`payments_unusable`, sticky until a rebuild) and the report reads
//! the warehouse instead; so it does when the settled table is not usable (an invoice twice,
//! a payment under another customer: the warehouse's join is then not one invoice per
//! payment).
//!
//! **The invoices by month** ([`INVOICES_TABLE`]): every invoice row's customer, date,
//! currency and amount, one file per update and invoice month
//! (`invoices-GENERATION-YYYY-MM.parquet`): `ar_metrics` reads its periods' credit sales
//! from them (the months it needs, not 132 M invoices at a million customers). A copy of
//! columns, usable whatever the rows hold.
//!
//! **Fresh.** `state.json` lists every `invoices` and `payments` file it consumed (path,
//! size, modification time). The next update reads only the files that were added since;
//! a file changed or removed (a reload, a correction) rebuilds the table from scratch, as
//! do `arq settle --rebuild`, another warehouse, a missing or unreadable state. Every
//! update runs customer slice by customer slice (the feature slices'), so memory stays
//! bounded at any size.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use arq_models::features::CustomerRange;
pub use arq_models::features::SETTLEMENT_TABLE;
use arq_udfs::table_function::collect_sql;
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, BooleanBuilder, RecordBatch, StringBuilder, UInt32Array,
};
use datafusion::arrow::compute::{cast, concat_batches, filter_record_batch, take_record_batch};
use datafusion::arrow::datatypes::{DataType, Date32Type, Field, Int64Type, Schema, SchemaRef};
use datafusion::catalog::TableProvider;
use datafusion::common::HashMap;
use datafusion::common::runtime::SpawnedTask;
use datafusion::datasource::MemTable;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::execution::SessionState;
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::prelude::SessionContext;
use futures::StreamExt;
use serde::{Deserialize, Serialize};

use crate::contract::MONEY;
use crate::error::{ArqError, Result};
use crate::output::atomic::{AtomicFile, write_atomically};
use crate::warehouse::Warehouse;

/// The folder under the outputs.
pub const FOLDER: &str = "_settlement";
const STATE: &str = "state.json";
/// The layout of the files; another one is rebuilt (2: the open rows keep their invoice's
/// currency, and the payments by month are kept; 3: the settled rows keep their currency
/// and the payments by month their invoice id).
const FORMAT: u32 = 3;
/// The invoices by month, as a session sees them ([`Settlement::invoices_table`]; what
/// `ar_metrics` reads its credit sales from when a session has it).
pub use arq_udfs::metrics::INVOICES_BY_MONTH as INVOICES_TABLE;
/// Every invoice with its currency, amount and the day it was paid in full (NULL while
/// open), as a session sees it ([`Settlement::invoices_paid_table`]).
pub use arq_udfs::metrics::INVOICES_PAID as PAID_TABLE;
/// The payments with their invoice's currency, as a session sees them
/// ([`Settlement::payments_table`]).
pub use arq_udfs::metrics::PAYMENTS_BY_MONTH as PAYMENTS_TABLE;
/// The event tables the table is made of.
const INPUTS: [&str; 2] = ["invoices", "payments"];

/// One warehouse file the table consumed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct InputFile {
    table: String,
    /// Below the warehouse's folder.
    path: String,
    size: u64,
    modified: String,
}

/// `state.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct State {
    format: u32,
    /// The warehouse's folder ([`crate::storage::Location::identity`]: the same however
    /// it is spelled; states of earlier versions hold it as it was given).
    warehouse: String,
    /// Counts the updates; in the files' names.
    generation: u64,
    inputs: Vec<InputFile>,
    /// The settled table's parts, oldest first.
    settled: Vec<String>,
    open: String,
    /// Each customer's greatest invoice id seen (an invoice arriving again can only have
    /// an id up to it).
    known: String,
    settled_rows: u64,
    open_rows: u64,
    /// Why the table does not give the feature query's days (see the module
    /// documentation); sticky until a rebuild.
    unusable: Option<String>,
    /// The payments by month: one file per update and payment month
    /// (`payments-GENERATION-YYYY-MM.parquet`), oldest first.
    payments: Vec<String>,
    payments_rows: u64,
    /// Why the payments by month are not every payment with its invoice's currency (a
    /// payment whose invoice was not known when it was read); sticky until a rebuild.
    payments_unusable: Option<String>,
    /// The invoices by month: one file per update and invoice month
    /// (`invoices-GENERATION-YYYY-MM.parquet`), oldest first.
    invoices: Vec<String>,
    invoices_rows: u64,
}

/// A settlement table on disk, as its state describes it.
#[derive(Debug, Clone)]
pub struct Settlement {
    dir: PathBuf,
    state: State,
}

/// What an update did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum How {
    /// From every file, and why.
    Rebuilt(String),
    /// From the files added since the last update.
    Updated { files: usize },
    /// No file was added.
    Unchanged,
}

/// An update's result.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub how: How,
    pub settlement: Settlement,
    pub seconds: f64,
}

impl Outcome {
    /// One line for a summary.
    pub fn line(&self) -> String {
        let s = &self.settlement.state;
        let how = match &self.how {
            How::Rebuilt(why) => format!("rebuilt ({why})"),
            How::Updated { files } => format!(
                "updated from {files} new file{}",
                if *files == 1 { "" } else { "s" }
            ),
            How::Unchanged => "up to date".into(),
        };
        let used = match &s.unusable {
            None => "used by the features".to_string(),
            Some(why) => format!("not used: {why}; the night settles from the payments"),
        };
        let payments = match &s.payments_unusable {
            None => String::new(),
            Some(why) => format!("; the payments by month not used: {why}"),
        };
        format!(
            "invoice settlement {}: {how} in {:.1} s, {} settled and {} open invoices, {} \
             payments by month; {used}{payments}",
            self.settlement.dir.display(),
            self.seconds,
            s.settled_rows,
            s.open_rows,
            s.payments_rows,
        )
    }
}

impl Settlement {
    /// The settled rows as a table, when they give the feature query's days.
    pub fn table(&self) -> Result<Option<Arc<dyn TableProvider>>> {
        if self.state.unusable.is_some() {
            return Ok(None);
        }
        let files = self.paths(&self.state.settled);
        Ok(Some(parquet_table(&files, settled_schema())?))
    }

    /// The payments with their invoice's currency ([`payments_schema`]), when every
    /// payment's invoice was known and the settled table is usable (an invoice twice in
    /// `invoices`, a payment under another customer than its invoice's: the warehouse's
    /// join is not one invoice per payment, and the report reads the warehouse instead).
    /// One file per payment month (and update): a query of one month's payments reads
    /// that month's files, the others pruned by their dates' statistics.
    pub fn payments_table(&self) -> Result<Option<Arc<dyn TableProvider>>> {
        if !self.payments_usable() {
            return Ok(None);
        }
        let files = self.paths(&self.state.payments);
        Ok(Some(parquet_table(&files, payments_schema())?))
    }

    /// Whether the payments by month are every payment, each with its one invoice: the
    /// settled table usable and every payment's invoice known when it was read.
    fn payments_usable(&self) -> bool {
        self.state.unusable.is_none() && self.state.payments_unusable.is_none()
    }

    /// The paths of files of this table named in its state.
    fn paths<'a>(&self, names: impl IntoIterator<Item = &'a String>) -> Vec<PathBuf> {
        names.into_iter().map(|f| self.dir.join(f)).collect()
    }

    /// Every invoice the table holds — the settled rows and the open ones, orphan
    /// payments among them (`invoice_rows` 0) — as [`paid_schema`]: what `promise_kept_rate`
    /// judges a promise from, beside the payments by month. Only with them: when the
    /// settled table is usable (an invoice's payments up to a day reach its amount exactly
    /// when it was paid in full by then) and every payment's invoice was known.
    pub fn invoices_paid_table(&self) -> Result<Option<Arc<dyn TableProvider>>> {
        if !self.payments_usable() {
            return Ok(None);
        }
        // The settled parts have no `invoice_rows` (one row each) and the open file no
        // `paid_date`: each is read as NULL where its file lacks it.
        let files = self.paths(self.state.settled.iter().chain([&self.state.open]));
        Ok(Some(parquet_table(&files, paid_schema())?))
    }

    /// `warehouse` with the tables derived here that are usable: the settled rows
    /// ([`SETTLEMENT_TABLE`]), the payments by month ([`PAYMENTS_TABLE`]) and every
    /// invoice's paid day ([`PAID_TABLE`]).
    pub fn derived(&self, warehouse: &Warehouse) -> Result<Warehouse> {
        let mut derived = warehouse.clone();
        if let Some(table) = self.table()? {
            derived = derived.with_derived(SETTLEMENT_TABLE, table);
        }
        if let Some(table) = self.payments_table()? {
            derived = derived.with_derived(PAYMENTS_TABLE, table);
        }
        if let Some(table) = self.invoices_paid_table()? {
            derived = derived.with_derived(PAID_TABLE, table);
        }
        Ok(derived.with_derived(INVOICES_TABLE, self.invoices_table()?))
    }

    /// The invoices by month ([`invoices_schema`]): every row of `invoices` the table
    /// consumed, one file per invoice month (and update). Always usable: a copy of some
    /// columns, whatever the rows hold.
    pub fn invoices_table(&self) -> Result<Arc<dyn TableProvider>> {
        let files = self.paths(&self.state.invoices);
        parquet_table(&files, invoices_schema())
    }

    /// Why the table is not used, if it is not.
    pub fn unusable(&self) -> Option<&str> {
        self.state.unusable.as_deref()
    }

    /// Settled and open invoices.
    pub fn rows(&self) -> (u64, u64) {
        (self.state.settled_rows, self.state.open_rows)
    }
}

/// The settled table's columns.
pub fn settled_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("customer_id", DataType::Utf8, false),
        Field::new("invoice_id", DataType::Utf8, false),
        Field::new("due_date", DataType::Date32, true),
        Field::new("amount", MONEY, true),
        Field::new("paid_date", DataType::Date32, false),
        Field::new("currency", DataType::Utf8, true),
    ]))
}

/// [`Settlement::invoices_paid_table`]'s columns ([`arq_udfs::metrics::INVOICES_PAID`]).
fn paid_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("customer_id", DataType::Utf8, true),
        Field::new("invoice_id", DataType::Utf8, true),
        Field::new("amount", MONEY, true),
        Field::new("currency", DataType::Utf8, true),
        Field::new("paid_date", DataType::Date32, true),
        Field::new("invoice_rows", DataType::Int64, true),
    ]))
}

/// The payments by month's columns: each payment's customer, date and amount as
/// `payments` has them, with its invoice's currency (what a month's cash per customer and
/// currency needs) and its invoice id (what a promise's window of payments needs).
pub fn payments_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("customer_id", DataType::Utf8, true),
        Field::new("payment_date", DataType::Date32, true),
        Field::new("amount", MONEY, true),
        Field::new("currency", DataType::Utf8, true),
        Field::new("invoice_id", DataType::Utf8, true),
    ]))
}

/// The invoices by month's columns: what credit sales per customer, month and currency
/// need of `invoices`.
pub fn invoices_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("customer_id", DataType::Utf8, true),
        Field::new("invoice_date", DataType::Date32, true),
        Field::new("currency", DataType::Utf8, true),
        Field::new("amount", MONEY, true),
    ]))
}

/// What is kept of an invoice not (yet) paid in full, or of payments whose invoice has
/// not arrived: what merges with later payments.
fn open_schema() -> SchemaRef {
    let sum = DataType::Decimal128(38, 2);
    Arc::new(Schema::new(vec![
        Field::new("customer_id", DataType::Utf8, true),
        Field::new("invoice_id", DataType::Utf8, true),
        Field::new("due_date", DataType::Date32, true),
        Field::new("amount", MONEY, true),
        Field::new("invoice_rows", DataType::Int64, false),
        Field::new("paid", sum.clone(), false),
        Field::new("first_payment", DataType::Date32, true),
        Field::new("last_payment", DataType::Date32, true),
        Field::new("last_amount", sum, true),
        Field::new("smallest", MONEY, true),
        Field::new("currency", DataType::Utf8, true),
    ]))
}

/// Each customer's greatest invoice id.
fn known_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("customer_id", DataType::Utf8, true),
        Field::new("last_invoice_id", DataType::Utf8, true),
    ]))
}

/// The customers' greatest invoice ids after the new invoices, for `{range}`.
const KNOWN_SQL: &str = "
SELECT customer_id, max(invoice_id) AS last_invoice_id
FROM (SELECT customer_id, last_invoice_id AS invoice_id FROM settle_known WHERE {range}
      UNION ALL
      SELECT customer_id, invoice_id FROM settle_new_invoices WHERE {range})
GROUP BY customer_id
ORDER BY customer_id";

/// New invoices that may have been seen before (an id up to their customer's greatest),
/// found among the settled ones, for `{range}`.
const AGAIN_SQL: &str = "
WITH maybe AS (
    SELECT n.invoice_id, n.customer_id
    FROM settle_new_invoices n
    JOIN settle_known k ON k.customer_id = n.customer_id
    WHERE {range:n} AND {range:k} AND n.invoice_id <= k.last_invoice_id
)
SELECT m.invoice_id, m.customer_id
FROM maybe m
JOIN settle_settled s ON s.invoice_id = m.invoice_id AND s.customer_id = m.customer_id
WHERE {range:s}
ORDER BY m.customer_id, m.invoice_id
LIMIT 1";

/// The merge of the open rows with new invoices and payments, for the customers of
/// `{range}` (`{merged}` is `merged`, or `new_rows` when there are no open rows to merge
/// with: a rebuild): the new files aggregated per invoice, joined to the open rows (one
/// row per invoice on each side) and combined, sorted, with each row's status (`settled`, `open`, or
/// what keeps the table from giving the feature query's days).
const MERGE_SQL: &str = "
WITH inv AS (
    SELECT customer_id, invoice_id, min(due_date) AS due_date, min(amount) AS amount,
           count(*) AS invoice_rows, min(currency) AS currency
    FROM settle_new_invoices
    WHERE {range}
    GROUP BY customer_id, invoice_id
),
days AS (
    SELECT customer_id, invoice_id, payment_date, sum(amount) AS amount, min(amount) AS smallest
    FROM settle_new_payments
    WHERE {range}
    GROUP BY customer_id, invoice_id, payment_date
),
paid AS (
    SELECT customer_id, invoice_id, sum(amount) AS paid, min(payment_date) AS first_payment,
           max(payment_date) AS last_payment,
           first_value(amount ORDER BY payment_date DESC) AS last_amount,
           min(smallest) AS smallest
    FROM days
    GROUP BY customer_id, invoice_id
),
new_rows AS (
    SELECT coalesce(i.customer_id, p.customer_id) AS customer_id,
           coalesce(i.invoice_id, p.invoice_id) AS invoice_id,
           i.due_date, i.amount, coalesce(i.invoice_rows, 0) AS invoice_rows,
           CAST(coalesce(p.paid, 0) AS DECIMAL(38, 2)) AS paid,
           p.first_payment, p.last_payment,
           CAST(p.last_amount AS DECIMAL(38, 2)) AS last_amount, p.smallest, i.currency
    FROM inv i
    FULL JOIN paid p ON p.customer_id = i.customer_id AND p.invoice_id = i.invoice_id
),
open_rows AS (
    SELECT * FROM settle_open WHERE {range}
),
merged AS (
    SELECT coalesce(o.customer_id, n.customer_id) AS customer_id,
           coalesce(o.invoice_id, n.invoice_id) AS invoice_id,
           least(o.due_date, n.due_date) AS due_date,
           least(o.amount, n.amount) AS amount,
           CAST(coalesce(o.invoice_rows, 0) + coalesce(n.invoice_rows, 0) AS BIGINT) AS invoice_rows,
           CAST(coalesce(o.paid, 0) + coalesce(n.paid, 0) AS DECIMAL(38, 2)) AS paid,
           least(o.first_payment, n.first_payment) AS first_payment,
           greatest(o.last_payment, n.last_payment) AS last_payment,
           CAST(CASE
             WHEN o.last_payment IS NULL THEN n.last_amount
             WHEN n.last_payment IS NULL THEN o.last_amount
             WHEN o.last_payment > n.last_payment THEN o.last_amount
             WHEN n.last_payment > o.last_payment THEN n.last_amount
             ELSE o.last_amount + n.last_amount
           END AS DECIMAL(38, 2)) AS last_amount,
           least(o.smallest, n.smallest) AS smallest,
           coalesce(o.currency, n.currency) AS currency
    FROM open_rows o
    FULL JOIN new_rows n ON n.customer_id = o.customer_id AND n.invoice_id = o.invoice_id
)
SELECT customer_id, invoice_id, due_date, amount, invoice_rows, paid, first_payment,
       last_payment, last_amount, smallest, currency,
       CASE
         WHEN invoice_rows > 1 THEN 'the invoice is in `invoices` more than once'
         WHEN smallest < 0 THEN 'a payment of the invoice is negative'
         WHEN amount IS NOT NULL AND last_payment IS NOT NULL
              AND ((amount > 0 AND paid - last_amount >= amount)
                   OR (amount <= 0 AND first_payment < last_payment))
           THEN 'the invoice was paid in full before its last payment'
         WHEN amount IS NOT NULL AND last_payment IS NOT NULL AND paid >= amount
           THEN 'settled'
         ELSE 'open'
       END AS status
FROM {merged}
ORDER BY customer_id, invoice_id";

/// The new payments of `{range}`, in the files' order ([`with_currency`] adds their
/// invoice's currency).
const PAYMENTS_SQL: &str = "
SELECT customer_id, payment_date, amount, invoice_id
FROM settle_new_payments
WHERE {range}";

/// The new invoices of `{range}`, in the files' order, as [`invoices_schema`]'s columns.
const INVOICES_SQL: &str = "
SELECT customer_id, invoice_date, currency, amount
FROM settle_new_invoices
WHERE {range}";

/// A slice's settling holds more rows than its feature query (every invoice and payment
/// of its customers, the merged rows, the payments with their currency, at once): it
/// settles a fraction of the feature query's customers at a time. At 1 M customers
/// (the default 25,000 a feature slice) a rebuild by slices of 12,500 took 420–434 s and
/// 1.85–1.96 GB, of 6,250 347 s and 1.15 GB, of 3,125 362 s and 0.79 GB, the same files
/// byte for byte (benches/README.md, fourteenth session): smaller slices' joins and
/// lookups fit the caches better, and glibc's heaps grow less over the build.
const SLICE_DIVISOR: usize = 8;

/// Brings the table in `out`'s settlement folder up to date with the warehouse's
/// `invoices` and `payments` (from scratch with `rebuild`), an eighth of `slice`
/// customers at a time ([`SLICE_DIVISOR`]).
pub async fn update(
    warehouse: &Warehouse,
    out: &Path,
    rebuild: bool,
    slice: usize,
) -> Result<Outcome> {
    let started = Instant::now();
    let dir = out.join(FOLDER);
    let current = inputs_of(warehouse);
    let (previous, new_files) = if rebuild {
        (None, Err("asked for".to_string()))
    } else {
        kept_and_added(&dir, warehouse, &current)
    };
    let how = match &new_files {
        Err(why) => How::Rebuilt(why.clone()),
        Ok(new) if new.is_empty() => How::Unchanged,
        Ok(new) => How::Updated { files: new.len() },
    };
    let state = match (&how, previous) {
        (How::Unchanged, Some(state)) => state,
        (How::Updated { .. }, Some(state)) => {
            let new = new_files.unwrap_or_default();
            merge(warehouse, &dir, Some(state), &current, &new, slice).await?
        }
        _ => merge(warehouse, &dir, None, &current, &current, slice).await?,
    };
    Ok(Outcome {
        how,
        settlement: Settlement { dir, state },
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Why [`update`] would build the table in `out`'s settlement folder from scratch (none
/// kept, another warehouse's, a consumed file changed or gone), or `None` when it would
/// update or keep it.
pub fn rebuild_reason(warehouse: &Warehouse, out: &Path) -> Option<String> {
    kept_and_added(&out.join(FOLDER), warehouse, &inputs_of(warehouse))
        .1
        .err()
}

/// The state kept in `dir` and the files of `current` it has not consumed, or why the
/// table must be built from scratch (no usable state, a consumed file changed or gone):
/// what [`update`] decides on and [`rebuild_reason`] tells beforehand.
fn kept_and_added(
    dir: &Path,
    warehouse: &Warehouse,
    current: &[InputFile],
) -> (Option<State>, std::result::Result<Vec<InputFile>, String>) {
    match State::read(dir, warehouse) {
        Err(why) => (None, Err(why)),
        Ok(state) => {
            let new = added_files(&state.inputs, current);
            (Some(state), new)
        }
    }
}

/// The table another process (`arq settle --rebuild`) built in `out`'s settlement folder,
/// read back as the outcome of a build for `why` that took `seconds`: its state must be
/// the warehouse's, built from the files this process lists.
pub fn built_apart(
    warehouse: &Warehouse,
    out: &Path,
    why: String,
    seconds: f64,
) -> Result<Outcome> {
    let dir = out.join(FOLDER);
    let state = State::read(&dir, warehouse).map_err(|e| {
        ArqError::Internal(format!(
            "the settlement table built in {} cannot be read back: {e}",
            dir.display()
        ))
    })?;
    if state.inputs != inputs_of(warehouse) {
        return Err(ArqError::Warehouse {
            path: PathBuf::from(warehouse.root().to_string()),
            message: "its invoices or payments files changed while the settlement table \
                      was built; run the night again"
                .into(),
        });
    }
    Ok(Outcome {
        how: How::Rebuilt(why),
        settlement: Settlement { dir, state },
        seconds,
    })
}

/// The table in `out`'s settlement folder when it is up to date with the warehouse (no
/// file added, changed or removed since) and usable, read without changing anything:
/// what `arq report --nights OUT` reads.
pub fn read_current(warehouse: &Warehouse, out: &Path) -> Option<Settlement> {
    let dir = out.join(FOLDER);
    let state = State::read(&dir, warehouse).ok()?;
    (state.inputs == inputs_of(warehouse) && state.unusable.is_none())
        .then_some(Settlement { dir, state })
}

impl State {
    /// The state in `dir`, or why there is none to build on.
    fn read(dir: &Path, warehouse: &Warehouse) -> std::result::Result<State, String> {
        let path = dir.join(STATE);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err("there was none".into());
            }
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        let state: State = serde_json::from_slice(&bytes)
            .map_err(|e| format!("{} is unreadable: {e}", path.display()))?;
        if state.format != FORMAT {
            return Err(format!("format {} is not {FORMAT}", state.format));
        }
        // Kept as written by earlier versions: the same folder when it resolves to it
        // here (a relative path, from this directory).
        let here = warehouse.root().identity();
        let same = |kept: &str| {
            kept == here
                || crate::storage::Location::parse(kept).is_ok_and(|l| l.identity() == here)
        };
        if !same(&state.warehouse) {
            return Err(format!("it was built from warehouse {}", state.warehouse));
        }
        for name in state.settled.iter().chain([&state.open, &state.known]) {
            if !dir.join(name).is_file() {
                return Err(format!("its file {name} is missing"));
            }
        }
        Ok(state)
    }
}

/// The `invoices` and `payments` files of the warehouse, by table and path.
fn inputs_of(warehouse: &Warehouse) -> Vec<InputFile> {
    let root = warehouse.root();
    let mut files: Vec<InputFile> = warehouse
        .tables()
        .iter()
        .filter(|t| INPUTS.contains(&t.contract.name))
        .flat_map(|t| {
            t.files.iter().map(|f| InputFile {
                table: t.contract.name.to_string(),
                path: root.relative(&f.meta.location),
                size: f.meta.size,
                modified: f.meta.last_modified.to_rfc3339(),
            })
        })
        .collect();
    files.sort_by(|a, b| (&a.table, &a.path).cmp(&(&b.table, &b.path)));
    files
}

/// The files of `current` that `consumed` lacks, or why the table must be rebuilt (a
/// consumed file changed or is gone).
fn added_files(
    consumed: &[InputFile],
    current: &[InputFile],
) -> std::result::Result<Vec<InputFile>, String> {
    for old in consumed {
        match current
            .iter()
            .find(|c| c.table == old.table && c.path == old.path)
        {
            None => return Err(format!("{} is gone", old.path)),
            Some(now) if now != old => return Err(format!("{} changed", old.path)),
            Some(_) => {}
        }
    }
    Ok(current
        .iter()
        .filter(|c| !consumed.contains(c))
        .cloned()
        .collect())
}

/// Merges `new` files into the table of `previous` (none: every file into an empty
/// table) and commits the next generation in `dir`.
async fn merge(
    warehouse: &Warehouse,
    dir: &Path,
    previous: Option<State>,
    current: &[InputFile],
    new: &[InputFile],
    slice: usize,
) -> Result<State> {
    std::fs::create_dir_all(dir).map_err(|e| ArqError::io(dir, e))?;
    let ctx = warehouse.local_session(None).await?;
    let root = warehouse.root();
    for table in INPUTS {
        let files: Vec<&InputFile> = new.iter().filter(|f| f.table == table).collect();
        let schema = warehouse
            .tables()
            .iter()
            .find(|t| t.contract.name == table)
            .map(|t| t.contract.schema.clone())
            .ok_or_else(|| ArqError::Internal(format!("the warehouse has no `{table}`")))?;
        let urls = files
            .iter()
            .map(|f| file_url(&root.join(&f.path).listing_url()?))
            .collect::<Result<Vec<_>>>()?;
        ctx.register_table(format!("settle_new_{table}"), listing(urls, schema)?)?;
    }
    // The previous generation's open invoices and greatest ids (none for a rebuild).
    let kept = |name: fn(&State) -> &String| -> Vec<PathBuf> {
        previous.iter().map(|s| dir.join(name(s))).collect()
    };
    ctx.register_table(
        "settle_open",
        parquet_table(&kept(|s| &s.open), open_schema())?,
    )?;
    ctx.register_table(
        "settle_known",
        parquet_table(&kept(|s| &s.known), known_schema())?,
    )?;
    let new_invoices = new.iter().any(|f| f.table == "invoices");
    // Invoices that arrive again after they were settled: looked for where the settled
    // parts hold the slice's customers.
    if let Some(state) = previous.as_ref().filter(|_| new_invoices) {
        let files: Vec<PathBuf> = state.settled.iter().map(|f| dir.join(f)).collect();
        ctx.register_table("settle_settled", parquet_table(&files, settled_schema())?)?;
    }

    let generation = next_generation(dir, previous.as_ref());
    let settled_name = format!("settled-{generation:06}.parquet");
    let open_name = format!("open-{generation:06}.parquet");
    let known_name = format!("known-{generation:06}.parquet");
    let mut known_writer = Chunked::create(&dir.join(&known_name), known_schema())?;
    let mut settled_writer = Chunked::create(&dir.join(&settled_name), settled_schema())?;
    let mut open_writer = Chunked::create(&dir.join(&open_name), open_schema())?;
    let mut months = ByMonth::new(
        dir,
        generation,
        "payments",
        payments_schema(),
        "payment_date",
    );
    let mut invoice_months = ByMonth::new(
        dir,
        generation,
        "invoices",
        invoices_schema(),
        "invoice_date",
    );

    let mut state_ = ctx.state();
    state_
        .config_mut()
        .options_mut()
        .execution
        .target_partitions = 1;
    let ranges = slices(&ctx, warehouse.as_of_day(), (slice / SLICE_DIVISOR).max(1)).await?;
    let in_flight = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, 4);
    let mut results = futures::stream::iter(ranges)
        .map(|range| {
            let state = state_.clone();
            let check_again = previous.is_some() && new_invoices;
            let rebuild = previous.is_none();
            SpawnedTask::spawn(
                async move { merge_slice(&state, &range, rebuild, check_again).await },
            )
            .join()
        })
        .buffered(in_flight);
    let (mut settled_rows, mut open_rows) = (0u64, 0u64);
    let mut unusable = previous.as_ref().and_then(|s| s.unusable.clone());
    let mut payments_unusable = previous.as_ref().and_then(|s| s.payments_unusable.clone());
    let mut orphans: Vec<RecordBatch> = Vec::new();
    while let Some(joined) = results.next().await {
        let merged =
            joined.map_err(|e| ArqError::Internal(format!("a settlement slice failed: {e}")))??;
        if unusable.is_none() {
            unusable = merged.problem;
        }
        for batch in &merged.payments {
            if payments_unusable.is_none() {
                payments_unusable = unknown_invoice(batch)?;
            }
            months.write(batch)?;
        }
        for batch in &merged.invoices {
            invoice_months.write(batch)?;
        }
        for batch in &merged.known {
            known_writer.write(&RecordBatch::try_new(
                known_schema(),
                batch.columns().to_vec(),
            )?)?;
        }
        for batch in merged.batches {
            let status = batch
                .column_by_name("status")
                .ok_or_else(|| ArqError::Internal("the merge has no status".into()))?
                .as_string::<i32>()
                .clone();
            let settled: BooleanArray = status.iter().map(|s| Some(s == Some("settled"))).collect();
            let rest: BooleanArray = status.iter().map(|s| Some(s != Some("settled"))).collect();
            if unusable.is_none()
                && let Some(problem) = status
                    .iter()
                    .position(|s| !matches!(s, Some("settled" | "open")))
            {
                let text = |name: &str| {
                    batch
                        .column_by_name(name)
                        .and_then(|c| cast(c, &DataType::Utf8).ok())
                        .map(|c| c.as_string::<i32>().value(problem).to_string())
                        .unwrap_or_default()
                };
                unusable = Some(format!(
                    "invoice {} of customer {}: {}",
                    text("invoice_id"),
                    text("customer_id"),
                    status.value(problem)
                ));
            }
            let settled = filter_record_batch(&batch, &settled)?;
            let settled = RecordBatch::try_new(
                settled_schema(),
                [
                    "customer_id",
                    "invoice_id",
                    "due_date",
                    "amount",
                    "last_payment",
                    "currency",
                ]
                .iter()
                .map(|c| column(&settled, c))
                .collect::<Result<Vec<_>>>()?,
            )?;
            let rest = filter_record_batch(&batch, &rest)?;
            let rest = rest.project(&(0..open_schema().fields().len()).collect::<Vec<_>>())?;
            let rest = RecordBatch::try_new(open_schema(), rest.columns().to_vec())?;
            settled_rows += settled.num_rows() as u64;
            open_rows += rest.num_rows() as u64;
            settled_writer.write(&settled)?;
            let amounts = column(&rest, "amount")?;
            if amounts.null_count() > 0 {
                let orphan: BooleanArray = (0..amounts.len())
                    .map(|r| Some(amounts.is_null(r)))
                    .collect();
                orphans.push(filter_record_batch(&rest, &orphan)?);
            }
            open_writer.write(&rest)?;
        }
    }
    drop(results);
    let settled_file = settled_writer.close()?;
    let open_file = open_writer.close()?;
    let known_file = known_writer.close()?;
    let (month_files, payments_rows) = months.close()?;
    let (invoice_files, invoices_rows) = invoice_months.close()?;
    if unusable.is_none() {
        unusable = misplaced_payments(&ctx, orphans).await?;
    }

    let mut settled = previous
        .as_ref()
        .map(|s| s.settled.clone())
        .unwrap_or_default();
    let settled_before = previous.as_ref().map_or(0, |s| s.settled_rows);
    // An update that settled nothing adds no part (a rebuild always has one).
    if settled_rows > 0 || previous.is_none() {
        settled_file.commit()?;
        settled.push(settled_name);
    }
    open_file.commit()?;
    known_file.commit()?;
    // The month files kept so far, then this update's, committed.
    let appended = |kept: Option<&Vec<String>>, files: Vec<(String, AtomicFile)>| {
        let mut names = kept.cloned().unwrap_or_default();
        for (name, file) in files {
            file.commit()?;
            names.push(name);
        }
        Ok::<_, ArqError>(names)
    };
    let payments = appended(previous.as_ref().map(|s| &s.payments), month_files)?;
    let invoices = appended(previous.as_ref().map(|s| &s.invoices), invoice_files)?;
    let state = State {
        format: FORMAT,
        warehouse: root.identity(),
        generation,
        inputs: current.to_vec(),
        settled,
        open: open_name,
        known: known_name,
        settled_rows: settled_before + settled_rows,
        open_rows,
        unusable,
        payments,
        payments_rows: previous.as_ref().map_or(0, |s| s.payments_rows) + payments_rows,
        payments_unusable,
        invoices,
        invoices_rows: previous.as_ref().map_or(0, |s| s.invoices_rows) + invoices_rows,
    };
    let mut json = serde_json::to_vec_pretty(&state)
        .map_err(|e| ArqError::Internal(format!("cannot encode the settlement state: {e}")))?;
    json.push(b'\n');
    write_atomically(&dir.join(STATE), |out| {
        std::io::Write::write_all(out, &json).map_err(|e| ArqError::io(dir.join(STATE), e))
    })?;
    remove_unlisted(dir, &state);
    Ok(state)
}

/// Rows per batch handed to the Parquet writer: the same rows make the same bytes
/// whatever batches the queries returned (a table updated night by night and one rebuilt
/// are compared byte for byte).
const CHUNK_ROWS: usize = 8192;

/// A Parquet writer (the generator's properties) into an atomic file, fed batches of
/// exactly [`CHUNK_ROWS`] rows (the last one fewer).
struct Chunked {
    writer: ArrowWriter<AtomicFile>,
    pending: Vec<RecordBatch>,
    rows: usize,
}

impl Chunked {
    fn create(path: &Path, schema: SchemaRef) -> Result<Self> {
        let props = crate::generate::sink::writer_properties(&schema);
        Ok(Chunked {
            writer: ArrowWriter::try_new(AtomicFile::create(path)?, schema, Some(props))?,
            pending: Vec::new(),
            rows: 0,
        })
    }

    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        self.rows += batch.num_rows();
        self.pending.push(batch.clone());
        while self.rows >= CHUNK_ROWS {
            let all = concat_batches(&batch.schema(), &self.pending)?;
            self.writer.write(&all.slice(0, CHUNK_ROWS))?;
            let rest = all.slice(CHUNK_ROWS, all.num_rows() - CHUNK_ROWS);
            self.rows = rest.num_rows();
            self.pending = vec![rest];
        }
        Ok(())
    }

    /// The finished file, to be committed.
    fn close(mut self) -> Result<AtomicFile> {
        if self.rows > 0 {
            let schema = self.pending[0].schema();
            self.writer
                .write(&concat_batches(&schema, &self.pending)?)?;
        }
        Ok(self.writer.into_inner()?)
    }
}

/// The payments or invoices by month being written: one file per month of `date` an
/// update read rows of (`PREFIX-GENERATION-YYYY-MM.parquet`), each in the slices' order.
struct ByMonth<'a> {
    dir: &'a Path,
    generation: u64,
    prefix: &'static str,
    schema: SchemaRef,
    date: &'static str,
    files: BTreeMap<String, Chunked>,
    rows: u64,
}

impl<'a> ByMonth<'a> {
    fn new(
        dir: &'a Path,
        generation: u64,
        prefix: &'static str,
        schema: SchemaRef,
        date: &'static str,
    ) -> Self {
        ByMonth {
            dir,
            generation,
            prefix,
            schema,
            date,
            files: BTreeMap::new(),
            rows: 0,
        }
    }

    fn name(&self, month: &str) -> String {
        format!("{}-{:06}-{month}.parquet", self.prefix, self.generation)
    }

    /// Writes a slice's rows (the schema's columns first) to their months' files: the
    /// rows ordered by month (stable: each month's rows keep the slice's order), then each
    /// month's run to its file.
    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        let rows = batch.project(&(0..self.schema.fields().len()).collect::<Vec<_>>())?;
        let columns = rows
            .columns()
            .iter()
            .zip(self.schema.fields())
            .map(|(c, f)| Ok(cast(c, f.data_type())?))
            .collect::<Result<Vec<_>>>()?;
        let rows = RecordBatch::try_new(self.schema.clone(), columns)?;
        let dates = column(&rows, self.date)?;
        let dates = dates.as_primitive::<Date32Type>();
        // Each row's month as its first day; a payment without a date (the contract's
        // column is not nullable) goes first.
        let months: Vec<i32> = (0..rows.num_rows())
            .map(|r| match dates.is_valid(r) {
                true => arq_udfs::dates::month_of(dates.value(r)).1,
                false => i32::MIN,
            })
            .collect();
        let mut order: Vec<u32> = (0..rows.num_rows() as u32).collect();
        order.sort_by_key(|&r| months[r as usize]);
        let order = UInt32Array::from(order);
        let rows = take_record_batch(&rows, &order)?;
        let order = order.values();
        let mut start = 0;
        while start < order.len() {
            let month = months[order[start] as usize];
            let end = start
                + order[start..]
                    .iter()
                    .take_while(|&&r| months[r as usize] == month)
                    .count();
            let name = match month {
                i32::MIN => "0000-00".to_string(),
                first => arq_udfs::dates::text(first)[..7].to_string(),
            };
            let file = match self.files.get_mut(&name) {
                Some(file) => file,
                None => {
                    let file =
                        Chunked::create(&self.dir.join(self.name(&name)), self.schema.clone())?;
                    self.files.entry(name).or_insert(file)
                }
            };
            file.write(&rows.slice(start, end - start))?;
            self.rows += (end - start) as u64;
            start = end;
        }
        Ok(())
    }

    /// The finished files by name, in month order, and the rows written.
    fn close(self) -> Result<(Vec<(String, AtomicFile)>, u64)> {
        let names: Vec<String> = self.files.keys().map(|m| self.name(m)).collect();
        let files = names
            .into_iter()
            .zip(self.files.into_values())
            .map(|(name, file)| Ok((name, file.close()?)))
            .collect::<Result<Vec<_>>>()?;
        Ok((files, self.rows))
    }
}

/// The first payment of `batch` ([`with_currency`]'s rows) whose invoice was not known.
fn unknown_invoice(batch: &RecordBatch) -> Result<Option<String>> {
    let found = column(batch, "found")?;
    let found = found.as_boolean();
    let Some(r) = (0..batch.num_rows()).find(|&r| !found.value(r)) else {
        return Ok(None);
    };
    let text = |name: &str| -> Result<String> {
        let c = cast(&column(batch, name)?, &DataType::Utf8)?;
        let c = c.as_string::<i32>();
        Ok(match c.is_valid(r) {
            true => c.value(r).to_string(),
            false => "NULL".to_string(),
        })
    };
    Ok(Some(format!(
        "a payment of customer {} on {}: its invoice {} was not an open invoice when the \
         payment was read",
        text("customer_id")?,
        text("payment_date")?,
        text("invoice_id")?
    )))
}

/// A slice's merged rows, its customers' greatest invoice ids, and a problem found
/// beside them.
struct Merged {
    batches: Vec<RecordBatch>,
    known: Vec<RecordBatch>,
    /// The slice's new payments with their invoice's currency ([`PAYMENTS_SQL`]).
    payments: Vec<RecordBatch>,
    /// The slice's new invoices ([`INVOICES_SQL`]).
    invoices: Vec<RecordBatch>,
    problem: Option<String>,
}

async fn merge_slice(
    state: &SessionState,
    range: &CustomerRange,
    rebuild: bool,
    check_settled: bool,
) -> Result<Merged> {
    let merged = if rebuild { "new_rows" } else { "merged" };
    let fill = |sql: &str| {
        let mut sql = sql
            .replace("{range}", &range.predicate("customer_id"))
            .replace("{merged}", merged);
        for alias in ["n", "k", "s"] {
            sql = sql.replace(
                &format!("{{range:{alias}}}"),
                &range.predicate(&format!("{alias}.customer_id")),
            );
        }
        sql
    };
    let batches = collect_sql(state, &fill(MERGE_SQL)).await?;
    let known = collect_sql(state, &fill(KNOWN_SQL)).await?;
    let payments = with_currency(&collect_sql(state, &fill(PAYMENTS_SQL)).await?, &batches)?;
    let invoices = collect_sql(state, &fill(INVOICES_SQL)).await?;
    let mut problem = None;
    if check_settled
        && let Some((invoice, customer)) = first_pair(&collect_sql(state, &fill(AGAIN_SQL)).await?)
    {
        problem = Some(format!(
            "invoice {invoice} of customer {customer}: the invoice arrived again after it \
             was paid in full"
        ));
    }
    Ok(Merged {
        batches,
        known,
        payments,
        invoices,
        problem,
    })
}

/// `payments` ([`PAYMENTS_SQL`]'s rows) as [`payments_schema`]'s columns with their
/// invoice's currency from the slice's merged rows (every invoice new in the update or
/// still open before it, with its currency), then `found` (false for a payment whose
/// invoice is not among them). A lookup
/// by invoice id in memory: a join in SQL took 2.5 s of CPU a slice at a million
/// customers (80 slices), most of it grouping the invoices and building the hash table.
fn with_currency(payments: &[RecordBatch], merged: &[RecordBatch]) -> Result<Vec<RecordBatch>> {
    let text = |b: &RecordBatch, name: &str| -> Result<ArrayRef> {
        Ok(cast(&column(b, name)?, &DataType::Utf8)?)
    };
    // The merged rows' ids and currencies, looked up by invoice id (the customer compared
    // on the row found).
    let mut columns = Vec::with_capacity(merged.len());
    for b in merged {
        let rows = column(b, "invoice_rows")?;
        columns.push((
            text(b, "customer_id")?,
            text(b, "invoice_id")?,
            text(b, "currency")?,
            rows,
        ));
    }
    let size = columns.iter().map(|c| c.1.len()).sum();
    let mut invoices: HashMap<&str, (usize, usize)> =
        HashMap::with_capacity_and_hasher(size, Default::default());
    for (k, (_, ids, _, rows)) in columns.iter().enumerate() {
        let (ids, rows) = (ids.as_string::<i32>(), rows.as_primitive::<Int64Type>());
        for r in 0..ids.len() {
            if ids.is_valid(r) && rows.value(r) > 0 {
                invoices.insert(ids.value(r), (k, r));
            }
        }
    }
    let mut fields: Vec<Field> = payments_schema()
        .fields()
        .iter()
        .map(|f| f.as_ref().clone())
        .collect();
    fields.push(Field::new("found", DataType::Boolean, false));
    let schema = Arc::new(Schema::new(fields));
    let mut out = Vec::with_capacity(payments.len());
    for b in payments {
        let (customers, ids) = (text(b, "customer_id")?, text(b, "invoice_id")?);
        let (customers, ids) = (customers.as_string::<i32>(), ids.as_string::<i32>());
        let mut currency = StringBuilder::new();
        let mut found = BooleanBuilder::with_capacity(b.num_rows());
        for r in 0..b.num_rows() {
            let hit = ids
                .is_valid(r)
                .then(|| invoices.get(ids.value(r)))
                .flatten()
                .filter(|(k, row)| {
                    let owners = columns[*k].0.as_string::<i32>();
                    customers.is_valid(r)
                        && owners.is_valid(*row)
                        && owners.value(*row) == customers.value(r)
                });
            match hit {
                Some((k, row)) => {
                    let currencies = columns[*k].2.as_string::<i32>();
                    match currencies.is_valid(*row) {
                        true => currency.append_value(currencies.value(*row)),
                        false => currency.append_null(),
                    }
                    found.append_value(true);
                }
                None => {
                    currency.append_null();
                    found.append_value(false);
                }
            }
        }
        let mut columns: Vec<ArrayRef> = ["customer_id", "payment_date", "amount"]
            .iter()
            .map(|c| column(b, c))
            .collect::<Result<_>>()?;
        columns.push(Arc::new(currency.finish()));
        columns.push(column(b, "invoice_id")?);
        columns.push(Arc::new(found.finish()));
        let columns = columns
            .into_iter()
            .zip(schema.fields())
            .map(|(c, f)| Ok(cast(&c, f.data_type())?))
            .collect::<Result<Vec<_>>>()?;
        out.push(RecordBatch::try_new(schema.clone(), columns)?);
    }
    Ok(out)
}

/// Payments kept without their invoice whose invoice is in `invoices` after all: paid
/// after the invoice was paid in full, or recorded under another customer.
async fn misplaced_payments(
    ctx: &SessionContext,
    orphans: Vec<RecordBatch>,
) -> Result<Option<String>> {
    if orphans.iter().all(|b| b.num_rows() == 0) {
        return Ok(None);
    }
    ctx.register_table(
        "settle_orphans",
        Arc::new(MemTable::try_new(open_schema(), vec![orphans])?),
    )?;
    let found = collect_sql(
        &ctx.state(),
        "SELECT o.invoice_id, o.customer_id, i.customer_id AS invoice_customer \
         FROM settle_orphans o JOIN invoices i ON i.invoice_id = o.invoice_id \
         ORDER BY o.customer_id, o.invoice_id LIMIT 1",
    )
    .await?;
    let Some((invoice, customer)) = first_pair(&found) else {
        return Ok(None);
    };
    let owner = found[0].column(2).as_string::<i32>().value(0).to_string();
    Ok(Some(if owner == customer {
        format!("invoice {invoice} of customer {customer}: a payment after it was paid in full")
    } else {
        format!(
            "invoice {invoice}: payments recorded under customer {customer}, the invoice is \
             customer {owner}'s"
        )
    }))
}

/// The first row's first two text columns.
fn first_pair(batches: &[RecordBatch]) -> Option<(String, String)> {
    let b = batches.iter().find(|b| b.num_rows() > 0)?;
    let text = |i: usize| {
        cast(b.column(i), &DataType::Utf8)
            .ok()
            .map(|c| c.as_string::<i32>().value(0).to_string())
    };
    Some((text(0)?, text(1)?))
}

/// Customer ranges of about `slice` customers of the snapshot `day` (open at both ends:
/// together they cover every customer id, the snapshot's or not).
async fn slices(ctx: &SessionContext, day: i32, slice: usize) -> Result<Vec<CustomerRange>> {
    let batches = collect_sql(
        &ctx.state(),
        &format!(
            "SELECT customer_id FROM customers WHERE CAST(snapshot_date AS INT) = {day} \
             AND customer_id IS NOT NULL ORDER BY customer_id"
        ),
    )
    .await?;
    let ids = batches
        .iter()
        .map(|b| cast(b.column(0), &DataType::Utf8))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let ids: Vec<&str> = ids
        .iter()
        .flat_map(|a| a.as_string::<i32>().iter().flatten())
        .collect();
    Ok(CustomerRange::slices(&ids, slice))
}

fn column(batch: &RecordBatch, name: &str) -> Result<datafusion::arrow::array::ArrayRef> {
    batch
        .column_by_name(name)
        .cloned()
        .ok_or_else(|| ArqError::Internal(format!("the settlement has no column `{name}`")))
}

/// A folder's listing URL as the URL of the file it is (no trailing `/`).
fn file_url(url: &ListingTableUrl) -> Result<ListingTableUrl> {
    Ok(ListingTableUrl::parse(url.as_str().trim_end_matches('/'))?)
}

/// A Parquet table over exactly these local files (none: an empty table).
fn parquet_table(files: &[PathBuf], schema: SchemaRef) -> Result<Arc<dyn TableProvider>> {
    let urls = files
        .iter()
        .map(|f| {
            let absolute = std::path::absolute(f).map_err(|e| ArqError::io(f, e))?;
            Ok(ListingTableUrl::parse(absolute.display().to_string())?)
        })
        .collect::<Result<Vec<_>>>()?;
    listing(urls, schema)
}

/// A Parquet table over exactly these files (none: an empty table).
fn listing(urls: Vec<ListingTableUrl>, schema: SchemaRef) -> Result<Arc<dyn TableProvider>> {
    if urls.is_empty() {
        return Ok(Arc::new(MemTable::try_new(schema, vec![vec![]])?));
    }
    let options =
        ListingOptions::new(Arc::new(ParquetFormat::default())).with_file_extension(".parquet");
    let config = ListingTableConfig::new_with_multi_paths(urls)
        .with_listing_options(options)
        .with_schema(schema);
    Ok(Arc::new(ListingTable::try_new(config)?))
}

/// A generation no file in `dir` has yet (a rebuild must not overwrite a file the current
/// state still names).
fn next_generation(dir: &Path, previous: Option<&State>) -> u64 {
    let in_folder = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().to_string();
            if name.starts_with('.') {
                return None;
            }
            let number = name
                .split_once('-')?
                .1
                .split(['.', '-'])
                .next()?
                .to_string();
            number.parse::<u64>().ok()
        })
        .max();
    let after = in_folder.max(previous.map(|s| s.generation));
    after.map_or(0, |g| g + 1)
}

/// Removes the files of earlier generations (and of failed updates) that `state` does not
/// name, and the temporary files of killed updates; a file that cannot be removed is left
/// for the next update.
fn remove_unlisted(dir: &Path, state: &State) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        let listed = name == STATE
            || name == state.open
            || name == state.known
            || state.settled.contains(&name)
            || state.payments.contains(&name)
            || state.invoices.contains(&name);
        // A temporary file of an update that was killed (its process is gone).
        let abandoned = name
            .rsplit_once(".partial-")
            .and_then(|(_, pid)| pid.parse::<u32>().ok())
            .is_some_and(|pid| {
                pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists()
            });
        if (!listed && name.ends_with(".parquet")) || abandoned {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, size: u64) -> InputFile {
        InputFile {
            table: "payments".into(),
            path: path.into(),
            size,
            modified: "2026-11-30T00:00:00+00:00".into(),
        }
    }

    #[test]
    fn added_files_are_merged_and_a_changed_or_removed_one_rebuilds() {
        let consumed = [file("payments/a.parquet", 10)];
        let added = [
            file("payments/a.parquet", 10),
            file("payments/b.parquet", 5),
        ];
        assert_eq!(
            added_files(&consumed, &added).unwrap(),
            [file("payments/b.parquet", 5)]
        );
        assert_eq!(added_files(&consumed, &consumed).unwrap(), []);
        let changed = [file("payments/a.parquet", 11)];
        assert_eq!(
            added_files(&consumed, &changed).unwrap_err(),
            "payments/a.parquet changed"
        );
        assert_eq!(
            added_files(&consumed, &[]).unwrap_err(),
            "payments/a.parquet is gone"
        );
    }
}

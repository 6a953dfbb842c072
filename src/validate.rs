//! Checks of a snapshot's rows before the nightly job uses them. The warehouse check
//! (`Warehouse::open`) covers folders, files, columns and types; this covers values:
//!
//! - `customers`: `customer_id` present and unique, `currency` present, `credit_limit`
//!   not negative;
//! - `open_items`: `invoice_id` and `customer_id` present, each invoice once, the
//!   customer in `customers` of the same snapshot, in the customer's currency (money in
//!   different currencies is never added up, so an item in another currency is refused
//!   rather than summed into the customer's overdue), `open_amount` between 0 and
//!   `amount`, `due_date` not before `invoice_date`;
//! - `collectors`: `collector_id` present, unique, and usable as a call-list file name
//!   (letters, digits, `-`, `_`, `.`; at most 100 characters), `role` `collector`,
//!   `supervisor` or `resolver` (disputes), `daily_capacity` not negative.
//!
//! The first problem found is an error naming table, file, row (1-based, within the
//! file), column and value. Files are read directly (only the columns checked), so the
//! row numbers are those of the file.

use std::collections::HashSet;
use std::hash::{Hash, Hasher};
use std::path::PathBuf;

use arq_udfs::dates;
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Date32Array, Decimal128Array, RecordBatch, StringArray,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Date32Type, Decimal128Type};
use datafusion::parquet::arrow::ParquetRecordBatchStreamBuilder;
use datafusion::parquet::arrow::ProjectionMask;
use futures::TryStreamExt;
use object_store::ObjectMeta;
use rust_decimal::Decimal;

use crate::error::{ArqError, Result};
use crate::storage::{Location, StoreReader, parquet_error};
use crate::warehouse::Warehouse;

/// Checks the rows of the warehouse's as-of snapshot (`customers` and `open_items`) and
/// of `collectors`: what every command that writes decisions reads.
pub async fn snapshot(warehouse: &Warehouse) -> Result<()> {
    let as_of = warehouse.as_of();
    let files_of = |table: &str, snapshot: Option<_>| -> Vec<ObjectMeta> {
        warehouse
            .tables()
            .iter()
            .filter(|t| t.contract.name == table)
            .flat_map(|t| t.files.iter())
            .filter(|f| snapshot.is_none() || f.snapshot == snapshot)
            .map(|f| f.meta.clone())
            .collect()
    };
    let root = warehouse.root();
    let customers = check_customers(root, &files_of("customers", Some(as_of))).await?;
    check_open_items(root, &files_of("open_items", Some(as_of)), &customers).await?;
    check_collectors(root, &files_of("collectors", None)).await
}

/// The customers of the snapshot: each id with its currency (an index into `currencies`).
#[derive(Default)]
struct Customers {
    currency_of: std::collections::HashMap<String, u16>,
    currencies: Vec<String>,
}

impl Customers {
    fn currency(&self, id: &str) -> Option<&str> {
        self.currency_of
            .get(id)
            .map(|&i| self.currencies[i as usize].as_str())
    }
}

/// The longest collector id: it names a call-list file.
const MAX_COLLECTOR_ID: usize = 100;

/// Checks every collector: id present, unique and a safe file name; role; capacity.
async fn check_collectors(root: &Location, files: &[ObjectMeta]) -> Result<()> {
    let mut seen: std::collections::HashMap<String, (String, usize)> = Default::default();
    for file in files {
        let columns = ["collector_id", "role", "daily_capacity"];
        read_columns(root, file, &columns, |first, arrays| {
            let (id, role) = (text(&arrays[0])?, text(&arrays[1])?);
            let (id, role) = (id.as_string::<i32>(), role.as_string::<i32>());
            let capacity = cast(&arrays[2], &DataType::Int64)?;
            let capacity = capacity.as_primitive::<datafusion::arrow::datatypes::Int64Type>();
            for r in 0..id.len() {
                let row = first + r + 1;
                let err = |m: String| row_error(root, "collectors", file, row, m);
                if id.is_null(r) || id.value(r).is_empty() {
                    return Err(err("column collector_id is empty".into()));
                }
                let name = id.value(r);
                if let Some(problem) = file_name_problem(name) {
                    return Err(err(format!("column collector_id: {problem}")));
                }
                if let Some((earlier, earlier_row)) =
                    seen.insert(name.to_string(), (root.relative(&file.location), row))
                {
                    return Err(err(format!(
                        "column collector_id: {name} appears twice (also {earlier} row {earlier_row}); \
                         each collector needs one row",
                    )));
                }
                if role.is_null(r)
                    || !["collector", "supervisor", "resolver"].contains(&role.value(r))
                {
                    let value = if role.is_null(r) {
                        "NULL"
                    } else {
                        role.value(r)
                    };
                    return Err(err(format!(
                        "column role: `{value}` (collector {name}) is not `collector`, `supervisor` or `resolver`"
                    )));
                }
                if capacity.is_null(r) || capacity.value(r) < 0 {
                    return Err(err(format!(
                        "column daily_capacity is empty or negative (collector {name})"
                    )));
                }
            }
            Ok(())
        })
        .await?;
    }
    Ok(())
}

/// Why a collector id cannot name a call-list file, if it cannot.
fn file_name_problem(id: &str) -> Option<String> {
    let safe = !id.starts_with('.')
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !safe {
        return Some(format!(
            "`{id}` cannot name a call-list file (use letters, digits, `-`, `_` and `.`)"
        ));
    }
    if id.len() > MAX_COLLECTOR_ID {
        return Some(format!(
            "`{}...` is {} characters long; a collector id names a call-list file and has at \
             most {MAX_COLLECTOR_ID}",
            &id[..20],
            id.len()
        ));
    }
    None
}

/// A problem at one row of one file.
fn row_error(
    root: &Location,
    table: &str,
    file: &ObjectMeta,
    row: usize,
    message: String,
) -> ArqError {
    ArqError::TableFile {
        table: table.into(),
        file: PathBuf::from(root.relative(&file.location)),
        message: format!("row {row}: {message}"),
    }
}

/// Reads `columns` of a Parquet file, batch by batch, with the row number (0-based) of
/// each batch's first row.
async fn read_columns(
    root: &Location,
    file: &ObjectMeta,
    columns: &[&str],
    mut each: impl FnMut(usize, &[ArrayRef]) -> Result<()>,
) -> Result<()> {
    let shown = || root.show(&file.location);
    let reader = StoreReader::new(root.store().clone(), file.clone());
    let failed = |e| parquet_error(&shown(), e, ArqError::from);
    let builder = ParquetRecordBatchStreamBuilder::new(reader)
        .await
        .map_err(failed)?;
    let schema = builder.parquet_schema();
    let indices: Vec<usize> = columns
        .iter()
        .map(|name| {
            (0..schema.num_columns())
                .find(|&i| schema.column(i).name() == *name)
                .ok_or_else(|| ArqError::Input(format!("{}: no column {name}", shown())))
        })
        .collect::<Result<_>>()?;
    let mask = ProjectionMask::leaves(schema, indices);
    let mut stream = builder
        .with_projection(mask)
        .with_batch_size(65_536)
        .build()
        .map_err(failed)?;
    let mut first = 0;
    while let Some(batch) = stream.try_next().await.map_err(failed)? {
        let batch: RecordBatch = batch;
        let arrays = columns
            .iter()
            .map(|name| {
                batch
                    .column_by_name(name)
                    .cloned()
                    .ok_or_else(|| ArqError::Input(format!("{}: no column {name}", shown())))
            })
            .collect::<Result<Vec<_>>>()?;
        each(first, &arrays)?;
        first += batch.num_rows();
    }
    Ok(())
}

fn text(a: &ArrayRef) -> Result<ArrayRef> {
    Ok(cast(a, &DataType::Utf8)?)
}

fn cents(a: &ArrayRef) -> Result<ArrayRef> {
    Ok(cast(a, &DataType::Decimal128(38, 2))?)
}

fn money(v: i128) -> Decimal {
    Decimal::from_i128_with_scale(v, 2)
}

/// The customers of the snapshot with their currencies, checked.
async fn check_customers(root: &Location, files: &[ObjectMeta]) -> Result<Customers> {
    let mut customers = Customers::default();
    for file in files {
        let columns = ["customer_id", "credit_limit", "currency"];
        read_columns(root, file, &columns, |first, arrays| {
            let (id, limit) = (text(&arrays[0])?, cents(&arrays[1])?);
            let (id, limit) = (
                id.as_string::<i32>(),
                limit.as_primitive::<Decimal128Type>(),
            );
            let currency = text(&arrays[2])?;
            let currency = currency.as_string::<i32>();
            for r in 0..id.len() {
                let err = |m: String| row_error(root, "customers", file, first + r + 1, m);
                if id.is_null(r) || id.value(r).is_empty() {
                    return Err(err("column customer_id is empty".into()));
                }
                if currency.is_null(r) || currency.value(r).trim().is_empty() {
                    return Err(err(format!(
                        "column currency is empty (customer {})",
                        id.value(r)
                    )));
                }
                let code = currency.value(r);
                let index = match customers.currencies.iter().position(|c| c == code) {
                    Some(i) => i,
                    None => {
                        customers.currencies.push(code.to_string());
                        customers.currencies.len() - 1
                    }
                };
                let index = u16::try_from(index).map_err(|_| {
                    err("column currency: more than 65,535 different currencies".into())
                })?;
                if customers
                    .currency_of
                    .insert(id.value(r).to_string(), index)
                    .is_some()
                {
                    return Err(err(format!(
                        "column customer_id: {} appears twice in the snapshot",
                        id.value(r)
                    )));
                }
                if limit.is_valid(r) && limit.value(r) < 0 {
                    return Err(err(format!(
                        "column credit_limit: {} is negative (customer {})",
                        money(limit.value(r)),
                        id.value(r)
                    )));
                }
            }
            Ok(())
        })
        .await?;
    }
    Ok(customers)
}

fn hash_of(s: &str) -> u64 {
    // SipHash with fixed keys: the same on every run and machine.
    let mut h = std::hash::DefaultHasher::new();
    s.hash(&mut h);
    h.finish()
}

/// The columns of `open_items` the row checks read, for one batch.
struct OpenItemColumns {
    invoice: StringArray,
    customer: StringArray,
    currency: StringArray,
    amount: Decimal128Array,
    open: Decimal128Array,
    issued: Date32Array,
    due: Date32Array,
}

impl OpenItemColumns {
    /// The columns of [`OPEN_ITEM_COLUMNS`], in that order.
    fn read(arrays: &[ArrayRef]) -> Result<OpenItemColumns> {
        let date = |a: &ArrayRef| -> Result<Date32Array> {
            Ok(cast(a, &DataType::Date32)?
                .as_primitive::<Date32Type>()
                .clone())
        };
        let amount = |a: &ArrayRef| -> Result<Decimal128Array> {
            Ok(cents(a)?.as_primitive::<Decimal128Type>().clone())
        };
        Ok(OpenItemColumns {
            invoice: text(&arrays[0])?.as_string::<i32>().clone(),
            customer: text(&arrays[1])?.as_string::<i32>().clone(),
            amount: amount(&arrays[2])?,
            open: amount(&arrays[3])?,
            issued: date(&arrays[4])?,
            due: date(&arrays[5])?,
            currency: text(&arrays[6])?.as_string::<i32>().clone(),
        })
    }

    /// What is wrong with row `r`, if anything.
    fn problem(&self, r: usize, customers: &Customers) -> Option<String> {
        let (invoice, customer) = (&self.invoice, &self.customer);
        if invoice.is_null(r) || invoice.value(r).is_empty() {
            return Some("column invoice_id is empty".into());
        }
        let id = invoice.value(r);
        if customer.is_null(r) || customer.value(r).is_empty() {
            return Some(format!("column customer_id is empty (invoice {id})"));
        }
        let Some(expected) = customers.currency(customer.value(r)) else {
            return Some(format!(
                "column customer_id: {} (invoice {id}) is not in customers of the same snapshot",
                customer.value(r)
            ));
        };
        let currency = &self.currency;
        if currency.is_null(r) || currency.value(r) != expected {
            let found = if currency.is_null(r) {
                "NULL"
            } else {
                currency.value(r)
            };
            return Some(format!(
                "column currency: {found} (invoice {id}) is not the currency of customer {} \
                 ({expected}); money in different currencies is never added up: book the \
                 item in {expected} or correct the customer",
                customer.value(r)
            ));
        }
        let (amount, open) = (&self.amount, &self.open);
        for (column, values) in [("amount", amount), ("open_amount", open)] {
            if values.is_null(r) {
                return Some(format!("column {column} is empty (invoice {id})"));
            }
        }
        if open.value(r) < 0 {
            return Some(format!(
                "column open_amount: {} is negative (invoice {id})",
                money(open.value(r))
            ));
        }
        if open.value(r) > amount.value(r) {
            return Some(format!(
                "column open_amount: {} is more than the invoice amount {} (invoice {id})",
                money(open.value(r)),
                money(amount.value(r))
            ));
        }
        let (issued, due) = (&self.issued, &self.due);
        for (column, values) in [("invoice_date", issued), ("due_date", due)] {
            if values.is_null(r) {
                return Some(format!("column {column} is empty (invoice {id})"));
            }
        }
        if due.value(r) < issued.value(r) {
            let date = |d: i32| dates::text(d);
            return Some(format!(
                "column due_date: {} is before invoice_date {} (invoice {id})",
                date(due.value(r)),
                date(issued.value(r))
            ));
        }
        None
    }
}

/// The columns [`OpenItemColumns`] reads.
const OPEN_ITEM_COLUMNS: [&str; 7] = [
    "invoice_id",
    "customer_id",
    "amount",
    "open_amount",
    "invoice_date",
    "due_date",
    "currency",
];

/// Checks every open item of the snapshot.
async fn check_open_items(
    root: &Location,
    files: &[ObjectMeta],
    customers: &Customers,
) -> Result<()> {
    // Duplicates are found on 64-bit hashes (16 bytes per item, not a set of strings),
    // then confirmed on the ids themselves.
    let mut hashes: Vec<(u64, u32, u32)> = Vec::new();
    for (f, file) in files.iter().enumerate() {
        read_columns(root, file, &OPEN_ITEM_COLUMNS, |first, arrays| {
            let columns = OpenItemColumns::read(arrays)?;
            for r in 0..columns.invoice.len() {
                if let Some(problem) = columns.problem(r, customers) {
                    return Err(row_error(root, "open_items", file, first + r + 1, problem));
                }
                let id = columns.invoice.value(r);
                hashes.push((hash_of(id), f as u32, (first + r) as u32));
            }
            Ok(())
        })
        .await?;
    }
    hashes.sort_unstable();
    let candidates: HashSet<(u32, u32)> = hashes
        .windows(2)
        .filter(|w| w[0].0 == w[1].0)
        .flat_map(|w| [(w[0].1, w[0].2), (w[1].1, w[1].2)])
        .collect();
    drop(hashes);
    if candidates.is_empty() {
        return Ok(());
    }
    confirm_duplicates(root, files, &candidates).await
}

/// Confirms duplicate invoice ids among the rows whose hashes collide, in file order, so
/// the error names the second occurrence.
async fn confirm_duplicates(
    root: &Location,
    files: &[ObjectMeta],
    candidates: &HashSet<(u32, u32)>,
) -> Result<()> {
    let mut seen: std::collections::HashMap<String, (usize, usize)> = Default::default();
    for (f, file) in files.iter().enumerate() {
        read_columns(root, file, &["invoice_id"], |first, arrays| {
            let invoice = text(&arrays[0])?;
            let invoice = invoice.as_string::<i32>();
            for r in 0..invoice.len() {
                let row = first + r;
                if !candidates.contains(&(f as u32, row as u32)) {
                    continue;
                }
                let id = invoice.value(r);
                if let Some((f0, r0)) = seen.insert(id.to_string(), (f, row)) {
                    let earlier = root.relative(&files[f0].location);
                    return Err(row_error(
                        root,
                        "open_items",
                        file,
                        row + 1,
                        format!(
                            "column invoice_id: {id} appears twice in the snapshot (also {} row {})",
                            earlier,
                            r0 + 1
                        ),
                    ));
                }
            }
            Ok(())
        })
        .await?;
    }
    Ok(())
}

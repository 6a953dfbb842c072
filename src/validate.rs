//! Checks of a snapshot's rows before the nightly job uses them. The warehouse check
//! (`Warehouse::open`) covers folders, files, columns and types; this covers values:
//!
//! - `customers`: `customer_id` present and unique, `credit_limit` not negative;
//! - `open_items`: `invoice_id` and `customer_id` present, each invoice once, the
//!   customer in `customers` of the same snapshot, `open_amount` between 0 and
//!   `amount`, `due_date` not before `invoice_date`.
//!
//! The first problem found is an error naming table, file, row (1-based, within the
//! file), column and value. Files are read directly (only the columns checked), so the
//! row numbers are those of the file.

use std::collections::HashSet;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use arq_udfs::dates;
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Date32Array, Decimal128Array, RecordBatch, StringArray,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Date32Type, Decimal128Type};
use datafusion::parquet::arrow::ProjectionMask;
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use rust_decimal::Decimal;

use crate::error::{ArqError, Result};
use crate::warehouse::Warehouse;

/// Checks the rows of the warehouse's as-of snapshot (`customers` and `open_items`).
pub fn snapshot(warehouse: &Warehouse) -> Result<()> {
    let partition = format!("snapshot_date={}", warehouse.as_of());
    let files_of = |table: &str| -> Vec<PathBuf> {
        warehouse
            .tables()
            .iter()
            .filter(|t| t.contract.name == table)
            .flat_map(|t| t.files.iter())
            .filter(|f| {
                f.parent()
                    .and_then(|p| p.file_name())
                    .is_some_and(|n| n.to_string_lossy() == partition)
            })
            .cloned()
            .collect()
    };
    let root = warehouse.root();
    let customers = check_customers(root, &files_of("customers"))?;
    check_open_items(root, &files_of("open_items"), &customers)
}

/// A problem at one row of one file.
fn row_error(root: &Path, table: &str, file: &Path, row: usize, message: String) -> ArqError {
    ArqError::TableFile {
        table: table.into(),
        file: file.strip_prefix(root).unwrap_or(file).to_path_buf(),
        message: format!("row {row}: {message}"),
    }
}

/// Reads `columns` of a Parquet file, batch by batch, with the row number (0-based) of
/// each batch's first row.
fn read_columns(
    file: &Path,
    columns: &[&str],
    mut each: impl FnMut(usize, &[ArrayRef]) -> Result<()>,
) -> Result<()> {
    let handle = std::fs::File::open(file).map_err(|e| ArqError::io(file, e))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(handle)?;
    let schema = builder.parquet_schema();
    let indices: Vec<usize> = columns
        .iter()
        .map(|name| {
            (0..schema.num_columns())
                .find(|&i| schema.column(i).name() == *name)
                .ok_or_else(|| ArqError::Input(format!("{}: no column {name}", file.display())))
        })
        .collect::<Result<_>>()?;
    let mask = ProjectionMask::leaves(schema, indices);
    let reader = builder
        .with_projection(mask)
        .with_batch_size(65_536)
        .build()?;
    let mut first = 0;
    for batch in reader {
        let batch: RecordBatch = batch?;
        let arrays = columns
            .iter()
            .map(|name| {
                batch
                    .column_by_name(name)
                    .cloned()
                    .ok_or_else(|| ArqError::Input(format!("{}: no column {name}", file.display())))
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

/// The customer ids of the snapshot, checked.
fn check_customers(root: &Path, files: &[PathBuf]) -> Result<HashSet<String>> {
    let mut ids = HashSet::new();
    for file in files {
        read_columns(file, &["customer_id", "credit_limit"], |first, arrays| {
            let (id, limit) = (text(&arrays[0])?, cents(&arrays[1])?);
            let (id, limit) = (
                id.as_string::<i32>(),
                limit.as_primitive::<Decimal128Type>(),
            );
            for r in 0..id.len() {
                let err = |m: String| row_error(root, "customers", file, first + r + 1, m);
                if id.is_null(r) || id.value(r).is_empty() {
                    return Err(err("column customer_id is empty".into()));
                }
                if !ids.insert(id.value(r).to_string()) {
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
        })?;
    }
    Ok(ids)
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
        })
    }

    /// What is wrong with row `r`, if anything.
    fn problem(&self, r: usize, customers: &HashSet<String>) -> Option<String> {
        let (invoice, customer) = (&self.invoice, &self.customer);
        if invoice.is_null(r) || invoice.value(r).is_empty() {
            return Some("column invoice_id is empty".into());
        }
        let id = invoice.value(r);
        if customer.is_null(r) || customer.value(r).is_empty() {
            return Some(format!("column customer_id is empty (invoice {id})"));
        }
        if !customers.contains(customer.value(r)) {
            return Some(format!(
                "column customer_id: {} (invoice {id}) is not in customers of the same snapshot",
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
const OPEN_ITEM_COLUMNS: [&str; 6] = [
    "invoice_id",
    "customer_id",
    "amount",
    "open_amount",
    "invoice_date",
    "due_date",
];

/// Checks every open item of the snapshot.
fn check_open_items(root: &Path, files: &[PathBuf], customers: &HashSet<String>) -> Result<()> {
    // Duplicates are found on 64-bit hashes (16 bytes per item, not a set of strings),
    // then confirmed on the ids themselves.
    let mut hashes: Vec<(u64, u32, u32)> = Vec::new();
    for (f, file) in files.iter().enumerate() {
        read_columns(file, &OPEN_ITEM_COLUMNS, |first, arrays| {
            let columns = OpenItemColumns::read(arrays)?;
            for r in 0..columns.invoice.len() {
                if let Some(problem) = columns.problem(r, customers) {
                    return Err(row_error(root, "open_items", file, first + r + 1, problem));
                }
                let id = columns.invoice.value(r);
                hashes.push((hash_of(id), f as u32, (first + r) as u32));
            }
            Ok(())
        })?;
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
    confirm_duplicates(root, files, &candidates)
}

/// Confirms duplicate invoice ids among the rows whose hashes collide, in file order, so
/// the error names the second occurrence.
fn confirm_duplicates(
    root: &Path,
    files: &[PathBuf],
    candidates: &HashSet<(u32, u32)>,
) -> Result<()> {
    let mut seen: std::collections::HashMap<String, (usize, usize)> = Default::default();
    for (f, file) in files.iter().enumerate() {
        read_columns(file, &["invoice_id"], |first, arrays| {
            let invoice = text(&arrays[0])?;
            let invoice = invoice.as_string::<i32>();
            for r in 0..invoice.len() {
                let row = first + r;
                if !candidates.contains(&(f as u32, row as u32)) {
                    continue;
                }
                let id = invoice.value(r);
                if let Some((f0, r0)) = seen.insert(id.to_string(), (f, row)) {
                    let earlier = files[f0].strip_prefix(root).unwrap_or(&files[f0]);
                    return Err(row_error(
                        root,
                        "open_items",
                        file,
                        row + 1,
                        format!(
                            "column invoice_id: {id} appears twice in the snapshot (also {} row {})",
                            earlier.display(),
                            r0 + 1
                        ),
                    ));
                }
            }
            Ok(())
        })?;
    }
    Ok(())
}

//! A row-at-a-time Parquet writer for the generator: values are appended column by
//! column into Arrow builders and flushed to an [`ArrowWriter`] in batches, so memory
//! stays bounded however many rows a table gets.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use datafusion::arrow::array::{
    ArrayBuilder, ArrayRef, BooleanBuilder, Date32Builder, Decimal128Builder, Int32Builder,
    ListBuilder, StringBuilder, make_builder,
};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::basic::{Compression, Encoding, ZstdLevel};
use datafusion::parquet::file::metadata::{KeyValue, SortingColumn};
use datafusion::parquet::file::properties::WriterProperties;
use datafusion::parquet::schema::types::ColumnPath;

use crate::contract::{self, ASCENDING_KEY, INVOICE_ORDER_COLUMN, SORT_COLUMN};
use crate::error::{ArqError, Result};

/// Rows buffered in builders before they are handed to the Parquet writer.
const BATCH_ROWS: usize = 8192;
/// Rows per Parquet row group: small enough to prune, large enough to scan fast.
const ROW_GROUP_ROWS: usize = 131_072;

/// Writer settings shared by every generated file. `created_by` is fixed so the bytes
/// do not depend on the parquet crate's version string.
pub fn writer_properties(schema: &SchemaRef) -> WriterProperties {
    let mut props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_created_by(format!("arq {}", env!("CARGO_PKG_VERSION")));
    // Unique identifiers and money amounts do not compress with a dictionary; skip the
    // wasted attempt (the writer would fill a dictionary page and then fall back).
    // Money (cents as 64-bit integers) is DELTA_BINARY_PACKED and left uncompressed: each
    // value bit-packed in the ~20 bits its difference from the one before needs, which is
    // smaller than the plain 8 bytes after ZSTD (a payments file 207 → 194 MB) and is read
    // without decompressing a gigabyte of plain integers per 132 M rows — the ZSTD of the
    // amounts was the largest cost of scanning payments and invoices (`perf` of a query
    // joining both: ZSTD 16 % before, 3 % after). Summing all 133 M payments by customer
    // 1.7 → 1.0 s (benches/README.md, "Money as DELTA_BINARY_PACKED").
    // Identifiers are written in order within a customer and share their prefix
    // (`INV-0000042-0001`, `INV-0000042-0002`): DELTA_BYTE_ARRAY stores each as the length
    // of the prefix it shares with the one before and the rest, which Parquet recommends
    // for sorted strings. A quarter smaller than PLAIN after ZSTD, and reading them back
    // decompresses a seventh of the bytes: a tenth less CPU for the queries that read
    // `invoice_id` from every payment and invoice (benches/README.md, "Identifiers as
    // DELTA_BYTE_ARRAY").
    for field in schema.fields() {
        let name = field.name();
        let identifier = matches!(
            name.as_str(),
            "invoice_id" | "payment_id" | "activity_id" | "write_off_id"
        );
        if identifier || field.data_type() == &contract::MONEY {
            let column = ColumnPath::from(name.as_str());
            props = props.set_column_dictionary_enabled(column.clone(), false);
            if identifier {
                props = props.set_column_encoding(column, Encoding::DELTA_BYTE_ARRAY);
            } else {
                props = props
                    .set_column_encoding(column.clone(), Encoding::DELTA_BINARY_PACKED)
                    .set_column_compression(column, Compression::UNCOMPRESSED);
            }
        }
    }
    // Every file holds its customers' rows in customer order (a shard is a range of
    // customers, each written whole): say so in the metadata, where the warehouse check
    // reads it (a plain, unnested schema: the field's index is its column's).
    if let Ok(index) = schema.index_of(SORT_COLUMN) {
        props = props.set_sorting_columns(Some(vec![SortingColumn {
            column_idx: index as i32,
            descending: false,
            nulls_first: false,
        }]));
    }
    props.build()
}

/// Appends rows to one Parquet file.
pub struct ParquetSink {
    path: PathBuf,
    schema: SchemaRef,
    builders: Vec<Box<dyn ArrayBuilder>>,
    column: usize,
    rows: usize,
    writer: ArrowWriter<BufWriter<File>>,
    /// Whether the rows so far are in order of [`INVOICE_ORDER_COLUMN`] (tables that have it).
    invoice_order: Option<Ascending>,
}

/// A text column's rows checked for ascending order as they are written.
struct Ascending {
    column: usize,
    last: Option<String>,
    held: bool,
}

impl Ascending {
    /// Checks the next rows (a NULL breaks the order).
    fn extend(&mut self, values: &ArrayRef) {
        use datafusion::arrow::array::{Array, AsArray};
        let values = values.as_string::<i32>();
        if !self.held || values.is_empty() {
            return;
        }
        let first_ok = self.last.as_deref().is_none_or(|l| l <= values.value(0));
        self.held = first_ok
            && values.null_count() == 0
            && (1..values.len()).all(|i| values.value(i - 1) <= values.value(i));
        self.last = Some(values.value(values.len() - 1).to_string());
    }
}

macro_rules! builder {
    ($self:ident, $ty:ty) => {{
        let i = $self.column;
        $self.column += 1;
        $self.builders[i]
            .as_any_mut()
            .downcast_mut::<$ty>()
            .unwrap_or_else(|| {
                panic!(
                    "column {} of {} is not {}",
                    i,
                    $self.path.display(),
                    stringify!($ty)
                )
            })
    }};
}

impl ParquetSink {
    /// Creates `path` (and its folder) for rows of `schema`.
    pub fn create(path: &Path, schema: SchemaRef) -> Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| ArqError::io(dir, e))?;
        }
        let file = File::create(path).map_err(|e| ArqError::io(path, e))?;
        let props = writer_properties(&schema);
        let writer = ArrowWriter::try_new(
            BufWriter::with_capacity(1 << 20, file),
            schema.clone(),
            Some(props),
        )?;
        Ok(ParquetSink {
            path: path.to_path_buf(),
            builders: new_builders(&schema),
            invoice_order: schema
                .index_of(INVOICE_ORDER_COLUMN)
                .ok()
                .map(|column| Ascending {
                    column,
                    last: None,
                    held: true,
                }),
            schema,
            column: 0,
            rows: 0,
            writer,
        })
    }

    /// Next column: a string.
    pub fn str(&mut self, v: &str) -> &mut Self {
        builder!(self, StringBuilder).append_value(v);
        self
    }

    /// Next column: a nullable string.
    pub fn opt_str(&mut self, v: Option<&str>) -> &mut Self {
        builder!(self, StringBuilder).append_option(v);
        self
    }

    /// Next column: a date (days since 1970-01-01).
    pub fn date(&mut self, v: i32) -> &mut Self {
        builder!(self, Date32Builder).append_value(v);
        self
    }

    /// Next column: a nullable date.
    pub fn opt_date(&mut self, v: Option<i32>) -> &mut Self {
        builder!(self, Date32Builder).append_option(v);
        self
    }

    /// Next column: money in cents.
    pub fn money(&mut self, cents: i64) -> &mut Self {
        builder!(self, Decimal128Builder).append_value(cents as i128);
        self
    }

    /// Next column: nullable money in cents.
    pub fn opt_money(&mut self, cents: Option<i64>) -> &mut Self {
        builder!(self, Decimal128Builder).append_option(cents.map(i128::from));
        self
    }

    /// Next column: a 32-bit integer.
    pub fn int(&mut self, v: i32) -> &mut Self {
        builder!(self, Int32Builder).append_value(v);
        self
    }

    /// Next column: a boolean.
    pub fn boolean(&mut self, v: bool) -> &mut Self {
        builder!(self, BooleanBuilder).append_value(v);
        self
    }

    /// Next column: a list of strings.
    pub fn str_list(&mut self, values: &[&str]) -> &mut Self {
        let list = builder!(self, ListBuilder<Box<dyn ArrayBuilder>>);
        let items = list
            .values()
            .as_any_mut()
            .downcast_mut::<StringBuilder>()
            .expect("list of strings");
        for v in values {
            items.append_value(v);
        }
        list.append(true);
        self
    }

    /// Ends the current row; writes a batch when enough rows are buffered.
    pub fn end_row(&mut self) -> Result<()> {
        debug_assert_eq!(self.column, self.builders.len(), "{}", self.path.display());
        self.column = 0;
        self.rows += 1;
        if self.rows == BATCH_ROWS {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        if self.rows == 0 {
            return Ok(());
        }
        let columns: Vec<ArrayRef> = self.builders.iter_mut().map(|b| b.finish()).collect();
        if let Some(order) = &mut self.invoice_order {
            order.extend(&columns[order.column]);
        }
        let batch = RecordBatch::try_new(self.schema.clone(), columns)?;
        self.writer.write(&batch)?;
        self.rows = 0;
        Ok(())
    }

    /// Writes what is buffered and closes the file, naming under [`ASCENDING_KEY`] the
    /// column its rows turned out to be in order of.
    pub fn finish(mut self) -> Result<()> {
        self.flush()?;
        if self.invoice_order.as_ref().is_some_and(|o| o.held) {
            self.writer.append_key_value_metadata(KeyValue::new(
                ASCENDING_KEY.to_string(),
                INVOICE_ORDER_COLUMN.to_string(),
            ));
        }
        self.writer.close()?;
        Ok(())
    }
}

fn new_builders(schema: &SchemaRef) -> Vec<Box<dyn ArrayBuilder>> {
    schema
        .fields()
        .iter()
        .map(|f| make_builder(f.data_type(), BATCH_ROWS))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract;
    use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    #[test]
    fn writes_rows_that_read_back_with_the_contract_schema() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("collectors/part-00000.parquet");
        let mut sink = ParquetSink::create(&path, contract::collectors_schema()).unwrap();
        for i in 0..10_000 {
            sink.str(&format!("K{i}"))
                .str("Ada Abe")
                .str("collector")
                .int(40)
                .str_list(&["consumer", "small_business"]);
            sink.end_row().unwrap();
        }
        sink.finish().unwrap();
        let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(&path).unwrap()).unwrap();
        assert_eq!(reader.schema(), &contract::collectors_schema());
        let rows: usize = reader.build().unwrap().map(|b| b.unwrap().num_rows()).sum();
        assert_eq!(rows, 10_000);
    }

    /// The payments file of `invoices` (one payment each), and what it says it is in
    /// ascending order of under [`ASCENDING_KEY`].
    fn declared_order(invoices: &[String]) -> Option<String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("payments/part-00000.parquet");
        let mut sink = ParquetSink::create(&path, contract::payments_schema()).unwrap();
        for (i, invoice) in invoices.iter().enumerate() {
            sink.str(&format!("PAY-{i:07}"))
                .str(invoice)
                .str("C0000001")
                .date(20_000)
                .money(100);
            sink.end_row().unwrap();
        }
        sink.finish().unwrap();
        let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(&path).unwrap()).unwrap();
        let metadata = reader
            .metadata()
            .file_metadata()
            .key_value_metadata()
            .cloned();
        metadata
            .unwrap_or_default()
            .into_iter()
            .find(|kv| kv.key == ASCENDING_KEY)
            .and_then(|kv| kv.value)
    }

    #[test]
    fn a_file_names_the_invoice_order_only_where_its_rows_kept_it() {
        // Across several batches (8,192 rows each), equal ids next to each other.
        let ascending: Vec<String> = (0..20_000)
            .map(|i| format!("INV-{:07}-0001", i / 2))
            .collect();
        assert_eq!(
            declared_order(&ascending).as_deref(),
            Some(INVOICE_ORDER_COLUMN)
        );
        // One row below the one before it, within a batch and at a batch's start.
        for at in [5_000, BATCH_ROWS] {
            let mut rows = ascending.clone();
            rows[at] = rows[at - 3].clone();
            assert_eq!(declared_order(&rows), None, "a step down at {at}");
        }
        // Past the fourth digit of a sequence: `-10000` sorts before `-9999`.
        let wider = vec![
            "INV-0000001-9999".to_string(),
            "INV-0000001-10000".to_string(),
        ];
        assert_eq!(declared_order(&wider), None);
        // No rows: nothing out of order.
        assert_eq!(declared_order(&[]).as_deref(), Some(INVOICE_ORDER_COLUMN));
    }

    #[test]
    fn money_is_delta_packed_and_uncompressed_and_reads_back_exactly() {
        use datafusion::arrow::array::AsArray;
        use datafusion::arrow::datatypes::Decimal128Type;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("activities/part-00000.parquet");
        let mut sink = ParquetSink::create(&path, contract::activities_schema()).unwrap();
        // Amounts that jump both ways, the largest Decimal(18, 2) and its negation, NULLs.
        let cents = |i: i64| match i % 7 {
            0 => None,
            1 => Some(999_999_999_999_999_999),
            2 => Some(-999_999_999_999_999_999),
            _ => Some((i * 7_919) % 1_000_003 - 500_000),
        };
        for i in 0..20_000i64 {
            sink.str(&format!("ACT-{i:07}"))
                .str(&format!("C{:07}", i / 10))
                .opt_str(None)
                .date(20_000)
                .str("promise")
                .opt_str(None)
                .opt_str(None)
                .opt_date(None)
                .opt_money(cents(i));
            sink.end_row().unwrap();
        }
        sink.finish().unwrap();
        let builder = ParquetRecordBatchReaderBuilder::try_new(File::open(&path).unwrap()).unwrap();
        let meta = builder.metadata().clone();
        let amounts: Vec<Option<i128>> = builder
            .build()
            .unwrap()
            .flat_map(|b| {
                let b = b.unwrap();
                let a = b.column(8).as_primitive::<Decimal128Type>().clone();
                a.iter().collect::<Vec<_>>()
            })
            .collect();
        let expected: Vec<Option<i128>> = (0..20_000).map(|i| cents(i).map(i128::from)).collect();
        assert_eq!(amounts, expected);
        for group in meta.row_groups() {
            let column = |name: &str| {
                let i = group
                    .columns()
                    .iter()
                    .position(|c| c.column_path().string() == name)
                    .unwrap();
                group.column(i)
            };
            let money = column("promise_amount");
            let encodings: Vec<Encoding> = money.encodings().collect();
            assert!(
                encodings.contains(&Encoding::DELTA_BINARY_PACKED),
                "{encodings:?}"
            );
            assert!(!encodings.contains(&Encoding::PLAIN), "{encodings:?}");
            assert_eq!(money.compression(), Compression::UNCOMPRESSED);
            let id = column("activity_id");
            assert!(id.encodings().any(|e| e == Encoding::DELTA_BYTE_ARRAY));
            assert!(matches!(id.compression(), Compression::ZSTD(_)));
        }
    }
}

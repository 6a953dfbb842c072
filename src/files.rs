//! Files beside the warehouse, for the analyst's `arq sql` and `arq shell` (not for a
//! server): `SELECT * FROM 'export.parquet'` and `'export.csv'` as DuckDB and
//! datafusion-cli read them, and the table functions `read_parquet('path')` and
//! `read_csv('path')` (a file, or a folder of such files), so a spreadsheet export joins
//! the warehouse in one query.

use std::sync::Arc;

use datafusion::catalog::{Session, TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::common::ScalarValue;
use datafusion::datasource::file_format::csv::CsvFormat;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::Expr;
use datafusion::prelude::SessionContext;

/// `ctx` with file paths as tables and `read_parquet` / `read_csv`.
pub fn enable(ctx: SessionContext) -> SessionContext {
    let ctx = ctx.enable_url_table();
    ctx.register_udtf("read_parquet", Arc::new(ReadFile { csv: false }));
    ctx.register_udtf("read_csv", Arc::new(ReadFile { csv: true }));
    ctx
}

/// `read_parquet(path)` or `read_csv(path)` (CSV with a header row).
#[derive(Debug)]
struct ReadFile {
    csv: bool,
}

impl ReadFile {
    fn name(&self) -> &'static str {
        if self.csv { "read_csv" } else { "read_parquet" }
    }
}

impl TableFunctionImpl for ReadFile {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        let path = match args.exprs() {
            [Expr::Literal(ScalarValue::Utf8(Some(p)) | ScalarValue::Utf8View(Some(p)), _)] => p,
            _ => {
                return Err(DataFusionError::Plan(format!(
                    "{} takes one argument: a file or folder path as a string, e.g. {}('export.{}')",
                    self.name(),
                    self.name(),
                    if self.csv { "csv" } else { "parquet" }
                )));
            }
        };
        let url = ListingTableUrl::parse(path)?;
        // A file keeps its own extension (`.CSV`, `.txt`); a folder lists the usual one.
        let extension = match std::path::Path::new(path).extension() {
            Some(e) if std::path::Path::new(path).is_file() => format!(".{}", e.to_string_lossy()),
            _ if self.csv => ".csv".into(),
            _ => ".parquet".into(),
        };
        let options = if self.csv {
            ListingOptions::new(Arc::new(CsvFormat::default().with_has_header(true)))
        } else {
            ListingOptions::new(Arc::new(ParquetFormat::default()))
        }
        .with_file_extension(extension);
        let schema = infer(args.session(), &options, &url, self.name(), path)?;
        let config = ListingTableConfig::new(url)
            .with_listing_options(options)
            .with_schema(schema);
        Ok(Arc::new(ListingTable::try_new(config)?))
    }
}

/// The schema of the files: planning is synchronous, reading a footer or a CSV header is
/// not, so this blocks the planning thread (arq runs on a multi-threaded runtime).
fn infer(
    session: &dyn Session,
    options: &ListingOptions,
    url: &ListingTableUrl,
    name: &str,
    path: &str,
) -> Result<datafusion::arrow::datatypes::SchemaRef> {
    let handle = tokio::runtime::Handle::try_current()
        .map_err(|_| DataFusionError::Plan(format!("{name} needs arq sql or arq shell")))?;
    if handle.runtime_flavor() != tokio::runtime::RuntimeFlavor::MultiThread {
        return Err(DataFusionError::Plan(format!(
            "{name} needs arq sql or arq shell"
        )));
    }
    tokio::task::block_in_place(|| handle.block_on(options.infer_schema(session, url)))
        .map_err(|e| DataFusionError::Plan(format!("{name}('{path}'): {e}")))
}

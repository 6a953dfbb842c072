//! arq's error type: every failure reaches the user as one line that says where
//! (warehouse, table, file, column, row) and what.

use std::path::{Path, PathBuf};

use datafusion::error::DataFusionError;

/// Result with [`ArqError`].
pub type Result<T, E = ArqError> = std::result::Result<T, E>;

/// Everything that can go wrong in arq, with enough context to act on it.
#[derive(Debug, thiserror::Error)]
pub enum ArqError {
    /// The warehouse folder itself is unusable (missing, not a folder, no snapshots).
    #[error("warehouse {}: {message}", path.display())]
    Warehouse { path: PathBuf, message: String },

    /// A table of the warehouse breaks the contract.
    #[error("table `{table}`: {message}")]
    Table { table: String, message: String },

    /// A file breaks the contract: names the table, the file and what is wrong
    /// (the message names the column).
    #[error("table `{table}`, file {}: {message}", file.display())]
    TableFile {
        table: String,
        file: PathBuf,
        message: String,
    },

    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },

    /// A query failed to plan or run.
    #[error("{}", one_line(&.0.to_string()))]
    DataFusion(#[from] DataFusionError),

    /// Features, training, a model artifact or scoring failed.
    #[error("{}", one_line(&.0.to_string()))]
    Model(#[from] arq_models::ModelError),

    /// A bad argument or option.
    #[error("{0}")]
    Usage(String),
}

impl ArqError {
    /// An I/O error on `path`.
    pub fn io(path: impl AsRef<Path>, source: std::io::Error) -> Self {
        ArqError::Io {
            path: path.as_ref().to_path_buf(),
            source,
        }
    }
}

impl From<datafusion::arrow::error::ArrowError> for ArqError {
    fn from(e: datafusion::arrow::error::ArrowError) -> Self {
        ArqError::DataFusion(DataFusionError::ArrowError(Box::new(e), None))
    }
}

impl From<datafusion::parquet::errors::ParquetError> for ArqError {
    fn from(e: datafusion::parquet::errors::ParquetError) -> Self {
        ArqError::DataFusion(DataFusionError::ParquetError(Box::new(e)))
    }
}

/// Folds a multi-line message (DataFusion sometimes adds backtraces or hints on extra
/// lines) into one line for the terminal.
pub fn one_line(message: &str) -> String {
    message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

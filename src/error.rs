//! arq's error type: every failure reaches the user as one line that says where
//! (warehouse, table, file, column, row) and what, with an exit code that says what kind:
//! 2 for bad arguments (as clap does), 1 for bad input and for internal errors.

use std::path::{Path, PathBuf};

use datafusion::error::DataFusionError;

/// Result with [`ArqError`].
pub type Result<T, E = ArqError> = std::result::Result<T, E>;

/// Everything that can go wrong in arq, with enough context to act on it.
#[derive(Debug, thiserror::Error)]
pub enum ArqError {
    /// A bad argument, option or combination of them (exit code 2).
    #[error("{0}")]
    Usage(String),

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

    /// An input other than the warehouse (a table given with `--table`, a policy, a
    /// model) cannot be used: the message names the file, column and row.
    #[error("{0}")]
    Input(String),

    /// A failure of the storage (a bucket, an object, the endpoint) on `what`.
    #[error("{what}: {message}")]
    Storage { what: String, message: String },

    /// The cluster at `url` (its scheduler or executors) failed or cannot be reached.
    #[error("cluster {url}: {message}")]
    Cluster { url: String, message: String },

    /// What was asked for is not in the data (a queue, a customer, a snapshot range).
    #[error("{0}")]
    NotFound(String),

    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },

    /// A query failed to plan or run.
    #[error("{}", short_sql_error(&one_line(&.0.to_string())))]
    DataFusion(#[from] DataFusionError),

    /// Features, training, a model artifact, a policy or scoring failed.
    #[error("{}", one_line(&.0.to_string()))]
    Model(#[from] arq_models::ModelError),

    /// A step the command ran in another arq process (a night's build of the settlement
    /// table) failed: that process's message, as it gave it.
    #[error("{0}")]
    Apart(String),

    /// Something that should not happen did: a bug in arq, not in the input.
    #[error("internal error: {0} (this is a bug in arq; please report it)")]
    Internal(String),

    /// A failure injected by a test (`fault-injection` builds only).
    #[cfg(feature = "fault-injection")]
    #[error("{0}")]
    Injected(String),
}

impl ArqError {
    /// An I/O error on `path`.
    pub fn io(path: impl AsRef<Path>, source: std::io::Error) -> Self {
        ArqError::Io {
            path: path.as_ref().to_path_buf(),
            source,
        }
    }

    /// The process exit code for this error: 2 for usage, 1 for everything else.
    pub fn exit_code(&self) -> u8 {
        match self {
            ArqError::Usage(_) => 2,
            _ => 1,
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

/// The function a cluster's executor could not find to run a task (Ballista's executors
/// decode a task's plan with their own functions: one started without arq's lacks them).
fn function_unknown_to_executor(message: &str) -> Option<String> {
    const MARKS: [&str; 4] = [
        "is not provided for scalar function ",
        "is not provided for aggregate function ",
        "is not provided for window function ",
        "There is no UDF named ",
    ];
    let (mark, at) = MARKS
        .iter()
        .find_map(|m| message.find(m).map(|at| (*m, at)))?;
    let name: String = message[at + mark.len()..]
        .trim_start_matches('"')
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    (!name.is_empty()).then_some(name)
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

/// DataFusion answers SQL it parses but cannot plan (PIVOT, UNPIVOT, ...) with a dump of
/// the syntax tree; this says which construct in one short line, with the way round.
fn short_sql_error(message: &str) -> String {
    if let Some(name) = function_unknown_to_executor(message) {
        return format!(
            "a cluster executor does not know the function `{name}`: run executors with \
             `arq cluster executor` of this arq version (and the same --model) — {message}"
        );
    }
    const MARK: &str = "Unsupported ast node ";
    let Some(at) = message.find(MARK) else {
        return message.to_string();
    };
    let rest = &message[at + MARK.len()..];
    let node: String = rest
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    let hint = match node.as_str() {
        "Pivot" => {
            ": write the pivot with FILTER, e.g. sum(open_amount) FILTER (WHERE segment = 'consumer') AS consumer"
        }
        "Unpivot" => ": write the unpivot as a UNION ALL of one SELECT per column",
        _ => "",
    };
    format!(
        "this SQL is not supported: {} is not implemented{hint}",
        node.to_uppercase()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_exits_2_everything_else_1_and_internal_errors_say_bug() {
        assert_eq!(ArqError::Usage("x".into()).exit_code(), 2);
        assert_eq!(ArqError::Input("x".into()).exit_code(), 1);
        let internal = ArqError::Internal("a writer thread panicked".into());
        assert_eq!(internal.exit_code(), 1);
        assert!(internal.to_string().contains("this is a bug"), "{internal}");
        assert_eq!(one_line("a\n  b\n\n c"), "a b c");
    }

    #[test]
    fn unsupported_syntax_is_one_short_line() {
        let pivot = "This feature is not implemented: Unsupported ast node Pivot { table: Table { name: ... } }";
        let short = short_sql_error(pivot);
        assert!(
            short.starts_with(
                "this SQL is not supported: PIVOT is not implemented: write the pivot with FILTER"
            ),
            "{short}"
        );
        assert!(!short.contains("Table {"));
        assert_eq!(
            short_sql_error("table 'x' not found"),
            "table 'x' not found"
        );
    }

    #[test]
    fn a_function_an_executor_lacks_is_named() {
        for message in [
            "Job 1 failed: DataFusionError(NotImplemented(\"PhysicalExtensionCodec is not provided for scalar function aging_bucket\"))",
            "Internal error: There is no UDF named \"aging_bucket\" in the TaskContext",
        ] {
            let short = short_sql_error(message);
            assert!(
                short.starts_with("a cluster executor does not know the function `aging_bucket`"),
                "{short}"
            );
        }
        assert_eq!(
            function_unknown_to_executor(
                "PhysicalExtensionCodec is not provided for aggregate function weighted_dpd"
            ),
            Some("weighted_dpd".into())
        );
    }
}

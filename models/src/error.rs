//! Errors of the model crate: each says which model file, table, column or row.

use datafusion::error::DataFusionError;

/// Result with [`ModelError`].
pub type Result<T, E = ModelError> = std::result::Result<T, E>;

/// What can go wrong while building features, training, loading or scoring a model.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// The input data cannot be used (names the table, column and row).
    #[error("{0}")]
    Data(String),

    /// A model artifact is unreadable or does not fit the data.
    #[error("model {path}: {message}")]
    Artifact { path: String, message: String },

    /// Training could not produce a model (too few rows, a single class, ...).
    #[error("training: {0}")]
    Training(String),

    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },

    /// The feature SQL failed.
    #[error(transparent)]
    DataFusion(#[from] DataFusionError),
}

impl From<datafusion::arrow::error::ArrowError> for ModelError {
    fn from(e: datafusion::arrow::error::ArrowError) -> Self {
        ModelError::DataFusion(DataFusionError::ArrowError(Box::new(e), None))
    }
}

impl From<ModelError> for DataFusionError {
    fn from(e: ModelError) -> Self {
        match e {
            ModelError::DataFusion(e) => e,
            other => DataFusionError::Execution(other.to_string()),
        }
    }
}

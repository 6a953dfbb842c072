//! Input files read once (the model, the policy): parsed from the bytes that are also
//! fingerprinted, so the manifest names exactly what the run used.

use std::path::{Path, PathBuf};

use arq_models::model::Fingerprint;

use crate::error::{ArqError, Result};

/// An input file read once: where it came from, what it holds, and the FNV-1a
/// fingerprint of the bytes that were parsed (for the nightly manifest).
#[derive(Debug, Clone)]
pub struct Loaded<T> {
    pub path: PathBuf,
    pub value: T,
    pub fingerprint: String,
}

impl<T> Loaded<T> {
    /// Reads `path` and parses its text with `parse(text, name)`.
    pub fn read(
        path: &Path,
        parse: impl FnOnce(&str, &str) -> arq_models::Result<T>,
    ) -> Result<Loaded<T>> {
        let bytes = std::fs::read(path).map_err(|e| ArqError::io(path, e))?;
        let mut fingerprint = Fingerprint::default();
        fingerprint.update(&bytes);
        let text = String::from_utf8(bytes)
            .map_err(|_| ArqError::Input(format!("{}: not UTF-8 text", path.display())))?;
        Ok(Loaded {
            value: parse(&text, &path.display().to_string())?,
            path: path.to_path_buf(),
            fingerprint: fingerprint.hex(),
        })
    }
}

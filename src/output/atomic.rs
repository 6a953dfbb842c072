//! The one way arq writes a file: into a temporary file beside it, flushed and fsynced,
//! renamed over the destination, then the folder fsynced — so a reader sees the old
//! file or the new one, never half of one, and a crash after the rename keeps the new
//! one. A failed write removes its temporary file and leaves the destination untouched.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use crate::error::{ArqError, Result};

/// Writes `path` through `write` (given a buffered temporary file) atomically; returns
/// what `write` returns.
pub fn write_atomically<T>(
    path: &Path,
    write: impl FnOnce(&mut BufWriter<File>) -> Result<T>,
) -> Result<T> {
    let tmp = temporary_sibling(path);
    let outcome = (|| {
        let file = File::create(&tmp).map_err(|e| ArqError::io(&tmp, e))?;
        let mut buffered = BufWriter::with_capacity(1 << 20, file);
        let value = write(&mut buffered)?;
        let file = buffered
            .into_inner()
            .map_err(|e| ArqError::io(&tmp, e.into_error()))?;
        file.sync_all().map_err(|e| ArqError::io(&tmp, e))?;
        std::fs::rename(&tmp, path).map_err(|e| ArqError::io(path, e))?;
        sync_folder(path.parent())?;
        Ok(value)
    })();
    if outcome.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    outcome
}

/// Makes a rename or an exchange in `folder` durable (`.` when empty or none).
pub fn sync_folder(folder: Option<&Path>) -> Result<()> {
    let folder = match folder {
        Some(f) if !f.as_os_str().is_empty() => f,
        _ => Path::new("."),
    };
    // Folders can be opened and fsynced on Unix; elsewhere renames are left to the OS.
    if cfg!(unix) {
        File::open(folder)
            .and_then(|f| f.sync_all())
            .map_err(|e| ArqError::io(folder, e))?;
    }
    Ok(())
}

/// `.NAME.partial-PID` beside `path`.
fn temporary_sibling(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "output".into());
    path.with_file_name(format!(".{name}.partial-{}", std::process::id()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn a_failed_write_leaves_the_old_file_and_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.csv");
        std::fs::write(&path, "old").unwrap();
        let err = write_atomically(&path, |f| {
            f.write_all(b"half").unwrap();
            Err::<(), _>(ArqError::Input("encoding failed".into()))
        });
        assert!(err.is_err());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "old");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);

        let n = write_atomically(&path, |f| {
            f.write_all(b"new").map_err(|e| ArqError::io("x", e))?;
            Ok(3)
        })
        .unwrap();
        assert_eq!(n, 3);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}

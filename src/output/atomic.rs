//! The one way arq writes a file in place: into a temporary file beside it, flushed and
//! fsynced, renamed over the destination, then the folder fsynced — so a reader sees the
//! old file or the new one, never half of one, and a crash after the rename keeps the
//! new one. A failed write removes its temporary file and leaves the destination
//! untouched. (Files in a staging folder, which appears whole, need none of this:
//! [`super::folder`].)

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
    let mut file = AtomicFile::create(path)?;
    let value = write(file.writer())?;
    file.commit()?;
    Ok(value)
}

/// A file being written atomically, for writers that cannot be one closure (a result
/// streamed from a query): [`AtomicFile::commit`] puts it in place; dropped without a
/// commit, its temporary file is removed and the destination is untouched.
pub struct AtomicFile {
    path: PathBuf,
    tmp: PathBuf,
    buffered: Option<BufWriter<File>>,
}

impl AtomicFile {
    /// Creates the temporary file beside `path`.
    pub fn create(path: &Path) -> Result<AtomicFile> {
        let tmp = temporary_sibling(path);
        let file = File::create(&tmp).map_err(|e| ArqError::io(&tmp, e))?;
        Ok(AtomicFile {
            path: path.to_path_buf(),
            tmp,
            buffered: Some(BufWriter::with_capacity(1 << 20, file)),
        })
    }

    /// Where the bytes go.
    pub fn writer(&mut self) -> &mut BufWriter<File> {
        self.buffered
            .as_mut()
            .expect("written only before the commit")
    }

    /// Flushes and fsyncs the file, renames it over the destination and fsyncs the
    /// folder.
    pub fn commit(mut self) -> Result<()> {
        let buffered = self.buffered.take().expect("committed once");
        let file = buffered
            .into_inner()
            .map_err(|e| ArqError::io(&self.tmp, e.into_error()))?;
        file.sync_all().map_err(|e| ArqError::io(&self.tmp, e))?;
        std::fs::rename(&self.tmp, &self.path).map_err(|e| ArqError::io(&self.path, e))?;
        sync_folder(self.path.parent())
    }
}

/// Writes go to the temporary file (a Parquet writer can own an `AtomicFile` and give it
/// back to be committed: `ArrowWriter::into_inner`).
impl std::io::Write for AtomicFile {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.writer().write(bytes)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.writer().flush()
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        // After a commit the temporary file is gone (renamed); otherwise a failed or
        // abandoned write leaves nothing behind.
        let _ = std::fs::remove_file(&self.tmp);
    }
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

//! Many files into one folder (the nightly job's staging folder): each table as CSV and
//! Parquet, encoded straight into its file (never into memory first) by one thread per
//! core, hashed on the way, and recorded for the manifest; and, when asked, spreadsheets
//! of the lists people read.
//!
//! The folder is a staging folder ([`super::staging::StagingDir`]), put in place whole
//! or not at all, so its files need no temporary name and rename each (what
//! [`super::write_atomically`] does for a file written in place): each is written under
//! its own name, and [`FolderWriter::sync`] makes them all durable before the commit — at
//! a million customers 13,744 files, two fsyncs and a rename each before (2.6 s of
//! system calls in the write stage).
//!
//! **Durable in one call** (Linux): each file's write-back to the disk is started as it is
//! closed (`sync_file_range(SYNC_FILE_RANGE_WRITE)`, which does not wait), and
//! [`FolderWriter::sync`] waits for all of them at once with `syncfs` on the staging
//! folder — the files' data and the folders' entries, and any write error since the
//! folder was opened (Linux 5.8 and later report it there). Waiting in an fsync for each
//! file as it was written held the writer threads 2–3 s of a 12 s write stage at a million
//! customers (benches/README.md). Elsewhere each file is fsynced as it is written.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use datafusion::arrow::array::RecordBatch;
use serde::{Deserialize, Serialize};

use super::fingerprint::FileFingerprint;
use super::{OutputFormat, QueryResult, write_result};
use crate::error::{ArqError, Result};

/// One output file as the manifest lists it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OutputRecord {
    pub file: String,
    pub rows: Option<usize>,
    pub bytes: u64,
    pub fingerprint: String,
}

/// A spreadsheet of several tables, one sheet each.
#[derive(Debug, Clone)]
pub struct Workbook {
    /// The file name without `.xlsx`.
    pub name: String,
    pub sheets: Vec<(String, RecordBatch)>,
}

/// Runs `work(0..count)` on one thread per core (at most 8); the first error wins.
fn in_parallel(count: usize, work: impl Fn(usize) -> Result<()> + Sync) -> Result<()> {
    let next = AtomicUsize::new(0);
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, 8);
    let worker = || -> Result<()> {
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            if i >= count {
                return Ok(());
            }
            work(i)?;
        }
    };
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads).map(|_| scope.spawn(worker)).collect();
        workers
            .into_iter()
            .map(|w| {
                w.join().unwrap_or_else(|_| {
                    Err(ArqError::Internal(
                        "an output writer thread panicked".into(),
                    ))
                })
            })
            .collect::<Result<Vec<()>>>()
    })?;
    Ok(())
}

/// The order to write tables of `rows[i]` rows in: the largest first, tables of the same
/// size in the order given. The threads take the next table as they finish one, so a big
/// table taken last is written by one thread while the others have nothing left: the
/// nightly's limits and scores (a million rows each at a million customers) came after
/// five thousand call lists, and the night ended its write stage on one core.
fn largest_first(rows: &[usize]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..rows.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(rows[i]));
    order
}

/// Starts writing `file`'s data to the disk without waiting (Linux), for
/// [`FolderWriter::sync`] to wait for; elsewhere, or on a file system that cannot, fsyncs
/// it.
fn durable_later(file: &File) -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        // SAFETY: a system call on an open descriptor; the range 0..0 is the whole file.
        let started =
            unsafe { libc::sync_file_range(file.as_raw_fd(), 0, 0, libc::SYNC_FILE_RANGE_WRITE) };
        match started {
            0 => Ok(()),
            _ => file.sync_all(),
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        file.sync_all()
    }
}

/// Writes files into a folder and keeps their records.
pub struct FolderWriter {
    dir: PathBuf,
    /// The folder, open from the start: `syncfs` on it reports the write errors of the
    /// files written since (Linux).
    #[cfg(target_os = "linux")]
    opened: File,
    /// Records with their position in the manifest.
    written: Mutex<Vec<(usize, OutputRecord)>>,
    /// The folders files were written in (for [`FolderWriter::sync`]).
    folders: Mutex<BTreeSet<PathBuf>>,
    count: AtomicUsize,
    #[cfg(feature = "fault-injection")]
    faults: faults::Faults,
}

impl FolderWriter {
    /// A writer into `dir` (which exists).
    pub fn new(dir: &Path) -> Result<Self> {
        Ok(FolderWriter {
            dir: dir.to_path_buf(),
            #[cfg(target_os = "linux")]
            opened: File::open(dir).map_err(|e| ArqError::io(dir, e))?,
            written: Default::default(),
            folders: Default::default(),
            count: Default::default(),
            #[cfg(feature = "fault-injection")]
            faults: faults::Faults::from_env()?,
        })
    }

    /// `name.csv` and `name.parquet` for every table, by one thread per core; the
    /// records list them in the order given.
    pub fn tables(&self, tables: &[(String, RecordBatch)]) -> Result<()> {
        let rows: Vec<usize> = tables.iter().map(|(_, b)| b.num_rows()).collect();
        self.tables_made(&rows, |i| Ok(tables[i].clone()))
    }

    /// [`FolderWriter::tables`] for `rows.len()` tables made as they are written: `make(i)`
    /// gives the name and rows of table `i`, so only the tables being written are in
    /// memory (the nightly's call lists are copies of rows of its queues and items).
    /// `rows[i]` is table `i`'s number of rows: the tables are written largest first (see
    /// [`largest_first`]); the records keep the order given.
    pub fn tables_made(
        &self,
        rows: &[usize],
        make: impl Fn(usize) -> Result<(String, RecordBatch)> + Sync,
    ) -> Result<()> {
        let order = largest_first(rows);
        in_parallel(order.len(), |k| {
            let i = order[k];
            let (name, batch) = make(i)?;
            self.table(2 * i, &name, &batch)
        })
    }

    /// `name.xlsx` for every workbook (its sheets: name and rows), listed after the
    /// `tables` tables of [`FolderWriter::tables`].
    pub fn workbooks(&self, tables: usize, books: &[Workbook]) -> Result<()> {
        in_parallel(books.len(), |i| {
            let book = &books[i];
            let sheets: Vec<(&str, &RecordBatch)> =
                book.sheets.iter().map(|(n, b)| (n.as_str(), b)).collect();
            let rows = book.sheets.first().map(|(_, b)| b.num_rows());
            let bytes = super::xlsx::workbook(&sheets)?;
            self.write_with(
                2 * tables + i,
                &format!("{}.xlsx", book.name),
                rows,
                |out| {
                    out.write_all(&bytes)
                        .map_err(|e| ArqError::io(&book.name, e))
                },
            )
        })
    }

    fn table(&self, order: usize, name: &str, batch: &RecordBatch) -> Result<()> {
        self.encoded(order, name, OutputFormat::Csv, "csv", batch)?;
        self.encoded(order + 1, name, OutputFormat::Parquet, "parquet", batch)
    }

    /// `name.extension`: `batch` in `format`.
    fn encoded(
        &self,
        order: usize,
        name: &str,
        format: OutputFormat,
        extension: &str,
        batch: &RecordBatch,
    ) -> Result<()> {
        let result = QueryResult {
            schema: batch.schema(),
            batches: vec![batch.clone()],
        };
        self.write_with(
            order,
            &format!("{name}.{extension}"),
            Some(batch.num_rows()),
            |out| write_result(&result, format, out),
        )
    }

    /// `name.parquet` alone (a table for programs only, too big to be worth a CSV),
    /// listed after the tables.
    pub fn parquet(&self, name: &str, batch: &RecordBatch) -> Result<()> {
        self.encoded(usize::MAX, name, OutputFormat::Parquet, "parquet", batch)
    }

    /// A file that is not a table, listed after the tables.
    pub fn file(&self, name: &str, bytes: &[u8]) -> Result<()> {
        self.write_with(usize::MAX, name, None, |out| {
            out.write_all(bytes).map_err(|e| ArqError::io(name, e))
        })
    }

    /// Creates `name` and lets `encode` fill it; records its size and fingerprint.
    fn write_with(
        &self,
        order: usize,
        name: &str,
        rows: Option<usize>,
        encode: impl FnOnce(&mut HashingWriter<&mut BufWriter<File>>) -> Result<()>,
    ) -> Result<()> {
        let path = self.dir.join(name);
        let folder = path.parent().unwrap_or(&self.dir).to_path_buf();
        std::fs::create_dir_all(&folder).map_err(|e| ArqError::io(&folder, e))?;
        let file = File::create(&path).map_err(|e| ArqError::io(&path, e))?;
        let mut buffered = BufWriter::with_capacity(1 << 20, file);
        let mut out = HashingWriter {
            inner: &mut buffered,
            fingerprint: FileFingerprint::default(),
            bytes: 0,
        };
        encode(&mut out)?;
        let (bytes, fingerprint) = (out.bytes, out.fingerprint);
        let file = buffered
            .into_inner()
            .map_err(|e| ArqError::io(&path, e.into_error()))?;
        durable_later(&file).map_err(|e| ArqError::io(&path, e))?;
        // The file's folder and those between it and the staging folder (their entries).
        let mut folders = self
            .folders
            .lock()
            .map_err(|_| ArqError::Internal("an output writer thread panicked".into()))?;
        for f in folder.ancestors().take_while(|f| f.starts_with(&self.dir)) {
            folders.insert(f.to_path_buf());
        }
        drop(folders);
        let record = OutputRecord {
            file: name.to_string(),
            rows,
            bytes,
            fingerprint: fingerprint.hex(),
        };
        self.written
            .lock()
            .map_err(|_| ArqError::Internal("an output writer thread panicked".into()))?
            .push((order, record));
        let _n = self.count.fetch_add(1, Ordering::SeqCst) + 1;
        #[cfg(feature = "fault-injection")]
        self.faults.after_file(_n)?;
        Ok(())
    }

    /// Makes the written files durable (Linux: `syncfs` on the staging folder, see the
    /// module's documentation; elsewhere they were fsynced as they were written), then
    /// fsyncs every folder a file went into and those above it up to the staging folder.
    /// Before the staging folder is committed.
    pub fn sync(&self) -> Result<()> {
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::AsRawFd;
            // SAFETY: a system call on a descriptor this writer owns.
            if unsafe { libc::syncfs(self.opened.as_raw_fd()) } != 0 {
                return Err(ArqError::io(&self.dir, std::io::Error::last_os_error()));
            }
        }
        let folders = self
            .folders
            .lock()
            .map_err(|_| ArqError::Internal("an output writer thread panicked".into()))?;
        // Deepest first, the staging folder last.
        for folder in folders.iter().rev() {
            super::atomic::sync_folder(Some(folder))?;
        }
        Ok(())
    }

    /// The files written so far, in manifest order.
    pub fn records(&self) -> Vec<OutputRecord> {
        let mut written = match self.written.lock() {
            Ok(w) => w.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        written.sort_by_key(|(order, _)| *order);
        written.into_iter().map(|(_, r)| r).collect()
    }
}

/// A file being written, with the fingerprint and size of what went into it.
pub struct HashingWriter<W> {
    inner: W,
    fingerprint: FileFingerprint,
    bytes: u64,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.fingerprint.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Test-only failures (the `fault-injection` feature, which the end-to-end tests turn
/// on): `ARQ_NIGHTLY_FAIL_AFTER_FILES=N` fails the run after N output files are written;
/// `ARQ_NIGHTLY_PAUSE_AFTER_FILES=N` sleeps there (so a test can kill the run); the same
/// with `_UPLOADS` for the files put in a bucket ([`super::bucket`]).
#[cfg(feature = "fault-injection")]
pub(crate) mod faults {
    use crate::error::{ArqError, Result};

    pub struct Faults {
        fail_after: Option<usize>,
        pause_after: Option<usize>,
        fail_name: &'static str,
    }

    impl Faults {
        pub fn from_env() -> Result<Faults> {
            Self::named(
                "ARQ_NIGHTLY_FAIL_AFTER_FILES",
                "ARQ_NIGHTLY_PAUSE_AFTER_FILES",
            )
        }

        pub fn named(fail_name: &'static str, pause_name: &'static str) -> Result<Faults> {
            let number = |name: &str| -> Result<Option<usize>> {
                match std::env::var(name) {
                    Ok(v) => v
                        .parse()
                        .map(Some)
                        .map_err(|_| ArqError::Usage(format!("{name}={v} is not a number"))),
                    Err(_) => Ok(None),
                }
            };
            Ok(Faults {
                fail_after: number(fail_name)?,
                pause_after: number(pause_name)?,
                fail_name,
            })
        }

        pub fn after_file(&self, n: usize) -> Result<()> {
            if self.pause_after == Some(n) {
                std::thread::sleep(std::time::Duration::from_secs(600));
            }
            if self.fail_after == Some(n) {
                return Err(ArqError::Injected(format!(
                    "failure injected after {n} output files ({})",
                    self.fail_name
                )));
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::Int32Array;
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use std::sync::Arc;

    #[test]
    fn files_land_under_their_names_with_records_and_every_folder_up_to_the_staging_one_is_synced()
    {
        let dir = tempfile::tempdir().unwrap();
        let writer = FolderWriter::new(dir.path()).unwrap();
        writer.file("sub/deep/b.txt", b"deep").unwrap();
        writer.file("a.txt", b"top").unwrap();
        let fingerprint = |bytes: &[u8]| {
            let mut f = FileFingerprint::default();
            f.update(bytes);
            f.hex()
        };
        let records = writer.records();
        let files: Vec<_> = records.iter().map(|r| (r.file.as_str(), r.bytes)).collect();
        assert_eq!(files, [("sub/deep/b.txt", 4), ("a.txt", 3)]);
        assert_eq!(records[0].fingerprint, fingerprint(b"deep"));
        assert_eq!(
            std::fs::read(dir.path().join("sub/deep/b.txt")).unwrap(),
            b"deep"
        );
        // No temporary file beside them.
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
        let synced: Vec<PathBuf> = writer.folders.lock().unwrap().iter().cloned().collect();
        let expected: Vec<PathBuf> = ["", "sub", "sub/deep"]
            .iter()
            .map(|f| dir.path().join(f).components().collect())
            .collect();
        assert_eq!(synced, expected);
        writer.sync().unwrap();
    }

    #[test]
    fn tables_are_written_largest_first_and_recorded_in_the_order_given() {
        assert_eq!(largest_first(&[3, 10, 0, 10, 7]), [1, 3, 4, 0, 2]);
        assert_eq!(largest_first(&[]), Vec::<usize>::new());
        let dir = tempfile::tempdir().unwrap();
        let writer = FolderWriter::new(dir.path()).unwrap();
        let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::Int32, false)]));
        let table = |name: &str, n: i32| {
            let rows = Int32Array::from((0..n).collect::<Vec<_>>());
            let batch = RecordBatch::try_new(schema.clone(), vec![Arc::new(rows)]).unwrap();
            (name.to_string(), batch)
        };
        let tables = vec![table("small", 1), table("big", 300), table("middle", 20)];
        writer.tables(&tables).unwrap();
        let records: Vec<(String, Option<usize>)> = writer
            .records()
            .into_iter()
            .map(|r| (r.file, r.rows))
            .collect();
        let expected: Vec<(String, Option<usize>)> = [("small", 1), ("big", 300), ("middle", 20)]
            .iter()
            .flat_map(|(name, n)| {
                ["csv", "parquet"].map(|ext| (format!("{name}.{ext}"), Some(*n as usize)))
            })
            .collect();
        assert_eq!(records, expected);
    }
}

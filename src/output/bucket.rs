//! Nights and folders in a bucket (`arq nightly --out s3://bucket/prefix`, `arq generate
//! --out s3://…`). An object store has no rename, so a night cannot appear in one step
//! the way a local folder does. Instead:
//!
//! ```text
//! OUT/2026-10-31/run-20261101T020000Z-4242/queues.csv ...  every file of one run
//! OUT/2026-10-31/run-20261101T020000Z-4242/manifest.json   written after all of them
//! OUT/2026-10-31/LATEST                                    "run-20261101T020000Z-4242"
//! ```
//!
//! A run writes every file under a fresh `run-…` prefix (never an existing one), then the
//! manifest (the commit record: it lists every file with its size), then replaces the
//! small `LATEST` object with the run's name — one PUT, which S3 makes visible whole. A
//! reader trusts a night only when `LATEST` names a run whose manifest exists and whose
//! every listed file is there with the listed size. A run killed before its `LATEST` PUT
//! leaves the previous run of that night (or no night) as what readers see; its partial
//! prefix is never read (remove old `run-…` prefixes with a bucket lifecycle rule).
//!
//! The nightly job itself works in a local folder: it first copies from the bucket the
//! files later nights read of every trusted night ([`fetch`]), runs as on a local
//! folder, and publishes the new night ([`publish`]).

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

use chrono::NaiveDate;
use futures::StreamExt;
use object_store::buffered::BufWriter;
use serde::Deserialize;
use tokio::io::AsyncWriteExt;

use super::folder::OutputRecord;
use crate::error::{ArqError, Result};
use crate::storage::Location;

/// The object that names a night's committed run.
pub const POINTER: &str = "LATEST";

/// The manifest of a night.
pub const MANIFEST: &str = "manifest.json";

/// What later nights and `arq report --nights` read of a night (the rest is for people).
const READ_BY_LATER_NIGHTS: [&str; 8] = [
    MANIFEST,
    "carry_over.csv",
    "queues.parquet",
    "scores.parquet",
    "limits.parquet",
    "backtest.parquet",
    crate::report::nights::PORTFOLIO_FACTS,
    "outcomes.parquet",
];

/// Files above this size are uploaded in parts.
const PART: usize = 8 << 20;

/// Files uploaded at once.
const UPLOADS_AT_ONCE: usize = 8;

/// What a manifest lists: the night's files (the rest of it is not read here).
#[derive(Deserialize)]
struct Listed {
    outputs: Vec<OutputRecord>,
}

/// A committed night in a bucket.
#[derive(Debug)]
pub struct Night {
    /// Its snapshot date (`YYYY-MM-DD`).
    pub date: String,
    /// The folder of its committed run.
    pub run: Location,
}

/// The nights under `out` that readers trust, oldest first.
pub async fn committed(out: &Location) -> Result<Vec<Night>> {
    let Some(listing) = out.list().await? else {
        return Ok(Vec::new());
    };
    let mut nights = Vec::new();
    for date in listing.folders {
        if NaiveDate::parse_from_str(&date, "%Y-%m-%d").is_err() {
            continue;
        }
        let night = out.join(&date);
        let Some(pointer) = night.read(POINTER).await? else {
            continue;
        };
        let name = String::from_utf8_lossy(&pointer).trim().to_string();
        if !name.starts_with("run-") || name.contains('/') {
            continue;
        }
        let run = night.join(&name);
        if complete(&run).await? {
            nights.push(Night { date, run });
        }
    }
    Ok(nights)
}

/// Whether a run's manifest exists and every file it lists is there with its size.
async fn complete(run: &Location) -> Result<bool> {
    let Some(manifest) = run.read(MANIFEST).await? else {
        return Ok(false);
    };
    let Ok(listed) = serde_json::from_slice::<Listed>(&manifest) else {
        return Ok(false);
    };
    let sizes: HashMap<String, u64> = run
        .list_all()
        .await?
        .into_iter()
        .map(|o| (run.relative(&o.location), o.size))
        .collect();
    Ok(listed
        .outputs
        .iter()
        .all(|f| sizes.get(&f.file) == Some(&f.bytes)))
}

/// Copies what later nights read of every trusted night under `out` into
/// `local/<date>/`, so the nightly job and the report read them as local nights; returns
/// how many nights.
pub async fn fetch(out: &Location, local: &Path) -> Result<usize> {
    let nights = committed(out).await?;
    for night in &nights {
        let dir = local.join(&night.date);
        std::fs::create_dir_all(&dir).map_err(|e| ArqError::io(&dir, e))?;
        for name in READ_BY_LATER_NIGHTS {
            if let Some(bytes) = night.run.read(name).await? {
                let path = dir.join(name);
                std::fs::write(&path, &bytes).map_err(|e| ArqError::io(&path, e))?;
            }
        }
    }
    Ok(nights.len())
}

/// Publishes the night written in the local folder `dir` (its manifest lists its files)
/// as `out/<date>/`: every file under a fresh run prefix, the manifest, then the pointer.
/// Returns the run's folder.
pub async fn publish(dir: &Path, out: &Location, date: &str) -> Result<Location> {
    let manifest_path = dir.join(MANIFEST);
    let manifest = std::fs::read(&manifest_path).map_err(|e| ArqError::io(&manifest_path, e))?;
    let listed: Listed = serde_json::from_slice(&manifest)
        .map_err(|e| ArqError::Internal(format!("the night's manifest does not parse: {e}")))?;
    let name = format!(
        "run-{}-{}",
        chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ"),
        std::process::id()
    );
    let night = out.join(date);
    let run = night.join(&name);
    #[cfg(feature = "fault-injection")]
    let faults = super::folder::faults::Faults::named(
        "ARQ_NIGHTLY_FAIL_AFTER_UPLOADS",
        "ARQ_NIGHTLY_PAUSE_AFTER_UPLOADS",
    )?;
    // Several uploads at once (a night at 100,000 customers has 1,400 files); the
    // manifest only after every one of them succeeded.
    {
        let run = &run;
        let uploads = listed
            .outputs
            .iter()
            .map(|file| async move { upload(&dir.join(&file.file), run, &file.file).await });
        let mut uploads = futures::stream::iter(uploads).buffer_unordered(UPLOADS_AT_ONCE);
        let mut _done = 0;
        while let Some(uploaded) = uploads.next().await {
            uploaded?;
            _done += 1;
            #[cfg(feature = "fault-injection")]
            faults.after_file(_done)?;
        }
    }
    run.write(MANIFEST, manifest).await?;
    night
        .write(POINTER, format!("{name}\n").into_bytes())
        .await?;
    Ok(run)
}

/// Uploads the local file `path` as `name` in `folder` (in parts when it is large).
pub async fn upload(path: &Path, folder: &Location, name: &str) -> Result<()> {
    let object = folder.object(name);
    let mut file = std::fs::File::open(path).map_err(|e| ArqError::io(path, e))?;
    let mut writer = BufWriter::with_capacity(folder.store().clone(), object.clone(), PART);
    let mut buffer = vec![0u8; PART];
    loop {
        let n = file.read(&mut buffer).map_err(|e| ArqError::io(path, e))?;
        if n == 0 {
            break;
        }
        writer
            .write_all(&buffer[..n])
            .await
            .map_err(|e| upload_error(folder, &object, e))?;
    }
    match writer.shutdown().await {
        Ok(()) => Ok(()),
        Err(e) => {
            let _ = writer.abort().await;
            Err(upload_error(folder, &object, e))
        }
    }
}

fn upload_error(
    folder: &Location,
    object: &object_store::path::Path,
    e: std::io::Error,
) -> ArqError {
    let message = crate::error::one_line(&e.to_string());
    match e
        .into_inner()
        .map(|inner| inner.downcast::<object_store::Error>())
    {
        Some(Ok(store_error)) => folder.error(object, *store_error),
        _ => ArqError::Storage {
            what: folder.show(object),
            message,
        },
    }
}

/// A local temporary folder (removed when dropped) for work bound for a bucket.
pub fn work_folder(purpose: &str) -> Result<tempfile::TempDir> {
    tempfile::Builder::new()
        .prefix(&format!("arq-{purpose}-"))
        .tempdir()
        .map_err(|e| ArqError::io(std::env::temp_dir(), e))
}

/// The trusted nights under `out` copied ([`fetch`]) into a new local temporary folder.
pub async fn fetch_into_work_folder(out: &Location) -> Result<tempfile::TempDir> {
    let work = work_folder("nights")?;
    fetch(out, work.path()).await?;
    Ok(work)
}

/// Uploads every file below the local folder `local` to `dest` (same relative paths),
/// in path order; `arq generate --out s3://…` writes its warehouse this way.
pub async fn upload_folder(local: &Path, dest: &Location) -> Result<usize> {
    let mut files = Vec::new();
    let mut stack = vec![local.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).map_err(|e| ArqError::io(&dir, e))? {
            let path = entry.map_err(|e| ArqError::io(&dir, e))?.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files.sort();
    for path in &files {
        let relative = path.strip_prefix(local).unwrap_or(path);
        upload(path, dest, &relative.to_string_lossy()).await?;
    }
    Ok(files.len())
}

//! Folders that appear atomically: everything is written into a hidden staging folder
//! beside the destination, which replaces the destination in one step only when the
//! whole output is complete. A run that fails or is killed leaves what was there before.

use std::path::{Path, PathBuf};

use crate::error::{ArqError, Result};

/// A temporary folder beside the destination, removed unless committed.
pub struct StagingDir {
    staging: PathBuf,
    target: PathBuf,
    committed: bool,
}

impl StagingDir {
    /// Creates `.NAME.partial-PID` beside `target`, after removing the staging folders
    /// that killed runs left behind for the same target.
    pub fn new(target: &Path) -> Result<Self> {
        let parent = match target.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        std::fs::create_dir_all(&parent).map_err(|e| ArqError::io(&parent, e))?;
        let name = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .ok_or_else(|| ArqError::Usage(format!("{} is not a folder name", target.display())))?;
        remove_abandoned(&parent, &name)?;
        let staging = parent.join(format!(".{name}.partial-{}", std::process::id()));
        if staging.exists() {
            std::fs::remove_dir_all(&staging).map_err(|e| ArqError::io(&staging, e))?;
        }
        std::fs::create_dir(&staging).map_err(|e| ArqError::io(&staging, e))?;
        Ok(StagingDir {
            staging,
            target: target.to_path_buf(),
            committed: false,
        })
    }

    /// Where to write.
    pub fn path(&self) -> &Path {
        &self.staging
    }

    /// Puts the staging folder in place of the target. An existing target is replaced
    /// only with `replace` (else it must be an empty folder); on Linux the two folders
    /// are exchanged in one `renameat2(RENAME_EXCHANGE)`, so at every instant the target
    /// holds either the old or the new output.
    pub fn commit(mut self, replace: bool) -> Result<()> {
        self.put_in_place(replace)?;
        super::atomic::sync_folder(self.target.parent())
    }

    fn put_in_place(&mut self, replace: bool) -> Result<()> {
        if self.target.exists() {
            if !replace && !is_empty_dir(&self.target)? {
                return Err(ArqError::Input(format!(
                    "{} appeared while writing; not replaced",
                    self.target.display()
                )));
            }
            if !self.target.is_dir() {
                return Err(ArqError::Input(format!(
                    "{} exists and is not a folder",
                    self.target.display()
                )));
            }
            if exchange(&self.staging, &self.target)? {
                // The staging path now holds the old output.
                self.committed = true;
                std::fs::remove_dir_all(&self.staging)
                    .map_err(|e| ArqError::io(&self.staging, e))?;
                return Ok(());
            }
            // No atomic exchange here: move the old output aside, then the new one in.
            let aside = self.staging.with_extension("old");
            std::fs::rename(&self.target, &aside).map_err(|e| ArqError::io(&self.target, e))?;
            std::fs::rename(&self.staging, &self.target)
                .map_err(|e| ArqError::io(&self.target, e))?;
            self.committed = true;
            std::fs::remove_dir_all(&aside).map_err(|e| ArqError::io(&aside, e))?;
            return Ok(());
        }
        std::fs::rename(&self.staging, &self.target).map_err(|e| ArqError::io(&self.target, e))?;
        self.committed = true;
        Ok(())
    }
}

impl Drop for StagingDir {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_dir_all(&self.staging);
        }
    }
}

/// Whether `path` is an empty folder (an error when it is not a folder).
pub fn is_empty_dir(path: &Path) -> Result<bool> {
    if !path.is_dir() {
        return Err(ArqError::Input(format!(
            "{} exists and is not a folder",
            path.display()
        )));
    }
    let mut entries = std::fs::read_dir(path).map_err(|e| ArqError::io(path, e))?;
    Ok(entries.next().is_none())
}

/// Swaps two paths atomically; `false` when the file system cannot.
#[cfg(target_os = "linux")]
fn exchange(a: &Path, b: &Path) -> Result<bool> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let c = |p: &Path| {
        CString::new(p.as_os_str().as_bytes())
            .map_err(|_| ArqError::Usage(format!("{} contains a NUL byte", p.display())))
    };
    let (ca, cb) = (c(a)?, c(b)?);
    // SAFETY: both arguments are valid NUL-terminated paths that outlive the call;
    // AT_FDCWD resolves relative paths as `rename` does.
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            ca.as_ptr(),
            libc::AT_FDCWD,
            cb.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    if rc == 0 {
        return Ok(true);
    }
    let error = std::io::Error::last_os_error();
    match error.raw_os_error() {
        Some(libc::EINVAL) | Some(libc::ENOSYS) | Some(libc::EOPNOTSUPP) => Ok(false),
        _ => Err(ArqError::io(b, error)),
    }
}

#[cfg(not(target_os = "linux"))]
fn exchange(_a: &Path, _b: &Path) -> Result<bool> {
    Ok(false)
}

/// Removes `.NAME.partial-PID` folders (and `.old` ones) of processes that no longer run.
fn remove_abandoned(parent: &Path, name: &str) -> Result<()> {
    let prefix = format!(".{name}.partial-");
    let Ok(entries) = std::fs::read_dir(parent) else {
        return Ok(());
    };
    for entry in entries.flatten() {
        let file_name = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = file_name.strip_prefix(&prefix) else {
            continue;
        };
        let pid = rest.strip_suffix(".old").unwrap_or(rest);
        let Ok(pid) = pid.parse::<u32>() else {
            continue;
        };
        if pid != std::process::id() && !process_runs(pid) {
            let path = entry.path();
            std::fs::remove_dir_all(&path).map_err(|e| ArqError::io(&path, e))?;
        }
    }
    Ok(())
}

#[cfg(target_os = "linux")]
fn process_runs(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

#[cfg(not(target_os = "linux"))]
fn process_runs(_pid: u32) -> bool {
    // Without a cheap check, assume it runs: leftovers stay rather than risk removing
    // another run's work.
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_replaces_and_an_uncommitted_folder_vanishes() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("2026-10-31");
        std::fs::create_dir(&target).unwrap();
        std::fs::write(target.join("old.csv"), "old").unwrap();

        // Dropped without commit: the old output stays, the staging folder goes.
        let staging = StagingDir::new(&target).unwrap();
        std::fs::write(staging.path().join("new.csv"), "new").unwrap();
        drop(staging);
        assert_eq!(
            std::fs::read_to_string(target.join("old.csv")).unwrap(),
            "old"
        );
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);

        // Committed: replaced as a whole.
        let staging = StagingDir::new(&target).unwrap();
        std::fs::write(staging.path().join("new.csv"), "new").unwrap();
        staging.commit(true).unwrap();
        assert!(!target.join("old.csv").exists());
        assert_eq!(
            std::fs::read_to_string(target.join("new.csv")).unwrap(),
            "new"
        );
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);

        // Not replaced without `replace`.
        let staging = StagingDir::new(&target).unwrap();
        assert!(staging.commit(false).is_err());
        assert!(target.join("new.csv").exists());
    }

    #[test]
    fn leftovers_of_dead_runs_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out");
        // No process has pid 4294967 (above Linux's pid_max).
        let dead = dir.path().join(".out.partial-4294967");
        std::fs::create_dir(&dead).unwrap();
        let other = dir.path().join(".other.partial-4294967");
        std::fs::create_dir(&other).unwrap();
        let staging = StagingDir::new(&target).unwrap();
        if cfg!(target_os = "linux") {
            assert!(!dead.exists());
        }
        assert!(other.exists(), "another target's staging is not touched");
        staging.commit(false).unwrap();
        assert!(target.is_dir());
    }
}

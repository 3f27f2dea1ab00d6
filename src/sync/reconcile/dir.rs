//! The spill directory of one sync: `<service.temp_dir>/sync-XXXXXX`, made when a side first
//! outgrows memory and removed when the sync ends, however it ends (dropping it removes it).
//!
//! A process killed with `kill -9` cannot remove its directory, so each directory holds a `lock`
//! file that its sync keeps locked (`flock`: the kernel releases it when the process dies). Before
//! making a new directory, a sync removes every `sync-*` directory under the same base whose lock
//! nobody holds: what an interrupted sync left.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

const PREFIX: &str = "sync-";
const LOCK: &str = "lock";
/// A directory without its lock file this old is debris (the lock is made right after the
/// directory).
const UNLOCKED_GRACE: Duration = Duration::from_secs(60);

pub struct SpillDir {
    base: PathBuf,
    made: Option<(tempfile::TempDir, File)>,
}

impl SpillDir {
    pub fn new(base: &Path) -> SpillDir {
        SpillDir {
            base: base.to_path_buf(),
            made: None,
        }
    }

    /// The directory (the base until it is made).
    pub fn path(&self) -> &Path {
        self.made
            .as_ref()
            .map_or(self.base.as_path(), |(dir, _)| dir.path())
    }

    /// Makes the directory unless it exists.
    pub fn ensure(&mut self) -> io::Result<&Path> {
        if self.made.is_none() {
            fs::create_dir_all(&self.base)?;
            sweep(&self.base);
            let dir = tempfile::Builder::new()
                .prefix(PREFIX)
                .tempdir_in(&self.base)?;
            let lock = File::create(dir.path().join(LOCK))?;
            lock.try_lock().map_err(io::Error::other)?;
            tracing::debug!(dir = %dir.path().display(), "spilling reconciliation to disk");
            self.made = Some((dir, lock));
        }
        Ok(self.path())
    }
}

/// Removes the directories of interrupted syncs under `base`; errors only get logged (a sync
/// does not fail because someone else's debris could not be removed).
pub fn sweep(base: &Path) {
    let Ok(entries) = fs::read_dir(base) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let named = entry.file_name().to_string_lossy().starts_with(PREFIX);
        if !named || !path.is_dir() || in_use(&path) {
            continue;
        }
        match fs::remove_dir_all(&path) {
            Ok(()) => tracing::info!(dir = %path.display(),
                "removed the temporary files of an interrupted sync"),
            Err(e) => tracing::warn!(dir = %path.display(), error = %e,
                "could not remove the temporary files of an interrupted sync"),
        }
    }
}

fn in_use(dir: &Path) -> bool {
    match File::open(dir.join(LOCK)) {
        Ok(lock) => lock.try_lock().is_err(),
        Err(_) => fs::metadata(dir)
            .and_then(|m| m.modified())
            .is_ok_and(|t| t.elapsed().unwrap_or_default() < UNLOCKED_GRACE),
    }
}

//! The writer lock: one process syncs a store at a time (issue #13 item 4).
//!
//! Two `run` processes on one store both wrote every note. SQLite serialises transactions but
//! not passes: each process plans from what it read and writes the remote side on its own.
//! So [`super::Store::open`] takes an exclusive `flock(2)` on a lock file beside the database
//! (`<store>.lock`, created `0600`) and keeps it for the store's lifetime; the kernel releases
//! it when the process ends, however it ends (a SIGKILL leaves no stale lock). The holder writes
//! its pid into the file, so a refused process can name it. Read-only opens (`status`,
//! `explain`, `plan`) and short edits of the store alone (`resolve`, `retry`) take no lock.

use std::fs::{File, OpenOptions};
use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};

use super::StoreError;

/// The held lock; released when dropped (or when the process ends).
#[derive(Debug)]
pub struct WriterLock {
    // Held open: closing the file releases the flock.
    _file: File,
}

/// Where the lock of the store at `store` lives.
pub fn lock_path(store: &Path) -> PathBuf {
    let mut name = store.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

/// Takes the writer lock of the store at `store`, or says which process holds it.
pub fn acquire(store: &Path) -> Result<WriterLock, StoreError> {
    let path = lock_path(store);
    let io = |source| StoreError::Io {
        path: path.clone(),
        source,
    };
    let mut options = OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(&path).map_err(io)?;
    #[cfg(unix)]
    {
        use rustix::fs::{FlockOperation, flock};
        match flock(&file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {}
            Err(rustix::io::Errno::WOULDBLOCK) => {
                let mut text = String::new();
                let _ = file.read_to_string(&mut text);
                return Err(StoreError::Locked {
                    path: store.to_path_buf(),
                    lock: path,
                    holder: text.trim().parse().ok(),
                });
            }
            Err(e) => return Err(io(e.into())),
        }
    }
    file.set_len(0).map_err(io)?;
    file.seek(SeekFrom::Start(0)).map_err(io)?;
    writeln!(file, "{}", std::process::id()).map_err(io)?;
    file.flush().map_err(io)?;
    Ok(WriterLock { _file: file })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_is_refused_naming_the_holder_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("state.sqlite");
        let first = acquire(&store).unwrap();
        let err = acquire(&store).unwrap_err();
        match &err {
            StoreError::Locked { holder, .. } => {
                assert_eq!(*holder, Some(std::process::id()));
            }
            other => panic!("expected Locked, got {other}"),
        }
        drop(first);
        assert!(acquire(&store).is_ok());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(lock_path(&store))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}

//! Deciding whether a file may be opened, before anything writes to it.
//!
//! SQLite happily "opens" any file and would turn a stranger's database into ours on the first
//! migration, or set WAL mode on a file it cannot read. So the file is judged first, without
//! writing a byte: its header, then (through an `immutable` read-only connection, which takes no
//! locks and creates no `-wal`/`-shm` files) its application id, schema version, tables and a
//! quick integrity check. Only a file that passes is ever opened read-write.

use std::io::Read;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};

use super::error::StoreError;
use super::schema::{APPLICATION_ID, OUR_TABLES, SCHEMA_VERSION};

/// The first 16 bytes of every SQLite 3 database file.
const SQLITE_HEADER: &[u8; 16] = b"SQLite format 3\0";

/// What the inspection found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// No file, or an empty one: a new database may be created.
    Fresh,
    /// A database of ours at this schema version (at most [`SCHEMA_VERSION`]).
    Ours { version: i64 },
}

/// Judges the file at `path` without modifying it.
pub(crate) fn inspect(path: &Path) -> Result<Verdict, StoreError> {
    let io_error = |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Verdict::Fresh),
        Err(e) => return Err(io_error(e)),
    };
    let mut head = Vec::with_capacity(SQLITE_HEADER.len());
    (&mut file)
        .take(SQLITE_HEADER.len() as u64)
        .read_to_end(&mut head)
        .map_err(io_error)?;
    drop(file);
    if head.is_empty() {
        return Ok(Verdict::Fresh);
    }
    if head != SQLITE_HEADER {
        return Err(StoreError::NotADatabase {
            path: path.to_path_buf(),
            starts_with: printable(&head),
        });
    }

    let conn = open_untouched(path)?;
    let damaged = |e: rusqlite::Error| classify(path, e);
    let application_id: i32 = conn
        .pragma_query_value(None, "application_id", |row| row.get(0))
        .map_err(damaged)?;
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(damaged)?;
    let tables = table_names(&conn).map_err(damaged)?;

    if application_id != APPLICATION_ID {
        let strangers: Vec<&String> = tables
            .iter()
            .filter(|t| !OUR_TABLES.contains(&t.as_str()))
            .collect();
        let what = if application_id != 0 {
            Some(format!("application_id {application_id:#010x}"))
        } else if !strangers.is_empty() {
            let names: Vec<&str> = strangers.iter().take(5).map(|t| t.as_str()).collect();
            Some(format!("tables {}", names.join(", ")))
        } else {
            // application_id 0 with none or only our tables: an empty SQLite file, or ours
            // interrupted between migrating and marking. Both are safe to take.
            None
        };
        if let Some(what) = what {
            return Err(StoreError::Foreign {
                path: path.to_path_buf(),
                what,
            });
        }
    }
    if version > SCHEMA_VERSION {
        return Err(StoreError::TooNew {
            path: path.to_path_buf(),
            found: version,
            supported: SCHEMA_VERSION,
        });
    }
    let report = quick_check(&conn).map_err(damaged)?;
    if report != ["ok"] {
        return Err(StoreError::Damaged {
            path: path.to_path_buf(),
            report: report.join("; "),
        });
    }
    Ok(Verdict::Ours { version })
}

/// Creates a missing store file readable and writable by its owner only (mode 0600), whatever
/// the umask: the store holds the OAuth tokens and personal data. SQLite gives the `-wal` and
/// `-shm` files it creates the mode of the database file, so they are 0600 too. Best effort:
/// when the file cannot be created here, SQLite's own open reports why.
pub(crate) fn create_private(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        let _ = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path);
    }
}

/// Opens `path` read-only so that SQLite writes nothing at all, not even `-wal`/`-shm` files.
///
/// A plain read-only connection to a WAL database creates `-wal` and `-shm` beside it and leaves
/// them there. With no `-wal` present the file is self-contained, so `immutable=1` reads it with
/// no locks and no side files. With a `-wal` present (the daemon is running, or crashed), its
/// content may be newer than the main file, so the ordinary read-only mode reads through it; the
/// side files already exist then.
pub(crate) fn open_untouched(path: &Path) -> Result<Connection, StoreError> {
    let absolute = std::path::absolute(path).map_err(|source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut uri = url::Url::from_file_path(&absolute).map_err(|()| StoreError::Io {
        path: path.to_path_buf(),
        source: std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "the path cannot be written as a file: URI",
        ),
    })?;
    let wal_present = side_file(path, "-wal").exists();
    uri.set_query(Some(if wal_present {
        "mode=ro"
    } else {
        "mode=ro&immutable=1"
    }));
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
        | OpenFlags::SQLITE_OPEN_URI
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let open_error = |source| StoreError::Open {
        path: path.to_path_buf(),
        source,
    };
    let conn = Connection::open_with_flags(uri.as_str(), flags).map_err(open_error)?;
    // Through a `-wal`, reading shares locks with the daemon: wait for it as a writer would.
    conn.busy_timeout(super::BUSY_TIMEOUT).map_err(open_error)?;
    Ok(conn)
}

/// The path of one of SQLite's side files (`-wal`, `-shm`, `-journal`).
pub(crate) fn side_file(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Turns an SQLite failure while reading the file into `Damaged` when that is what it means.
fn classify(path: &Path, e: rusqlite::Error) -> StoreError {
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase) => {
            StoreError::Damaged {
                path: path.to_path_buf(),
                report: e.to_string(),
            }
        }
        _ => StoreError::Open {
            path: path.to_path_buf(),
            source: e,
        },
    }
}

fn table_names(conn: &Connection) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name",
    )?;
    stmt.query_map([], |row| row.get(0))?.collect()
}

/// `PRAGMA quick_check`: `["ok"]` when sound, otherwise up to ten findings.
fn quick_check(conn: &Connection) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare("PRAGMA quick_check(10)")?;
    stmt.query_map([], |row| row.get(0))?.collect()
}

/// Renders the first bytes of a file for an error message: text as text, the rest escaped.
fn printable(head: &[u8]) -> String {
    format!("{:?}", String::from_utf8_lossy(head))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printable_quotes_text_and_escapes_control_bytes() {
        assert_eq!(printable(b"hello\n"), "\"hello\\n\"");
    }

    #[test]
    fn side_file_appends_suffix() {
        assert_eq!(
            side_file(Path::new("/x/state.sqlite"), "-wal"),
            PathBuf::from("/x/state.sqlite-wal")
        );
    }
}

//! The SQLite state of the sync: what is linked, what was last synced, and what is in flight.
//!
//! ## Tables (schema version [`SCHEMA_VERSION`])
//!
//! | table | file | holds |
//! |---|---|---|
//! | `identity` | [`identity`] | the Trengo account and GHL location this database is bound to |
//! | `links` | [`links`] | ticket ⇄ task pairs, the scope of the sync; never deleted |
//! | `bases` | [`bases`] | the last synced value of each per-link field (status, assignee) |
//! | `contact_bases` | [`bases`] | the last synced value of each contact-level field (tags) |
//! | `comments` | [`comments`] | Trengo message id ⇄ GHL note id, so each note crosses once |
//! | `cursors` | [`cursors`] | change-stream watermarks and sweep positions |
//! | `intents` | [`intents`] | the journal of remote creates with their idempotency keys |
//! | `ledger` | [`ledger`] | applied changes, settled and held conflicts, brakes, unlinks |
//! | `conflicts` | [`conflicts`] | conflicts held for a person (the `manual` policy) |
//! | `retries` | [`retries`] | failed items, their backoff and reason |
//! | `oauth` | [`oauth`] | the rotating GHL refresh token (stored on purpose: it rotates) |
//! | `job_runs` | [`runs`] | when each scheduled job last ran and how it ended |
//! | `contact_pairs` | [`pairs`] | Trengo contact ⇄ GHL contact pairs (`[contacts]`); never deleted |
//! | `pair_bases` | [`pairs`] | the last synced value of each mapped contact field of a pair |
//!
//! ## Shape
//!
//! The table API is synchronous and takes `&rusqlite::Connection`; a `Transaction` derefs to
//! one, so the executor commits a base together with the end of its intent. The async side
//! reaches the store through [`StoreHandle::call`], which runs on tokio's blocking pool; the
//! stages of a pass that only read (detection, loading) go through [`StoreReader::call`], under
//! SQLite's `query_only`, so that the executor stays the only writer. Times
//! are passed in by the caller (the engine owns the clock); the store never reads the time.
//!
//! ## Opening
//!
//! One process writes a store at a time: [`Store::open`] takes the writer lock ([`lock`]),
//! read-only opens and [`Store::open_for_edit`] do not.
//!
//! A file is judged before it is written (see `open.rs`): not SQLite, another program's,
//! written by a newer trengo-sync, or damaged → refused, byte for byte untouched.

pub mod bases;
pub(crate) mod codec;
pub mod comments;
pub mod conflicts;
pub mod controls;
pub mod cursors;
mod error;
pub mod facts;
pub mod identity;
pub mod intents;
pub mod ledger;
pub mod links;
pub mod lock;
pub mod oauth;
mod open;
pub mod pairs;
pub mod retries;
pub mod runs;
mod schema;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{Connection, Transaction, TransactionBehavior};

pub use error::StoreError;
pub use schema::{APPLICATION_ID, SCHEMA_VERSION};

use open::Verdict;

/// How long a connection waits for another writer's lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// An open state database.
#[derive(Debug)]
pub struct Store {
    conn: Connection,
    path: PathBuf,
    read_only: bool,
    /// An in-memory copy of `path` ([`Store::open_snapshot`]): writes never reach the file.
    snapshot: bool,
    // The writer lock of a store opened with `open`; dropped (released) with the store.
    _lock: Option<lock::WriterLock>,
}

impl Store {
    /// Opens (creating and migrating if needed) the database at `path` for reading and writing.
    ///
    /// A missing or empty file becomes a new database. A file that is not SQLite, belongs to
    /// another program, was written by a newer trengo-sync, or is damaged is refused and left
    /// untouched. Takes the store's writer lock (see [`lock`]) for as long as the store is
    /// open: a second writer is refused with [`StoreError::Locked`], naming the holder's pid.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref();
        let writer = lock::acquire(path)?;
        // Judged first, read-only: nothing below may run on a file we must refuse.
        open::inspect(path)?;
        open::create_private(path);
        let open_error = |source| StoreError::Open {
            path: path.to_path_buf(),
            source,
        };
        let mut conn = Connection::open(path).map_err(open_error)?;
        configure(&mut conn).map_err(open_error)?;
        migrate(&mut conn, path)?;
        Ok(Self {
            conn,
            path: path.to_path_buf(),
            read_only: false,
            snapshot: false,
            _lock: Some(writer),
        })
    }

    /// Opens an existing, current database for a short edit of the store alone, beside a
    /// daemon that may be running (`resolve`, `retry`): no writer lock, as such a command never
    /// calls an API and SQLite serialises its one transaction with the daemon's. A missing file
    /// or one needing an upgrade is refused as by [`Store::open_read_only`].
    pub fn open_for_edit(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref();
        // The same refusals as a read-only open, then a writable connection.
        drop(Self::open_read_only(path)?);
        let open_error = |source| StoreError::Open {
            path: path.to_path_buf(),
            source,
        };
        let mut conn = Connection::open(path).map_err(open_error)?;
        configure(&mut conn).map_err(open_error)?;
        Ok(Self {
            conn,
            path: path.to_path_buf(),
            read_only: false,
            snapshot: false,
            _lock: None,
        })
    }

    /// Opens the database at `path` for commands that must write nothing (`plan`, `status`
    /// while the daemon is down).
    ///
    /// Same refusals as [`Store::open`]; in addition a missing file, or one whose schema is
    /// older than this build's, is an error rather than something to create or upgrade.
    pub fn open_read_only(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref();
        let version = match open::inspect(path)? {
            Verdict::Fresh => {
                return Err(StoreError::Missing {
                    path: path.to_path_buf(),
                });
            }
            Verdict::Ours { version } => version,
        };
        if version < SCHEMA_VERSION {
            return Err(StoreError::NeedsUpgrade {
                path: path.to_path_buf(),
                found: version,
                supported: SCHEMA_VERSION,
            });
        }
        let conn = open::open_untouched(path)?;
        Ok(Self {
            conn,
            path: path.to_path_buf(),
            read_only: true,
            snapshot: false,
            _lock: None,
        })
    }

    /// A copy in memory of the database at `path`, for `plan`: the real engine runs against it,
    /// and whatever a dry run records (settled intents, retries, cursors, the identity of a
    /// fresh store) lands in the copy and is dropped with it. The file is only ever read, the
    /// way [`Store::open_read_only`] reads it, so it stays byte for byte what it was, also
    /// while the daemon runs. With no file yet, the copy starts empty: what the first pass
    /// would do. A file this build must refuse is refused as [`Store::open`] would; one of an
    /// older schema is upgraded in the copy only.
    pub fn open_snapshot(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref();
        let mut copy = Self::open_in_memory()?;
        if let Verdict::Ours { .. } = open::inspect(path)? {
            let source = open::open_untouched(path)?;
            let open_error = |source| StoreError::Open {
                path: path.to_path_buf(),
                source,
            };
            rusqlite::backup::Backup::new(&source, &mut copy.conn)
                .and_then(|b| b.run_to_completion(1024, Duration::ZERO, None))
                .map_err(open_error)?;
            copy.conn
                .pragma_update(None, "foreign_keys", true)
                .map_err(open_error)?;
            migrate(&mut copy.conn, path)?;
        }
        copy.path = path.to_path_buf();
        copy.snapshot = true;
        Ok(copy)
    }

    /// A migrated database in memory, for tests and dry runs of the engine.
    pub fn open_in_memory() -> Result<Self, StoreError> {
        let path = PathBuf::from(":memory:");
        let open_error = |source| StoreError::Open {
            path: path.clone(),
            source,
        };
        let mut conn = Connection::open_in_memory().map_err(open_error)?;
        configure(&mut conn).map_err(open_error)?;
        migrate(&mut conn, &path)?;
        Ok(Self {
            conn,
            path,
            read_only: false,
            snapshot: false,
            _lock: None,
        })
    }

    /// The connection, for reads and single-statement writes through the table modules.
    pub fn conn(&self) -> &Connection {
        &self.conn
    }

    /// Begins an IMMEDIATE transaction: it takes the write lock at once, so a transaction that
    /// reads and then writes cannot fail half-way with "database is locked".
    pub fn transaction(&mut self) -> Result<Transaction<'_>, StoreError> {
        if self.read_only {
            return Err(StoreError::ReadOnly {
                path: self.path.clone(),
            });
        }
        Ok(self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?)
    }

    /// Where the database lives (`:memory:` for an in-memory one).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether this store was opened with [`Store::open_read_only`].
    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    /// Whether this is an in-memory copy whose writes never reach its file
    /// ([`Store::open_snapshot`]).
    pub fn is_snapshot(&self) -> bool {
        self.snapshot
    }

    /// The schema version recorded in the file.
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        Ok(self
            .conn
            .pragma_query_value(None, "user_version", |row| row.get(0))?)
    }
}

/// Connection settings for a read-write connection.
fn configure(conn: &mut Connection) -> rusqlite::Result<()> {
    // WAL lets `status` read while the daemon writes; NORMAL is durable across process crashes
    // in WAL mode (only a power loss may drop the last commits, never corrupt).
    let _mode: String =
        conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", true)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    Ok(())
}

/// Applies pending migrations and marks the file as ours.
fn migrate(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    schema::migrations()
        .to_latest(conn)
        .map_err(|source| StoreError::Migrate {
            path: path.to_path_buf(),
            source,
        })?;
    let application_id: i32 = conn.pragma_query_value(None, "application_id", |row| row.get(0))?;
    if application_id != APPLICATION_ID {
        conn.pragma_update(None, "application_id", APPLICATION_ID)?;
    }
    Ok(())
}

/// The store as the async side sees it: cheap to clone, every call on the blocking pool.
#[derive(Clone, Debug)]
pub struct StoreHandle(Arc<Mutex<Store>>);

impl StoreHandle {
    /// Wraps an open store.
    pub fn new(store: Store) -> Self {
        Self(Arc::new(Mutex::new(store)))
    }

    /// Runs `f` with the store on tokio's blocking pool and returns its result.
    ///
    /// rusqlite blocks (disk I/O, fsync, up to five seconds waiting for a lock), and a
    /// blocked async worker thread would stall every task scheduled on it, so the call moves
    /// to `spawn_blocking`. A std mutex (not tokio's) is right here: it is only ever held on
    /// that blocking thread, never across an await.
    pub async fn call<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Store) -> Result<R, StoreError> + Send + 'static,
    ) -> Result<R, StoreError> {
        let store = Arc::clone(&self.0);
        tokio::task::spawn_blocking(move || {
            // A panic in an earlier call poisons the mutex; the connection itself is still
            // sound (SQLite rolled back the unfinished transaction), so carry on.
            let mut guard = store.lock().unwrap_or_else(|e| e.into_inner());
            f(&mut guard)
        })
        .await
        .map_err(|e| StoreError::Panicked(e.to_string()))?
    }

    /// The same store for a stage that only reads it (detection, loading): see
    /// [`StoreReader`].
    pub fn reader(&self) -> StoreReader {
        StoreReader(self.clone())
    }
}

/// The store as the stages of a pass that only read it see it: detection, the sweep, hints
/// and loading. The executor (`sync::execute`) is the only writer of a pass; everything else
/// takes its reads through this.
///
/// Enforced in SQLite, not only in the types: each call runs under `PRAGMA query_only = ON`,
/// set on the one serialized connection before the closure runs and reset after it (also when
/// it fails or panics), so a write slipped in through the connection fails with "attempt to
/// write a readonly database" instead of landing. It works on every kind of store, `plan`'s
/// in-memory copy included.
#[derive(Clone, Debug)]
pub struct StoreReader(StoreHandle);

/// What a [`StoreReader`]'s closure gets: the connection, for the table modules' reads.
pub struct Reading<'a>(&'a Connection);

impl Reading<'_> {
    /// The connection, under `query_only`: reads work, any write fails.
    pub fn conn(&self) -> &Connection {
        self.0
    }
}

/// Puts a connection back as it was when a reader's call ends, however it ends.
struct QueryOnly<'a> {
    conn: &'a Connection,
    before: bool,
}

impl Drop for QueryOnly<'_> {
    fn drop(&mut self) {
        if let Err(e) = self.conn.pragma_update(None, "query_only", self.before) {
            tracing::error!(error = %e, "could not reset query_only after a read of the store");
        }
    }
}

impl StoreReader {
    /// Runs `f` on tokio's blocking pool with the store's connection read-only
    /// (`PRAGMA query_only = ON`), and returns its result. See [`StoreHandle::call`].
    pub async fn call<R: Send + 'static>(
        &self,
        f: impl FnOnce(&Reading<'_>) -> Result<R, StoreError> + Send + 'static,
    ) -> Result<R, StoreError> {
        self.0
            .call(move |s| {
                let conn = s.conn();
                let before: bool = conn.pragma_query_value(None, "query_only", |row| row.get(0))?;
                conn.pragma_update(None, "query_only", true)?;
                let _reset = QueryOnly { conn, before };
                f(&Reading(conn))
            })
            .await
    }
}

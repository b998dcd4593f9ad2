//! What can go wrong with the state database, worded for the person who has to fix it.
//!
//! Every variant that concerns the file names its path and says what to do; none carries a
//! secret (the OAuth row's tokens never enter an error).

use std::path::PathBuf;

use super::identity::Identity;

/// An error from the state store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The file exists but is not an SQLite database at all.
    #[error(
        "{path} is not an SQLite database (it starts with {starts_with}). trengo-sync never \
         modifies a file it does not recognise: point `store.path` at a new file, or move this one away."
    )]
    NotADatabase {
        /// The refused file.
        path: PathBuf,
        /// A printable rendering of its first bytes.
        starts_with: String,
    },

    /// The file is an SQLite database made by another program.
    #[error(
        "{path} is an SQLite database of another program ({what}). trengo-sync never modifies a \
         database it did not make: point `store.path` at a new file, or move this one away."
    )]
    Foreign {
        /// The refused file.
        path: PathBuf,
        /// What gave it away: the foreign `application_id` or the unknown tables.
        what: String,
    },

    /// The database was written by a newer trengo-sync.
    #[error(
        "{path} has schema version {found}, but this trengo-sync understands up to version \
         {supported}: a newer trengo-sync wrote it. Install that newer version again (the file was \
         left untouched), or point `store.path` at a new file."
    )]
    TooNew {
        /// The refused file.
        path: PathBuf,
        /// The schema version found in the file (`PRAGMA user_version`).
        found: i64,
        /// The newest schema version this build knows.
        supported: i64,
    },

    /// SQLite's integrity check found damage.
    #[error(
        "{path} is damaged ({report}). trengo-sync left it untouched: restore it from a backup, \
         or move it away and let trengo-sync start a new one (links are re-adopted from the \
         ticket URLs in GHL tasks)."
    )]
    Damaged {
        /// The refused file.
        path: PathBuf,
        /// What SQLite reported.
        report: String,
    },

    /// A read-only command found no database where the config points.
    #[error(
        "{path} does not exist (or is empty), so there is no sync state to read yet. Check `store.path`, or start \
         the daemon once (`trengo-sync run`) to create it."
    )]
    Missing {
        /// Where the database was expected.
        path: PathBuf,
    },

    /// A read-only command found a database that still needs migrations.
    #[error(
        "{path} has schema version {found}, older than this trengo-sync's {supported}. A read-only \
         command cannot upgrade it: run `trengo-sync check` or start the daemon once to upgrade it."
    )]
    NeedsUpgrade {
        /// The database.
        path: PathBuf,
        /// Its schema version.
        found: i64,
        /// The version this build needs.
        supported: i64,
    },

    /// The database belongs to another Trengo account or GHL location.
    #[error(
        "the state database was made for Trengo account {bound_account} / GHL location \
         {bound_location}, but the config names Trengo account {given_account} / GHL location \
         {given_location}. trengo-sync refuses to mix them: for another account, point \
         `store.path` at another file.",
        bound_account = bound.trengo_account,
        bound_location = bound.ghl_location,
        given_account = given.trengo_account,
        given_location = given.ghl_location
    )]
    IdentityMismatch {
        /// The identity stored in the database.
        bound: Identity,
        /// The identity the caller tried to bind.
        given: Identity,
    },

    /// Another process holds the store's writer lock (a daemon, or a `once`, is running).
    #[error(
        "the state database {path} is in use by another trengo-sync process ({holder_text}, \
         holding {lock}): only one `run` or `once` may write a store at a time. Stop that \
         process first (for the service: `systemctl stop trengo-sync`); `status`, `explain` \
         and `plan` only read, and work while it runs.",
        holder_text = match holder { Some(pid) => format!("pid {pid}"), None => "pid unknown".to_string() }
    )]
    Locked {
        /// The database.
        path: PathBuf,
        /// The lock file.
        lock: PathBuf,
        /// The pid the holder wrote into the lock file, when it could be read.
        holder: Option<u32>,
    },

    /// Reading the file's first bytes failed.
    #[error(
        "cannot read {path}: {source}. Check that `store.path` names a file trengo-sync may read and write."
    )]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's answer.
        #[source]
        source: std::io::Error,
    },

    /// SQLite could not open the file.
    #[error(
        "cannot open the state database {path}: {source}. Check that its directory exists and is writable by trengo-sync."
    )]
    Open {
        /// The file.
        path: PathBuf,
        /// SQLite's answer.
        #[source]
        source: rusqlite::Error,
    },

    /// A schema migration failed (it was rolled back).
    #[error(
        "cannot upgrade the state database {path}: {source}. The upgrade was rolled back; the file still has its old schema."
    )]
    Migrate {
        /// The file.
        path: PathBuf,
        /// What the migration reported.
        #[source]
        source: rusqlite_migration::Error,
    },

    /// A link for this ticket or this task already exists.
    #[error(
        "a link already exists for Trengo ticket {ticket_id} or GHL task {task_id}; each may be linked once"
    )]
    DuplicateLink {
        /// The ticket of the refused link.
        ticket_id: i64,
        /// The task of the refused link.
        task_id: String,
    },

    /// A comment mapping for this message or this note already exists.
    #[error(
        "Trengo message {trengo_message_id} or GHL note {ghl_note_id} is already mapped; each note crosses once"
    )]
    DuplicateComment {
        /// The Trengo message of the refused mapping.
        trengo_message_id: i64,
        /// The GHL note of the refused mapping.
        ghl_note_id: String,
    },

    /// An intent with this idempotency key was already journalled.
    #[error(
        "an intent with key {key:?} already exists; settle it (look for the key remotely) before creating again"
    )]
    DuplicateIntent { key: String },

    /// No intent has this key.
    #[error("no intent with key {key:?} is journalled")]
    UnknownIntent { key: String },

    /// The intent was already settled; it cannot be settled twice.
    #[error("the intent with key {key:?} is already {state}; it cannot be settled again")]
    IntentSettled {
        key: String,
        /// Its current state.
        state: String,
    },

    /// A write was attempted through a store opened read-only.
    #[error(
        "the state database {path} was opened read-only (for `plan`/`status`); this command writes nothing"
    )]
    ReadOnly {
        /// The file.
        path: PathBuf,
    },

    /// A store call panicked on its blocking thread.
    #[error(
        "a state database call panicked: {0}. This is a bug in trengo-sync; please report it with the log."
    )]
    Panicked(String),

    /// Any other SQLite failure while reading or writing a table.
    #[error("the state database failed: {0}")]
    Sqlite(#[from] rusqlite::Error),
}

/// Whether an SQLite error is a constraint violation (a UNIQUE or CHECK refusal).
pub(crate) fn is_constraint(err: &rusqlite::Error) -> bool {
    err.sqlite_error_code() == Some(rusqlite::ErrorCode::ConstraintViolation)
}

//! The schema, as an ordered list of migrations, and the marks that say a file is ours.
//!
//! rusqlite_migration keeps the applied version in `PRAGMA user_version`; `PRAGMA
//! application_id` marks the file as a trengo-sync database so that a foreign SQLite file is
//! never mistaken for ours. Migrations are append-only: never edit one that has shipped.

use rusqlite_migration::{M, Migrations};

/// `PRAGMA application_id` of every trengo-sync database: "tSyn" in ASCII.
pub const APPLICATION_ID: i32 = 0x7453_796e;

/// Every table our migrations create; a file with only these tables (and no application id
/// yet) is still ours.
pub(crate) const OUR_TABLES: &[&str] = &[
    "identity",
    "links",
    "bases",
    "contact_bases",
    "comments",
    "cursors",
    "intents",
    "ledger",
    "conflicts",
    "retries",
    "oauth",
    "job_runs",
    "api_facts",
];

/// Tables later migrations create (not part of the "still ours" test: files that old carry the
/// application id already).
#[cfg(test)]
const LATER_TABLES: &[&str] = &["pauses", "contact_pairs", "pair_bases"];

const MIGRATION_1: &str = r#"
CREATE TABLE identity (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    trengo_account TEXT NOT NULL,
    ghl_location TEXT NOT NULL,
    bound_at TEXT NOT NULL
);

CREATE TABLE links (
    id INTEGER PRIMARY KEY,
    ticket_id INTEGER NOT NULL UNIQUE,
    task_id TEXT NOT NULL UNIQUE,
    ghl_contact_id TEXT NOT NULL,
    trengo_contact_id INTEGER,
    origin TEXT NOT NULL CHECK (origin IN ('trengo', 'ghl', 'adopted')),
    state TEXT NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'out_of_scope')),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX links_by_contact ON links (ghl_contact_id);

CREATE TABLE bases (
    link_id INTEGER NOT NULL REFERENCES links (id),
    field TEXT NOT NULL,
    value TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (link_id, field)
);

CREATE TABLE contact_bases (
    ghl_contact_id TEXT NOT NULL,
    field TEXT NOT NULL,
    value TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (ghl_contact_id, field)
);

CREATE TABLE comments (
    id INTEGER PRIMARY KEY,
    link_id INTEGER NOT NULL REFERENCES links (id),
    trengo_message_id INTEGER NOT NULL UNIQUE,
    ghl_note_id TEXT NOT NULL UNIQUE,
    origin TEXT NOT NULL CHECK (origin IN ('trengo', 'ghl')),
    created_at TEXT NOT NULL
);
CREATE INDEX comments_by_link ON comments (link_id);

CREATE TABLE cursors (
    stream TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE TABLE intents (
    id INTEGER PRIMARY KEY,
    key TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    link_id INTEGER REFERENCES links (id),
    payload TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('open', 'done', 'abandoned')),
    result TEXT,
    created_at TEXT NOT NULL,
    settled_at TEXT
);
CREATE INDEX intents_by_state ON intents (state);

CREATE TABLE ledger (
    id INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    link_id INTEGER,
    kind TEXT NOT NULL CHECK (kind IN ('applied', 'conflict_settled', 'conflict_held',
                                       'conflict_resolved', 'brake', 'unlinked')),
    field TEXT,
    side TEXT,
    op TEXT,
    old_value TEXT,
    new_value TEXT,
    losing_value TEXT,
    detail TEXT
);
CREATE INDEX ledger_by_link ON ledger (link_id, id);

CREATE TABLE conflicts (
    link_id INTEGER NOT NULL REFERENCES links (id),
    field TEXT NOT NULL,
    base TEXT,
    trengo_value TEXT NOT NULL,
    ghl_value TEXT NOT NULL,
    detected_at TEXT NOT NULL,
    PRIMARY KEY (link_id, field)
);

CREATE TABLE retries (
    item TEXT PRIMARY KEY,
    attempts INTEGER NOT NULL,
    first_failed_at TEXT NOT NULL,
    next_at TEXT NOT NULL,
    reason TEXT NOT NULL
);

CREATE TABLE oauth (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    refresh_token TEXT NOT NULL,
    access_token TEXT,
    access_expires_at TEXT,
    updated_at TEXT NOT NULL
);

CREATE TABLE job_runs (
    job TEXT PRIMARY KEY,
    last_started_at TEXT,
    last_finished_at TEXT,
    last_success_at TEXT,
    last_outcome TEXT,
    last_duration_ms INTEGER,
    last_counts TEXT,
    skipped INTEGER NOT NULL DEFAULT 0
);
"#;

/// Links whose ticket or task is gone (deleted, merged away, no longer visible to the token):
/// ended like a link that left scope, with why, and never read again.
const MIGRATION_2: &str = r#"
ALTER TABLE links ADD COLUMN gone TEXT;
"#;

/// Issue #13 item 2: an item that cannot succeed (gone, invalid, or past the attempt cap) is
/// parked: kept with its reason, shown as stuck, never retried on its own again.
const MIGRATION_3: &str = r#"
ALTER TABLE retries ADD COLUMN parked_at TEXT;
CREATE INDEX retries_due ON retries (next_at) WHERE parked_at IS NULL;
"#;

/// What `doctor` learned about the real accounts (see `store::facts`).
const MIGRATION_4: &str = r#"
CREATE TABLE api_facts (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    detail TEXT NOT NULL,
    learned_at TEXT NOT NULL
);
"#;

/// What an operator switched off (`trengo-sync pause`, `unlink`): pauses of the whole daemon
/// (link_id 0) or of one link, and why a link was ended by hand.
const MIGRATION_5: &str = r#"
CREATE TABLE pauses (
    link_id INTEGER PRIMARY KEY,
    direction TEXT NOT NULL CHECK (direction IN ('trengo_to_ghl', 'ghl_to_trengo', 'both')),
    since TEXT NOT NULL
);
ALTER TABLE links ADD COLUMN unlinked TEXT;
"#;

/// Issue #15: contact pairs (Trengo contact ⇄ GHL contact) with their own bases, and the
/// ledger naming the pair an entry is about.
const MIGRATION_6: &str = r#"
CREATE TABLE contact_pairs (
    id INTEGER PRIMARY KEY,
    ghl_contact_id TEXT NOT NULL,
    trengo_contact_id INTEGER NOT NULL,
    origin TEXT NOT NULL CHECK (origin IN ('link', 'tag')),
    welcome_ticket_id INTEGER,
    swept_at TEXT,
    created_at TEXT NOT NULL,
    UNIQUE (ghl_contact_id, trengo_contact_id)
);
CREATE INDEX contact_pairs_by_trengo ON contact_pairs (trengo_contact_id);

CREATE TABLE pair_bases (
    pair_id INTEGER NOT NULL REFERENCES contact_pairs (id),
    field TEXT NOT NULL,
    value TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (pair_id, field)
);

ALTER TABLE ledger ADD COLUMN pair_id INTEGER;
"#;

const MIGRATIONS: &[M<'static>] = &[
    M::up(MIGRATION_1),
    M::up(MIGRATION_2),
    M::up(MIGRATION_3),
    M::up(MIGRATION_4),
    M::up(MIGRATION_5),
    M::up(MIGRATION_6),
];

/// The newest schema version this build knows (the number of migrations).
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// The migrations, in order.
pub(crate) fn migrations() -> Migrations<'static> {
    Migrations::from_slice(MIGRATIONS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_valid() {
        migrations().validate().unwrap();
    }

    #[test]
    fn migration_creates_exactly_our_tables() {
        let mut conn = rusqlite::Connection::open_in_memory().unwrap();
        migrations().to_latest(&mut conn).unwrap();
        let mut stmt = conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
            .unwrap();
        let mut tables: Vec<String> = stmt
            .query_map([], |row| row.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let mut ours: Vec<String> = OUR_TABLES
            .iter()
            .chain(LATER_TABLES)
            .map(|t| t.to_string())
            .collect();
        tables.sort();
        ours.sort();
        assert_eq!(tables, ours);
    }
}

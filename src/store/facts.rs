//! Facts learned about the real accounts, where the references are unsure (issue #14):
//! whether a label or an internal note moves a ticket's `updated_at`, and the UTC offset the
//! Trengo account renders naive timestamps in. `trengo-sync doctor --probe-writes` learns them
//! on a ticket the user names; the engine may read them to skip sweeps it does not need
//! ([`learned_bumps`]), and `run` compares the learned offset with `trengo.timezone`.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};

use super::StoreError;
use super::codec::Stamp;

/// Whether attaching or detaching a label moves the ticket's `updated_at` ("true"/"false").
pub const LABEL_BUMPS_UPDATED_AT: &str = "trengo.label_bumps_updated_at";
/// Whether adding an internal note moves the ticket's `updated_at` ("true"/"false").
pub const NOTE_BUMPS_UPDATED_AT: &str = "trengo.note_bumps_updated_at";
/// The UTC offset, in seconds, of the account's naive timestamps when it was measured.
pub const TRENGO_UTC_OFFSET_SECS: &str = "trengo.utc_offset_secs";

/// One learned fact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fact {
    /// What it is about (one of the constants above).
    pub key: String,
    /// The value, as text.
    pub value: String,
    /// How it was learned (which ticket, which call), for people.
    pub detail: String,
    /// When.
    pub learned_at: DateTime<Utc>,
}

/// Records (or replaces) one fact.
pub fn put(
    conn: &Connection,
    key: &str,
    value: &str,
    detail: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO api_facts (key, value, detail, learned_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value, detail = excluded.detail,
         learned_at = excluded.learned_at",
    )?
    .execute(params![key, value, detail, Stamp(now)])?;
    Ok(())
}

/// One fact, if learned.
pub fn get(conn: &Connection, key: &str) -> Result<Option<Fact>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT key, value, detail, learned_at FROM api_facts WHERE key = ?1")?
        .query_row([key], read)
        .optional()?)
}

/// Every fact, by key.
pub fn all(conn: &Connection) -> Result<Vec<Fact>, StoreError> {
    let mut stmt =
        conn.prepare_cached("SELECT key, value, detail, learned_at FROM api_facts ORDER BY key")?;
    let facts = stmt.query_map([], read)?.collect::<Result<_, _>>()?;
    Ok(facts)
}

fn read(row: &rusqlite::Row<'_>) -> rusqlite::Result<Fact> {
    Ok(Fact {
        key: row.get(0)?,
        value: row.get(1)?,
        detail: row.get(2)?,
        learned_at: row.get::<_, Stamp>(3)?.0,
    })
}

/// Which Trengo edits are known to move a ticket's `updated_at` (so that the `updated_at_gt`
/// poll sees them and a sweep for them is not needed). `None`: not learned, assume not.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LearnedBumps {
    /// Label attach/detach.
    pub label: Option<bool>,
    /// A new internal note.
    pub note: Option<bool>,
}

/// What `doctor --probe-writes` learned about `updated_at`, for the engine's sweep planning.
pub fn learned_bumps(conn: &Connection) -> Result<LearnedBumps, StoreError> {
    let flag = |key: &str| -> Result<Option<bool>, StoreError> {
        Ok(get(conn, key)?.and_then(|f| f.value.parse::<bool>().ok()))
    };
    Ok(LearnedBumps {
        label: flag(LABEL_BUMPS_UPDATED_AT)?,
        note: flag(NOTE_BUMPS_UPDATED_AT)?,
    })
}

/// The learned UTC offset of the Trengo account, in seconds, with when it was learned.
pub fn learned_trengo_offset(
    conn: &Connection,
) -> Result<Option<(i32, DateTime<Utc>)>, StoreError> {
    Ok(get(conn, TRENGO_UTC_OFFSET_SECS)?
        .and_then(|f| f.value.parse::<i32>().ok().map(|v| (v, f.learned_at))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    #[test]
    fn facts_are_replaced_and_read_back_as_learned_bumps() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("s.sqlite")).unwrap();
        let conn = store.conn();
        assert_eq!(learned_bumps(conn).unwrap(), LearnedBumps::default());
        let now = Utc::now();
        put(conn, LABEL_BUMPS_UPDATED_AT, "false", "ticket 1", now).unwrap();
        put(conn, LABEL_BUMPS_UPDATED_AT, "true", "ticket 2", now).unwrap();
        put(conn, NOTE_BUMPS_UPDATED_AT, "false", "ticket 2", now).unwrap();
        put(conn, TRENGO_UTC_OFFSET_SECS, "-18000", "note 5", now).unwrap();
        let bumps = learned_bumps(conn).unwrap();
        assert_eq!(bumps.label, Some(true));
        assert_eq!(bumps.note, Some(false));
        assert_eq!(learned_trengo_offset(conn).unwrap().unwrap().0, -18_000);
        assert_eq!(all(conn).unwrap().len(), 3);
    }
}

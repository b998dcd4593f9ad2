//! Cursors: where each change stream stands.
//!
//! A cursor is an opaque string owned by its stream (a Trengo `updated_at_gt` watermark, a GHL
//! `dateUpdated` watermark, the position of a running sweep). It advances only past committed
//! work, so callers write it in the same transaction as that work (sync-model.md §4 rule 5).

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};

use super::StoreError;
use super::codec::Stamp;

/// One stored cursor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    /// The stream's name (e.g. `trengo.tickets`, `ghl.contacts`, `sweep.tickets`).
    pub stream: String,
    /// Its position, in the stream's own format.
    pub value: String,
    /// When it last moved.
    pub updated_at: DateTime<Utc>,
}

/// The position of one stream, if it has one yet.
pub fn get(conn: &Connection, stream: &str) -> Result<Option<String>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT value FROM cursors WHERE stream = ?1")?
        .query_row([stream], |row| row.get(0))
        .optional()?)
}

/// Moves one stream's cursor.
pub fn put(
    conn: &Connection,
    stream: &str,
    value: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO cursors (stream, value, updated_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (stream) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
    )?
    .execute(params![stream, value, Stamp(now)])?;
    Ok(())
}

/// Every cursor, by stream name (for `status`).
pub fn all(conn: &Connection) -> Result<Vec<Cursor>, StoreError> {
    let mut stmt =
        conn.prepare_cached("SELECT stream, value, updated_at FROM cursors ORDER BY stream")?;
    let cursors = stmt
        .query_map([], |row| {
            Ok(Cursor {
                stream: row.get(0)?,
                value: row.get(1)?,
                updated_at: row.get::<_, Stamp>(2)?.0,
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(cursors)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;
    use crate::store::links::tests::at;

    #[test]
    fn a_cursor_moves_and_others_stay() {
        let store = Store::open_in_memory().unwrap();
        let conn = store.conn();
        assert_eq!(get(conn, "trengo.tickets").unwrap(), None);
        put(
            conn,
            "trengo.tickets",
            "2026-01-01 10:00:00",
            at("2026-01-01T10:00:05Z"),
        )
        .unwrap();
        put(
            conn,
            "ghl.contacts",
            "1767261600000",
            at("2026-01-01T10:00:05Z"),
        )
        .unwrap();
        put(
            conn,
            "trengo.tickets",
            "2026-01-01 10:05:00",
            at("2026-01-01T10:05:05Z"),
        )
        .unwrap();
        assert_eq!(
            get(conn, "trengo.tickets").unwrap().as_deref(),
            Some("2026-01-01 10:05:00")
        );
        let streams: Vec<String> = all(conn).unwrap().into_iter().map(|c| c.stream).collect();
        assert_eq!(streams, ["ghl.contacts", "trengo.tickets"]);
    }
}

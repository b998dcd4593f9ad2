//! Contact pairs: one Trengo contact paired with one GHL contact, and the bases of the fields
//! the `[contacts]` map syncs between them (sync-model.md §5).
//!
//! A pair is made when a link's ticket contact and task contact are first seen together, or
//! when a GHL contact carries `contacts.tag`. Like links, pairs are never deleted; their bases
//! are the last synced value of each mapped field, keyed by the map entry's name, as JSON.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, Row, params};
use serde_json::Value;

use super::StoreError;
use super::codec::{Json, Stamp};

/// How a pair came to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PairOrigin {
    /// A link's ticket contact and task contact.
    Link,
    /// A GHL contact carrying `contacts.tag`.
    Tag,
}

impl PairOrigin {
    fn as_str(self) -> &'static str {
        match self {
            PairOrigin::Link => "link",
            PairOrigin::Tag => "tag",
        }
    }
}

/// A stored contact pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pair {
    /// Row id (what the ledger's `pair_id` names).
    pub id: i64,
    /// The GHL contact.
    pub ghl_contact_id: String,
    /// The Trengo contact.
    pub trengo_contact_id: i64,
    /// How it was made.
    pub origin: PairOrigin,
    /// The welcome ticket opened for it, once opened.
    pub welcome_ticket_id: Option<i64>,
    /// When the Trengo-side sweep last read it.
    pub swept_at: Option<DateTime<Utc>>,
    /// When it was made.
    pub created_at: DateTime<Utc>,
}

const COLUMNS: &str =
    "id, ghl_contact_id, trengo_contact_id, origin, welcome_ticket_id, swept_at, created_at";

fn from_row(row: &Row<'_>) -> rusqlite::Result<Pair> {
    let origin: String = row.get(3)?;
    Ok(Pair {
        id: row.get(0)?,
        ghl_contact_id: row.get(1)?,
        trengo_contact_id: row.get(2)?,
        origin: if origin == "tag" {
            PairOrigin::Tag
        } else {
            PairOrigin::Link
        },
        welcome_ticket_id: row.get(4)?,
        swept_at: row.get::<_, Option<Stamp>>(5)?.map(|s| s.0),
        created_at: row.get::<_, Stamp>(6)?.0,
    })
}

/// The pair of these two contacts, made now if there is none yet.
pub fn ensure(
    conn: &Connection,
    ghl_contact_id: &str,
    trengo_contact_id: i64,
    origin: PairOrigin,
    now: DateTime<Utc>,
) -> Result<Pair, StoreError> {
    conn.prepare_cached(
        "INSERT INTO contact_pairs (ghl_contact_id, trengo_contact_id, origin, created_at)
         VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (ghl_contact_id, trengo_contact_id) DO NOTHING",
    )?
    .execute(params![
        ghl_contact_id,
        trengo_contact_id,
        origin.as_str(),
        Stamp(now)
    ])?;
    // The row exists now (just made, or made before): a miss is SQLite's own failure.
    find(conn, ghl_contact_id, trengo_contact_id)?
        .ok_or(StoreError::Sqlite(rusqlite::Error::QueryReturnedNoRows))
}

/// The pair of these two contacts, if any.
pub fn find(
    conn: &Connection,
    ghl_contact_id: &str,
    trengo_contact_id: i64,
) -> Result<Option<Pair>, StoreError> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM contact_pairs WHERE ghl_contact_id = ?1 AND trengo_contact_id = ?2"
        ))?
        .query_row(params![ghl_contact_id, trengo_contact_id], from_row)
        .optional()?)
}

/// A pair by id.
pub fn get(conn: &Connection, id: i64) -> Result<Option<Pair>, StoreError> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM contact_pairs WHERE id = ?1"
        ))?
        .query_row(params![id], from_row)
        .optional()?)
}

/// Every pair of a GHL contact.
pub fn of_ghl(conn: &Connection, ghl_contact_id: &str) -> Result<Vec<Pair>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM contact_pairs WHERE ghl_contact_id = ?1 ORDER BY id"
    ))?;
    Ok(stmt
        .query_map(params![ghl_contact_id], from_row)?
        .collect::<Result<_, _>>()?)
}

/// Every pair of a Trengo contact.
pub fn of_trengo(conn: &Connection, trengo_contact_id: i64) -> Result<Vec<Pair>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM contact_pairs WHERE trengo_contact_id = ?1 ORDER BY id"
    ))?;
    Ok(stmt
        .query_map(params![trengo_contact_id], from_row)?
        .collect::<Result<_, _>>()?)
}

/// The `limit` pairs the Trengo-side sweep read longest ago (never-read ones first).
pub fn stalest(conn: &Connection, limit: usize) -> Result<Vec<Pair>, StoreError> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM contact_pairs
         ORDER BY swept_at IS NOT NULL, swept_at, id LIMIT ?1"
    ))?;
    Ok(stmt
        .query_map(params![limit], from_row)?
        .collect::<Result<_, _>>()?)
}

/// How many pairs there are.
pub fn count(conn: &Connection) -> Result<u64, StoreError> {
    let n: i64 = conn.query_row("SELECT COUNT(*) FROM contact_pairs", [], |r| r.get(0))?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// Records that the sweep read the pair at `at`.
pub fn swept(conn: &Connection, id: i64, at: DateTime<Utc>) -> Result<(), StoreError> {
    conn.prepare_cached("UPDATE contact_pairs SET swept_at = ?2 WHERE id = ?1")?
        .execute(params![id, Stamp(at)])?;
    Ok(())
}

/// Records the welcome ticket opened for the pair.
pub fn set_welcome(conn: &Connection, id: i64, ticket: i64) -> Result<(), StoreError> {
    conn.prepare_cached("UPDATE contact_pairs SET welcome_ticket_id = ?2 WHERE id = ?1")?
        .execute(params![id, ticket])?;
    Ok(())
}

/// Every base of a pair: map entry name → last synced value.
pub fn bases(
    conn: &Connection,
    pair: i64,
) -> Result<std::collections::BTreeMap<String, Value>, StoreError> {
    let mut stmt = conn.prepare_cached("SELECT field, value FROM pair_bases WHERE pair_id = ?1")?;
    let rows = stmt.query_map(params![pair], |row| {
        Ok((row.get::<_, String>(0)?, row.get::<_, Json>(1)?.0))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Sets the base of one field of a pair.
pub fn put_base(
    conn: &Connection,
    pair: i64,
    field: &str,
    value: &Value,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO pair_bases (pair_id, field, value, updated_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (pair_id, field) DO UPDATE SET value = excluded.value,
                                                  updated_at = excluded.updated_at",
    )?
    .execute(params![pair, field, Json(value.clone()), Stamp(now)])?;
    Ok(())
}

/// The GHL contacts of active links made at or after `since` (a pass's new links).
pub fn contacts_linked_since(
    conn: &Connection,
    since: DateTime<Utc>,
) -> Result<BTreeSet<String>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT DISTINCT ghl_contact_id FROM links WHERE created_at >= ?1 AND state = 'active'",
    )?;
    let rows = stmt.query_map([Stamp(since)], |r| r.get::<_, String>(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The GHL contacts of active links without a pair for their ticket's contact, at most `limit`.
pub fn contacts_unpaired(conn: &Connection, limit: usize) -> Result<BTreeSet<String>, StoreError> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut stmt = conn.prepare_cached(
        "SELECT DISTINCT l.ghl_contact_id FROM links l
         WHERE l.state = 'active' AND l.gone IS NULL
           AND NOT EXISTS (SELECT 1 FROM contact_pairs p
                           WHERE p.ghl_contact_id = l.ghl_contact_id
                             AND (l.trengo_contact_id IS NULL
                                  OR p.trengo_contact_id = l.trengo_contact_id))
         LIMIT ?1",
    )?;
    let rows = stmt.query_map([limit], |r| r.get::<_, String>(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;
    use crate::store::links::tests::at;
    use serde_json::json;

    #[test]
    fn a_pair_is_made_once_and_keeps_its_bases() {
        let store = Store::open_in_memory().unwrap();
        let conn = store.conn();
        let t0 = at("2026-01-01T00:00:00Z");
        let a = ensure(conn, "g1", 7, PairOrigin::Link, t0).unwrap();
        let b = ensure(conn, "g1", 7, PairOrigin::Tag, t0).unwrap();
        assert_eq!(a, b, "the second ensure finds the first pair");
        assert_eq!(of_ghl(conn, "g1").unwrap(), vec![a.clone()]);
        assert_eq!(of_trengo(conn, 7).unwrap(), vec![a.clone()]);
        put_base(conn, a.id, "tier", &json!({"text": "Pro"}), t0).unwrap();
        put_base(conn, a.id, "tier", &json!({"text": "Basic"}), t0).unwrap();
        assert_eq!(bases(conn, a.id).unwrap()["tier"], json!({"text": "Basic"}));
    }

    #[test]
    fn the_sweep_reads_never_read_pairs_first_then_the_stalest() {
        let store = Store::open_in_memory().unwrap();
        let conn = store.conn();
        let t0 = at("2026-01-01T00:00:00Z");
        let a = ensure(conn, "g1", 1, PairOrigin::Link, t0).unwrap();
        let b = ensure(conn, "g2", 2, PairOrigin::Link, t0).unwrap();
        let c = ensure(conn, "g3", 3, PairOrigin::Tag, t0).unwrap();
        swept(conn, a.id, at("2026-01-02T00:00:00Z")).unwrap();
        swept(conn, b.id, at("2026-01-01T12:00:00Z")).unwrap();
        let order: Vec<i64> = stalest(conn, 3).unwrap().iter().map(|p| p.id).collect();
        assert_eq!(order, vec![c.id, b.id, a.id]);
        assert_eq!(count(conn).unwrap(), 3);
    }
}

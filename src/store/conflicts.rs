//! Held conflicts: both sides changed a field differently and the policy is `manual`.
//!
//! A held conflict stops that field of that link from syncing until a person settles it with
//! the CLI (sync-model.md §4 rule 1); `status` lists them. Settling deletes the row; the
//! decision itself goes to the ledger.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, Row, params};
use serde_json::Value;

use super::StoreError;
use super::codec::{Json, Stamp};
use super::links::LinkId;

/// One held conflict.
#[derive(Debug, Clone, PartialEq)]
pub struct Held {
    pub link_id: LinkId,
    pub field: String,
    /// The last synced value, if the field had one.
    pub base: Option<Value>,
    /// Trengo's value when the conflict was seen.
    pub trengo_value: Value,
    /// GHL's value when the conflict was seen.
    pub ghl_value: Value,
    /// When it was first seen.
    pub detected_at: DateTime<Utc>,
}

const COLUMNS: &str = "link_id, field, base, trengo_value, ghl_value, detected_at";

fn from_row(row: &Row<'_>) -> rusqlite::Result<Held> {
    Ok(Held {
        link_id: row.get(0)?,
        field: row.get(1)?,
        base: row.get::<_, Option<Json>>(2)?.map(|j| j.0),
        trengo_value: row.get::<_, Json>(3)?.0,
        ghl_value: row.get::<_, Json>(4)?.0,
        detected_at: row.get::<_, Stamp>(5)?.0,
    })
}

/// Holds a conflict. Seen again, it keeps its first detection time and takes the new values,
/// so the person settling it sees what each side says now.
pub fn hold(conn: &Connection, held: &Held) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO conflicts (link_id, field, base, trengo_value, ghl_value, detected_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (link_id, field) DO UPDATE SET base = excluded.base,
             trengo_value = excluded.trengo_value, ghl_value = excluded.ghl_value",
    )?
    .execute(params![
        held.link_id,
        held.field,
        held.base.clone().map(Json),
        Json(held.trengo_value.clone()),
        Json(held.ghl_value.clone()),
        Stamp(held.detected_at),
    ])?;
    Ok(())
}

/// Every held conflict, oldest first.
pub fn list(conn: &Connection) -> Result<Vec<Held>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM conflicts ORDER BY detected_at, link_id, field");
    let mut stmt = conn.prepare_cached(&sql)?;
    let held = stmt.query_map([], from_row)?.collect::<Result<_, _>>()?;
    Ok(held)
}

/// The held conflict of one field of one link.
pub fn get(conn: &Connection, link: LinkId, field: &str) -> Result<Option<Held>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM conflicts WHERE link_id = ?1 AND field = ?2");
    Ok(conn
        .query_row(&sql, params![link, field], from_row)
        .optional()?)
}

/// Releases a held conflict; returns it, or `None` if nothing was held there.
pub fn settle(conn: &Connection, link: LinkId, field: &str) -> Result<Option<Held>, StoreError> {
    let held = get(conn, link, field)?;
    if held.is_some() {
        conn.execute(
            "DELETE FROM conflicts WHERE link_id = ?1 AND field = ?2",
            params![link, field],
        )?;
    }
    Ok(held)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;
    use crate::store::links;
    use crate::store::links::tests::{at, new_link};
    use serde_json::json;

    #[test]
    fn a_held_conflict_stays_until_settled() {
        let store = Store::open_in_memory().unwrap();
        let conn = store.conn();
        let t0 = at("2026-01-01T00:00:00Z");
        let link = links::insert(conn, &new_link(1, "t1", "c1"), t0).unwrap();
        let held = Held {
            link_id: link.id,
            field: "assignee".into(),
            base: Some(json!("a@x")),
            trengo_value: json!("b@x"),
            ghl_value: json!("c@x"),
            detected_at: t0,
        };
        hold(conn, &held).unwrap();
        let seen_again = Held {
            ghl_value: json!("d@x"),
            detected_at: at("2026-01-02T00:00:00Z"),
            ..held.clone()
        };
        hold(conn, &seen_again).unwrap();
        let now_held = get(conn, link.id, "assignee").unwrap().unwrap();
        assert_eq!(now_held.ghl_value, json!("d@x"));
        assert_eq!(now_held.detected_at, t0);
        assert_eq!(list(conn).unwrap().len(), 1);

        assert_eq!(settle(conn, link.id, "assignee").unwrap(), Some(now_held));
        assert!(list(conn).unwrap().is_empty());
        assert_eq!(settle(conn, link.id, "assignee").unwrap(), None);
    }
}

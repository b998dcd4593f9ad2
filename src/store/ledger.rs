//! The ledger: an append-only record of what the engine did and decided.
//!
//! Every applied change, settled or held conflict (with the losing value, sync-model.md §4
//! rule 1), brake and unlink is written here, so `status` and a person can answer "why does
//! this ticket say that?". Entries are never updated or deleted.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, Row, params};
use serde_json::Value;

use super::StoreError;
use super::codec::{Json, Stamp, text_enum};
use super::links::LinkId;

/// What an entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// A change was written to one side.
    Applied,
    /// A conflict was settled by policy; the losing value is kept.
    ConflictSettled,
    /// A conflict was held for a person (`manual` policy).
    ConflictHeld,
    /// A held conflict was resolved by a person.
    ConflictResolved,
    /// A pass stopped because it would have ended or closed too many links.
    Brake,
    /// A link left scope.
    Unlinked,
}

text_enum!(EntryKind {
    Applied => "applied",
    ConflictSettled => "conflict_settled",
    ConflictHeld => "conflict_held",
    ConflictResolved => "conflict_resolved",
    Brake => "brake",
    Unlinked => "unlinked",
});

/// One ledger entry. Build it with [`Entry::new`] and the setters, then [`record`] it.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// When it happened.
    pub at: DateTime<Utc>,
    /// What it records.
    pub kind: EntryKind,
    /// The link concerned, if one.
    pub link_id: Option<LinkId>,
    /// The contact pair concerned, if one (its id in `contact_pairs`).
    pub pair_id: Option<i64>,
    /// The field concerned (`status`, `tags`, ...).
    pub field: Option<String>,
    /// The side written or winning (`trengo`, `ghl`).
    pub side: Option<String>,
    /// The operation (e.g. `close_ticket`, `add_tag`).
    pub op: Option<String>,
    /// The value before.
    pub old_value: Option<Value>,
    /// The value after.
    pub new_value: Option<Value>,
    /// The value that lost a conflict.
    pub losing_value: Option<Value>,
    /// Free text for a person.
    pub detail: Option<String>,
}

impl Entry {
    /// An entry of `kind` at `at`, with every other column empty.
    pub fn new(kind: EntryKind, at: DateTime<Utc>) -> Self {
        Self {
            at,
            kind,
            link_id: None,
            pair_id: None,
            field: None,
            side: None,
            op: None,
            old_value: None,
            new_value: None,
            losing_value: None,
            detail: None,
        }
    }

    /// Sets the link.
    pub fn link(mut self, link: LinkId) -> Self {
        self.link_id = Some(link);
        self
    }

    /// Sets the contact pair.
    pub fn pair(mut self, pair: i64) -> Self {
        self.pair_id = Some(pair);
        self
    }

    /// Sets the field.
    pub fn field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// Sets the side.
    pub fn side(mut self, side: impl Into<String>) -> Self {
        self.side = Some(side.into());
        self
    }

    /// Sets the operation.
    pub fn op(mut self, op: impl Into<String>) -> Self {
        self.op = Some(op.into());
        self
    }

    /// Sets the values before and after.
    pub fn change(mut self, old: Value, new: Value) -> Self {
        self.old_value = Some(old);
        self.new_value = Some(new);
        self
    }

    /// Sets the losing value of a conflict.
    pub fn losing(mut self, value: Value) -> Self {
        self.losing_value = Some(value);
        self
    }

    /// Sets the free text.
    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }
}

/// Appends an entry; returns its row id.
pub fn record(conn: &Connection, entry: &Entry) -> Result<i64, StoreError> {
    conn.prepare_cached(
        "INSERT INTO ledger (at, link_id, kind, field, side, op, old_value, new_value,
                             losing_value, detail, pair_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?
    .execute(params![
        Stamp(entry.at),
        entry.link_id,
        entry.kind,
        entry.field,
        entry.side,
        entry.op,
        entry.old_value.clone().map(Json),
        entry.new_value.clone().map(Json),
        entry.losing_value.clone().map(Json),
        entry.detail,
        entry.pair_id,
    ])?;
    Ok(conn.last_insert_rowid())
}

fn from_row(row: &Row<'_>) -> rusqlite::Result<Entry> {
    let json = |i: usize| -> rusqlite::Result<Option<Value>> {
        Ok(row.get::<_, Option<Json>>(i)?.map(|j| j.0))
    };
    Ok(Entry {
        at: row.get::<_, Stamp>(0)?.0,
        link_id: row.get(1)?,
        kind: row.get(2)?,
        field: row.get(3)?,
        side: row.get(4)?,
        op: row.get(5)?,
        old_value: json(6)?,
        new_value: json(7)?,
        losing_value: json(8)?,
        detail: row.get(9)?,
        pair_id: row.get(10)?,
    })
}

/// The newest `limit` entries, newest first; of one link, or of all when `link` is `None`.
pub fn recent(
    conn: &Connection,
    link: Option<LinkId>,
    limit: usize,
) -> Result<Vec<Entry>, StoreError> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut stmt = conn.prepare_cached(
        "SELECT at, link_id, kind, field, side, op, old_value, new_value, losing_value, detail,
                pair_id
         FROM ledger WHERE (?1 IS NULL OR link_id = ?1) ORDER BY id DESC LIMIT ?2",
    )?;
    let entries = stmt
        .query_map(params![link, limit], from_row)?
        .collect::<Result<_, _>>()?;
    Ok(entries)
}

/// The newest `limit` entries of one contact pair, newest first.
pub fn recent_of_pair(
    conn: &Connection,
    pair: i64,
    limit: usize,
) -> Result<Vec<Entry>, StoreError> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut stmt = conn.prepare_cached(
        "SELECT at, link_id, kind, field, side, op, old_value, new_value, losing_value, detail,
                pair_id
         FROM ledger WHERE pair_id = ?1 ORDER BY id DESC LIMIT ?2",
    )?;
    let entries = stmt
        .query_map(params![pair, limit], from_row)?
        .collect::<Result<_, _>>()?;
    Ok(entries)
}

/// Entries oldest first, narrowed to one link, to those at or after `since`, and to one field,
/// each when given (`trengo-sync history`).
pub fn matching(
    conn: &Connection,
    link: Option<LinkId>,
    since: Option<DateTime<Utc>>,
    field: Option<&str>,
) -> Result<Vec<Entry>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT at, link_id, kind, field, side, op, old_value, new_value, losing_value, detail,
                pair_id
         FROM ledger
         WHERE (?1 IS NULL OR link_id = ?1) AND (?2 IS NULL OR at >= ?2)
           AND (?3 IS NULL OR field = ?3)
         ORDER BY id",
    )?;
    let entries = stmt
        .query_map(params![link, since.map(Stamp), field], from_row)?
        .collect::<Result<_, _>>()?;
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;
    use crate::store::links::tests::at;
    use serde_json::json;

    #[test]
    fn recent_lists_one_links_entries_newest_first() {
        let store = Store::open_in_memory().unwrap();
        let conn = store.conn();
        let t0 = at("2026-01-01T00:00:00Z");
        let first = Entry::new(EntryKind::Applied, t0)
            .link(LinkId(1))
            .field("status")
            .side("ghl")
            .op("complete_task")
            .change(json!(false), json!(true));
        let settled = Entry::new(EntryKind::ConflictSettled, t0)
            .link(LinkId(1))
            .field("status")
            .side("trengo")
            .losing(json!("CLOSED"))
            .detail("newest wins");
        let other = Entry::new(EntryKind::Brake, t0).detail("would close 80% of links");
        record(conn, &first).unwrap();
        record(conn, &other).unwrap();
        record(conn, &settled).unwrap();
        assert_eq!(
            recent(conn, Some(LinkId(1)), 10).unwrap(),
            vec![settled.clone(), first.clone()]
        );
        assert_eq!(recent(conn, None, 2).unwrap(), vec![settled.clone(), other]);
        assert_eq!(
            matching(conn, Some(LinkId(1)), None, Some("status")).unwrap(),
            vec![first.clone(), settled.clone()]
        );
        assert_eq!(
            matching(conn, None, Some(t0 + chrono::Duration::seconds(1)), None).unwrap(),
            vec![]
        );
    }
}

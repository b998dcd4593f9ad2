//! Bases: the last synced value of each field, the "common ancestor" of the three-way merge.
//!
//! Per-link fields (status, assignee) are keyed by link; contact-level fields (tags, which
//! live on the GHL contact and span all its links) are keyed by contact (sync-model.md §3,
//! §4 rule 1). Values are JSON so the engine decides each field's shape; the engine stores
//! them normalised, so comparing with a freshly normalised value is a plain equality.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, Row, params};
use serde_json::Value;

use std::fmt;

use super::StoreError;
use super::codec::{Json, Stamp};
use super::links::LinkId;

/// The name of a base. Per link: `status`, `assignee`, and the prints detection compares
/// with (`trengo_seen`, `notes_upto`); per contact: `tags`, `ghl_seen`, `ghl_notes_seen`.
/// The stored names are those every earlier version wrote: they must not change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BaseName {
    /// A link's status (done or open).
    Status,
    /// A link's assignee (a normalised e-mail, or null).
    Assignee,
    /// A contact's managed tags.
    Tags,
    /// The comments field's name, for an op that names it: comments are kept in the comment
    /// map and `notes_upto`, so no pass writes this base today.
    Comments,
    /// A linked ticket's fingerprint as last synced (or as the pass's writes should leave it).
    TrengoSeen,
    /// The highest Trengo message id a link has handled.
    NotesUpto,
    /// A GHL contact's fingerprint as last synced.
    GhlSeen,
    /// The print of a contact's GHL notes the sync has not made its own, as read when its
    /// group was last read whole.
    GhlNotesSeen,
    /// A link's task due date as last synced with the Trengo ticket field showing it
    /// (`[contacts.task] due`), as `YYYY-MM-DDTHH:MM` UTC.
    TaskDue,
}

impl BaseName {
    /// The name the store keeps.
    pub fn as_str(self) -> &'static str {
        match self {
            BaseName::Status => "status",
            BaseName::Assignee => "assignee",
            BaseName::Tags => "tags",
            BaseName::Comments => "comments",
            BaseName::TrengoSeen => "trengo_seen",
            BaseName::NotesUpto => "notes_upto",
            BaseName::GhlSeen => "ghl_seen",
            BaseName::GhlNotesSeen => "ghl_notes_seen",
            BaseName::TaskDue => "task_due",
        }
    }
}

impl fmt::Display for BaseName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One stored base.
#[derive(Debug, Clone, PartialEq)]
pub struct Base {
    /// The stored name (see [`BaseName`]; a name this version does not know is kept as read).
    pub field: String,
    /// The last synced value.
    pub value: Value,
    /// When it was last written.
    pub updated_at: DateTime<Utc>,
}

impl Base {
    /// Whether this is the base named `name`.
    pub fn is(&self, name: BaseName) -> bool {
        self.field == name.as_str()
    }
}

fn from_row(row: &Row<'_>) -> rusqlite::Result<Base> {
    Ok(Base {
        field: row.get(0)?,
        value: row.get::<_, Json>(1)?.0,
        updated_at: row.get::<_, Stamp>(2)?.0,
    })
}

/// The base of one field of one link.
pub fn get(conn: &Connection, link: LinkId, field: BaseName) -> Result<Option<Base>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT field, value, updated_at FROM bases WHERE link_id = ?1 AND field = ?2",
        )?
        .query_row(params![link, field.as_str()], from_row)
        .optional()?)
}

/// Records the synced value of one field of one link, replacing the previous base.
pub fn put(
    conn: &Connection,
    link: LinkId,
    field: BaseName,
    value: &Value,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO bases (link_id, field, value, updated_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (link_id, field) DO UPDATE SET value = excluded.value,
                                                    updated_at = excluded.updated_at",
    )?
    .execute(params![
        link,
        field.as_str(),
        Json(value.clone()),
        Stamp(now)
    ])?;
    Ok(())
}

/// Replaces one field's base of one link with `new` if it still holds `old`, keeping when it
/// was written (a refinement of the same observation, not a sync); returns whether it did.
pub fn refine(
    conn: &Connection,
    link: LinkId,
    field: BaseName,
    old: &Value,
    new: &Value,
) -> Result<bool, StoreError> {
    let Some(base) = get(conn, link, field)? else {
        return Ok(false);
    };
    if base.value != *old {
        return Ok(false);
    }
    conn.prepare_cached("UPDATE bases SET value = ?3 WHERE link_id = ?1 AND field = ?2")?
        .execute(params![link, field.as_str(), Json(new.clone())])?;
    Ok(true)
}

/// Every base of one link, by field name.
pub fn for_link(conn: &Connection, link: LinkId) -> Result<Vec<Base>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT field, value, updated_at FROM bases WHERE link_id = ?1 ORDER BY field",
    )?;
    let bases = stmt
        .query_map([link], from_row)?
        .collect::<Result<_, _>>()?;
    Ok(bases)
}

/// The base of one contact-level field of one GHL contact.
pub fn get_contact(
    conn: &Connection,
    ghl_contact_id: &str,
    field: BaseName,
) -> Result<Option<Base>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT field, value, updated_at FROM contact_bases
             WHERE ghl_contact_id = ?1 AND field = ?2",
        )?
        .query_row(params![ghl_contact_id, field.as_str()], from_row)
        .optional()?)
}

/// Records the synced value of one contact-level field, replacing the previous base.
pub fn put_contact(
    conn: &Connection,
    ghl_contact_id: &str,
    field: BaseName,
    value: &Value,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO contact_bases (ghl_contact_id, field, value, updated_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (ghl_contact_id, field) DO UPDATE SET value = excluded.value,
                                                           updated_at = excluded.updated_at",
    )?
    .execute(params![ghl_contact_id, field.as_str(), Json(value.clone()), Stamp(now)])?;
    Ok(())
}

/// Every contact-level base of one GHL contact, by field name.
pub fn for_contact(conn: &Connection, ghl_contact_id: &str) -> Result<Vec<Base>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT field, value, updated_at FROM contact_bases WHERE ghl_contact_id = ?1 ORDER BY field",
    )?;
    let bases = stmt
        .query_map([ghl_contact_id], from_row)?
        .collect::<Result<_, _>>()?;
    Ok(bases)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;
    use crate::store::links;
    use crate::store::links::tests::{at, new_link};
    use serde_json::json;

    #[test]
    fn put_replaces_the_base_of_that_field_only() {
        let store = Store::open_in_memory().unwrap();
        let conn = store.conn();
        let t0 = at("2026-01-01T00:00:00Z");
        let link = links::insert(conn, &new_link(1, "t1", "c1"), t0).unwrap();
        put(conn, link.id, BaseName::Status, &json!("OPEN"), t0).unwrap();
        put(
            conn,
            link.id,
            BaseName::Assignee,
            &json!({"email": "a@x"}),
            t0,
        )
        .unwrap();
        let t1 = at("2026-01-01T01:00:00Z");
        put(conn, link.id, BaseName::Status, &json!("CLOSED"), t1).unwrap();
        let status = get(conn, link.id, BaseName::Status).unwrap().unwrap();
        assert_eq!(status.value, json!("CLOSED"));
        assert_eq!(status.updated_at, t1);
        let all = for_link(conn, link.id).unwrap();
        let fields: Vec<&str> = all.iter().map(|b| b.field.as_str()).collect();
        assert_eq!(fields, ["assignee", "status"]);
        assert_eq!(get(conn, link.id, BaseName::NotesUpto).unwrap(), None);
    }

    #[test]
    fn a_base_needs_an_existing_link() {
        let store = Store::open_in_memory().unwrap();
        let err = put(
            store.conn(),
            LinkId(42),
            BaseName::Status,
            &json!("OPEN"),
            at("2026-01-01T00:00:00Z"),
        );
        assert!(err.is_err(), "foreign keys must be enforced");
    }

    #[test]
    fn contact_bases_are_kept_per_contact() {
        let store = Store::open_in_memory().unwrap();
        let conn = store.conn();
        let t0 = at("2026-01-01T00:00:00Z");
        put_contact(conn, "c1", BaseName::Tags, &json!(["trengo:vip"]), t0).unwrap();
        put_contact(conn, "c2", BaseName::Tags, &json!([]), t0).unwrap();
        put_contact(
            conn,
            "c1",
            BaseName::Tags,
            &json!(["trengo:a", "trengo:vip"]),
            t0,
        )
        .unwrap();
        assert_eq!(
            get_contact(conn, "c1", BaseName::Tags)
                .unwrap()
                .unwrap()
                .value,
            json!(["trengo:a", "trengo:vip"])
        );
        assert_eq!(for_contact(conn, "c2").unwrap().len(), 1);
        assert_eq!(get_contact(conn, "c3", BaseName::Tags).unwrap(), None);
    }
}

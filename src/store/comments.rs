//! The comment map: Trengo message id ⇄ GHL note id.
//!
//! Comments are append-only and never conflict; the map is what makes each note cross exactly
//! once (sync-model.md §3 comments, §4 rule 3). Both ids are unique, so a second mapping of the
//! same message or note is refused rather than silently duplicated.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::StoreError;
use super::codec::{Stamp, text_enum};
use super::error::is_constraint;
use super::links::LinkId;

/// Where a comment was written first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommentOrigin {
    /// A Trengo internal note (or customer message), copied to a GHL note.
    Trengo,
    /// A GHL note, copied to a Trengo internal note.
    Ghl,
}

text_enum!(CommentOrigin {
    Trengo => "trengo",
    Ghl => "ghl",
});

/// One mapped comment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comment {
    /// Its row id.
    pub id: i64,
    /// The link it belongs to.
    pub link_id: LinkId,
    pub trengo_message_id: i64,
    pub ghl_note_id: String,
    /// Where it was written first.
    pub origin: CommentOrigin,
    /// When the mapping was recorded.
    pub created_at: DateTime<Utc>,
}

const COLUMNS: &str = "id, link_id, trengo_message_id, ghl_note_id, origin, created_at";

fn from_row(row: &Row<'_>) -> rusqlite::Result<Comment> {
    Ok(Comment {
        id: row.get(0)?,
        link_id: row.get(1)?,
        trengo_message_id: row.get(2)?,
        ghl_note_id: row.get(3)?,
        origin: row.get(4)?,
        created_at: row.get::<_, Stamp>(5)?.0,
    })
}

/// Records that a message and a note are the same comment.
pub fn insert(
    conn: &Connection,
    link: LinkId,
    trengo_message_id: i64,
    ghl_note_id: &str,
    origin: CommentOrigin,
    now: DateTime<Utc>,
) -> Result<Comment, StoreError> {
    let inserted = conn.execute(
        "INSERT INTO comments (link_id, trengo_message_id, ghl_note_id, origin, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![link, trengo_message_id, ghl_note_id, origin, Stamp(now)],
    );
    match inserted {
        Ok(_) => {}
        // A missing link is a foreign-key failure, also a constraint; tell the two apart.
        Err(e) if is_constraint(&e) && !is_foreign_key(&e) => {
            return Err(StoreError::DuplicateComment {
                trengo_message_id,
                ghl_note_id: ghl_note_id.to_owned(),
            });
        }
        Err(e) => return Err(e.into()),
    }
    Ok(Comment {
        id: conn.last_insert_rowid(),
        link_id: link,
        trengo_message_id,
        ghl_note_id: ghl_note_id.to_owned(),
        origin,
        created_at: now,
    })
}

fn is_foreign_key(e: &rusqlite::Error) -> bool {
    matches!(
        e,
        rusqlite::Error::SqliteFailure(f, _)
            if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY
    )
}

/// The mapping of this Trengo message, if it has crossed.
pub fn by_message(
    conn: &Connection,
    trengo_message_id: i64,
) -> Result<Option<Comment>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM comments WHERE trengo_message_id = ?1");
    Ok(conn
        .query_row(&sql, [trengo_message_id], from_row)
        .optional()?)
}

/// The mapping of this GHL note, if it has crossed.
pub fn by_note(conn: &Connection, ghl_note_id: &str) -> Result<Option<Comment>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM comments WHERE ghl_note_id = ?1");
    Ok(conn.query_row(&sql, [ghl_note_id], from_row).optional()?)
}

/// Every mapped comment of one link, in the order they were recorded.
pub fn for_link(conn: &Connection, link: LinkId) -> Result<Vec<Comment>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM comments WHERE link_id = ?1 ORDER BY id");
    let mut stmt = conn.prepare_cached(&sql)?;
    let comments = stmt
        .query_map([link], from_row)?
        .collect::<Result<_, _>>()?;
    Ok(comments)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;
    use crate::store::links;
    use crate::store::links::tests::{at, new_link};

    #[test]
    fn a_note_crosses_once() {
        let store = Store::open_in_memory().unwrap();
        let conn = store.conn();
        let t0 = at("2026-01-01T00:00:00Z");
        let link = links::insert(conn, &new_link(1, "t1", "c1"), t0).unwrap();
        let comment = insert(conn, link.id, 100, "note-a", CommentOrigin::Trengo, t0).unwrap();
        assert_eq!(by_message(conn, 100).unwrap(), Some(comment.clone()));
        assert_eq!(by_note(conn, "note-a").unwrap(), Some(comment.clone()));
        assert_eq!(for_link(conn, link.id).unwrap(), vec![comment]);

        let again = insert(conn, link.id, 100, "note-b", CommentOrigin::Ghl, t0).unwrap_err();
        assert!(matches!(again, StoreError::DuplicateComment { .. }));
        let again = insert(conn, link.id, 101, "note-a", CommentOrigin::Ghl, t0).unwrap_err();
        assert!(matches!(again, StoreError::DuplicateComment { .. }));
    }

    #[test]
    fn a_comment_of_an_unknown_link_is_not_called_a_duplicate() {
        let store = Store::open_in_memory().unwrap();
        let err = insert(
            store.conn(),
            LinkId(9),
            1,
            "n",
            CommentOrigin::Ghl,
            at("2026-01-01T00:00:00Z"),
        )
        .unwrap_err();
        assert!(matches!(err, StoreError::Sqlite(_)), "{err}");
    }
}

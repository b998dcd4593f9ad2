//! Links: one Trengo ticket paired with one GHL task, the scope of the sync.
//!
//! A link is never deleted: leaving scope sets its state to `out_of_scope`, which keeps the
//! pair (and so the adoption of that task) and the history in the ledger (sync-model.md §2).

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::StoreError;
use super::codec::{Stamp, text_enum};
use super::error::is_constraint;

/// A link's id: its row id in the store, and the id the planner's views, the plan and the
/// commands (`explain 12`, `pause 12`) use.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct LinkId(pub i64);

impl std::fmt::Display for LinkId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl rusqlite::types::ToSql for LinkId {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        self.0.to_sql()
    }
}

impl rusqlite::types::FromSql for LinkId {
    fn column_result(value: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
        i64::column_result(value).map(LinkId)
    }
}

/// Which side made the link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// A labelled Trengo ticket; the engine created the task.
    Trengo,
    /// A tagged GHL task; the engine created the ticket.
    Ghl,
    /// A task that already held this account's ticket URL (recovery, second install).
    Adopted,
}

text_enum!(Origin {
    Trengo => "trengo",
    Ghl => "ghl",
    Adopted => "adopted",
});

/// Whether a link is synced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkState {
    /// In scope: its fields are synced.
    Active,
    /// Its label or tag was removed: nothing is synced any more, nothing was deleted.
    OutOfScope,
}

text_enum!(LinkState {
    Active => "active",
    OutOfScope => "out_of_scope",
});

/// A link to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewLink {
    /// The Trengo ticket id.
    pub ticket_id: i64,
    /// The GHL task id.
    pub task_id: String,
    /// The GHL contact the task belongs to.
    pub ghl_contact_id: String,
    /// The Trengo contact of the ticket, when known.
    pub trengo_contact_id: Option<i64>,
    /// Which side made it.
    pub origin: Origin,
}

/// A recorded link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// Its row id.
    pub id: LinkId,
    /// The Trengo ticket id.
    pub ticket_id: i64,
    /// The GHL task id.
    pub task_id: String,
    /// The GHL contact the task belongs to.
    pub ghl_contact_id: String,
    /// The Trengo contact of the ticket, when known.
    pub trengo_contact_id: Option<i64>,
    /// Which side made it.
    pub origin: Origin,
    /// Whether it is synced.
    pub state: LinkState,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// When its row last changed.
    pub updated_at: DateTime<Utc>,
    /// Why it ended as gone (its ticket or task answered 404 or 410), if it did; such a link is
    /// out of scope and never read again.
    pub gone: Option<String>,
}

/// How many links are in each state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkCounts {
    /// Links being synced.
    pub active: u64,
    /// Links that left scope (the gone ones included).
    pub out_of_scope: u64,
    /// Links whose ticket or task is gone.
    pub gone: u64,
}

const COLUMNS: &str = "id, ticket_id, task_id, ghl_contact_id, trengo_contact_id, origin, state, \
                       created_at, updated_at, gone";

fn from_row(row: &Row<'_>) -> rusqlite::Result<Link> {
    Ok(Link {
        id: row.get(0)?,
        ticket_id: row.get(1)?,
        task_id: row.get(2)?,
        ghl_contact_id: row.get(3)?,
        trengo_contact_id: row.get(4)?,
        origin: row.get(5)?,
        state: row.get(6)?,
        created_at: row.get::<_, Stamp>(7)?.0,
        updated_at: row.get::<_, Stamp>(8)?.0,
        gone: row.get(9)?,
    })
}

/// Records a new, active link. A ticket or task that is already linked is refused.
pub fn insert(conn: &Connection, link: &NewLink, now: DateTime<Utc>) -> Result<Link, StoreError> {
    let inserted = conn.execute(
        "INSERT INTO links (ticket_id, task_id, ghl_contact_id, trengo_contact_id, origin, state,
                            created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, 'active', ?6, ?6)",
        params![
            link.ticket_id,
            link.task_id,
            link.ghl_contact_id,
            link.trengo_contact_id,
            link.origin,
            Stamp(now)
        ],
    );
    match inserted {
        Ok(_) => {}
        Err(e) if is_constraint(&e) => {
            return Err(StoreError::DuplicateLink {
                ticket_id: link.ticket_id,
                task_id: link.task_id.clone(),
            });
        }
        Err(e) => return Err(e.into()),
    }
    Ok(Link {
        id: LinkId(conn.last_insert_rowid()),
        ticket_id: link.ticket_id,
        task_id: link.task_id.clone(),
        ghl_contact_id: link.ghl_contact_id.clone(),
        trengo_contact_id: link.trengo_contact_id,
        origin: link.origin,
        state: LinkState::Active,
        created_at: now,
        updated_at: now,
        gone: None,
    })
}

fn one(
    conn: &Connection,
    filter: &str,
    param: &dyn rusqlite::ToSql,
) -> Result<Option<Link>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM links WHERE {filter}");
    Ok(conn.query_row(&sql, [param], from_row).optional()?)
}

fn many(
    conn: &Connection,
    filter: &str,
    params: &[&dyn rusqlite::ToSql],
) -> Result<Vec<Link>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM links WHERE {filter} ORDER BY id");
    let mut stmt = conn.prepare_cached(&sql)?;
    let links = stmt
        .query_map(params, from_row)?
        .collect::<Result<_, _>>()?;
    Ok(links)
}

/// The link with this id.
pub fn get(conn: &Connection, id: LinkId) -> Result<Option<Link>, StoreError> {
    one(conn, "id = ?1", &id)
}

/// The link of this Trengo ticket, in any state.
pub fn by_ticket(conn: &Connection, ticket_id: i64) -> Result<Option<Link>, StoreError> {
    one(conn, "ticket_id = ?1", &ticket_id)
}

/// The link of this GHL task, in any state.
pub fn by_task(conn: &Connection, task_id: &str) -> Result<Option<Link>, StoreError> {
    one(conn, "task_id = ?1", &task_id)
}

/// The active links of one GHL contact (tags live on the contact, so they span these links).
pub fn by_contact(conn: &Connection, ghl_contact_id: &str) -> Result<Vec<Link>, StoreError> {
    many(
        conn,
        "ghl_contact_id = ?1 AND state = ?2",
        &[&ghl_contact_id, &LinkState::Active],
    )
}

/// Every active link, oldest first.
pub fn active(conn: &Connection) -> Result<Vec<Link>, StoreError> {
    many(conn, "state = ?1", &[&LinkState::Active])
}

/// The ticket and task ids of every link, in any state: what the sweep must not discover
/// again (a link that left scope stays ended until someone acts on it).
pub fn every_id(conn: &Connection) -> Result<(HashSet<i64>, HashSet<String>), StoreError> {
    let mut stmt = conn.prepare_cached("SELECT ticket_id, task_id FROM links")?;
    let (mut tickets, mut tasks) = (HashSet::new(), HashSet::new());
    let rows = stmt.query_map([], |row| {
        Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?))
    })?;
    for row in rows {
        let (ticket, task) = row?;
        tickets.insert(ticket);
        tasks.insert(task);
    }
    Ok((tickets, tasks))
}

/// How many links are active and how many left scope (for `status` and the brakes).
pub fn count_by_state(conn: &Connection) -> Result<LinkCounts, StoreError> {
    let mut stmt = conn.prepare_cached("SELECT state, COUNT(*) FROM links GROUP BY state")?;
    let mut counts = LinkCounts::default();
    let rows = stmt.query_map([], |row| {
        Ok((row.get::<_, LinkState>(0)?, row.get::<_, i64>(1)?))
    })?;
    for row in rows {
        let (state, n) = row?;
        let n = u64::try_from(n).unwrap_or(0);
        match state {
            LinkState::Active => counts.active = n,
            LinkState::OutOfScope => counts.out_of_scope = n,
        }
    }
    let gone: i64 = conn
        .prepare_cached("SELECT COUNT(*) FROM links WHERE gone IS NOT NULL")?
        .query_row([], |row| row.get(0))?;
    counts.gone = u64::try_from(gone).unwrap_or(0);
    Ok(counts)
}

/// Moves a link into or out of scope. Returns false when no link has this id.
pub fn set_state(
    conn: &Connection,
    id: LinkId,
    state: LinkState,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let changed = conn.execute(
        "UPDATE links SET state = ?2, updated_at = ?3 WHERE id = ?1",
        params![id, state, Stamp(now)],
    )?;
    Ok(changed == 1)
}

/// Ends a link whose ticket or task is gone, saying why: out of scope for good, never read
/// again. Returns false when no link has this id.
pub fn mark_gone(
    conn: &Connection,
    id: LinkId,
    why: &str,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let changed = conn.execute(
        "UPDATE links SET state = ?2, gone = ?3, updated_at = ?4 WHERE id = ?1",
        params![id, LinkState::OutOfScope, why, Stamp(now)],
    )?;
    Ok(changed == 1)
}

/// Points a link at the ticket its ticket was merged into (Trengo deletes the merged one).
/// Refused (false) when that ticket has a link of its own.
pub fn follow_merge(
    conn: &Connection,
    id: LinkId,
    surviving_ticket: i64,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    if by_ticket(conn, surviving_ticket)?.is_some() {
        return Ok(false);
    }
    let changed = conn.execute(
        "UPDATE links SET ticket_id = ?2, updated_at = ?3 WHERE id = ?1",
        params![id, surviving_ticket, Stamp(now)],
    )?;
    Ok(changed == 1)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::store::Store;

    pub(crate) fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    pub(crate) fn new_link(ticket_id: i64, task_id: &str, contact: &str) -> NewLink {
        NewLink {
            ticket_id,
            task_id: task_id.into(),
            ghl_contact_id: contact.into(),
            trengo_contact_id: Some(ticket_id * 10),
            origin: Origin::Trengo,
        }
    }

    #[test]
    fn inserted_link_is_found_by_ticket_task_and_contact() {
        let store = Store::open_in_memory().unwrap();
        let conn = store.conn();
        let now = at("2026-01-01T00:00:00Z");
        let link = insert(conn, &new_link(7, "task-a", "c1"), now).unwrap();
        assert_eq!(by_ticket(conn, 7).unwrap(), Some(link.clone()));
        assert_eq!(by_task(conn, "task-a").unwrap(), Some(link.clone()));
        assert_eq!(get(conn, link.id).unwrap(), Some(link.clone()));
        assert_eq!(by_contact(conn, "c1").unwrap(), vec![link]);
        assert_eq!(by_ticket(conn, 8).unwrap(), None);
    }

    #[test]
    fn a_ticket_is_linked_only_once() {
        let store = Store::open_in_memory().unwrap();
        let conn = store.conn();
        let now = at("2026-01-01T00:00:00Z");
        insert(conn, &new_link(7, "task-a", "c1"), now).unwrap();
        let err = insert(conn, &new_link(7, "task-b", "c1"), now).unwrap_err();
        assert!(matches!(
            err,
            StoreError::DuplicateLink { ticket_id: 7, .. }
        ));
        let err = insert(conn, &new_link(8, "task-a", "c1"), now).unwrap_err();
        assert!(matches!(err, StoreError::DuplicateLink { .. }));
    }

    #[test]
    fn leaving_scope_keeps_the_link_but_drops_it_from_active() {
        let store = Store::open_in_memory().unwrap();
        let conn = store.conn();
        let now = at("2026-01-01T00:00:00Z");
        let a = insert(conn, &new_link(1, "t1", "c1"), now).unwrap();
        let b = insert(conn, &new_link(2, "t2", "c1"), now).unwrap();
        let later = at("2026-01-02T00:00:00Z");
        assert!(set_state(conn, a.id, LinkState::OutOfScope, later).unwrap());
        assert_eq!(active(conn).unwrap(), vec![b.clone()]);
        assert_eq!(by_contact(conn, "c1").unwrap(), vec![b]);
        let kept = by_ticket(conn, 1).unwrap().unwrap();
        assert_eq!(kept.state, LinkState::OutOfScope);
        assert_eq!(kept.updated_at, later);
        assert_eq!(
            count_by_state(conn).unwrap(),
            LinkCounts {
                active: 1,
                out_of_scope: 1,
                gone: 0
            }
        );
        assert!(!set_state(conn, LinkId(99), LinkState::Active, later).unwrap());
    }
}

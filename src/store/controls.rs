//! What an operator switched off: pauses (of the whole daemon or of one link, one direction or
//! both) and links ended by hand (`trengo-sync unlink`).
//!
//! The command line writes these rows while the daemon runs: both hold their own connection to
//! the WAL database, every write is one short IMMEDIATE transaction, and the busy timeout lets
//! either wait for the other's lock; the engine reads the pauses at the start of each pass, so
//! a pause takes effect at the daemon's next pass. A pause holds writes only: what a paused
//! pass would have written is recorded as a held retry ([`super::retries::hold`]) that
//! [`crate::control::resume`] makes due at once, so nothing seen while paused is lost (the cursors may move on).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, params};
use serde::Serialize;

use super::StoreError;
use super::codec::{Stamp, text_enum};
use super::links::{self, LinkId, LinkState};

/// Which way a pause stops the sync.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PauseDirection {
    /// Nothing is written to GHL (Trengo's changes wait).
    TrengoToGhl,
    /// Nothing is written to Trengo (GHL's changes wait).
    GhlToTrengo,
    /// Nothing is written anywhere.
    Both,
}

text_enum!(PauseDirection {
    TrengoToGhl => "trengo_to_ghl",
    GhlToTrengo => "ghl_to_trengo",
    Both => "both",
});

impl PauseDirection {
    /// Whether writes to Trengo are held.
    pub fn holds_trengo(self) -> bool {
        matches!(self, PauseDirection::GhlToTrengo | PauseDirection::Both)
    }

    /// Whether writes to GHL are held.
    pub fn holds_ghl(self) -> bool {
        matches!(self, PauseDirection::TrengoToGhl | PauseDirection::Both)
    }

    /// The pause holding what either holds.
    pub fn union(self, other: PauseDirection) -> PauseDirection {
        if self == other {
            self
        } else {
            PauseDirection::Both
        }
    }

    /// Human words, for `status` and the logs.
    pub fn describe(self) -> &'static str {
        match self {
            PauseDirection::TrengoToGhl => "Trengo → GHL paused",
            PauseDirection::GhlToTrengo => "GHL → Trengo paused",
            PauseDirection::Both => "paused both ways",
        }
    }
}

/// The row id standing for the whole daemon in the `pauses` table (link ids start at 1).
const DAEMON: i64 = 0;

/// One pause.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Pause {
    /// The direction paused.
    pub direction: PauseDirection,
    /// Since when.
    pub since: DateTime<Utc>,
}

/// Every pause in force, as the engine reads it at the start of a pass.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pauses {
    /// The whole daemon's, if paused.
    pub daemon: Option<Pause>,
    /// Paused links: link id → (its GHL contact, the pause).
    pub links: HashMap<LinkId, (String, Pause)>,
}

impl Pauses {
    /// Whether nothing is paused.
    pub fn is_empty(&self) -> bool {
        self.daemon.is_none() && self.links.is_empty()
    }
}

fn put(
    conn: &Connection,
    id: i64,
    direction: PauseDirection,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO pauses (link_id, direction, since) VALUES (?1, ?2, ?3)
         ON CONFLICT (link_id) DO UPDATE SET direction = excluded.direction",
        params![id, direction, Stamp(now)],
    )?;
    Ok(())
}

/// Pauses the whole daemon in `direction` (replacing an earlier direction; `since` is kept).
pub fn pause_daemon(
    conn: &Connection,
    direction: PauseDirection,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    put(conn, DAEMON, direction, now)
}

/// Pauses one link. Returns false when no link has this id.
pub fn pause_link(
    conn: &Connection,
    link: LinkId,
    direction: PauseDirection,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    if links::get(conn, link)?.is_none() {
        return Ok(false);
    }
    put(conn, link.0, direction, now)?;
    Ok(true)
}

/// Lifts the daemon's pause and makes every held item due at `now`. Returns whether it was
/// paused.
pub fn resume_daemon(conn: &Connection, now: DateTime<Utc>) -> Result<bool, StoreError> {
    let was = conn.execute("DELETE FROM pauses WHERE link_id = ?1", [DAEMON])? == 1;
    super::retries::release_held(conn, now)?;
    Ok(was)
}

/// Lifts one link's pause and makes every held item due at `now`. Returns whether it was
/// paused.
pub fn resume_link(
    conn: &Connection,
    link: LinkId,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let was = conn.execute("DELETE FROM pauses WHERE link_id = ?1", [link])? == 1;
    super::retries::release_held(conn, now)?;
    Ok(was)
}

/// The whole daemon's pause, if any.
pub fn daemon_pause(conn: &Connection) -> Result<Option<Pause>, StoreError> {
    Ok(all(conn)?.daemon)
}

/// Every pause in force.
pub fn all(conn: &Connection) -> Result<Pauses, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT p.link_id, p.direction, p.since, l.ghl_contact_id
         FROM pauses p LEFT JOIN links l ON l.id = p.link_id ORDER BY p.link_id",
    )?;
    let rows = stmt.query_map([], |row| {
        Ok((
            row.get::<_, i64>(0)?,
            Pause {
                direction: row.get(1)?,
                since: row.get::<_, Stamp>(2)?.0,
            },
            row.get::<_, Option<String>>(3)?,
        ))
    })?;
    let mut pauses = Pauses::default();
    for row in rows {
        let (id, pause, contact) = row?;
        match (id, contact) {
            (DAEMON, _) => pauses.daemon = Some(pause),
            (id, Some(contact)) => {
                pauses.links.insert(LinkId(id), (contact, pause));
            }
            (_, None) => {}
        }
    }
    Ok(pauses)
}

/// Ends a link by hand: out of scope with why, deleting nothing; discovery does not link its
/// ticket or task again until [`relink`]. Returns the link as it was, or `None` when no link
/// has this id.
pub fn unlink(
    conn: &Connection,
    link: LinkId,
    why: &str,
    now: DateTime<Utc>,
) -> Result<Option<links::Link>, StoreError> {
    let Some(before) = links::get(conn, link)? else {
        return Ok(None);
    };
    conn.execute(
        "UPDATE links SET state = ?2, unlinked = ?3, updated_at = ?4 WHERE id = ?1",
        params![link, LinkState::OutOfScope, why, Stamp(now)],
    )?;
    Ok(Some(before))
}

/// What [`relink`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Relinked {
    /// The link is active again.
    Active,
    /// It was active already.
    AlreadyActive,
    /// Its ticket or task is gone (the reason): it stays ended.
    Gone(String),
    /// No link has this id.
    Missing,
}

/// Brings a link that was ended by hand, or that left scope, back into scope: the next pass
/// syncs it again from its stored bases (what changed on both sides since is merged as any
/// edit is). A link whose ticket or task is gone stays ended.
pub fn relink(conn: &Connection, link: LinkId, now: DateTime<Utc>) -> Result<Relinked, StoreError> {
    let Some(l) = links::get(conn, link)? else {
        return Ok(Relinked::Missing);
    };
    if let Some(gone) = l.gone {
        return Ok(Relinked::Gone(gone));
    }
    if l.state == LinkState::Active {
        return Ok(Relinked::AlreadyActive);
    }
    conn.execute(
        "UPDATE links SET state = ?2, unlinked = NULL, updated_at = ?3 WHERE id = ?1",
        params![link, LinkState::Active, Stamp(now)],
    )?;
    super::retries::release_held(conn, now)?;
    Ok(Relinked::Active)
}

/// Why a link was ended by hand, if it was.
pub fn unlinked(conn: &Connection, link: LinkId) -> Result<Option<String>, StoreError> {
    use rusqlite::OptionalExtension as _;
    Ok(conn
        .prepare_cached("SELECT unlinked FROM links WHERE id = ?1")?
        .query_row([link], |row| row.get::<_, Option<String>>(0))
        .optional()?
        .flatten())
}

/// How many links were ended by hand.
pub fn unlinked_count(conn: &Connection) -> Result<u64, StoreError> {
    let n: i64 = conn
        .prepare_cached("SELECT COUNT(*) FROM links WHERE unlinked IS NOT NULL")?
        .query_row([], |row| row.get(0))?;
    Ok(u64::try_from(n).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;
    use crate::store::links::tests::{at, new_link};

    #[test]
    fn a_daemon_pause_is_read_back_and_lifted() {
        let store = Store::open_in_memory().unwrap();
        let conn = store.conn();
        let now = at("2026-01-01T00:00:00Z");
        assert!(all(conn).unwrap().is_empty());
        pause_daemon(conn, PauseDirection::TrengoToGhl, now).unwrap();
        let p = daemon_pause(conn).unwrap().unwrap();
        assert_eq!(p.direction, PauseDirection::TrengoToGhl);
        assert!(resume_daemon(conn, now).unwrap());
        assert!(!resume_daemon(conn, now).unwrap());
        assert!(all(conn).unwrap().is_empty());
    }

    #[test]
    fn a_link_pause_names_the_links_contact() {
        let store = Store::open_in_memory().unwrap();
        let conn = store.conn();
        let now = at("2026-01-01T00:00:00Z");
        let l = links::insert(conn, &new_link(7, "t7", "c7"), now).unwrap();
        assert!(!pause_link(conn, LinkId(99), PauseDirection::Both, now).unwrap());
        assert!(pause_link(conn, l.id, PauseDirection::Both, now).unwrap());
        let pauses = all(conn).unwrap();
        assert_eq!(pauses.links[&l.id].0, "c7");
        assert!(pauses.daemon.is_none());
        assert!(resume_link(conn, l.id, now).unwrap());
    }

    #[test]
    fn unlink_ends_the_link_and_relink_brings_it_back() {
        let store = Store::open_in_memory().unwrap();
        let conn = store.conn();
        let now = at("2026-01-01T00:00:00Z");
        let l = links::insert(conn, &new_link(7, "t7", "c7"), now).unwrap();
        unlink(conn, l.id, "by hand", now).unwrap().unwrap();
        assert_eq!(
            links::get(conn, l.id).unwrap().unwrap().state,
            LinkState::OutOfScope
        );
        assert_eq!(unlinked(conn, l.id).unwrap().as_deref(), Some("by hand"));
        assert_eq!(unlinked_count(conn).unwrap(), 1);
        assert_eq!(relink(conn, l.id, now).unwrap(), Relinked::Active);
        assert_eq!(
            links::get(conn, l.id).unwrap().unwrap().state,
            LinkState::Active
        );
        assert_eq!(unlinked(conn, l.id).unwrap(), None);
        assert_eq!(relink(conn, l.id, now).unwrap(), Relinked::AlreadyActive);
        assert_eq!(relink(conn, LinkId(9), now).unwrap(), Relinked::Missing);
    }
}

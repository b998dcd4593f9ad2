//! What `pause`, `resume`, `unlink` and `relink` do: write the operator's switch into the store
//! ([`crate::store::controls`]) and say what follows.
//!
//! They work while `run` is running: the command opens the store beside the daemon (SQLite WAL,
//! one short IMMEDIATE transaction waiting on the busy timeout for the daemon's lock), and the
//! daemon reads the switches at the start of each pass.

use chrono::{DateTime, Utc};

use crate::store::controls::{self, PauseDirection, Relinked};
use crate::store::links::{self, LinkId};
use crate::store::{Store, StoreError, retries};

fn missing(link: i64) -> anyhow::Error {
    anyhow::anyhow!(
        "there is no link {link}; `trengo-sync status` counts them and `explain LINK` shows one"
    )
}

/// `pause [LINK] [--direction …]`.
pub fn pause(
    store: &mut Store,
    link: Option<i64>,
    direction: PauseDirection,
    now: DateTime<Utc>,
) -> anyhow::Result<String> {
    let tx = store.transaction()?;
    let text = match link {
        None => {
            controls::pause_daemon(&tx, direction, now)?;
            format!(
                "paused ({}): from the daemon's next pass {}; `trengo-sync resume` lifts it, and \
                 what changed meanwhile crosses then\n",
                direction.describe(),
                what_waits(direction)
            )
        }
        Some(id) => {
            if !controls::pause_link(&tx, LinkId(id), direction, now)? {
                return Err(missing(id));
            }
            format!(
                "link {id} paused ({}): from the daemon's next pass {} for this link (and its \
                 contact's tags); `trengo-sync resume {id}` lifts it\n",
                direction.describe(),
                what_waits(direction)
            )
        }
    };
    tx.commit().map_err(StoreError::from)?;
    Ok(text)
}

fn what_waits(direction: PauseDirection) -> &'static str {
    match direction {
        PauseDirection::TrengoToGhl => "nothing is written to GHL",
        PauseDirection::GhlToTrengo => "nothing is written to Trengo",
        PauseDirection::Both => "nothing is read or written",
    }
}

/// `resume [LINK]`: lifts a pause; for a link ended by `unlink`, brings it back too.
pub fn resume(store: &mut Store, link: Option<i64>, now: DateTime<Utc>) -> anyhow::Result<String> {
    let tx = store.transaction()?;
    let held = retries::held_count(&tx)?;
    let text = match link {
        None => {
            if controls::resume_daemon(&tx, now)? {
                format!(
                    "resumed: syncing again from the daemon's next pass ({held} held items cross then)\n"
                )
            } else {
                "the daemon was not paused; nothing changed\n".to_string()
            }
        }
        Some(id) => {
            let paused = controls::resume_link(&tx, LinkId(id), now)?;
            let unlinked = controls::unlinked(&tx, LinkId(id))?.is_some();
            if unlinked {
                relink_in(&tx, id, now)?;
            }
            match (paused, unlinked) {
                (_, true) => {
                    format!("link {id} is linked again and syncs from the daemon's next pass\n")
                }
                (true, false) => {
                    format!("link {id} resumed: it syncs again from the daemon's next pass\n")
                }
                (false, false) if links::get(&tx, LinkId(id))?.is_none() => {
                    return Err(missing(id));
                }
                (false, false) => format!("link {id} was not paused; nothing changed\n"),
            }
        }
    };
    tx.commit().map_err(StoreError::from)?;
    Ok(text)
}

/// `unlink LINK [--reason …]`.
pub fn unlink(
    store: &mut Store,
    link: i64,
    reason: Option<&str>,
    now: DateTime<Utc>,
) -> anyhow::Result<String> {
    let tx = store.transaction()?;
    let why = reason.unwrap_or("unlinked by hand (trengo-sync unlink)");
    let Some(before) = controls::unlink(&tx, LinkId(link), why, now)? else {
        return Err(missing(link));
    };
    tx.commit().map_err(StoreError::from)?;
    Ok(format!(
        "link {link} (ticket #{} ⇄ GHL task {}) ended: nothing was deleted on either side, and \
         it is not linked again, even while it matches the link rules, until `trengo-sync \
         relink {link}`\n",
        before.ticket_id, before.task_id
    ))
}

/// `relink LINK`.
pub fn relink(store: &mut Store, link: i64, now: DateTime<Utc>) -> anyhow::Result<String> {
    let tx = store.transaction()?;
    let text = relink_in(&tx, link, now)?;
    tx.commit().map_err(StoreError::from)?;
    Ok(text)
}

fn relink_in(conn: &rusqlite::Connection, link: i64, now: DateTime<Utc>) -> anyhow::Result<String> {
    Ok(match controls::relink(conn, LinkId(link), now)? {
        Relinked::Active => format!(
            "link {link} is linked again: the next pass syncs it from its last synced values \
             (what changed on both sides meanwhile is merged as any edit is); if it no longer \
             matches the link rules, that pass ends it again\n"
        ),
        Relinked::AlreadyActive => format!("link {link} is already linked; nothing changed\n"),
        Relinked::Gone(why) => anyhow::bail!("link {link} cannot be linked again: {why}"),
        Relinked::Missing => return Err(missing(link)),
    })
}

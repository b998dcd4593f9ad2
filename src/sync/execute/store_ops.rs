//! What an item commits to the store alone, after its remote writes: bases, comment pairs,
//! held and settled conflicts, links leaving scope or gone; and `resolve`, an operator's
//! settlement of a held conflict.

use chrono::{DateTime, Utc};
use serde_json::json;

use super::ItemError;
use crate::store::{
    self, StoreError,
    comments::CommentOrigin,
    ledger::{Entry, EntryKind},
};
use crate::sync::keys::BaseName;
use crate::sync::model::{LinkId, Tag};
use crate::sync::operation::{Op, Side};
use crate::sync::policy::Field;

/// Records a comment pair (a message and its copy) unless either is mapped already.
pub(super) fn record_pair(
    c: &rusqlite::Connection,
    link: LinkId,
    message_id: i64,
    note_id: &str,
    origin: CommentOrigin,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    if store::comments::by_message(c, message_id)?.is_none()
        && store::comments::by_note(c, note_id)?.is_none()
    {
        store::comments::insert(c, link, message_id, note_id, origin, now)?;
    }
    Ok(())
}

/// Applies a store-only operation inside the caller's transaction.
pub(super) fn store_op(
    c: &rusqlite::Connection,
    op: &Op,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    match op {
        // In the same transaction as the contact's tag base (the planner puts both in the
        // contact's item), so the labels that left with the link never read as removed.
        Op::Unlink { link } => {
            store::links::set_state(c, *link, store::links::LinkState::OutOfScope, now)?;
            store::ledger::record(
                c,
                &Entry::new(EntryKind::Unlinked, now)
                    .link(*link)
                    .detail("left scope; nothing was deleted"),
            )
            .map(|_| ())
        }
        Op::EndGone { link, side } => {
            let why = match side {
                Side::Trengo => {
                    "the Trengo ticket answered 404/410 (deleted, merged or not visible)"
                }
                Side::Ghl => {
                    "the GHL task or contact answered 404/410, or the task is no longer listed (deleted)"
                }
            };
            store::links::mark_gone(c, *link, why, now)?;
            store::ledger::record(
                c,
                &Entry::new(EntryKind::Unlinked, now)
                    .link(*link)
                    .detail(format!("gone: {why}; nothing was deleted")),
            )
            .map(|_| ())
        }
        Op::SetLinkBase { link, field, value } => {
            store::bases::put(c, *link, BaseName::from(*field), value, now)
        }
        Op::SetTagBase { contact_id, tags } => {
            let list: Vec<&str> = tags.iter().map(Tag::as_str).collect();
            store::bases::put_contact(c, contact_id, BaseName::Tags, &json!(list), now)
        }
        Op::MapComment {
            link,
            message_id,
            note_id,
        } => {
            // Which side wrote the copy is known from the note id form only for task bodies;
            // for a found copy the origin is the side that did not carry the marker.
            let origin = if note_id.starts_with("task-") {
                CommentOrigin::Ghl
            } else {
                CommentOrigin::Trengo
            };
            record_pair(c, *link, *message_id, note_id, origin, now)
        }
        Op::HoldConflict {
            link,
            field,
            base,
            trengo,
            ghl,
        } => {
            store::conflicts::hold(
                c,
                &store::conflicts::Held {
                    link_id: *link,
                    field: field.to_string(),
                    base: (!base.is_null()).then(|| base.clone()),
                    trengo_value: trengo.clone(),
                    ghl_value: ghl.clone(),
                    detected_at: now,
                },
            )?;
            store::ledger::record(
                c,
                &Entry::new(EntryKind::ConflictHeld, now)
                    .link(*link)
                    .field(field.to_string())
                    .detail(format!(
                        "trengo: {trengo}, ghl: {ghl}; settle with `trengo-sync resolve`"
                    )),
            )
            .map(|_| ())
        }
        Op::SettleConflict {
            link,
            field,
            winner,
            losing,
        } => store::ledger::record(
            c,
            &Entry::new(EntryKind::ConflictSettled, now)
                .link(*link)
                .field(field.to_string())
                .side(winner.to_string())
                .losing(losing.clone()),
        )
        .map(|_| ()),
        _ => Ok(()),
    }
}

/// Settles a held conflict by hand: the chosen side's value wins. The base is set to the
/// losing side's current value, so the next pass sees only the winner as changed and
/// carries it across.
pub fn resolve(
    c: &rusqlite::Connection,
    link: store::links::LinkId,
    field: Field,
    take_trengo: bool,
    now: DateTime<Utc>,
) -> Result<store::conflicts::Held, ItemError> {
    let held = store::conflicts::settle(c, link, &field.to_string())?.ok_or_else(|| {
        ItemError::Blocked(format!(
            "link {} has no held conflict on {field}; `trengo-sync conflicts` lists them",
            link.0
        ))
    })?;
    let (winner, loser) = if take_trengo {
        (&held.trengo_value, &held.ghl_value)
    } else {
        (&held.ghl_value, &held.trengo_value)
    };
    store::bases::put(c, link, BaseName::from(field), loser, now)?;
    store::ledger::record(
        c,
        &Entry::new(EntryKind::ConflictResolved, now)
            .link(link)
            .field(field.to_string())
            .side(if take_trengo { "trengo" } else { "ghl" })
            .change(loser.clone(), winner.clone())
            .losing(loser.clone())
            .detail("settled by `trengo-sync resolve`"),
    )?;
    Ok(held)
}

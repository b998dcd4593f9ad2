//! Which planned items a pause holds back (`trengo-sync pause`; the pauses live in
//! [`crate::store::controls`]).
//!
//! A pause holds writes, item by item: an item (the unit of failure) with a write to a paused
//! side is not applied at all, its store-only operations included, because committing a base
//! without its write would turn the held change into a settled one. The engine records a held
//! item as a held retry; lifting the pause makes it due, and the next pass reads its group
//! fresh and plans it again, so a change made while paused crosses after `resume` even though
//! the cursors moved on.
//!
//! What a pause of one link holds: every write naming the link, and the tag merge of the link's
//! contact (the managed tags are merged over all of the contact's tickets, so the paused
//! ticket's labels would otherwise still reach GHL).

use super::operation::{ItemKey, ItemPlan, Side};
use crate::store::controls::{PauseDirection, Pauses};

fn holds(direction: PauseDirection, side: Side) -> bool {
    match side {
        Side::Trengo => direction.holds_trengo(),
        Side::Ghl => direction.holds_ghl(),
    }
}

fn side_name(side: Side) -> &'static str {
    match side {
        Side::Trengo => "Trengo",
        Side::Ghl => "GHL",
    }
}

/// Why `item` is held back by a pause, or `None` when it may be applied.
pub fn held(item: &ItemPlan, pauses: &Pauses) -> Option<String> {
    if pauses.is_empty() {
        return None;
    }
    for op in &item.ops {
        let Some(side) = op.side() else { continue };
        if let Some(p) = &pauses.daemon
            && holds(p.direction, side)
        {
            return Some(format!(
                "writes to {} are paused ({}); `trengo-sync resume` lifts it",
                side_name(side),
                p.direction
            ));
        }
        if let Some(link) = op.link()
            && let Some((_, p)) = pauses.links.get(&link)
            && holds(p.direction, side)
        {
            return Some(format!(
                "link {} is paused ({}); `trengo-sync resume {}` lifts it",
                link.0, p.direction, link.0
            ));
        }
        if let ItemKey::Contact(contact) = &item.item
            && let Some((link, (_, p))) = pauses
                .links
                .iter()
                .filter(|(_, (c, p))| c == contact && holds(p.direction, side))
                .min_by_key(|(id, _)| **id)
        {
            return Some(format!(
                "the tags of contact {contact} wait: its link {} is paused ({}); \
                 `trengo-sync resume {}` lifts it",
                link.0, p.direction, link.0
            ));
        }
    }
    None
}

/// Splits a plan's items into those to apply and those a pause holds (with why).
pub fn split(items: Vec<ItemPlan>, pauses: &Pauses) -> (Vec<ItemPlan>, Vec<(ItemPlan, String)>) {
    let mut kept = Vec::new();
    let mut held_back = Vec::new();
    for item in items {
        match held(&item, pauses) {
            Some(why) => held_back.push((item, why)),
            None => kept.push(item),
        }
    }
    (kept, held_back)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::controls::Pause;
    use crate::sync::model::LinkId;
    use crate::sync::operation::Op;

    fn pause(direction: PauseDirection) -> Pause {
        Pause {
            direction,
            since: chrono::DateTime::UNIX_EPOCH,
        }
    }

    fn ticket_item(link: i64, op: fn(LinkId) -> Op) -> ItemPlan {
        ItemPlan {
            item: ItemKey::Ticket(link * 10),
            ops: vec![op(LinkId(link))],
        }
    }

    fn close(link: LinkId) -> Op {
        Op::CloseTicket {
            link,
            ticket_id: link.0 * 10,
        }
    }

    fn complete(link: LinkId) -> Op {
        Op::SetTaskCompleted {
            link,
            contact_id: "c".into(),
            task_id: "t".into(),
            completed: true,
        }
    }

    #[test]
    fn a_paused_direction_holds_only_writes_to_its_side() {
        let pauses = Pauses {
            daemon: Some(pause(PauseDirection::TrengoToGhl)),
            ..Pauses::default()
        };
        assert!(held(&ticket_item(1, complete), &pauses).is_some());
        assert!(held(&ticket_item(1, close), &pauses).is_none());
        let both = Pauses {
            daemon: Some(pause(PauseDirection::Both)),
            ..Pauses::default()
        };
        assert!(held(&ticket_item(1, close), &both).is_some());
    }

    #[test]
    fn a_paused_link_holds_its_writes_and_its_contacts_tags() {
        let mut pauses = Pauses::default();
        pauses
            .links
            .insert(LinkId(1), ("c".into(), pause(PauseDirection::Both)));
        assert!(held(&ticket_item(1, close), &pauses).is_some());
        assert!(held(&ticket_item(2, close), &pauses).is_none());
        let tags = |contact: &str| ItemPlan {
            item: ItemKey::Contact(contact.into()),
            ops: vec![Op::AddContactTags {
                contact_id: contact.into(),
                tags: Default::default(),
            }],
        };
        assert!(held(&tags("c"), &pauses).is_some());
        assert!(held(&tags("d"), &pauses).is_none());
    }
}

//! Tags: ticket labels ⇄ managed contact tags, a contact-level three-way set merge
//! (sync-model.md §3 "tags", §4.1).
//!
//! Tags live on the GHL contact, so the Trengo value of a contact is the union of the managed
//! labels over all its linked tickets, open or closed: closing a ticket must not strip the
//! contact's tags. A GHL add goes to each open linked ticket (none open: the most recently
//! updated one); a GHL remove goes to every linked ticket carrying the label, so the union agrees
//! afterwards and nothing ping-pongs. Unmanaged tags are never read into the merge. A label
//! that only a ticket leaving scope carried leaves the base rather than reading as removed.
//!
//! Against a stored base set, a tag is either in the base or not, so "added on one side,
//! removed on the other" cannot happen for the same tag: both sides moving a tag always moves it
//! the same way. That is why the tags policy never has to settle anything here.

use std::collections::BTreeSet;

use crate::sync::model::{ContactGroup, LinkView, Tag};
use crate::sync::operation::Op;
use crate::sync::policy::{Field, PlanSettings};

/// The tag ops of one contact group; `links` are its in-scope links and `leaving` the links
/// leaving scope this pass, each sorted by id.
pub(super) fn plan(
    group: &ContactGroup,
    links: &[&LinkView],
    leaving: &[&LinkView],
    settings: &PlanSettings,
) -> Vec<Op> {
    let direction = settings.directions.tags;
    let held = links.iter().any(|l| l.held.contains(&Field::Tags));
    if (links.is_empty() && leaving.is_empty())
        || held
        || !(direction.writes_ghl() || direction.writes_trengo())
    {
        return Vec::new();
    }
    let rule = &settings.tags;
    let contact_id = &group.contact.id;
    let trengo: BTreeSet<Tag> = links
        .iter()
        .flat_map(|l| rule.managed(&l.ticket.labels))
        .collect();
    let ghl = rule.managed(&group.contact.tags);
    // Never synced: an empty base, so the first sync is a union and removes nothing.
    let mut base = group
        .tag_base
        .as_ref()
        .map(|b| rule.managed(b))
        .unwrap_or_default();
    // Leaving scope deletes nothing (sync-model.md §2): labels that only a leaving ticket
    // carried drop out of the union, which must not read as a Trengo removal. They leave the
    // base instead, so the contact's tag is GHL's own from now on: like any GHL add, it goes
    // to the contact's open linked tickets, and nothing is removed anywhere.
    let departed: BTreeSet<Tag> = leaving
        .iter()
        .flat_map(|l| rule.managed(&l.ticket.labels))
        .filter(|tag| !trengo.contains(tag))
        .collect();
    base.retain(|tag| !departed.contains(tag));
    if links.is_empty() {
        // Nothing left to sync on this contact; a base without the departed labels keeps a
        // later link from reading them as removed.
        return set_base(group, base);
    }

    let mut merged = BTreeSet::new();
    let (mut add, mut remove) = (BTreeSet::new(), BTreeSet::new());
    let (mut attach, mut detach) = (Vec::new(), Vec::new());
    let every: BTreeSet<&Tag> = trengo.iter().chain(&ghl).chain(&base).collect();
    for tag in every {
        let (in_t, in_g, in_b) = (trengo.contains(tag), ghl.contains(tag), base.contains(tag));
        let keep = match (in_t != in_b, in_g != in_b) {
            (true, false) if direction.writes_ghl() => {
                if in_t { &mut add } else { &mut remove }.insert(tag.clone());
                in_t
            }
            (false, true) if direction.writes_trengo() => {
                if in_g {
                    for link in add_targets(links) {
                        attach.push(label_op(link, tag, true));
                    }
                } else {
                    for link in links.iter().filter(|l| l.ticket.labels.contains(tag)) {
                        detach.push(label_op(link, tag, false));
                    }
                }
                in_g
            }
            // Both moved: the same way, by construction (see the module doc).
            (true, true) => in_t,
            // Unchanged, or a change the direction keeps from travelling: the base stays.
            _ => in_b,
        };
        if keep {
            merged.insert(tag.clone());
        }
    }

    let mut ops = Vec::new();
    if !remove.is_empty() {
        ops.push(Op::RemoveContactTags {
            contact_id: contact_id.clone(),
            tags: remove,
        });
    }
    if !add.is_empty() {
        ops.push(Op::AddContactTags {
            contact_id: contact_id.clone(),
            tags: add,
        });
    }
    ops.extend(detach);
    ops.extend(attach);
    ops.extend(set_base(group, merged));
    ops
}

/// The op that records `tags` as the contact's base, if it differs from the stored one.
fn set_base(group: &ContactGroup, tags: BTreeSet<Tag>) -> Vec<Op> {
    if group.tag_base.as_ref() == Some(&tags) {
        return Vec::new();
    }
    vec![Op::SetTagBase {
        contact_id: group.contact.id.clone(),
        tags,
    }]
}

/// Where a GHL tag add goes: every open linked ticket, else the most recently updated one.
fn add_targets<'a>(links: &[&'a LinkView]) -> Vec<&'a LinkView> {
    let open: Vec<&LinkView> = links
        .iter()
        .copied()
        .filter(|l| l.ticket.status.is_open())
        .collect();
    if !open.is_empty() {
        return open;
    }
    links
        .iter()
        .copied()
        .max_by_key(|l| (l.ticket.updated_at, l.ticket.id))
        .into_iter()
        .collect()
}

fn label_op(link: &LinkView, tag: &Tag, attach: bool) -> Op {
    let (link, ticket_id, tag) = (link.link, link.ticket.id, tag.clone());
    if attach {
        Op::AttachLabel {
            link,
            ticket_id,
            tag,
        }
    } else {
        Op::DetachLabel {
            link,
            ticket_id,
            tag,
        }
    }
}

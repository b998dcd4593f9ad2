//! Comments: Trengo notes ⇄ GHL contact notes, append-only, never in conflict
//! (sync-model.md §3 "comments").
//!
//! Every unmapped Trengo internal note of a linked ticket is copied to the contact (customer
//! messages only when enabled); every unmapped GHL note of the contact made since the group's
//! first link is copied to one ticket: the one it names as `#<id>`, else the most recently
//! updated open linked ticket, else the most recently updated linked ticket. A copy carries a
//! marker naming its source ([`crate::sync::marker`]); a note with our marker is mapped to its
//! source instead of being copied (no echo), and a source whose copy already exists (a crash
//! before the map was committed) is mapped to that copy instead of being copied twice.

use std::collections::{BTreeMap, BTreeSet};

use crate::sync::marker;
use crate::sync::model::{ContactGroup, LinkView, NoteKind};
use crate::sync::operation::Op;
use crate::sync::policy::PlanSettings;

/// The comment ops of one contact group, each with the ticket whose item it belongs to.
/// `links` are the group's in-scope links, sorted by id.
pub(super) fn plan(
    group: &ContactGroup,
    links: &[&LinkView],
    settings: &PlanSettings,
) -> Vec<(i64, Op)> {
    let direction = settings.directions.comments;
    if links.is_empty() || !(direction.writes_ghl() || direction.writes_trengo()) {
        return Vec::new();
    }
    // Maps of every link of the group count, also of links leaving scope now.
    let mut mapped = Mapped::default();
    for link in &group.links {
        for (message_id, note_id) in &link.comments {
            mapped.messages.insert(*message_id);
            mapped.notes.insert(note_id.clone());
        }
    }
    let mut notes: Vec<_> = group.contact.notes.iter().collect();
    notes.sort_by(|a, b| a.id.cmp(&b.id));
    // GHL notes that are our copies of Trengo messages: (ticket, message) → note.
    let mut copies_in_ghl: BTreeMap<(i64, i64), &str> = BTreeMap::new();
    for note in &notes {
        if let Some(source) = marker::trengo_source(&note.body) {
            copies_in_ghl
                .entry((source.ticket_id, source.message_id))
                .or_insert(&note.id);
        }
    }

    let mut ops = Vec::new();

    // Trengo → GHL.
    for link in links {
        let mut messages: Vec<_> = link.ticket.notes.iter().collect();
        messages.sort_by_key(|m| m.message_id);
        for message in messages {
            if mapped.messages.contains(&message.message_id) {
                continue;
            }
            if let Some(source_note) = marker::ghl_source(&message.body) {
                // Our copy of a GHL note: map it, never copy it back (and when that note is
                // already paired, this is a duplicate copy: leave it alone).
                mapped.claim(link, message.message_id, &source_note, &mut ops);
                continue;
            }
            // A copy already in GHL (made before a crash lost the map): adopt it. If that
            // note is already paired, it is not this message's copy after all.
            if let Some(note_id) = copies_in_ghl.get(&(link.ticket.id, message.message_id))
                && mapped.claim(link, message.message_id, note_id, &mut ops)
            {
                continue;
            }
            let wanted = match message.kind {
                NoteKind::Internal => true,
                NoteKind::CustomerInbound | NoteKind::AgentOutbound => {
                    settings.include_customer_messages
                }
            };
            if wanted && direction.writes_ghl() {
                ops.push((
                    link.ticket.id,
                    Op::CreateGhlNote {
                        link: link.link,
                        contact_id: group.contact.id.clone(),
                        message_id: message.message_id,
                        body: marker::with_trengo_marker(
                            &message.body,
                            link.ticket.id,
                            message.message_id,
                        ),
                    },
                ));
            }
        }
    }

    // GHL → Trengo. Notes older than the group's first link are contact history: they stay.
    let since = links.iter().map(|l| l.created_at).min();
    for note in notes {
        if mapped.notes.contains(&note.id) {
            continue;
        }
        if let Some(source) = marker::trengo_source(&note.body) {
            // Our copy of a Trengo message: mapped above when its ticket is in the group;
            // otherwise it belongs to another contact's ticket and is left alone.
            if let Some(link) = links.iter().find(|l| l.ticket.id == source.ticket_id) {
                mapped.claim(link, source.message_id, &note.id, &mut ops);
            }
            continue;
        }
        if since.is_none_or(|since| note.date_added < since) || !direction.writes_trengo() {
            continue;
        }
        if let Some(link) = route(&note.body, links) {
            ops.push((
                link.ticket.id,
                Op::CreateTrengoNote {
                    link: link.link,
                    ticket_id: link.ticket.id,
                    note_id: note.id.clone(),
                    body: marker::with_ghl_marker(&note.body, &note.id),
                },
            ));
        }
    }
    ops
}

/// The ticket a GHL note goes to: the first `#<id>` naming a ticket of the group, else the most
/// recently updated open linked ticket, else the most recently updated linked ticket.
fn route<'a>(body: &str, links: &[&'a LinkView]) -> Option<&'a LinkView> {
    let named = marker::hash_ticket_ids(body)
        .into_iter()
        .find_map(|id| links.iter().copied().find(|l| l.ticket.id == id));
    let newest = |open_only: bool| {
        links
            .iter()
            .copied()
            .filter(|l| !open_only || l.ticket.status.is_open())
            .max_by_key(|l| (l.ticket.updated_at, l.ticket.id))
    };
    named.or_else(|| newest(true)).or_else(|| newest(false))
}

/// The message ⇄ note pairs known so far: the stored maps plus those found by marker this pass.
#[derive(Debug, Default)]
struct Mapped {
    messages: BTreeSet<i64>,
    notes: BTreeSet<String>,
}

impl Mapped {
    /// Maps a pair found by its marker, unless either end is already paired; says whether it
    /// mapped.
    fn claim(
        &mut self,
        link: &LinkView,
        message_id: i64,
        note_id: &str,
        ops: &mut Vec<(i64, Op)>,
    ) -> bool {
        if self.messages.contains(&message_id) || self.notes.contains(note_id) {
            return false;
        }
        self.messages.insert(message_id);
        self.notes.insert(note_id.to_owned());
        ops.push((
            link.ticket.id,
            Op::MapComment {
                link: link.link,
                message_id,
                note_id: note_id.to_owned(),
            },
        ));
        true
    }
}

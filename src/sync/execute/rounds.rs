//! The executor's side of a pass's rounds: round 1 cut into chunks (each person's ticket
//! links in one chunk, every other item in the first), and what a settled batch records of
//! the objects it wrote to, so that its own writes do not read as changes at the next poll.
//! The rounds themselves (linking, reading, settling side by side) are run by the engine
//! (`engine/rounds.rs`).

use std::collections::{BTreeSet, HashMap};

use crate::ghl::GhlClient;
use crate::sync::load::LoadedGroup;
use crate::sync::model::Tag;
use crate::sync::operation::{ItemPlan, Op, Plan};
use crate::sync::views;
use crate::trengo;

/// Who a ticket link is for: its contact's e-mail, else phone, else the ticket alone. Tickets of
/// one person resolve to one GHL contact, so keeping them in one chunk keeps each group read
/// once, in one chunk.
fn person(item: &ItemPlan) -> Option<String> {
    item.ops.iter().find_map(|op| match op {
        Op::LinkTicket {
            ticket_id,
            email,
            phone,
            ..
        } => Some(match (email, phone) {
            (Some(e), _) => format!("e:{}", e.trim().to_lowercase()),
            (None, Some(p)) => format!("p:{}", p.trim()),
            (None, None) => format!("t:{ticket_id}"),
        }),
        _ => None,
    })
}

/// Cuts round 1's items into chunks of about `size` ticket links, each person's links in one
/// chunk. Every other item (the changed groups' writes, task links) goes in the first chunk,
/// which is applied before round 2 starts; order is kept otherwise. Never empty.
pub(crate) fn chunks(items: Vec<ItemPlan>, size: usize) -> Vec<Vec<ItemPlan>> {
    let mut first = Vec::new();
    let mut people: Vec<Vec<ItemPlan>> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for item in items {
        match person(&item) {
            None => first.push(item),
            Some(who) => {
                let at = *index.entry(who).or_insert_with(|| {
                    people.push(Vec::new());
                    people.len() - 1
                });
                people[at].push(item);
            }
        }
    }
    let mut chunks = vec![first];
    let mut links = 0;
    for items in people {
        if links >= size {
            chunks.push(Vec::new());
            links = 0;
        }
        links += items.len();
        if let Some(last) = chunks.last_mut() {
            last.extend(items);
        }
    }
    chunks
}

/// The GHL contact an op writes to (its tags, notes or tasks), if it writes one.
fn ghl_contact_written(op: &Op) -> Option<&str> {
    match op {
        Op::AddContactTags { contact_id, .. }
        | Op::RemoveContactTags { contact_id, .. }
        | Op::CreateGhlNote { contact_id, .. }
        | Op::SetTaskCompleted { contact_id, .. }
        | Op::SetTaskAssignee { contact_id, .. } => Some(contact_id),
        _ => None,
    }
}

/// The tags a contact should carry after a plan's writes to it, from the tags it had when read.
fn tags_after(before: &BTreeSet<Tag>, ops: &[&Op]) -> BTreeSet<Tag> {
    let mut tags = before.clone();
    for op in ops {
        match op {
            Op::AddContactTags { tags: added, .. } => tags.extend(added.iter().cloned()),
            Op::RemoveContactTags { tags: removed, .. } => {
                tags.retain(|t| !removed.contains(t));
            }
            _ => {}
        }
    }
    tags
}

/// Whether a contact read back after our writes shows only our writes: its tags are the ones it
/// had when read with ours applied. A user's tag edit in between makes them differ, and then
/// nothing is recorded, so the next GHL poll reads the group and sees the edit.
fn only_our_writes(before: &BTreeSet<Tag>, ops: &[&Op], after: &BTreeSet<Tag>) -> bool {
    tags_after(before, ops) == *after
}

/// The print a ticket will show once our writes to it land ([`views::expected_ticket_print`]):
/// its labels as read with ours attached and detached, its status the one we set (done or not)
/// or the one it had, and one more message per note we posted. Recorded instead of reading the
/// ticket back, it makes the next listing that shows just that a non-change, while a customer's
/// message or an agent's label or status edit in between makes it differ, and then the listing
/// reads the group and sees the edit. None when the ops hold an assignment (which user id an
/// e-mail becomes is Trengo's to say) or anything else a print cannot foresee.
fn expected_print(before: &trengo::Ticket, ops: &[&Op]) -> Option<String> {
    let mut labels = views::labels(before);
    let mut done = None;
    let mut notes = 0;
    for op in ops {
        match op {
            Op::AttachLabel { tag, .. } => {
                labels.insert(tag.clone());
            }
            Op::DetachLabel { tag, .. } => {
                labels.remove(tag);
            }
            Op::CloseTicket { .. } => done = Some(true),
            Op::ReopenTicket { .. } => done = Some(false),
            Op::CreateTrengoNote { .. } => notes += 1,
            _ => return None,
        }
    }
    views::expected_ticket_print(before, &labels, done, notes)
}

/// The fingerprints to record for a settled batch's contacts, and the GHL reads it took.
///
/// Our own writes to a contact (tags; notes and tasks too, in case GHL counts them) move its
/// `dateUpdated`, so the print of the contact as read would not match the next GHL poll's
/// listing, and that poll would read every such group again (tens of thousands of reads
/// after a large backfill). So a contact we wrote to is read back once, and its print is
/// recorded when it shows only our writes ([`only_our_writes`]); a contact we did not write
/// to is recorded as read. A user's later edit moves `dateUpdated` past either print.
pub(crate) async fn contacts_after_writes(
    ghl: &GhlClient,
    plan: &Plan,
    loaded: &[LoadedGroup],
    failed: &BTreeSet<String>,
) -> (HashMap<String, String>, u64) {
    let mut prints = HashMap::new();
    let mut reads = 0;
    for g in loaded {
        let contact = &g.group.contact;
        if failed.contains(&contact.id) {
            continue;
        }
        let ops: Vec<&Op> = plan
            .ops()
            .filter(|op| ghl_contact_written(op) == Some(contact.id.as_str()))
            .collect();
        if ops.is_empty() {
            prints.insert(contact.id.clone(), g.contact_print.clone());
            continue;
        }
        reads += 1;
        match ghl.contact(&contact.id).await {
            Ok(now) => {
                let after = views::contact(&now, &[]).tags;
                if only_our_writes(&contact.tags, &ops, &after) {
                    prints.insert(contact.id.clone(), views::contact_fingerprint(&now));
                }
            }
            // Nothing recorded: the next poll reads the group, as it would have anyway.
            Err(e) => {
                tracing::debug!(contact = %contact.id, error = %e, "contact not read back");
            }
        }
    }
    (prints, reads)
}

/// Brings `prints` (ticket id → the print to record) up to date with a settled batch's own
/// writes, without a call.
///
/// A ticket's print was taken when it was listed or read, *before* the pass wrote to it (a
/// label, a note carried across, a close), and a ticket the pass made has none. Recorded
/// like that, the next listing would see the pass's own writes as a change and read every
/// such group again: after a backfill of 10,000 tickets, hours of reads at the documented
/// limits with nothing to write, while every other change waits (docs/benchmarks.md,
/// "Right after the backfill"). So a ticket we wrote to gets the print it will show once
/// our writes land ([`expected_print`]; reading it back cost a Trengo call a ticket, 11 %
/// more calls in a backfill), which the next listing of it matches and replaces with what
/// it lists; a ticket of a whole group read that the batch did not write to and that has
/// no print yet (one the pass made) is recorded as read.
pub(crate) fn tickets_after_writes(
    items: &[ItemPlan],
    loaded: &[LoadedGroup],
    tickets: &HashMap<i64, trengo::Ticket>,
    failed: &BTreeSet<String>,
    prints: &mut HashMap<i64, String>,
) {
    for g in loaded {
        if failed.contains(&g.group.contact.id) {
            continue;
        }
        // A group read without its messages must leave the print as listed: recording a
        // newer message count would skip messages nobody read.
        let whole = g.ghl_notes.is_some();
        for link in &g.group.links {
            let id = link.ticket.id;
            let Some(before) = tickets.get(&id) else {
                continue;
            };
            let ops: Vec<&Op> = items
                .iter()
                .flat_map(|i| &i.ops)
                .filter(|op| op.ticket_written() == Some(id))
                .collect();
            if ops.is_empty() {
                if whole && !prints.contains_key(&id) {
                    prints.insert(id, views::ticket_fingerprint(before));
                }
                continue;
            }
            let listed = prints.remove(&id);
            if !whole && listed.is_none() {
                continue;
            }
            // None: nothing recorded, and the next listing reads the group, as it would have.
            if let Some(print) = expected_print(before, &ops) {
                prints.insert(id, print);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::model::LinkId;
    use crate::sync::operation::ItemKey;

    fn link(ticket: i64, email: Option<&str>) -> ItemPlan {
        ItemPlan {
            item: ItemKey::Ticket(ticket),
            ops: vec![Op::LinkTicket {
                ticket_id: ticket,
                email: email.map(str::to_string),
                phone: None,
                name: None,
                title: format!("t{ticket}"),
                url: format!("https://app.trengo.com/tickets/{ticket}"),
            }],
        }
    }

    fn tags(names: &[&str]) -> BTreeSet<Tag> {
        names.iter().map(|n| Tag::new(n)).collect()
    }

    #[test]
    fn chunks_keep_each_persons_tickets_together_and_other_items_first() {
        let status = ItemPlan {
            item: ItemKey::Ticket(1),
            ops: vec![Op::CloseTicket {
                link: LinkId(1),
                ticket_id: 1,
            }],
        };
        let items = vec![
            status,
            link(10, Some("Ann@x.io")),
            link(11, Some("bob@x.io")),
            link(12, Some("ann@x.io ")),
            link(13, None),
            link(14, Some("bob@x.io")),
        ];
        let chunks = chunks(items, 2);
        let ids: Vec<Vec<String>> = chunks
            .iter()
            .map(|c| c.iter().map(|i| i.item.to_string()).collect())
            .collect();
        assert_eq!(
            ids,
            vec![
                vec!["ticket #1", "ticket #10", "ticket #12"],
                vec!["ticket #11", "ticket #14"],
                vec!["ticket #13"],
            ]
        );
    }

    #[test]
    fn a_plan_without_links_is_one_chunk() {
        assert_eq!(chunks(Vec::new(), 100).len(), 1);
        assert_eq!(chunks(vec![link(1, None)], 100).len(), 1);
    }

    #[test]
    fn a_contact_showing_only_our_tag_writes_is_recorded() {
        let add = Op::AddContactTags {
            contact_id: "c".into(),
            tags: tags(&["vip"]),
        };
        let remove = Op::RemoveContactTags {
            contact_id: "c".into(),
            tags: tags(&["old"]),
        };
        let before = tags(&["lead", "old"]);
        assert!(only_our_writes(
            &before,
            &[&add, &remove],
            &tags(&["lead", "vip"])
        ));
    }

    #[test]
    fn a_users_tag_edit_between_our_read_and_the_read_back_is_not_absorbed() {
        let add = Op::AddContactTags {
            contact_id: "c".into(),
            tags: tags(&["vip"]),
        };
        let before = tags(&["lead"]);
        // The user removed `lead` while we added `vip`: the next poll must see it.
        assert!(!only_our_writes(&before, &[&add], &tags(&["vip"])));
        // The user added a tag of their own meanwhile.
        assert!(!only_our_writes(
            &before,
            &[&add],
            &tags(&["lead", "vip", "hot"])
        ));
    }

    fn ticket(status: &str, labels: &[&str], messages: i64) -> trengo::Ticket {
        views::sample_ticket(status, labels, messages, None)
    }

    /// Whether `after`, listed after our `ops` to `before`, matches the print expected of them.
    fn ticket_shows_only_our_writes(
        before: &trengo::Ticket,
        ops: &[&Op],
        after: &trengo::Ticket,
    ) -> bool {
        expected_print(before, ops).is_some_and(|expected| {
            views::ticket_print_matches(&expected, &views::ticket_fingerprint(after), after)
        })
    }

    #[test]
    fn a_ticket_showing_only_our_label_note_and_close_is_recorded() {
        let attach = Op::AttachLabel {
            link: LinkId(1),
            ticket_id: 7,
            tag: Tag::new("vip"),
        };
        let detach = Op::DetachLabel {
            link: LinkId(1),
            ticket_id: 7,
            tag: Tag::new("old"),
        };
        let note = Op::CreateTrengoNote {
            link: LinkId(1),
            ticket_id: 7,
            note_id: "n".into(),
            body: "b".into(),
        };
        let close = Op::CloseTicket {
            link: LinkId(1),
            ticket_id: 7,
        };
        let before = ticket("OPEN", &["ghl", "old"], 2);
        assert!(ticket_shows_only_our_writes(
            &before,
            &[&attach, &detach, &note, &close],
            &ticket("CLOSED", &["ghl", "vip"], 3)
        ));
        assert!(ticket_shows_only_our_writes(
            &before,
            &[&note],
            &ticket("OPEN", &["ghl", "old"], 3)
        ));
    }

    #[test]
    fn a_customers_message_or_an_agents_edit_between_our_read_and_the_next_listing_is_not_absorbed()
    {
        let note = Op::CreateTrengoNote {
            link: LinkId(1),
            ticket_id: 7,
            note_id: "n".into(),
            body: "b".into(),
        };
        let before = ticket("OPEN", &["ghl"], 2);
        // A customer wrote meanwhile: one message more than our note.
        assert!(!ticket_shows_only_our_writes(
            &before,
            &[&note],
            &ticket("OPEN", &["ghl"], 4)
        ));
        // An agent closed it, or labelled it.
        assert!(!ticket_shows_only_our_writes(
            &before,
            &[&note],
            &ticket("CLOSED", &["ghl"], 3)
        ));
        assert!(!ticket_shows_only_our_writes(
            &before,
            &[&note],
            &ticket("OPEN", &["ghl", "vip"], 3)
        ));
        // An assignment is never taken as ours.
        let assign = Op::AssignTicket {
            link: LinkId(1),
            ticket_id: 7,
            email: "a@x.io".into(),
        };
        assert!(!ticket_shows_only_our_writes(
            &before,
            &[&assign],
            &ticket("ASSIGNED", &["ghl"], 2)
        ));
    }
}

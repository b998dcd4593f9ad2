//! Applying a pass's plan: round 1 (the changed groups and the items entering scope) in
//! chunks, and round 2 (reading and settling the groups of the links round 1 made) behind it.
//!
//! Round 1's links cost GHL calls (find the contact, list its tasks, create one); round 2's
//! reads cost mostly Trengo calls (each ticket and its messages). Run one after the other, a
//! backfill of thousands of tickets spends hours on one API while the other idles. So the
//! links are made a chunk at a time, and three stages run side by side, joined by bounded
//! channels: *linking* applies a chunk of round 1; *reading* loads the groups of the previous
//! chunk's new links and plans them (the planner stays pure); *settling* applies that plan
//! (the executor stays the only writer). The stages touch different contacts: chunks are cut
//! per person, and a group is never read while a plan for it is still being applied (that read
//! could miss a note being copied and plan it again).
//!
//! Nothing here moves a cursor: the pass commits them after every stage is done, so a crash
//! anywhere resumes the backfill from its start, where the links already made are found in the
//! store (and their groups, once settled, are skipped by their recorded fingerprints).

use std::collections::{BTreeSet, HashMap, VecDeque};

use chrono::{DateTime, Utc};
use tokio::sync::{mpsc, watch};

use super::backfill::{BackfillRun, Round, makes_link};
use super::{Engine, EngineError, PassOptions, PassReport};
use crate::sync::detect::Detected;
use crate::sync::execute::PassFacts;
use crate::sync::load::{self, GroupReads};
use crate::sync::model::{PlanInput, Tag};
use crate::sync::operation::{ItemKey, ItemPlan, Op, Plan};
use crate::sync::views;
use crate::trengo;

/// Tickets linked per chunk: small enough that the first chunk (linked before anything can
/// overlap it) is a sliver of a large backfill, large enough that a chunk's groups keep
/// `GROUP_READS_AT_ONCE` reads busy.
const LINKS_PER_CHUNK: usize = 100;

/// Round 1 as planned, ready to apply.
pub(super) struct RoundOne {
    /// The plan.
    pub plan: Plan,
    /// The groups it was planned from.
    pub loaded: Vec<load::LoadedGroup>,
    /// The pass's start (the planner's `now`).
    pub started: DateTime<Utc>,
}

/// A chunk's new links, on their way to round 2.
struct Batch {
    /// Order of the chunk (1 for the first).
    seq: u64,
    /// Contacts that got a link.
    contacts: BTreeSet<String>,
    /// Links the chunk planned (made or failed): what round 2 settles, for the estimate.
    links: u64,
}

/// A batch read and planned, on its way to be applied.
struct Planned {
    batch: Batch,
    plan: Plan,
    reads: GroupReads,
}

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
pub(super) fn chunks(items: Vec<ItemPlan>, size: usize) -> Vec<Vec<ItemPlan>> {
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

/// Ticket id → contact, over some loaded groups (to charge a ticket's failure to its group).
fn ticket_contacts(loaded: &[load::LoadedGroup]) -> HashMap<i64, String> {
    loaded
        .iter()
        .flat_map(|g| {
            g.group
                .links
                .iter()
                .map(move |l| (l.ticket.id, g.group.contact.id.clone()))
        })
        .collect()
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
pub(super) fn only_our_writes(before: &BTreeSet<Tag>, ops: &[&Op], after: &BTreeSet<Tag>) -> bool {
    tags_after(before, ops) == *after
}

/// The print a ticket will show once our writes to it land ([`views::expected_ticket_print`]):
/// its labels as read with ours attached and detached, its status the one we set (done or not)
/// or the one it had, and one more message per note we posted. Recorded instead of reading the
/// ticket back, it makes the next listing that shows just that a non-change, while a customer's
/// message or an agent's label or status edit in between makes it differ, and then the listing
/// reads the group and sees the edit. None when the ops hold an assignment (which user id an
/// e-mail becomes is Trengo's to say) or anything else a print cannot foresee.
pub(super) fn expected_print(before: &trengo::Ticket, ops: &[&Op]) -> Option<String> {
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

impl Engine {
    /// Applies round 1 and, behind it, round 2 (see the module doc). Sets `report.braked` when
    /// a round-2 plan trips the brake; the pass then commits no cursor.
    pub(super) async fn apply_rounds(
        &self,
        round: RoundOne,
        facts: &mut PassFacts,
        work: &mut Detected,
        report: &mut PassReport,
        backfill: Option<&BackfillRun>,
        options: PassOptions,
    ) -> Result<(), EngineError> {
        let RoundOne {
            plan,
            loaded,
            started,
        } = round;
        let mut chunks = chunks(plan.items.clone(), LINKS_PER_CHUNK).into_iter();
        let first = chunks.next().unwrap_or_default();
        let chunks: Vec<Vec<ItemPlan>> = chunks.collect();
        report.plans.push(plan);
        let progress = backfill.map(|b| (b, Round::First));

        // The first chunk alone: it holds every write to the changed groups, whose
        // fingerprints are recorded before any of their groups is read again.
        let mut failed = BTreeSet::new();
        let contacts = self
            .apply_items(
                &first,
                facts,
                &ticket_contacts(&loaded),
                report,
                &mut failed,
                progress,
            )
            .await?;
        Self::tickets_after_writes(
            &first,
            &loaded,
            &facts.tickets,
            &failed,
            &mut work.ticket_prints,
        );
        self.record_seen(
            &mut work.ticket_prints,
            &mut work.contact_prints,
            &loaded,
            &failed,
        )
        .await?;
        let first_batch = Batch {
            seq: 1,
            contacts,
            links: first.iter().filter(|i| makes_link(i)).count() as u64,
        };

        let (link_tx, mut link_rx) = mpsc::channel::<Batch>(1);
        let (plan_tx, mut plan_rx) = mpsc::channel::<Planned>(1);
        // The last batch settled, so that reading waits for a group still being applied.
        let (settled_tx, settled_rx) = watch::channel(0u64);
        // Linking only needs its tickets and the users; settling keeps the pass's facts.
        let linked_tickets: BTreeSet<i64> = chunks
            .iter()
            .flatten()
            .flat_map(|i| &i.ops)
            .filter_map(|op| match op {
                Op::LinkTicket { ticket_id, .. } => Some(*ticket_id),
                _ => None,
            })
            .collect();
        let mut linking_facts = PassFacts {
            tickets: linked_tickets
                .iter()
                .filter_map(|id| Some((*id, facts.tickets.get(id)?.clone())))
                .collect(),
            directory: facts.directory.clone(),
            labels: facts.labels.clone(),
        };
        let directory = facts.directory.clone();
        let fresh = &work.tickets;
        let ticket_prints = &mut work.ticket_prints;

        let linking = async {
            let mut part = PassReport::default();
            let mut failed = BTreeSet::new();
            if link_tx.send(first_batch).await.is_err() {
                return Ok(part);
            }
            for (seq, chunk) in (2..).zip(chunks) {
                let contacts = self
                    .apply_items(
                        &chunk,
                        &mut linking_facts,
                        &HashMap::new(),
                        &mut part,
                        &mut failed,
                        progress,
                    )
                    .await?;
                let batch = Batch {
                    seq,
                    contacts,
                    links: chunk.iter().filter(|i| makes_link(i)).count() as u64,
                };
                // Closed: settling stopped (the brake); link no further.
                if link_tx.send(batch).await.is_err() {
                    break;
                }
            }
            drop(link_tx);
            Ok::<_, EngineError>(part)
        };

        let reading = async {
            let mut settled_rx = settled_rx;
            // Batches sent to settling and not settled yet, with their contacts.
            let mut pending: VecDeque<(u64, BTreeSet<String>)> = VecDeque::new();
            while let Some(batch) = link_rx.recv().await {
                let settled = *settled_rx.borrow();
                pending.retain(|(seq, _)| *seq > settled);
                let wait = pending
                    .iter()
                    .filter(|(_, contacts)| !contacts.is_disjoint(&batch.contacts))
                    .map(|(seq, _)| *seq)
                    .max();
                if let Some(seq) = wait
                    && settled_rx.wait_for(|s| *s >= seq).await.is_err()
                {
                    break;
                }
                // A new link's notes and tags cross now: its group is read whole.
                let reads = self
                    .loader()
                    .groups(
                        &batch.contacts,
                        &directory,
                        fresh,
                        &HashMap::new(),
                        backfill,
                        Round::Second,
                    )
                    .await;
                let plan = crate::sync::plan(&PlanInput {
                    now: started,
                    contacts: reads.groups.clone(),
                    candidates: Vec::new(),
                    settings: self.settings.plan.clone(),
                });
                pending.push_back((batch.seq, batch.contacts.clone()));
                if plan_tx.send(Planned { batch, plan, reads }).await.is_err() {
                    break;
                }
            }
            drop(plan_tx);
            Ok::<_, EngineError>(())
        };

        let settling = async {
            let mut part = PassReport::default();
            while let Some(Planned {
                batch,
                plan,
                mut reads,
            }) = plan_rx.recv().await
            {
                self.record_retries(std::mem::take(&mut reads.retries))
                    .await?;
                facts.tickets.extend(reads.tickets);
                part.failed.extend(
                    reads.failed.iter().map(|(contact, reason)| {
                        (ItemKey::Contact(contact.clone()), reason.clone())
                    }),
                );
                if let Some(brake) = &plan.brake
                    && !options.allow_mass_change
                {
                    self.record_brake(brake).await?;
                    part.braked = Some(brake.clone());
                    part.plans.push(plan);
                    break;
                }
                let mut failed = BTreeSet::new();
                let mut cost = reads.cost;
                self.apply_items(
                    &plan.items,
                    facts,
                    &ticket_contacts(&reads.loaded),
                    &mut part,
                    &mut failed,
                    backfill.map(|b| (b, Round::Second)),
                )
                .await?;
                if let Some(b) = backfill {
                    cost += plan.items.iter().map(|i| b.item_cost(i)).sum::<u64>();
                }
                let (mut contact_prints, reread) = self
                    .contacts_after_writes(&plan, &reads.loaded, &failed)
                    .await;
                Self::tickets_after_writes(
                    &plan.items,
                    &reads.loaded,
                    &facts.tickets,
                    &failed,
                    ticket_prints,
                );
                if let Some(b) = backfill {
                    let units = b.cost(0, reread);
                    b.advanced(units, Round::Second, self.clock.now());
                    cost += units;
                }
                self.record_seen(ticket_prints, &mut contact_prints, &reads.loaded, &failed)
                    .await?;
                if let Some(b) = backfill {
                    b.settled(batch.links, cost, self.clock.now());
                }
                part.plans.push(plan);
                let _ = settled_tx.send(batch.seq);
            }
            drop(settled_tx);
            Ok::<_, EngineError>(part)
        };

        // The first error (a store failure, the crash switch) drops the other stages where
        // they wait, as a crash would: every write they made is committed with its intent.
        let (linked, (), settled) = tokio::try_join!(linking, reading, settling)?;
        for part in [linked, settled] {
            report.applied_items += part.applied_items;
            report.writes.trengo += part.writes.trengo;
            report.writes.ghl += part.writes.ghl;
            report.failed.extend(part.failed);
            report.held.extend(part.held);
            report.plans.extend(part.plans);
            if part.braked.is_some() {
                report.braked = part.braked;
            }
        }
        Ok(())
    }

    /// The fingerprints to record for a settled batch's contacts, and the GHL reads it took.
    ///
    /// Our own writes to a contact (tags; notes and tasks too, in case GHL counts them) move its
    /// `dateUpdated`, so the print of the contact as read would not match the next GHL poll's
    /// listing, and that poll would read every such group again (tens of thousands of reads
    /// after a large backfill). So a contact we wrote to is read back once, and its print is
    /// recorded when it shows only our writes ([`only_our_writes`]); a contact we did not write
    /// to is recorded as read. A user's later edit moves `dateUpdated` past either print.
    async fn contacts_after_writes(
        &self,
        plan: &Plan,
        loaded: &[load::LoadedGroup],
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
            match self.ghl.contact(&contact.id).await {
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
    fn tickets_after_writes(
        items: &[ItemPlan],
        loaded: &[load::LoadedGroup],
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::model::LinkId;

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

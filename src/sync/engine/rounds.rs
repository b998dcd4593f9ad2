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
//!
//! How round 1 is cut into chunks, and the prints a settled batch records of what it wrote to,
//! are the executor's (`sync/execute/rounds.rs`); every store write here goes through it.

use std::collections::{BTreeSet, HashMap, VecDeque};

use chrono::{DateTime, Utc};
use tokio::sync::{mpsc, watch};

use super::backfill::{BackfillRun, Round, makes_link};
use super::{Engine, EngineError, PassOptions, PassReport};
use crate::sync::detect::Detected;
use crate::sync::execute::PassFacts;
use crate::sync::execute::rounds::{chunks, contacts_after_writes, tickets_after_writes};
use crate::sync::load::{self, GroupReads};
use crate::sync::model::PlanInput;
use crate::sync::operation::{ItemKey, ItemPlan, Op, Plan};
use crate::sync::reason::ReasonCode as _;

/// Tickets linked per chunk: small enough that the first chunk (linked before anything can
/// overlap it) is a sliver of a large backfill, large enough that a chunk's groups keep
/// `GROUP_READS_AT_ONCE` reads busy.
const LINKS_PER_CHUNK: usize = 100;

/// Round 1 as planned, ready to apply.
pub(super) struct RoundOne {
    /// Round 1's plan, whole (the brake has seen it).
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

/// Marks the contact of an item that was not applied (failed or held), so its group's print
/// is not recorded and the change is seen again.
fn not_recorded(
    contacts: &mut BTreeSet<String>,
    item: &ItemKey,
    ticket_contact: &HashMap<i64, String>,
) {
    match item {
        ItemKey::Contact(c) => {
            contacts.insert(c.clone());
        }
        ItemKey::Ticket(t) => {
            if let Some(c) = ticket_contact.get(t) {
                contacts.insert(c.clone());
            }
        }
        ItemKey::Task { .. } | ItemKey::Tasks(_) | ItemKey::Pair(_) => {}
    }
}

impl Engine {
    /// Applies items in order, each failing on its own (to the retry table, its contact into
    /// `failed`); returns the contacts that got new links. `progress` counts each item done
    /// against the backfill, in the round it belongs to.
    // The round's pieces travel separately: bundling them would only rename the list.
    #[allow(clippy::too_many_arguments)]
    async fn apply_items(
        &self,
        items: &[ItemPlan],
        facts: &mut PassFacts,
        ticket_contact: &HashMap<i64, String>,
        report: &mut PassReport,
        failed_contacts: &mut BTreeSet<String>,
        progress: Option<(&BackfillRun, Round)>,
    ) -> Result<BTreeSet<String>, EngineError> {
        let mut new_contacts = BTreeSet::new();
        for item in items {
            let held = {
                let pauses = self.pauses.lock().unwrap_or_else(|e| e.into_inner());
                crate::sync::pause::held(item, &pauses)
            };
            if let Some(why) = held {
                // Not applied, and its group's print not recorded: it comes back on `resume`.
                tracing::info!(item = %item.item, %why, "item held by a pause");
                self.recorder().hold(&item.item, &why).await?;
                report.held.push((item.item.to_string(), why));
                not_recorded(failed_contacts, &item.item, ticket_contact);
                continue;
            }
            let mut executor = self.executor(facts);
            match executor.apply(item).await {
                Ok(applied) => {
                    report.applied_items += 1;
                    report.writes.trengo += applied.trengo;
                    report.writes.ghl += applied.ghl;
                    metrics::counter!("trengo_sync_operations_total", "side" => "trengo")
                        .increment(applied.trengo);
                    metrics::counter!("trengo_sync_operations_total", "side" => "ghl")
                        .increment(applied.ghl);
                    self.clear_item(item.item.clone()).await?;
                    for op in &item.ops {
                        match op {
                            Op::LinkTicket { ticket_id, .. } => {
                                let id = *ticket_id;
                                if let Some(l) = self
                                    .reader
                                    .call(move |s| crate::store::links::by_ticket(s.conn(), id))
                                    .await?
                                {
                                    new_contacts.insert(l.ghl_contact_id);
                                }
                            }
                            Op::LinkTask { contact_id, .. } | Op::AdoptTask { contact_id, .. } => {
                                new_contacts.insert(contact_id.clone());
                            }
                            _ => {}
                        }
                    }
                }
                Err(e) if e.is_crash() => return Err(EngineError::Crashed),
                Err(e) => {
                    tracing::warn!(item = %item.item, error = %e, "item failed; it will be retried");
                    metrics::counter!("trengo_sync_errors_total").increment(1);
                    self.fail_item(&item.item, &e.reason_code()).await?;
                    report.failed.push((item.item.clone(), e.to_string()));
                    not_recorded(failed_contacts, &item.item, ticket_contact);
                }
            }
            if let Some((b, round)) = progress {
                b.advanced(b.item_cost(item), round, self.clock.now());
            }
        }
        Ok(new_contacts)
    }

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
        tickets_after_writes(
            &first,
            &loaded,
            &facts.tickets,
            &failed,
            &mut work.ticket_prints,
        );
        self.recorder()
            .seen(
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
                    self.recorder().brake(brake).await?;
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
                let (mut contact_prints, reread) =
                    contacts_after_writes(&self.ghl, &plan, &reads.loaded, &failed).await;
                tickets_after_writes(
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
                self.recorder()
                    .seen(ticket_prints, &mut contact_prints, &reads.loaded, &failed)
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
}

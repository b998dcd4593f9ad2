//! The pure planner: sync-model.md §3–4 as a function from both sides' normalised values, the
//! bases and the settings to a [`Plan`].
//!
//! No I/O, no clock (the pass's time is in the input), no randomness; the output is sorted by
//! item key and, within an item, by the ids of what it touches, so the same input always gives
//! the same plan. Each rule has its own file:
//!
//! - `fields`: status and assignee, the per-link three-way merge;
//! - `tags`: labels ⇄ managed contact tags, the contact-level set merge;
//! - `comments`: notes, append-only, with markers instead of echoes;
//! - this file: the link life (new links, adoption, leaving scope), groups read in part (no
//!   contact item) and the brake.

mod comments;
pub(crate) mod fields;
mod tags;

use std::collections::{BTreeMap, BTreeSet};

use super::model::{Candidate, LinkView, PlanInput};
use super::operation::{BrakeReport, ItemKey, ItemPlan, Op, Plan};
use super::policy::PlanSettings;

/// Ops collected per item while planning.
#[derive(Debug, Default)]
struct Items(BTreeMap<ItemKey, Vec<Op>>);

impl Items {
    fn push(&mut self, item: ItemKey, op: Op) {
        self.0.entry(item).or_default().push(op);
    }

    fn extend(&mut self, item: ItemKey, ops: impl IntoIterator<Item = Op>) {
        let mut ops = ops.into_iter().peekable();
        if ops.peek().is_some() {
            self.0.entry(item).or_default().extend(ops);
        }
    }

    fn into_plan(self, settings: &PlanSettings, active_links: usize) -> Plan {
        let items: Vec<ItemPlan> = self
            .0
            .into_iter()
            .filter(|(_, ops)| !ops.is_empty())
            .map(|(item, ops)| ItemPlan { item, ops })
            .collect();
        let mut plan = Plan { items, brake: None };
        plan.brake = brake(&plan, settings, active_links);
        plan
    }
}

/// Plans one pass.
pub fn plan(input: &PlanInput) -> Plan {
    let settings = &input.settings;
    let mut items = Items::default();
    let mut linked_tickets = BTreeSet::new();
    let mut active_links = 0;

    let mut groups: Vec<_> = input.contacts.iter().collect();
    groups.sort_by(|a, b| a.contact.id.cmp(&b.contact.id));
    for group in groups {
        let mut links: Vec<&LinkView> = group.links.iter().collect();
        links.sort_by_key(|l| l.link);
        active_links += links.len();
        linked_tickets.extend(links.iter().map(|l| l.ticket.id));

        // Leaving scope ends syncing and nothing else: no field of that link is planned. The
        // unlink shares the contact's item with its tag merge: the labels only a leaving
        // ticket carried leave the tag base, and both must commit together, or a failed tag
        // item would leave a base that reads those labels as removed (see `tags`).
        let (in_scope, leaving): (Vec<&LinkView>, Vec<&LinkView>) =
            links.iter().copied().partition(|l| l.in_scope);
        for link in &in_scope {
            let item = ItemKey::Ticket(link.ticket.id);
            items.extend(item.clone(), fields::status(link, &group.contact, settings));
            if settings.assignee_enabled {
                items.extend(item, fields::assignee(link, &group.contact, settings));
            }
        }
        for (ticket_id, op) in comments::plan(group, &in_scope, settings) {
            items.push(ItemKey::Ticket(ticket_id), op);
        }
        // A group read in part gets no contact item: its tag merge would read the unread
        // tickets' labels as removed, and an unlink commits with the tag merge (below). The
        // loader reads a group with a leaving link whole, so only tags wait here, for a hint,
        // poll or sweep that reads the whole group.
        if group.partial {
            continue;
        }
        for link in &leaving {
            let end = match link.gone {
                Some(side) => Op::EndGone {
                    link: link.link,
                    side,
                },
                None => Op::Unlink { link: link.link },
            };
            items.push(ItemKey::Contact(group.contact.id.clone()), end);
        }
        items.extend(
            ItemKey::Contact(group.contact.id.clone()),
            tags::plan(group, &in_scope, &leaving, settings),
        );
    }

    candidates(&input.candidates, &linked_tickets, settings, &mut items);
    items.into_plan(settings, active_links)
}

/// Links for items entering scope (sync-model.md §2). Adoption goes first: a task that names a
/// ticket of this account is linked to it, and that ticket then gets no second task.
fn candidates(
    candidates: &[Candidate],
    linked_tickets: &BTreeSet<i64>,
    settings: &PlanSettings,
    items: &mut Items,
) {
    let mut tasks: Vec<_> = candidates
        .iter()
        .filter_map(|c| match c {
            Candidate::Task {
                task,
                contact,
                ticket_url_of_this_account,
            } => Some((task, contact, *ticket_url_of_this_account)),
            Candidate::Ticket { .. } => None,
        })
        .collect();
    tasks.sort_by(|a, b| a.0.id.cmp(&b.0.id));

    // Tickets claimed this pass, by an existing link or by an adoption.
    let mut claimed = linked_tickets.clone();
    for (task, contact, named_ticket) in tasks {
        match named_ticket {
            Some(ticket_id) => {
                // A second task naming an already linked ticket is a duplicate: leave it alone.
                if !claimed.insert(ticket_id) {
                    continue;
                }
                items.push(
                    ItemKey::Task {
                        contact: contact.id.clone(),
                        task: task.id.clone(),
                    },
                    Op::AdoptTask {
                        task_id: task.id.clone(),
                        contact_id: contact.id.clone(),
                        ticket_id,
                    },
                );
            }
            None if settings.ghl_to_trengo_links => items.push(
                ItemKey::Task {
                    contact: contact.id.clone(),
                    task: task.id.clone(),
                },
                Op::LinkTask {
                    task_id: task.id.clone(),
                    contact_id: contact.id.clone(),
                    title: task.title.clone(),
                    body: task.body.clone(),
                },
            ),
            None => {}
        }
    }

    let mut tickets: Vec<_> = candidates
        .iter()
        .filter(|c| matches!(c, Candidate::Ticket { .. }))
        .collect();
    tickets.sort_by_key(|c| match c {
        Candidate::Ticket { ticket, .. } => ticket.id,
        Candidate::Task { .. } => i64::MIN,
    });
    for candidate in tickets {
        if let Candidate::Ticket {
            ticket,
            contact_email,
            contact_phone,
            contact_name,
            url,
        } = candidate
        {
            if !claimed.insert(ticket.id) {
                continue;
            }
            let title = ticket
                .subject
                .as_deref()
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .unwrap_or_else(|| format!("Trengo ticket #{}", ticket.id));
            items.push(
                ItemKey::Ticket(ticket.id),
                Op::LinkTicket {
                    ticket_id: ticket.id,
                    email: contact_email.clone(),
                    phone: contact_phone.clone(),
                    name: contact_name.clone(),
                    title,
                    url: url.clone(),
                },
            );
        }
    }
}

/// The mass-change brake (sync-model.md §4.7): too many links closed, completed or ended at once
/// usually means a broken scope rule or a wiped side, not a real change.
fn brake(plan: &Plan, settings: &PlanSettings, active_links: usize) -> Option<BrakeReport> {
    let (mut closes, mut completions, mut unlinks) = (0, 0, 0);
    let mut affected = BTreeSet::new();
    for op in plan.ops() {
        match op {
            Op::CloseTicket { link, .. } => {
                closes += 1;
                affected.insert(*link);
            }
            Op::SetTaskCompleted {
                link,
                completed: true,
                ..
            } => {
                completions += 1;
                affected.insert(*link);
            }
            Op::Unlink { link } | Op::EndGone { link, .. } => {
                unlinks += 1;
                affected.insert(*link);
            }
            _ => {}
        }
    }
    let limit = settings.brake.max_fraction * active_links as f64;
    let tripped = affected.len() >= settings.brake.min_links && affected.len() as f64 > limit;
    tripped.then_some(BrakeReport {
        closes,
        completions,
        unlinks,
        affected_links: affected.len(),
        active_links,
        max_fraction: settings.brake.max_fraction,
        min_links: settings.brake.min_links,
    })
}

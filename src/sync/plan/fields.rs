//! Status and assignee: the per-link three-way merge (sync-model.md §4.1).
//!
//! A side has changed a field when its current value differs from the base; a missing base
//! counts as both sides changed (equal values are then just recorded). One side changed:
//! propagate, if the field's direction lets that side's value travel; otherwise the change stays
//! unsynced and the base does not move, so it is still seen as a change if the direction opens.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::sync::model::{ContactView, LinkView};
use crate::sync::operation::{Op, Side};
use crate::sync::policy::{Field, PlanSettings, Policy, TicketAction};
use crate::sync::views;

/// How the two sides' values stand against the base.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Change {
    /// Neither side moved.
    None,
    /// Only Trengo moved.
    Trengo,
    /// Only GHL moved.
    Ghl,
    /// Both moved to the same value.
    BothSame,
    /// Both moved, to different values.
    Conflict,
}

pub(crate) fn three_way<T: PartialEq>(base: Option<&T>, trengo: &T, ghl: &T) -> Change {
    let trengo_moved = base != Some(trengo);
    let ghl_moved = base != Some(ghl);
    match (trengo_moved, ghl_moved) {
        (false, false) => Change::None,
        (true, false) => Change::Trengo,
        (false, true) => Change::Ghl,
        (true, true) if trengo == ghl => Change::BothSame,
        (true, true) => Change::Conflict,
    }
}

/// The side a conflict's policy picks, or `None` when the policy holds it (`manual`).
/// `newest` compares the ticket's `updated_at` with the contact's `dateUpdated` (GHL tasks carry
/// no timestamp); a tie or a missing GHL time goes to Trengo (sync-model.md §4.1).
pub(crate) fn winner(
    policy: Policy,
    trengo_at: DateTime<Utc>,
    ghl_at: Option<DateTime<Utc>>,
) -> Option<Side> {
    match policy {
        Policy::Trengo => Some(Side::Trengo),
        Policy::Ghl => Some(Side::Ghl),
        Policy::Manual => None,
        Policy::Newest => match ghl_at {
            Some(ghl_at) if ghl_at > trengo_at => Some(Side::Ghl),
            _ => Some(Side::Trengo),
        },
    }
}

/// The ops of one scalar field of one link, given how to write each side.
struct Scalar<'a, T> {
    link: &'a LinkView,
    contact: &'a ContactView,
    field: Field,
    base: Option<&'a T>,
    trengo: T,
    ghl: T,
}

impl<T: PartialEq + serde::Serialize + Clone> Scalar<'_, T> {
    /// Plans the field. `write_ghl` / `write_trengo` return the write carrying a value to that
    /// side, or `None` when that value cannot be written there (the change then stays unsynced).
    fn plan(
        self,
        settings: &PlanSettings,
        write_ghl: impl Fn(&T) -> Option<Op>,
        write_trengo: impl Fn(&T) -> Option<Op>,
    ) -> Vec<Op> {
        let direction = settings.directions.get(self.field);
        if self.link.held.contains(&self.field)
            || !(direction.writes_ghl() || direction.writes_trengo())
        {
            return Vec::new();
        }
        let link = self.link.link;
        let base_op = |value: &T| Op::SetLinkBase {
            link,
            field: self.field,
            value: json!(value),
        };
        let to_ghl = || -> Vec<Op> {
            match write_ghl(&self.trengo) {
                Some(op) if direction.writes_ghl() => vec![op, base_op(&self.trengo)],
                _ => Vec::new(),
            }
        };
        let to_trengo = || -> Vec<Op> {
            match write_trengo(&self.ghl) {
                Some(op) if direction.writes_trengo() => vec![op, base_op(&self.ghl)],
                _ => Vec::new(),
            }
        };
        match three_way(self.base, &self.trengo, &self.ghl) {
            Change::None => Vec::new(),
            Change::BothSame => vec![base_op(&self.trengo)],
            Change::Trengo => to_ghl(),
            Change::Ghl => to_trengo(),
            Change::Conflict => {
                let policy = settings.policies.get(self.field);
                let Some(mut side) =
                    winner(policy, self.link.ticket.updated_at, self.contact.updated_at)
                else {
                    return vec![Op::HoldConflict {
                        link,
                        field: self.field,
                        base: self.base.map_or(Value::Null, |b| json!(b)),
                        trengo: json!(self.trengo),
                        ghl: json!(self.ghl),
                    }];
                };
                let carry = |side: Side| match side {
                    Side::Trengo => (to_ghl(), json!(self.ghl)),
                    Side::Ghl => (to_trengo(), json!(self.trengo)),
                };
                let (mut ops, mut losing) = carry(side);
                // Under `newest`, a value that cannot travel (a one-way direction, no unassign
                // endpoint, a status action of "nothing") does not win: the other side does.
                // Otherwise the conflict would stand and flip as our own writes move the
                // timestamps, and a later pass would write without any new edit.
                if ops.is_empty() && policy == Policy::Newest {
                    side = match side {
                        Side::Trengo => Side::Ghl,
                        Side::Ghl => Side::Trengo,
                    };
                    (ops, losing) = carry(side);
                }
                // The ledger entry only when the winner is really written: a skipped write
                // leaves both values in place and nothing has lost yet.
                if !ops.is_empty() {
                    ops.insert(
                        0,
                        Op::SettleConflict {
                            link,
                            field: self.field,
                            winner: side,
                            losing,
                        },
                    );
                }
                ops
            }
        }
    }
}

/// Status: ticket status through the table ⇄ task completion.
pub(super) fn status(link: &LinkView, contact: &ContactView, settings: &PlanSettings) -> Vec<Op> {
    let table = settings.status_table;
    let scalar = Scalar {
        link,
        contact,
        field: Field::Status,
        base: link.bases.status.as_ref(),
        trengo: table.is_done(link.ticket.status),
        ghl: link.task.completed,
    };
    scalar.plan(
        settings,
        |&done| {
            Some(Op::SetTaskCompleted {
                link: link.link,
                contact_id: link.task.contact_id.clone(),
                task_id: link.task.id.clone(),
                completed: done,
            })
        },
        |&done| match table.action_for(done) {
            TicketAction::Close => Some(Op::CloseTicket {
                link: link.link,
                ticket_id: link.ticket.id,
            }),
            TicketAction::Reopen => Some(Op::ReopenTicket {
                link: link.link,
                ticket_id: link.ticket.id,
            }),
            TicketAction::Nothing => None,
        },
    )
}

/// Assignee: user email ⇄ user email. Trengo has no unassign endpoint, so "nobody" cannot be
/// written to a ticket: that write is skipped and the base kept.
pub(super) fn assignee(link: &LinkView, contact: &ContactView, settings: &PlanSettings) -> Vec<Op> {
    let normalise = |email: &Option<String>| views::email(email.as_deref());
    let base = link.bases.assignee.as_ref().map(normalise);
    let scalar = Scalar {
        link,
        contact,
        field: Field::Assignee,
        base: base.as_ref(),
        trengo: normalise(&link.ticket.assignee),
        ghl: normalise(&link.task.assignee),
    };
    scalar.plan(
        settings,
        |email| {
            Some(Op::SetTaskAssignee {
                link: link.link,
                contact_id: link.task.contact_id.clone(),
                task_id: link.task.id.clone(),
                email: email.clone(),
            })
        },
        |email| {
            email.as_ref().map(|email| Op::AssignTicket {
                link: link.link,
                ticket_id: link.ticket.id,
                email: email.clone(),
            })
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_base_counts_as_both_changed() {
        assert_eq!(three_way(None, &true, &true), Change::BothSame);
        assert_eq!(three_way(None, &true, &false), Change::Conflict);
        assert_eq!(three_way(Some(&false), &true, &false), Change::Trengo);
        assert_eq!(three_way(Some(&false), &false, &true), Change::Ghl);
        assert_eq!(three_way(Some(&false), &false, &false), Change::None);
    }

    #[test]
    fn newest_ties_and_missing_times_go_to_trengo() {
        let t = DateTime::<Utc>::from_timestamp(1_000, 0).unwrap_or_default();
        assert_eq!(winner(Policy::Newest, t, None), Some(Side::Trengo));
        assert_eq!(winner(Policy::Newest, t, Some(t)), Some(Side::Trengo));
        let later = t + chrono::Duration::seconds(1);
        assert_eq!(winner(Policy::Newest, t, Some(later)), Some(Side::Ghl));
        assert_eq!(winner(Policy::Manual, t, Some(later)), None);
    }
}

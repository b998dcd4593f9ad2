//! The initial-sync cutoff (`link.since`): which items entering scope are recent enough to be
//! linked, on the first pass (a backfill of a large account) and by discovery afterwards.
//!
//! A Trengo ticket counts from the later of its `created_at` and `updated_at`. GHL's REST task
//! carries no creation or update time (`TaskSchema`, ghl-api.md §4: only the webhooks carry
//! `dateAdded`), so a task counts from its contact's `dateUpdated` (else `dateAdded`): a task
//! created on a contact untouched since the cutoff is not linked, which errs on the side of
//! linking less. An item with no time at all is linked (nothing says it is old). A task that
//! names a ticket of this account (an earlier link found again) is always adopted.

use chrono::{DateTime, Utc};

use super::model::Candidate;
use crate::ghl;
use crate::trengo;

/// Whether a ticket entering scope is recent enough for `cutoff`.
pub fn ticket_recent(ticket: &trengo::Ticket, cutoff: Option<DateTime<Utc>>) -> bool {
    let Some(cutoff) = cutoff else { return true };
    match ticket.updated_at.max(ticket.created_at) {
        Some(at) => at >= cutoff,
        None => true,
    }
}

/// Keeps the task candidates of `contact` that are recent enough for `cutoff`.
pub fn tasks_recent(
    candidates: Vec<Candidate>,
    contact: Option<&ghl::Contact>,
    cutoff: Option<DateTime<Utc>>,
) -> Vec<Candidate> {
    let Some(cutoff) = cutoff else {
        return candidates;
    };
    let at = contact.and_then(|c| c.date_updated.or(c.date_added));
    let recent = at.is_none_or(|at| at >= cutoff);
    candidates
        .into_iter()
        .filter(|c| match c {
            Candidate::Task {
                ticket_url_of_this_account: Some(_),
                ..
            } => true,
            Candidate::Task { .. } => recent,
            Candidate::Ticket { .. } => true,
        })
        .collect()
}

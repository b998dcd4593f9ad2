//! Webhook hints: what a webhook names, turned into the groups a pass plans and how much of
//! each it reads.
//!
//! A webhook is only a hint (sync-model.md §4.10): state is always read from the APIs. But a
//! hint says which field moved, and the planner's merge of that field decides what must be read.
//! A task completed or a ticket closed needs its link's two sides only (status and assignee are
//! merged per link); a tag or label moved needs every linked ticket (the Trengo side of a tag is
//! the union over all of them) but no message; anything else reads the whole group. Reading less
//! is what keeps a webhook's item within the rate budget's burst at the documented limits.

use super::{Detected, Detector, Merge, RetryChange};
use crate::store;
use crate::sync::engine::EngineError;
use crate::sync::load::Reach;
use crate::sync::operation::ItemKey;
use crate::sync::reason::ReasonCode as _;

/// An item a webhook pointed at, and what moved on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hint {
    /// Re-read this ticket's whole contact group (a message, or an event not sorted further).
    Ticket(i64),
    /// Re-read this GHL contact's whole group, and its tasks for any entering scope.
    Contact(String),
    /// This ticket's status or assignee moved (closed, reopened, assigned, spam): its link's
    /// fields are planned.
    TicketStatus(i64),
    /// A label moved on this ticket: its contact's tags are planned.
    TicketLabels(i64),
    /// This GHL task was completed (`TaskComplete`): its link's fields are planned.
    TaskCompleted {
        /// The task's contact.
        contact_id: String,
        /// The task.
        task_id: String,
    },
    /// This GHL contact's tags moved (`ContactTagUpdate`): its tags are planned, and its tasks
    /// read for any the new tags bring into scope.
    ContactTags(String),
    /// Trengo merged ticket `merged` into `surviving` and deleted it (`TICKET_MERGED`): a link
    /// of the merged ticket follows the surviving one, unless that one has a link of its own
    /// (then the merged ticket's link ends as gone when its group is read).
    TicketMerged {
        /// The ticket that remains.
        surviving: i64,
        /// The ticket merged into it and deleted.
        merged: i64,
    },
    /// This GHL contact's notes changed (a note the sweep found, `NoteCreate`): its whole group
    /// is read; its tasks are not looked at for scope.
    ContactNotes(String),
}

impl Detector<'_> {
    /// Adds what `hints` name to the pass's work.
    pub(crate) async fn hints(
        &self,
        work: &mut Detected,
        hints: &[Hint],
    ) -> Result<(), EngineError> {
        for hint in hints {
            match hint {
                Hint::Ticket(id) => self.ticket_hint(work, *id, Reach::Whole).await?,
                Hint::TicketStatus(id) => self.ticket_hint(work, *id, Reach::Link(*id)).await?,
                Hint::TicketLabels(id) => self.ticket_hint(work, *id, Reach::Tags).await?,
                Hint::Contact(id) => self.contact_hint(work, id, Reach::Whole),
                Hint::ContactTags(id) => self.contact_hint(work, id, Reach::Tags),
                Hint::ContactNotes(id) => work.want(id, Reach::Whole),
                Hint::TicketMerged { surviving, merged } => {
                    self.merge_hint(work, *surviving, *merged).await?;
                }
                Hint::TaskCompleted {
                    contact_id,
                    task_id,
                } => {
                    let task = task_id.clone();
                    let link = self
                        .reader
                        .call(move |s| store::links::by_task(s.conn(), &task))
                        .await?;
                    match link {
                        Some(link)
                            if link.state == store::links::LinkState::Active
                                && link.ghl_contact_id == *contact_id =>
                        {
                            work.want(contact_id, Reach::Link(link.ticket_id));
                        }
                        // Not linked: a task that may enter scope, read as any contact change.
                        _ => self.contact_hint(work, contact_id, Reach::Whole),
                    }
                }
            }
        }
        Ok(())
    }

    /// A ticket's link group, read as far as `reach`; an unlinked ticket may enter scope.
    async fn ticket_hint(
        &self,
        work: &mut Detected,
        id: i64,
        reach: Reach,
    ) -> Result<(), EngineError> {
        let link = self
            .reader
            .call(move |s| store::links::by_ticket(s.conn(), id))
            .await?;
        match link {
            Some(link) if link.state == store::links::LinkState::Active => {
                work.want(&link.ghl_contact_id, reach);
            }
            Some(_) => {}
            // Unlinked: it may enter scope. Whatever its read answers is this item's outcome,
            // never the pass's (one deleted ticket must not stop every pass).
            None => match self.trengo.ticket(id).await {
                Ok(ticket) => {
                    let labels = crate::sync::views::labels(&ticket);
                    if self.settings.scope.ticket_in_scope(
                        &labels,
                        ticket.channel_id(),
                        ticket.team_id,
                    ) {
                        work.candidate_tickets.insert(id, ticket);
                    }
                }
                Err(e) if super::is_gone(&e) => {
                    // Nothing to link and nothing to retry: an earlier failure of it is over.
                    tracing::info!(
                        ticket = id,
                        "a ticket named by a hint or retry is gone; dropped"
                    );
                    work.retries.push(RetryChange::Cleared(ItemKey::Ticket(id)));
                }
                Err(e) => work.read_failed(ItemKey::Ticket(id), e.reason_code(), e.to_string()),
            },
        }
        Ok(())
    }

    /// A merged ticket's link follows the surviving ticket (trengo-api.md §10.3
    /// `TICKET_MERGED`): the executor moves it before the groups are read ([`Merge`]); the
    /// group is read whole either way.
    async fn merge_hint(
        &self,
        work: &mut Detected,
        surviving: i64,
        merged: i64,
    ) -> Result<(), EngineError> {
        let link = self
            .reader
            .call(move |s| store::links::by_ticket(s.conn(), merged))
            .await?;
        match link {
            Some(link) if link.state == store::links::LinkState::Active => {
                work.merges.push(Merge { merged, surviving });
                work.want(&link.ghl_contact_id, Reach::Whole);
            }
            _ => self.ticket_hint(work, surviving, Reach::Whole).await?,
        }
        Ok(())
    }

    fn contact_hint(&self, work: &mut Detected, id: &str, reach: Reach) {
        work.want(id, reach);
        if self.settings.scope.ghl_to_trengo() {
            work.candidate_contacts.insert(id.to_string());
        }
    }
}

//! The executor: the only writer, to both APIs and to the store.
//!
//! It applies one item of a [`Plan`](super::Plan) at a time. Remote writes go first, in the
//! planner's order; the item's store-only operations (bases, comment pairs, held conflicts,
//! links leaving scope) are committed together at the end, and only when every write of the
//! item succeeded, so a half-applied item is simply seen again by the next pass and the
//! three-way merge finishes it.
//! Every remote create is journalled first: an intent with its idempotency key is committed
//! before the call, the key travels inside the created object (the ticket URL in a task body,
//! a source marker in a note, a task marker in a ticket subject), and the intent ends in the
//! same transaction that records the result. Every update is journalled too ([`journal`]): the
//! value it writes, ended with the item's bases. [`Executor::settle_intents`] finds what a
//! crash left open.
//!
//! It also writes the rest of a pass's store records ([`Recorder`]): within a pass nothing
//! else writes to the store, and the other stages read it through a
//! [`StoreReader`](crate::store::StoreReader), which refuses writes.
//!
//! | file | job |
//! |---|---|
//! | `execute.rs` | one item: its writes in order, then its store-only operations |
//! | `intents.rs` | intents opened before each create and update, and ended with the item |
//! | [`journal`] | what an update intent holds, and how it lands on a base |
//! | `link.rs` | link creation both ways; the one insert-if-absent path of every link |
//! | `notes.rs` | notes copied both ways, each recorded as a comment pair |
//! | `labels.rs` | Trengo label ids by name, made when allowed |
//! | `store_ops.rs` | an item's store-only operations; `resolve` of a held conflict |
//! | `settle.rs` | crash settlement: the intents a crash left open |
//! | `records.rs` | the pass's bookkeeping: retries, what was seen, cursors, the brake |
//! | `rounds.rs` | round 1 cut into chunks; the prints a batch records of what it wrote |
//! | [`pairs`] | contact pairs: pairs recorded, Trengo contacts made, field and context writes, task details, welcome tickets |

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::declare::Scope;
use super::model::Tag;
use super::operation::{ItemPlan, Op};
use super::settings::EngineSettings;
use super::views::Directory;
use crate::api::ApiError;
use crate::clock::SharedClock;
use crate::ghl::{self, GhlClient};
use crate::store::{
    self, StoreError, StoreHandle,
    ledger::{Entry, EntryKind},
    links::{NewLink, Origin},
};
use crate::trengo::{self, TrengoClient};

mod intents;
pub mod journal;
mod labels;
mod link;
mod notes;
pub mod pairs;
mod records;
pub(crate) mod rounds;
mod settle;
mod store_ops;

pub use intents::IntentKind;
pub use labels::refresh_labels;
pub use records::Recorder;
pub use store_ops::resolve;

use intents::Journalled;
use store_ops::{record_pair, store_op};

use journal::Update;

/// Why an item could not be applied. The item goes to the retry table; others go on.
#[derive(Debug, thiserror::Error)]
pub enum ItemError {
    /// An API refused or failed.
    #[error(transparent)]
    Api(#[from] ApiError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The item cannot be applied as things stand; the message says what to do.
    #[error("{0}")]
    Blocked(String),
    /// A test asked the executor to stop here, as a crash would.
    #[error("stopped by the crash switch after {0} remote calls")]
    Crashed(i64),
}

impl ItemError {
    /// Whether this is the test crash switch (the pass must stop at once).
    pub fn is_crash(&self) -> bool {
        matches!(self, ItemError::Crashed(_))
    }
}

/// What the executor may look up about the items of this pass.
#[derive(Debug, Default)]
pub struct PassFacts {
    /// Tickets read in this pass, by id.
    pub tickets: HashMap<i64, trengo::Ticket>,
    /// Users on both sides, for assignees.
    pub directory: Directory,
    /// Trengo labels by normalised name.
    pub labels: HashMap<Tag, i64>,
}

/// Applies items. Cheap to build per pass.
pub struct Executor<'a> {
    pub store: &'a StoreHandle,
    pub trengo: &'a TrengoClient,
    pub ghl: &'a GhlClient,
    pub clock: &'a SharedClock,
    pub settings: &'a EngineSettings,
    /// What this pass read.
    pub facts: &'a mut PassFacts,
    /// Test hook: remote calls left before the executor stops as if killed.
    pub crash_after: Option<Arc<AtomicI64>>,
}

/// How many writes an item made, by side.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Applied {
    /// Writes to Trengo.
    pub trengo: u64,
    /// Writes to GHL.
    pub ghl: u64,
}

impl Executor<'_> {
    fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Counts one remote call against the crash switch.
    fn remote_done(&self) -> Result<(), ItemError> {
        if let Some(left) = &self.crash_after
            && left.fetch_sub(1, Ordering::SeqCst) <= 1
        {
            return Err(ItemError::Crashed(left.load(Ordering::SeqCst)));
        }
        Ok(())
    }

    async fn tx<R: Send + 'static>(
        &self,
        f: impl FnOnce(&rusqlite::Connection) -> Result<R, StoreError> + Send + 'static,
    ) -> Result<R, ItemError> {
        Ok(self
            .store
            .call(move |s| {
                let tx = s.transaction()?;
                let r = f(&tx)?;
                tx.commit()?;
                Ok(r)
            })
            .await?)
    }

    async fn ledger(&self, entry: Entry) -> Result<(), ItemError> {
        self.tx(move |c| store::ledger::record(c, &entry).map(|_| ()))
            .await
    }

    /// Applies one item: its writes in order, each update journalled first, then its
    /// store-only operations and the end of its journal in one transaction.
    pub async fn apply(&mut self, item: &ItemPlan) -> Result<Applied, ItemError> {
        let mut applied = Applied::default();
        let mut deferred = Vec::new();
        let mut journal: Vec<Journalled> = Vec::new();
        for op in &item.ops {
            match op {
                Op::SetLinkBase { .. }
                | Op::SetTagBase { .. }
                | Op::MapComment { .. }
                | Op::HoldConflict { .. }
                | Op::SettleConflict { .. }
                | Op::Unlink { .. }
                | Op::EndGone { .. } => deferred.push(op.clone()),
                _ => {
                    let journalled = match Update::of(op, item) {
                        Some(update) => {
                            journal.push(self.journal(update).await?);
                            true
                        }
                        None => false,
                    };
                    match self.write(op).await {
                        Ok(writes) => {
                            applied.trengo += writes.trengo;
                            applied.ghl += writes.ghl;
                            if let (true, Some(j)) = (journalled, journal.last_mut()) {
                                j.landed = true;
                            }
                        }
                        Err(e) => {
                            if !e.is_crash() {
                                self.end_failed(journal, &e).await;
                            }
                            return Err(e);
                        }
                    }
                }
            }
        }
        if !deferred.is_empty() || !journal.is_empty() {
            let now = self.now();
            self.tx(move |c| {
                for op in &deferred {
                    store_op(c, op, now)?;
                }
                for j in &journal {
                    store::intents::remove(c, &j.key)?;
                }
                Ok(())
            })
            .await?;
        }
        Ok(applied)
    }

    async fn write(&mut self, op: &Op) -> Result<Applied, ItemError> {
        let trengo = Applied { trengo: 1, ghl: 0 };
        let ghl = Applied { trengo: 0, ghl: 1 };
        let none = Applied::default();
        let mut entry = Entry::new(EntryKind::Applied, self.now()).op(op.to_string());
        if let Some(link) = op.link() {
            entry = entry.link(link);
        }
        let counted = match op {
            Op::SetTaskCompleted {
                contact_id,
                task_id,
                completed,
                ..
            } => {
                self.ghl
                    .set_task_completed(contact_id, task_id, *completed)
                    .await?;
                self.remote_done()?;
                entry = entry.field("status").side("ghl");
                ghl
            }
            Op::CloseTicket { ticket_id, .. } => {
                if self.settings.complete_as_spam {
                    self.trengo.mark_spam(*ticket_id).await?;
                } else {
                    self.trengo.close(*ticket_id, None).await?;
                }
                self.remote_done()?;
                entry = entry.field("status").side("trengo");
                trengo
            }
            Op::ReopenTicket { ticket_id, .. } => {
                let spam = self
                    .facts
                    .tickets
                    .get(ticket_id)
                    .is_some_and(|t| t.status == trengo::models::TicketStatus::Invalid);
                if spam {
                    self.trengo.unmark_spam(*ticket_id).await?;
                } else {
                    self.trengo.reopen(*ticket_id).await?;
                }
                self.remote_done()?;
                entry = entry.field("status").side("trengo");
                trengo
            }
            Op::AddContactTags { contact_id, tags } => {
                let names: Vec<String> = tags.iter().map(|t| t.to_string()).collect();
                self.ghl.add_tags(contact_id, &names).await?;
                self.remote_done()?;
                entry = entry.field("tags").side("ghl");
                ghl
            }
            Op::RemoveContactTags { contact_id, tags } => {
                let names: Vec<String> = tags.iter().map(|t| t.to_string()).collect();
                self.ghl.remove_tags(contact_id, &names).await?;
                self.remote_done()?;
                entry = entry.field("tags").side("ghl");
                ghl
            }
            Op::AttachLabel { ticket_id, tag, .. } => {
                let label = self.label_id(tag, true).await?.ok_or_else(|| {
                    ItemError::Blocked(format!(
                        "Trengo has no label `{tag}`: create it in Trengo, or set \
                         tags.create_labels = true"
                    ))
                })?;
                self.trengo.attach_label(*ticket_id, label).await?;
                self.remote_done()?;
                entry = entry.field("tags").side("trengo");
                trengo
            }
            Op::DetachLabel { ticket_id, tag, .. } => match self.label_id(tag, false).await? {
                Some(label) => {
                    self.trengo.detach_label(*ticket_id, label).await?;
                    self.remote_done()?;
                    entry = entry.field("tags").side("trengo");
                    trengo
                }
                None => none,
            },
            Op::CreateGhlNote {
                link,
                contact_id,
                message_id,
                body,
            } => {
                self.create_ghl_note(*link, contact_id, *message_id, body)
                    .await?;
                entry = entry.field("comments").side("ghl");
                ghl
            }
            Op::CreateTrengoNote {
                link,
                ticket_id,
                note_id,
                body,
            } => {
                self.create_trengo_note(*link, *ticket_id, note_id, body)
                    .await?;
                entry = entry.field("comments").side("trengo");
                trengo
            }
            Op::AssignTicket {
                ticket_id, email, ..
            } => {
                let user = self.facts.directory.trengo_user(email).ok_or_else(|| {
                    ItemError::Blocked(format!(
                        "no Trengo user has the e-mail {email}; add the user in Trengo or map \
                         it under [assignee.users]"
                    ))
                })?;
                self.trengo
                    .assign(*ticket_id, trengo::Assignee::User(user))
                    .await?;
                self.remote_done()?;
                entry = entry.field("assignee").side("trengo");
                trengo
            }
            Op::SetTaskAssignee {
                contact_id,
                task_id,
                email,
                ..
            } => {
                let user = match email {
                    Some(email) => {
                        // The directory files GHL users under the Trengo e-mail an
                        // [assignee.users] alias maps them from (see the engine's refresh).
                        Some(self.facts.directory.ghl_user(email).ok_or_else(|| {
                            let ghl_email = self
                                .settings
                                .assignee_aliases
                                .get(email)
                                .map_or(email.as_str(), String::as_str);
                            ItemError::Blocked(format!(
                                "no GHL user has the e-mail {ghl_email}; add the user in GHL or \
                                 map it under [assignee.users]"
                            ))
                        })?)
                    }
                    None => None,
                };
                let update = ghl::TaskUpdate {
                    assigned_to: user,
                    ..Default::default()
                };
                self.ghl.update_task(contact_id, task_id, &update).await?;
                self.remote_done()?;
                entry = entry.field("assignee").side("ghl");
                ghl
            }
            Op::LinkTicket {
                ticket_id,
                email,
                phone,
                name,
                title,
                url,
            } => {
                let n = self
                    .link_ticket(
                        *ticket_id,
                        email.as_deref(),
                        phone.as_deref(),
                        name.as_deref(),
                        title,
                        url,
                    )
                    .await?;
                entry = entry.side("ghl");
                Applied { trengo: 0, ghl: n }
            }
            Op::LinkTask {
                task_id,
                contact_id,
                title,
                body,
            } => {
                let n = self.link_task(task_id, contact_id, title, body).await?;
                entry = entry.side("trengo");
                n
            }
            Op::AdoptTask {
                task_id,
                contact_id,
                ticket_id,
            } => {
                let (task_id, contact_id, ticket_id) =
                    (task_id.clone(), contact_id.clone(), *ticket_id);
                let now = self.now();
                self.tx(move |c| {
                    let new = NewLink {
                        ticket_id,
                        task_id,
                        ghl_contact_id: contact_id,
                        trengo_contact_id: None,
                        origin: Origin::Adopted,
                    };
                    link::insert_link(c, new, &[], now).map(|_| ())
                })
                .await?;
                none
            }
            Op::Unlink { .. }
            | Op::EndGone { .. }
            | Op::SetLinkBase { .. }
            | Op::SetTagBase { .. }
            | Op::MapComment { .. }
            | Op::HoldConflict { .. }
            | Op::SettleConflict { .. } => return Ok(none),
        };
        if counted != none {
            // One line per change at info level, as `history` and the demo show it.
            tracing::info!(
                link = entry.link_id.map(|l| l.0),
                to = entry.side.as_deref(),
                "{op}"
            );
            self.ledger(entry).await?;
        }
        Ok(counted)
    }

    /// The assignee base of an item this pass just created, from the server's answer (the
    /// user id it came back with, mapped to an e-mail): the created side's value, so only the
    /// originating side counts as changed and its assignee travels. Without a base, a new
    /// link would be a conflict, and `newest` could hand it to the side that never chose
    /// (a task made unassigned, or a ticket assigned to the API user, sync-model.md §4.1).
    /// `None` when the assignee is not synced: the directory is then not loaded.
    fn assignee_base(&self, answered: Option<Option<String>>) -> Option<Value> {
        self.settings
            .plan
            .assignee_enabled
            .then(|| json!(answered.flatten()))
    }

    /// The recorder of retries and the pass's other bookkeeping, over the executor's store.
    pub fn recorder(&self) -> Recorder<'_> {
        Recorder {
            store: self.store,
            clock: self.clock,
            settings: self.settings,
        }
    }

    fn scope(&self) -> &Scope {
        &self.settings.scope
    }
}

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

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::declare::Scope;
use super::keys::BaseName;
use super::model::{LinkId, Tag};
use super::operation::{ItemPlan, Op, Side};
use super::policy::Field;
use super::settings::EngineSettings;
use super::views::Directory;
use crate::api::ApiError;
use crate::clock::SharedClock;
use crate::ghl::{self, GhlClient};
use crate::store::{
    self, StoreError, StoreHandle,
    comments::CommentOrigin,
    ledger::{Entry, EntryKind},
    links::{NewLink, Origin},
};
use crate::trengo::{self, TrengoClient};

pub mod journal;
mod link;
mod records;
pub(crate) mod rounds;
mod settle;

pub use records::Recorder;

/// What an intent is for: the kinds the executor opens before a write, and the one thing
/// crash settlement reads to know where to look (`settle.rs`). Stored as text; stores written
/// by earlier versions hold these names, so they must not change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntentKind {
    /// A GHL note copied from a Trengo message.
    GhlNote,
    /// A Trengo internal note copied from a GHL note.
    TrengoNote,
    /// A GHL task made for a Trengo ticket.
    Task,
    /// A Trengo ticket made for a GHL task.
    Ticket,
    /// A journalled update of a synced field ([`journal`]).
    Update,
}

impl IntentKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            IntentKind::GhlNote => "ghl-note",
            IntentKind::TrengoNote => "trengo-note",
            IntentKind::Task => "task",
            IntentKind::Ticket => "ticket",
            IntentKind::Update => "update",
        }
    }

    /// Reads a stored name back; `None` for one this version does not know.
    pub fn from_stored(name: &str) -> Option<Self> {
        [
            IntentKind::GhlNote,
            IntentKind::TrengoNote,
            IntentKind::Task,
            IntentKind::Ticket,
            IntentKind::Update,
        ]
        .into_iter()
        .find(|k| k.as_str() == name)
    }
}

use journal::Update;

/// An update journalled by the item being applied.
struct Journalled {
    /// Its intent key.
    key: String,
    /// What it writes.
    update: Update,
    /// Whether its write was answered with success.
    landed: bool,
}

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

    /// Commits an update's intent before its write.
    async fn journal(&self, update: Update) -> Result<Journalled, ItemError> {
        let (key, now) = (update.key(), self.now());
        let payload = serde_json::to_value(&update).map_err(|e| {
            ItemError::Blocked(format!("could not journal the update {update:?}: {e}"))
        })?;
        let (k, link) = (key.clone(), update.link.map(store::links::LinkId));
        self.tx(move |c| {
            store::intents::open(c, &k, IntentKind::Update.as_str(), link, &payload, now)
                .map(|_| ())
        })
        .await?;
        Ok(Journalled {
            key,
            update,
            landed: false,
        })
    }

    /// Ends the journal of an item that failed (not by a crash): the writes that landed move
    /// their bases, so a later edit is not mistaken for them; a write refused outright (a 4xx
    /// answer, or stopped before its call) is dropped; a write whose outcome is unknown (no
    /// answer, a 5xx) stays open for the next pass to settle by reading the written side.
    async fn end_failed(&self, journal: Vec<Journalled>, error: &ItemError) {
        let refused = match error {
            ItemError::Api(e) => e.status().is_some_and(|s| (400..500).contains(&s)),
            ItemError::Blocked(_) => true,
            ItemError::Store(_) | ItemError::Crashed(_) => false,
        };
        let now = self.now();
        let ended = self
            .tx(move |c| {
                for j in &journal {
                    if j.landed {
                        if j.update.lands_alone() {
                            j.update.land(c, now)?;
                        }
                        store::intents::remove(c, &j.key)?;
                    } else if refused {
                        store::intents::remove(c, &j.key)?;
                    }
                }
                Ok(())
            })
            .await;
        if let Err(e) = ended {
            // The intents stay open; the next pass settles them by reading the remote side.
            tracing::warn!(error = %e, "could not end the journal of a failed item");
        }
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

    /// The Trengo label id for a tag, creating the label when allowed and `create` is set.
    async fn label_id(&mut self, tag: &Tag, create: bool) -> Result<Option<i64>, ItemError> {
        if let Some(id) = self.facts.labels.get(tag) {
            return Ok(Some(*id));
        }
        // The cache may predate a label made in Trengo since: read the list once more.
        refresh_labels(self.trengo, &mut self.facts.labels).await?;
        if let Some(id) = self.facts.labels.get(tag) {
            return Ok(Some(*id));
        }
        if !(create && self.settings.create_labels) {
            return Ok(None);
        }
        let label = self.trengo.create_label(tag.as_str(), "#5D9CEC").await?;
        self.remote_done()?;
        self.facts.labels.insert(tag.clone(), label.id);
        Ok(Some(label.id))
    }

    async fn open_intent(
        &self,
        kind: IntentKind,
        source: &str,
        link: Option<LinkId>,
        payload: Value,
    ) -> Result<String, ItemError> {
        let now = self.now();
        let key = format!("{}:{source}:{}", kind.as_str(), now.timestamp_micros());
        let k = key.clone();
        self.tx(move |c| {
            store::intents::open(c, &k, kind.as_str(), link, &payload, now).map(|_| ())
        })
        .await?;
        Ok(key)
    }

    async fn create_ghl_note(
        &self,
        link: LinkId,
        contact_id: &str,
        message_id: i64,
        body: &str,
    ) -> Result<(), ItemError> {
        let key = self
            .open_intent(
                IntentKind::GhlNote,
                &message_id.to_string(),
                Some(link),
                json!({"contact_id": contact_id, "message_id": message_id}),
            )
            .await?;
        let note = self
            .ghl
            .create_note(
                contact_id,
                &ghl::NoteFields {
                    body: body.to_string(),
                    user_id: None,
                    title: None,
                },
            )
            .await?;
        self.remote_done()?;
        let now = self.now();
        self.tx(move |c| {
            record_pair(c, link, message_id, &note.id, CommentOrigin::Trengo, now)?;
            store::intents::finish(c, &key, &json!({"note_id": note.id}), now).map(|_| ())
        })
        .await
    }

    async fn create_trengo_note(
        &self,
        link: LinkId,
        ticket_id: i64,
        note_id: &str,
        body: &str,
    ) -> Result<(), ItemError> {
        let key = self
            .open_intent(
                IntentKind::TrengoNote,
                note_id,
                Some(link),
                json!({"ticket_id": ticket_id, "note_id": note_id}),
            )
            .await?;
        // Always an internal note: GHL text never reaches the customer (sync-model.md §3).
        let message = self.trengo.add_internal_note(ticket_id, body).await?;
        self.remote_done()?;
        let (note_id, now) = (note_id.to_string(), self.now());
        self.tx(move |c| {
            record_pair(c, link, message.id, &note_id, CommentOrigin::Ghl, now)?;
            store::intents::finish(c, &key, &json!({"message_id": message.id}), now).map(|_| ())
        })
        .await
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

/// Reads every Trengo label into `labels`, by normalised name.
pub async fn refresh_labels(
    trengo: &TrengoClient,
    labels: &mut HashMap<Tag, i64>,
) -> Result<(), ApiError> {
    use futures::StreamExt as _;
    let mut stream = std::pin::pin!(trengo.labels());
    while let Some(label) = stream.next().await {
        let label = label?;
        if let Some(name) = &label.name {
            labels.insert(Tag::new(name), label.id);
        }
    }
    Ok(())
}

fn record_pair(
    c: &rusqlite::Connection,
    link: LinkId,
    message_id: i64,
    note_id: &str,
    origin: CommentOrigin,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    if store::comments::by_message(c, message_id)?.is_none()
        && store::comments::by_note(c, note_id)?.is_none()
    {
        store::comments::insert(c, link, message_id, note_id, origin, now)?;
    }
    Ok(())
}

/// Applies a store-only operation inside the caller's transaction.
fn store_op(c: &rusqlite::Connection, op: &Op, now: DateTime<Utc>) -> Result<(), StoreError> {
    match op {
        // In the same transaction as the contact's tag base (the planner puts both in the
        // contact's item), so the labels that left with the link never read as removed.
        Op::Unlink { link } => {
            store::links::set_state(c, *link, store::links::LinkState::OutOfScope, now)?;
            store::ledger::record(
                c,
                &Entry::new(EntryKind::Unlinked, now)
                    .link(*link)
                    .detail("left scope; nothing was deleted"),
            )
            .map(|_| ())
        }
        Op::EndGone { link, side } => {
            let why = match side {
                Side::Trengo => {
                    "the Trengo ticket answered 404/410 (deleted, merged or not visible)"
                }
                Side::Ghl => {
                    "the GHL task or contact answered 404/410, or the task is no longer listed (deleted)"
                }
            };
            store::links::mark_gone(c, *link, why, now)?;
            store::ledger::record(
                c,
                &Entry::new(EntryKind::Unlinked, now)
                    .link(*link)
                    .detail(format!("gone: {why}; nothing was deleted")),
            )
            .map(|_| ())
        }
        Op::SetLinkBase { link, field, value } => {
            store::bases::put(c, *link, BaseName::from(*field), value, now)
        }
        Op::SetTagBase { contact_id, tags } => {
            let list: Vec<&str> = tags.iter().map(Tag::as_str).collect();
            store::bases::put_contact(c, contact_id, BaseName::Tags, &json!(list), now)
        }
        Op::MapComment {
            link,
            message_id,
            note_id,
        } => {
            // Which side wrote the copy is known from the note id form only for task bodies;
            // for a found copy the origin is the side that did not carry the marker.
            let origin = if note_id.starts_with("task-") {
                CommentOrigin::Ghl
            } else {
                CommentOrigin::Trengo
            };
            record_pair(c, *link, *message_id, note_id, origin, now)
        }
        Op::HoldConflict {
            link,
            field,
            base,
            trengo,
            ghl,
        } => {
            store::conflicts::hold(
                c,
                &store::conflicts::Held {
                    link_id: *link,
                    field: field.to_string(),
                    base: (!base.is_null()).then(|| base.clone()),
                    trengo_value: trengo.clone(),
                    ghl_value: ghl.clone(),
                    detected_at: now,
                },
            )?;
            store::ledger::record(
                c,
                &Entry::new(EntryKind::ConflictHeld, now)
                    .link(*link)
                    .field(field.to_string())
                    .detail(format!(
                        "trengo: {trengo}, ghl: {ghl}; settle with `trengo-sync resolve`"
                    )),
            )
            .map(|_| ())
        }
        Op::SettleConflict {
            link,
            field,
            winner,
            losing,
        } => store::ledger::record(
            c,
            &Entry::new(EntryKind::ConflictSettled, now)
                .link(*link)
                .field(field.to_string())
                .side(winner.to_string())
                .losing(losing.clone()),
        )
        .map(|_| ()),
        _ => Ok(()),
    }
}

/// Settles a held conflict by hand: the chosen side's value wins. The base is set to the
/// losing side's current value, so the next pass sees only the winner as changed and
/// carries it across.
pub fn resolve(
    c: &rusqlite::Connection,
    link: store::links::LinkId,
    field: Field,
    take_trengo: bool,
    now: DateTime<Utc>,
) -> Result<store::conflicts::Held, ItemError> {
    let held = store::conflicts::settle(c, link, &field.to_string())?.ok_or_else(|| {
        ItemError::Blocked(format!(
            "link {} has no held conflict on {field}; `trengo-sync conflicts` lists them",
            link.0
        ))
    })?;
    let (winner, loser) = if take_trengo {
        (&held.trengo_value, &held.ghl_value)
    } else {
        (&held.ghl_value, &held.trengo_value)
    };
    store::bases::put(c, link, BaseName::from(field), loser, now)?;
    store::ledger::record(
        c,
        &Entry::new(EntryKind::ConflictResolved, now)
            .link(link)
            .field(field.to_string())
            .side(if take_trengo { "trengo" } else { "ghl" })
            .change(loser.clone(), winner.clone())
            .losing(loser.clone())
            .detail("settled by `trengo-sync resolve`"),
    )?;
    Ok(held)
}

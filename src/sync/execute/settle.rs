//! Crash settlement: the intents a crash left open, settled before a pass plans anything.
//!
//! An update's written side is read, and its base moves if the write landed (see
//! `sync::execute::journal`). A create's idempotency key is looked for on the remote side (the
//! ticket URL in a task body, a source marker in a note, the task marker in a ticket subject).
//! A found object is recorded as the interrupted create would have recorded it; a missing one
//! is abandoned, and the next plan makes it again. No create is ever retried blindly.
//!
//! It is the executor's: what it records goes through the same insert-if-absent paths as the
//! create it finishes (`link.rs`'s `insert_link`, the comment pairs' `record_pair`).

use chrono::{DateTime, Utc};
use futures::StreamExt as _;
use serde_json::json;

use std::collections::BTreeSet;

use super::journal::Update;
use super::link::insert_link;
use super::{Executor, IntentKind, ItemError, record_pair};
use crate::store::{
    self, StoreError,
    comments::CommentOrigin,
    links::{NewLink, Origin},
};
use crate::sync::keys::BaseName;
use crate::sync::load;
use crate::sync::marker;
use crate::sync::model::{LinkId, Tag};
use crate::sync::operation::{ItemKey, Side};
use crate::sync::policy::Field;
use crate::sync::reason::ReasonCode as _;
use crate::sync::views;
use crate::trengo::TicketFilters;

impl Executor<'_> {
    /// Looks on the remote side for the object an open intent was about to create.
    async fn find_created(
        &self,
        intent: &store::intents::Intent,
    ) -> Result<Option<serde_json::Value>, ItemError> {
        let p = &intent.payload;
        let text = |k: &str| p.get(k).and_then(|v| v.as_str()).map(str::to_string);
        let number = |k: &str| p.get(k).and_then(|v| v.as_i64());
        let found = match IntentKind::from_stored(&intent.kind) {
            Some(IntentKind::GhlNote) => {
                let (Some(contact), Some(message)) = (text("contact_id"), number("message_id"))
                else {
                    return Ok(None);
                };
                self.ghl.notes(&contact).await?.into_iter().find_map(|n| {
                    let src = marker::trengo_source(n.body.as_deref().unwrap_or(""))?;
                    (src.message_id == message)
                        .then(|| json!({"note_id": n.id, "message_id": message}))
                })
            }
            Some(IntentKind::TrengoNote) => {
                let (Some(ticket), Some(note)) = (number("ticket_id"), text("note_id")) else {
                    return Ok(None);
                };
                let (notes, _) = load::new_notes(self.trengo, ticket, None).await?;
                notes.into_iter().find_map(|m| {
                    (marker::ghl_source(&m.body).as_deref() == Some(note.as_str()))
                        .then(|| json!({"message_id": m.message_id, "note_id": note}))
                })
            }
            Some(IntentKind::Task) => {
                let (Some(contact), Some(ticket)) = (text("contact_id"), number("ticket_id"))
                else {
                    return Ok(None);
                };
                self.ghl.tasks(&contact).await?.into_iter().find_map(|t| {
                    (self
                        .settings
                        .scope
                        .ticket_in_text(t.body.as_deref().unwrap_or(""))
                        == Some(ticket))
                    .then(|| json!({"task_id": t.id, "ticket_id": ticket, "contact_id": contact}))
                })
            }
            Some(IntentKind::Ticket) => {
                let (Some(task), Some(person)) = (text("task_id"), number("trengo_contact_id"))
                else {
                    return Ok(None);
                };
                let marker = crate::sync::declare::task_subject_marker(&task);
                let filters = TicketFilters {
                    contact_id: Some(person),
                    ..TicketFilters::default()
                };
                let mut stream = std::pin::pin!(self.trengo.tickets(&filters));
                let mut hit = None;
                while let Some(t) = stream.next().await {
                    let t = t?;
                    if t.subject.as_deref().is_some_and(|s| s.contains(&marker)) {
                        hit = Some(json!({"ticket_id": t.id, "task_id": task}));
                        break;
                    }
                }
                hit
            }
            Some(IntentKind::Welcome) => self.find_welcome(intent).await?,
            // Updates are settled by `settle_update` and `settle_pair_update`; an unknown kind
            // (another version's) is not looked for, and is abandoned.
            Some(IntentKind::Update | IntentKind::PairUpdate) | None => None,
        };
        Ok(found)
    }

    /// Settles intents a crash left open: looks for each one's key on the remote side; a
    /// found object is recorded, a missing one is abandoned (the next plan makes it again).
    ///
    /// In a dry run (`plan`, on an in-memory copy of the store) everything but the one remote
    /// write is done: what was found is recorded in the copy, so the plan shown is the one the
    /// next real pass makes after settling.
    pub async fn settle_intents(&mut self, dry_run: bool) -> Result<usize, ItemError> {
        let open = self
            .store
            .call(|s| store::intents::open_all(s.conn()))
            .await?;
        let mut settled = 0;
        for intent in open {
            let kind = IntentKind::from_stored(&intent.kind);
            if kind == Some(IntentKind::Update) {
                self.settle_update(&intent).await?;
                settled += 1;
                continue;
            }
            if kind == Some(IntentKind::PairUpdate) {
                self.settle_pair_update(&intent).await?;
                settled += 1;
                continue;
            }
            let p = &intent.payload;
            let text = |k: &str| p.get(k).and_then(|v| v.as_str()).map(str::to_string);
            let found = self.find_created(&intent).await?;
            let (key, link, now) = (intent.key.clone(), intent.link_id, self.clock.now());
            let payload = intent.payload.clone();
            self.store
                .call(move |s| {
                    let tx = s.transaction()?;
                    match &found {
                        Some(result) => {
                            if let Some(kind) = kind {
                                record_found(&tx, kind, link, &payload, result, now)?;
                            }
                            store::intents::finish(&tx, &key, result, now)?;
                        }
                        None => {
                            store::intents::abandon(
                                &tx,
                                &key,
                                "not found on the remote side after a restart; it will be made again",
                                now,
                            )?;
                        }
                    }
                    tx.commit()?;
                    Ok(())
                })
                .await?;
            settled += 1;
            // A ticket made for a task also needs its first note and the URL in the task.
            if let (Some(result), Some(IntentKind::Ticket)) = (
                self.store
                    .call({
                        let key = intent.key.clone();
                        move |s| store::intents::get(s.conn(), &key)
                    })
                    .await?
                    .and_then(|i| i.result),
                kind,
            ) && let (Some(ticket), Some(task), Some(contact)) = (
                result.get("ticket_id").and_then(|v| v.as_i64()),
                text("task_id"),
                text("contact_id"),
            ) {
                let link = self
                    .store
                    .call(move |s| store::links::by_ticket(s.conn(), ticket))
                    .await?;
                if let Some(link) = link.filter(|_| !dry_run) {
                    let t = self.ghl.task(&contact, &task).await?;
                    let body = t.body.clone().unwrap_or_default();
                    let title = t.title.clone().unwrap_or_default();
                    match self
                        .finish_task_link(link.id, ticket, &task, &contact, &title, &body)
                        .await
                    {
                        Ok(_) => {}
                        Err(e) if e.is_crash() => return Err(e),
                        Err(e) => {
                            self.recorder()
                                .fail(&ItemKey::Contact(contact.clone()), &e.reason_code())
                                .await?
                        }
                    }
                }
            }
        }
        Ok(settled)
    }
}

impl Executor<'_> {
    /// Settles an update a crash (or an unanswered call) left open: if the written side holds
    /// the value the write carried, it landed and its base moves; either way the intent ends.
    async fn settle_update(&self, intent: &store::intents::Intent) -> Result<(), ItemError> {
        let update = serde_json::from_value::<Update>(intent.payload.clone());
        let landed = match &update {
            Ok(update) => self.update_landed(update).await?,
            Err(e) => {
                // Not ours to read (a newer version's journal?): dropping it only means the
                // next plan writes again what may already be there.
                tracing::warn!(key = %intent.key, error = %e, "an unreadable update intent was dropped");
                false
            }
        };
        let (key, now) = (intent.key.clone(), self.clock.now());
        tracing::info!(key = %key, landed, "settled an update left open by a restart");
        self.store
            .call(move |s| {
                let tx = s.transaction()?;
                if let (true, Ok(update)) = (landed, &update) {
                    update.land(&tx, now)?;
                }
                store::intents::remove(&tx, &key)?;
                tx.commit()?;
                Ok(())
            })
            .await?;
        Ok(())
    }

    /// Whether the written side holds what the update wrote. A task or ticket that is gone
    /// counts as not landed (its link leaves scope at the next plan anyway).
    async fn update_landed(&self, update: &Update) -> Result<bool, ItemError> {
        let directory = &self.facts.directory;
        let gone = |e: &crate::api::ApiError| e.status() == Some(404);
        let email = |e: Option<String>| json!(views::email(e.as_deref()));
        let wanted_email = json!(views::email(update.value.as_str()));
        match (update.field, update.side) {
            (Field::Status | Field::Assignee, Side::Ghl) => {
                let (Some(contact), Some(task)) = (&update.contact_id, &update.task_id) else {
                    return Ok(false);
                };
                let task = match self.ghl.task(contact, task).await {
                    Ok(t) => t,
                    Err(e) if gone(&e) => return Ok(false),
                    Err(e) => return Err(e.into()),
                };
                Ok(if update.field == Field::Status {
                    json!(task.completed) == update.value
                } else {
                    email(views::task(&task, contact, directory).assignee) == wanted_email
                })
            }
            (Field::Status | Field::Assignee, Side::Trengo) => {
                let Some(id) = update.ticket_id else {
                    return Ok(false);
                };
                let ticket = match self.trengo.ticket(id).await {
                    Ok(t) => t,
                    Err(e) if gone(&e) => return Ok(false),
                    Err(e) => return Err(e.into()),
                };
                Ok(if update.field == Field::Status {
                    views::status(&ticket.status).is_ok_and(|s| {
                        json!(self.settings.plan.status_table.is_done(s)) == update.value
                    })
                } else {
                    let user = ticket
                        .user_id
                        .and_then(|u| directory.trengo.get(&u).cloned());
                    email(user) == wanted_email
                })
            }
            (Field::Tags, Side::Ghl) => {
                let Some(contact) = &update.contact_id else {
                    return Ok(false);
                };
                let contact = match self.ghl.contact(contact).await {
                    Ok(c) => c,
                    Err(e) if gone(&e) => return Ok(false),
                    Err(e) => return Err(e.into()),
                };
                let tags: BTreeSet<Tag> = contact.tags.iter().map(|t| Tag::new(t)).collect();
                Ok(update.add.is_subset(&tags) && update.remove.is_disjoint(&tags))
            }
            (Field::Tags, Side::Trengo) => {
                // An attach landed if its ticket carries the label; a detach only moves the
                // base once no linked ticket of the contact carries it (the Trengo value is
                // their union), else the next plan goes on detaching.
                let tickets: Vec<i64> = if update.remove.is_empty() {
                    update.ticket_id.into_iter().collect()
                } else {
                    let Some(contact) = update.contact_id.clone() else {
                        return Ok(false);
                    };
                    self.store
                        .call(move |s| store::links::by_contact(s.conn(), &contact))
                        .await?
                        .into_iter()
                        .map(|l| l.ticket_id)
                        .collect()
                };
                let mut union = BTreeSet::new();
                for id in tickets {
                    match self.trengo.ticket(id).await {
                        Ok(t) => union.extend(views::labels(&t)),
                        Err(e) if gone(&e) => {}
                        Err(e) => return Err(e.into()),
                    }
                }
                Ok(update.add.is_subset(&union) && update.remove.is_disjoint(&union))
            }
            (Field::Comments, _) => Ok(false),
        }
    }
}

/// Records what a settled intent had made, as the interrupted create would have, through the
/// executor's own insert-if-absent paths.
fn record_found(
    c: &rusqlite::Connection,
    kind: IntentKind,
    link: Option<LinkId>,
    payload: &serde_json::Value,
    result: &serde_json::Value,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let text =
        |v: &serde_json::Value, k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_string);
    let number = |v: &serde_json::Value, k: &str| v.get(k).and_then(|x| x.as_i64());
    match kind {
        IntentKind::GhlNote | IntentKind::TrengoNote => {
            if let (Some(link), Some(message), Some(note)) =
                (link, number(result, "message_id"), text(result, "note_id"))
            {
                let origin = if kind == IntentKind::GhlNote {
                    CommentOrigin::Trengo
                } else {
                    CommentOrigin::Ghl
                };
                record_pair(c, link, message, &note, origin, now)?;
            }
        }
        IntentKind::Task => {
            if let (Some(task), Some(ticket), Some(contact)) = (
                text(result, "task_id"),
                number(result, "ticket_id"),
                text(result, "contact_id"),
            ) {
                let new = NewLink {
                    ticket_id: ticket,
                    task_id: task,
                    ghl_contact_id: contact,
                    trengo_contact_id: None,
                    origin: Origin::Trengo,
                };
                insert_link(c, new, &[], now)?;
            }
        }
        IntentKind::Ticket => {
            if let (Some(ticket), Some(task), Some(contact)) = (
                number(result, "ticket_id"),
                text(result, "task_id"),
                text(payload, "contact_id"),
            ) {
                let new = NewLink {
                    ticket_id: ticket,
                    task_id: task,
                    ghl_contact_id: contact,
                    trengo_contact_id: number(payload, "trengo_contact_id"),
                    origin: Origin::Ghl,
                };
                insert_link(c, new, &[(BaseName::Status, json!(false))], now)?;
            }
        }
        IntentKind::Welcome => {
            if let (Some(pair), Some(ticket)) =
                (number(payload, "pair_id"), number(result, "ticket_id"))
            {
                store::pairs::set_welcome(c, pair, ticket)?;
            }
        }
        // Settled by `settle_update` and `settle_pair_update`, never recorded here.
        IntentKind::Update | IntentKind::PairUpdate => {}
    }
    Ok(())
}

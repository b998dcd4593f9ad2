//! From API payloads to the planner's normalised views, and the fingerprints that let a poll
//! skip what it has already seen.
//!
//! Normalising here (case-folded tags, lower-case e-mails, UTC times) is what keeps a value
//! read back after our own write from looking like a change (sync-model.md §4.2).

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};

use super::model::{
    ContactView, GhlNote, NoteKind, Tag, TaskView, TicketStatus, TicketView, TrengoNote,
};
use crate::ghl;
use crate::trengo::{self, models::MessageKind};

/// A payload the engine cannot sync, with why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Unreadable(pub String);

/// E-mail addresses of users by id, on both sides (for the optional assignee field).
#[derive(Debug, Clone, Default)]
pub struct Directory {
    /// Trengo user id → e-mail (lower-case).
    pub trengo: BTreeMap<i64, String>,
    /// GHL user id → e-mail (lower-case), in Trengo's terms: a GHL user that an
    /// `[assignee.users]` alias names is filed under the Trengo e-mail it stands for.
    pub ghl: BTreeMap<String, String>,
    /// The GHL users filed through an alias: they win over a GHL user who merely has the
    /// Trengo e-mail, since the alias is the user's explicit word on who is who.
    pub ghl_aliased: BTreeSet<String>,
}

impl Directory {
    /// The Trengo user id for an e-mail.
    pub fn trengo_user(&self, email: &str) -> Option<i64> {
        self.trengo
            .iter()
            .find(|(_, e)| e.as_str() == email)
            .map(|(id, _)| *id)
    }

    /// The GHL user id for a (Trengo-side) e-mail; an aliased user first.
    pub fn ghl_user(&self, email: &str) -> Option<String> {
        let matching: Vec<&String> = self
            .ghl
            .iter()
            .filter(|(_, e)| e.as_str() == email)
            .map(|(id, _)| id)
            .collect();
        matching
            .iter()
            .find(|id| self.ghl_aliased.contains(**id))
            .or(matching.first())
            .map(|id| (*id).clone())
    }
}

/// The planner's status for a Trengo status.
pub fn status(s: &trengo::models::TicketStatus) -> Result<TicketStatus, Unreadable> {
    use trengo::models::TicketStatus as T;
    match s {
        T::Open => Ok(TicketStatus::Open),
        T::Assigned => Ok(TicketStatus::Assigned),
        T::Closed => Ok(TicketStatus::Closed),
        T::Invalid => Ok(TicketStatus::Invalid),
        T::Other(other) => Err(Unreadable(format!(
            "Trengo answered an unknown ticket status `{other}`; trengo-sync knows OPEN, \
             ASSIGNED, CLOSED and INVALID"
        ))),
    }
}

/// An assignee's e-mail as compared: trimmed, lower-case; blank is nobody.
pub fn email(email: Option<&str>) -> Option<String> {
    email
        .map(|e| e.trim().to_lowercase())
        .filter(|e| !e.is_empty())
}

/// Every label of a ticket, normalised.
pub fn labels(ticket: &trengo::Ticket) -> BTreeSet<Tag> {
    ticket
        .labels
        .iter()
        .filter_map(|l| l.name.as_deref())
        .map(Tag::new)
        .filter(|t| !t.is_empty())
        .collect()
}

/// A ticket and its (already fetched) notes as the planner sees them.
pub fn ticket(
    t: &trengo::Ticket,
    notes: Vec<TrengoNote>,
    users: &Directory,
) -> Result<TicketView, Unreadable> {
    Ok(TicketView {
        id: t.id,
        status: status(&t.status)?,
        labels: labels(t),
        assignee: t.user_id.and_then(|u| users.trengo.get(&u).cloned()),
        updated_at: t
            .updated_at
            .or(t.created_at)
            .unwrap_or(DateTime::<Utc>::UNIX_EPOCH),
        subject: t.subject.clone(),
        notes,
    })
}

/// A Trengo message as a note, when it is one the sync may carry.
pub fn note(m: &trengo::Message) -> Option<TrengoNote> {
    let kind = match m.kind {
        MessageKind::Note => NoteKind::Internal,
        MessageKind::Inbound => NoteKind::CustomerInbound,
        MessageKind::Outbound => NoteKind::AgentOutbound,
        MessageKind::Other(_) => return None,
    };
    let body = m.message.clone().unwrap_or_default();
    if body.trim().is_empty() {
        return None;
    }
    Some(TrengoNote {
        message_id: m.id,
        body,
        created_at: m.created_at.unwrap_or(DateTime::<Utc>::UNIX_EPOCH),
        kind,
    })
}

/// A GHL task as the planner sees it.
pub fn task(t: &ghl::Task, contact_id: &str, users: &Directory) -> TaskView {
    TaskView {
        id: t.id.clone(),
        contact_id: t
            .contact_id
            .clone()
            .unwrap_or_else(|| contact_id.to_string()),
        completed: t.completed,
        assignee: t
            .assigned_to
            .as_ref()
            .and_then(|u| users.ghl.get(u).cloned()),
        title: t.title.clone().unwrap_or_default(),
        body: t.body.clone().unwrap_or_default(),
    }
}

/// A GHL contact and its notes as the planner sees them.
pub fn contact(c: &ghl::Contact, notes: &[ghl::Note]) -> ContactView {
    ContactView {
        id: c.id.clone(),
        tags: c
            .tags
            .iter()
            .map(|t| Tag::new(t))
            .filter(|t| !t.is_empty())
            .collect(),
        updated_at: c.date_updated,
        notes: notes
            .iter()
            .filter_map(|n| {
                let body = n.body.clone().unwrap_or_default();
                (!body.trim().is_empty()).then(|| GhlNote {
                    id: n.id.clone(),
                    body,
                    date_added: n.date_added.unwrap_or(DateTime::<Utc>::UNIX_EPOCH),
                })
            })
            .collect(),
    }
}

/// What a poll compares to decide whether a linked ticket changed since the last pass.
pub fn ticket_fingerprint(t: &trengo::Ticket) -> String {
    let labels: Vec<String> = labels(t).into_iter().map(|l| l.to_string()).collect();
    format!(
        "{}|{}|{}|{}|{}|{}",
        t.status,
        labels.join(","),
        t.user_id.map(|u| u.to_string()).unwrap_or_default(),
        t.messages_count.map(|c| c.to_string()).unwrap_or_default(),
        t.updated_at.map(|u| u.to_rfc3339()).unwrap_or_default(),
        t.latest_message_at
            .map(|u| u.to_rfc3339())
            .unwrap_or_default(),
    )
}

/// What a poll compares to decide whether a GHL contact changed since the last pass.
pub fn contact_fingerprint(c: &ghl::Contact) -> String {
    let mut tags: Vec<String> = c.tags.iter().map(|t| Tag::new(t).to_string()).collect();
    tags.sort();
    format!(
        "{}|{}",
        c.date_updated.map(|u| u.to_rfc3339()).unwrap_or_default(),
        tags.join(",")
    )
}

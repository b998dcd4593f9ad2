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

/// A field of an expected print that any listed value matches.
const PRINT_ANY: &str = "*";
/// The status field of an expected print: any status that is done, or any that is not.
const PRINT_ANY_DONE: &str = "~done";
const PRINT_ANY_OPEN: &str = "~open";

/// The print a ticket will show once the pass's own writes to it have landed, recorded instead
/// of reading it back: `before` (as listed or read before the writes) with `labels`, its status
/// done or not (`done`; none: unchanged) and `notes` more messages. When it was last updated
/// and when its latest message came are Trengo's to say, so they match any value until the
/// ticket is next listed ([`ticket_print_matches`]). None when the count was not listed.
pub fn expected_ticket_print(
    before: &trengo::Ticket,
    labels: &BTreeSet<Tag>,
    done: Option<bool>,
    notes: i64,
) -> Option<String> {
    let count = before.messages_count? + notes;
    let status = match done {
        Some(true) => PRINT_ANY_DONE.to_string(),
        Some(false) => PRINT_ANY_OPEN.to_string(),
        None => before.status.to_string(),
    };
    let labels: Vec<String> = labels.iter().map(ToString::to_string).collect();
    Some(format!(
        "{status}|{}|{}|{count}|{PRINT_ANY}|{PRINT_ANY}",
        labels.join(","),
        before.user_id.map(|u| u.to_string()).unwrap_or_default(),
    ))
}

/// Whether a recorded print is an expected one ([`expected_ticket_print`]), not one listed.
pub fn is_expected_print(recorded: &str) -> bool {
    recorded.ends_with("|*|*")
}

/// A print's fields: status, labels, then user, message count, updated, latest message. A label
/// may hold `|`, so the fields around the labels are taken from both ends.
fn print_fields(print: &str) -> Option<(&str, &str, [&str; 4])> {
    let (status, rest) = print.split_once('|')?;
    let mut tail = rest.rsplitn(5, '|');
    let latest = tail.next()?;
    let updated = tail.next()?;
    let count = tail.next()?;
    let user = tail.next()?;
    let labels = tail.next()?;
    Some((status, labels, [user, count, updated, latest]))
}

/// Whether `ticket`, whose print is `print`, shows no change from the print recorded for it:
/// the same print, or the fields an expected print names (the other fields match anything).
pub fn ticket_print_matches(recorded: &str, print: &str, ticket: &trengo::Ticket) -> bool {
    if recorded == print {
        return true;
    }
    if !is_expected_print(recorded) {
        return false;
    }
    let (Some((rs, rl, rest)), Some((_, l, now))) = (print_fields(recorded), print_fields(print))
    else {
        return false;
    };
    let status = match rs {
        PRINT_ANY_DONE => ticket.status.is_done(),
        PRINT_ANY_OPEN => !ticket.status.is_done(),
        s => s == ticket.status.as_str(),
    };
    status
        && rl == l
        && rest
            .iter()
            .zip(now)
            .all(|(r, n)| *r == PRINT_ANY || *r == n)
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

/// Ticket 7 with a status, labels and a message count, and, given `at`, user 3 and both times
/// at `at`: for unit tests of prints.
#[cfg(test)]
pub(crate) fn sample_ticket(
    status: &str,
    labels: &[&str],
    messages: i64,
    at: Option<&str>,
) -> trengo::Ticket {
    let labels: Vec<_> = labels
        .iter()
        .enumerate()
        .map(|(i, n)| serde_json::json!({"id": i + 1, "name": n}))
        .collect();
    let mut json = serde_json::json!({
        "id": 7, "status": status, "labels": labels, "messages_count": messages,
    });
    if let Some(at) = at {
        json["user_id"] = 3.into();
        json["updated_at"] = at.into();
        json["latest_message_at"] = at.into();
    }
    serde_json::from_value(json).unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ticket(status: &str, labels: &[&str], messages: i64, at: &str) -> trengo::Ticket {
        sample_ticket(status, labels, messages, Some(at))
    }

    fn tags(names: &[&str]) -> BTreeSet<Tag> {
        names.iter().map(|n| Tag::new(n)).collect()
    }

    #[test]
    fn an_expected_print_matches_any_times_and_only_the_fields_it_names() {
        let before = ticket("ASSIGNED", &["ghl"], 2, "2026-12-01T10:00:00Z");
        let expected = expected_ticket_print(&before, &tags(&["ghl", "vip"]), Some(true), 1)
            .expect("the count was listed");
        assert!(is_expected_print(&expected));
        let matches =
            |t: &trengo::Ticket| ticket_print_matches(&expected, &ticket_fingerprint(t), t);
        // Closed, labelled, one message more, at whatever time Trengo says.
        assert!(matches(&ticket(
            "CLOSED",
            &["ghl", "vip"],
            3,
            "2026-12-01T10:05:00Z"
        )));
        assert!(matches(&ticket(
            "INVALID",
            &["vip", "ghl"],
            3,
            "2026-12-02T00:00:00Z"
        )));
        // Anything else differs: reopened, a label, a message, an assignee.
        assert!(!matches(&ticket(
            "OPEN",
            &["ghl", "vip"],
            3,
            "2026-12-01T10:05:00Z"
        )));
        assert!(!matches(&ticket(
            "CLOSED",
            &["ghl"],
            3,
            "2026-12-01T10:05:00Z"
        )));
        assert!(!matches(&ticket(
            "CLOSED",
            &["ghl", "vip"],
            4,
            "2026-12-01T10:05:00Z"
        )));
        let mut other_agent = ticket("CLOSED", &["ghl", "vip"], 3, "2026-12-01T10:05:00Z");
        other_agent.user_id = Some(4);
        assert!(!matches(&other_agent));
        // A reopen expects any status that is not done.
        let reopened = expected_ticket_print(&before, &tags(&["ghl"]), Some(false), 0).unwrap();
        for status in ["OPEN", "ASSIGNED"] {
            let t = ticket(status, &["ghl"], 2, "2026-12-03T00:00:00Z");
            assert!(ticket_print_matches(&reopened, &ticket_fingerprint(&t), &t));
        }
        // No count listed: nothing can be expected.
        let mut uncounted = before.clone();
        uncounted.messages_count = None;
        assert!(expected_ticket_print(&uncounted, &tags(&["ghl"]), None, 1).is_none());
    }

    #[test]
    fn a_listed_print_matches_only_itself_and_labels_may_hold_the_separator() {
        let t = ticket("OPEN", &["a|b"], 2, "2026-12-01T10:00:00Z");
        let print = ticket_fingerprint(&t);
        assert!(!is_expected_print(&print));
        assert!(ticket_print_matches(&print, &print, &t));
        let later = ticket("OPEN", &["a|b"], 2, "2026-12-01T10:00:01Z");
        assert!(!ticket_print_matches(
            &print,
            &ticket_fingerprint(&later),
            &later
        ));
        let expected = expected_ticket_print(&t, &tags(&["a|b"]), None, 0).unwrap();
        assert!(ticket_print_matches(
            &expected,
            &ticket_fingerprint(&later),
            &later
        ));
        let relabelled = ticket("OPEN", &["a", "b"], 2, "2026-12-01T10:00:01Z");
        assert!(!ticket_print_matches(
            &expected,
            &ticket_fingerprint(&relabelled),
            &relabelled
        ));
    }
}

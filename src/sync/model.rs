//! The normalised views the planner reads.
//!
//! Change detection builds these from both APIs' answers and the store; the planner only ever
//! sees these types, never raw API models. Normalising here (trimmed, case-folded tags; sets
//! sorted; UTC timestamps; lower-case emails) is what keeps a value read back after our own
//! write from looking like a change (sync-model.md §4.2, "no echo").

use std::collections::BTreeSet;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::policy::{Field, PlanSettings};

/// A normalised tag or label name: trimmed, inner whitespace collapsed, case-folded.
///
/// Trengo labels and GHL contact tags are compared by this form only, so `"VIP "` on one side
/// and `"vip"` on the other are the same tag.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Tag(String);

impl Tag {
    /// Normalises `name` into a tag.
    pub fn new(name: &str) -> Self {
        let folded = name
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .to_lowercase();
        Tag(folded)
    }

    /// The normalised name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether the name is empty after normalisation (such a tag is never synced).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for Tag {
    fn from(name: &str) -> Self {
        Tag::new(name)
    }
}

/// Which tags the sync manages: an allow-list, a prefix, or both (a tag matching either is
/// managed). Every other tag on either side is never read into a comparison and never written.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TagRule {
    /// Tags managed by name (normalised).
    pub allow: BTreeSet<Tag>,
    /// A name prefix such as `trengo:` (normalised); `None` manages no tag by prefix.
    pub prefix: Option<String>,
}

impl TagRule {
    /// A rule managing every tag whose normalised name starts with `prefix`.
    pub fn with_prefix(prefix: &str) -> Self {
        TagRule {
            allow: BTreeSet::new(),
            prefix: Some(Tag::new(prefix).0),
        }
    }

    /// A rule managing exactly the named tags.
    pub fn with_allow<'a>(names: impl IntoIterator<Item = &'a str>) -> Self {
        TagRule {
            allow: names.into_iter().map(Tag::new).collect(),
            prefix: None,
        }
    }

    /// Whether the sync manages `tag`.
    pub fn is_managed(&self, tag: &Tag) -> bool {
        if tag.is_empty() {
            return false;
        }
        if self.allow.contains(tag) {
            return true;
        }
        match &self.prefix {
            // An empty prefix would manage every tag, which is never what a user meant.
            Some(prefix) if !prefix.is_empty() => tag.as_str().starts_with(prefix.as_str()),
            _ => false,
        }
    }

    /// The managed subset of `tags`.
    pub fn managed(&self, tags: &BTreeSet<Tag>) -> BTreeSet<Tag> {
        tags.iter()
            .filter(|t| self.is_managed(t))
            .cloned()
            .collect()
    }
}

/// A Trengo ticket status (trengo-api.md §4.1 \[CLI\]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum TicketStatus {
    /// New or unassigned.
    Open,
    /// Assigned to a user and/or team.
    Assigned,
    /// Closed.
    Closed,
    /// Marked as spam.
    Invalid,
}

impl fmt::Display for TicketStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TicketStatus::Open => "OPEN",
            TicketStatus::Assigned => "ASSIGNED",
            TicketStatus::Closed => "CLOSED",
            TicketStatus::Invalid => "INVALID",
        })
    }
}

impl TicketStatus {
    /// Whether the ticket counts as open for routing (GHL tag adds and notes go to open tickets).
    pub fn is_open(self) -> bool {
        matches!(self, TicketStatus::Open | TicketStatus::Assigned)
    }
}

/// What kind of Trengo message a note is (trengo-api.md §4.5: `NOTE`, `INBOUND`, `OUTBOUND`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum NoteKind {
    /// An internal note (`NOTE`): always synced.
    Internal,
    /// A message from the customer (`INBOUND`): synced only when customer messages are enabled.
    CustomerInbound,
    /// A message sent to the customer (`OUTBOUND`): synced only when customer messages are enabled.
    AgentOutbound,
}

/// One Trengo ticket message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrengoNote {
    pub message_id: i64,
    /// The text or HTML body (Trengo's `message` field).
    pub body: String,
    /// When it was written, UTC.
    pub created_at: DateTime<Utc>,
    /// Internal note or customer-facing message.
    pub kind: NoteKind,
}

/// A Trengo ticket, normalised.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketView {
    /// The ticket id.
    pub id: i64,
    pub status: TicketStatus,
    /// ALL its labels, normalised (the planner filters the managed ones).
    pub labels: BTreeSet<Tag>,
    /// The assigned user's email, lower-case.
    pub assignee: Option<String>,
    /// Its `updated_at`, converted to UTC.
    pub updated_at: DateTime<Utc>,
    /// Its subject, if any.
    pub subject: Option<String>,
    /// Its messages (internal notes and, when read, customer messages).
    pub notes: Vec<TrengoNote>,
}

/// A GHL task, normalised. GHL tasks carry no timestamps (ghl-api.md §4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskView {
    /// The task id.
    pub id: String,
    /// The contact it belongs to.
    pub contact_id: String,
    /// Whether it is completed.
    pub completed: bool,
    /// The assigned user's email, lower-case.
    pub assignee: Option<String>,
    pub title: String,
    /// Its body (carries the ticket URL for links made from Trengo).
    pub body: String,
}

/// One GHL contact note.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GhlNote {
    /// The note id.
    pub id: String,
    /// Its body; may be HTML (ghl-api.md §5 \[recon\]).
    pub body: String,
    /// Its `dateAdded`, UTC.
    pub date_added: DateTime<Utc>,
}

/// A GHL contact, normalised.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactView {
    /// The contact id.
    pub id: String,
    /// ALL its tags, normalised (the planner filters the managed ones).
    pub tags: BTreeSet<Tag>,
    /// Its `dateUpdated`, when GHL gave one.
    pub updated_at: Option<DateTime<Utc>>,
    pub notes: Vec<GhlNote>,
}

pub use crate::store::links::LinkId;

/// The per-link bases: the value of each field as last synced (`None`: never synced).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkBases {
    /// The "done" value last synced for status.
    pub status: Option<bool>,
    /// The assignee email last synced (`Some(None)`: synced as unassigned).
    pub assignee: Option<Option<String>>,
}

/// A conflict held under the `manual` policy until `trengo-sync resolve` settles it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldConflict {
    /// The link it belongs to.
    pub link: LinkId,
    /// The field in conflict.
    pub field: Field,
    /// The base when it was held.
    pub base: serde_json::Value,
    /// Trengo's value when it was held.
    pub trengo: serde_json::Value,
    /// GHL's value when it was held.
    pub ghl: serde_json::Value,
}

/// One active link with both sides' current values and its bases.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkView {
    pub link: LinkId,
    /// When the link was made (GHL notes older than the group's oldest link stay where they are).
    pub created_at: DateTime<Utc>,
    /// Whether the ticket/task still matches the scope rule; `false` ends the link.
    pub in_scope: bool,
    /// The Trengo side.
    pub ticket: TicketView,
    /// The GHL side.
    pub task: TaskView,
    /// The last synced values.
    pub bases: LinkBases,
    /// The comment map: Trengo message id ⇄ GHL note id.
    pub comments: Vec<(i64, String)>,
    /// Fields with a held conflict: the planner leaves them alone until resolved.
    pub held: Vec<Field>,
    /// The side whose item is gone (404 or 410): the link ends as gone (with `in_scope` false).
    #[serde(default)]
    pub gone: Option<super::operation::Side>,
}

/// One GHL contact with its active links. Tags are synced at this level.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactGroup {
    pub contact: ContactView,
    /// The managed tag set last synced (`None`: never synced).
    pub tag_base: Option<BTreeSet<Tag>>,
    /// The contact's ACTIVE links, open or closed tickets.
    pub links: Vec<LinkView>,
    /// Only some of the contact's links were read (one link's fields, after a hint): the
    /// planner plans no contact item for it, since the Trengo side of its tags is the union
    /// over every linked ticket and the unread ones would read as removed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub partial: bool,
}

/// Something entering scope with no link yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Candidate {
    /// A ticket matching the Trengo scope rule.
    Ticket {
        ticket: TicketView,
        /// Its contact's email, if any.
        contact_email: Option<String>,
        /// Its contact's phone, if any.
        contact_phone: Option<String>,
        /// Its contact's name, if any.
        contact_name: Option<String>,
        /// The ticket's URL (the idempotency key carried in the task body).
        url: String,
    },
    /// A task matching the GHL scope rule.
    Task {
        task: TaskView,
        contact: ContactView,
        /// The ticket id of this Trengo account found in the task body, if any (adoption).
        ticket_url_of_this_account: Option<i64>,
    },
}

/// Everything the planner needs for one pass.
#[derive(Debug, Clone)]
pub struct PlanInput {
    /// The pass's time (the planner has no clock of its own).
    pub now: DateTime<Utc>,
    /// Every contact with active links.
    pub contacts: Vec<ContactGroup>,
    /// Items entering scope.
    pub candidates: Vec<Candidate>,
    /// The configured rules.
    pub settings: PlanSettings,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_trimmed_and_case_folded() {
        assert_eq!(Tag::new("  VIP  Client "), Tag::new("vip client"));
        assert_eq!(Tag::new("Trengo:Hot").to_string(), "trengo:hot");
    }

    #[test]
    fn tag_rule_manages_prefix_and_allow_list() {
        let mut rule = TagRule::with_prefix("Trengo:");
        rule.allow.insert(Tag::new("vip"));
        assert!(rule.is_managed(&Tag::new("trengo:hot")));
        assert!(rule.is_managed(&Tag::new("VIP")));
        assert!(!rule.is_managed(&Tag::new("newsletter")));
        assert!(!rule.is_managed(&Tag::new("  ")));
    }

    #[test]
    fn empty_prefix_manages_nothing() {
        let rule = TagRule::with_prefix("");
        assert!(!rule.is_managed(&Tag::new("anything")));
    }
}

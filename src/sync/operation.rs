//! The operations a plan is made of, and the plan itself.
//!
//! The planner only describes; the executor (the only writer) applies. Ops are grouped into
//! items ([`ItemKey`], in `keys.rs`): the unit of failure. The executor applies one item's ops together; a
//! failed item goes to the retry table and never blocks the others. That is why every tag op of
//! a contact (contact tags AND the labels on its tickets) shares one item: committing the new tag
//! base while a label write failed would turn the failure into a removal on the next pass.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

pub use super::keys::ItemKey;
use super::model::{LinkId, Tag};
use super::policy::Field;

/// One of the two systems.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Side {
    /// Trengo.
    Trengo,
    /// GoHighLevel.
    Ghl,
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Side::Trengo => "trengo",
            Side::Ghl => "ghl",
        })
    }
}

/// One operation.
///
/// The fields the variants share mean the same everywhere: `link` is the link the operation
/// belongs to (bases, journal entries and the comment map hang off it); `ticket_id` is the
/// Trengo ticket's numeric id; `task_id`, `contact_id` and `note_id` are GHL's string ids;
/// `message_id` is the Trengo message's id; `tags` are managed tags only; `field` is the synced
/// field a base or conflict is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    // ---- writes ----
    /// Complete or reopen a GHL task.
    SetTaskCompleted {
        link: LinkId,
        /// The task's contact.
        contact_id: String,
        task_id: String,
        /// The new value.
        completed: bool,
    },
    /// Close a Trengo ticket.
    CloseTicket { link: LinkId, ticket_id: i64 },
    /// Reopen a Trengo ticket.
    ReopenTicket { link: LinkId, ticket_id: i64 },
    /// Add managed tags to a GHL contact.
    AddContactTags {
        contact_id: String,
        tags: BTreeSet<Tag>,
    },
    /// Remove managed tags from a GHL contact.
    RemoveContactTags {
        contact_id: String,
        tags: BTreeSet<Tag>,
    },
    /// Attach a label to a Trengo ticket (created first when missing and allowed).
    AttachLabel {
        link: LinkId,
        ticket_id: i64,
        /// The label.
        tag: Tag,
    },
    /// Detach a label from a Trengo ticket.
    DetachLabel {
        link: LinkId,
        ticket_id: i64,
        /// The label.
        tag: Tag,
    },
    /// Copy a Trengo message to a GHL contact note.
    CreateGhlNote {
        link: LinkId,
        contact_id: String,
        /// The source message.
        message_id: i64,
        /// The note text, marker included.
        body: String,
    },
    /// Copy a GHL note to a Trengo internal note (never a customer message).
    CreateTrengoNote {
        /// The link whose ticket receives it.
        link: LinkId,
        ticket_id: i64,
        /// The source note.
        note_id: String,
        /// The note text, marker included.
        body: String,
    },
    /// Assign a Trengo ticket to the user with this email.
    AssignTicket {
        link: LinkId,
        ticket_id: i64,
        /// The user's email.
        email: String,
    },
    /// Set (or clear) a GHL task's assignee.
    SetTaskAssignee {
        link: LinkId,
        /// The task's contact.
        contact_id: String,
        task_id: String,
        /// The user's email; `None` unassigns.
        email: Option<String>,
    },

    // ---- link life ----
    /// Link a Trengo ticket: resolve or create the GHL contact, adopt or create the task.
    LinkTicket {
        ticket_id: i64,
        /// Its contact's email.
        email: Option<String>,
        /// Its contact's phone.
        phone: Option<String>,
        /// Its contact's name.
        name: Option<String>,
        /// The task title.
        title: String,
        /// The ticket URL (the idempotency key in the task body).
        url: String,
    },
    /// Link a GHL task: create a ticket, post the body as an internal note, write the URL back.
    LinkTask {
        task_id: String,
        contact_id: String,
        title: String,
        body: String,
    },
    /// Link a task that already names a ticket of this account (no remote create).
    AdoptTask {
        task_id: String,
        contact_id: String,
        /// The ticket it names.
        ticket_id: i64,
    },
    /// End a link that left scope; deletes nothing.
    Unlink { link: LinkId },
    /// End a link whose ticket or task is gone (answered 404 or 410: deleted, merged away, or
    /// no longer visible to the token); deletes nothing, and the link is never read again.
    EndGone {
        link: LinkId,
        /// The side whose item is gone.
        side: Side,
    },

    // ---- store only ----
    /// Record a field's synced value.
    SetLinkBase {
        link: LinkId,
        field: Field,
        value: serde_json::Value,
    },
    /// Record a contact's synced managed tag set.
    SetTagBase {
        contact_id: String,
        /// The managed tags.
        tags: BTreeSet<Tag>,
    },
    /// Adopt a message ⇄ note pair found by its marker instead of copying again.
    MapComment {
        link: LinkId,
        /// The Trengo message.
        message_id: i64,
        /// The GHL note.
        note_id: String,
    },
    /// Hold a conflict under the `manual` policy.
    HoldConflict {
        link: LinkId,
        field: Field,
        base: serde_json::Value,
        /// Trengo's value.
        trengo: serde_json::Value,
        /// GHL's value.
        ghl: serde_json::Value,
    },
    /// Record a conflict settled by policy; the losing value goes to the ledger.
    SettleConflict {
        link: LinkId,
        field: Field,
        /// The side whose value won.
        winner: Side,
        /// The value that lost.
        losing: serde_json::Value,
    },
}

impl Op {
    /// The side this op writes, or `None` for a store-only op.
    pub fn side(&self) -> Option<Side> {
        match self {
            Op::SetTaskCompleted { .. }
            | Op::AddContactTags { .. }
            | Op::RemoveContactTags { .. }
            | Op::CreateGhlNote { .. }
            | Op::SetTaskAssignee { .. }
            | Op::LinkTicket { .. } => Some(Side::Ghl),
            Op::CloseTicket { .. }
            | Op::ReopenTicket { .. }
            | Op::AttachLabel { .. }
            | Op::DetachLabel { .. }
            | Op::CreateTrengoNote { .. }
            | Op::AssignTicket { .. }
            | Op::LinkTask { .. } => Some(Side::Trengo),
            Op::AdoptTask { .. }
            | Op::Unlink { .. }
            | Op::EndGone { .. }
            | Op::SetLinkBase { .. }
            | Op::SetTagBase { .. }
            | Op::MapComment { .. }
            | Op::HoldConflict { .. }
            | Op::SettleConflict { .. } => None,
        }
    }

    /// Whether this op writes to an API.
    pub fn is_write(&self) -> bool {
        self.side().is_some()
    }

    /// The Trengo ticket this op writes to (its status, labels, assignee or messages), if it
    /// writes one.
    pub fn ticket_written(&self) -> Option<i64> {
        match self {
            Op::CloseTicket { ticket_id, .. }
            | Op::ReopenTicket { ticket_id, .. }
            | Op::AttachLabel { ticket_id, .. }
            | Op::DetachLabel { ticket_id, .. }
            | Op::CreateTrengoNote { ticket_id, .. }
            | Op::AssignTicket { ticket_id, .. } => Some(*ticket_id),
            _ => None,
        }
    }

    /// The link this op concerns, if it concerns one.
    pub fn link(&self) -> Option<LinkId> {
        match self {
            Op::SetTaskCompleted { link, .. }
            | Op::CloseTicket { link, .. }
            | Op::ReopenTicket { link, .. }
            | Op::AttachLabel { link, .. }
            | Op::DetachLabel { link, .. }
            | Op::CreateGhlNote { link, .. }
            | Op::CreateTrengoNote { link, .. }
            | Op::AssignTicket { link, .. }
            | Op::SetTaskAssignee { link, .. }
            | Op::Unlink { link }
            | Op::EndGone { link, .. }
            | Op::SetLinkBase { link, .. }
            | Op::MapComment { link, .. }
            | Op::HoldConflict { link, .. }
            | Op::SettleConflict { link, .. } => Some(*link),
            Op::AddContactTags { .. }
            | Op::RemoveContactTags { .. }
            | Op::LinkTicket { .. }
            | Op::LinkTask { .. }
            | Op::AdoptTask { .. }
            | Op::SetTagBase { .. } => None,
        }
    }
}

fn tag_list(tags: &BTreeSet<Tag>) -> String {
    tags.iter().map(Tag::as_str).collect::<Vec<_>>().join(", ")
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Op::SetTaskCompleted {
                link,
                task_id,
                completed,
                ..
            } => {
                let verb = if *completed { "complete" } else { "reopen" };
                write!(f, "{verb} GHL task {task_id} (link {link})")
            }
            Op::CloseTicket { link, ticket_id } => {
                write!(f, "close Trengo ticket #{ticket_id} (link {link})")
            }
            Op::ReopenTicket { link, ticket_id } => {
                write!(f, "reopen Trengo ticket #{ticket_id} (link {link})")
            }
            Op::AddContactTags { contact_id, tags } => {
                write!(
                    f,
                    "add GHL tags [{}] to contact {contact_id}",
                    tag_list(tags)
                )
            }
            Op::RemoveContactTags { contact_id, tags } => {
                write!(
                    f,
                    "remove GHL tags [{}] from contact {contact_id}",
                    tag_list(tags)
                )
            }
            Op::AttachLabel {
                link,
                ticket_id,
                tag,
            } => write!(
                f,
                "attach label `{tag}` to ticket #{ticket_id} (link {link})"
            ),
            Op::DetachLabel {
                link,
                ticket_id,
                tag,
            } => write!(
                f,
                "detach label `{tag}` from ticket #{ticket_id} (link {link})"
            ),
            Op::CreateGhlNote {
                link,
                contact_id,
                message_id,
                ..
            } => write!(
                f,
                "copy Trengo message {message_id} to a note on GHL contact {contact_id} (link {link})"
            ),
            Op::CreateTrengoNote {
                link,
                ticket_id,
                note_id,
                ..
            } => write!(
                f,
                "copy GHL note {note_id} to an internal note on ticket #{ticket_id} (link {link})"
            ),
            Op::AssignTicket {
                link,
                ticket_id,
                email,
            } => write!(f, "assign ticket #{ticket_id} to {email} (link {link})"),
            Op::SetTaskAssignee {
                link,
                task_id,
                email,
                ..
            } => match email {
                Some(email) => write!(f, "assign GHL task {task_id} to {email} (link {link})"),
                None => write!(f, "unassign GHL task {task_id} (link {link})"),
            },
            Op::LinkTicket { ticket_id, url, .. } => {
                write!(f, "link ticket #{ticket_id} to a GHL task ({url})")
            }
            Op::LinkTask {
                task_id,
                contact_id,
                ..
            } => write!(
                f,
                "link GHL task {task_id} of contact {contact_id} to a new Trengo ticket"
            ),
            Op::AdoptTask {
                task_id, ticket_id, ..
            } => write!(
                f,
                "adopt GHL task {task_id} as the link of ticket #{ticket_id}"
            ),
            Op::Unlink { link } => write!(f, "end link {link} (left scope; nothing deleted)"),
            Op::EndGone { link, side } => write!(
                f,
                "end link {link}: its {} is gone (deleted, merged or not visible; nothing deleted)",
                match side {
                    Side::Trengo => "Trengo ticket",
                    Side::Ghl => "GHL task",
                }
            ),
            Op::SetLinkBase { link, field, value } => {
                write!(f, "record {field} = {value} as synced (link {link})")
            }
            Op::SetTagBase { contact_id, tags } => write!(
                f,
                "record tags [{}] as synced for contact {contact_id}",
                tag_list(tags)
            ),
            Op::MapComment {
                link,
                message_id,
                note_id,
            } => write!(
                f,
                "map Trengo message {message_id} to GHL note {note_id} (link {link}, already copied)"
            ),
            Op::HoldConflict {
                link,
                field,
                trengo,
                ghl,
                ..
            } => write!(
                f,
                "hold {field} conflict: trengo {trengo} vs ghl {ghl} (link {link}; settle with `trengo-sync resolve {link} {field} --take trengo|ghl`)"
            ),
            Op::SettleConflict {
                link,
                field,
                winner,
                losing,
            } => write!(
                f,
                "settle {field} conflict for {winner}; losing value {losing} goes to the ledger (link {link})"
            ),
        }
    }
}

/// The ops of one item, applied together.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemPlan {
    pub item: ItemKey,
    /// Its ops, in the order to apply them.
    pub ops: Vec<Op>,
}

/// Why the mass-change brake stopped a pass.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BrakeReport {
    /// Tickets the plan would close.
    pub closes: usize,
    /// Tasks the plan would complete.
    pub completions: usize,
    /// Links the plan would end.
    pub unlinks: usize,
    /// Distinct links affected by any of those.
    pub affected_links: usize,
    /// Active links in the pass.
    pub active_links: usize,
    /// The configured largest share.
    pub max_fraction: f64,
    /// The configured floor.
    pub min_links: usize,
}

impl fmt::Display for BrakeReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "brake: this pass would close {} tickets, complete {} tasks and end {} links, touching {} of {} active links (more than {:.0}%), so the executor writes nothing. Check the scope rules, or raise `brake.max_fraction` if this is intended.",
            self.closes,
            self.completions,
            self.unlinks,
            self.affected_links,
            self.active_links,
            self.max_fraction * 100.0
        )
    }
}

/// What one pass would do.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// The items, sorted by key.
    pub items: Vec<ItemPlan>,
    /// Set when the brake tripped: the executor then writes nothing.
    pub brake: Option<BrakeReport>,
}

impl Plan {
    /// Whether the plan has no op at all.
    pub fn is_empty(&self) -> bool {
        self.items.iter().all(|i| i.ops.is_empty())
    }

    /// How many ops write to an API.
    pub fn write_count(&self) -> usize {
        self.ops().filter(|op| op.is_write()).count()
    }

    /// Every op, item by item.
    pub fn ops(&self) -> impl Iterator<Item = &Op> {
        self.items.iter().flat_map(|i| i.ops.iter())
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return writeln!(f, "nothing to do: both sides agree");
        }
        writeln!(
            f,
            "{} items, {} writes ({} ops)",
            self.items.len(),
            self.write_count(),
            self.ops().count()
        )?;
        for item in &self.items {
            writeln!(f, "{}:", item.item)?;
            for op in &item.ops {
                writeln!(f, "  {op}")?;
            }
        }
        if let Some(brake) = &self.brake {
            writeln!(f, "{brake}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_only_ops_are_not_writes() {
        let link = LinkId(1);
        let base = Op::SetLinkBase {
            link,
            field: Field::Status,
            value: serde_json::json!(true),
        };
        assert_eq!(base.side(), None);
        assert!(!Op::Unlink { link }.is_write());
        let close = Op::CloseTicket { link, ticket_id: 7 };
        assert_eq!(close.side(), Some(Side::Trengo));
        let plan = Plan {
            items: vec![ItemPlan {
                item: ItemKey::Ticket(7),
                ops: vec![close, base],
            }],
            brake: None,
        };
        assert!(!plan.is_empty());
        assert_eq!(plan.write_count(), 1);
        assert!(Plan::default().is_empty());
    }
}

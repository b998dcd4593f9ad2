//! The journal of updates: what a status, assignee or tag write is about to change, committed
//! before the call, so that a crash between the write and its base cannot turn our own write
//! into somebody else's edit.
//!
//! Without it, this loses an update (the crash loop found it): the executor completes a GHL
//! task because the ticket was closed, and is killed before the base records `done`; meanwhile
//! the agent reopens the ticket. On restart the three-way merge reads the task's completion as
//! a GHL change and the ticket as unchanged, so GHL wins and the reopen is undone.
//!
//! So each update write is journalled as an intent of kind [`IntentKind::Update`](super::IntentKind::Update) holding the value it
//! writes and the side it writes to. When the item ends, its intents end in the same
//! transaction as its bases. An intent a crash left open is settled before the next plan by
//! reading the written side: if it holds the value the write carried, the write landed and
//! the base becomes that value ([`Update::land`]); otherwise it did not land (or was changed
//! back by a person since, which the values alone cannot tell apart), the base stays, and the
//! plan writes it again. The second reading is the safe default: it only matters if someone
//! edits the very field we wrote, on the side we wrote it, while the daemon is down.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use rusqlite::Connection;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::store::{self, StoreError};
use crate::sync::keys::BaseName;
use crate::sync::load::tag_set;
use crate::sync::model::Tag;
use crate::sync::operation::{ItemKey, ItemPlan, Op, Side};
use crate::sync::policy::Field;

/// One update write, as journalled before it is made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Update {
    /// The field written.
    pub field: Field,
    /// The side written to.
    pub side: Side,
    /// The link, for a link field (status, assignee) or a label write.
    pub link: Option<i64>,
    /// The GHL contact: the task's contact, or the contact whose tags are merged.
    pub contact_id: Option<String>,
    /// The ticket written, for a Trengo write.
    pub ticket_id: Option<i64>,
    /// The task written, for a GHL status or assignee write.
    pub task_id: Option<String>,
    /// For status and assignee: the base the write establishes (the planner's own value).
    pub value: Value,
    /// For tags: the managed tags added.
    pub add: BTreeSet<Tag>,
    /// For tags: the managed tags removed.
    pub remove: BTreeSet<Tag>,
}

impl Update {
    /// The update an op of this item makes, or `None` for an op that is not an update (a
    /// create, a link op, a store-only op) or a scalar write whose item sets no base.
    pub fn of(op: &Op, item: &ItemPlan) -> Option<Update> {
        let scalar = |field: Field, side: Side, link: &crate::sync::model::LinkId| {
            let value = item.ops.iter().find_map(|o| match o {
                Op::SetLinkBase {
                    link: l,
                    field: f,
                    value,
                } if l == link && *f == field => Some(value.clone()),
                _ => None,
            })?;
            Some(Update {
                field,
                side,
                link: Some(link.0),
                contact_id: None,
                ticket_id: None,
                task_id: None,
                value,
                add: BTreeSet::new(),
                remove: BTreeSet::new(),
            })
        };
        let tags = |side: Side, contact: Option<&str>, add: BTreeSet<Tag>, remove| Update {
            field: Field::Tags,
            side,
            link: None,
            contact_id: contact.map(str::to_string),
            ticket_id: None,
            task_id: None,
            value: Value::Null,
            add,
            remove,
        };
        let item_contact = match &item.item {
            ItemKey::Contact(c) => Some(c.as_str()),
            _ => None,
        };
        match op {
            Op::SetTaskCompleted {
                link,
                contact_id,
                task_id,
                ..
            }
            | Op::SetTaskAssignee {
                link,
                contact_id,
                task_id,
                ..
            } => {
                let field = if matches!(op, Op::SetTaskCompleted { .. }) {
                    Field::Status
                } else {
                    Field::Assignee
                };
                Some(Update {
                    contact_id: Some(contact_id.clone()),
                    task_id: Some(task_id.clone()),
                    ..scalar(field, Side::Ghl, link)?
                })
            }
            Op::CloseTicket { link, ticket_id } | Op::ReopenTicket { link, ticket_id } => {
                Some(Update {
                    ticket_id: Some(*ticket_id),
                    ..scalar(Field::Status, Side::Trengo, link)?
                })
            }
            Op::AssignTicket {
                link, ticket_id, ..
            } => Some(Update {
                ticket_id: Some(*ticket_id),
                ..scalar(Field::Assignee, Side::Trengo, link)?
            }),
            Op::AddContactTags {
                contact_id,
                tags: t,
            }
            | Op::RemoveContactTags {
                contact_id,
                tags: t,
            } => {
                let (add, remove) = added_or_removed(op, t.clone());
                Some(tags(Side::Ghl, Some(contact_id), add, remove))
            }
            Op::AttachLabel {
                link,
                ticket_id,
                tag,
            }
            | Op::DetachLabel {
                link,
                ticket_id,
                tag,
            } => {
                let (add, remove) = added_or_removed(op, BTreeSet::from([tag.clone()]));
                Some(Update {
                    link: Some(link.0),
                    ticket_id: Some(*ticket_id),
                    ..tags(Side::Trengo, item_contact, add, remove)
                })
            }
            _ => None,
        }
    }

    /// A fresh intent key: updates recur (a status toggles many times), so the key carries a
    /// random part rather than the clock, which tests may hold still.
    pub fn key(&self) -> String {
        let subject = match (&self.link, &self.contact_id) {
            (Some(link), _) => format!("link-{link}"),
            (None, Some(contact)) => format!("contact-{contact}"),
            (None, None) => "none".to_string(),
        };
        format!(
            "{}:{}:{subject}:{}",
            super::IntentKind::Update.as_str(),
            self.field,
            uuid::Uuid::new_v4()
        )
    }

    /// Whether knowing that this write landed is enough to move the base. A label detached
    /// from one ticket is not: the Trengo value is the union over the contact's tickets, which
    /// may still carry it, and only a reading of them all can tell (see the engine's settle).
    pub fn lands_alone(&self) -> bool {
        !(self.field == Field::Tags && self.side == Side::Trengo && !self.remove.is_empty())
    }

    /// Records what the write changed, as if its item had finished: the link's base takes the
    /// written value, or the contact's tag base gains the added tags and loses the removed
    /// ones. A contact without a tag base yet keeps none (its first merge records one).
    pub fn land(&self, c: &Connection, now: DateTime<Utc>) -> Result<(), StoreError> {
        match self.field {
            Field::Status | Field::Assignee => {
                if let Some(link) = self.link {
                    store::bases::put(
                        c,
                        store::links::LinkId(link),
                        BaseName::from(self.field),
                        &self.value,
                        now,
                    )?;
                }
            }
            Field::Tags => {
                let Some(contact) = &self.contact_id else {
                    return Ok(());
                };
                let Some(base) = store::bases::get_contact(c, contact, BaseName::Tags)? else {
                    return Ok(());
                };
                let mut set = tag_set(&base.value);
                set.extend(self.add.iter().cloned());
                set.retain(|t| !self.remove.contains(t));
                let list: Vec<&str> = set.iter().map(Tag::as_str).collect();
                store::bases::put_contact(c, contact, BaseName::Tags, &json!(list), now)?;
            }
            Field::Comments => {}
        }
        Ok(())
    }
}

/// `(added, removed)`: the tags go to the side the op names.
fn added_or_removed(op: &Op, tags: BTreeSet<Tag>) -> (BTreeSet<Tag>, BTreeSet<Tag>) {
    match op {
        Op::AddContactTags { .. } | Op::AttachLabel { .. } => (tags, BTreeSet::new()),
        _ => (BTreeSet::new(), tags),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;
    use crate::store::links::tests::at;
    use crate::sync::model::LinkId;

    fn ticket_item(ops: Vec<Op>) -> ItemPlan {
        ItemPlan {
            item: ItemKey::Ticket(7),
            ops,
        }
    }

    #[test]
    fn a_status_write_journals_the_base_its_item_sets() {
        let write = Op::SetTaskCompleted {
            link: LinkId(3),
            contact_id: "c".into(),
            task_id: "t".into(),
            completed: true,
        };
        let item = ticket_item(vec![
            write.clone(),
            Op::SetLinkBase {
                link: LinkId(3),
                field: Field::Status,
                value: json!(true),
            },
        ]);
        let update = Update::of(&write, &item).unwrap();
        assert_eq!((update.field, update.side), (Field::Status, Side::Ghl));
        assert_eq!(update.value, json!(true));
        assert_eq!(update.task_id.as_deref(), Some("t"));
        // A write whose item sets no base has nothing to protect.
        assert_eq!(Update::of(&write, &ticket_item(vec![write.clone()])), None);
        // Keys never repeat, even for the same write at the same instant.
        assert_ne!(update.key(), update.key());
    }

    #[test]
    fn landing_tags_moves_only_the_written_tags_in_the_contact_base() {
        let store = Store::open_in_memory().unwrap();
        let c = store.conn();
        let now = at("2026-01-01T00:00:00Z");
        store::bases::put_contact(c, "c1", BaseName::Tags, &json!(["billing", "vip"]), now)
            .unwrap();
        let item = ItemPlan {
            item: ItemKey::Contact("c1".into()),
            ops: Vec::new(),
        };
        let add = Op::AddContactTags {
            contact_id: "c1".into(),
            tags: BTreeSet::from([Tag::new("Callback")]),
        };
        Update::of(&add, &item).unwrap().land(c, now).unwrap();
        let detach = Op::DetachLabel {
            link: LinkId(1),
            ticket_id: 9,
            tag: Tag::new("vip"),
        };
        let update = Update::of(&detach, &item).unwrap();
        assert!(!update.lands_alone());
        update.land(c, now).unwrap();
        let base = store::bases::get_contact(c, "c1", BaseName::Tags)
            .unwrap()
            .unwrap();
        assert_eq!(base.value, json!(["billing", "callback"]));
        // A contact with no tag base yet keeps none.
        let add_c2 = Op::AddContactTags {
            contact_id: "c2".into(),
            tags: BTreeSet::from([Tag::new("vip")]),
        };
        Update::of(&add_c2, &item).unwrap().land(c, now).unwrap();
        assert!(
            store::bases::get_contact(c, "c2", BaseName::Tags)
                .unwrap()
                .is_none()
        );
    }
}

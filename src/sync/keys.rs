//! Typed keys: what the store keeps as strings, named by type in the code. An [`ItemKey`]
//! names an item (the unit of failure) and has one stored form, the retry table's; a
//! [`BaseName`] names a base (a synced field's last value, or a print the detection compares
//! with), with the stored name each has kept since the store's first version.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::policy::Field;
pub use crate::store::bases::BaseName;

impl From<Field> for BaseName {
    /// A synced field's base: the same name as the field (`status`, `assignee`, `tags`).
    fn from(field: Field) -> Self {
        match field {
            Field::Status => BaseName::Status,
            Field::Assignee => BaseName::Assignee,
            Field::Tags => BaseName::Tags,
            Field::Comments => BaseName::Comments,
        }
    }
}

/// The unit of failure: one contact (its tags, and its links leaving scope), one ticket (its
/// link's status, assignee, notes and creation), one GHL task entering scope, or one contact's
/// task listing (read for tasks entering scope; detection fails it, the planner never plans it).
///
/// A failed item is kept in the retry table under its [`stored`](Self::stored) form.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ItemKey {
    /// A GHL contact's tag merge, and the unlinking of its links that left scope.
    Contact(String),
    /// A Trengo ticket and its link.
    Ticket(i64),
    /// A GHL task entering scope, with its contact (listed again when the item is retried).
    Task { contact: String, task: String },
    /// A GHL contact's task listing.
    Tasks(String),
    /// The contact pairs of a GHL contact (`[contacts]`): their fields, context and task
    /// details.
    Pair(String),
}

impl ItemKey {
    /// The form the retry table keeps: `contact:{id}`, `ticket:{id}`, `task:{contact}/{task}`,
    /// `task:{contact}/` for a task listing. Stores written by earlier versions hold it: it
    /// must not change.
    pub fn stored(&self) -> String {
        match self {
            ItemKey::Contact(id) => format!("contact:{id}"),
            ItemKey::Ticket(id) => format!("ticket:{id}"),
            ItemKey::Task { contact, task } => format!("task:{contact}/{task}"),
            ItemKey::Tasks(contact) => format!("task:{contact}/"),
            ItemKey::Pair(contact) => format!("pair:{contact}"),
        }
    }

    /// Reads a [`stored`](Self::stored) form back; `None` for one this version does not know.
    pub fn from_stored(stored: &str) -> Option<Self> {
        let (kind, id) = stored.split_once(':')?;
        match kind {
            "contact" if !id.is_empty() => Some(ItemKey::Contact(id.to_string())),
            "ticket" => id.parse().ok().map(ItemKey::Ticket),
            "pair" if !id.is_empty() => Some(ItemKey::Pair(id.to_string())),
            "task" => match id.split_once('/') {
                Some((contact, "")) => Some(ItemKey::Tasks(contact.to_string())),
                Some((contact, task)) => Some(ItemKey::Task {
                    contact: contact.to_string(),
                    task: task.to_string(),
                }),
                // A bare task id: its contact is unknown, and only the contact's listing
                // brings the task back.
                None => None,
            },
            _ => None,
        }
    }

    /// The GHL contact the item is about, if it names one.
    pub fn contact(&self) -> Option<&str> {
        match self {
            ItemKey::Contact(c)
            | ItemKey::Task { contact: c, .. }
            | ItemKey::Tasks(c)
            | ItemKey::Pair(c) => Some(c),
            ItemKey::Ticket(_) => None,
        }
    }
}

impl fmt::Display for ItemKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ItemKey::Contact(id) => write!(f, "contact {id}"),
            ItemKey::Ticket(id) => write!(f, "ticket #{id}"),
            ItemKey::Task { task, .. } => write!(f, "task {task}"),
            ItemKey::Tasks(contact) => write!(f, "the tasks of contact {contact}"),
            ItemKey::Pair(contact) => write!(f, "the contact pairs of contact {contact}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fields_base_keeps_the_fields_name() {
        for field in Field::ALL {
            assert_eq!(BaseName::from(field).as_str(), field.to_string());
        }
    }

    #[test]
    fn item_keys_keep_the_stored_form_earlier_versions_wrote() {
        let keys = [
            (ItemKey::Contact("c1".into()), "contact:c1"),
            (ItemKey::Ticket(7), "ticket:7"),
            (
                ItemKey::Task {
                    contact: "c1".into(),
                    task: "t9".into(),
                },
                "task:c1/t9",
            ),
            (ItemKey::Tasks("c1".into()), "task:c1/"),
        ];
        for (key, stored) in keys {
            assert_eq!(key.stored(), stored);
            assert_eq!(ItemKey::from_stored(stored), Some(key));
        }
        for unknown in ["", "contact:", "ticket:x", "task:t9", "link:3", "ticket"] {
            assert_eq!(ItemKey::from_stored(unknown), None, "{unknown}");
        }
    }
}

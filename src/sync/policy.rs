//! The configurable rules the planner applies: conflict policies, directions, the status
//! table, the managed tag rule and the mass-change brake (sync-model.md §3, §4.1, §4.7).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::model::{TagRule, TicketStatus};

/// How a conflict (both sides changed a field differently) is settled.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Policy {
    /// The side with the later timestamp wins; a tie or a missing timestamp goes to Trengo.
    #[default]
    Newest,
    /// Trengo always wins.
    Trengo,
    /// GHL always wins.
    Ghl,
    /// The conflict is held until `trengo-sync resolve` settles it.
    Manual,
}

/// A name that is not one of the known choices.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} `{given}`: use one of {valid}")]
pub struct UnknownName {
    what: &'static str,
    given: String,
    valid: &'static str,
}

impl FromStr for Policy {
    type Err = UnknownName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "newest" => Ok(Policy::Newest),
            "trengo" => Ok(Policy::Trengo),
            "ghl" => Ok(Policy::Ghl),
            "manual" => Ok(Policy::Manual),
            _ => Err(UnknownName {
                what: "conflict policy",
                given: s.to_owned(),
                valid: "newest, trengo, ghl, manual",
            }),
        }
    }
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Policy::Newest => "newest",
            Policy::Trengo => "trengo",
            Policy::Ghl => "ghl",
            Policy::Manual => "manual",
        })
    }
}

/// A synced field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Field {
    /// Ticket status ⇄ task completion.
    Status,
    /// Ticket labels ⇄ managed contact tags.
    Tags,
    /// Trengo notes ⇄ GHL notes.
    Comments,
    /// Ticket assignee ⇄ task assignee.
    Assignee,
}

impl Field {
    /// Every field, in display order.
    pub const ALL: [Field; 4] = [Field::Status, Field::Tags, Field::Comments, Field::Assignee];
}

impl FromStr for Field {
    type Err = UnknownName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "status" => Ok(Field::Status),
            "tags" => Ok(Field::Tags),
            "comments" => Ok(Field::Comments),
            "assignee" => Ok(Field::Assignee),
            _ => Err(UnknownName {
                what: "field",
                given: s.to_owned(),
                valid: "status, tags, comments, assignee",
            }),
        }
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Field::Status => "status",
            Field::Tags => "tags",
            Field::Comments => "comments",
            Field::Assignee => "assignee",
        })
    }
}

/// Which way a field flows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Direction {
    /// Both ways (default).
    #[default]
    Both,
    /// Trengo changes reach GHL; GHL changes stay unsynced and Trengo is never written.
    TrengoToGhl,
    /// GHL changes reach Trengo; Trengo changes stay unsynced and GHL is never written.
    GhlToTrengo,
    /// The field is not synced.
    Off,
}

impl Direction {
    /// Whether this direction lets the planner write GHL (carrying a Trengo value).
    pub fn writes_ghl(self) -> bool {
        matches!(self, Direction::Both | Direction::TrengoToGhl)
    }

    /// Whether this direction lets the planner write Trengo (carrying a GHL value).
    pub fn writes_trengo(self) -> bool {
        matches!(self, Direction::Both | Direction::GhlToTrengo)
    }
}

/// One value per field.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PerField<T> {
    /// For status.
    pub status: T,
    /// For tags.
    pub tags: T,
    /// For comments.
    pub comments: T,
    /// For assignee.
    pub assignee: T,
}

impl<T: Copy> PerField<T> {
    /// The same value for every field.
    pub fn all(value: T) -> Self {
        PerField {
            status: value,
            tags: value,
            comments: value,
            assignee: value,
        }
    }

    /// The value for `field`.
    pub fn get(&self, field: Field) -> T {
        match field {
            Field::Status => self.status,
            Field::Tags => self.tags,
            Field::Comments => self.comments,
            Field::Assignee => self.assignee,
        }
    }

    /// Sets the value for `field`.
    pub fn set(&mut self, field: Field, value: T) {
        match field {
            Field::Status => self.status = value,
            Field::Tags => self.tags = value,
            Field::Comments => self.comments = value,
            Field::Assignee => self.assignee = value,
        }
    }
}

/// What a GHL status change does to the linked ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TicketAction {
    /// Close the ticket (`POST /tickets/{id}/close`).
    Close,
    /// Reopen the ticket (`POST /tickets/{id}/reopen`).
    Reopen,
    /// Leave the ticket as it is (the change stays unsynced).
    Nothing,
}

/// The status table: which ticket statuses count as "done", and what GHL completion and
/// reopening do to a ticket. Trengo has no generic "set status" (trengo-api.md §4.1), so a
/// GHL change maps onto an action, not onto a status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusTable {
    /// `OPEN` counts as done (default false).
    pub open: bool,
    /// `ASSIGNED` counts as done (default false).
    pub assigned: bool,
    /// `CLOSED` counts as done (default true).
    pub closed: bool,
    /// `INVALID` (spam) counts as done (default true).
    pub invalid: bool,
    /// What completing the task does to the ticket (default close).
    pub on_complete: TicketAction,
    /// What reopening the task does to the ticket (default reopen).
    pub on_reopen: TicketAction,
}

impl Default for StatusTable {
    fn default() -> Self {
        StatusTable {
            open: false,
            assigned: false,
            closed: true,
            invalid: true,
            on_complete: TicketAction::Close,
            on_reopen: TicketAction::Reopen,
        }
    }
}

impl StatusTable {
    /// Whether a ticket in `status` counts as done.
    pub fn is_done(&self, status: TicketStatus) -> bool {
        match status {
            TicketStatus::Open => self.open,
            TicketStatus::Assigned => self.assigned,
            TicketStatus::Closed => self.closed,
            TicketStatus::Invalid => self.invalid,
        }
    }

    /// What a GHL move to `done` does to the ticket.
    pub fn action_for(&self, done: bool) -> TicketAction {
        if done {
            self.on_complete
        } else {
            self.on_reopen
        }
    }
}

/// The mass-change brake (sync-model.md §4.7).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Brake {
    /// The largest share of active links a pass may close, complete or unlink (default 0.2).
    pub max_fraction: f64,
    /// Below this many affected links the brake never trips (default 10).
    pub min_links: usize,
}

impl Default for Brake {
    fn default() -> Self {
        Brake {
            max_fraction: 0.2,
            min_links: 10,
        }
    }
}

/// Everything configurable that the planner reads.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct PlanSettings {
    /// The managed tag set.
    pub tags: TagRule,
    /// The conflict policy of each field (default newest).
    pub policies: PerField<Policy>,
    /// The direction of each field (default both).
    pub directions: PerField<Direction>,
    pub status_table: StatusTable,
    /// Whether customer-facing Trengo messages go to GHL (default false: internal notes only).
    pub include_customer_messages: bool,
    /// Whether the assignee is synced (default false).
    pub assignee_enabled: bool,
    /// Whether GHL tasks entering scope get a new Trengo ticket (default false: this needs a
    /// configured channel). Adoption of a task that names a ticket happens regardless.
    pub ghl_to_trengo_links: bool,
    /// The mass-change brake.
    pub brake: Brake,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_names_parse_and_errors_list_the_choices() {
        assert_eq!("Manual".parse::<Policy>(), Ok(Policy::Manual));
        let err = "oldest".parse::<Policy>().unwrap_err().to_string();
        assert!(err.contains("oldest") && err.contains("newest, trengo, ghl, manual"));
        for p in [Policy::Newest, Policy::Trengo, Policy::Ghl, Policy::Manual] {
            assert_eq!(p.to_string().parse::<Policy>(), Ok(p));
        }
    }

    #[test]
    fn field_names_round_trip() {
        for f in Field::ALL {
            assert_eq!(f.to_string().parse::<Field>(), Ok(f));
        }
        assert!(
            "title"
                .parse::<Field>()
                .unwrap_err()
                .to_string()
                .contains("status, tags")
        );
    }

    #[test]
    fn default_status_table_counts_closed_and_spam_as_done() {
        let table = StatusTable::default();
        assert!(table.is_done(TicketStatus::Closed));
        assert!(table.is_done(TicketStatus::Invalid));
        assert!(!table.is_done(TicketStatus::Open));
        assert!(!table.is_done(TicketStatus::Assigned));
        assert_eq!(table.action_for(true), TicketAction::Close);
        assert_eq!(table.action_for(false), TicketAction::Reopen);
    }
}

//! One engine test per link rule, field rule and conflict policy of sync-model.md §2–§4, each
//! against the simulated world: the real engine over both fakes, edits made as a person would.
//! (The close ⇄ complete pair, a note crossing once and `plan` are in tests/engine.rs.)

#[path = "../support/mod.rs"]
mod support;

mod assignee;
mod links;
mod notes;
mod policies;
mod status;
mod tags;

use serde_json::json;
use support::rules::*;
use support::{audit, links, until_quiet, world};
use trengo_sync::inspect;
use trengo_sync::sim::world::{LINK_LABEL, LINK_TAG, SimWorld};
use trengo_sync::store::{Store, ledger::EntryKind, links::Link, links::Origin};
use trengo_sync::sync::engine::{PassKind, PassOptions};
use trengo_sync::sync::policy::Field;
use trengo_sync::trengo::{Assignee, MessageKind, TicketStatus};

//! Contact pairs (sync-model.md §5): a Trengo contact ⇄ a GHL contact, kept beside links with
//! the same guarantees: per-field three-way merge against stored bases, each field's direction
//! and policy, the ledger, no echo, crash safety, and `plan`.
//!
//! | file | job |
//! |---|---|
//! | [`map`] | the `[contacts]` field map resolved against both accounts' catalogues |
//! | [`convert`] | one value form for both sides; reading and writing each by the field's kind |
//! | [`plan`](mod@plan) | the pure planner of a pair: fields merged, context compared |
//! | [`context`] | the computed agent context (web link, next appointment, open tasks, tags) |
//! | [`task`] | the linked task's due date and title in Trengo ticket fields (pure) |
//!
//! This file turns what the loader read (`load/pairs.rs`) into the planner's views. The engine
//! runs the stage after the link rounds (`engine/pairs.rs`); the executor writes
//! (`execute/pairs.rs`).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use crate::ghl;
use crate::trengo;

pub mod context;
pub mod convert;
pub mod map;
pub mod plan;
pub mod task;

pub use convert::{Kind, Value};
pub use map::{FieldMap, GhlSlot, MapProblem, Mapped, Standard, TrengoSlot};
pub use plan::{ContextView, FieldView, PairPlan, PairView, PairWrite, plan_pair};

/// A Trengo dropdown's options (`items`, trengo-api.md §7 \[REC\]), when it has any.
pub(crate) fn trengo_items(field: &trengo::CustomField) -> Option<Vec<String>> {
    Some(field.items.clone()).filter(|i| !i.is_empty())
}

/// What was read of one pair for planning: the Trengo contact, its profile when the map needs
/// one, the contact's linked tickets (newest first), and the bases.
#[derive(Debug, Clone)]
pub struct PairRead {
    /// The stored pair.
    pub pair: crate::store::pairs::Pair,
    /// The Trengo contact now.
    pub trengo: trengo::Contact,
    /// Its first profile, when the map has profile fields.
    pub profile: Option<trengo::Profile>,
    /// Its linked tickets, most recently updated first (for ticket fields).
    pub tickets: Vec<trengo::Ticket>,
    /// The bases: map entry name → last synced value.
    pub bases: BTreeMap<String, serde_json::Value>,
}

/// The user directory a pair's `assigned_to` is shown through: GHL user id ⇄ e-mail.
#[derive(Debug, Clone, Default)]
pub struct Users {
    /// GHL user id → e-mail (lower case).
    pub email_of: BTreeMap<String, String>,
}

impl Users {
    /// The GHL user id of an e-mail.
    pub fn id_of(&self, email: &str) -> Option<&str> {
        let email = email.trim().to_lowercase();
        self.email_of
            .iter()
            .find(|(_, e)| **e == email)
            .map(|(id, _)| id.as_str())
    }
}

/// The raw GHL value of a slot.
pub fn ghl_raw(contact: &ghl::Contact, slot: &GhlSlot, users: &Users) -> serde_json::Value {
    use serde_json::json;
    let text = |v: &Option<String>| json!(v.clone().unwrap_or_default());
    match slot {
        GhlSlot::Custom { id, .. } => contact
            .custom_fields
            .iter()
            .find(|f| f.id == *id)
            .map(|f| f.value.clone())
            .unwrap_or(serde_json::Value::Null),
        GhlSlot::Standard(s) => match s {
            Standard::Name => text(&contact.name.clone().or_else(|| {
                let joined = [contact.first_name.as_deref(), contact.last_name.as_deref()]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join(" ");
                (!joined.is_empty()).then_some(joined)
            })),
            Standard::FirstName => text(&contact.first_name),
            Standard::LastName => text(&contact.last_name),
            Standard::Email => text(&contact.email),
            Standard::Phone => text(&contact.phone),
            Standard::CompanyName => text(&contact.company_name),
            Standard::Address1 => text(&contact.address1),
            Standard::City => text(&contact.city),
            Standard::State => text(&contact.state),
            Standard::PostalCode => text(&contact.postal_code),
            Standard::Country => text(&contact.country),
            Standard::Website => text(&contact.website),
            Standard::DateOfBirth => text(&contact.date_of_birth),
            Standard::Source => text(&contact.source),
            Standard::AssignedTo => json!(
                contact
                    .assigned_to
                    .as_ref()
                    .map(|id| users
                        .email_of
                        .get(id)
                        .cloned()
                        .unwrap_or_else(|| id.clone()))
                    .unwrap_or_default()
            ),
        },
    }
}

/// The Trengo text of a slot.
pub fn trengo_raw(read: &PairRead, slot: &TrengoSlot) -> String {
    let value = match slot {
        TrengoSlot::Name => read.trengo.name.clone(),
        TrengoSlot::Contact(id) => read.trengo.custom_field(*id).map(str::to_string),
        TrengoSlot::Profile(id) => read
            .profile
            .as_ref()
            .and_then(|p| p.custom_field(*id))
            .map(str::to_string),
        TrengoSlot::Ticket(id) => read
            .tickets
            .iter()
            .find_map(|t| t.custom_field(*id).filter(|v| !v.trim().is_empty()))
            .map(str::to_string),
    };
    value.unwrap_or_default()
}

/// The planner's view of a mapped field of a pair.
pub fn field_view(
    mapped: &Mapped,
    ghl_contact: &ghl::Contact,
    read: &PairRead,
    users: &Users,
) -> FieldView {
    let base = read
        .bases
        .get(&mapped.name)
        .and_then(|b| serde_json::from_value::<Value>(b.clone()).ok());
    FieldView {
        name: mapped.name.clone(),
        direction: mapped.direction,
        policy: mapped.policy,
        kind: mapped.kind.clone(),
        trengo_items: mapped.trengo_items.clone(),
        base,
        trengo: convert::from_text(&mapped.kind, &trengo_raw(read, &mapped.trengo)),
        ghl: convert::from_ghl(&mapped.kind, &ghl_raw(ghl_contact, &mapped.ghl, users)),
    }
}

/// What GHL tells about a contact beyond the contact itself, for the computed context.
#[derive(Debug, Clone, Default)]
pub struct GhlContext {
    /// Its appointments, when the next one is shown.
    pub appointments: Option<Vec<ghl::Appointment>>,
    /// Its tasks, when open tasks are shown.
    pub tasks: Option<Vec<ghl::Task>>,
    /// The location's zone (appointment times are shown in it).
    pub zone: Option<Tz>,
}

/// The planner's view of a pair: its mapped fields and its computed context.
#[allow(clippy::too_many_arguments)]
pub fn pair_view(
    map: &FieldMap,
    ghl_contact: &ghl::Contact,
    read: &PairRead,
    extra: &GhlContext,
    users: &Users,
    tags: &crate::sync::model::TagRule,
    location_id: &str,
    now: DateTime<Utc>,
) -> PairView {
    let fields = map
        .fields
        .iter()
        .map(|m| field_view(m, ghl_contact, read, users))
        .collect();
    let zone = extra.zone.unwrap_or(chrono_tz::UTC);
    let current = |id: i64| read.trengo.custom_field(id).unwrap_or_default().to_string();
    let mut ctx = Vec::new();
    let mut add = |label: &'static str, field: Option<i64>, wanted: Option<String>| {
        if let (Some(field_id), Some(wanted)) = (field, wanted) {
            ctx.push(ContextView {
                label,
                field_id,
                current: current(field_id),
                wanted,
            });
        }
    };
    let c = &map.context;
    add(
        "web link",
        c.web_link,
        Some(context::web_link(
            &c.web_link_template,
            location_id,
            &ghl_contact.id,
        )),
    );
    add(
        "next appointment",
        c.next_appointment,
        extra
            .appointments
            .as_ref()
            .map(|a| context::next_appointment(a, now, zone)),
    );
    add(
        "open tasks",
        c.open_tasks,
        extra.tasks.as_ref().map(|t| context::open_tasks(t, zone)),
    );
    add(
        "tags",
        c.tags,
        Some(context::managed_tags(&ghl_contact.tags, tags)),
    );
    PairView {
        pair: read.pair.id,
        trengo_at: read.trengo.updated_at,
        ghl_at: ghl_contact.date_updated,
        fields,
        context: ctx,
    }
}

//! Seeding of the simulated world: the Trengo fake's own seed, made sure to show every case
//! the sync meets, and a GHL side rebuilt around the same people.
//!
//! The GHL fake's own seed invents people of its own (`customer{n}@example.com`), so the
//! world seeds it with none and adds one GHL contact per Trengo contact here, through the
//! fake's state operations with timestamps in the past: the search index, which trails
//! writes by seconds, already shows every contact when the world starts.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeDelta, Utc};
use chrono_tz::Tz;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;

use crate::sim::ghl::GhlFake;
use crate::sim::ghl::activity::TaskInput;
use crate::sim::ghl::model::ghl_time;
use crate::sim::ghl::state::ContactInput;
use crate::sim::trengo::model::{Message, MessageType, id_start};
use crate::sim::trengo::{TrengoFake, seeded_person};

use super::{LINK_LABEL, LINK_TAG, WorldError, WorldPerson};

/// Managed tags handed out on the GHL side. `trengo:billing` has no Trengo label yet, so the
/// demo shows `tags.create_labels` at work.
const MANAGED_TAGS: [&str; 3] = ["trengo:vip", "trengo:callback", "trengo:billing"];
/// Tags outside the managed set, which the sync must never touch.
const OTHER_TAGS: [&str; 3] = ["customer", "lead", "newsletter"];
const TASK_TITLES: [&str; 5] = [
    "Call back about the quote",
    "Send the contract",
    "Check the invoice",
    "Follow up on the demo",
    "Confirm the delivery date",
];
const NOTE_BODIES: [&str; 4] = [
    "Prefers e-mail over phone.",
    "Asked about the annual plan.",
    "Spoke with the billing department.",
    "Out of office until next week.",
];

/// Makes sure the random Trengo seed shows every case the demo and tests rely on: a ticket
/// with the link label, one with a managed label, one with an internal note. Done on the
/// state directly, as part of the seed: no timestamps move and no webhooks fire.
pub(super) fn ensure_trengo_variety(trengo: &TrengoFake) {
    let mut world = trengo
        .sim()
        .shared
        .world
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let ticket_ids: Vec<i64> = world.tickets.keys().copied().collect();
    let label_id = |name: &str| world.labels.values().find(|l| l.name == name).map(|l| l.id);
    let link = label_id(LINK_LABEL);
    let managed = label_id("trengo:vip");
    let wanted = [(link, 0usize), (managed, 1usize)];
    for (label, slot) in wanted {
        let Some(label) = label else { continue };
        let carried = world.tickets.values().any(|t| t.label_ids.contains(&label));
        let target = ticket_ids.get(slot).or(ticket_ids.first()).copied();
        if let (false, Some(target)) = (carried, target)
            && let Some(ticket) = world.tickets.get_mut(&target)
        {
            ticket.label_ids.push(label);
        }
    }
    let has_note = world.messages.values().any(|m| m.kind == MessageType::Note);
    if let (false, Some(&first)) = (has_note, ticket_ids.first()) {
        let (created_at, agent) = match world.tickets.get(&first) {
            Some(t) => (t.created_at + TimeDelta::minutes(1), world.ui_user_id),
            None => return,
        };
        let id = world.next_id("message", id_start::MESSAGE);
        world.insert_message(Message {
            id,
            ticket_id: first,
            kind: MessageType::Note,
            text: "Checked the order system: shipped on Monday.".to_owned(),
            user_id: Some(agent),
            created_at,
        });
    }
}

/// Gives every Trengo agent a GHL user with the same e-mail (the assignee field matches
/// users by e-mail, sync-model.md §3); returns their GHL ids in Trengo's user order.
fn seed_user_twins(trengo: &TrengoFake, ghl: &GhlFake) -> Result<Vec<String>, WorldError> {
    let mut ids = Vec::new();
    for email in trengo.agent_emails() {
        let name = email.split('@').next().unwrap_or("agent");
        let mut letters = name.chars();
        let first: String = letters
            .next()
            .map(|c| c.to_uppercase().chain(letters).collect())
            .unwrap_or_default();
        ids.push(ghl.add_user(&first, "Twin", &email, "user")?);
    }
    Ok(ids)
}

/// Seeds the GHL side with one contact per Trengo contact (same name, e-mail and phone), their
/// tags, tasks and notes, and a GHL user for every Trengo agent. All timestamps lie hours in
/// the past, so the lagging search index already shows every contact.
///
/// With `matched_owners`, contacts and tasks are owned by those twin users, so every assignee
/// can cross; otherwise by the GHL fake's own users (no Trengo counterpart), and the twins are
/// added last, so the world is the one it always was.
pub(super) fn seed_ghl(
    trengo: &TrengoFake,
    ghl: &GhlFake,
    seed: u64,
    zone: Tz,
    matched_owners: bool,
) -> Result<Vec<WorldPerson>, WorldError> {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x5EED_0F60_1D00);
    let now = ghl_millis(ghl.now());
    let users: Vec<String> = if matched_owners {
        seed_user_twins(trengo, ghl)?
    } else {
        ghl.snapshot()["users"]
            .as_array()
            .map(|users| {
                users
                    .iter()
                    .filter_map(|u| u["id"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    // Trengo contact ids by e-mail, so people match by what the sync matches on.
    let trengo_ids: BTreeMap<String, i64> = trengo.sim().read(|world, _| {
        world
            .contacts
            .values()
            .filter_map(|c| c.email.clone().map(|e| (e, c.id)))
            .collect()
    });
    let mut people = Vec::new();
    for (index, trengo_contact_id) in (0..trengo_ids.len())
        .filter_map(|i| trengo_ids.get(&seeded_person(i).email).map(|id| (i, *id)))
    {
        let person = seeded_person(index);
        let showcase = index == 0;
        let in_scope = showcase || rng.gen_bool(0.4);
        let mut tags = Vec::new();
        if in_scope {
            tags.push(LINK_TAG.to_owned());
        }
        for tag in MANAGED_TAGS {
            if (showcase && tag == MANAGED_TAGS[0]) || rng.gen_bool(0.25) {
                tags.push(tag.to_owned());
            }
        }
        for tag in OTHER_TAGS {
            if rng.gen_bool(0.3) {
                tags.push(tag.to_owned());
            }
        }
        let (first, last) = person
            .name
            .split_once(' ')
            .unwrap_or((person.name.as_str(), ""));
        let owner = (!users.is_empty() && rng.gen_bool(0.5))
            .then(|| users[rng.gen_range(0..users.len())].clone());
        // Between 45 days and 23 hours old; its tasks and notes follow within 8 hours, so
        // everything lies in the past and the search index (seconds behind) shows it all.
        let mut at = now - TimeDelta::days(45)
            + TimeDelta::minutes(((index as i64) * 37) % (44 * 24 * 60))
            + TimeDelta::seconds(rng.gen_range(0..3_600));
        let input = ContactInput {
            first_name: Some(first.to_owned()),
            last_name: Some(last.to_owned()).filter(|l| !l.is_empty()),
            email: Some(person.email.clone()),
            phone: Some(person.phone.clone()),
            source: Some("sim world".to_owned()),
            assigned_to: owner.clone(),
            timezone: Some(zone.name().to_owned()),
            tags: Some(tags),
            // Derived from the index, not drawn: the rest of the world stays as it was.
            custom_fields: Some(vec![
                (
                    "contact.customer_number".to_owned(),
                    format!("C-{:05}", index + 1).into(),
                ),
                (
                    "contact.subscription_tier".to_owned(),
                    ["Basic", "Pro", "Enterprise"][index % 3].into(),
                ),
            ]),
            ..ContactInput::default()
        };
        let created_at = at;
        let contact = ghl.edit(false, |s, _| s.create_contact(created_at, &input))?;

        let tasks = if in_scope {
            rng.gen_range(1..=2)
        } else {
            rng.gen_range(0..=2)
        };
        for n in 0..tasks {
            at += TimeDelta::minutes(rng.gen_range(5..120));
            let title = TASK_TITLES[rng.gen_range(0..TASK_TITLES.len())];
            // A contact in scope keeps its first task open, so a link has something to do.
            let completed = !(in_scope && n == 0) && rng.gen_bool(0.3);
            let due = at + TimeDelta::days(rng.gen_range(1..14));
            let mut fields = json!({
                "title": title,
                "body": format!("{title} for {}.", person.name),
                "dueDate": ghl_time(due),
                "completed": completed,
            });
            if let Some(owner) = &owner {
                fields["assignedTo"] = json!(owner);
            }
            let input = TaskInput::from_json(&fields, true)?;
            let created_at = at;
            ghl.edit(false, |s, _| s.create_task(created_at, &contact.id, &input))?;
        }
        let notes = if showcase { 1 } else { rng.gen_range(0..=2) };
        for _ in 0..notes {
            at += TimeDelta::minutes(rng.gen_range(5..120));
            let body = json!({ "body": NOTE_BODIES[rng.gen_range(0..NOTE_BODIES.len())] });
            let created_at = at;
            ghl.edit(false, |s, _| s.create_note(created_at, &contact.id, &body))?;
        }
        people.push(WorldPerson {
            name: person.name,
            email: person.email,
            phone: person.phone,
            trengo_contact_id,
            ghl_contact_id: contact.id,
        });
    }
    if !matched_owners {
        seed_user_twins(trengo, ghl)?;
    }
    Ok(people)
}

/// `at` in whole milliseconds, as GHL stores times.
fn ghl_millis(at: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(at.timestamp_millis()).unwrap_or(at)
}

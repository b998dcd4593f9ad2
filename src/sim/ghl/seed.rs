//! Deterministic seed data for the GHL fake: users, custom fields, and contacts with e-mail,
//! phone, tags, tasks (some completed) and notes, spread over the 30 days before start, and
//! appointments ahead of start for every third contact.
//!
//! Everything comes from the seeded RNG and the injected clock, so the same seed and start
//! time give byte-identical state. Contact `n` (1-based) has e-mail
//! `customer{n}@example.com` and phone `+3161000{n:04}`, so seeds on the Trengo side can
//! produce the same people. Their company, city, website and subscription tier are derived
//! from `n` without drawing on the RNG, so they did not move any other seeded value.
//!
//! The custom field catalogue: "Trengo ticket" (`contact.trengo_ticket`), "Customer number"
//! (`contact.customer_number`), then "Subscription tier" (`contact.subscription_tier`,
//! SINGLE_OPTIONS Basic/Pro/Enterprise), "Renewal date" (`contact.renewal_date`, DATE),
//! "Seats" (`contact.seats`, NUMERICAL) and "Newsletter" (`contact.newsletter`, CHECKBOX
//! Yes).

use chrono::{DateTime, Duration, Utc};
use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};

use super::model::{Appointment, Contact, CustomFieldDef, CustomFieldValue, Note, Task, User};
use super::state::{GhlState, ID_ALPHABET};

const FIRST_NAMES: &[&str] = &[
    "Ada", "Bram", "Chloé", "Daan", "Eva", "Femke", "Gijs", "Hanna", "Ivo", "Julia", "Kees",
    "Lotte", "Milan", "Noor", "Otto", "Pien",
];
const LAST_NAMES: &[&str] = &[
    "de Vries", "Jansen", "Bakker", "Visser", "Smit", "Meijer", "Mulder", "de Boer", "Bos",
    "Peters",
];
/// Tags handed out at random; `trengo` marks contacts in the sync's scope.
const TAGS: &[&str] = &[
    "trengo",
    "vip",
    "lead",
    "customer",
    "newsletter",
    "trengo:billing",
];
const TASK_TITLES: &[&str] = &[
    "Call back about the quote",
    "Send the contract",
    "Check the invoice",
    "Follow up on the demo",
    "Confirm the delivery date",
];
const NOTE_BODIES: &[&str] = &[
    "Prefers e-mail over phone.",
    "Asked about the annual plan.",
    "Spoke with the billing department.",
    "Out of office until next week.",
];

/// The profile fields appended to the catalogue after "Trengo ticket" and "Customer
/// number": `(name, fieldKey, dataType, picklistOptions)`.
const SEEDED_CONTACT_FIELDS: &[(&str, &str, &str, &[&str])] = &[
    (
        "Subscription tier",
        "contact.subscription_tier",
        "SINGLE_OPTIONS",
        &TIERS,
    ),
    ("Renewal date", "contact.renewal_date", "DATE", &[]),
    ("Seats", "contact.seats", "NUMERICAL", &[]),
    ("Newsletter", "contact.newsletter", "CHECKBOX", &["Yes"]),
];
/// Subscription tiers; seeded contact `n` has `TIERS[n % 3]`.
const TIERS: [&str; 3] = ["Basic", "Pro", "Enterprise"];
/// Seeded contact `n` lives in `CITIES[n % 6]`.
const CITIES: &[&str] = &[
    "Amsterdam",
    "Rotterdam",
    "Utrecht",
    "Eindhoven",
    "Groningen",
    "Zwolle",
];
/// Seeded contact `n` works at "{last name} {COMPANY_KINDS[n % 3]}".
const COMPANY_KINDS: &[&str] = &["BV", "Holding", "& Zonen"];

/// Fills an empty state with `contacts` contacts and their activity, as of `now`.
pub fn seed(state: &mut GhlState, contacts: usize, now: DateTime<Utc>) {
    let location_id = state.location_id.clone();
    let users = [
        ("Sam", "Support", "sam.support@example.com", "admin"),
        ("Robin", "Sales", "robin.sales@example.com", "user"),
        ("Alex", "Accounts", "alex.accounts@example.com", "user"),
    ];
    for (first, last, email, role) in users {
        let id = state.new_id();
        state.users.push(User {
            id,
            first_name: first.to_owned(),
            last_name: last.to_owned(),
            email: email.to_owned(),
            role: role.to_owned(),
        });
    }
    let fields = [
        ("Trengo ticket", "contact.trengo_ticket", "TEXT"),
        ("Customer number", "contact.customer_number", "TEXT"),
    ];
    for (position, (name, key, kind)) in fields.into_iter().enumerate() {
        let id = state.new_id();
        state.custom_fields.push(CustomFieldDef {
            id,
            name: name.to_owned(),
            field_key: key.to_owned(),
            data_type: kind.to_owned(),
            position: position as u32,
            model: "contact".to_owned(),
            picklist_options: Vec::new(),
        });
    }
    // The catalogue's later fields take their ids from a side RNG derived from (but not
    // drawing on) the seeded one, so adding them moved no other seeded id.
    let mut side = StdRng::seed_from_u64(state.rng().clone().next_u64() ^ 0xC0F1_E1D5);
    for (name, key, kind, options) in SEEDED_CONTACT_FIELDS {
        let id = (0..20)
            .map(|_| char::from(ID_ALPHABET[side.gen_range(0..ID_ALPHABET.len())]))
            .collect();
        let position = state.custom_fields.len() as u32;
        state.custom_fields.push(CustomFieldDef {
            id,
            name: (*name).to_owned(),
            field_key: (*key).to_owned(),
            data_type: (*kind).to_owned(),
            position,
            model: "contact".to_owned(),
            picklist_options: options.iter().map(|o| (*o).to_owned()).collect(),
        });
    }
    let user_ids: Vec<String> = state.users.iter().map(|u| u.id.clone()).collect();
    let number_field = state.custom_fields[1].id.clone();
    let tier_field = state.custom_fields[2].id.clone();

    for n in 1..=contacts {
        let id = state.new_id();
        let rng = state.rng();
        let added = now - Duration::seconds(rng.gen_range(86_400..30 * 86_400));
        // Last change at least an hour ago, so the lagging search index already shows it.
        let updated =
            added + Duration::seconds(rng.gen_range(0..(now - added).num_seconds() - 3_600));
        // Whole milliseconds, as GHL stores them.
        let added = truncate_ms(added);
        let updated = truncate_ms(updated);
        let first = FIRST_NAMES[rng.gen_range(0..FIRST_NAMES.len())];
        let last = LAST_NAMES[rng.gen_range(0..LAST_NAMES.len())];
        let mut tags = Vec::new();
        for tag in TAGS {
            if rng.gen_bool(0.3) {
                tags.push((*tag).to_owned());
            }
        }
        let assigned = rng
            .gen_bool(0.5)
            .then(|| user_ids[rng.gen_range(0..user_ids.len())].clone());
        let task_count = rng.gen_range(0..=3);
        let note_count = rng.gen_range(0..=2);
        let contact = Contact {
            id: id.clone(),
            location_id: location_id.clone(),
            first_name: Some(first.to_owned()),
            last_name: Some(last.to_owned()),
            email: Some(format!("customer{n}@example.com")),
            phone: Some(format!("+3161000{n:04}")),
            // Derived from n, not drawn: the seed's RNG sequence stays as it was.
            company_name: Some(format!("{last} {}", COMPANY_KINDS[n % COMPANY_KINDS.len()])),
            address1: None,
            city: Some(CITIES[n % CITIES.len()].to_owned()),
            state: None,
            postal_code: None,
            country: Some("NL".to_owned()),
            website: Some(format!("https://customer{n}.example.com")),
            date_of_birth: None,
            source: Some("sim seed".to_owned()),
            assigned_to: assigned.clone(),
            timezone: Some("Europe/Amsterdam".to_owned()),
            tags,
            custom_fields: vec![
                CustomFieldValue::text(number_field.clone(), format!("C-{n:05}")),
                CustomFieldValue::text(tier_field.clone(), TIERS[n % TIERS.len()]),
            ],
            dnd: false,
            kind: "lead".to_owned(),
            date_added: added,
            date_updated: updated,
        };
        state.contacts.insert(id.clone(), contact);
        state.reindex(&id, updated);

        for _ in 0..task_count {
            let task_id = state.new_id();
            let rng = state.rng();
            let title = TASK_TITLES[rng.gen_range(0..TASK_TITLES.len())];
            let created = truncate_ms(added + Duration::seconds(rng.gen_range(0..3_600)));
            let due = truncate_ms(created + Duration::days(rng.gen_range(1..14)));
            let completed = rng.gen_bool(0.3);
            state.next_seq += 1;
            let task = Task {
                id: task_id.clone(),
                contact_id: id.clone(),
                title: title.to_owned(),
                body: Some(format!("{title} for {first} {last}.")),
                assigned_to: assigned.clone(),
                due_date: due,
                completed,
                date_added: created,
                seq: state.next_seq,
            };
            state.tasks.insert(task_id, task);
        }
        for _ in 0..note_count {
            let note_id = state.new_id();
            let rng = state.rng();
            let body = NOTE_BODIES[rng.gen_range(0..NOTE_BODIES.len())];
            let created = truncate_ms(added + Duration::seconds(rng.gen_range(0..7_200)));
            state.notes.insert(
                note_id.clone(),
                Note {
                    id: note_id,
                    contact_id: id.clone(),
                    body: body.to_owned(),
                    user_id: assigned.clone(),
                    title: None,
                    color: None,
                    pinned: false,
                    date_added: created,
                },
            );
        }
    }
}

/// Books an appointment for every third contact in id order (the 1st, 4th, 7th, …): the
/// `n`th has "Intake call" `n` days after start at 10:00 in the location's zone, 30 minutes, booked a
/// day before start. Ids come from their own RNG (seeded from the seed), so adding
/// appointments did not move any other seeded id.
pub fn seed_appointments(state: &mut GhlState, seed: u64, now: DateTime<Utc>) {
    use chrono::{NaiveTime, TimeZone};
    use rand::SeedableRng;
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ 0xA990_1A7E);
    let mut id = move || -> String {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        (0..20)
            .map(|_| char::from(ALPHABET[rng.gen_range(0..ALPHABET.len())]))
            .collect()
    };
    let calendar = id();
    let zone = state.zone;
    let contacts: Vec<(String, Option<String>)> = state
        .contacts
        .values()
        .map(|c| (c.id.clone(), c.assigned_to.clone()))
        .collect();
    for (n, (contact_id, host)) in contacts.into_iter().enumerate().step_by(3) {
        let day = (now.with_timezone(&zone) + Duration::days(n as i64 + 1)).date_naive();
        let ten = day.and_time(NaiveTime::from_hms_opt(10, 0, 0).unwrap_or_default());
        let Some(start) = zone.from_local_datetime(&ten).earliest() else {
            continue;
        };
        let start = start.with_timezone(&Utc);
        state
            .appointments
            .entry(contact_id.clone())
            .or_default()
            .push(Appointment {
                id: id(),
                calendar_id: calendar.clone(),
                contact_id,
                title: "Intake call".to_owned(),
                appointment_status: "booked".to_owned(),
                assigned_user_id: host,
                start_time: start,
                end_time: start + Duration::minutes(30),
                date_added: truncate_ms(now - Duration::days(1)),
            });
    }
}

fn truncate_ms(at: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(at.timestamp_millis()).unwrap_or(at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::ghl::options::GhlSwitches;

    fn seeded(seed_value: u64) -> GhlState {
        let now = DateTime::parse_from_rfc3339("2026-03-01T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let mut state = GhlState::new(
            "loc".into(),
            GhlSwitches::default(),
            std::time::Duration::from_secs(5),
            seed_value,
        );
        seed(&mut state, 25, now);
        seed_appointments(&mut state, seed_value, now);
        state
    }

    #[test]
    fn same_seed_gives_the_same_state() {
        assert_eq!(seeded(3).snapshot(), seeded(3).snapshot());
        assert_ne!(seeded(3).snapshot(), seeded(4).snapshot());
    }

    #[test]
    fn seed_has_tags_and_some_completed_tasks() {
        let state = seeded(3);
        assert_eq!(state.contacts.len(), 25);
        assert!(state.contacts.values().any(|c| !c.tags.is_empty()));
        assert!(state.tasks.values().any(|t| t.completed));
        assert!(state.tasks.values().any(|t| !t.completed));
        assert!(!state.notes.is_empty());
    }

    #[test]
    fn every_third_contact_has_an_appointment_ahead_at_ten_local() {
        let state = seeded(3);
        let booked: usize = state.appointments.values().map(Vec::len).sum();
        assert_eq!(booked, 9, "contacts 1, 4, …, 25 of 25");
        let now = DateTime::parse_from_rfc3339("2026-03-01T12:00:00Z").unwrap();
        for a in state.appointments.values().flatten() {
            assert!(a.start_time > now);
            assert!(state.contacts.contains_key(&a.contact_id));
        }
    }
}

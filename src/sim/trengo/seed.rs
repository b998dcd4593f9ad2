//! Deterministic seeding of the Trengo fake: users, teams, channels, labels, custom fields,
//! contacts (each with a profile of its own) and tickets with labels, customer messages and
//! internal notes.
//!
//! The same seed, spec and clock give the same world, byte for byte. Contacts' names, e-mails
//! and phones depend only on their index ([`seeded_person`]), so the GHL fake can seed the
//! same people and the demo finds them on both sides.

use chrono::{DateTime, Duration, Utc};
use rand::Rng;
use serde::Deserialize;

use super::model::{
    Channel, Contact, CustomField, Label, Message, MessageType, Profile, Team, Ticket,
    TicketStatus, TrengoState, User, id_start,
};
use super::options::SimUser;

/// The custom fields seeded after "Order number" (TICKET) and "Customer number" (CONTACT),
/// in order: what a contact pairing with GHL writes to (`(title, type)`), all `TEXT`.
pub const PAIRING_FIELDS: &[(&str, &str)] = &[
    ("Subscription tier", "CONTACT"),
    ("GHL link", "CONTACT"),
    ("Next appointment", "CONTACT"),
    ("Open GHL tasks", "CONTACT"),
    ("GHL tags", "CONTACT"),
    ("Task due", "TICKET"),
    ("Task title", "TICKET"),
    ("Account manager", "PROFILE"),
    ("Renewal date", "CONTACT"),
    ("Newsletter", "CONTACT"),
];

/// How much to seed.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SeedSpec {
    /// Contacts to make. Default 10.
    pub contacts: usize,
    /// Tickets to spread over them. Default 30 (more than one page).
    pub tickets: usize,
    /// Most customer messages per ticket (at least one). Default 3.
    pub max_messages_per_ticket: usize,
    /// Most internal notes per ticket. Default 2.
    pub max_notes_per_ticket: usize,
    /// How far back the oldest ticket starts, in days. Default 30.
    pub history_days: i64,
}

impl Default for SeedSpec {
    fn default() -> Self {
        Self {
            contacts: 10,
            tickets: 30,
            max_messages_per_ticket: 3,
            max_notes_per_ticket: 2,
            history_days: 30,
        }
    }
}

/// A person the fakes seed as contact number `index`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeededPerson {
    /// "First Last".
    pub name: String,
    /// Lower-case e-mail address.
    pub email: String,
    /// E.164 phone number.
    pub phone: String,
}

const FIRST_NAMES: [&str; 12] = [
    "Anna", "Bram", "Chloe", "Daan", "Eva", "Finn", "Gwen", "Hugo", "Iris", "Jens", "Kim", "Lars",
];
const LAST_NAMES: [&str; 10] = [
    "de Vries", "Jansen", "Bakker", "Visser", "Smit", "Meijer", "Mulder", "Bos", "Vos", "Dekker",
];

/// Contact number `index` (0-based), independent of any seed.
pub fn seeded_person(index: usize) -> SeededPerson {
    let first = FIRST_NAMES[index % FIRST_NAMES.len()];
    let last = LAST_NAMES[(index / FIRST_NAMES.len()) % LAST_NAMES.len()];
    let slug: String = last
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect::<String>()
        .to_lowercase();
    SeededPerson {
        name: format!("{first} {last}"),
        email: format!("{}.{slug}{index}@example.com", first.to_lowercase()),
        phone: format!("+316{:08}", 10_000_000 + index),
    }
}

/// Label names every seeded account has; the `trengo:` ones are the sync's managed set in
/// the demo config, `GHL` is the demo's link label.
pub const SEEDED_LABELS: [&str; 6] = [
    "GHL",
    "Billing",
    "Urgent",
    "trengo:vip",
    "trengo:callback",
    "Feedback",
];

const COLORS: [&str; 6] = [
    "#5D9CEC",
    "#AC92EC",
    "rgb(252, 110, 81)",
    "#48CFAD",
    "#FFCE54",
    "#ED5565",
];

const SUBJECTS: [&str; 8] = [
    "Invoice question",
    "Delivery delayed",
    "Cannot log in",
    "Change my address",
    "Refund request",
    "Callback please",
    "Product advice",
    "Complaint about service",
];

const LINES: [&str; 8] = [
    "Hello, could you help me with this?",
    "I have been waiting for a week now.",
    "Thanks for the quick answer!",
    "Can someone call me back tomorrow morning?",
    "The order number is in the attachment.",
    "Is there any news on this?",
    "I would like to speak to a manager.",
    "Please update me when you know more.",
];

const NOTES: [&str; 4] = [
    "Checked the order system: shipped on Monday.",
    "Customer is on the VIP list, handle with care.",
    "@colleague please check the invoice.",
    "Waiting for the warehouse to confirm.",
];

impl TrengoState {
    /// Replaces the whole world with a seeded one: `api_user` plus three agents, two teams,
    /// two channels (e-mail, WhatsApp), the [`SEEDED_LABELS`], a ticket and a contact custom
    /// field followed by the [`PAIRING_FIELDS`], and `spec`'s contacts (each with a profile
    /// of the same name) and tickets, laid out in the past of `now`.
    pub fn seed(
        &mut self,
        spec: &SeedSpec,
        api_user: &SimUser,
        agency_id: i64,
        seed: u64,
        now: DateTime<Utc>,
    ) {
        *self = TrengoState::empty(agency_id, api_user.id, seed);
        let start = now - Duration::days(spec.history_days.max(1));

        self.users.insert(
            api_user.id,
            User {
                id: api_user.id,
                first_name: api_user.first_name.clone(),
                last_name: api_user.last_name.clone(),
                email: api_user.email.clone(),
                authorization: "SUPERVISOR".to_owned(),
                role: "supervisor".to_owned(),
                created_at: start - Duration::days(400),
            },
        );
        let agents = [
            ("Sanne", "Agent", "OWNER", "administrator"),
            ("Tom", "Support", "MEMBER", "advanced_agent"),
            ("Yara", "Helpdesk", "MEMBER", "basic_agent"),
        ];
        let mut agent_ids = Vec::new();
        for (first, last, authorization, role) in agents {
            let id = self.next_id("user", id_start::USER);
            agent_ids.push(id);
            self.users.insert(
                id,
                User {
                    id,
                    first_name: first.to_owned(),
                    last_name: last.to_owned(),
                    email: format!("{}@support.example.com", first.to_lowercase()),
                    authorization: authorization.to_owned(),
                    role: role.to_owned(),
                    created_at: start - Duration::days(300),
                },
            );
        }
        self.ui_user_id = agent_ids[0];

        for (name, members) in [("Support", &agent_ids[..]), ("Billing", &agent_ids[1..])] {
            let id = self.next_id("team", id_start::TEAM);
            self.teams.insert(
                id,
                Team {
                    id,
                    name: name.to_owned(),
                    user_ids: members.to_vec(),
                },
            );
        }

        let mut channel_ids = Vec::new();
        for (name, title, kind) in [
            ("Email", "Support e-mail", "EMAIL"),
            ("Wa_business", "Support WhatsApp", "WA_BUSINESS"),
        ] {
            let id = self.next_id("channel", id_start::CHANNEL);
            channel_ids.push(id);
            self.channels.insert(
                id,
                Channel {
                    id,
                    name: name.to_owned(),
                    title: title.to_owned(),
                    kind: kind.to_owned(),
                },
            );
        }

        let mut label_ids = Vec::new();
        for (i, name) in SEEDED_LABELS.iter().enumerate() {
            let id = self.next_id("label", id_start::LABEL);
            label_ids.push(id);
            self.labels.insert(
                id,
                Label {
                    id,
                    name: (*name).to_owned(),
                    slug: slugify(name),
                    color: COLORS[i % COLORS.len()].to_owned(),
                    sort_order: if i % 2 == 0 { Some(i as i64) } else { None },
                },
            );
        }

        for (i, (title, kind)) in [("Order number", "TICKET"), ("Customer number", "CONTACT")]
            .into_iter()
            .enumerate()
        {
            let id = self.next_id("custom_field", id_start::CUSTOM_FIELD);
            self.custom_fields.insert(
                id,
                CustomField {
                    id,
                    title: title.to_owned(),
                    kind: kind.to_owned(),
                    identifier: format!("api-custom-field-{}", i + 1),
                    sort_order: -(i as i64) - 1,
                    field_type: "TEXT".to_owned(),
                    items: None,
                },
            );
        }
        self.seed_pairing_fields();

        let mut contact_ids = Vec::new();
        for index in 0..spec.contacts {
            let person = seeded_person(index);
            let id = self.next_id("contact", id_start::CONTACT);
            contact_ids.push(id);
            let created_at = start - Duration::days(60) + Duration::minutes(index as i64 * 37);
            // One profile per contact, its id derived from the index (no RNG draw).
            let profile_id = id_start::PROFILE + 3 * (index as i64 + 1);
            self.last_ids.insert("profile".to_owned(), profile_id);
            self.profiles.insert(
                profile_id,
                Profile {
                    id: profile_id,
                    name: person.name.clone(),
                    custom_field_values: Default::default(),
                    created_at,
                    updated_at: created_at,
                },
            );
            self.contacts.insert(
                id,
                Contact {
                    id,
                    name: person.name,
                    identifier: person.email.clone(),
                    email: Some(person.email),
                    phone: Some(person.phone),
                    channel_ids: channel_ids.clone(),
                    custom_field_values: Default::default(),
                    profile_ids: vec![profile_id],
                    created_at,
                    updated_at: created_at,
                },
            );
        }
        if contact_ids.is_empty() {
            return;
        }

        let span_seconds = (now - start).num_seconds().max(1);
        for index in 0..spec.tickets {
            let contact_id = contact_ids[index % contact_ids.len()];
            // Tickets start spread evenly over the history window, jittered.
            let offset = span_seconds * index as i64 / spec.tickets.max(1) as i64;
            let created_at =
                (start + Duration::seconds(offset + self.rng.gen_range(0..600))).min(now);
            let channel_id = channel_ids[self.rng.gen_range(0..channel_ids.len())];
            self.seed_ticket(
                spec, now, created_at, contact_id, channel_id, &agent_ids, &label_ids,
            );
        }
    }

    /// Appends [`PAIRING_FIELDS`] to the catalogue. Their ids follow the last seeded field's
    /// at a fixed step instead of drawing on the RNG, so adding them moved no other seeded id.
    fn seed_pairing_fields(&mut self) {
        let first_sort = -(self.custom_fields.len() as i64) - 1;
        for (i, (title, kind)) in PAIRING_FIELDS.iter().enumerate() {
            let id = self
                .last_ids
                .get("custom_field")
                .copied()
                .unwrap_or(id_start::CUSTOM_FIELD)
                + 2;
            self.last_ids.insert("custom_field".to_owned(), id);
            let position = self.custom_fields.len() + 1;
            self.custom_fields.insert(
                id,
                CustomField {
                    id,
                    title: (*title).to_owned(),
                    kind: (*kind).to_owned(),
                    identifier: format!("api-custom-field-{position}"),
                    sort_order: first_sort - i as i64,
                    field_type: "TEXT".to_owned(),
                    items: None,
                },
            );
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn seed_ticket(
        &mut self,
        spec: &SeedSpec,
        now: DateTime<Utc>,
        created_at: DateTime<Utc>,
        contact_id: i64,
        channel_id: i64,
        agent_ids: &[i64],
        label_ids: &[i64],
    ) {
        let id = self.next_id("ticket", id_start::TICKET);
        let is_email = self
            .channels
            .get(&channel_id)
            .is_some_and(|c| c.kind == "EMAIL");
        let subject = is_email.then(|| SUBJECTS[self.rng.gen_range(0..SUBJECTS.len())].to_owned());

        let mut at = created_at;
        let mut latest = None;
        let customer_messages = self.rng.gen_range(1..=spec.max_messages_per_ticket.max(1));
        let notes = self.rng.gen_range(0..=spec.max_notes_per_ticket);
        let agent = agent_ids[self.rng.gen_range(0..agent_ids.len())];
        for n in 0..customer_messages + notes {
            let (kind, text, user_id) = if n < customer_messages {
                (
                    MessageType::Inbound,
                    LINES[self.rng.gen_range(0..LINES.len())],
                    None,
                )
            } else {
                (
                    MessageType::Note,
                    NOTES[self.rng.gen_range(0..NOTES.len())],
                    Some(agent),
                )
            };
            if at >= now {
                break;
            }
            let message_id = self.next_id("message", id_start::MESSAGE);
            self.insert_message(Message {
                id: message_id,
                ticket_id: id,
                kind,
                text: text.to_owned(),
                user_id,
                created_at: at,
            });
            latest = Some(at);
            at += Duration::minutes(self.rng.gen_range(5..240));
        }

        let roll = self.rng.gen_range(0..10);
        let (status, user_id) = match roll {
            0..=2 => (TicketStatus::Open, None),
            3..=6 => (TicketStatus::Assigned, Some(agent)),
            7..=8 => (TicketStatus::Closed, Some(agent)),
            _ => (TicketStatus::Closed, None),
        };
        let updated_at = latest.unwrap_or(created_at).min(now);
        let mut chosen = Vec::new();
        for label_id in label_ids {
            if self.rng.gen_range(0..4) == 0 {
                chosen.push(*label_id);
            }
        }
        self.tickets.insert(
            id,
            Ticket {
                id,
                status,
                subject,
                contact_id,
                channel_id,
                user_id,
                team_id: None,
                assigned_by: user_id,
                created_at,
                updated_at,
                assigned_at: user_id.map(|_| created_at),
                closed_at: (status == TicketStatus::Closed).then_some(updated_at),
                latest_message_at: latest,
                label_ids: chosen,
                custom_field_values: Default::default(),
            },
        );
    }
}

/// Trengo's label slug: lower case, non-alphanumerics as dashes.
pub fn slugify(name: &str) -> String {
    let mut slug = String::new();
    for c in name.to_lowercase().chars() {
        if c.is_alphanumeric() {
            slug.push(c);
        } else if !slug.ends_with('-') && !slug.is_empty() {
            slug.push('-');
        }
    }
    slug.trim_end_matches('-').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_people_are_stable_and_distinct() {
        let a = seeded_person(0);
        assert_eq!(a.name, "Anna de Vries");
        assert_eq!(a.email, "anna.devries0@example.com");
        assert_ne!(seeded_person(1).email, seeded_person(13).email);
        assert_ne!(seeded_person(1).phone, seeded_person(2).phone);
    }

    #[test]
    fn slugs_are_lower_case_with_dashes() {
        assert_eq!(slugify("trengo:vip"), "trengo-vip");
        assert_eq!(slugify("Payout Triggers"), "payout-triggers");
    }
}

//! The Trengo fake's world: the records it stores (tickets, messages, labels, contacts, users,
//! teams, channels, custom fields, webhooks) and the errors and webhook events its operations
//! produce.
//!
//! Records hold instants in UTC; the zone only matters when they are rendered (see
//! `render`). Everything is kept in `BTreeMap`s so a snapshot of the same seed serialises
//! byte for byte the same.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

/// Ticket status (trengo-api.md §4.1 \[CLI\]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum TicketStatus {
    /// New, unassigned.
    Open,
    /// Assigned to a user and/or team.
    Assigned,
    /// Closed.
    Closed,
    /// Marked as spam.
    Invalid,
}

impl TicketStatus {
    /// The status as the API spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "OPEN",
            Self::Assigned => "ASSIGNED",
            Self::Closed => "CLOSED",
            Self::Invalid => "INVALID",
        }
    }
}

/// Message type (trengo-api.md §4.5 \[OBS\]: upper case).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum MessageType {
    /// From the customer.
    Inbound,
    /// From an agent to the customer.
    Outbound,
    /// Internal note, never seen by the customer.
    Note,
}

impl MessageType {
    /// The type as the API spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Inbound => "INBOUND",
            Self::Outbound => "OUTBOUND",
            Self::Note => "NOTE",
        }
    }
}

/// A support ticket.
#[derive(Debug, Clone, Serialize)]
pub struct Ticket {
    /// Ticket id.
    pub id: i64,
    pub status: TicketStatus,
    /// Subject; `None` for chat channels.
    pub subject: Option<String>,
    /// The customer.
    pub contact_id: i64,
    /// The channel it arrived on.
    pub channel_id: i64,
    /// Assigned user.
    pub user_id: Option<i64>,
    /// Assigned team.
    pub team_id: Option<i64>,
    /// Who assigned it.
    pub assigned_by: Option<i64>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last update (bumped by status changes, and by the switches' choices).
    pub updated_at: DateTime<Utc>,
    /// Time of the last assignment.
    pub assigned_at: Option<DateTime<Utc>>,
    /// Time of closing; equal to `updated_at` right after a close (trengo-api.md §3.4 \[OBS\]).
    pub closed_at: Option<DateTime<Utc>>,
    /// Time of the newest message: the list's sort key (trengo-api.md §3.3).
    pub latest_message_at: Option<DateTime<Utc>>,
    /// Labels in the order they were attached.
    pub label_ids: Vec<i64>,
    /// Custom field values by custom field id.
    pub custom_field_values: BTreeMap<i64, String>,
}

impl Ticket {
    /// The instant the list sorts by: the newest message, or creation without messages.
    pub fn sort_time(&self) -> DateTime<Utc> {
        self.latest_message_at.unwrap_or(self.created_at)
    }
}

/// A ticket message: customer message, agent reply or internal note.
#[derive(Debug, Clone, Serialize)]
pub struct Message {
    /// Message id (above 2^31, as in reality: trengo-api.md §4.5 \[OBS\]).
    pub id: i64,
    /// The ticket it belongs to.
    pub ticket_id: i64,
    /// INBOUND, OUTBOUND or NOTE.
    pub kind: MessageType,
    /// The text (the API calls it `message`; there is no `body`).
    pub text: String,
    /// The agent who wrote it, for OUTBOUND and NOTE.
    pub user_id: Option<i64>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

/// A label (Trengo's tag).
#[derive(Debug, Clone, Serialize)]
pub struct Label {
    /// Label id.
    pub id: i64,
    /// Display name.
    pub name: String,
    /// URL-safe name.
    pub slug: String,
    /// Free-text colour (`#AC92EC` or `rgb(...)`).
    pub color: String,
    /// Position, or none.
    pub sort_order: Option<i64>,
}

/// A customer contact.
#[derive(Debug, Clone, Serialize)]
pub struct Contact {
    /// Contact id.
    pub id: i64,
    pub name: String,
    /// E-mail address.
    pub email: Option<String>,
    /// Phone number.
    pub phone: Option<String>,
    /// The identifier it was created with (e-mail or phone).
    pub identifier: String,
    /// Channels the contact is known on.
    pub channel_ids: Vec<i64>,
    /// Custom field values by custom field id.
    pub custom_field_values: BTreeMap<i64, String>,
    /// The profiles (customers) it belongs to (trengo-api.md §6).
    pub profile_ids: Vec<i64>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last update.
    pub updated_at: DateTime<Utc>,
}

/// A profile: one customer, grouping their contacts across channels (trengo-api.md §6).
#[derive(Debug, Clone, Serialize)]
pub struct Profile {
    /// Profile id.
    pub id: i64,
    pub name: String,
    /// Values of PROFILE-type custom fields, by custom field id.
    pub custom_field_values: BTreeMap<i64, String>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last update.
    pub updated_at: DateTime<Utc>,
}

/// An agent.
#[derive(Debug, Clone, Serialize)]
pub struct User {
    /// User id.
    pub id: i64,
    pub first_name: String,
    pub last_name: String,
    /// E-mail address.
    pub email: String,
    /// OWNER, SUPERVISOR or MEMBER.
    pub authorization: String,
    /// Role name such as `supervisor`.
    pub role: String,
    /// When the user was made.
    pub created_at: DateTime<Utc>,
}

impl User {
    /// "First Last".
    pub fn full_name(&self) -> String {
        format!("{} {}", self.first_name, self.last_name)
    }
}

/// A team of agents.
#[derive(Debug, Clone, Serialize)]
pub struct Team {
    /// Team id.
    pub id: i64,
    pub name: String,
    /// Members.
    pub user_ids: Vec<i64>,
}

/// A channel (mailbox, WhatsApp number, ...).
#[derive(Debug, Clone, Serialize)]
pub struct Channel {
    /// Channel id.
    pub id: i64,
    /// Internal name such as `Email`.
    pub name: String,
    /// Display title.
    pub title: String,
    /// Type such as `EMAIL` or `WA_BUSINESS`.
    pub kind: String,
}

/// A custom field definition.
#[derive(Debug, Clone, Serialize)]
pub struct CustomField {
    /// Field id.
    pub id: i64,
    pub title: String,
    /// Which entity it belongs to: TICKET, CONTACT or PROFILE.
    pub kind: String,
    /// Identifier slug.
    pub identifier: String,
    /// Position.
    pub sort_order: i64,
    /// Data type: `TEXT` (the only one observed, §7), `DROPDOWN`, ...
    pub field_type: String,
    /// The options of a dropdown; `None` (rendered `null`) for other types.
    pub items: Option<Vec<String>>,
}

/// A registered webhook: one event type, one URL (trengo-api.md §10.1 \[OBS\]).
#[derive(Debug, Clone, Serialize)]
pub struct Webhook {
    /// Webhook id.
    pub id: i64,
    /// Name given at creation.
    pub name: String,
    /// Target URL.
    pub url: String,
    /// The one event type it receives.
    pub event: EventType,
    /// Secret for `Trengo-Signature`; never serialised into snapshots.
    #[serde(skip)]
    pub signing_secret: SecretString,
}

/// Webhook event types (trengo-api.md §10.2 \[OFF\]) the fake can emit or accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EventType {
    /// Customer message.
    Inbound,
    /// Agent message to the customer.
    Outbound,
    /// Internal note.
    Note,
    /// Label attached to a ticket.
    TicketLabelAdded,
    /// Label detached from a ticket.
    TicketLabelDeleted,
    /// Ticket created.
    TicketCreated,
    /// Ticket assigned.
    TicketAssigned,
    /// Ticket closed.
    TicketClosed,
    /// Ticket merged (`ticket_id` survives, `merged_and_deleted_ticket_id` is deleted).
    TicketMerged,
    /// Ticket reopened.
    TicketReopened,
    /// Ticket marked as spam.
    TicketMarkedAsSpam,
    /// Ticket unmarked as spam.
    TicketUnmarkedAsSpam,
    /// Voice call started (accepted for registration only).
    VoiceCallStarted,
    /// Voice call ended (accepted for registration only).
    VoiceCallEnded,
    /// Voice call recorded (accepted for registration only).
    VoiceCallRecorded,
    /// Voice call missed (accepted for registration only).
    VoiceCallMissed,
    /// Voice call route number (accepted for registration only).
    VoiceCallRouteNumber,
}

impl EventType {
    /// Every type, in the order of trengo-api.md §10.2.
    pub const ALL: [EventType; 17] = [
        Self::Inbound,
        Self::Outbound,
        Self::Note,
        Self::TicketLabelAdded,
        Self::TicketLabelDeleted,
        Self::TicketCreated,
        Self::TicketAssigned,
        Self::TicketClosed,
        Self::TicketMerged,
        Self::TicketReopened,
        Self::TicketMarkedAsSpam,
        Self::TicketUnmarkedAsSpam,
        Self::VoiceCallStarted,
        Self::VoiceCallEnded,
        Self::VoiceCallRecorded,
        Self::VoiceCallMissed,
        Self::VoiceCallRouteNumber,
    ];

    /// The type as the API spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Inbound => "INBOUND",
            Self::Outbound => "OUTBOUND",
            Self::Note => "NOTE",
            Self::TicketLabelAdded => "TICKET_LABEL_ADDED",
            Self::TicketLabelDeleted => "TICKET_LABEL_DELETED",
            Self::TicketCreated => "TICKET_CREATED",
            Self::TicketAssigned => "TICKET_ASSIGNED",
            Self::TicketClosed => "TICKET_CLOSED",
            Self::TicketMerged => "TICKET_MERGED",
            Self::TicketReopened => "TICKET_REOPENED",
            Self::TicketMarkedAsSpam => "TICKET_MARKED_AS_SPAM",
            Self::TicketUnmarkedAsSpam => "TICKET_UNMARKED_AS_SPAM",
            Self::VoiceCallStarted => "VOICE_CALL_STARTED",
            Self::VoiceCallEnded => "VOICE_CALL_ENDED",
            Self::VoiceCallRecorded => "VOICE_CALL_RECORDED",
            Self::VoiceCallMissed => "VOICE_CALL_MISSED",
            Self::VoiceCallRouteNumber => "VOICE_CALL_ROUTE_NUMBER",
        }
    }

    /// Parses the API spelling.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == name)
    }
}

/// One webhook event: its type and the flat payload (trengo-api.md §10.3 \[OFF\]); every value
/// is a string because Trengo posts them form-encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Event type.
    pub kind: EventType,
    /// Payload fields in Trengo's order.
    pub fields: Vec<(String, String)>,
}

impl Event {
    /// An event with `fields`, dropping absent values as PHP's `http_build_query` drops nulls.
    pub fn new(kind: EventType, fields: Vec<(&str, Option<String>)>) -> Self {
        Self {
            kind,
            fields: fields
                .into_iter()
                .filter_map(|(k, v)| v.map(|v| (k.to_owned(), v)))
                .collect(),
        }
    }
}

/// Why an operation on the fake's world was refused; rendered as Laravel's 404 and 422.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SimError {
    /// No such record (404).
    #[error("No query results for model [App\\Models\\{model}] {id}")]
    NotFound {
        /// Laravel model name, such as `Ticket`.
        model: &'static str,
        /// The id asked for.
        id: i64,
    },
    /// Validation failed (422).
    #[error("{message}")]
    Invalid {
        /// The offending input field.
        field: String,
        /// Laravel's sentence, such as "The label id field is required.".
        message: String,
    },
}

impl SimError {
    /// A missing record.
    pub fn not_found(model: &'static str, id: i64) -> Self {
        Self::NotFound { model, id }
    }

    /// A validation failure on `field` with Laravel's `message`.
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.to_owned(),
            message: message.into(),
        }
    }

    /// Laravel's "required" message for `field`.
    pub fn required(field: &str) -> Self {
        Self::invalid(
            field,
            format!("The {} field is required.", field.replace('_', " ")),
        )
    }

    /// Laravel's "selected ... is invalid" message for `field`.
    pub fn selected_invalid(field: &str) -> Self {
        Self::invalid(
            field,
            format!("The selected {} is invalid.", field.replace('_', " ")),
        )
    }
}

/// Everything the fake stores, with the seeded RNG that picks new ids and secrets.
#[derive(Debug, Serialize)]
pub struct TrengoState {
    /// The account id.
    pub agency_id: i64,
    /// The user the API token acts as.
    pub api_user_id: i64,
    /// The person whose edits the admin surface stands for (a human agent).
    pub ui_user_id: i64,
    /// Agents by id.
    pub users: BTreeMap<i64, User>,
    /// Teams by id.
    pub teams: BTreeMap<i64, Team>,
    /// Channels by id.
    pub channels: BTreeMap<i64, Channel>,
    /// Labels by id.
    pub labels: BTreeMap<i64, Label>,
    /// Custom field definitions by id.
    pub custom_fields: BTreeMap<i64, CustomField>,
    /// Contacts by id.
    pub contacts: BTreeMap<i64, Contact>,
    /// Profiles by id.
    pub profiles: BTreeMap<i64, Profile>,
    /// Tickets by id.
    pub tickets: BTreeMap<i64, Ticket>,
    /// Messages by id.
    pub messages: BTreeMap<i64, Message>,
    /// Webhooks by id.
    pub webhooks: BTreeMap<i64, Webhook>,
    /// The last id handed out per kind of record.
    pub last_ids: BTreeMap<String, i64>,
    /// Message ids per ticket, so rendering a list page does not scan every message.
    #[serde(skip)]
    pub(crate) messages_by_ticket: BTreeMap<i64, Vec<i64>>,
    #[serde(skip)]
    pub(crate) rng: StdRng,
}

impl TrengoState {
    /// An empty world for account `agency_id`, deterministic from `seed`.
    pub fn empty(agency_id: i64, api_user_id: i64, seed: u64) -> Self {
        Self {
            agency_id,
            api_user_id,
            ui_user_id: api_user_id,
            users: BTreeMap::new(),
            teams: BTreeMap::new(),
            channels: BTreeMap::new(),
            labels: BTreeMap::new(),
            custom_fields: BTreeMap::new(),
            contacts: BTreeMap::new(),
            profiles: BTreeMap::new(),
            tickets: BTreeMap::new(),
            messages: BTreeMap::new(),
            webhooks: BTreeMap::new(),
            last_ids: BTreeMap::new(),
            messages_by_ticket: BTreeMap::new(),
            rng: StdRng::seed_from_u64(seed),
        }
    }

    /// A new id of `kind`, starting near `start` and leaving small random gaps, because
    /// real ids are shared by every account and never dense.
    pub fn next_id(&mut self, kind: &str, start: i64) -> i64 {
        let gap = self.rng.gen_range(1..=7);
        let id = self.last_ids.get(kind).copied().unwrap_or(start) + gap;
        self.last_ids.insert(kind.to_owned(), id);
        id
    }

    /// A 32-character alphanumeric secret from the seeded RNG.
    pub fn new_secret(&mut self) -> SecretString {
        let secret: String = (0..32)
            .map(|_| self.rng.sample(rand::distributions::Alphanumeric) as char)
            .collect();
        SecretString::from(secret)
    }

    /// The ticket `id`, or 404.
    pub fn ticket(&self, id: i64) -> Result<&Ticket, SimError> {
        self.tickets
            .get(&id)
            .ok_or(SimError::not_found("Ticket", id))
    }

    /// The ticket `id` for editing, or 404.
    pub fn ticket_mut(&mut self, id: i64) -> Result<&mut Ticket, SimError> {
        self.tickets
            .get_mut(&id)
            .ok_or(SimError::not_found("Ticket", id))
    }

    /// Stores a message and indexes it under its ticket.
    pub fn insert_message(&mut self, message: Message) {
        self.messages_by_ticket
            .entry(message.ticket_id)
            .or_default()
            .push(message.id);
        self.messages.insert(message.id, message);
    }

    /// Messages of one ticket, newest first (trengo-api.md §4.5 \[OBS\]).
    pub fn ticket_messages(&self, ticket_id: i64) -> Vec<&Message> {
        let mut messages: Vec<&Message> = self
            .messages_by_ticket
            .get(&ticket_id)
            .map(|ids| ids.iter().filter_map(|id| self.messages.get(id)).collect())
            .unwrap_or_default();
        messages.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
        messages
    }
}

/// First id of each kind, near the magnitudes seen in 2026 (trengo-api.md §4.2, §4.5, §13).
pub mod id_start {
    /// Tickets (~9.1e8).
    pub const TICKET: i64 = 913_790_000;
    /// Contacts (~5.1e8).
    pub const CONTACT: i64 = 508_438_000;
    /// Messages: above 2^31, as in reality.
    pub const MESSAGE: i64 = 4_200_000_000;
    /// Labels.
    pub const LABEL: i64 = 1_469_700;
    /// Users.
    pub const USER: i64 = 621_900;
    /// Teams.
    pub const TEAM: i64 = 354_700;
    /// Channels.
    pub const CHANNEL: i64 = 1_354_100;
    /// Custom fields.
    pub const CUSTOM_FIELD: i64 = 613_800;
    /// Profiles.
    pub const PROFILE: i64 = 41_250_000;
    /// Webhooks.
    pub const WEBHOOK: i64 = 7_630;
}

//! Trengo's payloads, read leniently.
//!
//! Field sets follow trengo-api.md §4.2, §4.5, §5–§8 and §13 \[OBS\]. Unknown fields are ignored;
//! ids are `i64` (message ids pass 2³¹, §4.5); flags may be bool, 0/1 or strings (§14);
//! `latest_message` is an object on list items and a timestamp string on create answers
//! (§4.2); `[]` stands for an empty object (§6). Naive timestamps are rendered in an
//! account-level zone (§4.3 \[REC\]): [`normalize_times`] converts them to UTC in the configured
//! zone before the typed structs are read.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Duration, LocalResult, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::api::lenient;

/// A ticket's status (trengo-api.md §4.1 \[CLI\]).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TicketStatus {
    /// New / unassigned.
    Open,
    /// Assigned to a user and/or team.
    Assigned,
    /// Closed.
    Closed,
    /// Marked as spam.
    Invalid,
    /// A status this client does not know; kept verbatim.
    Other(String),
}

impl TicketStatus {
    /// The API's spelling.
    pub fn as_str(&self) -> &str {
        match self {
            TicketStatus::Open => "OPEN",
            TicketStatus::Assigned => "ASSIGNED",
            TicketStatus::Closed => "CLOSED",
            TicketStatus::Invalid => "INVALID",
            TicketStatus::Other(s) => s,
        }
    }

    /// Closed or spam: the states that map to a completed task.
    pub fn is_done(&self) -> bool {
        matches!(self, TicketStatus::Closed | TicketStatus::Invalid)
    }
}

impl fmt::Display for TicketStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for TicketStatus {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Ok(match text.to_ascii_uppercase().as_str() {
            "OPEN" => TicketStatus::Open,
            "ASSIGNED" => TicketStatus::Assigned,
            "CLOSED" => TicketStatus::Closed,
            "INVALID" => TicketStatus::Invalid,
            _ => TicketStatus::Other(text),
        })
    }
}

/// A ticket (list item, single GET, or create answer).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Ticket {
    /// Ticket id.
    #[serde(deserialize_with = "lenient::id")]
    pub id: i64,
    pub status: TicketStatus,
    /// Subject; null for chat/WhatsApp tickets.
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub subject: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_id")]
    pub contact_id: Option<i64>,
    /// Embedded contact.
    #[serde(default)]
    pub contact: Option<Contact>,
    /// Channel id: only on create answers; list items embed `channel` instead.
    #[serde(default, deserialize_with = "lenient::opt_id")]
    pub channel_id: Option<i64>,
    /// Embedded channel.
    #[serde(default)]
    pub channel: Option<Channel>,
    /// Assigned user.
    #[serde(default, deserialize_with = "lenient::opt_id")]
    pub user_id: Option<i64>,
    /// Assigned team.
    #[serde(default, deserialize_with = "lenient::opt_id")]
    pub team_id: Option<i64>,
    /// Attached labels. Required (§4.2 \[OBS\]: always an array on list items and single
    /// GETs): a missing or null list read as "no labels" would take the contact's tags away
    /// and links out of scope. The create answer, which has none, is completed by the client.
    pub labels: Vec<Label>,
    #[serde(default, deserialize_with = "lenient::list")]
    pub custom_field_values: Vec<CustomFieldValue>,
    /// Number of messages: a cheap "something new" signal (§3.4).
    #[serde(default, deserialize_with = "lenient::opt_id")]
    pub messages_count: Option<i64>,
    /// Latest message: an object on list items, a timestamp on create answers.
    #[serde(default)]
    pub latest_message: Option<LatestMessage>,
    #[serde(default, deserialize_with = "lenient::opt_time")]
    pub created_at: Option<DateTime<Utc>>,
    /// Last updated (what `updated_at_gt` filters on).
    #[serde(default, deserialize_with = "lenient::opt_time")]
    pub updated_at: Option<DateTime<Utc>>,
    /// Closed, if closed.
    #[serde(default, deserialize_with = "lenient::opt_time")]
    pub closed_at: Option<DateTime<Utc>>,
    /// Assigned, if assigned.
    #[serde(default, deserialize_with = "lenient::opt_time")]
    pub assigned_at: Option<DateTime<Utc>>,
    /// Time of the latest message.
    #[serde(default, deserialize_with = "lenient::opt_time")]
    pub latest_message_at: Option<DateTime<Utc>>,
}

impl Ticket {
    /// The channel id, from `channel_id` or the embedded channel.
    pub fn channel_id(&self) -> Option<i64> {
        self.channel_id.or(self.channel.as_ref().map(|c| c.id))
    }

    /// The value of the ticket custom field with this id, from `custom_field_values`; `None`
    /// when the ticket has no value for it.
    pub fn custom_field(&self, field: i64) -> Option<&str> {
        value_of(&self.custom_field_values, field)
    }
}

fn value_of(values: &[CustomFieldValue], field: i64) -> Option<&str> {
    values
        .iter()
        .find(|v| v.custom_field_id == Some(field))
        .and_then(|v| v.value.as_deref())
}

/// `latest_message` in either of its shapes.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum LatestMessage {
    /// The list-item shape: a truncated message.
    Summary(MessageSummary),
    /// The create-answer shape: just a timestamp (or some other text).
    Text(String),
}

/// The truncated message embedded in ticket list items.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct MessageSummary {
    /// Message id.
    #[serde(deserialize_with = "lenient::id")]
    pub id: i64,
    /// `INBOUND`, `OUTBOUND` or `NOTE`.
    #[serde(default, rename = "type", deserialize_with = "lenient::opt_text")]
    pub kind: Option<String>,
    /// Text, truncated to ~100 characters.
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub message: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_time")]
    pub created_at: Option<DateTime<Utc>>,
}

/// A message's direction/kind (trengo-api.md §4.5 \[OBS\]).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum MessageKind {
    /// From the customer.
    Inbound,
    /// To the customer.
    Outbound,
    /// Internal note, never shown to the customer.
    Note,
    /// Something else, kept verbatim.
    Other(String),
}

impl<'de> Deserialize<'de> for MessageKind {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Ok(match text.to_ascii_uppercase().as_str() {
            "INBOUND" => MessageKind::Inbound,
            "OUTBOUND" => MessageKind::Outbound,
            "NOTE" => MessageKind::Note,
            _ => MessageKind::Other(text),
        })
    }
}

/// A ticket message or internal note.
///
/// Checked as it is read (issue #14 item 4): the `message` key is always sent (§4.5 \[OBS\]),
/// and a message without text must be media, a template or a call (`body_type` other than
/// `TEXT`). A text message without text is a wrong-shaped answer, not an empty note to skip:
/// skipped, the sync would move past it for good and lose a note.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(try_from = "MessageWire")]
pub struct Message {
    /// Message id (> 2³¹ in 2026).
    pub id: i64,
    /// The ticket it belongs to.
    pub ticket_id: Option<i64>,
    pub kind: MessageKind,
    /// `TEXT`, `IMAGE`, `COMPONENTS`, `CALL_LOG`, ...
    pub body_type: Option<String>,
    /// The text (there is no `body` field, §4.5).
    pub message: Option<String>,
    /// Author agent.
    pub user_id: Option<i64>,
    /// Embedded author.
    pub agent: Option<User>,
    pub created_at: Option<DateTime<Utc>>,
    pub updated_at: Option<DateTime<Utc>>,
}

/// A message as it comes over the wire, checked into a [`Message`].
#[derive(Deserialize)]
struct MessageWire {
    /// Message id (> 2³¹ in 2026).
    #[serde(deserialize_with = "lenient::id")]
    id: i64,
    /// The ticket it belongs to.
    #[serde(default, deserialize_with = "lenient::opt_id")]
    ticket_id: Option<i64>,
    #[serde(rename = "type")]
    kind: MessageKind,
    /// `TEXT`, `IMAGE`, `COMPONENTS`, `CALL_LOG`, ...
    #[serde(default, deserialize_with = "lenient::opt_text")]
    body_type: Option<String>,
    /// The text (there is no `body` field, §4.5). Always sent, null for media.
    message: serde_json::Value,
    /// Author agent.
    #[serde(default, deserialize_with = "lenient::opt_id")]
    user_id: Option<i64>,
    /// Embedded author.
    #[serde(default)]
    agent: Option<User>,
    #[serde(default, deserialize_with = "lenient::opt_time")]
    created_at: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "lenient::opt_time")]
    updated_at: Option<DateTime<Utc>>,
}

impl TryFrom<MessageWire> for Message {
    type Error = String;

    fn try_from(w: MessageWire) -> Result<Self, String> {
        let textual = w
            .body_type
            .as_deref()
            .is_none_or(|t| t.eq_ignore_ascii_case("TEXT"));
        // An empty text is odd but a text; null on a text message is the wrong shape.
        if w.message.is_null() && textual {
            return Err(format!(
                "message {} has no text and no media `body_type` ({:?}): a wrong-shaped message",
                w.id, w.body_type
            ));
        }
        Ok(Message {
            id: w.id,
            ticket_id: w.ticket_id,
            kind: w.kind,
            body_type: w.body_type,
            message: match w.message {
                serde_json::Value::Null => None,
                serde_json::Value::String(t) if t.is_empty() => None,
                serde_json::Value::String(t) => Some(t),
                other => Some(other.to_string()),
            },
            user_id: w.user_id,
            agent: w.agent,
            created_at: w.created_at,
            updated_at: w.updated_at,
        })
    }
}

/// A label (= tag) (trengo-api.md §5 \[OBS\]).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Label {
    /// Label id.
    #[serde(deserialize_with = "lenient::id")]
    pub id: i64,
    /// Name: what a label is matched by, so it must be text (§5 \[OBS\]); always `Some` once
    /// read. A missing, null or non-text name is a wrong-shaped answer.
    #[serde(deserialize_with = "label_name")]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub slug: Option<String>,
    /// Colour: hex or `rgb(...)`.
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub color: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_id")]
    pub sort_order: Option<i64>,
    /// Archived (0/1/null on the wire).
    #[serde(default, deserialize_with = "lenient::flag")]
    pub archived: bool,
}

fn label_name<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    use serde::de::Error as _;
    match Value::deserialize(d)? {
        Value::String(name) if !name.trim().is_empty() => Ok(Some(name)),
        other => Err(D::Error::custom(format!(
            "expected a label name, got {other}"
        ))),
    }
}

/// A contact (trengo-api.md §6 \[OBS\]).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Contact {
    /// Contact id.
    #[serde(deserialize_with = "lenient::id")]
    pub id: i64,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub full_name: Option<String>,
    /// E-mail.
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub email: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub phone: Option<String>,
    /// The channel identifier (e-mail or phone).
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub identifier: Option<String>,
    #[serde(default, deserialize_with = "lenient::list")]
    pub custom_field_values: Vec<CustomFieldValue>,
    /// Title → value map; `[]` when empty.
    #[serde(default, deserialize_with = "lenient::map")]
    pub formatted_custom_field_data: BTreeMap<String, Value>,
    /// The profiles (customers) it belongs to, in short (`profile: [{id, name, ...}]`);
    /// read a profile's custom fields with [`super::TrengoClient::profile`].
    #[serde(default, rename = "profile", deserialize_with = "lenient::list")]
    pub profiles: Vec<ProfileRef>,
    /// Created (ISO with offset on nested contacts).
    #[serde(default, deserialize_with = "lenient::opt_time")]
    pub created_at: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "lenient::opt_time")]
    pub updated_at: Option<DateTime<Utc>>,
}

impl Contact {
    /// The value of the custom field with this id, from `custom_field_values`; `None` when
    /// the contact has no value for it.
    pub fn custom_field(&self, field: i64) -> Option<&str> {
        value_of(&self.custom_field_values, field)
    }

    /// The ids of the profiles it belongs to.
    pub fn profile_ids(&self) -> Vec<i64> {
        self.profiles.iter().map(|p| p.id).collect()
    }
}

/// A profile as a contact lists it (`{id, name, abbr, created_at, color}`, §6 \[OBS\]).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ProfileRef {
    /// Profile id.
    #[serde(deserialize_with = "lenient::id")]
    pub id: i64,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub name: Option<String>,
}

/// A profile: one customer, grouping their contacts across channels (`GET /profiles/{id}`,
/// trengo-api.md §6 \[CLI\]). Its PROFILE-type custom fields are read like a contact's.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Profile {
    /// Profile id.
    #[serde(deserialize_with = "lenient::id")]
    pub id: i64,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "lenient::list")]
    pub custom_field_values: Vec<CustomFieldValue>,
    #[serde(default, deserialize_with = "lenient::opt_time")]
    pub created_at: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "lenient::opt_time")]
    pub updated_at: Option<DateTime<Utc>>,
}

impl Profile {
    /// The value of the profile custom field with this id; `None` when it has none.
    pub fn custom_field(&self, field: i64) -> Option<&str> {
        value_of(&self.custom_field_values, field)
    }
}

/// One custom field value on a ticket or contact (`{custom_field_id, field_name, value}`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct CustomFieldValue {
    #[serde(default, deserialize_with = "lenient::opt_id")]
    pub custom_field_id: Option<i64>,
    /// The field's title.
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub field_name: Option<String>,
    /// The value, as text.
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub value: Option<String>,
}

/// A custom field definition (trengo-api.md §7 \[OBS\]).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct CustomField {
    /// Field id.
    #[serde(deserialize_with = "lenient::id")]
    pub id: i64,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub title: Option<String>,
    /// Entity it belongs to: `CONTACT`, `TICKET`, `PROFILE`.
    #[serde(default, rename = "type", deserialize_with = "lenient::opt_text")]
    pub entity: Option<String>,
    /// Data type (`TEXT` observed).
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub field_type: Option<String>,
    /// A dropdown's options (§7 \[REC\]); empty when `items` is `null`, as on text fields.
    /// An option may be text or an object: objects are read by their `title`, `name` or
    /// `value`.
    #[serde(default, deserialize_with = "options")]
    pub items: Vec<String>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub identifier: Option<String>,
    #[serde(default, deserialize_with = "lenient::flag")]
    pub is_required: bool,
}

/// `items` of a custom field: `null` or a list of options, each text or an object with a
/// `title`, `name` or `value`; anything else counts as no options.
fn options<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let value = Value::deserialize(d)?;
    let Value::Array(items) = value else {
        return Ok(Vec::new());
    };
    Ok(items
        .iter()
        .filter_map(|item| match item {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Object(map) => ["title", "name", "value"]
                .iter()
                .find_map(|k| map.get(*k).and_then(Value::as_str))
                .map(str::to_owned),
            _ => None,
        })
        .collect())
}

/// A user (agent) (trengo-api.md §8 \[OBS\]).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct User {
    /// User id.
    #[serde(deserialize_with = "lenient::id")]
    pub id: i64,
    /// The account (agency) the user belongs to: what a database is bound to.
    #[serde(default, deserialize_with = "lenient::opt_id")]
    pub agency_id: Option<i64>,
    /// Display name.
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub first_name: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub last_name: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub full_name: Option<String>,
    /// E-mail (how users are matched to GHL users).
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub email: Option<String>,
    /// `OWNER`, `SUPERVISOR`, `MEMBER`, ...
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub authorization: Option<String>,
    /// `ACTIVE`, ...
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub status: Option<String>,
    /// Chat availability (bool or `"1"` on the wire).
    #[serde(default, deserialize_with = "lenient::flag")]
    pub chat_status: bool,
}

/// A team (only `id` and `name` are evidenced, trengo-api.md §8 \[REC\]).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Team {
    /// Team id.
    #[serde(deserialize_with = "lenient::id")]
    pub id: i64,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub name: Option<String>,
}

/// A channel (trengo-api.md §4.2, §8).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Channel {
    /// Channel id.
    #[serde(deserialize_with = "lenient::id")]
    pub id: i64,
    /// Internal name.
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub name: Option<String>,
    /// Title shown in the app.
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub title: Option<String>,
    /// `EMAIL`, `WA_BUSINESS`, `VOIP`, ...
    #[serde(default, rename = "type", deserialize_with = "lenient::opt_text")]
    pub kind: Option<String>,
    /// `ACTIVE`, ...
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub status: Option<String>,
}

/// One page of a Laravel paginator (trengo-api.md §3.1).
#[derive(Debug, Clone, Deserialize)]
#[serde(bound(deserialize = "T: Deserialize<'de>"))]
pub struct Page<T> {
    /// The items. Required: a page without its list is a wrong-shaped answer, never an
    /// empty page (which ends the walk).
    pub data: Vec<T>,
    /// Navigation links; only `next` is trusted. Required: without them the walk could not
    /// tell the last page from a garbled one, and would stop early in silence.
    pub links: PageLinks,
}

/// `links` of a page.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct PageLinks {
    /// The next page's URL; `null` on the last page, and present on every page.
    #[serde(deserialize_with = "lenient::opt_text")]
    pub next: Option<String>,
}

/// Keys whose naive string values are Trengo timestamps, besides every `*_at` key.
const TIME_KEYS: &[&str] = &["latest_message"];

/// Rewrites every naive Trengo timestamp in `value` (`"YYYY-MM-DD HH:MM:SS"` under a `*_at`
/// key, or `latest_message` as a string) as RFC 3339 UTC, reading it in `zone`. Values with an
/// offset or `Z` are already unambiguous and left as they are.
pub fn normalize_times(value: &mut Value, zone: Tz) {
    match value {
        Value::Object(map) => {
            for (key, item) in map.iter_mut() {
                if let Value::String(text) = item {
                    if (key.ends_with("_at") || TIME_KEYS.contains(&key.as_str()))
                        && let Some(utc) = naive_in_zone(text, zone)
                    {
                        *text = utc.to_rfc3339();
                    }
                } else {
                    normalize_times(item, zone);
                }
            }
        }
        Value::Array(items) => items
            .iter_mut()
            .for_each(|item| normalize_times(item, zone)),
        _ => {}
    }
}

/// Reads a zone-less timestamp in `zone`. A time that a DST change skips is read one hour
/// later; a time it repeats is read as its first occurrence.
pub fn naive_in_zone(text: &str, zone: Tz) -> Option<DateTime<Utc>> {
    let text = text.trim();
    // Anything carrying an offset or Z is not naive.
    if DateTime::parse_from_rfc3339(text).is_ok() {
        return None;
    }
    let naive = lenient::parse_naive(text)?;
    let local = match zone.from_local_datetime(&naive) {
        LocalResult::Single(t) => t,
        LocalResult::Ambiguous(first, _) => first,
        LocalResult::None => zone
            .from_local_datetime(&(naive + Duration::hours(1)))
            .earliest()?,
    };
    Some(local.with_timezone(&Utc))
}

/// Formats an instant the way `updated_at_gt` was verified to accept it: `YYYY-MM-DD HH:MM:SS`
/// in the account's zone (trengo-api.md §3.4 \[OBS\]).
pub fn format_filter_time(at: DateTime<Utc>, zone: Tz) -> String {
    at.with_timezone(&zone)
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn custom_field_items_read_as_options_text_or_titled_and_null_as_none() {
        let field = |items: Value| -> CustomField {
            serde_json::from_value(json!({"id": 1, "title": "Tier", "type": "CONTACT",
                "field_type": "DROPDOWN", "items": items}))
            .unwrap()
        };
        assert!(field(json!(null)).items.is_empty());
        assert_eq!(field(json!(["Basic", "Pro"])).items, ["Basic", "Pro"]);
        assert_eq!(
            field(json!([{"title": "Basic"}, {"value": "Pro"}])).items,
            ["Basic", "Pro"]
        );
    }

    #[test]
    fn contact_lists_its_profile_ids() {
        let contact: Contact = serde_json::from_value(json!({"id": 5,
            "profile": [{"id": 41250003, "name": "Ada", "abbr": "A", "color": "#fff"}]}))
        .unwrap();
        assert_eq!(contact.profile_ids(), [41_250_003]);
        let bare: Contact = serde_json::from_value(json!({"id": 6})).unwrap();
        assert!(bare.profile_ids().is_empty());
    }

    fn ticket_json() -> Value {
        json!({
          "id": 913790661, "status": "ASSIGNED", "subject": null,
          "closed_at": null, "created_at": "2026-01-01 11:27:26", "updated_at": "2026-03-30 19:10:19",
          "user_id": 621989, "team_id": "354704", "assigned_at": "2026-01-02 09:00:00",
          "contact_id": 508438822,
          "contact": { "id": 508438822, "name": "Jane Doe", "email": "jane@example.com",
                       "custom_field_data": null, "formatted_custom_field_data": [],
                       "custom_field_values": [], "profile": [], "is_private": false,
                       "created_at": "2026-02-03T13:17:31+00:00" },
          "channel": { "id": 1354109, "name": "Wa_business", "type": "WA_BUSINESS", "status": "ACTIVE" },
          "channelMeta": null,
          "latest_message": { "id": 4217650721_i64, "type": "INBOUND", "message": "Hello", "created_at": "2026-03-30 19:10:19", "attachments": [] },
          "labels": [ { "id": 1469784, "name": "Billing", "slug": "billing", "color": "#AC92EC", "sort_order": 3, "archived": null } ],
          "custom_data": null, "messages_count": 12, "custom_field_values": [],
          "ai_agent_id": null, "something_new": {"x": 1}
        })
    }

    #[test]
    fn list_item_reads_in_account_zone() {
        let mut value = ticket_json();
        normalize_times(&mut value, chrono_tz::Europe::Amsterdam);
        let ticket: Ticket = serde_json::from_value(value).unwrap();
        assert_eq!(ticket.id, 913_790_661);
        assert_eq!(ticket.status, TicketStatus::Assigned);
        assert_eq!(ticket.team_id, Some(354_704));
        assert_eq!(ticket.channel_id(), Some(1_354_109));
        // 19:10:19 in Amsterdam summer time is 17:10:19 UTC.
        assert_eq!(
            ticket.updated_at.unwrap().to_rfc3339(),
            "2026-03-30T17:10:19+00:00"
        );
        // Nested ISO times keep their own offset.
        assert_eq!(
            ticket.contact.unwrap().created_at.unwrap().to_rfc3339(),
            "2026-02-03T13:17:31+00:00"
        );
        match ticket.latest_message {
            Some(LatestMessage::Summary(m)) => assert_eq!(m.id, 4_217_650_721),
            other => panic!("unexpected {other:?}"),
        }
        assert!(!ticket.labels[0].archived);
    }

    #[test]
    fn ticket_without_its_labels_or_with_a_nameless_label_is_refused() {
        let ticket = |labels: Option<Value>| {
            let mut value = json!({"id": 1, "status": "OPEN"});
            if let Some(labels) = labels {
                value["labels"] = labels;
            }
            serde_json::from_value::<Ticket>(value)
        };
        assert!(ticket(Some(json!([{"id": 2, "name": "GHL"}]))).is_ok());
        for labels in [
            None,
            Some(json!(null)),
            Some(json!([{"id": 2}])),
            Some(json!([{"id": 2, "name": null}])),
            Some(json!([{"id": 2, "name": 7}])),
        ] {
            assert!(ticket(labels.clone()).is_err(), "{labels:?}");
        }
    }

    #[test]
    fn page_without_its_list_or_links_is_refused_not_read_as_the_last() {
        for page in [
            json!({"links": {"next": null}}),
            json!({"data": null, "links": {"next": null}}),
            json!({"data": []}),
            json!({"data": [], "links": {}}),
        ] {
            assert!(
                serde_json::from_value::<Page<Label>>(page.clone()).is_err(),
                "{page}"
            );
        }
    }

    #[test]
    fn create_answer_with_string_latest_message_reads() {
        // `labels` is what `TrengoClient::create_ticket` adds to the raw create answer.
        let value = json!({"id": 1, "status": "ASSIGNED", "channel_id": 5, "contact_id": 9,
            "latest_message": "2024-01-02T10:24:40.000000Z", "created_at": "2024-01-02T10:24:40.000000Z",
            "labels": []});
        let ticket: Ticket = serde_json::from_value(value).unwrap();
        assert!(matches!(
            ticket.latest_message,
            Some(LatestMessage::Text(_))
        ));
        assert_eq!(ticket.channel_id(), Some(5));
    }

    #[test]
    fn filter_time_is_written_in_zone() {
        let at = DateTime::parse_from_rfc3339("2026-01-10T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(
            format_filter_time(at, chrono_tz::Europe::Amsterdam),
            "2026-01-10 13:00:00"
        );
    }

    #[test]
    fn a_text_message_without_text_is_a_wrong_shape_and_media_without_text_reads() {
        let read = |v: serde_json::Value| serde_json::from_value::<Message>(v);
        let media =
            read(json!({"id": 1, "type": "INBOUND", "body_type": "IMAGE", "message": null}));
        assert!(media.is_ok(), "{media:?}");
        let note = read(json!({"id": 2, "type": "NOTE", "body_type": "TEXT", "message": "hi"}));
        assert_eq!(note.unwrap().message.as_deref(), Some("hi"));
        let empty = read(json!({"id": 6, "type": "NOTE", "body_type": "TEXT", "message": ""}));
        assert_eq!(
            empty.unwrap().message,
            None,
            "an empty text is a text, read as none"
        );
        // A note whose text was nulled or dropped would be skipped for good: refused instead.
        for bad in [
            json!({"id": 3, "type": "NOTE", "body_type": "TEXT", "message": null}),
            json!({"id": 4, "type": "NOTE", "message": null}),
            json!({"id": 5, "type": "NOTE", "body_type": "TEXT"}),
        ] {
            let e = read(bad.clone()).expect_err(&bad.to_string()).to_string();
            assert!(e.contains("message"), "{e}");
        }
    }
}

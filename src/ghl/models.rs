//! GHL API v2 payloads: what we read leniently, and what we write exactly as the official
//! OpenAPI files in `specs/ghl/` define it (field names, required fields, the `succeded`
//! spelling).
//!
//! Read models ignore unknown fields, accept `succeded` and `succeeded`, custom field values
//! under `value` or `fieldValue` (ghl-api.md §7), and ids under `id` or `_id`.

use chrono::{DateTime, Duration, SecondsFormat, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;

use crate::api::lenient;

/// A contact (`GetContectByIdSchema`, search results add `searchAfter`; apps/contacts.json).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Contact {
    /// Contact id.
    #[serde(alias = "_id")]
    pub id: String,
    /// Location (sub-account) id.
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub location_id: Option<String>,
    /// Full name.
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub first_name: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub last_name: Option<String>,
    /// E-mail.
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub email: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub phone: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub company_name: Option<String>,
    /// Street address.
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub address1: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub city: Option<String>,
    /// State or province.
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub state: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub postal_code: Option<String>,
    /// Country, as an ISO code (`US`, `NL`).
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub country: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub website: Option<String>,
    /// Birth date as GHL sends it (the spec says `YYYY-MM-DD`), unparsed.
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub date_of_birth: Option<String>,
    /// Where the contact came from (`public api`, a form name, ...).
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub source: Option<String>,
    /// Tags (by name). Required: every contact answer carries the list (`[]` when empty,
    /// ghl-api.md §4 examples), and reading a missing or null list as "no tags" would take
    /// tags off the other side and links out of scope.
    pub tags: Vec<String>,
    /// Custom field values.
    #[serde(default, deserialize_with = "lenient::list")]
    pub custom_fields: Vec<CustomFieldValue>,
    /// Assigned user id.
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub assigned_to: Option<String>,
    /// Do-not-disturb.
    #[serde(default, deserialize_with = "lenient::flag")]
    pub dnd: bool,
    /// Created.
    #[serde(default, deserialize_with = "lenient::opt_time")]
    pub date_added: Option<DateTime<Utc>>,
    /// Last updated (what the incremental search filters on).
    #[serde(default, deserialize_with = "lenient::opt_time")]
    pub date_updated: Option<DateTime<Utc>>,
    /// The search cursor of this contact (sort value + id), on search results only.
    #[serde(default, deserialize_with = "lenient::list")]
    pub search_after: Vec<Value>,
}

/// A custom field value as read (`{id, value}`; some endpoints say `fieldValue`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct CustomFieldValue {
    /// Field id.
    pub id: String,
    /// Value: string, number, array or object depending on the field type.
    #[serde(default, alias = "fieldValue", alias = "field_value")]
    pub value: Value,
}

/// A custom field value as written (`customFieldsInput*Schema`: `id` or `key`, and
/// `field_value`). Build it with [`CustomFieldInput::by_id`] or [`CustomFieldInput::by_key`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CustomFieldInput {
    /// Field id (the spec's array and object schemas require it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Field key, always with its `contact.` prefix.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The value, typed per field (string, number, array of strings, object).
    pub field_value: Value,
}

impl CustomFieldInput {
    /// Writes the field with this id: works whatever GHL's key format turns out to be, and
    /// is the only form the spec allows for array and object values.
    pub fn by_id(id: impl Into<String>, value: Value) -> Self {
        Self {
            id: Some(id.into()),
            key: None,
            field_value: value,
        }
    }

    /// Writes the field with this key. The key is sent with its `contact.` prefix
    /// (`customer_number` becomes `contact.customer_number`), the spelling GHL's own field
    /// definitions use (`fieldKey`): whether a bare key is accepted is not pinned down
    /// (ghl-api.md §7 \[uncertain\]), the prefixed one is what third-party examples send.
    ///
    /// Prefer [`Self::by_id`], resolving the key through [`super::GhlClient::custom_fields`]:
    /// the spec's `customFieldsInputStringSchema` allows "either `id` or `key`", but the
    /// schemas wired to create, upsert and update require `id` for every field type, so a
    /// key-only write is off-spec (`tests/ghl_requests_conform.rs` keeps that visible).
    pub fn by_key(key: &str, value: Value) -> Self {
        let key = key.trim();
        let key = if key.starts_with("contact.") {
            key.to_owned()
        } else {
            format!("contact.{key}")
        };
        Self {
            id: None,
            key: Some(key),
            field_value: value,
        }
    }
}

/// An appointment booked for a contact (`GetEventSchema`, ghl-api.md §6). Times are
/// instants: GHL's naive form (`2021-07-16 11:00:00`) is read as wall-clock time in the
/// zone given to [`super::GhlClient::contact_appointments`], RFC 3339 as itself.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Appointment {
    /// Appointment (event) id.
    #[serde(alias = "_id")]
    pub id: String,
    /// The calendar it is booked in.
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub calendar_id: Option<String>,
    /// What it is about.
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub title: Option<String>,
    /// `appointmentStatus` (`booked`, `confirmed`, `cancelled`, `showed`, `noshow`,
    /// `invalid`); `status` when that is all the answer has.
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub appointment_status: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    status: Option<String>,
    /// User id of the host.
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub assigned_user_id: Option<String>,
    /// Start.
    #[serde(default, deserialize_with = "lenient::opt_time")]
    pub start_time: Option<DateTime<Utc>>,
    /// End.
    #[serde(default, deserialize_with = "lenient::opt_time")]
    pub end_time: Option<DateTime<Utc>>,
}

impl Appointment {
    /// The appointment's status: `appointmentStatus`, else `status`.
    pub fn status(&self) -> Option<&str> {
        self.appointment_status
            .as_deref()
            .or(self.status.as_deref())
    }
}

/// Reads a time GHL may write without a zone: RFC 3339 as itself; `YYYY-MM-DD HH:MM:SS`
/// (or with a `T`) as wall-clock time in `zone`. An ambiguous wall-clock time (the hour the
/// clocks go back) is the earlier instant; one that does not exist (the hour skipped when
/// they go forward) is read an hour later, as a calendar would show it. `None` when the text
/// is neither form.
pub fn time_in_zone(text: &str, zone: Tz) -> Option<DateTime<Utc>> {
    if let Ok(at) = DateTime::parse_from_rfc3339(text.trim()) {
        return Some(at.with_timezone(&Utc));
    }
    let naive = lenient::parse_naive(text)?;
    let local = zone.from_local_datetime(&naive).earliest().or_else(|| {
        zone.from_local_datetime(&(naive + Duration::hours(1)))
            .earliest()
    })?;
    Some(local.with_timezone(&Utc))
}

/// Rewrites the naive times of each event in a `{events: [...]}` answer as RFC 3339 in
/// `zone`, so the answer decodes into [`Appointment`]s; other text is left for the decoder
/// to refuse with its name.
pub(crate) fn localise_event_times(answer: &mut Value, zone: Tz) {
    let Some(Value::Array(events)) = answer.get_mut("events") else {
        return;
    };
    for event in events.iter_mut().filter_map(Value::as_object_mut) {
        for key in ["startTime", "endTime", "dateAdded", "dateUpdated"] {
            if let Some(Value::String(text)) = event.get_mut(key)
                && let Some(at) = time_in_zone(text, zone)
            {
                *text = at.to_rfc3339_opts(SecondsFormat::Secs, true);
            }
        }
    }
}

/// A task (`TaskSchema`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Task {
    /// Task id.
    #[serde(alias = "_id")]
    pub id: String,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub title: Option<String>,
    /// Body (holds the ticket URL, the link's idempotency key).
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub body: Option<String>,
    /// Assigned user id.
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub assigned_to: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_time")]
    pub due_date: Option<DateTime<Utc>>,
    /// Completed (search answers are untyped in the spec: `isCompleted` is also read \[recon\]).
    /// Required and strictly a boolean (`TaskSchema`): a missing or null flag read as "open"
    /// would reopen the linked ticket.
    #[serde(alias = "isCompleted", deserialize_with = "completion")]
    pub completed: bool,
    /// The contact it belongs to.
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub contact_id: Option<String>,
}

/// A task's `completed`: `true`/`false`, or 0/1 and their strings; anything else (null, a
/// word, a list) is a wrong-shaped answer, not "open".
fn completion<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    use serde::de::Error as _;
    let value = Value::deserialize(d)?;
    let read = match &value {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => match n.as_i64() {
            Some(0) => Some(false),
            Some(1) => Some(true),
            _ => None,
        },
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "1" => Some(true),
            "false" | "0" => Some(false),
            _ => None,
        },
        _ => None,
    };
    read.ok_or_else(|| D::Error::custom(format!("expected true or false, got {value}")))
}

/// A note (`GetNoteSchema`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Note {
    /// Note id.
    #[serde(alias = "_id")]
    pub id: String,
    /// Body (may contain HTML).
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub body: Option<String>,
    /// Author.
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub user_id: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub contact_id: Option<String>,
    /// Created (notes carry no update time).
    #[serde(default, deserialize_with = "lenient::opt_time")]
    pub date_added: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub title: Option<String>,
    #[serde(default, deserialize_with = "lenient::flag")]
    pub pinned: bool,
}

/// A custom field definition (`CustomFieldSchema` in apps/locations.json).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CustomField {
    /// Field id.
    pub id: String,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub name: Option<String>,
    /// Key, e.g. `contact.pincode`.
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub field_key: Option<String>,
    /// `TEXT`, `LARGE_TEXT`, `SINGLE_OPTIONS`, ...
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub data_type: Option<String>,
    /// `contact` or `opportunity`.
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub model: Option<String>,
    #[serde(default, deserialize_with = "lenient::list")]
    pub picklist_options: Vec<String>,
}

/// A location (sub-account), as much of `GetLocationByIdSchema` (apps/locations.json) as the
/// sync reads.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Location {
    /// Location id.
    #[serde(alias = "_id")]
    pub id: String,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub name: Option<String>,
    /// IANA zone name (`America/Chicago`), the zone GHL's naive times are written in.
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub timezone: Option<String>,
}

/// `GET /locations/{locationId}` → `{location}`.
#[derive(Debug, Deserialize)]
pub(crate) struct LocationAnswer {
    pub location: Location,
}

/// A location user.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    /// User id (what `assignedTo` holds).
    #[serde(alias = "_id")]
    pub id: String,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub first_name: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub last_name: Option<String>,
    /// E-mail (how users are matched to Trengo users).
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub email: Option<String>,
}

/// `{ "succeded": true }` (the spec's spelling) or `{ "succeeded": true }`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct Outcome {
    /// The spec's spelling.
    #[serde(default)]
    pub succeded: Option<bool>,
    /// The correct spelling, in case GHL fixes it.
    #[serde(default)]
    pub succeeded: Option<bool>,
    /// GHL's trace id.
    #[serde(default, rename = "traceId")]
    pub trace_id: Option<String>,
}

impl Outcome {
    /// Whether the API reported success (absent counts as success: the status was 2xx).
    pub fn ok(&self) -> bool {
        self.succeded.or(self.succeeded).unwrap_or(true)
    }
}

/// Writable contact fields (`CreateContactDto` / `UpdateContactDto` / `UpsertContactDto`);
/// unset fields are left out of the body.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ContactFields {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
    /// Full name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// E-mail.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    /// Company name. Only `CreateContactDto` and `UpsertContactDto` list it: GHL's
    /// `UpdateContactDto` has no `companyName`, so an update carrying it is off-spec.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub company_name: Option<String>,
    /// Street address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address1: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    /// State or province.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub postal_code: Option<String>,
    /// Country, as an ISO code (`US`, `NL`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub website: Option<String>,
    /// Birth date; the spec accepts `YYYY-MM-DD` and several other orders and separators.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub date_of_birth: Option<String>,
    /// Source label.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Assigned user id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub assigned_to: Option<String>,
    /// Tags. On update this **replaces** every tag (spec); use tag add/remove instead.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    /// Custom field values.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub custom_fields: Option<Vec<CustomFieldInput>>,
}

/// A new task (`CreateTaskParams`: `title`, `dueDate`, `completed` required).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NewTask {
    pub title: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// Due date, sent as ISO 8601 without milliseconds (ghl-api.md §4.1 \[obs\]).
    #[serde(serialize_with = "iso_seconds")]
    pub due_date: DateTime<Utc>,
    pub completed: bool,
    /// Assigned user id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub assigned_to: Option<String>,
}

/// A task update (`UpdateTaskBody`: every field optional). GHL has been seen to reject updates
/// without `title` and `dueDate` (ghl-api.md §4.1 \[obs\]): callers should send both.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskUpdate {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// Due date.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "opt_iso_seconds"
    )]
    pub due_date: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completed: Option<bool>,
    /// Assigned user id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub assigned_to: Option<String>,
}

/// A note body (`NotesDTO`: `body` required; `UpdateNoteDTO`: all optional).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NoteFields {
    /// Text.
    pub body: String,
    /// Author user id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
}

/// Filters of the location task search (`TaskSearchParamsDto`); paging is the client's.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TaskSearch {
    /// Only completed (true) or open (false) tasks.
    pub completed: Option<bool>,
    /// Only tasks of these contacts.
    pub contact_ids: Vec<String>,
    /// Only tasks assigned to these users.
    pub assigned_to: Vec<String>,
    /// Free-text search.
    pub query: Option<String>,
}

/// Wrapper answers.
#[derive(Debug, Deserialize)]
pub(crate) struct ContactAnswer {
    pub contact: Contact,
}

/// `GET /contacts/search/duplicate` → `{contact}`: the contact, or `null` for no match. The
/// spec leaves the answer untyped (ghl-api.md §3.1): the key is required, so an answer of
/// another shape is an error naming the endpoint, never a silent "no duplicate" that would
/// create a second contact.
#[derive(Debug, Deserialize)]
pub(crate) struct DuplicateAnswer {
    #[serde(deserialize_with = "present_or_null")]
    pub contact: Option<Contact>,
}

/// An `Option` whose key must be present (a `null` value is `None`); serde's default reads a
/// missing key as `None` too, which would turn a wrong-shaped answer into "none".
fn present_or_null<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<T>, D::Error> {
    Option::<T>::deserialize(d)
}

#[derive(Debug, Deserialize)]
pub(crate) struct UpsertAnswer {
    #[serde(default, rename = "new", deserialize_with = "lenient::flag")]
    pub created: bool,
    pub contact: Contact,
}

#[derive(Debug, Deserialize)]
pub(crate) struct SearchAnswer {
    // Required: a missing or null list is a wrong-shaped answer, never "none".
    pub contacts: Vec<Contact>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct TaskAnswer {
    pub task: Task,
}

#[derive(Debug, Deserialize)]
pub(crate) struct TasksAnswer {
    // Required: a missing or null list is a wrong-shaped answer, never "none".
    pub tasks: Vec<Task>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct NoteAnswer {
    pub note: Note,
}

#[derive(Debug, Deserialize)]
pub(crate) struct NotesAnswer {
    // Required: a missing or null list is a wrong-shaped answer, never "none".
    pub notes: Vec<Note>,
}

/// `GET /contacts/{id}/appointments` → `{events}`. Required: a missing or null list is a
/// wrong-shaped answer, never "no appointments".
#[derive(Debug, Deserialize)]
pub(crate) struct AppointmentsAnswer {
    pub events: Vec<Appointment>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct TagsAnswer {
    #[serde(default, deserialize_with = "lenient::list")]
    pub tags: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CustomFieldsAnswer {
    // Required: a missing or null list is a wrong-shaped answer, never "no fields".
    pub custom_fields: Vec<CustomField>,
}

/// `GET /users/` → `{users: [...]}`. Not in the stored specs, its scope unknown (ghl-api.md):
/// the list is required, so another shape is an error naming the endpoint, never "no users"
/// (which would unassign every task whose assignee could no longer be matched).
#[derive(Debug, Deserialize)]
pub(crate) struct UsersAnswer {
    pub users: Vec<User>,
}

/// Formats an instant as GHL's search filters expect: ISO 8601 UTC with milliseconds.
pub fn iso_millis(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn iso_seconds<S: Serializer>(at: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&at.to_rfc3339_opts(SecondsFormat::Secs, true))
}

fn opt_iso_seconds<S: Serializer>(at: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
    match at {
        Some(at) => iso_seconds(at, s),
        None => s.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn both_spellings_of_succeeded_read() {
        let a: Outcome = serde_json::from_value(json!({"succeded": true})).unwrap();
        let b: Outcome = serde_json::from_value(json!({"succeeded": false})).unwrap();
        let c: Outcome =
            serde_json::from_value(json!({"succeded": true, "succeeded": true})).unwrap();
        assert!(a.ok());
        assert!(!b.ok());
        assert!(c.ok());
    }

    #[test]
    fn new_task_matches_create_task_params() {
        let task = NewTask {
            title: "Call back".into(),
            body: None,
            due_date: DateTime::parse_from_rfc3339("2025-07-05T09:00:00.123Z")
                .unwrap()
                .with_timezone(&Utc),
            completed: false,
            assigned_to: None,
        };
        assert_eq!(
            serde_json::to_value(&task).unwrap(),
            json!({"title": "Call back", "dueDate": "2025-07-05T09:00:00Z", "completed": false})
        );
    }

    #[test]
    fn contact_reads_custom_field_value_variants() {
        let contact: Contact = serde_json::from_value(json!({
            "id": "c1", "tags": [], "dnd": "false",
            "customFields": [{"id": "f1", "value": "x"}, {"id": "f2", "fieldValue": 3}],
            "dateUpdated": "2025-07-05T09:01:12.000Z", "searchAfter": [1751706072000_i64, "c1"],
            "unknownThing": {"a": 1}
        }))
        .unwrap();
        assert!(contact.tags.is_empty());
        assert_eq!(contact.custom_fields[1].value, json!(3));
        assert_eq!(contact.search_after.len(), 2);
    }

    #[test]
    fn contact_without_its_tag_list_is_refused_not_read_as_untagged() {
        for contact in [json!({"id": "c1"}), json!({"id": "c1", "tags": null})] {
            let read = serde_json::from_value::<Contact>(contact.clone());
            assert!(read.is_err(), "{contact} read as {read:?}");
        }
    }

    #[test]
    fn duplicate_users_and_field_answers_of_another_shape_are_refused_not_read_as_none() {
        let dup: DuplicateAnswer = serde_json::from_value(json!({"contact": null})).unwrap();
        assert!(dup.contact.is_none());
        let dup: DuplicateAnswer =
            serde_json::from_value(json!({"contact": {"id": "c1", "tags": []}})).unwrap();
        assert_eq!(dup.contact.unwrap().id, "c1");
        for answer in [json!({}), json!({"contacts": []}), json!({"contact": []})] {
            let read = serde_json::from_value::<DuplicateAnswer>(answer.clone());
            assert!(read.is_err(), "{answer} read as {read:?}");
        }
        for answer in [json!({}), json!({"users": null}), json!({"data": []})] {
            assert!(
                serde_json::from_value::<UsersAnswer>(answer.clone()).is_err(),
                "{answer}"
            );
        }
        for answer in [json!({}), json!({"customFields": null})] {
            assert!(
                serde_json::from_value::<CustomFieldsAnswer>(answer.clone()).is_err(),
                "{answer}"
            );
        }
    }

    #[test]
    fn task_list_or_completion_of_the_wrong_shape_is_refused() {
        for answer in [json!({}), json!({"tasks": null})] {
            assert!(serde_json::from_value::<TasksAnswer>(answer).is_err());
        }
        for completed in [json!(null), json!("soon"), json!(7), json!([]), json!({})] {
            let task = json!({"id": "t1", "completed": completed});
            assert!(serde_json::from_value::<Task>(task).is_err(), "{completed}");
        }
        let task: Task = serde_json::from_value(json!({"id": "t1", "isCompleted": 1})).unwrap();
        assert!(task.completed);
    }

    #[test]
    fn naive_appointment_time_is_wall_clock_in_the_given_zone() {
        let zone = chrono_tz::Tz::Europe__Amsterdam;
        let at = |text: &str| time_in_zone(text, zone).map(|t| t.to_rfc3339());
        assert_eq!(
            at("2021-07-16 11:00:00").unwrap(),
            "2021-07-16T09:00:00+00:00"
        );
        assert_eq!(
            at("2021-01-16T11:00:00").unwrap(),
            "2021-01-16T10:00:00+00:00"
        );
        // RFC 3339 is read as itself, whatever the zone.
        assert_eq!(
            at("2021-07-16T11:00:00Z").unwrap(),
            "2021-07-16T11:00:00+00:00"
        );
        // The hour skipped in spring reads an hour later; the repeated one in autumn, earlier.
        assert_eq!(
            at("2026-03-29 02:30:00").unwrap(),
            "2026-03-29T01:30:00+00:00"
        );
        assert_eq!(
            at("2026-10-25 02:30:00").unwrap(),
            "2026-10-25T00:30:00+00:00"
        );
        assert_eq!(at("next tuesday"), None);
    }

    #[test]
    fn events_answer_with_naive_times_decodes_in_the_zone() {
        let mut answer = json!({"events": [{"id": "e1", "title": "Test", "status": "booked",
            "startTime": "2021-07-16 11:00:00", "endTime": "2021-07-16 11:30:00"}]});
        localise_event_times(&mut answer, chrono_tz::Tz::UTC);
        let decoded: AppointmentsAnswer = serde_json::from_value(answer).unwrap();
        let event = &decoded.events[0];
        assert_eq!(event.status(), Some("booked"));
        assert_eq!(
            event.start_time.unwrap().to_rfc3339(),
            "2021-07-16T11:00:00+00:00"
        );
        for answer in [json!({}), json!({"events": null})] {
            assert!(serde_json::from_value::<AppointmentsAnswer>(answer).is_err());
        }
    }

    #[test]
    fn custom_field_written_by_key_carries_the_contact_prefix_once() {
        for key in ["customer_number", "contact.customer_number"] {
            let input = CustomFieldInput::by_key(key, json!("C-1"));
            assert_eq!(
                serde_json::to_value(&input).unwrap(),
                json!({"key": "contact.customer_number", "field_value": "C-1"})
            );
        }
        assert_eq!(
            serde_json::to_value(CustomFieldInput::by_id("f1", json!(["a"]))).unwrap(),
            json!({"id": "f1", "field_value": ["a"]})
        );
    }
}

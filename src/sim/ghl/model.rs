//! The records the GHL fake keeps (contacts, tasks, notes, appointments, users, custom field
//! definitions) and how each renders in GHL's JSON shapes.
//!
//! Shapes follow `specs/ghl/apps/contacts.json` (`GetContectByIdSchema`, `TaskSchema`,
//! `GetNoteSchema`, `GetEventSchema`), the 2025-09-08 `Contact` search-hit schema, and `apps/locations.json`
//! (`CustomFieldSchema`). Absent values are left out rather than sent as `null`, since the
//! schemas type them as strings. Timestamps render as ISO 8601 with milliseconds and `Z`,
//! as GHL sends them (ghl-api.md §3.3 example).

use chrono::{DateTime, SecondsFormat, Utc};
use chrono_tz::Tz;
use serde::{Serialize, Serializer};
use serde_json::{Map, Value, json};

/// A timestamp the way GHL writes it: `2025-07-02T05:18:26.704Z`.
pub fn ghl_time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn ser_time<S: Serializer>(at: &DateTime<Utc>, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&ghl_time(*at))
}

/// One value of a contact's custom field, as read back (`{id, value}`, ghl-api.md §7).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CustomFieldValue {
    /// The field definition's id.
    pub id: String,
    /// The value, typed by the field (ghl-api.md §7: string, number, array of strings): the
    /// spec's `CustomFieldSchema` says string, which holds for text, option and date fields.
    pub value: Value,
}

impl CustomFieldValue {
    /// A text value.
    pub fn text(id: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            value: Value::String(value.into()),
        }
    }
}

/// A GHL contact.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Contact {
    /// 20-character id.
    pub id: String,
    /// The location (sub-account) it belongs to.
    pub location_id: String,
    /// Given name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    /// Family name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
    /// E-mail address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Phone in E.164.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
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
    /// ISO country code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub website: Option<String>,
    /// Birth date as written (the spec's example is `YYYY-MM-DD`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub date_of_birth: Option<String>,
    /// Where the contact came from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Owner (user id).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub assigned_to: Option<String>,
    /// IANA zone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// Tags by name; contacts keep tags as strings, not tag ids (ghl-api.md §3.1).
    pub tags: Vec<String>,
    /// Custom field values.
    pub custom_fields: Vec<CustomFieldValue>,
    /// Do-not-disturb on all channels.
    pub dnd: bool,
    /// `lead` or `customer`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Creation time.
    #[serde(serialize_with = "ser_time")]
    pub date_added: DateTime<Utc>,
    /// Last change of the contact itself (fields, tags; tasks and notes per the switches).
    #[serde(serialize_with = "ser_time")]
    pub date_updated: DateTime<Utc>,
}

impl Contact {
    /// A contact with an id and nothing else yet: no names, no fields, no tags, a `lead`
    /// added and updated at `at`.
    pub fn blank(id: String, location_id: String, at: DateTime<Utc>) -> Self {
        Self {
            id,
            location_id,
            first_name: None,
            last_name: None,
            email: None,
            phone: None,
            company_name: None,
            address1: None,
            city: None,
            state: None,
            postal_code: None,
            country: None,
            website: None,
            date_of_birth: None,
            source: None,
            assigned_to: None,
            timezone: None,
            tags: Vec::new(),
            custom_fields: Vec::new(),
            dnd: false,
            kind: "lead".to_owned(),
            date_added: at,
            date_updated: at,
        }
    }

    /// `firstName lastName`, as GHL fills `name`.
    pub fn full_name(&self) -> String {
        let parts: Vec<&str> = [self.first_name.as_deref(), self.last_name.as_deref()]
            .into_iter()
            .flatten()
            .filter(|p| !p.is_empty())
            .collect();
        parts.join(" ")
    }

    /// The fields every rendering shares, plus GHL's lower-cased copies.
    fn base_json(&self) -> Map<String, Value> {
        let mut map = match serde_json::to_value(self) {
            Ok(Value::Object(map)) => map,
            // A struct of strings always serialises to an object.
            _ => Map::new(),
        };
        if let Some(first) = &self.first_name {
            map.insert("firstNameLowerCase".into(), first.to_lowercase().into());
        }
        if let Some(last) = &self.last_name {
            map.insert("lastNameLowerCase".into(), last.to_lowercase().into());
        }
        map
    }

    /// The `GetContectByIdSchema` shape of `GET /contacts/{id}` and friends.
    pub fn to_json(&self) -> Value {
        let mut map = self.base_json();
        let name = self.full_name();
        if !name.is_empty() {
            map.insert("fullNameLowerCase".into(), name.to_lowercase().into());
            map.insert("name".into(), name.into());
        }
        if let Some(email) = &self.email {
            map.insert("emailLowerCase".into(), email.to_lowercase().into());
        }
        Value::Object(map)
    }

    /// The search-hit shape (`Contact` of the 2025-09-08 spec) with its cursor.
    pub fn to_search_hit(&self, search_after: Value) -> Value {
        let mut map = self.base_json();
        map.insert("additionalEmails".into(), json!([]));
        map.insert("additionalPhones".into(), json!([]));
        map.insert("followers".into(), json!([]));
        map.insert("searchAfter".into(), search_after);
        Value::Object(map)
    }

    /// The payload fields of ContactCreate/Update/Delete/TagUpdate webhooks (ghl-api.md §8.3).
    pub fn to_webhook_fields(&self) -> Map<String, Value> {
        let mut map = Map::new();
        map.insert("id".into(), self.id.clone().into());
        let optional = [
            ("firstName", &self.first_name),
            ("lastName", &self.last_name),
            ("email", &self.email),
            ("phone", &self.phone),
            ("companyName", &self.company_name),
            ("address1", &self.address1),
            ("city", &self.city),
            ("state", &self.state),
            ("postalCode", &self.postal_code),
            ("country", &self.country),
            ("website", &self.website),
            ("dateOfBirth", &self.date_of_birth),
            ("source", &self.source),
            ("assignedTo", &self.assigned_to),
        ];
        for (key, value) in optional {
            if let Some(value) = value {
                map.insert(key.into(), value.clone().into());
            }
        }
        let name = self.full_name();
        if !name.is_empty() {
            map.insert("name".into(), name.into());
        }
        map.insert("dateAdded".into(), ghl_time(self.date_added).into());
        map.insert("dnd".into(), self.dnd.into());
        map.insert("tags".into(), json!(self.tags));
        map.insert("attachments".into(), json!([]));
        map.insert(
            "customFields".into(),
            serde_json::to_value(&self.custom_fields).unwrap_or_else(|_| json!([])),
        );
        map
    }
}

/// A task on a contact (`TaskSchema`: no dates besides `dueDate`, ghl-api.md §4.1).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Task {
    /// 20-character id.
    pub id: String,
    /// The contact it hangs off.
    pub contact_id: String,
    pub title: String,
    /// Description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// User id of the assignee.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub assigned_to: Option<String>,
    /// Due time.
    #[serde(serialize_with = "ser_time")]
    pub due_date: DateTime<Utc>,
    /// Done or not.
    pub completed: bool,
    /// Creation time: only webhooks show it.
    #[serde(serialize_with = "ser_time")]
    pub date_added: DateTime<Utc>,
    /// Creation order, for the location-wide task search.
    #[serde(skip)]
    pub seq: u64,
}

impl Task {
    /// The REST shape (`TaskSchema`), without the webhook-only `dateAdded`.
    pub fn to_json(&self) -> Value {
        let mut value = json!({
            "id": self.id,
            "title": self.title,
            "dueDate": ghl_time(self.due_date),
            "completed": self.completed,
            "contactId": self.contact_id,
        });
        if let Some(body) = &self.body {
            value["body"] = body.clone().into();
        }
        if let Some(assigned_to) = &self.assigned_to {
            value["assignedTo"] = assigned_to.clone().into();
        }
        value
    }

    /// The payload fields of TaskCreate/TaskComplete/TaskDelete (ghl-api.md §8.3).
    pub fn to_webhook_fields(&self) -> Map<String, Value> {
        let mut map = Map::new();
        map.insert("id".into(), self.id.clone().into());
        map.insert("contactId".into(), self.contact_id.clone().into());
        map.insert("title".into(), self.title.clone().into());
        if let Some(body) = &self.body {
            map.insert("body".into(), body.clone().into());
        }
        if let Some(assigned_to) = &self.assigned_to {
            map.insert("assignedTo".into(), assigned_to.clone().into());
        }
        map.insert("dateAdded".into(), ghl_time(self.date_added).into());
        map.insert("dueDate".into(), ghl_time(self.due_date).into());
        map
    }
}

/// A note on a contact (`GetNoteSchema`: no `dateUpdated`, ghl-api.md §5).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Note {
    /// 20-character id.
    pub id: String,
    /// The contact it hangs off.
    pub contact_id: String,
    /// Text (may hold HTML).
    pub body: String,
    /// Author.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// Optional title.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Hex colour.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub color: Option<String>,
    /// Pinned to the top.
    pub pinned: bool,
    /// Creation time.
    #[serde(serialize_with = "ser_time")]
    pub date_added: DateTime<Utc>,
}

impl Note {
    /// The REST shape (`GetNoteSchema`).
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or_else(|_| json!({ "id": self.id }))
    }

    /// NoteCreate/NoteUpdate/NoteDelete payload: a fixed allow-list without `userId` and
    /// `title` (ghl-api.md §5, §8.3 \[obs #312\]).
    pub fn to_webhook_fields(&self) -> Map<String, Value> {
        let mut map = Map::new();
        map.insert("id".into(), self.id.clone().into());
        map.insert("body".into(), self.body.clone().into());
        map.insert("contactId".into(), self.contact_id.clone().into());
        map.insert("dateAdded".into(), ghl_time(self.date_added).into());
        map
    }
}

/// A user of the location.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    /// 20-character id.
    pub id: String,
    /// Given name.
    pub first_name: String,
    /// Family name.
    pub last_name: String,
    /// Login e-mail; the sync matches users across systems by it.
    pub email: String,
    /// `admin` or `user`.
    pub role: String,
}

impl User {
    /// The minimal Users-API shape: id, names, email, and the `roles` block.
    pub fn to_json(&self, location_id: &str) -> Value {
        json!({
            "id": self.id,
            "name": format!("{} {}", self.first_name, self.last_name),
            "firstName": self.first_name,
            "lastName": self.last_name,
            "email": self.email,
            "roles": { "type": "account", "role": self.role, "locationIds": [location_id] },
        })
    }
}

/// Renames `value` to `fieldValue` in each `customFields` item of a rendered contact, the
/// read shape some GHL endpoints were reported to use (switch
/// `custom_field_reads_say_field_value`, ghl-api.md §7).
pub fn say_field_value(contact: &mut Map<String, Value>) {
    if let Some(Value::Array(items)) = contact.get_mut("customFields") {
        for item in items.iter_mut().filter_map(Value::as_object_mut) {
            if let Some(value) = item.remove("value") {
                item.insert("fieldValue".into(), value);
            }
        }
    }
}

/// An appointment (calendar event) booked for a contact (`GetEventSchema`, ghl-api.md §6).
/// Times are kept as instants; how they render depends on the location's zone and the
/// `appointment_times_naive` switch.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Appointment {
    /// 20-character id.
    pub id: String,
    /// The calendar it is booked in.
    pub calendar_id: String,
    /// The contact it is booked for.
    pub contact_id: String,
    /// What the appointment is about.
    pub title: String,
    /// `booked`, `confirmed`, `cancelled`, `showed`, `noshow` or `invalid`.
    pub appointment_status: String,
    /// User id of the host, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub assigned_user_id: Option<String>,
    /// Start.
    #[serde(serialize_with = "ser_time")]
    pub start_time: DateTime<Utc>,
    /// End.
    #[serde(serialize_with = "ser_time")]
    pub end_time: DateTime<Utc>,
    /// Booked at.
    #[serde(serialize_with = "ser_time")]
    pub date_added: DateTime<Utc>,
}

impl Appointment {
    /// The `GetEventSchema` shape. With `naive`, times are wall-clock times in `zone` written
    /// as the spec's examples write them (`2021-07-16 11:00:00`); otherwise RFC 3339 in UTC.
    pub fn to_json(&self, location_id: &str, zone: Tz, naive: bool) -> Value {
        let time = |at: DateTime<Utc>| -> String {
            if naive {
                at.with_timezone(&zone)
                    .format("%Y-%m-%d %H:%M:%S")
                    .to_string()
            } else {
                ghl_time(at)
            }
        };
        let mut event = json!({
            "id": self.id,
            "calendarId": self.calendar_id,
            "status": self.appointment_status,
            "title": self.title,
            "startTime": time(self.start_time),
            "endTime": time(self.end_time),
            "locationId": location_id,
            "contactId": self.contact_id,
            "appointmentStatus": self.appointment_status,
            "users": [],
            "dateAdded": time(self.date_added),
            "dateUpdated": time(self.date_added),
            "assignedResources": [],
        });
        if let (Some(user), Value::Object(map)) = (&self.assigned_user_id, &mut event) {
            map.insert("assignedUserId".into(), user.clone().into());
        }
        event
    }
}

/// A custom field definition of the location (`CustomFieldSchema` in locations.json).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CustomFieldDef {
    /// 20-character id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// `contact.<key>`.
    pub field_key: String,
    /// `TEXT`, `LARGE_TEXT`, `SINGLE_OPTIONS`, `MULTIPLE_OPTIONS`, `CHECKBOX`, `DATE`,
    /// `NUMERICAL`, … (ghl-api.md §7).
    pub data_type: String,
    /// Order in the UI.
    pub position: u32,
    /// `contact` or `opportunity`.
    pub model: String,
    /// The choices of an option or checkbox field, in order; empty for other types.
    pub picklist_options: Vec<String>,
}

impl CustomFieldDef {
    /// A value written to this field (`field_value`), as the field keeps and reads it back.
    /// Checkbox and multi-option fields hold arrays of strings (a lone string becomes a
    /// one-item array); numeric ones numbers (a numeric string is read as its number);
    /// everything else text. A `DATE` keeps the text that was written: how GHL normalises
    /// a date on read is not pinned down by the spec or ghl-api.md §7, so the fake does not
    /// invent a format.
    pub fn stored(&self, written: &Value) -> Value {
        let text = |v: &Value| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        match self.data_type.as_str() {
            "CHECKBOX" | "MULTIPLE_OPTIONS" => match written {
                Value::Array(items) => {
                    Value::Array(items.iter().map(|item| Value::String(text(item))).collect())
                }
                Value::Null => Value::Array(Vec::new()),
                other => Value::Array(vec![Value::String(text(other))]),
            },
            "NUMERICAL" | "MONETORY" | "MONETARY" => match written {
                Value::Number(_) => written.clone(),
                Value::String(s) => s
                    .trim()
                    .parse::<serde_json::Number>()
                    .map(Value::Number)
                    .unwrap_or_else(|_| written.clone()),
                other => Value::String(text(other)),
            },
            _ => Value::String(text(written)),
        }
    }

    /// The `CustomFieldSchema` shape.
    pub fn to_json(&self, location_id: &str) -> Value {
        json!({
            "id": self.id,
            "name": self.name,
            "fieldKey": self.field_key,
            "placeholder": self.name,
            "dataType": self.data_type,
            "position": self.position,
            "picklistOptions": self.picklist_options,
            "picklistImageOptions": [],
            "isAllowedCustomOption": false,
            "isMultiFileAllowed": false,
            "maxFileLimit": 0,
            "locationId": location_id,
            "model": self.model,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contact() -> Contact {
        let at = DateTime::parse_from_rfc3339("2025-07-02T05:18:26.704Z")
            .unwrap()
            .with_timezone(&Utc);
        Contact {
            first_name: Some("Ada".into()),
            last_name: Some("Example".into()),
            email: Some("Ada@Example.com".into()),
            tags: vec!["vip".into()],
            ..Contact::blank(
                "seD4PfOuKoVMLkEZqohJ".into(),
                "ve9EPM428h8vShlRW1KT".into(),
                at,
            )
        }
    }

    #[test]
    fn contact_renders_with_ghl_timestamps_and_no_nulls() {
        let value = contact().to_json();
        assert_eq!(value["dateAdded"], "2025-07-02T05:18:26.704Z");
        assert_eq!(value["name"], "Ada Example");
        assert_eq!(value["emailLowerCase"], "ada@example.com");
        assert!(value.get("phone").is_none());
        assert!(value.as_object().unwrap().values().all(|v| !v.is_null()));
    }
}

//! The GHL fake's memory: contacts and their search index, users, custom fields, and the
//! webhook events each change raises. Tasks and notes live here too; their operations are in
//! [`super::activity`].
//!
//! The search index is a per-contact history of versions, so `POST /contacts/search` can show
//! the index as it stood `index_lag` ago (ghl-api.md §3.2: "search index lags writes by a
//! few seconds"), while `GET /contacts/{id}` reads the live record.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Map, Value, json};

use super::error::GhlError;
use super::model::{
    Appointment, Contact, CustomFieldDef, CustomFieldValue, Note, Task, User, say_field_value,
};
use super::options::GhlSwitches;

pub(super) const ID_ALPHABET: &[u8] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// A change that GHL would announce to webhook subscribers.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// The event `type` (`TaskComplete`, `NoteCreate`, …).
    pub kind: &'static str,
    /// The event's fields besides `type`, `locationId`, `timestamp` and `webhookId`.
    pub fields: Map<String, Value>,
}

/// One contact as the search index saw it at a moment: the record, or `None` once deleted.
type IndexVersion = (DateTime<Utc>, Option<Contact>);

/// Everything the fake holds, behind one std mutex in [`super::GhlFakeState`].
#[derive(Debug)]
pub struct GhlState {
    pub(super) location_id: String,
    pub(super) contacts: BTreeMap<String, Contact>,
    pub(super) tasks: BTreeMap<String, Task>,
    pub(super) notes: BTreeMap<String, Note>,
    pub(super) users: Vec<User>,
    pub(super) custom_fields: Vec<CustomFieldDef>,
    /// Appointments by contact id, in booking order.
    pub(super) appointments: BTreeMap<String, Vec<Appointment>>,
    /// The location's zone (`location_timezone`): naive appointment times are wall-clock
    /// times in it.
    pub(super) zone: chrono_tz::Tz,
    /// Versions of each contact as the search index saw them: `(indexed at, record or gone)`.
    index: BTreeMap<String, Vec<IndexVersion>>,
    index_lag: chrono::Duration,
    pub(super) switches: GhlSwitches,
    rng: StdRng,
    pub(super) next_seq: u64,
    pending: Vec<Event>,
}

/// Contact fields a create, upsert or update may carry (`CreateContactDto` and friends).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContactInput {
    /// Given name.
    pub first_name: Option<String>,
    /// Family name.
    pub last_name: Option<String>,
    /// Full name, split into first/last when those are absent.
    pub name: Option<String>,
    /// E-mail.
    pub email: Option<String>,
    pub phone: Option<String>,
    pub company_name: Option<String>,
    /// Street address.
    pub address1: Option<String>,
    pub city: Option<String>,
    /// State or province.
    pub state: Option<String>,
    pub postal_code: Option<String>,
    /// ISO country code.
    pub country: Option<String>,
    pub website: Option<String>,
    /// Birth date, as written.
    pub date_of_birth: Option<String>,
    pub source: Option<String>,
    /// Owner user id.
    pub assigned_to: Option<String>,
    /// IANA zone.
    pub timezone: Option<String>,
    /// Tags; on update they replace the whole list (ghl-api.md §3.1 \[spec S1\]).
    pub tags: Option<Vec<String>>,
    /// Custom field writes: `(id or key, value as sent)`; the field's type decides how the
    /// value is kept ([`CustomFieldDef::stored`]).
    pub custom_fields: Option<Vec<(String, Value)>>,
    /// Do-not-disturb.
    pub dnd: Option<bool>,
}

impl ContactInput {
    /// Reads a request body, answering 422 with GHL-style messages for wrong types.
    pub fn from_json(body: &Value) -> Result<Self, GhlError> {
        let mut messages = Vec::new();
        let mut text = |key: &str| -> Option<String> {
            match body.get(key) {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) => Some(s.clone()),
                Some(_) => {
                    messages.push(format!("{key} must be a string"));
                    None
                }
            }
        };
        let mut input = ContactInput {
            first_name: text("firstName"),
            last_name: text("lastName"),
            name: text("name"),
            email: text("email"),
            phone: text("phone"),
            company_name: text("companyName"),
            address1: text("address1"),
            city: text("city"),
            state: text("state"),
            postal_code: text("postalCode"),
            country: text("country"),
            website: text("website"),
            source: text("source"),
            assigned_to: text("assignedTo"),
            timezone: text("timezone"),
            ..ContactInput::default()
        };
        // `dateOfBirth` is typed `object` in the spec, with string examples: text only here.
        match body.get("dateOfBirth") {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) => input.date_of_birth = Some(s.clone()),
            Some(_) => messages.push("dateOfBirth must be a valid date string".to_owned()),
        }
        if let Some(email) = &input.email
            && !email.contains('@')
        {
            messages.push("email must be an email".to_owned());
        }
        match body.get("tags") {
            None | Some(Value::Null) => {}
            Some(Value::Array(items)) if items.iter().all(Value::is_string) => {
                input.tags = Some(
                    items
                        .iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect(),
                );
            }
            Some(_) => messages.push("each value in tags must be a string".to_owned()),
        }
        match body.get("dnd") {
            None | Some(Value::Null) => {}
            Some(Value::Bool(b)) => input.dnd = Some(*b),
            Some(_) => messages.push("dnd must be a boolean value".to_owned()),
        }
        match body.get("customFields") {
            None | Some(Value::Null) => {}
            Some(Value::Array(items)) => {
                let mut writes = Vec::new();
                for item in items {
                    let target = item
                        .get("id")
                        .or_else(|| item.get("key"))
                        .and_then(Value::as_str);
                    let value = item.get("field_value").or_else(|| item.get("value"));
                    match (target, value) {
                        (Some(target), Some(value)) => {
                            writes.push((target.to_owned(), value.clone()));
                        }
                        _ => messages.push(
                            "customFields items need an id or key and a field_value".to_owned(),
                        ),
                    }
                }
                input.custom_fields = Some(writes);
            }
            Some(_) => messages.push("customFields must be an array".to_owned()),
        }
        if messages.is_empty() {
            Ok(input)
        } else {
            Err(GhlError::unprocessable(messages))
        }
    }
}

impl GhlState {
    /// An empty location; [`super::seed`] fills it.
    pub fn new(
        location_id: String,
        switches: GhlSwitches,
        index_lag: std::time::Duration,
        seed: u64,
    ) -> Self {
        Self {
            location_id,
            contacts: BTreeMap::new(),
            tasks: BTreeMap::new(),
            notes: BTreeMap::new(),
            users: Vec::new(),
            custom_fields: Vec::new(),
            appointments: BTreeMap::new(),
            zone: chrono_tz::Tz::UTC,
            index: BTreeMap::new(),
            index_lag: chrono::Duration::from_std(index_lag)
                .unwrap_or_else(|_| chrono::Duration::seconds(5)),
            switches,
            rng: StdRng::seed_from_u64(seed),
            next_seq: 0,
            pending: Vec::new(),
        }
    }

    /// A fresh 20-character id, deterministic from the seed.
    pub fn new_id(&mut self) -> String {
        (0..20)
            .map(|_| char::from(ID_ALPHABET[self.rng.gen_range(0..ID_ALPHABET.len())]))
            .collect()
    }

    /// The seeded random source, for the seeder.
    pub(super) fn rng(&mut self) -> &mut StdRng {
        &mut self.rng
    }

    /// Events raised since the last call, oldest first.
    pub fn take_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.pending)
    }

    pub(super) fn raise(&mut self, kind: &'static str, mut fields: Map<String, Value>) {
        if kind.starts_with("Contact") && self.switches.custom_field_reads_say_field_value {
            say_field_value(&mut fields);
        }
        self.pending.push(Event { kind, fields });
    }

    /// The live contact, or 404 `Contact not found`.
    pub fn contact(&self, id: &str) -> Result<&Contact, GhlError> {
        self.contacts
            .get(id)
            .ok_or_else(|| GhlError::not_found("Contact"))
    }

    /// The contact's appointments as `GET /contacts/{id}/appointments` lists them; 404 for an
    /// unknown contact.
    pub fn appointments_of(&self, contact_id: &str) -> Result<Vec<Value>, GhlError> {
        self.contact(contact_id)?;
        let naive = self.switches.appointment_times_naive;
        Ok(self
            .appointments
            .get(contact_id)
            .into_iter()
            .flatten()
            .map(|a| a.to_json(&self.location_id, self.zone, naive))
            .collect())
    }

    /// Books an appointment for a contact (no webhook: the fake models no calendar events).
    /// Returns it as the list shows it.
    pub fn book_appointment(&mut self, appointment: Appointment) -> Result<Value, GhlError> {
        self.contact(&appointment.contact_id)?;
        let event = appointment.to_json(
            &self.location_id,
            self.zone,
            self.switches.appointment_times_naive,
        );
        self.appointments
            .entry(appointment.contact_id.clone())
            .or_default()
            .push(appointment);
        Ok(event)
    }

    /// Records a new version of `id` in the search index (or its removal).
    pub(super) fn reindex(&mut self, id: &str, now: DateTime<Utc>) {
        let version = self.contacts.get(id).cloned();
        let cutoff = now - self.index_lag;
        let versions = self.index.entry(id.to_owned()).or_default();
        versions.push((now, version));
        // Keep the newest version the lagged view can see, and everything after it.
        if let Some(visible) = versions.iter().rposition(|(at, _)| *at <= cutoff) {
            versions.drain(..visible);
        }
    }

    /// Moves a contact's `dateUpdated` to `now` (and so its search position).
    pub(super) fn touch(&mut self, id: &str, now: DateTime<Utc>) {
        if let Some(contact) = self.contacts.get_mut(id) {
            contact.date_updated = now;
            self.reindex(id, now);
        }
    }

    /// The contacts the search index shows at `now`: each as it was `index_lag` ago.
    pub fn search_view(&self, now: DateTime<Utc>) -> Vec<&Contact> {
        let cutoff = now - self.index_lag;
        self.index
            .values()
            .filter_map(|versions| {
                versions
                    .iter()
                    .rev()
                    .find(|(at, _)| *at <= cutoff)
                    .and_then(|(_, c)| c.as_ref())
            })
            .collect()
    }

    /// A contact with the same e-mail (first) or phone, as duplicate lookup and upsert match.
    pub fn find_duplicate(&self, email: Option<&str>, phone: Option<&str>) -> Option<&Contact> {
        let by_email = email.and_then(|email| {
            let email = email.to_lowercase();
            self.contacts
                .values()
                .find(|c| c.email.as_deref().map(str::to_lowercase) == Some(email.clone()))
        });
        by_email.or_else(|| {
            phone.and_then(|phone| {
                self.contacts
                    .values()
                    .find(|c| c.phone.as_deref() == Some(phone))
            })
        })
    }

    /// `POST /contacts/`: refuses a duplicate unless the location allows them.
    pub fn create_contact(
        &mut self,
        now: DateTime<Utc>,
        input: &ContactInput,
    ) -> Result<Contact, GhlError> {
        if !self.switches.allow_duplicate_contacts
            && let Some(existing) =
                self.find_duplicate(input.email.as_deref(), input.phone.as_deref())
        {
            let matching = if input.email.is_some() && existing.email.is_some() {
                "email"
            } else {
                "phone"
            };
            return Err(
                GhlError::bad_request("This location does not allow duplicated contacts.")
                    .with_extra(
                        "meta",
                        json!({ "contactId": existing.id, "matchingField": matching }),
                    ),
            );
        }
        Ok(self.insert_contact(now, input))
    }

    fn insert_contact(&mut self, now: DateTime<Utc>, input: &ContactInput) -> Contact {
        let id = self.new_id();
        let mut contact = Contact::blank(id.clone(), self.location_id.clone(), now);
        self.apply(&mut contact, input);
        self.contacts.insert(id.clone(), contact.clone());
        self.reindex(&id, now);
        self.raise("ContactCreate", contact.to_webhook_fields());
        contact
    }

    /// `POST /contacts/upsert`: updates the duplicate if there is one, else creates.
    pub fn upsert_contact(
        &mut self,
        now: DateTime<Utc>,
        input: &ContactInput,
        allow_new_duplicate: bool,
    ) -> Result<(bool, Contact), GhlError> {
        let existing = self
            .find_duplicate(input.email.as_deref(), input.phone.as_deref())
            .map(|c| c.id.clone());
        match existing {
            Some(id) if !(allow_new_duplicate && self.switches.allow_duplicate_contacts) => {
                Ok((false, self.update_contact(now, &id, input)?))
            }
            _ => Ok((true, self.insert_contact(now, input))),
        }
    }

    /// `PUT /contacts/{id}`: sets the given fields; `tags` replaces the list.
    pub fn update_contact(
        &mut self,
        now: DateTime<Utc>,
        id: &str,
        input: &ContactInput,
    ) -> Result<Contact, GhlError> {
        let mut contact = self.contact(id)?.clone();
        let before = contact.clone();
        self.apply(&mut contact, input);
        let tags_changed = contact.tags != before.tags;
        let fields_changed = Contact {
            tags: before.tags.clone(),
            ..contact.clone()
        } != before;
        if tags_changed || fields_changed {
            contact.date_updated = now;
        }
        self.contacts.insert(id.to_owned(), contact.clone());
        if tags_changed || fields_changed {
            self.reindex(id, now);
        }
        if fields_changed {
            self.raise("ContactUpdate", contact.to_webhook_fields());
        }
        if tags_changed {
            self.raise("ContactTagUpdate", contact.to_webhook_fields());
        }
        Ok(contact)
    }

    /// `DELETE /contacts/{id}`: the contact goes, with its tasks and notes.
    pub fn delete_contact(&mut self, now: DateTime<Utc>, id: &str) -> Result<(), GhlError> {
        let contact = self
            .contacts
            .remove(id)
            .ok_or_else(|| GhlError::not_found("Contact"))?;
        self.tasks.retain(|_, t| t.contact_id != id);
        self.notes.retain(|_, n| n.contact_id != id);
        self.reindex(id, now);
        self.raise("ContactDelete", contact.to_webhook_fields());
        Ok(())
    }

    /// Adds tags; returns `(tags actually added, all tags now)`.
    pub fn add_tags(
        &mut self,
        now: DateTime<Utc>,
        id: &str,
        tags: &[String],
    ) -> Result<(Vec<String>, Vec<String>), GhlError> {
        let mut contact = self.contact(id)?.clone();
        let mut added = Vec::new();
        for tag in tags {
            let tag = tag.trim();
            if !tag.is_empty() && !contact.tags.iter().any(|t| t == tag) {
                contact.tags.push(tag.to_owned());
                added.push(tag.to_owned());
            }
        }
        self.finish_tag_change(now, contact, added)
    }

    /// Removes tags; returns `(tags actually removed, all tags now)`.
    pub fn remove_tags(
        &mut self,
        now: DateTime<Utc>,
        id: &str,
        tags: &[String],
    ) -> Result<(Vec<String>, Vec<String>), GhlError> {
        let mut contact = self.contact(id)?.clone();
        let mut removed = Vec::new();
        contact.tags.retain(|t| {
            let gone = tags.iter().any(|x| x.trim() == t);
            if gone {
                removed.push(t.clone());
            }
            !gone
        });
        self.finish_tag_change(now, contact, removed)
    }

    fn finish_tag_change(
        &mut self,
        now: DateTime<Utc>,
        mut contact: Contact,
        changed: Vec<String>,
    ) -> Result<(Vec<String>, Vec<String>), GhlError> {
        let all = contact.tags.clone();
        if !changed.is_empty() {
            contact.date_updated = now;
            let id = contact.id.clone();
            self.raise("ContactTagUpdate", contact.to_webhook_fields());
            self.contacts.insert(id.clone(), contact);
            self.reindex(&id, now);
        }
        Ok((changed, all))
    }

    fn apply(&self, contact: &mut Contact, input: &ContactInput) {
        let set = |slot: &mut Option<String>, value: &Option<String>| {
            if let Some(v) = value {
                *slot = Some(v.clone());
            }
        };
        if let Some(name) = &input.name
            && input.first_name.is_none()
            && input.last_name.is_none()
        {
            let mut parts = name.splitn(2, ' ');
            contact.first_name = parts.next().map(str::to_owned);
            contact.last_name = parts.next().map(str::to_owned);
        }
        set(&mut contact.first_name, &input.first_name);
        set(&mut contact.last_name, &input.last_name);
        set(&mut contact.email, &input.email);
        set(&mut contact.phone, &input.phone);
        set(&mut contact.company_name, &input.company_name);
        set(&mut contact.address1, &input.address1);
        set(&mut contact.city, &input.city);
        set(&mut contact.state, &input.state);
        set(&mut contact.postal_code, &input.postal_code);
        set(&mut contact.country, &input.country);
        set(&mut contact.website, &input.website);
        set(&mut contact.date_of_birth, &input.date_of_birth);
        set(&mut contact.source, &input.source);
        set(&mut contact.assigned_to, &input.assigned_to);
        set(&mut contact.timezone, &input.timezone);
        if let Some(tags) = &input.tags {
            let mut unique: Vec<String> = Vec::new();
            for tag in tags.iter().map(|t| t.trim()).filter(|t| !t.is_empty()) {
                if !unique.iter().any(|u| u == tag) {
                    unique.push(tag.to_owned());
                }
            }
            contact.tags = unique;
        }
        if let Some(dnd) = input.dnd {
            contact.dnd = dnd;
        }
        for (target, value) in input.custom_fields.iter().flatten() {
            // Whether a bare key (no `contact.` prefix) names a field is a switch
            // (ghl-api.md §7 leaves the format open); an unmatched target is ignored silently.
            let bare_accepted = !self.switches.custom_field_key_needs_prefix;
            let Some(def) = self.custom_fields.iter().find(|d| {
                d.id == *target
                    || d.field_key == *target
                    || (bare_accepted && d.field_key == format!("contact.{target}"))
            }) else {
                continue;
            };
            contact.custom_fields.retain(|v| v.id != def.id);
            contact.custom_fields.push(CustomFieldValue {
                id: def.id.clone(),
                value: def.stored(value),
            });
        }
    }

    /// The whole state as JSON, deterministic for a given seed and clock; no secrets.
    pub fn snapshot(&self) -> Value {
        let mut tasks: Vec<&Task> = self.tasks.values().collect();
        tasks.sort_by_key(|t| t.seq);
        json!({
            "locationId": self.location_id,
            "contacts": self.contacts.values().collect::<Vec<_>>(),
            "tasks": tasks,
            "notes": self.notes.values().collect::<Vec<_>>(),
            "users": self.users,
            "customFields": self.custom_fields,
            "appointments": self.appointments,
            "switches": self.switches,
        })
    }
}

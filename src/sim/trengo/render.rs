//! JSON shapes of the Trengo fake's answers, as `trengo-api.md` §4.2, §4.5, §5–§8, §10 and §13
//! record them.
//!
//! Three timestamp styles coexist, as in reality (§4.3 \[OBS\]): resources render naive
//! `YYYY-MM-DD HH:MM:SS` in the account zone, nested contacts use ISO with `+00:00`, and the
//! raw model of a created ticket uses `…000000Z`.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use secrecy::ExposeSecret;
use serde_json::{Value, json};

use super::model::{
    Channel, Contact, CustomField, Label, Message, MessageType, Profile, Team, Ticket, TrengoState,
    User, Webhook,
};

/// Renders records of one world in one zone.
#[derive(Debug, Clone, Copy)]
pub struct Renderer<'a> {
    /// The world the records refer into (contacts, labels, users...).
    pub state: &'a TrengoState,
    /// Zone of naive timestamps.
    pub zone: Tz,
}

/// A naive `YYYY-MM-DD HH:MM:SS` in `zone`.
pub fn naive(at: DateTime<Utc>, zone: Tz) -> String {
    at.with_timezone(&zone)
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

/// Laravel's raw model serialisation: `2024-01-02T10:24:40.000000Z`.
pub fn iso_micro(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S.000000Z").to_string()
}

/// ISO with an explicit offset, as nested contacts carry it.
pub fn iso_offset(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S+00:00").to_string()
}

impl Renderer<'_> {
    fn naive(&self, at: DateTime<Utc>) -> String {
        naive(at, self.zone)
    }

    fn naive_opt(&self, at: Option<DateTime<Utc>>) -> Value {
        at.map_or(Value::Null, |t| Value::String(self.naive(t)))
    }

    /// A ticket as list items and `GET /tickets/{id}` show it (§13).
    pub fn ticket(&self, ticket: &Ticket) -> Value {
        let messages = self.state.ticket_messages(ticket.id);
        let latest = messages.first().copied();
        let latest_received = messages
            .iter()
            .copied()
            .find(|m| m.kind == MessageType::Inbound);
        json!({
            "id": ticket.id,
            "status": ticket.status.as_str(),
            "subject": ticket.subject,
            "closed_at": self.naive_opt(ticket.closed_at),
            "created_at": self.naive(ticket.created_at),
            "updated_at": self.naive(ticket.updated_at),
            "user_id": ticket.user_id,
            "team_id": ticket.team_id,
            "assigned_at": self.naive_opt(ticket.assigned_at),
            "contact_id": ticket.contact_id,
            "contact": self.state.contacts.get(&ticket.contact_id).map(|c| self.nested_contact(c)),
            "channel": self.state.channels.get(&ticket.channel_id).map(|c| self.channel(c)),
            "channelMeta": null,
            "latest_message_at": self.naive_opt(ticket.latest_message_at),
            "latest_received_message_at": self.naive_opt(latest_received.map(|m| m.created_at)),
            "latest_message": latest.map(|m| self.message_summary(m)),
            "latest_received_message": latest_received.map(|m| self.message_summary(m)),
            "labels": ticket.label_ids.iter()
                .filter_map(|id| self.state.labels.get(id))
                .map(|l| self.label(l))
                .collect::<Vec<_>>(),
            "custom_data": null,
            "messages_count": messages.len(),
            "custom_field_values": self.field_values(&ticket.custom_field_values),
            "ai_agent_id": null,
            "ai_assigned_at": null,
            "ai_escalated_at": null,
            "ai_resolved_at": null,
        })
    }

    /// The raw model `POST /tickets` answers with (§4.2): `agency_id`, `channel_id`, ISO
    /// `…000000Z` times, `latest_message` as a timestamp string, `agent` and `team`.
    pub fn ticket_raw(&self, ticket: &Ticket) -> Value {
        let iso_opt = |t: Option<DateTime<Utc>>| t.map(iso_micro);
        let channel = self.state.channels.get(&ticket.channel_id).map(|c| {
            let mut value = self.channel(c);
            value["agency"] = json!({"id": self.state.agency_id, "name": "Sim Agency"});
            value
        });
        json!({
            "id": ticket.id,
            "agency_id": self.state.agency_id,
            "contact_id": ticket.contact_id,
            "channel_id": ticket.channel_id,
            "user_id": ticket.user_id,
            "team_id": ticket.team_id,
            "assigned_by": ticket.assigned_by,
            "status": ticket.status.as_str(),
            "subject": ticket.subject,
            "closed_at": iso_opt(ticket.closed_at),
            "assigned_at": iso_opt(ticket.assigned_at),
            "created_at": iso_micro(ticket.created_at),
            "updated_at": iso_micro(ticket.updated_at),
            "latest_message": iso_micro(ticket.latest_message_at.unwrap_or(ticket.created_at)),
            "channel": channel,
            "agent": ticket.user_id.and_then(|id| self.state.users.get(&id)).map(|u| self.user(u)),
            "team": ticket.team_id.and_then(|id| self.state.teams.get(&id)).map(|t| self.team(t)),
        })
    }

    fn message_summary(&self, message: &Message) -> Value {
        // The list truncates the text to about 100 characters (§4.2).
        let text: String = message.text.chars().take(100).collect();
        json!({
            "id": message.id,
            "type": message.kind.as_str(),
            "message": text,
            "created_at": self.naive(message.created_at),
            "attachments": [],
        })
    }

    /// A message as `GET /tickets/{id}/messages` lists it (§13).
    pub fn message(&self, message: &Message) -> Value {
        let contact = self
            .state
            .tickets
            .get(&message.ticket_id)
            .and_then(|t| self.state.contacts.get(&t.contact_id));
        json!({
            "id": message.id,
            "ticket_id": message.ticket_id,
            "type": message.kind.as_str(),
            "body_type": "TEXT",
            "message": message.text,
            "file_name": null,
            "file_url": null,
            "file_caption": null,
            "location_data": null,
            "created_at": self.naive(message.created_at),
            "updated_at": self.naive(message.created_at),
            "user_id": message.user_id,
            "contact": contact.map(|c| self.nested_contact(c)),
            "agent": message.user_id.and_then(|id| self.state.users.get(&id)).map(|u| self.user(u)),
            "attachments": [],
            "mentions": [],
            "contacts": [],
            "meta": null,
            "parent": null,
            "reactionSums": [],
            "is_auto_reply": null,
            "delivery": null,
        })
    }

    /// The answer of `POST /tickets/{id}/messages`: the message plus `contact_id`,
    /// `created_at_time` and the embedded ticket, wrapped in `{"message": …}` by the caller.
    pub fn created_message(&self, message: &Message) -> Value {
        let mut value = self.message(message);
        let ticket = self.state.tickets.get(&message.ticket_id);
        value["contact_id"] = json!(ticket.map(|t| t.contact_id));
        value["created_at_time"] = json!(message.created_at.timestamp());
        value["ticket"] = ticket.map_or(Value::Null, |t| self.ticket(t));
        value
    }

    /// A label (§5).
    pub fn label(&self, label: &Label) -> Value {
        json!({
            "id": label.id,
            "name": label.name,
            "slug": label.slug,
            "color": label.color,
            "sort_order": label.sort_order,
            "archived": null,
        })
    }

    fn field_values(&self, values: &std::collections::BTreeMap<i64, String>) -> Value {
        values
            .iter()
            .map(|(id, value)| {
                json!({
                    "custom_field_id": id,
                    "field_name": self.state.custom_fields.get(id).map(|f| f.title.clone()),
                    "value": value,
                })
            })
            .collect()
    }

    /// `{title: value}` of these values, rendered as PHP does: `custom_field_data` is
    /// `null` when empty, `formatted_custom_field_data` `[]` (an empty map never appears).
    fn titled_values(&self, values: &std::collections::BTreeMap<i64, String>) -> (Value, Value) {
        let titled: serde_json::Map<String, Value> = values
            .iter()
            .filter_map(|(id, value)| {
                let field = self.state.custom_fields.get(id)?;
                Some((field.title.clone(), Value::String(value.clone())))
            })
            .collect();
        if titled.is_empty() {
            (Value::Null, json!([]))
        } else {
            (Value::Object(titled.clone()), Value::Object(titled))
        }
    }

    fn abbr(name: &str) -> String {
        name.split_whitespace()
            .filter_map(|w| w.chars().next())
            .take(2)
            .collect()
    }

    /// A contact's `profile` list: `[{id, name, abbr, created_at, color}]` (§6 \[OBS\]).
    fn profile_refs(&self, contact: &Contact) -> Value {
        contact
            .profile_ids
            .iter()
            .filter_map(|id| self.state.profiles.get(id))
            .map(|p| {
                json!({
                    "id": p.id,
                    "name": p.name,
                    "abbr": Self::abbr(&p.name),
                    "created_at": iso_offset(p.created_at),
                    "color": "#AC92EC",
                })
            })
            .collect()
    }

    /// A profile as `GET /profiles/{id}` shows it: its fields, the same three custom field
    /// renderings as a contact, and its contacts in short.
    pub fn profile(&self, profile: &Profile) -> Value {
        let (data, formatted) = self.titled_values(&profile.custom_field_values);
        let contacts: Vec<Value> = self
            .state
            .contacts
            .values()
            .filter(|c| c.profile_ids.contains(&profile.id))
            .map(|c| json!({"id": c.id, "name": c.name, "identifier": c.identifier}))
            .collect();
        json!({
            "id": profile.id,
            "name": profile.name,
            "abbr": Self::abbr(&profile.name),
            "color": "#AC92EC",
            "profile_image": null,
            "custom_field_data": data,
            "formatted_custom_field_data": formatted,
            "custom_field_values": self.field_values(&profile.custom_field_values),
            "contacts": contacts,
            "created_at": iso_offset(profile.created_at),
            "updated_at": iso_offset(profile.updated_at),
        })
    }

    /// A contact as it is embedded in tickets and messages (ISO `+00:00` times).
    pub fn nested_contact(&self, contact: &Contact) -> Value {
        let (data, formatted) = self.titled_values(&contact.custom_field_values);
        json!({
            "id": contact.id,
            "name": contact.name,
            "full_name": contact.name,
            "email": contact.email,
            "phone": contact.phone,
            "identifier": contact.identifier,
            "custom_field_data": data,
            "formatted_custom_field_data": formatted,
            "custom_field_values": self.field_values(&contact.custom_field_values),
            "profile": self.profile_refs(contact),
            "is_private": false,
            "created_at": iso_offset(contact.created_at),
            "updated_at": iso_offset(contact.updated_at),
        })
    }

    /// A contact as `/contacts` shows it (§6).
    pub fn contact(&self, contact: &Contact) -> Value {
        let (data, formatted) = self.titled_values(&contact.custom_field_values);
        json!({
            "id": contact.id,
            "name": contact.name,
            "full_name": contact.name,
            "display_name": contact.name,
            "email": contact.email,
            "abbr": Self::abbr(&contact.name),
            "color": "#48CFAD",
            "profile_image": null,
            "avatar": null,
            "is_phone": contact.identifier.starts_with('+'),
            "phone": contact.phone,
            "formatted_phone": contact.phone,
            "identifier": contact.identifier,
            // PHP renders an empty map as `[]` (§14): an empty object never appears.
            "custom_field_data": data,
            "formatted_custom_field_data": formatted,
            "custom_field_values": self.field_values(&contact.custom_field_values),
            "profile": self.profile_refs(contact),
            "channels": contact.channel_ids.iter()
                .filter_map(|id| self.state.channels.get(id))
                .map(|c| self.channel(c))
                .collect::<Vec<_>>(),
            "notes": [],
            "groups": [],
            "is_private": false,
            "created_at": iso_offset(contact.created_at),
            "updated_at": iso_offset(contact.updated_at),
        })
    }

    /// A user (§8).
    pub fn user(&self, user: &User) -> Value {
        let abbr = format!(
            "{}{}",
            user.first_name.chars().next().unwrap_or('?'),
            user.last_name.chars().next().unwrap_or('?')
        );
        json!({
            "id": user.id,
            "agency_id": self.state.agency_id,
            "first_name": user.first_name,
            "last_name": user.last_name,
            "name": user.full_name(),
            "full_name": user.full_name(),
            "email": user.email,
            "abbr": abbr,
            "phone": null,
            "color": "#5D9CEC",
            "locale_code": "en-GB",
            "status": "ACTIVE",
            "text": null,
            "is_online": 0,
            "user_status": "OFFLINE",
            // Same field, bool or string, as captured (§14).
            "chat_status": "1",
            "voip_status": null,
            "voip_device": null,
            "profile_image": null,
            "authorization": user.authorization,
            "role": {"id": role_id(&user.role), "name": user.role},
            "is_primary": user.authorization == "OWNER",
            "timezone": self.zone.name(),
            "created_at": iso_micro(user.created_at),
            "two_factor_authentication_enabled": false,
        })
    }

    /// A team: only `id` and `name` are evidenced (§8); members are added as ids.
    pub fn team(&self, team: &Team) -> Value {
        json!({"id": team.id, "name": team.name, "user_ids": team.user_ids})
    }

    /// A channel (§4.2).
    pub fn channel(&self, channel: &Channel) -> Value {
        json!({
            "id": channel.id,
            "name": channel.name,
            "title": channel.title,
            "type": channel.kind,
            "status": "ACTIVE",
        })
    }

    /// A custom field definition (§7).
    pub fn custom_field(&self, field: &CustomField) -> Value {
        json!({
            "id": field.id,
            "title": field.title,
            "sort_order": field.sort_order,
            "type": field.kind,
            "identifier": field.identifier,
            "field_type": field.field_type,
            "placeholder": null,
            "items": field.items,
            "channels": [],
            "is_required": false,
        })
    }

    /// A webhook, with its signing secret as the API returns it (§10.1, §13).
    pub fn webhook(&self, hook: &Webhook) -> Value {
        json!({
            "id": hook.id,
            "title": hook.name,
            "url": hook.url,
            "type": hook.event.as_str(),
            "signing_secret": hook.signing_secret.expose_secret(),
        })
    }
}

fn role_id(role: &str) -> i64 {
    match role {
        "observer" => 16,
        "basic_agent" => 17,
        "advanced_agent" => 18,
        "supervisor" => 19,
        _ => 20,
    }
}

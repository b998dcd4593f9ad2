//! The edits the Trengo fake's world supports, shared by the API and the admin surface, each
//! returning the webhook events Trengo would fire for it.
//!
//! Timestamp rules live here: closing sets `closed_at == updated_at` (trengo-api.md §3.4
//! \[OBS\]); messages move `latest_message_at` (the list's sort key) and `messages_count`; label,
//! note, message and custom-field edits bump `updated_at` only when their switch says so.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::model::{
    Event, EventType, Message, MessageType, SimError, Ticket, TicketStatus, TrengoState, id_start,
};
use super::options::TrengoSwitches;

/// Who makes an edit and when, under which switches.
#[derive(Debug, Clone, Copy)]
pub struct Edit {
    /// The instant of the edit, whole seconds (Trengo stores seconds).
    pub now: DateTime<Utc>,
    /// The user making it (the token user through the API, a human agent through admin).
    pub user_id: i64,
    /// The switches in force.
    pub switches: TrengoSwitches,
}

/// How a ticket gets assigned (`POST /tickets/{id}/assign`).
#[derive(Debug, Clone, Default)]
pub struct Assignment {
    /// Assign to this user.
    pub user_id: Option<i64>,
    /// Assign to this team.
    pub team_id: Option<i64>,
    /// Text of an internal note to add with the assignment.
    pub note: Option<String>,
}

impl TrengoState {
    /// Creates a ticket as `POST /tickets` does: it comes back ASSIGNED to the token user
    /// (trengo-api.md §4.4 \[OBS\]).
    pub fn create_ticket_via_api(
        &mut self,
        edit: &Edit,
        channel_id: i64,
        contact_id: i64,
        subject: Option<String>,
    ) -> Result<(i64, Vec<Event>), SimError> {
        self.check_ticket_parties(channel_id, contact_id)?;
        let id = self.next_id("ticket", id_start::TICKET);
        self.tickets.insert(
            id,
            Ticket {
                id,
                status: TicketStatus::Assigned,
                subject,
                contact_id,
                channel_id,
                user_id: Some(self.api_user_id),
                team_id: None,
                assigned_by: Some(self.api_user_id),
                created_at: edit.now,
                updated_at: edit.now,
                assigned_at: Some(edit.now),
                closed_at: None,
                latest_message_at: None,
                label_ids: Vec::new(),
                custom_field_values: Default::default(),
            },
        );
        let events = vec![Event::new(
            EventType::TicketCreated,
            vec![("ticket_id", Some(id.to_string()))],
        )];
        Ok((id, events))
    }

    /// Creates a ticket as a customer writing in does: OPEN, unassigned, with one INBOUND
    /// message.
    pub fn create_ticket_from_customer(
        &mut self,
        edit: &Edit,
        channel_id: i64,
        contact_id: i64,
        subject: Option<String>,
        text: &str,
    ) -> Result<(i64, Vec<Event>), SimError> {
        self.check_ticket_parties(channel_id, contact_id)?;
        let id = self.next_id("ticket", id_start::TICKET);
        self.tickets.insert(
            id,
            Ticket {
                id,
                status: TicketStatus::Open,
                subject,
                contact_id,
                channel_id,
                user_id: None,
                team_id: None,
                assigned_by: None,
                created_at: edit.now,
                updated_at: edit.now,
                assigned_at: None,
                closed_at: None,
                latest_message_at: None,
                label_ids: Vec::new(),
                custom_field_values: Default::default(),
            },
        );
        let mut events = vec![Event::new(
            EventType::TicketCreated,
            vec![("ticket_id", Some(id.to_string()))],
        )];
        let (_, more) = self.add_message(edit, id, MessageType::Inbound, text)?;
        events.extend(more);
        Ok((id, events))
    }

    fn check_ticket_parties(&self, channel_id: i64, contact_id: i64) -> Result<(), SimError> {
        if !self.channels.contains_key(&channel_id) {
            return Err(SimError::selected_invalid("channel_id"));
        }
        if !self.contacts.contains_key(&contact_id) {
            return Err(SimError::selected_invalid("contact_id"));
        }
        Ok(())
    }

    /// Assigns a ticket to a user and/or team; an optional note becomes an internal note.
    pub fn assign_ticket(
        &mut self,
        edit: &Edit,
        ticket_id: i64,
        assignment: Assignment,
    ) -> Result<Vec<Event>, SimError> {
        self.ticket(ticket_id)?;
        if assignment.user_id.is_none() && assignment.team_id.is_none() {
            return Err(SimError::required("user_id"));
        }
        if let Some(user_id) = assignment.user_id
            && !self.users.contains_key(&user_id)
        {
            return Err(SimError::selected_invalid("user_id"));
        }
        if let Some(team_id) = assignment.team_id
            && !self.teams.contains_key(&team_id)
        {
            return Err(SimError::selected_invalid("team_id"));
        }
        let ticket = self.ticket_mut(ticket_id)?;
        ticket.status = TicketStatus::Assigned;
        ticket.user_id = assignment.user_id.or(ticket.user_id);
        ticket.team_id = assignment.team_id.or(ticket.team_id);
        ticket.assigned_by = Some(edit.user_id);
        ticket.assigned_at = Some(edit.now);
        ticket.closed_at = None;
        ticket.updated_at = edit.now;
        let user = assignment.user_id.and_then(|id| self.users.get(&id));
        let team = assignment.team_id.and_then(|id| self.teams.get(&id));
        let mut events = vec![Event::new(
            EventType::TicketAssigned,
            vec![
                ("ticket_id", Some(ticket_id.to_string())),
                ("user_id", user.map(|u| u.id.to_string())),
                ("user_name", user.map(|u| u.full_name())),
                ("user_email", user.map(|u| u.email.clone())),
                ("team_id", team.map(|t| t.id.to_string())),
                ("team_name", team.map(|t| t.name.clone())),
                (
                    "assigned_to",
                    Some(if user.is_some() { "USER" } else { "TEAM" }.to_owned()),
                ),
            ],
        )];
        if let Some(note) = assignment.note.filter(|n| !n.trim().is_empty()) {
            let (_, more) = self.add_message(edit, ticket_id, MessageType::Note, &note)?;
            events.extend(more);
        }
        Ok(events)
    }

    /// Closes a ticket; closing an already closed ticket changes nothing.
    pub fn close_ticket(&mut self, edit: &Edit, ticket_id: i64) -> Result<Vec<Event>, SimError> {
        let ticket = self.ticket_mut(ticket_id)?;
        if ticket.status == TicketStatus::Closed {
            return Ok(Vec::new());
        }
        ticket.status = TicketStatus::Closed;
        // trengo-api.md §3.4 [OBS]: closed_at == updated_at on every closed ticket.
        ticket.closed_at = Some(edit.now);
        ticket.updated_at = edit.now;
        Ok(vec![Event::new(
            EventType::TicketClosed,
            vec![("ticket_id", Some(ticket_id.to_string()))],
        )])
    }

    /// Reopens a closed or spam ticket: ASSIGNED if it has a user, else OPEN
    /// (trengo-api.md §10.3 TICKET_REOPENED).
    pub fn reopen_ticket(&mut self, edit: &Edit, ticket_id: i64) -> Result<Vec<Event>, SimError> {
        let ticket = self.ticket_mut(ticket_id)?;
        if matches!(ticket.status, TicketStatus::Open | TicketStatus::Assigned) {
            return Ok(Vec::new());
        }
        ticket.status = reopened_status(ticket);
        ticket.closed_at = None;
        ticket.updated_at = edit.now;
        Ok(vec![Event::new(
            EventType::TicketReopened,
            vec![
                ("ticket_id", Some(ticket_id.to_string())),
                ("status", Some(ticket.status.as_str().to_owned())),
            ],
        )])
    }

    /// Marks a ticket as spam (status INVALID).
    pub fn mark_spam(&mut self, edit: &Edit, ticket_id: i64) -> Result<Vec<Event>, SimError> {
        let ticket = self.ticket_mut(ticket_id)?;
        if ticket.status == TicketStatus::Invalid {
            return Ok(Vec::new());
        }
        ticket.status = TicketStatus::Invalid;
        ticket.updated_at = edit.now;
        Ok(vec![Event::new(
            EventType::TicketMarkedAsSpam,
            vec![("ticket_id", Some(ticket_id.to_string()))],
        )])
    }

    /// Takes the spam mark off a ticket: back to ASSIGNED or OPEN.
    pub fn unmark_spam(&mut self, edit: &Edit, ticket_id: i64) -> Result<Vec<Event>, SimError> {
        let ticket = self.ticket_mut(ticket_id)?;
        if ticket.status != TicketStatus::Invalid {
            return Ok(Vec::new());
        }
        ticket.status = reopened_status(ticket);
        ticket.updated_at = edit.now;
        Ok(vec![Event::new(
            EventType::TicketUnmarkedAsSpam,
            vec![("ticket_id", Some(ticket_id.to_string()))],
        )])
    }

    /// Moves a ticket to another channel, as an agent can in the inbox. No API endpoint for it
    /// is documented, and nothing says whether it moves `updated_at`: pessimistically, it does
    /// not (the ticket list filters by `channels[]` see the move at once, §3.3).
    pub fn move_ticket(&mut self, ticket_id: i64, channel_id: i64) -> Result<Vec<Event>, SimError> {
        if !self.channels.contains_key(&channel_id) {
            return Err(SimError::selected_invalid("channel_id"));
        }
        self.ticket_mut(ticket_id)?.channel_id = channel_id;
        Ok(Vec::new())
    }

    /// Deletes a ticket with its messages: from now on every read of it answers 404
    /// (trengo-api.md §11; `GET /tickets/{id}/labels` even answers empty, §4.4 \[ONE\]).
    /// Trengo sends no webhook for a deletion.
    pub fn delete_ticket(&mut self, ticket_id: i64) -> Result<Vec<Event>, SimError> {
        self.ticket(ticket_id)?;
        self.tickets.remove(&ticket_id);
        for id in self
            .messages_by_ticket
            .remove(&ticket_id)
            .unwrap_or_default()
        {
            self.messages.remove(&id);
        }
        Ok(Vec::new())
    }

    /// Merges `source` into `target` as `POST /tickets/{target}/merge {source_ticket_id}` does
    /// (trengo-api.md §4.4 \[CLI\]): the source's messages and labels move to the target, the
    /// source is deleted (404 from now on), and `TICKET_MERGED` names both (§10.3).
    pub fn merge_tickets(
        &mut self,
        edit: &Edit,
        target: i64,
        source: i64,
    ) -> Result<Vec<Event>, SimError> {
        if target == source {
            return Err(SimError::selected_invalid("source_ticket_id"));
        }
        self.ticket(target)?;
        let moved = self.ticket(source)?.label_ids.clone();
        let messages = self.messages_by_ticket.remove(&source).unwrap_or_default();
        for id in &messages {
            if let Some(m) = self.messages.get_mut(id) {
                m.ticket_id = target;
            }
        }
        self.tickets.remove(&source);
        let ticket = self.ticket_mut(target)?;
        for label in moved {
            if !ticket.label_ids.contains(&label) {
                ticket.label_ids.push(label);
            }
        }
        ticket.updated_at = edit.now;
        self.messages_by_ticket
            .entry(target)
            .or_default()
            .extend(messages);
        Ok(vec![Event::new(
            EventType::TicketMerged,
            vec![
                ("ticket_id", Some(target.to_string())),
                ("merged_and_deleted_ticket_id", Some(source.to_string())),
            ],
        )])
    }

    /// Attaches one label; attaching one the ticket carries already changes nothing.
    pub fn attach_label(
        &mut self,
        edit: &Edit,
        ticket_id: i64,
        label_id: i64,
    ) -> Result<Vec<Event>, SimError> {
        self.ticket(ticket_id)?;
        let label_name = self
            .labels
            .get(&label_id)
            .map(|l| l.name.clone())
            .ok_or_else(|| SimError::selected_invalid("label_id"))?;
        let ticket = self.ticket_mut(ticket_id)?;
        if ticket.label_ids.contains(&label_id) {
            return Ok(Vec::new());
        }
        ticket.label_ids.push(label_id);
        if edit.switches.label_bumps_updated_at {
            ticket.updated_at = edit.now;
        }
        Ok(vec![label_event(
            EventType::TicketLabelAdded,
            ticket_id,
            label_id,
            label_name,
        )])
    }

    /// Detaches one label; detaching one the ticket does not carry changes nothing.
    pub fn detach_label(
        &mut self,
        edit: &Edit,
        ticket_id: i64,
        label_id: i64,
    ) -> Result<Vec<Event>, SimError> {
        let label_name = self.labels.get(&label_id).map(|l| l.name.clone());
        let ticket = self.ticket_mut(ticket_id)?;
        let Some(position) = ticket.label_ids.iter().position(|id| *id == label_id) else {
            return Ok(Vec::new());
        };
        ticket.label_ids.remove(position);
        if edit.switches.label_bumps_updated_at {
            ticket.updated_at = edit.now;
        }
        Ok(vec![label_event(
            EventType::TicketLabelDeleted,
            ticket_id,
            label_id,
            label_name.unwrap_or_default(),
        )])
    }

    /// Adds a message of `kind` to a ticket; returns its id and the event. A customer message
    /// on a closed ticket reopens it, as Trengo does within its reopen window.
    pub fn add_message(
        &mut self,
        edit: &Edit,
        ticket_id: i64,
        kind: MessageType,
        text: &str,
    ) -> Result<(i64, Vec<Event>), SimError> {
        if text.trim().is_empty() {
            return Err(SimError::required("message"));
        }
        self.ticket(ticket_id)?;
        let id = self.next_id("message", id_start::MESSAGE);
        let user_id = match kind {
            MessageType::Inbound => None,
            MessageType::Outbound | MessageType::Note => Some(edit.user_id),
        };
        self.insert_message(Message {
            id,
            ticket_id,
            kind,
            text: text.to_owned(),
            user_id,
            created_at: edit.now,
        });
        let bumps = match kind {
            MessageType::Note => edit.switches.note_bumps_updated_at,
            MessageType::Inbound | MessageType::Outbound => edit.switches.message_bumps_updated_at,
        };
        let ticket = self.ticket_mut(ticket_id)?;
        ticket.latest_message_at = Some(edit.now);
        if bumps {
            ticket.updated_at = edit.now;
        }
        let (contact_id, channel_id) = (ticket.contact_id, ticket.channel_id);
        let reopen = kind == MessageType::Inbound && ticket.status == TicketStatus::Closed;
        let mut events =
            vec![self.message_event(id, kind, ticket_id, contact_id, channel_id, text)];
        if reopen {
            events.extend(self.reopen_ticket(edit, ticket_id)?);
        }
        Ok((id, events))
    }

    fn message_event(
        &self,
        message_id: i64,
        kind: MessageType,
        ticket_id: i64,
        contact_id: i64,
        channel_id: i64,
        text: &str,
    ) -> Event {
        let contact = self.contacts.get(&contact_id);
        let user = self
            .messages
            .get(&message_id)
            .and_then(|m| m.user_id)
            .and_then(|id| self.users.get(&id));
        let base = vec![
            ("message_id", Some(message_id.to_string())),
            ("ticket_id", Some(ticket_id.to_string())),
        ];
        let user_fields = vec![
            ("user_id", user.map(|u| u.id.to_string())),
            ("user_name", user.map(|u| u.full_name())),
            ("user_email", user.map(|u| u.email.clone())),
        ];
        let contact_fields = vec![
            ("contact_id", Some(contact_id.to_string())),
            ("contact_name", contact.map(|c| c.name.clone())),
            ("contact_email", contact.and_then(|c| c.email.clone())),
            ("contact_identifier", contact.map(|c| c.identifier.clone())),
            ("channel_id", Some(channel_id.to_string())),
        ];
        // Field order per trengo-api.md §10.3 [OFF].
        let fields = match kind {
            MessageType::Inbound => {
                let mut f = base;
                f.push(("contact_id", Some(contact_id.to_string())));
                f.push(("message", Some(text.to_owned())));
                f.extend(contact_fields.into_iter().skip(1));
                f
            }
            MessageType::Outbound => {
                let mut f = base;
                f.push(("message", Some(text.to_owned())));
                f.extend(user_fields);
                f.extend(contact_fields);
                f
            }
            MessageType::Note => {
                let mut f = base;
                f.push(("message", Some(text.to_owned())));
                f.extend(user_fields);
                f
            }
        };
        let event_type = match kind {
            MessageType::Inbound => EventType::Inbound,
            MessageType::Outbound => EventType::Outbound,
            MessageType::Note => EventType::Note,
        };
        Event::new(event_type, fields)
    }

    /// Sets a ticket custom field (`POST /tickets/{id}/custom_fields`); an empty value clears
    /// it under `empty_value_clears_custom_field` and is refused otherwise. No webhook exists for this (trengo-api.md §10.2).
    pub fn set_ticket_custom_field(
        &mut self,
        edit: &Edit,
        ticket_id: i64,
        field_id: i64,
        value: String,
    ) -> Result<(), SimError> {
        self.ticket(ticket_id)?;
        self.check_custom_field(field_id, "TICKET")?;
        check_clearable(edit, &value)?;
        let ticket = self.ticket_mut(ticket_id)?;
        put_value(&mut ticket.custom_field_values, field_id, value);
        if edit.switches.custom_field_bumps_updated_at {
            ticket.updated_at = edit.now;
        }
        Ok(())
    }

    /// Sets a contact custom field (`POST /contacts/{id}/custom_fields`); an empty value
    /// clears it under `empty_value_clears_custom_field` and is refused otherwise; the
    /// contact's `updated_at` moves only under `custom_field_write_bumps_contact`.
    pub fn set_contact_custom_field(
        &mut self,
        edit: &Edit,
        contact_id: i64,
        field_id: i64,
        value: String,
    ) -> Result<(), SimError> {
        if !self.contacts.contains_key(&contact_id) {
            return Err(SimError::not_found("Contact", contact_id));
        }
        self.check_custom_field(field_id, "CONTACT")?;
        check_clearable(edit, &value)?;
        let contact = self
            .contacts
            .get_mut(&contact_id)
            .ok_or(SimError::not_found("Contact", contact_id))?;
        put_value(&mut contact.custom_field_values, field_id, value);
        if edit.switches.custom_field_write_bumps_contact {
            contact.updated_at = edit.now;
        }
        Ok(())
    }

    /// Sets a profile custom field (`POST /profiles/{id}/custom_fields`): PROFILE-type fields
    /// only, the same empty-value rule as tickets and contacts, and `updated_at` moves under
    /// `custom_field_write_bumps_contact` like a contact's.
    pub fn set_profile_custom_field(
        &mut self,
        edit: &Edit,
        profile_id: i64,
        field_id: i64,
        value: String,
    ) -> Result<(), SimError> {
        if !self.profiles.contains_key(&profile_id) {
            return Err(SimError::not_found("Profile", profile_id));
        }
        self.check_custom_field(field_id, "PROFILE")?;
        check_clearable(edit, &value)?;
        let profile = self
            .profiles
            .get_mut(&profile_id)
            .ok_or(SimError::not_found("Profile", profile_id))?;
        put_value(&mut profile.custom_field_values, field_id, value);
        if edit.switches.custom_field_write_bumps_contact {
            profile.updated_at = edit.now;
        }
        Ok(())
    }

    fn check_custom_field(&self, field_id: i64, kind: &str) -> Result<(), SimError> {
        match self.custom_fields.get(&field_id) {
            Some(field) if field.kind == kind => Ok(()),
            _ => Err(SimError::selected_invalid("custom_field_id")),
        }
    }
}

fn reopened_status(ticket: &Ticket) -> TicketStatus {
    if ticket.user_id.is_some() {
        TicketStatus::Assigned
    } else {
        TicketStatus::Open
    }
}

fn label_event(kind: EventType, ticket_id: i64, label_id: i64, label_name: String) -> Event {
    Event::new(
        kind,
        vec![
            ("ticket_id", Some(ticket_id.to_string())),
            ("label_id", Some(label_id.to_string())),
            ("label_name", Some(label_name)),
        ],
    )
}

/// An empty custom field value clears the field only under `empty_value_clears_custom_field`;
/// otherwise it fails Laravel's `required` rule (trengo-api.md §7 \[U\]).
/// Sets a custom field value; an empty one (allowed by [`check_clearable`]) clears it.
fn put_value(values: &mut BTreeMap<i64, String>, field_id: i64, value: String) {
    if value.is_empty() {
        values.remove(&field_id);
    } else {
        values.insert(field_id, value);
    }
}

fn check_clearable(edit: &Edit, value: &str) -> Result<(), SimError> {
    if value.is_empty() && !edit.switches.empty_value_clears_custom_field {
        return Err(SimError::required("value"));
    }
    Ok(())
}

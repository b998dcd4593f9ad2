//! Link creation, the executor's largest writes: Trengo → GHL (find or create the contact,
//! adopt a task that already names the ticket, or create one) and GHL → Trengo (a ticket in
//! the configured channel, the task body as its first internal note, the ticket URL written
//! back into the task). Each create is journalled as an intent first, like every other.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::{Applied, Executor, IntentKind, ItemError};
use crate::store::{
    self, StoreError,
    links::{NewLink, Origin},
};
use crate::sync::declare::task_subject_marker;
use crate::sync::keys::BaseName;
use crate::sync::marker;
use crate::sync::model::LinkId;
use crate::{ghl, trengo};

impl Executor<'_> {
    /// Trengo → GHL: find (or create) the contact, adopt a task that already names the
    /// ticket, or create one. Returns the GHL writes made.
    pub(super) async fn link_ticket(
        &self,
        ticket_id: i64,
        email: Option<&str>,
        phone: Option<&str>,
        name: Option<&str>,
        title: &str,
        url: &str,
    ) -> Result<u64, ItemError> {
        if self
            .store
            .call(move |s| store::links::by_ticket(s.conn(), ticket_id))
            .await?
            .is_some()
        {
            return Ok(0);
        }
        let mut writes = 0;
        let contact = match self.ghl.find_duplicate(email, phone).await? {
            Some(c) => c,
            None if self.settings.create_contacts && (email.is_some() || phone.is_some()) => {
                let fields = ghl::ContactFields {
                    email: email.map(str::to_string),
                    phone: phone.map(str::to_string),
                    name: name.map(str::to_string),
                    source: Some("trengo-sync".into()),
                    ..Default::default()
                };
                let upserted = self.ghl.upsert_contact(&fields).await?;
                self.remote_done()?;
                writes += 1;
                upserted.contact
            }
            None => {
                return Err(ItemError::Blocked(format!(
                    "no GHL contact has the e-mail {} or phone {} of ticket #{ticket_id}'s \
                     contact: create the contact in GHL, or set link.create_contacts = true",
                    email.unwrap_or("(none)"),
                    phone.unwrap_or("(none)")
                )));
            }
        };
        let trengo_contact = self
            .facts
            .tickets
            .get(&ticket_id)
            .and_then(|t| t.contact_id);
        // Adoption before creation: a task that names this ticket is linked, never duplicated.
        for task in self.ghl.tasks(&contact.id).await? {
            if self
                .scope()
                .ticket_in_text(task.body.as_deref().unwrap_or(""))
                == Some(ticket_id)
            {
                let contact_id = contact.id.clone();
                let now = self.now();
                self.tx(move |c| {
                    let new = NewLink {
                        ticket_id,
                        task_id: task.id.clone(),
                        ghl_contact_id: contact_id,
                        trengo_contact_id: trengo_contact,
                        origin: Origin::Adopted,
                    };
                    insert_link(c, new, &[], now).map(|_| ())
                })
                .await?;
                return Ok(writes);
            }
        }
        let done = self
            .facts
            .tickets
            .get(&ticket_id)
            .and_then(|t| crate::sync::views::status(&t.status).ok())
            .is_some_and(|s| self.settings.plan.status_table.is_done(s));
        let key = self
            .open_intent(
                IntentKind::Task,
                &ticket_id.to_string(),
                None,
                json!({"ticket_id": ticket_id, "contact_id": contact.id}),
            )
            .await?;
        let now = self.now();
        let new = ghl::NewTask {
            title: title.to_string(),
            body: Some(format!("Trengo ticket: {url}")),
            due_date: now + self.settings.task_due_in,
            completed: done,
            assigned_to: None,
        };
        let task = self.ghl.create_task(&contact.id, &new).await?;
        self.remote_done()?;
        writes += 1;
        let contact_id = contact.id.clone();
        let assignee = self.assignee_base(
            task.assigned_to
                .as_ref()
                .map(|u| self.facts.directory.ghl.get(u).cloned()),
        );
        self.tx(move |c| {
            let new = NewLink {
                ticket_id,
                task_id: task.id.clone(),
                ghl_contact_id: contact_id,
                trengo_contact_id: trengo_contact,
                origin: Origin::Trengo,
            };
            let mut bases = vec![(BaseName::Status, json!(done))];
            bases.extend(assignee.map(|a| (BaseName::Assignee, a)));
            insert_link(c, new, &bases, now)?;
            store::intents::finish(c, &key, &json!({"task_id": task.id}), now)?;
            Ok(())
        })
        .await?;
        Ok(writes)
    }

    /// GHL → Trengo: a ticket in the configured channel for the task's contact, the task body
    /// as its first internal note, and the ticket URL written back into the task.
    pub(super) async fn link_task(
        &self,
        task_id: &str,
        contact_id: &str,
        title: &str,
        body: &str,
    ) -> Result<Applied, ItemError> {
        let tid = task_id.to_string();
        if self
            .store
            .call(move |s| store::links::by_task(s.conn(), &tid))
            .await?
            .is_some()
        {
            return Ok(Applied::default());
        }
        let channel = self.scope().trengo_channel_id.ok_or_else(|| {
            ItemError::Blocked(
                "link.trengo_channel_id is not set: GHL → Trengo links are off".into(),
            )
        })?;
        let contact = self.ghl.contact(contact_id).await?;
        // An e-mail identifier is refused on WhatsApp, SMS and voice channels (§6).
        let kind = self.trengo.channel(channel).await?.and_then(|c| c.kind);
        let identifier = trengo::contact_identifier(
            kind.as_deref(),
            contact.email.as_deref(),
            contact.phone.as_deref(),
        )
        .map(str::to_string)
        .ok_or_else(|| {
            ItemError::Blocked(format!(
                "GHL contact {contact_id} has no {} for a Trengo contact on channel {channel} \
                 ({}), so none can be matched or made for task {task_id}; add it in GHL or set \
                 link.trengo_channel_id to a channel of another kind",
                match kind.as_deref() {
                    Some("EMAIL") => "e-mail",
                    Some(_) => "phone",
                    None => "e-mail or phone",
                },
                kind.as_deref().unwrap_or("unknown kind")
            ))
        })?;
        let name = contact.name.clone().or_else(|| {
            let joined = [contact.first_name.clone(), contact.last_name.clone()]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" ");
            (!joined.is_empty()).then_some(joined)
        });
        // Returns the existing contact when one has this identifier (trengo-api.md §6).
        let person = self
            .trengo
            .create_contact(channel, &identifier, name.as_deref())
            .await?;
        self.remote_done()?;
        let mut applied = Applied::default();
        let key = self
            .open_intent(
                IntentKind::Ticket,
                task_id,
                None,
                json!({"task_id": task_id, "contact_id": contact_id, "trengo_contact_id": person.id}),
            )
            .await?;
        let subject = format!("{} {}", title.trim(), task_subject_marker(task_id));
        let ticket = self
            .trengo
            .create_ticket(&trengo::NewTicket {
                channel_id: channel,
                contact_id: person.id,
                subject: Some(subject),
            })
            .await?;
        self.remote_done()?;
        applied.trengo += 1;
        let (task, contact_id2, now) = (task_id.to_string(), contact_id.to_string(), self.now());
        let ticket_id = ticket.id;
        let assignee = self.assignee_base(
            ticket
                .user_id
                .map(|u| self.facts.directory.trengo.get(&u).cloned()),
        );
        let link = self
            .tx(move |c| {
                let new = NewLink {
                    ticket_id,
                    task_id: task,
                    ghl_contact_id: contact_id2,
                    trengo_contact_id: Some(person.id),
                    origin: Origin::Ghl,
                };
                let mut bases = vec![(BaseName::Status, json!(false))];
                bases.extend(assignee.map(|a| (BaseName::Assignee, a)));
                let (link, _) = insert_link(c, new, &bases, now)?;
                store::intents::finish(c, &key, &json!({"ticket_id": ticket_id}), now)?;
                Ok(link)
            })
            .await?;
        let finished = self
            .finish_task_link(link, ticket_id, task_id, contact_id, title, body)
            .await?;
        applied.trengo += finished.trengo;
        applied.ghl += finished.ghl;
        Ok(applied)
    }

    /// The two steps after a ticket is made for a task: the task body as an internal note
    /// (marked, so it is never copied back as a GHL note) and the ticket URL in the task.
    /// Both are idempotent, so a crash between them is repaired by running this again.
    pub async fn finish_task_link(
        &self,
        link: LinkId,
        ticket_id: i64,
        task_id: &str,
        contact_id: &str,
        title: &str,
        body: &str,
    ) -> Result<Applied, ItemError> {
        let mut applied = Applied::default();
        let pseudo = format!("task-{task_id}");
        let p = pseudo.clone();
        let noted = self
            .store
            .call(move |s| store::comments::by_note(s.conn(), &p))
            .await?
            .is_some();
        if !noted && !body.trim().is_empty() {
            let text = marker::with_ghl_marker(body, &pseudo);
            self.create_trengo_note(link, ticket_id, &pseudo, &text)
                .await?;
            applied.trengo += 1;
        }
        let url = self.scope().ticket_url(ticket_id);
        if !body.contains(&url) {
            let update = ghl::TaskUpdate {
                title: Some(title.to_string()),
                body: Some(format!("{}\n\nTrengo ticket: {url}", body.trim_end())),
                ..Default::default()
            };
            self.ghl.update_task(contact_id, task_id, &update).await?;
            self.remote_done()?;
            applied.ghl += 1;
        }
        Ok(applied)
    }
}

/// Records the link of a ticket and a task unless either is linked already (an earlier pass,
/// or the settlement of a crash, may have recorded it), with `bases` (field, value) on a link
/// made here. Every path that records a link goes through it: a create, an adoption, and the
/// settlement of a create a crash interrupted (`settle.rs`). Returns the link now holding the
/// ticket (else the task) and whether it was made here.
pub(super) fn insert_link(
    c: &rusqlite::Connection,
    new: NewLink,
    bases: &[(BaseName, Value)],
    now: DateTime<Utc>,
) -> Result<(LinkId, bool), StoreError> {
    let existing = match store::links::by_ticket(c, new.ticket_id)? {
        Some(link) => Some(link),
        None => store::links::by_task(c, &new.task_id)?,
    };
    if let Some(link) = existing {
        return Ok((link.id, false));
    }
    let link = store::links::insert(c, &new, now)?;
    for (field, value) in bases {
        store::bases::put(c, link.id, *field, value, now)?;
    }
    Ok((link.id, true))
}

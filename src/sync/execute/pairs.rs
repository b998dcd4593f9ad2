//! The executor's writes for contact pairs (`sync/pairs.rs`): pairs recorded, Trengo contacts
//! made for tagged GHL contacts, a pair's planned field and context writes (GHL's in one
//! contact update, Trengo's one field at a time), the linked tasks' details, and welcome
//! tickets.
//!
//! Each pair's writes are journalled before the first of them (an `pair-update` intent holding
//! every write's side and raw value); the bases move, the ledger records each write, and the
//! intent ends, in one transaction once every write landed. A crash in between leaves the
//! intent open, and settlement (`settle.rs`) moves the base of each write the written side
//! holds, so a later edit on that side is not mistaken for ours. A welcome ticket is a create:
//! its intent holds the subject, and settlement finds the ticket by contact and subject.

use serde_json::{Value as Json, json};

use super::{Applied, Executor, IntentKind, ItemError};
use crate::ghl::{ContactFields, CustomFieldInput};
use crate::store::{
    self,
    ledger::{Entry, EntryKind},
    pairs::{Pair, PairOrigin},
};
use crate::sync::keys::BaseName;
use crate::sync::operation::Side;
use crate::sync::pairs::task::{TaskPlan, TaskWrite};
use crate::sync::pairs::{
    FieldMap, GhlSlot, Mapped, PairPlan, PairWrite, Standard, TrengoSlot, Users, Value, convert,
};
use crate::trengo;

/// A write of a pair as journalled: which side, where, and the raw value sent.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct JournalledWrite {
    /// The map entry's name, or `context: <label>`.
    pub field: String,
    /// `ghl` or `trengo`.
    pub side: String,
    /// Where: `custom:<id>` or `standard:<name>` in GHL; `name`, `contact:<id>` or
    /// `profile:<id>` in Trengo.
    pub slot: String,
    /// The raw value sent.
    pub raw: Json,
    /// The value in its common form, for the base (`None` for context, which has none).
    pub value: Option<Value>,
}

fn side_name(side: Side) -> &'static str {
    match side {
        Side::Trengo => "trengo",
        Side::Ghl => "ghl",
    }
}

/// Sets a standard field's value in a GHL contact update; `assigned_to` takes a user's
/// e-mail and is sent as that user's id (an item error when no GHL user has it).
fn set_standard(
    fields: &mut ContactFields,
    s: Standard,
    text: String,
    users: &Users,
) -> Result<(), String> {
    let v = Some(text.clone());
    match s {
        Standard::Name => fields.name = v,
        Standard::FirstName => fields.first_name = v,
        Standard::LastName => fields.last_name = v,
        Standard::Email => fields.email = v,
        Standard::Phone => fields.phone = v,
        Standard::CompanyName => fields.company_name = v,
        Standard::Address1 => fields.address1 = v,
        Standard::City => fields.city = v,
        Standard::State => fields.state = v,
        Standard::PostalCode => fields.postal_code = v,
        Standard::Country => fields.country = v,
        Standard::Website => fields.website = v,
        Standard::DateOfBirth => fields.date_of_birth = v,
        Standard::Source => fields.source = v,
        Standard::AssignedTo => {
            fields.assigned_to = Some(if text.is_empty() {
                String::new()
            } else {
                users
                    .id_of(&text)
                    .map(str::to_string)
                    .ok_or_else(|| format!("no GHL user has the e-mail `{text}`: add the user in GHL, or correct the value"))?
            })
        }
    }
    Ok(())
}

/// The standard field a journalled `standard:<name>` slot names.
pub(super) fn standard_of(name: &str) -> Option<Standard> {
    Standard::parse(name)
}

/// Where a pair's writes go: the two contacts and the Trengo profile.
#[derive(Debug, Clone)]
pub struct PairTarget {
    /// The stored pair.
    pub pair: Pair,
    /// The Trengo contact's first profile, when the map has profile fields.
    pub profile_id: Option<i64>,
}

impl Executor<'_> {
    /// The pair of these two contacts, recorded if new.
    pub async fn ensure_pair(
        &self,
        ghl_contact: &str,
        trengo_contact: i64,
        origin: PairOrigin,
    ) -> Result<Pair, ItemError> {
        let (g, now) = (ghl_contact.to_string(), self.now());
        self.tx(move |c| store::pairs::ensure(c, &g, trengo_contact, origin, now))
            .await
    }

    /// Records that the Trengo-side sweep read these pairs now.
    pub async fn pairs_swept(&self, ids: Vec<i64>) -> Result<(), ItemError> {
        let now = self.now();
        self.tx(move |c| {
            for id in ids {
                store::pairs::swept(c, id, now)?;
            }
            Ok(())
        })
        .await
    }

    /// Makes (or, for a known identifier, finds: trengo-api.md §6) the Trengo contact of a GHL
    /// contact in `channel`, by e-mail on an e-mail channel, else by phone.
    pub async fn make_trengo_contact(
        &self,
        channel: i64,
        contact: &crate::ghl::Contact,
    ) -> Result<trengo::Contact, ItemError> {
        let kind = self.trengo.channel(channel).await?.and_then(|c| c.kind);
        let identifier = trengo::contact_identifier(
            kind.as_deref(),
            contact.email.as_deref(),
            contact.phone.as_deref(),
        )
        .ok_or_else(|| {
            ItemError::Blocked(format!(
                "GHL contact {} has no {} for a Trengo contact on channel {channel}: add it in \
                 GHL, or set contacts.channel_id to a channel of another kind",
                contact.id,
                if kind.as_deref() == Some("EMAIL") {
                    "e-mail"
                } else {
                    "phone"
                }
            ))
        })?;
        let name = crate::sync::pairs::ghl_raw(
            contact,
            &GhlSlot::Standard(Standard::Name),
            &Users::default(),
        );
        let name = name.as_str().filter(|n| !n.is_empty());
        let made = self
            .trengo
            .create_contact(channel, identifier, name)
            .await?;
        self.remote_done()?;
        Ok(made)
    }

    /// Applies a pair's plan: journal, writes (GHL in one update, Trengo one field at a time),
    /// then bases, ledger and the journal's end in one transaction.
    pub async fn apply_pair(
        &mut self,
        map: &FieldMap,
        plan: &PairPlan,
        target: &PairTarget,
        users: &Users,
    ) -> Result<Applied, ItemError> {
        let mut applied = Applied::default();
        let pair = &target.pair;
        let by_name = |name: &str| map.fields.iter().find(|m| m.name == name);
        // What each write sends, and the one GHL update.
        let mut journal: Vec<JournalledWrite> = Vec::new();
        let mut ghl_body = ContactFields::default();
        let mut custom: Vec<CustomFieldInput> = Vec::new();
        let mut trengo_writes: Vec<(TrengoSlot, String)> = Vec::new();
        for write in &plan.writes {
            match write {
                PairWrite::Field {
                    field, to, value, ..
                } => {
                    let Some(m) = by_name(field) else { continue };
                    match to {
                        Side::Ghl => {
                            let (slot, raw) =
                                ghl_write(m, value, users, &mut ghl_body, &mut custom)?;
                            journal.push(JournalledWrite {
                                field: field.clone(),
                                side: "ghl".into(),
                                slot,
                                raw,
                                value: Some(value.clone()),
                            });
                        }
                        Side::Trengo => {
                            let text = convert::to_trengo(value, m.trengo_items.as_deref())
                                .map_err(|e| ItemError::Blocked(format!("{field}: {e}")))?;
                            let slot = match m.trengo {
                                TrengoSlot::Name => "name".to_string(),
                                TrengoSlot::Contact(id) => format!("contact:{id}"),
                                TrengoSlot::Profile(id) => format!("profile:{id}"),
                                TrengoSlot::Ticket(_) => {
                                    return Err(ItemError::Blocked(format!(
                                        "{field}: a ticket field is never written to Trengo"
                                    )));
                                }
                            };
                            trengo_writes.push((m.trengo.clone(), text.clone()));
                            journal.push(JournalledWrite {
                                field: field.clone(),
                                side: "trengo".into(),
                                slot,
                                raw: json!(text),
                                value: Some(value.clone()),
                            });
                        }
                    }
                }
                PairWrite::Context {
                    label,
                    field_id,
                    value,
                    ..
                } => {
                    trengo_writes.push((TrengoSlot::Contact(*field_id), value.clone()));
                    journal.push(JournalledWrite {
                        field: format!("context: {label}"),
                        side: "trengo".into(),
                        slot: format!("contact:{field_id}"),
                        raw: json!(value),
                        value: None,
                    });
                }
            }
        }
        let key = if journal.is_empty() {
            None
        } else {
            Some(
                self.open_intent(
                    IntentKind::PairUpdate,
                    &pair.id.to_string(),
                    None,
                    json!({"pair_id": pair.id, "ghl_contact_id": pair.ghl_contact_id,
                           "trengo_contact_id": pair.trengo_contact_id,
                           "profile_id": target.profile_id, "writes": journal}),
                )
                .await?,
            )
        };
        if journal.iter().any(|j| j.side == "ghl") {
            if !custom.is_empty() {
                ghl_body.custom_fields = Some(custom);
            }
            self.ghl
                .update_contact(&pair.ghl_contact_id, &ghl_body)
                .await?;
            self.remote_done()?;
            applied.ghl += 1;
        }
        for (slot, text) in &trengo_writes {
            match slot {
                TrengoSlot::Name => {
                    self.trengo
                        .rename_contact(pair.trengo_contact_id, text)
                        .await?;
                }
                TrengoSlot::Contact(id) => {
                    self.trengo
                        .set_contact_custom_field(pair.trengo_contact_id, *id, text)
                        .await
                        .map_err(|e| empty_refused(e, text))?;
                }
                TrengoSlot::Profile(id) => {
                    let profile = target.profile_id.ok_or_else(|| {
                        ItemError::Blocked(format!(
                            "Trengo contact {} has no profile for the profile field {id}: \
                             link the contact to a profile in Trengo",
                            pair.trengo_contact_id
                        ))
                    })?;
                    self.trengo
                        .set_profile_custom_field(profile, *id, text)
                        .await
                        .map_err(|e| empty_refused(e, text))?;
                }
                TrengoSlot::Ticket(_) => {}
            }
            self.remote_done()?;
            applied.trengo += 1;
        }
        // Bases, ledger and the journal's end, together.
        let now = self.now();
        let (ghl_id, trengo_id) = (pair.ghl_contact_id.clone(), pair.trengo_contact_id);
        let (pair_id, writes, bases, settled) = (
            pair.id,
            plan.writes.clone(),
            plan.bases.clone(),
            plan.settled.clone(),
        );
        self.tx(move |c| {
            for (field, value) in &bases {
                store::pairs::put_base(c, pair_id, field, &json!(value), now)?;
            }
            for w in &writes {
                let entry = match w {
                    PairWrite::Field {
                        field,
                        to,
                        old,
                        value,
                    } => {
                        // The entry is named `ghl ⇄ trengo`: the side written names its field.
                        let (ghl, trengo) = field.split_once(" ⇄ ").unwrap_or((field, field));
                        let whom = match to {
                            Side::Ghl => format!("`{ghl}` of GHL contact {ghl_id}"),
                            Side::Trengo => format!("`{trengo}` of Trengo contact {trengo_id}"),
                        };
                        Entry::new(EntryKind::Applied, now)
                            .pair(pair_id)
                            .field(field.clone())
                            .side(side_name(*to))
                            .op(format!(
                                "set {whom} to \"{}\" (contact pair {pair_id})",
                                value.display()
                            ))
                            .change(json!(old.display()), json!(value.display()))
                    }
                    PairWrite::Context {
                        label, old, value, ..
                    } => Entry::new(EntryKind::Applied, now)
                        .pair(pair_id)
                        .field(format!("context: {label}"))
                        .side("trengo")
                        .op(format!(
                            "show the agent context `{label}` on Trengo contact {trengo_id}: \
                             \"{value}\" (contact pair {pair_id})"
                        ))
                        .change(json!(old), json!(value)),
                };
                store::ledger::record(c, &entry)?;
            }
            for s in &settled {
                store::ledger::record(
                    c,
                    &Entry::new(EntryKind::ConflictSettled, now)
                        .pair(pair_id)
                        .field(s.field.clone())
                        .side(side_name(s.winner))
                        .losing(json!(s.losing.display()))
                        .detail("both contacts changed; the field's policy chose"),
                )?;
            }
            if let Some(key) = &key {
                store::intents::remove(c, key)?;
            }
            Ok(())
        })
        .await?;
        Ok(applied)
    }

    /// Applies the task details of a contact's links: ticket fields set, task due dates moved,
    /// then the due bases.
    pub async fn apply_tasks(
        &mut self,
        map: &FieldMap,
        plan: &TaskPlan,
    ) -> Result<Applied, ItemError> {
        let mut applied = Applied::default();
        let mut done = Vec::new();
        for write in &plan.writes {
            match write {
                TaskWrite::TicketField {
                    ticket_id,
                    what,
                    value,
                    link,
                    old,
                } => {
                    let field = if *what == "due" {
                        map.task.due
                    } else {
                        map.task.title
                    };
                    let Some(field) = field else { continue };
                    self.trengo
                        .set_ticket_custom_field(*ticket_id, field, value)
                        .await
                        .map_err(|e| empty_refused(e, value))?;
                    self.remote_done()?;
                    applied.trengo += 1;
                    done.push(
                        Entry::new(EntryKind::Applied, self.now())
                            .link(*link)
                            .field(format!("task {what}"))
                            .side("trengo")
                            .op(format!(
                                "show the task {what} on ticket #{ticket_id}: \"{value}\" (link {link})"
                            ))
                            .change(json!(old), json!(value)),
                    );
                }
                TaskWrite::TaskDue {
                    contact_id,
                    task_id,
                    due,
                    old,
                    link,
                } => {
                    self.ghl
                        .update_task(
                            contact_id,
                            task_id,
                            &crate::ghl::TaskUpdate {
                                due_date: Some(*due),
                                ..crate::ghl::TaskUpdate::default()
                            },
                        )
                        .await?;
                    self.remote_done()?;
                    applied.ghl += 1;
                    done.push(
                        Entry::new(EntryKind::Applied, self.now())
                            .link(*link)
                            .field("task due")
                            .side("ghl")
                            .op(format!(
                                "move GHL task {task_id}'s due date to {} (link {link})",
                                due.to_rfc3339()
                            ))
                            .change(json!(old.map(|d| d.to_rfc3339())), json!(due.to_rfc3339())),
                    );
                }
            }
        }
        let (bases, now) = (plan.bases.clone(), self.now());
        self.tx(move |c| {
            for (link, due) in &bases {
                store::bases::put(c, *link, BaseName::TaskDue, &json!(due), now)?;
            }
            for entry in &done {
                store::ledger::record(c, entry)?;
            }
            Ok(())
        })
        .await?;
        Ok(applied)
    }

    /// Opens the welcome ticket of a pair made through `contacts.tag`: journalled with its
    /// subject first, recorded on the pair after. Returns the ticket id.
    pub async fn open_welcome(
        &mut self,
        map: &FieldMap,
        pair: &Pair,
        contact: &crate::ghl::Contact,
    ) -> Result<Option<i64>, ItemError> {
        let (Some(welcome), Some(channel)) = (&map.welcome, map.channel_id) else {
            return Ok(None);
        };
        let subject = welcome_subject(&welcome.subject, contact);
        let key = self
            .open_intent(
                IntentKind::Welcome,
                &pair.id.to_string(),
                None,
                json!({"pair_id": pair.id, "trengo_contact_id": pair.trengo_contact_id,
                       "subject": subject}),
            )
            .await?;
        let ticket = self
            .trengo
            .create_ticket(&trengo::NewTicket {
                channel_id: channel,
                contact_id: pair.trengo_contact_id,
                subject: Some(subject.clone()),
            })
            .await?;
        self.remote_done()?;
        let (pair_id, ticket_id, now) = (pair.id, ticket.id, self.now());
        let trengo_id = pair.trengo_contact_id;
        let k = key.clone();
        self.tx(move |c| {
            store::pairs::set_welcome(c, pair_id, ticket_id)?;
            store::ledger::record(
                c,
                &Entry::new(EntryKind::Applied, now)
                    .pair(pair_id)
                    .field("welcome ticket")
                    .side("trengo")
                    .op(format!(
                        "open welcome ticket #{ticket_id} for Trengo contact {trengo_id} \
                         (contact pair {pair_id})"
                    ))
                    .change(Json::Null, json!(ticket_id)),
            )?;
            store::intents::finish(
                c,
                &k,
                &json!({"ticket_id": ticket_id, "pair_id": pair_id}),
                now,
            )
        })
        .await?;
        // The rest is the ticket's dressing: a failure here leaves the ticket made and
        // recorded, and the item failing says what to do.
        if let Some(team) = welcome.team_id {
            self.trengo
                .assign(ticket.id, trengo::Assignee::Team(team))
                .await?;
            self.remote_done()?;
        }
        for label in &welcome.labels {
            let tag = crate::sync::model::Tag::new(label);
            let id = self.label_id(&tag, true).await?.ok_or_else(|| {
                ItemError::Blocked(format!(
                    "Trengo has no label `{label}` for welcome tickets: create it in Trengo, or \
                     set tags.create_labels = true"
                ))
            })?;
            self.trengo.attach_label(ticket.id, id).await?;
            self.remote_done()?;
        }
        Ok(Some(ticket.id))
    }
}

/// A Trengo write refused for an empty value: Trengo may not clear a field through the API
/// (trengo-api.md §7 \[U\]); say so instead of the bare 422.
fn empty_refused(e: crate::api::ApiError, text: &str) -> ItemError {
    if text.is_empty() && e.status() == Some(422) {
        ItemError::Blocked(
            "Trengo refused an empty value: its API may not clear a custom field (trengo-api.md \
             §7); clear the field by hand in Trengo, or put the value back on the other side"
                .into(),
        )
    } else {
        ItemError::Api(e)
    }
}

/// Puts a value into the GHL update body; returns the journalled slot and raw value.
fn ghl_write(
    m: &Mapped,
    value: &Value,
    users: &Users,
    body: &mut ContactFields,
    custom: &mut Vec<CustomFieldInput>,
) -> Result<(String, Json), ItemError> {
    let blocked = |e: String| ItemError::Blocked(format!("{}: {e}", m.name));
    match &m.ghl {
        GhlSlot::Custom { id, .. } => {
            let raw = convert::to_ghl(&m.kind, value).map_err(|e| blocked(e.to_string()))?;
            custom.push(CustomFieldInput::by_id(id.clone(), raw.clone()));
            Ok((format!("custom:{id}"), raw))
        }
        GhlSlot::Standard(s) => {
            let text = match value {
                Value::Date(d) => d.format("%Y-%m-%d").to_string(),
                v => v.display(),
            };
            set_standard(body, *s, text.clone(), users).map_err(blocked)?;
            Ok((format!("standard:{}", s.name()), json!(text)))
        }
    }
}

/// The welcome subject: `{name}`, `{first_name}`, `{email}`, `{phone}` filled in.
pub fn welcome_subject(template: &str, contact: &crate::ghl::Contact) -> String {
    let name = crate::sync::pairs::ghl_raw(
        contact,
        &GhlSlot::Standard(Standard::Name),
        &Users::default(),
    );
    template
        .replace("{name}", name.as_str().unwrap_or_default())
        .replace(
            "{first_name}",
            contact.first_name.as_deref().unwrap_or_default(),
        )
        .replace("{email}", contact.email.as_deref().unwrap_or_default())
        .replace("{phone}", contact.phone.as_deref().unwrap_or_default())
        .trim()
        .to_string()
}

impl Executor<'_> {
    /// Looks for the welcome ticket an open intent was about to open: a ticket of the contact
    /// with the journalled subject.
    pub(super) async fn find_welcome(
        &self,
        intent: &store::intents::Intent,
    ) -> Result<Option<Json>, ItemError> {
        use futures::StreamExt as _;
        let p = &intent.payload;
        let (Some(person), Some(subject), Some(pair)) = (
            p.get("trengo_contact_id").and_then(Json::as_i64),
            p.get("subject").and_then(Json::as_str),
            p.get("pair_id").and_then(Json::as_i64),
        ) else {
            return Ok(None);
        };
        let filters = trengo::TicketFilters {
            contact_id: Some(person),
            ..trengo::TicketFilters::default()
        };
        let mut stream = std::pin::pin!(self.trengo.tickets(&filters));
        while let Some(t) = stream.next().await {
            let t = t?;
            if t.subject.as_deref().map(str::trim) == Some(subject.trim()) {
                return Ok(Some(json!({"ticket_id": t.id, "pair_id": pair})));
            }
        }
        Ok(None)
    }

    /// Settles a pair's writes a crash left open: each write the written side now holds moves
    /// its base (so a later edit there is not mistaken for ours); the rest are left to the next
    /// plan, which sees them as not yet carried.
    pub(super) async fn settle_pair_update(
        &self,
        intent: &store::intents::Intent,
    ) -> Result<(), ItemError> {
        let p = &intent.payload;
        let writes: Vec<JournalledWrite> = p
            .get("writes")
            .cloned()
            .and_then(|w| serde_json::from_value(w).ok())
            .unwrap_or_default();
        let (Some(pair), Some(ghl_id), Some(trengo_id)) = (
            p.get("pair_id").and_then(Json::as_i64),
            p.get("ghl_contact_id").and_then(Json::as_str),
            p.get("trengo_contact_id").and_then(Json::as_i64),
        ) else {
            return self.end_intent(&intent.key, Vec::new()).await;
        };
        let profile = p.get("profile_id").and_then(Json::as_i64);
        let ghl = if writes.iter().any(|w| w.side == "ghl") {
            Some(self.ghl.contact(ghl_id).await?)
        } else {
            None
        };
        let trengo = if writes
            .iter()
            .any(|w| w.side == "trengo" && w.value.is_some())
        {
            Some(self.trengo.contact(trengo_id).await?)
        } else {
            None
        };
        let profile = match profile {
            Some(id) if writes.iter().any(|w| w.slot.starts_with("profile:")) => {
                Some(self.trengo.profile(id).await?)
            }
            _ => None,
        };
        let mut landed = Vec::new();
        for w in writes {
            let Some(value) = w.value.clone() else {
                continue;
            };
            let holds = match (w.side.as_str(), w.slot.split_once(':')) {
                ("ghl", Some(("custom", id))) => ghl.as_ref().is_some_and(|c| {
                    c.custom_fields
                        .iter()
                        .any(|f| f.id == id && same_raw(&f.value, &w.raw))
                }),
                ("ghl", Some(("standard", name))) => {
                    ghl.as_ref().zip(standard_of(name)).is_some_and(|(c, s)| {
                        let now = crate::sync::pairs::ghl_raw(
                            c,
                            &GhlSlot::Standard(s),
                            &Users::default(),
                        );
                        same_raw(&now, &w.raw)
                    })
                }
                ("trengo", Some(("contact", id))) => {
                    let id = id.parse().unwrap_or(-1);
                    trengo.as_ref().is_some_and(|c| {
                        same_raw(&json!(c.custom_field(id).unwrap_or_default()), &w.raw)
                    })
                }
                ("trengo", Some(("profile", id))) => {
                    let id = id.parse().unwrap_or(-1);
                    profile.as_ref().is_some_and(|c| {
                        same_raw(&json!(c.custom_field(id).unwrap_or_default()), &w.raw)
                    })
                }
                ("trengo", None) if w.slot == "name" => trengo
                    .as_ref()
                    .is_some_and(|c| same_raw(&json!(c.name.clone().unwrap_or_default()), &w.raw)),
                _ => false,
            };
            if holds {
                landed.push((pair, w.field, value));
            }
        }
        self.end_intent(&intent.key, landed).await
    }

    async fn end_intent(
        &self,
        key: &str,
        bases: Vec<(i64, String, Value)>,
    ) -> Result<(), ItemError> {
        let (key, now) = (key.to_string(), self.now());
        self.tx(move |c| {
            for (pair, field, value) in &bases {
                store::pairs::put_base(c, *pair, field, &json!(value), now)?;
            }
            store::intents::remove(c, &key)
        })
        .await
    }
}

/// Whether a value read back is the raw value written (text trimmed, numbers by value,
/// arrays as sets).
fn same_raw(read: &Json, written: &Json) -> bool {
    match (read, written) {
        (Json::String(a), Json::String(b)) => a.trim() == b.trim(),
        (Json::Number(a), Json::Number(b)) => a.as_f64() == b.as_f64(),
        (Json::String(a), Json::Number(b)) | (Json::Number(b), Json::String(a)) => {
            a.trim().parse::<f64>().ok() == b.as_f64()
        }
        (Json::Array(a), Json::Array(b)) => {
            let set = |v: &Vec<Json>| -> std::collections::BTreeSet<String> {
                v.iter().map(|x| x.to_string()).collect()
            };
            set(a) == set(b)
        }
        (Json::Null, Json::String(b)) => b.is_empty(),
        (a, b) => a == b,
    }
}

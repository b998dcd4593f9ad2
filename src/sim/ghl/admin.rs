//! The admin surface: edits made "as a person in the GHL UI", fault and switch settings, and
//! read-outs for tests — as methods on [`GhlFakeState`] and over HTTP under `/_sim/`.
//!
//! Admin edits move timestamps and raise webhooks exactly like API edits do, but they are
//! neither counted as requests nor spend the rate budget, and `/_sim/` needs no token.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use secrecy::SecretString;
use serde_json::{Value, json};

use super::activity::TaskInput;
use super::error::GhlError;
use super::model::{Appointment, User, ghl_time, say_field_value};
use super::options::GhlSwitches;
use super::server::{GhlFakeState, json_body};
use super::state::ContactInput;
use super::webhooks::WebhookDelivery;
use crate::sim::faults::{CounterSnapshot, Faults};

impl GhlFakeState {
    /// Completes a task, as ticking it off in the UI does (raises TaskComplete).
    pub fn complete_task(&self, task_id: &str) -> Result<Value, GhlError> {
        self.set_completed(task_id, true)
    }

    /// Reopens a task (GHL raises no event for this, ghl-api.md §4.2).
    pub fn reopen_task(&self, task_id: &str) -> Result<Value, GhlError> {
        self.set_completed(task_id, false)
    }

    fn set_completed(&self, task_id: &str, completed: bool) -> Result<Value, GhlError> {
        self.edit(false, |s, now| {
            let contact = s.task_by_id(task_id)?.contact_id.clone();
            s.set_task_completed(now, &contact, task_id, completed)
                .map(|t| t.to_json())
        })
    }

    /// Renames a task, as editing its title in the UI does (GHL has no `TaskUpdate` webhook,
    /// ghl-api.md §4.2; the contact's `dateUpdated` moves only with
    /// `task_completion_bumps_contact`).
    pub fn rename_task(&self, task_id: &str, title: &str) -> Result<Value, GhlError> {
        self.edit(false, |s, now| {
            let contact = s.task_by_id(task_id)?.contact_id.clone();
            let input = TaskInput {
                title: Some(title.to_owned()),
                ..TaskInput::default()
            };
            s.update_task(now, &contact, task_id, &input)
                .map(|t| t.to_json())
        })
    }

    /// Reassigns a task to another user of the location, as picking a new assignee in the UI
    /// does. Moves no contact timestamp unless `task_completion_bumps_contact` is on (the same
    /// pessimism as completion, ghl-api.md §3.2).
    pub fn assign_task(&self, task_id: &str, user_id: &str) -> Result<Value, GhlError> {
        self.edit(false, |s, now| {
            if !s.users.iter().any(|u| u.id == user_id) {
                return Err(GhlError::bad_request(format!(
                    "assignedTo {user_id} is not a user of this location"
                )));
            }
            let contact = s.task_by_id(task_id)?.contact_id.clone();
            let input = TaskInput {
                assigned_to: Some(user_id.to_owned()),
                ..TaskInput::default()
            };
            s.update_task(now, &contact, task_id, &input)
                .map(|t| t.to_json())
        })
    }

    /// Adds a user to the location, as an admin inviting a colleague does; returns its id.
    pub fn add_user(
        &self,
        first_name: &str,
        last_name: &str,
        email: &str,
        role: &str,
    ) -> Result<String, GhlError> {
        self.edit(false, |s, _| {
            if s.users.iter().any(|u| u.email.eq_ignore_ascii_case(email)) {
                return Err(GhlError::bad_request(format!(
                    "a user with the e-mail {email} already exists"
                )));
            }
            let id = s.new_id();
            s.users.push(User {
                id: id.clone(),
                first_name: first_name.to_owned(),
                last_name: last_name.to_owned(),
                email: email.to_owned(),
                role: role.to_owned(),
            });
            Ok(id)
        })
    }

    /// The id of the location's custom field with this key (`contact.customer_number`).
    pub fn custom_field_id(&self, field_key: &str) -> Option<String> {
        self.read(|s| {
            s.custom_fields
                .iter()
                .find(|f| f.field_key == field_key)
                .map(|f| f.id.clone())
        })
    }

    /// The id of the location's user with this e-mail, case-insensitive.
    pub fn user_id(&self, email: &str) -> Option<String> {
        self.read(|s| {
            s.users
                .iter()
                .find(|u| u.email.eq_ignore_ascii_case(email.trim()))
                .map(|u| u.id.clone())
        })
    }

    /// Adds a tag to a contact (raises ContactTagUpdate when it was not there yet).
    pub fn add_contact_tag(&self, contact_id: &str, tag: &str) -> Result<Vec<String>, GhlError> {
        self.edit(false, |s, now| {
            s.add_tags(now, contact_id, &[tag.to_owned()])
                .map(|(_, all)| all)
        })
    }

    /// Stores a custom field value on a contact exactly as given, bypassing the field's type
    /// rule, as another integration or an older API version may have left it (for the
    /// bad-input tests: an object in an option field, a word in a number field). The contact
    /// counts as updated.
    pub fn set_raw_custom_field(
        &self,
        contact_id: &str,
        field_id: &str,
        value: Value,
    ) -> Result<(), GhlError> {
        self.edit(false, |s, now| {
            let contact = s
                .contacts
                .get_mut(contact_id)
                .ok_or_else(|| GhlError::not_found("contact"))?;
            contact.custom_fields.retain(|f| f.id != field_id);
            contact.custom_fields.push(super::model::CustomFieldValue {
                id: field_id.to_owned(),
                value,
            });
            contact.date_updated = now;
            s.reindex(contact_id, now);
            Ok(())
        })
    }

    /// Removes a tag from a contact (raises ContactTagUpdate when it was there).
    pub fn remove_contact_tag(&self, contact_id: &str, tag: &str) -> Result<Vec<String>, GhlError> {
        self.edit(false, |s, now| {
            s.remove_tags(now, contact_id, &[tag.to_owned()])
                .map(|(_, all)| all)
        })
    }

    /// Deletes a contact with its tasks and notes, as a user can in the UI (raises
    /// ContactDelete; every read of it answers 404 from now on).
    pub fn delete_contact(&self, contact_id: &str) -> Result<(), GhlError> {
        self.edit(false, |s, now| s.delete_contact(now, contact_id))
    }

    /// Deletes a task, as a user can in the UI (raises TaskDelete).
    pub fn delete_task(&self, task_id: &str) -> Result<(), GhlError> {
        self.edit(false, |s, now| {
            let contact = s.task_by_id(task_id)?.contact_id.clone();
            s.delete_task(now, &contact, task_id).map(|_| ())
        })
    }

    /// Writes a note on a contact (raises NoteCreate).
    pub fn add_note(&self, contact_id: &str, body: &str) -> Result<Value, GhlError> {
        self.edit(false, |s, now| {
            s.create_note(now, contact_id, &json!({ "body": body }))
                .map(|n| n.to_json())
        })
    }

    /// Rewrites a note's text (raises NoteUpdate).
    pub fn edit_note(&self, note_id: &str, body: &str) -> Result<Value, GhlError> {
        self.edit(false, |s, now| {
            let contact = s.note_by_id(note_id)?.contact_id.clone();
            s.update_note(now, &contact, note_id, &json!({ "body": body }))
                .map(|n| n.to_json())
        })
    }

    /// Creates a contact from `CreateContactDto`-style fields (no `locationId` needed).
    pub fn create_contact(&self, fields: &Value) -> Result<Value, GhlError> {
        let input = ContactInput::from_json(fields)?;
        self.edit(false, |s, now| {
            s.create_contact(now, &input).map(|c| c.to_json())
        })
    }

    /// Creates a task on a contact; `dueDate` defaults to a day from now, `completed` to false.
    pub fn create_task(&self, contact_id: &str, fields: &Value) -> Result<Value, GhlError> {
        let mut fields = fields.clone();
        if let Value::Object(map) = &mut fields {
            map.entry("dueDate")
                .or_insert_with(|| ghl_time(self.now() + chrono::Duration::days(1)).into());
            map.entry("completed").or_insert(Value::Bool(false));
        }
        let input = TaskInput::from_json(&fields, true)?;
        self.edit(false, |s, now| {
            s.create_task(now, contact_id, &input).map(|t| t.to_json())
        })
    }

    /// Books an appointment for a contact, as a booking in the GHL calendar does; returns it
    /// as `GET /contacts/{id}/appointments` lists it. `fields`: `title` (default "Meeting"),
    /// `startTime` (RFC 3339, required), `endTime` (default 30 minutes later),
    /// `appointmentStatus` (default `booked`), `assignedUserId`.
    pub fn add_appointment(&self, contact_id: &str, fields: &Value) -> Result<Value, GhlError> {
        let text = |key: &str| fields.get(key).and_then(Value::as_str).map(str::to_owned);
        let time = |key: &str| -> Result<Option<chrono::DateTime<chrono::Utc>>, GhlError> {
            text(key)
                .map(|t| {
                    chrono::DateTime::parse_from_rfc3339(&t)
                        .map(|at| at.with_timezone(&chrono::Utc))
                        .map_err(|e| {
                            GhlError::unprocessable(vec![format!(
                                "{key} `{t}` is not RFC 3339 ({e}); write it like \
                                 \"2026-03-02T10:00:00+01:00\""
                            )])
                        })
                })
                .transpose()
        };
        let Some(start) = time("startTime")? else {
            return Err(GhlError::unprocessable(vec![
                "startTime is required (RFC 3339, like \"2026-03-02T10:00:00+01:00\")".into(),
            ]));
        };
        let end = time("endTime")?.unwrap_or(start + chrono::Duration::minutes(30));
        self.edit(false, |s, now| {
            let appointment = Appointment {
                id: s.new_id(),
                calendar_id: s.new_id(),
                contact_id: contact_id.to_owned(),
                title: text("title").unwrap_or_else(|| "Meeting".to_owned()),
                appointment_status: text("appointmentStatus").unwrap_or_else(|| "booked".into()),
                assigned_user_id: text("assignedUserId"),
                start_time: start,
                end_time: end,
                date_added: now,
            };
            s.book_appointment(appointment)
        })
    }

    /// One contact as `GET /contacts/{id}` shows it.
    pub fn contact_json(&self, contact_id: &str) -> Result<Value, GhlError> {
        self.read(|s| {
            let mut json = s.contact(contact_id)?.to_json();
            if s.switches.custom_field_reads_say_field_value
                && let Value::Object(map) = &mut json
            {
                say_field_value(map);
            }
            Ok(json)
        })
    }

    /// Replaces the fault settings.
    pub fn set_faults(&self, faults: Faults) {
        self.faults().set(faults);
    }

    /// Makes the next `n` API requests answer 429.
    pub fn burst_429(&self, n: u32) {
        self.faults().burst_429(n);
    }

    /// Makes the next `n` API writes happen, then lose their answers (the connection drops).
    pub fn lose_next_write_answers(&self, n: u32) {
        self.faults().lose_next_write_answers(n);
    }

    /// Registers a URL for every webhook event.
    pub fn register_webhook(&self, url: &str) {
        self.outbox().register(url.to_owned());
    }

    /// Loses, repeats or reorders webhook deliveries from now on.
    pub fn set_webhook_faults(&self, faults: crate::sim::WebhookFaults) {
        self.outbox().set_faults(faults);
    }

    /// Finished webhook deliveries.
    pub fn webhook_log(&self) -> Vec<WebhookDelivery> {
        self.outbox().log()
    }

    /// Every event raised, delivered or not.
    pub fn webhook_events(&self) -> Vec<Value> {
        self.outbox().events()
    }

    /// Waits until `n` deliveries have finished since start.
    pub async fn wait_for_webhooks(&self, n: usize) {
        self.outbox().wait_for_deliveries(n).await;
    }

    /// The webhook public key, base64 SPKI DER.
    pub fn public_key_base64(&self) -> String {
        self.outbox().public_key_base64()
    }

    /// Request and write counts so far.
    pub fn counter_snapshot(&self) -> CounterSnapshot {
        self.counters().snapshot()
    }

    /// Successful OAuth refreshes so far.
    pub fn refresh_count(&self) -> u64 {
        self.tokens().refreshes()
    }

    /// Authorization codes redeemed so far (app installs).
    pub fn install_count(&self) -> u64 {
        self.tokens().installs()
    }

    /// Registers `uri` as a redirect URI of the OAuth app.
    pub fn register_redirect_uri(&self, uri: &str) {
        self.tokens().register_redirect_uri(uri);
    }

    /// Opens the authorization URL `url` (as `trengo-sync auth ghl` prints it) as the
    /// location's admin and approves: the redirect URL the browser would land on, with the code.
    pub fn approve_install(&self, url: &str) -> Result<url::Url, GhlError> {
        let url = url::Url::parse(url.trim())
            .map_err(|_| GhlError::bad_request("the authorization URL is not a URL"))?;
        let request: super::consent::ConsentRequest =
            serde_urlencoded::from_str(url.query().unwrap_or("")).map_err(|_| {
                GhlError::bad_request("the authorization URL's query is unreadable")
            })?;
        super::consent::approve(self, &request)
    }

    /// The refresh token that works now.
    pub fn current_refresh_token(&self) -> SecretString {
        self.tokens().current_refresh_token()
    }

    /// The switches in force.
    pub fn switches(&self) -> GhlSwitches {
        self.read(|s| s.switches.clone())
    }

    /// Replaces the switches.
    pub fn set_switches(&self, switches: GhlSwitches) {
        // Not an edit of GHL data: nothing to publish, so no events can be lost here.
        let _ = self.edit(false, |s, _| {
            s.switches = switches;
            Ok(())
        });
    }

    /// The whole state as JSON (no secrets).
    pub fn snapshot(&self) -> Value {
        self.read(|s| s.snapshot())
    }
}

/// The `/_sim/` routes.
pub fn admin_routes() -> Router<GhlFakeState> {
    Router::new()
        .route("/_sim/state", get(state_json))
        .route("/_sim/counters", get(counters).delete(reset_counters))
        .route("/_sim/oauth", get(oauth))
        .route("/_sim/faults", get(faults).put(set_faults))
        .route("/_sim/faults/burst429", post(burst))
        .route("/_sim/switches", get(switches).put(set_switches))
        .route("/_sim/webhooks", get(webhooks).post(register))
        .route("/_sim/webhooks/log", get(webhook_log).delete(clear_log))
        .route("/_sim/contacts", post(create_contact))
        .route("/_sim/contacts/{contactId}/tasks", post(create_task))
        .route(
            "/_sim/contacts/{contactId}/tags",
            post(add_tags).delete(remove_tags),
        )
        .route("/_sim/contacts/{contactId}/notes", post(add_note))
        .route(
            "/_sim/contacts/{contactId}/appointments",
            post(add_appointment),
        )
        .route("/_sim/notes/{noteId}", put(edit_note))
        .route("/_sim/tasks/{taskId}/complete", post(complete))
        .route("/_sim/tasks/{taskId}/reopen", post(reopen))
        .route("/_sim/tasks/{taskId}/assign", post(assign))
}

type Answer = Result<Json<Value>, GhlError>;

async fn state_json(State(state): State<GhlFakeState>) -> Json<Value> {
    Json(state.snapshot())
}

async fn counters(State(state): State<GhlFakeState>) -> Json<Value> {
    Json(json!(state.counter_snapshot()))
}

async fn reset_counters(State(state): State<GhlFakeState>) -> StatusCode {
    state.counters().reset();
    StatusCode::NO_CONTENT
}

async fn oauth(State(state): State<GhlFakeState>) -> Json<Value> {
    Json(json!({ "refreshes": state.refresh_count(), "installs": state.install_count() }))
}

async fn faults(State(state): State<GhlFakeState>) -> Json<Value> {
    Json(json!(state.faults().get()))
}

async fn set_faults(State(state): State<GhlFakeState>, body: Bytes) -> Answer {
    let faults: Faults =
        serde_json::from_slice(&body).map_err(|e| GhlError::bad_request(format!("faults: {e}")))?;
    state.set_faults(faults.clone());
    Ok(Json(json!(faults)))
}

async fn burst(State(state): State<GhlFakeState>, body: Bytes) -> Answer {
    let body = json_body(&body)?;
    let count = body.get("count").and_then(Value::as_u64).ok_or_else(|| {
        GhlError::bad_request("send {\"count\": N} to answer the next N requests with 429")
    })?;
    state.burst_429(u32::try_from(count).unwrap_or(u32::MAX));
    Ok(Json(json!({ "count": count })))
}

async fn switches(State(state): State<GhlFakeState>) -> Json<Value> {
    Json(json!(state.switches()))
}

async fn set_switches(State(state): State<GhlFakeState>, body: Bytes) -> Answer {
    let switches: GhlSwitches = serde_json::from_slice(&body)
        .map_err(|e| GhlError::bad_request(format!("switches: {e}")))?;
    state.set_switches(switches.clone());
    Ok(Json(json!(switches)))
}

async fn webhooks(State(state): State<GhlFakeState>) -> Json<Value> {
    Json(json!({
        "urls": state.outbox().urls(),
        "publicKey": state.public_key_base64(),
    }))
}

async fn register(State(state): State<GhlFakeState>, body: Bytes) -> Answer {
    let body = json_body(&body)?;
    let url = body
        .get("url")
        .and_then(Value::as_str)
        .ok_or_else(|| GhlError::bad_request("send {\"url\": \"http://…\"}"))?;
    state.register_webhook(url);
    Ok(Json(json!({ "urls": state.outbox().urls() })))
}

async fn webhook_log(State(state): State<GhlFakeState>) -> Json<Value> {
    Json(json!({ "deliveries": state.webhook_log(), "events": state.webhook_events() }))
}

async fn clear_log(State(state): State<GhlFakeState>) -> StatusCode {
    state.outbox().clear_log();
    StatusCode::NO_CONTENT
}

async fn create_contact(State(state): State<GhlFakeState>, body: Bytes) -> Answer {
    Ok(Json(
        json!({ "contact": state.create_contact(&json_body(&body)?)? }),
    ))
}

async fn add_appointment(
    State(state): State<GhlFakeState>,
    Path(contact): Path<String>,
    body: Bytes,
) -> Answer {
    Ok(Json(json!({
        "event": state.add_appointment(&contact, &json_body(&body)?)?
    })))
}

async fn create_task(
    State(state): State<GhlFakeState>,
    Path(contact): Path<String>,
    body: Bytes,
) -> Answer {
    Ok(Json(
        json!({ "task": state.create_task(&contact, &json_body(&body)?)? }),
    ))
}

fn tags_in(body: &Value) -> Result<Vec<String>, GhlError> {
    body.get("tags")
        .and_then(Value::as_array)
        .map(|tags| {
            tags.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .ok_or_else(|| GhlError::bad_request("send {\"tags\": [\"…\"]}"))
}

async fn add_tags(
    State(state): State<GhlFakeState>,
    Path(contact): Path<String>,
    body: Bytes,
) -> Answer {
    let mut all = Vec::new();
    for tag in tags_in(&json_body(&body)?)? {
        all = state.add_contact_tag(&contact, &tag)?;
    }
    Ok(Json(json!({ "tags": all })))
}

async fn remove_tags(
    State(state): State<GhlFakeState>,
    Path(contact): Path<String>,
    body: Bytes,
) -> Answer {
    let mut all = Vec::new();
    for tag in tags_in(&json_body(&body)?)? {
        all = state.remove_contact_tag(&contact, &tag)?;
    }
    Ok(Json(json!({ "tags": all })))
}

fn text_body(body: &Value) -> Result<&str, GhlError> {
    body.get("body")
        .and_then(Value::as_str)
        .ok_or_else(|| GhlError::bad_request("send {\"body\": \"…\"}"))
}

async fn add_note(
    State(state): State<GhlFakeState>,
    Path(contact): Path<String>,
    body: Bytes,
) -> Answer {
    let body = json_body(&body)?;
    Ok(Json(
        json!({ "note": state.add_note(&contact, text_body(&body)?)? }),
    ))
}

async fn edit_note(
    State(state): State<GhlFakeState>,
    Path(note): Path<String>,
    body: Bytes,
) -> Answer {
    let body = json_body(&body)?;
    Ok(Json(
        json!({ "note": state.edit_note(&note, text_body(&body)?)? }),
    ))
}

async fn complete(State(state): State<GhlFakeState>, Path(task): Path<String>) -> Answer {
    Ok(Json(json!({ "task": state.complete_task(&task)? })))
}

async fn reopen(State(state): State<GhlFakeState>, Path(task): Path<String>) -> Answer {
    Ok(Json(json!({ "task": state.reopen_task(&task)? })))
}

async fn assign(
    State(state): State<GhlFakeState>,
    Path(task): Path<String>,
    body: Bytes,
) -> Answer {
    let body = json_body(&body)?;
    let user = body
        .get("assignedTo")
        .and_then(Value::as_str)
        .ok_or_else(|| GhlError::bad_request("send {\"assignedTo\": \"<user id>\"}"))?;
    Ok(Json(json!({ "task": state.assign_task(&task, user)? })))
}

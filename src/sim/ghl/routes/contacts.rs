//! Contact routes: get, create, upsert, update, delete, duplicate lookup, search, tag
//! add/remove (ghl-api.md §3 \[spec S1\]), and the contact's appointments (§6).

use std::collections::BTreeMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::sim::ghl::error::GhlError;
use crate::sim::ghl::model::{Contact, say_field_value};
use crate::sim::ghl::search;
use crate::sim::ghl::server::{GhlFakeState, json_body};
use crate::sim::ghl::state::ContactInput;

type Answer = Result<(StatusCode, Json<Value>), GhlError>;

fn ok(body: Value) -> Answer {
    Ok((StatusCode::OK, Json(body)))
}

/// A contact as reads show it: the spec's `{id, value}` custom fields, or `{id, fieldValue}`
/// under `custom_field_reads_say_field_value`.
fn shown(state: &GhlFakeState, contact: &Contact) -> Value {
    let mut json = contact.to_json();
    if state.read(|s| s.switches.custom_field_reads_say_field_value)
        && let Value::Object(map) = &mut json
    {
        say_field_value(map);
    }
    json
}

/// `GET /contacts/{contactId}` → `{contact}`.
pub async fn get_one(State(state): State<GhlFakeState>, Path(id): Path<String>) -> Answer {
    let contact = state.read(|s| s.contact(&id).cloned())?;
    ok(json!({ "contact": shown(&state, &contact) }))
}

/// `POST /contacts/` → 201 `{contact}`; `locationId` required.
pub async fn create(State(state): State<GhlFakeState>, body: Bytes) -> Answer {
    let body = json_body(&body)?;
    let location = required_location(&body)?;
    state.check_location(location)?;
    let input = ContactInput::from_json(&body)?;
    let contact = state.edit(true, |s, now| s.create_contact(now, &input))?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "contact": shown(&state, &contact) })),
    ))
}

/// `POST /contacts/upsert` → `{new, contact, traceId}`.
pub async fn upsert(State(state): State<GhlFakeState>, body: Bytes) -> Answer {
    let body = json_body(&body)?;
    let location = required_location(&body)?;
    state.check_location(location)?;
    let input = ContactInput::from_json(&body)?;
    let has_email = body
        .get("email")
        .and_then(Value::as_str)
        .is_some_and(|e| !e.trim().is_empty());
    if !has_email && !state.read(|s| s.switches.upsert_phone_only_accepted) {
        return Err(GhlError::unprocessable(vec![
            "email must be an email".into(),
            "email should not be empty".into(),
        ]));
    }
    let allow_new = body
        .get("createNewIfDuplicateAllowed")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let (new, contact) = state.edit(true, |s, now| s.upsert_contact(now, &input, allow_new))?;
    ok(json!({
        "new": new,
        "contact": shown(&state, &contact),
        "traceId": uuid::Uuid::new_v4().to_string(),
    }))
}

/// `PUT /contacts/{contactId}` → `{succeded, contact}`; `tags` replaces the list.
pub async fn update(
    State(state): State<GhlFakeState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Answer {
    let body = json_body(&body)?;
    if body.get("locationId").is_some() {
        // UpdateContactDto has no locationId; GHL's whitelisting validator refuses it.
        return Err(GhlError::unprocessable(vec![
            "property locationId should not exist".into(),
        ]));
    }
    let input = ContactInput::from_json(&body)?;
    let contact = state.edit(true, |s, now| s.update_contact(now, &id, &input))?;
    // The spec's spelling (ghl-api.md §3.1).
    ok(json!({ "succeded": true, "contact": shown(&state, &contact) }))
}

/// `DELETE /contacts/{contactId}` → `{succeded: true}`.
pub async fn delete(State(state): State<GhlFakeState>, Path(id): Path<String>) -> Answer {
    state.edit(true, |s, now| s.delete_contact(now, &id))?;
    ok(json!({ "succeded": true }))
}

/// `GET /contacts/search/duplicate?locationId&email&number` → `{contact}` (the contact or
/// null). The spec leaves the answer untyped; this shape is a reconstruction \[recon\].
pub async fn duplicate(
    State(state): State<GhlFakeState>,
    Query(query): Query<BTreeMap<String, String>>,
) -> Answer {
    let Some(location) = query.get("locationId") else {
        return Err(GhlError::unprocessable(vec![
            "locationId should not be empty".into(),
        ]));
    };
    state.check_location(location)?;
    let email = query.get("email").map(String::as_str);
    let number = query.get("number").map(String::as_str);
    let contact = state.read(|s| s.find_duplicate(email, number).cloned());
    ok(json!({ "contact": contact.map(|c| shown(&state, &c)) }))
}

/// `POST /contacts/search` → `{contacts, total}` from the lagging index.
pub async fn search(State(state): State<GhlFakeState>, body: Bytes) -> Answer {
    let body = json_body(&body)?;
    if let Some(location) = search::location_of(&body)
        && !location.is_empty()
    {
        state.check_location(location)?;
    }
    let now = state.now();
    let page = state.read(|s| search::search(&s.search_view(now), &body, &s.switches))?;
    let mut page = page.to_json();
    if state.read(|s| s.switches.custom_field_reads_say_field_value)
        && let Some(Value::Array(hits)) = page.get_mut("contacts")
    {
        hits.iter_mut()
            .filter_map(Value::as_object_mut)
            .for_each(say_field_value);
    }
    ok(page)
}

/// `GET /contacts/{contactId}/appointments` → `{events}` (`GetEventsSuccessfulResponseDto`,
/// scope `contacts.readonly`, ghl-api.md §6); times naive in the location's zone under
/// `appointment_times_naive`.
pub async fn appointments(State(state): State<GhlFakeState>, Path(id): Path<String>) -> Answer {
    let events = state.read(|s| s.appointments_of(&id))?;
    ok(json!({ "events": events }))
}

/// `POST /contacts/{contactId}/tags {tags}` → 201 `{tags}`.
pub async fn add_tags(
    State(state): State<GhlFakeState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Answer {
    let tags = tags_of(&json_body(&body)?)?;
    let (changed, all) = state.edit(true, |s, now| s.add_tags(now, &id, &tags))?;
    let echo = state.read(|s| s.switches.tag_writes_echo_full_list);
    let tags = if echo { all } else { changed };
    Ok((StatusCode::CREATED, Json(json!({ "tags": tags }))))
}

/// `DELETE /contacts/{contactId}/tags` with a JSON body `{tags}` → `{tags}`.
pub async fn remove_tags(
    State(state): State<GhlFakeState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Answer {
    let tags = tags_of(&json_body(&body)?)?;
    let (changed, all) = state.edit(true, |s, now| s.remove_tags(now, &id, &tags))?;
    let echo = state.read(|s| s.switches.tag_writes_echo_full_list);
    let tags = if echo { all } else { changed };
    ok(json!({ "tags": tags }))
}

fn tags_of(body: &Value) -> Result<Vec<String>, GhlError> {
    match body.get("tags") {
        Some(Value::Array(items)) if items.iter().all(Value::is_string) => Ok(items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect()),
        Some(Value::Array(_)) => Err(GhlError::unprocessable(vec![
            "each value in tags must be a string".into(),
        ])),
        _ => Err(GhlError::unprocessable(vec![
            "tags should not be empty".into(),
            "tags must be an array".into(),
        ])),
    }
}

fn required_location(body: &Value) -> Result<&str, GhlError> {
    match body.get("locationId").and_then(Value::as_str) {
        Some(location) if !location.is_empty() => Ok(location),
        _ => Err(GhlError::unprocessable(vec![
            "locationId should not be empty".into(),
            "locationId must be a string".into(),
        ])),
    }
}

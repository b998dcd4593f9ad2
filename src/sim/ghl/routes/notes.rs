//! Note routes: list/get/create/update/delete on a contact (ghl-api.md §5 \[spec S1\]).

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::sim::ghl::error::GhlError;
use crate::sim::ghl::server::{GhlFakeState, json_body};

type Answer = Result<(StatusCode, Json<Value>), GhlError>;

fn ok(body: Value) -> Answer {
    Ok((StatusCode::OK, Json(body)))
}

/// `GET /contacts/{contactId}/notes` → `{notes}` (no paging in the spec).
pub async fn list(State(state): State<GhlFakeState>, Path(contact): Path<String>) -> Answer {
    let notes = state.read(|s| {
        s.notes_of(&contact)
            .map(|notes| notes.iter().map(|n| n.to_json()).collect::<Vec<_>>())
    })?;
    ok(json!({ "notes": notes }))
}

/// `GET /contacts/{contactId}/notes/{id}` → `{note}`.
pub async fn get_one(
    State(state): State<GhlFakeState>,
    Path((contact, note)): Path<(String, String)>,
) -> Answer {
    let note = state.read(|s| s.note(&contact, &note).map(|n| n.to_json()))?;
    ok(json!({ "note": note }))
}

/// `POST /contacts/{contactId}/notes {body, userId?, …}` → 201 `{note}`.
pub async fn create(
    State(state): State<GhlFakeState>,
    Path(contact): Path<String>,
    body: Bytes,
) -> Answer {
    let body = json_body(&body)?;
    let note = state.edit(true, |s, now| s.create_note(now, &contact, &body))?;
    Ok((StatusCode::CREATED, Json(json!({ "note": note.to_json() }))))
}

/// `PUT /contacts/{contactId}/notes/{id}` → `{note}`.
pub async fn update(
    State(state): State<GhlFakeState>,
    Path((contact, note)): Path<(String, String)>,
    body: Bytes,
) -> Answer {
    let body = json_body(&body)?;
    let note = state.edit(true, |s, now| s.update_note(now, &contact, &note, &body))?;
    ok(json!({ "note": note.to_json() }))
}

/// `DELETE /contacts/{contactId}/notes/{id}` → `{succeded: true}`.
pub async fn delete(
    State(state): State<GhlFakeState>,
    Path((contact, note)): Path<(String, String)>,
) -> Answer {
    state.edit(true, |s, now| s.delete_note(now, &contact, &note))?;
    ok(json!({ "succeded": true }))
}

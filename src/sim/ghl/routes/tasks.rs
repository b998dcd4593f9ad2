//! Task routes: per-contact list/get/create/update/complete/delete and the location-wide
//! task search (ghl-api.md §4 \[spec S1, S2\]).

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::sim::ghl::activity::{TaskInput, TaskQuery};
use crate::sim::ghl::error::GhlError;
use crate::sim::ghl::server::{GhlFakeState, json_body};

type Answer = Result<(StatusCode, Json<Value>), GhlError>;

fn ok(body: Value) -> Answer {
    Ok((StatusCode::OK, Json(body)))
}

/// `GET /contacts/{contactId}/tasks` → `{tasks}`.
pub async fn list(State(state): State<GhlFakeState>, Path(contact): Path<String>) -> Answer {
    let tasks = state.read(|s| {
        s.tasks_of(&contact)
            .map(|tasks| tasks.iter().map(|t| t.to_json()).collect::<Vec<_>>())
    })?;
    ok(json!({ "tasks": tasks }))
}

/// `GET /contacts/{contactId}/tasks/{taskId}` → `{task}`.
pub async fn get_one(
    State(state): State<GhlFakeState>,
    Path((contact, task)): Path<(String, String)>,
) -> Answer {
    let task = state.read(|s| s.task(&contact, &task).map(|t| t.to_json()))?;
    ok(json!({ "task": task }))
}

/// `POST /contacts/{contactId}/tasks` → 201 `{task, traceId}`; `title`, `dueDate` and
/// `completed` are required.
pub async fn create(
    State(state): State<GhlFakeState>,
    Path(contact): Path<String>,
    body: Bytes,
) -> Answer {
    let input = TaskInput::from_json(&json_body(&body)?, true)?;
    let task = state.edit(true, |s, now| s.create_task(now, &contact, &input))?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "task": task.to_json(), "traceId": uuid::Uuid::new_v4().to_string() })),
    ))
}

/// `PUT /contacts/{contactId}/tasks/{taskId}` → `{task}`.
pub async fn update(
    State(state): State<GhlFakeState>,
    Path((contact, task)): Path<(String, String)>,
    body: Bytes,
) -> Answer {
    let body = json_body(&body)?;
    if !state.read(|s| s.switches.task_update_partial_accepted) {
        let mut problems = Vec::new();
        if body.get("title").and_then(Value::as_str).is_none() {
            problems.push("title should not be empty".to_string());
        }
        match body.get("dueDate").and_then(Value::as_str) {
            None => problems.push("dueDate should not be empty".to_string()),
            Some(due) if due.contains('.') => {
                problems.push("dueDate must be a valid ISO 8601 date string".to_string());
            }
            Some(_) => {}
        }
        if !problems.is_empty() {
            return Err(GhlError::unprocessable(problems));
        }
    }
    let input = TaskInput::from_json(&body, false)?;
    let task = state.edit(true, |s, now| s.update_task(now, &contact, &task, &input))?;
    ok(json!({ "task": task.to_json() }))
}

/// `PUT /contacts/{contactId}/tasks/{taskId}/completed {completed}` → `{task}`.
pub async fn completed(
    State(state): State<GhlFakeState>,
    Path((contact, task)): Path<(String, String)>,
    body: Bytes,
) -> Answer {
    let body = json_body(&body)?;
    let Some(completed) = body.get("completed").and_then(Value::as_bool) else {
        return Err(GhlError::unprocessable(vec![
            "completed must be a boolean value".into(),
        ]));
    };
    let task = state.edit(true, |s, now| {
        s.set_task_completed(now, &contact, &task, completed)
    })?;
    ok(json!({ "task": task.to_json() }))
}

/// `DELETE /contacts/{contactId}/tasks/{taskId}` → `{succeded: true}`.
pub async fn delete(
    State(state): State<GhlFakeState>,
    Path((contact, task)): Path<(String, String)>,
) -> Answer {
    state.edit(true, |s, now| s.delete_task(now, &contact, &task))?;
    ok(json!({ "succeded": true }))
}

/// `POST /locations/{locationId}/tasks/search` → `{tasks}`, offset-paged by `skip`/`limit`.
/// The spec types the items as arrays (a spec defect, ghl-api.md §4.1); real answers carry
/// task objects with `contactId` \[obs #332\], as here.
pub async fn search(
    State(state): State<GhlFakeState>,
    Path(location): Path<String>,
    body: Bytes,
) -> Answer {
    state.check_location(&location)?;
    let query = TaskQuery::from_json(&json_body(&body)?)?;
    let tasks = state.read(|s| {
        s.search_tasks(&query)
            .into_iter()
            .map(|t| t.to_json())
            .collect::<Vec<_>>()
    });
    ok(json!({ "tasks": tasks }))
}

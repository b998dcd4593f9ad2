//! The Trengo fake's admin surface over HTTP, under `/_sim/` (no auth, not counted, no
//! faults): the same edits as the in-process methods of [`TrengoSimState`], for the `sim`
//! command and for tests in other processes.
//!
//! | method and path | does |
//! |---|---|
//! | `POST /_sim/tickets` `{contact_id, channel_id, subject?, message}` | a customer writes in |
//! | `POST /_sim/tickets/{id}/close`, `/reopen` | an agent closes / reopens |
//! | `POST /_sim/tickets/{id}/assign` `{user_id}` | a supervisor assigns it to an agent |
//! | `POST /_sim/tickets/{id}/labels` `{label_id}` | an agent attaches a label |
//! | `DELETE /_sim/tickets/{id}/labels/{label_id}` | an agent detaches it |
//! | `POST /_sim/tickets/{id}/notes` `{message}` | an agent writes an internal note |
//! | `POST /_sim/tickets/{id}/customer_messages` `{message}` | the customer writes |
//! | `GET/PUT /_sim/faults`, `POST /_sim/faults/burst_429` `{count}` | faults |
//! | `GET/DELETE /_sim/counters` | request counters |
//! | `GET/DELETE /_sim/webhooks/log` | webhook delivery log |
//! | `GET/PUT /_sim/switches` | switches |
//! | `POST /_sim/seed` `{contacts, tickets, …}` | reseed the world |
//! | `GET /_sim/state` | the whole world as JSON |

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use serde::Deserialize;
use serde_json::json;

use crate::sim::faults::Faults;

use super::http::{ApiError, Fields};
use super::options::TrengoSwitches;
use super::seed::SeedSpec;
use super::sim::{CustomerTicket, TrengoSimState};

type Answer = Result<Response, ApiError>;

/// The `/_sim/` routes.
pub fn routes() -> Router<TrengoSimState> {
    Router::new()
        .route("/_sim/tickets", post(create_ticket))
        .route("/_sim/tickets/{id}", delete(delete_ticket))
        .route("/_sim/tickets/{id}/merge", post(merge))
        .route("/_sim/tickets/{id}/channel", post(move_ticket))
        .route("/_sim/tickets/{id}/close", post(close))
        .route("/_sim/tickets/{id}/reopen", post(reopen))
        .route("/_sim/tickets/{id}/assign", post(assign))
        .route("/_sim/tickets/{id}/labels", post(add_label))
        .route("/_sim/tickets/{id}/labels/{label_id}", delete(remove_label))
        .route("/_sim/tickets/{id}/notes", post(note))
        .route(
            "/_sim/tickets/{id}/customer_messages",
            post(customer_message),
        )
        .route("/_sim/faults", get(faults).put(set_faults))
        .route("/_sim/faults/burst_429", post(burst))
        .route("/_sim/counters", get(counters).delete(reset_counters))
        .route(
            "/_sim/webhooks/log",
            get(webhook_log).delete(reset_webhook_log),
        )
        .route("/_sim/switches", get(switches).put(set_switches))
        .route("/_sim/seed", post(seed))
        .route("/_sim/state", get(state))
}

fn done() -> Answer {
    Ok(Json(json!({"ok": true})).into_response())
}

fn bad_json(e: impl std::fmt::Display) -> ApiError {
    ApiError {
        status: StatusCode::UNPROCESSABLE_ENTITY,
        body: json!({"message": format!("The admin request body is not valid: {e}")}),
    }
}

async fn create_ticket(State(sim): State<TrengoSimState>, body: String) -> Answer {
    let new: CustomerTicket = serde_json::from_str(&body).map_err(bad_json)?;
    let id = sim.create_ticket(&new)?;
    Ok((StatusCode::CREATED, Json(json!({"id": id}))).into_response())
}

async fn close(State(sim): State<TrengoSimState>, Path(id): Path<i64>) -> Answer {
    sim.close_ticket(id)?;
    done()
}

async fn delete_ticket(State(sim): State<TrengoSimState>, Path(id): Path<i64>) -> Answer {
    sim.delete_ticket(id)?;
    done()
}

/// Merges the ticket named by `source_ticket_id` into `{id}`, as an agent would.
async fn merge(State(sim): State<TrengoSimState>, Path(id): Path<i64>, fields: Fields) -> Answer {
    sim.merge_tickets(id, fields.required_int("source_ticket_id")?)?;
    done()
}

async fn move_ticket(
    State(sim): State<TrengoSimState>,
    Path(id): Path<i64>,
    fields: Fields,
) -> Answer {
    sim.move_ticket(id, fields.required_int("channel_id")?)?;
    done()
}

async fn reopen(State(sim): State<TrengoSimState>, Path(id): Path<i64>) -> Answer {
    sim.reopen_ticket(id)?;
    done()
}

async fn assign(State(sim): State<TrengoSimState>, Path(id): Path<i64>, fields: Fields) -> Answer {
    sim.assign_ticket(id, fields.required_int("user_id")?)?;
    done()
}

async fn add_label(
    State(sim): State<TrengoSimState>,
    Path(id): Path<i64>,
    fields: Fields,
) -> Answer {
    sim.add_label(id, fields.required_int("label_id")?)?;
    done()
}

async fn remove_label(
    State(sim): State<TrengoSimState>,
    Path((id, label_id)): Path<(i64, i64)>,
) -> Answer {
    sim.remove_label(id, label_id)?;
    done()
}

async fn note(State(sim): State<TrengoSimState>, Path(id): Path<i64>, fields: Fields) -> Answer {
    let message_id = sim.post_note(id, &fields.required_text("message")?)?;
    Ok(Json(json!({"id": message_id})).into_response())
}

async fn customer_message(
    State(sim): State<TrengoSimState>,
    Path(id): Path<i64>,
    fields: Fields,
) -> Answer {
    let message_id = sim.post_customer_message(id, &fields.required_text("message")?)?;
    Ok(Json(json!({"id": message_id})).into_response())
}

async fn faults(State(sim): State<TrengoSimState>) -> Answer {
    Ok(Json(sim.shared.faults.get()).into_response())
}

async fn set_faults(State(sim): State<TrengoSimState>, body: String) -> Answer {
    let faults: Faults = serde_json::from_str(&body).map_err(bad_json)?;
    sim.set_faults(faults);
    done()
}

#[derive(Deserialize)]
struct Burst {
    count: u32,
}

async fn burst(State(sim): State<TrengoSimState>, body: String) -> Answer {
    let burst: Burst = serde_json::from_str(&body).map_err(bad_json)?;
    sim.burst_429(burst.count);
    done()
}

async fn counters(State(sim): State<TrengoSimState>) -> Answer {
    Ok(Json(sim.counters()).into_response())
}

async fn reset_counters(State(sim): State<TrengoSimState>) -> Answer {
    sim.reset_counters();
    done()
}

async fn webhook_log(State(sim): State<TrengoSimState>) -> Answer {
    Ok(Json(sim.webhook_log()).into_response())
}

async fn reset_webhook_log(State(sim): State<TrengoSimState>) -> Answer {
    sim.reset_webhook_log();
    done()
}

async fn switches(State(sim): State<TrengoSimState>) -> Answer {
    Ok(Json(sim.switches()).into_response())
}

async fn set_switches(State(sim): State<TrengoSimState>, body: String) -> Answer {
    let switches: TrengoSwitches = serde_json::from_str(&body).map_err(bad_json)?;
    sim.set_switches(&switches);
    done()
}

async fn seed(State(sim): State<TrengoSimState>, body: String) -> Answer {
    let spec: SeedSpec = if body.trim().is_empty() {
        SeedSpec::default()
    } else {
        serde_json::from_str(&body).map_err(bad_json)?
    };
    sim.seed(&spec);
    done()
}

async fn state(State(sim): State<TrengoSimState>) -> Answer {
    Ok(Json(sim.snapshot()).into_response())
}

//! `/api/v2/tickets…` of the Trengo fake: the ticket list with its filters and drifting order,
//! single tickets, creation, status actions, labels on tickets, messages and ticket custom
//! fields (trengo-api.md §3, §4).

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{NaiveDateTime, TimeZone, Utc};
use serde_json::{Value, json};

use super::http::{ApiError, Fields, QueryPairs, empty_ok, simple_page};
use super::model::{MessageType, TrengoState};
use super::ops::Assignment;
use super::options::TrengoFakeOptions;
use super::render::Renderer;
use super::sim::TrengoSimState;

type Answer = Result<Response, ApiError>;

/// Items per page: `page_size`, or the client's `per_page` (1..=100) when the switch honours
/// it (trengo-api.md §3.2 \[U\]).
pub(crate) fn per_page(options: &TrengoFakeOptions, query: &QueryPairs) -> usize {
    let asked = query
        .get("per_page")
        .and_then(|p| p.trim().parse::<usize>().ok());
    match asked {
        Some(n) if options.per_page_honoured => n.clamp(1, 100),
        _ => options.page_size.max(1) as usize,
    }
}

/// `GET /tickets`: filters `status`, `contact_id`, `users[]`, `channels[]`, `labels[]`,
/// `last_message_type`, `updated_at_gt`; `sort` by last message time; unknown parameters,
/// `channel_id` included, are ignored (trengo-api.md §3.3).
pub async fn list(State(sim): State<TrengoSimState>, RawQuery(raw): RawQuery) -> Answer {
    let query = QueryPairs::parse(raw.as_deref());
    let path = format!("{}/tickets", sim.base_url());
    let page = sim.read(|world, options| {
        let render = Renderer {
            state: world,
            zone: options.zone,
        };
        let mut tickets = matching_tickets(world, options, &query);
        // Newest last message first unless `sort=date`; anything else is the default.
        if query.get("sort") == Some("date") {
            tickets.sort_by_key(|t| (t.sort_time(), t.id));
        } else {
            tickets.sort_by_key(|t| std::cmp::Reverse((t.sort_time(), t.id)));
        }
        simple_page(
            tickets,
            &query,
            per_page(options, &query),
            &path,
            options.next_link_keeps_filters,
            |t| render.ticket(t),
        )
    });
    Ok(Json(page).into_response())
}

fn matching_tickets<'a>(
    world: &'a TrengoState,
    options: &TrengoFakeOptions,
    query: &QueryPairs,
) -> Vec<&'a super::model::Ticket> {
    let status = query.get("status");
    let contact_id = query
        .get("contact_id")
        .and_then(|c| c.trim().parse::<i64>().ok());
    let users = query.ints("users");
    let channels = query.ints("channels");
    let labels = query.ints("labels");
    let last_type = query.get("last_message_type");
    // Only `YYYY-MM-DD HH:MM:SS` in the account zone is understood (§3.4 [OBS]); any other
    // format is ignored like an unknown parameter, the pessimistic reading of [U].
    let updated_after = query
        .get("updated_at_gt")
        .and_then(|v| NaiveDateTime::parse_from_str(v.trim(), "%Y-%m-%d %H:%M:%S").ok())
        .and_then(|naive| options.zone.from_local_datetime(&naive).earliest())
        .map(|t| t.with_timezone(&Utc));
    world
        .tickets
        .values()
        .filter(|t| !options.hidden_channels.contains(&t.channel_id))
        .filter(|t| status.is_none_or(|s| t.status.as_str() == s))
        .filter(|t| contact_id.is_none_or(|c| t.contact_id == c))
        .filter(|t| {
            users
                .as_ref()
                .is_none_or(|u| t.user_id.is_some_and(|id| u.contains(&id)))
        })
        .filter(|t| channels.as_ref().is_none_or(|c| c.contains(&t.channel_id)))
        .filter(|t| {
            labels
                .as_ref()
                .is_none_or(|l| t.label_ids.iter().any(|id| l.contains(id)))
        })
        .filter(|t| updated_after.is_none_or(|after| t.updated_at > after))
        .filter(|t| {
            last_type.is_none_or(|kind| {
                world
                    .ticket_messages(t.id)
                    .iter()
                    .find(|m| m.kind != MessageType::Note)
                    .is_some_and(|m| m.kind.as_str() == kind)
            })
        })
        .collect()
}

/// `GET /tickets/{id}`: the list item's shape (§4.4 \[ONE\]).
pub async fn show(State(sim): State<TrengoSimState>, Path(id): Path<i64>) -> Answer {
    let value = sim.ticket_json(id)?;
    Ok(Json(value).into_response())
}

/// `POST /tickets {channel_id, contact_id, subject}`: the raw model, assigned to the token
/// user (§4.2, §4.4 \[OBS\]).
pub async fn create(State(sim): State<TrengoSimState>, fields: Fields) -> Answer {
    let channel_id = fields.required_int("channel_id")?;
    let contact_id = fields.required_int("contact_id")?;
    let subject = fields.text("subject")?;
    let id = sim.edit(None, |w, e| {
        w.create_ticket_via_api(e, channel_id, contact_id, subject)
    })?;
    let value = sim.read(|world, options| {
        let render = Renderer {
            state: world,
            zone: options.zone,
        };
        world.ticket(id).map(|t| render.ticket_raw(t))
    })?;
    Ok((StatusCode::CREATED, Json(value)).into_response())
}

/// `POST /tickets/{id}/assign {type, user_id?, team_id?, note?}`.
pub async fn assign(
    State(sim): State<TrengoSimState>,
    Path(id): Path<i64>,
    fields: Fields,
) -> Answer {
    let kind = fields.text("type")?;
    let mut assignment = Assignment {
        user_id: fields.int("user_id")?,
        team_id: fields.int("team_id")?,
        note: fields.text("note")?,
    };
    match kind.as_deref() {
        Some("user") => {
            assignment.team_id = None;
            if assignment.user_id.is_none() {
                return Err(super::model::SimError::required("user_id").into());
            }
        }
        Some("team") => {
            assignment.user_id = None;
            if assignment.team_id.is_none() {
                return Err(super::model::SimError::required("team_id").into());
            }
        }
        _ => {}
    }
    sim.edit(None, |w, e| Ok(((), w.assign_ticket(e, id, assignment)?)))?;
    Ok(empty_ok())
}

/// `POST /tickets/{id}/close` (`ticket_result_id` accepted and ignored).
pub async fn close(State(sim): State<TrengoSimState>, Path(id): Path<i64>) -> Answer {
    sim.edit(None, |w, e| Ok(((), w.close_ticket(e, id)?)))?;
    Ok(empty_ok())
}

/// `POST /tickets/{id}/reopen`.
pub async fn reopen(State(sim): State<TrengoSimState>, Path(id): Path<i64>) -> Answer {
    sim.edit(None, |w, e| Ok(((), w.reopen_ticket(e, id)?)))?;
    Ok(empty_ok())
}

/// `POST /tickets/{id}/spam`.
pub async fn mark_spam(State(sim): State<TrengoSimState>, Path(id): Path<i64>) -> Answer {
    sim.edit(None, |w, e| Ok(((), w.mark_spam(e, id)?)))?;
    Ok(empty_ok())
}

/// `DELETE /tickets/{id}/spam`.
pub async fn unmark_spam(State(sim): State<TrengoSimState>, Path(id): Path<i64>) -> Answer {
    sim.edit(None, |w, e| Ok(((), w.unmark_spam(e, id)?)))?;
    Ok(empty_ok())
}

/// `GET /tickets/{id}/labels`: `{data: [label…]}` (§4.4 \[ONE\]).
pub async fn labels(State(sim): State<TrengoSimState>, Path(id): Path<i64>) -> Answer {
    let value = sim.read(|world, options| {
        let render = Renderer {
            state: world,
            zone: options.zone,
        };
        let ticket = world.ticket(id)?;
        let labels: Vec<Value> = ticket
            .label_ids
            .iter()
            .filter_map(|l| world.labels.get(l))
            .map(|l| render.label(l))
            .collect();
        Ok::<_, super::model::SimError>(json!({ "data": labels }))
    })?;
    Ok(Json(value).into_response())
}

/// `POST /tickets/{id}/labels {label_id}`: one label per call (§4.4 \[CLI\]); an array of
/// labels is refused as Laravel's `integer` rule would.
pub async fn attach_label(
    State(sim): State<TrengoSimState>,
    Path(id): Path<i64>,
    fields: Fields,
) -> Answer {
    let label_id = fields.required_int("label_id")?;
    sim.edit(None, |w, e| Ok(((), w.attach_label(e, id, label_id)?)))?;
    Ok(empty_ok())
}

/// `DELETE /tickets/{id}/labels/{label_id}`.
pub async fn detach_label(
    State(sim): State<TrengoSimState>,
    Path((id, label_id)): Path<(i64, i64)>,
) -> Answer {
    sim.edit(None, |w, e| Ok(((), w.detach_label(e, id, label_id)?)))?;
    Ok(empty_ok())
}

/// `GET /tickets/{id}/messages`: newest first, paginated (§4.5 \[OBS\]).
pub async fn messages(
    State(sim): State<TrengoSimState>,
    Path(id): Path<i64>,
    RawQuery(raw): RawQuery,
) -> Answer {
    let query = QueryPairs::parse(raw.as_deref());
    let path = format!("{}/tickets/{id}/messages", sim.base_url());
    let page = sim.read(|world, options| {
        world.ticket(id)?;
        let render = Renderer {
            state: world,
            zone: options.zone,
        };
        Ok::<_, super::model::SimError>(simple_page(
            world.ticket_messages(id),
            &query,
            per_page(options, &query),
            &path,
            options.next_link_keeps_filters,
            |m| render.message(m),
        ))
    })?;
    Ok(Json(page).into_response())
}

/// `GET /tickets/{id}/messages/{message_id}`.
pub async fn message(
    State(sim): State<TrengoSimState>,
    Path((id, message_id)): Path<(i64, i64)>,
) -> Answer {
    let value = sim.read(|world, options| {
        world.ticket(id)?;
        let message = world
            .messages
            .get(&message_id)
            .filter(|m| m.ticket_id == id)
            .ok_or(super::model::SimError::not_found("Message", message_id))?;
        Ok::<_, super::model::SimError>(
            Renderer {
                state: world,
                zone: options.zone,
            }
            .message(message),
        )
    })?;
    Ok(Json(value).into_response())
}

/// `POST /tickets/{id}/messages {message, internal_note?}`: `internal_note: true` makes a
/// NOTE; anything else is sent to the customer as OUTBOUND (§4.5 \[OBS\]). Answers
/// `{"message": {…}}`.
pub async fn post_message(
    State(sim): State<TrengoSimState>,
    Path(id): Path<i64>,
    fields: Fields,
) -> Answer {
    let text = fields.required_text("message")?;
    let kind = if fields.flag("internal_note") {
        MessageType::Note
    } else {
        MessageType::Outbound
    };
    let message_id = sim.edit(None, |w, e| w.add_message(e, id, kind, &text))?;
    let value = sim.read(|world, options| {
        let render = Renderer {
            state: world,
            zone: options.zone,
        };
        world
            .messages
            .get(&message_id)
            .map(|m| render.created_message(m))
            .unwrap_or(Value::Null)
    });
    Ok(Json(json!({ "message": value })).into_response())
}

/// `POST /tickets/{id}/custom_fields {custom_field_id, value}`.
pub async fn set_custom_field(
    State(sim): State<TrengoSimState>,
    Path(id): Path<i64>,
    fields: Fields,
) -> Answer {
    let (field_id, value) = super::api_directory::custom_field_write(&fields)?;
    sim.edit(None, |w, e| {
        w.set_ticket_custom_field(e, id, field_id, value)
            .map(|()| ((), Vec::new()))
    })?;
    Ok(empty_ok())
}

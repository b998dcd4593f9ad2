//! The Trengo fake's account-level endpoints: labels, contacts, profiles, custom fields,
//! users, teams, channels and webhook management (trengo-api.md §5–§8, §10.1).

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::api_tickets::per_page;
use super::http::{ApiError, Fields, QueryPairs, empty_ok, full_page, simple_page};
use super::model::{Contact, EventType, Label, Profile, SimError, TrengoState, Webhook, id_start};
use super::render::Renderer;
use super::seed::slugify;
use super::sim::TrengoSimState;

type Answer = Result<Response, ApiError>;

/// Renders one simple-paginated list of `items(world)` with `render`.
fn list_of<T>(
    sim: &TrengoSimState,
    raw: Option<String>,
    path: &str,
    items: impl FnOnce(&TrengoState) -> Vec<&T>,
    render: impl Fn(&Renderer<'_>, &T) -> Value,
) -> Answer {
    let query = QueryPairs::parse(raw.as_deref());
    let path = format!("{}{path}", sim.base_url());
    let page = sim.read(|world, options| {
        let renderer = Renderer {
            state: world,
            zone: options.zone,
        };
        simple_page(
            items(world),
            &query,
            per_page(options, &query),
            &path,
            options.next_link_keeps_filters,
            |item| render(&renderer, item),
        )
    });
    Ok(Json(page).into_response())
}

fn one<T>(
    sim: &TrengoSimState,
    find: impl FnOnce(&TrengoState) -> Result<&T, SimError>,
    render: impl Fn(&Renderer<'_>, &T) -> Value,
) -> Answer {
    let value = sim.read(|world, options| {
        let renderer = Renderer {
            state: world,
            zone: options.zone,
        };
        find(world).map(|item| render(&renderer, item))
    })?;
    Ok(Json(value).into_response())
}

// ----- labels (§5) -----

/// `GET /labels`.
pub async fn labels(State(sim): State<TrengoSimState>, RawQuery(raw): RawQuery) -> Answer {
    list_of(
        &sim,
        raw,
        "/labels",
        |w| w.labels.values().collect(),
        |r, l| r.label(l),
    )
}

/// `GET /labels/{id}`.
pub async fn label(State(sim): State<TrengoSimState>, Path(id): Path<i64>) -> Answer {
    one(&sim, |w| find_label(w, id), |r, l| r.label(l))
}

fn find_label(world: &TrengoState, id: i64) -> Result<&Label, SimError> {
    world
        .labels
        .get(&id)
        .ok_or(SimError::not_found("Label", id))
}

/// `POST /labels {name, color}`; names are unique per account.
pub async fn create_label(State(sim): State<TrengoSimState>, fields: Fields) -> Answer {
    let name = fields.required_text("name")?;
    let color = fields
        .text("color")?
        .unwrap_or_else(|| "#5D9CEC".to_owned());
    let id = sim.edit(None, |w, _| {
        if w.labels
            .values()
            .any(|l| l.name.eq_ignore_ascii_case(&name))
        {
            return Err(SimError::invalid(
                "name",
                "The name has already been taken.",
            ));
        }
        let id = w.next_id("label", id_start::LABEL);
        w.labels.insert(
            id,
            Label {
                id,
                slug: slugify(&name),
                name: name.clone(),
                color,
                sort_order: None,
            },
        );
        Ok((id, Vec::new()))
    })?;
    let answer = one(&sim, |w| find_label(w, id), |r, l| r.label(l))?;
    Ok((StatusCode::CREATED, answer).into_response())
}

/// `PUT /labels/{id} {name?, color?}`.
pub async fn update_label(
    State(sim): State<TrengoSimState>,
    Path(id): Path<i64>,
    fields: Fields,
) -> Answer {
    let name = fields.text("name")?;
    let color = fields.text("color")?;
    sim.edit(None, |w, _| {
        let label = w
            .labels
            .get_mut(&id)
            .ok_or(SimError::not_found("Label", id))?;
        if let Some(name) = name {
            label.slug = slugify(&name);
            label.name = name;
        }
        if let Some(color) = color {
            label.color = color;
        }
        Ok(((), Vec::new()))
    })?;
    one(&sim, |w| find_label(w, id), |r, l| r.label(l))
}

/// `DELETE /labels/{id}`: also takes it off every ticket, without webhooks (§10.2: label
/// definition changes have none).
pub async fn delete_label(State(sim): State<TrengoSimState>, Path(id): Path<i64>) -> Answer {
    sim.edit(None, |w, _| {
        w.labels
            .remove(&id)
            .ok_or(SimError::not_found("Label", id))?;
        for ticket in w.tickets.values_mut() {
            ticket.label_ids.retain(|l| *l != id);
        }
        Ok(((), Vec::new()))
    })?;
    Ok(empty_ok())
}

// ----- contacts (§6) -----

/// `GET /contacts?term=`: `term` matches name, e-mail or phone, case-insensitively.
pub async fn contacts(State(sim): State<TrengoSimState>, RawQuery(raw): RawQuery) -> Answer {
    let term = QueryPairs::parse(raw.as_deref())
        .get("term")
        .map(|t| t.trim().to_lowercase())
        .filter(|t| !t.is_empty());
    list_of(
        &sim,
        raw,
        "/contacts",
        |w| {
            w.contacts
                .values()
                .filter(|c| term.as_deref().is_none_or(|t| contact_matches(c, t)))
                .collect()
        },
        |r, c| r.contact(c),
    )
}

fn contact_matches(contact: &Contact, term: &str) -> bool {
    [
        Some(&contact.name),
        contact.email.as_ref(),
        contact.phone.as_ref(),
        Some(&contact.identifier),
    ]
    .into_iter()
    .flatten()
    .any(|v| v.to_lowercase().contains(term))
}

/// `GET /contacts/{id}`.
pub async fn contact(State(sim): State<TrengoSimState>, Path(id): Path<i64>) -> Answer {
    one(&sim, |w| find_contact(w, id), |r, c| r.contact(c))
}

fn find_contact(world: &TrengoState, id: i64) -> Result<&Contact, SimError> {
    world
        .contacts
        .get(&id)
        .ok_or(SimError::not_found("Contact", id))
}

/// `POST /channels/{channel_id}/contacts {identifier, name?}`: answers the existing contact
/// when the identifier is known (§6 \[OBS\]), else creates one.
pub async fn create_contact(
    State(sim): State<TrengoSimState>,
    Path(channel_id): Path<i64>,
    fields: Fields,
) -> Answer {
    let identifier = fields.required_text("identifier")?.trim().to_owned();
    let name = fields.text("name")?;
    let any_identifier = sim.options().email_identifier_on_any_channel;
    let (id, created) = sim.edit(None, |w, e| {
        let Some(channel) = w.channels.get(&channel_id) else {
            return Err(SimError::not_found("Channel", channel_id));
        };
        // The identifier is the channel's address: an e-mail on e-mail channels, a phone
        // number on WhatsApp, SMS and voice ones (trengo-api.md §6 [OBS]).
        if channel.kind == "EMAIL" && !identifier.contains('@') {
            return Err(SimError::invalid(
                "identifier",
                "The identifier must be a valid email address.",
            ));
        }
        if !any_identifier && channel.kind != "EMAIL" && identifier.contains('@') {
            return Err(SimError::invalid(
                "identifier",
                format!(
                    "The identifier must be a phone number for a {} channel.",
                    channel.kind
                ),
            ));
        }
        let known = w
            .contacts
            .values()
            .find(|c| c.identifier.eq_ignore_ascii_case(&identifier))
            .map(|c| c.id);
        if let Some(id) = known {
            if let Some(contact) = w.contacts.get_mut(&id)
                && !contact.channel_ids.contains(&channel_id)
            {
                contact.channel_ids.push(channel_id);
            }
            return Ok(((id, false), Vec::new()));
        }
        let id = w.next_id("contact", id_start::CONTACT);
        let is_email = identifier.contains('@');
        w.contacts.insert(
            id,
            Contact {
                id,
                name: name.clone().unwrap_or_else(|| identifier.clone()),
                email: is_email.then(|| identifier.to_lowercase()),
                phone: (!is_email).then(|| identifier.clone()),
                identifier: identifier.clone(),
                channel_ids: vec![channel_id],
                custom_field_values: Default::default(),
                profile_ids: Vec::new(),
                created_at: e.now,
                updated_at: e.now,
            },
        );
        Ok(((id, true), Vec::new()))
    })?;
    let answer = one(&sim, |w| find_contact(w, id), |r, c| r.contact(c))?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, answer).into_response())
}

/// `PUT /contacts/{id} {name?}`.
pub async fn update_contact(
    State(sim): State<TrengoSimState>,
    Path(id): Path<i64>,
    fields: Fields,
) -> Answer {
    let name = fields.text("name")?;
    sim.edit(None, |w, e| {
        let contact = w
            .contacts
            .get_mut(&id)
            .ok_or(SimError::not_found("Contact", id))?;
        if let Some(name) = name {
            contact.name = name;
        }
        contact.updated_at = e.now;
        Ok(((), Vec::new()))
    })?;
    one(&sim, |w| find_contact(w, id), |r, c| r.contact(c))
}

/// `POST /contacts/{id}/custom_fields {custom_field_id, value}`.
pub async fn set_contact_custom_field(
    State(sim): State<TrengoSimState>,
    Path(id): Path<i64>,
    fields: Fields,
) -> Answer {
    let (field_id, value) = custom_field_write(&fields)?;
    sim.edit(None, |w, e| {
        w.set_contact_custom_field(e, id, field_id, value)
            .map(|()| ((), Vec::new()))
    })?;
    Ok(empty_ok())
}

/// The `{custom_field_id, value}` body of a custom field write; a missing `value` is empty.
pub(super) fn custom_field_write(fields: &Fields) -> Result<(i64, String), SimError> {
    let field_id = fields.required_int("custom_field_id")?;
    let value = fields.text("value")?.unwrap_or_default();
    Ok((field_id, value))
}

// ----- profiles (§6) -----

/// `GET /profiles/{id}`.
pub async fn profile(State(sim): State<TrengoSimState>, Path(id): Path<i64>) -> Answer {
    one(&sim, |w| find_profile(w, id), |r, p| r.profile(p))
}

fn find_profile(world: &TrengoState, id: i64) -> Result<&Profile, SimError> {
    world
        .profiles
        .get(&id)
        .ok_or(SimError::not_found("Profile", id))
}

/// `POST /profiles/{id}/custom_fields {custom_field_id, value}`: PROFILE-type fields only
/// (another type's id is "The selected custom field id is invalid.", 422).
pub async fn set_profile_custom_field(
    State(sim): State<TrengoSimState>,
    Path(id): Path<i64>,
    fields: Fields,
) -> Answer {
    let (field_id, value) = custom_field_write(&fields)?;
    sim.edit(None, |w, e| {
        w.set_profile_custom_field(e, id, field_id, value)
            .map(|()| ((), Vec::new()))
    })?;
    Ok(empty_ok())
}

// ----- custom fields, users, teams, channels (§7, §8) -----

/// `GET /custom_fields`.
pub async fn custom_fields(State(sim): State<TrengoSimState>, RawQuery(raw): RawQuery) -> Answer {
    list_of(
        &sim,
        raw,
        "/custom_fields",
        |w| w.custom_fields.values().collect(),
        |r, f| r.custom_field(f),
    )
}

/// The `timezone` users carry unless `users_carry_account_zone`: what the agents of the one
/// captured account had, an hour off its rendering zone (trengo-api.md §4.3 \[OBS\]).
pub const AGENT_TIMEZONE: &str = "Africa/Cairo";

/// `GET /users`.
pub async fn users(State(sim): State<TrengoSimState>, RawQuery(raw): RawQuery) -> Answer {
    let account_zone = sim.options().users_carry_account_zone;
    list_of(
        &sim,
        raw,
        "/users",
        |w| w.users.values().collect(),
        |r, u| {
            let mut user = r.user(u);
            if !account_zone {
                user["timezone"] = json!(AGENT_TIMEZONE);
            }
            user
        },
    )
}

/// `GET /teams`.
pub async fn teams(State(sim): State<TrengoSimState>, RawQuery(raw): RawQuery) -> Answer {
    list_of(
        &sim,
        raw,
        "/teams",
        |w| w.teams.values().collect(),
        |r, t| r.team(t),
    )
}

/// `GET /channels`.
pub async fn channels(State(sim): State<TrengoSimState>, RawQuery(raw): RawQuery) -> Answer {
    let hidden = sim.options().hidden_channels;
    list_of(
        &sim,
        raw,
        "/channels",
        |w| {
            w.channels
                .values()
                .filter(|c| !hidden.contains(&c.id))
                .collect()
        },
        |r, c| r.channel(c),
    )
}

// ----- webhooks (§10.1) -----

/// `GET /webhooks`: the full paginator with `per_page` 999 (§3.1 \[OBS\]).
pub async fn webhooks(State(sim): State<TrengoSimState>, RawQuery(raw): RawQuery) -> Answer {
    let query = QueryPairs::parse(raw.as_deref());
    let path = format!("{}/webhooks", sim.base_url());
    let page = sim.read(|world, options| {
        let renderer = Renderer {
            state: world,
            zone: options.zone,
        };
        full_page(world.webhooks.values().collect(), &query, 999, &path, |h| {
            renderer.webhook(h)
        })
    });
    Ok(Json(page).into_response())
}

/// `GET /webhooks/{id}`.
pub async fn webhook(State(sim): State<TrengoSimState>, Path(id): Path<i64>) -> Answer {
    one(&sim, |w| find_webhook(w, id), |r, h| r.webhook(h))
}

fn find_webhook(world: &TrengoState, id: i64) -> Result<&Webhook, SimError> {
    world
        .webhooks
        .get(&id)
        .ok_or(SimError::not_found("Webhook", id))
}

struct HookInput {
    name: Option<String>,
    event: EventType,
    url: String,
}

fn hook_input(fields: &Fields) -> Result<HookInput, SimError> {
    let kind = fields.required_text("type")?;
    let event = EventType::parse(&kind).ok_or_else(|| SimError::selected_invalid("type"))?;
    let url = fields.required_text("url")?;
    if url::Url::parse(&url).is_err() {
        return Err(SimError::invalid("url", "The url format is invalid."));
    }
    Ok(HookInput {
        name: fields.text("name")?,
        event,
        url,
    })
}

/// `POST /webhooks {name, type, url}`: one event type per webhook; answers with its
/// `signing_secret` (§10.1 \[OBS\]).
pub async fn create_webhook(State(sim): State<TrengoSimState>, fields: Fields) -> Answer {
    let input = hook_input(&fields)?;
    let id = sim.edit(None, |w, _| {
        let id = w.next_id("webhook", id_start::WEBHOOK);
        let signing_secret = w.new_secret();
        w.webhooks.insert(
            id,
            Webhook {
                id,
                name: input.name.unwrap_or_else(|| format!("Webhook #{id}")),
                url: input.url,
                event: input.event,
                signing_secret,
            },
        );
        Ok((id, Vec::new()))
    })?;
    let answer = one(&sim, |w| find_webhook(w, id), |r, h| r.webhook(h))?;
    Ok((StatusCode::CREATED, answer).into_response())
}

/// `PUT /webhooks/{id} {name, type, url}`: empty body on success (§10.1 \[OBS\]).
pub async fn update_webhook(
    State(sim): State<TrengoSimState>,
    Path(id): Path<i64>,
    fields: Fields,
) -> Answer {
    let input = hook_input(&fields)?;
    sim.edit(None, |w, _| {
        let hook = w
            .webhooks
            .get_mut(&id)
            .ok_or(SimError::not_found("Webhook", id))?;
        if let Some(name) = input.name {
            hook.name = name;
        }
        hook.event = input.event;
        hook.url = input.url;
        Ok(((), Vec::new()))
    })?;
    Ok(empty_ok())
}

/// `DELETE /webhooks/{id}`: empty body (§10.1 \[OBS\]).
pub async fn delete_webhook(State(sim): State<TrengoSimState>, Path(id): Path<i64>) -> Answer {
    sim.edit(None, |w, _| {
        w.webhooks
            .remove(&id)
            .ok_or(SimError::not_found("Webhook", id))?;
        Ok(((), Vec::new()))
    })?;
    Ok(empty_ok())
}

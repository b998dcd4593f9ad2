//! Location-level reads: the location itself (its zone), the users of the location and its
//! custom field definitions.
//!
//! `GET /users/?locationId=` is not in the spec files we carry; the answer is kept minimal
//! (`{users: [{id, name, firstName, lastName, email, roles}]}`), enough to match users by
//! e-mail. Custom fields follow `CustomFieldsListSuccessfulResponseDto` (ghl-api.md §7).

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use serde_json::{Value, json};

use crate::sim::ghl::error::GhlError;
use crate::sim::ghl::server::GhlFakeState;

/// `GET /users/?locationId=` → `{users}`.
pub async fn users(
    State(state): State<GhlFakeState>,
    Query(query): Query<BTreeMap<String, String>>,
) -> Result<Json<Value>, GhlError> {
    let Some(location) = query.get("locationId") else {
        return Err(GhlError::unprocessable(vec![
            "locationId should not be empty".into(),
        ]));
    };
    state.check_location(location)?;
    let users = state.read(|s| {
        s.users
            .iter()
            .map(|u| u.to_json(&s.location_id))
            .collect::<Vec<_>>()
    });
    Ok(Json(json!({ "users": users })))
}

/// `GET /locations/{locationId}/customFields?model=` → `{customFields}`.
pub async fn custom_fields(
    State(state): State<GhlFakeState>,
    Path(location): Path<String>,
    Query(query): Query<BTreeMap<String, String>>,
) -> Result<Json<Value>, GhlError> {
    state.check_location(&location)?;
    let model = query.get("model").map(String::as_str).unwrap_or("all");
    if !["contact", "opportunity", "all"].contains(&model) {
        return Err(GhlError::unprocessable(vec![
            "model must be one of the following values: contact, opportunity, all".into(),
        ]));
    }
    let fields = state.read(|s| {
        s.custom_fields
            .iter()
            .filter(|f| model == "all" || f.model == model)
            .map(|f| f.to_json(&s.location_id))
            .collect::<Vec<_>>()
    });
    Ok(Json(json!({ "customFields": fields })))
}

/// `GET /locations/{locationId}` → `{location}` (`GetLocationByIdSuccessfulResponseDto`, scope
/// `locations.readonly`): the id, a name, the company and the zone of option
/// `location_timezone`.
pub async fn location(
    State(state): State<GhlFakeState>,
    Path(location): Path<String>,
) -> Result<Json<Value>, GhlError> {
    state.check_location(&location)?;
    let (id, zone) = state.read(|s| (s.location_id.clone(), s.zone));
    Ok(Json(json!({
        "location": {
            "id": id,
            "companyId": state.company_id(),
            "name": "Sim Sub-Account",
            "country": "NL",
            "timezone": zone.name(),
        }
    })))
}

//! The GHL API v2 routes the fake serves, by resource, with the paths exactly as GHL's
//! OpenAPI files spell them (including the trailing slash of `/contacts/` and `/users/`).

use axum::Router;
use axum::routing::{get, post, put};

use super::server::GhlFakeState;

mod contacts;
mod location;
mod notes;
mod tasks;

/// Every API route, without state or layers (the server adds both).
pub fn api_routes() -> Router<GhlFakeState> {
    Router::new()
        .route("/contacts/", post(contacts::create))
        .route("/contacts/upsert", post(contacts::upsert))
        .route("/contacts/search", post(contacts::search))
        .route("/contacts/search/duplicate", get(contacts::duplicate))
        .route(
            "/contacts/{contactId}",
            get(contacts::get_one)
                .put(contacts::update)
                .delete(contacts::delete),
        )
        .route(
            "/contacts/{contactId}/tags",
            post(contacts::add_tags).delete(contacts::remove_tags),
        )
        .route(
            "/contacts/{contactId}/appointments",
            get(contacts::appointments),
        )
        .route(
            "/contacts/{contactId}/tasks",
            get(tasks::list).post(tasks::create),
        )
        .route(
            "/contacts/{contactId}/tasks/{taskId}",
            get(tasks::get_one).put(tasks::update).delete(tasks::delete),
        )
        .route(
            "/contacts/{contactId}/tasks/{taskId}/completed",
            put(tasks::completed),
        )
        .route("/locations/{locationId}/tasks/search", post(tasks::search))
        .route(
            "/contacts/{contactId}/notes",
            get(notes::list).post(notes::create),
        )
        .route(
            "/contacts/{contactId}/notes/{id}",
            get(notes::get_one).put(notes::update).delete(notes::delete),
        )
        .route("/users/", get(location::users))
        .route("/locations/{locationId}", get(location::location))
        .route(
            "/locations/{locationId}/customFields",
            get(location::custom_fields),
        )
}

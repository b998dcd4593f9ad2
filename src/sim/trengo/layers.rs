//! The middleware around every `/api/v2` route, outermost first: request counting by route
//! template, fault injection, the per-minute rate limit with its headers, and Bearer auth.

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use secrecy::ExposeSecret;
use serde_json::json;

use crate::sim::faults::{
    Fault, dropped_response, html_error_response, malformed_response, reshape_response,
    wrong_shape_response,
};

use super::http::ApiError;
use super::sim::{Budget, TrengoSimState};

/// Counts the request under `"METHOD /api/v2/route/{template}"`, and a write when a
/// state-changing request was answered 2xx.
pub async fn count(State(sim): State<TrengoSimState>, req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| req.uri().path().to_owned(), |p| p.as_str().to_owned());
    sim.shared.counters.record(method.as_str(), &route);
    let response = next.run(req).await;
    if method != Method::GET && response.status().is_success() {
        sim.shared.counters.record_write();
    }
    response
}

/// Injects the configured faults. A dropped connection still applies the request first: the
/// client cannot tell whether its write happened, which is the case crash-safe code must
/// handle.
pub async fn faults(State(sim): State<TrengoSimState>, req: Request, next: Next) -> Response {
    let (latency, fault) = sim
        .shared
        .faults
        .decide_for(req.method().as_str(), req.uri().path());
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    match fault {
        Fault::None => next.run(req).await,
        Fault::ServerError(status) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let mut response =
                (status, axum::Json(json!({"message": "Server Error"}))).into_response();
            add_budget_headers(response.headers_mut(), &sim.peek_budget());
            response
        }
        // A short wait, so clients honouring it do not stall test suites.
        Fault::RateLimited => too_many_attempts(&sim.peek_budget(), 1, sim.now().timestamp() + 1),
        Fault::Drop | Fault::LostAnswer => {
            let _applied = next.run(req).await;
            dropped_response()
        }
        Fault::HtmlError(status) => {
            let mut response = html_error_response(status);
            add_budget_headers(response.headers_mut(), &sim.peek_budget());
            response
        }
        Fault::Malformed => {
            let applied = next.run(req).await;
            let mut response = malformed_response();
            *response.status_mut() = applied.status();
            response
        }
        Fault::WrongShape(seed) => wrong_shape_response(next.run(req).await, seed).await,
        Fault::Reshape => {
            let faults = sim.shared.faults.get();
            reshape_response(next.run(req).await, &faults).await
        }
    }
}

/// Spends one request of the token's per-minute budget; answers 429 with `Retry-After` and
/// `X-RateLimit-Reset` past it, and puts `x-ratelimit-limit`/`-remaining` on every answer
/// (trengo-api.md §2 \[OFF\]). Unauthenticated requests are not charged.
pub async fn rate_limit(State(sim): State<TrengoSimState>, req: Request, next: Next) -> Response {
    if !authorised(&sim, req.headers()) {
        let mut response = next.run(req).await;
        add_budget_headers(response.headers_mut(), &sim.peek_budget());
        return response;
    }
    let budget = sim.spend_budget();
    if let Some((retry_after, reset)) = budget.exceeded {
        return too_many_attempts(&budget, retry_after, reset);
    }
    let mut response = next.run(req).await;
    add_budget_headers(response.headers_mut(), &budget);
    response
}

/// Bearer auth: 401 `{"message":"Unauthenticated."}` without the accepted token (§11).
pub async fn auth(State(sim): State<TrengoSimState>, req: Request, next: Next) -> Response {
    if !authorised(&sim, req.headers()) {
        return ApiError::unauthenticated().into_response();
    }
    if hidden_ticket(&sim, req.uri().path()) {
        return (
            StatusCode::FORBIDDEN,
            axum::Json(json!({"message": "This action is unauthorized."})),
        )
            .into_response();
    }
    next.run(req).await
}

/// Whether `path` is about a ticket in a channel the token cannot see.
fn hidden_ticket(sim: &TrengoSimState, path: &str) -> bool {
    let hidden = sim.options().hidden_channels;
    if hidden.is_empty() {
        return false;
    }
    let Some(id) = path
        .strip_prefix("/api/v2/tickets/")
        .and_then(|rest| rest.split('/').next())
        .and_then(|id| id.parse::<i64>().ok())
    else {
        return false;
    };
    sim.read(|world, _| {
        world
            .tickets
            .get(&id)
            .is_some_and(|t| hidden.contains(&t.channel_id))
    })
}

fn authorised(sim: &TrengoSimState, headers: &HeaderMap) -> bool {
    let options = sim.options();
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|token| token.trim() == options.token.expose_secret())
}

fn too_many_attempts(budget: &Budget, retry_after: i64, reset: i64) -> Response {
    let mut response = (
        StatusCode::TOO_MANY_REQUESTS,
        axum::Json(json!({"message": "Too Many Attempts."})),
    )
        .into_response();
    let headers = response.headers_mut();
    add_budget_headers(
        headers,
        &Budget {
            remaining: 0,
            ..*budget
        },
    );
    headers.insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
    headers.insert("x-ratelimit-reset", HeaderValue::from(reset));
    response
}

fn add_budget_headers(headers: &mut HeaderMap, budget: &Budget) {
    headers.insert("x-ratelimit-limit", HeaderValue::from(budget.limit));
    headers.insert("x-ratelimit-remaining", HeaderValue::from(budget.remaining));
}

/// Any path the fake does not serve: Laravel's 404 body, with the budget headers every
/// answer carries.
pub async fn route_not_found(State(sim): State<TrengoSimState>, req: Request) -> Response {
    let path = req.uri().path().trim_start_matches('/').to_owned();
    let mut response = (
        StatusCode::NOT_FOUND,
        axum::Json(json!({"message": format!("The route {path} could not be found.")})),
    )
        .into_response();
    add_budget_headers(response.headers_mut(), &sim.peek_budget());
    response
}

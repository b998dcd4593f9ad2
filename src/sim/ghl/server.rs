//! The shared state of a running GHL fake and the router with its gatekeeping layers.
//!
//! Every API request passes, outermost first: the request counter (by route template), the
//! rate budget (which also writes the `X-RateLimit-*` headers), fault injection, bearer
//! authentication, and the `Version` header check. `/oauth/token` and
//! `/oauth/chooselocation` pass only the counter and fault injection; `/_sim/` (the admin surface) passes none of them.
//!
//! The budget is spent before authentication, so even refused calls cost budget and carry
//! the `X-RateLimit-*` headers; requests answered 429 spend nothing. Whether GHL counts
//! unauthenticated calls is not documented (ghl-api.md §11.7): this is the unkind reading.

use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use serde_json::Value;

use super::auth::{TokenBook, bearer, token};
use super::error::GhlError;
use super::limits::RateBudget;
use super::options::{API_VERSION, GhlFakeOptions};
use super::state::GhlState;
use super::webhooks::WebhookOutbox;
use super::{admin, routes, seed};
use crate::clock::SharedClock;
use crate::sim::faults::{
    Fault, FaultInjector, RequestCounters, dropped_response, html_error_response,
    malformed_response, reshape_response, wrong_shape_response,
};

/// A handle on one fake's state; cheap to clone, shared by the router and the admin methods.
#[derive(Debug, Clone)]
pub struct GhlFakeState {
    inner: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    // std mutexes throughout: each critical section is a few map operations, never an await.
    state: Mutex<GhlState>,
    tokens: Mutex<TokenBook>,
    budget: Mutex<RateBudget>,
    clock: SharedClock,
    faults: FaultInjector,
    counters: RequestCounters,
    outbox: WebhookOutbox,
    location_id: String,
    company_id: String,
}

impl GhlFakeState {
    /// Seeds a fresh location from `options` at the clock's current time and starts the
    /// webhook delivery task (so it must be called inside a tokio runtime).
    pub fn new(options: GhlFakeOptions, clock: SharedClock) -> Self {
        let now = clock.now();
        let mut state = GhlState::new(
            options.location_id.clone(),
            options.switches.clone(),
            options.index_lag,
            options.seed,
        );
        state.zone = options.location_timezone;
        seed::seed(&mut state, options.contacts, now);
        seed::seed_appointments(&mut state, options.seed, now);
        Self {
            inner: Arc::new(Shared {
                state: Mutex::new(state),
                tokens: Mutex::new(TokenBook::new(&options)),
                budget: Mutex::new(RateBudget::new(
                    options.burst_limit,
                    options.burst_window,
                    options.daily_limit,
                )),
                clock,
                faults: FaultInjector::new(options.seed),
                counters: RequestCounters::default(),
                outbox: WebhookOutbox::start(
                    options.location_id.clone(),
                    options.webhook_key_seed,
                    options.webhook_attempts,
                    options.webhook_retry_delay,
                ),
                location_id: options.location_id,
                company_id: options.company_id,
            }),
        }
    }

    /// Now, on the injected clock.
    pub fn now(&self) -> DateTime<Utc> {
        self.inner.clock.now()
    }

    /// The location this fake serves.
    pub fn location_id(&self) -> &str {
        &self.inner.location_id
    }

    /// The company the location belongs to.
    pub fn company_id(&self) -> &str {
        &self.inner.company_id
    }

    /// Fault injection settings.
    pub fn faults(&self) -> &FaultInjector {
        &self.inner.faults
    }

    /// Request and write counters.
    pub fn counters(&self) -> &RequestCounters {
        &self.inner.counters
    }

    /// Webhook URLs, signing key, and delivery log.
    pub fn outbox(&self) -> &WebhookOutbox {
        &self.inner.outbox
    }

    /// The token book (locked).
    pub fn tokens(&self) -> MutexGuard<'_, TokenBook> {
        self.inner.tokens.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reads the state.
    pub fn read<T>(&self, f: impl FnOnce(&GhlState) -> T) -> T {
        f(&self.inner.state.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Changes the state at the clock's now and publishes the webhooks the change raised.
    /// `api_write` marks an API request, which counts as a write when it succeeds; admin
    /// edits (a person in the GHL UI) do not.
    pub fn edit<T>(
        &self,
        api_write: bool,
        f: impl FnOnce(&mut GhlState, DateTime<Utc>) -> Result<T, GhlError>,
    ) -> Result<T, GhlError> {
        let now = self.now();
        let (result, events) = {
            let mut state = self.inner.state.lock().unwrap_or_else(|e| e.into_inner());
            let result = f(&mut state, now);
            (result, state.take_events())
        };
        for event in events {
            self.inner.outbox.publish(event, now);
        }
        if api_write && result.is_ok() {
            self.inner.counters.record_write();
        }
        result
    }

    /// 403 unless `location_id` is this fake's location.
    pub fn check_location(&self, location_id: &str) -> Result<(), GhlError> {
        if location_id == self.inner.location_id {
            Ok(())
        } else {
            Err(GhlError::wrong_location())
        }
    }
}

/// Reads a JSON request body; an empty body reads as `{}`, bad JSON is a 400 as GHL's
/// framework gives it.
pub fn json_body(body: &Bytes) -> Result<Value, GhlError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Object(serde_json::Map::new()));
    }
    serde_json::from_slice(body)
        .map_err(|e| GhlError::bad_request(format!("Unexpected token in JSON body: {e}")))
}

/// The whole router: API routes behind the gate, `/oauth/token` and the authorization page
/// `/oauth/chooselocation` (the marketplace's, served here too), and `/_sim/`.
pub fn router(state: GhlFakeState) -> Router {
    let api = routes::api_routes()
        .route_layer(from_fn_with_state(state.clone(), require_version))
        .route_layer(from_fn_with_state(state.clone(), authenticate))
        .route_layer(from_fn_with_state(state.clone(), inject_faults))
        .route_layer(from_fn_with_state(state.clone(), spend_budget))
        .route_layer(from_fn_with_state(state.clone(), count_request));
    let oauth = Router::new()
        .route("/oauth/token", post(token))
        .route(
            "/oauth/chooselocation",
            get(super::consent::choose_location),
        )
        .route_layer(from_fn_with_state(state.clone(), inject_faults))
        .route_layer(from_fn_with_state(state.clone(), count_request));
    api.merge(oauth)
        .merge(admin::admin_routes())
        .with_state(state)
}

async fn count_request(
    State(state): State<GhlFakeState>,
    request: Request,
    next: Next,
) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| request.uri().path().to_owned());
    state.counters().record(request.method().as_str(), &route);
    next.run(request).await
}

async fn spend_budget(State(state): State<GhlFakeState>, request: Request, next: Next) -> Response {
    let now = state.now();
    let (verdict, mut response) = {
        let verdict = state
            .inner
            .budget
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take(now);
        if verdict.allowed {
            (verdict, None)
        } else {
            // ghl-api.md §2: 429, and no Retry-After header.
            (verdict, Some(GhlError::too_many_requests().into_response()))
        }
    };
    if response.is_none() {
        response = Some(next.run(request).await);
    }
    let mut response = response.unwrap_or_else(|| GhlError::server_error(500).into_response());
    state
        .inner
        .budget
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .write_headers(&verdict, response.headers_mut());
    response
}

async fn inject_faults(
    State(state): State<GhlFakeState>,
    request: Request,
    next: Next,
) -> Response {
    let (latency, fault) = state
        .faults()
        .decide_for(request.method().as_str(), request.uri().path());
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    match fault {
        Fault::None => next.run(request).await,
        Fault::ServerError(status) => GhlError::server_error(status).into_response(),
        Fault::RateLimited => GhlError::too_many_requests().into_response(),
        Fault::Drop => dropped_response(),
        Fault::LostAnswer => {
            // The write happens; its answer never arrives.
            let _served = next.run(request).await;
            dropped_response()
        }
        Fault::HtmlError(status) => html_error_response(status),
        Fault::Malformed => {
            // The request is served (its write happens), only the answer is garbled.
            let _served = next.run(request).await;
            malformed_response()
        }
        Fault::WrongShape(seed) => wrong_shape_response(next.run(request).await, seed).await,
        Fault::Reshape => {
            let faults = state.faults().get();
            reshape_response(next.run(request).await, &faults).await
        }
    }
}

async fn authenticate(State(state): State<GhlFakeState>, request: Request, next: Next) -> Response {
    let now = state.now();
    let accepted =
        bearer(request.headers()).is_some_and(|token| state.tokens().accepts(token, now));
    if accepted {
        next.run(request).await
    } else {
        GhlError::unauthorized().into_response()
    }
}

async fn require_version(request: Request, next: Next) -> Response {
    match request.headers().get("version").map(|v| v.to_str()) {
        Some(Ok(API_VERSION)) => next.run(request).await,
        Some(_) => GhlError::bad_request(format!(
            "Version header is invalid: this API takes Version: {API_VERSION}"
        ))
        .into_response(),
        None => GhlError::bad_request(format!(
            "Version header was not found: send Version: {API_VERSION}"
        ))
        .into_response(),
    }
}

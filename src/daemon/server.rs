//! The daemon's HTTP surface: `/healthz`, `/readyz`, `/status`, `/metrics` and, when
//! configured, the webhook receivers, on one axum router.
//!
//! The caller binds the listener (loopback by default, `http.listen`) and owns the shutdown
//! signal. Webhooks are only hints (sync-model.md §4.10): a verified one sends a [`Hint`] to
//! the work loop and answers 202 at once; a refused one changes nothing. No response and no
//! log line carries a token, secret or signature.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{get, post};
use ed25519_dalek::VerifyingKey;
use sha2::{Digest, Sha256};

use super::hints::{HintQueue, Pushed};
use super::jobs::JobBoard;
use super::metrics::{handle as metrics_handle, render as render_metrics};
use super::status::{
    Backfill, Hint, HintQueueReport, Page, Readiness, api_name, collect, cursor_lag,
};
use super::webhooks::{Dedupe, TrengoHint, WebhookError, verify_ghl, verify_trengo};
use crate::api::{Api, Budget};
use crate::clock::SharedClock;
use crate::config::{Config, Secret, validate::ghl_public_key};
use crate::store::{StoreHandle, cursors, links};

/// How many webhook keys are remembered for de-duplication. Trengo and GHL retry within
/// minutes to hours, far fewer than this many events apart at this daemon's scale.
pub const DEDUPE_CAPACITY: usize = 10_000;

/// The configured `webhooks.ghl_public_key` is not a key.
#[derive(Debug, thiserror::Error)]
#[error(
    "webhooks.ghl_public_key is not an Ed25519 public key (expected base64 of its SPKI DER \
     form, as GHL publishes it); fix the key or remove it to use GHL's published one"
)]
pub struct BadGhlKey;

/// How webhooks are received.
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    /// Whether `/webhooks/...` exists at all (404 otherwise).
    pub enabled: bool,
    /// Trengo signing secrets by event type; an event without one is answered 404.
    pub trengo_secrets: BTreeMap<String, Secret>,
    /// GHL's Ed25519 key; `None` answers GHL webhooks 404.
    pub ghl_key: Option<VerifyingKey>,
    /// The GHL location this daemon syncs: events of any other are refused (GHL signs every
    /// app's events for every location with the same key, ghl-api.md §8.1–8.2).
    pub ghl_location_id: Option<String>,
    /// Signatures older (or further in the future) than this are refused.
    pub max_age: Duration,
}

impl WebhookSettings {
    /// The settings of `config`'s `[webhooks]` and `ghl.location_id`.
    pub fn from_config(config: &Config) -> Result<Self, BadGhlKey> {
        let hooks = &config.webhooks;
        Ok(Self {
            enabled: hooks.enabled,
            trengo_secrets: hooks.trengo_secrets.clone(),
            ghl_key: Some(ghl_public_key(&hooks.ghl_public_key).ok_or(BadGhlKey)?),
            ghl_location_id: config.ghl.location_id.clone(),
            max_age: hooks.max_age.get(),
        })
    }

    fn trengo_secret(&self, event: &str) -> Option<&Secret> {
        // Trengo spells event types in upper case (trengo-api.md §10.2); accept a lower-case
        // path from a hand-typed webhook URL too.
        self.trengo_secrets
            .get(event)
            .or_else(|| self.trengo_secrets.get(&event.to_ascii_uppercase()))
    }

    fn max_age(&self) -> chrono::Duration {
        chrono::Duration::from_std(self.max_age).unwrap_or(chrono::Duration::MAX)
    }
}

/// Everything the HTTP surface reads, shared with the daemon.
#[derive(Debug)]
pub struct ServerState {
    /// The scheduled jobs.
    pub board: Arc<JobBoard>,
    pub store: StoreHandle,
    pub clock: SharedClock,
    /// Each API's rate budget.
    pub budgets: Vec<(Api, Arc<Budget>)>,
    /// Whether both APIs answer and no brake is engaged.
    pub readiness: Arc<Readiness>,
    /// Backfill progress.
    pub backfill: Arc<Backfill>,
    /// Where verified webhooks queue their hints for the work loop (bounded, one per item).
    pub hints: Arc<HintQueue>,
    /// How webhooks are received.
    pub webhooks: WebhookSettings,
    /// Webhook keys already acted on.
    pub dedupe: Dedupe,
    /// After how long a failing item counts as stuck (`limits.stuck_after`).
    pub stuck_after: Duration,
    /// The bearer token `/status` and `/metrics` require (`http.status_token`); `None` leaves
    /// them open.
    pub status_token: Option<Secret>,
    /// What the Trengo `updated_at_gt` polls have seen (the zone alarm); none in tests that
    /// serve no engine.
    pub trengo_poll: Option<Arc<crate::trengo::zone::PollWatch>>,
}

/// The router, for tests that drive it without a socket and for [`serve`].
pub fn router(state: Arc<ServerState>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/status", get(status))
        .route("/metrics", get(metrics_text))
        .route("/webhooks/trengo/{event}", post(trengo_webhook))
        .route("/webhooks/ghl", post(ghl_webhook))
        .with_state(state)
}

/// How long a client may take to send a request's headers; also how long an idle keep-alive
/// connection is kept. A half-sent request is closed after this.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a request's body may pause between two pieces.
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// How long one request may take in all, body and handler included (answered 408 after it).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The most connections the listener holds at once. Further ones wait in the kernel's accept
/// queue (they cost this process no file descriptor) until one closes, so idle or half-sent
/// connections can never take the descriptors the API clients and the store need: the units'
/// `LimitNOFILE=1024` leaves over 900 for them.
pub const MAX_CONNECTIONS: usize = 64;

/// How long a stop waits for requests in progress before dropping them.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// Serves the router on `listener` until `shutdown` completes, then finishes the requests in
/// progress (for at most 5 s) and returns the listener.
///
/// Each connection gets [`HEADER_READ_TIMEOUT`], [`BODY_READ_TIMEOUT`] and
/// [`REQUEST_TIMEOUT`]; at most [`MAX_CONNECTIONS`] are open at once. `axum::serve` offers
/// none of these, so this is its accept loop with them added (hyper's HTTP/1 builder with a
/// timer for the header timeout, tower-http's timeout layers for the rest).
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<ServerState>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<tokio::net::TcpListener> {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use hyper_util::server::graceful::GracefulShutdown;
    use hyper_util::service::TowerToHyperService;
    use tower_http::timeout::{RequestBodyTimeoutLayer, TimeoutLayer};

    // Installed before the first request so that webhook counters are recorded from the start.
    metrics_handle();
    ::metrics::describe_counter!(
        "trengo_sync_webhooks_total",
        "Webhooks received, by source and outcome."
    );
    ::metrics::describe_counter!(
        "trengo_sync_hints_dropped_total",
        "Webhook hints refused (503) because the hint queue was full."
    );
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, webhooks = state.webhooks.enabled, "HTTP surface listening");
    }
    let app = router(state)
        .layer(RequestBodyTimeoutLayer::new(BODY_READ_TIMEOUT))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ));
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        // A slot first, then the connection: while all slots are taken, new connections
        // wait in the kernel's queue instead of holding a descriptor here.
        let permit = tokio::select! {
            permit = slots.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of descriptors (EMFILE) or a connection reset before accept: wait a
                    // moment rather than spin, as axum::serve does.
                    tracing::warn!(error = %e, "could not accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let connection =
            http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(app.clone()));
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            // A client that goes away or times out is its own business, not an error here.
            let _ = connection.await;
            drop(permit);
        });
    }
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("requests still in progress at stop were dropped");
    }
    // Back to the caller: closed when it is dropped, or served again after a reload (new
    // connections meanwhile wait in the kernel's queue).
    Ok(listener)
}

async fn healthz(State(state): State<Arc<ServerState>>) -> Response {
    match state.board.health(state.clock.now()) {
        Ok(()) => (StatusCode::OK, "ok\n").into_response(),
        Err(reason) => (StatusCode::SERVICE_UNAVAILABLE, format!("{reason}\n")).into_response(),
    }
}

/// `/readyz`. A paused daemon stays ready (200) and says so in the body: it is alive, takes
/// webhooks, and idles by an operator's choice. Failing readiness would take it out of a
/// Kubernetes Service (webhooks refused, then lost) and page whoever watches the probe for
/// an action they took; `/status` (`paused`) and the body carry the pause instead.
async fn readyz(State(state): State<Arc<ServerState>>) -> Response {
    let paused = state
        .store
        .call(|s| crate::store::controls::daemon_pause(s.conn()))
        .await
        .ok()
        .flatten()
        .map(|p| {
            format!(
                "paused: {} since {} (`trengo-sync resume` lifts it)\n",
                p.direction,
                p.since.to_rfc3339()
            )
        })
        .unwrap_or_default();
    match state
        .readiness
        .check_daemon(state.clock.now(), &state.board)
    {
        Ok(()) => (StatusCode::OK, format!("ready\n{paused}")).into_response(),
        Err(reasons) => {
            let mut text = format!("{paused}not ready:\n");
            for reason in reasons {
                text.push_str("- ");
                text.push_str(&reason);
                text.push('\n');
            }
            (StatusCode::SERVICE_UNAVAILABLE, text).into_response()
        }
    }
}

/// A 401 answer, unless the request carries the status token (or none is set). The
/// comparison is over SHA-256 digests, so its time says nothing about the token.
fn status_token_refusal(state: &ServerState, headers: &HeaderMap) -> Option<Response> {
    let token = state.status_token.as_ref()?;
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if Sha256::digest(given.trim().as_bytes()) == Sha256::digest(token.expose().as_bytes()) {
        return None;
    }
    Some(
        (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            "this endpoint needs `Authorization: Bearer <http.status_token>`\n",
        )
            .into_response(),
    )
}

async fn status(
    State(state): State<Arc<ServerState>>,
    headers: HeaderMap,
    Query(page): Query<Page>,
) -> Response {
    if let Some(refused) = status_token_refusal(&state, &headers) {
        return refused;
    }
    let report = collect(
        &state.store,
        &state.board,
        &state.budgets,
        &state.readiness,
        &state.backfill,
        state.clock.now(),
        state.stuck_after,
        page,
    )
    .await;
    match report {
        Ok(mut report) => {
            report.hint_queue = Some(HintQueueReport {
                queued: state.hints.len(),
                bound: state.hints.bound(),
                dropped: state.hints.dropped(),
            });
            report.trengo_poll = state
                .trengo_poll
                .as_ref()
                .map(|w| w.health(state.clock.now()));
            Json(report).into_response()
        }
        Err(e) => {
            tracing::error!(error = %e, "/status could not read the store");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("could not read the store: {e}\n"),
            )
                .into_response()
        }
    }
}

async fn metrics_text(State(state): State<Arc<ServerState>>, headers: HeaderMap) -> Response {
    if let Some(refused) = status_token_refusal(&state, &headers) {
        return refused;
    }
    refresh_gauges(&state).await;
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        render_metrics(),
    )
        .into_response()
}

/// Sets the gauges that describe state rather than events, so a scrape sees them fresh.
async fn refresh_gauges(state: &ServerState) {
    metrics_handle();
    for (api, budget) in &state.budgets {
        ::metrics::gauge!("trengo_sync_budget_remaining", "api" => api_name(*api))
            .set(f64::from(budget.snapshot().remaining));
    }
    let now = state.clock.now();
    if let Some(watch) = &state.trengo_poll {
        let health = watch.health(now);
        ::metrics::gauge!("trengo_sync_trengo_poll_alarm")
            .set(f64::from(u8::from(health.alarm.is_some())));
        ::metrics::gauge!("trengo_sync_trengo_poll_quiet_seconds").set(health.quiet_secs as f64);
    }
    let read = state
        .store
        .call(|s| Ok((cursors::all(s.conn())?, links::count_by_state(s.conn())?)))
        .await;
    match read {
        Ok((cursors, counts)) => {
            for cursor in cursors {
                if let Some(lag) = cursor_lag(&cursor.value, now) {
                    ::metrics::gauge!("trengo_sync_cursor_lag_seconds", "stream" => cursor.stream)
                        .set(lag as f64);
                }
            }
            ::metrics::gauge!("trengo_sync_links", "state" => "active").set(counts.active as f64);
            ::metrics::gauge!("trengo_sync_links", "state" => "out_of_scope")
                .set(counts.out_of_scope.saturating_sub(counts.gone) as f64);
            ::metrics::gauge!("trengo_sync_links", "state" => "gone").set(counts.gone as f64);
        }
        Err(e) => tracing::warn!(error = %e, "/metrics could not read cursors and links"),
    }
    super::metrics::refresh_state(&state.store, now, state.stuck_after).await;
}

fn counted(
    source: &'static str,
    outcome: &'static str,
    status: StatusCode,
    text: String,
) -> Response {
    ::metrics::counter!("trengo_sync_webhooks_total", "source" => source, "outcome" => outcome)
        .increment(1);
    (status, text).into_response()
}

fn webhooks_off() -> Response {
    (
        StatusCode::NOT_FOUND,
        "webhooks are off (set webhooks.enabled = true to receive them)\n",
    )
        .into_response()
}

fn signature_header<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    // A header that is not visible ASCII cannot be a signature: read it as malformed, not absent.
    headers.get(name).map(|v| v.to_str().unwrap_or(""))
}

async fn trengo_webhook(
    State(state): State<Arc<ServerState>>,
    Path(event): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    const SOURCE: &str = "trengo";
    let hooks = &state.webhooks;
    if !hooks.enabled {
        return webhooks_off();
    }
    // The name comes from the URL: anything but Trengo's spelling (upper-case letters and
    // underscores, trengo-api.md §10.2) is refused before it reaches a log line, and even
    // then it is logged escaped, so `%0A` or an ESC cannot forge or colour log lines.
    if !is_event_name(&event) {
        tracing::warn!(
            event = %event.escape_debug(),
            "refused a Trengo webhook: the event name is not upper-case letters and underscores"
        );
        return counted(
            SOURCE,
            "unknown_event",
            StatusCode::NOT_FOUND,
            "no such Trengo event: event names are upper-case letters and underscores \
             (TICKET_CLOSED)\n"
                .into(),
        );
    }
    let Some(secret) = hooks.trengo_secret(&event) else {
        tracing::warn!(%event, "refused a Trengo webhook for an event with no signing secret");
        return counted(
            SOURCE,
            "unknown_event",
            StatusCode::NOT_FOUND,
            format!(
                "no signing secret is configured for Trengo event {event} \
                 (webhooks.trengo_secrets.{event})\n"
            ),
        );
    };
    // Trengo signs one webhook per event type (trengo-api.md §10.3): verify over the raw bytes
    // before reading anything from them.
    let header = signature_header(&headers, "Trengo-Signature");
    let signed_at = match verify_trengo(
        secret.expose(),
        header,
        &body,
        state.clock.now(),
        hooks.max_age(),
    ) {
        Ok(at) => at,
        Err(e) => return refused(SOURCE, &e),
    };
    let hint = match TrengoHint::parse(&event, &body) {
        Ok(hint) => hint,
        Err(e) => return unreadable(SOURCE, &e),
    };
    deliver(&state, SOURCE, &hint.dedupe_key(signed_at), hint.hint())
}

async fn ghl_webhook(
    State(state): State<Arc<ServerState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    const SOURCE: &str = "ghl";
    let hooks = &state.webhooks;
    if !hooks.enabled {
        return webhooks_off();
    }
    let Some(key) = hooks.ghl_key.as_ref() else {
        return counted(
            SOURCE,
            "unknown_event",
            StatusCode::NOT_FOUND,
            "no GHL webhook key is configured (webhooks.ghl_public_key)\n".into(),
        );
    };
    // ghl-api.md §8.2: Ed25519 over the raw body in `x-ghl-signature`, no fallback to the
    // legacy RSA header.
    let header = signature_header(&headers, "x-ghl-signature");
    let hint = match verify_ghl(key, header, &body, state.clock.now(), hooks.max_age()) {
        Ok(hint) => hint,
        Err(e @ WebhookError::BadPayload(_)) => return unreadable(SOURCE, &e),
        Err(e) => return refused(SOURCE, &e),
    };
    if let Some(ours) = &hooks.ghl_location_id
        && hint.location_id.as_deref() != Some(ours.as_str())
    {
        tracing::warn!(event = %hint.event, "refused a GHL webhook for another location");
        return counted(
            SOURCE,
            "other_location",
            StatusCode::FORBIDDEN,
            "this event belongs to another GHL location than ghl.location_id\n".into(),
        );
    }
    let Some(engine_hint) = hint.hint() else {
        // TaskCreate may come without `contactId` (ghl-api.md §8.3): the poll will find it.
        return counted(
            SOURCE,
            "ignored",
            StatusCode::OK,
            "no contact to re-read; the next poll covers it\n".into(),
        );
    };
    // Dedupe on `webhookId` (ghl-api.md §8.1); without one, identical bytes are a repeat.
    let key = match &hint.webhook_id {
        Some(id) => format!("ghl:{id}"),
        None => format!("ghl:body:{}", hex::encode(Sha256::digest(&body))),
    };
    deliver(&state, SOURCE, &key, engine_hint)
}

/// Whether `event` is spelled as Trengo spells event types: `[A-Z_]+`, at most 64 long.
fn is_event_name(event: &str) -> bool {
    !event.is_empty()
        && event.len() <= 64
        && event.bytes().all(|b| b.is_ascii_uppercase() || b == b'_')
}

fn refused(source: &'static str, e: &WebhookError) -> Response {
    // The reason names what failed (missing, malformed, mismatched, stale), never the secret
    // or the signature itself.
    tracing::warn!(source, reason = %e, "refused a webhook");
    counted(
        source,
        "refused",
        StatusCode::UNAUTHORIZED,
        format!("refused: {e}\n"),
    )
}

fn unreadable(source: &'static str, e: &WebhookError) -> Response {
    tracing::warn!(source, reason = %e, "a signed webhook could not be read");
    counted(
        source,
        "unreadable",
        StatusCode::BAD_REQUEST,
        format!("{e}\n"),
    )
}

/// Queues a verified hint once: a repeat is answered 200 (so the sender stops retrying) and
/// queues nothing; a hint for an item already queued merges into its entry; past the queue's
/// bound the hint is refused with 503, counted and logged (the polls read the change).
fn deliver(state: &ServerState, source: &'static str, key: &str, hint: Hint) -> Response {
    let stopping = || {
        counted(
            source,
            "unavailable",
            StatusCode::SERVICE_UNAVAILABLE,
            "the daemon is stopping; the next poll will read this change\n".into(),
        )
    };
    // Checked before the key is remembered: a hint that cannot be queued must not make the
    // sender's retry look like a repeat.
    if state.hints.is_closed() {
        return stopping();
    }
    if !state.dedupe.first_time(key) {
        return counted(
            source,
            "duplicate",
            StatusCode::OK,
            "already received\n".into(),
        );
    }
    tracing::debug!(source, ?hint, "webhook hint queued");
    let pushed = state.hints.push(hint);
    super::metrics::hint_queue_depth(state.hints.len());
    match pushed {
        Pushed::Queued | Pushed::Merged => counted(
            source,
            "accepted",
            StatusCode::ACCEPTED,
            "accepted\n".into(),
        ),
        Pushed::Full => {
            // Let a retry of this delivery through once there is room.
            state.dedupe.forget(key);
            counted(
                source,
                "queue_full",
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "the hint queue is full ({} items waiting); the next poll will read this \
                     change\n",
                    state.hints.len()
                ),
            )
        }
        Pushed::Closed => stopping(),
    }
}

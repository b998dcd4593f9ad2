//! The one place both clients send HTTP requests through.
//!
//! An [`Endpoint`] owns the base URL, the reqwest client, the shared [`Budget`] and the retry
//! policy. Every attempt takes a permit from the budget first, feeds the answer's rate headers
//! back into it, logs method, path, status, latency, attempt and budget left (never a header
//! value, never the query), and classifies the answer into an [`ApiError`] kind.
//!
//! Retries use backon's jittered, capped exponential backoff. 5xx, timeouts, dropped
//! connections and bodies that break off are retried; other 4xx never are. A request marked
//! [`Replay::CreateOnce`] (a POST that creates something) is only retried when the server
//! provably did not act on it: a 429, or a connection that was never established. Anything
//! else is handed back to the caller (the engine's intent journal), which looks for the
//! created object before trying again.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use reqwest::Method;
use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use url::Url;

use super::budget::Budget;
use super::error::{Api, ApiError, CallSite, MAX_BODY_BYTES, snippet};
use super::rate_headers;
pub use super::rate_headers::{RateHeaderReader, ghl_rate_headers, trengo_rate_headers};
use super::redact::redact;
use crate::clock::SharedClock;

/// How hard to retry retryable failures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Retries after the first attempt (default 5).
    pub max_retries: usize,
    /// First backoff delay (default 500 ms); doubled each retry, with jitter.
    pub min_delay: Duration,
    /// Cap on a single backoff delay (default 30 s).
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 5,
            min_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
        }
    }
}

/// Whether a request may be sent again after a failure whose effect on the server is unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replay {
    /// Reads and idempotent writes (close, attach label, set completed): retry freely.
    Safe,
    /// Creates (ticket, note, task, contact): never repeated after the server may have acted.
    CreateOnce,
}

/// A request body.
#[derive(Debug, Clone)]
pub enum Body {
    /// No body.
    Empty,
    /// A JSON body (`Content-Type: application/json`).
    Json(serde_json::Value),
    /// A form body (`application/x-www-form-urlencoded`), for GHL's token endpoint. Values may
    /// be secrets, so they are never logged.
    Form(Vec<(String, SecretString)>),
}

/// One request, described independently of the attempt that sends it.
#[derive(Debug, Clone)]
pub struct Request {
    /// HTTP method.
    pub method: Method,
    /// Path below the base URL, starting with `/`; ignored when `url` is set.
    pub path: String,
    /// Query pairs (values are not logged).
    pub query: Vec<(String, String)>,
    pub body: Body,
    /// Retry rule for failures of unknown effect.
    pub replay: Replay,
    /// A full URL to call instead of `base + path` (pagination's `links.next`).
    pub url: Option<Url>,
}

impl Request {
    /// A request with no query and no body, safe to replay.
    pub fn new(method: Method, path: impl Into<String>) -> Self {
        Self {
            method,
            path: path.into(),
            query: Vec::new(),
            body: Body::Empty,
            replay: Replay::Safe,
            url: None,
        }
    }

    /// A GET of `path`.
    pub fn get(path: impl Into<String>) -> Self {
        Self::new(Method::GET, path)
    }

    /// Adds a query pair.
    pub fn query(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.query.push((key.into(), value.into()));
        self
    }

    /// Sets a JSON body.
    pub fn json(mut self, body: serde_json::Value) -> Self {
        self.body = Body::Json(body);
        self
    }

    /// Marks the request as a create that must not be replayed blindly.
    pub fn create_once(mut self) -> Self {
        self.replay = Replay::CreateOnce;
        self
    }
}

/// A successful answer.
#[derive(Debug, Clone)]
pub struct Reply {
    /// The call it answers.
    pub call: CallSite,
    /// HTTP status (2xx).
    pub status: u16,
    /// The raw body.
    pub body: Vec<u8>,
    /// Whether the body carries credentials (the OAuth token endpoint): an error about it
    /// then quotes nothing of it.
    pub secret: bool,
}

/// What an error says instead of quoting an answer that carries credentials.
const WITHHELD: &str = "(not quoted: this endpoint's answers carry credentials)";

impl Reply {
    /// The body as JSON; an unreadable body is [`ApiError::Malformed`], never a panic.
    pub fn value(&self) -> Result<serde_json::Value, ApiError> {
        serde_json::from_slice(&self.body).map_err(|e| self.malformed(e))
    }

    /// The body decoded as `T`.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, ApiError> {
        serde_json::from_slice(&self.body).map_err(|e| self.malformed(e))
    }

    /// Decodes an already parsed (and possibly normalised) body as `T`.
    pub fn decode<T: DeserializeOwned>(&self, value: serde_json::Value) -> Result<T, ApiError> {
        serde_json::from_value(value).map_err(|e| self.malformed(e))
    }

    /// The error for a body that could not be read as expected.
    pub fn malformed(&self, reason: impl std::fmt::Display) -> ApiError {
        // A decoder's reason may quote a value ("invalid type: string \"rt-…\""), so an
        // answer that carries credentials gets neither the reason nor a snippet.
        let (reason, snippet) = if self.secret {
            (
                "it is not the expected JSON".to_string(),
                WITHHELD.to_string(),
            )
        } else {
            (redact(&reason.to_string()), snippet(&self.body))
        };
        ApiError::Malformed {
            call: self.call.clone(),
            status: self.status,
            reason,
            snippet,
        }
    }
}

/// Everything an [`Endpoint`] needs.
#[derive(Debug, Clone)]
pub struct EndpointConfig {
    /// Which API.
    pub api: Api,
    /// Base URL every path is appended to.
    pub base_url: Url,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Headers sent on every request (Accept, Version, ...).
    pub headers: HeaderMap,
    /// Retry policy.
    pub retry: RetryPolicy,
    /// What to tell the user on 401/403.
    pub auth_hint: String,
    /// How this API states its rate limits.
    pub rate_headers: RateHeaderReader,
    /// The answers carry credentials (GHL's `/oauth/token`): no error ever quotes their body.
    pub secret_answers: bool,
}

/// A base URL plus the machinery to call it politely.
#[derive(Debug, Clone)]
pub struct Endpoint {
    config: EndpointConfig,
    http: reqwest::Client,
    budget: Arc<Budget>,
    clock: SharedClock,
}

/// One failed attempt, with whether the server may have acted on it.
struct Failure {
    error: ApiError,
    /// False when the request provably did not take effect (429, connection never made).
    maybe_applied: bool,
}

impl Endpoint {
    /// An endpoint; fails only when the HTTP client cannot be built.
    pub fn new(
        mut config: EndpointConfig,
        budget: Arc<Budget>,
        clock: SharedClock,
    ) -> Result<Self, ApiError> {
        config
            .headers
            .entry(ACCEPT)
            .or_insert(HeaderValue::from_static("application/json"));
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout.min(Duration::from_secs(10)))
            .build()
            .map_err(|e| ApiError::Config {
                api: config.api,
                message: format!("cannot build the HTTP client: {e}"),
            })?;
        Ok(Self {
            config,
            http,
            budget,
            clock,
        })
    }

    /// The API this endpoint talks to.
    pub fn api(&self) -> Api {
        self.config.api
    }

    /// The base URL.
    pub fn base_url(&self) -> &Url {
        &self.config.base_url
    }

    /// The shared budget.
    pub fn budget(&self) -> &Arc<Budget> {
        &self.budget
    }

    /// The injected clock.
    pub fn clock(&self) -> &SharedClock {
        &self.clock
    }

    /// The full URL of `path` below the base URL.
    pub fn url_for(&self, path: &str) -> Result<Url, ApiError> {
        let base = self.config.base_url.as_str().trim_end_matches('/');
        Url::parse(&format!("{base}{path}")).map_err(|e| ApiError::Config {
            api: self.config.api,
            message: format!("base URL {base} plus path {path} is not a URL: {e}"),
        })
    }

    /// Sends `request` with `bearer` (if any), retrying per the policy and [`Replay`] rule.
    pub async fn send(
        &self,
        request: &Request,
        bearer: Option<&SecretString>,
    ) -> Result<Reply, ApiError> {
        let mut url = match &request.url {
            Some(url) => url.clone(),
            None => self.url_for(&request.path)?,
        };
        if !request.query.is_empty() {
            url.query_pairs_mut().extend_pairs(request.query.iter());
        }
        let call = CallSite::new(self.config.api, request.method.as_str(), url.path());
        let auth = match bearer {
            Some(token) => {
                let mut value = HeaderValue::from_str(&format!("Bearer {}", token.expose_secret()))
                    .map_err(|_| ApiError::Config {
                        api: self.config.api,
                        message: format!(
                            "the token contains characters not allowed in an HTTP header; {}",
                            self.config.auth_hint
                        ),
                    })?;
                // Keeps the value out of reqwest's and hyper's debug output.
                value.set_sensitive(true);
                Some(value)
            }
            None => None,
        };
        let attempt = AtomicUsize::new(0);
        let policy = self.config.retry;
        let backoff = ExponentialBuilder::default()
            .with_jitter()
            .with_min_delay(policy.min_delay)
            .with_max_delay(policy.max_delay)
            .with_max_times(policy.max_retries);
        let replay = request.replay;
        let result = (|| async {
            let n = attempt.fetch_add(1, Ordering::Relaxed) + 1;
            self.attempt(request, &url, &call, auth.as_ref(), n).await
        })
        .retry(backoff)
        .when(|failure: &Failure| {
            failure.error.is_retryable() && (replay == Replay::Safe || !failure.maybe_applied)
        })
        // After a 429 the budget itself holds every task back for the right time; adding a
        // backoff delay on top would only waste the window.
        .adjust(|failure: &Failure, delay| match failure.error {
            ApiError::RateLimited { .. } => delay.map(|_| Duration::ZERO),
            _ => delay,
        })
        .notify(|failure: &Failure, delay| {
            tracing::warn!(
                api = %self.config.api,
                method = %call.method,
                path = %call.path,
                retry_in_ms = delay.as_millis() as u64,
                error = %failure.error,
                "retrying request"
            );
        })
        .await;
        result.map_err(|failure| failure.error)
    }

    async fn attempt(
        &self,
        request: &Request,
        url: &Url,
        call: &CallSite,
        auth: Option<&HeaderValue>,
        attempt: usize,
    ) -> Result<Reply, Failure> {
        let sent_at = self.budget.acquire().await;
        let mut builder = self
            .http
            .request(request.method.clone(), url.clone())
            .headers(self.config.headers.clone());
        if let Some(auth) = auth {
            builder = builder.header(AUTHORIZATION, auth.clone());
        }
        builder = match &request.body {
            Body::Empty => builder,
            Body::Json(value) => builder.json(value),
            Body::Form(pairs) => {
                let exposed: Vec<(&str, &str)> = pairs
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.expose_secret()))
                    .collect();
                builder.form(&exposed)
            }
        };
        let started = tokio::time::Instant::now();
        let response = match builder.send().await {
            Ok(response) => response,
            Err(e) => {
                let (reason, maybe_applied) = describe_send_error(&e, self.config.timeout);
                self.log(call, None, started, attempt);
                return Err(Failure {
                    error: ApiError::Transient {
                        call: call.clone(),
                        status: None,
                        reason,
                    },
                    maybe_applied,
                });
            }
        };
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        self.budget
            .observe((self.config.rate_headers)(&headers), sent_at);
        let body = read_capped(response, MAX_BODY_BYTES).await;
        self.log(call, Some(status), started, attempt);
        let body = match body {
            Ok(body) => body,
            Err(BodyError::TooLarge) => {
                tracing::warn!(
                    api = %call.api,
                    method = %call.method,
                    path = %call.path,
                    status,
                    limit = MAX_BODY_BYTES,
                    "answer larger than the body limit; not read"
                );
                return Err(Failure {
                    error: ApiError::TooLarge {
                        call: call.clone(),
                        status,
                        limit: MAX_BODY_BYTES,
                    },
                    maybe_applied: true,
                });
            }
            Err(BodyError::Broken(e)) => {
                return Err(Failure {
                    error: ApiError::Transient {
                        call: call.clone(),
                        status: Some(status),
                        reason: format!("the answer broke off while reading its body ({e})"),
                    },
                    maybe_applied: true,
                });
            }
        };
        if (200..300).contains(&status) {
            return Ok(Reply {
                call: call.clone(),
                status,
                body,
                secret: self.config.secret_answers,
            });
        }
        Err(self.classify(call, status, &headers, &body))
    }

    fn classify(&self, call: &CallSite, status: u16, headers: &HeaderMap, body: &[u8]) -> Failure {
        let (message, trace_id) = match error_message(body) {
            // Only what the API put in its JSON error fields (redacted), never raw text.
            (_, trace) if self.config.secret_answers && !is_json(body) => {
                (WITHHELD.to_string(), trace)
            }
            parsed => parsed,
        };
        let call = call.clone();
        let error = match status {
            429 => {
                let retry_after = header_secs(headers, RETRY_AFTER).or_else(|| {
                    // Trengo also sends the reset as a unix time (trengo-api.md §2 [OFF]).
                    rate_headers::header_u64(headers, "x-ratelimit-reset").and_then(|reset| {
                        let now = self.clock.now().timestamp();
                        let reset = i64::try_from(reset).ok()?;
                        (reset > now).then(|| Duration::from_secs((reset - now) as u64))
                    })
                });
                let waiting = self.budget.note_rate_limited(retry_after);
                tracing::warn!(
                    api = %call.api,
                    method = %call.method,
                    path = %call.path,
                    wait_ms = waiting.as_millis() as u64,
                    "rate limited (429); holding requests back"
                );
                return Failure {
                    error: ApiError::RateLimited { call, retry_after },
                    maybe_applied: false,
                };
            }
            401 => ApiError::Auth {
                call,
                status,
                message,
                hint: self.config.auth_hint.clone(),
            },
            // A 403 may be about this one item, not the token: a Trengo token sees only what
            // its user may see (trengo-api.md §1), a GHL token only its scopes.
            403 => ApiError::Auth {
                call,
                status,
                message,
                hint: format!(
                    "the token's user may lack access to this item (its channel or team) or a \
                     scope for this endpoint (`trengo-sync doctor` checks both); otherwise {}",
                    self.config.auth_hint
                ),
            },
            404 | 410 => ApiError::NotFound {
                call,
                status,
                message,
            },
            408 | 500..=599 => ApiError::Transient {
                call,
                status: Some(status),
                reason: if message.is_empty() {
                    "server error".to_string()
                } else {
                    message
                },
            },
            _ => ApiError::Validation {
                call,
                status,
                message,
                trace_id,
            },
        };
        Failure {
            error,
            maybe_applied: true,
        }
    }

    fn log(
        &self,
        call: &CallSite,
        status: Option<u16>,
        started: tokio::time::Instant,
        attempt: usize,
    ) {
        // Every attempt counts, retries included; "error" when no answer came (timeout, refused
        // or dropped connection).
        let status_label = status.map_or_else(|| "error".to_string(), |s| s.to_string());
        metrics::counter!("trengo_sync_api_requests_total",
            "api" => call.api.label(), "status" => status_label)
        .increment(1);
        let snapshot = self.budget.snapshot();
        tracing::debug!(
            api = %call.api,
            method = %call.method,
            path = %call.path,
            status = status.unwrap_or(0),
            latency_ms = started.elapsed().as_millis() as u64,
            attempt,
            budget_left = snapshot.remaining,
            daily_left = snapshot.daily_remaining,
            "request"
        );
    }
}

/// Why a body could not be read.
enum BodyError {
    /// It was larger than the limit.
    TooLarge,
    /// The connection broke off.
    Broken(reqwest::Error),
}

/// Reads the body chunk by chunk, stopping as soon as it passes `limit` bytes (a stated
/// `Content-Length` over the limit stops it before reading anything).
async fn read_capped(mut response: reqwest::Response, limit: usize) -> Result<Vec<u8>, BodyError> {
    if response
        .content_length()
        .is_some_and(|len| len > limit as u64)
    {
        return Err(BodyError::TooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(BodyError::Broken)? {
        if body.len() + chunk.len() > limit {
            return Err(BodyError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn is_json(body: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(body).is_ok()
}

/// Describes a transport failure and says whether the server may have seen the request.
fn describe_send_error(e: &reqwest::Error, timeout: Duration) -> (String, bool) {
    if e.is_timeout() {
        (
            format!("no answer within {} s", timeout.as_secs_f64()),
            true,
        )
    } else if e.is_connect() {
        (
            "could not connect (is the base URL right and the service up?)".to_string(),
            false,
        )
    } else {
        // Covers connections closed before or during the answer. reqwest's Display for these
        // carries only the URL path and a cause, never headers.
        (format!("connection failed: {}", error_chain(e)), true)
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// An HTML error page, as a proxy or gateway in front of the API answers (502, 503, 504),
/// described by its title instead of its markup.
fn html_page(body: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(body);
    let lower = text.to_ascii_lowercase();
    if !lower.trim_start().starts_with('<') || !lower.contains("<html") {
        return None;
    }
    let title = lower
        .find("<title>")
        .and_then(|start| {
            let from = start + "<title>".len();
            lower[from..]
                .find("</title>")
                .map(|end| text[from..from + end].trim().to_string())
        })
        .filter(|t| !t.is_empty());
    Some(match title {
        Some(title) => {
            format!("an HTML page \"{title}\" (a proxy or gateway answered, not the API)")
        }
        None => "an HTML page (a proxy or gateway answered, not the API)".to_string(),
    })
}

/// The API's error message and GHL trace id from an error body, in either API's shape:
/// Trengo/Laravel `{message, errors: {field: [..]}}`, GHL `{statusCode, message: string | [..],
/// error, traceId}` (ghl-api.md §9, trengo-api.md §11).
pub fn error_message(body: &[u8]) -> (String, Option<String>) {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else {
        return (html_page(body).unwrap_or_else(|| snippet(body)), None);
    };
    let mut parts = Vec::new();
    match value.get("message") {
        Some(serde_json::Value::String(s)) => parts.push(s.clone()),
        Some(serde_json::Value::Array(items)) => {
            parts.extend(items.iter().map(|i| match i {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            }));
        }
        _ => {}
    }
    if let Some(serde_json::Value::Object(errors)) = value.get("errors") {
        for (field, problems) in errors {
            match problems {
                serde_json::Value::Array(items) => {
                    for item in items {
                        parts.push(format!("{field}: {}", item.as_str().unwrap_or_default()));
                    }
                }
                other => parts.push(format!("{field}: {other}")),
            }
        }
    }
    if parts.is_empty()
        && let Some(serde_json::Value::String(error)) = value.get("error")
    {
        parts.push(error.clone());
    }
    let trace = value
        .get("traceId")
        .and_then(|t| t.as_str())
        .map(str::to_string);
    (redact(&parts.join("; ")), trace)
}

fn header_secs(headers: &HeaderMap, name: HeaderName) -> Option<Duration> {
    rate_headers::header_u64(headers, name.as_str()).map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ghl_array_message_is_joined_and_trace_kept() {
        let body = br#"{"statusCode":422,"message":["a is required","b is bad"],"error":"Unprocessable Entity","traceId":"t-1"}"#;
        let (message, trace) = error_message(body);
        assert_eq!(message, "a is required; b is bad");
        assert_eq!(trace.as_deref(), Some("t-1"));
    }

    #[test]
    fn laravel_field_errors_are_listed() {
        let body = br#"{"message":"The given data was invalid.","errors":{"label_id":["The label id field is required."]}}"#;
        let (message, _) = error_message(body);
        assert!(message.contains("label_id: The label id field is required."));
    }
}

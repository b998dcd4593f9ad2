//! Typed errors of both API clients.
//!
//! Every error names the API, the method and path of the call and the HTTP status it got, and
//! says what the user can do about it. The engine reads the *kind* (auth, not found,
//! validation, rate limited, transient, malformed, config) to decide between "retry later",
//! "skip this item" and "stop and tell the operator". No variant ever carries a token.

use std::fmt;
use std::time::Duration;

use super::redact::redact;

/// Which remote API a call went to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Api {
    /// Trengo REST v2.
    Trengo,
    /// GoHighLevel API v2 (LeadConnector).
    Ghl,
}

impl Api {
    /// The API's name in metric labels and JSON: `trengo` or `ghl`.
    pub fn label(self) -> &'static str {
        match self {
            Api::Trengo => "trengo",
            Api::Ghl => "ghl",
        }
    }
}

impl fmt::Display for Api {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Api::Trengo => f.write_str("Trengo"),
            Api::Ghl => f.write_str("GHL"),
        }
    }
}

/// The call an error happened on: API, method and path (never the query, which could carry
/// identifiers a user did not mean to log, and never a header).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallSite {
    /// The API called.
    pub api: Api,
    /// HTTP method, upper case.
    pub method: String,
    /// Request path without query string.
    pub path: String,
}

impl CallSite {
    /// A call site for `method path` on `api`.
    pub fn new(api: Api, method: impl Into<String>, path: impl Into<String>) -> Self {
        Self {
            api,
            method: method.into(),
            path: path.into(),
        }
    }
}

impl fmt::Display for CallSite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.api, self.method, self.path)
    }
}

/// What went wrong talking to Trengo or GHL.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 401/403: the credential is missing, wrong, expired or lacks a scope.
    #[error("{call} answered HTTP {status} ({message}): the credential was refused; {hint}")]
    Auth {
        /// The call that was refused.
        call: CallSite,
        /// 401 or 403.
        status: u16,
        /// The API's own message, if it sent one.
        message: String,
        /// What to check (which config key or environment variable).
        hint: String,
    },
    /// 404/410: the item does not exist (any more) or this credential cannot see it.
    #[error(
        "{call} answered HTTP {status} ({message}): the item does not exist or this credential cannot see it"
    )]
    NotFound {
        call: CallSite,
        /// 404 or 410.
        status: u16,
        /// The API's own message, if any.
        message: String,
    },
    /// Another 4xx: the API refused the request as invalid; retrying the same request will not help.
    #[error("{call} answered HTTP {status}: the request was rejected as invalid: {message}")]
    Validation {
        call: CallSite,
        /// The status (400, 409, 422, ...).
        status: u16,
        /// The API's message (GHL's array form joined with "; ").
        message: String,
        /// GHL's `traceId`, to quote to GHL support.
        trace_id: Option<String>,
    },
    /// 429 after all retries, or a budget that stayed exhausted.
    #[error(
        "{call} answered HTTP 429 (rate limited) and kept doing so after retries; the daemon will slow down, or lower its concurrency{}",
        retry_after.map(|d| format!(" (server asked to wait {} s)", d.as_secs())).unwrap_or_default()
    )]
    RateLimited {
        call: CallSite,
        /// What the server asked for in `Retry-After`, if it said.
        retry_after: Option<Duration>,
    },
    /// 5xx, timeouts, dropped connections, broken bodies: worth retrying later.
    #[error("{call} failed transiently{}: {reason}; it will be retried later", status.map(|s| format!(" (HTTP {s})")).unwrap_or_default())]
    Transient {
        call: CallSite,
        /// The status, when the server answered at all.
        status: Option<u16>,
        /// What happened (timeout, connection refused, ...).
        reason: String,
    },
    /// The answer could not be read as the expected JSON.
    #[error(
        "{call} answered HTTP {status} with a body that could not be read ({reason}); it began: {snippet:?}"
    )]
    Malformed {
        call: CallSite,
        /// The status of the unreadable answer.
        status: u16,
        /// Why it could not be read.
        reason: String,
        /// The first characters of the body.
        snippet: String,
    },
    /// The answer was larger than [`MAX_BODY_BYTES`]: it is not read further, and the item
    /// fails (retrying would fetch the same answer again).
    #[error(
        "{call} answered HTTP {status} with a body larger than the {limit_mib} MiB limit for one answer; \
         the answer was not read and this item was skipped (a page that large means the API sent \
         something this daemon does not expect; `trengo-sync explain` names the item)",
        limit_mib = limit / (1024 * 1024)
    )]
    TooLarge {
        /// The call.
        call: CallSite,
        /// The status of the oversized answer.
        status: u16,
        /// The limit that was exceeded, in bytes.
        limit: usize,
    },
    /// The client itself is misconfigured (bad base URL, unusable header value, ...).
    #[error("{api} client configuration: {message}")]
    Config {
        /// The API whose client is misconfigured.
        api: Api,
        /// What is wrong and which setting to change.
        message: String,
    },
    /// The OAuth token vault could not load or store tokens; without it a rotated refresh
    /// token would be lost, so the call is not made.
    #[error(
        "GHL OAuth token vault failed to {action}: {message}; check the state database is writable, then re-run the OAuth install if the refresh token was lost"
    )]
    TokenVault {
        /// "load tokens" or "store tokens".
        action: &'static str,
        /// The vault's error.
        message: String,
    },
}

impl ApiError {
    /// The call this error happened on, when there was one.
    pub fn call(&self) -> Option<&CallSite> {
        match self {
            ApiError::Auth { call, .. }
            | ApiError::NotFound { call, .. }
            | ApiError::Validation { call, .. }
            | ApiError::RateLimited { call, .. }
            | ApiError::Transient { call, .. }
            | ApiError::Malformed { call, .. }
            | ApiError::TooLarge { call, .. } => Some(call),
            ApiError::Config { .. } | ApiError::TokenVault { .. } => None,
        }
    }

    /// The HTTP status the server answered, when it answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            ApiError::Auth { status, .. }
            | ApiError::NotFound { status, .. }
            | ApiError::Validation { status, .. }
            | ApiError::Malformed { status, .. }
            | ApiError::TooLarge { status, .. } => Some(*status),
            ApiError::RateLimited { .. } => Some(429),
            ApiError::Transient { status, .. } => *status,
            ApiError::Config { .. } | ApiError::TokenVault { .. } => None,
        }
    }

    /// This error in codes and ids only: API, method, path, HTTP status and kind, never text
    /// the remote side sent (an API's message may quote a customer's name or e-mail). This is
    /// what is stored as a retry reason and served on `/status` and `/readyz`; logs carry the
    /// whole (redacted) message.
    pub fn code(&self) -> String {
        match self {
            ApiError::Auth { call, status, .. } => {
                format!("{call}: HTTP {status} credential refused")
            }
            ApiError::NotFound { call, status, .. } => format!("{call}: HTTP {status} not found"),
            ApiError::Validation {
                call,
                status,
                trace_id,
                ..
            } => match trace_id {
                Some(trace) => format!("{call}: HTTP {status} rejected as invalid (trace {trace})"),
                None => format!("{call}: HTTP {status} rejected as invalid"),
            },
            ApiError::RateLimited { call, .. } => format!("{call}: HTTP 429 rate limited"),
            ApiError::Transient {
                call,
                status: Some(status),
                ..
            } => format!("{call}: HTTP {status} transient failure"),
            // Without a status the reason is the daemon's own words (timeout, refused).
            ApiError::Transient {
                call,
                status: None,
                reason,
            } => format!("{call}: {reason}"),
            ApiError::Malformed { call, status, .. } => {
                format!("{call}: HTTP {status} unreadable answer")
            }
            ApiError::TooLarge {
                call,
                status,
                limit,
            } => format!("{call}: HTTP {status} answer over the {limit} byte limit"),
            ApiError::Config { .. } | ApiError::TokenVault { .. } => self.to_string(),
        }
    }

    /// Whether trying the same call again later may succeed (rate limits and transient failures).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            ApiError::RateLimited { .. } | ApiError::Transient { .. }
        )
    }
}

/// The most one answer's body may be: 8 MiB. A larger answer is not read further and fails
/// its item with [`ApiError::TooLarge`]. The largest answers either API gives this daemon are
/// pages of 25 tickets or up to 500 contacts, well under 1 MiB.
pub const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

/// Cuts a response body down to a short, printable snippet for an error message, with every
/// credential-like value redacted ([`redact`]) before the cut.
pub fn snippet(body: &[u8]) -> String {
    const MAX: usize = 120;
    // Redacting needs the text around the cut: a value cut off mid-way is still recognised by
    // its key, which may lie before the cut.
    const SCAN: usize = 4096;
    let text = redact(&String::from_utf8_lossy(&body[..body.len().min(SCAN)]));
    let mut out: String = text.chars().take(MAX).collect();
    if text.chars().count() > MAX || body.len() > SCAN {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_api_method_path_and_status() {
        let err = ApiError::Auth {
            call: CallSite::new(Api::Trengo, "GET", "/tickets"),
            status: 401,
            message: "Unauthenticated.".into(),
            hint: "check trengo.token / TRENGO_SYNC__TRENGO__TOKEN".into(),
        };
        let text = err.to_string();
        assert!(text.contains("Trengo GET /tickets"), "{text}");
        assert!(text.contains("401"), "{text}");
        assert!(text.contains("TRENGO_SYNC__TRENGO__TOKEN"), "{text}");
    }

    #[test]
    fn snippet_redacts_tokens_even_past_the_cut() {
        let body = format!(
            r#"{{"padding":"{}","access_token":"at-SECRET-1","refresh_token":"rt-SECRET-2"}}"#,
            "p".repeat(100)
        );
        let text = snippet(body.as_bytes());
        assert!(!text.contains("SECRET"), "{text}");
    }

    #[test]
    fn codes_hold_no_remote_text() {
        let call = CallSite::new(Api::Ghl, "POST", "/contacts/c-1/tasks");
        let errors = [
            ApiError::Validation {
                call: call.clone(),
                status: 422,
                message: "title Jane Customer is too long".into(),
                trace_id: Some("t-9".into()),
            },
            ApiError::Malformed {
                call: call.clone(),
                status: 200,
                reason: "expected a string".into(),
                snippet: "Jane Customer".into(),
            },
            ApiError::Transient {
                call: call.clone(),
                status: Some(502),
                reason: "Jane Customer".into(),
            },
            ApiError::NotFound {
                call: call.clone(),
                status: 404,
                message: "Jane Customer not found".into(),
            },
        ];
        for e in errors {
            let code = e.code();
            assert!(!code.contains("Jane"), "{code}");
            assert!(
                code.contains("GHL POST /contacts/c-1/tasks: HTTP"),
                "{code}"
            );
        }
    }

    #[test]
    fn snippet_is_short() {
        let body = "x".repeat(1000);
        assert!(snippet(body.as_bytes()).chars().count() <= 121);
    }
}

//! Installing the GHL marketplace app on a location (`trengo-sync auth ghl`): the
//! authorization URL, the code that comes back, and its exchange for the first tokens
//! (ghl-api.md §1.2 \[spec S3, S5\]).
//!
//! 1. [`authorization_url`]: GHL's `chooselocation` page with `response_type=code`, the
//!    app's `client_id`, the registered `redirect_uri`, the space-separated `scope`, and a
//!    random `state` against forged redirects.
//! 2. The admin picks the location and approves; the browser is sent to the redirect URI with
//!    `?code=…`. The code arrives pasted ([`read_pasted`]: the bare code or the whole redirect
//!    URL) or through a one-shot loopback listener ([`catch_redirect`]). A redirect whose
//!    `state` differs from ours is refused. GHL's page documentation names no `state`, so a
//!    redirect without one is taken, with the location check below as the guard: a forged
//!    code would belong to someone else's location.
//! 3. [`exchange`]: a form-encoded `POST` of `grant_type=authorization_code`, the code, the
//!    client id and secret, the same `redirect_uri` and `user_type=Location` to the token
//!    endpoint (`ghl.oauth.token_url`). A code works once, so the request is only re-sent when
//!    it provably never arrived. The answer must name the configured location.
//!
//! The client secret, the code and the tokens are secrets: none of them, and nothing from the
//! token endpoint's body, ever reaches an error message, a log line or `Debug` output.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Request as HttpRequest, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use chrono::{DateTime, Utc};
use reqwest::Method;
use reqwest::header::HeaderMap;
use secrecy::SecretString;
use serde::Deserialize;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use url::Url;

use super::OAuthTokens;
use crate::api::endpoint::ghl_rate_headers;
use crate::api::{
    Api, ApiError, Body, Budget, Endpoint, EndpointConfig, Replay, Request, RetryPolicy,
};
use crate::clock::SharedClock;

/// How long a refresh token stays valid when it is not used (ghl-api.md §1.2 \[spec S5\]: "valid
/// one year if unused"; each use returns a new one valid for another year).
pub const REFRESH_TOKEN_LIFETIME: chrono::Duration = chrono::Duration::days(365);

/// How long before a refresh token's expiry `status` and `check` start warning.
pub const REFRESH_EXPIRY_WARNING: chrono::Duration = chrono::Duration::days(30);

/// The path the loopback listener answers when no redirect URI is configured.
pub const DEFAULT_CALLBACK_PATH: &str = "/oauth/callback";

/// Everything the install needs to know.
#[derive(Debug, Clone)]
pub struct InstallSettings {
    /// GHL's authorization page (`…/oauth/chooselocation`).
    pub authorize_url: Url,
    /// The token endpoint.
    pub token_url: Url,
    /// The app's client id.
    pub client_id: String,
    /// The app's client secret.
    pub client_secret: SecretString,
    /// The redirect URI registered with the app.
    pub redirect_uri: Url,
    /// Scopes to ask for.
    pub scopes: Vec<String>,
    /// The location the tokens must belong to (`ghl.location_id`).
    pub location_id: String,
    /// Per-request timeout of the exchange.
    pub timeout: Duration,
}

/// The authorization URL for `settings`, carrying `state`.
pub fn authorization_url(settings: &InstallSettings, state: &str) -> Url {
    let mut url = settings.authorize_url.clone();
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("redirect_uri", settings.redirect_uri.as_str())
        .append_pair("client_id", &settings.client_id)
        .append_pair("scope", &settings.scopes.join(" "))
        .append_pair("state", state);
    url
}

/// A fresh random `state`: 32 hex digits of a version 4 UUID, 122 bits from the operating
/// system's random source (`uuid` reads it through `getrandom`; `rand` is only built with the
/// fakes).
pub fn new_state() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// Why the install failed. Holds no secret and nothing from the token endpoint's body.
#[derive(Debug, Clone, PartialEq)]
pub enum InstallError {
    /// The redirect's `state` is not the one this run sent.
    StateMismatch,
    /// The redirect carried an `error` instead of a code (the admin declined, for example).
    Denied {
        /// GHL's error code, reduced to letters, digits and `_`.
        error: String,
    },
    /// Neither a code nor an error was found in what arrived.
    NoCode,
    /// Nothing arrived on the listener in time.
    NoRedirect {
        /// How long it waited.
        waited: Duration,
    },
    /// The token endpoint refused the exchange.
    Refused {
        /// Its HTTP status.
        status: u16,
    },
    /// The token endpoint could not be reached, or answered with a server error.
    Unreachable {
        /// What happened, in words.
        reason: String,
    },
    /// The token endpoint's answer lacked something needed.
    Malformed {
        /// What was missing.
        missing: &'static str,
    },
    /// The tokens belong to a company (agency), not to a location.
    NotALocationToken,
    /// The tokens belong to another location than `ghl.location_id`.
    LocationMismatch {
        /// `ghl.location_id`.
        expected: String,
        /// The location the app was installed on.
        installed: String,
    },
    /// Something about this machine: a listener, a client, the configuration.
    Setup(String),
}

impl fmt::Display for InstallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InstallError::StateMismatch => f.write_str(
                "the redirect's `state` is not the one this run sent, so it did not come from the \
                 authorization URL printed here (a stale tab, or a forged link); nothing was \
                 exchanged or stored: run `trengo-sync auth ghl` again and use the new URL",
            ),
            InstallError::Denied { error } => write!(
                f,
                "the authorization page answered `{error}` instead of a code (was the install \
                 declined?); run `trengo-sync auth ghl` again and approve the app"
            ),
            InstallError::NoCode => f.write_str(
                "no authorization code found: paste the `code` value of the redirect, or the whole \
                 URL the browser was sent to (it contains `?code=`)",
            ),
            InstallError::NoRedirect { waited } => write!(
                f,
                "no redirect arrived within {} s; open the printed URL in a browser on this \
                 machine, or run again without --listen and paste the code",
                waited.as_secs()
            ),
            InstallError::Refused { status: 401 | 403 } => f.write_str(
                "the token endpoint refused the app's credentials: check ghl.oauth.client_id \
                 and ghl.oauth.client_secret (the app's Client Keys); nothing was stored",
            ),
            InstallError::Refused { status } => write!(
                f,
                "the token endpoint refused the code (HTTP {status}): codes work once and only \
                 for a short time, and the redirect URI must be the registered one \
                 (ghl.oauth.redirect_uri); run `trengo-sync auth ghl` again and use the new code \
                 at once; nothing was stored"
            ),
            InstallError::Unreachable { reason } => write!(
                f,
                "the token endpoint could not be used ({reason}); check ghl.oauth.token_url and \
                 the network, then run `trengo-sync auth ghl` again (a code works once: \
                 approve again for a new one); nothing was stored"
            ),
            InstallError::Malformed { missing } => write!(
                f,
                "the token endpoint's answer has no usable `{missing}`; is ghl.oauth.token_url \
                 GHL's token endpoint? nothing was stored"
            ),
            InstallError::NotALocationToken => f.write_str(
                "the app was installed for an agency, not a location: run `trengo-sync auth ghl` \
                 again and choose the sub-account (location) on the authorization page (the app's \
                 target user must be Sub-account); nothing was stored",
            ),
            InstallError::LocationMismatch {
                expected,
                installed,
            } => write!(
                f,
                "the app was installed on GHL location {installed}, but ghl.location_id is \
                 {expected}: run `trengo-sync auth ghl` again and choose location {expected} on \
                 the authorization page, or correct ghl.location_id; nothing was stored"
            ),
            InstallError::Setup(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for InstallError {}

/// A code that arrived, and whether its `state` could be checked.
pub struct Arrived {
    /// The authorization code.
    pub code: SecretString,
    /// True when the redirect carried our `state`; false when it carried none.
    pub state_checked: bool,
}

impl fmt::Debug for Arrived {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Arrived")
            .field("code", &"[redacted]")
            .field("state_checked", &self.state_checked)
            .finish()
    }
}

/// Reads a redirect's query pairs: an `error`, a foreign `state`, or the code.
fn read_redirect<'a>(
    pairs: impl Iterator<Item = (std::borrow::Cow<'a, str>, std::borrow::Cow<'a, str>)>,
    expected_state: Option<&str>,
) -> Result<Arrived, InstallError> {
    let pairs: BTreeMap<String, String> = pairs
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    if let Some(error) = pairs.get("error") {
        let error: String = error
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
            .take(40)
            .collect();
        return Err(InstallError::Denied { error });
    }
    let state = pairs.get("state").filter(|s| !s.is_empty());
    if let (Some(expected), Some(state)) = (expected_state, state)
        && state != expected
    {
        return Err(InstallError::StateMismatch);
    }
    let code = pairs
        .get("code")
        .map(|c| c.trim())
        .filter(|c| !c.is_empty())
        .ok_or(InstallError::NoCode)?;
    Ok(Arrived {
        code: SecretString::from(code.to_owned()),
        state_checked: expected_state.is_some() && state.is_some(),
    })
}

/// What the user pasted: the bare code, or the redirect URL (or its query) that carries it.
/// A `state` in it must be `expected_state` when one is given.
pub fn read_pasted(input: &str, expected_state: Option<&str>) -> Result<Arrived, InstallError> {
    let input = input.trim();
    if input.is_empty() {
        return Err(InstallError::NoCode);
    }
    let query = match input.split_once('?') {
        Some((_, query)) => Some(query),
        None if input.contains("code=") || input.contains("error=") => Some(input),
        None => None,
    };
    match query {
        Some(query) => read_redirect(
            url::form_urlencoded::parse(query.split('#').next().unwrap_or("").as_bytes()),
            expected_state,
        ),
        None if input.chars().any(char::is_whitespace) => Err(InstallError::NoCode),
        None => Ok(Arrived {
            code: SecretString::from(input.to_owned()),
            state_checked: false,
        }),
    }
}

/// What the listener hands from its handler to [`catch_redirect`].
type Slot = Arc<Mutex<Option<oneshot::Sender<Result<Arrived, InstallError>>>>>;

#[derive(Clone)]
struct ListenerState {
    path: String,
    state: String,
    slot: Slot,
}

/// Serves `listener` until one request reaches `path` (the redirect URI's path), answers the
/// browser with a short page, and returns what that request carried. Other paths (a
/// browser's `/favicon.ico`) get 404 and are otherwise ignored. Gives up after `wait`.
pub async fn catch_redirect(
    listener: TcpListener,
    path: &str,
    state: &str,
    wait: Duration,
) -> Result<Arrived, InstallError> {
    let (tx, rx) = oneshot::channel();
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let shared = ListenerState {
        path: path.to_owned(),
        state: state.to_owned(),
        slot: Arc::new(Mutex::new(Some(tx))),
    };
    let app = Router::new().fallback(redirect_page).with_state(shared);
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = stop_rx.await;
            })
            .await;
    });
    let outcome = tokio::time::timeout(wait, rx).await;
    // The page is already on its way: graceful shutdown lets that answer finish.
    let _ = stop_tx.send(());
    let mut server = server;
    if tokio::time::timeout(Duration::from_secs(5), &mut server)
        .await
        .is_err()
    {
        server.abort();
    }
    match outcome {
        Ok(Ok(arrived)) => arrived,
        Ok(Err(_)) => Err(InstallError::Setup(
            "the redirect listener stopped unexpectedly".to_owned(),
        )),
        Err(_) => Err(InstallError::NoRedirect { waited: wait }),
    }
}

async fn redirect_page(State(shared): State<ListenerState>, request: HttpRequest) -> Response {
    if request.uri().path() != shared.path {
        return (StatusCode::NOT_FOUND, "not the redirect path").into_response();
    }
    let query = request.uri().query().unwrap_or("");
    let arrived = read_redirect(
        url::form_urlencoded::parse(query.as_bytes()),
        Some(&shared.state),
    );
    let (status, text) = match &arrived {
        Ok(_) => (
            StatusCode::OK,
            "The authorization arrived. Return to the terminal: trengo-sync is exchanging the \
             code and says there whether the install succeeded. You can close this tab.",
        ),
        Err(InstallError::StateMismatch) => (
            StatusCode::BAD_REQUEST,
            "Refused: this redirect does not belong to the running `trengo-sync auth ghl` \
             (its state does not match). Nothing was stored.",
        ),
        Err(_) => (
            StatusCode::BAD_REQUEST,
            "No authorization code arrived (the install may have been declined). The terminal \
             says what to do next.",
        ),
    };
    let sender = shared.slot.lock().unwrap_or_else(|e| e.into_inner()).take();
    match sender {
        Some(sender) => {
            let _ = sender.send(arrived);
            let page = format!(
                "<!doctype html><html><head><meta charset=\"utf-8\"><title>trengo-sync</title>\
                 </head><body><p>{text}</p></body></html>"
            );
            (status, Html(page)).into_response()
        }
        // One-shot: a second redirect while the first is handled is not taken.
        None => (
            StatusCode::GONE,
            "this listener already took a redirect; see the terminal",
        )
            .into_response(),
    }
}

/// The exchange's result: the tokens and what they are for.
pub struct Installed {
    /// The first token pair.
    pub tokens: OAuthTokens,
    /// The location the tokens belong to (equal to the configured one).
    pub location_id: String,
    /// The scopes GHL granted.
    pub granted: Vec<String>,
    /// Scopes asked for but not granted.
    pub missing: Vec<String>,
}

impl fmt::Debug for Installed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Installed")
            .field("tokens", &"[redacted]")
            .field("expires_at", &self.tokens.expires_at)
            .field("location_id", &self.location_id)
            .field("granted", &self.granted)
            .field("missing", &self.missing)
            .finish()
    }
}

/// `POST /oauth/token`'s answer to a code (ghl-api.md §1.2, confirmed field list). Every field
/// is optional so that a missing one is named, never shown.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CodeAnswer {
    #[serde(rename = "access_token")]
    access_token: Option<String>,
    #[serde(rename = "refresh_token")]
    refresh_token: Option<String>,
    #[serde(rename = "expires_in")]
    expires_in: Option<i64>,
    scope: Option<String>,
    location_id: Option<String>,
}

/// Exchanges `code` for the first tokens and checks they belong to the configured location.
pub async fn exchange(
    settings: &InstallSettings,
    code: &SecretString,
    budget: Arc<Budget>,
    clock: SharedClock,
) -> Result<Installed, InstallError> {
    let endpoint = Endpoint::new(
        EndpointConfig {
            api: Api::Ghl,
            base_url: settings.token_url.clone(),
            timeout: settings.timeout,
            headers: HeaderMap::new(),
            retry: RetryPolicy::default(),
            auth_hint: "check ghl.oauth.client_id and ghl.oauth.client_secret".to_owned(),
            rate_headers: ghl_rate_headers,
            // The token endpoint's answers hold tokens: never quoted in an error.
            secret_answers: true,
        },
        budget,
        clock.clone(),
    )
    .map_err(|e| InstallError::Setup(format!("cannot set up the HTTP client: {e}")))?;
    let secret = |v: &str| SecretString::from(v.to_owned());
    let form = vec![
        ("client_id".to_owned(), secret(&settings.client_id)),
        ("client_secret".to_owned(), settings.client_secret.clone()),
        ("grant_type".to_owned(), secret("authorization_code")),
        ("code".to_owned(), code.clone()),
        (
            "redirect_uri".to_owned(),
            secret(settings.redirect_uri.as_str()),
        ),
        ("user_type".to_owned(), secret("Location")),
    ];
    let mut request = Request::new(Method::POST, settings.token_url.path().to_owned());
    request.url = Some(settings.token_url.clone());
    request.body = Body::Form(form);
    // A code is spent by the first request that reaches GHL: re-send only one that never did.
    request.replay = Replay::CreateOnce;
    let reply = endpoint
        .send(&request, None)
        .await
        .map_err(refusal_without_body)?;
    let answer: CodeAnswer =
        serde_json::from_slice(&reply.body).map_err(|_| InstallError::Malformed {
            missing: "JSON body",
        })?;
    let access_token =
        answer
            .access_token
            .filter(|t| !t.is_empty())
            .ok_or(InstallError::Malformed {
                missing: "access_token",
            })?;
    let refresh_token =
        answer
            .refresh_token
            .filter(|t| !t.is_empty())
            .ok_or(InstallError::Malformed {
                missing: "refresh_token",
            })?;
    let location_id = answer
        .location_id
        .filter(|l| !l.is_empty())
        .ok_or(InstallError::NotALocationToken)?;
    if location_id != settings.location_id {
        return Err(InstallError::LocationMismatch {
            expected: settings.location_id.clone(),
            installed: location_id,
        });
    }
    let granted: Vec<String> = answer
        .scope
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    let missing = settings
        .scopes
        .iter()
        .filter(|s| !granted.contains(s))
        .cloned()
        .collect();
    Ok(Installed {
        tokens: OAuthTokens {
            access_token: SecretString::from(access_token),
            refresh_token: SecretString::from(refresh_token),
            expires_at: clock.now()
                + chrono::Duration::seconds(answer.expires_in.unwrap_or(86_399).max(0)),
        },
        location_id,
        granted,
        missing,
    })
}

/// The token endpoint's failure in words, keeping only its status: its body may echo what
/// was sent.
fn refusal_without_body(error: ApiError) -> InstallError {
    match error {
        ApiError::Auth { status, .. }
        | ApiError::NotFound { status, .. }
        | ApiError::Validation { status, .. } => InstallError::Refused { status },
        ApiError::RateLimited { .. } => InstallError::Unreachable {
            reason: "rate limited (429); wait a minute".to_owned(),
        },
        ApiError::Transient {
            status: Some(status),
            ..
        }
        | ApiError::Malformed { status, .. }
        | ApiError::TooLarge { status, .. } => InstallError::Unreachable {
            reason: format!("HTTP {status}"),
        },
        ApiError::Transient {
            status: None,
            reason,
            ..
        } => InstallError::Unreachable { reason },
        ApiError::Config { message, .. } | ApiError::TokenVault { message, .. } => {
            InstallError::Setup(message)
        }
    }
}

/// When a refresh token last issued at `issued_at` expires if it is not used.
pub fn refresh_expiry(issued_at: DateTime<Utc>) -> DateTime<Utc> {
    issued_at + REFRESH_TOKEN_LIFETIME
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    fn settings() -> InstallSettings {
        InstallSettings {
            authorize_url: Url::parse(
                "https://marketplace.gohighlevel.com/v2/oauth/chooselocation",
            )
            .unwrap(),
            token_url: Url::parse("https://services.leadconnectorhq.com/oauth/token").unwrap(),
            client_id: "app-1".into(),
            client_secret: SecretString::from("s".to_owned()),
            redirect_uri: Url::parse("http://127.0.0.1:8765/oauth/callback").unwrap(),
            scopes: vec!["contacts.readonly".into(), "contacts.write".into()],
            location_id: "loc-1".into(),
            timeout: Duration::from_secs(5),
        }
    }

    #[test]
    fn the_authorization_url_names_app_redirect_scopes_and_state() {
        let url = authorization_url(&settings(), "st4te");
        let pairs: BTreeMap<String, String> = url.query_pairs().into_owned().collect();
        assert_eq!(url.path(), "/v2/oauth/chooselocation");
        assert_eq!(pairs["response_type"], "code");
        assert_eq!(pairs["client_id"], "app-1");
        assert_eq!(
            pairs["redirect_uri"],
            "http://127.0.0.1:8765/oauth/callback"
        );
        assert_eq!(pairs["scope"], "contacts.readonly contacts.write");
        assert_eq!(pairs["state"], "st4te");
    }

    #[test]
    fn states_are_long_and_different() {
        let (a, b) = (new_state(), new_state());
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
    }

    #[test]
    fn a_pasted_code_url_or_query_is_read() {
        let bare = read_pasted("  abc123\n", Some("s")).unwrap();
        assert_eq!(bare.code.expose_secret(), "abc123");
        assert!(!bare.state_checked);
        let url = read_pasted("http://127.0.0.1:1/cb?code=xyz&state=s", Some("s")).unwrap();
        assert_eq!(url.code.expose_secret(), "xyz");
        assert!(url.state_checked);
        let query = read_pasted("code=q1", Some("s")).unwrap();
        assert_eq!(query.code.expose_secret(), "q1");
    }

    #[test]
    fn a_foreign_state_an_error_or_nothing_is_refused() {
        assert_eq!(
            read_pasted("https://x/cb?code=c&state=other", Some("mine")).unwrap_err(),
            InstallError::StateMismatch
        );
        assert_eq!(
            read_pasted("https://x/cb?error=access_denied<script>", Some("s")).unwrap_err(),
            InstallError::Denied {
                error: "access_deniedscript".into()
            }
        );
        assert_eq!(read_pasted("", None).unwrap_err(), InstallError::NoCode);
        assert_eq!(
            read_pasted("https://x/cb?state=s", Some("s")).unwrap_err(),
            InstallError::NoCode
        );
        assert_eq!(
            read_pasted("two words", None).unwrap_err(),
            InstallError::NoCode
        );
    }

    #[test]
    fn refresh_tokens_expire_a_year_after_issue() {
        let at = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(
            refresh_expiry(at),
            DateTime::parse_from_rfc3339("2027-01-01T00:00:00Z").unwrap()
        );
    }
}

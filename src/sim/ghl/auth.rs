//! Who may call the GHL fake: the Private Integration Token, and OAuth access tokens that
//! expire on the injected clock and come from `POST /oauth/token`, either for an
//! authorization code ([`consent`](super::consent)) or for a refresh token that rotates on
//! every use (ghl-api.md §1.2 \[spec S3, S5\]). Redeeming a code starts a new chain: the
//! refresh token of the previous install stops working.
//!
//! Tokens are secrets: they are kept out of `Debug` output and error messages.

use std::collections::BTreeMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

use super::consent::{Consent, ConsentRequest};
use super::error::GhlError;
use super::options::GhlFakeOptions;
use super::server::GhlFakeState;

const TOKEN_ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";

/// The tokens the fake accepts and the OAuth client it knows.
pub struct TokenBook {
    private_token: SecretString,
    client_id: String,
    client_secret: SecretString,
    refresh_token: SecretString,
    /// The scopes of the current chain (the default app's, until a code is redeemed).
    scope: String,
    access_tokens: BTreeMap<String, DateTime<Utc>>,
    ttl: chrono::Duration,
    refreshes: u64,
    installs: u64,
    consent: Consent,
    rng: StdRng,
}

impl std::fmt::Debug for TokenBook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenBook")
            .field("client_id", &self.client_id)
            .field("access_tokens", &self.access_tokens.len())
            .field("refreshes", &self.refreshes)
            .field("installs", &self.installs)
            .field("consent", &self.consent)
            .finish_non_exhaustive()
    }
}

/// A successful refresh, as `POST /oauth/token` answers it.
#[derive(Debug, Clone)]
pub struct Grant {
    /// The new access token.
    pub access_token: SecretString,
    /// The new refresh token (the old one no longer works).
    pub refresh_token: SecretString,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    /// The scopes granted, space-separated.
    pub scope: String,
}

/// The scopes the fake's default app holds before any code is redeemed.
const DEFAULT_SCOPE: &str = "contacts.readonly contacts.write locations.readonly locations/tasks.readonly locations/customFields.readonly users.readonly";

impl TokenBook {
    /// The book for these options; token strings come from the seed.
    pub fn new(options: &GhlFakeOptions) -> Self {
        Self {
            private_token: options.private_token.clone(),
            client_id: options.client_id.clone(),
            client_secret: options.client_secret.clone(),
            refresh_token: options.refresh_token.clone(),
            scope: DEFAULT_SCOPE.to_owned(),
            access_tokens: BTreeMap::new(),
            ttl: chrono::Duration::from_std(options.access_token_ttl)
                .unwrap_or_else(|_| chrono::Duration::seconds(86_399)),
            refreshes: 0,
            installs: 0,
            consent: Consent::new(options),
            rng: StdRng::seed_from_u64(options.seed ^ 0x6f61_7574_6800),
        }
    }

    /// Whether `token` is the private token or an unexpired access token at `now`.
    pub fn accepts(&self, token: &str, now: DateTime<Utc>) -> bool {
        token == self.private_token.expose_secret()
            || self
                .access_tokens
                .get(token)
                .is_some_and(|expires| now < *expires)
    }

    /// Refreshes: checks the client and the current refresh token, then rotates it.
    pub fn refresh(
        &mut self,
        client_id: &str,
        client_secret: &str,
        refresh_token: &str,
        now: DateTime<Utc>,
    ) -> Result<Grant, GhlError> {
        self.check_client(client_id, client_secret)?;
        if refresh_token != self.refresh_token.expose_secret() {
            return Err(GhlError::bad_request(
                "Invalid grant: refresh token is invalid, expired or already used",
            ));
        }
        self.refreshes += 1;
        Ok(self.issue(now))
    }

    /// The chooselocation page's approval: checks the app and files a new code.
    pub fn authorize(
        &mut self,
        request: &ConsentRequest,
        now: DateTime<Utc>,
    ) -> Result<SecretString, GhlError> {
        if request.client_id != self.client_id {
            return Err(GhlError::bad_request(
                "client_id is not a known app (check the app's Client Keys)",
            ));
        }
        let code = format!("sim-code-{}", self.random(32));
        self.consent.issue(request, code.clone(), now)?;
        Ok(SecretString::from(code))
    }

    /// Redeems an authorization code: checks the client, spends the code, and starts a new
    /// token chain (the previous refresh token stops working).
    pub fn exchange_code(
        &mut self,
        client_id: &str,
        client_secret: &str,
        code: &str,
        redirect_uri: &str,
        now: DateTime<Utc>,
    ) -> Result<Grant, GhlError> {
        self.check_client(client_id, client_secret)?;
        self.scope = self.consent.redeem(code, redirect_uri, now)?;
        self.installs += 1;
        Ok(self.issue(now))
    }

    /// Registers a redirect URI with the app.
    pub fn register_redirect_uri(&mut self, uri: &str) {
        self.consent.register(uri);
    }

    /// How many codes were redeemed.
    pub fn installs(&self) -> u64 {
        self.installs
    }

    fn check_client(&self, client_id: &str, client_secret: &str) -> Result<(), GhlError> {
        if client_id != self.client_id || client_secret != self.client_secret.expose_secret() {
            return Err(GhlError::bad_client());
        }
        Ok(())
    }

    /// A new access token and the next refresh token of the chain.
    fn issue(&mut self, now: DateTime<Utc>) -> Grant {
        let access = format!("sim-at-{}", self.random(40));
        let refresh = format!("sim-rt-{}", self.random(40));
        self.access_tokens.insert(access.clone(), now + self.ttl);
        self.refresh_token = SecretString::from(refresh.clone());
        Grant {
            access_token: SecretString::from(access),
            refresh_token: SecretString::from(refresh),
            expires_in: self.ttl.num_seconds(),
            scope: self.scope.clone(),
        }
    }

    /// How many refreshes succeeded.
    pub fn refreshes(&self) -> u64 {
        self.refreshes
    }

    /// The refresh token that works right now (for tests and the demo).
    pub fn current_refresh_token(&self) -> SecretString {
        self.refresh_token.clone()
    }

    fn random(&mut self, len: usize) -> String {
        (0..len)
            .map(|_| char::from(TOKEN_ALPHABET[self.rng.gen_range(0..TOKEN_ALPHABET.len())]))
            .collect()
    }
}

/// The bearer token of a request, if it has one.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

/// `POST /oauth/token` (form-encoded, no `Version` header; ghl-api.md §1.2 \[spec S3\]).
pub async fn token(State(state): State<GhlFakeState>, headers: HeaderMap, body: Bytes) -> Response {
    match grant(&state, &headers, &body) {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

fn grant(state: &GhlFakeState, headers: &HeaderMap, body: &Bytes) -> Result<Response, GhlError> {
    let form_type = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !form_type {
        return Err(GhlError::bad_request(
            "POST /oauth/token takes an application/x-www-form-urlencoded body",
        ));
    }
    let form: BTreeMap<String, String> = serde_urlencoded::from_bytes(body)
        .map_err(|_| GhlError::bad_request("The form body could not be read"))?;
    let field = |key: &str| form.get(key).map(String::as_str).filter(|v| !v.is_empty());
    let mut missing = Vec::new();
    for key in ["client_id", "client_secret", "grant_type"] {
        if field(key).is_none() {
            missing.push(format!("{key} should not be empty"));
        }
    }
    if !missing.is_empty() {
        return Err(GhlError::unprocessable(missing));
    }
    let client_id = field("client_id").unwrap_or_default();
    let client_secret = field("client_secret").unwrap_or_default();
    let now = state.now();
    let user_type = field("user_type");
    let grant = match field("grant_type").unwrap_or_default() {
        "refresh_token" => {
            let Some(refresh_token) = field("refresh_token") else {
                return Err(GhlError::unprocessable(vec![
                    "refresh_token should not be empty".into(),
                ]));
            };
            state
                .tokens()
                .refresh(client_id, client_secret, refresh_token, now)?
        }
        "authorization_code" => {
            let mut missing = Vec::new();
            for key in ["code", "redirect_uri", "user_type"] {
                if field(key).is_none() {
                    missing.push(format!("{key} should not be empty"));
                }
            }
            if !matches!(user_type, None | Some("Location" | "Company")) {
                missing.push(
                    "user_type must be one of the following values: Company, Location".into(),
                );
            }
            if !missing.is_empty() {
                return Err(GhlError::unprocessable(missing));
            }
            state.tokens().exchange_code(
                client_id,
                client_secret,
                field("code").unwrap_or_default(),
                field("redirect_uri").unwrap_or_default(),
                now,
            )?
        }
        _ => {
            return Err(GhlError::unprocessable(vec![
                "grant_type must be one of the following values: authorization_code, refresh_token, client_credentials".into(),
            ]));
        }
    };
    state.counters().record_write();
    Ok(Json(answer(state, &grant, user_type.unwrap_or("Location"))).into_response())
}

/// The token answer (ghl-api.md §1.2, confirmed field list): a location token names its
/// location, a company token only its company.
fn answer(state: &GhlFakeState, grant: &Grant, user_type: &str) -> serde_json::Value {
    let mut body = json!({
        "access_token": grant.access_token.expose_secret(),
        "token_type": "Bearer",
        "expires_in": grant.expires_in,
        "refresh_token": grant.refresh_token.expose_secret(),
        "scope": grant.scope,
        "userType": user_type,
        "companyId": state.company_id(),
        "userId": "sim-app-user",
        "approvedLocations": [state.location_id()],
        "isBulkInstallation": false,
    });
    if user_type == "Location" {
        body["locationId"] = json!(state.location_id());
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_767_225_600, 0).unwrap()
    }

    #[test]
    fn refresh_token_works_once() {
        let options = GhlFakeOptions::default();
        let mut book = TokenBook::new(&options);
        let first = options.refresh_token.expose_secret().to_owned();
        let secret = options.client_secret.expose_secret().to_owned();
        let grant = book
            .refresh(&options.client_id, &secret, &first, now())
            .unwrap();
        assert!(book.accepts(grant.access_token.expose_secret(), now()));
        assert!(
            book.refresh(&options.client_id, &secret, &first, now())
                .is_err()
        );
        assert_eq!(book.refreshes(), 1);
    }

    #[test]
    fn access_tokens_expire_on_the_clock() {
        let options = GhlFakeOptions::default();
        let mut book = TokenBook::new(&options);
        let grant = book
            .refresh(
                &options.client_id,
                options.client_secret.expose_secret(),
                options.refresh_token.expose_secret(),
                now(),
            )
            .unwrap();
        let later = now() + chrono::Duration::seconds(86_399);
        assert!(!book.accepts(grant.access_token.expose_secret(), later));
    }
}

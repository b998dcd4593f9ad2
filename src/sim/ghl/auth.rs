//! Who may call the GHL fake: the Private Integration Token, and OAuth access tokens that
//! expire on the injected clock and come from `POST /oauth/token` with a refresh token that
//! rotates on every use (ghl-api.md §1.2 \[spec S3, S5\]).
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
    access_tokens: BTreeMap<String, DateTime<Utc>>,
    ttl: chrono::Duration,
    refreshes: u64,
    rng: StdRng,
}

impl std::fmt::Debug for TokenBook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenBook")
            .field("client_id", &self.client_id)
            .field("access_tokens", &self.access_tokens.len())
            .field("refreshes", &self.refreshes)
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
}

impl TokenBook {
    /// The book for these options; token strings come from the seed.
    pub fn new(options: &GhlFakeOptions) -> Self {
        Self {
            private_token: options.private_token.clone(),
            client_id: options.client_id.clone(),
            client_secret: options.client_secret.clone(),
            refresh_token: options.refresh_token.clone(),
            access_tokens: BTreeMap::new(),
            ttl: chrono::Duration::from_std(options.access_token_ttl)
                .unwrap_or_else(|_| chrono::Duration::seconds(86_399)),
            refreshes: 0,
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
        if client_id != self.client_id || client_secret != self.client_secret.expose_secret() {
            return Err(GhlError::bad_client());
        }
        if refresh_token != self.refresh_token.expose_secret() {
            return Err(GhlError::bad_request(
                "Invalid grant: refresh token is invalid, expired or already used",
            ));
        }
        let access = format!("sim-at-{}", self.random(40));
        let refresh = format!("sim-rt-{}", self.random(40));
        self.access_tokens.insert(access.clone(), now + self.ttl);
        self.refresh_token = SecretString::from(refresh.clone());
        self.refreshes += 1;
        Ok(Grant {
            access_token: SecretString::from(access),
            refresh_token: SecretString::from(refresh),
            expires_in: self.ttl.num_seconds(),
        })
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
    match field("grant_type").unwrap_or_default() {
        "refresh_token" => {
            let Some(refresh_token) = field("refresh_token") else {
                return Err(GhlError::unprocessable(vec![
                    "refresh_token should not be empty".into(),
                ]));
            };
            let now = state.now();
            let grant = state
                .tokens()
                .refresh(client_id, client_secret, refresh_token, now)?;
            state.counters().record_write();
            Ok(Json(json!({
                "access_token": grant.access_token.expose_secret(),
                "token_type": "Bearer",
                "expires_in": grant.expires_in,
                "refresh_token": grant.refresh_token.expose_secret(),
                "scope": "contacts.readonly contacts.write locations/tasks.readonly locations/customFields.readonly users.readonly",
                "userType": field("user_type").unwrap_or("Location"),
                "locationId": state.location_id(),
                "companyId": state.company_id(),
                "userId": "sim-app-user",
                "approvedLocations": [state.location_id()],
                "isBulkInstallation": false,
            }))
            .into_response())
        }
        "authorization_code" => Err(GhlError::bad_request(
            "Invalid grant: authorization code is invalid (the fake issues no codes; start from the refresh token)",
        )),
        _ => Err(GhlError::unprocessable(vec![
            "grant_type must be one of the following values: authorization_code, refresh_token, client_credentials".into(),
        ])),
    }
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

//! The marketplace half of GHL's authorization-code flow, as the fake plays it: the
//! `chooselocation` page, the codes it issues, and their redemption at `POST /oauth/token`
//! (ghl-api.md §1.2 \[spec S3, S5\]).
//!
//! On the real marketplace an admin opens the app's authorization URL, picks a location and
//! approves; the browser is then sent to the app's redirect URI with `?code=…`. The fake's page
//! approves at once for its one location and answers with that redirect (a 302), so a test's
//! HTTP client, like a browser, lands on the redirect URI.
//!
//! What the reference leaves open is played the unkind way:
//! - a code works once, and only for [`GhlFakeOptions::authorization_code_ttl`] (GHL documents
//!   no lifetime; 60 s by default);
//! - the redirect URI must be one registered with the app, exactly, and the exchange must send
//!   the same one again (the reference lists `redirect_uri` for the exchange);
//! - `user_type` must be sent (the SDK always sends it, ghl-api.md §1.2 \[obs S12\]);
//! - `state` comes back on the redirect only with [`GhlSwitches::redirect_keeps_state`] on: GHL's
//!   authorization page documentation names no `state` parameter.
//!
//! Codes are secrets: they never reach `Debug` output or error messages.
//!
//! [`GhlFakeOptions::authorization_code_ttl`]: super::GhlFakeOptions::authorization_code_ttl
//! [`GhlSwitches::redirect_keeps_state`]: super::GhlSwitches::redirect_keeps_state

use std::collections::{BTreeMap, BTreeSet};

use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use url::Url;

use super::error::GhlError;
use super::options::GhlFakeOptions;
use super::server::GhlFakeState;

/// The codes issued and the redirect URIs the app registered.
pub struct Consent {
    redirect_uris: BTreeSet<String>,
    codes: BTreeMap<String, Issued>,
    ttl: chrono::Duration,
}

impl std::fmt::Debug for Consent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consent")
            .field("redirect_uris", &self.redirect_uris)
            .field("codes", &self.codes.len())
            .finish()
    }
}

struct Issued {
    redirect_uri: String,
    scope: String,
    expires_at: DateTime<Utc>,
    used: bool,
}

/// What the admin asked for on the authorization page.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct ConsentRequest {
    /// Must be `code`.
    #[serde(default)]
    pub response_type: String,
    /// Where the browser goes next; must be registered.
    #[serde(default)]
    pub redirect_uri: String,
    /// The app.
    #[serde(default)]
    pub client_id: String,
    /// Space-separated scopes.
    #[serde(default)]
    pub scope: String,
    /// The caller's anti-forgery value, echoed only with the switch on.
    pub state: Option<String>,
}

impl Consent {
    /// An empty book for these options.
    pub fn new(options: &GhlFakeOptions) -> Self {
        Self {
            redirect_uris: options.redirect_uris.iter().cloned().collect(),
            codes: BTreeMap::new(),
            ttl: chrono::Duration::from_std(options.authorization_code_ttl)
                .unwrap_or_else(|_| chrono::Duration::seconds(60)),
        }
    }

    /// Registers one more redirect URI with the app (the app's settings page).
    pub fn register(&mut self, uri: &str) {
        self.redirect_uris.insert(uri.to_owned());
    }

    /// Checks a consent request (the client id is checked by the caller) and files `code`.
    pub fn issue(
        &mut self,
        request: &ConsentRequest,
        code: String,
        now: DateTime<Utc>,
    ) -> Result<(), GhlError> {
        if request.response_type != "code" {
            return Err(GhlError::bad_request(
                "response_type must be `code` (the authorization-code grant is the only one)",
            ));
        }
        if !self.redirect_uris.contains(&request.redirect_uri) {
            return Err(GhlError::bad_request(
                "redirect_uri is not registered for this app (add it in the app's Auth settings)",
            ));
        }
        if request.scope.split_whitespace().next().is_none() {
            return Err(GhlError::bad_request("scope must name at least one scope"));
        }
        self.codes.insert(
            code,
            Issued {
                redirect_uri: request.redirect_uri.clone(),
                scope: request
                    .scope
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" "),
                expires_at: now + self.ttl,
                used: false,
            },
        );
        Ok(())
    }

    /// Spends `code`: it must exist, be unused and unexpired, and come with the redirect URI
    /// it was issued for. Returns the scopes granted.
    pub fn redeem(
        &mut self,
        code: &str,
        redirect_uri: &str,
        now: DateTime<Utc>,
    ) -> Result<String, GhlError> {
        let invalid = || {
            GhlError::bad_request(
                "Invalid grant: authorization code is invalid, expired or already used",
            )
        };
        let issued = self.codes.get_mut(code).ok_or_else(invalid)?;
        if issued.used || now >= issued.expires_at {
            return Err(invalid());
        }
        if issued.redirect_uri != redirect_uri {
            return Err(GhlError::bad_request(
                "Invalid grant: redirect_uri does not match the one the code was issued for",
            ));
        }
        issued.used = true;
        Ok(issued.scope.clone())
    }
}

/// Approves `request` as the location's admin would: the redirect URL the browser is sent to
/// (`redirect_uri?code=…`, plus `state` with the switch on).
pub fn approve(state: &GhlFakeState, request: &ConsentRequest) -> Result<Url, GhlError> {
    let now = state.now();
    let code = state.tokens().authorize(request, now)?;
    let mut target = Url::parse(&request.redirect_uri)
        .map_err(|_| GhlError::bad_request("redirect_uri is not a URL"))?;
    {
        let mut query = target.query_pairs_mut();
        query.append_pair("code", secrecy::ExposeSecret::expose_secret(&code));
        if state.switches().redirect_keeps_state
            && let Some(s) = &request.state
        {
            query.append_pair("state", s);
        }
    }
    Ok(target)
}

/// `GET /oauth/chooselocation` (the marketplace page, `marketplace.gohighlevel.com` in
/// reality): approves at once and redirects; a bad request gets a 400 page and no redirect.
pub async fn choose_location(
    State(state): State<GhlFakeState>,
    Query(request): Query<ConsentRequest>,
) -> Response {
    match approve(&state, &request) {
        Ok(target) => (
            StatusCode::FOUND,
            [(header::LOCATION, target.to_string())],
            "redirecting",
        )
            .into_response(),
        Err(error) => error.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_767_225_600, 0).unwrap()
    }

    fn request() -> ConsentRequest {
        ConsentRequest {
            response_type: "code".into(),
            redirect_uri: "http://127.0.0.1:9/cb".into(),
            client_id: "app".into(),
            scope: "contacts.readonly  contacts.write".into(),
            state: None,
        }
    }

    fn consent() -> Consent {
        let mut consent = Consent::new(&GhlFakeOptions::default());
        consent.register("http://127.0.0.1:9/cb");
        consent
    }

    #[test]
    fn a_code_works_once_with_its_redirect_uri() {
        let mut consent = consent();
        consent.issue(&request(), "c1".into(), now()).unwrap();
        assert!(
            consent
                .redeem("c1", "http://127.0.0.1:9/other", now())
                .is_err()
        );
        assert_eq!(
            consent
                .redeem("c1", "http://127.0.0.1:9/cb", now())
                .unwrap(),
            "contacts.readonly contacts.write"
        );
        assert!(
            consent
                .redeem("c1", "http://127.0.0.1:9/cb", now())
                .is_err()
        );
    }

    #[test]
    fn a_code_expires_on_the_clock() {
        let mut consent = consent();
        consent.issue(&request(), "c1".into(), now()).unwrap();
        let later = now() + chrono::Duration::seconds(60);
        assert!(
            consent
                .redeem("c1", "http://127.0.0.1:9/cb", later)
                .is_err()
        );
    }

    #[test]
    fn unregistered_redirect_uris_and_other_response_types_get_no_code() {
        let mut consent = consent();
        let mut other = request();
        other.redirect_uri = "https://evil.example/cb".into();
        assert!(consent.issue(&other, "c1".into(), now()).is_err());
        let mut token = request();
        token.response_type = "token".into();
        assert!(consent.issue(&token, "c2".into(), now()).is_err());
        assert!(
            consent
                .redeem("c1", "https://evil.example/cb", now())
                .is_err()
        );
    }
}

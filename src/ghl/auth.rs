//! GHL credentials: a private integration token, or OAuth with a rotating refresh token.
//!
//! Each refresh returns a **new** refresh token and the old one stops working
//! (ghl-api.md §1.2 \[spec S5\]; treated as single-use \[recon\]). So the new pair is written to
//! the [`TokenVault`] *before* the new access token is used: a crash between the two can then
//! never leave the daemon holding only a spent refresh token. The access token is refreshed
//! 60 s before it expires, and once when a call answers 401; concurrent callers wait on one
//! refresh instead of each spending the refresh token (which would lock all but one out).
//! Before spending it, the vault is read again: tokens another process stored meanwhile (a
//! new install by `trengo-sync auth ghl`) replace the ones in memory. The tokens are sent to
//! the configured token endpoint (`ghl.oauth.token_url`).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use url::Url;

use crate::api::{ApiError, Body, Endpoint, Request};
use crate::clock::SharedClock;

/// How early before expiry an access token is replaced.
pub const REFRESH_MARGIN: Duration = Duration::from_secs(60);

/// An OAuth token pair and the access token's expiry.
#[derive(Debug, Clone)]
pub struct OAuthTokens {
    /// Bearer token for API calls (about one day, ghl-api.md §1.2).
    pub access_token: SecretString,
    /// Single-use refresh token; replaced by every refresh.
    pub refresh_token: SecretString,
    /// When the access token expires.
    pub expires_at: DateTime<Utc>,
}

/// What a vault may fail with; its message is shown to the user, so it must hold no secret.
pub type VaultError = Box<dyn std::error::Error + Send + Sync>;

/// Durable storage for OAuth tokens (the store implements it over its `oauth` table).
///
/// Object-safe: both methods return boxed futures, so implementations may hop to a blocking
/// thread for SQLite.
pub trait TokenVault: Send + Sync + fmt::Debug {
    /// The latest stored tokens; `None` when OAuth was never installed.
    fn load(&self) -> BoxFuture<'_, Result<Option<OAuthTokens>, VaultError>>;

    /// Stores `tokens` durably (committed) before returning.
    fn store(&self, tokens: OAuthTokens) -> BoxFuture<'_, Result<(), VaultError>>;
}

/// How the GHL client authenticates.
#[derive(Debug, Clone)]
pub enum GhlAuth {
    /// A private integration token (`pit-…`), static until rotated in the GHL UI.
    PrivateToken(SecretString),
    /// A marketplace app's OAuth tokens, refreshed through `POST /oauth/token`.
    OAuth {
        /// The app's client id.
        client_id: String,
        /// The app's client secret.
        client_secret: SecretString,
        /// Where the rotating tokens live.
        vault: Arc<dyn TokenVault>,
    },
}

/// The answer of `POST /oauth/token` (ghl-api.md §1.2, confirmed field list).
#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    refresh_token: String,
    #[serde(default = "default_expires_in")]
    expires_in: i64,
}

fn default_expires_in() -> i64 {
    86_399
}

#[derive(Debug)]
struct Cached {
    tokens: OAuthTokens,
    /// False when the vault refused the tokens: they are stored again before any use.
    persisted: bool,
}

/// Hands out bearer tokens, refreshing OAuth tokens when needed.
#[derive(Debug)]
pub(crate) struct TokenSource {
    auth: GhlAuth,
    /// Token endpoint (no `Version` header: `/oauth/token` takes none, ghl-api.md §1.1).
    oauth_endpoint: Endpoint,
    /// Where refreshes are sent (`ghl.oauth.token_url`, default `{base_url}/oauth/token`).
    token_url: Url,
    clock: SharedClock,
    // A tokio mutex: it is held across the refresh call so concurrent callers share one refresh.
    cache: tokio::sync::Mutex<Option<Cached>>,
}

/// What a refused OAuth refresh says; alerts look for it (GHL needs re-authorising).
pub const REINSTALL_HINT: &str = "the OAuth refresh was refused; install the app on the location again with `trengo-sync auth ghl` (it stores new tokens), or switch to a private integration token (ghl.token / TRENGO_SYNC__GHL__TOKEN)";

const INSTALL_HINT: &str = "run `trengo-sync auth ghl` to install the app on the location and store its tokens (or set ghl.oauth.refresh_token to a refresh token obtained elsewhere)";

impl TokenSource {
    pub(crate) fn new(
        auth: GhlAuth,
        oauth_endpoint: Endpoint,
        token_url: Url,
        clock: SharedClock,
    ) -> Self {
        Self {
            auth,
            oauth_endpoint,
            token_url,
            clock,
            cache: tokio::sync::Mutex::new(None),
        }
    }

    pub(crate) fn is_oauth(&self) -> bool {
        matches!(self.auth, GhlAuth::OAuth { .. })
    }

    /// A bearer token good for at least [`REFRESH_MARGIN`].
    pub(crate) async fn bearer(&self) -> Result<SecretString, ApiError> {
        let vault = match &self.auth {
            GhlAuth::PrivateToken(token) => return Ok(token.clone()),
            GhlAuth::OAuth { vault, .. } => vault,
        };
        let mut cache = self.cache.lock().await;
        if cache.is_none() {
            let loaded = vault.load().await.map_err(|e| ApiError::TokenVault {
                action: "load tokens",
                message: e.to_string(),
            })?;
            let Some(tokens) = loaded else {
                // Nothing was sent: the install has not happened yet.
                return Err(ApiError::Config {
                    api: crate::api::Api::Ghl,
                    message: format!("no OAuth tokens are stored; {INSTALL_HINT}"),
                });
            };
            *cache = Some(Cached {
                tokens,
                persisted: true,
            });
        }
        self.ensure_persisted(&mut cache).await?;
        let fresh_enough = cache.as_ref().is_some_and(|c| {
            c.tokens.expires_at - self.clock.now()
                > chrono::Duration::from_std(REFRESH_MARGIN).unwrap_or_default()
        });
        if !fresh_enough {
            self.refresh(&mut cache).await?;
        }
        cache
            .as_ref()
            .map(|c| c.tokens.access_token.clone())
            .ok_or_else(|| self.no_tokens())
    }

    /// Called after a 401 with the token that was refused: refreshes once, unless another
    /// caller already replaced that token, in which case the newer one is returned.
    pub(crate) async fn after_rejection(
        &self,
        rejected: &SecretString,
    ) -> Result<SecretString, ApiError> {
        let mut cache = self.cache.lock().await;
        self.ensure_persisted(&mut cache).await?;
        let already_replaced = cache
            .as_ref()
            .is_some_and(|c| c.tokens.access_token.expose_secret() != rejected.expose_secret());
        if !already_replaced {
            self.refresh(&mut cache).await?;
        }
        cache
            .as_ref()
            .map(|c| c.tokens.access_token.clone())
            .ok_or_else(|| self.no_tokens())
    }

    fn no_tokens(&self) -> ApiError {
        ApiError::TokenVault {
            action: "load tokens",
            message: "no OAuth tokens are available".to_string(),
        }
    }

    async fn ensure_persisted(&self, cache: &mut Option<Cached>) -> Result<(), ApiError> {
        let GhlAuth::OAuth { vault, .. } = &self.auth else {
            return Ok(());
        };
        if let Some(cached) = cache.as_mut()
            && !cached.persisted
        {
            vault
                .store(cached.tokens.clone())
                .await
                .map_err(|e| ApiError::TokenVault {
                    action: "store tokens",
                    message: e.to_string(),
                })?;
            cached.persisted = true;
        }
        Ok(())
    }

    /// Takes the vault's tokens when they are not the ones in memory (a new install stored by
    /// another process); true when their access token is good for [`REFRESH_MARGIN`] still.
    async fn adopt_stored(
        &self,
        vault: &dyn TokenVault,
        cache: &mut Option<Cached>,
    ) -> Result<bool, ApiError> {
        let Some(cached) = cache.as_ref().filter(|c| c.persisted) else {
            return Ok(false);
        };
        let stored = vault.load().await.map_err(|e| ApiError::TokenVault {
            action: "load tokens",
            message: e.to_string(),
        })?;
        let Some(stored) = stored.filter(|s| {
            s.refresh_token.expose_secret() != cached.tokens.refresh_token.expose_secret()
        }) else {
            return Ok(false);
        };
        tracing::info!("the store holds newer GHL OAuth tokens (a new install); using them");
        let fresh = stored.expires_at - self.clock.now()
            > chrono::Duration::from_std(REFRESH_MARGIN).unwrap_or_default();
        *cache = Some(Cached {
            tokens: stored,
            persisted: true,
        });
        Ok(fresh)
    }

    /// Spends the refresh token, stores the new pair, and only then makes it usable.
    async fn refresh(&self, cache: &mut Option<Cached>) -> Result<(), ApiError> {
        let GhlAuth::OAuth {
            client_id,
            client_secret,
            vault,
        } = &self.auth
        else {
            return Ok(());
        };
        if self.adopt_stored(vault.as_ref(), cache).await? {
            return Ok(());
        }
        let Some(current) = cache.as_ref() else {
            return Err(self.no_tokens());
        };
        // Form body per apps/oauth.json (ghl-api.md §1.2): client_id, client_secret,
        // grant_type=refresh_token, refresh_token, user_type.
        let form = vec![
            (
                "client_id".to_string(),
                SecretString::from(client_id.clone()),
            ),
            ("client_secret".to_string(), client_secret.clone()),
            (
                "grant_type".to_string(),
                SecretString::from("refresh_token".to_string()),
            ),
            (
                "refresh_token".to_string(),
                current.tokens.refresh_token.clone(),
            ),
            (
                "user_type".to_string(),
                SecretString::from("Location".to_string()),
            ),
        ];
        let mut request = Request::new(Method::POST, "/oauth/token");
        request.url = Some(self.token_url.clone());
        request.body = Body::Form(form);
        let reply = self
            .oauth_endpoint
            .send(&request, None)
            .await
            .map_err(|e| match e {
                ApiError::Validation {
                    call,
                    status,
                    message,
                    ..
                }
                | ApiError::Auth {
                    call,
                    status,
                    message,
                    ..
                } => ApiError::Auth {
                    call,
                    status,
                    message,
                    hint: REINSTALL_HINT.to_string(),
                },
                other => other,
            })?;
        let answer: TokenAnswer = reply.json()?;
        let tokens = OAuthTokens {
            access_token: SecretString::from(answer.access_token),
            refresh_token: SecretString::from(answer.refresh_token),
            expires_at: self.clock.now() + chrono::Duration::seconds(answer.expires_in.max(0)),
        };
        tracing::info!(
            expires_at = %tokens.expires_at,
            "GHL OAuth tokens refreshed; storing the new refresh token before use"
        );
        // Remember the new pair first, marked unsaved: if the vault fails now, the new refresh
        // token stays in memory and is stored again before any use, instead of being lost.
        *cache = Some(Cached {
            tokens: tokens.clone(),
            persisted: false,
        });
        vault
            .store(tokens)
            .await
            .map_err(|e| ApiError::TokenVault {
                action: "store tokens",
                message: e.to_string(),
            })?;
        if let Some(cached) = cache.as_mut() {
            cached.persisted = true;
        }
        Ok(())
    }
}

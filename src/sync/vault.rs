//! The GHL OAuth token vault over the store's `oauth` table.
//!
//! GHL's refresh token rotates on every use (ghl-api.md §1.2): the client writes the new one
//! here, committed, before it uses the new access token, so a crash can never leave the
//! daemon holding only a spent refresh token. The configured refresh token only seeds the
//! first start; after that the store's copy is the truth.

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use secrecy::SecretString;

use crate::clock::SharedClock;
use crate::ghl::{OAuthTokens, TokenVault, VaultError};
use crate::store::{self, StoreHandle, oauth::StoredOAuth};

/// A [`TokenVault`] backed by the store.
pub struct StoreVault {
    store: StoreHandle,
    seed: Option<SecretString>,
    clock: SharedClock,
}

impl std::fmt::Debug for StoreVault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreVault").finish_non_exhaustive()
    }
}

impl StoreVault {
    /// A vault over `store`, seeded with the configured refresh token for the first start.
    pub fn new(store: StoreHandle, seed: Option<SecretString>, clock: SharedClock) -> Self {
        Self { store, seed, clock }
    }
}

impl TokenVault for StoreVault {
    fn load(&self) -> BoxFuture<'_, Result<Option<OAuthTokens>, VaultError>> {
        Box::pin(async move {
            let stored = self
                .store
                .call(|s| store::oauth::load(s.conn()))
                .await
                .map_err(|e| -> VaultError { Box::new(e) })?;
            Ok(match stored {
                Some(s) => Some(OAuthTokens {
                    access_token: s
                        .access_token
                        .unwrap_or_else(|| SecretString::from(String::new())),
                    refresh_token: s.refresh_token,
                    expires_at: s.access_expires_at.unwrap_or(DateTime::<Utc>::UNIX_EPOCH),
                }),
                // No token stored yet: an expired access token makes the client refresh with
                // the configured refresh token at once.
                None => self.seed.clone().map(|refresh| OAuthTokens {
                    access_token: SecretString::from(String::new()),
                    refresh_token: refresh,
                    expires_at: DateTime::<Utc>::UNIX_EPOCH,
                }),
            })
        })
    }

    fn store(&self, tokens: OAuthTokens) -> BoxFuture<'_, Result<(), VaultError>> {
        Box::pin(async move {
            let now = self.clock.now();
            let stored = StoredOAuth {
                refresh_token: tokens.refresh_token,
                access_token: Some(tokens.access_token),
                access_expires_at: Some(tokens.expires_at),
            };
            self.store
                .call(move |s| {
                    let tx = s.transaction()?;
                    store::oauth::save(&tx, &stored, now)?;
                    tx.commit()?;
                    Ok(())
                })
                .await
                .map_err(|e| -> VaultError { Box::new(e) })
        })
    }
}

//! How an engine is built: its clients from the configuration, its store (the file, a
//! read-only open, `plan`'s in-memory copy, or a store the running daemon already holds), the
//! executor it hands each item to, and the identity a database is bound to on first use.

use std::sync::Arc;

use futures::StreamExt as _;

use super::SweepState;
use super::{Engine, EngineError, setup};
use crate::api::Budget;
use crate::clock::SharedClock;
use crate::config::Config;
use crate::ghl::{GhlAuth, GhlClient, GhlClientConfig};
use crate::store::{self, Store, StoreHandle, identity::Identity};
use crate::sync::execute::{Executor, PassFacts, Recorder};
use crate::sync::settings::EngineSettings;
use crate::trengo::{TrengoClient, TrengoClientConfig};

impl Engine {
    /// Builds the clients from `config` and opens the store (read-only when `read_only`).
    pub fn from_config(
        config: &Config,
        clock: SharedClock,
        read_only: bool,
    ) -> Result<Self, EngineError> {
        let store = if read_only {
            Store::open_read_only(&config.store.path)?
        } else {
            if let Some(dir) = config.store.path.parent()
                && !dir.as_os_str().is_empty()
            {
                std::fs::create_dir_all(dir).map_err(|e| {
                    setup(format!(
                        "cannot create the store's directory {}: {e}; check store.path",
                        dir.display()
                    ))
                })?;
            }
            Store::open(&config.store.path)?
        };
        Self::with_store(config, clock, store, None)
    }

    /// The engine `plan` runs: on an in-memory copy of the store ([`Store::open_snapshot`]), so
    /// that the dry run can do everything a pass does up to the first remote write (bind the
    /// identity of a fresh store, settle intents) and record nothing. With OAuth, a refresh
    /// rotates GHL's refresh token, which must be kept: the token vault alone writes to the
    /// file, through an edit connection that takes no writer lock (so `plan` also runs beside
    /// the daemon; the vault re-reads the stored tokens before each refresh).
    pub fn for_plan(config: &Config, clock: SharedClock) -> Result<Self, EngineError> {
        let snapshot = Store::open_snapshot(&config.store.path)?;
        let vault = match &config.ghl.oauth {
            Some(_) => Some(StoreHandle::new(
                Store::open_for_edit(&config.store.path).map_err(|e| {
                    setup(format!(
                        "{e}; with OAuth the store holds GHL's tokens: run `trengo-sync auth ghl` \
                         first"
                    ))
                })?,
            )),
            None => None,
        };
        Self::with_store(config, clock, snapshot, vault)
    }

    /// The engine over `store`; the OAuth token vault keeps its tokens in `vault` when given,
    /// else in `store`.
    fn with_store(
        config: &Config,
        clock: SharedClock,
        store: Store,
        vault: Option<StoreHandle>,
    ) -> Result<Self, EngineError> {
        Self::with_handle(config, clock, StoreHandle::new(store), vault)
    }

    /// A new engine for `config` over a store already open: a configuration reloaded by the
    /// running daemon keeps its store (and its writer lock).
    pub fn on_open_store(
        config: &Config,
        clock: SharedClock,
        store: StoreHandle,
    ) -> Result<Self, EngineError> {
        Self::with_handle(config, clock, store, None)
    }

    fn with_handle(
        config: &Config,
        clock: SharedClock,
        store: StoreHandle,
        vault: Option<StoreHandle>,
    ) -> Result<Self, EngineError> {
        let token = config
            .trengo
            .token
            .as_ref()
            .ok_or_else(|| setup("trengo.token is missing"))?
            .to_secret_string();
        let mut tcfg = TrengoClientConfig::new(
            config.trengo.base_url.url().clone(),
            token,
            config.trengo.timezone.0,
        );
        tcfg.timeout = config.limits.request_timeout.get();
        let trengo_budget = Arc::new(Budget::new(
            "trengo",
            config.limits.trengo_per_minute,
            std::time::Duration::from_secs(60),
        ));
        let trengo = TrengoClient::new(tcfg, clock.clone(), trengo_budget).map_err(setup)?;
        let auth = match (&config.ghl.token, &config.ghl.oauth) {
            (Some(token), _) => GhlAuth::PrivateToken(token.to_secret_string()),
            (None, Some(oauth)) => GhlAuth::OAuth {
                client_id: oauth.client_id.clone().unwrap_or_default(),
                client_secret: oauth
                    .client_secret
                    .as_ref()
                    .map(|s| s.to_secret_string())
                    .ok_or_else(|| setup("ghl.oauth.client_secret is missing"))?,
                vault: Arc::new(crate::sync::vault::StoreVault::new(
                    vault.unwrap_or_else(|| store.clone()),
                    oauth.refresh_token.as_ref().map(|s| s.to_secret_string()),
                    clock.clone(),
                )),
            },
            (None, None) => return Err(setup("ghl.token or [ghl.oauth] is missing")),
        };
        let mut gcfg = GhlClientConfig::new(
            config.ghl.base_url.url().clone(),
            config.ghl.location_id.clone().unwrap_or_default(),
            auth,
        );
        gcfg.version = config.ghl.version.clone();
        gcfg.token_url = config.ghl.token_url();
        gcfg.timeout = config.limits.request_timeout.get();
        let ghl_budget = Arc::new(Budget::new(
            "ghl",
            config.limits.ghl_per_window,
            config.limits.ghl_window.get(),
        ));
        let ghl = GhlClient::new(gcfg, clock.clone(), ghl_budget).map_err(setup)?;
        Ok(Self {
            reader: store.reader(),
            store,
            trengo,
            ghl,
            clock,
            settings: EngineSettings::from_config(config),
            crash_after: None,
            backfill: None,
            progress: None,
            facts: tokio::sync::Mutex::new(PassFacts::default()),
            sweep: tokio::sync::Mutex::new(SweepState::default()),
            pauses: std::sync::Mutex::new(store::controls::Pauses::default()),
            pair_map: tokio::sync::OnceCell::new(),
            ghl_zone: tokio::sync::OnceCell::new(),
            pair_allowance: std::sync::Mutex::new(None),
        })
    }

    /// The executor for this engine's clients and store, writing what it learns into `facts`.
    pub(super) fn executor<'a>(&'a self, facts: &'a mut PassFacts) -> Executor<'a> {
        Executor {
            store: &self.store,
            trengo: &self.trengo,
            ghl: &self.ghl,
            clock: &self.clock,
            settings: &self.settings,
            facts,
            crash_after: self.crash_after.clone(),
        }
    }

    /// The recorder of this engine's bookkeeping (cursors, retries, what was seen, the brake).
    pub(super) fn recorder(&self) -> Recorder<'_> {
        Recorder {
            store: &self.store,
            clock: &self.clock,
            settings: &self.settings,
        }
    }

    /// Binds the database to this Trengo account and GHL location on first use, and refuses
    /// to run against any other (sync-model.md §4.7).
    pub async fn bind_identity(&self) -> Result<Identity, EngineError> {
        let mut agency = None;
        let mut users = std::pin::pin!(self.trengo.users());
        if let Some(user) = users.next().await {
            agency = user?.agency_id;
        }
        let identity = Identity {
            trengo_account: match agency {
                Some(a) => format!("{} (agency {a})", self.settings.scope.web_url),
                None => self.settings.scope.web_url.clone(),
            },
            ghl_location: self.ghl.location_id().to_string(),
        };
        self.recorder().bind_identity(&identity).await?;
        Ok(identity)
    }
}

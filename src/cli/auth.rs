//! `trengo-sync auth ghl`: installs the GHL marketplace app on `ghl.location_id` and stores
//! its first tokens in the store's OAuth vault (the protocol lives in [`crate::ghl::install`]).
//!
//! It reads `[ghl.oauth]` (client id and secret, `authorize_url`, `redirect_uri`, `scopes`,
//! `token_url`), prints the authorization URL, takes the code (pasted on stdin, given with
//! `--code`, or caught by a one-shot listener on `--listen`), exchanges it, and stores the
//! tokens only when they belong to the configured location and the store is not bound to
//! another one. A running daemon takes the new tokens at its next refresh. Nothing secret is
//! printed.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use secrecy::{ExposeSecret, SecretString};
use tokio::io::AsyncBufReadExt as _;
use url::Url;

use crate::api::Budget;
use crate::clock::SharedClock;
use crate::config::{Config, DEFAULT_AUTHORIZE_URL};
use crate::ghl::TokenVault as _;
use crate::ghl::install::{self, Arrived, InstallSettings};
use crate::store::{self, Store, StoreHandle};

/// How `auth ghl` gets the code.
#[derive(Debug, Clone)]
pub struct AuthOptions {
    /// The code (or redirect URL), given on the command line.
    pub code: Option<SecretString>,
    /// Loopback address of the one-shot redirect listener.
    pub listen: Option<SocketAddr>,
    /// How long the listener waits.
    pub wait: Duration,
}

/// Why `auth ghl` stopped: the configuration (exit 78) or anything else (exit 1).
#[derive(Debug)]
pub enum AuthFailure {
    /// A key is missing or does not fit the options.
    Config(String),
    /// Anything else.
    Other(anyhow::Error),
}

impl From<anyhow::Error> for AuthFailure {
    fn from(e: anyhow::Error) -> Self {
        AuthFailure::Other(e)
    }
}

impl From<install::InstallError> for AuthFailure {
    fn from(e: install::InstallError) -> Self {
        AuthFailure::Other(anyhow::Error::new(e))
    }
}

/// The scopes the enabled features need (ghl-api.md §1.3): contacts, tasks, notes and tags are
/// all `contacts.*`; the location task search is `locations/tasks.readonly`; the user list
/// (assignees) `users.readonly`.
pub fn needed_scopes(config: &Config) -> Vec<String> {
    let mut scopes = vec![
        "contacts.readonly".to_owned(),
        "contacts.write".to_owned(),
        "locations/tasks.readonly".to_owned(),
    ];
    if config.assignee.enabled {
        scopes.push("users.readonly".to_owned());
    }
    if config.contacts.enabled {
        // `[contacts]` reads the location's custom field catalogue and its time zone
        // (`GET /locations/{id}/customFields`, `GET /locations/{id}`); appointments are under
        // contacts.readonly (ghl-api.md §6).
        scopes.push("locations.readonly".to_owned());
        scopes.push("locations/customFields.readonly".to_owned());
    }
    scopes
}

fn is_loopback_host(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// The redirect URI to send: the configured one, which must point at `--listen` when given,
/// or `http://LISTEN/oauth/callback`.
fn redirect_uri(config: &Config, listen: Option<SocketAddr>) -> Result<Url, AuthFailure> {
    let configured = config
        .ghl
        .oauth
        .as_ref()
        .and_then(|o| o.redirect_uri.as_ref())
        .map(|u| u.url().clone());
    match (configured, listen) {
        (Some(uri), Some(addr)) => {
            if is_loopback_host(&uri) && uri.port_or_known_default() == Some(addr.port()) {
                Ok(uri)
            } else {
                Err(AuthFailure::Config(format!(
                    "ghl.oauth.redirect_uri is {uri}, which does not point at --listen {addr}: \
                     listen on its port, or register http://{addr}{} with the app and set \
                     ghl.oauth.redirect_uri to it",
                    install::DEFAULT_CALLBACK_PATH
                )))
            }
        }
        (Some(uri), None) => Ok(uri),
        (None, Some(addr)) => {
            Url::parse(&format!("http://{addr}{}", install::DEFAULT_CALLBACK_PATH))
                .map_err(|e| AuthFailure::Config(format!("--listen {addr} gives no URL: {e}")))
        }
        (None, None) => Err(AuthFailure::Config(format!(
            "ghl.oauth.redirect_uri is missing: set it to a redirect URI registered in the app's \
             Auth settings (the browser is sent there with the code to paste), or run with \
             --listen 127.0.0.1:PORT after registering http://127.0.0.1:PORT{}",
            install::DEFAULT_CALLBACK_PATH
        ))),
    }
}

/// What `[ghl.oauth]` and the options say the install needs.
pub fn settings(
    config: &Config,
    listen: Option<SocketAddr>,
) -> Result<InstallSettings, AuthFailure> {
    let oauth = config.ghl.oauth.as_ref().ok_or_else(|| {
        AuthFailure::Config(
            "[ghl.oauth] is not configured: set ghl.oauth.client_id and client_secret (the app's \
             Client Keys) and remove ghl.token; `auth ghl` installs a marketplace app"
                .to_owned(),
        )
    })?;
    let client_id = oauth
        .client_id
        .clone()
        .filter(|c| !c.trim().is_empty())
        .ok_or_else(|| AuthFailure::Config("ghl.oauth.client_id is missing".to_owned()))?;
    let client_secret = oauth
        .client_secret
        .as_ref()
        .map(|s| s.to_secret_string())
        .ok_or_else(|| {
            AuthFailure::Config(
                "ghl.oauth.client_secret is missing: set it or client_secret_file".to_owned(),
            )
        })?;
    let authorize_url = match &oauth.authorize_url {
        Some(url) => url.url().clone(),
        None => Url::parse(DEFAULT_AUTHORIZE_URL)
            .map_err(|e| AuthFailure::Other(anyhow::anyhow!("default authorize URL: {e}")))?,
    };
    let scopes = match &oauth.scopes {
        Some(scopes) => scopes
            .iter()
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect(),
        None => needed_scopes(config),
    };
    Ok(InstallSettings {
        authorize_url,
        token_url: config.ghl.token_url(),
        client_id,
        client_secret,
        redirect_uri: redirect_uri(config, listen)?,
        scopes,
        location_id: config.ghl.location_id.clone().unwrap_or_default(),
        timeout: config.limits.request_timeout.get(),
    })
}

/// Opens (or creates) the store, also beside a running daemon, and refuses one bound to
/// another GHL location.
fn open_store(config: &Config) -> Result<Store, AuthFailure> {
    let path = &config.store.path;
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir).with_context(|| {
            format!(
                "cannot create the store's directory {}; check store.path",
                dir.display()
            )
        })?;
    }
    // A store that exists may be the running daemon's, which holds the writer lock: the
    // tokens go in as one short transaction beside it (the daemon's vault reads the stored
    // tokens again before each refresh), as `resolve` and `retry` edit it.
    let store = if path.exists() {
        Store::open_for_edit(path)
    } else {
        Store::open(path)
    }
    .map_err(anyhow::Error::new)?;
    let location = config.ghl.location_id.as_deref().unwrap_or_default();
    if let Some(bound) = store::identity::get(store.conn()).map_err(anyhow::Error::new)?
        && bound.identity.ghl_location != location
    {
        return Err(AuthFailure::Config(format!(
            "the store {} is bound to GHL location {}, but ghl.location_id is {location}: \
             tokens for another location cannot go into it; use the store of location \
             {location} (store.path) or correct ghl.location_id",
            path.display(),
            bound.identity.ghl_location
        )));
    }
    Ok(store)
}

/// What `check` adds when OAuth is configured but nothing can start it: no tokens in the
/// store (or no store yet) and no `ghl.oauth.refresh_token` to seed one.
pub fn missing_tokens_line(config: &Config) -> Option<String> {
    let oauth = config.ghl.oauth.as_ref()?;
    if oauth.refresh_token.is_some() {
        return None;
    }
    let stored = Store::open_read_only(&config.store.path)
        .ok()
        .and_then(|s| store::oauth::saved_at(s.conn()).ok().flatten());
    stored.is_none().then(|| {
        "GHL OAuth: no tokens stored yet: run `trengo-sync auth ghl` to install the app on the          location before `run` or `once`"
            .to_owned()
    })
}

/// Runs `auth ghl`: everything the user reads goes to `out`, the pasted code comes from
/// `input`.
pub async fn auth_ghl(
    config: &Config,
    options: &AuthOptions,
    input: impl tokio::io::AsyncBufRead + Unpin,
    out: &mut (dyn Write + Send),
    clock: SharedClock,
) -> Result<(), AuthFailure> {
    if let Some(addr) = options.listen
        && (!addr.ip().is_loopback() || addr.port() == 0)
    {
        return Err(AuthFailure::Config(format!(
            "--listen {addr}: give a loopback address with the port of the registered redirect \
             URI, such as 127.0.0.1:8765 (the redirect carries the code; it must not leave this \
             machine)"
        )));
    }
    let settings = settings(config, options.listen)?;
    let store = open_store(config)?;
    let shown_store = config.store.path.display().to_string();
    let arrived = match &options.code {
        Some(code) => install::read_pasted(code.expose_secret(), None)?,
        None => take_code(&settings, options, input, out).await?,
    };
    if !arrived.state_checked && options.code.is_none() {
        writeln!(
            out,
            "note: the redirect carried no `state` to check; the location check below guards \
             against a forged code instead"
        )
        .context("cannot write to stdout")?;
    }
    let budget = Arc::new(Budget::new(
        "ghl",
        config.limits.ghl_per_window,
        config.limits.ghl_window.get(),
    ));
    let installed = install::exchange(&settings, &arrived.code, budget, clock.clone()).await?;
    let handle = StoreHandle::new(store);
    crate::sync::vault::StoreVault::new(handle, None, clock.clone())
        .store(installed.tokens.clone())
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "the app was installed, but its tokens could not be stored in {shown_store}: \
                 {e}; make the store writable and run `trengo-sync auth ghl` again"
            )
        })?;
    let expires = install::refresh_expiry(clock.now());
    writeln!(
        out,
        "GHL app installed on location {}; tokens stored in {shown_store}.\n\
         Scopes granted: {}.\n\
         The refresh token expires {} if unused; every refresh (at least daily while the daemon \
         runs) renews it. A running daemon takes the new tokens at its next refresh.",
        installed.location_id,
        if installed.granted.is_empty() {
            "(none named)".to_owned()
        } else {
            installed.granted.join(" ")
        },
        expires.format("%Y-%m-%d")
    )
    .context("cannot write to stdout")?;
    if !installed.missing.is_empty() {
        writeln!(
            out,
            "warning: GHL did not grant {}: add them to the app's scopes, then run \
             `trengo-sync auth ghl` again",
            installed.missing.join(", ")
        )
        .context("cannot write to stdout")?;
    }
    Ok(())
}

/// Prints the authorization URL and waits for the code: on the listener, or pasted.
async fn take_code(
    settings: &InstallSettings,
    options: &AuthOptions,
    input: impl tokio::io::AsyncBufRead + Unpin,
    out: &mut (dyn Write + Send),
) -> Result<Arrived, AuthFailure> {
    let state = install::new_state();
    let url = install::authorization_url(settings, &state);
    // Bound before the URL is shown, so a quick browser never finds the port closed.
    let listener = match options.listen {
        Some(addr) => Some(tokio::net::TcpListener::bind(addr).await.map_err(|e| {
            AuthFailure::Other(anyhow::anyhow!(
                "cannot listen on {addr} (--listen): {e}; choose a free port and register its \
                 redirect URI"
            ))
        })?),
        None => None,
    };
    writeln!(
        out,
        "Open this URL in a browser, log in to GHL as an admin of location {}, choose that \
         location and approve the app:\n\n{url}\n",
        settings.location_id
    )
    .context("cannot write to stdout")?;
    match listener {
        Some(listener) => {
            writeln!(
                out,
                "Waiting up to {} s for the redirect to {} …",
                options.wait.as_secs(),
                settings.redirect_uri
            )
            .context("cannot write to stdout")?;
            out.flush().context("cannot write to stdout")?;
            Ok(install::catch_redirect(
                listener,
                settings.redirect_uri.path(),
                &state,
                options.wait,
            )
            .await?)
        }
        None => {
            writeln!(
                out,
                "The browser is then sent to {} with `?code=…`. Paste the code, or that whole \
                 URL, and press Enter:",
                settings.redirect_uri
            )
            .context("cannot write to stdout")?;
            out.flush().context("cannot write to stdout")?;
            let mut line = String::new();
            let mut input = input;
            input
                .read_line(&mut line)
                .await
                .context("cannot read the code from stdin")?;
            Ok(install::read_pasted(&line, Some(&state))?)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(extra: &str) -> Config {
        let text = format!(
            "[trengo]\ntoken = \"t\"\n[ghl]\nlocation_id = \"loc\"\n[ghl.oauth]\n\
             client_id = \"app\"\nclient_secret = \"s\"\n{extra}\n[link]\ntrengo_label = \"GHL\"\n"
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, text).unwrap();
        let no_env = figment::providers::Env::raw().filter(|_| false);
        crate::config::load_with(&path, no_env).unwrap()
    }

    #[test]
    fn the_redirect_uri_follows_the_listener_or_must_point_at_it() {
        let listen: SocketAddr = "127.0.0.1:8765".parse().unwrap();
        assert_eq!(
            redirect_uri(&config(""), Some(listen)).unwrap().as_str(),
            "http://127.0.0.1:8765/oauth/callback"
        );
        let registered = config("redirect_uri = \"http://localhost:8765/cb\"");
        assert_eq!(
            redirect_uri(&registered, Some(listen)).unwrap().as_str(),
            "http://localhost:8765/cb"
        );
        assert!(matches!(
            redirect_uri(&registered, Some("127.0.0.1:9999".parse().unwrap())),
            Err(AuthFailure::Config(_))
        ));
        assert!(matches!(
            redirect_uri(&config(""), None),
            Err(AuthFailure::Config(m)) if m.contains("ghl.oauth.redirect_uri")
        ));
    }

    #[test]
    fn scopes_follow_the_features_unless_configured() {
        let plain = settings(&config("redirect_uri = \"https://x.example/cb\""), None).unwrap();
        assert!(plain.scopes.contains(&"contacts.write".to_owned()));
        assert!(!plain.scopes.contains(&"users.readonly".to_owned()));
        let chosen = settings(
            &config("redirect_uri = \"https://x.example/cb\"\nscopes = [\"contacts.readonly\"]"),
            None,
        )
        .unwrap();
        assert_eq!(chosen.scopes, vec!["contacts.readonly".to_owned()]);
        assert_eq!(
            plain.token_url.as_str(),
            "https://services.leadconnectorhq.com/oauth/token"
        );
    }
}

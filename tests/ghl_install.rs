//! `trengo-sync auth ghl` against the GHL fake's authorization-code flow, as a user runs it:
//! the printed URL opened in "the browser" (the test), the code pasted or caught by the
//! loopback listener, the tokens stored, and the daemon syncing with them afterwards; and the
//! refusals: a foreign `state`, a used code, another location, a wrong client secret. Plus the
//! token endpoint setting (`ghl.oauth.token_url`) for the exchange and for refreshes, and the
//! refresh token's expiry in `status` and `check`.

mod support;

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use support::install::{
    AuthRun, PASTE_REDIRECT, client_secret, code_of, free_port, oauth_config, stored_refresh_token,
};
use support::reliability::{settled_links, signal_and_wait, spawn_trengo_sync};
use trengo_sync::sim::ghl::GhlSwitches;
use trengo_sync::sim::world::WorldOptions;

fn paste_config(
    world: &trengo_sync::sim::world::SimWorld,
    dir: &tempfile::TempDir,
) -> std::path::PathBuf {
    world.ghl().register_redirect_uri(PASTE_REDIRECT);
    oauth_config(
        world,
        dir,
        &client_secret(),
        &format!("redirect_uri = \"{PASTE_REDIRECT}\""),
    )
    .0
}

/// Runs `auth ghl`, approves the URL it prints on the fake, and pastes the redirect URL.
async fn install_by_paste(
    world: &trengo_sync::sim::world::SimWorld,
    config: &std::path::Path,
) -> (std::process::ExitStatus, String, String, url::Url) {
    let mut run = AuthRun::start(&[], config, &[]);
    let url = run.url().await;
    let redirect = world.ghl().approve_install(&url).unwrap();
    run.paste(redirect.as_str()).await;
    let (status, out, err) = run.finish().await;
    (status, out, err, redirect)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pasted_redirect_installs_the_app_and_the_daemon_syncs_with_the_stored_tokens() {
    let world = support::world(71, 6, 3).await;
    let dir = tempfile::tempdir().unwrap();
    let config = paste_config(&world, &dir);
    let store = support::store_path(&dir);

    let mut run = AuthRun::start(&[], &config, &[]);
    let url = run.url().await;
    let printed = url::Url::parse(&url).unwrap();
    let pairs: std::collections::BTreeMap<String, String> =
        printed.query_pairs().into_owned().collect();
    assert_eq!(printed.path(), "/oauth/chooselocation");
    assert_eq!(pairs["client_id"], support::install::client_id());
    assert_eq!(pairs["redirect_uri"], PASTE_REDIRECT);
    assert_eq!(
        pairs["scope"],
        "contacts.readonly contacts.write locations/tasks.readonly"
    );
    assert_eq!(pairs["state"].len(), 32);
    let redirect = world.ghl().approve_install(&url).unwrap();
    run.paste(redirect.as_str()).await;
    let (status, out, err) = run.finish().await;
    assert!(status.success(), "auth ghl failed: {out}{err}");
    assert!(
        out.contains(&format!(
            "GHL app installed on location {}",
            world.location_id()
        )),
        "{out}"
    );
    assert!(
        out.contains("no `state` to check"),
        "the fake dropped state: {out}"
    );
    assert_eq!(world.ghl().install_count(), 1);
    let installed = stored_refresh_token(&store).expect("tokens stored");
    assert_eq!(
        installed,
        world.ghl().current_refresh_token().expose_secret(),
        "the store holds the install's refresh token"
    );

    // The daemon runs on the stored tokens: links appear, and the day-long access token
    // needs no refresh.
    let listen = std::fs::read_to_string(&config)
        .unwrap()
        .lines()
        .find_map(|l| {
            l.strip_prefix("listen = \"")
                .map(|r| r.trim_end_matches('"').to_owned())
        })
        .unwrap();
    let mut daemon = spawn_trengo_sync(&["run"], &config, &[], None);
    let links = settled_links(&world, &store, Duration::from_secs(4)).await;
    assert!(!links.is_empty());
    assert_eq!(
        world.ghl().refresh_count(),
        0,
        "the stored access token was used"
    );
    let report: serde_json::Value = reqwest::get(format!("http://{listen}/status"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let expires = chrono::Utc::now() + chrono::Duration::days(365);
    assert!(
        report["oauth"]["refresh_expires_at"]
            .as_str()
            .unwrap()
            .starts_with(&expires.format("%Y-%m-%d").to_string()),
        "{}",
        report["oauth"]
    );
    assert!(report["oauth"]["warning"].is_null());
    assert_eq!(signal_and_wait(&mut daemon, "TERM").code(), Some(0));
    world.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_loopback_listener_takes_one_redirect_with_or_without_state_and_stops() {
    let world = support::world(72, 2, 2).await;
    for keeps_state in [false, true] {
        world.ghl().set_switches(GhlSwitches {
            redirect_keeps_state: keeps_state,
            ..GhlSwitches::default()
        });
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let listen = format!("127.0.0.1:{port}");
        world
            .ghl()
            .register_redirect_uri(&format!("http://{listen}/oauth/callback"));
        let (config, _) = oauth_config(&world, &dir, &client_secret(), "");
        let mut run = AuthRun::start(&["--listen", &listen], &config, &[]);
        let url = run.url().await;
        run.wait_for_line("Waiting up to").await;
        let http = reqwest::Client::new();
        // A browser asks for an icon first; the listener answers 404 and keeps waiting.
        let icon = http
            .get(format!("http://{listen}/favicon.ico"))
            .send()
            .await
            .unwrap();
        assert_eq!(icon.status(), 404);
        // The browser: the fake's page approves and redirects to the listener.
        let page = http.get(&url).send().await.unwrap();
        assert_eq!(page.status(), 200);
        assert_eq!(
            page.url().port(),
            Some(port),
            "the redirect reached the listener"
        );
        assert!(page.text().await.unwrap().contains("authorization arrived"));
        let (status, out, err) = run.finish().await;
        assert!(status.success(), "auth ghl failed: {out}{err}");
        assert_eq!(
            out.contains("no `state` to check"),
            !keeps_state,
            "state {keeps_state}: {out}"
        );
        assert!(stored_refresh_token(&support::store_path(&dir)).is_some());
        // One-shot: the listener is gone.
        assert!(
            http.get(format!("http://{listen}/oauth/callback"))
                .send()
                .await
                .is_err(),
            "the listener still answers"
        );
    }
    assert_eq!(world.ghl().install_count(), 2);
    world.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_with_a_foreign_state_is_refused_and_spends_nothing() {
    let world = support::world(73, 2, 2).await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let callback = format!("http://{listen}/oauth/callback");
    world.ghl().register_redirect_uri(&callback);
    let (config, _) = oauth_config(&world, &dir, &client_secret(), "");
    let mut run = AuthRun::start(&["--listen", &listen], &config, &[]);
    let url = run.url().await;
    run.wait_for_line("Waiting up to").await;
    // A forged link: a real code of the app, with someone else's state.
    let mut forged = world.ghl().approve_install(&url).unwrap();
    let code = code_of(&forged);
    forged.set_query(Some(&format!("code={code}&state=forged0000")));
    let page = reqwest::get(forged.as_str()).await.unwrap();
    assert_eq!(page.status(), 400);
    assert!(page.text().await.unwrap().contains("does not match"));
    let (status, out, err) = run.finish().await;
    assert_eq!(status.code(), Some(1), "{out}{err}");
    assert!(
        err.contains("`state` is not the one this run sent"),
        "{err}"
    );
    assert_eq!(world.ghl().install_count(), 0, "the code was not exchanged");
    assert!(stored_refresh_token(&support::store_path(&dir)).is_none());
    world.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_used_code_is_refused_and_the_stored_tokens_stay() {
    let world = support::world(74, 2, 2).await;
    let dir = tempfile::tempdir().unwrap();
    let config = paste_config(&world, &dir);
    let (status, out, err, redirect) = install_by_paste(&world, &config).await;
    assert!(status.success(), "{out}{err}");
    let stored = stored_refresh_token(&support::store_path(&dir)).unwrap();

    let code = code_of(&redirect);
    let again = AuthRun::start(&["--code", &code], &config, &[]);
    let (status, out, err) = again.finish().await;
    assert_eq!(status.code(), Some(1), "{out}{err}");
    assert!(err.contains("refused the code (HTTP 400)"), "{err}");
    assert!(err.contains("nothing was stored"), "{err}");
    assert_eq!(
        stored_refresh_token(&support::store_path(&dir)).unwrap(),
        stored,
        "the first install's tokens stay"
    );
    assert_eq!(world.ghl().install_count(), 1);
    world.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_for_another_location_are_refused_and_not_stored() {
    let world = support::world(75, 2, 2).await;
    let dir = tempfile::tempdir().unwrap();
    let config = paste_config(&world, &dir);
    let text = std::fs::read_to_string(&config).unwrap().replace(
        &format!("location_id = \"{}\"", world.location_id()),
        "location_id = \"OtherLocation0000000\"",
    );
    std::fs::write(&config, text).unwrap();
    let (status, out, err, _) = install_by_paste(&world, &config).await;
    assert_eq!(status.code(), Some(1), "{out}{err}");
    assert!(
        err.contains(&format!(
            "installed on GHL location {}, but ghl.location_id is OtherLocation0000000",
            world.location_id()
        )),
        "{err}"
    );
    assert!(stored_refresh_token(&support::store_path(&dir)).is_none());
    world.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_client_secret_is_refused_without_showing_it() {
    let world = support::world(76, 2, 2).await;
    let dir = tempfile::tempdir().unwrap();
    world.ghl().register_redirect_uri(PASTE_REDIRECT);
    let (config, _) = oauth_config(
        &world,
        &dir,
        "wrong-secret-5f0c1d",
        &format!("redirect_uri = \"{PASTE_REDIRECT}\""),
    );
    let (status, out, err, _) = install_by_paste(&world, &config).await;
    assert_eq!(status.code(), Some(1), "{out}{err}");
    assert!(
        err.contains("check ghl.oauth.client_id and ghl.oauth.client_secret"),
        "{err}"
    );
    assert!(!format!("{out}{err}").contains("wrong-secret-5f0c1d"));
    assert!(stored_refresh_token(&support::store_path(&dir)).is_none());
    world.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_and_once_ask_for_the_install_then_status_and_check_show_its_expiry_and_warn_a_month_ahead()
 {
    let world = support::world(77, 2, 2).await;
    let dir = tempfile::tempdir().unwrap();
    let config = paste_config(&world, &dir);
    let log = dir.path().join("out.log");
    // Before the install, `check` says what to run.
    let status = spawn_trengo_sync(&["check"], &config, &[], Some(&log))
        .wait()
        .unwrap();
    assert!(status.success());
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("no tokens stored yet: run `trengo-sync auth ghl`"),
        "{text}"
    );
    // `once` cannot start without tokens, and says what to run.
    std::fs::write(&log, "").unwrap();
    let status = spawn_trengo_sync(&["once"], &config, &[], Some(&log))
        .wait()
        .unwrap();
    assert_eq!(status.code(), Some(1));
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("no OAuth tokens are stored; run `trengo-sync auth ghl`"),
        "{text}"
    );

    let (status, out, err, _) = install_by_paste(&world, &config).await;
    assert!(status.success(), "{out}{err}");
    let expires = (chrono::Utc::now() + chrono::Duration::days(365))
        .format("%Y-%m-%d")
        .to_string();
    for command in ["status", "check"] {
        std::fs::write(&log, "").unwrap();
        let status = spawn_trengo_sync(&[command], &config, &[], Some(&log))
            .wait()
            .unwrap();
        assert!(status.success());
        let text = std::fs::read_to_string(&log).unwrap();
        assert!(
            text.contains(&format!("expires {expires}")),
            "{command}: {text}"
        );
        assert!(!text.contains("warning"), "{command}: {text}");
    }

    // Eleven months unused: both warn.
    let store = support::store_path(&dir);
    let conn = rusqlite::Connection::open(&store).unwrap();
    let long_ago = (chrono::Utc::now() - chrono::Duration::days(340)).to_rfc3339();
    conn.execute("UPDATE oauth SET updated_at = ?1", [long_ago])
        .unwrap();
    drop(conn);
    for command in ["status", "check"] {
        std::fs::write(&log, "").unwrap();
        let status = spawn_trengo_sync(&[command], &config, &[], Some(&log))
            .wait()
            .unwrap();
        assert!(status.success());
        let text = std::fs::read_to_string(&log).unwrap();
        assert!(
            text.contains("warning: the GHL refresh token expires on"),
            "{command}: {text}"
        );
    }
    world.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_daemon_takes_the_tokens_of_a_new_install() {
    let mut options = WorldOptions::unpaced(78, 6, 3);
    // Access tokens that need a refresh every few seconds (the client refreshes 60 s early).
    options.ghl.access_token_ttl = Duration::from_secs(63);
    let world = support::start_world(options).await;
    let dir = tempfile::tempdir().unwrap();
    let config = paste_config(&world, &dir);
    let store = support::store_path(&dir);
    let (status, out, err, _) = install_by_paste(&world, &config).await;
    assert!(status.success(), "{out}{err}");
    let mut daemon = spawn_trengo_sync(&["run"], &config, &[], None);
    let links = settled_links(&world, &store, Duration::from_secs(4)).await;
    assert!(!links.is_empty());
    support::wait_for("a refresh", Duration::from_secs(60), async || {
        world.ghl().refresh_count() > 0
    })
    .await;

    // A second install while the daemon runs ends the first token chain.
    let (status, out, err, _) = install_by_paste(&world, &config).await;
    assert!(status.success(), "{out}{err}");
    let refreshes = world.ghl().refresh_count();
    support::wait_for(
        "refreshes on the new chain",
        Duration::from_secs(60),
        async || world.ghl().refresh_count() >= refreshes + 2,
    )
    .await;
    // The daemon still works: an edit crosses, and the store follows the live chain.
    let _ =
        support::reliability::apply(&world, &links, &support::reliability::Edit::CloseTicket(0));
    support::wait_for("the close to cross", Duration::from_secs(60), async || {
        world
            .ghl()
            .read(|s| {
                s.task(&links[0].ghl_contact_id, &links[0].task_id)
                    .map(|t| t.completed)
            })
            .unwrap_or(false)
    })
    .await;
    assert_eq!(
        stored_refresh_token(&store).unwrap(),
        world.ghl().current_refresh_token().expose_secret()
    );
    assert_eq!(signal_and_wait(&mut daemon, "TERM").code(), Some(0));
    world.shutdown().await;
}

/// The exchange and every refresh go to `ghl.oauth.token_url` when it is set, not to
/// `{base_url}/oauth/token`.
#[tokio::test]
async fn the_exchange_and_refreshes_go_to_the_configured_token_url() {
    use std::sync::Arc;
    use trengo_sync::api::Budget;
    use trengo_sync::ghl::install::{InstallSettings, exchange};
    use wiremock::matchers::{body_string_contains, header, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    let api = MockServer::start().await;
    let tokens = MockServer::start().await;
    let answer = |refresh: &str| {
        ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "access_token": "at-1", "token_type": "Bearer", "expires_in": 86399,
            "refresh_token": refresh, "scope": "contacts.readonly contacts.write",
            "userType": "Location", "locationId": "loc-1", "companyId": "c-1"
        }))
    };
    Mock::given(method("POST"))
        .and(path("/custom/token"))
        .and(header("content-type", "application/x-www-form-urlencoded"))
        .and(body_string_contains("grant_type=authorization_code"))
        .and(body_string_contains("code=the-code"))
        .and(body_string_contains("user_type=Location"))
        .and(body_string_contains(
            "redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fcb",
        ))
        .respond_with(answer("rt-1"))
        .expect(1)
        .mount(&tokens)
        .await;
    Mock::given(method("POST"))
        .and(path("/custom/token"))
        .and(body_string_contains("grant_type=refresh_token"))
        .and(body_string_contains("refresh_token=rt-1"))
        .respond_with(answer("rt-2"))
        .expect(1)
        .mount(&tokens)
        .await;
    let token_url = url::Url::parse(&format!("{}/custom/token", tokens.uri())).unwrap();
    let settings = InstallSettings {
        authorize_url: url::Url::parse("http://127.0.0.1:9/oauth/chooselocation").unwrap(),
        token_url: token_url.clone(),
        client_id: "app-1".into(),
        client_secret: SecretString::from("secret-1".to_owned()),
        redirect_uri: url::Url::parse("http://127.0.0.1:9/cb").unwrap(),
        scopes: vec!["contacts.readonly".into(), "users.readonly".into()],
        location_id: "loc-1".into(),
        timeout: Duration::from_secs(10),
    };
    let budget = Arc::new(Budget::new("ghl", 100, Duration::from_secs(10)));
    let clock = trengo_sync::clock::SystemClock::shared();
    let installed = exchange(
        &settings,
        &SecretString::from("the-code".to_owned()),
        budget.clone(),
        clock.clone(),
    )
    .await
    .unwrap();
    assert_eq!(installed.location_id, "loc-1");
    assert_eq!(installed.missing, vec!["users.readonly".to_owned()]);

    // A client whose stored access token has expired refreshes at the same URL.
    #[derive(Debug)]
    struct Vault(std::sync::Mutex<Option<trengo_sync::ghl::OAuthTokens>>);
    impl trengo_sync::ghl::TokenVault for Vault {
        fn load(
            &self,
        ) -> futures::future::BoxFuture<
            '_,
            Result<Option<trengo_sync::ghl::OAuthTokens>, trengo_sync::ghl::VaultError>,
        > {
            Box::pin(async move { Ok(self.0.lock().unwrap().clone()) })
        }
        fn store(
            &self,
            tokens: trengo_sync::ghl::OAuthTokens,
        ) -> futures::future::BoxFuture<'_, Result<(), trengo_sync::ghl::VaultError>> {
            Box::pin(async move {
                *self.0.lock().unwrap() = Some(tokens);
                Ok(())
            })
        }
    }
    let mut expired = installed.tokens.clone();
    expired.expires_at = chrono::Utc::now() - chrono::Duration::seconds(1);
    let vault = Arc::new(Vault(std::sync::Mutex::new(Some(expired))));
    let auth = trengo_sync::ghl::GhlAuth::OAuth {
        client_id: "app-1".into(),
        client_secret: SecretString::from("secret-1".to_owned()),
        vault: vault.clone(),
    };
    let mut config =
        trengo_sync::ghl::GhlClientConfig::new(url::Url::parse(&api.uri()).unwrap(), "loc-1", auth);
    config.token_url = token_url;
    Mock::given(method("GET"))
        .and(path("/contacts/c1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "contact": {"id": "c1", "locationId": "loc-1", "tags": []}
        })))
        .mount(&api)
        .await;
    let client = trengo_sync::ghl::GhlClient::new(config, clock, budget).unwrap();
    client.contact("c1").await.unwrap();
    let stored = vault.0.lock().unwrap().clone().unwrap();
    assert_eq!(stored.refresh_token.expose_secret(), "rt-2");
    let default_path = api
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path() == "/oauth/token")
        .count();
    assert_eq!(default_path, 0, "nothing went to {{base_url}}/oauth/token");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_bound_to_another_location_is_refused_before_the_url() {
    let world = support::world(79, 2, 2).await;
    let dir = tempfile::tempdir().unwrap();
    let config = paste_config(&world, &dir);
    let store = trengo_sync::store::Store::open(support::store_path(&dir)).unwrap();
    trengo_sync::store::identity::bind(
        store.conn(),
        &trengo_sync::store::identity::Identity {
            trengo_account: "https://app.trengo.com".into(),
            ghl_location: "AnotherLocation00000".into(),
        },
        chrono::Utc::now(),
    )
    .unwrap();
    drop(store);
    let (status, out, err) = AuthRun::start(&[], &config, &[]).finish().await;
    assert_eq!(status.code(), Some(78), "{out}{err}");
    assert!(
        err.contains("is bound to GHL location AnotherLocation00000"),
        "{err}"
    );
    assert!(!out.contains("http"), "no URL is printed: {out}");
    world.shutdown().await;
}

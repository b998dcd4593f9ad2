//! Secrets stay secret: with every log level on, through links being made, a wrong token
//! (401s), webhooks good and forged, `/status`, `/metrics`, `status`, `explain`, `check` and
//! configuration errors, neither the API tokens, the webhook signing secret, nor the OAuth
//! client secret and refresh tokens appear in any output, nor anywhere in the store except the
//! table that keeps the rotating OAuth tokens on purpose. The same holds for `auth ghl`, whose
//! authorization codes are secrets too.

mod support;

use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

use secrecy::SecretString;
use support::reliability::{Edit, apply, settled_links, signal_and_wait, spawn_trengo_sync};
use support::write_config;
use trengo_sync::daemon::webhooks::sign_trengo;
use trengo_sync::sim::faults::Faults;
use trengo_sync::sim::world::WorldOptions;

const TRENGO_TOKEN: &str = "trg-SECRET-7f3a9c1e5b2d";
const GHL_TOKEN: &str = "pit-SECRET-0c8e4a6f2b91";
const WEBHOOK_SECRET: &str = "whsec-SECRET-5d1f7b3e9a";
const CLIENT_SECRET: &str = "cs-SECRET-9b2e6d4a8c10";
const REFRESH_TOKEN: &str = "rt-SECRET-3a7c5e1f9d2b";
const CLIENT_ID: &str = "reliability-app-1";
const WRONG_TOKEN: &str = "wrong-SECRET-e4b8d2f6a0c3";

/// The world's table that holds the OAuth tokens on purpose (store/schema.rs).
const VAULT_TABLE: &str = "oauth";

fn trace_env() -> Vec<(&'static str, &'static str)> {
    vec![("RUST_LOG", "trace")]
}

/// Waits for a short-lived command, failing after a minute.
fn finish(mut child: Child) -> std::process::ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the command did not finish within a minute");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Every text value of every table, by table.
fn store_text(path: &Path) -> Vec<(String, String)> {
    let conn =
        rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let mut out = Vec::new();
    for table in tables {
        let mut stmt = conn.prepare(&format!("SELECT * FROM \"{table}\"")).unwrap();
        let columns = stmt.column_count();
        let mut rows = stmt.query([]).unwrap();
        let mut text = String::new();
        while let Some(row) = rows.next().unwrap() {
            for i in 0..columns {
                match row.get_ref(i).unwrap() {
                    rusqlite::types::ValueRef::Text(t) | rusqlite::types::ValueRef::Blob(t) => {
                        text.push_str(&String::from_utf8_lossy(t));
                    }
                    other => text.push_str(&format!("{other:?}")),
                }
                text.push('\t');
            }
            text.push('\n');
        }
        out.push((table, text));
    }
    out
}

fn leaks<'a>(text: &str, secrets: &[&'a str]) -> Vec<&'a str> {
    secrets
        .iter()
        .copied()
        .filter(|s| text.contains(s))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_and_secrets_never_appear_in_logs_answers_commands_or_the_store() {
    let mut options = WorldOptions::unpaced(61, 10, 5);
    options.trengo.token = SecretString::from(TRENGO_TOKEN.to_owned());
    options.ghl.private_token = SecretString::from(GHL_TOKEN.to_owned());
    options.ghl.client_secret = SecretString::from(CLIENT_SECRET.to_owned());
    options.ghl.refresh_token = SecretString::from(REFRESH_TOKEN.to_owned());
    options.ghl.client_id = CLIENT_ID.to_owned();
    let world = support::start_world(options).await;
    let dir = tempfile::tempdir().unwrap();
    let (config, listen) = write_config(&world, &dir);
    let mut text = std::fs::read_to_string(&config).unwrap();
    text = text.replace("enabled = false", "enabled = true");
    text.push_str(&format!(
        "\n[webhooks.trengo_secrets]\nTICKET_CLOSED = \"{WEBHOOK_SECRET}\"\n"
    ));
    std::fs::write(&config, &text).unwrap();
    let log = dir.path().join("output.log");
    let mut seen = String::new();

    // The daemon at trace level, making links and copying notes.
    let mut daemon = spawn_trengo_sync(&["run"], &config, &trace_env(), Some(&log));
    let store = support::store_path(&dir);
    let linked = settled_links(&world, &store, Duration::from_secs(6)).await;
    let _ = apply(&world, &linked, &Edit::CloseTicket(0));
    let _ = apply(&world, &linked, &Edit::GhlNote(1));
    let _ = apply(&world, &linked, &Edit::TrengoNote(2));

    // Webhooks: one good, and forged ones (whose refusals are logged).
    let http = reqwest::Client::new();
    let base = format!("http://{listen}");
    let body = format!("ticket_id={}", linked[0].ticket_id);
    let now = chrono::Utc::now().timestamp();
    for signature in [
        sign_trengo(WEBHOOK_SECRET, now, body.as_bytes()),
        format!("{now};00"),
    ] {
        let answer = http
            .post(format!("{base}/webhooks/trengo/TICKET_CLOSED"))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("Trengo-Signature", signature)
            .body(body.clone())
            .send()
            .await
            .unwrap();
        seen.push_str(&answer.text().await.unwrap());
    }
    let forged = http
        .post(format!("{base}/webhooks/ghl"))
        .header("x-ghl-signature", "bm90IGEgc2lnbmF0dXJl")
        .body("{}")
        .send()
        .await
        .unwrap();
    seen.push_str(&forged.text().await.unwrap());
    support::wait_until_writes_stop(&world, Duration::from_secs(6), Duration::from_secs(60)).await;
    for path in ["/status", "/metrics", "/healthz", "/readyz"] {
        let answer = http.get(format!("{base}{path}")).send().await.unwrap();
        seen.push_str(&answer.text().await.unwrap());
    }
    for args in [
        &["status"][..],
        &["explain", &linked[0].id.0.to_string()][..],
        &["check"][..],
    ] {
        finish(spawn_trengo_sync(args, &config, &trace_env(), Some(&log)));
    }
    assert_eq!(signal_and_wait(&mut daemon, "TERM").code(), Some(0));
    // With the daemon down, `status` reads the store.
    finish(spawn_trengo_sync(
        &["status"],
        &config,
        &trace_env(),
        Some(&log),
    ));

    // Wrong tokens: both APIs answer 401.
    let wrong = [
        ("RUST_LOG", "trace"),
        ("TRENGO_SYNC__TRENGO__TOKEN", WRONG_TOKEN),
        ("TRENGO_SYNC__GHL__TOKEN", WRONG_TOKEN),
    ];
    let status = finish(spawn_trengo_sync(&["once"], &config, &wrong, Some(&log)));
    assert!(!status.success(), "a wrong token must fail `once`");

    // Configuration errors around the secrets themselves.
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        text.replace(
            &format!("token = \"{TRENGO_TOKEN}\""),
            &format!("token = [\"{TRENGO_TOKEN}\"]\ntokn = \"{TRENGO_TOKEN}\""),
        ),
    )
    .unwrap();
    let status = finish(spawn_trengo_sync(
        &["check"],
        &bad,
        &trace_env(),
        Some(&log),
    ));
    assert_eq!(status.code(), Some(78));
    let bad_secret = dir.path().join("bad-secret.toml");
    std::fs::write(
        &bad_secret,
        text.replace(
            &format!("TICKET_CLOSED = \"{WEBHOOK_SECRET}\""),
            &format!("TICKET_CLOSED = {{ value = \"{WEBHOOK_SECRET}\" }}"),
        ),
    )
    .unwrap();
    let status = finish(spawn_trengo_sync(
        &["check"],
        &bad_secret,
        &trace_env(),
        Some(&log),
    ));
    assert_eq!(status.code(), Some(78));

    // OAuth: the client secret and the rotating refresh tokens.
    let oauth_config = dir.path().join("oauth.toml");
    let oauth_store = dir.path().join("oauth.sqlite");
    let oauth_text = text
        .replace(&format!("token = \"{GHL_TOKEN}\""), "")
        .replace(
            &format!("path = \"{}\"", store.display()),
            &format!("path = \"{}\"", oauth_store.display()),
        )
        + &format!(
            "\n[ghl.oauth]\nclient_id = \"{CLIENT_ID}\"\nclient_secret = \"{CLIENT_SECRET}\"\n\
             refresh_token = \"{REFRESH_TOKEN}\"\n"
        );
    std::fs::write(&oauth_config, oauth_text).unwrap();
    let status = finish(spawn_trengo_sync(
        &["once"],
        &oauth_config,
        &trace_env(),
        Some(&log),
    ));
    assert!(status.code().is_some(), "`once` with OAuth was killed");
    assert!(
        world.ghl().refresh_count() > 0,
        "the OAuth run never refreshed"
    );
    let rotated = world.ghl().current_refresh_token();
    let rotated = secrecy::ExposeSecret::expose_secret(&rotated).to_owned();

    let secrets = [
        TRENGO_TOKEN,
        GHL_TOKEN,
        WEBHOOK_SECRET,
        CLIENT_SECRET,
        REFRESH_TOKEN,
        WRONG_TOKEN,
        rotated.as_str(),
    ];
    let output = std::fs::read_to_string(&log).unwrap();
    assert!(
        output.contains("TRACE") || output.contains("trace"),
        "no trace output was captured"
    );
    assert!(
        output.lines().count() > 100,
        "too little output to prove anything"
    );
    assert_eq!(
        leaks(&output, &secrets),
        Vec::<&str>::new(),
        "secrets in the output"
    );
    assert_eq!(
        leaks(&seen, &secrets),
        Vec::<&str>::new(),
        "secrets in HTTP answers"
    );
    for store in [&store, &oauth_store] {
        for (table, text) in store_text(store) {
            if table != VAULT_TABLE {
                assert_eq!(
                    leaks(&text, &secrets),
                    Vec::<&str>::new(),
                    "secrets in table {table} of {}",
                    store.display()
                );
            }
        }
    }
    world.shutdown().await;
}

/// The world's configuration switched from the private token to OAuth (client id and secret
/// and the first refresh token given in the file), with its own store; returns the file.
fn oauth_config(dir: &tempfile::TempDir, text: &str, name: &str) -> std::path::PathBuf {
    let store = support::store_path(dir);
    let path = dir.path().join(format!("{name}.toml"));
    let text = text
        .replace(&format!("token = \"{GHL_TOKEN}\""), "")
        .replace(
            &format!("path = \"{}\"", store.display()),
            &format!(
                "path = \"{}\"",
                dir.path().join(format!("{name}.sqlite")).display()
            ),
        )
        + &format!(
            "\n[ghl.oauth]\nclient_id = \"{CLIENT_ID}\"\nclient_secret = \"{CLIENT_SECRET}\"\n\
             refresh_token = \"{REFRESH_TOKEN}\"\n"
        );
    std::fs::write(&path, text).unwrap();
    path
}

/// A world whose GHL fake knows the test's OAuth app and private token.
fn secret_world_options(seed: u64) -> WorldOptions {
    let mut options = WorldOptions::unpaced(seed, 6, 3);
    options.ghl.private_token = SecretString::from(GHL_TOKEN.to_owned());
    options.ghl.client_secret = SecretString::from(CLIENT_SECRET.to_owned());
    options.ghl.refresh_token = SecretString::from(REFRESH_TOKEN.to_owned());
    options.ghl.client_id = CLIENT_ID.to_owned();
    options
}

/// Issue #13 item 6: GHL's token endpoint answers with the new tokens in a shape the daemon
/// does not read (`expires_in` as a string). The refresh fails, and nothing of that answer, in
/// particular neither token it carries, reaches stderr, the logs, `/status`, `/readyz` or the
/// output of `once`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undecodable_token_answer_puts_no_token_in_output_status_or_readiness() {
    let world = support::start_world(secret_world_options(62)).await;
    world.ghl().set_faults(Faults {
        stringify_keys: vec!["expires_in".into()],
        ..Faults::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let (config, listen) = write_config(&world, &dir);
    let text = std::fs::read_to_string(&config).unwrap();
    let oauth = oauth_config(&dir, &text, "oauth");
    let log = dir.path().join("output.log");

    let status = finish(spawn_trengo_sync(
        &["once"],
        &oauth,
        &trace_env(),
        Some(&log),
    ));
    assert!(!status.success(), "`once` cannot succeed without a token");
    let mut daemon = spawn_trengo_sync(&["run"], &oauth, &trace_env(), Some(&log));
    let http = reqwest::Client::new();
    let base = format!("http://{listen}");
    let mut seen = String::new();
    support::wait_for(
        "readiness to name the refused refresh",
        Duration::from_secs(60),
        async || {
            let Ok(answer) = http.get(format!("{base}/readyz")).send().await else {
                return false;
            };
            let text = answer.text().await.unwrap_or_default();
            let named = text.contains("/oauth/token");
            seen.push_str(&text);
            named
        },
    )
    .await;
    for path in ["/status", "/readyz"] {
        let answer = http.get(format!("{base}{path}")).send().await.unwrap();
        seen.push_str(&answer.text().await.unwrap());
    }
    finish(spawn_trengo_sync(
        &["status"],
        &oauth,
        &trace_env(),
        Some(&log),
    ));
    assert_eq!(signal_and_wait(&mut daemon, "TERM").code(), Some(0));

    assert!(
        world.ghl().refresh_count() > 0,
        "the token endpoint was never asked"
    );
    let output = std::fs::read_to_string(&log).unwrap();
    assert!(
        output.contains("/oauth/token"),
        "the refused refresh is not reported:\n{output}"
    );
    // The fake's tokens are `sim-at-…` and `sim-rt-…` (sim/ghl/auth.rs).
    for text in [&output, &seen] {
        for token in ["sim-at-", "sim-rt-", REFRESH_TOKEN, CLIENT_SECRET] {
            assert!(!text.contains(token), "{token} leaked:\n{text}");
        }
    }
    world.shutdown().await;
}

/// Issue #13 item 7: when an API answers with something unreadable, the failing item's stored
/// reason (what `/status` and `trengo-sync status` show) names the call, the HTTP status and
/// the kind of failure, and quotes nothing of the answer: no customer's name, no e-mail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_items_stored_reason_holds_codes_and_ids_not_remote_text() {
    use trengo_sync::sync::engine::{PassKind, PassOptions};
    let world = support::world(65, 6, 3).await;
    let dir = tempfile::tempdir().unwrap();
    let engine = support::engine(&world, &dir).await;
    support::once(&engine).await;
    support::until_quiet(&engine, 6).await;
    let linked = support::links(&dir);
    assert!(!linked.is_empty(), "nothing was linked");
    // GHL's task lists lose their required `completed` flag: each linked group's read fails.
    world.ghl().set_faults(Faults {
        strip_keys: vec!["completed".into()],
        ..Faults::default()
    });
    for i in 0..linked.len() {
        let _ = apply(&world, &linked, &Edit::CloseTicket(i));
    }
    let _ = engine.pass(PassKind::Poll, PassOptions::default()).await;
    world.ghl().set_faults(Faults::default());

    let store = trengo_sync::store::Store::open_read_only(support::store_path(&dir)).unwrap();
    let queued = trengo_sync::store::retries::all(store.conn()).unwrap();
    assert!(!queued.is_empty(), "no item failed");
    for retry in &queued {
        let reason = &retry.reason;
        assert!(reason.contains("GHL GET /contacts/"), "{reason}");
        assert!(reason.contains("HTTP 200 unreadable answer"), "{reason}");
        assert!(
            !reason.contains('{') && !reason.contains("began"),
            "remote text in {reason}"
        );
        for person in world.people() {
            assert!(!reason.contains(&person.name), "{reason}");
            assert!(!reason.contains(&person.email), "{reason}");
        }
    }
    world.shutdown().await;
}

/// Issue #13 item 8: the store holds the OAuth tokens and personal data, so the daemon creates
/// it and its `-wal` and `-shm` files readable by their owner only, even under umask 022 (the
/// shell default, where SQLite alone makes them 0644).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_and_its_wal_and_shm_files_are_owner_only_under_umask_022() {
    use std::os::unix::fs::PermissionsExt as _;
    let world = support::world(66, 4, 2).await;
    let dir = tempfile::tempdir().unwrap();
    let (config, _) = write_config(&world, &dir);
    let log = dir.path().join("output.log");
    let file = std::fs::File::create(&log).unwrap();
    let mut daemon = std::process::Command::new("sh")
        .arg("-c")
        .arg("umask 022 && exec \"$0\" \"$@\"")
        .arg(env!("CARGO_BIN_EXE_trengo-sync"))
        .args(["run", "--config", config.to_str().unwrap()])
        .env("RUST_LOG", "warn")
        .stdout(file.try_clone().unwrap())
        .stderr(file)
        .spawn()
        .unwrap();
    let store = support::store_path(&dir);
    let side = |suffix: &str| std::path::PathBuf::from(format!("{}{suffix}", store.display()));
    support::wait_for(
        "the store and its side files",
        Duration::from_secs(60),
        async || store.exists() && side("-wal").exists() && side("-shm").exists(),
    )
    .await;
    let _ = settled_links(&world, &store, Duration::from_secs(3)).await;
    // A file made under the same umask by anything else is group- and world-readable.
    let control = dir.path().join("control");
    std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("umask 022 && : > {}", control.display()))
        .status()
        .unwrap();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&control), 0o644, "the umask did not apply");
    for path in [store.clone(), side("-wal"), side("-shm")] {
        assert_eq!(
            mode(&path),
            0o600,
            "{} is {:o}",
            path.display(),
            mode(&path)
        );
    }
    assert_eq!(signal_and_wait(&mut daemon, "TERM").code(), Some(0));
    assert_eq!(mode(&store), 0o600);
    world.shutdown().await;
}

/// `trengo-sync auth ghl` at trace level, through a pasted install, a used code, a forged
/// `state` on the loopback listener, a listener install, a wrong client secret, and `status`
/// and `check` afterwards: neither the client secret, nor any authorization code, nor the
/// tokens appear in its output, the listener's pages, or the store outside the vault table.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_ghl_never_shows_the_client_secret_codes_or_tokens() {
    use support::install::{
        AuthRun, PASTE_REDIRECT, client_secret, code_of, free_port, oauth_config,
    };
    const WRONG_SECRET: &str = "cs-SECRET-wrong-7d3b1f";
    let world = support::world(62, 3, 2).await;
    world.ghl().register_redirect_uri(PASTE_REDIRECT);
    let trace = [("RUST_LOG", "trace")];
    let mut seen = String::new();
    let mut codes = Vec::new();

    // Pasted install, then the same code again.
    let paste_dir = tempfile::tempdir().unwrap();
    let (paste_config, _) = oauth_config(
        &world,
        &paste_dir,
        &client_secret(),
        &format!("redirect_uri = \"{PASTE_REDIRECT}\""),
    );
    let mut run = AuthRun::start(&[], &paste_config, &trace);
    let redirect = world.ghl().approve_install(&run.url().await).unwrap();
    codes.push(code_of(&redirect));
    run.paste(redirect.as_str()).await;
    let (status, out, err) = run.finish().await;
    assert!(status.success(), "{out}{err}");
    seen.push_str(&out);
    seen.push_str(&err);
    let (status, out, err) = AuthRun::start(&["--code", &codes[0]], &paste_config, &trace)
        .finish()
        .await;
    assert!(!status.success(), "a used code must be refused");
    seen.push_str(&out);
    seen.push_str(&err);

    // The listener: a forged state first, then the real redirect.
    let listen_dir = tempfile::tempdir().unwrap();
    let listen = format!("127.0.0.1:{}", free_port());
    world
        .ghl()
        .register_redirect_uri(&format!("http://{listen}/oauth/callback"));
    let (listen_config, _) = oauth_config(&world, &listen_dir, &client_secret(), "");
    let mut run = AuthRun::start(&["--listen", &listen], &listen_config, &trace);
    let url = run.url().await;
    run.wait_for_line("Waiting up to").await;
    let mut forged = world.ghl().approve_install(&url).unwrap();
    codes.push(code_of(&forged));
    forged.set_query(Some(&format!("code={}&state=forged", codes[1])));
    seen.push_str(
        &reqwest::get(forged.as_str())
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    );
    let (status, out, err) = run.finish().await;
    assert!(!status.success(), "a forged state must be refused");
    seen.push_str(&out);
    seen.push_str(&err);
    let mut run = AuthRun::start(&["--listen", &listen], &listen_config, &trace);
    let url = run.url().await;
    run.wait_for_line("Waiting up to").await;
    let page = reqwest::get(&url).await.unwrap();
    codes.push(code_of(&page.url().clone()));
    seen.push_str(&page.text().await.unwrap());
    let (status, out, err) = run.finish().await;
    assert!(status.success(), "{out}{err}");
    seen.push_str(&out);
    seen.push_str(&err);

    // A wrong client secret.
    let wrong_dir = tempfile::tempdir().unwrap();
    let (wrong_config, _) = oauth_config(
        &world,
        &wrong_dir,
        WRONG_SECRET,
        &format!("redirect_uri = \"{PASTE_REDIRECT}\""),
    );
    let mut run = AuthRun::start(&[], &wrong_config, &trace);
    let redirect = world.ghl().approve_install(&run.url().await).unwrap();
    codes.push(code_of(&redirect));
    run.paste(redirect.as_str()).await;
    let (status, out, err) = run.finish().await;
    assert!(!status.success(), "a wrong client secret must be refused");
    seen.push_str(&out);
    seen.push_str(&err);

    // `status` and `check` read the stored tokens' times.
    let log = paste_dir.path().join("commands.log");
    for command in ["status", "check"] {
        finish(spawn_trengo_sync(
            &[command],
            &paste_config,
            &trace_env(),
            Some(&log),
        ));
    }
    seen.push_str(&std::fs::read_to_string(&log).unwrap());

    let mut tokens = Vec::new();
    for dir in [&paste_dir, &listen_dir] {
        let store = trengo_sync::store::Store::open_read_only(support::store_path(dir)).unwrap();
        let stored = trengo_sync::store::oauth::load(store.conn())
            .unwrap()
            .unwrap();
        tokens.push(secrecy::ExposeSecret::expose_secret(&stored.refresh_token).to_owned());
        tokens.push(secrecy::ExposeSecret::expose_secret(&stored.access_token.unwrap()).to_owned());
    }
    let client = client_secret();
    let mut secrets: Vec<&str> = vec![client.as_str(), WRONG_SECRET];
    secrets.extend(codes.iter().map(String::as_str));
    secrets.extend(tokens.iter().map(String::as_str));
    assert!(
        seen.contains("TRACE") || seen.contains("trace"),
        "no trace output"
    );
    assert!(seen.contains("GHL app installed"), "{seen}");
    assert_eq!(leaks(&seen, &secrets), Vec::<&str>::new(), "secrets shown");
    for dir in [&paste_dir, &listen_dir, &wrong_dir] {
        for (table, text) in store_text(&support::store_path(dir)) {
            if table != VAULT_TABLE {
                assert_eq!(
                    leaks(&text, &secrets),
                    Vec::<&str>::new(),
                    "secrets in table {table}"
                );
            }
        }
    }
    world.shutdown().await;
}

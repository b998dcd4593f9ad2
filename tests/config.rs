//! Configuration behaviour as a user meets it: through the `trengo-sync` binary and its
//! exit codes, and through `config::load` for what the binary does not print.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use trengo_sync::config::{self, ConfigError};

const MINIMAL: &str = r#"
[trengo]
token = "trengo-secret-token-123"
[ghl]
location_id = "loc-1"
token = "pit-secret-ghl-456"
"#;

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn trengo_sync(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_trengo-sync"));
    cmd.args(args).env_remove("RUST_LOG");
    for (k, _) in std::env::vars() {
        if k.starts_with("TRENGO_SYNC") {
            cmd.env_remove(k);
        }
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn example_config_checks_clean_and_lists_what_is_enabled() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/config.example.toml");
    let out = trengo_sync(&["check", "--config", example], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("links Trengo → GHL: on"), "{stdout}");
    assert!(stdout.contains("links GHL → Trengo: off"), "{stdout}");
    assert!(stdout.contains("tags: both ways"), "{stdout}");
}

#[test]
fn wrong_type_at_nested_key_exits_78_naming_key_and_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "bad.toml",
        &format!("{MINIMAL}\n[limits]\nretry_base = 30\n"),
    );
    let out = trengo_sync(&["check", "--config", path.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(78));
    let err = stderr(&out);
    assert!(err.contains("limits.retry_base"), "{err}");
    assert!(err.contains(path.to_str().unwrap()), "{err}");
    assert!(err.contains("duration"), "{err}");
}

#[test]
fn toml_syntax_error_names_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "syntax.toml", "[trengo]\ntoken = \"x\"\n[ghl\n");
    let out = trengo_sync(&["check", "--config", path.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(78));
    let err = stderr(&out);
    assert!(err.contains("line 3, column"), "{err}");
    assert!(err.contains("syntax.toml"), "{err}");
}

#[test]
fn missing_file_names_its_path() {
    let out = trengo_sync(&["check", "--config", "/nonexistent/trengo-sync.toml"], &[]);
    assert_eq!(out.status.code(), Some(78));
    assert!(stderr(&out).contains("/nonexistent/trengo-sync.toml"));
}

#[test]
fn env_override_beats_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "c.toml",
        &format!("{MINIMAL}\n[http]\nlisten = \"127.0.0.1:1111\"\n"),
    );
    let out = trengo_sync(
        &["check", "--config", path.to_str().unwrap()],
        &[("TRENGO_SYNC__HTTP__LISTEN", "127.0.0.1:2222")],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("127.0.0.1:2222"));
}

#[test]
fn bad_env_value_names_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "c.toml", MINIMAL);
    let out = trengo_sync(
        &["check", "--config", path.to_str().unwrap()],
        &[("TRENGO_SYNC__LIMITS__MAX_ATTEMPTS", "many")],
    );
    assert_eq!(out.status.code(), Some(78));
    assert!(
        stderr(&out).contains("TRENGO_SYNC__LIMITS__MAX_ATTEMPTS"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn secret_is_read_from_a_file_key() {
    let dir = tempfile::tempdir().unwrap();
    let secret = write(dir.path(), "trengo-token", "from-a-file-789\n");
    let path = write(
        dir.path(),
        "c.toml",
        &format!(
            "[trengo]\ntoken_file = {:?}\n[ghl]\nlocation_id = \"loc\"\ntoken = \"pit-x\"\n",
            secret.to_str().unwrap()
        ),
    );
    let config = config::load(&path).unwrap();
    assert_eq!(config.trengo.token.unwrap().expose(), "from-a-file-789");
}

#[test]
fn unreadable_secret_file_is_a_config_error_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "c.toml",
        "[trengo]\ntoken_file = \"/nonexistent/token\"\n[ghl]\nlocation_id = \"loc\"\ntoken = \"pit-x\"\n",
    );
    let err = config::load(&path).unwrap_err();
    assert!(matches!(err, ConfigError::Invalid(_)));
    assert_eq!(err.exit_code(), 78);
    assert!(err.to_string().contains("trengo.token_file"), "{err}");
}

#[test]
fn secrets_never_appear_in_debug_or_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "c.toml", MINIMAL);
    let config = config::load(&path).unwrap();
    let debug = format!("{config:?}");
    assert!(!debug.contains("trengo-secret-token-123"), "{debug}");
    assert!(!debug.contains("pit-secret-ghl-456"), "{debug}");

    // A wrongly typed secret must not be echoed in the error either.
    let bad = write(
        dir.path(),
        "bad.toml",
        "[trengo]\ntoken = [\"trengo-secret-token-123\"]\n[ghl]\nlocation_id = \"l\"\ntoken = \"pit-secret-ghl-456\"\n[limits]\nmax_attempts = \"x\"\n",
    );
    let out = trengo_sync(&["check", "--config", bad.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(78));
    let all = format!("{}{}", stderr(&out), String::from_utf8_lossy(&out.stdout));
    assert!(!all.contains("trengo-secret-token-123"), "{all}");
    assert!(!all.contains("pit-secret-ghl-456"), "{all}");
}

#[test]
fn validation_reports_every_problem_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "c.toml",
        "[ghl]\nlocation_id = \"\"\n[status.map]\nOPEN = \"open\"\nASSIGNED = \"done\"\nCLOSED = \"done\"\nINVALID = \"done\"\n[limits]\nsweep_share = 1.5\n",
    );
    let err = config::load(&path).unwrap_err();
    let keys: Vec<_> = err.problems().iter().map(|p| p.key.clone()).collect();
    for key in [
        "trengo.token",
        "ghl.location_id",
        "ghl.token",
        "status.map",
        "limits.sweep_share",
    ] {
        assert!(keys.iter().any(|k| k == key), "{key} missing from {keys:?}");
    }
}

#[test]
fn bad_cron_and_policy_names_are_refused_with_what_was_expected() {
    let dir = tempfile::tempdir().unwrap();
    let cron = write(
        dir.path(),
        "c.toml",
        &format!("{MINIMAL}\n[schedule]\nsweep = \"*/5 * * * *\"\n"),
    );
    let err = config::load(&cron).unwrap_err().to_string();
    assert!(
        err.contains("schedule.sweep") && err.contains("6 fields"),
        "{err}"
    );
    let policy = write(
        dir.path(),
        "p.toml",
        &format!("{MINIMAL}\n[conflicts]\ntags = \"latest\"\n"),
    );
    let err = config::load(&policy).unwrap_err().to_string();
    assert!(
        err.contains("conflicts.tags") && err.contains("newest, trengo, ghl, manual"),
        "{err}"
    );
}

#[test]
fn unknown_keys_are_refused_as_likely_typos() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "c.toml",
        &format!("{MINIMAL}\n[link]\ntrengo_lable = \"x\"\n"),
    );
    let err = config::load(&path).unwrap_err().to_string();
    assert!(
        err.contains("trengo_lable") && err.contains("trengo_label"),
        "{err}"
    );
}

#[test]
fn every_example_key_is_a_real_key_and_defaults_match() {
    // The example documents defaults: loading it must give the same values as no file at all.
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "c.toml", MINIMAL);
    let minimal = config::load(&path).unwrap();
    let example = config::load(Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/config.example.toml"
    )))
    .unwrap();
    assert_eq!(
        format!("{:?}", minimal.schedule),
        format!("{:?}", example.schedule)
    );
    assert_eq!(
        format!("{:?}", minimal.limits),
        format!("{:?}", example.limits)
    );
    assert_eq!(format!("{:?}", minimal.link), format!("{:?}", example.link));
    assert_eq!(
        format!("{:?}", minimal.status),
        format!("{:?}", example.status)
    );
    assert_eq!(format!("{:?}", minimal.tags), format!("{:?}", example.tags));
    assert_eq!(
        format!("{:?}", minimal.webhooks),
        format!("{:?}", example.webhooks)
    );
    assert_eq!(format!("{:?}", minimal.http), format!("{:?}", example.http));
}

/// Issue #15: the example documents `[contacts]` off, every key it sets outside the worked
/// example at its default, and the worked example's map, context and task fields (the demo
/// runs this section turned on).
#[test]
fn the_example_documents_contact_pairs_off_with_the_worked_example() {
    let dir = tempfile::tempdir().unwrap();
    let minimal = config::load(&write(dir.path(), "c.toml", MINIMAL)).unwrap();
    let example = config::load(Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/config.example.toml"
    )))
    .unwrap();
    let (defaults, shown) = (&minimal.contacts, &example.contacts);
    assert!(
        !shown.enabled,
        "an installed example must not pair contacts"
    );
    assert_eq!(shown.enabled, defaults.enabled);
    assert_eq!(shown.tag, defaults.tag);
    assert_eq!(shown.channel_id, defaults.channel_id);
    assert_eq!(shown.sweep_pairs_per_hour, defaults.sweep_pairs_per_hour);
    assert_eq!(shown.welcome, defaults.welcome);
    assert_eq!(
        shown.context.web_link_template,
        defaults.context.web_link_template
    );
    let entry = |ghl: &str, trengo: &str, direction, policy| config::FieldEntry {
        ghl: ghl.into(),
        trengo: trengo.into(),
        direction,
        policy,
    };
    assert_eq!(
        shown.fields,
        [
            entry(
                "contact.customer_number",
                "Customer number",
                config::Direction::GhlToTrengo,
                config::PolicyName::Ghl
            ),
            entry(
                "contact.subscription_tier",
                "Subscription tier",
                config::Direction::default(),
                config::PolicyName::default()
            ),
        ]
    );
    let c = &shown.context;
    assert_eq!(c.web_link.as_deref(), Some("GHL link"));
    assert_eq!(c.next_appointment.as_deref(), Some("Next appointment"));
    assert_eq!(c.open_tasks.as_deref(), Some("Open GHL tasks"));
    assert_eq!(c.tags.as_deref(), Some("GHL tags"));
    assert_eq!(shown.task.due.as_deref(), Some("Task due"));
    assert_eq!(shown.task.title.as_deref(), Some("Task title"));
}

/// Issue #13 item 8: a Trengo webhook secret can come from a file (systemd `LoadCredential=`),
/// like the API tokens; giving one event both ways is refused.
#[test]
fn trengo_webhook_secrets_are_read_from_secret_files() {
    let dir = tempfile::tempdir().unwrap();
    let secret = write(dir.path(), "ticket-closed", "whsec-from-a-file\n");
    let path = write(
        dir.path(),
        "c.toml",
        &format!(
            "{MINIMAL}\n[webhooks.trengo_secret_files]\nTICKET_CLOSED = {:?}\n",
            secret.to_str().unwrap()
        ),
    );
    let config = config::load(&path).unwrap();
    assert_eq!(
        config.webhooks.trengo_secrets["TICKET_CLOSED"].expose(),
        "whsec-from-a-file"
    );
    let both = write(
        dir.path(),
        "both.toml",
        &format!(
            "{MINIMAL}\n[webhooks.trengo_secrets]\nTICKET_CLOSED = \"whsec-inline\"\n\
             [webhooks.trengo_secret_files]\nTICKET_CLOSED = {:?}\n",
            secret.to_str().unwrap()
        ),
    );
    let err = config::load(&both).unwrap_err();
    assert_eq!(err.exit_code(), 78);
    assert!(
        err.to_string()
            .contains("webhooks.trengo_secret_files.TICKET_CLOSED"),
        "{err}"
    );
    assert!(!err.to_string().contains("whsec-"), "{err}");
    let missing = write(
        dir.path(),
        "missing.toml",
        &format!("{MINIMAL}\n[webhooks.trengo_secret_files]\nNOTE = \"/nonexistent/note\"\n"),
    );
    let err = config::load(&missing).unwrap_err();
    assert!(
        err.to_string()
            .contains("webhooks.trengo_secret_files.NOTE"),
        "{err}"
    );
}

/// Issue #13 item 7: `check` warns when the listener is reachable beyond loopback and no
/// status token guards `/status` and `/metrics`; the token may come from a file.
#[test]
fn check_warns_when_status_is_reachable_beyond_loopback_without_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let open = write(
        dir.path(),
        "open.toml",
        &format!("{MINIMAL}\n[http]\nlisten = \"0.0.0.0:8642\"\n"),
    );
    let out = trengo_sync(&["check", "--config", open.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("warning: http.listen 0.0.0.0:8642"),
        "{stdout}"
    );
    let token = write(dir.path(), "status-token", "st-from-a-file\n");
    let guarded = write(
        dir.path(),
        "guarded.toml",
        &format!(
            "{MINIMAL}\n[http]\nlisten = \"0.0.0.0:8642\"\nstatus_token_file = {:?}\n",
            token.to_str().unwrap()
        ),
    );
    let out = trengo_sync(&["check", "--config", guarded.to_str().unwrap()], &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!stdout.contains("warning"), "{stdout}");
    assert!(stdout.contains("need the status token"), "{stdout}");
    assert!(!stdout.contains("st-from-a-file"), "{stdout}");
    let local = write(dir.path(), "local.toml", MINIMAL);
    let out = trengo_sync(&["check", "--config", local.to_str().unwrap()], &[]);
    assert!(!String::from_utf8_lossy(&out.stdout).contains("warning"));
}

/// Issue #13 item 5: an all-digit value of a text key is the text as written, not a number
/// (`007` used to reach Trengo as `Bearer 7`, and a location id `007` as `7`).
#[tokio::test]
async fn all_digit_env_values_of_text_keys_are_kept_as_written() {
    use wiremock::matchers::{method, path_regex};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "c.toml", MINIMAL);
    let out = trengo_sync(
        &["check", "--config", path.to_str().unwrap()],
        &[("TRENGO_SYNC__GHL__LOCATION_ID", "007")],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("location 007 "), "{stdout}");

    // The token as Trengo receives it, from a real `once`.
    let trengo = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path_regex(".*"))
        .respond_with(ResponseTemplate::new(401))
        .mount(&trengo)
        .await;
    let config = write(
        dir.path(),
        "once.toml",
        &format!(
            "[trengo]\nbase_url = \"{}/api/v2\"\n[ghl]\nlocation_id = \"loc-1\"\ntoken = \"pit-x\"\n\
             base_url = \"http://127.0.0.1:9\"\n[store]\npath = {:?}\n",
            trengo.uri(),
            dir.path().join("state.sqlite").to_str().unwrap()
        ),
    );
    let out = tokio::task::spawn_blocking(move || {
        trengo_sync(
            &["once", "--config", config.to_str().unwrap()],
            &[("TRENGO_SYNC__TRENGO__TOKEN", "007")],
        )
    })
    .await
    .unwrap();
    assert_ne!(out.status.code(), Some(0), "a 401 fails the pass");
    let requests = trengo.received_requests().await.unwrap();
    assert!(!requests.is_empty(), "{}", stderr(&out));
    for r in &requests {
        let auth = r.headers.get("authorization").unwrap().to_str().unwrap();
        assert_eq!(auth, "Bearer 007");
    }
}

/// Issue #13 item 5: the README's `TRENGO_SYNC__WEBHOOKS__TRENGO_SECRETS__NOTE` arrives as the
/// key `note`; it sets the secret of Trengo's `NOTE` event instead of failing with exit 78.
#[test]
fn trengo_secret_event_names_from_the_environment_match_in_any_case() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "c.toml", MINIMAL);
    let out = trengo_sync(
        &["check", "--config", path.to_str().unwrap()],
        &[("TRENGO_SYNC__WEBHOOKS__TRENGO_SECRETS__NOTE", "note-secret")],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let secrets = path.clone();
    std::fs::write(
        &secrets,
        format!("{MINIMAL}\n[webhooks.trengo_secrets]\nTicket_Closed = \"s\"\nNOTE_TYPO = \"s\"\n"),
    )
    .unwrap();
    let out = trengo_sync(&["check", "--config", path.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(78));
    let err = stderr(&out);
    assert!(err.contains("NOTE_TYPO"), "{err}");
    assert!(
        err.contains("(1 problem)"),
        "a known event in another case is fine: {err}"
    );
}

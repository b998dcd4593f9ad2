//! The state store against real files: opening, refusing, migrating, and the tables' behaviour
//! seen from outside the crate.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::Connection;
use secrecy::SecretString;
use serde_json::json;
use tempfile::TempDir;
use trengo_sync::store::bases;
use trengo_sync::store::bases::BaseName;
use trengo_sync::store::identity::{self, Identity};
use trengo_sync::store::intents::{self, IntentState};
use trengo_sync::store::links::{self, LinkState, NewLink, Origin};
use trengo_sync::store::oauth::StoredOAuth;
use trengo_sync::store::retries::{self, RetryPolicy};
use trengo_sync::store::{APPLICATION_ID, SCHEMA_VERSION, Store, StoreError, StoreHandle};

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn db_path(dir: &TempDir) -> PathBuf {
    dir.path().join("state.sqlite")
}

fn side(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Everything a refusal must leave as it was: the bytes, and the absence of side files.
#[derive(Debug, PartialEq)]
struct Snapshot {
    bytes: Vec<u8>,
    wal: bool,
    shm: bool,
    journal: bool,
}

fn snapshot(path: &Path) -> Snapshot {
    Snapshot {
        bytes: std::fs::read(path).unwrap(),
        wal: side(path, "-wal").exists(),
        shm: side(path, "-shm").exists(),
        journal: side(path, "-journal").exists(),
    }
}

fn assert_refused_untouched(path: &Path, before: &Snapshot) {
    assert_eq!(
        &snapshot(path),
        before,
        "a refused file must be left untouched"
    );
    assert!(!before.wal && !before.shm && !before.journal);
}

fn new_link(ticket_id: i64, task_id: &str) -> NewLink {
    NewLink {
        ticket_id,
        task_id: task_id.into(),
        ghl_contact_id: "contact-1".into(),
        trengo_contact_id: None,
        origin: Origin::Trengo,
    }
}

/// A store of ours with one link, closed again.
fn ours_with_a_link(path: &Path) {
    let store = Store::open(path).unwrap();
    links::insert(
        store.conn(),
        &new_link(1, "task-1"),
        at("2026-01-01T00:00:00Z"),
    )
    .unwrap();
}

#[test]
fn migrations_run_on_a_new_file() {
    let dir = TempDir::new().unwrap();
    let path = db_path(&dir);
    let store = Store::open(&path).unwrap();
    assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
    let application_id: i32 = store
        .conn()
        .pragma_query_value(None, "application_id", |r| r.get(0))
        .unwrap();
    assert_eq!(application_id, APPLICATION_ID);
    for table in [
        "identity", "links", "bases", "intents", "ledger", "retries", "job_runs",
    ] {
        let n: i64 = store
            .conn()
            .query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 0, "{table} starts empty");
    }
}

#[test]
fn an_empty_file_becomes_a_database() {
    let dir = TempDir::new().unwrap();
    let path = db_path(&dir);
    std::fs::write(&path, b"").unwrap();
    let store = Store::open(&path).unwrap();
    assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
}

#[test]
fn reopening_keeps_data() {
    let dir = TempDir::new().unwrap();
    let path = db_path(&dir);
    ours_with_a_link(&path);
    let store = Store::open(&path).unwrap();
    let link = links::by_ticket(store.conn(), 1).unwrap().unwrap();
    assert_eq!(link.task_id, "task-1");
    assert_eq!(link.state, LinkState::Active);
}

#[test]
fn wal_and_foreign_keys_are_on() {
    let dir = TempDir::new().unwrap();
    let store = Store::open(db_path(&dir)).unwrap();
    let conn = store.conn();
    let mode: String = conn
        .pragma_query_value(None, "journal_mode", |r| r.get(0))
        .unwrap();
    assert_eq!(mode.to_lowercase(), "wal");
    let fk: i64 = conn
        .pragma_query_value(None, "foreign_keys", |r| r.get(0))
        .unwrap();
    assert_eq!(fk, 1);
    let sync: i64 = conn
        .pragma_query_value(None, "synchronous", |r| r.get(0))
        .unwrap();
    assert_eq!(sync, 1, "synchronous=NORMAL");
    let busy: i64 = conn
        .pragma_query_value(None, "busy_timeout", |r| r.get(0))
        .unwrap();
    assert_eq!(busy, 5000);
}

#[test]
fn a_newer_database_is_refused_untouched() {
    let dir = TempDir::new().unwrap();
    let path = db_path(&dir);
    ours_with_a_link(&path);
    let raw = Connection::open(&path).unwrap();
    raw.pragma_update(None, "user_version", 99).unwrap();
    drop(raw);
    let before = snapshot(&path);

    let err = Store::open(&path).unwrap_err();
    assert!(
        matches!(err, StoreError::TooNew { found: 99, supported, .. } if supported == SCHEMA_VERSION),
        "{err}"
    );
    let text = err.to_string();
    assert!(text.contains(&path.display().to_string()), "{text}");
    assert!(text.contains("newer"), "{text}");
    assert_refused_untouched(&path, &before);

    let err = Store::open_read_only(&path).unwrap_err();
    assert!(matches!(err, StoreError::TooNew { .. }), "{err}");
    assert_refused_untouched(&path, &before);
}

#[test]
fn a_text_file_is_refused_untouched() {
    let dir = TempDir::new().unwrap();
    let path = db_path(&dir);
    std::fs::write(&path, "[trengo]\ntoken = \"not a database\"\n").unwrap();
    let before = snapshot(&path);

    let err = Store::open(&path).unwrap_err();
    assert!(matches!(err, StoreError::NotADatabase { .. }), "{err}");
    let text = err.to_string();
    assert!(text.contains(&path.display().to_string()), "{text}");
    assert!(
        text.contains("[trengo]"),
        "names what it starts with: {text}"
    );
    assert!(text.contains("store.path"), "{text}");
    assert_refused_untouched(&path, &before);
}

#[test]
fn a_short_binary_file_is_refused_untouched() {
    let dir = TempDir::new().unwrap();
    let path = db_path(&dir);
    std::fs::write(&path, [0u8, 159, 146, 150]).unwrap();
    let before = snapshot(&path);
    let err = Store::open(&path).unwrap_err();
    assert!(matches!(err, StoreError::NotADatabase { .. }), "{err}");
    assert_refused_untouched(&path, &before);
}

#[test]
fn another_apps_database_is_refused_untouched() {
    let dir = TempDir::new().unwrap();
    let path = db_path(&dir);
    let raw = Connection::open(&path).unwrap();
    raw.execute_batch("CREATE TABLE orders (id INTEGER PRIMARY KEY, total REAL); INSERT INTO orders VALUES (1, 9.5);")
        .unwrap();
    drop(raw);
    let before = snapshot(&path);

    let err = Store::open(&path).unwrap_err();
    assert!(matches!(err, StoreError::Foreign { .. }), "{err}");
    assert!(err.to_string().contains("orders"), "{err}");
    assert_refused_untouched(&path, &before);
    let err = Store::open_read_only(&path).unwrap_err();
    assert!(matches!(err, StoreError::Foreign { .. }), "{err}");
    assert_refused_untouched(&path, &before);
}

#[test]
fn a_database_marked_by_another_app_is_refused_untouched() {
    let dir = TempDir::new().unwrap();
    let path = db_path(&dir);
    let raw = Connection::open(&path).unwrap();
    // No tables at all: only the application id says it is not ours.
    raw.pragma_update(None, "application_id", 0x0f05_5112)
        .unwrap();
    drop(raw);
    let before = snapshot(&path);

    let err = Store::open(&path).unwrap_err();
    assert!(matches!(err, StoreError::Foreign { .. }), "{err}");
    assert_refused_untouched(&path, &before);
}

#[test]
fn a_truncated_database_is_refused_untouched() {
    let dir = TempDir::new().unwrap();
    let path = db_path(&dir);
    ours_with_a_link(&path);
    let bytes = std::fs::read(&path).unwrap();
    assert!(bytes.len() > 3 * 4096, "the fixture spans several pages");
    std::fs::write(&path, &bytes[..2 * 4096]).unwrap();
    let before = snapshot(&path);

    let err = Store::open(&path).unwrap_err();
    assert!(matches!(err, StoreError::Damaged { .. }), "{err}");
    assert!(err.to_string().contains("backup"), "{err}");
    assert_refused_untouched(&path, &before);
}

#[test]
fn a_database_with_garbled_pages_is_refused_untouched() {
    let dir = TempDir::new().unwrap();
    let path = db_path(&dir);
    ours_with_a_link(&path);
    let mut bytes = std::fs::read(&path).unwrap();
    // Keep page 1 (the header and the schema), scribble over everything after it.
    for (i, b) in bytes.iter_mut().enumerate().skip(4096) {
        *b = (i % 251) as u8;
    }
    std::fs::write(&path, &bytes).unwrap();
    let before = snapshot(&path);

    let err = Store::open(&path).unwrap_err();
    assert!(matches!(err, StoreError::Damaged { .. }), "{err}");
    assert_refused_untouched(&path, &before);
}

#[test]
fn open_read_only_writes_nothing() {
    let dir = TempDir::new().unwrap();
    let path = db_path(&dir);
    ours_with_a_link(&path);
    let before = snapshot(&path);
    {
        let mut store = Store::open_read_only(&path).unwrap();
        assert!(store.is_read_only());
        assert_eq!(links::active(store.conn()).unwrap().len(), 1);
        let err = store.transaction().unwrap_err();
        assert!(matches!(err, StoreError::ReadOnly { .. }), "{err}");
        let write = links::insert(
            store.conn(),
            &new_link(2, "task-2"),
            at("2026-01-02T00:00:00Z"),
        );
        assert!(write.is_err(), "a read-only store refuses writes");
    }
    assert_eq!(snapshot(&path), before);
}

#[test]
fn a_path_with_spaces_and_uri_characters_opens_both_ways() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("my state #1?x=y%20.sqlite");
    ours_with_a_link(&path);
    let store = Store::open_read_only(&path).unwrap();
    assert!(links::by_ticket(store.conn(), 1).unwrap().is_some());
    drop(store);
    let store = Store::open(&path).unwrap();
    assert!(links::by_ticket(store.conn(), 1).unwrap().is_some());
}

#[test]
fn open_read_only_sees_what_a_running_daemon_committed() {
    let dir = TempDir::new().unwrap();
    let path = db_path(&dir);
    let daemon = Store::open(&path).unwrap();
    links::insert(
        daemon.conn(),
        &new_link(5, "task-5"),
        at("2026-01-01T00:00:00Z"),
    )
    .unwrap();
    let reader = Store::open_read_only(&path).unwrap();
    assert!(links::by_ticket(reader.conn(), 5).unwrap().is_some());
    // An edit beside the daemon (`resolve`) sees through the WAL too.
    let editor = Store::open_for_edit(&path).unwrap();
    assert!(links::by_ticket(editor.conn(), 5).unwrap().is_some());
    // A second writer is refused, naming the file and the process that holds it.
    let err = Store::open(&path).unwrap_err();
    assert!(matches!(err, StoreError::Locked { .. }), "{err}");
    let text = err.to_string();
    assert!(text.contains(&path.display().to_string()), "{text}");
    assert!(
        text.contains(&format!("pid {}", std::process::id())),
        "{text}"
    );
    drop(daemon);
    assert!(Store::open(&path).is_ok(), "the lock goes with the store");
}

#[test]
fn open_read_only_explains_a_missing_file_and_creates_none() {
    let dir = TempDir::new().unwrap();
    let path = db_path(&dir);
    let err = Store::open_read_only(&path).unwrap_err();
    assert!(matches!(err, StoreError::Missing { .. }), "{err}");
    assert!(err.to_string().contains("trengo-sync run"), "{err}");
    assert!(!path.exists());
}

#[test]
fn open_read_only_asks_for_an_upgrade_of_an_older_schema() {
    let dir = TempDir::new().unwrap();
    let path = db_path(&dir);
    let raw = Connection::open(&path).unwrap();
    raw.pragma_update(None, "application_id", APPLICATION_ID)
        .unwrap();
    drop(raw);
    let before = snapshot(&path);
    let err = Store::open_read_only(&path).unwrap_err();
    assert!(
        matches!(err, StoreError::NeedsUpgrade { found: 0, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("trengo-sync check"), "{err}");
    assert_eq!(snapshot(&path), before);
    // The read-write open is the one that upgrades it.
    let store = Store::open(&path).unwrap();
    assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
}

#[test]
fn identity_binds_once_and_refuses_another_account() {
    let dir = TempDir::new().unwrap();
    let path = db_path(&dir);
    let acme = Identity {
        trengo_account: "acme".into(),
        ghl_location: "loc-acme".into(),
    };
    {
        let store = Store::open(&path).unwrap();
        identity::bind(store.conn(), &acme, at("2026-01-01T00:00:00Z")).unwrap();
    }
    let store = Store::open(&path).unwrap();
    let bound = identity::bind(store.conn(), &acme, at("2026-03-01T00:00:00Z")).unwrap();
    assert_eq!(bound.bound_at, at("2026-01-01T00:00:00Z"));
    let other = Identity {
        trengo_account: "globex".into(),
        ghl_location: "loc-globex".into(),
    };
    let err = identity::bind(store.conn(), &other, at("2026-03-01T00:00:00Z")).unwrap_err();
    assert!(matches!(err, StoreError::IdentityMismatch { .. }), "{err}");
    let text = err.to_string();
    assert!(text.contains("acme") && text.contains("globex"), "{text}");
    assert_eq!(identity::get(store.conn()).unwrap().unwrap().identity, acme);
}

#[test]
fn intents_open_finish_and_abandon() {
    let store = Store::open_in_memory().unwrap();
    let conn = store.conn();
    let t0 = at("2026-01-01T00:00:00Z");
    let key = "https://acme.trengo.com/tickets/1";
    let opened = intents::open(conn, key, "create_task", None, &json!({"ticket": 1}), t0).unwrap();
    assert_eq!(opened.state, IntentState::Open);
    intents::open(conn, "note:trengo:77", "create_note", None, &json!({}), t0).unwrap();
    assert_eq!(intents::open_all(conn).unwrap().len(), 2);

    let t1 = at("2026-01-01T00:00:01Z");
    let done = intents::finish(conn, key, &json!({"task_id": "task-9"}), t1).unwrap();
    assert_eq!(done.state, IntentState::Done);
    assert_eq!(done.result, Some(json!({"task_id": "task-9"})));
    assert_eq!(done.settled_at, Some(t1));

    let gone = intents::abandon(conn, "note:trengo:77", "ticket left scope", t1).unwrap();
    assert_eq!(gone.state, IntentState::Abandoned);
    assert_eq!(gone.result, Some(json!("ticket left scope")));
    assert!(intents::open_all(conn).unwrap().is_empty());
    assert_eq!(
        intents::get(conn, key).unwrap().unwrap().payload,
        json!({"ticket": 1})
    );
}

#[test]
fn a_duplicate_intent_key_is_refused() {
    let store = Store::open_in_memory().unwrap();
    let conn = store.conn();
    let t0 = at("2026-01-01T00:00:00Z");
    intents::open(conn, "k-1", "create_ticket", None, &json!({}), t0).unwrap();
    intents::finish(conn, "k-1", &json!({"ticket_id": 3}), t0).unwrap();
    let err = intents::open(conn, "k-1", "create_ticket", None, &json!({}), t0).unwrap_err();
    assert!(
        matches!(err, StoreError::DuplicateIntent { ref key } if key == "k-1"),
        "{err}"
    );
}

#[test]
fn a_base_and_the_intent_end_commit_together_or_not_at_all() {
    let dir = TempDir::new().unwrap();
    let path = db_path(&dir);
    let mut store = Store::open(&path).unwrap();
    let t0 = at("2026-01-01T00:00:00Z");
    let link = links::insert(store.conn(), &new_link(1, "task-1"), t0).unwrap();
    intents::open(
        store.conn(),
        "k",
        "create_task",
        Some(link.id),
        &json!({}),
        t0,
    )
    .unwrap();
    {
        let tx = store.transaction().unwrap();
        bases::put(&tx, link.id, BaseName::Status, &json!("OPEN"), t0).unwrap();
        intents::finish(&tx, "k", &json!({}), t0).unwrap();
        // Dropped without commit: a crash here.
    }
    assert!(
        bases::get(store.conn(), link.id, BaseName::Status)
            .unwrap()
            .is_none()
    );
    assert_eq!(intents::open_all(store.conn()).unwrap().len(), 1);

    let tx = store.transaction().unwrap();
    bases::put(&tx, link.id, BaseName::Status, &json!("OPEN"), t0).unwrap();
    intents::finish(&tx, "k", &json!({}), t0).unwrap();
    tx.commit().unwrap();
    drop(store);
    let store = Store::open(&path).unwrap();
    assert!(
        bases::get(store.conn(), link.id, BaseName::Status)
            .unwrap()
            .is_some()
    );
    assert!(intents::open_all(store.conn()).unwrap().is_empty());
}

#[test]
fn retry_backoff_grows_and_caps() {
    let store = Store::open_in_memory().unwrap();
    let conn = store.conn();
    let policy = RetryPolicy {
        base: Duration::from_secs(60),
        max: Duration::from_secs(600),
        attempts: 12,
    };
    let t0 = at("2026-01-01T00:00:00Z");
    let mut now = t0;
    let mut waits = Vec::new();
    for _ in 0..6 {
        let retry = retries::fail(conn, "ticket:7", "Trengo answered 502", now, &policy).unwrap();
        waits.push((retry.next_at - now).num_seconds());
        now = retry.next_at;
    }
    assert_eq!(waits, [60, 120, 240, 480, 600, 600]);
    let retry = retries::get(conn, "ticket:7").unwrap().unwrap();
    assert_eq!(retry.attempts, 6);
    assert_eq!(retry.first_failed_at, t0);
    assert_eq!(retry.reason, "Trengo answered 502");

    retries::fail(conn, "task:abc", "GHL answered 422", t0, &policy).unwrap();
    let due_now: Vec<String> = retries::due(conn, at("2026-01-01T00:01:00Z"))
        .unwrap()
        .into_iter()
        .map(|r| r.item)
        .collect();
    assert_eq!(due_now, ["task:abc"]);
    let stuck: Vec<String> = retries::stuck(conn, now, Duration::from_secs(30 * 60))
        .unwrap()
        .into_iter()
        .map(|r| r.item)
        .collect();
    assert_eq!(stuck, ["task:abc", "ticket:7"]);

    assert!(retries::clear(conn, "ticket:7").unwrap());
    assert!(!retries::clear(conn, "ticket:7").unwrap());
    assert_eq!(retries::all(conn).unwrap().len(), 1);
}

#[tokio::test]
async fn store_handle_call_works_from_a_tokio_test() {
    let dir = TempDir::new().unwrap();
    let handle = StoreHandle::new(Store::open(db_path(&dir)).unwrap());
    let t0 = at("2026-01-01T00:00:00Z");
    let link = handle
        .call(move |store| links::insert(store.conn(), &new_link(3, "task-3"), t0))
        .await
        .unwrap();
    let other = handle.clone();
    let found = other
        .call(move |store| {
            let tx = store.transaction()?;
            let found = links::get(&tx, link.id)?;
            tx.commit()?;
            Ok(found)
        })
        .await
        .unwrap();
    assert_eq!(found, Some(link));
    let err = handle
        .call(move |store| links::insert(store.conn(), &new_link(3, "task-3"), t0))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::DuplicateLink { .. }), "{err}");
}

#[test]
fn oauth_debug_shows_no_token() {
    let tokens = StoredOAuth {
        refresh_token: SecretString::from("rt-very-secret-1".to_owned()),
        access_token: Some(SecretString::from("at-very-secret-2".to_owned())),
        access_expires_at: Some(at("2026-01-01T00:00:00Z")),
    };
    let shown = format!("{tokens:?} {tokens:#?}");
    assert!(!shown.contains("very-secret"), "{shown}");
    assert!(shown.contains("redacted"), "{shown}");

    let store = Store::open_in_memory().unwrap();
    trengo_sync::store::oauth::save(store.conn(), &tokens, at("2026-01-01T00:00:00Z")).unwrap();
    let loaded = trengo_sync::store::oauth::load(store.conn())
        .unwrap()
        .unwrap();
    assert!(!format!("{loaded:?}").contains("very-secret"));
}

/// A write slipped into a read of the store (detection, loading) fails in SQLite, whatever
/// the closure does with the connection; the executor's handle writes as before.
#[tokio::test]
async fn nothing_but_the_executor_writes_the_store_during_a_pass() {
    let dir = tempfile::tempdir().unwrap();
    let handle = StoreHandle::new(Store::open(db_path(&dir)).unwrap());
    let reader = handle.reader();
    let stray = reader
        .call(|r| {
            r.conn().execute(
                "INSERT INTO cursors (stream, value, updated_at) VALUES ('x', 'y', 'z')",
                [],
            )?;
            Ok(())
        })
        .await;
    assert!(
        matches!(&stray, Err(e) if e.to_string().contains("readonly")),
        "a write through the reader was not refused: {stray:?}"
    );
    // The executor's handle writes, and the reader reads what it wrote.
    handle
        .call(|s| {
            trengo_sync::store::cursors::put(
                s.conn(),
                "trengo.updated_at",
                "v",
                at("2026-01-01T00:00:00Z"),
            )
        })
        .await
        .unwrap();
    let read = reader
        .call(|r| trengo_sync::store::cursors::get(r.conn(), "trengo.updated_at"))
        .await
        .unwrap();
    assert_eq!(read.as_deref(), Some("v"));
}

#[tokio::test]
async fn a_read_that_fails_or_panics_leaves_the_store_writable() {
    let dir = tempfile::tempdir().unwrap();
    let handle = StoreHandle::new(Store::open(db_path(&dir)).unwrap());
    let reader = handle.reader();
    let failed: Result<(), StoreError> = reader
        .call(|r| {
            r.conn().execute("DELETE FROM cursors", [])?;
            Ok(())
        })
        .await;
    assert!(failed.is_err());
    let panicked: Result<(), StoreError> = reader.call(|_| panic!("a reader's bug")).await;
    assert!(matches!(panicked, Err(StoreError::Panicked(_))));
    handle
        .call(|s| {
            let tx = s.transaction()?;
            trengo_sync::store::cursors::put(
                &tx,
                "ghl.date_updated",
                "v",
                at("2026-01-01T00:00:00Z"),
            )?;
            tx.commit()?;
            Ok(())
        })
        .await
        .expect("the store stays writable after a reader's failure and panic");
}

#[tokio::test]
async fn plans_in_memory_copy_refuses_writes_through_its_reader_too() {
    let dir = tempfile::tempdir().unwrap();
    ours_with_a_link(&db_path(&dir));
    let handle = StoreHandle::new(Store::open_snapshot(db_path(&dir)).unwrap());
    let stray = handle
        .reader()
        .call(|r| {
            r.conn().execute("DELETE FROM links", [])?;
            Ok(())
        })
        .await;
    assert!(stray.is_err(), "the copy's reader wrote");
    let links = handle
        .reader()
        .call(|r| links::active(r.conn()))
        .await
        .unwrap();
    assert_eq!(links.len(), 1);
}

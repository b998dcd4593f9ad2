//! Bad input from every direction: API answers that are garbage or the wrong shape, fuzzed
//! webhooks, a corpus of wrong configuration files, and store files that are damaged, foreign,
//! newer or not SQLite at all. Each must end in a clear refusal or an item error, never a panic,
//! and must change nothing it should not.

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use support::reliability::{OneWayEdits, long_mode, settled_links};
use support::{links, total_writes};
use trengo_sync::config::types::Secret;
use trengo_sync::daemon::run::Daemon;
use trengo_sync::daemon::webhooks::sign_trengo;
use trengo_sync::sim::faults::Faults;
use trengo_sync::store::Store;
use trengo_sync::sync::engine::{PassKind, PassOptions};

fn command(args: &[&str]) -> std::process::Output {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_trengo-sync"));
    cmd.args(args).env_remove("RUST_LOG");
    for (k, _) in std::env::vars() {
        if k.starts_with("TRENGO_SYNC__") {
            cmd.env_remove(k);
        }
    }
    cmd.output().unwrap()
}

#[test]
fn every_bad_config_in_the_corpus_exits_78_naming_its_key() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/bad-configs");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&corpus)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 20, "the corpus shrank: {files:?}");
    let mut wrong = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        // First line: `# wrong key: <key> (<why>)`.
        let key = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# wrong key: "))
            .and_then(|l| l.split_whitespace().next())
            .unwrap_or_else(|| panic!("{} lacks its `# wrong key:` line", file.display()));
        let out = command(&["check", "--config", file.to_str().unwrap()]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        if out.status.code() != Some(78) || !stderr.contains(key) {
            wrong.push(format!(
                "{}: exit {:?}, expected 78 and `{key}` in:\n{stderr}",
                file.display(),
                out.status.code()
            ));
        }
        assert!(!stderr.contains("panicked"), "{}: {stderr}", file.display());
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// A configuration whose APIs are unreachable (port 9 on loopback refuses): a store refusal
/// must come before any request.
fn offline_config(dir: &Path, store: &Path) -> PathBuf {
    let path = dir.join("config.toml");
    std::fs::write(
        &path,
        format!(
            r#"[trengo]
token = "trengo-test-token"
base_url = "http://127.0.0.1:9/api/v2"
[ghl]
location_id = "loc-1"
token = "pit-test-token"
base_url = "http://127.0.0.1:9"
[store]
path = "{}"
[http]
listen = "127.0.0.1:0"
"#,
            store.display()
        ),
    )
    .unwrap();
    path
}

/// A real, migrated store file with some rows, closed (its WAL folded back in).
fn real_store(path: &Path) -> Vec<u8> {
    let store = Store::open(path).unwrap();
    store
        .conn()
        .execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
        .unwrap();
    drop(store);
    std::fs::read(path).unwrap()
}

#[test]
fn damaged_foreign_newer_or_non_sqlite_store_is_refused_by_name_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("state.sqlite");
    let config = offline_config(dir.path(), &store);
    let good = real_store(&dir.path().join("template.sqlite"));
    assert!(
        good.len() >= 8192,
        "the template store is too small to damage"
    );

    let mut truncated = good.clone();
    truncated.truncate(good.len() / 2 + 100);
    let mut scribbled = good.clone();
    let mut rng = StdRng::seed_from_u64(77);
    // Past the 100-byte header, through the schema page and beyond.
    for b in &mut scribbled[200..good.len() - 100] {
        if rng.gen_bool(0.3) {
            *b = rng.r#gen();
        }
    }
    let foreign = {
        let path = dir.path().join("foreign.sqlite");
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute_batch("CREATE TABLE photos(id INTEGER PRIMARY KEY, path TEXT); INSERT INTO photos VALUES (1, 'a.jpg');")
            .unwrap();
        drop(c);
        std::fs::read(&path).unwrap()
    };
    let newer = {
        let path = dir.path().join("newer.sqlite");
        real_store(&path);
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute_batch("PRAGMA journal_mode=DELETE; PRAGMA user_version = 9999;")
            .unwrap();
        drop(c);
        std::fs::read(&path).unwrap()
    };
    let cases: [(&str, Vec<u8>, &str); 5] = [
        ("truncated", truncated, "damaged"),
        ("scribbled over", scribbled, "damaged"),
        ("another program's", foreign, "another program"),
        ("newer", newer, "newer"),
        (
            "not SQLite",
            b"name,email\nAda,ada@example.com\n".repeat(200),
            "not an SQLite",
        ),
    ];
    for (what, bytes, says) in cases {
        for args in [&["once"][..], &["run"][..], &["status"][..]] {
            std::fs::write(&store, &bytes).unwrap();
            let mut argv = args.to_vec();
            argv.extend(["--config", config.to_str().unwrap()]);
            let out = command(&argv);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(
                !out.status.success() && out.status.code().is_some(),
                "{what} store, {args:?}: exit {:?}\n{stderr}",
                out.status.code()
            );
            assert!(
                stderr.contains(store.to_str().unwrap())
                    && stderr.to_lowercase().contains(&says.to_lowercase()),
                "{what} store, {args:?}: the error should name the file and say `{says}`:\n{stderr}"
            );
            assert!(!stderr.contains("panicked"), "{what}, {args:?}: {stderr}");
            assert_eq!(
                std::fs::read(&store).unwrap(),
                bytes,
                "{what} store, {args:?}: the file was modified"
            );
            for side in ["-wal", "-shm", "-journal"] {
                let side_file = PathBuf::from(format!("{}{side}", store.display()));
                assert!(!side_file.exists(), "{what}, {args:?}: {side} was left");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fuzzed_webhooks_get_4xx_and_change_nothing() {
    const SECRET: &str = "whsec-reliability-test";
    let world = support::world(41, 10, 5).await;
    let dir = tempfile::tempdir().unwrap();
    let (mut config, listener) = support::daemon_config(&world, &dir).await;
    let addr = listener.local_addr().unwrap();
    config.webhooks.enabled = true;
    config.webhooks.ghl_public_key = world.ghl_public_key();
    config
        .webhooks
        .trengo_secrets
        .insert("TICKET_CLOSED".into(), Secret::new(SECRET));
    let daemon = Daemon::new(config, listener).spawn();
    let linked = settled_links(
        &world,
        &dir.path().join("state.sqlite"),
        Duration::from_secs(6),
    )
    .await;
    let writes = total_writes(&world);

    let http = reqwest::Client::new();
    let base = format!("http://{addr}");
    let now = chrono::Utc::now().timestamp();
    let mut rng = StdRng::seed_from_u64(4242);
    let content_types = [
        "application/json",
        "application/x-www-form-urlencoded",
        "text/plain",
        "multipart/form-data; boundary=x",
        "application/octet-stream",
        "",
    ];
    let mut bodies: Vec<Vec<u8>> = (0..if long_mode() { 400 } else { 60 })
        .map(|_| {
            let n = rng.gen_range(0..2048);
            (0..n).map(|_| rng.r#gen::<u8>()).collect()
        })
        .collect();
    bodies.extend(
        [
            "",
            "null",
            "[]",
            "\"TaskComplete\"",
            "{}",
            "{\"type\": 5, \"locationId\": []}",
            "{\"type\": \"TaskComplete\", \"contactId\": {\"a\": 1}, \"locationId\": null}",
            "ticket_id=abc",
            "ticket_id=&ticket_id=",
            "ticket_id[]=1",
            "{\"ticket_id\": null}",
            "{\"ticket_id\": \"\u{0}\"}",
            "%%%%===&&&",
        ]
        .map(|s| s.as_bytes().to_vec()),
    );
    // A huge body, well past any sane webhook size.
    bodies.push(vec![b'{'; 4 * 1024 * 1024]);
    let mut answers = std::collections::BTreeMap::<u16, usize>::new();
    for (n, body) in bodies.iter().enumerate() {
        let content_type = content_types[n % content_types.len()];
        let trengo_sig = sign_trengo(SECRET, now, body);
        let ghl_sig = world.ghl().outbox().sign(body);
        let requests = [
            ("/webhooks/trengo/TICKET_CLOSED", None),
            (
                "/webhooks/trengo/TICKET_CLOSED",
                Some(("Trengo-Signature", trengo_sig.as_str())),
            ),
            (
                "/webhooks/trengo/TICKET_CLOSED",
                Some(("Trengo-Signature", "1;zz")),
            ),
            (
                "/webhooks/trengo/NO_SUCH_EVENT",
                Some(("Trengo-Signature", trengo_sig.as_str())),
            ),
            ("/webhooks/ghl", None),
            ("/webhooks/ghl", Some(("x-ghl-signature", ghl_sig.as_str()))),
            ("/webhooks/ghl", Some(("x-ghl-signature", "@@not base64@@"))),
        ];
        for (path, signature) in requests {
            let mut request = http.post(format!("{base}{path}")).body(body.clone());
            if !content_type.is_empty() {
                request = request.header("content-type", content_type);
            }
            if let Some((name, value)) = signature {
                request = request.header(name, value);
            }
            let status = match request.send().await {
                Ok(response) => response.status(),
                // The server may close on a body it refuses to read in full: not a 5xx.
                Err(e) if body.len() > 1024 * 1024 => {
                    eprintln!("huge body to {path}: {e}");
                    continue;
                }
                Err(e) => panic!("{path}: the daemon did not answer: {e}"),
            };
            *answers.entry(status.as_u16()).or_default() += 1;
            assert!(
                status.is_client_error(),
                "{path} with {} bytes ({content_type}), signature {:?}: {status}",
                body.len(),
                signature.map(|s| s.0)
            );
        }
    }
    eprintln!("webhook fuzz answers by status: {answers:?}");

    // Nothing changed: no write reached either side, no link appeared or went, and the daemon
    // is alive and healthy.
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(
        total_writes(&world),
        writes,
        "a fuzzed webhook caused a write"
    );
    assert_eq!(links(&dir), linked);
    assert!(!daemon.is_finished(), "the daemon stopped");
    let health = http.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    daemon.stop().await.unwrap();
    world.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_and_wrong_shaped_api_answers_are_item_errors_and_converge_after() {
    let seed = std::env::var("TRENGO_SYNC_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(43);
    eprintln!("seed {seed} (TRENGO_SYNC_SEED replays it)");
    let world = support::world(seed, 12, 6).await;
    let dir = tempfile::tempdir().unwrap();
    let engine = std::sync::Arc::new(support::engine(&world, &dir).await);
    support::first_pass_and_converge(&engine).await.unwrap();
    let linked = links(&dir);
    let faults = Faults {
        wrong_shape_rate: 0.3,
        malformed_rate: 0.1,
        ..Faults::default()
    };
    world.trengo().set_faults(faults.clone());
    world.ghl().set_faults(faults);
    let mut rng = StdRng::seed_from_u64(seed);
    let passes = if long_mode() { 60 } else { 12 };
    let (mut ok, mut failed_items, mut failed_passes) = (0, 0, 0);
    let mut edits = OneWayEdits::default();
    for n in 0..passes {
        for _ in 0..3 {
            edits.make(&world, &linked, &mut rng);
        }
        let kind = if n % 3 == 0 {
            PassKind::Reconcile
        } else {
            PassKind::Poll
        };
        let pass_engine = engine.clone();
        // In a task of its own, so that a panic shows as a JoinError rather than ending the test.
        let outcome =
            tokio::spawn(async move { pass_engine.pass(kind, PassOptions::default()).await }).await;
        match outcome {
            Err(join) => panic!("pass {n} panicked: {join}"),
            Ok(Ok(report)) => {
                ok += 1;
                failed_items += report.failed.len();
            }
            // A garbled answer to a listing fails the pass with a typed, explained error;
            // the next pass starts from the same cursors.
            Ok(Err(e)) => {
                failed_passes += 1;
                let text = e.to_string();
                if failed_passes == 1 {
                    eprintln!("a refused pass says: {text}");
                }
                assert!(!text.is_empty() && !text.contains("panicked"), "{text}");
            }
        }
    }
    eprintln!(
        "under garbage: {ok} passes ran ({failed_items} item errors), {failed_passes} passes refused"
    );
    assert!(
        failed_items + failed_passes > 0,
        "no fault reached the engine"
    );

    world.trengo().set_faults(Faults::default());
    world.ghl().set_faults(Faults::default());
    // Settled means no write *and* no failing item: an item failing on every pass writes
    // nothing either, and would look quiet.
    support::settled::until_settled(&engine, 8).await;
    // A garbled answer never takes a link out of scope (the edits here never do).
    assert_eq!(links(&dir), linked, "links changed under garbage");
    let sides = support::reliability::read_sides(&engine, &linked).await;
    assert!(
        sides.disagreements().is_empty(),
        "{:#?}",
        sides.disagreements()
    );
    let mut lost = edits.lost_fields(&sides);
    lost.extend(edits.lost_notes(&world, &engine).await);
    assert!(lost.is_empty(), "lost updates: {lost:#?}");
    let (_, duplicates) = support::audit(&world, &dir, &engine).await;
    assert!(duplicates.is_empty(), "duplicates: {duplicates:#?}");
    world.shutdown().await;
}

/// Runs a poll and a reconcile pass; each must end in item errors or a refused pass, never a
/// panic. Returns the failures seen (failed items plus refused passes).
async fn passes_under_faults(engine: &std::sync::Arc<trengo_sync::sync::engine::Engine>) -> usize {
    let mut failures = 0;
    for kind in [PassKind::Poll, PassKind::Reconcile] {
        let pass_engine = engine.clone();
        let outcome =
            tokio::spawn(async move { pass_engine.pass(kind, PassOptions::default()).await }).await;
        match outcome {
            Err(join) => panic!("a pass panicked: {join}"),
            Ok(Ok(report)) => failures += report.failed.len(),
            Ok(Err(e)) => {
                assert!(!e.to_string().is_empty());
                failures += 1;
            }
        }
    }
    failures
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_missing_labels_tags_tasks_or_notes_fail_items_and_change_nothing() {
    let world = support::world(44, 12, 6).await;
    let dir = tempfile::tempdir().unwrap();
    let engine = std::sync::Arc::new(support::engine(&world, &dir).await);
    support::first_pass_and_converge(&engine).await.unwrap();
    support::settled::until_settled(&engine, 4).await;
    let linked = links(&dir);
    let before = support::reliability::read_sides(&engine, &linked).await;
    assert!(
        before.tags.values().any(|(labels, _)| !labels.is_empty()),
        "the world should carry managed labels for this test to mean anything"
    );
    // Each key, dropped from every answer of the API that sends it, is a field the sync
    // decides on: a ticket's labels (and a label's name), a contact's tags, a contact's task
    // list, its note list. Read as "none", each would unlink links or delete tags.
    for (side, key) in [
        ("trengo", "labels"),
        ("trengo", "name"),
        ("ghl", "tags"),
        ("ghl", "tasks"),
        ("ghl", "notes"),
    ] {
        let faults = Faults {
            strip_keys: vec![key.to_string()],
            ..Faults::default()
        };
        match side {
            "trengo" => world.trengo().set_faults(faults),
            _ => world.ghl().set_faults(faults),
        }
        let writes = total_writes(&world);
        let failures = passes_under_faults(&engine).await;
        world.trengo().set_faults(Faults::default());
        world.ghl().set_faults(Faults::default());
        assert_eq!(
            links(&dir),
            linked,
            "{side} answers without `{key}` changed the links"
        );
        assert_eq!(
            total_writes(&world),
            writes,
            "{side} answers without `{key}` caused writes"
        );
        assert!(
            failures > 0,
            "{side} answers without `{key}` failed nothing"
        );

        support::settled::until_settled(&engine, 4).await;
        assert_eq!(links(&dir), linked, "after `{key}`: the links changed");
        let after = support::reliability::read_sides(&engine, &linked).await;
        assert_eq!(after, before, "after `{key}`: the two sides changed");
    }
    world.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_contact_whose_group_failed_to_load_is_read_again_by_the_next_poll() {
    use support::reliability::{Edit, MANAGED, apply};
    // A search index without lag, so that the next GHL poll sees the edit at once.
    let mut options = trengo_sync::sim::world::WorldOptions::unpaced(45, 12, 6);
    options.ghl.index_lag = Duration::ZERO;
    let world = support::start_world(options).await;
    let dir = tempfile::tempdir().unwrap();
    let engine = support::engine(&world, &dir).await;
    support::first_pass_and_converge(&engine).await.unwrap();
    // Polls record what they have seen, so that only the edit below is new.
    support::once(&engine).await;
    let linked = links(&dir);
    let sides = support::reliability::read_sides(&engine, &linked).await;
    // A linked contact lacking a managed tag gets it in GHL.
    let (i, k) = linked
        .iter()
        .enumerate()
        .find_map(|(i, l)| {
            let tags = &sides.tags[&l.ghl_contact_id].1;
            (0..MANAGED.len())
                .find(|k| !tags.contains(MANAGED[*k]))
                .map(|k| (i, k))
        })
        .expect("a linked contact without some managed tag");
    apply(&world, &linked, &Edit::AddTag(i, k));

    // The GHL poll sees the change, but the contact's tickets cannot be read: its group fails.
    world.trengo().set_faults(Faults {
        strip_keys: vec!["labels".into()],
        ..Faults::default()
    });
    let report = engine
        .pass(PassKind::GhlPoll, PassOptions::default())
        .await
        .unwrap();
    let contact = trengo_sync::sync::ItemKey::Contact(linked[i].ghl_contact_id.clone());
    assert!(
        report.failed.iter().any(|(item, _)| *item == contact),
        "{contact} should have failed: {:?}",
        report.failed
    );
    world.trengo().set_faults(Faults::default());

    // The next poll must not take the contact as seen: the tag crosses now, not at the next
    // reconcile.
    engine
        .pass(PassKind::GhlPoll, PassOptions::default())
        .await
        .unwrap();
    let after = support::reliability::read_sides(&engine, &linked).await;
    let (labels, tags) = &after.tags[&linked[i].ghl_contact_id];
    assert!(
        labels.contains(MANAGED[k]) && tags.contains(MANAGED[k]),
        "the tag never crossed: labels {labels:?}, tags {tags:?}"
    );
    world.shutdown().await;
}

/// Contact field values GHL answers in shapes the field cannot hold (an object where a tier
/// belongs, a word in a number field, an option the field does not offer), with the fakes
/// reshaping answers besides: each is an item error naming the field and the value, nothing
/// is written from it, the pass goes on for the other pairs, and mended values cross after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contact_field_values_of_the_wrong_shape_are_item_errors_naming_field_and_value() {
    use trengo_sync::sim::world::WorldOptions;
    let mut options = WorldOptions::unpaced(61, 10, 5);
    options.ghl.index_lag = Duration::from_millis(300);
    let world = support::start_world(options).await;
    let dir = tempfile::tempdir().unwrap();
    let extra = "\n[contacts]\nenabled = true\n\n[[contacts.fields]]\nghl = \"contact.subscription_tier\"\ntrengo = \"Subscription tier\"\n\n[[contacts.fields]]\nghl = \"contact.seats\"\ntrengo = \"Customer number\"\ndirection = \"ghl_to_trengo\"\n";
    let engine = support::rules::engine_with(&world, &dir, &[], extra).await;
    support::rules::settle(&engine).await;
    engine
        .pass(PassKind::Cycle, PassOptions::default())
        .await
        .unwrap();
    let store = Store::open_read_only(support::store_path(&dir)).unwrap();
    let pairs: Vec<(String, i64)> = store
        .conn()
        .prepare("SELECT ghl_contact_id, trengo_contact_id FROM contact_pairs ORDER BY id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(pairs.len() >= 2, "{pairs:?}");
    let ghl = world.ghl();
    let tier = ghl.custom_field_id("contact.subscription_tier").unwrap();
    let seats = ghl.custom_field_id("contact.seats").unwrap();
    // Garbage stored behind the API's back, as another integration might leave it.
    let (bad, good) = (pairs[0].0.clone(), pairs[1].0.clone());
    let set = |contact: &str, field: &str, value: serde_json::Value| {
        ghl.set_raw_custom_field(contact, field, value).unwrap()
    };
    // Another integration wrote these behind the API's back; the index lag passes first.
    let lag = || tokio::time::sleep(Duration::from_millis(700));
    set(&bad, &tier, serde_json::json!({"weird": true}));
    set(&bad, &seats, serde_json::json!("lots"));
    set(&good, &tier, serde_json::json!("Enterprise"));
    lag().await;
    let trengo_before = total_writes(&world);
    let report = engine
        .pass(PassKind::Cycle, PassOptions::default())
        .await
        .unwrap();
    let failed: Vec<&String> = report.failed.iter().map(|(_, why)| why).collect();
    assert!(
        failed
            .iter()
            .any(|w| w.contains("subscription_tier") && w.contains("weird")),
        "{failed:?}"
    );
    assert!(failed.iter().any(|w| w.contains("`lots`")), "{failed:?}");
    assert!(
        total_writes(&world) > trengo_before,
        "the good pair still crossed"
    );
    // Mended in GHL, the bad pair crosses too, and the failure ends.
    set(&bad, &tier, serde_json::json!("Pro"));
    set(&bad, &seats, serde_json::json!(3));
    lag().await;
    let report = engine
        .pass(PassKind::Cycle, PassOptions::default())
        .await
        .unwrap();
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    let after = engine
        .pass(PassKind::Cycle, PassOptions::default())
        .await
        .unwrap();
    assert_eq!(after.writes.trengo + after.writes.ghl, 0);
}

//! A flood of webhook hints for items that cannot succeed (issue #13 item 2): 1,200 validly
//! signed GHL events for contacts that do not exist, while a user closes a linked ticket; then
//! items whose reads keep failing.
//!
//! The hint queue takes one entry per item up to its bound and refuses the rest with 503
//! (counted); the polls keep their turn between hint batches, so the close crosses. A ghost
//! contact answers 404: gone, an item outcome (issue #13 item 1), read once and dropped, no
//! retry row. Contacts whose reads keep failing (an answer without the key the engine reads)
//! are parked after `limits.item_attempts` failures and shown as stuck, and parked items are
//! read no more, so later passes stay small; `trengo-sync retry --all` queues them again.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::reliability::settled_links;
use support::{daemon_config, store_path, wait_for};
use trengo_sync::config::Span;
use trengo_sync::daemon::hints::HINT_QUEUE_BOUND;
use trengo_sync::daemon::run::Daemon;
use trengo_sync::sim::faults::Faults;
use trengo_sync::store::{Store, retries};

const GHOSTS: usize = 1_200;

async fn status(http: &reqwest::Client, listen: std::net::SocketAddr) -> Value {
    http.get(format!("http://{listen}/status"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn runs_of(status: &Value, job: &str) -> u64 {
    status["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["name"] == job)
        .and_then(|j| j["runs"].as_u64())
        .unwrap_or(0)
}

fn ghost_reads(world: &trengo_sync::sim::world::SimWorld) -> u64 {
    world
        .ghl()
        .counter_snapshot()
        .count("GET /contacts/{contactId}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_hints_for_missing_contacts_is_bounded_parked_and_never_starves_the_polls() {
    let world = support::world(47, 6, 3).await;
    let dir = tempfile::tempdir().unwrap();
    let (mut config, listener) = daemon_config(&world, &dir).await;
    let listen = listener.local_addr().unwrap();
    config.webhooks.enabled = true;
    config.webhooks.ghl_public_key = world.ghl_public_key();
    config.schedule.trengo_poll = "*/2 * * * * *".parse().unwrap();
    config.schedule.ghl_poll = "1/2 * * * * *".parse().unwrap();
    config.limits.item_attempts = 2;
    config.limits.retry_base = Span::secs(1);
    config.limits.retry_max = Span::secs(2);
    let daemon = Daemon::new(config, listener).spawn();
    let store = store_path(&dir);
    let links = settled_links(&world, &store, Duration::from_secs(3)).await;
    let link = links[0].clone();

    // Each GHL read takes a little while, so the hint batches take longer than a poll period.
    world.ghl().set_faults(Faults {
        latency_ms: 20,
        ..Faults::default()
    });
    let http = reqwest::Client::new();
    let mut answers = std::collections::BTreeMap::<u16, usize>::new();
    for n in 0..GHOSTS {
        let code = tag_update(
            &http,
            listen,
            &world,
            &format!("ghost-{n}"),
            &format!("flood-{n}"),
        )
        .await;
        *answers.entry(code).or_default() += 1;
    }
    let accepted = answers.get(&202).copied().unwrap_or(0);
    let refused = answers.get(&503).copied().unwrap_or(0);
    assert_eq!(accepted + refused, GHOSTS, "{answers:?}");
    assert!(refused > 0, "past the bound hints are refused: {answers:?}");
    let after_flood = status(&http, listen).await;
    assert_eq!(after_flood["hint_queue"]["bound"], HINT_QUEUE_BOUND);
    assert_eq!(after_flood["hint_queue"]["dropped"], refused);

    // A user closes a linked ticket: the Trengo poll still gets its turn and carries it.
    world.trengo().close_ticket(link.ticket_id).unwrap();
    let reader_dir = tempfile::tempdir().unwrap();
    let reader = support::engine(&world, &reader_dir).await;
    let mut queued_at_cross = 0;
    wait_for("the close to cross", Duration::from_secs(180), async || {
        let now = status(&http, listen).await;
        let tasks = reader.ghl.tasks(&link.ghl_contact_id).await.unwrap();
        let crossed = tasks.iter().any(|t| t.id == link.task_id && t.completed);
        if crossed {
            queued_at_cross = now["hint_queue"]["queued"].as_u64().unwrap_or(0);
        }
        crossed
    })
    .await;
    assert!(
        queued_at_cross > 0,
        "the close crossed only once the hint queue was empty: the polls waited behind it"
    );

    // The queue drains; a poll that starts after that is behind the last hint batch (one
    // serial loop), so no more ghost rows appear.
    wait_for(
        "the hint queue to drain",
        Duration::from_secs(300),
        async || status(&http, listen).await["hint_queue"]["queued"] == 0,
    )
    .await;
    let runs = runs_of(&status(&http, listen).await, "trengo_poll");
    wait_for(
        "a Trengo poll after the last hint batch",
        Duration::from_secs(60),
        async || runs_of(&status(&http, listen).await, "trengo_poll") > runs,
    )
    .await;

    // Every ghost is gone: read once, dropped, no retry row, and read no more.
    let ghost_rows = |store: &std::path::Path| {
        let s = Store::open_read_only(store).unwrap();
        retries::all(s.conn())
            .unwrap()
            .into_iter()
            .filter(|r| r.item.contains("ghost-"))
            .count()
    };
    assert_eq!(ghost_rows(&store), 0, "a gone contact leaves no retry row");
    let more = contact_reads_over_three_polls(&http, listen, &world).await;
    assert!(
        more < 20,
        "gone contacts are read no more, but {more} contact reads followed"
    );

    // Contacts whose answers lack the `contact` key fail each read: parked after two failures,
    // shown as stuck, and read no more.
    world.ghl().set_faults(Faults {
        strip_keys: vec!["contact".into()],
        ..Faults::default()
    });
    let broken: std::collections::BTreeSet<String> =
        links.iter().map(|l| l.ghl_contact_id.clone()).collect();
    for (n, contact) in broken.iter().enumerate() {
        let code = tag_update(&http, listen, &world, contact, &format!("broken-{n}")).await;
        assert_eq!(code, 202);
    }
    let is_broken = |item: &str| broken.iter().any(|c| item == format!("contact:{c}"));
    wait_for(
        "every failing contact parked",
        Duration::from_secs(300),
        async || {
            let s = Store::open_read_only(&store).unwrap();
            let all = retries::all(s.conn()).unwrap();
            let failing: Vec<_> = all.iter().filter(|r| is_broken(&r.item)).collect();
            failing.len() == broken.len()
                && failing.iter().all(|r| r.parked_at.is_some())
                && retries::due(s.conn(), chrono::Utc::now() + chrono::Duration::hours(1))
                    .unwrap()
                    .iter()
                    .all(|r| !is_broken(&r.item))
        },
    )
    .await;
    let parked = status(&http, listen).await;
    let stuck: Vec<&Value> = parked["stuck"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| is_broken(r["item"].as_str().unwrap()))
        .collect();
    let rows = broken.len();
    assert_eq!(stuck.len(), rows, "every parked contact is shown as stuck");
    assert!(stuck.iter().all(|r| !r["parked_at"].is_null()), "{stuck:?}");
    let more = contact_reads_over_three_polls(&http, listen, &world).await;
    assert!(
        more < 20,
        "parked contacts are read no more, but {more} contact reads followed"
    );
    assert_eq!(
        status(&http, listen).await["readiness"]["ready"],
        true,
        "ready again once the polls complete"
    );
    world.ghl().set_faults(Faults::default());
    daemon.stop().await.unwrap();

    // By hand they are queued again, fresh.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_trengo-sync"))
        .args(["retry", "--all", "--config"])
        .arg(write_config_file(&world, &dir))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        broken
            .iter()
            .all(|c| stdout.lines().any(|l| l.contains(c.as_str()))),
        "{stdout}"
    );
    assert_eq!(rows, broken.len());
    let s = Store::open_read_only(&store).unwrap();
    assert!(retries::parked(s.conn()).unwrap().is_empty());
}

/// GHL contact reads while three more Trengo polls run.
async fn contact_reads_over_three_polls(
    http: &reqwest::Client,
    listen: std::net::SocketAddr,
    world: &trengo_sync::sim::world::SimWorld,
) -> u64 {
    let reads = ghost_reads(world);
    let runs = runs_of(&status(http, listen).await, "trengo_poll");
    wait_for(
        "three more Trengo polls",
        Duration::from_secs(60),
        async || runs_of(&status(http, listen).await, "trengo_poll") >= runs + 3,
    )
    .await;
    ghost_reads(world) - reads
}

/// Posts a validly signed GHL `ContactTagUpdate` for `contact`; returns the HTTP status.
async fn tag_update(
    http: &reqwest::Client,
    listen: std::net::SocketAddr,
    world: &trengo_sync::sim::world::SimWorld,
    contact: &str,
    webhook_id: &str,
) -> u16 {
    let body = serde_json::to_vec(&json!({
        "type": "ContactTagUpdate",
        "locationId": world.location_id(),
        "id": contact,
        "tags": ["trengo:vip"],
        "timestamp": chrono::Utc::now().to_rfc3339(),
        "webhookId": webhook_id,
    }))
    .unwrap();
    let signature = world.ghl().outbox().sign(&body);
    http.post(format!("http://{listen}/webhooks/ghl"))
        .header("content-type", "application/json")
        .header("x-ghl-signature", signature)
        .body(body)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

fn write_config_file(
    world: &trengo_sync::sim::world::SimWorld,
    dir: &tempfile::TempDir,
) -> std::path::PathBuf {
    support::write_config(world, dir).0
}

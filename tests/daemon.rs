//! The daemon as a service: it becomes ready, changes cross by schedule and by a signed
//! webhook, `/status` and `/metrics` show it, a bad signature changes nothing, and SIGTERM
//! mid-pass leaves a store from which the next start converges.

mod support;

use std::time::{Duration, Instant};

use support::{
    daemon_config, links, spawn_daemon, task_completed, total_writes, wait_for,
    wait_until_writes_stop, write_config,
};
use trengo_sync::config::Secret;
use trengo_sync::sim::world::MANAGED_PREFIX;

use trengo_sync::daemon::run::Daemon;
use trengo_sync::sim::world::SimWorld;

async fn world(seed: u64) -> SimWorld {
    support::world(seed, 10, 5).await
}

async fn wait_until_ready(http: &reqwest::Client, base: &str) {
    wait_for("readiness", Duration::from_secs(60), async || {
        http.get(format!("{base}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
    })
    .await;
}

async fn get_text(http: &reqwest::Client, url: String) -> String {
    http.get(url).send().await.unwrap().text().await.unwrap()
}

/// Whether the ticket carries a label of that name.
fn ticket_has_label(world: &SimWorld, ticket_id: i64, name: &str) -> bool {
    let ticket = world.trengo().ticket_json(ticket_id).unwrap();
    ticket["labels"]
        .as_array()
        .is_some_and(|labels| labels.iter().any(|l| l["name"] == name))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemon_becomes_ready_and_changes_cross_both_ways_by_schedule() {
    let world = world(5).await;
    let dir = tempfile::tempdir().unwrap();
    let (config, listener) = daemon_config(&world, &dir).await;
    let addr = listener.local_addr().unwrap();
    let daemon = Daemon::new(config, listener).spawn();
    let http = reqwest::Client::new();
    let base = format!("http://{addr}");
    wait_until_ready(&http, &base).await;
    wait_for(
        "links on two contacts",
        Duration::from_secs(60),
        async || {
            let linked = links(&dir);
            linked
                .iter()
                .any(|l| l.ghl_contact_id != linked[0].ghl_contact_id)
        },
    )
    .await;
    let linked = links(&dir);
    let a = linked[0].clone();

    // Trengo → GHL by the Trengo poll: a ticket close completes the task.
    world.trengo().close_ticket(a.ticket_id).unwrap();
    wait_for("the task completion", Duration::from_secs(60), async || {
        task_completed(&world, &a.task_id)
    })
    .await;

    // GHL → Trengo by the GHL poll: a managed tag on the contact labels its open ticket.
    let b = linked
        .iter()
        .find(|l| {
            l.ghl_contact_id != a.ghl_contact_id
                && world.trengo().ticket_json(l.ticket_id).unwrap()["status"] != "CLOSED"
        })
        .cloned()
        .expect("an open linked ticket on a second contact");
    let tag = format!("{MANAGED_PREFIX}callback");
    world
        .ghl()
        .add_contact_tag(&b.ghl_contact_id, &tag)
        .unwrap();
    wait_for(
        "the label from the tag",
        Duration::from_secs(60),
        async || ticket_has_label(&world, b.ticket_id, &tag),
    )
    .await;

    // /status and /metrics show the passes and the operations they made.
    let status: serde_json::Value =
        serde_json::from_str(&get_text(&http, format!("{base}/status")).await).unwrap();
    assert!(status.to_string().contains("trengo_poll"), "{status}");
    let metrics = get_text(&http, format!("{base}/metrics")).await;
    assert!(
        metrics.contains("trengo_sync_operations_total"),
        "{metrics}"
    );
    assert!(metrics.contains("trengo_sync_passes_total"), "{metrics}");

    daemon.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_webhooks_from_both_sides_cross_with_polls_idle_and_forgeries_are_refused() {
    let world = world(6).await;
    let dir = tempfile::tempdir().unwrap();
    let (mut config, listener) = daemon_config(&world, &dir).await;
    let addr = listener.local_addr().unwrap();
    // Each poll runs once at start (it has never succeeded), then not again this year; the
    // sweep and the reconcile never: after the first links, only webhooks can move anything.
    let yearly: trengo_sync::config::CronExpr = "0 0 0 1 1 *".parse().unwrap();
    config.schedule.trengo_poll = yearly.clone();
    config.schedule.ghl_poll = yearly.clone();
    config.schedule.sweep = yearly.clone();
    config.schedule.reconcile = yearly;
    config.webhooks.enabled = true;
    config.webhooks.ghl_public_key = world.ghl_public_key();
    let secret = support::register_trengo_webhook(
        &world,
        "TICKET_CLOSED",
        &format!("http://{addr}/webhooks/trengo/TICKET_CLOSED"),
    )
    .await;
    config
        .webhooks
        .trengo_secrets
        .insert("TICKET_CLOSED".into(), Secret::new(secret));
    world
        .ghl()
        .register_webhook(&format!("http://{addr}/webhooks/ghl"));
    let daemon = Daemon::new(config, listener).spawn();
    let http = reqwest::Client::new();
    let base = format!("http://{addr}");
    wait_until_ready(&http, &base).await;
    wait_for("the first links", Duration::from_secs(60), async || {
        !links(&dir).is_empty()
    })
    .await;
    // Let the start-up passes finish so that what follows is the webhooks' doing.
    wait_until_writes_stop(&world, Duration::from_secs(3), Duration::from_secs(60)).await;
    let linked = links(&dir);
    let a = linked[0].clone();
    let b = linked
        .iter()
        .find(|l| l.ticket_id != a.ticket_id && l.task_id != a.task_id)
        .cloned()
        .expect("two links");

    // Trengo → GHL: the signed TICKET_CLOSED delivery makes the daemon re-read that ticket.
    world.trengo().close_ticket(a.ticket_id).unwrap();
    wait_for(
        "the task completion by webhook",
        Duration::from_secs(30),
        async || task_completed(&world, &a.task_id),
    )
    .await;

    // GHL → Trengo: the signed TaskComplete event closes the ticket.
    world.ghl().complete_task(&b.task_id).unwrap();
    wait_for(
        "the ticket close by webhook",
        Duration::from_secs(30),
        async || world.trengo().ticket_json(b.ticket_id).unwrap()["status"] == "CLOSED",
    )
    .await;

    // Forged deliveries are refused with 401 and change nothing.
    let before = world.snapshot();
    let c = linked
        .iter()
        .find(|l| l.ticket_id != a.ticket_id && l.ticket_id != b.ticket_id)
        .cloned()
        .expect("three links");
    let forged_ghl = http
        .post(format!("{base}/webhooks/ghl"))
        .header("x-ghl-signature", "bm90IGEgc2lnbmF0dXJl")
        .body(format!(
            r#"{{"type":"TaskComplete","locationId":"{}","id":"{}","contactId":"{}"}}"#,
            world.location_id(),
            c.task_id,
            c.ghl_contact_id
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(forged_ghl.status(), 401);
    let forged_trengo = http
        .post(format!("{base}/webhooks/trengo/TICKET_CLOSED"))
        .header("Trengo-Signature", "1700000000;deadbeef")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("ticket_id={}", c.ticket_id))
        .send()
        .await
        .unwrap();
    assert_eq!(forged_trengo.status(), 401);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        world.snapshot(),
        before,
        "a forged webhook changed something"
    );

    let metrics = get_text(&http, format!("{base}/metrics")).await;
    assert!(metrics.contains("trengo_sync_webhooks_total"), "{metrics}");

    daemon.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_mid_pass_exits_cleanly_and_the_next_start_converges() {
    let world = world(9).await;
    let dir = tempfile::tempdir().unwrap();
    let (config, _listen) = write_config(&world, &dir);
    let spawn = || spawn_daemon(&config);
    let writes = total_writes;
    let start = writes(&world);
    let mut daemon = spawn();
    let deadline = Instant::now() + Duration::from_secs(60);
    while writes(&world) < start + 2 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let term = std::process::Command::new("kill")
        .args(["-TERM", &daemon.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let stopped = Instant::now();
    let status = daemon.wait().unwrap();
    assert_eq!(
        status.code(),
        Some(0),
        "SIGTERM must end the daemon with exit 0"
    );
    assert!(
        stopped.elapsed() < Duration::from_secs(60),
        "the stop took longer than a minute"
    );

    // The next start converges: once it has been quiet for three poll periods, a pass from
    // the same store makes no write.
    let mut daemon = spawn();
    wait_until_writes_stop(&world, Duration::from_secs(15), Duration::from_secs(120)).await;
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &daemon.id().to_string()])
        .status();
    assert_eq!(daemon.wait().unwrap().code(), Some(0));
    assert!(!links(&dir).is_empty());
}

//! The daemon as a service: it becomes ready, changes cross by schedule and by a signed
//! webhook, `/status` and `/metrics` show it, a bad signature changes nothing, and SIGTERM
//! mid-pass leaves a store from which the next start converges.

mod support;

use std::time::{Duration, Instant};

use support::{links, wait_for};

use tokio::net::TcpListener;
use trengo_sync::clock::SystemClock;
use trengo_sync::daemon::run::Daemon;
use trengo_sync::sim::world::SimWorld;

async fn world(seed: u64) -> SimWorld {
    support::world(seed, 10, 5).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemon_becomes_ready_and_changes_cross_by_schedule_and_by_signed_webhook() {
    let world = world(5).await;
    let dir = tempfile::tempdir().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut config = world
        .config(&dir.path().join("state.sqlite"), addr)
        .unwrap();
    config.webhooks.enabled = true;
    config.webhooks.ghl_public_key = world.ghl_public_key();
    // The nightly reconcile and the sweep stay out of the way: only polls and webhooks act.
    config.schedule.sweep = "0 0 0 1 1 *".parse().unwrap();
    world
        .ghl()
        .register_webhook(&format!("http://{addr}/webhooks/ghl"));

    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let daemon = tokio::spawn(
        Daemon {
            config,
            clock: SystemClock::shared(),
            listener,
        }
        .run(async move {
            let _ = stop_rx.await;
        }),
    );
    let http = reqwest::Client::new();
    let base = format!("http://{addr}");
    wait_for("readiness", Duration::from_secs(60), async || {
        http.get(format!("{base}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
    })
    .await;
    wait_for("the first links", Duration::from_secs(60), async || {
        !links(&dir).is_empty()
    })
    .await;
    let linked = links(&dir);
    let a = linked[0].clone();

    // By schedule: a Trengo close reaches GHL through the Trengo poll.
    world.trengo().close_ticket(a.ticket_id).unwrap();
    let ghl = world.ghl();
    wait_for("the task completion", Duration::from_secs(60), async || {
        ghl.snapshot().to_string().contains(&a.task_id) && task_completed(&world, &a.task_id)
    })
    .await;

    // By webhook: a GHL completion (which moves no watermark) reaches Trengo through the
    // signed TaskComplete event, not the sweep (switched off above).
    if let Some(b) = linked.iter().find(|l| l.ticket_id != a.ticket_id).cloned() {
        world.ghl().complete_task(&b.task_id).unwrap();
        wait_for(
            "the ticket close by webhook",
            Duration::from_secs(30),
            async || world.trengo().ticket_json(b.ticket_id).unwrap()["status"] == "CLOSED",
        )
        .await;
    }

    // A forged webhook is refused and changes nothing.
    let forged = http
        .post(format!("{base}/webhooks/ghl"))
        .header("x-ghl-signature", "bm90IGEgc2lnbmF0dXJl")
        .body(r#"{"type":"TaskComplete","locationId":"x","id":"t","contactId":"c"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 401);

    let status: serde_json::Value = http
        .get(format!("{base}/status"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(status.to_string().contains("trengo_poll"), "{status}");
    let metrics = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("trengo_sync_operations_total"),
        "{metrics}"
    );
    assert!(metrics.contains("trengo_sync_passes_total"), "{metrics}");

    let _ = stop_tx.send(());
    daemon.await.unwrap().unwrap();
}

fn task_completed(world: &SimWorld, task_id: &str) -> bool {
    let snapshot = world.ghl().snapshot();
    find_task(&snapshot, task_id).is_some_and(|t| t["completed"] == true)
}

fn find_task<'a>(value: &'a serde_json::Value, id: &str) -> Option<&'a serde_json::Value> {
    match value {
        serde_json::Value::Object(map) => {
            if map.get("id").and_then(|v| v.as_str()) == Some(id) && map.contains_key("completed") {
                return Some(value);
            }
            map.values().find_map(|v| find_task(v, id))
        }
        serde_json::Value::Array(items) => items.iter().find_map(|v| find_task(v, id)),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_mid_pass_exits_cleanly_and_the_next_start_converges() {
    let world = world(9).await;
    let dir = tempfile::tempdir().unwrap();
    let listen = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        world.config_toml(&dir.path().join("state.sqlite"), listen),
    )
    .unwrap();
    let spawn = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_trengo-sync"))
            .args(["run", "--config", config.to_str().unwrap()])
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    let writes = |w: &SimWorld| w.trengo().counters().writes + w.ghl().counter_snapshot().writes;
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
    let mut last = writes(&world);
    let mut quiet_since = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(120);
    while quiet_since.elapsed() < Duration::from_secs(15) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = writes(&world);
        if now != last {
            last = now;
            quiet_since = Instant::now();
        }
    }
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &daemon.id().to_string()])
        .status();
    assert_eq!(daemon.wait().unwrap().code(), Some(0));
    assert!(!links(&dir).is_empty());
}

//! Backfill progress: the daemon's first Trengo poll on an account with a few hundred existing
//! tickets is a backfill, and `/status` shows how far it is, its rate and an ETA while it runs,
//! then the backfill as complete.

mod support;

use std::time::Duration;

use serde_json::Value;
use trengo_sync::daemon::run::Daemon;
use trengo_sync::sim::Faults;
use trengo_sync::sim::world::WorldOptions;

fn trengo_backfill(status: &Value) -> Option<Value> {
    status["backfill"]
        .as_array()?
        .iter()
        .find(|b| b["stream"] == "trengo.tickets")
        .cloned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_shows_backfill_progress_and_an_eta_during_the_first_poll() {
    let world = support::start_world(WorldOptions::unpaced(11, 300, 60)).await;
    // A little latency on every GHL call, so the backfill lasts long enough to be watched.
    world.ghl().set_faults(Faults {
        latency_ms: 15,
        ..Faults::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let (mut config, listener) = support::daemon_config(&world, &dir).await;
    let addr = listener.local_addr().unwrap();
    // Only the Trengo poll acts: at start it runs at once, with no cursor yet.
    config.schedule.ghl_poll = "0 0 0 1 1 *".parse().unwrap();
    config.schedule.sweep = "0 0 0 1 1 *".parse().unwrap();
    let daemon = Daemon::new(config, listener).spawn();
    let http = reqwest::Client::new();
    let mut during = None;
    let mut finished = None;
    for _ in 0..3000 {
        if let Ok(reply) = http.get(format!("http://{addr}/status")).send().await
            && let Ok(status) = reply.json::<Value>().await
            && let Some(b) = trengo_backfill(&status)
        {
            if b["finished_at"].is_null() && b["done"].as_u64() > Some(0) && during.is_none() {
                during = Some(b.clone());
            }
            if !b["finished_at"].is_null() {
                finished = Some(b);
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let during = during.expect("/status never showed the backfill under way");
    let finished = finished.expect("the backfill never completed");
    daemon.stop().await.unwrap();

    assert_eq!(during["listed"], 300, "every ticket is listed first");
    let (done, total) = (
        during["done"].as_u64().unwrap(),
        during["total_estimate"].as_u64().unwrap(),
    );
    assert!(done < total, "under way: {during}");
    assert!(during["rate_per_sec"].as_f64().unwrap() > 0.0, "{during}");
    assert!(
        during["eta_secs"].is_u64(),
        "an ETA while it runs: {during}"
    );
    assert!(during["eta_at"].is_string(), "{during}");
    assert_eq!(finished["eta_secs"], 0);
    assert_eq!(finished["percent"], 100.0);
    assert!(
        !support::links(&dir).is_empty(),
        "the backfill linked tickets"
    );
}

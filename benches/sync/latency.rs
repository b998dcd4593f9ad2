//! Propagation latency through the daemon, in real time on the documented rate limits: from an
//! edit on one side to the write that carries it to the other, by the poll schedules and by a
//! signed GHL webhook.
//!
//! Each webhook edit is also taken apart on stderr: when the daemon accepted the delivery, what
//! it was doing then (a job in flight, the Trengo budget left, read from `/status`), and the
//! Trengo calls made until the write, so a missed figure says where its time went.

use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};
use trengo_sync::daemon::run::Daemon;
use trengo_sync::sim::world::SimWorld;
use trengo_sync::store::{self, Store};

use crate::Sizes;
use crate::table::{Row, quantile};
use crate::world::{self, writes};

/// The poll period of the world's configuration (`*/5 * * * * *`).
const POLL: Duration = Duration::from_secs(5);

/// Waits until `done` holds (checked every 10 ms); the time taken.
async fn until(mut done: impl FnMut() -> anyhow::Result<bool>) -> anyhow::Result<f64> {
    let t = Instant::now();
    while !done()? {
        anyhow::ensure!(
            t.elapsed() < Duration::from_secs(60),
            "not carried within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(t.elapsed().as_secs_f64())
}

/// Whether the union of `tag` over the contact's linked tickets is `present` (the model's
/// Trengo value of a contact's tag, sync-model.md §3 "tags").
fn label_union(
    world: &SimWorld,
    links: &[store::links::Link],
    contact: &str,
    tag: &str,
) -> anyhow::Result<bool> {
    let mut any = false;
    for l in links.iter().filter(|l| l.ghl_contact_id == contact) {
        any |= world.trengo().ticket_json(l.ticket_id)?["labels"]
            .as_array()
            .is_some_and(|ls| ls.iter().any(|x| x["name"] == tag));
    }
    Ok(any)
}

fn row(what: &str, target: &str, limit: f64, samples: &[f64], more: &str) -> Row {
    let (p50, p95) = (quantile(samples, 0.5), quantile(samples, 0.95));
    Row::new(
        format!("propagation latency {what}"),
        target,
        format!(
            "p50 {p50:.1} s, p95 {p95:.1} s ({} edits{more})",
            samples.len()
        ),
        Some(p95 <= limit),
    )
}

/// What the daemon was doing when a webhook was delivered: the jobs in flight and the Trengo
/// budget left, from `/status`.
async fn daemon_state(http: &reqwest::Client, base: &str) -> anyhow::Result<String> {
    let status: serde_json::Value = http
        .get(format!("{base}/status"))
        .send()
        .await?
        .json()
        .await?;
    let busy: Vec<&str> = status["jobs"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|j| j["in_flight"] == true)
        .filter_map(|j| j["name"].as_str())
        .collect();
    let trengo_left = status["budgets"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|b| b["api"] == "trengo")
        .map_or(-1, |b| b["remaining"].as_i64().unwrap_or(-1));
    Ok(format!(
        "in flight: {}; Trengo window left {trengo_left}",
        if busy.is_empty() {
            "none".to_string()
        } else {
            busy.join(", ")
        }
    ))
}

/// Polling latency both ways and webhook latency.
pub async fn run(s: Sizes) -> anyhow::Result<Vec<Row>> {
    let world = world::start(world::options(3, 16, 8, 1)).await?;
    world::label_every_ticket(&world)?;
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("state.sqlite");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let mut config = world.config(&path, addr)?;
    config.webhooks.enabled = true;
    config.webhooks.ghl_public_key = world.ghl_public_key();
    let never: trengo_sync::config::types::CronExpr =
        "0 0 0 1 1 *".parse().map_err(anyhow::Error::msg)?;
    config.schedule.sweep = never.clone();
    config.schedule.reconcile = never;
    let daemon = Daemon::new(config, listener).spawn();
    eprintln!("latency: waiting for the first links to settle");
    // Settled: a stretch of 6 s in which only idle polls ran (at most two calls per poll).
    loop {
        let before = world::calls(&world);
        tokio::time::sleep(Duration::from_secs(6)).await;
        if daemon.is_finished() {
            daemon.stop().await?;
            anyhow::bail!("the daemon stopped before the latency edits");
        }
        let after = world::calls(&world);
        if writes(&world) != (0, 0) && (after.0 + after.1) - (before.0 + before.1) <= 6 {
            break;
        }
    }
    let links = {
        let st = Store::open_read_only(&path)?;
        store::links::active(st.conn())?
    };
    anyhow::ensure!(links.len() >= 2, "too few links for the latency figures");
    let mut rng = StdRng::seed_from_u64(5);
    let (mut by_trengo_poll, mut by_ghl_poll, mut by_webhook) = (vec![], vec![], vec![]);
    for i in 0..s.latency_samples {
        // A random phase against the poll schedule.
        tokio::time::sleep(Duration::from_millis(rng.gen_range(0..5_000))).await;
        let link = &links[i % links.len()];
        let close = world.trengo().ticket_json(link.ticket_id)?["status"] != "CLOSED";
        if close {
            world.trengo().close_ticket(link.ticket_id)?;
        } else {
            world.trengo().reopen_ticket(link.ticket_id)?;
        }
        by_trengo_poll.push(until(|| Ok(task_completed(&world, &link.task_id) == close)).await?);

        tokio::time::sleep(Duration::from_millis(rng.gen_range(0..5_000))).await;
        let tag = "trengo:callback";
        let contact = &link.ghl_contact_id;
        let tags = world::fake(world.ghl().contact_json(contact))?["tags"].clone();
        let add = !tags.as_array().is_some_and(|t| t.iter().any(|x| x == tag));
        if add {
            world::fake(world.ghl().add_contact_tag(contact, tag))?;
        } else {
            world::fake(world.ghl().remove_contact_tag(contact, tag))?;
        }
        by_ghl_poll.push(until(|| Ok(label_union(&world, &links, contact, tag)? == add)).await?);
    }
    // Webhooks: a GHL task completion moves no watermark (ghl-api.md §11.3), and the sweep is
    // off, so only the signed TaskComplete event can carry it.
    world
        .ghl()
        .register_webhook(&format!("http://{addr}/webhooks/ghl"));
    let (http, base) = (reqwest::Client::new(), format!("http://{addr}"));
    let mut webhook_trengo_calls = Vec::new();
    // Tasks still open, from the end of the list (the polling edits used the start).
    for link in links.iter().rev() {
        if by_webhook.len() >= s.latency_samples {
            break;
        }
        if task_completed(&world, &link.task_id) {
            continue;
        }
        // 3–6 s apart: an item costs a few Trengo calls (its tickets and messages, the
        // close), and Trengo refills 1.8 calls a second at 120 a minute; events coming faster
        // than that queue behind the budget, by design.
        tokio::time::sleep(Duration::from_millis(rng.gen_range(3_000..6_000))).await;
        let calls_before = world::calls(&world).0;
        let edited = Instant::now();
        world::fake(world.ghl().complete_task(&link.task_id))?;
        let event = world.ghl().webhook_events().pop();
        let webhook_id = event.as_ref().and_then(|e| e["webhookId"].as_str());
        let accepted = |world: &SimWorld| {
            world
                .ghl()
                .webhook_log()
                .iter()
                .any(|d| Some(d.webhook_id.as_str()) == webhook_id && d.delivered)
        };
        let ticket = link.ticket_id;
        let mut delivered = None;
        let mut state = String::new();
        let closed = |world: &SimWorld| -> anyhow::Result<bool> {
            Ok(world.trengo().ticket_json(ticket)?["status"] == "CLOSED")
        };
        while !closed(&world)? {
            anyhow::ensure!(
                edited.elapsed() < Duration::from_secs(60),
                "not carried within 60 s"
            );
            if delivered.is_none() && accepted(&world) {
                delivered = Some(edited.elapsed().as_secs_f64());
                state = daemon_state(&http, &base).await?;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let took = edited.elapsed().as_secs_f64();
        let calls = world::calls(&world).0 - calls_before;
        eprintln!(
            "latency: webhook {}: {took:.2} s; delivered after {} ({state}); {calls} Trengo calls",
            by_webhook.len() + 1,
            delivered.map_or("-".to_string(), |d| format!("{d:.2} s")),
        );
        webhook_trengo_calls.push(calls as f64);
        by_webhook.push(took);
    }
    daemon.stop().await?;
    world.shutdown().await;
    let poll = POLL.as_secs_f64();
    Ok(vec![
        row(
            "by polling, Trengo → GHL (ticket status)",
            "p95 ≤ poll interval (5 s here) + 2 s",
            poll + 2.0,
            &by_trengo_poll,
            "",
        ),
        row(
            "by polling, GHL → Trengo (contact tag)",
            "p95 ≤ poll interval (5 s here) + 2 s",
            poll + 2.0,
            &by_ghl_poll,
            "",
        ),
        row(
            "by webhook, GHL → Trengo (task completed)",
            "≤ 2 s",
            2.0,
            &by_webhook,
            &format!(
                "; {:.1} Trengo calls from edit to write, median",
                quantile(&webhook_trengo_calls, 0.5)
            ),
        ),
    ])
}

fn task_completed(world: &SimWorld, task_id: &str) -> bool {
    fn find(v: &serde_json::Value, id: &str) -> Option<bool> {
        match v {
            serde_json::Value::Object(m) => {
                if m.get("id").and_then(|x| x.as_str()) == Some(id) && m.contains_key("completed") {
                    return m.get("completed").and_then(|c| c.as_bool());
                }
                m.values().find_map(|x| find(x, id))
            }
            serde_json::Value::Array(a) => a.iter().find_map(|x| find(x, id)),
            _ => None,
        }
    }
    find(&world.ghl().snapshot(), task_id).unwrap_or(false)
}

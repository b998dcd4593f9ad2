//! Pause, resume, unlink and relink through the real binary while `trengo-sync run` runs
//! (issue #16): the command writes the store beside the daemon, the daemon reads it at its
//! next pass, and what changed while paused crosses after `resume`.

mod support;

use std::process::Child;
use std::time::Duration;

use chrono::{DateTime, Utc};
use support::{cli, links, spawn_daemon, task_completed, wait_for, write_config};
use trengo_sync::sim::world::{MANAGED_PREFIX, SimWorld};

const LIMIT: Duration = Duration::from_secs(90);

/// Stops the daemon on drop, so a failing assertion does not leave it running.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let _ = self.0.wait();
    }
}

async fn status(base: &str) -> serde_json::Value {
    let text = reqwest::get(format!("{base}/status"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("/status: {e}: {text}"))
}

/// Waits until a Trengo poll started after `t`: every pass from then on has read the store's
/// switches as they were at `t`.
async fn a_pass_started_after(base: &str, t: DateTime<Utc>) {
    wait_for("a pass after the switch", LIMIT, async || {
        let s = status(base).await;
        s["jobs"].as_array().unwrap().iter().any(|j| {
            j["name"] == "trengo_poll"
                && j["last_started"]
                    .as_str()
                    .and_then(|d| DateTime::parse_from_rfc3339(d).ok())
                    .is_some_and(|d| d > t)
        })
    })
    .await;
}

async fn held_items(base: &str) -> u64 {
    status(base).await["paused"]["held_items"].as_u64().unwrap()
}

fn ticket_has_label(world: &SimWorld, ticket_id: i64, name: &str) -> bool {
    let ticket = world.trengo().ticket_json(ticket_id).unwrap();
    ticket["labels"]
        .as_array()
        .is_some_and(|labels| labels.iter().any(|l| l["name"] == name))
}

/// Starts a world and the daemon, and waits until it linked tickets of at least three contacts.
async fn running(
    seed: u64,
    dir: &tempfile::TempDir,
) -> (SimWorld, std::path::PathBuf, String, Running) {
    let world = support::world(seed, 10, 5).await;
    let (config, listen) = write_config(&world, dir);
    let daemon = Running(spawn_daemon(&config));
    let base = format!("http://{listen}");
    wait_for("links on three contacts", LIMIT, async || {
        // The daemon may still be creating the store.
        let Ok(store) = trengo_sync::store::Store::open_read_only(support::store_path(dir)) else {
            return false;
        };
        let linked = trengo_sync::store::links::active(store.conn()).unwrap_or_default();
        let mut contacts: Vec<_> = linked.iter().map(|l| l.ghl_contact_id.clone()).collect();
        contacts.sort();
        contacts.dedup();
        contacts.len() >= 3
    })
    .await;
    (world, config, base, daemon)
}

/// Open links, one per contact.
fn open_links(world: &SimWorld, dir: &tempfile::TempDir) -> Vec<trengo_sync::store::links::Link> {
    let mut seen = std::collections::HashSet::new();
    links(dir)
        .into_iter()
        .filter(|l| world.trengo().ticket_json(l.ticket_id).unwrap()["status"] != "CLOSED")
        .filter(|l| seen.insert(l.ghl_contact_id.clone()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_direction_holds_its_writes_while_running_and_resume_lets_them_cross() {
    let dir = tempfile::tempdir().unwrap();
    let (world, config, base, _daemon) = running(21, &dir).await;
    let open = open_links(&world, &dir);
    let (a, b) = (open[0].clone(), open[1].clone());

    let said = cli(&config, &["pause", "--direction", "trengo-to-ghl"]);
    assert!(said.contains("nothing is written to GHL"), "{said}");
    a_pass_started_after(&base, Utc::now()).await;

    // Trengo → GHL waits: the close is held, not lost.
    world.trengo().close_ticket(a.ticket_id).unwrap();
    wait_for("the close to be held", LIMIT, async || {
        held_items(&base).await >= 1
    })
    .await;
    // GHL → Trengo still crosses: a managed tag labels the other contact's ticket.
    let tag = format!("{MANAGED_PREFIX}callback");
    world
        .ghl()
        .add_contact_tag(&b.ghl_contact_id, &tag)
        .unwrap();
    wait_for("the label from the tag", LIMIT, async || {
        ticket_has_label(&world, b.ticket_id, &tag)
    })
    .await;
    assert!(
        !task_completed(&world, &a.task_id),
        "a write to GHL was made while Trengo → GHL was paused"
    );

    // The pause is shown: /status, `status`, /readyz (ready, and saying paused).
    let s = status(&base).await;
    assert_eq!(s["paused"]["daemon"], "trengo_to_ghl", "{s}");
    let table = cli(&config, &["status"]);
    assert!(table.contains("Paused: trengo_to_ghl"), "{table}");
    let ready = reqwest::get(format!("{base}/readyz")).await.unwrap();
    assert_eq!(ready.status(), 200);
    let body = ready.text().await.unwrap();
    assert!(body.contains("paused: trengo_to_ghl"), "{body}");

    // Resumed, the edit made while paused crosses.
    let said = cli(&config, &["resume"]);
    assert!(said.contains("resumed"), "{said}");
    wait_for("the held close to cross", LIMIT, async || {
        task_completed(&world, &a.task_id)
    })
    .await;
    wait_for("the held item to be cleared", LIMIT, async || {
        held_items(&base).await == 0
    })
    .await;
    assert_eq!(
        status(&base).await["paused"]["daemon"],
        serde_json::Value::Null
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_link_waits_an_unlinked_one_stays_ended_and_both_come_back() {
    let dir = tempfile::tempdir().unwrap();
    let (world, config, base, _daemon) = running(22, &dir).await;
    let open = open_links(&world, &dir);
    let (paused, ended, other) = (open[0].clone(), open[1].clone(), open[2].clone());

    cli(&config, &["pause", &paused.id.0.to_string()]);
    let said = cli(
        &config,
        &[
            "unlink",
            &ended.id.0.to_string(),
            "--reason",
            "handled by hand",
        ],
    );
    assert!(said.contains("nothing was deleted"), "{said}");
    a_pass_started_after(&base, Utc::now()).await;

    // All three close; only the link neither paused nor ended crosses.
    for l in [&paused, &ended, &other] {
        world.trengo().close_ticket(l.ticket_id).unwrap();
    }
    wait_for("the other close to cross", LIMIT, async || {
        task_completed(&world, &other.task_id)
    })
    .await;
    wait_for("the paused link's close to be held", LIMIT, async || {
        held_items(&base).await >= 1
    })
    .await;
    assert!(!task_completed(&world, &paused.task_id));
    assert!(!task_completed(&world, &ended.task_id));
    let s = status(&base).await;
    assert_eq!(s["links"]["unlinked"], 1, "{s}");
    assert_eq!(s["paused"]["links"][0]["link_id"], paused.id.0, "{s}");
    assert!(
        !links(&dir).iter().any(|l| l.id == ended.id),
        "the unlinked link is active"
    );
    let explained = cli(&config, &["explain", &ended.id.0.to_string()]);
    assert!(
        explained.contains("unlinked by hand: handled by hand"),
        "{explained}"
    );
    let explained = cli(&config, &["explain", &paused.id.0.to_string()]);
    assert!(explained.contains("paused (both)"), "{explained}");

    // `resume LINK` lifts the pause, and brings the unlinked one back.
    cli(&config, &["resume", &paused.id.0.to_string()]);
    let said = cli(&config, &["resume", &ended.id.0.to_string()]);
    assert!(said.contains("linked again"), "{said}");
    wait_for("both held closes to cross", LIMIT, async || {
        task_completed(&world, &paused.task_id) && task_completed(&world, &ended.task_id)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn once_paused_both_ways_writes_nothing_and_the_edit_crosses_after_resume() {
    let world = support::world(23, 10, 5).await;
    let dir = tempfile::tempdir().unwrap();
    let (config, _) = write_config(&world, &dir);
    cli(&config, &["once"]);
    let l = open_links(&world, &dir)[0].clone();

    cli(&config, &["pause"]);
    world.trengo().close_ticket(l.ticket_id).unwrap();
    let (trengo, ghl) = (
        world.trengo().counters().writes,
        world.ghl().counter_snapshot().total,
    );
    let said = cli(&config, &["once"]);
    assert!(said.contains("paused both ways"), "{said}");
    // Only the account check reads Trengo's users; GHL is not asked at all.
    assert_eq!(
        world.trengo().counters().writes,
        trengo,
        "Trengo was written while paused"
    );
    assert_eq!(
        world.ghl().counter_snapshot().total,
        ghl,
        "GHL was used while paused"
    );
    assert!(!task_completed(&world, &l.task_id));

    cli(&config, &["resume"]);
    cli(&config, &["once"]);
    assert!(
        task_completed(&world, &l.task_id),
        "the close made while paused did not cross"
    );
}

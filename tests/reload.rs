//! SIGHUP re-reads the configuration (issue #16), through the real binary while `run` runs:
//! a good file takes effect at the next pass, a bad one is refused with the errors `check`
//! gives for it, and the running configuration stays.

mod support;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use chrono::{DateTime, Utc};
use support::reliability::links_so_far;
use support::rules::label;
use support::{find_task, store_path, wait_for, wait_until_writes_stop, world, write_config};
use trengo_sync::sim::world::{LINK_LABEL, SimWorld};

const LIMIT: Duration = Duration::from_secs(90);

/// Stops the daemon on drop, so a failing assertion does not leave it running.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let _ = self.0.wait();
    }
}

fn hangup(daemon: &Running) {
    let status = Command::new("kill")
        .args(["-HUP", &daemon.0.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -HUP failed");
}

async fn reloads(base: &str, outcome: &str) -> u64 {
    let text = reqwest::get(format!("{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let series = format!("trengo_sync_config_reloads_total{{outcome=\"{outcome}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(series.as_str()))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// Labels an open ticket no link holds with the link label and waits for its link; returns
/// the due date of the GHL task the daemon made for it.
async fn label_a_ticket_and_read_its_task_due(
    world: &SimWorld,
    dir: &tempfile::TempDir,
) -> DateTime<Utc> {
    let linked: Vec<i64> = links_so_far(&store_path(dir))
        .iter()
        .map(|l| l.ticket_id)
        .collect();
    let ticket = world
        .trengo()
        .ticket_ids()
        .into_iter()
        .find(|id| {
            !linked.contains(id) && {
                let t = world.trengo().ticket_json(*id).unwrap();
                matches!(t["status"].as_str(), Some("OPEN" | "ASSIGNED"))
                    && !t["labels"]
                        .as_array()
                        .is_some_and(|ls| ls.iter().any(|l| l["name"] == LINK_LABEL))
            }
        })
        .expect("the world has an unlinked open ticket");
    world
        .trengo()
        .add_label(ticket, label(world, LINK_LABEL))
        .unwrap();
    let mut task = String::new();
    wait_for(
        "the labelled ticket's link",
        LIMIT,
        async || match links_so_far(&store_path(dir))
            .into_iter()
            .find(|l| l.ticket_id == ticket)
        {
            Some(link) => {
                task = link.task_id;
                true
            }
            None => false,
        },
    )
    .await;
    let snapshot = world.ghl().snapshot();
    let due = find_task(&snapshot, &task).unwrap()["dueDate"]
        .as_str()
        .unwrap()
        .to_owned();
    DateTime::parse_from_rfc3339(&due)
        .unwrap_or_else(|e| panic!("task {task} dueDate {due}: {e}"))
        .with_timezone(&Utc)
}

fn days_ahead(due: DateTime<Utc>) -> f64 {
    (due - Utc::now()).num_seconds() as f64 / 86_400.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_applies_a_good_file_at_the_next_pass_and_refuses_a_bad_one_keeping_the_old() {
    let world = world(160, 16, 6).await;
    let dir = tempfile::tempdir().unwrap();
    let (config, listen) = write_config(&world, &dir);
    let base = format!("http://{listen}");
    let original = std::fs::read_to_string(&config).unwrap();
    assert!(original.contains("task_due_in = \"2d\""), "{original}");
    let log = dir.path().join("daemon.log");
    let daemon = Running(
        Command::new(env!("CARGO_BIN_EXE_trengo-sync"))
            .args(["run", "--config", config.to_str().unwrap()])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    wait_for("the first links", LIMIT, async || {
        !links_so_far(&store_path(&dir)).is_empty()
    })
    .await;
    wait_until_writes_stop(&world, Duration::from_secs(6), LIMIT).await;

    // A good file: new tasks are due in 9 days instead of 2, from the next pass on.
    std::fs::write(
        &config,
        original.replace("task_due_in = \"2d\"", "task_due_in = \"9d\""),
    )
    .unwrap();
    hangup(&daemon);
    wait_for("the reload", LIMIT, async || {
        reloads(&base, "applied").await == 1
    })
    .await;
    let due = label_a_ticket_and_read_its_task_due(&world, &dir).await;
    assert!(
        (8.5..9.5).contains(&days_ahead(due)),
        "a task made after the reload is due {due}, not in 9 days"
    );

    // A bad file: refused with what `check` says of it; the daemon goes on with the 9 days.
    let bad = original.replace("task_due_in = \"2d\"", "task_due_in = \"soon\"");
    std::fs::write(&config, &bad).unwrap();
    let check = Command::new(env!("CARGO_BIN_EXE_trengo-sync"))
        .args(["check", "--config", config.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!check.status.success(), "check accepted the bad file");
    let check_says = String::from_utf8_lossy(&check.stderr).into_owned();
    let problem = check_says
        .lines()
        .find(|l| l.contains("task_due_in"))
        .unwrap_or_else(|| panic!("check does not name the key: {check_says}"))
        .trim()
        .trim_start_matches("error: ")
        .to_owned();
    hangup(&daemon);
    wait_for("the refusal", LIMIT, async || {
        reloads(&base, "refused").await == 1
    })
    .await;
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(
        logged.contains("configuration reload refused; the running configuration stays")
            && logged.contains(&problem),
        "the log does not say what check says ({problem}):\n{logged}"
    );
    let healthz = reqwest::get(format!("{base}/healthz")).await.unwrap();
    assert!(
        healthz.status().is_success(),
        "the daemon is unhealthy after a refused reload"
    );
    let due = label_a_ticket_and_read_its_task_due(&world, &dir).await;
    assert!(
        (8.5..9.5).contains(&days_ahead(due)),
        "after a refused reload a task is due {due}: the running configuration did not stay"
    );
    assert_eq!(reloads(&base, "applied").await, 1);
}

//! `trengo-sync demo`: the daemon's main job on the embedded fakes, with no account needed.
//!
//! It starts the simulated world (both fakes, the same people on both sides), runs the real
//! daemon against it with a generated configuration, a temporary store and its status
//! endpoint, makes scripted edits on both sides as a person would, and prints each change as
//! it crosses, read from the daemon's own ledger. It stops after `--duration` or on Ctrl-C and
//! prints a summary.

use std::collections::BTreeSet;
use std::time::Duration;

use tokio::net::TcpListener;

use crate::daemon::run::Daemon;
use crate::sim::world::{SimWorld, WorldOptions};
use crate::store::{self, Store};

/// One scripted edit: when (seconds after start), what it does, and to which link.
struct Edit {
    at: u64,
    what: &'static str,
}

const SCRIPT: [Edit; 7] = [
    Edit {
        at: 8,
        what: "Trengo: an agent closes a linked ticket",
    },
    Edit {
        at: 12,
        what: "GHL: a sales rep completes a linked task",
    },
    Edit {
        at: 16,
        what: "GHL: a sales rep tags a contact trengo:callback",
    },
    Edit {
        at: 20,
        what: "Trengo: an agent writes an internal note",
    },
    Edit {
        at: 24,
        what: "GHL: a sales rep adds a note to a contact",
    },
    Edit {
        at: 28,
        what: "Trengo: an agent labels a ticket trengo:vip",
    },
    Edit {
        at: 34,
        what: "both: a ticket and its task are reassigned to different people at once",
    },
];

/// The demo's world: a small account whose rate limits are ten times Trengo's documented
/// default, so a one-minute demo is not paced by a budget meant for a day's work, and whose
/// agents exist on both sides, so the assignee syncs and a conflict can be shown.
fn demo_world_options(seed: u64) -> WorldOptions {
    let mut options = WorldOptions {
        seed,
        tickets: 20,
        contacts: 8,
        assignee: true,
        ..WorldOptions::default()
    };
    options.trengo.rate_limit_per_minute = 1_200;
    options
}

/// Runs the demo for `duration`, or until Ctrl-C.
pub async fn run(duration: Duration, seed: u64) -> anyhow::Result<()> {
    let world = SimWorld::start(
        TcpListener::bind("127.0.0.1:0").await?,
        TcpListener::bind("127.0.0.1:0").await?,
        demo_world_options(seed),
    )?;
    let dir = tempfile::tempdir()?;
    let store_path = dir.path().join("state.sqlite");
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let listen = listener.local_addr()?;
    let mut config = world.config(&store_path, listen)?;
    // A short demo: sweep every 10 s, so changes that move no watermark (a task completed in
    // GHL, a note) cross within seconds instead of the minutes a real schedule would take.
    config.schedule.sweep = "*/10 * * * * *"
        .parse()
        .map_err(|e: String| anyhow::anyhow!(e))?;
    println!("trengo-sync demo: the real daemon against in-process fakes of Trengo and GHL");
    println!(
        "  Trengo fake  {}  (admin: {}/_sim/)",
        world.trengo_base_url(),
        world.trengo_web_url()
    );
    println!(
        "  GHL fake     {}  (admin: {}/_sim/)",
        world.ghl_base_url(),
        world.ghl_base_url()
    );
    println!("  status       http://{listen}/status   metrics http://{listen}/metrics");
    println!("  store        {} (temporary)", store_path.display());
    println!(
        "  rules        tickets labelled GHL ⇄ GHL tasks; tags with prefix trengo:; internal notes; \
         assignee by e-mail; conflicts settled by `newest`; polls every 5 s"
    );
    println!("  stops after {}s or on Ctrl-C\n", duration.as_secs());

    let daemon = Daemon::new(config, listener).spawn();

    let start = tokio::time::Instant::now();
    let deadline = start + duration;
    let mut seen = BTreeSet::new();
    let mut next_edit = 0;
    let mut crossed = 0usize;
    let mut ctrl_c = std::pin::pin!(tokio::signal::ctrl_c());
    loop {
        tokio::select! {
            _ = &mut ctrl_c => { println!("\nCtrl-C: stopping"); break; }
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
        if tokio::time::Instant::now() >= deadline || daemon.is_finished() {
            break;
        }
        let elapsed = start.elapsed().as_secs();
        while next_edit < SCRIPT.len() && SCRIPT[next_edit].at <= elapsed {
            match edit(&world, &store_path, next_edit) {
                Ok(detail) => println!(
                    "[{elapsed:>3}s] edit  {} ({detail})",
                    SCRIPT[next_edit].what
                ),
                Err(e) => println!(
                    "[{elapsed:>3}s] edit  {} skipped: {e}",
                    SCRIPT[next_edit].what
                ),
            }
            next_edit += 1;
        }
        crossed += print_crossings(&store_path, &mut seen, elapsed);
    }
    if let Err(e) = daemon.stop().await {
        println!("the daemon stopped with an error: {e:#}");
    }
    crossed += print_crossings(&store_path, &mut seen, start.elapsed().as_secs());
    summary(&world, &store_path, crossed);
    world.shutdown().await;
    Ok(())
}

fn links(store_path: &std::path::Path) -> anyhow::Result<Vec<store::links::Link>> {
    let s = Store::open_read_only(store_path)?;
    Ok(store::links::active(s.conn())?)
}

/// Makes scripted edit `n` on a linked item; returns what it touched.
fn edit(world: &SimWorld, store_path: &std::path::Path, n: usize) -> anyhow::Result<String> {
    let links = links(store_path)?;
    let pick = |i: usize| links.get(i % links.len().max(1)).cloned();
    let Some(link) = pick(n) else {
        anyhow::bail!("no link yet");
    };
    let t = world.trengo();
    let g = world.ghl();
    Ok(match n {
        0 => {
            t.close_ticket(link.ticket_id)?;
            format!("ticket #{}", link.ticket_id)
        }
        1 => {
            g.complete_task(&link.task_id).map_err(ghl_err)?;
            format!("task {}", link.task_id)
        }
        2 => {
            g.add_contact_tag(&link.ghl_contact_id, "trengo:callback")
                .map_err(ghl_err)?;
            format!("contact {}", link.ghl_contact_id)
        }
        3 => {
            t.post_note(
                link.ticket_id,
                "Called the customer: wants a quote by Friday.",
            )?;
            format!("ticket #{}", link.ticket_id)
        }
        4 => {
            g.add_note(&link.ghl_contact_id, "Discount of 10% approved by sales.")
                .map_err(ghl_err)?;
            format!("contact {}", link.ghl_contact_id)
        }
        5 => {
            let label = t
                .label_id("trengo:vip")
                .ok_or_else(|| anyhow::anyhow!("the fake has no trengo:vip label"))?;
            // A contact not yet tagged, so the label is news to GHL and visibly crosses
            // (on a tagged contact the union over its tickets would not change).
            let untagged = links
                .iter()
                .find(|l| {
                    g.contact_json(&l.ghl_contact_id).is_ok_and(|c| {
                        !c["tags"]
                            .as_array()
                            .is_some_and(|tags| tags.iter().any(|t| t == "trengo:vip"))
                    })
                })
                .unwrap_or(&link);
            t.add_label(untagged.ticket_id, label)?;
            format!("ticket #{}", untagged.ticket_id)
        }
        _ => {
            // An open link, so the reassignment is the only change on it.
            let open = links
                .iter()
                .find(|l| {
                    t.ticket_json(l.ticket_id)
                        .is_ok_and(|j| j["status"] == "OPEN" || j["status"] == "ASSIGNED")
                })
                .ok_or_else(|| anyhow::anyhow!("no link with an open ticket"))?;
            let (to_trengo, to_ghl) = world.reassign_both(open.ticket_id, &open.task_id)?;
            format!(
                "ticket #{} to {to_trengo} in Trengo, task {} to {to_ghl} in GHL",
                open.ticket_id, open.task_id
            )
        }
    })
}

fn ghl_err(e: crate::sim::ghl::error::GhlError) -> anyhow::Error {
    anyhow::anyhow!("the GHL fake refused: {} {}", e.status, e.message)
}

/// Prints ledger entries not printed yet; returns how many.
fn print_crossings(
    store_path: &std::path::Path,
    seen: &mut BTreeSet<String>,
    elapsed: u64,
) -> usize {
    let Ok(s) = Store::open_read_only(store_path) else {
        return 0;
    };
    let Ok(mut entries) = store::ledger::recent(s.conn(), None, 500) else {
        return 0;
    };
    entries.reverse();
    let mut n = 0;
    for e in entries {
        let key = format!(
            "{}|{:?}|{:?}|{:?}",
            e.at.to_rfc3339(),
            e.op,
            e.link_id,
            e.detail
        );
        if !seen.insert(key) {
            continue;
        }
        n += 1;
        if e.kind == store::ledger::EntryKind::ConflictSettled {
            let link = e
                .link_id
                .map_or_else(String::new, |l| format!(" on link {}", l.0));
            let field = e.field.as_deref().unwrap_or("a field");
            let winner = e.side.as_deref().unwrap_or("?");
            let losing = e
                .losing_value
                .as_ref()
                .map_or_else(|| "(none)".to_string(), |v| v.to_string());
            println!(
                "[{elapsed:>3}s] conflict {field}{link}: both sides changed; the policy gave it \
                 to {winner}; the losing value {losing} is kept in the ledger"
            );
            continue;
        }
        let side = match e.side.as_deref() {
            Some("ghl") => "→ GHL   ",
            Some("trengo") => "→ Trengo",
            _ => "  store ",
        };
        let what =
            e.op.clone()
                .or(e.detail.clone())
                .unwrap_or_else(|| format!("{:?}", e.kind));
        println!("[{elapsed:>3}s] sync  {side} {what}");
    }
    n
}

fn summary(world: &SimWorld, store_path: &std::path::Path, crossed: usize) {
    println!("\nsummary");
    if let Ok(s) = Store::open_read_only(store_path) {
        if let Ok(counts) = store::links::count_by_state(s.conn()) {
            println!(
                "  links: {} active, {} out of scope",
                counts.active, counts.out_of_scope
            );
        }
        if let Ok(held) = store::conflicts::list(s.conn()) {
            println!("  conflicts held: {}", held.len());
        }
        if let Ok(retries) = store::retries::all(s.conn()) {
            println!("  items waiting for a retry: {}", retries.len());
        }
    }
    println!("  changes recorded in the ledger: {crossed}");
    let t = world.trengo().counters();
    let g = world.ghl().counter_snapshot();
    println!(
        "  API requests: Trengo {} ({} writes), GHL {} ({} writes)",
        t.total, t.writes, g.total, g.writes
    );
}

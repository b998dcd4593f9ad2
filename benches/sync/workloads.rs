//! The cost figures: idle polls, 1,000 random edits, the full-scan comparison (engine in
//! process), and the backfill of existing tickets (the daemon, read through `/status`).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use rand::rngs::StdRng;
use rand::seq::SliceRandom as _;
use rand::{Rng as _, SeedableRng as _};
use serde_json::Value;
use trengo_sync::daemon::run::Daemon;
use trengo_sync::sim::world::SimWorld;
use trengo_sync::store::{self, Store};
use trengo_sync::sync::engine::{Engine, GHL_CURSOR, PassKind, PassOptions, TRENGO_BACKFILL};

use crate::Sizes;
use crate::table::Row;
use crate::world::{self, calls, floor, minus, serial_floor, writes};

/// A burst of edits on most links is exactly what the brake is for; the benchmark measures
/// cost, so it lets the passes through (`once --allow-mass-change` does the same).
pub(crate) const THROUGH_BRAKE: PassOptions = PassOptions {
    dry_run: false,
    allow_mass_change: true,
};

/// Polling passes until one writes nothing; the writes made.
pub(crate) async fn settle(engine: &Engine) -> anyhow::Result<u64> {
    let mut total = 0;
    for _ in 0..12 {
        let r = engine.pass(PassKind::Poll, THROUGH_BRAKE).await?;
        let w = r.writes.trengo + r.writes.ghl;
        total += w;
        if w == 0 {
            return Ok(total);
        }
    }
    anyhow::bail!("no quiet pass within 12 polls")
}

/// Waits out both polls' overlap windows, so the next poll is a true idle one, then measures
/// one polling pass (both streams): calls per API and store rows written.
pub(crate) async fn idle_poll(
    world: &SimWorld,
    engine: &Engine,
) -> anyhow::Result<((u64, u64), u64)> {
    let overlap = engine
        .settings
        .trengo_overlap
        .max(engine.settings.ghl_overlap)
        .to_std()?;
    tokio::time::sleep(overlap + Duration::from_secs(1)).await;
    // The first pass of a fresh engine also loads the label list once; warm it.
    engine.pass(PassKind::Poll, THROUGH_BRAKE).await?;
    let (c0, r0) = (calls(world), world::rows_written(engine).await?);
    let report = engine.pass(PassKind::Poll, THROUGH_BRAKE).await?;
    anyhow::ensure!(
        report.writes.trengo + report.writes.ghl == 0,
        "idle poll wrote"
    );
    Ok((
        minus(calls(world), c0),
        world::rows_written(engine).await? - r0,
    ))
}

pub(crate) fn idle_row(n: usize, c: (u64, u64), rows: u64) -> Row {
    Row::new(
        format!("API calls per idle poll, N = {n} links"),
        "≤ 2 in all, 0 store rows written",
        format!("{} (Trengo {}, GHL {}), {rows} rows", c.0 + c.1, c.0, c.1),
        Some(c.0 + c.1 <= 2 && rows == 0),
    )
}

pub(crate) fn active_links(
    engine_store: &std::path::Path,
) -> anyhow::Result<Vec<store::links::Link>> {
    let s = Store::open_read_only(engine_store)?;
    Ok(store::links::active(s.conn())?)
}

/// Idle polls at about 1k links, the full-scan comparison, and 1,000 random edits.
pub async fn edits(s: Sizes) -> anyhow::Result<Vec<Row>> {
    // Tasks tagged in GHL make tickets too: 3 tickets in 4 give about `edit_links` links.
    let tickets = s.edit_links * 3 / 4;
    let world = world::start(world::options(7, tickets, tickets / 2, s.k)).await?;
    world::label_every_ticket(&world)?;
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("state.sqlite");
    let engine = world::engine(&world, &path).await?;
    eprintln!("edits: linking {tickets} tickets");
    settle(&engine).await?;
    let links = active_links(&path)?;
    let mut rows = Vec::new();

    let (idle, idle_rows) = idle_poll(&world, &engine).await?;
    rows.push(idle_row(links.len(), idle, idle_rows));

    // The full-scan design reads every linked item each poll; the engine's reconcile pass
    // does exactly that, so its cost is that design's cost per poll.
    let c0 = calls(&world);
    engine.pass(PassKind::Reconcile, THROUGH_BRAKE).await?;
    let scan = minus(calls(&world), c0);
    rows.push(Row::new(
        format!("full-scan design, calls per poll at N = {} links", links.len()),
        "ratio stated",
        format!(
            "{} (Trengo {}, GHL {}): {:.0}× the idle poll; at the documented limits one such poll takes {:.0} min",
            scan.0 + scan.1,
            scan.0,
            scan.1,
            (scan.0 + scan.1) as f64 / (idle.0 + idle.1).max(1) as f64,
            floor(scan, 1).as_secs_f64() / 60.0
        ),
        None,
    ));

    // Random edits on distinct links and contacts: a ticket's status in Trengo, or a managed
    // tag on a contact in GHL. Each must cross as one write per field (a tag as one label per
    // linked ticket).
    let mut rng = StdRng::seed_from_u64(42);
    let mut ticket_pool = links.clone();
    ticket_pool.shuffle(&mut rng);
    let mut per_contact: BTreeMap<String, u64> = BTreeMap::new();
    for l in &links {
        *per_contact.entry(l.ghl_contact_id.clone()).or_default() += 1;
    }
    let mut contact_pool: Vec<(String, u64)> = per_contact.into_iter().collect();
    contact_pool.shuffle(&mut rng);
    let mut made = 0usize;
    let mut edited_links = Vec::new();
    let mut edited_tags: Vec<(String, &str)> = Vec::new();
    let tags = ["trengo:vip", "trengo:callback"];
    while made < s.edits && !(ticket_pool.is_empty() && contact_pool.is_empty()) {
        if rng.gen_bool(0.5)
            && let Some((contact, _)) = contact_pool.pop()
        {
            let tag = tags[rng.gen_range(0..tags.len())];
            let json = world::fake(world.ghl().contact_json(&contact))?;
            let has = json["tags"]
                .as_array()
                .is_some_and(|t| t.iter().any(|x| x == tag));
            if has {
                world::fake(world.ghl().remove_contact_tag(&contact, tag))?;
            } else {
                world::fake(world.ghl().add_contact_tag(&contact, tag))?;
            }
            edited_tags.push((contact, tag));
            made += 1;
        } else if let Some(link) = ticket_pool.pop() {
            let status = world.trengo().ticket_json(link.ticket_id)?["status"].clone();
            if status == "CLOSED" {
                world.trengo().reopen_ticket(link.ticket_id)?;
            } else {
                world.trengo().close_ticket(link.ticket_id)?;
            }
            edited_links.push(link);
            made += 1;
        }
    }
    // What a perfect sync must write: every field the edits made differ across the sides.
    let (expected, _) = differences(&world, &links, &edited_links, &edited_tags)?;
    eprintln!("edits: {made} edits made, {expected} writes needed");
    // GHL's search shows a change only after its index lag.
    tokio::time::sleep(world_lag(s.k) + Duration::from_millis(200)).await;
    let (c0, w0, t0) = (calls(&world), writes(&world), Instant::now());
    let (mut c_end, mut w_end, mut t_end) = (c0, w0, t0);
    for _ in 0..12 {
        let r = engine.pass(PassKind::Poll, THROUGH_BRAKE).await?;
        if r.writes.trengo + r.writes.ghl == 0 {
            break;
        }
        (c_end, w_end, t_end) = (calls(&world), writes(&world), Instant::now());
    }
    let used = minus(c_end, c0);
    let wrote = minus(w_end, w0);
    let took = t_end - t0;
    let (_, left) = differences(&world, &links, &edited_links, &edited_tags)?;
    let per_change = (wrote.0 + wrote.1) as f64 / expected.max(1) as f64;
    rows.push(Row::new(
        format!("writes per propagated change, {made} random edits on {} links", links.len()),
        "1.00 (labels: one per label)",
        format!(
            "{per_change:.2} ({} writes for {expected} needed; {left} differences left; {:.1} calls per edit)",
            wrote.0 + wrote.1,
            (used.0 + used.1) as f64 / made.max(1) as f64
        ),
        Some((per_change - 1.0).abs() < 0.005 && left == 0),
    ));
    // Echoes: our own writes must not come back as changes.
    tokio::time::sleep(world_lag(s.k) + Duration::from_millis(200)).await;
    let w1 = writes(&world);
    engine.pass(PassKind::Poll, THROUGH_BRAKE).await?;
    engine.pass(PassKind::Poll, THROUGH_BRAKE).await?;
    let echo = minus(writes(&world), w1);
    rows.push(Row::new(
        "echo writes after those edits converged (two more polls)",
        "0",
        format!("{}", echo.0 + echo.1),
        Some(echo == (0, 0)),
    ));
    let fl = floor(used, s.k);
    let ratio = took.as_secs_f64() / fl.as_secs_f64().max(1e-9);
    rows.push(Row::new(
        "time to converge those edits ÷ floor",
        "≤ 1.15",
        format!(
            "{ratio:.2} ({:.1} s for {} Trengo + {} GHL calls; floor {:.1} s, serial floor {:.1} s; ×{} limits)",
            took.as_secs_f64(),
            used.0,
            used.1,
            fl.as_secs_f64(),
            serial_floor(used, s.k).as_secs_f64(),
            s.k
        ),
        Some(ratio <= 1.15),
    ));
    world.shutdown().await;
    Ok(rows)
}

/// The writes a perfect sync needs for the edits, and the fields still different across the
/// sides: a linked ticket's status against its task's completion, and an edited tag against the
/// union of that label over the contact's linked tickets (sync-model.md §3 "tags": a GHL add goes
/// to each open linked ticket, else the most recently updated one; a remove to each carrying it).
fn differences(
    world: &SimWorld,
    links: &[store::links::Link],
    edited_links: &[store::links::Link],
    edited_tags: &[(String, &str)],
) -> anyhow::Result<(u64, u64)> {
    let mut completed = std::collections::HashMap::new();
    collect_tasks(&world.ghl().snapshot(), &mut completed);
    let (mut needed, mut different) = (0, 0);
    for link in edited_links {
        let closed = world.trengo().ticket_json(link.ticket_id)?["status"] == "CLOSED";
        if completed.get(&link.task_id).copied() != Some(closed) {
            needed += 1;
            different += 1;
        }
    }
    for (contact, tag) in edited_tags {
        let tagged = world::fake(world.ghl().contact_json(contact))?["tags"]
            .as_array()
            .is_some_and(|t| t.iter().any(|x| x == *tag));
        let (mut open, mut labelled) = (0, 0);
        for link in links.iter().filter(|l| &l.ghl_contact_id == contact) {
            let ticket = world.trengo().ticket_json(link.ticket_id)?;
            if ticket["status"] != "CLOSED" {
                open += 1;
            }
            if ticket["labels"]
                .as_array()
                .is_some_and(|ls| ls.iter().any(|l| l["name"] == *tag))
            {
                labelled += 1;
            }
        }
        if tagged != (labelled > 0) {
            different += 1;
            needed += if tagged { open.max(1) } else { labelled };
        }
    }
    Ok((needed, different))
}

/// Every task in a GHL fake snapshot: id → completed.
fn collect_tasks(v: &Value, out: &mut std::collections::HashMap<String, bool>) {
    match v {
        Value::Object(m) => {
            if let (Some(id), Some(done)) = (
                m.get("id").and_then(Value::as_str),
                m.get("completed").and_then(Value::as_bool),
            ) {
                out.insert(id.to_string(), done);
            }
            m.values().for_each(|x| collect_tasks(x, out));
        }
        Value::Array(a) => a.iter().for_each(|x| collect_tasks(x, out)),
        _ => {}
    }
}

fn world_lag(k: u32) -> Duration {
    trengo_sync::sim::ghl::GhlFakeOptions::default().index_lag / k.max(1)
}

/// Contact groups read so far: reading a group is the only thing that lists a contact's notes.
fn group_reads(world: &SimWorld) -> u64 {
    world
        .ghl()
        .counter_snapshot()
        .count("GET /contacts/{contactId}/notes")
}

/// One `/status` reading of the Trengo backfill.
#[derive(Debug, Clone)]
struct Sample {
    at: DateTime<Utc>,
    done: u64,
    total: u64,
    eta_at: Option<DateTime<Utc>>,
}

fn time_of(v: &Value) -> Option<DateTime<Utc>> {
    v.as_str()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|d| d.with_timezone(&Utc))
}

/// The backfill of existing tickets, run by the daemon and read through `/status`; then idle
/// polls at the links it made.
pub async fn backfill(s: Sizes) -> anyhow::Result<Vec<Row>> {
    let k = s.k_backfill;
    let n = s.backfill_tickets;
    eprintln!("backfill: seeding {n} tickets");
    let world = world::start(world::options(9, n, n / 4, k)).await?;
    world::label_every_ticket(&world)?;
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("state.sqlite");
    let begun = Utc::now();
    {
        // The GHL poll, which the daemon also runs at start, is kept out of the backfill's
        // count: its cursor starts in the future, so it lists nothing.
        let mut st = Store::open(&path)?;
        let tx = st.transaction()?;
        let later = (begun + chrono::Duration::days(1)).to_rfc3339();
        store::cursors::put(&tx, GHL_CURSOR, &later, begun)?;
        tx.commit()?;
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let mut config = world.config(&path, addr)?;
    let never: trengo_sync::config::types::CronExpr =
        "0 0 0 1 1 *".parse().map_err(anyhow::Error::msg)?;
    config.schedule.ghl_poll = never.clone();
    config.schedule.sweep = never.clone();
    config.schedule.reconcile = never;
    let c0 = calls(&world);
    let daemon = Daemon::new(config, listener).spawn();
    let http = reqwest::Client::new();
    let mut samples = Vec::new();
    let (started, finished, used) = loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let Ok(reply) = http.get(format!("http://{addr}/status")).send().await else {
            continue;
        };
        let status: Value = reply.json().await?;
        let Some(b) = status["backfill"]
            .as_array()
            .and_then(|a| a.iter().find(|b| b["stream"] == TRENGO_BACKFILL))
            .cloned()
        else {
            continue;
        };
        if let (Some(started), Some(finished)) =
            (time_of(&b["started_at"]), time_of(&b["finished_at"]))
        {
            break (started, finished, minus(calls(&world), c0));
        }
        samples.push(Sample {
            at: Utc::now(),
            done: b["done"].as_u64().unwrap_or(0),
            total: b["total_estimate"].as_u64().unwrap_or(0),
            eta_at: time_of(&b["eta_at"]),
        });
        if daemon.is_finished() {
            anyhow::bail!("the daemon stopped during the backfill");
        }
    };
    daemon.stop().await?;
    let took = (finished - started).to_std()?;
    let fl = floor(used, k);
    let ratio = took.as_secs_f64() / fl.as_secs_f64().max(1e-9);
    let links = active_links(&path)?;
    let mut errors = Vec::new();
    for share in [0.25, 0.5, 0.75] {
        if let Some(sample) = samples
            .iter()
            .find(|x| x.total > 0 && x.eta_at.is_some() && x.done as f64 >= share * x.total as f64)
            && let Some(eta) = sample.eta_at
        {
            let left = (finished - sample.at).num_milliseconds() as f64;
            let off = (eta - finished).num_milliseconds() as f64;
            errors.push((share, off / left.max(1.0)));
        }
    }
    let worst = errors.iter().map(|e| e.1.abs()).fold(0.0, f64::max);
    let mut rows = vec![Row::new(
        format!("backfill of {n} existing tickets: calls, time ÷ floor"),
        "≤ 1.15",
        format!(
            "{ratio:.2} ({} links; {} Trengo + {} GHL calls in {:.1} s; floor {:.1} s, serial floor {:.1} s; ×{} limits, {:.1} h at the documented ones)",
            links.len(),
            used.0,
            used.1,
            took.as_secs_f64(),
            fl.as_secs_f64(),
            serial_floor(used, k).as_secs_f64(),
            k,
            took.as_secs_f64() * f64::from(k) / 3600.0
        ),
        Some(ratio <= 1.15),
    )];
    rows.push(Row::new(
        "backfill ETA shown by /status vs actual end",
        "within 20 %",
        if errors.is_empty() {
            "no ETA sampled".to_string()
        } else {
            errors
                .iter()
                .map(|(share, e)| format!("{:+.0} % at {:.0} %", e * 100.0, share * 100.0))
                .collect::<Vec<_>>()
                .join(", ")
                + " (error ÷ time left)"
        },
        Some(!errors.is_empty() && worst <= 0.2),
    ));

    // The first GHL poll after the backfill, from the cursor the daemon's own GHL poll at start
    // would have left (the backfill's start): it lists every contact the backfill wrote to.
    // Those were recorded after the backfill's own writes, so no group is read again.
    {
        let mut st = Store::open(&path)?;
        let tx = st.transaction()?;
        store::cursors::put(&tx, GHL_CURSOR, &begun.to_rfc3339(), begun)?;
        tx.commit()?;
    }
    let engine = world::engine(&world, &path).await?;
    // A fresh engine lists Trengo's labels once; an empty pass does it before counting.
    engine
        .pass(PassKind::Hints(Vec::new()), THROUGH_BRAKE)
        .await?;
    tokio::time::sleep(world_lag(k) + Duration::from_secs(1)).await;
    let (c0, g0) = (calls(&world), group_reads(&world));
    let report = engine.pass(PassKind::GhlPoll, THROUGH_BRAKE).await?;
    let (used, groups) = (minus(calls(&world), c0), group_reads(&world) - g0);
    rows.push(Row::new(
        "first GHL poll after the backfill: groups read again",
        "0 (only the listing of the contacts it wrote)",
        format!(
            "{groups} groups; {} calls (Trengo {}, GHL {}: the contact search), {} writes",
            used.0 + used.1,
            used.0,
            used.1,
            report.writes.trengo + report.writes.ghl
        ),
        Some(groups == 0),
    ));

    // Idle polls at the links the backfill made, now that both cursors are current.
    let (idle, idle_rows) = idle_poll(&world, &engine).await?;
    rows.push(idle_row(links.len(), idle, idle_rows));
    world.shutdown().await;
    Ok(rows)
}

//! Staleness (issue #12): how long an edit that moves no watermark waits before it is synced,
//! with webhooks off and every "moves `updated_at` / `dateUpdated`" switch of both fakes off
//! (their defaults), at about 1,000 and 10,000 open links; and what detecting such edits costs
//! when nothing changes (API calls an hour on each side).
//!
//! The daemon runs in process with its default schedules and `limits.sweep_share`, every
//! period divided by `K` and both fakes' and the configuration's rate limits multiplied by it,
//! so a wait of `t` seconds here is `t × K` at the documented limits. Edits are made at links
//! spread over the id range (a rolling sweep's position matters), then each is watched on the
//! other fake until its effect shows there, or until a cap (reported as "> cap").

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};
use trengo_sync::config::{Config, CronExpr, LimitsConfig, ScheduleConfig, Span};
use trengo_sync::daemon::run::Daemon;
use trengo_sync::sim::trengo::CustomerTicket;
use trengo_sync::sim::world::{LINK_LABEL, LINK_TAG, SimWorld};
use trengo_sync::store::{self, Store};
use trengo_sync::sync::engine::SWEEP_CURSOR;

use crate::Sizes;
use crate::table::{Row, quantile};
use crate::world::{self, calls, fake, minus, writes};

/// The longest rate window of the documented limits: Trengo's minute (GHL's is 10 s).
const LONGEST_WINDOW: Duration = Duration::from_secs(60);

/// Managed labels a sample attaches (both exist in every seeded Trengo account).
const MANAGED: [&str; 2] = ["trengo:vip", "trengo:callback"];

/// What an edit was, and how to tell it has crossed.
#[derive(Debug, Clone)]
enum Probe {
    /// A managed label attached to a linked ticket: the contact must carry the tag in GHL.
    Label { contact: String, tag: &'static str },
    /// A GHL task completed: its linked ticket must close in Trengo.
    Completion { ticket: i64 },
    /// A Trengo internal note: a GHL note carrying its text must exist on the contact.
    TrengoNote { contact: String, text: String },
    /// A GHL note: one more message on one of the contact's linked tickets.
    GhlNote { tickets: Vec<i64>, before: u64 },
    /// A new unlabelled ticket given the link label: a link and its GHL task must exist.
    Discovery { ticket: i64, contact: String },
}

/// The kinds in the order the rows are printed: (name, target in documented seconds, label).
const KINDS: [(&str, u64, &str); 5] = [
    (
        "label",
        600,
        "a managed label attached to a linked ticket → GHL tag",
    ),
    ("status", 600, "a GHL task completed → ticket closed"),
    (
        "trengo note",
        3_600,
        "an internal note on a ticket → GHL note",
    ),
    (
        "ghl note",
        3_600,
        "a GHL note on a contact → Trengo internal note",
    ),
    (
        "discovery",
        600,
        "a new ticket given the link label → link and GHL task",
    ),
];

#[derive(Debug)]
struct Sample {
    kind: usize,
    probe: Probe,
    edited: Instant,
    took: Option<Duration>,
}

/// The period and offset, in seconds, of a cron expression of the forms the defaults use:
/// `O/P * * * * *`, `*/P * * * * *` (every `P` seconds) and `S */M * * * *`, `S O/M * * * *`
/// (every `M` minutes).
fn period(expr: &CronExpr) -> anyhow::Result<(u64, u64)> {
    let fields: Vec<&str> = expr.as_str().split_whitespace().collect();
    let step = |f: &str| -> Option<(u64, u64)> {
        let (o, p) = f.split_once('/')?;
        let o = if o == "*" { 0 } else { o.parse().ok()? };
        Some((p.parse().ok()?, o))
    };
    let rest_any = |from: usize| fields.iter().skip(from).all(|f| *f == "*");
    let parsed = match fields.as_slice() {
        [s, ..] if fields.len() == 6 && rest_any(1) => step(s),
        [s, m, ..] if fields.len() == 6 && rest_any(2) => {
            let second: u64 = s.parse().ok().unwrap_or(0);
            step(m).map(|(p, o)| (p * 60, o * 60 + second))
        }
        _ => None,
    };
    parsed.ok_or_else(|| {
        anyhow::anyhow!(
            "the default schedule {:?} is not of a form the staleness benchmark can scale",
            expr.as_str()
        )
    })
}

/// A cron expression repeating every `p` seconds from offset `o`.
fn every(p: u64, o: u64) -> anyhow::Result<CronExpr> {
    let s = if p < 60 {
        anyhow::ensure!(
            60_u64.is_multiple_of(p),
            "a period of {p} s does not divide a minute"
        );
        format!("{}/{p} * * * * *", o % p)
    } else {
        anyhow::ensure!(
            p.is_multiple_of(60) && 3600_u64.is_multiple_of(p),
            "a period of {p} s does not divide an hour"
        );
        format!("{} {}/{} * * * *", o % 60, (o / 60) % (p / 60), p / 60)
    };
    s.parse().map_err(anyhow::Error::msg)
}

/// The default schedule scaled to `K` on `base` (the world's configuration): both polls'
/// periods and both overlaps divided by `k` (at least a second: cron counts in seconds). The
/// sweep's period is divided too when it is shorter than the rate windows: the sweep is then
/// paced by its share of each window, a rate, which `K` multiplies like every other. A sweep
/// that runs less often than the windows (today's, every 5 min) is capped per run by one
/// window's share instead, which `K` already multiplies: its period is kept, so its
/// throughput is `K` times the documented one, as everything else's is (dividing the period
/// too would make it `K²`). The nightly reconcile is left out: it is a day apart at the
/// documented limits, and what is measured is what polls and sweeps carry.
/// Returns the schedule and the (Trengo poll, sweep) periods used.
fn scaled_schedule(
    k: u32,
    base: &ScheduleConfig,
) -> anyhow::Result<(ScheduleConfig, [Duration; 2])> {
    let d = ScheduleConfig::default();
    let k64 = u64::from(k);
    let scale = |(p, o): (u64, u64)| ((p / k64).max(1), o / k64);
    let (tp, to) = scale(period(&d.trengo_poll)?);
    let (gp, go) = scale(period(&d.ghl_poll)?);
    let sweep = period(&d.sweep)?;
    let (sp, so) = if Duration::from_secs(sweep.0) < LONGEST_WINDOW {
        scale(sweep)
    } else {
        sweep
    };
    let schedule = ScheduleConfig {
        trengo_poll: every(tp, to)?,
        ghl_poll: every(gp, go)?,
        sweep: every(sp, so)?,
        reconcile: "0 0 0 1 1 *".parse().map_err(anyhow::Error::msg)?,
        trengo_overlap: Span::secs((d.trengo_overlap.get().as_secs() / k64).max(1)),
        ghl_overlap: Span::secs((d.ghl_overlap.get().as_secs() / k64).max(1)),
        ..base.clone()
    };
    Ok((schedule, [Duration::from_secs(tp), Duration::from_secs(sp)]))
}

/// The sweep's own limits at their defaults, scaled to `K` as the rates are: the least time
/// between two cycles divided by `k`, the GHL allowance (a count per day, spent as a rate with
/// one cycle's worth saved up at most) multiplied by it, so what it saves up stays the same.
/// `limits.sweep_share` is a fraction of each window: unscaled.
fn scale_sweep_limits(config: &mut Config, k: u32) {
    let d = LimitsConfig::default();
    config.limits.sweep_share = d.sweep_share;
    config.limits.sweep_cycle = Span::secs((d.sweep_cycle.get().as_secs() / u64::from(k)).max(1));
    config.limits.ghl_sweep_per_day = d.ghl_sweep_per_day.saturating_mul(k);
}

/// `secs` at the documented limits, readably.
fn human(secs: f64) -> String {
    if secs < 120.0 {
        format!("{secs:.0} s")
    } else if secs < 7_200.0 {
        format!("{:.1} min", secs / 60.0)
    } else {
        format!("{:.1} h", secs / 3_600.0)
    }
}

/// A world of `n` open links: `n` tickets, all carrying the link label and reopened, over
/// `n / 4` people, none of whose GHL contacts carries the GHL link tag (so every link comes from
/// a ticket), plus `unlabelled` new tickets without the label, one per person from the end of
/// the list (the discovery samples label them later). Done on the fakes' state before the
/// daemon starts: its first pass lists everything anyway. Returns the world and the unlabelled
/// tickets with their people's GHL contacts.
async fn open_world(
    n: usize,
    k: u32,
    unlabelled: usize,
    task_page: u32,
) -> anyhow::Result<(SimWorld, Vec<(i64, String)>)> {
    let mut options = world::options(12, n, (n / 4).max(4), k);
    options.ghl.switches.task_search_limit_cap = task_page;
    let world = world::start(options).await?;
    world::label_every_ticket(&world)?;
    for id in world.trengo().ticket_ids() {
        if world.trengo().ticket_json(id)?["status"] == "CLOSED" {
            world.trengo().reopen_ticket(id)?;
        }
    }
    for person in world.people() {
        fake(
            world
                .ghl()
                .remove_contact_tag(&person.ghl_contact_id, LINK_TAG),
        )?;
    }
    let channel = *world
        .trengo()
        .channel_ids()
        .first()
        .ok_or_else(|| anyhow::anyhow!("the world has no Trengo channel"))?;
    let mut fresh = Vec::new();
    for (i, person) in world.people().iter().rev().take(unlabelled).enumerate() {
        let ticket = world.trengo().create_ticket(&CustomerTicket {
            contact_id: person.trengo_contact_id,
            channel_id: channel,
            subject: Some(format!("Staleness discovery {}", i + 1)),
            message: "Hello, a question about my order.".into(),
        })?;
        fresh.push((ticket, person.ghl_contact_id.clone()));
    }
    Ok((world, fresh))
}

fn active_links(path: &Path) -> anyhow::Result<Vec<store::links::Link>> {
    let s = Store::open_read_only(path)?;
    let mut links = store::links::active(s.conn())?;
    links.sort_by_key(|l| l.id.0);
    Ok(links)
}

/// Waits until every ticket is linked and no write was made for `quiet`; gives up after `limit`.
async fn settle(
    world: &SimWorld,
    path: &Path,
    tickets: usize,
    quiet: Duration,
    limit: Duration,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut last = (writes(world), Instant::now());
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = writes(world);
        if now != last.0 {
            last = (now, Instant::now());
        }
        let linked = if path.exists() {
            active_links(path).map(|l| l.len()).unwrap_or(0)
        } else {
            0
        };
        if linked >= tickets && last.1.elapsed() >= quiet {
            return Ok(());
        }
        anyhow::ensure!(
            started.elapsed() < limit,
            "the links did not settle within {} s ({linked} of {tickets} tickets linked)",
            limit.as_secs()
        );
    }
}

/// Whether a sweep cursor stands at the start of a cycle: today's is the last link id swept
/// (`0` at the start), the listing sweep's a JSON position whose fields are all zero.
fn at_start(cursor: Option<&str>) -> bool {
    match cursor {
        None | Some("0") => true,
        Some(c) => serde_json::from_str::<serde_json::Value>(c).is_ok_and(|v| {
            v.as_object()
                .is_some_and(|m| m.values().all(|x| x.as_u64() == Some(0)))
        }),
    }
}

/// How the wait for a whole sweep cycle ended.
enum Cycled {
    /// The sweep's cursor left the start of a cycle and came back to it.
    Seen,
    /// It never left the start in `within_pass`: each cycle ends within one sweep pass (the
    /// cursor is written at the end of a pass, at a cycle's start again), as at 1,000 links
    /// once every limit is scaled.
    WithinPasses,
    /// Neither before the limit.
    No,
}

/// Waits until the sweep's cursor leaves the start of a cycle and comes back to it, or stays
/// at the start for `within_pass` (several least times between two cycles).
async fn whole_cycle(
    path: &Path,
    limit: Duration,
    within_pass: Duration,
) -> anyhow::Result<Cycled> {
    let started = Instant::now();
    let mut left = false;
    while started.elapsed() < limit {
        let cursor = {
            let s = Store::open_read_only(path)?;
            store::cursors::get(s.conn(), SWEEP_CURSOR)?
        };
        let start = at_start(cursor.as_deref());
        if left && start {
            return Ok(Cycled::Seen);
        }
        left |= !start;
        if !left && started.elapsed() >= within_pass {
            return Ok(Cycled::WithinPasses);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    Ok(Cycled::No)
}

/// Whether a probe's edit shows on the other side.
fn crossed(world: &SimWorld, path: &Path, probe: &Probe) -> anyhow::Result<bool> {
    Ok(match probe {
        Probe::Label { contact, tag } => fake(world.ghl().contact_json(contact))?["tags"]
            .as_array()
            .is_some_and(|t| t.iter().any(|x| x == *tag)),
        Probe::Completion { ticket } => world.trengo().ticket_json(*ticket)?["status"] == "CLOSED",
        Probe::TrengoNote { contact, text } => world.ghl().read(|s| {
            s.notes_of(contact)
                .is_ok_and(|notes| notes.iter().any(|n| n.body.contains(text.as_str())))
        }),
        Probe::GhlNote { tickets, before } => messages(world, tickets)? > *before,
        Probe::Discovery { ticket, contact } => {
            let link = {
                let s = Store::open_read_only(path)?;
                store::links::by_ticket(s.conn(), *ticket)?
            };
            link.is_some_and(|l| world.ghl().read(|s| s.task(contact, &l.task_id).is_ok()))
        }
    })
}

/// Messages on these tickets, all kinds.
fn messages(world: &SimWorld, tickets: &[i64]) -> anyhow::Result<u64> {
    let mut total = 0;
    for t in tickets {
        total += world.trengo().ticket_json(*t)?["messages_count"]
            .as_u64()
            .unwrap_or(0);
    }
    Ok(total)
}

/// A managed tag the GHL contact does not carry yet, if any.
fn missing_tag(world: &SimWorld, contact: &str) -> anyhow::Result<Option<&'static str>> {
    let tags = fake(world.ghl().contact_json(contact))?["tags"].clone();
    Ok(MANAGED
        .into_iter()
        .find(|m| !tags.as_array().is_some_and(|t| t.iter().any(|x| x == *m))))
}

/// Makes one edit of `kind` at `link`.
fn edit(
    world: &SimWorld,
    kind: usize,
    link: &store::links::Link,
    links: &[store::links::Link],
    nth: usize,
) -> anyhow::Result<Probe> {
    let contact = link.ghl_contact_id.clone();
    Ok(match KINDS[kind].0 {
        "label" => {
            let tag = missing_tag(world, &contact)?
                .ok_or_else(|| anyhow::anyhow!("contact {contact} carries every managed tag"))?;
            let label = world
                .trengo()
                .label_id(tag)
                .ok_or_else(|| anyhow::anyhow!("the world has no {tag} label"))?;
            world.trengo().add_label(link.ticket_id, label)?;
            Probe::Label { contact, tag }
        }
        "status" => {
            fake(world.ghl().complete_task(&link.task_id))?;
            Probe::Completion {
                ticket: link.ticket_id,
            }
        }
        "trengo note" => {
            let text = format!("Staleness probe {nth}: call the customer back on Monday.");
            world.trengo().post_note(link.ticket_id, &text)?;
            Probe::TrengoNote { contact, text }
        }
        "ghl note" => {
            let tickets: Vec<i64> = links
                .iter()
                .filter(|l| l.ghl_contact_id == contact)
                .map(|l| l.ticket_id)
                .collect();
            let before = messages(world, &tickets)?;
            fake(world.ghl().add_note(
                &contact,
                &format!("Staleness probe {nth}: prefers a call after 3 pm."),
            ))?;
            Probe::GhlNote { tickets, before }
        }
        other => anyhow::bail!("no edit of kind {other}"),
    })
}

/// Gives an unlabelled ticket, last updated before the links settled, the link label: a
/// change that moves no `updated_at` (trengo-api.md §3.4, the fake's default).
fn discover(world: &SimWorld, ticket: i64, contact: &str) -> anyhow::Result<Probe> {
    let label = world
        .trengo()
        .label_id(LINK_LABEL)
        .ok_or_else(|| anyhow::anyhow!("the world has no {LINK_LABEL} label"))?;
    world.trengo().add_label(ticket, label)?;
    Ok(Probe::Discovery {
        ticket,
        contact: contact.to_string(),
    })
}

/// One size: the idle cost, then the samples.
async fn one_size(n: usize, s: Sizes) -> anyhow::Result<Vec<Row>> {
    let k = s.staleness_k;
    let page = s.staleness_task_page;
    eprintln!(
        "staleness: {n} links, rate limits and schedules ×{k}, GHL task search {page} to a page"
    );
    let per = s.staleness_samples;
    let (world, fresh) = open_world(n, k, per, page).await?;
    let tickets = world.trengo().ticket_ids().len() - fresh.len();
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("state.sqlite");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let mut config: Config = world.config(&path, addr)?;
    anyhow::ensure!(!config.webhooks.enabled, "webhooks must be off");
    let (schedule, [poll, sweep]) = scaled_schedule(k, &config.schedule)?;
    eprintln!(
        "staleness: polls every {} s, sweep every {} s (real time)",
        poll.as_secs(),
        sweep.as_secs()
    );
    config.schedule = schedule;
    scale_sweep_limits(&mut config, k);
    // The sweep's GHL allowance per hour at the documented limits, for the idle row.
    let ghl_allowance = LimitsConfig::default().ghl_sweep_per_day / 24;
    // Several least times between two cycles (see `whole_cycle`).
    let within_pass = 6 * config.limits.sweep_cycle.get();
    let daemon = Daemon::new(config, listener).spawn();
    let setup = Instant::now();
    // The backfill of `n` tickets costs about 2.3 Trengo calls each at 90 % of the limit.
    let limit = Duration::from_secs_f64(
        600.0 + n as f64 * 4.0 / (f64::from(world::TRENGO_PER_MINUTE * k) / 60.0),
    );
    let settled = settle(&world, &path, tickets, Duration::from_secs(15), limit).await;
    if let Err(e) = settled {
        daemon.stop().await?;
        return Err(e);
    }
    let links = active_links(&path)?;
    eprintln!(
        "staleness: {} links settled in {:.0} s",
        links.len(),
        setup.elapsed().as_secs_f64()
    );

    // Steady state: the first sweep cycle after the backfill may read every group again; the
    // figures are those of the cycles after it. Waits until the sweep's cursor has left its
    // start and come back to it (a whole cycle), at most `steady_limit`.
    let steady_limit = Duration::from_secs(20 * 60);
    let cycle_from = Instant::now();
    let cycled = whole_cycle(&path, steady_limit, within_pass).await?;
    eprintln!(
        "staleness: {} (after {} at the documented limits)",
        match cycled {
            Cycled::Seen => "a whole sweep cycle ended after the settle",
            Cycled::WithinPasses => "sweep cycles end within one sweep pass each",
            Cycled::No => "no whole sweep cycle ended within the wait; measuring anyway",
        },
        human(cycle_from.elapsed().as_secs_f64() * f64::from(k))
    );

    // Idle cost: calls over whole sweep periods, at least a minute, with nothing changing. It
    // also puts the discovery tickets' last update well behind the Trengo poll's overlap.
    let stretch = sweep * 60_u32.div_ceil(sweep.as_secs().max(1) as u32);
    let (c0, w0) = (calls(&world), writes(&world));
    tokio::time::sleep(stretch).await;
    let idle = minus(calls(&world), c0);
    let idle_writes = minus(writes(&world), w0);
    let per_hour = |c: u64| c as f64 * 3_600.0 / (stretch.as_secs_f64() * f64::from(k));

    // Samples: for each kind, `staleness_samples` links, one in each slice of the id range,
    // on people no other sample touches.
    let mut rng = StdRng::seed_from_u64(n as u64);
    let mut used: BTreeSet<String> = fresh.iter().map(|f| f.1.clone()).collect();
    let mut samples = Vec::new();
    let slice = (links.len() / per).max(1);
    let mut nth = 0;
    for i in 0..per {
        for (kind, &(name, _, _)) in KINDS.iter().enumerate() {
            // A random phase against the schedules.
            tokio::time::sleep(Duration::from_millis(rng.gen_range(0..1_000))).await;
            nth += 1;
            if name == "discovery" {
                if let Some((ticket, contact)) = fresh.get(i) {
                    samples.push(Sample {
                        kind,
                        probe: discover(&world, *ticket, contact)?,
                        edited: Instant::now(),
                        took: None,
                    });
                }
                continue;
            }
            let lo = (i * slice).min(links.len().saturating_sub(1));
            let hi = ((i + 1) * slice).min(links.len());
            let start = rng.gen_range(lo..hi.max(lo + 1));
            let Some(link) = (start..hi).chain(lo..start).map(|j| &links[j]).find(|l| {
                !used.contains(&l.ghl_contact_id)
                    && (name != "label"
                        || missing_tag(&world, &l.ghl_contact_id).is_ok_and(|t| t.is_some()))
            }) else {
                continue;
            };
            used.insert(link.ghl_contact_id.clone());
            let probe = edit(&world, kind, link, &links, nth)?;
            samples.push(Sample {
                kind,
                probe,
                edited: Instant::now(),
                took: None,
            });
        }
    }
    eprintln!(
        "staleness: {} edits made; watching them (cap {} s, {} at the documented limits)",
        samples.len(),
        s.staleness_cap.as_secs(),
        human(s.staleness_cap.as_secs_f64() * f64::from(k))
    );
    loop {
        let mut pending = 0;
        for sample in samples.iter_mut().filter(|x| x.took.is_none()) {
            if crossed(&world, &path, &sample.probe)? {
                sample.took = Some(sample.edited.elapsed());
                eprintln!(
                    "staleness: {} {}: {}",
                    n,
                    KINDS[sample.kind].0,
                    human(sample.edited.elapsed().as_secs_f64() * f64::from(k))
                );
            } else if sample.edited.elapsed() < s.staleness_cap {
                pending += 1;
            }
        }
        if pending == 0 {
            break;
        }
        if daemon.is_finished() {
            daemon.stop().await?;
            anyhow::bail!("the daemon stopped while the staleness edits were watched");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    daemon.stop().await?;
    world.shutdown().await;

    let cap_doc = s.staleness_cap.as_secs_f64() * f64::from(k);
    let mut rows = Vec::new();
    for (kind, (_, target, what)) in KINDS.iter().enumerate() {
        // A sample past the cap counts as infinitely stale for the quantiles.
        let times: Vec<f64> = samples
            .iter()
            .filter(|x| x.kind == kind)
            .map(|x| {
                x.took
                    .map_or(f64::INFINITY, |t| t.as_secs_f64() * f64::from(k))
            })
            .collect();
        let show = |v: f64| {
            if v.is_finite() {
                human(v)
            } else {
                format!("> {}", human(cap_doc))
            }
        };
        let max = times.iter().copied().fold(0.0, f64::max);
        rows.push(Row::new(
            format!(
                "staleness at {} open links, GHL task pages of {page}: {what}",
                links.len()
            ),
            format!("≤ {} (at 10,000 links)", human(*target as f64)),
            format!(
                "p50 {}, p95 {}, max {} ({} edits; measured × {k})",
                show(quantile(&times, 0.5)),
                show(quantile(&times, 0.95)),
                show(max),
                times.len()
            ),
            Some(!times.is_empty() && max <= *target as f64),
        ));
    }
    rows.push(Row::new(
        format!(
            "detection's idle cost at {} open links (polls and sweeps, nothing changing)",
            links.len()
        ),
        "small, stated",
        format!(
            "Trengo {:.0} calls/h, GHL {:.0} calls/h at the documented limits ({} + {} calls in {} s × {k}; {} writes; the sweep's GHL allowance {ghl_allowance}/h, a rate scaled like the others, the polls on top)",
            per_hour(idle.0),
            per_hour(idle.1),
            idle.0,
            idle.1,
            stretch.as_secs(),
            idle_writes.0 + idle_writes.1,
        ),
        None,
    ));
    Ok(rows)
}

/// Every size of the run.
pub async fn run(s: Sizes) -> anyhow::Result<Vec<Row>> {
    let mut rows = Vec::new();
    for &n in s.staleness_links {
        rows.extend(one_size(n, s).await?);
    }
    Ok(rows)
}

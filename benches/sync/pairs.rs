//! Contact pairs (issue #15, `[contacts]`): the idle poll with pairs on, writes per changed
//! contact field, and the Trengo-side contact sweep's calls per 1,000 pairs with the minutes
//! they take at the documented limits. Calls are counted on the unpaced fakes (pacing changes
//! no count) and turned into minutes at the limits of `LimitsConfig::default()`.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use figment::providers::Env;
use serde_json::json;
use trengo_sync::clock::SystemClock;
use trengo_sync::config::{self, LimitsConfig};
use trengo_sync::ghl::{ContactFields, CustomFieldInput};
use trengo_sync::sim::world::{SimWorld, WorldOptions};
use trengo_sync::store::Store;
use trengo_sync::sync::engine::{Engine, PassKind};

use crate::Sizes;
use crate::table::Row;
use crate::workloads::{THROUGH_BRAKE, idle_poll, idle_row, settle};
use crate::world::{self, calls, minus, writes};

/// The test file holding the worked example (`CONTACTS`), read at compile time so the bench
/// measures exactly what the tests exercise.
const CONTACT_TESTS: &str = include_str!("../../tests/contact_pairs.rs");

/// The GHL search index lag of this world: an edit shows in the GHL poll once it has passed.
const LAG: Duration = Duration::from_millis(600);

/// Contact-field edits made on each side for the writes-per-change rows.
const EDITS: usize = 10;

/// Subscription tiers the GHL fake offers (its seed's `TIERS`).
const TIERS: [&str; 3] = ["Basic", "Pro", "Enterprise"];

/// The worked example: the `CONTACTS` const of `tests/contact_pairs.rs`.
fn worked_example() -> anyhow::Result<&'static str> {
    let start = CONTACT_TESTS
        .find("pub const CONTACTS: &str = r#\"")
        .ok_or_else(|| anyhow::anyhow!("tests/contact_pairs.rs has no CONTACTS const"))?;
    let body = &CONTACT_TESTS[start..];
    let open = body.find("r#\"").unwrap_or(0) + 3;
    let close = body
        .find("\"#;")
        .ok_or_else(|| anyhow::anyhow!("the CONTACTS const is not closed"))?;
    Ok(&body[open..close])
}

/// The worked example without the context that needs GHL per pair (next appointment, open
/// tasks): the sweep then reads only each pair's Trengo contact.
fn without_ghl_context(example: &str) -> String {
    example
        .lines()
        .filter(|l| !l.starts_with("next_appointment") && !l.starts_with("open_tasks"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// An engine (identity bound) on the world's configuration plus `extra`, its store at `store`.
async fn engine_with(
    world: &SimWorld,
    dir: &Path,
    store: &Path,
    name: &str,
    extra: &str,
) -> anyhow::Result<Engine> {
    let mut text = world.config_toml(store, "127.0.0.1:0".parse()?);
    text.push_str(extra);
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, text)?;
    let config = config::load_with(&path, Env::raw().filter(|_| false))?;
    // The engine dropped before may still hold the store's lock a moment.
    let mut tries = 0;
    let engine = loop {
        match Engine::from_config(&config, SystemClock::shared(), false) {
            Ok(e) => break e,
            Err(e) if tries < 20 => {
                tries += 1;
                eprintln!("pairs: waiting for the store ({e})");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => return Err(e.into()),
        }
    };
    engine.bind_identity().await?;
    Ok(engine)
}

/// A whole cycle (both polls, the whole sweep, the pair stage over every pair): calls per API,
/// calls by route, and the writes it made.
async fn cycle(world: &SimWorld, engine: &Engine) -> anyhow::Result<Measured> {
    let before = routes(world);
    let c0 = calls(world);
    let report = engine.pass(PassKind::Cycle, THROUGH_BRAKE).await?;
    anyhow::ensure!(report.braked.is_none(), "the brake stopped a cycle");
    Ok(Measured {
        calls: minus(calls(world), c0),
        routes: route_diff(&before, &routes(world)),
        writes: report.writes.trengo + report.writes.ghl,
    })
}

/// Cycles until one writes nothing (at most `n`).
async fn quiet_cycles(world: &SimWorld, engine: &Engine, n: usize) -> anyhow::Result<()> {
    for _ in 0..n {
        if cycle(world, engine).await?.writes == 0 {
            return Ok(());
        }
    }
    anyhow::bail!("no quiet cycle within {n}")
}

#[derive(Debug, Clone)]
struct Measured {
    calls: (u64, u64),
    routes: BTreeMap<String, i64>,
    writes: u64,
}

/// Requests served so far by `"API METHOD /route"`.
fn routes(world: &SimWorld) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for (api, snap) in [
        ("Trengo", world.trengo().counters()),
        ("GHL", world.ghl().counter_snapshot()),
    ] {
        for (route, n) in snap.by_route {
            out.insert(format!("{api} {route}"), n);
        }
    }
    out
}

/// `after − before` by route, the routes that moved only.
fn route_diff(
    before: &BTreeMap<String, u64>,
    after: &BTreeMap<String, u64>,
) -> BTreeMap<String, i64> {
    let mut keys: Vec<&String> = before.keys().chain(after.keys()).collect();
    keys.dedup();
    let mut out = BTreeMap::new();
    for k in keys {
        let d =
            after.get(k).copied().unwrap_or(0) as i64 - before.get(k).copied().unwrap_or(0) as i64;
        if d != 0 {
            out.insert(k.clone(), d);
        }
    }
    out
}

/// `a − b` by route, the routes that differ only.
fn routes_minus(a: &BTreeMap<String, i64>, b: &BTreeMap<String, i64>) -> BTreeMap<String, i64> {
    let mut out = BTreeMap::new();
    for k in a.keys().chain(b.keys()) {
        let d = a.get(k).copied().unwrap_or(0) - b.get(k).copied().unwrap_or(0);
        if d != 0 {
            out.insert(k.clone(), d);
        }
    }
    out
}

fn show_routes(r: &BTreeMap<String, i64>) -> String {
    r.iter()
        .map(|(k, n)| format!("{k} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The stored pairs: (GHL contact, Trengo contact).
fn stored_pairs(store: &Path) -> anyhow::Result<Vec<(String, i64)>> {
    let s = Store::open_read_only(store)?;
    let mut stmt = s
        .conn()
        .prepare("SELECT ghl_contact_id, trengo_contact_id FROM contact_pairs ORDER BY id")?;
    let rows = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// The Trengo contact field's id with this title.
async fn trengo_field(engine: &Engine, title: &str) -> anyhow::Result<i64> {
    use futures::StreamExt as _;
    let mut fields = std::pin::pin!(engine.trengo.custom_fields());
    while let Some(f) = fields.next().await {
        let f = f?;
        if f.title.as_deref() == Some(title) {
            return Ok(f.id);
        }
    }
    anyhow::bail!("no Trengo field {title}")
}

/// The GHL custom field's id with this key.
async fn ghl_field(engine: &Engine, key: &str) -> anyhow::Result<String> {
    engine
        .ghl
        .custom_fields()
        .await?
        .into_iter()
        .find(|f| f.field_key.as_deref() == Some(key))
        .map(|f| f.id)
        .ok_or_else(|| anyhow::anyhow!("no GHL field {key}"))
}

/// A tier other than the GHL contact's current one.
async fn other_tier(engine: &Engine, contact: &str, field: &str) -> anyhow::Result<&'static str> {
    let now = engine
        .ghl
        .contact(contact)
        .await?
        .custom_fields
        .into_iter()
        .find(|f| f.id == field)
        .map(|f| f.value)
        .unwrap_or(serde_json::Value::Null);
    let at = TIERS.iter().position(|t| now == json!(t)).unwrap_or(0);
    Ok(TIERS[(at + 1) % TIERS.len()])
}

/// The sweep's calls per 1,000 pairs, the minutes they take at the documented limits at full
/// rate, and how long the daemon's sweep takes over them at its default allowance
/// (`contacts.sweep_pairs_per_hour`), with the share of each limit that costs.
fn sweep_row(what: &str, pairs: usize, cost: (u64, u64), routes: &BTreeMap<String, i64>) -> Row {
    let limits = LimitsConfig::default();
    let per = |n: u64| n as f64 * 1000.0 / pairs.max(1) as f64;
    let (t, g) = (per(cost.0), per(cost.1));
    let trengo_min = t / f64::from(limits.trengo_per_minute);
    let ghl_per_minute =
        f64::from(limits.ghl_per_window) * 60.0 / limits.ghl_window.get().as_secs_f64();
    let ghl_min = g / ghl_per_minute;
    let full = trengo_min.max(ghl_min);
    let per_hour = f64::from(trengo_sync::config::ContactsConfig::default().sweep_pairs_per_hour);
    let daemon_min = 1000.0 / per_hour * 60.0;
    // Calls a minute the daemon's pair sweep makes, against each API's documented rate.
    let (t_rate, g_rate) = (t / 1000.0 * per_hour / 60.0, g / 1000.0 * per_hour / 60.0);
    Row::new(
        format!("contact sweep, calls per 1,000 pairs, nothing changed: {what}"),
        "stated (issue #15)",
        format!(
            "Trengo {t:.0}, GHL {g:.0} ({pairs} pairs: {}); at {}/min Trengo and {}/{} s GHL {full:.1} min (Trengo {trengo_min:.1}, GHL {ghl_min:.1}); the daemon's sweep at {per_hour:.0} pairs an hour: {daemon_min:.0} min, Trengo {t_rate:.1}/min ({:.0} % of its limit), GHL {g_rate:.1}/min ({:.0} %)",
            show_routes(routes),
            limits.trengo_per_minute,
            limits.ghl_per_window,
            limits.ghl_window.get().as_secs(),
            t_rate / f64::from(limits.trengo_per_minute) * 100.0,
            g_rate / ghl_per_minute * 100.0,
        ),
        None,
    )
}

/// One pass of `kind` after edits: the writes the fakes served (Trengo, GHL) against `expected`.
async fn writes_row(
    world: &SimWorld,
    engine: &Engine,
    kind: PassKind,
    figure: String,
    expected: (u64, u64),
) -> anyhow::Result<Row> {
    let w0 = writes(world);
    let report = engine.pass(kind, THROUGH_BRAKE).await?;
    let wrote = minus(writes(world), w0);
    Ok(Row::new(
        figure,
        format!("{} Trengo, {} GHL", expected.0, expected.1),
        format!(
            "Trengo {}, GHL {} (PassReport: Trengo {}, GHL {})",
            wrote.0, wrote.1, report.writes.trengo, report.writes.ghl
        ),
        Some(wrote == expected),
    ))
}

/// The rows of `--only pairs`: a world of `s.pair_people` people, each with a ticket in scope,
/// settled with the worked example on.
pub async fn run(s: Sizes) -> anyhow::Result<Vec<Row>> {
    let example = worked_example()?;
    let people = s.pair_people;
    let mut options = WorldOptions::unpaced(15, people, people);
    options.ghl.index_lag = LAG;
    let world = world::start(options).await?;
    world::label_every_ticket(&world)?;
    let dir = tempfile::tempdir()?;
    let store = dir.path().join("state.sqlite");
    let engine = engine_with(&world, dir.path(), &store, "example", example).await?;
    eprintln!("pairs: settling {people} tickets over {people} people with [contacts] on");
    settle(&engine).await?;
    quiet_cycles(&world, &engine, 4).await?;
    let pairs = stored_pairs(&store)?;
    let n = pairs.len();
    let mut rows = Vec::new();

    // 1. The idle poll, the field map resolved (its first resolution, once per process, reads
    // both catalogues: it happened while settling and is not a poll's cost).
    let (idle, idle_rows) = idle_poll(&world, &engine).await?;
    let mut row = idle_row(
        crate::workloads::active_links(&store)?.len(),
        idle,
        idle_rows,
    );
    row.figure = format!("{} and {n} contact pairs (worked example)", row.figure);
    rows.push(row);

    // 3. The contact sweep: the cycle with pairs minus the same cycle without `[contacts]`,
    // each on a warmed engine over the same store, nothing changed. One engine holds the
    // store at a time.
    let with_context = cycle(&world, &engine).await?;
    drop(engine);
    let plain = engine_with(&world, dir.path(), &store, "plain", "").await?;
    quiet_cycles(&world, &plain, 2).await?;
    let baseline = cycle(&world, &plain).await?;
    drop(plain);
    let trengo_only = engine_with(
        &world,
        dir.path(),
        &store,
        "trengo-only",
        &without_ghl_context(example),
    )
    .await?;
    quiet_cycles(&world, &trengo_only, 2).await?;
    let without_context = cycle(&world, &trengo_only).await?;
    for (what, m) in [
        ("no context needing GHL", &without_context),
        (
            "worked example (next_appointment, open_tasks on)",
            &with_context,
        ),
    ] {
        anyhow::ensure!(
            m.writes == 0 && baseline.writes == 0,
            "a settled cycle wrote"
        );
        let cost = minus(m.calls, baseline.calls);
        rows.push(sweep_row(
            what,
            n,
            cost,
            &routes_minus(&m.routes, &baseline.routes),
        ));
    }
    // One sweep pass (the daemon's `schedule.sweep`): the pairs it reads on Trengo.
    let r0 = routes(&world);
    trengo_only.pass(PassKind::Sweep, THROUGH_BRAKE).await?;
    let read = route_diff(&r0, &routes(&world))
        .get("Trengo GET /api/v2/contacts/{id}")
        .copied()
        .unwrap_or(0);
    rows.push(Row::new(
        "contact sweep, pairs read by one fresh sweep pass (contacts.sweep_pairs_per_hour 300: a minute's worth saved up)",
        "stated",
        format!("{read} Trengo contact reads"),
        None,
    ));
    drop(trengo_only);
    let engine = engine_with(&world, dir.path(), &store, "example", example).await?;
    quiet_cycles(&world, &engine, 2).await?;

    // 2. A changed contact field costs one write.
    let tier_t = trengo_field(&engine, "Subscription tier").await?;
    let tier_g = ghl_field(&engine, "contact.subscription_tier").await?;
    let m = EDITS.min(n / 2);
    for (ghl, _) in pairs.iter().take(m) {
        let tier = other_tier(&engine, ghl, &tier_g).await?;
        let update = ContactFields {
            custom_fields: Some(vec![CustomFieldInput::by_id(tier_g.clone(), json!(tier))]),
            ..ContactFields::default()
        };
        engine.ghl.update_contact(ghl, &update).await?;
    }
    tokio::time::sleep(LAG * 2).await;
    rows.push(
        writes_row(
            &world,
            &engine,
            PassKind::Poll,
            format!("writes for {m} tier changes in GHL (one poll)"),
            (m as u64, 0),
        )
        .await?,
    );
    tokio::time::sleep(LAG * 2).await;
    for (ghl, trengo) in pairs.iter().skip(m).take(m) {
        let tier = other_tier(&engine, ghl, &tier_g).await?;
        engine
            .trengo
            .set_contact_custom_field(*trengo, tier_t, tier)
            .await?;
    }
    rows.push(
        writes_row(
            &world,
            &engine,
            PassKind::Cycle,
            format!("writes for {m} tier changes in Trengo (found by the cycle's sweep)"),
            (0, m as u64),
        )
        .await?,
    );
    // Echoes: both sides' writes must not come back.
    tokio::time::sleep(LAG * 2).await;
    let w0 = writes(&world);
    engine.pass(PassKind::Poll, THROUGH_BRAKE).await?;
    engine.pass(PassKind::Cycle, THROUGH_BRAKE).await?;
    let echo = minus(writes(&world), w0);
    rows.push(Row::new(
        "echo writes after those changes (a poll and a cycle)",
        "0",
        format!("{}", echo.0 + echo.1),
        Some(echo == (0, 0)),
    ));
    world.shutdown().await;
    Ok(rows)
}

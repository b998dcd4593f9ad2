//! The benchmark's world: both fakes with rate limits scaled by `K`, every ticket in scope,
//! an engine on them, and the counters every figure reads (calls per API, store rows written).

use std::path::Path;
use std::time::Duration;

use tokio::net::TcpListener;
use trengo_sync::clock::SystemClock;
use trengo_sync::sim::world::{LINK_LABEL, SimWorld, WorldOptions};
use trengo_sync::sync::engine::Engine;

/// Documented Trengo limit: 120 requests a minute (trengo-api.md §2 [OFF]).
pub const TRENGO_PER_MINUTE: u32 = 120;
/// Documented GHL burst limit: 100 requests per 10 s (ghl-api.md §2).
pub const GHL_PER_10S: u32 = 100;

/// A world of `tickets` tickets over `people` people whose limits are the documented ones
/// times `k`, with the GHL index lag divided by `k` (it is time too).
pub fn options(seed: u64, tickets: usize, people: usize, k: u32) -> WorldOptions {
    let mut o = WorldOptions {
        seed,
        tickets,
        contacts: people,
        ..WorldOptions::default()
    };
    o.trengo.rate_limit_per_minute = TRENGO_PER_MINUTE * k;
    o.ghl.burst_limit = GHL_PER_10S * k;
    o.ghl.daily_limit = o.ghl.daily_limit.saturating_mul(k);
    o.ghl.index_lag /= k.max(1);
    o
}

/// Starts a world on two loopback ports.
pub async fn start(options: WorldOptions) -> anyhow::Result<SimWorld> {
    Ok(SimWorld::start(
        TcpListener::bind("127.0.0.1:0").await?,
        TcpListener::bind("127.0.0.1:0").await?,
        options,
    )?)
}

/// Puts every ticket in the sync's scope (the link label), as an account that labels all its
/// tickets would be. Done on the fake's state: no call is counted.
pub fn label_every_ticket(world: &SimWorld) -> anyhow::Result<()> {
    let label = world
        .trengo()
        .label_id(LINK_LABEL)
        .ok_or_else(|| anyhow::anyhow!("the world has no {LINK_LABEL} label"))?;
    for id in world.trengo().ticket_ids() {
        let has = world.trengo().ticket_json(id)?["labels"]
            .as_array()
            .is_some_and(|ls| ls.iter().any(|l| l["id"] == label));
        if !has {
            world.trengo().add_label(id, label)?;
        }
    }
    Ok(())
}

/// An engine on the world's configuration with its store at `store`, identity bound.
pub async fn engine(world: &SimWorld, store: &Path) -> anyhow::Result<Engine> {
    let config = world.config(store, "127.0.0.1:0".parse()?)?;
    let engine = Engine::from_config(&config, SystemClock::shared(), false)?;
    engine.bind_identity().await?;
    Ok(engine)
}

/// Requests served so far: (Trengo, GHL).
pub fn calls(world: &SimWorld) -> (u64, u64) {
    (
        world.trengo().counters().total,
        world.ghl().counter_snapshot().total,
    )
}

/// Successful writes served so far: (Trengo, GHL).
pub fn writes(world: &SimWorld) -> (u64, u64) {
    (
        world.trengo().counters().writes,
        world.ghl().counter_snapshot().writes,
    )
}

/// Rows the engine's own connection has inserted, updated or deleted since it opened
/// (SQLite's `total_changes()`).
pub async fn rows_written(engine: &Engine) -> anyhow::Result<u64> {
    Ok(engine.store.call(|s| Ok(s.conn().total_changes())).await?)
}

/// The floor of a workload: the calls it made on each API divided by that API's configured
/// rate, the larger of the two (the APIs are paced independently).
pub fn floor(calls: (u64, u64), k: u32) -> Duration {
    let trengo = calls.0 as f64 / (f64::from(TRENGO_PER_MINUTE * k) / 60.0);
    let ghl = calls.1 as f64 / (f64::from(GHL_PER_10S * k) / 10.0);
    Duration::from_secs_f64(trengo.max(ghl))
}

/// The serial floor: both APIs' paced times added, as a single serial loop must spend them.
pub fn serial_floor(calls: (u64, u64), k: u32) -> Duration {
    let trengo = calls.0 as f64 / (f64::from(TRENGO_PER_MINUTE * k) / 60.0);
    let ghl = calls.1 as f64 / (f64::from(GHL_PER_10S * k) / 10.0);
    Duration::from_secs_f64(trengo + ghl)
}

/// `a − b` per API.
pub fn minus(a: (u64, u64), b: (u64, u64)) -> (u64, u64) {
    (a.0 - b.0, a.1 - b.1)
}

/// A fake's admin answer as an `anyhow` result (the GHL fake's error is its HTTP body).
pub fn fake<T, E: std::fmt::Debug>(r: Result<T, E>) -> anyhow::Result<T> {
    r.map_err(|e| anyhow::anyhow!("the fake refused an edit: {e:?}"))
}

//! Storms: both fakes answer a large share of requests with 429, 5xx or a dropped connection
//! for a stretch while a real daemon process runs and users keep editing. The daemon must not
//! crash, must not spin (the requests it makes during the storm stay within what its rate
//! budgets allow: a count bound, not a timing one), and once the storm passes everything
//! converges with no duplicate and no lost edit.
//!
//! `TRENGO_SYNC_LONG=1`: a three-minute storm instead of 20 seconds.

mod support;

use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand::rngs::StdRng;
use support::reliability::{
    OneWayEdits, links_so_far, long_mode, read_sides, settled_links, signal_and_wait,
    spawn_trengo_sync,
};
use support::write_config;
use trengo_sync::sim::faults::Faults;
use trengo_sync::sim::world::WorldOptions;
use trengo_sync::store::{self, Store};

fn requests(world: &trengo_sync::sim::world::SimWorld) -> (u64, u64) {
    (
        world.trengo().counters().total,
        world.ghl().counter_snapshot().total,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storm_of_429s_5xx_and_drops_neither_crashes_nor_spins_and_converges_after() {
    let storm = Duration::from_secs(if long_mode() { 180 } else { 20 });
    // The fakes keep their documented limits (Trengo 120 a minute, GHL 100 per 10 s), and the
    // world's configuration gives the daemon the same budgets.
    let options = WorldOptions {
        seed: 51,
        tickets: 12,
        contacts: 6,
        ..WorldOptions::default()
    };
    let (trengo_per_minute, ghl_per_window, ghl_window) = (
        u64::from(options.trengo.rate_limit_per_minute),
        u64::from(options.ghl.burst_limit),
        options.ghl.burst_window,
    );
    let world = support::start_world(options).await;
    let dir = tempfile::tempdir().unwrap();
    let (config, _) = write_config(&world, &dir);
    let log = dir.path().join("daemon.log");
    let env = [
        // Failed items come back soon after the storm rather than a minute later.
        ("TRENGO_SYNC__LIMITS__RETRY_BASE", "1s"),
        ("TRENGO_SYNC__LIMITS__RETRY_MAX", "5s"),
        ("RUST_LOG", "trengo_sync=debug"),
    ];
    let mut daemon = spawn_trengo_sync(&["run"], &config, &env, Some(&log));
    let linked = settled_links(&world, &support::store_path(&dir), Duration::from_secs(6)).await;

    let faults = Faults {
        server_error_rate: 0.2,
        drop_rate: 0.15,
        rate_limit_rate: 0.25,
        latency_jitter_ms: 50,
        ..Faults::default()
    };
    let (trengo_before, ghl_before) = requests(&world);
    world.trengo().set_faults(faults.clone());
    world.ghl().set_faults(faults);
    let started = Instant::now();
    let mut rng = StdRng::seed_from_u64(51);
    let mut edits = OneWayEdits::default();
    while started.elapsed() < storm {
        edits.make(&world, &linked, &mut rng);
        assert!(
            daemon.try_wait().unwrap().is_none(),
            "the daemon died in the storm; its log:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    world.trengo().set_faults(Faults::default());
    world.ghl().set_faults(Faults::default());
    let lasted = started.elapsed();
    let (trengo_after, ghl_after) = requests(&world);
    let (trengo_sent, ghl_sent) = (trengo_after - trengo_before, ghl_after - ghl_before);

    // The budgets' promise: any window holds fewer requests than the limit, so a storm of
    // length D sees at most limit × (D / window + 1) requests per API, however many answers
    // fail. A daemon retrying in a tight loop would blow through this many times over.
    let windows =
        |window: Duration| (lasted.as_secs_f64() / window.as_secs_f64()).ceil() as u64 + 1;
    let trengo_bound = trengo_per_minute * windows(Duration::from_secs(60));
    let ghl_bound = ghl_per_window * windows(ghl_window);
    eprintln!(
        "storm of {lasted:?}: Trengo saw {trengo_sent} requests (bound {trengo_bound}), \
         GHL {ghl_sent} (bound {ghl_bound})"
    );
    assert!(
        trengo_sent > 0 && ghl_sent > 0,
        "the daemon made no request in the storm"
    );
    assert!(
        trengo_sent <= trengo_bound,
        "Trengo: {trengo_sent} requests > {trengo_bound}"
    );
    assert!(
        ghl_sent <= ghl_bound,
        "GHL: {ghl_sent} requests > {ghl_bound}"
    );

    // After the storm: converged, no duplicates, no lost edit, and still the same process.
    let reader_dir = tempfile::tempdir().unwrap();
    let reader = support::engine(&world, &reader_dir).await;
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        // Reading both sides spends the same paced budget as the daemon: read only once it
        // has gone quiet, and not more than every few seconds.
        support::wait_until_writes_stop(&world, Duration::from_secs(6), Duration::from_secs(60))
            .await;
        // Links made during the storm (tasks or tickets whose creation failed and was retried)
        // count too: a contact's labels are the union over all its linked tickets.
        let sides = read_sides(&reader, &links_so_far(&support::store_path(&dir))).await;
        let mut wrong = sides.disagreements();
        wrong.extend(edits.lost_fields(&sides));
        if wrong.is_empty() {
            break;
        }
        if Instant::now() > deadline {
            let log = std::fs::read_to_string(&log).unwrap_or_default();
            let log: Vec<&str> = log
                .lines()
                .filter(|l| {
                    l.contains("WARN")
                        || l.contains("ERROR")
                        || wrong.iter().any(|w| {
                            w.split_whitespace()
                                .nth(1)
                                .is_some_and(|id| l.contains(id.trim_end_matches(':')))
                        })
                })
                .collect();
            let log = log[log.len().saturating_sub(150)..].join("\n");
            let store = Store::open_read_only(support::store_path(&dir)).unwrap();
            let retries = store::retries::all(store.conn()).unwrap_or_default();
            panic!(
                "not converged 90 s after the storm:\n{}\nretries: {retries:#?}\nlog:\n{log}",
                wrong.join("\n")
            );
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
    assert!(
        daemon.try_wait().unwrap().is_none(),
        "the daemon died after the storm"
    );
    assert_eq!(signal_and_wait(&mut daemon, "TERM").code(), Some(0));
    let output = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        !output.contains("panicked"),
        "the daemon panicked:\n{output}"
    );
    // Notes: the sweep re-reads only links still open (sync-model.md §4.6) and a GHL note does
    // not bump its contact (the fake's pessimistic default, ghl-api.md), so a note on a
    // contact whose links are all done crosses at the reconcile (nightly; every ten minutes in
    // this world). Run that reconcile now, from the daemon's store.
    let engine = support::engine(&world, &dir).await;
    support::until_quiet(&engine, 6).await;
    let lost = edits.lost_notes(&world, &engine).await;
    assert!(lost.is_empty(), "{lost:#?}");
    let (active, duplicates) = support::audit(&world, &dir, &reader).await;
    assert!(
        active >= linked.len(),
        "links were lost: {active} < {}",
        linked.len()
    );
    assert!(duplicates.is_empty(), "duplicates: {duplicates:#?}");
    world.shutdown().await;
}

//! CPU time and peak RSS of a polling pass over a store of 100k links with nothing changed,
//! measured in a child process (the benchmark re-executed with [`CHILD_FLAG`]) that reads its
//! own `/proc/self/stat` and `/proc/self/status`, so the fakes' memory is not counted.

use std::path::Path;
use std::process::Command;

use chrono::Utc;
use serde_json::{Value, json};
use trengo_sync::clock::SystemClock;
use trengo_sync::store::{self, Store};
use trengo_sync::sync::BaseName;
use trengo_sync::sync::engine::{Engine, GHL_CURSOR, PassKind, PassOptions, TRENGO_CURSOR};

use crate::Sizes;
use crate::table::Row;
use crate::world::{self, calls, minus};

/// The flag that makes the benchmark run as the measured child.
pub const CHILD_FLAG: &str = "--scale-child";

/// Seeds `n` links (four per contact) with their bases straight into the store through the
/// store API, and sets both cursors to now: the state of a daemon that has synced them all.
fn seed(path: &Path, n: usize) -> anyhow::Result<()> {
    let mut st = Store::open(path)?;
    let now = Utc::now();
    let tx = st.transaction()?;
    for i in 0..n {
        let contact = format!("benchContact{:07}", i / 4);
        let link = store::links::insert(
            &tx,
            &store::links::NewLink {
                ticket_id: 5_000_000 + i as i64,
                task_id: format!("benchTask{i:08}"),
                ghl_contact_id: contact.clone(),
                trengo_contact_id: Some(900_000 + (i / 4) as i64),
                origin: store::links::Origin::Trengo,
            },
            now,
        )?;
        store::bases::put(&tx, link.id, BaseName::Status, &json!(i % 3 == 0), now)?;
        store::bases::put(
            &tx,
            link.id,
            BaseName::TrengoSeen,
            &json!(format!("{i:016x}")),
            now,
        )?;
        store::bases::put(&tx, link.id, BaseName::NotesUpto, &json!(i as i64 * 7), now)?;
        if i % 4 == 0 {
            store::bases::put_contact(
                &tx,
                &contact,
                BaseName::GhlSeen,
                &json!(format!("{i:016x}")),
                now,
            )?;
            store::bases::put_contact(&tx, &contact, BaseName::Tags, &json!(["trengo:vip"]), now)?;
        }
    }
    store::cursors::put(&tx, TRENGO_CURSOR, &now.to_rfc3339(), now)?;
    store::cursors::put(&tx, GHL_CURSOR, &now.to_rfc3339(), now)?;
    tx.commit()?;
    Ok(())
}

/// Seeds the store, runs the child, and reads what it measured.
pub async fn run(s: Sizes) -> anyhow::Result<Vec<Row>> {
    let world = world::start(world::options(4, 10, 5, 1)).await?;
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("state.sqlite");
    eprintln!("scale: seeding {} links into the store", s.scale_links);
    seed(&path, s.scale_links)?;
    let config = dir.path().join("config.toml");
    std::fs::write(&config, world.config_toml(&path, "127.0.0.1:0".parse()?))?;
    let c0 = calls(&world);
    let exe = std::env::current_exe()?;
    let child = tokio::task::spawn_blocking(move || {
        Command::new(exe)
            .arg(CHILD_FLAG)
            .arg(&config)
            .env("RUST_LOG", "error")
            .output()
    })
    .await??;
    anyhow::ensure!(
        child.status.success(),
        "the measured child failed: {}",
        String::from_utf8_lossy(&child.stderr)
    );
    let used = minus(calls(&world), c0);
    let out: Value = serde_json::from_slice(&child.stdout)?;
    let f = |k: &str| out[k].as_f64().unwrap_or(f64::NAN);
    world.shutdown().await;
    Ok(vec![
        Row::new(
            format!(
                "CPU time of a polling pass over {} links, nothing changed",
                s.scale_links
            ),
            "< 1 s",
            format!(
                "{:.3} s for the pass ({:.3} s for the whole process: start, store open, identity check, two passes); {} rows written, {} calls",
                f("pass_cpu_s"),
                f("process_cpu_s"),
                f("rows"),
                used.0 + used.1
            ),
            Some(f("process_cpu_s") < 1.0),
        ),
        Row::new(
            format!("peak RSS of that process ({} links)", s.scale_links),
            "< 100 MB",
            format!("{:.1} MB (VmHWM)", f("vmhwm_mb")),
            Some(f("vmhwm_mb") < 100.0),
        ),
    ])
}

/// Clock ticks per second of `/proc/self/stat` (`getconf CLK_TCK`; 100 on Linux).
fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// User plus system CPU seconds of this process so far.
fn cpu_seconds(ticks: f64) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    // Fields after the command name, which is in parentheses and may hold spaces: the
    // first is field 3 (state), so utime (14) and stime (15) are the 12th and 13th.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .ok_or_else(|| anyhow::anyhow!("unexpected /proc/self/stat"))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let num = |i: usize| -> anyhow::Result<f64> {
        Ok(fields
            .get(i)
            .ok_or_else(|| anyhow::anyhow!("short /proc/self/stat"))?
            .parse::<f64>()?)
    };
    Ok((num(11)? + num(12)?) / ticks)
}

/// Peak resident set size of this process, in MB (`VmHWM`).
fn peak_rss_mb() -> anyhow::Result<f64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let kb = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .ok_or_else(|| anyhow::anyhow!("no VmHWM in /proc/self/status"))?;
    Ok(kb / 1024.0)
}

/// The child: the engine on the seeded store, two polling passes, then what it cost.
pub fn child(config: &str) -> anyhow::Result<()> {
    let ticks = clock_ticks();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let (pass_cpu, rows) = runtime.block_on(async {
        let config = trengo_sync::config::load(Path::new(config))?;
        let engine = Engine::from_config(&config, SystemClock::shared(), false)?;
        engine.bind_identity().await?;
        let rows0 = world::rows_written(&engine).await?;
        let cpu0 = cpu_seconds(ticks)?;
        for _ in 0..2 {
            engine.pass(PassKind::Poll, PassOptions::default()).await?;
        }
        let cpu1 = cpu_seconds(ticks)?;
        let rows = world::rows_written(&engine).await? - rows0;
        anyhow::Ok(((cpu1 - cpu0) / 2.0, rows))
    })?;
    println!(
        "{}",
        json!({
            "pass_cpu_s": pass_cpu,
            "process_cpu_s": cpu_seconds(ticks)?,
            "vmhwm_mb": peak_rss_mb()?,
            "rows": rows,
        })
    );
    Ok(())
}

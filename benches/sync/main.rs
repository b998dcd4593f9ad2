//! The benchmark of issue #7: API cost, latency and scale of the real engine and daemon
//! against the in-process fakes on loopback. `cargo bench --bench sync` runs it in full;
//! `cargo bench --bench sync -- --quick` runs every figure at a small size.
//!
//! Rate limits are simulated: both fakes' limits and the daemon's configured limits are
//! multiplied by the same factor `K` (and the GHL search index lag divided by it), so a
//! workload that would wait hours on the real limits takes minutes while its time ÷ floor
//! stays what it would be. Latency figures run on the documented limits (`K = 1`) in real time.
//! See `docs/benchmarks.md` for what each figure means and how it is measured.

mod latency;
mod pairs;
mod scale;
mod staleness;
mod table;
mod workloads;
mod world;

use std::time::Duration;

use table::Row;

/// Sizes of one run.
#[derive(Debug, Clone, Copy)]
pub struct Sizes {
    /// Tickets (all linked) for the edit workload and the 1k idle poll.
    pub edit_links: usize,
    /// Random edits on them.
    pub edits: usize,
    /// Existing tickets for the backfill (and the 10k idle poll).
    pub backfill_tickets: usize,
    /// Latency samples per kind.
    pub latency_samples: usize,
    /// Links seeded for the CPU/RSS pass.
    pub scale_links: usize,
    /// Rate-limit factor `K` of the edit workload.
    pub k: u32,
    /// Rate-limit factor `K` of the backfill (larger: it makes tens of thousands of calls).
    pub k_backfill: u32,
    /// Open links of each staleness run.
    pub staleness_links: &'static [usize],
    /// Edits of each kind per staleness run.
    pub staleness_samples: usize,
    /// Rate-limit and schedule factor `K` of the staleness runs.
    pub staleness_k: u32,
    /// Largest page the GHL fake's task search serves in the staleness runs (its switch
    /// `task_search_limit_cap`): 25, GHL's documented default and the fake's, unless
    /// `--ghl-task-page N` says otherwise (the client asks for 100; whether GHL serves that
    /// many is not documented).
    pub staleness_task_page: u32,
    /// How long (real time) an edit is watched before it is reported as "> cap".
    pub staleness_cap: Duration,
    /// People (and as many tickets, all in scope) of the contact-pair world: each person has a
    /// ticket, so each is linked and paired.
    pub pair_people: usize,
}

const FULL: Sizes = Sizes {
    edit_links: 1_000,
    edits: 1_000,
    backfill_tickets: 10_000,
    latency_samples: 12,
    scale_links: 100_000,
    k: 25,
    k_backfill: 100,
    staleness_links: &[1_000, 10_000],
    staleness_samples: 6,
    staleness_k: 30,
    staleness_task_page: 25,
    staleness_cap: Duration::from_secs(12 * 60),
    pair_people: 1_000,
};

const QUICK: Sizes = Sizes {
    edit_links: 100,
    edits: 100,
    backfill_tickets: 300,
    latency_samples: 2,
    scale_links: 5_000,
    k: 25,
    k_backfill: 25,
    staleness_links: &[100],
    staleness_samples: 2,
    staleness_k: 30,
    staleness_task_page: 25,
    staleness_cap: Duration::from_secs(60),
    pair_people: 60,
};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // The child of the CPU/RSS figure: one pass in a process of its own.
    if let Some(at) = args.iter().position(|a| a == scale::CHILD_FLAG) {
        let config = args
            .get(at + 1)
            .ok_or_else(|| anyhow::anyhow!("{} needs a configuration path", scale::CHILD_FLAG))?;
        return scale::child(config);
    }
    let quick = args.iter().any(|a| a == "--quick");
    let sizes = if quick { QUICK } else { FULL };
    let only: Option<&str> = value_of(&args, "--only").map(String::as_str);
    // `--links N`: the staleness figure at N open links only.
    let links: Option<usize> = value_of(&args, "--links").map(|n| n.parse()).transpose()?;
    // `--ghl-task-page N`: the GHL fake serves task searches N to a page (default 25).
    let task_page: Option<u32> = value_of(&args, "--ghl-task-page")
        .map(|n| n.parse())
        .transpose()?;
    let sizes = Sizes {
        staleness_links: match links {
            Some(n) => Box::leak(vec![n].into_boxed_slice()),
            None => sizes.staleness_links,
        },
        staleness_task_page: task_page.unwrap_or(sizes.staleness_task_page),
        ..sizes
    };
    // `TRENGO_SYNC_BENCH_LOG=<filter>`: the daemon's log on stderr (for example
    // `trengo_sync::sync=debug` for the sweep's timings), to see why a figure is what it is.
    if let Ok(filter) = std::env::var("TRENGO_SYNC_BENCH_LOG") {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_writer(std::io::stderr)
            .init();
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    eprintln!(
        "trengo-sync benchmark ({}), rate limits ×{} (edits) and ×{} (backfill) where simulated",
        if quick { "quick" } else { "full" },
        sizes.k,
        sizes.k_backfill
    );
    let mut rows: Vec<Row> = Vec::new();
    let wants = |name: &str| only.is_none_or(|o| o == name);
    // Each part's rows are printed as soon as they are measured, and the whole table at the end.
    let mut keep = |new: Vec<Row>| {
        eprint!("{}", table::render(&new));
        rows.extend(new);
    };
    runtime.block_on(async {
        if wants("edits") {
            keep(workloads::edits(sizes).await?);
        }
        if wants("backfill") {
            keep(workloads::backfill(sizes).await?);
        }
        if wants("latency") {
            keep(latency::run(sizes).await?);
        }
        if wants("staleness") {
            keep(staleness::run(sizes).await?);
        }
        if wants("pairs") {
            keep(pairs::run(sizes).await?);
        }
        anyhow::Ok(())
    })?;
    if wants("scale") {
        keep(runtime.block_on(scale::run(sizes))?);
    }
    println!("{}", table::render(&rows));
    Ok(())
}

/// The argument after `flag`, if `flag` is given.
fn value_of<'a>(args: &'a [String], flag: &str) -> Option<&'a String> {
    args.iter()
        .position(|a| a == flag)
        .and_then(|i| args.get(i + 1))
}

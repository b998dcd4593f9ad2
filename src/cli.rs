//! The `trengo-sync` command line.
//!
//! Parses arguments with clap, loads the configuration, sets up logging, runs one command,
//! and maps its outcome to an exit code: 0 success, 1 failure, 2 bad arguments (clap),
//! 78 bad configuration (`EX_CONFIG`).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use crate::config::{self, Config, ConfigError, LogFormat};

/// Exit code for a command that failed for a reason other than its configuration.
pub const EXIT_FAILURE: u8 = 1;

/// Exit code of `once` when some items failed (they are in the retry table).
pub const EXIT_ITEMS_FAILED: u8 = 3;

/// Exit code of `once` when the brake stopped the pass (nothing was written).
pub const EXIT_BRAKE: u8 = 4;

/// Two-way sync between Trengo tickets and GoHighLevel tasks.
#[derive(Debug, Parser)]
#[command(name = "trengo-sync", version, about, long_about = None)]
pub struct Cli {
    /// Configuration file (TOML); `TRENGO_SYNC__SECTION__KEY` variables override it.
    #[arg(long, global = true, value_name = "PATH", env = "TRENGO_SYNC_CONFIG",
          default_value = config::DEFAULT_PATH)]
    pub config: PathBuf,

    /// Log format; overrides `log.format`.
    #[arg(long, global = true, value_enum)]
    pub log_format: Option<LogFormatArg>,

    /// More log output (repeat for more).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// `resolve --take` values.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum TakeSide {
    /// Trengo's value wins.
    Trengo,
    /// GHL's value wins.
    Ghl,
}

/// `--log-format` values.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormatArg {
    /// Readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate the configuration, look at the store, and report what is enabled.
    Check,
    /// Run one whole sync cycle (both polls, scope discovery, the whole sweep, due retries),
    /// then exit; exit 3 if any item failed. Run repeatedly (from a timer), it converges.
    Once {
        /// Apply even when the brake would stop the pass (many links closing at once).
        #[arg(long)]
        allow_mass_change: bool,
        /// Only the two polls and due retries (the behaviour before discovery and listing
        /// sweeps): cheaper, but changes that move no watermark are not seen.
        #[arg(long)]
        polls_only: bool,
    },
    /// Show what `once` would do, writing nothing (also before the first run).
    Plan {
        /// Only what the polls would find (as `once --polls-only`).
        #[arg(long)]
        polls_only: bool,
    },
    /// Run the daemon: schedules, webhooks, status endpoint; stops on SIGTERM or Ctrl-C.
    Run,
    /// Both sides' current values of one link, its bases, last actions and pending errors.
    Explain {
        /// The link id (`trengo-sync status` and `conflicts` show them).
        link: i64,
    },
    /// List the conflicts held for a person (fields whose policy is `manual`).
    Conflicts,
    /// Settle one held conflict: the chosen side's value wins on the next pass.
    Resolve {
        /// The link id.
        link: i64,
        /// The field: status, tags or assignee.
        field: crate::sync::policy::Field,
        /// Which side's value wins.
        #[arg(long, value_enum)]
        take: TakeSide,
    },
    /// Show the daemon's status (from its endpoint, or from the store when it is down).
    Status,
    /// Serve both API fakes (for trying a configuration without real accounts).
    Sim {
        /// Port of the Trengo fake on 127.0.0.1 (0 picks a free one).
        #[arg(long, default_value_t = 0)]
        trengo_port: u16,
        /// Port of the GHL fake on 127.0.0.1 (0 picks a free one).
        #[arg(long, default_value_t = 0)]
        ghl_port: u16,
        /// Seed of the simulated data.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Tickets to seed.
        #[arg(long, default_value_t = crate::sim::world::DEFAULT_TICKETS)]
        tickets: usize,
    },
    /// The daemon on the embedded fakes with scripted edits; needs no config and no account.
    Demo {
        /// How long to run, in seconds.
        #[arg(long, default_value_t = 60)]
        duration: u64,
        /// Seed of the simulated data.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
}

/// Runs the command line; returns the process exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(Failure::Config(e)) => {
            eprintln!("error: {e}");
            ExitCode::from(config::EXIT_CONFIG as u8)
        }
        Err(Failure::Other(e)) => {
            eprintln!("error: {e:#}");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

/// Why a command failed.
#[derive(Debug)]
pub enum Failure {
    /// The configuration is wrong: exit 78.
    Config(ConfigError),
    /// Anything else: exit 1.
    Other(anyhow::Error),
}

impl From<ConfigError> for Failure {
    fn from(e: ConfigError) -> Self {
        Failure::Config(e)
    }
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Failure::Other(e)
    }
}

fn run(cli: Cli) -> Result<ExitCode, Failure> {
    // The commands that need no configuration file.
    match &cli.command {
        Command::Sim {
            trengo_port,
            ghl_port,
            seed,
            tickets,
        } => {
            crate::logging::init(LogFormat::Text, "warn", cli.verbose);
            let options = crate::sim::world::ServeOptions {
                trengo_port: *trengo_port,
                ghl_port: *ghl_port,
                seed: *seed,
                tickets: *tickets,
            };
            runtime()?.block_on(crate::sim::world::serve(options, async {
                let _ = tokio::signal::ctrl_c().await;
            }))?;
            return Ok(ExitCode::SUCCESS);
        }
        Command::Demo { duration, seed } => {
            crate::logging::init(LogFormat::Text, "warn", cli.verbose);
            runtime()?.block_on(crate::demo::run(
                std::time::Duration::from_secs(*duration),
                *seed,
            ))?;
            return Ok(ExitCode::SUCCESS);
        }
        _ => {}
    }
    let config = config::load(&cli.config)?;
    init_logging(&cli, &config);
    match cli.command {
        Command::Once {
            allow_mass_change,
            polls_only,
        } => runtime()?.block_on(once(&config, allow_mass_change, polls_only)),
        Command::Plan { polls_only } => runtime()?.block_on(plan(&config, polls_only)),
        Command::Run => runtime()?.block_on(daemon(config)),
        Command::Conflicts => {
            let store = crate::store::Store::open_read_only(&config.store.path)
                .map_err(anyhow::Error::new)?;
            print!("{}", crate::inspect::conflicts_report(&store)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Resolve { link, field, take } => {
            let mut store =
                crate::store::Store::open(&config.store.path).map_err(anyhow::Error::new)?;
            let text = crate::inspect::resolve(
                &mut store,
                link,
                field,
                matches!(take, TakeSide::Trengo),
                chrono::Utc::now(),
            )?;
            print!("{text}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Explain { link } => {
            let read_only = config.ghl.oauth.is_none();
            let text = runtime()?.block_on(async {
                let engine = crate::sync::engine::Engine::from_config(
                    &config,
                    crate::clock::SystemClock::shared(),
                    read_only,
                )?;
                crate::inspect::explain(&engine, link).await
            })?;
            print!("{text}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Status => {
            let text = runtime()?.block_on(crate::daemon::status::status_command(
                &config,
                crate::clock::SystemClock::shared(),
            ))?;
            print!("{text}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Sim { .. } | Command::Demo { .. } => Ok(ExitCode::SUCCESS),
        Command::Check => {
            print!("{}", check_report(&cli.config, &config));
            println!("{}", store_report(&config.store.path)?);
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn daemon(config: Config) -> Result<ExitCode, Failure> {
    let listener = tokio::net::TcpListener::bind(config.http.listen)
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "cannot listen on {} (http.listen): {e}; choose a free address",
                config.http.listen
            )
        })?;
    let daemon = crate::daemon::run::Daemon::new(config, listener);
    daemon.run(stop_signal()).await?;
    Ok(ExitCode::SUCCESS)
}

/// Resolves on SIGTERM (systemd's stop) or SIGINT (Ctrl-C). The handlers are installed
/// when this is called, before the daemon starts any work, so a stop signal that arrives
/// during the first pass is queued instead of killing the process.
fn stop_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let term = signal(SignalKind::terminate()).ok();
        let interrupt = signal(SignalKind::interrupt()).ok();
        async move {
            match (term, interrupt) {
                (Some(mut t), Some(mut i)) => {
                    tokio::select! {
                        _ = t.recv() => {}
                        _ = i.recv() => {}
                    }
                }
                (Some(mut t), None) => {
                    t.recv().await;
                }
                (None, Some(mut i)) => {
                    i.recv().await;
                }
                (None, None) => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    async move {
        let _ = tokio::signal::ctrl_c().await;
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Runtime::new()
        .map_err(|e| Failure::Other(anyhow::anyhow!("cannot start the async runtime: {e}")))
}

/// What `once` and `plan` detect: one whole cycle, or the polls alone.
fn cycle_kind(polls_only: bool) -> crate::sync::engine::PassKind {
    use crate::sync::engine::PassKind;
    if polls_only {
        PassKind::Poll
    } else {
        PassKind::Cycle
    }
}

/// Sweep progress on stderr, when stderr is a terminal (a timer's journal gets none).
fn terminal_progress() -> Option<crate::sync::engine::Progress> {
    use std::io::{IsTerminal as _, Write as _};
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let last = std::sync::Mutex::new(std::time::Instant::now());
    Some(std::sync::Arc::new(move |line: &str| {
        let mut last = last.lock().unwrap_or_else(|e| e.into_inner());
        if last.elapsed() >= std::time::Duration::from_millis(500) {
            *last = std::time::Instant::now();
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[2K{line}");
            let _ = err.flush();
        }
    }))
}

async fn once(
    config: &Config,
    allow_mass_change: bool,
    polls_only: bool,
) -> Result<ExitCode, Failure> {
    use crate::sync::engine::{Engine, PassOptions};
    let mut engine = Engine::from_config(config, crate::clock::SystemClock::shared(), false)
        .map_err(anyhow::Error::new)?;
    engine.progress = terminal_progress();
    engine.bind_identity().await.map_err(anyhow::Error::new)?;
    let report = engine
        .pass(
            cycle_kind(polls_only),
            PassOptions {
                dry_run: false,
                allow_mass_change,
            },
        )
        .await
        .map_err(anyhow::Error::new)?;
    if engine.progress.is_some() {
        eprint!("\r\x1b[2K");
    }
    for plan in &report.plans {
        if !plan.is_empty() {
            print!("{plan}");
        }
    }
    println!(
        "pass done: {} items applied, {} writes to Trengo, {} to GHL, {} failed, {} intents settled",
        report.applied_items,
        report.writes.trengo,
        report.writes.ghl,
        report.failed.len(),
        report.settled_intents
    );
    if let Some(brake) = &report.braked {
        eprintln!(
            "error: the brake stopped this pass, nothing was written: {brake}. If this is \
             intended, run `trengo-sync once --allow-mass-change`, or raise limits.brake_fraction"
        );
        return Ok(ExitCode::from(EXIT_BRAKE));
    }
    for (item, reason) in &report.failed {
        eprintln!("failed: {item}: {reason}");
    }
    Ok(if report.failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_ITEMS_FAILED)
    })
}

/// `plan`: the pass `once` would run, on an in-memory copy of the store, stopped before the
/// first write. It checks the store's account identity as `once` does (a store of another
/// account is refused), works before the first run (what the first pass would link), and
/// exits 4 when the brake would stop `once`.
async fn plan(config: &Config, polls_only: bool) -> Result<ExitCode, Failure> {
    use crate::sync::engine::{Engine, PassOptions};
    let mut engine = Engine::for_plan(config, crate::clock::SystemClock::shared())
        .map_err(anyhow::Error::new)?;
    engine.progress = terminal_progress();
    engine.bind_identity().await.map_err(anyhow::Error::new)?;
    let report = engine
        .pass(
            cycle_kind(polls_only),
            PassOptions {
                dry_run: true,
                allow_mass_change: false,
            },
        )
        .await
        .map_err(anyhow::Error::new)?;
    if engine.progress.is_some() {
        eprint!("\r\x1b[2K");
    }
    let mut any = false;
    for plan in &report.plans {
        if !plan.is_empty() {
            any = true;
            print!("{plan}");
        }
    }
    if !any {
        println!("nothing to do: both sides agree with the store");
    }
    for (item, reason) in &report.failed {
        eprintln!("could not read: {item}: {reason}");
    }
    if let Some(brake) = report.plans.iter().find_map(|p| p.brake.as_ref()) {
        eprintln!(
            "the brake would stop `once`: {brake}. Run `trengo-sync once --allow-mass-change` \
             if this is intended, or raise limits.brake_fraction"
        );
        return Ok(ExitCode::from(EXIT_BRAKE));
    }
    Ok(ExitCode::SUCCESS)
}

fn init_logging(cli: &Cli, config: &Config) {
    let format = match cli.log_format {
        Some(LogFormatArg::Json) => LogFormat::Json,
        Some(LogFormatArg::Text) => LogFormat::Text,
        None => config.log.format,
    };
    crate::logging::init(format, &config.log.level, cli.verbose);
}

/// What `check` says about the store: it opens it read-only (writing nothing), or says it
/// will be created.
pub fn store_report(path: &std::path::Path) -> anyhow::Result<String> {
    use crate::store::{self, Store, StoreError};
    match Store::open_read_only(path) {
        Ok(s) => {
            let conn = s.conn();
            let identity = match store::identity::get(conn)? {
                Some(b) => format!(
                    "bound to Trengo account {} and GHL location {} since {}",
                    b.identity.trengo_account, b.identity.ghl_location, b.bound_at
                ),
                None => "not bound to an account yet".to_string(),
            };
            let links = store::links::count_by_state(conn)?;
            Ok(format!(
                "store {}: schema v{}, {identity}; {} active links, {} out of scope ({} gone)",
                path.display(),
                s.schema_version()?,
                links.active,
                links.out_of_scope,
                links.gone
            ))
        }
        Err(StoreError::Missing { .. }) => Ok(format!(
            "store {}: does not exist yet; `trengo-sync run` or `once` creates it",
            path.display()
        )),
        Err(StoreError::NeedsUpgrade { .. }) => Ok(format!(
            "store {}: an older schema; the next `run` or `once` upgrades it",
            path.display()
        )),
        Err(e) => Err(anyhow::Error::new(e)),
    }
}

/// What `check` prints: the configuration's effect in words.
pub fn check_report(path: &std::path::Path, config: &Config) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let link = &config.link;
    let _ = writeln!(out, "configuration {}: ok", path.display());
    let _ = writeln!(
        out,
        "Trengo: {} (naive times in {})",
        config.trengo.base_url, config.trengo.timezone
    );
    let ghl_auth = if config.ghl.oauth.is_some() {
        "OAuth app"
    } else {
        "private integration token"
    };
    let _ = writeln!(
        out,
        "GHL: {} location {} ({ghl_auth}, Version {})",
        config.ghl.base_url,
        config.ghl.location_id.as_deref().unwrap_or("?"),
        config.ghl.version
    );
    let mut rules = Vec::new();
    if !link.trengo_label.trim().is_empty() {
        rules.push(format!("label \"{}\"", link.trengo_label));
    }
    if !link.trengo_channels.is_empty() {
        rules.push(format!("channels {:?}", link.trengo_channels));
    }
    if !link.trengo_teams.is_empty() {
        rules.push(format!("teams {:?}", link.trengo_teams));
    }
    if rules.is_empty() {
        let _ = writeln!(
            out,
            "links Trengo → GHL: off (no label, channel or team rule)"
        );
    } else {
        let _ = writeln!(
            out,
            "links Trengo → GHL: on, tickets with {}; GHL contacts {}",
            rules.join(" or "),
            if link.create_contacts {
                "created when missing"
            } else {
                "must exist (matched by e-mail, then phone)"
            }
        );
    }
    let mut ghl_rules = Vec::new();
    if !link.ghl_tag.trim().is_empty() {
        ghl_rules.push(format!("contact tag \"{}\"", link.ghl_tag));
    }
    if let Some(prefix) = &link.ghl_title_prefix {
        ghl_rules.push(format!("title prefix \"{prefix}\""));
    }
    match (link.trengo_channel_id, ghl_rules.is_empty()) {
        (Some(channel), false) => {
            let _ = writeln!(
                out,
                "links GHL → Trengo: on, tasks with {}; tickets created in channel {channel}",
                ghl_rules.join(" or ")
            );
        }
        (None, _) => {
            let _ = writeln!(
                out,
                "links GHL → Trengo: off (set link.trengo_channel_id to turn it on)"
            );
        }
        (Some(_), true) => {
            let _ = writeln!(
                out,
                "links GHL → Trengo: off (no contact tag or title prefix rule)"
            );
        }
    }
    let done: Vec<String> = config
        .status
        .map
        .iter()
        .filter(|(_, s)| **s == config::TaskState::Done)
        .map(|(t, _)| format!("{t:?}").to_uppercase())
        .collect();
    let _ = writeln!(
        out,
        "status: {}; {} ⇄ task completed; conflicts: {}",
        config.status.direction.describe(),
        done.join("/"),
        config.conflicts.status
    );
    let mut managed = Vec::new();
    if !config.tags.managed_prefix.is_empty() {
        managed.push(format!("prefix \"{}\"", config.tags.managed_prefix));
    }
    if !config.tags.managed.is_empty() {
        managed.push(format!("names {:?}", config.tags.managed));
    }
    let _ = writeln!(
        out,
        "tags: {}; managed: {}; missing Trengo labels {}; conflicts: {}",
        config.tags.direction.describe(),
        if managed.is_empty() {
            "none".to_string()
        } else {
            managed.join(" + ")
        },
        if config.tags.create_labels {
            "created"
        } else {
            "not created"
        },
        config.conflicts.tags
    );
    let _ = writeln!(
        out,
        "comments: {}; internal notes{}; GHL text reaches Trengo only as internal notes",
        config.comments.direction.describe(),
        if config.comments.include_customer_messages {
            " and customer messages"
        } else {
            " only"
        }
    );
    let _ = writeln!(
        out,
        "assignee: {}",
        if config.assignee.enabled {
            format!(
                "{}; conflicts: {}",
                config.assignee.direction.describe(),
                config.conflicts.assignee
            )
        } else {
            "off".to_string()
        }
    );
    let s = &config.schedule;
    let _ = writeln!(
        out,
        "schedule (UTC): Trengo poll `{}`, GHL poll `{}`, sweep `{}`, reconcile `{}`",
        s.trengo_poll, s.ghl_poll, s.sweep, s.reconcile
    );
    let _ = writeln!(
        out,
        "http: {} (webhooks {})",
        config.http.listen,
        if config.webhooks.enabled { "on" } else { "off" }
    );
    out
}

//! The `trengo-sync` command line.
//!
//! Parses arguments with clap, loads the configuration, sets up logging, runs one command,
//! and maps its outcome to an exit code: 0 success, 1 failure, 2 bad arguments (clap),
//! 78 bad configuration (`EX_CONFIG`). `auth ghl` lives in its own room, `auth`.

mod auth;

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

/// `history --field` values: the fields the ledger records.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum HistoryField {
    /// Open/closed and completed.
    Status,
    /// Managed tags and labels.
    Tags,
    /// Notes and messages.
    Comments,
    /// Who the ticket and task are assigned to.
    Assignee,
}

/// `notify` subcommands.
#[derive(Debug, Subcommand)]
pub enum NotifyAction {
    /// Send a test alert through every configured channel; exit 1 if one fails.
    Test,
}

/// `pause --direction` values.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum PauseDirectionArg {
    /// Nothing is written to GHL; Trengo's changes wait.
    TrengoToGhl,
    /// Nothing is written to Trengo; GHL's changes wait.
    GhlToTrengo,
    /// Nothing at all (the daemon idles; for one link, nothing is written for it).
    Both,
}

impl From<PauseDirectionArg> for crate::store::controls::PauseDirection {
    fn from(d: PauseDirectionArg) -> Self {
        use crate::store::controls::PauseDirection;
        match d {
            PauseDirectionArg::TrengoToGhl => PauseDirection::TrengoToGhl,
            PauseDirectionArg::GhlToTrengo => PauseDirection::GhlToTrengo,
            PauseDirectionArg::Both => PauseDirection::Both,
        }
    }
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
    /// Check the real accounts before `run`: tokens, scopes, answer shapes, time zone, paging,
    /// rate limits, the store's binding and what the configuration names. Read-only unless
    /// `--probe-writes`. Exit 0 all well, 6 warnings, 5 a check failed.
    Doctor {
        /// Also make a reversible edit on `--ticket` (attach and detach a label, add an
        /// internal note) to learn which edits move `updated_at`; stores what it learns.
        #[arg(long, requires = "ticket")]
        probe_writes: bool,
        /// The ticket `--probe-writes` may edit.
        #[arg(long, value_name = "ID")]
        ticket: Option<i64>,
        /// One JSON object instead of lines, for scripts.
        #[arg(long)]
        json: bool,
    },
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
    /// Install an app and store its tokens in the store.
    Auth {
        /// Which app.
        #[command(subcommand)]
        target: AuthTarget,
    },
    /// Queue failing or parked items again, due at once (`status` lists them as ITEM).
    Retry {
        /// Items as `status` names them (`contact:abc`, `ticket:123`, `task:abc/`).
        items: Vec<String>,
        /// Every parked item.
        #[arg(long, conflicts_with = "items")]
        all: bool,
    },
    /// What crossed, when, which way, and which conflicts were settled and how, from the
    /// ledger, oldest first; read-only, so it runs beside the daemon.
    History {
        /// Only this link (`status` and `explain` show link ids).
        #[arg(long)]
        link: Option<i64>,
        /// Only entries since a date (`2026-05-01`), a time (`2026-05-01T08:00:00Z`) or a
        /// duration back from now (`24h`, `7d`).
        #[arg(long, value_parser = crate::history::parse_since)]
        since: Option<crate::history::Since>,
        /// Only this field.
        #[arg(long, value_enum)]
        field: Option<HistoryField>,
        /// One JSON array instead of lines.
        #[arg(long)]
        json: bool,
    },
    /// Pause the sync (the whole daemon, or one link) from its next pass; works while `run`
    /// runs. What changes meanwhile crosses on `resume`.
    Pause {
        /// Pause only this link (`status` and `explain` show link ids).
        link: Option<i64>,
        /// Which way to pause.
        #[arg(long, value_enum, default_value = "both")]
        direction: PauseDirectionArg,
    },
    /// Lift a pause (the whole daemon's, or one link's); a link ended by `unlink` is linked
    /// again.
    Resume {
        /// Resume only this link.
        link: Option<i64>,
    },
    /// End one link: nothing is synced or deleted, and it is not linked again until `relink`.
    Unlink {
        /// The link id.
        link: i64,
        /// Why (shown by `explain`).
        #[arg(long)]
        reason: Option<String>,
    },
    /// Alerts (`[notify]`).
    Notify {
        /// What to do.
        #[command(subcommand)]
        action: NotifyAction,
    },
    /// Bring back a link ended by `unlink` (or one that left scope).
    Relink {
        /// The link id.
        link: i64,
    },
    /// Serve both API fakes (for trying a configuration without real accounts).
    #[cfg(feature = "sim")]
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
    /// Ask the running daemon's `/healthz` (at `http.listen`; a wildcard address is asked on
    /// loopback); exit 0 when healthy, 1 otherwise. For container health checks.
    Healthcheck,
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell) to stdout.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff) to stdout, or write one page per command into a folder.
    Man {
        /// Write `trengo-sync.1` and one `trengo-sync-COMMAND.1` per command here.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
    /// The daemon on the embedded fakes with scripted edits; needs no config and no account.
    #[cfg(feature = "sim")]
    Demo {
        /// How long to run: seconds (`40`) or a duration (`40s`, `2m`).
        #[arg(long, default_value = "60", value_parser = parse_demo_duration)]
        duration: std::time::Duration,
        /// Seed of the simulated data.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
}

/// `auth` targets.
#[derive(Debug, Subcommand)]
pub enum AuthTarget {
    /// Install the GHL marketplace app on ghl.location_id ([ghl.oauth]): print the
    /// authorization URL, take the code, exchange it, store the tokens.
    Ghl {
        /// The code, or the whole redirect URL, instead of printing the URL and reading stdin.
        /// Prefer stdin: other users of this machine can see command-line arguments.
        #[arg(long, value_name = "CODE", conflicts_with = "listen", value_parser = secret_arg)]
        code: Option<secrecy::SecretString>,
        /// Catch the redirect on this loopback address (one request, then it stops); the
        /// redirect URI must point at it (default `http://ADDR/oauth/callback`).
        #[arg(long, value_name = "ADDR")]
        listen: Option<std::net::SocketAddr>,
        /// How long --listen waits for the redirect, in seconds.
        #[arg(long, value_name = "SECONDS", default_value_t = 600)]
        wait: u64,
    },
}

/// A secret argument: kept as a `SecretString`, so `Debug` of the parsed command hides it.
fn secret_arg(value: &str) -> Result<secrecy::SecretString, std::convert::Infallible> {
    Ok(secrecy::SecretString::from(value.to_owned()))
}

/// `demo --duration`: a bare number of seconds (`40`), or a duration as the configuration
/// writes them (`40s`, `2m`, `1h 30m`; humantime's syntax).
#[cfg(feature = "sim")]
fn parse_demo_duration(text: &str) -> Result<std::time::Duration, String> {
    let text = text.trim();
    if let Ok(secs) = text.parse::<u64>() {
        return Ok(std::time::Duration::from_secs(secs));
    }
    humantime::parse_duration(text).map_err(|_| {
        format!("expected seconds (`40`) or a duration such as `40s`, `2m` or `1h`, found `{text}`")
    })
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

/// An engine error as a command's failure: a `[contacts]` field map naming fields the
/// accounts lack is a configuration error (exit 78), the rest exit 1.
fn engine_failure(e: crate::sync::engine::EngineError) -> Failure {
    match e {
        crate::sync::engine::EngineError::Map(problems) => Failure::Config(ConfigError::Invalid(
            problems
                .into_iter()
                .map(|p| config::Problem {
                    origin: "checked against the Trengo and GHL field catalogues".into(),
                    key: p.key,
                    message: p.message,
                })
                .collect(),
        )),
        other => Failure::Other(anyhow::Error::new(other)),
    }
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
        #[cfg(feature = "sim")]
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
        Command::Completions { shell } => {
            use clap::CommandFactory as _;
            use std::io::Write as _;
            // Into a buffer first: clap_complete panics on a failed write (a closed pipe).
            let mut script = Vec::new();
            clap_complete::generate(*shell, &mut Cli::command(), "trengo-sync", &mut script);
            // A reader that stops early (`| head`) is not an error worth a message.
            let _ = std::io::stdout().write_all(&script);
            return Ok(ExitCode::SUCCESS);
        }
        Command::Man { dir } => {
            man(dir.as_deref())?;
            return Ok(ExitCode::SUCCESS);
        }
        #[cfg(feature = "sim")]
        Command::Demo { duration, seed } => {
            crate::logging::init(LogFormat::Text, "warn", cli.verbose);
            runtime()?.block_on(crate::demo::run(*duration, *seed))?;
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
        Command::Doctor {
            probe_writes,
            ticket,
            json,
        } => runtime()?.block_on(doctor(
            &config,
            crate::doctor::DoctorOptions {
                probe_writes,
                ticket,
            },
            json,
        )),
        Command::Run => runtime()?.block_on(daemon(config, cli.config.clone())),
        Command::Conflicts => {
            let store = crate::store::Store::open_read_only(&config.store.path)
                .map_err(anyhow::Error::new)?;
            print!("{}", crate::inspect::conflicts_report(&store)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Resolve { link, field, take } => {
            // Beside a running daemon: one transaction on the store, no API call.
            let mut store = crate::store::Store::open_for_edit(&config.store.path)
                .map_err(anyhow::Error::new)?;
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
        Command::History {
            link,
            since,
            field,
            json,
        } => {
            let filter = crate::history::Filter {
                link,
                since: since.map(|s| s.resolve(chrono::Utc::now())),
                field: field
                    .and_then(|f| f.to_possible_value())
                    .map(|v| v.get_name().to_string()),
            };
            let entries = crate::history::read(&config.store.path, &filter)?;
            if json {
                print!("{}", crate::history::render_json(&entries));
            } else {
                print!("{}", crate::history::render_text(&entries, &filter));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Healthcheck => runtime()?.block_on(healthcheck(&config)),
        Command::Status => {
            let text = runtime()?.block_on(crate::daemon::status::status_command(
                &config,
                crate::clock::SystemClock::shared(),
            ))?;
            print!("{text}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Auth {
            target: AuthTarget::Ghl { code, listen, wait },
        } => {
            let options = auth::AuthOptions {
                code,
                listen,
                wait: std::time::Duration::from_secs(wait),
            };
            let outcome = runtime()?.block_on(auth::auth_ghl(
                &config,
                &options,
                tokio::io::BufReader::new(tokio::io::stdin()),
                &mut std::io::stdout(),
                crate::clock::SystemClock::shared(),
            ));
            match outcome {
                Ok(()) => Ok(ExitCode::SUCCESS),
                Err(auth::AuthFailure::Config(message)) => {
                    eprintln!("error: {message}");
                    Ok(ExitCode::from(config::EXIT_CONFIG as u8))
                }
                Err(auth::AuthFailure::Other(e)) => Err(Failure::Other(e)),
            }
        }
        Command::Retry { items, all } => {
            // Beside a running daemon: one transaction on the store, no API call.
            let store = crate::store::Store::open_for_edit(&config.store.path)
                .map_err(anyhow::Error::new)?;
            let text = crate::inspect::requeue(&store, &items, all, chrono::Utc::now())?;
            print!("{text}");
            Ok(ExitCode::SUCCESS)
        }
        command @ (Command::Pause { .. }
        | Command::Resume { .. }
        | Command::Unlink { .. }
        | Command::Relink { .. }) => {
            let mut store = open_for_control(&config)?;
            let now = chrono::Utc::now();
            let text = match command {
                Command::Pause { link, direction } => {
                    crate::control::pause(&mut store, link, direction.into(), now)
                }
                Command::Resume { link } => crate::control::resume(&mut store, link, now),
                Command::Unlink { link, reason } => {
                    crate::control::unlink(&mut store, link, reason.as_deref(), now)
                }
                Command::Relink { link } => crate::control::relink(&mut store, link, now),
                _ => Ok(String::new()),
            }?;
            print!("{text}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Notify {
            action: NotifyAction::Test,
        } => {
            let text = runtime()?.block_on(crate::notify::test_command(
                &config.notify,
                chrono::Utc::now(),
            ))?;
            print!("{text}");
            Ok(ExitCode::SUCCESS)
        }
        #[cfg(feature = "sim")]
        Command::Sim { .. } | Command::Demo { .. } => Ok(ExitCode::SUCCESS),
        Command::Completions { .. } | Command::Man { .. } => Ok(ExitCode::SUCCESS),
        Command::Check => {
            print!("{}", check_report(&cli.config, &config));
            println!("{}", store_report(&config.store.path)?);
            if let Some(line) = auth::missing_tokens_line(&config) {
                println!("{line}");
            }
            if config.contacts.enabled {
                println!("{}", runtime()?.block_on(contacts_report(&config))?);
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `healthcheck`: GET `/healthz` on the daemon's own listener, within 5 seconds.
async fn healthcheck(config: &Config) -> Result<ExitCode, Failure> {
    let addr = crate::daemon::status::dial_address(config.http.listen);
    let url = format!("http://{addr}/healthz");
    let answer = async {
        // The daemon is local: an HTTP(S)_PROXY from the environment must not intercept it.
        let response = reqwest::Client::builder()
            .no_proxy()
            .build()?
            .get(&url)
            .timeout(std::time::Duration::from_secs(5))
            .send()
            .await?;
        let status = response.status();
        Ok::<_, reqwest::Error>((status, response.text().await.unwrap_or_default()))
    }
    .await;
    match answer {
        Ok((status, body)) if status.is_success() => {
            print!("{body}");
            Ok(ExitCode::SUCCESS)
        }
        Ok((status, body)) => {
            eprintln!("unhealthy: {url} answered {status}: {}", body.trim());
            Ok(ExitCode::from(EXIT_FAILURE))
        }
        Err(e) => {
            eprintln!(
                "unhealthy: no answer from {url} (http.listen): {e}; is `trengo-sync run` running?"
            );
            Ok(ExitCode::from(EXIT_FAILURE))
        }
    }
}

/// `man`: the top page to stdout, or every command's page into `dir` (clap_mangen).
fn man(dir: Option<&std::path::Path>) -> Result<(), Failure> {
    use clap::CommandFactory as _;
    let written = match dir {
        Some(dir) => std::fs::create_dir_all(dir)
            .and_then(|()| clap_mangen::generate_to(Cli::command(), dir))
            .map_err(|e| (dir.display().to_string(), e)),
        None => clap_mangen::Man::new(Cli::command())
            .render(&mut std::io::stdout())
            .map_err(|e| ("stdout".to_string(), e)),
    };
    written.map_err(|(to, e)| {
        Failure::Other(anyhow::anyhow!(
            "could not write the manual page to {to}: {e}"
        ))
    })
}

/// The store for `pause`, `resume`, `unlink` and `relink`, beside a running daemon or not.
fn open_for_control(config: &Config) -> Result<crate::store::Store, Failure> {
    if let Some(dir) = config.store.path.parent()
        && !dir.as_os_str().is_empty()
        && !dir.exists()
    {
        return Err(Failure::Other(anyhow::anyhow!(
            "the store's directory {} does not exist; check store.path, or run `trengo-sync once` first",
            dir.display()
        )));
    }
    // Beside a running daemon, which holds the writer lock: one short transaction, as
    // `resolve` and `retry`. Before the first run, the store is created here.
    let store = if config.store.path.exists() {
        crate::store::Store::open_for_edit(&config.store.path)
    } else {
        crate::store::Store::open(&config.store.path)
    };
    Ok(store.map_err(anyhow::Error::new)?)
}

/// Says what a pause did to a pass (`once`, `plan`).
fn print_paused(report: &crate::sync::engine::PassReport, verb: &str) {
    if let Some(p) = &report.paused {
        println!(
            "paused both ways since {}: nothing was read or written; `trengo-sync resume` lifts it",
            p.since.to_rfc3339()
        );
    }
    for (item, why) in &report.held {
        println!("{verb} {item}: {why}");
    }
}

async fn daemon(config: Config, path: PathBuf) -> Result<ExitCode, Failure> {
    let listener = tokio::net::TcpListener::bind(config.http.listen)
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "cannot listen on {} (http.listen): {e}; choose a free address",
                config.http.listen
            )
        })?;
    let mut daemon = crate::daemon::run::Daemon::new(config, listener);
    daemon.config_path = Some(path);
    daemon
        .run_reloading(stop_signal(), reload_signal())
        .await
        .map_err(|e| match e.downcast::<crate::sync::engine::EngineError>() {
            Ok(e) => engine_failure(e),
            Err(e) => Failure::Other(e),
        })?;
    Ok(ExitCode::SUCCESS)
}

/// One message per SIGHUP (systemd's `ExecReload=`, `systemctl reload`): read the
/// configuration file again. Installed before the daemon starts, as [`stop_signal`].
fn reload_signal() -> tokio::sync::mpsc::UnboundedReceiver<()> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::hangup()) {
            Ok(mut hup) => {
                tokio::spawn(async move {
                    while hup.recv().await.is_some() {
                        if tx.send(()).is_err() {
                            break;
                        }
                    }
                });
            }
            Err(e) => tracing::warn!(error = %e, "SIGHUP cannot be caught; reloads are off"),
        }
    }
    #[cfg(not(unix))]
    drop(tx);
    rx
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

async fn doctor(
    config: &Config,
    options: crate::doctor::DoctorOptions,
    json: bool,
) -> Result<ExitCode, Failure> {
    // Read-only on the store too, unless it must be written: it does not exist yet, OAuth may
    // rotate the refresh token, or the probe stores what it learns.
    let read_only =
        config.store.path.exists() && config.ghl.oauth.is_none() && !options.probe_writes;
    let engine = crate::sync::engine::Engine::from_config(
        config,
        crate::clock::SystemClock::shared(),
        read_only,
    )
    .map_err(anyhow::Error::new)?;
    let report = crate::doctor::run(&engine, &options).await;
    if json {
        println!(
            "{}",
            serde_json::json!({
                "exit_code": report.exit_code(),
                "findings": report.findings,
            })
        );
    } else {
        print!("{}", report.text());
    }
    Ok(ExitCode::from(report.exit_code()))
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
    crate::doctor::zone_gate(&engine.trengo, &engine.store).await?;
    engine.check_field_map().await.map_err(engine_failure)?;
    let report = engine
        .pass(
            cycle_kind(polls_only),
            PassOptions {
                dry_run: false,
                allow_mass_change,
            },
        )
        .await
        .map_err(engine_failure)?;
    if engine.progress.is_some() {
        eprint!("\r\x1b[2K");
    }
    for plan in &report.plans {
        if !plan.is_empty() {
            print!("{plan}");
        }
    }
    for line in &report.pair_lines {
        println!("{line}");
    }
    print_paused(&report, "held (paused, not written)");
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
    // The item's stored name is the one `status` lists and `retry` takes.
    for (item, reason) in &report.failed {
        eprintln!("failed: {item} ({}): {reason}", item.stored());
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
    engine.check_field_map().await.map_err(engine_failure)?;
    let report = engine
        .pass(
            cycle_kind(polls_only),
            PassOptions {
                dry_run: true,
                allow_mass_change: false,
            },
        )
        .await
        .map_err(engine_failure)?;
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
    for line in &report.pair_lines {
        any = true;
        println!("would write: {line}");
    }
    if let Some(since) = config.link.since {
        println!(
            "(link.since: items not created or updated since {} are not linked)",
            since
                .cutoff(chrono::Utc::now())
                .format("%Y-%m-%d %H:%M UTC")
        );
    }
    if !any && report.held.is_empty() && report.paused.is_none() {
        println!("nothing to do: both sides agree with the store");
    }
    print_paused(&report, "would hold (paused)");
    for (item, reason) in &report.failed {
        eprintln!("could not read: {item} ({}): {reason}", item.stored());
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
            let oauth = crate::daemon::status::OAuthReport::from_store(conn, chrono::Utc::now())?
                .map(|r| format!("\n{}", r.describe()))
                .unwrap_or_default();
            Ok(format!(
                "store {}: schema v{}, {identity}; {} active links, {} out of scope ({} gone){oauth}",
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

/// What `check` says about `[contacts]`: its field map resolved against both accounts' field
/// catalogues (two reads, no write). Fields the accounts lack are a configuration error
/// (exit 78, naming each key); accounts that cannot be reached now are said, not failed.
async fn contacts_report(config: &Config) -> Result<String, Failure> {
    use crate::sync::engine::{Engine, EngineError};
    let engine = match Engine::for_plan(config, crate::clock::SystemClock::shared()) {
        Ok(e) => e,
        Err(e) => return Ok(format!("contacts: the field map was not checked: {e}")),
    };
    match engine.field_map().await {
        Ok(Some(map)) => {
            let c = &map.context;
            let context: Vec<&str> = [
                (c.web_link, "web link"),
                (c.next_appointment, "next appointment"),
                (c.open_tasks, "open tasks"),
                (c.tags, "tags"),
            ]
            .into_iter()
            .filter_map(|(f, name)| f.map(|_| name))
            .collect();
            let mut out = format!(
                "contacts: {} mapped fields checked against both accounts' catalogues",
                map.fields.len()
            );
            for f in &map.fields {
                out.push_str(&format!(
                    "\n  {} ({}, {:?}, conflicts: {})",
                    f.name,
                    match f.direction {
                        crate::sync::Direction::Both => "both ways",
                        crate::sync::Direction::TrengoToGhl => "Trengo → GHL",
                        crate::sync::Direction::GhlToTrengo => "GHL → Trengo",
                        crate::sync::Direction::Off => "off",
                    },
                    f.kind,
                    f.policy
                ));
            }
            if !context.is_empty() {
                out.push_str(&format!("\n  context for agents: {}", context.join(", ")));
            }
            if let Some(tag) = &map.tag {
                out.push_str(&format!(
                    "\n  GHL contacts tagged `{tag}` get a Trengo contact{}",
                    if map.welcome.is_some() {
                        " and a welcome ticket"
                    } else {
                        ""
                    }
                ));
            }
            Ok(out)
        }
        Ok(None) => Ok("contacts: off".into()),
        Err(e @ EngineError::Map(_)) => Err(engine_failure(e)),
        Err(e) => Ok(format!(
            "contacts: the field map was not checked against the accounts ({e}); run `check` \
             again when both APIs can be reached"
        )),
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
    if let Some(since) = link.since {
        let _ = writeln!(
            out,
            "links: only items created or updated since {} (link.since)",
            since
                .cutoff(chrono::Utc::now())
                .format("%Y-%m-%d %H:%M UTC")
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
        "http: {} (webhooks {}; /status and /metrics {})",
        config.http.listen,
        if config.webhooks.enabled { "on" } else { "off" },
        if config.http.status_token.is_some() {
            "need the status token"
        } else {
            "open"
        }
    );
    if !config.http.listen.ip().is_loopback() && config.http.status_token.is_none() {
        let _ = writeln!(
            out,
            "warning: http.listen {} is reachable from other machines and no \
             http.status_token is set: anyone who reaches it can read /status (item ids, \
             failure reasons) and /metrics; set http.status_token_file, or listen on 127.0.0.1",
            config.http.listen
        );
    }
    let n = &config.notify;
    let mut channels = Vec::new();
    if n.webhook_url.is_some() {
        channels.push(format!("webhook ({:?})", n.webhook_format).to_lowercase());
    }
    if let Some(host) = &n.smtp_host {
        channels.push(format!("e-mail via {host} to {}", n.mail_to.join(", ")));
    }
    let _ = writeln!(
        out,
        "alerts: {}",
        if channels.is_empty() {
            "off (no [notify] channel)".to_string()
        } else {
            channels.join(" and ")
        }
    );
    out
}

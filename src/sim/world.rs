//! The simulated world: both fakes started side by side and seeded with the same people, plus
//! the configuration that points a daemon at them, and the body of `trengo-sync sim`.
//!
//! The two fakes seed themselves independently (different people, different e-mails), which
//! is useless for a sync: nothing would ever match. [`SimWorld`] therefore keeps the Trengo
//! fake's seed (contacts `seeded_person(i)`, tickets with labels, customer messages and
//! internal notes) and rebuilds the GHL side around it: one GHL contact per Trengo person,
//! same e-mail and phone, some tagged `trengo` with open tasks (the GHL → Trengo link rule),
//! some carrying managed `trengo:*` tags, and notes. Everything is deterministic from
//! [`WorldOptions::seed`] and the clock's time at start.
//!
//! [`SimWorld::config_toml`] writes a complete daemon configuration for the world, and
//! [`SimWorld::config`] loads that very text through [`crate::config::load_with`], so it
//! passes the same validation as a user's file. The seeding itself lives in `seed`.

use std::future::Future;
use std::io::Write as _;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use chrono_tz::Tz;
use figment::providers::Env;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::clock::{SharedClock, SystemClock};
use crate::config::{self, Config, ConfigError};
use crate::sim::ghl::{API_VERSION, GhlError, GhlFake, GhlFakeOptions};
use crate::sim::trengo::{SeedSpec, TrengoFake, TrengoFakeOptions};

mod seed;

/// The Trengo label that puts a ticket in the sync's scope in the world's configuration.
pub const LINK_LABEL: &str = "GHL";
/// The GHL contact tag that puts a contact's tasks in scope in the world's configuration.
pub const LINK_TAG: &str = "trengo";
/// The prefix of the labels and tags the world's configuration manages.
pub const MANAGED_PREFIX: &str = "trengo:";
/// People seeded on both sides unless told otherwise.
pub const DEFAULT_CONTACTS: usize = 10;
/// Tickets seeded unless told otherwise (more than one page of 25).
pub const DEFAULT_TICKETS: usize = 30;

/// How to build a world.
#[derive(Debug, Clone)]
pub struct WorldOptions {
    /// Seed of every random choice on both sides; it replaces the fakes' own `seed`
    /// options. Default 1.
    pub seed: u64,
    /// Tickets to seed in Trengo. Default [`DEFAULT_TICKETS`].
    pub tickets: usize,
    /// People to seed, each a Trengo contact and a GHL contact. Default [`DEFAULT_CONTACTS`].
    pub contacts: usize,
    /// The clock both fakes run on. Default the wall clock.
    pub clock: SharedClock,
    /// Trengo fake settings (its `seed` is overridden by [`WorldOptions::seed`]).
    pub trengo: TrengoFakeOptions,
    /// GHL fake settings (its `seed` and `contacts` are overridden: the world seeds them).
    pub ghl: GhlFakeOptions,
    /// Sync the assignee: GHL contacts and tasks are owned by the GHL twins of the Trengo
    /// agents (same e-mails), and [`SimWorld::config_toml`] writes `[assignee] enabled = true`.
    /// Default off.
    pub assignee: bool,
}

impl Default for WorldOptions {
    fn default() -> Self {
        Self {
            seed: 1,
            tickets: DEFAULT_TICKETS,
            contacts: DEFAULT_CONTACTS,
            clock: SystemClock::shared(),
            trengo: TrengoFakeOptions::default(),
            ghl: GhlFakeOptions::default(),
            assignee: false,
        }
    }
}

impl WorldOptions {
    /// A small world whose fakes allow far more requests than the documented limits, for
    /// tests that check behaviour rather than pacing (the limits keep their real shape).
    pub fn unpaced(seed: u64, tickets: usize, contacts: usize) -> Self {
        let mut options = Self {
            seed,
            tickets,
            contacts,
            ..Self::default()
        };
        options.trengo.rate_limit_per_minute = 60_000;
        options.ghl.burst_limit = 10_000;
        options
    }
}

/// Why a world could not be started or configured.
#[derive(Debug, thiserror::Error)]
pub enum WorldError {
    /// A port could not be bound.
    #[error(
        "cannot listen on 127.0.0.1:{port} for the {side} fake: {source}; \
         choose a free port (or 0 for any) with --{flag}-port"
    )]
    Bind {
        /// `Trengo` or `GHL`.
        side: &'static str,
        /// The CLI flag stem (`trengo`, `ghl`).
        flag: &'static str,
        /// The port asked for.
        port: u16,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// A fake could not start on its listener.
    #[error("the {side} fake could not start on its listener: {source}")]
    Start {
        /// `Trengo` or `GHL`.
        side: &'static str,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// The GHL fake refused a seed edit (a bug in the world's seeding).
    #[error("seeding the GHL fake failed: it answered {status} {message}")]
    Seed {
        /// HTTP status the fake's operation gave.
        status: u16,
        /// Its message.
        message: String,
    },
    /// A scripted edit of the world was refused by a fake.
    #[error("the {side} fake refused the edit: {message}")]
    Edit {
        /// `Trengo` or `GHL`.
        side: &'static str,
        /// The fake's reason.
        message: String,
    },
    /// The generated configuration could not be written to a temporary file.
    #[error("cannot write the generated configuration to a temporary file: {0}")]
    ConfigFile(std::io::Error),
    /// The generated configuration did not load (a bug in [`SimWorld::config_toml`]).
    #[error("the generated configuration does not load: {0}")]
    Config(#[from] ConfigError),
}

impl From<GhlError> for WorldError {
    fn from(e: GhlError) -> Self {
        WorldError::Seed {
            status: e.status.as_u16(),
            message: e.message.to_string(),
        }
    }
}

/// One person as both fakes know them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorldPerson {
    /// "First Last".
    pub name: String,
    /// Lower-case e-mail, the same on both sides.
    pub email: String,
    /// E.164 phone, the same on both sides.
    pub phone: String,
    /// The Trengo contact id.
    pub trengo_contact_id: i64,
    /// The GHL contact id.
    pub ghl_contact_id: String,
}

/// Both fakes, running and consistently seeded. Dropping it stops both.
#[derive(Debug)]
pub struct SimWorld {
    trengo: TrengoFake,
    ghl: GhlFake,
    seed: u64,
    trengo_options: TrengoFakeOptions,
    ghl_options: GhlFakeOptions,
    people: Vec<WorldPerson>,
    assignee: bool,
}

impl SimWorld {
    /// Starts both fakes on listeners the caller bound (to `127.0.0.1:0` in tests) and seeds
    /// them. Must be called inside a Tokio runtime.
    pub fn start(
        trengo_listener: TcpListener,
        ghl_listener: TcpListener,
        options: WorldOptions,
    ) -> Result<Self, WorldError> {
        let WorldOptions {
            seed,
            tickets,
            contacts,
            clock,
            mut trengo,
            mut ghl,
            assignee,
        } = options;
        trengo.seed = seed;
        ghl.seed = seed;
        // The GHL fake's own seed makes different people; the world adds its contacts below.
        ghl.contacts = 0;
        let trengo_fake = TrengoFake::start(trengo_listener, trengo.clone(), clock.clone())
            .map_err(|source| WorldError::Start {
                side: "Trengo",
                source,
            })?;
        let ghl_fake =
            GhlFake::start(ghl_listener, ghl.clone(), clock.clone()).map_err(|source| {
                WorldError::Start {
                    side: "GHL",
                    source,
                }
            })?;
        trengo_fake.seed(&SeedSpec {
            contacts,
            tickets,
            ..SeedSpec::default()
        });
        seed::ensure_trengo_variety(&trengo_fake);
        let people = seed::seed_ghl(&trengo_fake, &ghl_fake, seed, trengo.zone, assignee)?;
        // Seeding raised ContactCreate/TaskCreate/NoteCreate events nobody should see.
        ghl_fake.outbox().clear_log();
        Ok(Self {
            trengo: trengo_fake,
            ghl: ghl_fake,
            seed,
            trengo_options: trengo,
            ghl_options: ghl,
            people,
            assignee,
        })
    }

    /// Binds `127.0.0.1:trengo_port` and `127.0.0.1:ghl_port` (0: any free port) and starts
    /// the world there.
    pub async fn bind(
        trengo_port: u16,
        ghl_port: u16,
        options: WorldOptions,
    ) -> Result<Self, WorldError> {
        let trengo = bind_loopback(trengo_port, "Trengo", "trengo").await?;
        let ghl = bind_loopback(ghl_port, "GHL", "ghl").await?;
        Self::start(trengo, ghl, options)
    }

    /// The Trengo fake (its admin methods are reachable through it).
    pub fn trengo(&self) -> &TrengoFake {
        &self.trengo
    }

    /// The GHL fake (its admin methods are reachable through it).
    pub fn ghl(&self) -> &GhlFake {
        &self.ghl
    }

    /// The seed the world was built from.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// `http://127.0.0.1:P/api/v2`: Trengo's API base URL.
    pub fn trengo_base_url(&self) -> String {
        self.trengo.base_url()
    }

    /// `http://127.0.0.1:P`: Trengo's web app base; ticket pages are `{web_url}/tickets/{id}`.
    pub fn trengo_web_url(&self) -> String {
        self.trengo.web_url()
    }

    /// `http://127.0.0.1:Q`: GHL's API base URL.
    pub fn ghl_base_url(&self) -> String {
        self.ghl.base_url()
    }

    /// The personal access token the Trengo fake accepts.
    pub fn trengo_token(&self) -> SecretString {
        self.trengo_options.token.clone()
    }

    /// The private integration token the GHL fake accepts.
    pub fn ghl_token(&self) -> SecretString {
        self.ghl_options.private_token.clone()
    }

    /// The GHL location every contact belongs to.
    pub fn location_id(&self) -> &str {
        self.ghl.location_id()
    }

    /// The Ed25519 key (base64 SPKI) the GHL fake signs webhooks with.
    pub fn ghl_public_key(&self) -> String {
        self.ghl.public_key_base64()
    }

    /// The zone the Trengo fake renders its naive timestamps in.
    pub fn trengo_zone(&self) -> Tz {
        self.trengo_options.zone
    }

    /// The channel tickets made from GHL tasks go to: the first seeded channel (e-mail).
    pub fn trengo_channel_id(&self) -> Option<i64> {
        self.trengo.channel_ids().first().copied()
    }

    /// The people seeded on both sides, in seed order.
    pub fn people(&self) -> &[WorldPerson] {
        &self.people
    }

    /// Reassigns a linked ticket in Trengo and its task in GHL to two different agents, as two
    /// people would at the same time: a conflict on the assignee. Neither agent is assigned on
    /// either side now, so both sides count as changed. GHL's edit goes first, and reassigning
    /// a task moves no contact time (ghl-api.md §3.2), so under `newest` Trengo is the later
    /// side. Returns (Trengo's agent e-mail, GHL's).
    pub fn reassign_both(
        &self,
        ticket_id: i64,
        task_id: &str,
    ) -> Result<(String, String), WorldError> {
        let trengo_err = |e: crate::sim::trengo::SimError| WorldError::Edit {
            side: "Trengo",
            message: e.to_string(),
        };
        let ghl_err = |e: GhlError| WorldError::Edit {
            side: "GHL",
            message: format!("{} {}", e.status, e.message),
        };
        let on_ticket = self
            .trengo
            .sim()
            .read(|w, _| w.ticket(ticket_id).map(|t| t.user_id))
            .map_err(trengo_err)?;
        let on_task = self
            .ghl
            .read(|s| s.task_by_id(task_id).map(|t| t.assigned_to.clone()))
            .map_err(ghl_err)?;
        let free: Vec<String> = self
            .trengo
            .agent_emails()
            .into_iter()
            .filter(|e| on_ticket.is_none() || self.trengo.user_id(e) != on_ticket)
            .filter(|e| on_task.is_none() || self.ghl.user_id(e) != on_task)
            .collect();
        let [to_trengo, to_ghl, ..] = free.as_slice() else {
            return Err(WorldError::Edit {
                side: "Trengo",
                message: "fewer than two agents are free to take the ticket and the task".into(),
            });
        };
        let ghl_user = self.ghl.user_id(to_ghl).ok_or_else(|| WorldError::Edit {
            side: "GHL",
            message: format!("no GHL user has the e-mail {to_ghl}"),
        })?;
        self.ghl.assign_task(task_id, &ghl_user).map_err(ghl_err)?;
        let trengo_user = self
            .trengo
            .user_id(to_trengo)
            .ok_or_else(|| WorldError::Edit {
                side: "Trengo",
                message: format!("no Trengo user has the e-mail {to_trengo}"),
            })?;
        self.trengo
            .assign_ticket(ticket_id, trengo_user)
            .map_err(trengo_err)?;
        Ok((to_trengo.clone(), to_ghl.clone()))
    }

    /// Both fakes' whole state as JSON (`{"trengo": …, "ghl": …}`), without secrets or ports:
    /// equal for worlds of the same options and start time.
    pub fn snapshot(&self) -> Value {
        json!({ "trengo": self.trengo.snapshot(), "ghl": self.ghl.snapshot() })
    }

    /// A complete daemon configuration for this world, as TOML text: the fakes' URLs and
    /// tokens, the Trengo fake's zone, link label [`LINK_LABEL`], tag [`LINK_TAG`], managed
    /// prefix [`MANAGED_PREFIX`], schedules short enough for a demo, and an `[assignee]`
    /// section when [`WorldOptions::assignee`] is on.
    pub fn config_toml(&self, store_path: &Path, listen: SocketAddr) -> String {
        let t = &self.trengo_options;
        let g = &self.ghl_options;
        let channel = self
            .trengo_channel_id()
            .map_or_else(String::new, |id| format!("trengo_channel_id = {id}\n"));
        // Users are matched by e-mail; the world gives every Trengo agent a GHL twin.
        let assignee = if self.assignee {
            "\n[assignee]\nenabled = true\n"
        } else {
            ""
        };
        format!(
            r#"# trengo-sync configuration for the simulated world (seed {seed}).
# The tokens are the fakes' own; nothing here reaches a real account.

[trengo]
base_url = {trengo_base}
web_url = {trengo_web}
token = {trengo_token}
timezone = {zone}

[ghl]
base_url = {ghl_base}
location_id = {location}
token = {ghl_token}
version = {version}

[store]
path = {store}

[http]
listen = {listen}

[schedule]
# Polls every 5 s, a sweep slice every 5 s and a new sweep cycle at most every 15 s: fast
# enough to watch changes cross, also those that move no watermark.
trengo_poll = "*/5 * * * * *"
ghl_poll = "2/5 * * * * *"
sweep = "4/5 * * * * *"
reconcile = "0 */10 * * * *"
# Same zone on both ends, whole seconds: a small overlap is enough.
trengo_overlap = "10s"
# The GHL fake's search index lags writes by {lag}.
ghl_overlap = {ghl_overlap}
stop_grace = "5s"

[link]
trengo_label = {label}
ghl_tag = {tag}
{channel}create_contacts = false
task_due_in = "2d"

[tags]
managed_prefix = {prefix}
create_labels = true

[limits]
trengo_per_minute = {trengo_rate}
ghl_per_window = {ghl_rate}
ghl_window = {ghl_window}
ghl_per_day = {ghl_daily}
request_timeout = "10s"
retry_base = "5s"
retry_max = "1m"
sweep_cycle = "15s"

[webhooks]
enabled = false
ghl_public_key = {public_key}
{assignee}"#,
            seed = self.seed,
            trengo_base = quoted(&self.trengo_base_url()),
            trengo_web = quoted(&self.trengo_web_url()),
            trengo_token = quoted(t.token.expose_secret()),
            // The account's zone of naive timestamps (trengo-api.md §4.3 [REC]): the fake's.
            zone = quoted(t.zone.name()),
            ghl_base = quoted(&self.ghl_base_url()),
            location = quoted(self.location_id()),
            ghl_token = quoted(g.private_token.expose_secret()),
            version = quoted(API_VERSION),
            store = quoted(&store_path.display().to_string()),
            listen = quoted(&listen.to_string()),
            lag = humantime::format_duration(g.index_lag),
            // Well past the search index's lag (ghl-api.md §3.2: "a few seconds").
            ghl_overlap = quoted(&span(g.index_lag * 3 + Duration::from_secs(5))),
            label = quoted(LINK_LABEL),
            tag = quoted(LINK_TAG),
            prefix = quoted(MANAGED_PREFIX),
            trengo_rate = t.rate_limit_per_minute.max(1),
            ghl_rate = g.burst_limit.max(1),
            ghl_window = quoted(&span(g.burst_window)),
            ghl_daily = g.daily_limit.max(1),
            public_key = quoted(&self.ghl_public_key()),
        )
    }

    /// [`SimWorld::config_toml`] loaded through [`config::load_with`] (the process
    /// environment is ignored, so a user's `TRENGO_SYNC__*` variables cannot bend it).
    pub fn config(&self, store_path: &Path, listen: SocketAddr) -> Result<Config, WorldError> {
        let mut file = tempfile::Builder::new()
            .prefix("trengo-sync-sim-")
            .suffix(".toml")
            .tempfile()
            .map_err(WorldError::ConfigFile)?;
        file.write_all(self.config_toml(store_path, listen).as_bytes())
            .and_then(|()| file.flush())
            .map_err(WorldError::ConfigFile)?;
        let no_env = Env::raw().filter(|_| false);
        Ok(config::load_with(file.path(), no_env)?)
    }

    /// What `trengo-sync sim` prints: URLs, admin surfaces, tokens and the configuration.
    pub fn banner(&self, store_path: &Path, listen: SocketAddr) -> String {
        let web = self.trengo_web_url();
        let ghl = self.ghl_base_url();
        format!(
            "trengo-sync sim: seed {seed}, {people} people on both sides, {tickets} tickets

Trengo fake
  API        {trengo_api}
  token      {trengo_token}  (Authorization: Bearer …)
  zone       {zone}
  tickets    {web}/tickets/{{id}}
  admin      {web}/_sim/state, /_sim/tickets/{{id}}/close, /_sim/tickets/{{id}}/notes, …

GHL fake
  API        {ghl}  (header Version: {API_VERSION})
  token      {ghl_token}
  location   {location}
  webhooks   public key {key}
  admin      {ghl}/_sim/state, /_sim/tasks/{{id}}/complete, /_sim/contacts/{{id}}/tags, …

A configuration for a daemon pointed at these fakes (save it as sim.toml and run
`trengo-sync check --config sim.toml`):

{config}",
            seed = self.seed,
            people = self.people.len(),
            tickets = self.trengo.ticket_ids().len(),
            trengo_api = self.trengo_base_url(),
            trengo_token = self.trengo_options.token.expose_secret(),
            zone = self.trengo_options.zone.name(),
            ghl_token = self.ghl_options.private_token.expose_secret(),
            location = self.location_id(),
            key = self.ghl_public_key(),
            config = self.config_toml(store_path, listen),
        )
    }

    /// Stops both fakes and waits for their servers to end.
    pub async fn shutdown(self) {
        let Self { trengo, ghl, .. } = self;
        trengo.shutdown().await;
        ghl.shutdown().await;
    }
}

/// Options of `trengo-sync sim`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServeOptions {
    /// Port of the Trengo fake on 127.0.0.1 (`--trengo-port`; 0 picks a free one).
    pub trengo_port: u16,
    /// Port of the GHL fake on 127.0.0.1 (`--ghl-port`; 0 picks a free one).
    pub ghl_port: u16,
    /// Seed of the world (`--seed`).
    pub seed: u64,
    /// Tickets to seed (`--tickets`).
    pub tickets: usize,
}

/// The store path the printed configuration names: relative, so it lands where the user runs.
pub const SIM_STORE_PATH: &str = "trengo-sync-sim.sqlite";

/// The body of `trengo-sync sim`: starts the world on the given ports with the wall clock,
/// prints its URLs, admin surfaces, tokens and configuration to stdout, and serves until
/// `shutdown` resolves.
pub async fn serve(
    options: ServeOptions,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let world = SimWorld::bind(
        options.trengo_port,
        options.ghl_port,
        WorldOptions {
            seed: options.seed,
            tickets: options.tickets,
            ..WorldOptions::default()
        },
    )
    .await?;
    let listen = SocketAddr::from((Ipv4Addr::LOCALHOST, 8642));
    let banner = world.banner(Path::new(SIM_STORE_PATH), listen);
    // print! rather than a raw stdout handle: test harnesses capture it.
    print!("{banner}\nServing until Ctrl-C.\n");
    tracing::info!(
        trengo = %world.trengo_base_url(),
        ghl = %world.ghl_base_url(),
        "simulated Trengo and GHL are serving"
    );
    shutdown.await;
    world.shutdown().await;
    tracing::info!("simulated Trengo and GHL stopped");
    Ok(())
}

async fn bind_loopback(
    port: u16,
    side: &'static str,
    flag: &'static str,
) -> Result<TcpListener, WorldError> {
    TcpListener::bind((Ipv4Addr::LOCALHOST, port))
        .await
        .map_err(|source| WorldError::Bind {
            side,
            flag,
            port,
            source,
        })
}

/// A TOML basic string, escaped.
fn quoted(text: &str) -> String {
    toml::Value::String(text.to_owned()).to_string()
}

/// A duration as the config's `Span` reads it: whole seconds, or milliseconds below that.
fn span(d: Duration) -> String {
    if d.subsec_millis() == 0 && d.as_secs() > 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis().max(1))
    }
}

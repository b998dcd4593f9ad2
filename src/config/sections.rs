//! The configuration sections, one struct per TOML table, each field with its default.
//!
//! `config.example.toml` at the repository root documents the same keys for users; a test
//! keeps the two in step.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

use super::types::{CronExpr, HttpUrl, Secret, Since, Span, Zone};

// Defaults are literals, checked by the `default_config_is_valid` test: they cannot fail.
fn url(s: &'static str) -> HttpUrl {
    match s.parse() {
        Ok(u) => u,
        Err(e) => unreachable!("default URL literal `{s}` must parse: {e}"),
    }
}

fn cron(s: &'static str) -> CronExpr {
    match s.parse() {
        Ok(c) => c,
        Err(e) => unreachable!("default cron literal `{s}` must parse: {e}"),
    }
}

/// `[trengo]`: where the Trengo API is and how to authenticate.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrengoConfig {
    /// API base URL. Default `https://app.trengo.com/api/v2`.
    pub base_url: HttpUrl,
    /// Web app base, used to build ticket URLs (`{web_url}/tickets/{id}`). Default `https://app.trengo.com`.
    pub web_url: HttpUrl,
    /// Personal access token. Default: none (required; or `token_file`).
    pub token: Option<Secret>,
    /// File holding the token (for systemd `LoadCredential=`). Default: none.
    pub token_file: Option<PathBuf>,
    /// Zone in which Trengo renders its naive timestamps. Default `Europe/Amsterdam`.
    pub timezone: Zone,
}

impl Default for TrengoConfig {
    fn default() -> Self {
        Self {
            base_url: url("https://app.trengo.com/api/v2"),
            web_url: url("https://app.trengo.com"),
            token: None,
            token_file: None,
            timezone: Zone(chrono_tz::Europe::Amsterdam),
        }
    }
}

/// `[ghl]`: where the GHL API v2 is, which location, and how to authenticate.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GhlConfig {
    /// API base URL. Default `https://services.leadconnectorhq.com`.
    pub base_url: HttpUrl,
    /// The sub-account (location) id. Default: none (required).
    pub location_id: Option<String>,
    /// Private integration token (`pit-…`). Default: none (this, `token_file`, or `[ghl.oauth]`).
    pub token: Option<Secret>,
    /// File holding the private integration token. Default: none.
    pub token_file: Option<PathBuf>,
    /// Value of the `Version` header. Default `2021-07-28`.
    pub version: String,
    /// OAuth marketplace-app credentials, instead of a private token. Default: none.
    pub oauth: Option<OAuthConfig>,
}

impl Default for GhlConfig {
    fn default() -> Self {
        Self {
            base_url: url("https://services.leadconnectorhq.com"),
            location_id: None,
            token: None,
            token_file: None,
            version: "2021-07-28".into(),
            oauth: None,
        }
    }
}

/// `[ghl.oauth]`: a marketplace app's credentials. `trengo-sync auth ghl` installs the app on
/// the location and stores its tokens in the store; the refresh token rotates on every use and
/// the store keeps the newest one.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OAuthConfig {
    /// OAuth client id. Required with `[ghl.oauth]`.
    pub client_id: Option<String>,
    /// OAuth client secret (or `client_secret_file`).
    pub client_secret: Option<Secret>,
    /// File holding the client secret.
    pub client_secret_file: Option<PathBuf>,
    /// A first refresh token obtained elsewhere (or `refresh_token_file`). Default: none;
    /// `trengo-sync auth ghl` stores one instead. Only seeds a store that holds no tokens.
    pub refresh_token: Option<Secret>,
    /// File holding that first refresh token.
    pub refresh_token_file: Option<PathBuf>,
    /// Token endpoint, for the code exchange and every refresh.
    /// Default `{ghl.base_url}/oauth/token`.
    pub token_url: Option<HttpUrl>,
    /// The app's authorization page, which `auth ghl` prints with the client id, redirect URI and
    /// scopes. Default `https://marketplace.gohighlevel.com/v2/oauth/chooselocation`
    /// (white-label: `https://marketplace.leadconnectorhq.com/v2/oauth/chooselocation`).
    pub authorize_url: Option<HttpUrl>,
    /// A redirect URI registered in the app's Auth settings. Default: none, which `auth ghl
    /// --listen ADDR` reads as `http://ADDR/oauth/callback` (register that one).
    pub redirect_uri: Option<HttpUrl>,
    /// Scopes to ask for. Default: what the enabled features need (`contacts.readonly`,
    /// `contacts.write`, `locations/tasks.readonly`, and `users.readonly` with assignees on).
    pub scopes: Option<Vec<String>>,
}

/// GHL's authorization page for marketplace apps (ghl-api.md §1.2 \[spec S5\]).
pub const DEFAULT_AUTHORIZE_URL: &str =
    "https://marketplace.gohighlevel.com/v2/oauth/chooselocation";

impl GhlConfig {
    /// The token endpoint: `ghl.oauth.token_url`, else `{base_url}/oauth/token`.
    pub fn token_url(&self) -> url::Url {
        match self.oauth.as_ref().and_then(|o| o.token_url.as_ref()) {
            Some(url) => url.url().clone(),
            None => {
                let base = self.base_url.url().as_str().trim_end_matches('/');
                url::Url::parse(&format!("{base}/oauth/token"))
                    .unwrap_or_else(|_| self.base_url.url().clone())
            }
        }
    }
}

/// `[store]`: the SQLite state file.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// Path of the database. Default `/var/lib/trengo-sync/state.sqlite`.
    pub path: PathBuf,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            path: PathBuf::from("/var/lib/trengo-sync/state.sqlite"),
        }
    }
}

/// `[http]`: the status, health, metrics and webhook listener.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Address to listen on. Default `127.0.0.1:8642` (loopback only).
    pub listen: SocketAddr,
    /// Bearer token that `/status` and `/metrics` require (`Authorization: Bearer …`);
    /// `trengo-sync status` sends it. `/healthz`, `/readyz` and the webhooks stay open.
    /// Default: none (open to whoever reaches the listener; `check` warns when that is more
    /// than loopback).
    pub status_token: Option<Secret>,
    /// File holding the status token (or `status_token`).
    pub status_token_file: Option<PathBuf>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8642)),
            status_token: None,
            status_token_file: None,
        }
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Readable lines (the default).
    #[default]
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

/// `[log]`: logging.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// `text` or `json`. Default `text`.
    pub format: LogFormat,
    /// Level or `RUST_LOG`-style filter. Default `info`. `RUST_LOG` wins when set.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::Text,
            level: "info".into(),
        }
    }
}

/// `[schedule]`: when each job runs (cron, 6 fields, seconds first, UTC) and how passes overlap.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScheduleConfig {
    /// Trengo poll. Default `*/30 * * * * *` (every 30 s).
    pub trengo_poll: CronExpr,
    /// GHL poll. Default `15/30 * * * * *` (every 30 s, between Trengo polls).
    pub ghl_poll: CronExpr,
    /// Safety sweep: each run walks a slice of the listings (scope discovery and the changes
    /// that move no watermark) within `limits.sweep_share`. Default `*/3 * * * * *` (every 3 s).
    pub sweep: CronExpr,
    /// Full reconcile. Default `0 30 3 * * *` (nightly, 03:30 UTC).
    pub reconcile: CronExpr,
    /// How far before the pass start the next Trengo watermark is set. Default `10m`.
    pub trengo_overlap: Span,
    /// How far before the pass start the next GHL watermark is set (search index lag). Default `2m`.
    pub ghl_overlap: Span,
    /// How long a stop may let the current pass go on before abandoning it (the intent
    /// journal makes that safe), `1s`–`1h`. Default `20s`.
    pub stop_grace: Span,
}

impl Default for ScheduleConfig {
    fn default() -> Self {
        Self {
            trengo_poll: cron("*/30 * * * * *"),
            ghl_poll: cron("15/30 * * * * *"),
            sweep: cron("*/3 * * * * *"),
            reconcile: cron("0 30 3 * * *"),
            trengo_overlap: Span::secs(600),
            ghl_overlap: Span::secs(120),
            stop_grace: Span::secs(20),
        }
    }
}

/// `[link]`: which items enter the sync, and how links are made.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LinkConfig {
    /// Trengo → GHL: a ticket carrying this label is linked. Default `ghl`. Empty turns the label rule off.
    pub trengo_label: String,
    /// Trengo → GHL: tickets in these channel ids are linked too. Default `[]`.
    pub trengo_channels: Vec<i64>,
    /// Trengo → GHL: tickets of these team ids are linked too. Default `[]`.
    pub trengo_teams: Vec<i64>,
    /// GHL → Trengo: tasks of contacts carrying this tag are linked. Default `trengo`. Empty turns it off.
    pub ghl_tag: String,
    /// GHL → Trengo: tasks whose title starts with this prefix are linked too. Default: none.
    pub ghl_title_prefix: Option<String>,
    /// GHL → Trengo: channel id new tickets are created in. Default: none (GHL → Trengo links off).
    pub trengo_channel_id: Option<i64>,
    /// Create the GHL contact when no contact matches the ticket's e-mail or phone. Default `false`.
    pub create_contacts: bool,
    /// Due date given to tasks created from tickets, from their creation. Default `2d`.
    pub task_due_in: Span,
    /// Initial-sync cutoff: only tickets and tasks created or updated since this are linked
    /// (on the first pass and by discovery later), a date `YYYY-MM-DD` (UTC) or a span back from
    /// each pass such as `30d`. Default: none (everything in scope is linked).
    pub since: Option<Since>,
}

impl Default for LinkConfig {
    fn default() -> Self {
        Self {
            trengo_label: "ghl".into(),
            trengo_channels: Vec::new(),
            trengo_teams: Vec::new(),
            ghl_tag: "trengo".into(),
            ghl_title_prefix: None,
            trengo_channel_id: None,
            create_contacts: false,
            task_due_in: Span::secs(2 * 86_400),
            since: None,
        }
    }
}

/// Which way a field flows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Both ways (the default).
    #[default]
    Both,
    /// Only Trengo → GHL.
    TrengoToGhl,
    /// Only GHL → Trengo.
    GhlToTrengo,
    /// Not synced.
    Off,
}

impl Direction {
    /// Human words for `check`.
    pub fn describe(self) -> &'static str {
        match self {
            Direction::Both => "both ways",
            Direction::TrengoToGhl => "Trengo → GHL only",
            Direction::GhlToTrengo => "GHL → Trengo only",
            Direction::Off => "off",
        }
    }
}

/// A Trengo ticket status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum TicketStatusName {
    /// New or unassigned.
    Open,
    /// Assigned to a user or team.
    Assigned,
    /// Closed.
    Closed,
    /// Marked as spam.
    Invalid,
}

/// What a ticket status means for the task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskState {
    /// The task is open (`completed = false`).
    Open,
    /// The task is done (`completed = true`).
    Done,
}

/// What completing a task does to its ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum OnTaskCompleted {
    /// Close the ticket (the default).
    #[default]
    Close,
    /// Mark the ticket as spam.
    Spam,
}

/// `[status]`: ticket status ⇄ task completion.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StatusConfig {
    /// Which way status flows. Default `both`.
    pub direction: Direction,
    /// Ticket status → task state. Default `OPEN`/`ASSIGNED` → `open`, `CLOSED`/`INVALID` → `done`.
    pub map: BTreeMap<TicketStatusName, TaskState>,
    /// What completing a task does to the ticket: `close` or `spam`. Default `close`.
    pub on_task_completed: OnTaskCompleted,
}

impl Default for StatusConfig {
    fn default() -> Self {
        Self {
            direction: Direction::Both,
            map: BTreeMap::from([
                (TicketStatusName::Open, TaskState::Open),
                (TicketStatusName::Assigned, TaskState::Open),
                (TicketStatusName::Closed, TaskState::Done),
                (TicketStatusName::Invalid, TaskState::Done),
            ]),
            on_task_completed: OnTaskCompleted::Close,
        }
    }
}

/// `[tags]`: ticket labels ⇄ contact tags, for the managed set only.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TagsConfig {
    /// Which way tags flow. Default `both`.
    pub direction: Direction,
    /// Tags managed by name (case-insensitive). Default `[]`.
    pub managed: Vec<String>,
    /// Tags managed by prefix (case-insensitive). Default `trengo:`. Empty turns the prefix rule off.
    pub managed_prefix: String,
    /// Create a Trengo label that a GHL tag needs and Trengo lacks. Default `false`.
    pub create_labels: bool,
}

impl Default for TagsConfig {
    fn default() -> Self {
        Self {
            direction: Direction::Both,
            managed: Vec::new(),
            managed_prefix: "trengo:".into(),
            create_labels: false,
        }
    }
}

/// `[comments]`: Trengo internal notes ⇄ GHL contact notes.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CommentsConfig {
    /// Which way notes flow. Default `both`. GHL text only ever reaches Trengo as an internal note.
    pub direction: Direction,
    /// Also copy customer-facing Trengo messages to GHL notes. Default `false`.
    pub include_customer_messages: bool,
}

impl Default for CommentsConfig {
    fn default() -> Self {
        Self {
            direction: Direction::Both,
            include_customer_messages: false,
        }
    }
}

/// `[assignee]`: Trengo assignee ⇄ GHL task assignee, matched by user e-mail.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AssigneeConfig {
    /// Sync assignees. Default `false`.
    pub enabled: bool,
    /// Which way assignees flow. Default `both`.
    pub direction: Direction,
    /// Trengo user e-mail → GHL user e-mail, where the two differ. Default `{}`.
    pub users: BTreeMap<String, String>,
}

/// How a conflict (both sides changed a field differently) is settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum PolicyName {
    /// The side changed last wins; a tie goes to Trengo (the default).
    #[default]
    Newest,
    /// Trengo wins.
    Trengo,
    /// GHL wins.
    Ghl,
    /// Held for a person: `trengo-sync conflicts` and `trengo-sync resolve`.
    Manual,
}

impl std::fmt::Display for PolicyName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PolicyName::Newest => "newest",
            PolicyName::Trengo => "trengo",
            PolicyName::Ghl => "ghl",
            PolicyName::Manual => "manual",
        })
    }
}

/// `[conflicts]`: the policy per field.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConflictsConfig {
    /// Status policy. Default `newest`.
    pub status: PolicyName,
    /// Tags policy (an add against a remove of the same tag). Default `newest`.
    pub tags: PolicyName,
    /// Assignee policy. Default `newest`.
    pub assignee: PolicyName,
}

/// `[limits]`: rate budgets, retries and brakes.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Trengo requests per minute until the `x-ratelimit-limit` header says otherwise. Default `120`.
    pub trengo_per_minute: u32,
    /// GHL requests per burst window until `X-RateLimit-Max` says otherwise. Default `100`.
    pub ghl_per_window: u32,
    /// GHL burst window. Default `10s`.
    pub ghl_window: Span,
    /// GHL requests per day. Default `200000`.
    pub ghl_per_day: u32,
    /// Share of each API's rate limit the safety sweep may use, `0.0`–`1.0`, spent as an even
    /// rate (a sixth of a window's share saved up at most). Default `0.5`.
    pub sweep_share: f64,
    /// A new sweep cycle (a walk over the Trengo listings, the tagged contacts and the open
    /// tasks; the GHL notes walk goes on across cycles) starts at most this often. Default `5m`.
    pub sweep_cycle: Span,
    /// GHL requests the sweep may make per day, spent as an even rate with at most one
    /// `sweep_cycle`'s worth saved up; at most `ghl_per_day`, which the polls and writes share.
    /// Default `150000`: at 10,000 open links, with GHL's documented 25 tasks a page, a task
    /// walk of about 8 minutes and a notes walk of about 50.
    pub ghl_sweep_per_day: u32,
    /// Timeout of one HTTP request. Default `30s`.
    pub request_timeout: Span,
    /// Attempts for one idempotent request on 5xx, timeouts and dropped connections. Default `5`.
    pub max_attempts: u32,
    /// First wait before retrying a failed item. Default `30s`.
    pub retry_base: Span,
    /// Longest wait between retries of a failed item. Default `1h`.
    pub retry_max: Span,
    /// Attempts at one failing item (a ticket, task or contact) before it is parked as
    /// stuck and no longer retried on its own; `trengo-sync retry` queues it again.
    /// `1`–`1000`. Default `12` (about six hours at the default waits).
    pub item_attempts: u32,
    /// An item failing for longer than this is shown as stuck. Default `6h`.
    pub stuck_after: Span,
    /// The brake: a pass that would close, complete or unlink more than this fraction of the
    /// links stops and writes nothing, `0.0`–`1.0`. Default `0.2`.
    pub brake_fraction: f64,
    /// The brake only applies when at least this many links would change. Default `10`.
    pub brake_min_links: u32,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            trengo_per_minute: 120,
            ghl_per_window: 100,
            ghl_window: Span::secs(10),
            ghl_per_day: 200_000,
            sweep_share: 0.5,
            sweep_cycle: Span::secs(300),
            ghl_sweep_per_day: 150_000,
            request_timeout: Span::secs(30),
            max_attempts: 5,
            retry_base: Span::secs(30),
            retry_max: Span::secs(3600),
            item_attempts: 12,
            stuck_after: Span::secs(6 * 3600),
            brake_fraction: 0.2,
            brake_min_links: 10,
        }
    }
}

/// GHL's published Ed25519 webhook key (SPKI, base64); see `ghl-api.md` §8.2.
pub const GHL_WEBHOOK_PUBLIC_KEY: &str =
    "MCowBQYDK2VwAyEAi2HR1srL4o18O8BRa7gVJY7G7bupbN3H9AwJrHCDiOg=";

/// `[webhooks]`: optional push hints; polling stays the safety net.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhooksConfig {
    /// Accept webhooks on `/webhooks/...`. Default `false`.
    pub enabled: bool,
    /// Trengo signing secrets by event type (`TICKET_CLOSED = "…"`), as Trengo shows them per webhook. Default `{}`.
    pub trengo_secrets: BTreeMap<String, Secret>,
    /// Files holding Trengo signing secrets, by event type (`TICKET_CLOSED =
    /// "/run/credentials/trengo-sync.service/ticket-closed"`), for systemd `LoadCredential=`.
    /// An event is given here or in `trengo_secrets`, not both. Default `{}`.
    pub trengo_secret_files: BTreeMap<String, PathBuf>,
    /// GHL's Ed25519 public key (SPKI, base64). Default: the key GHL publishes.
    pub ghl_public_key: String,
    /// Signatures older than this are refused. Default `5m`.
    pub max_age: Span,
}

impl Default for WebhooksConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            trengo_secrets: BTreeMap::new(),
            trengo_secret_files: BTreeMap::new(),
            ghl_public_key: GHL_WEBHOOK_PUBLIC_KEY.into(),
            max_age: Span::secs(300),
        }
    }
}

/// `[notify]`: alerts to a person when the sync needs one (see `src/notify.rs`). Each channel is
/// off until configured; with neither, nothing is sent.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NotifyConfig {
    /// Outgoing webhook: each alert is POSTed here. A secret (a Slack webhook URL carries its
    /// token). Default: none (off).
    pub webhook_url: Option<Secret>,
    /// File holding `webhook_url` (instead of the key). Default: none.
    pub webhook_url_file: Option<PathBuf>,
    /// The webhook body: `json` (the alert's fields) or `slack` (`{"text": …}`, which Slack,
    /// Mattermost and Google Chat accept). Default `json`.
    pub webhook_format: NotifyFormat,
    /// SMTP server for alert e-mail. Default: none (no e-mail).
    pub smtp_host: Option<String>,
    /// SMTP port. Default `587`.
    pub smtp_port: u16,
    /// `starttls` (upgrade a plain connection; port 587), `tls` (TLS from the start; port 465),
    /// or `none` (plain text: only for a relay on this host). Default `starttls`.
    pub smtp_security: SmtpSecurity,
    /// SMTP user name. Default: none (no authentication).
    pub smtp_username: Option<String>,
    /// SMTP password. Default: none.
    pub smtp_password: Option<Secret>,
    /// File holding `smtp_password`. Default: none.
    pub smtp_password_file: Option<PathBuf>,
    /// Sender address of alert e-mail. Default: none (required with `smtp_host`).
    pub mail_from: Option<String>,
    /// Recipients of alert e-mail. Default `[]` (required with `smtp_host`).
    pub mail_to: Vec<String>,
    /// How often the daemon looks at the alert conditions. Default `30s`.
    pub check_every: Span,
    /// A condition still open is said again after this long. Default `6h`.
    pub repeat_after: Span,
    /// At most this many alert messages an hour; what comes meanwhile is sent together in the
    /// next one. Default `6`.
    pub max_per_hour: u32,
    /// A poll that has not succeeded for this many of its periods alerts. Default `3`.
    pub poll_failed_periods: u32,
    /// Send one digest a day at this hour (UTC, `0`–`23`) instead of each alert at once.
    /// Default: none (alerts at once).
    pub digest_hour: Option<u8>,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        Self {
            webhook_url: None,
            webhook_url_file: None,
            webhook_format: NotifyFormat::Json,
            smtp_host: None,
            smtp_port: 587,
            smtp_security: SmtpSecurity::Starttls,
            smtp_username: None,
            smtp_password: None,
            smtp_password_file: None,
            mail_from: None,
            mail_to: Vec::new(),
            check_every: Span::secs(30),
            repeat_after: Span::secs(6 * 3600),
            max_per_hour: 6,
            poll_failed_periods: 3,
            digest_hour: None,
        }
    }
}

/// `notify.webhook_format` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotifyFormat {
    /// The alert's fields as JSON.
    Json,
    /// `{"text": …}`, as Slack incoming webhooks take.
    Slack,
}

/// `notify.smtp_security` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SmtpSecurity {
    /// STARTTLS on a plain connection (required: a server without it is refused).
    Starttls,
    /// TLS from the first byte.
    Tls,
    /// No encryption.
    None,
}

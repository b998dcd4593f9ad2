//! The rules between keys that types alone cannot check: required credentials, the status
//! table, tag rules, link rules, fractions and limits, and the range of every duration,
//! number and schedule (a value `check` accepts must never panic or spin at run time, issue
//! #13). All problems are reported at once.

use std::collections::BTreeSet;
use std::time::Duration;

use base64::Engine as _;

use super::{
    Config, CronExpr, Direction, OnTaskCompleted, Problem, Span, TaskState, TicketStatusName,
};

/// Trengo webhook event types (`trengo-api.md` §10.2).
pub const TRENGO_EVENTS: &[&str] = &[
    "INBOUND",
    "OUTBOUND",
    "NOTE",
    "TICKET_LABEL_ADDED",
    "TICKET_LABEL_DELETED",
    "TICKET_CREATED",
    "TICKET_ASSIGNED",
    "TICKET_CLOSED",
    "TICKET_MERGED",
    "TICKET_REOPENED",
    "TICKET_MARKED_AS_SPAM",
    "TICKET_UNMARKED_AS_SPAM",
];

struct Checker<'a> {
    origin: &'a dyn Fn(&str) -> String,
    problems: Vec<Problem>,
}

impl Checker<'_> {
    fn fail(&mut self, key: &str, message: impl Into<String>) {
        self.problems.push(Problem {
            origin: (self.origin)(key),
            key: key.to_string(),
            message: message.into(),
        });
    }

    fn fraction(&mut self, key: &str, value: f64, allow_zero: bool) {
        let low_ok = if allow_zero {
            value >= 0.0
        } else {
            value > 0.0
        };
        if !(low_ok && value <= 1.0) || value.is_nan() {
            let range = if allow_zero {
                "0.0 to 1.0"
            } else {
                "above 0.0, up to 1.0"
            };
            self.fail(key, format!("expected a fraction {range}, found {value}"));
        }
    }

    /// `value` must lie within `min..=max`.
    fn span(&mut self, key: &str, value: Span, min: Duration, max: Duration) {
        if value.get() < min || value.get() > max {
            let (lo, hi) = (Span(min), Span(max));
            let low = if min.is_zero() {
                "0s".to_string()
            } else {
                lo.to_string()
            };
            self.fail(
                key,
                format!("expected a duration from {low} to {hi}, found {value}"),
            );
        }
    }

    /// `value` must lie within `min..=max`.
    fn number(&mut self, key: &str, value: i64, min: i64, max: i64) {
        if value < min || value > max {
            self.fail(
                key,
                format!("expected a number from {min} to {max}, found {value}"),
            );
        }
    }

    /// `cron` must fire, and keep firing at least once a year: a schedule that never fires
    /// would leave its job's period undefined (and the watchdog restarting the daemon).
    fn cron(&mut self, key: &str, cron: &CronExpr) {
        if let Err(why) = fires_yearly(cron) {
            self.fail(
                key,
                format!("`{cron}` {why}; a job must run at least once a year"),
            );
        }
    }
}

const SECOND: Duration = Duration::from_secs(1);
const MINUTE: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(86_400);
const YEAR: Duration = Duration::from_secs(366 * 86_400);

/// `Ok` when `cron` fires within a year of a fixed start, and twice more with at most a year
/// between firings (which also refuses a 29 February that fires only every four years).
pub fn fires_yearly(cron: &CronExpr) -> Result<(), String> {
    let parsed = cron.parse_cron()?;
    let year = chrono::Duration::from_std(YEAR).unwrap_or(chrono::Duration::MAX);
    // A fixed start keeps `check` deterministic; 2000 is a leap year.
    let mut at = chrono::DateTime::from_timestamp(946_684_800, 0).unwrap_or_default();
    for _ in 0..3 {
        let next = parsed
            .find_next_occurrence(&at, false)
            .map_err(|_| "never fires".to_string())?;
        if next - at > year {
            return Err(format!(
                "fires less than once a year (after {at}, next at {next})"
            ));
        }
        at = next;
    }
    Ok(())
}

/// Checks the rules between keys; `origin` names where a key's value came from.
pub fn validate(config: &Config, origin: &dyn Fn(&str) -> String) -> Vec<Problem> {
    let mut c = Checker {
        origin,
        problems: Vec::new(),
    };
    credentials(config, &mut c);
    link_rules(config, &mut c);
    status_table(config, &mut c);
    tag_rules(config, &mut c);
    limits(config, &mut c);
    schedule(config, &mut c);
    misc(config, &mut c);
    notify(config, &mut c);
    for (key, why) in super::contacts::problems(config) {
        c.fail(&key, why);
    }
    c.problems
}

fn notify(config: &Config, c: &mut Checker<'_>) {
    let n = &config.notify;
    if let Some(url) = &n.webhook_url
        && !matches!(url::Url::parse(url.expose()), Ok(u) if u.scheme() == "http" || u.scheme() == "https")
    {
        // The value is a secret: the message names the key, never the value.
        c.fail(
            "notify.webhook_url",
            "expected an http:// or https:// URL (the value is not shown: it is a secret)",
        );
    }
    if n.smtp_host.is_some() {
        match &n.mail_from {
            None => c.fail(
                "notify.mail_from",
                "required with notify.smtp_host: the sender address",
            ),
            Some(from) if from.parse::<lettre::message::Mailbox>().is_err() => c.fail(
                "notify.mail_from",
                format!("`{from}` is not an e-mail address"),
            ),
            Some(_) => {}
        }
        if n.mail_to.is_empty() {
            c.fail(
                "notify.mail_to",
                "required with notify.smtp_host: at least one recipient",
            );
        }
        for to in &n.mail_to {
            if to.parse::<lettre::message::Mailbox>().is_err() {
                c.fail("notify.mail_to", format!("`{to}` is not an e-mail address"));
            }
        }
    }
    if n.smtp_password.is_some() && n.smtp_username.is_none() {
        c.fail("notify.smtp_username", "required with notify.smtp_password");
    }
    if n.digest_hour.is_some_and(|h| h > 23) {
        c.fail(
            "notify.digest_hour",
            "expected an hour of the day, 0 to 23 (UTC)",
        );
    }
    if n.poll_failed_periods == 0 {
        c.fail("notify.poll_failed_periods", "expected at least 1");
    }
    if n.max_per_hour == 0 {
        c.fail("notify.max_per_hour", "expected at least 1");
    }
}

fn credentials(config: &Config, c: &mut Checker<'_>) {
    if config.trengo.token.is_none() {
        c.fail(
            "trengo.token",
            "missing: set `trengo.token`, `trengo.token_file`, or the environment variable \
             TRENGO_SYNC__TRENGO__TOKEN to a Trengo personal access token",
        );
    }
    match config.ghl.location_id.as_deref().map(str::trim) {
        None | Some("") => c.fail(
            "ghl.location_id",
            "missing: set `ghl.location_id` to the GHL sub-account (location) id",
        ),
        Some(_) => {}
    }
    if config.ghl.version.trim().is_empty() {
        c.fail(
            "ghl.version",
            "must not be empty (GHL requires a `Version` header; use `2021-07-28`)",
        );
    }
    match (&config.ghl.token, &config.ghl.oauth) {
        (None, None) => c.fail(
            "ghl.token",
            "missing: set `ghl.token` (or `ghl.token_file`) to a private integration token, \
             or configure `[ghl.oauth]`",
        ),
        (Some(_), Some(_)) => c.fail(
            "ghl.oauth",
            "both a private token (`ghl.token`) and `[ghl.oauth]` are set: keep one",
        ),
        (None, Some(oauth)) => {
            if oauth
                .client_id
                .as_deref()
                .is_none_or(|s| s.trim().is_empty())
            {
                c.fail(
                    "ghl.oauth.client_id",
                    "missing: the marketplace app's client id",
                );
            }
            if oauth.client_secret.is_none() {
                c.fail(
                    "ghl.oauth.client_secret",
                    "missing: set `client_secret` or `client_secret_file`",
                );
            }
            if let Some(scopes) = &oauth.scopes
                && scopes.iter().all(|s| s.trim().is_empty())
            {
                c.fail(
                    "ghl.oauth.scopes",
                    "empty: leave it out to ask for what the enabled features need",
                );
            }
        }
        (Some(_), None) => {}
    }
}

fn link_rules(config: &Config, c: &mut Checker<'_>) {
    let link = &config.link;
    let trengo_rule = !link.trengo_label.trim().is_empty()
        || !link.trengo_channels.is_empty()
        || !link.trengo_teams.is_empty();
    let ghl_rule = !link.ghl_tag.trim().is_empty() || link.ghl_title_prefix.is_some();
    let ghl_rule_usable = ghl_rule && link.trengo_channel_id.is_some();
    if !(trengo_rule || ghl_rule_usable) {
        c.fail(
            "link",
            "no link rule is on, so nothing would ever sync: set `link.trengo_label` (or \
             `trengo_channels`/`trengo_teams`), or `link.ghl_tag` together with \
             `link.trengo_channel_id`",
        );
    }
    if let Some(prefix) = &link.ghl_title_prefix
        && prefix.trim().is_empty()
    {
        c.fail(
            "link.ghl_title_prefix",
            "must not be empty; remove the key to turn it off",
        );
    }
    // A due date is `now + task_due_in`: ten years is as far as any task is meant to be.
    c.span("link.task_due_in", link.task_due_in, MINUTE, 3650 * DAY);
    for (key, ids) in [
        ("link.trengo_channels", &link.trengo_channels),
        ("link.trengo_teams", &link.trengo_teams),
    ] {
        for id in ids.iter().filter(|id| **id <= 0) {
            c.fail(key, format!("expected ids above 0, found {id}"));
        }
    }
    if let Some(id) = link.trengo_channel_id
        && id <= 0
    {
        c.fail(
            "link.trengo_channel_id",
            format!("expected an id above 0, found {id}"),
        );
    }
}

fn status_table(config: &Config, c: &mut Checker<'_>) {
    let status = &config.status;
    if status.direction == Direction::Off {
        return;
    }
    let all = [
        TicketStatusName::Open,
        TicketStatusName::Assigned,
        TicketStatusName::Closed,
        TicketStatusName::Invalid,
    ];
    let missing: Vec<_> = all
        .iter()
        .filter(|s| !status.map.contains_key(s))
        .map(|s| format!("{s:?}").to_uppercase())
        .collect();
    if !missing.is_empty() {
        c.fail(
            "status.map",
            format!(
                "every ticket status needs a task state (`open` or `done`); missing: {}",
                missing.join(", ")
            ),
        );
        return;
    }
    let state = |s: TicketStatusName| status.map.get(&s).copied();
    let completed_to = match status.on_task_completed {
        OnTaskCompleted::Close => TicketStatusName::Closed,
        OnTaskCompleted::Spam => TicketStatusName::Invalid,
    };
    if state(completed_to) != Some(TaskState::Done) {
        c.fail(
            "status.map",
            format!(
                "completing a task makes the ticket {}, which the table maps to `open`: the \
                 two would undo each other on every pass. Map {} to `done`",
                format!("{completed_to:?}").to_uppercase(),
                format!("{completed_to:?}").to_uppercase()
            ),
        );
    }
    // Reopening a ticket gives OPEN or ASSIGNED (trengo-api.md §4.1): both must mean open.
    for s in [TicketStatusName::Open, TicketStatusName::Assigned] {
        if state(s) != Some(TaskState::Open) {
            c.fail(
                "status.map",
                format!(
                    "{} must map to `open`: a reopened ticket comes back as OPEN or ASSIGNED, \
                     and mapping it to `done` would complete the task again at once",
                    format!("{s:?}").to_uppercase()
                ),
            );
        }
    }
}

fn tag_rules(config: &Config, c: &mut Checker<'_>) {
    let tags = &config.tags;
    let mut seen = BTreeSet::new();
    for (i, name) in tags.managed.iter().enumerate() {
        let key = format!("tags.managed[{i}]");
        let norm = name.trim().to_lowercase();
        if norm.is_empty() {
            c.fail("tags.managed", format!("entry {i} is empty"));
        } else if !seen.insert(norm.clone()) {
            c.fail(
                "tags.managed",
                format!("`{name}` is listed twice (tags compare case-insensitively) at {key}"),
            );
        }
    }
    if tags.direction != Direction::Off
        && tags.managed.is_empty()
        && tags.managed_prefix.trim().is_empty()
    {
        c.fail(
            "tags",
            "no managed tags: set `tags.managed` or `tags.managed_prefix`, or `tags.direction = \"off\"` \
             (only managed tags are ever written)",
        );
    }
    if tags.managed_prefix != tags.managed_prefix.trim() {
        c.fail("tags.managed_prefix", "must not start or end with spaces");
    }
}

fn limits(config: &Config, c: &mut Checker<'_>) {
    let l = &config.limits;
    c.number(
        "limits.trengo_per_minute",
        l.trengo_per_minute.into(),
        1,
        100_000,
    );
    c.number("limits.ghl_per_window", l.ghl_per_window.into(), 1, 100_000);
    c.number("limits.ghl_per_day", l.ghl_per_day.into(), 1, 100_000_000);
    c.number("limits.max_attempts", l.max_attempts.into(), 1, 100);
    c.number("limits.item_attempts", l.item_attempts.into(), 1, 1000);
    c.number(
        "limits.brake_min_links",
        l.brake_min_links.into(),
        0,
        1_000_000,
    );
    c.span("limits.ghl_window", l.ghl_window, SECOND, HOUR);
    c.span(
        "limits.request_timeout",
        l.request_timeout,
        SECOND,
        10 * MINUTE,
    );
    c.span("limits.retry_base", l.retry_base, SECOND, DAY);
    c.span("limits.retry_max", l.retry_max, SECOND, 30 * DAY);
    c.span("limits.stuck_after", l.stuck_after, MINUTE, 365 * DAY);
    if l.retry_base > l.retry_max {
        c.fail(
            "limits.retry_base",
            format!(
                "is longer ({}) than `limits.retry_max` ({})",
                l.retry_base, l.retry_max
            ),
        );
    }
    c.fraction("limits.sweep_share", l.sweep_share, true);
    if l.ghl_sweep_per_day > l.ghl_per_day {
        c.fail(
            "limits.ghl_sweep_per_day",
            format!(
                "is more ({}) than GHL allows a location per day (`limits.ghl_per_day` = {})",
                l.ghl_sweep_per_day, l.ghl_per_day
            ),
        );
    }
    if l.ghl_sweep_per_day < 24 {
        c.fail(
            "limits.ghl_sweep_per_day",
            "expected at least 24 (one request an hour); without it the sweep could never read GHL",
        );
    }
    if l.sweep_cycle.get().is_zero() {
        c.fail(
            "limits.sweep_cycle",
            "expected a duration above zero, such as `5m`",
        );
    }
    c.fraction("limits.brake_fraction", l.brake_fraction, false);
}

fn schedule(config: &Config, c: &mut Checker<'_>) {
    let s = &config.schedule;
    c.cron("schedule.trengo_poll", &s.trengo_poll);
    c.cron("schedule.ghl_poll", &s.ghl_poll);
    c.cron("schedule.sweep", &s.sweep);
    c.cron("schedule.reconcile", &s.reconcile);
    // The watermark is `pass start - overlap`: a week is far more than any index lags.
    c.span(
        "schedule.trengo_overlap",
        s.trengo_overlap,
        Duration::ZERO,
        7 * DAY,
    );
    c.span(
        "schedule.ghl_overlap",
        s.ghl_overlap,
        Duration::ZERO,
        7 * DAY,
    );
    // systemd stops waiting after the unit's TimeoutStopSec (45 s in ours).
    c.span("schedule.stop_grace", s.stop_grace, SECOND, HOUR);
    c.span("webhooks.max_age", config.webhooks.max_age, SECOND, DAY);
    if config.store.path.to_string_lossy().trim().is_empty() {
        c.fail(
            "store.path",
            "must not be empty: set it to the state file, such as \
             `/var/lib/trengo-sync/state.sqlite`",
        );
    }
}

fn misc(config: &Config, c: &mut Checker<'_>) {
    if tracing_subscriber::EnvFilter::try_new(&config.log.level).is_err() {
        c.fail(
            "log.level",
            format!(
                "expected a level (`error`, `warn`, `info`, `debug`, `trace`) or a RUST_LOG-style \
                 filter, found `{}`",
                config.log.level
            ),
        );
    }
    for (trengo, ghl) in &config.assignee.users {
        if !trengo.contains('@') || !ghl.contains('@') {
            c.fail(
                "assignee.users",
                format!("expected e-mail addresses on both sides, found `{trengo}` = `{ghl}`"),
            );
        }
    }
    for event in config.webhooks.trengo_secrets.keys() {
        if !TRENGO_EVENTS.contains(&event.as_str()) {
            c.fail(
                &format!("webhooks.trengo_secrets.{event}"),
                format!(
                    "unknown Trengo event type; expected one of {}",
                    TRENGO_EVENTS.join(", ")
                ),
            );
        }
    }
    if ghl_public_key(&config.webhooks.ghl_public_key).is_none() {
        c.fail(
            "webhooks.ghl_public_key",
            "expected GHL's Ed25519 public key as base64 of its SPKI DER form (44 bytes)",
        );
    }
}

/// Decodes an Ed25519 SPKI public key given as base64; `None` when it is not one.
pub fn ghl_public_key(b64: &str) -> Option<ed25519_dalek::VerifyingKey> {
    use ed25519_dalek::pkcs8::DecodePublicKey;
    let der = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .ok()?;
    ed25519_dalek::VerifyingKey::from_public_key_der(&der).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_published_ghl_key_decodes() {
        assert!(ghl_public_key(super::super::GHL_WEBHOOK_PUBLIC_KEY).is_some());
        assert!(ghl_public_key("bm90IGEga2V5").is_none());
    }
}

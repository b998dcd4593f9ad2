//! The rules between keys that types alone cannot check: required credentials, the status
//! table, tag rules, link rules, fractions and limits. All problems are reported at once.

use std::collections::BTreeSet;

use base64::Engine as _;

use super::{Config, Direction, OnTaskCompleted, Problem, TaskState, TicketStatusName};

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
    misc(config, &mut c);
    c.problems
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
            if oauth.refresh_token.is_none() {
                c.fail(
                    "ghl.oauth.refresh_token",
                    "missing: set `refresh_token` or `refresh_token_file` to the refresh token \
                     of the app's install (later rotations are kept in the store)",
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
    if link.task_due_in.get().is_zero() {
        c.fail(
            "link.task_due_in",
            "expected a duration above zero, such as `2d`",
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
    if l.trengo_per_minute == 0 {
        c.fail("limits.trengo_per_minute", "expected at least 1");
    }
    if l.ghl_per_window == 0 {
        c.fail("limits.ghl_per_window", "expected at least 1");
    }
    if l.ghl_per_day == 0 {
        c.fail("limits.ghl_per_day", "expected at least 1");
    }
    if l.ghl_window.get().is_zero() {
        c.fail(
            "limits.ghl_window",
            "expected a duration above zero, such as `10s`",
        );
    }
    if l.request_timeout.get().is_zero() {
        c.fail(
            "limits.request_timeout",
            "expected a duration above zero, such as `30s`",
        );
    }
    if l.max_attempts == 0 {
        c.fail("limits.max_attempts", "expected at least 1");
    }
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

fn misc(config: &Config, c: &mut Checker<'_>) {
    if config.schedule.stop_grace.get().is_zero() {
        c.fail(
            "schedule.stop_grace",
            "expected a duration above zero, such as `20s`",
        );
    }
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

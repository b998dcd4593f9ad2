//! Alerts (`[notify]`): telling a person when the sync needs one, and when it recovered.
//!
//! Conditions, looked at every `notify.check_every` by a task of the daemon ([`spawn`]):
//! items stuck past `limits.stuck_after`, GHL needing re-authorisation (its OAuth refresh was
//! refused), the brake having stopped a pass, a poll that has not succeeded for
//! `notify.poll_failed_periods` of its periods, and the scheduler not ticking. Each condition
//! has a key; [`Alerter`] (pure, clock passed in) turns the open keys into events: *fired* when
//! a key opens, *recovered* when it closes, *still* when it stays open past
//! `notify.repeat_after`. So an alert is said once, not at every check (de-duplication). All
//! events of one check go out as one message, at most `notify.max_per_hour` messages an hour;
//! what comes meanwhile waits and goes with the next. With `notify.digest_hour` set, events are
//! collected and sent once a day at that hour.
//!
//! Channels: an outgoing webhook (JSON, or Slack's `{"text": …}`) through reqwest, and e-mail
//! over SMTP through lettre (rustls; STARTTLS, TLS or plain for a local relay). Secrets (the
//! webhook URL, the SMTP password) come from the configuration or their `*_file` keys and are
//! never logged: a failed send names the channel and the error without the URL.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Timelike as _, Utc};
use serde::Serialize;

use crate::clock::SharedClock;
use crate::config::{NotifyConfig, NotifyFormat, SmtpSecurity};
use crate::daemon::jobs::JobBoard;
use crate::daemon::status::Readiness;
use crate::store::StoreHandle;

/// The open conditions at one check: key → what to say.
pub type Conditions = BTreeMap<String, String>;

/// What happened to one condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// It opened.
    Fired,
    /// It is still open (said again after `notify.repeat_after`).
    Still,
    /// It closed.
    Recovered,
}

/// One alert event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Event {
    /// The condition (`stuck`, `ghl_reauth`, `brake`, `poll_failing:trengo_poll`, `scheduler`).
    pub key: String,
    /// Fired, still or recovered.
    pub state: State,
    /// What it is about, in words.
    pub detail: String,
    /// When it was seen.
    pub at: DateTime<Utc>,
}

impl Event {
    fn line(&self) -> String {
        let word = match self.state {
            State::Fired => "ALERT",
            State::Still => "STILL",
            State::Recovered => "RECOVERED",
        };
        format!("[{word}] {}: {}", self.key, self.detail)
    }
}

/// One message to send: the events it carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Message {
    /// A subject line.
    pub subject: String,
    /// The events, oldest first.
    pub events: Vec<Event>,
}

impl Message {
    /// The text body: one line per event.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for e in &self.events {
            out.push_str(&e.line());
            out.push('\n');
        }
        out
    }
}

#[derive(Debug)]
struct Open {
    last_said: DateTime<Utc>,
}

/// The pure state machine: open conditions in, messages out (see the module doc).
#[derive(Debug)]
pub struct Alerter {
    repeat_after: chrono::Duration,
    max_per_hour: usize,
    digest_hour: Option<u8>,
    open: BTreeMap<String, Open>,
    pending: Vec<Event>,
    sent: VecDeque<DateTime<Utc>>,
    last_digest_day: Option<chrono::NaiveDate>,
}

impl Alerter {
    /// An alerter with the configured repeat, rate limit and digest.
    pub fn new(config: &NotifyConfig) -> Self {
        Alerter {
            repeat_after: config.repeat_after.chrono(),
            max_per_hour: config.max_per_hour.max(1) as usize,
            digest_hour: config.digest_hour,
            open: BTreeMap::new(),
            pending: Vec::new(),
            sent: VecDeque::new(),
            last_digest_day: None,
        }
    }

    /// Takes the conditions open at `now`; returns the message to send now, if any.
    pub fn observe(&mut self, conditions: &Conditions, now: DateTime<Utc>) -> Option<Message> {
        for (key, detail) in conditions {
            let state = match self.open.get_mut(key) {
                None => Some(State::Fired),
                Some(o) if now - o.last_said >= self.repeat_after => Some(State::Still),
                Some(_) => None,
            };
            if let Some(state) = state {
                self.open.insert(key.clone(), Open { last_said: now });
                self.pending.push(Event {
                    key: key.clone(),
                    state,
                    detail: detail.clone(),
                    at: now,
                });
            }
        }
        let closed: Vec<String> = self
            .open
            .keys()
            .filter(|k| !conditions.contains_key(*k))
            .cloned()
            .collect();
        for key in closed {
            self.open.remove(&key);
            self.pending.push(Event {
                key,
                state: State::Recovered,
                detail: "back to normal".into(),
                at: now,
            });
        }
        if self.pending.is_empty() {
            return None;
        }
        match self.digest_hour {
            Some(hour) => {
                let today = now.date_naive();
                if u32::from(hour) != now.hour() || self.last_digest_day == Some(today) {
                    return None;
                }
                self.last_digest_day = Some(today);
                let events = std::mem::take(&mut self.pending);
                Some(Message {
                    subject: format!("trengo-sync daily digest: {} events", events.len()),
                    events,
                })
            }
            None => {
                while self
                    .sent
                    .front()
                    .is_some_and(|t| now - *t >= chrono::Duration::hours(1))
                {
                    self.sent.pop_front();
                }
                if self.sent.len() >= self.max_per_hour {
                    return None;
                }
                self.sent.push_back(now);
                let events = std::mem::take(&mut self.pending);
                let fired = events
                    .iter()
                    .filter(|e| e.state != State::Recovered)
                    .count();
                let subject = match (fired, events.len()) {
                    (0, _) => format!("trengo-sync recovered: {}", keys(&events)),
                    _ => format!("trengo-sync needs attention: {}", keys(&events)),
                };
                Some(Message { subject, events })
            }
        }
    }
}

fn keys(events: &[Event]) -> String {
    let mut keys: Vec<&str> = events.iter().map(|e| e.key.as_str()).collect();
    keys.dedup();
    keys.join(", ")
}

/// Where alerts go, built from `[notify]`.
#[derive(Clone)]
pub struct Notifier {
    config: NotifyConfig,
    http: reqwest::Client,
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL and password are secrets: say only which channels are on.
        f.debug_struct("Notifier")
            .field("webhook", &self.config.webhook_url.is_some())
            .field("smtp_host", &self.config.smtp_host)
            .finish()
    }
}

impl Notifier {
    /// A notifier, or `None` when `[notify]` configures no channel.
    pub fn from_config(config: &NotifyConfig) -> anyhow::Result<Option<Self>> {
        if config.webhook_url.is_none() && config.smtp_host.is_none() {
            return Ok(None);
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .build()
            .map_err(|e| anyhow::anyhow!("cannot set up the alert webhook's HTTP client: {e}"))?;
        Ok(Some(Notifier {
            config: config.clone(),
            http,
        }))
    }

    /// Sends `message` through every channel; returns one line per channel saying how it went.
    pub async fn send(&self, message: &Message) -> Vec<Result<String, String>> {
        let mut out = Vec::new();
        if self.config.webhook_url.is_some() {
            out.push(self.send_webhook(message).await);
        }
        if self.config.smtp_host.is_some() {
            out.push(self.send_mail(message).await);
        }
        out
    }

    async fn send_webhook(&self, message: &Message) -> Result<String, String> {
        let Some(url) = &self.config.webhook_url else {
            return Err("notify.webhook_url is not set".into());
        };
        let body = match self.config.webhook_format {
            NotifyFormat::Json => serde_json::json!({
                "source": "trengo-sync",
                "subject": message.subject,
                "text": message.text(),
                "events": message.events,
            }),
            NotifyFormat::Slack => serde_json::json!({
                "text": format!("*{}*\n{}", message.subject, message.text()),
            }),
        };
        let answer = self
            .http
            .post(url.expose())
            .json(&body)
            .send()
            .await
            // Without the URL: it may carry a token.
            .map_err(|e| format!("webhook (notify.webhook_url): {}", e.without_url()))?;
        let status = answer.status();
        if status.is_success() {
            Ok(format!("webhook: delivered (HTTP {status})"))
        } else {
            Err(format!(
                "webhook (notify.webhook_url): answered HTTP {status}; check the URL and the \
                 receiving service"
            ))
        }
    }

    async fn send_mail(&self, message: &Message) -> Result<String, String> {
        use lettre::{AsyncSmtpTransport, AsyncTransport as _, Tokio1Executor};
        let c = &self.config;
        let host = c.smtp_host.clone().unwrap_or_default();
        let fail = |what: String| format!("e-mail (notify.smtp_host {host}): {what}");
        let from = c
            .mail_from
            .as_deref()
            .unwrap_or_default()
            .parse()
            .map_err(|e| fail(format!("notify.mail_from: {e}")))?;
        let mut builder = lettre::Message::builder()
            .from(from)
            .subject(message.subject.clone());
        for to in &c.mail_to {
            builder = builder.to(to
                .parse()
                .map_err(|e| fail(format!("notify.mail_to `{to}`: {e}")))?);
        }
        let mail = builder
            .header(lettre::message::header::ContentType::TEXT_PLAIN)
            .body(message.text())
            .map_err(|e| fail(e.to_string()))?;
        let mut transport = match c.smtp_security {
            SmtpSecurity::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&host)
                .map_err(|e| fail(e.to_string()))?,
            SmtpSecurity::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&host)
                .map_err(|e| fail(e.to_string()))?,
            SmtpSecurity::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&host),
        }
        .port(c.smtp_port)
        .timeout(Some(Duration::from_secs(20)));
        if let (Some(user), Some(password)) = (&c.smtp_username, &c.smtp_password) {
            transport =
                transport.credentials(lettre::transport::smtp::authentication::Credentials::new(
                    user.clone(),
                    password.expose().to_string(),
                ));
        }
        transport
            .build()
            .send(mail)
            .await
            .map_err(|e| fail(e.to_string()))?;
        Ok(format!("e-mail: sent to {}", c.mail_to.join(", ")))
    }
}

/// `trengo-sync notify test`: one test message through every configured channel.
pub async fn test_command(config: &NotifyConfig, now: DateTime<Utc>) -> anyhow::Result<String> {
    let Some(notifier) = Notifier::from_config(config)? else {
        anyhow::bail!(
            "no alert channel is configured: set notify.webhook_url (or webhook_url_file) or \
             notify.smtp_host in [notify]"
        );
    };
    let message = Message {
        subject: "trengo-sync test alert".into(),
        events: vec![Event {
            key: "test".into(),
            state: State::Fired,
            detail: "a test from `trengo-sync notify test`; nothing is wrong".into(),
            at: now,
        }],
    };
    let mut out = String::new();
    let mut failed = Vec::new();
    for result in notifier.send(&message).await {
        match result {
            Ok(line) => {
                out.push_str(&line);
                out.push('\n');
            }
            Err(e) => failed.push(e),
        }
    }
    if !failed.is_empty() {
        anyhow::bail!("{out}{}", failed.join("\n"));
    }
    Ok(out)
}

/// What the daemon's alert task looks at.
pub struct Watch {
    /// The configuration's `[notify]`.
    pub config: NotifyConfig,
    /// `limits.stuck_after`.
    pub stuck_after: Duration,
    /// The job board (ticks and successes).
    pub board: Arc<JobBoard>,
    /// Readiness (API failures, the brake).
    pub readiness: Arc<Readiness>,
    /// The store (stuck items).
    pub store: StoreHandle,
    /// The clock.
    pub clock: SharedClock,
}

/// The conditions open now (see the module doc).
pub async fn conditions(watch: &Watch, started: DateTime<Utc>) -> Conditions {
    let now = watch.clock.now();
    let mut open = Conditions::new();
    let stuck_after = watch.stuck_after;
    if let Ok(stuck) = watch
        .store
        .call(move |s| crate::store::retries::stuck(s.conn(), now, stuck_after))
        .await
        && !stuck.is_empty()
    {
        let items: Vec<&str> = stuck.iter().take(5).map(|r| r.item.as_str()).collect();
        open.insert(
            "stuck".into(),
            format!(
                "{} items failing for more than {}s (limits.stuck_after): {}{}; `trengo-sync status` lists them",
                stuck.len(),
                stuck_after.as_secs(),
                items.join(", "),
                if stuck.len() > 5 { ", …" } else { "" }
            ),
        );
    }
    let ready = watch.readiness.report(now, Duration::from_secs(0));
    for api in &ready.apis {
        if api.api == "ghl"
            && let (Some(failure), Some(at)) = (&api.last_failure, api.last_failure_at)
            && api.last_ok.is_none_or(|ok| ok < at)
            && failure.contains(crate::ghl::auth::REINSTALL_HINT)
        {
            open.insert(
                "ghl_reauth".into(),
                format!("GHL needs re-authorising: {failure}"),
            );
        }
    }
    if let Some(brake) = &ready.brake {
        open.insert("brake".into(), brake.clone());
    }
    for job in watch.board.statuses() {
        if !job.name.ends_with("_poll") {
            continue;
        }
        let since = job.last_success.unwrap_or(started);
        let allowed =
            Duration::from_secs(job.period_secs).saturating_mul(watch.config.poll_failed_periods);
        if (now - since).to_std().unwrap_or(Duration::ZERO) > allowed {
            open.insert(
                format!("poll_failing:{}", job.name),
                format!(
                    "{} has not succeeded since {} (more than {} periods of {}s); last outcome: {}",
                    job.name,
                    since.to_rfc3339(),
                    watch.config.poll_failed_periods,
                    job.period_secs,
                    job.last_outcome.as_deref().unwrap_or("none yet")
                ),
            );
        }
    }
    if let Err(reason) = watch.board.health(now) {
        open.insert("scheduler".into(), reason);
    }
    open
}

/// Starts the daemon's alert task, or returns `None` when no channel is configured. It looks
/// at the conditions every `notify.check_every` until `stop` turns true.
pub fn spawn(
    watch: Watch,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<Option<tokio::task::JoinHandle<()>>> {
    let Some(notifier) = Notifier::from_config(&watch.config)? else {
        return Ok(None);
    };
    Ok(Some(tokio::spawn(async move {
        let mut alerter = Alerter::new(&watch.config);
        let started = watch.clock.now();
        let every = watch.config.check_every.get().max(Duration::from_secs(1));
        loop {
            tokio::select! {
                _ = stop.wait_for(|s| *s) => return,
                _ = tokio::time::sleep(every) => {}
            }
            let open = conditions(&watch, started).await;
            if let Some(message) = alerter.observe(&open, watch.clock.now()) {
                for result in notifier.send(&message).await {
                    match result {
                        Ok(line) => {
                            tracing::info!(subject = %message.subject, "alert sent: {line}")
                        }
                        Err(e) => tracing::warn!(subject = %message.subject, "alert not sent: {e}"),
                    }
                }
            }
        }
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn open(keys: &[&str]) -> Conditions {
        keys.iter()
            .map(|k| (k.to_string(), format!("{k} detail")))
            .collect()
    }

    fn states(m: &Message) -> Vec<(String, State)> {
        m.events.iter().map(|e| (e.key.clone(), e.state)).collect()
    }

    #[test]
    fn an_alert_is_said_once_then_again_after_repeat_and_on_recovery() {
        let mut a = Alerter::new(&NotifyConfig::default());
        let m = a
            .observe(&open(&["brake"]), at("2026-01-01T00:00:00Z"))
            .unwrap();
        assert_eq!(states(&m), vec![("brake".into(), State::Fired)]);
        assert!(
            a.observe(&open(&["brake"]), at("2026-01-01T00:01:00Z"))
                .is_none()
        );
        let m = a
            .observe(&open(&["brake"]), at("2026-01-01T06:00:00Z"))
            .unwrap();
        assert_eq!(states(&m), vec![("brake".into(), State::Still)]);
        let m = a.observe(&open(&[]), at("2026-01-01T06:01:00Z")).unwrap();
        assert_eq!(states(&m), vec![("brake".into(), State::Recovered)]);
        assert!(a.observe(&open(&[]), at("2026-01-01T06:02:00Z")).is_none());
    }

    #[test]
    fn past_the_hourly_limit_events_wait_for_the_next_message() {
        let config = NotifyConfig {
            max_per_hour: 1,
            ..NotifyConfig::default()
        };
        let mut a = Alerter::new(&config);
        assert!(
            a.observe(&open(&["a"]), at("2026-01-01T00:00:00Z"))
                .is_some()
        );
        assert!(
            a.observe(&open(&["a", "b"]), at("2026-01-01T00:10:00Z"))
                .is_none()
        );
        assert!(
            a.observe(&open(&["b"]), at("2026-01-01T00:20:00Z"))
                .is_none()
        );
        let m = a
            .observe(&open(&["b"]), at("2026-01-01T01:00:00Z"))
            .unwrap();
        assert_eq!(
            states(&m),
            vec![("b".into(), State::Fired), ("a".into(), State::Recovered)]
        );
    }

    #[test]
    fn a_digest_collects_the_days_events_and_goes_out_at_its_hour() {
        let config = NotifyConfig {
            digest_hour: Some(8),
            ..NotifyConfig::default()
        };
        let mut a = Alerter::new(&config);
        assert!(
            a.observe(&open(&["a"]), at("2026-01-01T01:00:00Z"))
                .is_none()
        );
        assert!(a.observe(&open(&[]), at("2026-01-01T02:00:00Z")).is_none());
        let m = a
            .observe(&open(&["b"]), at("2026-01-01T08:00:00Z"))
            .unwrap();
        assert_eq!(m.events.len(), 3);
        assert!(m.subject.contains("digest"));
        assert!(a.observe(&open(&[]), at("2026-01-01T08:30:00Z")).is_none());
    }
}

//! The running Trengo fake's shared state ([`TrengoSimState`]) and its in-process admin
//! surface: what a test (or the demo) does to Trengo as a person in its web UI would.
//!
//! Admin edits go through the same operations as API calls, so they bump timestamps and fire
//! webhooks alike; they are made by a human agent rather than the token user, and they are
//! not counted as API requests.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, SubsecRound, Utc};
use serde_json::Value;

use crate::clock::SharedClock;
use crate::sim::faults::{CounterSnapshot, FaultInjector, Faults, RequestCounters};

use super::model::{Event, MessageType, SimError, TrengoState};
use super::ops::{Assignment, Edit};
use super::options::{TrengoFakeOptions, TrengoSwitches};
use super::render::Renderer;
use super::seed::SeedSpec;
use super::webhooks::{Delivery, Outbox, WebhookDelivery, form_body, sign};

/// The shared state of one Trengo fake; cheap to clone (an `Arc`).
#[derive(Debug, Clone)]
pub struct TrengoSimState {
    pub(crate) shared: Arc<Shared>,
}

#[derive(Debug)]
pub(crate) struct Shared {
    // std mutexes: every critical section is synchronous and short, never across an await.
    pub(crate) world: Mutex<TrengoState>,
    pub(crate) options: Mutex<TrengoFakeOptions>,
    pub(crate) clock: SharedClock,
    pub(crate) base_url: String,
    pub(crate) web_url: String,
    pub(crate) faults: FaultInjector,
    pub(crate) counters: RequestCounters,
    pub(crate) budget: Mutex<RateWindow>,
    pub(crate) outbox: Outbox,
}

/// The rate-limit window of the token: a minute from its first request, on the injected clock.
#[derive(Debug, Default)]
pub(crate) struct RateWindow {
    pub(crate) started: Option<DateTime<Utc>>,
    pub(crate) used: u32,
}

/// What the rate limiter decided for one request.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Budget {
    pub(crate) limit: u32,
    pub(crate) remaining: u32,
    /// `Some(seconds until the window resets, reset unix time)` when over the limit.
    pub(crate) exceeded: Option<(i64, i64)>,
}

/// A new ticket made through the admin surface, as a customer writing in.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct CustomerTicket {
    /// The customer.
    pub contact_id: i64,
    /// The channel it arrives on.
    pub channel_id: i64,
    /// Subject (e-mail channels).
    #[serde(default)]
    pub subject: Option<String>,
    /// The customer's first message.
    pub message: String,
}

impl TrengoSimState {
    /// A fake seeded with [`SeedSpec::default`] whose links point at `base_url`
    /// (`http://host:port/api/v2`) and whose ticket pages live under `web_url`.
    pub fn new(
        options: TrengoFakeOptions,
        clock: SharedClock,
        base_url: String,
        web_url: String,
    ) -> Self {
        let mut world = TrengoState::empty(options.agency_id, options.api_user.id, options.seed);
        world.seed(
            &SeedSpec::default(),
            &options.api_user,
            options.agency_id,
            options.seed,
            clock.now().trunc_subsecs(0),
        );
        let faults = FaultInjector::new(options.seed);
        Self {
            shared: Arc::new(Shared {
                world: Mutex::new(world),
                options: Mutex::new(options),
                clock,
                base_url,
                web_url,
                faults,
                counters: RequestCounters::default(),
                budget: Mutex::new(RateWindow::default()),
                outbox: Outbox::default(),
            }),
        }
    }

    /// `http://127.0.0.1:PORT/api/v2`.
    pub fn base_url(&self) -> &str {
        &self.shared.base_url
    }

    /// The web app's base; a ticket's page is `{web_url}/tickets/{id}`.
    pub fn web_url(&self) -> &str {
        &self.shared.web_url
    }

    /// The web page of ticket `id`, as agents would link it.
    pub fn ticket_url(&self, id: i64) -> String {
        format!("{}/tickets/{id}", self.shared.web_url)
    }

    pub(crate) fn options(&self) -> TrengoFakeOptions {
        self.shared
            .options
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The instant of an edit: whole seconds, as Trengo stores them.
    pub(crate) fn now(&self) -> DateTime<Utc> {
        self.shared.clock.now().trunc_subsecs(0)
    }

    /// Runs `f` on the world (locked only for `f`) and returns its result.
    pub(crate) fn read<T>(&self, f: impl FnOnce(&TrengoState, &TrengoFakeOptions) -> T) -> T {
        let options = self.options();
        let world = self.shared.world.lock().unwrap_or_else(|e| e.into_inner());
        f(&world, &options)
    }

    /// Runs an edit by `user_id` and delivers the webhook events it fired.
    pub(crate) fn edit<T>(
        &self,
        user_id: Option<i64>,
        f: impl FnOnce(&mut TrengoState, &Edit) -> Result<(T, Vec<Event>), SimError>,
    ) -> Result<T, SimError> {
        let options = self.options();
        let now = self.now();
        let (value, deliveries) = {
            let mut world = self.shared.world.lock().unwrap_or_else(|e| e.into_inner());
            let edit = Edit {
                now,
                user_id: user_id.unwrap_or(world.api_user_id),
                switches: options.switches(),
            };
            let (value, events) = f(&mut world, &edit)?;
            (value, prepare(&world, &events, now))
        };
        self.shared.outbox.enqueue(deliveries);
        Ok(value)
    }

    /// Counts one request against the token's per-minute budget.
    pub(crate) fn spend_budget(&self) -> Budget {
        let limit = self.options().rate_limit_per_minute;
        let now = self.shared.clock.now();
        let mut window = self.shared.budget.lock().unwrap_or_else(|e| e.into_inner());
        let window_open = window
            .started
            .is_some_and(|start| now < start + Duration::minutes(1));
        if !window_open {
            window.started = Some(now);
            window.used = 0;
        }
        let start = window.started.unwrap_or(now);
        if window.used >= limit {
            let reset = start + Duration::minutes(1);
            let wait = (reset - now).num_milliseconds().max(0);
            // Whole seconds, rounded up, at least one (Laravel's ThrottleRequests).
            let retry_after = ((wait + 999) / 1000).max(1);
            return Budget {
                limit,
                remaining: 0,
                exceeded: Some((retry_after, reset.timestamp())),
            };
        }
        window.used += 1;
        Budget {
            limit,
            remaining: limit - window.used,
            exceeded: None,
        }
    }

    /// The budget as it stands, without spending any.
    pub(crate) fn peek_budget(&self) -> Budget {
        let limit = self.options().rate_limit_per_minute;
        let now = self.shared.clock.now();
        let window = self.shared.budget.lock().unwrap_or_else(|e| e.into_inner());
        let used = match window.started {
            Some(start) if now < start + Duration::minutes(1) => window.used,
            _ => 0,
        };
        Budget {
            limit,
            remaining: limit.saturating_sub(used),
            exceeded: None,
        }
    }

    // ----- the admin surface, in process -----

    /// Replaces the whole world with a seeded one (same options seed, same clock → same world).
    pub fn seed(&self, spec: &SeedSpec) {
        let options = self.options();
        let now = self.now();
        let mut world = self.shared.world.lock().unwrap_or_else(|e| e.into_inner());
        world.seed(
            spec,
            &options.api_user,
            options.agency_id,
            options.seed,
            now,
        );
    }

    /// The whole world as JSON (signing secrets left out).
    pub fn snapshot(&self) -> Value {
        self.read(|world, _| serde_json::to_value(world).unwrap_or(Value::Null))
    }

    /// A ticket as `GET /tickets/{id}` shows it.
    pub fn ticket_json(&self, id: i64) -> Result<Value, SimError> {
        self.read(|world, options| {
            let ticket = world.ticket(id)?;
            Ok(Renderer {
                state: world,
                zone: options.zone,
            }
            .ticket(ticket))
        })
    }

    /// Ids of every ticket, ascending.
    pub fn ticket_ids(&self) -> Vec<i64> {
        self.read(|world, _| world.tickets.keys().copied().collect())
    }

    /// The id of the label called `name`.
    pub fn label_id(&self, name: &str) -> Option<i64> {
        self.read(|world, _| world.labels.values().find(|l| l.name == name).map(|l| l.id))
    }

    /// Ids of every contact, ascending.
    pub fn contact_ids(&self) -> Vec<i64> {
        self.read(|world, _| world.contacts.keys().copied().collect())
    }

    /// Ids of every channel, ascending.
    pub fn channel_ids(&self) -> Vec<i64> {
        self.read(|world, _| world.channels.keys().copied().collect())
    }

    fn ui_user(&self) -> Option<i64> {
        Some(self.read(|world, _| world.ui_user_id))
    }

    /// An agent closes the ticket.
    pub fn close_ticket(&self, ticket_id: i64) -> Result<(), SimError> {
        let user = self.ui_user();
        self.edit(user, |w, e| Ok(((), w.close_ticket(e, ticket_id)?)))
    }

    /// An agent reopens the ticket.
    pub fn reopen_ticket(&self, ticket_id: i64) -> Result<(), SimError> {
        let user = self.ui_user();
        self.edit(user, |w, e| Ok(((), w.reopen_ticket(e, ticket_id)?)))
    }

    /// An agent moves the ticket to another channel (moves no `updated_at`).
    pub fn move_ticket(&self, ticket_id: i64, channel_id: i64) -> Result<(), SimError> {
        let user = self.ui_user();
        self.edit(user, |w, _| Ok(((), w.move_ticket(ticket_id, channel_id)?)))
    }

    /// An agent deletes the ticket (every read of it answers 404 from now on).
    pub fn delete_ticket(&self, ticket_id: i64) -> Result<(), SimError> {
        let user = self.ui_user();
        self.edit(user, |w, _| Ok(((), w.delete_ticket(ticket_id)?)))
    }

    /// An agent merges `source` into `target` (the source is deleted; `TICKET_MERGED`).
    pub fn merge_tickets(&self, target: i64, source: i64) -> Result<(), SimError> {
        let user = self.ui_user();
        self.edit(user, |w, e| Ok(((), w.merge_tickets(e, target, source)?)))
    }

    /// An agent attaches a label.
    pub fn add_label(&self, ticket_id: i64, label_id: i64) -> Result<(), SimError> {
        let user = self.ui_user();
        self.edit(user, |w, e| {
            Ok(((), w.attach_label(e, ticket_id, label_id)?))
        })
    }

    /// An agent detaches a label.
    pub fn remove_label(&self, ticket_id: i64, label_id: i64) -> Result<(), SimError> {
        let user = self.ui_user();
        self.edit(user, |w, e| {
            Ok(((), w.detach_label(e, ticket_id, label_id)?))
        })
    }

    /// The id of the user (agent) with this e-mail, case-insensitive.
    pub fn user_id(&self, email: &str) -> Option<i64> {
        self.read(|world, _| {
            world
                .users
                .values()
                .find(|u| u.email.eq_ignore_ascii_case(email.trim()))
                .map(|u| u.id)
        })
    }

    /// The e-mails of the human agents (every user but the API token's own), by id.
    pub fn agent_emails(&self) -> Vec<String> {
        self.read(|world, options| {
            world
                .users
                .values()
                .filter(|u| u.id != options.api_user.id)
                .map(|u| u.email.clone())
                .collect()
        })
    }

    /// A supervisor assigns the ticket to an agent, as in the web app's assignee picker
    /// (raises TICKET_ASSIGNED; the ticket becomes ASSIGNED).
    pub fn assign_ticket(&self, ticket_id: i64, user_id: i64) -> Result<(), SimError> {
        let user = self.ui_user();
        self.edit(user, |w, e| {
            let assignment = Assignment {
                user_id: Some(user_id),
                team_id: None,
                note: None,
            };
            Ok(((), w.assign_ticket(e, ticket_id, assignment)?))
        })
    }

    /// An agent writes an internal note; returns the message id.
    pub fn post_note(&self, ticket_id: i64, text: &str) -> Result<i64, SimError> {
        let user = self.ui_user();
        self.edit(user, |w, e| {
            w.add_message(e, ticket_id, MessageType::Note, text)
        })
    }

    /// The customer writes a message on the ticket; returns the message id.
    pub fn post_customer_message(&self, ticket_id: i64, text: &str) -> Result<i64, SimError> {
        let user = self.ui_user();
        self.edit(user, |w, e| {
            w.add_message(e, ticket_id, MessageType::Inbound, text)
        })
    }

    /// A customer writes in and a new OPEN ticket appears; returns its id.
    pub fn create_ticket(&self, new: &CustomerTicket) -> Result<i64, SimError> {
        let user = self.ui_user();
        self.edit(user, |w, e| {
            w.create_ticket_from_customer(
                e,
                new.channel_id,
                new.contact_id,
                new.subject.clone(),
                &new.message,
            )
        })
    }

    /// Sets the faults to inject into API requests.
    pub fn set_faults(&self, faults: Faults) {
        self.shared.faults.set(faults);
    }

    /// Makes the next `n` API requests answer 429.
    pub fn burst_429(&self, n: u32) {
        self.shared.faults.burst_429(n);
    }

    /// API requests by route template, and successful writes.
    pub fn counters(&self) -> CounterSnapshot {
        self.shared.counters.snapshot()
    }

    /// Sets the counters back to zero.
    pub fn reset_counters(&self) {
        self.shared.counters.reset();
    }

    /// Every webhook delivery attempt so far.
    pub fn webhook_log(&self) -> Vec<WebhookDelivery> {
        self.shared.outbox.log()
    }

    /// Empties the webhook log.
    pub fn reset_webhook_log(&self) {
        self.shared.outbox.reset_log();
    }

    /// Waits until every webhook fired so far has been attempted.
    pub async fn settle_webhooks(&self) {
        self.shared.outbox.settled().await;
    }

    /// The switches in force.
    pub fn switches(&self) -> TrengoSwitches {
        self.options().switches()
    }

    /// Changes the switches.
    pub fn set_switches(&self, switches: &TrengoSwitches) {
        self.shared
            .options
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .apply(switches);
    }
}

/// Resolves events to deliveries: one per webhook registered for the event's type, signed
/// with that webhook's secret at `now`.
fn prepare(world: &TrengoState, events: &[Event], now: DateTime<Utc>) -> Vec<Delivery> {
    use secrecy::ExposeSecret;
    let mut deliveries = Vec::new();
    for event in events {
        let body = form_body(&event.fields);
        for hook in world.webhooks.values().filter(|h| h.event == event.kind) {
            deliveries.push(Delivery {
                webhook_id: hook.id,
                event: event.kind.as_str().to_owned(),
                url: hook.url.clone(),
                signature: sign(hook.signing_secret.expose_secret(), now.timestamp(), &body),
                body: body.clone(),
            });
        }
    }
    deliveries
}

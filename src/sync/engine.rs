//! One sync pass, end to end: settle open intents, detect changes, load the touched groups,
//! plan (pure), apply (the executor), record what was seen, advance the cursors.
//!
//! Cursors advance only after the pass's work is committed, and only when a poll saw
//! something: a pass that finds nothing writes nothing. Items that fail go to the retry table
//! and never hold back other items or the cursors; when they are due, a later pass plans them
//! again from a fresh read.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::AtomicI64;

use chrono::{DateTime, Utc};
use futures::StreamExt as _;
use serde_json::json;

use super::detect::{Detected, Detector, Merge, RetryChange};
use super::execute::{Applied, Executor, PassFacts, refresh_labels};
use super::load::{self, GHL_NOTES_SEEN, GHL_SEEN, Loader, NOTES_UPTO, ReadError, TRENGO_SEEN};
use super::model::{LinkId, PlanInput};
use super::operation::{BrakeReport, ItemKey, ItemPlan, Op, Plan};
use super::settings::EngineSettings;
use super::views::Directory;
use crate::api::{ApiError, Budget};
use crate::clock::SharedClock;
use crate::config::Config;
use crate::ghl::{GhlAuth, GhlClient, GhlClientConfig};
use crate::store::{self, Store, StoreError, StoreHandle, identity::Identity};
use crate::sync::reason::ReasonCode as _;
use crate::trengo::{TrengoClient, TrengoClientConfig};

pub(crate) mod backfill;
mod rounds;
mod settle;

pub use super::detect::{Hint, Pace, Progress, SweepState, is_gone, notes_print};
use backfill::{BackfillRun, Round};

/// How long a link whose status became done stays in the safety sweep (sync-model.md §4.6).
pub const SWEEP_DONE_FOR: chrono::Duration = chrono::Duration::days(7);

/// Cursor of the Trengo `updated_at` watermark.
pub const TRENGO_CURSOR: &str = "trengo.updated_at";
/// Cursor of the GHL `dateUpdated` watermark.
pub const GHL_CURSOR: &str = "ghl.date_updated";
/// Cursor of the safety sweep (where its listing walks stand, as JSON).
pub const SWEEP_CURSOR: &str = "sweep.position";

/// Stream name under which the Trengo backfill is reported.
pub const TRENGO_BACKFILL: &str = "trengo.tickets";

/// Where the engine reports a backfill: a Trengo poll with no cursor yet (the first start on an
/// existing account) reads every ticket and links those in scope, which can take hours at the
/// documented rate limits. The daemon's `/status` shows what it is told here.
///
/// Progress is counted in units of work: the milliseconds of rate budget the calls still to make
/// take at the configured limits (reading a group, linking a ticket, each write), so that the
/// ETA follows the calls, not the tickets listed (listing 25 tickets costs one call; linking one
/// costs several, and reading its group afterwards more on the slower API).
pub trait BackfillTracker: Send + Sync {
    /// A backfill of `stream` begins (listing starts).
    fn backfill_started(&self, stream: &str, now: DateTime<Utc>);
    /// `listed` items were listed so far; nothing is applied yet.
    fn backfill_listed(&self, listed: u64, now: DateTime<Utc>);
    /// The work to apply is known (or re-estimated): `total` units in all, done ones included.
    fn backfill_planned(&self, total: u64, now: DateTime<Utc>);
    /// `n` more units were applied (or failed and went to the retry queue).
    fn backfill_advanced(&self, n: u64, now: DateTime<Utc>);
    /// The backfill is complete (its cursor is committed).
    fn backfill_finished(&self, now: DateTime<Utc>);
}

/// Why a pass could not run at all (items failing on their own are not errors of the pass).
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// A read failed.
    #[error(transparent)]
    Read(#[from] ReadError),
    /// An API failed outside any item.
    #[error(transparent)]
    Api(#[from] ApiError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The test crash switch fired.
    #[error("stopped by the crash switch")]
    Crashed,
    /// Setting up the engine failed.
    #[error("{0}")]
    Setup(String),
}

/// What a pass looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PassKind {
    /// Both polls (`once --polls-only`).
    Poll,
    /// One whole cycle: both polls, then the whole sweep (discovery, listings, notes), then
    /// due retries (what `once` and `plan` run; repeated, it converges).
    Cycle,
    /// Tickets updated since the Trengo watermark.
    TrengoPoll,
    /// Contacts updated since the GHL watermark.
    GhlPoll,
    /// A slice of the safety sweep's listing walks within its budget share, resumed from where
    /// the last one stopped (see `sweep.rs`).
    Sweep,
    /// Every link.
    Reconcile,
    /// Items named by webhooks.
    Hints(Vec<Hint>),
}

/// How a pass runs.
#[derive(Debug, Clone, Copy, Default)]
pub struct PassOptions {
    /// Plan only: write nothing anywhere (`trengo-sync plan`).
    pub dry_run: bool,
    /// Apply even when the brake would stop the pass (`once --allow-mass-change`).
    pub allow_mass_change: bool,
}

/// What a pass did.
#[derive(Debug, Default)]
pub struct PassReport {
    /// When it started.
    pub started: Option<DateTime<Utc>>,
    /// The plans it made (one per round).
    pub plans: Vec<Plan>,
    /// Items applied.
    pub applied_items: usize,
    /// Writes made.
    pub writes: Applied,
    /// Items that failed, with why.
    pub failed: Vec<(ItemKey, String)>,
    /// The brake, when it stopped the pass.
    pub braked: Option<BrakeReport>,
    /// Intents settled at the start.
    pub settled_intents: usize,
    /// Items a pause held back, with why (they cross once it is lifted; `pause.rs`).
    pub held: Vec<(String, String)>,
    /// The daemon's pause when it is paused both ways: the pass then read and wrote nothing.
    pub paused: Option<store::controls::Pause>,
}

impl PassReport {
    /// Every operation planned in this pass.
    pub fn ops(&self) -> impl Iterator<Item = &Op> {
        self.plans.iter().flat_map(|p| p.ops())
    }
}

/// The engine: both clients, the store, the clock, the settings.
pub struct Engine {
    /// The store.
    pub store: StoreHandle,
    /// Trengo.
    pub trengo: TrengoClient,
    /// GHL.
    pub ghl: GhlClient,
    /// The clock.
    pub clock: SharedClock,
    /// The settings.
    pub settings: EngineSettings,
    /// Test hook: stop as if killed after this many remote writes.
    pub crash_after: Option<Arc<AtomicI64>>,
    /// Where backfill progress goes (the daemon's `/status`); none for one-shot commands.
    pub backfill: Option<Arc<dyn BackfillTracker>>,
    /// Where a whole sweep reports its progress (`once` on a terminal); none elsewhere.
    pub progress: Option<Progress>,
    facts: tokio::sync::Mutex<PassFacts>,
    sweep: tokio::sync::Mutex<SweepState>,
    /// The pauses in force, read at the start of each pass.
    pauses: std::sync::Mutex<store::controls::Pauses>,
}

/// Marks the contact of an item that was not applied (failed or held), so its group's print
/// is not recorded and the change is seen again.
fn not_recorded(
    contacts: &mut BTreeSet<String>,
    item: &ItemKey,
    ticket_contact: &HashMap<i64, String>,
) {
    match item {
        ItemKey::Contact(c) => {
            contacts.insert(c.clone());
        }
        ItemKey::Ticket(t) => {
            if let Some(c) = ticket_contact.get(t) {
                contacts.insert(c.clone());
            }
        }
        ItemKey::Task { .. } | ItemKey::Tasks(_) => {}
    }
}

fn setup(e: impl std::fmt::Display) -> EngineError {
    EngineError::Setup(e.to_string())
}

impl Engine {
    /// Builds the clients from `config` and opens the store (read-only when `read_only`).
    pub fn from_config(
        config: &Config,
        clock: SharedClock,
        read_only: bool,
    ) -> Result<Self, EngineError> {
        let store = if read_only {
            Store::open_read_only(&config.store.path)?
        } else {
            if let Some(dir) = config.store.path.parent()
                && !dir.as_os_str().is_empty()
            {
                std::fs::create_dir_all(dir).map_err(|e| {
                    setup(format!(
                        "cannot create the store's directory {}: {e}; check store.path",
                        dir.display()
                    ))
                })?;
            }
            Store::open(&config.store.path)?
        };
        Self::with_store(config, clock, store, None)
    }

    /// The engine `plan` runs: on an in-memory copy of the store ([`Store::open_snapshot`]), so
    /// that the dry run can do everything a pass does up to the first remote write (bind the
    /// identity of a fresh store, settle intents) and record nothing. With OAuth, a refresh
    /// rotates GHL's refresh token, which must be kept: the token vault alone writes to the
    /// file, through an edit connection that takes no writer lock (so `plan` also runs beside
    /// the daemon; the vault re-reads the stored tokens before each refresh).
    pub fn for_plan(config: &Config, clock: SharedClock) -> Result<Self, EngineError> {
        let snapshot = Store::open_snapshot(&config.store.path)?;
        let vault = match &config.ghl.oauth {
            Some(_) => Some(StoreHandle::new(
                Store::open_for_edit(&config.store.path).map_err(|e| {
                    setup(format!(
                        "{e}; with OAuth the store holds GHL's tokens: run `trengo-sync auth ghl` \
                         first"
                    ))
                })?,
            )),
            None => None,
        };
        Self::with_store(config, clock, snapshot, vault)
    }

    /// The engine over `store`; the OAuth token vault keeps its tokens in `vault` when given,
    /// else in `store`.
    fn with_store(
        config: &Config,
        clock: SharedClock,
        store: Store,
        vault: Option<StoreHandle>,
    ) -> Result<Self, EngineError> {
        Self::with_handle(config, clock, StoreHandle::new(store), vault)
    }

    /// A new engine for `config` over a store already open: a configuration reloaded by the
    /// running daemon keeps its store (and its writer lock).
    pub fn on_open_store(
        config: &Config,
        clock: SharedClock,
        store: StoreHandle,
    ) -> Result<Self, EngineError> {
        Self::with_handle(config, clock, store, None)
    }

    fn with_handle(
        config: &Config,
        clock: SharedClock,
        store: StoreHandle,
        vault: Option<StoreHandle>,
    ) -> Result<Self, EngineError> {
        let token = config
            .trengo
            .token
            .as_ref()
            .ok_or_else(|| setup("trengo.token is missing"))?
            .to_secret_string();
        let mut tcfg = TrengoClientConfig::new(
            config.trengo.base_url.url().clone(),
            token,
            config.trengo.timezone.0,
        );
        tcfg.timeout = config.limits.request_timeout.get();
        let trengo_budget = Arc::new(Budget::new(
            "trengo",
            config.limits.trengo_per_minute,
            std::time::Duration::from_secs(60),
        ));
        let trengo = TrengoClient::new(tcfg, clock.clone(), trengo_budget).map_err(setup)?;
        let auth = match (&config.ghl.token, &config.ghl.oauth) {
            (Some(token), _) => GhlAuth::PrivateToken(token.to_secret_string()),
            (None, Some(oauth)) => GhlAuth::OAuth {
                client_id: oauth.client_id.clone().unwrap_or_default(),
                client_secret: oauth
                    .client_secret
                    .as_ref()
                    .map(|s| s.to_secret_string())
                    .ok_or_else(|| setup("ghl.oauth.client_secret is missing"))?,
                vault: Arc::new(super::vault::StoreVault::new(
                    vault.unwrap_or_else(|| store.clone()),
                    oauth.refresh_token.as_ref().map(|s| s.to_secret_string()),
                    clock.clone(),
                )),
            },
            (None, None) => return Err(setup("ghl.token or [ghl.oauth] is missing")),
        };
        let mut gcfg = GhlClientConfig::new(
            config.ghl.base_url.url().clone(),
            config.ghl.location_id.clone().unwrap_or_default(),
            auth,
        );
        gcfg.version = config.ghl.version.clone();
        gcfg.token_url = config.ghl.token_url();
        gcfg.timeout = config.limits.request_timeout.get();
        let ghl_budget = Arc::new(Budget::new(
            "ghl",
            config.limits.ghl_per_window,
            config.limits.ghl_window.get(),
        ));
        let ghl = GhlClient::new(gcfg, clock.clone(), ghl_budget).map_err(setup)?;
        Ok(Self {
            store,
            trengo,
            ghl,
            clock,
            settings: EngineSettings::from_config(config),
            crash_after: None,
            backfill: None,
            progress: None,
            facts: tokio::sync::Mutex::new(PassFacts::default()),
            sweep: tokio::sync::Mutex::new(SweepState::default()),
            pauses: std::sync::Mutex::new(store::controls::Pauses::default()),
        })
    }

    /// The executor for this engine's clients and store, writing what it learns into `facts`.
    fn executor<'a>(&'a self, facts: &'a mut PassFacts) -> Executor<'a> {
        Executor {
            store: &self.store,
            trengo: &self.trengo,
            ghl: &self.ghl,
            clock: &self.clock,
            settings: &self.settings,
            facts,
            crash_after: self.crash_after.clone(),
        }
    }

    /// Binds the database to this Trengo account and GHL location on first use, and refuses
    /// to run against any other (sync-model.md §4.7).
    pub async fn bind_identity(&self) -> Result<Identity, EngineError> {
        let mut agency = None;
        let mut users = std::pin::pin!(self.trengo.users());
        if let Some(user) = users.next().await {
            agency = user?.agency_id;
        }
        let identity = Identity {
            trengo_account: match agency {
                Some(a) => format!("{} (agency {a})", self.settings.scope.web_url),
                None => self.settings.scope.web_url.clone(),
            },
            ghl_location: self.ghl.location_id().to_string(),
        };
        let (given, now) = (identity.clone(), self.clock.now());
        self.store
            .call(move |s| {
                let tx = s.transaction()?;
                store::identity::bind(&tx, &given, now)?;
                tx.commit()?;
                Ok(())
            })
            .await?;
        Ok(identity)
    }

    /// Runs one pass.
    pub async fn pass(
        &self,
        kind: PassKind,
        options: PassOptions,
    ) -> Result<PassReport, EngineError> {
        let started = self.clock.now();
        let mut report = PassReport {
            started: Some(started),
            ..PassReport::default()
        };
        if options.dry_run && !self.store.call(|s| Ok(s.is_snapshot())).await? {
            // A dry run plans like a real pass and records what a pass records (retries,
            // settled intents, cursors): on a copy of the store, never on the file.
            return Err(setup(
                "a dry run needs the engine over a copy of the store: build it with Engine::for_plan",
            ));
        }
        let mut facts = self.facts.lock().await;
        // An operator may pause while the daemon runs (`trengo-sync pause`): read at each pass.
        let pauses = self.store.call(|s| store::controls::all(s.conn())).await?;
        if let Some(p) = &pauses.daemon
            && p.direction == store::controls::PauseDirection::Both
        {
            report.paused = Some(p.clone());
            return Ok(report);
        }
        *self.pauses.lock().unwrap_or_else(|e| e.into_inner()) = pauses;
        self.refresh_facts(&mut facts).await?;
        // A dry run settles too, on `plan`'s in-memory copy of the store, without the remote write.
        report.settled_intents = self.settle_intents(&mut facts, options.dry_run).await?;
        // Detect: what changed and what entered scope (reads only).
        let (mut work, backfill) = self
            .detector()
            .detect(&kind, &mut facts, started, !options.dry_run)
            .await?;
        // What detection learnt for the store (retries, merged tickets' links) is written
        // before the groups are read: a merged ticket's group is read with its link moved.
        self.record_detected(&mut work).await?;

        // Round 1: the changed groups and the items entering scope, planned at once (so the
        // brake sees the whole pass); then applied in chunks, each chunk's new links read and
        // settled (round 2) while the next chunk is linked (`rounds.rs`).
        let contacts = std::mem::take(&mut work.contacts);
        let (plan, loaded) = self
            .plan_round(&mut work, &mut facts, &contacts, started, backfill.as_ref())
            .await?;
        report.failed.append(&mut work.failed);
        if options.dry_run {
            let mut plan = plan;
            let pauses = self
                .pauses
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone();
            let (kept, held) = super::pause::split(std::mem::take(&mut plan.items), &pauses);
            plan.items = kept;
            report
                .held
                .extend(held.into_iter().map(|(i, why)| (i.item.to_string(), why)));
            report.plans.push(plan);
            return Ok(report);
        }
        if let Some(b) = &backfill {
            b.planned(&plan, self.clock.now());
        }
        if let Some(brake) = &plan.brake
            && !options.allow_mass_change
        {
            self.record_brake(brake).await?;
            report.braked = Some(brake.clone());
            report.plans.push(plan);
            return Ok(report);
        }
        let round = rounds::RoundOne {
            plan,
            loaded,
            started,
        };
        self.apply_rounds(
            round,
            &mut facts,
            &mut work,
            &mut report,
            backfill.as_ref(),
            options,
        )
        .await?;
        if report.braked.is_some() {
            return Ok(report);
        }
        {
            let cursors = std::mem::take(&mut work.cursors);
            let refinements = std::mem::take(&mut work.print_refinements);
            if !cursors.is_empty() || !refinements.is_empty() {
                let now = self.clock.now();
                self.store
                    .call(move |s| {
                        let tx = s.transaction()?;
                        for (stream, value) in &cursors {
                            store::cursors::put(&tx, stream, value, now)?;
                        }
                        // Only where the pass recorded no newer print of its own.
                        for (link, expected, listed) in &refinements {
                            store::bases::refine(
                                &tx,
                                *link,
                                TRENGO_SEEN,
                                &json!(expected),
                                &json!(listed),
                            )?;
                        }
                        tx.commit()?;
                        Ok(())
                    })
                    .await?;
            }
            if let Some(b) = &backfill {
                b.tracker.backfill_finished(self.clock.now());
            }
        }
        Ok(report)
    }

    /// The loading stage's view of the engine (`load.rs`): it reads, never writes.
    fn loader(&self) -> Loader<'_> {
        Loader {
            store: &self.store,
            trengo: &self.trengo,
            ghl: &self.ghl,
            settings: &self.settings,
            clock: &self.clock,
        }
    }

    /// Adds or ends retry rows, in the order a stage learnt them.
    async fn record_retries(&self, changes: Vec<RetryChange>) -> Result<(), EngineError> {
        for change in changes {
            match change {
                RetryChange::Failed { item, code } => self.fail_item(&item, &code).await?,
                RetryChange::Cleared(item) => self.clear_item(item).await?,
            }
        }
        Ok(())
    }

    /// Detection's view of the engine (`detect.rs`): it reads, never writes.
    fn detector(&self) -> Detector<'_> {
        Detector {
            store: &self.store,
            trengo: &self.trengo,
            ghl: &self.ghl,
            settings: &self.settings,
            clock: &self.clock,
            backfill: self.backfill.as_ref(),
            progress: self.progress.as_ref(),
            sweep: &self.sweep,
        }
    }

    /// Writes what detection learnt for the store: retry rows added or ended, and the links of
    /// merged tickets moved to the surviving ticket (trengo-api.md §10.3 `TICKET_MERGED`).
    async fn record_detected(&self, work: &mut Detected) -> Result<(), EngineError> {
        self.record_retries(std::mem::take(&mut work.retries))
            .await?;
        for Merge { merged, surviving } in std::mem::take(&mut work.merges) {
            let now = self.clock.now();
            let moved = self
                .store
                .call(move |s| {
                    let Some(link) = store::links::by_ticket(s.conn(), merged)? else {
                        return Ok(false);
                    };
                    if link.state != store::links::LinkState::Active {
                        return Ok(false);
                    }
                    let tx = s.transaction()?;
                    let moved = store::links::follow_merge(&tx, link.id, surviving, now)?;
                    if moved {
                        store::ledger::record(
                            &tx,
                            &store::ledger::Entry::new(store::ledger::EntryKind::Applied, now)
                                .link(link.id)
                                .detail(format!(
                                    "ticket #{merged} was merged into #{surviving}: the link follows it"
                                )),
                        )?;
                    }
                    tx.commit()?;
                    Ok(moved)
                })
                .await?;
            if moved {
                tracing::info!(
                    merged,
                    surviving,
                    "a linked ticket was merged; its link follows the surviving ticket"
                );
            }
        }
        Ok(())
    }

    async fn refresh_facts(&self, facts: &mut PassFacts) -> Result<(), EngineError> {
        if facts.labels.is_empty() {
            refresh_labels(&self.trengo, &mut facts.labels).await?;
        }
        if self.settings.plan.assignee_enabled && facts.directory.trengo.is_empty() {
            let mut directory = Directory::default();
            let mut users = std::pin::pin!(self.trengo.users());
            while let Some(user) = users.next().await {
                let user = user?;
                if let Some(email) = user.email {
                    directory
                        .trengo
                        .insert(user.id, email.trim().to_lowercase());
                }
            }
            // GHL users are filed under the Trengo e-mail they stand for ([assignee.users]
            // maps a Trengo e-mail to a different GHL one), so both sides compare in one
            // space and an aliased assignee reads as equal, not as a change every pass.
            let trengo_of: HashMap<&str, &str> = self
                .settings
                .assignee_aliases
                .iter()
                .map(|(trengo, ghl)| (ghl.as_str(), trengo.as_str()))
                .collect();
            for user in self.ghl.users().await? {
                if let Some(email) = user.email {
                    let email = email.trim().to_lowercase();
                    let email = match trengo_of.get(email.as_str()) {
                        Some(trengo) => {
                            directory.ghl_aliased.insert(user.id.clone());
                            (*trengo).to_string()
                        }
                        None => email,
                    };
                    directory.ghl.insert(user.id, email);
                }
            }
            facts.directory = directory;
        }
        Ok(())
    }

    /// Loads the changed groups and the candidates of round 1 and plans them.
    async fn plan_round(
        &self,
        work: &mut Detected,
        facts: &mut PassFacts,
        contacts: &BTreeSet<String>,
        now: DateTime<Utc>,
        backfill: Option<&BackfillRun>,
    ) -> Result<(Plan, Vec<load::LoadedGroup>), EngineError> {
        let loader = self.loader();
        let reads = loader
            .groups(
                contacts,
                &facts.directory,
                &work.tickets,
                &work.reach,
                backfill,
                Round::First,
            )
            .await;
        self.record_retries(reads.retries).await?;
        facts.tickets.extend(reads.tickets);
        for (contact, reason) in reads.failed {
            // Not seen: recording its fingerprint would make the next poll skip a contact
            // whose change was never synced.
            work.contact_prints.remove(&contact);
            work.failed.push((ItemKey::Contact(contact), reason));
        }
        for ticket in work.candidate_tickets.values() {
            facts.tickets.insert(ticket.id, ticket.clone());
        }
        let found = loader
            .candidates(
                &work.candidate_tickets,
                &work.candidate_contacts,
                &facts.directory,
                now,
            )
            .await;
        self.record_retries(found.retries).await?;
        work.failed.extend(found.failed);
        let (groups, loaded, candidates) = (reads.groups, reads.loaded, found.candidates);
        let input = PlanInput {
            now,
            contacts: groups,
            candidates,
            settings: self.settings.plan.clone(),
        };
        let plan = super::plan(&input);
        Ok((plan, loaded))
    }

    /// Applies items in order, each failing on its own (to the retry table, its contact into
    /// `failed`); returns the contacts that got new links. `progress` counts each item done
    /// against the backfill, in the round it belongs to.
    // The round's pieces travel separately: bundling them would only rename the list.
    #[allow(clippy::too_many_arguments)]
    async fn apply_items(
        &self,
        items: &[ItemPlan],
        facts: &mut PassFacts,
        ticket_contact: &HashMap<i64, String>,
        report: &mut PassReport,
        failed_contacts: &mut BTreeSet<String>,
        progress: Option<(&BackfillRun, Round)>,
    ) -> Result<BTreeSet<String>, EngineError> {
        let mut new_contacts = BTreeSet::new();
        for item in items {
            let key = item.item.stored();
            let held = {
                let pauses = self.pauses.lock().unwrap_or_else(|e| e.into_inner());
                super::pause::held(item, &pauses)
            };
            if let Some(why) = held {
                // Not applied, and its group's print not recorded: it comes back on `resume`.
                tracing::info!(item = %item.item, %why, "item held by a pause");
                let (k, w, now) = (key.clone(), why.clone(), self.clock.now());
                self.store
                    .call(move |s| store::retries::hold(s.conn(), &k, &w, now))
                    .await?;
                report.held.push((item.item.to_string(), why));
                not_recorded(failed_contacts, &item.item, ticket_contact);
                continue;
            }
            let mut executor = self.executor(facts);
            match executor.apply(item).await {
                Ok(applied) => {
                    report.applied_items += 1;
                    report.writes.trengo += applied.trengo;
                    report.writes.ghl += applied.ghl;
                    metrics::counter!("trengo_sync_operations_total", "side" => "trengo")
                        .increment(applied.trengo);
                    metrics::counter!("trengo_sync_operations_total", "side" => "ghl")
                        .increment(applied.ghl);
                    self.clear_item(item.item.clone()).await?;
                    for op in &item.ops {
                        match op {
                            Op::LinkTicket { ticket_id, .. } => {
                                let id = *ticket_id;
                                if let Some(l) = self
                                    .store
                                    .call(move |s| store::links::by_ticket(s.conn(), id))
                                    .await?
                                {
                                    new_contacts.insert(l.ghl_contact_id);
                                }
                            }
                            Op::LinkTask { contact_id, .. } | Op::AdoptTask { contact_id, .. } => {
                                new_contacts.insert(contact_id.clone());
                            }
                            _ => {}
                        }
                    }
                }
                Err(e) if e.is_crash() => return Err(EngineError::Crashed),
                Err(e) => {
                    tracing::warn!(item = %item.item, error = %e, "item failed; it will be retried");
                    metrics::counter!("trengo_sync_errors_total").increment(1);
                    self.fail_item(&item.item, &e.reason_code()).await?;
                    report.failed.push((item.item.clone(), e.to_string()));
                    not_recorded(failed_contacts, &item.item, ticket_contact);
                }
            }
            if let Some((b, round)) = progress {
                b.advanced(b.item_cost(item), round, self.clock.now());
            }
        }
        Ok(new_contacts)
    }

    /// Records fingerprints and message positions of the groups applied without failure, so
    /// the next poll skips them until they change again, and forgets their earlier failures:
    /// a group read and applied whole is in sync, even when this pass had nothing to write
    /// for it (else a failed read would stay in the retry table, "stuck", forever).
    /// `ticket_prints` and `contact_prints` are what was seen (ticket id → print, contact id
    /// → print); the recorded ones are taken out, and contacts left without a group (tagged
    /// candidates, once examined) are recorded too.
    async fn record_seen(
        &self,
        ticket_prints: &mut HashMap<i64, String>,
        contact_prints: &mut HashMap<String, String>,
        loaded: &[load::LoadedGroup],
        failed: &BTreeSet<String>,
    ) -> Result<(), EngineError> {
        let mut link_bases: Vec<(LinkId, &'static str, serde_json::Value)> = Vec::new();
        let mut contact_bases: Vec<(String, serde_json::Value)> = Vec::new();
        // Contacts whose notes were read, with their ids: printed once the pass's comment
        // pairs are committed, so the notes the pass copied count as the sync's own.
        let mut notes_read: Vec<(String, Vec<LinkId>, Vec<String>)> = Vec::new();
        let mut recovered: Vec<String> = Vec::new();
        for g in loaded {
            let contact = &g.group.contact.id;
            if failed.contains(contact) {
                continue;
            }
            // A group read in part planned no tags: a failed tag item of it stays due.
            if !g.group.partial {
                recovered.push(ItemKey::Contact(contact.clone()).stored());
            }
            recovered.extend(
                g.group
                    .links
                    .iter()
                    .map(|l| ItemKey::Ticket(l.ticket.id).stored()),
            );
            for (link, upto) in &g.notes_upto {
                link_bases.push((*link, NOTES_UPTO, json!(upto)));
            }
            for l in &g.group.links {
                if let Some(print) = ticket_prints.remove(&l.ticket.id) {
                    link_bases.push((l.link, TRENGO_SEEN, json!(print)));
                }
            }
            if let Some(print) = contact_prints.remove(contact) {
                contact_bases.push((contact.clone(), json!(print)));
            }
            if let Some(ids) = &g.ghl_notes {
                let links = g.group.links.iter().map(|l| l.link).collect();
                notes_read.push((contact.clone(), links, ids.clone()));
            }
        }
        // Tagged contacts without links (candidates) are recorded too, once examined.
        for (contact, print) in contact_prints.drain() {
            if !failed.contains(&contact) {
                contact_bases.push((contact, json!(print)));
            }
        }
        if link_bases.is_empty()
            && contact_bases.is_empty()
            && recovered.is_empty()
            && notes_read.is_empty()
        {
            return Ok(());
        }
        let now = self.clock.now();
        self.store
            .call(move |s| {
                let tx = s.transaction()?;
                for item in &recovered {
                    store::retries::clear(&tx, item)?;
                }
                for (link, field, value) in &link_bases {
                    let current = store::bases::get(&tx, *link, field)?.map(|b| b.value);
                    if current.as_ref() != Some(value) {
                        store::bases::put(&tx, *link, field, value, now)?;
                    }
                }
                for (contact, value) in &contact_bases {
                    let current =
                        store::bases::get_contact(&tx, contact, GHL_SEEN)?.map(|b| b.value);
                    if current.as_ref() != Some(value) {
                        store::bases::put_contact(&tx, contact, GHL_SEEN, value, now)?;
                    }
                }
                for (contact, links, ids) in &notes_read {
                    let mut mapped = std::collections::HashSet::new();
                    for link in links {
                        for m in store::comments::for_link(&tx, *link)? {
                            mapped.insert(m.ghl_note_id);
                        }
                    }
                    let print = json!(notes_print(ids.iter().map(String::as_str), &mapped));
                    let current =
                        store::bases::get_contact(&tx, contact, GHL_NOTES_SEEN)?.map(|b| b.value);
                    if current.as_ref() != Some(&print) {
                        store::bases::put_contact(&tx, contact, GHL_NOTES_SEEN, &print, now)?;
                    }
                }
                tx.commit()?;
                Ok(())
            })
            .await?;
        Ok(())
    }

    /// Records a failure of `key`: it is retried with backoff, and parked after too many.
    async fn fail_item(&self, key: &ItemKey, reason: &str) -> Result<(), EngineError> {
        let (k, r, now, policy) = (
            key.stored(),
            reason.to_string(),
            self.clock.now(),
            self.settings.retry,
        );
        self.store
            .call(move |s| {
                let tx = s.transaction()?;
                store::retries::fail(&tx, &k, &r, now, &policy)?;
                tx.commit()?;
                Ok(())
            })
            .await?;
        Ok(())
    }

    /// Ends an earlier failure of `key`, if any: it was read or written since.
    async fn clear_item(&self, key: ItemKey) -> Result<(), EngineError> {
        let item = key.stored();
        self.store
            .call(move |s| store::retries::clear(s.conn(), &item).map(|_| ()))
            .await?;
        Ok(())
    }

    async fn record_brake(&self, brake: &BrakeReport) -> Result<(), EngineError> {
        let (now, detail) = (self.clock.now(), format!("{brake}"));
        tracing::error!(%detail, "brake: this pass would change too many links at once; nothing was written");
        self.store
            .call(move |s| {
                let tx = s.transaction()?;
                store::ledger::record(
                    &tx,
                    &store::ledger::Entry::new(store::ledger::EntryKind::Brake, now).detail(detail),
                )?;
                tx.commit()?;
                Ok(())
            })
            .await?;
        Ok(())
    }
}

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

use super::detect::{Detected, Detector, Merge, RetryChange};
use super::execute::{Applied, ItemError, PassFacts, refresh_labels};
use super::load::{self, Loader, ReadError};
use super::model::PlanInput;
use super::operation::{BrakeReport, ItemKey, Op, Plan};
use super::settings::EngineSettings;
use super::views::Directory;
use crate::api::ApiError;
use crate::clock::SharedClock;
use crate::ghl::GhlClient;
use crate::store::{self, StoreError, StoreHandle, StoreReader};
use crate::trengo::TrengoClient;

pub(crate) mod backfill;
mod pairs;
mod rounds;
mod wiring;

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
    /// The `[contacts]` field map names fields the accounts do not have (exit 78).
    #[error("{}", .0.iter().map(|p| format!("key `{}`: {}", p.key, p.message)).collect::<Vec<_>>().join("\n"))]
    Map(Vec<super::pairs::MapProblem>),
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
    /// the last one stopped (see `detect/sweep.rs`).
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
    /// What the contact-pair stage wrote (or, in a dry run, would write), one line each.
    pub pair_lines: Vec<String>,
}

impl PassReport {
    /// Every operation planned in this pass.
    pub fn ops(&self) -> impl Iterator<Item = &Op> {
        self.plans.iter().flat_map(|p| p.ops())
    }
}

/// The engine: both clients, the store, the clock, the settings.
pub struct Engine {
    /// The store. Within a pass only the executor writes to it (`sync/execute`); the other
    /// stages read through `reader`.
    pub store: StoreHandle,
    /// The same store, read-only (`query_only`): detection, the sweep, hints and loading.
    reader: StoreReader,
    /// The Trengo client, with the account's shared rate budget.
    pub trengo: TrengoClient,
    /// The GHL client (token, location, shared rate and daily budgets).
    pub ghl: GhlClient,
    /// Where "now" comes from: the wall clock in the daemon, a test's clock in tests.
    pub clock: SharedClock,
    /// The configuration in the engine's terms: scope, policies, limits, overlaps.
    pub settings: EngineSettings,
    /// Test hook: stop as if killed after this many remote writes.
    pub crash_after: Option<Arc<AtomicI64>>,
    /// Where backfill progress goes (the daemon's `/status`); none for one-shot commands.
    pub backfill: Option<Arc<dyn BackfillTracker>>,
    /// Where a whole sweep reports its progress (`once` on a terminal); none elsewhere.
    pub progress: Option<Progress>,
    /// What passes learn and keep (labels by name, the user directory, tickets read): one
    /// pass at a time holds it.
    facts: tokio::sync::Mutex<PassFacts>,
    /// Where the sweep's walks stand, across passes.
    sweep: tokio::sync::Mutex<SweepState>,
    /// The pauses in force, read at the start of each pass.
    pauses: std::sync::Mutex<store::controls::Pauses>,
    /// The `[contacts]` map, resolved against the accounts at the first pass that needs it.
    pair_map: tokio::sync::OnceCell<Arc<super::pairs::FieldMap>>,
    /// The GHL location's zone, read the first time appointments are shown.
    ghl_zone: tokio::sync::OnceCell<chrono_tz::Tz>,
    /// What the contact-pair sweep may still read (`contacts.sweep_pairs_per_hour`).
    pair_allowance: std::sync::Mutex<Option<super::detect::Allowance>>,
}

/// Why crash settlement stopped the pass: the crash switch, an API or the store outside any
/// item (an item's own failure goes to the retry table and settlement goes on).
fn settlement_failed(e: ItemError) -> EngineError {
    match e {
        ItemError::Crashed(_) => EngineError::Crashed,
        ItemError::Api(e) => EngineError::Api(e),
        ItemError::Store(e) => EngineError::Store(e),
        ItemError::Blocked(why) => EngineError::Setup(why),
    }
}

fn setup(e: impl std::fmt::Display) -> EngineError {
    EngineError::Setup(e.to_string())
}

impl Engine {
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
        let pauses = self.reader.call(|s| store::controls::all(s.conn())).await?;
        if let Some(p) = &pauses.daemon
            && p.direction == store::controls::PauseDirection::Both
        {
            report.paused = Some(p.clone());
            return Ok(report);
        }
        *self.pauses.lock().unwrap_or_else(|e| e.into_inner()) = pauses;
        self.refresh_facts(&mut facts).await?;
        // A dry run settles too, on `plan`'s in-memory copy of the store, without the remote write.
        report.settled_intents = self
            .executor(&mut facts)
            .settle_intents(options.dry_run)
            .await
            .map_err(settlement_failed)?;
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
            self.pair_stage(&kind, &mut work, &contacts, &mut facts, &mut report, true)
                .await?;
            return Ok(report);
        }
        if let Some(b) = &backfill {
            b.planned(&plan, self.clock.now());
        }
        if let Some(brake) = &plan.brake
            && !options.allow_mass_change
        {
            self.recorder().brake(brake).await?;
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
        // Contact pairs, after the links (a link made in this pass pairs its contacts now).
        self.pair_stage(&kind, &mut work, &contacts, &mut facts, &mut report, false)
            .await?;
        {
            let cursors = std::mem::take(&mut work.cursors);
            let refinements = std::mem::take(&mut work.print_refinements);
            self.recorder().advance(cursors, refinements).await?;
            if let Some(b) = &backfill {
                b.tracker.backfill_finished(self.clock.now());
            }
        }
        Ok(report)
    }

    /// The loading stage's view of the engine (`load.rs`): it reads, never writes.
    fn loader(&self) -> Loader<'_> {
        Loader {
            reader: &self.reader,
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
            reader: &self.reader,
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
            if let Some((_, true)) = self.recorder().follow_merge(merged, surviving).await? {
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

    /// Records a failure of `key` ([`Recorder::fail`]).
    async fn fail_item(&self, key: &ItemKey, reason: &str) -> Result<(), EngineError> {
        Ok(self.recorder().fail(key, reason).await?)
    }

    /// Ends an earlier failure of `key`, if any ([`Recorder::clear`]).
    async fn clear_item(&self, key: ItemKey) -> Result<(), EngineError> {
        Ok(self.recorder().clear(&key).await?)
    }
}

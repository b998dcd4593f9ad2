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

use super::execute::{Applied, ItemError, PassFacts, refresh_labels};
use super::model::PlanInput;
use super::operation::{BrakeReport, ItemKey, Op, Plan};
use super::read::{self, ReadError, Work};
use super::settings::EngineSettings;
use super::views::Directory;
use crate::api::ApiError;
use crate::clock::SharedClock;
use crate::ghl::GhlClient;
use crate::store::{self, StoreError, StoreHandle, StoreReader};
use crate::sync::reason::ReasonCode as _;
use crate::trengo::{self, TicketFilters, TrengoClient};

mod backfill;
mod hints;
mod rounds;
mod sweep;
mod wiring;

use backfill::{BackfillRun, Round};
pub use hints::Hint;
pub use sweep::{Pace, Progress, SweepState, is_gone, notes_print};

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
    /// The store. Within a pass only the executor writes to it (`sync/execute`); the other
    /// stages read through `reader`.
    pub store: StoreHandle,
    /// The same store, read-only (`query_only`): detection, the sweep, hints and loading.
    reader: StoreReader,
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
        let mut work = Work::default();
        // Whether this pass is the Trengo backfill (reported only when it will write).
        let mut backfill = None;
        match &kind {
            PassKind::Poll => {
                backfill = self
                    .poll_trengo(&mut work, started, !options.dry_run)
                    .await?;
                self.poll_ghl(&mut work, started).await?;
            }
            PassKind::TrengoPoll => {
                backfill = self
                    .poll_trengo(&mut work, started, !options.dry_run)
                    .await?;
            }
            PassKind::GhlPoll => {
                self.poll_ghl(&mut work, started).await?;
            }
            PassKind::Cycle => {
                backfill = self
                    .poll_trengo(&mut work, started, !options.dry_run)
                    .await?;
                self.poll_ghl(&mut work, started).await?;
                self.sweep(&mut work, &mut facts, Pace::Whole).await?;
            }
            PassKind::Sweep => {
                let pace = Pace::Share {
                    fraction: self.settings.sweep_share,
                    ghl_per_hour: self.settings.ghl_sweep_per_hour,
                    cycle: self.settings.sweep_cycle,
                };
                self.sweep(&mut work, &mut facts, pace).await?;
            }
            PassKind::Reconcile => {
                let contacts = self
                    .reader
                    .call(|s| {
                        Ok(store::links::active(s.conn())?
                            .into_iter()
                            .map(|l| l.ghl_contact_id)
                            .collect::<BTreeSet<_>>())
                    })
                    .await?;
                work.contacts.extend(contacts);
            }
            PassKind::Hints(hints) => {
                self.hints(&mut work, hints).await?;
            }
        }
        self.due_retries(&mut work).await?;

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

    /// Lists the tickets updated since the watermark (all of them without one: a backfill,
    /// reported to the tracker when `report` and one is set).
    async fn poll_trengo(
        &self,
        work: &mut Work,
        started: DateTime<Utc>,
        report: bool,
    ) -> Result<Option<BackfillRun>, EngineError> {
        let cursor = self
            .reader
            .call(|s| store::cursors::get(s.conn(), TRENGO_CURSOR))
            .await?;
        let watermark = cursor
            .as_deref()
            .and_then(|c| DateTime::parse_from_rfc3339(c).ok())
            .map(|d| d.with_timezone(&Utc));
        let filters = TicketFilters::default();
        let mut seen: HashMap<i64, trengo::Ticket> = HashMap::new();
        let backfill = match (&self.backfill, watermark, report) {
            (Some(tracker), None, true) => {
                tracker.backfill_started(TRENGO_BACKFILL, self.clock.now());
                Some(BackfillRun::new(
                    tracker.clone(),
                    self.trengo.budget(),
                    self.ghl.budget(),
                ))
            }
            _ => None,
        };
        {
            let mut stream = match watermark {
                Some(w) => self.trengo.tickets_updated_since(w, &filters).boxed(),
                None => self.trengo.tickets(&filters).boxed(),
            };
            while let Some(ticket) = stream.next().await {
                let ticket = ticket?;
                // Unknown filters are ignored silently by Trengo (trengo-api.md §3.3): check.
                if let (Some(w), Some(u)) = (watermark, ticket.updated_at)
                    && u < w - chrono::Duration::seconds(1)
                {
                    tracing::warn!(
                        ticket = ticket.id,
                        "Trengo returned a ticket older than the watermark: updated_at_gt may be \
                         ignored or read in another zone; check trengo.timezone"
                    );
                }
                seen.insert(ticket.id, ticket);
                if let Some(b) = &backfill {
                    b.tracker
                        .backfill_listed(seen.len() as u64, self.clock.now());
                }
            }
        }
        if seen.is_empty() {
            return Ok(backfill);
        }
        self.saw_tickets(work, seen).await?;
        let next = started - self.settings.trengo_overlap;
        work.cursors
            .push((TRENGO_CURSOR.to_string(), next.to_rfc3339()));
        Ok(backfill)
    }

    /// Sorts listed tickets into the pass's work: a linked one whose fingerprint differs from
    /// the one recorded is planned again; an unlinked one that matches the link rule is a
    /// candidate (its fingerprint is recorded once its new link's group is settled, so that a
    /// backfill resumed after a crash, or the next listing, skips it).
    async fn saw_tickets(
        &self,
        work: &mut Work,
        seen: HashMap<i64, trengo::Ticket>,
    ) -> Result<(), EngineError> {
        if seen.is_empty() {
            return Ok(());
        }
        let links = read::links_for_tickets(&self.store, seen.keys().copied().collect()).await?;
        for (id, ticket) in seen {
            match links.get(&id) {
                Some((link, recorded)) if link.state == store::links::LinkState::Active => {
                    let print = super::views::ticket_fingerprint(&ticket);
                    match recorded {
                        Some(r) if super::views::ticket_print_matches(r, &print, &ticket) => {
                            // Our own writes, as expected: the listed print replaces the
                            // expected one, so its times are compared from now on.
                            if super::views::is_expected_print(r) {
                                work.print_refinements.push((link.id, r.clone(), print));
                            }
                        }
                        _ => {
                            work.contacts.insert(link.ghl_contact_id.clone());
                            work.ticket_prints.insert(id, print);
                            work.tickets.insert(id, ticket);
                        }
                    }
                }
                Some(_) => {}
                None => {
                    let labels = super::views::labels(&ticket);
                    if self.settings.scope.ticket_in_scope(
                        &labels,
                        ticket.channel_id(),
                        ticket.team_id,
                    ) {
                        let print = super::views::ticket_fingerprint(&ticket);
                        work.ticket_prints.insert(id, print);
                        work.candidate_tickets.insert(id, ticket);
                    }
                }
            }
        }
        Ok(())
    }

    async fn poll_ghl(&self, work: &mut Work, started: DateTime<Utc>) -> Result<(), EngineError> {
        let cursor = self
            .reader
            .call(|s| store::cursors::get(s.conn(), GHL_CURSOR))
            .await?;
        let since = cursor
            .as_deref()
            .and_then(|c| DateTime::parse_from_rfc3339(c).ok())
            .map(|d| d.with_timezone(&Utc))
            .unwrap_or(DateTime::<Utc>::UNIX_EPOCH);
        let mut seen = HashMap::new();
        {
            let mut stream = std::pin::pin!(self.ghl.contacts_updated_between(since, None));
            while let Some(contact) = stream.next().await {
                let contact = contact?;
                seen.insert(contact.id.clone(), contact);
            }
        }
        if seen.is_empty() {
            return Ok(());
        }
        let state = read::contacts_state(&self.store, seen.keys().cloned().collect()).await?;
        // With a title prefix, any contact may hold a task in scope: the contact list does
        // not show task titles, so its tasks must be read to know.
        let by_prefix = self.settings.scope.ghl_title_prefix.is_some();
        // The first GHL listing looks at every contact's tasks for the link rule, even one
        // whose print is already recorded: the Trengo backfill records the contacts it wrote
        // to (so this poll need not read their groups again), but it never looked at their
        // other tasks, and a tagged task would otherwise wait until the contact changes.
        let first = cursor.is_none();
        for (id, contact) in seen {
            let print = super::views::contact_fingerprint(&contact);
            let (linked, recorded) = state.get(&id).cloned().unwrap_or((false, None));
            let unchanged = recorded.as_deref() == Some(print.as_str());
            if unchanged && !first {
                continue;
            }
            let view = super::views::contact(&contact, &[]);
            let tagged = self
                .settings
                .scope
                .ghl_tag
                .as_ref()
                .is_some_and(|t| view.tags.contains(t));
            if linked && !unchanged {
                work.contacts.insert(id.clone());
            }
            if (tagged || by_prefix) && self.settings.scope.ghl_to_trengo() {
                work.candidate_contacts.insert(id.clone());
            }
            if (linked || tagged || by_prefix) && !unchanged {
                work.contact_prints.insert(id, print);
            }
        }
        let next = started - self.settings.ghl_overlap;
        work.cursors
            .push((GHL_CURSOR.to_string(), next.to_rfc3339()));
        Ok(())
    }

    /// A sweep pass (see `sweep.rs`): what the listings show goes through the poll's rules,
    /// the rest is read again as a webhook's hint would be.
    async fn sweep(
        &self,
        work: &mut Work,
        facts: &mut PassFacts,
        pace: Pace,
    ) -> Result<(), EngineError> {
        // The link label may have been made since the labels were read: its listing needs its id.
        if let Some(label) = &self.settings.scope.trengo_label
            && !facts.labels.contains_key(label)
        {
            refresh_labels(&self.trengo, &mut facts.labels).await?;
        }
        let found = self.sweep_walks(pace, facts).await?;
        tracing::debug!(
            trengo_calls = found.trengo_calls,
            ghl_calls = found.ghl_calls,
            listed = found.tickets.len(),
            hints = found.hints.len(),
            cycle_done = found.cycle_done,
            "sweep slice"
        );
        self.saw_tickets(work, found.tickets).await?;
        self.hints(work, &found.hints).await?;
        if let Some(position) = found.position {
            work.cursors.push((SWEEP_CURSOR.to_string(), position));
        }
        Ok(())
    }

    async fn due_retries(&self, work: &mut Work) -> Result<(), EngineError> {
        let now = self.clock.now();
        let due = self
            .reader
            .call(move |s| store::retries::due(s.conn(), now))
            .await?;
        for retry in due {
            match ItemKey::from_stored(&retry.item) {
                Some(ItemKey::Contact(id)) => work.want(&id, read::Reach::Whole),
                Some(ItemKey::Ticket(id)) => self.hints(work, &[Hint::Ticket(id)]).await?,
                Some(ItemKey::Task { contact, .. } | ItemKey::Tasks(contact)) => {
                    work.candidate_contacts.insert(contact);
                }
                // Written by another version, or damaged: `status` shows it, nothing reads it.
                None => {
                    tracing::warn!(item = %retry.item, "a retry of an unknown kind is left alone")
                }
            }
        }
        Ok(())
    }

    /// Loads the changed groups and the candidates of round 1 and plans them.
    async fn plan_round(
        &self,
        work: &mut Work,
        facts: &mut PassFacts,
        contacts: &BTreeSet<String>,
        now: DateTime<Utc>,
        backfill: Option<&BackfillRun>,
    ) -> Result<(Plan, Vec<read::LoadedGroup>), EngineError> {
        let reads = self
            .load_groups(
                contacts,
                &facts.directory,
                &work.tickets,
                &work.reach,
                backfill,
                Round::First,
            )
            .await?;
        facts.tickets.extend(reads.tickets);
        for (contact, reason) in reads.failed {
            // Not seen: recording its fingerprint would make the next poll skip a contact
            // whose change was never synced.
            work.contact_prints.remove(&contact);
            work.failed.push((ItemKey::Contact(contact), reason));
        }
        let (groups, loaded) = (reads.groups, reads.loaded);
        let mut candidates = Vec::new();
        // `link.since`: older items entering scope are not linked (`since.rs`).
        let cutoff = self.settings.since.map(|s| s.cutoff(now));
        for ticket in work.candidate_tickets.values() {
            facts.tickets.insert(ticket.id, ticket.clone());
            if !super::since::ticket_recent(ticket, cutoff) {
                continue;
            }
            if let Some(c) = read::ticket_candidate(ticket, &self.settings, &facts.directory) {
                candidates.push(c);
            }
        }
        for contact in work.candidate_contacts.clone() {
            match read::task_candidates(
                &self.store,
                &self.ghl,
                &self.settings,
                &facts.directory,
                &contact,
            )
            .await
            {
                Ok((found, raw)) => {
                    let found = super::since::tasks_recent(found, raw.as_ref(), cutoff);
                    // Its tasks were read: an earlier failure to read them is over.
                    self.clear_item(ItemKey::Tasks(contact.clone())).await?;
                    candidates.extend(found);
                }
                // The contact is gone (deleted, or not visible): no task of it can enter scope.
                Err(ReadError::Api(e)) if is_gone(&e) => {
                    self.clear_item(ItemKey::Tasks(contact.clone())).await?;
                }
                Err(e) => {
                    let item = ItemKey::Tasks(contact.clone());
                    self.fail_item(&item, &e.reason_code()).await?;
                    work.failed.push((item, e.to_string()));
                }
            }
        }
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

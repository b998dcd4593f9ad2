//! The safety sweep: scope discovery and change detection from listings, for every change that
//! moves no watermark (sync-model.md §2 "entering scope is found whenever it happens", §4.6).
//!
//! Attaching a label, adding a note, completing or reopening a GHL task, or giving a task the
//! title prefix may move neither `updated_at` nor `dateUpdated`, so the polls cannot see them.
//! Reading every link's group to find them costs about two Trengo calls a link: at the
//! documented 120 a minute, one cycle over 10,000 open links took 11 hours. Listings are far
//! cheaper, so the sweep walks them instead, a page at a time:
//!
//! - **Trengo tickets** filtered on the link rule (`labels[]`, `channels[]`, and the channel
//!   GHL → Trengo tickets are made in; `status` OPEN and ASSIGNED; trengo-api.md §3.3), oldest
//!   last message first (§3.4 item 2). A list item embeds status, labels, assignee and the
//!   message count (§3.4 item 5), so one page shows 25 tickets' changes. A listed ticket that
//!   is not linked and matches the rule is a new link (discovery); a linked one whose
//!   fingerprint differs from the one recorded is read again. Teams have no list filter: with
//!   teams in the rule, the open mailbox is listed whole.
//! - **GHL open tasks** (`POST /locations/{id}/tasks/search`, `completed: false`, ghl-api.md
//!   §4.1): a linked task listed open whose base is done was reopened; an unlinked open task
//!   with the title prefix, on a contact carrying the link tag (from a walk of the tagged
//!   contacts, §3.2), or naming a ticket of this account is a new link.
//! - **What a whole walk did not list**: a linked open ticket missing from the Trengo walk was
//!   closed, lost its label, moved, or is gone; a linked open task missing from the task walk
//!   was completed or deleted. Each is read once by `GET`, never from the lagging index.
//! - **Links done in the last 7 days** ([`super::SWEEP_DONE_FOR`]): no open listing shows
//!   them, so their tickets are read one by one (one call each) and compared with their print.
//! - **GHL notes** have no listing at all (ghl-api.md §5): each swept contact's notes are read
//!   (one call) and compared with the print recorded when its group was last read whole, most
//!   recently active contacts first.
//!
//! Whatever a walk finds becomes a [`Hint`], planned in the same pass exactly as a webhook's
//! would be: the group is read fresh, never from the listing.
//!
//! **Pacing.** In the daemon every request is taken from the sweep's share of each API's
//! rate ([`crate::api::Budget::try_acquire_share`], a rate, never a count per window), and GHL calls also from an allowance
//! spent as a rate (`limits.ghl_sweep_per_day` spread evenly over the day, [`Allowance`]: GHL
//! also limits a location per day), so polls and webhooks go first; a walk stops where its
//! share ends and the next sweep pass resumes it. A new cycle (the Trengo listings, the tagged
//! contacts, the open tasks) starts at most once per `limits.sweep_cycle`, and within a cycle
//! the GHL walk (tagged contacts, open tasks) starts again once it is done and a
//! `sweep_cycle` has passed, while the Trengo walk goes on: the two sides spend different
//! budgets, and a GHL task completion should not wait for the Trengo listings. The notes walk is
//! the long one (one call a contact: about 2,500 at 10,000 links, most of an hour of the
//! allowance), so it is not part of a cycle: it goes on across cycles, taking every other GHL
//! call while a GHL walk has work and all of them otherwise, and starts again over the newest
//! links once it has read every contact. A task completion waits for the next task walk, not
//! for the notes (docs/benchmarks.md, "Staleness"). `once` and `plan` walk everything, notes
//! included, in one pass ([`Pace::Whole`]), waiting for the budget as any request does.
//!
//! The walk's position lives in memory, and in the store as the `sweep.position` cursor (so a
//! restart resumes it; the notes walk starts again, most active contacts first); which items
//! a walk listed lives in memory only, so "missing from a whole walk" is only concluded for
//! walks this process made from their first page.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest as _, Sha256};

use super::{Engine, EngineError, Hint, SWEEP_CURSOR, SWEEP_DONE_FOR};
use crate::api::{ApiError, Budget};
use crate::ghl::TaskSearch;
use crate::store;
use crate::sync::execute::PassFacts;
use crate::sync::model::Tag;
use crate::sync::read::{GHL_NOTES_SEEN, TRENGO_SEEN};
use crate::sync::views;
use crate::trengo::{self, TicketFilters, TicketStatus};

/// How a sweep pass spends requests.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pace {
    /// The daemon's slice: at most `fraction` of each API's window, never waiting for the
    /// budget, and GHL calls within `ghl_per_hour` (spent as a rate, with one cycle's worth saved up at most); what is left
    /// waits for the next pass. A new cycle starts at most once per `cycle`.
    Share {
        /// Share of each API's window (`limits.sweep_share`).
        fraction: f64,
        /// GHL calls the sweep may make per hour (`limits.ghl_sweep_per_day` / 24).
        ghl_per_hour: u32,
        /// Least time between the starts of two cycles (`limits.sweep_cycle`).
        cycle: Duration,
    },
    /// A whole cycle in this pass, from the first page (`once`, `plan`).
    Whole,
}

/// Where the walks stand; kept by the engine across passes.
#[derive(Debug, Default)]
pub struct SweepState {
    /// The cycle under way, if any.
    cycle: Option<Cycle>,
    /// The GHL notes walk, which goes on across cycles.
    notes: Option<NotesWalk>,
    /// When the last cycle started (a new one waits for `limits.sweep_cycle`).
    last_start: Option<Instant>,
    /// Whether the stored position was looked at (once per process).
    resumed: bool,
    /// What is left of the GHL allowance (none until the first GHL request of a daemon pass).
    ghl_allowance: Option<Allowance>,
    /// GHL calls the cycle's walks made since the notes walk last made one.
    ghl_turn: u32,
    /// The contacts carrying the GHL link tag, as the last whole walk of them listed them.
    tagged: Option<HashSet<String>>,
    /// Daemon cycles in a row that left the Trengo walk out ([`TRENGO_WALK_EVERY`]).
    trengo_walks_skipped: u32,
}

/// With labels and notes learned to move `updated_at` (`doctor --probe-writes`), the daemon
/// walks the Trengo listings in one cycle of this many: the polls see what the walk is for.
pub const TRENGO_WALK_EVERY: u32 = 12;

/// While the notes walk has contacts left, the cycle's GHL walks (tagged contacts, open tasks)
/// make this many calls to one of the notes walk, whose turn waits across passes when the
/// allowance is short: the task walk comes round often, and the notes still move. One to one:
/// at 10,000 open links under the default allowance (and GHL's documented 25 tasks a page)
/// that is a task walk of about 8 minutes and a notes walk of about 50 (docs/benchmarks.md);
/// two to one left the notes walk at about 100 minutes.
const CYCLE_CALLS_PER_NOTES_CALL: u32 = 1;

/// The checkpointed part of a cycle (the `sweep.position` cursor).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Position {
    /// Trengo listing under way (index into [`listings`]) and its next page (1-based).
    listing: usize,
    page: u32,
    /// Next `skip` of the open-task walk.
    task_skip: u64,
}

/// One cycle of the walks.
#[derive(Debug)]
struct Cycle {
    /// Whether this process walked from the first page: only then does "not listed" mean
    /// "not there any more".
    from_start: bool,
    trengo: TrengoWalk,
    ghl: GhlWalk,
    index: Index,
    /// A notes walk over this cycle's links, taken when the one under way has read every
    /// contact (or there is none).
    notes: Option<NotesWalk>,
    /// The GHL walk's own links, when it started again within the cycle (see
    /// [`Cycle::ghl_walk_due`]); the cycle's `index` otherwise.
    ghl_index: Option<Index>,
    /// Whether the GHL walk under way started from its first page in this process.
    ghl_from_start: bool,
    /// When the GHL walk under way started.
    ghl_started: Instant,
}

impl Cycle {
    /// Whether the GHL walk should start again while the Trengo walk goes on: it is done, and
    /// a `sweep_cycle` has passed since it started. At 10,000 links the Trengo listings take
    /// most of ten minutes to walk; a GHL task completion, which only the task walk sees
    /// without webhooks, should not wait for them as well.
    fn ghl_walk_due(&self, every: Duration) -> bool {
        self.ghl.done() && self.ghl_started.elapsed() >= every
    }

    /// Starts the GHL walk again over `fresh`'s links (the store's as they are now), and
    /// takes its notes walk as the next one.
    fn restart_ghl(&mut self, fresh: Cycle) {
        self.ghl = GhlWalk::default();
        self.ghl_index = Some(fresh.index);
        self.ghl_from_start = true;
        self.ghl_started = Instant::now();
        self.notes = fresh.notes;
    }
}

/// The GHL notes walk: one read per swept contact, most recently active first.
#[derive(Debug, Default)]
struct NotesWalk {
    /// Contacts whose notes are still to be read, least active first (popped from the end).
    left: Vec<String>,
    /// How many contacts the walk started with.
    total: usize,
    /// Each contact's notes print as the store had it when the walk started.
    seen: HashMap<String, String>,
    /// The GHL note ids each contact's links have mapped.
    mapped: HashMap<String, HashSet<String>>,
}

impl NotesWalk {
    fn done(&self) -> bool {
        self.left.is_empty()
    }
}

/// GHL's sweep allowance spent as a rate: `per_hour` calls an hour, refilled continuously, with
/// at most one cycle's worth saved up (`per_hour × cycle`). Counted per clock hour instead, the
/// sweep spent an hour's worth in its first minutes and then waited out the rest of the hour:
/// at 10,000 links a task completion could wait 40 min for the next task walk. A rate is also
/// what a benchmark scaling every limit by K scales (its hour is a real one).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Allowance {
    /// Calls that may be made now.
    tokens: f64,
    /// When `tokens` was last brought up to date.
    at: Instant,
}

impl Allowance {
    /// The allowance at `now`, full.
    fn full(now: Instant, per_hour: u32, cycle: Duration) -> Self {
        Self {
            tokens: Self::cap(per_hour, cycle),
            at: now,
        }
    }

    /// The most calls saved up: one cycle's worth, and at least one call.
    fn cap(per_hour: u32, cycle: Duration) -> f64 {
        (f64::from(per_hour) * cycle.as_secs_f64() / 3600.0).max(1.0)
    }

    /// Takes one call if the allowance has one at `now`.
    fn take(&mut self, now: Instant, per_hour: u32, cycle: Duration) -> bool {
        let refill =
            now.saturating_duration_since(self.at).as_secs_f64() * f64::from(per_hour) / 3600.0;
        self.tokens = (self.tokens + refill).min(Self::cap(per_hour, cycle));
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[derive(Debug, Default)]
struct TrengoWalk {
    listing: usize,
    page: u32,
    done: bool,
    listed: HashSet<i64>,
    /// Tickets read one by one (done lately, or missing from the whole walk); planned once
    /// the walk is done.
    checks: Option<Vec<i64>>,
}

#[derive(Debug, Default)]
struct GhlWalk {
    tagged_after: Option<Vec<Value>>,
    tagged_found: HashSet<String>,
    tagged_done: bool,
    task_skip: u64,
    tasks_done: bool,
    listed: HashSet<String>,
    missing_planned: bool,
}

impl GhlWalk {
    /// Whether the tagged contacts and the open tasks were walked and what they missed planned.
    fn done(&self) -> bool {
        self.tagged_done && self.tasks_done && self.missing_planned
    }
}

/// The links a cycle sweeps, as the store had them when it started.
#[derive(Debug, Default)]
struct Index {
    /// Active links not done long ago, by ticket.
    by_ticket: HashMap<i64, Swept>,
    /// The same, task id → ticket id.
    by_task: HashMap<String, i64>,
    /// Every link's ids, in any state: never discovered again.
    every_ticket: HashSet<i64>,
    every_task: HashSet<String>,
}

/// One swept link, as the store has it.
#[derive(Debug, Clone)]
struct Swept {
    ticket: i64,
    task: String,
    contact: String,
    /// The status base: `Some(true)` done, `Some(false)` open, none before the first sync.
    done: Option<bool>,
    /// The assignee base (a normalised e-mail, or none for unassigned), when there is one.
    assignee: Option<Option<String>>,
    /// The ticket's print as last synced.
    seen: Option<String>,
    /// Done within [`SWEEP_DONE_FOR`].
    done_lately: bool,
}

/// What a sweep pass found.
#[derive(Debug, Default)]
pub struct Found {
    /// Tickets listed in this pass (the poll's rules decide which changed or enter scope).
    pub tickets: HashMap<i64, trengo::Ticket>,
    /// Items to read again, as a webhook would name them.
    pub hints: Vec<Hint>,
    /// The position to checkpoint (daemon passes only).
    pub position: Option<String>,
    /// Requests made on each side.
    pub trengo_calls: u64,
    /// Requests made on each side.
    pub ghl_calls: u64,
    /// Whether a cycle ended in this pass.
    pub cycle_done: bool,
}

/// Progress of a whole sweep, for a terminal (`once`).
pub type Progress = Arc<dyn Fn(&str) + Send + Sync>;

/// The Trengo listings that cover the link rule, each walked for OPEN and ASSIGNED tickets.
fn listings(scope: &crate::sync::declare::Scope, labels: &HashMap<Tag, i64>) -> Vec<TicketFilters> {
    let mut base = Vec::new();
    if !scope.trengo_teams.is_empty() {
        // No team filter exists (trengo-api.md §3.3): the open mailbox is listed whole.
        base.push(TicketFilters::default());
    } else {
        if let Some(id) = scope.trengo_label.as_ref().and_then(|l| labels.get(l)) {
            base.push(TicketFilters {
                labels: vec![*id],
                ..TicketFilters::default()
            });
        }
        let mut channels: BTreeSet<i64> = scope.trengo_channels.iter().copied().collect();
        if scope.ghl_to_trengo() {
            channels.extend(scope.trengo_channel_id);
        }
        if !channels.is_empty() {
            base.push(TicketFilters {
                channels: channels.into_iter().collect(),
                ..TicketFilters::default()
            });
        }
    }
    let mut out = Vec::new();
    for filters in base {
        for status in [TicketStatus::Open, TicketStatus::Assigned] {
            out.push(TicketFilters {
                status: Some(status),
                oldest_first: true,
                ..filters.clone()
            });
        }
    }
    out
}

/// The print of a contact's GHL notes that the sync has not made its own: the ids of the
/// notes not mapped to a Trengo message, hashed. A new note from a person changes it; a note
/// the sync copied, or wrote, does not.
pub fn notes_print<'a>(
    notes: impl IntoIterator<Item = &'a str>,
    mapped: &HashSet<String>,
) -> String {
    let mut ids: Vec<&str> = notes
        .into_iter()
        .filter(|id| !mapped.contains(*id))
        .collect();
    ids.sort_unstable();
    ids.dedup();
    let mut hash = Sha256::new();
    for id in ids {
        hash.update(id.as_bytes());
        hash.update(b"\n");
    }
    hex::encode(&hash.finalize()[..12])
}

/// Whether an answer says the item is gone for good (deleted, merged away, not visible).
pub fn is_gone(e: &ApiError) -> bool {
    matches!(e.status(), Some(404 | 410))
}

/// Says yes to each request a walk may make now.
struct Pacer<'a> {
    pace: Pace,
    budget: &'a Budget,
    /// GHL's allowance (none for Trengo).
    allowance: Option<&'a mut Option<Allowance>>,
    calls: u64,
    /// No more calls than this in all, for now (one walk's turn while another waits).
    cap: Option<u64>,
    /// When the pass started: the GHL allowance is counted as of then, so a pass spends at
    /// most what was saved up when it began. Counted as of each call, a pass whose calls are
    /// slower than the allowance refills never ran out of it: it walked every contact's notes
    /// in one go (tens of seconds) while the hints the Trengo walk had found waited for the
    /// pass to end (seen in the staleness benchmark: Trengo-side changes 15 min late).
    started: Instant,
}

impl Pacer<'_> {
    fn may(&mut self) -> bool {
        if self.cap.is_some_and(|cap| self.calls >= cap) {
            return false;
        }
        let Pace::Share {
            fraction,
            ghl_per_hour,
            cycle,
        } = self.pace
        else {
            self.calls += 1;
            return true;
        };
        if let Some(slot) = self.allowance.as_deref_mut() {
            let now = self.started;
            let mut allowance =
                *slot.get_or_insert_with(|| Allowance::full(now, ghl_per_hour, cycle));
            if !allowance.take(now, ghl_per_hour, cycle) {
                *slot = Some(allowance);
                return false;
            }
            if !self.budget.try_acquire_share(fraction) {
                // Not spent: the call is not made.
                allowance.tokens += 1.0;
                *slot = Some(allowance);
                return false;
            }
            *slot = Some(allowance);
        } else if !self.budget.try_acquire_share(fraction) {
            return false;
        }
        self.calls += 1;
        true
    }
}

impl Engine {
    /// One sweep pass: walks as far as `pace` allows and returns what it found.
    pub(super) async fn sweep_walks(
        &self,
        pace: Pace,
        facts: &PassFacts,
    ) -> Result<Found, EngineError> {
        let mut found = Found::default();
        let mut state = self.sweep.lock().await;
        let state = &mut *state;
        if let Pace::Share { cycle, .. } = pace {
            if !state.resumed {
                state.resumed = true;
                let stored = self
                    .store
                    .call(|s| store::cursors::get(s.conn(), SWEEP_CURSOR))
                    .await?
                    .and_then(|p| serde_json::from_str::<Position>(&p).ok());
                if let Some(at) = stored.filter(|p| *p != Position::default()) {
                    state.cycle = Some(self.new_cycle(at, false).await?);
                    state.last_start = Some(Instant::now());
                }
            }
            if state.cycle.is_none() && state.last_start.is_none_or(|last| last.elapsed() >= cycle)
            {
                let t = Instant::now();
                let mut next = self.new_cycle(Position::default(), true).await?;
                tracing::debug!(
                    took_ms = t.elapsed().as_millis() as u64,
                    links = next.index.by_ticket.len(),
                    "sweep: a cycle starts"
                );
                if self.trengo_walk_needless().await?
                    && state.trengo_walks_skipped + 1 < TRENGO_WALK_EVERY
                {
                    state.trengo_walks_skipped += 1;
                    next.trengo.done = true;
                    next.trengo.checks = Some(Vec::new());
                    tracing::debug!("sweep: Trengo walk left out of this cycle (learned facts)");
                } else {
                    state.trengo_walks_skipped = 0;
                }
                state.cycle = Some(next);
                state.last_start = Some(Instant::now());
            }
            if let Some(c) = state.cycle.as_mut()
                && c.ghl_walk_due(cycle)
            {
                let t = Instant::now();
                c.restart_ghl(self.new_cycle(Position::default(), true).await?);
                tracing::debug!(
                    took_ms = t.elapsed().as_millis() as u64,
                    "sweep: GHL walk starts again within the cycle"
                );
            }
            // A notes walk that has read every contact starts again over the newest links.
            if state.notes.as_ref().is_none_or(NotesWalk::done)
                && let Some(fresh) = state.cycle.as_mut().and_then(|c| c.notes.take())
            {
                state.notes = Some(fresh);
            }
        } else {
            // A whole cycle starts from the first page, whatever the daemon's walk reached, and
            // reads every contact's notes.
            let mut whole = self.new_cycle(Position::default(), true).await?;
            state.notes = whole.notes.take();
            state.cycle = Some(whole);
        }
        let SweepState {
            cycle: slot,
            notes,
            ghl_allowance,
            ghl_turn: turn,
            tagged,
            ..
        } = state;
        let listings = listings(&self.settings.scope, &facts.labels);
        let started = Instant::now();
        let mut tp = Pacer {
            pace,
            budget: self.trengo.budget(),
            allowance: None,
            calls: 0,
            cap: None,
            started,
        };
        let mut gp = Pacer {
            pace,
            budget: self.ghl.budget(),
            allowance: Some(ghl_allowance),
            calls: 0,
            cap: None,
            started,
        };
        let cycle = slot.as_mut();
        let (trengo, ghl) = match cycle {
            Some(Cycle {
                from_start,
                trengo: tw,
                ghl: gw,
                index,
                ghl_index,
                ghl_from_start,
                ..
            }) => {
                let ghl_index = ghl_index.as_ref().unwrap_or(index);
                // The two sides spend different budgets: walk them side by side.
                let (t, g) = futures::join!(
                    self.walk_trengo(tw, index, *from_start, &listings, &mut tp),
                    async {
                        // While both have work, turns: CYCLE_CALLS_PER_NOTES_CALL to one.
                        let mut hints = Vec::new();
                        loop {
                            let before = gp.calls;
                            let notes_left = notes.as_ref().is_some_and(|n| !n.done());
                            let notes_turn = notes_left && *turn >= CYCLE_CALLS_PER_NOTES_CALL;
                            if !gw.done() && !notes_turn {
                                gp.cap = notes_left.then_some(
                                    gp.calls
                                        + u64::from(
                                            CYCLE_CALLS_PER_NOTES_CALL.saturating_sub(*turn),
                                        ),
                                );
                                hints.extend(
                                    self.walk_ghl(
                                        gw,
                                        ghl_index,
                                        *ghl_from_start,
                                        tagged,
                                        facts,
                                        &mut gp,
                                    )
                                    .await?,
                                );
                                *turn = turn.saturating_add(
                                    u32::try_from(gp.calls - before).unwrap_or(u32::MAX),
                                );
                            }
                            let mid = gp.calls;
                            gp.cap = (!gw.done()).then_some(gp.calls + 1);
                            hints.extend(self.walk_notes(notes.as_mut(), &mut gp).await);
                            if gp.calls > mid || !notes_left {
                                *turn = 0;
                            }
                            if gp.calls == before {
                                break;
                            }
                        }
                        Ok::<_, EngineError>(hints)
                    }
                );
                (Some((t?, tw, gw)), g?)
            }
            None => (None, self.walk_notes(notes.as_mut(), &mut gp).await),
        };
        found.hints = ghl;
        found.trengo_calls = tp.calls;
        found.ghl_calls = gp.calls;
        let Some(((tickets, trengo_hints), tw, gw)) = trengo else {
            // Between cycles: the position stays the start, as the last cycle left it.
            return Ok(found);
        };
        found.tickets = tickets;
        found.hints.extend(trengo_hints);
        let done = tw.done && tw.checks.as_ref().is_some_and(Vec::is_empty) && gw.done();
        tracing::debug!(
            took_ms = started.elapsed().as_millis() as u64,
            trengo_done = tw.done,
            trengo_listing = tw.listing,
            trengo_page = tw.page,
            checks = tw.checks.as_ref().map_or(0, Vec::len),
            ghl_done = gw.done(),
            task_skip = gw.task_skip,
            notes_left = notes.as_ref().map_or(0, |n| n.left.len()),
            "sweep: walks"
        );
        let position = if done {
            found.cycle_done = true;
            *slot = None;
            Position::default()
        } else {
            Position {
                listing: tw.listing,
                page: tw.page,
                task_skip: gw.task_skip,
            }
        };
        if matches!(pace, Pace::Share { .. }) {
            found.position = serde_json::to_string(&position).ok();
        }
        Ok(found)
    }

    /// Whether the Trengo walk finds nothing the `updated_at_gt` poll does not: `doctor
    /// --probe-writes` learned that attaching a label and adding an internal note move a
    /// ticket's `updated_at` (closing does, trengo-api.md §3.4 item 4; a reopen is taken to do
    /// the same), assignees are not synced (whether an assignment moves it is unknown), and the
    /// link rule has no channel or team (nor whether a move does). Then the daemon walks the
    /// Trengo listings in one cycle of [`TRENGO_WALK_EVERY`] only, for what nothing moves (a
    /// deleted ticket, an assumption that fails). Not learned, or learned false: every cycle.
    /// `once` and `plan` always walk.
    async fn trengo_walk_needless(&self) -> Result<bool, EngineError> {
        let scope = &self.settings.scope;
        if self.settings.plan.assignee_enabled
            || !scope.trengo_channels.is_empty()
            || !scope.trengo_teams.is_empty()
        {
            return Ok(false);
        }
        let learned = self
            .store
            .call(|s| store::facts::learned_bumps(s.conn()))
            .await?;
        Ok(learned.label == Some(true) && learned.note == Some(true))
    }

    /// Starts a cycle at `at`, with the store's links as they are now.
    async fn new_cycle(&self, at: Position, from_start: bool) -> Result<Cycle, EngineError> {
        let since = self.clock.now() - SWEEP_DONE_FOR;
        let (index, notes) = self
            .store
            .call(move |s| {
                let c = s.conn();
                let mut index = Index::default();
                let mut notes = NotesWalk::default();
                let (tickets, tasks) = store::links::every_id(c)?;
                index.every_ticket = tickets;
                index.every_task = tasks;
                let mut activity: HashMap<String, chrono::DateTime<chrono::Utc>> = HashMap::new();
                for link in store::links::active(c)? {
                    let bases = store::bases::for_link(c, link.id)?;
                    let base = |f: &str| bases.iter().find(|b| b.field == f);
                    let status = base("status");
                    let done = status.and_then(|b| b.value.as_bool());
                    let done_lately =
                        done == Some(true) && status.is_some_and(|b| b.updated_at >= since);
                    if done == Some(true) && !done_lately {
                        // Done long ago: the nightly reconcile looks at it.
                        continue;
                    }
                    let last = bases
                        .iter()
                        .map(|b| b.updated_at)
                        .max()
                        .unwrap_or(link.created_at)
                        .max(link.created_at);
                    let at = activity.entry(link.ghl_contact_id.clone()).or_insert(last);
                    *at = (*at).max(last);
                    let mapped = notes.mapped.entry(link.ghl_contact_id.clone()).or_default();
                    for m in store::comments::for_link(c, link.id)? {
                        mapped.insert(m.ghl_note_id);
                    }
                    index.by_task.insert(link.task_id.clone(), link.ticket_id);
                    index.by_ticket.insert(
                        link.ticket_id,
                        Swept {
                            ticket: link.ticket_id,
                            task: link.task_id.clone(),
                            contact: link.ghl_contact_id.clone(),
                            done,
                            assignee: base("assignee")
                                .map(|b| b.value.as_str().map(str::to_string)),
                            seen: base(TRENGO_SEEN)
                                .and_then(|b| b.value.as_str().map(str::to_string)),
                            done_lately,
                        },
                    );
                }
                let mut contacts: Vec<(String, chrono::DateTime<chrono::Utc>)> =
                    activity.into_iter().collect();
                // Most recently active first: a note is likeliest where people are at work.
                contacts.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
                for (contact, _) in &contacts {
                    if let Some(b) = store::bases::get_contact(c, contact, GHL_NOTES_SEEN)?
                        && let Some(print) = b.value.as_str()
                    {
                        notes.seen.insert(contact.clone(), print.to_string());
                    }
                }
                notes.total = contacts.len();
                notes.left = contacts.into_iter().rev().map(|(c, _)| c).collect();
                Ok((index, notes))
            })
            .await?;
        Ok(Cycle {
            from_start,
            trengo: TrengoWalk {
                listing: at.listing,
                page: at.page.max(1),
                ..TrengoWalk::default()
            },
            ghl: GhlWalk {
                task_skip: at.task_skip,
                ..GhlWalk::default()
            },
            index,
            notes: Some(notes),
            ghl_index: None,
            ghl_from_start: from_start,
            ghl_started: Instant::now(),
        })
    }

    /// The Trengo side: the listings page by page, then the tickets read one by one.
    async fn walk_trengo(
        &self,
        w: &mut TrengoWalk,
        index: &Index,
        from_start: bool,
        listings: &[TicketFilters],
        pacer: &mut Pacer<'_>,
    ) -> Result<(HashMap<i64, trengo::Ticket>, Vec<Hint>), EngineError> {
        let mut listed = HashMap::new();
        let mut hints = Vec::new();
        while !w.done {
            let Some(filters) = listings.get(w.listing) else {
                w.done = true;
                break;
            };
            if !pacer.may() {
                return Ok((listed, hints));
            }
            let page = self.trengo.tickets_page(filters, w.page).await?;
            for ticket in page.tickets {
                w.listed.insert(ticket.id);
                // A ticket listed twice (the order drifts) is looked at once, in its newest form.
                listed.insert(ticket.id, ticket);
            }
            if page.more {
                w.page += 1;
            } else {
                w.listing += 1;
                w.page = 1;
            }
            self.report_progress(|| {
                format!(
                    "sweep: Trengo listing {}/{}, {} tickets listed",
                    w.listing.min(listings.len()),
                    listings.len(),
                    w.listed.len()
                )
            });
        }
        let checks = w.checks.get_or_insert_with(|| {
            let mut checks: Vec<i64> = index
                .by_ticket
                .values()
                .filter(|s| {
                    s.done_lately
                        || (from_start && s.done == Some(false) && !w.listed.contains(&s.ticket))
                })
                .map(|s| s.ticket)
                .collect();
            checks.sort_unstable_by(|a, b| b.cmp(a));
            checks
        });
        while let Some(&id) = checks.last() {
            if listed.contains_key(&id) {
                checks.pop();
                continue;
            }
            if !pacer.may() {
                break;
            }
            checks.pop();
            match self.trengo.ticket(id).await {
                Ok(ticket) => {
                    let print = views::ticket_fingerprint(&ticket);
                    let seen = index.by_ticket.get(&id).and_then(|s| s.seen.as_deref());
                    // An expected print goes on too, for its listed print to replace it.
                    let unchanged = seen.is_some_and(|seen| {
                        views::ticket_print_matches(seen, &print, &ticket)
                            && !views::is_expected_print(seen)
                    });
                    if !unchanged {
                        listed.insert(id, ticket);
                    }
                }
                // Gone, or failing: the hint's own read decides (and records the outcome).
                Err(e) => {
                    tracing::debug!(ticket = id, error = %e, "sweep: ticket read failed; handed to its item");
                    hints.push(Hint::Ticket(id));
                }
            }
        }
        Ok((listed, hints))
    }

    /// The GHL side of a cycle: the tagged contacts, the open tasks, what the task walk missed.
    async fn walk_ghl(
        &self,
        w: &mut GhlWalk,
        index: &Index,
        from_start: bool,
        tagged: &mut Option<HashSet<String>>,
        facts: &PassFacts,
        pacer: &mut Pacer<'_>,
    ) -> Result<Vec<Hint>, EngineError> {
        let scope = &self.settings.scope;
        let mut hints = Vec::new();
        let tag = scope.ghl_tag.as_ref().filter(|_| scope.ghl_to_trengo());
        match tag {
            None => w.tagged_done = true,
            Some(tag) => {
                while !w.tagged_done {
                    if !pacer.may() {
                        return Ok(hints);
                    }
                    let (contacts, next) = self
                        .ghl
                        .contacts_tagged_page(tag.as_str(), w.tagged_after.as_deref())
                        .await?;
                    w.tagged_found.extend(contacts.into_iter().map(|c| c.id));
                    match next {
                        Some(next) => w.tagged_after = Some(next),
                        None => {
                            w.tagged_done = true;
                            *tagged = Some(std::mem::take(&mut w.tagged_found));
                        }
                    }
                }
            }
        }
        let search = TaskSearch {
            completed: Some(false),
            ..TaskSearch::default()
        };
        while !w.tasks_done {
            if !pacer.may() {
                return Ok(hints);
            }
            let tasks = self.ghl.search_tasks_page(&search, w.task_skip).await?;
            if tasks.is_empty() {
                w.tasks_done = true;
                break;
            }
            w.task_skip += tasks.len() as u64;
            for task in tasks {
                w.listed.insert(task.id.clone());
                self.look_at_task(&task, index, tagged.as_ref(), facts, &mut hints);
            }
            self.report_progress(|| format!("sweep: {} open GHL tasks listed", w.listed.len()));
        }
        if !w.missing_planned {
            w.missing_planned = true;
            if from_start {
                // Open at the last sync and no longer listed open: completed, or deleted.
                for s in index.by_ticket.values() {
                    if s.done == Some(false) && !w.listed.contains(&s.task) {
                        hints.push(Hint::TaskCompleted {
                            contact_id: s.contact.clone(),
                            task_id: s.task.clone(),
                        });
                    }
                }
            }
        }
        Ok(hints)
    }

    /// The GHL notes walk: each swept contact's notes read (one call) and compared with the
    /// print recorded when its group was last read whole, most recently active first.
    async fn walk_notes(&self, walk: Option<&mut NotesWalk>, pacer: &mut Pacer<'_>) -> Vec<Hint> {
        let mut hints = Vec::new();
        let Some(w) = walk else {
            return hints;
        };
        while let Some(contact) = w.left.last() {
            if !pacer.may() {
                break;
            }
            let contact = contact.clone();
            w.left.pop();
            match self.ghl.notes(&contact).await {
                Ok(read) => {
                    let empty = HashSet::new();
                    let mapped = w.mapped.get(&contact).unwrap_or(&empty);
                    let print = notes_print(read.iter().map(|n| n.id.as_str()), mapped);
                    if w.seen.get(&contact) != Some(&print) {
                        hints.push(Hint::ContactNotes(contact));
                    }
                }
                Err(e) => {
                    tracing::debug!(%contact, error = %e, "sweep: notes read failed; handed to its item");
                    hints.push(Hint::ContactNotes(contact));
                }
            }
            self.report_progress(|| {
                format!(
                    "sweep: GHL notes of {}/{} contacts read",
                    w.total - w.left.len(),
                    w.total
                )
            });
        }
        hints
    }

    /// What one open task of the walk says: a linked one reopened or reassigned, or an
    /// unlinked one entering scope.
    fn look_at_task(
        &self,
        task: &crate::ghl::Task,
        index: &Index,
        tagged: Option<&HashSet<String>>,
        facts: &PassFacts,
        hints: &mut Vec<Hint>,
    ) {
        let scope = &self.settings.scope;
        if let Some(ticket) = index.by_task.get(&task.id) {
            let Some(s) = index.by_ticket.get(ticket) else {
                return;
            };
            let reassigned = self.settings.plan.assignee_enabled
                && s.assignee.as_ref().is_some_and(|base| {
                    views::task(task, &s.contact, &facts.directory).assignee != *base
                });
            if s.done == Some(true) || reassigned {
                hints.push(Hint::TaskCompleted {
                    contact_id: s.contact.clone(),
                    task_id: s.task.clone(),
                });
            }
            return;
        }
        if index.every_task.contains(&task.id) || !scope.ghl_to_trengo() {
            return;
        }
        let Some(contact) = task.contact_id.as_deref().filter(|c| !c.is_empty()) else {
            return;
        };
        let tags: Vec<Tag> = match (tagged, &scope.ghl_tag) {
            (Some(set), Some(tag)) if set.contains(contact) => vec![tag.clone()],
            _ => Vec::new(),
        };
        let title = task.title.as_deref().unwrap_or_default();
        let names_ticket = task
            .body
            .as_deref()
            .and_then(|b| scope.ticket_in_text(b))
            .is_some_and(|t| !index.every_ticket.contains(&t));
        if names_ticket || scope.task_in_scope(&tags, title) {
            hints.push(Hint::Contact(contact.to_string()));
        }
    }

    fn report_progress(&self, line: impl FnOnce() -> String) {
        if let Some(progress) = &self.progress {
            progress(&line());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_print_ignores_mapped_notes_and_order() {
        let mapped: HashSet<String> = ["ours".to_string()].into();
        let a = notes_print(["n1", "n2", "ours"], &mapped);
        let b = notes_print(["n2", "n1"], &HashSet::new());
        assert_eq!(a, b);
        assert_ne!(a, notes_print(["n1", "n2", "n3"], &mapped));
    }

    #[test]
    fn a_sweep_pass_spends_no_more_of_the_ghl_allowance_than_it_had_when_it_began() {
        // 36,000 an hour (ten a second) with ten seconds saved up at most: 100 calls. A pass
        // whose calls take longer than the refill must still stop at those 100.
        let budget = Budget::new("test", 1_000_000, Duration::from_secs(10));
        let mut slot = None;
        let started = Instant::now();
        // The calls a pass started at `started` may make.
        let mut pass = |started: Instant| {
            let mut pacer = Pacer {
                pace: Pace::Share {
                    fraction: 1.0,
                    ghl_per_hour: 36_000,
                    cycle: Duration::from_secs(10),
                },
                budget: &budget,
                allowance: Some(&mut slot),
                calls: 0,
                cap: None,
                started,
            };
            let mut made = 0;
            while pacer.may() {
                made += 1;
                assert!(made <= 100, "the pass went on past what it had saved up");
            }
            made
        };
        assert_eq!(pass(started), 100);
        // The next pass, a second later, has a second's refill.
        assert_eq!(pass(started + Duration::from_secs(1)), 10);
    }

    #[test]
    fn the_ghl_allowance_is_a_rate_with_one_cycle_saved_up_at_most() {
        let cycle = Duration::from_secs(300);
        let t0 = Instant::now();
        // 3,600 an hour is one a second; one cycle's worth is 300.
        let mut a = Allowance::full(t0, 3600, cycle);
        let taken = (0..1000).filter(|_| a.take(t0, 3600, cycle)).count();
        assert_eq!(taken, 300, "a full allowance is one cycle's worth");
        assert!(!a.take(t0, 3600, cycle));
        // Ten seconds later, ten more: spread over the hour, not an hour's worth at once.
        let t1 = t0 + Duration::from_secs(10);
        let taken = (0..1000).filter(|_| a.take(t1, 3600, cycle)).count();
        assert_eq!(taken, 10);
        // An idle hour saves up one cycle's worth, no more.
        let t2 = t1 + Duration::from_secs(3600);
        let taken = (0..10_000).filter(|_| a.take(t2, 3600, cycle)).count();
        assert_eq!(taken, 300);
        // A tiny allowance still lets a call through now and then.
        let mut small = Allowance::full(t0, 1, Duration::from_secs(1));
        assert!(small.take(t0, 1, Duration::from_secs(1)));
        assert!(!small.take(t0 + Duration::from_secs(60), 1, Duration::from_secs(1)));
        assert!(small.take(t0 + Duration::from_secs(3600), 1, Duration::from_secs(1)));
    }

    #[test]
    fn listings_cover_the_label_and_every_channel_tickets_are_made_in() {
        let scope = crate::sync::declare::Scope {
            trengo_label: Some(Tag::new("ghl")),
            trengo_channels: vec![7],
            trengo_teams: Vec::new(),
            ghl_tag: Some(Tag::new("trengo")),
            ghl_title_prefix: None,
            trengo_channel_id: Some(9),
            web_url: "https://app.trengo.com".into(),
        };
        let labels: HashMap<Tag, i64> = [(Tag::new("ghl"), 3)].into();
        let l = listings(&scope, &labels);
        assert_eq!(l.len(), 4, "two filters, each for OPEN and ASSIGNED");
        assert_eq!(l[0].labels, vec![3]);
        assert_eq!(l[2].channels, vec![7, 9]);
        assert!(l.iter().all(|f| f.oldest_first));
    }

    #[test]
    fn with_teams_in_the_rule_the_open_mailbox_is_listed_whole() {
        let scope = crate::sync::declare::Scope {
            trengo_label: Some(Tag::new("ghl")),
            trengo_channels: Vec::new(),
            trengo_teams: vec![4],
            ghl_tag: None,
            ghl_title_prefix: None,
            trengo_channel_id: None,
            web_url: "https://app.trengo.com".into(),
        };
        let l = listings(&scope, &HashMap::new());
        assert_eq!(l.len(), 2);
        assert!(
            l.iter()
                .all(|f| f.labels.is_empty() && f.channels.is_empty())
        );
    }
}

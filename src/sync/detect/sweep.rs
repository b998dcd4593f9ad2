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
//! - **Links done in the last 7 days** ([`crate::sync::engine::SWEEP_DONE_FOR`]): no open listing shows
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
//! spent as a rate (`limits.ghl_sweep_per_day` spread evenly over the day, `pace::Allowance`: GHL
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

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Detector, Hint};

pub(crate) mod pace;
mod walks;

use crate::api::ApiError;
use crate::store;
use crate::sync::engine::{EngineError, SWEEP_CURSOR, SWEEP_DONE_FOR};
use crate::sync::execute::PassFacts;
use crate::sync::keys::BaseName;
use crate::trengo;
use pace::{Allowance, Pacer};
use walks::listings;
pub use walks::notes_print;

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

/// Whether an answer says the item is gone for good (deleted, merged away, not visible).
pub fn is_gone(e: &ApiError) -> bool {
    matches!(e.status(), Some(404 | 410))
}

impl Detector<'_> {
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
                    .reader
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
            .reader
            .call(|s| store::facts::learned_bumps(s.conn()))
            .await?;
        Ok(learned.label == Some(true) && learned.note == Some(true))
    }

    /// Starts a cycle at `at`, with the store's links as they are now.
    async fn new_cycle(&self, at: Position, from_start: bool) -> Result<Cycle, EngineError> {
        let since = self.clock.now() - SWEEP_DONE_FOR;
        let (index, notes) = self
            .reader
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
                    let base = |name: BaseName| bases.iter().find(|b| b.is(name));
                    let status = base(BaseName::Status);
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
                            assignee: base(BaseName::Assignee)
                                .map(|b| b.value.as_str().map(str::to_string)),
                            seen: base(BaseName::TrengoSeen)
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
                    if let Some(b) = store::bases::get_contact(c, contact, BaseName::GhlNotesSeen)?
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
}

//! The Trengo backfill's cost, as the engine reports it to [`BackfillTracker`]: work done and
//! work expected, in milliseconds of rate budget at the configured limits.
//!
//! The backfill links tickets (round 1: GHL-bound) and then reads and settles each new link's
//! group (round 2: Trengo-bound), chunk by chunk (`rounds.rs`). Round 1's cost is known from
//! its plan. Round 2's is not known until each group is read, so it is *learnt*: every settled
//! chunk adds its links and what settling them cost, and the links still to settle are priced
//! at the average so far (a prior before the first chunk). The estimate is thus right after a
//! chunk or two, whatever the account's notes and labels look like.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};

use super::BackfillTracker;
use crate::api::Budget;
use crate::sync::operation::{ItemPlan, Op, Plan, Side};

/// Which round spent some units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Round {
    /// Round 1: the changed groups' reads, then the plan's items (the links), priced in advance.
    First,
    /// Round 2: reading and settling the new links' groups, learnt as it goes.
    Second,
}

/// What is known of a backfill's cost, in budget milliseconds. Pure arithmetic, so the
/// estimator can be tested without a clock or an API.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Estimate {
    /// Units spent so far, both rounds.
    pub done: u64,
    /// Round 1 still to apply: exact, from its plan.
    pub first_left: u64,
    /// Links round 1 plans whose groups round 2 has not settled yet.
    pub links_left: u64,
    /// Units round 2 spent on chunks not settled yet (they are in `done` already).
    pub unsettled: u64,
    /// Links whose groups round 2 has settled.
    pub settled_links: u64,
    /// What settling them cost.
    pub settled_cost: u64,
    /// Round 2's cost of a link before any chunk is settled.
    pub prior: u64,
}

impl Estimate {
    /// Round 2's cost of one link: the average of the chunks settled so far, else the prior.
    pub fn per_link(&self) -> u64 {
        if self.settled_links == 0 {
            self.prior
        } else {
            (self.settled_cost as f64 / self.settled_links as f64).round() as u64
        }
    }

    /// All the work, done and expected.
    pub fn total(&self) -> u64 {
        let second_left = (self.links_left * self.per_link()).saturating_sub(self.unsettled);
        self.done + self.first_left + second_left
    }

    /// Round 1 is planned: `cost` units of items making `links` links.
    pub fn planned(&mut self, cost: u64, links: u64) {
        self.first_left = cost;
        self.links_left = links;
    }

    /// `units` more were spent by `round`.
    pub fn spent(&mut self, units: u64, round: Round) {
        self.done += units;
        match round {
            Round::First => self.first_left = self.first_left.saturating_sub(units),
            Round::Second => self.unsettled += units,
        }
    }

    /// Round 2 settled a chunk of `links` planned links, which cost `cost` units.
    pub fn settled(&mut self, links: u64, cost: u64) {
        self.links_left = self.links_left.saturating_sub(links);
        self.unsettled = self.unsettled.saturating_sub(cost);
        self.settled_links += links;
        self.settled_cost += cost;
    }
}

/// A backfill under way in one pass, counted in milliseconds of rate budget: the pass is
/// paced by the two APIs' limits, so the time its calls take at those limits is what makes an
/// ETA hold (a GHL call costs a tenth of a second at 100 per 10 s, a Trengo call half a second
/// at 120 a minute). Shared by the pass's concurrent stages, hence the mutex (a std one: a few
/// additions, never held across an await).
pub(crate) struct BackfillRun {
    pub(crate) tracker: Arc<dyn BackfillTracker>,
    /// Budget milliseconds of one call: (Trengo, GHL).
    per_call: (f64, f64),
    estimate: Mutex<Estimate>,
}

impl BackfillRun {
    pub(crate) fn new(tracker: Arc<dyn BackfillTracker>, trengo: &Budget, ghl: &Budget) -> Self {
        let ms = |b: &Budget| {
            let s = b.snapshot();
            s.window.as_secs_f64() * 1000.0 / f64::from(s.limit.max(1))
        };
        let mut run = Self {
            tracker,
            per_call: (ms(trengo), ms(ghl)),
            estimate: Mutex::new(Estimate::default()),
        };
        // Before any chunk is settled, a new link is priced at its ticket and messages read,
        // a share of its contact's reads and one note copied to GHL; the first chunks replace
        // this with what settling really cost.
        let prior = run.cost(2, 2);
        run.estimate
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .prior = prior;
        run
    }

    fn with<R>(&self, f: impl FnOnce(&mut Estimate) -> R) -> R {
        f(&mut self.estimate.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Units of `trengo` Trengo calls and `ghl` GHL calls.
    pub(crate) fn cost(&self, trengo: u64, ghl: u64) -> u64 {
        (trengo as f64 * self.per_call.0 + ghl as f64 * self.per_call.1).round() as u64
    }

    /// The calls an item makes: linking a ticket finds the contact, lists its tasks and creates
    /// one (three GHL calls); linking a task creates a ticket, posts its note and writes the URL
    /// back; every other write is one call on its side.
    pub(crate) fn item_cost(&self, item: &ItemPlan) -> u64 {
        item.ops
            .iter()
            .map(|op| match op {
                Op::LinkTicket { .. } => self.cost(0, 3),
                Op::LinkTask { .. } => self.cost(2, 1),
                op => match op.side() {
                    Some(Side::Trengo) => self.cost(1, 0),
                    Some(Side::Ghl) => self.cost(0, 1),
                    None => 0,
                },
            })
            .sum()
    }

    /// Reading a group of `links` links: the contact, its tasks and notes; each ticket and its
    /// messages. Both APIs' shares count: the rounds overlap, so both budgets are spent at once
    /// and the rate the tracker measures is of their sum.
    pub(crate) fn load_cost(&self, links: usize) -> u64 {
        self.cost(2 * links as u64, 3)
    }

    /// Sizes the backfill from round 1's plan: its items exactly, and round 2 for each link it
    /// makes at the learnt (or prior) cost of a link.
    pub(crate) fn planned(&self, plan: &Plan, now: DateTime<Utc>) {
        let cost: u64 = plan.items.iter().map(|i| self.item_cost(i)).sum();
        let links = plan.items.iter().filter(|i| makes_link(i)).count() as u64;
        let total = self.with(|e| {
            e.planned(cost, links);
            e.total()
        });
        self.tracker.backfill_planned(total, now);
    }

    /// `units` more were spent by `round`.
    pub(crate) fn advanced(&self, units: u64, round: Round, now: DateTime<Utc>) {
        self.with(|e| e.spent(units, round));
        self.tracker.backfill_advanced(units, now);
    }

    /// Round 2 settled a chunk of `links` planned links at `cost` units: the estimate learns.
    pub(crate) fn settled(&self, links: u64, cost: u64, now: DateTime<Utc>) {
        let total = self.with(|e| {
            e.settled(links, cost);
            e.total()
        });
        self.tracker.backfill_planned(total, now);
    }
}

/// Whether an item makes a link (whose group round 2 then reads and settles).
pub(crate) fn makes_link(item: &ItemPlan) -> bool {
    item.ops.iter().any(|op| {
        matches!(
            op,
            Op::LinkTicket { .. } | Op::LinkTask { .. } | Op::AdoptTask { .. }
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn started(first: u64, links: u64, prior: u64) -> Estimate {
        let mut e = Estimate {
            prior,
            ..Estimate::default()
        };
        e.planned(first, links);
        e
    }

    #[test]
    fn before_any_chunk_is_settled_links_are_priced_at_the_prior() {
        let e = started(3_000, 10, 500);
        assert_eq!(e.per_link(), 500);
        assert_eq!(e.total(), 3_000 + 10 * 500);
    }

    #[test]
    fn settled_chunks_replace_the_prior_with_what_a_link_really_cost() {
        // The prior guessed 500 a link; the account's links cost 200 each to settle.
        let mut e = started(3_000, 10, 500);
        e.spent(1_500, Round::First); // the first chunk of 5 links is linked
        e.spent(1_000, Round::Second); // and settled: 5 × 200
        e.settled(5, 1_000);
        assert_eq!(e.per_link(), 200);
        // Done 2,500; round 1 has 1,500 left; round 2 has 5 links at 200 left.
        assert_eq!(e.total(), 2_500 + 1_500 + 5 * 200);
        // Had the account cost 200 a link throughout, that is the exact end.
        e.spent(1_500, Round::First);
        e.spent(1_000, Round::Second);
        e.settled(5, 1_000);
        assert_eq!(e.total(), e.done);
        assert_eq!(e.total(), 5_000);
    }

    #[test]
    fn linking_progress_moves_work_from_left_to_done_without_changing_the_total() {
        let mut e = started(3_000, 10, 500);
        let before = e.total();
        e.spent(700, Round::First);
        assert_eq!(e.total(), before);
        assert_eq!(e.first_left, 2_300);
    }

    #[test]
    fn a_chunk_being_settled_is_not_counted_twice() {
        let mut e = started(0, 10, 500);
        e.spent(300, Round::Second); // half of a chunk's reads: already done, not yet settled
        assert_eq!(e.total(), 10 * 500, "spent units come out of what is left");
        // A chunk that costs more than the estimate left never makes the total shrink below done.
        e.spent(10_000, Round::Second);
        assert_eq!(e.total(), e.done);
    }

    #[test]
    fn links_that_failed_to_link_lower_the_learnt_cost() {
        // Of a chunk of 4 planned links, 2 failed (no contact): settling the other 2 cost 800.
        let mut e = started(1_200, 8, 500);
        e.spent(1_200 / 2, Round::First);
        e.spent(800, Round::Second);
        e.settled(4, 800);
        assert_eq!(
            e.per_link(),
            200,
            "the cost per planned link, failures included"
        );
    }
}

//! The queue between the webhook receivers and the work loop: bounded, one entry per item.
//!
//! 2,000 signed hints for 2,000 items used to pile up without bound and be read in one pass
//! (issue #13 item 2). Here a hint for an item already queued merges into its entry (the wider
//! reach wins: a status hint and a message hint for one ticket read its whole group once), the
//! queue holds at most [`HINT_QUEUE_BOUND`] items, and a pass takes at most [`HINTS_PER_PASS`]
//! of them, oldest first, so a poll waiting behind them runs after one batch. A hint refused
//! because the queue is full is counted (`trengo_sync_hints_dropped_total`) and logged, and
//! its sender is answered 503: the polls read the change anyway, and GHL retries.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use tokio::sync::Notify;

use crate::sync::ItemKey;
use crate::sync::engine::Hint;

/// Items the queue holds at most (distinct tickets and contacts).
pub const HINT_QUEUE_BOUND: usize = 1_000;

/// Items one hint pass takes at most.
pub const HINTS_PER_PASS: usize = 50;

/// What became of a pushed hint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    /// A new entry.
    Queued,
    /// Merged into the entry already queued for its item.
    Merged,
    /// Refused: the queue holds [`HINT_QUEUE_BOUND`] other items.
    Full,
    /// Refused: the daemon is stopping.
    Closed,
}

#[derive(Debug, Default)]
struct Inner {
    order: VecDeque<ItemKey>,
    entries: HashMap<ItemKey, Hint>,
    closed: bool,
    dropped: u64,
}

/// The bounded, coalescing hint queue.
#[derive(Debug)]
pub struct HintQueue {
    bound: usize,
    // A std mutex: a few map operations, never held across an await.
    inner: Mutex<Inner>,
    ready: Notify,
}

/// The item a hint is about: one entry per item.
fn item_of(hint: &Hint) -> ItemKey {
    match hint {
        Hint::Ticket(id)
        | Hint::TicketStatus(id)
        | Hint::TicketLabels(id)
        | Hint::TicketMerged { merged: id, .. } => ItemKey::Ticket(*id),
        Hint::Contact(c)
        | Hint::ContactTags(c)
        | Hint::ContactNotes(c)
        | Hint::TaskCompleted { contact_id: c, .. } => ItemKey::Contact(c.clone()),
    }
}

/// Two hints for one item as one: equal ones stay, different ones read the whole group.
fn merge(old: &Hint, new: Hint) -> Hint {
    if *old == new {
        return new;
    }
    match (old, new) {
        // A merge names the surviving ticket and reads the whole group: it covers the rest.
        (merged @ Hint::TicketMerged { .. }, _) => merged.clone(),
        (_, merged @ Hint::TicketMerged { .. }) => merged,
        (_, Hint::Ticket(id) | Hint::TicketStatus(id) | Hint::TicketLabels(id)) => Hint::Ticket(id),
        (
            _,
            Hint::Contact(c)
            | Hint::ContactTags(c)
            | Hint::ContactNotes(c)
            | Hint::TaskCompleted { contact_id: c, .. },
        ) => Hint::Contact(c),
    }
}

impl Default for HintQueue {
    fn default() -> Self {
        Self::new(HINT_QUEUE_BOUND)
    }
}

impl HintQueue {
    /// A queue of at most `bound` items.
    pub fn new(bound: usize) -> Self {
        Self {
            bound: bound.max(1),
            inner: Mutex::new(Inner::default()),
            ready: Notify::new(),
        }
    }

    fn with<R>(&self, f: impl FnOnce(&mut Inner) -> R) -> R {
        f(&mut self.inner.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Queues `hint`, merging it into its item's entry when there is one.
    pub fn push(&self, hint: Hint) -> Pushed {
        let pushed = self.with(|q| {
            if q.closed {
                return Pushed::Closed;
            }
            let item = item_of(&hint);
            if let Some(old) = q.entries.get_mut(&item) {
                *old = merge(old, hint);
                return Pushed::Merged;
            }
            if q.order.len() >= self.bound {
                q.dropped += 1;
                // Every refusal is counted; the log says so on the first and every 100th.
                if q.dropped % 100 == 1 {
                    tracing::warn!(
                        bound = self.bound,
                        dropped = q.dropped,
                        %item,
                        "the webhook hint queue is full: hint refused (503); the next poll \
                         reads the change"
                    );
                }
                return Pushed::Full;
            }
            q.order.push_back(item.clone());
            q.entries.insert(item, hint);
            Pushed::Queued
        });
        match pushed {
            Pushed::Queued => self.ready.notify_one(),
            Pushed::Full => metrics::counter!("trengo_sync_hints_dropped_total").increment(1),
            Pushed::Merged | Pushed::Closed => {}
        }
        pushed
    }

    /// Takes at most `max` entries, oldest first, without waiting.
    pub fn take(&self, max: usize) -> Vec<Hint> {
        self.with(|q| {
            let n = max.min(q.order.len());
            q.order
                .drain(..n)
                .filter_map(|item| q.entries.remove(&item))
                .collect()
        })
    }

    /// Waits until something is queued, then takes at most `max` entries. Cancel-safe: nothing
    /// is taken unless it returns.
    pub async fn next_batch(&self, max: usize) -> Vec<Hint> {
        loop {
            let notified = self.ready.notified();
            let batch = self.take(max);
            if !batch.is_empty() {
                return batch;
            }
            notified.await;
        }
    }

    /// The most items it holds.
    pub fn bound(&self) -> usize {
        self.bound
    }

    /// Items queued now.
    pub fn len(&self) -> usize {
        self.with(|q| q.order.len())
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Hints refused because the queue was full, since the start.
    pub fn dropped(&self) -> u64 {
        self.with(|q| q.dropped)
    }

    /// Refuses every later hint (the daemon is stopping).
    pub fn close(&self) {
        self.with(|q| q.closed = true);
    }

    /// Whether [`HintQueue::close`] was called.
    pub fn is_closed(&self) -> bool {
        self.with(|q| q.closed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_for_one_item_share_one_entry_and_widen_to_the_whole_group() {
        let q = HintQueue::new(10);
        assert_eq!(q.push(Hint::TicketStatus(4)), Pushed::Queued);
        assert_eq!(q.push(Hint::TicketStatus(4)), Pushed::Merged);
        assert_eq!(q.push(Hint::TicketLabels(4)), Pushed::Merged);
        assert_eq!(q.push(Hint::ContactTags("c".into())), Pushed::Queued);
        assert_eq!(q.len(), 2);
        assert_eq!(q.take(10), [Hint::Ticket(4), Hint::ContactTags("c".into())]);
        assert!(q.is_empty());
    }

    #[test]
    fn past_the_bound_hints_are_refused_and_counted_and_a_pass_takes_a_batch() {
        let q = HintQueue::new(3);
        for c in ["a", "b", "c"] {
            assert_eq!(q.push(Hint::Contact(c.into())), Pushed::Queued);
        }
        assert_eq!(q.push(Hint::Contact("d".into())), Pushed::Full);
        assert_eq!(
            q.push(Hint::Contact("a".into())),
            Pushed::Merged,
            "still merges"
        );
        assert_eq!(q.dropped(), 1);
        assert_eq!(q.take(2).len(), 2);
        assert_eq!(q.len(), 1);
        q.close();
        assert_eq!(q.push(Hint::Contact("e".into())), Pushed::Closed);
    }

    #[tokio::test]
    async fn next_batch_waits_for_a_push() {
        let q = std::sync::Arc::new(HintQueue::new(5));
        let waiter = tokio::spawn({
            let q = q.clone();
            async move { q.next_batch(5).await }
        });
        tokio::task::yield_now().await;
        q.push(Hint::Ticket(1));
        assert_eq!(waiter.await.unwrap(), [Hint::Ticket(1)]);
    }
}

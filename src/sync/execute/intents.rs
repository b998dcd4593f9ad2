//! The write side of the journal: an intent opened before every remote create and update,
//! ended with the item (or, for a failed item, as far as its outcome is known). What each
//! kind holds and how an open one is settled after a crash are in [`journal`](super::journal)
//! and `settle.rs`.

use serde_json::Value;

use super::journal::Update;
use super::{Executor, ItemError};
use crate::store;
use crate::sync::model::LinkId;

/// What an intent is for: the kinds the executor opens before a write, and the one thing
/// crash settlement reads to know where to look (`settle.rs`). Stored as text; stores written
/// by earlier versions hold these names, so they must not change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntentKind {
    /// A GHL note copied from a Trengo message.
    GhlNote,
    /// A Trengo internal note copied from a GHL note.
    TrengoNote,
    /// A GHL task made for a Trengo ticket.
    Task,
    /// A Trengo ticket made for a GHL task.
    Ticket,
    /// A journalled update of a synced field ([`journal`](super::journal)).
    Update,
    /// A contact pair's field and context writes (`execute/pairs.rs`).
    PairUpdate,
    /// A welcome ticket opened for a contact paired through `contacts.tag`.
    Welcome,
}

impl IntentKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            IntentKind::GhlNote => "ghl-note",
            IntentKind::TrengoNote => "trengo-note",
            IntentKind::Task => "task",
            IntentKind::Ticket => "ticket",
            IntentKind::Update => "update",
            IntentKind::PairUpdate => "pair-update",
            IntentKind::Welcome => "welcome",
        }
    }

    /// Reads a stored name back; `None` for one this version does not know.
    pub fn from_stored(name: &str) -> Option<Self> {
        [
            IntentKind::GhlNote,
            IntentKind::TrengoNote,
            IntentKind::Task,
            IntentKind::Ticket,
            IntentKind::Update,
            IntentKind::PairUpdate,
            IntentKind::Welcome,
        ]
        .into_iter()
        .find(|k| k.as_str() == name)
    }
}

/// An update journalled by the item being applied.
pub(super) struct Journalled {
    /// Its intent key.
    pub key: String,
    /// What it writes.
    pub update: Update,
    /// Whether its write was answered with success.
    pub landed: bool,
}

impl Executor<'_> {
    /// Commits an intent of `kind` for `source` before its create; returns its key.
    pub(super) async fn open_intent(
        &self,
        kind: IntentKind,
        source: &str,
        link: Option<LinkId>,
        payload: Value,
    ) -> Result<String, ItemError> {
        let now = self.now();
        let key = format!("{}:{source}:{}", kind.as_str(), now.timestamp_micros());
        let k = key.clone();
        self.tx(move |c| {
            store::intents::open(c, &k, kind.as_str(), link, &payload, now).map(|_| ())
        })
        .await?;
        Ok(key)
    }

    /// Commits an update's intent before its write.
    pub(super) async fn journal(&self, update: Update) -> Result<Journalled, ItemError> {
        let (key, now) = (update.key(), self.now());
        let payload = serde_json::to_value(&update).map_err(|e| {
            ItemError::Blocked(format!("could not journal the update {update:?}: {e}"))
        })?;
        let (k, link) = (key.clone(), update.link.map(store::links::LinkId));
        self.tx(move |c| {
            store::intents::open(c, &k, IntentKind::Update.as_str(), link, &payload, now)
                .map(|_| ())
        })
        .await?;
        Ok(Journalled {
            key,
            update,
            landed: false,
        })
    }

    /// Ends the journal of an item that failed (not by a crash): the writes that landed move
    /// their bases, so a later edit is not mistaken for them; a write refused outright (a 4xx
    /// answer, or stopped before its call) is dropped; a write whose outcome is unknown (no
    /// answer, a 5xx) stays open for the next pass to settle by reading the written side.
    pub(super) async fn end_failed(&self, journal: Vec<Journalled>, error: &ItemError) {
        let refused = match error {
            ItemError::Api(e) => e.status().is_some_and(|s| (400..500).contains(&s)),
            ItemError::Blocked(_) => true,
            ItemError::Store(_) | ItemError::Crashed(_) => false,
        };
        let now = self.now();
        let ended = self
            .tx(move |c| {
                for j in &journal {
                    if j.landed {
                        if j.update.lands_alone() {
                            j.update.land(c, now)?;
                        }
                        store::intents::remove(c, &j.key)?;
                    } else if refused {
                        store::intents::remove(c, &j.key)?;
                    }
                }
                Ok(())
            })
            .await;
        if let Err(e) = ended {
            // The intents stay open; the next pass settles them by reading the remote side.
            tracing::warn!(error = %e, "could not end the journal of a failed item");
        }
    }
}

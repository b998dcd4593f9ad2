//! Detection, the pipeline's first stage: what changed since the cursors, and what entered
//! scope, as a [`Detected`]: the groups to read (and how far), the candidates, the prints and
//! cursors to record once the pass's writes are made, and what to do with the retry table.
//!
//! Every source ends here: the polls (`updated_at` / `dateUpdated` since the watermarks),
//! the safety sweep ([`sweep`]: listings that show what moves no watermark, and scope
//! discovery), webhooks' hints ([`hints`]) and the retries that are due. Detection reads the
//! APIs and the store and writes neither: what it learns that the store must keep (a retry
//! row to add or end, a merged ticket's link to move, a cursor) travels in [`Detected`] to
//! the executor, the pass's only writer.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use futures::StreamExt as _;

use super::engine::{
    BackfillTracker, EngineError, GHL_CURSOR, PassKind, SWEEP_CURSOR, TRENGO_BACKFILL,
    TRENGO_CURSOR, backfill::BackfillRun,
};
use super::execute::{PassFacts, refresh_labels};
use super::keys::BaseName;
use super::load::Reach;
use super::operation::ItemKey;
use super::settings::EngineSettings;
use crate::clock::SharedClock;
use crate::ghl::GhlClient;
use crate::store::{self, StoreError, StoreReader, links::Link};
use crate::trengo::{self, TicketFilters, TrengoClient};

pub mod hints;
pub mod sweep;

pub use hints::Hint;
pub(crate) use sweep::pace::Allowance;
pub use sweep::{Pace, Progress, SweepState, is_gone, notes_print};

/// What a pass found to do.
#[derive(Debug, Default)]
pub struct Detected {
    /// GHL contacts whose groups must be planned.
    pub contacts: BTreeSet<String>,
    /// Tickets read fresh in this pass.
    pub tickets: HashMap<i64, trengo::Ticket>,
    /// Tickets entering scope without a link.
    pub candidate_tickets: BTreeMap<i64, trengo::Ticket>,
    /// GHL contacts whose tasks may enter scope.
    pub candidate_contacts: BTreeSet<String>,
    /// Fingerprints seen, to record once their group is applied: ticket id → print.
    pub ticket_prints: HashMap<i64, String>,
    /// Fingerprints seen, to record once their group is applied: contact id → print.
    pub contact_prints: HashMap<String, String>,
    /// Cursors to advance once the pass's work is committed.
    pub cursors: Vec<(String, String)>,
    /// Expected ticket prints a listing matched, to replace with the listed print once the
    /// pass's work is committed: (link, expected, listed).
    pub print_refinements: Vec<(store::links::LinkId, String, String)>,
    /// Contacts of `contacts` that a webhook asked to read only in part; absent: the whole group.
    pub reach: HashMap<String, Reach>,
    /// Items whose reading failed (a group or a contact's tasks), with why: failures of the
    /// pass's items as much as a failed write is.
    pub failed: Vec<(ItemKey, String)>,
    /// Retry rows to add or end, in the order they were learnt (the executor writes them).
    pub retries: Vec<RetryChange>,
    /// Linked tickets Trengo merged into another, whose links follow the surviving ticket.
    pub merges: Vec<Merge>,
    /// GHL contacts whose contact pairs must be planned (`[contacts]`): changed contacts that
    /// are linked, paired or carry `contacts.tag`, and due pair retries.
    pub pair_contacts: BTreeSet<String>,
}

impl Detected {
    /// Asks for `contact`'s group to be planned, reading at least `reach` of it. Asked twice, the
    /// group is read as far as both need; anything asked without a hint reads it whole.
    pub fn want(&mut self, contact: &str, reach: Reach) {
        // A contact already asked for without a reach is read whole.
        let whole = self.contacts.contains(contact) && !self.reach.contains_key(contact);
        self.contacts.insert(contact.to_string());
        let joined = match self.reach.get(contact) {
            _ if whole => Reach::Whole,
            Some(had) => had.join(&reach),
            None => reach,
        };
        match joined {
            Reach::Whole => self.reach.remove(contact),
            narrower => self.reach.insert(contact.to_string(), narrower),
        };
    }

    /// An item that could not be read: reported, and retried when due.
    pub fn read_failed(&mut self, item: ItemKey, code: String, why: String) {
        self.retries.push(RetryChange::Failed {
            item: item.clone(),
            code,
        });
        self.failed.push((item, why));
    }
}

/// A change to the retry table that a stage learnt and the executor makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RetryChange {
    /// The item failed (a reason code, never remote text): retried when due.
    Failed {
        /// The item.
        item: ItemKey,
        /// Why, as a stored reason code.
        code: String,
    },
    /// The item was read or written since, or is gone: an earlier failure of it is over.
    Cleared(ItemKey),
}

/// A linked ticket that Trengo merged into another (`TICKET_MERGED`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Merge {
    /// The ticket merged away (and deleted); its link is active.
    pub merged: i64,
    /// The ticket that remains.
    pub surviving: i64,
}

/// Detection's view of the engine: the clients, the store (read only), the settings, the
/// clock, and the sweep's position, which lives across passes.
pub(crate) struct Detector<'a> {
    pub(crate) reader: &'a StoreReader,
    pub(crate) trengo: &'a TrengoClient,
    pub(crate) ghl: &'a GhlClient,
    pub(crate) settings: &'a EngineSettings,
    pub(crate) clock: &'a SharedClock,
    /// Where backfill progress goes (the daemon's `/status`).
    pub(crate) backfill: Option<&'a Arc<dyn BackfillTracker>>,
    /// Where a whole sweep reports its progress (`once` on a terminal).
    pub(crate) progress: Option<&'a Progress>,
    pub(crate) sweep: &'a tokio::sync::Mutex<SweepState>,
}

impl Detector<'_> {
    /// Everything a pass of `kind` looks at: the polls, the sweep, the hints, the reconcile's
    /// links, and the retries that are due. Returns what it found and, when the Trengo poll is
    /// a backfill, its run (reported to the tracker only when `report`).
    pub(crate) async fn detect(
        &self,
        kind: &PassKind,
        facts: &mut PassFacts,
        started: DateTime<Utc>,
        report: bool,
    ) -> Result<(Detected, Option<BackfillRun>), EngineError> {
        let mut work = Detected::default();
        // Whether this pass is the Trengo backfill (reported only when it will write).
        let mut backfill = None;
        match kind {
            PassKind::Poll => {
                backfill = self.poll_trengo(&mut work, started, report).await?;
                self.poll_ghl(&mut work, started).await?;
            }
            PassKind::TrengoPoll => {
                backfill = self.poll_trengo(&mut work, started, report).await?;
            }
            PassKind::GhlPoll => {
                self.poll_ghl(&mut work, started).await?;
            }
            PassKind::Cycle => {
                backfill = self.poll_trengo(&mut work, started, report).await?;
                self.poll_ghl(&mut work, started).await?;
                self.sweep(&mut work, facts, Pace::Whole).await?;
            }
            PassKind::Sweep => {
                let pace = Pace::Share {
                    fraction: self.settings.sweep_share,
                    ghl_per_hour: self.settings.ghl_sweep_per_hour,
                    cycle: self.settings.sweep_cycle,
                };
                self.sweep(&mut work, facts, pace).await?;
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
        Ok((work, backfill))
    }

    /// Lists the tickets updated since the watermark (all of them without one: a backfill,
    /// reported to the tracker when `report` and one is set).
    pub(crate) async fn poll_trengo(
        &self,
        work: &mut Detected,
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
        let backfill = match (self.backfill, watermark, report) {
            (Some(tracker), None, true) => {
                tracker.backfill_started(TRENGO_BACKFILL, self.clock.now());
                Some(BackfillRun::new(
                    Arc::clone(tracker),
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
        work: &mut Detected,
        seen: HashMap<i64, trengo::Ticket>,
    ) -> Result<(), EngineError> {
        if seen.is_empty() {
            return Ok(());
        }
        let links = links_for_tickets(self.reader, seen.keys().copied().collect()).await?;
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

    /// Lists the GHL contacts updated since the watermark: a linked one whose fingerprint
    /// differs is planned again; a tagged one (or any, with a title prefix) has its tasks
    /// looked at for scope.
    pub(crate) async fn poll_ghl(
        &self,
        work: &mut Detected,
        started: DateTime<Utc>,
    ) -> Result<(), EngineError> {
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
        let state = contacts_state(self.reader, seen.keys().cloned().collect()).await?;
        // With a title prefix, any contact may hold a task in scope: the contact list does
        // not show task titles, so its tasks must be read to know.
        let by_prefix = self.settings.scope.ghl_title_prefix.is_some();
        // The first GHL listing looks at every contact's tasks for the link rule, even one
        // whose print is already recorded: the Trengo backfill records the contacts it wrote
        // to (so this poll need not read their groups again), but it never looked at their
        // other tasks, and a tagged task would otherwise wait until the contact changes.
        let first = cursor.is_none();
        // Contact pairs (`[contacts]`): a changed contact that is paired, or carries the pair
        // tag, has its pairs planned too.
        let pair_tag = self.settings.pairs.as_ref().and_then(|p| p.tag.clone());
        let paired: BTreeSet<String> = if self.settings.pairs.is_some() {
            let ids: Vec<String> = seen.keys().cloned().collect();
            self.reader
                .call(move |s| {
                    let mut out = BTreeSet::new();
                    for id in ids {
                        if !store::pairs::of_ghl(s.conn(), &id)?.is_empty() {
                            out.insert(id);
                        }
                    }
                    Ok(out)
                })
                .await?
        } else {
            BTreeSet::new()
        };
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
            if self.settings.pairs.is_some()
                && !unchanged
                && (linked
                    || paired.contains(&id)
                    || pair_tag.as_ref().is_some_and(|t| view.tags.contains(t)))
            {
                work.pair_contacts.insert(id.clone());
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

    /// A sweep pass (see `detect/sweep.rs`): what the listings show goes through the poll's rules,
    /// the rest is read again as a webhook's hint would be.
    pub(crate) async fn sweep(
        &self,
        work: &mut Detected,
        facts: &mut PassFacts,
        pace: Pace,
    ) -> Result<(), EngineError> {
        // The link label may have been made since the labels were read: its listing needs its id.
        if let Some(label) = &self.settings.scope.trengo_label
            && !facts.labels.contains_key(label)
        {
            refresh_labels(self.trengo, &mut facts.labels).await?;
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

    /// The items whose retry is due, read again as a webhook's hint would be.
    pub(crate) async fn due_retries(&self, work: &mut Detected) -> Result<(), EngineError> {
        let now = self.clock.now();
        let due = self
            .reader
            .call(move |s| store::retries::due(s.conn(), now))
            .await?;
        for retry in due {
            match ItemKey::from_stored(&retry.item) {
                Some(ItemKey::Contact(id)) => work.want(&id, Reach::Whole),
                Some(ItemKey::Ticket(id)) => self.hints(work, &[Hint::Ticket(id)]).await?,
                Some(ItemKey::Task { contact, .. } | ItemKey::Tasks(contact)) => {
                    work.candidate_contacts.insert(contact);
                }
                Some(ItemKey::Pair(contact)) => {
                    work.pair_contacts.insert(contact);
                }
                // Written by another version, or damaged: `status` shows it, nothing reads it.
                None => {
                    tracing::warn!(item = %retry.item, "a retry of an unknown kind is left alone")
                }
            }
        }
        Ok(())
    }
}

/// The links of some tickets, with their recorded fingerprints.
async fn links_for_tickets(
    reader: &StoreReader,
    ids: Vec<i64>,
) -> Result<HashMap<i64, (Link, Option<String>)>, StoreError> {
    reader
        .call(move |s| {
            let mut out = HashMap::new();
            for id in ids {
                if let Some(link) = store::links::by_ticket(s.conn(), id)? {
                    let seen = store::bases::get(s.conn(), link.id, BaseName::TrengoSeen)?
                        .and_then(|b| b.value.as_str().map(str::to_string));
                    out.insert(id, (link, seen));
                }
            }
            Ok(out)
        })
        .await
}

/// For some contacts: whether they have active links, and their recorded fingerprint.
async fn contacts_state(
    reader: &StoreReader,
    ids: Vec<String>,
) -> Result<HashMap<String, (bool, Option<String>)>, StoreError> {
    reader
        .call(move |s| {
            let mut out = HashMap::new();
            for id in ids {
                let linked = !store::links::by_contact(s.conn(), &id)?.is_empty();
                let seen = store::bases::get_contact(s.conn(), &id, BaseName::GhlSeen)?
                    .and_then(|b| b.value.as_str().map(str::to_string));
                out.insert(id, (linked, seen));
            }
            Ok(out)
        })
        .await
}

//! What a pass records beside its items' writes: what it saw (fingerprints, the print of a
//! contact's notes, each link's message position), where its watermarks stand (cursors), its
//! failed and held items (the retry table), the brake's ledger entry, the identity a database
//! is bound to, and a merged ticket's link following the surviving ticket.
//!
//! The engine decides when each is recorded; the store writes are here, so the executor's
//! module stays the only writer of a pass. Detection and loading read through
//! [`StoreReader`](crate::store::StoreReader), which refuses writes.

use std::collections::{BTreeSet, HashMap, HashSet};

use serde_json::json;

use crate::clock::SharedClock;
use crate::store::{self, StoreError, StoreHandle, identity::Identity};
use crate::sync::engine::notes_print;
use crate::sync::keys::BaseName;
use crate::sync::load::LoadedGroup;
use crate::sync::model::LinkId;
use crate::sync::operation::{BrakeReport, ItemKey};
use crate::sync::settings::EngineSettings;

/// Records a pass's bookkeeping in the store. Cheap to build whenever it is needed.
pub struct Recorder<'a> {
    /// The store written to.
    pub store: &'a StoreHandle,
    /// The time each record carries.
    pub clock: &'a SharedClock,
    /// The retry policy of failed items.
    pub settings: &'a EngineSettings,
}

impl Recorder<'_> {
    /// Records a failure of `key`: it is retried with backoff, and parked after too many.
    pub async fn fail(&self, key: &ItemKey, reason: &str) -> Result<(), StoreError> {
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
            .await
    }

    /// Ends an earlier failure of `key`, if any: it was read or written since.
    pub async fn clear(&self, key: &ItemKey) -> Result<(), StoreError> {
        let item = key.stored();
        self.store
            .call(move |s| store::retries::clear(s.conn(), &item).map(|_| ()))
            .await
    }

    /// Records an item a pause held back, with why: `status` shows it, `resume` lets it cross.
    pub async fn hold(&self, key: &ItemKey, why: &str) -> Result<(), StoreError> {
        let (k, w, now) = (key.stored(), why.to_string(), self.clock.now());
        self.store
            .call(move |s| store::retries::hold(s.conn(), &k, &w, now))
            .await
    }

    /// Records the brake that stopped a pass in the ledger, and logs it.
    pub async fn brake(&self, brake: &BrakeReport) -> Result<(), StoreError> {
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
            .await
    }

    /// Binds the database to `identity` on first use; refuses another one (sync-model.md §4.7).
    pub async fn bind_identity(&self, identity: &Identity) -> Result<(), StoreError> {
        let (given, now) = (identity.clone(), self.clock.now());
        self.store
            .call(move |s| {
                let tx = s.transaction()?;
                store::identity::bind(&tx, &given, now)?;
                tx.commit()?;
                Ok(())
            })
            .await
    }

    /// Moves the active link of the `merged` ticket to the `surviving` one (Trengo's
    /// `TICKET_MERGED`), with a ledger line. Returns the link's contact and whether it moved;
    /// `None` when the merged ticket has no active link.
    pub async fn follow_merge(
        &self,
        merged: i64,
        surviving: i64,
    ) -> Result<Option<(String, bool)>, StoreError> {
        let now = self.clock.now();
        self.store
            .call(move |s| {
                let Some(link) = store::links::by_ticket(s.conn(), merged)? else {
                    return Ok(None);
                };
                if link.state != store::links::LinkState::Active {
                    return Ok(None);
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
                Ok(Some((link.ghl_contact_id, moved)))
            })
            .await
    }

    /// Commits the pass's watermarks (`cursors`: stream → value) and replaces each expected
    /// ticket print a listing showed as it was expected with the print listed (`refinements`:
    /// link, expected, listed), where the pass recorded no newer print of its own.
    pub async fn advance(
        &self,
        cursors: Vec<(String, String)>,
        refinements: Vec<(LinkId, String, String)>,
    ) -> Result<(), StoreError> {
        if cursors.is_empty() && refinements.is_empty() {
            return Ok(());
        }
        let now = self.clock.now();
        self.store
            .call(move |s| {
                let tx = s.transaction()?;
                for (stream, value) in &cursors {
                    store::cursors::put(&tx, stream, value, now)?;
                }
                for (link, expected, listed) in &refinements {
                    store::bases::refine(
                        &tx,
                        *link,
                        BaseName::TrengoSeen,
                        &json!(expected),
                        &json!(listed),
                    )?;
                }
                tx.commit()?;
                Ok(())
            })
            .await
    }

    /// Records fingerprints and message positions of the groups applied without failure, so
    /// the next poll skips them until they change again, and forgets their earlier failures:
    /// a group read and applied whole is in sync, even when this pass had nothing to write
    /// for it (else a failed read would stay in the retry table, "stuck", forever).
    /// `ticket_prints` and `contact_prints` are what was seen (ticket id → print, contact id
    /// → print); the recorded ones are taken out, and contacts left without a group (tagged
    /// candidates, once examined) are recorded too. `failed` holds the contacts not recorded.
    pub async fn seen(
        &self,
        ticket_prints: &mut HashMap<i64, String>,
        contact_prints: &mut HashMap<String, String>,
        loaded: &[LoadedGroup],
        failed: &BTreeSet<String>,
    ) -> Result<(), StoreError> {
        let mut link_bases: Vec<(LinkId, BaseName, serde_json::Value)> = Vec::new();
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
                link_bases.push((*link, BaseName::NotesUpto, json!(upto)));
            }
            for l in &g.group.links {
                if let Some(print) = ticket_prints.remove(&l.ticket.id) {
                    link_bases.push((l.link, BaseName::TrengoSeen, json!(print)));
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
                    let current = store::bases::get(&tx, *link, *field)?.map(|b| b.value);
                    if current.as_ref() != Some(value) {
                        store::bases::put(&tx, *link, *field, value, now)?;
                    }
                }
                for (contact, value) in &contact_bases {
                    let current = store::bases::get_contact(&tx, contact, BaseName::GhlSeen)?
                        .map(|b| b.value);
                    if current.as_ref() != Some(value) {
                        store::bases::put_contact(&tx, contact, BaseName::GhlSeen, value, now)?;
                    }
                }
                for (contact, links, ids) in &notes_read {
                    let mut mapped = HashSet::new();
                    for link in links {
                        for m in store::comments::for_link(&tx, *link)? {
                            mapped.insert(m.ghl_note_id);
                        }
                    }
                    let print = json!(notes_print(ids.iter().map(String::as_str), &mapped));
                    let current = store::bases::get_contact(&tx, contact, BaseName::GhlNotesSeen)?
                        .map(|b| b.value);
                    if current.as_ref() != Some(&print) {
                        store::bases::put_contact(
                            &tx,
                            contact,
                            BaseName::GhlNotesSeen,
                            &print,
                            now,
                        )?;
                    }
                }
                tx.commit()?;
                Ok(())
            })
            .await
    }
}

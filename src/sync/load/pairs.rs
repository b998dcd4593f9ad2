//! Loading contact pairs (`sync/pairs.rs`): what one GHL contact's pairs need for planning,
//! read fresh (the GHL contact with `GET`, never from the lagging search index), and the
//! Trengo-side sweep's cheap look at a pair. Reads only, like the rest of loading.

use std::collections::{BTreeMap, BTreeSet};

use chrono_tz::Tz;

use super::Loader;
use crate::api::ApiError;
use crate::ghl;
use crate::store::{self, StoreError, links::Link, pairs::Pair};
use crate::sync::keys::BaseName;
use crate::sync::pairs::task::TaskView;
use crate::sync::pairs::{FieldMap, GhlContext, PairRead, TrengoSlot, convert};
use crate::trengo;

/// A read of pairs failed.
#[derive(Debug, thiserror::Error)]
pub enum PairReadError {
    /// An API failed.
    #[error(transparent)]
    Api(#[from] ApiError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One GHL contact's side of its pairs, as read.
#[derive(Debug, Clone)]
pub struct ContactSide {
    /// The GHL contact (`GET /contacts/{id}`).
    pub contact: ghl::Contact,
    /// Its active links.
    pub links: Vec<Link>,
    /// Its pairs as stored.
    pub pairs: Vec<Pair>,
    /// Trengo contacts its links name that have no pair yet.
    pub unpaired: BTreeSet<i64>,
    /// Tasks and appointments, when the map shows them or the task fields need them.
    pub extra: GhlContext,
}

impl Loader<'_> {
    /// Reads a GHL contact's side of its pairs: the contact, its active links and pairs, the
    /// Trengo contacts of links without a ticket contact on record (their tickets are read),
    /// and the tasks and appointments the map's context needs.
    pub(crate) async fn contact_side(
        &self,
        map: &FieldMap,
        contact_id: &str,
        zone: Option<Tz>,
    ) -> Result<ContactSide, PairReadError> {
        let contact = self.ghl.contact(contact_id).await?;
        let id = contact_id.to_string();
        let (links, pairs) = self
            .reader
            .call(move |s| {
                let links: Vec<Link> = store::links::by_contact(s.conn(), &id)?
                    .into_iter()
                    .filter(|l| l.state == store::links::LinkState::Active && l.gone.is_none())
                    .collect();
                Ok((links, store::pairs::of_ghl(s.conn(), &id)?))
            })
            .await?;
        let paired: BTreeSet<i64> = pairs.iter().map(|p| p.trengo_contact_id).collect();
        let mut unpaired = BTreeSet::new();
        for link in &links {
            let person = match link.trengo_contact_id {
                Some(p) => Some(p),
                // Links made before the ticket's contact was kept: ask the ticket.
                None => self.trengo.ticket(link.ticket_id).await?.contact_id,
            };
            if let Some(p) = person.filter(|p| !paired.contains(p)) {
                unpaired.insert(p);
            }
        }
        let task_fields = map.task.due.is_some() || map.task.title.is_some();
        let tasks = if map.context.open_tasks.is_some() || (task_fields && !links.is_empty()) {
            Some(self.ghl.tasks(contact_id).await?)
        } else {
            None
        };
        let appointments = match (map.context.next_appointment, zone) {
            (Some(_), Some(zone)) => Some(self.ghl.contact_appointments(contact_id, zone).await?),
            _ => None,
        };
        Ok(ContactSide {
            contact,
            links,
            pairs,
            unpaired,
            extra: GhlContext {
                appointments,
                tasks,
                zone,
            },
        })
    }

    /// The Trengo contact of a GHL contact found by identifier: its e-mail, then its phone,
    /// matched exactly (`GET /contacts?term=` also matches names and parts, trengo-api.md §6).
    pub(crate) async fn trengo_contact_of(
        &self,
        contact: &ghl::Contact,
    ) -> Result<Option<trengo::Contact>, PairReadError> {
        use futures::StreamExt as _;
        let norm_phone = |p: &str| -> String { p.chars().filter(char::is_ascii_digit).collect() };
        for (term, is_email) in [
            (contact.email.as_deref(), true),
            (contact.phone.as_deref(), false),
        ] {
            let Some(term) = term.map(str::trim).filter(|t| !t.is_empty()) else {
                continue;
            };
            let mut found = std::pin::pin!(self.trengo.search_contacts(term));
            while let Some(c) = found.next().await {
                let c = c?;
                let hit = if is_email {
                    [c.email.as_deref(), c.identifier.as_deref()]
                        .into_iter()
                        .flatten()
                        .any(|e| e.trim().eq_ignore_ascii_case(term))
                } else {
                    let want = norm_phone(term);
                    [c.phone.as_deref(), c.identifier.as_deref()]
                        .into_iter()
                        .flatten()
                        .any(|p| !want.is_empty() && norm_phone(p) == want)
                };
                if hit {
                    return Ok(Some(c));
                }
            }
        }
        Ok(None)
    }

    /// Reads a pair's Trengo side and bases: the contact, its profile when the map has profile
    /// fields, and its linked tickets when the map has ticket fields.
    pub(crate) async fn pair_read(
        &self,
        map: &FieldMap,
        pair: Pair,
        links: &[Link],
    ) -> Result<PairRead, PairReadError> {
        let trengo = self.trengo.contact(pair.trengo_contact_id).await?;
        let profile = match trengo.profile_ids().first() {
            Some(id) if map.needs_profile() => Some(self.trengo.profile(*id).await?),
            _ => None,
        };
        let mut tickets = Vec::new();
        if map
            .fields
            .iter()
            .any(|f| matches!(f.trengo, TrengoSlot::Ticket(_)))
        {
            for link in links.iter().filter(|l| {
                l.trengo_contact_id
                    .is_none_or(|c| c == pair.trengo_contact_id)
            }) {
                let t = self.trengo.ticket(link.ticket_id).await?;
                if t.contact_id.is_none_or(|c| c == pair.trengo_contact_id) {
                    tickets.push(t);
                }
            }
            tickets.sort_by_key(|t| std::cmp::Reverse(t.updated_at));
        }
        let id = pair.id;
        let bases = self
            .reader
            .call(move |s| store::pairs::bases(s.conn(), id))
            .await?;
        Ok(PairRead {
            pair,
            trengo,
            profile,
            tickets,
            bases,
        })
    }

    /// The task details of a contact's links (`[contacts.task]`): each linked ticket's fields,
    /// its task, and the due base.
    pub(crate) async fn task_views(
        &self,
        map: &FieldMap,
        side: &ContactSide,
    ) -> Result<Vec<TaskView>, PairReadError> {
        let (Some(tasks), true) = (
            side.extra.tasks.as_ref(),
            map.task.due.is_some() || map.task.title.is_some(),
        ) else {
            return Ok(Vec::new());
        };
        let ids: Vec<_> = side.links.iter().map(|l| l.id).collect();
        let bases: BTreeMap<_, _> = self
            .reader
            .call(move |s| {
                let mut out = BTreeMap::new();
                for id in ids {
                    if let Some(b) = store::bases::get(s.conn(), id, BaseName::TaskDue)? {
                        out.insert(id, b.value.as_str().unwrap_or_default().to_string());
                    }
                }
                Ok(out)
            })
            .await?;
        let mut views = Vec::new();
        for link in &side.links {
            let Some(task) = tasks.iter().find(|t| t.id == link.task_id) else {
                continue;
            };
            let ticket = self.trengo.ticket(link.ticket_id).await?;
            let field = |f: Option<i64>| {
                f.map(|id| ticket.custom_field(id).unwrap_or_default().to_string())
            };
            views.push(TaskView {
                link: link.id,
                ticket_id: link.ticket_id,
                contact_id: side.contact.id.clone(),
                task_id: task.id.clone(),
                ticket_due: field(map.task.due),
                ticket_title: field(map.task.title),
                task_due: task.due_date,
                task_title: task.title.clone().unwrap_or_default(),
                base_due: bases.get(&link.id).cloned(),
            });
        }
        Ok(views)
    }

    /// The Trengo-side sweep's look at pairs: each pair's Trengo contact read once; the GHL
    /// contacts whose pair shows a Trengo value (of a field that flows to GHL) other than its
    /// base, to plan in full. Returns those contacts and the pairs read.
    pub(crate) async fn sweep_pairs(
        &self,
        map: &FieldMap,
        pairs: Vec<Pair>,
    ) -> Result<(BTreeSet<String>, Vec<i64>), PairReadError> {
        let flowing: Vec<_> = map
            .fields
            .iter()
            .filter(|m| m.direction.writes_ghl())
            .collect();
        let mut changed = BTreeSet::new();
        let mut read = Vec::new();
        for pair in pairs {
            if flowing.is_empty() {
                break;
            }
            let id = pair.id;
            let ghl_id = pair.ghl_contact_id.clone();
            let links = {
                let g = ghl_id.clone();
                self.reader
                    .call(move |s| store::links::by_contact(s.conn(), &g))
                    .await?
            };
            let state = match self.pair_read(map, pair, &links).await {
                Ok(s) => s,
                // A contact deleted in Trengo: its pair has nothing to read; planning the
                // GHL contact reports it as the item's failure.
                Err(PairReadError::Api(e)) if e.status() == Some(404) => {
                    changed.insert(ghl_id);
                    read.push(id);
                    continue;
                }
                Err(e) => return Err(e),
            };
            read.push(id);
            let moved = flowing.iter().any(|m| {
                let now =
                    convert::from_text(&m.kind, &crate::sync::pairs::trengo_raw(&state, &m.trengo));
                let base = state
                    .bases
                    .get(&m.name)
                    .and_then(|b| serde_json::from_value::<convert::Value>(b.clone()).ok());
                match (now, base) {
                    (Ok(now), Some(base)) => now != base,
                    // Unreadable, or never synced: plan it (the plan says what is wrong).
                    _ => true,
                }
            });
            if moved {
                changed.insert(ghl_id);
            }
        }
        Ok((changed, read))
    }
}

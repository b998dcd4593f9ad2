//! Loading, the pipeline's second stage: the full current state of every contact group that
//! detection named (`Loader::groups`), from both APIs and the store, as the planner's views,
//! and the items entering scope (`Loader::candidates`).
//!
//! Loading a group is what costs calls (the contact, its tasks and notes, each linked ticket
//! and its new messages), so it is done only for the groups detection found changed, and only
//! as far as their [`Reach`] says. GHL state is always read with `GET`, never from the search
//! index, which lags writes and would make our own writes look undone. Like detection, loading
//! writes nothing: a group it could not read, or a contact left without a link, is a
//! [`RetryChange`] in its answer, for the executor.

use std::collections::{BTreeSet, HashMap};

use futures::StreamExt as _;
use serde_json::Value;

use super::detect::RetryChange;
use super::engine::backfill::{BackfillRun, Round};
mod candidates;
pub mod pairs;

use super::keys::BaseName;
use super::model::{ContactGroup, LinkBases, LinkId, LinkView, TaskView, TicketStatus, TicketView};
use super::operation::ItemKey;
use super::operation::Side;
use super::policy::Field;
use super::reason::ReasonCode as _;
use super::settings::EngineSettings;
use super::views::{self, Directory};
use crate::api::ApiError;
use crate::clock::SharedClock;
use crate::ghl::GhlClient;
use crate::store::{self, StoreError, StoreReader, links::Link};
use crate::trengo::{self, TrengoClient};

/// A read failed.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// An API failed.
    #[error(transparent)]
    Api(#[from] ApiError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A linked ticket's answer could not be synced (an unknown status); the whole group
    /// waits, since a group planned without one of its links would read that link's labels
    /// as removed.
    #[error("ticket {ticket}: {reason}")]
    Unreadable {
        /// The ticket.
        ticket: i64,
        /// Why.
        reason: views::Unreadable,
    },
}

/// How much of a contact group a webhook's change needs read (sync-model.md §4.10: a hint
/// names one item; the planner's merge of the fields it touches decides what must be read).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reach {
    /// One link's status and assignee (a task completed, a ticket closed, reopened or assigned):
    /// the contact and its tasks, that link's ticket; no other ticket, no message, no note. The
    /// tag merge needs every linked ticket, so the engine plans no tags for such a group.
    Link(i64),
    /// The contact's tags (a tag or label moved): the contact, its tasks and every linked ticket
    /// (the Trengo side of a tag is the union over all of them), but no message and no note.
    Tags,
    /// Everything: notes too.
    Whole,
}

impl Reach {
    /// The least reach that covers both.
    pub fn join(&self, other: &Reach) -> Reach {
        match (self, other) {
            (Reach::Whole, _) | (_, Reach::Whole) => Reach::Whole,
            (Reach::Link(a), Reach::Link(b)) if a == b => Reach::Link(*a),
            // Two links' fields, or a link's and the tags: every ticket read covers both.
            _ => Reach::Tags,
        }
    }

    /// Whether notes are read (the contact's GHL notes and the tickets' messages).
    fn reads_notes(&self) -> bool {
        matches!(self, Reach::Whole)
    }
}

/// One contact group as loaded, with what must be recorded when it is applied.
#[derive(Debug)]
pub struct LoadedGroup {
    /// The planner's view.
    pub group: ContactGroup,
    /// Highest message id read per link.
    pub notes_upto: Vec<(LinkId, i64)>,
    /// The contact's fingerprint as read (see [`views::contact_fingerprint`]).
    pub contact_print: String,
    /// The ids of the contact's GHL notes, when they were read (a whole group).
    pub ghl_notes: Option<Vec<String>>,
}

/// Contact groups read at the same time: each read waits mostly on one API's budget (GHL for
/// the contact, its tasks and notes; Trengo for each ticket and its messages), so reading
/// groups side by side keeps both budgets busy.
const GROUP_READS_AT_ONCE: usize = 4;

/// Groups read for a plan.
pub(crate) struct GroupReads {
    /// The planner's views.
    pub groups: Vec<ContactGroup>,
    /// The same, with what to record once applied.
    pub loaded: Vec<LoadedGroup>,
    /// Tickets read on the way, for the executor.
    pub tickets: HashMap<i64, trengo::Ticket>,
    /// Backfill units the reads cost.
    pub cost: u64,
    /// Contacts whose group could not be read, with why.
    pub failed: Vec<(String, String)>,
    /// Retry rows to add (a group that could not be read) or end (a contact left without an
    /// active link), for the executor.
    pub retries: Vec<RetryChange>,
}

/// The loading stage's view of the engine: the clients, the store (read only), the settings
/// and the clock. It reads; what it learns for the store travels in its answers.
#[derive(Clone, Copy)]
pub(crate) struct Loader<'a> {
    pub(crate) reader: &'a StoreReader,
    pub(crate) trengo: &'a TrengoClient,
    pub(crate) ghl: &'a GhlClient,
    pub(crate) settings: &'a EngineSettings,
    pub(crate) clock: &'a SharedClock,
}

impl Loader<'_> {
    /// Loads one contact group (the store's links, bases and maps, and both sides' current
    /// state), as much of it as `reach` says (see [`Reach`]). A [`Reach::Link`] whose
    /// link leaves scope is read whole instead: ending a link takes its labels out of the contact's
    /// tag base, which needs every ticket of the group.
    pub async fn group(
        &self,
        directory: &Directory,
        contact_id: &str,
        fresh: &HashMap<i64, trengo::Ticket>,
        read_tickets: &mut HashMap<i64, trengo::Ticket>,
        reach: &Reach,
    ) -> Result<Option<LoadedGroup>, ReadError> {
        let Loader {
            reader,
            trengo,
            ghl,
            settings,
            ..
        } = *self;
        let cid = contact_id.to_string();
        let (links, tag_base) = reader
            .call(move |s| {
                let c = s.conn();
                let mut out = Vec::new();
                for link in store::links::by_contact(c, &cid)? {
                    let bases = store::bases::for_link(c, link.id)?;
                    let comments = store::comments::for_link(c, link.id)?
                        .into_iter()
                        .map(|m| (m.trengo_message_id, m.ghl_note_id))
                        .collect();
                    // Indexed lookups per field, not a scan of every held conflict per link.
                    let mut held = Vec::new();
                    for field in Field::ALL {
                        if store::conflicts::get(c, link.id, &field.to_string())?.is_some() {
                            held.push(field);
                        }
                    }
                    out.push(StoredLink {
                        link,
                        bases,
                        comments,
                        held,
                    });
                }
                let tags = store::bases::get_contact(c, &cid, BaseName::Tags)?.map(|b| b.value);
                Ok((out, tags))
            })
            .await?;
        if links.is_empty() {
            return Ok(None);
        }
        let (all_links, mut links) = (links.len(), links);
        if let Reach::Link(ticket) = reach {
            links.retain(|s| s.link.ticket_id == *ticket);
        }
        let partial = links.len() < all_links;
        let contact = match ghl.contact(contact_id).await {
            Ok(contact) => contact,
            // The contact was deleted (`ContactDelete`), or the token no longer sees it: every
            // link of it ends as gone; nothing is written to either side.
            Err(e) if crate::sync::engine::is_gone(&e) => {
                let link_views = links
                    .into_iter()
                    .map(|stored| gone_view(stored, contact_id, Side::Ghl))
                    .collect();
                return Ok(Some(LoadedGroup {
                    group: ContactGroup {
                        contact: super::model::ContactView {
                            id: contact_id.to_string(),
                            tags: BTreeSet::new(),
                            updated_at: None,
                            notes: Vec::new(),
                        },
                        tag_base: tag_base.map(|v| tag_set(&v)),
                        links: link_views,
                        partial,
                    },
                    notes_upto: Vec::new(),
                    contact_print: String::new(),
                    ghl_notes: None,
                }));
            }
            Err(e) => return Err(e.into()),
        };
        let tasks = ghl.tasks(contact_id).await?;
        // Without notes read, the planner sees none on either side and plans no comment.
        let notes = if reach.reads_notes() {
            ghl.notes(contact_id).await?
        } else {
            Vec::new()
        };
        let contact_view = views::contact(&contact, &notes);
        let mut link_views = Vec::new();
        let mut notes_upto = Vec::new();
        for stored in links {
            let link = &stored.link;
            let base = |name: BaseName| {
                stored
                    .bases
                    .iter()
                    .find(|b| b.is(name))
                    .map(|b| b.value.clone())
            };
            let ticket = match fresh.get(&link.ticket_id) {
                Some(t) => Some(t.clone()),
                None => match trengo.ticket(link.ticket_id).await {
                    Ok(t) => Some(t),
                    Err(e) if crate::sync::engine::is_gone(&e) => None,
                    Err(e) => return Err(e.into()),
                },
            };
            let task = tasks.iter().find(|t| t.id == link.task_id);
            let lid = link.id;
            let view = match (ticket, task) {
                (Some(ticket), Some(task)) => {
                    let notes = if reach.reads_notes() {
                        let upto = base(BaseName::NotesUpto).and_then(|v| v.as_i64());
                        let (notes, highest) = new_notes(trengo, ticket.id, upto).await?;
                        if let Some(h) = highest {
                            notes_upto.push((lid, h));
                        }
                        notes
                    } else {
                        // Unread messages stay unhandled: `notes_upto` does not move past them.
                        Vec::new()
                    };
                    let ticket_view =
                        views::ticket(&ticket, notes, directory).map_err(|reason| {
                            ReadError::Unreadable {
                                ticket: ticket.id,
                                reason,
                            }
                        })?;
                    let ticket_matches = settings.scope.ticket_in_scope(
                        &ticket_view.labels,
                        ticket.channel_id(),
                        ticket.team_id,
                    );
                    let task_view = views::task(task, contact_id, directory);
                    let task_matches = settings
                        .scope
                        .task_in_scope(&contact_view.tags, &task_view.title);
                    read_tickets.insert(ticket.id, ticket);
                    LinkView {
                        link: lid,
                        created_at: link.created_at,
                        in_scope: settings.scope.link_in_scope(
                            link.origin,
                            ticket_matches,
                            task_matches,
                        ),
                        ticket: ticket_view,
                        task: task_view,
                        bases: LinkBases {
                            status: base(BaseName::Status).and_then(|v| v.as_bool()),
                            assignee: base(BaseName::Assignee)
                                .map(|v| v.as_str().map(str::to_string)),
                        },
                        comments: stored.comments,
                        held: stored.held,
                        gone: None,
                    }
                }
                // The ticket or the task is gone (deleted, merged, not visible): the link can no
                // longer sync. It ends as gone; nothing is deleted on the other side.
                (ticket, _) => {
                    let side = if ticket.is_none() {
                        Side::Trengo
                    } else {
                        Side::Ghl
                    };
                    gone_view(stored, contact_id, side)
                }
            };
            link_views.push(view);
        }
        if partial && link_views.iter().any(|l| !l.in_scope) {
            return Box::pin(self.group(directory, contact_id, fresh, read_tickets, &Reach::Whole))
                .await;
        }
        Ok(Some(LoadedGroup {
            group: ContactGroup {
                contact: contact_view,
                tag_base: tag_base.map(|v| tag_set(&v)),
                links: link_views,
                partial,
            },
            notes_upto,
            contact_print: views::contact_fingerprint(&contact),
            ghl_notes: reach
                .reads_notes()
                .then(|| notes.iter().map(|n| n.id.clone()).collect()),
        }))
    }

    /// Reads some contacts' groups, `GROUP_READS_AT_ONCE` at a time, in order (so a plan is the
    /// same as with one read at a time). A group that cannot be read goes to the retry table.
    pub async fn groups(
        &self,
        contacts: &BTreeSet<String>,
        directory: &Directory,
        fresh: &HashMap<i64, trengo::Ticket>,
        reaches: &HashMap<String, Reach>,
        backfill: Option<&BackfillRun>,
        round: Round,
    ) -> GroupReads {
        // The futures are made first: a stream's `map` with a borrowing async closure trips
        // the compiler's `Send` check of the daemon's spawned task.
        let reads: Vec<_> = contacts
            .iter()
            .map(|contact| async move {
                let mut read_tickets = HashMap::new();
                let group = self
                    .group(
                        directory,
                        contact,
                        fresh,
                        &mut read_tickets,
                        reaches.get(contact).unwrap_or(&Reach::Whole),
                    )
                    .await;
                let mut cost = 0;
                if let (Some(b), Ok(Some(g))) = (backfill, &group) {
                    cost = b.load_cost(g.group.links.len());
                    b.advanced(cost, round, self.clock.now());
                }
                (contact, group, read_tickets, cost)
            })
            .collect();
        let reads: Vec<_> = futures::stream::iter(reads)
            .buffered(GROUP_READS_AT_ONCE)
            .collect()
            .await;
        let mut out = GroupReads {
            groups: Vec::new(),
            loaded: Vec::new(),
            tickets: HashMap::new(),
            cost: 0,
            failed: Vec::new(),
            retries: Vec::new(),
        };
        for (contact, group, read_tickets, cost) in reads {
            out.tickets.extend(read_tickets);
            out.cost += cost;
            match group {
                Ok(Some(g)) => {
                    out.groups.push(g.group.clone());
                    out.loaded.push(g);
                }
                Ok(None) => {
                    // No active link is left on the contact: nothing of it is failing any
                    // more, and a retry row kept would stay "stuck" forever.
                    out.retries
                        .push(RetryChange::Cleared(ItemKey::Contact(contact.clone())));
                }
                Err(e) => {
                    out.retries.push(RetryChange::Failed {
                        item: ItemKey::Contact(contact.clone()),
                        code: e.reason_code(),
                    });
                    out.failed.push((contact.clone(), e.to_string()));
                }
            }
        }
        out
    }
}

/// Reads a ticket's messages newest first, down to (not including) `upto`, as notes.
pub async fn new_notes(
    trengo: &TrengoClient,
    ticket: i64,
    upto: Option<i64>,
) -> Result<(Vec<super::model::TrengoNote>, Option<i64>), ApiError> {
    let mut notes = Vec::new();
    let mut highest = upto;
    let mut stream = std::pin::pin!(trengo.messages(ticket));
    while let Some(message) = stream.next().await {
        let message = message?;
        highest = Some(highest.map_or(message.id, |h| h.max(message.id)));
        if upto.is_some_and(|u| message.id <= u) {
            // Newest first: everything from here on was handled by an earlier pass.
            break;
        }
        if let Some(note) = views::note(&message) {
            notes.push(note);
        }
    }
    Ok((notes, highest))
}

struct StoredLink {
    link: Link,
    bases: Vec<store::bases::Base>,
    comments: Vec<(i64, String)>,
    held: Vec<Field>,
}

/// The view of a link whose ticket or task (`side`) is gone: out of scope, ending as gone.
fn gone_view(stored: StoredLink, contact_id: &str, side: Side) -> LinkView {
    LinkView {
        link: stored.link.id,
        created_at: stored.link.created_at,
        in_scope: false,
        ticket: placeholder_ticket(stored.link.ticket_id),
        task: TaskView {
            id: stored.link.task_id.clone(),
            contact_id: contact_id.to_string(),
            completed: false,
            assignee: None,
            title: String::new(),
            body: String::new(),
        },
        bases: LinkBases::default(),
        comments: stored.comments,
        held: stored.held,
        gone: Some(side),
    }
}

fn placeholder_ticket(id: i64) -> TicketView {
    TicketView {
        id,
        status: TicketStatus::Open,
        labels: BTreeSet::new(),
        assignee: None,
        updated_at: chrono::DateTime::<chrono::Utc>::UNIX_EPOCH,
        subject: None,
        notes: Vec::new(),
    }
}

/// A stored tag base (a JSON list of names) as a set of tags.
pub(crate) fn tag_set(value: &Value) -> BTreeSet<super::model::Tag> {
    value
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(super::model::Tag::new)
                .collect()
        })
        .unwrap_or_default()
}

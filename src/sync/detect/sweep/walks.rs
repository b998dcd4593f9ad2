//! The walks themselves: the Trengo listings page by page, the GHL tagged contacts and open
//! tasks, and the GHL notes, each a page (or a contact) at a time as the [`Pacer`] allows.

use std::collections::{BTreeSet, HashMap, HashSet};

use sha2::{Digest as _, Sha256};

use super::pace::Pacer;
use super::{GhlWalk, Index, NotesWalk, TrengoWalk};
use crate::ghl::TaskSearch;
use crate::sync::detect::{Detector, Hint};
use crate::sync::engine::EngineError;
use crate::sync::execute::PassFacts;
use crate::sync::model::Tag;
use crate::sync::views;
use crate::trengo::{self, TicketFilters, TicketStatus};

/// The Trengo listings that cover the link rule, each walked for OPEN and ASSIGNED tickets.
pub(super) fn listings(
    scope: &crate::sync::declare::Scope,
    labels: &HashMap<Tag, i64>,
) -> Vec<TicketFilters> {
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

impl Detector<'_> {
    /// The Trengo side: the listings page by page, then the tickets read one by one.
    pub(super) async fn walk_trengo(
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
    pub(super) async fn walk_ghl(
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
    pub(super) async fn walk_notes(
        &self,
        walk: Option<&mut NotesWalk>,
        pacer: &mut Pacer<'_>,
    ) -> Vec<Hint> {
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
    pub(super) fn look_at_task(
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

    pub(super) fn report_progress(&self, line: impl FnOnce() -> String) {
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

//! Items entering scope without a link, as the loading stage reads them: the tickets detection
//! found matching the link rule, and the open tasks of the contacts it named (each contact's
//! tasks read once, by `GET`).

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};

use super::{Loader, ReadError};
use crate::ghl;
use crate::store;
use crate::sync::detect::{RetryChange, is_gone};
use crate::sync::model::Candidate;
use crate::sync::operation::ItemKey;
use crate::sync::reason::ReasonCode as _;
use crate::sync::settings::EngineSettings;
use crate::sync::views::{self, Directory};
use crate::trengo;

/// Items entering scope, as [`Loader::candidates`] found them.
#[derive(Debug, Default)]
pub(crate) struct Candidates {
    /// The candidates, tickets first.
    pub candidates: Vec<Candidate>,
    /// Contacts' task listings that could not be read, with why.
    pub failed: Vec<(ItemKey, String)>,
    /// Retry rows to add or end, for the executor.
    pub retries: Vec<RetryChange>,
}

impl Loader<'_> {
    /// The items entering scope without a link: the tickets detection found, and the open
    /// tasks of the contacts it named (each contact's tasks read once). Items older than
    /// `link.since` are left out (`since.rs`).
    pub async fn candidates(
        &self,
        tickets: &BTreeMap<i64, trengo::Ticket>,
        contacts: &BTreeSet<String>,
        directory: &Directory,
        now: DateTime<Utc>,
    ) -> Candidates {
        let mut out = Candidates::default();
        let cutoff = self.settings.since.map(|s| s.cutoff(now));
        for ticket in tickets.values() {
            if !crate::sync::since::ticket_recent(ticket, cutoff) {
                continue;
            }
            if let Some(c) = ticket_candidate(ticket, self.settings, directory) {
                out.candidates.push(c);
            }
        }
        for contact in contacts {
            let item = ItemKey::Tasks(contact.clone());
            match self.task_candidates(directory, contact).await {
                Ok((found, raw)) => {
                    let found = crate::sync::since::tasks_recent(found, raw.as_ref(), cutoff);
                    // Its tasks were read: an earlier failure to read them is over.
                    out.retries.push(RetryChange::Cleared(item));
                    out.candidates.extend(found);
                }
                // The contact is gone (deleted, or not visible): no task of it can enter scope.
                Err(ReadError::Api(e)) if is_gone(&e) => {
                    out.retries.push(RetryChange::Cleared(item));
                }
                Err(e) => {
                    out.retries.push(RetryChange::Failed {
                        item: item.clone(),
                        code: e.reason_code(),
                    });
                    out.failed.push((item, e.to_string()));
                }
            }
        }
        out
    }

    /// The open tasks of a contact that enter scope without a link.
    pub async fn task_candidates(
        &self,
        directory: &Directory,
        contact_id: &str,
    ) -> Result<(Vec<Candidate>, Option<ghl::Contact>), ReadError> {
        let Loader {
            reader,
            ghl,
            settings,
            ..
        } = *self;
        let contact = ghl.contact(contact_id).await?;
        let contact_view = views::contact(&contact, &[]);
        let tasks = ghl.tasks(contact_id).await?;
        let ids: Vec<String> = tasks.iter().map(|t| t.id.clone()).collect();
        let linked: BTreeSet<String> = reader
            .call(move |s| {
                let mut linked = BTreeSet::new();
                for id in ids {
                    if store::links::by_task(s.conn(), &id)?.is_some() {
                        linked.insert(id);
                    }
                }
                Ok(linked)
            })
            .await?;
        let mut out = Vec::new();
        for task in &tasks {
            if linked.contains(&task.id) {
                continue;
            }
            let view = views::task(task, contact_id, directory);
            let names = settings.scope.ticket_in_text(&view.body);
            let eligible = names.is_some()
                || (!task.completed
                    && settings
                        .scope
                        .task_in_scope(&contact_view.tags, &view.title));
            if eligible {
                out.push(Candidate::Task {
                    task: view,
                    contact: contact_view.clone(),
                    ticket_url_of_this_account: names,
                });
            }
        }
        Ok((out, Some(contact)))
    }
}

/// A ticket entering scope, as a link candidate.
pub fn ticket_candidate(
    ticket: &trengo::Ticket,
    settings: &EngineSettings,
    directory: &Directory,
) -> Option<Candidate> {
    let view = views::ticket(ticket, Vec::new(), directory).ok()?;
    let contact = ticket.contact.as_ref();
    Some(Candidate::Ticket {
        url: settings.scope.ticket_url(ticket.id),
        contact_email: contact
            .and_then(|c| c.email.clone())
            .filter(|e| e.contains('@')),
        contact_phone: contact
            .and_then(|c| c.phone.clone())
            .filter(|p| !p.trim().is_empty()),
        contact_name: contact.and_then(|c| c.name.clone()),
        ticket: view,
    })
}

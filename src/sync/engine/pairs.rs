//! The contact-pair stage of a pass (`[contacts]`, sync-model.md §5), run after the link
//! rounds, in the pipeline's order: which GHL contacts' pairs to look at (detection put the
//! changed ones in `Detected::pair_contacts`; this adds the contacts of links made in this pass
//! and, on sweeps, unpaired links and the Trengo side of the stalest pairs), then per contact:
//! load (`load/pairs.rs`), plan (`pairs::plan_pair`, `pairs::task::plan_tasks`), execute
//! (`execute/pairs.rs`).
//!
//! A contact's pairs are one item: a failure (an API, a value one side cannot hold) goes to
//! the retry table as `pair:<ghl contact id>`, and never holds back another contact.

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use futures::StreamExt as _;

use super::{Engine, EngineError, PassKind, PassReport};
use crate::store::{self, pairs::PairOrigin};
use crate::sync::detect::{Allowance, Detected};
use crate::sync::execute::pairs::PairTarget;
use crate::sync::execute::{Applied, ItemError, PassFacts};
use crate::sync::keys::ItemKey;
use crate::sync::load::pairs::PairReadError;
use crate::sync::operation::Side;
use crate::sync::pairs::task::{TaskWrite, plan_tasks};
use crate::sync::pairs::{self, FieldMap, PairPlan, PairWrite, Users, map};
use crate::sync::reason::ReasonCode as _;

/// The most of the contact-pair sweep's allowance saved up between slices.
const PAIR_SWEEP_SAVED: std::time::Duration = std::time::Duration::from_secs(60);

/// Why a contact's pairs failed: what is stored and served (codes, field names), and what the
/// command line and the log show (with the values).
struct PairFailure {
    stored: String,
    shown: String,
    crash: bool,
}

impl From<ItemError> for PairFailure {
    fn from(e: ItemError) -> Self {
        PairFailure {
            stored: e.reason_code(),
            shown: e.to_string(),
            crash: e.is_crash(),
        }
    }
}

impl From<PairReadError> for PairFailure {
    fn from(e: PairReadError) -> Self {
        match e {
            PairReadError::Api(e) => ItemError::Api(e).into(),
            PairReadError::Store(e) => ItemError::Store(e).into(),
        }
    }
}

/// What a contact's pairs tell the pass report: a line per write, and what a pause held.
#[derive(Debug, Default)]
struct Said {
    lines: Vec<String>,
    held: Vec<(String, String)>,
}

/// One line of `plan` and `once` for a pair's write.
fn describe(pair: i64, ghl: &str, trengo: i64, write: &PairWrite) -> String {
    let quote = |s: &str| format!("\"{s}\"");
    match write {
        PairWrite::Field {
            field,
            to,
            old,
            value,
        } => format!(
            "contact pair {pair} (GHL {ghl} ⇄ Trengo {trengo}): {field} → {}: {} → {}",
            match to {
                Side::Trengo => "Trengo",
                Side::Ghl => "GHL",
            },
            quote(&old.display()),
            quote(&value.display())
        ),
        PairWrite::Context {
            label, old, value, ..
        } => format!(
            "contact pair {pair} (GHL {ghl} ⇄ Trengo {trengo}): {label} → Trengo: {} → {}",
            quote(old),
            quote(value)
        ),
    }
}

impl Engine {
    /// The `[contacts]` map resolved against both accounts' field catalogues, read once per
    /// engine; `None` when contact pairs are off. An entry that does not resolve is
    /// [`EngineError::Map`] (exit 78).
    pub async fn field_map(&self) -> Result<Option<Arc<FieldMap>>, EngineError> {
        let Some(settings) = &self.settings.pairs else {
            return Ok(None);
        };
        let map = self
            .pair_map
            .get_or_try_init(|| async {
                let ghl_fields = self.ghl.custom_fields().await?;
                let mut trengo_fields = Vec::new();
                let mut stream = std::pin::pin!(self.trengo.custom_fields());
                while let Some(f) = stream.next().await {
                    trengo_fields.push(f?);
                }
                map::resolve(
                    &settings.config,
                    settings.link_channel,
                    &ghl_fields,
                    &trengo_fields,
                )
                .map(Arc::new)
                .map_err(EngineError::Map)
            })
            .await?;
        Ok(Some(map.clone()))
    }

    /// Resolves the field map at start: a map naming fields the accounts lack stops the command
    /// (exit 78); an API that cannot be reached now only defers it to the first pass.
    pub async fn check_field_map(&self) -> Result<(), EngineError> {
        match self.field_map().await {
            Ok(_) => Ok(()),
            Err(e @ EngineError::Map(_)) => Err(e),
            Err(e) => {
                tracing::warn!(error = %e, "the [contacts] field map could not be checked against the accounts yet; the first pass checks it");
                Ok(())
            }
        }
    }

    /// The GHL location's zone (appointment times are naive in it, ghl-api.md §6), read once.
    async fn location_zone(&self) -> Result<Tz, EngineError> {
        Ok(*self
            .ghl_zone
            .get_or_try_init(|| async { self.ghl.location_timezone().await })
            .await?)
    }

    /// Runs the pair stage: see the module doc. `planned` are the contact groups this pass
    /// planned (their contacts changed).
    pub(super) async fn pair_stage(
        &self,
        kind: &PassKind,
        work: &mut Detected,
        planned: &BTreeSet<String>,
        facts: &mut PassFacts,
        report: &mut PassReport,
        dry_run: bool,
    ) -> Result<(), EngineError> {
        let started: DateTime<Utc> = report.started.unwrap_or_else(|| self.clock.now());
        let Some(settings) = &self.settings.pairs else {
            return Ok(());
        };
        let mut targets = std::mem::take(&mut work.pair_contacts);
        targets.extend(planned.iter().cloned());
        if dry_run {
            // The contacts whose tasks the plan would link (their pairs come with the links).
            targets.extend(work.candidate_contacts.iter().cloned());
        }
        let whole = matches!(kind, PassKind::Cycle | PassKind::Reconcile);
        let sweeping = whole || matches!(kind, PassKind::Sweep);
        // A sweep slice reads at most what the pairs' allowance holds (`contacts.
        // sweep_pairs_per_hour`, spent as a rate, a minute's worth saved up at most, so a
        // slice never bursts ahead of the polls); `once`'s cycle and the reconcile read every
        // pair.
        let per_hour = settings.config.sweep_pairs_per_hour;
        let cycle = PAIR_SWEEP_SAVED;
        let batch = if whole {
            usize::MAX
        } else if sweeping {
            Allowance::cap(per_hour, cycle).ceil() as usize
        } else {
            0
        };
        let (linked, unpaired, stalest) = self
            .reader
            .call(move |s| {
                let linked = store::pairs::contacts_linked_since(s.conn(), started)?;
                let (unpaired, stalest) = if sweeping {
                    (
                        store::pairs::contacts_unpaired(s.conn(), batch)?,
                        store::pairs::stalest(s.conn(), batch)?,
                    )
                } else {
                    Default::default()
                };
                Ok((linked, unpaired, stalest))
            })
            .await?;
        targets.extend(linked);
        targets.extend(unpaired);
        if targets.is_empty() && !sweeping {
            // Nothing changed: the idle poll costs nothing more.
            return Ok(());
        }
        // What every contact's pairs need: the resolved map, and (when shown) the location's
        // zone and the GHL users. When these cannot be read (an API down, a scope missing), the
        // contacts this pass would look at go to the retry table, and the links' sync goes on.
        let map = match self.field_map().await {
            Ok(Some(map)) => map,
            Ok(None) => return Ok(()),
            Err(e @ EngineError::Map(_)) => return Err(e),
            Err(e) => return self.pairs_wait(targets, &e, report, dry_run).await,
        };
        // The Trengo side has no change feed for contact fields: the sweep reads the stalest
        // pairs' Trengo contacts (one call each) and plans those that moved. Context that moves
        // without the contact changing (time passing an appointment, a task completed: neither
        // bumps the contact, ghl-api.md §4.2) is refreshed the same way, by planning the
        // stalest pairs whole.
        let mut stalest: Vec<_> = stalest
            .into_iter()
            .filter(|p| !targets.contains(&p.ghl_contact_id))
            .collect();
        let refresh = map.context.next_appointment.is_some() || map.context.open_tasks.is_some();
        if matches!(kind, PassKind::Sweep) {
            let now = std::time::Instant::now();
            let mut slot = self
                .pair_allowance
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            let allowance = slot.get_or_insert_with(|| Allowance::full(now, per_hour, cycle));
            let granted = stalest
                .iter()
                .take_while(|_| allowance.take(now, per_hour, cycle))
                .count();
            stalest.truncate(granted);
        }
        if refresh {
            let read: Vec<i64> = stalest.iter().map(|p| p.id).collect();
            targets.extend(stalest.drain(..).map(|p| p.ghl_contact_id));
            if !dry_run && !read.is_empty() {
                self.executor(facts)
                    .pairs_swept(read)
                    .await
                    .map_err(super::settlement_failed)?;
            }
        }
        if !stalest.is_empty() {
            match self.loader().sweep_pairs(&map, stalest).await {
                Ok((moved, read)) => {
                    targets.extend(moved);
                    if !dry_run {
                        self.executor(facts)
                            .pairs_swept(read)
                            .await
                            .map_err(super::settlement_failed)?;
                    }
                }
                Err(e) => {
                    let f = PairFailure::from(e);
                    tracing::warn!(error = %f.shown, "the contact-pair sweep could not read Trengo; it resumes next sweep");
                }
            }
        }
        if targets.is_empty() {
            return Ok(());
        }
        let needs = async {
            let zone = if map.context.next_appointment.is_some() {
                Some(self.location_zone().await?)
            } else {
                None
            };
            Ok::<_, EngineError>((self.pair_users(&map).await?, zone))
        };
        let (users, zone) = match needs.await {
            Ok(n) => n,
            Err(e) => return self.pairs_wait(targets, &e, report, dry_run).await,
        };
        for contact in targets {
            let mut said = Said::default();
            let outcome = self
                .sync_contact_pairs(&map, &contact, &users, zone, facts, dry_run, &mut said)
                .await;
            report.pair_lines.append(&mut said.lines);
            let held = !said.held.is_empty();
            report.held.append(&mut said.held);
            match outcome {
                Ok(applied) => {
                    report.writes.trengo += applied.trengo;
                    report.writes.ghl += applied.ghl;
                    // Held, it is kept so that `resume` makes it due and the change crosses
                    // then, although the polls' cursors moved on.
                    if !dry_run && held {
                        self.recorder()
                            .hold(&ItemKey::Pair(contact), "the daemon is paused")
                            .await?;
                    } else if !dry_run {
                        self.clear_item(ItemKey::Pair(contact)).await?;
                    }
                }
                Err(f) if f.crash => return Err(EngineError::Crashed),
                Err(f) => {
                    tracing::warn!(contact = %contact, error = %f.shown, "contact pairs failed");
                    if !dry_run {
                        self.fail_item(&ItemKey::Pair(contact.clone()), &f.stored)
                            .await?;
                    }
                    report.failed.push((ItemKey::Pair(contact), f.shown));
                }
            }
        }
        Ok(())
    }

    /// The sides a daemon-wide pause (`trengo-sync pause`) keeps from being written.
    fn paused_sides(&self) -> (bool, bool) {
        use crate::store::controls::PauseDirection;
        let pauses = self.pauses.lock().unwrap_or_else(|e| e.into_inner());
        match pauses.daemon.as_ref().map(|p| p.direction) {
            Some(PauseDirection::TrengoToGhl) => (false, true),
            Some(PauseDirection::GhlToTrengo) => (true, false),
            Some(PauseDirection::Both) => (true, true),
            None => (false, false),
        }
    }

    /// Takes the writes a pause holds out of a pair's plan, with their bases (so the change
    /// is still seen once the pause is lifted); says what was held.
    fn hold_paused(&self, plan: &mut PairPlan, held: &mut Vec<(String, String)>) {
        let (to_trengo, to_ghl) = self.paused_sides();
        if !to_trengo && !to_ghl {
            return;
        }
        let mut dropped = BTreeSet::new();
        plan.writes.retain(|w| {
            let (side, field) = match w {
                PairWrite::Field { to, field, .. } => (*to, field.clone()),
                PairWrite::Context { label, .. } => (Side::Trengo, format!("context: {label}")),
            };
            let hold = match side {
                Side::Trengo => to_trengo,
                Side::Ghl => to_ghl,
            };
            if hold {
                held.push((
                    format!("contact pair {}", plan.pair),
                    format!("{field}: the daemon is paused"),
                ));
                dropped.insert(field);
            }
            !hold
        });
        plan.bases.retain(|(f, _)| !dropped.contains(f));
        plan.settled.retain(|s| !dropped.contains(&s.field));
    }

    /// Puts the contacts a pass would have looked at in the retry table, when what their pairs
    /// need could not be read: they come back when due, and the rest of the pass goes on.
    async fn pairs_wait(
        &self,
        targets: BTreeSet<String>,
        e: &EngineError,
        report: &mut PassReport,
        dry_run: bool,
    ) -> Result<(), EngineError> {
        let stored = e.reason_code();
        tracing::warn!(error = %e, "contact pairs wait: what they need could not be read (a token without the locations.readonly or locations/customFields.readonly scope?)");
        for contact in targets {
            if !dry_run {
                self.fail_item(&ItemKey::Pair(contact.clone()), &stored)
                    .await?;
            }
            report.failed.push((ItemKey::Pair(contact), e.to_string()));
        }
        Ok(())
    }

    /// GHL users by id and e-mail, when the map shows `assigned_to`.
    async fn pair_users(&self, map: &FieldMap) -> Result<Users, EngineError> {
        let wanted = map
            .fields
            .iter()
            .any(|f| f.ghl == pairs::GhlSlot::Standard(pairs::Standard::AssignedTo));
        let mut users = Users::default();
        if wanted {
            for user in self.ghl.users().await? {
                if let Some(email) = user.email {
                    users.email_of.insert(user.id, email.trim().to_lowercase());
                }
            }
        }
        Ok(users)
    }

    /// One GHL contact's pairs: made where missing, planned, applied (unless a dry run); then
    /// its links' task details. Field errors fail the item after everything else is applied.
    #[allow(clippy::too_many_arguments)]
    async fn sync_contact_pairs(
        &self,
        map: &FieldMap,
        contact_id: &str,
        users: &Users,
        zone: Option<Tz>,
        facts: &mut PassFacts,
        dry_run: bool,
        said: &mut Said,
    ) -> Result<Applied, PairFailure> {
        let (trengo_paused, ghl_paused) = self.paused_sides();
        let loader = self.loader();
        let mut side = loader.contact_side(map, contact_id, zone).await?;
        let mut applied = Applied::default();
        let mut pair_list = side.pairs.clone();
        for person in &side.unpaired {
            pair_list.push(
                self.executor(facts)
                    .ensure_pair(contact_id, *person, PairOrigin::Link)
                    .await?,
            );
        }
        let tagged = map.tag.as_ref().is_some_and(|tag| {
            side.contact
                .tags
                .iter()
                .any(|t| crate::sync::model::Tag::new(t) == *tag)
        });
        // Scope (sync-model.md §6): a contact's pairs are kept while it has an active link or
        // carries `contacts.tag`. Out of scope, its pairs stay stored (never deleted) and are
        // not written; they are kept again once it is back in scope. (`plan` before the first
        // run looks at the contacts its links would make, which have none yet.)
        if !tagged && side.links.is_empty() && !dry_run {
            return Ok(applied);
        }
        // `plan` before the first run: the links this pass would make are not in the store's
        // copy, so a contact without pairs is paired by identifier there, to show its writes.
        if pair_list.is_empty()
            && dry_run
            && !tagged
            && let Some(found) = loader.trengo_contact_of(&side.contact).await?
        {
            pair_list.push(
                self.executor(facts)
                    .ensure_pair(contact_id, found.id, PairOrigin::Link)
                    .await?,
            );
        }
        if tagged && pair_list.is_empty() {
            let person = match loader.trengo_contact_of(&side.contact).await? {
                Some(found) => Some(found.id),
                None if trengo_paused => {
                    said.held.push((
                        format!("GHL contact {contact_id}"),
                        "its Trengo contact is not made: the daemon is paused".into(),
                    ));
                    None
                }
                None if dry_run => {
                    said.lines.push(format!(
                        "GHL contact {contact_id} (tag {}): would create its Trengo contact in channel {}",
                        map.tag.as_ref().map(|t| t.to_string()).unwrap_or_default(),
                        map.channel_id.unwrap_or_default()
                    ));
                    None
                }
                None => {
                    let channel = map.channel_id.ok_or_else(|| PairFailure {
                        stored: "contacts.channel_id is not set".into(),
                        shown: "contacts.channel_id (or link.trengo_channel_id) is not set: no \
                                Trengo contact can be made for a tagged GHL contact"
                            .into(),
                        crash: false,
                    })?;
                    let made = self
                        .executor(facts)
                        .make_trengo_contact(channel, &side.contact)
                        .await?;
                    applied.trengo += 1;
                    said.lines.push(format!(
                        "GHL contact {contact_id}: made Trengo contact {} in channel {channel}",
                        made.id
                    ));
                    Some(made.id)
                }
            };
            if let Some(person) = person {
                pair_list.push(
                    self.executor(facts)
                        .ensure_pair(contact_id, person, PairOrigin::Tag)
                        .await?,
                );
            }
        }
        let mut errors = Vec::new();
        // The task details first: a due date moved here is what the open-tasks context shows.
        let views = loader.task_views(map, &side).await?;
        let mut tplan = plan_tasks(&views, self.trengo.zone());
        if trengo_paused || ghl_paused {
            let before = tplan.writes.len();
            tplan.writes.retain(|w| match w {
                TaskWrite::TicketField { .. } => !trengo_paused,
                TaskWrite::TaskDue { .. } => !ghl_paused,
            });
            if tplan.writes.len() < before {
                // The bases wait with the writes, so the changes are seen once it is lifted.
                tplan.bases.clear();
                said.held.push((
                    format!("the tasks of GHL contact {contact_id}"),
                    "task details: the daemon is paused".into(),
                ));
            }
        }
        for w in &tplan.writes {
            said.lines.push(match w {
                TaskWrite::TicketField {
                    ticket_id,
                    what,
                    old,
                    value,
                    ..
                } => format!("ticket #{ticket_id}: task {what} → Trengo: \"{old}\" → \"{value}\""),
                TaskWrite::TaskDue {
                    task_id, old, due, ..
                } => format!(
                    "task {task_id}: due date → GHL: {} → {}",
                    old.map(|d| d.to_rfc3339()).unwrap_or_default(),
                    due.to_rfc3339()
                ),
            });
        }
        errors.extend(
            tplan
                .errors
                .iter()
                .map(|(link, e)| format!("link {link}: {e}")),
        );
        if !dry_run && (!tplan.writes.is_empty() || !tplan.bases.is_empty()) {
            let done = self.executor(facts).apply_tasks(map, &tplan).await?;
            applied.trengo += done.trengo;
            applied.ghl += done.ghl;
            if let Some(tasks) = side.extra.tasks.as_mut() {
                for w in &tplan.writes {
                    if let TaskWrite::TaskDue { task_id, due, .. } = w
                        && let Some(t) = tasks.iter_mut().find(|t| t.id == *task_id)
                    {
                        t.due_date = Some(*due);
                    }
                }
            }
        }
        let now = self.clock.now();
        for pair in pair_list {
            let read = loader.pair_read(map, pair.clone(), &side.links).await?;
            let view = pairs::pair_view(
                map,
                &side.contact,
                &read,
                &side.extra,
                users,
                &self.settings.plan.tags,
                self.ghl.location_id(),
                now,
            );
            let mut plan: PairPlan = pairs::plan_pair(&view);
            self.hold_paused(&mut plan, &mut said.held);
            for w in &plan.writes {
                said.lines.push(describe(
                    pair.id,
                    &pair.ghl_contact_id,
                    pair.trengo_contact_id,
                    w,
                ));
            }
            for e in &plan.errors {
                errors.push(format!(
                    "contact pair {}: {}: {}",
                    pair.id, e.field, e.message
                ));
            }
            if !dry_run && (!plan.writes.is_empty() || !plan.bases.is_empty()) {
                let target = PairTarget {
                    profile_id: read.profile.as_ref().map(|p| p.id),
                    pair: pair.clone(),
                };
                let done = self
                    .executor(facts)
                    .apply_pair(map, &plan, &target, users)
                    .await?;
                applied.trengo += done.trengo;
                applied.ghl += done.ghl;
            }
            if pair.origin == PairOrigin::Tag
                && pair.welcome_ticket_id.is_none()
                && map.welcome.is_some()
                && !trengo_paused
            {
                if dry_run {
                    said.lines.push(format!(
                        "contact pair {}: would open a welcome ticket for Trengo contact {}",
                        pair.id, pair.trengo_contact_id
                    ));
                } else if let Some(ticket) = self
                    .executor(facts)
                    .open_welcome(map, &pair, &side.contact)
                    .await?
                {
                    applied.trengo += 1;
                    said.lines.push(format!(
                        "contact pair {}: opened welcome ticket #{ticket}",
                        pair.id
                    ));
                }
            }
        }
        if errors.is_empty() {
            Ok(applied)
        } else {
            // Stored and served without the values (they are customer data); shown in full.
            let fields: Vec<&str> = errors.iter().filter_map(|e| e.split(": ").nth(1)).collect();
            Err(PairFailure {
                stored: format!(
                    "contact fields that cannot be synced: {}",
                    fields.join(", ")
                ),
                shown: errors.join("; "),
                crash: false,
            })
        }
    }
}

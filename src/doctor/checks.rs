//! The read-only checks of `doctor`: tokens and endpoints (scopes), answer shapes, zone, paging,
//! `updated_at_gt`, rate-limit headers, the store's binding, and what the configuration names.

use std::collections::BTreeSet;

use futures::{Stream, StreamExt as _, TryStreamExt as _};
use serde_json::Value;

use super::{DoctorReport, Outcome, zone_finding};
use crate::api::{ApiError, lenient};
use crate::ghl::TaskSearch;
use crate::store;
use crate::sync::engine::Engine;
use crate::sync::model::Tag;
use crate::trengo::{Channel, Label, TicketFilters, User};

/// What the endpoint checks saw, for the checks that compare against it.
#[derive(Debug, Default)]
struct Seen {
    agency: Option<i64>,
    labels: Vec<Label>,
    channels: Vec<Channel>,
    trengo_users: Vec<User>,
    ghl_user_emails: Option<BTreeSet<String>>,
    ticket: Option<i64>,
    ghl_contact: Option<String>,
}

/// At most this many items of a list are read (one page each, mostly).
const SAMPLE: usize = 25;

pub(super) async fn run_all(engine: &Engine, report: &mut DoctorReport) {
    let mut seen = Seen::default();
    trengo_endpoints(engine, report, &mut seen).await;
    ghl_endpoints(engine, report, &mut seen).await;
    let (zone, _) = zone_finding(&engine.trengo, &engine.store).await;
    report.findings.push(zone);
    paging(engine, report).await;
    updated_at_gt(engine, report).await;
    rate_headers(engine, report);
    binding(engine, report, &seen).await;
    named_in_config(engine, report, &seen);
}

/// The first `SAMPLE` items of a listing, or its error.
async fn sample<T>(stream: impl Stream<Item = Result<T, ApiError>>) -> Result<Vec<T>, ApiError> {
    stream.take(SAMPLE).try_collect().await
}

/// One endpoint's line: ok with a count, or what the error says to do.
fn endpoint<T>(
    report: &mut DoctorReport,
    check: &str,
    needed_for: &str,
    scope_hint: &str,
    result: &Result<Vec<T>, ApiError>,
) {
    match result {
        Ok(items) => report.push(
            check,
            Outcome::Ok,
            format!(
                "answers in the shape the engine reads ({} item(s) looked at)",
                items.len()
            ),
            "",
        ),
        Err(e) => fail(report, check, needed_for, scope_hint, e),
    }
}

fn fail(report: &mut DoctorReport, check: &str, needed_for: &str, scope_hint: &str, e: &ApiError) {
    let todo = match e {
        ApiError::Auth { status: 401, .. } => "the token was refused: check it".to_string(),
        ApiError::Auth { .. } | ApiError::NotFound { .. } => {
            format!("the token may not use this endpoint: {scope_hint}")
        }
        ApiError::Malformed { .. } => format!(
            "the answer does not have the shape the engine reads ({needed_for} would fail); \
             report it with this line"
        ),
        _ => "check the base URL and the network, then run doctor again".to_string(),
    };
    report.push(
        check,
        Outcome::Fail,
        format!("needed for {needed_for}: {e}"),
        todo,
    );
}

async fn trengo_endpoints(engine: &Engine, report: &mut DoctorReport, seen: &mut Seen) {
    let t = &engine.trengo;
    let scope = "the token acts as the user who made it; use an administrator's token \
                 (trengo.token)";
    let users = sample(t.users()).await;
    endpoint(
        report,
        "trengo GET /users",
        "the account binding and assignees",
        scope,
        &users,
    );
    if let Ok(users) = users {
        seen.agency = users.iter().find_map(|u| u.agency_id);
        seen.trengo_users = users;
    }
    let tickets = sample(t.tickets(&TicketFilters::default())).await;
    endpoint(report, "trengo GET /tickets", "every poll", scope, &tickets);
    if let Ok(tickets) = &tickets {
        seen.ticket = tickets.first().map(|t| t.id);
    }
    if let Some(id) = seen.ticket {
        let one = t.ticket(id).await.map(|t| vec![t]);
        endpoint(
            report,
            "trengo GET /tickets/{id}",
            "reading linked tickets",
            scope,
            &one,
        );
        let messages = sample(t.messages(id)).await;
        endpoint(
            report,
            "trengo GET /tickets/{id}/messages",
            "copying notes",
            scope,
            &messages,
        );
    } else {
        report.push(
            "trengo GET /tickets/{id}",
            Outcome::Skip,
            "no ticket to read".into(),
            "",
        );
    }
    let labels: Result<Vec<Label>, ApiError> = t.labels().try_collect().await;
    endpoint(
        report,
        "trengo GET /labels",
        "labels and tags",
        scope,
        &labels,
    );
    seen.labels = labels.unwrap_or_default();
    let channels: Result<Vec<Channel>, ApiError> = t.channels().try_collect().await;
    endpoint(
        report,
        "trengo GET /channels",
        "the link rules",
        scope,
        &channels,
    );
    seen.channels = channels.unwrap_or_default();
    if !engine.settings.scope.trengo_teams.is_empty() {
        let teams = sample(t.teams()).await;
        endpoint(
            report,
            "trengo GET /teams",
            "link.trengo_teams",
            scope,
            &teams,
        );
    }
}

async fn ghl_endpoints(engine: &Engine, report: &mut DoctorReport, seen: &mut Seen) {
    let g = &engine.ghl;
    // Oldest first from the start: one page is enough to see the shape.
    let contacts = sample(g.contacts_updated_between(chrono::DateTime::UNIX_EPOCH, None)).await;
    endpoint(
        report,
        "ghl POST /contacts/search",
        "every GHL poll",
        "give the token the contacts.readonly scope (ghl.token, or the app's scopes)",
        &contacts,
    );
    if let Ok(contacts) = &contacts {
        seen.ghl_contact = contacts.first().map(|c| c.id.clone());
    }
    let email = contacts
        .as_ref()
        .ok()
        .and_then(|c| c.iter().find_map(|c| c.email.clone()))
        .unwrap_or_else(|| "doctor-probe@example.invalid".to_string());
    let duplicate = g
        .find_duplicate(Some(&email), None)
        .await
        .map(|c| c.into_iter().collect::<Vec<_>>());
    endpoint(
        report,
        "ghl GET /contacts/search/duplicate",
        "linking a ticket to its contact",
        "give the token the contacts.readonly scope",
        &duplicate,
    );
    let tasks = sample(g.search_tasks(&TaskSearch::default())).await;
    endpoint(
        report,
        "ghl POST /locations/{id}/tasks/search",
        "the GHL → Trengo link rule and sweeps",
        "give the token the locations/tasks.readonly scope",
        &tasks,
    );
    if let Some(contact) = seen.ghl_contact.clone() {
        let tasks = g.tasks(&contact).await;
        endpoint(
            report,
            "ghl GET /contacts/{id}/tasks",
            "reading linked tasks",
            "give the token the contacts.readonly scope",
            &tasks,
        );
        let notes = g.notes(&contact).await;
        endpoint(
            report,
            "ghl GET /contacts/{id}/notes",
            "copying notes",
            "give the token the contacts.readonly scope",
            &notes,
        );
    }
    if engine.settings.plan.assignee_enabled {
        let users = g.users().await;
        endpoint(
            report,
            "ghl GET /users/",
            "[assignee] (users are matched by e-mail)",
            "give the token the users.readonly scope, or set assignee.enabled = false",
            &users,
        );
        if let Ok(users) = users {
            seen.ghl_user_emails = Some(
                users
                    .iter()
                    .filter_map(|u| u.email.as_deref())
                    .map(|e| e.trim().to_lowercase())
                    .collect(),
            );
        }
    }
}

/// Whether `links.next` keeps a listing's filters. Either is fine for the client, which
/// rebuilds each page from its own query; the line says which the account does.
async fn paging(engine: &Engine, report: &mut DoctorReport) {
    let check = "trengo paging";
    let query = vec![("sort".to_string(), "date".to_string())];
    match engine.trengo.raw_page("/tickets", query).await {
        Ok(page) => match page.pointer("/links/next") {
            Some(Value::String(next)) if next.contains("sort=date") => report.push(
                check,
                Outcome::Ok,
                "links.next keeps the filters".into(),
                "",
            ),
            Some(Value::String(next)) => report.push(
                check,
                Outcome::Note,
                format!(
                    "links.next drops the filters ({next}); the client rebuilds every page from \
                     its own query, so listings stay filtered"
                ),
                "",
            ),
            Some(Value::Null) => report.push(
                check,
                Outcome::Skip,
                "fewer than one page of tickets: the next-page link cannot be seen".into(),
                "",
            ),
            _ => report.push(
                check,
                Outcome::Fail,
                "the ticket list has no links.next: the walk could not tell its last page".into(),
                "report it with this line",
            ),
        },
        Err(e) => report.push(check, Outcome::Fail, e.to_string(), "see the lines above"),
    }
}

/// Whether `updated_at_gt` narrows: asked for tickets changed after the newest one, the
/// account must leave that one out.
async fn updated_at_gt(engine: &Engine, report: &mut DoctorReport) {
    let check = "trengo updated_at_gt";
    let newest = match engine.trengo.raw_page("/tickets", Vec::new()).await {
        Ok(page) => page
            .get("data")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|t| {
                let at = t.get("updated_at")?.as_str()?;
                Some((
                    lenient::parse_naive(at)?,
                    at.to_string(),
                    t.get("id")?.clone(),
                ))
            })
            .max_by_key(|(at, _, _)| *at),
        Err(e) => {
            report.push(check, Outcome::Fail, e.to_string(), "see the lines above");
            return;
        }
    };
    let Some((_, text, id)) = newest else {
        report.push(check, Outcome::Skip, "no ticket to compare with".into(), "");
        return;
    };
    let query = vec![("updated_at_gt".to_string(), text.clone())];
    match engine.trengo.raw_page("/tickets", query).await {
        Ok(page) => {
            let ids: Vec<&Value> = page
                .get("data")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|t| t.get("id"))
                .collect();
            if ids.contains(&&id) {
                report.push(
                    check,
                    Outcome::Fail,
                    format!(
                        "updated_at_gt={text} still listed ticket {id}, updated at {text}: the \
                         filter is ignored, so every poll would read the whole mailbox"
                    ),
                    "the daemon depends on this filter; report it with this line",
                );
            } else {
                report.push(
                    check,
                    Outcome::Ok,
                    format!("narrows: updated_at_gt={text} leaves out ticket {id}, updated then"),
                    "",
                );
            }
        }
        Err(e) => report.push(check, Outcome::Fail, e.to_string(), "see the lines above"),
    }
}

fn rate_headers(engine: &Engine, report: &mut DoctorReport) {
    for (check, budget, key) in [
        (
            "trengo rate-limit headers",
            engine.trengo.budget(),
            "limits.trengo_per_minute",
        ),
        (
            "ghl rate-limit headers",
            engine.ghl.budget(),
            "limits.ghl_per_window",
        ),
    ] {
        let snap = budget.snapshot();
        if snap.sized_from_headers {
            report.push(
                check,
                Outcome::Ok,
                format!(
                    "present: {} requests per {} s{}",
                    snap.limit,
                    snap.window.as_secs(),
                    snap.daily_remaining
                        .map(|d| format!(", {d} left today"))
                        .unwrap_or_default()
                ),
                "",
            );
        } else {
            report.push(
                check,
                Outcome::Warn,
                format!(
                    "absent: the daemon paces at the configured {} requests",
                    snap.limit
                ),
                format!("keep {key} at or below the account's real limit"),
            );
        }
    }
}

async fn binding(engine: &Engine, report: &mut DoctorReport, seen: &Seen) {
    let check = "store binding";
    let bound = engine.store.call(|s| store::identity::get(s.conn())).await;
    let web = &engine.settings.scope.web_url;
    let account = match seen.agency {
        Some(a) => format!("{web} (agency {a})"),
        None => web.clone(),
    };
    let location = engine.ghl.location_id().to_string();
    match bound {
        Ok(None) => report.push(
            check,
            Outcome::Note,
            format!(
                "not bound yet; the first run binds it to {account} and GHL location {location}"
            ),
            "",
        ),
        Ok(Some(b))
            if b.identity.trengo_account == account && b.identity.ghl_location == location =>
        {
            report.push(
                check,
                Outcome::Ok,
                format!("bound to {account} and GHL location {location}"),
                "",
            )
        }
        Ok(Some(b)) => report.push(
            check,
            Outcome::Fail,
            format!(
                "the store is bound to {} and GHL location {}, but the tokens reach {account} \
                 and {location}",
                b.identity.trengo_account, b.identity.ghl_location
            ),
            "point store.path at this account's database, or fix the tokens and ghl.location_id",
        ),
        Err(e) => report.push(check, Outcome::Fail, e.to_string(), "check store.path"),
    }
}

fn named_in_config(engine: &Engine, report: &mut DoctorReport, seen: &Seen) {
    let scope = &engine.settings.scope;
    if let Some(label) = &scope.trengo_label {
        let found = seen
            .labels
            .iter()
            .any(|l| l.name.as_deref().map(Tag::new).as_ref() == Some(label));
        let (outcome, todo) = match (found, engine.settings.create_labels) {
            (true, _) => (Outcome::Ok, String::new()),
            (false, true) => (Outcome::Note, "it is created on first use".to_string()),
            (false, false) => (
                Outcome::Fail,
                "create the label in Trengo, or fix link.trengo_label".to_string(),
            ),
        };
        report.push(
            "config link.trengo_label",
            outcome,
            format!(
                "label \"{label}\" {}",
                if found {
                    "exists"
                } else {
                    "not found among the account's labels"
                }
            ),
            todo,
        );
    }
    let visible: BTreeSet<i64> = seen.channels.iter().map(|c| c.id).collect();
    let named: BTreeSet<(String, i64)> = scope
        .trengo_channels
        .iter()
        .map(|c| ("link.trengo_channels".to_string(), *c))
        .chain(
            scope
                .trengo_channel_id
                .map(|c| ("link.trengo_channel_id".to_string(), c)),
        )
        .collect();
    for (key, id) in named {
        let check = format!("config {key}");
        if visible.contains(&id) {
            let kind = seen
                .channels
                .iter()
                .find(|c| c.id == id)
                .and_then(|c| c.kind.clone())
                .unwrap_or_default();
            report.push(
                &check,
                Outcome::Ok,
                format!("channel {id} ({kind}) is visible"),
                "",
            );
        } else {
            report.push(
                &check,
                Outcome::Fail,
                format!(
                    "channel {id} is not among the {} channels this token sees",
                    visible.len()
                ),
                "fix the channel id, or use a token of a user who has access to the channel \
                 (a token sees only its user's channels, and tickets there would be missed)",
            );
        }
    }
    if let Some(tag) = &scope.ghl_tag {
        report.push(
            "config link.ghl_tag",
            Outcome::Note,
            format!("tag \"{tag}\": GHL contacts carry tags by name, nothing to look up"),
            "",
        );
    }
    for (trengo_email, ghl_email) in &engine.settings.assignee_aliases {
        let check = format!("config assignee.users {trengo_email}");
        let in_trengo = seen.trengo_users.iter().any(|u| {
            u.email
                .as_deref()
                .is_some_and(|e| e.trim().eq_ignore_ascii_case(trengo_email))
        });
        let in_ghl = seen
            .ghl_user_emails
            .as_ref()
            .map(|set| set.contains(&ghl_email.trim().to_lowercase()));
        let (outcome, found) = match (in_trengo, in_ghl) {
            (true, Some(true)) => (
                Outcome::Ok,
                format!("{trengo_email} ⇄ {ghl_email}: both users exist"),
            ),
            (true, None) => (Outcome::Skip, "GHL users could not be read".to_string()),
            (false, _) => (
                Outcome::Fail,
                format!("no Trengo user has the e-mail {trengo_email}"),
            ),
            (true, Some(false)) => (
                Outcome::Fail,
                format!("no GHL user has the e-mail {ghl_email}"),
            ),
        };
        let todo = if outcome == Outcome::Fail {
            "fix the pair under [assignee.users], or add the user"
        } else {
            ""
        };
        report.push(&check, outcome, found, todo);
    }
}

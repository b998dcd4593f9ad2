//! `doctor --probe-writes --ticket ID`: a reversible edit on a ticket the user names, to learn
//! what the references leave open (trengo-api.md §3.4 item 4, §4.3):
//!
//! 1. attach a label the ticket does not carry (never the sync label), read the ticket, detach
//!    it, read again: does a label change move `updated_at`?
//! 2. add an internal note (agents see it, the customer never does), read the ticket: does a
//!    note move `updated_at`? The note's answer carries its naive `created_at` next to its Unix
//!    time: the account's UTC offset, measured exactly.
//!
//! What it learned goes to the store ([`crate::store::facts`]): the engine can read
//! [`crate::store::facts::learned_bumps`] to skip sweeps the poll makes needless, and the
//! daemon's start compares the offset with `trengo.timezone`. The note stays (Trengo has no
//! reliable way to take a message back); the label leaves as it came.

use serde_json::Value;

use super::{DoctorReport, Outcome, settle_gap};
use crate::api::{ApiError, lenient};
use crate::store::{self, facts};
use crate::sync::engine::Engine;
use crate::sync::model::Tag;
use crate::trengo::zone::{self, ZoneEvidence, ZoneVerdict};

/// The text of the probe's internal note.
pub const PROBE_NOTE: &str =
    "trengo-sync doctor: probe note (checks which edits move updated_at); safe to ignore";

/// The ticket's `updated_at` exactly as the account renders it (naive, whole seconds).
async fn updated_at(engine: &Engine, ticket: i64) -> Result<Option<String>, ApiError> {
    let raw = engine.trengo.raw_get(&format!("/tickets/{ticket}")).await?;
    let raw = raw.get("data").filter(|d| d.is_object()).unwrap_or(&raw);
    Ok(raw
        .get("updated_at")
        .and_then(Value::as_str)
        .map(str::to_string))
}

fn later(before: &Option<String>, after: &Option<String>) -> bool {
    let parse = |t: &Option<String>| t.as_deref().and_then(lenient::parse_naive);
    match (parse(before), parse(after)) {
        (Some(b), Some(a)) => a > b,
        _ => before != after,
    }
}

async fn pause() {
    tokio::time::sleep(settle_gap().to_std().unwrap_or_default()).await;
}

pub(super) async fn run(engine: &Engine, ticket: i64, report: &mut DoctorReport) {
    let now = engine.clock.now();
    let labels = match engine.trengo.ticket(ticket).await {
        Ok(t) => t.labels,
        Err(e) => {
            report.push(
                "probe",
                Outcome::Fail,
                format!("cannot read ticket {ticket}: {e}"),
                "name a ticket this token can see",
            );
            return;
        }
    };
    let sync_label = engine.settings.scope.trengo_label.clone();
    let all: Vec<_> = {
        use futures::TryStreamExt as _;
        match engine.trengo.labels().try_collect::<Vec<_>>().await {
            Ok(all) => all,
            Err(e) => {
                report.push("probe", Outcome::Fail, e.to_string(), "see the lines above");
                return;
            }
        }
    };
    let on_ticket: Vec<i64> = labels.iter().map(|l| l.id).collect();
    let spare = all.iter().find(|l| {
        !on_ticket.contains(&l.id) && !l.archived && l.name.as_deref().map(Tag::new) != sync_label
    });
    let mut learned: Vec<(&str, String, String)> = Vec::new();
    match spare {
        None => report.push(
            "probe label",
            Outcome::Skip,
            format!("every usable label is on ticket {ticket} already, or is the sync label"),
            "name a ticket with fewer labels",
        ),
        Some(label) => match probe_label(engine, ticket, label.id).await {
            Ok((attach, detach)) => {
                let name = label.name.clone().unwrap_or_default();
                report.push(
                    "probe label",
                    Outcome::Ok,
                    format!(
                        "attaching label {name:?} {} updated_at, detaching it {} (ticket {ticket} \
                         is as it was)",
                        moves(attach),
                        moves(detach)
                    ),
                    if attach && detach {
                        ""
                    } else {
                        "label changes are seen by webhooks and sweeps, not by the poll"
                    },
                );
                learned.push((
                    facts::LABEL_BUMPS_UPDATED_AT,
                    (attach && detach).to_string(),
                    format!("label {} on ticket {ticket}", label.id),
                ));
            }
            Err(e) => report.push(
                "probe label",
                Outcome::Fail,
                e.to_string(),
                "the daemon attaches and detaches labels: fix the token's rights",
            ),
        },
    }
    match probe_note(engine, ticket).await {
        Ok((bumps, pair)) => {
            report.push(
                "probe note",
                Outcome::Ok,
                format!("an internal note {} updated_at", moves(bumps)),
                if bumps {
                    ""
                } else {
                    "notes are seen by webhooks and sweeps, not by the poll"
                },
            );
            learned.push((
                facts::NOTE_BUMPS_UPDATED_AT,
                bumps.to_string(),
                format!("internal note on ticket {ticket}"),
            ));
            match pair {
                Some(pair) => {
                    let evidence = ZoneEvidence {
                        pairs: vec![(pair, "the probe note".to_string())],
                        ..ZoneEvidence::default()
                    };
                    let (outcome, found, todo) =
                        match zone::judge(engine.trengo.zone(), &evidence, now) {
                            ZoneVerdict::Mismatch {
                                how, suggestion, ..
                            } => (
                                Outcome::Fail,
                                how,
                                format!("set trengo.timezone = \"{suggestion}\""),
                            ),
                            _ => (
                                Outcome::Ok,
                                format!(
                                    "the probe note shows the account at UTC{}, as {} is",
                                    zone::fmt_offset(pair.offset_secs()),
                                    engine.trengo.zone().name()
                                ),
                                String::new(),
                            ),
                        };
                    report.push("probe zone", outcome, found, todo);
                    learned.push((
                        facts::TRENGO_UTC_OFFSET_SECS,
                        pair.offset_secs().to_string(),
                        format!("probe note on ticket {ticket}"),
                    ));
                }
                None => report.push(
                    "probe zone",
                    Outcome::Warn,
                    "the note's answer has no naive created_at next to created_at_time".into(),
                    "the zone could not be measured; check trengo.timezone by hand",
                ),
            }
        }
        Err(e) => report.push(
            "probe note",
            Outcome::Fail,
            e.to_string(),
            "the daemon writes internal notes: fix the token's rights",
        ),
    }
    let count = learned.len();
    let stored = engine
        .store
        .call(move |s| {
            let tx = s.transaction()?;
            for (key, value, detail) in &learned {
                store::facts::put(&tx, key, value, detail, now)?;
            }
            tx.commit()?;
            Ok(())
        })
        .await;
    match stored {
        Ok(()) => report.push(
            "probe stored",
            Outcome::Ok,
            format!("{count} fact(s) stored for the engine and the start check"),
            "",
        ),
        Err(e) => report.push(
            "probe stored",
            Outcome::Fail,
            e.to_string(),
            "check store.path",
        ),
    }
}

fn moves(bumps: bool) -> &'static str {
    if bumps { "moves" } else { "does not move" }
}

/// Attach, read, detach, read: whether each moved `updated_at`.
async fn probe_label(engine: &Engine, ticket: i64, label: i64) -> Result<(bool, bool), ApiError> {
    let before = updated_at(engine, ticket).await?;
    pause().await;
    engine.trengo.attach_label(ticket, label).await?;
    let attached = updated_at(engine, ticket).await;
    pause().await;
    // Detach even when the read failed: the ticket must be left as it was.
    engine.trengo.detach_label(ticket, label).await?;
    let attached = attached?;
    let detached = updated_at(engine, ticket).await?;
    Ok((later(&before, &attached), later(&attached, &detached)))
}

/// Adds the probe note; whether it moved `updated_at`, and the zone pair of its answer.
async fn probe_note(
    engine: &Engine,
    ticket: i64,
) -> Result<(bool, Option<zone::KnownPair>), ApiError> {
    let before = updated_at(engine, ticket).await?;
    pause().await;
    let answer = engine
        .trengo
        .add_internal_note_raw(ticket, PROBE_NOTE)
        .await?;
    let after = updated_at(engine, ticket).await?;
    Ok((
        later(&before, &after),
        zone::pair_from_created_message(&answer),
    ))
}

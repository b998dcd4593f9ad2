//! What `trengo-sync conflicts`, `resolve`, `retry` and `explain` show: the store's view of a
//! link (bases, comment pairs, held conflicts, retries, recent ledger), and for `explain` both
//! sides' current values read from the APIs.

use std::fmt::Write as _;

use crate::store::{self, Store};
use crate::sync::ItemKey;
use crate::sync::engine::Engine;
use crate::sync::policy::Field;

/// The held conflicts as a table.
pub fn conflicts_report(store: &Store) -> anyhow::Result<String> {
    let held = store::conflicts::list(store.conn())?;
    if held.is_empty() {
        return Ok("no conflicts are held\n".to_string());
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<6} {:<10} {:<24} {:<24} {:<24} detected",
        "link", "field", "base", "trengo", "ghl"
    );
    for h in &held {
        let base = h.base.as_ref().map_or("-".to_string(), |b| b.to_string());
        let _ = writeln!(
            out,
            "{:<6} {:<10} {:<24} {:<24} {:<24} {}",
            h.link_id.0, h.field, base, h.trengo_value, h.ghl_value, h.detected_at
        );
    }
    let _ = writeln!(
        out,
        "settle one with `trengo-sync resolve LINK FIELD --take trengo|ghl`"
    );
    Ok(out)
}

/// Settles one held conflict; the next pass carries the chosen value across.
pub fn resolve(
    store: &mut Store,
    link: i64,
    field: Field,
    take_trengo: bool,
    now: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<String> {
    let tx = store.transaction()?;
    let held =
        crate::sync::execute::resolve(&tx, store::links::LinkId(link), field, take_trengo, now)?;
    tx.commit()?;
    let (winner, value, other) = if take_trengo {
        ("Trengo", &held.trengo_value, "GHL")
    } else {
        ("GHL", &held.ghl_value, "Trengo")
    };
    Ok(format!(
        "link {link} {field}: {winner}'s value {value} wins; the next pass writes it to {other}\n"
    ))
}

/// `trengo-sync retry`: queues `items` (or, with `all`, every parked item) again, due at
/// `now` with a fresh count of attempts; the daemon's next pass reads them. An item not in the
/// retry queue is an error naming it.
pub fn requeue(
    store: &Store,
    items: &[String],
    all: bool,
    now: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<String> {
    let conn = store.conn();
    let queued = if all {
        store::retries::requeue_parked(conn, now)?
    } else {
        if items.is_empty() {
            anyhow::bail!(
                "name the items to queue again (as `trengo-sync status` lists them), or pass --all \
                 for every parked item"
            );
        }
        let mut missing = Vec::new();
        for item in items {
            if !store::retries::requeue(conn, item, now)? {
                missing.push(item.as_str());
            }
        }
        if !missing.is_empty() {
            anyhow::bail!(
                "not in the retry queue: {} (`trengo-sync status` lists the items that are); \
                 the others were queued again",
                missing.join(", ")
            );
        }
        items.to_vec()
    };
    let mut out = String::new();
    if queued.is_empty() {
        let _ = writeln!(out, "no parked item to queue again");
    }
    for item in queued {
        let _ = writeln!(out, "queued again: {item} (the next pass reads it)");
    }
    Ok(out)
}

/// Everything known about one link: the store's records and both sides' current values.
pub async fn explain(engine: &Engine, link: i64) -> anyhow::Result<String> {
    let id = store::links::LinkId(link);
    let (record, bases, comments, held, retries, ledger, (unlinked, pauses), pairs) = engine
        .store
        .call(move |s| {
            let c = s.conn();
            let record = store::links::get(c, id)?;
            let bases = store::bases::for_link(c, id)?;
            let comments = store::comments::for_link(c, id)?;
            let held: Vec<_> = store::conflicts::list(c)?
                .into_iter()
                .filter(|h| h.link_id == id)
                .collect();
            let retries = store::retries::all(c)?;
            let ledger = store::ledger::recent(c, Some(id), 10)?;
            let controls = (store::controls::unlinked(c, id)?, store::controls::all(c)?);
            // The contact pairs of the link's GHL contact, with their bases and last writes.
            let mut pairs = Vec::new();
            if let Some(r) = &record {
                for p in store::pairs::of_ghl(c, &r.ghl_contact_id)? {
                    let bases = store::pairs::bases(c, p.id)?;
                    let recent = store::ledger::recent_of_pair(c, p.id, 5)?;
                    pairs.push((p, bases, recent));
                }
            }
            Ok((
                record, bases, comments, held, retries, ledger, controls, pairs,
            ))
        })
        .await?;
    let Some(record) = record else {
        anyhow::bail!("there is no link {link}; `trengo-sync status` counts the links");
    };
    let mut out = String::new();
    let _ = writeln!(
        out,
        "link {link}: Trengo ticket #{} ⇄ GHL task {} of contact {} ({:?}, {:?}, since {})",
        record.ticket_id,
        record.task_id,
        record.ghl_contact_id,
        record.origin,
        record.state,
        record.created_at
    );
    if let Some(why) = &record.gone {
        let _ = writeln!(
            out,
            "  gone: {why}. The link ended; nothing was deleted, and it is never read again."
        );
    }
    if let Some(why) = &unlinked {
        let _ = writeln!(
            out,
            "  unlinked by hand: {why}. Nothing is synced; `trengo-sync relink {link}` brings it back."
        );
    }
    if let Some((_, p)) = pauses.links.get(&id) {
        let _ = writeln!(
            out,
            "  paused ({}) since {}; `trengo-sync resume {link}` lifts it.",
            p.direction, p.since
        );
    }
    if let Some(p) = &pauses.daemon {
        let _ = writeln!(
            out,
            "  the whole daemon is paused ({}) since {}; `trengo-sync resume` lifts it.",
            p.direction, p.since
        );
    }
    let _ = writeln!(out, "\ncurrent values");
    match engine.trengo.ticket(record.ticket_id).await {
        Ok(t) => {
            let labels: Vec<String> = crate::sync::views::labels(&t)
                .into_iter()
                .map(|l| l.to_string())
                .collect();
            let _ = writeln!(
                out,
                "  Trengo: status {}, labels [{}], assignee {:?}, updated {:?}",
                t.status,
                labels.join(", "),
                t.user_id,
                t.updated_at
            );
        }
        Err(e) => {
            let _ = writeln!(out, "  Trengo: cannot read the ticket: {e}");
        }
    }
    match engine.ghl.tasks(&record.ghl_contact_id).await {
        Ok(tasks) => match tasks.iter().find(|t| t.id == record.task_id) {
            Some(t) => {
                let _ = writeln!(
                    out,
                    "  GHL task: completed {}, assignee {:?}, title {:?}",
                    t.completed, t.assigned_to, t.title
                );
            }
            None => {
                let _ = writeln!(out, "  GHL task: not found on the contact (deleted?)");
            }
        },
        Err(e) => {
            let _ = writeln!(out, "  GHL task: cannot read the contact's tasks: {e}");
        }
    }
    if let Ok(c) = engine.ghl.contact(&record.ghl_contact_id).await {
        let _ = writeln!(
            out,
            "  GHL contact tags: [{}], updated {:?}",
            c.tags.join(", "),
            c.date_updated
        );
    }
    let _ = writeln!(out, "\nbases (last synced values)");
    for b in &bases {
        let _ = writeln!(out, "  {:<12} {} (at {})", b.field, b.value, b.updated_at);
    }
    let _ = writeln!(out, "\nnotes paired: {}", comments.len());
    for (p, bases, recent) in &pairs {
        let _ = writeln!(
            out,
            "\ncontact pair {}: GHL contact {} ⇄ Trengo contact {} (made from a {}, since {}{})",
            p.id,
            p.ghl_contact_id,
            p.trengo_contact_id,
            match p.origin {
                store::pairs::PairOrigin::Link => "link",
                store::pairs::PairOrigin::Tag => "tag",
            },
            p.created_at,
            p.welcome_ticket_id
                .map(|t| format!("; welcome ticket #{t}"))
                .unwrap_or_default()
        );
        for (field, value) in bases {
            let _ = writeln!(out, "  {field}: {value}");
        }
        for e in recent {
            let _ = writeln!(
                out,
                "  {} {:?} {} → {}: {} → {}",
                e.at,
                e.kind,
                e.field.clone().unwrap_or_default(),
                e.side.clone().unwrap_or_default(),
                e.old_value.clone().unwrap_or_default(),
                e.new_value.clone().unwrap_or_default()
            );
        }
    }
    if !held.is_empty() {
        let _ = writeln!(out, "\nheld conflicts");
        for h in &held {
            let _ = writeln!(
                out,
                "  {}: trengo {} vs ghl {}",
                h.field, h.trengo_value, h.ghl_value
            );
        }
    }
    let mine = [
        ItemKey::Ticket(record.ticket_id).stored(),
        ItemKey::Contact(record.ghl_contact_id.clone()).stored(),
        ItemKey::Pair(record.ghl_contact_id.clone()).stored(),
    ];
    let pending: Vec<_> = retries.iter().filter(|r| mine.contains(&r.item)).collect();
    if !pending.is_empty() {
        let _ = writeln!(out, "\npending errors");
        for r in pending {
            let when = match r.parked_at {
                Some(at) => format!(
                    "parked at {at}, not retried on its own: `trengo-sync retry {}`",
                    r.item
                ),
                None => format!("next at {}", r.next_at),
            };
            let _ = writeln!(
                out,
                "  {} ({} attempts, {when}): {}",
                r.item, r.attempts, r.reason
            );
        }
    }
    let _ = writeln!(out, "\nlast actions");
    for e in &ledger {
        let _ = writeln!(
            out,
            "  {} {:?} {}",
            e.at,
            e.kind,
            e.op.clone().or(e.detail.clone()).unwrap_or_default()
        );
    }
    Ok(out)
}

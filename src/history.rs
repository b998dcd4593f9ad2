//! `trengo-sync history`: what crossed, when, which way, and which conflicts were settled and
//! how, read from the ledger across all links.
//!
//! Read-only: the store is opened with [`Store::open_read_only`], so it runs beside the daemon
//! and never changes the file. Entries come oldest first, narrowed by link, by time
//! (`--since` a date, a time or a duration back from now) and by field; `--json` prints one
//! array of objects for scripts.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{Value, json};

use crate::store::Store;
use crate::store::ledger::{self, Entry, EntryKind};
use crate::store::links::LinkId;

/// `--since`: a point in time, or a span back from now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Since {
    /// From this time on.
    At(DateTime<Utc>),
    /// From this long ago on.
    Ago(Duration),
}

impl Since {
    /// The time it names, `now` being now.
    pub fn resolve(self, now: DateTime<Utc>) -> DateTime<Utc> {
        match self {
            Since::At(at) => at,
            Since::Ago(span) => chrono::Duration::from_std(span)
                .ok()
                .and_then(|d| now.checked_sub_signed(d))
                .unwrap_or(DateTime::<Utc>::MIN_UTC),
        }
    }
}

/// Reads `--since`: an RFC 3339 time (`2026-05-01T08:00:00Z`), a date (`2026-05-01`,
/// midnight UTC), or a duration back from now (`30m`, `24h`, `7d`).
pub fn parse_since(text: &str) -> Result<Since, String> {
    let text = text.trim();
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Ok(Since::At(at.with_timezone(&Utc)));
    }
    if let Ok(day) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Ok(Since::At(day.and_time(chrono::NaiveTime::MIN).and_utc()));
    }
    humantime::parse_duration(text)
        .map(Since::Ago)
        .map_err(|_| {
            format!(
                "expected a date (`2026-05-01`), a time (`2026-05-01T08:00:00Z`) or a duration \
             back from now (`24h`, `7d`), found `{text}`"
            )
        })
}

/// What `history` shows: every narrowing is optional.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// One link only.
    pub link: Option<i64>,
    /// Entries at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// One field only (`status`, `tags`, `comments`, `assignee`).
    pub field: Option<String>,
}

/// The matching entries of the store at `path`, oldest first, read without writing.
pub fn read(path: &Path, filter: &Filter) -> anyhow::Result<Vec<Entry>> {
    let store = Store::open_read_only(path)?;
    Ok(ledger::matching(
        store.conn(),
        filter.link.map(LinkId),
        filter.since,
        filter.field.as_deref(),
    )?)
}

fn side_name(side: Option<&str>) -> &'static str {
    match side {
        Some("ghl") => "GHL",
        Some("trengo") => "Trengo",
        _ => "?",
    }
}

fn value(v: Option<&Value>) -> String {
    v.map_or_else(|| "(none)".to_string(), Value::to_string)
}

/// One entry in words: which way it went (or what was decided) and what.
fn describe(e: &Entry) -> String {
    match e.kind {
        EntryKind::Applied => {
            let what =
                e.op.as_deref()
                    .or(e.detail.as_deref())
                    .unwrap_or("a change");
            let values = match (&e.old_value, &e.new_value) {
                (Some(old), Some(new)) => format!(" ({old} → {new})"),
                _ => String::new(),
            };
            format!("→ {:<7} {what}{values}", side_name(e.side.as_deref()))
        }
        EntryKind::ConflictSettled => format!(
            "conflict settled by policy: {}'s value won; the losing value {} is kept here",
            side_name(e.side.as_deref()),
            value(e.losing_value.as_ref())
        ),
        EntryKind::ConflictHeld => format!(
            "conflict held for a person: {}",
            e.detail.as_deref().unwrap_or("both sides changed")
        ),
        EntryKind::ConflictResolved => format!(
            "conflict resolved by hand: {}'s value {} won over {}",
            side_name(e.side.as_deref()),
            value(e.new_value.as_ref()),
            value(e.losing_value.as_ref())
        ),
        EntryKind::Brake => format!(
            "brake: the pass stopped, nothing written: {}",
            e.detail.as_deref().unwrap_or("too many links would close")
        ),
        EntryKind::Unlinked => format!(
            "unlinked: {}",
            e.detail
                .as_deref()
                .unwrap_or("left scope; nothing was deleted")
        ),
    }
}

/// The entries as lines for a person: time (UTC), link, field, then what happened.
pub fn render_text(entries: &[Entry], filter: &Filter) -> String {
    if entries.is_empty() {
        let mut narrowed = Vec::new();
        if let Some(link) = filter.link {
            narrowed.push(format!("link {link}"));
        }
        if let Some(field) = &filter.field {
            narrowed.push(format!("field {field}"));
        }
        if let Some(since) = filter.since {
            narrowed.push(format!("since {}", since.format("%Y-%m-%d %H:%M:%S UTC")));
        }
        return if narrowed.is_empty() {
            "the ledger is empty: nothing has crossed yet\n".to_string()
        } else {
            format!("nothing in the ledger for {}\n", narrowed.join(", "))
        };
    }
    let mut out = String::new();
    for e in entries {
        let link = e
            .link_id
            .map_or_else(|| "-".to_string(), |l| format!("link {}", l.0));
        let _ = writeln!(
            out,
            "{}  {link:<9} {:<9} {}",
            e.at.format("%Y-%m-%d %H:%M:%S UTC"),
            e.field.as_deref().unwrap_or("-"),
            describe(e)
        );
    }
    out
}

/// The entries as one JSON array; `direction` is `to_trengo` or `to_ghl` for applied
/// changes, and `null` for decisions.
pub fn render_json(entries: &[Entry]) -> String {
    let items: Vec<Value> = entries
        .iter()
        .map(|e| {
            let direction = match (e.kind, e.side.as_deref()) {
                (EntryKind::Applied, Some("ghl")) => json!("to_ghl"),
                (EntryKind::Applied, Some("trengo")) => json!("to_trengo"),
                _ => Value::Null,
            };
            json!({
                "at": e.at.to_rfc3339(),
                "kind": e.kind.as_str(),
                "link": e.link_id.map(|l| l.0),
                "field": e.field,
                "direction": direction,
                "side": e.side,
                "op": e.op,
                "old_value": e.old_value,
                "new_value": e.new_value,
                "losing_value": e.losing_value,
                "detail": e.detail,
                "summary": describe(e),
            })
        })
        .collect();
    let mut text = serde_json::to_string_pretty(&Value::Array(items)).unwrap_or_default();
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_reads_a_date_a_time_and_a_duration_back() {
        let now = DateTime::parse_from_rfc3339("2026-05-10T12:00:00Z")
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default();
        let day = parse_since("2026-05-01").map(|s| s.resolve(now));
        assert_eq!(
            day.map(|t| t.to_rfc3339()),
            Ok("2026-05-01T00:00:00+00:00".into())
        );
        let at = parse_since("2026-05-01T08:30:00Z").map(|s| s.resolve(now));
        assert_eq!(
            at.map(|t| t.to_rfc3339()),
            Ok("2026-05-01T08:30:00+00:00".into())
        );
        let ago = parse_since("2d").map(|s| s.resolve(now));
        assert_eq!(
            ago.map(|t| t.to_rfc3339()),
            Ok("2026-05-08T12:00:00+00:00".into())
        );
        assert!(parse_since("last tuesday").is_err_and(|e| e.contains("`7d`")));
    }

    #[test]
    fn a_settled_conflict_says_who_won_and_keeps_the_losing_value() {
        let at = DateTime::parse_from_rfc3339("2026-05-10T12:00:00Z")
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default();
        let settled = Entry::new(EntryKind::ConflictSettled, at)
            .link(LinkId(4))
            .field("status")
            .side("trengo")
            .losing(json!(true));
        let text = render_text(&[settled], &Filter::default());
        assert_eq!(
            text,
            "2026-05-10 12:00:00 UTC  link 4    status    conflict settled by policy: Trengo's \
             value won; the losing value true is kept here\n"
        );
    }
}

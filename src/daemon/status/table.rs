//! The status report as the aligned, readable table `trengo-sync status` prints.

use std::fmt::Write as _;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{ReportSource, StatusReport};

/// ", showing 51–100" when a list is longer than what the report holds of it.
fn shown(report: &StatusReport, listed: usize, total: u64) -> String {
    if listed as u64 == total {
        return String::new();
    }
    let from = report.page.offset + 1;
    if listed == 0 {
        return format!(", none shown from {from} on");
    }
    format!(", showing {from}–{}", report.page.offset + listed)
}

/// The report as the readable table `trengo-sync status` prints.
pub fn render_table(report: &StatusReport) -> String {
    let mut out = String::new();
    let source = match report.source {
        ReportSource::Daemon => "live from the running daemon",
        ReportSource::Store => "from the store; the daemon is not running",
    };
    let _ = writeln!(
        out,
        "trengo-sync {} status at {} ({source})",
        report.version,
        stamp(report.now)
    );
    match &report.readiness {
        Some(r) if r.ready => out.push_str("Ready: yes\n"),
        Some(r) => {
            out.push_str("Ready: no\n");
            for reason in &r.reasons {
                let _ = writeln!(out, "  - {reason}");
            }
        }
        None => out.push_str("Ready: unknown (only the running daemon knows)\n"),
    }
    if let Some(alarm) = report.trengo_poll.as_ref().and_then(|p| p.alarm.as_ref()) {
        let _ = writeln!(out, "Trengo poll alarm: {alarm}");
    }

    match (&report.paused.daemon, report.paused.since) {
        (Some(direction), since) => {
            let _ = writeln!(
                out,
                "Paused: {direction} since {} (`trengo-sync resume` lifts it)",
                since.map_or_else(|| "-".into(), stamp)
            );
        }
        (None, _) => out.push_str("Paused: no\n"),
    }
    for l in &report.paused.links {
        let _ = writeln!(
            out,
            "  link {} paused {} since {}",
            l.link_id,
            l.direction,
            stamp(l.since)
        );
    }
    if report.paused.held_items > 0 {
        let _ = writeln!(
            out,
            "  {} items held by a pause; they cross when it is lifted",
            report.paused.held_items
        );
    }

    out.push_str("\nStreams\n");
    let rows = report.streams.iter().map(|s| {
        vec![
            s.stream.clone(),
            s.cursor.clone(),
            s.lag_secs.map_or_else(|| "-".into(), secs),
            stamp(s.updated_at),
        ]
    });
    table(&mut out, &["STREAM", "CURSOR", "LAG", "MOVED AT"], rows);

    out.push_str("\nJobs\n");
    let rows = report.jobs.iter().map(|j| {
        vec![
            j.name.clone(),
            j.last_outcome.clone().unwrap_or_else(|| "-".into()),
            j.last_started.map_or_else(|| "-".into(), stamp),
            j.last_duration_ms
                .map_or_else(|| "-".into(), |ms| format!("{:.1}s", ms as f64 / 1000.0)),
            j.runs.map_or_else(|| "-".into(), |n| n.to_string()),
            j.skipped.to_string(),
            if j.in_flight { "yes" } else { "no" }.into(),
            j.last_counts
                .as_ref()
                .map_or_else(|| "-".into(), |c| c.to_string()),
        ]
    });
    let heads = [
        "JOB",
        "OUTCOME",
        "LAST START",
        "DURATION",
        "RUNS",
        "SKIPPED",
        "RUNNING",
        "COUNTS",
    ];
    table(&mut out, &heads, rows);

    if let Some(oauth) = &report.oauth {
        let _ = writeln!(out, "\n{}", oauth.describe());
    }

    let _ = writeln!(
        out,
        "\nLinks: {} active, {} out of scope ({} of them gone: ticket or task deleted, merged or \
         not visible; {} unlinked by hand)",
        report.links.active, report.links.out_of_scope, report.links.gone, report.links.unlinked
    );
    if report.links.contact_pairs > 0 {
        let _ = writeln!(
            out,
            "Contact pairs: {} (`trengo-sync explain LINK` shows a link's pairs and their fields)",
            report.links.contact_pairs
        );
    }

    let _ = writeln!(
        out,
        "\nConflicts held: {}{} (`trengo-sync conflicts` shows both values)",
        report.conflicts_total,
        shown(report, report.conflicts.len(), report.conflicts_total)
    );
    let rows = report.conflicts.iter().map(|c| {
        vec![
            c.link_id.to_string(),
            c.ticket_id.map_or_else(|| "-".into(), |t| t.to_string()),
            c.task_id.clone().unwrap_or_else(|| "-".into()),
            c.field.clone(),
            stamp(c.detected_at),
        ]
    });
    let heads = ["LINK", "TICKET", "TASK", "FIELD", "SINCE"];
    table(&mut out, &heads, rows);

    let _ = writeln!(
        out,
        "\nRetry queue: {}{} (stuck: {}, failing for more than {} or parked; parked on this \
         page: {}; `trengo-sync retry ITEM` queues one again)",
        report.retries_total,
        shown(report, report.retries.len(), report.retries_total),
        report.stuck_total,
        secs(i64::try_from(report.stuck_after_secs).unwrap_or(i64::MAX)),
        report
            .retries
            .iter()
            .filter(|r| r.parked_at.is_some())
            .count()
    );
    let rows = report.retries.iter().map(|r| {
        let stuck = report.stuck.iter().any(|s| s.item == r.item);
        vec![
            r.item.clone(),
            r.attempts.to_string(),
            stamp(r.first_failed_at),
            if r.parked_at.is_some() {
                "-".to_string()
            } else {
                stamp(r.next_at)
            },
            if r.parked_at.is_some() {
                "parked"
            } else if stuck {
                "stuck"
            } else {
                "retrying"
            }
            .into(),
            r.reason.clone(),
        ]
    });
    let heads = [
        "ITEM",
        "ATTEMPTS",
        "FAILING SINCE",
        "NEXT TRY",
        "",
        "REASON",
    ];
    table(&mut out, &heads, rows);

    if report.source == ReportSource::Daemon {
        out.push_str("\nRate budgets\n");
        let rows = report.budgets.iter().map(|b| {
            vec![
                b.api.clone(),
                b.remaining.to_string(),
                format!("{} per {}s", b.limit, b.window_secs),
                b.daily_remaining
                    .map_or_else(|| "-".into(), |d| d.to_string()),
                b.blocked_for_secs
                    .map_or_else(|| "-".into(), |s| format!("{s:.0}s")),
            ]
        });
        table(
            &mut out,
            &["API", "LEFT", "LIMIT", "LEFT TODAY", "HELD BACK"],
            rows,
        );

        out.push_str("\nBackfill\n");
        let rows = report.backfill.iter().map(|b| {
            vec![
                b.stream.clone(),
                format!("{}/{}", b.done, b.total_estimate),
                b.percent.map_or_else(|| "-".into(), |p| format!("{p:.0}%")),
                b.rate_per_sec
                    .map_or_else(|| "-".into(), |r| format!("{r:.1}/s")),
                match (b.finished_at, b.eta_secs) {
                    (Some(_), _) => "done".into(),
                    (None, Some(eta)) => secs(i64::try_from(eta).unwrap_or(i64::MAX)),
                    (None, None) => "-".into(),
                },
            ]
        });
        table(&mut out, &["STREAM", "DONE", "SHARE", "RATE", "ETA"], rows);
    }
    out
}

fn stamp(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

fn secs(n: i64) -> String {
    if n < 0 {
        return format!("{n}s (ahead of this clock)");
    }
    humantime::format_duration(Duration::from_secs(n.unsigned_abs())).to_string()
}

/// Writes an aligned table, or `  (none)` when there are no rows.
fn table(out: &mut String, heads: &[&str], rows: impl Iterator<Item = Vec<String>>) {
    let rows: Vec<Vec<String>> = rows.collect();
    if rows.is_empty() {
        out.push_str("  (none)\n");
        return;
    }
    let mut widths: Vec<usize> = heads.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |out: &mut String, cells: &mut dyn Iterator<Item = &str>| {
        let mut text = String::from(" ");
        for (cell, w) in cells.zip(&widths) {
            let _ = write!(text, " {cell:<w$}");
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(out, &mut heads.iter().copied());
    for row in &rows {
        line(out, &mut row.iter().map(String::as_str));
    }
}

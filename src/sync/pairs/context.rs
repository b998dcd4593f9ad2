//! The computed context agents see in Trengo contact fields (GHL → Trengo only): the GHL
//! contact's web link, its next appointment, its open tasks and the next one due, and its
//! managed tags. Pure: GHL's answers in, the text of each field out.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use crate::ghl::{Appointment, Task};
use crate::sync::model::{Tag, TagRule};

/// Appointment statuses that will not happen (ghl-api.md §6 `appointmentStatus`).
const NOT_HAPPENING: &[&str] = &["cancelled", "canceled", "noshow", "invalid"];

/// The web link of a GHL contact: the template with `{location_id}` and `{contact_id}`.
pub fn web_link(template: &str, location_id: &str, contact_id: &str) -> String {
    template
        .replace("{location_id}", location_id)
        .replace("{contact_id}", contact_id)
}

/// The next appointment that starts at or after `now` and will happen:
/// `Title — 2026-12-08 14:30 (Europe/Amsterdam), confirmed`; empty when there is none.
pub fn next_appointment(appointments: &[Appointment], now: DateTime<Utc>, zone: Tz) -> String {
    let next = appointments
        .iter()
        .filter(|a| {
            a.status()
                .is_none_or(|s| !NOT_HAPPENING.contains(&s.to_ascii_lowercase().as_str()))
        })
        .filter_map(|a| a.start_time.map(|t| (t, a)))
        .filter(|(t, _)| *t >= now)
        .min_by_key(|(t, a)| (*t, a.id.clone()));
    let Some((start, a)) = next else {
        return String::new();
    };
    let title = a.title.as_deref().map(str::trim).filter(|t| !t.is_empty());
    let when = start.with_timezone(&zone).format("%Y-%m-%d %H:%M");
    let mut out = format!("{} — {when} ({zone})", title.unwrap_or("Appointment"));
    if let Some(status) = a.status() {
        out.push_str(", ");
        out.push_str(status);
    }
    out
}

/// The contact's open tasks: `3 open; next due 2026-12-08 09:00: Call back`; `none open`
/// when there are none.
pub fn open_tasks(tasks: &[Task], zone: Tz) -> String {
    let open: Vec<&Task> = tasks.iter().filter(|t| !t.completed).collect();
    if open.is_empty() {
        return "none open".into();
    }
    let next = open
        .iter()
        .filter_map(|t| t.due_date.map(|d| (d, *t)))
        .min_by_key(|(d, t)| (*d, t.id.clone()));
    match next {
        Some((due, t)) => format!(
            "{} open; next due {}: {}",
            open.len(),
            due.with_timezone(&zone).format("%Y-%m-%d %H:%M"),
            t.title.as_deref().unwrap_or("(untitled)").trim()
        ),
        None => format!("{} open", open.len()),
    }
}

/// The contact's managed tags, sorted, comma-separated.
pub fn managed_tags(tags: &[String], rule: &TagRule) -> String {
    let mut managed: Vec<String> = tags
        .iter()
        .map(|t| Tag::new(t))
        .filter(|t| rule.is_managed(t))
        .map(|t| t.to_string())
        .collect();
    managed.sort();
    managed.dedup();
    managed.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn appointment(id: &str, start: &str, status: &str) -> Appointment {
        serde_json::from_value(serde_json::json!({
            "id": id, "title": format!("Call {id}"), "appointmentStatus": status,
            "startTime": start,
        }))
        .unwrap()
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn the_next_appointment_skips_past_and_cancelled_ones_and_shows_the_accounts_zone() {
        let list = [
            appointment("a", "2026-12-01T10:00:00Z", "booked"),
            appointment("b", "2026-12-09T10:00:00Z", "confirmed"),
            appointment("c", "2026-12-08T10:00:00Z", "cancelled"),
        ];
        let text = next_appointment(
            &list,
            at("2026-12-05T00:00:00Z"),
            chrono_tz::Europe::Amsterdam,
        );
        assert_eq!(
            text,
            "Call b — 2026-12-09 11:00 (Europe/Amsterdam), confirmed"
        );
        assert_eq!(
            next_appointment(&[], at("2026-12-05T00:00:00Z"), chrono_tz::UTC),
            ""
        );
    }

    #[test]
    fn open_tasks_count_the_open_ones_and_name_the_next_due() {
        let tasks: Vec<Task> = serde_json::from_value(serde_json::json!([
            {"id": "1", "title": "Call back", "dueDate": "2026-12-08T08:00:00Z", "completed": false},
            {"id": "2", "title": "Later", "dueDate": "2026-12-09T08:00:00Z", "completed": false},
            {"id": "3", "title": "Done", "dueDate": "2026-12-01T08:00:00Z", "completed": true},
        ]))
        .unwrap();
        assert_eq!(
            open_tasks(&tasks, chrono_tz::UTC),
            "2 open; next due 2026-12-08 08:00: Call back"
        );
        assert_eq!(open_tasks(&tasks[2..], chrono_tz::UTC), "none open");
    }
}

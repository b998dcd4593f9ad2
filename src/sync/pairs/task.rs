//! A linked task's details in Trengo ticket custom fields (`[contacts.task]`): its due date
//! both ways (an agent who edits the field moves the task's due date), and its title GHL →
//! Trengo. Pure: views in, writes out.
//!
//! The due date is compared in one form, `YYYY-MM-DD HH:MM` in the Trengo zone, which is what
//! the field shows; an agent may type a date alone (`2026-12-24`: 09:00 that day). Its base is
//! the link's `task_due` base. The title has no base: it is written when the field differs.

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, TimeZone as _, Utc};
use chrono_tz::Tz;

use crate::sync::model::LinkId;
use crate::sync::plan::fields::{Change, three_way};

/// One link's task details as both sides hold them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskView {
    /// The link.
    pub link: LinkId,
    /// Its ticket.
    pub ticket_id: i64,
    /// Its task's contact.
    pub contact_id: String,
    /// Its task.
    pub task_id: String,
    /// The ticket's due field, as text (`None`: no due field mapped).
    pub ticket_due: Option<String>,
    /// The ticket's title field, as text (`None`: no title field mapped).
    pub ticket_title: Option<String>,
    /// The task's due date.
    pub task_due: Option<DateTime<Utc>>,
    /// The task's title.
    pub task_title: String,
    /// The due date as last synced (the `task_due` base).
    pub base_due: Option<String>,
}

/// A write of the task details.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskWrite {
    /// A ticket field gets a value.
    TicketField {
        /// The link.
        link: LinkId,
        /// The ticket.
        ticket_id: i64,
        /// `due` or `title`.
        what: &'static str,
        /// What it shows now.
        old: String,
        /// What it gets.
        value: String,
    },
    /// The task's due date moves.
    TaskDue {
        /// The link.
        link: LinkId,
        /// The task's contact.
        contact_id: String,
        /// The task.
        task_id: String,
        /// The due date it had.
        old: Option<DateTime<Utc>>,
        /// The due date it gets.
        due: DateTime<Utc>,
    },
}

/// What a pass does to the task details of a contact's links.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskPlan {
    /// The writes.
    pub writes: Vec<TaskWrite>,
    /// The due bases to record once the writes landed.
    pub bases: Vec<(LinkId, String)>,
    /// Links whose due field cannot be read: link, message naming the value.
    pub errors: Vec<(LinkId, String)>,
}

/// The form a due date is compared and shown in.
pub fn show_due(due: Option<DateTime<Utc>>, zone: Tz) -> String {
    due.map(|d| d.with_timezone(&zone).format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_default()
}

/// Reads a due field: `YYYY-MM-DD HH:MM`, `YYYY-MM-DDTHH:MM`, or a date alone (09:00), in
/// `zone`; empty is no due date.
pub fn read_due(text: &str, zone: Tz) -> Result<Option<DateTime<Utc>>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(Some(t.with_timezone(&Utc)));
    }
    let local = ["%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M:%S"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(text, f).ok())
        .or_else(|| {
            ["%Y-%m-%d", "%d-%m-%Y", "%d/%m/%Y"]
                .iter()
                .find_map(|f| NaiveDate::parse_from_str(text, f).ok())
                .and_then(|d| NaiveTime::from_hms_opt(9, 0, 0).map(|t| d.and_time(t)))
        });
    let Some(local) = local else {
        return Err(format!(
            "`{text}` is not a due date: write YYYY-MM-DD HH:MM (times in {zone}), or a date alone"
        ));
    };
    zone.from_local_datetime(&local)
        .earliest()
        .map(|t| Some(t.with_timezone(&Utc)))
        .ok_or_else(|| format!("`{text}` does not exist in {zone} (a clock change skips it)"))
}

/// Plans the task details of the given links.
pub fn plan_tasks(views: &[TaskView], zone: Tz) -> TaskPlan {
    let mut plan = TaskPlan::default();
    for v in views {
        if let Some(current) = &v.ticket_title
            && current.trim() != v.task_title.trim()
        {
            plan.writes.push(TaskWrite::TicketField {
                link: v.link,
                ticket_id: v.ticket_id,
                what: "title",
                old: current.clone(),
                value: v.task_title.trim().to_string(),
            });
        }
        let Some(text) = &v.ticket_due else {
            continue;
        };
        let trengo_due = match read_due(text, zone) {
            Ok(d) => d,
            Err(e) => {
                plan.errors.push((
                    v.link,
                    format!("ticket {} field task due: {e}", v.ticket_id),
                ));
                continue;
            }
        };
        let (trengo, ghl) = (show_due(trengo_due, zone), show_due(v.task_due, zone));
        let to_trengo = |plan: &mut TaskPlan| {
            plan.writes.push(TaskWrite::TicketField {
                link: v.link,
                ticket_id: v.ticket_id,
                what: "due",
                old: text.clone(),
                value: ghl.clone(),
            });
            plan.bases.push((v.link, ghl.clone()));
        };
        // A new base takes the task's due date: GHL sets it when the task is made, and an
        // empty ticket field is only the field not filled in yet.
        let base = v
            .base_due
            .clone()
            .or_else(|| (trengo.is_empty()).then(String::new));
        match three_way(base.as_ref(), &trengo, &ghl) {
            Change::None => {}
            Change::BothSame => plan.bases.push((v.link, ghl.clone())),
            Change::Ghl => to_trengo(&mut plan),
            Change::Trengo | Change::Conflict => match trengo_due {
                // The agent's edit is the newer: a due date is only set by hand in GHL.
                Some(due) => {
                    plan.writes.push(TaskWrite::TaskDue {
                        link: v.link,
                        contact_id: v.contact_id.clone(),
                        task_id: v.task_id.clone(),
                        old: v.task_due,
                        due,
                    });
                    plan.bases.push((v.link, trengo.clone()));
                }
                // Cleared in Trengo: GHL tasks always have a due date, so show it again.
                None => to_trengo(&mut plan),
            },
        }
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    const AMS: Tz = chrono_tz::Europe::Amsterdam;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn view(ticket_due: &str, task_due: &str, base: Option<&str>) -> TaskView {
        TaskView {
            link: LinkId(1),
            ticket_id: 10,
            contact_id: "c".into(),
            task_id: "t".into(),
            ticket_due: Some(ticket_due.into()),
            ticket_title: None,
            task_due: Some(at(task_due)),
            task_title: "Call".into(),
            base_due: base.map(str::to_string),
        }
    }

    #[test]
    fn a_new_link_shows_the_tasks_due_date_in_the_trengo_zone() {
        let plan = plan_tasks(&[view("", "2026-12-08T08:00:00Z", None)], AMS);
        assert_eq!(
            plan.writes,
            vec![TaskWrite::TicketField {
                link: LinkId(1),
                ticket_id: 10,
                what: "due",
                old: String::new(),
                value: "2026-12-08 09:00".into()
            }]
        );
    }

    #[test]
    fn an_agent_editing_the_field_moves_the_task() {
        let plan = plan_tasks(
            &[view(
                "2026-12-24",
                "2026-12-08T08:00:00Z",
                Some("2026-12-08 09:00"),
            )],
            AMS,
        );
        assert!(
            matches!(&plan.writes[0], TaskWrite::TaskDue { due, .. } if *due == at("2026-12-24T08:00:00Z"))
        );
        assert_eq!(
            plan.bases,
            vec![(LinkId(1), "2026-12-24 09:00".to_string())]
        );
    }

    #[test]
    fn an_unreadable_due_field_is_an_error_naming_the_value() {
        let plan = plan_tasks(&[view("soon", "2026-12-08T08:00:00Z", None)], AMS);
        assert!(plan.writes.is_empty());
        assert!(plan.errors[0].1.contains("`soon`"));
    }

    #[test]
    fn the_title_is_written_only_when_it_differs() {
        let mut v = view(
            "2026-12-08 09:00",
            "2026-12-08T08:00:00Z",
            Some("2026-12-08 09:00"),
        );
        v.ticket_title = Some("Call".into());
        assert!(plan_tasks(std::slice::from_ref(&v), AMS).writes.is_empty());
        v.ticket_title = Some("Old".into());
        assert_eq!(plan_tasks(&[v], AMS).writes.len(), 1);
    }
}

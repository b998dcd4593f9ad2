//! The planner's rules (sync-model.md §3–4), one behaviour per test. The properties over a
//! model of both sides are in `planner_properties.rs`.

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, Utc};
use serde_json::json;
use trengo_sync::sync::marker;
use trengo_sync::sync::*;

// ---------------------------------------------------------------- builders

fn at(minutes: i64) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-03-01T12:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
        + Duration::minutes(minutes)
}

fn tags(names: &[&str]) -> BTreeSet<Tag> {
    names.iter().map(|n| Tag::new(n)).collect()
}

fn ticket(id: i64, status: TicketStatus, labels: &[&str]) -> TicketView {
    TicketView {
        id,
        status,
        labels: tags(labels),
        assignee: None,
        updated_at: at(0),
        subject: Some(format!("Ticket {id}")),
        notes: Vec::new(),
    }
}

fn task(id: &str, contact: &str, completed: bool) -> TaskView {
    TaskView {
        id: id.to_owned(),
        contact_id: contact.to_owned(),
        completed,
        assignee: None,
        title: format!("Task {id}"),
        body: String::new(),
    }
}

/// A link in sync: its status base matches both sides.
fn link(id: i64, ticket: TicketView, task: TaskView) -> LinkView {
    let done = StatusTable::default().is_done(ticket.status);
    LinkView {
        link: LinkId(id),
        created_at: at(-60),
        in_scope: true,
        bases: LinkBases {
            status: Some(done),
            assignee: Some(None),
        },
        ticket,
        task,
        comments: Vec::new(),
        held: Vec::new(),
        gone: None,
    }
}

fn contact(id: &str, tag_names: &[&str]) -> ContactView {
    ContactView {
        id: id.to_owned(),
        tags: tags(tag_names),
        updated_at: Some(at(0)),
        notes: Vec::new(),
    }
}

fn group(contact: ContactView, tag_base: Option<&[&str]>, links: Vec<LinkView>) -> ContactGroup {
    ContactGroup {
        contact,
        tag_base: tag_base.map(tags),
        links,
        partial: false,
    }
}

fn settings() -> PlanSettings {
    PlanSettings {
        tags: TagRule::with_prefix("trengo:"),
        ..PlanSettings::default()
    }
}

fn input(contacts: Vec<ContactGroup>) -> PlanInput {
    PlanInput {
        now: at(10),
        contacts,
        candidates: Vec::new(),
        settings: settings(),
    }
}

fn writes(plan: &Plan) -> Vec<Op> {
    plan.ops().filter(|op| op.is_write()).cloned().collect()
}

fn all_ops(plan: &Plan) -> Vec<Op> {
    plan.ops().cloned().collect()
}

fn one_link(status: TicketStatus, completed: bool, base: Option<bool>) -> PlanInput {
    let mut l = link(1, ticket(11, status, &[]), task("t1", "c1", completed));
    l.bases.status = base;
    input(vec![group(contact("c1", &[]), Some(&[]), vec![l])])
}

// ---------------------------------------------------------------- status

#[test]
fn trengo_close_completes_task() {
    let plan = plan(&one_link(TicketStatus::Closed, false, Some(false)));
    assert_eq!(
        all_ops(&plan),
        vec![
            Op::SetTaskCompleted {
                link: LinkId(1),
                contact_id: "c1".into(),
                task_id: "t1".into(),
                completed: true
            },
            Op::SetLinkBase {
                link: LinkId(1),
                field: Field::Status,
                value: json!(true)
            },
        ]
    );
    assert_eq!(plan.items[0].item, ItemKey::Ticket(11));
}

#[test]
fn ghl_completion_closes_ticket() {
    let cases = [
        // (ticket status, task completed, base, expected write)
        (
            TicketStatus::Open,
            true,
            Some(false),
            Op::CloseTicket {
                link: LinkId(1),
                ticket_id: 11,
            },
        ),
        (
            TicketStatus::Assigned,
            true,
            Some(false),
            Op::CloseTicket {
                link: LinkId(1),
                ticket_id: 11,
            },
        ),
        (
            TicketStatus::Closed,
            false,
            Some(true),
            Op::ReopenTicket {
                link: LinkId(1),
                ticket_id: 11,
            },
        ),
        (
            TicketStatus::Invalid,
            false,
            Some(true),
            Op::ReopenTicket {
                link: LinkId(1),
                ticket_id: 11,
            },
        ),
    ];
    for (status, completed, base, expected) in cases {
        let plan = plan(&one_link(status, completed, base));
        assert_eq!(
            writes(&plan),
            vec![expected],
            "{status} / completed={completed}"
        );
    }
}

#[test]
fn both_sides_same_change_writes_nothing() {
    let plan = plan(&one_link(TicketStatus::Closed, true, Some(false)));
    assert_eq!(plan.write_count(), 0);
    assert_eq!(
        all_ops(&plan),
        vec![Op::SetLinkBase {
            link: LinkId(1),
            field: Field::Status,
            value: json!(true)
        }]
    );
    // In step already: nothing at all.
    assert!(plan_of(&one_link(TicketStatus::Closed, true, Some(true))).is_empty());
}

fn plan_of(input: &PlanInput) -> Plan {
    plan(input)
}

#[test]
fn first_sync_of_equal_status_only_records_the_base() {
    let plan = plan(&one_link(TicketStatus::Open, false, None));
    assert_eq!(plan.write_count(), 0);
    assert_eq!(plan.ops().count(), 1);
}

#[test]
fn newest_policy_prefers_later_side() {
    for (ticket_minute, contact_minute, expected) in [
        (5, 1, Side::Trengo),
        (1, 5, Side::Ghl),
        (3, 3, Side::Trengo), // a tie goes to Trengo
    ] {
        let mut input = one_link(TicketStatus::Closed, false, None);
        input.contacts[0].links[0].ticket.updated_at = at(ticket_minute);
        input.contacts[0].contact.updated_at = Some(at(contact_minute));
        let plan = plan(&input);
        let settle = plan
            .ops()
            .find_map(|op| match op {
                Op::SettleConflict { winner, losing, .. } => Some((*winner, losing.clone())),
                _ => None,
            })
            .expect("a settled conflict");
        assert_eq!(settle.0, expected);
        match expected {
            Side::Trengo => {
                assert_eq!(settle.1, json!(false), "GHL's open task goes to the ledger");
                assert!(matches!(
                    writes(&plan)[..],
                    [Op::SetTaskCompleted {
                        completed: true,
                        ..
                    }]
                ));
            }
            Side::Ghl => {
                assert_eq!(settle.1, json!(true));
                assert!(matches!(writes(&plan)[..], [Op::ReopenTicket { .. }]));
            }
        }
    }
}

#[test]
fn newest_policy_without_ghl_time_prefers_trengo() {
    let mut input = one_link(TicketStatus::Closed, false, None);
    input.contacts[0].contact.updated_at = None;
    assert!(matches!(
        writes(&plan(&input))[..],
        [Op::SetTaskCompleted { .. }]
    ));
}

#[test]
fn fixed_policies_pick_their_side() {
    for (policy, expected) in [(Policy::Trengo, Side::Trengo), (Policy::Ghl, Side::Ghl)] {
        let mut input = one_link(TicketStatus::Closed, false, None);
        input.contacts[0].links[0].ticket.updated_at = at(1);
        input.contacts[0].contact.updated_at = Some(at(9));
        input.settings.policies.status = policy;
        let winner = plan(&input).ops().find_map(|op| match op {
            Op::SettleConflict { winner, .. } => Some(*winner),
            _ => None,
        });
        assert_eq!(winner, Some(expected));
    }
}

#[test]
fn manual_policy_holds_conflict() {
    let mut input = one_link(TicketStatus::Closed, false, None);
    input.settings.policies.status = Policy::Manual;
    let plan = plan(&input);
    assert_eq!(
        all_ops(&plan),
        vec![Op::HoldConflict {
            link: LinkId(1),
            field: Field::Status,
            base: json!(null),
            trengo: json!(true),
            ghl: json!(false),
        }]
    );
    // Held: nothing for that field until `resolve`.
    input.contacts[0].links[0].held.push(Field::Status);
    assert!(plan_of(&input).is_empty());
}

#[test]
fn direction_trengo_to_ghl_never_writes_trengo() {
    let mut input = one_link(TicketStatus::Open, true, Some(false));
    input.settings.directions.status = Direction::TrengoToGhl;
    // GHL changed: stays unsynced, and the base does not move.
    assert!(plan_of(&input).is_empty());
    // Trengo changed: travels.
    let mut input = one_link(TicketStatus::Closed, false, Some(false));
    input.settings.directions.status = Direction::TrengoToGhl;
    assert!(matches!(
        writes(&plan(&input))[..],
        [Op::SetTaskCompleted { .. }]
    ));
    // A conflict GHL would win under `newest` writes nothing either.
    let mut input = one_link(TicketStatus::Closed, false, None);
    input.contacts[0].contact.updated_at = Some(at(30));
    input.settings.directions.status = Direction::TrengoToGhl;
    assert!(
        plan_of(&input)
            .ops()
            .all(|op| op.side() != Some(Side::Trengo))
    );
}

#[test]
fn direction_off_syncs_nothing() {
    let mut input = one_link(TicketStatus::Closed, false, Some(false));
    input.settings.directions.status = Direction::Off;
    assert!(plan_of(&input).is_empty());
}

#[test]
fn status_table_can_leave_tickets_open_on_completion() {
    let mut input = one_link(TicketStatus::Open, true, Some(false));
    input.settings.status_table.on_complete = TicketAction::Nothing;
    assert!(plan_of(&input).is_empty());
}

// ---------------------------------------------------------------- assignee

#[test]
fn assignee_follows_the_side_that_changed_when_enabled() {
    let mut input = one_link(TicketStatus::Open, false, Some(false));
    input.contacts[0].links[0].ticket.assignee = Some("Ann@Example.com".into());
    assert!(plan_of(&input).is_empty(), "assignee is off by default");
    input.settings.assignee_enabled = true;
    assert_eq!(
        writes(&plan(&input)),
        vec![Op::SetTaskAssignee {
            link: LinkId(1),
            contact_id: "c1".into(),
            task_id: "t1".into(),
            email: Some("ann@example.com".into()),
        }]
    );
}

#[test]
fn ghl_unassign_is_not_written_to_trengo() {
    let mut input = one_link(TicketStatus::Open, false, Some(false));
    input.settings.assignee_enabled = true;
    let l = &mut input.contacts[0].links[0];
    l.bases.assignee = Some(Some("ann@example.com".into()));
    l.ticket.assignee = Some("ann@example.com".into());
    l.task.assignee = None;
    // No unassign endpoint in Trengo: no write, and the base stays.
    assert!(plan_of(&input).is_empty());
    // An assignment made in GHL does travel.
    input.contacts[0].links[0].task.assignee = Some("bob@example.com".into());
    assert!(matches!(
        &writes(&plan(&input))[..],
        [Op::AssignTicket { email, .. }] if email == "bob@example.com"
    ));
}

// ---------------------------------------------------------------- tags

#[test]
fn trengo_label_change_reaches_contact_tags() {
    let l = link(
        1,
        ticket(11, TicketStatus::Open, &["trengo:hot"]),
        task("t1", "c1", false),
    );
    let input = input(vec![group(
        contact("c1", &["trengo:cold"]),
        Some(&["trengo:cold"]),
        vec![l],
    )]);
    assert_eq!(
        all_ops(&plan(&input)),
        vec![
            Op::RemoveContactTags {
                contact_id: "c1".into(),
                tags: tags(&["trengo:cold"])
            },
            Op::AddContactTags {
                contact_id: "c1".into(),
                tags: tags(&["trengo:hot"])
            },
            Op::SetTagBase {
                contact_id: "c1".into(),
                tags: tags(&["trengo:hot"])
            },
        ]
    );
}

#[test]
fn ghl_tag_add_goes_to_open_tickets_only() {
    let links = vec![
        link(
            1,
            ticket(11, TicketStatus::Open, &[]),
            task("t1", "c1", false),
        ),
        link(
            2,
            ticket(12, TicketStatus::Closed, &[]),
            task("t2", "c1", true),
        ),
        link(
            3,
            ticket(13, TicketStatus::Assigned, &[]),
            task("t3", "c1", false),
        ),
    ];
    let input = input(vec![group(
        contact("c1", &["trengo:vip"]),
        Some(&[]),
        links,
    )]);
    let attached: Vec<i64> = plan(&input)
        .ops()
        .filter_map(|op| match op {
            Op::AttachLabel { ticket_id, tag, .. } if tag.as_str() == "trengo:vip" => {
                Some(*ticket_id)
            }
            _ => None,
        })
        .collect();
    assert_eq!(attached, vec![11, 13]);
}

#[test]
fn ghl_tag_add_with_no_open_ticket_goes_to_the_most_recent() {
    let mut older = ticket(11, TicketStatus::Closed, &[]);
    older.updated_at = at(1);
    let mut newer = ticket(12, TicketStatus::Closed, &[]);
    newer.updated_at = at(5);
    let links = vec![
        link(1, older, task("t1", "c1", true)),
        link(2, newer, task("t2", "c1", true)),
    ];
    let input = input(vec![group(
        contact("c1", &["trengo:vip"]),
        Some(&[]),
        links,
    )]);
    assert_eq!(
        writes(&plan(&input)),
        vec![Op::AttachLabel {
            link: LinkId(2),
            ticket_id: 12,
            tag: Tag::new("trengo:vip")
        }]
    );
}

#[test]
fn ghl_tag_remove_detaches_from_every_ticket() {
    let links = vec![
        link(
            1,
            ticket(11, TicketStatus::Open, &["trengo:vip"]),
            task("t1", "c1", false),
        ),
        link(
            2,
            ticket(12, TicketStatus::Closed, &["trengo:vip"]),
            task("t2", "c1", true),
        ),
        link(
            3,
            ticket(13, TicketStatus::Open, &[]),
            task("t3", "c1", false),
        ),
    ];
    let input = input(vec![group(
        contact("c1", &[]),
        Some(&["trengo:vip"]),
        links,
    )]);
    let detached: Vec<i64> = writes(&plan(&input))
        .iter()
        .map(|op| match op {
            Op::DetachLabel { ticket_id, .. } => *ticket_id,
            other => panic!("unexpected write {other:?}"),
        })
        .collect();
    assert_eq!(detached, vec![11, 12]);
}

#[test]
fn label_removed_from_one_ticket_keeps_tag_while_another_carries_it() {
    let links = vec![
        link(
            1,
            ticket(11, TicketStatus::Open, &[]),
            task("t1", "c1", false),
        ),
        link(
            2,
            ticket(12, TicketStatus::Open, &["trengo:vip"]),
            task("t2", "c1", false),
        ),
    ];
    let input = input(vec![group(
        contact("c1", &["trengo:vip"]),
        Some(&["trengo:vip"]),
        links,
    )]);
    assert!(plan_of(&input).is_empty());
}

#[test]
fn closing_a_ticket_keeps_contact_tags() {
    let mut l = link(
        1,
        ticket(11, TicketStatus::Closed, &["trengo:vip"]),
        task("t1", "c1", false),
    );
    l.bases.status = Some(false);
    let input = input(vec![group(
        contact("c1", &["trengo:vip"]),
        Some(&["trengo:vip"]),
        vec![l],
    )]);
    let plan = plan(&input);
    assert!(
        plan.ops()
            .all(|op| !matches!(op, Op::RemoveContactTags { .. } | Op::DetachLabel { .. })),
        "{plan}"
    );
    assert!(matches!(writes(&plan)[..], [Op::SetTaskCompleted { .. }]));
}

#[test]
fn unmanaged_tags_are_never_touched() {
    let l = link(
        1,
        ticket(11, TicketStatus::Open, &["billing", "trengo:a"]),
        task("t1", "c1", false),
    );
    // Unmanaged on both sides and in a stale base: invisible.
    let input = input(vec![group(
        contact("c1", &["newsletter", "trengo:a"]),
        Some(&["trengo:a"]),
        vec![l],
    )]);
    assert!(plan_of(&input).is_empty());
}

#[test]
fn first_sync_unions_tags() {
    let l = link(
        1,
        ticket(11, TicketStatus::Open, &["trengo:a"]),
        task("t1", "c1", false),
    );
    let input = input(vec![group(contact("c1", &["trengo:b"]), None, vec![l])]);
    let plan = plan(&input);
    assert_eq!(
        all_ops(&plan),
        vec![
            Op::AddContactTags {
                contact_id: "c1".into(),
                tags: tags(&["trengo:a"])
            },
            Op::AttachLabel {
                link: LinkId(1),
                ticket_id: 11,
                tag: Tag::new("trengo:b")
            },
            Op::SetTagBase {
                contact_id: "c1".into(),
                tags: tags(&["trengo:a", "trengo:b"])
            },
        ]
    );
    // All tag ops of a contact form one item, so a failed label write never commits the base.
    assert_eq!(plan.items.len(), 1);
    assert_eq!(plan.items[0].item, ItemKey::Contact("c1".into()));
}

#[test]
fn tags_normalise_before_comparing() {
    let l = link(
        1,
        ticket(11, TicketStatus::Open, &[" Trengo:VIP "]),
        task("t1", "c1", false),
    );
    let input = input(vec![group(
        contact("c1", &["trengo:vip"]),
        Some(&["TRENGO:vip"]),
        vec![l],
    )]);
    assert!(plan_of(&input).is_empty());
}

// ---------------------------------------------------------------- comments

fn tnote(id: i64, body: &str, kind: NoteKind) -> TrengoNote {
    TrengoNote {
        message_id: id,
        body: body.into(),
        created_at: at(0),
        kind,
    }
}

fn gnote(id: &str, body: &str, minute: i64) -> GhlNote {
    GhlNote {
        id: id.into(),
        body: body.into(),
        date_added: at(minute),
    }
}

#[test]
fn trengo_internal_note_is_copied_with_marker() {
    let mut l = link(
        1,
        ticket(11, TicketStatus::Open, &[]),
        task("t1", "c1", false),
    );
    l.ticket
        .notes
        .push(tnote(500, "Called the customer", NoteKind::Internal));
    let input = input(vec![group(contact("c1", &[]), Some(&[]), vec![l])]);
    let ops = writes(&plan(&input));
    let [
        Op::CreateGhlNote {
            body,
            message_id: 500,
            ..
        },
    ] = &ops[..]
    else {
        panic!("{ops:?}")
    };
    assert!(body.starts_with("Called the customer"));
    assert_eq!(marker::trengo_source(body).map(|s| s.message_id), Some(500));
}

#[test]
fn customer_messages_stay_unless_enabled() {
    let mut l = link(
        1,
        ticket(11, TicketStatus::Open, &[]),
        task("t1", "c1", false),
    );
    l.ticket.notes = vec![
        tnote(1, "hello, my order?", NoteKind::CustomerInbound),
        tnote(2, "on its way", NoteKind::AgentOutbound),
    ];
    let mut input = input(vec![group(contact("c1", &[]), Some(&[]), vec![l])]);
    assert!(plan_of(&input).is_empty());
    input.settings.include_customer_messages = true;
    assert_eq!(plan(&input).write_count(), 2);
}

#[test]
fn note_with_marker_is_mapped_not_copied() {
    // A GHL note we made from Trengo message 500, and a Trengo note we made from GHL note "g1".
    let mut l = link(
        1,
        ticket(11, TicketStatus::Open, &[]),
        task("t1", "c1", false),
    );
    l.ticket.notes = vec![
        tnote(500, "original", NoteKind::Internal),
        tnote(
            501,
            &marker::with_ghl_marker("from ghl", "g1"),
            NoteKind::Internal,
        ),
    ];
    let mut c = contact("c1", &[]);
    c.notes = vec![
        gnote("g1", "from ghl", 5),
        gnote(
            "g2",
            &format!("<p>original</p><p>{}</p>", marker::trengo_marker(11, 500)),
            6,
        ),
    ];
    let input = input(vec![group(c, Some(&[]), vec![l])]);
    let plan = plan(&input);
    assert_eq!(plan.write_count(), 0, "{plan}");
    let mut mapped: Vec<(i64, String)> = plan
        .ops()
        .filter_map(|op| match op {
            Op::MapComment {
                message_id,
                note_id,
                ..
            } => Some((*message_id, note_id.clone())),
            _ => None,
        })
        .collect();
    mapped.sort();
    assert_eq!(mapped, vec![(500, "g2".into()), (501, "g1".into())]);
}

#[test]
fn mapped_notes_are_not_copied_again() {
    let mut l = link(
        1,
        ticket(11, TicketStatus::Open, &[]),
        task("t1", "c1", false),
    );
    l.ticket.notes = vec![tnote(500, "original", NoteKind::Internal)];
    l.comments = vec![(500, "g9".into())];
    let mut c = contact("c1", &[]);
    c.notes = vec![gnote("g9", "original (edited in GHL, marker lost)", 5)];
    assert!(plan_of(&input(vec![group(c, Some(&[]), vec![l])])).is_empty());
}

#[test]
fn ghl_note_routed_by_hash_ticket_id() {
    let links = vec![
        link(
            1,
            ticket(11, TicketStatus::Open, &[]),
            task("t1", "c1", false),
        ),
        link(
            2,
            ticket(12, TicketStatus::Closed, &[]),
            task("t2", "c1", true),
        ),
    ];
    let mut c = contact("c1", &[]);
    c.notes = vec![
        gnote("g1", "refund done for #12", 5),
        gnote("g2", "general remark, see #999", 5),
    ];
    let input = input(vec![group(c, Some(&[]), links)]);
    let routes: Vec<(String, i64)> = writes(&plan(&input))
        .into_iter()
        .map(|op| match op {
            Op::CreateTrengoNote {
                note_id,
                ticket_id,
                body,
                ..
            } => {
                assert_eq!(marker::ghl_source(&body), Some(note_id.clone()));
                (note_id, ticket_id)
            }
            other => panic!("unexpected write {other:?}"),
        })
        .collect();
    // Named ticket wins; an unknown number falls back to the open ticket.
    let mut routes = routes;
    routes.sort();
    assert_eq!(routes, vec![("g1".into(), 12), ("g2".into(), 11)]);
}

#[test]
fn ghl_note_goes_to_most_recent_open_ticket() {
    let mut a = ticket(11, TicketStatus::Open, &[]);
    a.updated_at = at(1);
    let mut b = ticket(12, TicketStatus::Open, &[]);
    b.updated_at = at(7);
    let mut closed = ticket(13, TicketStatus::Closed, &[]);
    closed.updated_at = at(9);
    let links = vec![
        link(1, a, task("t1", "c1", false)),
        link(2, b, task("t2", "c1", false)),
        link(3, closed, task("t3", "c1", true)),
    ];
    let mut c = contact("c1", &[]);
    c.notes = vec![gnote("g1", "note", 5)];
    let ops = writes(&plan(&input(vec![group(c, Some(&[]), links)])));
    assert!(matches!(
        ops[..],
        [Op::CreateTrengoNote { ticket_id: 12, .. }]
    ));
}

#[test]
fn ghl_notes_older_than_the_link_stay_as_history() {
    let l = link(
        1,
        ticket(11, TicketStatus::Open, &[]),
        task("t1", "c1", false),
    );
    let mut c = contact("c1", &[]);
    c.notes = vec![gnote("old", "before the link", -120)];
    assert!(plan_of(&input(vec![group(c, Some(&[]), vec![l])])).is_empty());
}

// ---------------------------------------------------------------- links

#[test]
fn leaving_scope_unlinks_only() {
    let mut l = link(
        1,
        ticket(11, TicketStatus::Closed, &["trengo:x"]),
        task("t1", "c1", false),
    );
    l.in_scope = false;
    l.bases.status = Some(false);
    l.ticket
        .notes
        .push(tnote(5, "late note", NoteKind::Internal));
    let input = input(vec![group(contact("c1", &[]), Some(&[]), vec![l])]);
    assert_eq!(all_ops(&plan(&input)), vec![Op::Unlink { link: LinkId(1) }]);
}

#[test]
fn ticket_entering_scope_is_linked() {
    let mut input = input(Vec::new());
    input.candidates.push(Candidate::Ticket {
        ticket: ticket(11, TicketStatus::Open, &[]),
        contact_email: Some("a@example.com".into()),
        contact_phone: None,
        contact_name: Some("Ann".into()),
        url: "https://app.trengo.com/tickets/11".into(),
    });
    assert_eq!(
        all_ops(&plan(&input)),
        vec![Op::LinkTicket {
            ticket_id: 11,
            email: Some("a@example.com".into()),
            phone: None,
            name: Some("Ann".into()),
            title: "Ticket 11".into(),
            url: "https://app.trengo.com/tickets/11".into(),
        }]
    );
}

#[test]
fn task_naming_a_ticket_is_adopted_not_duplicated() {
    let mut input = input(Vec::new());
    input.candidates = vec![
        Candidate::Ticket {
            ticket: ticket(11, TicketStatus::Open, &[]),
            contact_email: None,
            contact_phone: None,
            contact_name: None,
            url: "https://app.trengo.com/tickets/11".into(),
        },
        Candidate::Task {
            task: task("t1", "c1", false),
            contact: contact("c1", &[]),
            ticket_url_of_this_account: Some(11),
        },
        // A second task naming the same ticket is a duplicate: left alone.
        Candidate::Task {
            task: task("t2", "c1", false),
            contact: contact("c1", &[]),
            ticket_url_of_this_account: Some(11),
        },
    ];
    assert_eq!(
        all_ops(&plan(&input)),
        vec![Op::AdoptTask {
            task_id: "t1".into(),
            contact_id: "c1".into(),
            ticket_id: 11
        }]
    );
}

#[test]
fn ghl_task_gets_a_ticket_only_when_that_direction_is_configured() {
    let mut input = input(Vec::new());
    input.candidates = vec![Candidate::Task {
        task: task("t1", "c1", false),
        contact: contact("c1", &[]),
        ticket_url_of_this_account: None,
    }];
    assert!(plan_of(&input).is_empty());
    input.settings.ghl_to_trengo_links = true;
    assert!(matches!(all_ops(&plan(&input))[..], [Op::LinkTask { .. }]));
}

// ---------------------------------------------------------------- brake

fn many_links(n: i64, closed: i64) -> PlanInput {
    let links = (0..n)
        .map(|i| {
            let status = if i < closed {
                TicketStatus::Closed
            } else {
                TicketStatus::Open
            };
            let mut l = link(
                i,
                ticket(100 + i, status, &[]),
                task(&format!("t{i}"), "c1", false),
            );
            l.bases.status = Some(false);
            l
        })
        .collect();
    input(vec![group(contact("c1", &[]), Some(&[]), links)])
}

#[test]
fn mass_close_trips_brake() {
    let plan = plan(&many_links(40, 12));
    let brake = plan.brake.clone().expect("brake");
    assert_eq!(
        (brake.completions, brake.affected_links, brake.active_links),
        (12, 12, 40)
    );
    assert!(plan.to_string().contains("the executor writes nothing"));
}

#[test]
fn brake_stays_off_below_its_floor_or_fraction() {
    // 9 of 10: above the fraction but below the floor of 10.
    assert!(plan_of(&many_links(10, 9)).brake.is_none());
    // 10 of 50 is exactly 20%: not more than the fraction.
    assert!(plan_of(&many_links(50, 10)).brake.is_none());
}

#[test]
fn plan_display_lists_every_op_by_item() {
    let text = plan(&one_link(TicketStatus::Closed, false, Some(false))).to_string();
    assert!(text.contains("ticket #11:"), "{text}");
    assert!(text.contains("complete GHL task t1"), "{text}");
    assert_eq!(
        plan(&one_link(TicketStatus::Open, false, Some(false))).to_string(),
        "nothing to do: both sides agree\n"
    );
}

#[test]
fn newest_never_picks_a_value_that_cannot_travel() {
    // GHL unassigned later than Trengo reassigned: "nobody" cannot be written to Trengo, so the
    // conflict goes to Trengo instead of standing and flipping as timestamps move.
    let mut input = one_link(TicketStatus::Open, false, Some(false));
    input.settings.assignee_enabled = true;
    input.contacts[0].contact.updated_at = Some(at(30));
    let l = &mut input.contacts[0].links[0];
    l.bases.assignee = Some(Some("bob@example.com".into()));
    l.ticket.assignee = Some("ann@example.com".into());
    l.task.assignee = None;
    let ops = all_ops(&plan(&input));
    assert_eq!(
        ops[..2],
        [
            Op::SettleConflict {
                link: LinkId(1),
                field: Field::Assignee,
                winner: Side::Trengo,
                losing: json!(null),
            },
            Op::SetTaskAssignee {
                link: LinkId(1),
                contact_id: "c1".into(),
                task_id: "t1".into(),
                email: Some("ann@example.com".into()),
            },
        ]
    );
}

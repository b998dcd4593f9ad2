//! `conflicts` and `resolve` as a person uses them on a held conflict.

use chrono::Utc;
use serde_json::json;
use trengo_sync::inspect;
use trengo_sync::store::{
    self, Store,
    links::{NewLink, Origin},
};
use trengo_sync::sync::BaseName;
use trengo_sync::sync::policy::Field;

fn store_with_held_conflict(dir: &tempfile::TempDir) -> (Store, store::links::LinkId) {
    let mut s = Store::open(dir.path().join("state.sqlite")).unwrap();
    let now = Utc::now();
    let tx = s.transaction().unwrap();
    let link = store::links::insert(
        &tx,
        &NewLink {
            ticket_id: 42,
            task_id: "task-1".into(),
            ghl_contact_id: "c1".into(),
            trengo_contact_id: None,
            origin: Origin::Trengo,
        },
        now,
    )
    .unwrap();
    store::bases::put(
        &tx,
        link.id,
        BaseName::Assignee,
        &json!("ann@example.com"),
        now,
    )
    .unwrap();
    store::conflicts::hold(
        &tx,
        &store::conflicts::Held {
            link_id: link.id,
            field: "assignee".into(),
            base: Some(json!("ann@example.com")),
            trengo_value: json!("bob@example.com"),
            ghl_value: json!("cy@example.com"),
            detected_at: now,
        },
    )
    .unwrap();
    tx.commit().unwrap();
    (s, link.id)
}

#[test]
fn conflicts_lists_a_held_conflict_with_both_values() {
    let dir = tempfile::tempdir().unwrap();
    let (s, _) = store_with_held_conflict(&dir);
    let text = inspect::conflicts_report(&s).unwrap();
    assert!(text.contains("assignee"), "{text}");
    assert!(
        text.contains("bob@example.com") && text.contains("cy@example.com"),
        "{text}"
    );
}

#[test]
fn resolve_take_trengo_sets_the_base_to_ghls_value_so_trengo_wins_next_pass() {
    let dir = tempfile::tempdir().unwrap();
    let (mut s, link) = store_with_held_conflict(&dir);
    let text = inspect::resolve(&mut s, link.0, Field::Assignee, true, Utc::now()).unwrap();
    assert!(text.contains("Trengo's value"), "{text}");
    assert!(store::conflicts::list(s.conn()).unwrap().is_empty());
    let base = store::bases::get(s.conn(), link, BaseName::Assignee)
        .unwrap()
        .unwrap();
    assert_eq!(base.value, json!("cy@example.com"));
    let ledger = store::ledger::recent(s.conn(), Some(link), 5).unwrap();
    assert!(
        ledger
            .iter()
            .any(|e| e.kind == store::ledger::EntryKind::ConflictResolved)
    );
}

#[test]
fn resolve_without_a_held_conflict_says_how_to_list_them() {
    let dir = tempfile::tempdir().unwrap();
    let (mut s, link) = store_with_held_conflict(&dir);
    let err = inspect::resolve(&mut s, link.0, Field::Status, false, Utc::now()).unwrap_err();
    assert!(err.to_string().contains("trengo-sync conflicts"), "{err}");
}

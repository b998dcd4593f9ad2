//! Conflict policies (sync-model.md §4.1): newest, trengo, ghl, manual; the loser in the ledger.

use super::*;

/// Reassigns a settled link's ticket and task to two different agents at once (as the demo
/// does), then, when `later` is "ghl", has a person touch the GHL contact two seconds later on
/// the fakes' clock: reassigning a task moves no contact time (ghl-api.md §3.2), so without
/// that Trengo is the later side. Returns (Trengo's agent, GHL's agent).
fn assignee_conflict(
    world: &SimWorld,
    clock: &trengo_sync::clock::ManualClock,
    link: &Link,
    later: &str,
) -> (String, String) {
    clock.advance(chrono::Duration::seconds(2));
    let agents = world.reassign_both(link.ticket_id, &link.task_id).unwrap();
    if later == "ghl" {
        clock.advance(chrono::Duration::seconds(2));
        world
            .ghl()
            .add_contact_tag(&link.ghl_contact_id, "called-back")
            .unwrap();
    }
    agents
}

/// The latest settled-conflict ledger entry of a link: (winning side, losing value).
fn settled_conflict(dir: &tempfile::TempDir, link: &Link) -> (String, serde_json::Value) {
    let entries: Vec<_> = ledger(dir)
        .into_iter()
        .filter(|e| e.kind == EntryKind::ConflictSettled && e.link_id == Some(link.id))
        .collect();
    // Newest first: the conflict the test made, not one settled when the link was made.
    assert!(!entries.is_empty(), "no settled conflict in the ledger");
    assert_eq!(entries[0].field.as_deref(), Some("assignee"));
    (
        entries[0].side.clone().unwrap(),
        entries[0].losing_value.clone().unwrap(),
    )
}

async fn policy_case(
    policy: &str,
    later: &str,
) -> (
    String,
    String,
    (Option<String>, Option<String>),
    (String, serde_json::Value),
) {
    let (world, clock) = assignee_world(37).await;
    let dir = tempfile::tempdir().unwrap();
    let extra = format!("\n[conflicts]\nassignee = \"{policy}\"\n");
    let engine = settled(&world, &dir, &[], &extra).await;
    let link = open_link(&engine, &dir).await;
    let (to_t, to_g) = assignee_conflict(&world, &clock, &link, later);
    until_quiet(&engine, 4).await;
    let now = assignees(&world, &engine, &link).await;
    (to_t, to_g, now, settled_conflict(&dir, &link))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn newest_policy_gives_an_assignee_conflict_to_the_later_side_and_ledgers_the_loser() {
    let (to_t, to_g, now, (winner, losing)) = policy_case("newest", "trengo").await;
    assert_eq!(now, (Some(to_t.clone()), Some(to_t)));
    assert_eq!((winner.as_str(), losing), ("trengo", json!(to_g)));

    let (to_t, to_g, now, (winner, losing)) = policy_case("newest", "ghl").await;
    assert_eq!(now, (Some(to_g.clone()), Some(to_g)));
    assert_eq!((winner.as_str(), losing), ("ghl", json!(to_t)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trengo_policy_gives_an_assignee_conflict_to_trengo_even_when_ghl_changed_later() {
    let (to_t, to_g, now, (winner, losing)) = policy_case("trengo", "ghl").await;
    assert_eq!(now, (Some(to_t.clone()), Some(to_t)));
    assert_eq!((winner.as_str(), losing), ("trengo", json!(to_g)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ghl_policy_gives_an_assignee_conflict_to_ghl_even_when_trengo_changed_later() {
    let (to_t, to_g, now, (winner, losing)) = policy_case("ghl", "trengo").await;
    assert_eq!(now, (Some(to_g.clone()), Some(to_g)));
    assert_eq!((winner.as_str(), losing), ("ghl", json!(to_t)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manual_policy_holds_an_assignee_conflict_until_resolve_settles_it() {
    let (world, clock) = assignee_world(38).await;
    let dir = tempfile::tempdir().unwrap();
    let extra = "\n[conflicts]\nassignee = \"manual\"\n";
    let engine = settled(&world, &dir, &[], extra).await;
    let link = open_link(&engine, &dir).await;
    let (to_t, to_g) = assignee_conflict(&world, &clock, &link, "trengo");
    until_quiet(&engine, 4).await;
    until_quiet(&engine, 2).await;
    // Held: neither side is written, and `conflicts` lists both values.
    assert_eq!(
        assignees(&world, &engine, &link).await,
        (Some(to_t.clone()), Some(to_g.clone()))
    );
    let report = {
        let s = Store::open_read_only(dir.path().join("state.sqlite")).unwrap();
        inspect::conflicts_report(&s).unwrap()
    };
    assert!(report.contains(&to_t) && report.contains(&to_g), "{report}");
    assert!(
        ledger(&dir)
            .iter()
            .any(|e| e.kind == EntryKind::ConflictHeld)
    );

    // `resolve LINK assignee --take ghl`.
    {
        // As the command does: an edit of the store beside the running daemon.
        let mut s = Store::open_for_edit(dir.path().join("state.sqlite")).unwrap();
        inspect::resolve(
            &mut s,
            link.id.0,
            Field::Assignee,
            false,
            chrono::Utc::now(),
        )
        .unwrap();
    }
    until_quiet(&engine, 4).await;
    assert_eq!(
        assignees(&world, &engine, &link).await,
        (Some(to_g.clone()), Some(to_g))
    );
    assert!(
        ledger(&dir)
            .iter()
            .any(|e| e.kind == EntryKind::ConflictResolved)
    );
}

//! The backfill in chunks: a first Trengo poll over a few hundred existing tickets links them a
//! chunk at a time while the previous chunk's groups are read and settled. It must leave
//! nothing for the next GHL poll to read again (its own writes are recorded), still let a
//! user's edit through, and survive a crash at any point of the overlapping stages.

mod support;

use std::time::Duration;

use chrono::Utc;
use trengo_sync::sim::world::{LINK_LABEL, MANAGED_PREFIX, SimWorld, WorldOptions};
use trengo_sync::store::{self, Store};
use trengo_sync::sync::engine::{Engine, GHL_CURSOR, PassKind, PassOptions};

/// Tickets and people of the worlds here: more than one chunk of links (chunks hold 100).
const TICKETS: usize = 240;
const PEOPLE: usize = 50;

async fn world(seed: u64) -> SimWorld {
    let mut options = WorldOptions::unpaced(seed, TICKETS, PEOPLE);
    // The GHL search index still lags, but briefly, so a test can wait it out.
    options.ghl.index_lag = Duration::from_millis(50);
    let world = support::start_world(options).await;
    // Every ticket in scope, as on an account that labels all its tickets.
    let label = world.trengo().label_id(LINK_LABEL).unwrap();
    for id in world.trengo().ticket_ids() {
        let labels = world.trengo().ticket_json(id).unwrap()["labels"].clone();
        if !labels.as_array().unwrap().iter().any(|l| l["id"] == label) {
            world.trengo().add_label(id, label).unwrap();
        }
    }
    world
}

/// The GHL cursor set to now, as the daemon's first GHL poll at start leaves it: the next GHL
/// poll lists only the contacts changed since, which after a backfill are the ones it wrote.
fn ghl_cursor_now(dir: &tempfile::TempDir) {
    let mut s = Store::open(support::store_path(dir)).unwrap();
    let tx = s.transaction().unwrap();
    let now = Utc::now();
    store::cursors::put(&tx, GHL_CURSOR, &now.to_rfc3339(), now).unwrap();
    tx.commit().unwrap();
}

async fn backfill(engine: &Engine) {
    let report = engine
        .pass(PassKind::TrengoPoll, PassOptions::default())
        .await
        .unwrap();
    assert!(
        report.braked.is_none() && report.failed.is_empty(),
        "{report:?}"
    );
    assert!(
        report.plans.len() > 2,
        "the backfill ran in more than one chunk: {} plans",
        report.plans.len()
    );
}

/// Group reads made: a group read is the only thing that lists a contact's notes.
fn notes_reads(world: &SimWorld) -> u64 {
    world
        .ghl()
        .counter_snapshot()
        .count("GET /contacts/{contactId}/notes")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_ghl_poll_after_a_backfill_reads_no_group_again() {
    let world = world(31).await;
    let dir = tempfile::tempdir().unwrap();
    ghl_cursor_now(&dir);
    let engine = support::engine(&world, &dir).await;
    backfill(&engine).await;
    let links = support::links(&dir);
    assert!(links.len() > 100, "{} links", links.len());
    let wrote_tags = world
        .ghl()
        .counter_snapshot()
        .by_route
        .iter()
        .any(|(route, n)| route.starts_with("POST ") && route.ends_with("/tags") && *n > 0);
    assert!(
        wrote_tags,
        "the backfill wrote tags to contacts (or this test shows nothing)"
    );
    tokio::time::sleep(Duration::from_millis(200)).await; // the index lag

    let (trengo, notes) = (world.trengo().counters().total, notes_reads(&world));
    assert!(
        notes > 0,
        "the backfill read its groups (the count sees group reads)"
    );
    let report = engine
        .pass(PassKind::GhlPoll, PassOptions::default())
        .await
        .unwrap();
    assert_eq!(report.writes.trengo + report.writes.ghl, 0);
    assert_eq!(notes_reads(&world) - notes, 0, "no contact group was read");
    assert_eq!(
        world.trengo().counters().total - trengo,
        0,
        "no ticket was read"
    );
}

fn managed_tags(world: &SimWorld, contact: &str) -> Vec<String> {
    let contact = world.ghl().contact_json(contact).unwrap();
    contact["tags"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t.as_str())
        .filter(|t| t.starts_with(MANAGED_PREFIX))
        .map(str::to_string)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tag_removed_in_ghl_after_the_backfill_still_comes_off_the_tickets() {
    let world = world(32).await;
    let dir = tempfile::tempdir().unwrap();
    ghl_cursor_now(&dir);
    let engine = support::engine(&world, &dir).await;
    backfill(&engine).await;
    // A contact the backfill settled, its print recorded: the user edits it now, between the
    // backfill's writes and the next GHL poll.
    let links = support::links(&dir);
    let (contact, tag) = links
        .iter()
        .find_map(|l| {
            let tags = managed_tags(&world, &l.ghl_contact_id);
            Some((l.ghl_contact_id.clone(), tags.first()?.clone()))
        })
        .expect("a linked contact with a managed tag");
    world.ghl().remove_contact_tag(&contact, &tag).unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await; // the index lag

    let report = engine
        .pass(PassKind::GhlPoll, PassOptions::default())
        .await
        .unwrap();
    assert!(
        report.writes.trengo > 0,
        "the poll carried the removal: {report:?}"
    );
    for l in links.iter().filter(|l| l.ghl_contact_id == contact) {
        let labels = support::rules::labels(&engine, l.ticket_id).await;
        assert!(
            !labels.iter().any(|name| name.eq_ignore_ascii_case(&tag)),
            "ticket #{} still carries `{tag}`: {labels:?}",
            l.ticket_id
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_anywhere_in_the_chunked_backfill_resumes_without_duplicates() {
    // The uninterrupted backfill: its writes and links.
    let reference = world(33).await;
    let dir = tempfile::tempdir().unwrap();
    let first = support::engine(&reference, &dir).await;
    let total = support::first_pass_and_converge(&first).await.unwrap();
    let (expected_links, problems) = support::audit(&reference, &dir, &first).await;
    assert!(problems.is_empty(), "{problems:?}");
    assert!(expected_links > 100);

    // Early (the first chunk), in the overlapping stages, and near the end.
    for n in [7, total / 3, total / 2 + 1, total - 5] {
        let world = world(33).await;
        let dir = tempfile::tempdir().unwrap();
        let n = i64::try_from(n).unwrap();
        let crashing = support::engine_crashing_after(&world, &dir, Some(n)).await;
        assert!(
            support::first_pass_and_converge(&crashing).await.is_none(),
            "the crash switch at write {n} of {total} never fired"
        );
        drop(crashing);
        let restarted = support::engine(&world, &dir).await;
        support::first_pass_and_converge(&restarted).await.unwrap();
        let (links, problems) = support::audit(&world, &dir, &restarted).await;
        assert!(problems.is_empty(), "crash after write {n}: {problems:?}");
        assert_eq!(links, expected_links, "crash after write {n}: links differ");
    }
}

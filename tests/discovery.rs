//! Every change is seen, whatever the APIs bump (issue #12): scope discovery and change
//! detection from listings, `once` that converges and `plan` that previews and writes nothing.
//!
//! Each test makes its edits *after* the first pass, as a user's day goes, and most run under
//! both settings of every "moves `updated_at`/`dateUpdated`" switch of both fakes: off (the
//! default, pessimistic) the polls cannot see the edit, so only the sweep can.

#[path = "support/mod.rs"]
mod support;

use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::time::Duration;

use rand::SeedableRng as _;
use support::reliability::{Edit, OneWayEdits, apply, read_sides};
use support::rules::*;
use support::{links, spawn_daemon, wait_for, wait_until_writes_stop, world, write_config};
use trengo_sync::sim::ghl::GhlSwitches;
use trengo_sync::sim::world::{LINK_LABEL, LINK_TAG, SimWorld};
use trengo_sync::store::Store;
use trengo_sync::sync::BaseName;
use trengo_sync::sync::engine::{Engine, PassKind, PassOptions, PassReport};
use trengo_sync::sync::views::is_expected_print;

/// Sets every "an edit moves the watermark" switch of both fakes to `on`.
fn bumps(world: &SimWorld, on: bool) {
    let mut t = world.trengo().switches();
    t.label_bumps_updated_at = on;
    t.note_bumps_updated_at = on;
    t.message_bumps_updated_at = on;
    t.custom_field_bumps_updated_at = on;
    world.trengo().set_switches(&t);
    let g = GhlSwitches {
        task_completion_bumps_contact: on,
        note_bumps_contact: on,
        ..world.ghl().switches()
    };
    world.ghl().set_switches(g);
}

/// One whole cycle, as `once` runs it.
async fn cycle(engine: &Engine) -> PassReport {
    let report = engine
        .pass(PassKind::Cycle, PassOptions::default())
        .await
        .unwrap();
    assert!(report.braked.is_none(), "brake: {:?}", report.braked);
    report
}

/// Daemon sweep slices (within the sweep's budget share) until `done` holds, at most `max`.
async fn sweep_until(engine: &Engine, max: usize, mut done: impl AsyncFnMut() -> bool) -> bool {
    for _ in 0..max {
        let report = engine
            .pass(PassKind::Sweep, PassOptions::default())
            .await
            .unwrap();
        assert!(report.failed.is_empty(), "{:?}", report.failed);
        if done().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    false
}

/// An open ticket no link holds, untouched since the world was seeded.
fn unlinked_open_ticket(world: &SimWorld, dir: &tempfile::TempDir) -> i64 {
    let linked: BTreeSet<i64> = links(dir).iter().map(|l| l.ticket_id).collect();
    world
        .trengo()
        .ticket_ids()
        .into_iter()
        .find(|id| {
            !linked.contains(id) && link_of_ticket(dir, *id).is_none() && {
                let t = world.trengo().ticket_json(*id).unwrap();
                matches!(t["status"].as_str(), Some("OPEN" | "ASSIGNED"))
            }
        })
        .expect("the world has an unlinked open ticket")
}

/// A new task titled `title` on a contact outside the GHL link rule, left alone by a whole
/// cycle; returns the person and the task id.
async fn task_outside_the_rule(
    world: &SimWorld,
    engine: &Engine,
    dir: &tempfile::TempDir,
    title: &str,
) -> (trengo_sync::sim::world::WorldPerson, String) {
    let person = untagged_person(world);
    let made = world
        .ghl()
        .create_task(
            &person.ghl_contact_id,
            &serde_json::json!({ "title": title }),
        )
        .unwrap();
    let task_id = made["id"].as_str().unwrap().to_string();
    cycle(engine).await;
    assert!(
        link_of_task(dir, &task_id).is_none(),
        "a task outside the rule was linked"
    );
    (person, task_id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ticket_labelled_after_the_first_pass_is_linked_by_the_sweep_whatever_moves_updated_at() {
    for (seed, on) in [(201, false), (202, true)] {
        let world = world(seed, 16, 6).await;
        bumps(&world, on);
        let dir = tempfile::tempdir().unwrap();
        let engine = settled(&world, &dir, &[], "").await;
        let ticket = unlinked_open_ticket(&world, &dir);
        world
            .trengo()
            .add_label(ticket, label(&world, LINK_LABEL))
            .unwrap();
        let found = sweep_until(&engine, 30, async || link_of_ticket(&dir, ticket).is_some()).await;
        assert!(found, "bumps {on}: the labelled ticket was never linked");
        let link = link_of_ticket(&dir, ticket).unwrap();
        assert!(
            task(&engine, &link)
                .await
                .body
                .unwrap_or_default()
                .contains(&ticket.to_string())
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ticket_moved_into_a_linked_channel_is_linked_by_the_sweep() {
    let world = world(203, 16, 6).await;
    let dir = tempfile::tempdir().unwrap();
    let whatsapp = world.trengo().channel_ids()[1];
    let rule = format!("create_contacts = false\ntrengo_channels = [{whatsapp}]");
    let engine = settled(&world, &dir, &[("create_contacts = false", &rule)], "").await;
    let ticket = unlinked_open_ticket(&world, &dir);
    world.trengo().move_ticket(ticket, whatsapp).unwrap();
    let found = sweep_until(&engine, 30, async || link_of_ticket(&dir, ticket).is_some()).await;
    assert!(
        found,
        "the ticket moved into a linked channel was never linked"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ghl_task_given_the_title_prefix_on_an_untouched_contact_is_linked() {
    for (seed, on) in [(204, false), (205, true)] {
        let world = world(seed, 12, 6).await;
        bumps(&world, on);
        let dir = tempfile::tempdir().unwrap();
        let prefix = "create_contacts = false\nghl_title_prefix = \"[trengo]\"";
        let engine = settled(&world, &dir, &[("create_contacts = false", prefix)], "").await;
        let (_, task_id) = task_outside_the_rule(&world, &engine, &dir, "Call back").await;
        world
            .ghl()
            .rename_task(&task_id, "[trengo] Call back")
            .unwrap();
        let found = sweep_until(&engine, 30, async || link_of_task(&dir, &task_id).is_some()).await;
        assert!(found, "bumps {on}: the prefixed task was never linked");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ghl_contact_tagged_after_the_first_pass_gets_its_task_linked() {
    for (seed, on) in [(206, false), (207, true)] {
        let world = world(seed, 12, 6).await;
        bumps(&world, on);
        let dir = tempfile::tempdir().unwrap();
        let engine = settled(&world, &dir, &[], "").await;
        let (person, task_id) = task_outside_the_rule(&world, &engine, &dir, "Quote").await;
        world
            .ghl()
            .add_contact_tag(&person.ghl_contact_id, LINK_TAG)
            .unwrap();
        // Tagging moves the contact's `dateUpdated`: the GHL poll finds it once GHL's search
        // index has caught up (5 s in the fake), whatever the switches say.
        let mut found = false;
        for _ in 0..20 {
            cycle(&engine).await;
            if link_of_task(&dir, &task_id).is_some() {
                found = true;
                break;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        assert!(
            found,
            "bumps {on}: the tagged contact's task was never linked"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_completion_a_label_and_notes_that_move_no_watermark_cross_through_the_sweep() {
    let world = world(208, 12, 6).await;
    let dir = tempfile::tempdir().unwrap();
    let engine = settled(&world, &dir, &[], "").await;
    let all = links(&dir);
    assert!(all.len() >= 3, "the world needs three links");
    let (a, b, c) = (&all[0], &all[1], &all[2]);
    world.ghl().complete_task(&a.task_id).unwrap();
    world
        .trengo()
        .add_label(b.ticket_id, label(&world, "trengo:vip"))
        .unwrap();
    let trengo_note = world
        .trengo()
        .post_note(c.ticket_id, "seen by the sweep")
        .unwrap();
    let ghl_note = world
        .ghl()
        .add_note(&c.ghl_contact_id, &format!("about #{}", c.ticket_id))
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let crossed = sweep_until(&engine, 40, async || {
        let closed = ticket(&engine, a.ticket_id).await.status.is_done();
        let tags = engine.ghl.contact(&b.ghl_contact_id).await.unwrap().tags;
        let (to_ghl, to_trengo) = support::reliability::crossed_notes(&world, &engine).await;
        closed
            && tags.iter().any(|t| t == "trengo:vip")
            && to_ghl.contains(&trengo_note)
            && to_trengo.contains(&ghl_note)
    })
    .await;
    assert!(crossed, "a change that moves no watermark did not cross");
    let (_, duplicates) = support::audit(&world, &dir, &engine).await;
    assert!(duplicates.is_empty(), "{duplicates:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn once_repeated_after_random_edits_on_both_sides_converges_with_every_switch_off() {
    let world = world(209, 14, 6).await;
    bumps(&world, false);
    let dir = tempfile::tempdir().unwrap();
    let engine = settled(&world, &dir, &[], "").await;
    let all = links(&dir);
    assert!(all.len() >= 8, "the world needs links to edit");
    let mut rng = rand::rngs::StdRng::seed_from_u64(209);
    let mut edits = OneWayEdits::default();
    for _ in 0..60 {
        edits.make(&world, &all, &mut rng);
    }
    // Also edits that undo: a reopen and a tag removal, on links the one-way edits spare.
    apply(&world, &all, &Edit::RemoveTag(all.len() - 1, 0));
    let mut quiet = false;
    for _ in 0..8 {
        let report = cycle(&engine).await;
        if report.writes.trengo + report.writes.ghl == 0 && report.failed.is_empty() {
            quiet = true;
            break;
        }
    }
    assert!(
        quiet,
        "`once` repeated never reached a pass that writes nothing"
    );
    let sides = read_sides(&engine, &all).await;
    assert!(
        sides.disagreements().is_empty(),
        "{:?}",
        sides.disagreements()
    );
    assert!(
        edits.lost_fields(&sides).is_empty(),
        "{:?}",
        edits.lost_fields(&sides)
    );
    let lost = edits.lost_notes(&world, &engine).await;
    assert!(lost.is_empty(), "{lost:?}");
    let (_, duplicates) = support::audit(&world, &dir, &engine).await;
    assert!(duplicates.is_empty(), "{duplicates:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ticket_labelled_while_the_daemon_runs_is_linked() {
    let world = world(210, 16, 6).await;
    let dir = tempfile::tempdir().unwrap();
    let (config, _) = write_config(&world, &dir);
    let mut daemon = spawn_daemon(&config);
    wait_for("the first links", Duration::from_secs(60), async || {
        !support::reliability::links_so_far(&support::store_path(&dir)).is_empty()
    })
    .await;
    wait_until_writes_stop(&world, Duration::from_secs(6), Duration::from_secs(90)).await;
    let ticket = unlinked_open_ticket(&world, &dir);
    world
        .trengo()
        .add_label(ticket, label(&world, LINK_LABEL))
        .unwrap();
    wait_for(
        "the labelled ticket's link",
        Duration::from_secs(90),
        async || {
            support::reliability::links_so_far(&support::store_path(&dir))
                .iter()
                .any(|l| l.ticket_id == ticket)
        },
    )
    .await;
    let _ = daemon.kill();
    let _ = daemon.wait();
}

/// Runs `trengo-sync plan --config CONFIG`: exit code, stdout, stderr.
fn plan(config: &std::path::Path) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_trengo-sync"))
        .args(["plan", "--config", config.to_str().unwrap()])
        .env(
            "RUST_LOG",
            std::env::var("PLAN_LOG").unwrap_or("warn".into()),
        )
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The store file folded (its WAL checkpointed into it), then its bytes.
fn store_bytes(dir: &tempfile::TempDir) -> Vec<u8> {
    let path = support::store_path(dir);
    {
        let s = Store::open(&path).unwrap();
        s.conn()
            .execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
            .unwrap();
    }
    std::fs::read(&path).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_on_a_fresh_store_previews_the_first_pass_and_writes_nothing() {
    let world = world(211, 10, 5).await;
    let dir = tempfile::tempdir().unwrap();
    let (config, _) = write_config(&world, &dir);
    let writes = support::total_writes(&world);
    let (code, out, err) = plan(&config);
    assert_eq!(code, 0, "stdout: {out}\nstderr: {err}");
    assert!(
        out.contains("link"),
        "the first pass's links are not listed: {out}"
    );
    assert_eq!(
        support::total_writes(&world),
        writes,
        "plan wrote to an API"
    );
    assert!(
        !support::store_path(&dir).exists(),
        "plan created the store file"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_after_a_ghl_tag_change_lists_it_and_leaves_the_store_byte_identical() {
    let world = world(212, 10, 5).await;
    let dir = tempfile::tempdir().unwrap();
    let (config, _) = write_config(&world, &dir);
    {
        let engine = settled(&world, &dir, &[], "").await;
        drop(engine);
    }
    let link = links(&dir)[0].clone();
    world
        .ghl()
        .add_contact_tag(&link.ghl_contact_id, "trengo:plan-preview")
        .unwrap();
    // GHL's search index lags writes (5 s in the fake): `plan` sees what `once` would then.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let before = store_bytes(&dir);
    let writes = support::total_writes(&world);
    let (code, out, err) = plan(&config);
    assert_eq!(code, 0, "stdout: {out}\nstderr: {err}");
    assert!(
        out.contains("trengo:plan-preview"),
        "the tag change is not listed: {out}"
    );
    assert_eq!(
        support::total_writes(&world),
        writes,
        "plan wrote to an API"
    );
    assert_eq!(
        std::fs::read(support::store_path(&dir)).unwrap(),
        before,
        "plan changed the store"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_with_open_intents_after_a_crash_writes_nothing_and_once_then_duplicates_nothing() {
    let world = world(213, 10, 5).await;
    let dir = tempfile::tempdir().unwrap();
    let (config, _) = write_config(&world, &dir);
    {
        let engine = support::engine_crashing_after(&world, &dir, Some(2)).await;
        let crashed = engine.pass(PassKind::Poll, PassOptions::default()).await;
        assert!(crashed.is_err(), "the crash switch did not fire");
    }
    assert!(
        support::reliability::open_intents(&support::store_path(&dir)).unwrap_or(0) > 0,
        "the crash left no open intent"
    );
    let before = store_bytes(&dir);
    let writes = support::total_writes(&world);
    let (code, out, err) = plan(&config);
    assert_eq!(code, 0, "stdout: {out}\nstderr: {err}");
    assert_eq!(
        support::total_writes(&world),
        writes,
        "plan wrote to an API"
    );
    assert_eq!(
        std::fs::read(support::store_path(&dir)).unwrap(),
        before,
        "plan changed the store"
    );
    let engine = settled(&world, &dir, &[], "").await;
    let (_, duplicates) = support::audit(&world, &dir, &engine).await;
    assert!(duplicates.is_empty(), "{duplicates:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_against_a_store_of_another_account_is_refused_and_changes_nothing() {
    let (ours, theirs) = (world(214, 8, 4).await, world(215, 8, 4).await);
    let dir = tempfile::tempdir().unwrap();
    {
        let engine = settled(&ours, &dir, &[], "").await;
        drop(engine);
    }
    let before = store_bytes(&dir);
    let (config, _) = write_config(&theirs, &dir);
    let writes = support::total_writes(&theirs);
    let (code, out, err) = plan(&config);
    assert_ne!(code, 0, "plan ran against another account's store: {out}");
    assert!(
        err.contains("bound") || err.contains("account") || err.contains("location"),
        "the refusal does not say why: {err}"
    );
    assert_eq!(
        support::total_writes(&theirs),
        writes,
        "plan wrote to an API"
    );
    assert_eq!(
        std::fs::read(support::store_path(&dir)).unwrap(),
        before,
        "plan changed the store"
    );
}

/// Trengo ticket listings (`GET /api/v2/tickets`, the walk's and the poll's) served so far.
fn ticket_listings(world: &SimWorld) -> u64 {
    world.trengo().counters().count("GET /api/v2/tickets")
}

/// A new daemon process (a new engine: no cycle under way) runs sweep slices, half a second
/// apart, until it has read a Trengo listing or `slices` ran; returns the listings and slices.
async fn sweep_slices_listings(
    world: &SimWorld,
    dir: &tempfile::TempDir,
    slices: usize,
) -> (u64, usize) {
    let engine = support::engine(world, dir).await;
    world.trengo().reset_counters();
    for n in 1..=slices {
        let report = engine
            .pass(PassKind::Sweep, PassOptions::default())
            .await
            .unwrap();
        assert!(report.failed.is_empty(), "{:?}", report.failed);
        let listings = ticket_listings(world);
        if listings > 0 {
            return (listings, n);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    (0, slices)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_labels_and_notes_learned_to_move_updated_at_the_daemon_sweep_leaves_the_trengo_walk_out()
 {
    // Not learned: the daemon's sweep walks the Trengo listings.
    let world = world(231, 12, 4).await;
    let dir = tempfile::tempdir().unwrap();
    let engine = support::engine(&world, &dir).await;
    support::first_pass_and_converge(&engine).await.unwrap();
    drop(engine);
    let (listings, slices) = sweep_slices_listings(&world, &dir, 40).await;
    assert!(
        listings > 0,
        "the sweep read no Trengo listing in {slices} slices"
    );

    // Learned by `doctor --probe-writes` (both true): the polls see what the walk is for, so
    // a new cycle leaves it out; `once` still walks everything.
    let world = support::world(232, 12, 4).await;
    let dir = tempfile::tempdir().unwrap();
    let engine = support::engine(&world, &dir).await;
    support::first_pass_and_converge(&engine).await.unwrap();
    engine
        .store
        .call(|s| {
            use trengo_sync::store::facts;
            let now = chrono::Utc::now();
            facts::put(s.conn(), facts::LABEL_BUMPS_UPDATED_AT, "true", "test", now)?;
            facts::put(s.conn(), facts::NOTE_BUMPS_UPDATED_AT, "true", "test", now)
        })
        .await
        .unwrap();
    drop(engine);
    let (listings, _) = sweep_slices_listings(&world, &dir, slices * 2).await;
    assert_eq!(listings, 0, "the sweep walked the Trengo listings");
    let engine = support::engine(&world, &dir).await;
    world.trengo().reset_counters();
    cycle(&engine).await;
    assert!(ticket_listings(&world) > 0, "once left the Trengo walk out");
}

/// Group reads (a ticket's messages, a contact's tasks) served so far: (Trengo, GHL).
fn group_reads(world: &SimWorld) -> (u64, u64) {
    let t = world.trengo().counters();
    let g = world.ghl().counter_snapshot();
    let gr: u64 = g
        .by_route
        .iter()
        .filter(|(k, _)| k.starts_with("GET") && k.ends_with("/tasks"))
        .map(|(_, v)| *v)
        .sum();
    (t.count("GET /api/v2/tickets/{id}/messages"), gr)
}

/// The first pass on a fresh store (the backfill) writes labels, notes and closes to tickets,
/// and makes tickets for GHL tasks. The prints it records must be those of the tickets after
/// its own writes: recorded as listed before them, the next cycle's listing takes every written
/// ticket for changed and reads its group again (at 10,000 links, hours at the documented
/// limits with nothing to write, docs/benchmarks.md).
/// Links whose recorded ticket print is one expected of our writes, not one listed.
async fn expected_prints(engine: &Engine) -> usize {
    engine
        .store
        .call(|s| {
            let mut n = 0;
            for link in trengo_sync::store::links::active(s.conn())? {
                let seen = trengo_sync::store::bases::get(s.conn(), link.id, BaseName::TrengoSeen)?;
                if seen.is_some_and(|b| b.value.as_str().is_some_and(is_expected_print)) {
                    n += 1;
                }
            }
            Ok(n)
        })
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cycle_after_the_first_pass_reads_no_group_again_whatever_moves_updated_at() {
    for bumps_on in [false, true] {
        let world = world(211, 30, 10).await;
        bumps(&world, bumps_on);
        let dir = tempfile::tempdir().unwrap();
        let engine = support::engine(&world, &dir).await;
        let first = cycle(&engine).await;
        assert!(
            first.writes.trengo > 0 && first.writes.ghl > 0,
            "the first pass must write to both sides for this test: {:?}",
            first.writes
        );
        let expected = expected_prints(&engine).await;
        assert!(
            expected > 0,
            "bumps {bumps_on}: the first pass recorded no print expected of its own writes"
        );
        let before = group_reads(&world);
        let next = cycle(&engine).await;
        let after = group_reads(&world);
        assert_eq!(
            expected_prints(&engine).await,
            0,
            "bumps {bumps_on}: the next listing left prints expected of our writes in place \
             of the listed ones"
        );
        assert_eq!(
            (next.writes.trengo, next.writes.ghl),
            (0, 0),
            "bumps {bumps_on}: the first pass left work undone"
        );
        assert_eq!(
            (after.0 - before.0, after.1 - before.1),
            (0, 0),
            "bumps {bumps_on}: the cycle after the first pass read groups again \
             (ticket messages, contact tasks)"
        );
        // And what people change after it is still seen.
        let all = links(&dir);
        let l = &all[0];
        let had = engine.ghl.contact(&l.ghl_contact_id).await.unwrap().tags;
        let tag = ["trengo:callback", "trengo:vip", "trengo:billing"]
            .into_iter()
            .find(|t| !had.iter().any(|h| h == t))
            .expect("a managed tag the contact lacks");
        world
            .trengo()
            .add_label(l.ticket_id, label(&world, tag))
            .unwrap();
        let note = world
            .trengo()
            .post_note(l.ticket_id, "after the first pass")
            .unwrap();
        cycle(&engine).await;
        let tags = engine.ghl.contact(&l.ghl_contact_id).await.unwrap().tags;
        assert!(tags.iter().any(|t| t == tag), "bumps {bumps_on}: {tags:?}");
        let (to_ghl, _) = support::reliability::crossed_notes(&world, &engine).await;
        assert!(
            to_ghl.contains(&note),
            "bumps {bumps_on}: the note did not cross"
        );
    }
}

/// GHL notes reads served so far.
fn notes_reads(world: &SimWorld) -> u64 {
    world
        .ghl()
        .counter_snapshot()
        .count("GET /contacts/{contactId}/notes")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_completed_while_the_notes_walk_goes_on_is_found_by_the_next_task_walk() {
    // The notes walk is the long one (a call a contact); a completion must not wait for it.
    // One GHL call a second for the sweep, cycles a second apart: reading every linked
    // contact's notes takes a call each, a cycle's task walk two calls.
    let world = world(241, 40, 40).await;
    let dir = tempfile::tempdir().unwrap();
    let engine = settled(
        &world,
        &dir,
        &[(
            "sweep_cycle = \"15s\"",
            "sweep_cycle = \"1s\"\nghl_sweep_per_day = 86400",
        )],
        "",
    )
    .await;
    let all = links(&dir);
    let contacts: BTreeSet<&str> = all.iter().map(|l| l.ghl_contact_id.as_str()).collect();
    assert!(
        contacts.len() >= 10,
        "the world needs many linked contacts: {}",
        contacts.len()
    );
    world.ghl().counters().reset();
    let reading = sweep_until(&engine, 40, async || notes_reads(&world) > 0).await;
    assert!(
        reading,
        "the daemon's sweep read no notes: {:?}",
        world.ghl().counter_snapshot().by_route
    );
    let link = &all[0];
    world.ghl().complete_task(&link.task_id).unwrap();
    let read_before = notes_reads(&world);
    let closed = sweep_until(&engine, 80, async || {
        ticket(&engine, link.ticket_id).await.status.is_done()
    })
    .await;
    assert!(closed, "the completion was not carried");
    let read_since = notes_reads(&world) - read_before;
    let left = (contacts.len() as u64).saturating_sub(read_before);
    eprintln!("notes reads after the completion: {read_since}, contacts left: {left}");
    assert!(
        read_since < left,
        "the completion waited for the notes walk: {read_since} notes reads after it, \
         {left} contacts were left to read"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_completed_while_the_trengo_walk_goes_on_is_found_by_a_ghl_walk_of_its_own() {
    // At 10,000 links the Trengo listings take most of ten minutes to walk; a GHL completion
    // must not wait for them too. Here the sweep's share of Trengo is one call a minute (a
    // Trengo walk takes minutes) while GHL's allows many a second: the GHL walk must come round
    // again within the cycle the Trengo walk keeps going.
    let mut options = trengo_sync::sim::world::WorldOptions::unpaced(251, 60, 15);
    options.trengo.rate_limit_per_minute = 6_000;
    options.ghl.burst_limit = 100_000;
    let world = support::start_world(options).await;
    let dir = tempfile::tempdir().unwrap();
    let first = settled(&world, &dir, &[], "").await;
    // One whole cycle, as `once` runs it: how many calls a Trengo walk and a task walk take.
    let listed_before = trengo_listings(&world);
    world.ghl().counters().reset();
    cycle(&first).await;
    let trengo_walk = trengo_listings(&world) - listed_before;
    let task_walk = task_searches(&world);
    assert!(
        trengo_walk >= 3 && task_walk >= 2,
        "the world is too small: a Trengo walk of {trengo_walk} listing calls, a task walk of {task_walk}"
    );
    drop(first);

    let engine = engine_with(
        &world,
        &dir,
        &[(
            "sweep_cycle = \"15s\"",
            "sweep_cycle = \"1s\"\nsweep_share = 0.0002\nghl_sweep_per_day = 86400",
        )],
        "",
    )
    .await;
    let listed_before = trengo_listings(&world);
    world.ghl().counters().reset();
    // The daemon's first GHL walk goes past every open task.
    let walked = sweep_until(&engine, 60, async || task_searches(&world) >= task_walk).await;
    assert!(walked, "the first task walk did not end");
    let link = &links(&dir)[0];
    world.ghl().complete_task(&link.task_id).unwrap();
    let closed = sweep_until(&engine, 80, async || {
        ticket(&engine, link.ticket_id).await.status.is_done()
    })
    .await;
    assert!(closed, "the completion was not carried");
    let listed = trengo_listings(&world) - listed_before;
    assert!(
        listed < trengo_walk,
        "the completion waited for the Trengo walk: {listed} listing calls of a {trengo_walk}-call walk"
    );
}

fn trengo_listings(world: &SimWorld) -> u64 {
    world.trengo().counters().count("GET /api/v2/tickets")
}

fn task_searches(world: &SimWorld) -> u64 {
    world
        .ghl()
        .counter_snapshot()
        .count("POST /locations/{locationId}/tasks/search")
}

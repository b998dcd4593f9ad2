//! Crash loop: a real daemon process, SIGKILLed at seeded random moments (at least 50 times)
//! while users edit both sides, restarted each time. At the end both sides agree on every
//! link, no object or note exists twice, every note crossed once, and no update was lost.
//!
//! The lost-update oracle is made sound by ownership: the run is cut into epochs of ten
//! rounds, and within an epoch each field (a link's status, a contact's managed tags) is edited
//! on one side only, the side chosen per epoch at random. So the last edit of each field is the
//! value both sides must end with, and the spec's `newest` conflict rule never has to decide
//! between two edits made in the same second. Between epochs the test waits for convergence and
//! checks it, so the next epoch's owners start from an agreed state. Notes are append-only and
//! are written on both sides at any time.
//!
//! `TRENGO_SYNC_LONG=1`: 200 kills and 5,000 edits instead of 50 and 1,000.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use support::reliability::{
    Edit, FAST_SCHEDULE, MANAGED, Made, Sides, apply, crossed_notes, long_mode, open_intents,
    read_sides, settled_links, signal_and_wait, spawn_trengo_sync,
};
use support::{total_writes, write_config};
use trengo_sync::store::links::Link;

/// What each field must end as, given who may edit it in this epoch.
struct Expectations {
    /// Per link id: whether Trengo (else GHL) edits its status, and the status it must end with.
    status: BTreeMap<i64, (bool, bool)>,
    /// Per contact: whether Trengo (else GHL) edits its managed tags.
    tags_by_trengo: BTreeMap<String, bool>,
    /// Per linked ticket: the managed labels it must end with (Trengo-owned contacts).
    labels: BTreeMap<i64, BTreeSet<String>>,
    /// Per contact: the managed tags it must end with (GHL-owned contacts).
    tags: BTreeMap<String, BTreeSet<String>>,
}

impl Expectations {
    /// Owners drawn at random; expected values are what both sides hold now.
    fn from_agreed(sides: &Sides, links: &[Link], rng: &mut StdRng) -> Self {
        Self {
            status: sides
                .status
                .iter()
                .map(|(id, (done, _))| (*id, (rng.gen_bool(0.5), *done)))
                .collect(),
            tags_by_trengo: sides
                .tags
                .keys()
                .map(|c| (c.clone(), rng.gen_bool(0.5)))
                .collect(),
            labels: links
                .iter()
                .map(|l| (l.ticket_id, sides.labels[&l.ticket_id].clone()))
                .collect(),
            tags: sides
                .tags
                .iter()
                .map(|(c, (_, tags))| (c.clone(), tags.clone()))
                .collect(),
        }
    }

    /// A random edit that respects ownership, with the expectation updated to its outcome.
    fn next_edit(&mut self, links: &[Link], rng: &mut StdRng) -> Edit {
        let i = rng.gen_range(0..links.len());
        let link = &links[i];
        let k = rng.gen_range(0..MANAGED.len());
        let tag = MANAGED[k].to_string();
        match rng.gen_range(0..10) {
            0..=3 => {
                let (by_trengo, done) = self.status.get_mut(&link.id.0).unwrap();
                *done = rng.gen_bool(0.5);
                match (*by_trengo, *done) {
                    (true, true) => Edit::CloseTicket(i),
                    (true, false) => Edit::ReopenTicket(i),
                    (false, true) => Edit::CompleteTask(i),
                    (false, false) => Edit::ReopenTask(i),
                }
            }
            4..=7 => {
                let add = rng.gen_bool(0.5);
                if self.tags_by_trengo[&link.ghl_contact_id] {
                    let labels = self.labels.get_mut(&link.ticket_id).unwrap();
                    if add {
                        labels.insert(tag);
                        Edit::AddLabel(i, k)
                    } else {
                        labels.remove(&tag);
                        Edit::RemoveLabel(i, k)
                    }
                } else {
                    let tags = self.tags.get_mut(&link.ghl_contact_id).unwrap();
                    if add {
                        tags.insert(tag);
                        Edit::AddTag(i, k)
                    } else {
                        tags.remove(&tag);
                        Edit::RemoveTag(i, k)
                    }
                }
            }
            8 => Edit::TrengoNote(i),
            _ => Edit::GhlNote(i),
        }
    }

    /// One line per field whose agreed value is not its owner's last edit.
    fn lost_updates(&self, sides: &Sides, links: &[Link]) -> Vec<String> {
        let mut lost = Vec::new();
        for (link, (by_trengo, done)) in &self.status {
            let (t, g) = sides.status[link];
            let held = if *by_trengo { t } else { g };
            if held != *done || t != g {
                lost.push(format!(
                    "link {link}: last edit (on {}) left done={done}, sides hold ticket {t} / task {g}",
                    if *by_trengo { "Trengo" } else { "GHL" }
                ));
            }
        }
        for (contact, by_trengo) in &self.tags_by_trengo {
            let expected: BTreeSet<String> = if *by_trengo {
                links
                    .iter()
                    .filter(|l| &l.ghl_contact_id == contact)
                    .flat_map(|l| self.labels[&l.ticket_id].iter().cloned())
                    .collect()
            } else {
                self.tags[contact].clone()
            };
            let (labels, tags) = &sides.tags[contact];
            if labels != &expected || tags != &expected {
                lost.push(format!(
                    "contact {contact}: last edits (on {}) left {expected:?}, sides hold labels {labels:?} / tags {tags:?}",
                    if *by_trengo { "Trengo" } else { "GHL" }
                ));
            }
        }
        lost
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemon_killed_at_random_during_edits_converges_without_duplicates_or_lost_updates() {
    let (rounds, per_round) = if long_mode() { (200, 25) } else { (50, 20) };
    let world = support::world(31, 24, 8).await;
    let dir = tempfile::tempdir().unwrap();
    let (config, _) = write_config(&world, &dir);
    let log = dir.path().join("daemon.log");
    let mut env = FAST_SCHEDULE.to_vec();
    // The workload changes many links at once on purpose; the brake would (rightly) stop it.
    env.push(("TRENGO_SYNC__LIMITS__BRAKE_MIN_LINKS", "100000"));
    // Failed items come back quickly, so the end of the run is not spent waiting for retries.
    env.push(("TRENGO_SYNC__LIMITS__RETRY_BASE", "1s"));
    env.push(("TRENGO_SYNC__LIMITS__RETRY_MAX", "4s"));
    let spawn = || spawn_trengo_sync(&["run"], &config, &env, Some(&log));
    // A second store, so that reading both sides never touches the daemon's.
    let reader_dir = tempfile::tempdir().unwrap();
    let reader = support::engine(&world, &reader_dir).await;

    let mut daemon = spawn();
    let store = support::store_path(&dir);
    let linked = settled_links(&world, &store, Duration::from_secs(3)).await;
    assert!(
        linked.len() >= 8,
        "too few links to matter: {}",
        linked.len()
    );

    let mut rng = StdRng::seed_from_u64(0x5EED_C4A5);
    let mut trengo_notes = BTreeSet::new();
    let mut ghl_notes = BTreeSet::new();
    let mut kills = 0;
    let mut edits = 0;
    let mut expect = None;
    for round in 0..rounds {
        if round % 10 == 0 {
            let sides = converged(&reader, &store, &linked, expect.as_ref()).await;
            expect = Some(Expectations::from_agreed(&sides, &linked, &mut rng));
        }
        let expectations = expect.as_mut().unwrap();
        for _ in 0..per_round {
            let edit = expectations.next_edit(&linked, &mut rng);
            match apply(&world, &linked, &edit) {
                Made::TrengoNote(id) => {
                    let _ = trengo_notes.insert(id);
                }
                Made::GhlNote(id) => {
                    let _ = ghl_notes.insert(id);
                }
                Made::Nothing => {}
            }
            edits += 1;
        }
        // Half the kills land at a random moment, half just after the daemon's first write
        // following the edits (mid-pass, where a crash can split a write from its record).
        if rng.gen_bool(0.5) {
            tokio::time::sleep(Duration::from_millis(rng.gen_range(100..1500))).await;
        } else {
            let before = total_writes(&world);
            let deadline = Instant::now() + Duration::from_secs(5);
            while total_writes(&world) == before && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            tokio::time::sleep(Duration::from_millis(rng.gen_range(0..40))).await;
        }
        let status = signal_and_wait(&mut daemon, "KILL");
        assert!(
            status.code().is_none(),
            "the daemon ended before the kill: {status}"
        );
        kills += 1;
        daemon = spawn();
    }
    converged(&reader, &store, &linked, expect.as_ref()).await;
    assert!(kills >= 50 && edits >= 1000, "{kills} kills, {edits} edits");
    eprintln!(
        "crash loop: {} links, {kills} kills, {edits} edits, {} notes made, {} remote writes",
        linked.len(),
        trengo_notes.len() + ghl_notes.len(),
        total_writes(&world)
    );

    assert_eq!(
        signal_and_wait(&mut daemon, "TERM").code(),
        Some(0),
        "SIGTERM after the crash loop must end the daemon cleanly"
    );
    let output = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        !output.contains("panicked"),
        "the daemon panicked:\n{output}"
    );

    let (active, duplicates) = support::audit(&world, &dir, &reader).await;
    assert_eq!(active, linked.len(), "links were lost or added");
    assert!(duplicates.is_empty(), "duplicates: {duplicates:#?}");
    let (to_ghl, to_trengo) = crossed_notes(&world, &reader).await;
    let missing_in_ghl: Vec<_> = trengo_notes.difference(&to_ghl).collect();
    let missing_in_trengo: Vec<_> = ghl_notes.difference(&to_trengo).collect();
    assert!(
        missing_in_ghl.is_empty() && missing_in_trengo.is_empty(),
        "notes that never crossed: Trengo {missing_in_ghl:?}, GHL {missing_in_trengo:?}"
    );
    // Stable: a pass from the daemon's own store finds nothing left to write.
    let engine = support::engine(&world, &dir).await;
    assert_eq!(support::converge(&engine).await, Some(0));
    world.shutdown().await;
}

/// Waits (the daemon running) until both sides agree and hold every owner's last edit, and
/// the daemon has settled what the last kill left open; panics with what is still wrong after
/// two minutes. Returns the agreed sides.
///
/// The open intents matter for the oracle: sides can agree while the base of the write that
/// made them agree is still unrecorded. The next epoch's owner may then edit the side that
/// write went to, and whether that edit or the write came last is exactly what the values
/// cannot tell (see `sync::execute::journal`); a person would have had to edit that field
/// on that side while the daemon was down.
async fn converged(
    reader: &trengo_sync::sync::engine::Engine,
    store: &Path,
    links: &[Link],
    expect: Option<&Expectations>,
) -> Sides {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let sides = read_sides(reader, links).await;
        let mut wrong = sides.disagreements();
        if let Some(expect) = expect {
            wrong.extend(expect.lost_updates(&sides, links));
        }
        match open_intents(store) {
            Some(0) => {}
            Some(n) => wrong.push(format!("the daemon's store holds {n} open intents")),
            None => wrong.push("the daemon's store could not be read".to_string()),
        }
        if wrong.is_empty() {
            return sides;
        }
        assert!(
            Instant::now() < deadline,
            "not converged two minutes after the last edit:\n{}",
            wrong.join("\n")
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

//! Property tests over both fakes: random edits on both sides, then passes until quiet.
//! Checked: convergence (status and managed tags agree on every link), stability (the last pass
//! writes nothing), no lost update (a field changed on one side only ends with that side's
//! value), and scope (unmanaged tags are never touched).

mod support;

use std::collections::BTreeSet;

use proptest::prelude::*;
use support::reliability::{Edit, MANAGED, apply, read_sides};
use tokio::net::TcpListener;
use trengo_sync::clock::SystemClock;
use trengo_sync::sim::world::{SimWorld, WorldOptions};
use trengo_sync::store::{self, Store};
use trengo_sync::sync::engine::{Engine, PassKind, PassOptions};

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (0..8usize).prop_map(Edit::CloseTicket),
        (0..8usize).prop_map(Edit::ReopenTicket),
        (0..8usize, 0..2usize).prop_map(|(l, t)| Edit::AddLabel(l, t)),
        (0..8usize, 0..2usize).prop_map(|(l, t)| Edit::RemoveLabel(l, t)),
        (0..8usize).prop_map(Edit::CompleteTask),
        (0..8usize).prop_map(Edit::ReopenTask),
        (0..8usize, 0..2usize).prop_map(|(l, t)| Edit::AddTag(l, t)),
        (0..8usize, 0..2usize).prop_map(|(l, t)| Edit::RemoveTag(l, t)),
    ]
}

async fn quiet(engine: &Engine) {
    for _ in 0..6 {
        let report = engine
            .pass(
                PassKind::Reconcile,
                PassOptions {
                    dry_run: false,
                    allow_mass_change: true,
                },
            )
            .await
            .unwrap();
        assert!(
            report.failed.is_empty(),
            "items failed: {:?}",
            report.failed
        );
        if report.writes.trengo + report.writes.ghl == 0 {
            return;
        }
    }
    panic!("no quiet pass within 6");
}

async fn case(seed: u64, edits: Vec<Edit>) {
    let options = WorldOptions::unpaced(seed, 10, 5);
    let world = SimWorld::start(
        TcpListener::bind("127.0.0.1:0").await.unwrap(),
        TcpListener::bind("127.0.0.1:0").await.unwrap(),
        options,
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = world
        .config(
            &dir.path().join("state.sqlite"),
            "127.0.0.1:0".parse().unwrap(),
        )
        .unwrap();
    let engine = Engine::from_config(&config, SystemClock::shared(), false).unwrap();
    engine.bind_identity().await.unwrap();
    engine
        .pass(
            PassKind::Poll,
            PassOptions {
                dry_run: false,
                allow_mass_change: true,
            },
        )
        .await
        .unwrap();
    quiet(&engine).await;
    let links = {
        let s = Store::open_read_only(dir.path().join("state.sqlite")).unwrap();
        store::links::active(s.conn()).unwrap()
    };
    assert!(
        !links.is_empty(),
        "the world made no link: the case would prove nothing"
    );
    let before = read_sides(&engine, &links).await;
    for e in &edits {
        let _ = apply(&world, &links, e);
    }
    let edited = read_sides(&engine, &links).await;
    quiet(&engine).await;
    let after = read_sides(&engine, &links).await;

    for (link, (t, g)) in &after.status {
        assert_eq!(
            t, g,
            "link {link}: status did not converge (ticket done {t}, task {g})"
        );
        let (t0, g0) = before.status[link];
        let (t1, g1) = edited.status[link];
        if t1 != t0 && g1 == g0 {
            assert_eq!(*t, t1, "link {link}: the Trengo status change was lost");
        }
        if g1 != g0 && t1 == t0 {
            assert_eq!(*g, g1, "link {link}: the GHL status change was lost");
        }
    }
    for (contact, (labels, tags)) in &after.tags {
        assert_eq!(
            labels, tags,
            "contact {contact}: managed tags did not converge"
        );
        for tag in MANAGED {
            let had = |s: &BTreeSet<String>| s.contains(tag);
            let (l0, t0) = &before.tags[contact];
            let (l1, t1) = &edited.tags[contact];
            if had(l1) != had(l0) && had(t1) == had(t0) {
                assert_eq!(
                    had(labels),
                    had(l1),
                    "{contact} {tag}: the Trengo change was lost"
                );
            }
            if had(t1) != had(t0) && had(l1) == had(l0) {
                assert_eq!(
                    had(tags),
                    had(t1),
                    "{contact} {tag}: the GHL change was lost"
                );
            }
        }
        assert_eq!(
            after.unmanaged[contact], edited.unmanaged[contact],
            "{contact}: an unmanaged tag was touched"
        );
    }
    world.shutdown().await;
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn random_edits_on_both_sides_converge_without_lost_updates(
        seed in 1u64..1_000,
        edits in proptest::collection::vec(edit(), 1..12),
    ) {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(case(seed, edits));
    }
}

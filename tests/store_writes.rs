//! Within a pass only the executor writes to the store: detection, the sweep, hints and
//! loading read it through `StoreReader`, under SQLite's `query_only`, so a stray write of
//! theirs fails the pass. Every kind of pass runs here against the fakes and must succeed.

mod support;

use support::{engine, engine_crashing_after, links, store_path};
use trengo_sync::clock::SystemClock;
use trengo_sync::sync::engine::{Engine, EngineError, Hint, PassKind, PassOptions, PassReport};

async fn pass(engine: &Engine, kind: PassKind) -> PassReport {
    let report = engine
        .pass(kind.clone(), PassOptions::default())
        .await
        .unwrap_or_else(|e| panic!("{kind:?} failed: {e}"));
    assert!(
        report.failed.is_empty(),
        "{kind:?}: items failed: {:?}",
        report.failed
    );
    report
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_of_pass_runs_with_only_the_executor_writing_the_store() {
    let world = support::world(7, 12, 6).await;
    let dir = tempfile::tempdir().unwrap();

    // A backfill (the first Trengo poll, no cursor yet) stopped by a crash after a few writes.
    let crashing = engine_crashing_after(&world, &dir, Some(3)).await;
    let crashed = crashing.pass(PassKind::Poll, PassOptions::default()).await;
    assert!(
        matches!(crashed, Err(EngineError::Crashed)),
        "the backfill did not stop at its third write: {crashed:?}"
    );
    drop(crashing);

    // The restart settles what the crash left open and finishes the backfill.
    let engine = engine(&world, &dir).await;
    let first = pass(&engine, PassKind::Poll).await;
    assert!(first.settled_intents > 0, "the crash left nothing open");
    assert!(!links(&dir).is_empty(), "the backfill linked nothing");

    pass(&engine, PassKind::Cycle).await;
    pass(&engine, PassKind::Sweep).await;
    pass(&engine, PassKind::TrengoPoll).await;
    pass(&engine, PassKind::GhlPoll).await;
    pass(&engine, PassKind::Reconcile).await;

    // A change named by a hint crosses, the executor writing what the pass recorded.
    let link = links(&dir)
        .into_iter()
        .find(|l| {
            world
                .trengo()
                .ticket_json(l.ticket_id)
                .is_ok_and(|t| t["status"] != "CLOSED")
        })
        .expect("an open linked ticket");
    world.trengo().close_ticket(link.ticket_id).unwrap();
    let hinted = pass(&engine, PassKind::Hints(vec![Hint::Ticket(link.ticket_id)])).await;
    assert!(
        hinted.writes.ghl > 0,
        "closing ticket #{} crossed nothing: {:?}",
        link.ticket_id,
        hinted.plans
    );

    // `plan`'s dry run, on its in-memory copy, reads through a reader too.
    let config = world
        .config(&store_path(&dir), "127.0.0.1:0".parse().unwrap())
        .unwrap();
    let planner = Engine::for_plan(&config, SystemClock::shared()).unwrap();
    planner
        .pass(
            PassKind::Cycle,
            PassOptions {
                dry_run: true,
                ..PassOptions::default()
            },
        )
        .await
        .expect("the dry run failed");

    // The stages' reader refuses a write; the executor's handle does not.
    let stray = engine
        .store
        .reader()
        .call(|r| {
            r.conn().execute("DELETE FROM cursors", [])?;
            Ok(())
        })
        .await;
    assert!(stray.is_err(), "a write through the reader landed");
    let query_only: bool = engine
        .store
        .call(|s| {
            Ok(s.conn()
                .pragma_query_value(None, "query_only", |r| r.get(0))?)
        })
        .await
        .unwrap();
    assert!(!query_only, "a reader left the store read-only");
}

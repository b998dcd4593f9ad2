//! Convergence that counts failures too: a pass that writes nothing is not settled while an
//! item still fails on it, since an item failing on every pass writes nothing as well.

use trengo_sync::store;
use trengo_sync::sync::engine::{Engine, PassKind, PassOptions};

/// The items in the engine's retry table, as `"item: why"` lines.
pub async fn failing_items(engine: &Engine) -> Vec<String> {
    engine
        .store
        .call(|s| store::retries::all(s.conn()))
        .await
        .unwrap()
        .into_iter()
        .map(|r| format!("{}: {}", r.item, r.reason))
        .collect()
}

/// Runs reconcile passes until one writes nothing, fails no item and leaves the retry table
/// empty (at most `max`), returning how many ran; panics with the last pass's failures when
/// none does.
pub async fn until_settled(engine: &Engine, max: usize) -> usize {
    let mut last = Vec::new();
    for n in 1..=max {
        let report = engine
            .pass(PassKind::Reconcile, PassOptions::default())
            .await
            .unwrap();
        let writes = report.writes.trengo + report.writes.ghl;
        let mut failing: Vec<String> = report
            .failed
            .iter()
            .map(|(item, why)| format!("{item} failed in the pass: {why}"))
            .collect();
        failing.extend(failing_items(engine).await);
        if writes == 0 && failing.is_empty() {
            return n;
        }
        last = failing;
    }
    panic!("no settled pass within {max}; still failing: {last:#?}");
}

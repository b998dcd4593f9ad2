//! Readiness: whether both APIs answered recently, both polls completed a pass within three
//! of their periods, and no brake is engaged (`/readyz`).

use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::api_name;
use crate::api::Api;
use crate::daemon::jobs::{JobBoard, JobKind};

/// The shortest window in which both APIs must have answered for the daemon to be ready.
pub const MIN_READY_WINDOW: Duration = Duration::from_secs(300);

/// How recently both APIs must have answered: three periods of the slower poll, and never less
/// than [`MIN_READY_WINDOW`], so one slow or skipped poll does not flap `/readyz`.
pub fn ready_window(board: &JobBoard) -> Duration {
    let slowest = [JobKind::TrengoPoll, JobKind::GhlPoll]
        .into_iter()
        .filter_map(|kind| board.period(kind))
        .max()
        .unwrap_or_default();
    (slowest * 3).max(MIN_READY_WINDOW)
}

#[derive(Debug, Default, Clone)]
struct ApiSeen {
    last_ok: Option<DateTime<Utc>>,
    last_failure: Option<(DateTime<Utc>, String)>,
}

#[derive(Debug, Default)]
struct ReadinessState {
    trengo: ApiSeen,
    ghl: ApiSeen,
    brake: Option<String>,
}

impl ReadinessState {
    fn api(&mut self, api: Api) -> &mut ApiSeen {
        match api {
            Api::Trengo => &mut self.trengo,
            Api::Ghl => &mut self.ghl,
        }
    }
}

/// Whether the daemon can do its job: both APIs answered recently and no brake is engaged.
/// The store being open is implied by the daemon holding a `StoreHandle`. Shared in an `Arc`
/// by the engine (which reports) and the HTTP surface (which asks).
#[derive(Debug, Default)]
pub struct Readiness {
    // A std mutex: a few field updates, never held across an await.
    state: Mutex<ReadinessState>,
}

impl Readiness {
    /// Nothing answered yet: not ready.
    pub fn new() -> Self {
        Self::default()
    }

    fn with<R>(&self, f: impl FnOnce(&mut ReadinessState) -> R) -> R {
        f(&mut self.state.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// `api` answered a request at `at`.
    pub fn api_ok(&self, api: Api, at: DateTime<Utc>) {
        self.with(|s| s.api(api).last_ok = Some(at));
    }

    /// A request to `api` failed at `at` for `reason` (which must not hold a secret; the
    /// API errors' texts do not).
    pub fn api_failed(&self, api: Api, at: DateTime<Utc>, reason: impl Into<String>) {
        let reason = reason.into();
        self.with(|s| s.api(api).last_failure = Some((at, reason)));
    }

    /// Engages a brake with its reason (`Some`) or releases it (`None`).
    pub fn brake(&self, reason: Option<String>) {
        self.with(|s| s.brake = reason);
    }

    /// `Ok` when ready at `now` (what `/readyz` answers), else every reason why not:
    /// [`Readiness::check`] over [`ready_window`], plus the polls `board` finds behind
    /// ([`JobBoard::stale_polls`]; issue #13 item 2).
    pub fn check_daemon(&self, now: DateTime<Utc>, board: &JobBoard) -> Result<(), Vec<String>> {
        let reasons = self.full_report(now, board).reasons;
        if reasons.is_empty() {
            Ok(())
        } else {
            Err(reasons)
        }
    }

    /// `Ok` when both APIs answered within `recent` of `now` and no brake is engaged, else
    /// every reason why not.
    pub fn check(&self, now: DateTime<Utc>, recent: Duration) -> Result<(), Vec<String>> {
        let reasons = self.report(now, recent).reasons;
        if reasons.is_empty() {
            Ok(())
        } else {
            Err(reasons)
        }
    }

    /// The readiness as `/status` shows it: APIs and brake ([`Readiness::report`] over
    /// [`ready_window`]), and polls that have not completed a pass for three periods.
    pub fn full_report(&self, now: DateTime<Utc>, board: &JobBoard) -> ReadinessReport {
        let mut report = self.report(now, ready_window(board));
        report.reasons.extend(board.stale_polls(now));
        report.ready = report.reasons.is_empty();
        report
    }

    /// The readiness of the APIs and the brake alone.
    pub fn report(&self, now: DateTime<Utc>, recent: Duration) -> ReadinessReport {
        let (trengo, ghl, brake) =
            self.with(|s| (s.trengo.clone(), s.ghl.clone(), s.brake.clone()));
        let recent_c = chrono::Duration::from_std(recent).unwrap_or(chrono::Duration::MAX);
        let mut reasons = Vec::new();
        let mut apis = Vec::new();
        for (api, seen) in [(Api::Trengo, trengo), (Api::Ghl, ghl)] {
            let failed_last = match (&seen.last_failure, seen.last_ok) {
                (Some((failed_at, _)), Some(ok)) => *failed_at > ok,
                (Some(_), None) => true,
                (None, _) => false,
            };
            match (seen.last_ok, &seen.last_failure) {
                (_, Some((at, why))) if failed_last => {
                    reasons.push(format!("{api} failed at {at}: {why}"));
                }
                (None, _) => reasons.push(format!("{api} has not answered yet")),
                (Some(ok), _) if now - ok > recent_c => reasons.push(format!(
                    "{api} has not answered since {ok} (more than {}s ago)",
                    recent.as_secs()
                )),
                _ => {}
            }
            apis.push(ApiReadiness {
                api: api_name(api).to_string(),
                last_ok: seen.last_ok,
                last_failure_at: seen.last_failure.as_ref().map(|(at, _)| *at),
                last_failure: seen.last_failure.map(|(_, why)| why),
            });
        }
        if let Some(why) = &brake {
            reasons.push(format!("a brake is engaged: {why}"));
        }
        ReadinessReport {
            ready: reasons.is_empty(),
            reasons,
            apis,
            brake,
        }
    }
}

/// Readiness as `/status` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReadinessReport {
    /// Whether `/readyz` answers 200.
    pub ready: bool,
    /// Why not, when not.
    pub reasons: Vec<String>,
    /// What each API last did.
    pub apis: Vec<ApiReadiness>,
    /// The engaged brake's reason.
    pub brake: Option<String>,
}

/// What one API last did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiReadiness {
    /// `trengo` or `ghl`.
    pub api: String,
    /// When it last answered.
    pub last_ok: Option<DateTime<Utc>>,
    /// When a request to it last failed.
    pub last_failure_at: Option<DateTime<Utc>>,
    /// Why.
    pub last_failure: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + secs, 0).unwrap()
    }

    const RECENT: Duration = Duration::from_secs(300);

    #[test]
    fn ready_only_once_both_apis_answered() {
        let r = Readiness::new();
        let reasons = r.check(at(0), RECENT).unwrap_err();
        assert_eq!(reasons.len(), 2, "{reasons:?}");
        r.api_ok(Api::Trengo, at(1));
        let reasons = r.check(at(2), RECENT).unwrap_err();
        assert_eq!(reasons, ["GHL has not answered yet"]);
        r.api_ok(Api::Ghl, at(3));
        assert_eq!(r.check(at(4), RECENT), Ok(()));
    }

    #[test]
    fn a_silent_or_failing_api_or_a_brake_makes_it_unready() {
        let r = Readiness::new();
        r.api_ok(Api::Trengo, at(0));
        r.api_ok(Api::Ghl, at(0));
        let reasons = r.check(at(301), RECENT).unwrap_err();
        assert!(
            reasons[0].contains("Trengo has not answered since"),
            "{reasons:?}"
        );

        r.api_ok(Api::Trengo, at(400));
        r.api_ok(Api::Ghl, at(400));
        r.api_failed(Api::Ghl, at(410), "GHL answered HTTP 401");
        let reasons = r.check(at(420), RECENT).unwrap_err();
        assert_eq!(reasons.len(), 1);
        assert!(reasons[0].contains("HTTP 401"), "{reasons:?}");
        r.api_ok(Api::Ghl, at(430));
        assert_eq!(r.check(at(440), RECENT), Ok(()));

        r.brake(Some("12 of 20 links would close".into()));
        let reasons = r.check(at(450), RECENT).unwrap_err();
        assert!(reasons[0].contains("brake"), "{reasons:?}");
        r.brake(None);
        assert_eq!(r.check(at(460), RECENT), Ok(()));
    }
}

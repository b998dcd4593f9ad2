//! `trengo-sync doctor`: checks the real accounts before `run`, one line per check with what it
//! found and what to do (issue #14).
//!
//! Read-only by default: both tokens and every endpoint the enabled features use (which shows
//! missing scopes), the shape of every answer the engine decodes, the Trengo account's time
//! zone ([`crate::trengo::zone`]), the paging shape, whether `updated_at_gt` narrows a
//! listing, the rate-limit headers, the account and location the store is bound to, and the
//! label, channels, teams and users the configuration names. With `--probe-writes --ticket ID`
//! it also makes a reversible edit on that ticket ([`probe`]) and stores what it learned
//! ([`crate::store::facts`]).
//!
//! The same zone check runs when the daemon starts ([`zone_gate`]).

mod checks;
pub mod probe;

use std::fmt::Write as _;

use chrono::Duration;
use serde::Serialize;

use crate::store::{self, StoreHandle};
use crate::sync::engine::Engine;
use crate::trengo::TrengoClient;
use crate::trengo::zone::{self, ZoneVerdict};

/// Exit code when every check passed (warnings and notes allowed).
pub const EXIT_OK: u8 = 0;
/// Exit code when at least one check failed: `run` would not work as configured.
pub const EXIT_CHECK_FAILED: u8 = 5;
/// Exit code when nothing failed but something deserves a look.
pub const EXIT_WARNINGS: u8 = 6;

/// What `doctor` is asked to do.
#[derive(Debug, Clone, Default)]
pub struct DoctorOptions {
    /// Make the reversible edits of [`probe`] (needs `ticket`).
    pub probe_writes: bool,
    /// The ticket the probe may edit (the user names it).
    pub ticket: Option<i64>,
}

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// As needed.
    Ok,
    /// Worth knowing; nothing to do.
    Note,
    /// Works, but deserves a look.
    Warn,
    /// `run` would not work as configured.
    Fail,
    /// Not checked (and why is in `found`).
    Skip,
}

impl Outcome {
    fn label(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Note => "note",
            Outcome::Warn => "WARN",
            Outcome::Fail => "FAIL",
            Outcome::Skip => "skip",
        }
    }
}

/// One check's line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// What was checked, e.g. `trengo.zone`, `ghl GET /users/`.
    pub check: String,
    /// How it came out.
    pub outcome: Outcome,
    /// What was found.
    pub found: String,
    /// What to do (empty when nothing).
    pub todo: String,
}

/// Everything `doctor` found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DoctorReport {
    /// One per check, in the order run.
    pub findings: Vec<Finding>,
}

impl DoctorReport {
    fn push(&mut self, check: &str, outcome: Outcome, found: String, todo: impl Into<String>) {
        self.findings.push(Finding {
            check: check.to_string(),
            outcome,
            found,
            todo: todo.into(),
        });
    }

    /// The finding of `check`, if it ran.
    pub fn finding(&self, check: &str) -> Option<&Finding> {
        self.findings.iter().find(|f| f.check == check)
    }

    /// The process exit code: [`EXIT_CHECK_FAILED`], [`EXIT_WARNINGS`] or [`EXIT_OK`].
    pub fn exit_code(&self) -> u8 {
        if self.findings.iter().any(|f| f.outcome == Outcome::Fail) {
            EXIT_CHECK_FAILED
        } else if self.findings.iter().any(|f| f.outcome == Outcome::Warn) {
            EXIT_WARNINGS
        } else {
            EXIT_OK
        }
    }

    /// The report for people: one line per check, the advice indented under it.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for f in &self.findings {
            let _ = writeln!(out, "[{:>4}] {}: {}", f.outcome.label(), f.check, f.found);
            if !f.todo.is_empty() {
                let _ = writeln!(out, "       → {}", f.todo);
            }
        }
        let count = |o: Outcome| self.findings.iter().filter(|f| f.outcome == o).count();
        let _ = writeln!(
            out,
            "{} checks: {} ok, {} failed, {} warnings, {} notes, {} skipped",
            self.findings.len(),
            count(Outcome::Ok),
            count(Outcome::Fail),
            count(Outcome::Warn),
            count(Outcome::Note),
            count(Outcome::Skip)
        );
        out
    }
}

/// Runs every check against the accounts `engine` is configured for.
pub async fn run(engine: &Engine, options: &DoctorOptions) -> DoctorReport {
    let mut report = DoctorReport::default();
    checks::run_all(engine, &mut report).await;
    if options.probe_writes {
        match options.ticket {
            Some(ticket) => probe::run(engine, ticket, &mut report).await,
            None => report.push(
                "probe",
                Outcome::Fail,
                "--probe-writes needs the ticket it may edit".into(),
                "add --ticket ID (a ticket you own; it gets a label attached and detached and an \
                 internal note)",
            ),
        }
    } else {
        report.push(
            "probe",
            Outcome::Skip,
            "no writes made (read-only run)".into(),
            "to learn which edits move updated_at and measure the zone exactly, run \
             `trengo-sync doctor --probe-writes --ticket ID`",
        );
    }
    report
}

/// The zone check as one finding, from read-only evidence plus what the store learned.
/// Also tells the client's poll watch how long a quiet spell is plausible for the account.
pub async fn zone_finding(trengo: &TrengoClient, store: &StoreHandle) -> (Finding, ZoneVerdict) {
    let learned = store
        .call(|s| store::facts::learned_trengo_offset(s.conn()))
        .await
        .ok()
        .flatten()
        .map(|(offset, at)| {
            (
                offset,
                format!("`doctor --probe-writes` on {}", at.format("%Y-%m-%d")),
            )
        });
    let now = trengo.now();
    let configured = trengo.zone().name().to_string();
    let (outcome, found, todo, verdict) = match zone::detect(trengo, now, learned).await {
        Ok((verdict, quiet)) => {
            trengo.poll_watch().set_plausible_quiet(quiet);
            let quiet_note = format!(
                "; no change for over {} h will raise the poll alarm",
                quiet.num_hours().max(1)
            );
            match &verdict {
                ZoneVerdict::Confirmed { how } => (
                    Outcome::Ok,
                    format!("{configured}: {how}{quiet_note}"),
                    String::new(),
                    verdict.clone(),
                ),
                ZoneVerdict::Mismatch {
                    suggestion, how, ..
                } => (
                    Outcome::Fail,
                    format!("{configured} is not the account's zone: {how}"),
                    format!(
                        "set trengo.timezone = \"{suggestion}\" (or TRENGO_SYNC__TRENGO__TIMEZONE); \
                         with the wrong zone the updated_at_gt watermark lands hours off"
                    ),
                    verdict.clone(),
                ),
                ZoneVerdict::Suspect { how } => (
                    Outcome::Warn,
                    format!("{configured} not proven: {how}"),
                    "check trengo.timezone against the account's settings".to_string(),
                    verdict.clone(),
                ),
                ZoneVerdict::Unknown => (
                    Outcome::Note,
                    format!(
                        "{configured} not contradicted by anything the API shows read-only{quiet_note}"
                    ),
                    "measure it exactly with `trengo-sync doctor --probe-writes --ticket ID`"
                        .to_string(),
                    verdict.clone(),
                ),
            }
        }
        Err(e) => (
            Outcome::Fail,
            format!("could not read the evidence: {e}"),
            "fix the Trengo token or base URL first".to_string(),
            ZoneVerdict::Unknown,
        ),
    };
    (
        Finding {
            check: "trengo.zone".into(),
            outcome,
            found,
            todo,
        },
        verdict,
    )
}

/// The zone check at start (`run` and `once`): refuses to start on proof that
/// `trengo.timezone` is not the account's zone, warns on a hint, and carries on when the API
/// cannot be read (the daemon reports unreachable APIs itself).
pub async fn zone_gate(trengo: &TrengoClient, store: &StoreHandle) -> anyhow::Result<()> {
    let (finding, verdict) = zone_finding(trengo, store).await;
    match (finding.outcome, verdict) {
        (Outcome::Fail, ZoneVerdict::Mismatch { .. }) => Err(anyhow::anyhow!(
            "Trengo time zone: {}; {}",
            finding.found,
            finding.todo
        )),
        (Outcome::Fail | Outcome::Warn, _) => {
            tracing::warn!(check = %finding.check, found = %finding.found, todo = %finding.todo, "Trengo time zone not proven");
            Ok(())
        }
        _ => {
            tracing::info!(found = %finding.found, "Trengo time zone");
            Ok(())
        }
    }
}

/// Seconds to wait between a probe write and the read that looks for its effect: Trengo's
/// timestamps have whole seconds.
pub(crate) fn settle_gap() -> Duration {
    Duration::milliseconds(1_100)
}

//! Trengo's time zone: which zone the account renders naive timestamps in, and whether the
//! `updated_at_gt` poll still sees changes (trengo-api.md §3.4, §4.3, §8).
//!
//! The daemon writes `updated_at_gt` in `trengo.timezone`. If the account renders another zone
//! — UTC, or one west of the configured zone — the watermark lands hours in the account's
//! future and every poll comes back empty without a word; east of it, every poll lists hours
//! of old changes again. Three defences live here:
//!
//! * **Detection** ([`detect`], [`judge`]): evidence of the account's zone from what the API
//!   returns. The strongest is a naive timestamp of an object whose UTC time is known: an
//!   internal note's answer carries its naive `created_at` next to `created_at_time`, a Unix
//!   time (§4.3, S14), and `doctor --probe-writes` stores the offset it measures that way. A
//!   ticket time that would lie in the future when read in the configured zone is also proof.
//!   A user's `timezone` (§8) is only a hint: in the one captured account the agents' zone
//!   was not the account's.
//! * **The poll watch** ([`PollWatch`]): every `updated_at_gt` listing reports what it got. A
//!   ticket not newer than the watermark means the filter was ignored or read in another zone;
//!   no change at all for longer than is plausible for the account means the watermark may lie
//!   in its future. Either raises an alarm: a log line, `/status` and a metric.
//! * **Every note the daemon writes** is checked the same way, so a wrong zone shows up at
//!   runtime even when nothing else gives it away.

use std::sync::Mutex;

use chrono::{DateTime, Duration, NaiveDateTime, Offset, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::TrengoClient;
use crate::api::{ApiError, lenient};

/// How far a naive time read in the configured zone may differ from its known UTC time before
/// the zone counts as wrong (covers the seconds between our clock and Trengo's).
const PAIR_TOLERANCE_SECS: i64 = 120;

/// How far in the future a ticket time may seem (clock skew) before the zone counts as wrong.
const FUTURE_TOLERANCE: Duration = Duration::minutes(15);

/// A naive Trengo timestamp and the UTC instant it stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KnownPair {
    /// As the account rendered it.
    pub naive: NaiveDateTime,
    /// What it really was.
    pub utc: DateTime<Utc>,
}

impl KnownPair {
    /// The account's UTC offset at that instant, in seconds, rounded to a quarter hour (every
    /// zone's offset is a multiple of 15 minutes; the rest is clock difference).
    pub fn offset_secs(&self) -> i32 {
        let raw = (self.naive - self.utc.naive_utc()).num_seconds();
        ((raw as f64 / 900.0).round() * 900.0) as i32
    }
}

/// The pair in an internal note's create answer: naive `created_at` and `created_at_time`
/// (trengo-api.md §4.3, §13: S14's capture shows both for one instant). Either shape of the
/// answer is read: wrapped in `message` or bare.
pub fn pair_from_created_message(answer: &Value) -> Option<KnownPair> {
    let message = answer
        .get("message")
        .filter(|m| m.is_object())
        .unwrap_or(answer);
    let naive = message.get("created_at")?.as_str()?;
    if DateTime::parse_from_rfc3339(naive.trim()).is_ok() {
        return None;
    }
    let naive = lenient::parse_naive(naive)?;
    let epoch = match message.get("created_at_time")? {
        Value::Number(n) => n.as_i64()?,
        Value::String(s) => s.trim().parse().ok()?,
        _ => return None,
    };
    Some(KnownPair {
        naive,
        utc: DateTime::from_timestamp(epoch, 0)?,
    })
}

/// What was found about the account's zone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum ZoneVerdict {
    /// Proof that the configured zone is the account's (at the instants looked at).
    Confirmed {
        /// What proved it.
        how: String,
    },
    /// Proof that it is not.
    Mismatch {
        /// The account's offset, in seconds, where it was measured.
        account_offset_secs: Option<i32>,
        /// A zone to configure instead.
        suggestion: String,
        /// What proved it.
        how: String,
    },
    /// A hint that it may not be (not proof).
    Suspect {
        /// What hints at it.
        how: String,
    },
    /// Nothing either way.
    Unknown,
}

/// The evidence [`judge`] weighs.
#[derive(Debug, Clone, Default)]
pub struct ZoneEvidence {
    /// Naive timestamps whose UTC time is known, with where each came from.
    pub pairs: Vec<(KnownPair, String)>,
    /// An offset learned before (`doctor --probe-writes`): seconds, where it came from.
    pub learned_offset: Option<(i32, String)>,
    /// The newest naive ticket timestamps the account shows, with when they were read.
    pub newest: Option<(NaiveDateTime, DateTime<Utc>)>,
    /// The `timezone` values of the account's users.
    pub user_zones: Vec<String>,
}

/// Weighs `evidence` against the configured zone.
pub fn judge(configured: Tz, evidence: &ZoneEvidence, now: DateTime<Utc>) -> ZoneVerdict {
    let hint = user_zone_hint(&evidence.user_zones);
    for (pair, source) in &evidence.pairs {
        let ours = configured
            .offset_from_utc_datetime(&pair.utc.naive_utc())
            .fix()
            .local_minus_utc();
        let read = pair.naive - Duration::seconds(i64::from(ours));
        let off = (read - pair.utc.naive_utc()).num_seconds();
        if off.abs() > PAIR_TOLERANCE_SECS {
            let offset = pair.offset_secs();
            return ZoneVerdict::Mismatch {
                account_offset_secs: Some(offset),
                suggestion: suggest(offset, pair.utc, hint.as_deref()),
                how: format!(
                    "{source}: rendered {} for {} UTC, so the account is at UTC{}, not at {} \
                     (UTC{})",
                    pair.naive,
                    pair.utc.format("%Y-%m-%d %H:%M:%S"),
                    fmt_offset(offset),
                    configured.name(),
                    fmt_offset(ours)
                ),
            };
        }
    }
    if let Some((offset, source)) = &evidence.learned_offset {
        // A learned offset is from one instant; it still holds if the configured zone had
        // that offset at some time of year (summer and winter time).
        let fits = [now, now + Duration::days(182)].iter().any(|t| {
            configured
                .offset_from_utc_datetime(&t.naive_utc())
                .fix()
                .local_minus_utc()
                == *offset
        });
        if !fits {
            return ZoneVerdict::Mismatch {
                account_offset_secs: Some(*offset),
                suggestion: suggest(*offset, now, hint.as_deref()),
                how: format!(
                    "{source} measured the account at UTC{}, which {} never is",
                    fmt_offset(*offset),
                    configured.name()
                ),
            };
        }
    }
    if let Some((naive, read_at)) = evidence.newest
        && let Some(utc) =
            super::models::naive_in_zone(&naive.format("%Y-%m-%d %H:%M:%S").to_string(), configured)
        && utc > read_at + FUTURE_TOLERANCE
    {
        let ahead = utc - read_at;
        return ZoneVerdict::Mismatch {
            account_offset_secs: None,
            suggestion: hint
                .clone()
                .unwrap_or_else(|| "a zone east of the configured one".to_string()),
            how: format!(
                "the newest ticket time, {naive}, read in {} lies {} min in the future: the \
                 account renders a zone east of it",
                configured.name(),
                ahead.num_minutes()
            ),
        };
    }
    if !evidence.pairs.is_empty() {
        let (_, source) = &evidence.pairs[0];
        return ZoneVerdict::Confirmed {
            how: format!("{source} matches {}", configured.name()),
        };
    }
    if let Some((_, source)) = &evidence.learned_offset {
        return ZoneVerdict::Confirmed {
            how: format!("{source} matches {}", configured.name()),
        };
    }
    match hint {
        Some(zone) if zone_differs(&zone, configured, now) => ZoneVerdict::Suspect {
            how: format!(
                "the account's users carry the zone {zone}, not {}; a user's zone is not always \
                 the account's (trengo-api.md §4.3): run `trengo-sync doctor --probe-writes \
                 --ticket ID` to measure it",
                configured.name()
            ),
        },
        _ => ZoneVerdict::Unknown,
    }
}

/// The zone every user shares, if they share one.
fn user_zone_hint(zones: &[String]) -> Option<String> {
    let first = zones.first()?;
    zones.iter().all(|z| z == first).then(|| first.clone())
}

fn zone_differs(name: &str, configured: Tz, now: DateTime<Utc>) -> bool {
    match name.parse::<Tz>() {
        Ok(zone) => {
            let now = now.naive_utc();
            let later = now + Duration::days(182);
            [now, later].iter().any(|t| {
                zone.offset_from_utc_datetime(t).fix()
                    != configured.offset_from_utc_datetime(t).fix()
            })
        }
        Err(_) => true,
    }
}

/// A zone to configure for an account at `offset` seconds at `at`: the users' zone when it has
/// that offset then, `UTC` for 0, else the fixed `Etc/GMT` zone (whose sign is inverted).
fn suggest(offset: i32, at: DateTime<Utc>, hint: Option<&str>) -> String {
    if let Some(zone) = hint.and_then(|h| h.parse::<Tz>().ok())
        && zone
            .offset_from_utc_datetime(&at.naive_utc())
            .fix()
            .local_minus_utc()
            == offset
    {
        return zone.name().to_string();
    }
    if offset == 0 {
        return "UTC".to_string();
    }
    if offset % 3600 == 0 {
        let hours = offset / 3600;
        return format!(
            "Etc/GMT{}{}",
            if hours > 0 { "-" } else { "+" },
            hours.abs()
        );
    }
    format!("the zone at UTC{}", fmt_offset(offset))
}

/// `+01:00`, `-05:00`.
pub fn fmt_offset(secs: i32) -> String {
    let sign = if secs < 0 { '-' } else { '+' };
    let secs = secs.abs();
    format!("{sign}{:02}:{:02}", secs / 3600, secs % 3600 / 60)
}

/// What the account shows read-only: users' zones and the newest ticket times (page 1 of
/// `GET /tickets`, newest last message first), read at `now`. Two requests.
pub async fn read_only_evidence(
    client: &TrengoClient,
    now: DateTime<Utc>,
) -> Result<(ZoneEvidence, Vec<NaiveDateTime>), ApiError> {
    let mut evidence = ZoneEvidence::default();
    let users = client.raw_page("/users", Vec::new()).await?;
    if let Some(list) = users.get("data").and_then(Value::as_array) {
        evidence.user_zones = list
            .iter()
            .filter_map(|u| u.get("timezone").and_then(Value::as_str))
            .map(str::to_string)
            .collect();
    }
    let page = client.raw_page("/tickets", Vec::new()).await?;
    let mut times: Vec<NaiveDateTime> = page
        .get("data")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|t| {
            ["updated_at", "latest_message_at"]
                .iter()
                .filter_map(|k| t.get(*k).and_then(Value::as_str))
                .filter_map(lenient::parse_naive)
                .max()
        })
        .collect();
    times.sort_unstable_by(|a, b| b.cmp(a));
    evidence.newest = times.first().map(|t| (*t, now));
    Ok((evidence, times))
}

/// How long the account plausibly goes without a ticket change, from its newest ticket times
/// (newest first): ten times the mean gap between them, between an hour and three days. Six
/// hours when there are too few to tell.
pub fn plausible_quiet(newest_first: &[NaiveDateTime]) -> Duration {
    if newest_first.len() < 5 {
        return Duration::hours(6);
    }
    let span = *newest_first.first().unwrap_or(&NaiveDateTime::MIN)
        - *newest_first.last().unwrap_or(&NaiveDateTime::MIN);
    let gap = span / (newest_first.len() as i32 - 1);
    (gap * 10).clamp(Duration::hours(1), Duration::days(3))
}

/// Reads the evidence (read-only) and judges it; `learned` is an offset stored by `doctor`.
pub async fn detect(
    client: &TrengoClient,
    now: DateTime<Utc>,
    learned: Option<(i32, String)>,
) -> Result<(ZoneVerdict, Duration), ApiError> {
    let (mut evidence, times) = read_only_evidence(client, now).await?;
    evidence.learned_offset = learned;
    Ok((
        judge(client.zone(), &evidence, now),
        plausible_quiet(&times),
    ))
}

/// What the `updated_at_gt` polls have seen, for `/status` and the metrics.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PollHealth {
    /// When a watermark listing last finished.
    pub last_listing_at: Option<DateTime<Utc>>,
    /// When one last returned a ticket.
    pub last_change_at: Option<DateTime<Utc>>,
    /// Seconds since then (or since the first listing, if none ever did).
    pub quiet_secs: i64,
    /// How long a quiet spell is plausible for this account, in seconds.
    pub plausible_quiet_secs: i64,
    /// Tickets the last listings returned that were not newer than their watermark.
    pub not_newer_than_watermark: u64,
    /// Notes whose answer showed the zone to be wrong.
    pub zone_mismatches_seen: u64,
    /// What is wrong and what to do, when something is.
    pub alarm: Option<String>,
}

#[derive(Debug, Default)]
struct WatchState {
    first_listing_at: Option<DateTime<Utc>>,
    last_listing_at: Option<DateTime<Utc>>,
    last_change_at: Option<DateTime<Utc>>,
    plausible_quiet: Option<Duration>,
    not_newer: u64,
    not_newer_example: Option<String>,
    zone_mismatch: Option<String>,
    zone_mismatches_seen: u64,
    alarmed: bool,
}

/// Watches the `updated_at_gt` polls and the notes the client writes (see the module doc).
/// Shared by every clone of one [`TrengoClient`].
#[derive(Debug)]
pub struct PollWatch {
    zone: Tz,
    state: Mutex<WatchState>,
}

impl PollWatch {
    /// A watch for a client reading naive times in `zone`.
    pub fn new(zone: Tz) -> Self {
        Self {
            zone,
            state: Mutex::new(WatchState::default()),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut WatchState) -> T) -> T {
        f(&mut self.state.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Sets how long a quiet spell is plausible (learned by [`detect`]).
    pub fn set_plausible_quiet(&self, quiet: Duration) {
        self.with(|s| s.plausible_quiet = Some(quiet));
    }

    /// One finished watermark listing: at `now`, with `watermark`, it returned `returned`
    /// tickets, of which `not_newer` (id, `updated_at`) were not after the watermark.
    pub fn listing(
        &self,
        now: DateTime<Utc>,
        watermark: DateTime<Utc>,
        returned: usize,
        not_newer: &[(i64, DateTime<Utc>)],
    ) {
        self.with(|s| {
            s.first_listing_at.get_or_insert(now);
            s.last_listing_at = Some(now);
            if returned > 0 {
                s.last_change_at = Some(now);
            }
            s.not_newer = not_newer.len() as u64;
            s.not_newer_example = not_newer.first().map(|(id, at)| {
                format!(
                    "ticket #{id} came back with updated_at {} for updated_at_gt {}",
                    at.to_rfc3339(),
                    watermark.to_rfc3339()
                )
            });
        });
        self.log_transition(now);
    }

    /// An internal note's create answer: checks its naive `created_at` against its
    /// `created_at_time` (see [`pair_from_created_message`]).
    pub fn created_message(&self, answer: &Value, now: DateTime<Utc>) {
        let Some(pair) = pair_from_created_message(answer) else {
            return;
        };
        let evidence = ZoneEvidence {
            pairs: vec![(pair, "an internal note the daemon wrote".to_string())],
            ..ZoneEvidence::default()
        };
        if let ZoneVerdict::Mismatch {
            how, suggestion, ..
        } = judge(self.zone, &evidence, now)
        {
            self.with(|s| {
                s.zone_mismatches_seen += 1;
                s.zone_mismatch = Some(format!(
                    "{how}; set trengo.timezone = \"{suggestion}\" and restart"
                ));
            });
        } else {
            self.with(|s| s.zone_mismatch = None);
        }
        self.log_transition(now);
    }

    /// The watch's view at `now`.
    pub fn health(&self, now: DateTime<Utc>) -> PollHealth {
        self.with(|s| {
            let plausible = s.plausible_quiet.unwrap_or(Duration::hours(6));
            let quiet_from = s.last_change_at.or(s.first_listing_at);
            let quiet = quiet_from.map_or(Duration::zero(), |t| now - t);
            let alarm = if let Some(mismatch) = &s.zone_mismatch {
                Some(mismatch.clone())
            } else if let Some(example) = &s.not_newer_example {
                Some(format!(
                    "Trengo returned {} ticket(s) not newer than the watermark ({example}): \
                     updated_at_gt was ignored or read in another zone than trengo.timezone \
                     ({}); run `trengo-sync doctor`",
                    s.not_newer,
                    self.zone.name()
                ))
            } else if quiet_from.is_some() && quiet > plausible {
                Some(format!(
                    "no Trengo ticket changed for {} h according to the updated_at_gt polls, \
                     longer than is plausible for this account ({} h): the watermark may lie in \
                     the account's future because trengo.timezone ({}) is not its zone; run \
                     `trengo-sync doctor`",
                    quiet.num_hours(),
                    plausible.num_hours(),
                    self.zone.name()
                ))
            } else {
                None
            };
            PollHealth {
                last_listing_at: s.last_listing_at,
                last_change_at: s.last_change_at,
                quiet_secs: quiet.num_seconds(),
                plausible_quiet_secs: plausible.num_seconds(),
                not_newer_than_watermark: s.not_newer,
                zone_mismatches_seen: s.zone_mismatches_seen,
                alarm,
            }
        })
    }

    fn log_transition(&self, now: DateTime<Utc>) {
        let health = self.health(now);
        let was = self.with(|s| std::mem::replace(&mut s.alarmed, health.alarm.is_some()));
        match (&health.alarm, was) {
            (Some(alarm), false) => tracing::warn!(alarm = %alarm, "Trengo poll alarm"),
            (None, true) => tracing::info!("Trengo poll alarm cleared"),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn naive(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").unwrap()
    }

    #[test]
    fn a_created_note_proves_the_zone_either_way() {
        // S14: naive 10:28:24 next to created_at_time 1704968904 (10:28:24 UTC).
        let answer = json!({"message": {"id": 1, "created_at": "2024-01-11 10:28:24",
                                         "created_at_time": 1_704_968_904}});
        let pair = pair_from_created_message(&answer).unwrap();
        assert_eq!(pair.offset_secs(), 0);
        let evidence = ZoneEvidence {
            pairs: vec![(pair, "a note".into())],
            ..ZoneEvidence::default()
        };
        assert!(matches!(
            judge(chrono_tz::UTC, &evidence, pair.utc),
            ZoneVerdict::Confirmed { .. }
        ));
        match judge(chrono_tz::Europe::Amsterdam, &evidence, pair.utc) {
            ZoneVerdict::Mismatch {
                account_offset_secs,
                suggestion,
                how,
            } => {
                assert_eq!(account_offset_secs, Some(0));
                assert_eq!(suggestion, "UTC");
                assert!(
                    how.contains("UTC+00:00") && how.contains("Europe/Amsterdam"),
                    "{how}"
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_ticket_time_in_the_future_proves_the_account_east_of_the_configured_zone() {
        let now = at("2026-02-03T13:05:00Z");
        let evidence = ZoneEvidence {
            newest: Some((naive("2026-02-03 15:00:00"), at("2026-02-03T13:05:00Z"))),
            ..ZoneEvidence::default()
        };
        // Read as Amsterdam (UTC+1) that is 14:00Z, 55 min ahead: the account is further east.
        assert!(matches!(
            judge(chrono_tz::Europe::Amsterdam, &evidence, now),
            ZoneVerdict::Mismatch { .. }
        ));
        assert_eq!(
            judge(chrono_tz::Europe::Athens, &evidence, now),
            ZoneVerdict::Unknown
        );
    }

    #[test]
    fn a_users_zone_is_only_a_hint_and_a_learned_offset_is_proof() {
        let now = at("2026-02-03T13:05:00Z");
        let evidence = ZoneEvidence {
            user_zones: vec!["Africa/Cairo".into(), "Africa/Cairo".into()],
            ..ZoneEvidence::default()
        };
        assert!(matches!(
            judge(chrono_tz::Europe::Amsterdam, &evidence, now),
            ZoneVerdict::Suspect { .. }
        ));
        let learned = ZoneEvidence {
            learned_offset: Some((-18_000, "doctor".into())),
            ..ZoneEvidence::default()
        };
        match judge(chrono_tz::Europe::Amsterdam, &learned, now) {
            ZoneVerdict::Mismatch { suggestion, .. } => assert_eq!(suggestion, "Etc/GMT+5"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            judge(chrono_tz::America::New_York, &learned, now),
            ZoneVerdict::Confirmed { .. }
        ));
    }

    #[test]
    fn the_watch_alarms_on_old_tickets_and_on_an_implausibly_long_quiet() {
        let watch = PollWatch::new(chrono_tz::Europe::Amsterdam);
        let t0 = at("2026-02-03T12:00:00Z");
        watch.set_plausible_quiet(Duration::hours(2));
        watch.listing(t0, t0, 3, &[]);
        assert!(watch.health(t0).alarm.is_none());
        watch.listing(t0 + Duration::minutes(1), t0, 0, &[]);
        assert!(watch.health(t0 + Duration::hours(1)).alarm.is_none());
        let alarm = watch.health(t0 + Duration::hours(3)).alarm.unwrap();
        assert!(alarm.contains("trengo.timezone"), "{alarm}");
        watch.listing(
            t0 + Duration::hours(3),
            t0,
            1,
            &[(7, t0 - Duration::hours(5))],
        );
        let alarm = watch.health(t0 + Duration::hours(3)).alarm.unwrap();
        assert!(
            alarm.contains("#7") && alarm.contains("not newer"),
            "{alarm}"
        );
        watch.listing(t0 + Duration::hours(4), t0, 2, &[]);
        assert!(watch.health(t0 + Duration::hours(4)).alarm.is_none());
    }

    #[test]
    fn plausible_quiet_follows_the_accounts_pace() {
        let busy: Vec<_> = (0..25)
            .map(|i| naive("2026-02-03 12:00:00") - Duration::minutes(i))
            .collect();
        assert_eq!(plausible_quiet(&busy), Duration::hours(1));
        let slow: Vec<_> = (0..25)
            .map(|i| naive("2026-02-03 12:00:00") - Duration::hours(i * 2))
            .collect();
        assert_eq!(plausible_quiet(&slow), Duration::hours(20));
        assert_eq!(plausible_quiet(&[]), Duration::hours(6));
    }
}

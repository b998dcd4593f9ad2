//! Retries: items that failed, when to try them again, and why they failed.
//!
//! A failing item never blocks other items or the cursors (sync-model.md §4 rule 8): it lands
//! here with an exponential, capped backoff, is picked up again when due, and shows as stuck
//! in `status` once it has been failing for long. Items are named `kind:id`
//! (`ticket:123`, `task:abc`, `contact:x`).
//!
//! Retries are bounded (issue #13 item 2): after [`RetryPolicy::attempts`] failures in a row,
//! or at once through [`park`] for an item that cannot succeed (gone, invalid data), an item
//! is *parked*: kept with its reason and shown as stuck, but no longer [`due`], so a pile of
//! hopeless items cannot make every pass re-read them forever. A parked item leaves the table
//! when a later read syncs it anyway ([`clear`]), or is queued again by hand ([`requeue`],
//! `trengo-sync retry`).

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use rusqlite::{Connection, Row, params};

use super::StoreError;
use super::codec::Stamp;

/// How long to wait before the next attempt: `base`, doubling per failure, at most `max`;
/// and how many failures in a row park the item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The wait after the first failure.
    pub base: Duration,
    /// The longest wait.
    pub max: Duration,
    /// Failures in a row after which the item is parked (`limits.item_attempts`).
    pub attempts: u32,
}

impl RetryPolicy {
    /// The wait after the `attempts`-th consecutive failure (1 for the first).
    pub fn delay(&self, attempts: u32) -> Duration {
        let doublings = attempts.saturating_sub(1).min(63);
        let factor = 1u64 << doublings;
        let factor = u32::try_from(factor).unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.max)
    }
}

/// One failing item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retry {
    /// The item, as `kind:id`.
    pub item: String,
    /// How many times in a row it failed.
    pub attempts: u32,
    /// When the current run of failures began.
    pub first_failed_at: DateTime<Utc>,
    /// When it is due again.
    pub next_at: DateTime<Utc>,
    /// Why it failed last.
    pub reason: String,
    /// When it was parked: it is then never due again on its own.
    pub parked_at: Option<DateTime<Utc>>,
}

const COLUMNS: &str = "item, attempts, first_failed_at, next_at, reason, parked_at";

fn from_row(row: &Row<'_>) -> rusqlite::Result<Retry> {
    Ok(Retry {
        item: row.get(0)?,
        attempts: row.get(1)?,
        first_failed_at: row.get::<_, Stamp>(2)?.0,
        next_at: row.get::<_, Stamp>(3)?.0,
        reason: row.get(4)?,
        parked_at: row.get::<_, Option<Stamp>>(5)?.map(|s| s.0),
    })
}

fn after(now: DateTime<Utc>, wait: Duration) -> DateTime<Utc> {
    // A wait too long for chrono is "never" in practice; clamp rather than fail the item.
    TimeDelta::from_std(wait)
        .ok()
        .and_then(|d| now.checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// Records one more failure of `item` and schedules its next attempt; at the policy's
/// attempt cap the item is parked instead (logged once, with its reason).
pub fn fail(
    conn: &Connection,
    item: &str,
    reason: &str,
    now: DateTime<Utc>,
    policy: &RetryPolicy,
) -> Result<Retry, StoreError> {
    // A held item was not failing: its first failure is this one.
    let previous = get(conn, item)?.filter(|r| !r.reason.starts_with(HELD));
    let attempts = next_attempt(previous.as_ref());
    let parked = attempts >= policy.attempts.max(1);
    let reason = if parked && previous.as_ref().is_none_or(|p| p.parked_at.is_none()) {
        tracing::warn!(
            item,
            attempts,
            %reason,
            "item parked after too many failed attempts; it is shown as stuck and no longer \
             retried on its own (`trengo-sync retry {item}` queues it again)"
        );
        format!("parked after {attempts} attempts: {reason}")
    } else {
        reason.to_string()
    };
    put(
        conn,
        previous,
        item,
        attempts,
        &reason,
        after(now, policy.delay(attempts)),
        parked.then_some(now),
        now,
    )
}

/// Parks `item` at once with `reason`: it cannot succeed by trying again (the item is gone,
/// or its data is invalid). It stays in the table, shown as stuck, until a later read syncs
/// it ([`clear`]) or a person queues it again ([`requeue`]).
pub fn park(
    conn: &Connection,
    item: &str,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<Retry, StoreError> {
    let previous = get(conn, item)?.filter(|r| !r.reason.starts_with(HELD));
    let attempts = next_attempt(previous.as_ref());
    tracing::warn!(item, %reason, "item parked: it cannot succeed by retrying");
    put(conn, previous, item, attempts, reason, now, Some(now), now)
}

/// The number of the failure being recorded after `previous`.
fn next_attempt(previous: Option<&Retry>) -> u32 {
    previous.map_or(0, |r| r.attempts).saturating_add(1)
}

// One row per item; the columns travel separately as the table has them.
#[allow(clippy::too_many_arguments)]
fn put(
    conn: &Connection,
    previous: Option<Retry>,
    item: &str,
    attempts: u32,
    reason: &str,
    next_at: DateTime<Utc>,
    parked_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<Retry, StoreError> {
    let retry = Retry {
        item: item.to_owned(),
        attempts,
        first_failed_at: previous.as_ref().map_or(now, |r| r.first_failed_at),
        next_at,
        reason: reason.to_owned(),
        // Parked stays parked (with its first date) until cleared or queued again.
        parked_at: previous.and_then(|r| r.parked_at).or(parked_at),
    };
    conn.prepare_cached(
        "INSERT INTO retries (item, attempts, first_failed_at, next_at, reason, parked_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (item) DO UPDATE SET attempts = excluded.attempts,
             first_failed_at = excluded.first_failed_at,
             next_at = excluded.next_at, reason = excluded.reason,
             parked_at = excluded.parked_at",
    )?
    .execute(params![
        retry.item,
        retry.attempts,
        Stamp(retry.first_failed_at),
        Stamp(retry.next_at),
        retry.reason,
        retry.parked_at.map(Stamp),
    ])?;
    Ok(retry)
}

/// Queues a parked (or waiting) item again: due at `now`, with a fresh count of attempts.
/// Returns whether the item was in the table.
pub fn requeue(conn: &Connection, item: &str, now: DateTime<Utc>) -> Result<bool, StoreError> {
    Ok(conn.execute(
        "UPDATE retries SET parked_at = NULL, attempts = 0, next_at = ?2 WHERE item = ?1",
        params![item, Stamp(now)],
    )? == 1)
}

/// Queues every parked item again (see [`requeue`]); returns their names.
pub fn requeue_parked(conn: &Connection, now: DateTime<Utc>) -> Result<Vec<String>, StoreError> {
    let items: Vec<String> = parked(conn)?.into_iter().map(|r| r.item).collect();
    for item in &items {
        requeue(conn, item, now)?;
    }
    Ok(items)
}

/// Every parked item, by item name.
pub fn parked(conn: &Connection) -> Result<Vec<Retry>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM retries WHERE parked_at IS NOT NULL ORDER BY item"
    ))?;
    let parked = stmt.query_map([], from_row)?.collect::<Result<_, _>>()?;
    Ok(parked)
}

/// What the reason of a held item starts with: an item a pause kept from being written
/// (see [`hold`]). Held items are not failing: they are not stuck and never come due on
/// their own.
pub const HELD: &str = "held: ";

/// Records that a pause kept `item` from being written: it comes back when the pause is lifted
/// ([`release_held`]), read fresh and planned again. An item that was failing keeps its count;
/// a parked item stays parked.
pub fn hold(
    conn: &Connection,
    item: &str,
    why: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO retries (item, attempts, first_failed_at, next_at, reason)
         VALUES (?1, 0, ?2, ?3, ?4)
         ON CONFLICT (item) DO UPDATE SET next_at = excluded.next_at, reason = excluded.reason
         WHERE retries.parked_at IS NULL",
    )?
    .execute(params![
        item,
        Stamp(now),
        Stamp(never()),
        format!("{HELD}{why}")
    ])?;
    Ok(())
}

/// When a held item is due on its own: never (the last instant a stored time can hold; RFC 3339
/// has four-digit years).
fn never() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("9999-12-31T23:59:59Z")
        .map(|d| d.with_timezone(&Utc))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// Makes every held item due at `now` (a pause was lifted); returns how many.
pub fn release_held(conn: &Connection, now: DateTime<Utc>) -> Result<usize, StoreError> {
    Ok(conn
        .prepare_cached("UPDATE retries SET next_at = ?1 WHERE substr(reason, 1, ?2) = ?3")?
        .execute(params![Stamp(now), HELD.len() as i64, HELD])?)
}

/// How many items a pause holds.
pub fn held_count(conn: &Connection) -> Result<u64, StoreError> {
    let n: i64 = conn
        .prepare_cached("SELECT COUNT(*) FROM retries WHERE substr(reason, 1, ?1) = ?2")?
        .query_row(params![HELD.len() as i64, HELD], |row| row.get(0))?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// The failing item `item`, if it is failing.
pub fn get(conn: &Connection, item: &str) -> Result<Option<Retry>, StoreError> {
    let mut stmt =
        conn.prepare_cached(&format!("SELECT {COLUMNS} FROM retries WHERE item = ?1"))?;
    let mut rows = stmt.query_map([item], from_row)?;
    Ok(rows.next().transpose()?)
}

/// The items due for another attempt at `now`, longest-waiting first; parked items never are.
pub fn due(conn: &Connection, now: DateTime<Utc>) -> Result<Vec<Retry>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM retries WHERE parked_at IS NULL AND next_at <= ?1
         ORDER BY next_at, item"
    ))?;
    let due = stmt
        .query_map([Stamp(now)], from_row)?
        .collect::<Result<_, _>>()?;
    Ok(due)
}

/// Forgets an item that succeeded; returns whether it was failing.
pub fn clear(conn: &Connection, item: &str) -> Result<bool, StoreError> {
    Ok(conn.execute("DELETE FROM retries WHERE item = ?1", [item])? == 1)
}

/// Every failing item, by item name.
pub fn all(conn: &Connection) -> Result<Vec<Retry>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!("SELECT {COLUMNS} FROM retries ORDER BY item"))?;
    let all = stmt.query_map([], from_row)?.collect::<Result<_, _>>()?;
    Ok(all)
}

/// Items failing for at least `older_than` at `now`, and every parked item: shown as stuck.
pub fn stuck(
    conn: &Connection,
    now: DateTime<Utc>,
    older_than: Duration,
) -> Result<Vec<Retry>, StoreError> {
    let since = TimeDelta::from_std(older_than)
        .ok()
        .and_then(|d| now.checked_sub_signed(d))
        .unwrap_or(DateTime::<Utc>::MIN_UTC);
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM retries
         WHERE (first_failed_at <= ?1 AND substr(reason, 1, ?2) != ?3) OR parked_at IS NOT NULL
         ORDER BY first_failed_at, item"
    ))?;
    let stuck = stmt
        .query_map(params![Stamp(since), HELD.len() as i64, HELD], from_row)?
        .collect::<Result<_, _>>()?;
    Ok(stuck)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delay_doubles_from_base_and_caps_at_max() {
        let policy = RetryPolicy {
            base: Duration::from_secs(30),
            max: Duration::from_secs(3600),
            attempts: 12,
        };
        let delays: Vec<u64> = (1..=9).map(|n| policy.delay(n).as_secs()).collect();
        assert_eq!(delays, [30, 60, 120, 240, 480, 960, 1920, 3600, 3600]);
        assert_eq!(policy.delay(u32::MAX), Duration::from_secs(3600));
    }

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + secs, 0).unwrap()
    }

    fn store() -> crate::store::Store {
        crate::store::Store::open_in_memory().unwrap()
    }

    #[test]
    fn an_item_failing_up_to_the_cap_is_parked_and_no_longer_due() {
        let s = store();
        let policy = RetryPolicy {
            base: Duration::from_secs(1),
            max: Duration::from_secs(1),
            attempts: 3,
        };
        for n in 0..2 {
            let r = fail(s.conn(), "contact:x", "HTTP 500", at(n * 10), &policy).unwrap();
            assert!(r.parked_at.is_none());
            assert_eq!(due(s.conn(), at(n * 10 + 5)).unwrap().len(), 1);
        }
        let r = fail(s.conn(), "contact:x", "HTTP 500", at(20), &policy).unwrap();
        assert_eq!(r.parked_at, Some(at(20)));
        assert!(r.reason.contains("parked after 3 attempts"), "{}", r.reason);
        assert!(due(s.conn(), at(10_000)).unwrap().is_empty());
        let stuck = stuck(s.conn(), at(21), Duration::from_secs(3600)).unwrap();
        assert_eq!(stuck.len(), 1, "parked is stuck at once");
        // Another failure (a poll read it again) keeps it parked, with its first date.
        let r = fail(s.conn(), "contact:x", "HTTP 500", at(30), &policy).unwrap();
        assert_eq!(r.parked_at, Some(at(20)));
        // By hand it is queued again, with a fresh count.
        assert!(requeue(s.conn(), "contact:x", at(40)).unwrap());
        let again = due(s.conn(), at(40)).unwrap();
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].attempts, 0);
        assert!(again[0].parked_at.is_none());
    }

    #[test]
    fn park_parks_at_once_and_clear_forgets_a_parked_item() {
        let s = store();
        let r = park(s.conn(), "ticket:9", "HTTP 404: the ticket is gone", at(0)).unwrap();
        assert_eq!(r.parked_at, Some(at(0)));
        assert!(due(s.conn(), at(100)).unwrap().is_empty());
        assert_eq!(parked(s.conn()).unwrap().len(), 1);
        assert_eq!(requeue_parked(s.conn(), at(5)).unwrap(), ["ticket:9"]);
        assert!(parked(s.conn()).unwrap().is_empty());
        park(s.conn(), "ticket:9", "gone", at(6)).unwrap();
        assert!(clear(s.conn(), "ticket:9").unwrap());
        assert!(all(s.conn()).unwrap().is_empty());
    }
}

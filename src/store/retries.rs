//! Retries: items that failed, when to try them again, and why they failed.
//!
//! A failing item never blocks other items or the cursors (sync-model.md §4 rule 8): it lands
//! here with an exponential, capped backoff, is picked up again when due, and shows as stuck
//! in `status` once it has been failing for long. Items are named `kind:id`
//! (`ticket:123`, `task:abc`, `contact:x`).

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use rusqlite::{Connection, Row, params};

use super::StoreError;
use super::codec::Stamp;

/// How long to wait before the next attempt: `base`, doubling per failure, at most `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The wait after the first failure.
    pub base: Duration,
    /// The longest wait.
    pub max: Duration,
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
}

const COLUMNS: &str = "item, attempts, first_failed_at, next_at, reason";

fn from_row(row: &Row<'_>) -> rusqlite::Result<Retry> {
    Ok(Retry {
        item: row.get(0)?,
        attempts: row.get(1)?,
        first_failed_at: row.get::<_, Stamp>(2)?.0,
        next_at: row.get::<_, Stamp>(3)?.0,
        reason: row.get(4)?,
    })
}

fn after(now: DateTime<Utc>, wait: Duration) -> DateTime<Utc> {
    // A wait too long for chrono is "never" in practice; clamp rather than fail the item.
    TimeDelta::from_std(wait)
        .ok()
        .and_then(|d| now.checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// Records one more failure of `item` and schedules its next attempt.
pub fn fail(
    conn: &Connection,
    item: &str,
    reason: &str,
    now: DateTime<Utc>,
    policy: &RetryPolicy,
) -> Result<Retry, StoreError> {
    // A held item was not failing: its first failure is this one.
    let previous = get(conn, item)?.filter(|r| !r.reason.starts_with(HELD));
    let attempts = previous
        .as_ref()
        .map_or(0, |r| r.attempts)
        .saturating_add(1);
    let first_failed_at = previous.map_or(now, |r| r.first_failed_at);
    let retry = Retry {
        item: item.to_owned(),
        attempts,
        first_failed_at,
        next_at: after(now, policy.delay(attempts)),
        reason: reason.to_owned(),
    };
    conn.prepare_cached(
        "INSERT INTO retries (item, attempts, first_failed_at, next_at, reason)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (item) DO UPDATE SET attempts = excluded.attempts,
             first_failed_at = excluded.first_failed_at,
             next_at = excluded.next_at, reason = excluded.reason",
    )?
    .execute(params![
        retry.item,
        retry.attempts,
        Stamp(retry.first_failed_at),
        Stamp(retry.next_at),
        retry.reason
    ])?;
    Ok(retry)
}

/// What the reason of a held item starts with: an item a pause kept from being written
/// (see [`hold`]). Held items are not failing: they are not stuck and never come due on
/// their own.
pub const HELD: &str = "held: ";

/// Records that a pause kept `item` from being written: it comes back when the pause is lifted
/// ([`release_held`]), read fresh and planned again. An item that was failing keeps its count.
pub fn hold(
    conn: &Connection,
    item: &str,
    why: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO retries (item, attempts, first_failed_at, next_at, reason)
         VALUES (?1, 0, ?2, ?3, ?4)
         ON CONFLICT (item) DO UPDATE SET next_at = excluded.next_at, reason = excluded.reason",
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

/// The items due for another attempt at `now`, longest-waiting first.
pub fn due(conn: &Connection, now: DateTime<Utc>) -> Result<Vec<Retry>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM retries WHERE next_at <= ?1 ORDER BY next_at, item"
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

/// Items failing for at least `older_than` at `now`: shown as stuck.
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
        "SELECT {COLUMNS} FROM retries WHERE first_failed_at <= ?1 AND substr(reason, 1, ?2) != ?3
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
        };
        let delays: Vec<u64> = (1..=9).map(|n| policy.delay(n).as_secs()).collect();
        assert_eq!(delays, [30, 60, 120, 240, 480, 960, 1920, 3600, 3600]);
        assert_eq!(policy.delay(u32::MAX), Duration::from_secs(3600));
    }
}

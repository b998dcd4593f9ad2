//! Intents: the journal of remote writes.
//!
//! Before the engine creates a task, ticket or note remotely, it commits an intent carrying the
//! idempotency key that travels inside the created object (the ticket URL in a task body, the
//! source id in a note). On start, open intents are settled by looking for the key before any
//! retry, so a crash between "created remotely" and "recorded locally" never duplicates
//! (sync-model.md §4 rule 4). `finish` belongs in the same transaction as the base it enables.
//!
//! Updates (a status, an assignee, tags) are journalled too, as kind `update`, holding the
//! value being written (see `sync::execute::journal`): they end by [`remove`], and the
//! engine settles the ones a crash left open by reading the written side.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, Row, params};
use serde_json::Value;

use super::StoreError;
use super::codec::{Json, Stamp, text_enum};
use super::error::is_constraint;
use super::links::LinkId;

/// Where an intent stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntentState {
    /// Journalled; the remote create may or may not have happened.
    Open,
    /// The remote object exists and is recorded.
    Done,
    /// Given up (the item left scope, or the create was refused for good).
    Abandoned,
}

text_enum!(IntentState {
    Open => "open",
    Done => "done",
    Abandoned => "abandoned",
});

/// One journalled remote create.
#[derive(Debug, Clone, PartialEq)]
pub struct Intent {
    /// Its row id.
    pub id: i64,
    /// The idempotency key that travels inside the created object.
    pub key: String,
    /// What is being created (e.g. `create_task`, `create_ticket`, `create_note`).
    pub kind: String,
    /// The link it concerns, once there is one.
    pub link_id: Option<LinkId>,
    /// What the engine needs to redo or settle the create.
    pub payload: Value,
    /// Where it stands.
    pub state: IntentState,
    /// The outcome: the created ids when done, the reason when abandoned.
    pub result: Option<Value>,
    /// When it was journalled.
    pub created_at: DateTime<Utc>,
    /// When it was finished or abandoned.
    pub settled_at: Option<DateTime<Utc>>,
}

const COLUMNS: &str = "id, key, kind, link_id, payload, state, result, created_at, settled_at";

fn from_row(row: &Row<'_>) -> rusqlite::Result<Intent> {
    Ok(Intent {
        id: row.get(0)?,
        key: row.get(1)?,
        kind: row.get(2)?,
        link_id: row.get(3)?,
        payload: row.get::<_, Json>(4)?.0,
        state: row.get(5)?,
        result: row.get::<_, Option<Json>>(6)?.map(|j| j.0),
        created_at: row.get::<_, Stamp>(7)?.0,
        settled_at: row.get::<_, Option<Stamp>>(8)?.map(|s| s.0),
    })
}

/// Journals a remote create before it is made. A key that was ever journalled is refused.
pub fn open(
    conn: &Connection,
    key: &str,
    kind: &str,
    link: Option<LinkId>,
    payload: &Value,
    now: DateTime<Utc>,
) -> Result<Intent, StoreError> {
    let inserted = conn.execute(
        "INSERT INTO intents (key, kind, link_id, payload, state, created_at)
         VALUES (?1, ?2, ?3, ?4, 'open', ?5)",
        params![key, kind, link, Json(payload.clone()), Stamp(now)],
    );
    match inserted {
        Ok(_) => {}
        Err(e) if is_constraint(&e) && get(conn, key)?.is_some() => {
            return Err(StoreError::DuplicateIntent {
                key: key.to_owned(),
            });
        }
        Err(e) => return Err(e.into()),
    }
    Ok(Intent {
        id: conn.last_insert_rowid(),
        key: key.to_owned(),
        kind: kind.to_owned(),
        link_id: link,
        payload: payload.clone(),
        state: IntentState::Open,
        result: None,
        created_at: now,
        settled_at: None,
    })
}

/// The intent with this key, in any state.
pub fn get(conn: &Connection, key: &str) -> Result<Option<Intent>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM intents WHERE key = ?1");
    Ok(conn.query_row(&sql, [key], from_row).optional()?)
}

/// Every open intent, oldest first: what start-up must settle before anything else.
pub fn open_all(conn: &Connection) -> Result<Vec<Intent>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM intents WHERE state = 'open' ORDER BY id");
    let mut stmt = conn.prepare_cached(&sql)?;
    let intents = stmt.query_map([], from_row)?.collect::<Result<_, _>>()?;
    Ok(intents)
}

/// Marks an open intent done, with what was created.
pub fn finish(
    conn: &Connection,
    key: &str,
    result: &Value,
    now: DateTime<Utc>,
) -> Result<Intent, StoreError> {
    settle(conn, key, IntentState::Done, result, now)
}

/// Gives up an open intent, recording why.
pub fn abandon(
    conn: &Connection,
    key: &str,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<Intent, StoreError> {
    settle(
        conn,
        key,
        IntentState::Abandoned,
        &Value::String(reason.to_owned()),
        now,
    )
}

/// Deletes an intent, whatever its state. Update intents end this way (the ledger already
/// records each write; keeping one row per status toggle would grow the store without bound),
/// in the transaction that records what the write changed.
pub fn remove(conn: &Connection, key: &str) -> Result<(), StoreError> {
    conn.execute("DELETE FROM intents WHERE key = ?1", [key])?;
    Ok(())
}

fn settle(
    conn: &Connection,
    key: &str,
    to: IntentState,
    result: &Value,
    now: DateTime<Utc>,
) -> Result<Intent, StoreError> {
    // Only an open intent moves: settling twice would hide a bug in the crash recovery.
    let changed = conn.execute(
        "UPDATE intents SET state = ?2, result = ?3, settled_at = ?4
         WHERE key = ?1 AND state = 'open'",
        params![key, to, Json(result.clone()), Stamp(now)],
    )?;
    let intent = get(conn, key)?.ok_or_else(|| StoreError::UnknownIntent {
        key: key.to_owned(),
    })?;
    if changed == 0 {
        return Err(StoreError::IntentSettled {
            key: key.to_owned(),
            state: intent.state.to_string(),
        });
    }
    Ok(intent)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;
    use crate::store::links::tests::at;
    use serde_json::json;

    #[test]
    fn settling_twice_is_refused() {
        let store = Store::open_in_memory().unwrap();
        let conn = store.conn();
        let t0 = at("2026-01-01T00:00:00Z");
        open(conn, "k", "create_task", None, &json!({}), t0).unwrap();
        finish(conn, "k", &json!({"task_id": "t"}), t0).unwrap();
        let err = abandon(conn, "k", "left scope", t0).unwrap_err();
        assert!(matches!(err, StoreError::IntentSettled { ref state, .. } if state == "done"));
        let err = finish(conn, "nope", &json!({}), t0).unwrap_err();
        assert!(matches!(err, StoreError::UnknownIntent { .. }));
    }
}

//! The Trengo account and GHL location a database belongs to.
//!
//! A database made for one account must never drive another (sync-model.md §4 rule 7): its
//! links and bases would be applied to strangers' tickets. The first start binds the identity;
//! every later start must name the same one.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};

use super::StoreError;
use super::codec::Stamp;

/// The accounts a database is bound to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The Trengo account (its id or subdomain, as the caller identifies it).
    pub trengo_account: String,
    /// The GHL location (sub-account) id.
    pub ghl_location: String,
}

/// The stored identity and when it was bound.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bound {
    pub identity: Identity,
    /// When it was first bound.
    pub bound_at: DateTime<Utc>,
}

/// Binds the database to `identity` on first use; afterwards succeeds only for the same one.
pub fn bind(
    conn: &Connection,
    identity: &Identity,
    now: DateTime<Utc>,
) -> Result<Bound, StoreError> {
    // INSERT OR IGNORE then read back: a single statement decides the race between two
    // processes binding at once, and the loser sees the winner's identity.
    conn.execute(
        "INSERT OR IGNORE INTO identity (id, trengo_account, ghl_location, bound_at)
         VALUES (1, ?1, ?2, ?3)",
        params![identity.trengo_account, identity.ghl_location, Stamp(now)],
    )?;
    let bound =
        get(conn)?.ok_or_else(|| StoreError::Sqlite(rusqlite::Error::QueryReturnedNoRows))?;
    if bound.identity != *identity {
        return Err(StoreError::IdentityMismatch {
            bound: bound.identity,
            given: identity.clone(),
        });
    }
    Ok(bound)
}

/// The bound identity, if any.
pub fn get(conn: &Connection) -> Result<Option<Bound>, StoreError> {
    Ok(conn
        .query_row(
            "SELECT trengo_account, ghl_location, bound_at FROM identity WHERE id = 1",
            [],
            |row| {
                Ok(Bound {
                    identity: Identity {
                        trengo_account: row.get(0)?,
                        ghl_location: row.get(1)?,
                    },
                    bound_at: row.get::<_, Stamp>(2)?.0,
                })
            },
        )
        .optional()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn ours() -> Identity {
        Identity {
            trengo_account: "acme".into(),
            ghl_location: "loc-1".into(),
        }
    }

    #[test]
    fn binding_again_keeps_the_first_bind_time() {
        let store = Store::open_in_memory().unwrap();
        bind(store.conn(), &ours(), at("2026-01-01T00:00:00Z")).unwrap();
        let again = bind(store.conn(), &ours(), at("2026-02-01T00:00:00Z")).unwrap();
        assert_eq!(again.bound_at, at("2026-01-01T00:00:00Z"));
    }

    #[test]
    fn another_location_is_refused_with_both_named() {
        let store = Store::open_in_memory().unwrap();
        bind(store.conn(), &ours(), at("2026-01-01T00:00:00Z")).unwrap();
        let other = Identity {
            trengo_account: "acme".into(),
            ghl_location: "loc-2".into(),
        };
        let err = bind(store.conn(), &other, at("2026-01-02T00:00:00Z")).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("loc-1") && text.contains("loc-2"), "{text}");
        assert!(text.contains("store.path"), "{text}");
    }
}

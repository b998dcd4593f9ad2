//! The stored GHL OAuth tokens.
//!
//! GHL returns a new refresh token on every use (ghl-api.md §1.2 \[spec S5\], treated as single-use
//! there \[recon\]): the newest one must survive
//! a restart, so it is stored on purpose, in the same file as the rest of the state (keep that
//! file's permissions tight). The tokens stay `SecretString`s in memory and never reach
//! `Debug`, logs or errors.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};
use secrecy::{ExposeSecret, SecretString};

use super::StoreError;
use super::codec::Stamp;

/// The OAuth tokens of the GHL location.
#[derive(Clone)]
pub struct StoredOAuth {
    /// The current refresh token (single use: each refresh returns the next one).
    pub refresh_token: SecretString,
    /// The current access token, if one was obtained.
    pub access_token: Option<SecretString>,
    /// When the access token expires.
    pub access_expires_at: Option<DateTime<Utc>>,
}

impl std::fmt::Debug for StoredOAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredOAuth")
            .field("refresh_token", &"[redacted]")
            .field(
                "access_token",
                &self.access_token.as_ref().map(|_| "[redacted]"),
            )
            .field("access_expires_at", &self.access_expires_at)
            .finish()
    }
}

/// The stored tokens, if any were saved.
pub fn load(conn: &Connection) -> Result<Option<StoredOAuth>, StoreError> {
    Ok(conn
        .query_row(
            "SELECT refresh_token, access_token, access_expires_at FROM oauth WHERE id = 1",
            [],
            |row| {
                Ok(StoredOAuth {
                    refresh_token: SecretString::from(row.get::<_, String>(0)?),
                    access_token: row.get::<_, Option<String>>(1)?.map(SecretString::from),
                    access_expires_at: row.get::<_, Option<Stamp>>(2)?.map(|s| s.0),
                })
            },
        )
        .optional()?)
}

/// When the stored tokens were saved: the current refresh token was issued then (every save
/// carries a newly issued one), which starts its one year of validity (ghl-api.md §1.2).
pub fn saved_at(conn: &Connection) -> Result<Option<DateTime<Utc>>, StoreError> {
    Ok(conn
        .query_row("SELECT updated_at FROM oauth WHERE id = 1", [], |row| {
            row.get::<_, Stamp>(0)
        })
        .optional()?
        .map(|s| s.0))
}

/// Replaces the stored tokens. Save the rotated refresh token before using the new access
/// token: a crash in between would otherwise lose the only valid refresh token.
pub fn save(conn: &Connection, tokens: &StoredOAuth, now: DateTime<Utc>) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO oauth (id, refresh_token, access_token, access_expires_at, updated_at)
         VALUES (1, ?1, ?2, ?3, ?4)
         ON CONFLICT (id) DO UPDATE SET refresh_token = excluded.refresh_token,
             access_token = excluded.access_token,
             access_expires_at = excluded.access_expires_at, updated_at = excluded.updated_at",
        params![
            tokens.refresh_token.expose_secret(),
            tokens.access_token.as_ref().map(|t| t.expose_secret()),
            tokens.access_expires_at.map(Stamp),
            Stamp(now)
        ],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;
    use crate::store::links::tests::at;

    #[test]
    fn saved_tokens_load_back() {
        let store = Store::open_in_memory().unwrap();
        let conn = store.conn();
        assert!(load(conn).unwrap().is_none());
        assert!(saved_at(conn).unwrap().is_none());
        let first = StoredOAuth {
            refresh_token: SecretString::from("r1".to_owned()),
            access_token: None,
            access_expires_at: None,
        };
        save(conn, &first, at("2026-01-01T00:00:00Z")).unwrap();
        let rotated = StoredOAuth {
            refresh_token: SecretString::from("r2".to_owned()),
            access_token: Some(SecretString::from("a2".to_owned())),
            access_expires_at: Some(at("2026-01-02T00:00:00Z")),
        };
        save(conn, &rotated, at("2026-01-01T00:00:01Z")).unwrap();
        let back = load(conn).unwrap().unwrap();
        assert_eq!(back.refresh_token.expose_secret(), "r2");
        assert_eq!(back.access_token.unwrap().expose_secret(), "a2");
        assert_eq!(back.access_expires_at, Some(at("2026-01-02T00:00:00Z")));
        assert_eq!(saved_at(conn).unwrap(), Some(at("2026-01-01T00:00:01Z")));
    }
}

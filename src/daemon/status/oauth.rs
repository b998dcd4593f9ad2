//! The GHL OAuth install as `/status`, `trengo-sync status` and `check` show it: when the
//! stored refresh token was issued, when it expires if it is not used (one year, ghl-api.md
//! §1.2 \[spec S5\]), and a warning from a month ahead. Times only, never a token.

use chrono::{DateTime, Utc};
use rusqlite::Connection;
use serde::{Deserialize, Serialize};

use crate::ghl::install::{REFRESH_EXPIRY_WARNING, refresh_expiry};
use crate::store::{StoreError, oauth};

/// The stored OAuth tokens' lifetimes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OAuthReport {
    /// When the stored refresh token was issued (the last install or refresh).
    pub refresh_issued_at: DateTime<Utc>,
    /// When it stops working unless it is used first.
    pub refresh_expires_at: DateTime<Utc>,
    /// When the stored access token expires (the daemon refreshes it a minute before).
    pub access_expires_at: Option<DateTime<Utc>>,
    /// Set from a month before the refresh token's expiry: what is wrong and what to do.
    pub warning: Option<String>,
}

impl OAuthReport {
    /// The report for tokens saved at `issued_at`, as seen at `now`.
    pub fn new(
        issued_at: DateTime<Utc>,
        access_expires_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Self {
        let expires = refresh_expiry(issued_at);
        let day = expires.format("%Y-%m-%d");
        let warning = if expires <= now {
            Some(format!(
                "the GHL refresh token expired on {day} (unused for a year): install the app \
                 again with `trengo-sync auth ghl`"
            ))
        } else if expires - now <= REFRESH_EXPIRY_WARNING {
            Some(format!(
                "the GHL refresh token expires on {day} ({} days) unless it is used: start the \
                 daemon or run `trengo-sync once` (each refresh renews it for a year); once \
                 expired, only `trengo-sync auth ghl` helps",
                (expires - now).num_days()
            ))
        } else {
            None
        };
        Self {
            refresh_issued_at: issued_at,
            refresh_expires_at: expires,
            access_expires_at,
            warning,
        }
    }

    /// The report from the store, if it holds tokens.
    pub fn from_store(conn: &Connection, now: DateTime<Utc>) -> Result<Option<Self>, StoreError> {
        let Some(issued_at) = oauth::saved_at(conn)? else {
            return Ok(None);
        };
        let access = oauth::load(conn)?.and_then(|t| t.access_expires_at);
        Ok(Some(Self::new(issued_at, access, now)))
    }

    /// One line: the refresh token's expiry, then the warning if there is one.
    pub fn describe(&self) -> String {
        let mut line = format!(
            "GHL OAuth: refresh token issued {}, expires {} if unused",
            self.refresh_issued_at.format("%Y-%m-%d %H:%M UTC"),
            self.refresh_expires_at.format("%Y-%m-%d %H:%M UTC")
        );
        if let Some(warning) = &self.warning {
            line.push_str("\n  warning: ");
            line.push_str(warning);
        }
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn the_warning_starts_a_month_before_expiry() {
        let issued = at("2026-01-01T00:00:00Z");
        let quiet = OAuthReport::new(issued, None, at("2026-11-30T00:00:00Z"));
        assert_eq!(quiet.refresh_expires_at, at("2027-01-01T00:00:00Z"));
        assert!(quiet.warning.is_none());
        let near = OAuthReport::new(issued, None, at("2026-12-03T00:00:00Z"));
        assert!(near.warning.as_deref().unwrap().contains("29 days"));
        let gone = OAuthReport::new(issued, None, at("2027-01-02T00:00:00Z"));
        assert!(gone.warning.as_deref().unwrap().contains("auth ghl"));
        assert!(
            gone.describe()
                .contains("warning: the GHL refresh token expired")
        );
    }
}

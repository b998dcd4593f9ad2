//! How Rust values become SQLite column values and back.
//!
//! Times are RFC 3339 UTC text with a fixed width (microseconds, `Z`), so that SQL can compare
//! them as strings (`next_at <= ?`) and a human reading the file with `sqlite3` sees real dates.
//! JSON values are stored as TEXT. The newtypes here carry `ToSql`/`FromSql` so every table
//! file reads a column with one `row.get` and a bad cell surfaces as a conversion error naming
//! its column, instead of a panic.

use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};

/// A point in time as stored: RFC 3339 UTC text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stamp(pub(crate) DateTime<Utc>);

/// Formats a time the way every table stores it.
pub(crate) fn stamp_text(at: DateTime<Utc>) -> String {
    // Fixed width (always six fractional digits and `Z`) keeps text order equal to time order.
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

impl ToSql for Stamp {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(stamp_text(self.0)))
    }
}

impl FromSql for Stamp {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        let text = value.as_str()?;
        DateTime::parse_from_rfc3339(text)
            .map(|at| Stamp(at.with_timezone(&Utc)))
            .map_err(FromSqlError::other)
    }
}

/// A JSON value as stored: its compact text.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Json(pub(crate) serde_json::Value);

impl ToSql for Json {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.0.to_string()))
    }
}

impl FromSql for Json {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        let text = value.as_str()?;
        serde_json::from_str(text)
            .map(Json)
            .map_err(FromSqlError::other)
    }
}

/// Implements `ToSql`/`FromSql` for a fieldless enum stored as fixed words, matching the
/// table's `CHECK (... IN (...))` list.
macro_rules! text_enum {
    ($ty:ty { $($variant:ident => $word:literal),+ $(,)? }) => {
        impl $ty {
            /// The word stored in the database (and shown to users).
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $word,)+
                }
            }
        }

        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl rusqlite::types::ToSql for $ty {
            fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
                Ok(rusqlite::types::ToSqlOutput::from(self.as_str()))
            }
        }

        impl rusqlite::types::FromSql for $ty {
            fn column_result(
                value: rusqlite::types::ValueRef<'_>,
            ) -> rusqlite::types::FromSqlResult<Self> {
                match value.as_str()? {
                    $($word => Ok(Self::$variant),)+
                    other => Err(rusqlite::types::FromSqlError::other(
                        $crate::store::codec::UnknownWord(other.to_owned()),
                    )),
                }
            }
        }
    };
}
pub(crate) use text_enum;

/// A stored word that no variant of the expected enum spells.
#[derive(Debug, thiserror::Error)]
#[error("unknown stored value {0:?}")]
pub(crate) struct UnknownWord(pub(crate) String);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamp_text_sorts_like_time() {
        let early = DateTime::parse_from_rfc3339("2026-01-01T09:59:59.5Z")
            .unwrap()
            .with_timezone(&Utc);
        let late = DateTime::parse_from_rfc3339("2026-01-01T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert!(stamp_text(early) < stamp_text(late));
        assert_eq!(stamp_text(late), "2026-01-01T10:00:00.000000Z");
    }

    #[test]
    fn stamp_round_trips_through_sqlite() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        let at = DateTime::parse_from_rfc3339("2026-03-04T05:06:07.123456+02:00")
            .unwrap()
            .with_timezone(&Utc);
        let back: Stamp = conn
            .query_row("SELECT ?1", [Stamp(at)], |row| row.get(0))
            .unwrap();
        assert_eq!(back.0, at);
    }

    #[test]
    fn unreadable_time_is_a_conversion_error_not_a_panic() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        let result: rusqlite::Result<Stamp> =
            conn.query_row("SELECT 'yesterday'", [], |row| row.get(0));
        assert!(result.is_err());
    }
}

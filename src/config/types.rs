//! Value types of the configuration that validate themselves while being read.
//!
//! Each type rejects a bad value with a message that says what was expected, and figment
//! adds the key path and the file or environment variable it came from.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use url::Url;

/// A secret from the config: never printed, in `Debug`, logs or errors.
#[derive(Clone)]
pub struct Secret(SecretString);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(SecretString::from(value.into()))
    }

    /// The secret itself; call only where it is sent to the API it belongs to.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    /// The secret as a `SecretString`, for the API clients.
    pub fn to_secret_string(&self) -> SecretString {
        self.0.clone()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl<'de> Deserialize<'de> for Secret {
    // Accepts numbers too: an all-digit token given through the environment is parsed as a
    // number by figment, and must still be taken as the string it is.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct SecretVisitor;
        impl Visitor<'_> for SecretVisitor {
            type Value = Secret;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a secret string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Secret, E> {
                if v.trim().is_empty() {
                    return Err(E::custom("a secret must not be empty"));
                }
                Ok(Secret::new(v.trim()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Secret, E> {
                Ok(Secret::new(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Secret, E> {
                Ok(Secret::new(v.to_string()))
            }
            // Never echo the value of a wrongly typed secret back in the error.
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Secret, E> {
                Err(E::custom("expected a secret string, found a boolean"))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Secret, E> {
                Err(E::custom("expected a secret string, found a float"))
            }
        }
        d.deserialize_any(SecretVisitor)
    }
}

/// A span of time written as `30s`, `5m`, `2h`, `1d` or `1h 30m`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Span(pub Duration);

impl Span {
    /// `n` seconds.
    pub const fn secs(n: u64) -> Self {
        Self(Duration::from_secs(n))
    }

    /// The span as a `std::time::Duration`.
    pub fn get(self) -> Duration {
        self.0
    }

    /// The span as a `chrono::Duration` (saturating).
    pub fn chrono(self) -> chrono::Duration {
        chrono::Duration::from_std(self.0).unwrap_or(chrono::Duration::MAX)
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_duration(self.0))
    }
}

impl FromStr for Span {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        humantime::parse_duration(s.trim()).map(Span).map_err(|_| {
            format!("expected a duration such as `30s`, `5m`, `2h` or `1d`, found `{s}`")
        })
    }
}

impl<'de> Deserialize<'de> for Span {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d).map_err(|_| {
            de::Error::custom("expected a duration string such as `30s`, `5m` or `2h`")
        })?;
        s.parse().map_err(de::Error::custom)
    }
}

impl Serialize for Span {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

/// `link.since`: the initial-sync cutoff, a date (`2026-01-31`, midnight UTC) or a span back
/// from now (`30d`, re-read at each pass).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Since {
    /// From this day on (00:00 UTC).
    Date(chrono::NaiveDate),
    /// This long before each pass.
    Ago(Span),
}

impl Since {
    /// The instant items must be created or updated at or after, for a pass at `now`.
    pub fn cutoff(self, now: chrono::DateTime<chrono::Utc>) -> chrono::DateTime<chrono::Utc> {
        match self {
            Since::Date(d) => d.and_time(chrono::NaiveTime::MIN).and_utc(),
            Since::Ago(span) => now - span.chrono(),
        }
    }
}

impl<'de> Deserialize<'de> for Since {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let expected = "expected a date `YYYY-MM-DD` or a span back from now such as `30d`";
        let s = String::deserialize(d).map_err(|_| de::Error::custom(expected))?;
        if let Ok(date) = chrono::NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d") {
            return Ok(Since::Date(date));
        }
        s.parse::<Span>()
            .map(Since::Ago)
            .map_err(|_| de::Error::custom(format!("`{s}`: {expected}")))
    }
}

/// A 6-field cron expression, seconds first, evaluated in UTC, as tokio-cron-scheduler runs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CronExpr(String);

impl CronExpr {
    /// The expression as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Parses with the same parser settings tokio-cron-scheduler uses (seconds required).
    pub fn parse_cron(&self) -> Result<croner::Cron, String> {
        parse_cron(&self.0)
    }
}

fn parse_cron(s: &str) -> Result<croner::Cron, String> {
    croner::parser::CronParser::builder()
        .seconds(croner::parser::Seconds::Required)
        .dom_and_dow(true)
        .build()
        .parse(s)
        .map_err(|e| {
            format!(
                "expected a cron expression with 6 fields, seconds first, in UTC \
                 (for example `*/30 * * * * *` for every 30 seconds), found `{s}`: {e}"
            )
        })
}

impl FromStr for CronExpr {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if s.split_whitespace().count() != 6 {
            return Err(format!(
                "expected a cron expression with 6 fields, seconds first, in UTC \
                 (for example `*/30 * * * * *` for every 30 seconds), found `{s}` with {} fields",
                s.split_whitespace().count()
            ));
        }
        parse_cron(s)?;
        Ok(Self(s.to_string()))
    }
}

impl<'de> Deserialize<'de> for CronExpr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)
            .map_err(|_| de::Error::custom("expected a cron expression string"))?;
        s.parse().map_err(de::Error::custom)
    }
}

impl fmt::Display for CronExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An absolute `http` or `https` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpUrl(pub Url);

impl HttpUrl {
    /// The URL.
    pub fn url(&self) -> &Url {
        &self.0
    }
}

impl FromStr for HttpUrl {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let url = Url::parse(s.trim())
            .map_err(|e| format!("expected an absolute http(s) URL, found `{s}`: {e}"))?;
        if url.scheme() != "http" && url.scheme() != "https" {
            return Err(format!(
                "expected an http or https URL, found scheme `{}` in `{s}`",
                url.scheme()
            ));
        }
        if url.host_str().is_none() {
            return Err(format!("expected a URL with a host, found `{s}`"));
        }
        Ok(Self(url))
    }
}

impl<'de> Deserialize<'de> for HttpUrl {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)
            .map_err(|_| de::Error::custom("expected a URL string such as `https://…`"))?;
        s.parse().map_err(de::Error::custom)
    }
}

impl fmt::Display for HttpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.as_str())
    }
}

/// An IANA time zone name such as `Europe/Amsterdam` or `UTC`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Zone(pub chrono_tz::Tz);

impl<'de> Deserialize<'de> for Zone {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d).map_err(|_| {
            de::Error::custom("expected a time zone name such as `Europe/Amsterdam`")
        })?;
        s.trim().parse::<chrono_tz::Tz>().map(Zone).map_err(|_| {
            de::Error::custom(format!(
                "expected an IANA time zone name such as `Europe/Amsterdam` or `UTC`, found `{s}`"
            ))
        })
    }
}

impl fmt::Display for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_read_human_units() {
        assert_eq!("30s".parse::<Span>().unwrap(), Span::secs(30));
        assert_eq!("5m".parse::<Span>().unwrap(), Span::secs(300));
        assert_eq!("1h 30m".parse::<Span>().unwrap(), Span::secs(5400));
        assert!("thirty".parse::<Span>().is_err());
    }

    #[test]
    fn cron_needs_six_fields_seconds_first() {
        assert!("*/30 * * * * *".parse::<CronExpr>().is_ok());
        assert!(
            "0 3 * * *"
                .parse::<CronExpr>()
                .unwrap_err()
                .contains("6 fields")
        );
        assert!("*/90 * * * * * *".parse::<CronExpr>().is_err());
        assert!("61 * * * * *".parse::<CronExpr>().is_err());
    }

    #[test]
    fn urls_must_be_http() {
        assert!("https://app.trengo.com/api/v2".parse::<HttpUrl>().is_ok());
        assert!("ftp://x".parse::<HttpUrl>().is_err());
        assert!("app.trengo.com".parse::<HttpUrl>().is_err());
    }

    #[test]
    fn secret_debug_is_redacted() {
        let s = Secret::new("tok-123");
        assert_eq!(format!("{s:?}"), "Secret(***)");
    }
}

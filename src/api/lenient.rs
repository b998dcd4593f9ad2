//! Lenient serde readers for payloads that are not consistent with themselves.
//!
//! Real Trengo and GHL answers send the same field as bool, integer or string, ids as numbers
//! or strings, `null` where a list is expected and PHP's `[]` where an object is expected
//! (trengo-api.md §14 [OBS]; ghl-api.md §7, §9). These functions accept every variant seen and
//! fail only on values that cannot mean anything for the field.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// An `i64` written as a number or a numeric string.
pub fn id<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    let value = Value::deserialize(d)?;
    value_to_i64(&value)
        .ok_or_else(|| D::Error::custom(format!("expected an integer id, got {value}")))
}

/// An optional `i64` written as a number, a numeric string, `""` or `null`.
pub fn opt_id<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    let value = Value::deserialize(d)?;
    match value {
        Value::Null => Ok(None),
        Value::String(ref s) if s.trim().is_empty() => Ok(None),
        ref other => value_to_i64(other)
            .map(Some)
            .ok_or_else(|| D::Error::custom(format!("expected an integer, got {other}"))),
    }
}

fn value_to_i64(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A flag written as `true`/`false`, `0`/`1`, `"0"`/`"1"`/`"true"`/`"false"` or `null` (false).
pub fn flag<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    let value = Value::deserialize(d)?;
    Ok(match value {
        Value::Bool(b) => b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => matches!(s.trim().to_ascii_lowercase().as_str(), "1" | "true" | "yes"),
        _ => false,
    })
}

/// Any scalar as text (`"abc"`, `12`, `true`); `null` and `""` are `None`; arrays and objects
/// are kept as their JSON text.
pub fn opt_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let value = Value::deserialize(d)?;
    Ok(match value {
        Value::Null => None,
        Value::String(s) if s.is_empty() => None,
        Value::String(s) => Some(s),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        other => Some(other.to_string()),
    })
}

/// A list that may be `null` or missing (empty list).
pub fn list<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

/// An object that PHP renders as `[]` when empty, or `null`.
pub fn map<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, Value>, D::Error> {
    let value = Value::deserialize(d)?;
    match value {
        Value::Object(map) => Ok(map.into_iter().collect()),
        Value::Null => Ok(BTreeMap::new()),
        Value::Array(items) if items.is_empty() => Ok(BTreeMap::new()),
        other => Err(D::Error::custom(format!("expected an object, got {other}"))),
    }
}

/// An optional instant: RFC 3339 / ISO 8601 with offset or `Z` (any fraction), a naive
/// `YYYY-MM-DD HH:MM:SS` read as UTC (Trengo's naive times are converted to UTC in the
/// configured zone before this runs), epoch seconds or milliseconds, `null` or `""`.
pub fn opt_time<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
    let value = Value::deserialize(d)?;
    match value {
        Value::Null => Ok(None),
        Value::String(s) if s.trim().is_empty() => Ok(None),
        Value::String(s) => parse_time(&s)
            .map(Some)
            .ok_or_else(|| D::Error::custom(format!("unreadable timestamp {s:?}"))),
        Value::Number(n) => {
            let raw = n
                .as_i64()
                .ok_or_else(|| D::Error::custom(format!("unreadable timestamp {n}")))?;
            // Epoch milliseconds are 13 digits for any date after 2001.
            let parsed = if raw.abs() >= 100_000_000_000 {
                DateTime::from_timestamp_millis(raw)
            } else {
                DateTime::from_timestamp(raw, 0)
            };
            parsed
                .map(Some)
                .ok_or_else(|| D::Error::custom(format!("timestamp {raw} out of range")))
        }
        other => Err(D::Error::custom(format!(
            "expected a timestamp, got {other}"
        ))),
    }
}

/// Parses the timestamp forms both APIs send.
pub fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.with_timezone(&Utc));
    }
    if let Some(naive) = parse_naive(text) {
        return Some(naive.and_utc());
    }
    None
}

/// Parses Trengo's and GHL's zone-less forms: `YYYY-MM-DD HH:MM:SS` (optionally with a
/// fraction) and the same with a `T`.
pub fn parse_naive(text: &str) -> Option<NaiveDateTime> {
    ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"]
        .iter()
        .find_map(|format| NaiveDateTime::parse_from_str(text.trim(), format).ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Deserialize)]
    struct Sample {
        #[serde(deserialize_with = "id")]
        id: i64,
        #[serde(default, deserialize_with = "flag")]
        on: bool,
        #[serde(default, deserialize_with = "opt_time")]
        at: Option<DateTime<Utc>>,
        #[serde(default, deserialize_with = "map")]
        extra: BTreeMap<String, Value>,
    }

    #[test]
    fn variants_are_accepted() {
        let s: Sample = serde_json::from_str(
            r#"{"id":"4217650721","on":"1","at":"2024-01-02T10:24:40.000000Z","extra":[]}"#,
        )
        .unwrap();
        assert_eq!(s.id, 4_217_650_721);
        assert!(s.on);
        assert_eq!(s.at.unwrap().to_rfc3339(), "2024-01-02T10:24:40+00:00");
        assert!(s.extra.is_empty());
        let s: Sample = serde_json::from_str(r#"{"id":7,"on":0,"at":null}"#).unwrap();
        assert!(!s.on);
        assert!(s.at.is_none());
    }
}

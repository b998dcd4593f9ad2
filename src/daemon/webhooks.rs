//! Webhook verification and the hints they carry.
//!
//! A webhook is only a hint: a verified one schedules a re-read of that one item now, and
//! state is always read from the API (sync-model.md §4.10). Trengo signs
//! `HMAC-SHA256(secret, "<timestamp>." + raw body)` into `Trengo-Signature: <ts>;<hex>`, one
//! webhook (and secret) per event type, with flat form-encoded payloads (trengo-api.md
//! §10.3–10.4). GHL signs the raw body with Ed25519 into `x-ghl-signature` (base64), and its
//! JSON payloads carry `timestamp` and `webhookId` for replay protection (ghl-api.md §8).
//! Signatures are checked over the raw bytes, before any parsing, in constant time.

use std::collections::{HashSet, VecDeque};
use std::sync::Mutex;

use base64::Engine as _;
use chrono::{DateTime, Duration, Utc};
use ed25519_dalek::{Signature, Verifier, VerifyingKey};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::sync::engine::Hint;

/// Why a webhook was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    /// The signature header is absent.
    #[error("the {0} header is missing")]
    MissingSignature(&'static str),
    /// The signature header cannot be read.
    #[error("the signature header is malformed: {0}")]
    Malformed(String),
    /// The signature does not match the body.
    #[error("the signature does not match the body")]
    BadSignature,
    /// The signature is older than the allowed age (a replay, or a clock far off).
    #[error("the signature is stale: signed at {signed_at}, older than {max_age_secs}s")]
    Stale {
        /// When it was signed.
        signed_at: DateTime<Utc>,
        /// The allowed age.
        max_age_secs: i64,
    },
    /// No signing secret is configured for this Trengo event type.
    #[error("no signing secret is configured for Trengo event {0}")]
    UnknownEvent(String),
    /// The body is not a payload we can read.
    #[error("the payload cannot be read: {0}")]
    BadPayload(String),
}

/// Checks a `Trengo-Signature` header over the raw body.
pub fn verify_trengo(
    secret: &str,
    header: Option<&str>,
    body: &[u8],
    now: DateTime<Utc>,
    max_age: Duration,
) -> Result<DateTime<Utc>, WebhookError> {
    let header = header.ok_or(WebhookError::MissingSignature("Trengo-Signature"))?;
    let (ts, hex_digest) = header
        .split_once(';')
        .ok_or_else(|| WebhookError::Malformed("expected `<timestamp>;<hex digest>`".into()))?;
    let ts_secs: i64 = ts
        .trim()
        .parse()
        .map_err(|_| WebhookError::Malformed("the timestamp is not a number".into()))?;
    let digest = hex::decode(hex_digest.trim())
        .map_err(|_| WebhookError::Malformed("the digest is not hex".into()))?;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes())
        .map_err(|_| WebhookError::Malformed("unusable secret".into()))?;
    mac.update(ts.trim().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.verify_slice(&digest)
        .map_err(|_| WebhookError::BadSignature)?;
    let signed_at = DateTime::from_timestamp(ts_secs, 0)
        .ok_or_else(|| WebhookError::Malformed("the timestamp is out of range".into()))?;
    fresh(signed_at, now, max_age)?;
    Ok(signed_at)
}

/// Signs a Trengo payload as Trengo does (for the fake and for tests).
pub fn sign_trengo(secret: &str, timestamp: i64, body: &[u8]) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(mac) => mac,
        Err(_) => return String::new(),
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("{timestamp};{}", hex::encode(mac.finalize().into_bytes()))
}

/// Checks an `x-ghl-signature` header (Ed25519, base64) over the raw body, and the payload's
/// `timestamp` against `max_age`.
pub fn verify_ghl(
    key: &VerifyingKey,
    header: Option<&str>,
    body: &[u8],
    now: DateTime<Utc>,
    max_age: Duration,
) -> Result<GhlHint, WebhookError> {
    let header = header.ok_or(WebhookError::MissingSignature("x-ghl-signature"))?;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(header.trim())
        .map_err(|_| WebhookError::Malformed("the signature is not base64".into()))?;
    let signature = Signature::from_slice(&raw)
        .map_err(|_| WebhookError::Malformed("the signature is not 64 bytes".into()))?;
    key.verify(body, &signature)
        .map_err(|_| WebhookError::BadSignature)?;
    let hint = GhlHint::parse(body)?;
    if let Some(signed_at) = hint.timestamp {
        fresh(signed_at, now, max_age)?;
    }
    Ok(hint)
}

fn fresh(
    signed_at: DateTime<Utc>,
    now: DateTime<Utc>,
    max_age: Duration,
) -> Result<(), WebhookError> {
    // A signature from the future beyond the allowed age is as suspect as an old one.
    if (now - signed_at).abs() > max_age {
        return Err(WebhookError::Stale {
            signed_at,
            max_age_secs: max_age.num_seconds(),
        });
    }
    Ok(())
}

/// What a verified Trengo webhook points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrengoHint {
    /// The event type (from the URL path: Trengo's payload does not carry it).
    pub event: String,
    /// The ticket to re-read.
    pub ticket_id: i64,
    /// The message or label the event is about, for de-duplication.
    pub detail: Option<String>,
    /// For `TICKET_MERGED`: the ticket merged into `ticket_id` and deleted.
    pub merged: Option<i64>,
}

impl TrengoHint {
    /// Reads a Trengo payload, form-encoded (as Trengo sends it) or JSON (defensively).
    pub fn parse(event: &str, body: &[u8]) -> Result<Self, WebhookError> {
        let fields: std::collections::BTreeMap<String, serde_json::Value> =
            match serde_json::from_slice::<serde_json::Value>(body) {
                Ok(serde_json::Value::Object(map)) => map.into_iter().collect(),
                _ => serde_urlencoded::from_bytes::<Vec<(String, String)>>(body)
                    .map_err(|e| WebhookError::BadPayload(e.to_string()))?
                    .into_iter()
                    .map(|(k, v)| (k, serde_json::Value::String(v)))
                    .collect(),
            };
        let number = |key: &str| -> Option<i64> {
            match fields.get(key)? {
                serde_json::Value::Number(n) => n.as_i64(),
                serde_json::Value::String(s) => s.trim().parse().ok(),
                _ => None,
            }
        };
        let ticket_id = number("ticket_id")
            .ok_or_else(|| WebhookError::BadPayload("no ticket_id in the payload".into()))?;
        let detail = number("message_id")
            .or_else(|| number("label_id"))
            .or_else(|| number("merged_and_deleted_ticket_id"))
            .map(|n| n.to_string());
        Ok(Self {
            event: event.to_string(),
            ticket_id,
            detail,
            merged: number("merged_and_deleted_ticket_id"),
        })
    }

    /// What the engine re-reads: an event that moves a status or an assignee plans only that
    /// ticket's link fields, a label event the contact's tags, anything else (messages,
    /// merges, new tickets) the whole group (event types: trengo-api.md §10.2).
    pub fn hint(&self) -> Hint {
        match self.event.as_str() {
            "TICKET_CLOSED"
            | "TICKET_REOPENED"
            | "TICKET_ASSIGNED"
            | "TICKET_MARKED_AS_SPAM"
            | "TICKET_UNMARKED_AS_SPAM" => Hint::TicketStatus(self.ticket_id),
            "TICKET_LABEL_ADDED" | "TICKET_LABEL_DELETED" => Hint::TicketLabels(self.ticket_id),
            "TICKET_MERGED" => match self.merged {
                Some(merged) => Hint::TicketMerged {
                    surviving: self.ticket_id,
                    merged,
                },
                None => Hint::Ticket(self.ticket_id),
            },
            _ => Hint::Ticket(self.ticket_id),
        }
    }

    /// The de-duplication key: Trengo payloads carry no event id (trengo-api.md §10.4).
    pub fn dedupe_key(&self, signed_at: DateTime<Utc>) -> String {
        format!(
            "trengo:{}:{}:{}:{}",
            self.event,
            self.ticket_id,
            self.detail.as_deref().unwrap_or("-"),
            signed_at.timestamp()
        )
    }
}

/// What a verified GHL webhook points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GhlHint {
    /// `TaskComplete`, `ContactTagUpdate`, …
    pub event: String,
    /// The contact to re-read (`contactId`, or `id` for contact events).
    pub contact_id: Option<String>,
    /// The task a task event is about (its `id`).
    pub task_id: Option<String>,
    /// The event's `webhookId`, for de-duplication.
    pub webhook_id: Option<String>,
    /// The event's `timestamp`.
    pub timestamp: Option<DateTime<Utc>>,
    /// The location the event belongs to.
    pub location_id: Option<String>,
}

impl GhlHint {
    /// Reads a GHL webhook payload.
    pub fn parse(body: &[u8]) -> Result<Self, WebhookError> {
        let value: serde_json::Value = serde_json::from_slice(body)
            .map_err(|e| WebhookError::BadPayload(format!("not JSON: {e}")))?;
        let text = |key: &str| value.get(key).and_then(|v| v.as_str()).map(str::to_string);
        let event = text("type").ok_or_else(|| WebhookError::BadPayload("no `type`".into()))?;
        let contact_id = if event.starts_with("Contact") {
            text("id").or_else(|| text("contactId"))
        } else {
            text("contactId")
        };
        let task_id = event.starts_with("Task").then(|| text("id")).flatten();
        Ok(Self {
            contact_id,
            task_id,
            webhook_id: text("webhookId"),
            timestamp: text("timestamp").and_then(|t| {
                DateTime::parse_from_rfc3339(&t)
                    .ok()
                    .map(|d| d.with_timezone(&Utc))
            }),
            location_id: text("locationId"),
            event,
        })
    }
}

impl GhlHint {
    /// What the engine re-reads, or `None` without a contact (TaskCreate may come without
    /// `contactId`, ghl-api.md §8.3: the poll finds it). A completed task plans only its link's
    /// fields, a tag update the contact's tags; anything else (notes, new or deleted tasks,
    /// contact edits) the whole group.
    pub fn hint(&self) -> Option<Hint> {
        let contact_id = self.contact_id.clone()?;
        Some(match (self.event.as_str(), &self.task_id) {
            ("TaskComplete", Some(task_id)) => Hint::TaskCompleted {
                contact_id,
                task_id: task_id.clone(),
            },
            ("ContactTagUpdate", _) => Hint::ContactTags(contact_id),
            _ => Hint::Contact(contact_id),
        })
    }
}

/// Remembers recent webhook keys so repeats are answered but acted on once.
#[derive(Debug)]
pub struct Dedupe {
    capacity: usize,
    // A std mutex: insert and evict only, never across an await.
    seen: Mutex<(HashSet<String>, VecDeque<String>)>,
}

impl Dedupe {
    /// Remembers up to `capacity` keys.
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            seen: Mutex::new((HashSet::new(), VecDeque::new())),
        }
    }

    /// `true` the first time `key` is seen, `false` for a repeat.
    pub fn first_time(&self, key: &str) -> bool {
        let mut guard = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        let (set, order) = &mut *guard;
        if set.contains(key) {
            return false;
        }
        set.insert(key.to_string());
        order.push_back(key.to_string());
        while order.len() > self.capacity {
            if let Some(old) = order.pop_front() {
                set.remove(&old);
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signer, SigningKey};

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap()
    }

    #[test]
    fn trengo_signature_round_trips_and_rejects_tampering() {
        let body = b"ticket_id=913790661&label_id=1469784&label_name=Payout+Triggers";
        let header = sign_trengo("s3cret", now().timestamp(), body);
        let max = Duration::seconds(300);
        assert!(verify_trengo("s3cret", Some(&header), body, now(), max).is_ok());
        assert_eq!(
            verify_trengo("other", Some(&header), body, now(), max),
            Err(WebhookError::BadSignature)
        );
        assert_eq!(
            verify_trengo("s3cret", Some(&header), b"ticket_id=1", now(), max),
            Err(WebhookError::BadSignature)
        );
        assert!(matches!(
            verify_trengo(
                "s3cret",
                Some(&header),
                body,
                now() + Duration::seconds(301),
                max
            ),
            Err(WebhookError::Stale { .. })
        ));
        assert_eq!(
            verify_trengo("s3cret", None, body, now(), max),
            Err(WebhookError::MissingSignature("Trengo-Signature"))
        );
    }

    #[test]
    fn trengo_payload_reads_form_and_json() {
        let form = TrengoHint::parse("TICKET_LABEL_ADDED", b"ticket_id=12&label_id=7").unwrap();
        assert_eq!(form.ticket_id, 12);
        assert_eq!(form.detail.as_deref(), Some("7"));
        let json =
            TrengoHint::parse("NOTE", br#"{"ticket_id": 13, "message_id": "4200000001"}"#).unwrap();
        assert_eq!(json.ticket_id, 13);
        assert!(TrengoHint::parse("NOTE", b"message=hi").is_err());
    }

    #[test]
    fn ghl_signature_verifies_over_raw_bytes() {
        let signing = SigningKey::from_bytes(&[7u8; 32]);
        let body = br#"{"type":"TaskComplete","locationId":"L","id":"t1","contactId":"c1","timestamp":"2027-01-15T08:00:00Z","webhookId":"w1"}"#;
        let sig = base64::engine::general_purpose::STANDARD.encode(signing.sign(body).to_bytes());
        let at = DateTime::parse_from_rfc3339("2027-01-15T08:01:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let hint = verify_ghl(
            &signing.verifying_key(),
            Some(&sig),
            body,
            at,
            Duration::seconds(300),
        )
        .unwrap();
        assert_eq!(hint.contact_id.as_deref(), Some("c1"));
        assert_eq!(hint.webhook_id.as_deref(), Some("w1"));
        let mut tampered = body.to_vec();
        tampered[10] = b'X';
        assert_eq!(
            verify_ghl(
                &signing.verifying_key(),
                Some(&sig),
                &tampered,
                at,
                Duration::seconds(300)
            ),
            Err(WebhookError::BadSignature)
        );
    }

    #[test]
    fn events_name_what_the_engine_reads() {
        let trengo = |event: &str| TrengoHint::parse(event, b"ticket_id=4").unwrap().hint();
        assert_eq!(trengo("TICKET_REOPENED"), Hint::TicketStatus(4));
        assert_eq!(trengo("TICKET_LABEL_DELETED"), Hint::TicketLabels(4));
        assert_eq!(
            trengo("NOTE"),
            Hint::Ticket(4),
            "messages read the whole group"
        );
        let ghl = |body: &str| GhlHint::parse(body.as_bytes()).unwrap().hint();
        assert_eq!(
            ghl(r#"{"type":"TaskComplete","id":"t1","contactId":"c1"}"#),
            Some(Hint::TaskCompleted {
                contact_id: "c1".into(),
                task_id: "t1".into()
            })
        );
        assert_eq!(
            ghl(r#"{"type":"ContactTagUpdate","id":"c1","tags":["x"]}"#),
            Some(Hint::ContactTags("c1".into()))
        );
        assert_eq!(
            ghl(r#"{"type":"NoteCreate","id":"n1","contactId":"c1"}"#),
            Some(Hint::Contact("c1".into()))
        );
        assert_eq!(ghl(r#"{"type":"TaskCreate","id":"t2"}"#), None);
    }

    #[test]
    fn repeats_are_seen_once() {
        let d = Dedupe::new(2);
        assert!(d.first_time("a"));
        assert!(!d.first_time("a"));
        assert!(d.first_time("b"));
        assert!(d.first_time("c"));
        assert!(d.first_time("a"), "evicted keys are forgotten");
    }
}

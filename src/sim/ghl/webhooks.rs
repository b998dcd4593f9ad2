//! Webhook delivery of the GHL fake, signed as GHL signs today.
//!
//! Each event body is JSON with `type`, `locationId`, the event's documented fields, and the
//! `timestamp` and `webhookId` GHL adds for replay protection (ghl-api.md §8.1, §8.3). The
//! raw body bytes are signed with Ed25519 and the base64 signature goes in
//! `x-ghl-signature` (§8.2 \[obs S11\]). The key comes from a seed; its public half is offered
//! as base64 SPKI DER, the form GHL publishes its key in. A background task posts to every
//! registered URL (as a marketplace app's webhook URL would be configured), retries a few
//! times on failure, and keeps a log tests can read and wait on.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{DateTime, Utc};
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};
use serde::Serialize;
use serde_json::{Map, Value};
use tokio::sync::{mpsc, watch};

use super::model::ghl_time;
use super::state::Event;
use crate::sim::faults::{WebhookFaults, WebhookShaper};

/// The DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410): the key's 32 bytes follow.
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

/// One attempted delivery of one event to one URL.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookDelivery {
    /// The event's `webhookId`.
    pub webhook_id: String,
    /// The event's `type`.
    pub kind: String,
    /// Where it went.
    pub url: String,
    /// The exact bytes sent, as text.
    pub body: String,
    /// The `x-ghl-signature` header sent.
    pub signature: String,
    /// The receiver's last status, if it answered.
    pub status: Option<u16>,
    /// Attempts made.
    pub attempts: u32,
    /// Whether a 2xx came back.
    pub delivered: bool,
}

#[derive(Debug, Clone)]
struct Envelope {
    webhook_id: String,
    kind: String,
    url: String,
    body: String,
    signature: String,
}

/// The signing key, the registered URLs, the queue to the delivery task, and its log.
#[derive(Debug)]
pub struct WebhookOutbox {
    location_id: String,
    signing_key: SigningKey,
    // std mutexes: short critical sections, never held across an await.
    urls: Mutex<Vec<String>>,
    events: Mutex<Vec<Value>>,
    log: Arc<Mutex<Vec<WebhookDelivery>>>,
    done: watch::Receiver<usize>,
    queue: mpsc::UnboundedSender<Envelope>,
    shaper: WebhookShaper<Envelope>,
}

impl WebhookOutbox {
    /// An outbox for `location_id` whose key derives from `key_seed`; spawns the delivery task
    /// on the current tokio runtime. The task ends when the outbox is dropped.
    pub fn start(location_id: String, key_seed: u64, attempts: u32, retry_delay: Duration) -> Self {
        let mut secret = [0u8; 32];
        StdRng::seed_from_u64(key_seed).fill_bytes(&mut secret);
        let (queue, receiver) = mpsc::unbounded_channel();
        let (done_tx, done) = watch::channel(0usize);
        let log = Arc::new(Mutex::new(Vec::new()));
        tokio::spawn(deliver(
            receiver,
            Arc::clone(&log),
            done_tx,
            attempts.max(1),
            retry_delay,
        ));
        Self {
            location_id,
            signing_key: SigningKey::from_bytes(&secret),
            urls: Mutex::new(Vec::new()),
            events: Mutex::new(Vec::new()),
            log,
            done,
            queue,
            shaper: WebhookShaper::new(key_seed),
        }
    }

    /// Loses, repeats or reorders deliveries from now on (see [`WebhookFaults`]); GHL's own
    /// retries repeat deliveries too.
    pub fn set_faults(&self, faults: WebhookFaults) {
        self.shaper.set(faults);
    }

    /// The key receivers verify `x-ghl-signature` with.
    pub fn verifying_key(&self) -> VerifyingKey {
        self.signing_key.verifying_key()
    }

    /// The public key as base64 SPKI DER, the form GHL publishes (`MCowBQYDK2VwAyEA…`).
    pub fn public_key_base64(&self) -> String {
        let mut der = ED25519_SPKI_PREFIX.to_vec();
        der.extend_from_slice(self.verifying_key().as_bytes());
        BASE64.encode(der)
    }

    /// Adds a URL that receives every event from now on.
    pub fn register(&self, url: String) {
        let mut urls = self.urls.lock().unwrap_or_else(|e| e.into_inner());
        if !urls.contains(&url) {
            urls.push(url);
        }
    }

    /// The registered URLs.
    pub fn urls(&self) -> Vec<String> {
        self.urls.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Signs `body` as GHL does: Ed25519 over the raw bytes, base64.
    pub fn sign(&self, body: &[u8]) -> String {
        BASE64.encode(self.signing_key.sign(body).to_bytes())
    }

    /// Stamps, signs and queues one event for every registered URL.
    pub fn publish(&self, event: Event, now: DateTime<Utc>) {
        let webhook_id = uuid::Uuid::new_v4().to_string();
        let mut payload = Map::new();
        payload.insert("type".into(), event.kind.into());
        payload.insert("locationId".into(), self.location_id.clone().into());
        payload.extend(event.fields);
        payload.insert("timestamp".into(), ghl_time(now).into());
        payload.insert("webhookId".into(), webhook_id.clone().into());
        let payload = Value::Object(payload);
        let body = payload.to_string();
        let signature = self.sign(body.as_bytes());
        self.events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(payload);
        let envelopes = self
            .urls()
            .into_iter()
            .map(|url| Envelope {
                webhook_id: webhook_id.clone(),
                kind: event.kind.to_owned(),
                url,
                body: body.clone(),
                signature: signature.clone(),
            })
            .collect();
        let (send, lost) = self.shaper.shape(envelopes);
        for envelope in lost {
            record(&self.log, envelope, None, 0);
        }
        for envelope in send {
            // A closed queue means the fake is shutting down: nothing left to deliver to.
            let _ = self.queue.send(envelope);
        }
    }

    /// Every event raised so far (delivered or not, URLs or not), oldest first.
    pub fn events(&self) -> Vec<Value> {
        self.events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Finished deliveries, oldest first.
    pub fn log(&self) -> Vec<WebhookDelivery> {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Empties the delivery log and the event list.
    pub fn clear_log(&self) {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clear();
        self.events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    /// Waits until at least `n` deliveries have finished (delivered or given up) since start.
    pub async fn wait_for_deliveries(&self, n: usize) {
        let mut done = self.done.clone();
        // An error means the delivery task is gone; nothing more will arrive.
        let _ = done.wait_for(|count| *count >= n).await;
    }
}

async fn deliver(
    mut receiver: mpsc::UnboundedReceiver<Envelope>,
    log: Arc<Mutex<Vec<WebhookDelivery>>>,
    done: watch::Sender<usize>,
    attempts: u32,
    retry_delay: Duration,
) {
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap_or_else(|_| reqwest::Client::new());
    while let Some(envelope) = receiver.recv().await {
        let mut status = None;
        let mut made = 0;
        let mut delay = retry_delay;
        while made < attempts {
            if made > 0 {
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
            made += 1;
            let answer = client
                .post(&envelope.url)
                .header("content-type", "application/json")
                .header("x-ghl-signature", &envelope.signature)
                .body(envelope.body.clone())
                .send()
                .await;
            if let Ok(response) = answer {
                status = Some(response.status().as_u16());
                if response.status().is_success() {
                    break;
                }
            }
        }
        record(&log, envelope, status, made);
        done.send_modify(|count| *count += 1);
    }
}

/// Logs one finished delivery (`attempts` 0: lost before any attempt).
fn record(
    log: &Mutex<Vec<WebhookDelivery>>,
    envelope: Envelope,
    status: Option<u16>,
    attempts: u32,
) {
    log.lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(WebhookDelivery {
            webhook_id: envelope.webhook_id,
            kind: envelope.kind,
            url: envelope.url,
            body: envelope.body,
            signature: envelope.signature,
            status,
            attempts,
            delivered: status.is_some_and(|s| (200..300).contains(&s)),
        });
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::Verifier;

    #[tokio::test]
    async fn signature_verifies_with_the_published_key() {
        let outbox = WebhookOutbox::start("loc".into(), 7, 1, Duration::from_millis(1));
        let body = br#"{"type":"TaskComplete"}"#;
        let signature = BASE64.decode(outbox.sign(body)).unwrap();
        let signature = ed25519_dalek::Signature::from_slice(&signature).unwrap();
        let der = BASE64.decode(outbox.public_key_base64()).unwrap();
        assert_eq!(der.len(), 44);
        let key = VerifyingKey::from_bytes(der[12..].try_into().unwrap()).unwrap();
        assert!(key.verify(body, &signature).is_ok());
    }

    #[tokio::test]
    async fn same_seed_gives_the_same_key() {
        let a = WebhookOutbox::start("loc".into(), 7, 1, Duration::from_millis(1));
        let b = WebhookOutbox::start("loc".into(), 7, 1, Duration::from_millis(1));
        assert_eq!(a.public_key_base64(), b.public_key_base64());
        assert!(a.public_key_base64().starts_with("MCowBQYDK2VwAyEA"));
    }
}

//! Webhook delivery of the Trengo fake: each event goes to every URL registered for its type,
//! form-encoded with string values and signed as Trengo signs (trengo-api.md §10.3, §10.4
//! \[OFF\]), from one background task so deliveries keep their order.
//!
//! Delivery is best effort, once, as far as anyone knows of Trengo (§10.4 \[U\]: retries are
//! undocumented). Every attempt lands in a log tests can read; [`Outbox::settled`] waits until
//! everything enqueued has been attempted.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::Sha256;
use tokio::sync::{Notify, mpsc};

use crate::sim::faults::{WebhookFaults, WebhookShaper};

/// One prepared delivery: where, what, and its signature.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The webhook it is for.
    pub webhook_id: i64,
    /// Event type, e.g. `TICKET_LABEL_ADDED`.
    pub event: String,
    /// Target URL.
    pub url: String,
    /// The form-encoded body.
    pub body: String,
    /// The `Trengo-Signature` header value.
    pub signature: String,
}

/// One delivery attempt as the log keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WebhookDelivery {
    /// The webhook it was for.
    pub webhook_id: i64,
    /// Event type.
    pub event: String,
    /// Target URL.
    pub url: String,
    /// The form-encoded body sent.
    pub body: String,
    /// The `Trengo-Signature` header sent.
    pub signature: String,
    /// The receiver's status, if it answered.
    pub status: Option<u16>,
    /// Why it failed, if it did.
    pub error: Option<String>,
}

/// `Trengo-Signature: <ts>;<hex hmac-sha256(secret, "<ts>." + body)>` (§10.4 \[OFF\]).
pub fn sign(secret: &str, timestamp: i64, body: &str) -> String {
    let digest = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(mut mac) => {
            mac.update(format!("{timestamp}.").as_bytes());
            mac.update(body.as_bytes());
            hex::encode(mac.finalize().into_bytes())
        }
        // HMAC takes keys of any length; this arm cannot be reached.
        Err(_) => String::new(),
    };
    format!("{timestamp};{digest}")
}

/// The form body Trengo posts: flat pairs, all values strings (§10.3).
pub fn form_body(fields: &[(String, String)]) -> String {
    let mut serializer = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in fields {
        serializer.append_pair(k, v);
    }
    serializer.finish()
}

#[derive(Debug, Default)]
struct Pending {
    count: AtomicUsize,
    changed: Notify,
}

/// The queue of deliveries and the log of attempts.
#[derive(Debug)]
pub struct Outbox {
    // std mutexes: held for a push or a clone, never across an await.
    sender: Mutex<Option<mpsc::UnboundedSender<Delivery>>>,
    log: Arc<Mutex<Vec<WebhookDelivery>>>,
    pending: Arc<Pending>,
    shaper: WebhookShaper<Delivery>,
}

impl Default for Outbox {
    fn default() -> Self {
        Self {
            sender: Mutex::default(),
            log: Arc::default(),
            pending: Arc::default(),
            shaper: WebhookShaper::new(1),
        }
    }
}

impl Outbox {
    /// Loses, repeats or reorders deliveries from now on (see [`WebhookFaults`]).
    pub fn set_faults(&self, faults: WebhookFaults) {
        self.shaper.set(faults);
    }

    /// Queues `deliveries` for the background sender, starting it on first use.
    pub fn enqueue(&self, deliveries: Vec<Delivery>) {
        let (deliveries, lost) = self.shaper.shape(deliveries);
        for delivery in lost {
            self.record(delivery, None, Some("lost by fault injection".into()));
        }
        if deliveries.is_empty() {
            return;
        }
        let mut sender = self.sender.lock().unwrap_or_else(|e| e.into_inner());
        if sender.is_none() {
            *sender = self.spawn_sender();
        }
        for delivery in deliveries {
            let queued = sender.as_ref().map(|tx| {
                self.pending.count.fetch_add(1, Ordering::SeqCst);
                tx.send(delivery.clone()).map_err(|e| e.0)
            });
            match queued {
                Some(Ok(())) => {}
                Some(Err(lost)) => {
                    self.pending.count.fetch_sub(1, Ordering::SeqCst);
                    self.record(lost, None, Some("the webhook sender has stopped".into()));
                }
                None => self.record(
                    delivery,
                    None,
                    Some("no Tokio runtime to deliver webhooks from".into()),
                ),
            }
        }
    }

    fn spawn_sender(&self) -> Option<mpsc::UnboundedSender<Delivery>> {
        let runtime = tokio::runtime::Handle::try_current().ok()?;
        let (tx, mut rx) = mpsc::unbounded_channel::<Delivery>();
        let log = Arc::clone(&self.log);
        let pending = Arc::clone(&self.pending);
        runtime.spawn(async move {
            let client = reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap_or_default();
            while let Some(delivery) = rx.recv().await {
                let result = client
                    .post(&delivery.url)
                    .header("Content-Type", "application/x-www-form-urlencoded")
                    .header("Trengo-Signature", &delivery.signature)
                    .body(delivery.body.clone())
                    .send()
                    .await;
                let (status, error) = match result {
                    Ok(response) => (Some(response.status().as_u16()), None),
                    Err(e) => (
                        None,
                        Some(format!("delivery to {} failed: {e}", delivery.url)),
                    ),
                };
                log.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(entry(delivery, status, error));
                pending.count.fetch_sub(1, Ordering::SeqCst);
                pending.changed.notify_waiters();
            }
        });
        Some(tx)
    }

    fn record(&self, delivery: Delivery, status: Option<u16>, error: Option<String>) {
        self.log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(entry(delivery, status, error));
    }

    /// Every attempt so far, oldest first.
    pub fn log(&self) -> Vec<WebhookDelivery> {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Empties the log.
    pub fn reset_log(&self) {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    /// Waits until every queued delivery has been attempted.
    pub async fn settled(&self) {
        loop {
            let notified = self.pending.changed.notified();
            if self.pending.count.load(Ordering::SeqCst) == 0 {
                return;
            }
            notified.await;
        }
    }
}

fn entry(delivery: Delivery, status: Option<u16>, error: Option<String>) -> WebhookDelivery {
    WebhookDelivery {
        webhook_id: delivery.webhook_id,
        event: delivery.event,
        url: delivery.url,
        body: delivery.body,
        signature: delivery.signature,
        status,
        error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_timestamp_and_hex_hmac_of_timestamp_dot_body() {
        let signature = sign("secret", 1_569_508_124, "ticket_id=1");
        let (ts, digest) = signature.split_once(';').unwrap();
        assert_eq!(ts, "1569508124");
        let mut mac = Hmac::<Sha256>::new_from_slice(b"secret").unwrap();
        mac.update(b"1569508124.ticket_id=1");
        mac.verify_slice(&hex::decode(digest).unwrap()).unwrap();
    }

    #[test]
    fn bodies_are_form_encoded_strings() {
        let body = form_body(&[
            ("ticket_id".into(), "913790661".into()),
            ("label_name".into(), "Payout Triggers".into()),
        ]);
        assert_eq!(body, "ticket_id=913790661&label_name=Payout+Triggers");
    }
}

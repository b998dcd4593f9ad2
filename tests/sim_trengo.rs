//! The Trengo fake's documented behaviour, over real HTTP on 127.0.0.1.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use hmac::{Hmac, Mac};
use reqwest::{Client, Response, StatusCode};
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use trengo_sync::clock::ManualClock;
use trengo_sync::sim::Faults;
use trengo_sync::sim::trengo::{
    CustomerTicket, DEFAULT_TOKEN, SeedSpec, TrengoFake, TrengoFakeOptions,
};

fn start_time() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-02-03T13:17:31Z")
        .unwrap()
        .with_timezone(&Utc)
}

struct Harness {
    fake: TrengoFake,
    clock: Arc<ManualClock>,
    http: Client,
}

impl Harness {
    async fn start(options: TrengoFakeOptions) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let clock = ManualClock::new(start_time());
        let fake = TrengoFake::start(listener, options, clock.clone()).unwrap();
        Self {
            fake,
            clock,
            http: Client::new(),
        }
    }

    async fn default() -> Self {
        Self::start(TrengoFakeOptions::default()).await
    }

    fn url(&self, path: &str) -> String {
        if path.starts_with("http") {
            path.to_owned()
        } else {
            format!("{}{path}", self.fake.base_url())
        }
    }

    async fn get(&self, path: &str) -> Response {
        self.http
            .get(self.url(path))
            .bearer_auth(DEFAULT_TOKEN)
            .header("Accept", "application/json")
            .send()
            .await
            .unwrap()
    }

    async fn get_json(&self, path: &str) -> Value {
        let response = self.get(path).await;
        assert_eq!(response.status(), StatusCode::OK, "GET {path}");
        response.json().await.unwrap()
    }

    async fn post(&self, path: &str, body: Value) -> Response {
        self.http
            .post(self.url(path))
            .bearer_auth(DEFAULT_TOKEN)
            .header("Accept", "application/json")
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    /// Every id of a listing, the way a careful client walks it: each next page is the first
    /// request with `page=N`, since `links.next` may not keep the filters (see
    /// `next_link_drops_the_filters_by_default`).
    async fn crawl_ids(&self, first: &str) -> Vec<i64> {
        let mut ids = Vec::new();
        let mut page_no = 1;
        loop {
            let sep = if first.contains('?') { '&' } else { '?' };
            let url = if page_no == 1 {
                first.to_owned()
            } else {
                format!("{first}{sep}page={page_no}")
            };
            let page = self.get_json(&url).await;
            ids.extend(page_ids(&page));
            if page["links"]["next"].is_null() {
                break;
            }
            page_no += 1;
        }
        ids
    }

    fn advance(&self, seconds: i64) {
        self.clock.advance(Duration::seconds(seconds));
    }
}

fn page_ids(page: &Value) -> Vec<i64> {
    page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_i64().unwrap())
        .collect()
}

fn naive_amsterdam(at: DateTime<Utc>) -> String {
    at.with_timezone(&chrono_tz::Europe::Amsterdam)
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

#[tokio::test]
async fn pagination_ends_on_null_next_and_meta_has_no_total() {
    let h = Harness::default().await;
    let first = h.get_json("/tickets").await;
    assert_eq!(first["data"].as_array().unwrap().len(), 25);
    assert!(first["links"]["last"].is_null());
    assert!(first["links"]["next"].is_string());
    let meta = first["meta"].as_object().unwrap();
    assert!(!meta.contains_key("total"));
    assert!(!meta.contains_key("last_page"));
    assert_eq!(meta["per_page"], 25);

    let ids = h.crawl_ids("/tickets").await;
    assert_eq!(ids.len(), 30);
    let mut unique = ids.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), 30);
}

#[tokio::test]
async fn per_page_is_ignored_by_default() {
    let h = Harness::default().await;
    let page = h.get_json("/tickets?per_page=100").await;
    assert_eq!(page["data"].as_array().unwrap().len(), 25);
    assert_eq!(page["meta"]["per_page"], 25);
}

#[tokio::test]
async fn order_drifts_when_a_message_arrives_mid_crawl() {
    let h = Harness::default().await;
    let page1 = h.get_json("/tickets").await;
    let next = page1["links"]["next"].as_str().unwrap().to_owned();
    let before_page2 = page_ids(&h.get_json(&next).await);
    let moved = *before_page2.last().unwrap();

    h.advance(60);
    h.fake
        .post_customer_message(moved, "Any news on my order?")
        .unwrap();

    let after_page2 = page_ids(&h.get_json(&next).await);
    let mut seen = page_ids(&page1);
    seen.extend(&after_page2);
    assert!(
        !seen.contains(&moved),
        "the ticket that got a message jumped to page 1 and was missed"
    );
    assert!(
        after_page2.contains(page_ids(&page1).last().unwrap()),
        "the last ticket of page 1 slid onto page 2 and is seen twice"
    );
    let fresh = h.get_json("/tickets").await;
    assert_eq!(page_ids(&fresh)[0], moved);
}

#[tokio::test]
async fn next_link_drops_the_filters_by_default_and_keeps_them_when_switched() {
    let h = Harness::default().await;
    let page1 = h.get_json("/tickets?sort=date&x=1").await;
    let next = page1["links"]["next"].as_str().unwrap().to_owned();
    assert!(next.ends_with("/tickets?page=2"), "{next}");

    let mut switches = h.fake.switches();
    switches.next_link_keeps_filters = true;
    h.fake.set_switches(&switches);
    let page1 = h.get_json("/tickets?sort=date&x=1").await;
    let next = page1["links"]["next"].as_str().unwrap().to_owned();
    assert!(
        next.contains("sort=date") && next.contains("x=1") && next.contains("page=2"),
        "{next}"
    );
}

#[tokio::test]
async fn sort_date_lists_oldest_last_message_first() {
    let h = Harness::default().await;
    let newest_first = h.crawl_ids("/tickets").await;
    let oldest_first = h.crawl_ids("/tickets?sort=date").await;
    let mut reversed = newest_first.clone();
    reversed.reverse();
    assert_eq!(oldest_first, reversed);
}

#[tokio::test]
async fn unknown_filters_are_ignored_and_channel_id_returns_everything() {
    let h = Harness::default().await;
    let channel = h.fake.channel_ids()[0];
    let everything = h.crawl_ids("/tickets").await;
    let with_channel_id = h.crawl_ids(&format!("/tickets?channel_id={channel}")).await;
    assert_eq!(with_channel_id, everything);
    let with_nonsense = h.crawl_ids("/tickets?created_after=2030-01-01").await;
    assert_eq!(with_nonsense, everything);

    let filtered = h.crawl_ids(&format!("/tickets?channels[]={channel}")).await;
    assert!(!filtered.is_empty() && filtered.len() < everything.len());
    for id in filtered {
        let ticket = h.get_json(&format!("/tickets/{id}")).await;
        assert_eq!(ticket["channel"]["id"], channel);
    }
}

#[tokio::test]
async fn updated_at_gt_is_strictly_after_a_naive_time_in_the_account_zone() {
    let h = Harness::default().await;
    let open = h.crawl_ids("/tickets?status=OPEN").await;
    let ticket = open[0];
    h.advance(3600);
    let closed_at = h.clock_now();
    let closed = h.post(&format!("/tickets/{ticket}/close"), json!({})).await;
    assert_eq!(closed.status(), StatusCode::OK);

    let just_before = naive_amsterdam(closed_at - Duration::seconds(1));
    let ids = h
        .crawl_ids(&format!("/tickets?updated_at_gt={just_before}"))
        .await;
    assert_eq!(ids, vec![ticket]);

    let exactly = naive_amsterdam(closed_at);
    let ids = h
        .crawl_ids(&format!("/tickets?updated_at_gt={exactly}"))
        .await;
    assert!(ids.is_empty(), "the filter is strictly greater");

    // Read as Amsterdam time, a UTC wall-clock value lies an hour earlier in winter: a
    // client that sends UTC sees the ticket too, plus whatever changed in that hour.
    let utc_wall = (closed_at - Duration::seconds(1))
        .format("%Y-%m-%d %H:%M:%S")
        .to_string();
    let ids = h
        .crawl_ids(&format!("/tickets?updated_at_gt={utc_wall}"))
        .await;
    assert!(ids.contains(&ticket));

    // ISO is not a format anyone confirmed: the fake ignores it like an unknown filter.
    let iso = (closed_at - Duration::seconds(1)).to_rfc3339();
    let ids = h
        .crawl_ids(&format!("/tickets?updated_at_gt={}", url_encode(&iso)))
        .await;
    assert_eq!(ids.len(), 30);
}

fn url_encode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

impl Harness {
    fn clock_now(&self) -> DateTime<Utc> {
        use trengo_sync::clock::Clock;
        self.clock.now()
    }
}

#[tokio::test]
async fn naive_timestamps_are_rendered_in_the_configured_zone() {
    let amsterdam = Harness::default().await;
    let utc = Harness::start(TrengoFakeOptions {
        zone: chrono_tz::UTC,
        ..TrengoFakeOptions::default()
    })
    .await;
    for (h, expected) in [
        (&amsterdam, "2026-02-03 14:17:31"),
        (&utc, "2026-02-03 13:17:31"),
    ] {
        let body = json!({
            "channel_id": h.fake.channel_ids()[0],
            "contact_id": h.fake.contact_ids()[0],
            "subject": "Zone check",
        });
        let created = h.post("/tickets", body).await;
        assert_eq!(created.status(), StatusCode::CREATED);
        let raw: Value = created.json().await.unwrap();
        // The create response is the raw model with ISO microsecond times in UTC.
        assert_eq!(raw["created_at"], "2026-02-03T13:17:31.000000Z");
        assert!(raw["latest_message"].is_string());
        let id = raw["id"].as_i64().unwrap();
        let ticket = h.get_json(&format!("/tickets/{id}")).await;
        assert_eq!(ticket["created_at"], expected);
        assert_eq!(ticket["updated_at"], expected);
        // Nested contacts keep ISO with an explicit offset.
        assert!(
            ticket["contact"]["created_at"]
                .as_str()
                .unwrap()
                .ends_with("+00:00")
        );
    }
}

#[tokio::test]
async fn created_ticket_comes_back_assigned_to_the_token_user() {
    let h = Harness::default().await;
    let body = json!({
        "channel_id": h.fake.channel_ids()[0],
        "contact_id": h.fake.contact_ids()[0],
        "subject": "From GHL",
    });
    let raw: Value = h.post("/tickets", body).await.json().await.unwrap();
    let api_user = TrengoFakeOptions::default().api_user.id;
    assert_eq!(raw["status"], "ASSIGNED");
    assert_eq!(raw["user_id"], api_user);
    assert_eq!(raw["assigned_by"], api_user);
    assert!(raw["channel_id"].is_i64());
}

#[tokio::test]
async fn requests_without_or_with_a_wrong_token_get_401() {
    let h = Harness::default().await;
    let url = h.url("/tickets");
    let none = h.http.get(&url).send().await.unwrap();
    let wrong = h.http.get(&url).bearer_auth("nope").send().await.unwrap();
    for response in [none, wrong] {
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert!(response.headers().contains_key("x-ratelimit-limit"));
        let body: Value = response.json().await.unwrap();
        assert_eq!(body, json!({"message": "Unauthenticated."}));
    }
}

#[tokio::test]
async fn validation_errors_and_missing_records_have_laravels_shapes() {
    let h = Harness::default().await;
    let ticket = h.fake.ticket_ids()[0];
    let response = h
        .post(&format!("/tickets/{ticket}/labels"), json!({}))
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["message"], "The given data was invalid.");
    assert_eq!(
        body["errors"]["label_id"][0],
        "The label id field is required."
    );

    let response = h
        .post(&format!("/tickets/{ticket}/labels"), json!({"label_id": 1}))
        .await;
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["errors"]["label_id"][0],
        "The selected label id is invalid."
    );

    let missing = h.get("/tickets/1").await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    let body: Value = missing.json().await.unwrap();
    assert!(body["message"].as_str().unwrap().contains("Ticket"));
}

#[tokio::test]
async fn the_budget_runs_out_with_429_and_retry_after_and_refills_after_a_minute() {
    let h = Harness::start(TrengoFakeOptions {
        rate_limit_per_minute: 3,
        ..TrengoFakeOptions::default()
    })
    .await;
    for remaining in ["2", "1", "0"] {
        let response = h.get("/labels").await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["x-ratelimit-limit"], "3");
        assert_eq!(response.headers()["x-ratelimit-remaining"], remaining);
    }
    h.advance(20);
    let limited = h.get("/labels").await;
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: i64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(retry_after, 40);
    let reset: i64 = limited.headers()["x-ratelimit-reset"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(reset, (start_time() + Duration::seconds(60)).timestamp());

    h.advance(retry_after);
    assert_eq!(h.get("/labels").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn every_response_carries_ratelimit_headers() {
    let h = Harness::default().await;
    let ticket = h.fake.ticket_ids()[0];
    let responses = [
        h.get("/tickets").await,
        h.get("/tickets/1").await,
        h.get("/no_such_endpoint").await,
        h.post(&format!("/tickets/{ticket}/labels"), json!({}))
            .await,
        h.post(&format!("/tickets/{ticket}/close"), json!({})).await,
    ];
    for response in responses {
        assert!(response.headers().contains_key("x-ratelimit-limit"));
        assert!(response.headers().contains_key("x-ratelimit-remaining"));
    }
}

#[tokio::test]
async fn internal_note_is_note_and_a_plain_message_is_outbound() {
    let h = Harness::default().await;
    let ticket = h.fake.ticket_ids()[0];
    let path = format!("/tickets/{ticket}/messages");
    h.advance(10);
    let note: Value = h
        .post(
            &path,
            json!({"message": "Linked to task", "internal_note": true}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(note["message"]["type"], "NOTE");
    assert!(note["message"]["id"].as_i64().unwrap() > i64::from(i32::MAX));
    h.advance(10);
    let reply: Value = h
        .post(&path, json!({"message": "We are on it"}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(reply["message"]["type"], "OUTBOUND");

    let list = h.get_json(&path).await;
    assert_eq!(list["data"][0]["type"], "OUTBOUND", "newest first");
    assert_eq!(list["data"][1]["type"], "NOTE");
    assert_eq!(list["data"][1]["message"], "Linked to task");
}

#[tokio::test]
async fn form_encoded_bodies_are_accepted() {
    let h = Harness::default().await;
    let ticket = h.fake.ticket_ids()[0];
    let response = h
        .http
        .post(h.url(&format!("/tickets/{ticket}/messages")))
        .bearer_auth(DEFAULT_TOKEN)
        .form(&[("message", "Form note"), ("internal_note", "1")])
        .send()
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["message"]["type"], "NOTE");
}

#[tokio::test]
async fn label_attach_takes_one_label_per_call() {
    let h = Harness::default().await;
    let ticket = h.fake.ticket_ids()[0];
    let (a, b) = (
        h.fake.label_id("Urgent").unwrap(),
        h.fake.label_id("Feedback").unwrap(),
    );
    let path = format!("/tickets/{ticket}/labels");
    for label in [a, b] {
        let _ = h
            .http
            .delete(h.url(&format!("{path}/{label}")))
            .bearer_auth(DEFAULT_TOKEN)
            .send()
            .await
            .unwrap();
    }
    let both = h.post(&path, json!({"label_id": [a, b]})).await;
    assert_eq!(both.status(), StatusCode::UNPROCESSABLE_ENTITY);
    for label in [a, b] {
        assert_eq!(
            h.post(&path, json!({"label_id": label})).await.status(),
            StatusCode::OK
        );
    }
    let labels = h.get_json(&path).await;
    let ids: Vec<i64> = labels["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["id"].as_i64().unwrap())
        .collect();
    assert!(ids.contains(&a) && ids.contains(&b));
}

#[tokio::test]
async fn label_and_note_changes_do_not_bump_updated_at_by_default() {
    let h = Harness::default().await;
    let ticket = h.fake.ticket_ids()[0];
    let label = h.fake.label_id("Billing").unwrap();
    let before = h.get_json(&format!("/tickets/{ticket}")).await;
    h.advance(120);
    let _ = h
        .http
        .delete(h.url(&format!("/tickets/{ticket}/labels/{label}")))
        .bearer_auth(DEFAULT_TOKEN)
        .send()
        .await
        .unwrap();
    h.post(
        &format!("/tickets/{ticket}/labels"),
        json!({"label_id": label}),
    )
    .await;
    h.post(
        &format!("/tickets/{ticket}/messages"),
        json!({"message": "note", "internal_note": true}),
    )
    .await;
    let after = h.get_json(&format!("/tickets/{ticket}")).await;
    assert_eq!(after["updated_at"], before["updated_at"]);
    assert_ne!(after["latest_message_at"], before["latest_message_at"]);
    assert_eq!(
        after["messages_count"].as_i64().unwrap(),
        before["messages_count"].as_i64().unwrap() + 1
    );

    let mut switches = h.fake.switches();
    switches.label_bumps_updated_at = true;
    h.fake.set_switches(&switches);
    h.advance(120);
    let _ = h
        .http
        .delete(h.url(&format!("/tickets/{ticket}/labels/{label}")))
        .bearer_auth(DEFAULT_TOKEN)
        .send()
        .await
        .unwrap();
    let bumped = h.get_json(&format!("/tickets/{ticket}")).await;
    assert_eq!(bumped["updated_at"], naive_amsterdam(h.clock_now()));
}

#[tokio::test]
async fn closing_sets_closed_at_to_updated_at_and_reopen_restores_assignment() {
    let h = Harness::default().await;
    let ticket = h.fake.ticket_ids()[0];
    h.advance(30);
    h.post(
        &format!("/tickets/{ticket}/assign"),
        json!({"type": "user", "user_id": TrengoFakeOptions::default().api_user.id}),
    )
    .await;
    h.advance(30);
    h.post(&format!("/tickets/{ticket}/close"), json!({})).await;
    let closed = h.get_json(&format!("/tickets/{ticket}")).await;
    assert_eq!(closed["status"], "CLOSED");
    assert_eq!(closed["closed_at"], closed["updated_at"]);
    h.post(&format!("/tickets/{ticket}/reopen"), json!({}))
        .await;
    let reopened = h.get_json(&format!("/tickets/{ticket}")).await;
    assert_eq!(reopened["status"], "ASSIGNED");
    assert!(reopened["closed_at"].is_null());
}

async fn webhook_receiver() -> (String, mpsc::UnboundedReceiver<(String, String)>) {
    use axum::http::HeaderMap;
    let (tx, rx) = mpsc::unbounded_channel();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: String| {
            let tx = tx.clone();
            async move {
                let signature = headers["trengo-signature"].to_str().unwrap().to_owned();
                tx.send((signature, body)).unwrap();
                axum::http::StatusCode::ACCEPTED
            }
        }),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, rx)
}

#[tokio::test]
async fn signed_webhook_delivery_verifies_with_the_signing_secret() {
    let h = Harness::default().await;
    let (url, mut received) = webhook_receiver().await;
    let hook: Value = h
        .post(
            "/webhooks",
            json!({"name": "labels", "type": "TICKET_LABEL_ADDED", "url": url}),
        )
        .await
        .json()
        .await
        .unwrap();
    let secret = hook["signing_secret"].as_str().unwrap().to_owned();
    assert_eq!(secret.len(), 32);

    let ticket = h.fake.ticket_ids()[0];
    let label = h.fake.label_id("trengo:vip").unwrap();
    h.fake.remove_label(ticket, label).unwrap();
    // Our own API write comes back as a webhook too (echo).
    h.post(
        &format!("/tickets/{ticket}/labels"),
        json!({"label_id": label}),
    )
    .await;
    h.fake.settle_webhooks().await;

    let (signature, body) = received.try_recv().unwrap();
    let (timestamp, digest) = signature.split_once(';').unwrap();
    assert_eq!(timestamp, start_time().timestamp().to_string());
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{timestamp}.{body}").as_bytes());
    mac.verify_slice(&hex::decode(digest).unwrap()).unwrap();
    let fields: Vec<(String, String)> = url::form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect();
    assert!(fields.contains(&("ticket_id".into(), ticket.to_string())));
    assert!(fields.contains(&("label_id".into(), label.to_string())));
    assert!(fields.contains(&("label_name".into(), "trengo:vip".into())));

    let log = h.fake.webhook_log();
    assert_eq!(
        log.len(),
        1,
        "no webhook registered for TICKET_LABEL_DELETED"
    );
    assert_eq!(log[0].status, Some(202));
    assert_eq!(log[0].event, "TICKET_LABEL_ADDED");
}

#[tokio::test]
async fn each_fault_kind_is_observable() {
    let h = Harness::default().await;
    h.fake.set_faults(Faults {
        server_error_rate: 1.0,
        ..Faults::default()
    });
    assert!(h.get("/labels").await.status().is_server_error());

    h.fake.set_faults(Faults {
        rate_limit_rate: 1.0,
        ..Faults::default()
    });
    let limited = h.get("/labels").await;
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(limited.headers().contains_key("retry-after"));

    h.fake.set_faults(Faults {
        malformed_rate: 1.0,
        ..Faults::default()
    });
    let garbled = h.get("/labels").await;
    assert!(serde_json::from_slice::<Value>(&garbled.bytes().await.unwrap()).is_err());

    h.fake.set_faults(Faults {
        drop_rate: 1.0,
        ..Faults::default()
    });
    let dropped = h
        .http
        .get(h.url("/labels"))
        .bearer_auth(DEFAULT_TOKEN)
        .send()
        .await;
    let broken = match dropped {
        Err(_) => true,
        Ok(response) => response.bytes().await.is_err(),
    };
    assert!(broken, "a dropped connection is an error for the client");

    h.fake.set_faults(Faults {
        latency_ms: 5,
        ..Faults::default()
    });
    assert_eq!(h.get("/labels").await.status(), StatusCode::OK);

    h.fake.set_faults(Faults::default());
    h.fake.burst_429(2);
    assert_eq!(
        h.get("/labels").await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        h.get("/labels").await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(h.get("/labels").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_dropped_answer_still_applies_the_write() {
    let h = Harness::default().await;
    let ticket = h.crawl_ids("/tickets?status=OPEN").await[0];
    h.fake.set_faults(Faults {
        drop_rate: 1.0,
        ..Faults::default()
    });
    let answer = h
        .http
        .post(h.url(&format!("/tickets/{ticket}/close")))
        .bearer_auth(DEFAULT_TOKEN)
        .json(&json!({}))
        .send()
        .await;
    let broken = match answer {
        Err(_) => true,
        Ok(response) => response.bytes().await.is_err(),
    };
    assert!(broken, "the client never sees a whole answer");
    h.fake.set_faults(Faults::default());
    assert_eq!(h.fake.ticket_json(ticket).unwrap()["status"], "CLOSED");
}

#[tokio::test]
async fn counters_count_requests_by_route_and_writes_but_not_admin_edits() {
    let h = Harness::default().await;
    let ticket = h.fake.ticket_ids()[0];
    h.get("/tickets").await;
    h.get("/tickets?page=2").await;
    h.post(&format!("/tickets/{ticket}/close"), json!({})).await;
    h.post(&format!("/tickets/{ticket}/labels"), json!({}))
        .await; // 422: not a write
    h.fake.reopen_ticket(ticket).unwrap();
    let admin = h
        .http
        .post(format!("{}/_sim/tickets/{ticket}/close", h.fake.web_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(admin.status(), StatusCode::OK);

    let counters = h.fake.counters();
    assert_eq!(counters.count("GET /api/v2/tickets"), 2);
    assert_eq!(counters.count("POST /api/v2/tickets/{id}/close"), 1);
    assert_eq!(counters.count("POST /api/v2/tickets/{id}/labels"), 1);
    assert_eq!(counters.total, 4);
    assert_eq!(counters.writes, 1);
    assert_eq!(h.fake.ticket_json(ticket).unwrap()["status"], "CLOSED");
}

#[tokio::test]
async fn admin_edits_over_http_behave_like_a_person_in_the_ui() {
    let h = Harness::default().await;
    let base = h.fake.web_url();
    let contact = h.fake.contact_ids()[0];
    let channel = h.fake.channel_ids()[0];
    let created: Value = h
        .http
        .post(format!("{base}/_sim/tickets"))
        .json(&json!({"contact_id": contact, "channel_id": channel, "message": "Help!"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ticket = created["id"].as_i64().unwrap();
    let shown = h.get_json(&format!("/tickets/{ticket}")).await;
    assert_eq!(shown["status"], "OPEN");
    assert_eq!(shown["latest_message"]["type"], "INBOUND");

    let note: Value = h
        .http
        .post(format!("{base}/_sim/tickets/{ticket}/notes"))
        .json(&json!({"message": "Called the customer"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let message = h
        .get_json(&format!("/tickets/{ticket}/messages/{}", note["id"]))
        .await;
    assert_eq!(message["type"], "NOTE");
    assert_ne!(
        message["user_id"],
        TrengoFakeOptions::default().api_user.id,
        "admin edits are a person's, not the token user's"
    );

    let state: Value = h
        .http
        .get(format!("{base}/_sim/state"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(state["tickets"][ticket.to_string()].is_object());
}

#[tokio::test]
async fn the_same_seed_gives_the_same_world() {
    let a = Harness::default().await;
    let b = Harness::default().await;
    assert_eq!(a.fake.snapshot(), b.fake.snapshot());
    let c = Harness::start(TrengoFakeOptions {
        seed: 2,
        ..TrengoFakeOptions::default()
    })
    .await;
    assert_ne!(a.fake.snapshot(), c.fake.snapshot());

    let spec = SeedSpec {
        contacts: 3,
        tickets: 60,
        ..SeedSpec::default()
    };
    a.fake.seed(&spec);
    b.fake.seed(&spec);
    assert_eq!(a.fake.snapshot(), b.fake.snapshot());
    assert_eq!(a.fake.ticket_ids().len(), 60);
}

#[tokio::test]
async fn contacts_are_found_by_term_and_created_once_per_identifier() {
    let h = Harness::default().await;
    let channel = h.fake.channel_ids()[0];
    let path = format!("/channels/{channel}/contacts");
    let first = h
        .post(
            &path,
            json!({"identifier": "new@example.com", "name": "New Person"}),
        )
        .await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let first: Value = first.json().await.unwrap();
    let again: Value = h
        .post(
            &path,
            json!({"identifier": "new@example.com", "name": "Other"}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(first["id"], again["id"]);
    let found = h.get_json("/contacts?term=new%40example.com").await;
    assert_eq!(found["data"].as_array().unwrap().len(), 1);
    assert_eq!(found["data"][0]["name"], "New Person");
}

#[tokio::test]
async fn webhooks_list_uses_the_full_paginator() {
    let h = Harness::default().await;
    h.post(
        "/webhooks",
        json!({"name": "n", "type": "NOTE", "url": "http://127.0.0.1:9/n"}),
    )
    .await;
    let list = h.get_json("/webhooks").await;
    assert_eq!(list["meta"]["per_page"], 999);
    assert_eq!(list["meta"]["total"], 1);
    let bad = h
        .post(
            "/webhooks",
            json!({"name": "n", "type": "EVERYTHING", "url": "http://127.0.0.1:9/n"}),
        )
        .await;
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn a_customer_message_on_a_closed_ticket_reopens_it() {
    let h = Harness::default().await;
    let ticket = h.fake.ticket_ids()[0];
    h.fake.close_ticket(ticket).unwrap();
    h.advance(5);
    h.fake
        .create_ticket(&CustomerTicket {
            contact_id: h.fake.contact_ids()[1],
            channel_id: h.fake.channel_ids()[1],
            subject: None,
            message: "unrelated".into(),
        })
        .unwrap();
    h.fake
        .post_customer_message(ticket, "Still broken")
        .unwrap();
    let shown = h.get_json(&format!("/tickets/{ticket}")).await;
    assert_ne!(shown["status"], "CLOSED");
}

#[tokio::test]
async fn known_filters_narrow_the_list() {
    let h = Harness::default().await;
    let label = h.fake.label_id("Billing").unwrap();
    let contact = h.fake.contact_ids()[2];
    for (query, check) in [
        ("status=CLOSED".to_owned(), "status"),
        (format!("labels[]={label}"), "labels"),
        (format!("contact_id={contact}"), "contact"),
    ] {
        let ids = h.crawl_ids(&format!("/tickets?{query}")).await;
        assert!(!ids.is_empty() && ids.len() < 30, "{query} narrows");
        for id in ids {
            let t = h.get_json(&format!("/tickets/{id}")).await;
            let ok = match check {
                "status" => t["status"] == "CLOSED",
                "labels" => t["labels"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|l| l["id"] == label),
                _ => t["contact_id"] == contact,
            };
            assert!(ok, "{query} let ticket {id} through");
        }
    }
    let agent_tickets = h.crawl_ids("/tickets?status=ASSIGNED").await;
    let agent = h.get_json(&format!("/tickets/{}", agent_tickets[0])).await["user_id"].clone();
    let ids = h.crawl_ids(&format!("/tickets?users[]={agent}")).await;
    assert!(ids.contains(&agent_tickets[0]));
}

#[tokio::test]
async fn the_custom_field_catalogue_lists_the_pairing_fields_after_the_first_two() {
    let h = Harness::default().await;
    let list = h.get_json("/custom_fields").await;
    let fields = list["data"].as_array().unwrap();
    let shown: Vec<(&str, &str)> = fields
        .iter()
        .map(|f| (f["title"].as_str().unwrap(), f["type"].as_str().unwrap()))
        .collect();
    assert_eq!(
        shown,
        [
            ("Order number", "TICKET"),
            ("Customer number", "CONTACT"),
            ("Subscription tier", "CONTACT"),
            ("GHL link", "CONTACT"),
            ("Next appointment", "CONTACT"),
            ("Open GHL tasks", "CONTACT"),
            ("GHL tags", "CONTACT"),
            ("Task due", "TICKET"),
            ("Task title", "TICKET"),
            ("Account manager", "PROFILE"),
            ("Renewal date", "CONTACT"),
            ("Newsletter", "CONTACT"),
        ]
    );
    for field in fields {
        assert_eq!(field["field_type"], "TEXT");
        assert!(
            field["items"].is_null(),
            "text fields have no items: {field}"
        );
    }
}

#[tokio::test]
async fn an_identifier_of_the_wrong_kind_for_the_channel_is_refused() {
    let h = Harness::default().await;
    let channels = h.get_json("/channels").await;
    let of_kind = |kind: &str| {
        channels["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == kind)
            .unwrap()["id"]
            .as_i64()
            .unwrap()
    };
    let (email, whatsapp) = (of_kind("EMAIL"), of_kind("WA_BUSINESS"));
    for (channel, identifier) in [(email, "+31612345678"), (whatsapp, "new@example.com")] {
        let answer = h
            .post(
                &format!("/channels/{channel}/contacts"),
                json!({"identifier": identifier}),
            )
            .await;
        assert_eq!(answer.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let body: Value = answer.json().await.unwrap();
        assert!(body["errors"]["identifier"].is_array(), "{body}");
    }
    // The right kind works, and an existing identifier answers the existing contact.
    let existing = h
        .get_json(&format!("/contacts/{}", h.fake.contact_ids()[0]))
        .await;
    for (channel, identifier) in [
        (email, existing["email"].as_str().unwrap()),
        (whatsapp, existing["phone"].as_str().unwrap()),
    ] {
        let answer = h
            .post(
                &format!("/channels/{channel}/contacts"),
                json!({"identifier": identifier}),
            )
            .await;
        assert!(answer.status().is_success(), "{identifier}");
    }
}

#[tokio::test]
async fn seeded_contacts_each_carry_a_profile_of_their_own() {
    let h = Harness::default().await;
    let mut seen = Vec::new();
    for contact in h.fake.contact_ids() {
        let shown = h.get_json(&format!("/contacts/{contact}")).await;
        let profiles = shown["profile"].as_array().unwrap();
        assert_eq!(profiles.len(), 1, "{shown}");
        assert_eq!(profiles[0]["name"], shown["name"]);
        let id = profiles[0]["id"].as_i64().unwrap();
        assert!(!seen.contains(&id));
        seen.push(id);
        let profile = h.get_json(&format!("/profiles/{id}")).await;
        assert_eq!(profile["contacts"][0]["id"], contact);
        assert_eq!(profile["custom_field_values"], json!([]));
    }
}

#[tokio::test]
async fn profile_custom_fields_take_profile_fields_only() {
    let h = Harness::default().await;
    let fields = h.get_json("/custom_fields").await;
    let id_of = |title: &str| {
        fields["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["title"] == title)
            .unwrap()["id"]
            .clone()
    };
    let contact = h
        .get_json(&format!("/contacts/{}", h.fake.contact_ids()[0]))
        .await;
    let profile = contact["profile"][0]["id"].as_i64().unwrap();
    let path = format!("/profiles/{profile}/custom_fields");
    let set = h
        .post(
            &path,
            json!({"custom_field_id": id_of("Account manager"), "value": "Sanne"}),
        )
        .await;
    assert!(set.status().is_success());
    for other in ["Customer number", "Order number"] {
        let refused = h
            .post(
                &path,
                json!({"custom_field_id": id_of(other), "value": "x"}),
            )
            .await;
        assert_eq!(
            refused.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{other}"
        );
    }
    let shown = h.get_json(&format!("/profiles/{profile}")).await;
    assert_eq!(
        shown["custom_field_values"],
        json!([{"custom_field_id": id_of("Account manager"), "field_name": "Account manager",
                "value": "Sanne"}])
    );
    assert_eq!(shown["custom_field_data"]["Account manager"], "Sanne");
}

#[tokio::test]
async fn contact_custom_fields_render_alike_on_contacts_and_embedded_in_tickets() {
    let h = Harness::default().await;
    let ticket = h
        .get_json(&format!("/tickets/{}", h.fake.ticket_ids()[0]))
        .await;
    let contact = ticket["contact"]["id"].as_i64().unwrap();
    let fields = h.get_json("/custom_fields").await;
    let tier = fields["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["title"] == "Subscription tier")
        .unwrap()["id"]
        .clone();
    let set = h
        .post(
            &format!("/contacts/{contact}/custom_fields"),
            json!({"custom_field_id": tier, "value": "Pro"}),
        )
        .await;
    assert!(set.status().is_success());
    let direct = h.get_json(&format!("/contacts/{contact}")).await;
    let nested = h
        .get_json(&format!("/tickets/{}", h.fake.ticket_ids()[0]))
        .await["contact"]
        .clone();
    for shown in [&direct, &nested] {
        assert_eq!(
            shown["custom_field_values"],
            json!([{"custom_field_id": tier, "field_name": "Subscription tier", "value": "Pro"}])
        );
        assert_eq!(
            shown["custom_field_data"],
            json!({"Subscription tier": "Pro"})
        );
        assert_eq!(shown["profile"], direct["profile"]);
    }
}

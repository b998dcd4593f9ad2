//! The Trengo client against exact-request mocks (wiremock) and a raw socket that drops
//! connections: every call's method, path, headers and body; retries; rate limits;
//! malformed answers; pagination over hundreds of tickets with drifting order.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt};
use secrecy::SecretString;
use serde_json::{Value, json};
use trengo_sync::api::{ApiError, Budget, RetryPolicy};
use trengo_sync::clock::{ManualClock, SharedClock};
use trengo_sync::trengo::{
    Assignee, NewTicket, TicketFilters, TicketStatus, TrengoClient, TrengoClientConfig,
};
use url::Url;
use wiremock::matchers::{body_json, header, method, path, query_param};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const TOKEN: &str = "trengo-test-token";

fn start() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-01-10T12:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

fn client_for(base: &str) -> TrengoClient {
    let clock: SharedClock = ManualClock::new(start());
    client_with_clock(base, clock)
}

fn client_with_clock(base: &str, clock: SharedClock) -> TrengoClient {
    let mut config = TrengoClientConfig::new(
        Url::parse(&format!("{base}/api/v2")).unwrap(),
        SecretString::from(TOKEN.to_string()),
        chrono_tz::Europe::Amsterdam,
    );
    config.timeout = Duration::from_secs(10);
    config.retry = RetryPolicy {
        max_retries: 3,
        min_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(50),
    };
    // A roomy budget: these tests are about requests, not pacing (wiremock sends no rate
    // headers, so the documented 120/min default would only slow them down).
    let budget = Arc::new(Budget::new("trengo", 60_000, Duration::from_secs(60)));
    TrengoClient::new(config, clock, budget).unwrap()
}

/// A mock that only matches the exact request (method, path, auth, accept, body) and must be hit once.
fn exact(verb: &str, route: &str, body: Option<Value>, answer: ResponseTemplate) -> Mock {
    let mut mock = Mock::given(method(verb))
        .and(path(format!("/api/v2{route}")))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .and(header("accept", "application/json"));
    if let Some(body) = body {
        mock = mock
            .and(header("content-type", "application/json"))
            .and(body_json(body));
    }
    mock.respond_with(answer).expect(1)
}

fn ticket(id: i64) -> Value {
    json!({"id": id, "status": "OPEN", "subject": format!("Ticket {id}"),
           "updated_at": "2026-01-10 13:30:00", "labels": [], "custom_field_values": []})
}

fn page(items: Vec<Value>, next: Option<String>) -> Value {
    json!({"data": items, "links": {"first": null, "last": null, "prev": null, "next": next},
           "meta": {"current_page": 1, "per_page": 25}})
}

#[tokio::test]
async fn every_call_sends_the_exact_request() {
    let server = MockServer::start().await;
    let ok = || ResponseTemplate::new(200).set_body_json(json!({}));
    let note = json!({"message": {"id": 3_448_655_702_i64, "ticket_id": 7, "type": "NOTE",
                      "message": "hi", "created_at": "2024-01-11 10:28:24"}});
    let label = json!({"id": 11, "name": "vip", "color": "#5D9CEC", "archived": 0});
    let contact = json!({"id": 5, "name": "Jane", "identifier": "jane@example.com",
                         "formatted_custom_field_data": []});
    for mock in [
        exact("GET", "/tickets/7", None, ResponseTemplate::new(200).set_body_json(ticket(7))),
        exact(
            "POST",
            "/tickets",
            Some(json!({"channel_id": 3, "contact_id": 5, "subject": "Hello"})),
            ResponseTemplate::new(201).set_body_json(json!({"id": 8, "status": "ASSIGNED",
                "channel_id": 3, "contact_id": 5, "latest_message": "2024-01-02T10:24:40.000000Z"})),
        ),
        exact("POST", "/tickets/7/assign", Some(json!({"type": "user", "user_id": 42})), ok()),
        exact("POST", "/tickets/9/assign", Some(json!({"type": "team", "team_id": 4})), ok()),
        exact("POST", "/tickets/7/close", Some(json!({})), ok()),
        exact("POST", "/tickets/9/close", Some(json!({"ticket_result_id": 2})), ok()),
        exact("POST", "/tickets/7/reopen", Some(json!({})), ok()),
        exact("POST", "/tickets/7/spam", None, ok()),
        exact("DELETE", "/tickets/7/spam", None, ResponseTemplate::new(200)),
        exact("POST", "/tickets/7/labels", Some(json!({"label_id": 11})), ok()),
        exact("DELETE", "/tickets/7/labels/11", None, ResponseTemplate::new(200)),
        exact(
            "POST",
            "/tickets/7/custom_fields",
            Some(json!({"custom_field_id": 61, "value": "T-1"})),
            ok(),
        ),
        exact(
            "POST",
            "/tickets/7/messages",
            Some(json!({"message": "hi", "internal_note": true})),
            ResponseTemplate::new(200).set_body_json(note.clone()),
        ),
        exact(
            "POST",
            "/tickets/9/messages",
            Some(json!({"message": "to customer", "internal_note": false})),
            ResponseTemplate::new(200).set_body_json(note),
        ),
        exact(
            "POST",
            "/labels",
            Some(json!({"name": "vip", "color": "#5D9CEC"})),
            ResponseTemplate::new(201).set_body_json(label.clone()),
        ),
        exact(
            "POST",
            "/channels/3/contacts",
            Some(json!({"identifier": "jane@example.com", "name": "Jane"})),
            ResponseTemplate::new(201).set_body_json(contact.clone()),
        ),
        exact("GET", "/contacts/5", None, ResponseTemplate::new(200).set_body_json(contact.clone())),
        exact(
            "PUT",
            "/contacts/5",
            Some(json!({"name": "Jane Doe"})),
            ResponseTemplate::new(200).set_body_json(contact.clone()),
        ),
        exact(
            "POST",
            "/contacts/5/custom_fields",
            Some(json!({"custom_field_id": 62, "value": "C-00001"})),
            ResponseTemplate::new(200),
        ),
    ] {
        mock.mount(&server).await;
    }
    for (route, item) in [
        ("/labels", label),
        (
            "/users",
            json!({"id": 1, "email": "a@example.com", "chat_status": "1"}),
        ),
        ("/teams", json!({"id": 4, "name": "Support"})),
        (
            "/channels",
            json!({"id": 3, "title": "Mail", "type": "EMAIL"}),
        ),
        (
            "/custom_fields",
            json!({"id": 61, "title": "Ref", "type": "TICKET", "field_type": "TEXT"}),
        ),
        (
            "/tickets/7/messages",
            json!({"id": 4_173_600_940_i64, "type": "INBOUND", "message": "yo"}),
        ),
    ] {
        exact(
            "GET",
            route,
            None,
            ResponseTemplate::new(200).set_body_json(page(vec![item], None)),
        )
        .mount(&server)
        .await;
    }
    Mock::given(method("GET"))
        .and(path("/api/v2/contacts"))
        .and(query_param("term", "+31612345678"))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(page(vec![contact], None)))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v2/tickets"))
        // 12:00 UTC is 13:00 in Amsterdam in January.
        .and(query_param("updated_at_gt", "2026-01-10 13:00:00"))
        .and(query_param("status", "OPEN"))
        .and(query_param("channels[]", "3"))
        .and(query_param("sort", "date"))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(page(vec![ticket(7)], None)))
        .expect(1)
        .mount(&server)
        .await;

    let client = client_for(&server.uri());
    let t = client.ticket(7).await.unwrap();
    assert_eq!(t.status, TicketStatus::Open);
    // 13:30 in Amsterdam is 12:30 UTC.
    assert_eq!(
        t.updated_at.unwrap().to_rfc3339(),
        "2026-01-10T12:30:00+00:00"
    );
    let created = client
        .create_ticket(&NewTicket {
            channel_id: 3,
            contact_id: 5,
            subject: Some("Hello".into()),
        })
        .await
        .unwrap();
    assert_eq!(created.id, 8);
    client.assign(7, Assignee::User(42)).await.unwrap();
    client.assign(9, Assignee::Team(4)).await.unwrap();
    client.close(7, None).await.unwrap();
    client.close(9, Some(2)).await.unwrap();
    client.reopen(7).await.unwrap();
    client.mark_spam(7).await.unwrap();
    client.unmark_spam(7).await.unwrap();
    client.attach_label(7, 11).await.unwrap();
    client.detach_label(7, 11).await.unwrap();
    client.set_ticket_custom_field(7, 61, "T-1").await.unwrap();
    let note = client.add_internal_note(7, "hi").await.unwrap();
    assert_eq!(note.id, 3_448_655_702);
    client
        .send_customer_message(9, "to customer")
        .await
        .unwrap();
    assert_eq!(client.create_label("vip", "#5D9CEC").await.unwrap().id, 11);
    let contact = client
        .create_contact(3, "jane@example.com", Some("Jane"))
        .await
        .unwrap();
    assert_eq!(contact.id, 5);
    assert_eq!(client.contact(5).await.unwrap().id, 5);
    assert_eq!(client.rename_contact(5, "Jane Doe").await.unwrap().id, 5);
    client
        .set_contact_custom_field(5, 62, "C-00001")
        .await
        .unwrap();
    assert_eq!(
        client.labels().try_collect::<Vec<_>>().await.unwrap().len(),
        1
    );
    let users = client.users().try_collect::<Vec<_>>().await.unwrap();
    assert!(users[0].chat_status);
    assert_eq!(
        client.teams().try_collect::<Vec<_>>().await.unwrap().len(),
        1
    );
    assert_eq!(
        client
            .channels()
            .try_collect::<Vec<_>>()
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        client
            .custom_fields()
            .try_collect::<Vec<_>>()
            .await
            .unwrap()
            .len(),
        1
    );
    let messages = client.messages(7).try_collect::<Vec<_>>().await.unwrap();
    assert_eq!(messages[0].id, 4_173_600_940);
    let found = client
        .search_contacts("+31612345678")
        .try_collect::<Vec<_>>()
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    let filters = TicketFilters {
        status: Some(TicketStatus::Open),
        channels: vec![3],
        oldest_first: true,
        ..Default::default()
    };
    let changed = client
        .tickets_updated_since(start(), &filters)
        .try_collect::<Vec<_>>()
        .await
        .unwrap();
    assert_eq!(changed.len(), 1);
    server.verify().await;
}

#[tokio::test]
async fn note_path_always_sets_internal_note_true() {
    let server = MockServer::start().await;
    let note = json!({"message": {"id": 1, "type": "NOTE", "message": "x"}});
    Mock::given(method("POST"))
        .and(path("/api/v2/tickets/7/messages"))
        .respond_with(ResponseTemplate::new(200).set_body_json(note))
        .mount(&server)
        .await;
    let client = client_for(&server.uri());
    for text in [
        "plain",
        "",
        "internal_note: false",
        "{\"internal_note\":false}",
    ] {
        client.add_internal_note(7, text).await.unwrap();
    }
    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 4);
    for request in requests {
        let body: Value = serde_json::from_slice(&request.body).unwrap();
        assert_eq!(body["internal_note"], json!(true), "{body}");
    }
}

#[tokio::test]
async fn server_errors_are_retried_until_success() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/v2/tickets/7"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(2)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v2/tickets/7"))
        .respond_with(ResponseTemplate::new(200).set_body_json(ticket(7)))
        .mount(&server)
        .await;
    let client = client_for(&server.uri());
    assert_eq!(client.ticket(7).await.unwrap().id, 7);
    assert_eq!(server.received_requests().await.unwrap().len(), 3);
}

#[tokio::test]
async fn create_is_not_retried_on_server_error() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/v2/tickets/7/messages"))
        .respond_with(ResponseTemplate::new(502))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/v2/tickets"))
        .respond_with(ResponseTemplate::new(500))
        .mount(&server)
        .await;
    let client = client_for(&server.uri());
    let err = client.add_internal_note(7, "once").await.unwrap_err();
    assert!(
        matches!(
            err,
            ApiError::Transient {
                status: Some(502),
                ..
            }
        ),
        "{err}"
    );
    let err = client
        .create_ticket(&NewTicket {
            channel_id: 1,
            contact_id: 2,
            subject: None,
        })
        .await
        .unwrap_err();
    assert!(
        err.is_retryable(),
        "the caller may retry after checking: {err}"
    );
    assert_eq!(server.received_requests().await.unwrap().len(), 2);
}

#[tokio::test]
async fn other_client_errors_are_not_retried() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/v2/tickets/7/labels"))
        .respond_with(ResponseTemplate::new(422).set_body_json(json!({
            "message": "The given data was invalid.",
            "errors": {"label_id": ["The selected label id is invalid."]}})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v2/tickets/8"))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({"message": "Not found"})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v2/tickets/9"))
        .respond_with(
            ResponseTemplate::new(401).set_body_json(json!({"message": "Unauthenticated."})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let client = client_for(&server.uri());
    let err = client.attach_label(7, 999).await.unwrap_err();
    match &err {
        ApiError::Validation { message, .. } => {
            assert!(message.contains("The selected label id is invalid."))
        }
        other => panic!("expected a validation error, got {other}"),
    }
    assert!(matches!(
        client.ticket(8).await.unwrap_err(),
        ApiError::NotFound { .. }
    ));
    let auth = client.ticket(9).await.unwrap_err();
    assert!(matches!(auth, ApiError::Auth { .. }));
    let text = auth.to_string();
    assert!(text.contains("TRENGO_SYNC__TRENGO__TOKEN"), "{text}");
    assert!(!text.contains(TOKEN), "the token must never appear: {text}");
    assert!(!format!("{auth:?}").contains(TOKEN));
    server.verify().await;
}

#[tokio::test]
async fn rate_limit_with_retry_after_waits_and_succeeds() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/v2/tickets/7"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("retry-after", "1")
                .insert_header("x-ratelimit-limit", "120")
                .insert_header("x-ratelimit-remaining", "0"),
        )
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v2/tickets/7"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("x-ratelimit-limit", "120")
                .insert_header("x-ratelimit-remaining", "119")
                .set_body_json(ticket(7)),
        )
        .mount(&server)
        .await;
    let client = client_for(&server.uri());
    let started = std::time::Instant::now();
    assert_eq!(client.ticket(7).await.unwrap().id, 7);
    // A lower bound only: the client must not come back before the server said it may.
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert_eq!(server.received_requests().await.unwrap().len(), 2);
}

#[tokio::test]
async fn rate_limit_without_retry_after_uses_the_reset_time() {
    let server = MockServer::start().await;
    let clock = ManualClock::new(start());
    let reset = (start().timestamp() + 1).to_string();
    Mock::given(method("GET"))
        .and(path("/api/v2/tickets/7"))
        .respond_with(ResponseTemplate::new(429).insert_header("x-ratelimit-reset", reset.as_str()))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v2/tickets/7"))
        .respond_with(ResponseTemplate::new(200).set_body_json(ticket(7)))
        .mount(&server)
        .await;
    let client = client_with_clock(&server.uri(), clock);
    assert_eq!(client.ticket(7).await.unwrap().id, 7);
    assert_eq!(server.received_requests().await.unwrap().len(), 2);
}

#[tokio::test]
async fn malformed_json_is_a_typed_error_with_a_snippet() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/v2/tickets/7"))
        .respond_with(ResponseTemplate::new(200).set_body_string("{\"id\": 7, \"status\": <html>"))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v2/tickets"))
        .respond_with(ResponseTemplate::new(200).set_body_string("<!doctype html><p>Login</p>"))
        .mount(&server)
        .await;
    let client = client_for(&server.uri());
    match client.ticket(7).await.unwrap_err() {
        ApiError::Malformed {
            snippet, status, ..
        } => {
            assert_eq!(status, 200);
            assert!(snippet.contains("<html>"), "{snippet}");
        }
        other => panic!("expected Malformed, got {other}"),
    }
    let first = Box::pin(client.tickets(&TicketFilters::default()))
        .next()
        .await
        .unwrap();
    assert!(matches!(first, Err(ApiError::Malformed { .. })));
}

/// Accepts connections and closes them without answering; counts them.
async fn dropping_server() -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            counter.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                use tokio::io::AsyncReadExt;
                let mut buf = [0u8; 1024];
                let _ = socket.read(&mut buf).await;
                drop(socket);
            });
        }
    });
    (format!("http://{addr}"), accepted)
}

#[tokio::test]
async fn dropped_connections_are_retried_then_reported() {
    let (base, accepted) = dropping_server().await;
    let client = client_for(&base);
    let err = client.ticket(7).await.unwrap_err();
    assert!(
        matches!(err, ApiError::Transient { status: None, .. }),
        "{err}"
    );
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        4,
        "one try plus three retries"
    );
}

#[tokio::test]
async fn dropped_connection_on_a_create_is_not_retried() {
    let (base, accepted) = dropping_server().await;
    let client = client_for(&base);
    let err = client.add_internal_note(7, "once").await.unwrap_err();
    assert!(matches!(err, ApiError::Transient { .. }), "{err}");
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
}

/// A ticket list whose order drifts: after page 1 was served, five new tickets arrive at the
/// front, so every later page repeats the last five tickets of the page before.
struct DriftingTickets {
    total: i64,
    served_first_page: std::sync::Mutex<bool>,
}

impl Respond for DriftingTickets {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let page_no: i64 = request
            .url
            .query_pairs()
            .find(|(k, _)| k == "page")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(1);
        let mut list: Vec<i64> = (1..=self.total).collect();
        {
            let mut served = self.served_first_page.lock().unwrap();
            if *served {
                let mut fresh: Vec<i64> = (10_001..=10_005).collect();
                fresh.extend(list);
                list = fresh;
            }
            *served = true;
        }
        let start = ((page_no - 1) * 25) as usize;
        let items: Vec<Value> = list
            .iter()
            .skip(start)
            .take(25)
            .map(|id| ticket(*id))
            .collect();
        let next = (start + 25 < list.len()).then(|| {
            // The real API answers with its own host; the client must stay on the configured one.
            format!("https://app.trengo.com/api/v2/tickets?page={}", page_no + 1)
        });
        ResponseTemplate::new(200).set_body_json(page(items, next))
    }
}

#[tokio::test]
async fn pagination_with_drifting_order_terminates_and_yields_every_ticket() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/v2/tickets"))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .respond_with(DriftingTickets {
            total: 310,
            served_first_page: std::sync::Mutex::new(false),
        })
        .mount(&server)
        .await;
    let client = client_for(&server.uri());
    let tickets: Vec<_> = client
        .tickets(&TicketFilters::default())
        .try_collect()
        .await
        .unwrap();
    let ids: HashSet<i64> = tickets.iter().map(|t| t.id).collect();
    for id in 1..=310 {
        assert!(ids.contains(&id), "ticket {id} was never yielded");
    }
    assert!(
        tickets.len() > 310,
        "drift shows up as duplicates, which callers dedupe"
    );
}

#[tokio::test]
async fn pagination_stops_on_empty_data_even_with_a_next_link() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/v2/labels"))
        .respond_with(ResponseTemplate::new(200).set_body_json(page(
            vec![],
            Some("https://app.trengo.com/api/v2/labels?page=2".into()),
        )))
        .expect(1)
        .mount(&server)
        .await;
    let client = client_for(&server.uri());
    assert!(
        client
            .labels()
            .try_collect::<Vec<_>>()
            .await
            .unwrap()
            .is_empty()
    );
    server.verify().await;
}

//! The GHL client against exact-request mocks (wiremock): every call's method, path, headers
//! (`Authorization`, `Accept`, `Version`) and body as the official specs define them; rotating
//! OAuth refresh; a budget shared by concurrent tasks; cursor and offset pagination with drift.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use futures::future::BoxFuture;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use trengo_sync::api::{ApiError, Budget, RetryPolicy};
use trengo_sync::clock::{ManualClock, SharedClock};
use trengo_sync::ghl::{
    ContactFields, GhlAuth, GhlClient, GhlClientConfig, NewTask, NoteFields, OAuthTokens,
    TaskSearch, TaskUpdate, TokenVault, VaultError,
};
use url::Url;
use wiremock::matchers::{body_json, body_string_contains, header, method, path, query_param};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const PIT: &str = "pit-test-token";
const LOCATION: &str = "ve9EPM428h8vShlRW1KT";

fn start() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-01-10T12:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

fn config(base: &str, auth: GhlAuth) -> GhlClientConfig {
    let mut config = GhlClientConfig::new(Url::parse(base).unwrap(), LOCATION, auth);
    config.timeout = Duration::from_secs(10);
    config.retry = RetryPolicy {
        max_retries: 3,
        min_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(50),
    };
    config
}

fn roomy_budget() -> Arc<Budget> {
    Arc::new(Budget::new("ghl", 100_000, Duration::from_secs(10)))
}

fn pit_client(base: &str) -> GhlClient {
    let clock: SharedClock = ManualClock::new(start());
    let auth = GhlAuth::PrivateToken(SecretString::from(PIT.to_string()));
    GhlClient::new(config(base, auth), clock, roomy_budget()).unwrap()
}

/// A mock matching the exact request (method, path, auth, accept, version, body), hit once.
fn exact(verb: &str, route: &str, body: Option<Value>, answer: Value) -> Mock {
    let mut mock = Mock::given(method(verb))
        .and(path(route))
        .and(header("authorization", format!("Bearer {PIT}").as_str()))
        .and(header("accept", "application/json"))
        .and(header("version", "2021-07-28"));
    if let Some(body) = body {
        mock = mock
            .and(header("content-type", "application/json"))
            .and(body_json(body));
    }
    mock.respond_with(ResponseTemplate::new(200).set_body_json(answer))
        .expect(1)
}

fn contact(id: &str) -> Value {
    json!({"id": id, "locationId": LOCATION, "email": "ada@example.com", "tags": ["vip"],
           "customFields": [], "dateUpdated": "2025-07-05T09:01:12.000Z"})
}

fn task(id: &str, completed: bool) -> Value {
    json!({"id": id, "title": "Call", "body": "https://app.trengo.com/tickets/1",
           "dueDate": "2025-07-08T02:30:00.000Z", "completed": completed, "contactId": "c1"})
}

#[tokio::test]
async fn every_call_sends_the_exact_request() {
    let server = MockServer::start().await;
    let note = json!({"note": {"id": "n1", "body": "hello", "contactId": "c1",
                      "dateAdded": "2025-04-04T16:00:06.997Z"}});
    let due = DateTime::parse_from_rfc3339("2025-07-05T09:00:00Z")
        .unwrap()
        .with_timezone(&Utc);
    for mock in [
        exact(
            "GET",
            "/contacts/c1",
            None,
            json!({"contact": contact("c1")}),
        ),
        exact(
            "POST",
            "/contacts/",
            Some(
                json!({"email": "ada@example.com", "phone": "+31612345678", "tags": ["trengo"],
                        "locationId": LOCATION}),
            ),
            json!({"contact": contact("c2")}),
        ),
        exact(
            "POST",
            "/contacts/upsert",
            Some(json!({"email": "ada@example.com", "locationId": LOCATION})),
            json!({"new": false, "contact": contact("c1"), "traceId": "t"}),
        ),
        exact(
            "PUT",
            "/contacts/c1",
            Some(json!({"firstName": "Ada"})),
            json!({"succeded": true, "contact": contact("c1")}),
        ),
        exact(
            "GET",
            "/contacts/c1/tasks",
            None,
            json!({"tasks": [task("t1", false)]}),
        ),
        exact(
            "GET",
            "/contacts/c1/tasks/t1",
            None,
            json!({"task": task("t1", false)}),
        ),
        exact(
            "POST",
            "/contacts/c1/tasks",
            Some(
                json!({"title": "Call", "body": "ticket", "dueDate": "2025-07-05T09:00:00Z",
                        "completed": false}),
            ),
            json!({"task": task("t1", false), "traceId": "x"}),
        ),
        exact(
            "PUT",
            "/contacts/c1/tasks/t1",
            Some(json!({"title": "Call again", "dueDate": "2025-07-05T09:00:00Z"})),
            json!({"task": task("t1", false)}),
        ),
        exact(
            "PUT",
            "/contacts/c1/tasks/t1/completed",
            Some(json!({"completed": true})),
            json!({"task": task("t1", true)}),
        ),
        exact(
            "GET",
            "/contacts/c1/notes",
            None,
            json!({"notes": [note["note"].clone()]}),
        ),
        exact(
            "POST",
            "/contacts/c1/notes",
            Some(json!({"body": "hello"})),
            note.clone(),
        ),
        exact(
            "PUT",
            "/contacts/c1/notes/n1",
            Some(json!({"body": "edited"})),
            note.clone(),
        ),
        exact(
            "POST",
            "/contacts/c1/tags",
            Some(json!({"tags": ["trengo:billing"]})),
            json!({"tags": ["vip", "trengo:billing"]}),
        ),
        exact(
            "DELETE",
            "/contacts/c1/tags",
            Some(json!({"tags": ["trengo:billing"]})),
            json!({"tags": ["vip"]}),
        ),
        exact(
            "POST",
            &format!("/locations/{LOCATION}/tasks/search"),
            Some(json!({"completed": false, "limit": 100, "skip": 0})),
            json!({"tasks": []}),
        ),
        exact(
            "POST",
            "/contacts/search",
            Some(json!({
                "locationId": LOCATION, "pageLimit": 100,
                "filters": [{"field": "dateUpdated", "operator": "range",
                             "value": {"gte": "2026-01-10T12:00:00.000Z", "lte": "2026-01-10T13:00:00.000Z"}}],
                "sort": [{"field": "dateUpdated", "direction": "asc"}]})),
            json!({"contacts": [], "total": 0}),
        ),
    ] {
        mock.mount(&server).await;
    }
    Mock::given(method("GET"))
        .and(path("/contacts/search/duplicate"))
        .and(query_param("locationId", LOCATION))
        .and(query_param("email", "ada+x@example.com"))
        .and(query_param("number", "+31612345678"))
        .and(header("version", "2021-07-28"))
        .and(header("authorization", format!("Bearer {PIT}").as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"contact": contact("c1")})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/locations/{LOCATION}/customFields")))
        .and(query_param("model", "contact"))
        .and(header("version", "2021-07-28"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"customFields": [
            {"id": "f1", "name": "Ticket", "fieldKey": "contact.ticket", "dataType": "TEXT", "model": "contact"}]})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/users/"))
        .and(query_param("locationId", LOCATION))
        .and(header("version", "2021-07-28"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"users": [
            {"id": "u1", "name": "Agent", "email": "agent@example.com"}]})))
        .expect(1)
        .mount(&server)
        .await;

    let client = pit_client(&server.uri());
    assert_eq!(client.contact("c1").await.unwrap().tags, vec!["vip"]);
    let created = client
        .create_contact(&ContactFields {
            email: Some("ada@example.com".into()),
            phone: Some("+31612345678".into()),
            tags: Some(vec!["trengo".into()]),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(created.id, "c2");
    let upserted = client
        .upsert_contact(&ContactFields {
            email: Some("ada@example.com".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(!upserted.created);
    client
        .update_contact(
            "c1",
            &ContactFields {
                first_name: Some("Ada".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let dup = client
        .find_duplicate(Some("ada+x@example.com"), Some("+31612345678"))
        .await
        .unwrap();
    assert_eq!(dup.unwrap().id, "c1");
    assert_eq!(client.tasks("c1").await.unwrap().len(), 1);
    assert_eq!(client.task("c1", "t1").await.unwrap().id, "t1");
    client
        .create_task(
            "c1",
            &NewTask {
                title: "Call".into(),
                body: Some("ticket".into()),
                due_date: due,
                completed: false,
                assigned_to: None,
            },
        )
        .await
        .unwrap();
    client
        .update_task(
            "c1",
            "t1",
            &TaskUpdate {
                title: Some("Call again".into()),
                due_date: Some(due),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(
        client
            .set_task_completed("c1", "t1", true)
            .await
            .unwrap()
            .completed
    );
    assert_eq!(client.notes("c1").await.unwrap().len(), 1);
    client
        .create_note(
            "c1",
            &NoteFields {
                body: "hello".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    client
        .update_note(
            "c1",
            "n1",
            &NoteFields {
                body: "edited".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let tags = client
        .add_tags("c1", &["trengo:billing".into()])
        .await
        .unwrap();
    assert_eq!(tags.len(), 2);
    client
        .remove_tags("c1", &["trengo:billing".into()])
        .await
        .unwrap();
    let open = client
        .search_tasks(&TaskSearch {
            completed: Some(false),
            ..Default::default()
        })
        .try_collect::<Vec<_>>()
        .await
        .unwrap();
    assert!(open.is_empty());
    let changed = client
        .contacts_updated_between(start(), Some(start() + chrono::Duration::hours(1)))
        .try_collect::<Vec<_>>()
        .await
        .unwrap();
    assert!(changed.is_empty());
    assert_eq!(client.custom_fields().await.unwrap()[0].id, "f1");
    assert_eq!(client.users().await.unwrap()[0].id, "u1");
    server.verify().await;
}

#[tokio::test]
async fn validation_error_keeps_ghl_message_array_and_trace_id() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/contacts/c1/tasks"))
        .respond_with(ResponseTemplate::new(422).set_body_json(json!({
            "statusCode": 422, "message": ["title should not be empty", "dueDate must be a date"],
            "error": "Unprocessable Entity", "traceId": "trace-123"})))
        .expect(1)
        .mount(&server)
        .await;
    let client = pit_client(&server.uri());
    let err = client
        .create_task(
            "c1",
            &NewTask {
                title: String::new(),
                body: None,
                due_date: start(),
                completed: false,
                assigned_to: None,
            },
        )
        .await
        .unwrap_err();
    match err {
        ApiError::Validation {
            message, trace_id, ..
        } => {
            assert!(message.contains("title should not be empty; dueDate must be a date"));
            assert_eq!(trace_id.as_deref(), Some("trace-123"));
        }
        other => panic!("expected Validation, got {other}"),
    }
    server.verify().await;
}

#[tokio::test]
async fn rate_limit_without_retry_after_waits_out_the_window() {
    let server = MockServer::start().await;
    let headers = |remaining: &str| {
        ResponseTemplate::new(200)
            .insert_header("x-ratelimit-max", "100")
            .insert_header("x-ratelimit-remaining", remaining)
            .insert_header("x-ratelimit-interval-milliseconds", "400")
            .insert_header("x-ratelimit-daily-remaining", "199000")
    };
    Mock::given(method("GET"))
        .and(path("/contacts/c1"))
        .respond_with(headers("99").set_body_json(json!({"contact": contact("c1")})))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    // GHL documents no Retry-After (ghl-api.md §2).
    Mock::given(method("GET"))
        .and(path("/contacts/c1"))
        .respond_with(ResponseTemplate::new(429).set_body_json(json!({"statusCode": 429})))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/contacts/c1"))
        .respond_with(headers("99").set_body_json(json!({"contact": contact("c1")})))
        .mount(&server)
        .await;
    let client = pit_client(&server.uri());
    client.contact("c1").await.unwrap();
    assert_eq!(
        client.budget().snapshot().window,
        Duration::from_millis(400)
    );
    assert_eq!(client.budget().snapshot().daily_remaining, Some(199_000));
    assert_eq!(client.contact("c1").await.unwrap().id, "c1");
    assert_eq!(server.received_requests().await.unwrap().len(), 3);
}

#[tokio::test]
async fn create_is_not_retried_on_server_error() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/contacts/c1/notes"))
        .respond_with(ResponseTemplate::new(500))
        .mount(&server)
        .await;
    let client = pit_client(&server.uri());
    let err = client
        .create_note(
            "c1",
            &NoteFields {
                body: "once".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        ApiError::Transient {
            status: Some(500),
            ..
        }
    ));
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

/// A fixed-window limiter like GHL's: `limit` requests per `window`, the window starting at
/// the first request after the last one ended; answers 429 over the limit.
struct Limited {
    limit: u32,
    window: Duration,
    state: Mutex<(Option<Instant>, u32)>,
    rejected: Arc<AtomicUsize>,
}

impl Respond for Limited {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        let mut state = self.state.lock().unwrap();
        let now = Instant::now();
        if state
            .0
            .is_none_or(|start| now.duration_since(start) >= self.window)
        {
            *state = (Some(now), 0);
        }
        state.1 += 1;
        let remaining = self.limit.saturating_sub(state.1);
        if state.1 > self.limit {
            self.rejected.fetch_add(1, Ordering::SeqCst);
            return ResponseTemplate::new(429);
        }
        ResponseTemplate::new(200)
            .insert_header("x-ratelimit-max", self.limit.to_string().as_str())
            .insert_header("x-ratelimit-remaining", remaining.to_string().as_str())
            .insert_header(
                "x-ratelimit-interval-milliseconds",
                self.window.as_millis().to_string().as_str(),
            )
            .set_body_json(json!({"contact": contact("c1")}))
    }
}

#[tokio::test]
async fn budget_shared_by_concurrent_tasks_stays_under_the_limit() {
    let server = MockServer::start().await;
    let rejected = Arc::new(AtomicUsize::new(0));
    Mock::given(method("GET"))
        .and(path("/contacts/c1"))
        .respond_with(Limited {
            limit: 20,
            window: Duration::from_millis(500),
            state: Mutex::new((None, 0)),
            rejected: rejected.clone(),
        })
        .mount(&server)
        .await;
    let clock: SharedClock = ManualClock::new(start());
    let budget = Arc::new(Budget::ghl_default());
    let auth = GhlAuth::PrivateToken(SecretString::from(PIT.to_string()));
    let client = GhlClient::new(config(&server.uri(), auth), clock, budget.clone()).unwrap();
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..15 {
                client.contact("c1").await.unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(
        rejected.load(Ordering::SeqCst),
        0,
        "the server never had to say 429"
    );
    assert_eq!(server.received_requests().await.unwrap().len(), 60);
    assert_eq!(budget.snapshot().limit, 20);
}

/// Contacts sorted by (dateUpdated, id) behind a `searchAfter` cursor; after the first page,
/// ten contacts of that page are edited and move to the end.
struct DriftingContacts {
    contacts: Mutex<Vec<(i64, String)>>,
    pages: AtomicUsize,
}

impl Respond for DriftingContacts {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let body: Value = serde_json::from_slice(&request.body).unwrap();
        assert_eq!(body["locationId"], json!(LOCATION));
        assert_eq!(body["pageLimit"], json!(100));
        assert_eq!(body["sort"][0]["field"], json!("dateUpdated"));
        let mut contacts = self.contacts.lock().unwrap();
        if self.pages.fetch_add(1, Ordering::SeqCst) == 1 {
            for (ts, _) in contacts.iter_mut().take(10) {
                *ts += 1_000_000;
            }
            contacts.sort();
        }
        let after = body
            .get("searchAfter")
            .map(|a| (a[0].as_i64().unwrap(), a[1].as_str().unwrap().to_string()));
        let page: Vec<Value> = contacts
            .iter()
            .filter(|c| after.as_ref().is_none_or(|a| *c > a))
            .take(100)
            .map(|(ts, id)| {
                json!({"id": id, "locationId": LOCATION, "tags": [],
                       "dateUpdated": DateTime::from_timestamp_millis(*ts).unwrap().to_rfc3339(),
                       "searchAfter": [ts, id]})
            })
            .collect();
        ResponseTemplate::new(200).set_body_json(json!({"contacts": page, "total": contacts.len()}))
    }
}

#[tokio::test]
async fn contact_search_pages_with_search_after_through_drift() {
    let server = MockServer::start().await;
    let base = start().timestamp_millis();
    let contacts = (0..450)
        .map(|i| (base + i * 1000, format!("c{i:04}")))
        .collect();
    Mock::given(method("POST"))
        .and(path("/contacts/search"))
        .and(header("version", "2021-07-28"))
        .respond_with(DriftingContacts {
            contacts: Mutex::new(contacts),
            pages: AtomicUsize::new(0),
        })
        .mount(&server)
        .await;
    let client = pit_client(&server.uri());
    let seen: Vec<_> = client
        .contacts_updated_between(start(), None)
        .try_collect()
        .await
        .unwrap();
    let ids: HashSet<_> = seen.iter().map(|c| c.id.clone()).collect();
    assert_eq!(ids.len(), 450, "every contact at least once");
}

/// Offset-paged tasks; after the first page, three tasks of that page are completed and drop
/// out of the open-task search, shifting every later task back.
struct DriftingTasks {
    open: Mutex<Vec<String>>,
    calls: AtomicUsize,
}

impl Respond for DriftingTasks {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let body: Value = serde_json::from_slice(&request.body).unwrap();
        let skip = body["skip"].as_u64().unwrap() as usize;
        let limit = body["limit"].as_u64().unwrap() as usize;
        let mut open = self.open.lock().unwrap();
        if self.calls.fetch_add(1, Ordering::SeqCst) == 1 {
            open.drain(0..3);
        }
        let page: Vec<Value> = open
            .iter()
            .skip(skip)
            .take(limit)
            .map(|id| task(id, false))
            .collect();
        ResponseTemplate::new(200).set_body_json(json!({"tasks": page}))
    }
}

#[tokio::test]
async fn task_search_pages_with_skip_and_limit_through_drift() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(format!("/locations/{LOCATION}/tasks/search")))
        .and(body_string_contains("\"completed\":false"))
        .respond_with(DriftingTasks {
            open: Mutex::new((0..250).map(|i| format!("t{i:04}")).collect()),
            calls: AtomicUsize::new(0),
        })
        .mount(&server)
        .await;
    let mut config = config(
        &server.uri(),
        GhlAuth::PrivateToken(SecretString::from(PIT.to_string())),
    );
    config.task_page_limit = 50;
    let clock: SharedClock = ManualClock::new(start());
    let client = GhlClient::new(config, clock, roomy_budget()).unwrap();
    let tasks: Vec<_> = client
        .search_tasks(&TaskSearch {
            completed: Some(false),
            ..Default::default()
        })
        .try_collect()
        .await
        .unwrap();
    let ids: HashSet<_> = tasks.iter().map(|t| t.id.clone()).collect();
    assert_eq!(ids.len(), 250, "every task at least once");
    assert_eq!(tasks.len(), 250, "no task twice");
}

// ----- OAuth -----

/// A vault that records what happened, in order, in a log shared with the mock server.
#[derive(Debug)]
struct RecordingVault {
    tokens: Mutex<Option<OAuthTokens>>,
    log: Arc<Mutex<Vec<String>>>,
}

impl TokenVault for RecordingVault {
    fn load(&self) -> BoxFuture<'_, Result<Option<OAuthTokens>, VaultError>> {
        Box::pin(async move { Ok(self.tokens.lock().unwrap().clone()) })
    }

    fn store(&self, tokens: OAuthTokens) -> BoxFuture<'_, Result<(), VaultError>> {
        Box::pin(async move {
            self.log.lock().unwrap().push(format!(
                "stored refresh token {}",
                tokens.refresh_token.expose_secret()
            ));
            *self.tokens.lock().unwrap() = Some(tokens);
            Ok(())
        })
    }
}

struct LoggedAnswer {
    log: Arc<Mutex<Vec<String>>>,
    entry: &'static str,
    answer: ResponseTemplate,
}

impl Respond for LoggedAnswer {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        self.log.lock().unwrap().push(self.entry.to_string());
        self.answer.clone()
    }
}

fn oauth_client(
    base: &str,
    clock: SharedClock,
    expires_at: DateTime<Utc>,
) -> (GhlClient, Arc<RecordingVault>, Arc<Mutex<Vec<String>>>) {
    let log = Arc::new(Mutex::new(Vec::new()));
    let vault = Arc::new(RecordingVault {
        tokens: Mutex::new(Some(OAuthTokens {
            access_token: SecretString::from("old-access".to_string()),
            refresh_token: SecretString::from("refresh-1".to_string()),
            expires_at,
        })),
        log: log.clone(),
    });
    let auth = GhlAuth::OAuth {
        client_id: "client-1".into(),
        client_secret: SecretString::from("client-secret-1".to_string()),
        vault: vault.clone(),
    };
    let client = GhlClient::new(config(base, auth), clock, roomy_budget()).unwrap();
    (client, vault, log)
}

async fn mount_token_endpoint(server: &MockServer) {
    Mock::given(method("POST"))
        .and(path("/oauth/token"))
        .and(header("content-type", "application/x-www-form-urlencoded"))
        .and(body_string_contains("grant_type=refresh_token"))
        .and(body_string_contains("refresh_token=refresh-1"))
        .and(body_string_contains("client_id=client-1"))
        .and(body_string_contains("client_secret=client-secret-1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "access_token": "new-access", "token_type": "Bearer", "expires_in": 86399,
            "refresh_token": "refresh-2", "scope": "contacts.readonly", "userType": "Location",
            "locationId": LOCATION})))
        .expect(1)
        .mount(server)
        .await;
}

#[tokio::test]
async fn unauthorized_causes_exactly_one_refresh_stored_before_use() {
    let server = MockServer::start().await;
    let clock: SharedClock = ManualClock::new(start());
    let (client, vault, log) =
        oauth_client(&server.uri(), clock, start() + chrono::Duration::hours(5));
    mount_token_endpoint(&server).await;
    Mock::given(method("GET"))
        .and(path("/contacts/c1"))
        .and(header("authorization", "Bearer old-access"))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({
            "statusCode": 401, "message": "Invalid token: access token is invalid", "error": "Unauthorized"})))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/contacts/c1"))
        .and(header("authorization", "Bearer new-access"))
        .and(header("version", "2021-07-28"))
        .respond_with(LoggedAnswer {
            log: log.clone(),
            entry: "used new access token",
            answer: ResponseTemplate::new(200).set_body_json(json!({"contact": contact("c1")})),
        })
        .mount(&server)
        .await;
    // Several callers hit the 401 at once: they must share one refresh.
    let mut calls = Vec::new();
    for _ in 0..5 {
        let client = client.clone();
        calls.push(tokio::spawn(async move { client.contact("c1").await }));
    }
    for call in calls {
        assert_eq!(call.await.unwrap().unwrap().id, "c1");
    }
    let log = log.lock().unwrap().clone();
    assert_eq!(log[0], "stored refresh token refresh-2", "{log:?}");
    assert!(
        log[1..].iter().all(|e| e == "used new access token"),
        "{log:?}"
    );
    let stored = vault.tokens.lock().unwrap().clone().unwrap();
    assert_eq!(stored.refresh_token.expose_secret(), "refresh-2");
    server.verify().await;
}

#[tokio::test]
async fn second_unauthorized_is_an_auth_error() {
    let server = MockServer::start().await;
    let clock: SharedClock = ManualClock::new(start());
    let (client, _vault, _log) =
        oauth_client(&server.uri(), clock, start() + chrono::Duration::hours(5));
    mount_token_endpoint(&server).await;
    Mock::given(method("GET"))
        .and(path("/contacts/c1"))
        .respond_with(
            ResponseTemplate::new(401).set_body_json(json!({"statusCode": 401,
            "message": "Invalid token: access token is invalid"})),
        )
        .expect(2)
        .mount(&server)
        .await;
    let err = client.contact("c1").await.unwrap_err();
    assert!(matches!(err, ApiError::Auth { status: 401, .. }), "{err}");
    let text = format!("{err} {err:?}");
    for secret in [
        "old-access",
        "new-access",
        "refresh-1",
        "refresh-2",
        "client-secret-1",
    ] {
        assert!(!text.contains(secret), "secret {secret} leaked: {text}");
    }
    server.verify().await;
}

#[tokio::test]
async fn access_token_is_refreshed_shortly_before_expiry() {
    let server = MockServer::start().await;
    let clock = ManualClock::new(start());
    let shared: SharedClock = clock.clone();
    let (client, _vault, _log) = oauth_client(
        &server.uri(),
        shared,
        start() + chrono::Duration::seconds(30),
    );
    mount_token_endpoint(&server).await;
    Mock::given(method("GET"))
        .and(path("/contacts/c1"))
        .and(header("authorization", "Bearer new-access"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"contact": contact("c1")})))
        .expect(2)
        .mount(&server)
        .await;
    client.contact("c1").await.unwrap();
    // Still fresh a while later: no second refresh (the token endpoint expects one call).
    clock.advance(chrono::Duration::hours(1));
    client.contact("c1").await.unwrap();
    server.verify().await;
}

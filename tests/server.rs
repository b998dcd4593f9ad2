//! The daemon's HTTP surface over real HTTP on 127.0.0.1: health, readiness, status, metrics,
//! webhooks, and `trengo-sync status` with and without a running daemon.

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use chrono::{DateTime, Utc};
use ed25519_dalek::{Signer, SigningKey};
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use trengo_sync::api::{Api, Budget};
use trengo_sync::clock::{Clock, ManualClock, SharedClock};
use trengo_sync::config::{Config, Secret};
use trengo_sync::daemon::hints::HintQueue;
use trengo_sync::daemon::jobs::{JobBoard, JobKind};
use trengo_sync::daemon::server::{ServerState, WebhookSettings, serve};
use trengo_sync::daemon::status::{
    Backfill, Hint, Readiness, StatusReport, render_table, status_command,
};
use trengo_sync::daemon::webhooks::{Dedupe, sign_trengo};
use trengo_sync::store::conflicts::{self, Held};
use trengo_sync::store::links::{self, LinkState, NewLink, Origin};
use trengo_sync::store::retries::{self, RetryPolicy};
use trengo_sync::store::runs::{self, RunOutcome};
use trengo_sync::store::{Store, StoreHandle, cursors};

/// A Trengo signing secret that must never come back out of the daemon.
const TRENGO_SECRET: &str = "whsec-TEST-TOKEN-7c1e9a";
const LOCATION: &str = "loc-ours";
const EVENT: &str = "TICKET_LABEL_ADDED";

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn t0() -> DateTime<Utc> {
    at("2027-01-15T08:00:00Z")
}

fn jobs() -> Vec<(JobKind, trengo_sync::config::CronExpr)> {
    vec![
        (JobKind::TrengoPoll, "*/30 * * * * *".parse().unwrap()),
        (JobKind::GhlPoll, "15/30 * * * * *".parse().unwrap()),
        (JobKind::Sweep, "0 */5 * * * *".parse().unwrap()),
    ]
}

struct Daemon {
    base: String,
    addr: std::net::SocketAddr,
    http: reqwest::Client,
    clock: Arc<ManualClock>,
    board: Arc<JobBoard>,
    readiness: Arc<Readiness>,
    backfill: Arc<Backfill>,
    store: StoreHandle,
    hints: Arc<HintQueue>,
    signing: SigningKey,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<tokio::net::TcpListener>>>,
}

impl Daemon {
    /// A served daemon whose board started at `board_start` and whose clock reads `t0()`.
    async fn start(webhooks_enabled: bool, board_start: DateTime<Utc>) -> Self {
        Self::start_with(webhooks_enabled, board_start, None, HintQueue::default()).await
    }

    /// [`Daemon::start`] with `http.status_token` set to `token`.
    async fn start_with_token(
        webhooks_enabled: bool,
        board_start: DateTime<Utc>,
        token: Option<&str>,
    ) -> Self {
        Self::start_with(webhooks_enabled, board_start, token, HintQueue::default()).await
    }

    /// [`Daemon::start`] with the given hint queue.
    async fn start_with_queue(
        webhooks_enabled: bool,
        board_start: DateTime<Utc>,
        queue: HintQueue,
    ) -> Self {
        Self::start_with(webhooks_enabled, board_start, None, queue).await
    }

    /// [`Daemon::start`] with a status token and a hint queue.
    async fn start_with(
        webhooks_enabled: bool,
        board_start: DateTime<Utc>,
        token: Option<&str>,
        queue: HintQueue,
    ) -> Self {
        let clock = ManualClock::new(t0());
        let board = Arc::new(JobBoard::new(&jobs(), board_start));
        let readiness = Arc::new(Readiness::new());
        let backfill = Arc::new(Backfill::new());
        let store = StoreHandle::new(Store::open_in_memory().unwrap());
        let signing = SigningKey::from_bytes(&[42u8; 32]);
        let hints = Arc::new(queue);
        let state = Arc::new(ServerState {
            board: board.clone(),
            store: store.clone(),
            clock: clock.clone() as SharedClock,
            budgets: vec![
                (Api::Trengo, Arc::new(Budget::trengo_default())),
                (Api::Ghl, Arc::new(Budget::ghl_default())),
            ],
            readiness: readiness.clone(),
            backfill: backfill.clone(),
            hints: hints.clone(),
            webhooks: WebhookSettings {
                enabled: webhooks_enabled,
                trengo_secrets: BTreeMap::from([(EVENT.to_string(), Secret::new(TRENGO_SECRET))]),
                ghl_key: Some(signing.verifying_key()),
                ghl_location_id: Some(LOCATION.into()),
                max_age: Duration::from_secs(300),
            },
            dedupe: Dedupe::new(100),
            stuck_after: Duration::from_secs(6 * 3600),
            status_token: token.map(Secret::new),
            trengo_poll: None,
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(serve(listener, state, async move {
            let _ = stopped.await;
        }));
        Self {
            base: format!("http://{addr}"),
            addr,
            http: reqwest::Client::builder().no_proxy().build().unwrap(),
            clock,
            board,
            readiness,
            backfill,
            store,
            hints,
            signing,
            stop: Some(stop),
            task: Some(task),
        }
    }

    async fn get(&self, path: &str) -> (u16, String) {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    }

    async fn post_trengo(
        &self,
        event: &str,
        body: &str,
        signature: Option<String>,
    ) -> (u16, String) {
        let mut request = self
            .http
            .post(format!("{}/webhooks/trengo/{event}", self.base))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body.to_string());
        if let Some(signature) = signature {
            request = request.header("Trengo-Signature", signature);
        }
        let response = request.send().await.unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    }

    async fn post_ghl(&self, body: &Value) -> (u16, String) {
        let raw = serde_json::to_vec(body).unwrap();
        let signature =
            base64::engine::general_purpose::STANDARD.encode(self.signing.sign(&raw).to_bytes());
        let response = self
            .http
            .post(format!("{}/webhooks/ghl", self.base))
            .header("Content-Type", "application/json")
            .header("x-ghl-signature", signature)
            .body(raw)
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    }

    fn hints_sent(&mut self) -> Vec<Hint> {
        self.hints.take(usize::MAX)
    }

    /// Stops the server and checks it shut down cleanly.
    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
    }

    /// Fills the store with a bit of everything `/status` shows.
    async fn seed(&self) {
        let now = self.clock.now();
        self.store
            .call(move |s| {
                let conn = s.conn();
                cursors::put(conn, "trengo.tickets", "2027-01-15T07:59:00Z", now)?;
                cursors::put(conn, "ghl.contacts", "1768464000000", now)?;
                let link = |ticket_id: i64, task: &str| NewLink {
                    ticket_id,
                    task_id: task.into(),
                    ghl_contact_id: "c-1".into(),
                    trengo_contact_id: None,
                    origin: Origin::Trengo,
                };
                let kept = links::insert(conn, &link(11, "task-11"), now)?;
                let left = links::insert(conn, &link(12, "task-12"), now)?;
                links::set_state(conn, left.id, LinkState::OutOfScope, now)?;
                conflicts::hold(
                    conn,
                    &Held {
                        link_id: kept.id,
                        field: "status".into(),
                        base: Some(json!("OPEN")),
                        trengo_value: json!("CLOSED"),
                        ghl_value: json!("OPEN"),
                        detected_at: now,
                    },
                )?;
                let policy = RetryPolicy {
                    base: Duration::from_secs(30),
                    max: Duration::from_secs(3600),
                    attempts: 12,
                };
                let long_ago = now - chrono::Duration::hours(7);
                retries::fail(
                    conn,
                    "ticket:13",
                    "Trengo answered HTTP 500",
                    long_ago,
                    &policy,
                )?;
                retries::fail(conn, "task:t-14", "GHL answered HTTP 502", now, &policy)?;
                runs::started(conn, "trengo_poll", now - chrono::Duration::seconds(2))?;
                runs::finished(
                    conn,
                    "trengo_poll",
                    now,
                    RunOutcome::Succeeded,
                    Duration::from_secs(2),
                    &json!({"read": 4, "written": 1}),
                )?;
                Ok(())
            })
            .await
            .unwrap();
        self.board
            .tick(JobKind::TrengoPoll, now - chrono::Duration::seconds(2));
        self.board
            .started(JobKind::TrengoPoll, now - chrono::Duration::seconds(2));
        self.board.finished(JobKind::TrengoPoll, now, Ok(()));
        self.backfill
            .start("trengo.tickets", 100, now - chrono::Duration::seconds(100));
        self.backfill.advance(50, now);
        self.readiness.api_ok(Api::Trengo, now);
        self.readiness.api_ok(Api::Ghl, now);
    }
}

fn ghl_event(webhook_id: &str, location: &str) -> Value {
    json!({
        "type": "TaskComplete",
        "locationId": location,
        "id": "task-77",
        "contactId": "contact-77",
        "title": "Call back",
        "dateAdded": "2027-01-15T07:00:00.000Z",
        "timestamp": "2027-01-15T07:59:30Z",
        "webhookId": webhook_id
    })
}

#[tokio::test]
async fn healthz_is_ok_then_503_when_a_job_stops_ticking() {
    let daemon = Daemon::start(false, t0()).await;
    let (status, body) = daemon.get("/healthz").await;
    assert_eq!((status, body.trim()), (200, "ok"));

    // Three 30-second periods without a firing of the Trengo poll.
    daemon.clock.advance(chrono::Duration::seconds(91));
    let (status, body) = daemon.get("/healthz").await;
    assert_eq!(status, 503);
    assert!(body.contains("trengo_poll"), "{body}");
    daemon.stop().await;
}

#[tokio::test]
async fn healthz_fails_for_a_board_that_started_long_ago_and_never_ticked() {
    let daemon = Daemon::start(false, t0() - chrono::Duration::minutes(20)).await;
    let (status, body) = daemon.get("/healthz").await;
    assert_eq!(status, 503);
    assert!(body.contains("stopped ticking"), "{body}");
    daemon.stop().await;
}

#[tokio::test]
async fn readyz_waits_for_both_apis_and_refuses_while_a_brake_is_engaged() {
    let daemon = Daemon::start(false, t0()).await;
    let (status, body) = daemon.get("/readyz").await;
    assert_eq!(status, 503);
    assert!(body.contains("Trengo has not answered yet"), "{body}");

    daemon.readiness.api_ok(Api::Trengo, t0());
    let (status, body) = daemon.get("/readyz").await;
    assert_eq!(status, 503);
    assert!(body.contains("GHL has not answered yet"), "{body}");
    assert!(!body.contains("Trengo"), "{body}");

    daemon.readiness.api_ok(Api::Ghl, t0());
    assert_eq!(daemon.get("/readyz").await.0, 200);

    daemon
        .readiness
        .brake(Some("a pass would close 12 of 20 links".into()));
    let (status, body) = daemon.get("/readyz").await;
    assert_eq!(status, 503);
    assert!(body.contains("12 of 20 links"), "{body}");
    daemon.stop().await;
}

/// Issue #13 item 7: `/status` serves a page of each list with the totals (2,000 failing
/// items once made a 530 KB answer), and conflicts without their values (an assignee's are
/// e-mail addresses).
#[tokio::test]
async fn status_pages_its_lists_with_totals_and_serves_no_conflict_values() {
    let daemon = Daemon::start(false, t0()).await;
    daemon.seed().await;
    let now = daemon.clock.now();
    daemon
        .store
        .call(move |s| {
            let conn = s.conn();
            let link = links::insert(
                conn,
                &NewLink {
                    ticket_id: 21,
                    task_id: "task-21".into(),
                    ghl_contact_id: "c-2".into(),
                    trengo_contact_id: None,
                    origin: Origin::Trengo,
                },
                now,
            )?;
            conflicts::hold(
                conn,
                &Held {
                    link_id: link.id,
                    field: "assignee".into(),
                    base: Some(json!("agent.base@example.com")),
                    trengo_value: json!("agent.trengo@example.com"),
                    ghl_value: json!("agent.ghl@example.com"),
                    detected_at: now,
                },
            )?;
            let policy = RetryPolicy {
                base: Duration::from_secs(30),
                max: Duration::from_secs(3600),
                attempts: 12,
            };
            for n in 0..2000 {
                retries::fail(
                    conn,
                    &format!("contact:c-{n:04}"),
                    "GHL GET /contacts/x: HTTP 502 transient failure",
                    now,
                    &policy,
                )?;
            }
            Ok(())
        })
        .await
        .unwrap();

    let (code, body) = daemon.get("/status").await;
    assert_eq!(code, 200, "{body}");
    assert!(body.len() < 64 * 1024, "/status is {} bytes", body.len());
    assert!(
        !body.contains("@example.com"),
        "conflict values served: {body}"
    );
    let status: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(status["retries_total"], 2002);
    assert_eq!(status["retries"].as_array().unwrap().len(), 50);
    assert_eq!(status["conflicts_total"], 2);
    assert_eq!(status["conflicts"][1]["field"], "assignee");

    let (_, body) = daemon.get("/status?offset=1990&limit=500").await;
    let status: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(status["retries"].as_array().unwrap().len(), 12);
    assert_eq!(status["retries"][11]["item"], "ticket:13");
    let (_, body) = daemon.get("/status?limit=100000").await;
    let status: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        status["retries"].as_array().unwrap().len(),
        500,
        "the page is capped"
    );

    let report: StatusReport = serde_json::from_str(&daemon.get("/status").await.1).unwrap();
    let table = render_table(&report);
    assert!(table.contains("Retry queue: 2002, showing 1–50"), "{table}");
    assert!(!table.contains("@example.com"), "{table}");
    daemon.stop().await;
}

/// Issue #13 item 7: with `http.status_token` set, `/status` and `/metrics` need it as a
/// bearer token; `/healthz`, `/readyz` and the webhooks stay open.
#[tokio::test]
async fn status_and_metrics_need_the_status_token_when_one_is_set() {
    const TOKEN: &str = "st-TEST-4f2a9c";
    let daemon = Daemon::start_with_token(true, t0(), Some(TOKEN)).await;
    daemon.seed().await;
    for path in ["/status", "/metrics"] {
        let (code, body) = daemon.get(path).await;
        assert_eq!(code, 401, "{path}: {body}");
        assert!(body.contains("http.status_token"), "{body}");
        let wrong = daemon
            .http
            .get(format!("{}{path}", daemon.base))
            .bearer_auth("st-wrong")
            .send()
            .await
            .unwrap();
        assert_eq!(wrong.status().as_u16(), 401, "{path}");
        let right = daemon
            .http
            .get(format!("{}{path}", daemon.base))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(right.status().as_u16(), 200, "{path}");
        assert!(!right.text().await.unwrap().contains(TOKEN));
    }
    assert_eq!(daemon.get("/healthz").await.0, 200);
    assert_ne!(daemon.get("/readyz").await.0, 401);
    let body = "ticket_id=5";
    let signature = sign_trengo(TRENGO_SECRET, t0().timestamp(), body.as_bytes());
    assert_eq!(
        daemon.post_trengo(EVENT, body, Some(signature)).await.0,
        202
    );
    daemon.stop().await;
}

#[tokio::test]
async fn status_json_shows_cursors_jobs_links_retries_budgets_and_backfill() {
    let daemon = Daemon::start(false, t0()).await;
    daemon.seed().await;
    let (code, body) = daemon.get("/status").await;
    assert_eq!(code, 200, "{body}");
    let status: Value = serde_json::from_str(&body).unwrap();

    assert_eq!(status["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(status["source"], "daemon");
    let streams = status["streams"].as_array().unwrap();
    let trengo = streams
        .iter()
        .find(|s| s["stream"] == "trengo.tickets")
        .unwrap();
    assert_eq!(trengo["lag_secs"], 60);
    let ghl = streams
        .iter()
        .find(|s| s["stream"] == "ghl.contacts")
        .unwrap();
    assert_eq!(ghl["lag_secs"], Value::Null, "not an RFC 3339 time");

    let jobs = status["jobs"].as_array().unwrap();
    let poll = jobs.iter().find(|j| j["name"] == "trengo_poll").unwrap();
    assert_eq!(poll["last_outcome"], "ok");
    assert_eq!(poll["last_duration_ms"], 2000);
    assert_eq!(poll["last_counts"], json!({"read": 4, "written": 1}));
    assert_eq!(poll["runs"], 1);
    assert_eq!(jobs.len(), 3);

    assert_eq!(
        status["links"],
        json!({"active": 1, "out_of_scope": 1, "gone": 0, "unlinked": 0, "contact_pairs": 0})
    );
    assert_eq!(status["paused"]["daemon"], Value::Null, "not paused");
    assert_eq!(status["paused"]["held_items"], 0);
    assert_eq!(status["conflicts"][0]["ticket_id"], 11);
    assert_eq!(status["conflicts_total"], 1);
    assert_eq!(status["retries"].as_array().unwrap().len(), 2);
    assert_eq!(status["retries_total"], 2);
    let stuck = status["stuck"].as_array().unwrap();
    assert_eq!(stuck.len(), 1);
    assert_eq!(stuck[0]["item"], "ticket:13");

    let budgets = status["budgets"].as_array().unwrap();
    let apis: Vec<&str> = budgets.iter().map(|b| b["api"].as_str().unwrap()).collect();
    assert_eq!(apis, ["trengo", "ghl"]);
    assert_eq!(budgets[0]["limit"], 120);

    let backfill = &status["backfill"][0];
    assert_eq!(backfill["done"], 50);
    assert_eq!(backfill["rate_per_sec"], 0.5);
    assert_eq!(backfill["eta_secs"], 100);
    assert_eq!(status["readiness"]["ready"], true);

    // The CLI reads the same JSON back.
    let report: StatusReport = serde_json::from_str(&body).unwrap();
    assert_eq!(report.stuck.len(), 1);
    daemon.stop().await;
}

#[tokio::test]
async fn metrics_expose_the_families_in_prometheus_text() {
    let mut daemon = Daemon::start(true, t0()).await;
    daemon.seed().await;
    let body = "ticket_id=5&label_id=9";
    let signature = sign_trengo(TRENGO_SECRET, t0().timestamp(), body.as_bytes());
    assert_eq!(
        daemon.post_trengo(EVENT, body, Some(signature)).await.0,
        202
    );
    assert_eq!(daemon.hints_sent(), [Hint::TicketLabels(5)]);

    let response = daemon
        .http
        .get(format!("{}/metrics", daemon.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    let text = response.text().await.unwrap();
    for family in [
        "trengo_sync_budget_remaining{api=\"trengo\"}",
        "trengo_sync_budget_remaining{api=\"ghl\"}",
        "trengo_sync_cursor_lag_seconds{stream=\"trengo.tickets\"}",
        "trengo_sync_links{state=\"active\"} 1",
        "trengo_sync_links{state=\"out_of_scope\"} 1",
        "# TYPE trengo_sync_webhooks_total counter",
    ] {
        assert!(text.contains(family), "missing {family} in:\n{text}");
    }
    support::promtool_check(&text);
    daemon.stop().await;
}

#[tokio::test]
async fn a_signed_trengo_webhook_sends_one_hint_and_its_repeat_none() {
    let mut daemon = Daemon::start(true, t0()).await;
    let body = "ticket_id=913790661&label_id=1469784&label_name=Payout+Triggers";
    let signature = sign_trengo(TRENGO_SECRET, t0().timestamp() - 10, body.as_bytes());

    let (code, _) = daemon
        .post_trengo(EVENT, body, Some(signature.clone()))
        .await;
    assert_eq!(code, 202);
    assert_eq!(daemon.hints_sent(), [Hint::TicketLabels(913790661)]);

    let (code, _) = daemon.post_trengo(EVENT, body, Some(signature)).await;
    assert_eq!(code, 200, "a repeat is acknowledged");
    assert_eq!(daemon.hints_sent(), []);
    daemon.stop().await;
}

#[tokio::test]
async fn a_trengo_webhook_with_a_bad_missing_or_stale_signature_is_refused() {
    let mut daemon = Daemon::start(true, t0()).await;
    let body = "ticket_id=5&label_id=9";

    let forged = sign_trengo("not-the-secret", t0().timestamp(), body.as_bytes());
    let (code, text) = daemon.post_trengo(EVENT, body, Some(forged)).await;
    assert_eq!(code, 401);
    assert!(text.contains("does not match"), "{text}");

    let (code, text) = daemon.post_trengo(EVENT, body, None).await;
    assert_eq!(code, 401);
    assert!(text.contains("Trengo-Signature"), "{text}");

    let stale = sign_trengo(TRENGO_SECRET, t0().timestamp() - 600, body.as_bytes());
    let (code, text) = daemon.post_trengo(EVENT, body, Some(stale)).await;
    assert_eq!(code, 401);
    assert!(text.contains("stale"), "{text}");
    assert!(!text.contains(TRENGO_SECRET));

    let signed = sign_trengo(TRENGO_SECRET, t0().timestamp(), body.as_bytes());
    let (code, _) = daemon
        .post_trengo("TICKET_CLOSED", body, Some(signed))
        .await;
    assert_eq!(code, 404, "no secret is configured for that event");

    assert_eq!(daemon.hints_sent(), [], "nothing refused became a hint");
    daemon.stop().await;
}

#[tokio::test]
async fn a_signed_ghl_webhook_sends_its_task_hint_once() {
    let mut daemon = Daemon::start(true, t0()).await;
    let event = ghl_event("wh-1", LOCATION);
    assert_eq!(daemon.post_ghl(&event).await.0, 202);
    // A completion names its task: only that link's fields need reading.
    assert_eq!(
        daemon.hints_sent(),
        [Hint::TaskCompleted {
            contact_id: "contact-77".into(),
            task_id: "task-77".into()
        }]
    );

    assert_eq!(daemon.post_ghl(&event).await.0, 200);
    assert_eq!(daemon.hints_sent(), [], "same webhookId: no second hint");
    daemon.stop().await;
}

/// Issue #13 item 2: 2,000 signed hints for 2,000 contacts used to queue 2,000 entries. The
/// queue keeps one entry per item, refuses hints past its bound with 503 (counted, and the
/// sender's retry is not taken for a repeat), and takes them again once there is room.
#[tokio::test]
async fn hints_coalesce_per_item_and_past_the_bound_are_refused_with_503() {
    let mut daemon = Daemon::start_with_queue(true, t0(), HintQueue::new(3)).await;
    let contact_event = |n: u32, contact: &str| {
        let mut e = ghl_event(&format!("wh-{n}"), LOCATION);
        e["type"] = json!("ContactTagUpdate");
        e["id"] = json!(contact);
        e
    };
    for n in 0..3 {
        let e = contact_event(n, &format!("c{n}"));
        assert_eq!(daemon.post_ghl(&e).await.0, 202);
    }
    // Another event for a queued contact merges into its entry.
    let mut again = ghl_event("wh-again", LOCATION);
    again["contactId"] = json!("c1");
    again["id"] = json!("task-1");
    assert_eq!(daemon.post_ghl(&again).await.0, 202);
    // A fourth contact does not fit.
    let fourth = contact_event(9, "c9");
    let (status, body) = daemon.post_ghl(&fourth).await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("hint queue is full"), "{body}");
    assert_eq!(daemon.hints.dropped(), 1);
    let (_, metrics) = daemon.get("/metrics").await;
    assert!(
        metrics.contains("trengo_sync_hints_dropped_total"),
        "{metrics}"
    );
    assert_eq!(
        daemon.hints_sent(),
        [
            Hint::ContactTags("c0".into()),
            Hint::Contact("c1".into()),
            Hint::ContactTags("c2".into())
        ]
    );
    // GHL's retry of the refused delivery is let in now that there is room.
    assert_eq!(daemon.post_ghl(&fourth).await.0, 202);
    assert_eq!(daemon.hints_sent(), [Hint::ContactTags("c9".into())]);
    daemon.stop().await;
}

/// Issue #13 item 2: a poll that has not completed a pass for three periods (stuck behind
/// other work, or failing) makes `/readyz` fail, even while both APIs answer.
#[tokio::test]
async fn readyz_fails_when_a_poll_has_not_completed_for_three_periods() {
    let daemon = Daemon::start(false, t0()).await;
    daemon.readiness.api_ok(Api::Trengo, t0());
    daemon.readiness.api_ok(Api::Ghl, t0());
    assert_eq!(daemon.get("/readyz").await.0, 200);
    daemon.clock.advance(chrono::Duration::seconds(91));
    daemon.readiness.api_ok(Api::Trengo, daemon.clock.now());
    daemon.readiness.api_ok(Api::Ghl, daemon.clock.now());
    let (status, body) = daemon.get("/readyz").await;
    assert_eq!(status, 503);
    assert!(
        body.contains("trengo_poll has not completed a pass"),
        "{body}"
    );
    assert!(body.contains("ghl_poll"), "{body}");
    let now = daemon.clock.now();
    for kind in [JobKind::TrengoPoll, JobKind::GhlPoll] {
        daemon.board.tick(kind, now);
        daemon.board.started(kind, now);
        daemon.board.finished(kind, now, Ok(()));
    }
    assert_eq!(daemon.get("/readyz").await.0, 200);
    daemon.stop().await;
}

#[tokio::test]
async fn ghl_webhooks_for_another_location_or_badly_signed_are_refused() {
    let mut daemon = Daemon::start(true, t0()).await;
    let (code, _) = daemon.post_ghl(&ghl_event("wh-2", "loc-theirs")).await;
    assert_eq!(code, 403);

    let raw = serde_json::to_vec(&ghl_event("wh-3", LOCATION)).unwrap();
    let other = SigningKey::from_bytes(&[9u8; 32]);
    let signature = base64::engine::general_purpose::STANDARD.encode(other.sign(&raw).to_bytes());
    let response = daemon
        .http
        .post(format!("{}/webhooks/ghl", daemon.base))
        .header("x-ghl-signature", signature)
        .body(raw)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 401);

    let mut stale = ghl_event("wh-4", LOCATION);
    stale["timestamp"] = json!("2027-01-15T07:50:00Z");
    assert_eq!(daemon.post_ghl(&stale).await.0, 401);

    assert_eq!(daemon.hints_sent(), []);
    daemon.stop().await;
}

/// Issue #13 item 9: a signed GHL delivery must carry a timestamp whose age can be checked.
/// Without one it is refused; Unix seconds and milliseconds (number or digits) are read and
/// checked like the documented RFC 3339 form.
#[tokio::test]
async fn ghl_webhooks_without_a_readable_timestamp_are_refused_and_numeric_ones_are_checked() {
    let mut daemon = Daemon::start(true, t0()).await;
    let fresh = t0() - chrono::Duration::seconds(30);
    let stale = t0() - chrono::Duration::seconds(600);
    let cases = [
        (Value::Null, 401),
        (json!("yesterday"), 401),
        (json!(stale.timestamp()), 401),
        (json!(stale.timestamp_millis()), 401),
        (json!(stale.timestamp_millis().to_string()), 401),
        (json!(fresh.timestamp()), 202),
        (json!(fresh.timestamp_millis()), 202),
        (json!(fresh.timestamp_millis().to_string()), 202),
    ];
    for (i, (timestamp, expected)) in cases.iter().enumerate() {
        let mut event = ghl_event(&format!("wh-ts-{i}"), LOCATION);
        // One item each: the hint queue merges hints for one item.
        event["id"] = json!(format!("task-ts-{i}"));
        event["contactId"] = json!(format!("contact-ts-{i}"));
        if timestamp.is_null() {
            event.as_object_mut().unwrap().remove("timestamp");
        } else {
            event["timestamp"] = timestamp.clone();
        }
        let (code, text) = daemon.post_ghl(&event).await;
        assert_eq!(code, *expected, "timestamp {timestamp}: {text}");
    }
    let (_, text) = daemon
        .post_ghl(&{
            let mut e = ghl_event("wh-ts-none", LOCATION);
            e.as_object_mut().unwrap().remove("timestamp");
            e
        })
        .await;
    assert!(text.contains("timestamp"), "{text}");
    assert_eq!(daemon.hints_sent().len(), 3);
    daemon.stop().await;
}

/// Issue #13 item 9: the Trengo event name comes from the URL; anything but upper-case
/// letters and underscores is not found, before any secret lookup or hint.
#[tokio::test]
async fn trengo_event_names_outside_upper_case_and_underscores_are_not_found() {
    let mut daemon = Daemon::start(true, t0()).await;
    let body = "ticket_id=5";
    let signature = sign_trengo(TRENGO_SECRET, t0().timestamp(), body.as_bytes());
    for event in [
        "TICKET_LABEL_ADDED%0A2027-01-15T08:00:00Z%20ERROR%20forged",
        "TICKET_LABEL_ADDED%1B%5B31m",
        "ticket_label_added",
        "TICKET-LABEL-ADDED",
        "TICKET_LABEL_ADDED1",
    ] {
        let (code, text) = daemon
            .post_trengo(event, body, Some(signature.clone()))
            .await;
        assert_eq!(code, 404, "{event}: {text}");
        assert!(
            !text.contains("forged") && !text.contains('\u{1b}'),
            "{text}"
        );
    }
    assert_eq!(daemon.hints_sent(), []);
    assert_eq!(
        daemon.post_trengo(EVENT, body, Some(signature)).await.0,
        202
    );
    daemon.stop().await;
}

#[tokio::test]
async fn webhooks_are_not_found_when_disabled() {
    let mut daemon = Daemon::start(false, t0()).await;
    let body = "ticket_id=5";
    let signature = sign_trengo(TRENGO_SECRET, t0().timestamp(), body.as_bytes());
    assert_eq!(
        daemon.post_trengo(EVENT, body, Some(signature)).await.0,
        404
    );
    assert_eq!(daemon.post_ghl(&ghl_event("wh-5", LOCATION)).await.0, 404);
    assert_eq!(daemon.hints_sent(), []);
    daemon.stop().await;
}

#[tokio::test]
async fn no_secret_appears_in_status_metrics_or_refusals() {
    let daemon = Daemon::start(true, t0()).await;
    daemon.seed().await;
    let bad = sign_trengo("wrong", t0().timestamp(), b"ticket_id=1");
    let (_, refusal) = daemon.post_trengo(EVENT, "ticket_id=1", Some(bad)).await;
    for path in ["/status", "/metrics", "/healthz", "/readyz"] {
        let (_, body) = daemon.get(path).await;
        assert!(!body.contains(TRENGO_SECRET), "{path} leaks the secret");
        assert!(!body.contains("TEST-TOKEN"), "{path} leaks the secret");
    }
    assert!(!refusal.contains("TEST-TOKEN"));
    daemon.stop().await;
}

#[tokio::test]
async fn status_command_prints_the_running_daemons_table() {
    let daemon = Daemon::start(false, t0()).await;
    daemon.seed().await;
    let mut config = Config::default();
    config.http.listen = daemon.addr;
    let clock: SharedClock = daemon.clock.clone();
    let table = status_command(&config, clock).await.unwrap();
    assert!(table.contains("live from the running daemon"), "{table}");
    let stuck_line = table.lines().find(|l| l.contains("ticket:13")).unwrap();
    assert!(stuck_line.contains("stuck"), "{table}");
    for shown in [
        "Ready: yes",
        "trengo.tickets",
        "trengo_poll",
        "1 active, 1 out of scope",
        "Conflicts held: 1",
        "ticket:13",
        "Rate budgets",
        "50/100",
    ] {
        assert!(table.contains(shown), "missing {shown:?} in:\n{table}");
    }
    daemon.stop().await;
}

/// `trengo-sync status` sends `http.status_token`; without it the daemon refuses, and the
/// command says why and shows the store instead.
#[tokio::test]
async fn status_command_sends_the_status_token() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.sqlite");
    drop(Store::open(&path).unwrap());
    let daemon = Daemon::start_with_token(false, t0(), Some("st-cmd-1")).await;
    daemon.seed().await;
    let mut config = Config::default();
    config.http.listen = daemon.addr;
    config.store.path = path;
    let clock: SharedClock = daemon.clock.clone();
    let refused = status_command(&config, clock.clone()).await.unwrap();
    assert!(refused.contains("HTTP 401"), "{refused}");
    assert!(refused.contains("http.status_token"), "{refused}");
    config.http.status_token = Some(Secret::new("st-cmd-1"));
    let table = status_command(&config, clock).await.unwrap();
    assert!(table.contains("live from the running daemon"), "{table}");
    daemon.stop().await;
}

#[tokio::test]
async fn status_command_falls_back_to_the_store_when_nothing_listens() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.sqlite");
    {
        let store = Store::open(&path).unwrap();
        cursors::put(store.conn(), "trengo.tickets", "2027-01-15T07:58:00Z", t0()).unwrap();
        runs::skipped(store.conn(), "ghl_poll").unwrap();
    }
    // A port that was free a moment ago: nothing listens on it now.
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = free.local_addr().unwrap();
    drop(free);

    let mut config = Config::default();
    config.http.listen = addr;
    config.store.path = path.clone();
    let clock: SharedClock = ManualClock::new(t0());
    let table = status_command(&config, clock).await.unwrap();
    assert!(table.starts_with("The daemon is not running"), "{table}");
    assert!(table.contains("trengo.tickets"), "{table}");
    assert!(table.contains("2m"), "lag of two minutes: {table}");
    assert!(table.contains("ghl_poll"), "{table}");
    assert!(
        !path.with_extension("sqlite-wal").exists(),
        "read-only: no WAL file"
    );

    config.store.path = dir.path().join("missing.sqlite");
    let err = status_command(&config, ManualClock::new(t0()))
        .await
        .unwrap_err();
    let err = format!("{err:#}");
    assert!(err.contains("not running"), "{err}");
    assert!(err.contains("store.path"), "{err}");
}

#[test]
fn the_status_table_renders_an_empty_report() {
    let store = Store::open_in_memory().unwrap();
    let report =
        trengo_sync::daemon::status::collect_from_store(&store, t0(), Duration::from_secs(60))
            .unwrap();
    let table = render_table(&report);
    assert!(
        table.contains("from the store; the daemon is not running"),
        "{table}"
    );
    assert!(table.contains("Links: 0 active, 0 out of scope"), "{table}");
    assert!(table.contains("(none)"), "{table}");
}

//! The GHL fake over real HTTP: auth, the authorization-code install and OAuth rotation, the
//! Version header, contact search
//! (validation, cursor paging, index lag, date filters), tasks, tags, rate limits, faults,
//! counters, signed webhooks, determinism, appointments, custom field reads and writes under
//! their switches, and conformance to GHL's OpenAPI files.

use std::path::Path;
use std::sync::Arc;

use axum::body::Bytes;
use axum::http::HeaderMap;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{DateTime, Duration, Utc};
use ed25519_dalek::{Signature, Verifier, VerifyingKey};
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use trengo_sync::clock::{ManualClock, SharedClock};
use trengo_sync::sim::Faults;
use trengo_sync::sim::ghl::{GhlFake, GhlFakeOptions, GhlSwitches};

#[path = "support/openapi.rs"]
mod openapi;

const VERSION: &str = "2021-07-28";

fn start_time() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-03-02T10:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

async fn start(options: GhlFakeOptions) -> (GhlFake, Arc<ManualClock>) {
    let clock = ManualClock::new(start_time());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let shared: SharedClock = clock.clone();
    let fake = GhlFake::start(listener, options, shared).unwrap();
    (fake, clock)
}

fn http() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

fn token(options: &GhlFakeOptions) -> String {
    options.private_token.expose_secret().to_owned()
}

/// An authenticated, versioned request, as a well-behaved client sends it.
fn api(fake: &GhlFake, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
    http()
        .request(method, format!("{}{path}", fake.base_url()))
        .bearer_auth(token(&GhlFakeOptions::default()))
        .header("Version", VERSION)
        .header("Accept", "application/json")
}

async fn json_of(response: reqwest::Response) -> (u16, HeaderMap, Value) {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, headers, body)
}

async fn search(fake: &GhlFake, body: Value) -> (u16, Value) {
    let (status, _, body) = json_of(
        api(fake, reqwest::Method::POST, "/contacts/search")
            .json(&body)
            .send()
            .await
            .unwrap(),
    )
    .await;
    (status, body)
}

fn location() -> String {
    GhlFakeOptions::default().location_id
}

fn first_contact(fake: &GhlFake) -> String {
    fake.snapshot()["contacts"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// A contact with an open task, and that task.
fn contact_with_open_task(fake: &GhlFake) -> (String, String) {
    let state = fake.snapshot();
    let task = state["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["completed"] == false)
        .expect("the seed has open tasks")
        .clone();
    (
        task["contactId"].as_str().unwrap().to_owned(),
        task["id"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test]
async fn requests_without_a_token_are_refused_with_401() {
    let (fake, _) = start(GhlFakeOptions::default()).await;
    let id = first_contact(&fake);
    let response = http()
        .get(format!("{}/contacts/{id}", fake.base_url()))
        .header("Version", VERSION)
        .send()
        .await
        .unwrap();
    let (status, _, body) = json_of(response).await;
    assert_eq!(status, 401);
    assert_eq!(body["message"], "Invalid token: access token is invalid");
    assert_eq!(body["error"], "Unauthorized");
    assert_eq!(body["statusCode"], 401);

    let wrong = http()
        .get(format!("{}/contacts/{id}", fake.base_url()))
        .bearer_auth("pit-not-the-right-one")
        .header("Version", VERSION)
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status().as_u16(), 401);
}

/// A form-encoded `POST /oauth/token`.
async fn token_post(fake: &GhlFake, form: &[(&str, &str)]) -> (u16, Value) {
    let response = http()
        .post(format!("{}/oauth/token", fake.base_url()))
        .form(form)
        .send()
        .await
        .unwrap();
    let (status, _, body) = json_of(response).await;
    (status, body)
}

async fn refresh(fake: &GhlFake, refresh_token: &str) -> (u16, Value) {
    let options = GhlFakeOptions::default();
    token_post(
        fake,
        &[
            ("client_id", options.client_id.as_str()),
            ("client_secret", options.client_secret.expose_secret()),
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
            ("user_type", "Location"),
        ],
    )
    .await
}

#[tokio::test]
async fn expired_access_token_is_refused_like_a_missing_one() {
    let (fake, clock) = start(GhlFakeOptions::default()).await;
    let first = GhlFakeOptions::default().refresh_token;
    let (status, grant) = refresh(&fake, first.expose_secret()).await;
    assert_eq!(status, 200);
    assert_eq!(grant["expires_in"], 86_399);
    let access = grant["access_token"].as_str().unwrap().to_owned();
    let id = first_contact(&fake);
    let get = |access: String| {
        http()
            .get(format!("{}/contacts/{id}", fake.base_url()))
            .bearer_auth(access)
            .header("Version", VERSION)
            .send()
    };
    assert_eq!(get(access.clone()).await.unwrap().status().as_u16(), 200);
    clock.advance(Duration::seconds(86_399));
    let (status, _, body) = json_of(get(access).await.unwrap()).await;
    assert_eq!(status, 401);
    assert_eq!(body["message"], "Invalid token: access token is invalid");
}

#[tokio::test]
async fn refresh_rotates_and_the_old_refresh_token_stops_working() {
    let (fake, _) = start(GhlFakeOptions::default()).await;
    let first = GhlFakeOptions::default().refresh_token;
    let (status, grant) = refresh(&fake, first.expose_secret()).await;
    assert_eq!(status, 200);
    assert_eq!(grant["token_type"], "Bearer");
    assert_eq!(grant["locationId"], location());
    let second = grant["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(second, first.expose_secret());

    let (status, body) = refresh(&fake, first.expose_secret()).await;
    assert_eq!(status, 400, "a used refresh token must be refused: {body}");
    assert_eq!(body["statusCode"], 400);

    let (status, third) = refresh(&fake, &second).await;
    assert_eq!(status, 200);
    assert_ne!(third["refresh_token"], second.as_str());
    assert_eq!(fake.refresh_count(), 2);
    assert_eq!(
        fake.current_refresh_token().expose_secret(),
        third["refresh_token"].as_str().unwrap()
    );
}

const REDIRECT: &str = "http://127.0.0.1:9/oauth/callback";

/// The authorization page as a browser that does not follow redirects sees it.
async fn choose_location(fake: &GhlFake, redirect_uri: &str, state: &str) -> reqwest::Response {
    let options = GhlFakeOptions::default();
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(format!("{}/oauth/chooselocation", fake.base_url()))
        .query(&[
            ("response_type", "code"),
            ("redirect_uri", redirect_uri),
            ("client_id", options.client_id.as_str()),
            ("scope", "contacts.readonly contacts.write"),
            ("state", state),
        ])
        .send()
        .await
        .unwrap()
}

/// Approves on the page and returns the redirect's query pairs.
async fn approved(fake: &GhlFake, state: &str) -> std::collections::BTreeMap<String, String> {
    let page = choose_location(fake, REDIRECT, state).await;
    assert_eq!(page.status().as_u16(), 302);
    let target = url::Url::parse(page.headers()["location"].to_str().unwrap()).unwrap();
    assert!(target.as_str().starts_with(REDIRECT));
    target.query_pairs().into_owned().collect()
}

/// `POST /oauth/token` with `grant_type=authorization_code` and the given extra fields.
async fn exchange(fake: &GhlFake, secret: &str, fields: &[(&str, &str)]) -> (u16, Value) {
    let options = GhlFakeOptions::default();
    let mut form = vec![
        ("client_id", options.client_id.as_str()),
        ("client_secret", secret),
        ("grant_type", "authorization_code"),
    ];
    form.extend_from_slice(fields);
    token_post(fake, &form).await
}

/// The exchange with every field: `code`, `redirect_uri`, `user_type`.
async fn redeem(fake: &GhlFake, secret: &str, code: &str, uri: &str, user: &str) -> (u16, Value) {
    exchange(
        fake,
        secret,
        &[("code", code), ("redirect_uri", uri), ("user_type", user)],
    )
    .await
}

#[tokio::test]
async fn an_authorization_code_works_once_briefly_and_for_its_redirect_uri_only() {
    let options = GhlFakeOptions {
        redirect_uris: vec![REDIRECT.to_owned()],
        ..GhlFakeOptions::default()
    };
    let (fake, clock) = start(options.clone()).await;
    let secret = options.client_secret.expose_secret();

    // An unregistered redirect URI gets an error page, never a redirect.
    let page = choose_location(&fake, "https://elsewhere.example/cb", "s1").await;
    assert_eq!(page.status().as_u16(), 400);
    assert!(page.headers().get("location").is_none());

    let redirect = approved(&fake, "s1").await;
    assert!(
        !redirect.contains_key("state"),
        "state is dropped by default"
    );
    let code = redirect["code"].clone();
    // Missing fields: 422 with the message array; a JSON body: 400.
    let (status, body) = exchange(&fake, secret, &[("code", &code)]).await;
    assert_eq!(status, 422, "{body}");
    assert!(body["message"].is_array());
    let json = http()
        .post(format!("{}/oauth/token", fake.base_url()))
        .json(&json!({"grant_type": "authorization_code", "code": code}))
        .send()
        .await
        .unwrap();
    assert_eq!(json.status().as_u16(), 400);
    // A wrong secret: 401; another redirect URI: 400. Neither spends the code.
    let (status, _) = redeem(&fake, "not-the-secret", &code, REDIRECT, "Location").await;
    assert_eq!(status, 401);
    let other = "http://127.0.0.1:9/other";
    let (status, _) = redeem(&fake, secret, &code, other, "Location").await;
    assert_eq!(status, 400);
    // The right exchange: a location token whose chain replaces the old one.
    let (status, grant) = redeem(&fake, secret, &code, REDIRECT, "Location").await;
    assert_eq!(status, 200, "{grant}");
    assert_eq!(grant["locationId"], location());
    assert_eq!(grant["userType"], "Location");
    assert_eq!(grant["scope"], "contacts.readonly contacts.write");
    assert_eq!(fake.install_count(), 1);
    let (status, _) = refresh(&fake, options.refresh_token.expose_secret()).await;
    assert_eq!(status, 400, "the previous install's refresh token is spent");
    let (status, _) = refresh(&fake, grant["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, 200);
    // Used once: refused again.
    let (status, body) = redeem(&fake, secret, &code, REDIRECT, "Location").await;
    assert_eq!(status, 400, "{body}");
    // Short-lived: a code a minute old is refused.
    let late = approved(&fake, "s2").await["code"].clone();
    clock.advance(Duration::seconds(60));
    let (status, _) = redeem(&fake, secret, &late, REDIRECT, "Location").await;
    assert_eq!(status, 400);
    // A company token names no location.
    let company = approved(&fake, "s3").await["code"].clone();
    let (status, grant) = redeem(&fake, secret, &company, REDIRECT, "Company").await;
    assert_eq!(status, 200);
    assert!(grant.get("locationId").is_none(), "{grant}");
    assert_eq!(fake.install_count(), 2);
}

#[tokio::test]
async fn the_authorization_page_echoes_state_only_with_the_switch_on() {
    let options = GhlFakeOptions {
        redirect_uris: vec![REDIRECT.to_owned()],
        ..GhlFakeOptions::default()
    };
    let (fake, _) = start(options).await;
    assert!(!approved(&fake, "abc").await.contains_key("state"));
    fake.set_switches(GhlSwitches {
        redirect_keeps_state: true,
        ..GhlSwitches::default()
    });
    assert_eq!(approved(&fake, "abc").await["state"], "abc");
}

#[tokio::test]
async fn version_header_is_required() {
    let (fake, _) = start(GhlFakeOptions::default()).await;
    let id = first_contact(&fake);
    let url = format!("{}/contacts/{id}", fake.base_url());
    let missing = http()
        .get(&url)
        .bearer_auth(token(&GhlFakeOptions::default()))
        .send()
        .await
        .unwrap();
    let (status, _, body) = json_of(missing).await;
    assert_eq!(status, 400);
    assert_eq!(body["statusCode"], 400);
    assert!(body["message"].as_str().unwrap().contains("Version"));

    let wrong = http()
        .get(&url)
        .bearer_auth(token(&GhlFakeOptions::default()))
        .header("Version", "2023-02-21")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status().as_u16(), 400);
    assert_eq!(
        api(&fake, reqwest::Method::GET, &format!("/contacts/{id}"))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        200
    );
}

#[tokio::test]
async fn a_token_cannot_reach_another_location() {
    let (fake, _) = start(GhlFakeOptions::default()).await;
    let (status, body) = search(
        &fake,
        json!({"locationId": "someOtherLocation000", "pageLimit": 10}),
    )
    .await;
    assert_eq!(status, 403);
    assert_eq!(
        body["message"],
        "The token does not have access to this location"
    );
}

#[tokio::test]
async fn search_requires_location_and_page_limit() {
    let (fake, _) = start(GhlFakeOptions::default()).await;
    let (status, body) = search(&fake, json!({})).await;
    assert_eq!(status, 422);
    let messages = body["message"]
        .as_array()
        .expect("422 carries a message array");
    assert!(
        messages
            .iter()
            .any(|m| m.as_str().unwrap().contains("locationId"))
    );
    assert!(
        messages
            .iter()
            .any(|m| m.as_str().unwrap().contains("pageLimit"))
    );
    assert_eq!(body["error"], "Unprocessable Entity");

    let (status, _) = search(&fake, json!({"locationId": location()})).await;
    assert_eq!(status, 422);
    let (status, body) = search(&fake, json!({"locationId": location(), "pageLimit": 5})).await;
    assert_eq!(status, 200);
    assert_eq!(body["contacts"].as_array().unwrap().len(), 5);
    assert_eq!(body["total"], 20);
}

#[tokio::test]
async fn search_after_pages_through_hundreds_of_contacts() {
    let options = GhlFakeOptions {
        contacts: 340,
        ..GhlFakeOptions::default()
    };
    let (fake, _) = start(options).await;
    let mut seen = std::collections::BTreeSet::new();
    let mut last_sort = i64::MIN;
    let mut after: Option<Value> = None;
    let mut pages = 0;
    loop {
        let mut body = json!({
            "locationId": location(),
            "pageLimit": 100,
            "sort": [{"field": "dateUpdated", "direction": "asc"}],
        });
        if let Some(after) = &after {
            body["searchAfter"] = after.clone();
        }
        let (status, page) = search(&fake, body).await;
        assert_eq!(status, 200, "{page}");
        assert_eq!(page["total"], 340);
        let contacts = page["contacts"].as_array().unwrap();
        if contacts.is_empty() {
            break;
        }
        pages += 1;
        for contact in contacts {
            assert!(seen.insert(contact["id"].as_str().unwrap().to_owned()));
            let sort: i64 = contact["searchAfter"][0].as_str().unwrap().parse().unwrap();
            assert!(sort >= last_sort, "ascending by dateUpdated");
            last_sort = sort;
        }
        after = Some(contacts.last().unwrap()["searchAfter"].clone());
    }
    assert_eq!(seen.len(), 340);
    assert_eq!(pages, 4);
}

#[tokio::test]
async fn index_lag_hides_a_fresh_change_until_it_passes() {
    let (fake, clock) = start(GhlFakeOptions::default()).await;
    let id = first_contact(&fake);
    let response = api(
        &fake,
        reqwest::Method::POST,
        &format!("/contacts/{id}/tags"),
    )
    .json(&json!({"tags": ["fresh-tag"]}))
    .send()
    .await
    .unwrap();
    assert_eq!(response.status().as_u16(), 201);
    let by_tag = json!({"locationId": location(), "pageLimit": 10,
        "filters": [{"field": "tags", "operator": "eq", "value": "fresh-tag"}]});

    // The contact itself shows the tag at once; the search index does not yet.
    let (_, _, live) = json_of(
        api(&fake, reqwest::Method::GET, &format!("/contacts/{id}"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert!(
        live["contact"]["tags"]
            .as_array()
            .unwrap()
            .contains(&json!("fresh-tag"))
    );
    let (_, body) = search(&fake, by_tag.clone()).await;
    assert_eq!(body["total"], 0);

    clock.advance(Duration::seconds(4));
    let (_, body) = search(&fake, by_tag.clone()).await;
    assert_eq!(body["total"], 0, "still inside the 5 s lag");

    clock.advance(Duration::seconds(1));
    let (_, body) = search(&fake, by_tag).await;
    assert_eq!(body["total"], 1);
    assert_eq!(body["contacts"][0]["id"], id.as_str());
}

#[tokio::test]
async fn date_updated_range_filter_returns_only_changes_in_the_window() {
    let (fake, clock) = start(GhlFakeOptions::default()).await;
    let ids: Vec<String> = fake.snapshot()["contacts"]
        .as_array()
        .unwrap()
        .iter()
        .take(3)
        .map(|c| c["id"].as_str().unwrap().to_owned())
        .collect();
    clock.advance(Duration::minutes(1));
    let since = clock_now(&clock);
    fake.add_contact_tag(&ids[0], "changed").unwrap();
    clock.advance(Duration::seconds(1));
    fake.add_contact_tag(&ids[1], "changed").unwrap();
    clock.advance(Duration::seconds(30));

    let (status, body) = search(
        &fake,
        json!({"locationId": location(), "pageLimit": 50,
            "filters": [{"field": "dateUpdated", "operator": "range",
                         "value": {"gte": since.to_rfc3339()}}],
            "sort": [{"field": "dateUpdated", "direction": "asc"}]}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let found: Vec<&str> = body["contacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(found, vec![ids[0].as_str(), ids[1].as_str()]);

    let (_, body) = search(
        &fake,
        json!({"locationId": location(), "pageLimit": 50,
            "filters": [{"field": "dateUpdated", "operator": "range",
                         "value": {"gt": since.to_rfc3339(),
                                   "lte": (since + Duration::seconds(5)).to_rfc3339()}}]}),
    )
    .await;
    assert_eq!(body["total"], 1);
}

fn clock_now(clock: &ManualClock) -> DateTime<Utc> {
    use trengo_sync::clock::Clock;
    clock.now()
}

#[tokio::test]
async fn unknown_filter_field_is_a_400() {
    let (fake, _) = start(GhlFakeOptions::default()).await;
    let (status, body) = search(
        &fake,
        json!({"locationId": location(), "pageLimit": 10,
            "filters": [{"field": "contact_name", "operator": "eq", "value": "Ada"}]}),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["message"], "Invalid field contact_name");
    assert_eq!(body["error"], "Bad Request");
    assert!(body["traceId"].is_string());
}

#[tokio::test]
async fn task_completion_leaves_contact_date_updated_alone() {
    let (fake, clock) = start(GhlFakeOptions::default()).await;
    let (contact, task) = contact_with_open_task(&fake);
    let before = fake.contact_json(&contact).unwrap()["dateUpdated"].clone();
    clock.advance(Duration::minutes(5));
    let (status, _, body) = json_of(
        api(
            &fake,
            reqwest::Method::PUT,
            &format!("/contacts/{contact}/tasks/{task}/completed"),
        )
        .json(&json!({"completed": true}))
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["task"]["completed"], true);
    assert_eq!(fake.contact_json(&contact).unwrap()["dateUpdated"], before);

    // With the switch on, the same change moves the contact.
    fake.set_switches(GhlSwitches {
        task_completion_bumps_contact: true,
        ..GhlSwitches::default()
    });
    clock.advance(Duration::minutes(5));
    fake.reopen_task(&task).unwrap();
    assert_ne!(fake.contact_json(&contact).unwrap()["dateUpdated"], before);
}

#[tokio::test]
async fn task_create_requires_title_due_date_and_completed() {
    let (fake, _) = start(GhlFakeOptions::default()).await;
    let id = first_contact(&fake);
    let (status, _, body) = json_of(
        api(
            &fake,
            reqwest::Method::POST,
            &format!("/contacts/{id}/tasks"),
        )
        .json(&json!({"title": "Call back"}))
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, 422);
    let messages = body["message"].as_array().unwrap();
    assert!(
        messages
            .iter()
            .any(|m| m.as_str().unwrap().contains("dueDate"))
    );
    assert!(
        messages
            .iter()
            .any(|m| m.as_str().unwrap().contains("completed"))
    );
}

#[tokio::test]
async fn tags_are_removed_with_a_delete_body() {
    let (fake, _) = start(GhlFakeOptions::default()).await;
    let id = first_contact(&fake);
    fake.add_contact_tag(&id, "trengo:urgent").unwrap();
    fake.add_contact_tag(&id, "keep-me").unwrap();
    let (status, _, body) = json_of(
        api(
            &fake,
            reqwest::Method::DELETE,
            &format!("/contacts/{id}/tags"),
        )
        .json(&json!({"tags": ["trengo:urgent"]}))
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["tags"], json!(["trengo:urgent"]));
    let tags = fake.contact_json(&id).unwrap()["tags"].clone();
    assert!(!tags.as_array().unwrap().contains(&json!("trengo:urgent")));
    assert!(tags.as_array().unwrap().contains(&json!("keep-me")));

    // Without a body there is nothing to remove: 422.
    let bare = api(
        &fake,
        reqwest::Method::DELETE,
        &format!("/contacts/{id}/tags"),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(bare.status().as_u16(), 422);
}

#[tokio::test]
async fn the_101st_request_in_a_window_gets_429_without_retry_after() {
    let (fake, clock) = start(GhlFakeOptions::default()).await;
    let id = first_contact(&fake);
    let path = format!("/contacts/{id}");
    for n in 0..100u32 {
        let response = api(&fake, reqwest::Method::GET, &path)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 200);
        let headers = response.headers();
        for name in [
            "x-ratelimit-limit-daily",
            "x-ratelimit-daily-remaining",
            "x-ratelimit-interval-milliseconds",
            "x-ratelimit-max",
            "x-ratelimit-remaining",
        ] {
            assert!(headers.contains_key(name), "{name} missing");
        }
        assert_eq!(headers["x-ratelimit-max"], "100");
        assert_eq!(headers["x-ratelimit-interval-milliseconds"], "10000");
        assert_eq!(
            headers["x-ratelimit-remaining"],
            (99 - n).to_string().as_str()
        );
    }
    let (status, headers, body) = json_of(
        api(&fake, reqwest::Method::GET, &path)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 429);
    assert!(!headers.contains_key("retry-after"));
    assert_eq!(headers["x-ratelimit-remaining"], "0");
    assert_eq!(body["statusCode"], 429);

    clock.advance(Duration::seconds(10));
    let response = api(&fake, reqwest::Method::GET, &path)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    // 101 calls answered 200; the refused one spent nothing.
    assert_eq!(response.headers()["x-ratelimit-daily-remaining"], "199899");
}

#[tokio::test]
async fn faults_are_observable() {
    let (fake, _) = start(GhlFakeOptions::default()).await;
    let id = first_contact(&fake);
    let path = format!("/contacts/{id}");

    fake.burst_429(2);
    for _ in 0..2 {
        let response = api(&fake, reqwest::Method::GET, &path)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 429);
        assert!(!response.headers().contains_key("retry-after"));
    }
    assert_eq!(
        api(&fake, reqwest::Method::GET, &path)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        200
    );

    fake.set_faults(Faults {
        server_error_rate: 1.0,
        ..Faults::default()
    });
    let (status, _, body) = json_of(
        api(&fake, reqwest::Method::GET, &path)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert!((500..600).contains(&status));
    assert!(body["traceId"].is_string());

    fake.set_faults(Faults {
        malformed_rate: 1.0,
        ..Faults::default()
    });
    let response = api(&fake, reqwest::Method::GET, &path)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert!(response.json::<Value>().await.is_err());

    fake.set_faults(Faults {
        drop_rate: 1.0,
        ..Faults::default()
    });
    let outcome = match api(&fake, reqwest::Method::GET, &path).send().await {
        Ok(response) => response.bytes().await.map(|_| ()),
        Err(error) => Err(error),
    };
    assert!(
        outcome.is_err(),
        "a dropped connection must not read as a body"
    );

    fake.set_faults(Faults::default());
    assert_eq!(
        api(&fake, reqwest::Method::GET, &path)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        200
    );
}

#[tokio::test]
async fn counters_count_routes_and_writes_but_not_admin_edits() {
    let (fake, _) = start(GhlFakeOptions::default()).await;
    let (contact, task) = contact_with_open_task(&fake);
    for _ in 0..3 {
        api(&fake, reqwest::Method::GET, &format!("/contacts/{contact}"))
            .send()
            .await
            .unwrap();
    }
    api(
        &fake,
        reqwest::Method::PUT,
        &format!("/contacts/{contact}/tasks/{task}/completed"),
    )
    .json(&json!({"completed": true}))
    .send()
    .await
    .unwrap();
    fake.add_note(&contact, "typed in the UI").unwrap();
    let http_admin = http()
        .post(format!("{}/_sim/tasks/{task}/reopen", fake.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(http_admin.status().as_u16(), 200);

    let counts = fake.counter_snapshot();
    assert_eq!(counts.count("GET /contacts/{contactId}"), 3);
    assert_eq!(
        counts.count("PUT /contacts/{contactId}/tasks/{taskId}/completed"),
        1
    );
    assert_eq!(counts.total, 4);
    assert_eq!(counts.writes, 1);
}

#[tokio::test]
async fn same_seed_gives_the_same_state_json() {
    let (a, _) = start(GhlFakeOptions::default()).await;
    let (b, _) = start(GhlFakeOptions::default()).await;
    assert_eq!(a.snapshot(), b.snapshot());
    let over_http: Value = http()
        .get(format!("{}/_sim/state", a.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(over_http, a.snapshot());
    let (c, _) = start(GhlFakeOptions {
        seed: 2,
        ..GhlFakeOptions::default()
    })
    .await;
    assert_ne!(a.snapshot(), c.snapshot());
}

/// A webhook receiver on 127.0.0.1 that hands each request's headers and raw body over.
async fn receiver() -> (String, mpsc::UnboundedReceiver<(HeaderMap, Bytes)>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let tx = tx.clone();
            async move {
                let _ = tx.send((headers, body));
                "ok"
            }
        }),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, rx)
}

/// The next delivery; the generous timeout only turns a lost delivery into a failure
/// instead of a hung test.
async fn next_delivery(
    received: &mut mpsc::UnboundedReceiver<(HeaderMap, Bytes)>,
) -> (HeaderMap, Bytes) {
    tokio::time::timeout(std::time::Duration::from_secs(60), received.recv())
        .await
        .expect("a webhook delivery arrives")
        .expect("the receiver is still running")
}

#[tokio::test]
async fn webhooks_are_signed_and_verify_with_the_public_key() {
    let (fake, _) = start(GhlFakeOptions::default()).await;
    let (url, mut received) = receiver().await;
    let registered = http()
        .post(format!("{}/_sim/webhooks", fake.base_url()))
        .json(&json!({"url": url}))
        .send()
        .await
        .unwrap();
    assert_eq!(registered.status().as_u16(), 200);
    let (contact, task) = contact_with_open_task(&fake);

    // An API call's own change is delivered too (echoes are real, ghl-api.md §11.9).
    api(
        &fake,
        reqwest::Method::PUT,
        &format!("/contacts/{contact}/tasks/{task}/completed"),
    )
    .json(&json!({"completed": true}))
    .send()
    .await
    .unwrap();
    let (headers, body) = next_delivery(&mut received).await;

    let der = BASE64.decode(fake.public_key_base64()).unwrap();
    let key = VerifyingKey::from_bytes(der[12..].try_into().unwrap()).unwrap();
    let signature = BASE64
        .decode(headers["x-ghl-signature"].to_str().unwrap())
        .unwrap();
    let signature = Signature::from_slice(&signature).unwrap();
    assert!(key.verify(&body, &signature).is_ok());

    let event: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(event["type"], "TaskComplete");
    assert_eq!(event["locationId"], location());
    assert_eq!(event["id"], task.as_str());
    assert_eq!(event["contactId"], contact.as_str());
    assert!(event["timestamp"].is_string());
    assert!(event["webhookId"].is_string());

    // A tampered body fails verification.
    let mut tampered = body.to_vec();
    tampered[2] ^= 1;
    assert!(key.verify(&tampered, &signature).is_err());

    // A person's edit in the UI is delivered as well, and the log records both.
    fake.add_note(&contact, "Called the customer").unwrap();
    let (_, body) = next_delivery(&mut received).await;
    let event: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(event["type"], "NoteCreate");
    assert_eq!(event["body"], "Called the customer");
    assert!(event.get("userId").is_none());
    tokio::time::timeout(
        std::time::Duration::from_secs(60),
        fake.wait_for_webhooks(2),
    )
    .await
    .expect("both deliveries are logged");
    let log = fake.webhook_log();
    assert_eq!(log.len(), 2);
    assert!(log.iter().all(|d| d.delivered && d.status == Some(200)));
}

/// Sends one request (checking its body against the request schema) and checks the answer
/// against the response schema; returns the body.
async fn conforming(
    fake: &GhlFake,
    file: &Path,
    method: reqwest::Method,
    template: &str,
    path: &str,
    body: Option<Value>,
) -> Value {
    let mut request = api(fake, method.clone(), path);
    if let Some(body) = &body {
        if let Err(errors) = openapi::check_request(file, method.as_str(), template, body) {
            panic!("our request to {method} {template} breaks the spec: {errors:?}");
        }
        request = request.json(body);
    }
    let (status, _, answer) = json_of(request.send().await.unwrap()).await;
    if let Err(errors) = openapi::check_response(file, method.as_str(), template, status, &answer) {
        panic!("{method} {template} answered {status} off-spec: {errors:?}\n{answer}");
    }
    answer
}

#[tokio::test]
async fn responses_conform_to_the_openapi_files() {
    let contacts = openapi::spec("apps/contacts.json");
    let history = openapi::spec("history/contacts.2025-09-08-5f8673c.json");
    let locations = openapi::spec("apps/locations.json");
    let (fake, _) = start(GhlFakeOptions::default()).await;
    use reqwest::Method as M;
    let loc = location();

    let created = conforming(
        &fake,
        &contacts,
        M::POST,
        "/contacts/",
        "/contacts/",
        Some(
            json!({"locationId": loc, "firstName": "Nina", "lastName": "Nieuw",
                    "email": "nina@example.com", "phone": "+31699999999", "tags": ["trengo"]}),
        ),
    )
    .await;
    let id = created["contact"]["id"].as_str().unwrap().to_owned();
    let c = format!("/contacts/{id}");
    conforming(&fake, &contacts, M::GET, "/contacts/{contactId}", &c, None).await;
    // Appointments: none yet, then one booked; and a seeded one (naive times by default).
    let none = conforming(
        &fake,
        &contacts,
        M::GET,
        "/contacts/{contactId}/appointments",
        &format!("{c}/appointments"),
        None,
    )
    .await;
    assert_eq!(none["events"], json!([]));
    fake.add_appointment(&id, &json!({"startTime": "2026-03-05T15:00:00Z"}))
        .unwrap();
    let seeded = format!("/contacts/{}/appointments", first_contact(&fake));
    for path in [format!("{c}/appointments"), seeded] {
        let listed = conforming(
            &fake,
            &contacts,
            M::GET,
            "/contacts/{contactId}/appointments",
            &path,
            None,
        )
        .await;
        assert_eq!(listed["events"].as_array().unwrap().len(), 1, "{listed}");
    }
    conforming(
        &fake,
        &contacts,
        M::PUT,
        "/contacts/{contactId}",
        &c,
        Some(json!({"companyName": "Nieuw BV", "tags": ["trengo", "vip"]})),
    )
    .await;
    let upserted = conforming(
        &fake,
        &contacts,
        M::POST,
        "/contacts/upsert",
        "/contacts/upsert",
        Some(json!({"locationId": loc, "email": "nina@example.com", "firstName": "Nina"})),
    )
    .await;
    assert_eq!(upserted["new"], false);
    conforming(
        &fake,
        &history,
        M::POST,
        "/contacts/search",
        "/contacts/search",
        Some(json!({"locationId": loc, "pageLimit": 20})),
    )
    .await;

    let task = conforming(
        &fake,
        &contacts,
        M::POST,
        "/contacts/{contactId}/tasks",
        &format!("{c}/tasks"),
        Some(
            json!({"title": "Call back", "body": "About T-1", "dueDate": "2026-03-05T09:00:00Z",
                    "completed": false}),
        ),
    )
    .await;
    let t = format!("{c}/tasks/{}", task["task"]["id"].as_str().unwrap());
    conforming(
        &fake,
        &contacts,
        M::GET,
        "/contacts/{contactId}/tasks",
        &format!("{c}/tasks"),
        None,
    )
    .await;
    conforming(
        &fake,
        &contacts,
        M::GET,
        "/contacts/{contactId}/tasks/{taskId}",
        &t,
        None,
    )
    .await;
    conforming(
        &fake,
        &contacts,
        M::PUT,
        "/contacts/{contactId}/tasks/{taskId}",
        &t,
        Some(json!({"title": "Call back today", "dueDate": "2026-03-05T09:00:00Z"})),
    )
    .await;
    conforming(
        &fake,
        &contacts,
        M::PUT,
        "/contacts/{contactId}/tasks/{taskId}/completed",
        &format!("{t}/completed"),
        Some(json!({"completed": true})),
    )
    .await;
    let found = conforming(
        &fake,
        &locations,
        M::POST,
        "/locations/{locationId}/tasks/search",
        &format!("/locations/{loc}/tasks/search"),
        Some(json!({"contactId": [id], "limit": 10, "skip": 0})),
    )
    .await;
    assert_eq!(found["tasks"].as_array().unwrap().len(), 1);
    conforming(
        &fake,
        &contacts,
        M::DELETE,
        "/contacts/{contactId}/tasks/{taskId}",
        &t,
        None,
    )
    .await;

    let note = conforming(
        &fake,
        &contacts,
        M::POST,
        "/contacts/{contactId}/notes",
        &format!("{c}/notes"),
        Some(json!({"body": "Trengo ticket #1 closed"})),
    )
    .await;
    let n = format!("{c}/notes/{}", note["note"]["id"].as_str().unwrap());
    conforming(
        &fake,
        &contacts,
        M::GET,
        "/contacts/{contactId}/notes",
        &format!("{c}/notes"),
        None,
    )
    .await;
    conforming(
        &fake,
        &contacts,
        M::GET,
        "/contacts/{contactId}/notes/{id}",
        &n,
        None,
    )
    .await;
    conforming(
        &fake,
        &contacts,
        M::PUT,
        "/contacts/{contactId}/notes/{id}",
        &n,
        Some(json!({"body": "Trengo ticket #1 reopened"})),
    )
    .await;
    conforming(
        &fake,
        &contacts,
        M::DELETE,
        "/contacts/{contactId}/notes/{id}",
        &n,
        None,
    )
    .await;

    conforming(
        &fake,
        &contacts,
        M::POST,
        "/contacts/{contactId}/tags",
        &format!("{c}/tags"),
        Some(json!({"tags": ["trengo:billing"]})),
    )
    .await;
    conforming(
        &fake,
        &contacts,
        M::DELETE,
        "/contacts/{contactId}/tags",
        &format!("{c}/tags"),
        Some(json!({"tags": ["vip"]})),
    )
    .await;
    let catalogue = conforming(
        &fake,
        &locations,
        M::GET,
        "/locations/{locationId}/customFields",
        &format!("/locations/{loc}/customFields?model=contact"),
        None,
    )
    .await;
    assert_eq!(
        catalogue["customFields"][2]["picklistOptions"],
        json!(["Basic", "Pro", "Enterprise"])
    );
    let location = conforming(
        &fake,
        &locations,
        M::GET,
        "/locations/{locationId}",
        &format!("/locations/{loc}"),
        None,
    )
    .await;
    assert_eq!(location["location"]["timezone"], "Europe/Amsterdam");
    // The contact's standard fields, written and read back on-spec.
    let updated = conforming(
        &fake,
        &contacts,
        M::PUT,
        "/contacts/{contactId}",
        &c,
        Some(
            json!({"address1": "Damrak 1", "city": "Amsterdam", "state": "NH",
                    "postalCode": "1012 LG", "country": "NL", "website": "https://nina.example"}),
        ),
    )
    .await;
    assert_eq!(updated["contact"]["postalCode"], "1012 LG");

    // Error answers: 422 (message array) and the common DTOs.
    conforming(
        &fake,
        &contacts,
        M::POST,
        "/contacts/{contactId}/tasks",
        &format!("{c}/tasks"),
        Some(json!({"title": "x", "dueDate": "2026-03-05T09:00:00Z", "completed": false})),
    )
    .await;
    let (status, _, body) = json_of(
        api(&fake, M::POST, &format!("{c}/tasks"))
            .json(&json!({}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 422);
    openapi::check_response(&contacts, "post", "/contacts/{contactId}/tasks", 422, &body).unwrap();
    let (status, _, body) = json_of(
        http()
            .get(format!("{}{c}", fake.base_url()))
            .header("Version", VERSION)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 401);
    openapi::check_response(&contacts, "get", "/contacts/{contactId}", 401, &body).unwrap();
    let (status, _, body) = json_of(
        http()
            .get(format!("{}{c}", fake.base_url()))
            .bearer_auth(token(&GhlFakeOptions::default()))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 400);
    openapi::check_response(&contacts, "get", "/contacts/{contactId}", 400, &body).unwrap();

    conforming(
        &fake,
        &contacts,
        M::DELETE,
        "/contacts/{contactId}",
        &c,
        None,
    )
    .await;
}

#[tokio::test]
async fn creating_a_duplicate_contact_is_refused_by_default() {
    let (fake, _) = start(GhlFakeOptions::default()).await;
    let (status, _, body) = json_of(
        api(&fake, reqwest::Method::POST, "/contacts/")
            .json(&json!({"locationId": location(), "email": "customer1@example.com"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 400);
    assert!(body["meta"]["contactId"].is_string());
    let (status, _, body) = json_of(
        api(
            &fake,
            reqwest::Method::GET,
            &format!(
                "/contacts/search/duplicate?locationId={}&email=customer1%40example.com",
                location()
            ),
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["contact"]["email"], "customer1@example.com");
}

#[tokio::test]
async fn admin_http_surface_edits_like_a_person_in_the_ui() {
    let (fake, clock) = start(GhlFakeOptions::default()).await;
    let admin = |path: &str| format!("{}/_sim/{path}", fake.base_url());
    let (contact, task) = contact_with_open_task(&fake);

    let done: Value = http()
        .post(admin(&format!("tasks/{task}/complete")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(done["task"]["completed"], true);

    clock.advance(Duration::minutes(1));
    let before = fake.contact_json(&contact).unwrap()["dateUpdated"].clone();
    let tags: Value = http()
        .post(admin(&format!("contacts/{contact}/tags")))
        .json(&json!({"tags": ["trengo:urgent"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        tags["tags"]
            .as_array()
            .unwrap()
            .contains(&json!("trengo:urgent"))
    );
    assert_ne!(
        fake.contact_json(&contact).unwrap()["dateUpdated"],
        before,
        "a tag change moves the contact"
    );

    let note: Value = http()
        .post(admin(&format!("contacts/{contact}/notes")))
        .json(&json!({"body": "first words"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let note_id = note["note"]["id"].as_str().unwrap();
    let edited: Value = http()
        .put(admin(&format!("notes/{note_id}")))
        .json(&json!({"body": "second thoughts"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(edited["note"]["body"], "second thoughts");

    let switched = http()
        .put(admin("switches"))
        .json(&json!({"note_bumps_contact": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(switched.status().as_u16(), 200);
    assert!(fake.switches().note_bumps_contact);

    http()
        .post(admin("faults/burst429"))
        .json(&json!({"count": 1}))
        .send()
        .await
        .unwrap();
    let limited = api(&fake, reqwest::Method::GET, &format!("/contacts/{contact}"))
        .send()
        .await
        .unwrap();
    assert_eq!(limited.status().as_u16(), 429);

    let kinds: Vec<String> = fake
        .webhook_events()
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        kinds,
        vec![
            "TaskComplete",
            "ContactTagUpdate",
            "NoteCreate",
            "NoteUpdate"
        ]
    );
    // None of it was an API request.
    assert_eq!(fake.counter_snapshot().writes, 0);
}

#[tokio::test]
async fn appointment_times_are_naive_in_the_location_zone_unless_switched_off() {
    for (naive, shown) in [
        (true, "2026-03-05 16:00:00"),
        (false, "2026-03-05T15:00:00.000Z"),
    ] {
        let options = GhlFakeOptions {
            switches: GhlSwitches {
                appointment_times_naive: naive,
                ..GhlSwitches::default()
            },
            ..GhlFakeOptions::default()
        };
        let (fake, _) = start(options).await;
        let contact = first_contact(&fake);
        let booked = http()
            .post(format!(
                "{}/_sim/contacts/{contact}/appointments",
                fake.base_url()
            ))
            .json(&json!({"title": "Demo", "startTime": "2026-03-05T15:00:00Z"}))
            .send()
            .await
            .unwrap();
        assert_eq!(booked.status(), 200);
        let (status, _, body) = json_of(
            api(
                &fake,
                reqwest::Method::GET,
                &format!("/contacts/{contact}/appointments"),
            )
            .send()
            .await
            .unwrap(),
        )
        .await;
        assert_eq!(status, 200);
        let demo = body["events"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["title"] == "Demo")
            .unwrap();
        assert_eq!(demo["startTime"], shown, "naive {naive}");
        assert_eq!(demo["appointmentStatus"], "booked");
        assert_eq!(demo["contactId"], contact.as_str());
    }
}

#[tokio::test]
async fn booking_an_appointment_without_a_start_says_how_to_write_one() {
    let (fake, _) = start(GhlFakeOptions::default()).await;
    let error = fake
        .add_appointment(&first_contact(&fake), &json!({"title": "Demo"}))
        .unwrap_err();
    assert!(
        format!("{error:?}").contains("startTime is required"),
        "{error:?}"
    );
}

/// The customer number field's id, and the value the fake shows for it on `contact`, read
/// over HTTP as `GET /contacts/{id}` answers.
async fn customer_number(fake: &GhlFake, contact: &str) -> (String, Value) {
    let field = fake.custom_field_id("contact.customer_number").unwrap();
    let (_, _, body) = json_of(
        api(fake, reqwest::Method::GET, &format!("/contacts/{contact}"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let item = body["contact"]["customFields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["id"] == field.as_str())
        .cloned()
        .unwrap_or(Value::Null);
    (field, item)
}

#[tokio::test]
async fn custom_field_reads_say_field_value_by_default_and_value_when_switched_off() {
    for (switch, key, other) in [
        (true, "fieldValue", "value"),
        (false, "value", "fieldValue"),
    ] {
        let options = GhlFakeOptions {
            switches: GhlSwitches {
                custom_field_reads_say_field_value: switch,
                ..GhlFakeOptions::default().switches
            },
            ..GhlFakeOptions::default()
        };
        let (fake, _) = start(options).await;
        let contact = first_contact(&fake);
        let (_, item) = customer_number(&fake, &contact).await;
        assert!(
            item[key].as_str().unwrap().starts_with("C-"),
            "{switch}: {item}"
        );
        assert!(item.get(other).is_none(), "{switch}: {item}");
        // Search hits read the same way.
        let (_, page) = search(&fake, json!({"locationId": location(), "pageLimit": 100})).await;
        let hit = page["contacts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h["id"] == contact.as_str())
            .unwrap();
        assert!(hit["customFields"][0].get(key).is_some(), "{switch}: {hit}");
    }
}

#[tokio::test]
async fn a_bare_custom_field_key_is_ignored_unless_the_prefix_switch_is_off() {
    for (needs_prefix, lands) in [(true, false), (false, true)] {
        let options = GhlFakeOptions {
            switches: GhlSwitches {
                custom_field_key_needs_prefix: needs_prefix,
                custom_field_reads_say_field_value: false,
                ..GhlFakeOptions::default().switches
            },
            ..GhlFakeOptions::default()
        };
        let (fake, _) = start(options).await;
        let contact = first_contact(&fake);
        for key in ["customer_number", "contact.customer_number"] {
            let value = format!("C-{key}");
            let (status, _, _) = json_of(
                api(&fake, reqwest::Method::PUT, &format!("/contacts/{contact}"))
                    .json(&json!({"customFields": [{"key": key, "field_value": value}]}))
                    .send()
                    .await
                    .unwrap(),
            )
            .await;
            assert_eq!(status, 200);
            let (_, item) = customer_number(&fake, &contact).await;
            let landed = item["value"] == value.as_str();
            let expected = lands || key.starts_with("contact.");
            assert_eq!(
                landed, expected,
                "needs_prefix {needs_prefix}, key {key}: {item}"
            );
        }
    }
}

//! Fault injection and request counting shared by both fakes.
//!
//! Each fake asks the [`FaultInjector`] once per request what to do to it (add latency, answer
//! 5xx, answer 429, drop the connection, garble the body) and renders the answer in its own
//! API's shape. Decisions come from a seeded RNG, so a failing test replays exactly.
//! [`RequestCounters`] count requests by method and route template, and successful writes,
//! so tests can assert what the daemon cost each API.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Response, StatusCode};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

/// What a fake should do wrong, and how often. All rates are fractions in `0.0..=1.0`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// Extra latency added to every request, in milliseconds.
    pub latency_ms: u64,
    /// Additional random latency, uniformly `0..=latency_jitter_ms`, in milliseconds.
    pub latency_jitter_ms: u64,
    /// Fraction of requests answered with a 5xx (500, 502 or 503).
    pub server_error_rate: f64,
    /// Fraction of requests whose connection is dropped before a complete answer.
    pub drop_rate: f64,
    /// Fraction of requests answered 200 with a body that is not valid JSON.
    pub malformed_rate: f64,
    /// Fraction of requests answered 429 regardless of the real budget.
    pub rate_limit_rate: f64,
    /// Fraction of requests served, then answered with structurally wrong JSON: the real
    /// answer with values swapped for other types, nulls, or removed fields.
    pub wrong_shape_rate: f64,
    /// Keys removed from every JSON object of every answer the other faults spare: a field
    /// an API release dropped, or one deterministic wrong shape for a test to replay.
    pub strip_keys: Vec<String>,
    /// Keys whose number values are served as strings in every answer the other faults spare
    /// (`"expires_in": "86399"`): a field an API release changed to a string.
    pub stringify_keys: Vec<String>,
    /// Bytes of trailing whitespace added to every JSON answer the other faults spare: a
    /// still valid but oversized answer (0 = none).
    pub pad_bytes: usize,
    /// Fraction of writes (any method but GET) that are applied, then whose answer is lost
    /// (the connection drops): the client cannot tell whether its write happened.
    pub lost_write_answer_rate: f64,
    /// Fraction of requests answered 502, 503 or 504 with an HTML page, as a proxy or gateway
    /// in front of the API answers (never JSON).
    pub html_error_rate: f64,
}

/// One decision for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Serve the request normally.
    None,
    /// Answer with this 5xx status.
    ServerError(u16),
    /// Answer 429 in the API's own shape.
    RateLimited,
    /// Drop the connection: the client sees a broken response.
    Drop,
    /// Serve the request, then replace the body with garbage.
    Malformed,
    /// Serve the request, then bend the JSON answer out of shape (see [`wrong_shape_response`]);
    /// the number seeds the bending.
    WrongShape(u64),
    /// Serve the request, then reshape the JSON answer as [`Faults::strip_keys`],
    /// [`Faults::stringify_keys`] and [`Faults::pad_bytes`] say (see [`reshape_response`]).
    Reshape,
    /// Serve the request (a write happens), then drop the connection before the answer.
    LostAnswer,
    /// Answer with this 5xx status and an HTML page (see [`html_error_response`]).
    HtmlError(u16),
}

/// Decides, per request, which fault (if any) to inject.
#[derive(Debug)]
pub struct FaultInjector {
    // std mutexes: held only for a few arithmetic steps, never across an await.
    faults: Mutex<Faults>,
    rng: Mutex<StdRng>,
    burst_429: Mutex<u32>,
    lose_writes: Mutex<u32>,
}

impl FaultInjector {
    /// An injector with no faults, deterministic from `seed`.
    pub fn new(seed: u64) -> Self {
        Self {
            faults: Mutex::new(Faults::default()),
            rng: Mutex::new(StdRng::seed_from_u64(seed)),
            burst_429: Mutex::new(0),
            lose_writes: Mutex::new(0),
        }
    }

    /// Replaces the fault settings.
    pub fn set(&self, faults: Faults) {
        *self.faults.lock().unwrap_or_else(|e| e.into_inner()) = faults;
    }

    /// The current fault settings.
    pub fn get(&self) -> Faults {
        self.faults
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Makes the next `n` requests answer 429, whatever the budget says.
    pub fn burst_429(&self, n: u32) {
        *self.burst_429.lock().unwrap_or_else(|e| e.into_inner()) = n;
    }

    /// Makes the next `n` writes (any method but GET) happen, then lose their answers.
    pub fn lose_next_write_answers(&self, n: u32) {
        *self.lose_writes.lock().unwrap_or_else(|e| e.into_inner()) = n;
    }

    /// [`FaultInjector::decide`] for a request of `method` to `path`: writes may also lose
    /// their answer after being applied. Searches (`POST …/search`) are reads.
    pub fn decide_for(&self, method: &str, path: &str) -> (Duration, Fault) {
        let (latency, fault) = self.decide();
        let read =
            method.eq_ignore_ascii_case("GET") || path.trim_end_matches('/').ends_with("/search");
        if read || fault != Fault::None {
            return (latency, fault);
        }
        {
            let mut lose = self.lose_writes.lock().unwrap_or_else(|e| e.into_inner());
            if *lose > 0 {
                *lose -= 1;
                return (latency, Fault::LostAnswer);
            }
        }
        let rate = self.get().lost_write_answer_rate;
        let mut rng = self.rng.lock().unwrap_or_else(|e| e.into_inner());
        if hit(&mut rng, rate) {
            return (latency, Fault::LostAnswer);
        }
        (latency, fault)
    }

    /// The latency to add to this request and the fault to inject into it.
    pub fn decide(&self) -> (Duration, Fault) {
        let faults = self.get();
        let mut rng = self.rng.lock().unwrap_or_else(|e| e.into_inner());
        let jitter = if faults.latency_jitter_ms > 0 {
            rng.gen_range(0..=faults.latency_jitter_ms)
        } else {
            0
        };
        let latency = Duration::from_millis(faults.latency_ms + jitter);
        {
            let mut burst = self.burst_429.lock().unwrap_or_else(|e| e.into_inner());
            if *burst > 0 {
                *burst -= 1;
                return (latency, Fault::RateLimited);
            }
        }
        let fault = if hit(&mut rng, faults.server_error_rate) {
            let statuses = [500, 502, 503];
            Fault::ServerError(statuses[rng.gen_range(0..statuses.len())])
        } else if hit(&mut rng, faults.drop_rate) {
            Fault::Drop
        } else if hit(&mut rng, faults.rate_limit_rate) {
            Fault::RateLimited
        } else if hit(&mut rng, faults.malformed_rate) {
            Fault::Malformed
        } else if hit(&mut rng, faults.wrong_shape_rate) {
            Fault::WrongShape(rng.r#gen())
        } else if hit(&mut rng, faults.html_error_rate) {
            let statuses = [502, 503, 504];
            Fault::HtmlError(statuses[rng.gen_range(0..statuses.len())])
        } else if !faults.strip_keys.is_empty()
            || !faults.stringify_keys.is_empty()
            || faults.pad_bytes > 0
        {
            Fault::Reshape
        } else {
            Fault::None
        };
        (latency, fault)
    }
}

fn hit(rng: &mut StdRng, rate: f64) -> bool {
    rate > 0.0 && rng.gen_bool(rate.clamp(0.0, 1.0))
}

/// A response whose body breaks off: the connection is torn down mid-answer, which a client
/// sees as a dropped connection.
pub fn dropped_response() -> Response<Body> {
    let stream = futures::stream::once(async {
        Err::<axum::body::Bytes, std::io::Error>(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "sim: connection dropped by fault injection",
        ))
    });
    let mut response = Response::new(Body::from_stream(stream));
    *response.status_mut() = StatusCode::OK;
    response
}

/// An HTML error page with `status`, as nginx or a cloud load balancer answers when the API
/// behind it is down or slow (502, 503, 504): no JSON at all.
pub fn html_error_response(status: u16) -> Response<Body> {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
    let reason = code.canonical_reason().unwrap_or("Error");
    let page = format!(
        "<html>\r\n<head><title>{status} {reason}</title></head>\r\n<body>\r\n\
         <center><h1>{status} {reason}</h1></center>\r\n<hr><center>nginx</center>\r\n\
         </body>\r\n</html>\r\n"
    );
    let mut response = Response::new(Body::from(page));
    *response.status_mut() = code;
    response.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("text/html"),
    );
    response
}

/// A 200 answer whose body is not valid JSON (a truncated object), as proxies and
/// half-deployed backends produce.
pub fn malformed_response() -> Response<Body> {
    let mut response = Response::new(Body::from("{\"data\": [{\"id\": 12, \"stat"));
    response.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/json"),
    );
    response
}

/// `response` with its JSON body bent out of shape, deterministically from `seed`: about a
/// third of the values (at least one) become another type (null, a number, a string, an
/// array, an object) or, inside objects, disappear. Status and headers stay, except the length.
/// A body that is not JSON is returned as it was.
///
/// A swapped value is always of another JSON type than the one it replaces: a list swapped for
/// `[]` or a flag for `true` would be a well-formed answer that lies (a ticket without its
/// labels, a task completed), which no client can tell from the truth. This fault models
/// answers a careful client *can* refuse.
pub async fn wrong_shape_response(response: Response<Body>, seed: u64) -> Response<Body> {
    let (mut parts, body) = response.into_parts();
    // The fakes' answers are small; the cap only guards against a runaway body.
    let Ok(bytes) = axum::body::to_bytes(body, 16 * 1024 * 1024).await else {
        return dropped_response();
    };
    let Ok(mut value) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    let mut rng = StdRng::seed_from_u64(seed);
    if !bend(&mut value, &mut rng, 0) {
        value = wrong_value(&value, &mut rng);
    }
    parts.headers.remove(axum::http::header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(value.to_string()))
}

/// `response` with its JSON body reshaped at any depth: `faults.strip_keys` removed from every
/// object, the number values of `faults.stringify_keys` turned into strings, and
/// `faults.pad_bytes` of whitespace appended. Status and headers stay, except the length. A
/// body that is not JSON is returned as it was.
pub async fn reshape_response(response: Response<Body>, faults: &Faults) -> Response<Body> {
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 16 * 1024 * 1024).await else {
        return dropped_response();
    };
    let Ok(mut value) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    reshape(&mut value, faults);
    parts.headers.remove(axum::http::header::CONTENT_LENGTH);
    let mut text = value.to_string();
    text.extend(std::iter::repeat_n(' ', faults.pad_bytes));
    Response::from_parts(parts, Body::from(text))
}

fn reshape(value: &mut serde_json::Value, faults: &Faults) {
    use serde_json::Value;
    match value {
        Value::Object(map) => {
            map.retain(|k, _| !faults.strip_keys.contains(k));
            for (key, child) in map.iter_mut() {
                if faults.stringify_keys.contains(key) && child.is_number() {
                    *child = Value::String(child.to_string());
                } else {
                    reshape(child, faults);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| reshape(v, faults)),
        _ => {}
    }
}

/// Bends values below `value`; whether anything was bent.
fn bend(value: &mut serde_json::Value, rng: &mut StdRng, depth: usize) -> bool {
    use serde_json::Value;
    let mut bent = false;
    match value {
        Value::Object(map) => {
            let keys: Vec<String> = map.keys().cloned().collect();
            for key in keys {
                if rng.gen_bool(0.15) {
                    map.remove(&key);
                    bent = true;
                } else if let Some(child) = map.get_mut(&key) {
                    bent |= bend_or_swap(child, rng, depth);
                }
            }
        }
        Value::Array(items) => {
            for child in items.iter_mut() {
                bent |= bend_or_swap(child, rng, depth);
            }
        }
        _ => {}
    }
    bent
}

fn bend_or_swap(child: &mut serde_json::Value, rng: &mut StdRng, depth: usize) -> bool {
    if rng.gen_bool(0.2) {
        *child = wrong_value(child, rng);
        true
    } else {
        depth < 8 && bend(child, rng, depth + 1)
    }
}

/// A value to put in place of `original`, of another JSON type than it.
fn wrong_value(original: &serde_json::Value, rng: &mut StdRng) -> serde_json::Value {
    use serde_json::{Value, json};
    let same_type = |v: &Value| std::mem::discriminant(v) == std::mem::discriminant(original);
    loop {
        let value = match rng.gen_range(0..7) {
            0 => Value::Null,
            1 => json!(rng.gen_range(-5i64..100_000)),
            2 => json!(-1.5),
            3 => json!("not what you expected"),
            4 => json!([]),
            5 => json!({ "unexpected": true }),
            _ => json!(true),
        };
        if !same_type(&value) {
            return value;
        }
    }
}

/// What goes wrong with webhook deliveries: Trengo documents no retries, ordering or
/// deduplication (trengo-api.md §10.4 \[U\]), and GHL retries up to 12 times
/// (ghl-api.md §8.1 \[3p\]), so a receiver meets lost, repeated and reordered events.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhookFaults {
    /// Fraction of deliveries never sent.
    pub loss_rate: f64,
    /// Fraction of deliveries sent twice.
    pub duplicate_rate: f64,
    /// Deliveries go out in swapped pairs: each is held back until the next one has gone
    /// (the last one waits for a successor).
    pub reorder: bool,
}

/// Applies [`WebhookFaults`] to a fake's outgoing deliveries, deterministically from a seed.
#[derive(Debug)]
pub struct WebhookShaper<T> {
    // std mutexes: a few steps each, never held across an await.
    faults: Mutex<WebhookFaults>,
    rng: Mutex<StdRng>,
    held: Mutex<Option<T>>,
}

impl<T: Clone> WebhookShaper<T> {
    /// A shaper that changes nothing until told, deterministic from `seed`.
    pub fn new(seed: u64) -> Self {
        Self {
            faults: Mutex::new(WebhookFaults::default()),
            rng: Mutex::new(StdRng::seed_from_u64(seed ^ 0x005e_ed0f_1a17)),
            held: Mutex::new(None),
        }
    }

    /// Replaces the settings. Turning reordering off releases a held delivery next time.
    pub fn set(&self, faults: WebhookFaults) {
        *self.faults.lock().unwrap_or_else(|e| e.into_inner()) = faults;
    }

    /// `items` in the order (and number) they are to be sent, and those lost.
    pub fn shape(&self, items: Vec<T>) -> (Vec<T>, Vec<T>) {
        let faults = self
            .faults
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let mut rng = self.rng.lock().unwrap_or_else(|e| e.into_inner());
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        let (mut send, mut lost) = (Vec::new(), Vec::new());
        for item in items {
            if hit(&mut rng, faults.loss_rate) {
                lost.push(item);
                continue;
            }
            let copies = if hit(&mut rng, faults.duplicate_rate) {
                2
            } else {
                1
            };
            for _ in 0..copies {
                if !faults.reorder {
                    send.extend(held.take());
                    send.push(item.clone());
                } else if let Some(earlier) = held.take() {
                    send.push(item.clone());
                    send.push(earlier);
                } else {
                    *held = Some(item.clone());
                }
            }
        }
        (send, lost)
    }
}

/// Counts of requests by method and route template, and of successful writes.
#[derive(Debug, Default)]
pub struct RequestCounters {
    inner: Mutex<CounterState>,
}

#[derive(Debug, Default, Clone)]
struct CounterState {
    by_route: BTreeMap<String, u64>,
    writes: u64,
}

/// A copy of the counters at one moment.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct CounterSnapshot {
    /// Requests by `"METHOD /route/{template}"`.
    pub by_route: BTreeMap<String, u64>,
    /// Requests in all.
    pub total: u64,
    /// Requests that changed state and were answered 2xx.
    pub writes: u64,
}

impl CounterSnapshot {
    /// Requests for one `"METHOD /route/{template}"` key.
    pub fn count(&self, key: &str) -> u64 {
        self.by_route.get(key).copied().unwrap_or(0)
    }
}

impl RequestCounters {
    /// Records one request to `route` (a template such as `/api/v2/tickets/{id}`).
    pub fn record(&self, method: &str, route: &str) {
        let mut state = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        *state
            .by_route
            .entry(format!("{method} {route}"))
            .or_default() += 1;
    }

    /// Records one successful state-changing request.
    pub fn record_write(&self) {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).writes += 1;
    }

    /// The counters as they stand.
    pub fn snapshot(&self) -> CounterSnapshot {
        let state = self.inner.lock().unwrap_or_else(|e| e.into_inner()).clone();
        CounterSnapshot {
            total: state.by_route.values().sum(),
            by_route: state.by_route,
            writes: state.writes,
        }
    }

    /// Sets every counter back to zero.
    pub fn reset(&self) {
        *self.inner.lock().unwrap_or_else(|e| e.into_inner()) = CounterState::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_injects_the_same_faults() {
        let faults = Faults {
            server_error_rate: 0.3,
            drop_rate: 0.2,
            ..Faults::default()
        };
        let a = FaultInjector::new(7);
        let b = FaultInjector::new(7);
        a.set(faults.clone());
        b.set(faults);
        let seq_a: Vec<_> = (0..50).map(|_| a.decide().1).collect();
        let seq_b: Vec<_> = (0..50).map(|_| b.decide().1).collect();
        assert_eq!(seq_a, seq_b);
        assert!(seq_a.iter().any(|f| *f != Fault::None));
    }

    #[test]
    fn lost_answers_hit_only_writes_and_exactly_as_many_as_asked() {
        let injector = FaultInjector::new(1);
        injector.lose_next_write_answers(2);
        assert_eq!(injector.decide_for("GET", "/x").1, Fault::None);
        assert_eq!(
            injector.decide_for("POST", "/contacts/search").1,
            Fault::None
        );
        assert_eq!(injector.decide_for("POST", "/x").1, Fault::LostAnswer);
        assert_eq!(injector.decide_for("PUT", "/x").1, Fault::LostAnswer);
        assert_eq!(injector.decide_for("POST", "/x").1, Fault::None);
    }

    #[test]
    fn webhook_shaper_loses_repeats_and_swaps_as_told() {
        let shaper = WebhookShaper::new(3);
        assert_eq!(shaper.shape(vec![1, 2, 3]), (vec![1, 2, 3], vec![]));
        shaper.set(WebhookFaults {
            reorder: true,
            ..WebhookFaults::default()
        });
        assert_eq!(shaper.shape(vec![1, 2, 3]).0, vec![2, 1]);
        assert_eq!(shaper.shape(vec![4]).0, vec![4, 3]);
        shaper.set(WebhookFaults {
            duplicate_rate: 1.0,
            ..WebhookFaults::default()
        });
        assert_eq!(shaper.shape(vec![5]).0, vec![5, 5]);
        shaper.set(WebhookFaults {
            loss_rate: 1.0,
            ..WebhookFaults::default()
        });
        assert_eq!(shaper.shape(vec![6]), (vec![], vec![6]));
    }

    #[test]
    fn burst_answers_exactly_n_requests_with_429() {
        let injector = FaultInjector::new(1);
        injector.burst_429(3);
        let seq: Vec<_> = (0..5).map(|_| injector.decide().1).collect();
        assert_eq!(
            seq,
            vec![
                Fault::RateLimited,
                Fault::RateLimited,
                Fault::RateLimited,
                Fault::None,
                Fault::None
            ]
        );
    }

    #[tokio::test]
    async fn wrong_shape_bends_json_and_keeps_the_status() {
        let original = serde_json::json!({
            "data": [{"id": 1, "status": "OPEN", "labels": [{"id": 2, "name": "x"}]}],
            "meta": {"current_page": 1, "last_page": 1}
        });
        let response = Response::new(Body::from(original.to_string()));
        let bent = wrong_shape_response(response, 9).await;
        assert_eq!(bent.status(), StatusCode::OK);
        let bytes = axum::body::to_bytes(bent.into_body(), usize::MAX)
            .await
            .unwrap();
        let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_ne!(value, original);
    }

    #[test]
    fn a_swapped_value_is_never_of_the_type_it_replaces() {
        use serde_json::json;
        let mut rng = StdRng::seed_from_u64(5);
        for original in [
            json!(null),
            json!(7),
            json!("text"),
            json!([{"id": 1}]),
            json!({"id": 1}),
            json!(false),
        ] {
            for _ in 0..200 {
                let swapped = wrong_value(&original, &mut rng);
                assert_ne!(
                    std::mem::discriminant(&swapped),
                    std::mem::discriminant(&original),
                    "{original} became {swapped}"
                );
            }
        }
    }

    #[test]
    fn counters_group_by_method_and_route() {
        let counters = RequestCounters::default();
        counters.record("GET", "/tickets");
        counters.record("GET", "/tickets");
        counters.record("POST", "/tickets/{id}/close");
        counters.record_write();
        let snap = counters.snapshot();
        assert_eq!(snap.count("GET /tickets"), 2);
        assert_eq!(snap.total, 3);
        assert_eq!(snap.writes, 1);
    }
}

//! HTTP plumbing of the Trengo fake in Laravel's manners: JSON-or-form request bodies,
//! bracketed query arrays, error bodies (§11) and the two paginators (§3.1).

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::model::SimError;

/// An error answer: a status and a Laravel-shaped JSON body.
#[derive(Debug)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// JSON body.
    pub body: Value,
}

impl ApiError {
    /// 401 `{"message":"Unauthenticated."}` (§11).
    pub fn unauthenticated() -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            body: json!({"message": "Unauthenticated."}),
        }
    }
}

impl From<SimError> for ApiError {
    fn from(error: SimError) -> Self {
        match &error {
            SimError::NotFound { .. } => Self {
                status: StatusCode::NOT_FOUND,
                body: json!({"message": error.to_string()}),
            },
            SimError::Invalid { field, message } => Self {
                status: StatusCode::UNPROCESSABLE_ENTITY,
                body: json!({
                    "message": "The given data was invalid.",
                    "errors": {field.as_str(): [message]},
                }),
            },
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, axum::Json(self.body)).into_response()
    }
}

/// A 200 answer with an empty body, as several Trengo writes give (§11).
pub fn empty_ok() -> Response {
    StatusCode::OK.into_response()
}

/// A request body read as Laravel reads it: JSON or `application/x-www-form-urlencoded`.
/// A body that does not parse reads as empty, so the validator answers 422 as Laravel does.
#[derive(Debug, Default, Clone)]
pub struct Fields(pub Map<String, Value>);

impl<S: Send + Sync> FromRequest<S> for Fields {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_form = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|_| ApiError {
                status: StatusCode::BAD_REQUEST,
                body: json!({"message": "The request body could not be read."}),
            })?;
        Ok(Self::parse(&bytes, is_form))
    }
}

impl Fields {
    /// Parses `bytes` as a form when `is_form`, else as a JSON object.
    pub fn parse(bytes: &[u8], is_form: bool) -> Self {
        if is_form {
            let mut map = Map::new();
            for (key, value) in url::form_urlencoded::parse(bytes) {
                if let Some(name) = key.strip_suffix("[]") {
                    let entry = map
                        .entry(name.to_owned())
                        .or_insert_with(|| Value::Array(Vec::new()));
                    if let Value::Array(items) = entry {
                        items.push(Value::String(value.into_owned()));
                    }
                } else {
                    map.insert(key.into_owned(), Value::String(value.into_owned()));
                }
            }
            return Self(map);
        }
        match serde_json::from_slice::<Value>(bytes) {
            Ok(Value::Object(map)) => Self(map),
            _ => Self::default(),
        }
    }

    fn present(&self, key: &str) -> Option<&Value> {
        match self.0.get(key) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s.is_empty() => None,
            Some(value) => Some(value),
        }
    }

    /// An optional integer; numeric strings count, as forms carry everything as strings.
    pub fn int(&self, key: &str) -> Result<Option<i64>, SimError> {
        match self.present(key) {
            None => Ok(None),
            Some(Value::Number(n)) => n.as_i64().map(Some).ok_or_else(|| not_integer(key)),
            Some(Value::String(s)) => s.trim().parse().map(Some).map_err(|_| not_integer(key)),
            Some(_) => Err(not_integer(key)),
        }
    }

    /// A required integer.
    pub fn required_int(&self, key: &str) -> Result<i64, SimError> {
        self.int(key)?.ok_or_else(|| SimError::required(key))
    }

    /// An optional string; numbers are read as their text.
    pub fn text(&self, key: &str) -> Result<Option<String>, SimError> {
        match self.present(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            Some(Value::Bool(b)) => Ok(Some(b.to_string())),
            Some(_) => Err(SimError::invalid(
                key,
                format!("The {} must be a string.", key.replace('_', " ")),
            )),
        }
    }

    /// A required, non-blank string.
    pub fn required_text(&self, key: &str) -> Result<String, SimError> {
        self.text(key)?
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| SimError::required(key))
    }

    /// A boolean as Laravel's `boolean` rule reads it: true, 1, "1", "true".
    pub fn flag(&self, key: &str) -> bool {
        match self.present(key) {
            Some(Value::Bool(b)) => *b,
            Some(Value::Number(n)) => n.as_i64() == Some(1),
            Some(Value::String(s)) => matches!(s.as_str(), "1" | "true" | "on" | "yes"),
            _ => false,
        }
    }
}

fn not_integer(key: &str) -> SimError {
    SimError::invalid(
        key,
        format!("The {} must be an integer.", key.replace('_', " ")),
    )
}

/// A query string as ordered pairs, so `users[]=1&users[]=2` keeps both values.
#[derive(Debug, Default, Clone)]
pub struct QueryPairs(pub Vec<(String, String)>);

impl QueryPairs {
    /// Parses a raw query string.
    pub fn parse(raw: Option<&str>) -> Self {
        Self(
            url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    /// The first value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Every integer value of an array parameter (`name[]` or `name[0]`); `None` when the
    /// parameter is absent, so "no filter" differs from "filter matching nothing".
    pub fn ints(&self, name: &str) -> Option<Vec<i64>> {
        let prefix = format!("{name}[");
        let values: Vec<&str> = self
            .0
            .iter()
            .filter(|(k, _)| k.starts_with(&prefix) && k.ends_with(']'))
            .map(|(_, v)| v.as_str())
            .collect();
        if values.is_empty() {
            return None;
        }
        Some(
            values
                .iter()
                .filter_map(|v| v.trim().parse().ok())
                .collect(),
        )
    }

    /// The 1-based `page`; anything unreadable is page 1, as Laravel treats it.
    pub fn page(&self) -> usize {
        self.get("page")
            .and_then(|p| p.trim().parse::<usize>().ok())
            .filter(|p| *p >= 1)
            .unwrap_or(1)
    }

    /// This query with `page` set to `page` (other parameters kept in order).
    fn with_page(&self, page: usize) -> String {
        let mut pairs: Vec<(String, String)> = self
            .0
            .iter()
            .filter(|(k, _)| k != "page")
            .cloned()
            .collect();
        pairs.push(("page".to_owned(), page.to_string()));
        let mut serializer = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in &pairs {
            serializer.append_pair(k, v);
        }
        serializer.finish()
    }
}

/// Laravel's simple paginator (§3.1 \[OBS\]: `/tickets`, `/contacts`): `links.last` null and no
/// `last_page` or `total` in `meta`; `links.next` is null only on the last page.
/// Only the items of the asked page are rendered.
///
/// The page links carry the request's filters when `keep_filters`, and only `?page=N`
/// otherwise (the pessimistic reading of trengo-api.md §3.1, whose captured links show no
/// filters: a client following them verbatim would list the whole mailbox from page 2 on).
pub fn simple_page<T>(
    items: Vec<T>,
    query: &QueryPairs,
    per_page: usize,
    path: &str,
    keep_filters: bool,
    render: impl Fn(T) -> Value,
) -> Value {
    let per_page = per_page.max(1);
    let page = query.page();
    let link = |n: usize| {
        if keep_filters {
            format!("{path}?{}", query.with_page(n))
        } else {
            format!("{path}?page={n}")
        }
    };
    let skip = (page - 1).saturating_mul(per_page);
    let has_more = items.len() > skip.saturating_add(per_page);
    let data: Vec<Value> = items
        .into_iter()
        .skip(skip)
        .take(per_page)
        .map(render)
        .collect();
    let (from, to) = if data.is_empty() {
        (Value::Null, Value::Null)
    } else {
        (json!(skip + 1), json!(skip + data.len()))
    };
    json!({
        "data": data,
        "links": {
            "first": link(1),
            "last": null,
            "prev": (page > 1).then(|| link(page - 1)),
            "next": has_more.then(|| link(page + 1)),
        },
        "meta": {
            "current_page": page,
            "from": from,
            "path": path,
            "per_page": per_page,
            "to": to,
        },
    })
}

/// Laravel's full paginator (§3.1: seen on `/webhooks` with `per_page` 999).
pub fn full_page<T>(
    items: Vec<T>,
    query: &QueryPairs,
    per_page: usize,
    path: &str,
    render: impl Fn(T) -> Value,
) -> Value {
    let per_page = per_page.max(1);
    let total = items.len();
    let last_page = total.div_ceil(per_page).max(1);
    let page = query.page();
    let skip = (page - 1).saturating_mul(per_page);
    let data: Vec<Value> = items
        .into_iter()
        .skip(skip)
        .take(per_page)
        .map(render)
        .collect();
    let (from, to) = if data.is_empty() {
        (Value::Null, Value::Null)
    } else {
        (json!(skip + 1), json!(skip + data.len()))
    };
    let url = |p: usize| format!("{path}?{}", query.with_page(p));
    let mut meta_links = vec![json!({
        "url": (page > 1).then(|| url(page - 1)), "label": "&laquo; Previous", "active": false
    })];
    for p in 1..=last_page {
        meta_links.push(json!({"url": url(p), "label": p.to_string(), "active": p == page}));
    }
    meta_links.push(json!({
        "url": (page < last_page).then(|| url(page + 1)), "label": "Next &raquo;", "active": false
    }));
    json!({
        "data": data,
        "links": {
            "first": url(1),
            "last": url(last_page),
            "prev": (page > 1).then(|| url(page - 1)),
            "next": (page < last_page).then(|| url(page + 1)),
        },
        "meta": {
            "current_page": page,
            "from": from,
            "last_page": last_page,
            "links": meta_links,
            "path": path,
            "per_page": per_page,
            "to": to,
            "total": total,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_bodies_read_like_json_bodies() {
        let form = Fields::parse(b"label_id=12&internal_note=1", true);
        assert_eq!(form.required_int("label_id").unwrap(), 12);
        assert!(form.flag("internal_note"));
        let json = Fields::parse(br#"{"label_id": 12, "internal_note": true}"#, false);
        assert_eq!(json.required_int("label_id").unwrap(), 12);
        assert!(json.flag("internal_note"));
    }

    #[test]
    fn a_missing_field_gives_laravels_sentence() {
        let err = Fields::default().required_int("label_id").unwrap_err();
        assert_eq!(err.to_string(), "The label id field is required.");
    }

    #[test]
    fn bracket_arrays_keep_every_value() {
        let q = QueryPairs::parse(Some("users[]=1&users[]=2&page=3"));
        assert_eq!(q.ints("users"), Some(vec![1, 2]));
        assert_eq!(q.ints("labels"), None);
        assert_eq!(q.page(), 3);
    }

    #[test]
    fn simple_page_has_no_total_and_ends_with_null_next() {
        let items: Vec<Value> = (0..30).map(|i| json!(i)).collect();
        let q = QueryPairs::parse(Some("status=OPEN&page=2"));
        let page = simple_page(items, &q, 25, "http://x/api/v2/tickets", true, |v| v);
        assert_eq!(page["data"].as_array().unwrap().len(), 5);
        assert!(page["links"]["next"].is_null());
        assert!(page["meta"].get("total").is_none());
        assert_eq!(
            page["links"]["prev"],
            "http://x/api/v2/tickets?status=OPEN&page=1"
        );
    }
}

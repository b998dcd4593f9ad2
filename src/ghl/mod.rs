//! The GoHighLevel API v2 client (`services.leadconnectorhq.com`, `Version: 2021-07-28`).
//!
//! Every call the sync needs, shaped as the official OpenAPI files in `specs/ghl/` define
//! them: contact search (cursor-paged with `searchAfter`), duplicate lookup, get, create,
//! upsert, update; tasks list/get/create/update/`completed` and the location task search
//! (skip/limit); notes list/create/update; tags add/remove; a contact's appointments; custom
//! field definitions, and custom field values on contacts (written by id or key, read as
//! `value` or `fieldValue`); users.
//! Authentication is a private integration token or rotating OAuth ([`auth`]), whose first
//! tokens come from installing the marketplace app ([`install`]).

pub mod auth;
pub mod install;
pub mod models;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use async_stream::try_stream;
use chrono::{DateTime, Utc};
use futures::Stream;
use reqwest::Method;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use url::Url;

use crate::api::endpoint::ghl_rate_headers;
use crate::api::{Api, ApiError, Budget, Endpoint, EndpointConfig, Reply, Request, RetryPolicy};
use crate::clock::SharedClock;

pub use auth::{GhlAuth, OAuthTokens, TokenVault, VaultError};
pub use models::{
    Appointment, Contact, ContactFields, CustomField, CustomFieldInput, CustomFieldValue, Location,
    NewTask, Note, NoteFields, Outcome, Task, TaskSearch, TaskUpdate, User, time_in_zone,
};

use auth::TokenSource;
use models::{
    AppointmentsAnswer, ContactAnswer, CustomFieldsAnswer, DuplicateAnswer, LocationAnswer,
    NoteAnswer, NotesAnswer, SearchAnswer, TagsAnswer, TaskAnswer, TasksAnswer, UpsertAnswer,
    UsersAnswer,
};

/// The API version every contacts/locations call sends (ghl-api.md §1.1 \[spec\]).
pub const API_VERSION: &str = "2021-07-28";

/// Where and how to reach GHL.
#[derive(Debug, Clone)]
pub struct GhlClientConfig {
    /// Base URL, e.g. `https://services.leadconnectorhq.com`.
    pub base_url: Url,
    /// The location (sub-account) every call is scoped to.
    pub location_id: String,
    /// Credentials.
    pub auth: GhlAuth,
    /// OAuth token endpoint for refreshes (default `{base_url}/oauth/token`;
    /// `ghl.oauth.token_url` in the configuration).
    pub token_url: Url,
    /// `Version` header (default `2021-07-28`).
    pub version: String,
    /// Per-request timeout (default 30 s).
    pub timeout: Duration,
    /// Retry policy for transient failures.
    pub retry: RetryPolicy,
    /// Contacts per search page (`pageLimit`, at most 500; default 100).
    pub search_page_limit: u32,
    /// Tasks per task-search page (`limit`; default 100, GHL's default is 25).
    pub task_page_limit: u32,
}

impl GhlClientConfig {
    /// A configuration with the defaults above.
    pub fn new(base_url: Url, location_id: impl Into<String>, auth: GhlAuth) -> Self {
        let token_url = Url::parse(&format!(
            "{}/oauth/token",
            base_url.as_str().trim_end_matches('/')
        ))
        .unwrap_or_else(|_| base_url.clone());
        Self {
            token_url,
            base_url,
            location_id: location_id.into(),
            auth,
            version: API_VERSION.to_string(),
            timeout: Duration::from_secs(30),
            retry: RetryPolicy::default(),
            search_page_limit: 100,
            task_page_limit: 100,
        }
    }
}

/// The upsert's answer: the contact and whether it was created.
#[derive(Debug, Clone, PartialEq)]
pub struct Upserted {
    /// The contact as stored.
    pub contact: Contact,
    /// True when GHL created it, false when it matched an existing one.
    pub created: bool,
}

/// The GHL client. Cheap to clone; clones share the budget and the OAuth token state.
#[derive(Debug, Clone)]
pub struct GhlClient {
    endpoint: Endpoint,
    tokens: Arc<TokenSource>,
    location_id: String,
    search_page_limit: u32,
    task_page_limit: u32,
}

impl GhlClient {
    /// A client for `config`, drawing on `budget` (one per location and credential).
    pub fn new(
        config: GhlClientConfig,
        clock: SharedClock,
        budget: Arc<Budget>,
    ) -> Result<Self, ApiError> {
        let version = HeaderValue::from_str(&config.version).map_err(|_| ApiError::Config {
            api: Api::Ghl,
            message: format!(
                "ghl.version {:?} is not a valid header value; use {API_VERSION}",
                config.version
            ),
        })?;
        let mut headers = HeaderMap::new();
        headers.insert(HeaderName::from_static("version"), version);
        let auth_hint = match &config.auth {
            GhlAuth::PrivateToken(_) => {
                "check ghl.token / TRENGO_SYNC__GHL__TOKEN (a private integration token of this location with the contacts and tasks scopes), then run `trengo-sync check`"
            }
            GhlAuth::OAuth { .. } => {
                "the OAuth access token was refused even after a refresh; check the app's scopes and that it is installed on this location, or install it again with `trengo-sync auth ghl`"
            }
        };
        let endpoint = Endpoint::new(
            EndpointConfig {
                api: Api::Ghl,
                base_url: config.base_url.clone(),
                timeout: config.timeout,
                headers,
                retry: config.retry,
                auth_hint: auth_hint.to_string(),
                rate_headers: ghl_rate_headers,
                secret_answers: false,
            },
            budget.clone(),
            clock.clone(),
        )?;
        let oauth_endpoint = Endpoint::new(
            EndpointConfig {
                api: Api::Ghl,
                base_url: config.base_url,
                timeout: config.timeout,
                headers: HeaderMap::new(),
                retry: config.retry,
                auth_hint: "check ghl.oauth.client_id and ghl.oauth.client_secret".to_string(),
                rate_headers: ghl_rate_headers,
                // /oauth/token answers with the tokens themselves.
                secret_answers: true,
            },
            budget,
            clock.clone(),
        )?;
        Ok(Self {
            endpoint,
            tokens: Arc::new(TokenSource::new(
                config.auth,
                oauth_endpoint,
                config.token_url,
                clock,
            )),
            location_id: config.location_id,
            search_page_limit: config.search_page_limit.clamp(1, 500),
            task_page_limit: config.task_page_limit.max(1),
        })
    }

    /// The budget this client draws on.
    pub fn budget(&self) -> &Arc<Budget> {
        self.endpoint.budget()
    }

    /// The location every call is scoped to.
    pub fn location_id(&self) -> &str {
        &self.location_id
    }

    /// Sends with the current bearer; on a 401 with OAuth, refreshes once and sends once more
    /// (a 401 means the server did nothing, so even a create may be re-sent). A second 401 is
    /// returned as [`ApiError::Auth`].
    async fn send(&self, request: Request) -> Result<Reply, ApiError> {
        let token = self.tokens.bearer().await?;
        match self.endpoint.send(&request, Some(&token)).await {
            Err(ApiError::Auth { status: 401, .. }) if self.tokens.is_oauth() => {
                tracing::info!(path = %request.path, "GHL answered 401; refreshing the OAuth token once");
                let fresh = self.tokens.after_rejection(&token).await?;
                self.endpoint.send(&request, Some(&fresh)).await
            }
            other => other,
        }
    }

    async fn send_as<T: DeserializeOwned>(&self, request: Request) -> Result<T, ApiError> {
        self.send(request).await?.json()
    }

    // ----- contacts -----

    /// `GET /contacts/{contactId}`.
    pub async fn contact(&self, contact: &str) -> Result<Contact, ApiError> {
        let answer: ContactAnswer = self
            .send_as(Request::get(format!("/contacts/{}", seg(contact))))
            .await?;
        Ok(answer.contact)
    }

    /// `GET /contacts/search/duplicate?locationId&email&number`: the contact GHL considers the
    /// same person, if any.
    pub async fn find_duplicate(
        &self,
        email: Option<&str>,
        phone: Option<&str>,
    ) -> Result<Option<Contact>, ApiError> {
        let mut request =
            Request::get("/contacts/search/duplicate").query("locationId", &self.location_id);
        if let Some(email) = email {
            request = request.query("email", email);
        }
        if let Some(phone) = phone {
            request = request.query("number", phone);
        }
        let answer: DuplicateAnswer = self.send_as(request).await?;
        Ok(answer.contact)
    }

    /// `POST /contacts/` (`CreateContactDto`, `locationId` added). Never retried blindly.
    pub async fn create_contact(&self, fields: &ContactFields) -> Result<Contact, ApiError> {
        let body = self.with_location(fields)?;
        let answer: ContactAnswer = self
            .send_as(
                Request::new(Method::POST, "/contacts/")
                    .json(body)
                    .create_once(),
            )
            .await?;
        Ok(answer.contact)
    }

    /// `POST /contacts/upsert` (`UpsertContactDto`). It may create, so it is never retried
    /// blindly either.
    ///
    /// An upsert with a phone but no e-mail has been answered 422 (ghl-api.md §3.3, n8n#11353),
    /// so a contact without an e-mail is created with `POST /contacts/` instead: callers look
    /// the person up first ([`GhlClient::find_duplicate`]), so there is nothing to match.
    pub async fn upsert_contact(&self, fields: &ContactFields) -> Result<Upserted, ApiError> {
        if fields.email.as_deref().is_none_or(|e| e.trim().is_empty()) {
            return Ok(Upserted {
                contact: self.create_contact(fields).await?,
                created: true,
            });
        }
        let body = self.with_location(fields)?;
        let answer: UpsertAnswer = self
            .send_as(
                Request::new(Method::POST, "/contacts/upsert")
                    .json(body)
                    .create_once(),
            )
            .await?;
        Ok(Upserted {
            contact: answer.contact,
            created: answer.created,
        })
    }

    /// `PUT /contacts/{contactId}` (`UpdateContactDto`, no `locationId`). Setting `tags` here
    /// replaces all tags; use [`GhlClient::add_tags`] / [`GhlClient::remove_tags`] instead.
    pub async fn update_contact(
        &self,
        contact: &str,
        fields: &ContactFields,
    ) -> Result<Contact, ApiError> {
        let body = serde_json::to_value(fields).map_err(|e| self.encode_error(e))?;
        let reply = self
            .send(Request::new(Method::PUT, format!("/contacts/{}", seg(contact))).json(body))
            .await?;
        let outcome: Outcome = reply.json()?;
        if !outcome.ok() {
            return Err(reply.malformed("the update answered succeded: false"));
        }
        let answer: ContactAnswer = reply.json()?;
        Ok(answer.contact)
    }

    /// Contacts whose `dateUpdated` lies in `[since, until]`, oldest first, paged with
    /// `searchAfter` (ghl-api.md §3.2). `locationId` and `pageLimit` go with every page
    /// (422 without them). A contact updated while paging moves behind the cursor and may come
    /// again; callers dedupe by id. The index lags writes by seconds: callers overlap windows.
    pub fn contacts_updated_between(
        &self,
        since: DateTime<Utc>,
        until: Option<DateTime<Utc>>,
    ) -> impl Stream<Item = Result<Contact, ApiError>> + Send + '_ {
        let mut range = json!({"gte": models::iso_millis(since)});
        if let Some(until) = until {
            range["lte"] = json!(models::iso_millis(until));
        }
        let base = json!({
            "locationId": self.location_id,
            "pageLimit": self.search_page_limit,
            "filters": [{"field": "dateUpdated", "operator": "range", "value": range}],
            "sort": [{"field": "dateUpdated", "direction": "asc"}],
        });
        try_stream! {
            let mut cursor: Option<Vec<Value>> = None;
            loop {
                let mut body = base.clone();
                if let Some(after) = &cursor {
                    body["searchAfter"] = Value::Array(after.clone());
                }
                // A search is a read: safe to retry although it is a POST.
                let answer: SearchAnswer = self
                    .send_as(Request::new(Method::POST, "/contacts/search").json(body))
                    .await?;
                let Some(last) = answer.contacts.last() else { break };
                let next = last.search_after.clone();
                for contact in answer.contacts {
                    yield contact;
                }
                if next.is_empty() || cursor.as_ref() == Some(&next) {
                    break;
                }
                cursor = Some(next);
            }
        }
    }

    /// One page of the contacts carrying `tag` (a `tags` `eq` filter on `POST /contacts/search`,
    /// ghl-api.md §3.2), sorted by `dateAdded` and paged with `searchAfter`: `after` is the
    /// previous page's cursor (none for the first). Returns the contacts and the cursor of the
    /// next page (none when this page was the last). The index lags writes by seconds: a contact
    /// tagged just now may show on the next walk.
    pub async fn contacts_tagged_page(
        &self,
        tag: &str,
        after: Option<&[Value]>,
    ) -> Result<(Vec<Contact>, Option<Vec<Value>>), ApiError> {
        let mut body = json!({
            "locationId": self.location_id,
            "pageLimit": self.search_page_limit,
            "filters": [{"field": "tags", "operator": "eq", "value": tag}],
            "sort": [{"field": "dateAdded", "direction": "asc"}],
        });
        if let Some(after) = after {
            body["searchAfter"] = Value::Array(after.to_vec());
        }
        // A search is a read: safe to retry although it is a POST.
        let answer: SearchAnswer = self
            .send_as(Request::new(Method::POST, "/contacts/search").json(body))
            .await?;
        let next = answer
            .contacts
            .last()
            .map(|c| c.search_after.clone())
            .filter(|n| !n.is_empty() && Some(n.as_slice()) != after);
        let full = answer.contacts.len() as u32 >= self.search_page_limit;
        Ok((answer.contacts, next.filter(|_| full)))
    }

    // ----- tasks -----

    /// `GET /contacts/{contactId}/tasks`.
    pub async fn tasks(&self, contact: &str) -> Result<Vec<Task>, ApiError> {
        let answer: TasksAnswer = self
            .send_as(Request::get(format!("/contacts/{}/tasks", seg(contact))))
            .await?;
        Ok(answer.tasks)
    }

    /// `GET /contacts/{contactId}/tasks/{taskId}`.
    pub async fn task(&self, contact: &str, task: &str) -> Result<Task, ApiError> {
        let answer: TaskAnswer = self
            .send_as(Request::get(format!(
                "/contacts/{}/tasks/{}",
                seg(contact),
                seg(task)
            )))
            .await?;
        Ok(answer.task)
    }

    /// `POST /contacts/{contactId}/tasks` (`CreateTaskParams`). Never retried blindly.
    pub async fn create_task(&self, contact: &str, task: &NewTask) -> Result<Task, ApiError> {
        let body = serde_json::to_value(task).map_err(|e| self.encode_error(e))?;
        let answer: TaskAnswer = self
            .send_as(
                Request::new(Method::POST, format!("/contacts/{}/tasks", seg(contact)))
                    .json(body)
                    .create_once(),
            )
            .await?;
        Ok(answer.task)
    }

    /// `PUT /contacts/{contactId}/tasks/{taskId}` (`UpdateTaskBody`).
    ///
    /// The spec marks every field optional, but GHL has been seen to refuse updates without
    /// `title` and `dueDate`, and a `dueDate` read back with milliseconds (ghl-api.md §4.1: n8n
    /// always sends both, fetching the task first). So does this: an update missing either is
    /// completed from `GET` of the task, and `dueDate` always goes without milliseconds.
    pub async fn update_task(
        &self,
        contact: &str,
        task: &str,
        update: &TaskUpdate,
    ) -> Result<Task, ApiError> {
        let mut update = update.clone();
        if update.title.is_none() || update.due_date.is_none() {
            let current = self.task(contact, task).await?;
            update.title = update.title.or(current.title);
            update.due_date = update.due_date.or(current.due_date);
        }
        let body = serde_json::to_value(&update).map_err(|e| self.encode_error(e))?;
        let answer: TaskAnswer = self
            .send_as(
                Request::new(
                    Method::PUT,
                    format!("/contacts/{}/tasks/{}", seg(contact), seg(task)),
                )
                .json(body),
            )
            .await?;
        Ok(answer.task)
    }

    /// `PUT /contacts/{contactId}/tasks/{taskId}/completed {completed}`: completes or reopens.
    pub async fn set_task_completed(
        &self,
        contact: &str,
        task: &str,
        completed: bool,
    ) -> Result<Task, ApiError> {
        let answer: TaskAnswer = self
            .send_as(
                Request::new(
                    Method::PUT,
                    format!("/contacts/{}/tasks/{}/completed", seg(contact), seg(task)),
                )
                .json(json!({"completed": completed})),
            )
            .await?;
        Ok(answer.task)
    }

    /// Every task of the location matching `search`, via
    /// `POST /locations/{locationId}/tasks/search` with `skip`/`limit` (apps/locations.json).
    ///
    /// Offsets drift when tasks are added or completed while paging, so each page overlaps the
    /// previous one by a tenth of its size and tasks already yielded are skipped; the walk
    /// ends on the first empty page (a short page is not trusted as the end, since the server
    /// may cap `limit` below what was asked).
    pub fn search_tasks(
        &self,
        search: &TaskSearch,
    ) -> impl Stream<Item = Result<Task, ApiError>> + Send + '_ {
        let mut base = serde_json::Map::new();
        if let Some(completed) = search.completed {
            base.insert("completed".into(), json!(completed));
        }
        if !search.contact_ids.is_empty() {
            base.insert("contactId".into(), json!(search.contact_ids));
        }
        if !search.assigned_to.is_empty() {
            base.insert("assignedTo".into(), json!(search.assigned_to));
        }
        if let Some(query) = &search.query {
            base.insert("query".into(), json!(query));
        }
        let limit = self.task_page_limit;
        let path = format!("/locations/{}/tasks/search", seg(&self.location_id));
        try_stream! {
            let mut skip: u64 = 0;
            let mut seen: HashSet<String> = HashSet::new();
            loop {
                let mut body = base.clone();
                body.insert("limit".into(), json!(limit));
                body.insert("skip".into(), json!(skip));
                let answer: TasksAnswer = self
                    .send_as(Request::new(Method::POST, path.clone()).json(Value::Object(body)))
                    .await?;
                let count = answer.tasks.len() as u64;
                if count == 0 {
                    break;
                }
                for task in answer.tasks {
                    if seen.insert(task.id.clone()) {
                        yield task;
                    }
                }
                skip += (count - count / 10).max(1);
            }
        }
    }

    /// One page of `POST /locations/{locationId}/tasks/search` (ghl-api.md §4.1): up to the
    /// client's page limit from `skip` on. The server may cut the limit silently (the
    /// documented default is 25), so callers advance `skip` by what came back and stop on an
    /// empty page. Offsets drift while tasks change; a sweep takes that as it comes (a task
    /// skipped now is seen by the next walk).
    pub async fn search_tasks_page(
        &self,
        search: &TaskSearch,
        skip: u64,
    ) -> Result<Vec<Task>, ApiError> {
        let mut body = serde_json::Map::new();
        if let Some(completed) = search.completed {
            body.insert("completed".into(), json!(completed));
        }
        if !search.contact_ids.is_empty() {
            body.insert("contactId".into(), json!(search.contact_ids));
        }
        body.insert("limit".into(), json!(self.task_page_limit));
        body.insert("skip".into(), json!(skip));
        let path = format!("/locations/{}/tasks/search", seg(&self.location_id));
        let answer: TasksAnswer = self
            .send_as(Request::new(Method::POST, path).json(Value::Object(body)))
            .await?;
        Ok(answer.tasks)
    }

    // ----- notes -----

    /// `GET /contacts/{contactId}/notes`.
    pub async fn notes(&self, contact: &str) -> Result<Vec<Note>, ApiError> {
        let answer: NotesAnswer = self
            .send_as(Request::get(format!("/contacts/{}/notes", seg(contact))))
            .await?;
        Ok(answer.notes)
    }

    /// `POST /contacts/{contactId}/notes` (`NotesDTO`). Never retried blindly.
    pub async fn create_note(&self, contact: &str, note: &NoteFields) -> Result<Note, ApiError> {
        let body = serde_json::to_value(note).map_err(|e| self.encode_error(e))?;
        let answer: NoteAnswer = self
            .send_as(
                Request::new(Method::POST, format!("/contacts/{}/notes", seg(contact)))
                    .json(body)
                    .create_once(),
            )
            .await?;
        Ok(answer.note)
    }

    /// `PUT /contacts/{contactId}/notes/{id}` (`UpdateNoteDTO`).
    pub async fn update_note(
        &self,
        contact: &str,
        note: &str,
        fields: &NoteFields,
    ) -> Result<Note, ApiError> {
        let body = serde_json::to_value(fields).map_err(|e| self.encode_error(e))?;
        let answer: NoteAnswer = self
            .send_as(
                Request::new(
                    Method::PUT,
                    format!("/contacts/{}/notes/{}", seg(contact), seg(note)),
                )
                .json(body),
            )
            .await?;
        Ok(answer.note)
    }

    // ----- tags -----

    /// `POST /contacts/{contactId}/tags {tags}`; returns the tags GHL reports.
    pub async fn add_tags(&self, contact: &str, tags: &[String]) -> Result<Vec<String>, ApiError> {
        let answer: TagsAnswer = self
            .send_as(
                Request::new(Method::POST, format!("/contacts/{}/tags", seg(contact)))
                    .json(json!({"tags": tags})),
            )
            .await?;
        Ok(answer.tags)
    }

    /// `DELETE /contacts/{contactId}/tags` with a JSON body `{tags}` (apps/contacts.json);
    /// returns the tags GHL reports (the SDK sees only `traceId`: then empty).
    pub async fn remove_tags(
        &self,
        contact: &str,
        tags: &[String],
    ) -> Result<Vec<String>, ApiError> {
        let answer: TagsAnswer = self
            .send_as(
                Request::new(Method::DELETE, format!("/contacts/{}/tags", seg(contact)))
                    .json(json!({"tags": tags})),
            )
            .await?;
        Ok(answer.tags)
    }

    // ----- appointments -----

    /// `GET /contacts/{contactId}/appointments` → the contact's appointments (scope
    /// `contacts.readonly`, ghl-api.md §6).
    ///
    /// GHL's examples write times without a zone (`"2021-07-16 11:00:00"`); they are read as
    /// wall-clock times in `zone`, which the caller passes: the location's zone is a setting
    /// of the GHL sub-account (`timezone` of `GET /locations/{id}`) that this client does not
    /// fetch, so the caller tells it, from configuration or its own lookup. RFC 3339 times
    /// are read as themselves, whatever `zone` is. A missing `events` list is an error, never
    /// "no appointments".
    pub async fn contact_appointments(
        &self,
        contact: &str,
        zone: chrono_tz::Tz,
    ) -> Result<Vec<Appointment>, ApiError> {
        let reply = self
            .send(Request::get(format!(
                "/contacts/{}/appointments",
                seg(contact)
            )))
            .await?;
        let mut body: Value = reply.json()?;
        models::localise_event_times(&mut body, zone);
        let answer: AppointmentsAnswer = reply.decode(body)?;
        Ok(answer.events)
    }

    // ----- the location, its custom fields and users -----

    /// `GET /locations/{locationId}` → `{location}` (scope `locations.readonly`,
    /// apps/locations.json `get-location`).
    pub async fn location(&self) -> Result<Location, ApiError> {
        let answer: LocationAnswer = self
            .send_as(Request::get(format!(
                "/locations/{}",
                seg(&self.location_id)
            )))
            .await?;
        Ok(answer.location)
    }

    /// The location's IANA zone (`location.timezone` of `GET /locations/{locationId}`): the
    /// zone GHL writes naive times in, e.g. for [`Self::contact_appointments`]. A missing or
    /// unknown zone name is a [`ApiError::Malformed`] answer naming what came back, never a
    /// silent fallback to UTC that would shift every appointment.
    pub async fn location_timezone(&self) -> Result<chrono_tz::Tz, ApiError> {
        let reply = self
            .send(Request::get(format!(
                "/locations/{}",
                seg(&self.location_id)
            )))
            .await?;
        let answer: LocationAnswer = reply.json()?;
        let name = answer.location.timezone.unwrap_or_default();
        name.trim().parse::<chrono_tz::Tz>().map_err(|_| {
            reply.malformed(format!(
                "location.timezone {name:?} is not an IANA time zone such as \"Europe/Amsterdam\"; \
                 set the sub-account's time zone in GHL (Settings → Business Profile)"
            ))
        })
    }

    /// `GET /locations/{locationId}/customFields?model=contact`.
    pub async fn custom_fields(&self) -> Result<Vec<CustomField>, ApiError> {
        let answer: CustomFieldsAnswer = self
            .send_as(
                Request::get(format!(
                    "/locations/{}/customFields",
                    seg(&self.location_id)
                ))
                .query("model", "contact"),
            )
            .await?;
        Ok(answer.custom_fields)
    }

    /// `GET /users/?locationId=…` → `{users: [...]}`. The Users API file is not among the
    /// stored specs; path and shape follow GHL's public v2 Users API \[recon\].
    pub async fn users(&self) -> Result<Vec<User>, ApiError> {
        let answer: UsersAnswer = self
            .send_as(Request::get("/users/").query("locationId", &self.location_id))
            .await?;
        Ok(answer.users)
    }

    // ----- helpers -----

    fn with_location(&self, fields: &ContactFields) -> Result<Value, ApiError> {
        let mut body = serde_json::to_value(fields).map_err(|e| self.encode_error(e))?;
        if let Value::Object(map) = &mut body {
            map.insert("locationId".into(), json!(self.location_id));
        }
        Ok(body)
    }

    fn encode_error(&self, e: serde_json::Error) -> ApiError {
        ApiError::Config {
            api: Api::Ghl,
            message: format!("could not encode a request body: {e}"),
        }
    }
}

/// Percent-encodes an id for use as one path segment (ids are opaque strings).
fn seg(id: &str) -> String {
    url::form_urlencoded::byte_serialize(id.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

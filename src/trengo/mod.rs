//! The Trengo REST v2 client.
//!
//! Every call the sync needs, exactly as trengo-api.md gives it: tickets (list, get, create,
//! assign, close, reopen, spam), labels, messages, internal notes, custom fields, contacts,
//! users, teams and channels. Lists are [`Stream`]s that follow `links.next` and stop on a null
//! `next` or an empty `data` (§3.1). Base URL, token, zone, clock and budget are injected.
//!
//! A customer can only ever be messaged through [`TrengoClient::send_customer_message`]; the
//! note path ([`TrengoClient::add_internal_note`]) always sends `internal_note: true`, because a
//! missing or false flag sends the text to the customer (§4.5 \[OBS\]).

pub mod models;
pub mod zone;

use std::sync::Arc;
use std::time::Duration;

use async_stream::try_stream;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use futures::{Stream, StreamExt as _};
use reqwest::Method;
use reqwest::header::HeaderMap;
use secrecy::SecretString;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use url::Url;

use crate::api::endpoint::trengo_rate_headers;
use crate::api::{Api, ApiError, Budget, Endpoint, EndpointConfig, Reply, Request, RetryPolicy};
use crate::clock::SharedClock;

pub use models::{
    Channel, Contact, CustomField, CustomFieldValue, Label, LatestMessage, Message, MessageKind,
    Page, Profile, ProfileRef, Team, Ticket, TicketStatus, User,
};

/// Where and how to reach Trengo.
#[derive(Debug, Clone)]
pub struct TrengoClientConfig {
    /// Base URL, e.g. `https://app.trengo.com/api/v2` (trengo-api.md §1 \[OFF\]).
    pub base_url: Url,
    /// Personal access token (Bearer).
    pub token: SecretString,
    /// Zone naive timestamps are rendered in (account-dependent, §4.3 \[REC\]).
    pub zone: Tz,
    /// Per-request timeout (deep pages can take 15 s+, §2: default 60 s).
    pub timeout: Duration,
    /// Retry policy for transient failures.
    pub retry: RetryPolicy,
}

impl TrengoClientConfig {
    /// A configuration with the default timeout (60 s) and retry policy.
    pub fn new(base_url: Url, token: SecretString, zone: Tz) -> Self {
        Self {
            base_url,
            token,
            zone,
            timeout: Duration::from_secs(60),
            retry: RetryPolicy::default(),
        }
    }
}

/// Filters for `GET /tickets` (trengo-api.md §3.3).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TicketFilters {
    /// Only tickets in this status.
    pub status: Option<TicketStatus>,
    /// Only tickets in these channels (`channels[]`; `channel_id` is silently ignored).
    pub channels: Vec<i64>,
    /// Only tickets carrying these labels (`labels[]`).
    pub labels: Vec<i64>,
    /// Only tickets assigned to these users (`users[]`).
    pub users: Vec<i64>,
    /// Only tickets of this contact.
    pub contact_id: Option<i64>,
    /// Oldest last-message first (`sort=date`) instead of newest first.
    pub oldest_first: bool,
}

impl TicketFilters {
    fn to_query(&self) -> Vec<(String, String)> {
        let mut query = Vec::new();
        if let Some(status) = &self.status {
            query.push(("status".to_string(), status.as_str().to_string()));
        }
        for id in &self.channels {
            query.push(("channels[]".to_string(), id.to_string()));
        }
        for id in &self.labels {
            query.push(("labels[]".to_string(), id.to_string()));
        }
        for id in &self.users {
            query.push(("users[]".to_string(), id.to_string()));
        }
        if let Some(contact) = self.contact_id {
            query.push(("contact_id".to_string(), contact.to_string()));
        }
        if self.oldest_first {
            query.push(("sort".to_string(), "date".to_string()));
        }
        query
    }
}

/// One page of a ticket listing ([`TrengoClient::tickets_page`]).
#[derive(Debug, Clone, Default)]
pub struct TicketPage {
    /// The tickets on it.
    pub tickets: Vec<Ticket>,
    /// Whether `links.next` names another page.
    pub more: bool,
}

/// Who to assign a ticket to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Assignee {
    /// A user.
    User(i64),
    /// A team.
    Team(i64),
}

/// A new ticket (`POST /tickets {channel_id, contact_id, subject}`, §4.4 and §12).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTicket {
    /// Channel to open it in.
    pub channel_id: i64,
    /// Contact it is for.
    pub contact_id: i64,
    /// Subject (matters for e-mail channels).
    pub subject: Option<String>,
}

/// The Trengo client. Cheap to clone; clones share the budget.
#[derive(Debug, Clone)]
pub struct TrengoClient {
    endpoint: Endpoint,
    token: SecretString,
    zone: Tz,
    watch: Arc<zone::PollWatch>,
}

impl TrengoClient {
    /// A client for `config`, drawing on `budget` (one per token, shared by all tasks).
    pub fn new(
        config: TrengoClientConfig,
        clock: SharedClock,
        budget: Arc<Budget>,
    ) -> Result<Self, ApiError> {
        let endpoint = Endpoint::new(
            EndpointConfig {
                api: Api::Trengo,
                base_url: config.base_url,
                timeout: config.timeout,
                // Accept: application/json is added by the endpoint; without it Laravel answers
                // auth failures with redirects (trengo-api.md §1 [REC]).
                headers: HeaderMap::new(),
                retry: config.retry,
                auth_hint: "check trengo.token / TRENGO_SYNC__TRENGO__TOKEN (a personal access token from Trengo's Settings → API), then run `trengo-sync check`".to_string(),
                rate_headers: trengo_rate_headers,
                secret_answers: false,
            },
            budget,
            clock,
        )?;
        Ok(Self {
            endpoint,
            token: config.token,
            zone: config.zone,
            watch: Arc::new(zone::PollWatch::new(config.zone)),
        })
    }

    /// The budget this client draws on.
    pub fn budget(&self) -> &Arc<Budget> {
        self.endpoint.budget()
    }

    /// The zone naive timestamps are read in.
    pub fn zone(&self) -> Tz {
        self.zone
    }

    /// Now, on the client's clock.
    pub fn now(&self) -> DateTime<Utc> {
        self.endpoint.clock().now()
    }

    /// What the `updated_at_gt` polls and the notes written have shown about the zone
    /// ([`zone::PollWatch`]); shared by every clone of this client.
    pub fn poll_watch(&self) -> &Arc<zone::PollWatch> {
        &self.watch
    }

    async fn send(&self, request: Request) -> Result<Reply, ApiError> {
        self.endpoint.send(&request, Some(&self.token)).await
    }

    /// Decodes a reply, converting naive timestamps in the configured zone first.
    fn decode<T: DeserializeOwned>(&self, reply: &Reply) -> Result<T, ApiError> {
        let mut value = reply.value()?;
        models::normalize_times(&mut value, self.zone);
        reply.decode(value)
    }

    /// Decodes a single object that may come bare or wrapped in `data` or `key`.
    fn decode_one<T: DeserializeOwned>(&self, reply: &Reply, key: &str) -> Result<T, ApiError> {
        reply.decode(self.unwrap_one(reply, key)?)
    }

    /// The single object of a reply, bare or unwrapped from `data` or `key`, times normalised.
    fn unwrap_one(&self, reply: &Reply, key: &str) -> Result<Value, ApiError> {
        let mut value = reply.value()?;
        models::normalize_times(&mut value, self.zone);
        let inner = match &mut value {
            Value::Object(map) if map.get(key).is_some_and(Value::is_object) => map.remove(key),
            Value::Object(map) if map.get("data").is_some_and(Value::is_object) => {
                map.remove("data")
            }
            _ => None,
        };
        Ok(inner.unwrap_or(value))
    }

    // ----- tickets -----

    /// `GET /tickets/{id}`.
    pub async fn ticket(&self, ticket: i64) -> Result<Ticket, ApiError> {
        let reply = self
            .send(Request::get(format!("/tickets/{ticket}")))
            .await?;
        self.decode_one(&reply, "data")
    }

    /// Every ticket matching `filters`, page by page.
    pub fn tickets(
        &self,
        filters: &TicketFilters,
    ) -> impl Stream<Item = Result<Ticket, ApiError>> + Send + '_ {
        self.paginate("/tickets", filters.to_query())
    }

    /// One page of the tickets matching `filters` (`page` is 1-based), with whether another
    /// follows. The query is built here from the filters and the page number, never taken from
    /// `links.next`, so the filters hold on every page whatever shape the server's links have;
    /// a sweep walks listings this way a page at a time, resumable between passes.
    pub async fn tickets_page(
        &self,
        filters: &TicketFilters,
        page: u32,
    ) -> Result<TicketPage, ApiError> {
        let mut request = Request::get("/tickets");
        request.query = filters.to_query();
        request
            .query
            .push(("page".to_string(), page.max(1).to_string()));
        let reply = self.send(request).await?;
        let page: Page<Ticket> = self.decode(&reply)?;
        Ok(TicketPage {
            more: page.links.next.is_some() && !page.data.is_empty(),
            tickets: page.data,
        })
    }

    /// Tickets whose `updated_at` is after `watermark` (`updated_at_gt`, §3.4 \[OBS\]), formatted
    /// as `YYYY-MM-DD HH:MM:SS` in the configured zone.
    ///
    /// Always listed oldest last message first (`sort=date`), whatever `filters` say: the order
    /// is by last message time and drifts while paging (§3.4 item 2), and a ticket that gets a
    /// message mid-walk then moves to the *end* of the list, where the walk still reaches it,
    /// instead of to page 1, which it has left behind. It may come twice; callers dedupe by id.
    pub fn tickets_updated_since(
        &self,
        watermark: DateTime<Utc>,
        filters: &TicketFilters,
    ) -> impl Stream<Item = Result<Ticket, ApiError>> + Send + '_ {
        let filters = TicketFilters {
            oldest_first: true,
            ..filters.clone()
        };
        let mut query = filters.to_query();
        query.push((
            "updated_at_gt".to_string(),
            models::format_filter_time(watermark, self.zone),
        ));
        // Every ticket must be newer than the watermark (unknown filters are ignored silently,
        // §3.3): what the listing got goes to the poll watch, which alarms when it is not.
        try_stream! {
            let mut returned = 0;
            let mut not_newer = Vec::new();
            let mut tickets = std::pin::pin!(self.paginate::<Ticket>("/tickets", query));
            while let Some(ticket) = tickets.next().await {
                let ticket = ticket?;
                returned += 1;
                if let Some(at) = ticket.updated_at
                    && at < watermark - chrono::Duration::seconds(1)
                {
                    not_newer.push((ticket.id, at));
                }
                yield ticket;
            }
            self.watch
                .listing(self.endpoint.clock().now(), watermark, returned, &not_newer);
        }
    }

    /// `POST /tickets {channel_id, contact_id, subject}`. Never retried after the server may
    /// have acted: the caller's intent journal decides.
    pub async fn create_ticket(&self, new: &NewTicket) -> Result<Ticket, ApiError> {
        let mut body = json!({"channel_id": new.channel_id, "contact_id": new.contact_id});
        if let Some(subject) = &new.subject {
            body["subject"] = json!(subject);
        }
        let reply = self
            .send(
                Request::new(Method::POST, "/tickets")
                    .json(body)
                    .create_once(),
            )
            .await?;
        let mut ticket = self.unwrap_one(&reply, "data")?;
        // The create answer is the raw model, without `labels` (§4.2): a ticket just made has
        // none. Every other ticket answer must carry the list (see `Ticket::labels`).
        if let Value::Object(map) = &mut ticket {
            map.entry("labels").or_insert_with(|| json!([]));
        }
        reply.decode(ticket)
    }

    /// `POST /tickets/{id}/assign {type, user_id | team_id}`.
    pub async fn assign(&self, ticket: i64, to: Assignee) -> Result<(), ApiError> {
        let body = match to {
            Assignee::User(id) => json!({"type": "user", "user_id": id}),
            Assignee::Team(id) => json!({"type": "team", "team_id": id}),
        };
        self.send(Request::new(Method::POST, format!("/tickets/{ticket}/assign")).json(body))
            .await
            .map(drop)
    }

    /// `POST /tickets/{id}/close`, with an optional ticket result.
    pub async fn close(&self, ticket: i64, ticket_result_id: Option<i64>) -> Result<(), ApiError> {
        let body = match ticket_result_id {
            Some(id) => json!({"ticket_result_id": id}),
            None => json!({}),
        };
        self.send(Request::new(Method::POST, format!("/tickets/{ticket}/close")).json(body))
            .await
            .map(drop)
    }

    /// `POST /tickets/{id}/reopen {}`.
    pub async fn reopen(&self, ticket: i64) -> Result<(), ApiError> {
        self.send(Request::new(Method::POST, format!("/tickets/{ticket}/reopen")).json(json!({})))
            .await
            .map(drop)
    }

    /// `POST /tickets/{id}/spam`: marks the ticket as spam (status `INVALID`).
    pub async fn mark_spam(&self, ticket: i64) -> Result<(), ApiError> {
        self.send(Request::new(
            Method::POST,
            format!("/tickets/{ticket}/spam"),
        ))
        .await
        .map(drop)
    }

    /// `DELETE /tickets/{id}/spam`: un-marks spam.
    pub async fn unmark_spam(&self, ticket: i64) -> Result<(), ApiError> {
        self.send(Request::new(
            Method::DELETE,
            format!("/tickets/{ticket}/spam"),
        ))
        .await
        .map(drop)
    }

    /// `POST /tickets/{id}/labels {label_id}` (one label per call).
    pub async fn attach_label(&self, ticket: i64, label: i64) -> Result<(), ApiError> {
        self.send(
            Request::new(Method::POST, format!("/tickets/{ticket}/labels"))
                .json(json!({"label_id": label})),
        )
        .await
        .map(drop)
    }

    /// `DELETE /tickets/{id}/labels/{label_id}`.
    pub async fn detach_label(&self, ticket: i64, label: i64) -> Result<(), ApiError> {
        self.send(Request::new(
            Method::DELETE,
            format!("/tickets/{ticket}/labels/{label}"),
        ))
        .await
        .map(drop)
    }

    /// `POST /tickets/{id}/custom_fields {custom_field_id, value}` (value as text).
    pub async fn set_ticket_custom_field(
        &self,
        ticket: i64,
        field: i64,
        value: &str,
    ) -> Result<(), ApiError> {
        self.send(
            Request::new(Method::POST, format!("/tickets/{ticket}/custom_fields"))
                .json(json!({"custom_field_id": field, "value": value})),
        )
        .await
        .map(drop)
    }

    // ----- messages and notes -----

    /// `GET /tickets/{id}/messages`: every message, newest first (§4.5 \[OBS\]).
    pub fn messages(
        &self,
        ticket: i64,
    ) -> impl Stream<Item = Result<Message, ApiError>> + Send + '_ {
        self.paginate_owned(format!("/tickets/{ticket}/messages"), Vec::new())
    }

    /// Posts an internal note: `POST /tickets/{id}/messages {message, internal_note: true}`.
    /// Agents see it; the customer never does. Never retried blindly (it creates a message).
    pub async fn add_internal_note(&self, ticket: i64, text: &str) -> Result<Message, ApiError> {
        self.post_message(ticket, text, true).await
    }

    /// Sends `text` **to the customer** on the ticket's channel
    /// (`POST /tickets/{id}/messages {message, internal_note: false}`). The sync never routes
    /// GHL text here; this exists only so that messaging a customer is an explicit choice.
    pub async fn send_customer_message(
        &self,
        ticket: i64,
        text: &str,
    ) -> Result<Message, ApiError> {
        self.post_message(ticket, text, false).await
    }

    /// [`TrengoClient::add_internal_note`], answering the raw JSON (for `doctor`, which reads
    /// the note's naive `created_at` next to its `created_at_time`).
    pub async fn add_internal_note_raw(&self, ticket: i64, text: &str) -> Result<Value, ApiError> {
        self.post_message_reply(ticket, text, true).await?.value()
    }

    async fn post_message(
        &self,
        ticket: i64,
        text: &str,
        internal: bool,
    ) -> Result<Message, ApiError> {
        let reply = self.post_message_reply(ticket, text, internal).await?;
        // The answer is wrapped: {"message": {...}} (trengo-api.md §13, S14).
        self.decode_one(&reply, "message")
    }

    async fn post_message_reply(
        &self,
        ticket: i64,
        text: &str,
        internal: bool,
    ) -> Result<Reply, ApiError> {
        let reply = self
            .send(
                Request::new(Method::POST, format!("/tickets/{ticket}/messages"))
                    .json(json!({"message": text, "internal_note": internal}))
                    .create_once(),
            )
            .await?;
        // The answer carries the note's naive time next to its Unix time: a check of the zone.
        if let Ok(raw) = reply.value() {
            self.watch
                .created_message(&raw, self.endpoint.clock().now());
        }
        Ok(reply)
    }

    // ----- labels -----

    /// `GET /labels`, every page.
    pub fn labels(&self) -> impl Stream<Item = Result<Label, ApiError>> + Send + '_ {
        self.paginate("/labels", Vec::new())
    }

    /// `POST /labels {name, color}`. Never retried blindly.
    pub async fn create_label(&self, name: &str, color: &str) -> Result<Label, ApiError> {
        let reply = self
            .send(
                Request::new(Method::POST, "/labels")
                    .json(json!({"name": name, "color": color}))
                    .create_once(),
            )
            .await?;
        self.decode_one(&reply, "data")
    }

    // ----- custom fields -----

    /// `GET /custom_fields`, every page.
    pub fn custom_fields(&self) -> impl Stream<Item = Result<CustomField, ApiError>> + Send + '_ {
        self.paginate("/custom_fields", Vec::new())
    }

    // ----- contacts -----

    /// `GET /contacts?term=…` (matches name, e-mail and phone; no exact lookup exists, §6).
    pub fn search_contacts(
        &self,
        term: &str,
    ) -> impl Stream<Item = Result<Contact, ApiError>> + Send + '_ {
        self.paginate("/contacts", vec![("term".to_string(), term.to_string())])
    }

    /// `GET /contacts/{id}`.
    pub async fn contact(&self, contact: i64) -> Result<Contact, ApiError> {
        let reply = self
            .send(Request::get(format!("/contacts/{contact}")))
            .await?;
        self.decode_one(&reply, "data")
    }

    /// `PUT /contacts/{id} {name}` (§6 \[OBS\]): renames the contact and returns it. Only the
    /// name is sent: `contact_group_ids` would replace the contact's groups, and the e-mail
    /// or phone is the contact's identifier, which Trengo does not change (a new identifier
    /// is a new contact).
    pub async fn rename_contact(&self, contact: i64, name: &str) -> Result<Contact, ApiError> {
        let reply = self
            .send(
                Request::new(Method::PUT, format!("/contacts/{contact}"))
                    .json(json!({"name": name})),
            )
            .await?;
        self.decode_one(&reply, "data")
    }

    /// `POST /contacts/{id}/custom_fields {custom_field_id, value}` (§6, §7 \[CLI\]): sets a
    /// CONTACT custom field, value as text. Read values back from [`Contact`]'s
    /// `custom_field_values` ([`Self::contact`]). How to clear a value is not documented
    /// (§7 \[U\]): an empty `value` may be refused.
    pub async fn set_contact_custom_field(
        &self,
        contact: i64,
        field: i64,
        value: &str,
    ) -> Result<(), ApiError> {
        self.send(
            Request::new(Method::POST, format!("/contacts/{contact}/custom_fields"))
                .json(json!({"custom_field_id": field, "value": value})),
        )
        .await
        .map(drop)
    }

    /// `GET /profiles/{id}` (§6 \[CLI\]): the profile with its custom field values. A
    /// contact's profiles are [`Contact::profile_ids`].
    pub async fn profile(&self, profile: i64) -> Result<Profile, ApiError> {
        let reply = self
            .send(Request::get(format!("/profiles/{profile}")))
            .await?;
        self.decode_one(&reply, "data")
    }

    /// `POST /profiles/{id}/custom_fields {custom_field_id, value}` (§6, §7 \[CLI\]): sets a
    /// PROFILE custom field, value as text; a field of another type is refused (422). Read
    /// values back with [`Self::profile`]. Clearing with an empty `value` may be refused, as
    /// for contacts.
    pub async fn set_profile_custom_field(
        &self,
        profile: i64,
        field: i64,
        value: &str,
    ) -> Result<(), ApiError> {
        self.send(
            Request::new(Method::POST, format!("/profiles/{profile}/custom_fields"))
                .json(json!({"custom_field_id": field, "value": value})),
        )
        .await
        .map(drop)
    }

    /// `POST /channels/{channel_id}/contacts {identifier, name}` (§6 \[OBS\]). Never retried
    /// blindly, although Trengo is reported to return an existing contact for a known identifier.
    pub async fn create_contact(
        &self,
        channel: i64,
        identifier: &str,
        name: Option<&str>,
    ) -> Result<Contact, ApiError> {
        let mut body = json!({"identifier": identifier});
        if let Some(name) = name {
            body["name"] = json!(name);
        }
        let reply = self
            .send(
                Request::new(Method::POST, format!("/channels/{channel}/contacts"))
                    .json(body)
                    .create_once(),
            )
            .await?;
        self.decode_one(&reply, "data")
    }

    // ----- people and channels -----

    /// `GET /users`, every page.
    pub fn users(&self) -> impl Stream<Item = Result<User, ApiError>> + Send + '_ {
        self.paginate("/users", Vec::new())
    }

    /// `GET /teams`, every page.
    pub fn teams(&self) -> impl Stream<Item = Result<Team, ApiError>> + Send + '_ {
        self.paginate("/teams", Vec::new())
    }

    /// `GET /channels`, every page.
    pub fn channels(&self) -> impl Stream<Item = Result<Channel, ApiError>> + Send + '_ {
        self.paginate("/channels", Vec::new())
    }

    /// The channel `id` from `GET /channels` (there is no single-channel read), if listed.
    pub async fn channel(&self, id: i64) -> Result<Option<Channel>, ApiError> {
        let mut channels = std::pin::pin!(self.channels());
        while let Some(channel) = channels.next().await {
            let channel = channel?;
            if channel.id == id {
                return Ok(Some(channel));
            }
        }
        Ok(None)
    }

    // ----- pagination -----

    fn paginate<T: DeserializeOwned + Send + 'static>(
        &self,
        path: &'static str,
        query: Vec<(String, String)>,
    ) -> impl Stream<Item = Result<T, ApiError>> + Send + '_ {
        self.paginate_owned(path.to_string(), query)
    }

    /// Walks the pages until `links.next` is null or a page comes back empty (§3.1). Pages are
    /// fetched one after another, never in parallel (the order drifts, §3.4).
    ///
    /// `links.next` is read only for the page number it names: each next page is requested
    /// from this walk's own path and query with `page` set, because a real `next` link may
    /// carry only `?page=N` (the captured ones do, §3.1, §13), and following it verbatim would
    /// drop the filters and list the whole mailbox from page 2 on. A link without a page
    /// number means "the page after this one"; a page number not ahead of the current one
    /// ends the walk instead of looping. The token only ever goes to the configured base URL.
    fn paginate_owned<T: DeserializeOwned + Send + 'static>(
        &self,
        path: String,
        query: Vec<(String, String)>,
    ) -> impl Stream<Item = Result<T, ApiError>> + Send + '_ {
        let query: Vec<(String, String)> = query.into_iter().filter(|(k, _)| k != "page").collect();
        try_stream! {
            let mut page_no: u64 = 1;
            loop {
                let mut request = Request::get(path.clone());
                request.query = query.clone();
                if page_no > 1 {
                    request.query.push(("page".to_string(), page_no.to_string()));
                }
                let reply = self.send(request).await?;
                let page: Page<T> = self.decode(&reply)?;
                if page.data.is_empty() {
                    break;
                }
                for item in page.data {
                    yield item;
                }
                let Some(next) = page.links.next else { break };
                let next_no = next_page_number(&next, page_no, &reply)?;
                if next_no <= page_no {
                    tracing::warn!(path = %path, page = page_no, next = next_no, "Trengo pagination pointed back to an earlier page; stopping");
                    break;
                }
                page_no = next_no;
            }
        }
    }

    /// One page of `path` with `query` as the API answers it, undecoded (for `doctor`, which
    /// inspects the envelope itself: the shape of `links.next`, the order, the filters).
    pub async fn raw_page(
        &self,
        path: &str,
        query: Vec<(String, String)>,
    ) -> Result<Value, ApiError> {
        let mut request = Request::get(path.to_string());
        request.query = query;
        self.send(request).await?.value()
    }

    /// The raw answer of `GET path` (for `doctor`'s shape checks).
    pub async fn raw_get(&self, path: &str) -> Result<Value, ApiError> {
        self.send(Request::get(path.to_string())).await?.value()
    }
}

/// The identifier a contact is created with on a channel of `kind` (trengo-api.md §6 \[OBS\]):
/// the e-mail on e-mail channels, the phone number on every other kind (WhatsApp, SMS, voice),
/// where an e-mail identifier is refused. An unknown kind takes the e-mail, else the phone.
pub fn contact_identifier<'a>(
    kind: Option<&str>,
    email: Option<&'a str>,
    phone: Option<&'a str>,
) -> Option<&'a str> {
    let email = email.filter(|e| !e.trim().is_empty());
    let phone = phone.filter(|p| !p.trim().is_empty());
    match kind.map(str::to_ascii_uppercase).as_deref() {
        Some("EMAIL") => email,
        Some(_) => phone,
        None => email.or(phone),
    }
}

/// The page number a `links.next` URL names (`?page=N`), or the page after `current` when it
/// names none. A link that is not a URL at all is a wrong-shaped answer.
fn next_page_number(next: &str, current: u64, reply: &Reply) -> Result<u64, ApiError> {
    let base = Url::parse("http://relative.invalid/").map_err(|e| reply.malformed(e))?;
    let parsed = Url::parse(next)
        .or_else(|_| base.join(next))
        .map_err(|e| reply.malformed(format!("links.next {next:?} is not a URL: {e}")))?;
    let named = parsed
        .query_pairs()
        .find(|(k, _)| k == "page")
        .map(|(_, v)| v.trim().parse::<u64>());
    match named {
        Some(Ok(n)) => Ok(n),
        Some(Err(_)) => Err(reply.malformed(format!(
            "links.next {next:?} has a page number that is not a number"
        ))),
        None => Ok(current + 1),
    }
}

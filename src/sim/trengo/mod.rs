//! The Trengo fake: an in-process HTTP server speaking Trengo's REST API v2 as unkindly as
//! `trengo-api.md` describes it.
//!
//! What it models: Bearer auth with Laravel's 401/404/422 bodies; the simple paginator
//! (25 a page, `links.next`, no `total`); ticket order by last message time, so pages drift
//! while messages arrive; silently ignored unknown filters (`channel_id` returns everything);
//! naive timestamps in a configurable zone; `updated_at_gt` strictly after; tickets created
//! through the API assigned to the token user; one label per attach call; internal notes
//! versus customer messages; 120 requests a minute with `x-ratelimit-*` headers and 429 with
//! `Retry-After`; signed, form-encoded webhooks, one URL per event type, echoes included.
//! What the reference leaves uncertain is a switch in [`TrengoFakeOptions`], pessimistic by
//! default.
//!
//! Rooms: [`options`] (settings and switches), [`model`] (records, events, errors), [`ops`]
//! (the edits and their timestamp rules), [`seed`] (deterministic worlds), [`render`] (JSON
//! shapes), [`http`] (bodies, queries, paginators), [`layers`] (counting, faults, rate
//! limit, auth), [`api_tickets`] and [`api_directory`] (the routes), [`webhooks`]
//! (delivery), [`sim`] (shared state and in-process admin), [`admin`] (`/_sim/` routes).

pub mod admin;
pub mod api_directory;
pub mod api_tickets;
pub mod http;
pub mod layers;
pub mod model;
pub mod ops;
pub mod options;
pub mod render;
pub mod seed;
pub mod sim;
pub mod webhooks;

use std::net::SocketAddr;
use std::ops::Deref;

use axum::Router;
use axum::middleware::from_fn_with_state;
use axum::routing::{get, post};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::clock::SharedClock;
use crate::sim::watch::ServerWatch;

pub use model::{EventType, MessageType, SimError, TicketStatus};
pub use options::{DEFAULT_TOKEN, SimUser, TrengoFakeOptions, TrengoSwitches};
pub use seed::{SEEDED_LABELS, SeedSpec, SeededPerson, seeded_person};
pub use sim::{CustomerTicket, TrengoSimState};
pub use webhooks::WebhookDelivery;

/// A running Trengo fake on a listener the caller bound. It serves until [`shutdown`] or
/// until dropped. It dereferences to its [`TrengoSimState`], whose methods are the
/// in-process admin surface (`fake.close_ticket(id)`, `fake.counters()`, ...).
///
/// [`shutdown`]: TrengoFake::shutdown
#[derive(Debug)]
pub struct TrengoFake {
    sim: TrengoSimState,
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<()>>,
    /// Handler panics and an early end of `server`; checked on shutdown and drop.
    watch: ServerWatch,
}

impl TrengoFake {
    /// Serves a fake seeded with [`SeedSpec::default`] on `listener` (bind it to
    /// `127.0.0.1:0`). Must be called inside a Tokio runtime.
    pub fn start(
        listener: TcpListener,
        options: TrengoFakeOptions,
        clock: SharedClock,
    ) -> std::io::Result<Self> {
        let addr = listener.local_addr()?;
        let web_url = format!("http://{addr}");
        let sim = TrengoSimState::new(options, clock, format!("{web_url}/api/v2"), web_url);
        let watch = ServerWatch::new("Trengo fake");
        let app = watch.layer(Self::router(sim.clone()));
        let (stop, stopped) = oneshot::channel::<()>();
        let serving = watch.clone();
        let server = tokio::spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(async {
                let _ = stopped.await;
            });
            serving.serve(serve).await;
        });
        Ok(Self {
            sim,
            addr,
            stop: Some(stop),
            server: Some(server),
            watch,
        })
    }

    /// `http://127.0.0.1:PORT/api/v2`: the base URL a Trengo client is configured with.
    pub fn base_url(&self) -> String {
        self.sim.base_url().to_owned()
    }

    /// `http://127.0.0.1:PORT`: the web app's base; a ticket's page is
    /// `{web_url}/tickets/{id}` (see [`TrengoSimState::ticket_url`]).
    pub fn web_url(&self) -> String {
        self.sim.web_url().to_owned()
    }

    /// The address the fake listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The shared state, for mounting or for handing to another task.
    pub fn sim(&self) -> &TrengoSimState {
        &self.sim
    }

    /// The fake's routes on `state`: the API under `/api/v2` (auth, rate limit, faults and
    /// counters applied) and the admin surface under `/_sim/`. Mount it anywhere.
    pub fn router(state: TrengoSimState) -> Router {
        use api_directory as dir;
        use api_tickets as tickets;
        let api = Router::new()
            .route("/api/v2/tickets", get(tickets::list).post(tickets::create))
            .route("/api/v2/tickets/{id}", get(tickets::show))
            .route("/api/v2/tickets/{id}/assign", post(tickets::assign))
            .route("/api/v2/tickets/{id}/close", post(tickets::close))
            .route("/api/v2/tickets/{id}/reopen", post(tickets::reopen))
            .route(
                "/api/v2/tickets/{id}/spam",
                post(tickets::mark_spam).delete(tickets::unmark_spam),
            )
            .route(
                "/api/v2/tickets/{id}/labels",
                get(tickets::labels).post(tickets::attach_label),
            )
            .route(
                "/api/v2/tickets/{id}/labels/{label_id}",
                axum::routing::delete(tickets::detach_label),
            )
            .route(
                "/api/v2/tickets/{id}/messages",
                get(tickets::messages).post(tickets::post_message),
            )
            .route(
                "/api/v2/tickets/{id}/messages/{message_id}",
                get(tickets::message),
            )
            .route(
                "/api/v2/tickets/{id}/custom_fields",
                post(tickets::set_custom_field),
            )
            .route("/api/v2/labels", get(dir::labels).post(dir::create_label))
            .route(
                "/api/v2/labels/{id}",
                get(dir::label)
                    .put(dir::update_label)
                    .delete(dir::delete_label),
            )
            .route("/api/v2/contacts", get(dir::contacts))
            .route(
                "/api/v2/contacts/{id}",
                get(dir::contact).put(dir::update_contact),
            )
            .route(
                "/api/v2/contacts/{id}/custom_fields",
                post(dir::set_contact_custom_field),
            )
            .route(
                "/api/v2/channels/{channel_id}/contacts",
                post(dir::create_contact),
            )
            .route("/api/v2/profiles/{id}", get(dir::profile))
            .route(
                "/api/v2/profiles/{id}/custom_fields",
                post(dir::set_profile_custom_field),
            )
            .route("/api/v2/custom_fields", get(dir::custom_fields))
            .route("/api/v2/users", get(dir::users))
            .route("/api/v2/teams", get(dir::teams))
            .route("/api/v2/channels", get(dir::channels))
            .route(
                "/api/v2/webhooks",
                get(dir::webhooks).post(dir::create_webhook),
            )
            .route(
                "/api/v2/webhooks/{id}",
                get(dir::webhook)
                    .put(dir::update_webhook)
                    .delete(dir::delete_webhook),
            )
            // Added innermost first: a request meets count, faults, rate limit, then auth.
            .route_layer(from_fn_with_state(state.clone(), layers::auth))
            .route_layer(from_fn_with_state(state.clone(), layers::rate_limit))
            .route_layer(from_fn_with_state(state.clone(), layers::faults))
            .route_layer(from_fn_with_state(state.clone(), layers::count));
        api.merge(admin::routes())
            .fallback(layers::route_not_found)
            .with_state(state)
    }

    /// Stops serving and waits for the server task to end.
    ///
    /// # Panics
    ///
    /// When a handler panicked or the server task ended early (see [`ServerWatch`]); the
    /// same check runs when the fake is dropped.
    pub async fn shutdown(mut self) {
        self.watch.stopping();
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
    }
}

impl Deref for TrengoFake {
    type Target = TrengoSimState;

    fn deref(&self) -> &TrengoSimState {
        &self.sim
    }
}

impl Drop for TrengoFake {
    fn drop(&mut self) {
        self.watch.stopping();
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            // Idle keep-alive connections could hold a graceful shutdown open; a dropped fake
            // must not linger.
            server.abort();
        }
        // Fails the test that used the fake if it broke while serving (see `ServerWatch`).
        self.watch.assert_served();
    }
}

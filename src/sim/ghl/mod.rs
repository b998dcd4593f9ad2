//! A faithful, unkind in-process fake of GoHighLevel API v2 (contacts, tasks, notes, tags,
//! users, custom fields, OAuth, webhooks).
//!
//! It behaves as `ghl-api.md` and GHL's OpenAPI files describe: bearer auth with a private
//! token or expiring OAuth access tokens, the authorization-code install with single-use
//! short-lived codes, a refresh token that rotates on every use, a
//! required `Version` header, `POST /contacts/search` whose index trails writes by a few
//! seconds, cursor paging with `searchAfter`, 100-per-10-s and daily rate limits with 429s
//! that carry no `Retry-After`, the spec's `succeded` spelling, 422s with message arrays, and
//! Ed25519-signed webhooks. What the reference leaves open is a switch in
//! [`GhlSwitches`], pessimistic by default.
//!
//! Rooms: [`options`] (settings and switches), [`model`] (records and their JSON shapes),
//! [`state`] and [`activity`] (the data and its operations), [`seed`] (deterministic
//! data), [`search`] (contact search), [`auth`] (tokens and OAuth), [`consent`] (the
//! authorization page and its codes), [`limits`] (rate
//! budget), [`webhooks`] (signed delivery), [`server`] (router and gate layers),
//! `routes` (API handlers), [`admin`] (`/_sim/` and in-process edits), [`error`] (GHL's
//! error bodies). The checker of bodies against GHL's OpenAPI files is a test helper
//! (`tests/support/openapi.rs`).

use std::net::SocketAddr;
use std::ops::Deref;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::clock::SharedClock;
use crate::sim::watch::ServerWatch;

pub mod activity;
pub mod admin;
pub mod auth;
pub mod consent;
pub mod error;
pub mod limits;
pub mod model;
pub mod options;
mod routes;
pub mod search;
pub mod seed;
pub mod server;
pub mod state;
pub mod webhooks;

pub use error::GhlError;
pub use options::{API_VERSION, GhlFakeOptions, GhlSwitches};
pub use server::GhlFakeState;
pub use webhooks::WebhookDelivery;

/// A running GHL fake, serving on the listener it was given until dropped or shut down.
///
/// It dereferences to its [`GhlFakeState`], so the admin methods read naturally:
/// `fake.complete_task(&id)`, `fake.snapshot()`, `fake.counter_snapshot()`.
#[derive(Debug)]
pub struct GhlFake {
    state: GhlFakeState,
    addr: SocketAddr,
    server: JoinHandle<()>,
    /// Handler panics and an early end of `server`; checked on shutdown and drop.
    watch: ServerWatch,
}

impl GhlFake {
    /// Seeds the fake from `options` and serves it on `listener` (bind it to `127.0.0.1:0`).
    /// Must be called inside a tokio runtime.
    pub fn start(
        listener: TcpListener,
        options: GhlFakeOptions,
        clock: SharedClock,
    ) -> std::io::Result<Self> {
        let addr = listener.local_addr()?;
        let state = GhlFakeState::new(options, clock);
        let watch = ServerWatch::new("GHL fake");
        let app = watch.layer(Self::router(state.clone()));
        let serving = watch.clone();
        let server = tokio::spawn(async move { serving.serve(axum::serve(listener, app)).await });
        Ok(Self {
            state,
            addr,
            server,
            watch,
        })
    }

    /// The router of a fake over `state`, to mount elsewhere.
    pub fn router(state: GhlFakeState) -> axum::Router {
        server::router(state)
    }

    /// `http://127.0.0.1:PORT`, the stand-in for `https://services.leadconnectorhq.com`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The address served on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The state handle (also reachable through `Deref`).
    pub fn state(&self) -> &GhlFakeState {
        &self.state
    }

    /// Stops serving and waits until the server task has ended. Open connections are cut,
    /// not drained: a client's idle keep-alive connection would otherwise hold it open.
    ///
    /// # Panics
    ///
    /// When a handler panicked or the server task ended early (see [`ServerWatch`]); the
    /// same check runs when the fake is dropped.
    pub async fn shutdown(mut self) {
        self.watch.stopping();
        self.server.abort();
        // The join error of an aborted task is the expected outcome.
        let _ = (&mut self.server).await;
    }
}

impl Deref for GhlFake {
    type Target = GhlFakeState;

    fn deref(&self) -> &GhlFakeState {
        &self.state
    }
}

impl Drop for GhlFake {
    fn drop(&mut self) {
        // A dropped fake stops serving at once (see `shutdown`), and fails the test that
        // used it if it broke while serving.
        self.watch.stopping();
        self.server.abort();
        self.watch.assert_served();
    }
}

//! A watch over a fake's server, so a test cannot pass over a dead fake.
//!
//! A fake serves from a spawned task; a handler that panics only kills its own connection
//! (the client sees a cut connection or, here, a 500 it may retry around), and a server task
//! that ends early leaves the test talking to nothing. Both used to go unnoticed. The watch
//! records them: [`ServerWatch::layer`] wraps the fake's router so a panicking handler is
//! caught, answered with a 500 and remembered; [`ServerWatch::serve`] runs the server task and
//! remembers it ending (by error, panic or plain return) before the fake asked it to stop; and
//! [`ServerWatch::assert_served`] panics with what happened when the fake is shut down or
//! dropped. A server task cancelled with its runtime or aborted by the fake is not a failure. The test that used the fake then
//! fails, the way bors' test harness fails a test whose service task panicked.

use std::future::IntoFuture;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use futures::FutureExt as _;

/// What went wrong in one fake's server, shared between the fake and its handlers.
#[derive(Debug, Clone)]
pub struct ServerWatch {
    /// The fake's name in messages ("Trengo fake", "GHL fake").
    name: &'static str,
    /// One line per failure: a panicked request (method, path, message) or the server's end.
    failures: Arc<Mutex<Vec<String>>>,
    /// Set by the fake before it stops its server on purpose.
    stopping: Arc<AtomicBool>,
}

impl ServerWatch {
    /// A watch for the fake called `name`.
    pub fn new(name: &'static str) -> Self {
        Self {
            name,
            failures: Arc::default(),
            stopping: Arc::default(),
        }
    }

    /// Runs the fake's server (`axum::serve(..)`, with or without graceful shutdown) and
    /// records it ending before [`stopping`](Self::stopping) was called.
    pub async fn serve(&self, server: impl IntoFuture<Output = std::io::Result<()>>) {
        let ended = match AssertUnwindSafe(server.into_future()).catch_unwind().await {
            Ok(Ok(())) => "its server task ended".to_owned(),
            Ok(Err(error)) => format!("its server task failed: {error}"),
            Err(payload) => format!("its server task panicked: {}", panic_message(&*payload)),
        };
        if !self.stopping.load(Ordering::SeqCst) {
            tracing::error!(fake = self.name, "{ended}");
            self.record(format!("{ended} while the fake was meant to serve"));
        }
    }

    /// Marks the server's coming end as intended (the fake is shutting down).
    pub fn stopping(&self) {
        self.stopping.store(true, Ordering::SeqCst);
    }

    fn record(&self, failure: String) {
        self.failures
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(failure);
    }

    /// `router` with every request run under the watch: a handler's panic is recorded and
    /// answered with a 500 instead of cutting the connection.
    pub fn layer(&self, router: axum::Router) -> axum::Router {
        let watch = self.clone();
        router.layer(middleware::from_fn(move |request: Request, next: Next| {
            let watch = watch.clone();
            async move { watch.run(request, next).await }
        }))
    }

    async fn run(&self, request: Request, next: Next) -> Response {
        let what = format!("{} {}", request.method(), request.uri().path());
        match AssertUnwindSafe(next.run(request)).catch_unwind().await {
            Ok(response) => response,
            Err(payload) => {
                self.record(format!("{what} panicked: {}", panic_message(&*payload)));
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("the {} panicked while handling {what}", self.name),
                )
                    .into_response()
            }
        }
    }

    /// What went wrong so far, one line each.
    pub fn failures(&self) -> Vec<String> {
        self.failures
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Panics, naming every failure, when [`failures`](Self::failures) is not empty. Does
    /// nothing while the thread is already panicking (a failing test keeps its own message).
    ///
    /// # Panics
    ///
    /// When a handler panicked or the server task ended before the fake was shut down.
    pub fn assert_served(&self) {
        if std::thread::panicking() {
            return;
        }
        let failures = self.failures();
        assert!(
            failures.is_empty(),
            "the {} failed while serving, so this run cannot be trusted:\n  {}",
            self.name,
            failures.join("\n  ")
        );
    }
}

/// The text of a panic's payload (`panic!` gives a `&str` or a `String`).
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::get;
    use tokio::net::TcpListener;

    /// Serves `router` under `watch` on a free loopback port; returns its base URL.
    async fn served(watch: &ServerWatch, router: axum::Router) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let app = watch.layer(router);
        let serving = watch.clone();
        tokio::spawn(async move { serving.serve(axum::serve(listener, app)).await });
        url
    }

    async fn broken() -> &'static str {
        panic!("index out of range")
    }

    fn verdict(watch: &ServerWatch) -> Result<(), String> {
        std::panic::catch_unwind(AssertUnwindSafe(|| watch.assert_served()))
            .map_err(|payload| panic_message(&*payload))
    }

    #[tokio::test]
    async fn a_panicking_handler_answers_500_and_fails_the_check() {
        let watch = ServerWatch::new("test fake");
        let router = axum::Router::new()
            .route("/fine", get(|| async { "ok" }))
            .route("/broken", get(broken));
        let url = served(&watch, router).await;
        let client = reqwest::Client::builder().no_proxy().build().unwrap();

        let fine = client.get(format!("{url}/fine")).send().await.unwrap();
        assert_eq!(fine.status(), 200);
        assert_eq!(verdict(&watch), Ok(()));

        let broken = client.get(format!("{url}/broken")).send().await.unwrap();
        assert_eq!(broken.status(), 500);
        let message = verdict(&watch).unwrap_err();
        assert!(
            message.contains("the test fake failed while serving")
                && message.contains("GET /broken panicked: index out of range"),
            "{message}"
        );
        // The server itself still serves.
        let again = client.get(format!("{url}/fine")).send().await.unwrap();
        assert_eq!(again.status(), 200);
    }

    #[tokio::test]
    async fn a_server_that_ends_before_its_stop_fails_the_check() {
        let watch = ServerWatch::new("test fake");
        watch
            .serve(async { Err(std::io::Error::other("listener closed")) })
            .await;
        let message = verdict(&watch).unwrap_err();
        assert!(
            message.contains(
                "its server task failed: listener closed while the fake was meant to serve"
            ),
            "{message}"
        );

        let panicked = ServerWatch::new("test fake");
        panicked
            .serve(async {
                panic!("accept loop broke");
                #[allow(unreachable_code)]
                Ok(())
            })
            .await;
        let message = verdict(&panicked).unwrap_err();
        assert!(
            message.contains("its server task panicked: accept loop broke"),
            "{message}"
        );
    }

    #[tokio::test]
    async fn a_server_stopped_on_purpose_is_not_a_failure() {
        let watch = ServerWatch::new("test fake");
        watch.stopping();
        watch.serve(async { Ok(()) }).await;
        assert_eq!(verdict(&watch), Ok(()));
    }
}

//! What both API clients share: typed errors, header-sized rate budgets, the request
//! executor with its retry rules, and lenient serde readers.
//!
//! Rooms: [`error`] (the [`ApiError`] kinds every caller matches on), [`budget`] (one
//! [`Budget`] per API credential, shared by all tasks), [`endpoint`] (sending, retrying,
//! logging and classifying requests), [`rate_headers`] (each API's rate headers),
//! [`lenient`] (readers for inconsistent payloads), [`redact`] (credential values blanked out of
//! every remote text kept or shown).

pub mod budget;
pub mod endpoint;
pub mod error;
pub mod lenient;
pub mod rate_headers;
pub mod redact;

pub use budget::{Budget, BudgetSnapshot, RateObservation};
pub use endpoint::{Body, Endpoint, EndpointConfig, Replay, Reply, Request, RetryPolicy};
pub use error::{Api, ApiError, CallSite, MAX_BODY_BYTES};

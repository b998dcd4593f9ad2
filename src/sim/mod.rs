//! Faithful, unkind fakes of the Trengo and GHL APIs.
//!
//! Neither service can be reached from a test machine, so every test, the `sim` command and
//! the demo talk to these stateful in-process HTTP servers instead. They model what the
//! reference documents mark as real (simple paginator, drifting order, naive timestamps,
//! silently ignored filters, GHL's index lag and rotating refresh tokens, rate limits with
//! their real headers) and turn what the references mark uncertain into switches whose
//! pessimistic setting is the default.
//!
//! Rooms: [`faults`] (fault injection and request counters both fakes share),
//! [`trengo`] (the Trengo fake), [`ghl`] (the GHL fake), [`world`] (both fakes seeded with
//! the same people, and a configuration pointing at them: the demo's and the tests' world),
//! [`watch`] (a fake whose handler panicked or whose server died fails the test using it).

pub mod faults;
pub mod ghl;
pub mod trengo;
pub mod watch;
pub mod world;

pub use faults::{Fault, FaultInjector, Faults, RequestCounters, WebhookFaults, WebhookShaper};

//! The sync engine: what is in scope, change detection, the pure planner, and the executor.
//!
//! The shape follows vstorage's sync: a pure plan of operations, then an executor that applies
//! it and is the only writer. A pass flows one way: detect → load → plan → execute.
//!
//! | module | job |
//! |---|---|
//! | [`model`] | the normalised views of both sides, the bases and the links the planner reads |
//! | [`policy`] | conflict policies, directions, the status table, the brake: the configurable rules |
//! | [`keys`] | typed keys: [`ItemKey`] (an item, the unit of failure) and [`BaseName`] (a base) |
//! | [`operation`] | the [`Op`]s a [`Plan`] is made of, grouped into items (the unit of failure) |
//! | [`declare`] | the link rules: what is in scope, ticket URLs as the key of a link |
//! | [`views`] | API payloads as the planner's views; fingerprints that let polls skip what they saw |
//! | [`execute`] | the executor: the only writer, to both APIs and (within a pass) the store; intents before creates; bases after writes; crash settlement; the pass's records (retries, what was seen, cursors, the brake) |
//! | [`detect`] | the pipeline's first stage: polls, the safety sweep, webhooks' hints and due retries → a `Detected` (reads only) |
//! | [`load`] | the second: a `Loader` reads each touched contact group and the items entering scope (reads only) |
//! | [`engine`] | one pass end to end, in the pipeline's order: settle intents, detect, load, plan, apply, record; the stages read the store through a read-only `StoreReader`; its wiring in `engine/wiring.rs` |
//! | [`reason`] | failures as stored and served: codes and ids, never remote text |
//! | [`vault`] | GHL's rotating OAuth tokens kept in the store |
//! | [`settings`] | the configuration in the engine's terms |
//! | [`marker`] | the source markers in copied notes, which make copies idempotent and echo-free |
//! | [`plan`](mod@plan) | the pure planner: sync-model.md §3–4 as a function from views to a [`Plan`] |
//! | [`pairs`] | contact pairs (sync-model.md §5): the field map, value conversion, the pure pair planner, agent context, task details |

pub mod declare;
pub mod detect;
pub mod engine;
pub mod execute;
pub mod keys;
pub mod load;
pub mod marker;
pub mod model;
pub mod operation;
pub mod pairs;
pub mod pause;
pub mod plan;
pub mod policy;
pub mod reason;
pub mod settings;
pub mod since;
pub mod vault;
pub mod views;

pub use keys::{BaseName, ItemKey};
pub use model::{
    Candidate, ContactGroup, ContactView, GhlNote, HeldConflict, LinkBases, LinkId, LinkView,
    NoteKind, PlanInput, Tag, TagRule, TaskView, TicketStatus, TicketView, TrengoNote,
};
pub use operation::{BrakeReport, ItemPlan, Op, Plan, Side};
pub use plan::plan;
pub use policy::{
    Brake, Direction, Field, PerField, PlanSettings, Policy, StatusTable, TicketAction,
};

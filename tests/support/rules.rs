//! What the rule tests share: the world's configuration bent by a few text edits (as a user
//! would edit their file), an engine on it, people picked by what the seed gave them, and
//! read-outs of single tickets, tasks, notes and ledger entries.

use std::sync::Arc;

use chrono::{SubsecRound as _, Utc};
use figment::providers::Env;
use futures::StreamExt as _;
use trengo_sync::clock::{ManualClock, SharedClock, SystemClock};
use trengo_sync::config::{self, Config};
use trengo_sync::ghl;
use trengo_sync::sim::trengo::CustomerTicket;
use trengo_sync::sim::world::{LINK_LABEL, LINK_TAG, SimWorld, WorldOptions, WorldPerson};
use trengo_sync::store::{self, Store, links::Link};
use trengo_sync::sync::engine::Engine;
use trengo_sync::trengo::{self, MessageKind};

use super::{links, once, start_world, store_path, until_quiet};

/// A world whose fakes run on a manual clock (started at the current whole second), so a
/// test decides which side changed last.
pub async fn world_on_manual_clock(mut options: WorldOptions) -> (SimWorld, Arc<ManualClock>) {
    let clock = ManualClock::new(Utc::now().trunc_subsecs(0));
    let shared: SharedClock = clock.clone();
    options.clock = shared;
    (start_world(options).await, clock)
}

/// The world's configuration text with every `(from, to)` replaced (each `from` must occur,
/// so a drifted configuration fails loudly) and `extra` appended (new sections).
pub fn config_text(
    world: &SimWorld,
    dir: &tempfile::TempDir,
    edits: &[(&str, &str)],
    extra: &str,
) -> String {
    let mut text = world.config_toml(&store_path(dir), "127.0.0.1:0".parse().unwrap());
    for (from, to) in edits {
        assert!(text.contains(from), "the world's config has no `{from}`");
        text = text.replacen(from, to, 1);
    }
    text.push_str(extra);
    text
}

/// Loads configuration text as a user's file, through the same validation (no environment).
pub fn load(text: &str, dir: &tempfile::TempDir) -> Config {
    let path = dir.path().join("config.toml");
    std::fs::write(&path, text).unwrap();
    config::load_with(&path, Env::raw().filter(|_| false)).unwrap()
}

/// An engine (identity bound) on the world's configuration bent by `edits` and `extra`.
pub async fn engine_with(
    world: &SimWorld,
    dir: &tempfile::TempDir,
    edits: &[(&str, &str)],
    extra: &str,
) -> Engine {
    let config = load(&config_text(world, dir, edits, extra), dir);
    let engine = Engine::from_config(&config, SystemClock::shared(), false).unwrap();
    engine.bind_identity().await.unwrap();
    engine
}

/// [`engine_with`], then a polling pass and reconcile passes until one writes nothing.
pub async fn settled(
    world: &SimWorld,
    dir: &tempfile::TempDir,
    edits: &[(&str, &str)],
    extra: &str,
) -> Engine {
    let engine = engine_with(world, dir, edits, extra).await;
    settle(&engine).await;
    engine
}

/// A polling pass (it finds new tickets and tasks), then reconcile passes until quiet.
pub async fn settle(engine: &Engine) {
    once(engine).await;
    until_quiet(engine, 6).await;
}

/// The first person whose GHL contact does not carry the link tag: none of their tasks is
/// linked by the tag rule, so every ticket of theirs in a test is one the test made.
pub fn untagged_person(world: &SimWorld) -> WorldPerson {
    world
        .people()
        .iter()
        .find(|p| !contact_tags(world, p).iter().any(|t| t == LINK_TAG))
        .cloned()
        .expect("the world has a person outside the GHL link rule")
}

/// The GHL contact's tags, as the fake holds them.
pub fn contact_tags(world: &SimWorld, person: &WorldPerson) -> Vec<String> {
    world.ghl().contact_json(&person.ghl_contact_id).unwrap()["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_string())
        .collect()
}

/// The Trengo label id called `name`.
pub fn label(world: &SimWorld, name: &str) -> i64 {
    world
        .trengo()
        .label_id(name)
        .unwrap_or_else(|| panic!("no label {name}"))
}

/// A customer writes in on `channel`; returns the new OPEN ticket's id.
pub fn new_ticket_in(world: &SimWorld, contact_id: i64, channel_id: i64, subject: &str) -> i64 {
    world
        .trengo()
        .create_ticket(&CustomerTicket {
            contact_id,
            channel_id,
            subject: Some(subject.to_string()),
            message: format!("Hello, about {subject}."),
        })
        .unwrap()
}

/// A customer writes in by e-mail and an agent labels the ticket for GHL; returns its id.
pub fn labelled_ticket(world: &SimWorld, person: &WorldPerson, subject: &str) -> i64 {
    let channel = world.trengo_channel_id().unwrap();
    let ticket = new_ticket_in(world, person.trengo_contact_id, channel, subject);
    world
        .trengo()
        .add_label(ticket, label(world, LINK_LABEL))
        .unwrap();
    ticket
}

/// The link (active or not) of a ticket.
pub fn link_of_ticket(dir: &tempfile::TempDir, ticket: i64) -> Option<Link> {
    let s = Store::open_read_only(store_path(dir)).unwrap();
    store::links::by_ticket(s.conn(), ticket).unwrap()
}

/// The link (active or not) of a task.
pub fn link_of_task(dir: &tempfile::TempDir, task: &str) -> Option<Link> {
    let s = Store::open_read_only(store_path(dir)).unwrap();
    store::links::by_task(s.conn(), task).unwrap()
}

/// The ledger, newest first.
pub fn ledger(dir: &tempfile::TempDir) -> Vec<store::ledger::Entry> {
    let s = Store::open_read_only(store_path(dir)).unwrap();
    store::ledger::recent(s.conn(), None, 10_000).unwrap()
}

/// A link's task as GHL shows it.
pub async fn task(engine: &Engine, link: &Link) -> ghl::Task {
    engine
        .ghl
        .task(&link.ghl_contact_id, &link.task_id)
        .await
        .unwrap()
}

/// A ticket as Trengo shows it.
pub async fn ticket(engine: &Engine, id: i64) -> trengo::Ticket {
    engine.trengo.ticket(id).await.unwrap()
}

/// The names of a ticket's labels.
pub async fn labels(engine: &Engine, id: i64) -> Vec<String> {
    ticket(engine, id)
        .await
        .labels
        .iter()
        .filter_map(|l| l.name.clone())
        .collect()
}

/// The bodies of a GHL contact's notes.
pub async fn note_bodies(engine: &Engine, person: &WorldPerson) -> Vec<String> {
    engine
        .ghl
        .notes(&person.ghl_contact_id)
        .await
        .unwrap()
        .into_iter()
        .filter_map(|n| n.body)
        .collect()
}

/// A ticket's messages as (kind, text), oldest or newest first as Trengo lists them.
pub async fn messages(engine: &Engine, id: i64) -> Vec<(MessageKind, String)> {
    let mut out = Vec::new();
    let mut stream = std::pin::pin!(engine.trengo.messages(id));
    while let Some(m) = stream.next().await {
        let m = m.unwrap();
        out.push((m.kind, m.message.unwrap_or_default()));
    }
    out
}

/// How many times `text` occurs among `bodies`.
pub fn copies(bodies: &[String], text: &str) -> usize {
    bodies.iter().filter(|b| b.contains(text)).count()
}

/// An active link whose ticket is open and whose task is not completed.
pub async fn open_link(engine: &Engine, dir: &tempfile::TempDir) -> Link {
    open_link_where(engine, dir, |_| true).await
}

/// The first link, by id, whose ticket and task are both open and that `keep` accepts.
pub async fn open_link_where(
    engine: &Engine,
    dir: &tempfile::TempDir,
    keep: impl Fn(&Link) -> bool,
) -> Link {
    for link in links(dir).into_iter().filter(|l| keep(l)) {
        let open = !ticket(engine, link.ticket_id).await.status.is_done();
        if open && !task(engine, &link).await.completed {
            return link;
        }
    }
    panic!("no open link")
}

/// A person outside the tag rule with two fresh labelled tickets, linked: (person, a, b).
pub async fn two_tickets(world: &SimWorld, dir: &tempfile::TempDir) -> (Engine, i64, i64) {
    let person = untagged_person(world);
    let a = labelled_ticket(world, &person, "First question");
    let b = labelled_ticket(world, &person, "Second question");
    (settled(world, dir, &[], "").await, a, b)
}

/// A world whose users match by e-mail on both sides and whose config syncs the assignee.
pub async fn assignee_world(
    seed: u64,
) -> (SimWorld, std::sync::Arc<trengo_sync::clock::ManualClock>) {
    let mut options = WorldOptions::unpaced(seed, 10, 5);
    options.assignee = true;
    world_on_manual_clock(options).await
}

/// The agents' e-mails, the same on both sides.
pub fn agents(world: &SimWorld) -> Vec<String> {
    world.trengo().agent_emails()
}

/// The assignee e-mails of a link's ticket and task.
pub async fn assignees(
    world: &SimWorld,
    engine: &Engine,
    link: &Link,
) -> (Option<String>, Option<String>) {
    let on_ticket = ticket(engine, link.ticket_id).await.user_id;
    let on_task = task(engine, link).await.assigned_to;
    let agents = agents(world);
    (
        agents
            .iter()
            .find(|e| on_ticket.is_some() && world.trengo().user_id(e) == on_ticket)
            .cloned(),
        agents
            .iter()
            .find(|e| on_task.is_some() && world.ghl().user_id(e) == on_task)
            .cloned(),
    )
}

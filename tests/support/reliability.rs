//! What the reliability suite shares with the property tests: an edit vocabulary over both
//! fakes, a reading of both sides per link and contact for convergence and lost-update checks,
//! which notes crossed, and a daemon child process with its schedules and output under the
//! test's control (killed with SIGKILL, not asked to stop).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use futures::StreamExt as _;
use trengo_sync::sim::world::SimWorld;
use trengo_sync::store::Store;
use trengo_sync::store::links::Link;
use trengo_sync::sync::engine::Engine;
use trengo_sync::sync::marker;
use trengo_sync::sync::model::Tag;
use trengo_sync::trengo::TicketFilters;

/// The managed tags the edits use (the world manages the `trengo:` prefix).
pub const MANAGED: [&str; 2] = ["trengo:vip", "trengo:callback"];

/// Whether the long mode is on (`TRENGO_SYNC_LONG=1`): more kills, more edits, longer storms.
pub fn long_mode() -> bool {
    std::env::var("TRENGO_SYNC_LONG").is_ok_and(|v| v == "1")
}

/// One user edit, made through a fake's in-process admin surface. Indexes pick a link
/// (modulo the number of links) and a managed tag.
#[derive(Debug, Clone)]
pub enum Edit {
    CloseTicket(usize),
    ReopenTicket(usize),
    AddLabel(usize, usize),
    RemoveLabel(usize, usize),
    CompleteTask(usize),
    ReopenTask(usize),
    AddTag(usize, usize),
    RemoveTag(usize, usize),
    /// An internal note on the link's ticket.
    TrengoNote(usize),
    /// A note on the link's GHL contact naming the link's ticket (`#<id>`).
    GhlNote(usize),
}

/// What an edit created that must cross to the other side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Made {
    /// Nothing new (a status or tag edit, or an edit the fake refused).
    Nothing,
    /// A Trengo internal note, by message id.
    TrengoNote(i64),
    /// A GHL note, by id.
    GhlNote(String),
}

/// Applies `edit` to the world. Edits that make no sense in the current state (closing a
/// closed ticket) are no-ops.
pub fn apply(world: &SimWorld, links: &[Link], edit: &Edit) -> Made {
    let link = |i: usize| &links[i % links.len()];
    let t = world.trengo();
    let g = world.ghl();
    let label = |k: usize| t.label_id(MANAGED[k % MANAGED.len()]);
    match edit {
        Edit::CloseTicket(i) => {
            let _ = t.close_ticket(link(*i).ticket_id);
        }
        Edit::ReopenTicket(i) => {
            let _ = t.reopen_ticket(link(*i).ticket_id);
        }
        Edit::AddLabel(i, k) => {
            if let Some(label) = label(*k) {
                let _ = t.add_label(link(*i).ticket_id, label);
            }
        }
        Edit::RemoveLabel(i, k) => {
            if let Some(label) = label(*k) {
                let _ = t.remove_label(link(*i).ticket_id, label);
            }
        }
        Edit::CompleteTask(i) => {
            let _ = g.complete_task(&link(*i).task_id);
        }
        Edit::ReopenTask(i) => {
            let _ = g.reopen_task(&link(*i).task_id);
        }
        Edit::AddTag(i, k) => {
            let _ = g.add_contact_tag(&link(*i).ghl_contact_id, MANAGED[*k % 2]);
        }
        Edit::RemoveTag(i, k) => {
            let _ = g.remove_contact_tag(&link(*i).ghl_contact_id, MANAGED[*k % 2]);
        }
        Edit::TrengoNote(i) => {
            let l = link(*i);
            return t
                .post_note(
                    l.ticket_id,
                    &format!("reliability note on #{}", l.ticket_id),
                )
                .map_or(Made::Nothing, Made::TrengoNote);
        }
        Edit::GhlNote(i) => {
            let l = link(*i);
            let body = format!("reliability note for #{}", l.ticket_id);
            return g
                .add_note(&l.ghl_contact_id, &body)
                .ok()
                .and_then(|n| n["id"].as_str().map(str::to_owned))
                .map_or(Made::Nothing, Made::GhlNote);
        }
    }
    Made::Nothing
}

/// Both sides as the sync sees them, per link and per contact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sides {
    /// Per link id: (ticket done, task completed).
    pub status: BTreeMap<i64, (bool, bool)>,
    /// Per contact: (union of managed labels on its linked tickets, managed contact tags).
    pub tags: BTreeMap<String, (BTreeSet<String>, BTreeSet<String>)>,
    /// Per contact: the unmanaged tags.
    pub unmanaged: BTreeMap<String, BTreeSet<String>>,
    /// Per linked ticket: its managed labels.
    pub labels: BTreeMap<i64, BTreeSet<String>>,
}

impl Sides {
    /// One line per link or contact whose two sides disagree.
    pub fn disagreements(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (link, (t, g)) in &self.status {
            if t != g {
                out.push(format!("link {link}: ticket done {t}, task completed {g}"));
            }
        }
        for (contact, (labels, tags)) in &self.tags {
            if labels != tags {
                out.push(format!(
                    "contact {contact}: labels {labels:?}, tags {tags:?}"
                ));
            }
        }
        out
    }
}

/// Reads both sides of every link in `links` through the engine's clients.
pub async fn read_sides(engine: &Engine, links: &[Link]) -> Sides {
    let mut sides = Sides {
        status: BTreeMap::new(),
        tags: BTreeMap::new(),
        unmanaged: BTreeMap::new(),
        labels: BTreeMap::new(),
    };
    for link in links {
        let ticket = engine.trengo.ticket(link.ticket_id).await.unwrap();
        let tasks = engine.ghl.tasks(&link.ghl_contact_id).await.unwrap();
        let completed = tasks
            .iter()
            .find(|t| t.id == link.task_id)
            .is_some_and(|t| t.completed);
        sides
            .status
            .insert(link.id.0, (ticket.status.is_done(), completed));
        let labels: BTreeSet<String> = ticket
            .labels
            .iter()
            .filter_map(|l| l.name.as_deref())
            .map(|n| Tag::new(n).to_string())
            .filter(|n| n.starts_with("trengo:"))
            .collect();
        sides.labels.insert(link.ticket_id, labels.clone());
        let entry = sides.tags.entry(link.ghl_contact_id.clone()).or_default();
        entry.0.extend(labels);
    }
    for contact in sides.tags.keys().cloned().collect::<Vec<_>>() {
        let c = engine.ghl.contact(&contact).await.unwrap();
        let (managed, unmanaged): (BTreeSet<String>, BTreeSet<String>) = c
            .tags
            .iter()
            .map(|t| Tag::new(t).to_string())
            .partition(|t| t.starts_with("trengo:"));
        sides.tags.entry(contact.clone()).or_default().1 = managed;
        sides.unmanaged.insert(contact, unmanaged);
    }
    sides
}

/// The notes that crossed: Trengo message ids copied to GHL notes, and GHL note ids copied to
/// Trengo notes, as the source markers on the copies name them.
pub async fn crossed_notes(world: &SimWorld, engine: &Engine) -> (BTreeSet<i64>, BTreeSet<String>) {
    let mut to_ghl = BTreeSet::new();
    let mut to_trengo = BTreeSet::new();
    for person in world.people() {
        for note in engine.ghl.notes(&person.ghl_contact_id).await.unwrap() {
            if let Some(src) = marker::trengo_source(note.body.as_deref().unwrap_or("")) {
                to_ghl.insert(src.message_id);
            }
        }
    }
    let mut ids = Vec::new();
    let mut tickets = std::pin::pin!(engine.trengo.tickets(&TicketFilters::default()));
    while let Some(t) = tickets.next().await {
        ids.push(t.unwrap().id);
    }
    for id in ids {
        let mut messages = std::pin::pin!(engine.trengo.messages(id));
        while let Some(m) = messages.next().await {
            if let Some(note) = marker::ghl_source(m.unwrap().message.as_deref().unwrap_or("")) {
                to_trengo.insert(note);
            }
        }
    }
    (to_ghl, to_trengo)
}

/// Environment that makes a child daemon poll both sides every second and sweep every two,
/// so a test sees many passes between kills (6-field cron, seconds first).
pub const FAST_SCHEDULE: [(&str, &str); 3] = [
    ("TRENGO_SYNC__SCHEDULE__TRENGO_POLL", "* * * * * *"),
    ("TRENGO_SYNC__SCHEDULE__GHL_POLL", "* * * * * *"),
    ("TRENGO_SYNC__SCHEDULE__SWEEP", "*/2 * * * * *"),
];

/// Starts `trengo-sync ARGS --config CONFIG` as a child with `env` added; stdout and stderr go
/// to `output` (appended) when given, else nowhere.
pub fn spawn_trengo_sync(
    args: &[&str],
    config: &Path,
    env: &[(&str, &str)],
    output: Option<&Path>,
) -> Child {
    let mut cmd = trengo_sync_command(args, config, env);
    match output {
        Some(path) => {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .unwrap();
            cmd.stdout(file.try_clone().unwrap()).stderr(file);
        }
        None => {
            cmd.stdout(Stdio::null()).stderr(Stdio::null());
        }
    }
    cmd.spawn().unwrap()
}

/// `trengo-sync ARGS --config CONFIG` at `RUST_LOG=warn`, with the caller's `TRENGO_SYNC__*`
/// variables removed and `env` added.
pub fn trengo_sync_command(args: &[&str], config: &Path, env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_trengo-sync"));
    cmd.args(args).args(["--config", config.to_str().unwrap()]);
    for (k, _) in std::env::vars() {
        if k.starts_with("TRENGO_SYNC__") {
            cmd.env_remove(k);
        }
    }
    cmd.env("RUST_LOG", "warn").envs(env.iter().copied());
    cmd
}

/// Sends `signal` (`KILL`, `TERM`) to the child and reaps it.
pub fn signal_and_wait(child: &mut Child, signal: &str) -> std::process::ExitStatus {
    let sent = Command::new("kill")
        .args([&format!("-{signal}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success(), "kill -{signal} failed");
    child.wait().unwrap()
}

/// Edits that all push one way (a link done, a managed tag added, a note written), so the
/// oracle needs no conflict rule: whatever the order of events, each edited link must end
/// done on both sides, each tagged contact must keep a managed tag, and every note must cross.
#[derive(Debug, Default)]
pub struct OneWayEdits {
    done: BTreeSet<i64>,
    tagged: BTreeSet<String>,
    trengo_notes: BTreeSet<i64>,
    ghl_notes: BTreeSet<String>,
}

impl OneWayEdits {
    /// Makes one random one-way edit on a random side.
    pub fn make(&mut self, world: &SimWorld, links: &[Link], rng: &mut impl rand::Rng) {
        let i = rng.gen_range(0..links.len());
        let edit = match rng.gen_range(0..6) {
            0 => Edit::CloseTicket(i),
            1 => Edit::CompleteTask(i),
            2 => Edit::AddLabel(i, rng.gen_range(0..MANAGED.len())),
            3 => Edit::AddTag(i, rng.gen_range(0..MANAGED.len())),
            4 => Edit::TrengoNote(i),
            _ => Edit::GhlNote(i),
        };
        match &edit {
            Edit::CloseTicket(i) | Edit::CompleteTask(i) => {
                self.done.insert(links[*i].id.0);
            }
            Edit::AddLabel(i, _) | Edit::AddTag(i, _) => {
                self.tagged.insert(links[*i].ghl_contact_id.clone());
            }
            _ => {}
        }
        match apply(world, links, &edit) {
            Made::TrengoNote(id) => {
                self.trengo_notes.insert(id);
            }
            Made::GhlNote(id) => {
                self.ghl_notes.insert(id);
            }
            Made::Nothing => {}
        }
    }

    /// One line per status or tag edit that did not survive, once both sides have converged.
    pub fn lost_fields(&self, sides: &Sides) -> Vec<String> {
        let mut lost = Vec::new();
        for link in &self.done {
            if sides.status[link] != (true, true) {
                lost.push(format!("link {link}: the close/completion was lost"));
            }
        }
        for contact in &self.tagged {
            if sides.tags[contact].1.is_empty() {
                lost.push(format!("{contact}: the managed tag was lost"));
            }
        }
        lost
    }

    /// One line per note that never crossed.
    pub async fn lost_notes(&self, world: &SimWorld, engine: &Engine) -> Vec<String> {
        let mut lost = Vec::new();
        let (to_ghl, to_trengo) = crossed_notes(world, engine).await;
        lost.extend(
            self.trengo_notes
                .difference(&to_ghl)
                .map(|id| format!("Trengo message {id} never reached GHL")),
        );
        lost.extend(
            self.ghl_notes
                .difference(&to_trengo)
                .map(|id| format!("GHL note {id} never reached Trengo")),
        );
        lost
    }
}

/// The active links in the store at `path`, or none while the daemon has not made (or
/// migrated) the file yet.
pub fn links_so_far(path: &Path) -> Vec<Link> {
    Store::open_read_only(path)
        .ok()
        .and_then(|s| trengo_sync::store::links::active(s.conn()).ok())
        .unwrap_or_default()
}

/// The intents the daemon's store at `path` holds open (a crash left them, or a write is in
/// flight); `None` when the store cannot be read right now.
pub fn open_intents(path: &Path) -> Option<usize> {
    Store::open_read_only(path)
        .ok()
        .and_then(|s| trengo_sync::store::intents::open_all(s.conn()).ok())
        .map(|open| open.len())
}

/// Waits (a daemon running on the store at `path`) until the first links exist and then until
/// no write has been made for `quiet` twice in a row with the same links; returns them.
pub async fn settled_links(world: &SimWorld, path: &Path, quiet: Duration) -> Vec<Link> {
    super::wait_for("the first links", Duration::from_secs(60), async || {
        !links_so_far(path).is_empty()
    })
    .await;
    let mut last = Vec::new();
    for _ in 0..20 {
        super::wait_until_writes_stop(world, quiet, Duration::from_secs(90)).await;
        let now = links_so_far(path);
        if now == last {
            return now;
        }
        last = now;
    }
    panic!("the links never settled: {} so far", last.len());
}

//! `trengo-sync demo`: the daemon's main job on the embedded fakes, with no account needed.
//!
//! It starts the simulated world (both fakes, the same people on both sides), runs the real
//! daemon against it with a generated configuration (with the `[contacts]` section of
//! config.example.toml, turned on), a temporary store and its status endpoint, makes scripted edits on
//! both sides as a person would, and prints each change as it crosses, read from the daemon's
//! own ledger. It stops after `--duration` or on Ctrl-C and prints a summary.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use figment::providers::Env;
use futures::StreamExt as _;
use serde_json::json;
use tokio::net::TcpListener;

use crate::clock::SystemClock;
use crate::config::Config;
use crate::daemon::run::Daemon;
use crate::ghl::{ContactFields, CustomFieldInput};
use crate::sim::world::{SimWorld, WorldOptions};
use crate::store::{self, Store};
use crate::sync::engine::Engine;

/// One scripted edit: when (seconds after start), what it does, and to which link.
struct Edit {
    at: u64,
    what: &'static str,
}

const SCRIPT: [Edit; 10] = [
    Edit {
        at: 8,
        what: "Trengo: an agent closes a linked ticket",
    },
    Edit {
        at: 12,
        what: "GHL: a sales rep completes a linked task",
    },
    Edit {
        at: 16,
        what: "GHL: a sales rep tags a contact trengo:callback",
    },
    Edit {
        at: 20,
        what: "Trengo: an agent writes an internal note",
    },
    Edit {
        at: 24,
        what: "GHL: a sales rep adds a note to a contact",
    },
    Edit {
        at: 28,
        what: "Trengo: an agent labels a ticket trengo:vip",
    },
    Edit {
        at: 34,
        what: "both: a ticket and its task are reassigned to different people at once",
    },
    Edit {
        at: 36,
        what: "GHL: a sales rep changes a customer's subscription tier",
    },
    Edit {
        at: 40,
        what: "Trengo: an agent sets a customer's subscription tier",
    },
    Edit {
        at: 44,
        what: "GHL: a sales rep books an appointment with a customer",
    },
];

/// config.example.toml, whose `[contacts]` section the demo runs (turned on): a customer
/// number GHL → Trengo, the subscription tier both ways, the context agents see on a Trengo
/// contact, and the linked task's due date and title on its ticket. The fakes seed these
/// fields on both sides.
const EXAMPLE: &str = include_str!("../config.example.toml");

/// The GHL custom field and the Trengo custom field (title) the scripted tier edits touch.
const TIER_KEY: &str = "contact.subscription_tier";
const TIER_TITLE: &str = "Subscription tier";

/// The demo's world: a small account whose rate limits are ten times Trengo's documented
/// default, so a one-minute demo is not paced by a budget meant for a day's work, and whose
/// agents exist on both sides, so the assignee syncs and a conflict can be shown.
fn demo_world_options(seed: u64) -> WorldOptions {
    let mut options = WorldOptions {
        seed,
        tickets: 20,
        contacts: 8,
        assignee: true,
        ..WorldOptions::default()
    };
    options.trengo.rate_limit_per_minute = 1_200;
    options
}

/// Runs the demo for `duration`, or until Ctrl-C.
pub async fn run(duration: Duration, seed: u64) -> anyhow::Result<()> {
    let world = SimWorld::start(
        TcpListener::bind("127.0.0.1:0").await?,
        TcpListener::bind("127.0.0.1:0").await?,
        demo_world_options(seed),
    )?;
    let dir = tempfile::tempdir()?;
    let store_path = dir.path().join("state.sqlite");
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let listen = listener.local_addr()?;
    let mut config = demo_config(&world, dir.path(), &store_path, listen)?;
    // A short demo: sweep every 10 s, so changes that move no watermark (a task completed in
    // GHL, a note) cross within seconds instead of the minutes a real schedule would take.
    config.schedule.sweep = "*/10 * * * * *"
        .parse()
        .map_err(|e: String| anyhow::anyhow!(e))?;
    println!("trengo-sync demo: the real daemon against in-process fakes of Trengo and GHL");
    println!(
        "  Trengo fake  {}  (admin: {}/_sim/)",
        world.trengo_base_url(),
        world.trengo_web_url()
    );
    println!(
        "  GHL fake     {}  (admin: {}/_sim/)",
        world.ghl_base_url(),
        world.ghl_base_url()
    );
    println!("  status       http://{listen}/status   metrics http://{listen}/metrics");
    println!("  store        {} (temporary)", store_path.display());
    println!(
        "  rules        tickets labelled GHL ⇄ GHL tasks; tags with prefix trengo:; internal notes; \
         assignee by e-mail; conflicts settled by `newest`; polls every 5 s"
    );
    println!(
        "  contacts     customer number GHL → Trengo; subscription tier both ways; agent \
         context (GHL link, next appointment, open tasks, tags) and the task's due date and \
         title in Trengo fields"
    );
    println!("  stops after {}s or on Ctrl-C\n", duration.as_secs());

    let hands = config.clone();
    let daemon = Daemon::new(config, listener).spawn();
    // The clients a person's contact-field edits go through (made once the store exists).
    let mut people: Option<Engine> = None;

    let start = tokio::time::Instant::now();
    let deadline = start + duration;
    let mut seen = BTreeSet::new();
    let mut next_edit = 0;
    let mut crossed = 0usize;
    let mut ctrl_c = std::pin::pin!(tokio::signal::ctrl_c());
    loop {
        tokio::select! {
            _ = &mut ctrl_c => { println!("\nCtrl-C: stopping"); break; }
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
        if tokio::time::Instant::now() >= deadline || daemon.is_finished() {
            break;
        }
        let elapsed = start.elapsed().as_secs();
        while next_edit < SCRIPT.len() && SCRIPT[next_edit].at <= elapsed {
            let done = if next_edit < PERSON_EDITS {
                edit(&world, &store_path, next_edit)
            } else {
                contact_edit(&world, &hands, &mut people, next_edit).await
            };
            match done {
                Ok(detail) => println!(
                    "[{elapsed:>3}s] edit  {} ({detail})",
                    SCRIPT[next_edit].what
                ),
                Err(e) => println!(
                    "[{elapsed:>3}s] edit  {} skipped: {e}",
                    SCRIPT[next_edit].what
                ),
            }
            next_edit += 1;
        }
        crossed += print_crossings(&store_path, &mut seen, elapsed);
    }
    if let Err(e) = daemon.stop().await {
        println!("the daemon stopped with an error: {e:#}");
    }
    crossed += print_crossings(&store_path, &mut seen, start.elapsed().as_secs());
    summary(&world, &store_path, crossed);
    world.shutdown().await;
    Ok(())
}

/// The demo's configuration: the world's, with the `[contacts]` of [`EXAMPLE`], written to
/// `dir` and loaded as a user's file is (the process environment is ignored, as the world's
/// own is, so a user's `TRENGO_SYNC__*` variables cannot bend it).
fn demo_config(
    world: &SimWorld,
    dir: &Path,
    store_path: &Path,
    listen: std::net::SocketAddr,
) -> anyhow::Result<Config> {
    let mut example: toml::Table = EXAMPLE.parse()?;
    let mut contacts = example
        .remove("contacts")
        .ok_or_else(|| anyhow::anyhow!("config.example.toml has no [contacts] section"))?;
    if let Some(section) = contacts.as_table_mut() {
        section.insert("enabled".into(), toml::Value::Boolean(true));
    }
    let contacts = toml::to_string(&toml::Table::from_iter([("contacts".to_owned(), contacts)]))?;
    let path = dir.join("demo.toml");
    std::fs::write(
        &path,
        format!("{}\n{contacts}", world.config_toml(store_path, listen)),
    )?;
    Ok(crate::config::load_with(
        &path,
        Env::raw().filter(|_| false),
    )?)
}

/// The edits of [`SCRIPT`] made on links through the fakes' admin surfaces; the rest edit
/// contact fields, which a person's browser writes through the API ([`contact_edit`]).
const PERSON_EDITS: usize = 7;

fn links(store_path: &std::path::Path) -> anyhow::Result<Vec<store::links::Link>> {
    let s = Store::open_read_only(store_path)?;
    Ok(store::links::active(s.conn())?)
}

/// Makes scripted edit `n` on a linked item; returns what it touched.
fn edit(world: &SimWorld, store_path: &std::path::Path, n: usize) -> anyhow::Result<String> {
    let links = links(store_path)?;
    let pick = |i: usize| links.get(i % links.len().max(1)).cloned();
    let Some(link) = pick(n) else {
        anyhow::bail!("no link yet");
    };
    let t = world.trengo();
    let g = world.ghl();
    Ok(match n {
        0 => {
            t.close_ticket(link.ticket_id)?;
            format!("ticket #{}", link.ticket_id)
        }
        1 => {
            g.complete_task(&link.task_id).map_err(ghl_err)?;
            format!("task {}", link.task_id)
        }
        2 => {
            g.add_contact_tag(&link.ghl_contact_id, "trengo:callback")
                .map_err(ghl_err)?;
            format!("contact {}", link.ghl_contact_id)
        }
        3 => {
            t.post_note(
                link.ticket_id,
                "Called the customer: wants a quote by Friday.",
            )?;
            format!("ticket #{}", link.ticket_id)
        }
        4 => {
            g.add_note(&link.ghl_contact_id, "Discount of 10% approved by sales.")
                .map_err(ghl_err)?;
            format!("contact {}", link.ghl_contact_id)
        }
        5 => {
            let label = t
                .label_id("trengo:vip")
                .ok_or_else(|| anyhow::anyhow!("the fake has no trengo:vip label"))?;
            // A contact not yet tagged, so the label is news to GHL and visibly crosses
            // (on a tagged contact the union over its tickets would not change).
            let untagged = links
                .iter()
                .find(|l| {
                    g.contact_json(&l.ghl_contact_id).is_ok_and(|c| {
                        !c["tags"]
                            .as_array()
                            .is_some_and(|tags| tags.iter().any(|t| t == "trengo:vip"))
                    })
                })
                .unwrap_or(&link);
            t.add_label(untagged.ticket_id, label)?;
            format!("ticket #{}", untagged.ticket_id)
        }
        _ => {
            // An open link, so the reassignment is the only change on it.
            let open = links
                .iter()
                .find(|l| {
                    t.ticket_json(l.ticket_id)
                        .is_ok_and(|j| j["status"] == "OPEN" || j["status"] == "ASSIGNED")
                })
                .ok_or_else(|| anyhow::anyhow!("no link with an open ticket"))?;
            let (to_trengo, to_ghl) = world.reassign_both(open.ticket_id, &open.task_id)?;
            format!(
                "ticket #{} to {to_trengo} in Trengo, task {} to {to_ghl} in GHL",
                open.ticket_id, open.task_id
            )
        }
    })
}

/// The stored contact pairs, oldest first.
fn pairs(store_path: &Path) -> anyhow::Result<Vec<store::pairs::Pair>> {
    let s = Store::open_read_only(store_path)?;
    let mut pairs = store::pairs::stalest(s.conn(), usize::MAX)?;
    pairs.sort_by_key(|p| p.id);
    Ok(pairs)
}

/// The subscription tier after `tier` (the GHL field's options, in order).
fn next_tier(tier: &str) -> &'static str {
    const TIERS: [&str; 3] = ["Basic", "Pro", "Enterprise"];
    let at = TIERS
        .iter()
        .position(|t| t.eq_ignore_ascii_case(tier.trim()));
    TIERS[at.map_or(0, |i| (i + 1) % TIERS.len())]
}

/// Makes scripted edit `n` on a contact pair through the fakes' APIs, as a person's browser
/// does (the admin surfaces edit no contact fields; these requests count in the summary);
/// returns what it touched.
async fn contact_edit(
    world: &SimWorld,
    config: &Config,
    people: &mut Option<Engine>,
    n: usize,
) -> anyhow::Result<String> {
    let pairs = pairs(&config.store.path)?;
    let (Some(first), Some(second)) = (pairs.first(), pairs.get(1).or(pairs.first())) else {
        anyhow::bail!("no contact pair yet");
    };
    if people.is_none() {
        *people = Some(Engine::from_config(config, SystemClock::shared(), true)?);
    }
    let Some(api) = people.as_ref() else {
        anyhow::bail!("no API clients");
    };
    Ok(match n {
        7 => {
            let field = world
                .ghl()
                .custom_field_id(TIER_KEY)
                .ok_or_else(|| anyhow::anyhow!("the GHL fake has no {TIER_KEY} field"))?;
            let contact = api.ghl.contact(&first.ghl_contact_id).await?;
            let was = contact
                .custom_fields
                .iter()
                .find(|f| f.id == field)
                .and_then(|f| f.value.as_str())
                .unwrap_or_default()
                .to_owned();
            let tier = next_tier(&was);
            let update = ContactFields {
                custom_fields: Some(vec![CustomFieldInput::by_id(field, json!(tier))]),
                ..ContactFields::default()
            };
            api.ghl
                .update_contact(&first.ghl_contact_id, &update)
                .await?;
            format!(
                "GHL contact {}: \"{was}\" → \"{tier}\"",
                first.ghl_contact_id
            )
        }
        8 => {
            let mut fields = std::pin::pin!(api.trengo.custom_fields());
            let mut field = None;
            while let Some(f) = fields.next().await {
                let f = f?;
                if f.title.as_deref() == Some(TIER_TITLE) {
                    field = Some(f.id);
                    break;
                }
            }
            let field = field
                .ok_or_else(|| anyhow::anyhow!("the Trengo fake has no {TIER_TITLE} field"))?;
            let contact = second.trengo_contact_id;
            let was = api
                .trengo
                .contact(contact)
                .await?
                .custom_field(field)
                .unwrap_or_default()
                .to_owned();
            let tier = next_tier(&was);
            api.trengo
                .set_contact_custom_field(contact, field, tier)
                .await?;
            format!("Trengo contact {contact}: \"{was}\" → \"{tier}\"")
        }
        _ => {
            // Two days ahead at 10:00 UTC: the context shows it in the location's zone.
            let start = (chrono::Utc::now() + chrono::Duration::days(2))
                .date_naive()
                .and_hms_opt(10, 0, 0)
                .map(|t| t.and_utc())
                .ok_or_else(|| anyhow::anyhow!("no 10:00 on that day"))?;
            world
                .ghl()
                .add_appointment(
                    &first.ghl_contact_id,
                    &json!({"title": "Renewal call", "startTime": start.to_rfc3339()}),
                )
                .map_err(ghl_err)?;
            format!(
                "GHL contact {}: \"Renewal call\" at {}",
                first.ghl_contact_id,
                start.format("%Y-%m-%d %H:%M UTC")
            )
        }
    })
}

fn ghl_err(e: crate::sim::ghl::error::GhlError) -> anyhow::Error {
    anyhow::anyhow!("the GHL fake refused: {} {}", e.status, e.message)
}

/// Prints ledger entries not printed yet; returns how many.
fn print_crossings(
    store_path: &std::path::Path,
    seen: &mut BTreeSet<String>,
    elapsed: u64,
) -> usize {
    let Ok(s) = Store::open_read_only(store_path) else {
        return 0;
    };
    let Ok(mut entries) = store::ledger::recent(s.conn(), None, 500) else {
        return 0;
    };
    entries.reverse();
    let mut n = 0;
    for e in entries {
        // The whole entry: a pass records many entries in one instant (a contact pair's
        // context fields all at once), told apart only by their field and values.
        let key = format!("{e:?}");
        if !seen.insert(key) {
            continue;
        }
        n += 1;
        if e.kind == store::ledger::EntryKind::ConflictSettled {
            let link = match (e.link_id, e.pair_id) {
                (Some(l), _) => format!(" on link {}", l.0),
                (None, Some(p)) => format!(" on contact pair {p}"),
                (None, None) => String::new(),
            };
            let field = e.field.as_deref().unwrap_or("a field");
            let winner = e.side.as_deref().unwrap_or("?");
            let losing = e
                .losing_value
                .as_ref()
                .map_or_else(|| "(none)".to_string(), |v| v.to_string());
            println!(
                "[{elapsed:>3}s] conflict {field}{link}: both sides changed; the policy gave it \
                 to {winner}; the losing value {losing} is kept in the ledger"
            );
            continue;
        }
        let side = match e.side.as_deref() {
            Some("ghl") => "→ GHL   ",
            Some("trengo") => "→ Trengo",
            _ => "  store ",
        };
        let what =
            e.op.clone()
                .or(e.detail.clone())
                .unwrap_or_else(|| format!("{:?}", e.kind));
        println!("[{elapsed:>3}s] sync  {side} {what}");
    }
    n
}

fn summary(world: &SimWorld, store_path: &std::path::Path, crossed: usize) {
    println!("\nsummary");
    if let Ok(s) = Store::open_read_only(store_path) {
        if let Ok(counts) = store::links::count_by_state(s.conn()) {
            println!(
                "  links: {} active, {} out of scope",
                counts.active, counts.out_of_scope
            );
        }
        if let Ok(pairs) = store::pairs::count(s.conn()) {
            println!("  contact pairs: {pairs}");
        }
        if let Ok(held) = store::conflicts::list(s.conn()) {
            println!("  conflicts held: {}", held.len());
        }
        if let Ok(retries) = store::retries::all(s.conn()) {
            println!("  items waiting for a retry: {}", retries.len());
        }
    }
    println!("  changes recorded in the ledger: {crossed}");
    let t = world.trengo().counters();
    let g = world.ghl().counter_snapshot();
    println!(
        "  API requests: Trengo {} ({} writes), GHL {} ({} writes)",
        t.total, t.writes, g.total, g.writes
    );
}

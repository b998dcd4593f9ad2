//! The simulated world: both fakes seeded with the same people, deterministically; its
//! generated configuration; the real clients at work against it; and `trengo-sync sim`'s body.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use futures::TryStreamExt;
use secrecy::ExposeSecret;
use serde_json::Value;
use tokio::net::TcpListener;
use url::Url;

use trengo_sync::api::Budget;
use trengo_sync::clock::{ManualClock, SharedClock};
use trengo_sync::ghl::{GhlAuth, GhlClient, GhlClientConfig};
use trengo_sync::sim::world::{
    LINK_LABEL, LINK_TAG, MANAGED_PREFIX, ServeOptions, SimWorld, WorldOptions, serve,
};
use trengo_sync::trengo::{MessageKind, TicketFilters, TrengoClient, TrengoClientConfig};

fn start_time() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-03-02T10:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

async fn world(seed: u64) -> (SimWorld, Arc<ManualClock>) {
    let clock = ManualClock::new(start_time());
    let shared: SharedClock = clock.clone();
    let trengo = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let ghl = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let options = WorldOptions {
        seed,
        clock: shared,
        ..WorldOptions::default()
    };
    (SimWorld::start(trengo, ghl, options).unwrap(), clock)
}

fn listen() -> SocketAddr {
    "127.0.0.1:8642".parse().unwrap()
}

/// Trengo label names by id, from the fake's snapshot.
fn trengo_labels(snapshot: &Value) -> BTreeMap<i64, String> {
    snapshot["labels"]
        .as_object()
        .unwrap()
        .values()
        .map(|l| {
            (
                l["id"].as_i64().unwrap(),
                l["name"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn trengo_client(world: &SimWorld, clock: SharedClock) -> TrengoClient {
    let config = TrengoClientConfig::new(
        Url::parse(&world.trengo_base_url()).unwrap(),
        world.trengo_token(),
        world.trengo_zone(),
    );
    TrengoClient::new(config, clock, Arc::new(Budget::trengo_default())).unwrap()
}

fn ghl_client(world: &SimWorld, clock: SharedClock) -> GhlClient {
    let config = GhlClientConfig::new(
        Url::parse(&world.ghl_base_url()).unwrap(),
        world.location_id(),
        GhlAuth::PrivateToken(world.ghl_token()),
    );
    GhlClient::new(config, clock, Arc::new(Budget::ghl_default())).unwrap()
}

#[tokio::test]
async fn same_seed_gives_the_same_world() {
    let (a, _) = world(7).await;
    let (b, _) = world(7).await;
    let (c, _) = world(8).await;
    assert_eq!(a.snapshot(), b.snapshot());
    assert_eq!(a.people(), b.people());
    assert_ne!(a.snapshot(), c.snapshot());
}

#[tokio::test]
async fn every_trengo_person_has_a_ghl_contact_with_the_same_email_and_phone() {
    let (world, _) = world(3).await;
    let snapshot = world.snapshot();
    let ghl: BTreeMap<String, String> = snapshot["ghl"]["contacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["email"].as_str().unwrap().to_owned(),
                c["phone"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let trengo = snapshot["trengo"]["contacts"].as_object().unwrap();
    assert_eq!(trengo.len(), 10);
    for contact in trengo.values() {
        let email = contact["email"].as_str().unwrap();
        assert_eq!(
            ghl.get(email).map(String::as_str),
            contact["phone"].as_str(),
            "{email} is missing in GHL or has another phone"
        );
    }
    assert_eq!(world.people().len(), 10);
}

#[tokio::test]
async fn seeded_world_holds_every_case_the_sync_meets() {
    for seed in [1, 2, 3, 4, 5] {
        let (world, _) = world(seed).await;
        let snapshot = world.snapshot();
        let trengo = &snapshot["trengo"];
        let labels = trengo_labels(trengo);
        let carried: BTreeSet<&str> = trengo["tickets"]
            .as_object()
            .unwrap()
            .values()
            .flat_map(|t| t["label_ids"].as_array().unwrap().iter())
            .map(|id| labels[&id.as_i64().unwrap()].as_str())
            .collect();
        assert!(
            carried.contains(LINK_LABEL),
            "seed {seed}: no linked ticket"
        );
        assert!(
            carried.iter().any(|l| l.starts_with(MANAGED_PREFIX)),
            "seed {seed}: no managed label on any ticket"
        );
        let kinds: BTreeSet<&str> = trengo["messages"]
            .as_object()
            .unwrap()
            .values()
            .map(|m| m["kind"].as_str().unwrap())
            .collect();
        assert!(kinds.contains("NOTE") && kinds.contains("INBOUND"));

        let ghl = &snapshot["ghl"];
        let contacts = ghl["contacts"].as_array().unwrap();
        let tagged = |c: &Value, pred: &dyn Fn(&str) -> bool| {
            c["tags"]
                .as_array()
                .unwrap()
                .iter()
                .any(|t| pred(t.as_str().unwrap()))
        };
        let open_task_of = |id: &str| {
            ghl["tasks"]
                .as_array()
                .unwrap()
                .iter()
                .any(|t| t["contactId"] == id && t["completed"] == false)
        };
        assert!(
            contacts
                .iter()
                .any(|c| tagged(c, &|t| t == LINK_TAG) && open_task_of(c["id"].as_str().unwrap())),
            "seed {seed}: no contact in scope with an open task"
        );
        assert!(
            contacts
                .iter()
                .any(|c| tagged(c, &|t| t.starts_with(MANAGED_PREFIX)))
        );
        assert!(!ghl["notes"].as_array().unwrap().is_empty());
    }
}

#[tokio::test]
async fn generated_config_loads_and_points_at_the_fakes() {
    let (world, _) = world(1).await;
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("state.sqlite");
    let config = world.config(&store, listen()).unwrap();

    assert_eq!(
        config.trengo.base_url.url().as_str().trim_end_matches('/'),
        world.trengo_base_url()
    );
    assert_eq!(
        config.ghl.base_url.url().as_str().trim_end_matches('/'),
        world.ghl_base_url()
    );
    assert_eq!(
        config.trengo.token.as_ref().unwrap().expose(),
        world.trengo_token().expose_secret()
    );
    assert_eq!(
        config.ghl.token.as_ref().unwrap().expose(),
        world.ghl_token().expose_secret()
    );
    assert_eq!(config.ghl.location_id.as_deref(), Some(world.location_id()));
    assert_eq!(config.trengo.timezone.0, world.trengo_zone());
    assert_eq!(config.link.trengo_label, LINK_LABEL);
    assert_eq!(config.link.ghl_tag, LINK_TAG);
    assert_eq!(config.tags.managed_prefix, MANAGED_PREFIX);
    assert_eq!(config.link.trengo_channel_id, world.trengo_channel_id());
    assert!(
        world
            .trengo()
            .channel_ids()
            .contains(&config.link.trengo_channel_id.unwrap())
    );
    assert_eq!(config.webhooks.ghl_public_key, world.ghl_public_key());
    assert_eq!(config.store.path, store);
    assert_eq!(config.http.listen, listen());
    assert_eq!(config.schedule.trengo_poll.as_str(), "*/5 * * * * *");
    // Secrets stay out of Debug output even for the fakes' tokens.
    assert!(!format!("{config:?}").contains(world.trengo_token().expose_secret()));
}

#[tokio::test]
async fn config_text_is_what_the_sim_command_prints() {
    let (world, _) = world(1).await;
    let text = world.config_toml(Path::new("sim.sqlite"), listen());
    let banner = world.banner(Path::new("sim.sqlite"), listen());
    assert!(banner.contains(&text));
    assert!(banner.contains(&world.trengo_base_url()));
    assert!(banner.contains(&world.ghl_base_url()));
    assert!(banner.contains("/_sim/"));
    assert!(banner.contains(world.trengo_token().expose_secret()));
    assert!(banner.contains(world.ghl_token().expose_secret()));
    assert!(text.parse::<toml::Table>().is_ok());
}

#[tokio::test]
async fn real_clients_read_and_write_the_world() {
    let (world, clock) = world(1).await;
    let shared: SharedClock = clock.clone();
    let trengo = trengo_client(&world, shared.clone());
    let ghl = ghl_client(&world, shared);

    // Every ticket, over two pages, following links.next to the end.
    let tickets: Vec<_> = trengo
        .tickets(&TicketFilters::default())
        .try_collect()
        .await
        .unwrap();
    let ids: BTreeSet<i64> = tickets.iter().map(|t| t.id).collect();
    assert_eq!(ids, world.trengo().ticket_ids().into_iter().collect());
    assert!(ids.len() > 25);

    // Every person, through contact search.
    let found: Vec<_> = ghl
        .contacts_updated_between(start_time() - Duration::days(90), None)
        .try_collect()
        .await
        .unwrap();
    let emails: BTreeSet<String> = found.iter().filter_map(|c| c.email.clone()).collect();
    let people: BTreeSet<String> = world.people().iter().map(|p| p.email.clone()).collect();
    assert_eq!(emails, people);

    // The first person is in scope on GHL: an open task and a note.
    let person = &world.people()[0];
    let tasks = ghl.tasks(&person.ghl_contact_id).await.unwrap();
    let open = tasks.iter().find(|t| !t.completed).expect("an open task");
    let notes = ghl.notes(&person.ghl_contact_id).await.unwrap();
    assert!(!notes.is_empty());

    // Attach a managed label the ticket lacks.
    let callback = world.trengo().label_id("trengo:callback").unwrap();
    let ticket = tickets
        .iter()
        .find(|t| t.labels.iter().all(|l| l.id != callback))
        .unwrap()
        .id;
    trengo.attach_label(ticket, callback).await.unwrap();
    let after = trengo.ticket(ticket).await.unwrap();
    assert!(after.labels.iter().any(|l| l.id == callback));

    // An internal note stays internal.
    let note = trengo
        .add_internal_note(ticket, "Synced from the world test")
        .await
        .unwrap();
    assert_eq!(note.kind, MessageKind::Note);
    let messages: Vec<_> = trengo.messages(ticket).try_collect().await.unwrap();
    assert!(messages.iter().any(|m| m.id == note.id
        && m.kind == MessageKind::Note
        && m.message.as_deref() == Some("Synced from the world test")));

    // Complete the open task, then tag the contact.
    let done = ghl
        .set_task_completed(&person.ghl_contact_id, &open.id, true)
        .await
        .unwrap();
    assert!(done.completed);
    let tasks = ghl.tasks(&person.ghl_contact_id).await.unwrap();
    assert!(tasks.iter().any(|t| t.id == open.id && t.completed));
    ghl.add_tags(&person.ghl_contact_id, &["trengo:callback".to_owned()])
        .await
        .unwrap();
    let contact = ghl.contact(&person.ghl_contact_id).await.unwrap();
    assert!(contact.tags.iter().any(|t| t == "trengo:callback"));
}

async fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().port()
}

#[tokio::test]
async fn serve_answers_on_the_given_ports_and_stops_on_shutdown() {
    let (trengo_port, ghl_port) = (free_port().await, free_port().await);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(
        ServeOptions {
            trengo_port,
            ghl_port,
            seed: 4,
            tickets: 12,
        },
        async {
            let _ = stopped.await;
        },
    ));
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let trengo_state = format!("http://127.0.0.1:{trengo_port}/_sim/state");
    let ghl_state = format!("http://127.0.0.1:{ghl_port}/_sim/state");
    let mut answer = None;
    for _ in 0..200 {
        if let Ok(response) = http.get(&trengo_state).send().await {
            answer = Some(response.json::<Value>().await.unwrap());
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    let trengo = answer.expect("the Trengo fake answers on its port");
    assert_eq!(trengo["tickets"].as_object().unwrap().len(), 12);
    let ghl: Value = http
        .get(&ghl_state)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ghl["contacts"].as_array().unwrap().len(), 10);

    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
    let fresh = reqwest::Client::builder().no_proxy().build().unwrap();
    assert!(fresh.get(&trengo_state).send().await.is_err());
    assert!(fresh.get(&ghl_state).send().await.is_err());
}

#[tokio::test]
async fn a_tiny_world_still_has_a_linked_ticket_a_managed_label_and_a_note() {
    let clock: SharedClock = ManualClock::new(start_time());
    let options = WorldOptions {
        seed: 11,
        tickets: 2,
        contacts: 1,
        clock,
        ..WorldOptions::default()
    };
    let world = SimWorld::bind(0, 0, options).await.unwrap();
    let trengo = world.trengo().snapshot();
    let labels = trengo_labels(&trengo);
    let carried: BTreeSet<&str> = trengo["tickets"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|t| t["label_ids"].as_array().unwrap().iter())
        .map(|id| labels[&id.as_i64().unwrap()].as_str())
        .collect();
    assert!(carried.contains(LINK_LABEL));
    assert!(carried.contains("trengo:vip"));
    assert!(
        trengo["messages"]
            .as_object()
            .unwrap()
            .values()
            .any(|m| m["kind"] == "NOTE")
    );
    assert_eq!(world.people().len(), 1);
    world.shutdown().await;
}

#[tokio::test]
async fn seeding_leaves_no_webhook_events_behind() {
    let (world, _) = world(2).await;
    assert!(world.ghl().webhook_events().is_empty());
    assert!(world.trengo().webhook_log().is_empty());
}

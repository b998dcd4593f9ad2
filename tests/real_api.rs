//! Where the real APIs may differ from our picture of them (issue #14): each uncertain fact is
//! a fake switch whose pessimistic setting is the default, and the clients work under both.
//! Paging that drops the filters, answers of an unexpected shape, writes reality may refuse.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use futures::{StreamExt, TryStreamExt};
use secrecy::SecretString;
use tokio::net::TcpListener;
use trengo_sync::api::{Budget, RetryPolicy};
use trengo_sync::clock::{Clock as _, ManualClock, SharedClock};
use trengo_sync::sim::trengo::{DEFAULT_TOKEN, SeedSpec, TrengoFake, TrengoFakeOptions};
use trengo_sync::trengo::{TicketFilters, TicketStatus, TrengoClient, TrengoClientConfig};
use url::Url;

fn start_time() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-02-03T13:17:31Z")
        .unwrap()
        .with_timezone(&Utc)
}

struct Trengo {
    fake: TrengoFake,
    clock: Arc<ManualClock>,
    client: TrengoClient,
}

async fn trengo(options: TrengoFakeOptions, tickets: usize) -> Trengo {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let clock = ManualClock::new(start_time());
    let zone = options.zone;
    let fake = TrengoFake::start(listener, options, clock.clone()).unwrap();
    fake.seed(&SeedSpec {
        tickets,
        ..SeedSpec::default()
    });
    let shared: SharedClock = clock.clone();
    let mut config = TrengoClientConfig::new(
        Url::parse(&fake.base_url()).unwrap(),
        SecretString::from(DEFAULT_TOKEN.to_string()),
        zone,
    );
    config.timeout = Duration::from_secs(10);
    config.retry = RetryPolicy {
        max_retries: 3,
        min_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(50),
    };
    let budget = Arc::new(Budget::new("trengo", 60_000, Duration::from_secs(60)));
    let client = TrengoClient::new(config, shared, budget).unwrap();
    Trengo {
        fake,
        clock,
        client,
    }
}

fn with_links_keeping_filters(keep: bool) -> TrengoFakeOptions {
    TrengoFakeOptions {
        next_link_keeps_filters: keep,
        ..TrengoFakeOptions::default()
    }
}

// ----- item 2: paging -----

#[tokio::test]
async fn a_filtered_listing_stays_filtered_on_every_page_whatever_links_next_carries() {
    for keep in [false, true] {
        let t = trengo(with_links_keeping_filters(keep), 120).await;
        let everything: Vec<_> = t
            .client
            .tickets(&TicketFilters::default())
            .try_collect()
            .await
            .unwrap();
        // The most common status: more than a page of it, less than the mailbox.
        let status = [
            TicketStatus::Open,
            TicketStatus::Assigned,
            TicketStatus::Closed,
        ]
        .into_iter()
        .max_by_key(|s| everything.iter().filter(|t| &t.status == s).count())
        .unwrap();
        let closed: HashSet<i64> = everything
            .iter()
            .filter(|t| t.status == status)
            .map(|t| t.id)
            .collect();
        assert!(closed.len() > 25 && closed.len() < everything.len());
        t.fake.reset_counters();
        let listed: Vec<_> = t
            .client
            .tickets(&TicketFilters {
                status: Some(status.clone()),
                ..TicketFilters::default()
            })
            .try_collect()
            .await
            .unwrap();
        let ids: HashSet<i64> = listed.iter().map(|t| t.id).collect();
        assert_eq!(ids, closed, "links keep filters: {keep}");
        assert!(listed.iter().all(|t| t.status == status));
        let pages = t.fake.counters().count("GET /api/v2/tickets");
        assert_eq!(
            pages as usize,
            closed.len().div_ceil(25),
            "one request per page of closed tickets, not a crawl of the mailbox (keep: {keep})"
        );
    }
}

#[tokio::test]
async fn a_watermark_listing_is_oldest_first_and_misses_no_ticket_that_moves_mid_walk() {
    for keep in [false, true] {
        let t = trengo(with_links_keeping_filters(keep), 80).await;
        t.clock.advance(chrono::Duration::minutes(5));
        let watermark = start_time() - chrono::Duration::days(365);
        let mut stream = t
            .client
            .tickets_updated_since(watermark, &TicketFilters::default())
            .boxed();
        let mut seen = Vec::new();
        while seen.len() < 25 {
            seen.push(stream.next().await.unwrap().unwrap().id);
        }
        // A ticket not reached yet gets a message: newest first, it would jump to page 1,
        // behind the walk; oldest first, it moves to the end, ahead of it.
        let all = t.fake.ticket_ids();
        let moved = *all.iter().find(|id| !seen.contains(id)).unwrap();
        t.fake
            .post_customer_message(moved, "Any news on my order?")
            .unwrap();
        while let Some(ticket) = stream.next().await {
            seen.push(ticket.unwrap().id);
        }
        let unique: HashSet<i64> = seen.iter().copied().collect();
        assert!(unique.contains(&moved), "keep: {keep}");
        assert_eq!(unique.len(), all.len(), "keep: {keep}");
        let sorts = t.fake.counters();
        assert!(sorts.count("GET /api/v2/tickets") >= 4);
    }
}

// ----- item 4: answers of an unexpected shape -----

mod support;

use trengo_sync::sim::Faults;

fn stripping(keys: &[&str]) -> Faults {
    Faults {
        strip_keys: keys.iter().map(|k| k.to_string()).collect(),
        ..Faults::default()
    }
}

#[tokio::test]
async fn an_answer_missing_what_the_engine_reads_is_an_error_naming_the_endpoint() {
    let world = support::world(3, 6, 4).await;
    let dir = tempfile::tempdir().unwrap();
    let engine = support::engine(&world, &dir).await;
    let person = world.people()[0].clone();

    world.ghl().set_faults(stripping(&["contact"]));
    let err = engine
        .ghl
        .find_duplicate(Some(&person.email), None)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("/contacts/search/duplicate") && err.contains("contact"),
        "{err}"
    );

    world.ghl().set_faults(stripping(&["users"]));
    let err = engine.ghl.users().await.unwrap_err().to_string();
    assert!(err.contains("/users/") && err.contains("users"), "{err}");
    world.ghl().set_faults(Faults::default());

    let ticket = world.trengo().ticket_ids()[0];
    world.trengo().set_faults(stripping(&["labels"]));
    let err = engine.trengo.ticket(ticket).await.unwrap_err().to_string();
    assert!(
        err.contains(&format!("/tickets/{ticket}")) && err.contains("labels"),
        "{err}"
    );
    world.trengo().set_faults(Faults::default());
    assert!(engine.trengo.ticket(ticket).await.is_ok());
}

// ----- item 3: writes reality may refuse -----

fn ghl_switches(world: &trengo_sync::sim::world::SimWorld, accept: bool) {
    let mut switches = world.ghl().switches();
    switches.upsert_phone_only_accepted = accept;
    switches.task_update_partial_accepted = accept;
    world.ghl().set_switches(switches);
}

#[tokio::test]
async fn a_contact_with_only_a_phone_is_made_whether_or_not_upsert_takes_it() {
    for accept in [false, true] {
        let world = support::world(4, 4, 3).await;
        ghl_switches(&world, accept);
        let dir = tempfile::tempdir().unwrap();
        let engine = support::engine(&world, &dir).await;
        let phone = "+31687654321";
        let fields = trengo_sync::ghl::ContactFields {
            phone: Some(phone.into()),
            name: Some("Phone Only".into()),
            ..Default::default()
        };
        let made = engine.ghl.upsert_contact(&fields).await.unwrap();
        assert!(made.created, "accept: {accept}");
        let found = engine.ghl.find_duplicate(None, Some(phone)).await.unwrap();
        assert_eq!(
            found.map(|c| c.id),
            Some(made.contact.id),
            "accept: {accept}"
        );
    }
}

#[tokio::test]
async fn a_task_update_keeps_its_title_and_due_date_whether_or_not_a_partial_put_is_taken() {
    for accept in [false, true] {
        let world = support::world(5, 4, 3).await;
        ghl_switches(&world, accept);
        let dir = tempfile::tempdir().unwrap();
        let engine = support::engine(&world, &dir).await;
        let contact = world.people()[0].ghl_contact_id.clone();
        let task = world
            .ghl()
            .create_task(
                &contact,
                &serde_json::json!({"title": "Call back", "body": "b"}),
            )
            .unwrap();
        let task_id = task["id"].as_str().unwrap().to_string();
        let before = engine.ghl.task(&contact, &task_id).await.unwrap();
        let update = trengo_sync::ghl::TaskUpdate {
            body: Some("new body".into()),
            ..Default::default()
        };
        let after = engine
            .ghl
            .update_task(&contact, &task_id, &update)
            .await
            .unwrap();
        assert_eq!(after.body.as_deref(), Some("new body"), "accept: {accept}");
        assert_eq!(after.title, before.title, "accept: {accept}");
        // To the second: `dueDate` is sent without milliseconds, as GHL takes it.
        let second = |d: Option<DateTime<Utc>>| d.map(|d| d.trunc_subsecs(0));
        assert_eq!(
            second(after.due_date),
            second(before.due_date),
            "accept: {accept}"
        );
    }
}

#[tokio::test]
async fn a_trengo_contact_on_a_whatsapp_channel_is_made_with_the_phone() {
    for accept in [false, true] {
        let t = trengo(
            TrengoFakeOptions {
                email_identifier_on_any_channel: accept,
                ..TrengoFakeOptions::default()
            },
            2,
        )
        .await;
        let mut whatsapp = None;
        let mut channels = std::pin::pin!(t.client.channels());
        while let Some(channel) = channels.next().await {
            let channel = channel.unwrap();
            if channel.kind.as_deref() == Some("WA_BUSINESS") {
                whatsapp = Some(channel);
            }
        }
        let whatsapp = whatsapp.unwrap();
        let (email, phone) = (Some("new.person@example.com"), Some("+31600000077"));
        let refused = t
            .client
            .create_contact(whatsapp.id, email.unwrap(), None)
            .await;
        assert_eq!(refused.is_err(), !accept, "the fake's switch: {accept}");
        let identifier =
            trengo_sync::trengo::contact_identifier(whatsapp.kind.as_deref(), email, phone)
                .unwrap();
        assert_eq!(identifier, "+31600000077");
        let made = t
            .client
            .create_contact(whatsapp.id, identifier, Some("New Person"))
            .await
            .unwrap();
        assert_eq!(made.identifier.as_deref(), Some("+31600000077"));
        assert_eq!(
            trengo_sync::trengo::contact_identifier(Some("EMAIL"), email, phone),
            email
        );
    }
}

// ----- item 1: Trengo's time zone -----

use trengo_sync::sim::world::WorldOptions;
use trengo_sync::sync::engine::{Engine, PassKind, PassOptions};

/// An engine on the world's configuration with `trengo.timezone` set to `configured`, on the
/// world's manual clock.
async fn engine_in_zone(
    world: &trengo_sync::sim::world::SimWorld,
    clock: &Arc<ManualClock>,
    dir: &tempfile::TempDir,
    configured: chrono_tz::Tz,
) -> Engine {
    let mut config = world
        .config(&support::store_path(dir), "127.0.0.1:0".parse().unwrap())
        .unwrap();
    config.trengo.timezone = trengo_sync::config::Zone(configured);
    let shared: SharedClock = clock.clone();
    let engine = Engine::from_config(&config, shared, false).unwrap();
    engine.bind_identity().await.unwrap();
    engine
}

async fn trengo_poll(engine: &Engine) {
    engine
        .pass(PassKind::TrengoPoll, PassOptions::default())
        .await
        .unwrap();
}

#[tokio::test]
async fn a_watermark_in_the_accounts_future_raises_the_poll_alarm_a_right_zone_does_not() {
    for (account, alarmed) in [
        (chrono_tz::America::New_York, true),
        (chrono_tz::Europe::Amsterdam, false),
    ] {
        let mut options = WorldOptions::unpaced(31, 12, 4);
        options.trengo.zone = account;
        let (world, clock) = support::rules::world_on_manual_clock(options).await;
        let dir = tempfile::tempdir().unwrap();
        let engine = engine_in_zone(&world, &clock, &dir, chrono_tz::Europe::Amsterdam).await;
        let watch = engine.trengo.poll_watch().clone();
        watch.set_plausible_quiet(chrono::Duration::hours(1));
        trengo_poll(&engine).await; // the backfill: no watermark yet
        trengo_poll(&engine).await; // the first updated_at_gt listing
        // The daemon is running when an agent closes a ticket.
        clock.advance(chrono::Duration::minutes(50));
        let open = world
            .trengo()
            .ticket_ids()
            .into_iter()
            .find(|id| world.trengo().ticket_json(*id).unwrap()["status"] != "CLOSED")
            .unwrap();
        world.trengo().close_ticket(open).unwrap();
        trengo_poll(&engine).await;
        clock.advance(chrono::Duration::minutes(20));
        trengo_poll(&engine).await;
        let health = watch.health(clock.now());
        assert_eq!(
            health.alarm.is_some(),
            alarmed,
            "account {account}: {health:?}"
        );
        if let Some(alarm) = health.alarm {
            assert!(alarm.contains("trengo.timezone"), "{alarm}");
        }
    }
}

#[tokio::test]
async fn the_start_refuses_an_account_east_of_the_configured_zone() {
    let mut options = WorldOptions::unpaced(32, 12, 4);
    options.trengo.zone = chrono_tz::Asia::Tokyo;
    let (world, clock) = support::rules::world_on_manual_clock(options).await;
    let dir = tempfile::tempdir().unwrap();
    let engine = engine_in_zone(&world, &clock, &dir, chrono_tz::Europe::Amsterdam).await;
    let ticket = world.trengo().ticket_ids()[0];
    world
        .trengo()
        .post_customer_message(ticket, "Hello?")
        .unwrap();
    let refused = trengo_sync::doctor::zone_gate(&engine.trengo, &engine.store)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        refused.contains("trengo.timezone") && refused.contains("future"),
        "{refused}"
    );

    let right = tempfile::tempdir().unwrap();
    let engine = engine_in_zone(&world, &clock, &right, chrono_tz::Asia::Tokyo).await;
    trengo_sync::doctor::zone_gate(&engine.trengo, &engine.store)
        .await
        .unwrap();
}

// ----- item 5: failures the fakes never produced -----

/// Passes until one writes nothing, however items failed on the way (the retry queue).
async fn quiet(engine: &Engine) {
    for _ in 0..8 {
        let report = engine
            .pass(PassKind::Reconcile, PassOptions::default())
            .await
            .unwrap();
        if report.writes.trengo + report.writes.ghl == 0 && report.failed.is_empty() {
            return;
        }
    }
    panic!("no quiet pass within 8");
}

#[tokio::test]
async fn a_ghl_create_whose_answer_is_lost_is_not_made_twice() {
    let world = support::world(41, 8, 4).await;
    let dir = tempfile::tempdir().unwrap();
    let engine = support::engine(&world, &dir).await;
    support::first_pass_and_converge(&engine).await.unwrap();
    let person = world.people()[0].clone();

    // A ticket labelled for GHL: its task create happens, the answer is lost.
    let ticket = support::rules::labelled_ticket(&world, &person, "Lost answer");
    world.ghl().counters().reset();
    world.ghl().lose_next_write_answers(1);
    let first = engine
        .pass(PassKind::Poll, PassOptions::default())
        .await
        .unwrap();
    assert!(!first.failed.is_empty(), "the lost answer fails the item");
    let open = trengo_sync::store::Store::open_read_only(support::store_path(&dir))
        .and_then(|s| trengo_sync::store::intents::open_all(s.conn()))
        .unwrap();
    assert_eq!(
        open.len(),
        1,
        "its intent stays open for the next pass to settle"
    );
    quiet(&engine).await;
    let (_, problems) = support::audit(&world, &dir, &engine).await;
    assert!(problems.is_empty(), "{problems:?}");
    let linked: Vec<_> = support::links(&dir)
        .into_iter()
        .filter(|l| l.ticket_id == ticket)
        .collect();
    assert_eq!(linked.len(), 1, "the ticket is linked once");

    // An internal note in Trengo: its GHL copy is made, the answer is lost.
    let note = world
        .trengo()
        .post_note(ticket, "Customer called back, lost answer test")
        .unwrap();
    world.ghl().counters().reset();
    world.ghl().lose_next_write_answers(1);
    let lost = engine
        .pass(PassKind::Reconcile, PassOptions::default())
        .await
        .unwrap();
    assert_eq!(
        world
            .ghl()
            .counters()
            .snapshot()
            .count("POST /contacts/{contactId}/notes"),
        1
    );
    assert!(!lost.failed.is_empty(), "the lost answer fails the item");
    quiet(&engine).await;
    let copies = engine
        .ghl
        .notes(&person.ghl_contact_id)
        .await
        .unwrap()
        .into_iter()
        .filter(|n| {
            trengo_sync::sync::marker::trengo_source(n.body.as_deref().unwrap_or(""))
                .is_some_and(|s| s.message_id == note)
        })
        .count();
    assert_eq!(copies, 1, "the note is copied once");
    let (_, problems) = support::audit(&world, &dir, &engine).await;
    assert!(problems.is_empty(), "{problems:?}");
}

#[tokio::test]
async fn html_error_pages_and_504s_are_retried_and_reported_as_what_they_are() {
    let t = trengo(TrengoFakeOptions::default(), 30).await;
    t.fake.set_faults(Faults {
        html_error_rate: 1.0,
        ..Faults::default()
    });
    let err = t
        .client
        .tickets(&TicketFilters::default())
        .try_collect::<Vec<_>>()
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("HTML page") && err.contains("gateway"),
        "{err}"
    );
    assert!(!err.contains("<html"), "{err}");
    assert!(err.contains("HTTP 50"), "{err}");
    // Now and then, as a gateway does: the retries carry the listing through.
    t.fake.set_faults(Faults {
        html_error_rate: 0.3,
        ..Faults::default()
    });
    let tickets: Vec<_> = t
        .client
        .tickets(&TicketFilters::default())
        .try_collect()
        .await
        .unwrap();
    assert_eq!(tickets.len(), 30);
}

#[tokio::test]
async fn a_token_that_loses_sight_of_a_channel_loses_and_doubles_nothing() {
    let world = support::world(51, 24, 6).await;
    let dir = tempfile::tempdir().unwrap();
    let engine = support::engine(&world, &dir).await;
    support::first_pass_and_converge(&engine).await.unwrap();
    let channel_of = |ticket: i64| {
        world.trengo().ticket_json(ticket).unwrap()["channel"]["id"]
            .as_i64()
            .unwrap()
    };
    let contact_of = |ticket: i64| {
        world.trengo().ticket_json(ticket).unwrap()["contact_id"]
            .as_i64()
            .unwrap()
    };
    let open = |ticket: i64| world.trengo().ticket_json(ticket).unwrap()["status"] != "CLOSED";
    let links: Vec<_> = support::links(&dir)
        .into_iter()
        .filter(|l| open(l.ticket_id))
        .collect();
    // A channel to hide, a link in it, and a link of a person with no ticket in it (a hidden
    // ticket holds back the rest of its person's group until access returns).
    let (hidden_channel, hidden, visible) = world
        .trengo()
        .channel_ids()
        .into_iter()
        .find_map(|channel| {
            let hidden = links.iter().find(|l| channel_of(l.ticket_id) == channel)?;
            let touched: Vec<i64> = world
                .trengo()
                .ticket_ids()
                .into_iter()
                .filter(|t| channel_of(*t) == channel)
                .map(contact_of)
                .collect();
            let visible = links
                .iter()
                .find(|l| !touched.contains(&contact_of(l.ticket_id)))?;
            Some((channel, hidden.clone(), visible.clone()))
        })
        .expect("a seed with a person untouched by one channel");

    // The token's user loses access to a channel while the daemon runs; meanwhile a ticket
    // elsewhere is closed, and the task of a ticket in the hidden channel is completed.
    world.trengo().hide_channels(vec![hidden_channel]);
    world.trengo().close_ticket(visible.ticket_id).unwrap();
    world.ghl().complete_task(&hidden.task_id).unwrap();
    for _ in 0..3 {
        let report = engine
            .pass(PassKind::Reconcile, PassOptions::default())
            .await
            .unwrap();
        for (_, reason) in &report.failed {
            assert!(
                reason.contains("403") && reason.contains("access"),
                "{reason}"
            );
        }
    }
    let task = engine
        .ghl
        .task(&visible.ghl_contact_id, &visible.task_id)
        .await
        .unwrap();
    assert!(task.completed, "the visible ticket's close crossed");

    // Access comes back: what waited crosses, and nothing was made twice.
    world.trengo().hide_channels(Vec::new());
    quiet(&engine).await;
    assert_eq!(
        world.trengo().ticket_json(hidden.ticket_id).unwrap()["status"],
        "CLOSED"
    );
    let (_, problems) = support::audit(&world, &dir, &engine).await;
    assert!(problems.is_empty(), "{problems:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_repeated_and_reordered_webhooks_lose_and_double_nothing() {
    use trengo_sync::sim::WebhookFaults;
    let world = support::world(61, 10, 5).await;
    let dir = tempfile::tempdir().unwrap();
    let (mut config, listener) = support::daemon_config(&world, &dir).await;
    let addr = listener.local_addr().unwrap();
    config.webhooks.enabled = true;
    config.webhooks.ghl_public_key = world.ghl_public_key();
    for event in [
        "TICKET_CLOSED",
        "TICKET_REOPENED",
        "NOTE",
        "TICKET_LABEL_ADDED",
    ] {
        let url = format!("http://{addr}/webhooks/trengo/{event}");
        let secret = support::register_trengo_webhook(&world, event, &url).await;
        config
            .webhooks
            .trengo_secrets
            .insert(event.into(), trengo_sync::config::Secret::new(secret));
    }
    world
        .ghl()
        .register_webhook(&format!("http://{addr}/webhooks/ghl"));
    let faults = WebhookFaults {
        loss_rate: 0.3,
        duplicate_rate: 0.3,
        reorder: true,
    };
    world.trengo().set_webhook_faults(faults.clone());
    world.ghl().set_webhook_faults(faults);
    let daemon = trengo_sync::daemon::run::Daemon::new(config, listener).spawn();
    support::wait_for("the first links", Duration::from_secs(60), async || {
        trengo_sync::store::Store::open_read_only(support::store_path(&dir))
            .and_then(|s| trengo_sync::store::links::active(s.conn()))
            .is_ok_and(|l| l.len() >= 4)
    })
    .await;
    support::wait_until_writes_stop(&world, Duration::from_secs(3), Duration::from_secs(60)).await;
    let open: Vec<_> = support::links(&dir)
        .into_iter()
        .filter(|l| world.trengo().ticket_json(l.ticket_id).unwrap()["status"] != "CLOSED")
        .collect();
    assert!(open.len() >= 3, "{open:?}");
    let (a, b, c) = (open[0].clone(), open[1].clone(), open[2].clone());

    // Edits on both sides while the daemon runs, their webhooks lost, doubled or swapped.
    world.trengo().close_ticket(a.ticket_id).unwrap();
    world.ghl().complete_task(&b.task_id).unwrap();
    let note = world
        .trengo()
        .post_note(c.ticket_id, "Webhook chaos: copied once")
        .unwrap();
    let ghl_note = world
        .ghl()
        .add_note(
            &c.ghl_contact_id,
            &format!("From GHL about #{}, copied once", c.ticket_id),
        )
        .unwrap();
    let ghl_note_id = ghl_note["id"].as_str().unwrap_or_default().to_string();

    let limit = Duration::from_secs(90);
    support::wait_for("A's task completed", limit, async || {
        task_completed(&world, &a).await
    })
    .await;
    support::wait_for("B's ticket closed", limit, async || {
        world.trengo().ticket_json(b.ticket_id).unwrap()["status"] == "CLOSED"
    })
    .await;
    support::wait_for("C's note copied to GHL", limit, async || {
        ghl_notes_naming(&world, &c.ghl_contact_id, note).await >= 1
    })
    .await;
    support::wait_for("the GHL note copied to Trengo", limit, async || {
        trengo_notes_naming(&world, c.ticket_id, &ghl_note_id).await >= 1
    })
    .await;
    support::wait_until_writes_stop(&world, Duration::from_secs(6), Duration::from_secs(60)).await;
    daemon.stop().await.unwrap();

    // The faults were in play: deliveries were lost, and some went out twice.
    let trengo_log = world.trengo().webhook_log();
    let ghl_log = world.ghl().webhook_log();
    let lost = trengo_log.iter().filter(|d| d.error.is_some()).count()
        + ghl_log.iter().filter(|d| d.attempts == 0).count();
    let bodies: Vec<_> = trengo_log
        .iter()
        .map(|d| &d.body)
        .chain(ghl_log.iter().map(|d| &d.body))
        .collect();
    let unique: HashSet<_> = bodies.iter().collect();
    assert!(
        lost > 0 && unique.len() < bodies.len(),
        "lost {lost}, {} of {}",
        unique.len(),
        bodies.len()
    );
    assert_eq!(ghl_notes_naming(&world, &c.ghl_contact_id, note).await, 1);
    assert_eq!(
        trengo_notes_naming(&world, c.ticket_id, &ghl_note_id).await,
        1
    );
    let engine = support::engine(&world, &dir).await;
    let (_, problems) = support::audit(&world, &dir, &engine).await;
    assert!(problems.is_empty(), "{problems:?}");
}

/// A GHL client of the world's location, independent of the running daemon's.
fn ghl_client(world: &trengo_sync::sim::world::SimWorld) -> trengo_sync::ghl::GhlClient {
    use trengo_sync::ghl::{GhlAuth, GhlClient, GhlClientConfig};
    let config = GhlClientConfig::new(
        Url::parse(&world.ghl_base_url()).unwrap(),
        world.location_id(),
        GhlAuth::PrivateToken(world.ghl_token()),
    );
    let clock = trengo_sync::clock::SystemClock::shared();
    let budget = Arc::new(Budget::new("ghl", 10_000, Duration::from_secs(10)));
    GhlClient::new(config, clock, budget).unwrap()
}

/// Whether the task of `link` is completed in GHL.
async fn task_completed(
    world: &trengo_sync::sim::world::SimWorld,
    link: &trengo_sync::store::links::Link,
) -> bool {
    ghl_client(world)
        .task(&link.ghl_contact_id, &link.task_id)
        .await
        .unwrap()
        .completed
}

/// GHL notes of `contact` that are copies of Trengo message `message`.
async fn ghl_notes_naming(
    world: &trengo_sync::sim::world::SimWorld,
    contact: &str,
    message: i64,
) -> usize {
    ghl_client(world)
        .notes(contact)
        .await
        .unwrap()
        .iter()
        .filter(|n| {
            trengo_sync::sync::marker::trengo_source(n.body.as_deref().unwrap_or(""))
                .is_some_and(|s| s.message_id == message)
        })
        .count()
}

/// Trengo notes on `ticket` that are copies of GHL note `note`.
async fn trengo_notes_naming(
    world: &trengo_sync::sim::world::SimWorld,
    ticket: i64,
    note: &str,
) -> usize {
    let client = TrengoClient::new(
        TrengoClientConfig::new(
            Url::parse(&world.trengo_base_url()).unwrap(),
            world.trengo_token(),
            world.trengo_zone(),
        ),
        trengo_sync::clock::SystemClock::shared(),
        Arc::new(Budget::new("trengo", 60_000, Duration::from_secs(60))),
    )
    .unwrap();
    let messages: Vec<_> = client.messages(ticket).try_collect().await.unwrap();
    messages
        .iter()
        .filter(|m| m.message.as_deref().unwrap_or("").contains(note))
        .count()
}

#[tokio::test]
async fn a_phone_only_contact_whose_create_answer_is_lost_is_made_once() {
    let world = support::world(42, 8, 4).await;
    let dir = tempfile::tempdir().unwrap();
    let engine = support::rules::engine_with(
        &world,
        &dir,
        &[("create_contacts = false", "create_contacts = true")],
        "",
    )
    .await;
    support::first_pass_and_converge(&engine).await.unwrap();
    // A new customer writes in on WhatsApp: a phone, no e-mail; an agent labels the ticket.
    let whatsapp = world.trengo().channel_ids()[1];
    let phone = "+31611122233";
    let stranger = engine
        .trengo
        .create_contact(whatsapp, phone, Some("Phone Customer"))
        .await
        .unwrap();
    let ticket = support::rules::new_ticket_in(&world, stranger.id, whatsapp, "By WhatsApp");
    let label = support::rules::label(&world, trengo_sync::sim::world::LINK_LABEL);
    world.trengo().add_label(ticket, label).unwrap();

    world.ghl().lose_next_write_answers(1);
    let first = engine
        .pass(PassKind::Poll, PassOptions::default())
        .await
        .unwrap();
    assert!(!first.failed.is_empty(), "the lost answer fails the item");
    // No intent is journalled for a contact (the lookup before it is the key): the item
    // comes back from the retry queue when it is due.
    let due = trengo_sync::store::Store::open_read_only(support::store_path(&dir))
        .and_then(|s| trengo_sync::store::retries::all(s.conn()))
        .unwrap()
        .iter()
        .map(|r| r.next_at)
        .max()
        .unwrap();
    let wait = (due - chrono::Utc::now()).to_std().unwrap_or_default();
    tokio::time::sleep(wait + Duration::from_millis(200)).await;
    quiet(&engine).await;
    let found = engine.ghl.find_duplicate(None, Some(phone)).await.unwrap();
    let contact = found.expect("the contact was made");
    let made = world.ghl().snapshot()["contacts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c.to_string().contains(phone))
        .count();
    assert_eq!(made, 1, "one contact for the phone");
    let links: Vec<_> = support::links(&dir)
        .into_iter()
        .filter(|l| l.ticket_id == ticket)
        .collect();
    assert_eq!(links.len(), 1);
    assert_eq!(links[0].ghl_contact_id, contact.id);
}

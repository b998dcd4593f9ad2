//! Contact pairs (`[contacts]`, sync-model.md §5) against the simulated world, the way a team
//! lives with them: the daemon's engine already running and settled, then a sales rep editing a
//! GHL contact and an agent editing a Trengo contact; the computed context; a new tagged GHL
//! contact; the task's details; `plan` writing nothing; a bad value; both settings of the
//! switches a pair depends on.

mod support;

use futures::StreamExt as _;
use serde_json::json;
use support::rules::{config_text, engine_with, load, settle};
use support::{once, world};
use trengo_sync::ghl::{ContactFields, CustomFieldInput};
use trengo_sync::sim::world::{SimWorld, WorldOptions};
use trengo_sync::store::{Store, ledger::EntryKind};
use trengo_sync::sync::engine::{Engine, PassKind, PassOptions, PassReport};

/// The worked example of config.example.toml: a customer number GHL → Trengo, a subscription
/// tier both ways, the context for agents, and the task's details.
pub const CONTACTS: &str = r#"
[contacts]
enabled = true

[[contacts.fields]]
ghl = "contact.customer_number"
trengo = "Customer number"
direction = "ghl_to_trengo"
policy = "ghl"

[[contacts.fields]]
ghl = "contact.subscription_tier"
trengo = "Subscription tier"

[contacts.context]
web_link = "GHL link"
next_appointment = "Next appointment"
open_tasks = "Open GHL tasks"
tags = "GHL tags"

[contacts.task]
due = "Task due"
title = "Task title"
"#;

/// A Trengo custom field's id by title.
async fn trengo_field(engine: &Engine, title: &str) -> i64 {
    let mut fields = std::pin::pin!(engine.trengo.custom_fields());
    while let Some(f) = fields.next().await {
        let f = f.unwrap();
        if f.title.as_deref() == Some(title) {
            return f.id;
        }
    }
    panic!("no Trengo field {title}")
}

/// A GHL custom field's id by key.
async fn ghl_field(engine: &Engine, key: &str) -> String {
    engine
        .ghl
        .custom_fields()
        .await
        .unwrap()
        .into_iter()
        .find(|f| f.field_key.as_deref() == Some(key))
        .unwrap_or_else(|| panic!("no GHL field {key}"))
        .id
}

/// A Trengo contact's value of a custom field.
async fn trengo_value(engine: &Engine, contact: i64, field: i64) -> String {
    engine
        .trengo
        .contact(contact)
        .await
        .unwrap()
        .custom_field(field)
        .unwrap_or_default()
        .to_string()
}

/// A GHL contact's value of a custom field, as JSON.
async fn ghl_value(engine: &Engine, contact: &str, field: &str) -> serde_json::Value {
    engine
        .ghl
        .contact(contact)
        .await
        .unwrap()
        .custom_fields
        .into_iter()
        .find(|f| f.id == field)
        .map(|f| f.value)
        .unwrap_or(serde_json::Value::Null)
}

/// The stored pairs: (GHL contact, Trengo contact).
fn pairs(dir: &tempfile::TempDir) -> Vec<(String, i64)> {
    let store = Store::open_read_only(support::store_path(dir)).unwrap();
    let mut stmt = store
        .conn()
        .prepare("SELECT ghl_contact_id, trengo_contact_id FROM contact_pairs ORDER BY id")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

async fn cycle(engine: &Engine) -> PassReport {
    let report = engine
        .pass(PassKind::Cycle, PassOptions::default())
        .await
        .unwrap();
    assert!(report.braked.is_none());
    report
}

fn writes(report: &PassReport) -> u64 {
    report.writes.trengo + report.writes.ghl
}

/// The GHL search index's lag in these worlds: a poll sees an edit once it has passed.
const LAG: std::time::Duration = std::time::Duration::from_millis(600);

/// A world of 12 tickets over 6 people with the worked example, settled.
async fn settled_world(seed: u64) -> (SimWorld, tempfile::TempDir, Engine) {
    let mut options = WorldOptions::unpaced(seed, 12, 6);
    options.ghl.index_lag = LAG;
    settled_with(options, CONTACTS).await
}

#[tokio::test]
async fn every_linked_contact_gets_its_customer_number_and_context_in_trengo() {
    let (world, dir, engine) = settled_world(41).await;
    let pairs = pairs(&dir);
    assert!(!pairs.is_empty(), "linked contacts are paired");
    let number = trengo_field(&engine, "Customer number").await;
    let link = trengo_field(&engine, "GHL link").await;
    let tasks = trengo_field(&engine, "Open GHL tasks").await;
    let number_key = ghl_field(&engine, "contact.customer_number").await;
    for (ghl, trengo) in &pairs {
        let want = ghl_value(&engine, ghl, &number_key).await;
        assert_eq!(
            json!(trengo_value(&engine, *trengo, number).await),
            want,
            "pair {ghl} ⇄ {trengo}"
        );
        assert!(trengo_value(&engine, *trengo, link).await.ends_with(ghl));
        assert!(!trengo_value(&engine, *trengo, tasks).await.is_empty());
    }
    // Stability: a cycle with no edits writes nothing.
    let counters = support::total_writes(&world);
    assert_eq!(writes(&cycle(&engine).await), 0);
    assert_eq!(support::total_writes(&world), counters);
}

#[tokio::test]
async fn a_sales_rep_renaming_a_tier_in_ghl_and_an_agent_setting_one_in_trengo_both_cross() {
    let (_world, dir, engine) = settled_world(42).await;
    let (ghl, trengo) = pairs(&dir)[0].clone();
    let tier_t = trengo_field(&engine, "Subscription tier").await;
    let tier_g = ghl_field(&engine, "contact.subscription_tier").await;
    // A sales rep moves the customer up in GHL: the GHL poll sees it.
    let update = ContactFields {
        custom_fields: Some(vec![CustomFieldInput::by_id(
            tier_g.clone(),
            json!("Enterprise"),
        )]),
        ..ContactFields::default()
    };
    engine.ghl.update_contact(&ghl, &update).await.unwrap();
    tokio::time::sleep(LAG * 2).await;
    let report = once(&engine).await;
    assert_eq!(trengo_value(&engine, trengo, tier_t).await, "Enterprise");
    assert_eq!(report.writes.trengo, 1, "{:?}", report.pair_lines);
    // An agent sets it back in Trengo: no feed, so the sweep's cycle finds it.
    engine
        .trengo
        .set_contact_custom_field(trengo, tier_t, "pro")
        .await
        .unwrap();
    let report = cycle(&engine).await;
    assert_eq!(ghl_value(&engine, &ghl, &tier_g).await, json!("Pro"));
    assert_eq!(
        report.writes.ghl, 1,
        "one GHL write for one change: {:?}",
        report.pair_lines
    );
    // Then nothing more: no echo.
    assert_eq!(writes(&cycle(&engine).await), 0);
    let store = Store::open_read_only(support::store_path(&dir)).unwrap();
    let applied = trengo_sync::store::ledger::matching(store.conn(), None, None, None)
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == EntryKind::Applied && e.pair_id.is_some())
        .count();
    assert!(applied >= 2);
}

#[tokio::test]
async fn a_tier_that_ghl_does_not_offer_is_an_item_error_naming_the_value() {
    let (_world, dir, engine) = settled_world(43).await;
    let (ghl, trengo) = pairs(&dir)[0].clone();
    let tier_t = trengo_field(&engine, "Subscription tier").await;
    let tier_g = ghl_field(&engine, "contact.subscription_tier").await;
    let before = ghl_value(&engine, &ghl, &tier_g).await;
    engine
        .trengo
        .set_contact_custom_field(trengo, tier_t, "Gold")
        .await
        .unwrap();
    let report = cycle(&engine).await;
    let failed: Vec<_> = report.failed.iter().map(|(_, why)| why.clone()).collect();
    assert!(
        failed
            .iter()
            .any(|w| w.contains("`Gold`") && w.contains("subscription_tier")),
        "{failed:?}"
    );
    assert_eq!(
        ghl_value(&engine, &ghl, &tier_g).await,
        before,
        "nothing truncated or guessed"
    );
}

#[tokio::test]
async fn plan_shows_the_contact_writes_and_writes_nothing() {
    let world = world(44, 12, 6).await;
    let dir = tempfile::tempdir().unwrap();
    let text = config_text(&world, &dir, &[], CONTACTS);
    let config = load(&text, &dir);
    let engine = Engine::for_plan(&config, trengo_sync::clock::SystemClock::shared()).unwrap();
    engine.bind_identity().await.unwrap();
    world.trengo().reset_counters();
    let before = support::total_writes(&world);
    let report = engine
        .pass(
            PassKind::Cycle,
            PassOptions {
                dry_run: true,
                allow_mass_change: false,
            },
        )
        .await
        .unwrap();
    assert_eq!(support::total_writes(&world), before, "plan wrote");
    assert!(
        report
            .pair_lines
            .iter()
            .any(|l| l.contains("Customer number")),
        "{:?}",
        report.pair_lines
    );
}

/// The worked example with new GHL contacts tagged `onboarding` paired and welcomed.
fn with_welcome() -> String {
    CONTACTS.replace(
        "[contacts]\nenabled = true\n",
        "[contacts]\nenabled = true\ntag = \"onboarding\"\n\n[contacts.welcome]\nsubject = \"Welcome, {first_name}\"\nlabels = [\"Feedback\"]\n",
    )
}

/// A world started with `options`, its engine on `extra`, settled: a polling pass, reconcile
/// passes until quiet, then cycles until one writes nothing (a cycle's sweep reads every
/// pair's Trengo side).
async fn settled_with(options: WorldOptions, extra: &str) -> (SimWorld, tempfile::TempDir, Engine) {
    let world = support::start_world(options).await;
    let dir = tempfile::tempdir().unwrap();
    let engine = engine_with(&world, &dir, &[], extra).await;
    settle(&engine).await;
    for _ in 0..3 {
        if writes(&cycle(&engine).await) == 0 {
            break;
        }
    }
    (world, dir, engine)
}

fn lagged(seed: u64) -> WorldOptions {
    let mut options = WorldOptions::unpaced(seed, 10, 5);
    options.ghl.index_lag = LAG;
    options
}

/// The Trengo contacts with this e-mail.
async fn trengo_contacts_with(engine: &Engine, email: &str) -> Vec<i64> {
    let mut out = Vec::new();
    let mut found = std::pin::pin!(engine.trengo.search_contacts(email));
    while let Some(c) = found.next().await {
        let c = c.unwrap();
        if c.email.as_deref() == Some(email) || c.identifier.as_deref() == Some(email) {
            out.push(c.id);
        }
    }
    out
}

/// The Trengo tickets of a contact, with their subjects.
async fn tickets_of(engine: &Engine, contact: i64) -> Vec<(i64, String)> {
    let filters = trengo_sync::trengo::TicketFilters {
        contact_id: Some(contact),
        ..Default::default()
    };
    let mut out = Vec::new();
    let mut stream = std::pin::pin!(engine.trengo.tickets(&filters));
    while let Some(t) = stream.next().await {
        let t = t.unwrap();
        out.push((t.id, t.subject.unwrap_or_default()));
    }
    out
}

#[tokio::test]
async fn a_new_ghl_contact_tagged_while_running_gets_a_trengo_contact_with_its_fields_and_one_welcome_ticket()
 {
    // The welcome ticket goes to a team: the first team the account has.
    let probe = support::start_world(lagged(45)).await;
    let team: i64 = probe.trengo().snapshot()["teams"]
        .as_object()
        .and_then(|t| t.keys().next().cloned())
        .expect("the fake has teams")
        .parse()
        .unwrap();
    drop(probe);
    let config = with_welcome().replace(
        "labels = [\"Feedback\"]",
        &format!("labels = [\"Feedback\"]\nteam_id = {team}"),
    );
    let (world, _dir, engine) = settled_with(lagged(45), &config).await;
    let number_t = trengo_field(&engine, "Customer number").await;
    let number_g = ghl_field(&engine, "contact.customer_number").await;
    // A sales rep adds a lead in GHL, with a customer number and the tag, and no task.
    world
        .ghl()
        .create_contact(&json!({
            "firstName": "Nina", "lastName": "Nieuw", "email": "nina@example.org",
            "tags": ["onboarding"],
            "customFields": [{"id": number_g, "field_value": "C-99999"}],
        }))
        .unwrap();
    tokio::time::sleep(LAG * 2).await;
    let report = once(&engine).await;
    let made = trengo_contacts_with(&engine, "nina@example.org").await;
    assert_eq!(made.len(), 1, "one Trengo contact: {:?}", report.pair_lines);
    assert_eq!(trengo_value(&engine, made[0], number_t).await, "C-99999");
    let tickets = tickets_of(&engine, made[0]).await;
    assert_eq!(
        tickets.iter().filter(|(_, s)| s == "Welcome, Nina").count(),
        1,
        "{tickets:?}"
    );
    let labels: Vec<String> = engine
        .trengo
        .ticket(tickets[0].0)
        .await
        .unwrap()
        .labels
        .into_iter()
        .filter_map(|l| l.name)
        .collect();
    assert!(labels.iter().any(|l| l == "Feedback"), "{labels:?}");
    let welcome = engine.trengo.ticket(tickets[0].0).await.unwrap();
    assert_eq!(
        welcome.team_id,
        Some(team),
        "assigned to the configured team"
    );
    // The next passes make nothing again.
    for _ in 0..2 {
        cycle(&engine).await;
    }
    assert_eq!(
        trengo_contacts_with(&engine, "nina@example.org")
            .await
            .len(),
        1
    );
    assert_eq!(tickets_of(&engine, made[0]).await.len(), 1);
}

#[tokio::test]
async fn a_crash_while_welcoming_a_tagged_contact_ends_with_one_contact_and_one_welcome_ticket() {
    // Crash after each remote write of the pass that meets the new contact, restart, converge.
    for crash_after in 1..=4 {
        let world = support::start_world(lagged(46)).await;
        let dir = tempfile::tempdir().unwrap();
        let text = config_text(&world, &dir, &[], &with_welcome());
        let config = load(&text, &dir);
        {
            let engine =
                Engine::from_config(&config, trengo_sync::clock::SystemClock::shared(), false)
                    .unwrap();
            engine.bind_identity().await.unwrap();
            settle(&engine).await;
        }
        world
            .ghl()
            .create_contact(&json!({
                "firstName": "Otto", "email": "otto@example.org", "tags": ["onboarding"],
            }))
            .unwrap();
        tokio::time::sleep(LAG * 2).await;
        {
            let mut engine =
                Engine::from_config(&config, trengo_sync::clock::SystemClock::shared(), false)
                    .unwrap();
            engine.crash_after = Some(std::sync::Arc::new(std::sync::atomic::AtomicI64::new(
                crash_after,
            )));
            let _ = engine.pass(PassKind::Poll, PassOptions::default()).await;
        }
        // Restarted: the crashed engine's store calls may still hold the lock a moment.
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        let engine =
            Engine::from_config(&config, trengo_sync::clock::SystemClock::shared(), false).unwrap();
        for _ in 0..3 {
            cycle(&engine).await;
        }
        let made = trengo_contacts_with(&engine, "otto@example.org").await;
        assert_eq!(made.len(), 1, "crash after {crash_after}");
        let welcome = tickets_of(&engine, made[0]).await;
        assert_eq!(welcome.len(), 1, "crash after {crash_after}: {welcome:?}");
        assert_eq!(
            writes(&cycle(&engine).await),
            0,
            "crash after {crash_after}: converged"
        );
    }
}

#[tokio::test]
async fn the_tasks_due_date_shows_on_its_ticket_and_an_agent_moving_it_moves_the_task() {
    let (_world, dir, engine) = settled_with(lagged(47), CONTACTS).await;
    let due_t = trengo_field(&engine, "Task due").await;
    let title_t = trengo_field(&engine, "Task title").await;
    let link = support::links(&dir).into_iter().next().expect("a link");
    let ticket = engine.trengo.ticket(link.ticket_id).await.unwrap();
    let task = engine
        .ghl
        .task(&link.ghl_contact_id, &link.task_id)
        .await
        .unwrap();
    let zone = engine.trengo.zone();
    let shown = task
        .due_date
        .map(|d| d.with_timezone(&zone).format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_default();
    assert_eq!(ticket.custom_field(due_t).unwrap_or_default(), shown);
    assert_eq!(
        ticket.custom_field(title_t).unwrap_or_default(),
        task.title.clone().unwrap_or_default().trim()
    );
    // An agent moves the due date on the ticket.
    engine
        .trengo
        .set_ticket_custom_field(link.ticket_id, due_t, "2031-03-04 15:30")
        .await
        .unwrap();
    cycle(&engine).await;
    let task = engine
        .ghl
        .task(&link.ghl_contact_id, &link.task_id)
        .await
        .unwrap();
    assert_eq!(
        task.due_date
            .map(|d| d.with_timezone(&zone).format("%Y-%m-%d %H:%M").to_string()),
        Some("2031-03-04 15:30".to_string())
    );
    assert_eq!(writes(&cycle(&engine).await), 0, "no echo");
}

#[tokio::test]
async fn the_next_appointment_shows_in_the_locations_zone_whether_ghl_answers_naive_times_or_not() {
    for naive in [true, false] {
        let mut options = lagged(48);
        options.ghl.switches.appointment_times_naive = naive;
        options.ghl.location_timezone = chrono_tz::America::New_York;
        let (world, dir, engine) = settled_with(options, CONTACTS).await;
        let field = trengo_field(&engine, "Next appointment").await;
        let (ghl, trengo) = pairs(&dir)[0].clone();
        world
            .ghl()
            .add_appointment(
                &ghl,
                &json!({"title": "Renewal call", "startTime": "2031-05-06T14:00:00Z",
                        "appointmentStatus": "confirmed"}),
            )
            .unwrap();
        // Booking does not bump the contact: the sweep's cycle refreshes the context.
        cycle(&engine).await;
        assert_eq!(
            trengo_value(&engine, trengo, field).await,
            "Renewal call — 2031-05-06 10:00 (America/New_York), confirmed",
            "naive = {naive}"
        );
    }
}

#[tokio::test]
async fn a_value_cleared_in_ghl_clears_trengo_only_where_trengo_allows_it() {
    for clears in [false, true] {
        let mut options = lagged(49);
        options.trengo.empty_value_clears_custom_field = clears;
        let (_world, dir, engine) = settled_with(options, CONTACTS).await;
        let tier_t = trengo_field(&engine, "Subscription tier").await;
        let tier_g = ghl_field(&engine, "contact.subscription_tier").await;
        let (ghl, trengo) = pairs(&dir)[0].clone();
        assert!(!trengo_value(&engine, trengo, tier_t).await.is_empty());
        let update = ContactFields {
            custom_fields: Some(vec![CustomFieldInput::by_id(tier_g.clone(), json!(""))]),
            ..ContactFields::default()
        };
        engine.ghl.update_contact(&ghl, &update).await.unwrap();
        let report = cycle(&engine).await;
        if clears {
            assert_eq!(trengo_value(&engine, trengo, tier_t).await, "");
            assert!(report.failed.is_empty(), "{:?}", report.failed);
        } else {
            assert!(
                report
                    .failed
                    .iter()
                    .any(|(_, why)| why.contains("clear the field by hand")),
                "{:?}",
                report.failed
            );
        }
    }
}

/// An engine on `config` that stops as if killed after `n` remote writes.
fn crashing(config: &trengo_sync::config::Config, n: i64) -> Engine {
    let mut engine =
        Engine::from_config(config, trengo_sync::clock::SystemClock::shared(), false).unwrap();
    engine.crash_after = Some(std::sync::Arc::new(std::sync::atomic::AtomicI64::new(n)));
    engine
}

/// A restarted engine, once the crashed one's last store call let go of the writer lock.
async fn restarted(config: &trengo_sync::config::Config) -> Engine {
    for _ in 0..100 {
        match Engine::from_config(config, trengo_sync::clock::SystemClock::shared(), false) {
            Ok(e) => return e,
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
        }
    }
    panic!("the store stayed locked")
}

#[tokio::test]
async fn a_crash_at_each_contact_field_write_converges_with_every_edit_kept() {
    for crash_after in 1..=4 {
        let world = support::start_world(lagged(50)).await;
        let dir = tempfile::tempdir().unwrap();
        let config = load(&config_text(&world, &dir, &[], CONTACTS), &dir);
        let (a, b, tier_t, tier_g) = {
            let engine = restarted(&config).await;
            engine.bind_identity().await.unwrap();
            settle(&engine).await;
            cycle(&engine).await;
            let p = pairs(&dir);
            let tier_t = trengo_field(&engine, "Subscription tier").await;
            let tier_g = ghl_field(&engine, "contact.subscription_tier").await;
            // An agent edits one pair in Trengo, a sales rep another in GHL.
            engine
                .trengo
                .set_contact_custom_field(p[0].1, tier_t, "Enterprise")
                .await
                .unwrap();
            let update = ContactFields {
                custom_fields: Some(vec![CustomFieldInput::by_id(
                    tier_g.clone(),
                    json!("Basic"),
                )]),
                ..ContactFields::default()
            };
            engine.ghl.update_contact(&p[1].0, &update).await.unwrap();
            (p[0].clone(), p[1].clone(), tier_t, tier_g)
        };
        {
            let engine = crashing(&config, crash_after);
            let _ = engine.pass(PassKind::Cycle, PassOptions::default()).await;
        }
        let engine = restarted(&config).await;
        for _ in 0..3 {
            cycle(&engine).await;
        }
        assert_eq!(
            ghl_value(&engine, &a.0, &tier_g).await,
            json!("Enterprise"),
            "crash after {crash_after}"
        );
        assert_eq!(
            trengo_value(&engine, b.1, tier_t).await,
            "Basic",
            "crash after {crash_after}"
        );
        assert_eq!(
            writes(&cycle(&engine).await),
            0,
            "crash after {crash_after}: settled"
        );
    }
}

#[tokio::test]
async fn an_agents_edit_after_a_crash_that_cut_a_pairs_write_short_is_not_lost() {
    let world = support::start_world(lagged(51)).await;
    let dir = tempfile::tempdir().unwrap();
    let config = load(&config_text(&world, &dir, &[], CONTACTS), &dir);
    let (pair, tier_t, tier_g) = {
        let engine = restarted(&config).await;
        engine.bind_identity().await.unwrap();
        settle(&engine).await;
        cycle(&engine).await;
        let p = pairs(&dir)[0].clone();
        let tier_t = trengo_field(&engine, "Subscription tier").await;
        let tier_g = ghl_field(&engine, "contact.subscription_tier").await;
        engine
            .trengo
            .set_contact_custom_field(p.1, tier_t, "Enterprise")
            .await
            .unwrap();
        (p, tier_t, tier_g)
    };
    // The GHL write lands, then the process dies before recording it.
    {
        let engine = crashing(&config, 1);
        let _ = engine.pass(PassKind::Cycle, PassOptions::default()).await;
    }
    // GHL's contact is now the newer one; the agent changes their mind meanwhile.
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let engine = restarted(&config).await;
    assert_eq!(
        ghl_value(&engine, &pair.0, &tier_g).await,
        json!("Enterprise")
    );
    engine
        .trengo
        .set_contact_custom_field(pair.1, tier_t, "Pro")
        .await
        .unwrap();
    for _ in 0..2 {
        cycle(&engine).await;
    }
    // The journal told settlement the write landed, so "Pro" is a Trengo edit, not a conflict
    // that GHL's newer contact would win.
    assert_eq!(ghl_value(&engine, &pair.0, &tier_g).await, json!("Pro"));
}

#[tokio::test]
async fn fields_cross_both_ways_under_both_settings_of_every_switch_a_pair_meets() {
    // Pessimistic, then optimistic: GHL's read key (`fieldValue` or `value`), whether a bare
    // key is ignored (the engine writes by id), whether naive appointment times come back, and
    // whether a Trengo field write moves the contact's `updated_at` (what `newest` compares).
    for pessimistic in [true, false] {
        let mut options = lagged(52);
        options.ghl.switches.custom_field_reads_say_field_value = pessimistic;
        options.ghl.switches.custom_field_key_needs_prefix = pessimistic;
        options.ghl.switches.appointment_times_naive = pessimistic;
        options.trengo.custom_field_write_bumps_contact = !pessimistic;
        options.trengo.empty_value_clears_custom_field = !pessimistic;
        let (_world, dir, engine) = settled_with(options, CONTACTS).await;
        let number_t = trengo_field(&engine, "Customer number").await;
        let tier_t = trengo_field(&engine, "Subscription tier").await;
        let tier_g = ghl_field(&engine, "contact.subscription_tier").await;
        let (ghl, trengo) = pairs(&dir)[0].clone();
        assert!(
            trengo_value(&engine, trengo, number_t)
                .await
                .starts_with("C-")
        );
        engine
            .trengo
            .set_contact_custom_field(trengo, tier_t, "Enterprise")
            .await
            .unwrap();
        let report = cycle(&engine).await;
        assert_eq!(report.writes.ghl, 1, "pessimistic = {pessimistic}");
        assert_eq!(ghl_value(&engine, &ghl, &tier_g).await, json!("Enterprise"));
        let update = ContactFields {
            custom_fields: Some(vec![CustomFieldInput::by_id(
                tier_g.clone(),
                json!("Basic"),
            )]),
            ..ContactFields::default()
        };
        engine.ghl.update_contact(&ghl, &update).await.unwrap();
        tokio::time::sleep(LAG * 2).await;
        once(&engine).await;
        assert_eq!(
            trengo_value(&engine, trengo, tier_t).await,
            "Basic",
            "pessimistic = {pessimistic}"
        );
        assert_eq!(
            writes(&cycle(&engine).await),
            0,
            "pessimistic = {pessimistic}"
        );
    }
}

/// Runs the binary with `args` on `config` off the runtime's threads (the fakes serve on them).
async fn run_cli(config: &std::path::Path, args: &[&str]) -> (Option<i32>, String, String) {
    let (config, args): (std::path::PathBuf, Vec<String>) = (
        config.to_path_buf(),
        args.iter().map(|a| a.to_string()).collect(),
    );
    tokio::task::spawn_blocking(move || {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_trengo-sync"))
            .args(&args)
            .args(["--config", config.to_str().unwrap()])
            .env("RUST_LOG", "warn")
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_once_and_plan_refuse_a_map_naming_a_field_the_accounts_lack_with_exit_78() {
    let world = world(53, 6, 4).await;
    let dir = tempfile::tempdir().unwrap();
    let (config, _) = support::write_config(&world, &dir);
    let good = format!("{}{CONTACTS}", std::fs::read_to_string(&config).unwrap());
    std::fs::write(&config, &good).unwrap();
    let (code, out, err) = run_cli(&config, &["check"]).await;
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("2 mapped fields checked"), "{out}");
    let bad = good.replace(
        "trengo = \"Subscription tier\"",
        "trengo = \"Subscription level\"",
    );
    std::fs::write(&config, bad).unwrap();
    for command in [&["check"][..], &["plan"], &["once"]] {
        let (code, out, err) = run_cli(&config, command).await;
        assert_eq!(code, Some(78), "{command:?}: {out}{err}");
        assert!(
            err.contains("contacts.fields[1].trengo"),
            "{command:?}: {err}"
        );
        assert!(err.contains("Subscription level"), "{command:?}: {err}");
    }
    // Nothing was written by the refused commands.
    assert_eq!(support::total_writes(&world), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn once_from_a_timer_converges_on_contact_fields_and_then_writes_nothing() {
    let world = world(54, 6, 4).await;
    let dir = tempfile::tempdir().unwrap();
    let (config, _) = support::write_config(&world, &dir);
    let text = format!("{}{CONTACTS}", std::fs::read_to_string(&config).unwrap());
    std::fs::write(&config, text).unwrap();
    let (code, out, err) = run_cli(&config, &["once"]).await;
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        out.contains("Customer number"),
        "the pair lines are printed: {out}"
    );
    let mut last = String::new();
    for _ in 0..3 {
        let (code, out, err) = run_cli(&config, &["once"]).await;
        assert_eq!(code, Some(0), "{out}{err}");
        last = out;
    }
    assert!(
        last.contains("0 writes to Trengo, 0 to GHL"),
        "once keeps writing: {last}"
    );
}

/// The worked example plus a profile field (the GHL owner's e-mail) and a ticket field (seats
/// typed by an agent on the ticket, a number in GHL).
fn with_profile_and_ticket_fields() -> String {
    format!(
        "{CONTACTS}\n[[contacts.fields]]\nghl = \"assigned_to\"\ntrengo = \"Account manager\"\ndirection = \"ghl_to_trengo\"\n\n[[contacts.fields]]\nghl = \"contact.seats\"\ntrengo = \"Order number\"\ndirection = \"trengo_to_ghl\"\n"
    )
}

#[tokio::test]
async fn the_owner_reaches_the_profile_and_seats_typed_on_a_ticket_reach_ghl_as_a_number() {
    let (world, dir, engine) = settled_with(lagged(55), &with_profile_and_ticket_fields()).await;
    let manager = trengo_field(&engine, "Account manager").await;
    // Every pair whose GHL contact has an owner shows the owner's e-mail on its profile.
    let users = engine.ghl.users().await.unwrap();
    let mut shown = 0;
    for (ghl, trengo) in pairs(&dir) {
        let owner = engine.ghl.contact(&ghl).await.unwrap().assigned_to;
        let contact = engine.trengo.contact(trengo).await.unwrap();
        let profile = engine
            .trengo
            .profile(contact.profile_ids()[0])
            .await
            .unwrap();
        let want = owner
            .and_then(|id| users.iter().find(|u| u.id == id))
            .and_then(|u| u.email.clone())
            .map(|e| e.to_lowercase())
            .unwrap_or_default();
        assert_eq!(
            profile.custom_field(manager).unwrap_or_default(),
            want,
            "{ghl}"
        );
        shown += usize::from(!want.is_empty());
    }
    assert!(shown > 0, "no pair had an owner to show");
    // An agent types the seats on a linked ticket.
    let order = trengo_field(&engine, "Order number").await;
    let seats = ghl_field(&engine, "contact.seats").await;
    let link = support::links(&dir).into_iter().next().unwrap();
    engine
        .trengo
        .set_ticket_custom_field(link.ticket_id, order, "12")
        .await
        .unwrap();
    cycle(&engine).await;
    assert_eq!(
        ghl_value(&engine, &link.ghl_contact_id, &seats).await,
        json!(12)
    );
    // A value that is not a number is an item error naming it; GHL keeps 12.
    engine
        .trengo
        .set_ticket_custom_field(link.ticket_id, order, "a dozen")
        .await
        .unwrap();
    let report = cycle(&engine).await;
    assert!(
        report
            .failed
            .iter()
            .any(|(_, why)| why.contains("`a dozen`")),
        "{:?}",
        report.failed
    );
    assert_eq!(
        ghl_value(&engine, &link.ghl_contact_id, &seats).await,
        json!(12)
    );
    // It is in the retry table under the pair's key, without the value (customer data).
    let store = Store::open_read_only(support::store_path(&dir)).unwrap();
    let reason: String = store
        .conn()
        .query_row(
            "SELECT reason FROM retries WHERE item = ?1",
            [format!("pair:{}", link.ghl_contact_id)],
            |r| r.get(0),
        )
        .unwrap();
    assert!(
        reason.contains("contact.seats") && !reason.contains("a dozen"),
        "{reason}"
    );
    drop(world);
}

#[tokio::test]
async fn explain_shows_a_links_contact_pairs_their_bases_and_last_writes() {
    let (_world, dir, engine) = settled_with(lagged(56), CONTACTS).await;
    let link = support::links(&dir).into_iter().next().unwrap();
    let text = trengo_sync::inspect::explain(&engine, link.id.0)
        .await
        .unwrap();
    assert!(text.contains("contact pair"), "{text}");
    assert!(
        text.contains("contact.customer_number ⇄ Customer number"),
        "{text}"
    );
    assert!(text.contains("Applied"), "{text}");
    let store = Store::open_read_only(support::store_path(&dir)).unwrap();
    let status = trengo_sync::daemon::status::collect_from_store(
        &store,
        chrono::Utc::now(),
        std::time::Duration::from_secs(3600),
    )
    .unwrap();
    assert_eq!(status.links.contact_pairs, pairs(&dir).len() as u64);
}

#[tokio::test]
async fn a_pause_holds_contact_writes_and_resume_lets_the_held_change_cross() {
    use trengo_sync::store::controls::{self, PauseDirection};
    let (_world, dir, engine) = settled_with(lagged(57), CONTACTS).await;
    let tier_t = trengo_field(&engine, "Subscription tier").await;
    let tier_g = ghl_field(&engine, "contact.subscription_tier").await;
    let (ghl, trengo) = pairs(&dir)[0].clone();
    let before = trengo_value(&engine, trengo, tier_t).await;
    // An operator pauses writes to Trengo beside the running daemon.
    engine
        .store
        .call(|s| controls::pause_daemon(s.conn(), PauseDirection::GhlToTrengo, chrono::Utc::now()))
        .await
        .unwrap();
    let update = ContactFields {
        custom_fields: Some(vec![CustomFieldInput::by_id(
            tier_g.clone(),
            json!("Enterprise"),
        )]),
        ..ContactFields::default()
    };
    engine.ghl.update_contact(&ghl, &update).await.unwrap();
    tokio::time::sleep(LAG * 2).await;
    let report = once(&engine).await;
    assert_eq!(
        trengo_value(&engine, trengo, tier_t).await,
        before,
        "written while paused"
    );
    assert!(!report.held.is_empty());
    engine
        .store
        .call(|s| controls::resume_daemon(s.conn(), chrono::Utc::now()))
        .await
        .unwrap();
    // The polls' cursors moved on; the held item is due again.
    once(&engine).await;
    assert_eq!(trengo_value(&engine, trengo, tier_t).await, "Enterprise");
}

#[tokio::test]
async fn the_daemons_sweep_slices_find_an_agents_contact_edit_within_their_share() {
    let (_world, dir, engine) = settled_with(lagged(58), CONTACTS).await;
    let tier_t = trengo_field(&engine, "Subscription tier").await;
    let tier_g = ghl_field(&engine, "contact.subscription_tier").await;
    let (ghl, trengo) = pairs(&dir).last().cloned().unwrap();
    engine
        .trengo
        .set_contact_custom_field(trengo, tier_t, "Enterprise")
        .await
        .unwrap();
    let mut slices = 0;
    while ghl_value(&engine, &ghl, &tier_g).await != json!("Enterprise") {
        slices += 1;
        assert!(slices <= 10, "ten sweep slices did not find the edit");
        let r = engine
            .pass(PassKind::Sweep, PassOptions::default())
            .await
            .unwrap();
        eprintln!("slice {slices}: {:?} {:?}", r.pair_lines, r.failed);
    }
}

/// The worked example plus a date and a checkbox, both ways.
fn with_date_and_checkbox() -> String {
    format!(
        "{CONTACTS}\n[[contacts.fields]]\nghl = \"contact.renewal_date\"\ntrengo = \"Renewal date\"\n\n[[contacts.fields]]\nghl = \"contact.newsletter\"\ntrengo = \"Newsletter\"\n"
    )
}

#[tokio::test]
async fn dates_and_checkboxes_cross_both_ways_in_each_sides_own_form() {
    let (_world, dir, engine) = settled_with(lagged(59), &with_date_and_checkbox()).await;
    let (date_t, date_g) = (
        trengo_field(&engine, "Renewal date").await,
        ghl_field(&engine, "contact.renewal_date").await,
    );
    let (news_t, news_g) = (
        trengo_field(&engine, "Newsletter").await,
        ghl_field(&engine, "contact.newsletter").await,
    );
    let (ghl, trengo) = pairs(&dir)[0].clone();
    // A sales rep sets both in GHL: a date and a ticked checkbox (an array of options).
    let update = ContactFields {
        custom_fields: Some(vec![
            CustomFieldInput::by_id(date_g.clone(), json!("2027-01-31")),
            CustomFieldInput::by_id(news_g.clone(), json!(["Yes"])),
        ]),
        ..ContactFields::default()
    };
    engine.ghl.update_contact(&ghl, &update).await.unwrap();
    tokio::time::sleep(LAG * 2).await;
    once(&engine).await;
    assert_eq!(trengo_value(&engine, trengo, date_t).await, "2027-01-31");
    assert_eq!(trengo_value(&engine, trengo, news_t).await, "Yes");
    // An agent types the date day first and the option in lower case.
    engine
        .trengo
        .set_contact_custom_field(trengo, date_t, "28-02-2027")
        .await
        .unwrap();
    let report = cycle(&engine).await;
    assert_eq!(
        ghl_value(&engine, &ghl, &date_g).await,
        json!("2027-02-28"),
        "{:?}",
        report.pair_lines
    );
    // Trengo keeps what the agent typed; both read as the same date, so nothing ping-pongs.
    assert_eq!(writes(&cycle(&engine).await), 0);
    engine
        .trengo
        .set_contact_custom_field(trengo, news_t, "yes, no")
        .await
        .unwrap();
    let report = cycle(&engine).await;
    assert!(
        report.failed.iter().any(|(_, why)| why.contains("`no`")),
        "an option GHL does not offer: {:?}",
        report.failed
    );
    assert_eq!(ghl_value(&engine, &ghl, &news_g).await, json!(["Yes"]));
}

#[tokio::test]
async fn a_contact_whose_tag_is_taken_off_keeps_its_pair_but_is_no_longer_written() {
    let (world, _dir, engine) = settled_with(lagged(60), &with_welcome()).await;
    let number_t = trengo_field(&engine, "Customer number").await;
    let number_g = ghl_field(&engine, "contact.customer_number").await;
    let made = world
        .ghl()
        .create_contact(&json!({
            "firstName": "Pia", "email": "pia@example.org", "tags": ["onboarding"],
            "customFields": [{"id": number_g, "field_value": "C-1"}],
        }))
        .unwrap();
    let ghl = made["id"].as_str().unwrap().to_string();
    tokio::time::sleep(LAG * 2).await;
    once(&engine).await;
    let trengo = trengo_contacts_with(&engine, "pia@example.org").await[0];
    assert_eq!(trengo_value(&engine, trengo, number_t).await, "C-1");
    // The rep takes the tag off, then changes the number: it no longer crosses.
    world.ghl().remove_contact_tag(&ghl, "onboarding").unwrap();
    let update = ContactFields {
        custom_fields: Some(vec![CustomFieldInput::by_id(
            number_g.clone(),
            json!("C-2"),
        )]),
        ..ContactFields::default()
    };
    engine.ghl.update_contact(&ghl, &update).await.unwrap();
    tokio::time::sleep(LAG * 2).await;
    once(&engine).await;
    cycle(&engine).await;
    assert_eq!(
        trengo_value(&engine, trengo, number_t).await,
        "C-1",
        "written out of scope"
    );
    // Tagged again, it is back in scope and the number crosses.
    world.ghl().add_contact_tag(&ghl, "onboarding").unwrap();
    tokio::time::sleep(LAG * 2).await;
    once(&engine).await;
    assert_eq!(trengo_value(&engine, trengo, number_t).await, "C-2");
    assert_eq!(
        tickets_of(&engine, trengo).await.len(),
        1,
        "one welcome ticket only"
    );
}

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

async fn settled_world(seed: u64) -> (SimWorld, tempfile::TempDir, Engine) {
    let mut options = WorldOptions::unpaced(seed, 12, 6);
    options.ghl.index_lag = LAG;
    let world = support::start_world(options).await;
    let dir = tempfile::tempdir().unwrap();
    let engine = engine_with(&world, &dir, &[], CONTACTS).await;
    settle(&engine).await;
    // The sweep part of a cycle reads every pair's Trengo side: settled means a quiet cycle.
    for _ in 0..3 {
        if writes(&cycle(&engine).await) == 0 {
            break;
        }
    }
    (world, dir, engine)
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

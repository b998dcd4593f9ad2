//! The Trengo client against the Trengo fake for what contact profiles need (issue #15):
//! renaming a contact (`PUT /contacts/{id}`), setting a CONTACT custom field
//! (`POST /contacts/{id}/custom_fields`) and reading it back from `custom_field_values`.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use secrecy::SecretString;
use tokio::net::TcpListener;
use trengo_sync::api::{ApiError, Budget};
use trengo_sync::clock::{ManualClock, SharedClock};
use trengo_sync::sim::trengo::{DEFAULT_TOKEN, TrengoFake, TrengoFakeOptions};
use trengo_sync::trengo::{TrengoClient, TrengoClientConfig};

async fn start(options: TrengoFakeOptions) -> (TrengoFake, TrengoClient) {
    let start = DateTime::parse_from_rfc3339("2026-02-03T13:17:31Z")
        .unwrap()
        .with_timezone(&Utc);
    let clock: SharedClock = ManualClock::new(start);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let zone = options.zone;
    let fake = TrengoFake::start(listener, options, clock.clone()).unwrap();
    let config = TrengoClientConfig::new(
        fake.base_url().parse().unwrap(),
        SecretString::from(DEFAULT_TOKEN.to_owned()),
        zone,
    );
    let budget = Arc::new(Budget::new("trengo", 1000, Duration::from_secs(60)));
    let client = TrengoClient::new(config, clock, budget).unwrap();
    (fake, client)
}

/// The id of the field titled `title` that belongs to `entity` (CONTACT or TICKET).
async fn field(client: &TrengoClient, title: &str, entity: &str) -> i64 {
    let fields: Vec<_> = client.custom_fields().try_collect().await.unwrap();
    fields
        .iter()
        .find(|f| f.title.as_deref() == Some(title) && f.entity.as_deref() == Some(entity))
        .unwrap_or_else(|| panic!("no {entity} field {title}: {fields:?}"))
        .id
}

#[tokio::test]
async fn contact_custom_field_set_reads_back_from_custom_field_values() {
    let (fake, client) = start(TrengoFakeOptions::default()).await;
    let contact = fake.contact_ids()[0];
    let number = field(&client, "Customer number", "CONTACT").await;
    assert_eq!(
        client.contact(contact).await.unwrap().custom_field(number),
        None
    );
    client
        .set_contact_custom_field(contact, number, "C-00042")
        .await
        .unwrap();
    let read = client.contact(contact).await.unwrap();
    assert_eq!(read.custom_field(number), Some("C-00042"));
    assert_eq!(
        read.formatted_custom_field_data["Customer number"],
        "C-00042"
    );
}

#[tokio::test]
async fn renamed_contact_comes_back_with_its_new_name_and_identifier_kept() {
    let (fake, client) = start(TrengoFakeOptions::default()).await;
    let contact = fake.contact_ids()[0];
    let before = client.contact(contact).await.unwrap();
    let renamed = client
        .rename_contact(contact, "Ada Lovelace")
        .await
        .unwrap();
    assert_eq!(renamed.name.as_deref(), Some("Ada Lovelace"));
    let after = client.contact(contact).await.unwrap();
    assert_eq!(after.name.as_deref(), Some("Ada Lovelace"));
    assert_eq!(after.identifier, before.identifier);
}

#[tokio::test]
async fn a_ticket_field_set_on_a_contact_is_refused_as_invalid() {
    let (fake, client) = start(TrengoFakeOptions::default()).await;
    let contact = fake.contact_ids()[0];
    let order = field(&client, "Order number", "TICKET").await;
    let error = client
        .set_contact_custom_field(contact, order, "O-1")
        .await
        .unwrap_err();
    assert!(matches!(error, ApiError::Validation { .. }), "{error:?}");
}

#[tokio::test]
async fn an_empty_value_is_refused_unless_the_fake_lets_it_clear_the_field() {
    for clears in [false, true] {
        let options = TrengoFakeOptions {
            empty_value_clears_custom_field: clears,
            ..TrengoFakeOptions::default()
        };
        let (fake, client) = start(options).await;
        let contact = fake.contact_ids()[0];
        let number = field(&client, "Customer number", "CONTACT").await;
        client
            .set_contact_custom_field(contact, number, "C-00042")
            .await
            .unwrap();
        let cleared = client.set_contact_custom_field(contact, number, "").await;
        let read = client.contact(contact).await.unwrap();
        if clears {
            cleared.unwrap();
            assert_eq!(read.custom_field(number), None);
        } else {
            let error = cleared.unwrap_err();
            assert!(matches!(error, ApiError::Validation { .. }), "{error:?}");
            assert_eq!(read.custom_field(number), Some("C-00042"));
        }
    }
}

async fn start_with_clock(
    options: TrengoFakeOptions,
) -> (TrengoFake, TrengoClient, Arc<ManualClock>) {
    let start = DateTime::parse_from_rfc3339("2026-02-03T13:17:31Z")
        .unwrap()
        .with_timezone(&Utc);
    let clock = ManualClock::new(start);
    let shared: SharedClock = clock.clone();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let zone = options.zone;
    let fake = TrengoFake::start(listener, options, shared.clone()).unwrap();
    let config = TrengoClientConfig::new(
        fake.base_url().parse().unwrap(),
        SecretString::from(DEFAULT_TOKEN.to_owned()),
        zone,
    );
    let budget = Arc::new(Budget::new("trengo", 1000, Duration::from_secs(60)));
    let client = TrengoClient::new(config, shared, budget).unwrap();
    (fake, client, clock)
}

#[tokio::test]
async fn a_contact_custom_field_write_moves_updated_at_only_with_the_switch_on() {
    for bumps in [false, true] {
        let options = TrengoFakeOptions {
            custom_field_write_bumps_contact: bumps,
            ..TrengoFakeOptions::default()
        };
        let (fake, client, clock) = start_with_clock(options).await;
        let contact = fake.contact_ids()[0];
        let tier = field(&client, "Subscription tier", "CONTACT").await;
        let before = client.contact(contact).await.unwrap().updated_at;
        clock.advance(chrono::Duration::minutes(5));
        client
            .set_contact_custom_field(contact, tier, "Pro")
            .await
            .unwrap();
        let after = client.contact(contact).await.unwrap();
        assert_eq!(after.custom_field(tier), Some("Pro"));
        if bumps {
            assert!(after.updated_at > before, "bumps {bumps}");
        } else {
            assert_eq!(after.updated_at, before, "bumps {bumps}");
        }
    }
}

#[tokio::test]
async fn the_catalogue_reads_with_type_field_type_and_items() {
    let (_fake, client) = start(TrengoFakeOptions::default()).await;
    let fields: Vec<_> = client.custom_fields().try_collect().await.unwrap();
    assert_eq!(fields.len(), 12);
    let manager = fields
        .iter()
        .find(|f| f.title.as_deref() == Some("Account manager"))
        .unwrap();
    assert_eq!(manager.entity.as_deref(), Some("PROFILE"));
    assert_eq!(manager.field_type.as_deref(), Some("TEXT"));
    assert!(manager.items.is_empty());
}

#[tokio::test]
async fn a_profile_custom_field_set_reads_back_from_the_profile() {
    let (fake, client) = start(TrengoFakeOptions::default()).await;
    let contact = client.contact(fake.contact_ids()[0]).await.unwrap();
    let profiles = contact.profile_ids();
    assert_eq!(profiles.len(), 1);
    let manager = field(&client, "Account manager", "PROFILE").await;
    let profile = client.profile(profiles[0]).await.unwrap();
    assert_eq!(profile.name, contact.name);
    assert_eq!(profile.custom_field(manager), None);
    client
        .set_profile_custom_field(profile.id, manager, "Sanne Agent")
        .await
        .unwrap();
    let read = client.profile(profile.id).await.unwrap();
    assert_eq!(read.custom_field(manager), Some("Sanne Agent"));
    let number = field(&client, "Customer number", "CONTACT").await;
    let error = client
        .set_profile_custom_field(profile.id, number, "C-1")
        .await
        .unwrap_err();
    assert!(matches!(error, ApiError::Validation { .. }), "{error:?}");
}

#[tokio::test]
async fn a_ticket_custom_field_follows_the_empty_value_rule_and_reads_back() {
    for clears in [false, true] {
        let options = TrengoFakeOptions {
            empty_value_clears_custom_field: clears,
            ..TrengoFakeOptions::default()
        };
        let (fake, client) = start(options).await;
        let ticket = fake.ticket_ids()[0];
        let due = field(&client, "Task due", "TICKET").await;
        client
            .set_ticket_custom_field(ticket, due, "2026-03-05")
            .await
            .unwrap();
        assert_eq!(
            client.ticket(ticket).await.unwrap().custom_field(due),
            Some("2026-03-05")
        );
        let cleared = client.set_ticket_custom_field(ticket, due, "").await;
        let read = client.ticket(ticket).await.unwrap();
        if clears {
            cleared.unwrap();
            assert_eq!(read.custom_field(due), None);
        } else {
            assert!(matches!(cleared, Err(ApiError::Validation { .. })));
            assert_eq!(read.custom_field(due), Some("2026-03-05"));
        }
    }
}

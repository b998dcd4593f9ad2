//! The GHL client against the GHL fake for what contact profiles need (issue #15): a
//! contact's appointments (naive times read in the location's zone, or RFC 3339) and custom
//! field values written by id or by key and read back, under both settings of each switch the
//! reference's uncertain points became (ghl-api.md §6, §7).

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use trengo_sync::api::Budget;
use trengo_sync::clock::{ManualClock, SharedClock};
use trengo_sync::ghl::{ContactFields, CustomFieldInput, GhlAuth, GhlClient, GhlClientConfig};
use trengo_sync::sim::ghl::{GhlFake, GhlFakeOptions, GhlSwitches};

fn start_time() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-03-02T10:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

async fn start(switches: GhlSwitches) -> (GhlFake, GhlClient) {
    let options = GhlFakeOptions {
        switches,
        ..GhlFakeOptions::default()
    };
    let clock: SharedClock = ManualClock::new(start_time());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let auth = GhlAuth::PrivateToken(options.private_token.expose_secret().to_owned().into());
    let location = options.location_id.clone();
    let fake = GhlFake::start(listener, options, clock.clone()).unwrap();
    let config = GhlClientConfig::new(fake.base_url().parse().unwrap(), location, auth);
    let budget = Arc::new(Budget::new("ghl", 1000, Duration::from_secs(10)));
    let client = GhlClient::new(config, clock, budget).unwrap();
    (fake, client)
}

fn first_contact(fake: &GhlFake) -> String {
    let state = fake.state().snapshot();
    state["contacts"][0]["id"].as_str().unwrap().to_owned()
}

fn customer_number_field(fake: &GhlFake) -> String {
    fake.custom_field_id("contact.customer_number").unwrap()
}

async fn value_of(client: &GhlClient, contact: &str, field: &str) -> Option<Value> {
    let read = client.contact(contact).await.unwrap();
    read.custom_fields
        .into_iter()
        .find(|v| v.id == field)
        .map(|v| v.value)
}

const AMSTERDAM: Tz = Tz::Europe__Amsterdam;

#[tokio::test]
async fn seeded_appointment_reads_as_the_same_instant_naive_or_rfc3339() {
    for naive in [true, false] {
        let switches = GhlSwitches {
            appointment_times_naive: naive,
            ..GhlSwitches::default()
        };
        let (fake, client) = start(switches).await;
        let contact = first_contact(&fake);
        let events = client
            .contact_appointments(&contact, AMSTERDAM)
            .await
            .unwrap();
        assert_eq!(events.len(), 1, "naive {naive}: {events:?}");
        let event = &events[0];
        assert_eq!(event.title.as_deref(), Some("Intake call"));
        assert_eq!(event.status(), Some("booked"));
        // The first contact's is a day after start at 10:00 Amsterdam (CET, UTC+1).
        assert_eq!(
            event.start_time.unwrap().to_rfc3339(),
            "2026-03-03T09:00:00+00:00",
            "naive {naive}"
        );
        assert_eq!(
            event.end_time.unwrap() - event.start_time.unwrap(),
            chrono::Duration::minutes(30)
        );
    }
}

#[tokio::test]
async fn a_booked_appointment_appears_with_its_status_and_zone_read_time() {
    let (fake, client) = start(GhlSwitches::default()).await;
    let contact = first_contact(&fake);
    fake.state()
        .add_appointment(
            &contact,
            &json!({"title": "Renewal talk", "startTime": "2026-07-01T14:30:00+02:00",
                    "appointmentStatus": "confirmed"}),
        )
        .unwrap();
    let events = client
        .contact_appointments(&contact, AMSTERDAM)
        .await
        .unwrap();
    let renewal = events
        .iter()
        .find(|e| e.title.as_deref() == Some("Renewal talk"))
        .unwrap();
    assert_eq!(renewal.status(), Some("confirmed"));
    // Served as "2026-07-01 14:30:00" (summer time), read back as 12:30 UTC.
    assert_eq!(
        renewal.start_time.unwrap().to_rfc3339(),
        "2026-07-01T12:30:00+00:00"
    );
}

#[tokio::test]
async fn appointments_of_an_unknown_contact_are_not_found() {
    let (_fake, client) = start(GhlSwitches::default()).await;
    let error = client
        .contact_appointments("nobody00000000000000", AMSTERDAM)
        .await
        .unwrap_err();
    assert!(
        matches!(error, trengo_sync::api::ApiError::NotFound { .. }),
        "{error:?}"
    );
}

#[tokio::test]
async fn custom_field_written_by_id_reads_back_under_either_read_shape() {
    for field_value in [true, false] {
        let switches = GhlSwitches {
            custom_field_reads_say_field_value: field_value,
            ..GhlSwitches::default()
        };
        let (fake, client) = start(switches).await;
        let contact = first_contact(&fake);
        let field = customer_number_field(&fake);
        let fields = ContactFields {
            custom_fields: Some(vec![CustomFieldInput::by_id(&field, json!("C-77777"))]),
            ..ContactFields::default()
        };
        client.update_contact(&contact, &fields).await.unwrap();
        assert_eq!(
            value_of(&client, &contact, &field).await,
            Some(json!("C-77777")),
            "fieldValue {field_value}"
        );
        // The fake answered the shape the switch asks for; the client read either.
        let raw = fake.state().contact_json(&contact).unwrap();
        let item = raw["customFields"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["id"] == field.as_str())
            .unwrap()
            .clone();
        let key = if field_value { "fieldValue" } else { "value" };
        assert_eq!(item[key], "C-77777", "{item}");
    }
}

#[tokio::test]
async fn custom_field_written_by_bare_key_lands_under_either_key_rule() {
    for needs_prefix in [true, false] {
        let switches = GhlSwitches {
            custom_field_key_needs_prefix: needs_prefix,
            ..GhlSwitches::default()
        };
        let (fake, client) = start(switches).await;
        let contact = first_contact(&fake);
        let field = customer_number_field(&fake);
        // The client adds the `contact.` prefix, the form both settings accept.
        let fields = ContactFields {
            custom_fields: Some(vec![CustomFieldInput::by_key(
                "customer_number",
                json!("C-12345"),
            )]),
            ..ContactFields::default()
        };
        client.update_contact(&contact, &fields).await.unwrap();
        assert_eq!(
            value_of(&client, &contact, &field).await,
            Some(json!("C-12345")),
            "needs_prefix {needs_prefix}"
        );
    }
}

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
    start_with(GhlFakeOptions {
        switches,
        ..GhlFakeOptions::default()
    })
    .await
}

async fn start_with(options: GhlFakeOptions) -> (GhlFake, GhlClient) {
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

#[tokio::test]
async fn the_location_zone_reads_as_the_fake_was_set_up() {
    for zone in [Tz::Europe__Amsterdam, Tz::America__Chicago] {
        let (_fake, client) = start_with(GhlFakeOptions {
            location_timezone: zone,
            ..GhlFakeOptions::default()
        })
        .await;
        assert_eq!(client.location_timezone().await.unwrap(), zone);
        assert_eq!(
            client.location().await.unwrap().timezone.as_deref(),
            Some(zone.name())
        );
    }
}

#[tokio::test]
async fn a_location_zone_that_is_not_iana_is_a_malformed_answer_naming_it() {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/locations/loc-1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"location": {"id": "loc-1", "name": "Dentist", "timezone": "GMT+2 Paris"}}),
        ))
        .mount(&server)
        .await;
    let config = GhlClientConfig::new(
        server.uri().parse().unwrap(),
        "loc-1",
        GhlAuth::PrivateToken("pit-test".to_owned().into()),
    );
    let clock: SharedClock = ManualClock::new(start_time());
    let budget = Arc::new(Budget::new("ghl", 1000, Duration::from_secs(10)));
    let client = GhlClient::new(config, clock, budget).unwrap();
    let error = client.location_timezone().await.unwrap_err();
    assert!(
        matches!(error, trengo_sync::api::ApiError::Malformed { .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("GMT+2 Paris"), "{error}");
}

#[tokio::test]
async fn standard_contact_fields_are_written_and_read_back() {
    let (fake, client) = start(GhlSwitches::default()).await;
    let contact = first_contact(&fake);
    let seeded = client.contact(&contact).await.unwrap();
    assert!(seeded.city.is_some() && seeded.website.is_some() && seeded.company_name.is_some());
    let fields = ContactFields {
        address1: Some("Damrak 1".into()),
        city: Some("Haarlem".into()),
        state: Some("NH".into()),
        postal_code: Some("2011 AA".into()),
        country: Some("NL".into()),
        website: Some("https://ada.example".into()),
        date_of_birth: Some("1990-04-01".into()),
        ..ContactFields::default()
    };
    let answered = client.update_contact(&contact, &fields).await.unwrap();
    let read = client.contact(&contact).await.unwrap();
    assert_eq!(answered, read);
    assert_eq!(read.address1.as_deref(), Some("Damrak 1"));
    assert_eq!(read.city.as_deref(), Some("Haarlem"));
    assert_eq!(read.state.as_deref(), Some("NH"));
    assert_eq!(read.postal_code.as_deref(), Some("2011 AA"));
    assert_eq!(read.country.as_deref(), Some("NL"));
    assert_eq!(read.website.as_deref(), Some("https://ada.example"));
    assert_eq!(read.date_of_birth.as_deref(), Some("1990-04-01"));
    assert_eq!(read.source.as_deref(), Some("sim seed"));
    assert!(read.date_updated > seeded.date_updated);
}

#[tokio::test]
async fn the_catalogue_lists_the_profile_fields_with_their_types_and_options() {
    let (_fake, client) = start(GhlSwitches::default()).await;
    let fields = client.custom_fields().await.unwrap();
    let shown: Vec<(&str, &str, &str)> = fields
        .iter()
        .map(|f| {
            (
                f.name.as_deref().unwrap(),
                f.field_key.as_deref().unwrap(),
                f.data_type.as_deref().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        shown,
        [
            ("Trengo ticket", "contact.trengo_ticket", "TEXT"),
            ("Customer number", "contact.customer_number", "TEXT"),
            (
                "Subscription tier",
                "contact.subscription_tier",
                "SINGLE_OPTIONS"
            ),
            ("Renewal date", "contact.renewal_date", "DATE"),
            ("Seats", "contact.seats", "NUMERICAL"),
            ("Newsletter", "contact.newsletter", "CHECKBOX"),
        ]
    );
    assert_eq!(fields[2].picklist_options, ["Basic", "Pro", "Enterprise"]);
    assert_eq!(fields[5].picklist_options, ["Yes"]);
    assert!(fields[3].picklist_options.is_empty());
}

#[tokio::test]
async fn typed_custom_fields_read_back_as_their_type() {
    let (fake, client) = start(GhlSwitches {
        custom_field_reads_say_field_value: false,
        ..GhlSwitches::default()
    })
    .await;
    let contact = first_contact(&fake);
    let id = |key: &str| fake.custom_field_id(key).unwrap();
    // Seeded: every contact has a tier, from its position (no random draw).
    let tier = value_of(&client, &contact, &id("contact.subscription_tier")).await;
    assert!(
        matches!(
            tier.as_ref().and_then(Value::as_str),
            Some("Basic" | "Pro" | "Enterprise")
        ),
        "{tier:?}"
    );
    let fields = ContactFields {
        custom_fields: Some(vec![
            CustomFieldInput::by_id(id("contact.subscription_tier"), json!("Enterprise")),
            CustomFieldInput::by_id(id("contact.renewal_date"), json!("2026-12-31")),
            CustomFieldInput::by_id(id("contact.seats"), json!(12)),
            CustomFieldInput::by_id(id("contact.newsletter"), json!(["Yes"])),
        ]),
        ..ContactFields::default()
    };
    client.update_contact(&contact, &fields).await.unwrap();
    let read = |key: &'static str| {
        let client = &client;
        let contact = contact.clone();
        let field = id(key);
        async move { value_of(client, &contact, &field).await }
    };
    assert_eq!(
        read("contact.subscription_tier").await,
        Some(json!("Enterprise"))
    );
    // A DATE reads back as the text written (GHL's read format is not pinned down).
    assert_eq!(
        read("contact.renewal_date").await,
        Some(json!("2026-12-31"))
    );
    assert_eq!(read("contact.seats").await, Some(json!(12)));
    assert_eq!(read("contact.newsletter").await, Some(json!(["Yes"])));
    // A numeric string is kept as its number; a lone checkbox option as a one-item list.
    let fields = ContactFields {
        custom_fields: Some(vec![
            CustomFieldInput::by_id(id("contact.seats"), json!("7")),
            CustomFieldInput::by_key("newsletter", json!("Yes")),
        ]),
        ..ContactFields::default()
    };
    client.update_contact(&contact, &fields).await.unwrap();
    assert_eq!(read("contact.seats").await, Some(json!(7)));
    assert_eq!(read("contact.newsletter").await, Some(json!(["Yes"])));
}

//! Settings of the GHL fake: who it is (location, tokens, OAuth client), how much it seeds,
//! its limits, and the switches for behaviour `ghl-api.md` leaves uncertain.
//!
//! Every default is the pessimistic reading of the reference, so tests meet the unkindest
//! GHL the documents allow.

use std::time::Duration;

use chrono_tz::Tz;

use secrecy::SecretString;
use serde::{Deserialize, Deserializer, Serialize};

/// The only `Version` header value the contacts and locations specs enumerate
/// (ghl-api.md §1.1 \[spec S1, S2\]).
pub const API_VERSION: &str = "2021-07-28";

/// Everything the GHL fake can be told at start.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GhlFakeOptions {
    /// The sub-account (location) every token of this fake belongs to.
    /// Default `ve9EPM428h8vShlRW1KT` (the id in GHL's own examples).
    pub location_id: String,
    /// The company (agency) the location belongs to; echoed in OAuth answers.
    pub company_id: String,
    /// The Private Integration Token the fake accepts (a `pit-…` string, ghl-api.md §1.2).
    pub private_token: SecretString,
    /// OAuth client id of the marketplace app.
    pub client_id: String,
    /// OAuth client secret of the marketplace app.
    pub client_secret: SecretString,
    /// The refresh token that works first; each use replaces it (ghl-api.md §1.2).
    pub refresh_token: SecretString,
    /// Lifetime of OAuth access tokens on the injected clock. Default 86399 s (ghl-api.md §1.2).
    #[serde(deserialize_with = "human_duration")]
    pub access_token_ttl: Duration,
    /// Redirect URIs registered with the OAuth app; the authorization page refuses any other.
    /// Default none (register them with `GhlFake::register_redirect_uri`).
    pub redirect_uris: Vec<String>,
    /// How long an authorization code can be redeemed, on the injected clock. Default 60 s:
    /// GHL documents no lifetime (ghl-api.md §1.2), so the fake keeps it short.
    #[serde(deserialize_with = "human_duration")]
    pub authorization_code_ttl: Duration,
    /// Seed for the generated state, ids and fault decisions. Default 1.
    pub seed: u64,
    /// Contacts generated at start. Default 20.
    pub contacts: usize,
    /// How far `POST /contacts/search` trails writes: results show the index as it was this
    /// long ago on the injected clock. Default 5 s (ghl-api.md §3.2 "a few seconds").
    #[serde(deserialize_with = "human_duration")]
    pub index_lag: Duration,
    /// Requests allowed per burst window. Default 100 (ghl-api.md §2).
    pub burst_limit: u32,
    /// Length of the burst window. Default 10 s (ghl-api.md §2).
    #[serde(deserialize_with = "human_duration")]
    pub burst_window: Duration,
    /// Requests allowed per UTC day of the injected clock. Default 200 000 (ghl-api.md §2).
    pub daily_limit: u32,
    /// Seed of the Ed25519 key that signs webhooks (`x-ghl-signature`). Default 7.
    pub webhook_key_seed: u64,
    /// Attempts per webhook delivery before giving up. Default 3 (GHL itself retries up to 12
    /// times, ghl-api.md §8.1 \[3p\]; a fake that long-lived is no use to a test).
    pub webhook_attempts: u32,
    /// Pause before the first webhook retry; doubles each time. Default 200 ms.
    #[serde(deserialize_with = "human_duration")]
    pub webhook_retry_delay: Duration,
    /// IANA zone of the location: appointments are served as wall-clock times in it while
    /// `appointment_times_naive` is on. Default `Europe/Amsterdam` (the seed contacts' zone).
    #[serde(deserialize_with = "zone_name")]
    pub location_timezone: Tz,
    /// Switches for behaviour the reference marks uncertain.
    pub switches: GhlSwitches,
}

impl Default for GhlFakeOptions {
    fn default() -> Self {
        Self {
            location_id: "ve9EPM428h8vShlRW1KT".to_owned(),
            company_id: "5DP4iH6HLkQsiKESj6rh".to_owned(),
            private_token: SecretString::from(
                "pit-5a1e0c3d-sim0-4ghl-9fak-e0000000000a".to_owned(),
            ),
            client_id: "6650f0c0sim0ghl0fake-lx0a1b2c".to_owned(),
            client_secret: SecretString::from("sim-client-secret-2b7e1516".to_owned()),
            refresh_token: SecretString::from("sim-refresh-0000000000000000".to_owned()),
            access_token_ttl: Duration::from_secs(86_399),
            redirect_uris: Vec::new(),
            authorization_code_ttl: Duration::from_secs(60),
            seed: 1,
            contacts: 20,
            index_lag: Duration::from_secs(5),
            burst_limit: 100,
            burst_window: Duration::from_secs(10),
            daily_limit: 200_000,
            webhook_key_seed: 7,
            webhook_attempts: 3,
            webhook_retry_delay: Duration::from_millis(200),
            location_timezone: Tz::Europe__Amsterdam,
            switches: GhlSwitches::default(),
        }
    }
}

/// Behaviour the reference leaves open, as switches; `Default` is the pessimistic setting.
/// They can be changed while the fake runs (`GhlFake::set_switches`, `PUT /_sim/switches`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GhlSwitches {
    /// Task create/update/complete/delete moves the contact's `dateUpdated`.
    /// Default false: not documented (ghl-api.md §4.2, §11.3).
    pub task_completion_bumps_contact: bool,
    /// Note create/update/delete moves the contact's `dateUpdated`.
    /// Default false: not documented (ghl-api.md §11.3).
    pub note_bumps_contact: bool,
    /// `dateUpdated`/`dateAdded` range filters also accept epoch milliseconds.
    /// Default false: only ISO strings are seen working (ghl-api.md §3.2, §11.5).
    pub range_accepts_epoch_ms: bool,
    /// Each search hit's `searchAfter` carries the sort value as a number (as the spec's
    /// example shows) rather than a string (as the spec's `items: {type: string}` says).
    /// Default false: conform to the schema; the fake accepts both back.
    pub search_after_numeric: bool,
    /// `POST/DELETE /contacts/{id}/tags` answer with the full tag list rather than only the
    /// tags that changed. Default false (ghl-api.md §11.12).
    pub tag_writes_echo_full_list: bool,
    /// TaskCreate webhooks arrive without `contactId` and `body`, as reported in
    /// highlevel-api-docs#332 (ghl-api.md §8.3 \[obs\]). Default true.
    pub task_create_webhook_thin: bool,
    /// Largest `limit` `POST /locations/{id}/tasks/search` honours; larger asks are cut
    /// silently. Default 25, the documented default; a larger limit is unverified (§11.2).
    pub task_search_limit_cap: u32,
    /// The location allows duplicate contacts (same email/phone). Default false, GHL's
    /// default setting: creating a duplicate is refused with 400.
    pub allow_duplicate_contacts: bool,
    /// The authorization page sends the caller's `state` back on the redirect. Default false:
    /// GHL's authorization documentation names no `state` parameter (ghl-api.md §1.2).
    pub redirect_keeps_state: bool,
    /// `POST /contacts/upsert` accepts a contact with a phone but no e-mail. Default false:
    /// refused with 422, as seen in n8n (ghl-api.md §3.3 \[obs S21 n8n#11353\]).
    pub upsert_phone_only_accepted: bool,
    /// `PUT /contacts/{id}/tasks/{taskId}` accepts a body without `title` and `dueDate`, or a
    /// `dueDate` with milliseconds. Default false: refused with 422; n8n always sends both,
    /// `dueDate` without milliseconds, because the API errors otherwise (ghl-api.md §4.1 \[obs\]).
    pub task_update_partial_accepted: bool,
    /// Contact reads (`GET /contacts/{id}`, search hits, contact webhooks, create/update
    /// answers) carry each custom field value under `fieldValue` instead of the spec's `value`.
    /// Default true: some endpoints were reported to answer `fieldValue`, and which ones is
    /// not known, so the fake answers the shape a client written from the spec would miss
    /// (ghl-api.md §7 "accept both", §11.10).
    pub custom_field_reads_say_field_value: bool,
    /// A custom field write by `key` must spell the key with its `contact.` prefix
    /// (`contact.customer_number`); a bare key (`customer_number`) is ignored silently, as an
    /// unknown field is. Off: both spellings are accepted. Default true: the key format is not
    /// pinned down (ghl-api.md §7 \[uncertain\], §11.10) and third-party examples use the
    /// prefix; writes by `id` work either way.
    pub custom_field_key_needs_prefix: bool,
    /// `startTime`, `endTime`, `dateAdded` and `dateUpdated` of appointments are served naive,
    /// as the spec's examples show them (`"2021-07-16 11:00:00"`, wall-clock time in the
    /// location's zone, no offset). Off: RFC 3339 in UTC (`2021-07-16T09:00:00.000Z`).
    /// Default true: the spec examples are all GHL shows (ghl-api.md §6 "parse leniently").
    pub appointment_times_naive: bool,
}

impl Default for GhlSwitches {
    fn default() -> Self {
        Self {
            task_completion_bumps_contact: false,
            note_bumps_contact: false,
            range_accepts_epoch_ms: false,
            search_after_numeric: false,
            tag_writes_echo_full_list: false,
            task_create_webhook_thin: true,
            task_search_limit_cap: 25,
            allow_duplicate_contacts: false,
            redirect_keeps_state: false,
            upsert_phone_only_accepted: false,
            task_update_partial_accepted: false,
            custom_field_reads_say_field_value: true,
            custom_field_key_needs_prefix: true,
            appointment_times_naive: true,
        }
    }
}

/// Reads a duration written for people (`"5s"`, `"86399s"`, `"200ms"`).
fn human_duration<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(deserializer)?;
    humantime::parse_duration(&text).map_err(|e| {
        serde::de::Error::custom(format!(
            "`{text}` is not a duration ({e}); write it like \"5s\" or \"200ms\""
        ))
    })
}

/// Reads an IANA zone name (`"Europe/Amsterdam"`).
fn zone_name<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Tz, D::Error> {
    let text = String::deserialize(deserializer)?;
    text.parse::<Tz>().map_err(|_| {
        serde::de::Error::custom(format!(
            "`{text}` is not an IANA time zone; write it like \"Europe/Amsterdam\" or \"UTC\""
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_pessimistic_reading() {
        let options = GhlFakeOptions::default();
        assert_eq!(options.access_token_ttl, Duration::from_secs(86_399));
        assert_eq!(options.burst_limit, 100);
        assert!(!options.switches.task_completion_bumps_contact);
        assert!(!options.switches.note_bumps_contact);
        assert!(options.switches.task_create_webhook_thin);
        assert!(!options.switches.redirect_keeps_state);
        assert_eq!(options.authorization_code_ttl, Duration::from_secs(60));
        assert!(options.redirect_uris.is_empty());
        assert!(!options.switches.upsert_phone_only_accepted);
        assert!(!options.switches.task_update_partial_accepted);
        assert!(options.switches.custom_field_reads_say_field_value);
        assert!(options.switches.custom_field_key_needs_prefix);
        assert!(options.switches.appointment_times_naive);
        assert_eq!(options.location_timezone, Tz::Europe__Amsterdam);
    }

    #[test]
    fn options_read_from_toml_with_human_durations() {
        let options: GhlFakeOptions =
            toml::from_str("index_lag = \"2s\"\nseed = 9\n[switches]\nnote_bumps_contact = true\n")
                .unwrap();
        assert_eq!(options.index_lag, Duration::from_secs(2));
        assert_eq!(options.seed, 9);
        assert!(options.switches.note_bumps_contact);
    }

    #[test]
    fn an_unknown_location_zone_is_refused_with_an_example() {
        let error = toml::from_str::<GhlFakeOptions>("location_timezone = \"Mars/Olympus\"\n")
            .unwrap_err()
            .to_string();
        assert!(error.contains("Mars/Olympus"), "{error}");
        assert!(error.contains("Europe/Amsterdam"), "{error}");
    }

    #[test]
    fn debug_output_hides_the_secrets() {
        let text = format!("{:?}", GhlFakeOptions::default());
        assert!(!text.contains("pit-5a1e"));
        assert!(!text.contains("sim-client-secret"));
        assert!(!text.contains("sim-refresh-0000"));
    }
}

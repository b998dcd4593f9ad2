//! How the Trengo fake is configured: the accepted token, the seed, the zone of its naive
//! timestamps, the rate limit, and the switches for what `trengo-api.md` leaves uncertain.
//!
//! Every uncertain fact is a switch whose default is the pessimistic reading, so a client
//! that passes against the defaults also survives the kinder reality.

use std::str::FromStr;

use chrono_tz::Tz;
use secrecy::SecretString;
use serde::{Deserialize, Deserializer, Serialize};

/// The token the fake accepts when none is configured.
pub const DEFAULT_TOKEN: &str = "sim-trengo-token";

/// Settings of one Trengo fake. `Default` is the pessimistic set used by tests.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrengoFakeOptions {
    /// The personal access token accepted as `Authorization: Bearer <token>`.
    /// Default: [`DEFAULT_TOKEN`].
    pub token: SecretString,
    /// Seed of every random choice (ids, seeded data, signing secrets, faults). Default 1.
    pub seed: u64,
    /// Zone in which naive `YYYY-MM-DD HH:MM:SS` timestamps are rendered and `updated_at_gt` is
    /// read (trengo-api.md §4.3 \[REC\]: an account-level zone). Default `Europe/Amsterdam`.
    #[serde(deserialize_with = "deserialize_zone")]
    pub zone: Tz,
    /// Items per page of the list endpoints (trengo-api.md §3.2 \[OBS\]: 25). Default 25.
    pub page_size: u32,
    /// Whether attaching or detaching a label bumps the ticket's `updated_at`
    /// (trengo-api.md §3.4 \[U\]). Default `false`.
    pub label_bumps_updated_at: bool,
    /// Whether a new internal note bumps the ticket's `updated_at` (§3.4 \[U\]). Default `false`.
    pub note_bumps_updated_at: bool,
    /// Whether a new customer or agent message bumps the ticket's `updated_at` (§3.4 \[U\]).
    /// Default `false`.
    pub message_bumps_updated_at: bool,
    /// Whether setting a ticket custom field bumps the ticket's `updated_at` (§3.4 \[U\]).
    /// Default `false`.
    pub custom_field_bumps_updated_at: bool,
    /// Requests allowed per minute for the token (trengo-api.md §2 \[OFF\]: 120). Default 120.
    pub rate_limit_per_minute: u32,
    /// Whether `per_page` on list endpoints is honoured (trengo-api.md §3.2 \[U\]). Default
    /// `false`: pages stay at `page_size` whatever the client asks.
    pub per_page_honoured: bool,
    /// Whether a list page's `links.next` (and `first`/`prev`) keep the request's filters.
    /// Default `false`: the captured links show only `?page=N` (trengo-api.md §3.1, §13), so a
    /// client following them verbatim would list the whole mailbox from page 2 on.
    pub next_link_keeps_filters: bool,
    /// Whether `POST /channels/{id}/contacts` accepts an e-mail identifier on a channel that is
    /// not an e-mail channel (WhatsApp, SMS, voice). Default `false`: refused with 422, since
    /// the identifier is a phone number there (trengo-api.md §6 \[OBS\]).
    pub email_identifier_on_any_channel: bool,
    /// Whether user objects carry the account's zone as their `timezone`. Default `false`: they
    /// carry `Africa/Cairo`, as the agents of the one captured account did while its naive
    /// timestamps were rendered in UTC+1 (trengo-api.md §4.3 \[OBS\]): a user's zone is a
    /// hint, not the account's zone.
    pub users_carry_account_zone: bool,
    /// Whether an empty `value` on `POST /tickets/{id}/custom_fields` and
    /// `POST /contacts/{id}/custom_fields` clears the field. Default `false`: refused with 422
    /// ("The value field is required.", Laravel's `required` rule), since how to clear a value
    /// is untested (trengo-api.md §7 \[U\], Uncertain 9).
    pub empty_value_clears_custom_field: bool,
    /// Whether setting a contact custom field (`POST /contacts/{id}/custom_fields`) moves
    /// the contact's `updated_at`. Default `false`: it stays, so a reader cannot learn of the
    /// change from `updated_at`; trengo-api.md §6 and §7 do not say.
    pub custom_field_write_bumps_contact: bool,
    /// Channels the token's user has no access to (trengo-api.md §1 \[ONE\]: list results
    /// are limited to what that user may see): their tickets are missing from every list,
    /// `GET /channels` leaves them out, and any call on one of their tickets answers 403.
    /// Default none.
    pub hidden_channels: Vec<i64>,
    /// The account (`agency_id`) every object belongs to. Default 193412.
    pub agency_id: i64,
    /// The user the token acts as: tickets created through the API are assigned to them and
    /// notes written through the API carry their id (trengo-api.md §4.4 \[OBS\], §14).
    pub api_user: SimUser,
}

impl Default for TrengoFakeOptions {
    fn default() -> Self {
        Self {
            token: SecretString::from(DEFAULT_TOKEN.to_owned()),
            seed: 1,
            zone: chrono_tz::Europe::Amsterdam,
            page_size: 25,
            label_bumps_updated_at: false,
            note_bumps_updated_at: false,
            message_bumps_updated_at: false,
            custom_field_bumps_updated_at: false,
            rate_limit_per_minute: 120,
            per_page_honoured: false,
            next_link_keeps_filters: false,
            email_identifier_on_any_channel: false,
            users_carry_account_zone: false,
            empty_value_clears_custom_field: false,
            custom_field_write_bumps_contact: false,
            hidden_channels: Vec::new(),
            agency_id: 193_412,
            api_user: SimUser::default(),
        }
    }
}

impl TrengoFakeOptions {
    /// The switches part of these options.
    pub fn switches(&self) -> TrengoSwitches {
        TrengoSwitches {
            label_bumps_updated_at: self.label_bumps_updated_at,
            note_bumps_updated_at: self.note_bumps_updated_at,
            message_bumps_updated_at: self.message_bumps_updated_at,
            custom_field_bumps_updated_at: self.custom_field_bumps_updated_at,
            per_page_honoured: self.per_page_honoured,
            next_link_keeps_filters: self.next_link_keeps_filters,
            email_identifier_on_any_channel: self.email_identifier_on_any_channel,
            users_carry_account_zone: self.users_carry_account_zone,
            empty_value_clears_custom_field: self.empty_value_clears_custom_field,
            custom_field_write_bumps_contact: self.custom_field_write_bumps_contact,
            rate_limit_per_minute: self.rate_limit_per_minute,
            page_size: self.page_size,
        }
    }

    /// Applies `switches` to these options.
    pub fn apply(&mut self, switches: &TrengoSwitches) {
        self.label_bumps_updated_at = switches.label_bumps_updated_at;
        self.note_bumps_updated_at = switches.note_bumps_updated_at;
        self.message_bumps_updated_at = switches.message_bumps_updated_at;
        self.custom_field_bumps_updated_at = switches.custom_field_bumps_updated_at;
        self.per_page_honoured = switches.per_page_honoured;
        self.next_link_keeps_filters = switches.next_link_keeps_filters;
        self.email_identifier_on_any_channel = switches.email_identifier_on_any_channel;
        self.users_carry_account_zone = switches.users_carry_account_zone;
        self.empty_value_clears_custom_field = switches.empty_value_clears_custom_field;
        self.custom_field_write_bumps_contact = switches.custom_field_write_bumps_contact;
        self.rate_limit_per_minute = switches.rate_limit_per_minute;
        self.page_size = switches.page_size.max(1);
    }
}

/// The settings a running fake lets a test change (`PUT /_sim/switches`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrengoSwitches {
    /// See [`TrengoFakeOptions::label_bumps_updated_at`].
    pub label_bumps_updated_at: bool,
    /// See [`TrengoFakeOptions::note_bumps_updated_at`].
    pub note_bumps_updated_at: bool,
    /// See [`TrengoFakeOptions::message_bumps_updated_at`].
    pub message_bumps_updated_at: bool,
    /// See [`TrengoFakeOptions::custom_field_bumps_updated_at`].
    pub custom_field_bumps_updated_at: bool,
    /// See [`TrengoFakeOptions::per_page_honoured`].
    pub per_page_honoured: bool,
    /// See [`TrengoFakeOptions::next_link_keeps_filters`].
    #[serde(default)]
    pub next_link_keeps_filters: bool,
    /// See [`TrengoFakeOptions::email_identifier_on_any_channel`].
    #[serde(default)]
    pub email_identifier_on_any_channel: bool,
    /// See [`TrengoFakeOptions::users_carry_account_zone`].
    #[serde(default)]
    pub users_carry_account_zone: bool,
    /// See [`TrengoFakeOptions::empty_value_clears_custom_field`].
    #[serde(default)]
    pub empty_value_clears_custom_field: bool,
    /// See [`TrengoFakeOptions::custom_field_write_bumps_contact`].
    #[serde(default)]
    pub custom_field_write_bumps_contact: bool,
    /// See [`TrengoFakeOptions::rate_limit_per_minute`].
    pub rate_limit_per_minute: u32,
    /// See [`TrengoFakeOptions::page_size`].
    pub page_size: u32,
}

/// A Trengo user (agent) as the fake knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SimUser {
    /// User id. Default 709618.
    pub id: i64,
    /// First name. Default "Sync".
    pub first_name: String,
    /// Last name. Default "Bot".
    pub last_name: String,
    /// E-mail address. Default `sync-bot@example.com`.
    pub email: String,
}

impl Default for SimUser {
    fn default() -> Self {
        Self {
            id: 709_618,
            first_name: "Sync".to_owned(),
            last_name: "Bot".to_owned(),
            email: "sync-bot@example.com".to_owned(),
        }
    }
}

fn deserialize_zone<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Tz, D::Error> {
    let name = String::deserialize(deserializer)?;
    Tz::from_str(&name).map_err(|_| {
        serde::de::Error::custom(format!(
            "unknown time zone {name:?}: use an IANA name such as \"Europe/Amsterdam\" or \"UTC\""
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn defaults_are_pessimistic() {
        let options = TrengoFakeOptions::default();
        assert!(!options.label_bumps_updated_at);
        assert!(!options.note_bumps_updated_at);
        assert!(!options.per_page_honoured);
        assert!(!options.next_link_keeps_filters);
        assert!(!options.email_identifier_on_any_channel);
        assert!(!options.users_carry_account_zone);
        assert!(!options.empty_value_clears_custom_field);
        assert!(!options.custom_field_write_bumps_contact);
        assert_eq!(options.page_size, 25);
        assert_eq!(options.rate_limit_per_minute, 120);
    }

    #[test]
    fn options_read_from_toml_with_a_zone_name() {
        let options: TrengoFakeOptions =
            toml::from_str("token = \"abc\"\nzone = \"UTC\"\nseed = 9\n").unwrap();
        assert_eq!(options.zone, chrono_tz::UTC);
        assert_eq!(options.seed, 9);
        assert_eq!(options.token.expose_secret(), "abc");
        assert!(!format!("{options:?}").contains("abc"));
    }

    #[test]
    fn an_unknown_zone_names_the_problem() {
        let err = toml::from_str::<TrengoFakeOptions>("zone = \"Mars/Olympus\"").unwrap_err();
        assert!(err.to_string().contains("Mars/Olympus"));
    }
}

//! What a failure is called where it is kept or shown: codes and ids, never remote text.
//!
//! A failing item's reason is stored in the retry table and served on `/status`; a failed
//! pass's is served on `/status` and `/readyz`. Those are read by more people than the logs,
//! and an API's message may quote a customer's name from a task body or an e-mail address. So
//! [`ReasonCode::reason_code`] names the API, method, path, HTTP status and kind of failure
//! ([`ApiError::code`]), and masks e-mail addresses and phone numbers in the daemon's own
//! messages. The log line written at the same time carries the whole (redacted) error, and
//! `trengo-sync explain` shows the item itself.

use crate::api::ApiError;
use crate::store::StoreError;
use crate::sync::engine::EngineError;
use crate::sync::execute::ItemError;
use crate::sync::load::ReadError;

/// An error as it may be stored and served.
pub trait ReasonCode {
    /// Codes and ids only (see the module doc).
    fn reason_code(&self) -> String;
}

impl ReasonCode for ApiError {
    fn reason_code(&self) -> String {
        self.code()
    }
}

impl ReasonCode for StoreError {
    fn reason_code(&self) -> String {
        // The store's errors are the daemon's own words about a local file.
        mask_contact_details(&self.to_string())
    }
}

impl ReasonCode for ItemError {
    fn reason_code(&self) -> String {
        match self {
            ItemError::Api(e) => e.reason_code(),
            ItemError::Store(e) => e.reason_code(),
            other => mask_contact_details(&other.to_string()),
        }
    }
}

impl ReasonCode for ReadError {
    fn reason_code(&self) -> String {
        match self {
            ReadError::Api(e) => e.reason_code(),
            ReadError::Store(e) => e.reason_code(),
            other => mask_contact_details(&other.to_string()),
        }
    }
}

impl ReasonCode for EngineError {
    fn reason_code(&self) -> String {
        match self {
            EngineError::Read(e) => e.reason_code(),
            EngineError::Api(e) => e.reason_code(),
            EngineError::Store(e) => e.reason_code(),
            other => mask_contact_details(&other.to_string()),
        }
    }
}

/// `text` with every word that holds an `@` shown as `(e-mail)` and every phone-like number
/// (a `+` or at least 7 digits) as `(phone)`.
pub fn mask_contact_details(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for (i, word) in text.split(' ').enumerate() {
        if i > 0 {
            out.push(' ');
        }
        let core = word.trim_matches(|c: char| {
            matches!(c, '`' | '\'' | '"' | ',' | ';' | ':' | '(' | ')' | '.')
        });
        let digits = core.chars().filter(char::is_ascii_digit).count();
        let phone = !core.is_empty()
            && core
                .chars()
                .all(|c| c.is_ascii_digit() || matches!(c, '+' | '-' | '(' | ')'))
            && (digits >= 7 || (core.starts_with('+') && digits >= 4));
        if core.contains('@') {
            out.push_str(&word.replace(core, "(e-mail)"));
        } else if phone {
            out.push_str(&word.replace(core, "(phone)"));
        } else {
            out.push_str(word);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn e_mails_and_phones_are_masked_and_ids_kept() {
        let text = "no GHL contact has the e-mail jane.doe@example.com or phone +31610000000 \
                    of ticket #1234's contact: create the contact in GHL";
        let masked = mask_contact_details(text);
        assert!(!masked.contains("jane"), "{masked}");
        assert!(!masked.contains("31610000000"), "{masked}");
        assert!(masked.contains("#1234's"), "{masked}");
        assert!(
            masked.contains("(e-mail)") && masked.contains("(phone)"),
            "{masked}"
        );
        let user = mask_contact_details("no Trengo user has the e-mail `a@b.nl`; add the user");
        assert_eq!(
            user,
            "no Trengo user has the e-mail `(e-mail)`; add the user"
        );
    }

    #[test]
    fn ids_and_times_are_not_phones() {
        let text =
            "link 12 has no held conflict on status since 2027-01-15T08:00:00Z (ticket 5071)";
        assert_eq!(mask_contact_details(text), text);
    }
}

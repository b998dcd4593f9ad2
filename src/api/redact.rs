//! One redaction step for every piece of remote text the daemon keeps or shows.
//!
//! Error messages quote the start of an unreadable answer, or the API's own error message, so
//! that a person can see what the API said. Such text may hold a credential: a token endpoint
//! answering `{"access_token": "…"}` in a shape we do not read, or an API echoing a form field.
//! [`redact`] replaces the value of every key whose name contains `token`, `secret`,
//! `password` or `authorization` (any case), in JSON (`"refresh_token": "…"`), in form and
//! query text (`refresh_token=…&`), and in `key: value` lines; it also blanks what follows
//! `Bearer `. It works on text, not on parsed JSON, because a snippet is usually cut off
//! mid-document. Answers of an endpoint that returns credentials are never quoted at all
//! (see `EndpointConfig::secret_answers`); this step is the net under everything else.

/// Substrings of a key name that mark its value as a credential (compared in lower case).
pub const SENSITIVE_KEYS: [&str; 4] = ["token", "secret", "password", "authorization"];

/// What a redacted value is replaced with.
pub const REDACTED: &str = "[redacted]";

fn is_key_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')
}

fn sensitive(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    SENSITIVE_KEYS.iter().any(|s| key.contains(s)) || key == "bearer"
}

/// `text` with the value of every credential-like key replaced by [`REDACTED`].
pub fn redact(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        if !is_key_char(chars[i]) {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        // A word: a possible key.
        let start = i;
        while i < chars.len() && is_key_char(chars[i]) {
            i += 1;
        }
        let word: String = chars[start..i].iter().collect();
        out.push_str(&word);
        if !sensitive(&word) {
            continue;
        }
        // What separates the key from its value: a closing quote, spaces, then `:` or `=`
        // (or, after `Bearer`, the space alone).
        let mut j = i;
        while j < chars.len() && matches!(chars[j], '"' | '\'' | '\\') {
            j += 1;
        }
        while j < chars.len() && chars[j] == ' ' {
            j += 1;
        }
        let bearer = word.eq_ignore_ascii_case("bearer");
        if j < chars.len() && matches!(chars[j], ':' | '=') {
            j += 1;
        } else if !(bearer && j > i) {
            continue;
        }
        while j < chars.len() && chars[j] == ' ' {
            j += 1;
        }
        out.extend(&chars[i..j]);
        // The value: quoted up to the closing quote (or the end of a cut-off snippet), else up
        // to the next separator.
        let mut k = j;
        let mut quote = None;
        while k < chars.len() && matches!(chars[k], '"' | '\'' | '\\') {
            quote = Some(chars[k]);
            k += 1;
        }
        out.extend(&chars[j..k]);
        let value_start = k;
        match quote {
            Some(_) => {
                // An escaped character (`\"` inside the value) does not end it.
                while k < chars.len() && !matches!(chars[k], '"' | '\'') {
                    k += if chars[k] == '\\' { 2 } else { 1 };
                }
                k = k.min(chars.len());
            }
            None => {
                let stop =
                    |c: char| matches!(c, '&' | ',' | ';' | '}' | ']' | ')') || c.is_whitespace();
                while k < chars.len() && !stop(chars[k]) {
                    k += 1;
                }
                // `Authorization: Bearer …`: the credential is the word after the scheme.
                let scheme: String = chars[value_start..k].iter().collect();
                if ["bearer", "basic"].contains(&scheme.to_ascii_lowercase().as_str()) {
                    while k < chars.len() && chars[k] == ' ' {
                        k += 1;
                    }
                    while k < chars.len() && !stop(chars[k]) {
                        k += 1;
                    }
                }
            }
        }
        // A nested object or an empty value is left for the words inside it to be checked.
        let value: String = chars[value_start..k].iter().collect();
        if value.is_empty() || value.starts_with('{') || value.starts_with('[') {
            i = value_start;
            continue;
        }
        out.push_str(REDACTED);
        i = k;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_token_values_are_replaced() {
        let body = r#"{"access_token":"at-SECRET","token_type":"Bearer","expires_in":"86399","refresh_token":"rt-SECRET","scope":"contacts"}"#;
        let out = redact(body);
        assert!(!out.contains("SECRET"), "{out}");
        assert!(out.contains(r#""expires_in":"86399""#), "{out}");
        assert!(out.contains(r#""scope":"contacts""#), "{out}");
        assert!(out.contains(r#""access_token":"[redacted]""#), "{out}");
    }

    #[test]
    fn keys_match_in_any_case_and_cut_off_values_are_covered() {
        for text in [
            r#"{"Client_Secret": "cs-SECRET"}"#,
            r#"{"PASSWORD":"pw-SECRET"#,
            r#"{"x": {"Authorization" : "Bearer SECRET"}}"#,
            r#"{"refreshToken":"a\"SECRET"}"#,
            "grant_type=refresh_token&refresh_token=rt-SECRET&client_id=1",
            "client_secret=cs-SECRET",
            "authorization: Bearer SECRET",
            "header was Bearer SECRET-1",
            r#"{\"access_token\":\"SECRET\"}"#,
        ] {
            let out = redact(text);
            assert!(!out.contains("SECRET"), "{text} -> {out}");
        }
    }

    #[test]
    fn ordinary_text_is_unchanged() {
        for text in [
            "The given data was invalid.",
            r#"{"message":"title is required","traceId":"t-1"}"#,
            "grant_type=refresh_token&user_type=Location",
            "tokens are fine as a word",
        ] {
            assert_eq!(redact(text), text);
        }
    }
}

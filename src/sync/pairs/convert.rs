//! Values of mapped contact fields: one common form ([`Value`]) for both sides, read from and
//! written to each side by the field's [`Kind`].
//!
//! GHL fields are typed (`dataType`, ghl-api.md §7): a number is a JSON number, options are a
//! string (single) or an array of strings (multiple, checkbox). Trengo custom fields hold text
//! (only `TEXT` was observed, trengo-api.md §7), so the Trengo side is parsed by the GHL
//! field's kind. A value the other side cannot hold (an option it does not offer, a number that
//! is not one) is a [`ConvertError`] naming the value, never a truncation.

use std::collections::BTreeSet;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

/// A mapped field's value, as both sides compare it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Value {
    /// No value (empty text, no option, null).
    Empty,
    /// Text, trimmed.
    Text(String),
    /// A number in its shortest form (`12.5`, `3`).
    Number(String),
    /// A date.
    Date(NaiveDate),
    /// Options, as the GHL field spells them; one for a single-option field.
    Options(BTreeSet<String>),
}

impl Value {
    /// The value as a person reads it (the ledger, `plan`, messages).
    pub fn display(&self) -> String {
        match self {
            Value::Empty => String::new(),
            Value::Text(t) | Value::Number(t) => t.clone(),
            Value::Date(d) => d.format("%Y-%m-%d").to_string(),
            Value::Options(o) => o.iter().cloned().collect::<Vec<_>>().join(", "),
        }
    }

    /// Whether the value is empty.
    pub fn is_empty(&self) -> bool {
        matches!(self, Value::Empty)
    }
}

/// A field's type, from the GHL catalogue (GHL standard fields are text, but `date_of_birth`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// Free text (`TEXT`, `LARGE_TEXT`, `PHONE`, `EMAIL`, standard fields).
    Text,
    /// A number (`NUMERICAL`, `MONETORY`).
    Number,
    /// A date (`DATE`, `date_of_birth`).
    Date,
    /// Options (`SINGLE_OPTIONS`, `RADIO`: one; `MULTIPLE_OPTIONS`, `CHECKBOX`: several),
    /// limited to `allowed` when the catalogue lists any.
    Options {
        /// More than one may be chosen.
        multiple: bool,
        /// The options the field offers.
        allowed: Vec<String>,
    },
}

impl Kind {
    /// The kind of a GHL `dataType`; `None` for types the map cannot carry (`FILE_UPLOAD`,
    /// signatures).
    pub fn of_ghl(data_type: &str, options: &[String]) -> Option<Kind> {
        let allowed = options.to_vec();
        Some(match data_type.trim().to_ascii_uppercase().as_str() {
            "TEXT" | "LARGE_TEXT" | "PHONE" | "EMAIL" | "TEXTBOX_LIST" | "" => Kind::Text,
            "NUMERICAL" | "MONETORY" | "MONETARY" | "NUMBER" => Kind::Number,
            "DATE" => Kind::Date,
            "SINGLE_OPTIONS" | "RADIO" | "DROPDOWN" => Kind::Options {
                multiple: false,
                allowed,
            },
            "MULTIPLE_OPTIONS" | "CHECKBOX" => Kind::Options {
                multiple: true,
                allowed,
            },
            _ => return None,
        })
    }
}

/// A value one side holds that the field's kind cannot read, or a value the other side
/// cannot hold. The message names the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConvertError(pub String);

/// Reads a GHL value (`value`/`fieldValue` of a custom field, or a standard field).
pub fn from_ghl(kind: &Kind, value: &serde_json::Value) -> Result<Value, ConvertError> {
    use serde_json::Value as J;
    match value {
        J::Null => Ok(Value::Empty),
        J::String(s) => from_text(kind, s),
        J::Number(n) => match kind {
            Kind::Number => number(&n.to_string()),
            // GHL has been seen to keep dates as epoch milliseconds.
            Kind::Date => n
                .as_i64()
                .and_then(chrono::DateTime::from_timestamp_millis)
                .map(|t| Value::Date(t.date_naive()))
                .ok_or_else(|| ConvertError(format!("`{n}` is not a date"))),
            _ => from_text(kind, &n.to_string()),
        },
        J::Bool(b) => from_text(kind, if *b { "Yes" } else { "" }),
        J::Array(items) => {
            let mut texts = Vec::new();
            for item in items {
                match item {
                    J::String(s) => texts.push(s.clone()),
                    J::Number(n) => texts.push(n.to_string()),
                    other => {
                        return Err(ConvertError(format!(
                            "`{other}` is not an option (expected text)"
                        )));
                    }
                }
            }
            match kind {
                Kind::Options { .. } => options(kind, texts.iter().map(String::as_str)),
                _ => from_text(kind, &texts.join(", ")),
            }
        }
        J::Object(_) => Err(ConvertError(format!(
            "`{value}` is an object (a file upload?): the map carries text, numbers, dates and options"
        ))),
    }
}

/// Reads text (a Trengo field, or a GHL string) as the field's kind.
pub fn from_text(kind: &Kind, text: &str) -> Result<Value, ConvertError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(Value::Empty);
    }
    match kind {
        Kind::Text => Ok(Value::Text(text.to_string())),
        Kind::Number => number(text),
        Kind::Date => date(text),
        Kind::Options { multiple, .. } => {
            if *multiple {
                options(kind, text.split([',', ';']))
            } else {
                options(kind, std::iter::once(text))
            }
        }
    }
}

fn number(text: &str) -> Result<Value, ConvertError> {
    let cleaned: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    match cleaned.parse::<f64>() {
        Ok(n) if n.is_finite() && n.abs() < 9.0e15 => Ok(Value::Number(format!("{n}"))),
        _ => Err(ConvertError(format!(
            "`{text}` is not a number (write it with a dot for decimals, e.g. 12.5)"
        ))),
    }
}

fn date(text: &str) -> Result<Value, ConvertError> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(Value::Date(t.date_naive()));
    }
    let head = text.get(..10).unwrap_or(text);
    for format in ["%Y-%m-%d", "%d-%m-%Y", "%d/%m/%Y", "%d.%m.%Y"] {
        if let Ok(d) = NaiveDate::parse_from_str(head, format) {
            return Ok(Value::Date(d));
        }
    }
    Err(ConvertError(format!(
        "`{text}` is not a date (write YYYY-MM-DD, or DD-MM-YYYY with the day first)"
    )))
}

fn options<'a>(kind: &Kind, given: impl Iterator<Item = &'a str>) -> Result<Value, ConvertError> {
    let Kind::Options { multiple, allowed } = kind else {
        return Err(ConvertError("not an options field".into()));
    };
    let mut chosen = BTreeSet::new();
    for option in given.map(str::trim).filter(|o| !o.is_empty()) {
        let spelled = if allowed.is_empty() {
            option.to_string()
        } else {
            allowed
                .iter()
                .find(|a| a.trim().eq_ignore_ascii_case(option))
                .cloned()
                .ok_or_else(|| {
                    ConvertError(format!(
                        "`{option}` is not an option of this field (it offers {})",
                        allowed.join(", ")
                    ))
                })?
        };
        chosen.insert(spelled);
    }
    if !multiple && chosen.len() > 1 {
        return Err(ConvertError(format!(
            "`{}` names {} options, and this field holds one",
            chosen.iter().cloned().collect::<Vec<_>>().join(", "),
            chosen.len()
        )));
    }
    Ok(if chosen.is_empty() {
        Value::Empty
    } else {
        Value::Options(chosen)
    })
}

/// Checks that a field of `kind` can hold `value` (an option it offers, one option for a
/// single-option field).
pub fn check(kind: &Kind, value: &Value) -> Result<(), ConvertError> {
    match (kind, value) {
        (_, Value::Empty) => Ok(()),
        (Kind::Options { .. }, Value::Options(o)) => {
            options(kind, o.iter().map(String::as_str)).map(|_| ())
        }
        (Kind::Text, _) => Ok(()),
        (Kind::Number, Value::Number(_)) | (Kind::Date, Value::Date(_)) => Ok(()),
        (kind, value) => from_text(kind, &value.display()).map(|_| ()),
    }
}

/// The `field_value` a GHL write sends (ghl-api.md §7: a string for text and single options, a
/// number for numbers, an array of strings for multiple options and checkboxes).
pub fn to_ghl(kind: &Kind, value: &Value) -> Result<serde_json::Value, ConvertError> {
    use serde_json::json;
    check(kind, value)?;
    Ok(match (kind, value) {
        (Kind::Options { multiple: true, .. }, Value::Empty) => json!([]),
        (_, Value::Empty) => json!(""),
        (Kind::Number, Value::Number(n)) => n
            .parse::<i64>()
            .map(|i| json!(i))
            .or_else(|_| n.parse::<f64>().map(|f| json!(f)))
            .map_err(|_| ConvertError(format!("`{n}` is not a number")))?,
        (Kind::Options { multiple: true, .. }, Value::Options(o)) => json!(o),
        (_, v) => json!(v.display()),
    })
}

/// The text a Trengo field is set to. A Trengo dropdown (`items`) must offer it.
pub fn to_trengo(value: &Value, items: Option<&[String]>) -> Result<String, ConvertError> {
    let text = value.display();
    if let Some(items) = items.filter(|i| !i.is_empty())
        && !text.is_empty()
        && !items.iter().any(|i| i.trim().eq_ignore_ascii_case(&text))
    {
        return Err(ConvertError(format!(
            "`{text}` is not an option of the Trengo field (it offers {})",
            items.join(", ")
        )));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn tiers() -> Kind {
        Kind::Options {
            multiple: false,
            allowed: vec!["Basic".into(), "Pro".into(), "Enterprise".into()],
        }
    }

    #[test]
    fn numbers_read_the_same_from_json_and_from_text() {
        assert_eq!(
            from_ghl(&Kind::Number, &json!(12.50)).unwrap(),
            Value::Number("12.5".into())
        );
        assert_eq!(
            from_text(&Kind::Number, " 12.50 ").unwrap(),
            Value::Number("12.5".into())
        );
        assert_eq!(
            from_ghl(&Kind::Number, &json!("3")).unwrap(),
            Value::Number("3".into())
        );
        assert_eq!(
            to_ghl(&Kind::Number, &Value::Number("3".into())).unwrap(),
            json!(3)
        );
        assert!(
            from_text(&Kind::Number, "twelve")
                .unwrap_err()
                .0
                .contains("`twelve`")
        );
    }

    #[test]
    fn dates_accept_iso_and_day_first_forms() {
        let d = Value::Date(NaiveDate::from_ymd_opt(2026, 12, 24).unwrap());
        for text in [
            "2026-12-24",
            "24-12-2026",
            "24/12/2026",
            "2026-12-24T00:00:00Z",
        ] {
            assert_eq!(from_text(&Kind::Date, text).unwrap(), d, "{text}");
        }
        assert_eq!(to_ghl(&Kind::Date, &d).unwrap(), json!("2026-12-24"));
        assert!(from_text(&Kind::Date, "next week").is_err());
    }

    #[test]
    fn an_option_the_field_does_not_offer_is_an_error_naming_it() {
        assert_eq!(
            from_text(&tiers(), "pro").unwrap(),
            Value::Options(["Pro".to_string()].into())
        );
        let err = from_text(&tiers(), "Gold").unwrap_err();
        assert!(
            err.0.contains("`Gold`") && err.0.contains("Basic, Pro, Enterprise"),
            "{err}"
        );
        let gold = Value::Options(["Gold".to_string()].into());
        assert!(to_ghl(&tiers(), &gold).is_err());
    }

    #[test]
    fn checkboxes_are_several_options_sent_as_an_array() {
        let kind = Kind::of_ghl("CHECKBOX", &["Yes".into()]).unwrap();
        let yes = from_ghl(&kind, &json!(["Yes"])).unwrap();
        assert_eq!(to_trengo(&yes, None).unwrap(), "Yes");
        assert_eq!(to_ghl(&kind, &yes).unwrap(), json!(["Yes"]));
        assert_eq!(to_ghl(&kind, &Value::Empty).unwrap(), json!([]));
        assert_eq!(from_text(&kind, "").unwrap(), Value::Empty);
    }

    #[test]
    fn a_trengo_dropdown_refuses_a_value_it_does_not_offer() {
        let items = vec!["Basic".to_string(), "Pro".to_string()];
        let v = Value::Options(["Enterprise".to_string()].into());
        assert!(
            to_trengo(&v, Some(&items))
                .unwrap_err()
                .0
                .contains("`Enterprise`")
        );
        assert_eq!(
            to_trengo(&Value::Text("Pro".into()), Some(&items)).unwrap(),
            "Pro"
        );
    }

    #[test]
    fn file_uploads_are_not_carried() {
        assert_eq!(Kind::of_ghl("FILE_UPLOAD", &[]), None);
        assert!(from_ghl(&Kind::Text, &json!({"a": 1})).is_err());
    }
}

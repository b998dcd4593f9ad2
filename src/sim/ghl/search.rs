//! `POST /contacts/search`: validation, filters, sort and both paging modes, as a pure
//! function over the (lagged) contacts the index shows.
//!
//! Behaviour per ghl-api.md §3.2 \[S17, obs\]: `locationId` and `pageLimit` (≤ 500) required,
//! else 422 with a message array (#31); filters `{field, operator, value}` ANDed, groups
//! `{group: AND|OR, filters}`; unknown field → 400 `Invalid field X` (#170); sort on
//! `dateUpdated`/`dateAdded`; cursor paging with each hit's `searchAfter` = `[sort value ms,
//! id]`; offset paging with `page` capped at the first 10 000 records.

use std::cmp::Ordering;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::error::GhlError;
use super::model::Contact;
use super::options::GhlSwitches;

/// Most hits one page may ask for.
const MAX_PAGE_LIMIT: u64 = 500;
/// How deep offset paging reaches (ghl-api.md §3.2 \[S17\]).
const OFFSET_WINDOW: u64 = 10_000;
/// Longest `query` and filter string (ghl-api.md §3.2).
const MAX_TEXT: usize = 75;

/// Fields the fake can filter on; anything else is `Invalid field`.
const FIELDS: &[&str] = &[
    "id",
    "email",
    "phone",
    "firstNameLowerCase",
    "lastNameLowerCase",
    "tags",
    "dateAdded",
    "dateUpdated",
    "assignedTo",
    "companyName",
    "source",
    "type",
    "dnd",
];

/// One answered search page.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchPage {
    /// The hits, in search-hit shape with their `searchAfter`.
    pub contacts: Vec<Value>,
    /// All matches, across pages.
    pub total: usize,
}

impl SearchPage {
    /// The response body `{contacts, total}` (`SearchContactSuccessResponseDto`).
    pub fn to_json(&self) -> Value {
        json!({ "contacts": self.contacts, "total": self.total })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SortField {
    DateAdded,
    DateUpdated,
}

#[derive(Debug)]
enum Filter {
    Leaf {
        field: String,
        operator: String,
        value: Value,
    },
    Group {
        any: bool,
        filters: Vec<Filter>,
    },
}

/// Checks the location named in a search body, before anything else is looked at.
pub fn location_of(body: &Value) -> Option<&str> {
    body.get("locationId").and_then(Value::as_str)
}

/// Runs one search over `contacts` (what the index shows right now).
pub fn search(
    contacts: &[&Contact],
    body: &Value,
    switches: &GhlSwitches,
) -> Result<SearchPage, GhlError> {
    let page_limit = validate(body)?;
    let filters = match body.get("filters") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items.iter().map(parse_filter).collect::<Result<_, _>>()?,
        Some(_) => {
            return Err(GhlError::unprocessable(vec![
                "filters must be an array".into(),
            ]));
        }
    };
    let (sort_field, descending) = parse_sort(body.get("sort"))?;
    let query = body
        .get("query")
        .and_then(Value::as_str)
        .map(str::to_lowercase);

    let mut matches = Vec::new();
    for contact in contacts {
        if let Some(query) = &query
            && !matches_query(contact, query)
        {
            continue;
        }
        let mut keep = true;
        for filter in &filters {
            if !evaluate(filter, contact, switches)? {
                keep = false;
                break;
            }
        }
        if keep {
            matches.push(*contact);
        }
    }
    let key = |c: &Contact| (sort_value(c, sort_field), c.id.clone());
    matches.sort_by(|a, b| {
        let order = key(a).cmp(&key(b));
        if descending { order.reverse() } else { order }
    });
    let total = matches.len();

    let page: Vec<&Contact> = match (body.get("searchAfter"), body.get("page")) {
        (Some(after), page) if !after.is_null() => {
            if page.is_some_and(|p| !p.is_null()) {
                return Err(GhlError::bad_request(
                    "page and searchAfter cannot be used together",
                ));
            }
            let cursor = parse_cursor(after)?;
            matches
                .into_iter()
                .filter(|c| {
                    let order = key(c).cmp(&cursor);
                    let order = if descending { order.reverse() } else { order };
                    order == Ordering::Greater
                })
                .take(page_limit as usize)
                .collect()
        }
        (_, page) => {
            let page = match page {
                None | Some(Value::Null) => 1,
                Some(p) => p.as_u64().filter(|p| *p >= 1).ok_or_else(|| {
                    GhlError::unprocessable(vec!["page must not be less than 1".into()])
                })?,
            };
            let start = (page - 1).saturating_mul(page_limit);
            if start.saturating_add(page_limit) > OFFSET_WINDOW {
                return Err(GhlError::bad_request(format!(
                    "page {page} with pageLimit {page_limit} reaches past the first {OFFSET_WINDOW} records; page with searchAfter instead"
                )));
            }
            matches
                .into_iter()
                .skip(start as usize)
                .take(page_limit as usize)
                .collect()
        }
    };
    let contacts = page
        .into_iter()
        .map(|c| {
            let ms = sort_value(c, sort_field);
            let sort = if switches.search_after_numeric {
                json!(ms)
            } else {
                json!(ms.to_string())
            };
            c.to_search_hit(json!([sort, c.id]))
        })
        .collect();
    Ok(SearchPage { contacts, total })
}

/// The required-field checks GHL's validation layer makes; returns `pageLimit`.
fn validate(body: &Value) -> Result<u64, GhlError> {
    let mut messages = Vec::new();
    match body.get("locationId") {
        Some(Value::String(s)) if !s.is_empty() => {}
        Some(Value::String(_)) => messages.push("locationId should not be empty".to_owned()),
        _ => {
            messages.push("locationId should not be empty".to_owned());
            messages.push("locationId must be a string".to_owned());
        }
    }
    let page_limit = match body.get("pageLimit") {
        Some(v) if v.is_number() => match v.as_u64() {
            Some(n) if n < 1 => {
                messages.push("pageLimit must not be less than 1".to_owned());
                0
            }
            Some(n) if n > MAX_PAGE_LIMIT => {
                messages.push(format!(
                    "pageLimit must not be greater than {MAX_PAGE_LIMIT}"
                ));
                0
            }
            Some(n) => n,
            None => {
                messages.push("pageLimit must not be less than 1".to_owned());
                0
            }
        },
        _ => {
            messages.push("pageLimit must not be less than 1".to_owned());
            messages.push(
                "pageLimit must be a number conforming to the specified constraints".to_owned(),
            );
            0
        }
    };
    if let Some(query) = body.get("query") {
        match query.as_str() {
            Some(q) if q.chars().count() > MAX_TEXT => messages.push(format!(
                "query must be shorter than or equal to {MAX_TEXT} characters"
            )),
            Some(_) => {}
            None if query.is_null() => {}
            None => messages.push("query must be a string".to_owned()),
        }
    }
    if messages.is_empty() {
        Ok(page_limit)
    } else {
        Err(GhlError::unprocessable(messages))
    }
}

fn parse_filter(value: &Value) -> Result<Filter, GhlError> {
    if let Some(group) = value.get("group") {
        let any = match group.as_str().map(str::to_ascii_uppercase).as_deref() {
            Some("OR") => true,
            Some("AND") => false,
            _ => return Err(GhlError::bad_request(format!("Invalid group {group}"))),
        };
        let filters = value
            .get("filters")
            .and_then(Value::as_array)
            .ok_or_else(|| GhlError::bad_request("A filter group needs a filters array"))?
            .iter()
            .map(parse_filter)
            .collect::<Result<_, _>>()?;
        return Ok(Filter::Group { any, filters });
    }
    let field = value
        .get("field")
        .and_then(Value::as_str)
        .ok_or_else(|| GhlError::bad_request("Invalid field undefined"))?;
    if !FIELDS.contains(&field) {
        return Err(GhlError::bad_request(format!("Invalid field {field}")));
    }
    let operator = value
        .get("operator")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let known = [
        "eq",
        "not_eq",
        "contains",
        "not_contains",
        "exists",
        "not_exists",
        "range",
    ];
    if !known.contains(&operator) {
        return Err(GhlError::bad_request(format!(
            "Invalid operator {operator} for field {field}"
        )));
    }
    let value = value.get("value").cloned().unwrap_or(Value::Null);
    if let Some(text) = value.as_str()
        && text.chars().count() > MAX_TEXT
    {
        return Err(GhlError::bad_request(format!(
            "Filter value for {field} is longer than {MAX_TEXT} characters"
        )));
    }
    Ok(Filter::Leaf {
        field: field.to_owned(),
        operator: operator.to_owned(),
        value,
    })
}

fn parse_sort(sort: Option<&Value>) -> Result<(SortField, bool), GhlError> {
    // Without a sort, newest-added first.
    let Some(first) = sort.and_then(Value::as_array).and_then(|s| s.first()) else {
        return Ok((SortField::DateAdded, true));
    };
    let field = match first.get("field").and_then(Value::as_str) {
        Some("dateAdded") => SortField::DateAdded,
        Some("dateUpdated") => SortField::DateUpdated,
        other => {
            return Err(GhlError::bad_request(format!(
                "Invalid sort field {}",
                other.unwrap_or("undefined")
            )));
        }
    };
    let descending = match first.get("direction").and_then(Value::as_str) {
        None | Some("desc") => true,
        Some("asc") => false,
        Some(other) => {
            return Err(GhlError::bad_request(format!(
                "Invalid sort direction {other}"
            )));
        }
    };
    Ok((field, descending))
}

fn parse_cursor(after: &Value) -> Result<(i64, String), GhlError> {
    let invalid = || GhlError::bad_request(format!("Invalid searchAfter {after}"));
    let items = after
        .as_array()
        .filter(|a| a.len() == 2)
        .ok_or_else(invalid)?;
    let sort = match &items[0] {
        Value::Number(n) => n.as_i64().ok_or_else(invalid)?,
        Value::String(s) => s.parse::<i64>().map_err(|_| invalid())?,
        _ => return Err(invalid()),
    };
    let id = items[1].as_str().ok_or_else(invalid)?.to_owned();
    Ok((sort, id))
}

fn sort_value(contact: &Contact, field: SortField) -> i64 {
    match field {
        SortField::DateAdded => contact.date_added.timestamp_millis(),
        SortField::DateUpdated => contact.date_updated.timestamp_millis(),
    }
}

fn matches_query(contact: &Contact, query: &str) -> bool {
    let haystacks = [
        Some(contact.full_name()),
        contact.email.clone(),
        contact.phone.clone(),
        contact.company_name.clone(),
    ];
    haystacks
        .into_iter()
        .flatten()
        .any(|h| h.to_lowercase().contains(query))
}

enum FieldValue {
    Texts(Vec<String>),
    Date(DateTime<Utc>),
    Bool(bool),
}

fn field_value(contact: &Contact, field: &str) -> FieldValue {
    let text = |v: &Option<String>| FieldValue::Texts(v.iter().cloned().collect());
    match field {
        "id" => FieldValue::Texts(vec![contact.id.clone()]),
        "email" => text(&contact.email),
        "phone" => text(&contact.phone),
        "firstNameLowerCase" => text(&contact.first_name.as_ref().map(|s| s.to_lowercase())),
        "lastNameLowerCase" => text(&contact.last_name.as_ref().map(|s| s.to_lowercase())),
        "tags" => FieldValue::Texts(contact.tags.clone()),
        "dateAdded" => FieldValue::Date(contact.date_added),
        "dateUpdated" => FieldValue::Date(contact.date_updated),
        "assignedTo" => text(&contact.assigned_to),
        "companyName" => text(&contact.company_name),
        "source" => text(&contact.source),
        "type" => FieldValue::Texts(vec![contact.kind.clone()]),
        _ => FieldValue::Bool(contact.dnd),
    }
}

fn evaluate(filter: &Filter, contact: &Contact, switches: &GhlSwitches) -> Result<bool, GhlError> {
    let (field, operator, value) = match filter {
        Filter::Group { any, filters } => {
            let mut results = Vec::with_capacity(filters.len());
            for f in filters {
                results.push(evaluate(f, contact, switches)?);
            }
            return Ok(if *any {
                results.iter().any(|r| *r)
            } else {
                results.iter().all(|r| *r)
            });
        }
        Filter::Leaf {
            field,
            operator,
            value,
        } => (field.as_str(), operator.as_str(), value),
    };
    let unsupported =
        || GhlError::bad_request(format!("Operator {operator} is not supported for {field}"));
    let actual = field_value(contact, field);
    match (operator, &actual) {
        ("exists" | "not_exists", _) => {
            let present = match &actual {
                FieldValue::Texts(t) => t.iter().any(|s| !s.is_empty()),
                FieldValue::Date(_) | FieldValue::Bool(_) => true,
            };
            Ok(present == (operator == "exists"))
        }
        ("eq" | "not_eq", FieldValue::Texts(texts)) => {
            let wanted: Vec<String> = match value {
                Value::String(s) => vec![s.to_lowercase()],
                Value::Array(items) => items
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_lowercase)
                    .collect(),
                _ => return Err(unsupported()),
            };
            let hit = texts.iter().any(|t| wanted.contains(&t.to_lowercase()));
            Ok(hit == (operator == "eq"))
        }
        ("eq" | "not_eq", FieldValue::Bool(b)) => {
            let wanted = value.as_bool().ok_or_else(unsupported)?;
            Ok((*b == wanted) == (operator == "eq"))
        }
        ("contains" | "not_contains", FieldValue::Texts(texts)) => {
            let wanted = value.as_str().ok_or_else(unsupported)?.to_lowercase();
            let hit = texts.iter().any(|t| t.to_lowercase().contains(&wanted));
            Ok(hit == (operator == "contains"))
        }
        ("range", FieldValue::Date(at)) => {
            let bounds = value.as_object().ok_or_else(unsupported)?;
            let mut inside = true;
            for (op, bound) in bounds {
                let bound = parse_date_bound(field, bound, switches)?;
                inside &= match op.as_str() {
                    "gt" => *at > bound,
                    "gte" => *at >= bound,
                    "lt" => *at < bound,
                    "lte" => *at <= bound,
                    other => {
                        return Err(GhlError::bad_request(format!(
                            "Invalid range operator {other} for {field}"
                        )));
                    }
                };
            }
            Ok(inside)
        }
        ("eq" | "not_eq", FieldValue::Date(at)) => {
            let bound = parse_date_bound(field, value, switches)?;
            Ok((*at == bound) == (operator == "eq"))
        }
        _ => Err(unsupported()),
    }
}

fn parse_date_bound(
    field: &str,
    bound: &Value,
    switches: &GhlSwitches,
) -> Result<DateTime<Utc>, GhlError> {
    let parsed = match bound {
        Value::String(s) => DateTime::parse_from_rfc3339(s)
            .ok()
            .map(|d| d.with_timezone(&Utc)),
        Value::Number(n) if switches.range_accepts_epoch_ms => {
            n.as_i64().and_then(DateTime::from_timestamp_millis)
        }
        _ => None,
    };
    parsed.ok_or_else(|| {
        GhlError::bad_request(format!(
            "Invalid date {bound} for {field}: send an ISO 8601 string such as 2025-07-05T09:00:00.000Z"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contact(id: &str, updated_ms: i64) -> Contact {
        let at = DateTime::from_timestamp_millis(updated_ms).unwrap();
        Contact {
            first_name: Some("Ada".into()),
            email: Some(format!("{id}@example.com")),
            tags: vec!["vip".into()],
            ..Contact::blank(id.into(), "loc".into(), at)
        }
    }

    #[test]
    fn missing_location_and_page_limit_give_a_message_array() {
        let err = search(&[], &json!({}), &GhlSwitches::default()).unwrap_err();
        assert_eq!(err.status.as_u16(), 422);
        assert!(err.message.as_array().unwrap().len() >= 2);
    }

    #[test]
    fn equal_sort_values_page_by_id_without_loss() {
        let all: Vec<Contact> = (0..7).map(|i| contact(&format!("c{i}"), 1000)).collect();
        let refs: Vec<&Contact> = all.iter().collect();
        let switches = GhlSwitches::default();
        let mut seen = Vec::new();
        let mut after = Value::Null;
        loop {
            let body = json!({"locationId": "loc", "pageLimit": 3, "searchAfter": after,
                              "sort": [{"field": "dateUpdated", "direction": "asc"}]});
            let page = search(&refs, &body, &switches).unwrap();
            if page.contacts.is_empty() {
                break;
            }
            after = page.contacts.last().unwrap()["searchAfter"].clone();
            seen.extend(
                page.contacts
                    .iter()
                    .map(|c| c["id"].as_str().unwrap().to_owned()),
            );
        }
        assert_eq!(seen.len(), 7);
    }

    #[test]
    fn epoch_ms_range_is_refused_unless_switched_on() {
        let all = [contact("a", 5000)];
        let refs: Vec<&Contact> = all.iter().collect();
        let body = json!({"locationId": "loc", "pageLimit": 10,
            "filters": [{"field": "dateUpdated", "operator": "range", "value": {"gte": 1000}}]});
        assert!(search(&refs, &body, &GhlSwitches::default()).is_err());
        let lenient = GhlSwitches {
            range_accepts_epoch_ms: true,
            ..GhlSwitches::default()
        };
        assert_eq!(search(&refs, &body, &lenient).unwrap().total, 1);
    }
}

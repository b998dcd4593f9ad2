//! The `[contacts]` field map resolved against both accounts' field catalogues: each entry's
//! GHL side (a standard field, or a custom field found by key, id or name) and Trengo side (the
//! contact's name, or a custom field found by title or id, which says whether it lives on the
//! contact, the profile or the ticket), and the kind its values convert by.
//!
//! `check` and every command that syncs resolve the map before anything else; an entry that
//! does not resolve is a [`MapProblem`] naming its key (exit 78, like any configuration error).

use crate::config::{ContactsConfig, ContextConfig, FieldEntry, WelcomeConfig};
use crate::ghl;
use crate::sync::model::Tag;
use crate::sync::policy::{Direction, Policy};
use crate::trengo;

use super::convert::Kind;

/// A GHL standard contact field the map can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standard {
    /// `name`.
    Name,
    /// `firstName`.
    FirstName,
    /// `lastName`.
    LastName,
    /// `email`.
    Email,
    /// `phone`.
    Phone,
    /// `companyName`.
    CompanyName,
    /// `address1`.
    Address1,
    /// `city`.
    City,
    /// `state`.
    State,
    /// `postalCode`.
    PostalCode,
    /// `country`.
    Country,
    /// `website`.
    Website,
    /// `dateOfBirth`.
    DateOfBirth,
    /// `source`.
    Source,
    /// `assignedTo`, shown and written as the user's e-mail.
    AssignedTo,
}

impl Standard {
    /// The standard field a config name (`first_name`, also `firstName`) stands for.
    pub fn parse(name: &str) -> Option<Standard> {
        let folded: String = name
            .trim()
            .chars()
            .filter(|c| *c != '_')
            .collect::<String>()
            .to_ascii_lowercase();
        Some(match folded.as_str() {
            "name" | "fullname" => Standard::Name,
            "firstname" => Standard::FirstName,
            "lastname" => Standard::LastName,
            "email" => Standard::Email,
            "phone" => Standard::Phone,
            "companyname" | "company" => Standard::CompanyName,
            "address1" | "address" => Standard::Address1,
            "city" => Standard::City,
            "state" => Standard::State,
            "postalcode" => Standard::PostalCode,
            "country" => Standard::Country,
            "website" => Standard::Website,
            "dateofbirth" => Standard::DateOfBirth,
            "source" => Standard::Source,
            "assignedto" => Standard::AssignedTo,
            _ => return None,
        })
    }

    /// Its config name (`first_name`), which `parse` reads back.
    pub fn name(self) -> &'static str {
        match self {
            Standard::Name => "name",
            Standard::FirstName => "first_name",
            Standard::LastName => "last_name",
            Standard::Email => "email",
            Standard::Phone => "phone",
            Standard::CompanyName => "company_name",
            Standard::Address1 => "address1",
            Standard::City => "city",
            Standard::State => "state",
            Standard::PostalCode => "postal_code",
            Standard::Country => "country",
            Standard::Website => "website",
            Standard::DateOfBirth => "date_of_birth",
            Standard::Source => "source",
            Standard::AssignedTo => "assigned_to",
        }
    }

    /// The kind of its values.
    pub fn kind(self) -> Kind {
        match self {
            Standard::DateOfBirth => Kind::Date,
            _ => Kind::Text,
        }
    }
}

/// Where a mapped value lives in GHL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GhlSlot {
    /// A standard contact field.
    Standard(Standard),
    /// A custom field (written by id: the spec's update schemas require it, ghl-api.md §7).
    Custom {
        /// Field id.
        id: String,
        /// Field key (`contact.customer_number`), for messages.
        key: String,
    },
}

/// Where a mapped value lives in Trengo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrengoSlot {
    /// The contact's name (`PUT /contacts/{id}`).
    Name,
    /// A `CONTACT` custom field.
    Contact(i64),
    /// A `PROFILE` custom field, on the contact's first profile.
    Profile(i64),
    /// A `TICKET` custom field: read from the contact's most recently updated linked ticket,
    /// so it flows Trengo → GHL only.
    Ticket(i64),
}

/// One resolved map entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Mapped {
    /// Its name in bases, the ledger and messages (`ghl ⇄ trengo` as configured).
    pub name: String,
    /// The GHL side.
    pub ghl: GhlSlot,
    /// The Trengo side.
    pub trengo: TrengoSlot,
    /// The Trengo dropdown's options, when it has any.
    pub trengo_items: Option<Vec<String>>,
    /// How values convert.
    pub kind: Kind,
    /// Which way values flow.
    pub direction: Direction,
    /// Who wins a conflict.
    pub policy: Policy,
}

/// Computed context fields (Trengo `CONTACT` custom field ids).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContextFields {
    /// The GHL contact's web link.
    pub web_link: Option<i64>,
    /// The web link's template.
    pub web_link_template: String,
    /// The next appointment.
    pub next_appointment: Option<i64>,
    /// Open tasks and the next due.
    pub open_tasks: Option<i64>,
    /// Managed tags.
    pub tags: Option<i64>,
}

impl ContextFields {
    /// Whether any context is computed.
    pub fn any(&self) -> bool {
        self.web_link.is_some()
            || self.next_appointment.is_some()
            || self.open_tasks.is_some()
            || self.tags.is_some()
    }
}

/// The linked task's details in Trengo `TICKET` custom fields.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskFields {
    /// The due date (both ways).
    pub due: Option<i64>,
    /// The title (GHL → Trengo).
    pub title: Option<i64>,
}

/// The whole resolved `[contacts]` section.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldMap {
    /// The mapped fields.
    pub fields: Vec<Mapped>,
    /// Computed context.
    pub context: ContextFields,
    /// Task details.
    pub task: TaskFields,
    /// GHL contacts carrying it are paired before any ticket exists.
    pub tag: Option<Tag>,
    /// Where missing Trengo contacts are made.
    pub channel_id: Option<i64>,
    /// The welcome ticket.
    pub welcome: Option<WelcomeConfig>,
    /// Pairs the daemon's sweep reads per hour.
    pub sweep_pairs_per_hour: u32,
}

impl FieldMap {
    /// Whether a pair has anything to sync (fields or context).
    pub fn carries_pairs(&self) -> bool {
        !self.fields.is_empty() || self.context.any() || self.tag.is_some()
    }

    /// Whether a pair's values need its profile read.
    pub fn needs_profile(&self) -> bool {
        self.fields
            .iter()
            .any(|f| matches!(f.trengo, TrengoSlot::Profile(_)))
    }
}

/// One entry that does not resolve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapProblem {
    /// The configuration key (`contacts.fields[2].trengo`).
    pub key: String,
    /// What is wrong and what to do.
    pub message: String,
}

impl std::fmt::Display for MapProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

fn policy(p: crate::config::PolicyName) -> Policy {
    match p {
        crate::config::PolicyName::Newest => Policy::Newest,
        crate::config::PolicyName::Trengo => Policy::Trengo,
        crate::config::PolicyName::Ghl => Policy::Ghl,
        crate::config::PolicyName::Manual => Policy::Manual,
    }
}

fn direction(d: crate::config::Direction) -> Direction {
    match d {
        crate::config::Direction::Both => Direction::Both,
        crate::config::Direction::TrengoToGhl => Direction::TrengoToGhl,
        crate::config::Direction::GhlToTrengo => Direction::GhlToTrengo,
        crate::config::Direction::Off => Direction::Off,
    }
}

/// Finds a Trengo custom field by id or title (case-insensitive).
fn trengo_field<'a>(
    catalogue: &'a [trengo::CustomField],
    named: &str,
) -> Option<&'a trengo::CustomField> {
    let named = named.trim();
    if let Ok(id) = named.parse::<i64>()
        && let Some(f) = catalogue.iter().find(|f| f.id == id)
    {
        return Some(f);
    }
    catalogue.iter().find(|f| {
        f.title
            .as_deref()
            .is_some_and(|t| t.trim().eq_ignore_ascii_case(named))
    })
}

/// Finds a GHL custom field by key (with or without `contact.`), id or name.
fn ghl_field<'a>(catalogue: &'a [ghl::CustomField], named: &str) -> Option<&'a ghl::CustomField> {
    let named = named.trim();
    let bare = named.strip_prefix("contact.").unwrap_or(named);
    catalogue
        .iter()
        .find(|f| f.id == named)
        .or_else(|| {
            catalogue.iter().find(|f| {
                f.field_key.as_deref().is_some_and(|k| {
                    k.strip_prefix("contact.")
                        .unwrap_or(k)
                        .eq_ignore_ascii_case(bare)
                })
            })
        })
        .or_else(|| {
            catalogue.iter().find(|f| {
                f.name
                    .as_deref()
                    .is_some_and(|n| n.trim().eq_ignore_ascii_case(named))
            })
        })
}

fn titles(catalogue: &[trengo::CustomField], entity: &str) -> String {
    let names: Vec<&str> = catalogue
        .iter()
        .filter(|f| {
            f.entity
                .as_deref()
                .is_some_and(|e| e.eq_ignore_ascii_case(entity))
        })
        .filter_map(|f| f.title.as_deref())
        .collect();
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

/// A context or task field: a Trengo custom field of `entity` type named by `named`.
fn field_of(
    catalogue: &[trengo::CustomField],
    key: &str,
    named: Option<&String>,
    entity: &str,
    problems: &mut Vec<MapProblem>,
) -> Option<i64> {
    let named = named?;
    match trengo_field(catalogue, named) {
        Some(f)
            if f.entity
                .as_deref()
                .is_some_and(|e| e.eq_ignore_ascii_case(entity)) =>
        {
            Some(f.id)
        }
        Some(f) => {
            problems.push(MapProblem {
                key: key.into(),
                message: format!(
                    "Trengo field `{named}` is a {} field; this needs a {entity} field (Trengo has: {})",
                    f.entity.as_deref().unwrap_or("?"),
                    titles(catalogue, entity)
                ),
            });
            None
        }
        None => {
            problems.push(MapProblem {
                key: key.into(),
                message: format!(
                    "no Trengo custom field `{named}`: create a {entity} field of that title in \
                     Trengo (Settings → Custom fields), or name one it has ({})",
                    titles(catalogue, entity)
                ),
            });
            None
        }
    }
}

fn resolve_entry(
    i: usize,
    entry: &FieldEntry,
    ghl_catalogue: &[ghl::CustomField],
    trengo_catalogue: &[trengo::CustomField],
    problems: &mut Vec<MapProblem>,
) -> Option<Mapped> {
    let key = format!("contacts.fields[{i}]");
    let mut fail = |what: &str, message: String| {
        problems.push(MapProblem {
            key: format!("{key}.{what}"),
            message,
        })
    };
    let (ghl, kind) = match Standard::parse(&entry.ghl) {
        Some(s) => (GhlSlot::Standard(s), Some(s.kind())),
        None => match ghl_field(ghl_catalogue, &entry.ghl) {
            Some(f) => {
                let data_type = f.data_type.as_deref().unwrap_or("TEXT");
                let kind = Kind::of_ghl(data_type, &f.picklist_options);
                if kind.is_none() {
                    fail(
                        "ghl",
                        format!(
                            "GHL field `{}` is a {data_type} field: the map carries text, numbers, \
                             dates and options",
                            entry.ghl
                        ),
                    );
                }
                (
                    GhlSlot::Custom {
                        id: f.id.clone(),
                        key: f.field_key.clone().unwrap_or_else(|| f.id.clone()),
                    },
                    kind,
                )
            }
            None => {
                let keys: Vec<&str> = ghl_catalogue
                    .iter()
                    .filter_map(|f| f.field_key.as_deref())
                    .collect();
                fail(
                    "ghl",
                    format!(
                        "no GHL standard field or custom field `{}` in this location: name a \
                         standard field ({}) or a custom field key ({})",
                        entry.ghl,
                        crate::config::contacts::GHL_STANDARD_FIELDS.join(", "),
                        if keys.is_empty() {
                            "none".into()
                        } else {
                            keys.join(", ")
                        }
                    ),
                );
                return None;
            }
        },
    };
    let (trengo, items) = if entry.trengo.trim().eq_ignore_ascii_case("name") {
        (TrengoSlot::Name, None)
    } else {
        match trengo_field(trengo_catalogue, &entry.trengo) {
            Some(f) => {
                let slot = match f.entity.as_deref().map(str::to_ascii_uppercase).as_deref() {
                    Some("CONTACT") => TrengoSlot::Contact(f.id),
                    Some("PROFILE") => TrengoSlot::Profile(f.id),
                    Some("TICKET") => TrengoSlot::Ticket(f.id),
                    other => {
                        fail(
                            "trengo",
                            format!(
                                "Trengo field `{}` belongs to `{}`: expected a CONTACT, PROFILE or TICKET field",
                                entry.trengo,
                                other.unwrap_or("?")
                            ),
                        );
                        return None;
                    }
                };
                (slot, super::trengo_items(f))
            }
            None => {
                fail(
                    "trengo",
                    format!(
                        "no Trengo custom field `{}`: create it in Trengo (Settings → Custom fields) \
                         or name one it has (contact: {}; profile: {}; ticket: {}), or `name`",
                        entry.trengo,
                        titles(trengo_catalogue, "CONTACT"),
                        titles(trengo_catalogue, "PROFILE"),
                        titles(trengo_catalogue, "TICKET"),
                    ),
                );
                return None;
            }
        }
    };
    let direction = direction(entry.direction);
    if ghl == GhlSlot::Standard(Standard::CompanyName) && direction.writes_ghl() {
        fail(
            "direction",
            "GHL's contact update does not take `companyName` (UpdateContactDto has it on create \
             and upsert only), so the company can only flow GHL → Trengo; set direction = \
             \"ghl_to_trengo\""
                .into(),
        );
    }
    if let GhlSlot::Standard(s @ (Standard::Email | Standard::Phone)) = &ghl
        && direction.writes_ghl()
    {
        fail(
            "direction",
            format!(
                "GHL's `{}` identifies the contact (links and pairs are found by it), so it is \
                 matched on, never written; set direction = \"ghl_to_trengo\"",
                s.name()
            ),
        );
    }
    if matches!(trengo, TrengoSlot::Ticket(_)) && direction.writes_trengo() {
        fail(
            "direction",
            format!(
                "`{}` is a ticket field: a contact's value is read from its latest linked ticket, \
                 so it can only flow Trengo → GHL; set direction = \"trengo_to_ghl\"",
                entry.trengo
            ),
        );
    }
    Some(Mapped {
        name: entry.name(),
        ghl,
        trengo,
        trengo_items: items,
        kind: kind?,
        direction,
        policy: policy(entry.policy),
    })
}

/// Resolves `config` against the GHL location's and the Trengo account's custom fields.
pub fn resolve(
    config: &ContactsConfig,
    link_channel: Option<i64>,
    ghl_catalogue: &[ghl::CustomField],
    trengo_catalogue: &[trengo::CustomField],
) -> Result<FieldMap, Vec<MapProblem>> {
    let mut problems = Vec::new();
    let mut fields = Vec::new();
    for (i, entry) in config.fields.iter().enumerate() {
        if entry.direction == crate::config::Direction::Off {
            continue;
        }
        if let Some(m) = resolve_entry(i, entry, ghl_catalogue, trengo_catalogue, &mut problems) {
            fields.push(m);
        }
    }
    let c = &config.context;
    let context = ContextFields {
        web_link: field_of(
            trengo_catalogue,
            "contacts.context.web_link",
            c.web_link.as_ref(),
            "CONTACT",
            &mut problems,
        ),
        web_link_template: c
            .web_link_template
            .clone()
            .unwrap_or_else(|| ContextConfig::WEB_LINK_TEMPLATE.to_string()),
        next_appointment: field_of(
            trengo_catalogue,
            "contacts.context.next_appointment",
            c.next_appointment.as_ref(),
            "CONTACT",
            &mut problems,
        ),
        open_tasks: field_of(
            trengo_catalogue,
            "contacts.context.open_tasks",
            c.open_tasks.as_ref(),
            "CONTACT",
            &mut problems,
        ),
        tags: field_of(
            trengo_catalogue,
            "contacts.context.tags",
            c.tags.as_ref(),
            "CONTACT",
            &mut problems,
        ),
    };
    let task = TaskFields {
        due: field_of(
            trengo_catalogue,
            "contacts.task.due",
            config.task.due.as_ref(),
            "TICKET",
            &mut problems,
        ),
        title: field_of(
            trengo_catalogue,
            "contacts.task.title",
            config.task.title.as_ref(),
            "TICKET",
            &mut problems,
        ),
    };
    if !problems.is_empty() {
        return Err(problems);
    }
    let tag = config.tag.trim();
    Ok(FieldMap {
        fields,
        context,
        task,
        tag: (!tag.is_empty()).then(|| Tag::new(tag)),
        channel_id: config.channel_id.or(link_channel),
        welcome: config.welcome.clone(),
        sweep_pairs_per_hour: config.sweep_pairs_per_hour,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trengo_catalogue() -> Vec<trengo::CustomField> {
        serde_json::from_value(serde_json::json!([
            {"id": 1, "title": "Order number", "type": "TICKET", "field_type": "TEXT"},
            {"id": 2, "title": "Customer number", "type": "CONTACT", "field_type": "TEXT"},
            {"id": 3, "title": "Account manager", "type": "PROFILE", "field_type": "TEXT"},
        ]))
        .unwrap()
    }

    fn ghl_catalogue() -> Vec<ghl::CustomField> {
        serde_json::from_value(serde_json::json!([
            {"id": "f1", "name": "Customer number", "fieldKey": "contact.customer_number", "dataType": "TEXT"},
            {"id": "f2", "name": "Tier", "fieldKey": "contact.tier", "dataType": "SINGLE_OPTIONS",
             "picklistOptions": ["Basic", "Pro"]},
            {"id": "f3", "name": "Contract", "fieldKey": "contact.contract", "dataType": "FILE_UPLOAD"},
        ]))
        .unwrap()
    }

    fn entry(ghl: &str, trengo: &str) -> FieldEntry {
        FieldEntry {
            ghl: ghl.into(),
            trengo: trengo.into(),
            direction: crate::config::Direction::Both,
            policy: crate::config::PolicyName::Newest,
        }
    }

    fn config(fields: Vec<FieldEntry>) -> ContactsConfig {
        ContactsConfig {
            enabled: true,
            fields,
            ..ContactsConfig::default()
        }
    }

    #[test]
    fn keys_with_or_without_the_prefix_and_titles_in_any_case_resolve() {
        let map = resolve(
            &config(vec![
                entry("customer_number", "customer NUMBER"),
                entry("contact.tier", "3"),
                entry("first_name", "name"),
            ]),
            None,
            &ghl_catalogue(),
            &trengo_catalogue(),
        )
        .unwrap();
        assert_eq!(
            map.fields[0].ghl,
            GhlSlot::Custom {
                id: "f1".into(),
                key: "contact.customer_number".into()
            }
        );
        assert_eq!(map.fields[0].trengo, TrengoSlot::Contact(2));
        assert_eq!(map.fields[1].trengo, TrengoSlot::Profile(3));
        assert!(matches!(
            map.fields[1].kind,
            Kind::Options {
                multiple: false,
                ..
            }
        ));
        assert_eq!(map.fields[2].ghl, GhlSlot::Standard(Standard::FirstName));
        assert_eq!(map.fields[2].trengo, TrengoSlot::Name);
    }

    #[test]
    fn an_unknown_field_is_a_problem_naming_the_key_and_what_exists() {
        let problems = resolve(
            &config(vec![
                entry("contact.nope", "Customer number"),
                entry("email", "Nope"),
            ]),
            None,
            &ghl_catalogue(),
            &trengo_catalogue(),
        )
        .unwrap_err();
        assert_eq!(problems[0].key, "contacts.fields[0].ghl");
        assert!(
            problems[0].message.contains("contact.customer_number"),
            "{}",
            problems[0]
        );
        assert_eq!(problems[1].key, "contacts.fields[1].trengo");
        assert!(
            problems[1].message.contains("Customer number"),
            "{}",
            problems[1]
        );
    }

    #[test]
    fn a_file_field_and_a_ticket_field_written_by_ghl_are_refused() {
        let problems = resolve(
            &config(vec![
                entry("contact.contract", "Customer number"),
                entry("city", "Order number"),
            ]),
            None,
            &ghl_catalogue(),
            &trengo_catalogue(),
        )
        .unwrap_err();
        assert_eq!(problems[0].key, "contacts.fields[0].ghl");
        assert!(problems[0].message.contains("FILE_UPLOAD"));
        assert_eq!(problems[1].key, "contacts.fields[1].direction");
    }

    #[test]
    fn ghl_email_and_phone_in_any_spelling_are_never_written() {
        let mut fields = vec![
            entry("email", "Customer number"),
            entry("E_mail", "Account manager"),
            entry("Phone", "Order number"),
        ];
        fields[2].direction = crate::config::Direction::TrengoToGhl;
        let problems =
            resolve(&config(fields), None, &ghl_catalogue(), &trengo_catalogue()).unwrap_err();
        let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "contacts.fields[0].direction",
                "contacts.fields[1].direction",
                "contacts.fields[2].direction"
            ]
        );
        assert!(problems[2].message.contains("`phone`"), "{}", problems[2]);

        let mut read_only = entry("email", "Customer number");
        read_only.direction = crate::config::Direction::GhlToTrengo;
        let map = resolve(
            &config(vec![read_only]),
            None,
            &ghl_catalogue(),
            &trengo_catalogue(),
        )
        .unwrap();
        assert_eq!(map.fields[0].ghl, GhlSlot::Standard(Standard::Email));
    }

    #[test]
    fn a_context_field_must_be_a_contact_field() {
        let mut c = config(vec![]);
        c.context.web_link = Some("Order number".into());
        let problems = resolve(&c, None, &ghl_catalogue(), &trengo_catalogue()).unwrap_err();
        assert_eq!(problems[0].key, "contacts.context.web_link");
        assert!(
            problems[0].message.contains("TICKET field"),
            "{}",
            problems[0]
        );
    }
}

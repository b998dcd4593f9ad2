//! `[contacts]`: contact pairs (Trengo contact ⇄ GHL contact) and the agent context
//! (sync-model.md §5).
//!
//! The field map names fields as the accounts do (a GHL standard field or custom field key, a
//! Trengo custom field title); `check` and every command that syncs resolve the names against
//! both accounts' catalogues (`sync::pairs::map`) and stop with exit 78 naming the entry that
//! does not resolve.

use serde::Deserialize;

use super::sections::{Direction, PolicyName};

/// `[contacts]`: which contact pairs are kept and what crosses between them.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ContactsConfig {
    /// Keep contact pairs. Default `false`. On, every contact pair behind a link is kept, and
    /// (with `tag`) every GHL contact carrying the tag.
    pub enabled: bool,
    /// GHL contacts carrying this tag are paired with a Trengo contact before any ticket exists
    /// (found by e-mail or phone, or created in `channel_id`). Default `""` (off: only contacts
    /// behind links are paired).
    pub tag: String,
    /// Trengo channel id in which missing Trengo contacts are created (an e-mail channel takes
    /// the contact's e-mail, a phone channel its phone). Default: `link.trengo_channel_id`.
    pub channel_id: Option<i64>,
    /// Open a welcome ticket for each contact paired through `tag`. Default: none.
    pub welcome: Option<WelcomeConfig>,
    /// The field map: one `[[contacts.fields]]` table per synced field. Default `[]`.
    pub fields: Vec<FieldEntry>,
    /// `[contacts.context]`: computed GHL context written to Trengo contact fields.
    pub context: ContextConfig,
    /// `[contacts.task]`: the linked task's details in Trengo ticket fields.
    pub task: TaskFieldsConfig,
    /// Contact pairs the daemon's sweep re-reads per hour, stalest first, spent as a rate
    /// (at most one `limits.sweep_cycle`'s worth saved up). Each pair read costs one Trengo
    /// call; GHL is read only for a pair whose Trengo values moved, or, with `next_appointment`
    /// or `open_tasks` context, for every pair read (the contact, its tasks, its
    /// appointments; and, with `[contacts.task]`, each linked ticket). So every pair is read
    /// every `pairs / sweep_pairs_per_hour` hours. `once` and the nightly reconcile read every
    /// pair. Default `300` (five a minute: 1,000 pairs in 200 minutes; with the worked
    /// example's context about 13 Trengo calls a minute of the documented 120, and 21,600 GHL
    /// calls a day, which with `limits.ghl_sweep_per_day` stays under GHL's 200,000).
    pub sweep_pairs_per_hour: u32,
}

impl Default for ContactsConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            tag: String::new(),
            channel_id: None,
            welcome: None,
            fields: Vec::new(),
            context: ContextConfig::default(),
            task: TaskFieldsConfig::default(),
            sweep_pairs_per_hour: 300,
        }
    }
}

/// One `[[contacts.fields]]` entry: a GHL field ⇄ a Trengo field.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldEntry {
    /// The GHL side: a standard field (`name`, `first_name`, `last_name`, `email`, `phone`,
    /// `company_name`, `address1`, `city`, `state`, `postal_code`, `country`, `website`,
    /// `date_of_birth`, `source`, `assigned_to`), or a custom field by key
    /// (`contact.customer_number`) or id.
    pub ghl: String,
    /// The Trengo side: `name` (the contact's name), or a custom field by title or id. The
    /// field's type in Trengo (`CONTACT`, `PROFILE`, `TICKET`) says where the value lives.
    pub trengo: String,
    /// Which way values flow. Default `both`. E-mail and phone identify a Trengo contact: they
    /// can only flow GHL → Trengo into a custom field, never onto the contact itself.
    #[serde(default)]
    pub direction: Direction,
    /// Which side wins when both changed. Default `newest`.
    #[serde(default)]
    pub policy: PolicyName,
}

impl FieldEntry {
    /// The entry's name in bases, the ledger and messages: `ghl ⇄ trengo`.
    pub fn name(&self) -> String {
        format!("{} ⇄ {}", self.ghl.trim(), self.trengo.trim())
    }
}

/// `[contacts.context]`: computed context, GHL → Trengo only. Each key names the Trengo contact
/// custom field (title or id) that receives it; absent keys are not computed.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ContextConfig {
    /// The GHL contact's web link. Default: none.
    pub web_link: Option<String>,
    /// The template of that link; `{location_id}` and `{contact_id}` are filled in. Default
    /// `https://app.gohighlevel.com/v2/location/{location_id}/contacts/detail/{contact_id}`
    /// (white-label accounts use their own domain).
    pub web_link_template: Option<String>,
    /// The next appointment: title, start in the location's zone, status. Default: none.
    pub next_appointment: Option<String>,
    /// The number of open GHL tasks and the next one due. Default: none.
    pub open_tasks: Option<String>,
    /// The contact's managed tags. Default: none.
    pub tags: Option<String>,
}

impl ContextConfig {
    /// The default web link template.
    pub const WEB_LINK_TEMPLATE: &'static str =
        "https://app.gohighlevel.com/v2/location/{location_id}/contacts/detail/{contact_id}";
}

/// `[contacts.task]`: Trengo ticket custom fields (title or id) that show the linked task.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TaskFieldsConfig {
    /// The task's due date (`YYYY-MM-DD HH:MM` in the Trengo zone), both ways: an agent who
    /// edits it moves the task's due date. Default: none.
    pub due: Option<String>,
    /// The task's title, GHL → Trengo. Default: none.
    pub title: Option<String>,
}

/// `[contacts.welcome]`: the ticket opened for a contact paired through `contacts.tag`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WelcomeConfig {
    /// The subject; `{name}`, `{first_name}`, `{email}` and `{phone}` are filled in.
    pub subject: String,
    /// Team id the ticket is assigned to. Default: none.
    #[serde(default)]
    pub team_id: Option<i64>,
    /// Trengo label names put on the ticket. Default `[]`.
    #[serde(default)]
    pub labels: Vec<String>,
}

/// Standard GHL contact fields a map entry may name (snake_case, as in the config).
pub const GHL_STANDARD_FIELDS: &[&str] = &[
    "name",
    "first_name",
    "last_name",
    "email",
    "phone",
    "company_name",
    "address1",
    "city",
    "state",
    "postal_code",
    "country",
    "website",
    "date_of_birth",
    "source",
    "assigned_to",
];

/// The rules between `[contacts]` keys that need no account: `(key, what is wrong)`.
/// Field names are resolved against the accounts' catalogues later (`sync::pairs::map`).
pub(super) fn problems(config: &super::Config) -> Vec<(String, String)> {
    let contacts = &config.contacts;
    let mut out = Vec::new();
    let mut fail = |key: String, why: String| out.push((key, why));
    let mut trengo_targets = std::collections::BTreeMap::new();
    let mut ghl_targets = std::collections::BTreeMap::new();
    for (i, entry) in contacts.fields.iter().enumerate() {
        let key = format!("contacts.fields[{i}]");
        let (ghl, trengo) = (entry.ghl.trim(), entry.trengo.trim());
        if ghl.is_empty() {
            fail(format!("{key}.ghl"), "empty: name a GHL standard field, or a custom field by key (`contact.customer_number`) or id".into());
        }
        if trengo.is_empty() {
            fail(
                format!("{key}.trengo"),
                "empty: `name`, or a Trengo custom field by title or id".into(),
            );
        }
        if matches!(
            trengo.to_ascii_lowercase().as_str(),
            "email" | "e-mail" | "phone" | "identifier"
        ) {
            fail(
                format!("{key}.trengo"),
                format!(
                    "`{trengo}`: Trengo contacts are per identifier, so e-mail and phone are matched on, \
                     never overwritten; map `{ghl}` to a Trengo custom field instead"
                ),
            );
        }
        if entry.policy == PolicyName::Manual {
            fail(
                format!("{key}.policy"),
                "`manual` is not available for contact fields (conflicts are held per link): \
                 use `newest`, `trengo` or `ghl`"
                    .into(),
            );
        }
        if entry.direction == Direction::Off {
            continue;
        }
        let writes_trengo = matches!(entry.direction, Direction::Both | Direction::GhlToTrengo);
        let writes_ghl = matches!(entry.direction, Direction::Both | Direction::TrengoToGhl);
        if writes_trengo && let Some(other) = trengo_targets.insert(trengo.to_lowercase(), i) {
            fail(
                format!("{key}.trengo"),
                format!(
                    "`{trengo}` is also written by contacts.fields[{other}]: two entries writing one field would overwrite each other every pass; keep one"
                ),
            );
        }
        if writes_ghl && let Some(other) = ghl_targets.insert(ghl.to_lowercase(), i) {
            fail(
                format!("{key}.ghl"),
                format!(
                    "`{ghl}` is also written by contacts.fields[{other}]: two entries writing one field would overwrite each other every pass; keep one"
                ),
            );
        }
    }
    let context = &contacts.context;
    if let Some(template) = &context.web_link_template
        && !template.contains("{contact_id}")
    {
        fail(
            "contacts.context.web_link_template".into(),
            "must contain `{contact_id}` (and usually `{location_id}`)".into(),
        );
    }
    let tag_on = !contacts.tag.trim().is_empty();
    if tag_on
        && contacts
            .channel_id
            .or(config.link.trengo_channel_id)
            .is_none()
    {
        fail(
            "contacts.channel_id".into(),
            "required with contacts.tag (or set link.trengo_channel_id): the Trengo channel in which \
             missing contacts are created"
                .into(),
        );
    }
    if let Some(welcome) = &contacts.welcome {
        if !tag_on {
            fail(
                "contacts.welcome".into(),
                "needs contacts.tag: welcome tickets are opened for contacts paired through the tag"
                    .into(),
            );
        }
        if welcome.subject.trim().is_empty() {
            fail(
                "contacts.welcome.subject".into(),
                "empty: give the ticket a subject, e.g. \"Welcome, {first_name}\"".into(),
            );
        }
    }
    if !(1..=100_000).contains(&contacts.sweep_pairs_per_hour) {
        fail(
            "contacts.sweep_pairs_per_hour".into(),
            format!(
                "{} is out of range: expected 1 to 100000 (Trengo allows 7,200 calls an hour)",
                contacts.sweep_pairs_per_hour
            ),
        );
    }
    out
}

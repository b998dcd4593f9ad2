//! What the engine needs from the configuration, in the engine's own terms.
//!
//! The configuration's words (`both`, `newest`, the status table) become the planner's
//! [`PlanSettings`] and the scope rules of [`Scope`]; everything else the passes need
//! (overlaps, retry policy, the ticket web URL) is gathered here so the engine never reads
//! the raw configuration.

use std::time::Duration;

use super::declare::Scope;
use super::model::{Tag, TagRule};
use super::policy::{self, Brake, PerField, PlanSettings, Policy, StatusTable, TicketAction};
use crate::config::{self, Config};
use crate::store::retries::RetryPolicy;

/// Everything a sync pass needs to know from the configuration.
#[derive(Debug, Clone)]
pub struct EngineSettings {
    /// The planner's rules.
    pub plan: PlanSettings,
    /// Which items enter the sync.
    pub scope: Scope,
    /// What completing a task does to its ticket (close or mark as spam).
    pub complete_as_spam: bool,
    /// How far before a pass's start the next Trengo watermark is set.
    pub trengo_overlap: chrono::Duration,
    /// How far before a pass's start the next GHL watermark is set.
    pub ghl_overlap: chrono::Duration,
    /// Create missing GHL contacts for tickets.
    pub create_contacts: bool,
    /// Create missing Trengo labels for tags.
    pub create_labels: bool,
    /// Due date of tasks made from tickets, from their creation.
    pub task_due_in: chrono::Duration,
    /// Trengo user e-mail → GHL user e-mail where they differ.
    pub assignee_aliases: std::collections::BTreeMap<String, String>,
    /// Waits before retrying failed items.
    pub retry: RetryPolicy,
    /// Items failing for longer are reported as stuck.
    pub stuck_after: chrono::Duration,
    /// Share of each API's budget the sweep may use.
    pub sweep_share: f64,
    /// Least time between the starts of two sweep cycles.
    pub sweep_cycle: std::time::Duration,
    /// GHL requests the sweep may make per hour.
    pub ghl_sweep_per_hour: u32,
    /// The initial-sync cutoff (`link.since`): older items are not linked.
    pub since: Option<crate::config::Since>,
    /// Contact pairs (`[contacts]` with `enabled = true`); `None` keeps none.
    pub pairs: Option<PairSettings>,
}

/// `[contacts]` in the engine's terms, before its field names are resolved against the
/// accounts (`sync::pairs::map`, at the first pass).
#[derive(Debug, Clone)]
pub struct PairSettings {
    /// GHL contacts carrying it are paired before any ticket exists.
    pub tag: Option<super::model::Tag>,
    /// The section as configured.
    pub config: crate::config::ContactsConfig,
    /// `link.trengo_channel_id`, where contacts are made when `contacts.channel_id` is unset.
    pub link_channel: Option<i64>,
}

fn direction(d: config::Direction) -> policy::Direction {
    match d {
        config::Direction::Both => policy::Direction::Both,
        config::Direction::TrengoToGhl => policy::Direction::TrengoToGhl,
        config::Direction::GhlToTrengo => policy::Direction::GhlToTrengo,
        config::Direction::Off => policy::Direction::Off,
    }
}

fn policy_of(p: config::PolicyName) -> Policy {
    match p {
        config::PolicyName::Newest => Policy::Newest,
        config::PolicyName::Trengo => Policy::Trengo,
        config::PolicyName::Ghl => Policy::Ghl,
        config::PolicyName::Manual => Policy::Manual,
    }
}

fn chrono(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

impl EngineSettings {
    /// The engine's settings for a validated configuration.
    pub fn from_config(config: &Config) -> Self {
        let done = |s: config::TicketStatusName| {
            config.status.map.get(&s) == Some(&config::TaskState::Done)
        };
        let status_table = StatusTable {
            open: done(config::TicketStatusName::Open),
            assigned: done(config::TicketStatusName::Assigned),
            closed: done(config::TicketStatusName::Closed),
            invalid: done(config::TicketStatusName::Invalid),
            on_complete: TicketAction::Close,
            on_reopen: TicketAction::Reopen,
        };
        let mut tags = TagRule::with_allow(config.tags.managed.iter().map(String::as_str));
        let prefix = config.tags.managed_prefix.trim();
        if !prefix.is_empty() {
            tags.prefix = Some(Tag::new(prefix).as_str().to_string());
        }
        let scope = Scope::from_config(config);
        let plan = PlanSettings {
            tags,
            policies: PerField {
                status: policy_of(config.conflicts.status),
                tags: policy_of(config.conflicts.tags),
                // Comments are append-only and never conflict; the policy is never consulted.
                comments: Policy::Newest,
                assignee: policy_of(config.conflicts.assignee),
            },
            directions: PerField {
                status: direction(config.status.direction),
                tags: direction(config.tags.direction),
                comments: direction(config.comments.direction),
                assignee: direction(config.assignee.direction),
            },
            status_table,
            include_customer_messages: config.comments.include_customer_messages,
            assignee_enabled: config.assignee.enabled,
            ghl_to_trengo_links: scope.ghl_to_trengo(),
            brake: Brake {
                max_fraction: config.limits.brake_fraction,
                min_links: config.limits.brake_min_links as usize,
            },
        };
        Self {
            plan,
            scope,
            complete_as_spam: config.status.on_task_completed == config::OnTaskCompleted::Spam,
            trengo_overlap: chrono(config.schedule.trengo_overlap.get()),
            ghl_overlap: chrono(config.schedule.ghl_overlap.get()),
            create_contacts: config.link.create_contacts,
            create_labels: config.tags.create_labels,
            task_due_in: chrono(config.link.task_due_in.get()),
            assignee_aliases: config
                .assignee
                .users
                .iter()
                .map(|(t, g)| (t.trim().to_lowercase(), g.trim().to_lowercase()))
                .collect(),
            retry: RetryPolicy {
                base: config.limits.retry_base.get(),
                max: config.limits.retry_max.get(),
                attempts: config.limits.item_attempts,
            },
            stuck_after: chrono(config.limits.stuck_after.get()),
            sweep_share: config.limits.sweep_share,
            sweep_cycle: config.limits.sweep_cycle.get(),
            ghl_sweep_per_hour: (config.limits.ghl_sweep_per_day / 24).max(1),
            since: config.link.since,
            pairs: config.contacts.enabled.then(|| PairSettings {
                tag: Some(config.contacts.tag.trim())
                    .filter(|t| !t.is_empty())
                    .map(super::model::Tag::new),
                config: config.contacts.clone(),
                link_channel: config.link.trengo_channel_id,
            }),
        }
    }
}

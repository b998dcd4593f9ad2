//! What is in scope: the link rules of sync-model.md §2, and the ticket URL that ties a task
//! to its ticket.
//!
//! A ticket enters scope by label, channel or team; a task by its contact's tag or its title
//! prefix (and only when a Trengo channel for new tickets is configured). The ticket URL
//! written into a task body is both the visible back-reference and the key by which a task is
//! recognised as already belonging to a ticket of this account (adoption, never duplication).

use super::model::Tag;
use crate::config::Config;
use crate::store::links::Origin;

/// The link rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    /// Tickets carrying this label are in scope.
    pub trengo_label: Option<Tag>,
    /// Tickets in these channels are in scope.
    pub trengo_channels: Vec<i64>,
    /// Tickets of these teams are in scope.
    pub trengo_teams: Vec<i64>,
    /// Tasks of contacts carrying this tag are in scope.
    pub ghl_tag: Option<Tag>,
    /// Tasks whose title starts with this (case-insensitive) are in scope.
    pub ghl_title_prefix: Option<String>,
    /// Where tickets for GHL tasks are created; `None` turns GHL → Trengo links off.
    pub trengo_channel_id: Option<i64>,
    /// The web base of ticket URLs, without a trailing slash.
    pub web_url: String,
}

impl Scope {
    /// The rules a configuration sets.
    pub fn from_config(config: &Config) -> Self {
        let tag = |s: &str| {
            let t = Tag::new(s);
            (!t.is_empty()).then_some(t)
        };
        Self {
            trengo_label: tag(&config.link.trengo_label),
            trengo_channels: config.link.trengo_channels.clone(),
            trengo_teams: config.link.trengo_teams.clone(),
            ghl_tag: tag(&config.link.ghl_tag),
            ghl_title_prefix: config
                .link
                .ghl_title_prefix
                .as_ref()
                .map(|p| p.trim().to_lowercase())
                .filter(|p| !p.is_empty()),
            trengo_channel_id: config.link.trengo_channel_id,
            web_url: config
                .trengo
                .web_url
                .url()
                .as_str()
                .trim_end_matches('/')
                .to_string(),
        }
    }

    /// Whether GHL → Trengo links are made at all.
    pub fn ghl_to_trengo(&self) -> bool {
        self.trengo_channel_id.is_some()
            && (self.ghl_tag.is_some() || self.ghl_title_prefix.is_some())
    }

    /// Whether a ticket with these labels, channel and team matches the Trengo rule.
    pub fn ticket_in_scope<'a>(
        &self,
        labels: impl IntoIterator<Item = &'a Tag>,
        channel: Option<i64>,
        team: Option<i64>,
    ) -> bool {
        let by_label = self
            .trengo_label
            .as_ref()
            .is_some_and(|l| labels.into_iter().any(|t| t == l));
        by_label
            || channel.is_some_and(|c| self.trengo_channels.contains(&c))
            || team.is_some_and(|t| self.trengo_teams.contains(&t))
    }

    /// Whether a task of a contact with these tags, with this title, matches the GHL rule.
    pub fn task_in_scope<'a>(
        &self,
        contact_tags: impl IntoIterator<Item = &'a Tag>,
        title: &str,
    ) -> bool {
        if !self.ghl_to_trengo() {
            return false;
        }
        let by_tag = self
            .ghl_tag
            .as_ref()
            .is_some_and(|g| contact_tags.into_iter().any(|t| t == g));
        let by_prefix = self
            .ghl_title_prefix
            .as_ref()
            .is_some_and(|p| title.trim().to_lowercase().starts_with(p.as_str()));
        by_tag || by_prefix
    }

    /// Whether a link stays in scope. A link follows the rule that made it: a ticket's link
    /// leaves when the ticket stops matching the Trengo rule, a task's when the task stops
    /// matching the GHL rule; an adopted link stays while either matches.
    pub fn link_in_scope(&self, origin: Origin, ticket_matches: bool, task_matches: bool) -> bool {
        match origin {
            Origin::Trengo => ticket_matches,
            Origin::Ghl => task_matches,
            Origin::Adopted => ticket_matches || task_matches,
        }
    }

    /// The web URL of a ticket, as written into its task.
    pub fn ticket_url(&self, ticket_id: i64) -> String {
        format!("{}/tickets/{ticket_id}", self.web_url)
    }

    /// The id of the first ticket of this account whose URL appears in `text`.
    pub fn ticket_in_text(&self, text: &str) -> Option<i64> {
        let needle = format!("{}/tickets/", self.web_url);
        let mut rest = text;
        while let Some(at) = rest.find(&needle) {
            let after = &rest[at + needle.len()..];
            let digits: String = after.chars().take_while(char::is_ascii_digit).collect();
            if let Ok(id) = digits.parse() {
                return Some(id);
            }
            rest = after;
        }
        None
    }
}

/// The marker put in the subject of a ticket made for a GHL task: the idempotency key of that
/// create, found again by listing the contact's tickets.
pub fn task_subject_marker(task_id: &str) -> String {
    format!("(GHL task {task_id})")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope() -> Scope {
        Scope {
            trengo_label: Some(Tag::new("GHL")),
            trengo_channels: vec![7],
            trengo_teams: vec![],
            ghl_tag: Some(Tag::new("trengo")),
            ghl_title_prefix: Some("[t]".into()),
            trengo_channel_id: Some(3),
            web_url: "https://app.trengo.com".into(),
        }
    }

    #[test]
    fn ticket_enters_scope_by_label_or_channel() {
        let s = scope();
        assert!(s.ticket_in_scope(&[Tag::new("ghl")], None, None));
        assert!(s.ticket_in_scope(&[], Some(7), None));
        assert!(!s.ticket_in_scope(&[Tag::new("billing")], Some(8), Some(1)));
    }

    #[test]
    fn task_enters_scope_by_tag_or_prefix_only_with_a_channel() {
        let mut s = scope();
        assert!(s.task_in_scope(&[Tag::new("Trengo")], "Call back"));
        assert!(s.task_in_scope(&[], "[T] quote"));
        assert!(!s.task_in_scope(&[], "quote"));
        s.trengo_channel_id = None;
        assert!(!s.task_in_scope(&[Tag::new("trengo")], "Call back"));
    }

    #[test]
    fn ticket_url_round_trips_and_ignores_other_accounts() {
        let s = scope();
        let body = format!(
            "Customer asked.\n\nTrengo ticket: {}",
            s.ticket_url(913790661)
        );
        assert_eq!(s.ticket_in_text(&body), Some(913790661));
        assert_eq!(s.ticket_in_text("https://other.trengo.com/tickets/5"), None);
        assert_eq!(
            s.ticket_in_text("https://app.trengo.com/tickets/ and then"),
            None
        );
    }

    #[test]
    fn a_link_follows_the_rule_that_made_it() {
        let s = scope();
        assert!(!s.link_in_scope(Origin::Trengo, false, true));
        assert!(!s.link_in_scope(Origin::Ghl, true, false));
        assert!(s.link_in_scope(Origin::Adopted, false, true));
    }
}

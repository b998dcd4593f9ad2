//! Copies of notes: a Trengo message as a GHL note, a GHL note as a Trengo internal note.
//! Each is journalled as an intent first and recorded as a comment pair with the intent's end,
//! so it crosses once.

use serde_json::json;

use super::{Executor, IntentKind, ItemError, store_ops::record_pair};
use crate::ghl;
use crate::store::{self, comments::CommentOrigin};
use crate::sync::model::LinkId;

impl Executor<'_> {
    /// Copies Trengo message `message_id` to the contact as a GHL note.
    pub(super) async fn create_ghl_note(
        &self,
        link: LinkId,
        contact_id: &str,
        message_id: i64,
        body: &str,
    ) -> Result<(), ItemError> {
        let key = self
            .open_intent(
                IntentKind::GhlNote,
                &message_id.to_string(),
                Some(link),
                json!({"contact_id": contact_id, "message_id": message_id}),
            )
            .await?;
        let note = self
            .ghl
            .create_note(
                contact_id,
                &ghl::NoteFields {
                    body: body.to_string(),
                    user_id: None,
                    title: None,
                },
            )
            .await?;
        self.remote_done()?;
        let now = self.now();
        self.tx(move |c| {
            record_pair(c, link, message_id, &note.id, CommentOrigin::Trengo, now)?;
            store::intents::finish(c, &key, &json!({"note_id": note.id}), now).map(|_| ())
        })
        .await
    }

    /// Copies GHL note `note_id` to the ticket as an internal note.
    pub(super) async fn create_trengo_note(
        &self,
        link: LinkId,
        ticket_id: i64,
        note_id: &str,
        body: &str,
    ) -> Result<(), ItemError> {
        let key = self
            .open_intent(
                IntentKind::TrengoNote,
                note_id,
                Some(link),
                json!({"ticket_id": ticket_id, "note_id": note_id}),
            )
            .await?;
        // Always an internal note: GHL text never reaches the customer (sync-model.md §3).
        let message = self.trengo.add_internal_note(ticket_id, body).await?;
        self.remote_done()?;
        let (note_id, now) = (note_id.to_string(), self.now());
        self.tx(move |c| {
            record_pair(c, link, message.id, &note_id, CommentOrigin::Ghl, now)?;
            store::intents::finish(c, &key, &json!({"message_id": message.id}), now).map(|_| ())
        })
        .await
    }
}

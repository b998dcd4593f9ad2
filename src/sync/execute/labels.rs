//! Trengo labels by name: the id a tag's label has, read again when the cache may be stale,
//! and made when the configuration allows (`tags.create_labels`).

use std::collections::HashMap;

use super::{Executor, ItemError};
use crate::api::ApiError;
use crate::sync::model::Tag;
use crate::trengo::TrengoClient;

impl Executor<'_> {
    /// The Trengo label id for a tag, creating the label when allowed and `create` is set.
    pub(super) async fn label_id(
        &mut self,
        tag: &Tag,
        create: bool,
    ) -> Result<Option<i64>, ItemError> {
        if let Some(id) = self.facts.labels.get(tag) {
            return Ok(Some(*id));
        }
        // The cache may predate a label made in Trengo since: read the list once more.
        refresh_labels(self.trengo, &mut self.facts.labels).await?;
        if let Some(id) = self.facts.labels.get(tag) {
            return Ok(Some(*id));
        }
        if !(create && self.settings.create_labels) {
            return Ok(None);
        }
        let label = self.trengo.create_label(tag.as_str(), "#5D9CEC").await?;
        self.remote_done()?;
        self.facts.labels.insert(tag.clone(), label.id);
        Ok(Some(label.id))
    }
}

/// Reads every Trengo label into `labels`, by normalised name.
pub async fn refresh_labels(
    trengo: &TrengoClient,
    labels: &mut HashMap<Tag, i64>,
) -> Result<(), ApiError> {
    use futures::StreamExt as _;
    let mut stream = std::pin::pin!(trengo.labels());
    while let Some(label) = stream.next().await {
        let label = label?;
        if let Some(name) = &label.name {
            labels.insert(Tag::new(name), label.id);
        }
    }
    Ok(())
}

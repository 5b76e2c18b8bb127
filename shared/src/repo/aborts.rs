//! Ended uploads whose S3 side is not confirmed gone yet: the multipart upload, and the
//! object its parts may have been joined into by a complete that lost to the end.
//!
//! The transaction that ends an upload (deletes its record on `state = active`) puts one of
//! these in the same write, due [`ABORT_GRACE`] later (kind `ABORT` of the `due` index). The
//! S3 calls follow, and the item goes once S3 has answered. A failure in between (S3 down,
//! the run stopped) leaves the item, and the janitor makes the same calls once it is due, so
//! no multipart upload or object is ever left without an item naming it.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::Context;
use aws_sdk_dynamodb::types::TransactWriteItem;
use filestore_contract::domain::{UploadId, UserId};
use time::OffsetDateTime;

use super::item::{Item, get_parsed, get_s, rfc3339, s};
use super::{Repo, UploadRecord};
use crate::keys::{self, Due};

/// How long after an upload ended its S3 side becomes the janitor's: longer than any run
/// that ends an upload goes on (a Lambda run stops after 15 minutes), so the janitor does
/// not repeat calls a run is still making.
pub const ABORT_GRACE: Duration = Duration::from_secs(15 * 60);

/// An ended upload's S3 side, to be removed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingAbort {
    pub user_id: UserId,
    pub upload_id: UploadId,
    /// The object its parts are (or would be) joined into.
    pub object_key: String,
    pub s3_upload_id: String,
}

impl PendingAbort {
    pub fn of(upload: &UploadRecord) -> Self {
        Self {
            user_id: upload.user_id.clone(),
            upload_id: upload.upload_id.clone(),
            object_key: upload.object_key.clone(),
            s3_upload_id: upload.s3_upload_id.clone(),
        }
    }
}

impl Repo {
    /// The write that leaves `pending` for the janitor at `due`, within the transaction that
    /// ends its upload. An upload ends once, so its item cannot exist yet.
    pub(super) fn put_pending_abort(
        &self,
        pending: &PendingAbort,
        due: OffsetDateTime,
    ) -> anyhow::Result<TransactWriteItem> {
        let item: Item = HashMap::from([
            ("PK".into(), s(keys::user_pk(&pending.user_id))),
            ("SK".into(), s(keys::abort_sk(&pending.upload_id))),
            ("user_id".into(), s(&pending.user_id)),
            ("upload_id".into(), s(&pending.upload_id)),
            ("object_key".into(), s(&pending.object_key)),
            ("s3_upload_id".into(), s(&pending.s3_upload_id)),
            (
                "due_pk".into(),
                s(Due::Abort.key(pending.upload_id.as_str())),
            ),
            ("due_at".into(), s(rfc3339(due))),
        ]);
        self.put(item, "attribute_not_exists(PK)")
    }

    /// Ended uploads whose S3 side was left at or before `now`, for the janitor.
    ///
    /// # Errors
    /// DynamoDB failures or a malformed item.
    pub async fn pending_aborts(&self, now: OffsetDateTime) -> anyhow::Result<Vec<PendingAbort>> {
        self.due(Due::Abort, now)
            .await?
            .iter()
            .map(|item| {
                Ok(PendingAbort {
                    user_id: get_parsed(item, "user_id")?,
                    upload_id: get_parsed(item, "upload_id")?,
                    object_key: get_s(item, "object_key")?,
                    s3_upload_id: get_s(item, "s3_upload_id")?,
                })
            })
            .collect()
    }

    /// Forgets `pending` once S3 has confirmed its side gone. Nothing else writes the item
    /// after it is put, so whoever finished the calls (the run that ended the upload, or a
    /// janitor) may delete it, again or not.
    ///
    /// # Errors
    /// DynamoDB failures.
    pub async fn forget_pending_abort(&self, pending: &PendingAbort) -> anyhow::Result<()> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("PK", s(keys::user_pk(&pending.user_id)))
            .key("SK", s(keys::abort_sk(&pending.upload_id)))
            .send()
            .await
            .context("DynamoDB DeleteItem (pending abort)")?;
        Ok(())
    }
}

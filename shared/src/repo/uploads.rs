//! Multipart uploads: the record of each, from creation to completion, which turns it into a
//! File and counts it on its owner in one transaction.

use std::collections::HashMap;

use anyhow::{Context, anyhow};
use aws_sdk_dynamodb::types::{TransactWriteItem, Update};
use filestore_contract::api::UploadView;
use filestore_contract::domain::{FileId, PartPlan, UploadId, UploadState, UserId};
use time::OffsetDateTime;

use super::item::{
    Item, get_parsed, get_s, get_time, get_u64, is_condition_failure, n, opt_s, rfc3339, s,
};
use super::{AddFile, FileRecord, Repo};
use crate::keys::{self, Due};

/// A multipart upload in progress (or completed, until its record expires).
#[derive(Clone, Debug)]
pub struct UploadRecord {
    pub user_id: UserId,
    pub upload_id: UploadId,
    /// Chosen up front, so retries of complete always name the same File.
    pub file_id: FileId,
    pub name: String,
    pub size: u64,
    pub sha256: Option<String>,
    pub content_type: String,
    pub part_size: u64,
    pub part_count: u64,
    pub object_key: String,
    pub s3_upload_id: String,
    pub state: UploadState,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
}

impl UploadRecord {
    /// How this upload is cut into parts, as planned at create.
    pub fn plan(&self) -> PartPlan {
        PartPlan {
            part_size: self.part_size,
            part_count: self.part_count,
        }
    }

    pub fn is_expired(&self, now: OffsetDateTime) -> bool {
        self.expires_at <= now
    }

    pub fn view(&self, parts_done: Option<Vec<filestore_contract::api::PartDone>>) -> UploadView {
        UploadView {
            upload_id: self.upload_id.clone(),
            name: self.name.clone(),
            size: self.size,
            sha256: self.sha256.clone(),
            content_type: self.content_type.clone(),
            part_size: self.part_size,
            part_count: self.part_count,
            parts_done,
            state: self.state,
            file_id: (self.state == UploadState::Completed).then(|| self.file_id.clone()),
            created_at: rfc3339(self.created_at),
            expires_at: rfc3339(self.expires_at),
        }
    }
}

impl Repo {
    fn upload_item(u: &UploadRecord) -> Item {
        let mut item: Item = HashMap::from([
            ("PK".into(), s(keys::user_pk(&u.user_id))),
            ("SK".into(), s(keys::upload_sk(&u.upload_id))),
            ("user_id".into(), s(&u.user_id)),
            ("upload_id".into(), s(&u.upload_id)),
            ("file_id".into(), s(&u.file_id)),
            ("name".into(), s(&u.name)),
            ("size".into(), n(u.size)),
            ("content_type".into(), s(&u.content_type)),
            ("part_size".into(), n(u.part_size)),
            ("part_count".into(), n(u.part_count)),
            ("object_key".into(), s(&u.object_key)),
            ("s3_upload_id".into(), s(&u.s3_upload_id)),
            ("state".into(), s(u.state.as_str())),
            ("created_at".into(), s(rfc3339(u.created_at))),
            ("expires_at".into(), s(rfc3339(u.expires_at))),
            ("ttl".into(), n(u.expires_at.unix_timestamp())),
        ]);
        if let Some(h) = &u.sha256 {
            item.insert("sha256".into(), s(h));
        }
        if u.state == UploadState::Active {
            item.insert("due_pk".into(), s(Due::Upload.key(u.upload_id.as_str())));
            item.insert("due_at".into(), s(rfc3339(u.expires_at)));
        }
        item
    }

    pub(super) fn upload_from(item: &Item) -> anyhow::Result<UploadRecord> {
        let state = match get_s(item, "state")?.as_str() {
            "active" => UploadState::Active,
            "completed" => UploadState::Completed,
            other => return Err(anyhow!("unknown upload state {other:?}")),
        };
        Ok(UploadRecord {
            user_id: get_parsed(item, "user_id")?,
            upload_id: get_parsed(item, "upload_id")?,
            file_id: get_parsed(item, "file_id")?,
            name: get_s(item, "name")?,
            size: get_u64(item, "size")?,
            sha256: opt_s(item, "sha256"),
            content_type: get_s(item, "content_type")?,
            part_size: get_u64(item, "part_size")?,
            part_count: get_u64(item, "part_count")?,
            object_key: get_s(item, "object_key")?,
            s3_upload_id: get_s(item, "s3_upload_id")?,
            state,
            created_at: get_time(item, "created_at")?,
            expires_at: get_time(item, "expires_at")?,
        })
    }

    /// # Errors
    /// DynamoDB failures.
    pub async fn put_upload(&self, upload: &UploadRecord) -> anyhow::Result<()> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(Self::upload_item(upload)))
            .condition_expression("attribute_not_exists(PK)")
            .send()
            .await
            .context("DynamoDB PutItem (upload)")?;
        Ok(())
    }

    /// The caller's upload, whatever its state or expiry.
    ///
    /// # Errors
    /// DynamoDB failures or a malformed item.
    pub async fn get_upload(
        &self,
        user_id: &UserId,
        upload_id: &UploadId,
    ) -> anyhow::Result<Option<UploadRecord>> {
        self.get(keys::user_pk(user_id), &keys::upload_sk(upload_id))
            .await?
            .map(|item| Self::upload_from(&item))
            .transpose()
    }

    /// All of the caller's upload records (every state; the caller filters).
    ///
    /// # Errors
    /// DynamoDB failures or a malformed item.
    pub async fn list_uploads(&self, user_id: &UserId) -> anyhow::Result<Vec<UploadRecord>> {
        let (items, _) = self
            .query_prefix(user_id, keys::UPLOAD_PREFIX, None, None)
            .await?;
        items.iter().map(Self::upload_from).collect()
    }

    /// Deletes an upload record only while it is still active, so it never removes one a
    /// concurrent complete has just recorded. `false` if it was not active (or gone).
    ///
    /// # Errors
    /// DynamoDB failures.
    pub async fn delete_active_upload(
        &self,
        user_id: &UserId,
        upload_id: &UploadId,
    ) -> anyhow::Result<bool> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("PK", s(keys::user_pk(user_id)))
            .key("SK", s(keys::upload_sk(upload_id)))
            .condition_expression("#state = :active")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":active", s(UploadState::Active.as_str()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(is_condition_failure) => Ok(false),
            Err(e) => Err(e).context("DynamoDB DeleteItem (active upload)"),
        }
    }

    /// Records a completed upload as a File, marks the upload completed and adds the file to
    /// the owner's counters within `quota`, all or nothing. [`AddFile::Refused`] if the upload
    /// was no longer active (a concurrent or earlier complete won); nothing was written then.
    ///
    /// # Errors
    /// DynamoDB failures.
    pub async fn complete_upload(
        &self,
        upload: &UploadRecord,
        file: &FileRecord,
        quota: u64,
    ) -> anyhow::Result<AddFile> {
        if file.size > quota {
            return Ok(AddFile::OverQuota);
        }
        let mark = Update::builder()
            .table_name(&self.table)
            .key("PK", s(keys::user_pk(&upload.user_id)))
            .key("SK", s(keys::upload_sk(&upload.upload_id)))
            .update_expression("SET #state = :completed REMOVE due_pk, due_at")
            .condition_expression("#state = :active")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":completed", s(UploadState::Completed.as_str()))
            .expression_attribute_values(":active", s(UploadState::Active.as_str()))
            .build()?;
        let tx = self
            .transact_items(
                vec![
                    self.put(Self::file_item(file), "attribute_not_exists(PK)")?,
                    TransactWriteItem::builder().update(mark).build(),
                    self.count_files_within(&upload.user_id, file.size.into(), 1, Some(quota))?,
                ],
                "complete",
            )
            .await?;
        Ok(AddFile::from_tx(tx, 2))
    }
}

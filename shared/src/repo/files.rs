//! Files: the record of each, its reads, rename, and delete, which takes it off its owner's
//! counters and releases its content in one transaction.

use std::collections::HashMap;

use anyhow::{Context, anyhow};
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue as Av, Delete, ReturnValue, TransactWriteItem};
use filestore_contract::api::FileView;
use time::OffsetDateTime;

use super::Repo;
use super::item::{Item, get_bool, get_s, get_time, get_u64, n, opt_s, rfc3339, s};
use crate::keys;

/// A user's file.
#[derive(Clone, Debug)]
pub struct FileRecord {
    pub user_id: String,
    pub file_id: String,
    pub name: String,
    pub size: u64,
    pub sha256: Option<String>,
    pub declared_sha256: Option<String>,
    pub content_type: String,
    pub created_at: OffsetDateTime,
    pub object_key: String,
    pub tier: String,
    pub verified: bool,
    pub upload_id: String,
    /// SHA-1 of the stored bytes, once the transfer has read them (the seed's content key).
    pub sha1: Option<String>,
    /// Where the verified copy sits in the cold store.
    pub cold_key: Option<String>,
    /// Whether the hot copy (`object_key`) still exists.
    pub hot_present: bool,
}

impl FileRecord {
    pub fn view(&self) -> FileView {
        FileView {
            file_id: self.file_id.clone(),
            name: self.name.clone(),
            size: self.size,
            sha256: self.sha256.clone(),
            content_type: self.content_type.clone(),
            created_at: rfc3339(self.created_at),
            tier: self.tier.clone(),
            verified: self.verified,
            declared_sha256: self.declared_sha256.clone(),
        }
    }
}

impl Repo {
    pub(super) fn file_item(f: &FileRecord) -> Item {
        let mut item: Item = HashMap::from([
            ("PK".into(), s(keys::user_pk(&f.user_id))),
            ("SK".into(), s(keys::file_sk(&f.file_id))),
            ("user_id".into(), s(&f.user_id)),
            ("file_id".into(), s(&f.file_id)),
            ("name".into(), s(&f.name)),
            ("size".into(), n(f.size)),
            ("content_type".into(), s(&f.content_type)),
            ("created_at".into(), s(rfc3339(f.created_at))),
            ("object_key".into(), s(&f.object_key)),
            ("tier".into(), s(&f.tier)),
            ("verified".into(), Av::Bool(f.verified)),
            ("upload_id".into(), s(&f.upload_id)),
        ]);
        if let Some(h) = &f.sha256 {
            item.insert("sha256".into(), s(h));
        }
        if let Some(h) = &f.declared_sha256 {
            item.insert("declared_sha256".into(), s(h));
        }
        if let Some(h) = &f.sha1 {
            item.insert("sha1".into(), s(h));
        }
        if let Some(k) = &f.cold_key {
            item.insert("cold_key".into(), s(k));
        }
        item.insert("hot_present".into(), Av::Bool(f.hot_present));
        item
    }

    pub(super) fn file_from(item: &Item) -> anyhow::Result<FileRecord> {
        Ok(FileRecord {
            user_id: get_s(item, "user_id")?,
            file_id: get_s(item, "file_id")?,
            name: get_s(item, "name")?,
            size: get_u64(item, "size")?,
            sha256: opt_s(item, "sha256"),
            declared_sha256: opt_s(item, "declared_sha256"),
            content_type: get_s(item, "content_type")?,
            created_at: get_time(item, "created_at")?,
            object_key: get_s(item, "object_key")?,
            tier: get_s(item, "tier")?,
            verified: get_bool(item, "verified"),
            upload_id: get_s(item, "upload_id")?,
            sha1: opt_s(item, "sha1"),
            cold_key: opt_s(item, "cold_key"),
            // Written by every version of the code; absent only if a write was partial.
            hot_present: !matches!(item.get("hot_present"), Some(Av::Bool(false))),
        })
    }

    /// # Errors
    /// DynamoDB failures or a malformed item.
    pub async fn get_file(
        &self,
        user_id: &str,
        file_id: &str,
    ) -> anyhow::Result<Option<FileRecord>> {
        self.get(keys::user_pk(user_id), &keys::file_sk(file_id))
            .await?
            .map(|item| Self::file_from(&item))
            .transpose()
    }

    /// Up to `limit` of the caller's files after `after_file_id`, oldest first, and whether more follow.
    ///
    /// # Errors
    /// DynamoDB failures or a malformed item.
    pub async fn list_files(
        &self,
        user_id: &str,
        limit: u32,
        after_file_id: Option<&str>,
    ) -> anyhow::Result<(Vec<FileRecord>, bool)> {
        // One extra item tells whether another page exists, so the last page has no cursor.
        let want = limit as i32 + 1;
        let (items, _) = self
            .query_prefix(
                user_id,
                keys::FILE_PREFIX,
                Some(want),
                after_file_id.map(keys::file_sk),
            )
            .await?;
        let more = items.len() > limit as usize;
        let files = items
            .iter()
            .take(limit as usize)
            .map(Self::file_from)
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok((files, more))
    }

    /// Renames the caller's file; `None` if it does not exist.
    ///
    /// # Errors
    /// DynamoDB failures or a malformed item.
    pub async fn rename_file(
        &self,
        user_id: &str,
        file_id: &str,
        name: &str,
    ) -> anyhow::Result<Option<FileRecord>> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("PK", s(keys::user_pk(user_id)))
            .key("SK", s(keys::file_sk(file_id)))
            .update_expression("SET #name = :name")
            .condition_expression("attribute_exists(PK)")
            .expression_attribute_names("#name", "name")
            .expression_attribute_values(":name", s(name))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match result {
            Ok(out) => out
                .attributes
                .map(|item| Self::file_from(&item))
                .transpose(),
            Err(e)
                if matches!(
                    e.as_service_error(),
                    Some(UpdateItemError::ConditionalCheckFailedException(_))
                ) =>
            {
                Ok(None)
            }
            Err(e) => Err(anyhow!(
                "DynamoDB UpdateItem (rename): {}",
                e.message().unwrap_or("no message")
            )
            .context(format!("{e:?}"))),
        }
    }

    /// Notes that a file's hot copy is gone; downloads then come from the cold copy.
    ///
    /// # Errors
    /// DynamoDB failures.
    pub async fn mark_hot_removed(&self, user_id: &str, file_id: &str) -> anyhow::Result<()> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("PK", s(keys::user_pk(user_id)))
            .key("SK", s(keys::file_sk(file_id)))
            .update_expression("SET hot_present = :false REMOVE due_pk, due_at")
            .condition_expression("attribute_exists(PK)")
            .expression_attribute_values(":false", Av::Bool(false))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e)
                if matches!(
                    e.as_service_error(),
                    Some(UpdateItemError::ConditionalCheckFailedException(_))
                ) =>
            {
                Ok(())
            }
            Err(e) => Err(e).context("DynamoDB UpdateItem (hot removed)"),
        }
    }

    /// Deletes the caller's file record and takes it off their counters, all or nothing.
    /// Returns `false` if it was already gone.
    ///
    /// # Errors
    /// DynamoDB failures.
    pub async fn delete_file(&self, file: &FileRecord) -> anyhow::Result<bool> {
        let delete = Delete::builder()
            .table_name(&self.table)
            .key("PK", s(keys::user_pk(&file.user_id)))
            .key("SK", s(keys::file_sk(&file.file_id)))
            .condition_expression("attribute_exists(PK)")
            .build()?;
        let mut items = vec![
            TransactWriteItem::builder().delete(delete).build(),
            self.count_files(&file.user_id, -(file.size as i128), -1)?,
        ];
        // A verified file holds a reference on its content; the janitor collects content
        // whose count reaches zero.
        if let (true, Some(sha256)) = (file.verified, &file.sha256) {
            items.push(self.reference_content(sha256, -1)?);
        }
        self.transact(items, "delete file").await
    }
}

//! Files: the record of each, its reads, and the delete a purge makes, which takes it
//! off its owner's counters and releases its content in one transaction. A trashed file keeps
//! its record (marked `trashed_at`) until it is purged; reads that serve the owner skip it.

use std::collections::HashMap;

use anyhow::{Context, anyhow};
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;
use aws_sdk_dynamodb::operation::update_item::{UpdateItemError, UpdateItemOutput};
use aws_sdk_dynamodb::types::{AttributeValue as Av, Delete, TransactWriteItem};
use filestore_contract::api::FileView;
use filestore_contract::domain::{FileId, FolderId, Tier, UploadId, UserId};
use time::OffsetDateTime;

use super::Repo;
use super::folders::Place;
use super::item::{
    Item, get_bool, get_parsed, get_s, get_time, get_u64, n, opt_s, rfc3339, rfc3339_millis, s,
};
use super::table::{Query, Tx};
use crate::keys::{self, Kind};

/// A user's file.
#[derive(Clone, Debug)]
pub struct FileRecord {
    pub user_id: UserId,
    pub file_id: FileId,
    pub name: String,
    /// The folder it is in; files written before folders existed are in the root.
    pub parent_id: FolderId,
    pub size: u64,
    pub sha256: Option<String>,
    pub declared_sha256: Option<String>,
    pub content_type: String,
    pub created_at: OffsetDateTime,
    pub object_key: String,
    /// The upload the file came from; `None` for an instant upload.
    pub upload_id: Option<UploadId>,
    pub copies: Copies,
    /// When the file was moved to the trash (to the millisecond: it names its trash entry);
    /// `None` while it is live.
    pub trashed_at: Option<OffsetDateTime>,
}

/// Where a file's bytes are. One value, so a verified file always has its cold copy and an
/// unverified one always its hot copy; the item's `verified`, `tier`, `sha1`, `cold_key` and
/// `hot_present` attributes are all written from it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Copies {
    /// Only the hot object (`object_key`), not yet read and hashed by the transfer.
    Unverified,
    /// The transfer read and hashed the bytes and they sit in the cold store.
    Verified {
        /// SHA-1 of the bytes (the seed's content key).
        sha1: String,
        /// The content's cold copy, shared by every file with these bytes.
        cold_key: String,
        /// Whether the hot copy is still kept (until the hot retention passes).
        hot_kept: bool,
    },
}

impl FileRecord {
    pub fn verified(&self) -> bool {
        matches!(self.copies, Copies::Verified { .. })
    }

    /// Whether the file is in the trash (and so a 404 to every route but the trash's).
    pub fn trashed(&self) -> bool {
        self.trashed_at.is_some()
    }

    /// `cold` once verified: the bytes are then served from the cold copy when the hot one
    /// is gone.
    pub fn tier(&self) -> Tier {
        match self.copies {
            Copies::Unverified => Tier::Hot,
            Copies::Verified { .. } => Tier::Cold,
        }
    }

    /// Whether the hot object still exists.
    pub fn hot_present(&self) -> bool {
        match self.copies {
            Copies::Unverified => true,
            Copies::Verified { hot_kept, .. } => hot_kept,
        }
    }

    pub fn view(&self) -> FileView {
        FileView {
            file_id: self.file_id.clone(),
            name: self.name.clone(),
            size: self.size,
            sha256: self.sha256.clone(),
            content_type: self.content_type.clone(),
            created_at: rfc3339(self.created_at),
            parent_id: self.parent_id.clone(),
            tier: self.tier(),
            verified: self.verified(),
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
            ("parent_id".into(), s(&f.parent_id)),
            ("size".into(), n(f.size)),
            ("content_type".into(), s(&f.content_type)),
            ("created_at".into(), s(rfc3339(f.created_at))),
            ("object_key".into(), s(&f.object_key)),
            ("tier".into(), s(f.tier().as_str())),
            ("verified".into(), Av::Bool(f.verified())),
            // An instant upload's file has none: stored as an empty string.
            (
                "upload_id".into(),
                s(f.upload_id.as_ref().map_or("", UploadId::as_str)),
            ),
        ]);
        if let Some(h) = &f.sha256 {
            item.insert("sha256".into(), s(h));
        }
        if let Some(h) = &f.declared_sha256 {
            item.insert("declared_sha256".into(), s(h));
        }
        if let Copies::Verified { sha1, cold_key, .. } = &f.copies {
            item.insert("sha1".into(), s(sha1));
            item.insert("cold_key".into(), s(cold_key));
        }
        item.insert("hot_present".into(), Av::Bool(f.hot_present()));
        if let Some(t) = f.trashed_at {
            item.insert("trashed_at".into(), s(rfc3339_millis(t)));
        }
        item
    }

    pub(super) fn file_from(item: &Item) -> anyhow::Result<FileRecord> {
        Ok(FileRecord {
            user_id: get_parsed(item, "user_id")?,
            file_id: get_parsed(item, "file_id")?,
            name: get_s(item, "name")?,
            parent_id: match item.get("parent_id") {
                Some(_) => get_parsed(item, "parent_id")?,
                None => FolderId::root(),
            },
            size: get_u64(item, "size")?,
            sha256: opt_s(item, "sha256"),
            declared_sha256: opt_s(item, "declared_sha256"),
            content_type: get_s(item, "content_type")?,
            created_at: get_time(item, "created_at")?,
            object_key: get_s(item, "object_key")?,
            upload_id: match get_s(item, "upload_id")?.as_str() {
                "" => None,
                id => Some(
                    UploadId::parse(id).map_err(|e| anyhow!("item attribute upload_id: {e}"))?,
                ),
            },
            copies: if get_bool(item, "verified") {
                Copies::Verified {
                    sha1: get_s(item, "sha1")?,
                    cold_key: get_s(item, "cold_key")?,
                    // Written by every version of the code; absent only if a write was partial.
                    hot_kept: !matches!(item.get("hot_present"), Some(Av::Bool(false))),
                }
            } else {
                Copies::Unverified
            },
            trashed_at: match item.get("trashed_at") {
                Some(_) => Some(get_time(item, "trashed_at")?),
                None => None,
            },
        })
    }

    /// # Errors
    /// DynamoDB failures or a malformed item.
    pub async fn get_file(
        &self,
        user_id: &UserId,
        file_id: &FileId,
    ) -> anyhow::Result<Option<FileRecord>> {
        self.get(keys::user_pk(user_id), &keys::file_sk(file_id))
            .await?
            .map(|item| Self::file_from(&item))
            .transpose()
    }

    /// Up to `limit` of the caller's live files after `after_file_id`, oldest first, and
    /// whether more follow. Trashed files are left out by the query's filter.
    ///
    /// # Errors
    /// DynamoDB failures or a malformed item.
    pub async fn list_files(
        &self,
        user_id: &UserId,
        limit: u32,
        after_file_id: Option<&FileId>,
    ) -> anyhow::Result<(Vec<FileRecord>, bool)> {
        let query = Query::prefix(keys::FILE_PREFIX)
            .after(after_file_id.map(keys::file_sk))
            .filter("attribute_not_exists(trashed_at)");
        let (items, more) = self.page(user_id, query, limit).await?;
        let files = items
            .iter()
            .map(Self::file_from)
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok((files, more))
    }

    /// Notes that a file's hot copy is gone; downloads then come from the cold copy.
    ///
    /// # Errors
    /// DynamoDB failures.
    pub async fn mark_hot_removed(&self, user_id: &UserId, file_id: &FileId) -> anyhow::Result<()> {
        let update = self
            .client
            .update_item()
            .update_expression("SET hot_present = :false REMOVE due_pk, due_at")
            .expression_attribute_values(":false", Av::Bool(false));
        self.update_file(
            user_id,
            file_id,
            update,
            "attribute_exists(PK)",
            "hot removed",
        )
        .await?;
        Ok(())
    }

    /// Sends `update` to the caller's file on `condition`; `None` if it is false.
    async fn update_file(
        &self,
        user_id: &UserId,
        file_id: &FileId,
        update: UpdateItemFluentBuilder,
        condition: &str,
        what: &str,
    ) -> anyhow::Result<Option<UpdateItemOutput>> {
        let result = update
            .table_name(&self.table)
            .key("PK", s(keys::user_pk(user_id)))
            .key("SK", s(keys::file_sk(file_id)))
            .condition_expression(condition)
            .send()
            .await;
        match result {
            Ok(out) => Ok(Some(out)),
            Err(e)
                if matches!(
                    e.as_service_error(),
                    Some(UpdateItemError::ConditionalCheckFailedException(_))
                ) =>
            {
                Ok(None)
            }
            Err(e) => Err(anyhow!(
                "DynamoDB UpdateItem ({what}): {}",
                e.message().unwrap_or("no message")
            )
            .context(format!("{e:?}"))),
        }
    }

    /// Deletes a file record and takes it off its owner's counters, all or nothing, releasing
    /// its content reference if it holds one: the v1 delete, which a purge now makes. The
    /// delete is conditioned on the state read (`verified`, and `trashed_at`, as in `file`),
    /// since whether a reference is released depends on it: a verification (or a restore)
    /// that committed since the read refuses it. With `entry` (the file's trash entry), the
    /// entry goes in the same transaction, on the condition that it is still there, and the
    /// file's bytes leave `trash_bytes`. Returns `false` if anything is no longer as read;
    /// the caller reads again.
    ///
    /// # Errors
    /// DynamoDB failures.
    pub(super) async fn delete_file(
        &self,
        file: &FileRecord,
        entry: Option<&super::TrashEntry>,
    ) -> anyhow::Result<bool> {
        let mut delete = Delete::builder()
            .table_name(&self.table)
            .key("PK", s(keys::user_pk(&file.user_id)))
            .key("SK", s(keys::file_sk(&file.file_id)))
            .expression_attribute_values(":verified", Av::Bool(file.verified()));
        delete = match file.trashed_at {
            Some(t) => delete
                .condition_expression(
                    "attribute_exists(PK) AND verified = :verified AND trashed_at = :trashed_at",
                )
                .expression_attribute_values(":trashed_at", s(rfc3339_millis(t))),
            None => delete.condition_expression(
                "attribute_exists(PK) AND verified = :verified AND attribute_not_exists(trashed_at)",
            ),
        };
        let trash = entry.map_or(0, |e| e.size as i128);
        let mut items = vec![
            TransactWriteItem::builder().delete(delete.build()?).build(),
            self.count_files(&file.user_id, -(file.size as i128), -1, -trash, None)?,
        ];
        if let Some(entry) = entry {
            items.push(self.delete_trash_entry(entry)?);
        }
        // The name is free again (a trashed file gave it up when it was trashed); last, so
        // the indexes below stay put.
        let name = match file.trashed_at {
            Some(_) => None,
            None => Some(self.release_name(
                &file.user_id,
                Kind::File,
                &Place {
                    parent: file.parent_id.clone(),
                    name: file.name.clone(),
                },
                file.file_id.as_str(),
            )?),
        };
        // A verified file holds a reference on its content; the janitor collects content
        // whose count reaches zero.
        let Copies::Verified { .. } = file.copies else {
            items.extend(name);
            return self.transact(items, "delete file").await;
        };
        let sha256 = file
            .sha256
            .as_deref()
            .context("a verified file has a hash")?;
        let release = items.len();
        items.push(self.release_reference(sha256)?);
        if file.size < super::content::UNSHARED_BELOW {
            items.push(self.hold_content(&file.user_id, sha256, -1)?);
        }
        items.extend(name);
        match self.transact_items(items.clone(), "delete file").await? {
            Tx::Done => Ok(true),
            Tx::Refused(i) if i == release => {
                // The content it references is gone (collected while this file pointed to
                // it): there is nothing left to release, and the file must still go.
                tracing::warn!(sha256, file_id = %file.file_id, "a verified file's content was missing");
                items.remove(release);
                self.transact(items, "delete file").await
            }
            Tx::Refused(_) => Ok(false),
        }
    }
}

/// A file record for unit tests, in the copy state given.
#[cfg(test)]
pub(super) fn fixture(copies: Copies) -> FileRecord {
    FileRecord {
        user_id: UserId::generate(),
        file_id: FileId::generate(),
        name: "n".into(),
        parent_id: FolderId::root(),
        size: 3,
        sha256: None,
        declared_sha256: None,
        content_type: "text/plain".into(),
        created_at: OffsetDateTime::UNIX_EPOCH,
        object_key: "k".into(),
        upload_id: Some(UploadId::generate()),
        copies,
        trashed_at: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every copy state is written and read back as itself, with the attributes older readers
    /// (and the janitor's filters) look at.
    #[test]
    fn copy_states_round_trip_through_the_item() {
        for copies in [
            Copies::Unverified,
            Copies::Verified {
                sha1: "s1".into(),
                cold_key: "blobs/f".into(),
                hot_kept: true,
            },
            Copies::Verified {
                sha1: "s1".into(),
                cold_key: "blobs/f".into(),
                hot_kept: false,
            },
        ] {
            let record = fixture(copies.clone());
            let item = Repo::file_item(&record);
            assert_eq!(item["tier"], s(record.tier().as_str()));
            assert_eq!(item["verified"], Av::Bool(record.verified()));
            assert_eq!(item["hot_present"], Av::Bool(record.hot_present()));
            assert_eq!(Repo::file_from(&item).unwrap().copies, copies);
        }
    }

    /// An item that says verified but names no cold copy is refused, not served half-read.
    #[test]
    fn a_verified_item_without_its_cold_copy_is_refused() {
        let mut item = Repo::file_item(&fixture(Copies::Verified {
            sha1: "s1".into(),
            cold_key: "blobs/f".into(),
            hot_kept: true,
        }));
        item.remove("cold_key");
        assert!(Repo::file_from(&item).is_err());
    }
}

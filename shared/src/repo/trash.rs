//! The trash. Trashing marks the one item trashed (`trashed_at` on its record) and writes a
//! trash entry (`TRASH#<millis>#<id>`) in its owner's partition, in one transaction with the
//! owner's `trash_bytes`; the record keeps its bytes, its content reference and its place in
//! `used_bytes` until it is purged. Restore undoes the three in one transaction; purge is the
//! v1 delete plus the entry. Both are conditioned on the entry still being there, so of a
//! restore and a purge of one item exactly one wins.
//!
//! The entry is in the `due` index (`DUE#TRASH#<shard>`, due at `purge_at`), where the janitor
//! finds the entries whose retention has passed.

use std::collections::HashMap;

use anyhow::Context;
use aws_sdk_dynamodb::types::{Delete, TransactWriteItem, Update};
use filestore_contract::api::TrashEntryView;
use filestore_contract::domain::{EntryType, FileId, UserId};
use time::OffsetDateTime;

use super::folders::{FolderRecord, Place};
use super::item::{Item, get_parsed, get_s, get_time, get_u64, n, rfc3339, rfc3339_millis, s};
use super::table::{Query, Tx};
use super::{FileRecord, Repo};
use crate::keys::{self, Due, Kind};

/// One item in the trash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrashEntry {
    pub user_id: UserId,
    pub entry_type: EntryType,
    /// The trashed file's or folder's id.
    pub id: String,
    pub name: String,
    /// A file's size; a folder's subtree's bytes when it was trashed.
    pub size: u64,
    pub original_parent_id: String,
    /// To the millisecond, as the entry's sort key and the item's `trashed_at` hold it.
    pub trashed_at: OffsetDateTime,
    pub purge_at: OffsetDateTime,
}

/// Epoch milliseconds, as trash keys hold them.
fn epoch_millis(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

impl TrashEntry {
    /// The entry's sort key.
    pub fn sk(&self) -> String {
        keys::trash_sk(epoch_millis(self.trashed_at), &self.id)
    }

    pub fn view(&self) -> TrashEntryView {
        TrashEntryView {
            entry_type: self.entry_type,
            id: self.id.clone(),
            name: self.name.clone(),
            size: self.size,
            original_parent_id: self.original_parent_id.clone(),
            trashed_at: rfc3339(self.trashed_at),
            purge_at: rfc3339(self.purge_at),
        }
    }
}

/// How a restore ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Restored {
    Done,
    /// The entry is gone (purged, or restored by another request) or the item changed.
    Gone,
    /// The target folder holds a file or folder of that name.
    NameTaken,
    /// The target folder is gone or trashed, or (restoring a folder) a folder on its chain
    /// moved since it was read.
    ParentGone,
}

impl Repo {
    fn trash_entry_item(e: &TrashEntry) -> Item {
        HashMap::from([
            ("PK".into(), s(keys::user_pk(&e.user_id))),
            ("SK".into(), s(e.sk())),
            ("user_id".into(), s(&e.user_id)),
            ("type".into(), s(e.entry_type.as_str())),
            ("id".into(), s(&e.id)),
            ("name".into(), s(&e.name)),
            ("size".into(), n(e.size)),
            ("original_parent_id".into(), s(&e.original_parent_id)),
            ("trashed_at".into(), s(rfc3339_millis(e.trashed_at))),
            ("purge_at".into(), s(rfc3339(e.purge_at))),
            ("due_pk".into(), s(Due::Trash.key(&e.id))),
            ("due_at".into(), s(rfc3339(e.purge_at))),
        ])
    }

    pub(super) fn trash_entry_from(item: &Item) -> anyhow::Result<TrashEntry> {
        let kind = get_s(item, "type")?;
        Ok(TrashEntry {
            user_id: get_parsed(item, "user_id")?,
            entry_type: EntryType::parse(&kind)
                .with_context(|| format!("a trash entry of type {kind:?}"))?,
            id: get_s(item, "id")?,
            name: get_s(item, "name")?,
            size: get_u64(item, "size")?,
            original_parent_id: get_s(item, "original_parent_id")?,
            trashed_at: get_time(item, "trashed_at")?,
            purge_at: get_time(item, "purge_at")?,
        })
    }

    /// Deletes a trash entry, on the condition that it is still there.
    pub(super) fn delete_trash_entry(&self, e: &TrashEntry) -> anyhow::Result<TransactWriteItem> {
        let delete = Delete::builder()
            .table_name(&self.table)
            .key("PK", s(keys::user_pk(&e.user_id)))
            .key("SK", s(e.sk()))
            .condition_expression("attribute_exists(PK)")
            .build()?;
        Ok(TransactWriteItem::builder().delete(delete).build())
    }

    /// Moves a live file to the trash as `entry` describes: marks the record, writes the
    /// entry and adds the size to `trash_bytes`, all or nothing, on the condition that the
    /// file is still live under the name and in the folder read (the entry shows them).
    /// `false` if it is not.
    ///
    /// # Errors
    /// DynamoDB failures.
    pub async fn trash_file(&self, file: &FileRecord, entry: &TrashEntry) -> anyhow::Result<bool> {
        let place = Place {
            parent: file.parent_id.clone(),
            name: file.name.clone(),
        };
        self.trash_item(Kind::File, &keys::file_sk(&file.file_id), &place, entry)
            .await
    }

    /// Moves a live folder to the trash as `entry` describes, as [`Self::trash_file`] does a
    /// file: only the folder is marked; everything below it is unreachable through it.
    ///
    /// # Errors
    /// DynamoDB failures.
    pub async fn trash_folder(
        &self,
        folder: &FolderRecord,
        entry: &TrashEntry,
    ) -> anyhow::Result<bool> {
        let place = Place {
            parent: folder.parent_id.clone(),
            name: folder.name.clone(),
        };
        self.trash_item(
            Kind::Folder,
            &keys::folder_sk(&folder.folder_id),
            &place,
            entry,
        )
        .await
    }

    /// Marks the item `sk` trashed, writes its entry, counts it in `trash_bytes` and frees
    /// its name, on the condition that it is live at `place` as read.
    async fn trash_item(
        &self,
        kind: Kind,
        sk: &str,
        place: &Place,
        entry: &TrashEntry,
    ) -> anyhow::Result<bool> {
        // Files written before folders carry no parent: they are in the root.
        let same_parent = if kind == Kind::File && place.parent.is_root() {
            "(parent_id = :parent OR attribute_not_exists(parent_id))"
        } else {
            "parent_id = :parent"
        };
        let mark = Update::builder()
            .table_name(&self.table)
            .key("PK", s(keys::user_pk(&entry.user_id)))
            .key("SK", s(sk))
            .update_expression("SET trashed_at = :trashed_at")
            .condition_expression(format!(
                "attribute_exists(PK) AND attribute_not_exists(trashed_at) AND \
                 attribute_not_exists(purging) AND #name = :name AND {same_parent}"
            ))
            .expression_attribute_names("#name", "name")
            .expression_attribute_values(":trashed_at", s(rfc3339_millis(entry.trashed_at)))
            .expression_attribute_values(":name", s(&place.name))
            .expression_attribute_values(":parent", s(&place.parent))
            .build()?;
        // The name is free from now on: the item gives up its child entry.
        self.transact(
            vec![
                TransactWriteItem::builder().update(mark).build(),
                self.put(Self::trash_entry_item(entry), "attribute_not_exists(PK)")?,
                self.count_files(&entry.user_id, 0, 0, entry.size.into(), None)?,
                self.release_name(&entry.user_id, kind, place, &entry.id)?,
            ],
            "trash",
        )
        .await
    }

    /// The trash entry of an item trashed at `trashed_at`.
    ///
    /// # Errors
    /// DynamoDB failures or a malformed item.
    pub async fn get_trash_entry(
        &self,
        user_id: &UserId,
        trashed_at: OffsetDateTime,
        id: &str,
    ) -> anyhow::Result<Option<TrashEntry>> {
        self.get(
            keys::user_pk(user_id),
            &keys::trash_sk(epoch_millis(trashed_at), id),
        )
        .await?
        .map(|item| Self::trash_entry_from(&item))
        .transpose()
    }

    /// Up to `limit` of the caller's trash entries after the one keyed `after_sk`, newest
    /// first, and whether more follow.
    ///
    /// # Errors
    /// DynamoDB failures or a malformed item.
    pub async fn list_trash(
        &self,
        user_id: &UserId,
        limit: u32,
        after_sk: Option<&str>,
    ) -> anyhow::Result<(Vec<TrashEntry>, bool)> {
        let query = Query::prefix(keys::TRASH_PREFIX)
            .after(after_sk.map(str::to_string))
            .newest_first();
        let (items, more) = self.page(user_id, query, limit).await?;
        let entries = items
            .iter()
            .map(Self::trash_entry_from)
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok((entries, more))
    }

    /// Takes a trashed file out of the trash into the folder and under the name `to`: deletes
    /// its entry (on the condition that it is still there, which a purge deletes too),
    /// unmarks the record (as trashed at the entry's time), takes its size off
    /// `trash_bytes` and claims the name in the folder (checked live), all or nothing.
    ///
    /// # Errors
    /// DynamoDB failures.
    pub async fn restore_file(
        &self,
        file: &FileRecord,
        entry: &TrashEntry,
        to: &Place,
    ) -> anyhow::Result<Restored> {
        let target = self
            .folder_live_check(&entry.user_id, &to.parent)?
            .into_iter()
            .collect();
        self.restore_item(Kind::File, &keys::file_sk(&file.file_id), entry, to, target)
            .await
    }

    /// Takes a trashed folder, with everything below it, out of the trash, as
    /// [`Self::restore_file`] does a file. A folder whose purge began has no entry left.
    /// Its subtree deepens every folder of the target's chain (`to_chain`, as read, the
    /// target last): each must still be live where it was read, and counts one more change
    /// below it ([`Self::chain_bumps`]), so the depth checked on that read holds.
    ///
    /// # Errors
    /// DynamoDB failures.
    pub async fn restore_folder(
        &self,
        folder: &FolderRecord,
        entry: &TrashEntry,
        to: &Place,
        to_chain: &[FolderRecord],
    ) -> anyhow::Result<Restored> {
        let target = self.chain_bumps(&entry.user_id, to_chain)?;
        let sk = keys::folder_sk(&folder.folder_id);
        self.restore_item(Kind::Folder, &sk, entry, to, target)
            .await
    }

    /// The restore's transaction; `target` are the checks on the folder it goes into.
    async fn restore_item(
        &self,
        kind: Kind,
        sk: &str,
        entry: &TrashEntry,
        to: &Place,
        target: Vec<TransactWriteItem>,
    ) -> anyhow::Result<Restored> {
        let user_id = &entry.user_id;
        let unmark = Update::builder()
            .table_name(&self.table)
            .key("PK", s(keys::user_pk(user_id)))
            .key("SK", s(sk))
            .condition_expression("trashed_at = :trashed_at AND attribute_not_exists(purging)")
            .expression_attribute_values(":trashed_at", s(rfc3339_millis(entry.trashed_at)))
            .update_expression("REMOVE trashed_at SET #name = :name, parent_id = :parent")
            .expression_attribute_names("#name", "name")
            .expression_attribute_values(":name", s(&to.name))
            .expression_attribute_values(":parent", s(&to.parent))
            .build()?;
        let mut items = vec![
            self.delete_trash_entry(entry)?,
            TransactWriteItem::builder().update(unmark).build(),
            self.count_files(user_id, 0, 0, -i128::from(entry.size), None)?,
        ];
        items.extend(self.claim_name(user_id, kind, to, &entry.id)?);
        items.extend(target);
        let tx = self.transact_items(items, "restore").await?;
        Ok(match tx {
            Tx::Done => Restored::Done,
            Tx::Refused(3 | 4) => Restored::NameTaken,
            Tx::Refused(5..) => Restored::ParentGone,
            Tx::Refused(_) => Restored::Gone,
        })
    }

    /// Purges a trashed file: the v1 delete of its record (counters, content reference) and
    /// its entry, in one transaction; `None` when the file is gone or no longer trashed as
    /// the entry says (restored, or purged by another request).
    ///
    /// # Errors
    /// DynamoDB failures, or a file that keeps changing.
    pub async fn purge_file(&self, entry: &TrashEntry) -> anyhow::Result<Option<FileRecord>> {
        let file_id = FileId::parse(&entry.id).map_err(anyhow::Error::msg)?;
        // A file changes copy state once (verification); a third read sees it settled.
        for _ in 0..3 {
            let Some(file) = self.get_file(&entry.user_id, &file_id).await? else {
                return Ok(None);
            };
            if file.trashed_at != Some(entry.trashed_at) {
                return Ok(None);
            }
            if self.delete_file(&file, Some(entry)).await? {
                return Ok(Some(file));
            }
        }
        Err(anyhow::anyhow!(
            "file {file_id} kept changing while purging it"
        ))
    }
}

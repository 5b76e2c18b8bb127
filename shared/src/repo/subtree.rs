//! A folder's subtree, walked a page of child entries at a time: the bytes it holds (a
//! trashed folder's `size`), and the steps of its purge. Nothing here holds a whole subtree:
//! a walk keeps one page per level, and a purge removes what it has done from the listing
//! it reads next, so each step is found again only if it did not commit.
//!
//! A purge marks the folder `purging` and puts it in the `due` index (`DUE#PURGE#<shard>`,
//! due at once) in the transaction that deletes its trash entry; from then on it can no
//! longer be restored, nothing can be put into it, and the janitor finds it again if the
//! purge stops halfway. Each child goes in its own conditional step: a file by the v1
//! delete (counters, content reference, child entry), a folder by becoming `purging` and due
//! itself (its child entry deleted in the same transaction). The folder's record goes last,
//! when no child entry is left.

use aws_sdk_dynamodb::types::{Delete, TransactWriteItem, Update};
use filestore_contract::domain::{FileId, FolderId, UserId};
use time::OffsetDateTime;

use super::folders::{FolderRecord, MAX_DEPTH};
use super::item::{Item, get_parsed, get_s, get_u64, rfc3339, rfc3339_millis, s};
use super::table::Query;
use super::{FileRecord, Repo, TrashEntry};
use crate::keys::{self, Due, Kind};

/// Child entries read per page of a walk or a purge.
pub const SUBTREE_PAGE: u32 = 100;

/// One child entry: the name's key and the file or folder holding it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChildRef {
    pub sk: String,
    pub kind: Kind,
    pub id: String,
}

/// A folder of a walk: its subfolders from the page read last, and where its listing goes on.
struct Level {
    folder: FolderId,
    subfolders: Vec<FolderId>,
    after: Option<String>,
    done: bool,
}

impl Level {
    fn new(folder: FolderId) -> Self {
        Self {
            folder,
            subfolders: Vec::new(),
            after: None,
            done: false,
        }
    }
}

impl Repo {
    /// Up to `limit` child entries of `folder` after the entry `after`, and where the next
    /// page starts (`None` on the last).
    ///
    /// # Errors
    /// DynamoDB failures or a malformed entry.
    pub async fn child_refs(
        &self,
        user_id: &UserId,
        folder: &FolderId,
        limit: u32,
        after: Option<String>,
    ) -> anyhow::Result<(Vec<ChildRef>, Option<String>)> {
        let prefix = keys::children_prefix(folder);
        let (items, more) = self
            .query(user_id, Query::prefix(&prefix).limit(limit).after(after))
            .await?;
        let mut refs = Vec::with_capacity(items.len());
        for item in &items {
            let sk = get_s(item, "SK")?;
            let (kind, _) = keys::parse_child_sk(folder, &sk)
                .ok_or_else(|| anyhow::anyhow!("a child entry out of its folder: {sk}"))?;
            refs.push(ChildRef {
                id: get_s(item, "id")?,
                sk,
                kind,
            });
        }
        let next = more.then(|| refs.last().map(|r| r.sk.clone())).flatten();
        Ok((refs, next))
    }

    /// The bytes of the live files below `folder`, at any depth: one page of child entries
    /// at a time, the files of each page read in one `BatchGetItem`, one page per level held
    /// at once. Files and folders trashed on their own have no child entry, so they are not
    /// counted: their own trash entries count them.
    ///
    /// # Errors
    /// DynamoDB failures, a malformed item, or a subtree deeper than folders may nest.
    pub async fn subtree_bytes(&self, user_id: &UserId, folder: &FolderId) -> anyhow::Result<u64> {
        let mut total = 0u64;
        let mut levels = vec![Level::new(folder.clone())];
        while let Some(level) = levels.last_mut() {
            if let Some(sub) = level.subfolders.pop() {
                if levels.len() > MAX_DEPTH + 1 {
                    anyhow::bail!("folder {folder} holds folders more than {MAX_DEPTH} deep");
                }
                levels.push(Level::new(sub));
                continue;
            }
            if level.done {
                levels.pop();
                continue;
            }
            let (refs, next) = self
                .child_refs(user_id, &level.folder, SUBTREE_PAGE, level.after.take())
                .await?;
            level.done = next.is_none();
            level.after = next;
            let mut files = Vec::new();
            for child in refs {
                match child.kind {
                    Kind::Folder => level.subfolders.push(parse_id(&child.id)?),
                    Kind::File => files.push(keys::file_sk(&parse_id::<FileId>(&child.id)?)),
                }
            }
            for item in self.batch_get(user_id, files).await?.values() {
                total += get_u64(item, "size")?;
            }
        }
        Ok(total)
    }

    /// Begins the purge of a trashed folder: deletes its trash entry (on the condition that
    /// it is still there, which a restore deletes too), takes its size off `trash_bytes`,
    /// and marks the folder `purging` and due, all or nothing. `false` when the entry is
    /// gone (restored, or purged by another request) or the folder is not as read.
    ///
    /// # Errors
    /// DynamoDB failures.
    pub async fn begin_folder_purge(
        &self,
        folder: &FolderRecord,
        entry: &TrashEntry,
        now: OffsetDateTime,
    ) -> anyhow::Result<bool> {
        let mark = self
            .mark_purging(&folder.user_id, &folder.folder_id, now)
            .condition_expression("trashed_at = :trashed_at AND attribute_not_exists(purging)")
            .expression_attribute_values(":trashed_at", s(rfc3339_millis(entry.trashed_at)))
            .build()?;
        self.transact(
            vec![
                self.delete_trash_entry(entry)?,
                self.count_files(&folder.user_id, 0, 0, -i128::from(entry.size), None)?,
                TransactWriteItem::builder().update(mark).build(),
            ],
            "begin folder purge",
        )
        .await
    }

    /// The update that makes a folder `purging` and due for the janitor now.
    fn mark_purging(
        &self,
        user_id: &UserId,
        folder: &FolderId,
        now: OffsetDateTime,
    ) -> aws_sdk_dynamodb::types::builders::UpdateBuilder {
        Update::builder()
            .table_name(&self.table)
            .key("PK", s(keys::user_pk(user_id)))
            .key("SK", s(keys::folder_sk(folder)))
            .update_expression("SET purging = :true, due_pk = :due_pk, due_at = :due_at")
            .expression_attribute_values(
                ":true",
                aws_sdk_dynamodb::types::AttributeValue::Bool(true),
            )
            .expression_attribute_values(":due_pk", s(Due::Purge.key(folder.as_str())))
            .expression_attribute_values(":due_at", s(rfc3339(now)))
    }

    /// A subfolder of a purging folder becomes a purge of its own: marked `purging` and due,
    /// its child entry in `parent` deleted, in one transaction conditioned on both being as
    /// listed. `false` if they are not (another purge of the same folder took this step).
    ///
    /// # Errors
    /// DynamoDB failures.
    pub async fn purge_subfolder(
        &self,
        user_id: &UserId,
        parent: &FolderId,
        child: &ChildRef,
        now: OffsetDateTime,
    ) -> anyhow::Result<bool> {
        let folder: FolderId = parse_id(&child.id)?;
        let mark = self
            .mark_purging(user_id, &folder, now)
            .condition_expression(
                "attribute_exists(PK) AND parent_id = :parent AND attribute_not_exists(purging)",
            )
            .expression_attribute_values(":parent", s(parent))
            .build()?;
        self.transact(
            vec![
                TransactWriteItem::builder().update(mark).build(),
                self.delete_child_entry(user_id, child)?,
            ],
            "purge subfolder",
        )
        .await
    }

    /// Deletes a child entry, on the condition that it still names the same item (or is
    /// gone already).
    fn delete_child_entry(
        &self,
        user_id: &UserId,
        child: &ChildRef,
    ) -> anyhow::Result<TransactWriteItem> {
        let delete = Delete::builder()
            .table_name(&self.table)
            .key("PK", s(keys::user_pk(user_id)))
            .key("SK", s(&child.sk))
            .condition_expression("attribute_not_exists(SK) OR id = :id")
            .expression_attribute_values(":id", s(&child.id))
            .build()?;
        Ok(TransactWriteItem::builder().delete(delete).build())
    }

    /// Drops a child entry whose item is gone or not in that folder (so the purge listing it
    /// can go on). `false` if it changed meanwhile.
    ///
    /// # Errors
    /// DynamoDB failures.
    pub async fn drop_child_entry(
        &self,
        user_id: &UserId,
        child: &ChildRef,
    ) -> anyhow::Result<bool> {
        self.transact(
            vec![self.delete_child_entry(user_id, child)?],
            "drop child entry",
        )
        .await
    }

    /// Purges a live file listed in a purging folder: the v1 delete (counters, content
    /// reference and its child entry, all or nothing). `None` when the file is gone or in
    /// the trash on its own (its own entry purges it).
    ///
    /// # Errors
    /// DynamoDB failures, or a file that keeps changing.
    pub async fn purge_listed_file(
        &self,
        user_id: &UserId,
        file_id: &FileId,
    ) -> anyhow::Result<Option<FileRecord>> {
        // A file changes copy state once (verification); a third read sees it settled.
        for _ in 0..3 {
            let Some(file) = self.get_file(user_id, file_id).await? else {
                return Ok(None);
            };
            if file.trashed() {
                return Ok(None);
            }
            if self.delete_file(&file, None).await? {
                return Ok(Some(file));
            }
        }
        Err(anyhow::anyhow!(
            "file {file_id} kept changing while purging it"
        ))
    }

    /// Deletes a purging folder's record once nothing is listed in it. Nothing can be put
    /// into a purging folder (every write that does checks that it is live), so an empty
    /// listing stays empty. `false` if it is gone already.
    ///
    /// # Errors
    /// DynamoDB failures.
    pub async fn delete_purged_folder(
        &self,
        user_id: &UserId,
        folder: &FolderId,
    ) -> anyhow::Result<bool> {
        let delete = Delete::builder()
            .table_name(&self.table)
            .key("PK", s(keys::user_pk(user_id)))
            .key("SK", s(keys::folder_sk(folder)))
            .condition_expression("attribute_exists(purging)")
            .build()?;
        self.transact(
            vec![TransactWriteItem::builder().delete(delete).build()],
            "delete purged folder",
        )
        .await
    }

    /// Folders whose purge began, due at or before `now`: the owner and the folder.
    ///
    /// # Errors
    /// DynamoDB failures or a malformed item.
    pub async fn purges_due(&self, now: OffsetDateTime) -> anyhow::Result<Vec<(UserId, FolderId)>> {
        self.due(Due::Purge, now)
            .await?
            .iter()
            .map(|item: &Item| Ok((get_parsed(item, "user_id")?, get_parsed(item, "folder_id")?)))
            .collect()
    }
}

/// A stored id, which was valid when it was written.
fn parse_id<T: TryFrom<String, Error = String>>(id: &str) -> anyhow::Result<T> {
    T::try_from(id.to_string()).map_err(anyhow::Error::msg)
}

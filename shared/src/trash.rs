//! The trash as the functions use it, on top of the repository: moving a file or a folder to
//! the trash, finding a trashed item by its id, and purging an entry (the table, then the hot
//! objects), which the trash function and the janitor share.

use std::time::Duration;

use filestore_contract::domain::{EntryType, FileId, FolderId, UserId};

use crate::keys::Kind;
use crate::purge::{Budget, Purged};
use time::OffsetDateTime;

use crate::repo::{FileRecord, FolderRecord, TrashEntry, to_millis};
use crate::{ApiError, AppState};

/// A trashed item, as read with its entry.
#[derive(Clone, Debug)]
pub enum Trashed {
    File(FileRecord),
    Folder(FolderRecord),
}

/// Attempts at a write whose item keeps changing between the read and the write.
const ATTEMPTS: usize = 3;

/// How long a request purging a folder goes on before it leaves the rest to the janitor,
/// well inside API Gateway's 30 seconds.
pub const REQUEST_PURGE_TIME: Duration = Duration::from_secs(20);

impl AppState {
    /// The trash entry of an item trashed now, kept for the trash retention.
    fn new_entry(
        &self,
        user_id: &UserId,
        entry_type: EntryType,
        id: &str,
        name: &str,
        size: u64,
        parent: &FolderId,
    ) -> TrashEntry {
        let now = to_millis(OffsetDateTime::now_utc());
        TrashEntry {
            user_id: user_id.clone(),
            entry_type,
            id: id.to_string(),
            name: name.to_string(),
            size,
            original_parent_id: parent.to_string(),
            trashed_at: now,
            purge_at: now + self.config.trash_retention,
        }
    }

    /// Moves the caller's live file to the trash; it keeps its bytes and its place in
    /// `used_bytes` until purged, at the latest after the trash retention.
    ///
    /// # Errors
    /// 404 when the caller has no live file with this id; repository failures.
    pub async fn trash_file(&self, user_id: &UserId, file_id: &FileId) -> Result<(), ApiError> {
        for _ in 0..ATTEMPTS {
            let file = self.owned_file(user_id, file_id).await?;
            let entry = self.new_entry(
                user_id,
                EntryType::File,
                file_id.as_str(),
                &file.name,
                file.size,
                &file.parent_id,
            );
            // Refused: trashed by another request (the next read says 404) or renamed since
            // the read (the next one has the new name).
            if self.repo.trash_file(&file, &entry).await? {
                return Ok(());
            }
        }
        Err(anyhow::anyhow!("file {file_id} kept changing while trashing it").into())
    }

    /// Moves the caller's live folder, and with it everything below it, to the trash. Only
    /// the folder is marked; its entry's `size` is the bytes of the live files below it,
    /// summed a page at a time before the mark.
    ///
    /// # Errors
    /// 400 `root_folder` for the root; 404 when the caller has no live folder with this id;
    /// repository failures.
    pub async fn trash_folder(
        &self,
        user_id: &UserId,
        folder_id: &FolderId,
    ) -> Result<(), ApiError> {
        if folder_id.is_root() {
            return Err(ApiError::bad_input(
                "root_folder",
                "the root folder cannot be deleted",
            ));
        }
        for _ in 0..ATTEMPTS {
            let Some(folder) = self.live_folder(user_id, folder_id).await?.pop() else {
                return Err(ApiError::NotFound("folder"));
            };
            let size = self.repo.subtree_bytes(user_id, folder_id).await?;
            let entry = self.new_entry(
                user_id,
                EntryType::Folder,
                folder_id.as_str(),
                &folder.name,
                size,
                &folder.parent_id,
            );
            // Refused: trashed by another request, or renamed or moved since the read.
            if self.repo.trash_folder(&folder, &entry).await? {
                return Ok(());
            }
        }
        Err(anyhow::anyhow!("folder {folder_id} kept changing while trashing it").into())
    }

    /// Makes room for `on_conflict: replace`: the live file named `name` in `parent` goes to
    /// the trash. `false` when the name is a folder's, or no file holds it any more.
    ///
    /// # Errors
    /// Repository failures.
    pub async fn replace_file(
        &self,
        user_id: &UserId,
        parent: &FolderId,
        name: &str,
    ) -> Result<bool, ApiError> {
        let Some(id) = self
            .repo
            .child_id(user_id, parent, Kind::File, name)
            .await?
        else {
            return Ok(false);
        };
        let file_id = FileId::parse(&id).map_err(anyhow::Error::msg)?;
        match self.trash_file(user_id, &file_id).await {
            Ok(()) => Ok(true),
            Err(ApiError::NotFound(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The caller's trashed item with this id (a file's or a folder's), with its trash
    /// entry. Only items trashed by themselves have one.
    ///
    /// # Errors
    /// 404 when the caller has no item with this id in the trash; repository failures.
    pub async fn trashed(
        &self,
        user_id: &UserId,
        id: &str,
    ) -> Result<(TrashEntry, Trashed), ApiError> {
        let gone = || ApiError::NotFound("trash entry");
        let (file_id, folder_id) = (
            FileId::parse(id).map_err(|_| gone())?,
            FolderId::parse(id).map_err(|_| gone())?,
        );
        let (file, folder) = tokio::try_join!(
            self.repo.get_file(user_id, &file_id),
            self.repo.get_folder(user_id, &folder_id),
        )?;
        let (trashed_at, item) = match (file, folder) {
            (Some(file), _) => (file.trashed_at, Trashed::File(file)),
            (None, Some(folder)) if !folder.purging => (folder.trashed_at, Trashed::Folder(folder)),
            _ => return Err(gone()),
        };
        let Some(trashed_at) = trashed_at else {
            return Err(gone());
        };
        match self.repo.get_trash_entry(user_id, trashed_at, id).await? {
            Some(entry) => Ok((entry, item)),
            None => Err(gone()),
        }
    }

    /// Purges a trash entry and what it holds: bytes, quota and content references are
    /// released as a v1 delete released them. A folder's purge goes on below it until
    /// `budget` runs out, and the janitor finishes what is left. `None` if the entry was
    /// restored or purged meanwhile (nothing was done); else what the folder's purge did
    /// (nothing for a file).
    ///
    /// # Errors
    /// Repository failures. A hot object left behind is only logged: nothing names it any more.
    pub async fn purge(
        &self,
        entry: &TrashEntry,
        budget: &mut Budget,
    ) -> anyhow::Result<Option<Purged>> {
        match entry.entry_type {
            EntryType::File => {
                let Some(file) = self.repo.purge_file(entry).await? else {
                    return Ok(None);
                };
                self.drop_hot_copy(&file).await;
                tracing::info!(file_id = %file.file_id, "file purged");
                Ok(Some(Purged::default()))
            }
            EntryType::Folder => {
                let folder_id = FolderId::parse(&entry.id).map_err(anyhow::Error::msg)?;
                let Some(folder) = self.repo.get_folder(&entry.user_id, &folder_id).await? else {
                    return Ok(None);
                };
                let now = OffsetDateTime::now_utc();
                if folder.trashed_at != Some(entry.trashed_at)
                    || !self.repo.begin_folder_purge(&folder, entry, now).await?
                {
                    return Ok(None);
                }
                tracing::info!(%folder_id, "folder purge begun");
                Ok(Some(
                    self.purge_folder(&entry.user_id, &folder_id, budget)
                        .await?,
                ))
            }
        }
    }

    /// Deletes a purged file's hot object. The record is gone, so the bytes are unreachable;
    /// a failed delete only leaks storage.
    pub(crate) async fn drop_hot_copy(&self, file: &FileRecord) {
        if file.hot_present()
            && let Err(e) = self.storage.delete_object(&file.object_key).await
        {
            tracing::warn!(error = format!("{e:#}"), key = %file.object_key, "object left behind");
        }
    }
}

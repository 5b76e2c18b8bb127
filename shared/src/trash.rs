//! The trash as the functions use it, on top of the repository: moving a file to the trash,
//! finding a trashed item by its id, and purging an entry (the table, then the hot object),
//! which the trash function and the janitor share.

use filestore_contract::domain::{EntryType, FileId, FolderId, UserId};

use crate::keys::Kind;
use time::OffsetDateTime;

use crate::repo::{FileRecord, TrashEntry, to_millis};
use crate::{ApiError, AppState};

/// A trashed item, as read with its entry.
#[derive(Clone, Debug)]
pub enum Trashed {
    File(FileRecord),
}

/// Attempts at a write whose item keeps changing between the read and the write.
const ATTEMPTS: usize = 3;

impl AppState {
    /// Moves the caller's live file to the trash; it keeps its bytes and its place in
    /// `used_bytes` until purged, at the latest after the trash retention.
    ///
    /// # Errors
    /// 404 when the caller has no live file with this id; repository failures.
    pub async fn trash_file(&self, user_id: &UserId, file_id: &FileId) -> Result<(), ApiError> {
        for _ in 0..ATTEMPTS {
            let file = self.owned_file(user_id, file_id).await?;
            let now = to_millis(OffsetDateTime::now_utc());
            let entry = TrashEntry {
                user_id: user_id.clone(),
                entry_type: EntryType::File,
                id: file_id.to_string(),
                name: file.name.clone(),
                size: file.size,
                original_parent_id: file.parent_id.to_string(),
                trashed_at: now,
                purge_at: now + self.config.trash_retention,
            };
            // Refused: trashed by another request (the next read says 404) or renamed since
            // the read (the next one has the new name).
            if self.repo.trash_file(&file, &entry).await? {
                return Ok(());
            }
        }
        Err(anyhow::anyhow!("file {file_id} kept changing while trashing it").into())
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

    /// The caller's trashed item with this id, with its trash entry. Only items trashed by
    /// themselves have one.
    ///
    /// # Errors
    /// 404 when the caller has no item with this id in the trash; repository failures.
    pub async fn trashed(
        &self,
        user_id: &UserId,
        id: &str,
    ) -> Result<(TrashEntry, Trashed), ApiError> {
        let gone = ApiError::NotFound("trash entry");
        let file_id = FileId::parse(id).map_err(|_| ApiError::NotFound("trash entry"))?;
        let Some(file) = self.repo.get_file(user_id, &file_id).await? else {
            return Err(gone);
        };
        let Some(trashed_at) = file.trashed_at else {
            return Err(gone);
        };
        match self.repo.get_trash_entry(user_id, trashed_at, id).await? {
            Some(entry) => Ok((entry, Trashed::File(file))),
            None => Err(gone),
        }
    }

    /// Purges a trash entry and what it holds: bytes, quota and content references are
    /// released as a v1 delete released them. `false` if the entry was restored or purged
    /// meanwhile (nothing was done).
    ///
    /// # Errors
    /// Repository failures. A hot object left behind is only logged: nothing names it any more.
    pub async fn purge(&self, entry: &TrashEntry) -> anyhow::Result<bool> {
        match entry.entry_type {
            EntryType::File => {
                let Some(file) = self.repo.purge_file(entry).await? else {
                    return Ok(false);
                };
                // The record is gone, so the bytes are unreachable; a failed delete only
                // leaks storage.
                if file.hot_present()
                    && let Err(e) = self.storage.delete_object(&file.object_key).await
                {
                    tracing::warn!(error = format!("{e:#}"), key = %file.object_key, "object left behind");
                }
                tracing::info!(file_id = %file.file_id, "file purged");
                Ok(true)
            }
            EntryType::Folder => Err(anyhow::anyhow!("folders cannot be purged yet")),
        }
    }
}

//! Which files and folders are live. Trashing a folder marks only that folder, so whether
//! something below it is live is a walk up its parent chain: an item is live iff it is not
//! trashed and every folder on its chain exists and is neither trashed nor being purged.
//! [`LiveFolders`] remembers what one request learnt on the way, so a page of files that
//! share folders costs one read per folder, not one walk per file.

use std::collections::HashMap;

use filestore_contract::domain::{FileId, FolderId, UserId};

use crate::repo::{FileRecord, MAX_DEPTH, Repo};
use crate::{ApiError, AppState};

/// What one request knows about its caller's folders: live or not, read at most once each.
pub struct LiveFolders<'a> {
    repo: &'a Repo,
    user_id: &'a UserId,
    known: HashMap<FolderId, bool>,
}

impl<'a> LiveFolders<'a> {
    pub fn new(repo: &'a Repo, user_id: &'a UserId) -> Self {
        Self {
            repo,
            user_id,
            known: HashMap::new(),
        }
    }

    /// Whether `folder` is live: the root always is; another folder if it and every folder
    /// above it are stored and not trashed. One read per folder not met before.
    ///
    /// # Errors
    /// DynamoDB failures, a malformed item, or a parent chain that loops.
    pub async fn folder(&mut self, folder: &FolderId) -> anyhow::Result<bool> {
        let mut walked = Vec::new();
        let mut next = folder.clone();
        let live = loop {
            if next.is_root() {
                break true;
            }
            if let Some(&known) = self.known.get(&next) {
                break known;
            }
            if walked.len() > MAX_DEPTH {
                anyhow::bail!("folder {folder} is more than {MAX_DEPTH} deep");
            }
            let record = self.repo.get_folder(self.user_id, &next).await?;
            walked.push(next.clone());
            match record {
                Some(f) if !f.trashed() => next = f.parent_id,
                _ => break false,
            }
        };
        // Everything on the way shares the answer: a folder below one that is not live is not
        // live either.
        for f in walked {
            self.known.insert(f, live);
        }
        Ok(live)
    }

    /// Whether a file is live: not trashed itself, and in a live folder.
    ///
    /// # Errors
    /// As [`Self::folder`].
    pub async fn file(&mut self, file: &FileRecord) -> anyhow::Result<bool> {
        Ok(!file.trashed() && self.folder(&file.parent_id).await?)
    }
}

impl AppState {
    /// The caller's live file; a 404 if they have none with this id, it is in the trash, or
    /// a folder above it is.
    ///
    /// # Errors
    /// 404, or a repository failure.
    pub async fn owned_file(
        &self,
        user_id: &UserId,
        file_id: &FileId,
    ) -> Result<FileRecord, ApiError> {
        let Some(file) = self.repo.get_file(user_id, file_id).await? else {
            return Err(ApiError::NotFound("file"));
        };
        if !LiveFolders::new(&self.repo, user_id).file(&file).await? {
            return Err(ApiError::NotFound("file"));
        }
        Ok(file)
    }

    /// Up to `limit` of the caller's live files after `after`, oldest first, and whether
    /// more follow. Pages are filled to `limit` past files in trashed folders.
    ///
    /// # Errors
    /// Repository failures.
    pub async fn list_live_files(
        &self,
        user_id: &UserId,
        limit: u32,
        after: Option<&FileId>,
    ) -> anyhow::Result<(Vec<FileRecord>, bool)> {
        let mut live = LiveFolders::new(&self.repo, user_id);
        let mut files = Vec::new();
        let mut after = after.cloned();
        loop {
            // Only as many as the page still lacks: if all are live, the page ends at the
            // last one read, which is then the cursor.
            let want = limit - files.len() as u32;
            let (page, more) = self.repo.list_files(user_id, want, after.as_ref()).await?;
            after = page.last().map(|f| f.file_id.clone());
            for file in page {
                if live.file(&file).await? {
                    files.push(file);
                }
            }
            if !more || files.len() == limit as usize {
                return Ok((files, more));
            }
        }
    }
}

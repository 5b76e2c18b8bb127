//! A folder's purge, a step at a time: each file below it by the v1 delete (quota, counters
//! and content reference released exactly once, then its hot object), each subfolder by
//! becoming a purge of its own, gone into at once, and each folder's record once nothing is
//! listed in it. Every step is conditional, so two purges of one folder (a request and the
//! janitor) never release anything twice, and one that stops (out of [`Budget`], or killed)
//! leaves every unfinished folder `purging` in the `due` index, where the janitor's next
//! sweep finds it and goes on. The walk holds the folders from the purge's start down to
//! where it is and one page of child entries, never the subtree.

use std::time::Instant;

use filestore_contract::domain::{FileId, FolderId, UserId};
use time::OffsetDateTime;

use crate::AppState;
use crate::keys::Kind;
use crate::repo::{ChildRef, SUBTREE_PAGE};

/// How much one run may do before it stops: a number of steps (a file purged, a subfolder
/// marked, a folder's record deleted), a deadline, or neither.
#[derive(Clone, Debug)]
pub struct Budget {
    steps: Option<u64>,
    deadline: Option<Instant>,
}

impl Budget {
    /// No limit.
    pub fn unlimited() -> Self {
        Self {
            steps: None,
            deadline: None,
        }
    }

    /// At most `n` steps.
    pub fn steps(n: u64) -> Self {
        Self {
            steps: Some(n),
            deadline: None,
        }
    }

    /// Until `deadline`.
    pub fn until(deadline: Instant) -> Self {
        Self {
            steps: None,
            deadline: Some(deadline),
        }
    }

    /// Takes one step; `false` when none is left.
    pub fn take(&mut self) -> bool {
        if self.deadline.is_some_and(|d| Instant::now() >= d) {
            return false;
        }
        match &mut self.steps {
            Some(0) => false,
            Some(n) => {
                *n -= 1;
                true
            }
            None => true,
        }
    }

    /// Whether it ran out.
    pub fn spent(&self) -> bool {
        self.steps == Some(0) || self.deadline.is_some_and(|d| Instant::now() >= d)
    }
}

/// What a purge run did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Purged {
    pub files: u64,
    pub folders: u64,
    /// Everything below the folder is gone, and the folder too.
    pub finished: bool,
}

impl AppState {
    /// Goes on with the purge of `folder` (already `purging`) and everything below it, until
    /// it is done or `budget` runs out.
    ///
    /// # Errors
    /// Repository failures; a failed step is taken again by the next run.
    pub async fn purge_folder(
        &self,
        user_id: &UserId,
        folder: &FolderId,
        budget: &mut Budget,
    ) -> anyhow::Result<Purged> {
        let mut purged = Purged::default();
        // The folders from `folder` down to the one being emptied.
        let mut path = vec![folder.clone()];
        'levels: while let Some(current) = path.last().cloned() {
            // What was purged is no longer listed, so each page starts at the beginning.
            let (children, _) = self
                .repo
                .child_refs(user_id, &current, SUBTREE_PAGE, None)
                .await?;
            if children.is_empty() {
                if !budget.take() {
                    return Ok(purged);
                }
                if self.repo.delete_purged_folder(user_id, &current).await? {
                    purged.folders += 1;
                }
                path.pop();
                continue;
            }
            let mut progressed = false;
            for child in &children {
                if !budget.take() {
                    return Ok(purged);
                }
                match child.kind {
                    Kind::File => {
                        progressed |= self.purge_child_file(user_id, child, &mut purged).await?
                    }
                    Kind::Folder => {
                        if self
                            .repo
                            .purge_subfolder(user_id, &current, child, OffsetDateTime::now_utc())
                            .await?
                        {
                            let sub = FolderId::parse(&child.id).map_err(anyhow::Error::msg)?;
                            path.push(sub);
                            continue 'levels;
                        }
                        // Another purge marked it first, or the entry names no folder here.
                        progressed |= self
                            .drop_stale_folder_entry(user_id, &current, child)
                            .await?;
                    }
                }
            }
            if !progressed {
                anyhow::bail!("the purge of folder {current} makes no progress");
            }
        }
        purged.finished = true;
        Ok(purged)
    }

    /// Purges a file listed in a purging folder; `true` if its child entry is gone.
    async fn purge_child_file(
        &self,
        user_id: &UserId,
        child: &ChildRef,
        purged: &mut crate::purge::Purged,
    ) -> anyhow::Result<bool> {
        let file_id = FileId::parse(&child.id).map_err(anyhow::Error::msg)?;
        match self.repo.purge_listed_file(user_id, &file_id).await? {
            Some(file) => {
                self.drop_hot_copy(&file).await;
                purged.files += 1;
                Ok(true)
            }
            // Gone, or in the trash on its own: the entry names nothing to purge here.
            None => {
                self.repo.drop_child_entry(user_id, child).await?;
                Ok(true)
            }
        }
    }

    /// After a subfolder's mark was refused: if the folder it names is not in `parent` (gone,
    /// or elsewhere), the entry is stale and goes; if it is already purging, another purge
    /// took the step. `true` either way, unless the entry changed meanwhile.
    async fn drop_stale_folder_entry(
        &self,
        user_id: &UserId,
        parent: &FolderId,
        child: &ChildRef,
    ) -> anyhow::Result<bool> {
        let sub = FolderId::parse(&child.id).map_err(anyhow::Error::msg)?;
        match self.repo.get_folder(user_id, &sub).await? {
            Some(f) if f.parent_id == *parent && !f.purging => Ok(false),
            Some(f) if f.purging => Ok(true),
            _ => self.repo.drop_child_entry(user_id, child).await,
        }
    }
}

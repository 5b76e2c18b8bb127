//! Renaming and moving folders and files: one transaction each, which sets the record's name
//! and parent (conditioned on the place read), gives up the old name's child entry, claims the
//! new one and checks that the target is live, so a move never lands in a trashed folder,
//! never takes a taken name, never nests a folder in itself, and never passes the depth
//! limit together with a concurrent write.

use aws_sdk_dynamodb::types::{TransactWriteItem, Update};
use filestore_contract::domain::UserId;

use super::folders::{FolderRecord, Place, Placed, SUBTREE_VERSION};
use super::item::{n, s};
use super::table::Tx;
use super::{FileRecord, Repo};
use crate::keys::{self, Kind};

impl Repo {
    /// Renames and/or moves a folder as read (`folder`) to `to`, in one transaction: the
    /// record (conditioned on the name and parent read, and not trashed), the old child entry
    /// out, the new one in, and every folder of `to_chain` (the target's chain, root first,
    /// the target last) still live with the parent read. Of two moves that would nest two
    /// folders in each other, the second thus finds a chain changed and reads again, and
    /// then sees the cycle.
    ///
    /// A move to another folder is also conditioned on the folder's
    /// [`FolderRecord::subtree_version`] as read, before the caller measured its subtree's
    /// height, and counts one more change on every folder of `to_chain`
    /// ([`Repo::chain_bumps`]): whatever deepened the subtree since (a folder created, moved
    /// or restored into it) refuses the move, and a concurrent move of a folder above the
    /// target is refused in turn. So the depth checked from what was read holds when written.
    ///
    /// # Errors
    /// DynamoDB failures.
    pub async fn move_folder(
        &self,
        folder: &FolderRecord,
        to: &Place,
        to_chain: &[FolderRecord],
    ) -> anyhow::Result<Placed<FolderRecord>> {
        let user_id = &folder.user_id;
        let from = Place {
            parent: folder.parent_id.clone(),
            name: folder.name.clone(),
        };
        let moved = to.parent != from.parent;
        let mut condition = "#name = :old_name AND parent_id = :old_parent AND \
             attribute_not_exists(trashed_at) AND attribute_not_exists(purging)"
            .to_string();
        let version = moved.then_some(folder.subtree_version);
        match version {
            Some(0) => condition.push_str(" AND attribute_not_exists(#version)"),
            Some(_) => condition.push_str(" AND #version = :version"),
            None => {}
        }
        let update = self.move_update(
            user_id,
            keys::folder_sk(&folder.folder_id),
            &from,
            to,
            condition,
            version,
        )?;
        let id = folder.folder_id.as_str();
        let mut items = vec![update, self.release_name(user_id, Kind::Folder, &from, id)?];
        items.extend(self.claim_name(user_id, Kind::Folder, to, id)?);
        if moved {
            items.extend(self.chain_bumps(user_id, to_chain)?);
        } else {
            items.extend(self.chain_checks(user_id, to_chain)?);
        }
        Ok(match self.transact_items(items, "move folder").await? {
            Tx::Done => Placed::Done(FolderRecord {
                name: to.name.clone(),
                parent_id: to.parent.clone(),
                ..folder.clone()
            }),
            Tx::Refused(2 | 3) => Placed::NameTaken,
            Tx::Refused(_) => Placed::Stale,
        })
    }

    /// Renames and/or moves a file as read to `to`, in one transaction: the record
    /// (conditioned on the name and folder read, and not trashed), the old child entry out,
    /// the new one in, and a check that the target folder is live.
    ///
    /// # Errors
    /// DynamoDB failures.
    pub async fn move_file(
        &self,
        file: &FileRecord,
        to: &Place,
    ) -> anyhow::Result<Placed<FileRecord>> {
        let user_id = &file.user_id;
        let from = Place {
            parent: file.parent_id.clone(),
            name: file.name.clone(),
        };
        // Files written before folders existed carry no parent: they are in the root.
        let same_parent = if from.parent.is_root() {
            "(parent_id = :old_parent OR attribute_not_exists(parent_id))"
        } else {
            "parent_id = :old_parent"
        };
        let update = self.move_update(
            user_id,
            keys::file_sk(&file.file_id),
            &from,
            to,
            format!(
                "attribute_exists(PK) AND #name = :old_name AND {same_parent} AND \
                 attribute_not_exists(trashed_at)"
            ),
            None,
        )?;
        let id = file.file_id.as_str();
        let mut items = vec![update, self.release_name(user_id, Kind::File, &from, id)?];
        items.extend(self.claim_name(user_id, Kind::File, to, id)?);
        items.extend(self.folder_live_check(user_id, &to.parent)?);
        Ok(match self.transact_items(items, "move file").await? {
            Tx::Done => Placed::Done(FileRecord {
                name: to.name.clone(),
                parent_id: to.parent.clone(),
                ..file.clone()
            }),
            Tx::Refused(2 | 3) => Placed::NameTaken,
            Tx::Refused(4) => Placed::ParentGone,
            Tx::Refused(_) => Placed::Stale,
        })
    }

    /// The update that sets a record's name and parent to `to`, on `condition` (which names
    /// the place read as `#name`, `:old_name` and `:old_parent`, and a folder's
    /// `subtree_version` as `#version` and `:version`, given as `version`).
    fn move_update(
        &self,
        user_id: &UserId,
        sk: String,
        from: &Place,
        to: &Place,
        condition: String,
        version: Option<u64>,
    ) -> anyhow::Result<TransactWriteItem> {
        let mut update = Update::builder();
        if let Some(version) = version {
            update = update.expression_attribute_names("#version", SUBTREE_VERSION);
            if version > 0 {
                update = update.expression_attribute_values(":version", n(version));
            }
        }
        let update = update
            .table_name(&self.table)
            .key("PK", s(keys::user_pk(user_id)))
            .key("SK", s(sk))
            .update_expression("SET #name = :name, parent_id = :parent")
            .condition_expression(condition)
            .expression_attribute_names("#name", "name")
            .expression_attribute_values(":name", s(&to.name))
            .expression_attribute_values(":parent", s(&to.parent))
            .expression_attribute_values(":old_name", s(&from.name))
            .expression_attribute_values(":old_parent", s(&from.parent))
            .build()?;
        Ok(TransactWriteItem::builder().update(update).build())
    }
}

//! Folders and the namespace: folder records and their chains of parents, and the child
//! entries that make names unique per folder (one `CHILD#<parent>#<kind>#<name>` per live
//! file or folder, written in the same transaction as the item it names). Listing a folder is
//! in `listing`, renaming and moving in `moves`.
//!
//! The root folder (`"root"`) is never stored: it is every user's, always live, and has no
//! record. Everything else is live iff it is not trashed and every folder on its parent chain
//! exists and is not trashed; [`Repo::live_chain`] walks that chain.

use std::collections::{HashMap, HashSet};

use anyhow::anyhow;
use aws_sdk_dynamodb::types::{ConditionCheck, Delete, TransactWriteItem, Update};
use filestore_contract::api::{Ancestor, FolderView};
use filestore_contract::domain::{FolderId, OnConflict, UserId};
use time::OffsetDateTime;

use super::item::{Item, get_parsed, get_s, get_time, get_u64, n, rfc3339, s};
use super::table::{Query, Tx};
use super::{FileRecord, Repo};
use crate::keys::{self, Kind};

/// Most folders on the way from the root to any folder (the root not counted).
pub const MAX_DEPTH: usize = 64;

/// The attribute of [`FolderRecord::subtree_version`].
pub(super) const SUBTREE_VERSION: &str = "subtree_version";

/// Attempts at a free numbered name (`name (n).ext`) before giving up under contention.
const NAME_ATTEMPTS: usize = 20;

/// A user's folder (never the root, which is not stored).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FolderRecord {
    pub user_id: UserId,
    pub folder_id: FolderId,
    pub name: String,
    pub parent_id: FolderId,
    pub created_at: OffsetDateTime,
    /// When this folder itself was moved to the trash (to the millisecond: it names its
    /// trash entry); `None` otherwise, also when a folder above it was.
    pub trashed_at: Option<OffsetDateTime>,
    /// Its purge began: it goes, with everything below it, and cannot be restored.
    pub purging: bool,
    /// Counts the writes that may have deepened what is below it (a folder created, moved
    /// or restored anywhere in its subtree; absent: 0). A move of this folder is written on
    /// the condition that it is still the one read before the subtree's height was, so no
    /// two concurrent writes together pass [`MAX_DEPTH`].
    pub subtree_version: u64,
}

impl FolderRecord {
    /// Trashed itself, or being purged: not live, nor is anything below it.
    pub fn trashed(&self) -> bool {
        self.trashed_at.is_some() || self.purging
    }

    pub fn view(&self) -> FolderView {
        FolderView {
            folder_id: self.folder_id.clone(),
            name: self.name.clone(),
            parent_id: Some(self.parent_id.clone()),
            created_at: rfc3339(self.created_at),
        }
    }

    pub fn ancestor(&self) -> Ancestor {
        Ancestor {
            folder_id: self.folder_id.clone(),
            name: self.name.clone(),
        }
    }
}

/// The root folder as the contract shows it: no name, no parent, made with the account.
pub fn root_view(user_created_at: OffsetDateTime) -> FolderView {
    FolderView {
        folder_id: FolderId::root(),
        name: String::new(),
        parent_id: None,
        created_at: rfc3339(user_created_at),
    }
}

/// One entry of a folder's listing.
#[derive(Clone, Debug)]
pub enum Child {
    Folder(FolderRecord),
    File(FileRecord),
}

/// How a write that gives something a name in a folder ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Placed<T> {
    Done(T),
    /// The name is used by a file or folder in that folder; nothing was written.
    NameTaken,
    /// The target folder is gone or trashed; nothing was written.
    ParentGone,
    /// The item is no longer as read (changed, trashed or gone), or a folder on the target's
    /// chain moved: read again and decide again.
    Stale,
}

/// `report.pdf` -> `report (n).pdf`; a leading dot is part of the stem (`.env (1)`). The stem
/// is shortened (at a character boundary) if the result would pass the 255-byte limit.
pub fn numbered_name(name: &str, n: u32) -> String {
    let split = name.rfind('.').filter(|&i| i > 0).unwrap_or(name.len());
    let (stem, ext) = name.split_at(split);
    let suffix = format!(" ({n}){ext}");
    let room = filestore_contract::domain::FileName::MAX_BYTES.saturating_sub(suffix.len());
    let mut cut = stem.len().min(room);
    while !stem.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}{suffix}", &stem[..cut])
}

/// Where an item's name sits: the folder and the name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Place {
    pub parent: FolderId,
    pub name: String,
}

impl Repo {
    fn folder_item(f: &FolderRecord) -> Item {
        HashMap::from([
            ("PK".into(), s(keys::user_pk(&f.user_id))),
            ("SK".into(), s(keys::folder_sk(&f.folder_id))),
            ("user_id".into(), s(&f.user_id)),
            ("folder_id".into(), s(&f.folder_id)),
            ("name".into(), s(&f.name)),
            ("parent_id".into(), s(&f.parent_id)),
            ("created_at".into(), s(rfc3339(f.created_at))),
        ])
    }

    pub(super) fn folder_from(item: &Item) -> anyhow::Result<FolderRecord> {
        Ok(FolderRecord {
            user_id: get_parsed(item, "user_id")?,
            folder_id: get_parsed(item, "folder_id")?,
            name: get_s(item, "name")?,
            parent_id: get_parsed(item, "parent_id")?,
            created_at: get_time(item, "created_at")?,
            trashed_at: match item.get("trashed_at") {
                Some(_) => Some(get_time(item, "trashed_at")?),
                None => None,
            },
            purging: item.contains_key("purging"),
            subtree_version: match item.get(SUBTREE_VERSION) {
                Some(_) => get_u64(item, SUBTREE_VERSION)?,
                None => 0,
            },
        })
    }

    /// The write items that give `id` the name `place` as a `kind`: its child entry (refused
    /// if taken) and a check that no item of the other kind has the name. [`Self::name_refusal`]
    /// reads a refusal at these two positions.
    pub(super) fn claim_name(
        &self,
        user_id: &UserId,
        kind: Kind,
        place: &Place,
        id: &str,
    ) -> anyhow::Result<Vec<TransactWriteItem>> {
        let pk = keys::user_pk(user_id);
        let entry: Item = HashMap::from([
            ("PK".into(), s(&pk)),
            (
                "SK".into(),
                s(keys::child_sk(&place.parent, kind, &place.name)),
            ),
            ("id".into(), s(id)),
        ]);
        let other = ConditionCheck::builder()
            .table_name(&self.table)
            .key("PK", s(&pk))
            .key(
                "SK",
                s(keys::child_sk(&place.parent, kind.other(), &place.name)),
            )
            .condition_expression("attribute_not_exists(SK)")
            .build()?;
        Ok(vec![
            self.put(entry, "attribute_not_exists(SK)")?,
            TransactWriteItem::builder().condition_check(other).build(),
        ])
    }

    /// The write items that put a new file in its folder under its name: the name claimed
    /// ([`Self::claim_name`]) and the folder checked live, in that order.
    pub(super) fn place_file(&self, file: &FileRecord) -> anyhow::Result<Vec<TransactWriteItem>> {
        let place = Place {
            parent: file.parent_id.clone(),
            name: file.name.clone(),
        };
        let mut items =
            self.claim_name(&file.user_id, Kind::File, &place, file.file_id.as_str())?;
        items.extend(self.folder_live_check(&file.user_id, &file.parent_id)?);
        Ok(items)
    }

    /// A check that `folder` is still stored and not trashed; `None` for the root, which
    /// always is.
    pub(super) fn folder_live_check(
        &self,
        user_id: &UserId,
        folder: &FolderId,
    ) -> anyhow::Result<Option<TransactWriteItem>> {
        if folder.is_root() {
            return Ok(None);
        }
        let check = ConditionCheck::builder()
            .table_name(&self.table)
            .key("PK", s(keys::user_pk(user_id)))
            .key("SK", s(keys::folder_sk(folder)))
            .condition_expression(
                "attribute_exists(SK) AND attribute_not_exists(trashed_at) AND \
                 attribute_not_exists(purging)",
            )
            .build()?;
        Ok(Some(
            TransactWriteItem::builder().condition_check(check).build(),
        ))
    }

    /// A check on every folder of `chain` (as [`Self::live_chain`] read it) that it is still
    /// live under the parent read, so a transaction built on that read fails if any folder
    /// on the way was trashed or moved meanwhile.
    pub(super) fn chain_checks(
        &self,
        user_id: &UserId,
        chain: &[FolderRecord],
    ) -> anyhow::Result<Vec<TransactWriteItem>> {
        self.chain_items(user_id, chain, false)
    }

    /// An update of every folder of `chain` (as [`Self::live_chain`] read it), on the same
    /// condition as [`Self::chain_checks`], that counts one more change below it in its
    /// [`FolderRecord::subtree_version`]: what a write that may deepen the subtree of every
    /// folder on the chain (a folder created, moved or restored at its end) carries, so a
    /// concurrent move of any of them, conditioned on the version it read, is refused.
    pub(super) fn chain_bumps(
        &self,
        user_id: &UserId,
        chain: &[FolderRecord],
    ) -> anyhow::Result<Vec<TransactWriteItem>> {
        self.chain_items(user_id, chain, true)
    }

    /// [`Self::chain_checks`], or with `count` [`Self::chain_bumps`].
    fn chain_items(
        &self,
        user_id: &UserId,
        chain: &[FolderRecord],
        count: bool,
    ) -> anyhow::Result<Vec<TransactWriteItem>> {
        const LIVE_UNDER_PARENT_READ: &str = "parent_id = :parent AND \
             attribute_not_exists(trashed_at) AND attribute_not_exists(purging)";
        let pk = s(keys::user_pk(user_id));
        chain
            .iter()
            .map(|link| {
                let sk = s(keys::folder_sk(&link.folder_id));
                let parent = s(&link.parent_id);
                Ok(if count {
                    let bump = Update::builder()
                        .table_name(&self.table)
                        .key("PK", pk.clone())
                        .key("SK", sk)
                        .update_expression("ADD #version :one")
                        .condition_expression(LIVE_UNDER_PARENT_READ)
                        .expression_attribute_names("#version", SUBTREE_VERSION)
                        .expression_attribute_values(":one", n(1))
                        .expression_attribute_values(":parent", parent)
                        .build()?;
                    TransactWriteItem::builder().update(bump).build()
                } else {
                    let check = ConditionCheck::builder()
                        .table_name(&self.table)
                        .key("PK", pk.clone())
                        .key("SK", sk)
                        .condition_expression(LIVE_UNDER_PARENT_READ)
                        .expression_attribute_values(":parent", parent)
                        .build()?;
                    TransactWriteItem::builder().condition_check(check).build()
                })
            })
            .collect()
    }

    /// Releases an item's child entry, on the condition that it is still this item's (an
    /// entry a file written before entries existed never had is no refusal).
    pub(super) fn release_name(
        &self,
        user_id: &UserId,
        kind: Kind,
        place: &Place,
        id: &str,
    ) -> anyhow::Result<TransactWriteItem> {
        let delete = Delete::builder()
            .table_name(&self.table)
            .key("PK", s(keys::user_pk(user_id)))
            .key("SK", s(keys::child_sk(&place.parent, kind, &place.name)))
            .condition_expression("attribute_not_exists(SK) OR id = :id")
            .expression_attribute_values(":id", s(id))
            .build()?;
        Ok(TransactWriteItem::builder().delete(delete).build())
    }

    /// The caller's folder record, trashed or not; `None` for the root and unknown ids.
    ///
    /// # Errors
    /// DynamoDB failures or a malformed item.
    pub async fn get_folder(
        &self,
        user_id: &UserId,
        folder_id: &FolderId,
    ) -> anyhow::Result<Option<FolderRecord>> {
        if folder_id.is_root() {
            return Ok(None);
        }
        self.get(keys::user_pk(user_id), &keys::folder_sk(folder_id))
            .await?
            .map(|item| Self::folder_from(&item))
            .transpose()
    }

    /// The folders from the root down to `folder_id` (itself last; empty for the root), if
    /// it is live: every one of them stored and not trashed. `None` otherwise. One read per
    /// folder, at most [`MAX_DEPTH`] + 1.
    ///
    /// # Errors
    /// DynamoDB failures, a malformed item, or a parent chain that loops.
    pub async fn live_chain(
        &self,
        user_id: &UserId,
        folder_id: &FolderId,
    ) -> anyhow::Result<Option<Vec<FolderRecord>>> {
        let mut chain = Vec::new();
        let mut next = folder_id.clone();
        while !next.is_root() {
            if chain.len() > MAX_DEPTH {
                return Err(anyhow!("folder {folder_id} is more than {MAX_DEPTH} deep"));
            }
            let Some(folder) = self.get_folder(user_id, &next).await? else {
                return Ok(None);
            };
            if folder.trashed() {
                return Ok(None);
            }
            next = folder.parent_id.clone();
            chain.push(folder);
        }
        chain.reverse();
        Ok(Some(chain))
    }

    /// Creates a folder in `folder.parent_id` under `folder.name`: the record, its child
    /// entry, a check that the name is free of files too, and every folder of the parent's
    /// chain (`chain`, as read, the parent last) still live where it was read, with one more
    /// change below it ([`Self::chain_bumps`]), in one transaction. [`Placed::Stale`] when
    /// a folder of the chain moved or went meanwhile: read the chain again.
    ///
    /// # Errors
    /// DynamoDB failures.
    pub async fn create_folder(
        &self,
        folder: &FolderRecord,
        chain: &[FolderRecord],
    ) -> anyhow::Result<Placed<()>> {
        let place = Place {
            parent: folder.parent_id.clone(),
            name: folder.name.clone(),
        };
        let mut items = vec![self.put(Self::folder_item(folder), "attribute_not_exists(PK)")?];
        items.extend(self.claim_name(
            &folder.user_id,
            Kind::Folder,
            &place,
            folder.folder_id.as_str(),
        )?);
        items.extend(self.chain_bumps(&folder.user_id, chain)?);
        Ok(match self.transact_items(items, "create folder").await? {
            Tx::Done => Placed::Done(()),
            Tx::Refused(1 | 2) => Placed::NameTaken,
            Tx::Refused(_) => Placed::Stale,
        })
    }

    /// Whether a file or folder named `name` is in `parent` (two strongly consistent reads).
    ///
    /// # Errors
    /// DynamoDB failures.
    pub async fn name_in_use(
        &self,
        user_id: &UserId,
        parent: &FolderId,
        name: &str,
    ) -> anyhow::Result<bool> {
        let pk = keys::user_pk(user_id);
        let (as_folder, as_file) = (
            keys::child_sk(parent, Kind::Folder, name),
            keys::child_sk(parent, Kind::File, name),
        );
        let (folder, file) = tokio::try_join!(
            self.get(pk.clone(), &as_folder),
            self.get(pk.clone(), &as_file),
        )?;
        Ok(folder.is_some() || file.is_some())
    }

    /// The first `name (n).ext` not used in `parent` by a file or a folder, from one query of
    /// each kind's numbered names. A concurrent write may take it first: the caller's write is
    /// conditional and asks again.
    ///
    /// # Errors
    /// DynamoDB failures.
    pub async fn free_name(
        &self,
        user_id: &UserId,
        parent: &FolderId,
        name: &str,
    ) -> anyhow::Result<String> {
        let probe = numbered_name(name, 1);
        let stem_end = probe.rfind(" (1)").unwrap_or(probe.len());
        let prefix = format!("{} (", &probe[..stem_end]);
        let mut taken = HashSet::new();
        for kind in [Kind::Folder, Kind::File] {
            let siblings = keys::child_sk(parent, kind, &prefix);
            let (items, _) = self.query(user_id, Query::prefix(&siblings)).await?;
            for item in items {
                let sk = get_s(&item, "SK")?;
                if let Some((_, taken_name)) = keys::parse_child_sk(parent, &sk) {
                    taken.insert(taken_name.to_string());
                }
            }
        }
        Ok((1..)
            .map(|n| numbered_name(name, n))
            .find(|candidate| !taken.contains(candidate))
            .expect("some number is free"))
    }

    /// Runs `write` with the name asked and, while its outcome is `taken` and `on_conflict`
    /// is `rename`, again with a free numbered name until one sticks. `replace` stops at a
    /// taken name like `fail`: the caller trashes the file holding it and writes again.
    pub(super) async fn with_free_name<R, F, Fut>(
        &self,
        user_id: &UserId,
        parent: &FolderId,
        name: &str,
        on_conflict: OnConflict,
        taken: fn(&R) -> bool,
        mut write: F,
    ) -> anyhow::Result<(R, String)>
    where
        F: FnMut(String) -> Fut,
        Fut: std::future::Future<Output = anyhow::Result<R>>,
    {
        let mut candidate = name.to_string();
        for _ in 0..NAME_ATTEMPTS {
            let outcome = write(candidate.clone()).await?;
            if !(taken(&outcome) && on_conflict == OnConflict::Rename) {
                return Ok((outcome, candidate));
            }
            candidate = self.free_name(user_id, parent, name).await?;
        }
        Err(anyhow!(
            "no free name like {name:?} after {NAME_ATTEMPTS} attempts"
        ))
    }
}

/// Whether an attribute value is a string equal to `value` (for tests of stored items).
#[cfg(test)]
fn is_s(v: Option<&aws_sdk_dynamodb::types::AttributeValue>, value: &str) -> bool {
    matches!(v, Some(aws_sdk_dynamodb::types::AttributeValue::S(x)) if x == value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbered_names_keep_the_extension() {
        assert_eq!(numbered_name("report.pdf", 1), "report (1).pdf");
        assert_eq!(numbered_name("report.pdf", 12), "report (12).pdf");
        assert_eq!(numbered_name("notes", 2), "notes (2)");
        assert_eq!(numbered_name(".env", 1), ".env (1)");
        assert_eq!(numbered_name("a.tar.gz", 1), "a.tar (1).gz");
    }

    /// A numbered name never passes the byte limit: the stem gives way, whole characters only.
    #[test]
    fn numbered_names_stay_within_255_bytes() {
        let long = format!("{}.txt", "é".repeat(125));
        let named = numbered_name(&long, 3);
        assert!(named.len() <= 255, "{}", named.len());
        assert!(named.ends_with(" (3).txt"));
        assert!(filestore_contract::domain::FileName::parse(&named).is_ok());
    }

    #[test]
    fn folder_records_round_trip_through_the_item() {
        let folder = FolderRecord {
            user_id: UserId::generate(),
            folder_id: FolderId::generate(),
            name: "docs".into(),
            parent_id: FolderId::root(),
            created_at: OffsetDateTime::UNIX_EPOCH,
            trashed_at: None,
            purging: false,
            subtree_version: 0,
        };
        let item = Repo::folder_item(&folder);
        assert!(is_s(item.get("parent_id"), "root"));
        assert_eq!(Repo::folder_from(&item).unwrap(), folder);
        let mut trashed = item.clone();
        trashed.insert("trashed_at".into(), s("2026-01-01T00:00:00.123Z"));
        assert!(Repo::folder_from(&trashed).unwrap().trashed());
        let mut purging = item.clone();
        purging.insert(
            "purging".into(),
            aws_sdk_dynamodb::types::AttributeValue::Bool(true),
        );
        assert!(Repo::folder_from(&purging).unwrap().trashed());
        let mut changed = item.clone();
        changed.insert(SUBTREE_VERSION.into(), n(3));
        assert_eq!(Repo::folder_from(&changed).unwrap().subtree_version, 3);
    }
}

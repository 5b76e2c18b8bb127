//! User profiles: signup (the profile and its username claim, in one transaction), reads by
//! id and by name, and the file counters (`used_bytes`, `file_count`, `trash_bytes`) with the
//! quota as their condition, which every write that adds, trashes or removes a file moves.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::builders::UpdateBuilder;
use aws_sdk_dynamodb::types::{TransactWriteItem, Update};
use filestore_contract::domain::UserId;
use time::OffsetDateTime;

use super::Repo;
use super::item::{Item, get_parsed, get_s, get_time, get_u64, n, rfc3339, s};
use super::table::Tx;
use crate::keys;

/// The quota condition on a profile, with `:room` the quota less the bytes being added: a
/// profile without `claimed_bytes` (written before it existed) claims just its `used_bytes`.
const CLAIM_FITS: &str = "(claimed_bytes <= :room \
     OR (attribute_not_exists(claimed_bytes) AND used_bytes <= :room))";

/// A user's profile.
#[derive(Clone, Debug)]
pub struct UserRecord {
    pub user_id: UserId,
    pub username: String,
    pub password_hash: String,
    pub created_at: OffsetDateTime,
    pub used_bytes: u64,
    /// `used_bytes` plus the declared sizes of open uploads: what counts against the quota.
    pub claimed_bytes: u64,
    /// Uploads created and not yet completed, aborted or expired (and released).
    pub open_uploads: u64,
    pub file_count: u64,
    /// Bytes of the user's trashed files, part of `used_bytes` until purged.
    pub trash_bytes: u64,
    pub token_version: u64,
    /// A per-user quota; `None` follows `FILESTORE_QUOTA_BYTES`.
    pub quota_bytes: Option<u64>,
}

/// How an upload whose size was reserved leaves the counters.
pub(super) enum UploadEnd {
    /// It ended without a File (aborted, expired, or its bytes unusable): what the
    /// reservation took is given back.
    Released,
    /// It became a File: its bytes move from reserved to used, so `claimed_bytes` stays as
    /// it is and needs no quota condition (the reservation passed it at create).
    Completed,
}

/// How adding a file to a user's account ended.
#[derive(Debug, PartialEq, Eq)]
pub enum AddFile {
    Added,
    /// The user's bytes would pass their quota; nothing was written.
    OverQuota,
    /// A file or folder of that name is in the target folder; nothing was written.
    NameTaken,
    /// The target folder is gone or trashed; nothing was written.
    ParentGone,
    /// Another condition of the write was false (see the caller); nothing was written.
    Refused,
}

impl AddFile {
    /// Reads a transaction whose counter update is at `counter_index`, followed by the name
    /// claim (two items) and the target folder's check, if any.
    pub(super) fn from_tx(tx: Tx, counter_index: usize) -> Self {
        match tx {
            Tx::Done => Self::Added,
            Tx::Refused(i) if i == counter_index => Self::OverQuota,
            Tx::Refused(i) if i == counter_index + 1 || i == counter_index + 2 => Self::NameTaken,
            Tx::Refused(i) if i == counter_index + 3 => Self::ParentGone,
            Tx::Refused(_) => Self::Refused,
        }
    }

    pub(super) fn is_name_taken(&self) -> bool {
        *self == Self::NameTaken
    }
}

impl Repo {
    /// The update of a user's profile counters, on the condition that the profile exists.
    fn profile_update(&self, user_id: &UserId, expression: &str) -> UpdateBuilder {
        Update::builder()
            .table_name(&self.table)
            .key("PK", s(keys::user_pk(user_id)))
            .key("SK", s(keys::PROFILE_SK))
            .update_expression(expression)
            .condition_expression("attribute_exists(PK)")
    }

    /// Adds `bytes` and `files` to a user's counters, and `trash` to the bytes in their trash
    /// (negative to take away). One update, since a transaction writes an item only once.
    /// With a `quota`, refused when the user's claimed bytes would pass it.
    ///
    /// `claimed_bytes` is everything counted against the quota: `used_bytes` plus the
    /// declared sizes of open uploads. It moves with `used_bytes` here; a profile written
    /// before it existed starts it from `used_bytes` (`if_not_exists`), in the same update.
    /// DynamoDB conditions cannot add, so the room left is computed here: the transaction's
    /// condition makes the check and the addition one atomic step under concurrent writes.
    pub(super) fn count_files(
        &self,
        user_id: &UserId,
        bytes: i128,
        files: i64,
        trash: i128,
        quota: Option<u64>,
    ) -> anyhow::Result<TransactWriteItem> {
        let mut update = self
            .profile_update(
                user_id,
                "SET claimed_bytes = if_not_exists(claimed_bytes, used_bytes) + :bytes, \
                 used_bytes = used_bytes + :bytes, file_count = file_count + :files, \
                 trash_bytes = if_not_exists(trash_bytes, :zero) + :trash",
            )
            .expression_attribute_values(":bytes", n(bytes))
            .expression_attribute_values(":files", n(files))
            .expression_attribute_values(":trash", n(trash))
            .expression_attribute_values(":zero", n(0));
        if let Some(quota) = quota {
            update = update
                .condition_expression(format!("attribute_exists(PK) AND {CLAIM_FITS}"))
                .expression_attribute_values(":room", n(i128::from(quota) - bytes));
        }
        Ok(TransactWriteItem::builder().update(update.build()?).build())
    }

    /// Reserves an upload's declared `size` against the quota and counts it as open, refused
    /// when the claimed bytes would pass `quota` or `max_open` uploads are already open.
    pub(super) fn reserve_upload(
        &self,
        user_id: &UserId,
        size: u64,
        quota: u64,
        max_open: u64,
    ) -> anyhow::Result<TransactWriteItem> {
        let update = self
            .profile_update(
                user_id,
                "SET claimed_bytes = if_not_exists(claimed_bytes, used_bytes) + :size, \
                 open_uploads = if_not_exists(open_uploads, :zero) + :one",
            )
            .condition_expression(format!(
                "attribute_exists(PK) AND {CLAIM_FITS} \
                 AND (attribute_not_exists(open_uploads) OR open_uploads < :max)"
            ))
            .expression_attribute_values(":size", n(size))
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":room", n(i128::from(quota) - i128::from(size)))
            .expression_attribute_values(":max", n(max_open))
            .build()?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// Takes an upload reserved by [`Self::reserve_upload`] off the open ones, as `end` says.
    pub(super) fn end_reserved_upload(
        &self,
        user_id: &UserId,
        size: u64,
        end: UploadEnd,
    ) -> anyhow::Result<TransactWriteItem> {
        let expression = match end {
            UploadEnd::Released => {
                "SET claimed_bytes = claimed_bytes - :size, open_uploads = open_uploads - :one"
            }
            UploadEnd::Completed => {
                "SET used_bytes = used_bytes + :size, file_count = file_count + :one, \
                 open_uploads = open_uploads - :one"
            }
        };
        let update = self
            .profile_update(user_id, expression)
            .expression_attribute_values(":size", n(size))
            .expression_attribute_values(":one", n(1))
            .build()?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// Creates a user and claims the username in one transaction.
    /// Returns `false` when the name (compared case-insensitively) is taken.
    ///
    /// # Errors
    /// DynamoDB failures.
    pub async fn create_user(
        &self,
        user: &UserRecord,
        canonical_name: &str,
    ) -> anyhow::Result<bool> {
        let claim: Item = HashMap::from([
            ("PK".into(), s(keys::username_pk(canonical_name))),
            ("SK".into(), s(keys::USERNAME_SK)),
            ("user_id".into(), s(&user.user_id)),
        ]);
        let profile: Item = HashMap::from([
            ("PK".into(), s(keys::user_pk(&user.user_id))),
            ("SK".into(), s(keys::PROFILE_SK)),
            ("user_id".into(), s(&user.user_id)),
            ("username".into(), s(&user.username)),
            ("password_hash".into(), s(&user.password_hash)),
            ("created_at".into(), s(rfc3339(user.created_at))),
            ("used_bytes".into(), n(0)),
            ("claimed_bytes".into(), n(0)),
            ("open_uploads".into(), n(0)),
            ("file_count".into(), n(0)),
            ("token_version".into(), n(user.token_version)),
        ]);
        self.transact(
            vec![
                self.put(claim, "attribute_not_exists(PK)")?,
                self.put(profile, "attribute_not_exists(PK)")?,
            ],
            "signup",
        )
        .await
    }

    /// The user id that owns a (canonical) username.
    ///
    /// # Errors
    /// DynamoDB failures.
    pub async fn user_id_by_name(&self, canonical_name: &str) -> anyhow::Result<Option<UserId>> {
        self.get(keys::username_pk(canonical_name), keys::USERNAME_SK)
            .await?
            .map(|item| get_parsed(&item, "user_id"))
            .transpose()
    }

    /// # Errors
    /// DynamoDB failures or a malformed item.
    pub async fn get_user(&self, user_id: &UserId) -> anyhow::Result<Option<UserRecord>> {
        let Some(item) = self.get(keys::user_pk(user_id), keys::PROFILE_SK).await? else {
            return Ok(None);
        };
        Ok(Some(UserRecord {
            user_id: get_parsed(&item, "user_id")?,
            username: get_s(&item, "username")?,
            password_hash: get_s(&item, "password_hash")?,
            created_at: get_time(&item, "created_at")?,
            used_bytes: get_u64(&item, "used_bytes")?,
            claimed_bytes: match item.get("claimed_bytes") {
                Some(_) => get_u64(&item, "claimed_bytes")?,
                None => get_u64(&item, "used_bytes")?,
            },
            open_uploads: match item.get("open_uploads") {
                Some(_) => get_u64(&item, "open_uploads")?,
                None => 0,
            },
            file_count: get_u64(&item, "file_count")?,
            trash_bytes: get_u64(&item, "trash_bytes")?,
            token_version: get_u64(&item, "token_version")?,
            quota_bytes: match item.get("quota_bytes") {
                Some(_) => Some(get_u64(&item, "quota_bytes")?),
                None => None,
            },
        }))
    }
}

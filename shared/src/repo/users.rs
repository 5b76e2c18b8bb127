//! User profiles: signup (the profile and its username claim, in one transaction), reads by
//! id and by name, and the file counters (`used_bytes`, `file_count`) with the quota as
//! their condition, which every write that adds or removes a file moves.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{TransactWriteItem, Update};
use filestore_contract::domain::UserId;
use time::OffsetDateTime;

use super::Repo;
use super::item::{Item, get_parsed, get_s, get_time, get_u64, n, rfc3339, s};
use super::table::Tx;
use crate::keys;

/// A user's profile.
#[derive(Clone, Debug)]
pub struct UserRecord {
    pub user_id: UserId,
    pub username: String,
    pub password_hash: String,
    pub created_at: OffsetDateTime,
    pub used_bytes: u64,
    pub file_count: u64,
    pub token_version: u64,
    /// A per-user quota; `None` follows `FILESTORE_QUOTA_BYTES`.
    pub quota_bytes: Option<u64>,
}

/// How adding a file to a user's account ended.
#[derive(Debug, PartialEq, Eq)]
pub enum AddFile {
    Added,
    /// The user's bytes would pass their quota; nothing was written.
    OverQuota,
    /// Another condition of the write was false (see the caller); nothing was written.
    Refused,
}

impl AddFile {
    pub(super) fn from_tx(tx: Tx, counter_index: usize) -> Self {
        match tx {
            Tx::Done => Self::Added,
            Tx::Refused(i) if i == counter_index => Self::OverQuota,
            Tx::Refused(_) => Self::Refused,
        }
    }
}

impl Repo {
    /// Adds `bytes` and `files` to a user's counters (negative to take away).
    pub(super) fn count_files(
        &self,
        user_id: &UserId,
        bytes: i128,
        files: i64,
    ) -> anyhow::Result<TransactWriteItem> {
        self.count_files_within(user_id, bytes, files, None)
    }

    /// [`Self::count_files`], refused when the user's bytes would pass `quota`. DynamoDB
    /// conditions cannot add, so the room left is computed here: the transaction's condition
    /// makes the check and the addition one atomic step under concurrent writes.
    pub(super) fn count_files_within(
        &self,
        user_id: &UserId,
        bytes: i128,
        files: i64,
        quota: Option<u64>,
    ) -> anyhow::Result<TransactWriteItem> {
        let mut update = Update::builder()
            .table_name(&self.table)
            .key("PK", s(keys::user_pk(user_id)))
            .key("SK", s(keys::PROFILE_SK))
            .update_expression("ADD used_bytes :bytes, file_count :files")
            .expression_attribute_values(":bytes", n(bytes))
            .expression_attribute_values(":files", n(files));
        update = match quota {
            Some(quota) => update
                .condition_expression("attribute_exists(PK) AND used_bytes <= :room")
                .expression_attribute_values(":room", n(i128::from(quota) - bytes)),
            None => update.condition_expression("attribute_exists(PK)"),
        };
        Ok(TransactWriteItem::builder().update(update.build()?).build())
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
            file_count: get_u64(&item, "file_count")?,
            token_version: get_u64(&item, "token_version")?,
            quota_bytes: match item.get("quota_bytes") {
                Some(_) => Some(get_u64(&item, "quota_bytes")?),
                None => None,
            },
        }))
    }
}

//! Share links. The link's record lives in its owner's partition (`USER#<user>` /
//! `SHARE#<share_id>`), so listing and revoking are keyed by the caller like everything else;
//! a pointer keyed by the SHA-256 of the token (`SHARETOKEN#<hash>`) lets the public route find
//! it. The token itself is never stored.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{ConditionCheck, Delete, TransactWriteItem, Update};
use filestore_contract::domain::{FileId, ShareId, UserId};
use time::OffsetDateTime;

use super::item::{Item, get_parsed, get_s, get_time, get_u64, n, rfc3339, s};
use super::table::Query;
use super::{FileRecord, FolderRecord, Repo};
use crate::keys;

/// A share link of one file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShareRecord {
    pub user_id: UserId,
    pub share_id: ShareId,
    pub file_id: FileId,
    /// Lowercase hex SHA-256 of the token.
    pub token_hash: String,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub max_downloads: Option<u64>,
    pub downloads: u64,
}

impl ShareRecord {
    pub fn view(&self) -> filestore_contract::api::ShareView {
        filestore_contract::api::ShareView {
            share_id: self.share_id.clone(),
            expires_at: rfc3339(self.expires_at),
            max_downloads: self.max_downloads,
            downloads: self.downloads,
        }
    }
}

fn share_from(item: &Item) -> anyhow::Result<ShareRecord> {
    Ok(ShareRecord {
        user_id: get_parsed(item, "user_id")?,
        share_id: get_parsed(item, "share_id")?,
        file_id: get_parsed(item, "file_id")?,
        token_hash: get_s(item, "token_hash")?,
        created_at: get_time(item, "created_at")?,
        expires_at: OffsetDateTime::from_unix_timestamp(get_u64(item, "expires_epoch")? as i64)?,
        max_downloads: match item.get("max_downloads") {
            Some(_) => Some(get_u64(item, "max_downloads")?),
            None => None,
        },
        downloads: get_u64(item, "downloads")?,
    })
}

impl Repo {
    /// Stores a new share link and its token pointer, all or nothing.
    ///
    /// # Errors
    /// DynamoDB failures, or an id or token hash that already exists (never, for fresh ones).
    pub async fn put_share(&self, share: &ShareRecord) -> anyhow::Result<()> {
        let expires = share.expires_at.unix_timestamp();
        let mut record: Item = HashMap::from([
            ("PK".into(), s(keys::user_pk(&share.user_id))),
            ("SK".into(), s(keys::share_sk(&share.share_id))),
            ("user_id".into(), s(&share.user_id)),
            ("share_id".into(), s(&share.share_id)),
            ("file_id".into(), s(&share.file_id)),
            ("token_hash".into(), s(&share.token_hash)),
            ("created_at".into(), s(rfc3339(share.created_at))),
            ("expires_epoch".into(), n(expires)),
            ("downloads".into(), n(share.downloads)),
            ("ttl".into(), n(expires)),
        ]);
        if let Some(max) = share.max_downloads {
            record.insert("max_downloads".into(), n(max));
        }
        let pointer: Item = HashMap::from([
            ("PK".into(), s(keys::share_token_pk(&share.token_hash))),
            ("SK".into(), s(keys::SHARE_TOKEN_SK)),
            ("user_id".into(), s(&share.user_id)),
            ("share_id".into(), s(&share.share_id)),
            ("ttl".into(), n(expires)),
        ]);
        let stored = self
            .transact(
                vec![
                    self.put(record, "attribute_not_exists(PK)")?,
                    self.put(pointer, "attribute_not_exists(PK)")?,
                ],
                "create share",
            )
            .await?;
        anyhow::ensure!(stored, "share id or token collided");
        Ok(())
    }

    /// The caller's share links of one file, expired ones included until DynamoDB's TTL
    /// removes them (the caller filters).
    ///
    /// # Errors
    /// DynamoDB failures or a malformed item.
    pub async fn list_shares(
        &self,
        user_id: &UserId,
        file_id: &FileId,
    ) -> anyhow::Result<Vec<ShareRecord>> {
        let query = Query::prefix(keys::SHARE_PREFIX)
            .filter("file_id = :file")
            .value(":file", s(file_id));
        let (items, _) = self.query(user_id, query).await?;
        items.iter().map(share_from).collect()
    }

    /// One of the caller's share links.
    ///
    /// # Errors
    /// DynamoDB failures or a malformed item.
    pub async fn get_share(
        &self,
        user_id: &UserId,
        share_id: &ShareId,
    ) -> anyhow::Result<Option<ShareRecord>> {
        self.get(keys::user_pk(user_id), &keys::share_sk(share_id))
            .await?
            .map(|item| share_from(&item))
            .transpose()
    }

    /// Deletes a share link and its token pointer. `false` if it was already gone.
    ///
    /// # Errors
    /// DynamoDB failures.
    pub async fn delete_share(&self, share: &ShareRecord) -> anyhow::Result<bool> {
        let record = Delete::builder()
            .table_name(&self.table)
            .key("PK", s(keys::user_pk(&share.user_id)))
            .key("SK", s(keys::share_sk(&share.share_id)))
            .condition_expression("attribute_exists(PK)")
            .build()?;
        let pointer = Delete::builder()
            .table_name(&self.table)
            .key("PK", s(keys::share_token_pk(&share.token_hash)))
            .key("SK", s(keys::SHARE_TOKEN_SK))
            .build()?;
        self.transact(
            vec![
                TransactWriteItem::builder().delete(record).build(),
                TransactWriteItem::builder().delete(pointer).build(),
            ],
            "revoke share",
        )
        .await
    }

    /// The share link whose token hashes to `token_hash`, if it was not revoked. Whether it
    /// may still be opened is [`Repo::count_share_download`]'s to decide.
    ///
    /// # Errors
    /// DynamoDB failures or a malformed item.
    pub async fn share_by_token(&self, token_hash: &str) -> anyhow::Result<Option<ShareRecord>> {
        let Some(pointer) = self
            .get(keys::share_token_pk(token_hash), keys::SHARE_TOKEN_SK)
            .await?
        else {
            return Ok(None);
        };
        let user_id: UserId = get_parsed(&pointer, "user_id")?;
        let share_id: ShareId = get_parsed(&pointer, "share_id")?;
        Ok(self
            .get_share(&user_id, &share_id)
            .await?
            .filter(|share| share.token_hash == token_hash))
    }

    /// Counts one download through `share` if it is live: not revoked, not expired at `now`,
    /// under its download limit, and its file (`file` as read) neither trashed nor purged,
    /// still in the folder read, below the folders of `chain` (its live chain as read, root
    /// first) still live where they were. The count and all those checks are one
    /// transaction, so concurrent downloads never pass the limit and a link never counts a
    /// download of a file that was trashed, or whose folder was, meanwhile.
    /// `false` when it may not be opened (nothing was counted).
    ///
    /// # Errors
    /// DynamoDB failures.
    pub async fn count_share_download(
        &self,
        share: &ShareRecord,
        file: &FileRecord,
        chain: &[FolderRecord],
        now: OffsetDateTime,
    ) -> anyhow::Result<bool> {
        let count = Update::builder()
            .table_name(&self.table)
            .key("PK", s(keys::user_pk(&share.user_id)))
            .key("SK", s(keys::share_sk(&share.share_id)))
            .update_expression("ADD downloads :one")
            .condition_expression(
                "token_hash = :hash AND expires_epoch > :now \
                 AND (attribute_not_exists(max_downloads) OR downloads < max_downloads)",
            )
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":hash", s(&share.token_hash))
            .expression_attribute_values(":now", n(now.unix_timestamp()))
            .build()?;
        // A file written before folders existed has no parent_id: it is in the root.
        let in_parent = if file.parent_id.is_root() {
            "(parent_id = :parent OR attribute_not_exists(parent_id))"
        } else {
            "parent_id = :parent"
        };
        let file_live = ConditionCheck::builder()
            .table_name(&self.table)
            .key("PK", s(keys::user_pk(&share.user_id)))
            .key("SK", s(keys::file_sk(&share.file_id)))
            .condition_expression(format!(
                "attribute_exists(PK) AND attribute_not_exists(trashed_at) AND {in_parent}"
            ))
            .expression_attribute_values(":parent", s(&file.parent_id))
            .build()?;
        let mut items = vec![
            TransactWriteItem::builder().update(count).build(),
            TransactWriteItem::builder()
                .condition_check(file_live)
                .build(),
        ];
        items.extend(self.chain_checks(&share.user_id, chain)?);
        self.transact(items, "share download").await
    }
}

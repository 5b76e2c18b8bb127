//! Verified content, stored once per SHA-256 and referenced by every File with those bytes:
//! recording a transfer's verification, instant upload onto existing content, and the
//! conditional delete that collects content nothing references.
//!
//! Small content (under [`UNSHARED_BELOW`]) is cheap to guess, so instant upload only ever
//! gives it to a user who holds it already: each user's holdings of small content are
//! counted in their own partition (`HOLDING#<sha256>`), in the same transactions that add and
//! release their files' references on the content.

use std::collections::HashMap;

use anyhow::{Context, anyhow};
use aws_sdk_dynamodb::types::{AttributeValue as Av, TransactWriteItem, Update};
use filestore_contract::domain::{OnConflict, UserId};
use time::OffsetDateTime;

use super::item::{Item, get_s, get_time, get_u64, n, rfc3339, s};
use super::{AddFile, Copies, FileRecord, Repo};
use crate::keys::{self, Due};

/// Content smaller than this is never shared across users by instant upload: only a user
/// who holds it (has a verified file with these bytes) can instant-upload it again.
pub const UNSHARED_BELOW: u64 = 1024 * 1024;

/// Verified content: bytes the transfer function has read and hashed, stored once in the
/// cold store and shared by every File with that SHA-256.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContentRecord {
    pub sha256: String,
    pub sha1: String,
    pub size: u64,
    pub cold_key: String,
    pub refs: u64,
    pub created_at: OffsetDateTime,
    /// When `refs` last changed (its creation for content written before this was kept).
    pub changed_at: OffsetDateTime,
}

/// What the transfer learned about a file's bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    pub sha256: String,
    pub sha1: String,
    pub size: u64,
    /// The cold copy this file will point to (a new one, or the existing content's).
    pub cold_key: String,
}

/// How a verification was recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VerifyOutcome {
    /// This file's cold copy became the content.
    NewContent,
    /// The content already existed; the file now shares its cold copy.
    Shared { cold_key: String },
    /// The file is gone or already verified: nothing was written.
    Stale,
}

impl Repo {
    /// One more reference on content, on the condition that it is still the content that was
    /// read (the one whose cold copy is `cold_key`): the transaction fails rather than
    /// resurrect content the janitor collected, or point a file at a cold copy that content
    /// collected and stored again no longer has.
    pub(super) fn take_reference(
        &self,
        sha256: &str,
        cold_key: &str,
    ) -> anyhow::Result<TransactWriteItem> {
        let update = Update::builder()
            .table_name(&self.table)
            .key("PK", s(keys::content_pk(sha256)))
            .key("SK", s(keys::CONTENT_SK))
            .update_expression("ADD refs :one SET changed_at = :now")
            .condition_expression("cold_key = :cold_key")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":now", s(rfc3339(OffsetDateTime::now_utc())))
            .expression_attribute_values(":cold_key", s(cold_key))
            .build()?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// One reference less on existing content. It puts the content in the janitor's index,
    /// which collects it if nothing references it any more.
    pub(super) fn release_reference(&self, sha256: &str) -> anyhow::Result<TransactWriteItem> {
        let now = s(rfc3339(OffsetDateTime::now_utc()));
        let update = Update::builder()
            .table_name(&self.table)
            .key("PK", s(keys::content_pk(sha256)))
            .key("SK", s(keys::CONTENT_SK))
            .update_expression(
                "ADD refs :minus_one SET changed_at = :now, due_pk = :due, due_at = :now",
            )
            .condition_expression("attribute_exists(PK)")
            .expression_attribute_values(":minus_one", n(-1))
            .expression_attribute_values(":now", now)
            .expression_attribute_values(":due", s(Due::Content.key(sha256)))
            .build()?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// Adds `delta` to the count of `user_id`'s verified files on the content `sha256`.
    pub(super) fn hold_content(
        &self,
        user_id: &UserId,
        sha256: &str,
        delta: i64,
    ) -> anyhow::Result<TransactWriteItem> {
        let update = Update::builder()
            .table_name(&self.table)
            .key("PK", s(keys::user_pk(user_id)))
            .key("SK", s(keys::holding_sk(sha256)))
            .update_expression("ADD files :delta")
            .expression_attribute_values(":delta", n(delta))
            .build()?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// Whether `user_id` has a verified file on the content `sha256` (counted for content
    /// under [`UNSHARED_BELOW`] only).
    ///
    /// # Errors
    /// DynamoDB failures or a malformed item.
    pub async fn holds_content(&self, user_id: &UserId, sha256: &str) -> anyhow::Result<bool> {
        match self
            .get(keys::user_pk(user_id), &keys::holding_sk(sha256))
            .await?
        {
            Some(item) => Ok(get_u64(&item, "files")? > 0),
            None => Ok(false),
        }
    }

    /// Verified content by hash.
    ///
    /// # Errors
    /// DynamoDB failures or a malformed item.
    pub async fn get_content(&self, sha256: &str) -> anyhow::Result<Option<ContentRecord>> {
        self.get(keys::content_pk(sha256), keys::CONTENT_SK)
            .await?
            .map(|item| Self::content_from(&item))
            .transpose()
    }

    pub(super) fn content_from(item: &Item) -> anyhow::Result<ContentRecord> {
        Ok(ContentRecord {
            sha256: get_s(item, "sha256")?,
            sha1: get_s(item, "sha1")?,
            size: get_u64(item, "size")?,
            cold_key: get_s(item, "cold_key")?,
            refs: get_u64(item, "refs")?,
            created_at: get_time(item, "created_at")?,
            changed_at: match item.get("changed_at") {
                Some(_) => get_time(item, "changed_at")?,
                None => get_time(item, "created_at")?,
            },
        })
    }

    /// Records a file's verified bytes: the file gets the computed hashes, `verified` and the
    /// cold tier, and a reference on its content, in one transaction. When no content with
    /// this hash exists, `found`'s cold copy becomes it; otherwise the file shares the
    /// existing one. Conditions make redelivery and racing workers safe: a file that is gone
    /// or already verified is left alone ([`VerifyOutcome::Stale`]).
    ///
    /// # Errors
    /// DynamoDB failures.
    pub async fn record_verified(
        &self,
        file: &FileRecord,
        found: &Verified,
    ) -> anyhow::Result<VerifyOutcome> {
        for _ in 0..3 {
            let existing = self.get_content(&found.sha256).await?;
            let (content_write, cold_key) = match &existing {
                Some(content) => (
                    self.take_reference(&found.sha256, &content.cold_key)?,
                    content.cold_key.clone(),
                ),
                None => {
                    let item: Item = HashMap::from([
                        ("PK".into(), s(keys::content_pk(&found.sha256))),
                        ("SK".into(), s(keys::CONTENT_SK)),
                        ("sha256".into(), s(&found.sha256)),
                        ("sha1".into(), s(&found.sha1)),
                        ("size".into(), n(found.size)),
                        ("cold_key".into(), s(&found.cold_key)),
                        ("refs".into(), n(1)),
                        ("created_at".into(), s(rfc3339(OffsetDateTime::now_utc()))),
                        ("changed_at".into(), s(rfc3339(OffsetDateTime::now_utc()))),
                    ]);
                    (
                        self.put(item, "attribute_not_exists(PK)")?,
                        found.cold_key.clone(),
                    )
                }
            };
            let declared_differs = file.sha256.as_deref().is_some_and(|d| d != found.sha256);
            let mut set = String::from(
                "SET sha256 = :sha256, sha1 = :sha1, verified = :true, tier = :cold, cold_key = :cold_key, verified_at = :now, due_pk = :due, due_at = :now",
            );
            if declared_differs {
                set.push_str(", declared_sha256 = :declared");
            }
            let mut update = Update::builder()
                .table_name(&self.table)
                .key("PK", s(keys::user_pk(&file.user_id)))
                .key("SK", s(keys::file_sk(&file.file_id)))
                .update_expression(set)
                .condition_expression("attribute_exists(PK) AND verified = :false")
                .expression_attribute_values(":sha256", s(&found.sha256))
                .expression_attribute_values(":sha1", s(&found.sha1))
                .expression_attribute_values(":true", Av::Bool(true))
                .expression_attribute_values(":false", Av::Bool(false))
                .expression_attribute_values(":cold", s("cold"))
                .expression_attribute_values(":cold_key", s(&cold_key))
                .expression_attribute_values(":now", s(rfc3339(OffsetDateTime::now_utc())))
                // Its hot copy is now the janitor's, once the hot retention has passed.
                .expression_attribute_values(":due", s(Due::HotCopy.key(file.file_id.as_str())));
            if declared_differs {
                update = update.expression_attribute_values(
                    ":declared",
                    s(file.sha256.clone().unwrap_or_default()),
                );
            }
            let mut items = vec![
                content_write,
                TransactWriteItem::builder().update(update.build()?).build(),
            ];
            if found.size < UNSHARED_BELOW {
                items.push(self.hold_content(&file.user_id, &found.sha256, 1)?);
            }
            if self.transact(items, "record verified").await? {
                return Ok(match existing {
                    None => VerifyOutcome::NewContent,
                    Some(_) => VerifyOutcome::Shared { cold_key },
                });
            }
            // A condition failed: either the file changed (gone, or verified by another
            // worker), or the content appeared or vanished under us. Look again.
            match self.get_file(&file.user_id, &file.file_id).await? {
                Some(f) if !f.verified() => continue,
                _ => return Ok(VerifyOutcome::Stale),
            }
        }
        Err(anyhow!(
            "content {} kept changing while recording a file",
            found.sha256
        ))
    }

    /// Records a File on existing verified content (instant upload): the file, a reference on
    /// the content and the owner's counters within `quota`, all or nothing. [`AddFile::Refused`]
    /// if the content is no longer the one read (collected, or collected and stored again
    /// with another cold copy) in the meantime.
    ///
    /// # Errors
    /// DynamoDB failures.
    pub async fn create_shared_file(
        &self,
        file: &mut FileRecord,
        on_conflict: OnConflict,
        quota: u64,
    ) -> anyhow::Result<AddFile> {
        let sha256 = file.sha256.clone().context("a shared file has a hash")?;
        let Copies::Verified { cold_key, .. } = &file.copies else {
            anyhow::bail!("a shared file is verified");
        };
        let cold_key = cold_key.clone();
        if file.size > quota {
            return Ok(AddFile::OverQuota);
        }
        let user_id = file.user_id.clone();
        let (outcome, name) = self
            .with_free_name(
                &user_id,
                &file.parent_id,
                &file.name.clone(),
                on_conflict,
                AddFile::is_name_taken,
                |name| {
                    let file = FileRecord {
                        name,
                        ..file.clone()
                    };
                    let (sha256, cold_key, user_id) = (&sha256, &cold_key, &user_id);
                    async move {
                        let mut items = vec![
                            self.put(Self::file_item(&file), "attribute_not_exists(PK)")?,
                            self.take_reference(sha256, cold_key)?,
                            self.count_files(user_id, file.size.into(), 1, 0, Some(quota))?,
                        ];
                        items.extend(self.place_file(&file)?);
                        if file.size < UNSHARED_BELOW {
                            items.push(self.hold_content(user_id, sha256, 1)?);
                        }
                        let tx = self.transact_items(items, "instant upload").await?;
                        Ok(AddFile::from_tx(tx, 2))
                    }
                },
            )
            .await?;
        file.name = name;
        Ok(outcome)
    }

    /// Deletes a content record if nothing references it and it is still the one read (its
    /// cold copy `cold_key`, which the caller deletes next); `false` if something references
    /// it again, or it was collected and stored again meanwhile.
    ///
    /// # Errors
    /// DynamoDB failures.
    pub async fn delete_unreferenced_content(
        &self,
        sha256: &str,
        cold_key: &str,
    ) -> anyhow::Result<bool> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("PK", s(keys::content_pk(sha256)))
            .key("SK", s(keys::CONTENT_SK))
            .condition_expression("refs <= :zero AND cold_key = :cold_key")
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":cold_key", s(cold_key))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|se| se.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(e).context("DynamoDB DeleteItem (content)"),
        }
    }
}

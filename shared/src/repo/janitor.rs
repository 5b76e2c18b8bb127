//! What the janitor looks for, found through a sparse index (`due`) instead of table scans.
//!
//! An item that will need the janitor carries `due_pk` (its kind and a shard) and `due_at`
//! (when): an active upload (due when it expires), a verified file whose hot copy is still
//! there (due since its verification, for the hot retention), content that lost a reference
//! (due since then), a trash entry (due at its `purge_at`). Only such items are in the index, and they leave it when they no longer
//! need the janitor (the upload completes, the hot copy goes, the content is referenced
//! again or collected), so each sweep reads what it acts on and little else. Writes spread
//! over [`DUE_SHARDS`] partitions of the index per kind; a sweep queries each, several at
//! once ([`DUE_QUERIES_IN_FLIGHT`]).
//!
//! The index is eventually consistent, so what it returns is a candidate: every action the
//! janitor takes is conditional on the table's own item.
//!
//! The reference check pages through the content records and counts, for each, the verified
//! files holding it through a second index (`by_sha256`); a count that differs is repaired
//! on the condition that no reference moved since the content was read.

use std::collections::HashSet;
use std::time::Duration;

use anyhow::Context;
use aws_sdk_dynamodb::types::{AttributeValue as Av, Select};
use filestore_contract::domain::{FileId, UploadState, UserId};
use futures::{StreamExt, TryStreamExt};
use time::OffsetDateTime;

use super::item::{Item, get_bool, get_parsed, get_s, is_condition_failure, n, rfc3339, s};
use super::{ContentRecord, Repo, UploadRecord};
use crate::keys::{self, DUE_SHARDS, Due};

/// The sparse index of items the janitor will act on.
pub const DUE_INDEX: &str = "due";

/// The index of every item with a `sha256` (files, verified or with a declared hash,
/// uploads and challenges with one, content) by that hash, projecting `verified`: through
/// it, the verified files holding a content are counted.
pub const SHA256_INDEX: &str = "by_sha256";

/// How many shards of the `due` index a sweep queries at once: one after another, the
/// queries of a sweep added up to 105-147 ms; all at once would meet the table's read
/// capacity in bursts.
pub const DUE_QUERIES_IN_FLIGHT: usize = 8;

/// Where a paged scan goes on.
#[derive(Clone, Debug)]
pub struct ScanCursor(Item);

/// A verified file's hot copy, kept for the hot retention after verification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HotCopy {
    pub user_id: UserId,
    pub file_id: FileId,
    pub object_key: String,
}

impl Repo {
    /// Every item of `kind` due at or before `until`, from every shard: the shards'
    /// queries run [`DUE_QUERIES_IN_FLIGHT`] at a time, their items in shard order, the first
    /// failure the answer.
    pub(super) async fn due(&self, kind: Due, until: OffsetDateTime) -> anyhow::Result<Vec<Item>> {
        let pages: Vec<Vec<Item>> = futures::stream::iter(0..DUE_SHARDS)
            .map(|shard| self.due_in_shard(kind, shard, until))
            .buffered(DUE_QUERIES_IN_FLIGHT)
            .try_collect()
            .await?;
        Ok(pages.concat())
    }

    /// The items of `kind` due at or before `until` in one shard, every page.
    async fn due_in_shard(
        &self,
        kind: Due,
        shard: u32,
        until: OffsetDateTime,
    ) -> anyhow::Result<Vec<Item>> {
        self.client
            .query()
            .table_name(&self.table)
            .index_name(DUE_INDEX)
            .key_condition_expression("due_pk = :pk AND due_at <= :until")
            .expression_attribute_values(":pk", s(kind.partition(shard)))
            .expression_attribute_values(":until", s(rfc3339(until)))
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .context("DynamoDB Query (due index)")
    }

    /// Trash entries whose `purge_at` is at or before `now`, for the janitor to purge.
    ///
    /// # Errors
    /// DynamoDB failures or a malformed item.
    pub async fn trash_due(&self, now: OffsetDateTime) -> anyhow::Result<Vec<super::TrashEntry>> {
        self.due(Due::Trash, now)
            .await?
            .iter()
            .map(Self::trash_entry_from)
            .collect()
    }

    /// Every active upload past its expiry, for the janitor.
    ///
    /// # Errors
    /// DynamoDB failures or a malformed item.
    pub async fn expired_uploads(&self, now: OffsetDateTime) -> anyhow::Result<Vec<UploadRecord>> {
        let mut expired = Vec::new();
        for item in self.due(Due::Upload, now).await? {
            let upload = Self::upload_from(&item)?;
            if upload.state == UploadState::Active && upload.is_expired(now) {
                expired.push(upload);
            }
        }
        Ok(expired)
    }

    /// Verified files whose hot copy is still there and that were verified at or before
    /// `cutoff`, for the janitor to remove the hot copy once its retention has passed.
    ///
    /// # Errors
    /// DynamoDB failures or a malformed item.
    pub async fn hot_copies_verified_before(
        &self,
        cutoff: OffsetDateTime,
    ) -> anyhow::Result<Vec<HotCopy>> {
        self.due(Due::HotCopy, cutoff)
            .await?
            .iter()
            .filter(|item| get_bool(item, "verified") && get_bool(item, "hot_present"))
            .map(|item| {
                Ok(HotCopy {
                    user_id: get_parsed(item, "user_id")?,
                    file_id: get_parsed(item, "file_id")?,
                    object_key: get_s(item, "object_key")?,
                })
            })
            .collect()
    }

    /// Content that lost a reference. Those still referenced are taken out of the index
    /// here (unless they lost another meanwhile); those that are not are returned, for the
    /// janitor to collect.
    ///
    /// # Errors
    /// DynamoDB failures or a malformed item.
    pub async fn unreferenced_contents(
        &self,
        now: OffsetDateTime,
    ) -> anyhow::Result<Vec<ContentRecord>> {
        let mut unreferenced = Vec::new();
        for item in self.due(Due::Content, now).await? {
            let content = Self::content_from(&item)?;
            if content.refs == 0 {
                unreferenced.push(content);
                continue;
            }
            let settled = self
                .client
                .update_item()
                .table_name(&self.table)
                .key("PK", s(keys::content_pk(&content.sha256)))
                .key("SK", s(keys::CONTENT_SK))
                .update_expression("REMOVE due_pk, due_at")
                .condition_expression("refs > :zero")
                .expression_attribute_values(":zero", n(0))
                .send()
                .await;
            match settled {
                Ok(_) => {}
                Err(e) if e.as_service_error().is_some_and(is_condition_failure) => {
                    if let Some(now_unreferenced) = self.get_content(&content.sha256).await? {
                        unreferenced.push(now_unreferenced);
                    }
                }
                Err(e) => return Err(e).context("DynamoDB UpdateItem (content settled)"),
            }
        }
        Ok(unreferenced)
    }

    /// The cold-store keys that content records point to, for the janitor's sweep of cold
    /// blobs nothing points to. A table scan, run at most daily ([`Repo::claim_job`]).
    ///
    /// # Errors
    /// DynamoDB failures or a malformed item.
    pub async fn content_cold_keys(&self) -> anyhow::Result<HashSet<String>> {
        let items: Vec<Item> = self
            .client
            .scan()
            .table_name(&self.table)
            .filter_expression("SK = :content")
            .expression_attribute_values(":content", s(keys::CONTENT_SK))
            .projection_expression("cold_key")
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .context("DynamoDB Scan (content)")?;
        items.iter().map(|item| get_s(item, "cold_key")).collect()
    }

    /// One page of the content records, from a scan of the table that starts at `from` (the
    /// last page's cursor, `None` for the first), and the cursor of the next page (`None`
    /// after the last), so a pass over all content holds one page at a time.
    ///
    /// # Errors
    /// DynamoDB failures or a malformed item.
    pub async fn content_page(
        &self,
        from: Option<ScanCursor>,
    ) -> anyhow::Result<(Vec<ContentRecord>, Option<ScanCursor>)> {
        let out = self
            .client
            .scan()
            .table_name(&self.table)
            .filter_expression("SK = :content")
            .expression_attribute_values(":content", s(keys::CONTENT_SK))
            .set_exclusive_start_key(from.map(|c| c.0))
            .send()
            .await
            .context("DynamoDB Scan (content page)")?;
        let page = out
            .items()
            .iter()
            .map(Self::content_from)
            .collect::<anyhow::Result<_>>()?;
        Ok((page, out.last_evaluated_key.map(ScanCursor)))
    }

    /// How many verified files hold the content `sha256`, counted through the
    /// [`SHA256_INDEX`]. The index is eventually consistent: a file written or deleted in
    /// the last moments may be missed or still counted.
    ///
    /// # Errors
    /// DynamoDB failures.
    pub async fn count_verified_files(&self, sha256: &str) -> anyhow::Result<u64> {
        let (mut count, mut from) = (0, None);
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(SHA256_INDEX)
                .key_condition_expression("sha256 = :sha256")
                .filter_expression("verified = :true")
                .expression_attribute_values(":sha256", s(sha256))
                .expression_attribute_values(":true", Av::Bool(true))
                .select(Select::Count)
                .set_exclusive_start_key(from)
                .send()
                .await
                .context("DynamoDB Query (by_sha256)")?;
            count += out.count().max(0) as u64;
            from = out.last_evaluated_key;
            if from.is_none() {
                return Ok(count);
            }
        }
    }

    /// Sets content's reference count to `counted`, if no reference moved since `content`
    /// was read (`refs` and `changed_at` as read). Counted zero puts it in the janitor's
    /// index, to be collected. `false` if it changed meanwhile.
    ///
    /// # Errors
    /// DynamoDB failures.
    pub async fn repair_refs(&self, content: &ContentRecord, counted: u64) -> anyhow::Result<bool> {
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("PK", s(keys::content_pk(&content.sha256)))
            .key("SK", s(keys::CONTENT_SK))
            .condition_expression(
                "refs = :seen AND (changed_at = :changed OR attribute_not_exists(changed_at))",
            )
            .expression_attribute_values(":seen", n(content.refs))
            .expression_attribute_values(":changed", s(rfc3339(content.changed_at)))
            .expression_attribute_values(":counted", n(counted))
            .expression_attribute_values(":now", s(rfc3339(OffsetDateTime::now_utc())));
        update = if counted == 0 {
            update
                .update_expression(
                    "SET refs = :counted, changed_at = :now, due_pk = :due, due_at = :now",
                )
                .expression_attribute_values(":due", s(Due::Content.key(&content.sha256)))
        } else {
            update.update_expression("SET refs = :counted, changed_at = :now")
        };
        match update.send().await {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(is_condition_failure) => Ok(false),
            Err(e) => Err(e).context("DynamoDB UpdateItem (content refs repaired)"),
        }
    }

    /// Claims a periodic job for the run at `now`: `true` for the first claim, or if the
    /// last one is at least `every` old, so concurrent or frequent janitors run it once per
    /// period.
    ///
    /// # Errors
    /// DynamoDB failures.
    pub async fn claim_job(
        &self,
        job: &str,
        now: OffsetDateTime,
        every: Duration,
    ) -> anyhow::Result<bool> {
        let claimed = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("PK", s(keys::JANITOR_PK))
            .key("SK", s(keys::job_sk(job)))
            .update_expression("SET last_run = :now")
            .condition_expression("attribute_not_exists(last_run) OR last_run <= :due")
            .expression_attribute_values(":now", s(rfc3339(now)))
            .expression_attribute_values(":due", s(rfc3339(now - every)))
            .send()
            .await;
        match claimed {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(is_condition_failure) => Ok(false),
            Err(e) => Err(e).context("DynamoDB UpdateItem (janitor job)"),
        }
    }
}

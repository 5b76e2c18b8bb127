//! The single-table DynamoDB repository. Key schema (see also `docs/dynamodb.md`):
//!
//! | item | PK | SK | notes |
//! |---|---|---|---|
//! | username claim | `USERNAME#<lowercased name>` | `USERNAME` | `user_id`; makes names unique |
//! | user | `USER#<user_id>` | `PROFILE` | hash, counters (`used_bytes`, `file_count`), `token_version` |
//! | upload | `USER#<user_id>` | `UPLOAD#<upload_id>` | S3 upload id, plan, `state`, `ttl` |
//! | file | `USER#<user_id>` | `FILE#<file_id>` | name, size, hashes, object key, tier |
//!
//! Everything a user owns lives in their own partition, so every read is keyed by the caller's
//! id and ownership is part of the key: another user's id simply is not found.
//! Reads are strongly consistent, so a client always sees its own last write.

use std::collections::HashMap;

use anyhow::{Context, anyhow};
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue as Av, Delete, Put, ReturnValue, TransactWriteItem, Update,
};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use filestore_contract::api::{FileView, UploadView};

mod accounts;
mod janitor;
mod shares;
mod transfers;

pub use accounts::LoginFailures;
pub use janitor::DUE_INDEX;
use janitor::Due;
pub use shares::ShareRecord;
pub use transfers::{CHECKPOINT_TTL, TransferCheckpoint};

pub use filestore_contract::domain::UploadState;

type Item = HashMap<String, Av>;

/// A user's profile.
#[derive(Clone, Debug)]
pub struct UserRecord {
    pub user_id: String,
    pub username: String,
    pub password_hash: String,
    pub created_at: String,
    pub used_bytes: u64,
    pub file_count: u64,
    pub token_version: u64,
    /// A per-user quota; `None` follows `FILESTORE_QUOTA_BYTES`.
    pub quota_bytes: Option<u64>,
}

/// A multipart upload in progress (or completed, until its record expires).
#[derive(Clone, Debug)]
pub struct UploadRecord {
    pub user_id: String,
    pub upload_id: String,
    /// Chosen up front, so retries of complete always name the same File.
    pub file_id: String,
    pub name: String,
    pub size: u64,
    pub sha256: Option<String>,
    pub content_type: String,
    pub part_size: u64,
    pub part_count: u64,
    pub object_key: String,
    pub s3_upload_id: String,
    pub state: UploadState,
    pub created_at: String,
    pub expires_at: OffsetDateTime,
}

impl UploadRecord {
    pub fn is_expired(&self, now: OffsetDateTime) -> bool {
        self.expires_at <= now
    }

    pub fn view(&self, parts_done: Option<Vec<filestore_contract::api::PartDone>>) -> UploadView {
        UploadView {
            upload_id: self.upload_id.clone(),
            name: self.name.clone(),
            size: self.size,
            sha256: self.sha256.clone(),
            content_type: self.content_type.clone(),
            part_size: self.part_size,
            part_count: self.part_count,
            parts_done,
            state: self.state,
            file_id: (self.state == UploadState::Completed).then(|| self.file_id.clone()),
            created_at: self.created_at.clone(),
            expires_at: rfc3339(self.expires_at),
        }
    }
}

/// A user's file.
#[derive(Clone, Debug)]
pub struct FileRecord {
    pub user_id: String,
    pub file_id: String,
    pub name: String,
    pub size: u64,
    pub sha256: Option<String>,
    pub declared_sha256: Option<String>,
    pub content_type: String,
    pub created_at: String,
    pub object_key: String,
    pub tier: String,
    pub verified: bool,
    pub upload_id: String,
    /// SHA-1 of the stored bytes, once the transfer has read them (the seed's content key).
    pub sha1: Option<String>,
    /// Where the verified copy sits in the cold store.
    pub cold_key: Option<String>,
    /// Whether the hot copy (`object_key`) still exists.
    pub hot_present: bool,
}

/// A verified file's hot copy, kept for the hot retention after verification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HotCopy {
    pub user_id: String,
    pub file_id: String,
    pub object_key: String,
}

/// Verified content: bytes the transfer function has read and hashed, stored once in the
/// cold store and shared by every File with that SHA-256.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContentRecord {
    pub sha256: String,
    pub sha1: String,
    pub size: u64,
    pub cold_key: String,
    pub refs: u64,
    pub created_at: String,
}

/// A proof-of-possession challenge for instant upload: single use, short-lived, bound to the
/// user it was issued to (it lives in their partition).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChallengeRecord {
    pub user_id: String,
    pub challenge_id: String,
    pub name: String,
    pub size: u64,
    pub sha256: String,
    pub content_type: String,
    pub nonce: String,
    pub ranges: Vec<filestore_contract::api::ByteRange>,
    pub expires_at: OffsetDateTime,
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

impl FileRecord {
    pub fn view(&self) -> FileView {
        FileView {
            file_id: self.file_id.clone(),
            name: self.name.clone(),
            size: self.size,
            sha256: self.sha256.clone(),
            content_type: self.content_type.clone(),
            created_at: self.created_at.clone(),
            tier: self.tier.clone(),
            verified: self.verified,
            declared_sha256: self.declared_sha256.clone(),
        }
    }
}

/// Formats a timestamp the way every API field carries it.
pub fn rfc3339(t: OffsetDateTime) -> String {
    t.replace_nanosecond(0)
        .unwrap_or(t)
        .format(&Rfc3339)
        .unwrap_or_default()
}

fn user_pk(user_id: &str) -> Av {
    Av::S(format!("USER#{user_id}"))
}

fn s(v: impl Into<String>) -> Av {
    Av::S(v.into())
}

fn n(v: impl ToString) -> Av {
    Av::N(v.to_string())
}

fn get_s(item: &Item, key: &str) -> anyhow::Result<String> {
    match item.get(key) {
        Some(Av::S(v)) => Ok(v.clone()),
        _ => Err(anyhow!("item attribute {key} is missing or not a string")),
    }
}

fn opt_s(item: &Item, key: &str) -> Option<String> {
    match item.get(key) {
        Some(Av::S(v)) => Some(v.clone()),
        _ => None,
    }
}

fn get_u64(item: &Item, key: &str) -> anyhow::Result<u64> {
    match item.get(key) {
        // Counters can dip below zero only through a bug; never fail a read over it.
        Some(Av::N(v)) => Ok(v
            .parse::<i128>()
            .map(|x| x.clamp(0, u64::MAX as i128) as u64)?),
        None => Ok(0),
        _ => Err(anyhow!("item attribute {key} is not a number")),
    }
}

/// A single-item write refused by its condition expression.
fn is_condition_failure<E: ProvideErrorMetadata>(err: &E) -> bool {
    err.code() == Some("ConditionalCheckFailedException")
}

fn get_bool(item: &Item, key: &str) -> bool {
    matches!(item.get(key), Some(Av::Bool(true)))
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
    fn from_tx(tx: Tx, counter_index: usize) -> Self {
        match tx {
            Tx::Done => Self::Added,
            Tx::Refused(i) if i == counter_index => Self::OverQuota,
            Tx::Refused(_) => Self::Refused,
        }
    }
}

/// How a write transaction ended.
#[derive(Debug, PartialEq, Eq)]
enum Tx {
    Done,
    /// Nothing was written: the condition of the item at this index was false.
    Refused(usize),
}

/// Why DynamoDB refused a transaction, as far as the caller cares.
#[derive(Debug, PartialEq, Eq)]
enum Refusal {
    /// A condition of ours was false (the item at this index): the answer to the question
    /// the write asked.
    Condition(usize),
    /// Another transaction touched the same items at the same moment: try again.
    Conflict,
}

fn refusal(err: &TransactWriteItemsError) -> Option<Refusal> {
    match err {
        TransactWriteItemsError::TransactionCanceledException(e) => {
            let codes: Vec<&str> = e
                .cancellation_reasons()
                .iter()
                .map(|r| r.code().unwrap_or("None"))
                .collect();
            if let Some(index) = codes.iter().position(|c| *c == "ConditionalCheckFailed") {
                Some(Refusal::Condition(index))
            } else if codes.contains(&"TransactionConflict") {
                Some(Refusal::Conflict)
            } else {
                None
            }
        }
        TransactWriteItemsError::TransactionInProgressException(_) => Some(Refusal::Conflict),
        _ => None,
    }
}

/// Attempts at a transaction that keeps meeting concurrent ones before giving up.
const TRANSACTION_ATTEMPTS: u32 = 6;

/// The DynamoDB repository over one table.
#[derive(Clone, Debug)]
pub struct Repo {
    client: Client,
    table: String,
}

impl Repo {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    async fn get(&self, pk: Av, sk: &str) -> anyhow::Result<Option<Item>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("PK", pk)
            .key("SK", s(sk))
            .consistent_read(true)
            .send()
            .await
            .context("DynamoDB GetItem")?;
        Ok(out.item)
    }

    fn put(&self, item: Item, condition: &str) -> anyhow::Result<TransactWriteItem> {
        Ok(TransactWriteItem::builder()
            .put(
                Put::builder()
                    .table_name(&self.table)
                    .set_item(Some(item))
                    .condition_expression(condition)
                    .build()?,
            )
            .build())
    }

    /// Adds `bytes` and `files` to a user's counters (negative to take away).
    fn count_files(
        &self,
        user_id: &str,
        bytes: i128,
        files: i64,
    ) -> anyhow::Result<TransactWriteItem> {
        self.count_files_within(user_id, bytes, files, None)
    }

    /// [`Self::count_files`], refused when the user's bytes would pass `quota`. DynamoDB
    /// conditions cannot add, so the room left is computed here: the transaction's condition
    /// makes the check and the addition one atomic step under concurrent writes.
    fn count_files_within(
        &self,
        user_id: &str,
        bytes: i128,
        files: i64,
        quota: Option<u64>,
    ) -> anyhow::Result<TransactWriteItem> {
        let mut update = Update::builder()
            .table_name(&self.table)
            .key("PK", user_pk(user_id))
            .key("SK", s("PROFILE"))
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

    /// Adds `delta` references to existing content; the condition makes a transaction fail
    /// rather than resurrect content the janitor collected.
    /// Adds `delta` to a content's references. Releasing one puts the content in the
    /// janitor's index, which collects it if nothing references it any more.
    fn reference_content(&self, sha256: &str, delta: i64) -> anyhow::Result<TransactWriteItem> {
        let mut update = Update::builder()
            .table_name(&self.table)
            .key("PK", s(format!("CONTENT#{sha256}")))
            .key("SK", s("CONTENT"))
            .condition_expression("attribute_exists(PK)")
            .expression_attribute_values(":delta", n(delta));
        update = if delta < 0 {
            update
                .update_expression("ADD refs :delta SET due_pk = :due, due_at = :now")
                .expression_attribute_values(":due", Due::Content.key(sha256))
                .expression_attribute_values(":now", s(rfc3339(OffsetDateTime::now_utc())))
        } else {
            update.update_expression("ADD refs :delta")
        };
        let update = update.build()?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// Runs a write transaction. `Ok(false)` when one of its conditions was false (nothing
    /// was written); conflicts with concurrent transactions are retried with backoff.
    async fn transact(&self, items: Vec<TransactWriteItem>, what: &str) -> anyhow::Result<bool> {
        Ok(self.transact_items(items, what).await? == Tx::Done)
    }

    /// [`Self::transact`], telling which item's condition refused it.
    async fn transact_items(
        &self,
        items: Vec<TransactWriteItem>,
        what: &str,
    ) -> anyhow::Result<Tx> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = self
                .client
                .transact_write_items()
                .set_transact_items(Some(items.clone()))
                .send()
                .await;
            let err = match result {
                Ok(_) => return Ok(Tx::Done),
                Err(e) => e,
            };
            match err.as_service_error().and_then(refusal) {
                Some(Refusal::Condition(index)) => return Ok(Tx::Refused(index)),
                Some(Refusal::Conflict) if attempt < TRANSACTION_ATTEMPTS => {
                    let jitter = rand::random::<u64>() % 20;
                    let wait = 10 * 2u64.pow(attempt) + jitter;
                    tracing::debug!(what, attempt, wait, "transaction conflict, retrying");
                    tokio::time::sleep(std::time::Duration::from_millis(wait)).await;
                }
                _ => return Err(err).context(format!("DynamoDB TransactWriteItems ({what})")),
            }
        }
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
            ("PK".into(), s(format!("USERNAME#{canonical_name}"))),
            ("SK".into(), s("USERNAME")),
            ("user_id".into(), s(&user.user_id)),
        ]);
        let profile: Item = HashMap::from([
            ("PK".into(), user_pk(&user.user_id)),
            ("SK".into(), s("PROFILE")),
            ("user_id".into(), s(&user.user_id)),
            ("username".into(), s(&user.username)),
            ("password_hash".into(), s(&user.password_hash)),
            ("created_at".into(), s(&user.created_at)),
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
    pub async fn user_id_by_name(&self, canonical_name: &str) -> anyhow::Result<Option<String>> {
        self.get(s(format!("USERNAME#{canonical_name}")), "USERNAME")
            .await?
            .map(|item| get_s(&item, "user_id"))
            .transpose()
    }

    /// # Errors
    /// DynamoDB failures or a malformed item.
    pub async fn get_user(&self, user_id: &str) -> anyhow::Result<Option<UserRecord>> {
        let Some(item) = self.get(user_pk(user_id), "PROFILE").await? else {
            return Ok(None);
        };
        Ok(Some(UserRecord {
            user_id: get_s(&item, "user_id")?,
            username: get_s(&item, "username")?,
            password_hash: get_s(&item, "password_hash")?,
            created_at: get_s(&item, "created_at")?,
            used_bytes: get_u64(&item, "used_bytes")?,
            file_count: get_u64(&item, "file_count")?,
            token_version: get_u64(&item, "token_version")?,
            quota_bytes: match item.get("quota_bytes") {
                Some(_) => Some(get_u64(&item, "quota_bytes")?),
                None => None,
            },
        }))
    }

    fn upload_item(u: &UploadRecord) -> Item {
        let mut item: Item = HashMap::from([
            ("PK".into(), user_pk(&u.user_id)),
            ("SK".into(), s(format!("UPLOAD#{}", u.upload_id))),
            ("user_id".into(), s(&u.user_id)),
            ("upload_id".into(), s(&u.upload_id)),
            ("file_id".into(), s(&u.file_id)),
            ("name".into(), s(&u.name)),
            ("size".into(), n(u.size)),
            ("content_type".into(), s(&u.content_type)),
            ("part_size".into(), n(u.part_size)),
            ("part_count".into(), n(u.part_count)),
            ("object_key".into(), s(&u.object_key)),
            ("s3_upload_id".into(), s(&u.s3_upload_id)),
            ("state".into(), s(u.state.as_str())),
            ("created_at".into(), s(&u.created_at)),
            ("expires_at".into(), s(rfc3339(u.expires_at))),
            ("ttl".into(), n(u.expires_at.unix_timestamp())),
        ]);
        if let Some(h) = &u.sha256 {
            item.insert("sha256".into(), s(h));
        }
        if u.state == UploadState::Active {
            item.insert("due_pk".into(), Due::Upload.key(&u.upload_id));
            item.insert("due_at".into(), s(rfc3339(u.expires_at)));
        }
        item
    }

    fn upload_from(item: &Item) -> anyhow::Result<UploadRecord> {
        let state = match get_s(item, "state")?.as_str() {
            "active" => UploadState::Active,
            "completed" => UploadState::Completed,
            other => return Err(anyhow!("unknown upload state {other:?}")),
        };
        Ok(UploadRecord {
            user_id: get_s(item, "user_id")?,
            upload_id: get_s(item, "upload_id")?,
            file_id: get_s(item, "file_id")?,
            name: get_s(item, "name")?,
            size: get_u64(item, "size")?,
            sha256: opt_s(item, "sha256"),
            content_type: get_s(item, "content_type")?,
            part_size: get_u64(item, "part_size")?,
            part_count: get_u64(item, "part_count")?,
            object_key: get_s(item, "object_key")?,
            s3_upload_id: get_s(item, "s3_upload_id")?,
            state,
            created_at: get_s(item, "created_at")?,
            expires_at: OffsetDateTime::parse(&get_s(item, "expires_at")?, &Rfc3339)?,
        })
    }

    /// # Errors
    /// DynamoDB failures.
    pub async fn put_upload(&self, upload: &UploadRecord) -> anyhow::Result<()> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(Self::upload_item(upload)))
            .condition_expression("attribute_not_exists(PK)")
            .send()
            .await
            .context("DynamoDB PutItem (upload)")?;
        Ok(())
    }

    /// The caller's upload, whatever its state or expiry.
    ///
    /// # Errors
    /// DynamoDB failures or a malformed item.
    pub async fn get_upload(
        &self,
        user_id: &str,
        upload_id: &str,
    ) -> anyhow::Result<Option<UploadRecord>> {
        self.get(user_pk(user_id), &format!("UPLOAD#{upload_id}"))
            .await?
            .map(|item| Self::upload_from(&item))
            .transpose()
    }

    async fn query_prefix(
        &self,
        user_id: &str,
        prefix: &str,
        limit: Option<i32>,
        start_after: Option<String>,
    ) -> anyhow::Result<(Vec<Item>, bool)> {
        let mut items = Vec::new();
        let mut start = start_after.map(|sk| {
            HashMap::from([
                ("PK".to_string(), user_pk(user_id)),
                ("SK".to_string(), s(sk)),
            ])
        });
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("PK = :pk AND begins_with(SK, :prefix)")
                .expression_attribute_values(":pk", user_pk(user_id))
                .expression_attribute_values(":prefix", s(prefix))
                .consistent_read(true)
                .set_limit(limit.map(|l| l - items.len() as i32))
                .set_exclusive_start_key(start)
                .send()
                .await
                .context("DynamoDB Query")?;
            items.extend(out.items.unwrap_or_default());
            start = out.last_evaluated_key;
            let full = limit.is_some_and(|l| items.len() as i32 >= l);
            if start.is_none() || full {
                return Ok((items, start.is_some()));
            }
        }
    }

    /// All of the caller's upload records (every state; the caller filters).
    ///
    /// # Errors
    /// DynamoDB failures or a malformed item.
    pub async fn list_uploads(&self, user_id: &str) -> anyhow::Result<Vec<UploadRecord>> {
        let (items, _) = self.query_prefix(user_id, "UPLOAD#", None, None).await?;
        items.iter().map(Self::upload_from).collect()
    }

    /// # Errors
    /// DynamoDB failures.
    pub async fn delete_upload(&self, user_id: &str, upload_id: &str) -> anyhow::Result<()> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("PK", user_pk(user_id))
            .key("SK", s(format!("UPLOAD#{upload_id}")))
            .send()
            .await
            .context("DynamoDB DeleteItem (upload)")?;
        Ok(())
    }

    /// Deletes an upload record only while it is still active, so it never removes one a
    /// concurrent complete has just recorded. `false` if it was not active (or gone).
    ///
    /// # Errors
    /// DynamoDB failures.
    pub async fn delete_active_upload(
        &self,
        user_id: &str,
        upload_id: &str,
    ) -> anyhow::Result<bool> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("PK", user_pk(user_id))
            .key("SK", s(format!("UPLOAD#{upload_id}")))
            .condition_expression("#state = :active")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":active", s(UploadState::Active.as_str()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(is_condition_failure) => Ok(false),
            Err(e) => Err(e).context("DynamoDB DeleteItem (active upload)"),
        }
    }

    fn file_item(f: &FileRecord) -> Item {
        let mut item: Item = HashMap::from([
            ("PK".into(), user_pk(&f.user_id)),
            ("SK".into(), s(format!("FILE#{}", f.file_id))),
            ("user_id".into(), s(&f.user_id)),
            ("file_id".into(), s(&f.file_id)),
            ("name".into(), s(&f.name)),
            ("size".into(), n(f.size)),
            ("content_type".into(), s(&f.content_type)),
            ("created_at".into(), s(&f.created_at)),
            ("object_key".into(), s(&f.object_key)),
            ("tier".into(), s(&f.tier)),
            ("verified".into(), Av::Bool(f.verified)),
            ("upload_id".into(), s(&f.upload_id)),
        ]);
        if let Some(h) = &f.sha256 {
            item.insert("sha256".into(), s(h));
        }
        if let Some(h) = &f.declared_sha256 {
            item.insert("declared_sha256".into(), s(h));
        }
        if let Some(h) = &f.sha1 {
            item.insert("sha1".into(), s(h));
        }
        if let Some(k) = &f.cold_key {
            item.insert("cold_key".into(), s(k));
        }
        item.insert("hot_present".into(), Av::Bool(f.hot_present));
        item
    }

    fn file_from(item: &Item) -> anyhow::Result<FileRecord> {
        Ok(FileRecord {
            user_id: get_s(item, "user_id")?,
            file_id: get_s(item, "file_id")?,
            name: get_s(item, "name")?,
            size: get_u64(item, "size")?,
            sha256: opt_s(item, "sha256"),
            declared_sha256: opt_s(item, "declared_sha256"),
            content_type: get_s(item, "content_type")?,
            created_at: get_s(item, "created_at")?,
            object_key: get_s(item, "object_key")?,
            tier: get_s(item, "tier")?,
            verified: get_bool(item, "verified"),
            upload_id: get_s(item, "upload_id")?,
            sha1: opt_s(item, "sha1"),
            cold_key: opt_s(item, "cold_key"),
            // Written by every version of the code; absent only if a write was partial.
            hot_present: !matches!(item.get("hot_present"), Some(Av::Bool(false))),
        })
    }

    /// Records a completed upload as a File, marks the upload completed and adds the file to
    /// the owner's counters within `quota`, all or nothing. [`AddFile::Refused`] if the upload
    /// was no longer active (a concurrent or earlier complete won); nothing was written then.
    ///
    /// # Errors
    /// DynamoDB failures.
    pub async fn complete_upload(
        &self,
        upload: &UploadRecord,
        file: &FileRecord,
        quota: u64,
    ) -> anyhow::Result<AddFile> {
        if file.size > quota {
            return Ok(AddFile::OverQuota);
        }
        let mark = Update::builder()
            .table_name(&self.table)
            .key("PK", user_pk(&upload.user_id))
            .key("SK", s(format!("UPLOAD#{}", upload.upload_id)))
            .update_expression("SET #state = :completed REMOVE due_pk, due_at")
            .condition_expression("#state = :active")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":completed", s(UploadState::Completed.as_str()))
            .expression_attribute_values(":active", s(UploadState::Active.as_str()))
            .build()?;
        let tx = self
            .transact_items(
                vec![
                    self.put(Self::file_item(file), "attribute_not_exists(PK)")?,
                    TransactWriteItem::builder().update(mark).build(),
                    self.count_files_within(&upload.user_id, file.size.into(), 1, Some(quota))?,
                ],
                "complete",
            )
            .await?;
        Ok(AddFile::from_tx(tx, 2))
    }

    /// # Errors
    /// DynamoDB failures or a malformed item.
    pub async fn get_file(
        &self,
        user_id: &str,
        file_id: &str,
    ) -> anyhow::Result<Option<FileRecord>> {
        self.get(user_pk(user_id), &format!("FILE#{file_id}"))
            .await?
            .map(|item| Self::file_from(&item))
            .transpose()
    }

    /// Up to `limit` of the caller's files after `after_file_id`, oldest first, and whether more follow.
    ///
    /// # Errors
    /// DynamoDB failures or a malformed item.
    pub async fn list_files(
        &self,
        user_id: &str,
        limit: u32,
        after_file_id: Option<&str>,
    ) -> anyhow::Result<(Vec<FileRecord>, bool)> {
        // One extra item tells whether another page exists, so the last page has no cursor.
        let want = limit as i32 + 1;
        let (items, _) = self
            .query_prefix(
                user_id,
                "FILE#",
                Some(want),
                after_file_id.map(|id| format!("FILE#{id}")),
            )
            .await?;
        let more = items.len() > limit as usize;
        let files = items
            .iter()
            .take(limit as usize)
            .map(Self::file_from)
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok((files, more))
    }

    /// Renames the caller's file; `None` if it does not exist.
    ///
    /// # Errors
    /// DynamoDB failures or a malformed item.
    pub async fn rename_file(
        &self,
        user_id: &str,
        file_id: &str,
        name: &str,
    ) -> anyhow::Result<Option<FileRecord>> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("PK", user_pk(user_id))
            .key("SK", s(format!("FILE#{file_id}")))
            .update_expression("SET #name = :name")
            .condition_expression("attribute_exists(PK)")
            .expression_attribute_names("#name", "name")
            .expression_attribute_values(":name", s(name))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match result {
            Ok(out) => out
                .attributes
                .map(|item| Self::file_from(&item))
                .transpose(),
            Err(e)
                if matches!(
                    e.as_service_error(),
                    Some(UpdateItemError::ConditionalCheckFailedException(_))
                ) =>
            {
                Ok(None)
            }
            Err(e) => Err(anyhow!(
                "DynamoDB UpdateItem (rename): {}",
                e.message().unwrap_or("no message")
            )
            .context(format!("{e:?}"))),
        }
    }

    /// Verified content by hash.
    ///
    /// # Errors
    /// DynamoDB failures or a malformed item.
    pub async fn get_content(&self, sha256: &str) -> anyhow::Result<Option<ContentRecord>> {
        self.get(s(format!("CONTENT#{sha256}")), "CONTENT")
            .await?
            .map(|item| Self::content_from(&item))
            .transpose()
    }

    fn content_from(item: &Item) -> anyhow::Result<ContentRecord> {
        Ok(ContentRecord {
            sha256: get_s(item, "sha256")?,
            sha1: get_s(item, "sha1")?,
            size: get_u64(item, "size")?,
            cold_key: get_s(item, "cold_key")?,
            refs: get_u64(item, "refs")?,
            created_at: get_s(item, "created_at")?,
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
                    self.reference_content(&found.sha256, 1)?,
                    content.cold_key.clone(),
                ),
                None => {
                    let item: Item = HashMap::from([
                        ("PK".into(), s(format!("CONTENT#{}", found.sha256))),
                        ("SK".into(), s("CONTENT")),
                        ("sha256".into(), s(&found.sha256)),
                        ("sha1".into(), s(&found.sha1)),
                        ("size".into(), n(found.size)),
                        ("cold_key".into(), s(&found.cold_key)),
                        ("refs".into(), n(1)),
                        ("created_at".into(), s(rfc3339(OffsetDateTime::now_utc()))),
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
                .key("PK", user_pk(&file.user_id))
                .key("SK", s(format!("FILE#{}", file.file_id)))
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
                .expression_attribute_values(":due", Due::HotCopy.key(&file.file_id));
            if declared_differs {
                update = update.expression_attribute_values(
                    ":declared",
                    s(file.sha256.clone().unwrap_or_default()),
                );
            }
            let items = vec![
                content_write,
                TransactWriteItem::builder().update(update.build()?).build(),
            ];
            if self.transact(items, "record verified").await? {
                return Ok(match existing {
                    None => VerifyOutcome::NewContent,
                    Some(_) => VerifyOutcome::Shared { cold_key },
                });
            }
            // A condition failed: either the file changed (gone, or verified by another
            // worker), or the content appeared or vanished under us. Look again.
            match self.get_file(&file.user_id, &file.file_id).await? {
                Some(f) if !f.verified => continue,
                _ => return Ok(VerifyOutcome::Stale),
            }
        }
        Err(anyhow!(
            "content {} kept changing while recording a file",
            found.sha256
        ))
    }

    /// # Errors
    /// DynamoDB failures.
    pub async fn put_challenge(&self, c: &ChallengeRecord) -> anyhow::Result<()> {
        let item: Item = HashMap::from([
            ("PK".into(), user_pk(&c.user_id)),
            ("SK".into(), s(format!("CHALLENGE#{}", c.challenge_id))),
            ("challenge_id".into(), s(&c.challenge_id)),
            ("name".into(), s(&c.name)),
            ("size".into(), n(c.size)),
            ("sha256".into(), s(&c.sha256)),
            ("content_type".into(), s(&c.content_type)),
            ("nonce".into(), s(&c.nonce)),
            ("ranges".into(), s(serde_json::to_string(&c.ranges)?)),
            ("expires_at".into(), s(rfc3339(c.expires_at))),
            ("ttl".into(), n(c.expires_at.unix_timestamp())),
        ]);
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .context("DynamoDB PutItem (challenge)")?;
        Ok(())
    }

    /// Removes and returns the caller's challenge: whoever takes it first is the only one
    /// who ever gets it, so a challenge answers at most one proof.
    ///
    /// # Errors
    /// DynamoDB failures or a malformed item.
    pub async fn take_challenge(
        &self,
        user_id: &str,
        challenge_id: &str,
    ) -> anyhow::Result<Option<ChallengeRecord>> {
        let out = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("PK", user_pk(user_id))
            .key("SK", s(format!("CHALLENGE#{challenge_id}")))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .context("DynamoDB DeleteItem (challenge)")?;
        // Nothing was deleted: absent attributes (DynamoDB) or an empty map (moto).
        let Some(item) = out.attributes.filter(|a| !a.is_empty()) else {
            return Ok(None);
        };
        Ok(Some(ChallengeRecord {
            user_id: user_id.to_string(),
            challenge_id: get_s(&item, "challenge_id")?,
            name: get_s(&item, "name")?,
            size: get_u64(&item, "size")?,
            sha256: get_s(&item, "sha256")?,
            content_type: get_s(&item, "content_type")?,
            nonce: get_s(&item, "nonce")?,
            ranges: serde_json::from_str(&get_s(&item, "ranges")?)?,
            expires_at: OffsetDateTime::parse(&get_s(&item, "expires_at")?, &Rfc3339)?,
        }))
    }

    /// Records a File on existing verified content (instant upload): the file, a reference on
    /// the content and the owner's counters within `quota`, all or nothing. [`AddFile::Refused`]
    /// if the content vanished (collected) in the meantime.
    ///
    /// # Errors
    /// DynamoDB failures.
    pub async fn create_shared_file(
        &self,
        file: &FileRecord,
        quota: u64,
    ) -> anyhow::Result<AddFile> {
        let sha256 = file.sha256.as_deref().context("a shared file has a hash")?;
        if file.size > quota {
            return Ok(AddFile::OverQuota);
        }
        let tx = self
            .transact_items(
                vec![
                    self.put(Self::file_item(file), "attribute_not_exists(PK)")?,
                    self.reference_content(sha256, 1)?,
                    self.count_files_within(&file.user_id, file.size.into(), 1, Some(quota))?,
                ],
                "instant upload",
            )
            .await?;
        Ok(AddFile::from_tx(tx, 2))
    }

    /// Deletes a content record if nothing references it; `false` if something does again.
    ///
    /// # Errors
    /// DynamoDB failures.
    pub async fn delete_unreferenced_content(&self, sha256: &str) -> anyhow::Result<bool> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("PK", s(format!("CONTENT#{sha256}")))
            .key("SK", s("CONTENT"))
            .condition_expression("refs <= :zero")
            .expression_attribute_values(":zero", n(0))
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

    /// Notes that a file's hot copy is gone; downloads then come from the cold copy.
    ///
    /// # Errors
    /// DynamoDB failures.
    pub async fn mark_hot_removed(&self, user_id: &str, file_id: &str) -> anyhow::Result<()> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("PK", user_pk(user_id))
            .key("SK", s(format!("FILE#{file_id}")))
            .update_expression("SET hot_present = :false REMOVE due_pk, due_at")
            .condition_expression("attribute_exists(PK)")
            .expression_attribute_values(":false", Av::Bool(false))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e)
                if matches!(
                    e.as_service_error(),
                    Some(UpdateItemError::ConditionalCheckFailedException(_))
                ) =>
            {
                Ok(())
            }
            Err(e) => Err(e).context("DynamoDB UpdateItem (hot removed)"),
        }
    }

    /// Deletes the caller's file record and takes it off their counters, all or nothing.
    /// Returns `false` if it was already gone.
    ///
    /// # Errors
    /// DynamoDB failures.
    pub async fn delete_file(&self, file: &FileRecord) -> anyhow::Result<bool> {
        let delete = Delete::builder()
            .table_name(&self.table)
            .key("PK", user_pk(&file.user_id))
            .key("SK", s(format!("FILE#{}", file.file_id)))
            .condition_expression("attribute_exists(PK)")
            .build()?;
        let mut items = vec![
            TransactWriteItem::builder().delete(delete).build(),
            self.count_files(&file.user_id, -(file.size as i128), -1)?,
        ];
        // A verified file holds a reference on its content; the janitor collects content
        // whose count reaches zero.
        if let (true, Some(sha256)) = (file.verified, &file.sha256) {
            items.push(self.reference_content(sha256, -1)?);
        }
        self.transact(items, "delete file").await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsOutput;
    use aws_sdk_dynamodb::types::CancellationReason;
    use aws_sdk_dynamodb::types::error::TransactionCanceledException;
    use aws_smithy_mocks::{RuleMode, mock, mock_client};

    fn canceled(code: &'static str) -> TransactWriteItemsError {
        TransactWriteItemsError::TransactionCanceledException(
            TransactionCanceledException::builder()
                .message("Transaction cancelled")
                .cancellation_reasons(CancellationReason::builder().code("None").build())
                .cancellation_reasons(CancellationReason::builder().code(code).build())
                .build(),
        )
    }

    fn file() -> FileRecord {
        FileRecord {
            user_id: "u".into(),
            file_id: "f".into(),
            name: "n".into(),
            size: 3,
            sha256: None,
            declared_sha256: None,
            content_type: "text/plain".into(),
            created_at: String::new(),
            object_key: "k".into(),
            tier: "hot".into(),
            verified: false,
            upload_id: "up".into(),
            sha1: None,
            cold_key: None,
            hot_present: true,
        }
    }

    /// A transaction that meets a concurrent one is retried until it goes through.
    #[tokio::test]
    async fn conflicting_transactions_are_retried() {
        let rule = mock!(Client::transact_write_items)
            .sequence()
            .error(|| canceled("TransactionConflict"))
            .times(2)
            .output(|| TransactWriteItemsOutput::builder().build())
            .build();
        let repo = Repo::new(
            mock_client!(aws_sdk_dynamodb, RuleMode::Sequential, [&rule]),
            "t",
        );
        assert!(repo.delete_file(&file()).await.unwrap());
        assert_eq!(rule.num_calls(), 3);
    }

    /// A false condition is an answer (`false`), never retried and never an error.
    #[tokio::test]
    async fn false_conditions_are_answers() {
        let rule =
            mock!(Client::transact_write_items).then_error(|| canceled("ConditionalCheckFailed"));
        let repo = Repo::new(
            mock_client!(aws_sdk_dynamodb, RuleMode::Sequential, [&rule]),
            "t",
        );
        assert!(!repo.delete_file(&file()).await.unwrap());
        assert_eq!(rule.num_calls(), 1);
    }

    /// Endless conflicts end in an error after a bounded number of attempts.
    #[tokio::test]
    async fn endless_conflicts_give_up() {
        let rule = mock!(Client::transact_write_items)
            .sequence()
            .error(|| canceled("TransactionConflict"))
            .repeatedly()
            .build();
        let repo = Repo::new(
            mock_client!(aws_sdk_dynamodb, RuleMode::Sequential, [&rule]),
            "t",
        );
        assert!(repo.delete_file(&file()).await.is_err());
        assert_eq!(rule.num_calls(), TRANSACTION_ATTEMPTS as usize);
    }
}

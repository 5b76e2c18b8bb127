//! Checkpoints of transfers that take more than one run.
//!
//! A Lambda run ends after 15 minutes, so a large object's copy to the cold store is done in
//! several runs. Each run stops at a part boundary and leaves a checkpoint here: the cold
//! multipart upload, the parts done and the hashes' midstates (opaque to the repo). The next
//! run continues from it. Writes are conditional on the version read, so of two runs racing
//! from one checkpoint only one moves it on. The item is keyed by the file alone, so the
//! janitor can tell a cold upload in progress from an abandoned one.

use anyhow::Context;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue as Av;
use filestore_contract::domain::{FileId, UserId};
use time::OffsetDateTime;

use super::Repo;
use super::item::{
    Item, get_parsed, get_s, get_time, get_u64, is_condition_failure, n, rfc3339, s,
};
use crate::keys;

/// How long a checkpoint nobody moves on is kept (DynamoDB's TTL removes it).
pub const CHECKPOINT_TTL: time::Duration = time::Duration::days(3);

/// A saved transfer checkpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransferCheckpoint {
    pub file_id: FileId,
    pub user_id: UserId,
    /// Starts at 1; each save adds one.
    pub version: u64,
    /// The cold multipart upload the transfer writes to.
    pub cold_upload_id: String,
    /// The transfer's own state, as it serialises it.
    pub state: String,
    /// Binary state too large for a string (part digests), as the transfer packs it.
    pub blob: Vec<u8>,
    pub updated_at: OffsetDateTime,
}

fn key(file_id: &FileId) -> [(String, Av); 2] {
    [
        ("PK".into(), s(keys::transfer_pk(file_id))),
        ("SK".into(), s(keys::TRANSFER_SK)),
    ]
}

impl TransferCheckpoint {
    fn from_item(item: &Item) -> anyhow::Result<Self> {
        let pk = get_s(item, "PK")?;
        Ok(Self {
            file_id: keys::parse_transfer_pk(&pk)
                .with_context(|| format!("checkpoint key {pk:?}"))?,
            user_id: get_parsed(item, "user_id")?,
            version: get_u64(item, "version")?,
            cold_upload_id: get_s(item, "cold_upload_id")?,
            state: get_s(item, "state")?,
            blob: match item.get("blob") {
                Some(Av::B(b)) => b.as_ref().to_vec(),
                _ => Vec::new(),
            },
            updated_at: get_time(item, "updated_at")?,
        })
    }
}

impl Repo {
    /// The checkpoint of a file's transfer, if one is saved.
    ///
    /// # Errors
    /// DynamoDB failures, or an item that does not parse.
    pub async fn get_transfer(
        &self,
        file_id: &FileId,
    ) -> anyhow::Result<Option<TransferCheckpoint>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(file_id).into_iter().collect()))
            .consistent_read(true)
            .send()
            .await
            .context("DynamoDB GetItem (transfer checkpoint)")?;
        out.item
            .as_ref()
            .map(TransferCheckpoint::from_item)
            .transpose()
    }

    /// Saves `checkpoint` if the saved one is still at `checkpoint.version - 1` (none for
    /// version 1). `false`: another run moved it on first, and this one must stop.
    ///
    /// # Errors
    /// DynamoDB failures.
    pub async fn save_transfer(&self, checkpoint: &TransferCheckpoint) -> anyhow::Result<bool> {
        let mut item: Item = key(&checkpoint.file_id).into_iter().collect();
        item.extend([
            ("user_id".into(), s(&checkpoint.user_id)),
            ("version".into(), n(checkpoint.version)),
            ("cold_upload_id".into(), s(&checkpoint.cold_upload_id)),
            ("state".into(), s(&checkpoint.state)),
            ("updated_at".into(), s(rfc3339(checkpoint.updated_at))),
            (
                "ttl".into(),
                n((checkpoint.updated_at + CHECKPOINT_TTL).unix_timestamp()),
            ),
        ]);
        if !checkpoint.blob.is_empty() {
            item.insert("blob".into(), Av::B(Blob::new(checkpoint.blob.clone())));
        }
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item));
        let put = match checkpoint.version {
            0 | 1 => put.condition_expression("attribute_not_exists(PK)"),
            v => put
                .condition_expression("version = :previous")
                .expression_attribute_values(":previous", n(v - 1)),
        };
        match put.send().await {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(is_condition_failure) => Ok(false),
            Err(e) => Err(e).context("DynamoDB PutItem (transfer checkpoint)"),
        }
    }

    /// Removes a file's checkpoint (done, or found unusable). Removing none is not an error.
    ///
    /// # Errors
    /// DynamoDB failures.
    pub async fn delete_transfer(&self, file_id: &FileId) -> anyhow::Result<()> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(file_id).into_iter().collect()))
            .send()
            .await
            .context("DynamoDB DeleteItem (transfer checkpoint)")?;
        Ok(())
    }
}

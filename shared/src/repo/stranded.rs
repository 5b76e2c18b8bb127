//! Files whose transfer to the cold store never verified them: the messages that announced
//! them were dead-lettered (the cold store was down through every retry), or lost.
//!
//! A file completed from an upload enters the `due` index (kind `TRANSFER`) unverified, due
//! a while after its creation; the transfer's verification moves it to the hot-copy kind in
//! the same write, and a delete takes it out. So what the index still holds past its due
//! time is stranded, and the janitor asks for its transfer again, putting the file off by a
//! growing wait first ([`Repo::postpone_transfer`]), so that of two janitors only one asks.

use anyhow::Context;
use aws_sdk_dynamodb::types::AttributeValue as Av;
use filestore_contract::domain::{FileId, UserId};
use time::OffsetDateTime;

use super::Repo;
use super::item::{get_bool, get_parsed, get_s, get_time, is_condition_failure, n, rfc3339, s};
use crate::keys::{self, Due};

/// An unverified file past its due time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StrandedTransfer {
    pub user_id: UserId,
    pub file_id: FileId,
    /// The hot object the transfer copies.
    pub object_key: String,
    pub created_at: OffsetDateTime,
    /// When it was due, as the item holds it: the janitor's postponement is conditioned on it.
    pub due_at: String,
    /// How many times its transfer was asked for again already.
    pub retries: u32,
}

impl Repo {
    /// Unverified files due at or before `now`, for the janitor to re-queue their transfer.
    ///
    /// # Errors
    /// DynamoDB failures or a malformed item.
    pub async fn stranded_transfers(
        &self,
        now: OffsetDateTime,
    ) -> anyhow::Result<Vec<StrandedTransfer>> {
        self.due(Due::Transfer, now)
            .await?
            .iter()
            .filter(|item| !get_bool(item, "verified"))
            .map(|item| {
                Ok(StrandedTransfer {
                    user_id: get_parsed(item, "user_id")?,
                    file_id: get_parsed(item, "file_id")?,
                    object_key: get_s(item, "object_key")?,
                    created_at: get_time(item, "created_at")?,
                    due_at: get_s(item, "due_at")?,
                    retries: match item.get("transfer_retries") {
                        Some(Av::N(v)) => v.parse().context("transfer_retries")?,
                        _ => 0,
                    },
                })
            })
            .collect()
    }

    /// Puts a stranded file off until `next` and counts `retries` asks for its transfer, if
    /// it is still unverified and due as read; `false` if not (verified, deleted, or put off
    /// by another janitor meanwhile).
    ///
    /// # Errors
    /// DynamoDB failures.
    pub async fn postpone_transfer(
        &self,
        stranded: &StrandedTransfer,
        next: OffsetDateTime,
        retries: u32,
    ) -> anyhow::Result<bool> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("PK", s(keys::user_pk(&stranded.user_id)))
            .key("SK", s(keys::file_sk(&stranded.file_id)))
            .update_expression("SET due_at = :next, transfer_retries = :retries")
            .condition_expression("verified = :false AND due_pk = :due AND due_at = :seen")
            .expression_attribute_values(":false", Av::Bool(false))
            .expression_attribute_values(":due", s(Due::Transfer.key(stranded.file_id.as_str())))
            .expression_attribute_values(":seen", s(&stranded.due_at))
            .expression_attribute_values(":next", s(rfc3339(next)))
            .expression_attribute_values(":retries", n(retries))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(is_condition_failure) => Ok(false),
            Err(e) => Err(e).context("DynamoDB UpdateItem (transfer postponed)"),
        }
    }
}

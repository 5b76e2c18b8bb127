//! What every entity's reads and writes go through: one item by key, a partition's items by
//! sort-key prefix (whole, or a page at a time), and write transactions, which tell a false condition (an answer: which
//! item refused) from a conflict with a concurrent transaction (retried with backoff).

use std::collections::HashMap;

use anyhow::Context;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue as Av, Put, TransactWriteItem};

use filestore_contract::domain::UserId;

use super::Repo;
use super::item::{Item, s};
use crate::keys;

/// How a write transaction ended.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Tx {
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

impl Repo {
    pub(super) async fn get(&self, pk: String, sk: &str) -> anyhow::Result<Option<Item>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("PK", s(pk))
            .key("SK", s(sk))
            .consistent_read(true)
            .send()
            .await
            .context("DynamoDB GetItem")?;
        Ok(out.item)
    }

    pub(super) fn put(&self, item: Item, condition: &str) -> anyhow::Result<TransactWriteItem> {
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

    /// Runs a write transaction. `Ok(false)` when one of its conditions was false (nothing
    /// was written); conflicts with concurrent transactions are retried with backoff.
    pub(super) async fn transact(
        &self,
        items: Vec<TransactWriteItem>,
        what: &str,
    ) -> anyhow::Result<bool> {
        Ok(self.transact_items(items, what).await? == Tx::Done)
    }

    /// [`Self::transact`], telling which item's condition refused it.
    pub(super) async fn transact_items(
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

    /// A user's items that `query` asks for, and whether more follow.
    ///
    /// # Errors
    /// DynamoDB failures.
    pub(super) async fn query(
        &self,
        user_id: &UserId,
        query: Query<'_>,
    ) -> anyhow::Result<(Vec<Item>, bool)> {
        let pk = s(keys::user_pk(user_id));
        let mut values = query.values;
        values.insert(":pk".into(), pk.clone());
        values.insert(":prefix".into(), s(query.prefix));
        let names = (!query.names.is_empty()).then_some(query.names);
        let mut start = query
            .start_after
            .map(|sk| HashMap::from([("PK".to_string(), pk), ("SK".to_string(), s(sk))]));
        let mut items = Vec::new();
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("PK = :pk AND begins_with(SK, :prefix)")
                .set_filter_expression(query.filter.map(str::to_string))
                .set_expression_attribute_names(names.clone())
                .set_expression_attribute_values(Some(values.clone()))
                .scan_index_forward(!query.newest_first)
                .consistent_read(true)
                .set_limit(query.limit.map(|l| (l - items.len()) as i32))
                .set_exclusive_start_key(start)
                .send()
                .await
                .with_context(|| format!("DynamoDB Query ({})", query.prefix))?;
            items.extend(out.items.unwrap_or_default());
            start = out.last_evaluated_key;
            let full = query.limit.is_some_and(|l| items.len() >= l);
            if start.is_none() || full {
                return Ok((items, start.is_some()));
            }
        }
    }

    /// One page of `query`: up to `limit` items, and whether another page follows. One item
    /// more than the page is read to tell, so the last page says there is no next.
    ///
    /// # Errors
    /// DynamoDB failures.
    pub(super) async fn page(
        &self,
        user_id: &UserId,
        query: Query<'_>,
        limit: u32,
    ) -> anyhow::Result<(Vec<Item>, bool)> {
        let (mut items, _) = self.query(user_id, query.limit(limit + 1)).await?;
        let more = items.len() > limit as usize;
        items.truncate(limit as usize);
        Ok((items, more))
    }
}

/// What [`Repo::query`] reads of one user's partition: the items whose sort key starts with a
/// prefix, in key order unless [`Query::newest_first`].
pub(super) struct Query<'a> {
    prefix: &'a str,
    limit: Option<usize>,
    start_after: Option<String>,
    filter: Option<&'a str>,
    names: HashMap<String, String>,
    values: Item,
    newest_first: bool,
}

impl<'a> Query<'a> {
    pub(super) fn prefix(prefix: &'a str) -> Self {
        Self {
            prefix,
            limit: None,
            start_after: None,
            filter: None,
            names: HashMap::new(),
            values: Item::new(),
            newest_first: false,
        }
    }

    /// At most `limit` items.
    pub(super) fn limit(mut self, limit: u32) -> Self {
        self.limit = Some(limit as usize);
        self
    }

    /// Only the items after the one keyed `sk`, in the query's order.
    pub(super) fn after(mut self, sk: Option<String>) -> Self {
        self.start_after = sk;
        self
    }

    /// Only the items `expression` admits. DynamoDB applies its `Limit` before the filter,
    /// so the query reads on until it has its limit of admitted items or reaches the end.
    pub(super) fn filter(mut self, expression: &'a str) -> Self {
        self.filter = Some(expression);
        self
    }

    /// Names an attribute in the filter (`#placeholder`), for reserved words.
    pub(super) fn name(mut self, placeholder: &str, attribute: &str) -> Self {
        self.names.insert(placeholder.into(), attribute.into());
        self
    }

    /// A value in the filter (`:placeholder`).
    pub(super) fn value(mut self, placeholder: &str, value: Av) -> Self {
        self.values.insert(placeholder.into(), value);
        self
    }

    /// Sort keys descending.
    pub(super) fn newest_first(mut self) -> Self {
        self.newest_first = true;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repo::FileRecord;
    use aws_sdk_dynamodb::Client;
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
        crate::repo::files::fixture(crate::repo::Copies::Unverified)
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
        assert!(repo.delete_file(&file(), None).await.unwrap());
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
        assert!(!repo.delete_file(&file(), None).await.unwrap());
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
        assert!(repo.delete_file(&file(), None).await.is_err());
        assert_eq!(rule.num_calls(), TRANSACTION_ATTEMPTS as usize);
    }
}

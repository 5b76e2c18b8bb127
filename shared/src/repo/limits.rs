//! Attempt counters that throttle: failed logins per username and source address and per
//! username, signups per source address, and instant-upload challenges per user
//! (`docs/dynamodb.md` has their keys).
//!
//! An attempt takes its place in the counter *before* it runs, in one conditional write, and
//! an attempt that turns out not to count (a right password) gives it back. So concurrent
//! attempts cannot all pass a check that none of them has been counted in yet: of any number
//! of them, at most [`Limit::max`] per window get through. A window opens at its first
//! attempt and lasts [`Limit::window`]; the item expires (TTL) when it ends.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::Context;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{ReturnValue, ReturnValuesOnConditionCheckFailure};

use filestore_contract::domain::UserId;

use super::Repo;
use super::item::{Item, get_u64, n, s};
use crate::keys;

/// At most `max` attempts per `window`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limit {
    pub max: u64,
    pub window: Duration,
}

/// One counter's item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Counter {
    pk: String,
    sk: String,
}

impl Counter {
    /// Failed logins of a (canonical) username over every source address.
    pub fn login_failures(canonical_name: &str) -> Self {
        Self {
            pk: keys::username_pk(canonical_name),
            sk: keys::LOGIN_FAILURES_SK.into(),
        }
    }

    /// Failed logins of a (canonical) username from one source address.
    pub fn login_failures_from(canonical_name: &str, address: &str) -> Self {
        Self {
            pk: keys::username_pk(canonical_name),
            sk: keys::login_failures_from_sk(address),
        }
    }

    /// Instant-upload challenges issued to a user.
    pub fn challenges(user_id: &UserId) -> Self {
        Self {
            pk: keys::user_pk(user_id),
            sk: keys::CHALLENGE_COUNT_SK.into(),
        }
    }

    /// Signups from one source address.
    pub fn signups(address: &str) -> Self {
        Self {
            pk: keys::signups_pk(address),
            sk: keys::SIGNUPS_SK.into(),
        }
    }
}

/// How taking a place in a counter ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Taken {
    /// Counted in the window that opened at `window_start` (Unix seconds).
    Counted { window_start: i64 },
    /// The window is full; it ends in `retry_after` seconds (at least 1).
    Refused { retry_after: u64 },
}

/// Tries at taking a place when every try loses a race to a concurrent attempt: each lost
/// race means another attempt was counted, so the window fills after at most `max` of them.
const TAKE_TRIES: usize = 8;

/// A counter's window as read back: its start and how many attempts it holds.
fn window_of(item: &Item) -> anyhow::Result<(i64, u64)> {
    Ok((
        get_u64(item, "window_start")? as i64,
        get_u64(item, "count")?,
    ))
}

impl Repo {
    /// Takes a place for one attempt at `now` (Unix seconds) in `counter`: one more in its
    /// live window if it has room, or the first of a new window when it has none or its
    /// window ended.
    ///
    /// # Errors
    /// DynamoDB failures or a malformed item.
    pub async fn take(&self, counter: &Counter, limit: Limit, now: i64) -> anyhow::Result<Taken> {
        let window = limit.window.as_secs() as i64;
        let cutoff = now - window;
        for _ in 0..TAKE_TRIES {
            let added = self
                .client
                .update_item()
                .table_name(&self.table)
                .key("PK", s(&counter.pk))
                .key("SK", s(&counter.sk))
                .update_expression("ADD #count :one")
                .condition_expression("window_start > :cutoff AND #count < :max")
                .expression_attribute_names("#count", "count")
                .expression_attribute_values(":one", n(1))
                .expression_attribute_values(":cutoff", n(cutoff))
                .expression_attribute_values(":max", n(limit.max))
                .return_values(ReturnValue::AllNew)
                .return_values_on_condition_check_failure(
                    ReturnValuesOnConditionCheckFailure::AllOld,
                )
                .send()
                .await;
            let old = match added {
                Ok(out) => {
                    let (window_start, _) = window_of(out.attributes().unwrap_or(&Item::new()))?;
                    return Ok(Taken::Counted { window_start });
                }
                Err(e) => match e.into_service_error() {
                    UpdateItemError::ConditionalCheckFailedException(e) => e.item,
                    e => return Err(e).context("DynamoDB UpdateItem (take a place)"),
                },
            };
            if let Some(item) = &old {
                let (window_start, count) = window_of(item)?;
                if window_start > cutoff {
                    if count >= limit.max {
                        // Clamped: a concurrent attempt may have opened the window a
                        // second after this one read the clock.
                        return Ok(Taken::Refused {
                            retry_after: (window_start + window - now).clamp(1, window) as u64,
                        });
                    }
                    // The window had room after all: another attempt gave its place back.
                    continue;
                }
            }
            let item: Item = HashMap::from([
                ("PK".into(), s(&counter.pk)),
                ("SK".into(), s(&counter.sk)),
                ("count".into(), n(1)),
                ("window_start".into(), n(now)),
                ("ttl".into(), n(now + window)),
            ]);
            let opened = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(PK) OR window_start <= :cutoff")
                .expression_attribute_values(":cutoff", n(cutoff))
                .send()
                .await;
            match opened {
                Ok(_) => return Ok(Taken::Counted { window_start: now }),
                // A concurrent attempt opened the window first: count in it.
                Err(e)
                    if matches!(
                        e.as_service_error(),
                        Some(PutItemError::ConditionalCheckFailedException(_))
                    ) => {}
                Err(e) => return Err(e).context("DynamoDB PutItem (open a window)"),
            }
        }
        // Still racing after this many tries: the counter is under a flood. Refusing is
        // the answer that cannot let an attempt through uncounted.
        Ok(Taken::Refused { retry_after: 1 })
    }

    /// Gives back a place taken in the window that opened at `window_start`; nothing if
    /// that window has ended meanwhile.
    ///
    /// # Errors
    /// DynamoDB failures.
    pub async fn give_back(&self, counter: &Counter, window_start: i64) -> anyhow::Result<()> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("PK", s(&counter.pk))
            .key("SK", s(&counter.sk))
            .update_expression("ADD #count :minus_one")
            .condition_expression("window_start = :start AND #count > :zero")
            .expression_attribute_names("#count", "count")
            .expression_attribute_values(":minus_one", n(-1))
            .expression_attribute_values(":start", n(window_start))
            .expression_attribute_values(":zero", n(0))
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
            Err(e) => Err(e).context("DynamoDB UpdateItem (give a place back)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::Client;
    use aws_sdk_dynamodb::operation::put_item::PutItemOutput;
    use aws_sdk_dynamodb::operation::update_item::UpdateItemOutput;
    use aws_sdk_dynamodb::types::AttributeValue as Av;
    use aws_sdk_dynamodb::types::error::ConditionalCheckFailedException;
    use aws_smithy_mocks::{RuleMode, mock, mock_client};

    const LIMIT: Limit = Limit {
        max: 5,
        window: Duration::from_secs(900),
    };
    const NOW: i64 = 1_000_000;

    fn window(start: i64, count: u64) -> Item {
        HashMap::from([
            ("window_start".to_string(), Av::N(start.to_string())),
            ("count".to_string(), Av::N(count.to_string())),
        ])
    }

    fn refused_with(item: Option<Item>) -> UpdateItemError {
        UpdateItemError::ConditionalCheckFailedException(
            ConditionalCheckFailedException::builder()
                .message("The conditional request failed")
                .set_item(item)
                .build(),
        )
    }

    /// A full live window refuses, saying when it ends, and writes nothing more.
    #[tokio::test]
    async fn a_full_window_refuses_until_it_ends() {
        let update =
            mock!(Client::update_item).then_error(|| refused_with(Some(window(NOW - 100, 5))));
        let put = mock!(Client::put_item).then_output(|| PutItemOutput::builder().build());
        let repo = Repo::new(
            mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&update, &put]),
            "t",
        );
        let counter = Counter::signups("192.0.2.1");
        assert_eq!(
            repo.take(&counter, LIMIT, NOW).await.unwrap(),
            Taken::Refused { retry_after: 800 }
        );
        assert_eq!(put.num_calls(), 0);
    }

    /// A missing or ended window is replaced by a new one that counts this attempt.
    #[tokio::test]
    async fn an_ended_window_opens_a_new_one() {
        for old in [None, Some(window(NOW - 900, 5))] {
            let update = mock!(Client::update_item).then_error(move || refused_with(old.clone()));
            let put = mock!(Client::put_item).then_output(|| PutItemOutput::builder().build());
            let repo = Repo::new(
                mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&update, &put]),
                "t",
            );
            let counter = Counter::login_failures("alice");
            assert_eq!(
                repo.take(&counter, LIMIT, NOW).await.unwrap(),
                Taken::Counted { window_start: NOW }
            );
            assert_eq!(put.num_calls(), 1);
        }
    }

    /// Losing the race to open a window counts the attempt in the window the winner opened.
    #[tokio::test]
    async fn losing_the_race_to_open_counts_in_the_winners_window() {
        let update = mock!(Client::update_item)
            .sequence()
            .error(|| refused_with(None))
            .output(|| {
                UpdateItemOutput::builder()
                    .set_attributes(Some(window(NOW - 1, 2)))
                    .build()
            })
            .build();
        let put = mock!(Client::put_item).then_error(|| {
            PutItemError::ConditionalCheckFailedException(
                ConditionalCheckFailedException::builder().build(),
            )
        });
        let repo = Repo::new(
            mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&update, &put]),
            "t",
        );
        let counter = Counter::login_failures_from("alice", "192.0.2.1");
        assert_eq!(
            repo.take(&counter, LIMIT, NOW).await.unwrap(),
            Taken::Counted {
                window_start: NOW - 1
            }
        );
        assert_eq!((update.num_calls(), put.num_calls()), (2, 1));
    }
}

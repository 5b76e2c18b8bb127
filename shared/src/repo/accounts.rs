//! Account writes beyond signup: password changes, which revoke every earlier token, and the
//! failed-login counter behind login throttling.
//!
//! The counter lives in the username's own partition (`USERNAME#<name>` / `LOGINFAIL`), so one
//! query answers both "who is this" and "how often did logging in as them fail", and unknown
//! names are counted exactly like known ones.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::Context;
use aws_sdk_dynamodb::types::AttributeValue as Av;
use filestore_contract::domain::UserId;

use super::Repo;
use super::item::{Item, get_parsed, get_u64, is_condition_failure, n, s};
use crate::keys;

/// Failed logins for one username since `window_start` (Unix seconds).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoginFailures {
    pub count: u64,
    pub window_start: i64,
}

impl Repo {
    /// The user id a (canonical) username belongs to, if any, and its failed logins, in one read.
    ///
    /// # Errors
    /// DynamoDB failures or a malformed item.
    pub async fn login_lookup(
        &self,
        canonical_name: &str,
    ) -> anyhow::Result<(Option<UserId>, Option<LoginFailures>)> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("PK = :pk")
            .expression_attribute_values(":pk", s(keys::username_pk(canonical_name)))
            .consistent_read(true)
            .send()
            .await
            .context("DynamoDB Query (login)")?;
        let (mut user_id, mut failures) = (None, None);
        for item in out.items() {
            match item.get("SK") {
                Some(Av::S(sk)) if sk == keys::USERNAME_SK => {
                    user_id = Some(get_parsed(item, "user_id")?)
                }
                Some(Av::S(sk)) if sk == keys::LOGIN_FAILURES_SK => {
                    failures = Some(LoginFailures {
                        count: get_u64(item, "count")?,
                        window_start: get_u64(item, "window_start")? as i64,
                    });
                }
                _ => {}
            }
        }
        Ok((user_id, failures))
    }

    /// Counts a failed login at `now` (Unix seconds): one more in the current window, or the
    /// first of a new window when there is none or it began more than `window` ago.
    ///
    /// # Errors
    /// DynamoDB failures.
    pub async fn record_login_failure(
        &self,
        canonical_name: &str,
        now: i64,
        window: Duration,
    ) -> anyhow::Result<()> {
        let pk = s(keys::username_pk(canonical_name));
        let cutoff = now - window.as_secs() as i64;
        // Two tries: a concurrent failure may open the window between our two writes.
        for _ in 0..2 {
            let added = self
                .client
                .update_item()
                .table_name(&self.table)
                .key("PK", pk.clone())
                .key("SK", s(keys::LOGIN_FAILURES_SK))
                .update_expression("ADD #count :one")
                .condition_expression("window_start > :cutoff")
                .expression_attribute_names("#count", "count")
                .expression_attribute_values(":one", n(1))
                .expression_attribute_values(":cutoff", n(cutoff))
                .send()
                .await;
            match added {
                Ok(_) => return Ok(()),
                Err(e) if e.as_service_error().is_some_and(is_condition_failure) => {}
                Err(e) => return Err(e).context("DynamoDB UpdateItem (login failure)"),
            }
            let item: Item = HashMap::from([
                ("PK".into(), pk.clone()),
                ("SK".into(), s(keys::LOGIN_FAILURES_SK)),
                ("count".into(), n(1)),
                ("window_start".into(), n(now)),
                ("ttl".into(), n(now + window.as_secs() as i64)),
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
                Ok(_) => return Ok(()),
                Err(e) if e.as_service_error().is_some_and(is_condition_failure) => {}
                Err(e) => return Err(e).context("DynamoDB PutItem (login failure)"),
            }
        }
        Ok(())
    }

    /// Forgets a username's failed logins (after a successful one).
    ///
    /// # Errors
    /// DynamoDB failures.
    pub async fn clear_login_failures(&self, canonical_name: &str) -> anyhow::Result<()> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("PK", s(keys::username_pk(canonical_name)))
            .key("SK", s(keys::LOGIN_FAILURES_SK))
            .send()
            .await
            .context("DynamoDB DeleteItem (login failures)")?;
        Ok(())
    }

    /// Replaces a user's password hash and bumps their token version, which revokes every
    /// token issued before. `false` if the version is no longer `expected` (a concurrent
    /// change won, or the caller's token was already stale).
    ///
    /// # Errors
    /// DynamoDB failures.
    pub async fn change_password(
        &self,
        user_id: &UserId,
        new_hash: &str,
        expected_version: u64,
    ) -> anyhow::Result<bool> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("PK", s(keys::user_pk(user_id)))
            .key("SK", s(keys::PROFILE_SK))
            .update_expression("SET password_hash = :hash, token_version = :next")
            .condition_expression("token_version = :expected")
            .expression_attribute_values(":hash", s(new_hash))
            .expression_attribute_values(":next", n(expected_version + 1))
            .expression_attribute_values(":expected", n(expected_version))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(is_condition_failure) => Ok(false),
            Err(e) => Err(e).context("DynamoDB UpdateItem (password)"),
        }
    }
}

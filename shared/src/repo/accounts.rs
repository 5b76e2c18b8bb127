//! Account writes beyond signup: password changes, which revoke every earlier token. The
//! counters that throttle logins and signups are in `limits`.

use anyhow::Context;
use filestore_contract::domain::UserId;

use super::Repo;
use super::item::{is_condition_failure, n, s};
use crate::keys;

impl Repo {
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

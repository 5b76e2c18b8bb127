//! Proof-of-possession challenges for instant upload: issued into the caller's partition and
//! taken by deleting them, so each answers at most one proof. How many each user is issued is
//! counted by [`super::Counter::challenges`].

use std::collections::HashMap;

use anyhow::Context;
use aws_sdk_dynamodb::types::ReturnValue;
use filestore_contract::domain::{ChallengeId, FolderId, OnConflict, UserId};
use time::OffsetDateTime;

use super::Repo;
use super::item::{Item, get_parsed, get_s, get_time, get_u64, n, rfc3339, s};
use crate::keys;

/// A proof-of-possession challenge for instant upload: single use, short-lived, bound to the
/// user it was issued to (it lives in their partition).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChallengeRecord {
    pub user_id: UserId,
    pub challenge_id: ChallengeId,
    pub name: String,
    /// Where the File goes after a correct proof, and what to do if its name is taken.
    pub parent_id: FolderId,
    pub on_conflict: OnConflict,
    pub size: u64,
    pub sha256: String,
    pub content_type: String,
    pub nonce: String,
    pub ranges: Vec<filestore_contract::api::ByteRange>,
    pub expires_at: OffsetDateTime,
}

impl Repo {
    /// # Errors
    /// DynamoDB failures.
    pub async fn put_challenge(&self, c: &ChallengeRecord) -> anyhow::Result<()> {
        let item: Item = HashMap::from([
            ("PK".into(), s(keys::user_pk(&c.user_id))),
            ("SK".into(), s(keys::challenge_sk(&c.challenge_id))),
            ("challenge_id".into(), s(&c.challenge_id)),
            ("name".into(), s(&c.name)),
            ("parent_id".into(), s(&c.parent_id)),
            ("on_conflict".into(), s(c.on_conflict.as_str())),
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
        user_id: &UserId,
        challenge_id: &ChallengeId,
    ) -> anyhow::Result<Option<ChallengeRecord>> {
        let out = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("PK", s(keys::user_pk(user_id)))
            .key("SK", s(keys::challenge_sk(challenge_id)))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .context("DynamoDB DeleteItem (challenge)")?;
        // Nothing was deleted: absent attributes (DynamoDB) or an empty map (moto).
        let Some(item) = out.attributes.filter(|a| !a.is_empty()) else {
            return Ok(None);
        };
        Ok(Some(ChallengeRecord {
            user_id: user_id.clone(),
            challenge_id: get_parsed(&item, "challenge_id")?,
            name: get_s(&item, "name")?,
            parent_id: match item.get("parent_id") {
                Some(_) => get_parsed(&item, "parent_id")?,
                None => FolderId::root(),
            },
            on_conflict: match item.get("on_conflict") {
                Some(_) => {
                    OnConflict::parse(&get_s(&item, "on_conflict")?).map_err(anyhow::Error::msg)?
                }
                None => OnConflict::Rename,
            },
            size: get_u64(&item, "size")?,
            sha256: get_s(&item, "sha256")?,
            content_type: get_s(&item, "content_type")?,
            nonce: get_s(&item, "nonce")?,
            ranges: serde_json::from_str(&get_s(&item, "ranges")?)?,
            expires_at: get_time(&item, "expires_at")?,
        }))
    }
}

//! Listing a folder: its child entries a page at a time in name order, folders first, and the
//! records they name read in batches; the id behind one name; how deep a subtree goes.

use std::collections::HashMap;

use anyhow::Context;
use aws_sdk_dynamodb::types::KeysAndAttributes;
use filestore_contract::domain::{FileId, FolderId, UserId};

use super::Repo;
use super::folders::Child;
use super::item::{Item, get_parsed, get_s, opt_s, s};
use super::table::Query;
use crate::keys::{self, Kind};

impl Repo {
    /// One page of a folder's entries after the child entry `after` (a sort key the caller
    /// checked is this folder's): folders first, then files, by name bytes. One `Query` of
    /// the child entries, then strongly consistent `BatchGetItem`s of the items they name.
    /// An entry whose item vanished in between is left out.
    ///
    /// # Errors
    /// DynamoDB failures or a malformed item.
    pub async fn list_children(
        &self,
        user_id: &UserId,
        parent: &FolderId,
        limit: u32,
        after: Option<String>,
    ) -> anyhow::Result<(Vec<Child>, Option<String>)> {
        let prefix = keys::children_prefix(parent);
        let query = Query::prefix(&prefix).after(after);
        let (entries, more) = self.page(user_id, query, limit).await?;
        let mut wanted = Vec::new();
        for entry in &entries {
            let sk = get_s(entry, "SK")?;
            let (kind, _) =
                keys::parse_child_sk(parent, &sk).context("a child entry out of its folder")?;
            let item_sk = match kind {
                Kind::Folder => keys::folder_sk(&get_parsed(entry, "id")?),
                Kind::File => keys::file_sk(&get_parsed::<FileId>(entry, "id")?),
            };
            wanted.push((sk, item_sk));
        }
        let mut found = self
            .batch_get(user_id, wanted.iter().map(|(_, k)| k.clone()).collect())
            .await?;
        let mut children = Vec::with_capacity(wanted.len());
        for (_, item_sk) in &wanted {
            let Some(item) = found.remove(item_sk) else {
                continue;
            };
            children.push(if item_sk.starts_with(keys::FOLDER_PREFIX) {
                Child::Folder(Self::folder_from(&item)?)
            } else {
                Child::File(Self::file_from(&item)?)
            });
        }
        let cursor = more
            .then(|| wanted.last().map(|(sk, _)| sk.clone()))
            .flatten();
        Ok((children, cursor))
    }

    /// Items of the caller's partition by sort key, strongly consistent, 100 keys a call and
    /// again for what DynamoDB left unprocessed.
    pub(super) async fn batch_get(
        &self,
        user_id: &UserId,
        sort_keys: Vec<String>,
    ) -> anyhow::Result<HashMap<String, Item>> {
        let pk = keys::user_pk(user_id);
        let mut found = HashMap::new();
        for chunk in sort_keys.chunks(100) {
            let mut keys_and_attributes = KeysAndAttributes::builder().consistent_read(true);
            for sk in chunk {
                keys_and_attributes = keys_and_attributes.keys(HashMap::from([
                    ("PK".to_string(), s(&pk)),
                    ("SK".to_string(), s(sk)),
                ]));
            }
            let mut request = Some(HashMap::from([(
                self.table.clone(),
                keys_and_attributes.build()?,
            )]));
            while let Some(items) = request.take().filter(|r| !r.is_empty()) {
                let out = self
                    .client
                    .batch_get_item()
                    .set_request_items(Some(items))
                    .send()
                    .await
                    .context("DynamoDB BatchGetItem")?;
                for item in out
                    .responses
                    .unwrap_or_default()
                    .remove(&self.table)
                    .unwrap_or_default()
                {
                    found.insert(get_s(&item, "SK")?, item);
                }
                request = out.unprocessed_keys;
            }
        }
        Ok(found)
    }

    /// The id named by the child entry `name` of `kind` in `parent`, if any.
    ///
    /// # Errors
    /// DynamoDB failures.
    pub async fn child_id(
        &self,
        user_id: &UserId,
        parent: &FolderId,
        kind: Kind,
        name: &str,
    ) -> anyhow::Result<Option<String>> {
        Ok(self
            .get(keys::user_pk(user_id), &keys::child_sk(parent, kind, name))
            .await?
            .and_then(|item| opt_s(&item, "id")))
    }

    /// How many levels of folders `folder` holds, itself included (1 for a folder without
    /// subfolders), counted up to `cap`: one `Query` of subfolder entries per folder visited.
    ///
    /// # Errors
    /// DynamoDB failures or a malformed entry.
    pub async fn subtree_height(
        &self,
        user_id: &UserId,
        folder: &FolderId,
        cap: usize,
    ) -> anyhow::Result<usize> {
        let mut level = vec![folder.clone()];
        let mut height = 0;
        while !level.is_empty() && height < cap {
            height += 1;
            let mut next = Vec::new();
            for f in &level {
                let prefix = format!("{}0#", keys::children_prefix(f));
                let (items, _) = self.query(user_id, Query::prefix(&prefix)).await?;
                for item in items {
                    next.push(get_parsed(&item, "id")?);
                }
            }
            level = next;
        }
        Ok(if level.is_empty() { height } else { cap + 1 })
    }
}

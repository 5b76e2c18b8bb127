//! The trash function: the caller's trash, newest first (cursor pages); restore an item
//! (back where it was, or elsewhere, under another name); purge one item now; purge them all.
//!
//! Items reach the trash through `DELETE /v1/files/{id}` and `DELETE /v1/folders/{id}`, and leave it
//! by restore, by purge, or by the janitor once their `purge_at` passes. Every entry lives in
//! its owner's partition and is found through the trashed item's own record, so another
//! user's id is simply not found (404). Of a restore and a purge of one item, or two restores,
//! exactly one wins: each is one transaction conditioned on the trash entry still being there.
//! A purge releases bytes, quota and content references exactly as the v1 delete did; a
//! folder's purge goes on below it a step at a time (`filestore_shared::purge`), and what a
//! request has no time left for, the janitor finishes.

use std::convert::Infallible;
use std::time::Instant;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use filestore_contract::api::{Entry, RestoreRequest, TrashList};
use filestore_contract::domain::{FolderId, UserId};
use filestore_contract::{Function, RouteKey};
use filestore_shared::http::{
    json, json_body, no_content, parse_limit, query_param, respond, serve,
};
use filestore_shared::keys::parse_trash_sk;
use filestore_shared::purge::Budget;
use filestore_shared::repo::{FolderRecord, MAX_DEPTH, Place, Restored, TrashEntry};
use filestore_shared::trash::{REQUEST_PURGE_TIME, Trashed};
use filestore_shared::{ApiError, AppState};
use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use tracing::instrument;

const CURSOR_PREFIX: &str = "t1:";

/// Entries purged per page when the whole trash is emptied.
const EMPTY_PAGE: u32 = 100;

/// Serves one API Gateway request.
pub async fn handler(state: &AppState, req: Request) -> Result<Response<Body>, Infallible> {
    serve(Function::Trash, &req, async {
        respond(route(state, &req).await)
    })
    .await
}

async fn route(state: &AppState, req: &Request) -> Result<Response<Body>, ApiError> {
    let route = state.route(req).await?;
    let user = &route.caller()?.user_id;
    let id = || route.id_of::<String>("trash entry");
    match route.key() {
        RouteKey::ListTrash => {
            let limit = parse_limit(query_param(req, "limit").as_deref())?;
            let after = query_param(req, "cursor")
                .map(|c| decode_cursor(&c))
                .transpose()?;
            list(state, user, limit, after.as_deref()).await
        }
        RouteKey::RestoreTrash => {
            let id = id()?;
            restore(state, user, &id, json_body(req)?).await
        }
        RouteKey::PurgeTrash => purge(state, user, &id()?).await,
        RouteKey::EmptyTrash => empty(state, user).await,
        _ => Err(ApiError::NotFound("route")),
    }
}

/// The opaque cursor that resumes a listing after the entry keyed `sk`.
pub fn encode_cursor(sk: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{CURSOR_PREFIX}{sk}"))
}

/// The trash entry key inside a cursor; only a trash entry's key, so the query it resumes
/// stays in the caller's trash.
///
/// # Errors
/// 400 for a cursor this server did not make.
pub fn decode_cursor(cursor: &str) -> Result<String, ApiError> {
    URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .and_then(|s| s.strip_prefix(CURSOR_PREFIX).map(str::to_string))
        .filter(|sk| parse_trash_sk(sk).is_some())
        .ok_or_else(|| ApiError::bad_input("invalid_cursor", "cursor is not valid"))
}

#[instrument(skip(state))]
async fn list(
    state: &AppState,
    user_id: &UserId,
    limit: u32,
    after: Option<&str>,
) -> Result<Response<Body>, ApiError> {
    let (entries, more) = state.repo.list_trash(user_id, limit, after).await?;
    let next_cursor = more
        .then(|| entries.last().map(|e| encode_cursor(&e.sk())))
        .flatten();
    json(
        StatusCode::OK,
        &TrashList {
            entries: entries.iter().map(TrashEntry::view).collect(),
            next_cursor,
        },
    )
}

#[instrument(skip(state, input))]
async fn restore(
    state: &AppState,
    user_id: &UserId,
    id: &str,
    input: RestoreRequest,
) -> Result<Response<Body>, ApiError> {
    let (entry, item) = state.trashed(user_id, id).await?;
    let name = input
        .name
        .as_ref()
        .map_or(entry.name.clone(), ToString::to_string);
    // A folder comes back with its subtree, which must fit under the target: the depth is
    // judged on the target's chain as read and written on the condition that it still is,
    // so a move on the chain meanwhile makes it read again.
    let mut restored = None;
    for _ in 0..8 {
        // A given folder must be the caller's and live (404); the original one may have gone
        // since (409 parent_gone).
        let (parent, chain) = match &input.parent_id {
            Some(parent) => (parent.clone(), state.live_folder(user_id, parent).await?),
            None => {
                let original =
                    FolderId::parse(&entry.original_parent_id).map_err(anyhow::Error::msg)?;
                let Some(chain) = state.repo.live_chain(user_id, &original).await? else {
                    return Err(ApiError::parent_gone());
                };
                (original, chain)
            }
        };
        let to = Place {
            parent,
            name: name.clone(),
        };
        let outcome = match &item {
            Trashed::File(file) => state.repo.restore_file(file, &entry, &to).await?,
            Trashed::Folder(folder) => {
                let room = MAX_DEPTH.saturating_sub(chain.len());
                let height = state
                    .repo
                    .subtree_height(user_id, &folder.folder_id, room)
                    .await?;
                if height > room {
                    return Err(ApiError::unprocessable(
                        "too_deep",
                        format!("folders nest at most {MAX_DEPTH} deep"),
                    ));
                }
                state
                    .repo
                    .restore_folder(folder, &entry, &to, &chain)
                    .await?
            }
        };
        match outcome {
            Restored::Done => {
                restored = Some(to);
                break;
            }
            // Purged or restored by a request that won the race.
            Restored::Gone => return Err(ApiError::NotFound("trash entry")),
            Restored::NameTaken => return Err(ApiError::name_taken(&to.name)),
            // Gone, trashed or moved meanwhile: the next read tells which.
            Restored::ParentGone => continue,
        }
    }
    let to = restored.ok_or_else(|| {
        anyhow::anyhow!("the target of restoring {id} kept changing while restoring it")
    })?;
    let entry = match item {
        Trashed::File(file) => {
            tracing::info!(file_id = %file.file_id, "file restored");
            Entry::File(state.owned_file(user_id, &file.file_id).await?.view())
        }
        Trashed::Folder(folder) => {
            tracing::info!(folder_id = %folder.folder_id, "folder restored");
            Entry::Folder(
                FolderRecord {
                    name: to.name,
                    parent_id: to.parent,
                    trashed_at: None,
                    ..folder
                }
                .view(),
            )
        }
    };
    json(StatusCode::OK, &entry)
}

#[instrument(skip(state))]
async fn purge(state: &AppState, user_id: &UserId, id: &str) -> Result<Response<Body>, ApiError> {
    let (entry, _) = state.trashed(user_id, id).await?;
    let mut budget = Budget::until(Instant::now() + REQUEST_PURGE_TIME);
    if state.purge(&entry, &mut budget).await?.is_none() {
        return Err(ApiError::NotFound("trash entry"));
    }
    Ok(no_content())
}

/// Purges every entry, a page at a time. An entry restored meanwhile is left alone. A purge
/// that takes longer than [`REQUEST_PURGE_TIME`] leaves the rest of its folders' subtrees to
/// the janitor, which goes on where it stopped.
#[instrument(skip(state))]
async fn empty(state: &AppState, user_id: &UserId) -> Result<Response<Body>, ApiError> {
    let mut budget = Budget::until(Instant::now() + REQUEST_PURGE_TIME);
    let mut after = None;
    loop {
        let (entries, more) = state
            .repo
            .list_trash(user_id, EMPTY_PAGE, after.as_deref())
            .await?;
        for entry in &entries {
            state.purge(entry, &mut budget).await?;
        }
        match entries.last() {
            Some(last) if more => after = Some(last.sk()),
            _ => break,
        }
    }
    tracing::info!("trash emptied");
    Ok(no_content())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_forgeries_are_400() {
        let sk = filestore_shared::keys::trash_sk(1_733_000_000_123, "x");
        assert_eq!(decode_cursor(&encode_cursor(&sk)).unwrap(), sk);
        for bad in [
            "",
            "!!!",
            &URL_SAFE_NO_PAD.encode("t1:FILE#x"),
            &URL_SAFE_NO_PAD.encode("t1:TRASH#12#x"),
            &URL_SAFE_NO_PAD.encode(format!("f1:{sk}")),
        ] {
            assert_eq!(decode_cursor(bad).unwrap_err().status(), 400, "{bad}");
        }
    }
}

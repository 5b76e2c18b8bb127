//! The folders function: create a folder, read one with its ancestors, list what it holds
//! (folders first, then files, by name bytes, in pages), rename or move one, move one to the
//! trash with everything below it, and find the file or folder at a path.
//!
//! Every folder lives in its owner's partition, so another user's folder id is simply not
//! found (404). Names are unique per folder across files and folders through child entries
//! written in the same transaction as the item they name (`docs/dynamodb.md`), so two
//! clients creating one name at once get one `201` and one `409 name_taken`. A move checks
//! in its transaction that the target's chain of folders is still the one read, so two
//! moves that would nest two folders in each other cannot both commit.

use std::convert::Infallible;

use filestore_contract::api::{
    Ancestor, CreateFolderRequest, Entry, EntryList, FolderResponse, FolderView, MoveRequest,
};
use filestore_contract::domain::{FileId, FileName, FolderId};
use filestore_contract::{Function, RouteKey};
use filestore_shared::http::{
    json, json_body, no_content, parse_limit, query_param, respond, serve,
};
use filestore_shared::keys::{self, Kind};
use filestore_shared::repo::{
    Child, FolderRecord, MAX_DEPTH, Place, Placed, UserRecord, root_view,
};
use filestore_shared::{ApiError, AppState};
use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use time::OffsetDateTime;
use tracing::instrument;

const CURSOR_PREFIX: &str = "c1:";

/// Serves one API Gateway request.
pub async fn handler(state: &AppState, req: Request) -> Result<Response<Body>, Infallible> {
    serve(Function::Folders, &req, async {
        respond(route(state, &req).await)
    })
    .await
}

async fn route(state: &AppState, req: &Request) -> Result<Response<Body>, ApiError> {
    let route = state.route(req).await?;
    let user = route.caller()?;
    let id = || route.id_of::<FolderId>("folder");
    match route.key() {
        RouteKey::CreateFolder => create(state, user, json_body(req)?).await,
        RouteKey::GetFolder => get(state, user, &id()?).await,
        RouteKey::ListChildren => {
            let folder = id()?;
            let limit = parse_limit(query_param(req, "limit").as_deref())?;
            let after = query_param(req, "cursor")
                .map(|c| decode_cursor(&folder, &c))
                .transpose()?;
            children(state, user, &folder, limit, after).await
        }
        RouteKey::MoveFolder => {
            let folder = id()?;
            move_folder(state, user, &folder, json_body(req)?).await
        }
        RouteKey::DeleteFolder => delete(state, user, &id()?).await,
        RouteKey::ResolvePath => {
            let path = query_param(req, "path")
                .ok_or_else(|| ApiError::bad_input("invalid_path", "give a path, e.g. /a/b"))?;
            resolve(state, user, &path).await
        }
        _ => Err(ApiError::NotFound("route")),
    }
}

/// The opaque cursor that resumes a folder's listing after the child entry `sk`.
pub fn encode_cursor(sk: &str) -> String {
    filestore_shared::http::encode_cursor(CURSOR_PREFIX, sk)
}

/// The child entry inside a cursor, which must be one of `folder`'s.
///
/// # Errors
/// 400 for a cursor this server did not make for this folder.
pub fn decode_cursor(folder: &FolderId, cursor: &str) -> Result<String, ApiError> {
    let sk: String = filestore_shared::http::decode_cursor(CURSOR_PREFIX, cursor)?;
    match keys::parse_child_sk(folder, &sk) {
        Some(_) => Ok(sk),
        None => Err(ApiError::bad_input(
            "invalid_cursor",
            "cursor is not one of this folder's",
        )),
    }
}

/// The folders of an absolute path's segments: `/` is none, `/a/b/` is `a`, `b`.
///
/// # Errors
/// 400 for a path that is not absolute, has an empty segment, or a segment no file or
/// folder could be named.
pub fn parse_path(path: &str) -> Result<Vec<FileName>, ApiError> {
    let bad = |message: String| ApiError::bad_input("invalid_path", message);
    let rest = path
        .strip_prefix('/')
        .ok_or_else(|| bad("a path starts with '/'".into()))?;
    if rest.is_empty() {
        return Ok(Vec::new());
    }
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    let segments: Vec<FileName> = rest
        .split('/')
        .map(|segment| FileName::parse(segment).map_err(|e| bad(format!("{segment:?}: {e}"))))
        .collect::<Result<_, _>>()?;
    if segments.len() > MAX_DEPTH + 1 {
        return Err(bad(format!(
            "a path has at most {} segments",
            MAX_DEPTH + 1
        )));
    }
    Ok(segments)
}

fn entry_of(child: Child) -> Entry {
    match child {
        Child::Folder(folder) => Entry::Folder(folder.view()),
        Child::File(file) => Entry::File(file.view()),
    }
}

/// The root folder, as the contract shows it.
fn root(user: &UserRecord) -> FolderView {
    root_view(user.created_at)
}

#[instrument(skip_all, fields(user_id = %user.user_id))]
async fn create(
    state: &AppState,
    user: &UserRecord,
    input: CreateFolderRequest,
) -> Result<Response<Body>, ApiError> {
    let user_id = &user.user_id;
    let parent = input.parent_id.unwrap_or_default();
    let folder = FolderRecord {
        user_id: user_id.clone(),
        folder_id: FolderId::generate(),
        name: input.name.to_string(),
        parent_id: parent.clone(),
        created_at: OffsetDateTime::now_utc(),
        trashed_at: None,
        purging: false,
        subtree_version: 0,
    };
    // The depth is judged on the parent's chain as read, and written on the condition that
    // the chain is still so: a folder on it moved meanwhile makes it read again.
    for _ in 0..8 {
        let chain = state.live_folder(user_id, &parent).await?;
        if chain.len() + 1 > MAX_DEPTH {
            return Err(too_deep());
        }
        match state.repo.create_folder(&folder, &chain).await? {
            Placed::Done(()) => return json(StatusCode::CREATED, &folder.view()),
            Placed::NameTaken => return Err(ApiError::name_taken(&folder.name)),
            Placed::ParentGone | Placed::Stale => continue,
        }
    }
    Err(anyhow::anyhow!("the chain of folder {parent} kept changing while creating in it").into())
}

fn too_deep() -> ApiError {
    ApiError::unprocessable("too_deep", format!("folders nest at most {MAX_DEPTH} deep"))
}

#[instrument(skip(state, user), fields(user_id = %user.user_id))]
async fn get(
    state: &AppState,
    user: &UserRecord,
    folder_id: &FolderId,
) -> Result<Response<Body>, ApiError> {
    let mut chain = state.live_folder(&user.user_id, folder_id).await?;
    let (folder, ancestors) = match chain.pop() {
        None => (root(user), Vec::new()),
        Some(folder) => {
            let root = Ancestor {
                folder_id: FolderId::root(),
                name: String::new(),
            };
            let below = chain.iter().map(FolderRecord::ancestor);
            (folder.view(), std::iter::once(root).chain(below).collect())
        }
    };
    json(StatusCode::OK, &FolderResponse { folder, ancestors })
}

#[instrument(skip(state, user), fields(user_id = %user.user_id))]
async fn children(
    state: &AppState,
    user: &UserRecord,
    folder_id: &FolderId,
    limit: u32,
    after: Option<String>,
) -> Result<Response<Body>, ApiError> {
    state.live_folder(&user.user_id, folder_id).await?;
    let (children, last) = state
        .repo
        .list_children(&user.user_id, folder_id, limit, after)
        .await?;
    json(
        StatusCode::OK,
        &EntryList {
            entries: children.into_iter().map(entry_of).collect(),
            next_cursor: last.as_deref().map(encode_cursor),
        },
    )
}

/// A rename, a move, or both, decided on what was read and written on the condition that it
/// still holds; when it no longer does (a concurrent move or rename), read and decide again.
#[instrument(skip(state, user, input), fields(user_id = %user.user_id))]
async fn move_folder(
    state: &AppState,
    user: &UserRecord,
    folder_id: &FolderId,
    input: MoveRequest,
) -> Result<Response<Body>, ApiError> {
    if folder_id.is_root() {
        return Err(ApiError::bad_input(
            "root_folder",
            "the root folder cannot be renamed or moved",
        ));
    }
    if input.name.is_none() && input.parent_id.is_none() {
        return Err(ApiError::bad_input(
            "invalid_request",
            "give a new name, a parent_id, or both",
        ));
    }
    let user_id = &user.user_id;
    for _ in 0..8 {
        let Some(folder) = state.live_folder(user_id, folder_id).await?.pop() else {
            return Err(ApiError::NotFound("folder"));
        };
        let to = Place {
            parent: input.parent_id.clone().unwrap_or(folder.parent_id.clone()),
            name: input
                .name
                .as_ref()
                .map_or(folder.name.clone(), |n| n.to_string()),
        };
        let to_chain = state.live_folder(user_id, &to.parent).await?;
        if to.parent == *folder_id || to_chain.iter().any(|f| f.folder_id == *folder_id) {
            return Err(ApiError::conflict(
                "cycle",
                "a folder cannot be moved into itself or below itself",
            ));
        }
        if to.parent == folder.parent_id && to.name == folder.name {
            return json(StatusCode::OK, &folder.view());
        }
        if to.parent != folder.parent_id {
            let room = MAX_DEPTH - to_chain.len();
            let height = state.repo.subtree_height(user_id, folder_id, room).await?;
            if height > room {
                return Err(too_deep());
            }
        }
        match state.repo.move_folder(&folder, &to, &to_chain).await? {
            Placed::Done(folder) => return json(StatusCode::OK, &folder.view()),
            Placed::NameTaken => return Err(ApiError::name_taken(&to.name)),
            Placed::ParentGone | Placed::Stale => continue,
        }
    }
    Err(anyhow::anyhow!("folder {folder_id} kept changing while moving it").into())
}

/// `DELETE /v1/folders/{id}` moves the folder, and everything below it, to the trash.
#[instrument(skip(state, user), fields(user_id = %user.user_id))]
async fn delete(
    state: &AppState,
    user: &UserRecord,
    folder_id: &FolderId,
) -> Result<Response<Body>, ApiError> {
    state.trash_folder(&user.user_id, folder_id).await?;
    tracing::info!("folder trashed");
    Ok(no_content())
}

/// Walks a path from the root one segment at a time through the child entries, which only
/// live files and folders have: one read per folder segment, then the item itself.
#[instrument(skip(state, user), fields(user_id = %user.user_id))]
async fn resolve(
    state: &AppState,
    user: &UserRecord,
    path: &str,
) -> Result<Response<Body>, ApiError> {
    let user_id = &user.user_id;
    let mut segments = parse_path(path)?;
    let Some(last) = segments.pop() else {
        return json(StatusCode::OK, &Entry::Folder(root(user)));
    };
    let not_found = || ApiError::NotFound("path");
    let mut parent = FolderId::root();
    for segment in &segments {
        let id = state
            .repo
            .child_id(user_id, &parent, Kind::Folder, segment.as_str())
            .await?
            .ok_or_else(not_found)?;
        parent = FolderId::parse(&id).map_err(anyhow::Error::msg)?;
    }
    let (folder, file) = tokio::try_join!(
        state
            .repo
            .child_id(user_id, &parent, Kind::Folder, last.as_str()),
        state
            .repo
            .child_id(user_id, &parent, Kind::File, last.as_str()),
    )?;
    if let Some(id) = folder {
        let id = FolderId::parse(&id).map_err(anyhow::Error::msg)?;
        let folder = state
            .repo
            .get_folder(user_id, &id)
            .await?
            .filter(|f| !f.trashed())
            .ok_or_else(not_found)?;
        return json(StatusCode::OK, &Entry::Folder(folder.view()));
    }
    let id = file.ok_or_else(not_found)?;
    let id = FileId::parse(&id).map_err(anyhow::Error::msg)?;
    let file = state
        .repo
        .get_file(user_id, &id)
        .await?
        .ok_or_else(not_found)?;
    json(StatusCode::OK, &Entry::File(file.view()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_absolute_segments_of_valid_names() {
        assert!(parse_path("/").unwrap().is_empty());
        let names: Vec<String> = parse_path("/a/b c/d.txt")
            .unwrap()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(names, ["a", "b c", "d.txt"]);
        assert_eq!(parse_path("/a/b/").unwrap().len(), 2);
        for bad in ["", "a/b", "//", "/a//b", "/a/../b", "/./a"] {
            assert_eq!(parse_path(bad).unwrap_err().status(), 400, "{bad}");
        }
        assert!(parse_path(&"/a".repeat(MAX_DEPTH + 2)).is_err());
    }

    #[test]
    fn cursors_belong_to_their_folder() {
        let (root, other) = (FolderId::root(), FolderId::generate());
        let sk = keys::child_sk(&root, Kind::File, "a.txt");
        assert_eq!(decode_cursor(&root, &encode_cursor(&sk)).unwrap(), sk);
        assert_eq!(
            decode_cursor(&other, &encode_cursor(&sk))
                .unwrap_err()
                .status(),
            400
        );
        let not_a_child = filestore_shared::http::encode_cursor(CURSOR_PREFIX, "FILE#x");
        for bad in ["", "!!!", &not_a_child] {
            assert_eq!(decode_cursor(&root, bad).unwrap_err().status(), 400);
        }
    }
}

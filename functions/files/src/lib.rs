//! The files function: list (cursor pages), get, download URL, rename or move, delete (to
//! the trash).
//!
//! A trashed file, or one in a trashed folder, is a 404 here like a file that never existed,
//! and left out of the list.
//! Files live in their owner's DynamoDB partition, so every lookup is keyed by the caller
//! and another user's file id is simply not found (404). The list cursor is opaque to
//! clients but carries only a file id that is re-scoped to the caller, so a forged cursor
//! can neither crash the query (400) nor reach another partition.

use std::convert::Infallible;

use filestore_contract::api::{DownloadResponse, FileList, MoveRequest};
use filestore_contract::domain::{FileId, UserId};
use filestore_contract::{Function, RouteKey};
use filestore_shared::http::{json, json_body, no_content, query_param, redirect, respond, serve};
use filestore_shared::repo::{Place, Placed, rfc3339};
use filestore_shared::{ApiError, AppState};
use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use time::OffsetDateTime;
use tracing::instrument;

/// Page size when `limit` is not given.
pub use filestore_shared::http::DEFAULT_LIMIT;

const CURSOR_PREFIX: &str = "f1:";

/// Serves one API Gateway request.
pub async fn handler(state: &AppState, req: Request) -> Result<Response<Body>, Infallible> {
    serve(Function::Files, &req, async {
        respond(route(state, &req).await)
    })
    .await
}

async fn route(state: &AppState, req: &Request) -> Result<Response<Body>, ApiError> {
    let route = state.route(req).await?;
    let user = &route.caller()?.user_id;
    let id = || route.id_of("file");
    match route.key() {
        RouteKey::ListFiles => {
            let limit = parse_limit(query_param(req, "limit").as_deref())?;
            let after = query_param(req, "cursor")
                .map(|c| decode_cursor(&c))
                .transpose()?;
            list(state, user, limit, after.as_ref()).await
        }
        RouteKey::GetFile => get(state, user, &id()?).await,
        RouteKey::DownloadFile => {
            let redirect = parse_redirect(query_param(req, "redirect").as_deref())?;
            download(state, user, &id()?, redirect).await
        }
        RouteKey::RenameFile => {
            let id = id()?;
            rename(state, user, &id, json_body(req)?).await
        }
        RouteKey::DeleteFile => delete(state, user, &id()?).await,
        _ => Err(ApiError::NotFound("route")),
    }
}

pub use filestore_shared::http::parse_limit;

/// `redirect`: `true`/`1` answers 302, `false`/`0` or absent answers JSON.
///
/// # Errors
/// 400 for anything else.
pub fn parse_redirect(raw: Option<&str>) -> Result<bool, ApiError> {
    match raw {
        None | Some("false") | Some("0") => Ok(false),
        Some("true") | Some("1") => Ok(true),
        Some(_) => Err(ApiError::bad_input(
            "invalid_redirect",
            "redirect must be true or false",
        )),
    }
}

/// The opaque cursor that resumes a listing after `file_id`.
pub fn encode_cursor(file_id: &FileId) -> String {
    filestore_shared::http::encode_cursor(CURSOR_PREFIX, file_id.as_str())
}

/// The file id inside a cursor.
///
/// # Errors
/// 400 for a cursor this server did not make.
pub fn decode_cursor(cursor: &str) -> Result<FileId, ApiError> {
    filestore_shared::http::decode_cursor(CURSOR_PREFIX, cursor)
}

#[instrument(skip(state))]
async fn list(
    state: &AppState,
    user_id: &UserId,
    limit: u32,
    after: Option<&FileId>,
) -> Result<Response<Body>, ApiError> {
    let (files, more) = state.list_live_files(user_id, limit, after).await?;
    let next_cursor = more
        .then(|| files.last().map(|f| encode_cursor(&f.file_id)))
        .flatten();
    json(
        StatusCode::OK,
        &FileList {
            files: files.iter().map(|f| f.view()).collect(),
            next_cursor,
        },
    )
}

#[instrument(skip(state))]
async fn get(
    state: &AppState,
    user_id: &UserId,
    file_id: &FileId,
) -> Result<Response<Body>, ApiError> {
    json(
        StatusCode::OK,
        &state.owned_file(user_id, file_id).await?.view(),
    )
}

#[instrument(skip(state))]
async fn download(
    state: &AppState,
    user_id: &UserId,
    file_id: &FileId,
    redirect_to: bool,
) -> Result<Response<Body>, ApiError> {
    let file = state.owned_file(user_id, file_id).await?;
    let ttl = state.config.presign_ttl;
    let url = state.presign_download(&file).await?;
    if redirect_to {
        return redirect(&url);
    }
    json(
        StatusCode::OK,
        &DownloadResponse {
            url,
            expires_at: rfc3339(OffsetDateTime::now_utc() + ttl),
        },
    )
}

/// A rename, a move to another folder, or both: one transaction that also moves the
/// file's name claim, conditioned on the file as read; a file changed meanwhile is read again.
#[instrument(skip(state, input))]
async fn rename(
    state: &AppState,
    user_id: &UserId,
    file_id: &FileId,
    input: MoveRequest,
) -> Result<Response<Body>, ApiError> {
    if input.name.is_none() && input.parent_id.is_none() {
        return Err(ApiError::bad_input(
            "invalid_request",
            "give a new name, a parent_id, or both",
        ));
    }
    if let Some(parent) = &input.parent_id {
        state.live_folder(user_id, parent).await?;
    }
    // A file changes under a move only by another rename, move or delete; a few reads settle.
    for _ in 0..5 {
        let file = state.owned_file(user_id, file_id).await?;
        let to = Place {
            parent: input.parent_id.clone().unwrap_or(file.parent_id.clone()),
            name: input
                .name
                .as_ref()
                .map_or(file.name.clone(), |n| n.to_string()),
        };
        if to.parent == file.parent_id && to.name == file.name {
            return json(StatusCode::OK, &file.view());
        }
        match state.repo.move_file(&file, &to).await? {
            Placed::Done(file) => return json(StatusCode::OK, &file.view()),
            Placed::NameTaken => return Err(ApiError::name_taken(&to.name)),
            Placed::ParentGone => return Err(ApiError::NotFound("folder")),
            Placed::Stale => continue,
        }
    }
    Err(anyhow::anyhow!("file {file_id} kept changing while moving it").into())
}

/// `DELETE /v1/files/{id}` moves the file to the trash; the trash function purges it.
#[instrument(skip(state))]
async fn delete(
    state: &AppState,
    user_id: &UserId,
    file_id: &FileId,
) -> Result<Response<Body>, ApiError> {
    state.trash_file(user_id, file_id).await?;
    tracing::info!("file trashed");
    Ok(no_content())
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    #[test]
    fn limits_are_bounded() {
        assert_eq!(parse_limit(None).unwrap(), 100);
        assert_eq!(parse_limit(Some("1")).unwrap(), 1);
        assert_eq!(parse_limit(Some("1000")).unwrap(), 1000);
        for bad in ["0", "1001", "-1", "ten", "", "1.5"] {
            assert_eq!(parse_limit(Some(bad)).unwrap_err().status(), 400, "{bad}");
        }
    }

    #[test]
    fn cursors_round_trip_and_forgeries_are_400() {
        let id = FileId::generate();
        assert_eq!(decode_cursor(&encode_cursor(&id)).unwrap(), id);
        for bad in ["", "!!!", "Zm9v", &URL_SAFE_NO_PAD.encode("f1:../../x")] {
            assert_eq!(decode_cursor(bad).unwrap_err().status(), 400, "{bad}");
        }
    }

    #[test]
    fn redirect_flag_is_strict() {
        assert!(!parse_redirect(None).unwrap());
        assert!(parse_redirect(Some("true")).unwrap());
        assert!(parse_redirect(Some("yes")).is_err());
    }
}

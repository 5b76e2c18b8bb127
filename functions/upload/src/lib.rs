//! The upload function: create a multipart upload, presign its parts, report its status
//! (resume), list the caller's unfinished uploads (cursor pages), abort.
//!
//! S3 is the truth for which parts exist: status reads them with ListParts, never from our
//! own records, so a client that crashed resumes from exactly what S3 holds.

use std::collections::BTreeSet;
use std::convert::Infallible;
use std::time::Duration;

use filestore_contract::api::{
    ChecksumAlgorithm, CreateUploadRequest, CreateUploadResponse, PART_METHOD, PresignPartsRequest,
    PresignPartsResponse, PresignedPart, UploadList,
};
use filestore_contract::domain::{ContentType, FileId, PartPlan, UploadId, UserId};
use filestore_contract::{Function, RouteKey};
use filestore_shared::http::{
    decode_cursor, encode_cursor, json, json_body, no_content, parse_limit, query_param, respond,
    serve,
};
use filestore_shared::keys::object_key;
use filestore_shared::repo::{UploadRecord, UploadState, UserRecord, rfc3339};
use filestore_shared::{ApiError, AppState, metrics};
use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use time::OffsetDateTime;
use tracing::instrument;

/// Most parts one presign call may ask for.
pub use filestore_contract::api::MAX_PARTS_PER_CALL;

/// Serves one API Gateway request.
pub async fn handler(state: &AppState, req: Request) -> Result<Response<Body>, Infallible> {
    serve(Function::Upload, &req, async {
        respond(route(state, &req).await)
    })
    .await
}

async fn route(state: &AppState, req: &Request) -> Result<Response<Body>, ApiError> {
    let route = state.route(req).await?;
    let user = route.caller()?;
    let id = || route.id_of("upload");
    match route.key() {
        RouteKey::CreateUpload => create(state, user, json_body(req)?).await,
        RouteKey::ListUploads => {
            let limit = parse_limit(query_param(req, "limit").as_deref())?;
            let after = query_param(req, "cursor")
                .map(|c| decode_cursor(CURSOR_PREFIX, &c))
                .transpose()?;
            list(state, &user.user_id, limit, after.as_ref()).await
        }
        RouteKey::PresignParts => presign(state, &user.user_id, &id()?, json_body(req)?).await,
        RouteKey::UploadStatus => status(state, &user.user_id, &id()?).await,
        RouteKey::AbortUpload => abort(state, &user.user_id, &id()?).await,
        _ => Err(ApiError::NotFound("route")),
    }
}

fn require_active(upload: &UploadRecord) -> Result<(), ApiError> {
    match upload.state {
        UploadState::Active => Ok(()),
        UploadState::Completed => Err(ApiError::conflict(
            "upload_completed",
            "this upload is already completed",
        )),
    }
}

/// Refuses one more upload of `size` bytes for `user`, judged on the profile as read: at
/// the open-upload limit (429, retried when the earliest open upload, `next_expiry`, ends)
/// or past the quota (413).
fn admission(
    state: &AppState,
    user: &UserRecord,
    size: u64,
    next_expiry: Option<OffsetDateTime>,
) -> Result<(), ApiError> {
    let max = state.config.max_open_uploads;
    if user.open_uploads >= max {
        let retry_after = next_expiry.map_or(60, |at| {
            (at - OffsetDateTime::now_utc()).whole_seconds().max(1) as u64
        });
        return Err(ApiError::TooMany {
            code: "too_many_uploads",
            message: format!(
                "you have {max} unfinished uploads, the most allowed: complete or abort one \
                 first"
            ),
            retry_after,
        });
    }
    state.check_quota(user, size)
}

/// The caller's profile, read again after a refused reservation.
async fn reread(state: &AppState, user_id: &UserId) -> Result<UserRecord, ApiError> {
    state
        .repo
        .get_user(user_id)
        .await?
        .ok_or_else(|| ApiError::unauthorized("this account no longer exists"))
}

/// Attempts at reserving an upload whose refusal the profile read after it does not explain
/// (a concurrent abort or delete freed room in between): each such attempt follows a change.
const RESERVE_ATTEMPTS: u32 = 5;

#[instrument(skip_all, fields(user_id = %user.user_id, upload_id))]
async fn create(
    state: &AppState,
    user: &UserRecord,
    input: CreateUploadRequest,
) -> Result<Response<Body>, ApiError> {
    let size = input.size.get();
    let user_id = &user.user_id;
    // The declared size counts against the quota from now on, and the upload against the
    // open-upload limit, until it completes, is aborted or expires. The profile as read
    // refuses early; the reservation below decides, atomically. Before refusing, the
    // caller's own expired uploads are ended, as the janitor would later.
    let mut user = user.clone();
    let mut swept = false;
    let mut next_expiry = None;
    if admission(state, &user, size, None).is_err() {
        (swept, next_expiry) = (true, state.end_expired_uploads(user_id).await?.1);
        user = reread(state, user_id).await?;
        admission(state, &user, size, next_expiry)?;
    }
    let quota = state.quota_of(&user);
    let max_open = state.config.max_open_uploads;
    let parent_id = input.parent_id.unwrap_or_default();
    let on_conflict = input.on_conflict.unwrap_or_default();
    state
        .check_target(user_id, &parent_id, input.name.as_str(), on_conflict)
        .await?;
    let plan = PartPlan::new(input.size, input.part_size);
    let upload_id = UploadId::generate();
    let file_id = FileId::generate();
    tracing::Span::current().record("upload_id", upload_id.as_str());
    let key = object_key(user_id, &file_id);
    let content_type = input.content_type.unwrap_or_else(ContentType::octet_stream);
    let sha256_parts = input.checksum_algorithm == Some(ChecksumAlgorithm::Sha256);
    let s3_upload_id = state
        .storage
        .create_multipart_with(&key, Some(content_type.as_str()), sha256_parts)
        .await?;
    let now = OffsetDateTime::now_utc();
    let upload = UploadRecord {
        user_id: user_id.clone(),
        upload_id: upload_id.clone(),
        file_id,
        name: input.name.to_string(),
        parent_id,
        on_conflict,
        size,
        sha256: input.sha256.map(String::from),
        content_type: content_type.to_string(),
        part_size: plan.part_size,
        part_count: plan.part_count,
        object_key: key,
        s3_upload_id,
        state: UploadState::Active,
        created_at: now,
        expires_at: now + state.config.upload_ttl,
        reserved: true,
        sha256_parts,
    };
    let mut attempts = 0;
    while !state.repo.create_upload(&upload, quota, max_open).await? {
        attempts += 1;
        let again = reread(state, user_id).await?;
        let refused = match admission(state, &again, size, next_expiry) {
            Ok(()) if attempts < RESERVE_ATTEMPTS => continue,
            Ok(()) => anyhow::anyhow!("upload reservation keeps being refused").into(),
            Err(_) if !swept => {
                (swept, next_expiry) = (true, state.end_expired_uploads(user_id).await?.1);
                continue;
            }
            Err(refused) => refused,
        };
        // The multipart upload was never recorded: nothing else would ever end it.
        state
            .storage
            .abort_multipart(&upload.object_key, &upload.s3_upload_id)
            .await?;
        return Err(refused);
    }
    metrics::add(metrics::UPLOADS_CREATED, 1.0);
    metrics::add(metrics::UPLOADS_CREATED_BYTES, size as f64);
    json(
        StatusCode::CREATED,
        &CreateUploadResponse {
            upload_id,
            part_size: plan.part_size,
            part_count: plan.part_count,
            expires_at: rfc3339(upload.expires_at),
        },
    )
}

#[instrument(skip(state, input))]
async fn presign(
    state: &AppState,
    user_id: &UserId,
    upload_id: &UploadId,
    input: PresignPartsRequest,
) -> Result<Response<Body>, ApiError> {
    let upload = state.live_upload(user_id, upload_id).await?;
    require_active(&upload)?;
    let bad = |message: String| ApiError::bad_input("invalid_part_numbers", message);
    if input.part_numbers.is_empty() || input.part_numbers.len() > MAX_PARTS_PER_CALL {
        return Err(bad(format!(
            "part_numbers must hold 1 to {MAX_PARTS_PER_CALL} part numbers"
        )));
    }
    let mut seen = BTreeSet::new();
    for n in &input.part_numbers {
        if u64::from(n.get()) > upload.part_count {
            return Err(bad(format!(
                "part {} does not exist: this upload has {} part(s)",
                n.get(),
                upload.part_count
            )));
        }
        if !seen.insert(n.get()) {
            return Err(bad(format!("part {} is listed twice", n.get())));
        }
    }
    let checksums = input.checksums_sha256.unwrap_or_default();
    for key in checksums.keys() {
        // Only the canonical form: a key like "01" or "+1" would pass here but miss the
        // lookup below, and the part would be signed without its checksum.
        let listed = key
            .parse::<u32>()
            .is_ok_and(|n| seen.contains(&n) && n.to_string() == *key);
        if !listed {
            return Err(ApiError::bad_input(
                "invalid_checksums",
                format!("checksums_sha256 key {key:?} is not one of the requested part numbers"),
            ));
        }
    }
    // S3 takes part checksums only on an upload created for them, and then wants one on
    // every part.
    if upload.sha256_parts {
        let missing: Vec<String> = input
            .part_numbers
            .iter()
            .filter(|n| !checksums.contains_key(&n.get().to_string()))
            .map(|n| n.get().to_string())
            .collect();
        if !missing.is_empty() {
            return Err(ApiError::unprocessable(
                "checksum_required",
                format!(
                    "this upload was created with checksum_algorithm SHA256: give \
                     checksums_sha256 for part(s) {}",
                    missing.join(", ")
                ),
            ));
        }
    } else if !checksums.is_empty() {
        return Err(ApiError::unprocessable(
            "checksum_algorithm_required",
            "part checksums need an upload created with checksum_algorithm SHA256",
        ));
    }
    let now = OffsetDateTime::now_utc();
    let left = (upload.expires_at - now).whole_seconds().max(1) as u64;
    let ttl = state.config.presign_ttl.min(Duration::from_secs(left));
    let expires_at = rfc3339(now + ttl);
    let mut parts = Vec::with_capacity(input.part_numbers.len());
    for n in input.part_numbers {
        let checksum = checksums.get(&n.get().to_string()).map(|c| c.as_str());
        let length = upload.plan().expected_part_size(upload.size, n);
        let signed = state
            .storage
            .presign_part(
                &upload.object_key,
                &upload.s3_upload_id,
                n.get(),
                length,
                checksum,
                ttl,
            )
            .await?;
        parts.push(PresignedPart {
            part_number: n.get(),
            url: signed.url,
            method: PART_METHOD.into(),
            headers: signed.headers,
            expires_at: expires_at.clone(),
        });
    }
    json(StatusCode::OK, &PresignPartsResponse { parts })
}

#[instrument(skip(state))]
async fn status(
    state: &AppState,
    user_id: &UserId,
    upload_id: &UploadId,
) -> Result<Response<Body>, ApiError> {
    let upload = state.live_upload(user_id, upload_id).await?;
    let parts_done = match upload.state {
        UploadState::Active => state
            .storage
            .list_parts(&upload.object_key, &upload.s3_upload_id)
            .await?
            .ok_or(ApiError::NotFound("upload"))?,
        // S3 forgets the parts once they are one object.
        UploadState::Completed => Vec::new(),
    };
    json(StatusCode::OK, &upload.view(Some(parts_done)))
}

/// Names upload cursors, so a files cursor is not an uploads one.
const CURSOR_PREFIX: &str = "u1:";

#[instrument(skip(state))]
async fn list(
    state: &AppState,
    user_id: &UserId,
    limit: u32,
    after: Option<&UploadId>,
) -> Result<Response<Body>, ApiError> {
    let (uploads, more) = state
        .repo
        .list_active_uploads(user_id, limit, after)
        .await?;
    // The cursor follows the last record read, shown or not: an expired upload the janitor
    // has not ended yet is left out of the page but still moves the listing on.
    let next_cursor = more
        .then(|| {
            uploads
                .last()
                .map(|u| encode_cursor(CURSOR_PREFIX, u.upload_id.as_str()))
        })
        .flatten();
    let now = OffsetDateTime::now_utc();
    let uploads = uploads
        .into_iter()
        .filter(|u| !u.is_expired(now))
        .map(|u| u.view(None))
        .collect();
    json(
        StatusCode::OK,
        &UploadList {
            uploads,
            next_cursor,
        },
    )
}

#[instrument(skip(state))]
async fn abort(
    state: &AppState,
    user_id: &UserId,
    upload_id: &UploadId,
) -> Result<Response<Body>, ApiError> {
    let upload = state.live_upload(user_id, upload_id).await?;
    require_active(&upload)?;
    if !state.drop_upload(&upload).await? {
        // A concurrent complete (409) or abort (404) settled it first.
        require_active(&state.live_upload(user_id, upload_id).await?)?;
        return Err(anyhow::anyhow!("abort refused but the upload is still active").into());
    }
    tracing::info!("upload aborted");
    Ok(no_content())
}

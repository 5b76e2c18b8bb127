//! The merge function: `POST /v1/uploads/{id}/complete`.
//!
//! The parts come from S3's ListParts, never from the client. Sizes are checked before S3
//! joins the parts (a wrong part can still be re-sent) and the joined object's size after.
//! The File record, the upload's new state and the owner's counters are written in one
//! conditional transaction keyed by a file id fixed at upload creation, so retries and
//! concurrent calls of complete all answer with the same single File.

use std::convert::Infallible;

use filestore_contract::api::{CompleteUploadRequest, FileEnvelope, PartDone};
use filestore_contract::domain::{ObjectSize, OnConflict, PartNumber, UploadId};
use filestore_contract::{Function, RouteKey};
use filestore_shared::http::{json, json_body, respond, serve};
use filestore_shared::repo::{AddFile, Copies, FileRecord, UploadRecord, UploadState, UserRecord};
use filestore_shared::storage::{Joined, UploadedPart};
use filestore_shared::{ApiError, AppState, metrics};
use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use tracing::instrument;

/// Serves one API Gateway request.
pub async fn handler(state: &AppState, req: Request) -> Result<Response<Body>, Infallible> {
    serve(Function::Merge, &req, async {
        respond(route(state, &req).await)
    })
    .await
}

async fn route(state: &AppState, req: &Request) -> Result<Response<Body>, ApiError> {
    let route = state.route(req).await?;
    if route.key() != RouteKey::CompleteUpload {
        return Err(ApiError::NotFound("route"));
    }
    let id = route.id_of("upload")?;
    let CompleteUploadRequest {} = json_body(req)?;
    complete(state, route.caller()?, &id).await
}

fn created(file: &FileRecord) -> Result<Response<Body>, ApiError> {
    json(StatusCode::CREATED, &FileEnvelope { file: file.view() })
}

/// The File an already completed upload produced.
async fn existing_file(
    state: &AppState,
    upload: &UploadRecord,
) -> Result<Response<Body>, ApiError> {
    // Completed, then the file (or a folder above it) was trashed, or it was purged: nothing
    // to show.
    match state.owned_file(&upload.user_id, &upload.file_id).await {
        Ok(file) => created(&file),
        Err(ApiError::NotFound(_)) => Err(ApiError::NotFound("upload")),
        Err(e) => Err(e),
    }
}

/// Checks that S3 holds exactly parts 1..=part_count, each of the size the plan requires.
///
/// # Errors
/// 409 listing missing parts; 422 naming a part of the wrong size.
pub fn check_parts(upload: &UploadRecord, parts: &[PartDone]) -> Result<Vec<PartDone>, ApiError> {
    let plan = upload.plan();
    let wanted: Vec<PartDone> = parts
        .iter()
        .filter(|p| u64::from(p.part_number) <= upload.part_count)
        .cloned()
        .collect();
    let missing: Vec<u64> = (1..=upload.part_count)
        .filter(|n| !wanted.iter().any(|p| u64::from(p.part_number) == *n))
        .collect();
    if !missing.is_empty() {
        let shown: Vec<String> = missing.iter().take(20).map(u64::to_string).collect();
        let more = if missing.len() > 20 { ", ..." } else { "" };
        return Err(ApiError::conflict(
            "parts_missing",
            format!(
                "{} of {} part(s) not uploaded yet: {}{more}",
                missing.len(),
                upload.part_count,
                shown.join(", ")
            ),
        ));
    }
    for p in &wanted {
        let n = PartNumber::parse(u64::from(p.part_number)).map_err(anyhow::Error::msg)?;
        let expected = plan.expected_part_size(upload.size, n);
        if p.size != expected {
            return Err(ApiError::unprocessable(
                "size_mismatch",
                format!(
                    "part {} is {} bytes but must be {expected}; upload it again",
                    p.part_number, p.size
                ),
            ));
        }
    }
    Ok(wanted)
}

#[instrument(skip(state, user), fields(user_id = %user.user_id))]
async fn complete(
    state: &AppState,
    user: &UserRecord,
    upload_id: &UploadId,
) -> Result<Response<Body>, ApiError> {
    let user_id = &user.user_id;
    let upload = state.live_upload(user_id, upload_id).await?;
    if upload.state == UploadState::Completed {
        return existing_file(state, &upload).await;
    }
    // A reserved upload's bytes are already counted against the quota. An older one is
    // checked before S3 joins the parts, so it stays resumable (free some space, complete
    // again); the record below checks again, atomically.
    let quota = state.quota_of(user);
    if !upload.reserved {
        state.check_quota(user, upload.size)?;
    }
    // Guards the invariant the plan relies on; the record was written by create.
    ObjectSize::parse(upload.size).map_err(anyhow::Error::msg)?;
    // Checked before S3 joins the parts too, so the upload stays as it was; the record below
    // checks again, atomically.
    match state
        .check_target(user_id, &upload.parent_id, &upload.name, upload.on_conflict)
        .await
    {
        Err(ApiError::NotFound(_)) => return Err(ApiError::parent_gone()),
        other => other?,
    }

    // `None`: S3 no longer knows the upload; an earlier complete joined it, or it was
    // aborted. The size check below tells which.
    if let Some(listed) = state
        .storage
        .list_parts_to_join(&upload.object_key, &upload.s3_upload_id)
        .await?
    {
        let done: Vec<PartDone> = listed.iter().map(|(done, _)| done.clone()).collect();
        check_parts(&upload, &done)?;
        // As S3 listed them, with their checksums on an upload created for them.
        let parts: Vec<UploadedPart> = listed
            .into_iter()
            .filter(|(done, _)| u64::from(done.part_number) <= upload.part_count)
            .map(|(_, part)| part)
            .collect();
        match state
            .storage
            .complete_multipart(&upload.object_key, &upload.s3_upload_id, &parts)
            .await?
        {
            // Gone: a concurrent complete joined the parts first; the size check decides.
            Joined::Done | Joined::UploadGone => {}
            Joined::PartsChanged => {
                return Err(ApiError::conflict(
                    "parts_changed",
                    "parts changed while completing; try again",
                ));
            }
            Joined::PartTooSmall => {
                return Err(ApiError::unprocessable(
                    "size_mismatch",
                    "a part other than the last is smaller than 5 MiB",
                ));
            }
        }
    }

    match state.storage.object_size(&upload.object_key).await? {
        Some(size) if size == upload.size => {}
        Some(size) => {
            // The object can never become a valid File; drop it and the upload.
            state.drop_upload(&upload).await?;
            return Err(ApiError::unprocessable(
                "size_mismatch",
                format!(
                    "stored object is {size} bytes but the upload declared {}",
                    upload.size
                ),
            ));
        }
        None => {
            // Either a concurrent complete already recorded it, or the upload is gone.
            let again = state.live_upload(user_id, upload_id).await?;
            if again.state == UploadState::Completed {
                return existing_file(state, &again).await;
            }
            return Err(ApiError::NotFound("upload"));
        }
    }

    let mut file = FileRecord {
        user_id: user_id.clone(),
        file_id: upload.file_id.clone(),
        name: upload.name.clone(),
        parent_id: upload.parent_id.clone(),
        size: upload.size,
        sha256: upload.sha256.clone(),
        declared_sha256: None,
        content_type: upload.content_type.clone(),
        created_at: time::OffsetDateTime::now_utc(),
        object_key: upload.object_key.clone(),
        upload_id: Some(upload.upload_id.clone()),
        copies: Copies::Unverified,
        trashed_at: None,
    };
    // If its transfer has not verified the file by then, the janitor sends it again.
    let transfer_due = file.created_at + state.config.transfer_retry.first;
    let mut outcome = state
        .repo
        .complete_upload(&upload, &mut file, quota, transfer_due)
        .await?;
    // `replace`: the file holding the name goes to the trash, and the new one takes it.
    if outcome == AddFile::NameTaken
        && upload.on_conflict == OnConflict::Replace
        && state
            .replace_file(user_id, &file.parent_id, &file.name)
            .await?
    {
        outcome = state
            .repo
            .complete_upload(&upload, &mut file, quota, transfer_due)
            .await?;
    }
    match outcome {
        AddFile::Added => {
            tracing::info!(file_id = %file.file_id, size = file.size, "upload completed");
            metrics::add(metrics::UPLOADS_COMPLETED, 1.0);
            metrics::add(metrics::UPLOADS_COMPLETED_BYTES, file.size as f64);
            return created(&file);
        }
        AddFile::OverQuota => {
            // Other files took the space between the check above and now, after S3 joined
            // the parts. An object without a File would never be transferred (S3 announced
            // it already), so it goes, with its upload; the upload record first and only
            // while still active, so a concurrent complete that won keeps its bytes.
            state.drop_upload(&upload).await?;
            return Err(ApiError::TooLarge {
                code: "quota_exceeded",
                message: format!(
                    "another upload used the space first: {} more bytes would pass your \
                     quota of {quota}; free some space and upload again",
                    upload.size
                ),
            });
        }
        // The upload stays active: free the name or restore the folder, and complete again.
        AddFile::NameTaken => return Err(ApiError::name_taken(&file.name)),
        AddFile::ParentGone => return Err(ApiError::parent_gone()),
        AddFile::Refused => {}
    }
    // Lost the race to a concurrent complete of the same upload: answer with its File.
    match state.repo.get_upload(user_id, upload_id).await? {
        Some(again) if again.state == UploadState::Completed => existing_file(state, &again).await,
        Some(_) => Err(anyhow::anyhow!(
            "complete transaction refused but the upload is still active"
        )
        .into()),
        None => {
            // Lost it to an abort, which removed the record first and then dropped the
            // object; parts this call joined after that drop are dropped here, unless a File
            // owns them.
            if state
                .repo
                .get_file(user_id, &upload.file_id)
                .await?
                .is_none()
            {
                state.storage.delete_object(&upload.object_key).await?;
            }
            Err(ApiError::NotFound("upload"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use filestore_contract::domain::{FileId, FolderId, UserId};
    use time::OffsetDateTime;

    const MIB: u64 = 1024 * 1024;

    fn upload(size: u64, part_size: u64, part_count: u64) -> UploadRecord {
        UploadRecord {
            user_id: UserId::generate(),
            upload_id: UploadId::generate(),
            file_id: FileId::generate(),
            name: "n".into(),
            parent_id: FolderId::root(),
            on_conflict: Default::default(),
            size,
            sha256: None,
            content_type: "application/octet-stream".into(),
            part_size,
            part_count,
            object_key: "k".into(),
            s3_upload_id: "s3".into(),
            state: UploadState::Active,
            created_at: OffsetDateTime::UNIX_EPOCH,
            expires_at: OffsetDateTime::now_utc(),
            reserved: true,
            sha256_parts: false,
        }
    }

    fn part(n: u32, size: u64) -> PartDone {
        PartDone {
            part_number: n,
            size,
            etag: format!("\"e{n}\""),
        }
    }

    #[test]
    fn missing_parts_are_listed() {
        let u = upload(12 * MIB, 5 * MIB, 3);
        let err = check_parts(&u, &[part(2, 5 * MIB)]).unwrap_err();
        assert_eq!(err.status(), 409);
        assert!(err.to_string().contains("1, 3"), "{err}");
    }

    #[test]
    fn wrong_part_sizes_are_422_and_extra_parts_ignored() {
        let u = upload(12 * MIB, 5 * MIB, 3);
        let ok = [
            part(1, 5 * MIB),
            part(2, 5 * MIB),
            part(3, 2 * MIB),
            part(4, 1),
        ];
        assert_eq!(check_parts(&u, &ok).unwrap().len(), 3);
        let short = [part(1, 5 * MIB), part(2, 5 * MIB - 1), part(3, 2 * MIB)];
        assert_eq!(check_parts(&u, &short).unwrap_err().status(), 422);
        let long_tail = [part(1, 5 * MIB), part(2, 5 * MIB), part(3, 2 * MIB + 1)];
        assert_eq!(check_parts(&u, &long_tail).unwrap_err().status(), 422);
    }

    #[test]
    fn an_empty_file_is_one_empty_part() {
        let u = upload(0, 8 * MIB, 1);
        assert!(check_parts(&u, &[part(1, 0)]).is_ok());
        assert_eq!(check_parts(&u, &[]).unwrap_err().status(), 409);
    }
}

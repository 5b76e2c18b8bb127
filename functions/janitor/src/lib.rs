//! The janitor, run on a schedule: aborts multipart uploads abandoned past their expiry
//! (S3's `AbortIncompleteMultipartUpload` lifecycle rule is the backstop) and collects
//! content no File references any more, from the table and the cold store.
//!
//! Collection is safe against a concurrent instant upload or transfer of the same content:
//! the content record is deleted only on the condition `refs <= 0`, and whoever adds a
//! reference does so on the condition that the record exists, so exactly one of the two wins.
//! The cold bytes go only after their record is gone.

use filestore_shared::AppState;
use serde::Serialize;
use time::OffsetDateTime;

/// What one sweep did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    pub aborted_uploads: u64,
    pub collected_contents: u64,
}

/// Runs one sweep as of `now`.
///
/// # Errors
/// A failed scan. Failures on single items are logged and left for the next sweep.
pub async fn sweep(state: &AppState, now: OffsetDateTime) -> anyhow::Result<Report> {
    let mut report = Report::default();
    for upload in state.repo.expired_uploads(now).await? {
        let aborted = async {
            state
                .storage
                .abort_multipart(&upload.object_key, &upload.s3_upload_id)
                .await?;
            state
                .repo
                .delete_upload(&upload.user_id, &upload.upload_id)
                .await
        }
        .await;
        match aborted {
            Ok(()) => report.aborted_uploads += 1,
            Err(e) => {
                tracing::warn!(upload_id = %upload.upload_id, error = format!("{e:#}"), "could not abort an expired upload")
            }
        }
    }
    for content in state.repo.unreferenced_contents().await? {
        match state
            .repo
            .delete_unreferenced_content(&content.sha256)
            .await
        {
            Ok(true) => {}
            Ok(false) => continue, // referenced again meanwhile
            Err(e) => {
                tracing::warn!(sha256 = %content.sha256, error = format!("{e:#}"), "could not collect content");
                continue;
            }
        }
        let removed = match state.cold.as_ref() {
            Some(cold) => cold.delete_object(&content.cold_key).await,
            None => Err(anyhow::anyhow!("the cold store is not configured")),
        };
        match removed {
            Ok(()) => report.collected_contents += 1,
            Err(e) => {
                tracing::warn!(key = %content.cold_key, error = format!("{e:#}"), "cold bytes left behind")
            }
        }
    }
    tracing::info!(?report, "sweep done");
    Ok(report)
}

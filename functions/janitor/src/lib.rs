//! The janitor, run on a schedule: aborts multipart uploads abandoned past their expiry
//! (S3's `AbortIncompleteMultipartUpload` lifecycle rule is the backstop) and finishes the
//! S3 side of uploads ended in a run that could not (S3 failed after the record went), purges trash
//! entries past their `purge_at` (`FILESTORE_TRASH_RETENTION_SECS`) and finishes folder
//! purges that stopped halfway ([`purge`]), checks that each
//! content's reference count matches the verified files holding it (and repairs it),
//! collects content no File references any more from the table and the cold store, removes
//! hot copies of verified files once their retention (`FILESTORE_HOT_RETENTION_SECS`) has
//! passed, and removes cold blobs that no content record points to and cold multipart
//! uploads a stopped transfer left open; and re-queues the transfer of files it never
//! verified (a cold store down through all of the queue's retries, [`stranded`]).
//!
//! Collection is safe against a concurrent instant upload or transfer of the same content:
//! the content record is deleted only on the condition `refs <= 0` (and that it still names
//! the cold copy read), and whoever adds a reference does so on the condition that the
//! record read still exists (the same cold copy), so exactly one of the two wins.
//! The cold bytes go only after their record is gone. A janitor that dies between the two
//! leaves a blob no record points to: the orphan sweep removes such blobs once they are older
//! than [`ORPHAN_GRACE`], which no transfer takes between writing its copy and recording it.
//!
//! Expired uploads, hot copies and released content come from a sparse index of the items
//! due for the janitor (see `filestore_shared::repo::DUE_INDEX`), so a sweep reads what it
//! acts on. The orphan sweep lists the cold bucket and scans the content records, so it runs
//! at most once per [`ORPHAN_SWEEP_EVERY`]; S3 Inventory would replace the listing at scale.
//! The reference check scans the content records a page at a time and queries the hash
//! index once per content, so it too runs at most once per [`REFS_CHECK_EVERY`].

pub mod purge;
pub mod stranded;

use std::time::Duration;

use filestore_shared::keys::{COLD_BLOB_PREFIX, parse_cold_key};
use filestore_shared::purge::Budget;
use filestore_shared::storage::Storage;
use filestore_shared::{AppState, metrics};
use serde::Serialize;
use time::OffsetDateTime;

/// How old a cold blob with no content record must be before it is removed. A transfer
/// writes its copy and records it within one run (Lambda stops a run after 15 minutes), and
/// a redelivery writes the copy again, so a day leaves every transfer in flight alone.
pub const ORPHAN_GRACE: Duration = Duration::from_secs(24 * 3600);
/// How often the orphan sweep runs, whatever the janitor's schedule.
pub const ORPHAN_SWEEP_EVERY: Duration = Duration::from_secs(24 * 3600);
/// How often the reference check runs, whatever the janitor's schedule: it scans the table
/// for content records, as the orphan sweep does.
pub const REFS_CHECK_EVERY: Duration = Duration::from_secs(24 * 3600);
/// How long content's references must have stood still before the check counts them: far
/// longer than the hash index can lag the table, so the count sees every file whose
/// verification or delete last moved them.
pub const REFS_SETTLE: Duration = Duration::from_secs(15 * 60);

/// What one sweep did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    pub aborted_uploads: u64,
    /// Ended uploads whose multipart upload or object a run left in S3, removed.
    pub finished_aborts: u64,
    pub collected_contents: u64,
    pub removed_hot_copies: u64,
    pub removed_orphan_blobs: u64,
    pub aborted_cold_uploads: u64,
    /// Content whose reference count differed from the verified files holding it, set right.
    pub repaired_refs: u64,
    /// Files still unverified past their due time whose transfer was asked for again.
    pub requeued_transfers: u64,
    /// Trash entries purged because their `purge_at` had passed.
    pub purged_trash: u64,
    /// Folders whose purge finished (their record deleted), and the files purged below them.
    pub purged_folders: u64,
    pub purged_folder_files: u64,
}

/// Runs one sweep as of `now`.
///
/// # Errors
/// A failed scan or listing. Failures on single items are logged and left for the next sweep.
pub async fn sweep(state: &AppState, now: OffsetDateTime) -> anyhow::Result<Report> {
    let mut report = Report::default();
    abort_expired_uploads(state, now, &mut report).await?;
    finish_pending_aborts(state, now, &mut report).await?;
    let mut budget = Budget::steps(purge::PURGE_STEPS_PER_SWEEP);
    purge::purge_trash(state, now, &mut budget, &mut report).await?;
    check_references(state, now, &mut report).await?;
    collect_unreferenced_content(state, now, &mut report).await?;
    remove_retained_hot_copies(state, now, &mut report).await?;
    remove_orphan_blobs(state, now, &mut report).await?;
    stranded::requeue_stranded_transfers(state, now, &mut report).await?;
    tracing::info!(?report, "sweep done");
    report.record();
    Ok(report)
}

impl Report {
    /// Records the sweep's work as metrics, zeros included: a sweep that found nothing to
    /// do is a figure too.
    pub fn record(&self) {
        for (metric, n) in [
            (metrics::UPLOADS_EXPIRED, self.aborted_uploads),
            (metrics::TRASH_PURGED, self.purged_trash),
            (metrics::TRANSFERS_REQUEUED, self.requeued_transfers),
        ] {
            metrics::add(metric, n as f64);
        }
    }
}

async fn abort_expired_uploads(
    state: &AppState,
    now: OffsetDateTime,
    report: &mut Report,
) -> anyhow::Result<()> {
    for upload in state.repo.expired_uploads(now).await? {
        match state.drop_upload(&upload).await {
            Ok(true) => report.aborted_uploads += 1,
            Ok(false) => {} // completed or removed meanwhile
            Err(e) => {
                tracing::warn!(upload_id = %upload.upload_id, error = format!("{e:#}"), "could not abort an expired upload")
            }
        }
    }
    Ok(())
}

/// Removes what S3 still holds of uploads that ended (by an abort, an expiry or a refused
/// complete) in a run that could not remove it, once [`ABORT_GRACE`] has passed.
///
/// [`ABORT_GRACE`]: filestore_shared::repo::ABORT_GRACE
async fn finish_pending_aborts(
    state: &AppState,
    now: OffsetDateTime,
    report: &mut Report,
) -> anyhow::Result<()> {
    for pending in state.repo.pending_aborts(now).await? {
        match state.finish_abort(&pending).await {
            Ok(()) => report.finished_aborts += 1,
            Err(e) => {
                tracing::warn!(upload_id = %pending.upload_id, error = format!("{e:#}"), "could not remove an ended upload's S3 side")
            }
        }
    }
    Ok(())
}

/// Finds content whose reference count differs from the number of verified files holding
/// it and sets it right, at most once per [`REFS_CHECK_EVERY`]: one page of content records
/// at a time, each counted through the hash index once its references have stood still for
/// [`REFS_SETTLE`], each repair conditional on none having moved since the read. A count
/// repaired to zero is collected by the step after this one. Every repair is logged: it is
/// the trace of a write that lost track of a reference.
async fn check_references(
    state: &AppState,
    now: OffsetDateTime,
    report: &mut Report,
) -> anyhow::Result<()> {
    if !state
        .repo
        .claim_job("refs-check", now, REFS_CHECK_EVERY)
        .await?
    {
        return Ok(());
    }
    let settled = now - REFS_SETTLE;
    let mut from = None;
    loop {
        let (page, next) = state.repo.content_page(from).await?;
        for content in page.iter().filter(|c| c.changed_at <= settled) {
            let repaired = async {
                let counted = state.repo.count_verified_files(&content.sha256).await?;
                if counted == content.refs {
                    return Ok(None);
                }
                let done = state.repo.repair_refs(content, counted).await?;
                Ok::<_, anyhow::Error>(done.then_some(counted))
            }
            .await;
            match repaired {
                Ok(None) => {}
                Ok(Some(counted)) => {
                    tracing::warn!(sha256 = %content.sha256, refs = content.refs, counted, "repaired a content reference count");
                    report.repaired_refs += 1;
                }
                Err(e) => {
                    tracing::warn!(sha256 = %content.sha256, error = format!("{e:#}"), "could not check a content reference count")
                }
            }
        }
        match next {
            Some(cursor) => from = Some(cursor),
            None => return Ok(()),
        }
    }
}

async fn collect_unreferenced_content(
    state: &AppState,
    now: OffsetDateTime,
    report: &mut Report,
) -> anyhow::Result<()> {
    for content in state.repo.unreferenced_contents(now).await? {
        match state
            .repo
            .delete_unreferenced_content(&content.sha256, &content.cold_key)
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
                tracing::warn!(key = %content.cold_key, error = format!("{e:#}"), "cold bytes left behind for the orphan sweep")
            }
        }
    }
    Ok(())
}

/// With a hot retention set, hot copies of files verified longer ago than it are removed;
/// downloads then come from the cold copy. The object goes first and the record follows, so
/// a janitor that dies in between finds the file again on its next sweep.
async fn remove_retained_hot_copies(
    state: &AppState,
    now: OffsetDateTime,
    report: &mut Report,
) -> anyhow::Result<()> {
    let Some(retention) = state.config.hot_retention else {
        return Ok(());
    };
    for copy in state
        .repo
        .hot_copies_verified_before(now - retention)
        .await?
    {
        let removed = async {
            state.storage.delete_object(&copy.object_key).await?;
            state
                .repo
                .mark_hot_removed(&copy.user_id, &copy.file_id)
                .await
        }
        .await;
        match removed {
            Ok(()) => report.removed_hot_copies += 1,
            Err(e) => {
                tracing::warn!(file_id = %copy.file_id, error = format!("{e:#}"), "could not remove a hot copy")
            }
        }
    }
    Ok(())
}

/// Aborts stale cold multipart uploads and removes cold blobs older than [`ORPHAN_GRACE`]
/// that no content record points to, at most once per [`ORPHAN_SWEEP_EVERY`]. The
/// listing comes before the scan of content records, and each candidate is looked at again
/// right before it goes, so a blob that a redelivered transfer wrote again meanwhile (and
/// may be recording) is young again and kept.
async fn remove_orphan_blobs(
    state: &AppState,
    now: OffsetDateTime,
    report: &mut Report,
) -> anyhow::Result<()> {
    let Some(cold) = state.cold.as_ref() else {
        return Ok(());
    };
    if !state
        .repo
        .claim_job("orphan-sweep", now, ORPHAN_SWEEP_EVERY)
        .await?
    {
        return Ok(());
    }
    abort_stale_cold_uploads(state, cold, now, report).await?;
    let cutoff = now - ORPHAN_GRACE;
    let is_old = |t: Option<OffsetDateTime>| t.is_some_and(|t| t < cutoff);
    let old: Vec<_> = cold
        .list(COLD_BLOB_PREFIX)
        .await?
        .into_iter()
        .filter(|blob| is_old(blob.last_modified))
        .collect();
    if old.is_empty() {
        return Ok(());
    }
    let referenced = state.repo.content_cold_keys().await?;
    for blob in old.iter().filter(|b| !referenced.contains(&b.key)) {
        let removed = async {
            match cold.head(&blob.key).await? {
                Some(head) if is_old(head.last_modified) => {
                    cold.delete_object(&blob.key).await?;
                    Ok(true)
                }
                _ => Ok::<_, anyhow::Error>(false),
            }
        }
        .await;
        match removed {
            Ok(true) => {
                tracing::info!(key = %blob.key, "removed a cold blob no content points to");
                report.removed_orphan_blobs += 1;
            }
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(key = %blob.key, error = format!("{e:#}"), "could not remove an orphan cold blob")
            }
        }
    }
    Ok(())
}

/// Aborts cold multipart uploads started longer than [`ORPHAN_GRACE`] ago: a transfer that
/// was stopped mid-copy (a crash, a file deleted meanwhile) leaves its upload open, and its
/// parts are billed. The hot bucket has a lifecycle rule for this; a cold store may not.
/// An upload a transfer checkpoint moved on within the grace period is a large copy still
/// going over many runs, and is kept.
async fn abort_stale_cold_uploads(
    state: &AppState,
    cold: &Storage,
    now: OffsetDateTime,
    report: &mut Report,
) -> anyhow::Result<()> {
    let cutoff = now - ORPHAN_GRACE;
    for upload in cold.open_uploads(COLD_BLOB_PREFIX).await? {
        if upload.initiated.is_none_or(|t| t >= cutoff) {
            continue;
        }
        // Only a file's own cold key can have a checkpoint; anything else there is abandoned.
        let checkpoint = match parse_cold_key(&upload.key) {
            Some(file_id) => state.repo.get_transfer(&file_id).await?,
            None => None,
        };
        let in_progress = checkpoint
            .is_some_and(|c| c.cold_upload_id == upload.upload_id && c.updated_at >= cutoff);
        if in_progress {
            continue;
        }
        match cold.abort_multipart(&upload.key, &upload.upload_id).await {
            Ok(()) => {
                tracing::info!(key = %upload.key, "aborted a stale cold multipart upload");
                report.aborted_cold_uploads += 1;
            }
            Err(e) => {
                tracing::warn!(key = %upload.key, error = format!("{e:#}"), "could not abort a stale cold multipart upload")
            }
        }
    }
    Ok(())
}

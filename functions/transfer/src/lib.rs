//! The transfer function: consumes S3 `ObjectCreated` events from SQS and copies each new
//! object from the hot bucket to the cold store (another S3-compatible endpoint), hashing the
//! bytes on the way. Only then is the content `verified` and its SHA-256 its identity.
//!
//! At-least-once safe: the copy goes to a key derived from the file, so a redelivery rewrites
//! the same bytes; the metadata change is one conditional DynamoDB transaction
//! ([`Repo::record_verified`](filestore_shared::repo::Repo::record_verified)), so a duplicate
//! delivery or a racing worker changes nothing twice; the hot copy is only removed after the
//! verified cold copy is recorded. A message that keeps failing is reported in
//! `batchItemFailures`, retried by SQS, and parked in the dead-letter queue.
//!
//! A Lambda run ends after 15 minutes, so a copy too large for one run stops at a part
//! boundary before its deadline ([`Limits::stop_at`]), saves a checkpoint
//! ([`Repo::save_transfer`](filestore_shared::repo::Repo::save_transfer)) and sends a
//! continuation message of its own to the queue ([`Requeue`]): a new message, since a
//! redelivered one counts toward the dead-letter queue's limit. Every run makes at least one
//! part of progress; a run that crashes leaves the last checkpoint, which the redelivery
//! resumes.
//!
//! # Layout
//! - [`handler`] (here): one SQS batch in, the failed message ids out; the metadata change
//!   once a copy is done, and the checkpoint and continuation once a run's time is up.
//! - [`copy`]: the verified hot -> cold copy of one object ([`CopyJob`]), with bounded memory.
//! - [`cold_upload`]: the cold store's multipart upload, parts held whole or streamed as read,
//!   and its cleanup after a failure.
//! - [`hashing`]: SHA-256, SHA-1 and the hot ETag on a thread of their own, fed through a
//!   bounded queue.
//! - [`checkpoint`]: where a stopped copy stands, packed for the transfer's record.
//! - [`etag`]: MD5-form ETags and the hasher that computes them.
//! - [`message`]: the typed body of a queue message: S3 event, continuation or S3 test event.

pub mod checkpoint;
pub mod cold_upload;
pub mod copy;
pub mod etag;
pub mod hashing;
pub mod message;

pub use checkpoint::Checkpoint;
pub use copy::{COLD_PART_SIZE, CopyJob, Place, Progress, STREAM_PARTS_OVER, Tuning};

use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, bail};
use aws_lambda_events::sqs::{SqsBatchResponse, SqsMessage};
use filestore_contract::domain::{FileId, UserId};
use filestore_shared::keys::{cold_key, parse_object_key};
use filestore_shared::queue::TransferQueue;
use filestore_shared::repo::{FileRecord, TransferCheckpoint, Verified, VerifyOutcome};
use filestore_shared::{AppState, metrics};
use percent_encoding::percent_decode_str;
use tracing::instrument;

use crate::copy::is_bad_copy;
use crate::message::ContinueTransfer;

/// How long to wait for the File record of a just-completed upload: S3 announces the object
/// a moment before the merge function's transaction records it.
const FILE_WAIT: Duration = Duration::from_secs(5);

/// Time kept back from a run's deadline: enough to finish the parts in flight and save.
pub const STOP_MARGIN: Duration = Duration::from_secs(60);

/// When a run stops, and where it continues.
#[derive(Clone, Debug, Default)]
pub struct Limits {
    /// When to stop at the next part boundary (none: never).
    pub stop_at: Option<Instant>,
    /// The queue a stopped transfer continues on. Without it, the message is reported
    /// failed and SQS's redelivery continues it.
    pub requeue: Option<Requeue>,
    /// How copies cut objects into parts (the default, but in tests).
    pub tuning: Tuning,
}

impl Limits {
    /// Stops [`STOP_MARGIN`] before `deadline` (a Lambda's, or a local stand-in's).
    pub fn until(deadline: SystemTime, requeue: Option<Requeue>) -> Self {
        let left = deadline
            .duration_since(SystemTime::now())
            .unwrap_or_default()
            .saturating_sub(STOP_MARGIN);
        Self {
            stop_at: Some(Instant::now() + left),
            requeue,
            tuning: Tuning::default(),
        }
    }
}

/// Sends continuation messages to the transfer queue.
#[derive(Clone, Debug)]
pub struct Requeue(TransferQueue);

impl Requeue {
    pub fn new(sqs: aws_sdk_sqs::Client, queue_url: impl Into<String>) -> Self {
        Self(TransferQueue::new(sqs, queue_url))
    }

    /// The function's transfer queue (`FILESTORE_TRANSFER_QUEUE_URL`), when set.
    pub fn from_state(state: &AppState) -> Option<Self> {
        state.transfer_queue.clone().map(Self)
    }

    /// The message that continues the transfer of `key` in a new run.
    pub fn body(key: &str) -> String {
        ContinueTransfer { key: key.into() }.body()
    }

    async fn send(&self, key: &str) -> anyhow::Result<()> {
        self.0.continue_transfer(key).await
    }
}

/// Receives of one message before SQS moves it to the dead-letter queue: the transfer
/// queue's `maxReceiveCount` (the template's, and the local runner's).
pub const MAX_RECEIVES: u32 = 5;

/// Whether a message that failed on its receive number `receive_count` (SQS's
/// `ApproximateReceiveCount`) goes to the dead-letter queue now.
pub fn dead_lettered(receive_count: Option<&str>) -> bool {
    receive_count
        .and_then(|n| n.parse::<u32>().ok())
        .is_some_and(|n| n >= MAX_RECEIVES)
}

/// Handles one SQS batch; every message that could not be handled is reported for retry.
pub async fn handler(
    state: &AppState,
    event: aws_lambda_events::sqs::SqsEvent,
    limits: &Limits,
) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    for message in event.records {
        let id = message.message_id.clone().unwrap_or_default();
        if let Err(e) = process_message(state, &message, limits).await {
            let receive_count = message
                .attributes
                .get("ApproximateReceiveCount")
                .map(String::as_str);
            if dead_lettered(receive_count) {
                tracing::error!(
                    message_id = %id,
                    receive_count = receive_count.unwrap_or("?"),
                    error = format!("{e:#}"),
                    "transfer dead-lettered: it failed on every receive; the janitor re-queues the file once it is due"
                );
                metrics::add(metrics::TRANSFERS_DEAD_LETTERED, 1.0);
            } else {
                tracing::error!(
                    message_id = %id,
                    receive_count = receive_count.unwrap_or("?"),
                    error = format!("{e:#}"),
                    "transfer failed; the message goes back to the queue, and to the dead-letter queue after repeated failures"
                );
            }
            response.add_failure(id);
        }
    }
    response
}

/// S3 event keys are URL-encoded, with `+` for a space.
pub fn decode_key(key: &str) -> String {
    percent_decode_str(&key.replace('+', " "))
        .decode_utf8_lossy()
        .into_owned()
}

async fn process_message(
    state: &AppState,
    message: &SqsMessage,
    limits: &Limits,
) -> anyhow::Result<()> {
    let body = message.body.as_deref().context("message has no body")?;
    for key in message::created_keys(body)? {
        // Boxed: nested whole, the transfer's future overflows the compiler's layout depth
        // in the Lambda's `main`. Each object's figures are its own, named by its key.
        metrics::item(
            ("object", key.clone()),
            Box::pin(transfer_object(state, &key, limits)),
        )
        .await
        .with_context(|| format!("transferring {key}"))?;
    }
    Ok(())
}

async fn wait_for_file(
    state: &AppState,
    user_id: &UserId,
    file_id: &FileId,
) -> anyhow::Result<Option<FileRecord>> {
    let started = std::time::Instant::now();
    loop {
        if let Some(file) = state.repo.get_file(user_id, file_id).await? {
            return Ok(Some(file));
        }
        if started.elapsed() > FILE_WAIT {
            return Ok(None);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[instrument(skip(state, limits))]
async fn transfer_object(state: &AppState, key: &str, limits: &Limits) -> anyhow::Result<()> {
    let Some((user_id, file_id)) = parse_object_key(key) else {
        tracing::warn!("not a file object; ignored");
        return Ok(());
    };
    // An object deleted before its File was recorded (a refused complete) needs no wait.
    let file = match state.repo.get_file(&user_id, &file_id).await? {
        Some(file) => Some(file),
        None if state.storage.object_size(key).await?.is_none() => None,
        None => wait_for_file(state, &user_id, &file_id).await?,
    };
    let Some(file) = file else {
        if state.storage.object_size(key).await?.is_none() {
            tracing::info!("object and file are gone; nothing to do");
            return Ok(());
        }
        bail!("the object exists but its File is not recorded yet");
    };
    if file.verified() {
        tracing::info!("already verified (duplicate delivery)");
        return drop_stale_checkpoint(state, &file_id).await;
    }
    let cold = state
        .cold
        .as_ref()
        .context("the cold store is not configured")?;
    let target = cold_key(&file_id);
    let saved = state.repo.get_transfer(&file_id).await?;
    let resume = saved.as_ref().and_then(|s| {
        Checkpoint::unpack(&s.state, &s.blob)
            .inspect_err(|e| {
                tracing::warn!(
                    error = format!("{e:#}"),
                    "unusable checkpoint; starting over"
                )
            })
            .ok()
    });
    let job = CopyJob {
        resume,
        stop_at: limits.stop_at,
        tuning: limits.tuning,
        ..CopyJob::new(
            Place {
                store: &state.storage,
                key,
            },
            Place {
                store: cold,
                key: &target,
            },
            file.size,
        )
    };
    let run_started = Instant::now();
    let copied = match job.run().await {
        Ok(Progress::Done(copied)) => copied,
        Ok(Progress::Paused(checkpoint)) => {
            return pause(state, &file, key, saved.as_ref(), &checkpoint, limits).await;
        }
        Err(e) => {
            if is_bad_copy(&e) {
                metrics::add(metrics::TRANSFER_VERIFICATION_FAILURES, 1.0);
                if saved.is_some() {
                    state.repo.delete_transfer(&file_id).await?;
                }
            }
            return Err(e);
        }
    };
    let run_time = run_started.elapsed();
    let found = Verified {
        sha256: copied.sha256.clone(),
        sha1: copied.sha1.clone(),
        size: copied.size,
        cold_key: target.clone(),
    };
    let outcome = state.repo.record_verified(&file, &found).await?;
    match &outcome {
        VerifyOutcome::NewContent => {
            // Instant upload answers for missing content by reading the decoy: it must exist
            // before any content can be proven. Without it proofs still fail safely, so a
            // failure here is only logged.
            if let Err(e) = cold.ensure_decoy().await {
                tracing::warn!(error = ?e, "could not write the proof decoy");
            }
        }
        VerifyOutcome::Shared { cold_key } if *cold_key != target => {
            // The same content is already stored: ours is a duplicate.
            cold.delete_object(&target).await?;
        }
        VerifyOutcome::Shared { .. } => {}
        VerifyOutcome::Stale => {
            // Someone else finished this file (or it was deleted). Our copy is garbage unless
            // it is the one the content record points to.
            let owner = state.repo.get_content(&copied.sha256).await?;
            if owner.map(|c| c.cold_key) != Some(target.clone()) {
                cold.delete_object(&target).await?;
            }
            tracing::info!("file changed under us; left as it is");
            return Ok(());
        }
    }
    if file.declared_sha256.is_none() && file.sha256.as_deref().is_some_and(|d| d != copied.sha256)
    {
        tracing::warn!(declared = ?file.sha256, computed = %copied.sha256, "declared hash was wrong");
    }
    tracing::info!(sha256 = %copied.sha256, size = copied.size, outcome = ?outcome, "verified and stored cold");
    metrics::add(metrics::TRANSFER_BYTES, copied.size as f64);
    metrics::add(metrics::TRANSFER_DURATION, run_time.as_secs_f64() * 1000.0);
    // A copy resumed from a checkpoint moved only part of its bytes in this run.
    if saved.is_none() && !run_time.is_zero() {
        metrics::add(
            metrics::TRANSFER_THROUGHPUT,
            copied.size as f64 / run_time.as_secs_f64(),
        );
    }
    if saved.is_some() {
        state.repo.delete_transfer(&file_id).await?;
    }
    if state.config.hot_retention == Some(Duration::ZERO) {
        state.storage.delete_object(key).await?;
        state.repo.mark_hot_removed(&user_id, &file_id).await?;
    }
    Ok(())
}

/// A checkpoint left for a file already verified: a run that paused while a duplicate
/// delivery finished the copy. Its cold upload is nobody's (the verified copy is a completed
/// object under the same key, which aborting an upload leaves alone).
async fn drop_stale_checkpoint(state: &AppState, file_id: &FileId) -> anyhow::Result<()> {
    let Some(saved) = state.repo.get_transfer(file_id).await? else {
        return Ok(());
    };
    if let Some(cold) = &state.cold {
        cold.abort_multipart(&cold_key(file_id), &saved.cold_upload_id)
            .await?;
    }
    state.repo.delete_transfer(file_id).await?;
    tracing::info!("removed the checkpoint of a copy another run finished");
    Ok(())
}

/// Saves where the copy stopped and asks for a new run to continue it.
async fn pause(
    state: &AppState,
    file: &FileRecord,
    key: &str,
    saved: Option<&TransferCheckpoint>,
    checkpoint: &Checkpoint,
    limits: &Limits,
) -> anyhow::Result<()> {
    let (packed, blob) = checkpoint.pack()?;
    let record = TransferCheckpoint {
        file_id: file.file_id.clone(),
        user_id: file.user_id.clone(),
        version: saved.map_or(1, |s| s.version + 1),
        cold_upload_id: checkpoint.upload_id.clone(),
        state: packed,
        blob,
        updated_at: time::OffsetDateTime::now_utc(),
    };
    if !state.repo.save_transfer(&record).await? {
        // Another run went on from the same checkpoint (a duplicate delivery) and saved first.
        // Parts this run wrote to that run's upload are the same bytes; an upload of its own
        // (the checkpoint's had gone) is nobody's.
        if saved.is_none_or(|s| s.cold_upload_id != checkpoint.upload_id) {
            let cold = state
                .cold
                .as_ref()
                .context("the cold store is not configured")?;
            cold.abort_multipart(&cold_key(&file.file_id), &checkpoint.upload_id)
                .await?;
        }
        tracing::info!("another run moved this transfer on first; this one stops");
        return Ok(());
    }
    tracing::info!(
        offset = checkpoint.offset(),
        size = file.size,
        parts = checkpoint.part_md5s.len(),
        "time is up; checkpoint saved, the transfer continues in a new run"
    );
    match &limits.requeue {
        Some(requeue) => requeue.send(key).await,
        None => bail!(
            "stopped at the time limit with no queue to continue on; the redelivery continues it"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_stop_a_margin_before_their_deadline_and_never_wait() {
        let before = Instant::now();
        let limits = Limits::until(SystemTime::now() + Duration::from_secs(900), None);
        let stop_at = limits.stop_at.unwrap();
        assert!(stop_at <= Instant::now() + Duration::from_secs(900) - STOP_MARGIN);
        assert!(stop_at > before + Duration::from_secs(830));
        let late = Limits::until(SystemTime::now() - Duration::from_secs(5), None);
        assert!(late.stop_at.unwrap() <= Instant::now());
    }

    /// Only the last receive SQS allows is counted as dead-lettered.
    #[test]
    fn the_last_receive_is_the_one_dead_lettered() {
        assert!(!dead_lettered(Some("1")));
        assert!(!dead_lettered(Some("4")));
        assert!(dead_lettered(Some("5")));
        assert!(!dead_lettered(None));
        assert!(!dead_lettered(Some("many")));
    }

    #[test]
    fn event_keys_are_url_decoded() {
        assert_eq!(decode_key("files/a%2Fb"), "files/a/b");
        assert_eq!(decode_key("my+file%2B1.txt"), "my file+1.txt");
    }
}

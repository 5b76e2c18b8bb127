//! Transfers that never verified their file, asked for again. A cold store that is down
//! longer than the transfer queue retries a message (5 receives) sends every message of that
//! time to the dead-letter queue, and nothing else would ever copy those files: they would
//! stay unverified, never cold, never eligible for instant upload.
//!
//! The table, not the dead-letter queue, says what is stranded: every file completed from an
//! upload is in the `due` index until its transfer verifies it. Past its due time the
//! janitor puts the file off by a doubling wait
//! ([`TransferRetry`](filestore_shared::config::TransferRetry)) and then sends its
//! transfer a continuation message. The conditional postponement makes one janitor of two
//! send it; the transfer is idempotent (it resumes a checkpoint, leaves a verified file
//! alone), so a message beside a run still going costs a read. A checkpoint moved on
//! recently is such a run, and only puts the file off. The dead-letter queue keeps its
//! messages for an operator (its depth is the alarm); redriving it would also replay
//! poison and could not space the retries of one file.

use std::time::Duration;

use filestore_shared::AppState;
use filestore_shared::repo::StrandedTransfer;
use time::OffsetDateTime;

use crate::Report;

/// A checkpoint saved this recently is a copy still going: each run (15 minutes at most)
/// saves one before the next goes on.
pub const RUN_GOING_ON: Duration = Duration::from_secs(30 * 60);

/// Re-queues the transfer of each unverified file past its due time.
pub(crate) async fn requeue_stranded_transfers(
    state: &AppState,
    now: OffsetDateTime,
    report: &mut Report,
) -> anyhow::Result<()> {
    let Some(queue) = state.transfer_queue.as_ref() else {
        return Ok(());
    };
    let retry = state.config.transfer_retry;
    for stranded in state.repo.stranded_transfers(now).await? {
        let done = async {
            if copy_going_on(state, &stranded, now).await? {
                let next = now + retry.first;
                state
                    .repo
                    .postpone_transfer(&stranded, next, stranded.retries)
                    .await?;
                return Ok(false);
            }
            let next = now + retry.after(stranded.retries);
            let retries = stranded.retries + 1;
            if !state
                .repo
                .postpone_transfer(&stranded, next, retries)
                .await?
            {
                return Ok(false); // verified, deleted or taken by another janitor meanwhile
            }
            queue.continue_transfer(&stranded.object_key).await?;
            log_requeued(&stranded, retries, next, now);
            Ok::<_, anyhow::Error>(true)
        }
        .await;
        match done {
            Ok(true) => report.requeued_transfers += 1,
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(file_id = %stranded.file_id, error = format!("{e:#}"), "could not re-queue a stranded transfer")
            }
        }
    }
    Ok(())
}

/// Whether a checkpoint of this file's copy moved on within [`RUN_GOING_ON`].
async fn copy_going_on(
    state: &AppState,
    stranded: &StrandedTransfer,
    now: OffsetDateTime,
) -> anyhow::Result<bool> {
    Ok(state
        .repo
        .get_transfer(&stranded.file_id)
        .await?
        .is_some_and(|c| c.updated_at >= now - RUN_GOING_ON))
}

/// The operator's trace of a re-queue: which file, how long it has waited, how many times.
fn log_requeued(
    stranded: &StrandedTransfer,
    retries: u32,
    next: OffsetDateTime,
    now: OffsetDateTime,
) {
    tracing::warn!(
        file_id = %stranded.file_id,
        user_id = %stranded.user_id,
        unverified_secs = (now - stranded.created_at).whole_seconds(),
        retries,
        next_retry_at = %filestore_shared::repo::rfc3339(next),
        "transfer re-queued: the file was still unverified past its due time"
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use filestore_shared::config::TransferRetry;

    /// The wait after the first re-queue is twice the first wait, so a long outage is asked
    /// about less and less often, and never less than once per `max`.
    #[test]
    fn retries_back_off() {
        let retry = TransferRetry {
            first: Duration::from_secs(3600),
            max: Duration::from_secs(6 * 3600),
        };
        assert_eq!(retry.after(0), Duration::from_secs(7200));
        assert_eq!(retry.after(5), retry.max);
    }
}

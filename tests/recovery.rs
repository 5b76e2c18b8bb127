//! Recovery from a cold store that was down longer than the transfer queue retries: the
//! messages of that time are dead-lettered, and the janitor asks for the transfers of the
//! files still unverified past their due time, once per file however many janitors run,
//! leaving alone a copy still going on.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_sqs::types::QueueAttributeName;
use filestore_contract::domain::FileId;
use filestore_dev::{LocalSystem, Options};
use filestore_shared::repo::TransferCheckpoint;
use time::OffsetDateTime;

use crate::helpers::{MIB, TestApp, sha256_hex, test_bytes};

/// How many messages a queue holds, as SQS counts them.
async fn queue_depth(local: &LocalSystem, url: &str) -> u64 {
    queue_count(local, url, QueueAttributeName::ApproximateNumberOfMessages).await
}

/// How many messages a queue holds, waiting or received and not yet deleted.
async fn queue_held(local: &LocalSystem, url: &str) -> u64 {
    queue_depth(local, url).await
        + queue_count(
            local,
            url,
            QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
        )
        .await
}

async fn queue_count(local: &LocalSystem, url: &str, count: QueueAttributeName) -> u64 {
    let sqs = aws_sdk_sqs::Client::new(&local.sdk);
    let out = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(count.clone())
        .send()
        .await
        .unwrap();
    out.attributes()
        .and_then(|a| a.get(&count))
        .and_then(|n| n.parse().ok())
        .unwrap_or_default()
}

/// A sweep as of when the files just uploaded are due for the janitor.
async fn sweep_when_due(local: &LocalSystem) -> filestore_janitor::Report {
    let due = OffsetDateTime::now_utc() + local.state.config.transfer_retry.first;
    filestore_janitor::sweep(&local.state, due).await.unwrap()
}

/// The outage, for real: the cold store's emulator is stopped, files are uploaded (two of
/// them the same bytes), every transfer fails until its message is dead-lettered, then the
/// cold store comes back. The janitor re-queues each stranded transfer once; every file
/// ends verified with its bytes, each content once in the cold store with exactly as many
/// references as verified files hold it; a later sweep finds nothing stranded.
#[tokio::test]
async fn transfers_dead_lettered_in_a_cold_store_outage_end_verified() {
    let mut local = LocalSystem::start(Options::isolated()).await.unwrap();
    local.stop_cold_store().await;
    let app = TestApp::new_at(&local.base_url()).await;
    let same = test_bytes(200_000, 91);
    let contents = [
        same.clone(),
        same,
        test_bytes(3000, 92),
        test_bytes(6 * MIB + 5, 93),
    ];
    let mut files = Vec::new();
    for (i, data) in contents.iter().enumerate() {
        let file = app
            .upload(&format!("outage-{i}.bin"), data, Some(5 * MIB))
            .await;
        files.push((file.file_id, data));
    }
    // Every message dead-lettered and none left to retry: a transfer still retrying when
    // the cold store comes back would verify its file on its own, and the sweep would
    // rightly find it not stranded.
    let (queue, dlq) = (
        local.queues.transfer_queue_url.clone(),
        local.queues.dead_letter_queue_url.clone(),
    );
    crate::helpers::eventually(180, "every transfer in the dead-letter queue", || async {
        let dead = queue_depth(&local, &dlq).await;
        (dead >= files.len() as u64 && queue_held(&local, &queue).await == 0).then_some(())
    })
    .await;
    assert_eq!(queue_depth(&local, &dlq).await, files.len() as u64);
    for (file_id, _) in &files {
        assert!(!app.file(file_id).await.verified);
    }

    local.start_cold_store().await.unwrap();
    let report = sweep_when_due(&local).await;
    assert_eq!(report.requeued_transfers, files.len() as u64);
    for (file_id, data) in &files {
        let file = app.verified(file_id).await;
        assert_eq!(file.sha256.as_deref(), Some(sha256_hex(data).as_str()));
        assert!(app.download(file_id).await == **data, "bytes differ");
    }
    let mut holders: HashMap<String, u64> = HashMap::new();
    for (_, data) in &files {
        *holders.entry(sha256_hex(data)).or_default() += 1;
    }
    let cold = local.state.cold.as_ref().unwrap();
    for (sha256, count) in &holders {
        let content = local.state.repo.get_content(sha256).await.unwrap().unwrap();
        assert_eq!(content.refs, *count, "{sha256}");
        assert_eq!(
            local.state.repo.count_verified_files(sha256).await.unwrap(),
            *count
        );
        assert!(cold.object_size(&content.cold_key).await.unwrap().is_some());
    }
    assert_eq!(sweep_when_due(&local).await.requeued_transfers, 0);
    local.stop().await;
}

/// A system whose queue nobody consumes, with `count` files uploaded and left unverified.
async fn unverified_files(count: usize) -> (LocalSystem, TestApp, Vec<FileId>) {
    let mut options = Options::isolated();
    options.run_worker = false;
    let local = LocalSystem::start(options).await.unwrap();
    let app = TestApp::new_at(&local.base_url()).await;
    let mut ids = Vec::new();
    for i in 0..count {
        let file = app
            .upload(
                &format!("waiting-{i}.bin"),
                &test_bytes(1000, i as u64),
                None,
            )
            .await;
        ids.push(file.file_id);
    }
    (local, app, ids)
}

/// A completed upload is one message on the transfer queue, as S3 sends one
/// `ObjectCreated` event for it (moto sent a `Put` event too, until the local emulator
/// dropped it).
#[tokio::test]
async fn each_completed_upload_is_one_transfer_message() {
    let mut options = Options::isolated();
    options.run_worker = false;
    let local = LocalSystem::start(options).await.unwrap();
    let app = TestApp::new_at(&local.base_url()).await;
    let queue = local.queues.transfer_queue_url.clone();
    // S3 sends an `s3:TestEvent` when the notification is configured.
    let before = queue_held(&local, &queue).await;
    for (i, size) in [0, 1000, 6 * MIB].into_iter().enumerate() {
        app.upload(
            &format!("once-{i}.bin"),
            &test_bytes(size, i as u64),
            Some(5 * MIB),
        )
        .await;
        assert_eq!(queue_held(&local, &queue).await - before, i as u64 + 1);
    }
    local.stop().await;
}

/// Janitors racing over the same stranded files ask for each transfer once: the
/// postponement each re-queue is conditioned on lets one of them through.
#[tokio::test]
async fn racing_janitors_requeue_each_stranded_transfer_once() {
    let (local, _app, ids) = unverified_files(3).await;
    let queue = local.queues.transfer_queue_url.clone();
    for trial in 0..4 {
        let before = queue_depth(&local, &queue).await;
        // Each trial is due after the last one's postponement (at most the longest wait).
        let due = OffsetDateTime::now_utc()
            + local.state.config.transfer_retry.max
            + Duration::from_secs(3600 * (trial + 1));
        let sweeps = (0..4).map(|_| filestore_janitor::sweep(&local.state, due));
        let requeued: u64 = futures::future::join_all(sweeps)
            .await
            .into_iter()
            .map(|r| r.unwrap().requeued_transfers)
            .sum();
        assert_eq!(requeued, ids.len() as u64, "trial {trial}");
        assert_eq!(
            queue_depth(&local, &queue).await - before,
            ids.len() as u64,
            "trial {trial}"
        );
    }
    local.stop().await;
}

/// A file whose copy left a checkpoint moments ago is a transfer still going over several
/// runs: the janitor puts it off without a message; once the checkpoint is old, it asks.
#[tokio::test]
async fn a_copy_still_going_on_is_not_requeued() {
    let (local, app, ids) = unverified_files(1).await;
    let file_id = ids[0].clone();
    let checkpoint = |updated_at| TransferCheckpoint {
        file_id: file_id.clone(),
        user_id: app.user_id.clone(),
        version: 1,
        cold_upload_id: "u".into(),
        state: "{}".into(),
        blob: Vec::new(),
        updated_at,
    };
    let due = OffsetDateTime::now_utc() + local.state.config.transfer_retry.first;
    assert!(
        local
            .state
            .repo
            .save_transfer(&checkpoint(due))
            .await
            .unwrap()
    );
    let report = filestore_janitor::sweep(&local.state, due).await.unwrap();
    assert_eq!(report.requeued_transfers, 0);

    let later = due + Duration::from_secs(24 * 3600);
    let report = filestore_janitor::sweep(&local.state, later).await.unwrap();
    assert_eq!(report.requeued_transfers, 1);
    local.stop().await;
}

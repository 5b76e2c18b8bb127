//! Writers racing each other over the same records, as races: many trials of concurrent
//! calls, then the invariants checked on what is left. Nothing is lost and nothing is
//! counted twice: a purge (a trashed file's delete) racing the transfer's verification
//! releases the content reference exactly when the file held one, and of a complete and an abort of one upload exactly one
//! wins, leaving either a File or nothing (no object, no upload) behind.

use std::time::Duration;

use filestore_contract::RouteKey::{AbortUpload, CompleteUpload, DeleteFile, PurgeTrash};
use filestore_contract::api::FileEnvelope;
use filestore_contract::domain::UserId;
use filestore_dev::{LocalSystem, Options};
use filestore_shared::keys;
use filestore_shared::repo::{Verified, VerifyOutcome};
use filestore_transfer::{CopyJob, Place, Progress};
use serde_json::json;
use time::OffsetDateTime;

use crate::helpers::{TestApp, aws, claims, open_multipart_uploads, path, system, test_bytes};

/// Trials per race: enough for every interleaving the two sides can take to come up.
const TRIALS: usize = 30;

/// A delay of 0 to 9 steps of `step_ms` milliseconds, different from one trial to the next,
/// so the trials spread one side of a race over the other's reads and writes.
async fn stagger(trial: usize, step_ms: u64) {
    tokio::time::sleep(Duration::from_millis((trial % 10) as u64 * step_ms)).await;
}

/// A purge reads a trashed file, then deletes it; the transfer's verification (one more
/// reference on the content) may commit in between. In every trial the purge answers 204
/// and leaves nothing referencing the content, so the janitor collects the content record
/// and its cold copy; its reference check then finds nothing to repair.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_purge_racing_verification_releases_the_reference_it_holds() {
    let mut options = Options::isolated();
    // The test plays the transfer, so it decides when verification lands.
    options.run_worker = false;
    let local = LocalSystem::start(options).await.unwrap();
    let state = &local.state;
    let cold = state.cold.as_ref().unwrap();
    let app = TestApp::new_at(&local.base_url()).await;

    let mut trials = Vec::new();
    let mut leaked = Vec::new();
    for trial in 0..TRIALS {
        let data = test_bytes(2000 + trial, 700 + trial as u64);
        let file = app.upload(&format!("race-{trial}.bin"), &data, None).await;
        let file_id = &file.file_id;
        app.delete(&path(DeleteFile, file_id)).await.expect(204);
        let hot_key = keys::object_key(&app.user_id, file_id);
        let cold_key = keys::cold_key(file_id);
        // The copy happens before the race: only recording it races the delete.
        let copied = CopyJob::new(
            Place {
                store: &state.storage,
                key: &hot_key,
            },
            Place {
                store: cold,
                key: &cold_key,
            },
            data.len() as u64,
        )
        .run()
        .await
        .unwrap();
        let Progress::Done(copied) = copied else {
            panic!("a copy with no time limit finishes: {copied:?}");
        };
        let record = state
            .repo
            .get_file(&app.user_id, file_id)
            .await
            .unwrap()
            .unwrap();
        let found = Verified {
            sha256: copied.sha256.clone(),
            sha1: copied.sha1.clone(),
            size: copied.size,
            cold_key: cold_key.clone(),
        };
        let verify = async {
            stagger(trial, 1).await;
            let outcome = state.repo.record_verified(&record, &found).await.unwrap();
            // As the transfer does: a copy recorded for no file is dropped.
            if outcome == VerifyOutcome::Stale {
                cold.delete_object(&cold_key).await.unwrap();
            }
        };
        let purge = path(PurgeTrash, file_id);
        let (_, deleted) = tokio::join!(verify, app.delete(&purge));
        deleted.expect(204);
        let content = state.repo.get_content(&copied.sha256).await.unwrap();
        if content.is_some_and(|c| c.refs > 0) {
            leaked.push(trial);
        }
        trials.push((copied.sha256, cold_key));
    }
    assert!(
        leaked.is_empty(),
        "{} of {TRIALS} purges left their file's reference counted: trials {leaked:?}",
        leaked.len()
    );

    // Late enough that the daily reference check runs, whatever sweep ran before, and
    // counts every content of the trials.
    let later = OffsetDateTime::now_utc() + filestore_janitor::REFS_CHECK_EVERY * 2;
    let report = filestore_janitor::sweep(state, later).await.unwrap();
    assert_eq!(report.repaired_refs, 0, "{report:?}");
    for (sha256, cold_key) in &trials {
        assert_eq!(state.repo.get_content(sha256).await.unwrap(), None);
        assert_eq!(
            cold.object_size(cold_key).await.unwrap(),
            None,
            "{cold_key}"
        );
    }
    local.stop().await;
}

/// Objects left under a user's prefix in the hot bucket.
async fn hot_objects(user_id: &UserId) -> usize {
    let (s3, _) = aws().await;
    s3.list_objects_v2()
        .bucket(&system().hot_bucket)
        .prefix(format!("files/{user_id}/"))
        .send()
        .await
        .unwrap()
        .contents()
        .len()
}

/// A complete and an abort of the same upload, sent together: exactly one wins. Either the
/// complete answers 201 and the abort `409 upload_completed` (the File is kept, its bytes
/// download), or the abort answers 204 and the complete 404 (no File, no object, no open
/// multipart upload). Never both, never neither, never a 500.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_complete_racing_an_abort_has_exactly_one_winner() {
    let app = TestApp::new().await;
    let (mut completed, mut aborted, mut wrong) = (Vec::new(), 0, Vec::new());
    for trial in 0..TRIALS {
        let data = test_bytes(1000 + trial, 800 + trial as u64);
        let upload = app
            .create_upload(&format!("race-{trial}.bin"), data.len(), None)
            .await;
        app.send_parts(&upload, &data, &[1]).await;
        let id = &upload.upload_id;
        let abort = async {
            stagger(trial, 10).await;
            app.delete(&path(AbortUpload, id)).await
        };
        let complete = path(CompleteUpload, id);
        let (complete, abort) = tokio::join!(app.post(&complete, json!({})), abort);
        match (complete.status.as_u16(), abort.status.as_u16()) {
            (201, 409) => {
                abort.expect_error(409, "upload_completed");
                let file = complete.expect_body::<FileEnvelope>(201).file;
                completed.push((file.file_id, data));
            }
            (404, 204) => {
                complete.expect_error(404, "not_found");
                aborted += 1;
            }
            statuses => wrong.push((trial, statuses)),
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {TRIALS} races had no single winner (trial, (complete, abort)): {wrong:?}",
        wrong.len()
    );
    assert_eq!(completed.len() + aborted, TRIALS);
    assert_eq!(app.list_files().await.files.len(), completed.len());
    assert!(app.list_uploads().await.uploads.is_empty());
    assert_eq!(open_multipart_uploads(&app.user_id).await, 0);
    assert_eq!(hot_objects(&app.user_id).await, completed.len());
    // Every reservation was either released (abort) or became used bytes (complete).
    let used: u64 = completed.iter().map(|(_, data)| data.len() as u64).sum();
    assert_eq!(claims(&app.user_id).await, (used, 0));
    for (file_id, data) in &completed {
        assert!(app.download(file_id).await == *data, "{file_id} differs");
    }
}

//! Writers racing each other over the same records, as races: many trials of concurrent
//! calls, then the invariants checked on what is left. Nothing is lost and nothing is
//! counted twice: a delete racing the transfer's verification releases the content reference
//! exactly when the file held one.

use std::time::Duration;

use filestore_contract::RouteKey::DeleteFile;
use filestore_dev::{LocalSystem, Options};
use filestore_shared::keys;
use filestore_shared::repo::{Verified, VerifyOutcome};
use filestore_transfer::{CopyJob, Place, Progress};
use time::OffsetDateTime;

use crate::helpers::{TestApp, path, test_bytes};

/// Trials per race: enough for every interleaving the two sides can take to come up.
const TRIALS: usize = 30;

/// A delay of up to `steps` milliseconds, different from one trial to the next, so the
/// trials spread one side of a race over the other's reads and writes.
async fn stagger(trial: usize, steps: usize) {
    tokio::time::sleep(Duration::from_millis((trial % steps) as u64)).await;
}

/// The delete handler reads a file, then deletes it; the transfer's verification (one more
/// reference on the content) may commit in between. In every trial the delete answers 204
/// and leaves nothing referencing the content, so the janitor collects the content record
/// and its cold copy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delete_racing_verification_releases_the_reference_it_holds() {
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
            stagger(trial, 10).await;
            let outcome = state.repo.record_verified(&record, &found).await.unwrap();
            // As the transfer does: a copy recorded for no file is dropped.
            if outcome == VerifyOutcome::Stale {
                cold.delete_object(&cold_key).await.unwrap();
            }
        };
        let delete = path(DeleteFile, file_id);
        let (_, deleted) = tokio::join!(verify, app.delete(&delete));
        deleted.expect(204);
        let content = state.repo.get_content(&copied.sha256).await.unwrap();
        if content.is_some_and(|c| c.refs > 0) {
            leaked.push(trial);
        }
        trials.push((copied.sha256, cold_key));
    }
    assert!(
        leaked.is_empty(),
        "{} of {TRIALS} deletes left their file's reference counted: trials {leaked:?}",
        leaked.len()
    );

    filestore_janitor::sweep(state, OffsetDateTime::now_utc())
        .await
        .unwrap();
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

//! The transfer pipeline: S3 events -> SQS -> hash-verified copy to the cold store (a second
//! endpoint), content dedup by reference counting, redelivery and poison messages.

use aws_sdk_dynamodb::types::AttributeValue;
use filestore_contract::RouteKey::GetFile;
use filestore_contract::api::CreateUploadResponse;
use filestore_contract::domain::Tier;
use filestore_transfer::{CopyJob, Place, Progress};
use serde_json::json;

use crate::helpers::{
    MIB, TestApp, app_state, aws, cold_endpoint, cold_s3, eventually, path, s3_event, sha256_hex,
    sqs, sqs_batch, system, test_bytes,
};

async fn cold_object(key: &str) -> Option<Vec<u8>> {
    let out = cold_s3()
        .await
        .get_object()
        .bucket(&system().cold_bucket)
        .key(key)
        .send()
        .await
        .ok()?;
    Some(out.body.collect().await.unwrap().into_bytes().to_vec())
}

async fn content_refs(sha256: &str) -> Option<u64> {
    let (_, ddb) = aws().await;
    let item = ddb
        .get_item()
        .table_name(&system().table)
        .key("PK", AttributeValue::S(format!("CONTENT#{sha256}")))
        .key("SK", AttributeValue::S("CONTENT".into()))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item?;
    match item.get("refs") {
        Some(AttributeValue::N(n)) => n.parse().ok(),
        _ => None,
    }
}

/// A multi-part upload is read back by the transfer, hashed, copied to the cold store on
/// its own endpoint byte for byte, and only then marked verified and cold.
#[tokio::test]
async fn uploaded_file_is_verified_and_copied_to_the_cold_store() {
    let app = TestApp::new().await;
    let data = test_bytes(11 * MIB + 7, 21);
    let file = app.upload("cold.bin", &data, Some(5 * MIB)).await;
    assert!(!file.verified);
    let file_id = &file.file_id;

    let verified = app.verified(file_id).await;
    assert_eq!(verified.sha256, Some(sha256_hex(&data)));
    assert_eq!(verified.tier, Tier::Cold);
    // Raw, to see the field is left out, not sent as null.
    let raw = app.get(&path(GetFile, file_id)).await.expect(200);
    assert!(raw.get("declared_sha256").is_none(), "{raw}");
    let stored = cold_object(&format!("blobs/{file_id}"))
        .await
        .expect("cold copy");
    assert!(stored == data, "cold copy differs");
    assert_eq!(content_refs(&sha256_hex(&data)).await, Some(1));
    assert_eq!(app.download(file_id).await, data);
}

/// Two users storing the same bytes share one cold copy with two references; deleting one
/// file keeps the other's bytes.
#[tokio::test]
async fn same_content_is_stored_once_and_survives_one_delete() {
    let (alice, bob) = (TestApp::new().await, TestApp::new().await);
    let data = test_bytes(300_000, 22);
    let a = alice.upload("a.bin", &data, None).await;
    let b = bob.upload("b.bin", &data, None).await;
    let (a_id, b_id) = (&a.file_id, &b.file_id);
    alice.verified(a_id).await;
    bob.verified(b_id).await;
    let digest = sha256_hex(&data);
    assert_eq!(content_refs(&digest).await, Some(2));
    let copies = [
        cold_object(&format!("blobs/{a_id}")).await,
        cold_object(&format!("blobs/{b_id}")).await,
    ];
    assert_eq!(
        copies.iter().filter(|c| c.is_some()).count(),
        1,
        "one cold copy"
    );

    alice.delete_for_good(a_id).await;
    assert_eq!(content_refs(&digest).await, Some(1));
    assert_eq!(bob.download(b_id).await, data);
}

/// A declared hash that does not match the bytes is never trusted: the File carries the
/// computed hash, and the declared one only as `declared_sha256` for its owner to see.
#[tokio::test]
async fn a_false_declared_hash_is_replaced_by_the_computed_one() {
    let app = TestApp::new().await;
    let data = test_bytes(5000, 23);
    let claimed = sha256_hex(b"some other content");
    let upload: CreateUploadResponse = app
        .post(
            "/v1/uploads",
            json!({"name": "lie.bin", "size": data.len(), "sha256": claimed}),
        )
        .await
        .expect_body(201);
    app.send_parts(&upload, &data, &[1]).await;
    let file = app.complete(&upload.upload_id).await;
    assert_eq!(file.sha256.as_ref(), Some(&claimed));
    let verified = app.verified(&file.file_id).await;
    assert_eq!(verified.sha256, Some(sha256_hex(&data)));
    assert_eq!(verified.declared_sha256, Some(claimed.clone()));
    assert_eq!(
        content_refs(&claimed).await,
        None,
        "the claimed hash names no content"
    );
}

/// A redelivered S3 event for a verified file changes nothing: no second reference.
#[tokio::test]
async fn duplicate_event_delivery_changes_nothing() {
    let app = TestApp::new().await;
    let data = test_bytes(4096, 24);
    let file = app.upload("dup.bin", &data, None).await;
    let file_id = &file.file_id;
    app.verified(file_id).await;
    let digest = sha256_hex(&data);
    assert_eq!(content_refs(&digest).await, Some(1));

    let key = format!("files/{}/{file_id}", app.user_id);
    // Deliver it twice more, straight to the handler, as Lambda would on redelivery.
    let state = app_state().await;
    for _ in 0..2 {
        let batch = sqs_batch(&s3_event(&system().hot_bucket, &key, data.len()));
        let response = filestore_transfer::handler(&state, batch, &Default::default()).await;
        assert!(response.batch_item_failures.is_empty());
    }
    assert_eq!(content_refs(&digest).await, Some(1));
    assert!(app.file(file_id).await.verified);
}

/// A message that can never be handled is retried, then parked in the dead-letter queue.
#[tokio::test]
async fn poison_messages_end_in_the_dead_letter_queue() {
    let sqs = sqs().await;
    let marker = uuid::Uuid::new_v4().to_string();
    sqs.send_message()
        .queue_url(&system().queue_url)
        .message_body(format!("not an S3 event {marker}"))
        .send()
        .await
        .unwrap();
    eventually(60, "the poison message in the DLQ", || async {
        let out = sqs
            .receive_message()
            .queue_url(&system().dead_letter_queue_url)
            .max_number_of_messages(10)
            .send()
            .await
            .ok()?;
        out.messages()
            .iter()
            .any(|m| m.body().is_some_and(|b| b.contains(&marker)))
            .then_some(())
    })
    .await;
}

/// With a hot retention of zero, the hot copy is removed once the cold copy is verified, and
/// downloads come from the cold store's endpoint, byte for byte.
#[tokio::test]
async fn with_zero_retention_downloads_come_from_the_cold_store() {
    let mut options = filestore_dev::Options::isolated();
    options.config.hot_retention = Some(std::time::Duration::ZERO);
    let local = filestore_dev::LocalSystem::start(options).await.unwrap();
    let app = TestApp::new_at(&local.base_url()).await;
    let data = test_bytes(7 * MIB, 25);
    let file = app.upload("cold-only.bin", &data, Some(5 * MIB)).await;
    let file_id = &file.file_id;
    app.verified(file_id).await;

    let hot_key = format!("files/{}/{file_id}", app.user_id);
    eventually(30, "the hot copy to be removed", || async {
        local
            .state
            .storage
            .object_size(&hot_key)
            .await
            .unwrap()
            .is_none()
            .then_some(())
    })
    .await;
    let url = app.download_url(file_id).await;
    let cold_endpoint = cold_endpoint(&local);
    assert!(
        url.starts_with(&cold_endpoint),
        "{url} is not on {cold_endpoint}"
    );
    assert!(app.download(file_id).await == data, "cold download differs");
    local.stop().await;
}

/// A worker that crashed after writing the cold copy but before recording it leaves a copy
/// and no metadata; the redelivery finishes the job with one copy and one reference.
#[tokio::test]
async fn a_crash_between_cold_copy_and_metadata_is_finished_by_the_retry() {
    let mut options = filestore_dev::Options::isolated();
    // Nothing consumes the queue: this test plays the worker.
    options.run_worker = false;
    let local = filestore_dev::LocalSystem::start(options).await.unwrap();
    let app = TestApp::new_at(&local.base_url()).await;
    let data = test_bytes(6 * MIB, 26);
    let file = app.upload("crash.bin", &data, Some(5 * MIB)).await;
    let file_id = &file.file_id;
    let key = format!("files/{}/{file_id}", app.user_id);
    let state = &local.state;
    let cold = state.cold.as_ref().unwrap();

    // The first attempt: the copy happens, then the worker dies.
    let cold_key = filestore_shared::keys::cold_key(file_id);
    let copied = CopyJob::new(
        Place {
            store: &state.storage,
            key: &key,
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
    assert_eq!(copied.sha256, sha256_hex(&data));
    let unverified = state
        .repo
        .get_file(&app.user_id, file_id)
        .await
        .unwrap()
        .unwrap();
    assert!(!unverified.verified());

    // The redelivery.
    let response = filestore_transfer::handler(
        state,
        sqs_batch(&s3_event(&state.config.hot_bucket, &key, data.len())),
        &Default::default(),
    )
    .await;
    assert!(response.batch_item_failures.is_empty());
    let verified = app.verified(file_id).await;
    assert_eq!(verified.sha256, Some(sha256_hex(&data)));
    let content = state
        .repo
        .get_content(&sha256_hex(&data))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (content.refs, content.cold_key.as_str()),
        (1, filestore_shared::keys::cold_key(file_id).as_str())
    );
    assert_eq!(app.download(file_id).await, data);
    local.stop().await;
}

/// With the cold store down, the transfer fails, is retried, and the message ends in the
/// dead-letter queue; the file is never marked verified and its hot bytes stay.
#[tokio::test]
async fn cold_store_down_ends_in_the_dead_letter_queue_and_verifies_nothing() {
    let mut local = filestore_dev::LocalSystem::start(filestore_dev::Options::isolated())
        .await
        .unwrap();
    local.cold_emulator.take().unwrap().stop().await;
    let app = TestApp::new_at(&local.base_url()).await;
    let data = test_bytes(3000, 27);
    let file = app.upload("down.bin", &data, None).await;
    let file_id = file.file_id;

    let sqs = aws_sdk_sqs::Client::new(&local.sdk);
    let dlq = local.queues.dead_letter_queue_url.clone();
    let parked = eventually(90, "the failed event in the DLQ", || async {
        let out = sqs.receive_message().queue_url(&dlq).send().await.ok()?;
        out.messages()
            .first()
            .and_then(|m| m.body().map(str::to_string))
    })
    .await;
    assert!(parked.contains(file_id.as_str()), "{parked}");
    let now = app.file(&file_id).await;
    assert!(!now.verified);
    assert_eq!(now.tier, Tier::Hot);
    assert_eq!(app.download(&file_id).await, data);
    local.stop().await;
}

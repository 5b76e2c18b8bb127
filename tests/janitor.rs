//! The janitor: abandoned uploads are aborted in S3 and forgotten, and so is what an abort
//! left in S3 when S3 failed; content nobody references
//! any more is removed from the table and the cold store, and referenced content is kept;
//! hot copies go once their retention has passed; cold blobs nothing points to go after a
//! grace period.

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use filestore_contract::RouteKey;
use filestore_dev::gateway::{self, Functions};
use filestore_dev::{LocalSystem, Options};
use filestore_shared::repo::TransferCheckpoint;
use filestore_shared::{keys, metrics};
use time::OffsetDateTime;

use crate::helpers::{
    MIB, TestApp, app_state, aws, claims, cold_endpoint, cold_s3, expire_upload,
    open_multipart_uploads, output, path, s3_event, sha256_hex, sqs_batch, system, test_bytes,
};

async fn cold_has(key: &str) -> bool {
    cold_s3()
        .await
        .head_object()
        .bucket(&system().cold_bucket)
        .key(key)
        .send()
        .await
        .is_ok()
}

/// An upload left past its expiry is aborted in S3 (its parts freed) and its record removed;
/// a live one is left alone. The sweep's work is written as its metrics (run as Lambda runs
/// it, one invocation).
#[tokio::test]
async fn expired_uploads_are_aborted_and_removed() {
    let app = TestApp::new().await;
    let data = test_bytes(6 * MIB, 41);
    let stale = app
        .create_upload("stale.bin", data.len(), Some(5 * MIB))
        .await;
    app.send_parts(&stale, &data, &[1]).await;
    let live = app.create_upload("live.bin", 10, None).await;
    assert_eq!(open_multipart_uploads(&app.user_id).await, 2);

    let stale_id = &stale.upload_id;
    expire_upload(&app.user_id, stale_id).await;

    let state = app_state().await;
    let sweep_id = uuid::Uuid::new_v4().to_string();
    let sweep = filestore_janitor::sweep(&state, time::OffsetDateTime::now_utc());
    let report = metrics::invocation("janitor", &sweep_id, sweep)
        .await
        .unwrap();
    assert!(report.aborted_uploads >= 1, "{report:?}");
    // Sweeps see every test's items, so the figures are the report's, zeros included.
    for (metric, n) in [
        (metrics::UPLOADS_EXPIRED, report.aborted_uploads),
        (metrics::TRASH_PURGED, report.purged_trash),
        (metrics::TRANSFERS_REQUEUED, report.requeued_transfers),
    ] {
        let written = output::metric_of(&sweep_id, metric.name).and_then(|v| v.as_f64());
        assert_eq!(written, Some(n as f64), "{}", metric.name);
    }
    assert_eq!(open_multipart_uploads(&app.user_id).await, 1);
    let (_, ddb) = aws().await;
    let record = ddb
        .get_item()
        .table_name(&system().table)
        .key("PK", AttributeValue::S(format!("USER#{}", app.user_id)))
        .key("SK", AttributeValue::S(format!("UPLOAD#{stale_id}")))
        .send()
        .await
        .unwrap();
    assert!(record.item.is_none());
    app.upload_status(&live.upload_id).await;
    // The expired upload's reservation went with it, in the same transaction.
    assert_eq!(claims(&app.user_id).await, (10, 1));
}

/// Expired uploads are found in every shard of the janitor's index, whose shards a sweep
/// queries several at a time: 40 uploads (their ids spread over most of the 16 shards),
/// every one expired, are all ended by one sweep.
#[tokio::test]
async fn expired_uploads_in_many_shards_are_ended_by_one_sweep() {
    let app = TestApp::new().await;
    let mut uploads = Vec::new();
    for i in 0..40 {
        let upload = app.create_upload(&format!("f{i}.bin"), 10, None).await;
        uploads.push(upload.upload_id);
    }
    let shards: std::collections::HashSet<_> = uploads
        .iter()
        .map(|id| keys::Due::Upload.key(id.as_str()))
        .collect();
    assert!(shards.len() >= 8, "{} shards", shards.len());
    for id in &uploads {
        expire_upload(&app.user_id, id).await;
    }

    let report = filestore_janitor::sweep(&app_state().await, OffsetDateTime::now_utc())
        .await
        .unwrap();
    assert!(report.aborted_uploads >= uploads.len() as u64, "{report:?}");
    assert_eq!(open_multipart_uploads(&app.user_id).await, 0);
    assert_eq!(claims(&app.user_id).await, (0, 0));
}

/// Content whose last File was deleted is collected from both the table and the cold store;
/// content that is still referenced stays.
#[tokio::test]
async fn unreferenced_content_is_collected_and_referenced_content_kept() {
    let app = TestApp::new().await;
    let gone = test_bytes(70_000, 42);
    let kept = test_bytes(70_000, 43);
    let gone_file = app.upload("gone.bin", &gone, None).await;
    let kept_file = app.upload("kept.bin", &kept, None).await;
    let (gone_id, kept_id) = (&gone_file.file_id, &kept_file.file_id);
    app.verified(gone_id).await;
    app.verified(kept_id).await;
    app.delete_for_good(gone_id).await;
    assert!(cold_has(&format!("blobs/{gone_id}")).await);

    // Other tests sweep the same table at the same time, so which sweep collects the content
    // is not known; that it is gone, from the table and the cold store, after this one is.
    filestore_janitor::sweep(&app_state().await, time::OffsetDateTime::now_utc())
        .await
        .unwrap();
    assert!(
        !cold_has(&format!("blobs/{gone_id}")).await,
        "cold bytes left"
    );
    assert!(
        cold_has(&format!("blobs/{kept_id}")).await,
        "referenced bytes removed"
    );
    let (_, ddb) = aws().await;
    let digest = sha256_hex(&gone);
    let record = ddb
        .get_item()
        .table_name(&system().table)
        .key("PK", AttributeValue::S(format!("CONTENT#{digest}")))
        .key("SK", AttributeValue::S("CONTENT".into()))
        .send()
        .await
        .unwrap();
    assert!(record.item.is_none());
    assert_eq!(app.download(kept_id).await, kept);
}

/// With a hot retention, the janitor removes a verified file's hot copy once the retention
/// has passed since its verification, and not before; a file not verified yet keeps its hot
/// copy whatever its age. Downloads then come from the cold store, byte for byte.
#[tokio::test]
async fn hot_copies_are_removed_once_their_retention_has_passed() {
    let retention = Duration::from_secs(3600);
    let mut options = Options::isolated();
    options.config.hot_retention = Some(retention);
    // The test delivers the events itself, so one file can stay unverified.
    options.run_worker = false;
    let local = LocalSystem::start(options).await.unwrap();
    let state = &local.state;
    let app = TestApp::new_at(&local.base_url()).await;
    let data = test_bytes(6 * MIB, 45);
    let waiting = test_bytes(4000, 46);
    let file = app.upload("retained.bin", &data, Some(5 * MIB)).await;
    let other = app.upload("waiting.bin", &waiting, None).await;
    let (file_id, other_id) = (&file.file_id, &other.file_id);
    let (hot_key, other_key) = (
        format!("files/{}/{file_id}", app.user_id),
        format!("files/{}/{other_id}", app.user_id),
    );
    let event = s3_event(&state.config.hot_bucket, &hot_key, data.len());
    let response = filestore_transfer::handler(state, sqs_batch(&event), &Default::default()).await;
    assert!(response.batch_item_failures.is_empty());
    app.verified(file_id).await;
    let cold_endpoint = cold_endpoint(&local);
    let download_url = || app.download_url(file_id);

    let now = OffsetDateTime::now_utc();
    let report = filestore_janitor::sweep(state, now).await.unwrap();
    assert_eq!(report.removed_hot_copies, 0, "{report:?}");
    assert!(state.storage.object_size(&hot_key).await.unwrap().is_some());
    assert!(!download_url().await.starts_with(&cold_endpoint));

    let later = now + retention + Duration::from_secs(60);
    let report = filestore_janitor::sweep(state, later).await.unwrap();
    assert_eq!(report.removed_hot_copies, 1, "{report:?}");
    assert!(state.storage.object_size(&hot_key).await.unwrap().is_none());
    let record = state
        .repo
        .get_file(&app.user_id, file_id)
        .await
        .unwrap()
        .unwrap();
    assert!(!record.hot_present());
    assert!(
        state
            .storage
            .object_size(&other_key)
            .await
            .unwrap()
            .is_some(),
        "unverified hot copy removed"
    );
    assert!(download_url().await.starts_with(&cold_endpoint));
    assert!(app.download(file_id).await == data, "cold download differs");
    assert!(app.download(other_id).await == waiting);
    local.stop().await;
}

/// A janitor that died between deleting a content record and its cold blob leaves the blob
/// with nothing pointing to it, and a transfer stopped mid-copy leaves a cold multipart
/// upload open. The sweep leaves both alone while younger than the grace period (a transfer
/// may still be at work), then removes them; blobs that content points to stay.
#[tokio::test]
async fn orphan_cold_blobs_are_removed_after_the_grace_period() {
    let local = LocalSystem::start(Options::isolated()).await.unwrap();
    let state = &local.state;
    let cold = state.cold.as_ref().unwrap();
    let app = TestApp::new_at(&local.base_url()).await;
    let (gone, kept) = (test_bytes(90_000, 47), test_bytes(90_000, 48));
    let gone_file = app.upload("gone.bin", &gone, None).await;
    let kept_file = app.upload("kept.bin", &kept, None).await;
    let (gone_id, kept_id) = (&gone_file.file_id, &kept_file.file_id);
    app.verified(gone_id).await;
    app.verified(kept_id).await;
    app.delete_for_good(gone_id).await;
    // The first half of collecting it, then the janitor dies.
    let digest = sha256_hex(&gone);
    assert!(
        state
            .repo
            .delete_unreferenced_content(&digest, &keys::cold_key(gone_id))
            .await
            .unwrap()
    );
    let (orphan, referenced) = (format!("blobs/{gone_id}"), format!("blobs/{kept_id}"));
    assert!(cold.object_size(&orphan).await.unwrap().is_some());
    // A transfer stopped mid-copy leaves its cold multipart upload open.
    let stopped = cold
        .create_multipart("blobs/stopped-transfer", Some("application/octet-stream"))
        .await
        .unwrap();
    let is_open = |upload_id: &str| {
        let upload_id = upload_id.to_string();
        async move {
            cold.open_uploads("blobs/")
                .await
                .unwrap()
                .iter()
                .any(|u| u.upload_id == upload_id)
        }
    };
    assert!(is_open(&stopped).await);
    // Two copies that span runs, each with its checkpoint: one moved on lately (a copy still
    // going, kept), one not since before the grace period (abandoned, aborted).
    let now = OffsetDateTime::now_utc();
    let later = now + filestore_janitor::ORPHAN_GRACE + Duration::from_secs(60);
    let mut spanning = Vec::new();
    for updated_at in [later - Duration::from_secs(3600), now] {
        let file_id = filestore_contract::domain::FileId::generate();
        let upload_id = cold
            .create_multipart(
                &format!("blobs/{file_id}"),
                Some("application/octet-stream"),
            )
            .await
            .unwrap();
        let checkpoint = TransferCheckpoint {
            file_id,
            user_id: app.user_id.clone(),
            version: 1,
            cold_upload_id: upload_id.clone(),
            state: "{}".into(),
            blob: Vec::new(),
            updated_at,
        };
        assert!(state.repo.save_transfer(&checkpoint).await.unwrap());
        spanning.push(upload_id);
    }

    let report = filestore_janitor::sweep(state, now).await.unwrap();
    assert_eq!(report.removed_orphan_blobs, 0, "{report:?}");
    assert_eq!(report.aborted_cold_uploads, 0, "{report:?}");
    assert!(
        cold.object_size(&orphan).await.unwrap().is_some(),
        "a young blob was removed"
    );
    assert!(is_open(&stopped).await, "a young cold upload was aborted");

    let report = filestore_janitor::sweep(state, later).await.unwrap();
    assert_eq!(report.removed_orphan_blobs, 1, "{report:?}");
    assert_eq!(report.aborted_cold_uploads, 2, "{report:?}");
    assert!(
        !is_open(&stopped).await,
        "the stale cold upload is still open"
    );
    assert!(
        is_open(&spanning[0]).await,
        "a copy still going was aborted"
    );
    assert!(
        !is_open(&spanning[1]).await,
        "an abandoned copy's upload is still open"
    );
    assert!(
        cold.object_size(&orphan).await.unwrap().is_none(),
        "the orphan stayed"
    );
    assert!(
        cold.object_size(&referenced).await.unwrap().is_some(),
        "referenced bytes removed"
    );
    assert_eq!(app.download(kept_id).await, kept);
    local.stop().await;
}

/// The janitor's sparse index holds what it will act on and nothing else: an active upload
/// (a completed one leaves), a verified file's hot copy, content that lost a reference; the
/// sweep takes content that is still referenced back out of it.
#[tokio::test]
async fn the_janitors_index_holds_only_what_it_will_act_on() {
    let (_, ddb) = aws().await;
    let due = |pk: String, sk: String| {
        let ddb = ddb.clone();
        async move {
            let item = ddb
                .get_item()
                .table_name(&system().table)
                .key("PK", AttributeValue::S(pk))
                .key("SK", AttributeValue::S(sk))
                .consistent_read(true)
                .send()
                .await
                .unwrap()
                .item
                .expect("the item exists");
            item.get("due_pk").map(|pk| {
                (
                    pk.as_s().unwrap().clone(),
                    item["due_at"].as_s().unwrap().clone(),
                )
            })
        }
    };
    let owner = TestApp::new().await;
    let user = |app: &TestApp| format!("USER#{}", app.user_id);
    let data = test_bytes(70_000, 49);
    let active = owner.create_upload("active.bin", 10, None).await;
    let active_id = &active.upload_id;
    let (pk, at) = due(user(&owner), format!("UPLOAD#{active_id}"))
        .await
        .unwrap();
    assert!(pk.starts_with("DUE#UPLOAD#"), "{pk}");
    assert_eq!(at, active.expires_at);

    let upload = owner.create_upload("kept.bin", data.len(), None).await;
    owner.send_parts(&upload, &data, &[1]).await;
    let upload_id = &upload.upload_id;
    let file = owner.complete(upload_id).await;
    let file_id = &file.file_id;
    assert_eq!(due(user(&owner), format!("UPLOAD#{upload_id}")).await, None);
    owner.verified(file_id).await;
    let (pk, _) = due(user(&owner), format!("FILE#{file_id}")).await.unwrap();
    assert!(pk.starts_with("DUE#HOT#"), "{pk}");

    // A second holder of the content, then the first lets go: due, but still referenced.
    let holder = TestApp::new().await;
    let second = holder.upload("again.bin", &data, None).await;
    holder.verified(&second.file_id).await;
    owner.delete_for_good(file_id).await;
    let content = format!("CONTENT#{}", sha256_hex(&data));
    let (pk, _) = due(content.clone(), "CONTENT".into()).await.unwrap();
    assert!(pk.starts_with("DUE#CONTENT#"), "{pk}");
    filestore_janitor::sweep(&app_state().await, OffsetDateTime::now_utc())
        .await
        .unwrap();
    assert_eq!(due(content, "CONTENT".into()).await, None, "settled");
    assert_eq!(holder.download(&second.file_id).await, data);
}

/// A content reference count that lost track of its files, broken here directly in the
/// table as a write that skipped its release (or its reference) would leave it, is found by
/// the janitor's reference check and set right: counted too high with no file left, the
/// content and its cold copy are collected; too high or too low with files left, it is set
/// to their number and their bytes stay. Counts that are right are left alone, and a second
/// check finds nothing.
#[tokio::test]
async fn the_reference_check_repairs_counts_that_lost_track_of_their_files() {
    // Its own system: the check runs once a day per table, whichever sweep claims it.
    let local = LocalSystem::start(Options::isolated()).await.unwrap();
    let state = &local.state;
    let cold = state.cold.as_ref().unwrap();
    let ddb = aws_sdk_dynamodb::Client::new(&local.sdk);
    let app = TestApp::new_at(&local.base_url()).await;
    let set_refs = |sha256: String, refs: u64| {
        let ddb = ddb.clone();
        async move {
            ddb.update_item()
                .table_name(&state.config.table)
                .key("PK", AttributeValue::S(keys::content_pk(&sha256)))
                .key("SK", AttributeValue::S(keys::CONTENT_SK.into()))
                .update_expression("SET refs = :refs")
                .expression_attribute_values(":refs", AttributeValue::N(refs.to_string()))
                .send()
                .await
                .unwrap();
        }
    };
    let mut stored = Vec::new();
    for seed in 0..4 {
        let data = test_bytes(50_000, 60 + seed);
        let file = app.upload(&format!("f{seed}.bin"), &data, None).await;
        app.verified(&file.file_id).await;
        stored.push((sha256_hex(&data), file.file_id, data));
    }
    let [high, low, orphaned, right] = &stored[..] else {
        unreachable!()
    };
    set_refs(high.0.clone(), 3).await;
    set_refs(low.0.clone(), 0).await;
    // Its file goes behind the counters' back, as a delete that skipped its release would.
    ddb.delete_item()
        .table_name(&state.config.table)
        .key("PK", AttributeValue::S(keys::user_pk(&app.user_id)))
        .key("SK", AttributeValue::S(keys::file_sk(&orphaned.1)))
        .send()
        .await
        .unwrap();

    // The check runs once a day, on counts that have stood still for a while: a sweep two
    // days on runs it, whatever sweep the system ran before.
    let later = OffsetDateTime::now_utc() + filestore_janitor::REFS_CHECK_EVERY * 2;
    let report = filestore_janitor::sweep(state, later).await.unwrap();
    assert_eq!(report.repaired_refs, 3, "{report:?}");
    for (sha256, _, _) in [high, low, right] {
        let content = state.repo.get_content(sha256).await.unwrap().unwrap();
        assert_eq!(content.refs, 1, "{sha256}");
    }
    assert_eq!(state.repo.get_content(&orphaned.0).await.unwrap(), None);
    let orphan_blob = keys::cold_key(&orphaned.1);
    assert_eq!(cold.object_size(&orphan_blob).await.unwrap(), None);
    for (_, file_id, data) in [high, low, right] {
        assert!(app.download(file_id).await == *data, "{file_id} differs");
    }

    let next_day = later + filestore_janitor::REFS_CHECK_EVERY;
    let report = filestore_janitor::sweep(state, next_day).await.unwrap();
    assert_eq!(report.repaired_refs, 0, "{report:?}");
    local.stop().await;
}

/// Fails every delete sent to the hot bucket (AbortMultipartUpload, DeleteObject) before it
/// leaves: S3 refusing them for the while.
#[derive(Debug)]
struct DeletesFail;

impl Intercept for DeletesFail {
    fn name(&self) -> &'static str {
        "DeletesFail"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        match context.request().method() {
            "DELETE" => Err("S3 is refusing deletes".into()),
            _ => Ok(()),
        }
    }
}

/// An abort whose S3 calls fail after its record went (S3 refusing deletes, through an API
/// of its own) is still an abort: `204`, the upload a 404 from then on (a retried abort
/// too), its reservation released. What S3 kept, the multipart upload with its part, is
/// the janitor's once the grace for the request's own calls has passed, and then gone.
#[tokio::test]
async fn an_abort_that_s3_fails_is_finished_by_the_janitor() {
    let app = TestApp::new().await;
    let data = test_bytes(6 * MIB, 52);
    let upload = app
        .create_upload("held.bin", data.len(), Some(5 * MIB))
        .await;
    app.send_parts(&upload, &data, &[1]).await;
    let mut state = app_state().await;
    state.storage = state.storage.with_interceptor(DeletesFail);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let faulty = TestApp {
        base: format!("http://{}", listener.local_addr().unwrap()),
        ..app.with_token(app.token.as_deref())
    };
    let server = tokio::spawn(gateway::serve(
        listener,
        Functions::shared(Arc::new(state)),
        Arc::new(Default::default()),
    ));

    let abort = path(RouteKey::AbortUpload, &upload.upload_id);
    faulty.delete(&abort).await.expect(204);
    server.abort();
    assert_eq!(
        open_multipart_uploads(&app.user_id).await,
        1,
        "S3 kept the upload"
    );
    app.delete(&abort).await.expect_error(404, "not_found");
    app.get(&path(RouteKey::UploadStatus, &upload.upload_id))
        .await
        .expect_error(404, "not_found");
    assert_eq!(claims(&app.user_id).await, (0, 0));

    let now = OffsetDateTime::now_utc();
    filestore_janitor::sweep(&app_state().await, now)
        .await
        .unwrap();
    assert_eq!(open_multipart_uploads(&app.user_id).await, 1, "not due yet");
    let due = now + filestore_shared::repo::ABORT_GRACE + Duration::from_secs(1);
    let report = filestore_janitor::sweep(&app_state().await, due)
        .await
        .unwrap();
    assert!(report.finished_aborts >= 1, "{report:?}");
    assert_eq!(open_multipart_uploads(&app.user_id).await, 0);
    let (_, ddb) = aws().await;
    let pending = ddb
        .get_item()
        .table_name(&system().table)
        .key("PK", AttributeValue::S(keys::user_pk(&app.user_id)))
        .key("SK", AttributeValue::S(keys::abort_sk(&upload.upload_id)))
        .consistent_read(true)
        .send()
        .await
        .unwrap();
    assert!(pending.item.is_none(), "forgotten once done");
}

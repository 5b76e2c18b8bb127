//! Quotas: an upload that would pass the user's quota is refused with 413 `quota_exceeded`
//! when it is created, counting the declared sizes of the user's open uploads, which stay
//! reserved until they complete, are aborted or expire; at most `FILESTORE_MAX_OPEN_UPLOADS`
//! uploads are open at once (429 `too_many_uploads`); concurrent creates never pass either
//! limit, and `used_bytes` stays exact under concurrent completes and deletes.

use filestore_contract::RouteKey::{
    AbortUpload, CompleteUpload, DeleteFile, PurgeTrash, UploadStatus,
};
use filestore_contract::api::{CreateUploadResponse, FileList};
use futures::future::join_all;
use serde_json::json;

use crate::helpers::{
    TestApp, aws, claims, expire_upload, open_multipart_uploads, path, set_quota, system,
    test_bytes,
};
use filestore_contract::domain::UploadId;

/// Completes an upload and returns only the status, for races.
async fn complete_status(app: &TestApp, upload_id: &UploadId) -> u16 {
    app.post(&path(CompleteUpload, upload_id), json!({}))
        .await
        .status
        .as_u16()
}

async fn usage(app: &TestApp) -> (u64, u64) {
    let me = app.me().await;
    (me.used_bytes, me.file_count)
}

/// Creates an upload of `data` and sends all its bytes, ready to complete.
async fn ready(app: &TestApp, name: &str, data: &[u8]) -> UploadId {
    let upload = app.create_upload(name, data.len(), None).await;
    app.send_parts(&upload, data, &[1]).await;
    upload.upload_id
}

/// The quota shown is the user's; a declared size past it is refused at create.
#[tokio::test]
async fn an_upload_past_the_quota_is_refused_at_create() {
    let app = TestApp::new().await;
    set_quota(&app.user_id, 1000).await;
    assert_eq!(app.me().await.quota_bytes, 1000);
    app.post("/v1/uploads", json!({"name": "a.bin", "size": 1001}))
        .await
        .expect_error(413, "quota_exceeded");
    app.upload("fits.bin", &test_bytes(600, 1), None).await;
    app.post("/v1/uploads", json!({"name": "b.bin", "size": 401}))
        .await
        .expect_error(413, "quota_exceeded");
    app.post("/v1/uploads", json!({"name": "c.bin", "size": 400}))
        .await
        .expect(201);
    assert_eq!(usage(&app).await, (600, 1));
}

/// An open upload holds its declared size against the quota from create on: a second one
/// that fits alone but not beside it is refused, and fits once the first is aborted. The
/// reservation becomes used bytes at complete, never counted twice.
#[tokio::test]
async fn open_uploads_reserve_their_size_until_aborted_or_completed() {
    let app = TestApp::new().await;
    set_quota(&app.user_id, 2000).await;
    let first = app.create_upload("a.bin", 1500, None).await;
    assert_eq!(claims(&app.user_id).await, (1500, 1));
    app.post("/v1/uploads", json!({"name": "b.bin", "size": 1000}))
        .await
        .expect_error(413, "quota_exceeded");
    app.delete(&path(AbortUpload, &first.upload_id))
        .await
        .expect(204);
    assert_eq!(claims(&app.user_id).await, (0, 0));
    let second = test_bytes(1000, 3);
    let b = ready(&app, "b.bin", &second).await;
    app.post("/v1/uploads", json!({"name": "c.bin", "size": 1001}))
        .await
        .expect_error(413, "quota_exceeded");
    let file_b = app.complete(&b).await;
    assert_eq!(usage(&app).await, (1000, 1));
    assert_eq!(claims(&app.user_id).await, (1000, 0));
    assert_eq!(app.download(&file_b.file_id).await, second);
    // A file completed up to the quota leaves exactly the rest.
    ready(&app, "c.bin", &test_bytes(1000, 4)).await;
    app.post("/v1/uploads", json!({"name": "d.bin", "size": 1}))
        .await
        .expect_error(413, "quota_exceeded");
    // In the trash the file still counts; purged, it makes room.
    app.delete(&path(DeleteFile, &file_b.file_id))
        .await
        .expect(204);
    assert_eq!(claims(&app.user_id).await, (2000, 1));
    app.delete(&path(PurgeTrash, &file_b.file_id))
        .await
        .expect(204);
    assert_eq!(claims(&app.user_id).await, (1000, 1));
}

/// An expired upload's reservation goes back to its owner as soon as a create needs it, without
/// waiting for the janitor: the expired upload is ended (404 from then on) and the new one fits.
#[tokio::test]
async fn an_expired_upload_gives_its_reservation_to_the_next_create() {
    let app = TestApp::new().await;
    set_quota(&app.user_id, 1000).await;
    let old = app.create_upload("old.bin", 1000, None).await;
    app.post("/v1/uploads", json!({"name": "new.bin", "size": 1}))
        .await
        .expect_error(413, "quota_exceeded");
    expire_upload(&app.user_id, &old.upload_id).await;
    app.create_upload("new.bin", 1000, None).await;
    app.get(&path(UploadStatus, &old.upload_id))
        .await
        .expect_error(404, "not_found");
    assert_eq!(claims(&app.user_id).await, (1000, 1));
    assert_eq!(open_multipart_uploads(&app.user_id).await, 1);
}

/// An open upload's record has no `ttl` (DynamoDB's sweep would end it without releasing its
/// reservation); the completed record gets one, at its expiry.
#[tokio::test]
async fn only_a_completed_upload_record_expires_through_ttl() {
    let app = TestApp::new().await;
    let data = test_bytes(10, 5);
    let id = ready(&app, "t.bin", &data).await;
    let ttl = || async {
        let (_, ddb) = aws().await;
        ddb.get_item()
            .table_name(&system().table)
            .key(
                "PK",
                aws_sdk_dynamodb::types::AttributeValue::S(format!("USER#{}", app.user_id)),
            )
            .key(
                "SK",
                aws_sdk_dynamodb::types::AttributeValue::S(format!("UPLOAD#{id}")),
            )
            .send()
            .await
            .unwrap()
            .item
            .unwrap()
            .get("ttl")
            .cloned()
    };
    assert_eq!(ttl().await, None);
    app.complete(&id).await;
    let expires = time::OffsetDateTime::parse(
        &app.upload_status(&id).await.expires_at,
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert_eq!(
        ttl().await,
        Some(aws_sdk_dynamodb::types::AttributeValue::N(
            expires.unix_timestamp().to_string()
        ))
    );
}

/// Concurrent creates race for the last of the quota, in many trials: exactly as many are
/// created as fit, the others are 413 and leave no multipart upload behind.
#[tokio::test]
async fn concurrent_creates_never_pass_the_quota() {
    for trial in 0..5u64 {
        let app = TestApp::new().await;
        set_quota(&app.user_id, 2500).await;
        let creates = (0..50).map(|i| {
            let app = &app;
            async move {
                app.post(
                    "/v1/uploads",
                    json!({"name": format!("n-{i}.bin"), "size": 100}),
                )
                .await
                .status
                .as_u16()
            }
        });
        let statuses: Vec<u16> = join_all(creates).await;
        let count = |s: u16| statuses.iter().filter(|x| **x == s).count();
        assert_eq!(
            (count(201), count(413)),
            (25, 25),
            "trial {trial}: {statuses:?}"
        );
        assert_eq!(claims(&app.user_id).await, (2500, 25), "trial {trial}");
        assert_eq!(open_multipart_uploads(&app.user_id).await, 25);
    }
}

/// Concurrent creates race for the last open-upload places, in many trials: exactly the
/// limit (`FILESTORE_MAX_OPEN_UPLOADS`, 100) are created, the others are 429
/// `too_many_uploads` with a `Retry-After`; aborting one makes room for one more.
#[tokio::test]
async fn concurrent_creates_never_pass_the_open_upload_limit() {
    let max = 100;
    for trial in 0..3 {
        let app = TestApp::new().await;
        let creates = (0..max + 20).map(|i| {
            let app = &app;
            async move {
                app.post(
                    "/v1/uploads",
                    json!({"name": format!("o-{i}.bin"), "size": 1}),
                )
                .await
            }
        });
        let answers = join_all(creates).await;
        let created: Vec<UploadId> = answers
            .iter()
            .filter(|r| r.status == 201)
            .map(|r| r.expect_body::<CreateUploadResponse>(201).upload_id)
            .collect();
        let refused: Vec<_> = answers.iter().filter(|r| r.status != 201).collect();
        assert_eq!(created.len(), max, "trial {trial}");
        for r in &refused {
            r.expect_error(429, "too_many_uploads");
            let retry: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
            assert!(retry >= 1, "{retry}");
        }
        assert_eq!(claims(&app.user_id).await, (max as u64, max as u64));
        assert_eq!(open_multipart_uploads(&app.user_id).await, max);
        app.delete(&path(AbortUpload, &created[0]))
            .await
            .expect(204);
        app.create_upload("one-more.bin", 1, None).await;
        app.post("/v1/uploads", json!({"name": "too-many.bin", "size": 1}))
            .await
            .expect_error(429, "too_many_uploads");
    }
}

/// 50 concurrent completes and 25 concurrent deletes (to the trash, then purged) of one user:
/// the counters end exactly at the sum of what remains.
#[tokio::test]
async fn used_bytes_is_exact_under_concurrent_completes_and_deletes() {
    let app = TestApp::new().await;
    let mut old = Vec::new();
    for i in 0..25u64 {
        let file = app
            .upload(
                &format!("old-{i}.bin"),
                &test_bytes(100 + i as usize, i),
                None,
            )
            .await;
        old.push(file.file_id);
    }
    let mut uploads = Vec::new();
    let mut expected = 0u64;
    for i in 0..50u64 {
        let size = 1000 + i as usize * 7;
        expected += size as u64;
        uploads.push(ready(&app, &format!("new-{i}.bin"), &test_bytes(size, 100 + i)).await);
    }
    let completes = uploads.iter().map(|id| complete_status(&app, id));
    let deletes = old.iter().map(|id| {
        let app = &app;
        async move {
            let trashed = app.delete(&path(DeleteFile, id)).await.status.as_u16();
            let purged = app.delete(&path(PurgeTrash, id)).await.status.as_u16();
            (trashed, purged)
        }
    });
    let (completed, deleted) = tokio::join!(join_all(completes), join_all(deletes));
    assert!(completed.iter().all(|s| *s == 201), "{completed:?}");
    assert!(deleted.iter().all(|s| *s == (204, 204)), "{deleted:?}");
    assert_eq!(usage(&app).await, (expected, 50));
    let listed: FileList = app.get("/v1/files?limit=1000").await.expect_body(200);
    let sum: u64 = listed.files.iter().map(|f| f.size).sum();
    assert_eq!(sum, expected);
}

/// Uploads created up to the quota all complete, concurrently: their bytes were reserved at
/// create and move to `used_bytes`, never counted twice.
#[tokio::test]
async fn concurrent_completes_of_reserved_uploads_fill_the_quota_exactly() {
    let app = TestApp::new().await;
    set_quota(&app.user_id, 2500).await;
    let mut uploads = Vec::new();
    for i in 0..25u64 {
        uploads.push(ready(&app, &format!("n-{i}.bin"), &test_bytes(100, 200 + i)).await);
    }
    app.post("/v1/uploads", json!({"name": "more.bin", "size": 1}))
        .await
        .expect_error(413, "quota_exceeded");
    let statuses: Vec<u16> = join_all(uploads.iter().map(|id| complete_status(&app, id))).await;
    assert!(statuses.iter().all(|s| *s == 201), "{statuses:?}");
    assert_eq!(usage(&app).await, (2500, 25));
    assert_eq!(claims(&app.user_id).await, (2500, 0));
    let (s3, _) = aws().await;
    let objects = s3
        .list_objects_v2()
        .bucket(&system().hot_bucket)
        .prefix(format!("files/{}/", app.user_id))
        .send()
        .await
        .unwrap();
    assert_eq!(objects.contents().len(), 25);
}

//! Quotas: an upload that would pass the user's quota is refused with 413 `quota_exceeded`
//! when it is created (declared size) and when it completes (stored size), and `used_bytes`
//! stays exact under concurrent completes and deletes.

use filestore_contract::RouteKey::{CompleteUpload, DeleteFile};
use filestore_contract::api::FileList;
use filestore_contract::domain::UploadState;
use futures::future::join_all;
use serde_json::json;

use crate::helpers::{TestApp, aws, path, set_quota, system, test_bytes};
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

/// Two uploads that each fit but not together: the second complete is refused, its upload
/// stays active with its bytes, and completes once space is freed.
#[tokio::test]
async fn a_complete_past_the_quota_is_refused_and_can_be_retried() {
    let app = TestApp::new().await;
    set_quota(&app.user_id, 2000).await;
    let first = test_bytes(1500, 2);
    let second = test_bytes(1000, 3);
    let a = ready(&app, "a.bin", &first).await;
    let b = ready(&app, "b.bin", &second).await;
    let file_a = app.complete(&a).await.file_id;
    app.post(&path(CompleteUpload, &b), json!({}))
        .await
        .expect_error(413, "quota_exceeded");
    let status = app.upload_status(&b).await;
    assert_eq!(status.state, UploadState::Active);
    assert_eq!(status.parts_done.map(|p| p.len()), Some(1));
    assert_eq!(usage(&app).await, (1500, 1));

    app.delete(&path(DeleteFile, &file_a)).await.expect(204);
    let file_b = app.complete(&b).await;
    assert_eq!(usage(&app).await, (1000, 1));
    assert_eq!(app.download(&file_b.file_id).await, second);
}

/// 50 concurrent completes and 25 concurrent deletes of one user: the counters end exactly at
/// the sum of what remains.
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
        async move { app.delete(&path(DeleteFile, id)).await.status.as_u16() }
    });
    let (completed, deleted) = tokio::join!(join_all(completes), join_all(deletes));
    assert!(completed.iter().all(|s| *s == 201), "{completed:?}");
    assert!(deleted.iter().all(|s| *s == 204), "{deleted:?}");
    assert_eq!(usage(&app).await, (expected, 50));
    let listed: FileList = app.get("/v1/files?limit=1000").await.expect_body(200);
    let sum: u64 = listed.files.iter().map(|f| f.size).sum();
    assert_eq!(sum, expected);
}

/// Concurrent completes race for the last of the quota: exactly as many win as fit.
#[tokio::test]
async fn concurrent_completes_never_pass_the_quota() {
    let app = TestApp::new().await;
    set_quota(&app.user_id, 2500).await;
    let mut uploads = Vec::new();
    for i in 0..50u64 {
        uploads.push(ready(&app, &format!("n-{i}.bin"), &test_bytes(100, 200 + i)).await);
    }
    let statuses: Vec<u16> = join_all(uploads.iter().map(|id| complete_status(&app, id))).await;
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        25,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 413).count(),
        25,
        "{statuses:?}"
    );
    assert_eq!(usage(&app).await, (2500, 25));
    // No object is left without a File: refused completes either never joined their parts
    // (the upload stays active) or dropped the joined object with its upload.
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

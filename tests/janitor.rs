//! The janitor: abandoned uploads are aborted in S3 and forgotten; content nobody references
//! any more is removed from the table and the cold store, and referenced content is kept.

use aws_sdk_dynamodb::types::AttributeValue;
use sha2::Digest;

use crate::helpers::{
    MIB, TestApp, app_state, aws, cold_s3, expire_upload, open_multipart_uploads, system,
    test_bytes,
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
/// a live one is left alone.
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

    let stale_id = stale["upload_id"].as_str().unwrap();
    expire_upload(&app.user_id, stale_id).await;

    let report = filestore_janitor::sweep(&app_state().await, time::OffsetDateTime::now_utc())
        .await
        .unwrap();
    assert!(report.aborted_uploads >= 1, "{report:?}");
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
    let live_id = live["upload_id"].as_str().unwrap();
    app.get(&format!("/v1/uploads/{live_id}")).await.expect(200);
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
    let (gone_id, kept_id) = (
        gone_file["file_id"].as_str().unwrap(),
        kept_file["file_id"].as_str().unwrap(),
    );
    app.verified(gone_id).await;
    app.verified(kept_id).await;
    app.delete(&format!("/v1/files/{gone_id}"))
        .await
        .expect(204);
    assert!(cold_has(&format!("blobs/{gone_id}")).await);

    let report = filestore_janitor::sweep(&app_state().await, time::OffsetDateTime::now_utc())
        .await
        .unwrap();
    assert!(report.collected_contents >= 1, "{report:?}");
    assert!(
        !cold_has(&format!("blobs/{gone_id}")).await,
        "cold bytes left"
    );
    assert!(
        cold_has(&format!("blobs/{kept_id}")).await,
        "referenced bytes removed"
    );
    let (_, ddb) = aws().await;
    let digest = hex::encode(sha2::Sha256::digest(&gone));
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

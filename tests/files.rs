//! Files: cursor pagination, get, download URLs (name, redirect), rename, delete.

use filestore_contract::RouteKey::{DeleteFile, DownloadFile, GetFile, PurgeTrash, RenameFile};
use filestore_contract::api::{DownloadResponse, FileList, FileView};
use filestore_shared::keys;
use serde_json::json;

use crate::helpers::{TestApp, assert_same_file, aws, path, sha256_hex, system, test_bytes};

/// Listing walks every file exactly once, oldest first, in pages of `limit`, and the last
/// page has no cursor.
#[tokio::test]
async fn listing_paginates_with_an_opaque_cursor() {
    let app = TestApp::new().await;
    let mut uploaded = Vec::new();
    for i in 0..5u8 {
        let file = app.upload(&format!("f{i}.txt"), &[i], None).await;
        uploaded.push(file.file_id);
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let page_path = match &cursor {
            Some(c) => format!("/v1/files?limit=2&cursor={c}"),
            None => "/v1/files?limit=2".to_string(),
        };
        let page: FileList = app.get(&page_path).await.expect_body(200);
        pages += 1;
        assert!(page.files.len() <= 2);
        seen.extend(page.files.into_iter().map(|f| f.file_id));
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, uploaded);
    let all = app.list_files().await;
    assert_eq!(all.files.len(), 5);
    assert!(all.next_cursor.is_none());
}

/// `GET /v1/files/{id}` answers the same File that complete returned, or, if the transfer
/// verified it in between (deployed, it can be that fast), the same File verified.
#[tokio::test]
async fn get_returns_the_file() {
    let app = TestApp::new().await;
    let file = app.upload("one.txt", b"hello", None).await;
    // Raw, to see every field of the wire shape is there.
    let got = app.get(&path(GetFile, &file.file_id)).await.expect(200);
    let view = serde_json::from_value::<FileView>(got.clone()).unwrap();
    assert_same_file(&view, &file, b"hello");
    // And once verified, exactly the verified form the check accepts.
    assert_same_file(&app.verified(&file.file_id).await, &file, b"hello");
    for field in [
        "file_id",
        "name",
        "size",
        "sha256",
        "content_type",
        "created_at",
        "tier",
        "verified",
    ] {
        assert!(got.get(field).is_some(), "missing {field}: {got}");
    }
}

/// Download URLs ask S3 to save under the file's (UTF-8) name, and `?redirect=true`
/// answers 302 to a working URL.
#[tokio::test]
async fn download_names_the_file_and_can_redirect() {
    let app = TestApp::new().await;
    let file = app.upload("résumé 2026.pdf", b"%PDF-1.7", None).await;
    let file_id = &file.file_id;
    let body: DownloadResponse = app.get(&path(DownloadFile, file_id)).await.expect_body(200);
    let url = &body.url;
    assert!(!body.expires_at.is_empty());
    let disposition = url
        .split(['?', '&'])
        .find_map(|kv| kv.strip_prefix("response-content-disposition="))
        .expect("content disposition in the signed URL");
    let decoded = percent_decode(disposition);
    assert!(decoded.starts_with("attachment;"), "{decoded}");
    assert!(
        decoded.contains("filename*=UTF-8''r%C3%A9sum%C3%A9%202026.pdf"),
        "{decoded}"
    );

    let resp = app
        .get(&format!("{}?redirect=true", path(DownloadFile, file_id)))
        .await;
    assert_eq!(resp.status, 302);
    let location = resp.headers["location"].to_str().unwrap();
    let bytes = app
        .http
        .get(location)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(bytes.as_ref(), b"%PDF-1.7");
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

/// Rename changes the name everywhere and nothing else.
#[tokio::test]
async fn rename_changes_only_the_name() {
    let app = TestApp::new().await;
    let file = app.upload("old.txt", b"abc", None).await;
    let file_id = &file.file_id;
    let renamed: FileView = app
        .patch(&path(RenameFile, file_id), json!({"name": "new name.txt"}))
        .await
        .expect_body(200);
    assert_eq!(renamed.name, "new name.txt");
    // The transfer may verify the file meanwhile: the renamed file, verified or not.
    let expected = FileView {
        name: "new name.txt".into(),
        ..file.clone()
    };
    assert_same_file(&renamed, &expected, b"abc");
    assert_same_file(&app.file(file_id).await, &expected, b"abc");
    assert_eq!(app.download(file_id).await, b"abc");
}

/// Delete moves the file to the trash: a 404 on every file route and out of the list, while
/// its bytes, usage and object stay (as `trash_bytes` too); a second delete is a 404. Purging
/// it then frees the usage and removes the object.
#[tokio::test]
async fn delete_trashes_and_purge_removes_record_bytes_and_usage() {
    let app = TestApp::new().await;
    let keep = app.upload("keep.txt", b"keep", None).await;
    let file = app.upload("gone.txt", b"gone!", None).await;
    let file_id = &file.file_id;
    assert_eq!(app.me().await.used_bytes, 9);

    app.delete(&path(DeleteFile, file_id)).await.expect(204);
    app.get(&path(GetFile, file_id))
        .await
        .expect_error(404, "not_found");
    app.get(&path(DownloadFile, file_id))
        .await
        .expect_error(404, "not_found");
    app.patch(&path(RenameFile, file_id), json!({"name": "x.txt"}))
        .await
        .expect_error(404, "not_found");
    app.delete(&path(DeleteFile, file_id))
        .await
        .expect_error(404, "not_found");
    let files = app.list_files().await;
    assert_eq!(files.files.len(), 1);
    assert_eq!(files.files[0].file_id, keep.file_id);
    let me = app.me().await;
    assert_eq!((me.used_bytes, me.file_count, me.trash_bytes), (9, 2, 5));
    let (s3, _) = aws().await;
    let head = || {
        s3.head_object()
            .bucket(&system().hot_bucket)
            .key(format!("files/{}/{file_id}", app.user_id))
            .send()
    };
    assert!(head().await.is_ok(), "a trashed file keeps its object");

    app.delete(&path(PurgeTrash, file_id)).await.expect(204);
    let me = app.me().await;
    assert_eq!((me.used_bytes, me.file_count, me.trash_bytes), (4, 1, 0));
    assert!(head().await.is_err(), "object still stored");
    app.delete(&path(PurgeTrash, file_id))
        .await
        .expect_error(404, "not_found");
    assert_eq!(app.download(&keep.file_id).await, b"keep");
}

/// A verified file whose content record is gone (collected while a count that lost track of
/// it said nothing held it) can still be deleted and purged: 204, its usage freed, rather
/// than a purge refused forever.
#[tokio::test]
async fn a_verified_file_whose_content_is_gone_can_still_be_deleted() {
    use aws_sdk_dynamodb::types::AttributeValue;
    let app = TestApp::new().await;
    let data = test_bytes(3000, 9101);
    let file = app.upload("lost.bin", &data, None).await;
    app.verified(&file.file_id).await;
    let (_, ddb) = aws().await;
    ddb.delete_item()
        .table_name(&system().table)
        .key(
            "PK",
            AttributeValue::S(keys::content_pk(&sha256_hex(&data))),
        )
        .key("SK", AttributeValue::S(keys::CONTENT_SK.into()))
        .send()
        .await
        .unwrap();

    app.delete_for_good(&file.file_id).await;
    app.get(&path(GetFile, &file.file_id))
        .await
        .expect_error(404, "not_found");
    let me = app.me().await;
    assert_eq!((me.used_bytes, me.file_count, me.trash_bytes), (0, 0, 0));
}

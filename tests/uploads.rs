//! Uploads: multipart through presigned URLs, resume from S3's own part list, complete
//! (missing parts, wrong sizes, retries, races), abort and expiry, and the listing of
//! unfinished uploads in pages.

use filestore_contract::RouteKey::{AbortUpload, CompleteUpload, PresignParts, UploadStatus};
use filestore_contract::api::{
    CreateUploadResponse, FileEnvelope, PresignPartsResponse, UploadList,
};
use filestore_contract::domain::Tier;
use filestore_contract::domain::UploadState;
use serde_json::json;

use crate::helpers::{
    MIB, TestApp, expire_upload, open_multipart_uploads, path, sha256_hex, test_bytes,
};

/// A 12 MiB file in three 5 MiB-planned parts, sent out of order, comes back byte for byte,
/// whole and by Range, and counts once towards the owner's usage.
#[tokio::test]
async fn multipart_upload_round_trips_bytes_and_ranges() {
    let app = TestApp::new().await;
    let data = test_bytes(12 * MIB + 3, 1);
    let upload = app
        .create_upload("twelve.bin", data.len(), Some(5 * MIB))
        .await;
    assert_eq!(upload.part_size, 5 * MIB as u64);
    assert_eq!(upload.part_count, 3);
    app.send_parts(&upload, &data, &[3, 1, 2]).await;
    let file = app.complete(&upload.upload_id).await;
    assert_eq!(file.name, "twelve.bin");
    assert_eq!(file.size, data.len() as u64);
    assert_eq!(file.tier, Tier::Hot);
    assert!(!file.verified);
    assert_eq!(file.content_type, "application/octet-stream");

    let file_id = &file.file_id;
    assert!(
        app.download(file_id).await == data,
        "downloaded bytes differ"
    );

    let url = app.download_url(file_id).await;
    let start = 5 * MIB - 10;
    let ranged = app
        .http
        .get(&url)
        .header("range", format!("bytes={start}-{}", start + 19))
        .send()
        .await
        .unwrap();
    assert_eq!(ranged.status(), 206);
    assert_eq!(
        ranged.bytes().await.unwrap().as_ref(),
        &data[start..start + 20]
    );

    let me = app.me().await;
    assert_eq!(me.used_bytes, data.len() as u64);
    assert_eq!(me.file_count, 1);
}

/// A ranged GET of the download URL answers exactly the bytes of its range, as S3 resolves
/// it (open end, suffix, an end past the object, across part boundaries, the whole object),
/// with `Content-Range`, `Content-Length` and the file's name still on it; a range that
/// starts past the end is 416. Parallel downloads read ranges only, and the emulator reads
/// only the range from the stored object, so what it answers must be the range and no
/// other bytes.
#[tokio::test]
async fn ranged_gets_answer_exactly_the_bytes_of_the_range() {
    let app = TestApp::new().await;
    let data = test_bytes(11 * MIB + 5, 7);
    let size = data.len();
    let file = app.upload("ranges.bin", &data, Some(5 * MIB)).await;
    let url = app.download_url(&file.file_id).await;
    let boundary = 5 * MIB;
    // (Range header, first byte, last byte) of the answer.
    let cases = [
        ("bytes=0-0".to_string(), 0, 0),
        (
            format!("bytes={}-{}", boundary - 3, boundary + 2),
            boundary - 3,
            boundary + 2,
        ),
        (
            format!("bytes={boundary}-{}", 2 * boundary - 1),
            boundary,
            2 * boundary - 1,
        ),
        (format!("bytes={}-", size - 10), size - 10, size - 1),
        ("bytes=-7".to_string(), size - 7, size - 1),
        (format!("bytes=-{}", size + 100), 0, size - 1),
        (
            format!("bytes={}-{}", size - 4, size + 1000),
            size - 4,
            size - 1,
        ),
        (
            format!("bytes={}-{}", size - 1, size - 1),
            size - 1,
            size - 1,
        ),
        (format!("bytes=0-{}", size - 1), 0, size - 1),
        (format!("bytes=3-{}", 2 * MIB + 11), 3, 2 * MIB + 11),
    ];
    for (range, first, last) in cases {
        let resp = app
            .http
            .get(&url)
            .header("range", &range)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 206, "{range}");
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .map(|v| v.to_str().unwrap().to_string())
        };
        assert_eq!(
            header("content-range").as_deref(),
            Some(format!("bytes {first}-{last}/{size}").as_str()),
            "{range}"
        );
        assert_eq!(
            header("content-length"),
            Some((last - first + 1).to_string()),
            "{range}"
        );
        assert!(
            header("content-disposition").is_some_and(|v| v.contains("ranges.bin")),
            "{range}: {:?}",
            header("content-disposition")
        );
        let body = resp.bytes().await.unwrap();
        assert!(body[..] == data[first..=last], "{range}: other bytes");
    }
    let past_end = app
        .http
        .get(&url)
        .header("range", format!("bytes={size}-"))
        .send()
        .await
        .unwrap();
    assert_eq!(past_end.status(), 416);
}

/// The default plan is 8 MiB parts; a zero-byte file is one empty part and a one-byte file
/// one tiny part, and both round-trip.
#[tokio::test]
async fn empty_and_one_byte_files_upload() {
    let app = TestApp::new().await;
    let plan = app.create_upload("big.bin", 20 * MIB, None).await;
    assert_eq!(plan.part_size, 8 * MIB as u64);
    assert_eq!(plan.part_count, 3);

    for data in [Vec::new(), vec![42u8]] {
        let file = app.upload("small.bin", &data, None).await;
        assert_eq!(file.size, data.len() as u64);
        assert_eq!(app.download(&file.file_id).await, data);
    }
    assert_eq!(app.me().await.file_count, 2);
}

/// A client that crashed mid-upload learns from the status which parts S3 already holds
/// (number, size, ETag), sends only the rest, and completes.
#[tokio::test]
async fn upload_resumes_from_the_parts_s3_holds() {
    let app = TestApp::new().await;
    let data = test_bytes(11 * MIB, 2);
    let upload = app
        .create_upload("resume.bin", data.len(), Some(5 * MIB))
        .await;
    let upload_id = &upload.upload_id;
    app.send_parts(&upload, &data, &[1, 3]).await;

    let status = app.upload_status(upload_id).await;
    assert_eq!(status.state, UploadState::Active);
    assert_eq!(status.name, "resume.bin");
    assert_eq!(status.size, data.len() as u64);
    assert_eq!(status.part_count, 3);
    let done = status
        .parts_done
        .expect("parts_done on the single-upload view");
    let numbers: Vec<u32> = done.iter().map(|p| p.part_number).collect();
    assert_eq!(numbers, [1, 3]);
    assert_eq!(done[0].size, 5 * MIB as u64);
    assert_eq!(done[1].size, MIB as u64);
    assert!(!done[0].etag.is_empty());

    // Raw, to see the list view leaves `parts_done` out.
    let listed = app.get("/v1/uploads").await.expect(200);
    let mine = listed["uploads"].as_array().unwrap();
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0]["upload_id"], upload_id.as_str());
    assert!(mine[0].get("parts_done").is_none());

    app.send_parts(&upload, &data, &[2]).await;
    let file = app.complete(upload_id).await;
    assert_eq!(app.download(&file.file_id).await, data);

    let status = app.upload_status(upload_id).await;
    assert_eq!(status.state, UploadState::Completed);
    assert_eq!(status.file_id.as_ref(), Some(&file.file_id));
    assert!(app.list_uploads().await.uploads.is_empty());
}

/// Completing before every part is stored is a 409 naming the missing parts, and records
/// nothing; the upload can still be finished afterwards.
#[tokio::test]
async fn complete_with_missing_parts_is_409_and_records_nothing() {
    let app = TestApp::new().await;
    let data = test_bytes(11 * MIB, 3);
    let upload = app
        .create_upload("gap.bin", data.len(), Some(5 * MIB))
        .await;
    let upload_id = &upload.upload_id;
    app.send_parts(&upload, &data, &[2]).await;
    let resp = app.post(&path(CompleteUpload, upload_id), json!({})).await;
    resp.expect_error(409, "parts_missing");
    assert!(
        resp.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("1, 3")
    );

    assert!(app.list_files().await.files.is_empty());
    assert_eq!(app.me().await.used_bytes, 0);

    app.send_parts(&upload, &data, &[1, 3]).await;
    app.complete(upload_id).await;
}

/// A part of the wrong size never reaches S3: its URL signs the planned length, so the
/// store refuses the PUT (403), complete still misses that part (409), and re-sending the
/// part at its planned size lets the upload complete.
#[tokio::test]
async fn wrong_part_size_is_refused_and_can_be_resent() {
    let app = TestApp::new().await;
    let data = test_bytes(6 * MIB, 4);
    let upload = app
        .create_upload("size.bin", data.len(), Some(5 * MIB))
        .await;
    let upload_id = &upload.upload_id;
    let parts = app.presign(upload_id, &[1, 2]).await;
    assert_eq!(app.put_part(&parts[0], data[..5 * MIB].to_vec()).await, 200);
    assert_eq!(
        app.put_part(&parts[1], data[5 * MIB..].repeat(2)).await,
        403
    );
    app.post(&path(CompleteUpload, upload_id), json!({}))
        .await
        .expect_error(409, "parts_missing");
    assert_eq!(app.put_part(&parts[1], data[5 * MIB..].to_vec()).await, 200);
    let file = app.complete(upload_id).await;
    assert_eq!(app.download(&file.file_id).await, data);
}

/// The attack that found this: declare an empty file, then PUT 32 MiB to its one part URL
/// to store bytes the quota never counts. The URL signs `Content-Length: 0`, so the store
/// refuses the body (403), holds no part, and the empty file completes at 0 bytes.
#[tokio::test]
async fn oversized_part_into_an_upload_declared_empty_is_refused() {
    let app = TestApp::new().await;
    let upload = app.create_upload("empty.bin", 0, None).await;
    let parts = app.presign(&upload.upload_id, &[1]).await;
    let signed = parts[0]
        .url
        .split('&')
        .find(|kv| kv.starts_with("X-Amz-SignedHeaders="))
        .unwrap();
    assert!(signed.contains("content-length"), "{signed}");
    assert_eq!(app.put_part(&parts[0], test_bytes(32 * MIB, 9)).await, 403);
    let status = app.upload_status(&upload.upload_id).await;
    assert_eq!(status.parts_done.as_deref(), Some(&[][..]));
    assert_eq!(app.me().await.used_bytes, 0);
    assert_eq!(app.put_part(&parts[0], Vec::new()).await, 200);
    let file = app.complete(&upload.upload_id).await;
    assert_eq!(file.size, 0);
    assert_eq!(app.me().await.used_bytes, 0);
}

/// Every part must carry exactly its planned length: a full part one byte short, a last
/// part one byte long or short, are all refused; at their planned sizes the same URLs work
/// and usage counts the declared size once.
#[tokio::test]
async fn part_one_byte_off_its_planned_length_is_refused() {
    let app = TestApp::new().await;
    let data = test_bytes(6 * MIB + 7, 10);
    let upload = app
        .create_upload("exact.bin", data.len(), Some(5 * MIB))
        .await;
    let parts = app.presign(&upload.upload_id, &[1, 2]).await;
    let (first, last) = data.split_at(5 * MIB);
    assert_eq!(app.put_part(&parts[0], first[1..].to_vec()).await, 403);
    assert_eq!(app.put_part(&parts[1], [last, b"x"].concat()).await, 403);
    assert_eq!(app.put_part(&parts[1], last[1..].to_vec()).await, 403);
    assert_eq!(app.me().await.used_bytes, 0);
    assert_eq!(app.put_part(&parts[0], first.to_vec()).await, 200);
    assert_eq!(app.put_part(&parts[1], last.to_vec()).await, 200);
    let file = app.complete(&upload.upload_id).await;
    assert_eq!(app.download(&file.file_id).await, data);
    assert_eq!(app.me().await.used_bytes, data.len() as u64);
}

/// A part URL is good for its own part only: moved to another part number, or with its
/// signature changed, the store refuses it as S3 does (403).
#[tokio::test]
async fn part_url_cannot_be_redirected_or_forged() {
    let app = TestApp::new().await;
    let data = test_bytes(10 * MIB, 11);
    let upload = app
        .create_upload("moved.bin", data.len(), Some(5 * MIB))
        .await;
    let mut parts = app.presign(&upload.upload_id, &[1]).await;
    let part = &mut parts[0];
    let original = part.url.clone();
    assert!(original.contains("partNumber=1&"), "{original}");
    part.url = original.replace("partNumber=1&", "partNumber=2&");
    assert_eq!(app.put_part(part, data[5 * MIB..].to_vec()).await, 403);
    let (head, signed) = original.split_once("X-Amz-Signature=").unwrap();
    // Temporary credentials (a Lambda role's) put their session token after the signature.
    let (signature, rest) = signed.split_once('&').unwrap_or((signed, ""));
    let forged: String = signature
        .chars()
        .map(|c| if c == '0' { '1' } else { '0' })
        .collect();
    let rest = if rest.is_empty() {
        String::new()
    } else {
        format!("&{rest}")
    };
    part.url = format!("{head}X-Amz-Signature={forged}{rest}");
    assert_eq!(app.put_part(part, data[..5 * MIB].to_vec()).await, 403);
    let status = app.upload_status(&upload.upload_id).await;
    assert_eq!(status.parts_done.as_deref(), Some(&[][..]));
}

/// Completing again, or several times at once, never creates a second File or counts the
/// bytes twice.
#[tokio::test]
async fn complete_is_idempotent_under_retries_and_races() {
    let app = TestApp::new().await;
    let data = test_bytes(3000, 5);
    let upload = app.create_upload("once.bin", data.len(), None).await;
    app.send_parts(&upload, &data, &[1]).await;
    let complete = path(CompleteUpload, &upload.upload_id);
    let racers = (0..8).map(|_| app.post(&complete, json!({})));
    let ids: Vec<_> = futures::future::join_all(racers)
        .await
        .iter()
        .map(|r| r.expect_body::<FileEnvelope>(201).file.file_id)
        .collect();
    assert!(ids.iter().all(|i| *i == ids[0]), "{ids:?}");
    let again = app.complete(&upload.upload_id).await;
    assert_eq!(again.file_id, ids[0]);

    assert_eq!(app.list_files().await.files.len(), 1);
    let me = app.me().await;
    assert_eq!((me.used_bytes, me.file_count), (3000, 1));
}

/// A declared sha256 is kept as the unverified claim it is: shown, never marked verified.
#[tokio::test]
async fn declared_sha256_is_shown_but_not_verified() {
    let app = TestApp::new().await;
    let data = test_bytes(100, 6);
    let digest = sha256_hex(&data);
    let upload: CreateUploadResponse = app
        .post(
            "/v1/uploads",
            json!({"name": "h.txt", "size": 100, "sha256": digest.to_uppercase(), "content_type": "text/plain"}),
        )
        .await
        .expect_body(201);
    app.send_parts(&upload, &data, &[1]).await;
    let file = app.complete(&upload.upload_id).await;
    assert_eq!(file.sha256.as_deref(), Some(digest.as_str()));
    assert!(!file.verified);
    assert_eq!(file.content_type, "text/plain");
}

/// An aborted upload is gone: status, presign, complete and abort all answer 404, it leaves
/// the list, and S3 no longer knows the multipart upload.
#[tokio::test]
async fn abort_removes_the_upload_everywhere() {
    let app = TestApp::new().await;
    let data = test_bytes(6 * MIB, 7);
    let upload = app
        .create_upload("abort.bin", data.len(), Some(5 * MIB))
        .await;
    let upload_id = &upload.upload_id;
    app.send_parts(&upload, &data, &[1]).await;
    app.delete(&path(AbortUpload, upload_id)).await.expect(204);

    app.get(&path(UploadStatus, upload_id))
        .await
        .expect_error(404, "not_found");
    app.post(&path(PresignParts, upload_id), json!({"part_numbers": [2]}))
        .await
        .expect_error(404, "not_found");
    app.post(&path(CompleteUpload, upload_id), json!({}))
        .await
        .expect_error(404, "not_found");
    app.delete(&path(AbortUpload, upload_id))
        .await
        .expect_error(404, "not_found");
    assert!(app.list_uploads().await.uploads.is_empty());

    assert_eq!(open_multipart_uploads(&app.user_id).await, 0);
}

/// Aborting a completed upload is a conflict, not a way to lose the file.
#[tokio::test]
async fn abort_of_a_completed_upload_is_409() {
    let app = TestApp::new().await;
    let upload = app.create_upload("done.bin", 10, None).await;
    app.send_parts(&upload, &[1u8; 10], &[1]).await;
    let upload_id = &upload.upload_id;
    app.complete(upload_id).await;
    app.delete(&path(AbortUpload, upload_id))
        .await
        .expect_error(409, "upload_completed");
    app.post(&path(PresignParts, upload_id), json!({"part_numbers": [1]}))
        .await
        .expect_error(409, "upload_completed");
    assert_eq!(app.list_files().await.files.len(), 1);
}

/// Past its expiry an upload is a 404 even before DynamoDB's TTL sweeps the record.
#[tokio::test]
async fn expired_upload_is_404() {
    let app = TestApp::new().await;
    let upload = app.create_upload("late.bin", 10, None).await;
    let upload_id = &upload.upload_id;
    expire_upload(&app.user_id, upload_id).await;
    app.get(&path(UploadStatus, upload_id))
        .await
        .expect_error(404, "not_found");
    app.post(&path(PresignParts, upload_id), json!({"part_numbers": [1]}))
        .await
        .expect_error(404, "not_found");
    app.post(&path(CompleteUpload, upload_id), json!({}))
        .await
        .expect_error(404, "not_found");
    assert!(app.list_uploads().await.uploads.is_empty());
}

/// Creates an upload for part checksums (`checksum_algorithm: "SHA256"`).
async fn create_checksummed(
    app: &TestApp,
    name: &str,
    size: usize,
    part_size: usize,
) -> CreateUploadResponse {
    app.post(
        "/v1/uploads",
        json!({"name": name, "size": size, "part_size": part_size, "checksum_algorithm": "SHA256"}),
    )
    .await
    .expect_body(201)
}

/// The base64 SHA-256 S3 wants for a part.
fn part_sum(bytes: &[u8]) -> String {
    use base64::Engine;
    use sha2::Digest;
    base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(bytes))
}

/// On an upload created with `checksum_algorithm: "SHA256"`, each part's checksum is bound
/// into its signature with the algorithm S3 wants named beside it; the store refuses bytes
/// that do not match (S3's `BadDigest`) and takes the right ones; complete passes the
/// checksums on and the file comes back byte for byte.
#[tokio::test]
async fn part_checksums_are_signed_into_the_url_and_checked() {
    let app = TestApp::new().await;
    let data = test_bytes(5 * MIB + 1000, 8);
    let upload = create_checksummed(&app, "sum.bin", data.len(), 5 * MIB).await;
    let (first, second) = data.split_at(5 * MIB);
    let parts = app
        .post(
            &path(PresignParts, &upload.upload_id),
            json!({"part_numbers": [1, 2], "checksums_sha256": {"1": part_sum(first), "2": part_sum(second)}}),
        )
        .await
        .expect_body::<PresignPartsResponse>(200)
        .parts;
    for (part, bytes) in parts.iter().zip([first, second]) {
        assert_eq!(
            part.headers.get("x-amz-checksum-sha256"),
            Some(&part_sum(bytes))
        );
        assert_eq!(
            part.headers
                .get("x-amz-sdk-checksum-algorithm")
                .map(String::as_str),
            Some("SHA256")
        );
        let signed = part
            .url
            .split('&')
            .find(|kv| kv.starts_with("X-Amz-SignedHeaders="))
            .unwrap();
        assert!(signed.contains("x-amz-checksum-sha256"), "{signed}");
        assert!(signed.contains("x-amz-sdk-checksum-algorithm"), "{signed}");
        assert!(part.expires_at <= upload.expires_at);
        // Other bytes of the same length: refused by the checksum, not the length.
        let mut wrong = bytes.to_vec();
        wrong[0] ^= 1;
        assert_eq!(app.put_part(part, wrong).await, 400);
    }
    assert!(
        app.upload_status(&upload.upload_id)
            .await
            .parts_done
            .unwrap()
            .is_empty()
    );
    for (part, bytes) in parts.iter().zip([first, second]) {
        assert_eq!(app.put_part(part, bytes.to_vec()).await, 200);
    }
    let file = app.complete(&upload.upload_id).await;
    assert_eq!(app.download(&file.file_id).await, data);
}

/// An upload created for part checksums needs one for every part presigned (422
/// `checksum_required`); one created without cannot take any (422
/// `checksum_algorithm_required`, since S3 would refuse the parts); an unknown algorithm is
/// a 400.
#[tokio::test]
async fn part_checksums_go_with_the_uploads_checksum_algorithm() {
    let app = TestApp::new().await;
    let sum = part_sum(b"x");
    let with = create_checksummed(&app, "with.bin", 12 * MIB, 5 * MIB).await;
    let presign = path(PresignParts, &with.upload_id);
    app.post(&presign, json!({"part_numbers": [1]}))
        .await
        .expect_error(422, "checksum_required");
    app.post(
        &presign,
        json!({"part_numbers": [1, 2], "checksums_sha256": {"2": sum}}),
    )
    .await
    .expect_error(422, "checksum_required");
    app.post(
        &presign,
        json!({"part_numbers": [2], "checksums_sha256": {"2": sum}}),
    )
    .await
    .expect(200);

    let without = app.create_upload("without.bin", 10, None).await;
    app.post(
        &path(PresignParts, &without.upload_id),
        json!({"part_numbers": [1], "checksums_sha256": {"1": sum}}),
    )
    .await
    .expect_error(422, "checksum_algorithm_required");
    app.presign(&without.upload_id, &[1]).await;

    for bad in [json!("MD5"), json!("sha256"), json!(""), json!(1)] {
        app.post(
            "/v1/uploads",
            json!({"name": "bad.bin", "size": 1, "checksum_algorithm": bad}),
        )
        .await
        .expect_error(400, "invalid_request");
    }
}

/// `GET /v1/uploads` pages like files: `limit` items a page, oldest first, a `next_cursor`
/// until the last page; completed, aborted and expired uploads are not listed.
#[tokio::test]
async fn unfinished_uploads_are_listed_in_pages() {
    let app = TestApp::new().await;
    let mut open = Vec::new();
    for i in 0..5 {
        open.push(
            app.create_upload(&format!("p-{i}.bin"), 10, None)
                .await
                .upload_id,
        );
    }
    let done = app.create_upload("done.bin", 3, None).await;
    app.send_parts(&done, b"abc", &[1]).await;
    app.complete(&done.upload_id).await;
    let aborted = app.create_upload("aborted.bin", 3, None).await;
    app.delete(&path(AbortUpload, &aborted.upload_id))
        .await
        .expect(204);
    let expired = app.create_upload("expired.bin", 3, None).await;
    expire_upload(&app.user_id, &expired.upload_id).await;
    open.push(app.create_upload("last.bin", 10, None).await.upload_id);

    let mut listed = Vec::new();
    let mut pages = 0;
    let mut cursor: Option<String> = None;
    loop {
        let query = match &cursor {
            Some(c) => format!("/v1/uploads?limit=2&cursor={c}"),
            None => "/v1/uploads?limit=2".into(),
        };
        let page: UploadList = app.get(&query).await.expect_body(200);
        assert!(page.uploads.len() <= 2, "{page:?}");
        assert!(page.uploads.iter().all(|u| u.state == UploadState::Active));
        listed.extend(page.uploads.into_iter().map(|u| u.upload_id));
        pages += 1;
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(listed, open);
    // Three pages, or four while the expired upload (not shown) still takes a place in one:
    // other tests' janitor sweeps may end it first.
    assert!((3..=4).contains(&pages), "{pages} pages");
    let all = app.list_uploads().await;
    assert_eq!(all.uploads.len(), 6);
    assert_eq!(all.next_cursor, None);
}

//! Uploads: multipart through presigned URLs, resume from S3's own part list, complete
//! (missing parts, wrong sizes, retries, races), abort and expiry.

use serde_json::{Value, json};

use crate::helpers::{MIB, TestApp, expire_upload, open_multipart_uploads, test_bytes};

fn id(v: &Value, field: &str) -> String {
    v[field].as_str().unwrap().to_string()
}

/// A 12 MiB file in three 5 MiB-planned parts, sent out of order, comes back byte for byte,
/// whole and by Range, and counts once towards the owner's usage.
#[tokio::test]
async fn multipart_upload_round_trips_bytes_and_ranges() {
    let app = TestApp::new().await;
    let data = test_bytes(12 * MIB + 3, 1);
    let upload = app
        .create_upload("twelve.bin", data.len(), Some(5 * MIB))
        .await;
    assert_eq!(upload["part_size"], 5 * MIB);
    assert_eq!(upload["part_count"], 3);
    app.send_parts(&upload, &data, &[3, 1, 2]).await;
    let upload_id = id(&upload, "upload_id");
    let file = app
        .post(&format!("/v1/uploads/{upload_id}/complete"), json!({}))
        .await
        .expect(201)["file"]
        .clone();
    assert_eq!(file["name"], "twelve.bin");
    assert_eq!(file["size"], data.len());
    assert_eq!(file["tier"], "hot");
    assert_eq!(file["verified"], false);
    assert_eq!(file["content_type"], "application/octet-stream");

    let file_id = id(&file, "file_id");
    assert!(
        app.download(&file_id).await == data,
        "downloaded bytes differ"
    );

    let url = app
        .get(&format!("/v1/files/{file_id}/download"))
        .await
        .expect(200)["url"]
        .as_str()
        .unwrap()
        .to_string();
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

    let me = app.get("/v1/me").await.expect(200);
    assert_eq!(me["used_bytes"], data.len());
    assert_eq!(me["file_count"], 1);
}

/// The default plan is 8 MiB parts; a zero-byte file is one empty part and a one-byte file
/// one tiny part, and both round-trip.
#[tokio::test]
async fn empty_and_one_byte_files_upload() {
    let app = TestApp::new().await;
    let plan = app.create_upload("big.bin", 20 * MIB, None).await;
    assert_eq!(plan["part_size"], 8 * MIB);
    assert_eq!(plan["part_count"], 3);

    for data in [Vec::new(), vec![42u8]] {
        let file = app.upload("small.bin", &data, None).await;
        assert_eq!(file["size"], data.len());
        assert_eq!(app.download(file["file_id"].as_str().unwrap()).await, data);
    }
    assert_eq!(app.get("/v1/me").await.expect(200)["file_count"], 2);
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
    let upload_id = id(&upload, "upload_id");
    app.send_parts(&upload, &data, &[1, 3]).await;

    let status = app
        .get(&format!("/v1/uploads/{upload_id}"))
        .await
        .expect(200);
    assert_eq!(status["state"], "active");
    assert_eq!(status["name"], "resume.bin");
    assert_eq!(status["size"], data.len());
    assert_eq!(status["part_count"], 3);
    let done = status["parts_done"].as_array().unwrap();
    let numbers: Vec<u64> = done
        .iter()
        .map(|p| p["part_number"].as_u64().unwrap())
        .collect();
    assert_eq!(numbers, [1, 3]);
    assert_eq!(done[0]["size"], 5 * MIB);
    assert_eq!(done[1]["size"], MIB);
    assert!(done[0]["etag"].as_str().is_some_and(|e| !e.is_empty()));

    let listed = app.get("/v1/uploads").await.expect(200);
    let mine = listed["uploads"].as_array().unwrap();
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0]["upload_id"], upload_id.as_str());
    assert!(mine[0].get("parts_done").is_none());

    app.send_parts(&upload, &data, &[2]).await;
    let file = app
        .post(&format!("/v1/uploads/{upload_id}/complete"), json!({}))
        .await
        .expect(201)["file"]
        .clone();
    assert_eq!(app.download(file["file_id"].as_str().unwrap()).await, data);

    let status = app
        .get(&format!("/v1/uploads/{upload_id}"))
        .await
        .expect(200);
    assert_eq!(status["state"], "completed");
    assert_eq!(status["file_id"], file["file_id"]);
    assert!(
        app.get("/v1/uploads").await.expect(200)["uploads"]
            .as_array()
            .unwrap()
            .is_empty()
    );
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
    let upload_id = id(&upload, "upload_id");
    app.send_parts(&upload, &data, &[2]).await;
    let resp = app
        .post(&format!("/v1/uploads/{upload_id}/complete"), json!({}))
        .await;
    resp.expect_error(409, "parts_missing");
    assert!(
        resp.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("1, 3")
    );

    assert!(
        app.get("/v1/files").await.expect(200)["files"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert_eq!(app.get("/v1/me").await.expect(200)["used_bytes"], 0);

    app.send_parts(&upload, &data, &[1, 3]).await;
    app.post(&format!("/v1/uploads/{upload_id}/complete"), json!({}))
        .await
        .expect(201);
}

/// A part of the wrong size is refused before S3 joins anything (422), and re-sending that
/// part correctly lets the upload complete.
#[tokio::test]
async fn wrong_part_size_is_422_and_can_be_resent() {
    let app = TestApp::new().await;
    let data = test_bytes(6 * MIB, 4);
    let upload = app
        .create_upload("size.bin", data.len(), Some(5 * MIB))
        .await;
    let upload_id = id(&upload, "upload_id");
    let parts = app.presign(&upload_id, &[1, 2]).await;
    assert_eq!(app.put_part(&parts[0], data[..5 * MIB].to_vec()).await, 200);
    assert_eq!(
        app.put_part(&parts[1], data[5 * MIB..].repeat(2)).await,
        200
    );
    app.post(&format!("/v1/uploads/{upload_id}/complete"), json!({}))
        .await
        .expect_error(422, "size_mismatch");
    assert_eq!(app.put_part(&parts[1], data[5 * MIB..].to_vec()).await, 200);
    let file = app
        .post(&format!("/v1/uploads/{upload_id}/complete"), json!({}))
        .await
        .expect(201)["file"]
        .clone();
    assert_eq!(app.download(file["file_id"].as_str().unwrap()).await, data);
}

/// Completing again, or several times at once, never creates a second File or counts the
/// bytes twice.
#[tokio::test]
async fn complete_is_idempotent_under_retries_and_races() {
    let app = TestApp::new().await;
    let data = test_bytes(3000, 5);
    let upload = app.create_upload("once.bin", data.len(), None).await;
    let upload_id = id(&upload, "upload_id");
    app.send_parts(&upload, &data, &[1]).await;
    let path = format!("/v1/uploads/{upload_id}/complete");
    let racers = (0..8).map(|_| app.post(&path, json!({})));
    let ids: Vec<Value> = futures::future::join_all(racers)
        .await
        .iter()
        .map(|r| r.expect(201)["file"]["file_id"].clone())
        .collect();
    assert!(ids.iter().all(|i| *i == ids[0]), "{ids:?}");
    let again = app.post(&path, json!({})).await.expect(201);
    assert_eq!(again["file"]["file_id"], ids[0]);

    let files = app.get("/v1/files").await.expect(200);
    assert_eq!(files["files"].as_array().unwrap().len(), 1);
    let me = app.get("/v1/me").await.expect(200);
    assert_eq!(
        (me["used_bytes"].clone(), me["file_count"].clone()),
        (json!(3000), json!(1))
    );
}

/// A declared sha256 is kept as the unverified claim it is: shown, never marked verified.
#[tokio::test]
async fn declared_sha256_is_shown_but_not_verified() {
    use sha2::Digest;
    let app = TestApp::new().await;
    let data = test_bytes(100, 6);
    let digest = hex_lower(&sha2::Sha256::digest(&data));
    let upload = app
        .post(
            "/v1/uploads",
            json!({"name": "h.txt", "size": 100, "sha256": digest.to_uppercase(), "content_type": "text/plain"}),
        )
        .await
        .expect(201);
    app.send_parts(&upload, &data, &[1]).await;
    let file = app
        .post(
            &format!("/v1/uploads/{}/complete", id(&upload, "upload_id")),
            json!({}),
        )
        .await
        .expect(201)["file"]
        .clone();
    assert_eq!(file["sha256"], digest.as_str());
    assert_eq!(file["verified"], false);
    assert_eq!(file["content_type"], "text/plain");
}

fn hex_lower(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
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
    let upload_id = id(&upload, "upload_id");
    app.send_parts(&upload, &data, &[1]).await;
    app.delete(&format!("/v1/uploads/{upload_id}"))
        .await
        .expect(204);

    app.get(&format!("/v1/uploads/{upload_id}"))
        .await
        .expect_error(404, "not_found");
    app.post(
        &format!("/v1/uploads/{upload_id}/parts"),
        json!({"part_numbers": [2]}),
    )
    .await
    .expect_error(404, "not_found");
    app.post(&format!("/v1/uploads/{upload_id}/complete"), json!({}))
        .await
        .expect_error(404, "not_found");
    app.delete(&format!("/v1/uploads/{upload_id}"))
        .await
        .expect_error(404, "not_found");
    assert!(
        app.get("/v1/uploads").await.expect(200)["uploads"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    assert_eq!(open_multipart_uploads(&app.user_id).await, 0);
}

/// Aborting a completed upload is a conflict, not a way to lose the file.
#[tokio::test]
async fn abort_of_a_completed_upload_is_409() {
    let app = TestApp::new().await;
    let upload = app.create_upload("done.bin", 10, None).await;
    app.send_parts(&upload, &[1u8; 10], &[1]).await;
    let upload_id = id(&upload, "upload_id");
    app.post(&format!("/v1/uploads/{upload_id}/complete"), json!({}))
        .await
        .expect(201);
    app.delete(&format!("/v1/uploads/{upload_id}"))
        .await
        .expect_error(409, "upload_completed");
    app.post(
        &format!("/v1/uploads/{upload_id}/parts"),
        json!({"part_numbers": [1]}),
    )
    .await
    .expect_error(409, "upload_completed");
    assert_eq!(
        app.get("/v1/files").await.expect(200)["files"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

/// Past its expiry an upload is a 404 even before DynamoDB's TTL sweeps the record.
#[tokio::test]
async fn expired_upload_is_404() {
    let app = TestApp::new().await;
    let upload = app.create_upload("late.bin", 10, None).await;
    let upload_id = id(&upload, "upload_id");
    expire_upload(&app.user_id, &upload_id).await;
    app.get(&format!("/v1/uploads/{upload_id}"))
        .await
        .expect_error(404, "not_found");
    app.post(
        &format!("/v1/uploads/{upload_id}/parts"),
        json!({"part_numbers": [1]}),
    )
    .await
    .expect_error(404, "not_found");
    app.post(&format!("/v1/uploads/{upload_id}/complete"), json!({}))
        .await
        .expect_error(404, "not_found");
    assert!(
        app.get("/v1/uploads").await.expect(200)["uploads"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}

/// A checksum given at presign time is bound into the signature: the URL signs the
/// `x-amz-checksum-sha256` header and the client is told to send it.
#[tokio::test]
async fn part_checksums_are_signed_into_the_url() {
    use base64::Engine;
    use sha2::Digest;
    let app = TestApp::new().await;
    let data = test_bytes(1000, 8);
    let upload = app.create_upload("sum.bin", data.len(), None).await;
    let upload_id = id(&upload, "upload_id");
    let checksum = base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(&data));
    let parts = app
        .post(
            &format!("/v1/uploads/{upload_id}/parts"),
            json!({"part_numbers": [1], "checksums_sha256": {"1": checksum}}),
        )
        .await
        .expect(200)["parts"]
        .clone();
    let part = &parts[0];
    assert_eq!(part["headers"]["x-amz-checksum-sha256"], checksum.as_str());
    let url = part["url"].as_str().unwrap();
    let signed = url
        .split('&')
        .find(|kv| kv.starts_with("X-Amz-SignedHeaders="))
        .unwrap();
    assert!(signed.contains("x-amz-checksum-sha256"), "{signed}");
    assert_eq!(app.put_part(part, data.clone()).await, 200);
    let expires = part["expires_at"].as_str().unwrap();
    assert!(expires <= upload["expires_at"].as_str().unwrap());
}

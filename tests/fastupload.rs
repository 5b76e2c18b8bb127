//! Instant upload: a challenge always, a file only for a correct proof of possession of
//! verified content, and the same `upload_required` for every failure.

use filestore_contract::RouteKey::{DeleteFile, FastUploadProof};
use filestore_contract::api::{ByteRange, ChallengeResponse, CreateUploadResponse, ProofResponse};
use filestore_contract::domain::Tier;
use serde_json::json;

use crate::helpers::{Resp, TestApp, answer, path, sha256_hex, test_bytes};

async fn ask(app: &TestApp, name: &str, data: &[u8]) -> ChallengeResponse {
    app.post(
        "/v1/fast-upload",
        json!({"name": name, "size": data.len(), "sha256": sha256_hex(data)}),
    )
    .await
    .expect_body(200)
}

async fn prove(app: &TestApp, challenge: &ChallengeResponse, proof: &str) -> Resp {
    app.post(
        &path(FastUploadProof, &challenge.challenge_id),
        json!({"proof": proof}),
    )
    .await
}

/// Stores `data` through a normal upload and waits until it is verified content.
async fn stored(data: &[u8]) -> TestApp {
    let owner = TestApp::new().await;
    let file = owner.upload("original.bin", data, None).await;
    owner.verified(&file.file_id).await;
    owner
}

/// A second user who holds the bytes gets the file without uploading: verified, cold, and
/// downloadable byte for byte; both users are charged for it.
#[tokio::test]
async fn a_holder_of_the_bytes_gets_an_instant_upload() {
    let data = test_bytes(200_000, 31);
    let owner = stored(&data).await;
    let bob = TestApp::new().await;
    let challenge = ask(&bob, "mine.bin", &data).await;
    assert_eq!(challenge.ranges.len(), 3);
    let resp = prove(&bob, &challenge, &answer(&challenge, &data))
        .await
        .expect_body(201);
    let ProofResponse::Complete { file } = resp else {
        panic!("not complete: {resp:?}");
    };
    assert_eq!(file.name, "mine.bin");
    assert_eq!(file.size, data.len() as u64);
    assert_eq!(file.sha256, Some(sha256_hex(&data)));
    assert!(file.verified);
    assert_eq!(file.tier, Tier::Cold);
    assert_eq!(bob.download(&file.file_id).await, data);
    let me = bob.me().await;
    assert_eq!((me.used_bytes, me.file_count), (data.len() as u64, 1));

    // The first owner deleting their file leaves Bob's intact.
    let original = owner.list_files().await.files[0].file_id.clone();
    owner.delete(&path(DeleteFile, &original)).await.expect(204);
    assert_eq!(bob.download(&file.file_id).await, data);
}

/// Small files are challenged whole; an empty file works too once stored.
#[tokio::test]
async fn small_files_are_challenged_whole() {
    let data = test_bytes(1000, 32);
    let _owner = stored(&data).await;
    let bob = TestApp::new().await;
    let challenge = ask(&bob, "s.bin", &data).await;
    assert_eq!(
        challenge.ranges,
        [ByteRange {
            offset: 0,
            length: 1000
        }]
    );
    prove(&bob, &challenge, &answer(&challenge, &data))
        .await
        .expect(201);
}

/// Knowing the hash is not enough: a wrong proof, a reused challenge, someone else's
/// challenge, unknown content and unverified content all answer the same
/// `upload_required`, and no file appears.
#[tokio::test]
async fn every_failure_is_the_same_upload_required() {
    let data = test_bytes(100_000, 33);
    let _owner = stored(&data).await;
    let mallory = TestApp::new().await;
    // Raw bodies: every failure must be the very same answer on the wire.
    let expected = json!({"status": "upload_required"});

    let challenge = ask(&mallory, "x", &data).await;
    let wrong = prove(&mallory, &challenge, &sha256_hex(&data))
        .await
        .expect(200);
    assert_eq!(wrong, expected, "hash as proof");
    // The challenge was used up by the wrong answer: even the right one fails now.
    let reused = prove(&mallory, &challenge, &answer(&challenge, &data))
        .await
        .expect(200);
    assert_eq!(reused, expected, "reused challenge");

    let bob = TestApp::new().await;
    let bobs = ask(&bob, "x", &data).await;
    let stolen = prove(&mallory, &bobs, &answer(&bobs, &data))
        .await
        .expect(200);
    assert_eq!(stolen, expected, "another user's challenge");
    // Bob's own challenge is still good: Mallory's attempt did not consume it.
    prove(&bob, &bobs, &answer(&bobs, &data)).await.expect(201);

    let unknown = test_bytes(100_000, 34);
    let challenge = ask(&mallory, "x", &unknown).await;
    let resp = prove(&mallory, &challenge, &answer(&challenge, &unknown))
        .await
        .expect(200);
    assert_eq!(resp, expected, "unknown content");

    // The right hash with the wrong size names no content.
    let challenge: ChallengeResponse = mallory
        .post(
            "/v1/fast-upload",
            json!({"name": "x", "size": data.len() + 1, "sha256": sha256_hex(&data)}),
        )
        .await
        .expect_body(200);
    let mut padded = data.clone();
    padded.push(0);
    let resp = prove(&mallory, &challenge, &answer(&challenge, &padded))
        .await
        .expect(200);
    assert_eq!(resp, expected, "wrong size");

    let unknown_id = filestore_contract::domain::ChallengeId::generate();
    let resp = mallory
        .post(
            &path(FastUploadProof, &unknown_id),
            json!({"proof": sha256_hex(b"x")}),
        )
        .await
        .expect(200);
    assert_eq!(resp, expected, "unknown challenge");
    assert!(mallory.list_files().await.files.is_empty());
}

/// A file uploaded with a false declared hash never lets anyone claim the declared content:
/// the attacker's bytes are filed under their real hash, so a victim asking for the declared
/// hash is told to upload.
#[tokio::test]
async fn a_false_declared_hash_never_serves_the_attackers_bytes() {
    let victim_data = test_bytes(150_000, 35);
    let attacker_data = test_bytes(150_000, 36);
    let attacker = TestApp::new().await;
    let upload: CreateUploadResponse = attacker
        .post(
            "/v1/uploads",
            json!({"name": "evil.bin", "size": attacker_data.len(), "sha256": sha256_hex(&victim_data)}),
        )
        .await
        .expect_body(201);
    attacker.send_parts(&upload, &attacker_data, &[1]).await;
    let file = attacker.complete(&upload.upload_id).await;
    attacker.verified(&file.file_id).await;

    let victim = TestApp::new().await;
    let challenge = ask(&victim, "mine.bin", &victim_data).await;
    let resp = prove(&victim, &challenge, &answer(&challenge, &victim_data))
        .await
        .expect(200);
    assert_eq!(resp, json!({"status": "upload_required"}));
}

/// Malformed input is still a 400; a malformed challenge id cannot exist (404).
#[tokio::test]
async fn malformed_requests_are_rejected() {
    let app = TestApp::new().await;
    app.post(
        "/v1/fast-upload",
        json!({"name": "x", "size": 1, "sha256": "abc"}),
    )
    .await
    .expect_error(400, "invalid_request");
    app.post("/v1/fast-upload", json!({"name": "x", "size": 1}))
        .await
        .expect_error(400, "invalid_request");
    let challenge = ask(&app, "x", b"hello").await;
    prove(&app, &challenge, "not hex")
        .await
        .expect_error(400, "invalid_request");
    app.post(
        "/v1/fast-upload/nope/proof",
        json!({"proof": sha256_hex(b"x")}),
    )
    .await
    .expect_error(404, "not_found");
    TestApp::anonymous()
        .post(
            "/v1/fast-upload",
            json!({"name": "x", "size": 1, "sha256": sha256_hex(b"x")}),
        )
        .await
        .expect_error(401, "unauthorized");
}

/// Instant upload counts against the quota like any upload: refused at the challenge when the
/// declared size does not fit, and at the proof when the space went meanwhile; a refusal
/// writes nothing.
#[tokio::test]
async fn instant_upload_respects_the_quota() {
    let data = test_bytes(4000, 77);
    stored(&data).await;
    let app = TestApp::new().await;
    crate::helpers::set_quota(&app.user_id, 3999).await;
    app.post(
        "/v1/fast-upload",
        json!({"name": "big.bin", "size": data.len(), "sha256": sha256_hex(&data)}),
    )
    .await
    .expect_error(413, "quota_exceeded");

    crate::helpers::set_quota(&app.user_id, 5000).await;
    let challenge = ask(&app, "copy.bin", &data).await;
    app.upload("filler.bin", &test_bytes(1001, 78), None).await;
    prove(&app, &challenge, &answer(&challenge, &data))
        .await
        .expect_error(413, "quota_exceeded");
    let me = app.me().await;
    assert_eq!((me.used_bytes, me.file_count), (1001, 1));
}

/// With the cold store down, a proof cannot be checked against the stored bytes: it answers
/// `upload_required` like any other failure (never a 500), records no file, and the client
/// can still upload the bytes normally.
#[tokio::test]
async fn a_proof_during_a_cold_store_outage_is_upload_required() {
    let mut local = filestore_dev::LocalSystem::start(filestore_dev::Options::isolated())
        .await
        .unwrap();
    let owner = TestApp::new_at(&local.base_url()).await;
    let data = test_bytes(200_000, 39);
    let file = owner.upload("original.bin", &data, None).await;
    owner.verified(&file.file_id).await;
    let challenge = ask(&owner, "again.bin", &data).await;

    local.cold_emulator.take().unwrap().stop().await;
    let resp = prove(&owner, &challenge, &answer(&challenge, &data))
        .await
        .expect_body(200);
    assert!(
        matches!(resp, ProofResponse::UploadRequired),
        "not upload_required: {resp:?}"
    );
    assert_eq!(owner.list_files().await.files.len(), 1);
    let again = owner.upload("again.bin", &data, None).await;
    assert_eq!(owner.download(&again.file_id).await, data);
    local.stop().await;
}

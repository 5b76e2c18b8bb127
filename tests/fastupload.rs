//! Instant upload: a challenge always, a file only for a correct proof of possession of
//! verified content, and the same `upload_required` for every failure. Attacks: guessing a
//! small file's secret, flooding challenges, telling stored content by the proof's cost, and
//! a cold store that is down.

use std::sync::{Arc, Mutex};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use filestore_contract::RouteKey::{FastUpload, FastUploadProof};
use filestore_contract::api::{ByteRange, ChallengeResponse, CreateUploadResponse, ProofResponse};
use filestore_contract::domain::Tier;
use filestore_fastupload::CHALLENGES_PER_HOUR;
use lambda_http::{Body, Request};
use serde_json::{Value, json};

use crate::helpers::{MIB, Resp, TestApp, answer, app_state, path, sha256_hex, test_bytes};

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

/// A second user who holds the bytes of content of 1 MiB or more gets the file without
/// uploading: verified, cold, and downloadable byte for byte; both users are charged for it.
#[tokio::test]
async fn a_holder_of_the_bytes_gets_an_instant_upload() {
    let data = test_bytes(MIB + 200_000, 31);
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

    // The first owner deleting their file for good leaves Bob's intact.
    let original = owner.list_files().await.files[0].file_id.clone();
    owner.delete_for_good(&original).await;
    assert_eq!(bob.download(&file.file_id).await, data);
}

/// Small files are challenged whole; their owner instant-uploads them again, an empty file
/// too.
#[tokio::test]
async fn small_files_are_challenged_whole_and_work_for_their_owner() {
    for (size, seed) in [(1000, 32), (0, 0)] {
        let data = test_bytes(size, seed);
        let owner = stored(&data).await;
        let challenge = ask(&owner, "again.bin", &data).await;
        assert_eq!(
            challenge.ranges,
            [ByteRange {
                offset: 0,
                length: size as u64
            }]
        );
        prove(&owner, &challenge, &answer(&challenge, &data))
            .await
            .expect(201);
        assert_eq!(owner.list_files().await.files.len(), 2);
    }
}

/// Small content is never shared across users: another user with the right bytes and the
/// right proof is told to upload, while the owner's own proof works. Once the owner has
/// deleted every copy, they do not hold it any more either.
#[tokio::test]
async fn small_content_is_never_shared_across_users() {
    let data = test_bytes(MIB - 1, 38);
    let owner = stored(&data).await;
    let mallory = TestApp::new().await;
    let challenge = ask(&mallory, "x", &data).await;
    let resp = prove(&mallory, &challenge, &answer(&challenge, &data))
        .await
        .expect(200);
    assert_eq!(resp, json!({"status": "upload_required"}));
    assert!(mallory.list_files().await.files.is_empty());

    let challenge = ask(&owner, "copy.bin", &data).await;
    let copy = prove(&owner, &challenge, &answer(&challenge, &data))
        .await
        .expect_body::<ProofResponse>(201);
    let ProofResponse::Complete { file: copy } = copy else {
        panic!("not complete: {copy:?}");
    };
    assert_eq!(owner.download(&copy.file_id).await, data);

    // Trashed files still hold their content; purged ones no longer do.
    for file in owner.list_files().await.files {
        owner.delete_for_good(&file.file_id).await;
    }
    let challenge = ask(&owner, "gone.bin", &data).await;
    let resp = prove(&owner, &challenge, &answer(&challenge, &data))
        .await
        .expect(200);
    assert_eq!(resp, json!({"status": "upload_required"}));
}

/// The attack that found the hole: a 56-byte letter whose only secret is a 4-digit PIN.
/// Mallory hashes every candidate letter and proves each as if she held it. The right
/// guess never yields the file (small content is not shared), and after
/// [`CHALLENGES_PER_HOUR`] challenges she gets `429` with `Retry-After` instead.
#[tokio::test]
async fn guessing_a_small_files_pin_never_succeeds() {
    let letter = |pin: u32| {
        format!("Dear Bob, the door code is {pin:04}. Burn this now. -- Alice").into_bytes()
    };
    let secret = letter(71);
    assert_eq!(secret.len(), 56);
    let _alice = stored(&secret).await;
    let mallory = TestApp::new().await;
    let mut throttled = Vec::new();
    for pin in 0..=CHALLENGES_PER_HOUR as u32 + 5 {
        let guess = letter(pin);
        let resp = mallory
            .post(
                FastUpload.template(),
                json!({"name": "letter.txt", "size": guess.len(), "sha256": sha256_hex(&guess)}),
            )
            .await;
        if resp.status == 429 {
            throttled.push(pin);
            resp.expect_error(429, "too_many_attempts");
            let retry_after: u64 = resp.headers["retry-after"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            assert!((1..=3600).contains(&retry_after), "{retry_after}");
            continue;
        }
        let challenge: ChallengeResponse = resp.expect_body(200);
        let resp = prove(&mallory, &challenge, &answer(&challenge, &guess))
            .await
            .expect(200);
        assert_eq!(resp, json!({"status": "upload_required"}), "pin {pin:04}");
    }
    let limit = CHALLENGES_PER_HOUR as u32;
    assert_eq!(throttled, (limit..=limit + 5).collect::<Vec<_>>());
    assert!(mallory.list_files().await.files.is_empty());
}

/// A flood of concurrent challenges: the count is one conditional write, so exactly
/// [`CHALLENGES_PER_HOUR`] are issued and every other one is a `429` with `Retry-After`;
/// another user is not affected.
#[tokio::test]
async fn challenges_past_the_hourly_limit_are_refused_even_concurrently() {
    let flooder = Arc::new(TestApp::new().await);
    let extra = 15;
    let tasks: Vec<_> = (0..CHALLENGES_PER_HOUR + extra)
        .map(|i| {
            let app = flooder.clone();
            tokio::spawn(async move {
                let data = test_bytes(10, i);
                app.post(
                    FastUpload.template(),
                    json!({"name": "f", "size": data.len(), "sha256": sha256_hex(&data)}),
                )
                .await
            })
        })
        .collect();
    let (mut issued, mut refused) = (0, 0);
    for task in tasks {
        let resp = task.await.unwrap();
        match resp.status.as_u16() {
            200 => issued += 1,
            _ => {
                resp.expect_error(429, "too_many_attempts");
                assert!(resp.headers.contains_key("retry-after"));
                refused += 1;
            }
        }
    }
    assert_eq!((issued, refused), (CHALLENGES_PER_HOUR, extra));
    flooder
        .post(
            FastUpload.template(),
            json!({"name": "f", "size": 1, "sha256": sha256_hex(b"x")}),
        )
        .await
        .expect_error(429, "too_many_attempts");
    let other = TestApp::new().await;
    ask(&other, "f", b"x").await;
}

/// Records the cold store's reads: the object read and the length of the range asked.
#[derive(Clone, Debug, Default)]
struct ColdReads(Arc<Mutex<Vec<(String, u64)>>>);

impl Intercept for ColdReads {
    fn name(&self) -> &'static str {
        "ColdReads"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let request = context.request();
        let range = request.headers().get("range").unwrap_or("none");
        let length = range
            .strip_prefix("bytes=")
            .and_then(|r| r.split_once('-'))
            .and_then(|(a, b)| Some(b.parse::<u64>().ok()? + 1 - a.parse::<u64>().ok()?))
            .unwrap_or(0);
        let what = format!(
            "{} {}",
            request.method(),
            request.uri().rsplit('/').next().unwrap_or("")
        );
        self.0.lock().unwrap().push((what, length));
        Ok(())
    }
}

/// Fails every request before it is sent: the cold store is down.
#[derive(Debug)]
struct Outage;

impl Intercept for Outage {
    fn name(&self) -> &'static str {
        "Outage"
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        Err("the cold store is unreachable".into())
    }
}

/// A proof sent straight to the fastupload function, with `state` behind it.
async fn prove_with(
    state: &filestore_shared::AppState,
    app: &TestApp,
    challenge: &ChallengeResponse,
    proof: &str,
) -> (u16, Value) {
    let req: Request = http::Request::builder()
        .method("POST")
        .uri(path(FastUploadProof, &challenge.challenge_id))
        .header(
            "authorization",
            format!("Bearer {}", app.token.clone().unwrap()),
        )
        .header("content-type", "application/json")
        .body(Body::Text(json!({ "proof": proof }).to_string()))
        .unwrap();
    let resp = filestore_fastupload::handler(state, req).await.unwrap();
    let body = match resp.body() {
        Body::Text(text) => serde_json::from_str(text).unwrap(),
        Body::Binary(bytes) => serde_json::from_slice(bytes).unwrap(),
        Body::Empty => Value::Null,
        _ => unreachable!("a handler answers with text, bytes or nothing"),
    };
    (resp.status().as_u16(), body)
}

/// A wrong proof costs the same whether the content is stored or not: the same number of
/// cold-store reads of the same lengths (the decoy's, when nothing is stored), for large
/// content and for another user's small content alike. Timing is measured by
/// `examples/proof_timing.rs`; this shows the work behind it is the same.
#[tokio::test]
async fn a_wrong_proof_reads_the_same_whether_or_not_the_content_exists() {
    let large = test_bytes(MIB + 1000, 39);
    let small = test_bytes(40_000, 40);
    stored(&large).await;
    stored(&small).await;
    let reads = ColdReads::default();
    let mut state = app_state().await;
    state.cold = state
        .cold
        .as_ref()
        .map(|c| c.with_interceptor(reads.clone()));
    let mallory = TestApp::new().await;
    for (data, unknown) in [
        (&large, test_bytes(large.len(), 41)),
        (&small, test_bytes(small.len(), 42)),
    ] {
        let mut seen = Vec::new();
        for bytes in [data, &unknown] {
            let challenge = ask(&mallory, "x", bytes).await;
            let wrong = sha256_hex(challenge.nonce.as_bytes());
            let answer = prove_with(&state, &mallory, &challenge, &wrong).await;
            assert_eq!(answer, (200, json!({"status": "upload_required"})));
            let lengths: Vec<(String, u64)> = std::mem::take(&mut *reads.0.lock().unwrap())
                .into_iter()
                .map(|(what, length)| (what.split(' ').next().unwrap().to_string(), length))
                .collect();
            seen.push(lengths);
        }
        println!("{} bytes, stored then unknown: {seen:?}", data.len());
        assert!(!seen[0].is_empty());
        assert_eq!(seen[0], seen[1], "{} bytes", data.len());
    }
}

/// With every cold-store call failing, a proof, right or wrong, for stored content or for
/// unknown content (the decoy's reads fail too), answers like any other failure:
/// `200 upload_required`, never a 5xx; no file is made.
#[tokio::test]
async fn a_proof_while_every_cold_read_fails_is_upload_required() {
    let data = test_bytes(MIB + 3000, 43);
    stored(&data).await;
    let mut state = app_state().await;
    state.cold = state.cold.as_ref().map(|c| c.with_interceptor(Outage));
    let bob = TestApp::new().await;
    for bytes in [data.clone(), test_bytes(data.len(), 44)] {
        let challenge = ask(&bob, "x", &bytes).await;
        let answer = prove_with(&state, &bob, &challenge, &answer(&challenge, &bytes)).await;
        assert_eq!(answer, (200, json!({"status": "upload_required"})));
    }
    assert!(bob.list_files().await.files.is_empty());
}

/// Knowing the hash is not enough: a wrong proof, a reused challenge, someone else's
/// challenge, unknown content and unverified content all answer the same
/// `upload_required`, and no file appears.
#[tokio::test]
async fn every_failure_is_the_same_upload_required() {
    let data = test_bytes(MIB + 100_000, 33);
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

    let unknown = test_bytes(data.len(), 34);
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
    let app = stored(&data).await;
    crate::helpers::set_quota(&app.user_id, 7999).await;
    app.post(
        "/v1/fast-upload",
        json!({"name": "big.bin", "size": data.len(), "sha256": sha256_hex(&data)}),
    )
    .await
    .expect_error(413, "quota_exceeded");

    crate::helpers::set_quota(&app.user_id, 9000).await;
    let challenge = ask(&app, "copy.bin", &data).await;
    app.upload("filler.bin", &test_bytes(1001, 78), None).await;
    prove(&app, &challenge, &answer(&challenge, &data))
        .await
        .expect_error(413, "quota_exceeded");
    let me = app.me().await;
    assert_eq!((me.used_bytes, me.file_count), (5001, 2));
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

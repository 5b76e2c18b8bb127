//! File names on every route that takes one (create upload, instant upload's challenge,
//! rename): stored NFC-normalized, and refused with a 400 when they are `.`, `..`, only
//! whitespace, or carry an invisible character that makes them read as another name.

use filestore_contract::RouteKey;
use filestore_contract::api::{ChallengeResponse, ProofResponse};
use serde_json::json;

use crate::helpers::{MIB, Resp, TestApp, answer, path, sha256_hex, test_bytes};

/// Names a client may send that the contract refuses: dot names, blank ones, and names
/// disguised by bidirectional controls, zero-width characters or a byte order mark
/// (`invoice\u{202E}fdp.exe` shows as `invoiceexe.pdf`).
fn disguised_names() -> Vec<String> {
    let mut names: Vec<String> = [".", "..", " ", "   ", "\u{3000}", "\u{2003} \u{a0}"]
        .map(String::from)
        .to_vec();
    for c in ('\u{202A}'..='\u{202E}')
        .chain('\u{2066}'..='\u{2069}')
        .chain('\u{200B}'..='\u{200D}')
        .chain(['\u{2060}', '\u{FEFF}'])
    {
        names.push(format!("invoice{c}fdp.exe"));
    }
    // Dots once normalized are still dots.
    names.push("\u{FEFF}.".into());
    names
}

/// `café.txt` spelled with a combining accent, and the precomposed form it is stored as.
const DECOMPOSED: &str = "cafe\u{301}.txt";
const COMPOSED: &str = "caf\u{e9}.txt";

#[track_caller]
fn expect_refused(resp: &Resp, name: &str) {
    assert_eq!(resp.status.as_u16(), 400, "{name:?} was not refused");
    resp.expect_error(400, "invalid_request");
}

/// Create upload refuses every disguised name and leaves no upload behind; a decomposed
/// name is stored, and answered, in NFC.
#[tokio::test]
async fn create_upload_refuses_disguised_names_and_stores_nfc() {
    let app = TestApp::new().await;
    for name in disguised_names() {
        let resp = app
            .post("/v1/uploads", json!({"name": name, "size": 3}))
            .await;
        expect_refused(&resp, &name);
    }
    assert!(app.list_uploads().await.uploads.is_empty());

    let file = app.upload(DECOMPOSED, b"abc", None).await;
    assert_eq!(file.name, COMPOSED);
    assert_eq!(app.file(&file.file_id).await.name, COMPOSED);
    assert_eq!(app.list_files().await.files[0].name, COMPOSED);
}

/// Rename refuses every disguised name and keeps the old one; a decomposed name is stored
/// in NFC.
#[tokio::test]
async fn rename_refuses_disguised_names_and_stores_nfc() {
    let app = TestApp::new().await;
    let file = app.upload("plain.txt", b"abc", None).await;
    let rename = path(RouteKey::RenameFile, &file.file_id);
    for name in disguised_names() {
        let resp = app.patch(&rename, json!({ "name": name })).await;
        expect_refused(&resp, &name);
    }
    assert_eq!(app.file(&file.file_id).await.name, "plain.txt");

    let renamed = app
        .patch(&rename, json!({ "name": DECOMPOSED }))
        .await
        .expect(200);
    assert_eq!(renamed["name"], COMPOSED);
    assert_eq!(app.file(&file.file_id).await.name, COMPOSED);
}

/// Instant upload's challenge refuses every disguised name; the file a correct proof makes
/// carries the challenge's name in NFC.
#[tokio::test]
async fn instant_upload_refuses_disguised_names_and_stores_nfc() {
    // Past 1 MiB, so the content may be shared across users.
    let data = test_bytes(MIB + 4096, 97);
    let sha256 = sha256_hex(&data);
    let holder = TestApp::new().await;
    let original = holder.upload("original.bin", &data, None).await;
    let app = TestApp::new().await;
    for name in disguised_names() {
        let resp = app
            .post(
                "/v1/fast-upload",
                json!({"name": name, "size": data.len(), "sha256": sha256}),
            )
            .await;
        expect_refused(&resp, &name);
    }

    holder.verified(&original.file_id).await;
    let challenge: ChallengeResponse = app
        .post(
            "/v1/fast-upload",
            json!({"name": DECOMPOSED, "size": data.len(), "sha256": sha256}),
        )
        .await
        .expect_body(200);
    let proof = app
        .post(
            &path(RouteKey::FastUploadProof, &challenge.challenge_id),
            json!({"proof": answer(&challenge, &data)}),
        )
        .await
        .expect_body::<ProofResponse>(201);
    let ProofResponse::Complete { file } = proof else {
        panic!("not complete: {proof:?}");
    };
    assert_eq!(file.name, COMPOSED);
    assert_eq!(app.file(&file.file_id).await.name, COMPOSED);
}

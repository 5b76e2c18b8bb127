//! The real SAM template deployed into MiniStack (`infra/local-cloud up`), with each
//! function's IAM policy enforced, and the contract driven black-box against the deployed API
//! URL: the API Gateway routes, the Lambda runtime integration, the packaging, the S3 event ->
//! SQS -> transfer wiring and the roles all take part, none of which the in-process local
//! system exercises. A template, route, wiring or IAM mistake fails here.

use std::process::{Command, Stdio};

use filestore_contract::RouteKey::{CreateShare, DeleteFile, FastUploadProof, GetFile};
use filestore_contract::api::{ChallengeResponse, CreateShareResponse, ProofResponse};
use filestore_contract::domain::Tier;
use serde_json::json;

use crate::helpers::{MIB, TestApp, answer, http_client, path, sha256_hex, test_bytes};

/// The deployed stack, stopped when dropped (and, if this process dies, by the emulator
/// itself, which watches it). `FILESTORE_DEPLOYED_URL` names one already running (`infra/
/// local-cloud up`), which is left running.
struct Deployed {
    url: String,
    dir: Option<std::path::PathBuf>,
}

impl Deployed {
    fn up() -> Self {
        if let Ok(url) = std::env::var("FILESTORE_DEPLOYED_URL") {
            return Self { url, dir: None };
        }
        let dir = std::env::temp_dir().join(format!("filestore-cloud-{}", std::process::id()));
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let launcher = concat!(env!("CARGO_MANIFEST_DIR"), "/infra/local-cloud");
        let out = Command::new(launcher)
            .args(["up", "--port", &port.to_string(), "--watch-pid"])
            .arg(std::process::id().to_string())
            .arg("--dir")
            .arg(&dir)
            .stdin(Stdio::null())
            .stderr(Stdio::inherit())
            .output()
            .expect("infra/local-cloud runs");
        let deployed = Self {
            url: String::from_utf8_lossy(&out.stdout).trim().to_string(),
            dir: Some(dir),
        };
        assert!(out.status.success(), "infra/local-cloud up failed");
        deployed
    }
}

impl Drop for Deployed {
    fn drop(&mut self) {
        if let Some(dir) = &self.dir {
            let _ = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/infra/local-cloud"))
                .arg("down")
                .arg("--dir")
                .arg(dir)
                .status();
        }
    }
}

/// A user's whole journey against the deployed API: signup and login, a multipart upload
/// through presigned URLs, complete, the transfer's verification (S3 event -> SQS ->
/// transfer function -> cold copy), download, a share link, an instant upload by a second
/// user, delete; and a route no function serves answers the contract's 404.
#[tokio::test]
async fn the_deployed_template_serves_the_contract() {
    let cloud = Deployed::up();
    let base = cloud.url.as_str();

    let alice = TestApp::new_at(base).await;
    alice.me().await;
    // Deployed, the function names each request by its id, as the local runner does.
    let me = alice.get("/v1/me").await;
    me.expect(200);
    let again = alice.get("/v1/me").await;
    assert!(!me.request_id().is_empty() && me.request_id() != again.request_id());
    let data = test_bytes(2 * 5 * MIB + 300_000, 91);
    let upload = alice
        .create_upload("report.bin", data.len(), Some(5 * MIB))
        .await;
    assert_eq!(upload.part_count, 3);
    let all: Vec<u64> = (1..=upload.part_count).collect();
    alice.send_parts(&upload, &data, &all).await;
    let file = alice.complete(&upload.upload_id).await;
    let verified = alice.verified(&file.file_id).await;
    assert_eq!(verified.sha256, Some(sha256_hex(&data)));
    assert_eq!(alice.download(&file.file_id).await, data);

    let share: CreateShareResponse = alice
        .post(
            &path(CreateShare, &file.file_id),
            json!({"expires_in": 600}),
        )
        .await
        .expect_body(201);
    let opened = http_client().get(&share.url).send().await.unwrap();
    assert_eq!(opened.status(), 302, "share link {}", share.url);
    let location = opened.headers()["location"].to_str().unwrap().to_string();
    let shared = http_client().get(location).send().await.unwrap();
    assert_eq!(shared.bytes().await.unwrap().to_vec(), data);

    let bob = TestApp::new_at(base).await;
    let challenge: ChallengeResponse = bob
        .post(
            "/v1/fast-upload",
            json!({"name": "copy.bin", "size": data.len(), "sha256": sha256_hex(&data)}),
        )
        .await
        .expect_body(200);
    let proof = bob
        .post(
            &path(FastUploadProof, &challenge.challenge_id),
            json!({"proof": answer(&challenge, &data)}),
        )
        .await
        .expect_body(201);
    let ProofResponse::Complete { file: copy } = proof else {
        panic!("not an instant upload: {proof:?}");
    };
    assert_eq!(copy.tier, Tier::Cold);
    assert_eq!(bob.download(&copy.file_id).await, data);

    alice
        .delete(&path(DeleteFile, &file.file_id))
        .await
        .expect(204);
    alice
        .get(&path(GetFile, &file.file_id))
        .await
        .expect_error(404, "not_found");
    assert_eq!(bob.download(&copy.file_id).await, data);
    alice
        .get("/v1/nowhere")
        .await
        .expect_error(404, "not_found");
}

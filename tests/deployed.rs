//! The real SAM template deployed into MiniStack (`infra/local-cloud up`), with each
//! function's IAM policy enforced, and the contract driven black-box against the deployed API
//! URL: the API Gateway routes, the Lambda runtime integration, the packaging, the S3 event ->
//! SQS -> transfer wiring and the roles all take part, none of which the in-process local
//! system exercises. A template, route, wiring or IAM mistake fails here.
//!
//! Then the end-to-end suite itself runs against the deployed URL: this test binary again,
//! with `FILESTORE_E2E_URL` set, so every test that only speaks HTTP (`TestApp::new()`,
//! `base_url()`) runs unchanged against the stack. The tests that reach behind the API (the
//! emulator, the table, the queues, the functions' output, a local system of their own) or
//! measure the emulator stay local; [`LOCAL_ONLY`] lists them, each group with why.

use std::process::{Command, Stdio};

use filestore_contract::RouteKey::{CreateShare, DeleteFile, FastUploadProof, GetFile};
use filestore_contract::api::{ChallengeResponse, CreateShareResponse, ProofResponse};
use filestore_contract::domain::Tier;
use serde_json::json;

use crate::helpers::{
    DEPLOYED_URL_VAR, MIB, TestApp, answer, http_client, path, sha256_hex, test_bytes,
};

/// The deployed stack, stopped when dropped (and, if this process dies, by the emulator
/// itself, which watches it). `FILESTORE_DEPLOYED_URL` names one already running (`infra/
/// local-cloud up`), which is left running.
struct Deployed {
    url: String,
    dir: Option<std::path::PathBuf>,
}

impl Deployed {
    fn up() -> Self {
        // The launcher prints the page's address, the API's root (`.../<api-id>/`).
        let base = |url: &str| url.trim().trim_end_matches('/').to_string();
        if let Ok(url) = std::env::var("FILESTORE_DEPLOYED_URL") {
            return Self {
                url: base(&url),
                dir: None,
            };
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
            url: base(&String::from_utf8_lossy(&out.stdout)),
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
            // Its state (~450 MB: the functions' zips and MiniStack's data) dies with the run.
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Tests (`module::` or `module::test`, matched as `cargo test -- --skip` does, by substring)
/// that do not run against the deployed stack, and why. Any other test that asks for the
/// in-process system while deployed fails, naming this list.
const LOCAL_ONLY: &[(&str, &str)] = &[
    ("deployed::", "deploys the stack itself"),
    (
        "contract::",
        "schemathesis: thousands of requests, minutes at ~100 ms each",
    ),
    (
        "big_folder::",
        "2,500 uploads: minutes at ~100 ms a request",
    ),
    ("restart::", "the local runner's own binary"),
    // The page served deployed, its script and styles are checked by `page` below.
    (
        "web::page_is_served_with_content_types",
        "the CSP names the local emulator",
    ),
    (
        "web::buckets_let_the_page_put_parts",
        "the local page's origin",
    ),
    (
        "web::emulator_answers_cors_only_to_the_page",
        "the local emulator",
    ),
    (
        "web::download_url_answers_as_an_attachment",
        "the local page's origin",
    ),
    (
        "metrics::",
        "reads the functions' output, captured in process",
    ),
    ("calls::", "counts AWS calls in process"),
    (
        "permissions::",
        "checks each function's calls against its policy in process",
    ),
    (
        "janitor::",
        "calls the janitor's handler and ages records behind the API",
    ),
    ("quotas::", "sets quotas and reads claims in the table"),
    (
        "folders::concurrent_moves_never_pass_the_depth_limit",
        "reads each folder's depth from the table",
    ),
    (
        "folders::a_restore_and_a_move_never_pass_the_depth_limit_together",
        "reads each folder's depth from the table",
    ),
    (
        "folders::a_move_and_creates_below_it_never_pass_the_depth_limit",
        "15 trials on a 103-folder tree, about 400 requests each: the table's conditions it \
         races are checked locally",
    ),
    ("races::", "a local system of its own"),
    (
        "recovery::",
        "a cold-store outage in a local system of its own",
    ),
    ("transfer::", "reads the queues and the cold bucket"),
    (
        "transfer_faults::",
        "faults injected into the transfer in process",
    ),
    // Through MiniStack's API every request comes from one source address, so per-address
    // login and signup limits cannot be told apart there (API Gateway gives the caller's).
    (
        "auth::a_hundred_failures_from_many_addresses",
        "one source address",
    ),
    ("auth::failed_logins_from_elsewhere", "one source address"),
    ("auth::forged_forwarded_for_headers", "one source address"),
    (
        "auth::signups_are_limited_per_source_address",
        "one source address",
    ),
    (
        "auth::wrong_old_passwords_count_as_failed_logins",
        "one source address",
    ),
    (
        "security::cors_allows_only_listed_origins",
        "the local runner's allowed origin",
    ),
    // Behind the API: the table, the buckets, the signing key, a handler called directly.
    (
        "fastupload::a_proof_during_a_cold_store_outage",
        "a local system of its own",
    ),
    (
        "fastupload::a_proof_while_every_cold_read_fails",
        "cold reads failed in process",
    ),
    (
        "fastupload::a_wrong_proof_reads_the_same",
        "reads the table",
    ),
    (
        "files::a_verified_file_whose_content_is_gone",
        "deletes content behind the API",
    ),
    (
        "files::delete_trashes_and_purge_removes_record",
        "reads the table and bucket",
    ),
    (
        "folders::complete_into_a_trashed_folder",
        "reads the bucket",
    ),
    (
        "folders::trash_frees_the_name_and_restore",
        "reads the table",
    ),
    (
        "folder_trash::purging_a_folder_frees_its_subtree",
        "a local system of its own",
    ),
    (
        "folder_trash::restore_racing_purge_of_a_folder",
        "a local system of its own",
    ),
    (
        "folder_trash::the_janitor_finishes_a_folder_purge",
        "a local system of its own",
    ),
    (
        "security::create_upload_rejects_bad_names",
        "sets a quota in the table",
    ),
    (
        "security::missing_forged_and_expired_tokens",
        "signs tokens with the local key",
    ),
    (
        "security::unauthorized_answers_carry_www",
        "signs tokens with the local key",
    ),
    (
        "shares::a_link_read_live_counts_nothing",
        "a handler called directly",
    ),
    ("shares::dead_links_are_all_the_same_404", "reads the table"),
    ("shares::share_tokens_are_stored_hashed", "reads the table"),
    (
        "trash::the_janitor_purges_the_trash",
        "a local system of its own",
    ),
    (
        "trash::trash_racing_verification",
        "a local system of its own",
    ),
    (
        "fastupload::instant_upload_respects_the_quota",
        "sets a quota in the table",
    ),
    (
        "trash::a_trashed_file_is_gone_everywhere",
        "reads the hot bucket",
    ),
    (
        "trash::purge_and_empty_free_what_a_delete_freed",
        "reads the hot bucket",
    ),
    (
        "uploads::abort_removes_the_upload_everywhere",
        "reads the hot bucket",
    ),
    (
        "uploads::expired_upload_is_404",
        "ages the upload in the table",
    ),
    (
        "uploads::unfinished_uploads_are_listed_in_pages",
        "ages an upload in the table",
    ),
    // MiniStack decodes `%23` in a path before routing and cuts the path there, as if a
    // fragment began (`/v1/uploads/USER%23x/parts` meets `/v1/uploads/{id}`: 405, not 404);
    // API Gateway routes the path as sent.
    (
        "security::malformed_ids_in_the_path_are_404",
        "MiniStack routes a decoded %23",
    ),
    // Dozens of requests at once: MiniStack's Lambda queues them, and the last pass the
    // functions' 29 s timeout (AWS runs them side by side).
    (
        "fastupload::challenges_past_the_hourly_limit_are_refused_even_concurrently",
        "MiniStack queues concurrent invocations",
    ),
];

/// A user's whole journey against the deployed API: signup and login, a multipart upload
/// through presigned URLs, complete, the transfer's verification (S3 event -> SQS ->
/// transfer function -> cold copy), download, a share link, an instant upload by a second
/// user, delete; and a route no function serves answers the contract's 404.
#[tokio::test]
async fn the_deployed_template_serves_the_contract() {
    let cloud = Deployed::up();
    journey(&cloud.url).await;
    page(&cloud.url).await;
    cli_journey(&cloud.url).await;
    e2e_suite(&cloud.url);
}

/// The web page at the API's root (`<url>/`, the address `up` prints), and its script and
/// styles as the browser finds them: resolved against the page's URL. The root is under a path
/// here (`/_aws/execute-api/<id>/`), as under a stage on AWS, so a page naming `/app.js` would
/// load nothing.
async fn page(base: &str) {
    let root = reqwest::Url::parse(&format!("{base}/")).expect("the API's URL");
    let client = http_client();
    let page = client.get(root.clone()).send().await.unwrap();
    assert_eq!(page.status(), 200, "GET {root}");
    assert_eq!(page.headers()["content-type"], "text/html; charset=utf-8");
    let html = page.text().await.unwrap();
    for (attribute, content_type) in [
        ("src", "text/javascript; charset=utf-8"),
        ("href", "text/css; charset=utf-8"),
    ] {
        let asset = html
            .split(&format!("{attribute}=\""))
            .skip(1)
            .filter_map(|rest| rest.split('"').next())
            .find(|link| link.ends_with(".js") || link.ends_with(".css"))
            .unwrap_or_else(|| panic!("no script or style by {attribute} in {html}"));
        let url = root.join(asset).expect("a link the browser resolves");
        let resp = client.get(url.clone()).send().await.unwrap();
        assert_eq!(resp.status(), 200, "GET {url} (`{asset}` on the page)");
        assert_eq!(resp.headers()["content-type"], content_type, "{url}");
        // Bodies pass through API Gateway whole (base64 between it and the function).
        let bytes = resp.bytes().await.unwrap();
        assert!(bytes.len() > 10_000, "{url}: {} bytes", bytes.len());
    }
}

/// The `filestore` binary of this workspace, built if needed (`cargo test --workspace` has
/// built it for the CLI's own tests), as the launcher builds the functions.
fn cli_binary() -> std::path::PathBuf {
    let root = env!("CARGO_MANIFEST_DIR");
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args([
            "build",
            "--quiet",
            "--package",
            "filestore-cli",
            "--bin",
            "filestore",
        ])
        .current_dir(root)
        // This test's cargo variables would make build scripts that watch them rebuild.
        .env_remove("CARGO_MANIFEST_DIR")
        .env_remove("CARGO_PKG_NAME")
        .env_remove("CARGO_CRATE_NAME")
        .env_remove("CARGO_PRIMARY_PACKAGE")
        .env_remove("CARGO_TARGET_TMPDIR")
        .stdin(Stdio::null())
        .status()
        .expect("cargo runs");
    assert!(status.success(), "building the CLI failed");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| std::path::Path::new(root).join("target"), Into::into);
    target.join("debug").join("filestore")
}

/// The command-line client against the deployed API, as a person uses it: sign up and log
/// in, upload a 20 MiB file in four parts into a new folder, upload the same bytes again
/// (instant: no byte sent, once the first copy is verified), list, make a folder, move,
/// share (the link gives the bytes), download and compare, remove to the trash, restore,
/// remove again and purge.
async fn cli_journey(base: &str) {
    let started = std::time::Instant::now();
    let cli = cli_binary();
    let home = tempfile::tempdir().expect("a temporary directory");
    let user = filestore_testkit::unique_name("cli_");
    let run = |args: &[&str]| -> serde_json::Value {
        let out = Command::new(&cli)
            .arg("--json")
            .args(args)
            .env("FILESTORE_SERVER", format!("{base}/"))
            .env("FILESTORE_CONFIG_DIR", home.path().join("config"))
            .env("FILESTORE_PASSWORD", "correct horse battery")
            .current_dir(home.path())
            .stdin(Stdio::null())
            .output()
            .expect("the CLI runs");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "filestore {args:?} failed against {base}: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_str(&stdout).unwrap_or(serde_json::Value::Null)
    };
    let data = test_bytes(20 * MIB, 92);
    std::fs::write(home.path().join("big.bin"), &data).unwrap();

    run(&["signup", "--username", &user]);
    run(&["login", "--username", &user]);
    let sent = &run(&["upload", "big.bin", "--to", "/in", "--part-size", "5MiB"])["uploads"][0];
    assert_eq!(sent["part_count"], 4, "{sent}");
    assert_eq!(sent["parts_sent"], 4, "{sent}");
    assert_eq!(sent["instant"], false, "{sent}");
    // Instant upload needs the first copy verified (S3 event -> SQS -> transfer function).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while run(&["info", "/in/big.bin"])["verified"] != true {
        assert!(
            std::time::Instant::now() < deadline,
            "the upload was not verified"
        );
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    let again = &run(&["upload", "big.bin", "--name", "again.bin", "--hash-first"])["uploads"][0];
    assert_eq!(again["instant"], true, "{again}");
    assert_eq!(again["bytes_sent"], 0, "{again}");

    run(&["mkdir", "/docs"]);
    run(&["mv", "/in/big.bin", "/docs/"]);
    let listed = run(&["ls", "/docs"]).to_string();
    assert!(listed.contains("\"big.bin\""), "{listed}");
    let root = run(&["ls", "/"]).to_string();
    assert!(
        root.contains("\"again.bin\"") && root.contains("\"docs\""),
        "{root}"
    );

    let share = run(&["share", "/docs/big.bin"]);
    let link = share["url"].as_str().expect("a share URL");
    assert!(link.starts_with(&format!("{base}/v1/s/")), "{link}");
    let opened = http_client().get(link).send().await.unwrap();
    assert_eq!(opened.status(), 302, "share link {link}");
    let location = opened.headers()["location"].to_str().unwrap().to_string();
    let shared = http_client().get(location).send().await.unwrap();
    assert_eq!(shared.bytes().await.unwrap().as_ref(), data.as_slice());

    run(&["download", "/docs/big.bin", "-o", "out.bin"]);
    assert!(std::fs::read(home.path().join("out.bin")).unwrap() == data);

    let trashed = run(&["rm", "/again.bin"])["trashed"].clone();
    let id = trashed.as_str().expect("a trash id");
    let trash = run(&["trash"]).to_string();
    assert!(trash.contains(id), "{trash}");
    run(&["restore", id]);
    assert!(run(&["ls", "/"]).to_string().contains("\"again.bin\""));
    run(&["rm", "/again.bin"]);
    run(&["purge", id]);
    assert_eq!(run(&["trash"])["entries"], serde_json::json!([]));
    println!("deployed: the CLI's journey in {:?}", started.elapsed());
}

/// The end-to-end suite (less [`LOCAL_ONLY`]) run by this binary against the deployed API.
fn e2e_suite(base: &str) {
    let started = std::time::Instant::now();
    let mut suite = Command::new(std::env::current_exe().expect("the test binary"));
    for (test, _) in LOCAL_ONLY {
        suite.args(["--skip", test]);
    }
    let out = suite
        .env(DEPLOYED_URL_VAR, base)
        .stdin(Stdio::null())
        .output()
        .expect("the test binary runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the end-to-end suite failed against the deployed API {base}:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary = stdout
        .lines()
        .rfind(|l| l.starts_with("test result:"))
        .unwrap_or("no summary");
    let ran = summary
        .split_once(". ")
        .and_then(|(_, rest)| rest.split_once(' '))
        .and_then(|(n, _)| n.parse::<u32>().ok())
        .unwrap_or(0);
    assert!(ran > 0, "no end-to-end test ran deployed: {summary}");
    println!("deployed: {summary} in {:?}", started.elapsed());
}

async fn journey(base: &str) {
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

//! The contract as code: the served OpenAPI document is the one generated from the types,
//! and schemathesis, generating requests from it, finds no answer that breaks it.

use std::collections::BTreeSet;
use std::time::Instant;

use filestore_contract::api::CreateShareResponse;
use filestore_contract::{RouteKey, resolve};
use serde_json::{Value, json};

use crate::helpers::{TestApp, path, system};

/// The schemathesis we install and test with; bumped deliberately, never floating.
const SCHEMATHESIS_REQUIREMENT: &str = "schemathesis==4.32.5";

/// Fewest requests one run must send, so a run that generated next to nothing cannot pass.
const MIN_REQUESTS: usize = 1000;

/// `GET /v1/openapi.json` answers, without a token, exactly the document the code generates
/// (and the committed `docs/openapi.json` is that document too: a unit test in `contract`).
#[tokio::test]
async fn the_served_openapi_document_is_the_generated_one() {
    let resp = TestApp::anonymous().get("/v1/openapi.json").await;
    resp.expect(200);
    assert_eq!(resp.headers["content-type"], "application/json");
    assert_eq!(
        String::from_utf8(resp.bytes).unwrap(),
        filestore_contract::openapi::document_json()
    );
}

/// The served document names its paths and path parameters as DESIGN.md does: the public
/// share link is `GET /v1/s/{token}`, its one parameter `token`; every other path parameter
/// is an `id`; and each operation declares exactly the parameters its path holds.
#[tokio::test]
async fn the_served_document_names_path_parameters_as_the_contract_does() {
    let doc = TestApp::anonymous()
        .get("/v1/openapi.json")
        .await
        .expect(200);
    let paths = doc["paths"].as_object().expect("paths");
    let share = paths.get("/v1/s/{token}").unwrap_or_else(|| {
        panic!(
            "no /v1/s/{{token}} among {:?}",
            paths.keys().collect::<Vec<_>>()
        )
    });
    assert_eq!(share["get"]["operationId"], "openShare");
    for (path, item) in paths {
        let in_path: Vec<&str> = path
            .split('/')
            .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
            .collect();
        let expected: &[&str] = match (path.starts_with("/v1/s/"), in_path.is_empty()) {
            (_, true) => &[],
            (true, false) => &["token"],
            (false, false) => &["id"],
        };
        assert_eq!(in_path, expected, "{path}");
        for (method, operation) in item.as_object().unwrap() {
            let declared: Vec<&str> = operation["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|p| p["in"] == "path")
                .map(|p| p["name"].as_str().unwrap())
                .collect();
            assert_eq!(declared, expected, "{method} {path}");
        }
    }
}

/// Real ids for the operations no link can feed: files (their bytes must be PUT to storage)
/// and a share token (it is part of a URL). The test config names them by these variables.
async fn seed(app: &TestApp) -> Vec<(&'static str, String)> {
    let file = app
        .upload("kept.txt", b"the contract test's file", None)
        .await;
    let doomed = app.upload("doomed.txt", b"deleted by the run", None).await;
    let share: CreateShareResponse = app
        .post(
            &path(RouteKey::CreateShare, &file.file_id),
            json!({"expires_in": 3600}),
        )
        .await
        .expect_body(201);
    let token = share.url.rsplit('/').next().unwrap();
    vec![
        ("FILESTORE_FILE_ID", file.file_id.to_string()),
        ("FILESTORE_DELETED_FILE_ID", doomed.file_id.to_string()),
        ("FILESTORE_SHARE_TOKEN", token.to_string()),
    ]
}

/// Schemathesis (from PyPI, in `.local/schemathesis`) runs every operation of the served
/// document against the local system with a real user's token: examples, coverage of
/// boundaries and invalid input, fuzzing, and stateful sequences along the document's links.
/// Every check but positive_data_acceptance (see `tests/data/schemathesis.toml`) must hold on
/// every answer, every route must be exercised, and the run must send at least
/// [`MIN_REQUESTS`] requests. Its summary, request count and duration are printed.
#[tokio::test]
async fn schemathesis_finds_no_answer_that_breaks_the_contract() {
    let python = filestore_dev::venv::ensure("schemathesis", SCHEMATHESIS_REQUIREMENT)
        .await
        .expect("schemathesis installs from PyPI");
    let app = TestApp::new().await;
    let ids = seed(&app).await;

    let work = tempfile::tempdir().unwrap();
    let document = work.path().join("openapi.json");
    let served = TestApp::anonymous().get("/v1/openapi.json").await;
    served.expect(200);
    std::fs::write(&document, &served.bytes).unwrap();
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/schemathesis.toml");
    let har = work.path().join("requests.har");

    let started = Instant::now();
    // From a file, so the operation that serves the document is tested too (schemathesis
    // leaves out the URL it loaded the document from).
    let out = tokio::process::Command::new(&python)
        .args(["-m", "schemathesis.cli", "--config-file", config, "run"])
        .arg(&document)
        .args(["--url", &system().base_url])
        .args([
            "--header",
            &format!("Authorization: Bearer {}", app.token.as_deref().unwrap()),
        ])
        .args(["--report", "har", "--report-har-path"])
        .arg(&har)
        .arg("--no-color")
        .envs(ids)
        .current_dir(work.path())
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .expect("schemathesis runs");
    let elapsed = started.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let summary = stdout
        .find("SUMMARY")
        .map_or(0, |at| stdout[..at].rfind('\n').map_or(0, |line| line + 1));
    let summary = &stdout[summary..];

    let har: Value = serde_json::from_slice(&std::fs::read(&har).unwrap_or_default())
        .unwrap_or_else(|e| {
            panic!(
                "no HAR report ({e}); output:\n{stdout}\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    let entries = har["log"]["entries"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mut routes = BTreeSet::new();
    for entry in &entries {
        let method = entry["request"]["method"].as_str().unwrap_or_default();
        let url = entry["request"]["url"].as_str().unwrap_or_default();
        let path = url
            .strip_prefix(&system().base_url)
            .unwrap_or(url)
            .split('?')
            .next()
            .unwrap_or_default();
        if let Ok(method) = method.parse::<http::Method>()
            && let Ok(matched) = resolve(&method, path)
        {
            routes.insert(format!("{:?}", matched.key));
        }
    }
    println!(
        "schemathesis: {} requests in {:.1} s ({} routes)\n{summary}",
        entries.len(),
        elapsed.as_secs_f64(),
        routes.len()
    );

    assert!(
        out.status.success(),
        "schemathesis found answers that break the contract:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let all: BTreeSet<String> = RouteKey::ALL.iter().map(|k| format!("{k:?}")).collect();
    let missed: Vec<_> = all.difference(&routes).collect();
    assert!(missed.is_empty(), "routes never exercised: {missed:?}");
    assert!(
        entries.len() >= MIN_REQUESTS,
        "only {} requests (at least {MIN_REQUESTS} wanted)",
        entries.len()
    );
}

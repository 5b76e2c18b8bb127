//! The web page: served beside the API with safe headers, buckets whose CORS lets it upload
//! parts and read `ETag`, and the page itself driven in headless Chromium through a real
//! upload, download, rename and delete.

use std::path::{Path, PathBuf};
use std::process::Command;

use filestore_contract::RouteKey;
use filestore_contract::api::DownloadResponse;

use crate::helpers::{TestApp, base_url, deployed_url, http_client, path, system};

/// The page and its assets come with their content types and a policy that lets the page's
/// own script reach the API and the S3 endpoint; API paths keep answering as the API.
#[tokio::test]
async fn page_is_served_with_content_types_and_a_content_security_policy() {
    let sys = system();
    let client = http_client();
    for (path, content_type) in [
        ("/", "text/html; charset=utf-8"),
        ("/app.js", "text/javascript; charset=utf-8"),
        ("/app.css", "text/css; charset=utf-8"),
    ] {
        let resp = client
            .get(format!("{}{path}", sys.base_url))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{path}");
        let headers = resp.headers();
        assert_eq!(headers["content-type"], content_type, "{path}");
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert_eq!(headers["referrer-policy"], "no-referrer");
        assert_eq!(headers["x-frame-options"], "DENY");
        let csp = headers["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("script-src 'self';"), "{csp}");
        assert!(
            csp.contains(&format!("connect-src 'self' {}", sys.endpoint_url)),
            "{csp}"
        );
        assert!(!resp.bytes().await.unwrap().is_empty(), "{path}");
    }
    let page = client.get(&sys.base_url).send().await.unwrap();
    let html = page.text().await.unwrap();
    // Relative to the page, which is served at the API's root: that root may be under a path
    // (a stage on AWS, `/_aws/execute-api/<id>/` in MiniStack), so nothing names `/app.js`.
    assert!(html.contains(r#"<script type="module" src="app.js">"#));
    assert!(html.contains(r#"<link rel="stylesheet" href="app.css">"#));

    // The API is not shadowed: unknown paths and other methods are the API's JSON errors.
    let app = TestApp::anonymous();
    app.get("/v1/files").await.expect_error(401, "unauthorized");
    app.get("/app.js.map").await.expect_error(404, "not_found");
    app.get("/v1/").await.expect_error(404, "not_found");
    app.post("/", serde_json::json!({}))
        .await
        .expect_error(404, "not_found");
}

/// A browser on the page's origin may `PUT` a part to its presigned URL and read the `ETag`
/// (Uppy needs it), as the preflight and the real answer both say.
#[tokio::test]
async fn buckets_let_the_page_put_parts_and_read_the_etag() {
    let sys = system();
    let app = TestApp::new().await;
    let upload = app.create_upload("cors.bin", 3, None).await;
    let part = &app.presign(&upload.upload_id, &[1]).await[0];
    let url = part.url.as_str();
    let client = http_client();
    let origin = sys.base_url.as_str();

    let preflight = client
        .request(reqwest::Method::OPTIONS, url)
        .header("origin", origin)
        .header("access-control-request-method", "PUT")
        .header("access-control-request-headers", "content-type")
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), 200);
    let headers = preflight.headers();
    assert_eq!(headers["access-control-allow-origin"], origin);
    assert!(
        headers["access-control-allow-methods"]
            .to_str()
            .unwrap()
            .contains("PUT")
    );

    let put = client
        .put(url)
        .header("origin", origin)
        .body(vec![1u8, 2, 3])
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 200);
    let headers = put.headers();
    assert_eq!(headers["access-control-allow-origin"], origin);
    assert!(
        headers["access-control-expose-headers"]
            .to_str()
            .unwrap()
            .contains("ETag")
    );
    assert!(headers.contains_key("etag"));
}

/// Any other web page a developer opens must not read the local emulator through their
/// browser (the table holds password hashes): the emulator answers CORS only to the page's
/// own origin, on its buckets and on every other service.
#[tokio::test]
async fn emulator_answers_cors_only_to_the_page() {
    let sys = system();
    let app = TestApp::new().await;
    let upload = app.create_upload("evil.bin", 3, None).await;
    let part = &app.presign(&upload.upload_id, &[1]).await[0];
    let client = http_client();
    let evil = "https://evil.example";
    for origin in [evil, sys.base_url.as_str()] {
        let preflight = client
            .request(reqwest::Method::OPTIONS, part.url.as_str())
            .header("origin", origin)
            .header("access-control-request-method", "PUT")
            .send()
            .await
            .unwrap();
        let table = client
            .post(sys.endpoint_url.as_str())
            .header("origin", origin)
            .header("x-amz-target", "DynamoDB_20120810.ListTables")
            .header("content-type", "application/x-amz-json-1.0")
            .body("{}")
            .send()
            .await
            .unwrap();
        let allowed = |resp: &reqwest::Response| {
            resp.headers()
                .get("access-control-allow-origin")
                .map(|v| v.to_str().unwrap().to_string())
        };
        if origin == evil {
            assert_eq!(allowed(&preflight), None, "bucket preflight");
            assert_eq!(allowed(&table), None, "table");
        } else {
            assert_eq!(
                allowed(&preflight).as_deref(),
                Some(origin),
                "bucket preflight"
            );
        }
    }
}

/// The page downloads by navigating to the presigned URL, so that URL must answer as an
/// attachment named after the file (S3 applies `response-content-disposition`), or the browser
/// would show a text or image file instead of saving it.
#[tokio::test]
async fn download_url_answers_as_an_attachment_under_the_files_name() {
    let app = TestApp::new().await;
    let file = app.upload("notes ✓.txt", b"plain text", None).await;
    let link: DownloadResponse = app
        .get(&path(RouteKey::DownloadFile, &file.file_id))
        .await
        .expect_body(200);
    let resp = http_client()
        .get(&link.url)
        .header("origin", system().base_url.as_str())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["content-disposition"],
        filestore_shared::storage::content_disposition("notes ✓.txt").as_str()
    );
    assert_eq!(resp.bytes().await.unwrap().as_ref(), b"plain text");
}

fn web_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("web")
}

fn run(dir: &Path, program: &str, args: &[&str], env: &[(&str, &str)]) -> String {
    let output = Command::new(program)
        .args(args)
        .envs(env.iter().copied())
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| {
            panic!("could not run {program} ({e}); the web tests need Node.js 20+ and npm")
        });
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{program} {args:?} failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    stdout
}

/// Installs the locked packages unless `node_modules` already holds exactly them, under a file
/// lock: the browser test may run against the local system and, from another process, against
/// a deployed one at the same time.
fn npm_ci(dir: &Path) {
    let lock = std::fs::read(dir.join("package-lock.json")).expect("web/package-lock.json");
    let _lock = InstallLock::take();
    let stamp = dir.join("node_modules/.filestore-lock");
    if std::fs::read(&stamp).ok().as_deref() == Some(lock.as_slice()) {
        return;
    }
    run(dir, "npm", &["ci", "--no-audit", "--no-fund"], &[]);
    std::fs::write(&stamp, lock).expect("writing the install stamp");
}

/// A directory made by one process at a time (`File::lock` is newer than our MSRV); one left by
/// a process that died (or anything else by that name) is taken over after ten minutes.
struct InstallLock(PathBuf);

impl InstallLock {
    fn take() -> Self {
        let path = std::env::temp_dir().join("filestore-web-npm-install.lock");
        for _ in 0..10_000 {
            if std::fs::create_dir(&path).is_ok() {
                return Self(path);
            }
            let stale = std::fs::metadata(&path)
                .and_then(|m| m.modified())
                .is_ok_and(|t| t.elapsed().unwrap_or_default().as_secs() > 600);
            if stale && std::fs::remove_dir(&path).is_err() {
                let _ = std::fs::remove_file(&path);
            }
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        panic!("{} is held: another npm install runs", path.display());
    }
}

impl Drop for InstallLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.0);
    }
}

/// In Chromium, a new user signs up, uploads a three-part file through the Dashboard, sees it
/// listed with its status, downloads the same bytes, renames it, shares it (the link, opened
/// in a context without a session, gives the same bytes; revoked, it is a 404), deletes it,
/// pauses and resumes another upload (which then sends only the missing part), and logs out.
/// Then slow and lost answers (a listing held by the test, the page's clock moved): a listing
/// never answered ends in a one-line error and the same click asks again; no click is lost to
/// a listing answering under it and no answer is dropped for the folder clicked.
/// Then, at 390x844 and at 1280x800, the folder journey (new folder, upload into it,
/// breadcrumbs, rename, move, delete, trash, restore, purge), where no view may be wider than
/// the screen. The committed bundle must be what the sources build to, since that is what the
/// runner serves. Screenshots of every view go to `target/tmp/browser/` (`browser-deployed/`
/// when run against a deployed API, `FILESTORE_E2E_URL`, whose page it drives instead).
#[test]
fn browser_signs_up_uploads_shares_and_walks_folders_and_trash_on_phone_and_desktop() {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&chromium).exists(),
        "{chromium} not found: install Chromium (apt-get install chromium) or set CHROMIUM"
    );
    let dir = web_dir();
    npm_ci(&dir);
    run(&dir, "node", &["build.mjs", "--check"], &[]);

    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join(match deployed_url() {
        Some(_) => "browser-deployed",
        None => "browser",
    });
    let shots = shots.to_str().expect("a UTF-8 target path");
    // The page is the API's root: `<base>/`.
    let page = format!("{}/", base_url());
    let out = run(
        &dir,
        "node",
        &["tests/browser.mjs", &page, shots],
        &[("CHROMIUM", &chromium)],
    );
    println!("{out}");
    let summary: serde_json::Value = out
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .expect("the browser test prints a JSON summary last");
    assert_eq!(summary["ok"], true);
    assert_eq!(summary["parts"], 3);
    // Both screen sizes ran the folder journey, and at 390 px nothing scrolled sideways.
    let layouts = summary["layouts"].as_array().expect("layouts");
    let sizes: Vec<_> = layouts.iter().map(|l| l["viewport"].as_str()).collect();
    assert_eq!(sizes, [Some("390x844"), Some("1280x800")]);
    for view in layouts[0]["views"].as_array().unwrap() {
        assert!(
            view["scrollWidth"].as_u64() <= view["width"].as_u64(),
            "{view}"
        );
    }
    for shot in summary["screenshots"].as_array().unwrap() {
        let path = shot.as_str().unwrap();
        let png = std::fs::read(path).unwrap();
        assert!(png.starts_with(b"\x89PNG"), "{path} is a PNG");
    }
}

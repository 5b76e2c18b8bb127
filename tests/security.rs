//! Security: every route with another user's ids, bad input on every route, forged tokens.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use filestore_contract::RouteKey;
use filestore_contract::api::{
    CreateShareResponse, CreateUploadResponse, FileList, PresignPartsResponse, ShareList,
    UploadList,
};
use filestore_contract::domain::UploadState;
use filestore_shared::http::MAX_BODY_BYTES;
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{
    Resp, TestApp, base_url, http_client, path, set_quota, system, test_bytes, unique_name,
};
use filestore_contract::domain::{FileId, ShareId, UploadId};

/// One request that must be refused, and how.
#[derive(Clone)]
struct Case {
    method: Method,
    path: String,
    body: Option<Vec<u8>>,
    status: u16,
    code: &'static str,
}

impl Case {
    fn new(method: Method, path: impl Into<String>, status: u16, code: &'static str) -> Self {
        Self {
            method,
            path: path.into(),
            body: None,
            status,
            code,
        }
    }

    /// A route of the contract with its method, on `id`.
    fn route(route: RouteKey, id: impl AsRef<str>, status: u16, code: &'static str) -> Self {
        Self::new(route.method(), path(route, id), status, code)
    }

    /// With a JSON body.
    fn json(mut self, body: Value) -> Self {
        self.body = Some(body.to_string().into_bytes());
        self
    }

    /// With a body sent byte for byte, valid JSON or not.
    fn raw(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = Some(body.into());
        self
    }

    fn describe(&self) -> String {
        let body = self
            .body
            .as_deref()
            .map(String::from_utf8_lossy)
            .unwrap_or_default();
        let body: String = body.chars().take(120).collect();
        format!("{} {} {body}", self.method, self.path)
    }
}

/// A 400 `invalid_request` for a JSON body.
fn invalid(method: Method, path: &str, body: Value) -> Case {
    Case::new(method, path, 400, "invalid_request").json(body)
}

/// Sends every case as `app` and checks each answer: status and code (all mismatches are
/// reported together), then the exact error body through `expect_error`.
async fn expect_all(app: &TestApp, cases: Vec<Case>) {
    let mut failures = Vec::new();
    for case in &cases {
        let resp = app
            .send(case.method.clone(), &case.path, case.body.clone())
            .await;
        let code = serde_json::from_slice::<Value>(&resp.bytes)
            .ok()
            .and_then(|b| b["error"]["code"].as_str().map(str::to_string));
        if resp.status.as_u16() != case.status || code.as_deref() != Some(case.code) {
            failures.push(format!(
                "{}\n    want {} {}, got {} {}",
                case.describe(),
                case.status,
                case.code,
                resp.status.as_u16(),
                String::from_utf8_lossy(&resp.bytes)
            ));
            continue;
        }
        resp.expect_error(case.status, case.code);
    }
    assert!(
        failures.is_empty(),
        "{} of {} case(s) failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

/// A request with exactly this `Authorization` header (or none).
async fn send_with_authorization(method: Method, path: &str, authorization: Option<&str>) -> Resp {
    let mut req = http_client().request(method.clone(), format!("{}{path}", base_url()));
    if let Some(value) = authorization {
        req = req.header("authorization", value);
    }
    if method == Method::POST || method == Method::PATCH {
        req = req.header("content-type", "application/json").body("{}");
    }
    let resp = req.send().await.expect("request sent");
    Resp {
        status: resp.status(),
        headers: resp.headers().clone(),
        bytes: resp.bytes().await.expect("body").to_vec(),
    }
}

/// Every route that needs a token, with a fresh id where the route takes one.
fn authenticated_routes() -> Vec<(Method, String)> {
    let id = uuid::Uuid::new_v4().to_string();
    RouteKey::ALL
        .into_iter()
        .filter(|key| !key.is_public())
        .map(|key| (key.method(), key.fill(&id)))
        .collect()
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn sign(alg: jsonwebtoken::Algorithm, claims: &Value, secret: &[u8]) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(alg),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(secret),
    )
    .expect("signing a test token")
}

/// What a user owns for the ownership tests: a completed file with a share link, and two
/// uploads, one completed and one left active with all its bytes sent (so only ownership
/// stops a complete).
struct Owned {
    data: Vec<u8>,
    name: String,
    file_id: FileId,
    completed_upload_id: UploadId,
    active_upload_id: UploadId,
    share_id: ShareId,
}

async fn own_things(app: &TestApp, seed: u64) -> Owned {
    let data = test_bytes(1024, seed);
    let name = unique_name("secret-");
    let done = app.create_upload(&name, data.len(), None).await;
    app.send_parts(&done, &data, &[1]).await;
    let completed_upload_id = done.upload_id;
    let file = app.complete(&completed_upload_id).await;
    let active = app.create_upload("pending.bin", data.len(), None).await;
    app.send_parts(&active, &data, &[1]).await;
    let share: CreateShareResponse = app
        .post(
            &path(RouteKey::CreateShare, &file.file_id),
            json!({"expires_in": 600}),
        )
        .await
        .expect_body(201);
    Owned {
        share_id: share.share_id,
        file_id: file.file_id,
        active_upload_id: active.upload_id,
        completed_upload_id,
        data,
        name,
    }
}

fn file_ids(list: &FileList) -> Vec<FileId> {
    list.files.iter().map(|f| f.file_id.clone()).collect()
}

fn upload_ids(list: &UploadList) -> Vec<UploadId> {
    list.uploads.iter().map(|u| u.upload_id.clone()).collect()
}

/// Every route that takes an id answers 404 to another user, exactly as for an id that does
/// not exist (no IDOR, no existence oracle), and none of those calls changes the owner's data.
#[tokio::test]
async fn another_users_ids_are_404_on_every_route_and_change_nothing() {
    let a = TestApp::new().await;
    let b = TestApp::new().await;
    let owned = own_things(&a, 11).await;
    let (file, active, completed) = (
        &owned.file_id,
        &owned.active_upload_id,
        &owned.completed_upload_id,
    );

    let mut cases = Vec::new();
    for upload in [active, completed] {
        cases.extend([
            Case::route(RouteKey::UploadStatus, upload, 404, "not_found"),
            Case::route(RouteKey::PresignParts, upload, 404, "not_found")
                .json(json!({"part_numbers": [1]})),
            Case::route(RouteKey::CompleteUpload, upload, 404, "not_found").json(json!({})),
            Case::route(RouteKey::AbortUpload, upload, 404, "not_found"),
        ]);
    }
    cases.extend([
        Case::route(RouteKey::GetFile, file, 404, "not_found"),
        Case::route(RouteKey::DownloadFile, file, 404, "not_found"),
        Case::new(
            Method::GET,
            format!("{}?redirect=true", path(RouteKey::DownloadFile, file)),
            404,
            "not_found",
        ),
        Case::route(RouteKey::RenameFile, file, 404, "not_found")
            .json(json!({"name": "pwned.txt"})),
        Case::route(RouteKey::DeleteFile, file, 404, "not_found"),
        Case::route(RouteKey::CreateShare, file, 404, "not_found").json(json!({"expires_in": 600})),
        Case::route(RouteKey::ListShares, file, 404, "not_found"),
        Case::route(RouteKey::RevokeShare, &owned.share_id, 404, "not_found"),
        Case::route(RouteKey::RestoreTrash, file, 404, "not_found").json(json!({})),
        Case::route(RouteKey::PurgeTrash, file, 404, "not_found"),
    ]);
    expect_all(&b, cases).await;
    // The owner's share link still works and was not counted.
    let shares: ShareList = a
        .get(&path(RouteKey::ListShares, file))
        .await
        .expect_body(200);
    let share_ids: Vec<&str> = shares.shares.iter().map(|s| s.share_id.as_str()).collect();
    assert_eq!(share_ids, [owned.share_id.as_str()]);
    assert_eq!(shares.shares[0].downloads, 0);

    // The owner's file: same name, same bytes, still counted.
    assert_eq!(a.file(file).await.name, owned.name);
    assert_eq!(a.download(file).await, owned.data);
    let me = a.me().await;
    assert_eq!((me.file_count, me.used_bytes), (1, 1024));

    // The owner's uploads: the active one still listed with its part in S3, the completed
    // one still pointing at the file.
    assert_eq!(upload_ids(&a.list_uploads().await), vec![active.clone()]);
    let status = a.upload_status(active).await;
    assert_eq!(status.state, UploadState::Active);
    assert_eq!(status.parts_done.as_ref().map(Vec::len), Some(1));
    let status = a.upload_status(completed).await;
    assert_eq!(status.state, UploadState::Completed);
    assert_eq!(status.file_id.as_ref(), Some(file));

    // Nothing leaked into the caller's own account either (a rename must not upsert).
    let me = b.me().await;
    assert_eq!((me.file_count, me.used_bytes), (0, 0));
    assert!(file_ids(&b.list_files().await).is_empty());
}

/// Listings are scoped to the caller: B sees exactly B's files and uploads, never A's, even
/// when B hands in a cursor built from A's file id.
#[tokio::test]
async fn listings_show_only_the_callers_items() {
    let a = TestApp::new().await;
    let b = TestApp::new().await;
    let theirs = own_things(&a, 21).await;
    let mine = own_things(&b, 22).await;

    assert_eq!(file_ids(&b.list_files().await), vec![mine.file_id.clone()]);
    assert_eq!(
        upload_ids(&b.list_uploads().await),
        vec![mine.active_upload_id.clone()]
    );

    let forged = filestore_files::encode_cursor(&theirs.file_id);
    let page: FileList = b
        .get(&format!("/v1/files?cursor={forged}&limit=1000"))
        .await
        .expect_body(200);
    assert!(
        !file_ids(&page).contains(&theirs.file_id),
        "A's file listed to B: {page:?}"
    );
    // An uploads cursor made from A's upload id only positions B's own listing.
    let forged = URL_SAFE_NO_PAD.encode(format!("u1:{}", theirs.completed_upload_id));
    let page: UploadList = b
        .get(&format!("/v1/uploads?cursor={forged}&limit=1000"))
        .await
        .expect_body(200);
    assert!(
        !upload_ids(&page).contains(&theirs.active_upload_id),
        "A's upload listed to B: {page:?}"
    );
}

/// Every authenticated route answers 401 `unauthorized` to a request without a token, with
/// a token that is not one of ours (garbage, another key, `alg: none`, another algorithm,
/// tampered claims), expired, or not sent as a bearer token.
#[tokio::test]
async fn missing_forged_and_expired_tokens_are_401_on_every_authenticated_route() {
    let app = TestApp::new().await;
    let victim = TestApp::new().await;
    let secret = system().jwt_secret.as_bytes();
    let valid = app.token.clone().unwrap();
    // The same user is accepted with a real token, so every 401 below is about the token.
    app.get("/v1/me").await.expect(200);

    let claims = |iat: i64, exp: i64| json!({"sub": app.user_id, "usr": app.username, "iat": iat, "exp": exp, "ver": 0});
    let fresh = claims(now(), now() + 600);
    let expired = sign(
        jsonwebtoken::Algorithm::HS256,
        &claims(now() - 3600, now() - 120),
        secret,
    );
    let other_key = sign(
        jsonwebtoken::Algorithm::HS256,
        &fresh,
        b"0123456789abcdef0123456789abcdef",
    );
    let hs512 = sign(jsonwebtoken::Algorithm::HS512, &fresh, secret);
    let no_exp = sign(
        jsonwebtoken::Algorithm::HS256,
        &json!({"sub": app.user_id, "usr": app.username, "iat": now(), "ver": 0}),
        secret,
    );
    let alg_none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#),
        URL_SAFE_NO_PAD.encode(fresh.to_string())
    );
    // A real signature over someone else's claims: the payload swapped to the victim.
    let tampered = {
        let parts: Vec<&str> = valid.split('.').collect();
        let payload = json!({"sub": victim.user_id, "usr": victim.username,
            "iat": now(), "exp": now() + 600, "ver": 0});
        format!(
            "{}.{}.{}",
            parts[0],
            URL_SAFE_NO_PAD.encode(payload.to_string()),
            parts[2]
        )
    };

    let headers: Vec<(&str, Option<String>)> = vec![
        ("no header", None),
        ("garbage token", Some("Bearer not-a-jwt".into())),
        ("three garbage segments", Some("Bearer a.b.c".into())),
        ("empty bearer", Some("Bearer ".into())),
        ("Bearer missing", Some(valid.clone())),
        (
            "another scheme",
            Some(format!("Basic {}", STANDARD.encode("u:p"))),
        ),
        ("another key", Some(format!("Bearer {other_key}"))),
        ("alg none", Some(format!("Bearer {alg_none}"))),
        ("HS512 with our key", Some(format!("Bearer {hs512}"))),
        ("no exp claim", Some(format!("Bearer {no_exp}"))),
        ("tampered payload", Some(format!("Bearer {tampered}"))),
        ("expired", Some(format!("Bearer {expired}"))),
    ];
    let mut failures = Vec::new();
    for (method, path) in authenticated_routes() {
        for (what, header) in &headers {
            let resp = send_with_authorization(method.clone(), &path, header.as_deref()).await;
            if resp.status != 401 {
                failures.push(format!(
                    "{method} {path} with {what}: {} {}",
                    resp.status,
                    String::from_utf8_lossy(&resp.bytes)
                ));
                continue;
            }
            resp.expect_error(401, "unauthorized");
        }
    }
    assert!(failures.is_empty(), "not 401:\n{}", failures.join("\n"));
}

/// A 401 tells the client how to authenticate (RFC 6750): `WWW-Authenticate: Bearer`.
#[tokio::test]
async fn unauthorized_answers_carry_www_authenticate_bearer() {
    let app = TestApp::new().await;
    let expired = sign(
        jsonwebtoken::Algorithm::HS256,
        &json!({"sub": app.user_id, "usr": app.username,
            "iat": now() - 3600, "exp": now() - 120, "ver": 0}),
        system().jwt_secret.as_bytes(),
    );
    for token in [None, Some("not-a-jwt"), Some(expired.as_str())] {
        let resp = app.with_token(token).get("/v1/uploads").await;
        resp.expect_error(401, "unauthorized");
        assert_eq!(
            resp.headers
                .get("www-authenticate")
                .and_then(|v| v.to_str().ok()),
            Some("Bearer"),
            "{token:?}"
        );
    }
}

/// Every route with a body refuses what is not the JSON object it expects: broken JSON,
/// non-UTF-8 bytes, an array, `null`, a string, unknown fields, wrong types, missing fields.
/// All 400 `invalid_request`, before anything is looked up or written.
#[tokio::test]
async fn malformed_bodies_are_400_on_every_route_with_a_body() {
    let app = TestApp::new().await;
    let owned = own_things(&app, 31).await;
    let upload = &owned.active_upload_id;
    let routes: Vec<(Method, String, Value)> = vec![
        (
            Method::POST,
            "/v1/auth/signup".into(),
            json!({"username": unique_name("u_"), "password": "long enough pw"}),
        ),
        (
            Method::POST,
            "/v1/auth/login".into(),
            json!({"username": app.username, "password": app.password}),
        ),
        (
            Method::POST,
            "/v1/uploads".into(),
            json!({"name": "a.txt", "size": 1}),
        ),
        (
            Method::POST,
            path(RouteKey::PresignParts, upload),
            json!({"part_numbers": [1]}),
        ),
        (
            Method::POST,
            path(RouteKey::CompleteUpload, upload),
            json!({}),
        ),
        (
            Method::PATCH,
            path(RouteKey::RenameFile, &owned.file_id),
            json!({"name": "renamed.txt"}),
        ),
    ];
    let mut cases = Vec::new();
    for (method, path, good) in &routes {
        let bad = |body: &str| Case::new(method.clone(), path, 400, "invalid_request").raw(body);
        cases.extend([
            bad("{"),
            bad(r#"{"name": "a.txt",}"#),
            bad("not json"),
            bad("null"),
            bad("42"),
            bad(r#""a string""#),
            bad("[]"),
            bad("[{}]"),
        ]);
        cases.push(
            Case::new(method.clone(), path, 400, "invalid_request").raw(vec![0xff, 0xfe, b'{']),
        );
        // The good body as an array of its values: serde would take it for a struct.
        let values: Vec<Value> = good.as_object().unwrap().values().cloned().collect();
        cases.push(invalid(method.clone(), path, Value::Array(values)));
        let mut unknown = good.clone();
        unknown["is_admin"] = json!(true);
        cases.push(invalid(method.clone(), path, unknown));
        // Each required field missing, then of the wrong type.
        for field in good.as_object().unwrap().keys() {
            let mut missing = good.clone();
            missing.as_object_mut().unwrap().remove(field);
            cases.push(invalid(method.clone(), path, missing));
            for wrong in [json!(null), json!(true), json!({"x": 1}), json!([[]])] {
                let mut typed = good.clone();
                typed[field] = wrong;
                cases.push(invalid(method.clone(), path, typed));
            }
        }
    }
    // Wrong scalar types where a number or a string is expected.
    cases.extend([
        invalid(
            Method::POST,
            "/v1/uploads",
            json!({"name": "a", "size": "1"}),
        ),
        invalid(Method::POST, "/v1/uploads", json!({"name": 7, "size": 1})),
        invalid(
            Method::POST,
            "/v1/uploads",
            json!({"name": "a", "size": 1, "part_size": "5242880"}),
        ),
        invalid(
            Method::POST,
            &path(RouteKey::PresignParts, upload),
            json!({"part_numbers": "1"}),
        ),
        invalid(
            Method::POST,
            &path(RouteKey::PresignParts, upload),
            json!({"part_numbers": ["1"]}),
        ),
        invalid(
            Method::POST,
            "/v1/auth/signup",
            json!({"username": 12345, "password": "long enough pw"}),
        ),
    ]);
    expect_all(&app, cases).await;

    // Nothing above was taken as a valid request.
    assert_eq!(app.file(&owned.file_id).await.name, owned.name);
    assert_eq!(app.upload_status(upload).await.state, UploadState::Active);
    assert_eq!(
        upload_ids(&app.list_uploads().await),
        vec![owned.active_upload_id.clone()]
    );
}

/// Signup and login take only usernames of 3..64 characters of `A-Za-z0-9_.-` and passwords
/// of 8..1024 characters (DESIGN.md); anything else is a 400, never an account.
#[tokio::test]
async fn signup_and_login_enforce_username_and_password_rules() {
    let anon = TestApp::anonymous();
    let good_password = "long enough pw";
    let bad_usernames = [
        "ab".to_string(),
        "a".repeat(65),
        String::new(),
        "al ice".into(),
        "élise".into(),
        "a/b".into(),
        "ali\nce".into(),
        "ali\u{0}ce".into(),
        "al@ice".into(),
        "<script>".into(),
    ];
    let bad_passwords = [
        "short".to_string(),
        "1234567".into(),
        String::new(),
        "x".repeat(1025),
    ];
    let mut cases = Vec::new();
    for route in ["/v1/auth/signup", "/v1/auth/login"] {
        for username in &bad_usernames {
            cases.push(invalid(
                Method::POST,
                route,
                json!({"username": username, "password": good_password}),
            ));
        }
        for password in &bad_passwords {
            cases.push(invalid(
                Method::POST,
                route,
                json!({"username": unique_name("u_"), "password": password}),
            ));
        }
    }
    expect_all(&anon, cases).await;

    // The bounds themselves are allowed.
    let longest = format!("{}{}", unique_name("u"), "z".repeat(47));
    assert_eq!(longest.len(), 64);
    for (username, password) in [
        (unique_name("a.b-c_"), "x".repeat(8)),
        (longest, "y".repeat(1024)),
    ] {
        anon.post(
            "/v1/auth/signup",
            json!({"username": username, "password": password}),
        )
        .await
        .expect(201);
    }
}

/// Create upload checks every field against the contract: file name (1..255 bytes, no `/`,
/// no control characters), size (0..5 TiB), part size (5 MiB..5 GiB), sha256 (64 hex) and
/// content type (a MIME type, no header injection).
#[tokio::test]
async fn create_upload_rejects_bad_names_sizes_part_sizes_hashes_and_content_types() {
    let app = TestApp::new().await;
    // Room for the largest valid object, so only the bounds under test can refuse it.
    set_quota(&app.user_id, 6 << 40).await;
    const MIB: u64 = 1024 * 1024;
    const TIB: u64 = 1024 * 1024 * MIB;
    let create = |fields: Value| {
        let mut body = json!({"name": "a.bin", "size": 1024});
        for (k, v) in fields.as_object().unwrap() {
            body[k] = v.clone();
        }
        invalid(Method::POST, "/v1/uploads", body)
    };
    let mut cases = Vec::new();
    for name in [
        String::new(),
        "a/b".into(),
        "/".into(),
        "a\nb".into(),
        "a\rb".into(),
        "a\tb".into(),
        "a\u{0}b".into(),
        "a\u{7f}b".into(),
        "a\u{85}b".into(),
        ".".into(),
        "..".into(),
        "a".repeat(256),
        "é".repeat(128),
    ] {
        cases.push(create(json!({ "name": name })));
    }
    for size in [
        json!(5 * TIB + 1),
        json!(-1),
        json!(1.5),
        json!(u64::MAX),
        json!("1"),
    ] {
        cases.push(create(json!({ "size": size })));
    }
    for part_size in [0, 1, 5 * MIB - 1, 5 * 1024 * MIB + 1] {
        cases.push(create(json!({ "part_size": part_size })));
    }
    cases.push(create(json!({ "part_size": -5 })));
    for sha in [
        "abc".to_string(),
        "g".repeat(64),
        "a".repeat(63),
        "a".repeat(65),
        format!("{} ", "a".repeat(63)),
        String::new(),
    ] {
        cases.push(create(json!({ "sha256": sha })));
    }
    for content_type in [
        String::new(),
        "text".into(),
        "a/b/c".into(),
        "/plain".into(),
        "text/".into(),
        "text/plain\r\nX-Injected: 1".into(),
        "text/plä".into(),
        format!("a/{}", "b".repeat(254)),
    ] {
        cases.push(create(json!({ "content_type": content_type })));
    }
    expect_all(&app, cases).await;

    // The limits themselves are accepted, and nothing above left an upload behind.
    assert!(upload_ids(&app.list_uploads().await).is_empty());
    for body in [
        json!({"name": "é".repeat(127) + "a", "size": 0}),
        json!({"name": "x", "size": 5 * TIB, "part_size": 5 * 1024 * MIB,
               "sha256": "A".repeat(64), "content_type": "text/plain; charset=utf-8"}),
        json!({"name": "y", "size": 6 * MIB, "part_size": 5 * MIB}),
    ] {
        app.post("/v1/uploads", body).await.expect(201);
    }
}

/// Rename takes the same file-name rules as create, and a refused rename leaves the name as it was.
#[tokio::test]
async fn rename_rejects_bad_names_and_keeps_the_old_one() {
    let app = TestApp::new().await;
    let owned = own_things(&app, 41).await;
    let path = path(RouteKey::RenameFile, &owned.file_id);
    let cases = [
        String::new(),
        "a/b".into(),
        "a\nb".into(),
        "a\u{1b}[31mb".into(),
        "..".into(),
        "a".repeat(256),
        "é".repeat(128),
    ]
    .into_iter()
    .map(|name| invalid(Method::PATCH, &path, json!({ "name": name })))
    .collect();
    expect_all(&app, cases).await;
    assert_eq!(app.file(&owned.file_id).await.name, owned.name);
}

/// Presign checks its list before signing anything: 1..1000 distinct part numbers within the
/// upload's plan, checksums only for listed parts (keys in canonical form, so each one is
/// really bound to its part) and each the base64 of 32 bytes.
#[tokio::test]
async fn presign_rejects_bad_part_numbers_and_checksums() {
    let app = TestApp::new().await;
    // 12 MiB in 5 MiB parts: parts 1..=3, created for part checksums.
    let upload: CreateUploadResponse = app
        .post(
            "/v1/uploads",
            json!({"name": "p.bin", "size": 12 * 1024 * 1024, "part_size": 5 * 1024 * 1024,
                   "checksum_algorithm": "SHA256"}),
        )
        .await
        .expect_body(201);
    assert_eq!(upload.part_count, 3);
    let path = path(RouteKey::PresignParts, &upload.upload_id);
    let sum = STANDARD.encode([7u8; 32]);
    let numbers = |code: &'static str, part_numbers: Value| {
        Case::new(Method::POST, &path, 400, code).json(json!({ "part_numbers": part_numbers }))
    };
    let checksums = |code: &'static str, checksums: Value| {
        Case::new(Method::POST, &path, 400, code)
            .json(json!({"part_numbers": [1, 2], "checksums_sha256": checksums}))
    };
    let cases = vec![
        numbers("invalid_part_numbers", json!([])),
        numbers(
            "invalid_part_numbers",
            json!((1..=1001).collect::<Vec<u32>>()),
        ),
        numbers("invalid_part_numbers", json!([4])),
        numbers("invalid_part_numbers", json!([1, 4])),
        numbers("invalid_part_numbers", json!([1, 1])),
        numbers("invalid_part_numbers", json!([2, 3, 2])),
        numbers("invalid_request", json!([0])),
        numbers("invalid_request", json!([-1])),
        numbers("invalid_request", json!([1.5])),
        numbers("invalid_request", json!([10_001])),
        numbers("invalid_request", json!([u64::MAX])),
        checksums("invalid_checksums", json!({ "3": sum })),
        checksums("invalid_checksums", json!({ "abc": sum })),
        checksums("invalid_checksums", json!({ "": sum })),
        checksums("invalid_checksums", json!({ "01": sum })),
        checksums("invalid_checksums", json!({ "+1": sum })),
        checksums("invalid_checksums", json!({ " 1": sum })),
        checksums("invalid_request", json!({ "1": "AAAA" })),
        checksums("invalid_request", json!({ "1": "not base64!" })),
        checksums(
            "invalid_request",
            json!({ "1": STANDARD.encode([7u8; 31]) }),
        ),
        checksums(
            "invalid_request",
            json!({ "1": STANDARD.encode([7u8; 33]) }),
        ),
        checksums("invalid_request", json!({ "1": hex_of_32() })),
        checksums("invalid_request", json!({ "1": 5 })),
        checksums("invalid_request", json!([sum])),
    ];
    expect_all(&app, cases).await;

    // A well-formed request still works, with the checksum bound to its part.
    let parts = app
        .post(
            &path,
            json!({"part_numbers": [1, 3], "checksums_sha256": {"1": sum, "3": sum}}),
        )
        .await
        .expect_body::<PresignPartsResponse>(200)
        .parts;
    assert_eq!(parts[1].headers.get("x-amz-checksum-sha256"), Some(&sum));
}

/// A SHA-256 written as hex: a digest, but not the base64 S3 wants.
fn hex_of_32() -> String {
    "ab".repeat(32)
}

/// `GET /v1/files` takes `limit` 1..1000 (else 400 `invalid_limit`) and only cursors it made
/// (else 400 `invalid_cursor`); `download` takes only a boolean `redirect`.
#[tokio::test]
async fn list_and_download_reject_bad_query_parameters() {
    let app = TestApp::new().await;
    let owned = own_things(&app, 51).await;
    let mut cases = Vec::new();
    for limit in ["0", "1001", "abc", "-1", "1.5", "", "99999999999", "%20"] {
        cases.push(Case::new(
            Method::GET,
            format!("/v1/files?limit={limit}"),
            400,
            "invalid_limit",
        ));
    }
    let garbage = [
        "abc".to_string(),
        "!!!".into(),
        URL_SAFE_NO_PAD.encode([0xffu8, 0x00, 0x13, 0x37]),
        URL_SAFE_NO_PAD.encode("f1:not-a-uuid"),
        URL_SAFE_NO_PAD.encode("f1:../../x"),
        URL_SAFE_NO_PAD.encode(format!("f2:{}", owned.file_id)),
        URL_SAFE_NO_PAD.encode(owned.file_id.as_str()),
        STANDARD.encode(format!("f1:{}{{", owned.file_id)),
        owned.file_id.to_string(),
    ];
    for cursor in &garbage {
        cases.push(Case::new(
            Method::GET,
            format!("/v1/files?cursor={}", urlencode(cursor)),
            400,
            "invalid_cursor",
        ));
    }
    for limit in ["0", "1001", "abc", "-1", ""] {
        cases.push(Case::new(
            Method::GET,
            format!("/v1/uploads?limit={limit}"),
            400,
            "invalid_limit",
        ));
    }
    let upload_garbage = [
        "abc".to_string(),
        URL_SAFE_NO_PAD.encode("u1:not-a-uuid"),
        // A files cursor is not an uploads cursor, nor a bare id.
        URL_SAFE_NO_PAD.encode(format!("f1:{}", owned.active_upload_id)),
        URL_SAFE_NO_PAD.encode(owned.active_upload_id.as_str()),
        owned.active_upload_id.to_string(),
    ];
    for cursor in &upload_garbage {
        cases.push(Case::new(
            Method::GET,
            format!("/v1/uploads?cursor={}", urlencode(cursor)),
            400,
            "invalid_cursor",
        ));
    }
    for flag in ["yes", "TRUE", "2", ""] {
        cases.push(Case::new(
            Method::GET,
            format!(
                "{}?redirect={flag}",
                path(RouteKey::DownloadFile, &owned.file_id)
            ),
            400,
            "invalid_redirect",
        ));
    }
    expect_all(&app, cases).await;

    // The bounds are accepted.
    for limit in [1, 1000] {
        let page: FileList = app
            .get(&format!("/v1/files?limit={limit}"))
            .await
            .expect_body(200);
        assert_eq!(file_ids(&page), vec![owned.file_id.clone()]);
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// An id in the path that this server could not have made is a 404 `not_found` on every
/// route that takes one, for the owner too (never a 400 or 500 that tells ids apart).
#[tokio::test]
async fn malformed_ids_in_the_path_are_404() {
    let app = TestApp::new().await;
    let real = uuid::Uuid::now_v7();
    let ids = [
        "not-a-uuid".to_string(),
        "123".into(),
        real.to_string().to_uppercase(),
        real.simple().to_string(),
        format!("{{{real}}}"),
        format!("{real}x"),
        "%00".into(),
        "%2F".into(),
        "a%20b".into(),
        "'%20OR%20'1'='1".into(),
        "USER%23x".into(),
        "x".repeat(2000),
    ];
    let mut cases = Vec::new();
    for id in &ids {
        for key in RouteKey::ALL
            .into_iter()
            .filter(|key| key.param().is_some())
        {
            let mut case = Case::new(key.method(), key.fill(id), 404, "not_found");
            if matches!(key.method(), Method::POST | Method::PATCH) {
                case = case.json(match key {
                    RouteKey::PresignParts => json!({"part_numbers": [1]}),
                    RouteKey::RenameFile => json!({"name": "x"}),
                    _ => json!({}),
                });
            }
            cases.push(case);
        }
    }
    expect_all(&app, cases).await;
}

/// Unknown paths are 404 `not_found` and known paths with another method 405
/// `method_not_allowed`, with or without a token, always with the error body.
#[tokio::test]
async fn unknown_paths_are_404_and_wrong_methods_are_405() {
    let app = TestApp::new().await;
    let id = uuid::Uuid::now_v7();
    let mut cases = Vec::new();
    // `GET /` is the web page (tests/web.rs); other methods there are the API's 404.
    cases.push(Case::new(Method::POST, "/", 404, "not_found").json(json!({})));
    for path in [
        "/app.js.map".to_string(),
        "/v1".into(),
        "/v1/".into(),
        "/v1/nope".into(),
        "/v2/files".into(),
        "/v1/files/".into(),
        "/v1/uploads/".into(),
        "/v1/FILES".into(),
        format!("/v1/files/{id}/nope"),
        format!("/v1/files/{id}/download/x"),
        format!("/v1/uploads/{id}/parts/1"),
        "/v1/auth".into(),
        "/v1/auth/logout".into(),
        "/v1/me/".into(),
    ] {
        cases.push(Case::new(Method::GET, path.clone(), 404, "not_found"));
        cases.push(Case::new(Method::POST, path, 404, "not_found").json(json!({})));
    }
    for (method, path) in [
        (Method::GET, "/v1/auth/signup".to_string()),
        (Method::GET, "/v1/auth/login".into()),
        (Method::PUT, "/v1/auth/login".into()),
        (Method::POST, "/v1/me".into()),
        (Method::DELETE, "/v1/me".into()),
        (Method::PUT, "/v1/uploads".into()),
        (Method::DELETE, "/v1/uploads".into()),
        (Method::PUT, format!("/v1/uploads/{id}")),
        (Method::PATCH, format!("/v1/uploads/{id}")),
        (Method::POST, format!("/v1/uploads/{id}")),
        (Method::GET, format!("/v1/uploads/{id}/parts")),
        (Method::PUT, format!("/v1/uploads/{id}/parts")),
        (Method::GET, format!("/v1/uploads/{id}/complete")),
        (Method::POST, "/v1/files".into()),
        (Method::DELETE, "/v1/files".into()),
        (Method::PUT, format!("/v1/files/{id}")),
        (Method::POST, format!("/v1/files/{id}")),
        (Method::POST, format!("/v1/files/{id}/download")),
        (Method::DELETE, format!("/v1/files/{id}/download")),
    ] {
        cases.push(Case::new(method, path, 405, "method_not_allowed"));
    }
    let anon = TestApp::anonymous();
    expect_all(&app, cases.clone()).await;
    expect_all(&anon, cases).await;
}

/// A body one byte over 128 KiB is refused with 413 `body_too_large` on every route that
/// takes one, before it is parsed; a body of exactly 128 KiB is parsed (and here refused as
/// the bad input it is, a 400). A body of several MiB gets the same clean 413, not a reset.
#[tokio::test]
async fn bodies_over_128_kib_are_413() {
    let app = TestApp::new().await;
    let owned = own_things(&app, 61).await;
    let upload = &owned.active_upload_id;
    let routes = [
        (Method::POST, "/v1/auth/signup".to_string()),
        (Method::POST, "/v1/auth/login".into()),
        (Method::POST, "/v1/uploads".into()),
        (Method::POST, path(RouteKey::PresignParts, upload)),
        (Method::POST, path(RouteKey::CompleteUpload, upload)),
        (Method::PATCH, path(RouteKey::RenameFile, &owned.file_id)),
    ];
    let padded = |len: usize| {
        let head = r#"{"name":""#;
        let tail = r#""}"#;
        format!("{head}{}{tail}", "x".repeat(len - head.len() - tail.len()))
    };
    let mut cases = Vec::new();
    for (method, path) in &routes {
        cases.push(
            Case::new(method.clone(), path, 413, "body_too_large").raw(padded(MAX_BODY_BYTES + 1)),
        );
        cases.push(
            Case::new(method.clone(), path, 400, "invalid_request").raw(padded(MAX_BODY_BYTES)),
        );
        cases.push(
            Case::new(method.clone(), path, 413, "body_too_large")
                .raw(padded(4 * MAX_BODY_BYTES * 8)),
        );
    }
    expect_all(&app, cases).await;
    assert_eq!(app.file(&owned.file_id).await.name, owned.name);
}

/// A completed upload cannot be presigned or aborted (409 `upload_completed`); completing it
/// again answers the same File (201), never a second one (DESIGN.md).
#[tokio::test]
async fn a_completed_upload_refuses_presign_and_abort_and_completes_to_the_same_file() {
    let app = TestApp::new().await;
    let owned = own_things(&app, 71).await;
    let upload = &owned.completed_upload_id;
    expect_all(
        &app,
        vec![
            Case::route(RouteKey::PresignParts, upload, 409, "upload_completed")
                .json(json!({"part_numbers": [1]})),
            Case::route(RouteKey::AbortUpload, upload, 409, "upload_completed"),
        ],
    )
    .await;
    let again = app.complete(upload).await;
    assert_eq!(again.file_id, owned.file_id);
    assert_eq!(
        file_ids(&app.list_files().await),
        vec![owned.file_id.clone()]
    );
    assert_eq!(app.me().await.file_count, 1);
}

/// Completing before every part is in S3 is a 409 `parts_missing`, and the upload stays active.
#[tokio::test]
async fn completing_with_parts_missing_is_409() {
    let app = TestApp::new().await;
    let upload = app.create_upload("gap.bin", 1024, None).await;
    let id = &upload.upload_id;
    app.post(&path(RouteKey::CompleteUpload, id), json!({}))
        .await
        .expect_error(409, "parts_missing");
    assert_eq!(app.upload_status(id).await.state, UploadState::Active);
}

/// CORS comes from the allow-list only: a listed origin gets its own name back (never `*`,
/// never credentials) on preflights and answers; any other origin gets no CORS headers.
#[tokio::test]
async fn cors_allows_only_listed_origins() {
    let app = TestApp::new().await;
    let http = http_client();
    let url = format!("{}/v1/me", base_url());
    let preflight = |origin: &'static str| {
        http.request(Method::OPTIONS, &url)
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .header("access-control-request-headers", "authorization")
            .send()
    };
    let ok = preflight(filestore_dev::TEST_ORIGIN).await.unwrap();
    assert_eq!(ok.status(), 204);
    assert_eq!(
        ok.headers()["access-control-allow-origin"],
        filestore_dev::TEST_ORIGIN
    );
    assert!(
        ok.headers()["access-control-allow-headers"]
            .to_str()
            .unwrap()
            .contains("authorization")
    );
    assert!(
        ok.headers()
            .get("access-control-allow-credentials")
            .is_none()
    );
    let evil = preflight("https://evil.example").await.unwrap();
    assert!(evil.headers().get("access-control-allow-origin").is_none());

    let token = app.token.clone().unwrap();
    for (origin, allowed) in [
        (filestore_dev::TEST_ORIGIN, true),
        ("https://evil.example", false),
        ("null", false),
    ] {
        let resp = http
            .get(&url)
            .bearer_auth(&token)
            .header("origin", origin)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let acao = resp.headers().get("access-control-allow-origin");
        assert_eq!(acao.map(|v| v.to_str().unwrap()), allowed.then_some(origin));
    }
}

//! A client of the API as the tests use it: a fresh user per test, the upload flow in one
//! call, whole responses with the contract's error shape checked.

use filestore_contract::RouteKey;
use filestore_contract::api::{
    CreateUploadRequest, CreateUploadResponse, DownloadResponse, FileEnvelope, FileList, FileView,
    LoginResponse, MeResponse, PART_METHOD, PresignPartsResponse, PresignedPart, SignupResponse,
    TrashList, UploadList, UploadView,
};
use filestore_contract::domain::{FileName, ObjectSize, PartSize};
use reqwest::StatusCode;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::system::base_url;
use filestore_contract::domain::UserId;

/// Polls `check` every 200 ms until it returns `Some`, for at most `secs` seconds.
pub async fn eventually<T, F, Fut>(secs: u64, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// A response, read whole.
#[derive(Debug)]
pub struct Resp {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub bytes: Vec<u8>,
}

impl Resp {
    /// The id the API gave the request (`x-request-id`), which its log lines and metrics carry.
    #[track_caller]
    pub fn request_id(&self) -> String {
        self.headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .expect("an x-request-id header")
            .to_string()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.bytes).unwrap_or_else(|e| {
            panic!(
                "not JSON ({e}): {:?} {}",
                self.status,
                String::from_utf8_lossy(&self.bytes)
            )
        })
    }

    /// Asserts the status and, for errors, the contract's error body with this code.
    #[track_caller]
    pub fn expect(&self, status: u16) -> Value {
        assert_eq!(
            self.status.as_u16(),
            status,
            "body: {}",
            String::from_utf8_lossy(&self.bytes)
        );
        if self.bytes.is_empty() {
            Value::Null
        } else {
            self.json()
        }
    }

    /// Asserts the status and reads the body as a contract type.
    #[track_caller]
    pub fn expect_body<T: DeserializeOwned>(&self, status: u16) -> T {
        let body = self.expect(status);
        serde_json::from_value(body.clone())
            .unwrap_or_else(|e| panic!("not the expected body ({e}): {body}"))
    }

    /// Asserts an error status and code, and that the body is exactly the error shape.
    #[track_caller]
    pub fn expect_error(&self, status: u16, code: &str) {
        let body = self.expect(status);
        assert_eq!(body["error"]["code"], code, "body: {body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "error message missing: {body}"
        );
        assert_eq!(
            body.as_object().map(|o| o.len()),
            Some(1),
            "extra fields: {body}"
        );
        assert_eq!(
            self.headers
                .get("content-type")
                .and_then(|v| v.to_str().ok()),
            Some("application/json")
        );
    }
}

/// An HTTP client of the API, optionally logged in as a fresh user.
pub struct TestApp {
    pub base: String,
    pub http: reqwest::Client,
    pub token: Option<String>,
    /// The user's id; for a client with no account, an id no account has.
    pub user_id: UserId,
    pub username: String,
    pub password: String,
}

pub fn unique_name(prefix: &str) -> String {
    format!(
        "{prefix}{}",
        &uuid::Uuid::new_v4().simple().to_string()[..16]
    )
}

/// A client of the API. Every test's requests go through one, so the functions' output is
/// captured from before the first ([`crate::output::capture`]).
pub fn http_client() -> reqwest::Client {
    crate::output::capture();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("http client")
}

impl TestApp {
    /// A client with no account, of the API the tests run against ([`base_url`]).
    pub fn anonymous() -> Self {
        Self::anonymous_at(base_url())
    }

    /// A client with no account, of the API at `base`.
    pub fn anonymous_at(base: &str) -> Self {
        Self {
            base: base.to_string(),
            http: http_client(),
            token: None,
            user_id: UserId::generate(),
            username: String::new(),
            password: String::new(),
        }
    }

    /// Signs up and logs in a fresh user on the API the tests run against ([`base_url`]).
    pub async fn new() -> Self {
        Self::new_at(base_url()).await
    }

    /// Signs up and logs in a fresh user on the API at `base`.
    pub async fn new_at(base: &str) -> Self {
        let mut app = Self::anonymous_at(base);
        let username = unique_name("user_");
        let password = "correct horse battery".to_string();
        let credentials = json!({"username": username, "password": password});
        let signup: SignupResponse = app
            .post(RouteKey::Signup.template(), credentials.clone())
            .await
            .expect_body(201);
        app.user_id = signup.user_id;
        let login: LoginResponse = app
            .post(RouteKey::Login.template(), credentials)
            .await
            .expect_body(200);
        app.token = Some(login.token);
        app.username = username;
        app.password = password;
        app
    }

    /// The same user with another (or no) token.
    pub fn with_token(&self, token: Option<&str>) -> Self {
        Self {
            base: self.base.clone(),
            http: self.http.clone(),
            token: token.map(str::to_string),
            user_id: self.user_id.clone(),
            username: self.username.clone(),
            password: self.password.clone(),
        }
    }

    pub async fn send(&self, method: reqwest::Method, path: &str, body: Option<Vec<u8>>) -> Resp {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = &self.token {
            req = req.bearer_auth(token);
        }
        if let Some(body) = body {
            req = req.header("content-type", "application/json").body(body);
        }
        let resp = req.send().await.expect("request sent");
        Resp {
            status: resp.status(),
            headers: resp.headers().clone(),
            bytes: resp.bytes().await.expect("body").to_vec(),
        }
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.send(reqwest::Method::GET, path, None).await
    }

    pub async fn delete(&self, path: &str) -> Resp {
        self.send(reqwest::Method::DELETE, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Resp {
        self.send(
            reqwest::Method::POST,
            path,
            Some(body.to_string().into_bytes()),
        )
        .await
    }

    pub async fn patch(&self, path: &str, body: Value) -> Resp {
        self.send(
            reqwest::Method::PATCH,
            path,
            Some(body.to_string().into_bytes()),
        )
        .await
    }

    /// Creates an upload (201) and returns it.
    pub async fn create_upload(
        &self,
        name: &str,
        size: usize,
        part_size: Option<usize>,
    ) -> CreateUploadResponse {
        let body = CreateUploadRequest {
            name: FileName::parse(name).expect("a valid file name"),
            size: ObjectSize::parse(size as u64).expect("a valid size"),
            sha256: None,
            content_type: None,
            part_size: part_size.map(|p| PartSize::parse(p as u64).expect("a valid part size")),
            checksum_algorithm: None,
            parent_id: None,
            on_conflict: None,
        };
        self.post(RouteKey::CreateUpload.template(), json!(body))
            .await
            .expect_body(201)
    }

    /// Presigns parts (200) and returns them.
    pub async fn presign(&self, upload_id: impl AsRef<str>, parts: &[u64]) -> Vec<PresignedPart> {
        self.post(
            &path(RouteKey::PresignParts, upload_id),
            json!({"part_numbers": parts}),
        )
        .await
        .expect_body::<PresignPartsResponse>(200)
        .parts
    }

    /// PUTs bytes to a presigned part exactly as a client must: the URL, the method and the
    /// headers it came with. Returns the status.
    /// `Content-Length` is set even for an empty body (hyper leaves it out then): the URL
    /// signs it.
    pub async fn put_part(&self, part: &PresignedPart, bytes: Vec<u8>) -> u16 {
        assert_eq!(part.method, PART_METHOD);
        let mut req = self
            .http
            .put(&part.url)
            .header(reqwest::header::CONTENT_LENGTH, bytes.len());
        for (name, value) in &part.headers {
            req = req.header(name, value);
        }
        req.body(bytes)
            .send()
            .await
            .expect("part PUT")
            .status()
            .as_u16()
    }

    /// Sends the given parts of `data` under the upload's plan.
    pub async fn send_parts(&self, upload: &CreateUploadResponse, data: &[u8], parts: &[u64]) {
        let part_size = upload.part_size as usize;
        for part in self.presign(&upload.upload_id, parts).await {
            let start = (part.part_number as usize - 1) * part_size;
            let end = (start + part_size).min(data.len());
            assert_eq!(self.put_part(&part, data[start..end].to_vec()).await, 200);
        }
    }

    /// Completes an upload (201) and returns the File it made.
    pub async fn complete(&self, upload_id: impl AsRef<str>) -> FileView {
        self.post(&path(RouteKey::CompleteUpload, upload_id), json!({}))
            .await
            .expect_body::<FileEnvelope>(201)
            .file
    }

    /// Uploads `data` through the whole flow and returns the File.
    pub async fn upload(&self, name: &str, data: &[u8], part_size: Option<usize>) -> FileView {
        let upload = self.create_upload(name, data.len(), part_size).await;
        let all: Vec<u64> = (1..=upload.part_count).collect();
        self.send_parts(&upload, data, &all).await;
        self.complete(&upload.upload_id).await
    }

    /// The File (200).
    pub async fn file(&self, file_id: impl AsRef<str>) -> FileView {
        self.get(&path(RouteKey::GetFile, file_id))
            .await
            .expect_body(200)
    }

    /// The first page of the user's files (200).
    pub async fn list_files(&self) -> FileList {
        self.get(RouteKey::ListFiles.template())
            .await
            .expect_body(200)
    }

    /// The user's unfinished uploads (200).
    pub async fn list_uploads(&self) -> UploadList {
        self.get(RouteKey::ListUploads.template())
            .await
            .expect_body(200)
    }

    /// An upload with the parts S3 holds (200).
    pub async fn upload_status(&self, upload_id: impl AsRef<str>) -> UploadView {
        self.get(&path(RouteKey::UploadStatus, upload_id))
            .await
            .expect_body(200)
    }

    /// The user's account and usage (200).
    pub async fn me(&self) -> MeResponse {
        self.get(RouteKey::Me.template()).await.expect_body(200)
    }

    /// Waits until the transfer has verified a file, and returns it.
    pub async fn verified(&self, file_id: impl AsRef<str>) -> FileView {
        let file_id = file_id.as_ref();
        eventually(60, "the file to be verified", || async {
            let file = self.file(file_id).await;
            file.verified.then_some(file)
        })
        .await
    }

    /// Moves a file to the trash (204), then purges it (204): what a v1 delete did.
    pub async fn delete_for_good(&self, file_id: impl AsRef<str>) {
        let file_id = file_id.as_ref();
        self.delete(&path(RouteKey::DeleteFile, file_id))
            .await
            .expect(204);
        self.delete(&path(RouteKey::PurgeTrash, file_id))
            .await
            .expect(204);
    }

    /// The first page of the user's trash (200).
    pub async fn trash(&self) -> TrashList {
        self.get(RouteKey::ListTrash.template())
            .await
            .expect_body(200)
    }

    /// A file's presigned download URL (200).
    pub async fn download_url(&self, file_id: impl AsRef<str>) -> String {
        self.get(&path(RouteKey::DownloadFile, file_id))
            .await
            .expect_body::<DownloadResponse>(200)
            .url
    }

    /// Downloads a file's bytes through its presigned URL.
    pub async fn download(&self, file_id: impl AsRef<str>) -> Vec<u8> {
        let url = self.download_url(file_id).await;
        let resp = self.http.get(url).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        resp.bytes().await.unwrap().to_vec()
    }
}

/// The path of a route with a path parameter, e.g. `path(RouteKey::GetFile, id)` is
/// `/v1/files/<id>`, `path(RouteKey::OpenShare, token)` is `/v1/s/<token>`.
pub fn path(route: RouteKey, id: impl AsRef<str>) -> String {
    assert!(
        route.param().is_some(),
        "{} takes no parameter",
        route.template()
    );
    route.fill(id.as_ref())
}

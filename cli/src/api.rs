//! [`Api`]: a typed client of the HTTP contract (DESIGN.md). Every non-2xx answer becomes
//! [`Error::Api`] with the server's own `code` and `message`.
//!
//! The bodies are declared here rather than taken from `filestore-shared`, so the CLI does
//! not link the AWS SDK. Responses keep fields this version does not know (`extra`), so
//! `--json` passes the server's objects through whole.

use std::time::Duration;

use reqwest::{Method, RequestBuilder, StatusCode, Url};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::error::{Error, Result};

/// How long one API call (not a part transfer) may take.
const API_TIMEOUT: Duration = Duration::from_secs(60);
/// The largest page `GET /v1/files` serves.
const LIST_PAGE: u32 = 1000;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SignupResponse {
    pub user_id: String,
    pub username: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LoginResponse {
    pub token: String,
    pub token_type: String,
    pub expires_in: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Me {
    pub user_id: String,
    pub username: String,
    pub created_at: String,
    pub used_bytes: u64,
    pub quota_bytes: u64,
    pub file_count: u64,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The contract's File object.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct File {
    pub file_id: String,
    pub name: String,
    pub size: u64,
    pub sha256: Option<String>,
    pub content_type: String,
    pub created_at: String,
    pub tier: String,
    pub verified: bool,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Deserialize)]
struct FilePage {
    files: Vec<File>,
    next_cursor: Option<String>,
}

#[derive(Debug, Deserialize)]
struct FileEnvelope {
    file: File,
}

/// `POST /v1/files/{id}/shares`.
#[derive(Debug, Serialize, Deserialize)]
pub struct CreatedShare {
    pub share_id: String,
    pub url: String,
    pub expires_at: String,
    pub max_downloads: Option<u64>,
}

/// One of `GET /v1/files/{id}/shares`.
#[derive(Debug, Serialize, Deserialize)]
pub struct Share {
    pub share_id: String,
    pub expires_at: String,
    pub max_downloads: Option<u64>,
    pub downloads: u64,
}

#[derive(Debug, Deserialize)]
struct ShareList {
    shares: Vec<Share>,
}

#[derive(Debug, Deserialize)]
pub struct DownloadUrl {
    pub url: String,
}

/// `POST /v1/uploads`.
#[derive(Debug, Serialize)]
pub struct CreateUpload<'a> {
    pub name: &'a str,
    pub size: u64,
    pub sha256: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub part_size: Option<u64>,
}

/// The server's plan for a new upload.
#[derive(Clone, Debug, Deserialize)]
pub struct UploadPlan {
    pub upload_id: String,
    pub part_size: u64,
    pub part_count: u64,
    /// RFC 3339; after it the server forgets the upload.
    #[serde(default)]
    pub expires_at: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct PresignedPart {
    pub part_number: u32,
    pub url: String,
    pub method: String,
    pub headers: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
struct PresignedParts {
    parts: Vec<PresignedPart>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct PartDone {
    pub part_number: u32,
}

/// `GET /v1/uploads/{id}`: where an upload stands, with the parts S3 holds.
#[derive(Clone, Debug, Deserialize)]
pub struct UploadStatus {
    pub size: u64,
    pub part_size: u64,
    pub part_count: u64,
    #[serde(default)]
    pub parts_done: Vec<PartDone>,
    pub state: String,
    pub file_id: Option<String>,
}

/// `POST /v1/fast-upload`.
#[derive(Debug, Serialize)]
pub struct FastUpload<'a> {
    pub name: &'a str,
    pub size: u64,
    pub sha256: &'a str,
}

/// One challenged byte range of the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ByteRange {
    pub offset: u64,
    pub length: u64,
}

/// The server's challenge: prove possession of the bytes by hashing the nonce and ranges.
#[derive(Clone, Debug, Deserialize)]
pub struct Challenge {
    pub challenge_id: String,
    pub nonce: String,
    pub ranges: Vec<ByteRange>,
}

/// The answer to a proof: `"complete"` with the new file, or `"upload_required"`.
#[derive(Clone, Debug, Deserialize)]
pub struct ProofOutcome {
    pub status: String,
    pub file: Option<File>,
}

#[derive(Debug, Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Debug, Deserialize)]
struct ErrorDetail {
    code: String,
    message: String,
}

/// A client of one server, with or without a token.
#[derive(Clone)]
pub struct Api {
    http: reqwest::Client,
    base: Url,
    token: Option<String>,
}

impl Api {
    /// # Errors
    /// A server URL that does not parse.
    pub fn new(server: &str, token: Option<String>) -> Result<Self> {
        let base = Url::parse(server)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.has_host())
            .ok_or_else(|| {
                Error::Usage(format!(
                    "--server {server:?} is not an http(s) URL such as http://127.0.0.1:8080"
                ))
            })?;
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| Error::Failed(format!("cannot start the HTTP client: {e}")))?;
        Ok(Self { http, base, token })
    }

    /// The HTTP client, shared with part and download transfers (they go to presigned URLs).
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// `base` + `/`-joined segments, each percent-encoded (ids come from the command line).
    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    fn request(&self, method: Method, segments: &[&str]) -> Result<RequestBuilder> {
        let req = self
            .http
            .request(method, self.url(segments))
            .timeout(API_TIMEOUT);
        Ok(match &self.token {
            Some(token) => req.bearer_auth(token),
            None => return Err(Error::NotLoggedIn),
        })
    }

    fn anonymous(&self, method: Method, segments: &[&str]) -> RequestBuilder {
        self.http
            .request(method, self.url(segments))
            .timeout(API_TIMEOUT)
    }

    async fn send(&self, req: RequestBuilder) -> Result<reqwest::Response> {
        let resp = req
            .send()
            .await
            .map_err(|e| Error::transport(&format!("the server at {}", self.base), &e))?;
        if resp.status().is_success() {
            Ok(resp)
        } else {
            Err(api_error(resp).await)
        }
    }

    async fn json<T: DeserializeOwned>(&self, req: RequestBuilder) -> Result<T> {
        let resp = self.send(req).await?;
        let status = resp.status();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| Error::transport("the server", &e))?;
        serde_json::from_slice(&bytes).map_err(|e| {
            Error::Failed(format!(
                "the server answered {status} with a body this client does not understand ({e})"
            ))
        })
    }

    pub async fn signup(&self, username: &str, password: &str) -> Result<SignupResponse> {
        let body = json!({"username": username, "password": password});
        self.json(
            self.anonymous(Method::POST, &["v1", "auth", "signup"])
                .json(&body),
        )
        .await
    }

    pub async fn login(&self, username: &str, password: &str) -> Result<LoginResponse> {
        let body = json!({"username": username, "password": password});
        self.json(
            self.anonymous(Method::POST, &["v1", "auth", "login"])
                .json(&body),
        )
        .await
    }

    pub async fn me(&self) -> Result<Me> {
        self.json(self.request(Method::GET, &["v1", "me"])?).await
    }

    /// Every file, walking all pages of `GET /v1/files`.
    pub async fn all_files(&self) -> Result<Vec<File>> {
        let mut files = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut req = self
                .request(Method::GET, &["v1", "files"])?
                .query(&[("limit", LIST_PAGE.to_string())]);
            if let Some(c) = &cursor {
                req = req.query(&[("cursor", c)]);
            }
            let page: FilePage = self.json(req).await?;
            files.extend(page.files);
            match page.next_cursor {
                Some(next) if !next.is_empty() => cursor = Some(next),
                _ => return Ok(files),
            }
        }
    }

    pub async fn file(&self, file_id: &str) -> Result<File> {
        self.json(self.request(Method::GET, &["v1", "files", file_id])?)
            .await
    }

    pub async fn download_url(&self, file_id: &str) -> Result<DownloadUrl> {
        self.json(self.request(Method::GET, &["v1", "files", file_id, "download"])?)
            .await
    }

    pub async fn rename(&self, file_id: &str, name: &str) -> Result<File> {
        let req = self
            .request(Method::PATCH, &["v1", "files", file_id])?
            .json(&json!({"name": name}));
        self.json(req).await
    }

    pub async fn delete(&self, file_id: &str) -> Result<()> {
        self.send(self.request(Method::DELETE, &["v1", "files", file_id])?)
            .await
            .map(drop)
    }

    pub async fn share(
        &self,
        file_id: &str,
        expires_in: u64,
        max_downloads: Option<u64>,
    ) -> Result<CreatedShare> {
        let mut body = json!({ "expires_in": expires_in });
        if let Some(max) = max_downloads {
            body["max_downloads"] = json!(max);
        }
        let req = self
            .request(Method::POST, &["v1", "files", file_id, "shares"])?
            .json(&body);
        self.json(req).await
    }

    pub async fn shares(&self, file_id: &str) -> Result<Vec<Share>> {
        let req = self.request(Method::GET, &["v1", "files", file_id, "shares"])?;
        Ok(self.json::<ShareList>(req).await?.shares)
    }

    pub async fn unshare(&self, share_id: &str) -> Result<()> {
        self.send(self.request(Method::DELETE, &["v1", "shares", share_id])?)
            .await
            .map(drop)
    }

    pub async fn change_password(&self, old: &str, new: &str) -> Result<()> {
        let req = self
            .request(Method::POST, &["v1", "auth", "password"])?
            .json(&json!({ "old_password": old, "new_password": new }));
        self.send(req).await.map(drop)
    }

    pub async fn create_upload(&self, input: &CreateUpload<'_>) -> Result<UploadPlan> {
        self.json(self.request(Method::POST, &["v1", "uploads"])?.json(input))
            .await
    }

    /// Presigned URLs for these parts (at most 1000, the contract's limit per call).
    pub async fn presign(&self, upload_id: &str, parts: &[u32]) -> Result<Vec<PresignedPart>> {
        let req = self
            .request(Method::POST, &["v1", "uploads", upload_id, "parts"])?
            .json(&json!({ "part_numbers": parts }));
        Ok(self.json::<PresignedParts>(req).await?.parts)
    }

    pub async fn upload_status(&self, upload_id: &str) -> Result<UploadStatus> {
        self.json(self.request(Method::GET, &["v1", "uploads", upload_id])?)
            .await
    }

    /// Asks for a proof-of-possession challenge (always given, whether or not the content
    /// is stored).
    pub async fn fast_upload(&self, input: &FastUpload<'_>) -> Result<Challenge> {
        self.json(
            self.request(Method::POST, &["v1", "fast-upload"])?
                .json(input),
        )
        .await
    }

    /// Answers a challenge.
    pub async fn prove(&self, challenge_id: &str, proof: &str) -> Result<ProofOutcome> {
        let req = self
            .request(Method::POST, &["v1", "fast-upload", challenge_id, "proof"])?
            .json(&json!({ "proof": proof }));
        self.json(req).await
    }

    pub async fn complete(&self, upload_id: &str) -> Result<File> {
        let req = self
            .request(Method::POST, &["v1", "uploads", upload_id, "complete"])?
            .json(&json!({}));
        Ok(self.json::<FileEnvelope>(req).await?.file)
    }
}

/// The contract's error body, or the bare status when the body is not one.
async fn api_error(resp: reqwest::Response) -> Error {
    let status = resp.status();
    let body = resp.bytes().await.unwrap_or_default();
    match serde_json::from_slice::<ErrorBody>(&body) {
        Ok(ErrorBody { error }) => Error::Api {
            status: status.as_u16(),
            code: error.code,
            message: error.message,
        },
        Err(_) => Error::Api {
            status: status.as_u16(),
            code: String::new(),
            message: format!(
                "the server answered {}",
                status.canonical_reason().unwrap_or("an error")
            ),
        },
    }
}

/// Whether an error is the API saying "no such thing" (used to drop stale resume state).
pub fn is_not_found(err: &Error) -> bool {
    matches!(err, Error::Api { status, .. } if *status == StatusCode::NOT_FOUND.as_u16())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_from_the_command_line_stay_one_path_segment() {
        let api = Api::new("http://127.0.0.1:8080/prod/", Some("t".into())).unwrap();
        assert_eq!(
            api.url(&["v1", "files", "../auth/login?x=1"]).as_str(),
            "http://127.0.0.1:8080/prod/v1/files/..%2Fauth%2Flogin%3Fx=1"
        );
        let api = Api::new("http://127.0.0.1:8080", None).unwrap();
        assert_eq!(
            api.url(&["v1", "me"]).as_str(),
            "http://127.0.0.1:8080/v1/me"
        );
    }

    #[test]
    fn a_server_must_be_an_http_url() {
        assert!(matches!(
            Api::new("localhost:8080", None),
            Err(Error::Usage(_))
        ));
        assert!(matches!(Api::new("ftp://x", None), Err(Error::Usage(_))));
    }

    #[test]
    fn authenticated_calls_without_a_token_fail_before_the_network() {
        let api = Api::new("http://127.0.0.1:9", None).unwrap();
        assert!(matches!(
            api.request(Method::GET, &["v1", "me"]),
            Err(Error::NotLoggedIn)
        ));
    }

    #[test]
    fn files_keep_fields_this_version_does_not_know() {
        let raw = r#"{"file_id":"f","name":"a","size":1,"sha256":null,"content_type":"x",
            "created_at":"t","tier":"hot","verified":false,"declared_sha256":"ab"}"#;
        let file: File = serde_json::from_str(raw).unwrap();
        assert_eq!(
            serde_json::to_value(&file).unwrap()["declared_sha256"],
            "ab"
        );
    }
}

//! [`Api`]: a typed client of the HTTP contract (DESIGN.md), speaking the bodies of
//! `filestore-contract` (which links no AWS SDK) on the routes of its route table. Every
//! non-2xx answer becomes [`Error::Api`] with the server's own `code` and `message`.
//!
//! Files and the account come back [`Whole`]: the contract's type plus any fields this
//! version does not know, so `--json` passes the server's objects through whole.

use std::ops::{Deref, DerefMut};
use std::time::Duration;

use filestore_contract::RouteKey;
use filestore_contract::api::{
    ChallengeResponse, CompleteUploadRequest, CreateFolderRequest, CreateShareRequest,
    CreateShareResponse, CreateUploadRequest, CreateUploadResponse, Credentials, DownloadResponse,
    Entry, ErrorBody, FastUploadRequest, FileEnvelope, FileList, FileView, FolderResponse,
    FolderView, LoginResponse, MAX_LIST_LIMIT, MeResponse, MoveRequest, PasswordChange,
    PresignPartsRequest, PresignPartsResponse, PresignedPart, ProofRequest, ProofResponse,
    RestoreRequest, ShareList, SignupResponse, TrashEntryView, UploadView,
};
use filestore_contract::domain::{PartNumber, Sha256Hex};
use reqwest::{RequestBuilder, StatusCode, Url};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// How long one API call (not a part transfer) may take.
const API_TIMEOUT: Duration = Duration::from_secs(60);

/// A server object: the contract's fields, typed, and the fields this version does not
/// know, kept as they came, so that printing it prints the server's object whole.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Whole<T> {
    #[serde(flatten)]
    pub known: T,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl<T> From<T> for Whole<T> {
    fn from(known: T) -> Self {
        Self {
            known,
            extra: Map::new(),
        }
    }
}

impl<T> Deref for Whole<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.known
    }
}

impl<T> DerefMut for Whole<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.known
    }
}

/// The contract's File object, whole.
pub type File = Whole<FileView>;
/// `GET /v1/me`, whole.
pub type Me = Whole<MeResponse>;

/// A client of one server, with or without a token.
#[derive(Clone)]
pub struct Api {
    http: reqwest::Client,
    base: Url,
    token: Option<String>,
    /// The `limit` listings ask for.
    page_limit: u32,
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
        Ok(Self {
            http,
            base,
            token,
            page_limit: MAX_LIST_LIMIT,
        })
    }

    /// Listings ask for pages of `limit` entries (the largest the contract allows if `None`).
    #[must_use]
    pub fn page_limit(mut self, limit: Option<u32>) -> Self {
        self.page_limit = limit.unwrap_or(MAX_LIST_LIMIT);
        self
    }

    /// The HTTP client, shared with part and download transfers (they go to presigned URLs).
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// `base` + the route's path with its path parameter filled in, each segment
    /// percent-encoded (ids come from the command line).
    fn url(&self, route: RouteKey, id: Option<&str>) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty();
            for segment in route.template().split('/').filter(|s| !s.is_empty()) {
                path.push(if segment.starts_with('{') {
                    id.unwrap_or_default()
                } else {
                    segment
                });
            }
        }
        url
    }

    /// A request for `route`, carrying the token unless the route is public.
    ///
    /// # Errors
    /// [`Error::NotLoggedIn`] for a route that needs a token, without one.
    fn request(&self, route: RouteKey, id: Option<&str>) -> Result<RequestBuilder> {
        let req = self
            .http
            .request(route.method(), self.url(route, id))
            .timeout(API_TIMEOUT);
        if route.is_public() {
            return Ok(req);
        }
        match &self.token {
            Some(token) => Ok(req.bearer_auth(token)),
            None => Err(Error::NotLoggedIn),
        }
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
        Ok(self.json_and_value(req).await?.0)
    }

    /// An answer read as the contract's `T`, and as it came (to keep objects in it
    /// [`Whole`]).
    async fn json_and_value<T: DeserializeOwned>(&self, req: RequestBuilder) -> Result<(T, Value)> {
        let resp = self.send(req).await?;
        let status = resp.status();
        let request = request_id(&resp)
            .map(|id| format!(", request id {id}"))
            .unwrap_or_default();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| Error::transport("the server", &e))?;
        let not_understood = |e: serde_json::Error| {
            Error::Failed(format!(
                "the server answered {status} with a body this client does not understand ({e}{request})"
            ))
        };
        let value: Value = serde_json::from_slice(&bytes).map_err(not_understood)?;
        let typed = T::deserialize(&value).map_err(not_understood)?;
        Ok((typed, value))
    }

    pub async fn signup(&self, credentials: &Credentials) -> Result<SignupResponse> {
        self.json(self.request(RouteKey::Signup, None)?.json(credentials))
            .await
    }

    pub async fn login(&self, credentials: &Credentials) -> Result<LoginResponse> {
        self.json(self.request(RouteKey::Login, None)?.json(credentials))
            .await
    }

    pub async fn me(&self) -> Result<Me> {
        self.json(self.request(RouteKey::Me, None)?).await
    }

    /// Every file, walking all pages of `GET /v1/files`.
    pub async fn all_files(&self) -> Result<Vec<File>> {
        let mut files = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut req = self
                .request(RouteKey::ListFiles, None)?
                .query(&[("limit", self.page_limit.to_string())]);
            if let Some(c) = &cursor {
                req = req.query(&[("cursor", c)]);
            }
            let (page, mut value): (FileList, _) = self.json_and_value(req).await?;
            files.extend(whole::<Vec<File>>(value["files"].take())?);
            match page.next_cursor {
                Some(next) if !next.is_empty() => cursor = Some(next),
                _ => return Ok(files),
            }
        }
    }

    /// Every item of a paginated listing (`items` of each page), following `next_cursor`.
    async fn all_pages<T: DeserializeOwned>(
        &self,
        route: RouteKey,
        id: Option<&str>,
        items: &str,
    ) -> Result<Vec<T>> {
        let mut all = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut req = self
                .request(route, id)?
                .query(&[("limit", self.page_limit.to_string())]);
            if let Some(c) = &cursor {
                req = req.query(&[("cursor", c)]);
            }
            let mut page: Value = self.json(req).await?;
            all.extend(whole::<Vec<T>>(page[items].take())?);
            match page["next_cursor"].as_str() {
                Some(next) if !next.is_empty() => cursor = Some(next.to_string()),
                _ => return Ok(all),
            }
        }
    }

    /// The file or folder at an absolute path (`/` is the root folder).
    pub async fn resolve_path(&self, path: &str) -> Result<Entry> {
        let req = self
            .request(RouteKey::ResolvePath, None)?
            .query(&[("path", path)]);
        self.json(req).await
    }

    pub async fn folder(&self, folder_id: &str) -> Result<FolderResponse> {
        self.json(self.request(RouteKey::GetFolder, Some(folder_id))?)
            .await
    }

    /// Every entry of a folder, folders first, walking all pages.
    pub async fn children(&self, folder_id: &str) -> Result<Vec<Entry>> {
        self.all_pages(RouteKey::ListChildren, Some(folder_id), "entries")
            .await
    }

    pub async fn create_folder(&self, body: &CreateFolderRequest) -> Result<FolderView> {
        self.json(self.request(RouteKey::CreateFolder, None)?.json(body))
            .await
    }

    /// Renames and/or moves a file.
    pub async fn move_file(&self, file_id: &str, body: &MoveRequest) -> Result<File> {
        let req = self
            .request(RouteKey::RenameFile, Some(file_id))?
            .json(body);
        self.json(req).await
    }

    /// Renames and/or moves a folder.
    pub async fn move_folder(&self, folder_id: &str, body: &MoveRequest) -> Result<FolderView> {
        let req = self
            .request(RouteKey::MoveFolder, Some(folder_id))?
            .json(body);
        self.json(req).await
    }

    /// Moves a folder and everything below it to the trash (`DELETE /v1/folders/{id}`).
    pub async fn delete_folder(&self, folder_id: &str) -> Result<()> {
        let req = self.request(RouteKey::DeleteFolder, Some(folder_id))?;
        self.send(req).await.map(drop)
    }

    /// Every trash entry, newest first, walking all pages.
    pub async fn trash(&self) -> Result<Vec<TrashEntryView>> {
        self.all_pages(RouteKey::ListTrash, None, "entries").await
    }

    pub async fn restore(&self, id: &str, body: &RestoreRequest) -> Result<Entry> {
        let req = self.request(RouteKey::RestoreTrash, Some(id))?.json(body);
        self.json(req).await
    }

    pub async fn purge(&self, id: &str) -> Result<()> {
        self.send(self.request(RouteKey::PurgeTrash, Some(id))?)
            .await
            .map(drop)
    }

    pub async fn empty_trash(&self) -> Result<()> {
        self.send(self.request(RouteKey::EmptyTrash, None)?)
            .await
            .map(drop)
    }

    pub async fn file(&self, file_id: &str) -> Result<File> {
        self.json(self.request(RouteKey::GetFile, Some(file_id))?)
            .await
    }

    pub async fn download_url(&self, file_id: &str) -> Result<DownloadResponse> {
        self.json(self.request(RouteKey::DownloadFile, Some(file_id))?)
            .await
    }

    pub async fn delete(&self, file_id: &str) -> Result<()> {
        self.send(self.request(RouteKey::DeleteFile, Some(file_id))?)
            .await
            .map(drop)
    }

    pub async fn share(
        &self,
        file_id: &str,
        body: &CreateShareRequest,
    ) -> Result<CreateShareResponse> {
        let req = self
            .request(RouteKey::CreateShare, Some(file_id))?
            .json(body);
        self.json(req).await
    }

    pub async fn shares(&self, file_id: &str) -> Result<ShareList> {
        self.json(self.request(RouteKey::ListShares, Some(file_id))?)
            .await
    }

    pub async fn unshare(&self, share_id: &str) -> Result<()> {
        self.send(self.request(RouteKey::RevokeShare, Some(share_id))?)
            .await
            .map(drop)
    }

    pub async fn change_password(&self, body: &PasswordChange) -> Result<()> {
        let req = self.request(RouteKey::ChangePassword, None)?.json(body);
        self.send(req).await.map(drop)
    }

    pub async fn create_upload(&self, body: &CreateUploadRequest) -> Result<CreateUploadResponse> {
        self.json(self.request(RouteKey::CreateUpload, None)?.json(body))
            .await
    }

    /// Presigned URLs for these parts (at most
    /// [`MAX_PARTS_PER_CALL`](filestore_contract::api::MAX_PARTS_PER_CALL)).
    pub async fn presign(
        &self,
        upload_id: &str,
        parts: &[PartNumber],
    ) -> Result<Vec<PresignedPart>> {
        let body = PresignPartsRequest {
            part_numbers: parts.to_vec(),
            checksums_sha256: None,
        };
        let req = self
            .request(RouteKey::PresignParts, Some(upload_id))?
            .json(&body);
        Ok(self.json::<PresignPartsResponse>(req).await?.parts)
    }

    pub async fn upload_status(&self, upload_id: &str) -> Result<UploadView> {
        self.json(self.request(RouteKey::UploadStatus, Some(upload_id))?)
            .await
    }

    /// Asks for a proof-of-possession challenge (always given, whether or not the content
    /// is stored).
    pub async fn fast_upload(&self, body: &FastUploadRequest) -> Result<ChallengeResponse> {
        self.json(self.request(RouteKey::FastUpload, None)?.json(body))
            .await
    }

    /// Answers a challenge: the new file when the proof matched verified content, `None`
    /// when the bytes must be uploaded.
    pub async fn prove(&self, challenge_id: &str, proof: Sha256Hex) -> Result<Option<File>> {
        let req = self
            .request(RouteKey::FastUploadProof, Some(challenge_id))?
            .json(&ProofRequest { proof });
        match self.json_and_value(req).await? {
            (ProofResponse::Complete { .. }, mut value) => whole(value["file"].take()).map(Some),
            (ProofResponse::UploadRequired, _) => Ok(None),
        }
    }

    /// Aborts an unfinished upload (its parts are dropped).
    pub async fn abort_upload(&self, upload_id: &str) -> Result<()> {
        self.send(self.request(RouteKey::AbortUpload, Some(upload_id))?)
            .await
            .map(drop)
    }

    pub async fn complete(&self, upload_id: &str) -> Result<File> {
        let req = self
            .request(RouteKey::CompleteUpload, Some(upload_id))?
            .json(&CompleteUploadRequest {});
        let (_, mut value): (FileEnvelope, _) = self.json_and_value(req).await?;
        whole(value["file"].take())
    }
}

/// An object of an answer already read as the contract's type, read again [`Whole`].
fn whole<T: DeserializeOwned>(value: Value) -> Result<T> {
    serde_json::from_value(value).map_err(|e| {
        Error::Failed(format!(
            "the server answered with an object this client does not understand ({e})"
        ))
    })
}

/// The contract's error body, or the bare status when the body is not one.
async fn api_error(resp: reqwest::Response) -> Error {
    let status = resp.status();
    let request_id = request_id(&resp);
    let body = resp.bytes().await.unwrap_or_default();
    match serde_json::from_slice::<ErrorBody>(&body) {
        Ok(ErrorBody { error }) => Error::Api {
            status: status.as_u16(),
            code: error.code,
            message: error.message,
            request_id,
        },
        Err(_) => Error::Api {
            status: status.as_u16(),
            code: String::new(),
            message: format!(
                "the server answered {}",
                status.canonical_reason().unwrap_or("an error")
            ),
            request_id,
        },
    }
}

/// The id the server gave the request (`x-request-id`), which its log lines carry.
fn request_id(resp: &reqwest::Response) -> Option<String> {
    resp.headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// Whether an error is the API saying "no such thing" (used to drop stale resume state).
pub fn is_not_found(err: &Error) -> bool {
    matches!(err, Error::Api { status, .. } if *status == StatusCode::NOT_FOUND.as_u16())
}

/// Whether an error is the API's `409` with this `code` (`name_taken`, `cycle`, ...).
pub fn is_conflict(err: &Error, wanted: &str) -> bool {
    matches!(err, Error::Api { status: 409, code, .. } if code == wanted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_from_the_command_line_stay_one_path_segment() {
        let api = Api::new("http://127.0.0.1:8080/prod/", Some("t".into())).unwrap();
        assert_eq!(
            api.url(RouteKey::GetFile, Some("../auth/login?x=1"))
                .as_str(),
            "http://127.0.0.1:8080/prod/v1/files/..%2Fauth%2Flogin%3Fx=1"
        );
        let api = Api::new("http://127.0.0.1:8080", None).unwrap();
        assert_eq!(
            api.url(RouteKey::Me, None).as_str(),
            "http://127.0.0.1:8080/v1/me"
        );
        assert_eq!(
            api.url(RouteKey::FastUploadProof, Some("c1")).as_str(),
            "http://127.0.0.1:8080/v1/fast-upload/c1/proof"
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
            api.request(RouteKey::Me, None),
            Err(Error::NotLoggedIn)
        ));
        assert!(api.request(RouteKey::Login, None).is_ok(), "public route");
    }

    /// A newer server's fields are printed by `--json` as they came; absent ones stay absent.
    #[test]
    fn files_keep_fields_this_version_does_not_know() {
        let raw = r#"{"file_id":"0190a000-0000-7000-8000-000000000000","name":"a","size":1,"sha256":null,"content_type":"x",
            "created_at":"t","tier":"hot","verified":false,"labels":["x"]}"#;
        let file: File = serde_json::from_str(raw).unwrap();
        assert_eq!(file.name, "a");
        let printed = serde_json::to_value(&file).unwrap();
        assert_eq!(printed["labels"], serde_json::json!(["x"]));
        assert_eq!(printed["size"], 1);
        assert!(printed.get("declared_sha256").is_none());
    }
}

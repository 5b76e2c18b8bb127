//! Request and response bodies of the HTTP contract (DESIGN.md). Requests reject unknown
//! fields; their fields are domain types, so a body that parses is a valid body.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::domain::{
    ContentType, DownloadLimit, FileName, ObjectSize, PartChecksum, PartNumber, PartSize, Password,
    Sha256Hex, ShareLifetime, Username,
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    pub username: Username,
    pub password: Password,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    pub old_password: Password,
    pub new_password: Password,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct SignupResponse {
    pub user_id: String,
    pub username: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct LoginResponse {
    pub token: String,
    pub token_type: String,
    pub expires_in: u64,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct MeResponse {
    pub user_id: String,
    pub username: String,
    pub created_at: String,
    pub used_bytes: u64,
    pub quota_bytes: u64,
    pub file_count: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateUploadRequest {
    pub name: FileName,
    pub size: ObjectSize,
    #[serde(default)]
    pub sha256: Option<Sha256Hex>,
    #[serde(default)]
    pub content_type: Option<ContentType>,
    #[serde(default)]
    pub part_size: Option<PartSize>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct CreateUploadResponse {
    pub upload_id: String,
    pub part_size: u64,
    pub part_count: u64,
    pub expires_at: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PresignPartsRequest {
    pub part_numbers: Vec<PartNumber>,
    /// Part number (as a string key, JSON objects have no number keys) to base64 SHA-256.
    #[serde(default)]
    pub checksums_sha256: Option<BTreeMap<String, PartChecksum>>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct PresignedPart {
    pub part_number: u32,
    pub url: String,
    pub method: String,
    pub headers: BTreeMap<String, String>,
    pub expires_at: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct PresignPartsResponse {
    pub parts: Vec<PresignedPart>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct PartDone {
    pub part_number: u32,
    pub size: u64,
    pub etag: String,
}

/// An upload as clients see it. `parts_done` is only present on the single-upload view.
#[derive(Debug, Serialize, Deserialize)]
pub struct UploadView {
    pub upload_id: String,
    pub name: String,
    pub size: u64,
    pub sha256: Option<String>,
    pub content_type: String,
    pub part_size: u64,
    pub part_count: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parts_done: Option<Vec<PartDone>>,
    pub state: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file_id: Option<String>,
    pub created_at: String,
    pub expires_at: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct UploadList {
    pub uploads: Vec<UploadView>,
}

/// `{}`: completing takes no input; the parts are read from S3, never from the client.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompleteUploadRequest {}

/// The File object of the contract.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct FileView {
    pub file_id: String,
    pub name: String,
    pub size: u64,
    pub sha256: Option<String>,
    pub content_type: String,
    pub created_at: String,
    pub tier: String,
    pub verified: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub declared_sha256: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct FileEnvelope {
    pub file: FileView,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct FileList {
    pub files: Vec<FileView>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RenameRequest {
    pub name: FileName,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct DownloadResponse {
    pub url: String,
    pub expires_at: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FastUploadRequest {
    pub name: FileName,
    pub size: ObjectSize,
    pub sha256: Sha256Hex,
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ByteRange {
    pub offset: u64,
    pub length: u64,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct ChallengeResponse {
    pub challenge_id: String,
    /// Hex; its raw bytes start the proof's input.
    pub nonce: String,
    pub ranges: Vec<ByteRange>,
    pub expires_at: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProofRequest {
    /// Lowercase hex SHA-256 of `nonce || ranges...`.
    pub proof: Sha256Hex,
}

/// `{"status":"complete","file":...}` or `{"status":"upload_required"}`.
#[derive(Debug, Serialize, Deserialize)]
pub struct ProofResponse {
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<FileView>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateShareRequest {
    pub expires_in: ShareLifetime,
    #[serde(default)]
    pub max_downloads: Option<DownloadLimit>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct CreateShareResponse {
    pub share_id: String,
    /// Absolute: `<api>/v1/s/<token>`. The token is shown once; only its hash is stored.
    pub url: String,
    pub expires_at: String,
    pub max_downloads: Option<u64>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct ShareView {
    pub share_id: String,
    pub expires_at: String,
    pub max_downloads: Option<u64>,
    pub downloads: u64,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct ShareList {
    pub shares: Vec<ShareView>,
}

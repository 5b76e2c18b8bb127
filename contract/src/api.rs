//! Request and response bodies of the HTTP contract (DESIGN.md). Requests reject unknown
//! fields; their fields are domain types, so a body that parses is a valid body, and a
//! client that builds one from those types sends a valid body. Every body goes both ways
//! (serialize and deserialize): the server reads requests, the CLI and the tests read answers. The OpenAPI
//! document ([`crate::openapi`]) derives every body's schema from these definitions.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Schema, SchemaType, Type};
use utoipa::{PartialSchema, ToSchema};

use crate::domain::{
    ChallengeId, ContentType, DownloadLimit, EntryType, FileId, FileName, FolderId, ObjectSize,
    OnConflict, PartChecksum, PartNumber, PartSize, Password, Sha256Hex, ShareId, ShareLifetime,
    Tier, UploadId, UploadState, UserId, Username,
};

/// Most part numbers one presign call takes.
pub const MAX_PARTS_PER_CALL: usize = 1000;
/// Most files one page of `GET /v1/files` holds (`limit`); 100 if not asked.
pub const MAX_LIST_LIMIT: u32 = 1000;

/// `{"error":{"code","message"}}`: the body of every 4xx and 5xx answer.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable and machine-readable, e.g. `invalid_request`, `not_found`, `quota_exceeded`.
    #[schema(pattern = "^[a-z][a-z0-9_]*$")]
    pub code: String,
    /// For people; may change between versions.
    pub message: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    pub username: Username,
    pub password: Password,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    pub old_password: Password,
    pub new_password: Password,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SignupResponse {
    #[schema(value_type = String, format = Uuid)]
    pub user_id: UserId,
    pub username: String,
}

/// The only token type issued.
pub const TOKEN_TYPE: &str = "Bearer";

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct LoginResponse {
    /// A JWT to send as `Authorization: Bearer <token>`.
    pub token: String,
    /// Always [`TOKEN_TYPE`].
    #[schema(schema_with = token_type_schema)]
    pub token_type: String,
    /// Seconds until the token expires.
    pub expires_in: u64,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MeResponse {
    #[schema(value_type = String, format = Uuid)]
    pub user_id: UserId,
    pub username: String,
    #[schema(format = DateTime)]
    pub created_at: String,
    pub used_bytes: u64,
    pub quota_bytes: u64,
    pub file_count: u64,
    /// Bytes of the trashed files (part of `used_bytes` until they are purged).
    pub trash_bytes: u64,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUploadRequest {
    pub name: FileName,
    pub size: ObjectSize,
    /// Recorded as declared; checked against the stored bytes later, never trusted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<Sha256Hex>,
    /// `application/octet-stream` if not given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<ContentType>,
    /// The server picks 8 MiB if not given, and raises it as needed to fit 10,000 parts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub part_size: Option<PartSize>,
    /// The folder the File is created in; the root if not given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<FolderId>,
    /// What to do when the name is taken in that folder; `rename` if not given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_conflict: Option<OnConflict>,
    /// `SHA256`: every part will carry its SHA-256, given at presign and signed into its
    /// URL, so S3 refuses bytes that differ. S3 takes part checksums only on an upload
    /// created for them, hence the choice here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum_algorithm: Option<ChecksumAlgorithm>,
}

/// The part checksum an upload is created for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum ChecksumAlgorithm {
    #[serde(rename = "SHA256")]
    Sha256,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CreateUploadResponse {
    #[schema(value_type = String, format = Uuid)]
    pub upload_id: UploadId,
    pub part_size: u64,
    pub part_count: u64,
    #[schema(format = DateTime)]
    pub expires_at: String,
}

fn part_numbers_schema() -> Schema {
    ArrayBuilder::new()
        .items(PartNumber::schema())
        .min_items(Some(1))
        .max_items(Some(MAX_PARTS_PER_CALL))
        .unique_items(true)
        .description(Some(
            "Parts to presign, each at most the upload's part_count, none twice.",
        ))
        .into()
}

/// Keys are part numbers written in decimal, as JSON object keys are strings.
fn part_checksums_schema() -> Schema {
    ObjectBuilder::new()
        .schema_type(SchemaType::Array(vec![Type::Object, Type::Null]))
        .property_names(Some(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some("^[1-9][0-9]{0,4}$")),
        ))
        .additional_properties(Some(PartChecksum::schema()))
        .max_properties(Some(MAX_PARTS_PER_CALL))
        .description(Some(
            "Part number (one of part_numbers) to the base64 SHA-256 of that part, bound into \
             the part's signed headers. Required for every part asked for on an upload created \
             with `checksum_algorithm` `SHA256`, refused (422) on any other.",
        ))
        .into()
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PresignPartsRequest {
    #[schema(schema_with = part_numbers_schema)]
    pub part_numbers: Vec<PartNumber>,
    /// Part number (as a string key, JSON objects have no number keys) to base64 SHA-256.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = part_checksums_schema)]
    pub checksums_sha256: Option<BTreeMap<String, PartChecksum>>,
}

/// The method every presigned part is sent with.
pub const PART_METHOD: &str = "PUT";

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PresignedPart {
    pub part_number: u32,
    #[schema(format = Uri)]
    pub url: String,
    /// Always [`PART_METHOD`].
    #[schema(schema_with = part_method_schema)]
    pub method: String,
    /// Headers the `PUT` must carry exactly as given, since they are signed. Besides them the
    /// URL signs `Host` and `Content-Length`, which must be exactly the part's planned size
    /// (`part_size`, or what is left for the last part); HTTP clients set both, but some
    /// leave `Content-Length: 0` out of an empty body, and S3 refuses the part then.
    pub headers: BTreeMap<String, String>,
    #[schema(format = DateTime)]
    pub expires_at: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PresignPartsResponse {
    pub parts: Vec<PresignedPart>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
pub struct PartDone {
    pub part_number: u32,
    pub size: u64,
    pub etag: String,
}

/// An upload as clients see it. `parts_done` is only present on the single-upload view.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct UploadView {
    #[schema(value_type = String, format = Uuid)]
    pub upload_id: UploadId,
    pub name: String,
    pub size: u64,
    /// The declared SHA-256, if one was given.
    #[schema(required = true)]
    pub sha256: Option<String>,
    pub content_type: String,
    pub part_size: u64,
    pub part_count: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parts_done: Option<Vec<PartDone>>,
    pub state: UploadState,
    /// The File this upload became, once completed.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = Uuid)]
    pub file_id: Option<FileId>,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub expires_at: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct UploadList {
    pub uploads: Vec<UploadView>,
    /// Pass as `cursor` for the next page; null on the last one.
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}

/// `{}`: completing takes no input; the parts are read from S3, never from the client.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompleteUploadRequest {}

/// The values of [`Tier`] on the wire.
pub const TIERS: [&str; 2] = [Tier::ALL[0].as_str(), Tier::ALL[1].as_str()];

fn tier_schema() -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(TIERS))
        .into()
}

/// The File object of the contract.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
pub struct FileView {
    #[schema(value_type = String, format = Uuid)]
    pub file_id: FileId,
    pub name: String,
    pub size: u64,
    /// The computed SHA-256 once verified; before that the declared one, or null.
    #[schema(required = true)]
    pub sha256: Option<String>,
    pub content_type: String,
    #[schema(format = DateTime)]
    pub created_at: String,
    /// The folder it is in (`root` for files created without one).
    #[serde(default)]
    pub parent_id: FolderId,
    #[schema(schema_with = tier_schema)]
    pub tier: Tier,
    pub verified: bool,
    /// The declared SHA-256, present only when it differs from the computed one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub declared_sha256: Option<String>,
}

/// One item in the trash: a file or a folder trashed by itself (what was below a trashed
/// folder goes and comes back with it).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
pub struct TrashEntryView {
    #[serde(rename = "type")]
    pub entry_type: EntryType,
    /// The file's or folder's id: restore and purge take it.
    #[schema(format = Uuid)]
    pub id: String,
    pub name: String,
    /// A file's size; a folder's is the bytes of its whole subtree when it was trashed.
    pub size: u64,
    /// The folder it was in (`root` for the root folder).
    pub original_parent_id: String,
    #[schema(format = DateTime)]
    pub trashed_at: String,
    /// When the janitor purges it (`FILESTORE_TRASH_RETENTION_SECS` after `trashed_at`).
    #[schema(format = DateTime)]
    pub purge_at: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TrashList {
    /// Newest first.
    pub entries: Vec<TrashEntryView>,
    /// Pass as `cursor` for the next page; null on the last one.
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}

/// Where a restored item goes: back where it was unless `parent_id` is given, under its own
/// name unless `name` is given.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RestoreRequest {
    /// `root` or a folder id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<FolderId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<FileName>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct FileEnvelope {
    pub file: FileView,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct FileList {
    pub files: Vec<FileView>,
    /// Pass as `cursor` for the next page; null on the last one.
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}

/// A rename, a move, or both: at least one field.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(min_properties = 1)]
pub struct MoveRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<FileName>,
    /// The folder to move into.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<FolderId>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateFolderRequest {
    pub name: FileName,
    /// The root if not given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<FolderId>,
}

/// The Folder object of the contract. The root folder is `{"folder_id":"root","name":"",
/// "parent_id":null,...}`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
pub struct FolderView {
    pub folder_id: FolderId,
    pub name: String,
    /// Null for the root folder only.
    #[schema(required = true)]
    pub parent_id: Option<FolderId>,
    #[schema(format = DateTime)]
    pub created_at: String,
}

/// A folder on the way from the root to another one (a breadcrumb).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
pub struct Ancestor {
    pub folder_id: FolderId,
    pub name: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct FolderResponse {
    pub folder: FolderView,
    /// From the root down to the folder's parent; empty for the root itself.
    pub ancestors: Vec<Ancestor>,
}

/// A File or a Folder, told apart by `type`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Entry {
    File(FileView),
    Folder(FolderView),
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct EntryList {
    /// Folders first, then files, each by the bytes of their UTF-8 names.
    pub entries: Vec<Entry>,
    /// Pass as `cursor` for the next page; null on the last one.
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DownloadResponse {
    #[schema(format = Uri)]
    pub url: String,
    #[schema(format = DateTime)]
    pub expires_at: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FastUploadRequest {
    pub name: FileName,
    pub size: ObjectSize,
    pub sha256: Sha256Hex,
    /// The folder the File is created in; the root if not given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<FolderId>,
    /// What to do when the name is taken in that folder; `rename` if not given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_conflict: Option<OnConflict>,
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
pub struct ByteRange {
    pub offset: u64,
    pub length: u64,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ChallengeResponse {
    #[schema(value_type = String, format = Uuid)]
    pub challenge_id: ChallengeId,
    /// Hex; its raw bytes start the proof's input.
    #[schema(pattern = "^([0-9a-f]{2})+$")]
    pub nonce: String,
    pub ranges: Vec<ByteRange>,
    #[schema(format = DateTime)]
    pub expires_at: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProofRequest {
    /// Lowercase hex SHA-256 of `nonce || ranges...`.
    pub proof: Sha256Hex,
}

/// `{"status":"complete","file":...}` or `{"status":"upload_required"}`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum ProofResponse {
    /// The proof matched verified content: the File exists now (201).
    Complete { file: FileView },
    /// Anything else (200): send the bytes with an upload.
    UploadRequired,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateShareRequest {
    pub expires_in: ShareLifetime,
    /// Unlimited if not given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_downloads: Option<DownloadLimit>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CreateShareResponse {
    #[schema(value_type = String, format = Uuid)]
    pub share_id: ShareId,
    /// Absolute: `<api>/v1/s/<token>`. The token is shown once; only its hash is stored.
    #[schema(format = Uri)]
    pub url: String,
    #[schema(format = DateTime)]
    pub expires_at: String,
    #[schema(required = true)]
    pub max_downloads: Option<u64>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ShareView {
    #[schema(value_type = String, format = Uuid)]
    pub share_id: ShareId,
    #[schema(format = DateTime)]
    pub expires_at: String,
    #[schema(required = true)]
    pub max_downloads: Option<u64>,
    pub downloads: u64,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ShareList {
    pub shares: Vec<ShareView>,
}

fn token_type_schema() -> Schema {
    constant(TOKEN_TYPE)
}

fn part_method_schema() -> Schema {
    constant(PART_METHOD)
}

/// A string schema that admits one value.
fn constant(value: &str) -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some([value]))
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proof_responses_keep_the_contract_shape() {
        let required = serde_json::to_value(ProofResponse::UploadRequired).unwrap();
        assert_eq!(required, serde_json::json!({"status": "upload_required"}));
    }

    /// A client's body, built from domain values, is exactly what the server reads back:
    /// absent options are left out, not sent as null.
    #[test]
    fn request_bodies_round_trip_through_json() {
        let body = CreateUploadRequest {
            name: FileName::parse("a.txt").unwrap(),
            size: ObjectSize::parse(5).unwrap(),
            sha256: None,
            content_type: None,
            part_size: None,
            checksum_algorithm: None,
            parent_id: None,
            on_conflict: None,
        };
        let json = serde_json::to_value(&body).unwrap();
        assert_eq!(json, serde_json::json!({"name": "a.txt", "size": 5}));
        let back: CreateUploadRequest = serde_json::from_value(json).unwrap();
        assert_eq!(back.name.as_str(), "a.txt");
        assert_eq!(back.size.get(), 5);

        let login = Credentials {
            username: Username::parse("alice").unwrap(),
            password: Password::parse("correct horse").unwrap(),
        };
        let json = serde_json::to_value(&login).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"username": "alice", "password": "correct horse"})
        );
        let _: Credentials = serde_json::from_value(json).unwrap();
    }
}

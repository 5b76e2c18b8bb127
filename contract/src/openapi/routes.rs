//! What each route takes and answers, one arm of an exhaustive `match` per route, in the
//! words the document shows; [`super`] adds what every route of a kind shares.

use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};

use super::{Schemas, integer, string_matching};
use crate::api::{
    ChallengeResponse, CompleteUploadRequest, CreateFolderRequest, CreateShareRequest,
    CreateShareResponse, CreateUploadRequest, CreateUploadResponse, Credentials, DownloadResponse,
    Entry, EntryList, FastUploadRequest, FileEnvelope, FileList, FileView, FolderResponse,
    FolderView, LoginResponse, MeResponse, MoveRequest, PasswordChange, PresignPartsRequest,
    PresignPartsResponse, ProofRequest, ProofResponse, RestoreRequest, ShareList, SignupResponse,
    TrashList, UploadList, UploadView,
};
use crate::routes::RouteKey;

/// One answer of an operation.
pub(super) enum Answer {
    /// A JSON body of this schema (boxed: schemas are large, the other answers small).
    Json(u16, &'static str, Box<RefOr<Schema>>),
    /// No body.
    Empty(u16, &'static str),
    /// `302` to the `Location` header.
    Redirect(&'static str),
    /// The error body, with what causes it.
    Error(u16, &'static str),
}

/// A route as documented: what the `match` in [`describe`] states for each route.
pub(super) struct Route {
    pub(super) summary: &'static str,
    pub(super) description: Option<&'static str>,
    pub(super) body: Option<RefOr<Schema>>,
    pub(super) query: Vec<(&'static str, &'static str, Schema)>,
    pub(super) answers: Vec<Answer>,
    /// Operations that can use this one's success answer: (name, operation, parameter value).
    pub(super) links: Vec<(&'static str, RouteKey, &'static str)>,
}

impl Route {
    fn new(summary: &'static str) -> Self {
        Self {
            summary,
            description: None,
            body: None,
            query: Vec::new(),
            answers: Vec::new(),
            links: Vec::new(),
        }
    }
    fn describe(mut self, description: &'static str) -> Self {
        self.description = Some(description);
        self
    }
    fn body(mut self, schema: RefOr<Schema>) -> Self {
        self.body = Some(schema);
        self
    }
    fn query(mut self, name: &'static str, description: &'static str, schema: Schema) -> Self {
        self.query.push((name, description, schema));
        self
    }
    fn json(mut self, status: u16, description: &'static str, schema: RefOr<Schema>) -> Self {
        self.answers
            .push(Answer::Json(status, description, Box::new(schema)));
        self
    }
    fn empty(mut self, status: u16, description: &'static str) -> Self {
        self.answers.push(Answer::Empty(status, description));
        self
    }
    fn redirect(mut self, description: &'static str) -> Self {
        self.answers.push(Answer::Redirect(description));
        self
    }
    fn error(mut self, status: u16, description: &'static str) -> Self {
        self.answers.push(Answer::Error(status, description));
        self
    }
    /// 413 `quota_exceeded`, for routes that add to what the caller stores.
    fn quota_exceeded(self) -> Self {
        self.error(
            413,
            "`quota_exceeded`: the file would pass the caller's quota",
        )
    }
    /// `limit` (described by `per_page`) and `cursor`, for a listing in cursor pages.
    fn paged(self, per_page: &'static str) -> Self {
        self.query(
            "limit",
            per_page,
            integer(1, u64::from(crate::api::MAX_LIST_LIMIT)),
        )
        .query(
            "cursor",
            "`next_cursor` of the previous page, as given (opaque base64url).",
            string_matching("^[A-Za-z0-9_-]+$"),
        )
    }
    /// 409 `name_taken`, for routes that give something a name in a folder.
    fn name_taken(self) -> Self {
        self.error(
            409,
            "`name_taken`: a file or folder of that name is in the folder already",
        )
    }
    /// Links from the response to `routes`, each named and taking its id from `id`.
    fn links(mut self, routes: &[(&'static str, RouteKey)], id: &'static str) -> Self {
        self.links
            .extend(routes.iter().map(|&(name, to)| (name, to, id)));
        self
    }
}

/// What a client does next with an upload it created.
const UPLOAD_LINKS: &[(&str, RouteKey)] = &[
    ("presign", RouteKey::PresignParts),
    ("status", RouteKey::UploadStatus),
    ("complete", RouteKey::CompleteUpload),
    ("abort", RouteKey::AbortUpload),
];

/// What a client does next with a File it completed.
const FILE_LINKS: &[(&str, RouteKey)] = &[
    ("get", RouteKey::GetFile),
    ("download", RouteKey::DownloadFile),
    ("rename", RouteKey::RenameFile),
    ("share", RouteKey::CreateShare),
    ("shares", RouteKey::ListShares),
    ("delete", RouteKey::DeleteFile),
];

/// Each route's inputs and answers. Statuses every route of a kind shares are added by
/// [`operation`].
pub(super) fn describe(key: RouteKey, s: &mut Schemas) -> Route {
    use RouteKey::*;
    match key {
        Signup => Route::new("Create an account")
            .body(s.of::<Credentials>())
            .json(201, "The account", s.of::<SignupResponse>())
            .error(409, "`username_taken`: the name is taken (ignoring case)")
            .error(
                429,
                "`too_many_attempts`: too many signups from this source address within an hour \
                 (`FILESTORE_SIGNUPS_PER_ADDRESS_PER_HOUR`, 10 by default, taken names \
                 included); `Retry-After` says when to try again",
            ),
        Login => Route::new("Log in: exchange a username and password for a token")
            .body(s.of::<Credentials>())
            .json(200, "A bearer token", s.of::<LoginResponse>())
            .error(401, "`invalid_credentials`: wrong username or password")
            .error(
                429,
                "`too_many_attempts`: 5 failed logins for this username from this source \
                 address within 15 minutes, or 100 from any addresses within an hour (known \
                 name or not; failures are counted before the password is checked, so \
                 concurrent attempts get no more); `Retry-After` says when to try again",
            ),
        Me => Route::new("The caller's account, usage and quota").json(
            200,
            "The caller's account",
            s.of::<MeResponse>(),
        ),
        CreateUpload => Route::new("Start a multipart upload")
            .describe(
                "The server picks the part size (8 MiB unless asked, raised to fit 10,000 \
                 parts). A given sha256 is recorded as declared and checked later. The \
                 declared size counts against the quota from now on, until the upload \
                 completes (then as the file), is aborted or expires.",
            )
            .body(s.of::<CreateUploadRequest>())
            .json(
                201,
                "The upload and its part plan",
                s.of::<CreateUploadResponse>(),
            )
            .error(
                413,
                "`quota_exceeded`: the declared size, with the caller's files and the declared \
                 sizes of their open uploads, would pass the quota",
            )
            .error(
                429,
                "`too_many_uploads`: the caller already has `FILESTORE_MAX_OPEN_UPLOADS` (100 \
                 by default) open uploads; complete or abort one, or wait the `Retry-After` \
                 seconds until the earliest expires",
            )
            .error(
                404,
                "`not_found`: `parent_id` is not one of the caller's live folders",
            )
            .error(
                409,
                "`name_taken`: with `on_conflict` `fail`, the name is taken in the folder",
            )
            .links(UPLOAD_LINKS, "$response.body#/upload_id"),
        ListUploads => Route::new("The caller's unfinished uploads, oldest first")
            .paged("Uploads per page (default 100).")
            .json(
                200,
                "One page of active uploads, without parts_done",
                s.of::<UploadList>(),
            ),
        PresignParts => Route::new("Presign part uploads")
            .describe("Each URL takes one `PUT` of that part's bytes with the given headers.")
            .body(s.of::<PresignPartsRequest>())
            .json(
                200,
                "One presigned request per part",
                s.of::<PresignPartsResponse>(),
            )
            .error(409, "`upload_completed`: the upload is already completed")
            .error(
                422,
                "`checksum_required`: the upload was created with `checksum_algorithm` \
                 `SHA256` and a part asked for has no checksum; \
                 `checksum_algorithm_required`: checksums given for an upload created \
                 without it (S3 would refuse those parts)",
            ),
        UploadStatus => Route::new("An upload and the parts storage already holds")
            .describe("After a crash, send only the parts not in `parts_done`.")
            .json(200, "The upload", s.of::<UploadView>()),
        AbortUpload => Route::new("Abort an upload")
            .describe(
                "An abort racing a complete of the same upload is safe: exactly one wins. \
                 After a complete the abort is a 409; after an abort the complete is a 404.",
            )
            .empty(
                204,
                "Aborted; its parts, and any object they were joined into, are discarded",
            )
            .error(409, "`upload_completed`: the upload is already completed"),
        CompleteUpload => Route::new("Complete an upload into a File")
            .describe(
                "The parts are read from storage, never from the client. Completing a \
                 completed upload again answers the same File.",
            )
            .body(s.of::<CompleteUploadRequest>())
            .json(201, "The File", s.of::<FileEnvelope>())
            .error(
                409,
                "`parts_missing` or `parts_changed`: not every part is stored yet; \
                 `name_taken`: with `on_conflict` `fail`, the name is taken in the folder; \
                 `parent_gone`: the upload's folder was trashed or purged (the upload stays \
                 active)",
            )
            .quota_exceeded()
            .error(
                422,
                "`size_mismatch`: the stored parts do not add up to the declared size",
            )
            .links(FILE_LINKS, "$response.body#/file/file_id"),
        ListFiles => Route::new("The caller's files, oldest first")
            .paged("Files per page (default 100).")
            .json(200, "One page of files", s.of::<FileList>()),
        GetFile => Route::new("A file").json(200, "The File", s.of::<FileView>()),
        DownloadFile => Route::new("A presigned URL to download a file (Range works)")
            .query(
                "redirect",
                "Answer `302` to the URL instead of JSON.",
                ObjectBuilder::new().schema_type(Type::Boolean).into(),
            )
            .json(200, "The URL", s.of::<DownloadResponse>())
            .redirect("With `redirect=true`: to the presigned URL"),
        RenameFile => Route::new("Rename a file, move it to another folder, or both")
            .body(s.of::<MoveRequest>())
            .json(200, "The renamed or moved File", s.of::<FileView>())
            .error(
                404,
                "`not_found`: no such file, or `parent_id` is not one of the caller's live \
                 folders",
            )
            .name_taken(),
        DeleteFile => Route::new("Move a file to the trash")
            .describe(
                "From then on it is a 404 on every route (its share links too) and absent \
                 from listings, but it keeps its bytes and its place in `used_bytes` until \
                 it is purged (`DELETE /v1/trash/{id}`, or automatically after the trash \
                 retention); `POST /v1/trash/{id}/restore` brings it back.",
            )
            .empty(204, "In the trash"),
        FastUpload => Route::new("Instant upload, step 1: ask for a challenge")
            .describe(
                "Always a challenge, whether or not the content is stored: the answer says \
                 nothing about other users' files.",
            )
            .body(s.of::<FastUploadRequest>())
            .json(200, "A challenge", s.of::<ChallengeResponse>())
            .error(
                404,
                "`not_found`: `parent_id` is not one of the caller's live folders",
            )
            .error(
                409,
                "`name_taken`: with `on_conflict` `fail`, the name is taken in the folder",
            )
            .quota_exceeded()
            .error(
                429,
                "`too_many_attempts`: 120 challenges for this user in this clock hour;                  `Retry-After` says when the hour ends. Upload the bytes instead.",
            )
            .links(
                &[("prove", FastUploadProof)],
                "$response.body#/challenge_id",
            ),
        FastUploadProof => Route::new("Instant upload, step 2: prove possession")
            .describe(
                "`proof` is the lowercase hex SHA-256 of the nonce's bytes followed by the \
                 challenged ranges of the file, in order. A wrong proof, unknown or \
                 unverified content, another user's content under 1 MiB, a cold store that \
                 cannot be read, and a used, expired or unknown challenge all answer \
                 `upload_required`, after the same work.",
            )
            .body(s.of::<ProofRequest>())
            .json(
                201,
                "`complete`: the File exists now",
                s.of::<ProofResponse>(),
            )
            .json(
                200,
                "`upload_required`: send the bytes with an upload",
                s.of::<ProofResponse>(),
            )
            .error(
                409,
                "After a correct proof: `name_taken` (with `on_conflict` `fail`) or \
                 `parent_gone` (the folder was trashed or purged since the challenge)",
            )
            .quota_exceeded(),
        OpenApi => Route::new("This document").json(
            200,
            "The OpenAPI 3.1 document of the whole contract",
            ObjectBuilder::new().schema_type(Type::Object).into(),
        ),
        ChangePassword => Route::new("Change the caller's password")
            .body(s.of::<PasswordChange>())
            .empty(
                204,
                "Changed; every token issued before is rejected from now on",
            )
            .error(
                403,
                "`wrong_password`: old_password is not this account's password",
            )
            .error(
                429,
                "`too_many_attempts`: a wrong old_password counts as a failed login of this \
                 user, under login's limits; `Retry-After` says when to try again",
            ),
        CreateShare => Route::new("Create a share link to a file")
            .body(s.of::<CreateShareRequest>())
            .json(
                201,
                "The link; its token is shown only here",
                s.of::<CreateShareResponse>(),
            )
            .links(&[("revoke", RevokeShare)], "$response.body#/share_id"),
        ListShares => Route::new("A file's live share links").json(
            200,
            "Unexpired links",
            s.of::<ShareList>(),
        ),
        RevokeShare => Route::new("Revoke a share link").empty(204, "Revoked"),
        OpenShare => Route::new("Open a share link")
            .describe(
                "Expired, revoked, exhausted and unknown links, and links to a trashed file, \
                 are all the same 404 (and count no download).",
            )
            .redirect("To a presigned GET of the file"),
        ListTrash => Route::new("The caller's trash, newest first")
            .paged("Entries per page (default 100).")
            .json(200, "One page of trash entries", s.of::<TrashList>()),
        RestoreTrash => Route::new("Restore a trashed file or folder")
            .describe(
                "Back in the folder it was in, under its name, unless `parent_id` or `name` \
                 say otherwise; a folder comes back with everything below it, share links \
                 work again. A restore racing a purge of the same item: exactly one wins.",
            )
            .body(s.of::<RestoreRequest>())
            .json(200, "The restored entry", s.of::<Entry>())
            .error(
                422,
                "`too_deep`: the restored folder would hold folders more than 64 deep",
            )
            .error(
                404,
                "`not_found`: no such entry in the trash, or `parent_id` is not one of the \
                 caller's live folders",
            )
            .error(
                409,
                "`name_taken`: the target folder holds an entry of that name; \
                 `parent_gone`: the original folder was trashed or purged and no \
                 `parent_id` was given",
            ),
        PurgeTrash => Route::new("Purge a trashed file or folder now")
            .describe(
                "Its bytes and quota are freed as a v1 delete freed them; a folder is purged \
                 with its whole subtree.",
            )
            .empty(204, "Purged"),
        EmptyTrash => Route::new("Purge the whole trash").empty(204, "The trash is empty"),
        CreateFolder => Route::new("Create a folder")
            .body(s.of::<CreateFolderRequest>())
            .json(201, "The folder", s.of::<FolderView>())
            .error(
                404,
                "`not_found`: `parent_id` is not one of the caller's live folders",
            )
            .name_taken()
            .error(422, "`too_deep`: the folder would be more than 64 folders deep"),
        GetFolder => Route::new("A folder and its ancestors (breadcrumbs)")
            .describe("`root` is the caller's root folder.")
            .json(200, "The folder", s.of::<FolderResponse>()),
        ListChildren => Route::new("What a folder holds: folders first, then files, by name")
            .describe(
                "Names are ordered by the bytes of their UTF-8; a cursor is good for its own \
                 folder only.",
            )
            .paged("Entries per page (default 100).")
            .json(200, "One page of entries", s.of::<EntryList>()),
        MoveFolder => Route::new("Rename a folder, move it, or both")
            .describe(
                "One metadata change, whatever the folder holds. Of two moves that would \
                 put two folders inside each other, at most one succeeds.",
            )
            .body(s.of::<MoveRequest>())
            .json(200, "The folder", s.of::<FolderView>())
            .error(
                400,
                "`root_folder`: the root folder cannot be renamed or moved",
            )
            .error(
                404,
                "`not_found`: no such folder, or `parent_id` is not one of the caller's live \
                 folders",
            )
            .error(
                409,
                "`name_taken`: the name is used in the target folder; `cycle`: the target is \
                 the folder itself or below it",
            )
            .error(422, "`too_deep`: the move would put a folder more than 64 deep"),
        DeleteFolder => Route::new("Move a folder, with everything below it, to the trash")
            .describe(
                "From then on the folder and everything below it are a 404 on every route \
                 (share links too) and absent from listings and paths; they keep their bytes \
                 and their place in `used_bytes` until purged. The trash entry's `size` is \
                 the bytes of the files below it.",
            )
            .empty(204, "In the trash")
            .error(400, "`root_folder`: the root folder cannot be deleted"),
        ResolvePath => Route::new("The file or folder at an absolute path")
            .query(
                "path",
                "An absolute path such as `/a/b/c.txt`; `/` is the root folder.",
                string_matching("^/"),
            )
            .json(200, "The entry", s.of::<Entry>())
            .error(404, "`not_found`: nothing lives at that path"),
    }
}

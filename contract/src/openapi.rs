//! The OpenAPI 3.1 document of the whole contract, built from the code that serves it: the
//! paths and methods from [`RouteKey::ALL`], the bodies from the types in [`crate::api`] and
//! [`crate::domain`]. Each route's inputs and answers are one arm of an exhaustive `match`,
//! so a route cannot be added without being documented. What every route shares is added
//! in one place: a JSON body brings 400 and 413, a bearer token 401, a path id 404.
//!
//! The document is committed as `docs/openapi.json`; a test fails when it differs from this
//! one (`UPDATE_OPENAPI=1 cargo test -p filestore-contract openapi` rewrites it).

use std::sync::LazyLock;

use utoipa::ToSchema;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::link::LinkBuilder;
use utoipa::openapi::path::{
    HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn, PathItem, PathsBuilder,
};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::response::{ResponseBuilder, ResponsesBuilder};
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, Schema, SchemaFormat, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::tag::TagBuilder;
use utoipa::openapi::{
    ComponentsBuilder, ContentBuilder, InfoBuilder, LicenseBuilder, OpenApi, OpenApiBuilder, Ref,
    RefOr, Required,
};

use crate::api::{
    ChallengeResponse, CompleteUploadRequest, CreateShareRequest, CreateShareResponse,
    CreateUploadRequest, CreateUploadResponse, Credentials, DownloadResponse, ErrorBody,
    FastUploadRequest, FileEnvelope, FileList, FileView, LoginResponse, MeResponse, PasswordChange,
    PresignPartsRequest, PresignPartsResponse, ProofRequest, ProofResponse, RenameRequest,
    ShareList, SignupResponse, UploadList, UploadView,
};
use crate::routes::{Function, RouteKey};

const JSON: &str = "application/json";
const BEARER: &str = "bearer";

/// The document, built once.
pub fn document() -> &'static OpenApi {
    static DOC: LazyLock<OpenApi> = LazyLock::new(build);
    &DOC
}

/// The document as served and committed: pretty JSON with a final newline.
pub fn document_json() -> &'static str {
    static JSON_TEXT: LazyLock<String> = LazyLock::new(|| {
        let mut text = document()
            .to_pretty_json()
            .expect("the OpenAPI document serializes");
        text.push('\n');
        text
    });
    &JSON_TEXT
}

/// Schemas referenced so far, gathered into `components/schemas`.
#[derive(Default)]
struct Schemas(Vec<(String, RefOr<Schema>)>);

impl Schemas {
    /// A reference to `T`'s schema, which (with everything it refers to) joins the components.
    fn of<T: ToSchema>(&mut self) -> RefOr<Schema> {
        let name = T::name().into_owned();
        self.0.push((name.clone(), T::schema()));
        T::schemas(&mut self.0);
        RefOr::Ref(Ref::from_schema_name(name))
    }
}

/// One answer of an operation.
enum Answer {
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
struct Route {
    summary: &'static str,
    description: Option<&'static str>,
    body: Option<RefOr<Schema>>,
    query: Vec<(&'static str, &'static str, Schema)>,
    answers: Vec<Answer>,
    /// Operations that can use this one's success answer: (name, operation, parameter value).
    links: Vec<(&'static str, RouteKey, &'static str)>,
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
    fn link(mut self, name: &'static str, to: RouteKey, id: &'static str) -> Self {
        self.links.push((name, to, id));
        self
    }
}

/// Each route's inputs and answers. Statuses every route of a kind shares are added by
/// [`operation`].
fn describe(key: RouteKey, s: &mut Schemas) -> Route {
    use RouteKey::*;
    let upload_id = "$response.body#/upload_id";
    let file_id = "$response.body#/file/file_id";
    match key {
        Signup => Route::new("Create an account")
            .body(s.of::<Credentials>())
            .json(201, "The account", s.of::<SignupResponse>())
            .error(409, "`username_taken`: the name is taken (ignoring case)"),
        Login => Route::new("Log in: exchange a username and password for a token")
            .body(s.of::<Credentials>())
            .json(200, "A bearer token", s.of::<LoginResponse>())
            .error(401, "`invalid_credentials`: wrong username or password")
            .error(
                429,
                "`too_many_attempts`: 5 failed logins for this username within 15 minutes \
                 (known or not); `Retry-After` says when to try again",
            ),
        Me => Route::new("The caller's account, usage and quota").json(
            200,
            "The caller's account",
            s.of::<MeResponse>(),
        ),
        CreateUpload => Route::new("Start a multipart upload")
            .describe(
                "The server picks the part size (8 MiB unless asked, raised to fit 10,000 \
                 parts). A given sha256 is recorded as declared and checked later.",
            )
            .body(s.of::<CreateUploadRequest>())
            .json(
                201,
                "The upload and its part plan",
                s.of::<CreateUploadResponse>(),
            )
            .quota_exceeded()
            .link("presign", PresignParts, upload_id)
            .link("status", UploadStatus, upload_id)
            .link("complete", CompleteUpload, upload_id)
            .link("abort", AbortUpload, upload_id),
        ListUploads => Route::new("The caller's unfinished uploads").json(
            200,
            "Active uploads, without parts_done",
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
            .error(409, "`upload_completed`: the upload is already completed"),
        UploadStatus => Route::new("An upload and the parts storage already holds")
            .describe("After a crash, send only the parts not in `parts_done`.")
            .json(200, "The upload", s.of::<UploadView>()),
        AbortUpload => Route::new("Abort an upload")
            .empty(204, "Aborted; its parts are discarded")
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
                "`parts_missing` or `parts_changed`: not every part is stored yet",
            )
            .quota_exceeded()
            .error(
                422,
                "`size_mismatch`: the stored parts do not add up to the declared size",
            )
            .link("get", GetFile, file_id)
            .link("download", DownloadFile, file_id)
            .link("rename", RenameFile, file_id)
            .link("share", CreateShare, file_id)
            .link("shares", ListShares, file_id)
            .link("delete", DeleteFile, file_id),
        ListFiles => Route::new("The caller's files, oldest first")
            .query(
                "limit",
                "Files per page (default 100).",
                integer(1, u64::from(crate::api::MAX_LIST_LIMIT)),
            )
            .query(
                "cursor",
                "`next_cursor` of the previous page, as given (opaque base64url).",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .min_length(Some(1))
                    .pattern(Some("^[A-Za-z0-9_-]+$"))
                    .into(),
            )
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
        RenameFile => Route::new("Rename a file")
            .body(s.of::<RenameRequest>())
            .json(200, "The renamed File", s.of::<FileView>()),
        DeleteFile => Route::new("Delete a file")
            .describe("Its bytes go once no other File refers to the same content.")
            .empty(204, "Deleted"),
        FastUpload => Route::new("Instant upload, step 1: ask for a challenge")
            .describe(
                "Always a challenge, whether or not the content is stored: the answer says \
                 nothing about other users' files.",
            )
            .body(s.of::<FastUploadRequest>())
            .json(200, "A challenge", s.of::<ChallengeResponse>())
            .quota_exceeded()
            .link("prove", FastUploadProof, "$response.body#/challenge_id"),
        FastUploadProof => Route::new("Instant upload, step 2: prove possession")
            .describe(
                "`proof` is the lowercase hex SHA-256 of the nonce's bytes followed by the \
                 challenged ranges of the file, in order. A wrong proof, unknown or \
                 unverified content, and a used, expired or unknown challenge all answer \
                 `upload_required`.",
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
            ),
        CreateShare => Route::new("Create a share link to a file")
            .body(s.of::<CreateShareRequest>())
            .json(
                201,
                "The link; its token is shown only here",
                s.of::<CreateShareResponse>(),
            )
            .link("revoke", RevokeShare, "$response.body#/share_id"),
        ListShares => Route::new("A file's live share links").json(
            200,
            "Unexpired links",
            s.of::<ShareList>(),
        ),
        RevokeShare => Route::new("Revoke a share link").empty(204, "Revoked"),
        OpenShare => Route::new("Open a share link")
            .describe("Expired, revoked, exhausted and unknown links are all the same 404.")
            .redirect("To a presigned GET of the file"),
    }
}

/// The `{id}` path parameter: a server-made UUID, or a share link's token.
fn path_id(key: RouteKey) -> Schema {
    match key {
        RouteKey::OpenShare => ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some("A share link's token: base64url of 32 random bytes."))
            .pattern(Some("^[A-Za-z0-9_-]{43}$"))
            .into(),
        _ => ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Uuid)))
            .into(),
    }
}

fn integer(minimum: u64, maximum: u64) -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .minimum(Some(minimum))
        .maximum(Some(maximum))
        .into()
}

fn string_schema() -> Schema {
    ObjectBuilder::new().schema_type(Type::String).into()
}

fn operation_id(key: RouteKey) -> String {
    let name = format!("{key:?}");
    let mut chars = name.chars();
    chars
        .next()
        .map(|c| c.to_ascii_lowercase().to_string() + chars.as_str())
        .unwrap_or_default()
}

fn http_method(key: RouteKey) -> HttpMethod {
    match key.method().as_str() {
        "GET" => HttpMethod::Get,
        "POST" => HttpMethod::Post,
        "PATCH" => HttpMethod::Patch,
        "DELETE" => HttpMethod::Delete,
        "PUT" => HttpMethod::Put,
        other => unreachable!("no route uses {other}"),
    }
}

fn error_response(description: &str, error_body: &RefOr<Schema>) -> ResponseBuilder {
    ResponseBuilder::new().description(description).content(
        JSON,
        ContentBuilder::new()
            .schema(Some(error_body.clone()))
            .build(),
    )
}

/// One operation: the route's own description plus what its kind implies.
fn operation(key: RouteKey, s: &mut Schemas) -> utoipa::openapi::path::Operation {
    let route = describe(key, s);
    let error_body = s.of::<ErrorBody>();
    let has_id = key.template().contains("{id}");
    let mut answers = route.answers;
    let own = |answers: &[Answer], status: u16| {
        answers.iter().any(|a| match a {
            Answer::Json(st, ..) | Answer::Empty(st, _) | Answer::Error(st, _) => *st == status,
            Answer::Redirect(_) => status == 302,
        })
    };
    if route.body.is_some() || !route.query.is_empty() {
        answers.push(Answer::Error(
            400,
            "`invalid_request` (or a more specific code): the input breaks a rule of its schema \
             or of the state it refers to",
        ));
    }
    if !key.is_public() && !own(&answers, 401) {
        answers.push(Answer::Error(
            401,
            "`unauthorized`: the bearer token is missing, malformed, expired or revoked",
        ));
    }
    if has_id && !own(&answers, 404) {
        answers.push(Answer::Error(
            404,
            "`not_found`: no such id, or not the caller's (the two are never told apart)",
        ));
    }
    if route.body.is_some() && !own(&answers, 413) {
        answers.push(Answer::Error(
            413,
            "`body_too_large`: the body is over 128 KiB",
        ));
    }

    let mut responses: Vec<(u16, ResponseBuilder)> = Vec::new();
    for answer in answers {
        let (status, response) = match answer {
            Answer::Json(status, description, schema) => (
                status,
                ResponseBuilder::new()
                    .description(description)
                    .content(JSON, ContentBuilder::new().schema(Some(*schema)).build()),
            ),
            Answer::Empty(status, description) => {
                (status, ResponseBuilder::new().description(description))
            }
            Answer::Redirect(description) => (
                302,
                ResponseBuilder::new().description(description).header(
                    "Location",
                    HeaderBuilder::new()
                        .schema(Some(
                            ObjectBuilder::new()
                                .schema_type(Type::String)
                                .format(Some(SchemaFormat::KnownFormat(KnownFormat::Uri))),
                        ))
                        .description(Some("The presigned URL"))
                        .build(),
                ),
            ),
            Answer::Error(status, description) => {
                let mut response = error_response(description, &error_body);
                if status == 401 {
                    response = response.header(
                        "WWW-Authenticate",
                        HeaderBuilder::new()
                            .schema(Some(string_schema()))
                            .description(Some("`Bearer`"))
                            .build(),
                    );
                }
                if status == 429 {
                    response = response.header(
                        "Retry-After",
                        HeaderBuilder::new()
                            .schema(Some(integer(1, u64::from(u32::MAX))))
                            .description(Some("Seconds until logins for this name are let through"))
                            .build(),
                    );
                }
                (status, response)
            }
        };
        responses.push((status, response));
    }
    // Links belong to the first success answer.
    if let Some((_, response)) = responses.iter_mut().find(|(st, _)| (200..300).contains(st)) {
        for (name, to, value) in &route.links {
            let link = LinkBuilder::new()
                .operation_id(operation_id(*to))
                .parameter("id", *value)
                .build();
            *response = std::mem::take(response).link(*name, link);
        }
    }
    responses.sort_by_key(|(status, _)| *status);
    let responses = responses
        .into_iter()
        .fold(ResponsesBuilder::new(), |b, (status, r)| {
            b.response(status.to_string(), r.build())
        });

    let mut op = OperationBuilder::new()
        .operation_id(Some(operation_id(key)))
        .tag(key.function().name())
        .summary(Some(route.summary))
        .description(route.description)
        .responses(responses);
    if has_id {
        op = op.parameter(
            ParameterBuilder::new()
                .name("id")
                .parameter_in(ParameterIn::Path)
                .required(Required::True)
                .schema(Some(path_id(key))),
        );
    }
    for (name, description, schema) in route.query {
        op = op.parameter(
            ParameterBuilder::new()
                .name(name)
                .parameter_in(ParameterIn::Query)
                .required(Required::False)
                .description(Some(description))
                .schema(Some(schema)),
        );
    }
    if let Some(body) = route.body {
        op = op.request_body(Some(
            RequestBodyBuilder::new()
                .required(Some(Required::True))
                .content(JSON, ContentBuilder::new().schema(Some(body)).build())
                .build(),
        ));
    }
    op = if key.is_public() {
        op.securities(Some(Vec::<SecurityRequirement>::new()))
    } else {
        op.security(SecurityRequirement::new(BEARER, Vec::<String>::new()))
    };
    op.build()
}

fn build() -> OpenApi {
    let mut schemas = Schemas::default();
    let mut paths = PathsBuilder::new();
    for key in RouteKey::ALL {
        let op = operation(key, &mut schemas);
        paths = paths.path(key.template(), PathItem::new(http_method(key), op));
    }
    let mut components = ComponentsBuilder::new().security_scheme(
        BEARER,
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .bearer_format("JWT")
                .description(Some("The token of `POST /v1/auth/login`"))
                .build(),
        ),
    );
    let mut seen = std::collections::BTreeSet::new();
    for (name, schema) in schemas.0 {
        if seen.insert(name.clone()) {
            components = components.schema(name, schema);
        }
    }
    let tags = [
        (Function::Auth, "Accounts and tokens"),
        (Function::Upload, "Multipart uploads straight to storage"),
        (Function::Merge, "Completing uploads"),
        (Function::Files, "Files"),
        (
            Function::FastUpload,
            "Instant upload by proof of possession",
        ),
        (Function::Shares, "Share links"),
    ]
    .map(|(f, d)| {
        TagBuilder::new()
            .name(f.name())
            .description(Some(d))
            .build()
    });
    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("filestore")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(
                    "A serverless file store: presigned multipart uploads straight to S3, \
                     hash-verified transfer to a cold store, instant upload by proof of \
                     possession. Every error is `{\"error\":{\"code\",\"message\"}}`.",
                ))
                .license(Some(
                    LicenseBuilder::new()
                        .name("MIT")
                        .identifier(Some("MIT"))
                        .build(),
                ))
                .build(),
        )
        .paths(paths.build())
        .components(Some(components.build()))
        .tags(Some(tags))
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn committed_path() -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/openapi.json")
    }

    /// The committed document is the generated one; `UPDATE_OPENAPI=1` rewrites it.
    #[test]
    fn committed_openapi_document_is_current() {
        let path = committed_path();
        let generated = document_json();
        if std::env::var_os("UPDATE_OPENAPI").is_some() {
            std::fs::write(&path, generated).unwrap();
            return;
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == generated,
            "docs/openapi.json differs from the document the code generates; regenerate it \
             with `UPDATE_OPENAPI=1 cargo test -p filestore-contract openapi` and commit it"
        );
    }

    #[test]
    fn every_route_is_documented_once_with_its_method() {
        let doc = serde_json::to_value(document()).unwrap();
        assert_eq!(doc["openapi"], "3.1.0");
        let mut count = 0;
        for key in RouteKey::ALL {
            let method = key.method().as_str().to_ascii_lowercase();
            let op = &doc["paths"][key.template()][&method];
            assert_eq!(op["operationId"], operation_id(key), "{key:?}");
            count += 1;
        }
        let documented: usize = doc["paths"]
            .as_object()
            .unwrap()
            .values()
            .map(|item| item.as_object().unwrap().len())
            .sum();
        assert_eq!(documented, count);
    }

    #[test]
    fn public_routes_need_no_token_and_others_a_bearer_token() {
        let doc = serde_json::to_value(document()).unwrap();
        for key in RouteKey::ALL {
            let method = key.method().as_str().to_ascii_lowercase();
            let op = &doc["paths"][key.template()][&method];
            if key.is_public() {
                assert_eq!(op["security"], json!([]), "{key:?}");
                assert!(op["responses"].get("401").is_none() || key == RouteKey::Login);
            } else {
                assert_eq!(op["security"], json!([{BEARER: []}]), "{key:?}");
                assert!(op["responses"].get("401").is_some(), "{key:?}");
            }
        }
    }

    #[test]
    fn every_reference_resolves() {
        let text = document_json();
        let doc: serde_json::Value = serde_json::from_str(text).unwrap();
        let mut stack = vec![&doc];
        while let Some(v) = stack.pop() {
            match v {
                serde_json::Value::Object(map) => {
                    if let Some(serde_json::Value::String(r)) = map.get("$ref") {
                        let name = r.strip_prefix("#/components/schemas/").unwrap();
                        assert!(
                            doc["components"]["schemas"].get(name).is_some(),
                            "dangling {r}"
                        );
                    }
                    stack.extend(map.values());
                }
                serde_json::Value::Array(items) => stack.extend(items),
                _ => {}
            }
        }
    }
}

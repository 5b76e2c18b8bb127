//! The HTTP edge: the route table (shared by the functions and the local runner, so both
//! agree on what API Gateway would deliver), JSON bodies in and out, and bearer tokens.

use http::{HeaderValue, Method, StatusCode, header};
use lambda_http::{Body, Request, RequestExt, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// Largest JSON body any route accepts. The biggest legitimate one is a presign call with
/// 1000 part numbers and checksums (~60 KiB).
pub const MAX_BODY_BYTES: usize = 128 * 1024;

/// The Lambda function that serves a route.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Function {
    Auth,
    Upload,
    Merge,
    Files,
    FastUpload,
    Shares,
}

/// Every route of the contract. The template is API Gateway's route key syntax.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RouteKey {
    Signup,
    Login,
    Me,
    CreateUpload,
    ListUploads,
    PresignParts,
    UploadStatus,
    AbortUpload,
    CompleteUpload,
    ListFiles,
    GetFile,
    DownloadFile,
    RenameFile,
    DeleteFile,
    FastUpload,
    FastUploadProof,
    OpenApi,
    ChangePassword,
    CreateShare,
    ListShares,
    RevokeShare,
    OpenShare,
}

impl RouteKey {
    pub const ALL: [RouteKey; 22] = [
        Self::Signup,
        Self::Login,
        Self::Me,
        Self::CreateUpload,
        Self::ListUploads,
        Self::PresignParts,
        Self::UploadStatus,
        Self::AbortUpload,
        Self::CompleteUpload,
        Self::ListFiles,
        Self::GetFile,
        Self::DownloadFile,
        Self::RenameFile,
        Self::DeleteFile,
        Self::FastUpload,
        Self::FastUploadProof,
        Self::OpenApi,
        Self::ChangePassword,
        Self::CreateShare,
        Self::ListShares,
        Self::RevokeShare,
        Self::OpenShare,
    ];

    pub fn method(self) -> Method {
        match self {
            Self::Signup
            | Self::Login
            | Self::CreateUpload
            | Self::PresignParts
            | Self::CompleteUpload
            | Self::FastUpload
            | Self::FastUploadProof
            | Self::ChangePassword
            | Self::CreateShare => Method::POST,
            Self::Me
            | Self::OpenApi
            | Self::ListShares
            | Self::OpenShare
            | Self::ListUploads
            | Self::UploadStatus
            | Self::ListFiles
            | Self::GetFile
            | Self::DownloadFile => Method::GET,
            Self::AbortUpload | Self::DeleteFile | Self::RevokeShare => Method::DELETE,
            Self::RenameFile => Method::PATCH,
        }
    }

    pub fn template(self) -> &'static str {
        match self {
            Self::Signup => "/v1/auth/signup",
            Self::Login => "/v1/auth/login",
            Self::Me => "/v1/me",
            Self::CreateUpload | Self::ListUploads => "/v1/uploads",
            Self::PresignParts => "/v1/uploads/{id}/parts",
            Self::UploadStatus | Self::AbortUpload => "/v1/uploads/{id}",
            Self::CompleteUpload => "/v1/uploads/{id}/complete",
            Self::ListFiles => "/v1/files",
            Self::GetFile | Self::RenameFile | Self::DeleteFile => "/v1/files/{id}",
            Self::DownloadFile => "/v1/files/{id}/download",
            Self::FastUpload => "/v1/fast-upload",
            Self::FastUploadProof => "/v1/fast-upload/{id}/proof",
            Self::OpenApi => "/v1/openapi.json",
            Self::ChangePassword => "/v1/auth/password",
            Self::CreateShare | Self::ListShares => "/v1/files/{id}/shares",
            Self::RevokeShare => "/v1/shares/{id}",
            Self::OpenShare => "/v1/s/{id}",
        }
    }

    pub fn function(self) -> Function {
        match self {
            Self::Signup | Self::Login | Self::Me | Self::ChangePassword | Self::OpenApi => {
                Function::Auth
            }
            Self::CreateUpload
            | Self::ListUploads
            | Self::PresignParts
            | Self::UploadStatus
            | Self::AbortUpload => Function::Upload,
            Self::CompleteUpload => Function::Merge,
            Self::ListFiles
            | Self::GetFile
            | Self::DownloadFile
            | Self::RenameFile
            | Self::DeleteFile => Function::Files,
            Self::FastUpload | Self::FastUploadProof => Function::FastUpload,
            Self::CreateShare | Self::ListShares | Self::RevokeShare | Self::OpenShare => {
                Function::Shares
            }
        }
    }

    /// Routes anyone may call: no bearer token.
    pub fn is_public(self) -> bool {
        matches!(
            self,
            Self::Signup | Self::Login | Self::OpenApi | Self::OpenShare
        )
    }

    /// API Gateway's route key, e.g. `POST /v1/uploads/{id}/parts`.
    pub fn route_key(self) -> String {
        format!("{} {}", self.method(), self.template())
    }
}

/// A resolved request: which route, and its `{id}` path parameter if the route has one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Matched {
    pub key: RouteKey,
    pub id: Option<String>,
}

fn match_template(template: &str, path: &str) -> Option<Option<String>> {
    let mut id = None;
    let mut t = template.split('/');
    let mut p = path.split('/');
    loop {
        match (t.next(), p.next()) {
            (None, None) => return Some(id),
            (Some("{id}"), Some(seg)) if !seg.is_empty() => id = Some(seg.to_string()),
            (Some(a), Some(b)) if a == b => {}
            _ => return None,
        }
    }
}

impl Function {
    /// The crate that builds this function: `functions/<name>`, package `filestore-<name>`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Auth => "auth",
            Self::Upload => "upload",
            Self::Merge => "merge",
            Self::Files => "files",
            Self::FastUpload => "fastupload",
            Self::Shares => "shares",
        }
    }
}

impl Matched {
    /// The `{id}` path parameter as a server-made id. An id that does not parse cannot
    /// exist, so it is a 404 for `what`, like any other unknown id.
    ///
    /// # Errors
    /// 404 when the route has no id or it is malformed.
    pub fn id_of(&self, what: &'static str) -> Result<String, ApiError> {
        self.id
            .as_deref()
            .and_then(crate::domain::parse_id)
            .ok_or(ApiError::NotFound(what))
    }
}

/// Finds the route for a method and path.
///
/// # Errors
/// 404 for an unknown path, 405 for a known path with another method.
pub fn resolve(method: &Method, path: &str) -> Result<Matched, ApiError> {
    let mut allowed = Vec::new();
    for key in RouteKey::ALL {
        if let Some(id) = match_template(key.template(), path) {
            if key.method() == *method {
                return Ok(Matched { key, id });
            }
            allowed.push(key.method().to_string());
        }
    }
    if allowed.is_empty() {
        return Err(ApiError::NotFound("route"));
    }
    Err(ApiError::MethodNotAllowed {
        allow: allowed.join(", "),
    })
}

/// Parses a JSON body into `T`. An empty body reads as `{}`.
///
/// # Errors
/// 413 past [`MAX_BODY_BYTES`]; 400 for a body that is not a JSON object (every body of the
/// contract is one) and, with serde's explanation, for anything that is not a valid `T`.
pub fn json_body<T: DeserializeOwned>(req: &Request) -> Result<T, ApiError> {
    let bytes: &[u8] = match req.body() {
        Body::Empty => b"",
        Body::Text(t) => t.as_bytes(),
        Body::Binary(b) => b,
        _ => b"",
    };
    if bytes.len() > MAX_BODY_BYTES {
        return Err(ApiError::TooLarge {
            code: "body_too_large",
            message: format!("request body must be at most {MAX_BODY_BYTES} bytes"),
        });
    }
    let bytes = if bytes.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        bytes
    };
    // serde's derived structs also accept a JSON array of the field values in order, which
    // would let `["a.txt", 1]` through without naming a single field.
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(ApiError::bad_input(
            "invalid_request",
            "request body must be a JSON object",
        ));
    }
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::bad_input("invalid_request", format!("invalid request body: {e}")))
}

/// The token of an `Authorization: Bearer <token>` header.
///
/// # Errors
/// 401 when the header is missing or not a bearer token.
pub fn bearer_token(req: &Request) -> Result<&str, ApiError> {
    let value = req
        .headers()
        .get(header::AUTHORIZATION)
        .ok_or_else(|| ApiError::unauthorized("missing Authorization header"))?
        .to_str()
        .map_err(|_| ApiError::unauthorized("malformed Authorization header"))?;
    match value.split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Ok(token.trim())
        }
        _ => Err(ApiError::unauthorized(
            "Authorization header must be 'Bearer <token>'",
        )),
    }
}

/// The first value of a query parameter.
pub fn query_param(req: &Request, name: &str) -> Option<String> {
    req.query_string_parameters_ref()
        .and_then(|q| q.first(name).map(str::to_string))
}

/// A JSON response.
pub fn json<T: Serialize>(status: StatusCode, body: &T) -> Result<Response<Body>, ApiError> {
    let text = serde_json::to_string(body).map_err(|e| ApiError::Internal(e.into()))?;
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::Text(text))
        .map_err(|e| ApiError::Internal(e.into()))
}

/// `204 No Content`.
pub fn no_content() -> Response<Body> {
    let mut resp = Response::new(Body::Empty);
    *resp.status_mut() = StatusCode::NO_CONTENT;
    resp
}

/// `302 Found` to `url`.
pub fn redirect(url: &str) -> Result<Response<Body>, ApiError> {
    Response::builder()
        .status(StatusCode::FOUND)
        .header(header::LOCATION, url)
        .body(Body::Empty)
        .map_err(|e| ApiError::Internal(e.into()))
}

/// Turns a handler's result into the response, adding the headers every API answer carries.
pub fn respond(result: Result<Response<Body>, ApiError>) -> Response<Body> {
    let mut resp = result.unwrap_or_else(ApiError::into_response);
    let headers = resp.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_resolves_to_itself() {
        for key in RouteKey::ALL {
            let path = key.template().replace("{id}", "abc");
            let m = resolve(&key.method(), &path).unwrap();
            assert_eq!(m.key, key);
            assert_eq!(m.id.is_some(), key.template().contains("{id}"));
        }
    }

    #[test]
    fn unknown_paths_are_404_and_wrong_methods_405() {
        assert_eq!(resolve(&Method::GET, "/v1/nope").unwrap_err().status(), 404);
        assert_eq!(
            resolve(&Method::GET, "/v1/files/").unwrap_err().status(),
            404
        );
        assert_eq!(
            resolve(&Method::GET, "/v1/files/a/b").unwrap_err().status(),
            404
        );
        let err = resolve(&Method::PUT, "/v1/files/a").unwrap_err();
        assert_eq!(err.status(), 405);
        assert_eq!(
            err.into_response().headers()[http::header::ALLOW],
            "GET, PATCH, DELETE"
        );
        assert_eq!(
            resolve(&Method::GET, "/v1/auth/login")
                .unwrap_err()
                .status(),
            405
        );
    }

    #[test]
    fn path_ids_are_captured() {
        let m = resolve(&Method::POST, "/v1/uploads/u-1/complete").unwrap();
        assert_eq!(m.key, RouteKey::CompleteUpload);
        assert_eq!(m.id.as_deref(), Some("u-1"));
    }

    fn request(body: &str) -> Request {
        http::Request::builder()
            .body(Body::Text(body.to_string()))
            .unwrap()
    }

    #[test]
    fn json_bodies_reject_unknown_fields_and_oversize() {
        #[derive(Debug, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct T {
            a: u32,
        }
        assert!(json_body::<T>(&request(r#"{"a":1}"#)).is_ok());
        let err = json_body::<T>(&request(r#"{"a":1,"b":2}"#)).unwrap_err();
        assert_eq!(err.status(), 400);
        assert!(err.to_string().contains("unknown field"));
        assert_eq!(json_body::<T>(&request("[")).unwrap_err().status(), 400);
        assert_eq!(json_body::<T>(&request("[1]")).unwrap_err().status(), 400);
        assert_eq!(
            json_body::<T>(&request(" \n[1]")).unwrap_err().status(),
            400
        );
        assert!(json_body::<T>(&request(" \n{\"a\":1}")).is_ok());
        let big = format!(r#"{{"a":1,"pad":"{}"}}"#, "x".repeat(MAX_BODY_BYTES));
        assert_eq!(json_body::<T>(&request(&big)).unwrap_err().status(), 413);
    }

    #[test]
    fn bearer_tokens_need_the_scheme() {
        let with = |v: &str| {
            http::Request::builder()
                .header("authorization", v)
                .body(Body::Empty)
                .unwrap()
        };
        assert_eq!(bearer_token(&with("Bearer abc")).unwrap(), "abc");
        assert_eq!(bearer_token(&with("bearer abc")).unwrap(), "abc");
        assert!(bearer_token(&with("Basic abc")).is_err());
        assert!(bearer_token(&with("Bearer ")).is_err());
        let none: Request = http::Request::builder().body(Body::Empty).unwrap();
        assert!(bearer_token(&none).is_err());
    }
}

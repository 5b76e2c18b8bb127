//! The route table: every route of the contract, the function that serves it, whether it
//! needs a token, and the matching of a method and path to a route. The functions, the
//! local gateway, the OpenAPI document and the deployment template test all read this one
//! table, so they agree on what API Gateway delivers.

use http::Method;

/// Why a request matches no route. The server maps it to the contract's error body.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    /// 404: no route has this path, or its path parameter cannot be one of ours (what was
    /// looked for).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// 405: the path exists with other methods, listed for the `Allow` header.
    #[error("method not allowed; this path allows {allow}")]
    MethodNotAllowed { allow: String },
}

/// The Lambda function that serves a route.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Function {
    Auth,
    Upload,
    Merge,
    Files,
    FastUpload,
    Shares,
    Trash,
    Folders,
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
    ListTrash,
    RestoreTrash,
    PurgeTrash,
    EmptyTrash,
    CreateFolder,
    GetFolder,
    ListChildren,
    MoveFolder,
    DeleteFolder,
    ResolvePath,
}

impl RouteKey {
    pub const ALL: [RouteKey; 32] = [
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
        Self::ListTrash,
        Self::RestoreTrash,
        Self::PurgeTrash,
        Self::EmptyTrash,
        Self::CreateFolder,
        Self::GetFolder,
        Self::ListChildren,
        Self::MoveFolder,
        Self::DeleteFolder,
        Self::ResolvePath,
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
            | Self::CreateShare
            | Self::RestoreTrash
            | Self::CreateFolder => Method::POST,
            Self::Me
            | Self::OpenApi
            | Self::ListShares
            | Self::OpenShare
            | Self::ListUploads
            | Self::UploadStatus
            | Self::ListFiles
            | Self::GetFile
            | Self::DownloadFile
            | Self::ListTrash
            | Self::GetFolder
            | Self::ListChildren
            | Self::ResolvePath => Method::GET,
            Self::AbortUpload
            | Self::DeleteFile
            | Self::RevokeShare
            | Self::PurgeTrash
            | Self::EmptyTrash
            | Self::DeleteFolder => Method::DELETE,
            Self::RenameFile | Self::MoveFolder => Method::PATCH,
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
            Self::OpenShare => "/v1/s/{token}",
            Self::ListTrash | Self::EmptyTrash => "/v1/trash",
            Self::RestoreTrash => "/v1/trash/{id}/restore",
            Self::PurgeTrash => "/v1/trash/{id}",
            Self::CreateFolder => "/v1/folders",
            Self::GetFolder | Self::MoveFolder | Self::DeleteFolder => "/v1/folders/{id}",
            Self::ListChildren => "/v1/folders/{id}/children",
            Self::ResolvePath => "/v1/paths",
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
            Self::ListTrash | Self::RestoreTrash | Self::PurgeTrash | Self::EmptyTrash => {
                Function::Trash
            }
            Self::CreateFolder
            | Self::GetFolder
            | Self::ListChildren
            | Self::MoveFolder
            | Self::DeleteFolder
            | Self::ResolvePath => Function::Folders,
        }
    }

    /// Routes anyone may call: no bearer token.
    pub fn is_public(self) -> bool {
        matches!(
            self,
            Self::Signup | Self::Login | Self::OpenApi | Self::OpenShare
        )
    }

    /// The name of the route's path parameter, if it has one: `id`, or `token` for a share
    /// link (`/v1/s/{token}`).
    pub fn param(self) -> Option<&'static str> {
        self.template().split('/').find_map(param_name)
    }

    /// The route's path with its path parameter, if any, replaced by `value` as given.
    pub fn fill(self, value: &str) -> String {
        match self.param() {
            Some(name) => self.template().replace(&format!("{{{name}}}"), value),
            None => self.template().to_string(),
        }
    }

    /// API Gateway's route key, e.g. `POST /v1/uploads/{id}/parts`.
    pub fn route_key(self) -> String {
        format!("{} {}", self.method(), self.template())
    }
}

/// A resolved request: which route, and its path parameter ([`RouteKey::param`]) if the
/// route has one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Matched {
    pub key: RouteKey,
    pub id: Option<String>,
}

/// The name of a template segment that is a path parameter (`{name}`).
fn param_name(segment: &str) -> Option<&str> {
    segment.strip_prefix('{')?.strip_suffix('}')
}

fn match_template(template: &str, path: &str) -> Option<Option<String>> {
    let mut id = None;
    let mut t = template.split('/');
    let mut p = path.split('/');
    loop {
        match (t.next(), p.next()) {
            (None, None) => return Some(id),
            (Some(param), Some(seg)) if param_name(param).is_some() && !seg.is_empty() => {
                id = Some(seg.to_string())
            }
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
            Self::Trash => "trash",
            Self::Folders => "folders",
        }
    }
}

impl Matched {
    /// The path parameter as a server-made id. An id that does not parse cannot
    /// exist, so it is a 404 for `what`, like any other unknown id.
    ///
    /// # Errors
    /// 404 when the route has no id or it is malformed.
    pub fn id_of<T: TryFrom<String>>(&self, what: &'static str) -> Result<T, RouteError> {
        self.id
            .clone()
            .and_then(|id| T::try_from(id).ok())
            .ok_or(RouteError::NotFound(what))
    }
}

/// Finds the route for a method and path.
///
/// # Errors
/// 404 for an unknown path, 405 for a known path with another method.
pub fn resolve(method: &Method, path: &str) -> Result<Matched, RouteError> {
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
        return Err(RouteError::NotFound("route"));
    }
    Err(RouteError::MethodNotAllowed {
        allow: allowed.join(", "),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_resolves_to_itself() {
        for key in RouteKey::ALL {
            let m = resolve(&key.method(), &key.fill("abc")).unwrap();
            assert_eq!(m.key, key);
            assert_eq!(m.id.is_some(), key.param().is_some());
        }
    }

    /// Every path parameter is a server-made id, but a share link's, which is its token, as
    /// the contract names it.
    #[test]
    fn path_parameters_are_named_as_the_contract_names_them() {
        for key in RouteKey::ALL {
            let expected = match key {
                RouteKey::OpenShare => Some("token"),
                _ if key.template().contains('{') => Some("id"),
                _ => None,
            };
            assert_eq!(key.param(), expected, "{key:?}");
        }
        assert_eq!(RouteKey::OpenShare.template(), "/v1/s/{token}");
        assert_eq!(RouteKey::OpenShare.fill("t0k"), "/v1/s/t0k");
        assert_eq!(RouteKey::Me.fill("x"), "/v1/me");
    }

    #[test]
    fn unknown_paths_are_404_and_wrong_methods_405() {
        let not_found = RouteError::NotFound("route");
        assert_eq!(resolve(&Method::GET, "/v1/nope").unwrap_err(), not_found);
        assert_eq!(resolve(&Method::GET, "/v1/files/").unwrap_err(), not_found);
        assert_eq!(
            resolve(&Method::GET, "/v1/files/a/b").unwrap_err(),
            not_found
        );
        assert_eq!(
            resolve(&Method::PUT, "/v1/files/a").unwrap_err(),
            RouteError::MethodNotAllowed {
                allow: "GET, PATCH, DELETE".into()
            }
        );
        assert!(matches!(
            resolve(&Method::GET, "/v1/auth/login").unwrap_err(),
            RouteError::MethodNotAllowed { .. }
        ));
    }

    #[test]
    fn path_ids_are_captured() {
        let m = resolve(&Method::POST, "/v1/uploads/u-1/complete").unwrap();
        assert_eq!(m.key, RouteKey::CompleteUpload);
        assert_eq!(m.id.as_deref(), Some("u-1"));
    }
}

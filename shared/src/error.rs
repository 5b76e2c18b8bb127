//! [`ApiError`]: every failure a handler can return, mapped to a status and the error body of
//! the contract (`{"error":{"code","message"}}`) in exactly one place.

use http::StatusCode;
use lambda_http::{Body, Response};

use filestore_contract::RouteError;
use filestore_contract::api::{ErrorBody, ErrorDetail};

/// A failure of one request. Client mistakes carry their own code and message; server faults
/// carry context that is logged, never returned.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the request is malformed.
    #[error("{message}")]
    BadInput { code: &'static str, message: String },
    /// 401: no token, a bad token, or wrong credentials.
    #[error("{message}")]
    Unauthorized { code: &'static str, message: String },
    /// 404: does not exist, or is not the caller's (the two are never told apart).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// 405: the path exists but not with this method; `allow` lists the methods it has
    /// (the `Allow` header RFC 9110 requires on a 405).
    #[error("method not allowed; this path allows {allow}")]
    MethodNotAllowed { allow: String },
    /// 409: the request conflicts with the current state.
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    /// 413: the request body or the data is too large.
    #[error("{message}")]
    TooLarge { code: &'static str, message: String },
    /// 403: authenticated, but not allowed to do this.
    #[error("{message}")]
    Forbidden { code: &'static str, message: String },
    /// 429: too many attempts; try again after this many seconds.
    #[error("too many attempts; try again after the Retry-After delay")]
    Throttled { retry_after: u64 },
    /// 429: the caller holds too many of something (open uploads); `retry_after` seconds
    /// until one is released on its own.
    #[error("{message}")]
    TooMany {
        code: &'static str,
        message: String,
        retry_after: u64,
    },
    /// 422: well-formed, but semantically wrong.
    #[error("{message}")]
    Unprocessable { code: &'static str, message: String },
    /// 500: a real server fault; the detail is logged, the client sees a generic message.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<RouteError> for ApiError {
    fn from(err: RouteError) -> Self {
        match err {
            RouteError::NotFound(what) => Self::NotFound(what),
            RouteError::MethodNotAllowed { allow } => Self::MethodNotAllowed { allow },
        }
    }
}

impl ApiError {
    pub fn bad_input(code: &'static str, message: impl Into<String>) -> Self {
        Self::BadInput {
            code,
            message: message.into(),
        }
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::Unauthorized {
            code: "unauthorized",
            message: message.into(),
        }
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::Conflict {
            code,
            message: message.into(),
        }
    }

    /// 409 `name_taken`: a file or folder of this name is in the folder already.
    pub fn name_taken(name: &str) -> Self {
        Self::conflict(
            "name_taken",
            format!("a file or folder named {name:?} is in that folder already"),
        )
    }

    /// 409 `parent_gone`: the folder a file was to go in was trashed or purged.
    pub fn parent_gone() -> Self {
        Self::conflict(
            "parent_gone",
            "the folder this was to go in is in the trash or gone; restore it, or choose \
             another folder",
        )
    }

    /// 413 `quota_exceeded`: storing `size` more bytes would pass the user's quota, of which
    /// `claimed` bytes are stored or reserved by open uploads.
    pub fn quota_exceeded(claimed: u64, size: u64, quota: u64) -> Self {
        Self::TooLarge {
            code: "quota_exceeded",
            message: format!(
                "storing {size} more bytes would pass your quota: {claimed} of {quota} bytes \
                 are stored or reserved by open uploads"
            ),
        }
    }

    pub fn unprocessable(code: &'static str, message: impl Into<String>) -> Self {
        Self::Unprocessable {
            code,
            message: message.into(),
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadInput { .. } => StatusCode::BAD_REQUEST,
            Self::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict { .. } => StatusCode::CONFLICT,
            Self::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Unprocessable { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Forbidden { .. } => StatusCode::FORBIDDEN,
            Self::Throttled { .. } | Self::TooMany { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            Self::BadInput { code, .. }
            | Self::Unauthorized { code, .. }
            | Self::Conflict { code, .. }
            | Self::TooLarge { code, .. }
            | Self::Forbidden { code, .. }
            | Self::TooMany { code, .. }
            | Self::Unprocessable { code, .. } => code,
            Self::Throttled { .. } => "too_many_attempts",
            Self::NotFound(_) => "not_found",
            Self::MethodNotAllowed { .. } => "method_not_allowed",
            Self::Internal(_) => "internal",
        }
    }

    /// The response for this error; server faults are logged here with their full context.
    pub fn into_response(self) -> Response<Body> {
        let status = self.status();
        let message = match &self {
            Self::Internal(err) => {
                tracing::error!(error = format!("{err:#}"), "request failed");
                "internal server error".to_string()
            }
            other => other.to_string(),
        };
        let body = serde_json::to_string(&ErrorBody {
            error: ErrorDetail {
                code: self.code().to_string(),
                message,
            },
        })
        .expect("an error body serializes");
        let mut builder = Response::builder()
            .status(status)
            .header(http::header::CONTENT_TYPE, "application/json");
        if status == StatusCode::UNAUTHORIZED {
            builder = builder.header(http::header::WWW_AUTHENTICATE, "Bearer");
        }
        match self {
            Self::Throttled { retry_after } | Self::TooMany { retry_after, .. } => {
                builder = builder.header(http::header::RETRY_AFTER, retry_after.max(1));
            }
            Self::MethodNotAllowed { allow } => {
                builder = builder.header(http::header::ALLOW, allow);
            }
            _ => {}
        }
        builder
            .body(Body::Text(body))
            .expect("static response parts are valid")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body_of(resp: &Response<Body>) -> serde_json::Value {
        match resp.body() {
            Body::Text(t) => serde_json::from_str(t).unwrap(),
            other => panic!("unexpected body {other:?}"),
        }
    }

    #[test]
    fn client_errors_carry_code_and_message() {
        let resp = ApiError::bad_input("invalid_request", "name is empty").into_response();
        assert_eq!(resp.status(), 400);
        assert_eq!(
            body_of(&resp),
            json!({"error": {"code": "invalid_request", "message": "name is empty"}})
        );
    }

    #[test]
    fn throttling_says_when_to_retry() {
        let resp = ApiError::Throttled { retry_after: 42 }.into_response();
        assert_eq!(resp.status(), 429);
        assert_eq!(resp.headers()[http::header::RETRY_AFTER], "42");
        assert_eq!(body_of(&resp)["error"]["code"], "too_many_attempts");
    }

    #[test]
    fn method_not_allowed_says_which_methods_are() {
        let resp = ApiError::MethodNotAllowed {
            allow: "GET, DELETE".into(),
        }
        .into_response();
        assert_eq!(resp.status(), 405);
        assert_eq!(resp.headers()[http::header::ALLOW], "GET, DELETE");
        assert_eq!(body_of(&resp)["error"]["code"], "method_not_allowed");
    }

    /// A request no route takes answers the contract's 404, or 405 with the path's methods.
    #[test]
    fn unrouted_requests_are_404_or_405_with_allow() {
        use filestore_contract::resolve;
        use http::Method;
        let missing = ApiError::from(resolve(&Method::GET, "/v1/nope").unwrap_err());
        assert_eq!(missing.status(), 404);
        assert_eq!(missing.to_string(), "route not found");
        let resp =
            ApiError::from(resolve(&Method::PUT, "/v1/files/a").unwrap_err()).into_response();
        assert_eq!(resp.status(), 405);
        assert_eq!(resp.headers()[http::header::ALLOW], "GET, PATCH, DELETE");
    }

    #[test]
    fn internal_errors_hide_their_detail() {
        let resp = ApiError::Internal(anyhow::anyhow!("dynamodb exploded")).into_response();
        assert_eq!(resp.status(), 500);
        let body = body_of(&resp);
        assert_eq!(body["error"]["code"], "internal");
        assert!(!body.to_string().contains("dynamodb"));
    }
}

//! The HTTP edge of a function: JSON bodies in and out, bearer tokens, the headers every
//! answer carries. Which route a request is comes from `filestore_contract::routes`.

use std::net::{IpAddr, Ipv6Addr};

use http::{HeaderValue, StatusCode, header};
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;

use filestore_contract::{Function, Matched, RouteKey};

use crate::error::ApiError;
use crate::repo::UserRecord;

/// Largest JSON body any route accepts. The biggest legitimate one is a presign call with
/// 1000 part numbers and checksums (~60 KiB).
pub const MAX_BODY_BYTES: usize = 128 * 1024;

/// A request matched to its route, with its authenticated caller unless the route is public
/// ([`crate::AppState::route`]).
#[derive(Debug)]
pub struct Routed {
    pub matched: Matched,
    pub caller: Option<UserRecord>,
}

impl Routed {
    pub fn key(&self) -> RouteKey {
        self.matched.key
    }

    /// The route's `{id}` as a server-made id.
    ///
    /// # Errors
    /// 404 for `what` when it is missing or malformed (no such id can exist).
    pub fn id_of<T: TryFrom<String>>(&self, what: &'static str) -> Result<T, ApiError> {
        Ok(self.matched.id_of(what)?)
    }

    /// The caller of a route that needs a token.
    ///
    /// # Errors
    /// 401 on a public route, which has no caller.
    pub fn caller(&self) -> Result<&UserRecord, ApiError> {
        self.caller
            .as_ref()
            .ok_or_else(|| ApiError::unauthorized("this route takes no token"))
    }
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

/// Who sent a request, as throttling counts it: API Gateway's
/// `requestContext.http.sourceIp` (the TCP peer it saw, never a header the client sent). An
/// IPv4 address counts alone; an IPv6 address counts as its /64, since one host commonly
/// holds a whole /64. `"unknown"` when there is no such address (not an API Gateway event),
/// so every such request shares one count.
pub fn source_address(req: &Request) -> String {
    let ip = match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx.http.source_ip.as_deref(),
        _ => None,
    }
    .and_then(|ip| ip.parse::<IpAddr>().ok());
    match ip.map(|ip| ip.to_canonical()) {
        Some(IpAddr::V4(v4)) => v4.to_string(),
        Some(IpAddr::V6(v6)) => {
            let network = u128::from(v6) & !((1u128 << 64) - 1);
            format!("{}/64", Ipv6Addr::from(network))
        }
        None => "unknown".into(),
    }
}

/// Page size of a listing when `limit` is not given.
pub const DEFAULT_LIMIT: u32 = 100;

/// A listing's `limit`: 1..=1000, default 100.
///
/// # Errors
/// 400 for anything else.
pub fn parse_limit(raw: Option<&str>) -> Result<u32, ApiError> {
    let max = filestore_contract::api::MAX_LIST_LIMIT;
    match raw {
        None => Ok(DEFAULT_LIMIT),
        Some(s) => s
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=max).contains(n))
            .ok_or_else(|| {
                ApiError::bad_input(
                    "invalid_limit",
                    format!("limit must be a whole number from 1 to {max}"),
                )
            }),
    }
}

/// The opaque cursor that resumes a listing after the item `id`; `tag` names the listing
/// (`f1:` files, `u1:` uploads), so one listing's cursor is not another's.
pub fn encode_cursor(tag: &str, id: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{tag}{id}"))
}

/// The id inside a cursor [`encode_cursor`] made with `tag`. It is only ever used as a sort
/// key in the caller's own partition, so a forged one reaches nothing of anyone else's.
///
/// # Errors
/// 400 `invalid_cursor` for a cursor this server did not make.
pub fn decode_cursor<T: TryFrom<String>>(tag: &str, cursor: &str) -> Result<T, ApiError> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .and_then(|s| T::try_from(s.strip_prefix(tag)?.to_string()).ok())
        .ok_or_else(|| ApiError::bad_input("invalid_cursor", "cursor is not valid"))
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

/// The header every answer names its request in: API Gateway's request id, which the
/// function's log lines and metrics carry too.
pub const REQUEST_ID: &str = "x-request-id";

/// Serves one API Gateway request as one invocation of `function` (the preamble every HTTP
/// handler shares): `work` runs inside [`crate::metrics::invocation`], so its log lines carry
/// the request id and the function's name and what it records is written as metrics; the
/// answer names the request in [`REQUEST_ID`].
pub async fn serve(
    function: Function,
    req: &Request,
    work: impl Future<Output = Response<Body>>,
) -> Result<Response<Body>, std::convert::Infallible> {
    let request_id = request_id(req);
    let mut resp = crate::metrics::invocation(function.name(), &request_id, work).await;
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        resp.headers_mut().insert(REQUEST_ID, value);
    }
    Ok(resp)
}

/// API Gateway's id of a request (`requestContext.requestId`), else the Lambda invocation's,
/// else a fresh one: every request has an id to find its log lines by.
pub fn request_id(req: &Request) -> String {
    let gateway = match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx.request_id.clone(),
        _ => None,
    };
    gateway
        .filter(|id| !id.is_empty())
        .or_else(|| req.lambda_context_ref().map(|ctx| ctx.request_id.clone()))
        .filter(|id| !id.is_empty())
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
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
    fn source_addresses_come_from_the_request_context_and_ipv6_counts_by_64() {
        let from = |ip: &str| {
            let event = serde_json::json!({
                "version": "2.0",
                "routeKey": "POST /v1/auth/login",
                "rawPath": "/v1/auth/login",
                "rawQueryString": "",
                "headers": {"x-forwarded-for": "203.0.113.9"},
                "requestContext": {
                    "accountId": "1", "apiId": "a", "domainName": "d", "domainPrefix": "d",
                    "http": {"method": "POST", "path": "/v1/auth/login", "protocol": "HTTP/1.1",
                             "sourceIp": ip, "userAgent": "t"},
                    "requestId": "r", "routeKey": "POST /v1/auth/login", "stage": "$default",
                    "time": "t", "timeEpoch": 0
                },
                "isBase64Encoded": false
            });
            source_address(&lambda_http::request::from_str(&event.to_string()).unwrap())
        };
        assert_eq!(from("192.0.2.7"), "192.0.2.7");
        assert_eq!(from("::ffff:192.0.2.7"), "192.0.2.7");
        assert_eq!(from("2001:db8:1:2:3:4:5:6"), "2001:db8:1:2::/64");
        assert_eq!(from("2001:db8:1:2:ffff::1"), "2001:db8:1:2::/64");
        assert_eq!(from("not an address"), "unknown");
        assert_eq!(source_address(&request("{}")), "unknown");
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

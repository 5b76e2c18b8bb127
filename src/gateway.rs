//! A local stand-in for API Gateway (HTTP API, payload 2.0): it turns each HTTP request into
//! the JSON event API Gateway would send, lets `lambda_http` parse it exactly as in Lambda,
//! and calls the function the route belongs to (what no route matches goes to the auth
//! function, as API Gateway's `$default` route does; it also serves the web page).
//!
//! As API Gateway does, the event says who called from the TCP connection itself:
//! `requestContext.http.sourceIp` is the peer address and `domainName` the address the
//! runner listens on. Headers a client could forge to say otherwise (`X-Forwarded-*`,
//! `Forwarded`) are dropped, and `X-Forwarded-For`, `-Proto` and `-Port` are set from the
//! connection.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use filestore_shared::AppState;

use crate::cors::Cors;
use filestore_contract::{Function, resolve};
use filestore_shared::http::{MAX_BODY_BYTES, REQUEST_ID, respond};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use lambda_http::{Body, Request, Response};
use percent_encoding::percent_decode_str;
use serde_json::{Map, Value, json};
use tokio::net::TcpListener;

/// The state each function runs with. Deployed, every function is a Lambda of its own, with
/// its own SDK clients and IAM role; locally they share one state ([`Functions::shared`])
/// unless a test gives each its own, e.g. to record which AWS calls each one makes.
#[derive(Clone)]
pub struct Functions(Arc<dyn Fn(Function) -> Arc<AppState> + Send + Sync>);

impl Functions {
    /// Every function runs with `state`.
    pub fn shared(state: Arc<AppState>) -> Self {
        Self(Arc::new(move |_| state.clone()))
    }

    /// Each function runs with the state `state_of` gives it.
    pub fn each(state_of: impl Fn(Function) -> Arc<AppState> + Send + Sync + 'static) -> Self {
        Self(Arc::new(state_of))
    }

    fn state(&self, function: Function) -> Arc<AppState> {
        (self.0)(function)
    }
}

/// Both ends of a client's TCP connection: all the event trusts about who called and how.
#[derive(Clone, Copy, Debug)]
pub struct Connection {
    /// The client: `requestContext.http.sourceIp`.
    pub peer: SocketAddr,
    /// The runner's own address: `requestContext.domainName`.
    pub local: SocketAddr,
}

/// Serves every route on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, functions: Functions, cors: Arc<Cors>) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(conn) => conn,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                continue;
            }
        };
        let local = match stream.local_addr() {
            Ok(local) => local,
            Err(e) => {
                tracing::warn!(error = %e, "connection without a local address");
                continue;
            }
        };
        let connection = Connection { peer, local };
        let (functions, cors) = (functions.clone(), cors.clone());
        tokio::spawn(async move {
            let service =
                service_fn(move |req| handle(functions.clone(), cors.clone(), connection, req));
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn handle(
    functions: Functions,
    cors: Arc<Cors>,
    connection: Connection,
    req: hyper::Request<Incoming>,
) -> Result<hyper::Response<Full<Bytes>>, Infallible> {
    let started = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    // As API Gateway does, every request gets an id; the function's log lines carry it, and
    // answers the runner gives itself name it too.
    let request_id = uuid::Uuid::new_v4().to_string();
    let mut resp = match cors.preflight(&method, req.headers()) {
        Some(preflight) => preflight,
        None => {
            let request_headers = req.headers().clone();
            let mut resp = dispatch(&functions, connection, req, &request_id).await;
            cors.decorate(&request_headers, resp.headers_mut());
            resp
        }
    };
    if let Ok(value) = http::HeaderValue::from_str(&request_id) {
        resp.headers_mut().entry(REQUEST_ID).or_insert(value);
    }
    tracing::info!(
        %method,
        path,
        status = resp.status().as_u16(),
        ms = started.elapsed().as_millis() as u64,
        request_id,
        "request"
    );
    Ok(into_hyper(resp))
}

async fn dispatch(
    functions: &Functions,
    connection: Connection,
    req: hyper::Request<Incoming>,
    request_id: &str,
) -> Response<Body> {
    let (parts, body) = req.into_parts();
    // Like API Gateway's `$default` route, what no route matches goes to the auth function,
    // which serves the web page or answers the contract's 404 or 405.
    let (function, route_key, param) = match resolve(&parts.method, parts.uri.path()) {
        Ok(m) => (m.key.function(), m.key.route_key(), m.key.param().zip(m.id)),
        Err(_) => (Function::Auth, "$default".to_string(), None),
    };
    let body = match read_body(body).await {
        Ok(b) => b,
        Err(e) => return respond(Err(e)),
    };
    let event = api_gateway_event(
        &parts,
        &body,
        connection,
        route_key,
        param.as_ref().map(|(name, value)| (*name, value.as_str())),
        request_id,
    );
    let request: Request = match lambda_http::request::from_str(&event.to_string()) {
        Ok(r) => r,
        Err(e) => {
            return respond(Err(filestore_shared::ApiError::bad_input(
                "invalid_request",
                format!("request could not be delivered: {e}"),
            )));
        }
    };
    let state = &*functions.state(function);
    let result = match function {
        Function::Auth => filestore_auth::handler(state, request).await,
        Function::Upload => filestore_upload::handler(state, request).await,
        Function::Merge => filestore_merge::handler(state, request).await,
        Function::Files => filestore_files::handler(state, request).await,
        Function::FastUpload => filestore_fastupload::handler(state, request).await,
        Function::Shares => filestore_shares::handler(state, request).await,
        Function::Trash => filestore_trash::handler(state, request).await,
        Function::Folders => filestore_folders::handler(state, request).await,
    };
    match result {
        Ok(resp) => resp,
        Err(never) => match never {},
    }
}

/// How much of an oversized body is read (and dropped) before answering 413, so the client
/// is not cut off mid-send and sees the answer. API Gateway itself refuses past 10 MB.
const DRAIN_LIMIT: usize = 16 * 1024 * 1024;

/// Reads a request body of at most [`MAX_BODY_BYTES`].
async fn read_body(mut body: Incoming) -> Result<Bytes, filestore_shared::ApiError> {
    let mut kept = Vec::new();
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            filestore_shared::ApiError::bad_input(
                "invalid_request",
                format!("reading the body: {e}"),
            )
        })?;
        if let Ok(data) = frame.into_data() {
            seen += data.len();
            if seen <= MAX_BODY_BYTES {
                kept.extend_from_slice(&data);
            } else if seen > DRAIN_LIMIT {
                break;
            }
        }
    }
    if seen > MAX_BODY_BYTES {
        return Err(filestore_shared::ApiError::TooLarge {
            code: "body_too_large",
            message: format!("request body must be at most {MAX_BODY_BYTES} bytes"),
        });
    }
    Ok(Bytes::from(kept))
}

fn decode_component(s: &str) -> String {
    percent_decode_str(&s.replace('+', " "))
        .decode_utf8_lossy()
        .into_owned()
}

/// Headers that say who the client is or how it connected. A client can send any of them,
/// so the event never carries the client's own.
fn is_forwarding_header(name: &str) -> bool {
    name.starts_with("x-forwarded-") || name == "forwarded"
}

/// The API Gateway HTTP API (payload format 2.0) event for a request; `param` is the
/// route's path parameter, by name.
pub fn api_gateway_event(
    parts: &http::request::Parts,
    body: &[u8],
    connection: Connection,
    route_key: String,
    param: Option<(&str, &str)>,
    request_id: &str,
) -> Value {
    // API Gateway joins repeated headers and query parameters with commas.
    let mut headers = Map::new();
    for (name, value) in &parts.headers {
        if is_forwarding_header(name.as_str()) {
            continue;
        }
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        let joined = match headers.get(name.as_str()) {
            Some(Value::String(prev)) => format!("{prev},{value}"),
            _ => value,
        };
        headers.insert(name.as_str().to_string(), Value::String(joined));
    }
    // API Gateway tells the function how the client reached it, from the connection.
    let source_ip = connection.peer.ip().to_string();
    for (name, value) in [
        ("x-forwarded-for", source_ip.clone()),
        ("x-forwarded-proto", "http".to_string()),
        ("x-forwarded-port", connection.local.port().to_string()),
    ] {
        headers.insert(name.into(), Value::String(value));
    }
    let raw_query = parts.uri.query().unwrap_or("");
    let mut query = Map::new();
    for pair in raw_query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let (k, v) = (decode_component(k), decode_component(v));
        let joined = match query.get(&k) {
            Some(Value::String(prev)) => format!("{prev},{v}"),
            _ => v,
        };
        query.insert(k, Value::String(joined));
    }
    let (body, is_base64) = match std::str::from_utf8(body) {
        _ if body.is_empty() => (Value::Null, false),
        Ok(text) => (Value::String(text.to_string()), false),
        Err(_) => (Value::String(STANDARD.encode(body)), true),
    };
    let now = time::OffsetDateTime::now_utc();
    let user_agent = parts
        .headers
        .get(http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    json!({
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": parts.uri.path(),
        "rawQueryString": raw_query,
        "headers": headers,
        "queryStringParameters": if query.is_empty() { Value::Null } else { Value::Object(query) },
        "pathParameters": param.map(|(name, value)| json!({ name: value })),
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "local",
            "domainName": connection.local.to_string(),
            "domainPrefix": "local",
            "http": {
                "method": parts.method.as_str(),
                "path": parts.uri.path(),
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": user_agent,
            },
            "requestId": request_id,
            "routeKey": route_key,
            "stage": "$default",
            "time": now.to_string(),
            "timeEpoch": now.unix_timestamp() * 1000,
        },
        "body": body,
        "isBase64Encoded": is_base64,
    })
}

fn into_hyper(resp: Response<Body>) -> hyper::Response<Full<Bytes>> {
    let (parts, body) = resp.into_parts();
    let bytes = match body {
        Body::Text(t) => Bytes::from(t),
        Body::Binary(b) => Bytes::from(b),
        _ => Bytes::new(),
    };
    hyper::Response::from_parts(parts, Full::new(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use lambda_http::RequestExt;
    use lambda_http::request::RequestContext;

    fn event_with(method: &str, uri: &str, body: &[u8], headers: &[(&str, &str)]) -> Request {
        let mut req = http::Request::builder()
            .method(method)
            .uri(uri)
            .header("content-type", "application/json")
            .header("x-multi", "a")
            .header("x-multi", "b");
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        let (parts, ()) = req.body(()).unwrap().into_parts();
        let matched = resolve(&parts.method, parts.uri.path()).unwrap();
        let connection = Connection {
            peer: "127.0.0.7:50000".parse().unwrap(),
            local: "127.0.0.1:8080".parse().unwrap(),
        };
        let value = api_gateway_event(
            &parts,
            body,
            connection,
            matched.key.route_key(),
            matched.key.param().zip(matched.id.as_deref()),
            "req-1",
        );
        lambda_http::request::from_str(&value.to_string()).unwrap()
    }

    fn event(method: &str, uri: &str, body: &[u8]) -> Request {
        event_with(method, uri, body, &[])
    }

    /// Who called comes from the connection: a client's `X-Forwarded-For`, `-Proto`,
    /// `-Host` or `Forwarded` never reaches the function, and `Host` does not become the
    /// domain.
    #[test]
    fn forged_forwarding_headers_are_replaced_by_the_connection() {
        let req = event_with(
            "POST",
            "/v1/auth/login",
            b"{}",
            &[
                ("host", "evil.example"),
                ("x-forwarded-for", "203.0.113.9"),
                ("x-forwarded-proto", "javascript"),
                ("x-forwarded-host", "evil.example"),
                ("x-forwarded-port", "1"),
                ("forwarded", "for=203.0.113.9;proto=javascript"),
            ],
        );
        let headers = req.headers();
        assert_eq!(headers["x-forwarded-for"], "127.0.0.7");
        assert_eq!(headers["x-forwarded-proto"], "http");
        assert_eq!(headers["x-forwarded-port"], "8080");
        assert!(headers.get("x-forwarded-host").is_none());
        assert!(headers.get("forwarded").is_none());
        match req.request_context() {
            RequestContext::ApiGatewayV2(ctx) => {
                assert_eq!(ctx.http.source_ip.as_deref(), Some("127.0.0.7"));
                assert_eq!(ctx.domain_name.as_deref(), Some("127.0.0.1:8080"));
            }
            other => panic!("unexpected context {other:?}"),
        }
    }

    /// The event parses as lambda_http parses API Gateway's own: path parameters, decoded
    /// query parameters, route key and body all arrive where a handler looks for them.
    #[test]
    fn events_carry_what_api_gateway_would() {
        let req = event(
            "GET",
            "/v1/files/abc/download?redirect=true&name=a%20b+c",
            b"",
        );
        assert_eq!(req.method(), "GET");
        assert_eq!(req.uri().path(), "/v1/files/abc/download");
        assert_eq!(req.path_parameters().first("id"), Some("abc"));
        let share = event("GET", "/v1/s/t0k", b"");
        assert_eq!(share.path_parameters().first("token"), Some("t0k"));
        let query = req.query_string_parameters();
        assert_eq!(query.first("redirect"), Some("true"));
        assert_eq!(query.first("name"), Some("a b c"));
        assert_eq!(req.headers()["x-multi"], "a,b");
        match req.request_context() {
            RequestContext::ApiGatewayV2(ctx) => {
                assert_eq!(
                    ctx.route_key.as_deref(),
                    Some("GET /v1/files/{id}/download")
                );
                assert_eq!(ctx.stage.as_deref(), Some("$default"));
                assert_eq!(ctx.request_id.as_deref(), Some("req-1"));
            }
            other => panic!("unexpected context {other:?}"),
        }
    }

    /// Text bodies arrive as text, binary ones base64-encoded and decoded back by lambda_http.
    #[test]
    fn bodies_survive_the_event() {
        let req = event("POST", "/v1/uploads", br#"{"name":"a"}"#);
        assert!(matches!(req.body(), Body::Text(t) if t == r#"{"name":"a"}"#));
        let req = event("POST", "/v1/uploads", &[0xff, 0x00, 0xfe]);
        assert!(matches!(req.body(), Body::Binary(b) if b == &[0xff, 0x00, 0xfe]));
        let req = event("POST", "/v1/uploads/x/complete", b"");
        assert!(matches!(req.body(), Body::Empty));
    }
}

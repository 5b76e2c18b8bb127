//! CORS for the API, from an allow-list of origins (`FILESTORE_CORS_ORIGINS`), as API
//! Gateway's CORS configuration does it when deployed. Never `*`: an origin is either named
//! or gets no CORS headers at all. Tokens travel in `Authorization`, not cookies, so no
//! credentials are allowed either.

use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use lambda_http::{Body, Response};

/// Methods the contract uses.
const METHODS: &str = "GET, POST, PATCH, DELETE";
/// Request headers a browser client sends.
const HEADERS: &str = "authorization, content-type";
/// Response headers a browser client may read.
const EXPOSED: &str = "retry-after, location, x-request-id";
/// How long a browser may cache a preflight answer, in seconds.
const MAX_AGE: &str = "600";

/// The allowed origins.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Cors {
    origins: Vec<String>,
}

impl Cors {
    /// Parses a comma-separated list of origins (`scheme://host[:port]`); empty allows none.
    ///
    /// # Errors
    /// `*`, or an entry that is not an origin.
    pub fn parse(list: &str) -> Result<Self, String> {
        let mut origins = Vec::new();
        for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (scheme, rest) = entry
                .split_once("://")
                .ok_or_else(|| format!("{entry:?} is not an origin such as https://example.com"))?;
            if entry == "*"
                || !matches!(scheme, "http" | "https")
                || rest.is_empty()
                || rest.contains('/')
            {
                return Err(format!(
                    "{entry:?} is not an origin such as https://example.com (no path, no *)"
                ));
            }
            origins.push(entry.to_ascii_lowercase());
        }
        Ok(Self { origins })
    }

    /// The allowed origins, lowercase.
    pub fn origins(&self) -> &[String] {
        &self.origins
    }

    fn allowed<'a>(&self, headers: &'a HeaderMap) -> Option<&'a HeaderValue> {
        let origin = headers.get(header::ORIGIN)?;
        let text = origin.to_str().ok()?.to_ascii_lowercase();
        self.origins.contains(&text).then_some(origin)
    }

    /// The answer to a CORS preflight (`OPTIONS` with `Access-Control-Request-Method`), or
    /// `None` when the request is not one. An origin not on the list gets no CORS headers.
    pub fn preflight(&self, method: &Method, headers: &HeaderMap) -> Option<Response<Body>> {
        if method != Method::OPTIONS || !headers.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
        {
            return None;
        }
        let mut resp = Response::new(Body::Empty);
        *resp.status_mut() = StatusCode::NO_CONTENT;
        let out = resp.headers_mut();
        out.insert(header::VARY, HeaderValue::from_static("origin"));
        if let Some(origin) = self.allowed(headers) {
            out.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
            out.insert(
                header::ACCESS_CONTROL_ALLOW_METHODS,
                HeaderValue::from_static(METHODS),
            );
            out.insert(
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                HeaderValue::from_static(HEADERS),
            );
            out.insert(
                header::ACCESS_CONTROL_MAX_AGE,
                HeaderValue::from_static(MAX_AGE),
            );
        }
        Some(resp)
    }

    /// Adds the CORS headers of an actual request's answer.
    pub fn decorate(&self, request: &HeaderMap, response: &mut HeaderMap) {
        if let Some(origin) = self.allowed(request) {
            response.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
            response.insert(
                header::ACCESS_CONTROL_EXPOSE_HEADERS,
                HeaderValue::from_static(EXPOSED),
            );
            response.append(header::VARY, HeaderValue::from_static("origin"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn only_real_origins_are_accepted() {
        assert_eq!(Cors::parse("").unwrap(), Cors::default());
        let cors = Cors::parse("https://app.example.com, http://127.0.0.1:8080").unwrap();
        assert_eq!(cors.origins.len(), 2);
        for bad in [
            "*",
            "example.com",
            "https://a.com/path",
            "ftp://a.com",
            "https://",
        ] {
            assert!(Cors::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn listed_origins_get_headers_and_others_none() {
        let cors = Cors::parse("https://app.example.com").unwrap();
        let pre = headers(&[
            ("origin", "https://app.example.com"),
            ("access-control-request-method", "POST"),
        ]);
        let resp = cors.preflight(&Method::OPTIONS, &pre).unwrap();
        assert_eq!(resp.status(), 204);
        assert_eq!(
            resp.headers()["access-control-allow-origin"],
            "https://app.example.com"
        );
        assert!(
            resp.headers()
                .get("access-control-allow-credentials")
                .is_none()
        );

        let evil = headers(&[
            ("origin", "https://evil.example"),
            ("access-control-request-method", "POST"),
        ]);
        let resp = cors.preflight(&Method::OPTIONS, &evil).unwrap();
        assert!(resp.headers().get("access-control-allow-origin").is_none());

        let mut out = HeaderMap::new();
        cors.decorate(&headers(&[("origin", "https://evil.example")]), &mut out);
        assert!(out.is_empty());
        cors.decorate(&headers(&[("origin", "https://app.example.com")]), &mut out);
        assert_eq!(
            out["access-control-allow-origin"],
            "https://app.example.com"
        );

        assert!(cors.preflight(&Method::GET, &pre).is_none());
        assert!(cors.preflight(&Method::OPTIONS, &headers(&[])).is_none());
    }
}

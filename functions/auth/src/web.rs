//! The web page, served at `/` beside the API, from the same origin, so the page needs no
//! CORS to call the API. API Gateway sends every request no route matches to this function
//! (`$default`), and so does the local runner; the page's three files are answered here, the
//! rest with the contract's 404 or 405.
//!
//! The files are the committed bundle in `web/dist/` (built from `web/src/` with esbuild),
//! compiled in, so neither the function nor the runner needs Node. A CDN in front would cache
//! them; at 82 KB gzipped, the function serves them well enough.

use filestore_shared::config::Config;
use lambda_http::Body;
use lambda_http::http::{self, HeaderValue, Method, Response, StatusCode, header};

/// One static file of the page.
#[derive(Clone, Copy, Debug)]
pub struct Asset {
    pub content_type: &'static str,
    pub bytes: &'static [u8],
}

const INDEX: Asset = Asset {
    content_type: "text/html; charset=utf-8",
    bytes: include_bytes!("../../../web/dist/index.html"),
};
const SCRIPT: Asset = Asset {
    content_type: "text/javascript; charset=utf-8",
    bytes: include_bytes!("../../../web/dist/app.js"),
};
const STYLE: Asset = Asset {
    content_type: "text/css; charset=utf-8",
    bytes: include_bytes!("../../../web/dist/app.css"),
};

/// The page's file at `path`, if any. Only exact names: everything else, `/v1/...` above all,
/// stays the API's.
pub fn asset(path: &str) -> Option<Asset> {
    match path {
        "/" | "/index.html" => Some(INDEX),
        "/app.js" => Some(SCRIPT),
        "/app.css" => Some(STYLE),
        _ => None,
    }
}

/// `scheme://host[:port]` of an endpoint URL, as a CSP source.
fn origin(url: &str) -> Option<String> {
    let uri: http::Uri = url.parse().ok()?;
    Some(format!("{}://{}", uri.scheme_str()?, uri.authority()?))
}

/// The page's Content-Security-Policy: its own script and styles only, and requests to the API
/// (same origin) and to the S3 endpoints its presigned URLs point at (part `PUT`s are
/// cross-origin). Downloads are navigations, which `connect-src` does not govern.
pub fn content_security_policy(config: &Config) -> String {
    let mut connect = vec!["'self'".to_string()];
    let endpoints = [
        config.endpoint_url.as_deref(),
        config
            .cold
            .as_ref()
            .and_then(|cold| cold.endpoint_url.as_deref()),
    ];
    for endpoint in endpoints.into_iter().flatten() {
        if let Some(o) = origin(endpoint)
            && !connect.contains(&o)
        {
            connect.push(o);
        }
    }
    if config.endpoint_url.is_none() {
        // On AWS, part URLs are virtual-hosted on the deployment's own hot bucket (us-east-1
        // also answers on the global name): no other bucket, so a page tricked into sending
        // bytes cannot send them to one an attacker owns.
        let bucket = &config.hot_bucket;
        connect.push(format!(
            "https://{bucket}.s3.{}.amazonaws.com",
            config.region
        ));
        if config.region == "us-east-1" {
            connect.push(format!("https://{bucket}.s3.amazonaws.com"));
        }
    }
    format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; \
         media-src blob:; connect-src {}; form-action 'self'; frame-ancestors 'none'; \
         base-uri 'none'",
        connect.join(" ")
    )
}

/// The response for a page request, or `None` when the request is not for the page.
pub fn serve(method: &Method, path: &str, config: &Config) -> Option<Response<Body>> {
    if method != Method::GET && method != Method::HEAD {
        return None;
    }
    let asset = asset(path)?;
    let mut resp = Response::new(Body::Binary(asset.bytes.to_vec()));
    *resp.status_mut() = StatusCode::OK;
    let headers = resp.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    if let Ok(csp) = HeaderValue::from_str(&content_security_policy(config)) {
        headers.insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // Presigned URLs and tokens never leak through Referer.
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Some(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(endpoint: Option<&str>, cold: Option<&str>) -> Config {
        Config::from_lookup(|k| match k {
            "FILESTORE_TABLE" => Some("t".into()),
            "FILESTORE_HOT_BUCKET" => Some("hot".into()),
            "FILESTORE_COLD_BUCKET" => Some("cold".into()),
            "FILESTORE_JWT_SECRET" => Some("x".repeat(32)),
            "AWS_ENDPOINT_URL" => endpoint.map(str::to_string),
            "FILESTORE_COLD_ENDPOINT_URL" => cold.map(str::to_string),
            _ => None,
        })
        .unwrap()
    }

    /// Part uploads go to the emulators' origins, so those (and only those) are allowed.
    #[test]
    fn policy_allows_the_s3_endpoints_and_nothing_else() {
        let csp = content_security_policy(&config(
            Some("http://127.0.0.1:4566/"),
            Some("http://127.0.0.1:4567"),
        ));
        assert!(
            csp.contains("connect-src 'self' http://127.0.0.1:4566 http://127.0.0.1:4567;"),
            "{csp}"
        );
        assert!(csp.contains("default-src 'none'"));
        assert!(csp.contains("script-src 'self';"));
        assert!(!csp.contains("unsafe"));
    }

    /// Without an endpoint, presigned URLs point at the deployment's own bucket on AWS S3,
    /// and only there: no wildcard another bucket would match.
    #[test]
    fn policy_without_an_endpoint_allows_only_the_hot_bucket() {
        let csp = content_security_policy(&config(None, None));
        assert!(
            csp.contains(
                "connect-src 'self' https://hot.s3.us-east-1.amazonaws.com \
                 https://hot.s3.amazonaws.com;"
            ),
            "{csp}"
        );
        assert!(!csp.contains('*'), "{csp}");
    }

    /// Only the page's own files are served; API paths and other methods are not.
    #[test]
    fn only_the_pages_files_are_served() {
        let c = config(Some("http://127.0.0.1:4566"), None);
        for path in ["/", "/index.html", "/app.js", "/app.css"] {
            assert!(serve(&Method::GET, path, &c).is_some(), "{path}");
            assert!(serve(&Method::HEAD, path, &c).is_some(), "{path}");
        }
        for path in [
            "/v1/files",
            "/app.js.map",
            "/../Cargo.toml",
            "/dist/app.js",
            "",
        ] {
            assert!(serve(&Method::GET, path, &c).is_none(), "{path}");
        }
        assert!(serve(&Method::POST, "/", &c).is_none());
        let index = serve(&Method::GET, "/", &c).unwrap();
        assert_eq!(
            index.headers()[header::CONTENT_TYPE],
            "text/html; charset=utf-8"
        );
    }
}

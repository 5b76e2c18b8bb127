//! A forward HTTP proxy between the binary and the local system (the binary reaches it
//! through `HTTP_PROXY`): it passes every request on unchanged, Host header and all, so
//! presigned URLs keep their signatures, and records each one, so a test counts the API
//! calls and the ranged GETs a command made. A rule may refuse a request instead, as storage
//! refuses an expired URL.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One request the proxy received.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    /// The absolute URL asked for.
    pub url: String,
    pub range: Option<String>,
    /// Whether the rule refused it (403) instead of passing it on.
    pub refused: bool,
}

impl Seen {
    /// A GET of a presigned storage URL.
    pub fn is_storage_get(&self) -> bool {
        self.method == "GET" && self.url.contains("X-Amz-Signature=")
    }

    /// The presigned URL's signing time (`X-Amz-Date`, `YYYYMMDDTHHMMSSZ`).
    pub fn signed_at(&self) -> Option<&str> {
        let query = self.url.split_once('?')?.1;
        query
            .split('&')
            .find_map(|pair| pair.strip_prefix("X-Amz-Date="))
    }
}

/// What to do with a request, decided from it and the requests before it.
pub enum Action {
    PassOn,
    /// Answer 403 `AccessDenied` "Request has expired", as S3 does, once the clock has
    /// moved past the URL's signing second (so a URL presigned afresh differs from it).
    Expire,
}

pub type Rule = fn(&Seen, &[Seen]) -> Action;

pub struct Proxy {
    pub url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Proxy {
    /// A proxy that passes everything on.
    pub fn start() -> Self {
        Self::with_rule(|_, _| Action::PassOn)
    }

    pub fn with_rule(rule: Rule) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let log = log.clone();
                std::thread::spawn(move || {
                    let _ = serve(client, &log, rule);
                });
            }
        });
        Self { url, seen }
    }

    /// Routes `cmd`'s HTTP through this proxy.
    pub fn route(&self, cmd: &mut Command) {
        for name in ["HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"] {
            cmd.env(name, &self.url);
        }
        cmd.env_remove("NO_PROXY").env_remove("no_proxy");
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// Forgets what was seen so far.
    pub fn clear(&self) {
        self.seen.lock().unwrap().clear();
    }

    /// The storage GETs passed on, in order.
    pub fn storage_gets(&self) -> Vec<Seen> {
        self.seen()
            .into_iter()
            .filter(|s| s.is_storage_get() && !s.refused)
            .collect()
    }

    /// The API calls for a download URL.
    pub fn download_url_calls(&self) -> usize {
        self.seen()
            .iter()
            .filter(|s| s.method == "GET" && !s.is_storage_get() && s.url.contains("/download"))
            .count()
    }
}

/// One request per connection: read it, decide, pass it on (with `Connection: close`) and
/// copy the answer back until the server closes.
fn serve(client: TcpStream, log: &Mutex<Vec<Seen>>, rule: Rule) -> std::io::Result<()> {
    let mut reader = BufReader::new(client.try_clone()?);
    let mut client = client;
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut words = line.split_whitespace();
    let method = words.next().unwrap_or_default().to_string();
    let url = words.next().unwrap_or_default().to_string();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        reader.read_line(&mut h)?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    let len: usize = header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    reader.read_exact(&mut body)?;
    let mut seen = Seen {
        method,
        url,
        range: header("range"),
        refused: false,
    };
    let action = {
        let mut log = log.lock().unwrap();
        let action = rule(&seen, &log);
        seen.refused = matches!(action, Action::Expire);
        log.push(seen.clone());
        action
    };
    if let Action::Expire = action {
        let signed = seen.signed_at().unwrap_or_default().to_string();
        while now_amz() <= signed {
            std::thread::sleep(Duration::from_millis(100));
        }
        let body = "<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>";
        let reply = format!(
            "HTTP/1.1 403 Forbidden\r\ncontent-type: application/xml\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        return client.write_all(reply.as_bytes());
    }

    let rest = seen.url.strip_prefix("http://").unwrap_or(&seen.url);
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let mut upstream = TcpStream::connect(authority)?;
    let mut head = format!("{} {} HTTP/1.1\r\n", seen.method, path);
    for (k, v) in &headers {
        if !["connection", "proxy-connection", "keep-alive"]
            .iter()
            .any(|h| k.eq_ignore_ascii_case(h))
        {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
    }
    head.push_str("connection: close\r\n\r\n");
    upstream.write_all(head.as_bytes())?;
    upstream.write_all(&body)?;
    let mut answer = BufReader::new(upstream);
    let mut head = String::new();
    loop {
        let mut h = String::new();
        answer.read_line(&mut h)?;
        if h.trim_end().is_empty() {
            break;
        }
        if !h.to_ascii_lowercase().starts_with("connection:") {
            head.push_str(&h);
        }
    }
    head.push_str("connection: close\r\n\r\n");
    client.write_all(head.as_bytes())?;
    std::io::copy(&mut answer, &mut client)?;
    Ok(())
}

/// Now as an `X-Amz-Date`.
fn now_amz() -> String {
    let format = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    time::OffsetDateTime::now_utc().format(&format).unwrap()
}

//! Faults the emulator cannot produce on demand, injected by a scripted stand-in for the API
//! and storage: an expired part URL (403) and a storage error (500).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use crate::helpers::Cli;

/// One request the stand-in received.
#[derive(Clone, Debug)]
struct Seen {
    method: String,
    path: String,
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

/// A stand-in for the API and storage, answering from `script`, recording every request.
struct Scripted {
    url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

type Script = fn(&Seen, &[Seen], &str) -> (u16, Value);

impl Scripted {
    fn start(script: Script) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (log, base) = (seen.clone(), url.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (log, base) = (log.clone(), base.clone());
                std::thread::spawn(move || serve(stream, &log, &base, script));
            }
        });
        Self { url, seen }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

/// HTTP/1.1 keep-alive, one request at a time, bodies by Content-Length.
fn serve(stream: TcpStream, log: &Mutex<Vec<Seen>>, base: &str, script: Script) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut words = line.split_whitespace();
        let method = words.next().unwrap_or_default().to_string();
        let path = words.next().unwrap_or_default().to_string();
        let mut headers = HashMap::new();
        loop {
            let mut h = String::new();
            reader.read_line(&mut h).unwrap();
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
            }
        }
        let len = headers
            .get("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0u8; len];
        reader.read_exact(&mut body).unwrap();
        let req = Seen {
            method,
            path,
            headers,
            body,
        };
        let (status, value) = {
            let mut log = log.lock().unwrap();
            let answer = script(&req, &log, base);
            log.push(req);
            answer
        };
        let body = if value.is_null() {
            String::new()
        } else {
            value.to_string()
        };
        let reply = format!(
            "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        if writer.write_all(reply.as_bytes()).is_err() {
            return;
        }
    }
}

fn file_json() -> Value {
    json!({"file_id": "0190a000-0000-7000-8000-0000000000f1", "name": "six.bin", "size": 6, "sha256": null,
           "content_type": "application/octet-stream", "created_at": "2026-01-01T00:00:00Z",
           "tier": "hot", "verified": false})
}

/// Two 4-byte parts. Part 1's first URL is refused as expired (403); part 2's first PUT
/// meets a storage fault (500). Every other request succeeds.
fn expired_url_and_storage_fault(req: &Seen, before: &[Seen], base: &str) -> (u16, Value) {
    let tries = |path: &str| before.iter().filter(|s| s.path == path).count();
    match (req.method.as_str(), req.path.as_str()) {
        ("POST", "/v1/uploads") => (
            201,
            json!({"upload_id": "0190a000-0000-7000-8000-0000000000a1", "part_size": 4, "part_count": 2,
                   "expires_at": "2026-01-08T00:00:00Z"}),
        ),
        ("POST", "/v1/uploads/0190a000-0000-7000-8000-0000000000a1/parts") => {
            let asked: Value = serde_json::from_slice(&req.body).unwrap();
            let round = tries("/v1/uploads/0190a000-0000-7000-8000-0000000000a1/parts");
            let parts: Vec<Value> = asked["part_numbers"]
                .as_array()
                .unwrap()
                .iter()
                .map(|n| {
                    json!({"part_number": n, "method": "PUT",
                           "url": format!("{base}/s3/{n}/{round}"),
                           "headers": {"x-amz-test": "signed"},
                           "expires_at": "2026-01-01T00:15:00Z"})
                })
                .collect();
            (200, json!({ "parts": parts }))
        }
        ("GET", path) if path.starts_with("/v1/folders/root/children?") => {
            (200, json!({"entries": [], "next_cursor": null}))
        }
        ("PUT", "/s3/1/0") => (403, Value::Null),
        ("PUT", path) if path.starts_with("/s3/2/") && tries(path) == 0 => (500, Value::Null),
        ("PUT", _) => (200, Value::Null),
        ("POST", "/v1/uploads/0190a000-0000-7000-8000-0000000000a1/complete") => {
            (201, json!({ "file": file_json() }))
        }
        _ => (
            404,
            json!({"error": {"code": "not_found", "message": "route not found"}}),
        ),
    }
}

/// A refused (expired) part URL is presigned again and a storage fault is retried; the
/// upload completes with every part sent once successfully, carrying the URL's headers.
#[test]
fn expired_urls_are_presigned_again_and_faults_retried() {
    let api = Scripted::start(expired_url_and_storage_fault);
    let mut cli = Cli::anonymous();
    cli.server = api.url.clone();
    std::fs::write(
        cli.config.path().join("sessions.json"),
        json!({ &api.url: {"username": "alice", "token": "t", "expires_at": u64::MAX / 2} })
            .to_string(),
    )
    .unwrap();
    cli.write("six.bin", b"abcdef");

    let out = cli.json(&["upload", "six.bin", "--concurrency", "2"]);
    assert_eq!(out["uploads"][0]["parts_sent"], 2);
    assert_eq!(
        out["uploads"][0]["file"]["file_id"],
        "0190a000-0000-7000-8000-0000000000f1"
    );

    let seen = api.seen();
    let paths: Vec<String> = seen
        .iter()
        .map(|s| format!("{} {}", s.method, s.path))
        .collect();
    let presigns: Vec<Value> = seen
        .iter()
        .filter(|s| s.path == "/v1/uploads/0190a000-0000-7000-8000-0000000000a1/parts")
        .map(|s| serde_json::from_slice(&s.body).unwrap())
        .collect();
    assert_eq!(presigns.len(), 2, "{paths:?}");
    assert_eq!(presigns[1]["part_numbers"], json!([1]), "only part 1 again");
    let puts: Vec<&Seen> = seen.iter().filter(|s| s.method == "PUT").collect();
    assert_eq!(puts.len(), 4, "{paths:?}");
    for put in &puts {
        assert_eq!(
            put.headers.get("x-amz-test").map(String::as_str),
            Some("signed")
        );
        let expected: &[u8] = if put.path.starts_with("/s3/1/") {
            b"abcd"
        } else {
            b"ef"
        };
        assert_eq!(put.body, expected, "{}", put.path);
    }
    assert!(paths.contains(&"PUT /s3/1/1".to_string()), "{paths:?}");
    assert_eq!(
        paths.iter().filter(|p| p.starts_with("PUT /s3/2/")).count(),
        2,
        "{paths:?}"
    );
    assert!(
        paths[0].starts_with("GET /v1/folders/root/children?"),
        "the root's listing is read first, to skip files already there: {paths:?}"
    );
    let create = seen
        .iter()
        .find(|s| s.path == "/v1/uploads")
        .expect("the upload was created");
    assert_eq!(
        create.headers.get("authorization").map(String::as_str),
        Some("Bearer t")
    );
    let create: Value = serde_json::from_slice(&create.body).unwrap();
    assert_eq!(create["name"], "six.bin");
    assert_eq!(create["size"], 6);
    assert_eq!(
        create["sha256"],
        "bef57ec7f53a6d40beb640a780a639c83bc29ac8a9816f1fc6c5c6dcd93c4721"
    );
}

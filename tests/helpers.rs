//! Test harness: one local system (emulator + provisioned resources + API) per test binary,
//! on free ports and with its own table and bucket, so the suite runs beside a running
//! `filestore-dev` and tests run in parallel. Each test makes its own fresh user.

use std::sync::OnceLock;

use filestore_dev::{LocalSystem, Options, local_sdk_config};
use reqwest::StatusCode;
use serde_json::{Value, json};

pub const MIB: usize = 1024 * 1024;

/// What tests need to know about the running system.
pub struct System {
    pub base_url: String,
    pub endpoint_url: String,
    pub region: String,
    pub table: String,
    pub hot_bucket: String,
    pub jwt_secret: String,
    pub cold_endpoint_url: String,
    pub cold_bucket: String,
    pub queue_url: String,
    pub dead_letter_queue_url: String,
}

static SYSTEM: OnceLock<System> = OnceLock::new();

/// The shared system, started on first use. It runs on a thread of its own, because each
/// `#[tokio::test]` has a runtime that ends with the test; the emulator stops when the test
/// process exits (it watches its stdin).
pub fn system() -> &'static System {
    SYSTEM.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("test runtime");
            runtime.block_on(async move {
                match LocalSystem::start(Options::isolated()).await {
                    Ok(sys) => {
                        let config = &sys.state.config;
                        let cold = config
                            .cold
                            .as_ref()
                            .expect("local systems have a cold store");
                        let _ = tx.send(Ok(System {
                            cold_endpoint_url: cold.endpoint_url.clone().unwrap_or_default(),
                            cold_bucket: cold.bucket.clone(),
                            queue_url: sys.queues.transfer_queue_url.clone(),
                            dead_letter_queue_url: sys.queues.dead_letter_queue_url.clone(),
                            base_url: sys.base_url(),
                            endpoint_url: sys.endpoint_url(),
                            region: config.region.clone(),
                            table: config.table.clone(),
                            hot_bucket: config.hot_bucket.clone(),
                            jwt_secret: config.jwt_secret.expose().to_string(),
                        }));
                        std::future::pending::<()>().await;
                        drop(sys);
                    }
                    Err(e) => {
                        let _ = tx.send(Err(format!("{e:#}")));
                    }
                }
            });
        });
        match rx.recv() {
            Ok(Ok(system)) => system,
            Ok(Err(e)) => panic!("the local system did not start: {e}"),
            Err(_) => panic!("the local system thread died"),
        }
    })
}

/// The SDK configuration of the system's emulator.
pub async fn local_sdk() -> aws_config::SdkConfig {
    let sys = system();
    local_sdk_config(&sys.endpoint_url, &sys.region).await
}

/// SDK clients on the system's emulator, for checks behind the API's back.
pub async fn aws() -> (aws_sdk_s3::Client, aws_sdk_dynamodb::Client) {
    let sys = system();
    let sdk = local_sdk_config(&sys.endpoint_url, &sys.region).await;
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(true)
            .build(),
    );
    (s3, aws_sdk_dynamodb::Client::new(&sdk))
}

/// Moves an upload's expiry into the past, as if it had been abandoned long ago (DynamoDB's
/// TTL sweep being lazy, the record itself stays).
pub async fn expire_upload(user_id: &str, upload_id: &str) {
    use aws_sdk_dynamodb::types::AttributeValue;
    let (_, ddb) = aws().await;
    ddb.update_item()
        .table_name(&system().table)
        .key("PK", AttributeValue::S(format!("USER#{user_id}")))
        .key("SK", AttributeValue::S(format!("UPLOAD#{upload_id}")))
        // Both the expiry and when the janitor's index says it is due, as at creation.
        .update_expression("SET expires_at = :past, due_at = :past")
        .expression_attribute_values(":past", AttributeValue::S("2020-01-01T00:00:00Z".into()))
        .send()
        .await
        .unwrap();
}

/// Gives a user a quota of their own, as an operator would (the default is
/// `FILESTORE_QUOTA_BYTES`).
pub async fn set_quota(user_id: &str, bytes: u64) {
    use aws_sdk_dynamodb::types::AttributeValue;
    let (_, ddb) = aws().await;
    ddb.update_item()
        .table_name(&system().table)
        .key("PK", AttributeValue::S(format!("USER#{user_id}")))
        .key("SK", AttributeValue::S("PROFILE".into()))
        .update_expression("SET quota_bytes = :q")
        .expression_attribute_values(":q", AttributeValue::N(bytes.to_string()))
        .send()
        .await
        .unwrap();
}

/// How many multipart uploads S3 still holds open under a user's prefix.
pub async fn open_multipart_uploads(user_id: &str) -> usize {
    let (s3, _) = aws().await;
    s3.list_multipart_uploads()
        .bucket(&system().hot_bucket)
        .prefix(format!("files/{user_id}/"))
        .send()
        .await
        .unwrap()
        .uploads()
        .len()
}

/// An S3 client on the cold store's own endpoint.
pub async fn cold_s3() -> aws_sdk_s3::Client {
    let sys = system();
    let sdk = local_sdk_config(&sys.cold_endpoint_url, &sys.region).await;
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(true)
            .build(),
    )
}

/// The same state the functions run with, to call a handler directly.
pub async fn app_state() -> filestore_shared::AppState {
    let sys = system();
    let config = filestore_shared::Config::from_lookup(|name| {
        Some(match name {
            "AWS_ENDPOINT_URL" => sys.endpoint_url.clone(),
            "AWS_REGION" => sys.region.clone(),
            "FILESTORE_TABLE" => sys.table.clone(),
            "FILESTORE_HOT_BUCKET" => sys.hot_bucket.clone(),
            "FILESTORE_JWT_SECRET" => sys.jwt_secret.clone(),
            "FILESTORE_COLD_BUCKET" => sys.cold_bucket.clone(),
            "FILESTORE_COLD_ENDPOINT_URL" => sys.cold_endpoint_url.clone(),
            "FILESTORE_COLD_ACCESS_KEY_ID" => "cold".into(),
            "FILESTORE_COLD_SECRET_ACCESS_KEY" => "cold-secret".into(),
            _ => return None,
        })
    })
    .expect("test configuration");
    filestore_shared::AppState::new(
        config,
        &local_sdk_config(&sys.endpoint_url, &sys.region).await,
    )
}

/// An SQS client on the emulator.
pub async fn sqs() -> aws_sdk_sqs::Client {
    let sys = system();
    aws_sdk_sqs::Client::new(&local_sdk_config(&sys.endpoint_url, &sys.region).await)
}

/// The S3 event notification announcing a created object in `bucket`, as the hot bucket sends it.
pub fn s3_event(bucket: &str, key: &str, size: usize) -> serde_json::Value {
    json!({"Records": [{
        "eventName": "ObjectCreated:CompleteMultipartUpload",
        "s3": {"bucket": {"name": bucket}, "object": {"key": key, "size": size}}
    }]})
}

/// One SQS message carrying `body`, as Lambda hands a batch to the transfer function.
pub fn sqs_batch(body: &serde_json::Value) -> aws_lambda_events::sqs::SqsEvent {
    serde_json::from_value(json!({"Records": [{
        "messageId": "m-1",
        "receiptHandle": "r",
        "body": body.to_string(),
        "attributes": {"ApproximateReceiveCount": "1"},
        "messageAttributes": {},
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:q",
        "awsRegion": "us-east-1"
    }]}))
    .unwrap()
}

/// Polls `check` every 200 ms until it returns `Some`, for at most `secs` seconds.
pub async fn eventually<T, F, Fut>(secs: u64, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// A response, read whole.
#[derive(Debug)]
pub struct Resp {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub bytes: Vec<u8>,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.bytes).unwrap_or_else(|e| {
            panic!(
                "not JSON ({e}): {:?} {}",
                self.status,
                String::from_utf8_lossy(&self.bytes)
            )
        })
    }

    /// Asserts the status and, for errors, the contract's error body with this code.
    #[track_caller]
    pub fn expect(&self, status: u16) -> Value {
        assert_eq!(
            self.status.as_u16(),
            status,
            "body: {}",
            String::from_utf8_lossy(&self.bytes)
        );
        if self.bytes.is_empty() {
            Value::Null
        } else {
            self.json()
        }
    }

    /// Asserts an error status and code, and that the body is exactly the error shape.
    #[track_caller]
    pub fn expect_error(&self, status: u16, code: &str) {
        let body = self.expect(status);
        assert_eq!(body["error"]["code"], code, "body: {body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "error message missing: {body}"
        );
        assert_eq!(
            body.as_object().map(|o| o.len()),
            Some(1),
            "extra fields: {body}"
        );
        assert_eq!(
            self.headers
                .get("content-type")
                .and_then(|v| v.to_str().ok()),
            Some("application/json")
        );
    }
}

/// An HTTP client of the API, optionally logged in as a fresh user.
pub struct TestApp {
    pub base: String,
    pub http: reqwest::Client,
    pub token: Option<String>,
    pub user_id: String,
    pub username: String,
    pub password: String,
}

pub fn unique_name(prefix: &str) -> String {
    format!(
        "{prefix}{}",
        &uuid::Uuid::new_v4().simple().to_string()[..16]
    )
}

pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("http client")
}

/// Deterministic, non-repeating test bytes (so a shifted or swapped part is caught).
pub fn test_bytes(len: usize, seed: u64) -> Vec<u8> {
    use rand::{RngCore, SeedableRng};
    let mut out = vec![0u8; len];
    rand::rngs::StdRng::seed_from_u64(seed).fill_bytes(&mut out);
    out
}

impl TestApp {
    /// A client with no account.
    pub fn anonymous() -> Self {
        Self::anonymous_at(&system().base_url)
    }

    /// A client with no account, of the API at `base`.
    pub fn anonymous_at(base: &str) -> Self {
        Self {
            base: base.to_string(),
            http: http_client(),
            token: None,
            user_id: String::new(),
            username: String::new(),
            password: String::new(),
        }
    }

    /// Signs up and logs in a fresh user.
    pub async fn new() -> Self {
        Self::new_at(&system().base_url).await
    }

    /// Signs up and logs in a fresh user on the API at `base`.
    pub async fn new_at(base: &str) -> Self {
        let mut app = Self::anonymous_at(base);
        let username = unique_name("user_");
        let password = "correct horse battery".to_string();
        let body = app
            .post(
                "/v1/auth/signup",
                json!({"username": username, "password": password}),
            )
            .await
            .expect(201);
        app.user_id = body["user_id"].as_str().unwrap().to_string();
        let login = app
            .post(
                "/v1/auth/login",
                json!({"username": username, "password": password}),
            )
            .await
            .expect(200);
        app.token = Some(login["token"].as_str().unwrap().to_string());
        app.username = username;
        app.password = password;
        app
    }

    /// The same user with another (or no) token.
    pub fn with_token(&self, token: Option<&str>) -> Self {
        Self {
            base: self.base.clone(),
            http: self.http.clone(),
            token: token.map(str::to_string),
            user_id: self.user_id.clone(),
            username: self.username.clone(),
            password: self.password.clone(),
        }
    }

    pub async fn send(&self, method: reqwest::Method, path: &str, body: Option<Vec<u8>>) -> Resp {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = &self.token {
            req = req.bearer_auth(token);
        }
        if let Some(body) = body {
            req = req.header("content-type", "application/json").body(body);
        }
        let resp = req.send().await.expect("request sent");
        Resp {
            status: resp.status(),
            headers: resp.headers().clone(),
            bytes: resp.bytes().await.expect("body").to_vec(),
        }
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.send(reqwest::Method::GET, path, None).await
    }

    pub async fn delete(&self, path: &str) -> Resp {
        self.send(reqwest::Method::DELETE, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Resp {
        self.send(
            reqwest::Method::POST,
            path,
            Some(body.to_string().into_bytes()),
        )
        .await
    }

    pub async fn patch(&self, path: &str, body: Value) -> Resp {
        self.send(
            reqwest::Method::PATCH,
            path,
            Some(body.to_string().into_bytes()),
        )
        .await
    }

    /// Creates an upload and returns its JSON.
    pub async fn create_upload(&self, name: &str, size: usize, part_size: Option<usize>) -> Value {
        let mut body = json!({"name": name, "size": size});
        if let Some(p) = part_size {
            body["part_size"] = json!(p);
        }
        self.post("/v1/uploads", body).await.expect(201)
    }

    /// Presigns parts and returns the `parts` array.
    pub async fn presign(&self, upload_id: &str, parts: &[u64]) -> Vec<Value> {
        self.post(
            &format!("/v1/uploads/{upload_id}/parts"),
            json!({"part_numbers": parts}),
        )
        .await
        .expect(200)["parts"]
            .as_array()
            .unwrap()
            .clone()
    }

    /// PUTs bytes to a presigned part exactly as a client must: the URL, the method and the
    /// headers it came with. Returns the status.
    pub async fn put_part(&self, part: &Value, bytes: Vec<u8>) -> u16 {
        assert_eq!(part["method"], "PUT");
        let mut req = self.http.put(part["url"].as_str().unwrap());
        for (name, value) in part["headers"].as_object().unwrap() {
            req = req.header(name, value.as_str().unwrap());
        }
        req.body(bytes)
            .send()
            .await
            .expect("part PUT")
            .status()
            .as_u16()
    }

    /// Sends the given parts of `data` under the upload's plan.
    pub async fn send_parts(&self, upload: &Value, data: &[u8], parts: &[u64]) {
        let id = upload["upload_id"].as_str().unwrap();
        let part_size = upload["part_size"].as_u64().unwrap() as usize;
        for part in self.presign(id, parts).await {
            let n = part["part_number"].as_u64().unwrap() as usize;
            let start = (n - 1) * part_size;
            let end = (start + part_size).min(data.len());
            assert_eq!(self.put_part(&part, data[start..end].to_vec()).await, 200);
        }
    }

    /// Uploads `data` through the whole flow and returns the File.
    pub async fn upload(&self, name: &str, data: &[u8], part_size: Option<usize>) -> Value {
        let upload = self.create_upload(name, data.len(), part_size).await;
        let count = upload["part_count"].as_u64().unwrap();
        let all: Vec<u64> = (1..=count).collect();
        self.send_parts(&upload, data, &all).await;
        let id = upload["upload_id"].as_str().unwrap();
        self.post(&format!("/v1/uploads/{id}/complete"), json!({}))
            .await
            .expect(201)["file"]
            .clone()
    }

    /// Waits until the transfer has verified a file, and returns it.
    pub async fn verified(&self, file_id: &str) -> Value {
        eventually(60, "the file to be verified", || async {
            let file = self.get(&format!("/v1/files/{file_id}")).await.expect(200);
            (file["verified"] == true).then_some(file)
        })
        .await
    }

    /// Downloads a file's bytes through its presigned URL.
    pub async fn download(&self, file_id: &str) -> Vec<u8> {
        let url = self
            .get(&format!("/v1/files/{file_id}/download"))
            .await
            .expect(200)["url"]
            .as_str()
            .unwrap()
            .to_string();
        let resp = self.http.get(url).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        resp.bytes().await.unwrap().to_vec()
    }
}

pub fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(data))
}

/// Answers an instant-upload challenge from the bytes, as an honest client does.
pub fn answer(challenge: &Value, data: &[u8]) -> String {
    use sha2::Digest;
    let mut hasher = sha2::Sha256::new();
    hasher.update(hex::decode(challenge["nonce"].as_str().unwrap()).unwrap());
    for r in challenge["ranges"].as_array().unwrap() {
        let (offset, length) = (
            r["offset"].as_u64().unwrap() as usize,
            r["length"].as_u64().unwrap() as usize,
        );
        hasher.update(&data[offset..offset + length]);
    }
    hex::encode(hasher.finalize())
}

//! A client of the API as the tests use it: a fresh user per test, the upload flow in one
//! call, whole responses with the contract's error shape checked.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::system::system;

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

//! The local runner as its user runs it: the real `filestore-dev` binary on a data directory
//! of its own, stopped with Ctrl-C (SIGINT) and started again.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use filestore_contract::RouteKey;
use serde_json::json;

use crate::helpers::*;

/// A running `filestore-dev`, its banner read.
struct Runner {
    child: Child,
    base: String,
    cold: String,
    stderr: Arc<Mutex<String>>,
}

impl Runner {
    /// Starts the binary on free ports with `data_dir`, and waits for its banner.
    fn start(data_dir: &Path, args: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_filestore-dev"))
            .args(args)
            .env("FILESTORE_DATA_DIR", data_dir)
            .env("FILESTORE_PORT", "0")
            .env("FILESTORE_EMULATOR_PORT", "0")
            .env("FILESTORE_COLD_EMULATOR_PORT", "0")
            .env("RUST_LOG", "warn")
            .env_remove("FILESTORE_JWT_SECRET")
            .env_remove("FILESTORE_EMULATOR_URL")
            .env_remove("FILESTORE_COLD_ENDPOINT_URL")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("filestore-dev starts");
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut pipe = child.stderr.take().unwrap();
        let sink = stderr.clone();
        std::thread::spawn(move || {
            let mut buf = [0; 4096];
            while let Ok(n) = pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let (mut base, mut cold) = (None, None);
        for line in lines.by_ref() {
            let line = line.unwrap();
            let second = || line.split_whitespace().nth(1).map(str::to_string);
            if line.trim_start().starts_with("API:") {
                base = second();
            } else if let Some(rest) = line.trim_start().strip_prefix("cold store:") {
                cold = Some(rest.trim().to_string());
            } else if line.starts_with("Press Ctrl-C") {
                break;
            }
        }
        std::thread::spawn(move || for _ in lines {});
        let (Some(base), Some(cold)) = (base, cold) else {
            let _ = child.kill();
            panic!("no banner: {}", stderr.lock().unwrap());
        };
        Self {
            child,
            base,
            cold,
            stderr,
        }
    }

    /// The cold store's emulator: its URL and process id, from the banner.
    fn cold_store(&self) -> (String, u32) {
        let (url, pid) = self
            .cold
            .split_once(", pid ")
            .expect("the cold store's pid");
        (url.to_string(), pid.parse().unwrap())
    }

    /// Waits (at most 5 minutes) for the runner to exit by itself.
    fn wait(&mut self) -> ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("filestore-dev still runs: {}", self.stderr.lock().unwrap());
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Ctrl-C, and the runner's clean exit.
    fn stop(mut self) {
        signal(self.child.id(), "-INT");
        let status = self.wait();
        assert!(
            status.success(),
            "{status}: {}",
            self.stderr.lock().unwrap()
        );
    }
}

impl Drop for Runner {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn signal(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Ctrl-C and the same command again: the account, the file, its bytes in both stores and
/// the token a client saved are all still there (the data directory keeps them, the JWT key
/// included).
#[tokio::test]
async fn a_restart_keeps_accounts_files_bytes_and_sessions() {
    let data = tempfile::tempdir().unwrap();
    let runner = Runner::start(data.path(), &[]);
    let mut app = TestApp::new_at(&runner.base).await;
    let bytes = test_bytes(300_000, 71);
    let file = app.upload("kept.bin", &bytes, None).await;
    app.verified(&file.file_id).await;
    runner.stop();

    let runner = Runner::start(data.path(), &[]);
    app.base = runner.base.clone();
    assert_eq!(app.me().await.username, app.username);
    assert_eq!(app.file(&file.file_id).await.name, "kept.bin");
    assert_eq!(app.download(&file.file_id).await, bytes);
    let login = json!({"username": app.username, "password": app.password});
    app.post(RouteKey::Login.template(), login)
        .await
        .expect(200);
    // The cold store kept its copy too.
    let cold = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(
            &filestore_dev::local_sdk_config(&runner.cold_store().0, "us-east-1").await,
        )
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            "cold",
            "cold-secret",
            None,
            None,
            "test",
        ))
        .force_path_style(true)
        .build(),
    );
    let head = cold
        .head_object()
        .bucket("filestore-cold")
        .key(filestore_shared::keys::cold_key(&file.file_id))
        .send()
        .await
        .expect("the cold copy is still there");
    assert_eq!(head.content_length(), Some(bytes.len() as i64));
    runner.stop();
}

/// `--fresh` forgets what the data directory kept: the account is gone (its name free
/// again) and a saved token no longer opens anything, where a plain restart kept both.
#[tokio::test]
async fn fresh_starts_from_a_clean_slate() {
    let data = tempfile::tempdir().unwrap();
    let runner = Runner::start(data.path(), &[]);
    let mut app = TestApp::new_at(&runner.base).await;
    runner.stop();

    let runner = Runner::start(data.path(), &[]);
    app.base = runner.base.clone();
    app.me().await;
    runner.stop();

    let runner = Runner::start(data.path(), &["--fresh"]);
    app.base = runner.base.clone();
    app.get(RouteKey::Me.template()).await.expect(401);
    let signup = json!({"username": app.username, "password": app.password});
    app.post(RouteKey::Signup.template(), signup)
        .await
        .expect(201);
    runner.stop();
}

/// When an emulator dies under it (here the cold store's, killed), the runner does not go
/// on serving half a system: it stops, with one line on stderr naming what died.
#[tokio::test]
async fn a_killed_emulator_stops_the_runner_with_one_line() {
    let data = tempfile::tempdir().unwrap();
    let mut runner = Runner::start(data.path(), &[]);
    let (_, cold) = runner.cold_store();
    signal(cold, "-KILL");
    let status = runner.wait();
    assert_eq!(status.code(), Some(1), "{status}");
    let stderr = runner.stderr.lock().unwrap().clone();
    let lines: Vec<_> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(
        lines[0].contains("cold-store emulator") && lines[0].contains("exited unexpectedly"),
        "{stderr}"
    );
}

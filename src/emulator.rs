//! The embedded AWS emulator: moto's server, installed from PyPI into a project-local venv
//! and run as a plain process (no Docker). One process serves S3, DynamoDB and SQS.
//!
//! moto keeps everything in memory. Given a state directory, the launcher (`src/emulator/*.py`)
//! loads what it saved there, saves a snapshot every [`SNAPSHOT_SECS`] while anything changed,
//! and saves once more when it stops; so a clean stop loses nothing, and a crash of the
//! emulator (kill -9, power cut) loses at most the last [`SNAPSHOT_SECS`] of changes. A
//! task watches each child: [`Emulator::died`] resolves when one exits unasked.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::{oneshot, watch};

/// The emulator we install and test against; bumped deliberately, never floating.
/// (5.2.x answers S3 ListParts with a `ListPartsResponse` root element, which the Rust SDK
/// rightly rejects; 5.1.22 answers `ListPartsResult` as S3 does.)
pub const MOTO_REQUIREMENT: &str = "moto[server]==5.1.22";

/// The launcher: one script, written in parts by concern (`src/emulator/`), run in this
/// order; each patches moto where it differs from AWS in a way the system depends on, and the
/// last serves.
const LAUNCHER: [&str; 5] = [
    include_str!("emulator/dynamodb.py"),
    include_str!("emulator/s3.py"),
    include_str!("emulator/persistence.py"),
    include_str!("emulator/presign.py"),
    include_str!("emulator/server.py"),
];

pub use crate::venv::local_dir;

/// Makes sure `.local/venv` holds moto, installing it on first use (about a minute).
///
/// # Errors
/// When Python 3 with `venv` is missing or pip cannot reach PyPI.
pub async fn ensure_installed() -> anyhow::Result<PathBuf> {
    crate::venv::ensure("venv", MOTO_REQUIREMENT).await
}

/// Seconds between snapshots of an emulator that keeps its state, while anything changed.
pub const SNAPSHOT_SECS: u64 = 30;

/// How long a stopping emulator may take to write its last snapshot before it is killed.
const SAVE_TIMEOUT: Duration = Duration::from_secs(300);

/// A running emulator. [`Emulator::stop`] stops it (saving its state first, if it keeps one);
/// so does the end of our process, which closes its stdin.
pub struct Emulator {
    port: u16,
    pid: Option<u32>,
    role: &'static str,
    stop: Option<oneshot::Sender<()>>,
    exit: watch::Receiver<Option<Exit>>,
}

/// How an emulator ended.
#[derive(Clone, Debug)]
pub struct Exit {
    /// Whether we asked it to stop.
    pub asked: bool,
    /// Its exit status, as the OS reports it (`signal: 9 (SIGKILL)`, `exit status: 1`).
    pub status: String,
}

impl Emulator {
    /// Starts the emulator on `127.0.0.1:port` (`0` picks a free port). With `state`, it
    /// loads what it saved there and saves to it (every [`SNAPSHOT_SECS`] and when it
    /// stops); without, it keeps everything in memory only. `role` names it in messages.
    /// Presigned requests are checked against `credentials` (access key id, secret) as S3
    /// checks them. Only `origins` (`scheme://host:port`) get CORS headers back.
    ///
    /// # Errors
    /// When it cannot be installed, its saved state cannot be read, or it does not come up
    /// (port taken, say).
    pub async fn start(
        port: u16,
        state: Option<&Path>,
        role: &'static str,
        credentials: (&str, &str),
        origins: &[String],
    ) -> anyhow::Result<Self> {
        let python = ensure_installed().await?;
        let started = Instant::now();
        let mut command = Command::new(python);
        command.args(["-c", &LAUNCHER.concat(), "127.0.0.1", &port.to_string()]);
        if let Some(dir) = state {
            command.arg(dir).arg(SNAPSHOT_SECS.to_string());
        }
        command.env(
            "FILESTORE_EMULATOR_CREDENTIALS",
            format!("{}:{}", credentials.0, credentials.1),
        );
        command.env("FILESTORE_EMULATOR_ORIGINS", origins.join("\n"));
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // One that keeps state must be let to save it: it stops when its stdin closes.
            .kill_on_drop(state.is_none())
            .spawn()
            .with_context(|| format!("starting the {role}"))?;
        let stdout = child.stdout.take().context("emulator stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let ready = tokio::time::timeout(Duration::from_secs(120), lines.next_line()).await;
        let port = match ready {
            Ok(Ok(Some(line))) if line.starts_with("READY ") => line[6..].trim().parse()?,
            _ => {
                let _ = child.start_kill();
                let out = child.wait_with_output().await?;
                bail!(
                    "the {role} did not start on port {port}: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                );
            }
        };
        // Moto logs every request on stderr; keep the pipe drained so it never blocks, and
        // pass on what the launcher itself says (snapshots, failures).
        if let Some(stderr) = child.stderr.take() {
            tokio::spawn(async move {
                let mut lines = BufReader::new(stderr).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    if let Some(snapshot) = line.strip_prefix("SNAPSHOT ") {
                        tracing::debug!(role, "{snapshot}");
                    } else if line.starts_with("snapshot failed") {
                        tracing::warn!(role, "{line}");
                    }
                }
            });
        }
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        tracing::info!(
            port,
            ms = started.elapsed().as_millis() as u64,
            "{role} ready"
        );
        let pid = child.id();
        let (stop, stop_asked) = oneshot::channel();
        let (exited, exit) = watch::channel(None);
        tokio::spawn(watch_child(child, stop_asked, exited));
        Ok(Self {
            port,
            pid,
            role,
            stop: Some(stop),
            exit,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The emulator's process id (for measurements).
    pub fn pid(&self) -> Option<u32> {
        self.pid
    }

    /// Resolves when the emulator exits without being asked to, with a one-line account;
    /// never, once it was asked to stop.
    pub async fn died(&self) -> String {
        let mut exit = self.exit.clone();
        let status = match exit
            .wait_for(|e| e.as_ref().is_some_and(|e| !e.asked))
            .await
        {
            Ok(exit) => exit.as_ref().map(|e| e.status.clone()).unwrap_or_default(),
            Err(_) => return std::future::pending().await,
        };
        format!(
            "the {} (pid {}, port {}) exited unexpectedly ({status})",
            self.role,
            self.pid.unwrap_or_default(),
            self.port
        )
    }

    /// Stops the emulator and waits for it to exit: it saves its state first, if it keeps
    /// one (killed after five minutes).
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let role = self.role;
        if let Ok(exit) = self.exit.wait_for(Option::is_some).await
            && let Some(exit) = exit.as_ref()
            && exit.status != "exit status: 0"
        {
            tracing::error!(
                role,
                status = exit.status,
                "the {role} did not stop cleanly: what it keeps may be older than this run"
            );
        }
    }
}

/// Owns the child: reports its exit, or on request closes its stdin (the launcher's signal
/// to save and stop) and waits for it.
async fn watch_child(
    mut child: Child,
    stop_asked: oneshot::Receiver<()>,
    exited: watch::Sender<Option<Exit>>,
) {
    let stdin = child.stdin.take();
    let asked = tokio::select! {
        status = child.wait() => {
            let status = status.map_or_else(|e| e.to_string(), |s| s.to_string());
            let _ = exited.send(Some(Exit { asked: false, status }));
            return;
        }
        // A dropped Emulator stops its child too.
        _ = stop_asked => true,
    };
    drop(stdin);
    let status = match tokio::time::timeout(SAVE_TIMEOUT, child.wait()).await {
        Ok(status) => status,
        Err(_) => {
            let _ = child.start_kill();
            child.wait().await
        }
    };
    let status = status.map_or_else(|e| e.to_string(), |s| s.to_string());
    let _ = exited.send(Some(Exit { asked, status }));
}

//! The embedded AWS emulator: moto's server, installed from PyPI into a project-local venv
//! and run as a plain process (no Docker). One process serves S3, DynamoDB and SQS.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// The emulator we install and test against; bumped deliberately, never floating.
/// (5.2.x answers S3 ListParts with a `ListPartsResponse` root element, which the Rust SDK
/// rightly rejects; 5.1.22 answers `ListPartsResult` as S3 does.)
pub const MOTO_REQUIREMENT: &str = "moto[server]==5.1.22";

const LAUNCHER: &str = include_str!("emulator.py");

pub use crate::venv::local_dir;

/// Makes sure `.local/venv` holds moto, installing it on first use (about a minute).
///
/// # Errors
/// When Python 3 with `venv` is missing or pip cannot reach PyPI.
pub async fn ensure_installed() -> anyhow::Result<PathBuf> {
    crate::venv::ensure("venv", MOTO_REQUIREMENT).await
}

/// A running emulator. Dropping it (or exiting the process) stops it.
pub struct Emulator {
    child: Child,
    port: u16,
}

impl Emulator {
    /// Starts the emulator on `127.0.0.1:port` (`0` picks a free port).
    ///
    /// # Errors
    /// When it cannot be installed or does not come up (port taken, say).
    pub async fn start(port: u16) -> anyhow::Result<Self> {
        let python = ensure_installed().await?;
        let started = Instant::now();
        let mut child = Command::new(python)
            .args(["-c", LAUNCHER, "127.0.0.1", &port.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .context("starting the emulator")?;
        let stdout = child.stdout.take().context("emulator stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let ready = tokio::time::timeout(Duration::from_secs(60), lines.next_line()).await;
        let port = match ready {
            Ok(Ok(Some(line))) if line.starts_with("READY ") => line[6..].trim().parse()?,
            _ => {
                let _ = child.start_kill();
                let out = child.wait_with_output().await?;
                bail!(
                    "the emulator did not start on port {port}: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                );
            }
        };
        // Moto logs every request on stderr; keep the pipe drained so it never blocks.
        if let Some(stderr) = child.stderr.take() {
            tokio::spawn(async move {
                let mut lines = BufReader::new(stderr).lines();
                while let Ok(Some(_)) = lines.next_line().await {}
            });
        }
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        tracing::info!(
            port,
            ms = started.elapsed().as_millis() as u64,
            "emulator ready"
        );
        Ok(Self { child, port })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The emulator's process id (for measurements).
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Stops the emulator and waits for it to exit.
    pub async fn stop(mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }
}

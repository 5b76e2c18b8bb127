//! What only the CLI binary's tests need beside the shared harness (`filestore-testkit`,
//! which starts one local system per test binary): [`Cli`], the built binary with a private
//! config and work directory, its output captured.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub use filestore_testkit::{MIB, sha256_hex, test_bytes};

pub const PASSWORD: &str = "correct horse battery";

/// The API's base URL, starting the system on first use.
pub fn server() -> &'static str {
    &filestore_testkit::system().base_url
}

/// A username no other test uses.
pub fn unique_username() -> String {
    filestore_testkit::unique_name("cli_")
}

/// One finished run of the binary.
pub struct Run {
    pub output: Output,
}

impl Run {
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).into_owned()
    }

    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }

    #[track_caller]
    pub fn success(&self) -> &Self {
        assert!(
            self.output.status.success(),
            "failed ({}): {}{}",
            self.output.status,
            self.stdout(),
            self.stderr()
        );
        self
    }

    /// Asserts a failure reported the way the CLI promises: exit code 1 and exactly one
    /// line on stderr, no panic. Returns that line.
    #[track_caller]
    pub fn failure(&self) -> String {
        self.failure_with(1)
    }

    /// [`Run::failure`] for a command line that cannot work as given: exit code 2.
    #[track_caller]
    pub fn usage_failure(&self) -> String {
        self.failure_with(2)
    }

    #[track_caller]
    fn failure_with(&self, code: i32) -> String {
        let stderr = self.stderr();
        assert!(
            !self.output.status.success(),
            "succeeded unexpectedly: {}{stderr}",
            self.stdout()
        );
        assert_eq!(self.output.status.code(), Some(code), "stderr: {stderr}");
        assert!(!stderr.contains("panicked"), "panic: {stderr}");
        assert!(
            !stderr.contains("RUST_BACKTRACE"),
            "backtrace hint: {stderr}"
        );
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(lines.len(), 1, "not one line: {stderr:?}");
        lines[0].to_string()
    }

    #[track_caller]
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.output.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", self.stdout()))
    }
}

/// The binary as one user on one machine: its own config directory and working directory.
pub struct Cli {
    pub config: tempfile::TempDir,
    pub work: tempfile::TempDir,
    pub server: String,
    pub username: String,
}

impl Cli {
    /// A user with no account and no session.
    pub fn anonymous() -> Self {
        Self {
            config: tempfile::tempdir().expect("config dir"),
            work: tempfile::tempdir().expect("work dir"),
            server: server().to_string(),
            username: unique_username(),
        }
    }

    /// A user who signed up (and so is logged in).
    pub fn logged_in() -> Self {
        let cli = Self::anonymous();
        cli.run(&["signup", "--username", &cli.username]).success();
        cli
    }

    /// The command, with the user's environment and `FILESTORE_PASSWORD` set; stdin is
    /// closed so nothing can wait for a prompt.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_filestore"));
        cmd.args(args)
            .current_dir(self.work.path())
            .env("FILESTORE_SERVER", &self.server)
            .env("FILESTORE_CONFIG_DIR", self.config.path())
            .env("FILESTORE_PASSWORD", PASSWORD)
            .env_remove("FILESTORE_TEST_STOP_AFTER_PARTS")
            .env_remove("FILESTORE_TEST_PAGE_LIMIT")
            .env_remove("FILESTORE_TEST_PAUSE_AFTER_PARTS")
            .env_remove("RUST_BACKTRACE")
            .stdin(Stdio::null());
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Run {
        self.run_with(self.command(args))
    }

    pub fn run_with(&self, mut cmd: Command) -> Run {
        Run {
            output: cmd.output().expect("the binary runs"),
        }
    }

    /// Runs `cmd` (an upload or a download) stopped by the binary after `parts` parts
    /// (`FILESTORE_TEST_STOP_AFTER_PARTS`, what an interruption leaves): asserts the one-line
    /// failure that says so, and returns the run.
    #[track_caller]
    pub fn run_interrupted(&self, mut cmd: Command, parts: u32) -> Run {
        cmd.env("FILESTORE_TEST_STOP_AFTER_PARTS", parts.to_string());
        let run = self.run_with(cmd);
        let line = run.failure();
        assert!(
            line.contains(&format!("interrupted after {parts} parts")),
            "{line}"
        );
        run
    }

    /// Starts `upload PATH` part by part ([`upload_part_by_part`]) and stops it after its
    /// first `parts` parts; returns the arguments, to run it again and resume.
    #[track_caller]
    pub fn interrupted_upload<'a>(&self, path: &'a str, parts: u32) -> [&'a str; 6] {
        let args = upload_part_by_part(path);
        self.run_interrupted(self.command(&args), parts);
        args
    }

    /// Runs with `--json`, asserts success, returns the document.
    #[track_caller]
    pub fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.push("--json");
        let run = self.run(&all);
        run.success();
        run.json()
    }

    /// A file in the work directory.
    pub fn write(&self, relative: &str, bytes: &[u8]) -> PathBuf {
        let path = self.work.path().join(relative);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("dirs");
        std::fs::write(&path, bytes).expect("write");
        path
    }

    pub fn path(&self, relative: &str) -> PathBuf {
        self.work.path().join(relative)
    }

    /// Unfinished-upload state files the CLI keeps.
    pub fn resume_states(&self) -> Vec<PathBuf> {
        self.upload_states(false)
    }

    /// State files of completed uploads (they name the File made).
    pub fn completed_states(&self) -> Vec<PathBuf> {
        self.upload_states(true)
    }

    fn upload_states(&self, completed: bool) -> Vec<PathBuf> {
        list(&self.config.path().join("uploads"))
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .filter(|p| {
                let state: Value = serde_json::from_slice(&std::fs::read(p).expect("state"))
                    .expect("state is JSON");
                state["file_id"].is_string() == completed
            })
            .collect()
    }

    /// Every file in every folder, listed by `ls --flat --json`.
    pub fn files(&self) -> Vec<Value> {
        self.json(&["ls", "--flat"])["files"]
            .as_array()
            .expect("files array")
            .clone()
    }
}

impl Cli {
    /// The entries of a folder (`ls PATH --json`), as `name` for files and `name/` for
    /// folders, in the order listed.
    #[track_caller]
    pub fn names(&self, path: &str) -> Vec<String> {
        self.json(&["ls", path])["entries"]
            .as_array()
            .expect("entries array")
            .iter()
            .map(|e| match e["type"].as_str() {
                Some("folder") => format!("{}/", str_field(e, "name")),
                _ => str_field(e, "name").to_string(),
            })
            .collect()
    }
}

/// `upload PATH` in 5 MiB parts sent one at a time, so a run stopped after n parts has
/// sent exactly those n.
pub fn upload_part_by_part(path: &str) -> [&str; 6] {
    ["upload", path, "--part-size", "5MiB", "--concurrency", "1"]
}

/// Waits (up to 60 s) until the server reports the file verified by its transfer; returns
/// the File then.
#[track_caller]
pub fn wait_verified(cli: &Cli, file_id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let files = cli.files();
        let file = files
            .iter()
            .find(|f| f["file_id"] == file_id)
            .unwrap_or_else(|| panic!("{file_id} not listed: {files:?}"));
        if file["verified"] == true {
            return file.clone();
        }
        assert!(
            Instant::now() < deadline,
            "not verified within 60 s: {file}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn list(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|entries| entries.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default()
}

pub fn str_field<'a>(v: &'a Value, field: &str) -> &'a str {
    v[field]
        .as_str()
        .unwrap_or_else(|| panic!("no string {field} in {v}"))
}

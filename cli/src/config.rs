//! Where the CLI keeps things, and the only place it reads its environment.
//!
//! - [`Settings`]: the config directory (`FILESTORE_CONFIG_DIR`, else the user's config dir
//!   + `filestore`), `FILESTORE_PASSWORD`, and the test-only fault hooks.
//! - [`Sessions`]: one token per server, in `sessions.json`, mode 0600.
//! - [`ResumeStore`]: one small JSON file per unfinished or recently completed upload under
//!   `uploads/`, keyed by what identifies "the same upload of the same bytes" ([`ResumeKey`]).
//!
//! `FILESTORE_SERVER` is read by the argument parser (it is `--server`'s default).

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// Faults a test injects to interrupt a transfer at a chosen point. Not for users.
#[derive(Clone, Copy, Debug, Default)]
pub struct TestHooks {
    /// `FILESTORE_TEST_STOP_AFTER_PARTS`: an upload fails after sending this many parts, a
    /// download after writing this many.
    pub stop_after_parts: Option<u64>,
    /// `FILESTORE_TEST_PAGE_LIMIT`: listings ask for pages this small, so a test walks many
    /// pages without making thousands of entries.
    pub page_limit: Option<u32>,
    /// `FILESTORE_TEST_PAUSE_AFTER_PARTS`: an upload waits after sending this many parts
    /// while a file `paused` exists in the config directory (it writes it), so a test can
    /// change the file mid-upload.
    pub pause_after_parts: Option<u64>,
}

/// Everything the environment says.
#[derive(Debug)]
pub struct Settings {
    pub config_dir: PathBuf,
    pub password: Option<String>,
    /// `FILESTORE_NEW_PASSWORD`, for `passwd` in scripts.
    pub new_password: Option<String>,
    pub hooks: TestHooks,
}

impl Settings {
    /// # Errors
    /// No config directory can be found (no `FILESTORE_CONFIG_DIR` and no home).
    pub fn from_env() -> Result<Self> {
        Self::from_lookup(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
    }

    /// [`Settings::from_env`] through a lookup function.
    ///
    /// # Errors
    /// See [`Settings::from_env`].
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let config_dir = match lookup("FILESTORE_CONFIG_DIR") {
            Some(dir) => PathBuf::from(dir),
            None => dirs::config_dir()
                .map(|d| d.join("filestore"))
                .ok_or_else(|| {
                    Error::Failed("no config directory found; set FILESTORE_CONFIG_DIR".to_string())
                })?,
        };
        let number = |name: &str| lookup(name).and_then(|v| v.parse().ok());
        Ok(Self {
            config_dir,
            password: lookup("FILESTORE_PASSWORD"),
            new_password: lookup("FILESTORE_NEW_PASSWORD"),
            hooks: TestHooks {
                stop_after_parts: number("FILESTORE_TEST_STOP_AFTER_PARTS"),
                page_limit: lookup("FILESTORE_TEST_PAGE_LIMIT").and_then(|v| v.parse().ok()),
                pause_after_parts: number("FILESTORE_TEST_PAUSE_AFTER_PARTS"),
            },
        })
    }
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Creates `dir` (and parents) readable by the owner only.
fn private_dir(dir: &Path) -> Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(dir)
        .map_err(|e| Error::io(format!("creating {}", dir.display()), e))
}

/// Writes `bytes` to `path` atomically (temp file + rename) with mode 0600, so a crash never
/// leaves half a file and no other user can read a token.
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    private_dir(dir)?;
    let tmp = path.with_extension("tmp");
    let write = || -> std::io::Result<()> {
        let mut options = fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&tmp)?;
        #[cfg(unix)]
        file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&tmp, path)
    };
    write().map_err(|e| Error::io(format!("writing {}", path.display()), e))
}

/// Reads a JSON file; a missing or unreadable one is `None` (it is only a cache).
fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Option<T> {
    let bytes = fs::read(path).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// A logged-in session on one server.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Session {
    pub username: String,
    pub token: String,
    /// Unix seconds after which the token is refused.
    pub expires_at: u64,
}

/// Tokens by server URL, in `<config dir>/sessions.json` (mode 0600).
pub struct Sessions {
    path: PathBuf,
}

/// Servers are compared without a trailing slash.
fn server_key(server: &str) -> String {
    server.trim_end_matches('/').to_string()
}

impl Sessions {
    pub fn new(config_dir: &Path) -> Self {
        Self {
            path: config_dir.join("sessions.json"),
        }
    }

    fn all(&self) -> BTreeMap<String, Session> {
        read_json(&self.path).unwrap_or_default()
    }

    /// The live session for `server`.
    ///
    /// # Errors
    /// [`Error::NotLoggedIn`] or [`Error::SessionExpired`].
    pub fn get(&self, server: &str) -> Result<Session> {
        let session = self
            .all()
            .remove(&server_key(server))
            .ok_or(Error::NotLoggedIn)?;
        if session.expires_at <= unix_now() {
            return Err(Error::SessionExpired);
        }
        Ok(session)
    }

    /// Stores (replaces) the session for `server`.
    ///
    /// # Errors
    /// The file cannot be written.
    pub fn put(&self, server: &str, session: Session) -> Result<()> {
        let mut all = self.all();
        all.insert(server_key(server), session);
        let bytes = serde_json::to_vec_pretty(&all).expect("sessions serialize");
        write_private(&self.path, &bytes)
    }
}

/// What makes two runs "the same upload": the same server and user, the same file (path,
/// size, modification time: the same bytes, as for `make` and `rsync`), under the same name
/// in the same folder. Not its SHA-256, which a large file's upload learns only once it has
/// read the last part.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResumeKey {
    pub server: String,
    pub username: String,
    pub path: PathBuf,
    pub size: u64,
    pub mtime_ns: u128,
    /// The folder the file goes in.
    pub folder_id: String,
    pub name: String,
}

impl ResumeKey {
    /// A file name for this key: SHA-256 of its fields, unambiguously joined.
    pub fn id(&self) -> String {
        let mut h = Sha256::new();
        for field in [
            server_key(&self.server).as_bytes(),
            self.username.as_bytes(),
            self.path.as_os_str().as_encoded_bytes(),
            self.size.to_string().as_bytes(),
            self.mtime_ns.to_string().as_bytes(),
            self.folder_id.as_bytes(),
            self.name.as_bytes(),
        ] {
            h.update((field.len() as u64).to_be_bytes());
            h.update(field);
        }
        hex::encode(h.finalize())
    }
}

/// How long an entry is kept when nothing better is known: the server's default upload
/// lifetime, and how long a completed upload is remembered.
pub const KEEP_SECS: u64 = 7 * 24 * 3600;

/// What a re-run needs: the upload to continue, or the File an earlier run made.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ResumeState {
    /// The server's upload; `None` when the File came from instant upload.
    #[serde(default)]
    pub upload_id: Option<String>,
    pub path: PathBuf,
    pub name: String,
    pub size: u64,
    /// The file's SHA-256: the one declared at create (if any) while unfinished, the one
    /// read from the parts once complete.
    #[serde(default)]
    pub sha256: Option<String>,
    #[serde(default)]
    pub part_size: u64,
    #[serde(default)]
    pub part_count: u64,
    pub created_at: u64,
    /// When the server forgets the unfinished upload (Unix seconds, its `expires_at`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<u64>,
    /// The File the upload made, once complete: a re-run checks that it still exists
    /// rather than making a second one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<u64>,
}

impl ResumeState {
    /// The record of a completed upload of `key`'s file, whose bytes hash to `sha256`.
    pub fn completed(
        key: &ResumeKey,
        upload_id: Option<String>,
        file_id: &str,
        sha256: Option<&str>,
    ) -> Self {
        let now = unix_now();
        Self {
            upload_id,
            path: key.path.clone(),
            name: key.name.clone(),
            size: key.size,
            sha256: sha256.map(str::to_string),
            part_size: 0,
            part_count: 0,
            created_at: now,
            expires_at: None,
            file_id: Some(file_id.to_string()),
            completed_at: Some(now),
        }
    }

    /// Unix seconds from which the entry is of no use: an unfinished upload once the server
    /// has forgotten it (a week after it began when its expiry is unknown), a completed one
    /// a week after completion.
    pub fn stale_at(&self) -> u64 {
        match (self.completed_at, self.expires_at) {
            (Some(done), _) => done.saturating_add(KEEP_SECS),
            (None, Some(expires)) => expires,
            (None, None) => self.created_at.saturating_add(KEEP_SECS),
        }
    }
}

/// Unfinished and recently completed uploads, one file each under `<config dir>/uploads/`.
/// Stale entries are dropped when read and by [`ResumeStore::prune`], so the directory does
/// not grow with every upload ever made.
pub struct ResumeStore {
    dir: PathBuf,
}

impl ResumeStore {
    pub fn new(config_dir: &Path) -> Self {
        Self {
            dir: config_dir.join("uploads"),
        }
    }

    fn path(&self, key: &ResumeKey) -> PathBuf {
        self.dir.join(format!("{}.json", key.id()))
    }

    /// The entry for `key`, unless it is stale (then it is removed).
    pub fn load(&self, key: &ResumeKey) -> Option<ResumeState> {
        let path = self.path(key);
        let state: ResumeState = read_json(&path)?;
        if state.stale_at() <= unix_now() {
            let _ = fs::remove_file(&path);
            return None;
        }
        Some(state)
    }

    /// # Errors
    /// The state cannot be written (the upload would still work, but not resume).
    pub fn save(&self, key: &ResumeKey, state: &ResumeState) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(state).expect("state serializes");
        write_private(&self.path(key), &bytes)
    }

    /// Forgets an upload (gone from the server). Missing is fine.
    pub fn clear(&self, key: &ResumeKey) {
        let _ = fs::remove_file(self.path(key));
    }

    /// Removes entries stale at `now` and any that no longer parse; returns how many.
    /// Entries are small, so reading each once per command costs little.
    pub fn prune(&self, now: u64) -> usize {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return 0;
        };
        let mut removed = 0;
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_none_or(|e| e != "json") {
                continue;
            }
            let stale = read_json::<ResumeState>(&path).is_none_or(|s| s.stale_at() <= now);
            if stale && fs::remove_file(&path).is_ok() {
                removed += 1;
            }
        }
        removed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> ResumeKey {
        ResumeKey {
            server: "http://127.0.0.1:8080".into(),
            username: "alice".into(),
            path: PathBuf::from("/home/alice/big.iso"),
            size: 12 << 20,
            mtime_ns: 1_700_000_000_123_456_789,
            folder_id: "root".into(),
            name: "big.iso".into(),
        }
    }

    #[test]
    fn resume_keys_change_with_every_field_and_ignore_a_trailing_slash() {
        let base = key();
        let id = base.id();
        assert_eq!(id.len(), 64);
        let mut same = base.clone();
        same.server.push('/');
        assert_eq!(same.id(), id);
        let variants: [fn(&mut ResumeKey); 7] = [
            |k| k.server = "http://other:8080".into(),
            |k| k.username = "bob".into(),
            |k| k.path = PathBuf::from("/home/alice/big.iso2"),
            |k| k.size += 1,
            |k| k.mtime_ns += 1,
            |k| k.folder_id = "0190f0e0-0000-7000-8000-000000000000".into(),
            |k| k.name = "other.iso".into(),
        ];
        for change in variants {
            let mut k = base.clone();
            change(&mut k);
            assert_ne!(k.id(), id, "{k:?}");
        }
    }

    #[test]
    fn field_boundaries_cannot_be_shifted() {
        let mut a = key();
        let mut b = key();
        a.server = "http://host:80".into();
        a.username = "80alice".into();
        b.server = "http://host:8080".into();
        b.username = "alice".into();
        assert_ne!(a.id(), b.id());
    }

    #[test]
    fn sessions_are_private_and_per_server() {
        let dir = tempfile::tempdir().unwrap();
        let sessions = Sessions::new(&dir.path().join("nested"));
        assert!(matches!(sessions.get("http://a"), Err(Error::NotLoggedIn)));
        let live = Session {
            username: "alice".into(),
            token: "t1".into(),
            expires_at: unix_now() + 60,
        };
        sessions.put("http://a/", live.clone()).unwrap();
        assert_eq!(sessions.get("http://a").unwrap(), live);
        assert!(matches!(sessions.get("http://b"), Err(Error::NotLoggedIn)));
        sessions
            .put(
                "http://b",
                Session {
                    expires_at: 1,
                    ..live.clone()
                },
            )
            .unwrap();
        assert!(matches!(
            sessions.get("http://b"),
            Err(Error::SessionExpired)
        ));
        assert_eq!(sessions.get("http://a").unwrap(), live);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(dir.path().join("nested/sessions.json"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    fn unfinished(k: &ResumeKey, created_at: u64, expires_at: Option<u64>) -> ResumeState {
        ResumeState {
            upload_id: Some("u".into()),
            path: k.path.clone(),
            name: k.name.clone(),
            size: k.size,
            sha256: None,
            part_size: 5 << 20,
            part_count: 3,
            created_at,
            expires_at,
            file_id: None,
            completed_at: None,
        }
    }

    #[test]
    fn resume_state_round_trips_and_clears() {
        let dir = tempfile::tempdir().unwrap();
        let store = ResumeStore::new(dir.path());
        let k = key();
        assert!(store.load(&k).is_none());
        let state = unfinished(&k, unix_now(), Some(unix_now() + 3600));
        store.save(&k, &state).unwrap();
        assert_eq!(store.load(&k), Some(state));
        let done = ResumeState::completed(&k, Some("u".into()), "f1", Some(&"ab".repeat(32)));
        store.save(&k, &done).unwrap();
        assert_eq!(store.load(&k).unwrap().file_id.as_deref(), Some("f1"));
        store.clear(&k);
        assert!(store.load(&k).is_none());
        store.clear(&k);
    }

    /// A state written before completed uploads and expiries were kept still resumes.
    #[test]
    fn states_without_the_newer_fields_still_load() {
        let now = unix_now();
        let old = format!(
            r#"{{"upload_id":"u","path":"/a","name":"a","size":1,"sha256":"ab",
                "part_size":5242880,"part_count":1,"created_at":{now}}}"#
        );
        let state: ResumeState = serde_json::from_str(&old).unwrap();
        assert_eq!(state.upload_id.as_deref(), Some("u"));
        assert_eq!(state.sha256.as_deref(), Some("ab"));
        assert_eq!(state.file_id, None);
        assert_eq!(state.stale_at(), now + KEEP_SECS);
    }

    /// Unfinished uploads go when the server forgets them (a week when it did not say),
    /// completed ones a week after completion; unreadable entries go too.
    #[test]
    fn stale_entries_are_pruned_and_not_loaded() {
        let dir = tempfile::tempdir().unwrap();
        let store = ResumeStore::new(dir.path());
        let now = unix_now();
        let mut keys = Vec::new();
        let mut entry = |name: &str, state: &dyn Fn(&ResumeKey) -> ResumeState| {
            let k = ResumeKey {
                name: name.into(),
                ..key()
            };
            store.save(&k, &state(&k)).unwrap();
            keys.push(k);
        };
        entry("expired", &|k| unfinished(k, now - 100, Some(now - 1)));
        entry("live", &|k| unfinished(k, now - 100, Some(now + 3600)));
        entry("old-unknown", &|k| unfinished(k, now - KEEP_SECS - 1, None));
        entry("new-unknown", &|k| {
            unfinished(k, now - KEEP_SECS + 60, None)
        });
        entry("done-long-ago", &|k| ResumeState {
            completed_at: Some(now - KEEP_SECS - 1),
            ..ResumeState::completed(k, None, "f", None)
        });
        entry("done-recently", &|k| {
            ResumeState::completed(k, None, "f", None)
        });
        std::fs::write(dir.path().join("uploads/garbage.json"), b"{not json").unwrap();
        std::fs::write(dir.path().join("uploads/other.txt"), b"kept").unwrap();

        assert!(
            store.load(&keys[0]).is_none(),
            "an expired entry is not loaded"
        );
        assert!(!store.path(&keys[0]).exists(), "and is removed when read");
        assert_eq!(store.prune(now), 3, "old-unknown, done-long-ago, garbage");
        let left: Vec<bool> = keys.iter().map(|k| store.path(k).exists()).collect();
        assert_eq!(left, [false, true, false, true, false, true]);
        assert!(dir.path().join("uploads/other.txt").exists());
        assert_eq!(store.prune(now), 0);
        assert_eq!(store.prune(now + KEEP_SECS + 1), 3, "everything ages out");
        assert_eq!(ResumeStore::new(&dir.path().join("none")).prune(now), 0);
    }

    #[test]
    fn settings_come_from_the_environment() {
        let s = Settings::from_lookup(|k| match k {
            "FILESTORE_CONFIG_DIR" => Some("/tmp/fs-conf".into()),
            "FILESTORE_PASSWORD" => Some("secret pw".into()),
            "FILESTORE_TEST_STOP_AFTER_PARTS" => Some("2".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(s.config_dir, PathBuf::from("/tmp/fs-conf"));
        assert_eq!(s.password.as_deref(), Some("secret pw"));
        assert_eq!(s.hooks.stop_after_parts, Some(2));
    }
}

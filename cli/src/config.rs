//! Where the CLI keeps things, and the only place it reads its environment.
//!
//! - [`Settings`]: the config directory (`FILESTORE_CONFIG_DIR`, else the user's config dir
//!   + `filestore`), `FILESTORE_PASSWORD`.
//! - [`Sessions`]: one token per server, in `sessions.json`, mode 0600.
//!
//! `FILESTORE_SERVER` is read by the argument parser (it is `--server`'s default).

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Everything the environment says.
#[derive(Debug)]
pub struct Settings {
    pub config_dir: PathBuf,
    pub password: Option<String>,
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
        Ok(Self {
            config_dir,
            password: lookup("FILESTORE_PASSWORD"),
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

/// Reads a JSON file; a missing or unreadable one is `None`.
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

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn settings_come_from_the_environment() {
        let s = Settings::from_lookup(|k| match k {
            "FILESTORE_CONFIG_DIR" => Some("/tmp/fs-conf".into()),
            "FILESTORE_PASSWORD" => Some("secret pw".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(s.config_dir, PathBuf::from("/tmp/fs-conf"));
        assert_eq!(s.password.as_deref(), Some("secret pw"));
    }
}

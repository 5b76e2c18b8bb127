//! `filestore download`: stream a file from its presigned URL into a temp file beside the
//! target, resume a partial temp file with an HTTP Range request, check the SHA-256 when
//! the server has verified the file, then rename into place.
//!
//! The temp file is named by the file id (`.filestore-<file_id>.part`), so only bytes of
//! the same file are ever resumed (a file's bytes never change).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Instant;

use reqwest::StatusCode;
use reqwest::header::{CONTENT_RANGE, RANGE};
use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncSeekExt, AsyncWriteExt};

use crate::api::{Api, File};
use crate::config::TestHooks;
use crate::error::{Error, Result};
use crate::output::{Output, human_bytes, human_rate};
use crate::upload::backoff;

/// Attempts when the transfer breaks off or the URL expires; each resumes where it stopped.
const MAX_ATTEMPTS: u32 = 4;

/// The result of a download.
#[derive(Debug, Serialize)]
pub struct Downloaded {
    pub file: File,
    pub path: PathBuf,
    /// Bytes this run fetched.
    pub bytes_downloaded: u64,
    /// Bytes a partial file from an earlier run already held.
    pub resumed_from: u64,
    /// SHA-256 of the bytes written.
    pub sha256: String,
    /// Whether that hash was checked against the server's verified one.
    pub sha256_checked: bool,
    pub seconds: f64,
}

/// Where the file goes: `-o PATH` (into it, if it is a directory), else the file's name in
/// the current directory. A name that is not a plain file name falls back to the id.
pub fn target_path(output: Option<&Path>, file: &File) -> PathBuf {
    let name = match file.name.as_str() {
        "" | "." | ".." => file.file_id.as_str(),
        name if name.contains(['/', '\\']) => file.file_id.as_str(),
        name => name,
    };
    match output {
        Some(path) if path.is_dir() => path.join(name),
        Some(path) => path.to_path_buf(),
        None => PathBuf::from(name),
    }
}

/// The partial download beside `target`.
pub fn temp_path(target: &Path, file_id: &str) -> PathBuf {
    let dir = target
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    dir.join(format!(".filestore-{file_id}.part"))
}

/// The `Range` header that asks for the rest of a file from `have` bytes on, if any is
/// needed.
pub fn range_from(have: u64, size: u64) -> Option<String> {
    (have > 0 && have < size).then(|| format!("bytes={have}-"))
}

/// Whether a 206 answer starts where we asked (`Content-Range: bytes <start>-...`).
pub fn range_starts_at(content_range: Option<&str>, start: u64) -> bool {
    content_range
        .and_then(|v| v.strip_prefix("bytes "))
        .and_then(|v| v.split('-').next())
        .and_then(|v| v.parse::<u64>().ok())
        == Some(start)
}

/// Compares the downloaded bytes' hash with the file's, when the server has verified it.
/// Returns whether a check was made.
///
/// # Errors
/// The hashes differ.
pub fn check_sha256(file: &File, computed: &str) -> Result<bool> {
    match file.sha256.as_deref().filter(|_| file.verified) {
        None => Ok(false),
        Some(expected) if expected.eq_ignore_ascii_case(computed) => Ok(true),
        Some(expected) => Err(Error::Failed(format!(
            "the downloaded bytes do not match the file's SHA-256 (expected {expected}, got \
             {computed}); the partial download was removed, run the download again"
        ))),
    }
}

/// SHA-256 state over the first `len` bytes of `path`.
async fn hash_prefix(path: &Path, len: u64) -> Result<Sha256> {
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let context = || format!("reading {}", path.display());
        let file = std::fs::File::open(&path).map_err(|e| Error::io(context(), e))?;
        let mut hasher = Sha256::new();
        std::io::copy(&mut file.take(len), &mut hasher).map_err(|e| Error::io(context(), e))?;
        Ok(hasher)
    })
    .await
    .map_err(|e| Error::Failed(format!("hashing stopped: {e}")))?
}

/// Downloads `file_id` to `output` (see [`target_path`]); an existing file there is
/// replaced only when `force`.
///
/// # Errors
/// Unknown file, a target that exists (without `force`), transfer failures after retries,
/// a hash mismatch (the partial is removed).
pub async fn download(
    api: &Api,
    out: &Output,
    hooks: TestHooks,
    file_id: &str,
    output: Option<&Path>,
    force: bool,
) -> Result<Downloaded> {
    let started = Instant::now();
    let file = api.file(file_id).await?;
    let target = target_path(output, &file);
    // Checked before any byte is fetched: the default target is the file's own name, which
    // is often the very local file it was uploaded from, or another one of that name.
    if !force && std::fs::symlink_metadata(&target).is_ok() {
        return Err(Error::Failed(format!(
            "{} already exists; pass --force to replace it, or -o another path",
            target.display()
        )));
    }
    let temp = temp_path(&target, file.file_id.as_str());
    let have = std::fs::metadata(&temp).map(|m| m.len()).unwrap_or(0);
    let resumed_from = if have <= file.size { have } else { 0 };

    let bar = out.bar(file.size, &file.name);
    let fetched = fetch(api, hooks, &file, &temp, resumed_from, &bar).await;
    bar.finish_and_clear();
    let (hasher, bytes_downloaded, resumed_from) = fetched?;

    let sha256 = hex::encode(hasher.finalize());
    let checked = match check_sha256(&file, &sha256) {
        Ok(checked) => checked,
        Err(e) => {
            let _ = std::fs::remove_file(&temp);
            return Err(e);
        }
    };
    if !checked {
        out.note(&format!(
            "note: the server has not verified {:?} yet, so its SHA-256 was not checked",
            file.name
        ));
    }
    std::fs::rename(&temp, &target).map_err(|e| {
        Error::io(
            format!("moving {} to {}", temp.display(), target.display()),
            e,
        )
    })?;
    Ok(Downloaded {
        file,
        path: target,
        bytes_downloaded,
        resumed_from,
        sha256,
        sha256_checked: checked,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// How far a download is: `temp` holds `have` bytes, `hasher` has seen exactly those.
struct Progress {
    have: u64,
    hasher: Sha256,
    /// Bytes fetched by this run.
    fetched: u64,
    /// Bytes an earlier run left that this run kept.
    resumed_from: u64,
}

impl Progress {
    fn restart(&mut self) {
        self.have = 0;
        self.hasher = Sha256::new();
        self.resumed_from = 0;
    }
}

/// Fills `temp` up to the file's size, resuming from the `have` bytes it holds. Returns the
/// hash of the whole file, the bytes this run fetched, and the bytes it resumed after.
async fn fetch(
    api: &Api,
    hooks: TestHooks,
    file: &File,
    temp: &Path,
    have: u64,
    bar: &indicatif::ProgressBar,
) -> Result<(Sha256, u64, u64)> {
    let hasher = if have == 0 {
        Sha256::new()
    } else {
        hash_prefix(temp, have).await?
    };
    let mut progress = Progress {
        have,
        hasher,
        fetched: 0,
        resumed_from: have,
    };
    bar.set_position(have);
    bar.reset_eta();
    let mut attempt = 0u32;
    // A zero-byte file still needs its (empty) temp file created once.
    while progress.have < file.size || !temp.exists() {
        let url = api.download_url(file.file_id.as_str()).await?.url;
        let why = match fetch_once(api, hooks, file, temp, &url, &mut progress, bar).await {
            Ok(()) if progress.have >= file.size => continue,
            Ok(()) => format!(
                "storage ended the transfer after {} of {} bytes",
                progress.have, file.size
            ),
            Err(Retry::Fail(e)) => return Err(e),
            Err(Retry::Restart(why)) => {
                progress.restart();
                bar.set_position(0);
                why
            }
            Err(Retry::After(why)) => why,
        };
        attempt += 1;
        if attempt >= MAX_ATTEMPTS {
            return Err(Error::Failed(format!(
                "{why}; run the same download again to resume"
            )));
        }
        tokio::time::sleep(backoff(attempt - 1, rand::random())).await;
    }
    if progress.have != file.size {
        return Err(Error::Failed(format!(
            "storage sent {} bytes, but the file has {}",
            progress.have, file.size
        )));
    }
    Ok((progress.hasher, progress.fetched, progress.resumed_from))
}

enum Retry {
    /// Storage ignored or refused our Range: start the file over.
    Restart(String),
    /// A transient failure (broken transfer, expired URL, 5xx): try again, resuming.
    After(String),
    Fail(Error),
}

/// One GET of the rest of the file into `temp`, advancing `progress` as bytes land.
async fn fetch_once(
    api: &Api,
    hooks: TestHooks,
    file: &File,
    temp: &Path,
    url: &str,
    progress: &mut Progress,
    bar: &indicatif::ProgressBar,
) -> Result<(), Retry> {
    let mut req = api.http().get(url);
    let range = range_from(progress.have, file.size);
    if let Some(range) = &range {
        req = req.header(RANGE, range);
    }
    let mut resp = match req.send().await {
        Ok(resp) => resp,
        Err(e) => return Err(Retry::After(Error::transport("storage", &e).to_string())),
    };
    let status = resp.status();
    match status {
        StatusCode::PARTIAL_CONTENT if range.is_some() => {
            let content_range = resp
                .headers()
                .get(CONTENT_RANGE)
                .and_then(|v| v.to_str().ok());
            if !range_starts_at(content_range, progress.have) {
                return Err(Retry::Restart(format!(
                    "storage answered a range other than the one asked for ({content_range:?})"
                )));
            }
        }
        StatusCode::OK if range.is_none() => progress.restart(),
        StatusCode::OK | StatusCode::RANGE_NOT_SATISFIABLE => {
            return Err(Retry::Restart(format!(
                "storage answered {status} to a range request"
            )));
        }
        // 403: the URL expired; the next attempt asks for a fresh one.
        s if s == StatusCode::FORBIDDEN || s.is_server_error() => {
            return Err(Retry::After(format!("storage answered {s}")));
        }
        s => {
            return Err(Retry::Fail(Error::Failed(format!(
                "storage answered {s} for the download URL"
            ))));
        }
    }

    let io = |e| Retry::Fail(Error::io(format!("writing {}", temp.display()), e));
    let handle = tokio::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(temp)
        .await
        .map_err(io)?;
    // Cut anything past what we resume from (a previous run may have left a torn tail).
    handle.set_len(progress.have).await.map_err(io)?;
    let mut writer = tokio::io::BufWriter::with_capacity(1 << 20, handle);
    writer
        .seek(std::io::SeekFrom::Start(progress.have))
        .await
        .map_err(io)?;

    loop {
        let chunk = match resp.chunk().await {
            Ok(Some(chunk)) => chunk,
            Ok(None) => break,
            Err(e) => {
                writer.flush().await.map_err(io)?;
                return Err(Retry::After(Error::transport("storage", &e).to_string()));
            }
        };
        writer.write_all(&chunk).await.map_err(io)?;
        progress.hasher.update(&chunk);
        progress.have += chunk.len() as u64;
        progress.fetched += chunk.len() as u64;
        bar.inc(chunk.len() as u64);
        if progress.have > file.size {
            return Err(Retry::Fail(Error::Failed(format!(
                "storage sent more bytes than the file has ({})",
                file.size
            ))));
        }
        if hooks
            .stop_after_bytes
            .is_some_and(|n| progress.fetched >= n)
        {
            writer.flush().await.map_err(io)?;
            return Err(Retry::Fail(Error::Failed(format!(
                "interrupted after {} bytes (FILESTORE_TEST_STOP_AFTER_BYTES)",
                progress.fetched
            ))));
        }
    }
    writer.flush().await.map_err(io)?;
    writer.get_ref().sync_all().await.map_err(io)?;
    Ok(())
}

/// One line for people.
pub fn summary(d: &Downloaded) -> String {
    let mut line = format!(
        "downloaded {:?} ({}) to {} in {:.1} s, {}",
        d.file.name,
        human_bytes(d.file.size),
        d.path.display(),
        d.seconds,
        human_rate(d.bytes_downloaded, d.seconds),
    );
    if d.resumed_from > 0 {
        line.push_str(&format!(" (resumed after {})", human_bytes(d.resumed_from)));
    }
    if d.sha256_checked {
        line.push_str(", SHA-256 checked");
    }
    line
}

#[cfg(test)]
mod tests {
    use filestore_contract::api::FileView;

    use super::*;

    const ID: &str = "0190a000-0000-7000-8000-000000000000";

    fn file(name: &str) -> File {
        File::from(FileView {
            file_id: filestore_contract::domain::FileId::parse(ID).unwrap(),
            name: name.into(),
            size: 10,
            sha256: None,
            content_type: "application/octet-stream".into(),
            created_at: "2026-01-01T00:00:00Z".into(),
            parent_id: Default::default(),
            tier: filestore_contract::domain::Tier::Hot,
            verified: false,
            declared_sha256: None,
        })
    }

    #[test]
    fn targets_default_to_the_file_name_and_go_into_directories() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(target_path(None, &file("a.bin")), PathBuf::from("a.bin"));
        assert_eq!(
            target_path(Some(dir.path()), &file("a.bin")),
            dir.path().join("a.bin")
        );
        let explicit = dir.path().join("copy.bin");
        assert_eq!(target_path(Some(&explicit), &file("a.bin")), explicit);
        assert_eq!(target_path(None, &file("..")), PathBuf::from(ID));
        assert_eq!(target_path(None, &file("a\\b")), PathBuf::from(ID));
    }

    #[test]
    fn partial_files_sit_beside_the_target_and_are_named_by_file_id() {
        assert_eq!(
            temp_path(Path::new("out/copy.bin"), "f1"),
            PathBuf::from("out/.filestore-f1.part")
        );
        assert_eq!(
            temp_path(Path::new("copy.bin"), "f1"),
            PathBuf::from("./.filestore-f1.part")
        );
    }

    #[test]
    fn hashes_are_checked_only_once_the_server_verified_them() {
        let mut f = file("a.bin");
        f.sha256 = Some("ab".repeat(32));
        assert!(!check_sha256(&f, &"cd".repeat(32)).unwrap());
        f.verified = true;
        assert!(check_sha256(&f, &"AB".repeat(32)).unwrap());
        let err = check_sha256(&f, &"cd".repeat(32)).unwrap_err().to_string();
        assert!(err.contains("do not match"), "{err}");
        f.sha256 = None;
        assert!(!check_sha256(&f, &"cd".repeat(32)).unwrap());
    }

    #[test]
    fn ranges_ask_only_for_what_is_missing() {
        assert_eq!(range_from(0, 10), None);
        assert_eq!(range_from(4, 10).as_deref(), Some("bytes=4-"));
        assert_eq!(range_from(10, 10), None);
        assert!(range_starts_at(Some("bytes 4-9/10"), 4));
        assert!(!range_starts_at(Some("bytes 0-9/10"), 4));
        assert!(!range_starts_at(None, 4));
    }
}

//! `filestore download`: fetch a file from its presigned URL in parts, several ranged GETs
//! at once (S3 limits each connection, not the client), each streamed to its offset in a
//! partial file beside the target; check the SHA-256 when the server has verified the file,
//! then rename into place. Files under two parts, and `--concurrency 1`, go in one stream.
//!
//! Resume: the partial file is named by the file id (`.filestore-<file_id>.part`, a file's
//! bytes never change) and its sidecar (`.part.json`) lists the parts written, so a re-run
//! fetches only the others. Parts come from one object: if storage's ETag or size differs
//! from what the written parts came from, the download starts over (once).
//!
//! # Layout
//! - this module: the command, where the file goes, the final check.
//! - `parts`: the parts and the sidecar that records the written ones.
//! - `fetch`: the ranged GETs in parallel, with retries and a refreshed URL.
//! - `hash`: the SHA-256 in file order while parts land in any order.

mod fetch;
mod hash;
mod parts;

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;
use sha2::Digest;

use self::fetch::{Fetch, Stop};
pub use self::parts::{DEFAULT_PART_SIZE, PartState, Parts, state_path};
use crate::api::{Api, File};
use crate::config::TestHooks;
use crate::error::{Error, Result};
use crate::output::{Output, human_bytes, human_rate};

/// How to fetch.
#[derive(Clone, Copy, Debug)]
pub struct DownloadOptions {
    /// Ranged GETs in flight at once.
    pub concurrency: usize,
    /// Bytes per GET (a resumed download keeps the size it started with).
    pub part_size: u64,
}

/// The result of a download.
#[derive(Debug, Serialize)]
pub struct Downloaded {
    pub file: File,
    pub path: PathBuf,
    /// Bytes this run fetched.
    pub bytes_downloaded: u64,
    /// Bytes of the parts an earlier run already wrote.
    pub resumed_from: u64,
    pub part_size: u64,
    pub part_count: u64,
    /// Parts this run fetched.
    pub parts_fetched: u64,
    /// Parts an earlier, interrupted run had written.
    pub parts_already_done: u64,
    /// GETs in flight at once (1: one stream).
    pub streams: usize,
    /// Presigned URLs asked for (more than one when storage refused one as expired).
    pub urls: u32,
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

/// Downloads `file_id` to `output` (see [`target_path`]); an existing file there is
/// replaced only when `force`.
///
/// # Errors
/// Unknown file, a target that exists (without `force`), transfer failures after retries,
/// a hash mismatch (the partial download is removed).
pub async fn download(
    api: &Api,
    out: &Output,
    hooks: TestHooks,
    file_id: &str,
    output: Option<&Path>,
    force: bool,
    options: DownloadOptions,
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
    let bar = out.bar(file.size, &file.name);
    let mut result = transfer(api, hooks, &file, &temp, options, &bar).await;
    if let Err(Stop::Changed(why)) = &result {
        out.note(&format!("note: {why}; starting the download over"));
        parts::remove(&temp);
        bar.set_position(0);
        result = transfer(api, hooks, &file, &temp, options, &bar).await;
    }
    bar.finish_and_clear();
    let mut done = result.map_err(|stop| match stop {
        Stop::Failed(e) => e,
        Stop::Changed(why) => {
            parts::remove(&temp);
            Error::Failed(format!(
                "{why}; the partial download was removed, run the download again"
            ))
        }
    })?;

    let checked = match check_sha256(&file, &done.sha256) {
        Ok(checked) => checked,
        Err(e) => {
            parts::remove(&temp);
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
    let _ = std::fs::remove_file(state_path(&temp));
    done.file = file;
    done.path = target;
    done.sha256_checked = checked;
    done.seconds = started.elapsed().as_secs_f64();
    Ok(done)
}

/// Fills the partial file `temp`, resuming the parts its sidecar lists, and hashes it.
/// The result lacks only what [`download`] adds: where it went and the check.
async fn transfer(
    api: &Api,
    hooks: TestHooks,
    file: &File,
    temp: &Path,
    options: DownloadOptions,
    bar: &indicatif::ProgressBar,
) -> std::result::Result<Downloaded, Stop> {
    let id = file.file_id.as_str();
    let state = match parts::load(temp, id, file.size) {
        Some(state) => state,
        None => {
            parts::remove(temp);
            let parts = Parts {
                size: file.size,
                part_size: options.part_size.max(1),
            };
            PartState::new(id, parts)
        }
    };
    // The sidecar exists before any byte is written, so a partial file is never mistaken
    // for more than it holds.
    parts::save(temp, &state)?;
    let io = |e| Error::io(format!("writing {}", temp.display()), e);
    let handle = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(temp)
        .map_err(io)?;
    if handle.metadata().map_err(io)?.len() != file.size {
        handle.set_len(file.size).map_err(io)?;
    }
    drop(handle);

    let parts = state.parts();
    let already = state.done.clone();
    let resumed_from = state.done_bytes();
    bar.set_position(resumed_from);
    bar.reset_eta();
    let one_stream = parts.one_stream(options.concurrency);
    let spans = parts.spans(&already, one_stream);
    let streams = if one_stream { 1 } else { options.concurrency };
    let (written, hashing) = std::sync::mpsc::channel();
    let hasher = hash::spawn(temp, parts, already.clone(), hashing);
    let fetch = Fetch::new(api, hooks, id, temp, bar, state, written);
    let fetched = fetch.run(spans, streams).await?;
    let hashed = hasher
        .await
        .map_err(|e| Error::Failed(format!("hashing stopped: {e}")))??;
    if hashed.parts_hashed != parts.count() {
        return Err(Stop::Failed(Error::Failed(format!(
            "only {} of {} parts were written",
            hashed.parts_hashed,
            parts.count()
        ))));
    }
    Ok(Downloaded {
        file: file.clone(),
        path: PathBuf::new(),
        bytes_downloaded: fetched.bytes,
        resumed_from,
        part_size: parts.part_size,
        part_count: parts.count(),
        parts_fetched: fetched.parts,
        parts_already_done: already.len() as u64,
        streams,
        urls: fetched.urls,
        sha256: hex::encode(hashed.hasher.finalize()),
        sha256_checked: false,
        seconds: 0.0,
    })
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
}

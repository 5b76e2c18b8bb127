//! `filestore upload`: hash each file once (SHA-256, streaming), create the upload with that
//! hash declared, presign its parts in batches, PUT them in parallel with retries, complete.
//!
//! Resume: the upload id is kept in a [`ResumeStore`] under a [`ResumeKey`] (server, user,
//! path, size, mtime, SHA-256, name). A re-run asks the server which parts S3 already holds
//! (`parts_done`) and sends only the others; S3 is the truth, the local state only remembers
//! the id. Once the upload completes, the state records the File instead, so re-running a
//! command that stopped at its k-th file skips the files before it while their Files still
//! exist on the server unchanged (same name, size and SHA-256).

use std::collections::{BTreeSet, HashMap};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, UNIX_EPOCH};

use bytes::Bytes;
use futures::{StreamExt, stream};
use indicatif::ProgressBar;
use reqwest::Method;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::api::{Api, ByteRange, CreateUpload, FastUpload, File, PresignedPart, is_not_found};
use crate::config::{ResumeKey, ResumeState, ResumeStore, TestHooks, unix_now};
use crate::error::{Error, Result};
use crate::output::{Output, human_bytes, human_rate};

/// Most parts one presign call may ask for (the contract's limit).
pub const PRESIGN_BATCH: usize = 1000;
/// Attempts per part for transient failures (network, 5xx, 408, 429).
const MAX_ATTEMPTS: u32 = 6;
/// Fresh URLs per part when storage refuses one (403: expired).
const MAX_PRESIGNS: u32 = 3;
/// Directory uploads name files by their relative path with `/` written as this, because
/// the server's names are flat (no `/`).
pub const PATH_SEPARATOR: &str = "__";
/// Read buffer for hashing.
const HASH_BUFFER: usize = 1 << 20;
/// Read buffer for the ranges of a proof of possession.
const PROOF_BUFFER: usize = 64 * 1024;

/// How to send (what to send is [`plan_files`]'s answer).
#[derive(Clone, Debug)]
pub struct UploadOptions {
    /// Parts in flight at once.
    pub concurrency: usize,
    /// Part size to ask the server for; `None` lets it choose.
    pub part_size: Option<u64>,
}

/// Who is uploading, where, and with what.
pub struct Uploader<'a> {
    pub api: &'a Api,
    pub server: &'a str,
    pub username: &'a str,
    pub store: ResumeStore,
    pub out: &'a Output,
    pub hooks: TestHooks,
    pub options: UploadOptions,
}

/// The result of uploading one file.
#[derive(Debug, Serialize)]
pub struct Uploaded {
    pub path: PathBuf,
    pub file: File,
    pub part_count: u64,
    /// Parts this run sent.
    pub parts_sent: u64,
    /// Parts S3 already held from an earlier, interrupted run.
    pub parts_already_stored: u64,
    pub resumed: bool,
    /// The server already held verified bytes of this content: nothing was sent.
    pub instant: bool,
    /// An earlier run uploaded this file and its File still exists: nothing was done.
    pub already_uploaded: bool,
    pub bytes_sent: u64,
    /// Time spent hashing the file (part of `seconds`).
    pub hash_seconds: f64,
    pub seconds: f64,
}

impl Uploaded {
    /// A file stored without sending a byte: by instant upload (`instant`), or found already
    /// uploaded by an earlier run.
    fn nothing_sent(
        path: &Path,
        file: File,
        instant: bool,
        hash_seconds: f64,
        started: Instant,
    ) -> Self {
        Self {
            path: path.to_path_buf(),
            file,
            part_count: 0,
            parts_sent: 0,
            parts_already_stored: 0,
            resumed: false,
            instant,
            already_uploaded: !instant,
            bytes_sent: 0,
            hash_seconds,
            seconds: started.elapsed().as_secs_f64(),
        }
    }
}

/// The byte range `(offset, length)` of a 1-based part of a `size`-byte file.
pub fn part_range(part_number: u32, part_size: u64, size: u64) -> (u64, u64) {
    let offset = (u64::from(part_number) - 1) * part_size;
    let end = (offset + part_size).min(size);
    (offset.min(size), end.saturating_sub(offset))
}

/// Parts `1..=part_count` that are not in `done`, in order.
pub fn missing_parts(part_count: u64, done: &BTreeSet<u32>) -> Vec<u32> {
    (1..=u32::try_from(part_count).unwrap_or(u32::MAX))
        .filter(|n| !done.contains(n))
        .collect()
}

/// The step of retry number `attempt` (0-based): 250 ms doubling, at most 8 s.
fn backoff_step(attempt: u32) -> Duration {
    Duration::from_millis(250u64.saturating_mul(1 << attempt.min(5))).min(Duration::from_secs(8))
}

/// Wait before retry number `attempt` with "equal jitter": half the step plus `random`
/// (in `[0, 1)`) of the other half. Parts that failed together, in one storage hiccup, then
/// retry spread out instead of all at once, yet never sooner than half the step.
pub fn backoff(attempt: u32, random: f64) -> Duration {
    let half = backoff_step(attempt) / 2;
    half + half.mul_f64(random.clamp(0.0, 1.0))
}

/// How long one part PUT may take: a minute, or as long as 64 KiB/s needs.
fn part_timeout(len: u64) -> Duration {
    Duration::from_secs(60).max(Duration::from_secs(len / (64 * 1024)))
}

/// What to do after one PUT of a part.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Stored,
    /// The URL is refused (expired): presign this part again.
    Represign,
    /// Worth trying again after a pause.
    Retry,
    /// Trying again will not help.
    Fatal,
}

/// Storage's answer to a part PUT, by status.
pub fn classify(status: u16) -> Outcome {
    match status {
        200..=299 => Outcome::Stored,
        403 => Outcome::Represign,
        408 | 429 | 500..=599 => Outcome::Retry,
        _ => Outcome::Fatal,
    }
}

/// The files under `paths` (directories walked recursively, in name order) with the name
/// each gets on the server.
///
/// # Errors
/// A path that cannot be read, `--name` with more than one file, or nothing to upload.
pub fn plan_files(paths: &[PathBuf], name: Option<&str>) -> Result<Vec<(PathBuf, String)>> {
    let mut files = Vec::new();
    for path in paths {
        let meta = std::fs::metadata(path)
            .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
        if meta.is_dir() {
            let root = std::fs::canonicalize(path)
                .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
            let prefix: Vec<String> = root
                .file_name()
                .map(|n| vec![n.to_string_lossy().into_owned()])
                .unwrap_or_default();
            walk(path, &prefix, &mut files)?;
        } else {
            let base = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .ok_or_else(|| Error::Usage(format!("{} has no file name", path.display())))?;
            files.push((path.clone(), base));
        }
    }
    match (name, files.len()) {
        (_, 0) => Err(Error::Usage("no files to upload".to_string())),
        (Some(name), 1) => Ok(vec![(files.remove(0).0, name.to_string())]),
        (Some(_), n) => Err(Error::Usage(format!(
            "--name names one file, but the paths hold {n} files"
        ))),
        (None, _) => Ok(files),
    }
}

fn walk(dir: &Path, prefix: &[String], files: &mut Vec<(PathBuf, String)>) -> Result<()> {
    let read_err = |e| Error::io(format!("reading {}", dir.display()), e);
    let mut entries = std::fs::read_dir(dir)
        .map_err(read_err)?
        .collect::<std::io::Result<Vec<_>>>()
        .map_err(read_err)?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        let mut name = prefix.to_vec();
        name.push(entry.file_name().to_string_lossy().into_owned());
        let kind = entry.file_type().map_err(read_err)?;
        if kind.is_dir() {
            walk(&path, &name, files)?;
        } else if kind.is_file() || (kind.is_symlink() && path.is_file()) {
            // Symlinks to files are uploaded; symlinks to directories are not followed,
            // so a link cycle cannot loop.
            files.push((path, name.join(PATH_SEPARATOR)));
        }
    }
    Ok(())
}

/// SHA-256 of a file, read once in 1 MiB blocks; `progress` gets each block's length.
///
/// # Errors
/// The file cannot be read.
pub fn sha256_file(path: &Path, mut progress: impl FnMut(u64)) -> Result<String> {
    let context = || format!("reading {}", path.display());
    let mut file = std::fs::File::open(path).map_err(|e| Error::io(context(), e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; HASH_BUFFER];
    loop {
        let n = file.read(&mut buf).map_err(|e| Error::io(context(), e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        progress(n as u64);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// [`sha256_file`] off the async runtime, advancing `bar`.
async fn hash_file(path: &Path, bar: ProgressBar) -> Result<String> {
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || sha256_file(&path, |n| bar.inc(n)))
        .await
        .map_err(|e| Error::Failed(format!("hashing stopped: {e}")))?
}

/// Reads one part's bytes.
async fn read_part(path: &Path, offset: u64, len: u64) -> Result<Bytes> {
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let read = || -> std::io::Result<Vec<u8>> {
            let mut file = std::fs::File::open(&path)?;
            file.seek(SeekFrom::Start(offset))?;
            let mut buf = vec![0u8; usize::try_from(len).unwrap_or(usize::MAX)];
            file.read_exact(&mut buf)?;
            Ok(buf)
        };
        read()
            .map(Bytes::from)
            .map_err(|e| Error::io(format!("reading {}", path.display()), e))
    })
    .await
    .map_err(|e| Error::Failed(format!("reading a part stopped: {e}")))?
}

/// The answer to a proof-of-possession challenge (DESIGN.md): lowercase hex SHA-256 of the
/// nonce's raw bytes followed by each challenged range of the file, in the order given. Each
/// range is read with a seek and a bounded buffer, never the whole file.
///
/// # Errors
/// A nonce that is not hex, or a range the file cannot supply.
pub fn proof_of_possession(path: &Path, nonce_hex: &str, ranges: &[ByteRange]) -> Result<String> {
    let nonce = hex::decode(nonce_hex)
        .map_err(|e| Error::Failed(format!("the server's challenge nonce is not hex ({e})")))?;
    let context = || format!("reading {}", path.display());
    let mut file = std::fs::File::open(path).map_err(|e| Error::io(context(), e))?;
    let mut hasher = Sha256::new();
    hasher.update(&nonce);
    let mut buf = vec![0u8; PROOF_BUFFER];
    for range in ranges {
        file.seek(SeekFrom::Start(range.offset))
            .map_err(|e| Error::io(context(), e))?;
        let mut left = range.length;
        while left > 0 {
            let want = usize::try_from(left.min(PROOF_BUFFER as u64)).unwrap_or(PROOF_BUFFER);
            file.read_exact(&mut buf[..want])
                .map_err(|e| Error::io(context(), e))?;
            hasher.update(&buf[..want]);
            left -= want as u64;
        }
    }
    Ok(hex::encode(hasher.finalize()))
}

/// Instant upload (`POST /v1/fast-upload` and its proof of possession, DESIGN.md): asks for
/// a challenge, answers it from the local file, and returns the new file when the server
/// already holds verified bytes of this content (`None`: send the bytes). Anything but a 401
/// going wrong here is `None` too, so the normal upload still runs.
async fn try_instant_upload(
    api: &Api,
    path: &Path,
    name: &str,
    size: u64,
    sha256: &str,
) -> Result<Option<File>> {
    match instant_upload(api, path, name, size, sha256).await {
        Ok(file) => Ok(file),
        Err(e @ Error::Api { status: 401, .. }) => Err(e),
        Err(_) => Ok(None),
    }
}

async fn instant_upload(
    api: &Api,
    path: &Path,
    name: &str,
    size: u64,
    sha256: &str,
) -> Result<Option<File>> {
    let challenge = api.fast_upload(&FastUpload { name, size, sha256 }).await?;
    let proof = {
        let path = path.to_path_buf();
        let nonce = challenge.nonce.clone();
        let ranges = challenge.ranges.clone();
        tokio::task::spawn_blocking(move || proof_of_possession(&path, &nonce, &ranges))
            .await
            .map_err(|e| Error::Failed(format!("reading the challenged ranges stopped: {e}")))??
    };
    let outcome = api.prove(&challenge.challenge_id, &proof).await?;
    Ok(match (outcome.status.as_str(), outcome.file) {
        ("complete", Some(file)) => Some(file),
        _ => None,
    })
}

/// An upload to continue: its id, plan, and the parts S3 holds.
struct Plan {
    upload_id: String,
    part_size: u64,
    part_count: u64,
    done: BTreeSet<u32>,
    resumed: bool,
}

impl Uploader<'_> {
    /// Uploads every file in order; stops at the first failure (a re-run resumes it).
    ///
    /// # Errors
    /// The first file that could not be uploaded.
    /// Returns the files uploaded, and the failure that stopped the others, if any.
    pub async fn upload_all(&self, files: &[(PathBuf, String)]) -> (Vec<Uploaded>, Result<()>) {
        self.store.prune(unix_now());
        let mut done = Vec::with_capacity(files.len());
        let mut parts_sent = 0;
        for (path, name) in files {
            match self.upload(path, name, parts_sent).await {
                Ok(uploaded) => {
                    self.out.line(&summary(&uploaded));
                    parts_sent += uploaded.parts_sent;
                    done.push(uploaded);
                }
                Err(e) => return (done, Err(e)),
            }
        }
        (done, Ok(()))
    }

    /// Uploads one file, resuming an earlier run of the same upload, or skipping it when an
    /// earlier run completed it and its File is still there. `parts_before`: parts this
    /// command sent for earlier files.
    async fn upload(&self, path: &Path, name: &str, parts_before: u64) -> Result<Uploaded> {
        let started = Instant::now();
        let meta = std::fs::metadata(path)
            .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
        let size = meta.len();
        let mtime_ns = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        let absolute = std::fs::canonicalize(path)
            .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;

        let bar = self.out.bar(size, &format!("hashing {name}"));
        let sha256 = hash_file(path, bar.clone()).await;
        bar.finish_and_clear();
        let sha256 = sha256?;
        let hash_seconds = started.elapsed().as_secs_f64();

        let key = ResumeKey {
            server: self.server.to_string(),
            username: self.username.to_string(),
            path: absolute.clone(),
            size,
            mtime_ns,
            sha256: sha256.clone(),
            name: name.to_string(),
        };
        let mut earlier = self.store.load(&key);
        if let Some(file_id) = earlier.as_ref().and_then(|s| s.file_id.clone()) {
            if let Some(file) = self.still_there(&file_id, &key).await? {
                return Ok(Uploaded::nothing_sent(
                    path,
                    file,
                    false,
                    hash_seconds,
                    started,
                ));
            }
            self.out.note(&format!(
                "note: {} was uploaded before as {file_id}, which is deleted or changed since; uploading it again",
                path.display()
            ));
            self.store.clear(&key);
            earlier = None;
        }
        // An earlier, interrupted run of this upload is resumed (or found completed) instead,
        // so a re-run never makes a second file.
        let instant = if earlier.is_some() {
            None
        } else {
            try_instant_upload(self.api, path, name, size, &sha256).await?
        };
        if let Some(file) = instant {
            self.remember(&key, None, &file);
            return Ok(Uploaded::nothing_sent(
                path,
                file,
                true,
                hash_seconds,
                started,
            ));
        }

        let plan = match self.resume(&key, size).await? {
            Resume::Continue(plan) => plan,
            Resume::Finished(upload_id, file) => {
                self.remember(&key, Some(upload_id), &file);
                return Ok(Uploaded {
                    path: path.to_path_buf(),
                    part_count: 0,
                    file,
                    parts_sent: 0,
                    parts_already_stored: 0,
                    resumed: true,
                    instant: false,
                    already_uploaded: false,
                    bytes_sent: 0,
                    hash_seconds,
                    seconds: started.elapsed().as_secs_f64(),
                });
            }
            Resume::Start => {
                let created = self
                    .api
                    .create_upload(&CreateUpload {
                        name,
                        size,
                        sha256: &sha256,
                        part_size: self.options.part_size,
                    })
                    .await?;
                let state = ResumeState {
                    upload_id: Some(created.upload_id.clone()),
                    path: absolute,
                    name: name.to_string(),
                    size,
                    sha256,
                    part_size: created.part_size,
                    part_count: created.part_count,
                    created_at: unix_now(),
                    expires_at: created.expires_at.as_deref().and_then(unix_seconds),
                    file_id: None,
                    completed_at: None,
                };
                if let Err(e) = self.store.save(&key, &state) {
                    self.out
                        .note(&format!("note: this upload cannot resume if stopped ({e})"));
                }
                Plan {
                    upload_id: created.upload_id,
                    part_size: created.part_size,
                    part_count: created.part_count,
                    done: BTreeSet::new(),
                    resumed: false,
                }
            }
        };

        let missing = missing_parts(plan.part_count, &plan.done);
        let already: u64 = plan
            .done
            .iter()
            .map(|&n| part_range(n, plan.part_size, size).1)
            .sum();
        let bar = self.out.bar(size, name);
        bar.set_position(already);
        bar.reset_eta();
        let sent = self
            .send_parts(path, size, &plan, &missing, &bar, parts_before)
            .await;
        bar.finish_and_clear();
        let (parts_sent, bytes_sent) = sent?;

        let file = self.api.complete(&plan.upload_id).await?;
        self.remember(&key, Some(plan.upload_id), &file);
        Ok(Uploaded {
            path: path.to_path_buf(),
            file,
            part_count: plan.part_count,
            parts_sent,
            parts_already_stored: plan.done.len() as u64,
            resumed: plan.resumed,
            instant: false,
            already_uploaded: false,
            bytes_sent,
            hash_seconds,
            seconds: started.elapsed().as_secs_f64(),
        })
    }

    /// The File an earlier run made of `key`'s file, if it still exists as that run left it
    /// (same name, size and SHA-256; declared or, once verified, computed).
    async fn still_there(&self, file_id: &str, key: &ResumeKey) -> Result<Option<File>> {
        match self.api.file(file_id).await {
            Ok(file)
                if file.name == key.name
                    && file.size == key.size
                    && file.sha256.as_deref() == Some(key.sha256.as_str()) =>
            {
                Ok(Some(file))
            }
            Ok(_) => Ok(None),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Records that `key`'s file is now `file`, so a re-run skips it.
    fn remember(&self, key: &ResumeKey, upload_id: Option<String>, file: &File) {
        let state = ResumeState::completed(key, upload_id, &file.file_id);
        if let Err(e) = self.store.save(key, &state) {
            self.out.note(&format!(
                "note: a re-run will upload {} again ({e})",
                key.path.display()
            ));
        }
    }

    /// What an earlier run left: nothing, an upload to continue, or one already completed.
    async fn resume(&self, key: &ResumeKey, size: u64) -> Result<Resume> {
        let Some(state) = self.store.load(key) else {
            return Ok(Resume::Start);
        };
        let Some(upload_id) = state.upload_id else {
            self.store.clear(key);
            return Ok(Resume::Start);
        };
        let status = match self.api.upload_status(&upload_id).await {
            Ok(status) => status,
            Err(e) if is_not_found(&e) => {
                self.out.note(&format!(
                    "note: the earlier upload of {} expired or was aborted; starting over",
                    state.name
                ));
                self.store.clear(key);
                return Ok(Resume::Start);
            }
            Err(e) => return Err(e),
        };
        if status.state == "completed"
            && let Some(file_id) = &status.file_id
        {
            let file = self.api.file(file_id).await?;
            return Ok(Resume::Finished(upload_id, file));
        }
        if status.state != "active" || status.size != size {
            self.store.clear(key);
            return Ok(Resume::Start);
        }
        Ok(Resume::Continue(Plan {
            upload_id,
            part_size: status.part_size,
            part_count: status.part_count,
            done: status.parts_done.iter().map(|p| p.part_number).collect(),
            resumed: true,
        }))
    }

    /// Sends `missing` parts, `concurrency` at a time, presigning at most
    /// [`PRESIGN_BATCH`] per call. Returns (parts sent, bytes sent).
    async fn send_parts(
        &self,
        path: &Path,
        size: u64,
        plan: &Plan,
        missing: &[u32],
        bar: &ProgressBar,
        parts_before: u64,
    ) -> Result<(u64, u64)> {
        let (mut parts, mut bytes) = (0u64, 0u64);
        for batch in missing.chunks(PRESIGN_BATCH) {
            let mut urls: HashMap<u32, PresignedPart> = self
                .api
                .presign(&plan.upload_id, batch)
                .await?
                .into_iter()
                .map(|p| (p.part_number, p))
                .collect();
            let jobs = batch.iter().map(|&n| {
                let url = urls.remove(&n);
                async move {
                    let url = url.ok_or_else(|| {
                        Error::Failed(format!("the server did not presign part {n}"))
                    })?;
                    let (offset, len) = part_range(n, plan.part_size, size);
                    let body = read_part(path, offset, len).await?;
                    self.send_part(&plan.upload_id, n, url, body).await?;
                    bar.inc(len);
                    Ok::<u64, Error>(len)
                }
            });
            let mut running = stream::iter(jobs).buffer_unordered(self.options.concurrency);
            while let Some(sent) = running.next().await {
                bytes += sent?;
                parts += 1;
                let total = parts_before + parts;
                if self.hooks.stop_after_parts == Some(total) {
                    return Err(Error::Failed(format!(
                        "interrupted after {total} parts (FILESTORE_TEST_STOP_AFTER_PARTS)"
                    )));
                }
            }
        }
        Ok((parts, bytes))
    }

    /// PUTs one part to its presigned URL with the URL's headers; retries transient
    /// failures with exponential backoff and presigns again when the URL is refused.
    async fn send_part(
        &self,
        upload_id: &str,
        part_number: u32,
        mut url: PresignedPart,
        body: Bytes,
    ) -> Result<()> {
        let (mut attempts, mut presigns) = (0u32, 0u32);
        loop {
            let method = Method::from_bytes(url.method.as_bytes()).unwrap_or(Method::PUT);
            let mut req = self
                .api
                .http()
                .request(method, &url.url)
                .timeout(part_timeout(body.len() as u64));
            for (name, value) in &url.headers {
                req = req.header(name, value);
            }
            let (outcome, why) = match req.body(body.clone()).send().await {
                Ok(resp) => {
                    let status = resp.status();
                    let _ = resp.bytes().await;
                    (
                        classify(status.as_u16()),
                        format!("storage answered {status}"),
                    )
                }
                Err(e) => (Outcome::Retry, Error::transport("storage", &e).to_string()),
            };
            match outcome {
                Outcome::Stored => return Ok(()),
                Outcome::Represign if presigns < MAX_PRESIGNS => {
                    presigns += 1;
                    url = self
                        .api
                        .presign(upload_id, &[part_number])
                        .await?
                        .pop()
                        .ok_or_else(|| {
                            Error::Failed(format!("the server did not presign part {part_number}"))
                        })?;
                }
                Outcome::Retry if attempts + 1 < MAX_ATTEMPTS => {
                    tokio::time::sleep(backoff(attempts, rand::random())).await;
                    attempts += 1;
                }
                _ => {
                    return Err(Error::Failed(format!(
                        "part {part_number} was not stored: {why}; run the same upload again to resume"
                    )));
                }
            }
        }
    }
}

enum Resume {
    Start,
    Continue(Plan),
    /// The upload (this id) was completed by an earlier run that stopped right after.
    Finished(String, File),
}

/// Unix seconds of an RFC 3339 time (the server's `expires_at`).
fn unix_seconds(rfc3339: &str) -> Option<u64> {
    let t = time::OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339)
        .ok()?;
    u64::try_from(t.unix_timestamp()).ok()
}

/// One line per uploaded file, for people.
pub fn summary(u: &Uploaded) -> String {
    if u.already_uploaded {
        return format!(
            "already uploaded {} as {:?} ({}) -> {}; nothing sent",
            u.path.display(),
            u.file.name,
            human_bytes(u.file.size),
            u.file.file_id,
        );
    }
    let how = if u.instant {
        "instant: the server already holds this content, no bytes sent".to_string()
    } else {
        human_rate(u.bytes_sent, u.seconds)
    };
    let mut line = format!(
        "uploaded {} as {:?} ({}) -> {} in {:.1} s, {how}",
        u.path.display(),
        u.file.name,
        human_bytes(u.file.size),
        u.file.file_id,
        u.seconds,
    );
    if u.resumed {
        line.push_str(&format!(
            " (resumed: {} of {} parts were already stored)",
            u.parts_already_stored, u.part_count
        ));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    #[test]
    fn part_ranges_cover_the_file_exactly() {
        let size = 12 * MIB + 3;
        let part = 5 * MIB;
        assert_eq!(part_range(1, part, size), (0, 5 * MIB));
        assert_eq!(part_range(2, part, size), (5 * MIB, 5 * MIB));
        assert_eq!(part_range(3, part, size), (10 * MIB, 2 * MIB + 3));
        let total: u64 = (1..=3).map(|n| part_range(n, part, size).1).sum();
        assert_eq!(total, size);
    }

    #[test]
    fn an_empty_file_is_one_empty_part_and_exact_multiples_end_full() {
        assert_eq!(part_range(1, 8 * MIB, 0), (0, 0));
        assert_eq!(part_range(2, 5 * MIB, 10 * MIB), (5 * MIB, 5 * MIB));
        assert_eq!(part_range(3, 5 * MIB, 10 * MIB), (10 * MIB, 0));
    }

    #[test]
    fn missing_parts_are_those_s3_does_not_hold() {
        let done: BTreeSet<u32> = [1, 3].into_iter().collect();
        assert_eq!(missing_parts(4, &done), [2, 4]);
        assert_eq!(missing_parts(2, &BTreeSet::new()), [1, 2]);
        assert!(missing_parts(2, &[1, 2].into_iter().collect()).is_empty());
    }

    #[test]
    fn presign_batches_stay_within_the_contract() {
        let missing = missing_parts(2500, &BTreeSet::new());
        let sizes: Vec<usize> = missing.chunks(PRESIGN_BATCH).map(<[u32]>::len).collect();
        assert_eq!(sizes, [1000, 1000, 500]);
    }

    #[test]
    fn backoff_steps_double_then_cap() {
        let steps: Vec<u64> = (0..8).map(|a| backoff_step(a).as_millis() as u64).collect();
        assert_eq!(steps, [250, 500, 1000, 2000, 4000, 8000, 8000, 8000]);
    }

    /// Each wait lies in [step / 2, step]: the ends are reached, random draws stay inside,
    /// and they do spread (not one value for everyone).
    #[test]
    fn jittered_backoff_stays_within_half_a_step_and_the_step() {
        for attempt in 0..10 {
            let step = backoff_step(attempt);
            assert_eq!(backoff(attempt, 0.0), step / 2);
            assert_eq!(backoff(attempt, 1.0), step);
            assert_eq!(backoff(attempt, -3.0), step / 2, "out of range is clamped");
            assert_eq!(backoff(attempt, 7.0), step);
            let draws: BTreeSet<Duration> = (0..200)
                .map(|_| backoff(attempt, rand::random()))
                .inspect(|&wait| assert!(step / 2 <= wait && wait <= step, "{wait:?}"))
                .collect();
            assert!(draws.len() > 100, "{} distinct waits", draws.len());
        }
    }

    #[test]
    fn server_times_become_unix_seconds() {
        assert_eq!(unix_seconds("2026-11-26T00:00:00Z"), Some(1_795_651_200));
        assert_eq!(
            unix_seconds("2026-11-26T01:00:00+01:00"),
            Some(1_795_651_200)
        );
        assert_eq!(unix_seconds("tomorrow"), None);
    }

    #[test]
    fn storage_answers_are_classified() {
        assert_eq!(classify(200), Outcome::Stored);
        assert_eq!(classify(403), Outcome::Represign);
        assert_eq!(classify(503), Outcome::Retry);
        assert_eq!(classify(500), Outcome::Retry);
        assert_eq!(classify(429), Outcome::Retry);
        assert_eq!(classify(400), Outcome::Fatal);
        assert_eq!(classify(404), Outcome::Fatal);
    }

    #[test]
    fn part_timeouts_allow_slow_links() {
        assert_eq!(part_timeout(MIB), Duration::from_secs(60));
        assert_eq!(part_timeout(64 * MIB), Duration::from_secs(1024));
    }

    /// The proof a server would compute from the same bytes held in memory.
    fn expected_proof(nonce: &[u8], data: &[u8], ranges: &[ByteRange]) -> String {
        let mut hasher = Sha256::new();
        hasher.update(nonce);
        for r in ranges {
            hasher.update(&data[r.offset as usize..(r.offset + r.length) as usize]);
        }
        hex::encode(hasher.finalize())
    }

    #[test]
    fn proof_hashes_the_nonce_bytes_then_each_range_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data.bin");
        let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 + i / 251) as u8).collect();
        std::fs::write(&path, &data).unwrap();
        let nonce = [0xde, 0xad, 0xbe, 0xef, 0x00, 0x01, 0x02, 0x03];
        let nonce_hex = hex::encode(nonce);
        // Out of file order, one longer than the read buffer, one ending at the last byte.
        let ranges = [
            ByteRange {
                offset: 200_000,
                length: 8192,
            },
            ByteRange {
                offset: 1,
                length: 100_000,
            },
            ByteRange {
                offset: 300_000 - 8192,
                length: 8192,
            },
            ByteRange {
                offset: 5,
                length: 0,
            },
        ];
        let proof = proof_of_possession(&path, &nonce_hex, &ranges).unwrap();
        assert_eq!(proof, expected_proof(&nonce, &data, &ranges));
        assert_eq!(proof.len(), 64);
        assert_eq!(proof, proof.to_lowercase());

        let swapped = [ranges[1], ranges[0], ranges[2]];
        assert_ne!(
            proof_of_possession(&path, &nonce_hex, &swapped).unwrap(),
            proof,
            "order matters"
        );
        assert_ne!(
            proof_of_possession(&path, "00", &ranges).unwrap(),
            proof,
            "the nonce matters"
        );
    }

    #[test]
    fn a_small_file_is_proved_whole_and_an_empty_one_by_the_nonce_alone() {
        let dir = tempfile::tempdir().unwrap();
        let small = dir.path().join("small.txt");
        std::fs::write(&small, b"hello world").unwrap();
        let whole = [ByteRange {
            offset: 0,
            length: 11,
        }];
        assert_eq!(
            proof_of_possession(&small, "0a0b", &whole).unwrap(),
            expected_proof(&[0x0a, 0x0b], b"hello world", &whole)
        );
        let empty = dir.path().join("empty");
        std::fs::write(&empty, b"").unwrap();
        let none = [ByteRange {
            offset: 0,
            length: 0,
        }];
        assert_eq!(
            proof_of_possession(&empty, "0a0b", &none).unwrap(),
            expected_proof(&[0x0a, 0x0b], b"", &none)
        );
    }

    #[test]
    fn a_proof_fails_on_a_bad_nonce_or_a_range_past_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("short.bin");
        std::fs::write(&path, [1u8; 100]).unwrap();
        let ranges = [ByteRange {
            offset: 90,
            length: 20,
        }];
        assert!(matches!(
            proof_of_possession(&path, "00", &ranges),
            Err(Error::Io { .. })
        ));
        let ok = [ByteRange {
            offset: 0,
            length: 10,
        }];
        assert!(matches!(
            proof_of_possession(&path, "not hex", &ok),
            Err(Error::Failed(_))
        ));
    }

    #[test]
    fn directories_are_walked_in_order_and_named_by_relative_path() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("photos");
        std::fs::create_dir_all(root.join("2024/june")).unwrap();
        std::fs::write(root.join("b.jpg"), b"b").unwrap();
        std::fs::write(root.join("a.jpg"), b"a").unwrap();
        std::fs::write(root.join("2024/june/c.jpg"), b"c").unwrap();
        std::fs::create_dir_all(root.join("empty")).unwrap();
        let single = dir.path().join("single.txt");
        std::fs::write(&single, b"s").unwrap();

        let files = plan_files(&[root.clone(), single.clone()], None).unwrap();
        let names: Vec<&str> = files.iter().map(|(_, n)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "photos__2024__june__c.jpg",
                "photos__a.jpg",
                "photos__b.jpg",
                "single.txt"
            ]
        );
        assert_eq!(files[0].0, root.join("2024/june/c.jpg"));

        let renamed = plan_files(std::slice::from_ref(&single), Some("other.txt")).unwrap();
        assert_eq!(renamed, [(single, "other.txt".to_string())]);
        assert!(matches!(
            plan_files(std::slice::from_ref(&root), Some("x")),
            Err(Error::Usage(_))
        ));
        assert!(matches!(
            plan_files(&[root.join("empty")], None),
            Err(Error::Usage(_))
        ));
        assert!(matches!(
            plan_files(&[dir.path().join("missing")], None),
            Err(Error::Io { .. })
        ));
    }
}

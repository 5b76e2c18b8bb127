//! `filestore upload`: each file read once, part by part in order, into a pool of part
//! buffers (one per part in flight, reused, so memory is `concurrency` x part size); each
//! part is PUT from its buffer and hashed in order on a thread of its own, so the SHA-256 of
//! the whole file comes out of the same read without holding up a send.
//!
//! # When the hash is known before sending
//! Instant upload (`POST /v1/fast-upload`) and skipping a file already there need the
//! SHA-256 before any byte is sent, and the contract takes a hash only at create (declared,
//! shown but not trusted; complete takes `{}`). Hashing first costs a whole extra read
//! (0.33 s of a 2.65 s 512 MiB upload), which pays off only when it may save more, so the
//! hash is known first only:
//! - when an earlier run read this file (same path, size, modification time): its hash is
//!   remembered ([`HashCache`]), no read needed;
//! - for files up to 16 MiB (`FIRST_PASS_MAX`): a first pass takes ~10 ms, less than the
//!   round trips it may save;
//! - when the folder holds a file of that name and size with a hash: the read may show the
//!   file is already uploaded;
//! - with `--hash-first`: for a large file the store likely holds already (another user's
//!   copy of a shared image), one local read against sending it all.
//!
//! The upload then declares it and the parts read must hash to it. Otherwise the upload
//! declares none: the File's `sha256` is null until the server has read the stored bytes,
//! then it is their computed hash, so it is never a wrong one. Either way the hash read from
//! the parts is remembered, so the next upload of the same file tries instant upload.
//!
//! A file that changes while it uploads is caught before complete: its size or
//! modification time differ from when it began, or its parts do not hash to the declared
//! SHA-256. The upload is then aborted (nothing stored) and the run fails in one line.
//!
//! Folders: a directory becomes a folder of the same name in the destination (`--to`, the
//! root by default), its tree recreated with `mkdir -p` semantics (a folder already there is
//! used, also when another client creates it at the same moment). Each folder that existed
//! before the run is listed once (all pages): a file there of the same name, size and SHA-256
//! (the server's) is already uploaded and is skipped, and the subfolders it names are used
//! without asking again, so a re-run of a tree of F folders that are all there costs F + 2
//! requests (the top folder's create, answered `409`, and its lookup) and no upload.
//!
//! Resume: the upload id is kept in a [`ResumeStore`] under a [`ResumeKey`] (server, user,
//! path, size, mtime, folder, name). A re-run asks the server which parts S3 already holds
//! (`parts_done`) and sends only the others, reading those S3 holds only to hash them; S3 is
//! the truth, the local state only remembers the id. Once the upload completes, the state
//! records the File instead, so re-running a command that stopped at its k-th file skips the
//! files before it while their Files still exist on the server unchanged (same name and
//! size; the SHA-256 read, or none yet).
//!
//! # Layout
//! - this module: the command, one file after another.
//! - `files`: which local files and directories, under which names.
//! - `hash`: the SHA-256 of a whole file (streamed, first pass, remembered), and the
//!   snapshot that tells a file changed.
//! - `instant`: instant upload by proof of possession.
//! - `resume`: what an earlier run left, and recording what this one did.
//! - `parts`: reading the parts once into pooled buffers, sending them in parallel, with
//!   retries.

mod files;
mod hash;
mod instant;
mod parts;
mod resume;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use filestore_contract::api::{CreateUploadRequest, Entry, FastUploadRequest, FileView};
use filestore_contract::domain::{
    FileName, FolderId, ObjectSize, OnConflict, PartPlan, PartSize, Sha256Hex,
};
use serde::Serialize;

pub use self::files::{LocalFile, UploadPlan, plan_files};
use self::hash::{FIRST_PASS_MAX, Snapshot, hash_file};
pub use self::hash::{HashCache, sha256_file};
use self::instant::try_instant_upload;
pub use self::parts::backoff;
use self::parts::changed;
use self::resume::{Plan, Resume, missing_parts, unix_seconds};
use crate::api::{Api, File};
use crate::config::{ResumeKey, ResumeState, ResumeStore, TestHooks, unix_now};
use crate::error::{Error, Result};
use crate::output::{Output, human_bytes, human_rate};
use crate::remote;

/// How to send (what to send is [`plan_files`]'s answer).
#[derive(Clone, Debug)]
pub struct UploadOptions {
    /// Parts in flight at once.
    pub concurrency: usize,
    /// Part size to ask the server for; `None` lets it choose.
    pub part_size: Option<PartSize>,
    /// What the server does with a name already taken (`None`: its default, rename).
    pub on_conflict: Option<OnConflict>,
    /// Hash each file first whatever its size, so instant upload is always tried.
    pub hash_first: bool,
}

/// The folder an upload goes into: its id and its path.
#[derive(Clone, Debug)]
pub struct Destination {
    pub folder_id: FolderId,
    pub path: String,
}

/// Who is uploading, where, and with what.
pub struct Uploader<'a> {
    pub api: &'a Api,
    pub server: &'a str,
    pub username: &'a str,
    pub store: ResumeStore,
    /// Hashes of files uploaded before, by path, size and modification time.
    pub hashes: HashCache,
    /// Where the test hooks leave their markers.
    pub config_dir: &'a Path,
    pub out: &'a Output,
    pub hooks: TestHooks,
    pub options: UploadOptions,
    pub destination: Destination,
    /// Set once the server refused an instant upload with `429`: the rest of the run sends
    /// the bytes without asking.
    pub instant_refused: AtomicBool,
}

/// The result of uploading one file.
#[derive(Debug, Serialize)]
pub struct Uploaded {
    pub path: PathBuf,
    /// Where it is on the server (under the name the server gave it).
    pub remote_path: String,
    pub file: File,
    /// The file's SHA-256: read from its parts as they were sent, or before (a first pass,
    /// or remembered from an earlier run of the same file).
    pub sha256: Option<Sha256Hex>,
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
    /// Time spent hashing the file before sending it (part of `seconds`; 0 when its hash
    /// was only read from its parts as they streamed).
    pub hash_seconds: f64,
    pub seconds: f64,
}

impl Uploader<'_> {
    /// Makes the plan's folders, then uploads every file in order; stops at the first
    /// failure (a re-run resumes it).
    ///
    /// Returns the files uploaded, and the failure that stopped the others, if any.
    pub async fn upload_all(&self, plan: &UploadPlan) -> (Vec<Uploaded>, Result<()>) {
        self.store.prune(unix_now());
        self.hashes.prune(unix_now());
        let mut done = Vec::with_capacity(plan.files.len());
        let mut folders = Folders::new(&self.destination);
        for folder in &plan.folders {
            if let Err(e) = folders.ensure(self.api, folder).await {
                return (done, Err(e));
            }
        }
        let mut parts_sent = 0;
        for file in &plan.files {
            let uploaded = match folders.ensure(self.api, &file.folder).await {
                Ok(place) => {
                    let there = place.files.get(file.name.as_str()).cloned();
                    let to = Destination {
                        folder_id: place.folder_id.clone(),
                        path: place.path.clone(),
                    };
                    self.upload(file, &to, there.as_ref(), parts_sent)
                        .await
                        .map(|mut up| {
                            up.remote_path = remote::join(&to.path, &up.file.name);
                            up
                        })
                }
                Err(e) => Err(e),
            };
            match uploaded {
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

    /// Uploads one file into `to`, resuming an earlier run of the same upload, or skipping
    /// it when the folder holds a file of that name with the same bytes (`there`) or an
    /// earlier run completed it and its File is still there. `parts_before`: parts this
    /// command sent for earlier files.
    async fn upload(
        &self,
        local: &LocalFile,
        to: &Destination,
        there: Option<&FileView>,
        parts_before: u64,
    ) -> Result<Uploaded> {
        let (path, name) = (local.path.as_path(), &local.name);
        let remote_path = remote::join(&to.path, name.as_str());
        let started = Instant::now();
        let snapshot = Snapshot::of(path)?;
        let object_size = ObjectSize::parse(snapshot.size)
            .map_err(|e| Error::Usage(format!("{} cannot be uploaded: {e}", path.display())))?;
        let size = snapshot.size;

        // A file of this name and size already there, with a hash: ours may show it is ours.
        let same_there = there.filter(|f| f.size == size && f.sha256.is_some());
        let mut known = self.hashes.get(&snapshot);
        let mut hash_seconds = 0.0;
        let first_pass = self.options.hash_first || size <= FIRST_PASS_MAX || same_there.is_some();
        if known.is_none() && first_pass {
            let bar = self.out.bar(size, &format!("hashing {name}"));
            let sha256 = hash_file(path, bar.clone()).await;
            bar.finish_and_clear();
            let sha256 = sha256?;
            self.hashes.put(&snapshot, &sha256);
            known = Some(sha256);
            hash_seconds = started.elapsed().as_secs_f64();
        }
        let nothing_sent = |file, instant, sha256| Uploaded {
            path: path.to_path_buf(),
            remote_path: remote_path.clone(),
            file,
            sha256,
            part_count: 0,
            parts_sent: 0,
            parts_already_stored: 0,
            resumed: false,
            instant,
            already_uploaded: !instant,
            bytes_sent: 0,
            hash_seconds,
            seconds: started.elapsed().as_secs_f64(),
        };

        let key = ResumeKey {
            server: self.server.to_string(),
            username: self.username.to_string(),
            path: snapshot.path.clone(),
            size,
            mtime_ns: snapshot.mtime_ns,
            folder_id: to.folder_id.to_string(),
            name: name.to_string(),
        };
        if let (Some(file), Some(sha256)) = (same_there, &known)
            && file.sha256.as_deref() == Some(sha256.as_str())
        {
            self.remember(&key, None, Some(sha256), file.file_id.as_str(), &file.name);
            return Ok(nothing_sent(
                File::from(file.clone()),
                false,
                Some(sha256.clone()),
            ));
        }
        let mut earlier = self.store.load(&key);
        if let Some((file_id, name, sha256)) = earlier
            .as_ref()
            .and_then(|s| Some((s.file_id.clone()?, s.name.clone(), s.sha256.clone())))
        {
            if let Some(file) = self
                .still_there(&file_id, &name, sha256.as_deref(), &key)
                .await?
            {
                let sha256 = sha256.and_then(|s| Sha256Hex::parse(&s).ok());
                return Ok(nothing_sent(file, false, sha256));
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
        if earlier.is_none()
            && let Some(sha256) = &known
        {
            let request = FastUploadRequest {
                name: name.clone(),
                size: object_size,
                sha256: sha256.clone(),
                parent_id: Some(to.folder_id.clone()),
                on_conflict: self.options.on_conflict,
            };
            let instant =
                try_instant_upload(self.api, self.out, &self.instant_refused, path, &request)
                    .await?;
            if let Some(file) = instant {
                self.remember(&key, None, Some(sha256), file.file_id.as_str(), &file.name);
                return Ok(nothing_sent(file, true, Some(sha256.clone())));
            }
        }

        let plan = match self.resume(&key).await? {
            Resume::Continue(plan) => plan,
            Resume::Finished(upload_id, file) => {
                let sha256 = known.or_else(|| Sha256Hex::parse(file.sha256.as_deref()?).ok());
                self.remember(
                    &key,
                    Some(upload_id),
                    sha256.as_ref(),
                    file.file_id.as_str(),
                    &file.name,
                );
                return Ok(Uploaded {
                    resumed: true,
                    already_uploaded: false,
                    ..nothing_sent(*file, false, sha256)
                });
            }
            Resume::Start => {
                self.create(&key, name, to, object_size, known.as_ref())
                    .await?
            }
        };

        let missing = missing_parts(plan.parts.part_count, &plan.done);
        let already: u64 = plan.done.iter().map(|&n| plan.parts.range(size, n).1).sum();
        let bar = self.out.bar(size, name.as_str());
        bar.set_position(already);
        bar.reset_eta();
        let sent = self
            .send_parts(path, size, &plan, &missing, &bar, parts_before)
            .await;
        bar.finish_and_clear();
        let sent = sent?;

        // What was sent is the file as it was when the upload began, and what was declared.
        let why = match Snapshot::of(path) {
            Ok(now) if now == snapshot => [&plan.declared, &known]
                .into_iter()
                .flatten()
                .any(|declared| *declared != sent.sha256)
                .then_some("its bytes no longer hash to the SHA-256 read before"),
            Ok(_) => Some("its size or modification time differs"),
            Err(_) => Some("it can no longer be read"),
        };
        if let Some(why) = why {
            let _ = self.api.abort_upload(&plan.upload_id).await;
            self.store.clear(&key);
            self.hashes.forget(&snapshot);
            return Err(changed(path, why));
        }
        let file = self.api.complete(&plan.upload_id).await?;
        self.hashes.put(&snapshot, &sent.sha256);
        self.remember(
            &key,
            Some(plan.upload_id),
            Some(&sent.sha256),
            file.file_id.as_str(),
            &file.name,
        );
        Ok(Uploaded {
            path: path.to_path_buf(),
            remote_path,
            file,
            sha256: Some(sent.sha256),
            part_count: plan.parts.part_count,
            parts_sent: sent.parts,
            parts_already_stored: plan.done.len() as u64,
            resumed: plan.resumed,
            instant: false,
            already_uploaded: false,
            bytes_sent: sent.bytes,
            hash_seconds,
            seconds: started.elapsed().as_secs_f64(),
        })
    }

    /// Creates the upload of `key`'s file, declaring its SHA-256 when known, and records it
    /// so that a re-run resumes it.
    async fn create(
        &self,
        key: &ResumeKey,
        name: &FileName,
        to: &Destination,
        size: ObjectSize,
        sha256: Option<&Sha256Hex>,
    ) -> Result<Plan> {
        let created = self
            .api
            .create_upload(&CreateUploadRequest {
                name: name.clone(),
                size,
                sha256: sha256.cloned(),
                content_type: None,
                part_size: self.options.part_size,
                checksum_algorithm: None,
                parent_id: Some(to.folder_id.clone()),
                on_conflict: self.options.on_conflict,
            })
            .await?;
        let state = ResumeState {
            upload_id: Some(created.upload_id.to_string()),
            path: key.path.clone(),
            name: key.name.clone(),
            size: key.size,
            sha256: sha256.map(ToString::to_string),
            part_size: created.part_size,
            part_count: created.part_count,
            created_at: unix_now(),
            expires_at: unix_seconds(&created.expires_at),
            file_id: None,
            completed_at: None,
        };
        if let Err(e) = self.store.save(key, &state) {
            self.out
                .note(&format!("note: this upload cannot resume if stopped ({e})"));
        }
        Ok(Plan {
            upload_id: created.upload_id.into(),
            parts: PartPlan {
                part_size: created.part_size,
                part_count: created.part_count,
            },
            done: BTreeSet::new(),
            resumed: false,
            declared: sha256.cloned(),
        })
    }
}

/// One line per uploaded file, for people.
pub fn summary(u: &Uploaded) -> String {
    if u.already_uploaded {
        return format!(
            "already uploaded {} as {} ({}) -> {}; nothing sent",
            u.path.display(),
            u.remote_path,
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
        "uploaded {} as {} ({}) -> {} in {:.1} s, {how}",
        u.path.display(),
        u.remote_path,
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

/// A folder of the upload, made or found, and what it held before this run (nothing for a
/// folder this run made).
struct Place {
    folder_id: FolderId,
    path: String,
    files: BTreeMap<String, FileView>,
    /// The folders it held, so a re-run finds its subfolders without asking again.
    folders: BTreeMap<String, FolderId>,
}

/// The upload's folders by their names below the destination, made or found once each.
struct Folders {
    /// Keyed by the names below the destination joined with `/` (`""` is the destination).
    known: HashMap<String, Place>,
    /// Folders made or found whose listing has not been read yet (those that existed).
    unread: HashSet<String>,
}

fn key(names: &[FileName]) -> String {
    names
        .iter()
        .map(FileName::as_str)
        .collect::<Vec<_>>()
        .join("/")
}

impl Folders {
    fn new(destination: &Destination) -> Self {
        let top = Place {
            folder_id: destination.folder_id.clone(),
            path: destination.path.clone(),
            files: BTreeMap::new(),
            folders: BTreeMap::new(),
        };
        Self {
            known: HashMap::from([(String::new(), top)]),
            unread: HashSet::from([String::new()]),
        }
    }

    /// The folder at `names` below the destination, made if missing (with its parents),
    /// with its listing read if it existed before.
    async fn ensure(&mut self, api: &Api, names: &[FileName]) -> Result<&Place> {
        let here = key(names);
        if !self.known.contains_key(&here) {
            let (parent_names, name) = names.split_at(names.len() - 1);
            let parent_key = key(parent_names);
            if !self.known.contains_key(&parent_key) {
                Box::pin(self.ensure(api, parent_names)).await?;
            }
            let parent = &self.known[&parent_key];
            // A listing already read names the subfolder: no create, no lookup.
            let listed = if self.unread.contains(&parent_key) {
                None
            } else {
                parent.folders.get(name[0].as_str()).cloned()
            };
            let (folder_id, made) = match listed {
                Some(id) => (id, false),
                None => {
                    let (folder, made) =
                        remote::ensure_child(api, &parent.folder_id, &parent.path, &name[0])
                            .await?;
                    (folder.folder_id, made)
                }
            };
            let path = remote::join(&parent.path, name[0].as_str());
            self.known.insert(
                here.clone(),
                Place {
                    folder_id,
                    path,
                    files: BTreeMap::new(),
                    folders: BTreeMap::new(),
                },
            );
            if !made {
                self.unread.insert(here.clone());
            }
        }
        if self.unread.remove(&here) {
            let place = self.known.get_mut(&here).expect("known above");
            for entry in api.children(place.folder_id.as_str()).await? {
                match entry {
                    Entry::File(file) => {
                        place.files.insert(file.name.clone(), file);
                    }
                    Entry::Folder(folder) => {
                        place.folders.insert(folder.name, folder.folder_id);
                    }
                }
            }
        }
        Ok(&self.known[&here])
    }
}

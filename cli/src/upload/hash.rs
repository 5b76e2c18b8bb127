//! The SHA-256 of a whole file: computed in order from the parts as they stream (on its own
//! thread, so it never holds up a send), in a first pass where knowing it before sending can
//! pay off, or remembered from an earlier run of the same file (path, size, modification
//! time), and what a file looked like when its upload began ([`Snapshot`]), so that a change
//! while it uploads is caught.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::time::UNIX_EPOCH;

use bytes::Bytes;
use filestore_contract::domain::Sha256Hex;
use indicatif::ProgressBar;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::{KEEP_SECS, unix_now, write_private};
use crate::error::{Error, Result};

/// Read buffer for a first pass.
const HASH_BUFFER: usize = 1 << 20;

/// Files up to this size are hashed before anything is sent (when no earlier run left
/// their hash): it takes ~10 ms, less than the round trip it may save (an instant upload,
/// or skipping a file already there), and lets the upload declare its hash at create.
pub(super) const FIRST_PASS_MAX: u64 = 16 << 20;

/// SHA-256 of a file, read once in 1 MiB blocks; `progress` gets each block's length.
///
/// # Errors
/// The file cannot be read.
pub fn sha256_file(path: &Path, mut progress: impl FnMut(u64)) -> Result<Sha256Hex> {
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
    Ok(hex_digest(hasher))
}

/// A finished SHA-256 as the contract writes it.
pub fn hex_digest(hasher: Sha256) -> Sha256Hex {
    Sha256Hex::parse(&hex::encode(hasher.finalize())).expect("a digest is 64 hex digits")
}

/// [`sha256_file`] off the async runtime, advancing `bar`.
pub(super) async fn hash_file(path: &Path, bar: ProgressBar) -> Result<Sha256Hex> {
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || sha256_file(&path, |n| bar.inc(n)))
        .await
        .map_err(|e| Error::Failed(format!("hashing stopped: {e}")))?
}

/// The SHA-256 of bytes fed in order, computed on a blocking thread of its own. Feeding
/// hands over a reference to the part's buffer, not a copy.
pub(super) struct StreamHasher {
    feed: SyncSender<Bytes>,
    done: tokio::task::JoinHandle<Sha256Hex>,
}

impl StreamHasher {
    /// Starts the thread; at most `depth` parts wait for it.
    pub fn start(depth: usize) -> Self {
        let (feed, parts): (_, Receiver<Bytes>) = sync_channel(depth.max(1));
        let done = tokio::task::spawn_blocking(move || {
            let mut hasher = Sha256::new();
            for part in parts {
                hasher.update(&part);
            }
            hex_digest(hasher)
        });
        Self { feed, done }
    }

    /// A handle to feed the next bytes with, from another thread.
    pub fn feeder(&self) -> SyncSender<Bytes> {
        self.feed.clone()
    }

    /// The SHA-256 of everything fed, once every feeder is dropped.
    ///
    /// # Errors
    /// The hashing thread stopped.
    pub async fn finish(self) -> Result<Sha256Hex> {
        drop(self.feed);
        self.done
            .await
            .map_err(|e| Error::Failed(format!("hashing stopped: {e}")))
    }
}

/// What a local file was when its upload began: its canonical path, size and modification
/// time. The same snapshot later means the same bytes (the assumption `make` and `rsync`
/// make), so it keys the remembered hash and the resume state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Snapshot {
    pub path: PathBuf,
    pub size: u64,
    pub mtime_ns: u128,
}

impl Snapshot {
    /// # Errors
    /// The file cannot be read.
    pub fn of(path: &Path) -> Result<Self> {
        let context = || format!("reading {}", path.display());
        let meta = std::fs::metadata(path).map_err(|e| Error::io(context(), e))?;
        Ok(Self {
            path: std::fs::canonicalize(path).map_err(|e| Error::io(context(), e))?,
            size: meta.len(),
            mtime_ns: meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos()),
        })
    }

    fn id(&self) -> String {
        let mut h = Sha256::new();
        for field in [
            self.path.as_os_str().as_encoded_bytes(),
            self.size.to_string().as_bytes(),
            self.mtime_ns.to_string().as_bytes(),
        ] {
            h.update((field.len() as u64).to_be_bytes());
            h.update(field);
        }
        hex::encode(h.finalize())
    }
}

/// Hashes computed by earlier runs, one small file per [`Snapshot`] under `hashes/`, so a
/// file uploaded again (under another name, into another folder, after its File was
/// deleted) is known before a byte of it is read: instant upload can be tried, and the
/// upload declares it. Entries are dropped a week after they were written.
pub struct HashCache {
    dir: PathBuf,
}

#[derive(Serialize, Deserialize)]
struct Remembered {
    sha256: String,
    at: u64,
}

impl HashCache {
    pub fn new(config_dir: &Path) -> Self {
        Self {
            dir: config_dir.join("hashes"),
        }
    }

    fn path(&self, file: &Snapshot) -> PathBuf {
        self.dir.join(format!("{}.json", file.id()))
    }

    pub(super) fn get(&self, file: &Snapshot) -> Option<Sha256Hex> {
        let bytes = std::fs::read(self.path(file)).ok()?;
        let entry: Remembered = serde_json::from_slice(&bytes).ok()?;
        Sha256Hex::parse(&entry.sha256).ok()
    }

    /// Remembers `sha256` for `file`; a failure only costs a later run a read.
    pub(super) fn put(&self, file: &Snapshot, sha256: &Sha256Hex) {
        let entry = Remembered {
            sha256: sha256.to_string(),
            at: unix_now(),
        };
        let bytes = serde_json::to_vec(&entry).expect("an entry serializes");
        let _ = write_private(&self.path(file), &bytes);
    }

    pub(super) fn forget(&self, file: &Snapshot) {
        let _ = std::fs::remove_file(self.path(file));
    }

    /// Removes entries older than a week, and any that do not parse.
    pub fn prune(&self, now: u64) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        for path in entries.flatten().map(|e| e.path()) {
            let old = std::fs::read(&path)
                .ok()
                .and_then(|b| serde_json::from_slice::<Remembered>(&b).ok())
                .is_none_or(|e| e.at.saturating_add(KEEP_SECS) <= now);
            if old && path.extension().is_some_and(|e| e == "json") {
                let _ = std::fs::remove_file(path);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn streamed_parts_hash_like_the_whole_file() {
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        let hasher = StreamHasher::start(2);
        let feed = hasher.feeder();
        let parts: Vec<Bytes> = data.chunks(1 << 20).map(Bytes::copy_from_slice).collect();
        std::thread::spawn(move || parts.into_iter().for_each(|p| feed.send(p).unwrap()));
        let streamed = hasher.finish().await.unwrap();
        assert_eq!(streamed.as_str(), hex::encode(Sha256::digest(&data)));
        assert_eq!(
            StreamHasher::start(1).finish().await.unwrap().as_str(),
            hex::encode(Sha256::digest(b"")),
            "nothing fed is the empty file's hash"
        );
    }

    #[test]
    fn hashes_are_remembered_per_path_size_and_mtime() {
        let dir = tempfile::tempdir().unwrap();
        let cache = HashCache::new(dir.path());
        let file = Snapshot {
            path: "/a/b".into(),
            size: 5,
            mtime_ns: 7,
        };
        let sha = Sha256Hex::parse(&"ab".repeat(32)).unwrap();
        assert_eq!(cache.get(&file), None);
        cache.put(&file, &sha);
        assert_eq!(cache.get(&file), Some(sha.clone()));
        for other in [
            Snapshot {
                mtime_ns: 8,
                ..file.clone()
            },
            Snapshot {
                size: 6,
                ..file.clone()
            },
            Snapshot {
                path: "/a/c".into(),
                ..file.clone()
            },
        ] {
            assert_eq!(cache.get(&other), None, "{other:?}");
        }
        cache.prune(unix_now());
        assert_eq!(cache.get(&file), Some(sha), "a fresh entry is kept");
        cache.prune(unix_now() + KEEP_SECS + 1);
        assert_eq!(cache.get(&file), None, "an old one is dropped");
        cache.put(&file, &Sha256Hex::parse(&"cd".repeat(32)).unwrap());
        cache.forget(&file);
        assert_eq!(cache.get(&file), None);
    }
}

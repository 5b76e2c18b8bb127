//! The hashes a copy computes of the bytes it reads (SHA-256, the content's identity; SHA-1;
//! and the hot object's ETag where the cold parts do not make it), on a thread of their own
//! fed whole parts through a bounded queue, so hashing runs beside the reads and writes
//! instead of on the read path, and a hash that falls behind slows the read instead of
//! growing memory.

use anyhow::{Context, anyhow};
use bytes::Bytes;
use sha1::Sha1;
use sha2::Sha256;
use sha2::digest::Digest;
use tokio::sync::mpsc;

use crate::checkpoint::{Checkpoint, restore_state};
use crate::etag::{EtagHasher, Md5Etag};

/// Parts waiting for the hashing thread; when it falls behind, reading waits.
pub const HASH_QUEUE: usize = 1;

/// What the hashing thread found.
pub(crate) struct Digests {
    pub(crate) sha256: String,
    pub(crate) sha1: String,
    pub(crate) hot_etag: Option<Md5Etag>,
}

/// The hashes of the bytes read so far.
pub(crate) struct Hashers {
    pub(crate) sha256: Sha256,
    pub(crate) sha1: Sha1,
    /// The hot object's ETag, when the cold parts' MD5s do not make it.
    pub(crate) etag: Option<EtagHasher>,
}

impl Hashers {
    pub(crate) fn new(etag: Option<EtagHasher>) -> Self {
        Self {
            sha256: Sha256::new(),
            sha1: Sha1::new(),
            etag,
        }
    }

    /// The hashes where `checkpoint` left them.
    ///
    /// # Errors
    /// A midstate the checkpoint did not get from [`Hashers`].
    pub(crate) fn restore(checkpoint: &Checkpoint) -> anyhow::Result<Self> {
        Ok(Self {
            sha256: restore_state(&checkpoint.sha256)?,
            sha1: restore_state(&checkpoint.sha1)?,
            etag: checkpoint
                .hot
                .as_ref()
                .map(EtagHasher::restore)
                .transpose()?,
        })
    }

    pub(crate) fn update(&mut self, part: &[u8]) {
        self.sha256.update(part);
        self.sha1.update(part);
        if let Some(etag) = self.etag.as_mut() {
            etag.update(part);
        }
    }

    pub(crate) fn finish(self) -> Digests {
        Digests {
            sha256: hex::encode(self.sha256.finalize()),
            sha1: hex::encode(self.sha1.finalize()),
            hot_etag: self.etag.map(EtagHasher::finish),
        }
    }
}

/// The hashing thread, fed whole parts through a bounded queue: a hash that falls behind
/// slows the read (backpressure) instead of growing memory.
pub(crate) struct Hashing {
    queue: mpsc::Sender<Bytes>,
    worker: tokio::task::JoinHandle<Hashers>,
}

impl Hashing {
    pub(crate) fn start(mut hashers: Hashers) -> Self {
        let (queue, mut parts) = mpsc::channel::<Bytes>(HASH_QUEUE);
        let worker = tokio::task::spawn_blocking(move || {
            while let Some(part) = parts.blocking_recv() {
                hashers.update(&part);
            }
            hashers
        });
        Self { queue, worker }
    }

    pub(crate) async fn feed(&self, part: Bytes) -> anyhow::Result<()> {
        self.queue
            .send(part)
            .await
            .map_err(|_| anyhow!("the hashing thread stopped"))
    }

    /// The hashes of everything fed.
    pub(crate) async fn finish(self) -> anyhow::Result<Hashers> {
        drop(self.queue);
        self.worker.await.context("the hashing thread failed")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::save_state;

    /// Hashes saved into a checkpoint at any point, packed, unpacked and resumed, end where
    /// one pass over the bytes ends; the part digests come back in order.
    #[test]
    fn hashes_resumed_from_a_checkpoint_match_one_pass() {
        let data: Vec<u8> = (0..1000u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut whole = Hashers::new(Some(EtagHasher::new(Some(64))));
        whole.update(&data);
        let whole = whole.finish();
        for split in [0, 1, 63, 64, 65, 500, 999, 1000] {
            let mut first = Hashers::new(Some(EtagHasher::new(Some(64))));
            first.update(&data[..split]);
            let checkpoint = Checkpoint {
                hot_etag: "\"abc-3\"".into(),
                upload_id: "u".into(),
                part_size: 5,
                aligned: false,
                part_md5s: vec![[1; 16], [2; 16]],
                sha256: save_state(&first.sha256),
                sha1: save_state(&first.sha1),
                hot: first.etag.as_ref().map(EtagHasher::save),
            };
            let (state, blob) = checkpoint.pack().unwrap();
            let back = Checkpoint::unpack(&state, &blob).unwrap();
            assert_eq!(back.part_md5s, checkpoint.part_md5s);
            assert_eq!(back.offset(), 10);
            assert_eq!(back.hot.as_ref().map(|h| h.digests.len()), Some(split / 64));
            let mut rest = Hashers::restore(&back).unwrap();
            rest.update(&data[split..]);
            let rest = rest.finish();
            assert_eq!(
                (rest.sha256, rest.sha1, rest.hot_etag),
                (
                    whole.sha256.clone(),
                    whole.sha1.clone(),
                    whole.hot_etag.clone()
                ),
                "split at {split}"
            );
        }
    }
}

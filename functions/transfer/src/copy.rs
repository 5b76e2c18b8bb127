//! The verified copy of one object from the hot bucket to the cold store ([`CopyJob`]).
//!
//! The object is read once and cut into parts. Each part goes to the hashing thread
//! ([`crate::hashing`]) and to the cold store's multipart upload ([`crate::cold_upload`]).
//! Memory stays bounded whatever the object's size: the part being filled,
//! [`IN_FLIGHT`](crate::cold_upload::IN_FLIGHT) parts uploading and up to
//! [`HASH_QUEUE`](crate::hashing::HASH_QUEUE) + 1 being hashed (the same bytes where these
//! overlap). Cold parts over [`STREAM_PARTS_OVER`] (only objects over 160 GiB have them) are
//! not held at all but streamed as they are read.
//!
//! Nothing is taken on trust. Before the cold copy is completed, the bytes read are checked
//! against the hot object's size and ETag (the MD5 of the stored bytes, or of its parts' MD5s
//! for a multipart upload), so a cut or corrupted read never becomes a cold object. The cold
//! parts follow the hot object's parts where those are small enough ([`MAX_ALIGNED_PART`]), so
//! one MD5 per part serves as its `Content-MD5` and to check the hot ETag; otherwise the
//! hashing thread computes the hot ETag as well. After the write, the cold object's size and
//! ETag are checked against what was sent, and a copy that fails the check is deleted.
//!
//! A copy may stop at a part boundary when its run's time is up ([`CopyJob::stop_at`]) and
//! hand back a [`Checkpoint`]. Another run continues from it with a ranged read of the rest.
//! A failure aborts a started multipart upload, except one a checkpoint still names, which a
//! later run resumes, unless the failure says the bytes are wrong ([`BadCopy`]).

use std::time::Instant;

use anyhow::{Context, bail};
use bytes::BytesMut;
use filestore_contract::domain::{ObjectSize, PartPlan, PartSize};
use filestore_shared::storage::Storage;

use crate::checkpoint::{Checkpoint, save_state};
use crate::cold_upload::{ColdUpload, StreamedPart, md5_of};
use crate::etag::{EtagHasher, Md5Etag};
use crate::hashing::{Hashers, Hashing};

/// Part size for the cold copy when it cannot follow the hot object's parts (raised for
/// objects over 160 GiB to stay within 10,000 parts).
pub const COLD_PART_SIZE: u64 = 16 * 1024 * 1024;
/// The largest hot part the cold copy follows part for part; larger ones would hold too much
/// memory per part in flight.
pub const MAX_ALIGNED_PART: u64 = 32 * 1024 * 1024;
/// Cold parts larger than this are streamed to the cold store as they are read rather than
/// held whole: only objects over 160 GiB have such parts (525 MiB at 5 TiB), and a few of
/// them in memory would pass the function's.
pub const STREAM_PARTS_OVER: u64 = 64 * 1024 * 1024;

/// How the copy cuts the object. The defaults are what the function uses; tests and the
/// benchmark choose smaller figures to reach every path with small objects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tuning {
    /// Cold part size when the hot parts are not followed (see [`COLD_PART_SIZE`]).
    pub part_size: u64,
    /// Parts larger than this are streamed (see [`STREAM_PARTS_OVER`]).
    pub stream_over: u64,
}

impl Default for Tuning {
    fn default() -> Self {
        Self {
            part_size: COLD_PART_SIZE,
            stream_over: STREAM_PARTS_OVER,
        }
    }
}

/// What the copy read and wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Copied {
    pub sha256: String,
    pub sha1: String,
    pub size: u64,
}

/// A copy whose bytes are wrong (a corrupted or cut read, a cold store that kept other bytes):
/// nothing of it may be resumed.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadCopy(pub String);

/// Is `err` a [`BadCopy`]?
pub fn is_bad_copy(err: &anyhow::Error) -> bool {
    err.downcast_ref::<BadCopy>().is_some()
}

/// How a run of a copy ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Progress {
    Done(Copied),
    /// Time ran out; the copy continues from here.
    Paused(Checkpoint),
}

/// An object in a store.
#[derive(Clone, Copy, Debug)]
pub struct Place<'a> {
    pub store: &'a Storage,
    pub key: &'a str,
}

/// One object to copy, and how this run goes about it.
#[derive(Clone, Debug)]
pub struct CopyJob<'a> {
    /// The hot object.
    pub source: Place<'a>,
    /// Where its cold copy goes.
    pub target: Place<'a>,
    /// The size its File records: the read is checked against it.
    pub size: u64,
    /// Where an earlier run stopped.
    pub resume: Option<Checkpoint>,
    /// When to stop at the next part boundary (after at least one part of progress).
    pub stop_at: Option<Instant>,
    pub tuning: Tuning,
}

impl<'a> CopyJob<'a> {
    /// A whole copy of `size` bytes, with no time limit and the default tuning.
    pub fn new(source: Place<'a>, target: Place<'a>, size: u64) -> Self {
        Self {
            source,
            target,
            size,
            resume: None,
            stop_at: None,
            tuning: Tuning::default(),
        }
    }

    /// Copies the source to the target, hashing it on the way, checking the read against
    /// the hot object and the write against the cold one; or, when time is up, stops at a
    /// part boundary and says where.
    ///
    /// # Errors
    /// Any read, write or check failure ([`BadCopy`] when the bytes are wrong). A started
    /// multipart upload is aborted unless it is the checkpoint's and the bytes are not known
    /// to be wrong (a later run resumes it); a written cold object that fails its check is
    /// deleted.
    pub async fn run(self) -> anyhow::Result<Progress> {
        let mut upload = ColdUpload::new(self.target.store, self.target.key);
        let copied = self.copy(&mut upload).await;
        if let Err(e) = &copied {
            upload.settle(e).await;
        }
        copied
    }

    async fn copy(self, upload: &mut ColdUpload<'a>) -> anyhow::Result<Progress> {
        let (hot, hot_key) = (self.source.store, self.source.key);
        let (cold, cold_key) = (self.target.store, self.target.key);
        let expected_size = self.size;
        let size = ObjectSize::parse(expected_size).map_err(anyhow::Error::msg)?;
        let planned = PartPlan::new(
            size,
            Some(PartSize::parse(self.tuning.part_size).map_err(anyhow::Error::msg)?),
        )
        .part_size;
        let mut resume = self.resume;
        if let Some(checkpoint) = &resume
            && !upload.resume(checkpoint).await?
        {
            resume = None;
        }
        let offset = resume.as_ref().map_or(0, Checkpoint::offset);
        let object = hot
            .read(hot_key, offset)
            .await
            .context("hot GetObject")?
            .with_context(|| format!("the hot object {hot_key} is gone"))?;
        let raw_etag = object.etag;
        if let Some(checkpoint) = &resume
            && checkpoint.hot_etag != raw_etag
        {
            return Err(BadCopy(format!(
                "the hot object {hot_key} changed since the checkpoint (ETag {} then, {raw_etag} now)",
                checkpoint.hot_etag
            ))
            .into());
        }
        if let Some(length) = object.length
            && length != expected_size - offset
        {
            return Err(BadCopy(format!(
                "the hot object has {length} bytes from offset {offset}, its File says {expected_size} in all"
            ))
            .into());
        }
        let hot_etag = Md5Etag::parse(&raw_etag);
        // Following the hot parts (`aligned`), the cold parts' MD5s make the hot ETag;
        // otherwise the hashing thread computes it.
        let (part_size, aligned, hashers) = match &resume {
            Some(checkpoint) => (
                checkpoint.part_size,
                checkpoint.aligned,
                Hashers::restore(checkpoint)?,
            ),
            None => {
                let (part_size, aligned, etag) = match &hot_etag {
                    None => {
                        tracing::warn!(
                            key = hot_key,
                            etag = raw_etag,
                            "the hot object's ETag is not an MD5; the read is checked by size only"
                        );
                        (planned, false, None)
                    }
                    Some(Md5Etag { parts: None, .. }) => {
                        (planned, false, Some(EtagHasher::new(None)))
                    }
                    Some(Md5Etag { parts: Some(_), .. }) => {
                        // Every part but the last has the size of part 1, which is what the
                        // multipart ETag needs.
                        let first = hot
                            .part_size(hot_key, 1)
                            .await
                            .context("hot HeadObject of part 1")?;
                        match first {
                            hot_part @ 1..=MAX_ALIGNED_PART => (hot_part, true, None),
                            hot_part => (planned, false, Some(EtagHasher::new(Some(hot_part)))),
                        }
                    }
                };
                (part_size, aligned, Hashers::new(etag))
            }
        };
        let hashing = Hashing::start(hashers);
        let part_len = part_size as usize;
        // Parts too large to hold go to the cold store as they are read, one at a time.
        let streamed = part_size > self.tuning.stream_over && expected_size > part_size;
        let mut body = object.body;
        let mut buffer = BytesMut::with_capacity(if streamed {
            0
        } else {
            part_len.min((expected_size - offset) as usize)
        });
        let mut streaming: Option<StreamedPart> = None;
        let mut total = offset;
        // Bytes handed to finished cold parts, from the start of the object, and to the
        // current one.
        let (mut through, mut filled) = (offset, 0u64);
        let mut paused = false;

        'read: while let Some(chunk) = body.next().await.context("reading the hot object")? {
            total += chunk.len() as u64;
            if total > expected_size {
                return Err(BadCopy(format!(
                    "the hot object has more than the {expected_size} bytes its File says"
                ))
                .into());
            }
            let mut rest = chunk;
            while !rest.is_empty() {
                let piece = rest.split_to(((part_size - filled) as usize).min(rest.len()));
                filled += piece.len() as u64;
                if !upload.is_open() && (streamed || filled == part_size) {
                    upload.start().await?;
                }
                if streamed {
                    // The last part is shorter.
                    let this_part = part_size.min(expected_size - through);
                    let part = match &mut streaming {
                        Some(part) => part,
                        None => streaming.insert(upload.stream(this_part)),
                    };
                    hashing.feed(piece.clone()).await?;
                    part.push(piece).await?;
                    if filled < this_part {
                        continue;
                    }
                    let part = streaming.take().expect("streaming above");
                    upload.finish_streamed(part).await?;
                } else {
                    buffer.extend_from_slice(&piece);
                    if filled < part_size {
                        continue;
                    }
                    let part = std::mem::replace(&mut buffer, BytesMut::with_capacity(part_len));
                    let part = part.freeze();
                    hashing.feed(part.clone()).await?;
                    upload.send(part).await?;
                }
                through += filled;
                filled = 0;
                if through < expected_size && self.stop_at.is_some_and(|t| Instant::now() >= t) {
                    paused = true;
                    break 'read;
                }
            }
        }
        if paused {
            upload.wait_all().await?;
            let hashers = hashing.finish().await?;
            // The checkpoint holds the upload now: it must outlive this run.
            let (upload_id, part_md5s) = upload.hand_over();
            return Ok(Progress::Paused(Checkpoint {
                hot_etag: raw_etag,
                upload_id,
                part_size,
                aligned,
                part_md5s,
                sha256: save_state(&hashers.sha256),
                sha1: save_state(&hashers.sha1),
                hot: hashers.etag.as_ref().map(EtagHasher::save),
            }));
        }
        if total != expected_size {
            bail!("the hot object ended after {total} of its {expected_size} bytes");
        }
        let last = buffer.freeze();
        if !last.is_empty() {
            hashing.feed(last.clone()).await?;
        }
        let digests = hashing.finish().await?.finish();
        if let Some(stored) = &hot_etag
            && !aligned
            && digests.hot_etag.as_ref() != Some(stored)
        {
            return Err(corrupted_read(hot_key, stored, digests.hot_etag.as_ref()).into());
        }

        let sent = if upload.is_open() {
            if !last.is_empty() {
                upload.send(last).await?;
            }
            upload
                .complete(hot_etag.as_ref().filter(|_| aligned))
                .await?
        } else {
            let md5 = md5_of(last.clone()).await?;
            if let Some(stored) = hot_etag.as_ref().filter(|_| aligned)
                && Md5Etag::multipart(&[md5]) != *stored
            {
                return Err(corrupted_read(hot_key, stored, None).into());
            }
            cold.put_object(cold_key, last, Some(&md5))
                .await
                .context("cold PutObject")?;
            Md5Etag::single(&md5)
        };
        if let Err(e) = check_cold(cold, cold_key, total, &sent).await {
            if let Err(d) = cold.delete_object(cold_key).await {
                tracing::warn!(
                    key = cold_key,
                    error = format!("{d:#}"),
                    "a cold copy that failed its check is left behind"
                );
            }
            return Err(e);
        }
        Ok(Progress::Done(Copied {
            sha256: digests.sha256,
            sha1: digests.sha1,
            size: total,
        }))
    }
}

/// The bytes read for `key` do not make the hot object's ETag `stored`.
pub(crate) fn corrupted_read(key: &str, stored: &Md5Etag, read: Option<&Md5Etag>) -> BadCopy {
    BadCopy(format!(
        "the bytes read for {key} do not match the hot object's ETag {stored} (they make {}): a corrupted read",
        read.map_or_else(|| "nothing".to_string(), Md5Etag::to_string)
    ))
}

/// Checks that the cold store holds what was sent: the size always, the ETag where the store
/// gives one of the MD5 form.
async fn check_cold(cold: &Storage, key: &str, size: u64, sent: &Md5Etag) -> anyhow::Result<()> {
    let head = cold
        .head(key)
        .await?
        .with_context(|| format!("the cold store has no {key} right after writing it"))?;
    if head.size != size {
        return Err(BadCopy(format!(
            "the cold store holds {} bytes for {key}, {size} were sent",
            head.size
        ))
        .into());
    }
    match head.etag.as_deref().and_then(Md5Etag::parse) {
        Some(etag) if etag != *sent => Err(BadCopy(format!(
            "the cold store's ETag for {key} is {etag}, the bytes sent make {sent}"
        )))?,
        Some(_) => {}
        None => tracing::debug!(
            key,
            "the cold store's ETag is not an MD5; size checked only"
        ),
    }
    Ok(())
}

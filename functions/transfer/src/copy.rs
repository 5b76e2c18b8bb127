//! The streaming copy from the hot bucket to the cold store.
//!
//! The object is read once and cut into parts. Each part goes through a bounded queue to a
//! hashing thread (SHA-256 and SHA-1), and to the cold store as a multipart upload with at
//! most [`IN_FLIGHT`] part uploads at a time, each with a `Content-MD5` computed off the
//! runtime's threads. Hashing runs beside the reads and writes instead of on the read path,
//! and memory stays bounded whatever the object's size: the part being filled, [`IN_FLIGHT`]
//! parts uploading and up to [`HASH_QUEUE`] + 1 being hashed (the same bytes where these
//! overlap).
//!
//! Cold parts over [`STREAM_PARTS_OVER`] (only objects over 160 GiB have them) are not held
//! at all: each is an `UploadPart` whose body is fed the bytes as they are read, one part at a
//! time, its MD5 checked against the ETag the store returns.
//!
//! Nothing is taken on trust. Before the cold copy is completed, the bytes read are checked
//! against the hot object's size and ETag (the MD5 of the stored bytes, or of its parts' MD5s
//! for a multipart upload), so a cut or corrupted read never becomes a cold object. The cold
//! parts follow the hot object's parts where those are small enough ([`MAX_ALIGNED_PART`]), so
//! one MD5 per part serves as its `Content-MD5` and to check the hot ETag; otherwise the
//! hashing thread computes the hot ETag as well. After the write, the cold object's size and
//! ETag are checked against what was sent, and a copy that fails the check is deleted.
//!
//! A copy may stop at a part boundary when its run's time is up ([`Run::stop_at`]) and hand
//! back a [`Checkpoint`]: the cold multipart upload, the parts' MD5s and the hashes' midstates.
//! Another run continues from it with a ranged read of the rest. A failure aborts a started
//! multipart upload, except one a checkpoint still names, which a later run resumes, unless
//! the failure says the bytes are wrong ([`BadCopy`]).

use std::fmt;
use std::time::Instant;

use anyhow::{Context, anyhow, bail};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use base64::Engine;
use bytes::{Bytes, BytesMut};
use filestore_contract::domain::{ObjectSize, PartPlan, PartSize};
use filestore_shared::storage::Storage;
use md5::Md5;
use serde::{Deserialize, Serialize};
use sha1::Sha1;
use sha2::Sha256;
use sha2::digest::Digest;
use sha2::digest::common::hazmat::{SerializableState, SerializedState};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

/// Part size for the cold copy when it cannot follow the hot object's parts (raised for
/// objects over 160 GiB to stay within 10,000 parts).
pub const COLD_PART_SIZE: u64 = 16 * 1024 * 1024;
/// The largest hot part the cold copy follows part for part; larger ones would hold too much
/// memory per part in flight.
pub const MAX_ALIGNED_PART: u64 = 32 * 1024 * 1024;
/// Part uploads in flight at once.
pub const IN_FLIGHT: usize = 2;
/// Parts waiting for the hashing thread; when it falls behind, reading waits.
pub const HASH_QUEUE: usize = 1;
/// Cold parts larger than this are streamed to the cold store as they are read rather than
/// held whole: only objects over 160 GiB have such parts (525 MiB at 5 TiB), and a few of
/// them in memory would pass the function's.
pub const STREAM_PARTS_OVER: u64 = 64 * 1024 * 1024;
/// Chunks of a streamed part on their way to its request.
const STREAM_QUEUE: usize = 8;

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

type Md5Digest = [u8; 16];

/// A copy whose bytes are wrong (a corrupted or cut read, a cold store that kept other bytes):
/// nothing of it may be resumed.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadCopy(pub String);

/// Is `err` a [`BadCopy`]?
pub fn is_bad_copy(err: &anyhow::Error) -> bool {
    err.downcast_ref::<BadCopy>().is_some()
}

/// An ETag of the MD5 form that S3 (unencrypted or SSE-S3), MinIO, Aliyun OSS and moto give:
/// the MD5 of the bytes, or for a multipart upload the MD5 of its parts' MD5s and the number
/// of parts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Md5Etag {
    /// Lowercase hex.
    pub digest: String,
    /// `Some(n)` for an object uploaded in `n` parts.
    pub parts: Option<u32>,
}

impl fmt::Display for Md5Etag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.parts {
            None => f.write_str(&self.digest),
            Some(n) => write!(f, "{}-{n}", self.digest),
        }
    }
}

impl Md5Etag {
    /// Parses an ETag (quoted or not, any case). `None` for an ETag that is not of the MD5
    /// form, which says nothing that can be checked.
    pub fn parse(etag: &str) -> Option<Self> {
        let etag = etag.trim().trim_matches('"');
        let (digest, parts) = match etag.split_once('-') {
            None => (etag, None),
            Some((digest, parts)) => (digest, Some(parts.parse::<u32>().ok()?)),
        };
        (digest.len() == 32 && digest.bytes().all(|b| b.is_ascii_hexdigit())).then(|| Self {
            digest: digest.to_ascii_lowercase(),
            parts,
        })
    }

    /// The ETag of bytes stored in one piece, whose MD5 is `digest`.
    fn single(digest: &Md5Digest) -> Self {
        Self {
            digest: hex::encode(digest),
            parts: None,
        }
    }

    fn multipart(part_digests: &[Md5Digest]) -> Self {
        Self {
            digest: hex::encode(Md5::digest(part_digests.concat())),
            parts: Some(part_digests.len() as u32),
        }
    }
}

/// Computes the ETag S3 gives bytes uploaded in one piece (`part_size` `None`) or in parts of
/// `part_size` bytes (all but the last).
pub struct EtagHasher {
    part_size: Option<u64>,
    part: Md5,
    in_part: u64,
    digests: Vec<Md5Digest>,
}

impl EtagHasher {
    pub fn new(part_size: Option<u64>) -> Self {
        Self {
            part_size: part_size.map(|p| p.max(1)),
            part: Md5::new(),
            in_part: 0,
            digests: Vec::new(),
        }
    }

    pub fn update(&mut self, mut data: &[u8]) {
        let Some(size) = self.part_size else {
            self.part.update(data);
            return;
        };
        while !data.is_empty() {
            let take = ((size - self.in_part) as usize).min(data.len());
            self.part.update(&data[..take]);
            self.in_part += take as u64;
            data = &data[take..];
            if self.in_part == size {
                self.close_part();
            }
        }
    }

    fn close_part(&mut self) {
        self.digests
            .push(std::mem::take(&mut self.part).finalize().into());
        self.in_part = 0;
    }

    fn save(&self) -> EtagState {
        EtagState {
            part_size: self.part_size,
            in_part: self.in_part,
            md5: save_state(&self.part),
            digests: self.digests.clone(),
        }
    }

    fn restore(state: &EtagState) -> anyhow::Result<Self> {
        Ok(Self {
            part_size: state.part_size,
            part: restore_state(&state.md5)?,
            in_part: state.in_part,
            digests: state.digests.clone(),
        })
    }

    pub fn finish(mut self) -> Md5Etag {
        if self.part_size.is_none() {
            return Md5Etag::single(&self.part.finalize().into());
        }
        if self.in_part > 0 || self.digests.is_empty() {
            self.close_part();
        }
        Md5Etag::multipart(&self.digests)
    }
}

/// A hash's midstate, base64: its chaining state, length and unprocessed bytes.
fn save_state<H: SerializableState>(hash: &H) -> String {
    base64::engine::general_purpose::STANDARD.encode(hash.serialize())
}

fn restore_state<H: SerializableState>(saved: &str) -> anyhow::Result<H> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(saved)
        .context("checkpoint hash state is not base64")?;
    let state = SerializedState::<H>::try_from(&bytes[..])
        .map_err(|_| anyhow!("checkpoint hash state has the wrong length"))?;
    H::deserialize(&state).map_err(|_| anyhow!("checkpoint hash state does not deserialise"))
}

/// A list of part digests in a checkpoint's JSON: only its length, the digests themselves
/// travelling in the blob ([`Checkpoint::pack`]). Read back as that many placeholders, which
/// [`Checkpoint::unpack`] fills in.
mod digest_count {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    use super::Md5Digest;

    /// S3's limit on parts, for hot and cold alike.
    const MAX: usize = 10_000;

    pub fn serialize<S: Serializer>(digests: &[Md5Digest], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(digests.len() as u64)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Md5Digest>, D::Error> {
        match usize::deserialize(d)? {
            n if n <= MAX => Ok(vec![[0; 16]; n]),
            n => Err(D::Error::custom(format!(
                "{n} part digests, more than S3 allows"
            ))),
        }
    }
}

/// The hot-ETag hasher's state in a checkpoint.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct EtagState {
    part_size: Option<u64>,
    in_part: u64,
    md5: String,
    #[serde(rename = "digest_count", with = "digest_count")]
    digests: Vec<Md5Digest>,
}

/// Where a copy stopped: what another run needs to continue it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Checkpoint {
    /// The hot object's ETag when the copy began; a changed object is copied from the start.
    pub hot_etag: String,
    pub upload_id: String,
    /// Every cold part but the last has this size.
    pub part_size: u64,
    /// Whether the cold parts follow the hot object's parts (their MD5s make its ETag).
    pub aligned: bool,
    /// MD5s of the cold parts uploaded (parts 1..=n, in order).
    #[serde(rename = "part_count", with = "digest_count")]
    pub part_md5s: Vec<Md5Digest>,
    sha256: String,
    sha1: String,
    hot: Option<EtagState>,
}

impl Checkpoint {
    /// Bytes copied so far.
    pub fn offset(&self) -> u64 {
        self.part_md5s.len() as u64 * self.part_size
    }

    /// The checkpoint as a string and a blob of part digests (16 bytes each, cold parts
    /// then hot parts): up to 20,000 digests, which as text would pass DynamoDB's item limit.
    ///
    /// # Errors
    /// Never in practice (serialising plain data).
    pub fn pack(&self) -> anyhow::Result<(String, Vec<u8>)> {
        let hot = self.hot.as_ref().map_or(&[][..], |h| &h.digests[..]);
        let blob = self
            .part_md5s
            .iter()
            .chain(hot)
            .flatten()
            .copied()
            .collect();
        Ok((serde_json::to_string(self)?, blob))
    }

    /// # Errors
    /// A state or blob that [`Checkpoint::pack`] did not make.
    pub fn unpack(state: &str, blob: &[u8]) -> anyhow::Result<Self> {
        let mut checkpoint: Self =
            serde_json::from_str(state).context("checkpoint state does not parse")?;
        let hot = checkpoint
            .hot
            .as_mut()
            .map_or(&mut [][..], |h| &mut h.digests[..]);
        let slots: Vec<&mut Md5Digest> = checkpoint.part_md5s.iter_mut().chain(hot).collect();
        if blob.len() != slots.len() * 16 {
            bail!("checkpoint blob has the wrong length");
        }
        for (slot, digest) in slots.into_iter().zip(blob.chunks_exact(16)) {
            slot.copy_from_slice(digest);
        }
        Ok(checkpoint)
    }
}

/// How one run goes about a copy.
#[derive(Clone, Debug, Default)]
pub struct Run {
    /// Where an earlier run stopped.
    pub resume: Option<Checkpoint>,
    /// When to stop at the next part boundary (after at least one part of progress).
    pub stop_at: Option<Instant>,
    pub tuning: Tuning,
}

/// How a run of a copy ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Progress {
    Done(Copied),
    /// Time ran out; the copy continues from here.
    Paused(Checkpoint),
}

async fn md5_of(bytes: Bytes) -> anyhow::Result<Md5Digest> {
    tokio::task::spawn_blocking(move || Md5::digest(&bytes).into())
        .await
        .context("MD5 task")
}

fn base64(digest: &Md5Digest) -> String {
    base64::engine::general_purpose::STANDARD.encode(digest)
}

/// What the hashing thread found.
struct Digests {
    sha256: String,
    sha1: String,
    hot_etag: Option<Md5Etag>,
}

/// The hashes of the bytes read so far.
struct Hashers {
    sha256: Sha256,
    sha1: Sha1,
    /// The hot object's ETag, when the cold parts' MD5s do not make it.
    etag: Option<EtagHasher>,
}

impl Hashers {
    fn new(etag: Option<EtagHasher>) -> Self {
        Self {
            sha256: Sha256::new(),
            sha1: Sha1::new(),
            etag,
        }
    }

    fn restore(checkpoint: &Checkpoint) -> anyhow::Result<Self> {
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

    fn update(&mut self, part: &[u8]) {
        self.sha256.update(part);
        self.sha1.update(part);
        if let Some(etag) = self.etag.as_mut() {
            etag.update(part);
        }
    }

    fn finish(self) -> Digests {
        Digests {
            sha256: hex::encode(self.sha256.finalize()),
            sha1: hex::encode(self.sha1.finalize()),
            hot_etag: self.etag.map(EtagHasher::finish),
        }
    }
}

/// The hashing thread, fed whole parts through a bounded queue: a hash that falls behind
/// slows the read (backpressure) instead of growing memory.
struct Hashing {
    queue: mpsc::Sender<Bytes>,
    worker: tokio::task::JoinHandle<Hashers>,
}

impl Hashing {
    fn start(mut hashers: Hashers) -> Self {
        let (queue, mut parts) = mpsc::channel::<Bytes>(HASH_QUEUE);
        let worker = tokio::task::spawn_blocking(move || {
            while let Some(part) = parts.blocking_recv() {
                hashers.update(&part);
            }
            hashers
        });
        Self { queue, worker }
    }

    async fn feed(&self, part: Bytes) -> anyhow::Result<()> {
        self.queue
            .send(part)
            .await
            .map_err(|_| anyhow!("the hashing thread stopped"))
    }

    /// The hashes of everything fed.
    async fn finish(self) -> anyhow::Result<Hashers> {
        drop(self.queue);
        self.worker.await.context("the hashing thread failed")
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A request body fed through a channel, of a length known up front: a cold part sent as
/// its bytes are read.
struct ChannelBody {
    chunks: mpsc::Receiver<Result<Bytes, BoxError>>,
    len: u64,
}

impl http_body::Body for ChannelBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, BoxError>>> {
        self.chunks
            .poll_recv(cx)
            .map(|chunk| chunk.map(|c| c.map(http_body::Frame::data)))
    }

    fn size_hint(&self) -> http_body::SizeHint {
        http_body::SizeHint::with_exact(self.len)
    }
}

/// A cold part being streamed: its request runs while the bytes are pushed to it.
struct StreamedPart {
    number: i32,
    chunks: Option<mpsc::Sender<Result<Bytes, BoxError>>>,
    md5: Md5,
    upload: tokio::task::JoinHandle<anyhow::Result<Option<String>>>,
}

/// A part given up midway (a failed or cut read) stops its request.
impl Drop for StreamedPart {
    fn drop(&mut self) {
        self.upload.abort();
    }
}

impl StreamedPart {
    async fn push(&mut self, chunk: Bytes) -> anyhow::Result<()> {
        self.md5.update(&chunk);
        let chunks = self.chunks.as_ref().expect("open until finish");
        if chunks.send(Ok(chunk)).await.is_err() {
            // The request ended early: its error says why.
            (&mut self.upload).await.context("part upload task")??;
            bail!("cold UploadPart {} ended before its bytes", self.number);
        }
        Ok(())
    }

    /// Ends the part's body and waits for the store's answer. The part's MD5 was not known
    /// when the request began, so it is checked against the ETag the store gives.
    async fn finish(mut self) -> anyhow::Result<(CompletedPart, Md5Digest)> {
        drop(self.chunks.take());
        let etag = (&mut self.upload).await.context("part upload task")??;
        let md5: Md5Digest = std::mem::take(&mut self.md5).finalize().into();
        let sent = Md5Etag::single(&md5);
        if let Some(stored) = etag.as_deref().and_then(Md5Etag::parse)
            && stored != sent
        {
            return Err(BadCopy(format!(
                "the cold store's ETag for part {} is {stored}, the bytes sent make {sent}",
                self.number
            ))
            .into());
        }
        let completed = CompletedPart::builder()
            .part_number(self.number)
            .set_e_tag(etag)
            .build();
        Ok((completed, md5))
    }
}

struct Multipart<'a> {
    store: &'a Storage,
    key: &'a str,
    upload_id: String,
    next_part: i32,
    running: JoinSet<anyhow::Result<(CompletedPart, Md5Digest)>>,
    done: Vec<(CompletedPart, Md5Digest)>,
}

impl<'a> Multipart<'a> {
    async fn start(store: &'a Storage, key: &'a str) -> anyhow::Result<Self> {
        let upload_id = store
            .client()
            .create_multipart_upload()
            .bucket(store.bucket())
            .key(key)
            .send()
            .await
            .context("cold CreateMultipartUpload")?
            .upload_id
            .context("cold store returned no upload id")?;
        Ok(Self {
            store,
            key,
            upload_id,
            next_part: 1,
            running: JoinSet::new(),
            done: Vec::new(),
        })
    }

    /// Takes up `checkpoint`'s upload, if the cold store still holds it with every part the
    /// checkpoint counts, of the right size and MD5. `None`: it does not (aborted by the
    /// janitor, say), and the copy starts over.
    async fn resume(
        store: &'a Storage,
        key: &'a str,
        checkpoint: &Checkpoint,
    ) -> anyhow::Result<Option<Self>> {
        let Some(parts) = store.list_parts(key, &checkpoint.upload_id).await? else {
            tracing::warn!(key, "the checkpoint's cold upload is gone; starting over");
            return Ok(None);
        };
        let mut done = Vec::with_capacity(checkpoint.part_md5s.len());
        // `list_parts` sorts by number, so part n is at n - 1 if parts 1..=n are all there.
        for (i, md5) in checkpoint.part_md5s.iter().enumerate() {
            let number = i as u32 + 1;
            let listed = parts.get(i).filter(|p| p.part_number == number);
            let fits = listed.is_some_and(|p| {
                p.size == checkpoint.part_size
                    && Md5Etag::parse(&p.etag).is_none_or(|e| e == Md5Etag::single(md5))
            });
            let Some(listed) = listed.filter(|_| fits) else {
                tracing::warn!(
                    key,
                    part = number,
                    "the checkpoint's cold part is missing or differs; starting over"
                );
                store.abort_multipart(key, &checkpoint.upload_id).await?;
                return Ok(None);
            };
            let completed = CompletedPart::builder()
                .part_number(number as i32)
                .e_tag(&listed.etag)
                .build();
            done.push((completed, *md5));
        }
        Ok(Some(Self {
            store,
            key,
            upload_id: checkpoint.upload_id.clone(),
            next_part: done.len() as i32 + 1,
            running: JoinSet::new(),
            done,
        }))
    }

    /// Waits for every part upload in flight.
    async fn wait_all(&mut self) -> anyhow::Result<()> {
        while !self.running.is_empty() {
            self.wait_one().await?;
        }
        self.done.sort_by_key(|(p, _)| p.part_number());
        Ok(())
    }

    async fn wait_one(&mut self) -> anyhow::Result<()> {
        if let Some(joined) = self.running.join_next().await {
            self.done.push(joined.context("part upload task")??);
        }
        Ok(())
    }

    async fn send(&mut self, part: Bytes) -> anyhow::Result<()> {
        while self.running.len() >= IN_FLIGHT {
            self.wait_one().await?;
        }
        let number = self.next_part;
        self.next_part += 1;
        let client = self.store.client().clone();
        let (bucket, key, upload_id) = (
            self.store.bucket().to_string(),
            self.key.to_string(),
            self.upload_id.clone(),
        );
        self.running.spawn(async move {
            let md5 = md5_of(part.clone()).await?;
            let out = client
                .upload_part()
                .bucket(bucket)
                .key(key)
                .upload_id(upload_id)
                .part_number(number)
                .content_md5(base64(&md5))
                .body(ByteStream::from(part))
                .send()
                .await
                .with_context(|| format!("cold UploadPart {number}"))?;
            let completed = CompletedPart::builder()
                .part_number(number)
                .set_e_tag(out.e_tag)
                .build();
            Ok((completed, md5))
        });
        Ok(())
    }

    /// Completes the upload, unless its parts' MD5s miss `expected`; returns the ETag the
    /// cold store should now show.
    async fn finish(&mut self, expected: Option<&Md5Etag>) -> anyhow::Result<Md5Etag> {
        self.wait_all().await?;
        let sent = Md5Etag::multipart(&self.digests());
        if let Some(expected) = expected
            && sent != *expected
        {
            return Err(corrupted_read(self.key, expected, Some(&sent)).into());
        }
        let parts = self.done.iter().map(|(p, _)| p.clone()).collect();
        self.store
            .client()
            .complete_multipart_upload()
            .bucket(self.store.bucket())
            .key(self.key)
            .upload_id(&self.upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .send()
            .await
            .context("cold CompleteMultipartUpload")?;
        Ok(sent)
    }

    /// Starts the next part as a request whose body is pushed to it, `len` bytes in all.
    fn stream(&mut self, len: u64) -> StreamedPart {
        let number = self.next_part;
        self.next_part += 1;
        let (chunks, receiver) = mpsc::channel(STREAM_QUEUE);
        let body = ByteStream::new(aws_smithy_types::body::SdkBody::from_body_1_x(
            ChannelBody {
                chunks: receiver,
                len,
            },
        ));
        let request = self
            .store
            .client()
            .upload_part()
            .bucket(self.store.bucket())
            .key(self.key)
            .upload_id(&self.upload_id)
            .part_number(number)
            .content_length(len as i64)
            .body(body);
        let upload = tokio::spawn(async move {
            let out = request
                .send()
                .await
                .with_context(|| format!("cold UploadPart {number} (streamed)"))?;
            Ok(out.e_tag)
        });
        StreamedPart {
            number,
            chunks: Some(chunks),
            md5: Md5::new(),
            upload,
        }
    }

    fn digests(&self) -> Vec<Md5Digest> {
        self.done.iter().map(|(_, d)| *d).collect()
    }

    /// Stops the part uploads still running, so none lands after the abort, then aborts.
    async fn abort(mut self) {
        self.running.shutdown().await;
        if let Err(e) = self.store.abort_multipart(self.key, &self.upload_id).await {
            tracing::warn!(
                key = self.key,
                error = format!("{e:#}"),
                "cold multipart upload left open; the bucket's lifecycle rule is the backstop"
            );
        }
    }
}

/// The size of part 1 of a multipart object, which S3 tells for `partNumber=1`; every part
/// but the last has that size, which is what the multipart ETag needs.
async fn first_part_size(hot: &Storage, key: &str) -> anyhow::Result<u64> {
    let out = hot
        .client()
        .head_object()
        .bucket(hot.bucket())
        .key(key)
        .part_number(1)
        .send()
        .await
        .context("hot HeadObject of part 1")?;
    out.content_length()
        .filter(|l| *l >= 0)
        .map(|l| l as u64)
        .context("hot HeadObject of part 1 gave no length")
}

fn corrupted_read(key: &str, stored: &Md5Etag, read: Option<&Md5Etag>) -> BadCopy {
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

/// Copies `hot_key` from `hot` to `cold_key` in `cold`, hashing it on the way, checking the
/// read against the hot object and the write against the cold one; or, when `run` says time
/// is up, stops at a part boundary and says where.
///
/// # Errors
/// Any read, write or check failure ([`BadCopy`] when the bytes are wrong). A started
/// multipart upload is aborted unless it is `run`'s checkpoint's and the bytes are not known
/// to be wrong (a later run resumes it); a written cold object that fails its check is deleted.
pub async fn copy_verified(
    hot: &Storage,
    cold: &Storage,
    hot_key: &str,
    cold_key: &str,
    expected_size: u64,
    run: Run,
) -> anyhow::Result<Progress> {
    let saved = run.resume.as_ref().map(|c| c.upload_id.clone());
    let mut multipart = None;
    let copied = copy(
        hot,
        cold,
        hot_key,
        cold_key,
        expected_size,
        run,
        &mut multipart,
    )
    .await;
    if let Err(e) = &copied
        && let Some(m) = multipart
    {
        if saved.as_ref() == Some(&m.upload_id) && !is_bad_copy(e) {
            tracing::info!(
                key = cold_key,
                "cold upload kept for the next run to resume"
            );
        } else {
            m.abort().await;
        }
    }
    copied
}

async fn copy<'a>(
    hot: &Storage,
    cold: &'a Storage,
    hot_key: &str,
    cold_key: &'a str,
    expected_size: u64,
    run: Run,
    multipart: &mut Option<Multipart<'a>>,
) -> anyhow::Result<Progress> {
    let size = ObjectSize::parse(expected_size).map_err(anyhow::Error::msg)?;
    let planned = PartPlan::new(
        size,
        Some(PartSize::parse(run.tuning.part_size).map_err(anyhow::Error::msg)?),
    )
    .part_size;
    let mut resume = run.resume;
    if let Some(checkpoint) = &resume {
        *multipart = Multipart::resume(cold, cold_key, checkpoint).await?;
        if multipart.is_none() {
            resume = None;
        }
    }
    let offset = resume.as_ref().map_or(0, Checkpoint::offset);
    let mut request = hot.client().get_object().bucket(hot.bucket()).key(hot_key);
    if offset > 0 {
        request = request.range(format!("bytes={offset}-"));
    }
    let object = request.send().await.context("hot GetObject")?;
    let raw_etag = object.e_tag().unwrap_or_default().to_string();
    if let Some(checkpoint) = &resume
        && checkpoint.hot_etag != raw_etag
    {
        return Err(BadCopy(format!(
            "the hot object {hot_key} changed since the checkpoint (ETag {} then, {raw_etag} now)",
            checkpoint.hot_etag
        ))
        .into());
    }
    if let Some(length) = object.content_length()
        && length != (expected_size - offset) as i64
    {
        return Err(BadCopy(format!(
            "the hot object has {length} bytes from offset {offset}, its File says {expected_size} in all"
        ))
        .into());
    }
    let hot_etag = Md5Etag::parse(&raw_etag);
    // Following the hot parts (`aligned`), the cold parts' MD5s make the hot ETag; otherwise
    // the hashing thread computes it.
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
                Some(Md5Etag { parts: None, .. }) => (planned, false, Some(EtagHasher::new(None))),
                Some(Md5Etag { parts: Some(_), .. }) => {
                    match first_part_size(hot, hot_key).await? {
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
    let streamed = part_size > run.tuning.stream_over && expected_size > part_size;
    let mut body = object.body;
    let mut buffer = BytesMut::with_capacity(if streamed {
        0
    } else {
        part_len.min((expected_size - offset) as usize)
    });
    let mut streaming: Option<StreamedPart> = None;
    let mut total = offset;
    // Bytes handed to finished cold parts, from the start of the object, and to the current one.
    let (mut through, mut filled) = (offset, 0u64);
    let mut paused = false;

    'read: while let Some(chunk) = body.try_next().await.context("reading the hot object")? {
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
            if multipart.is_none() && (streamed || filled == part_size) {
                *multipart = Some(Multipart::start(cold, cold_key).await?);
            }
            if streamed {
                // The last part is shorter.
                let this_part = part_size.min(expected_size - through);
                let m = multipart.as_mut().expect("started above");
                let part = match &mut streaming {
                    Some(part) => part,
                    None => streaming.insert(m.stream(this_part)),
                };
                hashing.feed(piece.clone()).await?;
                part.push(piece).await?;
                if filled < this_part {
                    continue;
                }
                let part = streaming.take().expect("streaming above");
                m.done.push(part.finish().await?);
            } else {
                buffer.extend_from_slice(&piece);
                if filled < part_size {
                    continue;
                }
                let part = std::mem::replace(&mut buffer, BytesMut::with_capacity(part_len));
                let part = part.freeze();
                hashing.feed(part.clone()).await?;
                multipart
                    .as_mut()
                    .expect("started above")
                    .send(part)
                    .await?;
            }
            through += filled;
            filled = 0;
            if through < expected_size && run.stop_at.is_some_and(|t| Instant::now() >= t) {
                paused = true;
                break 'read;
            }
        }
    }
    if paused {
        let m = multipart.as_mut().expect("a part was sent");
        m.wait_all().await?;
        let hashers = hashing.finish().await?;
        let checkpoint = Checkpoint {
            hot_etag: raw_etag,
            upload_id: m.upload_id.clone(),
            part_size,
            aligned,
            part_md5s: m.digests(),
            sha256: save_state(&hashers.sha256),
            sha1: save_state(&hashers.sha1),
            hot: hashers.etag.as_ref().map(EtagHasher::save),
        };
        // The checkpoint holds the upload now: it must outlive this run.
        *multipart = None;
        return Ok(Progress::Paused(checkpoint));
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

    let sent = match multipart.as_mut() {
        None => {
            let md5 = md5_of(last.clone()).await?;
            if let Some(stored) = hot_etag.as_ref().filter(|_| aligned)
                && Md5Etag::multipart(&[md5]) != *stored
            {
                return Err(corrupted_read(hot_key, stored, None).into());
            }
            cold.client()
                .put_object()
                .bucket(cold.bucket())
                .key(cold_key)
                .content_md5(base64(&md5))
                .body(ByteStream::from(last))
                .send()
                .await
                .context("cold PutObject")?;
            Md5Etag::single(&md5)
        }
        Some(m) => {
            if !last.is_empty() {
                m.send(last).await?;
            }
            let etag = m.finish(hot_etag.as_ref().filter(|_| aligned)).await?;
            *multipart = None;
            etag
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etags_of_the_md5_form_parse_and_others_do_not() {
        let digest = "9B2CF535F27731C974343645A3985328";
        assert_eq!(
            Md5Etag::parse(&format!("\"{digest}\"")),
            Some(Md5Etag {
                digest: digest.to_ascii_lowercase(),
                parts: None
            })
        );
        assert_eq!(
            Md5Etag::parse(&format!("{digest}-12")).and_then(|e| e.parts),
            Some(12)
        );
        for other in [
            "",
            "abc",
            "\"xyz\"",
            &format!("{digest}-"),
            &format!("{digest}-x"),
        ] {
            assert_eq!(Md5Etag::parse(other), None, "{other:?}");
        }
    }

    /// The multipart ETag is the MD5 of the parts' MD5s, whatever chunks the bytes come in.
    #[test]
    fn etag_hasher_matches_s3s_multipart_etag() {
        let data: Vec<u8> = (0..25u32).flat_map(|i| i.to_le_bytes()).collect();
        let part_digests: Vec<Md5Digest> = data.chunks(40).map(|c| Md5::digest(c).into()).collect();
        let expected = format!(
            "{}-{}",
            hex::encode(Md5::digest(part_digests.concat())),
            part_digests.len()
        );
        for chunk in [1, 7, 40, 100] {
            let mut hasher = EtagHasher::new(Some(40));
            data.chunks(chunk).for_each(|c| hasher.update(c));
            assert_eq!(hasher.finish().to_string(), expected, "chunks of {chunk}");
        }
        let mut whole = EtagHasher::new(None);
        whole.update(&data);
        assert_eq!(whole.finish().to_string(), hex::encode(Md5::digest(&data)));
    }

    /// An empty multipart object is one empty part.
    #[test]
    fn empty_multipart_object_is_one_empty_part() {
        let empty: Md5Digest = Md5::digest(b"").into();
        assert_eq!(
            EtagHasher::new(Some(5)).finish(),
            Md5Etag::multipart(&[empty])
        );
    }

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

    #[test]
    fn a_damaged_checkpoint_does_not_unpack() {
        let checkpoint = Checkpoint {
            hot_etag: String::new(),
            upload_id: "u".into(),
            part_size: 5,
            aligned: true,
            part_md5s: vec![[1; 16]],
            sha256: save_state(&Sha256::new()),
            sha1: save_state(&Sha1::new()),
            hot: None,
        };
        let (state, blob) = checkpoint.pack().unwrap();
        assert!(Checkpoint::unpack(&state, &blob[1..]).is_err());
        assert!(Checkpoint::unpack("{}", &blob).is_err());
        let too_many = state.replace("\"part_count\":1", "\"part_count\":10001");
        assert_ne!(too_many, state);
        assert!(Checkpoint::unpack(&too_many, &vec![0; 10_001 * 16]).is_err());
        let short = state.replace(&checkpoint.sha1, "AAAA");
        let back = Checkpoint::unpack(&short, &blob).unwrap();
        assert!(Hashers::restore(&back).is_err());
    }
}

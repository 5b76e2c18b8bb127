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
//! Nothing is taken on trust. Before the cold copy is completed, the bytes read are checked
//! against the hot object's size and ETag (the MD5 of the stored bytes, or of its parts' MD5s
//! for a multipart upload), so a cut or corrupted read never becomes a cold object. The cold
//! parts follow the hot object's parts where those are small enough ([`MAX_ALIGNED_PART`]), so
//! one MD5 per part serves as its `Content-MD5` and to check the hot ETag; otherwise the
//! hashing thread computes the hot ETag as well. After the write, the cold object's size and
//! ETag are checked against what was sent, and a copy that fails the check is deleted. Any
//! failure aborts a started multipart upload.

use std::fmt;

use anyhow::{Context, anyhow, bail};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use base64::Engine;
use bytes::{Bytes, BytesMut};
use filestore_shared::domain::{ObjectSize, PartPlan, PartSize};
use filestore_shared::storage::Storage;
use md5::Md5;
use sha1::Sha1;
use sha2::{Digest, Sha256};
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

/// What the copy read and wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Copied {
    pub sha256: String,
    pub sha1: String,
    pub size: u64,
}

type Md5Digest = [u8; 16];

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

    pub fn finish(mut self) -> Md5Etag {
        if self.part_size.is_none() {
            return Md5Etag {
                digest: hex::encode(self.part.finalize()),
                parts: None,
            };
        }
        if self.in_part > 0 || self.digests.is_empty() {
            self.close_part();
        }
        Md5Etag::multipart(&self.digests)
    }
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

/// The hashing thread, fed whole parts through a bounded queue: a hash that falls behind
/// slows the read (backpressure) instead of growing memory.
struct Hashing {
    queue: mpsc::Sender<Bytes>,
    worker: tokio::task::JoinHandle<Digests>,
}

impl Hashing {
    fn start(mut etag: Option<EtagHasher>) -> Self {
        let (queue, mut parts) = mpsc::channel::<Bytes>(HASH_QUEUE);
        let worker = tokio::task::spawn_blocking(move || {
            let (mut sha256, mut sha1) = (Sha256::new(), Sha1::new());
            while let Some(part) = parts.blocking_recv() {
                sha256.update(&part);
                sha1.update(&part);
                if let Some(etag) = etag.as_mut() {
                    etag.update(&part);
                }
            }
            Digests {
                sha256: hex::encode(sha256.finalize()),
                sha1: hex::encode(sha1.finalize()),
                hot_etag: etag.map(EtagHasher::finish),
            }
        });
        Self { queue, worker }
    }

    async fn feed(&self, part: Bytes) -> anyhow::Result<()> {
        self.queue
            .send(part)
            .await
            .map_err(|_| anyhow!("the hashing thread stopped"))
    }

    async fn finish(self) -> anyhow::Result<Digests> {
        drop(self.queue);
        self.worker.await.context("the hashing thread failed")
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
        while !self.running.is_empty() {
            self.wait_one().await?;
        }
        self.done.sort_by_key(|(p, _)| p.part_number());
        let digests: Vec<Md5Digest> = self.done.iter().map(|(_, d)| *d).collect();
        let sent = Md5Etag::multipart(&digests);
        if let Some(expected) = expected
            && sent != *expected
        {
            bail!(corrupted_read(self.key, expected, Some(&sent)));
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

fn corrupted_read(key: &str, stored: &Md5Etag, read: Option<&Md5Etag>) -> String {
    format!(
        "the bytes read for {key} do not match the hot object's ETag {stored} (they make {}): a corrupted read",
        read.map_or_else(|| "nothing".to_string(), Md5Etag::to_string)
    )
}

/// Checks that the cold store holds what was sent: the size always, the ETag where the store
/// gives one of the MD5 form.
async fn check_cold(cold: &Storage, key: &str, size: u64, sent: &Md5Etag) -> anyhow::Result<()> {
    let head = cold
        .head(key)
        .await?
        .with_context(|| format!("the cold store has no {key} right after writing it"))?;
    if head.size != size {
        bail!(
            "the cold store holds {} bytes for {key}, {size} were sent",
            head.size
        );
    }
    match head.etag.as_deref().and_then(Md5Etag::parse) {
        Some(etag) if etag != *sent => {
            bail!("the cold store's ETag for {key} is {etag}, the bytes sent make {sent}")
        }
        Some(_) => {}
        None => tracing::debug!(
            key,
            "the cold store's ETag is not an MD5; size checked only"
        ),
    }
    Ok(())
}

/// Copies `hot_key` from `hot` to `cold_key` in `cold`, hashing it on the way, checking the
/// read against the hot object and the write against the cold one.
///
/// # Errors
/// Any read, write or check failure: a started multipart upload is aborted, and a written
/// cold object that fails its check is deleted.
pub async fn copy_verified(
    hot: &Storage,
    cold: &Storage,
    hot_key: &str,
    cold_key: &str,
    expected_size: u64,
) -> anyhow::Result<Copied> {
    let mut multipart = None;
    let copied = copy(hot, cold, hot_key, cold_key, expected_size, &mut multipart).await;
    if copied.is_err()
        && let Some(m) = multipart
    {
        m.abort().await;
    }
    copied
}

async fn copy<'a>(
    hot: &Storage,
    cold: &'a Storage,
    hot_key: &str,
    cold_key: &'a str,
    expected_size: u64,
    multipart: &mut Option<Multipart<'a>>,
) -> anyhow::Result<Copied> {
    let size = ObjectSize::parse(expected_size).map_err(anyhow::Error::msg)?;
    let planned = PartPlan::new(
        size,
        Some(PartSize::parse(COLD_PART_SIZE).map_err(anyhow::Error::msg)?),
    )
    .part_size;
    let object = hot
        .client()
        .get_object()
        .bucket(hot.bucket())
        .key(hot_key)
        .send()
        .await
        .context("hot GetObject")?;
    if let Some(length) = object.content_length()
        && length != expected_size as i64
    {
        bail!("the hot object is {length} bytes, its File says {expected_size}");
    }
    let hot_etag = object.e_tag().and_then(Md5Etag::parse);
    // Following the hot parts (`aligned`), the cold parts' MD5s make the hot ETag; otherwise
    // the hashing thread computes it.
    let (part_size, aligned, etag_hasher) = match &hot_etag {
        None => {
            tracing::warn!(key = hot_key, etag = ?object.e_tag(), "the hot object's ETag is not an MD5; the read is checked by size only");
            (planned, false, None)
        }
        Some(Md5Etag { parts: None, .. }) => (planned, false, Some(EtagHasher::new(None))),
        Some(Md5Etag { parts: Some(_), .. }) => match first_part_size(hot, hot_key).await? {
            hot_part @ 1..=MAX_ALIGNED_PART => (hot_part, true, None),
            hot_part => (planned, false, Some(EtagHasher::new(Some(hot_part)))),
        },
    };
    let part_size = part_size as usize;
    let hashing = Hashing::start(etag_hasher);
    let mut body = object.body;
    let mut buffer = BytesMut::with_capacity(part_size.min(expected_size as usize));
    let mut total = 0u64;

    while let Some(chunk) = body.try_next().await.context("reading the hot object")? {
        total += chunk.len() as u64;
        if total > expected_size {
            bail!("the hot object has more than the {expected_size} bytes its File says");
        }
        let mut rest = &chunk[..];
        while !rest.is_empty() {
            let take = (part_size - buffer.len()).min(rest.len());
            buffer.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if buffer.len() == part_size {
                let part = std::mem::replace(&mut buffer, BytesMut::with_capacity(part_size));
                let part = part.freeze();
                hashing.feed(part.clone()).await?;
                if multipart.is_none() {
                    *multipart = Some(Multipart::start(cold, cold_key).await?);
                }
                multipart
                    .as_mut()
                    .expect("started above")
                    .send(part)
                    .await?;
            }
        }
    }
    if total != expected_size {
        bail!("the hot object ended after {total} of its {expected_size} bytes");
    }
    let last = buffer.freeze();
    if !last.is_empty() {
        hashing.feed(last.clone()).await?;
    }
    let digests = hashing.finish().await?;
    if let Some(stored) = &hot_etag
        && !aligned
        && digests.hot_etag.as_ref() != Some(stored)
    {
        bail!(corrupted_read(hot_key, stored, digests.hot_etag.as_ref()));
    }

    let sent = match multipart.as_mut() {
        None => {
            let md5 = md5_of(last.clone()).await?;
            if let Some(stored) = hot_etag.as_ref().filter(|_| aligned)
                && Md5Etag::multipart(&[md5]) != *stored
            {
                bail!(corrupted_read(hot_key, stored, None));
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
            Md5Etag {
                digest: hex::encode(md5),
                parts: None,
            }
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
    Ok(Copied {
        sha256: digests.sha256,
        sha1: digests.sha1,
        size: total,
    })
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
}

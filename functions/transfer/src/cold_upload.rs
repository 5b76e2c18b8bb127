//! The cold store's side of a copy: a multipart upload written part by part, at most
//! [`IN_FLIGHT`] parts at a time, each with a `Content-MD5` computed off the runtime's
//! threads; or, for parts too large to hold, one part at a time with a body fed as the bytes
//! are read ([`StreamedPart`]), its MD5 checked against the ETag the store returns.
//!
//! A [`ColdUpload`] owns its cleanup: completed, or handed over to a checkpoint, it is no
//! longer its to abort; after a failure, [`ColdUpload::settle`] aborts it, unless it is the
//! upload a checkpoint names and the bytes are not known to be wrong (a later run resumes it).

use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use anyhow::{Context, bail};
use bytes::Bytes;
use filestore_shared::storage::{BodyError, Joined, Storage, UploadedPart};
use md5::Md5;
use sha2::digest::Digest;
use tokio::sync::mpsc;
use tokio::task::{JoinHandle, JoinSet};

use crate::checkpoint::Checkpoint;
use crate::copy::{BadCopy, corrupted_read, is_bad_copy};
use crate::etag::{Md5Digest, Md5Etag};

/// Part uploads in flight at once.
pub const IN_FLIGHT: usize = 2;
/// Chunks of a streamed part on their way to its request.
const STREAM_QUEUE: usize = 8;

/// The MD5 of `bytes`, computed off the runtime's threads.
pub(crate) async fn md5_of(bytes: Bytes) -> anyhow::Result<Md5Digest> {
    tokio::task::spawn_blocking(move || Md5::digest(&bytes).into())
        .await
        .context("MD5 task")
}

/// A request body fed through a channel, of a length known up front: a cold part sent as
/// its bytes are read.
struct ChannelBody {
    chunks: mpsc::Receiver<Result<Bytes, BodyError>>,
    len: u64,
}

impl http_body::Body for ChannelBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, BodyError>>> {
        self.chunks
            .poll_recv(cx)
            .map(|chunk| chunk.map(|c| c.map(http_body::Frame::data)))
    }

    fn size_hint(&self) -> http_body::SizeHint {
        http_body::SizeHint::with_exact(self.len)
    }
}

/// A cold part being streamed: its request runs while the bytes are pushed to it.
pub(crate) struct StreamedPart {
    number: u32,
    chunks: Option<mpsc::Sender<Result<Bytes, BodyError>>>,
    md5: Md5,
    upload: JoinHandle<anyhow::Result<UploadedPart>>,
}

/// A part given up midway (a failed or cut read) stops its request.
impl Drop for StreamedPart {
    fn drop(&mut self) {
        self.upload.abort();
    }
}

impl StreamedPart {
    pub(crate) async fn push(&mut self, chunk: Bytes) -> anyhow::Result<()> {
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
    async fn finish(mut self) -> anyhow::Result<(UploadedPart, Md5Digest)> {
        drop(self.chunks.take());
        let uploaded = (&mut self.upload).await.context("part upload task")??;
        let md5: Md5Digest = std::mem::take(&mut self.md5).finalize().into();
        let sent = Md5Etag::single(&md5);
        if let Some(stored) = uploaded.etag.as_deref().and_then(Md5Etag::parse)
            && stored != sent
        {
            return Err(BadCopy(format!(
                "the cold store's ETag for part {} is {stored}, the bytes sent make {sent}",
                self.number
            ))
            .into());
        }
        Ok((uploaded, md5))
    }
}

/// A multipart upload this copy holds open.
struct Open {
    upload_id: String,
    next_part: u32,
    running: JoinSet<anyhow::Result<(UploadedPart, Md5Digest)>>,
    done: Vec<(UploadedPart, Md5Digest)>,
}

impl Open {
    fn new(upload_id: String, done: Vec<(UploadedPart, Md5Digest)>) -> Self {
        Self {
            upload_id,
            next_part: done.len() as u32 + 1,
            running: JoinSet::new(),
            done,
        }
    }

    /// Waits for every part upload in flight.
    async fn wait_all(&mut self) -> anyhow::Result<()> {
        while !self.running.is_empty() {
            self.wait_one().await?;
        }
        self.done.sort_by_key(|(p, _)| p.number);
        Ok(())
    }

    async fn wait_one(&mut self) -> anyhow::Result<()> {
        if let Some(joined) = self.running.join_next().await {
            self.done.push(joined.context("part upload task")??);
        }
        Ok(())
    }

    fn digests(&self) -> Vec<Md5Digest> {
        self.done.iter().map(|(_, d)| *d).collect()
    }
}

/// The cold copy of one object as a multipart upload: not started, open, or no longer this
/// copy's to clean up (completed, or handed to a checkpoint).
pub(crate) struct ColdUpload<'a> {
    store: &'a Storage,
    key: &'a str,
    /// The upload a checkpoint names: a failure leaves it for a later run to resume.
    saved: Option<String>,
    open: Option<Open>,
}

impl<'a> ColdUpload<'a> {
    pub(crate) fn new(store: &'a Storage, key: &'a str) -> Self {
        Self {
            store,
            key,
            saved: None,
            open: None,
        }
    }

    /// Takes up `checkpoint`'s upload, if the cold store still holds it with every part the
    /// checkpoint counts, of the right size and MD5. `false`: it does not (aborted by the
    /// janitor, say), and the copy starts over.
    pub(crate) async fn resume(&mut self, checkpoint: &Checkpoint) -> anyhow::Result<bool> {
        let key = self.key;
        self.saved = Some(checkpoint.upload_id.clone());
        let Some(parts) = self.store.list_parts(key, &checkpoint.upload_id).await? else {
            tracing::warn!(key, "the checkpoint's cold upload is gone; starting over");
            return Ok(false);
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
                self.store
                    .abort_multipart(key, &checkpoint.upload_id)
                    .await?;
                return Ok(false);
            };
            done.push((UploadedPart::from(listed), *md5));
        }
        self.open = Some(Open::new(checkpoint.upload_id.clone(), done));
        Ok(true)
    }

    pub(crate) fn is_open(&self) -> bool {
        self.open.is_some()
    }

    fn open(&mut self) -> &mut Open {
        self.open.as_mut().expect("the cold upload was started")
    }

    /// Starts the multipart upload.
    pub(crate) async fn start(&mut self) -> anyhow::Result<()> {
        let upload_id = self
            .store
            .create_multipart(self.key, None)
            .await
            .context("cold CreateMultipartUpload")?;
        self.open = Some(Open::new(upload_id, Vec::new()));
        Ok(())
    }

    /// Uploads the next part, held whole, once fewer than [`IN_FLIGHT`] are in flight.
    pub(crate) async fn send(&mut self, part: Bytes) -> anyhow::Result<()> {
        let (store, key) = (self.store.clone(), self.key.to_string());
        let open = self.open();
        while open.running.len() >= IN_FLIGHT {
            open.wait_one().await?;
        }
        let number = open.next_part;
        open.next_part += 1;
        let upload_id = open.upload_id.clone();
        open.running.spawn(async move {
            let md5 = md5_of(part.clone()).await?;
            let uploaded = store
                .upload_part(&key, &upload_id, number, part, Some(&md5))
                .await
                .context("cold UploadPart")?;
            Ok((uploaded, md5))
        });
        Ok(())
    }

    /// Starts the next part as a request whose body is pushed to it, `len` bytes in all.
    pub(crate) fn stream(&mut self, len: u64) -> StreamedPart {
        let (store, key) = (self.store.clone(), self.key.to_string());
        let open = self.open();
        let number = open.next_part;
        open.next_part += 1;
        let upload_id = open.upload_id.clone();
        let (chunks, receiver) = mpsc::channel(STREAM_QUEUE);
        let body = ChannelBody {
            chunks: receiver,
            len,
        };
        let upload = tokio::spawn(async move {
            store
                .upload_part_streamed(&key, &upload_id, number, len, body)
                .await
                .context("cold UploadPart (streamed)")
        });
        StreamedPart {
            number,
            chunks: Some(chunks),
            md5: Md5::new(),
            upload,
        }
    }

    /// Ends a streamed part and counts it in.
    pub(crate) async fn finish_streamed(&mut self, part: StreamedPart) -> anyhow::Result<()> {
        let done = part.finish().await?;
        self.open().done.push(done);
        Ok(())
    }

    /// Waits for every part upload in flight.
    pub(crate) async fn wait_all(&mut self) -> anyhow::Result<()> {
        self.open().wait_all().await
    }

    /// Hands the upload to a checkpoint, which must now outlive this run: its id, and its
    /// parts' MD5s in order. Call [`ColdUpload::wait_all`] first.
    pub(crate) fn hand_over(&mut self) -> (String, Vec<Md5Digest>) {
        let open = self.open.take().expect("the cold upload was started");
        let digests = open.digests();
        (open.upload_id, digests)
    }

    /// Completes the upload, unless its parts' MD5s miss `expected`; returns the ETag the
    /// cold store should now show.
    pub(crate) async fn complete(&mut self, expected: Option<&Md5Etag>) -> anyhow::Result<Md5Etag> {
        let (store, key) = (self.store, self.key);
        let open = self.open();
        open.wait_all().await?;
        let sent = Md5Etag::multipart(&open.digests());
        if let Some(expected) = expected
            && sent != *expected
        {
            return Err(corrupted_read(key, expected, Some(&sent)).into());
        }
        let parts: Vec<UploadedPart> = open.done.iter().map(|(p, _)| p.clone()).collect();
        let joined = store
            .complete_multipart(key, &open.upload_id, &parts)
            .await
            .context("cold CompleteMultipartUpload")?;
        if joined != Joined::Done {
            bail!("cold CompleteMultipartUpload refused: {joined:?}");
        }
        self.open = None;
        Ok(sent)
    }

    /// Cleans up after a copy that failed with `error`: stops the part uploads still running,
    /// so none lands after the abort, then aborts the upload; but keeps the checkpoint's
    /// upload for the next run, unless the bytes are wrong.
    pub(crate) async fn settle(self, error: &anyhow::Error) {
        let Some(mut open) = self.open else {
            return;
        };
        if self.saved.as_ref() == Some(&open.upload_id) && !is_bad_copy(error) {
            tracing::info!(
                key = self.key,
                "cold upload kept for the next run to resume"
            );
            return;
        }
        open.running.shutdown().await;
        if let Err(e) = self.store.abort_multipart(self.key, &open.upload_id).await {
            tracing::warn!(
                key = self.key,
                error = format!("{e:#}"),
                "cold multipart upload left open; the bucket's lifecycle rule is the backstop"
            );
        }
    }
}

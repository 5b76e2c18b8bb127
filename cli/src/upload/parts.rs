//! Sending an upload's parts: the file read once, in order, into a pool of part buffers
//! (one per part in flight, reused), each part hashed and PUT from the same buffer,
//! presigned in batches, sent in parallel with retries (jittered backoff) and fresh URLs when
//! storage refuses an expired one.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::io::{ErrorKind, Read as _};
use std::path::Path;
use std::sync::mpsc::{Receiver, Sender, SyncSender, channel};
use std::time::Duration;

use bytes::Bytes;
use filestore_contract::api::{MAX_PARTS_PER_CALL, PresignedPart};
use filestore_contract::domain::{PartNumber, PartPlan, Sha256Hex};
use futures::{StreamExt, stream};
use indicatif::ProgressBar;
use reqwest::Method;
use reqwest::header::CONTENT_LENGTH;

use super::Uploader;
use super::hash::StreamHasher;
use super::resume::{Plan, missing_parts};
use crate::error::{Error, Result};

/// Attempts per part for transient failures (network, 5xx, 408, 429).
const MAX_ATTEMPTS: u32 = 6;
/// Fresh URLs per part when storage refuses one (403: expired).
const MAX_PRESIGNS: u32 = 3;

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

/// A part's buffer lent to one read: given back to the pool when the last reference to
/// the part (the PUT, its retries, the hasher) is dropped.
struct Lent {
    buf: Vec<u8>,
    len: usize,
    home: Sender<Vec<u8>>,
}

impl AsRef<[u8]> for Lent {
    fn as_ref(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl Drop for Lent {
    fn drop(&mut self) {
        let _ = self.home.send(std::mem::take(&mut self.buf));
    }
}

/// At most `max` part buffers, each allocated (zeroed) once when first needed and reused for
/// every later part: the parts in flight are the upload's whole memory.
struct Pool {
    free: Receiver<Vec<u8>>,
    home: Sender<Vec<u8>>,
    made: usize,
    max: usize,
    capacity: usize,
}

impl Pool {
    fn new(max: usize, capacity: usize) -> Self {
        let (home, free) = channel();
        Self {
            free,
            home,
            made: 0,
            max: max.max(1),
            capacity,
        }
    }

    /// A free buffer, waiting for one to come back when all are lent.
    fn take(&mut self) -> Vec<u8> {
        if let Ok(buf) = self.free.try_recv() {
            return buf;
        }
        if self.made < self.max {
            self.made += 1;
            return vec![0u8; self.capacity];
        }
        self.free.recv().expect("the pool holds a sender")
    }
}

/// What the reader hands the senders: a part to PUT, or why reading stopped.
type Read = Result<(PartNumber, Bytes)>;

/// Reads every part of the file in order, each once into a pooled buffer: each goes to the
/// hasher, and those to send (`missing`) to `sends` as well. Stops early when the senders
/// are gone (an upload that failed).
fn read_parts(
    path: &Path,
    size: u64,
    plan: PartPlan,
    missing: &HashSet<PartNumber>,
    mut pool: Pool,
    hasher: &SyncSender<Bytes>,
    sends: &tokio::sync::mpsc::Sender<Read>,
) -> Result<()> {
    let context = || format!("reading {}", path.display());
    let mut file = std::fs::File::open(path).map_err(|e| Error::io(context(), e))?;
    for n in missing_parts(plan.part_count, &BTreeSet::new()) {
        if sends.is_closed() {
            return Ok(());
        }
        let (_, len) = plan.range(size, n);
        let len = usize::try_from(len).expect("a part fits in memory");
        let mut buf = pool.take();
        if let Err(e) = file.read_exact(&mut buf[..len]) {
            if e.kind() == ErrorKind::UnexpectedEof {
                return Err(changed(path, "it is shorter now"));
            }
            return Err(Error::io(context(), e));
        }
        let part = Bytes::from_owner(Lent {
            buf,
            len,
            home: pool.home.clone(),
        });
        if hasher.send(part.clone()).is_err() {
            return Err(Error::Failed("hashing stopped".to_string()));
        }
        if missing.contains(&n) && sends.blocking_send(Ok((n, part))).is_err() {
            return Ok(());
        }
    }
    Ok(())
}

/// The failure of an upload whose file changed while it was read.
pub(super) fn changed(path: &Path, why: &str) -> Error {
    Error::Failed(format!(
        "{} changed while it was being uploaded ({why}); nothing was stored, run the upload again",
        path.display()
    ))
}

/// What sending the parts did.
pub(super) struct Sent {
    pub parts: u64,
    pub bytes: u64,
    /// The SHA-256 of the whole file as read, every part in order (those S3 already held
    /// from an earlier run are read for it too).
    pub sha256: Sha256Hex,
}

impl Uploader<'_> {
    /// Reads the file once, part by part in order, hashing it as it goes, and sends the
    /// `missing` parts, `concurrency` at a time, presigning at most [`MAX_PARTS_PER_CALL`]
    /// per call. Buffers: `concurrency` parts.
    pub(super) async fn send_parts(
        &self,
        path: &Path,
        size: u64,
        plan: &Plan,
        missing: &[PartNumber],
        bar: &ProgressBar,
        parts_before: u64,
    ) -> Result<Sent> {
        let concurrency = self.options.concurrency.max(1);
        let capacity = usize::try_from(plan.parts.part_size.min(size)).expect("a part fits");
        let hasher = StreamHasher::start(concurrency);
        let (sends, mut reads) = tokio::sync::mpsc::channel::<Read>(concurrency);
        let reader = {
            let (path, parts, feed) = (path.to_path_buf(), plan.parts, hasher.feeder());
            let wanted: HashSet<PartNumber> = missing.iter().copied().collect();
            let pool = Pool::new(concurrency, capacity);
            tokio::task::spawn_blocking(move || {
                let read = read_parts(&path, size, parts, &wanted, pool, &feed, &sends);
                if let Err(e) = read {
                    let _ = sends.blocking_send(Err(e));
                }
            })
        };
        let (mut parts, mut bytes) = (0u64, 0u64);
        for batch in missing.chunks(MAX_PARTS_PER_CALL) {
            let mut urls: HashMap<u32, PresignedPart> = self
                .api
                .presign(&plan.upload_id, batch)
                .await?
                .into_iter()
                .map(|p| (p.part_number, p))
                .collect();
            let incoming = stream::unfold(&mut reads, |reads| async {
                let read = reads
                    .recv()
                    .await
                    .unwrap_or_else(|| Err(Error::Failed("reading the file stopped".to_string())));
                Some((read, reads))
            })
            .take(batch.len());
            let jobs = incoming.map(|read| {
                let url = read.as_ref().ok().and_then(|(n, _)| urls.remove(&n.get()));
                async move {
                    let (n, body) = read?;
                    let url = url.ok_or_else(|| not_presigned(n))?;
                    let len = body.len() as u64;
                    self.send_part(&plan.upload_id, n, url, body).await?;
                    bar.inc(len);
                    Ok::<u64, Error>(len)
                }
            });
            let mut running = std::pin::pin!(jobs.buffer_unordered(concurrency));
            while let Some(sent) = running.next().await {
                bytes += sent?;
                parts += 1;
                let total = parts_before + parts;
                if self.hooks.stop_after_parts == Some(total) {
                    return Err(Error::Failed(format!(
                        "interrupted after {total} parts (FILESTORE_TEST_STOP_AFTER_PARTS)"
                    )));
                }
                if self.hooks.pause_after_parts == Some(total) {
                    self.pause().await;
                }
            }
        }
        reader
            .await
            .map_err(|e| Error::Failed(format!("reading the file stopped: {e}")))?;
        // A failure after the last part to send (reading the parts S3 already held).
        if let Ok(Err(e)) = reads.try_recv() {
            return Err(e);
        }
        let sha256 = hasher.finish().await?;
        Ok(Sent {
            parts,
            bytes,
            sha256,
        })
    }

    /// `FILESTORE_TEST_PAUSE_AFTER_PARTS`: writes the `paused` marker into the config
    /// directory and waits (at most ten minutes) until the test removes it.
    async fn pause(&self) {
        let marker = self.config_dir.join("paused");
        if std::fs::write(&marker, b"").is_err() {
            return;
        }
        for _ in 0..60_000 {
            if !marker.exists() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// PUTs one part to its presigned URL with the URL's headers; retries transient
    /// failures with exponential backoff and presigns again when the URL is refused.
    async fn send_part(
        &self,
        upload_id: &str,
        part_number: PartNumber,
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
                .timeout(part_timeout(body.len() as u64))
                // The URL signs the part's length; hyper leaves the header out of an empty
                // body, so it is set here.
                .header(CONTENT_LENGTH, body.len());
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
                        .ok_or_else(|| not_presigned(part_number))?;
                }
                Outcome::Retry if attempts + 1 < MAX_ATTEMPTS => {
                    tokio::time::sleep(backoff(attempts, rand::random())).await;
                    attempts += 1;
                }
                _ => {
                    return Err(Error::Failed(format!(
                        "part {} was not stored: {why}; run the same upload again to resume",
                        part_number.get()
                    )));
                }
            }
        }
    }
}

fn not_presigned(part: PartNumber) -> Error {
    Error::Failed(format!("the server did not presign part {}", part.get()))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::upload::resume::missing_parts;

    const MIB: u64 = 1 << 20;

    #[test]
    fn presign_batches_stay_within_the_contract() {
        let missing = missing_parts(2500, &BTreeSet::new());
        let sizes: Vec<usize> = missing
            .chunks(MAX_PARTS_PER_CALL)
            .map(<[PartNumber]>::len)
            .collect();
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
}

//! Fetching a download's missing parts: ranged GETs of the presigned URL, several at once,
//! each streamed to its offset in the partial file through a small buffer, recorded in the
//! sidecar once written; transient failures retried, an expired URL replaced once for all.

use std::io::SeekFrom;
use std::ops::Range;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::Sender;
use std::time::Duration;

use futures::{StreamExt, stream};
use indicatif::ProgressBar;
use reqwest::StatusCode;
use reqwest::header::{CONTENT_RANGE, ETAG, RANGE};
use tokio::io::{AsyncSeekExt, AsyncWriteExt, BufWriter};

use super::parts::{self, PartState, Parts};
use crate::api::Api;
use crate::config::TestHooks;
use crate::error::{Error, Result};
use crate::upload::backoff;

/// Attempts per span for transient failures (network, 5xx, 408, 429, a cut transfer).
const MAX_ATTEMPTS: u32 = 6;
/// Fresh URLs per span when storage refuses one (403: expired).
const MAX_PRESIGNS: u32 = 3;
/// A GET that sends nothing for this long is given up and tried again.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Bytes buffered per GET before they are written: memory is this times the GETs in flight.
const WRITE_BUFFER: usize = 256 << 10;

/// Why fetching stopped.
pub enum Stop {
    /// Storage holds other bytes than the parts already written (another ETag or size): the
    /// partial download cannot be finished, only started over.
    Changed(String),
    Failed(Error),
}

impl From<Error> for Stop {
    fn from(e: Error) -> Self {
        Self::Failed(e)
    }
}

/// The presigned URL all GETs share, asked for on first use and replaced once when
/// storage refuses it, however many GETs met the refusal.
struct Url<'a> {
    api: &'a Api,
    file_id: &'a str,
    /// The URL and its generation (how many were asked for).
    current: tokio::sync::Mutex<Option<(u32, String)>>,
}

impl Url<'_> {
    async fn get(&self) -> Result<(u32, String)> {
        let mut current = self.current.lock().await;
        if current.is_none() {
            *current = Some((1, self.api.download_url(self.file_id).await?.url));
        }
        Ok(current.clone().expect("set above"))
    }

    /// Replaces the URL of generation `refused`, unless another GET already did.
    async fn refresh(&self, refused: u32) -> Result<()> {
        let mut current = self.current.lock().await;
        if current
            .as_ref()
            .is_none_or(|(generation, _)| *generation == refused)
        {
            let url = self.api.download_url(self.file_id).await?.url;
            *current = Some((refused + 1, url));
        }
        Ok(())
    }

    fn asked(&self) -> u32 {
        self.current
            .try_lock()
            .ok()
            .and_then(|c| c.as_ref().map(|(generation, _)| *generation))
            .unwrap_or(0)
    }
}

/// One GET's outcome short of success.
enum Attempt {
    /// 403: the URL expired; ask for another.
    Refused(String),
    /// Worth trying again after a pause.
    Retry(String),
    Stop(Stop),
}

/// What this run fetched.
pub struct Fetched {
    pub bytes: u64,
    pub parts: u64,
    /// Presigned URLs asked for.
    pub urls: u32,
}

/// A download in progress: the partial file `temp`, its sidecar, who to tell of each part
/// written.
pub struct Fetch<'a> {
    pub api: &'a Api,
    pub hooks: TestHooks,
    pub temp: &'a Path,
    pub bar: &'a ProgressBar,
    url: Url<'a>,
    state: Mutex<PartState>,
    written: Mutex<Sender<u64>>,
    bytes: AtomicU64,
    parts: AtomicU64,
}

impl<'a> Fetch<'a> {
    pub fn new(
        api: &'a Api,
        hooks: TestHooks,
        file_id: &'a str,
        temp: &'a Path,
        bar: &'a ProgressBar,
        state: PartState,
        written: Sender<u64>,
    ) -> Self {
        Self {
            api,
            hooks,
            temp,
            bar,
            url: Url {
                api,
                file_id,
                current: tokio::sync::Mutex::new(None),
            },
            state: Mutex::new(state),
            written: Mutex::new(written),
            bytes: AtomicU64::new(0),
            parts: AtomicU64::new(0),
        }
    }

    /// Fetches `spans` (runs of parts, one GET each), `concurrency` at a time. Stops at the
    /// first span that fails; what was written until then stays recorded.
    pub async fn run(self, spans: Vec<Range<u64>>, concurrency: usize) -> Result<Fetched, Stop> {
        let this = &self;
        let mut running = stream::iter(spans.into_iter().map(|span| this.span(span)))
            .buffer_unordered(concurrency);
        while let Some(done) = running.next().await {
            done?;
        }
        drop(running);
        Ok(Fetched {
            bytes: self.bytes.load(Ordering::Relaxed),
            parts: self.parts.load(Ordering::Relaxed),
            urls: self.url.asked(),
        })
    }

    fn parts(&self) -> Parts {
        self.state.lock().expect("state lock").parts()
    }

    /// The span's parts not yet written (an earlier attempt may have written its first).
    fn missing(&self, span: &Range<u64>) -> Option<Range<u64>> {
        let state = self.state.lock().expect("state lock");
        let first = span.clone().find(|n| !state.done.contains(n))?;
        Some(first..span.end)
    }

    /// Fetches one span, retrying from its first part not yet written.
    async fn span(&self, span: Range<u64>) -> Result<(), Stop> {
        let (mut attempts, mut presigns) = (0u32, 0u32);
        while let Some(missing) = self.missing(&span) {
            let (generation, url) = self.url.get().await?;
            let why = match self.get(&url, missing).await {
                Ok(()) => continue,
                Err(Attempt::Stop(stop)) => return Err(stop),
                Err(Attempt::Refused(_)) if presigns < MAX_PRESIGNS => {
                    presigns += 1;
                    self.url.refresh(generation).await?;
                    continue;
                }
                Err(Attempt::Retry(_)) if attempts + 1 < MAX_ATTEMPTS => {
                    tokio::time::sleep(backoff(attempts, rand::random())).await;
                    attempts += 1;
                    continue;
                }
                Err(Attempt::Refused(why) | Attempt::Retry(why)) => why,
            };
            return Err(Stop::Failed(Error::Failed(format!(
                "{why}; run the same download again to resume"
            ))));
        }
        Ok(())
    }

    /// One GET of parts `missing`, streamed into the partial file; each part is recorded as
    /// soon as its last byte is written and synced.
    async fn get(&self, url: &str, missing: Range<u64>) -> Result<(), Attempt> {
        let parts = self.parts();
        let bytes = parts.bytes(&missing);
        // The whole file in one stream needs no Range (and an empty file could have none).
        let whole = bytes.start == 0 && bytes.end == parts.size;
        let mut req = self.api.http().get(url);
        if !whole {
            req = req.header(RANGE, format!("bytes={}-{}", bytes.start, bytes.end - 1));
        }
        let mut resp = match req.send().await {
            Ok(resp) => resp,
            Err(e) => return Err(Attempt::Retry(Error::transport("storage", &e).to_string())),
        };
        match resp.status() {
            StatusCode::OK if whole => {}
            StatusCode::PARTIAL_CONTENT if !whole => {
                let answered = resp
                    .headers()
                    .get(CONTENT_RANGE)
                    .and_then(|v| v.to_str().ok());
                let asked = format!("bytes {}-{}/{}", bytes.start, bytes.end - 1, parts.size);
                if answered != Some(asked.as_str()) {
                    return Err(changed(format!(
                        "storage answered {answered:?} to a request for {asked}"
                    )));
                }
            }
            StatusCode::OK => {
                return Err(Attempt::Stop(Stop::Failed(Error::Failed(
                    "storage ignored the Range header of a part's GET".into(),
                ))));
            }
            StatusCode::RANGE_NOT_SATISFIABLE => {
                return Err(changed(format!(
                    "storage holds fewer than the file's {} bytes",
                    parts.size
                )));
            }
            StatusCode::FORBIDDEN => return Err(Attempt::Refused("storage answered 403".into())),
            s if matches!(s.as_u16(), 408 | 429) || s.is_server_error() => {
                return Err(Attempt::Retry(format!("storage answered {s}")));
            }
            s => {
                return Err(Attempt::Stop(Stop::Failed(Error::Failed(format!(
                    "storage answered {s} for the download URL"
                )))));
            }
        }
        self.same_object(resp.headers().get(ETAG).and_then(|v| v.to_str().ok()))?;

        let io = |e| {
            Attempt::Stop(Stop::Failed(Error::io(
                format!("writing {}", self.temp.display()),
                e,
            )))
        };
        let mut file = tokio::fs::OpenOptions::new()
            .write(true)
            .open(self.temp)
            .await
            .map_err(io)?;
        file.seek(SeekFrom::Start(bytes.start)).await.map_err(io)?;
        let mut writer = BufWriter::with_capacity(WRITE_BUFFER, file);
        let (mut at, mut part) = (bytes.start, missing.start);
        // Bytes of the part being written, taken back from the bar if the GET breaks off.
        let mut unrecorded = 0;
        let cut = |why: String, unrecorded: u64| {
            self.bar.dec(unrecorded);
            Attempt::Retry(why)
        };
        loop {
            let chunk = match tokio::time::timeout(IDLE_TIMEOUT, resp.chunk()).await {
                Ok(Ok(Some(chunk))) => chunk,
                Ok(Ok(None)) => break,
                Ok(Err(e)) => {
                    return Err(cut(Error::transport("storage", &e).to_string(), unrecorded));
                }
                Err(_) => {
                    return Err(cut(
                        format!("storage sent nothing for {IDLE_TIMEOUT:?}"),
                        unrecorded,
                    ));
                }
            };
            let len = chunk.len() as u64;
            if at + len > bytes.end {
                return Err(Attempt::Stop(Stop::Failed(Error::Failed(format!(
                    "storage sent more than the {} bytes asked for",
                    bytes.end - bytes.start
                )))));
            }
            writer.write_all(&chunk).await.map_err(io)?;
            at += len;
            unrecorded += len;
            self.bytes.fetch_add(len, Ordering::Relaxed);
            self.bar.inc(len);
            while part < missing.end && at >= parts.range(part).end {
                writer.flush().await.map_err(io)?;
                writer.get_ref().sync_data().await.map_err(io)?;
                self.record(part).map_err(Attempt::Stop)?;
                unrecorded = at - parts.range(part).end;
                part += 1;
            }
        }
        if at < bytes.end {
            return Err(cut(
                format!(
                    "storage ended the transfer after {} of {} bytes",
                    at - bytes.start,
                    bytes.end - bytes.start
                ),
                unrecorded,
            ));
        }
        Ok(())
    }

    /// Checks that a GET reads the object earlier parts came from (the first GET names it).
    fn same_object(&self, etag: Option<&str>) -> Result<(), Attempt> {
        let Some(etag) = etag else { return Ok(()) };
        let mut state = self.state.lock().expect("state lock");
        match &state.etag {
            Some(known) if known != etag => Err(changed(format!(
                "storage's copy changed since the parts already downloaded (ETag {known} is now {etag})"
            ))),
            Some(_) => Ok(()),
            None => {
                state.etag = Some(etag.to_string());
                Ok(())
            }
        }
    }

    /// Records part `n` as written: in the sidecar (so a re-run skips it), to the hasher,
    /// and to the test hook that interrupts a download after so many parts.
    fn record(&self, n: u64) -> Result<(), Stop> {
        {
            let mut state = self.state.lock().expect("state lock");
            state.done.insert(n);
            parts::save(self.temp, &state)?;
        }
        let _ = self.written.lock().expect("sender lock").send(n);
        let fetched = self.parts.fetch_add(1, Ordering::Relaxed) + 1;
        if self.hooks.stop_after_parts == Some(fetched) {
            return Err(Stop::Failed(Error::Failed(format!(
                "interrupted after {fetched} parts (FILESTORE_TEST_STOP_AFTER_PARTS)"
            ))));
        }
        Ok(())
    }
}

fn changed(why: String) -> Attempt {
    Attempt::Stop(Stop::Changed(why))
}

//! Transfer faults the emulator cannot produce on demand, injected on the wire: the S3
//! clients of the very code that runs in Lambda get an interceptor that cuts, corrupts or
//! fails one exchange with the real emulator. Whatever the fault, nothing is lost and nothing
//! is wrongly verified: the message fails (so SQS retries it), the File stays unverified, no
//! content record is written, the hot bytes are intact, the cold store keeps no object and no
//! open multipart upload, and the retry without the fault verifies the true bytes.

use std::pin::Pin;
use std::task::{Context, Poll};

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_s3::config::interceptors::{
    BeforeDeserializationInterceptorContextMut, BeforeTransmitInterceptorContextMut,
    BeforeTransmitInterceptorContextRef,
};
use aws_sdk_s3::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_s3::primitives::SdkBody;
use aws_smithy_types::config_bag::{Storable, StoreReplace};
use bytes::Bytes;
use filestore_dev::{LocalSystem, Options};
use filestore_shared::keys::PROOF_DECOY_KEY;
use filestore_shared::repo::TransferCheckpoint;
use filestore_shared::{AppState, metrics};
use filestore_transfer::{Checkpoint, Tuning};
use filestore_transfer::{Limits, Requeue};
use http_body::Frame;

use crate::helpers::{MIB, TestApp, output, s3_event, sha256_hex, sqs_batch, test_bytes};
use filestore_contract::domain::FileId;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What happens to the hot object's bytes on their way to the transfer.
#[derive(Clone, Copy, Debug)]
enum ReadFault {
    /// The connection fails after this many bytes.
    FailAfter(usize),
    /// The body ends, without an error, after this many bytes.
    EndAfter(usize),
    /// The byte at this offset arrives with a bit flipped.
    FlipBitAt(usize),
}

/// A response body that delivers the real one with a [`ReadFault`].
struct FaultyBody {
    inner: SdkBody,
    fault: ReadFault,
    offset: usize,
    cut: bool,
}

impl http_body::Body for FaultyBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        if this.cut {
            return Poll::Ready(match this.fault {
                ReadFault::FailAfter(_) => Some(Err("connection reset (injected)".into())),
                _ => None,
            });
        }
        let frame = match std::task::ready!(Pin::new(&mut this.inner).poll_frame(cx)) {
            Some(Ok(frame)) => frame,
            other => return Poll::Ready(other),
        };
        let mut data = match frame.into_data() {
            Ok(data) => data,
            Err(trailers) => return Poll::Ready(Some(Ok(trailers))),
        };
        let start = this.offset;
        this.offset += data.len();
        match this.fault {
            ReadFault::FailAfter(at) | ReadFault::EndAfter(at) if this.offset >= at => {
                data.truncate(at.saturating_sub(start));
                this.cut = true;
            }
            ReadFault::FlipBitAt(at) if (start..this.offset).contains(&at) => {
                let mut flipped = data.to_vec();
                flipped[at - start] ^= 0x10;
                data = Bytes::from(flipped);
            }
            _ => {}
        }
        Poll::Ready(Some(Ok(Frame::data(data))))
    }
}

/// Marks an operation whose response gets the fault: the request is gone (sent) by the time
/// the response arrives, and the operation's config bag is what the two hooks share.
#[derive(Clone, Debug)]
struct Targeted;

impl Storable for Targeted {
    type Storer = StoreReplace<Self>;
}

/// Puts a [`ReadFault`] on every successful GET's body.
#[derive(Debug)]
struct HotReadFault(ReadFault);

impl Intercept for HotReadFault {
    fn name(&self) -> &'static str {
        "HotReadFault"
    }

    fn read_before_signing(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if context.request().method() == "GET" {
            cfg.interceptor_state().store_put(Targeted);
        }
        Ok(())
    }

    fn modify_before_deserialization(
        &self,
        context: &mut BeforeDeserializationInterceptorContextMut<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if cfg.load::<Targeted>().is_some() && context.response().status().is_success() {
            let inner = context.response_mut().take_body();
            *context.response_mut().body_mut() = SdkBody::from_body_1_x(FaultyBody {
                inner,
                fault: self.0,
                offset: 0,
                cut: false,
            });
        }
        Ok(())
    }
}

/// What happens to the transfer's writes to the cold store. Parts count from 1; part 0 is a
/// single `PutObject`.
#[derive(Clone, Copy, Debug)]
enum WriteFault {
    /// The store answers every attempt at uploading this part with a 500 `InternalError`.
    Refuse(u32),
    /// The store keeps this part with a bit flipped. Its `Content-MD5` is sent unchanged:
    /// S3 would refuse the part, moto does not check it and keeps it.
    FlipBit(u32),
    /// The store keeps this part one byte short.
    DropLastByte(u32),
}

/// Which part a request writes: `Some(0)` for a `PutObject`, `None` for anything else.
fn part_written(method: &str, uri: &str) -> Option<u32> {
    if method != "PUT" {
        return None;
    }
    let query = uri.split_once('?').map_or("", |(_, q)| q);
    match query
        .split('&')
        .find_map(|pair| pair.strip_prefix("partNumber="))
    {
        Some(n) => n.parse().ok(),
        None => Some(0),
    }
}

/// Puts a [`WriteFault`] on one part written to the cold store.
#[derive(Debug)]
struct ColdWriteFault(WriteFault);

impl Intercept for ColdWriteFault {
    fn name(&self) -> &'static str {
        "ColdWriteFault"
    }

    /// Changes the bytes before the request is signed, as a store that keeps other bytes
    /// than it was sent would.
    fn modify_before_signing(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let request = context.request_mut();
        let part = part_written(request.method(), request.uri());
        if matches!(self.0, WriteFault::Refuse(n) if part == Some(n)) {
            cfg.interceptor_state().store_put(Targeted);
        }
        let mut bytes = match (self.0, request.body().bytes()) {
            (WriteFault::FlipBit(n) | WriteFault::DropLastByte(n), Some(bytes))
                if part == Some(n) && !bytes.is_empty() =>
            {
                bytes.to_vec()
            }
            _ => return Ok(()),
        };
        match self.0 {
            WriteFault::FlipBit(_) => {
                let middle = bytes.len() / 2;
                bytes[middle] ^= 0x01;
            }
            _ => {
                bytes.pop();
            }
        }
        request
            .headers_mut()
            .insert("content-length", bytes.len().to_string());
        *request.body_mut() = SdkBody::from(bytes);
        Ok(())
    }

    fn modify_before_deserialization(
        &self,
        context: &mut BeforeDeserializationInterceptorContextMut<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if cfg.load::<Targeted>().is_some() {
            let body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>InternalError</Code><Message>injected</Message></Error>";
            let response = context.response_mut();
            *response.status_mut() = 500u16.try_into()?;
            response
                .headers_mut()
                .insert("content-length", body.len().to_string());
            response
                .headers_mut()
                .insert("content-type", "application/xml");
            *response.body_mut() = SdkBody::from(body);
        }
        Ok(())
    }
}

/// A system of its own whose queue nobody consumes (the test delivers the event itself),
/// holding one uploaded file that is not verified yet.
struct Staged {
    local: LocalSystem,
    app: TestApp,
    data: Vec<u8>,
    file_id: FileId,
    key: String,
}

impl Staged {
    /// `part_size`: the hot upload's parts.
    async fn new(size: usize, part_size: usize, seed: u64) -> Self {
        let mut options = Options::isolated();
        options.run_worker = false;
        let local = LocalSystem::start(options).await.unwrap();
        let app = TestApp::new_at(&local.base_url()).await;
        let data = test_bytes(size, seed);
        let file = app.upload("fault.bin", &data, Some(part_size)).await;
        let file_id = file.file_id;
        let key = format!("files/{}/{file_id}", app.user_id);
        Self {
            local,
            app,
            data,
            file_id,
            key,
        }
    }

    fn with_hot_fault(&self, fault: ReadFault) -> AppState {
        let mut state = (*self.local.state).clone();
        state.storage = state.storage.with_interceptor(HotReadFault(fault));
        state
    }

    fn with_cold_fault(&self, fault: WriteFault) -> AppState {
        let mut state = (*self.local.state).clone();
        state.cold = state
            .cold
            .as_ref()
            .map(|cold| cold.with_interceptor(ColdWriteFault(fault)));
        state
    }

    /// Delivers the object's S3 event to the transfer function; `true` if it was handled.
    async fn deliver(&self, state: &AppState) -> bool {
        self.deliver_within(state, &self.event(), &Limits::default())
            .await
    }

    fn event(&self) -> serde_json::Value {
        s3_event(
            &self.local.state.config.hot_bucket,
            &self.key,
            self.data.len(),
        )
    }

    /// Delivers a message with `body` to a run of the transfer function within `limits`;
    /// `true` if it was handled.
    async fn deliver_within(
        &self,
        state: &AppState,
        body: &serde_json::Value,
        limits: &Limits,
    ) -> bool {
        let response = filestore_transfer::handler(state, sqs_batch(body), limits).await;
        response.batch_item_failures.is_empty()
    }

    /// Nothing lost, nothing wrongly verified, nothing left in the cold store.
    async fn assert_nothing_verified_or_left(&self) {
        let state = &self.local.state;
        let file = state
            .repo
            .get_file(&self.app.user_id, &self.file_id)
            .await
            .unwrap()
            .unwrap();
        // One value holds verified, sha1, cold_key and tier, so nothing of a copy is recorded.
        assert_eq!(
            file.copies,
            filestore_shared::repo::Copies::Unverified,
            "wrongly verified: {file:?}"
        );
        let sdk =
            filestore_dev::local_sdk_config(&self.local.endpoint_url(), &state.config.region).await;
        let contents = aws_sdk_dynamodb::Client::new(&sdk)
            .scan()
            .table_name(&state.config.table)
            .filter_expression("SK = :content")
            .expression_attribute_values(":content", AttributeValue::S("CONTENT".into()))
            .send()
            .await
            .unwrap();
        assert!(
            contents.items().is_empty(),
            "content recorded: {:?}",
            contents.items()
        );

        let hot = state
            .storage
            .read(&self.key, 0)
            .await
            .unwrap()
            .unwrap()
            .body
            .collect()
            .await
            .unwrap();
        assert!(hot == self.data, "hot bytes changed");

        let cold = state.cold.as_ref().unwrap();
        // Only instant upload's proof decoy, which provisioning put there.
        let mut objects = cold.list("").await.unwrap();
        objects.retain(|o| o.key != PROOF_DECOY_KEY);
        assert!(objects.is_empty(), "cold objects left: {objects:?}");
        let uploads = cold.open_uploads("").await.unwrap();
        assert!(
            uploads.is_empty(),
            "cold multipart uploads left open: {uploads:?}"
        );
    }

    /// Delivers the event through `faulty`, which must fail it (`caught` says what would be
    /// wrong otherwise) leaving nothing verified or behind; then SQS's retry, without the
    /// fault, verifies the true bytes.
    async fn assert_fault_caught(self, faulty: &AppState, caught: &str) {
        assert!(!self.deliver(faulty).await, "{caught}");
        self.assert_nothing_verified_or_left().await;
        self.assert_retry_verifies().await;
    }

    /// SQS's retry, without the fault, verifies the true bytes and stores them cold.
    async fn assert_retry_verifies(self) {
        assert!(self.deliver(&self.local.state).await, "the retry failed");
        let state = &self.local.state;
        let digest = sha256_hex(&self.data);
        let file = state
            .repo
            .get_file(&self.app.user_id, &self.file_id)
            .await
            .unwrap()
            .unwrap();
        assert!(file.verified());
        assert_eq!(file.sha256.as_deref(), Some(digest.as_str()));
        let content = state.repo.get_content(&digest).await.unwrap().unwrap();
        assert_eq!(content.refs, 1);
        let cold = state.cold.as_ref().unwrap();
        let stored = cold
            .read(&content.cold_key, 0)
            .await
            .unwrap()
            .unwrap()
            .body
            .collect()
            .await
            .unwrap();
        assert!(stored == self.data, "cold copy differs");
        self.local.stop().await;
    }
}

/// A corrupted copy counts one verification failure in the metrics of the run that caught
/// it (run as Lambda runs it, one invocation); a read that merely fails is no such failure,
/// and the retry that verifies counts the object's bytes instead.
#[tokio::test]
async fn a_corrupted_copy_counts_a_verification_failure() {
    let staged = Staged::new(12 * MIB, PART, 64).await;
    let run = async |state: &AppState| {
        let id = uuid::Uuid::new_v4().to_string();
        let handled = metrics::invocation("transfer", &id, staged.deliver(state)).await;
        let counted =
            |metric: metrics::Metric| output::metric_of(&id, metric.name).and_then(|v| v.as_f64());
        (
            handled,
            counted(metrics::TRANSFER_VERIFICATION_FAILURES),
            counted(metrics::TRANSFER_BYTES),
        )
    };
    let corrupted = staged.with_hot_fault(ReadFault::FlipBitAt(7 * MIB + 3));
    assert_eq!(run(&corrupted).await, (false, Some(1.0), None));
    let failing = staged.with_hot_fault(ReadFault::FailAfter(6 * MIB));
    assert_eq!(run(&failing).await, (false, None, None));
    let size = (12 * MIB) as f64;
    assert_eq!(run(&staged.local.state).await, (true, None, Some(size)));
    staged.local.stop().await;
}

/// 34 MiB in 5 MiB hot parts, which the cold copy follows, so a fault can strike with parts
/// already in the cold store.
const SIZE: usize = 34 * MIB;
const PART: usize = 5 * MIB;

/// The hot object's connection fails mid-read, after a cold part was written: the cold
/// multipart upload is aborted.
#[tokio::test]
async fn hot_read_failing_mid_stream_verifies_nothing_and_aborts_the_cold_upload() {
    let staged = Staged::new(SIZE, PART, 61).await;
    let faulty = staged.with_hot_fault(ReadFault::FailAfter(20 * MIB));
    staged
        .assert_fault_caught(&faulty, "a failed read was handled")
        .await;
}

/// The hot body ends early without an error: fewer bytes than the File's size are never
/// taken for the whole.
#[tokio::test]
async fn hot_read_ending_early_verifies_nothing() {
    let staged = Staged::new(SIZE, PART, 62).await;
    let faulty = staged.with_hot_fault(ReadFault::EndAfter(20 * MIB));
    staged
        .assert_fault_caught(&faulty, "a short read was handled")
        .await;
}

/// A bit flipped between the hot bucket and the transfer: the bytes read no longer match the
/// hot object's ETag (here made of the cold parts' MD5s, which follow the hot parts), so they
/// are neither completed as a cold copy nor recorded under the hash of the corrupted bytes.
#[tokio::test]
async fn corrupted_hot_read_is_caught_by_the_hot_etag() {
    let staged = Staged::new(SIZE, PART, 63).await;
    let faulty = staged.with_hot_fault(ReadFault::FlipBitAt(17 * MIB + 5));
    staged
        .assert_fault_caught(&faulty, "a corrupted read was handled")
        .await;
}

/// The same with hot parts too large for the cold copy to follow: the hashing thread
/// computes the hot ETag from the hot part size, and catches the flipped bit.
#[tokio::test]
async fn corrupted_hot_read_of_large_hot_parts_is_caught_by_the_hot_etag() {
    let staged = Staged::new(40 * MIB, 36 * MIB, 67).await;
    let faulty = staged.with_hot_fault(ReadFault::FlipBitAt(37 * MIB + 5));
    staged
        .assert_fault_caught(&faulty, "a corrupted read was handled")
        .await;
}

/// The cold store answers one part upload with 500 on every attempt (the SDK retries it
/// first): the cold multipart upload is aborted.
#[tokio::test]
async fn cold_part_upload_failing_aborts_the_cold_upload() {
    let staged = Staged::new(SIZE, PART, 64).await;
    let faulty = staged.with_cold_fault(WriteFault::Refuse(2));
    staged
        .assert_fault_caught(&faulty, "a failed part upload was handled")
        .await;
}

/// The cold store keeps other bytes than it was sent in one part: the check after the write
/// finds the cold ETag differs from the MD5s of the parts sent, and deletes the copy.
#[tokio::test]
async fn cold_copy_with_other_bytes_is_caught_and_deleted() {
    let staged = Staged::new(SIZE, PART, 65).await;
    let faulty = staged.with_cold_fault(WriteFault::FlipBit(2));
    staged
        .assert_fault_caught(&faulty, "a corrupted cold copy was recorded")
        .await;
}

/// The cold store keeps a copy one byte short: the check after the write finds the size
/// differs, and deletes the copy.
#[tokio::test]
async fn cold_copy_short_of_a_byte_is_caught_and_deleted() {
    let staged = Staged::new(3 * MIB + 11, PART, 66).await;
    let faulty = staged.with_cold_fault(WriteFault::DropLastByte(1));
    staged
        .assert_fault_caught(&faulty, "a short cold copy was recorded")
        .await;
}

// --- Transfers that take more than one run ----------------------------------------------

/// The transfer queue of a test: the continuations a run sends, collected by the test.
struct Continuations {
    sqs: aws_sdk_sqs::Client,
    url: String,
}

impl Continuations {
    async fn new(staged: &Staged) -> Self {
        let sdk = filestore_dev::local_sdk_config(
            &staged.local.endpoint_url(),
            &staged.local.state.config.region,
        )
        .await;
        let sqs = aws_sdk_sqs::Client::new(&sdk);
        let url = sqs
            .create_queue()
            .queue_name(format!("continuations-{}", uuid::Uuid::now_v7()))
            .send()
            .await
            .unwrap()
            .queue_url
            .unwrap();
        Self { sqs, url }
    }

    /// Runs that stop after every part, continuing on this queue.
    fn every_part(&self) -> Limits {
        Limits {
            stop_at: Some(std::time::Instant::now()),
            requeue: Some(Requeue::new(self.sqs.clone(), &self.url)),
            tuning: Tuning::default(),
        }
    }

    /// The continuations sent since the last call, as message bodies.
    async fn take(&self) -> Vec<serde_json::Value> {
        let out = self
            .sqs
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(10)
            .send()
            .await
            .unwrap();
        let mut bodies = Vec::new();
        for message in out.messages() {
            bodies.push(serde_json::from_str(message.body().unwrap()).unwrap());
            self.sqs
                .delete_message()
                .queue_url(&self.url)
                .receipt_handle(message.receipt_handle().unwrap())
                .send()
                .await
                .unwrap();
        }
        bodies
    }
}

impl Staged {
    async fn checkpoint(&self) -> Option<(TransferCheckpoint, Checkpoint)> {
        let saved = self
            .local
            .state
            .repo
            .get_transfer(&self.file_id)
            .await
            .unwrap()?;
        let unpacked = Checkpoint::unpack(&saved.state, &saved.blob).unwrap();
        Some((saved, unpacked))
    }

    async fn open_cold_uploads(&self) -> Vec<String> {
        let cold = self.local.state.cold.as_ref().unwrap();
        cold.open_uploads("")
            .await
            .unwrap()
            .into_iter()
            .map(|u| u.upload_id)
            .collect()
    }

    fn continuation(&self) -> serde_json::Value {
        serde_json::from_str(&Requeue::body(&self.key)).unwrap()
    }

    /// Runs the transfer, a part per run, until a run sends no continuation; returns the
    /// number of runs.
    async fn run_to_the_end(&self, queue: &Continuations) -> usize {
        self.run_to_the_end_with(queue, Tuning::default()).await
    }

    async fn run_to_the_end_with(&self, queue: &Continuations, tuning: Tuning) -> usize {
        let limits = Limits {
            tuning,
            ..queue.every_part()
        };
        for runs in 1..=20 {
            assert!(
                self.deliver_within(&self.local.state, &self.continuation(), &limits)
                    .await,
                "run {runs} failed"
            );
            if queue.take().await.is_empty() {
                return runs;
            }
        }
        panic!("the transfer did not end in 20 runs");
    }
}

/// A copy longer than one run stops at a part boundary, saves a checkpoint and continues in
/// a new message; runs that fail or are killed midway lose nothing; the copy that ends is the
/// true bytes, verified, with no checkpoint or cold upload left behind.
#[tokio::test]
async fn a_transfer_continues_over_runs_and_survives_runs_that_fail_or_die() {
    let staged = Staged::new(SIZE, PART, 71).await;
    let queue = Continuations::new(&staged).await;
    let state = staged.local.state.clone();

    assert!(
        staged
            .deliver_within(&state, &staged.event(), &queue.every_part())
            .await
    );
    let (saved, checkpoint) = staged.checkpoint().await.expect("a checkpoint");
    assert_eq!((saved.version, checkpoint.part_md5s.len()), (1, 1));
    assert_eq!(checkpoint.offset(), PART as u64);
    assert_eq!(queue.take().await, [staged.continuation()]);
    let file = state
        .repo
        .get_file(&staged.app.user_id, &staged.file_id)
        .await
        .unwrap()
        .unwrap();
    assert!(!file.verified());
    assert_eq!(
        staged.open_cold_uploads().await,
        vec![saved.cold_upload_id.clone()]
    );

    // The next run fails (the cold store refuses part 2): the message goes back to the queue,
    // and the checkpoint and its upload stay for the retry.
    let refusing = staged.with_cold_fault(WriteFault::Refuse(2));
    assert!(
        !staged
            .deliver_within(&refusing, &staged.continuation(), &queue.every_part())
            .await
    );
    assert_eq!(staged.checkpoint().await.unwrap().0, saved);
    assert_eq!(
        staged.open_cold_uploads().await,
        vec![saved.cold_upload_id.clone()]
    );
    assert!(queue.take().await.is_empty());

    // Runs killed at any moment, as Lambda stops one whose time is up mid-call.
    let (next, limits) = (staged.continuation(), queue.every_part());
    for ms in [1, 10, 40, 120] {
        let run = staged.deliver_within(&state, &next, &limits);
        let _ = tokio::time::timeout(std::time::Duration::from_millis(ms), run).await;
    }
    queue.take().await;

    let runs = staged.run_to_the_end(&queue).await;
    assert!(runs >= 2, "{runs} runs");
    assert!(staged.checkpoint().await.is_none(), "checkpoint left");
    assert!(staged.open_cold_uploads().await.is_empty());
    staged.assert_retry_verifies().await;
}

/// A part read wrong in one run is only found at the end, by the hot ETag, in another: the
/// whole copy is dropped (upload aborted, checkpoint removed), nothing is verified, and the
/// retry starts over and verifies the true bytes.
#[tokio::test]
async fn a_corrupted_part_from_an_earlier_run_fails_the_copy_and_it_starts_over() {
    let staged = Staged::new(SIZE, PART, 72).await;
    let queue = Continuations::new(&staged).await;
    let flipping = staged.with_hot_fault(ReadFault::FlipBitAt(1000));
    assert!(
        staged
            .deliver_within(&flipping, &staged.event(), &queue.every_part())
            .await
    );
    assert!(staged.checkpoint().await.is_some());
    assert!(
        !staged
            .deliver_within(
                &staged.local.state,
                &staged.continuation(),
                &Limits::default()
            )
            .await,
        "a part read wrong in an earlier run went unnoticed"
    );
    assert!(staged.checkpoint().await.is_none(), "checkpoint left");
    staged.assert_nothing_verified_or_left().await;
    staged.assert_retry_verifies().await;
}

/// Two runs go on from one checkpoint at once (a continuation delivered twice): only one
/// moves the checkpoint on, and the copy still ends verified.
#[tokio::test]
async fn two_runs_from_one_checkpoint_move_it_on_once() {
    let staged = Staged::new(SIZE, PART, 73).await;
    let queue = Continuations::new(&staged).await;
    let state = &staged.local.state;
    assert!(
        staged
            .deliver_within(state, &staged.event(), &queue.every_part())
            .await
    );
    queue.take().await;
    let (next, limits) = (staged.continuation(), queue.every_part());
    let (a, b) = tokio::join!(
        staged.deliver_within(state, &next, &limits),
        staged.deliver_within(state, &next, &limits),
    );
    assert!(a && b);
    let (saved, checkpoint) = staged.checkpoint().await.unwrap();
    assert_eq!((saved.version, checkpoint.part_md5s.len()), (2, 2));
    assert_eq!(queue.take().await.len(), 1, "one continuation");
    staged.run_to_the_end(&queue).await;
    assert!(staged.open_cold_uploads().await.is_empty());
    staged.assert_retry_verifies().await;
}

/// Hot parts too large for the cold copy to follow: the hot ETag is computed across runs, from
/// a midstate in the checkpoint, and still catches a byte read wrong in an earlier run.
#[tokio::test]
async fn large_hot_parts_are_checked_across_runs() {
    let staged = Staged::new(40 * MIB, 36 * MIB, 74).await;
    let queue = Continuations::new(&staged).await;
    // Bytes 18 MiB into the object, in the middle of hot part 1 (0..36 MiB), whose MD5 the
    // first run began and the second goes on with.
    let flipping = staged.with_hot_fault(ReadFault::FlipBitAt(2 * MIB));
    let limits = Limits {
        stop_at: None,
        ..queue.every_part()
    };
    // The first run copies cold part 1 (0..16 MiB) and stops; the second reads from 16 MiB,
    // with a flipped bit.
    assert!(
        staged
            .deliver_within(&staged.local.state, &staged.event(), &queue.every_part())
            .await
    );
    let (_, checkpoint) = staged.checkpoint().await.unwrap();
    assert!(!checkpoint.aligned);
    assert_eq!(
        checkpoint.offset(),
        filestore_transfer::copy::COLD_PART_SIZE
    );
    assert!(
        !staged
            .deliver_within(&flipping, &staged.continuation(), &queue.every_part())
            .await
            || !staged
                .deliver_within(&staged.local.state, &staged.continuation(), &limits)
                .await,
        "a bit flipped in a later run went unnoticed"
    );
    staged.assert_nothing_verified_or_left().await;
    queue.take().await;

    assert!(
        staged
            .deliver_within(&staged.local.state, &staged.event(), &queue.every_part())
            .await
    );
    assert!(queue.take().await.len() == 1);
    assert!(staged.run_to_the_end(&queue).await >= 1);
    staged.assert_retry_verifies().await;
}

/// Parts too large to hold (objects over 160 GiB) are streamed to the cold store as they are
/// read; here 5 MiB parts are made to count as such. A copy of streamed parts goes over runs,
/// survives a run whose part the store refuses, and ends verified.
#[tokio::test]
async fn streamed_parts_continue_over_runs() {
    let staged = Staged::new(SIZE, PART, 75).await;
    let queue = Continuations::new(&staged).await;
    let streamed = Tuning {
        stream_over: MIB as u64,
        ..Tuning::default()
    };
    let limits = Limits {
        tuning: streamed,
        ..queue.every_part()
    };
    assert!(
        staged
            .deliver_within(&staged.local.state, &staged.event(), &limits)
            .await
    );
    let (_, checkpoint) = staged.checkpoint().await.unwrap();
    assert_eq!(checkpoint.part_md5s.len(), 1);
    queue.take().await;
    let refusing = staged.with_cold_fault(WriteFault::Refuse(2));
    assert!(
        !staged
            .deliver_within(&refusing, &staged.continuation(), &limits)
            .await
    );
    assert_eq!(staged.checkpoint().await.unwrap().1, checkpoint);
    assert!(staged.run_to_the_end_with(&queue, streamed).await >= 2);
    assert!(staged.open_cold_uploads().await.is_empty());
    staged.assert_retry_verifies().await;
}

/// Streamed parts that do not follow the hot parts: a byte read wrong is still caught by the
/// hot ETag, nothing is verified or left, and the retry verifies the true bytes.
#[tokio::test]
async fn streamed_parts_of_large_hot_parts_catch_a_corrupted_read() {
    let staged = Staged::new(40 * MIB, 36 * MIB, 76).await;
    let streamed = Limits {
        tuning: Tuning {
            part_size: 8 * MIB as u64,
            stream_over: 4 * MIB as u64,
        },
        ..Limits::default()
    };
    let flipping = staged.with_hot_fault(ReadFault::FlipBitAt(10 * MIB));
    assert!(
        !staged
            .deliver_within(&flipping, &staged.event(), &streamed)
            .await,
        "a flipped bit went unnoticed"
    );
    staged.assert_nothing_verified_or_left().await;
    assert!(
        staged
            .deliver_within(&staged.local.state, &staged.event(), &streamed)
            .await
    );
    staged.assert_retry_verifies().await;
}

/// A run that paused while a duplicate delivery finished the copy in one go leaves a
/// checkpoint behind; its continuation finds the file verified, aborts that checkpoint's
/// upload and removes it, and the verified copy under the same key stays.
#[tokio::test]
async fn a_checkpoint_left_beside_a_finished_copy_is_removed() {
    let staged = Staged::new(SIZE, PART, 77).await;
    let state = &staged.local.state;
    assert!(staged.deliver(state).await);
    let cold = state.cold.as_ref().unwrap();
    let upload_id = cold
        .create_multipart(
            &filestore_shared::keys::cold_key(&staged.file_id),
            Some("application/octet-stream"),
        )
        .await
        .unwrap();
    let late = TransferCheckpoint {
        file_id: staged.file_id.clone(),
        user_id: staged.app.user_id.clone(),
        version: 1,
        cold_upload_id: upload_id,
        state: "{}".into(),
        blob: Vec::new(),
        updated_at: time::OffsetDateTime::now_utc(),
    };
    assert!(state.repo.save_transfer(&late).await.unwrap());
    assert!(
        staged
            .deliver_within(state, &staged.continuation(), &Limits::default())
            .await
    );
    assert!(
        state
            .repo
            .get_transfer(&staged.file_id)
            .await
            .unwrap()
            .is_none()
    );
    assert!(staged.open_cold_uploads().await.is_empty());
    staged.assert_retry_verifies().await;
}

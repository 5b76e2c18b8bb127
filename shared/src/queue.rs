//! The transfer queue, as a sender: the message that makes the transfer function copy an
//! object again ([`ContinueTransfer`]), which a transfer stopped at its time limit sends to
//! go on and the janitor sends for a file whose transfer never finished.

use anyhow::Context;
use serde::{Deserialize, Serialize};

/// The object whose transfer a continuation message continues (or starts again).
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ContinueTransfer {
    /// The hot object's key, not URL-encoded.
    pub key: String,
}

/// The body of a continuation message: `{"continue_transfer":{"key":...}}`.
#[derive(Debug, Serialize)]
struct Continuation<'a> {
    continue_transfer: &'a ContinueTransfer,
}

impl ContinueTransfer {
    /// The message that continues the transfer of this object in a new run.
    pub fn body(&self) -> String {
        serde_json::to_string(&Continuation {
            continue_transfer: self,
        })
        .expect("plain data serialises")
    }
}

/// Sends messages to the transfer queue (`FILESTORE_TRANSFER_QUEUE_URL`).
#[derive(Clone, Debug)]
pub struct TransferQueue {
    sqs: crate::LazyClient<aws_sdk_sqs::Client>,
    url: String,
}

impl TransferQueue {
    pub fn new(sqs: aws_sdk_sqs::Client, url: impl Into<String>) -> Self {
        Self::lazy(move || sqs, url)
    }

    /// A queue whose client `build` makes on its first message: the functions that have the
    /// queue send on it rarely (a transfer stopped at its time limit, a stranded transfer),
    /// and building an SDK client costs a cold start about 0.4 M instructions (BENCHMARKS.md,
    /// "Cold start").
    pub fn lazy(
        build: impl FnOnce() -> aws_sdk_sqs::Client + Send + 'static,
        url: impl Into<String>,
    ) -> Self {
        Self {
            sqs: crate::lazy_client(build),
            url: url.into(),
        }
    }

    /// Asks for a run of the transfer of the hot object `key`. The transfer is idempotent
    /// (it goes on from a checkpoint, and leaves a verified file alone), so a message too
    /// many costs a read.
    ///
    /// # Errors
    /// SQS failures.
    pub async fn continue_transfer(&self, key: &str) -> anyhow::Result<()> {
        self.sqs
            .send_message()
            .queue_url(&self.url)
            .message_body(ContinueTransfer { key: key.into() }.body())
            .send()
            .await
            .context("SQS SendMessage (continue a transfer)")?;
        Ok(())
    }
}

//! S3 for the hot bucket and the cold store, and the only door to it: multipart uploads,
//! presigned URLs, object reads and writes, and bucket setup. Callers get answers in domain
//! terms ([`Joined`], `None` for a missing object), never an SDK error code. Bytes from
//! clients never pass through here; functions only sign URLs, read S3's own bookkeeping and
//! (the transfer) stream objects from one store to the other.
//!
//! # Layout
//! - `objects`: heads, listings, reads (whole, streamed, ranged), single writes, deletes.
//! - `multipart`: multipart uploads, their parts, joining ([`Joined`]) and aborting.
//! - `presign`: presigned part uploads and downloads.
//! - `bucket`: creating a bucket and its event notifications (the local runner).
//! - `decoy`: the cold store's proof decoy, which instant upload reads when there is no content.

mod bucket;
mod decoy;
mod multipart;
mod objects;
mod presign;

use aws_sdk_s3::Client;
use base64::Engine;

pub use decoy::DECOY_SIZE;
pub use multipart::{Joined, OpenUpload, StreamedBody, UploadedPart};
pub use objects::{Listed, ObjectBody, ObjectHead, ObjectRead};
pub use presign::{Presigned, content_disposition};

/// The error a streamed request body may end with.
pub type BodyError = Box<dyn std::error::Error + Send + Sync>;

/// An S3 client built the first time it is used, so that a function that never calls S3
/// never builds one.
/// A bucket: the hot one, or the cold store's.
#[derive(Clone, Debug)]
pub struct Storage {
    client: crate::LazyClient<Client>,
    bucket: String,
}

fn to_time(t: Option<&aws_sdk_s3::primitives::DateTime>) -> Option<time::OffsetDateTime> {
    t.and_then(|t| time::OffsetDateTime::from_unix_timestamp(t.secs()).ok())
}

/// An MD5 as a `Content-MD5` header carries it.
fn base64_md5(md5: &[u8; 16]) -> String {
    base64::engine::general_purpose::STANDARD.encode(md5)
}

impl Storage {
    pub fn new(client: Client, bucket: impl Into<String>) -> Self {
        Self::lazy(move || client, bucket)
    }

    /// A bucket whose client `build` makes on the first call.
    pub fn lazy(
        build: impl FnOnce() -> Client + Send + 'static,
        bucket: impl Into<String>,
    ) -> Self {
        Self {
            client: crate::lazy_client(build),
            bucket: bucket.into(),
        }
    }

    /// The same bucket through a client with `interceptor` on the wire: faults injected and
    /// calls recorded in tests.
    pub fn with_interceptor(
        &self,
        interceptor: impl aws_sdk_s3::config::Intercept + 'static,
    ) -> Self {
        let client = with_interceptor!(aws_sdk_s3, self.client, interceptor);
        Self::new(client, &self.bucket)
    }

    /// Heads an object that does not exist, to build the client and open its connection to
    /// S3: any answer from the service (a 404 or a refusal) counts.
    ///
    /// # Errors
    /// No answer: the connection could not be made.
    pub async fn warm_up(&self) -> Result<(), String> {
        let head = self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(crate::keys::WARM_UP_KEY)
            .send()
            .await;
        match head {
            Ok(_) | Err(aws_sdk_s3::error::SdkError::ServiceError(_)) => Ok(()),
            Err(e) => Err(aws_sdk_s3::error::DisplayErrorContext(e).to_string()),
        }
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }
}

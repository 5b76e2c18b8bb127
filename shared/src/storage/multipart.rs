//! Multipart uploads: starting one, its parts (listed, or uploaded whole or streamed), and
//! how it ends: joined into an object, in domain terms ([`Joined`]), or aborted; and which
//! are still open.

use anyhow::Context;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::operation::upload_part::UploadPartError;
use aws_sdk_s3::operation::upload_part::builders::UploadPartFluentBuilder;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart};
use bytes::Bytes;

use super::{Storage, base64_md5, to_time};
use filestore_contract::api::PartDone;

/// A multipart upload started and neither completed nor aborted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenUpload {
    pub key: String,
    pub upload_id: String,
    pub initiated: Option<time::OffsetDateTime>,
}

/// A part of a multipart upload as the store acknowledged it: what joining it needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UploadedPart {
    pub number: u32,
    /// As the store gave it (quoted).
    pub etag: Option<String>,
    /// The part's base64 SHA-256, on an upload created for part checksums: S3 wants it
    /// again when the parts are joined.
    pub checksum_sha256: Option<String>,
}

impl From<&PartDone> for UploadedPart {
    fn from(part: &PartDone) -> Self {
        Self {
            number: part.part_number,
            etag: Some(part.etag.clone()),
            checksum_sha256: None,
        }
    }
}

/// How joining the parts of an upload into one object went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Joined {
    /// The object now exists.
    Done,
    /// The store no longer holds the upload open: a concurrent complete joined it first, or
    /// it was aborted. The object, or its absence, tells which.
    UploadGone,
    /// A part named is not (or no longer) the one uploaded, or the parts are out of order:
    /// they changed while completing.
    PartsChanged,
    /// A part other than the last is smaller than the store's minimum (5 MiB on S3).
    PartTooSmall,
}

/// Whether the store answered that it does not know the upload: S3's `NoSuchUpload`, or a
/// 404 that names no error code at all (a store may send it with an empty body).
fn is_no_such_upload<E: ProvideErrorMetadata>(e: &SdkError<E, HttpResponse>) -> bool {
    match e.code() {
        Some(code) => code == "NoSuchUpload",
        None => e.raw_response().is_some_and(|r| r.status().as_u16() == 404),
    }
}

/// A request body of a length known up front, fed as it is produced.
pub trait StreamedBody:
    http_body::Body<Data = Bytes, Error = crate::storage::BodyError> + Send + Sync + 'static
{
}

impl<B> StreamedBody for B where
    B: http_body::Body<Data = Bytes, Error = crate::storage::BodyError> + Send + Sync + 'static
{
}

impl Storage {
    /// Starts a multipart upload and returns S3's upload id. Without a content type, the
    /// object gets the store's default.
    ///
    /// # Errors
    /// S3 failures.
    pub async fn create_multipart(
        &self,
        key: &str,
        content_type: Option<&str>,
    ) -> anyhow::Result<String> {
        self.create_multipart_with(key, content_type, false).await
    }

    /// [`Self::create_multipart`]; with `sha256_parts`, created for part checksums
    /// (`x-amz-checksum-algorithm: SHA256`): every part then carries its SHA-256, which S3
    /// checks against the bytes, and completing passes them again.
    ///
    /// # Errors
    /// S3 failures.
    pub async fn create_multipart_with(
        &self,
        key: &str,
        content_type: Option<&str>,
        sha256_parts: bool,
    ) -> anyhow::Result<String> {
        let out = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .set_content_type(content_type.map(str::to_string))
            .set_checksum_algorithm(sha256_parts.then_some(ChecksumAlgorithm::Sha256))
            .send()
            .await
            .context("S3 CreateMultipartUpload")?;
        out.upload_id
            .context("S3 CreateMultipartUpload returned no upload id")
    }

    /// Uploads one part held whole. With `md5`, the store refuses bytes that do not match it.
    ///
    /// # Errors
    /// S3 failures.
    pub async fn upload_part(
        &self,
        key: &str,
        upload_id: &str,
        number: u32,
        bytes: Bytes,
        md5: Option<&[u8; 16]>,
    ) -> anyhow::Result<UploadedPart> {
        let part = self
            .client
            .upload_part()
            .set_content_md5(md5.map(base64_md5));
        self.send_part(part, key, upload_id, number, ByteStream::from(bytes))
            .await
            .with_context(|| format!("S3 UploadPart {number}"))
    }

    /// Uploads one part of `len` bytes whose body is fed as the request goes, so the part is
    /// never held whole.
    ///
    /// # Errors
    /// S3 failures, and a body that fails or ends early.
    pub async fn upload_part_streamed(
        &self,
        key: &str,
        upload_id: &str,
        number: u32,
        len: u64,
        body: impl StreamedBody,
    ) -> anyhow::Result<UploadedPart> {
        let body = ByteStream::new(aws_smithy_types::body::SdkBody::from_body_1_x(body));
        let part = self.client.upload_part().content_length(len as i64);
        self.send_part(part, key, upload_id, number, body)
            .await
            .with_context(|| format!("S3 UploadPart {number} (streamed)"))
    }

    /// Sends a part request that carries what its kind of body needs (an MD5, a length).
    async fn send_part(
        &self,
        part: UploadPartFluentBuilder,
        key: &str,
        upload_id: &str,
        number: u32,
        body: ByteStream,
    ) -> Result<UploadedPart, SdkError<UploadPartError>> {
        let out = part
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .part_number(number as i32)
            .body(body)
            .send()
            .await?;
        Ok(UploadedPart {
            number,
            etag: out.e_tag,
            checksum_sha256: out.checksum_sha256,
        })
    }

    /// The parts S3 holds for an upload (S3 is the truth for resume and complete), in order.
    /// `None` when S3 no longer knows the upload (completed or aborted).
    ///
    /// # Errors
    /// S3 failures.
    pub async fn list_parts(
        &self,
        key: &str,
        upload_id: &str,
    ) -> anyhow::Result<Option<Vec<PartDone>>> {
        Ok(self
            .list_parts_to_join(key, upload_id)
            .await?
            .map(|parts| parts.into_iter().map(|(done, _)| done).collect()))
    }

    /// [`Self::list_parts`], each with what joining it needs (its checksum, if it has one).
    ///
    /// # Errors
    /// S3 failures.
    pub async fn list_parts_to_join(
        &self,
        key: &str,
        upload_id: &str,
    ) -> anyhow::Result<Option<Vec<(PartDone, UploadedPart)>>> {
        let mut parts = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let result = self
                .client
                .list_parts()
                .bucket(&self.bucket)
                .key(key)
                .upload_id(upload_id)
                .set_part_number_marker(marker.take())
                .send()
                .await;
            let out = match result {
                Ok(out) => out,
                Err(e) if is_no_such_upload(&e) => return Ok(None),
                Err(e) => return Err(e).context("S3 ListParts"),
            };
            for p in out.parts() {
                let done = PartDone {
                    part_number: p.part_number().unwrap_or_default().max(0) as u32,
                    size: p.size().unwrap_or_default().max(0) as u64,
                    etag: p.e_tag().unwrap_or_default().to_string(),
                };
                let uploaded = UploadedPart {
                    checksum_sha256: p.checksum_sha256().map(str::to_string),
                    ..UploadedPart::from(&done)
                };
                parts.push((done, uploaded));
            }
            match (out.is_truncated(), out.next_part_number_marker()) {
                (Some(true), Some(next)) if !next.is_empty() => marker = Some(next.to_string()),
                _ => break,
            }
        }
        parts.sort_by_key(|(p, _)| p.part_number);
        Ok(Some(parts))
    }

    /// Joins `parts`, in order, into the upload's object.
    ///
    /// # Errors
    /// S3 failures other than the refusals [`Joined`] names.
    pub async fn complete_multipart(
        &self,
        key: &str,
        upload_id: &str,
        parts: &[UploadedPart],
    ) -> anyhow::Result<Joined> {
        let completed = CompletedMultipartUpload::builder()
            .set_parts(Some(
                parts
                    .iter()
                    .map(|p| {
                        CompletedPart::builder()
                            .part_number(p.number as i32)
                            .set_e_tag(p.etag.clone())
                            .set_checksum_sha256(p.checksum_sha256.clone())
                            .build()
                    })
                    .collect(),
            ))
            .build();
        let result = self
            .client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .multipart_upload(completed)
            .send()
            .await;
        let Err(e) = result else {
            return Ok(Joined::Done);
        };
        if is_no_such_upload(&e) {
            return Ok(Joined::UploadGone);
        }
        match e.code() {
            Some("InvalidPart") | Some("InvalidPartOrder") => Ok(Joined::PartsChanged),
            Some("EntityTooSmall") => Ok(Joined::PartTooSmall),
            // No code: the answer said nothing readable (a store failing mid-call, as moto
            // does when an abort removes the upload under it, answers 500 with an HTML
            // body). Whether the store still holds the upload open tells what happened.
            None if self.list_parts(key, upload_id).await?.is_none() => Ok(Joined::UploadGone),
            _ => Err(e).context("S3 CompleteMultipartUpload"),
        }
    }

    /// Aborts a multipart upload; an upload S3 no longer knows counts as aborted.
    ///
    /// # Errors
    /// S3 failures.
    pub async fn abort_multipart(&self, key: &str, upload_id: &str) -> anyhow::Result<()> {
        match self
            .client
            .abort_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if is_no_such_upload(&e) => Ok(()),
            Err(e) => Err(e).context("S3 AbortMultipartUpload"),
        }
    }

    /// Every multipart upload under `prefix` still open, a page of 1,000 per request.
    ///
    /// # Errors
    /// S3 failures.
    pub async fn open_uploads(&self, prefix: &str) -> anyhow::Result<Vec<OpenUpload>> {
        let mut open = Vec::new();
        let (mut key_marker, mut id_marker) = (None, None);
        loop {
            let out = self
                .client
                .list_multipart_uploads()
                .bucket(&self.bucket)
                .prefix(prefix)
                .set_key_marker(key_marker.take())
                .set_upload_id_marker(id_marker.take())
                .send()
                .await
                .context("S3 ListMultipartUploads")?;
            open.extend(out.uploads().iter().filter_map(|u| {
                Some(OpenUpload {
                    key: u.key()?.to_string(),
                    upload_id: u.upload_id()?.to_string(),
                    initiated: to_time(u.initiated()),
                })
            }));
            match (
                out.is_truncated(),
                out.next_key_marker(),
                out.next_upload_id_marker(),
            ) {
                (Some(true), Some(key), id) => {
                    key_marker = Some(key.to_string());
                    id_marker = id.map(str::to_string);
                }
                _ => return Ok(open),
            }
        }
    }
}

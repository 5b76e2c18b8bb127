//! S3 helpers for the hot bucket and the cold store: multipart uploads, presigned URLs and
//! object checks. Bytes never pass through here; functions only sign URLs and read S3's own
//! bookkeeping.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context;
use aws_sdk_s3::Client;
use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::operation::head_object::HeadObjectError;
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use filestore_contract::api::PartDone;

/// The S3 key of a file's bytes. It names the owner and the file, so an S3 event alone tells
/// which File an object belongs to.
pub fn object_key(user_id: &str, file_id: &str) -> String {
    format!("files/{user_id}/{file_id}")
}

/// Where the transfer puts verified copies in the cold store.
pub const COLD_BLOB_PREFIX: &str = "blobs/";

/// RFC 6266 / 5987 attribute characters that need no escaping.
const ATTR_CHAR: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'!')
    .remove(b'#')
    .remove(b'$')
    .remove(b'&')
    .remove(b'+')
    .remove(b'-')
    .remove(b'.')
    .remove(b'^')
    .remove(b'_')
    .remove(b'`')
    .remove(b'|')
    .remove(b'~');

/// `attachment` with an ASCII fallback name and the exact UTF-8 name (RFC 6266), so browsers
/// and curl save the file under its real name.
pub fn content_disposition(name: &str) -> String {
    let fallback: String = name
        .chars()
        .map(|c| {
            if c.is_ascii() && !c.is_ascii_control() && c != '"' && c != '\\' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!(
        "attachment; filename=\"{fallback}\"; filename*=UTF-8''{}",
        utf8_percent_encode(name, ATTR_CHAR)
    )
}

/// A presigned request: where to send it and which headers must go with it.
#[derive(Debug)]
pub struct Presigned {
    pub url: String,
    pub headers: BTreeMap<String, String>,
}

/// What `HeadObject` says about a stored object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectHead {
    pub size: u64,
    /// Without quotes. For S3 (SSE-S3), MinIO, OSS and moto an MD5 form: the MD5 of the bytes,
    /// or for a multipart object the MD5 of its parts' MD5s and `-<parts>`.
    pub etag: Option<String>,
    pub last_modified: Option<time::OffsetDateTime>,
}

/// A listed object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listed {
    pub key: String,
    pub last_modified: Option<time::OffsetDateTime>,
}

fn to_time(t: Option<&aws_sdk_s3::primitives::DateTime>) -> Option<time::OffsetDateTime> {
    t.and_then(|t| time::OffsetDateTime::from_unix_timestamp(t.secs()).ok())
}

/// A multipart upload started and neither completed nor aborted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenUpload {
    pub key: String,
    pub upload_id: String,
    pub initiated: Option<time::OffsetDateTime>,
}

/// A bucket: the hot one, or the cold store's.
#[derive(Clone, Debug)]
pub struct Storage {
    client: Client,
    bucket: String,
}

fn presigning(ttl: Duration) -> anyhow::Result<PresigningConfig> {
    PresigningConfig::expires_in(ttl).context("presigning config")
}

impl Storage {
    pub fn new(client: Client, bucket: impl Into<String>) -> Self {
        Self {
            client,
            bucket: bucket.into(),
        }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// Starts a multipart upload and returns S3's upload id.
    ///
    /// # Errors
    /// S3 failures.
    pub async fn create_multipart(&self, key: &str, content_type: &str) -> anyhow::Result<String> {
        let out = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .send()
            .await
            .context("S3 CreateMultipartUpload")?;
        out.upload_id
            .context("S3 CreateMultipartUpload returned no upload id")
    }

    /// Presigns one `UploadPart`. A given checksum is part of the signature, so S3 refuses
    /// bytes that do not match it (and the header must be sent as returned).
    ///
    /// # Errors
    /// Presigning failures (configuration faults).
    pub async fn presign_part(
        &self,
        key: &str,
        upload_id: &str,
        part_number: u32,
        checksum_sha256: Option<&str>,
        ttl: Duration,
    ) -> anyhow::Result<Presigned> {
        let req = self
            .client
            .upload_part()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .part_number(part_number as i32)
            .set_checksum_sha256(checksum_sha256.map(str::to_string))
            .presigned(presigning(ttl)?)
            .await
            .context("presigning UploadPart")?;
        let headers = req
            .headers()
            .filter(|(name, _)| !name.eq_ignore_ascii_case("host"))
            .map(|(name, value)| (name.to_ascii_lowercase(), value.to_string()))
            .collect();
        Ok(Presigned {
            url: req.uri().to_string(),
            headers,
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
                Err(e) if e.as_service_error().and_then(|se| se.code()) == Some("NoSuchUpload") => {
                    return Ok(None);
                }
                Err(e) => return Err(e).context("S3 ListParts"),
            };
            for p in out.parts() {
                parts.push(PartDone {
                    part_number: p.part_number().unwrap_or_default().max(0) as u32,
                    size: p.size().unwrap_or_default().max(0) as u64,
                    etag: p.e_tag().unwrap_or_default().to_string(),
                });
            }
            match (out.is_truncated(), out.next_part_number_marker()) {
                (Some(true), Some(next)) if !next.is_empty() => marker = Some(next.to_string()),
                _ => break,
            }
        }
        parts.sort_by_key(|p| p.part_number);
        Ok(Some(parts))
    }

    /// Completes a multipart upload from the parts S3 listed.
    ///
    /// # Errors
    /// S3 failures, including S3's own refusal of too-small parts (`EntityTooSmall`).
    pub async fn complete_multipart(
        &self,
        key: &str,
        upload_id: &str,
        parts: &[PartDone],
    ) -> Result<(), aws_sdk_s3::Error> {
        let completed = CompletedMultipartUpload::builder()
            .set_parts(Some(
                parts
                    .iter()
                    .map(|p| {
                        CompletedPart::builder()
                            .part_number(p.part_number as i32)
                            .e_tag(&p.etag)
                            .build()
                    })
                    .collect(),
            ))
            .build();
        self.client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .multipart_upload(completed)
            .send()
            .await?;
        Ok(())
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
            Err(e) if e.as_service_error().and_then(|se| se.code()) == Some("NoSuchUpload") => {
                Ok(())
            }
            Err(e) => Err(e).context("S3 AbortMultipartUpload"),
        }
    }

    /// The stored size of an object, `None` if there is no such object.
    ///
    /// # Errors
    /// S3 failures.
    pub async fn object_size(&self, key: &str) -> anyhow::Result<Option<u64>> {
        Ok(self.head(key).await?.map(|h| h.size))
    }

    /// Size, ETag and age of an object, `None` if there is no such object.
    ///
    /// # Errors
    /// S3 failures.
    pub async fn head(&self, key: &str) -> anyhow::Result<Option<ObjectHead>> {
        match self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(out) => Ok(Some(ObjectHead {
                size: out.content_length().unwrap_or_default().max(0) as u64,
                etag: out.e_tag().map(|e| e.trim_matches('"').to_string()),
                last_modified: to_time(out.last_modified()),
            })),
            Err(e) if matches!(e.as_service_error(), Some(HeadObjectError::NotFound(_))) => {
                Ok(None)
            }
            Err(e) => Err(e).context("S3 HeadObject"),
        }
    }

    /// Every object under `prefix`, a page of 1,000 per request.
    ///
    /// # Errors
    /// S3 failures.
    pub async fn list(&self, prefix: &str) -> anyhow::Result<Vec<Listed>> {
        let pages: Vec<_> = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(prefix)
            .into_paginator()
            .send()
            .try_collect()
            .await
            .context("S3 ListObjectsV2")?;
        Ok(pages
            .iter()
            .flat_map(|page| page.contents())
            .filter_map(|o| {
                Some(Listed {
                    key: o.key()?.to_string(),
                    last_modified: to_time(o.last_modified()),
                })
            })
            .collect())
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

    /// # Errors
    /// S3 failures (deleting a missing key is not one).
    pub async fn delete_object(&self, key: &str) -> anyhow::Result<()> {
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .context("S3 DeleteObject")?;
        Ok(())
    }

    /// Presigns a GET that saves under `file_name` with `content_type`. Range requests work
    /// on it as on any GET.
    ///
    /// # Errors
    /// Presigning failures.
    pub async fn presign_get(
        &self,
        key: &str,
        file_name: &str,
        content_type: &str,
        ttl: Duration,
    ) -> anyhow::Result<String> {
        let req = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .response_content_disposition(content_disposition(file_name))
            .response_content_type(content_type)
            .presigned(presigning(ttl)?)
            .await
            .context("presigning GetObject")?;
        Ok(req.uri().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_disposition_keeps_utf8_names_and_escapes_quotes() {
        assert_eq!(
            content_disposition("a b.txt"),
            "attachment; filename=\"a b.txt\"; filename*=UTF-8''a%20b.txt"
        );
        let d = content_disposition("résumé \"v2\".pdf");
        assert!(d.contains("filename=\"r_sum_ _v2_.pdf\""));
        assert!(d.contains("filename*=UTF-8''r%C3%A9sum%C3%A9%20%22v2%22.pdf"));
    }
}

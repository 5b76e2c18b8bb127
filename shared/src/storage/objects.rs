//! Whole objects: what a store holds under a key (head, size, listing), reading it whole or
//! by range, writing one in a single request, and deleting it.

use anyhow::Context;
use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::operation::head_object::HeadObjectError;
use aws_sdk_s3::primitives::ByteStream;
use bytes::Bytes;

use super::{Storage, base64_md5, to_time};

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

/// An object being read: what the store says of it, and its bytes as they arrive.
#[derive(Debug)]
pub struct ObjectRead {
    /// As the store sent it, quotes and all (empty if it sent none).
    pub etag: String,
    /// The length of what is being read (the rest of the object from the offset asked for).
    pub length: Option<u64>,
    pub body: ObjectBody,
}

/// The bytes of an object being read, chunk by chunk as they arrive: never held whole.
#[derive(Debug)]
pub struct ObjectBody(ByteStream);

impl ObjectBody {
    /// The next chunk, `None` at the end.
    ///
    /// # Errors
    /// A read that failed or was cut.
    pub async fn next(&mut self) -> anyhow::Result<Option<Bytes>> {
        Ok(self.0.try_next().await?)
    }

    /// Every remaining byte, held whole.
    ///
    /// # Errors
    /// A read that failed or was cut.
    pub async fn collect(self) -> anyhow::Result<Bytes> {
        Ok(self.0.collect().await?.into_bytes())
    }
}

impl Storage {
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

    /// The size of part `part_number` of a multipart object, which S3 tells a `HeadObject`
    /// naming the part.
    ///
    /// # Errors
    /// S3 failures, including no such object or part, or an answer without a length.
    pub async fn part_size(&self, key: &str, part_number: u32) -> anyhow::Result<u64> {
        let out = self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .part_number(part_number as i32)
            .send()
            .await
            .with_context(|| format!("S3 HeadObject of part {part_number}"))?;
        out.content_length()
            .filter(|l| *l >= 0)
            .map(|l| l as u64)
            .with_context(|| format!("S3 HeadObject of part {part_number} gave no length"))
    }

    /// Reads an object from byte `from` to its end, `None` if there is no such object.
    ///
    /// # Errors
    /// S3 failures.
    pub async fn read(&self, key: &str, from: u64) -> anyhow::Result<Option<ObjectRead>> {
        let range = (from > 0).then(|| format!("bytes={from}-"));
        let Some(object) = self.get(key, range).await? else {
            return Ok(None);
        };
        Ok(Some(ObjectRead {
            etag: object.e_tag().unwrap_or_default().to_string(),
            length: object.content_length().map(|l| l.max(0) as u64),
            body: ObjectBody(object.body),
        }))
    }

    /// The `length` bytes of an object from `offset` (`length` > 0), `None` if there is no
    /// such object. Fewer bytes come back where the object ends sooner.
    ///
    /// # Errors
    /// S3 failures.
    pub async fn read_range(
        &self,
        key: &str,
        offset: u64,
        length: u64,
    ) -> anyhow::Result<Option<Bytes>> {
        let range = format!("bytes={}-{}", offset, offset + length - 1);
        match self.get(key, Some(range)).await? {
            Some(object) => Ok(Some(ObjectBody(object.body).collect().await?)),
            None => Ok(None),
        }
    }

    async fn get(
        &self,
        key: &str,
        range: Option<String>,
    ) -> anyhow::Result<Option<aws_sdk_s3::operation::get_object::GetObjectOutput>> {
        match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .set_range(range)
            .send()
            .await
        {
            Ok(object) => Ok(Some(object)),
            Err(e) if e.as_service_error().and_then(|se| se.code()) == Some("NoSuchKey") => {
                Ok(None)
            }
            Err(e) => Err(e).context("S3 GetObject"),
        }
    }

    /// Writes `bytes` as one object. With `md5`, the store refuses bytes that do not match it.
    ///
    /// # Errors
    /// S3 failures.
    pub async fn put_object(
        &self,
        key: &str,
        bytes: Bytes,
        md5: Option<&[u8; 16]>,
    ) -> anyhow::Result<()> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .set_content_md5(md5.map(base64_md5))
            .body(ByteStream::from(bytes))
            .send()
            .await
            .context("S3 PutObject")?;
        Ok(())
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
}

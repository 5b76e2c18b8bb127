//! The streaming copy from the hot bucket to the cold store. The object is read once; every
//! byte goes into SHA-256 and SHA-1 and into a part buffer. Parts go to the cold store as a
//! multipart upload with at most [`IN_FLIGHT`] part uploads at a time, each with a
//! `Content-MD5` the cold store checks (every S3-compatible store does), so memory stays
//! bounded by a few parts whatever the object's size.

use anyhow::{Context, bail};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use base64::Engine;
use filestore_shared::domain::{ObjectSize, PartPlan, PartSize};
use filestore_shared::storage::Storage;
use md5::Md5;
use sha1::Sha1;
use sha2::{Digest, Sha256};
use tokio::task::JoinSet;

/// Part size for the cold copy (raised for objects over 160 GiB to stay within 10,000 parts).
pub const COLD_PART_SIZE: u64 = 16 * 1024 * 1024;
/// Part uploads in flight at once.
pub const IN_FLIGHT: usize = 2;

/// What the copy read and wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Copied {
    pub sha256: String,
    pub sha1: String,
    pub size: u64,
}

fn md5_base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(Md5::digest(bytes))
}

struct Multipart<'a> {
    store: &'a Storage,
    key: &'a str,
    upload_id: String,
    next_part: i32,
    running: JoinSet<anyhow::Result<CompletedPart>>,
    done: Vec<CompletedPart>,
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

    async fn send(&mut self, part: Vec<u8>) -> anyhow::Result<()> {
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
            let md5 = md5_base64(&part);
            let out = client
                .upload_part()
                .bucket(bucket)
                .key(key)
                .upload_id(upload_id)
                .part_number(number)
                .content_md5(md5)
                .body(ByteStream::from(part))
                .send()
                .await
                .with_context(|| format!("cold UploadPart {number}"))?;
            Ok(CompletedPart::builder()
                .part_number(number)
                .set_e_tag(out.e_tag)
                .build())
        });
        Ok(())
    }

    async fn finish(mut self) -> anyhow::Result<()> {
        while !self.running.is_empty() {
            self.wait_one().await?;
        }
        self.done.sort_by_key(|p| p.part_number());
        self.store
            .client()
            .complete_multipart_upload()
            .bucket(self.store.bucket())
            .key(self.key)
            .upload_id(&self.upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(std::mem::take(&mut self.done)))
                    .build(),
            )
            .send()
            .await
            .context("cold CompleteMultipartUpload")?;
        Ok(())
    }

    async fn abort(self) {
        let _ = self
            .store
            .client()
            .abort_multipart_upload()
            .bucket(self.store.bucket())
            .key(self.key)
            .upload_id(&self.upload_id)
            .send()
            .await;
    }
}

/// Copies `hot_key` from `hot` to `cold_key` in `cold`, hashing it on the way, and checks
/// that the cold store holds as many bytes as were read.
///
/// # Errors
/// Any read, write or size failure; a started multipart upload is aborted first.
pub async fn copy_verified(
    hot: &Storage,
    cold: &Storage,
    hot_key: &str,
    cold_key: &str,
    expected_size: u64,
) -> anyhow::Result<Copied> {
    let size = ObjectSize::parse(expected_size).map_err(anyhow::Error::msg)?;
    let part_size = PartPlan::new(
        size,
        Some(PartSize::parse(COLD_PART_SIZE).map_err(anyhow::Error::msg)?),
    )
    .part_size as usize;
    let object = hot
        .client()
        .get_object()
        .bucket(hot.bucket())
        .key(hot_key)
        .send()
        .await
        .context("hot GetObject")?;
    let mut body = object.body;
    let mut sha256 = Sha256::new();
    let mut sha1 = Sha1::new();
    let mut total = 0u64;
    let mut buffer = Vec::with_capacity(part_size.min(expected_size as usize + 1));
    let mut multipart: Option<Multipart<'_>> = None;

    let result: anyhow::Result<()> = async {
        while let Some(chunk) = body.try_next().await.context("reading the hot object")? {
            sha256.update(&chunk);
            sha1.update(&chunk);
            total += chunk.len() as u64;
            let mut rest = &chunk[..];
            while !rest.is_empty() {
                let take = (part_size - buffer.len()).min(rest.len());
                buffer.extend_from_slice(&rest[..take]);
                rest = &rest[take..];
                if buffer.len() == part_size {
                    if multipart.is_none() {
                        multipart = Some(Multipart::start(cold, cold_key).await?);
                    }
                    let full = std::mem::replace(&mut buffer, Vec::with_capacity(part_size));
                    multipart
                        .as_mut()
                        .expect("started above")
                        .send(full)
                        .await?;
                }
            }
        }
        Ok(())
    }
    .await;
    if let Err(e) = result {
        if let Some(m) = multipart {
            m.abort().await;
        }
        return Err(e);
    }

    match multipart {
        None => {
            cold.client()
                .put_object()
                .bucket(cold.bucket())
                .key(cold_key)
                .content_md5(md5_base64(&buffer))
                .body(ByteStream::from(buffer))
                .send()
                .await
                .context("cold PutObject")?;
        }
        Some(mut m) => {
            let sent = async {
                if !buffer.is_empty() {
                    m.send(buffer).await?;
                }
                Ok::<_, anyhow::Error>(())
            }
            .await;
            match sent {
                Ok(()) => m.finish().await?,
                Err(e) => {
                    m.abort().await;
                    return Err(e);
                }
            }
        }
    }
    match cold.object_size(cold_key).await? {
        Some(stored) if stored == total => {}
        other => bail!("cold store holds {other:?} bytes for {cold_key}, {total} were sent"),
    }
    Ok(Copied {
        sha256: hex::encode(sha256.finalize()),
        sha1: hex::encode(sha1.finalize()),
        size: total,
    })
}

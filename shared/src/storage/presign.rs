//! Presigned requests: the only way bytes move between clients and the hot bucket, so they
//! never pass through a function. Also the `Content-Disposition` a download is saved under.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context;
use aws_sdk_s3::presigning::PresigningConfig;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use super::Storage;

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

fn presigning(ttl: Duration) -> anyhow::Result<PresigningConfig> {
    PresigningConfig::expires_in(ttl).context("presigning config")
}

impl Storage {
    /// Presigns one `UploadPart` of exactly `content_length` bytes. The length is part of the
    /// signature, so S3 refuses a body of any other size (`SignatureDoesNotMatch`): no part can
    /// hold more than the plan gave it. A given checksum is signed too, so S3 refuses bytes
    /// that do not match it (and the header must be sent as returned).
    ///
    /// The returned headers leave out `host` and `content-length`: every HTTP client sets them
    /// from the URL and the body (browsers refuse to let a page set them).
    ///
    /// # Errors
    /// Presigning failures (configuration faults).
    pub async fn presign_part(
        &self,
        key: &str,
        upload_id: &str,
        part_number: u32,
        content_length: u64,
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
            .content_length(i64::try_from(content_length).context("part length")?)
            // S3 wants the algorithm named beside a part's checksum.
            .set_checksum_algorithm(
                checksum_sha256.map(|_| aws_sdk_s3::types::ChecksumAlgorithm::Sha256),
            )
            .set_checksum_sha256(checksum_sha256.map(str::to_string))
            .presigned(presigning(ttl)?)
            .await
            .context("presigning UploadPart")?;
        let headers = req
            .headers()
            .filter(|(name, _)| {
                !name.eq_ignore_ascii_case("host") && !name.eq_ignore_ascii_case("content-length")
            })
            .map(|(name, value)| (name.to_ascii_lowercase(), value.to_string()))
            .collect();
        Ok(Presigned {
            url: req.uri().to_string(),
            headers,
        })
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

//! ETag arithmetic: the MD5-form ETag S3 and its kin give an object ([`Md5Etag`]), and the
//! hasher that computes it from bytes as they pass ([`EtagHasher`]). The copy checks its read
//! against the hot object's ETag, and its write against the cold one's, with these.

use std::fmt;

use md5::Md5;
use sha2::digest::Digest;

use crate::checkpoint::{EtagState, restore_state, save_state};

/// An MD5, as 16 bytes.
pub type Md5Digest = [u8; 16];

/// An ETag of the MD5 form that S3 (unencrypted or SSE-S3), MinIO, Aliyun OSS and moto give:
/// the MD5 of the bytes, or for a multipart upload the MD5 of its parts' MD5s and the number
/// of parts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Md5Etag {
    /// Lowercase hex.
    pub digest: String,
    /// `Some(n)` for an object uploaded in `n` parts.
    pub parts: Option<u32>,
}

impl fmt::Display for Md5Etag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.parts {
            None => f.write_str(&self.digest),
            Some(n) => write!(f, "{}-{n}", self.digest),
        }
    }
}

impl Md5Etag {
    /// Parses an ETag (quoted or not, any case). `None` for an ETag that is not of the MD5
    /// form, which says nothing that can be checked.
    pub fn parse(etag: &str) -> Option<Self> {
        let etag = etag.trim().trim_matches('"');
        let (digest, parts) = match etag.split_once('-') {
            None => (etag, None),
            Some((digest, parts)) => (digest, Some(parts.parse::<u32>().ok()?)),
        };
        (digest.len() == 32 && digest.bytes().all(|b| b.is_ascii_hexdigit())).then(|| Self {
            digest: digest.to_ascii_lowercase(),
            parts,
        })
    }

    /// The ETag of bytes stored in one piece, whose MD5 is `digest`.
    pub(crate) fn single(digest: &Md5Digest) -> Self {
        Self {
            digest: hex::encode(digest),
            parts: None,
        }
    }

    /// The ETag of bytes stored in parts whose MD5s are `part_digests`.
    pub(crate) fn multipart(part_digests: &[Md5Digest]) -> Self {
        Self {
            digest: hex::encode(Md5::digest(part_digests.concat())),
            parts: Some(part_digests.len() as u32),
        }
    }
}

/// Computes the ETag S3 gives bytes uploaded in one piece (`part_size` `None`) or in parts of
/// `part_size` bytes (all but the last).
pub struct EtagHasher {
    part_size: Option<u64>,
    part: Md5,
    in_part: u64,
    digests: Vec<Md5Digest>,
}

impl EtagHasher {
    pub fn new(part_size: Option<u64>) -> Self {
        Self {
            part_size: part_size.map(|p| p.max(1)),
            part: Md5::new(),
            in_part: 0,
            digests: Vec::new(),
        }
    }

    pub fn update(&mut self, mut data: &[u8]) {
        let Some(size) = self.part_size else {
            self.part.update(data);
            return;
        };
        while !data.is_empty() {
            let take = ((size - self.in_part) as usize).min(data.len());
            self.part.update(&data[..take]);
            self.in_part += take as u64;
            data = &data[take..];
            if self.in_part == size {
                self.close_part();
            }
        }
    }

    fn close_part(&mut self) {
        self.digests
            .push(std::mem::take(&mut self.part).finalize().into());
        self.in_part = 0;
    }

    /// Where the hasher is, for a checkpoint.
    pub(crate) fn save(&self) -> EtagState {
        EtagState {
            part_size: self.part_size,
            in_part: self.in_part,
            md5: save_state(&self.part),
            digests: self.digests.clone(),
        }
    }

    /// # Errors
    /// A state [`EtagHasher::save`] did not make.
    pub(crate) fn restore(state: &EtagState) -> anyhow::Result<Self> {
        Ok(Self {
            part_size: state.part_size,
            part: restore_state(&state.md5)?,
            in_part: state.in_part,
            digests: state.digests.clone(),
        })
    }

    pub fn finish(mut self) -> Md5Etag {
        if self.part_size.is_none() {
            return Md5Etag::single(&self.part.finalize().into());
        }
        if self.in_part > 0 || self.digests.is_empty() {
            self.close_part();
        }
        Md5Etag::multipart(&self.digests)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etags_of_the_md5_form_parse_and_others_do_not() {
        let digest = "9B2CF535F27731C974343645A3985328";
        assert_eq!(
            Md5Etag::parse(&format!("\"{digest}\"")),
            Some(Md5Etag {
                digest: digest.to_ascii_lowercase(),
                parts: None
            })
        );
        assert_eq!(
            Md5Etag::parse(&format!("{digest}-12")).and_then(|e| e.parts),
            Some(12)
        );
        for other in [
            "",
            "abc",
            "\"xyz\"",
            &format!("{digest}-"),
            &format!("{digest}-x"),
        ] {
            assert_eq!(Md5Etag::parse(other), None, "{other:?}");
        }
    }

    /// The multipart ETag is the MD5 of the parts' MD5s, whatever chunks the bytes come in.
    #[test]
    fn etag_hasher_matches_s3s_multipart_etag() {
        let data: Vec<u8> = (0..25u32).flat_map(|i| i.to_le_bytes()).collect();
        let part_digests: Vec<Md5Digest> = data.chunks(40).map(|c| Md5::digest(c).into()).collect();
        let expected = format!(
            "{}-{}",
            hex::encode(Md5::digest(part_digests.concat())),
            part_digests.len()
        );
        for chunk in [1, 7, 40, 100] {
            let mut hasher = EtagHasher::new(Some(40));
            data.chunks(chunk).for_each(|c| hasher.update(c));
            assert_eq!(hasher.finish().to_string(), expected, "chunks of {chunk}");
        }
        let mut whole = EtagHasher::new(None);
        whole.update(&data);
        assert_eq!(whole.finish().to_string(), hex::encode(Md5::digest(&data)));
    }

    /// An empty multipart object is one empty part.
    #[test]
    fn empty_multipart_object_is_one_empty_part() {
        let empty: Md5Digest = Md5::digest(b"").into();
        assert_eq!(
            EtagHasher::new(Some(5)).finish(),
            Md5Etag::multipart(&[empty])
        );
    }
}

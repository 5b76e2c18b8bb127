//! Where a stopped copy stands, and how that is written down: a [`Checkpoint`] names the cold
//! multipart upload, its parts' MD5s and the hashes' midstates, packed into a small JSON
//! string and a blob of digests (as text, 20,000 digests would pass DynamoDB's item limit).
//! Another run unpacks it and carries on.

use anyhow::{Context, anyhow, bail};
use base64::Engine;
use serde::{Deserialize, Serialize};
use sha2::digest::common::hazmat::{SerializableState, SerializedState};

use crate::etag::Md5Digest;

/// A hash's midstate, base64: its chaining state, length and unprocessed bytes.
pub(crate) fn save_state<H: SerializableState>(hash: &H) -> String {
    base64::engine::general_purpose::STANDARD.encode(hash.serialize())
}

/// # Errors
/// A state [`save_state`] did not make for `H`.
pub(crate) fn restore_state<H: SerializableState>(saved: &str) -> anyhow::Result<H> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(saved)
        .context("checkpoint hash state is not base64")?;
    let state = SerializedState::<H>::try_from(&bytes[..])
        .map_err(|_| anyhow!("checkpoint hash state has the wrong length"))?;
    H::deserialize(&state).map_err(|_| anyhow!("checkpoint hash state does not deserialise"))
}

/// A list of part digests in a checkpoint's JSON: only its length, the digests themselves
/// travelling in the blob ([`Checkpoint::pack`]). Read back as that many placeholders, which
/// [`Checkpoint::unpack`] fills in.
mod digest_count {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    use crate::etag::Md5Digest;

    /// S3's limit on parts, for hot and cold alike.
    const MAX: usize = 10_000;

    pub fn serialize<S: Serializer>(digests: &[Md5Digest], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(digests.len() as u64)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Md5Digest>, D::Error> {
        match usize::deserialize(d)? {
            n if n <= MAX => Ok(vec![[0; 16]; n]),
            n => Err(D::Error::custom(format!(
                "{n} part digests, more than S3 allows"
            ))),
        }
    }
}

/// The hot-ETag hasher's state in a checkpoint.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct EtagState {
    pub(crate) part_size: Option<u64>,
    pub(crate) in_part: u64,
    pub(crate) md5: String,
    #[serde(rename = "digest_count", with = "digest_count")]
    pub(crate) digests: Vec<Md5Digest>,
}

/// Where a copy stopped: what another run needs to continue it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Checkpoint {
    /// The hot object's ETag when the copy began; a changed object is copied from the start.
    pub hot_etag: String,
    pub upload_id: String,
    /// Every cold part but the last has this size.
    pub part_size: u64,
    /// Whether the cold parts follow the hot object's parts (their MD5s make its ETag).
    pub aligned: bool,
    /// MD5s of the cold parts uploaded (parts 1..=n, in order).
    #[serde(rename = "part_count", with = "digest_count")]
    pub part_md5s: Vec<Md5Digest>,
    /// The SHA-256 midstate ([`save_state`]).
    pub(crate) sha256: String,
    /// The SHA-1 midstate.
    pub(crate) sha1: String,
    /// The hot-ETag hasher, when the cold parts' MD5s do not make the hot ETag.
    pub(crate) hot: Option<EtagState>,
}

impl Checkpoint {
    /// Bytes copied so far.
    pub fn offset(&self) -> u64 {
        self.part_md5s.len() as u64 * self.part_size
    }

    /// The checkpoint as a string and a blob of part digests (16 bytes each, cold parts
    /// then hot parts): up to 20,000 digests, which as text would pass DynamoDB's item limit.
    ///
    /// # Errors
    /// Never in practice (serialising plain data).
    pub fn pack(&self) -> anyhow::Result<(String, Vec<u8>)> {
        let hot = self.hot.as_ref().map_or(&[][..], |h| &h.digests[..]);
        let blob = self
            .part_md5s
            .iter()
            .chain(hot)
            .flatten()
            .copied()
            .collect();
        Ok((serde_json::to_string(self)?, blob))
    }

    /// # Errors
    /// A state or blob that [`Checkpoint::pack`] did not make.
    pub fn unpack(state: &str, blob: &[u8]) -> anyhow::Result<Self> {
        let mut checkpoint: Self =
            serde_json::from_str(state).context("checkpoint state does not parse")?;
        let hot = checkpoint
            .hot
            .as_mut()
            .map_or(&mut [][..], |h| &mut h.digests[..]);
        let slots: Vec<&mut Md5Digest> = checkpoint.part_md5s.iter_mut().chain(hot).collect();
        if blob.len() != slots.len() * 16 {
            bail!("checkpoint blob has the wrong length");
        }
        for (slot, digest) in slots.into_iter().zip(blob.chunks_exact(16)) {
            slot.copy_from_slice(digest);
        }
        Ok(checkpoint)
    }
}

#[cfg(test)]
mod tests {
    use sha1::Sha1;
    use sha2::Sha256;
    use sha2::digest::Digest;

    use super::*;
    use crate::hashing::Hashers;

    #[test]
    fn a_damaged_checkpoint_does_not_unpack() {
        let checkpoint = Checkpoint {
            hot_etag: String::new(),
            upload_id: "u".into(),
            part_size: 5,
            aligned: true,
            part_md5s: vec![[1; 16]],
            sha256: save_state(&Sha256::new()),
            sha1: save_state(&Sha1::new()),
            hot: None,
        };
        let (state, blob) = checkpoint.pack().unwrap();
        assert!(Checkpoint::unpack(&state, &blob[1..]).is_err());
        assert!(Checkpoint::unpack("{}", &blob).is_err());
        let too_many = state.replace("\"part_count\":1", "\"part_count\":10001");
        assert_ne!(too_many, state);
        assert!(Checkpoint::unpack(&too_many, &vec![0; 10_001 * 16]).is_err());
        let short = state.replace(&checkpoint.sha1, "AAAA");
        let back = Checkpoint::unpack(&short, &blob).unwrap();
        assert!(Hashers::restore(&back).is_err());
    }
}

//! The proof decoy: random bytes in the cold store at [`PROOF_DECOY_KEY`]. A proof of
//! possession for content that is not stored (or that the caller may not share) reads its
//! ranges here, through the same ranged reads a real proof makes, so the answer's timing says
//! nothing about whether the content exists. The local runner writes it when it provisions
//! the cold bucket; the transfer writes it when it records new content, if it is missing.

use bytes::Bytes;
use rand::RngCore;

use super::Storage;
use crate::keys::PROOF_DECOY_KEY;

/// The decoy's size: more than the largest range a challenge asks (a whole file just under
/// 64 KiB), so every range maps into it.
pub const DECOY_SIZE: u64 = 1024 * 1024;

impl Storage {
    /// Writes the decoy unless it is already there at its size. `true` if it was written.
    ///
    /// # Errors
    /// S3 failures.
    pub async fn ensure_decoy(&self) -> anyhow::Result<bool> {
        if self.object_size(PROOF_DECOY_KEY).await? == Some(DECOY_SIZE) {
            return Ok(false);
        }
        let mut bytes = vec![0u8; DECOY_SIZE as usize];
        rand::thread_rng().fill_bytes(&mut bytes);
        self.put_object(PROOF_DECOY_KEY, Bytes::from(bytes), None)
            .await?;
        Ok(true)
    }
}

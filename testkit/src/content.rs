//! Bytes to upload, their hash, and what an honest client proves about them.

use filestore_contract::api::ChallengeResponse;
use sha2::Digest;

/// Deterministic, non-repeating test bytes (so a shifted or swapped part is caught).
pub fn test_bytes(len: usize, seed: u64) -> Vec<u8> {
    use rand::{RngCore, SeedableRng};
    let mut out = vec![0u8; len];
    rand::rngs::StdRng::seed_from_u64(seed).fill_bytes(&mut out);
    out
}

/// Lowercase hex SHA-256, as the contract writes hashes.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(data))
}

/// Answers an instant-upload challenge from the bytes, as an honest client does.
pub fn answer(challenge: &ChallengeResponse, data: &[u8]) -> String {
    let mut hasher = sha2::Sha256::new();
    hasher.update(hex::decode(&challenge.nonce).expect("the nonce is hex"));
    for r in &challenge.ranges {
        let (offset, length) = (r.offset as usize, r.length as usize);
        hasher.update(&data[offset..offset + length]);
    }
    hex::encode(hasher.finalize())
}

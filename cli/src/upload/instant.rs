//! Instant upload (`POST /v1/fast-upload`, DESIGN.md): when the server already holds
//! verified bytes of this content, a proof of possession over challenged byte ranges of the
//! local file stores it without sending it. The server answers `upload_required` when it
//! cannot (or will not: another user's content under 1 MiB), and `429` once a user has asked
//! 120 times in an hour; either way the bytes are uploaded as usual, and after a `429` the
//! rest of the run does not ask again.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use filestore_contract::api::{ByteRange, FastUploadRequest};
use filestore_contract::domain::Sha256Hex;
use sha2::{Digest, Sha256};

use super::hash::hex_digest;
use crate::api::{Api, File};
use crate::error::{Error, Result};
use crate::output::Output;

/// Read buffer for the ranges of a proof of possession.
const PROOF_BUFFER: usize = 64 * 1024;

/// The answer to a proof-of-possession challenge (DESIGN.md): lowercase hex SHA-256 of the
/// nonce's raw bytes followed by each challenged range of the file, in the order given. Each
/// range is read with a seek and a bounded buffer, never the whole file.
///
/// # Errors
/// A nonce that is not hex, or a range the file cannot supply.
pub fn proof_of_possession(
    path: &Path,
    nonce_hex: &str,
    ranges: &[ByteRange],
) -> Result<Sha256Hex> {
    let nonce = hex::decode(nonce_hex)
        .map_err(|e| Error::Failed(format!("the server's challenge nonce is not hex ({e})")))?;
    let context = || format!("reading {}", path.display());
    let mut file = std::fs::File::open(path).map_err(|e| Error::io(context(), e))?;
    let mut hasher = Sha256::new();
    hasher.update(&nonce);
    let mut buf = vec![0u8; PROOF_BUFFER];
    for range in ranges {
        file.seek(SeekFrom::Start(range.offset))
            .map_err(|e| Error::io(context(), e))?;
        let mut left = range.length;
        while left > 0 {
            let want = usize::try_from(left.min(PROOF_BUFFER as u64)).unwrap_or(PROOF_BUFFER);
            file.read_exact(&mut buf[..want])
                .map_err(|e| Error::io(context(), e))?;
            hasher.update(&buf[..want]);
            left -= want as u64;
        }
    }
    Ok(hex_digest(hasher))
}

/// Instant upload (`POST /v1/fast-upload` and its proof of possession, DESIGN.md): asks for
/// a challenge, answers it from the local file, and returns the new file when the server
/// already holds verified bytes of this content (`None`: send the bytes). Anything but a 401
/// going wrong here is `None` too, so the normal upload still runs. A `429` (too many
/// challenges this hour) sets `refused`, says so in one note, and no later file of the run
/// asks again.
pub(super) async fn try_instant_upload(
    api: &Api,
    out: &Output,
    refused: &AtomicBool,
    path: &Path,
    request: &FastUploadRequest,
) -> Result<Option<File>> {
    if refused.load(Ordering::Relaxed) {
        return Ok(None);
    }
    match instant_upload(api, path, request).await {
        Ok(file) => Ok(file),
        Err(e @ Error::Api { status: 401, .. }) => Err(e),
        Err(Error::Api { status: 429, .. }) => {
            refused.store(true, Ordering::Relaxed);
            out.note(
                "note: instant upload is refused for now (too many attempts this hour); uploading the bytes instead",
            );
            Ok(None)
        }
        Err(_) => Ok(None),
    }
}

async fn instant_upload(
    api: &Api,
    path: &Path,
    request: &FastUploadRequest,
) -> Result<Option<File>> {
    let challenge = api.fast_upload(request).await?;
    let proof = {
        let path = path.to_path_buf();
        let nonce = challenge.nonce.clone();
        let ranges = challenge.ranges.clone();
        tokio::task::spawn_blocking(move || proof_of_possession(&path, &nonce, &ranges))
            .await
            .map_err(|e| Error::Failed(format!("reading the challenged ranges stopped: {e}")))??
    };
    api.prove(challenge.challenge_id.as_str(), proof).await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The proof a server would compute from the same bytes held in memory.
    fn expected_proof(nonce: &[u8], data: &[u8], ranges: &[ByteRange]) -> String {
        let mut hasher = Sha256::new();
        hasher.update(nonce);
        for r in ranges {
            hasher.update(&data[r.offset as usize..(r.offset + r.length) as usize]);
        }
        hex::encode(hasher.finalize())
    }

    #[test]
    fn proof_hashes_the_nonce_bytes_then_each_range_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data.bin");
        let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 + i / 251) as u8).collect();
        std::fs::write(&path, &data).unwrap();
        let nonce = [0xde, 0xad, 0xbe, 0xef, 0x00, 0x01, 0x02, 0x03];
        let nonce_hex = hex::encode(nonce);
        // Out of file order, one longer than the read buffer, one ending at the last byte.
        let ranges = [
            ByteRange {
                offset: 200_000,
                length: 8192,
            },
            ByteRange {
                offset: 1,
                length: 100_000,
            },
            ByteRange {
                offset: 300_000 - 8192,
                length: 8192,
            },
            ByteRange {
                offset: 5,
                length: 0,
            },
        ];
        let proof = proof_of_possession(&path, &nonce_hex, &ranges)
            .unwrap()
            .to_string();
        assert_eq!(proof, expected_proof(&nonce, &data, &ranges));
        assert_eq!(proof.len(), 64);
        assert_eq!(proof, proof.to_lowercase());

        let swapped = [ranges[1], ranges[0], ranges[2]];
        assert_ne!(
            proof_of_possession(&path, &nonce_hex, &swapped)
                .unwrap()
                .as_str(),
            proof,
            "order matters"
        );
        assert_ne!(
            proof_of_possession(&path, "00", &ranges).unwrap().as_str(),
            proof,
            "the nonce matters"
        );
    }

    #[test]
    fn a_small_file_is_proved_whole_and_an_empty_one_by_the_nonce_alone() {
        let dir = tempfile::tempdir().unwrap();
        for (name, data) in [("small.txt", &b"hello world"[..]), ("empty", b"")] {
            let path = dir.path().join(name);
            std::fs::write(&path, data).unwrap();
            let whole = [ByteRange {
                offset: 0,
                length: data.len() as u64,
            }];
            assert_eq!(
                proof_of_possession(&path, "0a0b", &whole).unwrap().as_str(),
                expected_proof(&[0x0a, 0x0b], data, &whole),
                "{name}"
            );
        }
    }

    #[test]
    fn a_proof_fails_on_a_bad_nonce_or_a_range_past_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("short.bin");
        std::fs::write(&path, [1u8; 100]).unwrap();
        let ranges = [ByteRange {
            offset: 90,
            length: 20,
        }];
        assert!(matches!(
            proof_of_possession(&path, "00", &ranges),
            Err(Error::Io { .. })
        ));
        let ok = [ByteRange {
            offset: 0,
            length: 10,
        }];
        assert!(matches!(
            proof_of_possession(&path, "not hex", &ok),
            Err(Error::Failed(_))
        ));
    }
}

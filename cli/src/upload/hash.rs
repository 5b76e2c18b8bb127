//! The SHA-256 of a whole file, read once in large blocks, declared when an upload is
//! created and checked against the stored bytes by the server.

use std::io::Read;
use std::path::Path;

use filestore_contract::domain::Sha256Hex;
use indicatif::ProgressBar;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// Read buffer for hashing.
const HASH_BUFFER: usize = 1 << 20;

/// SHA-256 of a file, read once in 1 MiB blocks; `progress` gets each block's length.
///
/// # Errors
/// The file cannot be read.
pub fn sha256_file(path: &Path, mut progress: impl FnMut(u64)) -> Result<Sha256Hex> {
    let context = || format!("reading {}", path.display());
    let mut file = std::fs::File::open(path).map_err(|e| Error::io(context(), e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; HASH_BUFFER];
    loop {
        let n = file.read(&mut buf).map_err(|e| Error::io(context(), e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        progress(n as u64);
    }
    Ok(hex_digest(hasher))
}

/// A finished SHA-256 as the contract writes it.
pub fn hex_digest(hasher: Sha256) -> Sha256Hex {
    Sha256Hex::parse(&hex::encode(hasher.finalize())).expect("a digest is 64 hex digits")
}

/// [`sha256_file`] off the async runtime, advancing `bar`.
pub(super) async fn hash_file(path: &Path, bar: ProgressBar) -> Result<Sha256Hex> {
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || sha256_file(&path, |n| bar.inc(n)))
        .await
        .map_err(|e| Error::Failed(format!("hashing stopped: {e}")))?
}

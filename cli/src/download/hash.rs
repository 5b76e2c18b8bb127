//! The SHA-256 of a download, computed while it runs: parts finish in any order, and each
//! is read back from the partial file and hashed as soon as every part before it is written.

use std::collections::BTreeSet;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::mpsc::Receiver;

use sha2::{Digest, Sha256};
use tokio::task::JoinHandle;

use super::parts::Parts;
use crate::error::{Error, Result};

/// What the hasher reached: the hash of parts `0..parts_hashed`.
pub struct Hashed {
    pub hasher: Sha256,
    pub parts_hashed: u64,
}

/// Starts hashing `temp` in part order on a thread of its own: the parts in `done` first,
/// then each part number received on `written`, until every part is hashed or the senders
/// are gone.
pub fn spawn(
    temp: &Path,
    parts: Parts,
    done: BTreeSet<u64>,
    written: Receiver<u64>,
) -> JoinHandle<Result<Hashed>> {
    let temp = temp.to_path_buf();
    tokio::task::spawn_blocking(move || hash_in_order(&temp, parts, done, &written))
}

fn hash_in_order(
    temp: &PathBuf,
    parts: Parts,
    mut ready: BTreeSet<u64>,
    written: &Receiver<u64>,
) -> Result<Hashed> {
    let io = |e| Error::io(format!("reading {}", temp.display()), e);
    let mut file = std::fs::File::open(temp).map_err(io)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut next = 0;
    loop {
        while ready.remove(&next) {
            let range = parts.range(next);
            file.seek(SeekFrom::Start(range.start)).map_err(io)?;
            let mut left = range.end - range.start;
            while left > 0 {
                let n = usize::try_from(left).map_or(buf.len(), |l| l.min(buf.len()));
                file.read_exact(&mut buf[..n]).map_err(io)?;
                hasher.update(&buf[..n]);
                left -= n as u64;
            }
            next += 1;
        }
        if next >= parts.count() {
            break;
        }
        match written.recv() {
            Ok(n) => {
                ready.insert(n);
            }
            Err(_) => break,
        }
    }
    Ok(Hashed {
        hasher,
        parts_hashed: next,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn parts_written_out_of_order_hash_as_the_whole_file() {
        let dir = tempfile::tempdir().unwrap();
        let temp = dir.path().join("p");
        let data: Vec<u8> = (0..2_500_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&temp, &data).unwrap();
        let parts = Parts {
            size: data.len() as u64,
            part_size: 1 << 20,
        };
        let (tx, rx) = std::sync::mpsc::channel();
        let running = spawn(&temp, parts, BTreeSet::from([1]), rx);
        tx.send(2).unwrap();
        tx.send(0).unwrap();
        let hashed = running.await.unwrap().unwrap();
        assert_eq!(hashed.parts_hashed, 3);
        assert_eq!(hashed.hasher.finalize()[..], Sha256::digest(&data)[..]);

        let (tx, rx) = std::sync::mpsc::channel();
        let running = spawn(&temp, parts, BTreeSet::new(), rx);
        tx.send(1).unwrap();
        drop(tx);
        let stopped = running.await.unwrap().unwrap();
        assert_eq!(stopped.parts_hashed, 0, "part 0 never came");
    }
}

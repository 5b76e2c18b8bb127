//! A download's parts, and the sidecar file beside the partial download that records which
//! of them are written, so an interrupted download re-fetches only the others.

use std::collections::BTreeSet;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::write_private;
use crate::error::Result;

/// Bytes per ranged GET unless `--part-size` says otherwise.
pub const DEFAULT_PART_SIZE: u64 = 8 << 20;

/// The file cut into parts of `part_size` bytes (the last one shorter).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Parts {
    pub size: u64,
    pub part_size: u64,
}

impl Parts {
    pub fn count(self) -> u64 {
        self.size.div_ceil(self.part_size)
    }

    /// The bytes of part `n` (0-based).
    pub fn range(self, n: u64) -> Range<u64> {
        let start = n * self.part_size;
        start..self.size.min(start + self.part_size)
    }

    /// The bytes of parts `parts`.
    pub fn bytes(self, parts: &Range<u64>) -> Range<u64> {
        self.range(parts.start).start..self.range(parts.end - 1).end
    }

    /// Files under two parts go in one stream: parallel GETs would not shorten them.
    pub fn one_stream(self, concurrency: usize) -> bool {
        concurrency <= 1 || self.size < 2 * self.part_size
    }

    /// What to fetch: each missing part on its own, or in one stream each run of
    /// consecutive missing parts.
    pub fn spans(self, done: &BTreeSet<u64>, one_stream: bool) -> Vec<Range<u64>> {
        let mut spans: Vec<Range<u64>> = Vec::new();
        for n in (0..self.count()).filter(|n| !done.contains(n)) {
            match spans.last_mut() {
                Some(last) if one_stream && last.end == n => last.end = n + 1,
                _ => spans.push(n..n + 1),
            }
        }
        spans
    }
}

/// What the sidecar holds: the parts written to the partial file, and which bytes they are.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartState {
    pub file_id: String,
    pub size: u64,
    pub part_size: u64,
    /// Storage's ETag of the object the written parts came from: parts of another object
    /// (the file's hot copy replaced by its cold one, say) are never mixed in.
    pub etag: Option<String>,
    pub done: BTreeSet<u64>,
}

impl PartState {
    pub fn new(file_id: &str, parts: Parts) -> Self {
        Self {
            file_id: file_id.to_string(),
            size: parts.size,
            part_size: parts.part_size,
            etag: None,
            done: BTreeSet::new(),
        }
    }

    pub fn parts(&self) -> Parts {
        Parts {
            size: self.size,
            part_size: self.part_size,
        }
    }

    /// Bytes the written parts hold.
    pub fn done_bytes(&self) -> u64 {
        let parts = self.parts();
        self.done
            .iter()
            .map(|&n| parts.range(n).end - parts.range(n).start)
            .sum()
    }
}

/// The sidecar of the partial download `temp`.
pub fn state_path(temp: &Path) -> PathBuf {
    let mut name = temp.as_os_str().to_owned();
    name.push(".json");
    PathBuf::from(name)
}

/// What an earlier run of this download left, if it is of this file at this size, its
/// parts are within it, and the partial file is there.
pub fn load(temp: &Path, file_id: &str, size: u64) -> Option<PartState> {
    let bytes = std::fs::read(state_path(temp)).ok()?;
    let state: PartState = serde_json::from_slice(&bytes).ok()?;
    let count = state.parts().count();
    (state.file_id == file_id
        && state.size == size
        && state.part_size > 0
        && state.done.iter().all(|&n| n < count)
        && temp.exists())
    .then_some(state)
}

/// Writes the sidecar atomically (a crash leaves the old one or the new one).
///
/// # Errors
/// It cannot be written.
pub fn save(temp: &Path, state: &PartState) -> Result<()> {
    let bytes = serde_json::to_vec(state).expect("part state serializes");
    write_private(&state_path(temp), &bytes)
}

/// Removes the partial download and its sidecar.
pub fn remove(temp: &Path) {
    let _ = std::fs::remove_file(temp);
    let _ = std::fs::remove_file(state_path(temp));
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: Parts = Parts {
        size: 10,
        part_size: 4,
    };

    #[test]
    fn parts_cover_the_file_the_last_one_shorter() {
        assert_eq!(P.count(), 3);
        assert_eq!(P.range(0), 0..4);
        assert_eq!(P.range(2), 8..10);
        assert_eq!(P.bytes(&(1..3)), 4..10);
        let exact = Parts {
            size: 8,
            part_size: 4,
        };
        assert_eq!(exact.count(), 2);
        assert_eq!(exact.range(1), 4..8);
        let empty = Parts {
            size: 0,
            part_size: 4,
        };
        assert_eq!(empty.count(), 0);
        assert!(empty.spans(&BTreeSet::new(), false).is_empty());
    }

    #[test]
    fn spans_are_single_parts_or_runs_of_missing_ones() {
        let done = BTreeSet::from([1]);
        assert_eq!(P.spans(&done, false), [0..1, 2..3]);
        assert_eq!(P.spans(&BTreeSet::new(), true), vec![0..3]);
        assert_eq!(P.spans(&done, true), [0..1, 2..3]);
        assert_eq!(P.spans(&BTreeSet::from([0, 1, 2]), true), []);
    }

    #[test]
    fn small_files_and_concurrency_one_go_in_one_stream() {
        assert!(P.one_stream(1));
        assert!(!P.one_stream(4), "10 bytes is over two parts of 4");
        assert!(
            Parts {
                size: 7,
                part_size: 4
            }
            .one_stream(4)
        );
        assert!(
            !Parts {
                size: 8,
                part_size: 4
            }
            .one_stream(4)
        );
    }

    #[test]
    fn state_is_kept_only_for_the_same_file_and_size_beside_its_partial() {
        let dir = tempfile::tempdir().unwrap();
        let temp = dir.path().join(".filestore-f1.part");
        assert_eq!(
            state_path(&temp),
            dir.path().join(".filestore-f1.part.json")
        );
        let mut state = PartState::new("f1", P);
        state.done.insert(2);
        state.etag = Some("\"e\"".into());
        save(&temp, &state).unwrap();
        assert_eq!(load(&temp, "f1", 10), None, "no partial file");
        std::fs::write(&temp, b"").unwrap();
        assert_eq!(load(&temp, "f1", 10), Some(state.clone()));
        assert_eq!(state.done_bytes(), 2);
        assert_eq!(load(&temp, "f2", 10), None);
        assert_eq!(load(&temp, "f1", 11), None);
        state.done.insert(3);
        save(&temp, &state).unwrap();
        assert_eq!(load(&temp, "f1", 10), None, "a part past the end");
        std::fs::write(state_path(&temp), b"{").unwrap();
        assert_eq!(load(&temp, "f1", 10), None);
        remove(&temp);
        assert!(!temp.exists() && !state_path(&temp).exists());
    }
}

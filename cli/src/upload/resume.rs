//! Resuming an upload: what an earlier run of the same upload left (nothing, an upload to
//! continue with the parts S3 already holds, or one already completed), and recording a
//! completed upload so a re-run skips it. S3 is the truth; the local state only remembers ids.

use std::collections::BTreeSet;

use filestore_contract::domain::{PartNumber, PartPlan, Sha256Hex, UploadState};

use super::Uploader;
use crate::api::{File, is_not_found};
use crate::config::{ResumeKey, ResumeState};
use crate::error::Result;

/// Parts `1..=part_count` that are not in `done`, in order.
pub fn missing_parts(part_count: u64, done: &BTreeSet<PartNumber>) -> Vec<PartNumber> {
    (1..=part_count)
        .map_while(|n| PartNumber::parse(n).ok())
        .filter(|n| !done.contains(n))
        .collect()
}

/// An upload to continue: its id, the server's plan, the parts S3 holds, and the SHA-256
/// declared at create (the parts read must hash to it).
pub(super) struct Plan {
    pub upload_id: String,
    pub parts: PartPlan,
    pub done: BTreeSet<PartNumber>,
    pub resumed: bool,
    pub declared: Option<Sha256Hex>,
}

pub(super) enum Resume {
    Start,
    Continue(Plan),
    /// The upload (this id) was completed by an earlier run that stopped right after.
    Finished(String, Box<File>),
}

/// Unix seconds of an RFC 3339 time (the server's `expires_at`).
pub(super) fn unix_seconds(rfc3339: &str) -> Option<u64> {
    let t = time::OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339)
        .ok()?;
    u64::try_from(t.unix_timestamp()).ok()
}

impl Uploader<'_> {
    /// The File an earlier run made of `key`'s file, if it still exists as that run left it
    /// (same folder and size; the SHA-256 that run read, or none yet: an upload that
    /// declared none has none until the server verifies it; and the `name` the server gave
    /// it, which a taken name made `a (1).jpg`).
    pub(super) async fn still_there(
        &self,
        file_id: &str,
        name: &str,
        sha256: Option<&str>,
        key: &ResumeKey,
    ) -> Result<Option<File>> {
        match self.api.file(file_id).await {
            Ok(file)
                if file.name == name
                    && file.parent_id.as_str() == key.folder_id
                    && file.size == key.size
                    && file.sha256.as_deref().is_none_or(|s| Some(s) == sha256) =>
            {
                Ok(Some(file))
            }
            Ok(_) => Ok(None),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Records that `key`'s file (its bytes hashing to `sha256`) is now the File `file_id`,
    /// named `name` by the server, so a re-run skips it.
    pub(super) fn remember(
        &self,
        key: &ResumeKey,
        upload_id: Option<String>,
        sha256: Option<&Sha256Hex>,
        file_id: &str,
        name: &str,
    ) {
        let state = ResumeState {
            name: name.to_string(),
            ..ResumeState::completed(key, upload_id, file_id, sha256.map(Sha256Hex::as_str))
        };
        if let Err(e) = self.store.save(key, &state) {
            self.out.note(&format!(
                "note: a re-run will upload {} again ({e})",
                key.path.display()
            ));
        }
    }

    /// What an earlier run left: nothing, an upload to continue, or one already completed.
    pub(super) async fn resume(&self, key: &ResumeKey) -> Result<Resume> {
        let Some(state) = self.store.load(key) else {
            return Ok(Resume::Start);
        };
        let Some(upload_id) = state.upload_id else {
            self.store.clear(key);
            return Ok(Resume::Start);
        };
        let status = match self.api.upload_status(&upload_id).await {
            Ok(status) => status,
            Err(e) if is_not_found(&e) => {
                self.out.note(&format!(
                    "note: the earlier upload of {} expired or was aborted; starting over",
                    state.name
                ));
                self.store.clear(key);
                return Ok(Resume::Start);
            }
            Err(e) => return Err(e),
        };
        if status.state == UploadState::Completed
            && let Some(file_id) = &status.file_id
        {
            let file = self.api.file(file_id.as_str()).await?;
            return Ok(Resume::Finished(upload_id, Box::new(file)));
        }
        if status.state != UploadState::Active || status.size != key.size {
            self.store.clear(key);
            return Ok(Resume::Start);
        }
        Ok(Resume::Continue(Plan {
            upload_id,
            parts: PartPlan {
                part_size: status.part_size,
                part_count: status.part_count,
            },
            done: status
                .parts_done
                .iter()
                .flatten()
                .filter_map(|p| PartNumber::parse(u64::from(p.part_number)).ok())
                .collect(),
            resumed: true,
            declared: status
                .sha256
                .as_deref()
                .and_then(|s| Sha256Hex::parse(s).ok()),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(numbers: &[u64]) -> Vec<PartNumber> {
        numbers
            .iter()
            .map(|&n| PartNumber::parse(n).unwrap())
            .collect()
    }

    #[test]
    fn missing_parts_are_those_s3_does_not_hold() {
        let done: BTreeSet<PartNumber> = parts(&[1, 3]).into_iter().collect();
        assert_eq!(missing_parts(4, &done), parts(&[2, 4]));
        assert_eq!(missing_parts(2, &BTreeSet::new()), parts(&[1, 2]));
        let all = parts(&[1, 2]).into_iter().collect();
        assert!(missing_parts(2, &all).is_empty());
    }

    #[test]
    fn server_times_become_unix_seconds() {
        assert_eq!(unix_seconds("2026-11-26T00:00:00Z"), Some(1_795_651_200));
        assert_eq!(
            unix_seconds("2026-11-26T01:00:00+01:00"),
            Some(1_795_651_200)
        );
        assert_eq!(unix_seconds("tomorrow"), None);
    }
}

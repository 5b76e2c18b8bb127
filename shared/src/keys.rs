//! Every key filestore stores things under, built here and nowhere else: the DynamoDB
//! table's partition and sort keys (`docs/dynamodb.md` is the table's map), the `due` index's
//! partitions, and the S3 keys of the hot bucket and the cold store. Where anything reads a
//! key back, its parser sits beside its builder, and a test builds then parses each pair.
//!
//! These strings are the stored data format: changing one orphans everything already
//! stored under the old one.
//!
//! # Layout
//! - Accounts: [`username_pk`] ([`USERNAME_SK`], [`LOGIN_FAILURES_SK`],
//!   [`login_failures_from_sk`]), [`user_pk`] ([`PROFILE_SK`]), [`signups_pk`]
//!   ([`SIGNUPS_SK`]).
//! - A user's partition: [`upload_sk`], [`abort_sk`], [`file_sk`], [`folder_sk`], [`child_sk`] /
//!   [`children_prefix`] ([`Kind`]), [`trash_sk`] / [`parse_trash_sk`], [`challenge_sk`],
//!   [`CHALLENGE_COUNT_SK`], [`holding_sk`], [`share_sk`], and the prefixes that list them.
//! - Elsewhere in the table: [`share_token_pk`], [`content_pk`], [`job_sk`],
//!   [`transfer_pk`] / [`parse_transfer_pk`].
//! - The `due` index: [`Due`], [`DUE_SHARDS`].
//! - S3: [`object_key`] / [`parse_object_key`] (hot), [`cold_key`] / [`parse_cold_key`] (cold),
//!   [`PROOF_DECOY_KEY`] (cold).

use filestore_contract::domain::{ChallengeId, FileId, FolderId, ShareId, UploadId, UserId};

/// The partition of a username: its claim and its failed logins.
pub fn username_pk(canonical_name: &str) -> String {
    format!("USERNAME#{canonical_name}")
}

/// The username claim, in [`username_pk`]: which user owns the name.
pub const USERNAME_SK: &str = "USERNAME";
/// The failed-login counter of a username over every address, in [`username_pk`].
pub const LOGIN_FAILURES_SK: &str = "LOGINFAIL";

/// The failed-login counter of a username from one source address, in [`username_pk`].
pub fn login_failures_from_sk(address: &str) -> String {
    format!("{LOGIN_FAILURES_SK}#{address}")
}

/// The partition of a source address's signup counter.
pub fn signups_pk(address: &str) -> String {
    format!("SIGNUPS#{address}")
}

/// The only item in [`signups_pk`].
pub const SIGNUPS_SK: &str = "SIGNUPS";

/// The partition of everything a user owns.
pub fn user_pk(user_id: &UserId) -> String {
    format!("USER#{user_id}")
}

/// The user's profile, in [`user_pk`].
pub const PROFILE_SK: &str = "PROFILE";

/// What every upload's sort key starts with, in [`user_pk`].
pub const UPLOAD_PREFIX: &str = "UPLOAD#";

/// An upload, in its owner's [`user_pk`].
pub fn upload_sk(upload_id: &UploadId) -> String {
    format!("{UPLOAD_PREFIX}{upload_id}")
}

/// An ended upload whose multipart upload (and any object its parts were joined into) S3
/// has not yet confirmed gone, in its owner's [`user_pk`].
pub fn abort_sk(upload_id: &UploadId) -> String {
    format!("ABORT#{upload_id}")
}

/// What every file's sort key starts with, in [`user_pk`].
pub const FILE_PREFIX: &str = "FILE#";

/// A file, in its owner's [`user_pk`].
pub fn file_sk(file_id: &FileId) -> String {
    format!("{FILE_PREFIX}{file_id}")
}

/// What every trash entry's sort key starts with, in [`user_pk`].
pub const TRASH_PREFIX: &str = "TRASH#";

/// A trash entry, in its owner's [`user_pk`]: the time it was trashed (epoch milliseconds,
/// 13 digits, so the keys sort by time) and the trashed item's id. A `Query` on
/// [`TRASH_PREFIX`] backwards lists the trash newest first.
pub fn trash_sk(trashed_at_millis: i64, id: &str) -> String {
    format!("{TRASH_PREFIX}{trashed_at_millis:013}#{id}")
}

/// [`trash_sk`] -> the time (epoch milliseconds) and the id.
pub fn parse_trash_sk(sk: &str) -> Option<(i64, &str)> {
    let (millis, id) = sk.strip_prefix(TRASH_PREFIX)?.split_once('#')?;
    if millis.len() != 13 || !millis.bytes().all(|b| b.is_ascii_digit()) || id.is_empty() {
        return None;
    }
    Some((millis.parse().ok()?, id))
}

/// What every folder's sort key starts with, in [`user_pk`].
pub const FOLDER_PREFIX: &str = "FOLDER#";

/// A folder, in its owner's [`user_pk`]. The root folder is never stored.
pub fn folder_sk(folder_id: &FolderId) -> String {
    format!("{FOLDER_PREFIX}{folder_id}")
}

/// The two kinds of things a folder holds. Their digit sorts folders before files in a
/// folder's [`children_prefix`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Folder,
    File,
}

impl Kind {
    fn digit(self) -> char {
        match self {
            Self::Folder => '0',
            Self::File => '1',
        }
    }

    /// The kind a name must also be free of: names are unique across both.
    pub fn other(self) -> Self {
        match self {
            Self::Folder => Self::File,
            Self::File => Self::Folder,
        }
    }
}

/// What the child entries of a folder start with, in its owner's [`user_pk`]: a `Query` on it
/// lists the folder, folders first, then files, each by the UTF-8 bytes of their names.
pub fn children_prefix(parent: &FolderId) -> String {
    format!("CHILD#{parent}#")
}

/// The child entry of a file or folder named `name` in `parent`: the claim on the name, and
/// the folder's listing row (its `id` names the item).
pub fn child_sk(parent: &FolderId, kind: Kind, name: &str) -> String {
    format!("{}{}#{name}", children_prefix(parent), kind.digit())
}

/// [`child_sk`] -> its kind and name, for a child entry of `parent`; `None` for any other key.
pub fn parse_child_sk<'a>(parent: &FolderId, sk: &'a str) -> Option<(Kind, &'a str)> {
    let rest = sk.strip_prefix(&children_prefix(parent))?;
    let (digit, name) = rest.split_once('#')?;
    let kind = match digit {
        "0" => Kind::Folder,
        "1" => Kind::File,
        _ => return None,
    };
    Some((kind, name))
}

/// An instant-upload challenge, in the [`user_pk`] of the user it was issued to.
pub fn challenge_sk(challenge_id: &ChallengeId) -> String {
    format!("CHALLENGE#{challenge_id}")
}

/// The counter of instant-upload challenges issued to a user, in their [`user_pk`].
pub const CHALLENGE_COUNT_SK: &str = "CHALLENGECOUNT";

/// That a user holds verified content of this SHA-256 (a count of their files on it), in
/// their [`user_pk`]. Small content is only ever instant-uploaded by a user who holds it.
pub fn holding_sk(sha256: &str) -> String {
    format!("HOLDING#{sha256}")
}

/// What every share link's sort key starts with, in [`user_pk`].
pub const SHARE_PREFIX: &str = "SHARE#";

/// A share link, in its owner's [`user_pk`].
pub fn share_sk(share_id: &ShareId) -> String {
    format!("{SHARE_PREFIX}{share_id}")
}

/// The pointer from a share token's SHA-256 to its link.
pub fn share_token_pk(token_hash: &str) -> String {
    format!("SHARETOKEN#{token_hash}")
}

/// The only item in [`share_token_pk`].
pub const SHARE_TOKEN_SK: &str = "SHARETOKEN";

/// Verified content, by the SHA-256 of its bytes.
pub fn content_pk(sha256: &str) -> String {
    format!("CONTENT#{sha256}")
}

/// The only item in [`content_pk`]; also how a scan tells content records.
pub const CONTENT_SK: &str = "CONTENT";

/// The key of the item no one writes, read by a function's cold start to open its
/// connection to the table ([`crate::AppState::warm_up`]); also the S3 key it heads.
pub const WARM_UP_KEY: &str = "WARM-UP";

/// The partition of the janitor's periodic jobs.
pub const JANITOR_PK: &str = "JANITOR";

/// A periodic job of the janitor, in [`JANITOR_PK`].
pub fn job_sk(job: &str) -> String {
    format!("JOB#{job}")
}

/// The checkpoint of a file's transfer. Keyed by the file alone, so the janitor can find it
/// from a cold key.
pub fn transfer_pk(file_id: &FileId) -> String {
    format!("TRANSFER#{file_id}")
}

/// [`transfer_pk`] -> the file.
pub fn parse_transfer_pk(pk: &str) -> Option<FileId> {
    FileId::parse(pk.strip_prefix("TRANSFER#")?).ok()
}

/// The only item in [`transfer_pk`].
pub const TRANSFER_SK: &str = "TRANSFER";

/// Partitions of the `due` index per kind of item.
pub const DUE_SHARDS: u32 = 16;

/// A kind of item the janitor acts on, found through the `due` index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Due {
    Upload,
    /// An ended upload whose S3 side is not confirmed gone, due a while after it ended.
    Abort,
    HotCopy,
    Content,
    /// A file whose transfer to the cold store has not verified it yet.
    Transfer,
    /// A trash entry, due at its `purge_at`.
    Trash,
    /// A folder whose purge began (and may have stopped halfway), due at once.
    Purge,
}

impl Due {
    fn name(self) -> &'static str {
        match self {
            Self::Upload => "UPLOAD",
            Self::Abort => "ABORT",
            Self::HotCopy => "HOT",
            Self::Content => "CONTENT",
            Self::Transfer => "TRANSFER",
            Self::Trash => "TRASH",
            Self::Purge => "PURGE",
        }
    }

    /// One of this kind's [`DUE_SHARDS`] partitions of the index (`due_pk`).
    pub fn partition(self, shard: u32) -> String {
        format!("DUE#{}#{shard:x}", self.name())
    }

    /// The `due_pk` of the item with this id: its kind and a shard from a hash of the id.
    pub fn key(self, id: &str) -> String {
        let hash = id.bytes().fold(0x811c_9dc5_u32, |h, b| {
            (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
        });
        self.partition(hash % DUE_SHARDS)
    }
}

/// The S3 key of a file's bytes. It names the owner and the file, so an S3 event alone tells
/// which File an object belongs to.
pub fn object_key(user_id: &UserId, file_id: &FileId) -> String {
    format!("files/{user_id}/{file_id}")
}

/// `files/<user_id>/<file_id>` -> the owner and the file.
pub fn parse_object_key(key: &str) -> Option<(UserId, FileId)> {
    let mut parts = key.split('/');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some("files"), Some(user), Some(file), None) => {
            Some((UserId::parse(user).ok()?, FileId::parse(file).ok()?))
        }
        _ => None,
    }
}

/// Where the transfer puts verified copies in the cold store.
pub const COLD_BLOB_PREFIX: &str = "blobs/";

/// The decoy in the cold store: a proof for content that is not stored (or not eligible)
/// reads its ranges here instead, so it costs what a real proof costs. Outside
/// [`COLD_BLOB_PREFIX`], so the orphan sweep leaves it alone.
pub const PROOF_DECOY_KEY: &str = "decoy/proof-of-possession";

/// The cold-store key of a file's copy. Derived from the file, so every delivery for one
/// file writes the same key and nothing piles up.
pub fn cold_key(file_id: &FileId) -> String {
    format!("{COLD_BLOB_PREFIX}{file_id}")
}

/// [`cold_key`] -> the file; `None` for anything else in the cold store.
pub fn parse_cold_key(key: &str) -> Option<FileId> {
    FileId::parse(key.strip_prefix(COLD_BLOB_PREFIX)?).ok()
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    /// The strings already stored: a change here is a data migration, not a refactor.
    #[test]
    fn keys_keep_their_stored_format() {
        let (u, up, f) = (UserId::generate(), UploadId::generate(), FileId::generate());
        let (c, sh) = (ChallengeId::generate(), ShareId::generate());
        assert_eq!(username_pk("alice"), "USERNAME#alice");
        assert_eq!(LOGIN_FAILURES_SK, "LOGINFAIL");
        assert_eq!(login_failures_from_sk("192.0.2.7"), "LOGINFAIL#192.0.2.7");
        assert_eq!(signups_pk("2001:db8::/64"), "SIGNUPS#2001:db8::/64");
        assert_eq!(user_pk(&u), format!("USER#{u}"));
        assert_eq!(upload_sk(&up), format!("UPLOAD#{up}"));
        assert_eq!(abort_sk(&up), format!("ABORT#{up}"));
        assert!(!abort_sk(&up).starts_with(UPLOAD_PREFIX));
        assert_eq!(file_sk(&f), format!("FILE#{f}"));
        let folder = FolderId::generate();
        assert_eq!(folder_sk(&folder), format!("FOLDER#{folder}"));
        assert_eq!(
            child_sk(&FolderId::root(), Kind::Folder, "a b"),
            "CHILD#root#0#a b"
        );
        assert_eq!(
            child_sk(&folder, Kind::File, "x.txt"),
            format!("CHILD#{folder}#1#x.txt")
        );
        assert_eq!(challenge_sk(&c), format!("CHALLENGE#{c}"));
        assert_eq!(CHALLENGE_COUNT_SK, "CHALLENGECOUNT");
        assert_eq!(holding_sk("ab"), "HOLDING#ab");
        assert_eq!(share_sk(&sh), format!("SHARE#{sh}"));
        assert_eq!(share_token_pk("ab"), "SHARETOKEN#ab");
        assert_eq!(content_pk("cd"), "CONTENT#cd");
        assert_eq!(job_sk("orphan-sweep"), "JOB#orphan-sweep");
        assert_eq!(transfer_pk(&f), format!("TRANSFER#{f}"));
        assert_eq!(Due::Upload.partition(10), "DUE#UPLOAD#a");
        assert_eq!(Due::Abort.partition(2), "DUE#ABORT#2");
        assert_eq!(Due::HotCopy.partition(0), "DUE#HOT#0");
        assert_eq!(Due::Content.partition(15), "DUE#CONTENT#f");
        assert_eq!(Due::Transfer.partition(3), "DUE#TRANSFER#3");
        assert_eq!(Due::Trash.partition(3), "DUE#TRASH#3");
        assert_eq!(Due::Purge.partition(4), "DUE#PURGE#4");
        assert_eq!(
            trash_sk(1_733_000_000_123, f.as_str()),
            format!("TRASH#1733000000123#{f}")
        );
        assert!(trash_sk(5, "x").starts_with(TRASH_PREFIX));
        assert_eq!(object_key(&u, &f), format!("files/{u}/{f}"));
        assert_eq!(cold_key(&f), format!("blobs/{f}"));
        assert_eq!(PROOF_DECOY_KEY, "decoy/proof-of-possession");
        assert!(!PROOF_DECOY_KEY.starts_with(COLD_BLOB_PREFIX));
        assert!(upload_sk(&up).starts_with(UPLOAD_PREFIX));
        assert!(file_sk(&f).starts_with(FILE_PREFIX));
        assert!(share_sk(&sh).starts_with(SHARE_PREFIX));
    }

    /// Child entries parse back to their kind and name, only within their own folder; folders
    /// sort before files, and a name may hold '#'.
    #[test]
    fn child_keys_parse_back_within_their_folder() {
        let (root, other) = (FolderId::root(), FolderId::generate());
        let sk = child_sk(&root, Kind::File, "a#b");
        assert_eq!(parse_child_sk(&root, &sk), Some((Kind::File, "a#b")));
        assert_eq!(parse_child_sk(&other, &sk), None);
        assert!(child_sk(&root, Kind::Folder, "zzz") < child_sk(&root, Kind::File, "a"));
        assert_eq!(Kind::File.other(), Kind::Folder);
    }

    #[test]
    fn transfer_keys_parse_back_to_their_file() {
        let file = FileId::generate();
        assert_eq!(parse_transfer_pk(&transfer_pk(&file)), Some(file.clone()));
        assert_eq!(parse_transfer_pk(&content_pk(file.as_str())), None);
    }

    #[test]
    fn trash_keys_parse_back_and_sort_by_time() {
        let f = FileId::generate();
        let sk = trash_sk(1_733_000_000_123, f.as_str());
        assert_eq!(parse_trash_sk(&sk), Some((1_733_000_000_123, f.as_str())));
        assert!(trash_sk(999, "a") < trash_sk(1000, "a"));
        for bad in [
            "TRASH#",
            "TRASH#12#x",
            "FILE#x",
            "TRASH#000000000000a#x",
            "TRASH#0000000000001#",
        ] {
            assert_eq!(parse_trash_sk(bad), None, "{bad}");
        }
    }

    #[test]
    fn only_file_keys_are_ours() {
        let (u, f) = (UserId::generate(), FileId::generate());
        assert_eq!(
            parse_object_key(&object_key(&u, &f)),
            Some((u.clone(), f.clone()))
        );
        assert_eq!(parse_object_key(&format!("files/{u}/{f}/x")), None);
        assert_eq!(parse_object_key(&format!("other/{u}/{f}")), None);
        assert_eq!(parse_object_key("files/../x"), None);
    }

    #[test]
    fn cold_keys_parse_back_to_their_file() {
        let f = FileId::generate();
        assert_eq!(parse_cold_key(&cold_key(&f)), Some(f.clone()));
        assert_eq!(parse_cold_key("blobs/stopped-transfer"), None);
        assert_eq!(parse_cold_key(&object_key(&UserId::generate(), &f)), None);
    }

    #[test]
    fn ids_spread_over_every_shard_and_keep_theirs() {
        let mut seen = HashSet::new();
        for i in 0..1000 {
            let id = format!("0192f0c8-7b1e-7c3a-9d4e-{i:012x}");
            let key = Due::Upload.key(&id);
            assert_eq!(key, Due::Upload.key(&id));
            seen.insert(key);
        }
        assert_eq!(seen.len(), DUE_SHARDS as usize);
        assert!(seen.iter().all(|k| k.starts_with("DUE#UPLOAD#")));
    }
}

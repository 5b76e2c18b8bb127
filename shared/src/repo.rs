//! The single-table DynamoDB repository: one [`Repo`] over one table, with the records each
//! kind of item reads back into. `docs/dynamodb.md` is the table's map (attributes, the `due`
//! index, and why it has this shape).
//!
//! | item | PK | SK |
//! |---|---|---|
//! | username claim | `USERNAME#<lowercased name>` | `USERNAME` |
//! | failed logins of a name | `USERNAME#<lowercased name>` | `LOGINFAIL` |
//! | failed logins of a name from an address | `USERNAME#<lowercased name>` | `LOGINFAIL#<address>` |
//! | signups from an address | `SIGNUPS#<address>` | `SIGNUPS` |
//! | user | `USER#<user_id>` | `PROFILE` |
//! | upload | `USER#<user_id>` | `UPLOAD#<upload_id>` |
//! | ended upload's S3 side, pending | `USER#<user_id>` | `ABORT#<upload_id>` |
//! | file | `USER#<user_id>` | `FILE#<file_id>` |
//! | folder | `USER#<user_id>` | `FOLDER#<folder_id>` |
//! | child entry (a name in a folder) | `USER#<user_id>` | `CHILD#<parent_id>#<0 folder, 1 file>#<name>` |
//! | challenge | `USER#<user_id>` | `CHALLENGE#<challenge_id>` |
//! | challenges issued in an hour | `USER#<user_id>` | `CHALLENGECOUNT` |
//! | small content held | `USER#<user_id>` | `HOLDING#<sha256>` |
//! | content | `CONTENT#<sha256>` | `CONTENT` |
//! | trash entry | `USER#<user_id>` | `TRASH#<epoch millis>#<id>` |
//! | share link | `USER#<user_id>` | `SHARE#<share_id>` |
//! | share token | `SHARETOKEN#<token_hash>` | `SHARETOKEN` |
//! | janitor job | `JANITOR` | `JOB#<name>` |
//! | transfer checkpoint | `TRANSFER#<file_id>` | `TRANSFER` |
//!
//! Every key is built in [`crate::keys`]; nothing here formats one.
//!
//! Everything a user owns lives in their own partition, so every read is keyed by the caller's
//! id and ownership is part of the key: another user's id simply is not found.
//! Reads are strongly consistent, so a client always sees its own last write.
//!
//! # Layout
//! Each module adds one `impl Repo` block for its kind of item, and the records it reads.
//! - `item`: the `Item` map and conversions between attributes and Rust values.
//! - `table`: reads by key and by prefix, and write transactions with their retries.
//! - `schema`: the table's keys, index and TTL, created by the local runner.
//! - `users`: profiles, signup, and the counters and quota every file write moves.
//! - `accounts`: password changes.
//! - `limits`: the counters that throttle failed logins, signups and instant-upload
//!   challenges, taken before the attempt.
//! - `uploads`: multipart upload records, and completing one into a File.
//! - `aborts`: what S3 still holds of ended uploads, until it confirms it gone.
//! - `files`: file records: reads, delete.
//! - `folders`: folders, their chains of parents, and the child entries that make names
//!   unique per folder.
//! - `listing`: a folder's entries a page at a time, the id behind a name, a subtree's depth.
//! - `moves`: renaming and moving folders and files.
//! - `trash`: trash entries: trashing a file or folder, restoring it, purging a file.
//! - `subtree`: a folder's subtree a page at a time: its bytes, and the steps of its purge.
//! - `content`: verified content, verification, instant upload, collection.
//! - `challenges`: instant upload's proof-of-possession challenges.
//! - `shares`: share links and their token pointers.
//! - `transfers`: checkpoints of transfers that take more than one run.
//! - `stranded`: unverified files past their due time, whose transfer the janitor re-queues.
//! - `janitor`: the `due` index, the reference check's reads and repair, and the janitor's
//!   periodic jobs.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue as Av;

mod aborts;
mod accounts;
mod challenges;
mod content;
mod files;
mod folders;
mod item;
mod janitor;
mod limits;
mod listing;
mod moves;
mod schema;
mod shares;
mod stranded;
mod subtree;
mod table;
mod transfers;
mod trash;
mod uploads;
mod users;

pub use aborts::{ABORT_GRACE, PendingAbort};
pub use challenges::ChallengeRecord;
pub use content::{ContentRecord, UNSHARED_BELOW, Verified, VerifyOutcome};
pub use files::{Copies, FileRecord};
pub use folders::{Child, FolderRecord, MAX_DEPTH, Place, Placed, numbered_name, root_view};
pub use item::{rfc3339, to_millis};
pub use janitor::{DUE_INDEX, HotCopy, SHA256_INDEX, ScanCursor};
pub use limits::{Counter, Limit, Taken};
pub use shares::ShareRecord;
pub use stranded::StrandedTransfer;
pub use subtree::{ChildRef, SUBTREE_PAGE};
pub use transfers::{CHECKPOINT_TTL, TransferCheckpoint};
pub use trash::{Restored, TrashEntry};
pub use uploads::UploadRecord;
pub use users::{AddFile, UserRecord};

pub use filestore_contract::domain::UploadState;

/// The DynamoDB repository over one table.
#[derive(Clone, Debug)]
pub struct Repo {
    client: Client,
    table: String,
}

impl Repo {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    /// Reads an item that does not exist, to open the connection to DynamoDB: any answer
    /// from the service (a refusal too) counts.
    ///
    /// # Errors
    /// No answer: the connection could not be made.
    pub async fn warm_up(&self) -> Result<(), String> {
        let read = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("PK", Av::S(crate::keys::WARM_UP_KEY.into()))
            .key("SK", Av::S(crate::keys::WARM_UP_KEY.into()))
            .send()
            .await;
        match read {
            Ok(_) | Err(aws_sdk_dynamodb::error::SdkError::ServiceError(_)) => Ok(()),
            Err(e) => Err(aws_sdk_dynamodb::error::DisplayErrorContext(e).to_string()),
        }
    }

    /// The same repository with `interceptor` on its client: tests record or fail calls
    /// through it.
    pub fn with_interceptor(
        &self,
        interceptor: impl aws_sdk_dynamodb::config::Intercept + 'static,
    ) -> Self {
        let client = with_interceptor!(aws_sdk_dynamodb, self.client, interceptor);
        Self::new(client, self.table.clone())
    }

    pub fn table(&self) -> &str {
        &self.table
    }
}

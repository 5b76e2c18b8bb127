//! Multipart uploads: the record of each, from creation to completion, which turns it into a
//! File and counts it on its owner in one transaction.

use std::collections::HashMap;

use anyhow::anyhow;
use aws_sdk_dynamodb::types::{AttributeValue as Av, Delete, TransactWriteItem, Update};
use filestore_contract::api::UploadView;
use filestore_contract::domain::{
    FileId, FolderId, OnConflict, PartPlan, UploadId, UploadState, UserId,
};
use time::OffsetDateTime;

use super::item::{Item, get_bool, get_parsed, get_s, get_time, get_u64, n, opt_s, rfc3339, s};
use super::table::Query;
use super::users::UploadEnd;
use super::{AddFile, FileRecord, Repo};
use crate::keys::{self, Due};

/// A multipart upload in progress (or completed, until its record expires).
#[derive(Clone, Debug)]
pub struct UploadRecord {
    pub user_id: UserId,
    pub upload_id: UploadId,
    /// Chosen up front, so retries of complete always name the same File.
    pub file_id: FileId,
    pub name: String,
    /// The folder the File goes in, and what to do if its name is taken there by then.
    pub parent_id: FolderId,
    pub on_conflict: OnConflict,
    pub size: u64,
    pub sha256: Option<String>,
    pub content_type: String,
    pub part_size: u64,
    pub part_count: u64,
    pub object_key: String,
    pub s3_upload_id: String,
    pub state: UploadState,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    /// Its declared size is reserved in the owner's `claimed_bytes` and it is counted in
    /// `open_uploads` while active. Uploads created before reservations existed are not.
    pub reserved: bool,
    /// Created for part checksums (`checksum_algorithm: "SHA256"`): every part carries its
    /// SHA-256, signed into its URL.
    pub sha256_parts: bool,
}

impl UploadRecord {
    /// How this upload is cut into parts, as planned at create.
    pub fn plan(&self) -> PartPlan {
        PartPlan {
            part_size: self.part_size,
            part_count: self.part_count,
        }
    }

    pub fn is_expired(&self, now: OffsetDateTime) -> bool {
        self.expires_at <= now
    }

    pub fn view(&self, parts_done: Option<Vec<filestore_contract::api::PartDone>>) -> UploadView {
        UploadView {
            upload_id: self.upload_id.clone(),
            name: self.name.clone(),
            size: self.size,
            sha256: self.sha256.clone(),
            content_type: self.content_type.clone(),
            part_size: self.part_size,
            part_count: self.part_count,
            parts_done,
            state: self.state,
            file_id: (self.state == UploadState::Completed).then(|| self.file_id.clone()),
            created_at: rfc3339(self.created_at),
            expires_at: rfc3339(self.expires_at),
        }
    }
}

impl Repo {
    fn upload_item(u: &UploadRecord) -> Item {
        let mut item: Item = HashMap::from([
            ("PK".into(), s(keys::user_pk(&u.user_id))),
            ("SK".into(), s(keys::upload_sk(&u.upload_id))),
            ("user_id".into(), s(&u.user_id)),
            ("upload_id".into(), s(&u.upload_id)),
            ("file_id".into(), s(&u.file_id)),
            ("name".into(), s(&u.name)),
            ("parent_id".into(), s(&u.parent_id)),
            ("on_conflict".into(), s(u.on_conflict.as_str())),
            ("size".into(), n(u.size)),
            ("content_type".into(), s(&u.content_type)),
            ("part_size".into(), n(u.part_size)),
            ("part_count".into(), n(u.part_count)),
            ("object_key".into(), s(&u.object_key)),
            ("s3_upload_id".into(), s(&u.s3_upload_id)),
            ("state".into(), s(u.state.as_str())),
            ("created_at".into(), s(rfc3339(u.created_at))),
            ("expires_at".into(), s(rfc3339(u.expires_at))),
        ]);
        // A reserved upload must end through a write that releases its reservation, never
        // through DynamoDB's TTL sweep, so it gets a `ttl` only once completed.
        if u.reserved {
            item.insert("reserved".into(), Av::Bool(true));
        }
        if u.sha256_parts {
            item.insert("checksum_algorithm".into(), s("SHA256"));
        }
        if !u.reserved || u.state == UploadState::Completed {
            item.insert("ttl".into(), n(u.expires_at.unix_timestamp()));
        }
        if let Some(h) = &u.sha256 {
            item.insert("sha256".into(), s(h));
        }
        if u.state == UploadState::Active {
            item.insert("due_pk".into(), s(Due::Upload.key(u.upload_id.as_str())));
            item.insert("due_at".into(), s(rfc3339(u.expires_at)));
        }
        item
    }

    pub(super) fn upload_from(item: &Item) -> anyhow::Result<UploadRecord> {
        let state = match get_s(item, "state")?.as_str() {
            "active" => UploadState::Active,
            "completed" => UploadState::Completed,
            other => return Err(anyhow!("unknown upload state {other:?}")),
        };
        Ok(UploadRecord {
            user_id: get_parsed(item, "user_id")?,
            upload_id: get_parsed(item, "upload_id")?,
            file_id: get_parsed(item, "file_id")?,
            name: get_s(item, "name")?,
            // Uploads created before folders existed go to the root, renamed on a conflict.
            parent_id: match item.get("parent_id") {
                Some(_) => get_parsed(item, "parent_id")?,
                None => FolderId::root(),
            },
            on_conflict: match opt_s(item, "on_conflict") {
                Some(v) => OnConflict::parse(&v).map_err(|e| anyhow!(e))?,
                None => OnConflict::Rename,
            },
            size: get_u64(item, "size")?,
            sha256: opt_s(item, "sha256"),
            content_type: get_s(item, "content_type")?,
            part_size: get_u64(item, "part_size")?,
            part_count: get_u64(item, "part_count")?,
            object_key: get_s(item, "object_key")?,
            s3_upload_id: get_s(item, "s3_upload_id")?,
            state,
            created_at: get_time(item, "created_at")?,
            expires_at: get_time(item, "expires_at")?,
            reserved: get_bool(item, "reserved"),
            sha256_parts: match opt_s(item, "checksum_algorithm").as_deref() {
                None => false,
                Some("SHA256") => true,
                Some(other) => return Err(anyhow!("unknown checksum algorithm {other:?}")),
            },
        })
    }

    /// Records a new upload and reserves its declared size against its owner's `quota`, all
    /// or nothing. `false` when the reservation was refused (the claimed bytes would pass the
    /// quota, or `max_open` uploads are open); the caller reads the profile to tell which.
    ///
    /// # Errors
    /// DynamoDB failures.
    pub async fn create_upload(
        &self,
        upload: &UploadRecord,
        quota: u64,
        max_open: u64,
    ) -> anyhow::Result<bool> {
        if !upload.reserved {
            return Err(anyhow!("a new upload is always reserved"));
        }
        if upload.size > quota {
            return Ok(false);
        }
        self.transact(
            vec![
                self.put(Self::upload_item(upload), "attribute_not_exists(PK)")?,
                self.reserve_upload(&upload.user_id, upload.size, quota, max_open)?,
            ],
            "create upload",
        )
        .await
    }

    /// The caller's upload, whatever its state or expiry.
    ///
    /// # Errors
    /// DynamoDB failures or a malformed item.
    pub async fn get_upload(
        &self,
        user_id: &UserId,
        upload_id: &UploadId,
    ) -> anyhow::Result<Option<UploadRecord>> {
        self.get(keys::user_pk(user_id), &keys::upload_sk(upload_id))
            .await?
            .map(|item| Self::upload_from(&item))
            .transpose()
    }

    /// The caller's upload records that are active (completed ones are read, not returned).
    fn active_uploads_query() -> Query<'static> {
        Query::prefix(keys::UPLOAD_PREFIX)
            .filter("#state = :active")
            .name("#state", "state")
            .value(":active", s(UploadState::Active.as_str()))
    }

    /// Up to `limit` of the caller's active upload records after `after`, oldest first
    /// (expired ones included: the caller filters them), and whether more may follow.
    ///
    /// # Errors
    /// DynamoDB failures or a malformed item.
    pub async fn list_active_uploads(
        &self,
        user_id: &UserId,
        limit: u32,
        after: Option<&UploadId>,
    ) -> anyhow::Result<(Vec<UploadRecord>, bool)> {
        let query = Self::active_uploads_query().after(after.map(keys::upload_sk));
        let (items, more) = self.page(user_id, query, limit).await?;
        let uploads = items
            .iter()
            .map(Self::upload_from)
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok((uploads, more))
    }

    /// The caller's active upload records, expired ones included (a filter on the query:
    /// completed records are read but not returned).
    ///
    /// # Errors
    /// DynamoDB failures or a malformed item.
    pub async fn active_uploads(&self, user_id: &UserId) -> anyhow::Result<Vec<UploadRecord>> {
        let (items, _) = self.query(user_id, Self::active_uploads_query()).await?;
        items.iter().map(Self::upload_from).collect()
    }

    /// Deletes an upload record only while it is still active, so it never removes one a
    /// concurrent complete has just recorded, and in the same transaction releases its
    /// reservation and leaves its S3 side for the janitor at `abort_due`
    /// ([`PendingAbort`](super::PendingAbort)), which the caller forgets once S3 confirmed
    /// it gone. `false` if it was not active (or gone).
    ///
    /// # Errors
    /// DynamoDB failures.
    pub async fn delete_active_upload(
        &self,
        upload: &UploadRecord,
        abort_due: OffsetDateTime,
    ) -> anyhow::Result<bool> {
        let delete = Delete::builder()
            .table_name(&self.table)
            .key("PK", s(keys::user_pk(&upload.user_id)))
            .key("SK", s(keys::upload_sk(&upload.upload_id)))
            .condition_expression("#state = :active")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":active", s(UploadState::Active.as_str()))
            .build()?;
        let mut items = vec![
            TransactWriteItem::builder().delete(delete).build(),
            self.put_pending_abort(&super::PendingAbort::of(upload), abort_due)?,
        ];
        if upload.reserved {
            items.push(self.end_reserved_upload(
                &upload.user_id,
                upload.size,
                UploadEnd::Released,
            )?);
        }
        // Boxed: the janitor's sweep nests this deep enough to pass the compiler's layout
        // depth limit otherwise.
        Box::pin(self.transact(items, "end upload")).await
    }

    /// Records a completed upload as a File, marks the upload completed, adds the file to
    /// the owner's counters and claims its name in its folder (checked live), all or
    /// nothing. A reserved upload's bytes move from reserved to used (its reservation passed
    /// the quota at create); an older upload is counted within `quota`. A taken name is
    /// handled as the upload's `on_conflict` says: with `rename`, `file.name` becomes the
    /// free name that was recorded. [`AddFile::Refused`] if the upload was no longer active
    /// (a concurrent or earlier complete won); nothing was written then.
    /// The new file, unverified, is the janitor's at `transfer_due` if its transfer has not
    /// verified it by then (`due` index, kind `TRANSFER`).
    ///
    /// # Errors
    /// DynamoDB failures.
    pub async fn complete_upload(
        &self,
        upload: &UploadRecord,
        file: &mut FileRecord,
        quota: u64,
        transfer_due: OffsetDateTime,
    ) -> anyhow::Result<AddFile> {
        let counters = if upload.reserved {
            if file.size != upload.size {
                return Err(anyhow!(
                    "a reserved upload completes with its declared size"
                ));
            }
            self.end_reserved_upload(&upload.user_id, upload.size, UploadEnd::Completed)?
        } else if file.size > quota {
            return Ok(AddFile::OverQuota);
        } else {
            self.count_files(&upload.user_id, file.size.into(), 1, 0, Some(quota))?
        };
        // From now on the record may expire through DynamoDB's TTL: nothing is reserved.
        let mark = Update::builder()
            .table_name(&self.table)
            .key("PK", s(keys::user_pk(&upload.user_id)))
            .key("SK", s(keys::upload_sk(&upload.upload_id)))
            .update_expression("SET #state = :completed, #ttl = :ttl REMOVE due_pk, due_at")
            .condition_expression("#state = :active")
            .expression_attribute_names("#state", "state")
            .expression_attribute_names("#ttl", "ttl")
            .expression_attribute_values(":completed", s(UploadState::Completed.as_str()))
            .expression_attribute_values(":active", s(UploadState::Active.as_str()))
            .expression_attribute_values(":ttl", n(upload.expires_at.unix_timestamp()))
            .build()?;
        let mark = TransactWriteItem::builder().update(mark).build();
        let user_id = &upload.user_id;
        let (outcome, name) = self
            .with_free_name(
                user_id,
                &file.parent_id,
                &file.name.clone(),
                upload.on_conflict,
                AddFile::is_name_taken,
                |name| {
                    let file = FileRecord {
                        name,
                        ..file.clone()
                    };
                    let (mark, counters) = (mark.clone(), counters.clone());
                    async move {
                        let mut item = Self::file_item(&file);
                        if !file.verified() {
                            item.insert(
                                "due_pk".into(),
                                s(Due::Transfer.key(file.file_id.as_str())),
                            );
                            item.insert("due_at".into(), s(rfc3339(transfer_due)));
                        }
                        let mut items =
                            vec![self.put(item, "attribute_not_exists(PK)")?, mark, counters];
                        items.extend(self.place_file(&file)?);
                        let tx = self.transact_items(items, "complete").await?;
                        Ok(AddFile::from_tx(tx, 2))
                    }
                },
            )
            .await?;
        file.name = name;
        Ok(outcome)
    }
}

//! Domain types that can only hold valid values. Each has a `parse` constructor and
//! deserializes through it, so a handler that received one never re-checks it. Each also
//! states its rules as a JSON Schema (in the OpenAPI document), written beside its `parse`
//! so the two are read and changed together.
//!
//! # Layout
//! - `text`: usernames, passwords, file names, hashes, content types, part checksums.
//! - `numbers`: part numbers, sizes, share lifetimes and limits, whole numbers.
//! - `parts`: how an object is cut into parts ([`PartPlan`]).
//! - `ids`: the server-made ids of users, uploads, files, folders, challenges and share
//!   links (and the root folder's `"root"`).
//! - here: the limits S3 sets, upload states, tiers, entry types and `on_conflict`.

use std::fmt;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, Schema, SchemaFormat, Type};

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;
const GIB: u64 = 1024 * MIB;

/// S3's smallest part (all but the last).
pub const MIN_PART_SIZE: u64 = 5 * MIB;
/// S3's largest part.
pub const MAX_PART_SIZE: u64 = 5 * GIB;
/// S3's largest object.
pub const MAX_OBJECT_SIZE: u64 = 5 * 1024 * GIB;
/// S3's largest part number.
pub const MAX_PARTS: u64 = 10_000;
/// Part size used when the client does not ask for one.
pub const DEFAULT_PART_SIZE: u64 = 8 * MIB;

/// A string schema with the rules of one domain type.
fn string_schema(
    description: &str,
    min_length: usize,
    max_length: usize,
    pattern: Option<&str>,
) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(description))
        .min_length(Some(min_length))
        .max_length(Some(max_length))
        .pattern(pattern)
        .into()
}

/// An integer schema with the bounds of one domain type.
fn integer_schema(description: &str, minimum: u64, maximum: u64) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
        .description(Some(description))
        .minimum(Some(minimum))
        .maximum(Some(maximum))
        .into()
}

/// Names the schema after the type, so the document reads `Username`, `Sha256Hex`...
macro_rules! schema {
    ($name:ident, $schema:expr) => {
        impl PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                $schema
            }
        }
        impl ToSchema for $name {}
    };
}

macro_rules! string_newtype {
    ($name:ident, $what:literal) => {
        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl TryFrom<String> for $name {
            type Error = String;
            fn try_from(value: String) -> Result<Self, String> {
                Self::parse(&value)
            }
        }
        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }
    };
}

macro_rules! number_newtype {
    ($name:ident, $int:ty) => {
        impl $name {
            pub fn get(self) -> $int {
                self.0
            }
        }
        impl TryFrom<u64> for $name {
            type Error = String;
            fn try_from(value: u64) -> Result<Self, String> {
                Self::parse(value)
            }
        }
        impl TryFrom<WholeNumber> for $name {
            type Error = String;
            fn try_from(value: WholeNumber) -> Result<Self, String> {
                Self::parse(value.0)
            }
        }
        impl From<$name> for $int {
            fn from(value: $name) -> $int {
                value.0
            }
        }
    };
}

mod ids;
mod numbers;
mod parts;
mod text;

pub use ids::{ChallengeId, FileId, FolderId, ShareId, UploadId, UserId};
pub use numbers::{DownloadLimit, ObjectSize, PartNumber, PartSize, ShareLifetime, WholeNumber};
pub use parts::PartPlan;
pub use text::{ContentType, FileName, PartChecksum, Password, Sha256Hex, Username};

/// Where an upload is in its life: `active` while parts can be sent, `completed` after.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum UploadState {
    Active,
    Completed,
}

impl UploadState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Completed => "completed",
        }
    }
}

/// What a trash entry (or a folder listing's entry) is: a file or a folder.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum EntryType {
    File,
    Folder,
}

impl EntryType {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::File => "file",
            Self::Folder => "folder",
        }
    }

    /// The stored form back; `None` for anything else.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "file" => Some(Self::File),
            "folder" => Some(Self::Folder),
            _ => None,
        }
    }
}

/// What an upload or instant upload does when its name is taken in its folder, applied when
/// the File is created: pick a free `name (1).ext` (the default), put the existing file in
/// the trash, or refuse with `409 name_taken`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum OnConflict {
    #[default]
    Rename,
    Replace,
    Fail,
}

impl OnConflict {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rename => "rename",
            Self::Replace => "replace",
            Self::Fail => "fail",
        }
    }

    /// # Errors
    /// For anything but the three names.
    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "rename" => Ok(Self::Rename),
            "replace" => Ok(Self::Replace),
            "fail" => Ok(Self::Fail),
            other => Err(format!("unknown on_conflict {other:?}")),
        }
    }
}

/// Where a file's bytes are served from: `hot` until a verified copy is in the cold store.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    Hot,
    Cold,
}

impl Tier {
    pub const ALL: [Tier; 2] = [Tier::Hot, Tier::Cold];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Hot => "hot",
            Self::Cold => "cold",
        }
    }
}

impl fmt::Display for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

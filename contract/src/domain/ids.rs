//! The ids the server makes: users, uploads, files, folders, challenges and share links. Each
//! is a UUID written hyphenated in lowercase, and its own type, so one kind of id cannot be
//! passed where another is meant. A folder id may also be `"root"`, every user's root folder.

use std::fmt;

use serde::{Deserialize, Serialize};
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, Schema, SchemaFormat, Type};
use utoipa::{PartialSchema, ToSchema};

/// A string schema in the `uuid` format.
fn uuid_schema(description: &str) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Uuid)))
        .description(Some(description))
        .into()
}

/// The canonical form of a UUID, or `None` for anything else.
fn canonical_uuid(s: &str) -> Option<String> {
    uuid::Uuid::try_parse(s)
        .ok()
        .filter(|u| u.hyphenated().to_string() == s)
        .map(|u| u.to_string())
}

macro_rules! id_newtype {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);
        string_newtype!($name, $what);
        schema!($name, uuid_schema(concat!("A ", $what, ".")));

        impl $name {
            /// A new time-ordered id, so listings come back oldest first.
            pub fn generate() -> Self {
                Self(uuid::Uuid::now_v7().to_string())
            }

            /// A server-made id of this kind. Ids that do not parse cannot exist, so a path
            /// id that does not parse is answered 404.
            ///
            /// # Errors
            /// When the value is not a UUID in its canonical form.
            pub fn parse(s: &str) -> Result<Self, String> {
                canonical_uuid(s)
                    .map(Self)
                    .ok_or_else(|| format!(concat!("a ", $what, " must be a UUID, not {:?}"), s))
            }
        }
    };
}

id_newtype!(
    /// A user, made at signup.
    UserId,
    "user id"
);
id_newtype!(
    /// A multipart upload.
    UploadId,
    "upload id"
);
id_newtype!(
    /// A file, chosen when its upload is created so every retry of complete names it.
    FileId,
    "file id"
);
id_newtype!(
    /// An instant-upload challenge.
    ChallengeId,
    "challenge id"
);
id_newtype!(
    /// A share link.
    ShareId,
    "share id"
);

/// A folder: a UUID made when it is created, or [`FolderId::ROOT`], the literal `"root"`
/// naming every user's root folder (which is virtual: never stored).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct FolderId(String);
string_newtype!(FolderId, "folder id");
schema!(
    FolderId,
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(
            "A folder id: a UUID, or \"root\" for the root folder."
        ))
        .pattern(Some(
            "^(root|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$"
        ))
        .into()
);

impl FolderId {
    /// The id of every user's root folder.
    pub const ROOT: &'static str = "root";

    /// The root folder.
    pub fn root() -> Self {
        Self(Self::ROOT.to_string())
    }

    pub fn is_root(&self) -> bool {
        self.0 == Self::ROOT
    }

    /// A new time-ordered folder id.
    pub fn generate() -> Self {
        Self(uuid::Uuid::now_v7().to_string())
    }

    /// `"root"` or a server-made folder id.
    ///
    /// # Errors
    /// When the value is neither `"root"` nor a UUID in its canonical form.
    pub fn parse(s: &str) -> Result<Self, String> {
        if s == Self::ROOT {
            return Ok(Self::root());
        }
        canonical_uuid(s)
            .map(Self)
            .ok_or_else(|| format!("a folder id must be \"root\" or a UUID, not {s:?}"))
    }
}

impl Default for FolderId {
    /// Files created without a folder are in the root.
    fn default() -> Self {
        Self::root()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_must_be_canonical_uuids() {
        let id = FileId::generate();
        assert_eq!(FileId::parse(id.as_str()), Ok(id.clone()));
        assert!(FileId::parse("nope").is_err());
        assert!(FileId::parse(&id.as_str().to_uppercase()).is_err());
        assert!(FileId::parse(&id.as_str().replace('-', "")).is_err());
    }

    #[test]
    fn folder_ids_are_root_or_canonical_uuids() {
        assert!(FolderId::parse("root").unwrap().is_root());
        let id = FolderId::generate();
        assert_eq!(FolderId::parse(id.as_str()), Ok(id.clone()));
        assert!(!id.is_root());
        for bad in ["Root", "", "nope", &id.as_str().to_uppercase()] {
            assert!(FolderId::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ids_are_their_string_on_the_wire() {
        let id = UserId::generate();
        let json = serde_json::to_value(&id).unwrap();
        assert_eq!(json, serde_json::json!(id.as_str()));
        assert_eq!(serde_json::from_value::<UserId>(json).unwrap(), id);
        assert!(serde_json::from_value::<UserId>(serde_json::json!("x")).is_err());
    }
}

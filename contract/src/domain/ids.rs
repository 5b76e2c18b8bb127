//! The ids the server makes: users, uploads, files, challenges and share links. Each is a
//! UUID written hyphenated in lowercase, and its own type, so one kind of id cannot be passed
//! where another is meant.

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
    fn ids_are_their_string_on_the_wire() {
        let id = UserId::generate();
        let json = serde_json::to_value(&id).unwrap();
        assert_eq!(json, serde_json::json!(id.as_str()));
        assert_eq!(serde_json::from_value::<UserId>(json).unwrap(), id);
        assert!(serde_json::from_value::<UserId>(serde_json::json!("x")).is_err());
    }
}

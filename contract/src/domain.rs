//! Domain types that can only hold valid values. Each has a `parse` constructor and
//! deserializes through it, so a handler that received one never re-checks it. Each also
//! states its rules as a JSON Schema (in the OpenAPI document), written beside its `parse`
//! so the two are read and changed together.

use std::fmt;

use base64::Engine;
use serde::{Deserialize, Serialize};
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, Schema, SchemaFormat, Type};
use utoipa::{PartialSchema, ToSchema};

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

/// A JSON number that is a whole number from 0 to `u64::MAX`, written as an integer or not:
/// JSON Schema's `integer` (what the document promises) admits `5.0` and `5e3`, which serde
/// alone rejects for a `u64`. Fractions and negatives are still refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WholeNumber(pub u64);

impl<'de> Deserialize<'de> for WholeNumber {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = WholeNumber;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a whole number")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<WholeNumber, E> {
                Ok(WholeNumber(v))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<WholeNumber, E> {
                u64::try_from(v)
                    .map(WholeNumber)
                    .map_err(|_| E::invalid_value(serde::de::Unexpected::Signed(v), &self))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<WholeNumber, E> {
                // 2^64 is exact in f64; every whole f64 below it converts exactly.
                if v.fract() == 0.0 && (0.0..18_446_744_073_709_551_616.0).contains(&v) {
                    Ok(WholeNumber(v as u64))
                } else {
                    Err(E::invalid_value(serde::de::Unexpected::Float(v), &self))
                }
            }
        }
        deserializer.deserialize_any(Visitor)
    }
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

/// 3..64 characters of `A-Za-z0-9_.-`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Username(String);
string_newtype!(Username, "username");
schema!(
    Username,
    string_schema(
        "3 to 64 characters of A-Z, a-z, 0-9, '_', '.' and '-'; unique ignoring case.",
        Username::MIN_LEN,
        Username::MAX_LEN,
        Some("^[A-Za-z0-9_.-]{3,64}$"),
    )
);

impl Username {
    pub const MIN_LEN: usize = 3;
    pub const MAX_LEN: usize = 64;

    /// # Errors
    /// Says which rule the value breaks.
    pub fn parse(s: &str) -> Result<Self, String> {
        let len = s.chars().count();
        if !(Self::MIN_LEN..=Self::MAX_LEN).contains(&len) {
            return Err("username must be 3 to 64 characters".into());
        }
        if !s
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        {
            return Err("username may contain only A-Z, a-z, 0-9, '_', '.' and '-'".into());
        }
        Ok(Self(s.to_string()))
    }

    /// The uniqueness key: `Alice` and `alice` are the same account name.
    pub fn canonical(&self) -> String {
        self.0.to_ascii_lowercase()
    }
}

/// 8..1024 characters. Never printed; serialized only into a request body a client sends.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct Password(String);

impl Serialize for Password {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}
schema!(
    Password,
    ObjectBuilder::new()
        .schema_type(Type::String)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Password)))
        .description(Some("8 to 1024 characters."))
        .min_length(Some(Password::MIN_LEN))
        .max_length(Some(Password::MAX_LEN))
        .write_only(true)
        .into()
);

impl Password {
    pub const MIN_LEN: usize = 8;
    pub const MAX_LEN: usize = 1024;

    /// # Errors
    /// Says which rule the value breaks.
    pub fn parse(s: &str) -> Result<Self, String> {
        let len = s.chars().count();
        if !(Self::MIN_LEN..=Self::MAX_LEN).contains(&len) {
            return Err("password must be 8 to 1024 characters".into());
        }
        Ok(Self(s.to_string()))
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Password {
    type Error = String;
    fn try_from(value: String) -> Result<Self, String> {
        Self::parse(&value)
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(***)")
    }
}

/// 1..255 bytes of UTF-8, no `/`, no control characters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct FileName(String);
string_newtype!(FileName, "file name");
// JSON Schema counts characters, not bytes: `maxLength` is the bound for ASCII names, and
// the description states the byte limit that also applies to others.
schema!(
    FileName,
    string_schema(
        "1 to 255 bytes of UTF-8; no '/', no control characters, not '.' or '..'.",
        1,
        FileName::MAX_BYTES,
        Some(r"^(?!\.\.?$)[^/\x00-\x1F\x7F-\x9F]+$"),
    )
);

impl FileName {
    pub const MAX_BYTES: usize = 255;

    /// # Errors
    /// Says which rule the value breaks.
    pub fn parse(s: &str) -> Result<Self, String> {
        if s.is_empty() || s.len() > Self::MAX_BYTES {
            return Err("name must be 1 to 255 bytes".into());
        }
        if s.contains('/') {
            return Err("name must not contain '/'".into());
        }
        if s.chars().any(char::is_control) {
            return Err("name must not contain control characters".into());
        }
        if s == "." || s == ".." {
            return Err("name must not be '.' or '..'".into());
        }
        Ok(Self(s.to_string()))
    }
}

/// A SHA-256 digest as 64 lowercase hex characters (uppercase input is accepted and lowered).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Sha256Hex(String);
string_newtype!(Sha256Hex, "sha256");
schema!(
    Sha256Hex,
    string_schema(
        "A SHA-256 digest: 64 hexadecimal characters (answers carry it in lowercase).",
        64,
        64,
        Some("^[0-9a-fA-F]{64}$"),
    )
);

impl Sha256Hex {
    /// # Errors
    /// When the value is not 64 hex characters.
    pub fn parse(s: &str) -> Result<Self, String> {
        if s.len() != 64 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err("sha256 must be 64 hexadecimal characters".into());
        }
        Ok(Self(s.to_ascii_lowercase()))
    }
}

/// A MIME type such as `text/plain; charset=utf-8`: printable ASCII with a `/`, at most 255 bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ContentType(String);
string_newtype!(ContentType, "content type");
// The pattern is `parse` spelled as a regular expression: printable ASCII whose part before
// the first ';' is, once trimmed, two non-empty halves around one '/'.
schema!(
    ContentType,
    string_schema(
        "A MIME type such as 'text/plain; charset=utf-8': printable ASCII, at most 255 bytes.",
        1,
        255,
        Some(r"^ *[!-.0-:<-~][ -.0-:<-~]*/ *[!-.0-:<-~][ -.0-:<-~]*(;[ -~]*)?$"),
    )
);

impl ContentType {
    /// # Errors
    /// When the value cannot be a MIME type.
    pub fn parse(s: &str) -> Result<Self, String> {
        let valid = !s.is_empty()
            && s.len() <= 255
            && s.bytes().all(|b| (0x20..0x7f).contains(&b))
            && s.split(';').next().is_some_and(|t| {
                let mut halves = t.trim().split('/');
                matches!((halves.next(), halves.next(), halves.next()), (Some(a), Some(b), None) if !a.is_empty() && !b.is_empty())
            });
        if !valid {
            return Err("content_type must be a MIME type such as 'text/plain'".into());
        }
        Ok(Self(s.to_string()))
    }

    pub fn octet_stream() -> Self {
        Self("application/octet-stream".into())
    }
}

/// The base64 SHA-256 of one part, as S3's `x-amz-checksum-sha256` header carries it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PartChecksum(String);
string_newtype!(PartChecksum, "part checksum");
// 32 bytes are 43 base64 digits and one '='; the last digit carries 4 bits and two zero bits.
schema!(
    PartChecksum,
    string_schema(
        "The standard base64 of a part's 32-byte SHA-256 digest.",
        44,
        44,
        Some("^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$"),
    )
);

impl PartChecksum {
    /// # Errors
    /// When the value is not the standard base64 of 32 bytes.
    pub fn parse(s: &str) -> Result<Self, String> {
        match base64::engine::general_purpose::STANDARD.decode(s) {
            Ok(bytes) if bytes.len() == 32 => Ok(Self(s.to_string())),
            _ => Err("checksums must be the base64 of a 32-byte SHA-256 digest".into()),
        }
    }
}

/// A part number, 1..=10,000.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "WholeNumber", into = "u32")]
pub struct PartNumber(u32);
schema!(PartNumber, integer_schema("A part number.", 1, MAX_PARTS));

impl PartNumber {
    /// # Errors
    /// When the value is outside 1..=10,000.
    pub fn parse(n: u64) -> Result<Self, String> {
        if (1..=MAX_PARTS).contains(&n) {
            Ok(Self(n as u32))
        } else {
            Err(format!("part number {n} is outside 1..=10000"))
        }
    }
}

number_newtype!(PartNumber, u32);

/// How long a share link lives, in seconds: one minute to 30 days.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "WholeNumber", into = "u64")]
pub struct ShareLifetime(u64);
schema!(
    ShareLifetime,
    integer_schema(
        "How long a share link lives, in seconds.",
        ShareLifetime::MIN_SECS,
        ShareLifetime::MAX_SECS
    )
);

impl ShareLifetime {
    pub const MIN_SECS: u64 = 60;
    pub const MAX_SECS: u64 = 30 * 24 * 3600;

    /// # Errors
    /// When the value is outside 60..=2,592,000.
    pub fn parse(n: u64) -> Result<Self, String> {
        if (Self::MIN_SECS..=Self::MAX_SECS).contains(&n) {
            Ok(Self(n))
        } else {
            Err(format!(
                "expires_in must be {}..={} seconds",
                Self::MIN_SECS,
                Self::MAX_SECS
            ))
        }
    }
}

number_newtype!(ShareLifetime, u64);

/// A share link's download limit: 1..=1,000,000.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "WholeNumber", into = "u64")]
pub struct DownloadLimit(u64);
schema!(
    DownloadLimit,
    integer_schema(
        "How many times a share link may be opened.",
        1,
        DownloadLimit::MAX
    )
);

impl DownloadLimit {
    pub const MAX: u64 = 1_000_000;

    /// # Errors
    /// When the value is outside 1..=1,000,000.
    pub fn parse(n: u64) -> Result<Self, String> {
        if (1..=Self::MAX).contains(&n) {
            Ok(Self(n))
        } else {
            Err(format!("max_downloads must be 1..={}", Self::MAX))
        }
    }
}

number_newtype!(DownloadLimit, u64);

/// An object size, 0..=5 TiB.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "WholeNumber", into = "u64")]
pub struct ObjectSize(u64);
schema!(
    ObjectSize,
    integer_schema(
        "An object size in bytes (5 TiB at most).",
        0,
        MAX_OBJECT_SIZE
    )
);

impl ObjectSize {
    /// # Errors
    /// When the value is above 5 TiB.
    pub fn parse(n: u64) -> Result<Self, String> {
        if n <= MAX_OBJECT_SIZE {
            Ok(Self(n))
        } else {
            Err(format!(
                "size must be at most {MAX_OBJECT_SIZE} bytes (5 TiB)"
            ))
        }
    }
}

number_newtype!(ObjectSize, u64);

/// A requested part size, within S3's 5 MiB..=5 GiB.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "WholeNumber", into = "u64")]
pub struct PartSize(u64);
schema!(
    PartSize,
    integer_schema(
        "A part size in bytes (5 MiB to 5 GiB).",
        MIN_PART_SIZE,
        MAX_PART_SIZE
    )
);

impl PartSize {
    /// # Errors
    /// When the value is outside 5 MiB..=5 GiB.
    pub fn parse(n: u64) -> Result<Self, String> {
        if (MIN_PART_SIZE..=MAX_PART_SIZE).contains(&n) {
            Ok(Self(n))
        } else {
            Err(format!(
                "part_size must be between {MIN_PART_SIZE} (5 MiB) and {MAX_PART_SIZE} (5 GiB)"
            ))
        }
    }
}

number_newtype!(PartSize, u64);

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

/// How an object of a given size is cut into parts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PartPlan {
    pub part_size: u64,
    pub part_count: u64,
}

impl PartPlan {
    /// The requested part size (or 8 MiB), raised to a whole MiB as needed so that the object
    /// fits in 10,000 parts. A zero-byte object is one empty part.
    pub fn new(size: ObjectSize, requested: Option<PartSize>) -> Self {
        let size = size.get();
        let mut part_size = requested.map_or(DEFAULT_PART_SIZE, PartSize::get);
        let smallest = size.div_ceil(MAX_PARTS);
        if part_size < smallest {
            part_size = smallest.div_ceil(MIB) * MIB;
        }
        let part_count = size.div_ceil(part_size).max(1);
        Self {
            part_size,
            part_count,
        }
    }

    /// The bytes `(offset, length)` of part `n` of a `size`-byte object. Every part but the
    /// last is full; a part past the end is empty, at the end.
    pub fn range(&self, size: u64, n: PartNumber) -> (u64, u64) {
        let offset = (u64::from(n.get()) - 1)
            .saturating_mul(self.part_size)
            .min(size);
        let end = offset.saturating_add(self.part_size).min(size);
        (offset, end - offset)
    }

    /// The exact size part `n` must have for the object to be `size` bytes.
    pub fn expected_part_size(&self, size: u64, n: PartNumber) -> u64 {
        self.range(size, n).1
    }
}

/// A server-made identifier (UUID, hyphenated lowercase). Path ids that do not parse cannot
/// exist, so handlers answer 404 for them.
pub fn parse_id(s: &str) -> Option<String> {
    uuid::Uuid::try_parse(s)
        .ok()
        .filter(|u| u.hyphenated().to_string() == s)
        .map(|u| u.to_string())
}

/// A new time-ordered identifier, so listings come back oldest first.
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_follow_the_contract() {
        assert!(Username::parse("al").is_err());
        assert!(Username::parse("alice").is_ok());
        assert!(Username::parse("a.b-c_9").is_ok());
        assert!(Username::parse(&"a".repeat(64)).is_ok());
        assert!(Username::parse(&"a".repeat(65)).is_err());
        assert!(Username::parse("al ice").is_err());
        assert!(Username::parse("élise").is_err());
        assert_eq!(Username::parse("Alice").unwrap().canonical(), "alice");
    }

    #[test]
    fn passwords_are_bounded_and_never_printed() {
        assert!(Password::parse("short").is_err());
        let p = Password::parse("long enough").unwrap();
        assert!(!format!("{p:?}").contains("enough"));
        assert!(Password::parse(&"x".repeat(1025)).is_err());
    }

    #[test]
    fn file_names_reject_slashes_controls_and_length() {
        assert!(FileName::parse("").is_err());
        assert!(FileName::parse("a/b").is_err());
        assert!(FileName::parse("a\nb").is_err());
        assert!(FileName::parse("..").is_err());
        assert!(FileName::parse(&"é".repeat(127)).is_ok());
        assert!(FileName::parse(&"é".repeat(128)).is_err());
        assert!(FileName::parse("report (final).pdf").is_ok());
    }

    #[test]
    fn sha256_is_lowered_and_checked() {
        let upper = "A".repeat(64);
        assert_eq!(Sha256Hex::parse(&upper).unwrap().as_str(), "a".repeat(64));
        assert!(Sha256Hex::parse(&"g".repeat(64)).is_err());
        assert!(Sha256Hex::parse("abc").is_err());
    }

    #[test]
    fn content_types_need_a_type_and_subtype() {
        assert!(ContentType::parse("text/plain").is_ok());
        assert!(ContentType::parse("text/plain; charset=utf-8").is_ok());
        assert!(ContentType::parse("text").is_err());
        assert!(ContentType::parse("a/b/c").is_err());
        assert!(ContentType::parse("text/plain\r\nX: y").is_err());
    }

    #[test]
    fn part_checksums_are_32_bytes_of_base64() {
        assert!(PartChecksum::parse("47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=").is_ok());
        // The schema's pattern admits only a last digit whose two spare bits are zero.
        assert!(PartChecksum::parse("47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFV=").is_err());
        assert!(PartChecksum::parse("AAAA").is_err());
        assert!(PartChecksum::parse("not base64!").is_err());
    }

    #[test]
    fn part_numbers_and_sizes_have_s3_bounds() {
        assert!(PartNumber::parse(0).is_err());
        assert!(PartNumber::parse(10_001).is_err());
        assert_eq!(PartNumber::parse(10_000).unwrap().get(), 10_000);
        assert!(PartSize::parse(MIN_PART_SIZE - 1).is_err());
        assert!(PartSize::parse(MAX_PART_SIZE + 1).is_err());
        assert!(ObjectSize::parse(MAX_OBJECT_SIZE).is_ok());
        assert!(ObjectSize::parse(MAX_OBJECT_SIZE + 1).is_err());
    }

    /// The document says `integer`, which JSON Schema reads as any number without a
    /// fraction; the parsers agree, and still refuse fractions, negatives, strings and
    /// numbers past `u64`.
    #[test]
    fn whole_numbers_may_be_written_with_a_fraction_or_exponent() {
        let part = |json: &str| serde_json::from_str::<PartNumber>(json).map(PartNumber::get);
        assert_eq!(part("7").unwrap(), 7);
        assert_eq!(part("7.0").unwrap(), 7);
        assert_eq!(part("7e0").unwrap(), 7);
        assert!(part("7.5").is_err());
        assert!(part("-1").is_err());
        assert!(part("-0.5").is_err());
        assert!(part("\"7\"").is_err());
        assert!(part("1e30").is_err());
        assert!(part("10001.0").is_err());
        let size = |json: &str| serde_json::from_str::<ObjectSize>(json).map(ObjectSize::get);
        assert_eq!(size("5e3").unwrap(), 5000);
        assert_eq!(size("0.0").unwrap(), 0);
        assert!(size("18446744073709551616").is_err());
        assert!(size("1.8446744073709552e19").is_err());
    }

    fn plan(size: u64, requested: Option<u64>) -> PartPlan {
        PartPlan::new(
            ObjectSize::parse(size).unwrap(),
            requested.map(|r| PartSize::parse(r).unwrap()),
        )
    }

    #[test]
    fn part_plan_defaults_to_8_mib() {
        assert_eq!(
            plan(0, None),
            PartPlan {
                part_size: DEFAULT_PART_SIZE,
                part_count: 1
            }
        );
        assert_eq!(plan(1, None).part_count, 1);
        assert_eq!(plan(8 * MIB, None).part_count, 1);
        assert_eq!(plan(8 * MIB + 1, None).part_count, 2);
        assert_eq!(plan(12 * MIB, Some(5 * MIB)).part_count, 3);
    }

    #[test]
    fn part_plan_raises_part_size_to_fit_10000_parts() {
        let p = plan(MAX_OBJECT_SIZE, None);
        assert!(p.part_count <= MAX_PARTS);
        assert!(p.part_size <= MAX_PART_SIZE);
        assert_eq!(p.part_size % MIB, 0);
        let p = plan(100 * GIB, Some(5 * MIB));
        assert!(p.part_count <= MAX_PARTS);
        assert!(p.part_size > 5 * MIB);
        let p = plan(10_000 * 8 * MIB, None);
        assert_eq!(
            p,
            PartPlan {
                part_size: 8 * MIB,
                part_count: 10_000
            }
        );
    }

    #[test]
    fn expected_part_sizes_sum_to_the_object() {
        let size = 12 * MIB + 3;
        let p = plan(size, Some(5 * MIB));
        let total: u64 = (1..=p.part_count)
            .map(|n| p.expected_part_size(size, PartNumber::parse(n).unwrap()))
            .sum();
        assert_eq!(total, size);
    }

    #[test]
    fn part_ranges_cover_the_object_exactly() {
        let part = |n| PartNumber::parse(n).unwrap();
        let size = 12 * MIB + 3;
        let p = plan(size, Some(5 * MIB));
        assert_eq!(p.range(size, part(1)), (0, 5 * MIB));
        assert_eq!(p.range(size, part(2)), (5 * MIB, 5 * MIB));
        assert_eq!(p.range(size, part(3)), (10 * MIB, 2 * MIB + 3));
    }

    #[test]
    fn an_empty_object_is_one_empty_part_and_exact_multiples_end_full() {
        let part = |n| PartNumber::parse(n).unwrap();
        assert_eq!(plan(0, None).range(0, part(1)), (0, 0));
        let size = 10 * MIB;
        let p = plan(size, Some(5 * MIB));
        assert_eq!(p.part_count, 2);
        assert_eq!(p.range(size, part(2)), (5 * MIB, 5 * MIB));
        assert_eq!(p.range(size, part(3)), (size, 0), "past the end");
    }

    #[test]
    fn ids_must_be_canonical_uuids() {
        let id = new_id();
        assert_eq!(parse_id(&id).as_deref(), Some(id.as_str()));
        assert_eq!(parse_id("nope"), None);
        assert_eq!(parse_id(&id.to_uppercase()), None);
        assert_eq!(parse_id(&id.replace('-', "")), None);
    }
}

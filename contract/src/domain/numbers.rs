//! The numbers a client sends: part numbers, sizes and share limits, each bounded, and the
//! whole-number reading JSON Schema's `integer` promises.

use std::fmt;

use serde::{Deserialize, Serialize};
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::Schema;
use utoipa::{PartialSchema, ToSchema};

use super::{MAX_OBJECT_SIZE, MAX_PART_SIZE, MAX_PARTS, MIN_PART_SIZE, integer_schema};

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

#[cfg(test)]
mod tests {
    use super::*;

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
}

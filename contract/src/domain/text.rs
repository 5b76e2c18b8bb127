//! The text a client sends: usernames, passwords, file names, hashes, content types and part
//! checksums, each with its rules and its schema side by side.

use std::fmt;

use base64::Engine;
use serde::{Deserialize, Serialize};
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, Schema, SchemaFormat, Type};
use utoipa::{PartialSchema, ToSchema};

use super::string_schema;

/// Refuses a value whose length in characters is outside `min..=max`, naming it `what`.
fn chars_within(s: &str, min: usize, max: usize, what: &str) -> Result<(), String> {
    if (min..=max).contains(&s.chars().count()) {
        Ok(())
    } else {
        Err(format!("{what} must be {min} to {max} characters"))
    }
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
        chars_within(s, Self::MIN_LEN, Self::MAX_LEN, "username")?;
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
        chars_within(s, Self::MIN_LEN, Self::MAX_LEN, "password")?;
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

/// 1..255 bytes of UTF-8 once NFC-normalized (and kept normalized), no `/`, no control
/// characters; not `.` or `..`, not only whitespace, and none of the invisible characters
/// that make a name read as another ([`FileName::is_deceptive`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct FileName(String);
string_newtype!(FileName, "file name");
// JSON Schema counts characters, not bytes: `maxLength` is the bound for ASCII names, and
// the description states the byte limit that also applies to others.
schema!(
    FileName,
    string_schema(
        "1 to 255 bytes of UTF-8, NFC-normalized on input and stored normalized; no '/', no \
         control characters, not '.' or '..', not only whitespace, no bidirectional controls \
         (U+202A..U+202E, U+2066..U+2069), zero-width characters (U+200B..U+200D, U+2060) or \
         U+FEFF.",
        1,
        FileName::MAX_BYTES,
        Some(
            r"^(?!\.\.?$)(?!\s+$)[^/\x00-\x1F\x7F-\x9F\u200B-\u200D\u2060\uFEFF\u202A-\u202E\u2066-\u2069]+$"
        ),
    )
);

impl FileName {
    pub const MAX_BYTES: usize = 255;

    /// Parses a name as the client sent it into its NFC form, so `é` typed as `e` and a
    /// combining accent is the same name as a precomposed `é`.
    ///
    /// # Errors
    /// Says which rule the value breaks.
    pub fn parse(s: &str) -> Result<Self, String> {
        use unicode_normalization::UnicodeNormalization;
        let s: String = s.nfc().collect();
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
        if s.chars().all(char::is_whitespace) {
            return Err("name must not be only whitespace".into());
        }
        if let Some(c) = s.chars().find(|c| Self::is_deceptive(*c)) {
            return Err(format!(
                "name must not contain U+{:04X} (bidirectional controls, zero-width characters \
                 and U+FEFF make a name read as another)",
                u32::from(c)
            ));
        }
        Ok(Self(s))
    }

    /// Invisible characters that change how a name reads: bidirectional embeddings,
    /// overrides and isolates (`invoice\u{202E}fdp.exe` shows as `invoiceexe.pdf`),
    /// zero-width spaces and joiners, the word joiner and the byte order mark.
    pub fn is_deceptive(c: char) -> bool {
        matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200B}'..='\u{200D}' | '\u{2060}' | '\u{FEFF}')
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

    /// Names are stored in NFC: the decomposed and the precomposed spelling are one name,
    /// and the byte limit applies to the normalized form.
    #[test]
    fn file_names_are_nfc_normalized() {
        let decomposed = FileName::parse("cafe\u{301}.txt").unwrap();
        assert_eq!(decomposed.as_str(), "caf\u{e9}.txt");
        assert_eq!(decomposed, FileName::parse("caf\u{e9}.txt").unwrap());
        // 128 decomposed é are 384 bytes as sent, 256 once composed: still too long.
        assert!(FileName::parse(&"e\u{301}".repeat(127)).is_ok());
        assert!(FileName::parse(&"e\u{301}".repeat(128)).is_err());
        // Hangul jamo compose into syllables.
        assert_eq!(
            FileName::parse("\u{1100}\u{1161}").unwrap().as_str(),
            "\u{AC00}"
        );
    }

    /// Dot names, whitespace-only names and invisible characters that disguise a name
    /// are refused, each with a message naming the rule.
    #[test]
    fn file_names_reject_dots_blanks_and_invisible_characters() {
        for name in [".", "..", " ", "   ", "\u{3000}", " \u{2003} "] {
            assert!(FileName::parse(name).is_err(), "{name:?}");
        }
        assert!(FileName::parse("...").is_ok());
        assert!(FileName::parse(".hidden").is_ok());
        assert!(FileName::parse(" padded ").is_ok());
        for c in ('\u{202A}'..='\u{202E}')
            .chain('\u{2066}'..='\u{2069}')
            .chain('\u{200B}'..='\u{200D}')
            .chain(['\u{2060}', '\u{FEFF}'])
        {
            let err = FileName::parse(&format!("invoice{c}fdp.exe")).unwrap_err();
            assert!(err.contains(&format!("U+{:04X}", u32::from(c))), "{err}");
            assert!(FileName::parse(&c.to_string()).is_err());
        }
        // Their neighbours are ordinary characters.
        for c in [
            '\u{2029}', '\u{202F}', '\u{2065}', '\u{206A}', '\u{200A}', '\u{2061}',
        ] {
            assert!(!FileName::is_deceptive(c), "U+{:04X}", u32::from(c));
        }
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
}

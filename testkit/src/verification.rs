//! The transfer verifies a file in the background (hot -> cold copy, computed hash), so a
//! file read at two moments may have been verified in between, deployed within
//! milliseconds. A test comparing two reads accepts exactly the file as it was or the same
//! file verified, never anything else.

use filestore_contract::api::FileView;
use filestore_contract::domain::Tier;

use crate::content::sha256_hex;

/// `file` (whose bytes are `data`) as the transfer leaves it: its bytes' SHA-256, verified,
/// cold, and the declared hash kept beside only if it differed. A verified file stays as it is.
pub fn as_verified(file: &FileView, data: &[u8]) -> FileView {
    if file.verified {
        return file.clone();
    }
    let computed = sha256_hex(data);
    FileView {
        declared_sha256: file.sha256.clone().filter(|declared| *declared != computed),
        sha256: Some(computed),
        tier: Tier::Cold,
        verified: true,
        ..file.clone()
    }
}

/// Asserts that `got` is `expected` (whose bytes are `data`) or, if the transfer verified it
/// meanwhile, [`as_verified`] of it.
#[track_caller]
pub fn assert_same_file(got: &FileView, expected: &FileView, data: &[u8]) {
    if got.verified && !expected.verified {
        assert_eq!(*got, as_verified(expected, data), "the same file, verified");
    } else {
        assert_eq!(got, expected, "the same file");
    }
}

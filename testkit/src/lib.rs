//! The end-to-end test harness both test binaries use (`tests/main.rs` of `filestore-dev`
//! and `cli/tests/cli.rs`): one local system per test binary, an HTTP client of its API
//! that answers in the contract's types, a fresh user per test, and test bytes.
//!
//! # Layout
//! - [`system`]: the local system (emulator, provisioned resources, API), started once on a
//!   thread of its own, and what tests need to know about it; or a deployed API named by
//!   `FILESTORE_E2E_URL`, which the tests that only speak HTTP then run against.
//! - [`app`]: [`TestApp`], a client of the API logged in as a fresh user, with the upload
//!   flow and the reads tests repeat; [`Resp`], a whole response; [`path`], a route's path.
//! - [`content`]: deterministic test bytes, their hash, and the answer to an instant-upload
//!   challenge.
//! - [`output`]: the functions' log and metric lines, captured, read by request id.
//! - [`verification`]: a file read twice, verified by the transfer in between or not.

pub mod app;
pub mod content;
pub mod output;
pub mod system;
pub mod verification;

pub use app::{Resp, TestApp, eventually, http_client, path, unique_name};
pub use content::{answer, sha256_hex, test_bytes};
pub use system::{DEPLOYED_URL_VAR, System, base_url, deployed_url, system};
pub use verification::{as_verified, assert_same_file};

pub const MIB: usize = 1024 * 1024;

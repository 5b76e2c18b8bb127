//! End-to-end tests of the `filestore` binary: each test runs the built binary as a user
//! would, against a local system (emulator + API) started once for this test binary, with a
//! config directory of its own.

mod helpers;

mod accounts;
mod errors;
mod faults;
mod instant;
mod transfers;

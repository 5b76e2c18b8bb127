//! End-to-end tests of the `filestore` binary: each test runs the built binary as a user
//! would, against a local system (emulator + API) started once for this test binary, with a
//! config directory of its own.

/// The built binary with its own config and work directory; the rest is `filestore-testkit`.
mod helpers;

/// A forward proxy that records the binary's requests and can refuse some.
mod proxy;

/// Sign up, log in, who am I, where the token is kept.
mod accounts;
/// Parallel ranged downloads: part boundaries, resume, corruption, expiry.
mod downloads;
/// User mistakes and server refusals: one line, a non-zero exit, no panic.
mod errors;
/// An expired part URL and a storage error from a scripted stand-in.
mod faults;
/// Folders, paths and the trash: mkdir, ls, info, mv, rm, trash, restore, purge.
mod folders;
/// Instant upload of content the server already verified.
mod instant;
/// Uploads read each byte once, hash the parts in order, and refuse a file changed meanwhile.
mod reads;
/// Parallel upload, list, download, directories, rename, delete, resume.
mod transfers;

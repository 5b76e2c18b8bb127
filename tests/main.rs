//! End-to-end tests: real HTTP against the local system, real presigned S3 URLs on the
//! emulator, real bytes. One binary, so the system starts once per run.

/// SDK clients behind the API, handler state, AWS events; the rest is `filestore-testkit`.
mod helpers;
/// The SAM template parsed, shared with the `infra` binary.
mod template;

/// Signup, login, `/v1/me`, password change, throttling, which tokens count.
mod auth;
/// A folder of 2,500 entries listed in pages of every size.
mod big_folder;
/// How many AWS calls a request costs.
mod calls;
/// The served OpenAPI document, and schemathesis against it.
mod contract;
/// The SAM template deployed into MiniStack, IAM enforced, driven through its API URL.
mod deployed;
/// Instant upload: challenge, proof, the same answer for every failure.
mod fastupload;
/// List pages, get, download URLs, rename, delete.
mod files;
/// Folders in the trash: the subtree out of reach, restore, purge page by page, the
/// janitor finishing a stopped purge, restore racing purge.
mod folder_trash;
/// Folders, paths, unique names, `on_conflict`, moves and their races (cycles, depth).
mod folders;
/// Expired uploads, aborts S3 failed, unreferenced content, hot retention, orphan cold blobs.
mod janitor;
/// Metrics of real flows, and the request id on every log line.
mod metrics;
/// File names: NFC on input, no dot, blank or disguised names, on every route that takes one.
mod names;
/// Every AWS call each function makes is allowed by its IAM policy, and no more.
mod permissions;
/// 413 at create and at complete, exact usage under concurrency.
mod quotas;
/// Writers racing over the same records: delete against verification, complete against abort.
mod races;
/// A cold-store outage: dead-lettered transfers re-queued by the janitor, once each.
mod recovery;
/// The runner's binary: a restart keeps the data, `--fresh` forgets it, a dead emulator
/// stops it.
mod restart;
/// Other users' ids, bad input and forged tokens on every route.
mod security;
/// Share links: create, open, limits, revoke.
mod shares;
/// S3 event -> SQS -> verified cold copy, dedup, redelivery.
mod transfer;
/// Cut, corrupted and failed exchanges mid-copy; copies over several runs.
mod transfer_faults;
/// The trash: 404 everywhere while trashed, restore, purge, empty, the janitor's purge, races.
mod trash;
/// Multipart upload, resume, complete, abort, expiry, races.
mod uploads;
/// The web page, its headers, and a real session in headless Chromium.
mod web;

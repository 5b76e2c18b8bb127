//! End-to-end tests: real HTTP against the local system, real presigned S3 URLs on the
//! emulator, real bytes. One binary, so the system starts once per run.

mod helpers;

mod auth;
mod contract;
mod fastupload;
mod files;
mod janitor;
mod security;
mod transfer;
mod uploads;
